//! Conversions between s3s DTOs and the object service's types: errors, metadata, times,
//! ETags, key encoding. Every s3s type Cairn touches is touched here or in `lib.rs`, so an
//! s3s upgrade stays in this crate.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use cairn_node::model::records::{ObjectInfo, ObjectMeta};
use cairn_node::{ErrorKind, NodeError};
use s3s::dto::{ETag, Metadata, Timestamp};
use s3s::{S3Error, S3ErrorCode, s3_error};

/// The reserved user-metadata name that carries an object's CID (`x-amz-meta-cid`, the
/// Filebase convention).
pub const CID_META: &str = "cid";

/// Maps a service error to the S3 error a client expects.
pub fn s3_err(e: NodeError) -> S3Error {
    match e {
        NodeError::NoSuchBucket(b) => s3_error!(NoSuchBucket, "no such bucket: {b}"),
        NodeError::NoSuchKey { key, .. } => s3_error!(NoSuchKey, "no such key: {key}"),
        NodeError::BucketAlreadyExists(b) => {
            s3_error!(BucketAlreadyExists, "bucket {b} is owned by someone else")
        }
        NodeError::BucketNotEmpty(b) => s3_error!(BucketNotEmpty, "bucket {b} is not empty"),
        NodeError::InvalidBucketName(b) => s3_error!(InvalidBucketName, "invalid name: {b}"),
        NodeError::Body(inner) => body_error(inner),
        NodeError::NoSuchUpload(id) => s3_error!(NoSuchUpload, "no such upload: {id}"),
        NodeError::InvalidPart(what) => s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found or its ETag did not match: {what}"
        ),
        NodeError::InvalidPartOrder => s3_error!(InvalidPartOrder),
        NodeError::NoSuchVersion(v) => s3_error!(NoSuchVersion, "no such version: {v}"),
        NodeError::DeleteMarker => {
            s3_error!(
                MethodNotAllowed,
                "The specified method is not allowed against this resource."
            )
        }
        NodeError::NotModified { etag } => {
            let mut e = s3_error!(NotModified, "Not Modified");
            let mut headers = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                headers.insert(http::header::ETAG, v);
            }
            e.set_headers(headers);
            e
        }
        NodeError::InvalidRange { size } => {
            s3_error!(InvalidRange, "range not satisfiable for {size} bytes")
        }
        NodeError::CustomerKey(why) => s3_error!(InvalidRequest, "{why}"),
        NodeError::CopyToItself => s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata, storage class, website redirect location \
             or encryption attributes."
        ),
        NodeError::PreconditionFailed => {
            s3_error!(
                PreconditionFailed,
                "At least one of the preconditions you specified did not hold"
            )
        }
        NodeError::EntityTooSmall(n) => {
            s3_error!(
                EntityTooSmall,
                "part {n} is smaller than the minimum allowed size"
            )
        }
        NodeError::AccessDenied(why) => s3_error!(AccessDenied, "{why}"),
        NodeError::Crypt(e) => {
            tracing::error!("refusing to serve bytes that fail authentication: {e}");
            s3_error!(InternalError, "the stored object failed decryption: {e}")
        }
        NodeError::Unavailable(why) => S3Error::with_message(
            S3ErrorCode::ServiceUnavailable,
            format!("the cluster cannot keep this write now: {why}"),
        ),
        other => match other.kind() {
            // a request the node cannot take as it is (a bad path or CAR never reaches S3
            // today, but if one does it is the client's)
            ErrorKind::Invalid => {
                S3Error::with_message(S3ErrorCode::InvalidArgument, other.to_string())
            }
            ErrorKind::Forbidden => {
                S3Error::with_message(S3ErrorCode::AccessDenied, other.to_string())
            }
            ErrorKind::Unavailable => {
                S3Error::with_message(S3ErrorCode::ServiceUnavailable, other.to_string())
            }
            // a missing block under an existing object is the node's failure (the object
            // exists; its data is not here), as is a DAG it cannot walk
            ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::PreconditionFailed
            | ErrorKind::BadDag
            | ErrorKind::Corrupt
            | ErrorKind::Internal => {
                tracing::error!("internal error: {other}");
                S3Error::with_message(S3ErrorCode::InternalError, other.to_string())
            }
        },
    }
}

/// The 404 S3 answers when a bucket has no configuration of some kind (CORS, lifecycle,
/// encryption, …): clients read it as "none set", not as a failure.
pub fn not_configured(code: S3ErrorCode, what: &str) -> S3Error {
    let mut e = S3Error::with_message(code, format!("The bucket has no {what} configuration"));
    e.set_status_code(http::StatusCode::NOT_FOUND);
    e
}

