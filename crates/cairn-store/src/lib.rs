//! Cairn's durable block store.
//!
//! * [`files`] — one content-addressed file per block under `blocks/`, written temp → rename,
//!   re-hashed on every read; a block that fails its hash is moved to `quarantine/`.
//! * [`index`] — the redb database `meta.redb`: the set of *durable* blocks (synced to disk
//!   before they were recorded) with sizes, and the pins with their reference counts.
//! * [`batch`] — a [`WriteBatch`] groups the blocks of one import: written unsynced, made
//!   durable by one filesystem sync and one redb commit (which also pins the roots), or removed
//!   again on abort. It holds the blocks it writes or relies on, so GC leaves them.
//! * [`meta`] — bucket and object records, updated atomically with the blocks they need.
//! * [`roots`] — bucket roots: the keys changed since a bucket's last root, every root of its
//!   history, and the index from a CID to the objects that have it.
//! * [`pieces`] — blocks this node keeps for the cluster (replicas and stripe shards), the
//!   stripe manifests it holds and which stripe each data block belongs to.
//! * [`refs`] — what this node's data still references, for piece GC: the blocks forwarding
//!   batches forwarded (`REMOTE` rows) and the last GC mark; [`Store::referenced`] answers
//!   the holders of this node's units.
//! * [`snapshots`] — named snapshots of `cairn backup` (GC roots, not pins).
//! * [`gc`] — mark from pinned roots, object roots and bucket roots, sweep everything else
//!   that no unfinished batch holds. Its module docs give the locking argument: GC never
//!   waits for a streaming write, and never sweeps what a reference being added needs.
//!
//! A crash at any point leaves a store that opens cleanly: block files not in the index are
//! never trusted without rewriting, the index only names blocks that were synced before it was
//! committed, and GC sweeps leftover temp files with the other unreachable files.

#![warn(missing_docs)]

pub mod batch;
pub mod files;
pub mod gc;
pub mod index;
pub mod meta;
pub mod pieces;
pub mod refs;
pub mod roots;
pub mod scrub;
pub mod snapshots;
pub mod table;
mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use cairn_dag::{Cid, DagError};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use batch::{BlockSink, WriteBatch};
pub use gc::GcStats;
pub use index::BlockInfo;
pub use meta::{LoginSeen, MetaTxn, ObjectEntry, PartEntry, VersionEntry};
pub use refs::{LastMark, RemoteRow};
pub use roots::{DirtyKey, RootRow};
pub use snapshots::SnapshotRow;
pub use table::Table;

/// Errors of the block store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A block's bytes on disk do not match its CID; the file was quarantined.
    #[error("CorruptBlock: block {cid} failed verification and was moved to {quarantined}")]
    CorruptBlock {
        /// The block.
        cid: Cid,
        /// Where the bad file now is.
        quarantined: PathBuf,
    },
    /// The block is not in the store.
    #[error("block {0} not found in the store")]
    NotFound(Cid),
    /// Filesystem failure.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Metadata database failure.
    #[error("metadata database")]
    Db(#[from] redb::Error),
    /// The data folder is in use by another process.
    #[error("data folder {0} is in use by another cairn process")]
    Locked(PathBuf),
    /// A block could not be decoded.
    #[error(transparent)]
    Dag(Box<DagError>),
    /// A batch's [`BlockSink`] refused a block (e.g. it could not be placed on peers).
    #[error("{0}")]
    Sink(String),
    /// A record of a typed table ([`table::Table`]) could not be encoded or decoded.
    #[error("unreadable record in table {table:?}: {reason}")]
    Record {
        /// The table.
        table: &'static str,
        /// Why.
        reason: String,
    },
    /// This thread already holds the store's GC lock (a commit or update started inside
    /// another one's transaction): refused rather than deadlocking.
    #[error("the store's GC lock is already held by this thread")]
    GcLockHeld,
}

impl From<DagError> for StoreError {
    fn from(e: DagError) -> Self {
        StoreError::Dag(Box::new(e))
    }
}

