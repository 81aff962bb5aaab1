//! Bucket roots in the metadata database: the keys changed since a bucket's last root (queued
//! in the same transaction as the change, so a crash never loses one), the history of roots
//! (GC roots while they are retained), and an index from a CID to the objects whose DAG it
//! roots (for publishing objects by CID).

use cairn_dag::Cid;
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use crate::tables::{
    BY_CID, COUNTERS, DIRTY, OBJECTS, ROOT_CIDS, ROOTS, RootValue, bucket_of_key, object_key,
    parse_cid, split_object_key,
};
use crate::{MetaTxn, Store, StoreError};

/// A key changed since its bucket's last root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyKey {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Stamp of the change (clearing with an older stamp leaves a newer change queued).
    pub stamp: u64,
}

/// One root in a bucket's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRow {
    /// Sequence number within the bucket (1, 2, ...).
    pub seq: u64,
    /// The dag-cbor version record.
    pub record: Cid,
    /// The UnixFS directory of the bucket's objects.
    pub tree: Cid,
    /// The index of object records.
    pub index: Cid,
    /// When it was committed, Unix milliseconds.
    pub time_ms: u64,
    /// The signed head naming it (the node layer's bytes).
    pub head: Vec<u8>,
}

fn root_key(bucket: &str, seq: u64) -> Vec<u8> {
    let mut k = object_key(bucket, "");
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn parse_root(
    key: &[u8],
    (record, tree, index, time_ms, head): (&[u8], &[u8], &[u8], u64, &[u8]),
) -> Result<RootRow, StoreError> {
    let seq = key
        .len()
        .checked_sub(8)
        .and_then(|at| key[at..].try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or_default();
    Ok(RootRow {
        seq,
        record: parse_cid(record)?,
        tree: parse_cid(tree)?,
        index: parse_cid(index)?,
        time_ms,
        head: head.to_vec(),
    })
}

fn by_cid_key(cid: &Cid, bucket: &str, key: &str) -> Vec<u8> {
    let mut k = cid.to_bytes();
    k.extend_from_slice(&object_key(bucket, key));
    k
}

fn root_cid_key(tree: &Cid, bucket: &str) -> Vec<u8> {
    let mut k = tree.to_bytes();
    k.extend_from_slice(bucket.as_bytes());
    k
}

/// Brings a store from before bucket roots (schema < 2) up: every object indexed by CID and
/// queued for its bucket's root, once.
pub(crate) fn upgrade_schema(txn: &WriteTransaction) -> Result<(), StoreError> {
    let schema = txn
        .open_table(COUNTERS)?
        .get("schema")?
        .map(|v| v.value())
        .unwrap_or(0);
    if schema < 2 {
        let meta = MetaTxn {
            txn,
            on_object_change: object_changed,
        };
        let objects = txn.open_table(OBJECTS)?;
        for row in objects.iter()? {
            let (k, v) = row?;
            let (bucket, key) = split_object_key(k.value());
            let cid = parse_cid(v.value().0)?;
            object_changed(&meta, &bucket, &key, None, Some(&cid))?;
        }
        txn.open_table(COUNTERS)?.insert("schema", 2)?;
    }
    Ok(())
}

/// Keeps the CID index and the dirty queue in step with an object change (the objects
/// table's [`crate::meta::ObjectHook`]).
pub(crate) fn object_changed(
    meta: &MetaTxn<'_>,
    bucket: &str,
    key: &str,
    old: Option<&Cid>,
    new: Option<&Cid>,
) -> Result<(), StoreError> {
    let mut by_cid = meta.txn.open_table(BY_CID)?;
    if let Some(old) = old {
        by_cid.remove(by_cid_key(old, bucket, key).as_slice())?;
    }
    if let Some(new) = new {
        by_cid.insert(by_cid_key(new, bucket, key).as_slice(), ())?;
    }
    let mut counters = meta.txn.open_table(COUNTERS)?;
    let stamp = counters.get("dirty")?.map(|v| v.value()).unwrap_or(0) + 1;
    counters.insert("dirty", stamp)?;
    meta.txn
        .open_table(DIRTY)?
        .insert(object_key(bucket, key).as_slice(), stamp)?;
    Ok(())
}

impl MetaTxn<'_> {
    /// Queues `bucket` for a new root even though no object changed (a new bucket gets its
    /// first, empty root this way): the empty key, which no object can have, is marked.
    pub fn touch_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        object_changed(self, bucket, "", None, None)
    }

    /// Takes `key` off the dirty queue unless it changed again after `stamp`.
    pub fn clear_dirty(&self, bucket: &str, key: &str, stamp: u64) -> Result<(), StoreError> {
        let mut dirty = self.txn.open_table(DIRTY)?;
        let k = object_key(bucket, key);
        let current = dirty.get(k.as_slice())?.map(|v| v.value());
        if current == Some(stamp) {
            dirty.remove(k.as_slice())?;
        }
        Ok(())
    }

    /// The newest root of `bucket`.
    pub fn latest_root(&self, bucket: &str) -> Result<Option<RootRow>, StoreError> {
        latest_root(&self.txn.open_table(ROOTS)?, bucket)
    }

    /// Every retained root of `bucket`, oldest first.
    pub fn root_history(&self, bucket: &str) -> Result<Vec<RootRow>, StoreError> {
        history(&self.txn.open_table(ROOTS)?, bucket)
    }

    /// Appends a root to `bucket`'s history.
    pub fn put_root(&self, bucket: &str, row: &RootRow) -> Result<(), StoreError> {
        let (record, tree, index) = (
            row.record.to_bytes(),
            row.tree.to_bytes(),
            row.index.to_bytes(),
        );
        self.txn.open_table(ROOTS)?.insert(
            root_key(bucket, row.seq).as_slice(),
            (
                record.as_slice(),
                tree.as_slice(),
                index.as_slice(),
                row.time_ms,
                row.head.as_slice(),
            ),
        )?;
        self.txn
            .open_table(ROOT_CIDS)?
            .insert(root_cid_key(&row.tree, bucket).as_slice(), ())?;
        Ok(())
    }

    /// Drops every retained root of `bucket` (a mirror of a bucket its owner deleted: the
    /// history is the owner's to keep); returns how many went.
    pub fn forget_history(&self, bucket: &str) -> Result<usize, StoreError> {
        let mut roots = self.txn.open_table(ROOTS)?;
        let rows = history(&roots, bucket)?;
        let mut root_cids = self.txn.open_table(ROOT_CIDS)?;
        for row in &rows {
            roots.remove(root_key(bucket, row.seq).as_slice())?;
            root_cids.remove(root_cid_key(&row.tree, bucket).as_slice())?;
        }
        Ok(rows.len())
    }

    /// Drops `bucket`'s roots older than `before_ms` (never its newest); returns how many.
    pub fn expire_roots(&self, bucket: &str, before_ms: u64) -> Result<usize, StoreError> {
        let mut roots = self.txn.open_table(ROOTS)?;
        let rows = history(&roots, bucket)?;
        let Some(newest) = rows.last().map(|r| r.seq) else {
            return Ok(0);
        };
        let expired: Vec<&RootRow> = rows
            .iter()
            .filter(|r| r.time_ms < before_ms && r.seq != newest)
            .collect();
        let mut root_cids = self.txn.open_table(ROOT_CIDS)?;
        for row in &expired {
            roots.remove(root_key(bucket, row.seq).as_slice())?;
            if !rows
                .iter()
                .any(|r| r.tree == row.tree && !expired.contains(&r))
            {
                root_cids.remove(root_cid_key(&row.tree, bucket).as_slice())?;
            }
        }
        Ok(expired.len())
    }
}

