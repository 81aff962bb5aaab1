//! Which CIDs the node publishes to anonymous readers (the gateway's default policy): pinned
//! CIDs (what `cairn add` stored), the roots of current objects in public buckets, and the
//! retained roots of public buckets. Everything reachable by path below a published CID is
//! readable through it; objects of private buckets are not served by CID.

use cairn_dag::Cid;

use crate::objects::{ObjectMeta, decode};
use crate::{Node, NodeError};

/// Why a CID may be served, and what is known about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// The `Content-Type` recorded for it, when it is an S3 object's root.
    pub content_type: Option<String>,
}

impl Node {
    /// `Some` when `cid` is published: pinned, the root of an object in a public bucket, or a
    /// root of a public bucket.
    pub fn published(&self, cid: &Cid) -> Result<Option<Published>, NodeError> {
        let is_public = |bucket: &str| -> Result<bool, NodeError> {
            Ok(match self.bucket(bucket) {
                Ok(record) => record.is_public(),
                Err(NodeError::NoSuchBucket(_)) => false,
                Err(e) => return Err(e),
            })
        };
        for (bucket, key) in self.store().objects_with_cid(cid)? {
            let Some((_, rec)) = self.store().object(&bucket, &key)? else {
                continue;
            };
            let meta: ObjectMeta = decode(&rec)?;
            if meta.public_read || is_public(&bucket)? {
                return Ok(Some(Published {
                    content_type: meta.content_type,
                }));
            }
        }
        if self.store().is_pinned(cid)? {
            return Ok(Some(Published::default()));
        }
        for bucket in self.store().buckets_with_root(cid)? {
            if is_public(&bucket)? {
                return Ok(Some(Published::default()));
            }
        }
        Ok(None)
    }
}
