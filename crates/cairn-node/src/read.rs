//! Reading an object: one plan for GET and HEAD ([`Objects::read`]) — the version asked (or the
//! one the access decision already read), the door's preconditions, the part or byte range and
//! the SSE-C key, checked in that order — and its plaintext as a stream ([`Objects::body`]).
//! The doors parse their wire formats into [`ReadObject`] and write the [`ReadPlan`] back out.
//! Who may read is decided before, by [`crate::Access::authorize`] (the door's gate), whose
//! grant may carry the version it read; what is read, under which conditions and with which
//! key, is decided here.

use std::ops::Range;

use bytes::Bytes;

use crate::crypt::Key;
use crate::model::crypt::KeyWrap;
use crate::model::records::{ObjectInfo, ObjectMeta};
use crate::{NodeError, Objects};

/// The highest part number S3 allows.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// An entity-tag precondition (`If-Match`, `If-None-Match`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagCondition {
    /// `*`: any current version.
    Any,
    /// This entity tag (without quotes).
    Etag(String),
}

impl EtagCondition {
    fn matches(&self, etag: &str) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Etag(e) => e == etag,
        }
    }
}

/// The HTTP preconditions of a read (RFC 9110 §13.2.2, in S3's precedence: `If-Match` over
/// `If-Unmodified-Since`, `If-None-Match` over `If-Modified-Since`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<EtagCondition>,
    /// `If-None-Match`.
    pub if_none_match: Option<EtagCondition>,
    /// `If-Modified-Since`, Unix seconds.
    pub if_modified_since: Option<i64>,
    /// `If-Unmodified-Since`, Unix seconds.
    pub if_unmodified_since: Option<i64>,
}

impl Conditions {
    /// Whether a version with `etag`, last modified at `last_modified_ms`, may be read:
    /// [`NodeError::PreconditionFailed`] or [`NodeError::NotModified`] when not.
    pub fn check(&self, etag: &str, last_modified_ms: i64) -> Result<(), NodeError> {
        let modified = last_modified_ms.div_euclid(1000);
        match (&self.if_match, self.if_unmodified_since) {
            (Some(m), _) if !m.matches(etag) => return Err(NodeError::PreconditionFailed),
            (None, Some(t)) if modified > t => return Err(NodeError::PreconditionFailed),
            _ => {}
        }
        let not_modified = || NodeError::NotModified {
            etag: etag.to_owned(),
        };
        match (&self.if_none_match, self.if_modified_since) {
            (Some(m), _) if m.matches(etag) => Err(not_modified()),
            (None, Some(t)) if modified <= t => Err(not_modified()),
            _ => Ok(()),
        }
    }
}

/// A byte range asked of an object (`Range: bytes=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last` or `first-` (inclusive).
    From {
        /// The first byte.
        first: u64,
        /// The last byte, if given (clamped to the object).
        last: Option<u64>,
    },
    /// `-length`: the last `length` bytes.
    Suffix {
        /// How many bytes from the end.
        length: u64,
    },
}

impl ByteRange {
    /// The bytes this range names in an object of `size` bytes, or
    /// [`NodeError::InvalidRange`] when it names none.
    pub fn resolve(self, size: u64) -> Result<Range<u64>, NodeError> {
        let none = || NodeError::InvalidRange { size };
        match self {
            ByteRange::From { first, last } => {
                if first >= size {
                    return Err(none());
                }
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                if first > last {
                    return Err(none());
                }
                Ok(first..last + 1)
            }
            ByteRange::Suffix { length: 0 } => Err(none()),
            ByteRange::Suffix { length } => Ok(size - length.min(size)..size),
        }
    }
}

/// What a GET or HEAD asks of an object ([`Objects::read`]).
#[derive(Debug, Clone, Default)]
pub struct ReadObject<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The key.
    pub key: &'a str,
    /// A version id (`None`: the current version).
    pub version: Option<&'a str>,
    /// The version the access decision already read for this request
    /// ([`crate::access::Grant::object`]): it is not read again.
    pub known: Option<ObjectInfo>,
    /// The request's preconditions.
    pub conditions: Conditions,
    /// A part of a multipart object (1 to [`MAX_PART_NUMBER`], checked after the
    /// preconditions); it wins over `range`.
    pub part: Option<u32>,
    /// A byte range.
    pub range: Option<ByteRange>,
    /// The customer's key (SSE-C) and its base64 MD5 (the door checked the MD5 the request
    /// sent against the key).
    pub customer: Option<(Key, String)>,
}

