//! Conditional reads (RFC 9110 §13 as S3 applies it): `If-Match` and `If-Unmodified-Since`
//! fail with 412; `If-None-Match` and `If-Modified-Since` answer 304. A present `If-Match`
//! overrides `If-Unmodified-Since`, a present `If-None-Match` overrides `If-Modified-Since`.

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{S3Result, s3_error};

/// The four conditional headers of a GET or HEAD.
#[derive(Debug, Default)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<ETagCondition>,
    /// `If-None-Match`.
    pub if_none_match: Option<ETagCondition>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<Timestamp>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<Timestamp>,
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

/// 304, carrying the ETag as a 304 must.
fn not_modified(etag: &str) -> s3s::S3Error {
    let mut e = s3_error!(NotModified, "Not Modified");
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
        headers.insert(http::header::ETAG, v);
    }
    e.set_headers(headers);
    e
}

fn seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

impl Conditions {
    /// Checks the object (`etag` without quotes, last write in Unix ms) against the headers.
    pub fn check(&self, etag: &str, last_modified_ms: i64) -> S3Result<()> {
        // HTTP dates have one-second resolution.
        let modified = last_modified_ms.div_euclid(1000);
        match (&self.if_match, &self.if_unmodified_since) {
            (Some(m), _) if !matches(m, etag) => {
                return Err(s3_error!(PreconditionFailed, "If-Match failed"));
            }
            (None, Some(t)) if modified > seconds(t) => {
                return Err(s3_error!(PreconditionFailed, "If-Unmodified-Since failed"));
            }
            _ => {}
        }
        match (&self.if_none_match, &self.if_modified_since) {
            (Some(m), _) if matches(m, etag) => Err(not_modified(etag)),
            (None, Some(t)) if modified <= seconds(t) => Err(not_modified(etag)),
            _ => Ok(()),
        }
    }
}

impl Conditions {
    /// For a copy source (`x-amz-copy-source-if-*`): every failed condition is a 412.
    pub fn check_copy_source(&self, etag: &str, last_modified_ms: i64) -> S3Result<()> {
        self.check(etag, last_modified_ms).map_err(|e| {
            if *e.code() == s3s::S3ErrorCode::NotModified {
                s3_error!(PreconditionFailed, "copy source precondition failed")
            } else {
                e
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::S3ErrorCode;
    use s3s::dto::ETag;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::from_unix_timestamp(secs).unwrap())
    }

    fn code(r: S3Result<()>) -> Option<S3ErrorCode> {
        r.err().map(|e| e.code().clone())
    }

    #[test]
    fn precedence_like_s3() {
        let tag = |s: &str| Some(ETagCondition::ETag(ETag::Strong(s.into())));
        let ms = 1_000_000_500; // 1_000_000.5 s
        let none = Conditions::default();
        assert_eq!(code(none.check("abc", ms)), None);
        let c = Conditions {
            if_match: tag("abc"),
            if_unmodified_since: Some(at(10)),
            ..Default::default()
        };
        assert_eq!(
            code(c.check("abc", ms)),
            None,
            "If-Match true wins over IUS false"
        );
        let c = Conditions {
            if_match: tag("zzz"),
            ..Default::default()
        };
        assert_eq!(
            code(c.check("abc", ms)),
            Some(S3ErrorCode::PreconditionFailed)
        );
        let c = Conditions {
            if_unmodified_since: Some(at(10)),
            ..Default::default()
        };
        assert_eq!(
            code(c.check("abc", ms)),
            Some(S3ErrorCode::PreconditionFailed)
        );
        let c = Conditions {
            if_none_match: tag("abc"),
            ..Default::default()
        };
        assert_eq!(code(c.check("abc", ms)), Some(S3ErrorCode::NotModified));
        let c = Conditions {
            if_none_match: Some(ETagCondition::Any),
            ..Default::default()
        };
        assert_eq!(code(c.check("abc", ms)), Some(S3ErrorCode::NotModified));
        let c = Conditions {
            if_none_match: tag("zzz"),
            if_modified_since: Some(at(2_000_000)),
            ..Default::default()
        };
        assert_eq!(
            code(c.check("abc", ms)),
            None,
            "If-None-Match false wins over IMS"
        );
        let c = Conditions {
            if_modified_since: Some(at(1_000_000)),
            ..Default::default()
        };
        assert_eq!(
            code(c.check("abc", ms)),
            Some(S3ErrorCode::NotModified),
            "same second"
        );
        let c = Conditions {
            if_modified_since: Some(at(999_999)),
            ..Default::default()
        };
        assert_eq!(code(c.check("abc", ms)), None);
    }
}
