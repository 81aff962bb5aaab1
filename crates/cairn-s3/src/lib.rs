//! Cairn's S3 front end: the `s3s` [`S3`] trait implemented over [`cairn_node::Node`]'s object
//! service. s3s brings SigV4 (header and presigned), aws-chunked bodies, XML and routing; this
//! crate only maps S3 operations onto the service and back, so an s3s upgrade touches this
//! crate alone. No storage logic lives here.
//!
//! Every GET and HEAD returns the object's CID in `x-amz-meta-cid`; clients cannot set it.

pub mod auth;
pub mod checksum;
pub mod convert;

use std::ops::Range;

use cairn_node::objects::{ObjectInfo, ObjectMeta};
use cairn_node::{CidVersion, Node};
use convert::*;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

/// A request body as s3s hands it over.
type Body = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = Result<bytes::Bytes, Box<dyn std::error::Error + Send + Sync>>>
            + Send
            + Sync,
    >,
>;

/// The S3 service over one node.
#[derive(Debug, Clone)]
pub struct CairnS3 {
    node: Node,
    cid_version: CidVersion,
}

impl CairnS3 {
    /// Serves `node`; new objects are encoded as `cid_version` (0: what `ipfs add` gives).
    pub fn new(node: Node, cid_version: CidVersion) -> Self {
        CairnS3 { node, cid_version }
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

fn owner_of(credentials: &Option<s3s::auth::Credentials>) -> String {
    credentials
        .as_ref()
        .map(|c| c.access_key.clone())
        .unwrap_or_else(|| "anonymous".to_owned())
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

fn max_keys(m: Option<i32>) -> usize {
    m.map_or(1000, |m| m.clamp(0, 1000) as usize)
}

/// Resolves a Range header against the object size: (range to read, Content-Range value).
fn byte_range(range: Option<s3s::dto::Range>, size: u64) -> S3Result<Option<(Range<u64>, String)>> {
    let Some(range) = range else { return Ok(None) };
    let r = range
        .check(size)
        .map_err(|_| s3_error!(InvalidRange, "range not satisfiable for {size} bytes"))?;
    let header = format!("bytes {}-{}/{size}", r.start, r.end - 1);
    Ok(Some((r, header)))
}

#[async_trait::async_trait]
impl S3 for CairnS3 {
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let me = owner_of(&req.credentials);
        let buckets = self
            .node
            .buckets()
            .map_err(s3_err)?
            .into_iter()
            .filter(|(_, rec)| rec.owner == me)
            .map(|(name, rec)| Bucket {
                name: Some(name),
                creation_date: Some(timestamp(rec.created_ms)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner(&me)),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let me = owner_of(&req.credentials);
        let bucket = req.input.bucket;
        let location = format!("/{bucket}");
        self.blocking(move |node| node.create_bucket(&bucket, &me))
            .await?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(location),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.node.bucket(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |node| node.delete_bucket(&bucket))
            .await?;
        Ok(S3Response::new(DeleteBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.node.bucket(&req.input.bucket).map_err(s3_err)?;
        // us-east-1 is reported as an empty LocationConstraint.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let trailer_algo = req
            .headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .and_then(checksum::algorithm);
        let trailing = req.trailing_headers.clone();
        let input = req.input;
        self.node.bucket(&input.bucket).map_err(s3_err)?;
        let expected = checksum::Expected {
            headers: [
                ("CRC32", &input.checksum_crc32),
                ("CRC32C", &input.checksum_crc32c),
                ("CRC64NVME", &input.checksum_crc64nvme),
                ("SHA1", &input.checksum_sha1),
                ("SHA256", &input.checksum_sha256),
            ]
            .into_iter()
            .filter_map(|(a, v)| v.clone().map(|v| (a, v)))
            .collect(),
            trailer: trailer_algo,
            requested: input
                .checksum_algorithm
                .as_ref()
                .and_then(|a| checksum::algorithm(a.as_str()))
                .into_iter()
                .collect(),
        };
        let body: Body = match input.body {
            Some(body) => Box::pin(body),
            None => Box::pin(futures::stream::empty()),
        };
        let (body, hashing) = checksum::Hashing::wrap(body, expected);
        // Every check below happens before commit: a failure drops the staged blocks.
        let staged = self
            .node
            .stage_object(body, self.cid_version)
            .await
            .map_err(s3_err)?;
        let sums = hashing.verify(trailing.and_then(|t| t.take()).as_ref())?;
        if let Some(md5) = &input.content_md5
            && content_md5(md5)? != staged.md5()
        {
            return Err(s3_error!(BadDigest, "Content-MD5 does not match the body"));
        }
        let mut meta = meta_from(
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.expires,
            input.metadata,
        );
        meta.checksums = sums
            .iter()
            .map(|(a, v)| ((*a).to_owned(), v.clone()))
            .collect();
        let (bucket, key) = (input.bucket, input.key);
        let info = self
            .blocking(move |node| node.commit_object(staged, &bucket, &key, meta))
            .await?;
        let sums = checksums_out(&info.meta);
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&info.meta)),
            size: Some(info.meta.size as i64),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let info = self
            .node
            .object(&input.bucket, &input.key)
            .map_err(s3_err)?;
        let size = info.meta.size;
        let range = byte_range(input.range, size)?;
        let (read, content_range) = match range {
            Some((r, header)) => (Some(r), Some(header)),
            None => (None, None),
        };
        let length = read.as_ref().map_or(size, |r| r.end - r.start);
        let body = s3s::dto::StreamingBlob::wrap(self.node.cat_stream(info.cid, read));
        let meta = &info.meta;
        // Whole-object checksums apply only to whole-object reads.
        let sums = if input.checksum_mode.is_some() && content_range.is_none() {
            checksums_out(meta)
        } else {
            Checksum::default()
        };
        let output = GetObjectOutput {
            body: Some(body),
            content_length: Some(length as i64),
            content_range: content_range.clone(),
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

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let info = self
            .node
            .object(&input.bucket, &input.key)
            .map_err(s3_err)?;
        let meta = &info.meta;
        let range = byte_range(input.range, meta.size)?;
        let length = range.as_ref().map_or(meta.size, |(r, _)| r.end - r.start);
        Ok(S3Response::new(HeadObjectOutput {
            content_length: Some(length as i64),
            content_range: range.map(|(_, h)| h),
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
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (bucket, key) = (req.input.bucket, req.input.key);
        self.blocking(move |node| node.delete_object(&bucket, &key))
            .await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        let quiet = input.delete.quiet.unwrap_or(false);
        let bucket = input.bucket;
        let keys: Vec<String> = input.delete.objects.into_iter().map(|o| o.key).collect();
        let results = self
            .blocking(move |node| {
                node.bucket(&bucket)?;
                Ok(keys
                    .into_iter()
                    .map(|k| {
                        let r = node.delete_object(&bucket, &k);
                        (k, r)
                    })
                    .collect::<Vec<_>>())
            })
            .await?;
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (key, result) in results {
            match result {
                Ok(_) if !quiet => deleted.push(DeletedObject {
                    key: Some(key),
                    ..Default::default()
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

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let CopySource::Bucket {
            bucket: src_bucket,
            key: src_key,
            version_id: _,
        } = input.copy_source
        else {
            return Err(s3_error!(NotImplemented, "access point copy sources"));
        };
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if !replace && *src_bucket == *input.bucket && *src_key == *input.key {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself \
                 without changing the object's metadata, storage class, website redirect \
                 location or encryption attributes."
            ));
        }
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
        let (dst_bucket, dst_key) = (input.bucket, input.key);
        let info = self
            .blocking(move |node| {
                node.copy_object((&src_bucket, &src_key), (&dst_bucket, &dst_key), meta)
            })
            .await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&info.meta)),
                last_modified: Some(timestamp(info.meta.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let me = owner_of(&req.credentials);
        let input = req.input;
        let url = wants_url_encoding(&input.encoding_type);
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let listing = self
            .node
            .list_objects(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                input.marker.as_deref().filter(|m| !m.is_empty()),
                max,
            )
            .map_err(s3_err)?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            marker: input.marker,
            max_keys: Some(max as i32),
            is_truncated: Some(listing.truncated),
            next_marker: listing.next_marker.filter(|_| input.delimiter.is_some()),
            contents: Some(
                listing
                    .objects
                    .iter()
                    .map(|o| list_entry(o, url, Some(&me)))
                    .collect(),
            ),
            common_prefixes: prefixes(&listing.common_prefixes, url),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let me = owner_of(&req.credentials);
        let input = req.input;
        let url = wants_url_encoding(&input.encoding_type);
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let after = match &input.continuation_token {
            Some(t) => Some(key_from_token(t)?),
            None => input.start_after.clone().filter(|s| !s.is_empty()),
        };
        let listing = self
            .node
            .list_objects(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                after.as_deref(),
                max,
            )
            .map_err(s3_err)?;
        let fetch_owner = input.fetch_owner.unwrap_or(false);
        let contents: Vec<Object> = listing
            .objects
            .iter()
            .map(|o| list_entry(o, url, fetch_owner.then_some(me.as_str())))
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(max as i32),
            key_count: Some((contents.len() + listing.common_prefixes.len()) as i32),
            continuation_token: input.continuation_token,
            is_truncated: Some(listing.truncated),
            next_continuation_token: listing.next_marker.as_deref().map(token_from_key),
            contents: Some(contents),
            common_prefixes: prefixes(&listing.common_prefixes, url),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            start_after: input.start_after,
            ..Default::default()
        }))
    }

    /// Until bucket versioning lands, every object is its single version `null`: what test
    /// suites' cleanup and `aws s3 rb --force` need.
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let me = owner_of(&req.credentials);
        let input = req.input;
        let url = wants_url_encoding(&input.encoding_type);
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let listing = self
            .node
            .list_objects(
                &input.bucket,
                &prefix,
                input.delimiter.as_deref(),
                input.key_marker.as_deref().filter(|m| !m.is_empty()),
                max,
            )
            .map_err(s3_err)?;
        let versions = listing
            .objects
            .iter()
            .map(|o| ObjectVersion {
                key: Some(if url {
                    url_encode(&o.key)
                } else {
                    o.key.clone()
                }),
                version_id: Some("null".into()),
                is_latest: Some(true),
                e_tag: Some(etag(&o.meta)),
                size: Some(o.meta.size as i64),
                last_modified: Some(timestamp(o.meta.last_modified_ms)),
                owner: Some(owner(&me)),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(max as i32),
            is_truncated: Some(listing.truncated),
            next_key_marker: listing.next_marker.clone(),
            next_version_id_marker: listing.next_marker.map(|_| "null".into()),
            key_marker: input.key_marker,
            versions: Some(versions),
            common_prefixes: prefixes(&listing.common_prefixes, url),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }
}
