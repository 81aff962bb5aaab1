//! The SFTP protocol over an account's home (russh-sftp's server
//! [`Handler`](russh_sftp::server::Handler)). The home is the bucket named as the account;
//! `/a/b.txt` is the object `a/b.txt`.
//!
//! * **Directories** are prefixes: `a/` exists when a marker object `a/` does (what `mkdir`
//!   makes, as the S3 console does) or any object lies under it. Listings are the bucket's
//!   delimited listings, sent 100 entries a packet.
//! * **Reads** stream the version open from where the last read ended
//!   ([`cairn_node::Objects::read`] from that offset): only the blocks the reads touch are
//!   fetched, each verified once however many 32 KiB reads it serves.
//! * **Writes** go to a spool file (`DATA/sftp-spool/`), at any offset, so memory stays bounded
//!   whatever order a client writes in; `close` stores the spool as one object PUT and removes
//!   it. Until then the file is not visible, and a dropped connection leaves nothing behind
//!   but its spool (removed with the session). Opening an existing file for writing without
//!   `TRUNC` starts the spool from the stored bytes (append, `reput`); the new version shares
//!   every unchanged chunk with the old one, since chunks are content-addressed.
//! * **Quotas** are checked at `close`, before the PUT ([`cairn_node::Accounts::make_room`]):
//!   a file that does not fit is refused ("quota exceeded", nothing stored) or makes the
//!   oldest files go, as the account's policy says.
//! * **Rename** links the objects to their new keys (no data copied) and deletes the old keys;
//!   a directory moves every object under it.
//! * `setstat`/`fsetstat` cut a file being written to the size it names (scp truncates so)
//!   and keep a modification time (`sftp put -p`, `scp -p`, `touch`) as the object's
//!   `x-amz-meta-mtime` (Unix seconds, the metadata rclone reads and writes), which `stat`
//!   and listings then show instead of the time of the write. Modes are accepted and not
//!   kept: every file is `0644`, every folder `0755`.
//!
//! Every operation is asked of [`cairn_node::Access::authorize`] as the account's user first.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use cairn_node::access::{Action, Caller, Resource};
use cairn_node::accounts::{MTIME, home_key, mtime_of};
use cairn_node::model::records::{ObjectInfo, ObjectMeta};
use cairn_node::objects::CopyChanges;
use cairn_node::put::PutObject;
use cairn_node::read::ReadObject;
use cairn_node::{ErrorKind, Node, NodeError};
use futures::StreamExt;
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version,
};

use crate::SftpConfig;
use crate::reader::{MAX_READ, Reader};
use crate::status::fail;

/// The spool folder in the data folder.
pub const SPOOL_DIR: &str = "sftp-spool";

/// Removes the spools a previous run left (a crash or `kill -9` mid-upload: their files were
/// never closed, so never stored). Run before any session starts.
pub fn clear_spools(data_dir: &std::path::Path) {
    let dir = data_dir.join(SPOOL_DIR);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => tracing::info!("sftp: removed the spools of unfinished uploads"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("sftp: spool folder {}: {e}", dir.display()),
    }
}

/// Entries sent in one `readdir` answer.
const DIR_PAGE: usize = 100;
/// Keys listed per node call (a listing page).
const LIST_PAGE: usize = 1000;

/// An open handle.
enum Open {
    /// A directory listing, sent a page at a time.
    Dir(Vec<File>),
    /// A file open for reading.
    Read(Box<Reader>),
    /// A file open for writing: its key and spool.
    Write {
        key: String,
        spool: std::fs::File,
        path: PathBuf,
        /// A modification time set before `close`, kept with the file.
        mtime: Option<u32>,
    },
}

/// One SFTP session in an account's home.
pub struct Home {
    node: Node,
    account: String,
    config: SftpConfig,
    handles: HashMap<String, Open>,
    next: u64,
}

