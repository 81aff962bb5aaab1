//! Scrubbing: a slow walk over every block file that re-reads and re-hashes it, so bit rot is
//! found before a read needs the block. A block that fails is quarantined and dropped from the
//! index, as any failed read would; in a cluster the repair job then re-creates the piece from
//! its peers. Paged by bytes, so a run stays short and a node keeps its I/O for its users.

use cairn_dag::Cid;

use crate::{Store, StoreError};

/// What one scrub page did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScrubPage {
    /// Blocks re-hashed.
    pub checked: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Blocks that failed and were quarantined.
    pub corrupt: Vec<Cid>,
    /// Where the next page starts (`None`: the walk reached the end and starts over).
    pub next: Option<Vec<u8>>,
}

impl Store {
    /// One whole scrub pass now (`cairn scrub`).
    pub fn scrub_all(&self) -> Result<ScrubPage, StoreError> {
        let mut total = ScrubPage::default();
        let mut cursor = None;
        loop {
            let page = self.scrub_page(cursor.as_deref(), 256 << 20)?;
            total.checked += page.checked;
            total.bytes += page.bytes;
            total.corrupt.extend(page.corrupt);
            cursor = page.next;
            if cursor.is_none() {
                return Ok(total);
            }
        }
    }

    /// Re-hashes blocks after `cursor` until about `max_bytes` were read.
    pub fn scrub_page(
        &self,
        cursor: Option<&[u8]>,
        max_bytes: u64,
    ) -> Result<ScrubPage, StoreError> {
        const KEYS: usize = 256;
        let mut page = ScrubPage::default();
        let mut cursor = cursor.map(<[u8]>::to_vec);
        loop {
            let keys = self.inner.index.block_keys_after(cursor.as_deref(), KEYS)?;
            for key in &keys {
                cursor = Some(key.clone());
                let Ok(mh) = cid::multihash::Multihash::<64>::from_bytes(key) else {
                    continue;
                };
                // The codec does not matter to the hash check; files are named by multihash.
                let cid = Cid::new_v1(cairn_dag::RAW, mh);
                match self.get_local(&cid) {
                    Ok(data) => {
                        page.checked += 1;
                        page.bytes += data.len() as u64;
                    }
                    Err(StoreError::CorruptBlock { cid, .. }) => {
                        page.checked += 1;
                        page.corrupt.push(cid);
                    }
                    Err(StoreError::NotFound(_)) => {} // inline, or removed meanwhile
                    Err(e) => return Err(e),
                }
                if page.bytes >= max_bytes {
                    page.next = cursor;
                    return Ok(page);
                }
            }
            if keys.len() < KEYS {
                return Ok(page); // wrapped
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flipped_byte_is_found_and_quarantined_and_pages_cover_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let blocks: Vec<cairn_dag::Block> = (0..20u8)
            .map(|i| {
                cairn_dag::Block::new(cairn_dag::CidVersion::V1, cairn_dag::RAW, vec![i; 5000])
                    .unwrap()
            })
            .collect();
        let batch = store.batch();
        for b in &blocks {
            batch.put(b).unwrap();
        }
        batch.commit(&[]).unwrap();
        let victim = &blocks[7];
        let path = store.inner.files.path_of(&victim.cid);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        // pages of ~3 blocks walk all 20 and find the one bad block
        let (mut cursor, mut checked, mut corrupt, mut pages) = (None, 0, Vec::new(), 0);
        loop {
            let page = store.scrub_page(cursor.as_deref(), 15_000).unwrap();
            pages += 1;
            checked += page.checked;
            corrupt.extend(page.corrupt);
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!((checked, pages > 5), (20, true));
        assert_eq!(corrupt, vec![victim.cid]);
        assert!(!store.has(&victim.cid).unwrap());
        // the next walk finds nothing wrong
        assert!(store.scrub_page(None, u64::MAX).unwrap().corrupt.is_empty());
    }
}
