//! Write batches: the blocks of one import, written without per-block fsync and made durable
//! together by one filesystem sync followed by one redb commit that also records what refers
//! to them (pins, objects, …). Dropping an uncommitted batch removes the files it wrote (unless
//! another batch also wrote them or they became durable meanwhile), so a rejected import
//! stores nothing.
//!
//! A forwarding batch hands every block to a [`BlockSink`]: in a cluster the blocks of a write
//! live on their placement targets, not necessarily here. It also writes here, like a plain
//! batch, every block that may link (`codec_may_link` and at least one link: branch nodes,
//! directories, records — a small fraction of the bytes) and every block kept inline, so GC
//! marks and reads walk this node's DAGs locally; the leaves it only forwards are held like
//! written blocks while the batch is open, and every forwarded block gets a `REMOTE` row in
//! the commit's transaction (see [`crate::refs`]: what piece GC asks the owner of a unit).
//!
//! # Batches and GC
//!
//! A batch streams without any lock that GC waits for: a slow body, or a cluster write whose
//! own shards come back here through the piece path (a second batch), never holds up GC or
//! other writes. Two things keep GC from sweeping what a batch needs:
//!
//! * **Holding.** Every block the batch writes *or relies on* — skipped by deduplication
//!   because it is already stored, or checked with [`WriteBatch::hold`] before a commit refers
//!   to it — is entered in the store's *held* set **before** its presence is checked, and stays
//!   there until the batch is committed or dropped. GC's sweep looks a file (and an index row)
//!   up in that set under the set's lock and removes it only if no batch holds it. So for each
//!   block either the sweep came first (the presence check then finds it gone and the batch
//!   writes it, or reports it missing), or the block is held and the sweep leaves it.
//! * **Committing under the GC lock.** [`WriteBatch::commit_with`] syncs the files first, then
//!   takes the store's GC lock *shared* for its one redb transaction only. GC holds it
//!   exclusively from its mark snapshot to the end of its sweep, so a commit lands either
//!   before the snapshot (GC sees its references and marks their DAGs) or after the sweep (its
//!   held blocks were kept). The lock is never held while waiting for anything else, and never
//!   taken twice on one thread: the closure a commit runs must not start another commit or
//!   [`Store::update`] (redb would deadlock on its own writer lock anyway).
//!
//! What a commit refers to but did not put or hold — blocks linked from a DAG that some
//! existing reference keeps (a version being copied, a retained root, the parts of a multipart
//! upload) — must be re-verified *inside* the commit's transaction: the reference found there
//! is then in the state any later GC snapshot starts from. See [`crate::gc`] for the whole
//! argument.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use cairn_dag::{Block, Cid};
use parking_lot::Mutex;

use crate::{BlockInfo, Store, StoreError};

/// Where a forwarding batch sends its blocks. Called from the threads that `put`; may block
/// (back-pressure) and may refuse.
pub trait BlockSink: Send + Sync {
    /// Takes one block of the batch.
    fn block(&self, block: &Block) -> Result<(), StoreError>;
}

/// A group of block writes committed (or discarded) together. `put` may be called from many
/// threads at once.
pub struct WriteBatch {
    store: Store,
    sink: Option<std::sync::Arc<dyn BlockSink>>,
    /// Every block this batch holds in the store's held set (once each), by multihash.
    held: Mutex<HashSet<Vec<u8>>>,
    /// Blocks this batch wrote as files (all of them held).
    written: Mutex<HashMap<Vec<u8>, (Cid, BlockInfo)>>,
    /// Blocks kept in the database, not as files: recorded with their bytes at commit.
    inline: Mutex<HashMap<Vec<u8>, Bytes>>,
    /// Blocks handed to the sink (a forwarding batch): multihash → (size, may link),
    /// recorded as `REMOTE` rows at commit.
    forwarded: Mutex<HashMap<Vec<u8>, (u64, bool)>>,
    done: bool,
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("written", &self.written.lock().len())
            .field("held", &self.held.lock().len())
            .finish()
    }
}

impl WriteBatch {
    pub(crate) fn new(store: Store, sink: Option<std::sync::Arc<dyn BlockSink>>) -> Self {
        WriteBatch {
            store,
            sink,
            held: Mutex::new(HashSet::new()),
            written: Mutex::new(HashMap::new()),
            inline: Mutex::new(HashMap::new()),
            forwarded: Mutex::new(HashMap::new()),
            done: false,
        }
    }

    /// Enters `mh` in the store's held set for this batch (once). Must come before any look
    /// at whether the block is present.
    fn enter(&self, mh: &[u8]) {
        let mut held = self.held.lock();
        if held.insert(mh.to_vec()) {
            *self.store.inner.held.lock().entry(mh.to_vec()).or_insert(0) += 1;
        }
    }

    /// Whether this batch has the block itself (written or kept inline).
    fn has_own(&self, mh: &[u8]) -> bool {
        self.written.lock().contains_key(mh) || self.inline.lock().contains_key(mh)
    }

