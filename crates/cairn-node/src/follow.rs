//! Buckets other nodes own, served read-only here, and taking one over.
//!
//! Every node shares the signed heads it knows (`/cairn/heads/1.0.0`, carried by the network
//! layer): those of its own buckets and those it holds for others. In a cluster an owner also
//! pushes each new head to the bucket's replica set before acknowledging the write
//! ([`crate::replicate`]), which keeps it as a record (`head/BUCKET`). Received heads are
//! verified and held ([`Node::hold_heads`]); [`Node::mirror_held`] then makes each held bucket
//! a read-only mirror of its newest head — bucket record and object rows pointing at the
//! owner's DAGs, whose blocks come from the cluster or Bitswap when read. So S3 GET/HEAD/LIST,
//! the gateway and `cairn cat` on any node serve every bucket, including those of a dead
//! owner (heads are re-shared, so a node that joins later learns them too).
//!
//! The bucket's record (ACL, policy, versioning, sealed key) comes from the signed version
//! ([`crate::roots::VersionRecord::settings`]), and a change of it alone is a new head. A
//! bucket its owner deletes ends with a tombstone head: mirrors drop it and pass the
//! tombstone on; older heads no longer bring it back.
//!
//! A mirror is read-only (S3 writes answer `ServiceUnavailable`). [`Node::promote`] takes a
//! mirrored bucket over: the node gathers the newest head from its peers, becomes the owner
//! and signs its next heads with `taken_from` naming the previous owner and a sequence that
//! continues the previous one. A previous owner that comes back and sees such a head steps
//! down to a mirror. A name that is also a local bucket otherwise stays local (first owner
//! wins). Trust: any valid signature from a connected peer — a cluster gates who connects
//! with its pre-shared key or allow-list.

use serde::{Deserialize, Serialize};

use crate::objects::{BucketRecord, decode, encode};
use crate::roots::{ObjectRecord, SignedHead, VersionRecord};
use crate::{Node, NodeError};

/// Where a mirrored bucket comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    /// The owner node's ed25519 public key, hex.
    pub owner_key: String,
    /// The head's sequence number now mirrored.
    pub seq: u64,
}

/// One shared bucket: its signed head and its record (ACL, owner, versioning) — mirrors take
/// the record from the signed version ([`VersionRecord::settings`]) and use this one only
/// for heads from before it was there. A tombstone head (the owner deleted the bucket) comes
/// without one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SharedBucket {
    #[serde(with = "serde_bytes")]
    pub(crate) head: Vec<u8>,
    pub(crate) bucket: Option<BucketRecord>,
}

/// What one run of following did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Followed {
    /// Buckets whose mirror moved to a newer head.
    pub updated: Vec<String>,
    /// Objects written into mirrors.
    pub objects: usize,
}

/// The record key under which a bucket's head is kept on its replica set.
pub fn head_key(bucket: &str) -> String {
    format!("head/{bucket}")
}

impl Node {
    /// The heads this node knows, encoded for peers: its own buckets' and those it holds for
    /// others (so a node that joins after an owner died still learns its buckets).
    pub fn shared_heads(&self) -> Result<Vec<u8>, NodeError> {
        let mut out = Vec::new();
        for (name, bucket) in self.buckets()? {
            if bucket.mirror.is_some() {
                continue;
            }
            if let Some(row) = self.store().latest_root(&name)? {
                out.push(SharedBucket {
                    head: row.head,
                    bucket: Some(bucket),
                });
            }
        }
        for (key, bytes) in self.store().records()? {
            if key.starts_with("head/") {
                out.push(decode(&bytes)?);
            }
        }
        encode(&out)
    }

    /// Holds every head of `shared` (another node's [`Node::shared_heads`]) newer than the one
    /// held for its bucket, then mirrors what changed. Bad signatures are refused.
    pub fn follow_heads(&self, shared: &[u8]) -> Result<Followed, NodeError> {
        self.hold_shared(shared)?;
        self.mirror_held()
    }

