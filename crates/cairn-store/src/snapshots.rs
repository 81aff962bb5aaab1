//! Named snapshots (`cairn backup`): under a name, every root recorded with its time. Each
//! snapshot root is a GC root (as object roots are), so a backup's DAG stays as long as its
//! snapshot does. Snapshots are not pins: pinned CIDs are published by the gateway, and a
//! backup must not be.

use cairn_dag::Cid;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable};

use crate::meta::MetaTxn;
use crate::tables::{SNAPSHOTS, parse_cid};
use crate::{Store, StoreError};

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRow {
    /// Its name (no NUL byte).
    pub name: String,
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The root of the snapshot's DAG.
    pub cid: Cid,
}

fn prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 9);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

fn key(name: &str, time_ms: u64) -> Vec<u8> {
    let mut k = prefix(name);
    k.extend_from_slice(&time_ms.to_be_bytes());
    k
}

fn parse_row(k: &[u8], v: &[u8]) -> Result<SnapshotRow, StoreError> {
    let bad = || {
        StoreError::Dag(Box::new(cairn_dag::DagError::Unsupported(
            "unreadable snapshot key".into(),
        )))
    };
    let (name, time) = k.split_at(k.len().checked_sub(9).ok_or_else(bad)?);
    let time: [u8; 8] = time
        .get(1..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(bad)?;
    Ok(SnapshotRow {
        name: String::from_utf8_lossy(name).into_owned(),
        time_ms: u64::from_be_bytes(time),
        cid: parse_cid(v)?,
    })
}

impl MetaTxn<'_> {
    /// Records a snapshot (replacing one of the same name and time).
    pub fn put_snapshot(&self, name: &str, time_ms: u64, cid: &Cid) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(SNAPSHOTS)?;
        table.insert(key(name, time_ms).as_slice(), cid.to_bytes().as_slice())?;
        Ok(())
    }

    /// Forgets a snapshot; returns whether it existed. Its blocks go at the next GC unless
    /// something else keeps them.
    pub fn delete_snapshot(&self, name: &str, time_ms: u64) -> Result<bool, StoreError> {
        let mut table = self.txn.open_table(SNAPSHOTS)?;
        Ok(table.remove(key(name, time_ms).as_slice())?.is_some())
    }

    /// The newest snapshot of `name`.
    pub fn latest_snapshot(&self, name: &str) -> Result<Option<SnapshotRow>, StoreError> {
        let table = self.txn.open_table(SNAPSHOTS)?;
        let p = prefix(name);
        let mut range = table.range(p.as_slice()..key(name, u64::MAX).as_slice())?;
        match range.next_back() {
            Some(row) => {
                let (k, v) = row?;
                Ok(Some(parse_row(k.value(), v.value())?))
            }
            None => Ok(None),
        }
    }
}

impl Store {
    /// Every snapshot (or those of `name`), by name then oldest first.
    pub fn snapshots(&self, name: Option<&str>) -> Result<Vec<SnapshotRow>, StoreError> {
        rows_in(&self.inner.index.db.begin_read()?, name)
    }
}

/// Every snapshot (or those of `name`) as `txn` sees them.
fn rows_in(txn: &ReadTransaction, name: Option<&str>) -> Result<Vec<SnapshotRow>, StoreError> {
    let table = txn.open_table(SNAPSHOTS)?;
    let mut out = Vec::new();
    let rows: Box<dyn Iterator<Item = _>> = match name {
        Some(n) => Box::new(table.range(prefix(n).as_slice()..=key(n, u64::MAX).as_slice())?),
        None => Box::new(table.iter()?),
    };
    for row in rows {
        let (k, v) = row?;
        out.push(parse_row(k.value(), v.value())?);
    }
    Ok(out)
}

/// Every snapshot root in `txn` (GC roots).
pub(crate) fn roots_in(txn: &ReadTransaction) -> Result<Vec<Cid>, StoreError> {
    Ok(rows_in(txn, None)?.into_iter().map(|s| s.cid).collect())
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use cairn_dag::CidVersion;
    use cairn_dag::file::encode_bytes;

    #[test]
    fn snapshots_are_listed_by_name_and_kept_by_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (ablocks, a) = encode_bytes(&vec![1u8; 300_000], CidVersion::V1);
        let (bblocks, b) = encode_bytes(b"b", CidVersion::V1);
        let batch = store.batch();
        for blk in ablocks.iter().chain(&bblocks) {
            batch.put(blk).unwrap();
        }
        batch
            .commit_with(|txn| {
                txn.put_snapshot("docs", 20, &a.link.cid)?;
                txn.put_snapshot("docs", 10, &b.link.cid)?;
                txn.put_snapshot("doc", 30, &b.link.cid)?;
                txn.put_snapshot("docs\u{1}", 5, &b.link.cid)
            })
            .unwrap();
        let docs = store.snapshots(Some("docs")).unwrap();
        assert_eq!(docs.iter().map(|s| s.time_ms).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(docs[1].cid, a.link.cid);
        assert_eq!(store.snapshots(None).unwrap().len(), 4);
        let latest = store
            .update(|txn| txn.latest_snapshot("docs"))
            .unwrap()
            .unwrap();
        assert_eq!((latest.name.as_str(), latest.time_ms), ("docs", 20));
        assert!(
            store
                .update(|txn| txn.latest_snapshot("nope"))
                .unwrap()
                .is_none()
        );

        // nothing is pinned, yet GC keeps every snapshot's blocks
        assert!(store.pins().unwrap().is_empty());
        assert_eq!(store.gc().unwrap().removed, 0);
        assert!(store.update(|txn| txn.delete_snapshot("docs", 20)).unwrap());
        assert!(store.gc().unwrap().removed > 0);
        assert!(!store.has(&a.link.cid).unwrap());
        assert!(store.has(&b.link.cid).unwrap());
    }
}
