//! Cairn's S3 front end: the `s3s` [`S3`] trait implemented over [`cairn_node::Node`]'s object
//! service. s3s brings SigV4 (header and presigned), aws-chunked bodies, XML and routing; this
//! crate only maps S3 operations onto the service and back, so an s3s upgrade touches this
//! crate alone. No storage logic lives here.
//!
//! Every GET and HEAD returns the object's CID in `x-amz-meta-cid`; clients cannot set it.

pub mod acl;
pub mod auth;
pub mod checksum;
pub mod conditional;
pub mod convert;
pub mod front;
pub mod sse;

use std::ops::Range;

use cairn_node::objects::{ObjectInfo, ObjectMeta, StagedObject};
use cairn_node::put::{BodyCheck, PutObject};
use cairn_node::{CidVersion, Node, NodeError};
use convert::*;
use s3s::dto::*;
use s3s::{S3, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

/// The one region this node answers for.
pub const REGION: &str = "us-east-1";

/// A request body as s3s hands it over.
type Body = std::pin::Pin<
    Box<
        dyn futures::Stream<Item = Result<bytes::Bytes, Box<dyn std::error::Error + Send + Sync>>>
            + Send
            + Sync,
    >,
>;

/// How long a request body may send nothing before the upload is cut (S3's `RequestTimeout`).
pub const BODY_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Why [`guarded`] cut a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// More than the limit.
    TooLarge,
    /// Nothing for the idle time.
    Idle,
}

/// `body`, ending in an error (and `cut` set) once it has carried more than `limit` bytes or
/// sent nothing for `idle`: a stalled upload lets go of what it holds.
fn guarded(
    body: Body,
    limit: u64,
    idle: std::time::Duration,
    cut: std::sync::Arc<parking_lot::Mutex<Option<Cut>>>,
) -> Body {
    Box::pin(futures::stream::unfold(
        (body, 0u64, false),
        move |(mut body, seen, ended)| {
            let cut = cut.clone();
            async move {
                if ended {
                    return None;
                }
                let stop = |why: Cut, message: &str| {
                    *cut.lock() = Some(why);
                    Some((
                        Err(message.into()),
                        (Box::pin(futures::stream::empty()) as Body, seen, true),
                    ))
                };
                match tokio::time::timeout(idle, futures::StreamExt::next(&mut body)).await {
                    Err(_) => stop(Cut::Idle, "the body sent nothing for too long"),
                    Ok(None) => None,
                    Ok(Some(Err(e))) => Some((Err(e), (body, seen, true))),
                    Ok(Some(Ok(bytes))) => {
                        let seen = seen.saturating_add(bytes.len() as u64);
                        if seen > limit {
                            return stop(Cut::TooLarge, "the body is larger than the largest part");
                        }
                        Some((Ok(bytes), (body, seen, false)))
                    }
                }
            }
        },
    ))
}

