//! The on-disk layout of blocks: `blocks/<xy>/<key>`, where `key` is the base32 of the block's
//! multihash (so CIDv0 and CIDv1 names of the same bytes share one file) and `xy` its
//! next-to-last two characters, as in Kubo's flatfs. A write goes to a `.tmp-*` file in the
//! block's own shard folder and is renamed into place (a same-folder rename: measured 3× less
//! kernel time than renaming across folders, which locks both); `quarantine/` receives blocks
//! that failed verification. Temp files a crash leaves behind are swept by GC (a temp file is
//! named after its block, so GC leaves the ones a batch still holds).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cairn_dag::Cid;
use cid::multibase::Base;

use crate::{StoreError, io_err};

/// Prefix of in-progress writes inside a shard folder.
const TMP_PREFIX: &str = ".tmp-";

pub(crate) struct BlockFiles {
    blocks: PathBuf,
    quarantine: PathBuf,
    counter: AtomicU64,
}

/// A file found in the shard folders and what it is.
pub(crate) type StoredFile = (PathBuf, FileKind);

/// What a file in the shard folders is, by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A block file: the multihash its name stands for.
    Block(Vec<u8>),
    /// An in-progress (or abandoned) write of the block with this multihash, if readable.
    Temp(Option<Vec<u8>>),
    /// Anything else.
    Stray,
}

impl FileKind {
    fn of(name: &str) -> FileKind {
        match name.strip_prefix(TMP_PREFIX) {
            Some(rest) => FileKind::Temp(rest.split('.').next().and_then(multihash_of_key)),
            None => multihash_of_key(name).map_or(FileKind::Stray, FileKind::Block),
        }
    }
}

/// The file name of a block: base32 (lowercase, unpadded) of its multihash.
pub fn key_of(cid: &Cid) -> String {
    Base::Base32Lower.encode(cid.hash().to_bytes())
}

/// The multihash bytes a file name stands for.
pub fn multihash_of_key(key: &str) -> Option<Vec<u8>> {
    Base::Base32Lower.decode(key).ok()
}

fn shard_of(key: &str) -> &str {
    let n = key.len();
    &key[n.saturating_sub(3)..n.saturating_sub(1)]
}

impl BlockFiles {
    pub(crate) fn open(root: &Path) -> Result<Self, StoreError> {
        let files = BlockFiles {
            blocks: root.join("blocks"),
            quarantine: root.join("quarantine"),
            counter: AtomicU64::new(0),
        };
        for dir in [&files.blocks, &files.quarantine] {
            fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
        }
        Ok(files)
    }

    pub(crate) fn path_of(&self, cid: &Cid) -> PathBuf {
        let key = key_of(cid);
        self.blocks.join(shard_of(&key)).join(key)
    }

    pub(crate) fn exists(&self, cid: &Cid) -> bool {
        self.path_of(cid).is_file()
    }

    pub(crate) fn read(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        match fs::read(self.path_of(cid)) {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(*cid)),
            Err(e) => Err(StoreError::Io {
                context: format!("read block {cid}"),
                source: e,
            }),
        }
    }

    /// Writes a block to a temp file and renames it into place, without fsync: the batch's
    /// final sync makes it durable.
    pub(crate) fn write(&self, cid: &Cid, data: &[u8]) -> Result<(), StoreError> {
        let path = self.path_of(cid);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(
            "{TMP_PREFIX}{}.{}.{n}",
            key_of(cid),
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut f = match fs::File::create(&tmp) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir_all(path.parent().expect("block path has a shard dir"))?;
                    fs::File::create(&tmp)?
                }
                other => other?,
            };
            f.write_all(data)?;
            drop(f);
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::Io {
                context: format!("write block {cid}"),
                source: e,
            }
        })
    }

    pub(crate) fn remove(&self, cid: &Cid) -> Result<(), StoreError> {
        match fs::remove_file(self.path_of(cid)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
                context: format!("remove block {cid}"),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn quarantine(&self, cid: &Cid) -> Result<PathBuf, StoreError> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let to = self.quarantine.join(format!("{}.{stamp}", key_of(cid)));
        fs::rename(self.path_of(cid), &to).map_err(io_err(format!("quarantine block {cid}")))?;
        Ok(to)
    }

    /// Every file in the shard folders: its path and what its name says it is.
    pub(crate) fn walk(&self) -> Result<Vec<StoredFile>, StoreError> {
        let mut out = Vec::new();
        for shard in fs::read_dir(&self.blocks).map_err(io_err("list blocks"))? {
            let shard = shard.map_err(io_err("list blocks"))?;
            if !shard.path().is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path()).map_err(io_err("list blocks"))? {
                let entry = entry.map_err(io_err("list blocks"))?;
                let kind = entry
                    .file_name()
                    .to_str()
                    .map_or(FileKind::Stray, FileKind::of);
                out.push((entry.path(), kind));
            }
        }
        Ok(out)
    }

    /// Makes the given blocks' files durable. A few files are fsynced one by one, with their
    /// shard folders (a small S3 PUT must not wait for the whole filesystem); many — a big
    /// import — are made durable by one `syncfs`.
    pub(crate) fn sync_blocks(&self, cids: &[Cid]) -> Result<(), StoreError> {
        const FEW: usize = 64;
        if cids.len() > FEW {
            return self.sync();
        }
        let mut dirs = std::collections::BTreeSet::new();
        for cid in cids {
            let path = self.path_of(cid);
            fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(io_err(format!("fsync block {cid}")))?;
            if let Some(dir) = path.parent() {
                dirs.insert(dir.to_path_buf());
            }
        }
        dirs.insert(self.blocks.clone()); // new shard folders are entries of blocks/
        for dir in dirs {
            fs::File::open(&dir)
                .and_then(|f| f.sync_all())
                .map_err(io_err(format!("fsync {}", dir.display())))?;
        }
        Ok(())
    }

    /// Makes every write so far durable: one `syncfs` of the store's filesystem on Linux (data
    /// and the renames' directory entries), `sync` elsewhere.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let dir = fs::File::open(&self.blocks).map_err(io_err("open blocks dir"))?;
            // SAFETY: syncfs takes a valid open file descriptor, which `dir` is for this call.
            let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
            if rc != 0 {
                return Err(StoreError::Io {
                    context: "syncfs".into(),
                    source: std::io::Error::last_os_error(),
                });
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            // SAFETY: sync(2) has no preconditions.
            unsafe { libc::sync() };
        }
        Ok(())
    }
}
