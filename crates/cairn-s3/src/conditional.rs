//! Conditional reads: the four `If-*` headers of a GET or HEAD (or the `x-amz-copy-source-if-*`
//! ones of a copy) as the node's [`Conditions`], which decides them (RFC 9110 §13 as S3 applies
//! it: 412 for `If-Match`/`If-Unmodified-Since`, 304 for `If-None-Match`/`If-Modified-Since`).

use cairn_node::read::{Conditions, EtagCondition};
use s3s::dto::{ETagCondition, Timestamp};

fn etag(c: Option<ETagCondition>) -> Option<EtagCondition> {
    c.map(|c| match c {
        ETagCondition::Any => EtagCondition::Any,
        ETagCondition::ETag(e) => EtagCondition::Etag(e.value().to_owned()),
    })
}

fn seconds(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| time::OffsetDateTime::from(t).unix_timestamp())
}

/// The node's conditions from the request's headers (`if_match`, `if_none_match`,
/// `if_modified_since`, `if_unmodified_since`).
pub fn conditions(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
) -> Conditions {
    Conditions {
        if_match: etag(if_match),
        if_none_match: etag(if_none_match),
        if_modified_since: seconds(if_modified_since),
        if_unmodified_since: seconds(if_unmodified_since),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    #[test]
    fn headers_become_the_nodes_conditions() {
        let at = Timestamp::from(time::OffsetDateTime::from_unix_timestamp(1_000).unwrap());
        let c = conditions(
            Some(ETagCondition::ETag(ETag::Strong("abc".into()))),
            Some(ETagCondition::Any),
            Some(at.clone()),
            Some(at),
        );
        assert_eq!(
            c,
            Conditions {
                if_match: Some(EtagCondition::Etag("abc".into())),
                if_none_match: Some(EtagCondition::Any),
                if_modified_since: Some(1_000),
                if_unmodified_since: Some(1_000),
            }
        );
        assert_eq!(conditions(None, None, None, None), Conditions::default());
    }
}
