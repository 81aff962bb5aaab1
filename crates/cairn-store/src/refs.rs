//! What this node's data still references, for piece GC: the owner's side of the question
//! "may the pieces of this unit go?" (see [`crate::pieces`] for the holder's side).
//!
//! In a cluster a writer keeps only some of its blocks: a forwarding batch
//! ([`crate::Store::forwarding_batch`]) hands every block to the cluster and writes locally
//! only the blocks that may link (branch nodes, directories, records: a small fraction of the
//! bytes) and small dag-cbor blocks kept inline. So that its GC mark still sees every block
//! its data references:
//!
//! * **`REMOTE` rows.** Every block a forwarding batch forwarded gets a row `multihash →
//!   (size, committed ms, links)`, written in the batch's commit transaction (under the GC
//!   lock, shared, like every reference). `links` says whether the block may link; such a
//!   block was also written here, so a `REMOTE` row of a missing block that says "no links"
//!   proves the block is a leaf. GC deletes the rows of blocks its last mark did not reach.
//! * **The last mark.** After each run GC keeps what its own roots reached — pins, object,
//!   part and version roots and retained roots of the buckets this node owns, snapshots; not
//!   pieces, and not the *foreign* roots of buckets mirrored from another node, whose owner
//!   answers for them — as a sorted vector of 8-byte multihash prefixes (a false positive
//!   only keeps more), with the time of its snapshot and whether the mark was **complete**:
//!   every block reached from the node's own roots that is not stored here is either
//!   raw-codec (a leaf) or has a `REMOTE` row saying it is a leaf. A missing branch node
//!   (a corrupt one quarantined, an object written before forwarding batches kept their
//!   branch nodes) hides what it links to: the mark is then incomplete.
//!
//! [`crate::Store::referenced`] answers per block: **true** unless a complete mark exists
//! since the process started and the block is neither in it, nor held by an unfinished batch
//! (a write in flight), nor in a `REMOTE` row committed at or after the mark's snapshot (less
//! [`SLACK_MS`] for clock steps). False only when none holds: never free on doubt.

use cairn_dag::Cid;
use redb::{ReadableDatabase, WriteTransaction};

use crate::tables::REMOTE;
use crate::{Store, StoreError};

/// A `REMOTE` row committed this long before the last mark's snapshot still counts as
/// committed after it (wall-clock steps between the two).
pub const SLACK_MS: u64 = 2_000;

/// One `REMOTE` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRow {
    /// The block's size.
    pub size: u64,
    /// When the last batch that forwarded it committed (ms since the Unix epoch).
    pub committed_ms: u64,
    /// Whether it may link to other blocks (then it is also written here).
    pub links: bool,
}

impl RemoteRow {
    fn encode(&self) -> [u8; 17] {
        let mut v = [0u8; 17];
        v[..8].copy_from_slice(&self.size.to_be_bytes());
        v[8..16].copy_from_slice(&self.committed_ms.to_be_bytes());
        v[16] = u8::from(self.links);
        v
    }

    pub(crate) fn decode(v: &[u8]) -> Result<RemoteRow, StoreError> {
        if v.len() != 17 {
            return Err(StoreError::Sink("unreadable remote row".into()));
        }
        Ok(RemoteRow {
            size: u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            committed_ms: u64::from_be_bytes(v[8..16].try_into().expect("8 bytes")),
            links: v[16] != 0,
        })
    }
}

/// Records the blocks a forwarding batch forwarded (`multihash → (size, links)`), committed
/// now, in the batch's commit transaction.
pub(crate) fn record_forwarded(
    txn: &WriteTransaction,
    forwarded: &[(Vec<u8>, u64, bool)],
) -> Result<(), StoreError> {
    if forwarded.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut table = txn.open_table(REMOTE)?;
    for (mh, size, links) in forwarded {
        let row = RemoteRow {
            size: *size,
            committed_ms: now,
            links: *links,
        };
        table.insert(mh.as_slice(), row.encode().as_slice())?;
    }
    Ok(())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The first 8 bytes of a multihash after its code and length (the digest), as a number.
pub(crate) fn prefix_of(mh: &[u8]) -> u64 {
    // code and length are a few varint bytes; the digest's first 8 bytes are what varies
    let digest = if mh.len() > 2 { &mh[2..] } else { mh };
    let mut b = [0u8; 8];
    let n = digest.len().min(8);
    b[..n].copy_from_slice(&digest[..n]);
    u64::from_be_bytes(b)
}

/// What the last GC run's own roots reached (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct LastMark {
    /// When its snapshot was taken (ms since the Unix epoch).
    pub snapshot_ms: u64,
    /// Whether every block reached and not stored here was known to be a leaf.
    pub complete: bool,
    /// Sorted, deduplicated prefixes ([`prefix_of`]) of the blocks reached.
    pub(crate) prefixes: Vec<u64>,
}

impl LastMark {
    /// Whether the mark reached `mh` (or a block sharing its prefix).
    pub fn contains(&self, mh: &[u8]) -> bool {
        self.prefixes.binary_search(&prefix_of(mh)).is_ok()
    }

