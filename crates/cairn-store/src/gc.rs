//! Garbage collection: mark every block reachable from a pinned root, an object's root (S3
//! objects, parts and versions are roots too), a backup snapshot's root, a piece kept for the
//! cluster or a retained bucket root (its tree and index; its version record alone, not the
//! older records it links to), then sweep every block file and index row neither marked nor
//! held by an unfinished batch.
//!
//! # Why GC never sweeps what a writer needs, and never waits for one
//!
//! The store has one GC lock ([`parking_lot::RwLock`]). GC holds it **exclusively** from its
//! mark snapshot to the end of its sweep. Every transaction that *adds* a reference to blocks —
//! a batch commit ([`crate::WriteBatch::commit_with`]) and every [`Store::update`] — holds it
//! **shared** for that one transaction, nothing longer: no lock is held while a body streams,
//! while a cluster write waits for its placement targets (itself among them), or while a
//! batch syncs its files. So GC waits at most for one short transaction, and a waiting GC
//! holds up new transactions at most for one GC run. The lock is never taken twice on one
//! thread (that is refused with [`StoreError::GcLockHeld`] rather than deadlocking on the fair
//! lock). Transactions that only *remove* references (unpinning, dropping a piece row,
//! forgetting index rows) may run without it: GC then keeps a little more than it must.
//!
//! A GC run is:
//!
//! 1. **Snapshot**: pins, object, part and version roots, snapshots, retained roots, pieces
//!    and `REMOTE` rows from **one** redb read transaction: one consistent state `S`.
//! 2. **Mark** everything reachable from `S` (reading blocks: files are renamed into place
//!    whole, so a concurrent batch never shows a half-written block).
//! 3. **Sweep** each block file (and each temp file, by the block it is for) that is not
//!    marked, unless the store's *held* set names it — checked and removed under the held
//!    set's lock, per file. Then forget the index rows of unmarked blocks that are not held,
//!    in one transaction committed under that lock too (a batch that would deduplicate against
//!    one of them either entered it before — kept — or looks after the commit and finds it
//!    gone).
//!
//! Why an acknowledged reference never points at a swept block, by the time its transaction
//! `T` committed relative to a GC run `G` (they cannot overlap: `T` holds the lock shared, `G`
//! exclusively):
//!
//! * `T` before `G`'s snapshot: `S` contains the reference, so `G` marks its whole DAG.
//! * `T` after `G`'s sweep: what `T` refers to was, inside `T`, either
//!   - **held** by `T`'s batch: entered in the held set *before* its presence was checked and
//!     kept there until after `T` committed. If `G` swept the block before it was entered, the
//!     check found it gone (the batch wrote it again, or reported it missing and `T` never
//!     happened); otherwise `G` found it held and left it. This covers blocks a batch writes,
//!     blocks deduplication skips because they are stored already (files and inline rows
//!     alike), and a DAG checked with [`crate::WriteBatch::hold`] before a pin, a snapshot or
//!     a directory refers to it; or
//!   - **already referenced in `T`'s own state**: a copy of a version re-reads the source
//!     version row in `T`; a restore re-reads the retained root it restores from; a bucket
//!     import re-reads its import pin; a multipart completion re-reads its parts; a new bucket
//!     root re-reads the previous root whose unchanged subtrees it links, and the object rows
//!     of the changed keys whose objects it links (an object replaced since the build read
//!     its row is held whole by the root's batch instead, or the build is done again). By
//!     induction over the transactions before `T`, every DAG a committed reference names was
//!     whole when `G` ran (it was in `G`'s snapshot, or was added after `G` under the same
//!     rule), so `G` did not sweep it.
//!
//! Nothing else adds references: a transaction that would refer to blocks it neither holds nor
//! finds referenced in its own state is a bug of the same kind as M3 in the December 2026
//! review.
//!
//! In a cluster most of an object's blocks live on other nodes; GC reports reachable blocks
//! that are not here and goes on.
//!
//! # What the mark keeps for piece GC
//!
//! The mark runs in three steps: this node's own roots (pins, snapshots, parts, and the
//! object, version and retained roots of the buckets it owns), then the *foreign* roots — the
//! same rows of buckets mirrored here from another node, named by the caller
//! ([`Store::gc_with_foreign`]; the node layer passes its mirrored buckets) — and last the
//! pieces, which are kept without being walked. What the first step reached is kept after the
//! run, compactly, as the node's answer to "do you still reference this block?"
//! ([`Store::referenced`]), with the snapshot's time and whether it was **complete**: every
//! block it reached that is not stored here is raw-codec, or has a `REMOTE` row saying it has
//! no links (see [`crate::refs`]). The sweep also deletes the `REMOTE` rows of blocks the first
//! step did not reach.