impl Home {
    /// A session of `account` (whose home is the bucket of that name).
    pub fn new(node: Node, account: String, config: SftpConfig) -> Home {
        Home {
            node,
            account,
            config,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn bucket(&self) -> &str {
        &self.account
    }

    /// Asks the node whether the account may do `action` to `key` (or its home).
    fn may(&self, action: Action, key: Option<&str>) -> Result<(), StatusCode> {
        let resource = Resource {
            bucket: Some(self.bucket()),
            key,
            ..Default::default()
        };
        self.node
            .access()
            .authorize(&Caller::user(&self.account), action, &resource)
            .map(drop)
            .map_err(|e| fail(&self.account, e))
    }

    /// The object at `key`, if one is there.
    fn file(&self, key: &str) -> Result<Option<ObjectInfo>, StatusCode> {
        if key.is_empty() {
            return Ok(None);
        }
        match self.node.objects().get(self.bucket(), key) {
            Ok(info) => Ok(Some(info)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(&self.account, e)),
        }
    }

    /// Whether `key` is a directory: the home, a marker, or a prefix something lies under.
    fn is_dir(&self, key: &str) -> Result<bool, StatusCode> {
        if key.is_empty() {
            return Ok(true);
        }
        Ok(!self.first_under(key, 1)?.is_empty())
    }

    /// The first `n` objects under the folder `key` (its marker `key/` first, when there).
    fn first_under(&self, key: &str, n: usize) -> Result<Vec<ObjectInfo>, StatusCode> {
        let page = self
            .node
            .objects()
            .list(self.bucket(), &format!("{key}/"), None, None, n)
            .map_err(|e| fail(&self.account, e))?;
        Ok(page.objects)
    }

    /// Every key under `prefix` (no delimiter).
    fn keys_under(&self, prefix: &str) -> Result<Vec<String>, StatusCode> {
        let all = self
            .node
            .objects()
            .list_all(self.bucket(), prefix)
            .map_err(|e| fail(&self.account, e))?;
        Ok(all.into_iter().map(|o| o.key).collect())
    }

    /// The entries of the directory `key`.
    fn entries(&self, key: &str) -> Result<Vec<File>, StatusCode> {
        let prefix = if key.is_empty() {
            String::new()
        } else {
            format!("{key}/")
        };
        let mut files = vec![File::new(".", dir_attrs()), File::new("..", dir_attrs())];
        let mut after: Option<String> = None;
        loop {
            let page = self
                .node
                .objects()
                .list(
                    self.bucket(),
                    &prefix,
                    Some("/"),
                    after.as_deref(),
                    LIST_PAGE,
                )
                .map_err(|e| fail(&self.account, e))?;
            for object in &page.objects {
                let name = &object.key[prefix.len()..];
                if !name.is_empty() {
                    files.push(File::new(name, file_attrs(object)));
                }
            }
            for dir in &page.common_prefixes {
                let name = dir[prefix.len()..].trim_end_matches('/');
                if !name.is_empty() {
                    files.push(File::new(name, dir_attrs()));
                }
            }
            match (page.truncated, page.next_marker) {
                (true, Some(next)) => after = Some(next),
                _ => return Ok(files),
            }
        }
    }

    fn handle(&mut self, open: Open) -> String {
        self.next += 1;
        let name = format!("h{}", self.next);
        self.handles.insert(name.clone(), open);
        name
    }

    fn attrs_of(&self, key: &str) -> Result<FileAttributes, StatusCode> {
        self.may(Action::ListBucket, None)?;
        if let Some(info) = self.file(key)? {
            return Ok(file_attrs(&info));
        }
        if self.is_dir(key)? {
            Ok(dir_attrs())
        } else {
            Err(StatusCode::NoSuchFile)
        }
    }

    /// Stores `body` as the object `key`.
    async fn store(
        &self,
        key: &str,
        body: impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin,
        mtime: Option<u32>,
    ) -> Result<ObjectInfo, StatusCode> {
        let mut meta = ObjectMeta::default();
        if let Some(mtime) = mtime {
            meta.user.insert(MTIME.to_owned(), mtime.to_string());
        }
        self.node
            .objects()
            .put(PutObject {
                bucket: self.bucket().to_owned(),
                key: key.to_owned(),
                body,
                version: self.config.cid_version,
                meta,
                condition: Default::default(),
                sse: Default::default(),
                check: None,
            })
            .await
            .map_err(|e| fail(&self.account, e))
    }

    /// A new spool file for a write.
    fn spool(&self) -> Result<(std::fs::File, PathBuf), StatusCode> {
        let dir = self.node.repo().data_dir().join(SPOOL_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| io_fail("spool folder", e))?;
        let mut tag = [0u8; 8];
        getrandom::fill(&mut tag).map_err(|_| StatusCode::Failure)?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!("{}-{tag}", self.account));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_fail("spool file", e))?;
        Ok((file, path))
    }

