//! Cairn's S3 front end: the `s3s` [`S3`] trait implemented over [`cairn_node::Node`]'s object
//! service. s3s brings SigV4 (header and presigned), aws-chunked bodies, XML and routing; this
//! crate only maps S3 operations onto the service and back, so an s3s upgrade touches this
//! crate alone. No storage logic lives here.
//!
//! Every GET and HEAD returns the object's CID in `x-amz-meta-cid`; clients cannot set it.

#![warn(missing_docs)]

mod access;
#[macro_use]
mod macros;

pub mod acl;
pub mod auth;
mod body;
mod bucket;
pub mod checksum;
pub mod conditional;
pub mod convert;
mod copy;
pub mod front;
mod list;
mod multipart;
mod object;
pub mod sse;
mod tagging;

use std::ops::Range;

use body::{checked_body, staging_error};
use cairn_node::model::records::{ObjectInfo, ObjectMeta};
use cairn_node::put::{BodyCheck, PutObject};
use cairn_node::{CidVersion, Node, NodeError};
use convert::*;
use s3s::dto::*;
use s3s::{S3, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

/// The one region this node answers for.
pub const REGION: &str = "us-east-1";

/// The S3 service over one node.
#[derive(Debug, Clone)]
pub struct CairnS3 {
    node: Node,
    cid_version: CidVersion,
    ids: auth::Identities,
}

impl CairnS3 {
    /// Serves `node`; new objects are encoded as `cid_version` (0: what `ipfs add` gives).
    pub fn new(node: Node, cid_version: CidVersion, ids: auth::Identities) -> Self {
        CairnS3 {
            node,
            cid_version,
            ids,
        }
    }

    /// The user behind a request (`anonymous` without credentials).
    fn user(&self, credentials: &Option<s3s::auth::Credentials>) -> String {
        self.ids
            .user(credentials)
            .unwrap_or_else(|| "anonymous".to_owned())
    }

    /// Runs a blocking service call (a commit syncs the disk) off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Node) -> Result<T, cairn_node::NodeError> + Send + 'static,
    ) -> S3Result<T> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || f(node))
            .await
            .map_err(|e| s3_error!(InternalError, "task failed: {e}"))?
            .map_err(s3_err)
    }
}

/// What the gate left for the operation (an authorization it made); its absence is a
/// refusal, never a pass.
fn granted<T: Clone + Send + Sync + 'static>(extensions: &http::Extensions) -> S3Result<&T> {
    extensions
        .get::<T>()
        .ok_or_else(|| s3_error!(AccessDenied, "the request was not authorized"))
}

fn owner(id: &str) -> Owner {
    Owner {
        display_name: Some(id.to_owned()),
        id: Some(id.to_owned()),
    }
}

/// The metadata a PUT or a REPLACE copy sets.
#[allow(clippy::too_many_arguments)]
fn meta_from(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<Metadata>,
) -> ObjectMeta {
    // `aws-chunked` describes the transfer, not the object (S3 drops it).
    let content_encoding = content_encoding.and_then(|e| {
        let kept: Vec<&str> = e
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!kept.is_empty()).then(|| kept.join(", "))
    });
    ObjectMeta {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires: expires.as_ref().and_then(expires_to_string),
        user: metadata_in(metadata),
        ..Default::default()
    }
}

fn list_entry(info: &ObjectInfo, url: bool, with_owner: Option<&str>) -> Object {
    Object {
        key: Some(if url {
            url_encode(&info.key)
        } else {
            info.key.clone()
        }),
        e_tag: Some(etag(&info.meta)),
        size: Some(info.meta.size as i64),
        last_modified: Some(timestamp(info.meta.last_modified_ms)),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        owner: with_owner.map(owner),
        ..Default::default()
    }
}

fn prefixes(list: &[String], url: bool) -> Option<CommonPrefixList> {
    (!list.is_empty()).then(|| {
        list.iter()
            .map(|p| CommonPrefix {
                prefix: Some(if url { url_encode(p) } else { p.clone() }),
            })
            .collect()
    })
}

/// An ETag condition header as the node's write condition wants it: the ETag or `*`.
fn etag_condition(c: &ETagCondition) -> String {
    match c {
        ETagCondition::Any => "*".to_owned(),
        ETagCondition::ETag(e) => e.value().to_owned(),
    }
}

/// `x-amz-copy-source-range: bytes=first-last`, which (unlike Range) must lie inside the
/// source.
fn copy_source_range(header: &str, size: u64) -> S3Result<Range<u64>> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "invalid x-amz-copy-source-range {header:?}"
        )
    };
    let (first, last) = header
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = first.trim().parse().map_err(|_| bad())?;
    let last: u64 = last.trim().parse().map_err(|_| bad())?;
    if first > last || last >= size {
        return Err(s3_error!(
            InvalidRange,
            "The requested range is not satisfiable"
        ));
    }
    Ok(first..last + 1)
}

fn part_number(n: i32) -> S3Result<u32> {
    if (1..=10_000).contains(&n) {
        Ok(n as u32)
    } else {
        Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000"
        ))
    }
}

/// A page size asked for (`max-keys`, `max-parts`, `max-uploads`), within S3's 0..=1000.
fn max_keys(m: Option<i32>) -> usize {
    m.map_or(1000, |m| m.clamp(0, 1000) as usize)
}

#[async_trait::async_trait]
impl S3 for CairnS3 {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.handle_list_buckets(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.handle_create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.handle_head_bucket(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.handle_delete_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.handle_get_bucket_location(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.handle_put_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.handle_get_object(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.handle_head_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.handle_delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.handle_delete_objects(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.handle_copy_object(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.handle_list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.handle_list_objects_v2(req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        self.handle_list_object_versions(req).await
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        self.handle_put_bucket_versioning(req).await
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.handle_get_bucket_versioning(req).await
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        self.handle_put_bucket_encryption(req).await
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        self.handle_get_bucket_encryption(req).await
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        self.handle_delete_bucket_encryption(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.handle_create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.handle_upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.handle_upload_part_copy(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.handle_complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.handle_abort_multipart_upload(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.handle_list_parts(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.handle_list_multipart_uploads(req).await
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        self.handle_get_bucket_acl(req).await
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        self.handle_put_bucket_acl(req).await
    }

    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        self.handle_get_object_acl(req).await
    }

    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        self.handle_put_object_acl(req).await
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        self.handle_put_bucket_policy(req).await
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        self.handle_get_bucket_policy(req).await
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        self.handle_delete_bucket_policy(req).await
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.handle_put_object_tagging(req).await
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        self.handle_get_object_tagging(req).await
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        self.handle_delete_object_tagging(req).await
    }

    async fn get_bucket_cors(
        &self,
        _req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        self.handle_get_bucket_cors(_req).await
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        _req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        self.handle_get_bucket_lifecycle_configuration(_req).await
    }

    async fn get_bucket_website(
        &self,
        _req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        self.handle_get_bucket_website(_req).await
    }

    async fn get_bucket_tagging(
        &self,
        _req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        self.handle_get_bucket_tagging(_req).await
    }

    async fn get_bucket_replication(
        &self,
        _req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        self.handle_get_bucket_replication(_req).await
    }

    async fn get_object_lock_configuration(
        &self,
        _req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        self.handle_get_object_lock_configuration(_req).await
    }

    async fn get_bucket_ownership_controls(
        &self,
        _req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        self.handle_get_bucket_ownership_controls(_req).await
    }

    async fn get_public_access_block(
        &self,
        _req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        self.handle_get_public_access_block(_req).await
    }
}
