//! `CopyObject`: the source read as its caller may, re-encrypted when the target asks for
//! another key, otherwise copied without a data copy in one node transaction (tags included).

use super::*;
use cairn_node::objects::{CopyChanges, CopyObject};
use cairn_node::read::{ReadObject, ReadPlan};

/// A copy's source: where it was named, and the read of it the node planned.
pub(crate) struct SourceObject {
    pub(crate) key: String,
    pub(crate) version: Option<String>,
    pub(crate) plan: ReadPlan,
}

impl CairnS3 {
    pub(crate) async fn handle_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let source_customer = sse_customer!(copy_source input)?;
        let src = self.copy_source(
            &req.extensions,
            input.copy_source,
            conditions!(copy_source input),
            source_customer.clone(),
        )?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let customer = sse_customer!(input)?;
        let encryption = sse::requested(input.server_side_encryption.as_ref(), customer)?;
        let meta = replace.then(|| {
            meta_from(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.expires,
                input.metadata,
            )
        });
        let replace_tags = input
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
        let tags = match (&input.tagging, replace_tags) {
            (Some(t), true) => Some(tags_from_header(t)?),
            (None, true) => Some(Default::default()),
            _ => None,
        };
        let info = self
            .node
            .objects()
            .copy(CopyObject {
                source: &src.plan,
                source_key: &src.key,
                source_version: src.version.as_deref(),
                to: (&input.bucket, &input.key),
                encryption,
                changes: CopyChanges { meta, tags },
            })
            .await
            .map_err(s3_err)?;
        let copied_version = src.version;
        let (server_side_encryption, sse_customer_algorithm, sse_customer_key_md5) =
            sse::out(&info.meta);
        Ok(S3Response::new(CopyObjectOutput {
            server_side_encryption,
            sse_customer_algorithm,
            sse_customer_key_md5,
            copy_source_version_id: copied_version,
            version_id: info.meta.version_id.clone(),
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&info.meta)),
                last_modified: Some(timestamp(info.meta.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    /// The object a copy reads (`x-amz-copy-source`, with its version if named), as the
    /// gate authorized it, once its `x-amz-copy-source-if-*` headers allow it and its SSE-C
    /// key (`customer`) fits.
    pub(crate) fn copy_source(
        &self,
        extensions: &http::Extensions,
        source: CopySource,
        conditions: cairn_node::read::Conditions,
        customer: Option<(cairn_node::crypt::Key, String)>,
    ) -> S3Result<SourceObject> {
        let CopySource::Bucket {
            bucket,
            key,
            version_id,
        } = source
        else {
            return Err(s3_error!(NotImplemented, "access point copy sources"));
        };
        let grant = &granted::<auth::SourceGrant>(extensions)?.0;
        let version = version_id.map(|v| v.to_string());
        // A copy source's "not modified" fails the copy (412), as S3 answers.
        let plan = self
            .node
            .objects()
            .read(ReadObject {
                bucket: &bucket,
                key: &key,
                version: version.as_deref(),
                known: grant.object.clone(),
                conditions,
                customer,
                ..Default::default()
            })
            .map_err(|e| match e {
                NodeError::NotModified { .. } => {
                    s3_error!(PreconditionFailed, "copy source precondition failed")
                }
                e => s3_err(e),
            })?;
        Ok(SourceObject {
            key: key.into(),
            version,
            plan,
        })
    }
}