macro_rules! impl_from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
impl_from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
    let context = context.into();
    move |source| StoreError::Io { context, source }
}

/// Where a node gets blocks its store does not have (the cluster, the network); called on
/// blocking threads. The remote keeps what it fetches (through [`Store::put_fetched_many`], in groups), so a read
/// does not wait for a commit per block.
pub trait RemoteBlocks: Send + Sync {
    /// The block's bytes, if some peer has it (they are verified again before use).
    fn fetch(&self, cid: &Cid) -> Option<Bytes>;
    /// A hint that these blocks will be read soon (the children of a node just fetched): ask
    /// for them now, in parallel, and store them as they come.
    fn prefetch(&self, _cids: &[Cid]) {}
}

pub(crate) struct Inner {
    pub(crate) files: files::BlockFiles,
    pub(crate) index: index::Index,
    /// Every transaction that adds references holds this shared (for that transaction only);
    /// GC holds it exclusively from its mark snapshot to the end of its sweep. See [`gc`].
    pub(crate) gc_lock: RwLock<()>,
    /// Blocks unfinished batches wrote or rely on, with the number of batches holding each:
    /// GC sweeps none of them.
    pub(crate) held: Mutex<std::collections::HashMap<Vec<u8>, u32>>,
    /// What the last GC run's own roots reached (see [`refs`]); `None` until one ran.
    pub(crate) last_mark: Mutex<Option<Arc<refs::LastMark>>>,
    root: PathBuf,
}

thread_local! {
    /// Whether this thread holds the GC lock (either way).
    static GC_LOCK_HERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A guard of the GC lock that marks this thread as holding it.
pub(crate) struct GcLock<G> {
    _guard: G,
}

impl<G> GcLock<G> {
    fn take(lock: impl FnOnce() -> G) -> Result<Self, StoreError> {
        if GC_LOCK_HERE.with(|here| here.replace(true)) {
            return Err(StoreError::GcLockHeld);
        }
        Ok(GcLock { _guard: lock() })
    }
}

impl<G> Drop for GcLock<G> {
    fn drop(&mut self) {
        GC_LOCK_HERE.with(|here| here.set(false));
    }
}

/// A handle to an open store; cheap to clone and safe to share between threads.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish()
    }
}

/// Whether a block is kept in the database instead of a file of its own: small dag-cbor
/// blocks (bucket version and object records), so the roots job does not create one file per
/// object version. Every other block is a file.
pub fn inline_eligible(cid: &Cid, len: usize) -> bool {
    cid.codec() == cairn_dag::DAG_CBOR && len <= INLINE_MAX
}