    /// Stores a block (the caller vouches that `block.data` hashes to `block.cid`). Blocks
    /// already durable are skipped — that is where deduplication happens — and held, so GC
    /// leaves them until this batch ends. A forwarding batch hands the block to its sink
    /// first, and then stores it here only if it may link or is kept inline (see the module
    /// docs); it holds it either way.
    pub fn put(&self, block: &Block) -> Result<(), StoreError> {
        let inner = &self.store.inner;
        let mh = block.cid.hash().to_bytes();
        let inline = crate::inline_eligible(&block.cid, block.data.len());
        let may_link = cairn_dag::block::codec_may_link(block.cid.codec())
            && !cairn_dag::links_of(&block.cid, &block.data)?.is_empty();
        // Entered before anything looks at the block, and before the sink sends it: a holder
        // asking whether it is referenced ([`Store::referenced`]) then finds it held.
        self.enter(&mh);
        if let Some(sink) = &self.sink {
            sink.block(block)?;
            self.forwarded
                .lock()
                .insert(mh.clone(), (block.data.len() as u64, may_link));
            if !inline && !may_link {
                return Ok(());
            }
        }
        if self.has_own(&mh) || self.store.has(&block.cid)? {
            return Ok(());
        }
        if inline {
            self.inline.lock().insert(mh, block.data.clone());
            return Ok(());
        }
        let info = BlockInfo {
            size: block.data.len() as u64,
            may_link,
        };
        // Claim the block for this batch before writing (so a failed write is still cleaned up
        // on drop); if another thread of this batch claimed it meanwhile, it writes it.
        if self.written.lock().insert(mh, (block.cid, info)).is_some() {
            return Ok(());
        }
        inner.files.write(&block.cid, &block.data)
    }

    /// Holds `cid` for this batch — GC leaves it until the batch is committed or dropped — and
    /// says whether it is there: written by this batch or durably stored. A commit may refer to
    /// every block `hold` found: this is how a reference to blocks stored earlier (a pin, a
    /// snapshot, a directory linking files added before) is made safe against a concurrent GC.
    pub fn hold(&self, cid: &Cid) -> Result<bool, StoreError> {
        let mh = cid.hash().to_bytes();
        self.enter(&mh);
        Ok(self.has_own(&mh) || self.store.has(cid)?)
    }

    /// Reads and verifies a block this batch can see: one it keeps inline (not recorded until
    /// the commit), else from the store's files and database (never the network).
    pub fn get_local(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        match self.inline.lock().get(&cid.hash().to_bytes()) {
            Some(data) => Ok(data.clone()),
            None => self.store.get_local(cid),
        }
    }

    /// Number of blocks this batch wrote (not counting deduplicated ones), inline ones included.
    pub fn written(&self) -> usize {
        self.written.lock().len() + self.inline.lock().len()
    }

    /// Syncs the written blocks to disk, then records them and adds a reference to each of
    /// `pins` in one transaction. When this returns, the data survives a crash.
    pub fn commit(self, pins: &[Cid]) -> Result<(), StoreError> {
        self.commit_with(|meta| {
            for cid in pins {
                meta.pin(cid)?;
            }
            Ok::<_, StoreError>(())
        })
    }

    /// Syncs the written blocks, then records them and runs `f` on the metadata in the same
    /// transaction (under the GC lock, shared: see the module docs for what `f` must
    /// re-verify, and must not do). If `f` fails nothing is recorded and the batch's files are
    /// removed.
    pub fn commit_with<T, E: From<StoreError>>(
        mut self,
        f: impl FnOnce(&crate::MetaTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let inner = &self.store.inner;
        let (written, cids): (Vec<(Vec<u8>, BlockInfo)>, Vec<Cid>) = self
            .written
            .lock()
            .iter()
            .map(|(mh, (cid, info))| ((mh.clone(), *info), *cid))
            .unzip();
        let inline: Vec<(Vec<u8>, Bytes)> = self
            .inline
            .lock()
            .iter()
            .map(|(mh, data)| (mh.clone(), data.clone()))
            .collect();
        let mut recorded = written.clone();
        for (mh, data) in &inline {
            recorded.push((
                mh.clone(),
                BlockInfo {
                    size: data.len() as u64,
                    may_link: true,
                },
            ));
        }
        let started = std::time::Instant::now();
        // Syncing needs no lock: the files are held.
        if !written.is_empty() {
            inner.files.sync_blocks(&cids)?;
        }
        let synced = started.elapsed();
        let forwarded: Vec<(Vec<u8>, u64, bool)> = self
            .forwarded
            .lock()
            .iter()
            .map(|(mh, (size, links))| (mh.clone(), *size, *links))
            .collect();
        let out = {
            let _shared = self.store.gc_shared();
            inner.index.commit_with(&recorded, &inline, |meta| {
                crate::refs::record_forwarded(meta.txn, &forwarded)?;
                f(meta)
            })?
        };
        tracing::debug!(
            blocks = written.len(),
            inline = inline.len(),
            forwarded = forwarded.len(),
            held = self.held.lock().len(),
            sync_ms = synced.as_millis() as u64,
            index_ms = (started.elapsed() - synced).as_millis() as u64,
            "batch committed"
        );
        self.release(false);
        self.done = true;
        Ok(out)
    }

    /// Drops this batch's holds; with `delete`, removes the files it wrote that no one else
    /// holds and that are not durable.
    fn release(&self, delete: bool) {
        let inner = &self.store.inner;
        let held = std::mem::take(&mut *self.held.lock());
        let written = std::mem::take(&mut *self.written.lock());
        self.inline.lock().clear();
        self.forwarded.lock().clear();
        // One lock for the whole release: a block let go of here is either still held by
        // another batch or removed before anyone can enter it anew (who then finds it gone).
        let mut holds = inner.held.lock();
        for mh in held {
            let last = match holds.get_mut(&mh) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    holds.remove(&mh);
                    true
                }
            };
            let Some((cid, _)) = written.get(&mh) else {
                continue;
            };
            if delete
                && last
                && !matches!(inner.index.block(cid), Ok(Some(_)))
                && let Err(e) = inner.files.remove(cid)
            {
                tracing::warn!("abandoned block not removed: {e}");
            }
        }
    }
}

impl Drop for WriteBatch {
    fn drop(&mut self) {
        if !self.done {
            self.release(true);
        }
    }
}