/// The integrity checks a body upload carries.
struct BodyChecks {
    trailer: Option<&'static str>,
    trailing: Option<s3s::TrailingHeaders>,
    sums: [(&'static str, Option<String>); 5],
    algorithm: Option<ChecksumAlgorithm>,
    content_md5: Option<String>,
}

/// The SSE-C key of a request whose input has the `sse_customer_*` fields (or, with
/// `copy_source`, the `copy_source_sse_customer_*` ones), checked ([`sse::customer`]).
macro_rules! sse_customer {
    ($input:expr) => {
        sse::customer(
            $input.sse_customer_algorithm.as_deref(),
            $input.sse_customer_key.as_deref(),
            $input.sse_customer_key_md5.as_deref(),
        )
    };
    (copy_source $input:expr) => {
        sse::customer(
            $input.copy_source_sse_customer_algorithm.as_deref(),
            $input.copy_source_sse_customer_key.as_deref(),
            $input.copy_source_sse_customer_key_md5.as_deref(),
        )
    };
}

/// The [`BodyChecks`] of a PutObject or UploadPart request (their inputs share these fields).
macro_rules! body_checks {
    ($req:expr) => {
        BodyChecks {
            trailer: trailer_algorithm(&$req.headers),
            trailing: $req.trailing_headers.clone(),
            sums: [
                ("CRC32", $req.input.checksum_crc32.clone()),
                ("CRC32C", $req.input.checksum_crc32c.clone()),
                ("CRC64NVME", $req.input.checksum_crc64nvme.clone()),
                ("SHA1", $req.input.checksum_sha1.clone()),
                ("SHA256", $req.input.checksum_sha256.clone()),
            ],
            algorithm: $req.input.checksum_algorithm.clone(),
            content_md5: $req.input.content_md5.clone(),
        }
    };
}

fn trailer_algorithm(headers: &http::HeaderMap) -> Option<&'static str> {
    headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(checksum::algorithm)
}

fn sums_map(sums: &[(&'static str, String)]) -> std::collections::BTreeMap<String, String> {
    sums.iter()
        .map(|(a, v)| ((*a).to_owned(), v.clone()))
        .collect()
}

/// A request body as the node reads it — bounded as it streams, whatever its headers said (a
/// chunked PUT with no Content-Length passes the front's check and is cut here), hashed for
/// the flexible checksums asked — and the checks to run once it is staged: the checksums from
/// headers or trailer, and Content-MD5. The checks record what they verified in the object's
/// metadata; their S3 error travels through the node as the body's error.
fn checked_body(
    body: Option<StreamingBlob>,
    checks: BodyChecks,
) -> (
    Body,
    BodyCheck,
    std::sync::Arc<parking_lot::Mutex<Option<Cut>>>,
) {
    let expected = checksum::Expected {
        headers: checks
            .sums
            .into_iter()
            .filter_map(|(a, v)| v.map(|v| (a, v)))
            .collect(),
        trailer: checks.trailer,
        requested: checks
            .algorithm
            .as_ref()
            .and_then(|a| checksum::algorithm(a.as_str()))
            .into_iter()
            .collect(),
    };
    let body: Body = match body {
        Some(body) => Box::pin(body),
        None => Box::pin(futures::stream::empty()),
    };
    let cut = std::sync::Arc::new(parking_lot::Mutex::new(None));
    let body = guarded(body, front::MAX_PUT, BODY_IDLE, cut.clone());
    let (body, hashing) = checksum::Hashing::wrap(body, expected);
    let (trailing, md5) = (checks.trailing, checks.content_md5);
    let rejected = |e: s3s::S3Error| NodeError::Body(Box::new(e));
    let check: BodyCheck = Box::new(move |staged, meta| {
        let sums = hashing
            .verify(trailing.and_then(|t| t.take()).as_ref())
            .map_err(rejected)?;
        if let Some(md5) = &md5
            && content_md5(md5).map_err(rejected)? != staged.md5()
        {
            return Err(rejected(s3_error!(
                BadDigest,
                "Content-MD5 does not match the body"
            )));
        }
        meta.checksums = sums_map(&sums);
        Ok(())
    });
    (Box::pin(body), check, cut)
}

/// The S3 error of a body that failed while staging: cut for its size or idleness, or the
/// node's error.
fn staging_error(cut: &parking_lot::Mutex<Option<Cut>>, e: NodeError) -> s3s::S3Error {
    match *cut.lock() {
        Some(Cut::TooLarge) => front::too_large(),
        Some(Cut::Idle) => s3_error!(
            RequestTimeout,
            "Your socket connection to the server was not read from or written to within the \
             timeout period."
        ),
        None => s3_err(e),
    }
}

/// The S3 service over one node.
#[derive(Debug, Clone)]
pub struct CairnS3 {
    node: Node,
    cid_version: CidVersion,
    ids: auth::Identities,
}

/// A copy's source: where it was named, and the object read there.
struct SourceObject {
    bucket: String,
    key: String,
    version: Option<String>,
    info: ObjectInfo,
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

    /// Streams a part's body into a staged object and runs every check the request asks for
    /// (see [`checked_body`]); returns the checksums verified. Nothing is visible yet; on any
    /// failure the staged blocks are dropped.
    async fn stage(
        &self,
        bucket: &str,
        body: Option<StreamingBlob>,
        checks: BodyChecks,
        sealing: Option<cairn_node::crypt::Sealing>,
    ) -> S3Result<(StagedObject, std::collections::BTreeMap<String, String>)> {
        let (body, check, cut) = checked_body(body, checks);
        let staged = self
            .node
            .stage_object_sealed(Some(bucket), body, self.cid_version, sealing)
            .await
            .map_err(|e| staging_error(&cut, e))?;
        let mut meta = cairn_node::objects::ObjectMeta::default();
        check(&staged, &mut meta).map_err(s3_err)?;
        Ok((staged, meta.checksums))
    }

    /// For an upload created with a checksum algorithm: every listed part must carry its
    /// checksum, equal to the one verified at upload; the composite checksum
    /// (`HASH(part checksums)-N`) must equal the one sent for the whole, if any. Returns the
    /// composite to store with the object.
    fn composite_checksum(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        parts: &[CompletedPart],
        whole: &Checksum,
    ) -> S3Result<std::collections::BTreeMap<String, String>> {
        let mut out = std::collections::BTreeMap::new();
        let upload = match self.node.upload(id, bucket, key) {
            Ok(u) => u,
            Err(_) => return Ok(out), // complete_upload reports it (or answers a repeat)
        };
        let Some(algo) = upload.checksum_algorithm else {
            return Ok(out);
        };
        let stored: std::collections::BTreeMap<u32, String> = self
            .node
            .parts(id)
            .map_err(s3_err)?
            .into_iter()
            .filter_map(|p| p.record.checksums.get(&algo).map(|c| (p.number, c.clone())))
            .collect();
        let mut sums = Vec::with_capacity(parts.len());
        for p in parts {
            let listed = match algo.as_str() {
                "CRC32" => &p.checksum_crc32,
                "CRC32C" => &p.checksum_crc32c,
                "CRC64NVME" => &p.checksum_crc64nvme,
                "SHA1" => &p.checksum_sha1,
                _ => &p.checksum_sha256,
            };
            let number = p.part_number.unwrap_or(0).max(0) as u32;
            match (listed, stored.get(&number)) {
                (Some(l), Some(s)) if l == s => sums.push(s.as_str()),
                _ => {
                    return Err(s3_error!(
                        BadDigest,
                        "part {number} lacks its {algo} checksum or it does not match"
                    ));
                }
            }
        }
        let composite = checksum::composite(&algo, &sums)
            .ok_or_else(|| s3_error!(InvalidRequest, "unreadable part checksum"))?;
        let sent = match algo.as_str() {
            "CRC32" => &whole.checksum_crc32,
            "CRC32C" => &whole.checksum_crc32c,
            "CRC64NVME" => &whole.checksum_crc64nvme,
            "SHA1" => &whole.checksum_sha1,
            _ => &whole.checksum_sha256,
        };
        if sent.as_ref().is_some_and(|s| *s != composite) {
            return Err(s3_error!(
                BadDigest,
                "the {algo} of the upload does not match"
            ));
        }
        out.insert(algo, composite);
        Ok(out)
    }

    /// The object (or version) a GET or HEAD reads — exactly the record the gate's
    /// authorization looked at, when it looked at one — once its If-* headers allow it.
    fn read_target(
        &self,
        grant: &cairn_node::access::Grant,
        (bucket, key, version): (&str, &str, Option<&str>),
        conditions: conditional::Conditions,
    ) -> S3Result<ObjectInfo> {
        let info = match &grant.object {
            Some(info) => info.clone(),
            None => match version {
                Some(v) => self.node.object_version(bucket, key, v),
                None => self.node.object(bucket, key),
            }
            .map_err(s3_err)?,
        };
        conditions.check(&info.meta.etag, info.meta.last_modified_ms)?;
        Ok(info)
    }

    /// The object a copy reads (`x-amz-copy-source`, with its version if named), as the
    /// gate authorized it, once its `x-amz-copy-source-if-*` headers allow it.
    fn copy_source(
        &self,
        extensions: &http::Extensions,
        source: CopySource,
        conditions: conditional::Conditions,
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
        let info = self.read_target(
            grant,
            (&bucket, &key, version.as_deref()),
            Default::default(),
        )?;
        conditions.check_copy_source(&info.meta.etag, info.meta.last_modified_ms)?;
        Ok(SourceObject {
            bucket: bucket.into(),
            key: key.into(),
            version,
            info,
        })
    }

    /// The current object, for tag changes: tags of older versions are read-only here.
    fn current_for_tagging(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> S3Result<ObjectInfo> {
        let info = self.node.object(bucket, key).map_err(s3_err)?;
        match version {
            Some(v) if Some(v) != info.meta.version_id.as_deref().or(Some("null")) => Err(
                s3_error!(NotImplemented, "changing the tags of a non-current version"),
            ),
            _ => Ok(info),
        }
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

    /// How a part of an upload is encrypted: as the upload was created (SSE-C parts must
    /// carry the upload's customer key).
    fn part_sealing(
        &self,
        bucket: &str,
        upload: &ObjectMeta,
        customer: Option<(cairn_node::crypt::Key, String)>,
    ) -> S3Result<Option<cairn_node::crypt::Sealing>> {
        let Some(crypt) = &upload.crypt else {
            if customer.is_some() {
                return Err(s3_error!(
                    InvalidRequest,
                    "the upload was not created with SSE-C"
                ));
            }
            return Ok(None);
        };
        let probe = ObjectMeta {
            crypt: Some(crypt.clone()),
            ..Default::default()
        };
        sse::check_read(&probe, customer.as_ref())?;
        self.node
            .upload_sealing(bucket, crypt, customer.as_ref().map(|c| &c.0))
            .map(Some)
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

/// The range of part `n` of an object (GET/HEAD with `partNumber`) as a Range would give it.
fn part_range(meta: &ObjectMeta, n: i32) -> S3Result<((Range<u64>, String), i32)> {
    let number = part_number(n)?;
    let (r, count) = meta
        .part_range(number)
        .ok_or_else(|| s3_error!(InvalidPart, "the object has no part {n}"))?;
    let header = if r.is_empty() {
        format!("bytes */{}", meta.size)
    } else {
        format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)
    };
    Ok(((r, header), count as i32))
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
        let me = self.user(&req.credentials);
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
        let me = self.user(&req.credentials);
        let public = match &req.input.acl {
            Some(acl) => acl::canned_is_public(acl.as_str())?,
            None => false,
        };
        let bucket = req.input.bucket;
        let location = format!("/{bucket}");
        self.blocking(move |node| {
            node.create_bucket(&bucket, &me)?;
            if public {
                node.update_bucket(&bucket, |b| b.public = true)?;
            }
            Ok(())
        })
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
        let mut resp = S3Response::new(HeadBucketOutput::default());
        // The bucket's current IPFS root (committed within a second of the last change).
        if let Some(root) = self.node.latest_root(&req.input.bucket).map_err(s3_err)? {
            for (name, value) in [
                ("x-cairn-root", root.tree.to_string()),
                ("x-cairn-record", root.record.to_string()),
                ("x-cairn-root-seq", root.seq.to_string()),
            ] {
                if let Ok(value) = value.parse() {
                    resp.headers.insert(name, value);
                }
            }
        }
        Ok(resp)
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
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: Some(BucketLocationConstraint::from(REGION.to_owned())),
        }))
    }

    async fn put_object(
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
            .put_object(PutObject {
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

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let info = self.read_target(
            &granted::<auth::Granted>(&req.extensions)?.0,
            (&input.bucket, &input.key, input.version_id.as_deref()),
            conditional::Conditions {
                if_match: input.if_match.clone(),
                if_none_match: input.if_none_match.clone(),
                if_modified_since: input.if_modified_since.clone(),
                if_unmodified_since: input.if_unmodified_since.clone(),
            },
        )?;
        let size = info.meta.size;
        let (range, parts_count) = match input.part_number {
            Some(n) => {
                let (r, count) = part_range(&info.meta, n)?;
                (Some(r), Some(count))
            }
            None => (byte_range(input.range, size)?, None),
        };
        let (read, content_range) = match range {
            Some((r, header)) => (Some(r), Some(header)),
            None => (None, None),
        };
        let length = read.as_ref().map_or(size, |r| r.end - r.start);
        let customer = sse_customer!(input)?;
        sse::check_read(&info.meta, customer.as_ref())?;
        let stream = self
            .node
            .object_stream(&input.bucket, &info, read, customer.as_ref().map(|c| &c.0))
            .map_err(s3_err)?;
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
            parts_count,
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

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let info = self.read_target(
            &granted::<auth::Granted>(&req.extensions)?.0,
            (&input.bucket, &input.key, input.version_id.as_deref()),
            conditional::Conditions {
                if_match: input.if_match.clone(),
                if_none_match: input.if_none_match.clone(),
                if_modified_since: input.if_modified_since.clone(),
                if_unmodified_since: input.if_unmodified_since.clone(),
            },
        )?;
        let meta = &info.meta;
        let (range, parts_count) = match input.part_number {
            Some(n) => {
                let (r, count) = part_range(meta, n)?;
                (Some(r), Some(count))
            }
            None => (byte_range(input.range, meta.size)?, None),
        };
        let length = range.as_ref().map_or(meta.size, |(r, _)| r.end - r.start);
        let sums = if input.checksum_mode.is_some() && input.part_number.is_none() {
            checksums_out(meta)
        } else {
            Checksum::default()
        };
        let customer = sse_customer!(input)?;
        sse::check_read(meta, customer.as_ref())?;
        let (server_side_encryption, sse_customer_algorithm, sse_customer_key_md5) = sse::out(meta);
        let mut resp = S3Response::new(HeadObjectOutput {
            server_side_encryption,
            sse_customer_algorithm,
            sse_customer_key_md5,
            content_length: Some(length as i64),
            content_range: range.map(|(_, h)| h),
            parts_count,
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

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let (bucket, key, version) = (input.bucket, input.key, input.version_id);
        let deleted = self
            .blocking(move |node| node.delete_version(&bucket, &key, version.as_deref()))
            .await?;
        Ok(S3Response::new(DeleteObjectOutput {
            delete_marker: deleted.delete_marker.then_some(true),
            version_id: deleted.version_id,
            ..Default::default()
        }))
    }

    async fn delete_objects(
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
                let outcomes = node.delete_many(&bucket, &keys)?;
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

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let input = req.input;
        let src = self.copy_source(
            &req.extensions,
            input.copy_source,
            conditional::Conditions {
                if_match: input.copy_source_if_match,
                if_none_match: input.copy_source_if_none_match,
                if_modified_since: input.copy_source_if_modified_since,
                if_unmodified_since: input.copy_source_if_unmodified_since,
            },
        )?;
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let source_customer = sse_customer!(copy_source input)?;
        sse::check_read(&src.info.meta, source_customer.as_ref())?;
        let customer = sse_customer!(input)?;
        let want = sse::requested(input.server_side_encryption.as_ref(), customer)?;
        let (crypt, b) = (src.info.meta.crypt.clone(), input.bucket.clone());
        let sealing = self
            .blocking(move |node| node.copy_sealing(crypt.as_ref(), &b, want))
            .await?;
        if !replace && sealing.is_none() && src.bucket == input.bucket && src.key == input.key {
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
        let replace_tags = input
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
        let new_tags = match (&input.tagging, replace_tags) {
            (Some(t), true) => Some(tags_from_header(t)?),
            (None, true) => Some(Default::default()),
            _ => None,
        };
        let (dst_bucket, dst_key) = (input.bucket, input.key);
        let copied_version = src.version.clone();
        let info = match sealing {
            // Re-encrypted: the plaintext streams through into a new DAG.
            Some(sealing) => {
                let mut meta = meta.unwrap_or_else(|| src.info.meta.clone());
                meta.tags = new_tags.unwrap_or_else(|| src.info.meta.tags.clone());
                self.node
                    .copy_resealed(
                        (
                            &src.bucket,
                            &src.info,
                            source_customer.as_ref().map(|c| &c.0),
                        ),
                        (&dst_bucket, &dst_key),
                        meta,
                        sealing,
                    )
                    .await
                    .map_err(s3_err)?
            }
            None => {
                let changes = cairn_node::objects::CopyChanges {
                    meta,
                    tags: new_tags,
                };
                self.blocking(move |node| {
                    node.copy_object(
                        (&src.bucket, &src.key, src.version.as_deref()),
                        (&dst_bucket, &dst_key),
                        changes,
                    )
                })
                .await?
            }
        };
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

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
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
            marker: Some(input.marker.clone().unwrap_or_default()),
            max_keys: Some(max as i32),
            is_truncated: Some(listing.truncated),
            next_marker: listing
                .next_marker
                .filter(|_| input.delimiter.as_deref().is_some_and(|d| !d.is_empty())),
            contents: Some(
                listing
                    .objects
                    .iter()
                    .map(|o| list_entry(o, url, Some(&listing.owner)))
                    .collect(),
            ),
            common_prefixes: prefixes(&listing.common_prefixes, url),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
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
            .map(|o| list_entry(o, url, fetch_owner.then_some(listing.owner.as_str())))
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
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            encoding_type: input.encoding_type,
            start_after: input.start_after,
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        let url = wants_url_encoding(&input.encoding_type);
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_keys);
        let key_marker = input.key_marker.as_deref().filter(|m| !m.is_empty());
        let version_marker = input.version_id_marker.as_deref().filter(|m| !m.is_empty());
        let (entries, truncated) = self
            .node
            .list_versions(&input.bucket, &prefix, key_marker, version_marker, max)
            .map_err(s3_err)?;
        let owner_id = self.node.bucket(&input.bucket).map_err(s3_err)?.owner;
        let name = |k: &str| if url { url_encode(k) } else { k.to_owned() };
        let vid = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".to_owned());
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for e in &entries {
            if e.cid.is_some() {
                versions.push(ObjectVersion {
                    key: Some(name(&e.key)),
                    version_id: Some(vid(&e.version_id)),
                    is_latest: Some(e.is_latest),
                    e_tag: Some(etag(&e.meta)),
                    size: Some(e.meta.size as i64),
                    last_modified: Some(timestamp(e.meta.last_modified_ms)),
                    owner: Some(owner(&owner_id)),
                    storage_class: Some(ObjectVersionStorageClass::from_static(
                        ObjectVersionStorageClass::STANDARD,
                    )),
                    ..Default::default()
                });
            } else {
                markers.push(DeleteMarkerEntry {
                    key: Some(name(&e.key)),
                    version_id: Some(vid(&e.version_id)),
                    is_latest: Some(e.is_latest),
                    last_modified: Some(timestamp(e.meta.last_modified_ms)),
                    owner: Some(owner(&owner_id)),
                });
            }
        }
        let last = entries.last().filter(|_| truncated);
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(prefix),
            max_keys: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: last.map(|e| e.key.clone()),
            next_version_id_marker: last.map(|e| vid(&e.version_id)),
            key_marker: input.key_marker,
            version_id_marker: input.version_id_marker,
            versions: Some(versions),
            delete_markers: (!markers.is_empty()).then_some(markers),
            delimiter: input.delimiter.clone().filter(|d| !d.is_empty()),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        let input = req.input;
        let status = input
            .versioning_configuration
            .status
            .map(|s| s.as_str().to_owned())
            .ok_or_else(|| s3_error!(MalformedXML, "VersioningConfiguration without Status"))?;
        if status != cairn_node::versions::ENABLED && status != cairn_node::versions::SUSPENDED {
            return Err(s3_error!(MalformedXML, "versioning status {status:?}"));
        }
        let bucket = input.bucket;
        self.blocking(move |node| node.set_versioning(&bucket, &status))
            .await?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        let b = self.node.bucket(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: b.versioning.map(BucketVersioningStatus::from),
            ..Default::default()
        }))
    }

    async fn put_bucket_encryption(
        &self,
        req: S3Request<PutBucketEncryptionInput>,
    ) -> S3Result<S3Response<PutBucketEncryptionOutput>> {
        let input = req.input;
        let rules = &input.server_side_encryption_configuration.rules;
        let mut on = false;
        for rule in rules {
            if let Some(d) = &rule.apply_server_side_encryption_by_default {
                sse::requested(Some(&d.sse_algorithm), None)?;
                on = true;
            }
        }
        if !on {
            return Err(s3_error!(
                MalformedXML,
                "a rule with ApplyServerSideEncryptionByDefault is needed"
            ));
        }
        let bucket = input.bucket;
        self.blocking(move |node| node.set_bucket_encryption(&bucket, true))
            .await?;
        Ok(S3Response::new(PutBucketEncryptionOutput::default()))
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        if !self
            .node
            .bucket_encrypted(&req.input.bucket)
            .map_err(s3_err)?
        {
            return Err(not_configured(
                S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                "server side encryption",
            ));
        }
        Ok(S3Response::new(GetBucketEncryptionOutput {
            server_side_encryption_configuration: Some(ServerSideEncryptionConfiguration {
                rules: vec![ServerSideEncryptionRule {
                    apply_server_side_encryption_by_default: Some(ServerSideEncryptionByDefault {
                        sse_algorithm: ServerSideEncryption::from_static(
                            ServerSideEncryption::AES256,
                        ),
                        kms_master_key_id: None,
                    }),
                    bucket_key_enabled: None,
                }],
            }),
        }))
    }

    async fn delete_bucket_encryption(
        &self,
        req: S3Request<DeleteBucketEncryptionInput>,
    ) -> S3Result<S3Response<DeleteBucketEncryptionOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |node| node.set_bucket_encryption(&bucket, false))
            .await?;
        Ok(S3Response::new(DeleteBucketEncryptionOutput::default()))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let me = self.user(&req.credentials);
        let input = req.input;
        let meta = meta_from(
            input.content_type,
            input.content_encoding,
            input.content_disposition,
            input.content_language,
            input.cache_control,
            input.expires,
            input.metadata,
        );
        if input
            .checksum_type
            .as_ref()
            .is_some_and(|t| t.as_str() == ChecksumType::FULL_OBJECT)
        {
            return Err(s3_error!(NotImplemented, "full-object multipart checksums"));
        }
        let algorithm = input.checksum_algorithm.clone();
        let algo = algorithm
            .as_ref()
            .and_then(|a| checksum::algorithm(a.as_str()))
            .map(str::to_owned);
        let mut meta = meta;
        if let Some(tagging) = &input.tagging {
            meta.tags = tags_from_header(tagging)?;
        }
        let customer = sse_customer!(input)?;
        let want = sse::requested(input.server_side_encryption.as_ref(), customer)?;
        let (bucket, key) = (input.bucket, input.key);
        let (b, k) = (bucket.clone(), key.clone());
        let id = self
            .blocking(move |node| {
                meta.crypt = node.sealing_for(&b, want)?.map(|s| s.object(Vec::new()));
                node.create_upload(&b, &k, meta, &me, algo)
            })
            .await?;
        let (server_side_encryption, sse_customer_algorithm, sse_customer_key_md5) =
            match self.node.upload(&id, &bucket, &key) {
                Ok(u) => sse::out(&u.meta),
                Err(_) => (None, None, None),
            };
        Ok(S3Response::new(CreateMultipartUploadOutput {
            server_side_encryption,
            sse_customer_algorithm,
            sse_customer_key_md5,
            bucket: Some(bucket),
            key: Some(key),
            upload_id: Some(id),
            checksum_type: algorithm
                .as_ref()
                .map(|_| ChecksumType::from_static(ChecksumType::COMPOSITE)),
            checksum_algorithm: algorithm,
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let checks = body_checks!(req);
        let mut input = req.input;
        let number = part_number(input.part_number)?;
        let upload = self
            .node
            .upload(&input.upload_id, &input.bucket, &input.key)
            .map_err(s3_err)?;
        let customer = sse_customer!(input)?;
        let sealing = self.part_sealing(&input.bucket, &upload.meta, customer)?;
        let (staged, sums) = self
            .stage(&input.bucket, input.body.take(), checks, sealing)
            .await?;
        let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
        let checksums = sums.clone();
        let record = self
            .blocking(move |node| node.commit_part(staged, (&id, &bucket, &key), number, checksums))
            .await?;
        let mut out = UploadPartOutput {
            e_tag: Some(ETag::Strong(record.etag)),
            ..Default::default()
        };
        for (algo, value) in sums {
            match algo.as_str() {
                "CRC32" => out.checksum_crc32 = Some(value),
                "CRC32C" => out.checksum_crc32c = Some(value),
                "CRC64NVME" => out.checksum_crc64nvme = Some(value),
                "SHA1" => out.checksum_sha1 = Some(value),
                _ => out.checksum_sha256 = Some(value),
            }
        }
        Ok(S3Response::new(out))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let number = part_number(input.part_number)?;
        let upload = self
            .node
            .upload(&input.upload_id, &input.bucket, &input.key)
            .map_err(s3_err)?;
        let customer = sse_customer!(input)?;
        let sealing = self.part_sealing(&input.bucket, &upload.meta, customer)?;
        let source_customer = sse_customer!(copy_source input)?;
        let source = self.copy_source(
            &req.extensions,
            input.copy_source,
            conditional::Conditions {
                if_match: input.copy_source_if_match,
                if_none_match: input.copy_source_if_none_match,
                if_modified_since: input.copy_source_if_modified_since,
                if_unmodified_since: input.copy_source_if_unmodified_since,
            },
        )?;
        let src = &source.info;
        let range = match &input.copy_source_range {
            Some(r) => Some(copy_source_range(r, src.meta.size)?),
            None => None,
        };
        sse::check_read(&src.meta, source_customer.as_ref())?;
        let body = self
            .node
            .object_stream(
                &source.bucket,
                src,
                range,
                source_customer.as_ref().map(|c| &c.0),
            )
            .map_err(s3_err)?;
        let staged = self
            .node
            .stage_object_sealed(Some(&input.bucket), body, self.cid_version, sealing)
            .await
            .map_err(s3_err)?;
        let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
        let record = self
            .blocking(move |node| {
                node.commit_part(staged, (&id, &bucket, &key), number, Default::default())
            })
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(record.etag)),
                last_modified: Some(timestamp(record.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let parts = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        let listed: Vec<(u32, String)> = parts
            .iter()
            .map(|p| {
                let n = part_number(p.part_number.unwrap_or(0))?;
                let etag = p
                    .e_tag
                    .as_ref()
                    .map(|e| e.value().to_owned())
                    .unwrap_or_default();
                Ok((n, etag))
            })
            .collect::<S3Result<_>>()?;
        if listed.is_empty() {
            return Err(s3_error!(MalformedXML, "the upload lists no parts"));
        }
        let whole = Checksum {
            checksum_crc32: input.checksum_crc32,
            checksum_crc32c: input.checksum_crc32c,
            checksum_crc64nvme: input.checksum_crc64nvme,
            checksum_sha1: input.checksum_sha1,
            checksum_sha256: input.checksum_sha256,
            ..Default::default()
        };
        let checksums =
            self.composite_checksum(&input.upload_id, &input.bucket, &input.key, &parts, &whole)?;
        let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
        let (b, k) = (bucket.clone(), key.clone());
        let version = self.cid_version;
        let info = self
            .blocking(move |node| node.complete_upload((&id, &b, &k), &listed, version, checksums))
            .await?;
        let sums = checksums_out(&info.meta);
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            location: Some(format!("/{bucket}/{key}")),
            bucket: Some(bucket),
            key: Some(key),
            e_tag: Some(etag(&info.meta)),
            version_id: info.meta.version_id.clone(),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
        self.blocking(move |node| node.abort_upload(&id, &bucket, &key))
            .await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let initiator = self
            .node
            .upload(&input.upload_id, &input.bucket, &input.key)
            .map_err(s3_err)?
            .owner;
        let max = max_keys(input.max_parts);
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let all: Vec<_> = self
            .node
            .parts(&input.upload_id)
            .map_err(s3_err)?
            .into_iter()
            .filter(|p| p.number > marker)
            .collect();
        let truncated = all.len() > max;
        let page: Vec<_> = all.into_iter().take(max).collect();
        let next = page.last().map(|p| p.number as i32);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: Some(max as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: next,
            is_truncated: Some(truncated),
            owner: Some(owner(&initiator)),
            initiator: Some(Initiator {
                display_name: Some(initiator.clone()),
                id: Some(initiator),
            }),
            parts: Some(
                page.into_iter()
                    .map(|p| Part {
                        part_number: Some(p.number as i32),
                        e_tag: Some(ETag::Strong(p.record.etag)),
                        size: Some(p.record.size as i64),
                        last_modified: Some(timestamp(p.record.last_modified_ms)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max = max_keys(input.max_uploads);
        let key_marker = input.key_marker.clone().unwrap_or_default();
        let all: Vec<_> = self
            .node
            .uploads(&input.bucket)
            .map_err(s3_err)?
            .into_iter()
            .filter(|(_, r)| r.key.starts_with(&prefix) && r.key.as_str() > key_marker.as_str())
            .collect();
        let truncated = all.len() > max;
        let page: Vec<_> = all.into_iter().take(max).collect();
        let next_key = page.last().map(|(_, r)| r.key.clone());
        let next_id = page.last().map(|(id, _)| id.clone());
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: Some(prefix),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: truncated.then_some(next_key).flatten(),
            next_upload_id_marker: truncated.then_some(next_id).flatten(),
            uploads: Some(
                page.into_iter()
                    .map(|(id, r)| MultipartUpload {
                        key: Some(r.key),
                        upload_id: Some(id),
                        initiated: Some(timestamp(r.initiated_ms)),
                        owner: Some(owner(&r.owner)),
                        initiator: Some(Initiator {
                            display_name: Some(r.owner.clone()),
                            id: Some(r.owner),
                        }),
                        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn get_bucket_acl(
        &self,
        req: S3Request<GetBucketAclInput>,
    ) -> S3Result<S3Response<GetBucketAclOutput>> {
        let b = self.node.bucket(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(GetBucketAclOutput {
            grants: Some(acl::grants(&b.owner, b.public)),
            owner: Some(owner(&b.owner)),
        }))
    }

    async fn put_bucket_acl(
        &self,
        req: S3Request<PutBucketAclInput>,
    ) -> S3Result<S3Response<PutBucketAclOutput>> {
        let input = req.input;
        let public = acl::requested_public(
            input.acl.as_ref().map(|a| a.as_str()),
            input.access_control_policy.as_ref(),
        )?;
        let bucket = input.bucket;
        self.blocking(move |node| node.update_bucket(&bucket, |b| b.public = public))
            .await?;
        Ok(S3Response::new(PutBucketAclOutput::default()))
    }

    async fn get_object_acl(
        &self,
        req: S3Request<GetObjectAclInput>,
    ) -> S3Result<S3Response<GetObjectAclOutput>> {
        let input = req.input;
        let b = self.node.bucket(&input.bucket).map_err(s3_err)?;
        let o = self
            .node
            .object(&input.bucket, &input.key)
            .map_err(s3_err)?;
        Ok(S3Response::new(GetObjectAclOutput {
            grants: Some(acl::grants(&b.owner, o.meta.public_read)),
            owner: Some(owner(&b.owner)),
            ..Default::default()
        }))
    }

    async fn put_object_acl(
        &self,
        req: S3Request<PutObjectAclInput>,
    ) -> S3Result<S3Response<PutObjectAclOutput>> {
        let input = req.input;
        let public = acl::requested_public(
            input.acl.as_ref().map(|a| a.as_str()),
            input.access_control_policy.as_ref(),
        )?;
        let (bucket, key) = (input.bucket, input.key);
        self.blocking(move |node| {
            node.update_object_meta(&bucket, &key, |m| m.public_read = public)
        })
        .await?;
        Ok(S3Response::new(PutObjectAclOutput::default()))
    }

    async fn put_bucket_policy(
        &self,
        req: S3Request<PutBucketPolicyInput>,
    ) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        let input = req.input;
        let grants = acl::bucket_policy_grants(&input.bucket, &input.policy)?;
        let (bucket, policy) = (input.bucket, input.policy);
        self.blocking(move |node| {
            node.update_bucket(&bucket, |b| {
                b.policy_public = grants.get;
                b.policy_list = grants.list;
                b.policy = Some(policy);
            })
        })
        .await?;
        Ok(S3Response::new(PutBucketPolicyOutput::default()))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        let b = self.node.bucket(&req.input.bucket).map_err(s3_err)?;
        match b.policy {
            Some(policy) => Ok(S3Response::new(GetBucketPolicyOutput {
                policy: Some(policy),
            })),
            None => Err(s3_error!(
                NoSuchBucketPolicy,
                "The bucket policy does not exist"
            )),
        }
    }

    async fn delete_bucket_policy(
        &self,
        req: S3Request<DeleteBucketPolicyInput>,
    ) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        let bucket = req.input.bucket;
        self.blocking(move |node| {
            node.update_bucket(&bucket, |b| {
                b.policy = None;
                b.policy_public = false;
                b.policy_list = false;
            })
        })
        .await?;
        Ok(S3Response::new(DeleteBucketPolicyOutput::default()))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        let pairs: Vec<(String, String)> = input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        let tags = check_tags(&pairs)?;
        let info =
            self.current_for_tagging(&input.bucket, &input.key, input.version_id.as_deref())?;
        let (bucket, key) = (input.bucket, input.key);
        self.blocking(move |node| node.update_object_meta(&bucket, &key, |m| m.tags = tags))
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput {
            version_id: info.meta.version_id,
        }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        let info = match &input.version_id {
            Some(v) => self.node.object_version(&input.bucket, &input.key, v),
            None => self.node.object(&input.bucket, &input.key),
        }
        .map_err(s3_err)?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: info
                .meta
                .tags
                .into_iter()
                .map(|(k, v)| Tag {
                    key: Some(k),
                    value: Some(v),
                })
                .collect(),
            version_id: info.meta.version_id,
        }))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        let info =
            self.current_for_tagging(&input.bucket, &input.key, input.version_id.as_deref())?;
        let (bucket, key) = (input.bucket, input.key);
        self.blocking(move |node| node.update_object_meta(&bucket, &key, |m| m.tags.clear()))
            .await?;
        Ok(S3Response::new(DeleteObjectTaggingOutput {
            version_id: info.meta.version_id,
        }))
    }

    // Bucket configurations Cairn does not keep: every bucket has none, and says so the way
    // S3 does for a bucket without one (404 with the configuration's own code).

    async fn get_bucket_cors(
        &self,
        _req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        Err(not_configured(S3ErrorCode::NoSuchCORSConfiguration, "CORS"))
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        _req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        Err(not_configured(
            S3ErrorCode::NoSuchLifecycleConfiguration,
            "lifecycle",
        ))
    }

    async fn get_bucket_website(
        &self,
        _req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        Err(not_configured(
            S3ErrorCode::NoSuchWebsiteConfiguration,
            "website",
        ))
    }

    async fn get_bucket_tagging(
        &self,
        _req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        Err(not_configured(S3ErrorCode::NoSuchTagSet, "tag set"))
    }

    async fn get_bucket_replication(
        &self,
        _req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        Err(not_configured(
            S3ErrorCode::ReplicationConfigurationNotFoundError,
            "replication",
        ))
    }

    async fn get_object_lock_configuration(
        &self,
        _req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        Err(not_configured(
            S3ErrorCode::ObjectLockConfigurationNotFoundError,
            "object lock",
        ))
    }

    async fn get_bucket_ownership_controls(
        &self,
        _req: S3Request<GetBucketOwnershipControlsInput>,
    ) -> S3Result<S3Response<GetBucketOwnershipControlsOutput>> {
        Err(not_configured(
            S3ErrorCode::OwnershipControlsNotFoundError,
            "ownership controls",
        ))
    }

    async fn get_public_access_block(
        &self,
        _req: S3Request<GetPublicAccessBlockInput>,
    ) -> S3Result<S3Response<GetPublicAccessBlockOutput>> {
        Err(not_configured(
            S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
            "public access block",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn pieces(n: usize) -> Body {
        Box::pin(futures::stream::iter(
            (0..n).map(|_| Ok(bytes::Bytes::from_static(&[7u8; 1000]))),
        ))
    }

    /// L1: a body is cut once it passes the limit, whatever its headers said (a chunked PUT
    /// has no Content-Length for the front to check), and the cut is told apart from other
    /// body errors.
    #[tokio::test]
    async fn bodies_are_bounded_as_they_stream() {
        let idle = std::time::Duration::from_secs(5);
        let cut = std::sync::Arc::new(parking_lot::Mutex::new(None));
        let all: Vec<_> = guarded(pieces(5), 5000, idle, cut.clone()).collect().await;
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(Result::is_ok));
        assert_eq!(*cut.lock(), None);
        let all: Vec<_> = guarded(pieces(6), 5000, idle, cut.clone()).collect().await;
        assert_eq!(all.len(), 6, "it ends at the error");
        assert!(all[..5].iter().all(Result::is_ok));
        assert!(all[5].is_err());
        assert_eq!(*cut.lock(), Some(Cut::TooLarge));
    }

    /// M2: a body that stops sending is cut after the idle time (a stalled upload lets go of
    /// its import slot and its blocking thread), and one that keeps sending is not.
    #[tokio::test]
    async fn stalled_bodies_are_cut() {
        // (the node's idle time is 60 s; scaled down here, with wide margins)
        let idle = std::time::Duration::from_millis(300);
        let stalled: Body = Box::pin(
            futures::stream::iter([Ok(bytes::Bytes::from_static(b"first"))])
                .chain(futures::stream::pending()),
        );
        let cut = std::sync::Arc::new(parking_lot::Mutex::new(None));
        let all: Vec<_> = guarded(stalled, u64::MAX, idle, cut.clone())
            .collect()
            .await;
        assert_eq!(all.len(), 2);
        assert!(all[0].is_ok() && all[1].is_err());
        assert_eq!(*cut.lock(), Some(Cut::Idle));
        // slow but steady: a piece every 100 ms for 10 pieces
        let steady: Body = Box::pin(futures::stream::unfold(0, |i| async move {
            if i == 10 {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Some((Ok(bytes::Bytes::from_static(b"x")), i + 1))
        }));
        let cut = std::sync::Arc::new(parking_lot::Mutex::new(None));
        let all: Vec<_> = guarded(steady, u64::MAX, idle, cut.clone()).collect().await;
        assert_eq!(all.len(), 10);
        assert!(all.iter().all(Result::is_ok));
    }
}
