//! Request bodies on their way into the node: bounded as they stream (size and idleness,
//! [`guarded`]), hashed for the flexible checksums asked, and checked once staged
//! ([`checked_body`]: checksums from headers or trailer, Content-MD5).

use super::*;

/// A request body as s3s hands it over.
pub(crate) type Body = std::pin::Pin<
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
pub(crate) enum Cut {
    /// More than the limit.
    TooLarge,
    /// Nothing for the idle time.
    Idle,
}

/// `body`, ending in an error (and `cut` set) once it has carried more than `limit` bytes or
/// sent nothing for `idle`: a stalled upload lets go of what it holds.
pub(crate) fn guarded(
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
pub(crate) struct BodyChecks {
    pub(crate) trailer: Option<&'static str>,
    pub(crate) trailing: Option<s3s::TrailingHeaders>,
    pub(crate) sums: [(&'static str, Option<String>); 5],
    pub(crate) algorithm: Option<ChecksumAlgorithm>,
    pub(crate) content_md5: Option<String>,
}

pub(crate) fn trailer_algorithm(headers: &http::HeaderMap) -> Option<&'static str> {
    headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(checksum::algorithm)
}

pub(crate) fn sums_map(
    sums: &[(&'static str, String)],
) -> std::collections::BTreeMap<String, String> {
    sums.iter()
        .map(|(a, v)| ((*a).to_owned(), v.clone()))
        .collect()
}

/// A request body as the node reads it — bounded as it streams, whatever its headers said (a
/// chunked PUT with no Content-Length passes the front's check and is cut here), hashed for
/// the flexible checksums asked — and the checks to run once it is staged: the checksums from
/// headers or trailer, and Content-MD5. The checks record what they verified in the object's
/// metadata; their S3 error travels through the node as the body's error.
pub(crate) fn checked_body(
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
pub(crate) fn staging_error(cut: &parking_lot::Mutex<Option<Cut>>, e: NodeError) -> s3s::S3Error {
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