    /// Holds every head of `shared` newer than the one held for its bucket (mirrored by the
    /// next [`Node::mirror_held`]). Bad signatures are refused.
    pub fn hold_shared(&self, shared: &[u8]) -> Result<(), NodeError> {
        for (item, head) in verified_shared(shared)? {
            self.hold_head(item, &head)?;
        }
        Ok(())
    }

    /// Keeps one encoded [`SharedBucket`] pushed by its owner (a record of the bucket's
    /// replica set) when it verifies and is newer than the one held.
    pub fn hold_heads(&self, key: &str, bytes: &[u8]) -> Result<(), NodeError> {
        let (item, head) = verified_record(key, bytes)?;
        self.hold_head(item, &head)
    }

    /// Keeps `item`, whose head (already verified) is `head`, when it is newer than the one
    /// held. Only verified heads are ever kept, so held ones are read back without verifying.
    fn hold_head(&self, item: SharedBucket, head: &SignedHead) -> Result<(), NodeError> {
        let name = &head.payload.bucket;
        if !crate::objects::valid_bucket_name(name)
            || head.public_key.as_slice() == self.identity()?.public_key()
        {
            return Ok(()); // not a bucket, or our own
        }
        let key = head_key(name);
        let bytes = encode(&item)?;
        self.store().update(|txn| {
            if let Some(held) = txn.record(&key)?
                && held_head(&held)?.1.payload.seq >= head.payload.seq
            {
                return Ok(());
            }
            txn.put_record(&key, &bytes)?;
            Ok::<_, NodeError>(())
        })
    }

    /// Mirrors every held head newer than the local mirror of its bucket.
    pub fn mirror_held(&self) -> Result<Followed, NodeError> {
        let mut done = Followed::default();
        let me = self.identity()?.public_key();
        for (key, bytes) in self.store().records()? {
            if !key.starts_with("head/") {
                continue;
            }
            let (item, head) = held_head(&bytes)?;
            if head.public_key.as_slice() == me {
                continue; // our own tombstone, kept to be shared
            }
            let name = head.payload.bucket.clone();
            match self.bucket(&name) {
                Ok(local) => match &local.mirror {
                    Some(m) if m.seq >= head.payload.seq => continue,
                    Some(_) => {}
                    None => {
                        // Ours — unless another node took it over from us meanwhile.
                        let ours = self.store().latest_root(&name)?.map_or(0, |r| r.seq);
                        let from_us =
                            head.payload.taken_from.as_ref().map(|k| k.as_slice()) == Some(&me[..]);
                        if !(from_us && head.payload.seq > ours) {
                            continue;
                        }
                        tracing::warn!(
                            bucket = name,
                            seq = head.payload.seq,
                            "bucket was taken over by another node; serving it read-only"
                        );
                    }
                },
                Err(NodeError::NoSuchBucket(_)) if head.payload.deleted => continue,
                Err(NodeError::NoSuchBucket(_)) => {}
                Err(e) => return Err(e),
            }
            if head.payload.deleted {
                self.drop_mirror(&name, head.payload.seq)?;
            } else {
                done.objects += self.mirror(&head, item.bucket)?;
            }
            done.updated.push(name);
        }
        if !done.updated.is_empty() {
            self.commit_roots()?;
        }
        Ok(done)
    }