/// The history rows of `bucket`, oldest first.
fn rows_of<'t>(
    table: &'t impl ReadableTable<&'static [u8], RootValue>,
    bucket: &str,
) -> Result<redb::Range<'t, &'static [u8], RootValue>, StoreError> {
    let start = object_key(bucket, "");
    let end = root_key(bucket, u64::MAX);
    Ok(table.range(start.as_slice()..=end.as_slice())?)
}

fn latest_root(
    table: &impl ReadableTable<&'static [u8], RootValue>,
    bucket: &str,
) -> Result<Option<RootRow>, StoreError> {
    match rows_of(table, bucket)?.next_back() {
        Some(row) => {
            let (k, v) = row?;
            Ok(Some(parse_root(k.value(), v.value())?))
        }
        None => Ok(None),
    }
}

fn history(
    table: &impl ReadableTable<&'static [u8], RootValue>,
    bucket: &str,
) -> Result<Vec<RootRow>, StoreError> {
    let key_len = object_key(bucket, "").len() + 8;
    let mut out = Vec::new();
    for row in rows_of(table, bucket)? {
        let (k, v) = row?;
        if k.value().len() == key_len {
            out.push(parse_root(k.value(), v.value())?);
        }
    }
    Ok(out)
}

impl Store {
    /// Up to `limit` queued changes, in bucket and key order.
    pub fn dirty(&self, limit: usize) -> Result<Vec<DirtyKey>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(DIRTY)?;
        let mut out = Vec::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let full = k.value();
            let at = full.iter().position(|&b| b == 0).unwrap_or(full.len());
            out.push(DirtyKey {
                bucket: String::from_utf8_lossy(&full[..at]).into_owned(),
                key: String::from_utf8_lossy(full.get(at + 1..).unwrap_or_default()).into_owned(),
                stamp: v.value(),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The newest root of `bucket`.
    pub fn latest_root(&self, bucket: &str) -> Result<Option<RootRow>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        latest_root(&txn.open_table(ROOTS)?, bucket)
    }

    /// Every retained root of `bucket`, oldest first.
    pub fn root_history(&self, bucket: &str) -> Result<Vec<RootRow>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        history(&txn.open_table(ROOTS)?, bucket)
    }