/// One read of an object, planned ([`Objects::read`]): HEAD answers from it, GET streams it
/// ([`Objects::body`]). Only the node makes one, so a door cannot read past what was checked.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    bucket: String,
    info: ObjectInfo,
    range: Option<Range<u64>>,
    parts_count: Option<u32>,
    length: u64,
    customer: Option<Key>,
}

impl ReadPlan {
    /// The bucket read.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The version read.
    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// The version read, taken out of the plan.
    pub fn into_info(self) -> ObjectInfo {
        self.info
    }

    /// The bytes to read (`None`: all).
    pub fn range(&self) -> Option<&Range<u64>> {
        self.range.as_ref()
    }

    /// With a part asked: how many parts the object has.
    pub fn parts_count(&self) -> Option<u32> {
        self.parts_count
    }

    /// Bytes in the answer.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The same read narrowed to `range` of the object (a part copy's source range).
    pub fn narrowed(mut self, range: Option<Range<u64>>) -> ReadPlan {
        if let Some(r) = range {
            self.length = r.end - r.start;
            self.range = Some(r);
        }
        self
    }

    /// The SSE-C key the read was planned with.
    pub(crate) fn customer(&self) -> Option<&Key> {
        self.customer.as_ref()
    }

    /// The `Content-Range` of a part or range read (`bytes */size` for an empty part).
    pub fn content_range(&self) -> Option<String> {
        let size = self.info.meta.size;
        self.range.as_ref().map(|r| {
            if r.is_empty() {
                format!("bytes */{size}")
            } else {
                format!("bytes {}-{}/{size}", r.start, r.end - 1)
            }
        })
    }
}

/// Whether the SSE-C key a request brings (`customer`: key and its MD5) fits the object:
/// an object stored with a customer key is read only with that key named, any other object
/// only without one.
pub fn check_customer(meta: &ObjectMeta, customer: Option<&str>) -> Result<(), NodeError> {
    let stored = match meta.crypt.as_ref().map(|c| &c.key) {
        Some(KeyWrap::Customer { key_md5, .. }) => Some(key_md5),
        _ => None,
    };
    match (stored, customer) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(NodeError::CustomerKey(
            "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.",
        )),
        (None, Some(_)) => Err(NodeError::CustomerKey(
            "The encryption parameters are not applicable to this object.",
        )),
        (Some(want), Some(got)) if want != got => Err(NodeError::AccessDenied(
            "The calculated MD5 hash of the key did not match the hash that was provided.".into(),
        )),
        _ => Ok(()),
    }
}