/// The largest block kept inline.
pub const INLINE_MAX: usize = 4096;

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let root = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(io_err(format!("create {}", root.display())))?;
        let files = files::BlockFiles::open(&root)?;
        let index = index::Index::open(&root.join("meta.redb"), &root)?;
        Ok(Store {
            inner: Arc::new(Inner {
                files,
                index,
                gc_lock: RwLock::new(()),
                held: Mutex::new(Default::default()),
                last_mark: Mutex::new(None),
                root,
            }),
        })
    }

    /// The data folder.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Reads and verifies a block stored here; the same as [`get_local`](Self::get_local).
    /// The store never reaches out: the node's block source asks the cluster and the network
    /// after it.
    pub fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        self.get_local(cid)
    }

    /// Stores blocks fetched from the network (verified by the caller) in one commit, unpinned:
    /// cache entries GC may sweep. Already-stored blocks are skipped.
    pub fn put_fetched_many(&self, blocks: &[(Cid, Bytes)]) -> Result<(), StoreError> {
        let batch = self.batch();
        for (cid, data) in blocks {
            batch.put(&cairn_dag::Block {
                cid: *cid,
                data: data.clone(),
            })?;
        }
        if batch.written() == 0 {
            return Ok(());
        }
        batch.commit(&[])
    }

    /// Reads and verifies a block stored here (never the network). A block that fails
    /// verification is quarantined and reported as [`StoreError::CorruptBlock`]; wrong bytes are
    /// never returned.
    pub fn get_local(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        let data = match self.inner.files.read(cid) {
            Err(StoreError::NotFound(_)) if cid.codec() == cairn_dag::DAG_CBOR => self
                .inner
                .index
                .inline(cid)?
                .ok_or(StoreError::NotFound(*cid))?,
            other => other?,
        };
        match cairn_dag::verify(cid, &data) {
            Ok(()) => Ok(data),
            Err(DagError::HashMismatch(_)) => {
                // A concurrent reader may have moved it already; the verdict stands either way.
                let quarantined = self
                    .inner
                    .files
                    .quarantine(cid)
                    .unwrap_or_else(|_| self.inner.files.path_of(cid));
                self.inner.index.forget(&[cid.hash().to_bytes()])?;
                tracing::error!(%cid, path = %quarantined.display(), "corrupt block quarantined");
                Err(StoreError::CorruptBlock {
                    cid: *cid,
                    quarantined,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the block is durably stored (indexed and its file present).
    pub fn has(&self, cid: &Cid) -> Result<bool, StoreError> {
        Ok(self.inner.index.block(cid)?.is_some()
            && (self.inner.files.exists(cid)
                || (cid.codec() == cairn_dag::DAG_CBOR && self.inner.index.inline(cid)?.is_some())))
    }

    /// Index facts about a durable block.
    pub fn block_info(&self, cid: &Cid) -> Result<Option<BlockInfo>, StoreError> {
        self.inner.index.block(cid)
    }

    /// Starts a batch of writes.
    pub fn batch(&self) -> WriteBatch {
        WriteBatch::new(self.clone(), None)
    }

    /// Starts a batch whose blocks go to `sink` (the cluster, which places them on their
    /// targets) instead of this node's block files; only blocks kept inline are also written
    /// here. Committing it records the metadata.
    pub fn forwarding_batch(&self, sink: Arc<dyn BlockSink>) -> WriteBatch {
        WriteBatch::new(self.clone(), Some(sink))
    }

    /// The GC lock, shared, for one transaction that adds references. Refused when this
    /// thread holds it already: parking_lot's lock is fair, so a second shared lock behind a
    /// waiting GC would never be granted.
    pub(crate) fn gc_shared(&self) -> Result<GcLock<RwLockReadGuard<'_, ()>>, StoreError> {
        GcLock::take(|| self.inner.gc_lock.read())
    }

    /// The GC lock, exclusively, for a GC run.
    pub(crate) fn gc_exclusive(&self) -> Result<GcLock<RwLockWriteGuard<'_, ()>>, StoreError> {
        GcLock::take(|| self.inner.gc_lock.write())
    }

    /// Pinned roots and their reference counts.
    pub fn pins(&self) -> Result<Vec<(Cid, u64)>, StoreError> {
        self.inner.index.pins()
    }

    /// Whether `cid` is pinned.
    pub fn is_pinned(&self, cid: &Cid) -> Result<bool, StoreError> {
        self.inner.index.is_pinned(cid)
    }

    /// Removes the pin of `cid` entirely; returns whether it was pinned.
    pub fn unpin(&self, cid: &Cid) -> Result<bool, StoreError> {
        self.inner.index.unpin(cid)
    }

    /// Number of durable blocks and their total bytes.
    pub fn stats(&self) -> Result<(u64, u64), StoreError> {
        self.inner.index.totals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::CidVersion;
    use cairn_dag::file::encode_bytes;

    #[test]
    fn flipped_byte_is_quarantined_and_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (blocks, root) = encode_bytes(b"hello world\n", CidVersion::V0);
        let batch = store.batch();
        for b in &blocks {
            batch.put(b).unwrap();
        }
        batch.commit(&[root.link.cid]).unwrap();
        assert_eq!(store.get(&root.link.cid).unwrap(), blocks[0].data);

        let path = store.inner.files.path_of(&root.link.cid);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        match store.get(&root.link.cid) {
            Err(StoreError::CorruptBlock { quarantined, .. }) => {
                assert!(quarantined.starts_with(dir.path().join("quarantine")));
                assert!(quarantined.exists());
            }
            other => panic!("expected CorruptBlock, got {other:?}"),
        }
        assert!(!path.exists());
        assert!(!store.has(&root.link.cid).unwrap());
        assert!(matches!(
            store.get(&root.link.cid),
            Err(StoreError::NotFound(_))
        ));

        // re-adding repairs it
        let batch = store.batch();
        batch.put(&blocks[0]).unwrap();
        batch.commit(&[]).unwrap();
        assert_eq!(store.get(&root.link.cid).unwrap(), blocks[0].data);
    }

    #[test]
    fn aborted_batch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (blocks, _) = encode_bytes(&vec![9u8; 600_000], CidVersion::V1);
        let batch = store.batch();
        for b in &blocks {
            batch.put(b).unwrap();
        }
        drop(batch);
        for b in &blocks {
            assert!(!store.has(&b.cid).unwrap());
            assert!(matches!(store.get(&b.cid), Err(StoreError::NotFound(_))));
        }
        assert_eq!(store.stats().unwrap(), (0, 0));
    }

    #[test]
    fn same_block_from_many_threads_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // a zero-filled file: every leaf is the same block
        let (blocks, root) = encode_bytes(&vec![0u8; 8 * cairn_dag::CHUNK_SIZE], CidVersion::V1);
        let leaf = blocks[0].clone();
        let batch = store.batch();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| batch.put(&leaf).unwrap());
            }
        });
        assert_eq!(batch.written(), 1);
        drop(batch);
        assert!(!store.inner.files.exists(&leaf.cid), "abort must remove it");
        assert!(store.inner.held.lock().is_empty());

        let batch = store.batch();
        for b in &blocks {
            batch.put(b).unwrap();
        }
        batch.commit(&[root.link.cid]).unwrap();
        assert_eq!(store.stats().unwrap().0, 2, "one leaf + the root");
        assert!(store.inner.held.lock().is_empty());
    }

    #[test]
    fn small_dag_cbor_blocks_live_in_the_database_and_gc_sweeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (blocks, root) = encode_bytes(b"data", CidVersion::V1);
        let record =
            serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::Link(root.link.cid)).unwrap();
        let record = cairn_dag::Block::new(CidVersion::V1, cairn_dag::DAG_CBOR, record).unwrap();
        let batch = store.batch();
        batch.put(&blocks[0]).unwrap();
        batch.put(&record).unwrap();
        assert_eq!(batch.written(), 2);
        batch.commit(&[record.cid]).unwrap();
        assert!(
            !store.inner.files.exists(&record.cid),
            "no file for the record"
        );
        assert!(store.has(&record.cid).unwrap());
        assert_eq!(store.get(&record.cid).unwrap(), record.data);
        // the record keeps what it links to
        assert_eq!(store.gc().unwrap().removed, 0);
        assert_eq!(store.get(&root.link.cid).unwrap(), blocks[0].data);
        store.unpin(&record.cid).unwrap();
        store.gc().unwrap();
        assert!(!store.has(&record.cid).unwrap());
        assert!(matches!(
            store.get(&record.cid),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(store.stats().unwrap(), (0, 0));
    }

    #[test]
    fn the_gc_lock_is_never_taken_twice_on_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Inside a commit's transaction, another update or a GC is refused, not deadlocked.
        let nested = store
            .batch()
            .commit_with(|_| store.update(|_| Ok::<_, StoreError>(())));
        assert!(matches!(nested, Err(StoreError::GcLockHeld)), "{nested:?}");
        let gc = store.update(|_| store.gc());
        assert!(matches!(gc, Err(StoreError::GcLockHeld)), "{gc:?}");
        // ... and the lock is free again afterwards.
        store.update(|_| Ok::<_, StoreError>(())).unwrap();
        store.gc().unwrap();
    }

    #[test]
    fn second_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked(_))
        ));
    }
}