/// The S3 error for a request body that failed while streaming. s3s reports aws-chunked and
/// payload-hash failures through the body stream with error types it does not export
/// (`AwsChunkedStreamError`, `UploadStreamError` in 0.14), so they are recognised by their
/// messages, anywhere in the error chain.
pub fn body_error(inner: Box<dyn std::error::Error + Send + Sync>) -> S3Error {
    let inner = match inner.downcast::<S3Error>() {
        Ok(s3) => return *s3,
        Err(other) => other,
    };
    let mut chain = String::new();
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
    while let Some(err) = e {
        chain.push_str(&err.to_string());
        chain.push('|');
        e = err.source();
    }
    if chain.contains("SignatureMismatch") {
        s3_error!(
            SignatureDoesNotMatch,
            "a chunk signature of the aws-chunked body does not match"
        )
    } else if chain.contains("Sha256Mismatch") {
        // AWS's code for this; s3s 0.14 has no variant for it.
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
        e.set_status_code(http::StatusCode::BAD_REQUEST);
        e
    } else if chain.contains("FormatError")
        || chain.contains("TooLarge")
        || chain.contains("TooMany")
    {
        s3_error!(InvalidRequest, "malformed aws-chunked body")
    } else {
        s3_error!(
            IncompleteBody,
            "the request body ended early or failed: {chain}"
        )
    }
}

/// Unix milliseconds to an S3 timestamp.
pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// The strong ETag of an object.
pub fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.clone())
}

/// User metadata to return: the stored `x-amz-meta-*` plus the CID.
pub fn metadata_out(info: &ObjectInfo) -> Metadata {
    let mut m: Metadata = info
        .meta
        .user
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    m.insert(CID_META.to_owned(), info.cid.to_string());
    m
}

/// User metadata as sent, minus the reserved CID name.
pub fn metadata_in(m: Option<Metadata>) -> BTreeMap<String, String> {
    m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .filter(|(k, _)| k != CID_META)
        .collect()
}

/// The stored checksums in s3s's shape, with their type: `COMPOSITE` for a multipart
/// upload's checksum of part checksums (`HASH-N`), else `FULL_OBJECT` (none without a sum).
pub fn checksums_out(meta: &ObjectMeta) -> s3s::dto::Checksum {
    let get = |a: &str| meta.checksums.get(a).cloned();
    let checksum_type = meta.checksums.values().next().map(|v| {
        s3s::dto::ChecksumType::from_static(if v.contains('-') {
            s3s::dto::ChecksumType::COMPOSITE
        } else {
            s3s::dto::ChecksumType::FULL_OBJECT
        })
    });
    s3s::dto::Checksum {
        checksum_type,
        checksum_crc32: get("CRC32"),
        checksum_crc32c: get("CRC32C"),
        checksum_crc64nvme: get("CRC64NVME"),
        checksum_sha1: get("SHA1"),
        checksum_sha256: get("SHA256"),
    }
}

/// Checks a tag set as S3 does: at most 10 tags, keys of 1–128 and values of at most 256
/// characters, no key twice.
pub fn check_tags(tags: &[(String, String)]) -> Result<BTreeMap<String, String>, S3Error> {
    if tags.len() > 10 {
        return Err(s3_error!(
            InvalidTag,
            "Object tags cannot be greater than 10"
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(s3_error!(
                InvalidTag,
                "The TagKey or TagValue you have provided is invalid"
            ));
        }
        if out.insert(k.clone(), v.clone()).is_some() {
            return Err(s3_error!(
                InvalidTag,
                "Cannot provide multiple Tags with the same key"
            ));
        }
    }
    Ok(out)
}

/// The `x-amz-tagging` header: a URL-encoded query string `k1=v1&k2=v2`.
pub fn tags_from_header(header: &str) -> Result<BTreeMap<String, String>, S3Error> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| s3_error!(InvalidArgument, "x-amz-tagging is not UTF-8"))
    };
    let mut pairs = Vec::new();
    for pair in header.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((decode(k)?, decode(v)?));
    }
    check_tags(&pairs)
}

/// An `Expires` timestamp as the HTTP date it came in as.
pub fn expires_to_string(t: &Timestamp) -> Option<String> {
    let mut buf = Vec::new();
    t.format(s3s::dto::TimestampFormat::HttpDate, &mut buf)
        .ok()?;
    String::from_utf8(buf).ok()
}

/// A stored `Expires` string back to a timestamp.
pub fn expires_from_string(s: &str) -> Option<Timestamp> {
    Timestamp::parse(s3s::dto::TimestampFormat::HttpDate, s).ok()
}

/// `encoding-type=url`: percent-encode like AWS does for keys and prefixes in listings.
pub fn url_encode(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    utf8_percent_encode(s, KEEP).to_string()
}

/// Whether a listing asked for `encoding-type=url`.
pub fn wants_url_encoding(e: &Option<s3s::dto::EncodingType>) -> bool {
    e.as_ref().is_some_and(|e| e.as_str() == "url")
}

/// Opaque continuation token for ListObjectsV2: base64 of the last key.
pub fn token_from_key(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// The key a continuation token stands for.
pub fn key_from_token(token: &str) -> Result<String, S3Error> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "invalid continuation token"))
}