    /// Takes over `bucket`, a mirror of a node that is gone: gathers the newest head the
    /// cluster holds, mirrors it, and makes this node the owner, its next head continuing
    /// the previous owner's sequence. Refused while the owner is connected (unless `force`)
    /// and for a bucket that is already this node's. Returns the new head's sequence.
    pub fn promote(&self, bucket: &str, force: bool) -> Result<u64, NodeError> {
        if let Some(cluster) = self.cluster() {
            for bytes in cluster.gather_records_blocking(&head_key(bucket)) {
                let held = decode::<SharedBucket>(&bytes).and_then(|item| {
                    let head = SignedHead::verify(&item.head, None)?;
                    self.hold_head(item, &head)
                });
                if let Err(e) = held {
                    tracing::debug!(bucket, "a gathered head was refused: {e}");
                }
            }
        }
        self.mirror_held()?;
        let record = self.bucket(bucket)?;
        let Some(mirror) = record.mirror.clone() else {
            return Err(NodeError::Unsupported(format!(
                "bucket {bucket:?} is already this node's"
            )));
        };
        if !force
            && let Some(cluster) = self.cluster()
            && cluster.is_up(&peer_id_of(&unhex(&mirror.owner_key)))
        {
            return Err(NodeError::Unsupported(format!(
                "the owner of {bucket:?} is connected; write through it (or force the takeover)"
            )));
        }
        self.store().update(|txn| {
            let record = BucketRecord {
                mirror: None,
                taken_over: Some(mirror.clone()),
                ..record
            };
            txn.put_bucket(bucket, &encode(&record)?)?;
            txn.touch_bucket(bucket)?;
            Ok::<_, NodeError>(())
        })?;
        self.commit_roots()?;
        self.replicate_bucket(bucket)?;
        let seq = self.store().latest_root(bucket)?.map_or(0, |r| r.seq);
        tracing::info!(
            bucket,
            seq,
            from = mirror.owner_key,
            "bucket taken over: this node owns it now"
        );
        Ok(seq)
    }

    /// Drops the local mirror of a bucket its owner deleted (tombstone head `seq`): its
    /// objects and its record, in one commit. The held tombstone stays, so an older head of
    /// the bucket is not mirrored again, and is shared on.
    fn drop_mirror(&self, bucket: &str, seq: u64) -> Result<(), NodeError> {
        let keys = self.object_keys(bucket)?;
        self.store().update(|txn| {
            for key in &keys {
                txn.delete_object(bucket, key)?;
            }
            txn.delete_bucket(bucket)?;
            Ok::<_, NodeError>(())
        })?;
        tracing::info!(bucket, seq, "the owner deleted the bucket; mirror dropped");
        Ok(())
    }

    /// Whether a bucket gone from here was this node's: no head of it is held for another
    /// node (or the one held is this node's own tombstone).
    pub(crate) fn is_own_or_unheld(&self, bucket: &str) -> Result<bool, NodeError> {
        Ok(match self.store().record(&head_key(bucket))? {
            None => true,
            Some(bytes) => {
                held_head(&bytes)?.1.public_key.as_slice() == self.identity()?.public_key()
            }
        })
    }

    /// Makes the local mirror of `head.bucket` exactly that version.
    fn mirror(&self, head: &SignedHead, shared: Option<BucketRecord>) -> Result<usize, NodeError> {
        let bucket = &head.payload.bucket;
        let version: VersionRecord = decode(&self.store().get(&head.payload.record)?)?;
        if version.bucket != *bucket || version.tree != head.payload.tree {
            return Err(NodeError::Unsupported(format!(
                "head of {bucket:?} names a record of another version"
            )));
        }
        let mut record = version.settings.clone().or(shared).ok_or_else(|| {
            NodeError::Unsupported(format!(
                "head of {bucket:?} came without the bucket's record"
            ))
        })?;
        let objects = self.index_objects(&version.objects)?;
        record.mirror = Some(Mirror {
            owner_key: hex(&head.public_key),
            seq: head.payload.seq,
        });
        record.taken_over = None;
        let wanted: std::collections::BTreeMap<&str, &ObjectRecord> =
            objects.iter().map(|o| (o.key.as_str(), o)).collect();
        let stale: Vec<String> = self
            .object_keys(bucket)?
            .into_iter()
            .filter(|k| !wanted.contains_key(k.as_str()))
            .collect();
        self.store().update(|txn| {
            txn.put_bucket(bucket, &encode(&record)?)?;
            for key in &stale {
                txn.delete_object(bucket, key)?;
            }
            for o in &objects {
                txn.put_object(bucket, &o.key, &o.data, &encode(&o.meta)?)?;
            }
            Ok::<_, NodeError>(())
        })?;
        tracing::info!(
            bucket,
            seq = head.payload.seq,
            objects = objects.len(),
            "mirrored"
        );
        Ok(objects.len())
    }
}

