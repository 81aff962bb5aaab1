//! Which CIDs the node publishes to anonymous readers (the gateway's default policy): pinned
//! CIDs (what `cairn add` stored), objects of public buckets and the roots of public buckets.

use cairn_dag::Cid;

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
        let pinned = self.store().pins()?.iter().any(|(c, _)| c == cid);
        Ok(pinned.then(Published::default))
    }
}
