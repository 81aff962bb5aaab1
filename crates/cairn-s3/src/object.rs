//! Object operations: PUT (one node call, `Objects::put`), GET and HEAD (one read of the
//! target, conditions and ranges), DELETE and the batch `DeleteObjects` (one node transaction).

use super::*;
use cairn_node::read::{ByteRange, ReadObject, ReadPlan};

impl CairnS3 {
    pub(crate) async fn handle_put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let checks = body_checks!(req);
        if req
            .headers
            .get("content-md5")
            .is_some_and(|v| v.as_bytes().trim_ascii().is_empty())
        {
            return Err(s3_error!(InvalidDigest, "Content-MD5 is empty"));
        }
        let mut input = req.input;
        let condition = cairn_node::objects::WriteCondition {
            if_match: input.if_match.as_ref().map(etag_condition),
            if_none_match: input.if_none_match.as_ref().map(etag_condition),
        };
        let customer = sse_customer!(input)?;
        let sse = sse::requested(input.server_side_encryption.as_ref(), customer)?;
        let mut meta = meta_from(
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.expires,
            input.metadata,
        );
        if let Some(acl) = &input.acl {
            meta.public_read = acl::canned_is_public(acl.as_str())?;
        }
        if let Some(tagging) = &input.tagging {
            meta.tags = tags_from_header(tagging)?;
        }
        let (body, check, cut) = checked_body(input.body.take(), checks);
        let info = self
            .node
            .objects()
            .put(PutObject {
                bucket: input.bucket,
                key: input.key,
                body,
                version: self.cid_version,
                meta,
                condition,
                sse,
                check: Some(check),
            })
            .await
            .map_err(|e| staging_error(&cut, e))?;
        let sums = checksums_out(&info.meta);
        let (server_side_encryption, sse_customer_algorithm, sse_customer_key_md5) =
            sse::out(&info.meta);
        Ok(S3Response::new(PutObjectOutput {
            server_side_encryption,
            sse_customer_algorithm,
            sse_customer_key_md5,
            version_id: info.meta.version_id.clone(),
            e_tag: Some(etag(&info.meta)),
            size: Some(info.meta.size as i64),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let customer = sse_customer!(input)?;
        let plan = self.read_plan(
            &req.extensions,
            (&input.bucket, &input.key, input.version_id.as_deref()),
            conditions!(input),
            (input.part_number, input.range),
            customer,
        )?;
        let stream = self.node.objects().body(&plan).map_err(s3_err)?;
        let (content_range, parts_count) = (plan.content_range(), plan.parts_count());
        let length = plan.length();
        let info = plan.into_info();
        let body = s3s::dto::StreamingBlob::wrap(stream);
        let meta = &info.meta;
        let (server_side_encryption, sse_customer_algorithm, sse_customer_key_md5) = sse::out(meta);
        // Whole-object checksums apply only to whole-object reads.
        let sums = if input.checksum_mode.is_some() && content_range.is_none() {
            checksums_out(meta)
        } else {
            Checksum::default()
        };
        let output = GetObjectOutput {
            server_side_encryption,
            sse_customer_algorithm,
            sse_customer_key_md5,
            body: Some(body),
            content_length: Some(length as i64),
            content_range: content_range.clone(),
            parts_count: parts_count.map(|n| n as i32),
            version_id: meta.version_id.clone(),
            tag_count: (!meta.tags.is_empty()).then_some(meta.tags.len() as i32),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(meta)),
            last_modified: Some(timestamp(meta.last_modified_ms)),
            metadata: Some(metadata_out(&info)),
            content_type: input
                .response_content_type
                .or_else(|| meta.content_type.clone()),
            content_encoding: input
                .response_content_encoding
                .or_else(|| meta.content_encoding.clone()),
            content_disposition: input
                .response_content_disposition
                .or_else(|| meta.content_disposition.clone()),
            content_language: input
                .response_content_language
                .or_else(|| meta.content_language.clone()),
            cache_control: input
                .response_cache_control
                .or_else(|| meta.cache_control.clone()),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
            expires: input
                .response_expires
                .or_else(|| meta.expires.as_deref().and_then(expires_from_string)),
            ..Default::default()
        };
        let mut resp = S3Response::new(output);
        if content_range.is_some() {
            resp.status = Some(http::StatusCode::PARTIAL_CONTENT);
        }
        Ok(resp)
    }

    pub(crate) async fn handle_head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let customer = sse_customer!(input)?;
        let part_number = input.part_number;
        let plan = self.read_plan(
            &req.extensions,
            (&input.bucket, &input.key, input.version_id.as_deref()),
            conditions!(input),
            (part_number, input.range),
            customer,
        )?;
        let (content_range, parts_count) = (plan.content_range(), plan.parts_count());
        let length = plan.length();
        let info = plan.into_info();
        let meta = &info.meta;
        let sums = if input.checksum_mode.is_some() && part_number.is_none() {
            checksums_out(meta)
        } else {
            Checksum::default()
        };
        let (server_side_encryption, sse_customer_algorithm, sse_customer_key_md5) = sse::out(meta);
        let mut resp = S3Response::new(HeadObjectOutput {
            server_side_encryption,
            sse_customer_algorithm,
            sse_customer_key_md5,
            content_length: Some(length as i64),
            content_range,
            parts_count: parts_count.map(|n| n as i32),
            version_id: meta.version_id.clone(),
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag(meta)),
            last_modified: Some(timestamp(meta.last_modified_ms)),
            metadata: Some(metadata_out(&info)),
            content_type: meta.content_type.clone(),
            content_encoding: meta.content_encoding.clone(),
            content_disposition: meta.content_disposition.clone(),
            content_language: meta.content_language.clone(),
            cache_control: meta.cache_control.clone(),
            expires: meta.expires.as_deref().and_then(expires_from_string),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
            ..Default::default()
        });
        // s3s 0.14's HeadObjectOutput has no tag count field
        if !info.meta.tags.is_empty() {
            resp.headers
                .insert("x-amz-tagging-count", info.meta.tags.len().into());
        }
        Ok(resp)
    }

    pub(crate) async fn handle_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        let deleted = self
            .blocking(move |node| node.objects().delete(&bucket, &key, version.as_deref()))
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: deleted.delete_marker.then_some(true),
            version_id: deleted.version_id,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "at most 1000 keys can be deleted at once"
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let bucket = input.bucket;
        let keys: Vec<(String, Option<String>)> = input
            .delete
            .objects
            .into_iter()
            .map(|o| (o.key, o.version_id))
            .collect();
        let results = self
            .blocking(move |node| {
                let outcomes = node.objects().delete_many(&bucket, &keys)?;
                Ok(keys
                    .into_iter()
                    .zip(outcomes)
                    .map(|((k, v), r)| (k, v.is_some(), r))
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (key, named_version, result) in results {
            match result {
                // A new delete marker is reported as DeleteMarkerVersionId, a deleted version
                // (marker or not) as VersionId.
                Ok(d) if !quiet => deleted.push(DeletedObject {
                    key: Some(key),
                    delete_marker: d.delete_marker.then_some(true),
                    delete_marker_version_id: (d.delete_marker && !named_version)
                        .then(|| d.version_id.clone().unwrap_or_else(|| "null".into())),
                    version_id: if named_version { d.version_id } else { None },
                }),
                Ok(_) => {}
                Err(e) => {
                    let e = s3_err(e);
                    errors.push(Error {
                        code: Some(e.code().as_str().to_owned()),
                        key: Some(key),
                        message: e.message().map(str::to_owned),
                        version_id: None,
                    });
                }
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    /// What a GET or a HEAD reads ([`cairn_node::Objects::read`]): the target version as
    /// its caller may read it, its conditions and its SSE-C key checked, and the part or
    /// byte range asked.
    fn read_plan(
        &self,
        extensions: &http::Extensions,
        (bucket, key, version): (&str, &str, Option<&str>),
        conditions: cairn_node::read::Conditions,
        (part_asked, range): (Option<i32>, Option<s3s::dto::Range>),
        customer: Option<(cairn_node::crypt::Key, String)>,
    ) -> S3Result<ReadPlan> {
        let grant = &granted::<auth::Granted>(extensions)?.0;
        // Checked by the node after the preconditions (a number out of range is never a part).
        let part = part_asked.map(|n| u32::try_from(n).unwrap_or(0));
        let range = range.map(|r| match r {
            s3s::dto::Range::Int { first, last } => ByteRange::From { first, last },
            s3s::dto::Range::Suffix { length } => ByteRange::Suffix { length },
        });
        self.node
            .objects()
            .read(ReadObject {
                bucket,
                key,
                version,
                known: grant.object.clone(),
                conditions,
                part,
                range,
                customer,
            })
            .map_err(s3_err)
    }
}
