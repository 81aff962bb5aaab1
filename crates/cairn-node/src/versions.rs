//! Bucket versioning. Every write records a version: with versioning `Enabled` a new version
//! id — opaque and unguessable (128 random bits), so nobody can walk a key's history by
//! counting; the order of versions is kept apart, by the global sequence number the versions
//! table is keyed with — otherwise the version `null`,
//! replacing the previous `null` one. A delete in a versioned bucket writes a delete marker;
//! deleting a specific version removes it and, if it was the newest, makes the next one
//! current. The objects table always holds the current version, so plain GETs and listings
//! never look at history. Every version's DAG is a GC root: history survives mistakes.

use crate::Objects;
use cairn_dag::Cid;
use cairn_store::{MetaTxn, VersionEntry};

use crate::model::codec::{decode, encode, now_ms};
use crate::model::records::{BucketRecord, ObjectInfo, ObjectMeta};
use crate::{Node, NodeError};

/// Versioning switched on.
pub const ENABLED: &str = "Enabled";
/// Versioning suspended (new writes are version `null`; history is kept).
pub const SUSPENDED: &str = "Suspended";

/// A new version id: 32 characters from a 62-letter alphabet (190 random bits), the shape of
/// S3's ids. Ids say nothing about order or count.
pub fn new_version_id() -> Result<String, NodeError> {
    crate::model::codec::random_string(
        32,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    )
}

fn bucket_of(txn: &MetaTxn<'_>, bucket: &str) -> Result<BucketRecord, NodeError> {
    txn.get(crate::model::records::BUCKETS, bucket)?
        .ok_or_else(|| NodeError::NoSuchBucket(bucket.to_owned()))
}

fn remove_null_versions(txn: &MetaTxn<'_>, bucket: &str, key: &str) -> Result<(), NodeError> {
    for v in txn.versions_of(bucket, key)? {
        let meta: ObjectMeta = decode(&v.record)?;
        if meta.version_id.is_none() {
            txn.delete_version(bucket, key, v.seq)?;
        }
    }
    Ok(())
}

/// Makes `cid` with `meta` the current version of `bucket/key`, versioned as the bucket says;
/// fills in `meta.version_id`.
pub(crate) fn record_put(
    txn: &MetaTxn<'_>,
    bucket: &str,
    key: &str,
    cid: &Cid,
    meta: &mut ObjectMeta,
) -> Result<(), NodeError> {
    let b = bucket_of(txn, bucket)?;
    let seq = txn.next_seq()?;
    if b.versioning.as_deref() == Some(ENABLED) {
        meta.version_id = Some(new_version_id()?);
    } else {
        meta.version_id = None;
        remove_null_versions(txn, bucket, key)?;
    }
    let record = encode(meta)?;
    txn.put_version(bucket, key, seq, Some(cid), &record)?;
    txn.put_object(bucket, key, cid, &record)?;
    Ok(())
}

/// Deletes the current version of `bucket/key` as the bucket's versioning says: a delete
/// marker when versioning was ever enabled, a plain removal otherwise.
pub(crate) fn record_delete(
    txn: &MetaTxn<'_>,
    bucket: &str,
    key: &str,
) -> Result<Deleted, NodeError> {
    let b = bucket_of(txn, bucket)?;
    match b.versioning.as_deref() {
        Some(state) => {
            if state != ENABLED {
                remove_null_versions(txn, bucket, key)?;
            }
            let seq = txn.next_seq()?;
            let marker = ObjectMeta {
                last_modified_ms: now_ms(),
                version_id: if state == ENABLED {
                    Some(new_version_id()?)
                } else {
                    None
                },
                ..Default::default()
            };
            txn.put_version(bucket, key, seq, None, &encode(&marker)?)?;
            txn.delete_object(bucket, key)?;
            Ok(Deleted {
                version_id: marker.version_id,
                delete_marker: true,
            })
        }
        None => {
            remove_null_versions(txn, bucket, key)?;
            txn.delete_object(bucket, key)?;
            Ok(Deleted::default())
        }
    }
}

