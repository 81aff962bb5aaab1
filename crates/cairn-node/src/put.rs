//! Writes as whole operations: one PUT ([`Objects::put`]) — the bucket checked, the write's
//! sealing chosen, the body streamed into a staged DAG, the door's own body checks run on it,
//! and the object committed under its write condition, then replicated — and one part of a
//! multipart upload ([`Multipart::upload_part`]), its body streamed or copied from another object.
//! A door maps its request onto a [`PutObject`] or an [`UploadPart`] and does nothing else;
//! nothing is visible unless every step passes.

use crate::Files;
use crate::Multipart;
use crate::Objects;
use bytes::Bytes;
use futures::Stream;

use crate::crypt::{Key, Sse};
use crate::model::records::{ObjectInfo, ObjectMeta};
use crate::multipart::PartRecord;
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

/// One part of a multipart upload.
pub struct UploadPart<S> {
    /// The upload's id.
    pub upload: String,
    /// The bucket it was created for.
    pub bucket: String,
    /// The key it was created for.
    pub key: String,
    /// The part number (1–10 000).
    pub number: u32,
    /// The part's body, streamed (a request's, or another object's bytes for a copy).
    pub body: S,
    /// CID version of the part's DAG.
    pub version: CidVersion,
    /// The customer's key and its base64 MD5: an upload created with SSE-C needs the same
    /// key on every part (its MD5 is kept), one created without takes none.
    pub customer: Option<(Key, String)>,
    /// The door's checks of the staged body; the checksums they record are the part's.
    pub check: Option<BodyCheck>,
}

impl Node {
    /// [`add_stream`](Self::add_stream) with the commit given (an upload job's records who
    /// may read the file first), run on a blocking thread.
    pub(crate) async fn add_stream_with<S, E>(
        &self,
        body: S,
        version: CidVersion,
        commit: impl FnOnce(&Node, StagedObject) -> Result<cairn_dag::file::FileLink, NodeError>
        + Send
        + 'static,
    ) -> Result<cairn_dag::file::FileLink, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let staged = self.objects().stage(None, body, version).await?;
        self.blocking(move |node| commit(&node, staged)).await
    }
}
impl Files<'_> {
    /// Adds a file outside any bucket (`cairn add`, `/api/v0/add`): the body staged, then
    /// committed — pinned (and announced) when `pin`.
    pub async fn add_stream<S, E>(
        &self,
        body: S,
        version: CidVersion,
        pin: bool,
    ) -> Result<cairn_dag::file::FileLink, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.node
            .add_stream_with(body, version, move |node, staged| {
                node.commit_file(staged, pin)
            })
            .await
    }
}

impl Multipart<'_> {
    /// Writes one part: the upload checked against its bucket and key, the part sealed as the
    /// upload is (an upload without encryption takes no customer key), the body staged and
    /// checked, and the part committed (replacing an earlier one of that number).
    pub async fn upload_part<S, E>(&self, part: UploadPart<S>) -> Result<PartRecord, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let UploadPart {
            upload: id,
            bucket,
            key,
            number,
            body,
            version,
            customer,
            check,
        } = part;
        let upload = self.for_part(&id, &bucket, &key, customer.as_ref())?;
        let sealing = match &upload.meta.crypt {
            Some(crypt) => {
                let key = customer.as_ref().map(|c| &c.0);
                Some(self.node.upload_sealing(&bucket, crypt, key)?)
            }
            None => None,
        };
        let staged = self
            .node
            .stage_object_sealed(Some(&bucket), body, version, sealing)
            .await?;
        let mut meta = ObjectMeta::default();
        if let Some(check) = check {
            check(&staged, &mut meta)?;
        }
        self.node
            .blocking(move |node| {
                node.commit_part(staged, (&id, &bucket, &key), number, meta.checksums)
            })
            .await
    }
}

impl Objects<'_> {
    /// Writes one object: see the module docs. The staged body holds a blocking thread only
    /// while it imports (bounded by [`crate::objects::MAX_STAGING`]); the sealing and the
    /// commit run on blocking threads.
    pub async fn put<S, E>(&self, put: PutObject<S>) -> Result<ObjectInfo, NodeError>
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
        self.node.buckets().get(&bucket)?;
        let b = bucket.clone();
        let sealing = self
            .node
            .blocking(move |node| node.objects().sealing_for(&b, sse))
            .await?;
        let staged = self
            .node
            .stage_object_sealed(Some(&bucket), body, version, sealing)
            .await?;
        if let Some(check) = check {
            check(&staged, &mut meta)?;
        }
        self.node
            .blocking(move |node| node.commit_object_if(staged, &bucket, &key, meta, &condition))
            .await
    }
}
