//! Buckets as a capability ([`Node::buckets`]): create, read, list, change (public, policy,
//! redundancy, default encryption, versioning) and delete them. Every change of a bucket of
//! this node's gets a new head, held by its replica set before the call returns.

use crate::model::codec::now_ms;
use crate::model::records::{BUCKETS, BucketRecord, head_key, valid_bucket_name};
use crate::objects::{parse_redundancy, public_policy};
use crate::versions::{ENABLED, SUSPENDED};
use crate::{Node, NodeError};

/// A node's buckets ([`Node::buckets`]).
#[derive(Debug, Clone, Copy)]
pub struct Buckets<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Buckets: create, read, list, change and delete them.
    pub fn buckets(&self) -> Buckets<'_> {
        Buckets { node: self }
    }
}

impl Buckets<'_> {
    /// Creates a bucket. Re-creating one's own bucket succeeds (us-east-1 behaviour).
    pub fn create(&self, name: &str, owner: &str) -> Result<(), NodeError> {
        if !valid_bucket_name(name) {
            return Err(NodeError::InvalidBucketName(name.to_owned()));
        }
        // Our own tombstone of an earlier bucket of this name gives way (its sequence goes
        // on: the new bucket's first head follows it).
        let own_tombstone = self.node.is_own_or_unheld(name)?;
        let record = BucketRecord {
            created_ms: now_ms(),
            owner: owner.to_owned(),
            ..Default::default()
        };
        self.node.store().update(|txn| {
            if let Some(existing) = txn.get(BUCKETS, name)? {
                return if existing.owner == owner {
                    Ok(())
                } else {
                    Err(NodeError::BucketAlreadyExists(name.to_owned()))
                };
            }
            txn.put(BUCKETS, name, &record)?;
            txn.touch_bucket(name)?;
            if own_tombstone {
                txn.delete(crate::model::heads::RECORDS, &head_key(name))?;
            }
            Ok(())
        })?;
        self.node.replication().replicate(name)
    }

    /// `cairn bucket set-public`: the bucket gets (or, `public = false`, loses) the policy
    /// that lets anyone list it and read its current objects — [`public_policy`].
    pub fn set_public(&self, bucket: &str, public: bool) -> Result<BucketRecord, NodeError> {
        self.update(bucket, |b| {
            b.policy = public.then(|| public_policy(bucket));
            b.policy_public = public;
            b.policy_list = public;
            if !public {
                b.public = false;
            }
        })
    }

    /// Changes a bucket's record (public flag, policy, versioning, redundancy, encryption) in
    /// one transaction. A bucket of this node's gets a new head for it (mirrors see the
    /// change), held by its replica set before this returns, like a write.
    pub fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketRecord),
    ) -> Result<BucketRecord, NodeError> {
        let record = self.node.store().update(|txn| {
            let Some(mut record) = txn.get(BUCKETS, name)? else {
                return Err(NodeError::NoSuchBucket(name.to_owned()));
            };
            change(&mut record);
            txn.put(BUCKETS, name, &record)?;
            if record.mirror.is_none() {
                txn.touch_bucket(name)?;
            }
            Ok(record)
        })?;
        if record.mirror.is_none() {
            self.node.replication().replicate(name)?;
        }
        Ok(record)
    }

    /// How the cluster keeps `bucket`'s writes: the bucket's own policy, else the cluster's;
    /// `None` outside a cluster (or for writes outside any bucket, the cluster's default).
    pub fn redundancy(
        &self,
        bucket: Option<&str>,
    ) -> Result<Option<cairn_cluster::Redundancy>, NodeError> {
        let Some(cluster) = self.node.cluster() else {
            return Ok(None);
        };
        let own = match bucket {
            Some(b) => self
                .node
                .store()
                .read(BUCKETS, b)?
                .and_then(|r| r.redundancy),
            None => None,
        };
        Ok(Some(match own {
            Some(text) => parse_redundancy(&text)?,
            None => cluster.policy(),
        }))
    }

    /// Sets (or with `None` clears) `bucket`'s own redundancy policy, for the writes that
    /// follow; the bucket record travels to the replica set with the bucket's next head, like
    /// its other settings. A mirrored bucket is its owner's to change.
    pub fn set_redundancy(
        &self,
        bucket: &str,
        policy: Option<&str>,
    ) -> Result<BucketRecord, NodeError> {
        let policy = policy.map(parse_redundancy).transpose()?;
        if self.get(bucket)?.mirror.is_some() {
            return Err(NodeError::Unavailable(format!(
                "bucket {bucket:?} is another node's (mirrored here); change it on its owner or run `cairn bucket promote {bucket}`"
            )));
        }
        self.update(bucket, |b| b.redundancy = policy.map(|p| p.to_string()))
    }

    /// A bucket's record.
    pub fn get(&self, name: &str) -> Result<BucketRecord, NodeError> {
        self.node
            .store()
            .read(BUCKETS, name)?
            .ok_or_else(|| NodeError::NoSuchBucket(name.to_owned()))
    }

    /// Every bucket, by name.
    pub fn list(&self) -> Result<Vec<(String, BucketRecord)>, NodeError> {
        Ok(self.node.store().list(BUCKETS)?)
    }

    /// Deletes an empty bucket. One of this node's ends with a tombstone head (mirrors drop
    /// it), held by its replica set before this returns.
    pub fn delete(&self, name: &str) -> Result<(), NodeError> {
        self.node.store().update(|txn| {
            if txn.get(BUCKETS, name)?.is_none() {
                return Err(NodeError::NoSuchBucket(name.to_owned()));
            }
            if !txn.bucket_is_empty(name)? || !txn.bucket_has_no_versions(name)? {
                return Err(NodeError::BucketNotEmpty(name.to_owned()));
            }
            txn.delete(BUCKETS, name)?;
            // The next root of a bucket of ours is its tombstone head (mirrors drop it).
            txn.touch_bucket(name)?;
            Ok(())
        })?;
        self.node.replication().replicate(name)
    }

    /// Turns the bucket's default encryption on or off (making its key on first use).
    pub fn set_encryption(&self, bucket: &str, on: bool) -> Result<(), NodeError> {
        if on {
            self.node.bucket_key(bucket, true)?;
        }
        self.update(bucket, |rec| {
            if let Some(c) = &mut rec.encryption {
                c.default = on;
            }
        })?;
        Ok(())
    }

    /// Whether writes to the bucket are encrypted by default.
    pub fn encrypted(&self, bucket: &str) -> Result<bool, NodeError> {
        Ok(self.get(bucket)?.encryption.is_some_and(|c| c.default))
    }

    /// Sets a bucket's versioning state (`Enabled` or `Suspended`).
    pub fn set_versioning(&self, bucket: &str, status: &str) -> Result<(), NodeError> {
        if status != ENABLED && status != SUSPENDED {
            return Err(NodeError::Unsupported(format!(
                "versioning status {status:?}"
            )));
        }
        self.update(bucket, |b| b.versioning = Some(status.to_owned()))?;
        Ok(())
    }
}
