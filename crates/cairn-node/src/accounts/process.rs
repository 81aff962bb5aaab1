//! `ssh/process` (issue 20, the storage gateway's `ssh_process`): a path of an account's home
//! made one stored file by an upload job. A folder is packed as `.tar.gz` — as `tar czf
//! NAME.tar.gz NAME` would from the folder's parent: entries `NAME/…`, folder markers as
//! directories, each file with its modification time ([`super::mtime_of`]) — and a file is
//! taken as it is. The packing streams (a bounded channel from a blocking thread, each file
//! read through [`crate::Objects::read`] as it is written), so memory stays bounded whatever
//! the folder's size; the job spools the archive and imports it like any upload
//! ([`crate::Jobs::submit_then`]), owned by the account's user. With `remove`, the sources
//! leave the home once the job is `DONE` — each only if unchanged since it was read
//! ([`crate::Objects::delete_unchanged`]), so a file written meanwhile stays.

use std::io::Write;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{Accounts, home_key, mtime_of};
use crate::access::{Action, Caller, Resource};
use crate::jobs::{AfterJob, JobRecord, SubmitError, Uploader, valid_ext};
use crate::model::records::ObjectInfo;
use crate::read::ReadObject;
use crate::{CidVersion, Node, NodeError};

/// What [`Accounts::process`] is asked.
#[derive(Debug, Clone)]
pub struct ProcessPath {
    /// The account.
    pub account: String,
    /// A path of its home (`/docs`, `docs/report.pdf`; `/` is the whole home).
    pub path: String,
    /// Remove the sources once the job is `DONE`.
    pub remove: bool,
    /// The CID version of the stored file.
    pub version: CidVersion,
    /// The largest archive (or file) accepted, in bytes.
    pub limit: u64,
}

/// What a path of a home names.
enum Source {
    /// One file.
    File(Box<ObjectInfo>),
    /// A folder: the archive's name for the top (`None` for the whole home) and every object
    /// under it.
    Folder {
        top: Option<String>,
        prefix: String,
        objects: Vec<ObjectInfo>,
    },
}

/// Bytes handed from the packing thread to the job at a time.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between them.
const IN_FLIGHT: usize = 8;

impl Accounts<'_> {
    /// Makes `what.path` of the account's home one stored file by an upload job (see the
    /// module's docs) and answers the job once the archive is spooled. A path naming nothing
    /// is [`NodeError::NoSuchKey`]; an archive past `what.limit` is
    /// [`SubmitError::TooLarge`].
    pub async fn process(&self, what: ProcessPath) -> Result<JobRecord, SubmitError> {
        let key = home_key(&what.path);
        let (account, at) = (what.account.clone(), key.clone());
        let remove = what.remove;
        let source = self
            .node
            .blocking(move |node| node.accounts().source(&account, &at, remove))
            .await?;
        let uploader = Uploader {
            owner: Some(what.account.clone()),
            public: false,
        };
        let remove = |objects: &[ObjectInfo]| {
            what.remove.then(|| AfterJob::RemoveSources {
                bucket: what.account.clone(),
                objects: objects
                    .iter()
                    .map(|o| (o.key.clone(), o.meta.etag.clone()))
                    .collect(),
            })
        };
        let (after, ext, body) = match source {
            Source::File(info) => {
                let after = remove(std::slice::from_ref(&info));
                let ext = key
                    .rsplit_once('.')
                    .map(|(_, e)| e.to_ascii_lowercase())
                    .filter(|e| valid_ext(e) && !e.contains('/'));
                let plan = self.node.objects().read(ReadObject {
                    bucket: &what.account,
                    key: &key,
                    known: Some(*info),
                    ..Default::default()
                })?;
                let body = self.node.objects().body(&plan)?.map_err(|e| e.to_string());
                let body: Chunks = Box::pin(whole(body, plan.length()));
                (after, ext, body)
            }
            Source::Folder {
                top,
                prefix,
                objects,
            } => {
                let after = remove(&objects);
                let (tx, rx) = tokio::sync::mpsc::channel(IN_FLIGHT);
                let (node, bucket) = (self.node.clone(), what.account.clone());
                let packing = tokio::task::spawn_blocking(move || {
                    let packed = pack(
                        &node,
                        &bucket,
                        top.as_deref(),
                        &prefix,
                        &objects,
                        tx.clone(),
                    );
                    // A job that stopped reading (refused, too large) has its own error.
                    if let Err(e) = packed
                        && !tx.is_closed()
                    {
                        tracing::warn!(bucket, "packing a folder: {e}");
                        let _ = tx.blocking_send(Err(format!("packing the folder: {e}")));
                    }
                });
                let chunks = futures::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                });
                // The channel's end is the archive's end only if the packing thread returned:
                // one that died (a panic) fails the job's body instead of ending it short.
                let ended = futures::stream::once(async move {
                    packing
                        .await
                        .err()
                        .map(|e| Err(format!("packing the folder stopped: {e}")))
                })
                .filter_map(std::future::ready);
                let body: Chunks = Box::pin(chunks.chain(ended));
                (after, Some("tar.gz".to_owned()), body)
            }
        };
        self.node
            .jobs()
            .submit_then(body, ext, what.version, what.limit, uploader, after)
            .await
    }

    /// What `key` names in the account's home: a file, else a folder with something in it.
    /// The account's user must own the home (a bucket of that name made by someone else
    /// after the home was deleted is not the account's) and, to `remove`, may write it.
    fn source(&self, account: &str, key: &str, remove: bool) -> Result<Source, NodeError> {
        self.get(account)?;
        let user = Caller::user(account);
        let at = (!key.is_empty()).then_some(key);
        self.node
            .access()
            .authorize(&user, Action::ListBucket, &Resource::bucket(account))?;
        if remove {
            self.node.access().authorize(
                &user,
                Action::WriteObject,
                &Resource {
                    bucket: Some(account),
                    key: at,
                    ..Default::default()
                },
            )?;
        }
        if !key.is_empty() {
            match self.node.objects().get(account, key) {
                Ok(info) => return Ok(Source::File(Box::new(info))),
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let prefix = if key.is_empty() {
            String::new()
        } else {
            format!("{key}/")
        };
        let objects = self.node.objects().list_all(account, &prefix)?;
        if objects.is_empty() {
            return Err(NodeError::NoSuchKey {
                bucket: account.to_owned(),
                key: key.to_owned(),
            });
        }
        // A key S3 wrote may not be a path an archive can hold as it is (`a//b`, `../x`):
        // refused whole rather than packed under another name or left out (and removed).
        if let Some(odd) = objects.iter().find(|o| !archivable(&o.key[prefix.len()..])) {
            return Err(NodeError::Unsupported(format!(
                "{:?} cannot be a path in an archive (empty, `.` or `..` parts)",
                odd.key
            )));
        }
        let top = key
            .rsplit('/')
            .next()
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        Ok(Source::Folder {
            top,
            prefix,
            objects,
        })
    }
}

/// The archive (or file) as the job reads it; an `Err` item fails the job's submission.
type Chunks = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, String>> + Send>>;

/// The sending end of the archive: buffers [`CHUNK`] bytes, then hands them on (blocking while
/// the job is behind, failing when it has gone).
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, String>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the upload job stopped reading"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Counts what an object's reader gives, so a short body fails the archive instead of
/// shifting every entry after it.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Whether a key's part under the folder is a plain relative path: no empty, `.` or `..`
/// parts (a trailing `/` marks a folder).
fn archivable(rest: &str) -> bool {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    rest.is_empty() || rest.split('/').all(|part| !matches!(part, "" | "." | ".."))
}

/// `body`, failing at its end unless it gave exactly `size` bytes (a file is taken whole or
/// not at all).
fn whole(
    body: impl futures::Stream<Item = Result<Bytes, String>> + Send + 'static,
    size: u64,
) -> impl futures::Stream<Item = Result<Bytes, String>> + Send + 'static {
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = seen.clone();
    let counted = body.inspect_ok(move |chunk| {
        counting.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
    });
    let end = futures::stream::once(async move {
        let n = seen.load(std::sync::atomic::Ordering::Relaxed);
        (n != size).then(|| Err(format!("the file gave {n} bytes of {size}")))
    })
    .filter_map(std::future::ready);
    counted.chain(end)
}