use std::collections::HashSet;

use cairn_dag::Cid;
use redb::{ReadableDatabase, ReadableTable};

use crate::files::FileKind;
use crate::{Store, StoreError};

/// What a GC run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcStats {
    /// Blocks kept (reachable from a pin).
    pub kept: u64,
    /// Block files removed.
    pub removed: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Reachable blocks that were missing or corrupt (reported, not fatal).
    pub missing: u64,
    /// Unreachable block files kept because an unfinished write holds them.
    pub held: u64,
    /// Whether the mark of this node's own roots was complete (see [`crate::refs`]): only
    /// then does [`Store::referenced`] ever answer false.
    pub complete: bool,
    /// `REMOTE` rows of blocks no longer reached, deleted.
    pub remote_forgotten: u64,
}

impl Store {
    /// Removes every block no pinned root reaches and no unfinished batch holds, every root
    /// counted as this node's own.
    pub fn gc(&self) -> Result<GcStats, StoreError> {
        self.gc_with_foreign(&HashSet::new())
    }

    /// [`gc`](Self::gc), where the object, version and retained roots of the buckets named in
    /// `foreign` (mirrored here from the node that owns them) are *foreign*: they keep what
    /// they reach here, but are not this node's references (see [`crate::refs`]), and a block
    /// they reach that is not here leaves the mark complete.
    pub fn gc_with_foreign(&self, foreign: &HashSet<String>) -> Result<GcStats, StoreError> {
        let _exclusive = self.gc_exclusive()?;
        let started = std::time::Instant::now();
        let mut stats = GcStats::default();
        let is_foreign =
            |bucket: &[u8]| std::str::from_utf8(bucket).is_ok_and(|b| foreign.contains(b));
        let snapshot_ms = crate::refs::now_ms();
        let txn = self.inner.index.db.begin_read()?;
        let (own, theirs, pieces) = {
            let mut stack: Vec<Cid> = crate::index::pins_in(&txn)?
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            let (objects, foreign_objects) = crate::meta::object_roots_in(&txn, &is_foreign)?;
            stack.extend(objects);
            stack.extend(crate::snapshots::roots_in(&txn)?);
            let ((trees, records), (foreign_trees, foreign_records)) =
                crate::roots::history_roots_in(&txn, &is_foreign)?;
            stack.extend(trees);
            let mut theirs = foreign_objects;
            theirs.extend(foreign_trees);
            // Pieces kept for the cluster are kept as they are (their DAGs live on other
            // nodes), and are no reference of this node's.
            let pieces = crate::pieces::marks_in(&txn)?;
            ((stack, records), (theirs, foreign_records), pieces)
        };
        let remote = txn.open_table(crate::tables::REMOTE)?;
        // This node's own roots first: what they reach is what it references.
        let mut marked: HashSet<Vec<u8>> = own.1.iter().map(|c| c.hash().to_bytes()).collect();
        stats.complete = self.mark(own.0, &mut marked, &mut stats, Some(&remote))?;
        let mut mine: Vec<u64> = marked.iter().map(|mh| crate::refs::prefix_of(mh)).collect();
        mine.sort_unstable();
        mine.dedup();
        let unreached_remote: Vec<Vec<u8>> = remote
            .iter()?
            .filter_map(|row| match row {
                Ok((k, _)) if !marked.contains(k.value()) => Some(Ok(k.value().to_vec())),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        drop(remote);
        drop(txn);
        // Then the roots of mirrored buckets, and the pieces kept for the cluster.
        marked.extend(theirs.1.iter().map(|c| c.hash().to_bytes()));
        self.mark(theirs.0, &mut marked, &mut stats, None)?;
        marked.extend(pieces);
        let marked_ms = started.elapsed().as_millis() as u64;

        let mut forget = Vec::new();
        for (path, kind) in self.inner.files.walk()? {
            let mh = match &kind {
                FileKind::Block(mh) if marked.contains(mh) => {
                    stats.kept += 1;
                    continue;
                }
                FileKind::Block(mh) | FileKind::Temp(Some(mh)) => Some(mh),
                FileKind::Temp(None) | FileKind::Stray => None,
            };
            let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            {
                // Checked and removed under the held set's lock: a batch enters a block
                // before it looks whether it is stored, so it sees this file or keeps it.
                let held = self.inner.held.lock();
                if mh.is_some_and(|mh| held.contains_key(mh)) {
                    if matches!(kind, FileKind::Block(_)) {
                        stats.held += 1;
                    }
                    continue;
                }
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    // A temp file renamed into place (or removed) by its batch meanwhile.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(StoreError::Io {
                            context: format!("remove {}", path.display()),
                            source: e,
                        });
                    }
                }
            }
            stats.freed_bytes += len;
            stats.removed += 1;
            if let FileKind::Block(mh) = kind {
                forget.push(mh);
            }
        }
        // Index rows whose files vanished (or were just swept) go too, inline blocks included.
        forget.extend(
            self.inner
                .index
                .block_keys()?
                .into_iter()
                .filter(|mh| !marked.contains(mh)),
        );
        {
            let held = self.inner.held.lock();
            forget.retain(|mh| !held.contains_key(mh));
            self.inner.index.forget(&forget)?;
        }
        // `REMOTE` rows of blocks the own roots no longer reach (no batch is committing: the
        // GC lock is held exclusively).
        if !unreached_remote.is_empty() {
            let txn = self.inner.index.db.begin_write()?;
            {
                let mut table = txn.open_table(crate::tables::REMOTE)?;
                for mh in &unreached_remote {
                    table.remove(mh.as_slice())?;
                }
            }
            txn.commit()?;
            stats.remote_forgotten = unreached_remote.len() as u64;
        }
        *self.inner.last_mark.lock() = Some(std::sync::Arc::new(crate::refs::LastMark {
            snapshot_ms,
            complete: stats.complete,
            prefixes: mine,
        }));
        marked.clear();
        if stats.missing > 0 {
            tracing::info!(
                missing = stats.missing,
                "GC: reachable blocks not stored here"
            );
        }
        tracing::debug!(
            ?stats,
            mark_ms = marked_ms,
            total_ms = started.elapsed().as_millis() as u64,
            "GC done"
        );
        Ok(stats)
    }

    /// Marks everything reachable from `stack` (reading blocks: files are renamed into place
    /// whole, so a concurrent batch never shows a half-written block). With `remote` (the own
    /// roots' mark), returns whether it is complete: every block reached that is not here is
    /// raw-codec or has a `REMOTE` row saying it has no links.
    fn mark(
        &self,
        mut stack: Vec<Cid>,
        marked: &mut HashSet<Vec<u8>>,
        stats: &mut GcStats,
        remote: Option<&redb::ReadOnlyTable<&[u8], &[u8]>>,
    ) -> Result<bool, StoreError> {
        let mut complete = true;
        while let Some(cid) = stack.pop() {
            let mh = cid.hash().to_bytes();
            if marked.contains(&mh) {
                continue;
            }
            marked.insert(mh.clone());
            match self.block_info(&cid)? {
                Some(info) if !info.may_link => continue,
                _ => {}
            }
            match self.get_local(&cid) {
                Ok(data) => match cairn_dag::links_of(&cid, &data) {
                    Ok(links) => stack.extend(links),
                    // Verified but undecodable (e.g. from a CAR): kept, as a leaf.
                    Err(e) => tracing::warn!(%cid, "links unreadable, treated as leaf: {e}"),
                },
                Err(StoreError::NotFound(_)) | Err(StoreError::CorruptBlock { .. }) => {
                    // In a cluster most of an object's blocks live on other nodes.
                    tracing::debug!(%cid, "a reachable block is not here");
                    stats.missing += 1;
                    if let Some(remote) = remote
                        && complete
                        && cid.codec() != cairn_dag::RAW
                    {
                        let leaf = match remote.get(mh.as_slice())? {
                            Some(v) => !crate::refs::RemoteRow::decode(v.value())?.links,
                            None => false,
                        };
                        if !leaf {
                            tracing::info!(%cid, "GC: a reachable branch block is not here; the mark is incomplete");
                            complete = false;
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(complete)
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use cairn_dag::CidVersion;
    use cairn_dag::file::encode_bytes;

    #[test]
    fn gc_keeps_pinned_and_shared_blocks_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let mut b = a.clone();
        b.extend_from_slice(b"tail"); // shares its first leaves with `a`
        let (ablocks, aroot) = encode_bytes(&a, CidVersion::V1);
        let (bblocks, broot) = encode_bytes(&b, CidVersion::V1);
        let batch = store.batch();
        for blk in ablocks.iter().chain(&bblocks) {
            batch.put(blk).unwrap();
        }
        batch.commit(&[aroot.link.cid, broot.link.cid]).unwrap();
        assert_eq!(store.gc().unwrap().removed, 0);

        assert!(store.unpin(&aroot.link.cid).unwrap());
        let stats = store.gc().unwrap();
        assert!(stats.removed >= 2, "a's root and last leaf go: {stats:?}");
        assert!(!store.has(&aroot.link.cid).unwrap());
        for blk in &bblocks {
            assert_eq!(store.get(&blk.cid).unwrap(), blk.data);
        }
        store.unpin(&broot.link.cid).unwrap();
        store.gc().unwrap();
        assert_eq!(store.stats().unwrap(), (0, 0));
    }
}