    /// Moves the object `from` to `to` without copying its data.
    async fn move_key(&self, from: &str, to: &str) -> Result<(), StatusCode> {
        let (bucket, from, to) = (self.bucket().to_owned(), from.to_owned(), to.to_owned());
        self.node
            .blocking(move |node| {
                node.objects().link(
                    (&bucket, &from, None),
                    (&bucket, &to),
                    CopyChanges::default(),
                )?;
                node.objects().delete(&bucket, &from, None)?;
                Ok(())
            })
            .await
            .map_err(|e| fail(&self.account, e))
    }

    /// Keeps `mtime` as the stored file `key`'s modification time.
    async fn set_mtime(&self, key: &str, mtime: u32) -> Result<(), StatusCode> {
        self.may(Action::WriteObject, Some(key))?;
        let (bucket, key) = (self.bucket().to_owned(), key.to_owned());
        self.node
            .blocking(move |node| {
                node.objects()
                    .update_meta(&bucket, &key, |meta| {
                        meta.user.insert(MTIME.to_owned(), mtime.to_string());
                    })
                    .map(drop)
            })
            .await
            .map_err(|e| fail(&self.account, e))
    }

    async fn delete(&self, key: &str) -> Result<(), StatusCode> {
        let (bucket, key) = (self.bucket().to_owned(), key.to_owned());
        self.node
            .blocking(move |node| node.objects().delete(&bucket, &key, None).map(drop))
            .await
            .map_err(|e| fail(&self.account, e))
    }
}

