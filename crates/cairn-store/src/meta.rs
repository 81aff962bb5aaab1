//! Bucket and object metadata in the store's redb database. Records are opaque bytes here (the
//! node layer owns their format); an object entry also carries its DAG root CID, which makes it
//! a GC root. Updates run inside one transaction, together with the blocks they refer to when
//! they come from a [`crate::WriteBatch`], so an object becomes visible exactly when its data is
//! durable.

use cairn_dag::Cid;
use redb::{
    ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction,
};

use crate::tables::{
    COUNTERS, LOGINS, OBJECTS, PARTS, PINS, VERSIONS, bucket_of_key, object_key, parse_cid,
};
use crate::{Store, StoreError};

/// What [`MetaTxn::remember_login`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginSeen {
    /// Not seen before: now remembered.
    Fresh,
    /// Seen before: a replay.
    Replayed,
    /// The memory is full: refuse for now.
    Full,
}

fn version_prefix(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k
}

fn version_key(bucket: &str, key: &str, seq: u64) -> Vec<u8> {
    let mut k = version_prefix(bucket, key);
    k.extend_from_slice(&(u64::MAX - seq).to_be_bytes());
    k
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// Object key.
    pub key: String,
    /// Sequence number (larger is newer).
    pub seq: u64,
    /// DAG root; `None` for a delete marker.
    pub cid: Option<Cid>,
    /// The node layer's record.
    pub record: Vec<u8>,
}

fn parse_version(
    bucket_len: usize,
    full: &[u8],
    cid: &[u8],
    record: &[u8],
) -> Result<VersionEntry, StoreError> {
    let body = &full[bucket_len + 1..];
    let (key, inv) = body.split_at(body.len().saturating_sub(9));
    let inv: [u8; 8] = inv
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            StoreError::Dag(Box::new(cairn_dag::DagError::Unsupported(
                "unreadable version key".into(),
            )))
        })?;
    Ok(VersionEntry {
        key: String::from_utf8_lossy(key).into_owned(),
        seq: u64::MAX - u64::from_be_bytes(inv),
        cid: if cid.is_empty() {
            None
        } else {
            Some(parse_cid(cid)?)
        },
        record: record.to_vec(),
    })
}

fn part_key(upload: &str, number: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(upload.len() + 5);
    k.extend_from_slice(upload.as_bytes());
    k.push(0);
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// One stored part of a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEntry {
    /// Part number (1–10000).
    pub number: u32,
    /// Root of the part's own DAG.
    pub cid: Cid,
    /// The node layer's record.
    pub record: Vec<u8>,
}

/// Every version of one key, newest first.
fn read_versions_of(
    table: &impl ReadableTable<&'static [u8], (&'static [u8], &'static [u8])>,
    bucket: &str,
    key: &str,
) -> Result<Vec<VersionEntry>, StoreError> {
    let prefix = version_prefix(bucket, key);
    let mut out = Vec::new();
    for row in table.range(prefix.as_slice()..)? {
        let (k, v) = row?;
        let full = k.value();
        if !full.starts_with(&prefix) || full.len() != prefix.len() + 8 {
            break;
        }
        let (cid, rec) = v.value();
        out.push(parse_version(bucket.len(), full, cid, rec)?);
    }
    Ok(out)
}

fn read_parts(
    table: &impl ReadableTable<&'static [u8], (&'static [u8], &'static [u8])>,
    upload: &str,
) -> Result<Vec<PartEntry>, StoreError> {
    let start = part_key(upload, 0);
    let prefix = &start[..upload.len() + 1];
    let mut out = Vec::new();
    for row in table.range(start.as_slice()..)? {
        let (k, v) = row?;
        let k = k.value();
        if !k.starts_with(prefix) || k.len() != prefix.len() + 4 {
            break;
        }
        let number = u32::from_be_bytes(k[prefix.len()..].try_into().expect("4 bytes"));
        let (cid, rec) = v.value();
        out.push(PartEntry {
            number,
            cid: parse_cid(cid)?,
            record: rec.to_vec(),
        });
    }
    Ok(out)
}