/// One delete in `txn`: the current object (a delete marker when versioned) or, with
/// `version`, that version (the next newest takes its place when it was current). A version
/// that is not there is deleted already, as in S3. Nothing is written before a check fails.
fn delete_in(
    txn: &MetaTxn<'_>,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Deleted, NodeError> {
    bucket_of(txn, bucket)?;
    let Some(id) = version else {
        return record_delete(txn, bucket, key);
    };
    let versions = txn.versions_of(bucket, key)?;
    let Some((index, meta)) = find_version(&versions, id)? else {
        return Ok(Deleted {
            version_id: Some(id.to_owned()),
            delete_marker: false,
        });
    };
    let removed = &versions[index];
    txn.delete_version(bucket, key, removed.seq)?;
    if index == 0 {
        match versions.get(1) {
            Some(next) if next.cid.is_some() => {
                let cid = next.cid.expect("checked");
                txn.put_object(bucket, key, &cid, &next.record)?;
            }
            _ => {
                txn.delete_object(bucket, key)?;
            }
        }
    }
    Ok(Deleted {
        version_id: meta.version_id.or_else(|| Some("null".into())),
        delete_marker: removed.cid.is_none(),
    })
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// The version removed, or the delete marker written (`None`: version `null`).
    pub version_id: Option<String>,
    /// Whether a delete marker was written or removed.
    pub delete_marker: bool,
}

fn find_version(
    versions: &[VersionEntry],
    id: &str,
) -> Result<Option<(usize, ObjectMeta)>, NodeError> {
    for (i, v) in versions.iter().enumerate() {
        let meta: ObjectMeta = decode(&v.record)?;
        let matches = match meta.version_id.as_deref() {
            Some(mine) => mine == id,
            None => id == "null",
        };
        if matches {
            return Ok(Some((i, meta)));
        }
    }
    Ok(None)
}

/// One entry of a versions listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// Key.
    pub key: String,
    /// Version id (`None`: `null`).
    pub version_id: Option<String>,
    /// Whether this is the key's newest version.
    pub is_latest: bool,
    /// DAG root; `None` for a delete marker.
    pub cid: Option<Cid>,
    /// Metadata (for a delete marker, just its time).
    pub meta: ObjectMeta,
    /// Sequence number (for markers in paged listings).
    pub seq: u64,
}