/// `setstat` on a file open for writing: a size cuts (or grows) its spool, a time is kept for
/// `close`.
fn change_spool(open: &mut Open, attrs: &FileAttributes) -> Result<(), StatusCode> {
    if let Open::Write { spool, mtime, .. } = open {
        if let Some(size) = attrs.size {
            spool.set_len(size).map_err(|e| io_fail("spool size", e))?;
        }
        if attrs.mtime.is_some() {
            *mtime = attrs.mtime;
        }
    }
    Ok(())
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn io_fail(what: &str, e: std::io::Error) -> StatusCode {
    tracing::warn!("sftp {what}: {e}");
    StatusCode::Failure
}

fn dir_attrs() -> FileAttributes {
    FileAttributes {
        size: Some(0),
        permissions: Some(0o40755),
        ..FileAttributes::empty()
    }
}

fn file_attrs(info: &ObjectInfo) -> FileAttributes {
    let mtime = mtime_of(&info.meta);
    FileAttributes {
        size: Some(info.meta.size),
        permissions: Some(0o100644),
        mtime: Some(mtime),
        atime: Some(mtime),
        ..FileAttributes::empty()
    }
}

impl russh_sftp::server::Handler for Home {
    type Error = StatusCode;

    fn unimplemented(&self) -> StatusCode {
        StatusCode::OpUnsupported
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Result<Version, StatusCode> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusCode> {
        Ok(Name {
            id,
            files: vec![File::dummy(format!("/{}", home_key(&path)))],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusCode> {
        let attrs = self.attrs_of(&home_key(&path))?;
        Ok(Attrs { id, attrs })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusCode> {
        self.stat(id, path).await
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusCode> {
        let attrs = match self.handles.get(&handle) {
            Some(Open::Dir(_)) => dir_attrs(),
            Some(Open::Read(reader)) => file_attrs(&reader.info),
            Some(Open::Write { spool, mtime, .. }) => FileAttributes {
                size: Some(
                    spool
                        .metadata()
                        .map_err(|e| io_fail("spool size", e))?
                        .len(),
                ),
                permissions: Some(0o100644),
                mtime: *mtime,
                atime: *mtime,
                ..FileAttributes::empty()
            },
            None => return Err(StatusCode::Failure),
        };
        Ok(Attrs { id, attrs })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusCode> {
        let key = home_key(&path);
        // A file being written here in this session: its spool takes the change, kept at
        // close (scp truncates after writing, then sets the time).
        let open = self.handles.values_mut().find_map(|open| match open {
            Open::Write { key: k, .. } if *k == key => Some(open),
            _ => None,
        });
        if let Some(open) = open {
            change_spool(open, &attrs)?;
            return Ok(ok(id));
        }
        self.attrs_of(&key)?;
        if let Some(mtime) = attrs.mtime
            && self.file(&key)?.is_some()
        {
            self.set_mtime(&key, mtime).await?;
        }
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> Result<Status, StatusCode> {
        match self.handles.get_mut(&handle) {
            Some(open @ Open::Write { .. }) => change_spool(open, &attrs)?,
            Some(Open::Read(reader)) => {
                if let Some(mtime) = attrs.mtime {
                    let key = reader.info.key.clone();
                    self.set_mtime(&key, mtime).await?;
                }
            }
            Some(Open::Dir(_)) => {}
            None => return Err(StatusCode::Failure),
        }
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusCode> {
        let key = home_key(&path);
        self.may(Action::ListBucket, None)?;
        if !self.is_dir(&key)? {
            return Err(if self.file(&key)?.is_some() {
                StatusCode::Failure
            } else {
                StatusCode::NoSuchFile
            });
        }
        let mut entries = self.entries(&key)?;
        entries.reverse();
        let handle = self.handle(Open::Dir(entries));
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusCode> {
        let Some(Open::Dir(left)) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure);
        };
        if left.is_empty() {
            return Err(StatusCode::Eof);
        }
        let at = left.len().saturating_sub(DIR_PAGE);
        let mut files = left.split_off(at);
        files.reverse();
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Result<Handle, StatusCode> {
        let key = home_key(&filename);
        if key.is_empty() || self.is_dir(&key)? {
            return Err(StatusCode::Failure);
        }
        let writes = pflags.intersects(
            OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        );
        if !writes {
            self.may(Action::ReadObject, Some(&key))?;
            let Some(info) = self.file(&key)? else {
                return Err(StatusCode::NoSuchFile);
            };
            let handle = self.handle(Open::Read(Box::new(Reader::new(info))));
            return Ok(Handle { id, handle });
        }
        self.may(Action::WriteObject, Some(&key))?;
        let existing = self.file(&key)?;
        match (&existing, pflags.contains(OpenFlags::CREATE)) {
            (Some(_), _) if pflags.contains(OpenFlags::EXCLUDE) => {
                return Err(StatusCode::Failure);
            }
            (None, false) => return Err(StatusCode::NoSuchFile),
            _ => {}
        }
        let (spool, path) = self.spool()?;
        if let (Some(_), false) = (&existing, pflags.contains(OpenFlags::TRUNCATE)) {
            // Append or resume: the spool starts as the stored file.
            let plan = self
                .node
                .objects()
                .read(ReadObject {
                    bucket: self.bucket(),
                    key: &key,
                    ..Default::default()
                })
                .map_err(|e| fail(&self.account, e))?;
            let mut body = self
                .node
                .objects()
                .body(&plan)
                .map_err(|e| fail(&self.account, e))?;
            let mut at = 0u64;
            while let Some(piece) = body.next().await {
                let piece = piece.map_err(|e| fail(&self.account, e))?;
                spool
                    .write_all_at(&piece, at)
                    .map_err(|e| io_fail("spool write", e))?;
                at += piece.len() as u64;
            }
        }
        let handle = self.handle(Open::Write {
            key,
            spool,
            path,
            mtime: None,
        });
        Ok(Handle { id, handle })
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusCode> {
        match self.handles.get_mut(&handle) {
            Some(Open::Read(reader)) => {
                let data = reader.read(&self.node, &self.account, offset, len).await?;
                Ok(Data { id, data })
            }
            Some(Open::Write { spool, .. }) => {
                let mut data = vec![0u8; len.min(MAX_READ) as usize];
                let n = spool
                    .read_at(&mut data, offset)
                    .map_err(|e| io_fail("spool read", e))?;
                if n == 0 && len > 0 {
                    return Err(StatusCode::Eof);
                }
                data.truncate(n);
                Ok(Data { id, data })
            }
            _ => Err(StatusCode::Failure),
        }
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusCode> {
        let Some(Open::Write { spool, .. }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure);
        };
        spool
            .write_all_at(&data, offset)
            .map_err(|e| io_fail("spool write", e))?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusCode> {
        let Some(open) = self.handles.remove(&handle) else {
            return Err(StatusCode::Failure);
        };
        let Open::Write {
            key,
            spool,
            path,
            mtime,
        } = open
        else {
            return Ok(ok(id));
        };
        let size = spool.metadata().map(|m| m.len()).unwrap_or(0);
        drop(spool);
        // The quota first: a file that does not fit is not stored (or the oldest files make
        // room, as the account's policy says).
        let (account, at) = (self.account.clone(), key.clone());
        let room = self
            .node
            .blocking(move |node| node.accounts().make_room(&account, &at, size))
            .await;
        if let Err(e) = room {
            let _ = tokio::fs::remove_file(&path).await;
            return match e {
                NodeError::QuotaExceeded { .. } => Ok(Status {
                    id,
                    status_code: StatusCode::Failure,
                    error_message: e.to_string(),
                    language_tag: "en-US".into(),
                }),
                e => Err(fail(&self.account, e)),
            };
        }
        let stored = match tokio::fs::File::open(&path).await {
            Ok(file) => {
                // 1 MiB reads: the default 4 KiB made a quarter million stream items a GiB.
                let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
                self.store(&key, body, mtime).await
            }
            Err(e) => Err(io_fail("spool open", e)),
        };
        if let Err(e) = tokio::fs::remove_file(&path).await {
            tracing::warn!("sftp spool {}: {e}", path.display());
        }
        stored.map(|_| ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> Result<Status, StatusCode> {
        let key = home_key(&path);
        self.may(Action::WriteObject, Some(&key))?;
        if key.is_empty() || self.file(&key)?.is_some() || self.is_dir(&key)? {
            return Err(StatusCode::Failure);
        }
        let empty = futures::stream::iter(Vec::<Result<bytes::Bytes, std::io::Error>>::new());
        self.store(&format!("{key}/"), empty, None).await?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusCode> {
        let key = home_key(&path);
        self.may(Action::WriteObject, Some(&key))?;
        if key.is_empty() {
            return Err(StatusCode::Failure);
        }
        let marker = format!("{key}/");
        match self.first_under(&key, 2)?.as_slice() {
            [] => Err(StatusCode::NoSuchFile),
            [only] if only.key == marker => {
                self.delete(&marker).await?;
                Ok(ok(id))
            }
            _ => Err(StatusCode::Failure),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusCode> {
        let key = home_key(&filename);
        self.may(Action::WriteObject, Some(&key))?;
        if self.file(&key)?.is_none() {
            return Err(if self.is_dir(&key)? {
                StatusCode::Failure
            } else {
                StatusCode::NoSuchFile
            });
        }
        self.delete(&key).await?;
        Ok(ok(id))
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusCode> {
        let (from, to) = (home_key(&oldpath), home_key(&newpath));
        self.may(Action::WriteObject, Some(&from))?;
        self.may(Action::WriteObject, Some(&to))?;
        if from.is_empty() || to.is_empty() || to.starts_with(&format!("{from}/")) {
            return Err(StatusCode::Failure);
        }
        if self.file(&to)?.is_some() || self.is_dir(&to)? {
            return Err(StatusCode::Failure);
        }
        if self.file(&from)?.is_some() {
            self.move_key(&from, &to).await?;
            return Ok(ok(id));
        }
        let prefix = format!("{from}/");
        let keys = self.keys_under(&prefix)?;
        if keys.is_empty() {
            return Err(StatusCode::NoSuchFile);
        }
        for key in keys {
            let moved = format!("{to}/{}", &key[prefix.len()..]);
            self.move_key(&key, &moved).await?;
        }
        Ok(ok(id))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // Files never closed are not stored: their spools go.
        for open in self.handles.values() {
            if let Open::Write { path, .. } = open {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spools_left_by_a_crash_are_removed_at_start() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join(SPOOL_DIR);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("alice-0011"), b"half an upload").unwrap();
        clear_spools(data.path());
        assert!(!dir.exists());
        clear_spools(data.path()); // nothing there: fine
    }
}
