//! Buckets other nodes own, served read-only here: each node shares the signed heads of its
//! own buckets (`/cairn/heads/1.0.0`, carried by the network layer), and a node that learns
//! of a newer head verifies its signature and mirrors that version — bucket record and
//! object rows, pointing at the owner's DAGs, whose blocks come over Bitswap when read. So
//! S3 GET/HEAD/LIST, the gateway and `cairn cat` on any node of a cluster read every bucket.
//!
//! A mirror is read-only (S3 writes answer `ServiceUnavailable`) and is replaced whole by
//! each newer head. A name that is also a local bucket stays local: the first owner wins.
//! Trust: any valid signature from a connected peer — a cluster gates who connects with its
//! pre-shared key or allow-list.

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

/// One shared bucket: its signed head and its record (ACL, owner, versioning).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SharedBucket {
    #[serde(with = "serde_bytes")]
    head: Vec<u8>,
    bucket: BucketRecord,
}

/// What one run of following did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Followed {
    /// Buckets whose mirror moved to a newer head.
    pub updated: Vec<String>,
    /// Objects written into mirrors.
    pub objects: usize,
}

impl Node {
    /// The heads of the buckets this node owns, encoded for peers.
    pub fn shared_heads(&self) -> Result<Vec<u8>, NodeError> {
        let mut out = Vec::new();
        for (name, bucket) in self.buckets()? {
            if bucket.mirror.is_some() {
                continue;
            }
            if let Some(row) = self.store().latest_root(&name)? {
                out.push(SharedBucket {
                    head: row.head,
                    bucket,
                });
            }
        }
        encode(&out)
    }

    /// Mirrors every bucket in `shared` (another node's [`Node::shared_heads`]) whose head is
    /// newer than what this node holds. Bad signatures are refused.
    pub fn follow_heads(&self, shared: &[u8]) -> Result<Followed, NodeError> {
        let list: Vec<SharedBucket> = decode(shared)?;
        let mut done = Followed::default();
        for item in list {
            let head = SignedHead::verify(&item.head, None)?;
            let name = head.payload.bucket.clone();
            if !crate::objects::valid_bucket_name(&name) {
                continue;
            }
            match self.bucket(&name) {
                Ok(local) => match &local.mirror {
                    None => continue, // ours
                    Some(m) if m.seq >= head.payload.seq => continue,
                    Some(_) => {}
                },
                Err(NodeError::NoSuchBucket(_)) => {}
                Err(e) => return Err(e),
            }
            done.objects += self.mirror(&head, item.bucket)?;
            done.updated.push(name);
        }
        if !done.updated.is_empty() {
            self.commit_roots()?;
        }
        Ok(done)
    }

    /// Makes the local mirror of `head.bucket` exactly that version.
    fn mirror(&self, head: &SignedHead, mut record: BucketRecord) -> Result<usize, NodeError> {
        let bucket = &head.payload.bucket;
        let version: VersionRecord = decode(&self.store().get(&head.payload.record)?)?;
        if version.bucket != *bucket || version.tree != head.payload.tree {
            return Err(NodeError::Unsupported(format!(
                "head of {bucket:?} names a record of another version"
            )));
        }
        let objects = self.index_objects(&version.objects)?;
        record.mirror = Some(Mirror {
            owner_key: hex(&head.public_key),
            seq: head.payload.seq,
        });
        let wanted: std::collections::BTreeMap<&str, &ObjectRecord> =
            objects.iter().map(|o| (o.key.as_str(), o)).collect();
        let stale: Vec<String> = self
            .store()
            .objects(bucket, "", None, usize::MAX)?
            .into_iter()
            .map(|o| o.key)
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