impl Node {
    /// The sequence number of the `null` version of `bucket/key`, if there is one.
    fn null_version_seq(&self, bucket: &str, key: &str) -> Result<Option<u64>, NodeError> {
        for v in self.store().versions_of(bucket, key)? {
            if decode::<ObjectMeta>(&v.record)?.version_id.is_none() {
                return Ok(Some(v.seq));
            }
        }
        Ok(None)
    }
}
impl Objects<'_> {
    /// Deletes the current object (writing a delete marker when versioned) or, with
    /// `version`, that version.
    pub fn delete(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Deleted, NodeError> {
        let deleted = self
            .node
            .store()
            .update(|txn| delete_in(txn, bucket, key, version))?;
        self.node.replication().replicate(bucket)?;
        Ok(deleted)
    }

    /// Deletes each `(key, etag)` whose current object still has that ETag, in one
    /// transaction and one replication round; a key changed or gone since is kept. Returns
    /// the keys deleted. For removals decided on an earlier read (a processed folder leaves
    /// the home), so a file written since is never lost.
    pub fn delete_unchanged(
        &self,
        bucket: &str,
        objects: &[(String, String)],
    ) -> Result<Vec<String>, NodeError> {
        let deleted = self.node.store().update(|txn| {
            bucket_of(txn, bucket)?;
            let mut deleted = Vec::new();
            for (key, etag) in objects {
                let Some((_, record)) = txn.object(bucket, key)? else {
                    continue;
                };
                if decode::<ObjectMeta>(&record)?.etag == *etag {
                    delete_in(txn, bucket, key, None)?;
                    deleted.push(key.clone());
                }
            }
            Ok::<_, NodeError>(deleted)
        })?;
        if !deleted.is_empty() {
            self.node.replication().replicate(bucket)?;
        }
        Ok(deleted)
    }

    /// Deletes many keys (each as [`delete`](Self::delete) does) in one
    /// transaction and one replication round (S3's `DeleteObjects`). Each key has its own
    /// outcome: a key that fails (an unreadable version record) does not stop the others; a
    /// failure of the store itself aborts the whole batch, so nothing is half-deleted.
    pub fn delete_many(
        &self,
        bucket: &str,
        keys: &[(String, Option<String>)],
    ) -> Result<Vec<Result<Deleted, NodeError>>, NodeError> {
        let outcomes = self.node.store().update(|txn| {
            bucket_of(txn, bucket)?;
            let mut outcomes = Vec::with_capacity(keys.len());
            for (key, version) in keys {
                match delete_in(txn, bucket, key, version.as_deref()) {
                    Err(e) if e.kind() == crate::ErrorKind::Internal => return Err(e),
                    outcome => outcomes.push(outcome),
                }
            }
            Ok::<_, NodeError>(outcomes)
        })?;
        self.node.replication().replicate(bucket)?;
        Ok(outcomes)
    }

    /// A specific version of an object. A delete marker answers `MethodNotAllowed`.
    pub fn get_version(&self, bucket: &str, key: &str, id: &str) -> Result<ObjectInfo, NodeError> {
        // A read transaction: versioned GETs neither wait for writers nor commit. A bucket
        // with versions cannot be deleted, so the bucket is looked up only when none is found.
        let versions = self.node.store().versions_of(bucket, key)?;
        if versions.is_empty() {
            self.node.buckets().get(bucket)?;
        }
        match find_version(&versions, id)? {
            Some((i, meta)) => match versions[i].cid {
                Some(cid) => Ok(ObjectInfo {
                    key: key.to_owned(),
                    cid,
                    meta,
                }),
                None => Err(NodeError::DeleteMarker),
            },
            None => Err(NodeError::NoSuchVersion(id.to_owned())),
        }
    }

    /// Lists versions (newest first per key) of keys under `prefix`, after the marker
    /// `(key, version id)`; at most `max` entries.
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<VersionInfo>, bool), NodeError> {
        self.node.buckets().get(bucket)?;
        let after = match key_marker {
            Some(k) => {
                let seq = match version_marker {
                    Some("null") => self.node.null_version_seq(bucket, k)?,
                    Some(v) => {
                        let versions = self.node.store().versions_of(bucket, k)?;
                        find_version(&versions, v)?.map(|(i, _)| versions[i].seq)
                    }
                    None => None,
                };
                Some((k, seq))
            }
            None => None,
        };
        let rows = self.node.store().versions(bucket, prefix, after, max + 1)?;
        let truncated = rows.len() > max;
        let mut out = Vec::with_capacity(rows.len().min(max));
        let mut last_key: Option<String> = after.and_then(|(k, s)| s.map(|_| k.to_owned()));
        for row in rows.into_iter().take(max) {
            let meta: ObjectMeta = decode(&row.record)?;
            let is_latest = last_key.as_deref() != Some(row.key.as_str());
            last_key = Some(row.key.clone());
            out.push(VersionInfo {
                version_id: meta.version_id.clone(),
                key: row.key,
                is_latest,
                cid: row.cid,
                meta,
                seq: row.seq,
            });
        }
        Ok((out, truncated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    async fn put(node: &Node, key: &str, body: &'static [u8]) -> ObjectInfo {
        let s = stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(
            body,
        ))]);
        let staged = node
            .objects()
            .stage(None, s, crate::CidVersion::V1)
            .await
            .unwrap();
        node.objects()
            .commit(staged, "bkt", key, ObjectMeta::default())
            .unwrap()
    }

    /// A batch delete is one transaction with an outcome per key: current objects, a named
    /// version, a version that is not there, a key never written.
    #[tokio::test]
    async fn delete_many_answers_each_key() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        node.buckets().create("bkt", "me").unwrap();
        node.buckets().set_versioning("bkt", ENABLED).unwrap();
        put(&node, "a", b"a").await;
        let b = put(&node, "b", b"b").await;
        put(&node, "b", b"b2").await;
        let keys = vec![
            ("a".to_owned(), None),
            ("b".to_owned(), b.meta.version_id.clone()),
            ("b".to_owned(), Some("not-a-version".to_owned())),
            ("never".to_owned(), None),
        ];
        let out = node.objects().delete_many("bkt", &keys).unwrap();
        assert_eq!(out.len(), 4);
        let out: Vec<Deleted> = out.into_iter().map(Result::unwrap).collect();
        assert!(out[0].delete_marker && out[0].version_id.is_some());
        assert_eq!(out[1].version_id, b.meta.version_id);
        assert!(!out[1].delete_marker);
        assert_eq!(out[2].version_id.as_deref(), Some("not-a-version"));
        assert!(out[3].delete_marker);
        assert!(matches!(
            node.objects().get("bkt", "a"),
            Err(NodeError::NoSuchKey { .. })
        ));
        // b's newest version is still current
        assert_eq!(
            node.objects()
                .list_versions("bkt", "b", None, None, 10)
                .unwrap()
                .0
                .len(),
            1
        );
        assert!(matches!(
            node.objects().delete_many("nope", &keys),
            Err(NodeError::NoSuchBucket(_))
        ));
    }

    #[tokio::test]
    async fn history_markers_and_restore() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        node.buckets().create("bkt", "me").unwrap();
        let v0 = put(&node, "k", b"unversioned").await;
        assert_eq!(v0.meta.version_id, None);
        node.buckets().set_versioning("bkt", ENABLED).unwrap();
        let v1 = put(&node, "k", b"one").await;
        let v2 = put(&node, "k", b"two").await;
        let (id1, id2) = (
            v1.meta.version_id.clone().unwrap(),
            v2.meta.version_id.clone().unwrap(),
        );
        assert_ne!(id2, id1);
        assert!(id1.len() >= 16 && id1.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(node.objects().get("bkt", "k").unwrap().cid, v2.cid);
        assert_eq!(
            node.objects().get_version("bkt", "k", &id1).unwrap().cid,
            v1.cid
        );
        assert_eq!(
            node.objects().get_version("bkt", "k", "null").unwrap().cid,
            v0.cid
        );

        // a delete writes a marker; history stays readable
        let d = node.objects().delete("bkt", "k", None).unwrap();
        assert!(d.delete_marker);
        assert!(matches!(
            node.objects().get("bkt", "k"),
            Err(NodeError::NoSuchKey { .. })
        ));
        assert_eq!(
            node.objects().get_version("bkt", "k", &id2).unwrap().cid,
            v2.cid
        );
        let (list, truncated) = node
            .objects()
            .list_versions("bkt", "", None, None, 100)
            .unwrap();
        assert!(!truncated);
        assert_eq!(list.len(), 4);
        assert!(list[0].is_latest && list[0].cid.is_none());
        assert!(matches!(
            node.objects()
                .get_version("bkt", "k", d.version_id.as_deref().unwrap()),
            Err(NodeError::DeleteMarker)
        ));

        // removing the marker restores the previous version
        node.objects()
            .delete("bkt", "k", d.version_id.as_deref())
            .unwrap();
        assert_eq!(node.objects().get("bkt", "k").unwrap().cid, v2.cid);
        // removing the current version makes the one before current
        node.objects().delete("bkt", "k", Some(&id2)).unwrap();
        assert_eq!(node.objects().get("bkt", "k").unwrap().cid, v1.cid);

        // history keeps every DAG alive through GC
        node.store().gc().unwrap();
        for cid in [v0.cid, v1.cid] {
            assert!(node.store().has(&cid).unwrap());
        }

        // paging, two at a time
        let (page, truncated) = node
            .objects()
            .list_versions("bkt", "", None, None, 1)
            .unwrap();
        assert!(truncated);
        let (rest, _) = node
            .objects()
            .list_versions(
                "bkt",
                "",
                Some(&page[0].key),
                page[0].version_id.as_deref(),
                10,
            )
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert!(!rest[0].is_latest);

        // a bucket with history is not empty
        node.objects().delete("bkt", "k", None).unwrap();
        assert!(matches!(
            node.buckets().delete("bkt"),
            Err(NodeError::BucketNotEmpty(_))
        ));
    }
}