/// The items of a peer's shared heads (its [`Node::shared_heads`]), each head verified: a bad
/// signature fails the whole answer.
fn verified_shared(shared: &[u8]) -> Result<Vec<(SharedBucket, SignedHead)>, NodeError> {
    let list: Vec<SharedBucket> = decode(shared)?;
    list.into_iter()
        .map(|item| {
            let head = SignedHead::verify(&item.head, None)?;
            Ok((item, head))
        })
        .collect()
}

/// A head record pushed under `key`, its head verified and of the bucket `key` names.
fn verified_record(key: &str, bytes: &[u8]) -> Result<(SharedBucket, SignedHead), NodeError> {
    let item: SharedBucket = decode(bytes)?;
    let head = SignedHead::verify(&item.head, None)?;
    if key != head_key(&head.payload.bucket) {
        return Err(NodeError::Unsupported(format!(
            "record {key:?} holds the head of bucket {:?}",
            head.payload.bucket
        )));
    }
    Ok((item, head))
}

/// What a node does with heads received from peers, without the node: the decoding and
/// verification of [`Node::hold_shared`] (a `/cairn/heads/1.0.0` answer) and
/// [`Node::hold_heads`] (a head record). For the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub mod received {
    use super::*;

    /// [`Node::hold_shared`]'s reading of `shared`: the verified heads.
    pub fn shared_heads(shared: &[u8]) -> Result<Vec<SignedHead>, NodeError> {
        Ok(verified_shared(shared)?
            .into_iter()
            .map(|(_, h)| h)
            .collect())
    }

    /// [`Node::hold_heads`]'s reading of a record: its verified head.
    pub fn head_record(key: &str, bytes: &[u8]) -> Result<SignedHead, NodeError> {
        Ok(verified_record(key, bytes)?.1)
    }
}

/// A held record and its head, decoded (verified when it was kept).
fn held_head(bytes: &[u8]) -> Result<(SharedBucket, SignedHead), NodeError> {
    let item: SharedBucket = decode(bytes)?;
    let head = decode(&item.head)?;
    Ok((item, head))
}

/// Records received from cluster peers: bucket heads, verified and held by the node.
pub(crate) struct HeadRecords(pub(crate) Node);

impl cairn_cluster::RecordSink for HeadRecords {
    fn accept(&self, key: &str, bytes: &[u8]) -> Result<(), String> {
        self.0.hold_heads(key, bytes).map_err(|e| e.to_string())
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.store().record(key).ok().flatten()
    }
}

/// The libp2p peer id (bytes) of an ed25519 public key: the identity multihash of its
/// protobuf encoding (`KeyType = Ed25519`, `Data = key`), as the libp2p spec defines it.
pub fn peer_id_of(public_key: &[u8]) -> Vec<u8> {
    let mut protobuf = vec![0x08, 0x01, 0x12, public_key.len() as u8];
    protobuf.extend_from_slice(public_key);
    let mut id = vec![0x00, protobuf.len() as u8];
    id.extend_from_slice(&protobuf);
    id
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex to bytes (invalid digits give an empty result: no key matches it).
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_peer_ids_follow_the_libp2p_spec() {
        let key = [7u8; 32];
        assert_eq!(unhex(&hex(&key)), key.to_vec());
        assert!(unhex("zz").is_empty());
        let id = peer_id_of(&key);
        assert_eq!(id.len(), 38);
        assert_eq!(&id[..6], &[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    }
}
