//! Which CIDs the node publishes to anonymous readers (the gateway, Bitswap strangers, the
//! provider records): pinned CIDs (what `cairn add` stored; an `/api/v1` upload's pin only
//! when it asked `?public=true`), the roots of current objects an
//! anonymous caller may read (by the version's `public-read` ACL or the bucket's policy — the
//! same [`crate::access::decide`] the S3 door asks), and the current root of a bucket anyone
//! may list and read. Everything reachable by path below a published CID is readable through
//! it; objects nobody published are not served by CID, and a public bucket's older roots are
//! not either (they may hold what was private then).

use crate::Access;
use cairn_dag::Cid;

use crate::NodeError;
use crate::access::{Action, Caller, Facts, decide};
use crate::model::codec::decode;
use crate::model::records::{BucketRecord, ObjectMeta};

/// Why a CID may be served, and what is known about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The `Content-Type` recorded for it, when it is an S3 object's root.
    pub content_type: Option<String>,
}

impl Access<'_> {
    /// `Some` when `cid` is published: pinned, the root of a current object anyone may read,
    /// or the current root of a bucket anyone may list and read.
    pub fn published(&self, cid: &Cid) -> Result<Option<Published>, NodeError> {
        let record = |bucket: &str| -> Result<Option<BucketRecord>, NodeError> {
            match self.node.buckets().get(bucket) {
                Ok(record) => Ok(Some(record)),
                Err(NodeError::NoSuchBucket(_)) => Ok(None),
                Err(e) => Err(e),
            }
        };
        for (bucket, key) in self.node.store().objects_with_cid(cid)? {
            let (Some((_, rec)), Some(b)) =
                (self.node.store().object(&bucket, &key)?, record(&bucket)?)
            else {
                continue;
            };
            let meta: ObjectMeta = decode(&rec)?;
            let facts = Facts {
                bucket: Some(&b),
                version: Some(&meta),
                current: true,
            };
            if decide(&Caller::Anonymous, Action::ReadObject, facts).is_some() {
                return Ok(Some(Published {
                    content_type: meta.content_type,
                }));
            }
        }
        if self.node.store().is_pinned(cid)? && !self.cid_access(cid)?.private_pin {
            return Ok(Some(Published::default()));
        }
        for bucket in self.node.store().buckets_with_root(cid)? {
            let current = self.node.store().latest_root(&bucket)?;
            if record(&bucket)?.is_some_and(|b| b.is_public())
                && current.is_some_and(|r| r.tree == *cid)
            {
                return Ok(Some(Published::default()));
            }
        }
        Ok(None)
    }
}