    /// Every bucket with a retained root, deleted buckets included (their history expires
    /// like any other), in name order.
    pub fn history_buckets(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(ROOTS)?;
        let mut out: Vec<String> = Vec::new();
        let mut next: Option<Vec<u8>> = None;
        loop {
            // one seek per bucket: past `bucket \0 u64::MAX`
            let range = match &next {
                Some(from) => table.range::<&[u8]>(from.as_slice()..)?,
                None => table.range::<&[u8]>(..)?,
            };
            let Some(row) = range.into_iter().next() else {
                return Ok(out);
            };
            let key = row?.0.value().to_vec();
            let bucket = bucket_of_key(&key);
            out.push(String::from_utf8_lossy(bucket).into_owned());
            let mut after = bucket.to_vec();
            after.push(1); // `bucket \0 …` < `bucket \1`
            next = Some(after);
        }
    }

    /// Buckets with a retained root whose tree is `tree`.
    pub fn buckets_with_root(&self, tree: &Cid) -> Result<Vec<String>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(ROOT_CIDS)?;
        let prefix = tree.to_bytes();
        let mut out = Vec::new();
        for row in table.range(prefix.as_slice()..)? {
            let (k, _) = row?;
            let Some(bucket) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            out.push(String::from_utf8_lossy(bucket).into_owned());
        }
        Ok(out)
    }

    /// Distinct DAG roots of current objects, in CID-byte order, after `after` (exclusive);
    /// at most `limit`. Pages through every object root without holding them all.
    pub fn current_object_roots(
        &self,
        after: Option<&Cid>,
        limit: usize,
    ) -> Result<Vec<Cid>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(BY_CID)?;
        // Every row of `after` starts with its bytes; the first row past them all is the
        // first one not starting with them.
        let start = after.map(|c| c.to_bytes()).unwrap_or_default();
        let mut out: Vec<Cid> = Vec::new();
        for row in table.range(start.as_slice()..)? {
            let (k, _) = row?;
            let k = k.value();
            if !start.is_empty() && k.starts_with(&start) {
                continue;
            }
            if out
                .last()
                .is_some_and(|last| k.starts_with(&last.to_bytes()))
            {
                continue;
            }
            if out.len() == limit {
                break;
            }
            let mut reader = k;
            let cid = Cid::read_bytes(&mut reader).map_err(|e| {
                StoreError::Dag(Box::new(cairn_dag::DagError::Unsupported(format!(
                    "unreadable CID in metadata: {e}"
                ))))
            })?;
            out.push(cid);
        }
        Ok(out)
    }

    /// Current objects whose DAG root is `cid`: (bucket, key) pairs.
    pub fn objects_with_cid(&self, cid: &Cid) -> Result<Vec<(String, String)>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(BY_CID)?;
        let prefix = cid.to_bytes();
        let mut out = Vec::new();
        for row in table.range(prefix.as_slice()..)? {
            let (k, _) = row?;
            let Some(rest) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            let at = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            out.push((
                String::from_utf8_lossy(&rest[..at]).into_owned(),
                String::from_utf8_lossy(rest.get(at + 1..).unwrap_or_default()).into_owned(),
            ));
        }
        Ok(out)
    }
}

/// GC roots from bucket histories in `txn`: trees and indexes to mark with all they reach, and
/// version records to keep without following their links (the `prev` chain would keep every
/// expired root alive); those of buckets `foreign` says are another node's apart:
/// `((own deep, own shallow), (foreign deep, foreign shallow))`.
#[allow(clippy::type_complexity)]
pub(crate) fn history_roots_in(
    txn: &ReadTransaction,
    foreign: &dyn Fn(&[u8]) -> bool,
) -> Result<((Vec<Cid>, Vec<Cid>), (Vec<Cid>, Vec<Cid>)), StoreError> {
    let table = txn.open_table(ROOTS)?;
    let (mut own, mut theirs) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for row in table.iter()? {
        let (k, v) = row?;
        let to = if foreign(bucket_of_key(k.value())) {
            &mut theirs
        } else {
            &mut own
        };
        let row = parse_root(k.value(), v.value())?;
        to.0.push(row.tree);
        to.0.push(row.index);
        to.1.push(row.record);
    }
    Ok((own, theirs))
}