/// Decodes a `Content-MD5` header.
pub fn content_md5(b64: &str) -> Result<[u8; 16], S3Error> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .ok_or_else(|| s3_error!(InvalidDigest, "Content-MD5 is not a base64 MD5"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S3's answer to each node failure, pinned: its own codes where S3 has one, otherwise
    /// from the kind; a block missing under an existing object stays a 500.
    #[test]
    fn node_errors_map_to_s3_codes() {
        let cid: cairn_dag::Cid = "bafkqaaa".parse().unwrap();
        let rows: Vec<(NodeError, S3ErrorCode, u16)> = vec![
            (
                NodeError::NoSuchBucket("b".into()),
                S3ErrorCode::NoSuchBucket,
                404,
            ),
            (
                NodeError::NoSuchKey {
                    bucket: "b".into(),
                    key: "k".into(),
                },
                S3ErrorCode::NoSuchKey,
                404,
            ),
            (
                NodeError::BucketAlreadyExists("b".into()),
                S3ErrorCode::BucketAlreadyExists,
                409,
            ),
            (
                NodeError::BucketNotEmpty("b".into()),
                S3ErrorCode::BucketNotEmpty,
                409,
            ),
            (
                NodeError::InvalidBucketName("b".into()),
                S3ErrorCode::InvalidBucketName,
                400,
            ),
            (
                NodeError::NoSuchUpload("u".into()),
                S3ErrorCode::NoSuchUpload,
                404,
            ),
            (
                NodeError::InvalidPart("p".into()),
                S3ErrorCode::InvalidPart,
                400,
            ),
            (
                NodeError::InvalidPartOrder,
                S3ErrorCode::InvalidPartOrder,
                400,
            ),
            (
                NodeError::NoSuchVersion("v".into()),
                S3ErrorCode::NoSuchVersion,
                404,
            ),
            (NodeError::DeleteMarker, S3ErrorCode::MethodNotAllowed, 405),
            (
                NodeError::PreconditionFailed,
                S3ErrorCode::PreconditionFailed,
                412,
            ),
            (
                NodeError::EntityTooSmall(1),
                S3ErrorCode::EntityTooSmall,
                400,
            ),
            (
                NodeError::AccessDenied("x".into()),
                S3ErrorCode::AccessDenied,
                403,
            ),
            (
                NodeError::Unavailable("x".into()),
                S3ErrorCode::ServiceUnavailable,
                503,
            ),
            (
                NodeError::Unsupported("x".into()),
                S3ErrorCode::InvalidArgument,
                400,
            ),
            (
                NodeError::Car("x".into()),
                S3ErrorCode::InvalidArgument,
                400,
            ),
            (
                cairn_node::StoreError::NotFound(cid).into(),
                S3ErrorCode::InternalError,
                500,
            ),
            (
                NodeError::from(cairn_dag::DagError::HashMismatch(cid)),
                S3ErrorCode::InternalError,
                500,
            ),
        ];
        for (e, code, status) in rows {
            let what = format!("{e:?}");
            let got = s3_err(e);
            assert_eq!(*got.code(), code, "{what}");
            let got_status = got
                .status_code()
                .or_else(|| code.status_code())
                .map(|s| s.as_u16());
            assert_eq!(got_status, Some(status), "{what}");
        }
    }

    #[test]
    fn url_encoding_like_aws() {
        assert_eq!(url_encode("a b/c+d&é"), "a%20b/c%2Bd%26%C3%A9");
    }

    #[test]
    fn tagging_header() {
        let tags = tags_from_header("a=1&b%20c=x%2By&empty=").unwrap();
        assert_eq!(tags.get("b c").map(String::as_str), Some("x+y"));
        assert_eq!(tags.get("empty").map(String::as_str), Some(""));
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(tags_from_header(&eleven.join("&")).is_err());
        assert!(tags_from_header("a=1&a=2").is_err());
    }

    #[test]
    fn tokens_round_trip() {
        let t = token_from_key("dir/ä+b");
        assert_eq!(key_from_token(&t).unwrap(), "dir/ä+b");
        assert!(key_from_token("!!!").is_err());
    }

    #[derive(Debug)]
    struct Msg(&'static str);
    impl std::fmt::Display for Msg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Msg {}

    #[test]
    fn chunked_body_errors_map_to_s3_codes() {
        let cases = [
            (
                "AwsChunkedStreamError: SignatureMismatch",
                S3ErrorCode::SignatureDoesNotMatch,
            ),
            (
                "UploadStreamError: Sha256Mismatch",
                S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            ),
            (
                "AwsChunkedStreamError: FormatError",
                S3ErrorCode::InvalidRequest,
            ),
            (
                "AwsChunkedStreamError: Incomplete",
                S3ErrorCode::IncompleteBody,
            ),
        ];
        for (msg, code) in cases {
            assert_eq!(*body_error(Box::new(Msg(msg))).code(), code, "{msg}");
        }
    }

    #[test]
    fn body_errors_keep_their_s3_code() {
        let inner = s3_error!(SignatureDoesNotMatch);
        let e = s3_err(NodeError::Body(Box::new(inner)));
        assert_eq!(*e.code(), S3ErrorCode::SignatureDoesNotMatch);
        let e = s3_err(NodeError::BucketNotEmpty("b".into()));
        assert_eq!(*e.code(), S3ErrorCode::BucketNotEmpty);
    }
}