/// One object entry: key, DAG root and the node's record bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// Object key.
    pub key: String,
    /// Root of the object's DAG.
    pub cid: Cid,
    /// The node layer's record.
    pub record: Vec<u8>,
}

/// What runs in the same transaction whenever an object entry changes (bucket, key, old root,
/// new root): the roots queue and the by-CID index (`roots::object_changed`), handed over by
/// whoever opens the transaction (`index::Index::commit_with`).
pub(crate) type ObjectHook =
    fn(&MetaTxn<'_>, &str, &str, Option<&Cid>, Option<&Cid>) -> Result<(), StoreError>;

/// Metadata operations inside one write transaction.
pub struct MetaTxn<'t> {
    pub(crate) txn: &'t WriteTransaction,
    /// Runs on every object change ([`ObjectHook`]).
    pub(crate) on_object_change: ObjectHook,
}

impl std::fmt::Debug for MetaTxn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaTxn")
    }
}

impl MetaTxn<'_> {
    /// Whether a bucket holds no object.
    pub fn bucket_is_empty(&self, name: &str) -> Result<bool, StoreError> {
        let table = self.txn.open_table(OBJECTS)?;
        let start = object_key(name, "");
        let mut range = table.range(start.as_slice()..)?;
        Ok(match range.next() {
            Some(row) => !row?.0.value().starts_with(&start),
            None => true,
        })
    }

    /// An object's entry.
    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<(Cid, Vec<u8>)>, StoreError> {
        let table = self.txn.open_table(OBJECTS)?;
        let row = table.get(object_key(bucket, key).as_slice())?;
        match row {
            Some(v) => {
                let (cid, rec) = v.value();
                Ok(Some((parse_cid(cid)?, rec.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Creates or replaces an object's entry.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        cid: &Cid,
        record: &[u8],
    ) -> Result<(), StoreError> {
        let bytes = cid.to_bytes();
        let old = self
            .txn
            .open_table(OBJECTS)?
            .insert(
                object_key(bucket, key).as_slice(),
                (bytes.as_slice(), record),
            )?
            .map(|v| parse_cid(v.value().0))
            .transpose()?;
        (self.on_object_change)(self, bucket, key, old.as_ref(), Some(cid))
    }

    /// Removes an object's entry; returns whether it existed.
    pub fn delete_object(&self, bucket: &str, key: &str) -> Result<bool, StoreError> {
        let old = self
            .txn
            .open_table(OBJECTS)?
            .remove(object_key(bucket, key).as_slice())?
            .map(|v| parse_cid(v.value().0))
            .transpose()?;
        if old.is_some() {
            (self.on_object_change)(self, bucket, key, old.as_ref(), None)?;
        }
        Ok(old.is_some())
    }

    /// Removes every part of an upload.
    pub fn delete_parts(&self, upload: &str) -> Result<(), StoreError> {
        let mut parts = self.txn.open_table(PARTS)?;
        let numbers: Vec<u32> = read_parts(&parts, upload)?
            .iter()
            .map(|p| p.number)
            .collect();
        for n in numbers {
            parts.remove(part_key(upload, n).as_slice())?;
        }
        Ok(())
    }

    /// Records (or replaces) a part.
    pub fn put_part(
        &self,
        upload: &str,
        number: u32,
        cid: &Cid,
        record: &[u8],
    ) -> Result<(), StoreError> {
        let cid = cid.to_bytes();
        self.txn.open_table(PARTS)?.insert(
            part_key(upload, number).as_slice(),
            (cid.as_slice(), record),
        )?;
        Ok(())
    }

    /// The parts of an upload, by number.
    pub fn parts(&self, upload: &str) -> Result<Vec<PartEntry>, StoreError> {
        read_parts(&self.txn.open_table(PARTS)?, upload)
    }

    /// The next value of the version sequence.
    pub fn next_seq(&self) -> Result<u64, StoreError> {
        let mut table = self.txn.open_table(COUNTERS)?;
        let next = table.get("seq")?.map(|v| v.value()).unwrap_or(0) + 1;
        table.insert("seq", next)?;
        Ok(next)
    }

    /// Records a version (a delete marker when `cid` is `None`).
    pub fn put_version(
        &self,
        bucket: &str,
        key: &str,
        seq: u64,
        cid: Option<&Cid>,
        record: &[u8],
    ) -> Result<(), StoreError> {
        let cid = cid.map(|c| c.to_bytes()).unwrap_or_default();
        self.txn.open_table(VERSIONS)?.insert(
            version_key(bucket, key, seq).as_slice(),
            (cid.as_slice(), record),
        )?;
        Ok(())
    }

    /// Every version of one key, newest first.
    pub fn versions_of(&self, bucket: &str, key: &str) -> Result<Vec<VersionEntry>, StoreError> {
        read_versions_of(&self.txn.open_table(VERSIONS)?, bucket, key)
    }

    /// Removes one version; returns whether it existed.
    pub fn delete_version(&self, bucket: &str, key: &str, seq: u64) -> Result<bool, StoreError> {
        let mut table = self.txn.open_table(VERSIONS)?;
        let removed = table
            .remove(version_key(bucket, key, seq).as_slice())?
            .is_some();
        Ok(removed)
    }

    /// Whether a bucket holds no version at all (delete markers included).
    pub fn bucket_has_no_versions(&self, bucket: &str) -> Result<bool, StoreError> {
        let table = self.txn.open_table(VERSIONS)?;
        let start = object_key(bucket, "");
        let mut range = table.range(start.as_slice()..)?;
        Ok(match range.next() {
            Some(row) => !row?.0.value().starts_with(&start),
            None => true,
        })
    }

    /// Remembers a login of `user` signed for `epoch_ms`, after forgetting every login signed
    /// before `forget_before_ms` (they fail the clock check anyway). A login already
    /// remembered is `Replayed`; with `max` remembered, a new one is `Full`.
    pub fn remember_login(
        &self,
        user: &str,
        epoch_ms: u64,
        forget_before_ms: u64,
        max: u64,
    ) -> Result<LoginSeen, StoreError> {
        let mut table = self.txn.open_table(LOGINS)?;
        let cutoff = format!("{forget_before_ms:020}");
        let old: Vec<String> = table
            .range::<&str>(..cutoff.as_str())?
            .map(|row| row.map(|(k, _)| k.value().to_owned()))
            .collect::<Result<_, _>>()?;
        for key in old {
            table.remove(key.as_str())?;
        }
        let key = format!("{epoch_ms:020}\0{user}");
        if table.get(key.as_str())?.is_some() {
            return Ok(LoginSeen::Replayed);
        }
        if table.len()? >= max {
            return Ok(LoginSeen::Full);
        }
        table.insert(key.as_str(), &[][..])?;
        Ok(LoginSeen::Fresh)
    }

    /// Removes one reference to a pin (the pin goes with its last reference).
    pub fn unpin_once(&self, cid: &Cid) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(PINS)?;
        let key = cid.to_bytes();
        let count = table.get(key.as_slice())?.map(|v| v.value()).unwrap_or(0);
        if count > 1 {
            table.insert(key.as_slice(), count - 1)?;
        } else {
            table.remove(key.as_slice())?;
        }
        Ok(())
    }

    /// Whether `cid` is pinned.
    pub fn is_pinned(&self, cid: &Cid) -> Result<bool, StoreError> {
        let table = self.txn.open_table(PINS)?;
        Ok(table.get(cid.to_bytes().as_slice())?.is_some())
    }

    /// Adds a reference to a pin.
    pub fn pin(&self, cid: &Cid) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(PINS)?;
        let key = cid.to_bytes();
        let count = table.get(key.as_slice())?.map(|v| v.value()).unwrap_or(0);
        table.insert(key.as_slice(), count + 1)?;
        Ok(())
    }
}

impl Store {
    /// Runs `f` in one metadata transaction, committed only if it succeeds. It runs under the
    /// GC lock (shared), so a reference `f` adds is safe against GC *if* `f` finds, in this
    /// transaction, a reference that already keeps the same blocks (see [`crate::gc`]); blocks
    /// known only from an earlier read are not: hold them in a [`crate::WriteBatch`] and
    /// commit that instead. `f` must not start another update or commit.
    pub fn update<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&MetaTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let _shared = self.gc_shared()?;
        self.inner.index.commit_with(&[], &[], f)
    }

    /// An object's entry.
    pub fn object(&self, bucket: &str, key: &str) -> Result<Option<(Cid, Vec<u8>)>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(OBJECTS)?;
        match table.get(object_key(bucket, key).as_slice())? {
            Some(v) => {
                let (cid, rec) = v.value();
                Ok(Some((parse_cid(cid)?, rec.to_vec())))
            }
            None => Ok(None),
        }
    }

    /// Up to `limit` objects of `bucket` whose keys start with `prefix` and sort after `after`
    /// (or from the start of the prefix), in key order.
    pub fn objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectEntry>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(OBJECTS)?;
        let base = object_key(bucket, "");
        let from = object_key(bucket, prefix);
        // Seek straight to the later of the prefix start and the marker.
        let start = match after {
            Some(a) if a > prefix => object_key(bucket, a),
            _ => from.clone(),
        };
        let mut out = Vec::new();
        for row in table.range(start.as_slice()..)? {
            let (k, v) = row?;
            let full = k.value();
            if !full.starts_with(&from) {
                break;
            }
            let key = String::from_utf8_lossy(&full[base.len()..]).into_owned();
            if after.is_some_and(|a| key.as_str() <= a) {
                continue;
            }
            let (cid, rec) = v.value();
            out.push(ObjectEntry {
                key,
                cid: parse_cid(cid)?,
                record: rec.to_vec(),
            });
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The parts of an upload, by number.
    pub fn parts(&self, upload: &str) -> Result<Vec<PartEntry>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        read_parts(&txn.open_table(PARTS)?, upload)
    }

    /// Every version of one key, newest first (a read transaction: no writer lock, no commit).
    pub fn versions_of(&self, bucket: &str, key: &str) -> Result<Vec<VersionEntry>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        read_versions_of(&txn.open_table(VERSIONS)?, bucket, key)
    }

    /// Up to `limit` versions of keys in `bucket` starting with `prefix`, in key order and
    /// newest first within a key, after the version `(key, seq)` if given (or after every version
    /// of `key` when `seq` is `None`).
    pub fn versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, Option<u64>)>,
        limit: usize,
    ) -> Result<Vec<VersionEntry>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(VERSIONS)?;
        let from = object_key(bucket, prefix);
        let start = match after {
            Some((key, Some(seq))) if key >= prefix => version_key(bucket, key, seq),
            Some((key, None)) if key >= prefix => {
                let mut k = version_prefix(bucket, key);
                k.extend_from_slice(&[0xff; 9]); // past every version of `key`
                k
            }
            _ => from.clone(),
        };
        let mut out = Vec::new();
        for row in table.range(start.as_slice()..)? {
            let (k, v) = row?;
            let full = k.value();
            if !full.starts_with(&from) {
                break;
            }
            if full == start.as_slice() && matches!(after, Some((_, Some(_)))) {
                continue; // the marker version itself
            }
            let (cid, rec) = v.value();
            out.push(parse_version(bucket.len(), full, cid, rec)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// Every object, part and version root in `txn` (GC roots besides pins and bucket roots):
/// (this node's, those of buckets `foreign`
/// says are another node's). Parts are always this node's (its own uploads).
pub(crate) fn object_roots_in(
    txn: &ReadTransaction,
    foreign: &dyn Fn(&[u8]) -> bool,
) -> Result<(Vec<Cid>, Vec<Cid>), StoreError> {
    let (mut own, mut theirs) = (Vec::new(), Vec::new());
    for (table, by_bucket) in [
        (txn.open_table(OBJECTS)?, true),
        (txn.open_table(PARTS)?, false),
        (txn.open_table(VERSIONS)?, true),
    ] {
        for row in table.iter()? {
            let (k, v) = row?;
            let cid = v.value().0.to_vec();
            if cid.is_empty() {
                continue;
            }
            let cid = parse_cid(&cid)?;
            if by_bucket && foreign(bucket_of_key(k.value())) {
                theirs.push(cid);
            } else {
                own.push(cid);
            }
        }
    }
    Ok((own, theirs))
}
