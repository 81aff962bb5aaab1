//! Write batches: the blocks of one import, written without per-block fsync and made durable
//! together by one filesystem sync followed by one redb commit that also pins the roots.
//! Dropping an uncommitted batch removes the files it wrote (unless another batch also wrote
//! them or they became durable meanwhile), so a rejected import stores nothing.
//!
//! A forwarding batch hands every block to a [`BlockSink`] instead of writing it: in a cluster
//! the blocks of a write live on their placement targets, not necessarily here.

use std::collections::HashMap;

use cairn_dag::{Block, Cid};
use parking_lot::{Mutex, RawRwLock, lock_api::ArcRwLockReadGuard};

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
    written: Mutex<HashMap<Vec<u8>, (Cid, BlockInfo)>>,
    /// Blocks kept in the database, not as files: recorded with their bytes at commit.
    inline: Mutex<HashMap<Vec<u8>, bytes::Bytes>>,
    _gc_guard: ArcRwLockReadGuard<RawRwLock, ()>,
    done: bool,
}

impl std::fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBatch")
            .field("written", &self.written.lock().len())
            .finish()
    }
}

impl WriteBatch {
    pub(crate) fn new(store: Store, sink: Option<std::sync::Arc<dyn BlockSink>>) -> Self {
        let guard = store.inner.gc_lock.read_arc();
        WriteBatch {
            store,
            sink,
            written: Mutex::new(HashMap::new()),
            inline: Mutex::new(HashMap::new()),
            _gc_guard: guard,
            done: false,
        }
    }

    /// Stores a block (the caller vouches that `block.data` hashes to `block.cid`). Blocks
    /// already durable are skipped: that is where deduplication happens.
    pub fn put(&self, block: &Block) -> Result<(), StoreError> {
        let inner = &self.store.inner;
        let mh = block.cid.hash().to_bytes();
        if let Some(sink) = &self.sink {
            sink.block(block)?;
            if !crate::inline_eligible(&block.cid, block.data.len()) {
                return Ok(());
            }
        }
        if self.written.lock().contains_key(&mh)
            || self.inline.lock().contains_key(&mh)
            || self.store.has(&block.cid)?
        {
            return Ok(());
        }
        if crate::inline_eligible(&block.cid, block.data.len()) {
            self.inline.lock().insert(mh, block.data.clone());
            return Ok(());
        }
        let may_link = cairn_dag::block::codec_may_link(block.cid.codec())
            && !cairn_dag::links_of(&block.cid, &block.data)?.is_empty();
        let info = BlockInfo {
            size: block.data.len() as u64,
            may_link,
        };
        // Claim the block for this batch before writing (so a failed write is still cleaned up
        // on drop); if another thread of this batch claimed it meanwhile, it writes it.
        if self
            .written
            .lock()
            .insert(mh.clone(), (block.cid, info))
            .is_some()
        {
            return Ok(());
        }
        *inner.inflight.lock().entry(mh).or_insert(0) += 1;
        inner.files.write(&block.cid, &block.data)
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
    /// transaction. If `f` fails nothing is recorded and the batch's files are removed.
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
        let inline: Vec<(Vec<u8>, bytes::Bytes)> = self.inline.lock().drain().collect();
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
        if !written.is_empty() {
            inner.files.sync_blocks(&cids)?;
        }
        let synced = started.elapsed();
        let out = inner.index.commit_with(&recorded, &inline, f)?;
        tracing::debug!(
            blocks = written.len(),
            inline = inline.len(),
            sync_ms = synced.as_millis() as u64,
            index_ms = (started.elapsed() - synced).as_millis() as u64,
            "batch committed"
        );
        self.release(false);
        self.done = true;
        Ok(out)
    }

    /// Drops this batch's claim on its blocks; with `delete`, removes files no one else needs.
    fn release(&self, delete: bool) {
        let inner = &self.store.inner;
        let written = std::mem::take(&mut *self.written.lock());
        let mut inflight = inner.inflight.lock();
        for (mh, (cid, _)) in written {
            let last = match inflight.get_mut(&mh) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    inflight.remove(&mh);
                    true
                }
            };
            if delete
                && last
                && !matches!(inner.index.block(&cid), Ok(Some(_)))
                && let Err(e) = inner.files.remove(&cid)
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