    /// Blocks (prefixes) in the mark.
    pub fn len(&self) -> usize {
        self.prefixes.len()
    }

    /// Whether the mark is empty.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

impl Store {
    /// For each block, whether this node's data may still reference it (see the module
    /// docs): false only after a complete mark, for a block not in it, not held by an
    /// unfinished batch and not forwarded by a batch committed since the mark's snapshot.
    pub fn referenced(&self, cids: &[Cid]) -> Result<Vec<bool>, StoreError> {
        let mark = self.inner.last_mark.lock().clone();
        let Some(mark) = mark.filter(|m| m.complete) else {
            return Ok(vec![true; cids.len()]);
        };
        let mhs: Vec<Vec<u8>> = cids.iter().map(|c| c.hash().to_bytes()).collect();
        // Held first: a batch enters its blocks before it forwards them and keeps them until
        // after its commit wrote their `REMOTE` rows, so one of the two looks finds it.
        let mut out: Vec<bool> = {
            let held = self.inner.held.lock();
            mhs.iter()
                .zip(cids)
                .map(|(mh, cid)| {
                    let (marked, held) = (mark.contains(mh), held.contains_key(mh));
                    if marked || held {
                        tracing::trace!(%cid, marked, held, "referenced");
                    }
                    marked || held
                })
                .collect()
        };
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(REMOTE)?;
        for ((flag, mh), cid) in out.iter_mut().zip(&mhs).zip(cids) {
            if *flag {
                continue;
            }
            if let Some(v) = table.get(mh.as_slice())? {
                let row = RemoteRow::decode(v.value())?;
                *flag = row.committed_ms + SLACK_MS >= mark.snapshot_ms;
                if *flag {
                    tracing::trace!(%cid, committed_ms = row.committed_ms, snapshot_ms = mark.snapshot_ms, "referenced: committed since the mark");
                }
            }
        }
        Ok(out)
    }

    /// The `REMOTE` row of `cid`, if a forwarding batch forwarded it and GC has not let it go.
    pub fn remote_row(&self, cid: &Cid) -> Result<Option<RemoteRow>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(REMOTE)?;
        table
            .get(cid.hash().to_bytes().as_slice())?
            .map(|v| RemoteRow::decode(v.value()))
            .transpose()
    }

    /// The last GC run's mark, if one ran since the store was opened.
    pub fn last_mark(&self) -> Option<std::sync::Arc<LastMark>> {
        self.inner.last_mark.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cairn_dag::file::encode_bytes;
    use cairn_dag::{Block, CidVersion};
    use parking_lot::Mutex;

    use crate::{BlockSink, Store, StoreError};

    /// A sink that keeps what it is given (the cluster's placer in a real node).
    #[derive(Default)]
    struct Sent(Mutex<Vec<Block>>);

    impl BlockSink for Sent {
        fn block(&self, block: &Block) -> Result<(), StoreError> {
            self.0.lock().push(block.clone());
            Ok(())
        }
    }

    fn file(len: usize, seed: u8, version: CidVersion) -> (Vec<Block>, cairn_dag::Cid) {
        let mut x = u64::from(seed) + 1;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        let (blocks, root) = encode_bytes(&data, version);
        (blocks, root.link.cid)
    }

    /// Writes `blocks` through a forwarding batch, pinning `pin`.
    fn forward(store: &Store, blocks: &[Block], pin: &[cairn_dag::Cid]) -> Arc<Sent> {
        let sent = Arc::new(Sent::default());
        let batch = store.forwarding_batch(sent.clone());
        for b in blocks {
            batch.put(b).unwrap();
        }
        batch.commit(pin).unwrap();
        sent
    }

    #[test]
    fn a_forwarding_batch_keeps_branch_nodes_and_records_what_it_forwarded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (blocks, root) = file(700_000, 1, CidVersion::V1);
        assert!(blocks.len() >= 4, "raw leaves and a dag-pb root");
        let sent = forward(&store, &blocks, &[root]);
        assert_eq!(sent.0.lock().len(), blocks.len(), "every block forwarded");
        for b in &blocks {
            let row = store.remote_row(&b.cid).unwrap().expect("a REMOTE row");
            assert_eq!(row.size, b.data.len() as u64);
            let branch = b.cid == root;
            assert_eq!(row.links, branch);
            assert_eq!(
                store.has(&b.cid).unwrap(),
                branch,
                "only the branch is here"
            );
        }
        // The mark walks the branch here and is complete (the leaves are raw).
        let stats = store.gc().unwrap();
        assert!(stats.complete, "{stats:?}");
        assert_eq!(stats.remote_forgotten, 0);
        let cids: Vec<_> = blocks.iter().map(|b| b.cid).collect();
        assert!(store.referenced(&cids).unwrap().iter().all(|r| *r));
        // Deleted: the rows go with the next GC, and the blocks are no longer referenced.
        store.unpin(&root).unwrap();
        let stats = store.gc().unwrap();
        assert!(stats.complete);
        assert_eq!(stats.remote_forgotten, blocks.len() as u64);
        assert!(!store.has(&root).unwrap(), "the local branch is swept");
        for b in &blocks {
            assert_eq!(store.remote_row(&b.cid).unwrap(), None);
        }
        assert!(store.referenced(&cids).unwrap().iter().all(|r| !*r));
    }