/// The archive's name of an object under `prefix`: `top/rest` (`rest` for the whole home).
fn entry_name(top: Option<&str>, prefix: &str, key: &str) -> String {
    let rest = &key[prefix.len()..];
    match top {
        Some(top) if rest.is_empty() => format!("{top}/"),
        Some(top) => format!("{top}/{rest}"),
        None => rest.to_owned(),
    }
}

/// Writes the `.tar.gz` of `objects` into `tx` (on a blocking thread: tar and gzip are
/// synchronous, each object's bytes are read from its async stream through a bridge).
fn pack(
    node: &Node,
    bucket: &str,
    top: Option<&str>,
    prefix: &str,
    objects: &[ObjectInfo],
    tx: tokio::sync::mpsc::Sender<Result<Bytes, String>>,
) -> Result<(), NodeError> {
    let io = |e: std::io::Error| NodeError::Io {
        context: "writing the archive".into(),
        source: e,
    };
    let out = ChunkWriter {
        tx,
        buf: Vec::with_capacity(CHUNK),
    };
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for object in objects {
        let name = entry_name(top, prefix, &object.key);
        let mut header = tar::Header::new_gnu();
        header.set_mtime(u64::from(mtime_of(&object.meta)));
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &name, std::io::empty())
                .map_err(io)?;
            continue;
        }
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(object.meta.size);
        let plan = node.objects().read(ReadObject {
            bucket,
            key: &object.key,
            known: Some(object.clone()),
            ..Default::default()
        })?;
        let body = node
            .objects()
            .body(&plan)?
            .map_err(|e| std::io::Error::other(e.to_string()));
        let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(body));
        let mut counted = Counted {
            inner: reader,
            read: 0,
        };
        tar.append_data(&mut header, &name, &mut counted)
            .map_err(io)?;
        if counted.read != object.meta.size {
            return Err(NodeError::Io {
                context: format!("reading {}", object.key),
                source: std::io::Error::other(format!(
                    "{} bytes where {} were expected",
                    counted.read, object.meta.size
                )),
            });
        }
    }
    let gz = tar.into_inner().map_err(io)?;
    let mut out = gz.finish().map_err(io)?;
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_named_from_the_folders_parent() {
        assert_eq!(
            entry_name(Some("docs"), "a/docs/", "a/docs/x.txt"),
            "docs/x.txt"
        );
        assert_eq!(entry_name(Some("docs"), "a/docs/", "a/docs/"), "docs/");
        assert_eq!(entry_name(Some("docs"), "a/docs/", "a/docs/b/"), "docs/b/");
        assert_eq!(entry_name(None, "", "top.txt"), "top.txt");
    }

    #[test]
    fn only_plain_paths_are_archived() {
        for ok in ["a.txt", "a/b", "sub/", "", "a/b/"] {
            assert!(archivable(ok), "{ok}");
        }
        for odd in ["a//b", "../x", "./a", "a/..", "/abs", "a/./b"] {
            assert!(!archivable(odd), "{odd}");
        }
    }
}