impl Objects<'_> {
    /// Plans one read of an object: its version (or the one `read.known` holds), checked
    /// against the preconditions, then the part or range asked resolved against it, then the
    /// SSE-C key checked. A delete marker or a missing version fails as a lookup does.
    pub fn read(&self, read: ReadObject<'_>) -> Result<ReadPlan, NodeError> {
        let info = match read.known {
            Some(info) => info,
            None => match read.version {
                Some(v) => self.get_version(read.bucket, read.key, v)?,
                None => self.get(read.bucket, read.key)?,
            },
        };
        read.conditions
            .check(&info.meta.etag, info.meta.last_modified_ms)?;
        let size = info.meta.size;
        let (range, parts_count) = match (read.part, read.range) {
            (Some(n), _) => {
                if !(1..=MAX_PART_NUMBER).contains(&n) {
                    return Err(NodeError::Unsupported(format!(
                        "Part number must be an integer between 1 and {MAX_PART_NUMBER}"
                    )));
                }
                let (r, count) = info
                    .meta
                    .part_range(n)
                    .ok_or_else(|| NodeError::InvalidPart(format!("the object has no part {n}")))?;
                (Some(r), Some(count))
            }
            (None, Some(r)) => (Some(r.resolve(size)?), None),
            (None, None) => (None, None),
        };
        check_customer(&info.meta, read.customer.as_ref().map(|c| c.1.as_str()))?;
        Ok(ReadPlan {
            bucket: read.bucket.to_owned(),
            length: range.as_ref().map_or(size, |r| r.end - r.start),
            info,
            range,
            parts_count,
            customer: read.customer.map(|c| c.0),
        })
    }

    /// The bytes a [`ReadPlan`] names, as they stream: plaintext, decrypted when the object
    /// is encrypted.
    pub fn body(&self, plan: &ReadPlan) -> Result<crate::ByteStream, NodeError> {
        self.stream(
            &plan.bucket,
            &plan.info,
            plan.range.clone(),
            plan.customer.as_ref(),
        )
    }

    /// The plaintext of an object (or a range of it) as an async stream: decrypted when the
    /// object is encrypted (only the segments the range touches are read), else the DAG's
    /// bytes. Fails before streaming when the key cannot be had.
    pub(crate) fn stream(
        &self,
        bucket: &str,
        info: &ObjectInfo,
        range: Option<Range<u64>>,
        customer: Option<&Key>,
    ) -> Result<crate::ByteStream, NodeError> {
        let Some(crypt) = info.meta.crypt.clone() else {
            return Ok(Box::pin(self.node.files().cat_stream(info.cid, range)));
        };
        let key = self.node.data_key(bucket, &crypt, customer)?;
        let range = range.unwrap_or(0..info.meta.size);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (node, cid) = (self.node.clone(), info.cid);
        tokio::task::spawn_blocking(move || {
            let mut send = |piece: Result<Bytes, NodeError>| {
                let failed = piece.is_err();
                tx.blocking_send(piece).is_ok() && !failed
            };
            if let Err(e) = node.decrypt_range(cid, &crypt, &key, range, &mut send) {
                send(Err(e));
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Option<EtagCondition> {
        Some(EtagCondition::Etag(s.into()))
    }

    fn outcome(c: &Conditions) -> &'static str {
        match c.check("abc", 1_000_000_500) {
            Ok(()) => "ok",
            Err(NodeError::PreconditionFailed) => "412",
            Err(NodeError::NotModified { .. }) => "304",
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn preconditions_in_s3_precedence() {
        let rows = [
            (Conditions::default(), "ok"),
            // If-Match true wins over If-Unmodified-Since false.
            (
                Conditions {
                    if_match: tag("abc"),
                    if_unmodified_since: Some(10),
                    ..Default::default()
                },
                "ok",
            ),
            (
                Conditions {
                    if_match: tag("zzz"),
                    ..Default::default()
                },
                "412",
            ),
            (
                Conditions {
                    if_unmodified_since: Some(10),
                    ..Default::default()
                },
                "412",
            ),
            (
                Conditions {
                    if_none_match: tag("abc"),
                    ..Default::default()
                },
                "304",
            ),
            (
                Conditions {
                    if_none_match: Some(EtagCondition::Any),
                    ..Default::default()
                },
                "304",
            ),
            // If-None-Match false wins over If-Modified-Since true.
            (
                Conditions {
                    if_none_match: tag("zzz"),
                    if_modified_since: Some(2_000_000),
                    ..Default::default()
                },
                "ok",
            ),
            // Modified at 1 000 000.5 s: not modified since 1 000 000 (whole seconds).
            (
                Conditions {
                    if_modified_since: Some(1_000_000),
                    ..Default::default()
                },
                "304",
            ),
            (
                Conditions {
                    if_modified_since: Some(999_999),
                    ..Default::default()
                },
                "ok",
            ),
        ];
        for (c, want) in rows {
            assert_eq!(outcome(&c), want, "{c:?}");
        }
    }

    #[test]
    fn ranges_resolve_as_http_says() {
        let from = |first, last| ByteRange::From { first, last };
        assert_eq!(from(0, Some(9)).resolve(100).unwrap(), 0..10);
        assert_eq!(from(90, Some(200)).resolve(100).unwrap(), 90..100);
        assert_eq!(from(90, None).resolve(100).unwrap(), 90..100);
        assert_eq!(
            ByteRange::Suffix { length: 10 }.resolve(100).unwrap(),
            90..100
        );
        assert_eq!(
            ByteRange::Suffix { length: 500 }.resolve(100).unwrap(),
            0..100
        );
        for bad in [
            from(100, None),
            from(5, Some(4)),
            ByteRange::Suffix { length: 0 },
        ] {
            assert!(
                matches!(bad.resolve(100), Err(NodeError::InvalidRange { size: 100 })),
                "{bad:?}"
            );
        }
        assert!(from(0, None).resolve(0).is_err());
    }
}