    #[test]
    fn referenced_is_true_on_any_doubt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (live, live_root) = file(600_000, 2, CidVersion::V1);
        let (dead, dead_root) = file(600_000, 3, CidVersion::V1);
        forward(&store, &live, &[live_root]);
        forward(&store, &dead, &[dead_root]);
        let leaf = |blocks: &[Block]| {
            blocks
                .iter()
                .find(|b| b.cid.codec() == cairn_dag::RAW)
                .unwrap()
                .cid
        };
        let (live_leaf, dead_leaf) = (leaf(&live), leaf(&dead));
        // No mark since the store opened: everything may be referenced.
        assert_eq!(
            store.referenced(&[live_leaf, dead_leaf]).unwrap(),
            [true, true]
        );

        store.unpin(&dead_root).unwrap();
        assert!(store.gc().unwrap().complete);
        assert_eq!(
            store.referenced(&[live_leaf, dead_leaf]).unwrap(),
            [true, false],
            "after a complete mark: live true, deleted false"
        );

        // A write in flight holds what it forwards.
        let (fresh, fresh_root) = file(300_000, 4, CidVersion::V1);
        let sent = Arc::new(Sent::default());
        let batch = store.forwarding_batch(sent.clone());
        for b in &fresh {
            batch.put(b).unwrap();
        }
        let fresh_leaf = leaf(&fresh);
        assert_eq!(store.referenced(&[fresh_leaf]).unwrap(), [true], "held");
        // Committed after the mark's snapshot (without any root: the row alone keeps it)...
        batch.commit(&[]).unwrap();
        assert_eq!(
            store.referenced(&[fresh_leaf]).unwrap(),
            [true],
            "committed since"
        );
        // ... until a mark that does not reach it.
        assert!(store.gc().unwrap().complete);
        assert_eq!(store.referenced(&[fresh_leaf]).unwrap(), [false]);
        // Written again (the same bytes, now pinned): referenced again at once.
        forward(&store, &fresh, &[fresh_root]);
        assert_eq!(
            store.referenced(&[fresh_leaf, dead_leaf]).unwrap(),
            [true, false]
        );
    }

    #[test]
    fn a_missing_branch_without_a_remote_row_makes_the_mark_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (dead, dead_root) = file(300_000, 5, CidVersion::V1);
        forward(&store, &dead, &[]);
        // CIDv0: dag-pb leaves, which may link. Only the root is stored here, by a plain
        // batch (an object from before forwarding batches kept branch nodes, say): what its
        // missing children link to is unknown.
        let (v0, v0_root) = file(600_000, 6, CidVersion::V0);
        let batch = store.batch();
        batch
            .put(v0.iter().find(|b| b.cid == v0_root).unwrap())
            .unwrap();
        batch.commit(&[v0_root]).unwrap();
        let stats = store.gc().unwrap();
        assert!(!stats.complete, "{stats:?}");
        assert!(store.last_mark().is_some_and(|m| !m.complete));
        let dead_leaf = dead.iter().find(|b| b.cid != dead_root).unwrap().cid;
        assert_eq!(
            store.referenced(&[dead_leaf, dead_root]).unwrap(),
            [true, true],
            "never free on doubt"
        );
        // The same shape written through a forwarding batch: its dag-pb leaves have REMOTE
        // rows saying they have no links, so the mark is complete.
        store.unpin(&v0_root).unwrap();
        forward(&store, &v0, &[v0_root]);
        let stats = store.gc().unwrap();
        assert!(stats.complete, "{stats:?}");
        assert_eq!(
            store.referenced(&[dead_leaf, v0_root]).unwrap(),
            [false, true]
        );
    }

    #[test]
    fn foreign_roots_keep_their_blocks_without_being_references() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // A mirrored bucket's object whose leaves (dag-pb, CIDv0) live elsewhere.
        let (theirs, their_root) = file(600_000, 7, CidVersion::V0);
        let batch = store.batch();
        batch
            .put(theirs.iter().find(|b| b.cid == their_root).unwrap())
            .unwrap();
        batch
            .commit_with(|meta| meta.put_object("mirrored", "k", &their_root, b"{}"))
            .unwrap();
        assert!(
            !store.gc().unwrap().complete,
            "as this node's own: incomplete"
        );
        let foreign = std::collections::HashSet::from(["mirrored".to_owned()]);
        let stats = store.gc_with_foreign(&foreign).unwrap();
        assert!(stats.complete, "{stats:?}");
        assert!(store.has(&their_root).unwrap(), "kept");
        assert_eq!(
            store.referenced(&[their_root]).unwrap(),
            [false],
            "not ours"
        );
    }
}
