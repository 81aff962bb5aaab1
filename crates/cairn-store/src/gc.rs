//! Garbage collection: mark every block reachable from a pinned root, an object's root (S3
//! objects are roots too), a backup snapshot's root or a retained bucket root (its tree and
//! index; its version record alone, not the older records it links to), then sweep every block
//! file and index entry not marked. Runs with the store's GC lock held exclusively, so no write
//! batch is open while it sweeps.

use std::collections::HashSet;

use cairn_dag::Cid;

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
}

impl Store {
    /// Removes every block no pinned root reaches.
    pub fn gc(&self) -> Result<GcStats, StoreError> {
        let _exclusive = self.inner.gc_lock.write();
        let mut stats = GcStats::default();
        let mut marked: HashSet<Vec<u8>> = HashSet::new();
        let mut stack: Vec<Cid> = self.pins()?.into_iter().map(|(c, _)| c).collect();
        stack.extend(self.object_roots()?);
        stack.extend(self.snapshot_roots()?);
        let (trees, records) = self.history_roots()?;
        stack.extend(trees);
        marked.extend(records.iter().map(|c| c.hash().to_bytes()));
        // Pieces kept for the cluster are kept as they are (their DAGs live on other nodes).
        marked.extend(self.piece_marks()?);
        while let Some(cid) = stack.pop() {
            if !marked.insert(cid.hash().to_bytes()) {
                continue;
            }
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
                }
                Err(e) => return Err(e),
            }
        }

        let mut forget = Vec::new();
        for (path, mh) in self.inner.files.walk()? {
            match mh {
                Some(mh) if marked.contains(&mh) => stats.kept += 1,
                mh => {
                    stats.freed_bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    std::fs::remove_file(&path)
                        .map_err(crate::io_err(format!("remove {}", path.display())))?;
                    stats.removed += 1;
                    forget.extend(mh);
                }
            }
        }
        // Index rows whose files vanished (or were just swept) go too.
        forget.extend(
            self.inner
                .index
                .block_keys()?
                .into_iter()
                .filter(|mh| !marked.contains(mh)),
        );
        self.inner.index.forget(&forget)?;
        if stats.missing > 0 {
            tracing::info!(
                missing = stats.missing,
                "GC: reachable blocks not stored here"
            );
        }
        Ok(stats)
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
