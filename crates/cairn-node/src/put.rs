//! One PUT as a whole operation ([`Node::put_object`]): the bucket checked, the write's
//! sealing chosen, the body streamed into a staged DAG, the door's own body checks run on it,
//! and the object committed under its write condition, then replicated. A door maps its
//! request onto a [`PutObject`] and does nothing else; nothing is visible unless every step
//! passes.

use bytes::Bytes;
use futures::Stream;

use crate::crypt::Sse;
use crate::model::records::{ObjectInfo, ObjectMeta};
use crate::objects::{StagedObject, WriteCondition};
use crate::{CidVersion, Node, NodeError};

/// The door's checks of a staged body (checksums, `Content-MD5`), run after the body is
/// staged and before the commit: an error aborts the write (its blocks are dropped); it may
/// record what it verified in the object's metadata.
pub type BodyCheck =
    Box<dyn FnOnce(&StagedObject, &mut ObjectMeta) -> Result<(), NodeError> + Send>;

/// One PUT of an object.
pub struct PutObject<S> {
    /// The bucket, which must exist.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The body, streamed.
    pub body: S,
    /// CID version of the object's DAG.
    pub version: CidVersion,
    /// What the request says about the object (size, ETag and version are the node's).
    pub meta: ObjectMeta,
    /// `If-Match` / `If-None-Match`, checked in the commit's transaction.
    pub condition: WriteCondition,
    /// What the request said about encryption.
    pub sse: Sse,
    /// The door's checks of the staged body.
    pub check: Option<BodyCheck>,
}

impl std::fmt::Debug for PutObject<()> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutObject")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Writes one object: see the module docs. The staged body holds a blocking thread only
    /// while it imports (bounded by [`crate::objects::MAX_STAGING`]); the sealing and the
    /// commit run on blocking threads.
    pub async fn put_object<S, E>(&self, put: PutObject<S>) -> Result<ObjectInfo, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let PutObject {
            bucket,
            key,
            body,
            version,
            mut meta,
            condition,
            sse,
            check,
        } = put;
        self.bucket(&bucket)?;
        let b = bucket.clone();
        let sealing = self.blocking(move |node| node.sealing_for(&b, sse)).await?;
        let staged = self
            .stage_object_sealed(Some(&bucket), body, version, sealing)
            .await?;
        if let Some(check) = check {
            check(&staged, &mut meta)?;
        }
        self.blocking(move |node| node.commit_object_if(staged, &bucket, &key, meta, &condition))
            .await
    }
}
