//! The thin layer in front of s3s: request checks s3s 0.14 does not make — presigned URLs must
//! expire within 1 s to 7 days (else 403 `AuthorizationQueryParametersError`), a single PUT
//! may carry at most 5 GiB (else 400 `EntityTooLarge`), `OPTIONS` without CORS is 400 — and an
//! `x-amz-request-id` on every response.
//!
//! It also closes the connection after answering an `Expect: 100-continue` request without a
//! `100 Continue` (hyper sends none for an empty body, nor for an answer given before the body
//! is read). botocore (aws cli, boto3) keeps the answer's status for the next request on that
//! connection when it carries `Expect` too, and then misreads its response: the upload stalls
//! until a timeout and fails with `KeyError: 'ETag'`. Closing resets botocore's state.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use s3s::service::S3Service;
use s3s::{HttpError, HttpResponse, S3Error, s3_error};

/// S3's largest single PUT.
pub const MAX_PUT: u64 = 5 << 30;
/// S3's longest presigned-URL lifetime (seconds).
pub const MAX_PRESIGN_SECS: i64 = 7 * 24 * 3600;

/// The error a request gets before it reaches s3s, if any.
pub fn precheck(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Option<S3Error> {
    if method == http::Method::OPTIONS {
        return Some(s3_error!(InvalidRequest, "CORS is not configured"));
    }
    if let Some(query) = uri.query() {
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            // Names are compared decoded, as s3s reads them: `X%2DAmz%2DExpires` is the same
            // parameter.
            let (k, v) = (decoded(k), decoded(v));
            if is_sigv2_query(&k) {
                return Some(sigv2_refused());
            }
            if k.eq_ignore_ascii_case("X-Amz-Expires") {
                match v.parse::<i64>() {
                    Ok(secs) if (1..=MAX_PRESIGN_SECS).contains(&secs) => {}
                    _ => {
                        let mut e = S3Error::with_message(
                            s3s::S3ErrorCode::Custom("AuthorizationQueryParametersError".into()),
                            "X-Amz-Expires must be between 1 and 604800 seconds",
                        );
                        e.set_status_code(http::StatusCode::FORBIDDEN);
                        return Some(e);
                    }
                }
            }
        }
    }
    if headers
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS "))
    {
        return Some(sigv2_refused());
    }
    if method == http::Method::PUT
        && let Some(len) = headers
            .get("x-amz-decoded-content-length")
            .or_else(|| headers.get(http::header::CONTENT_LENGTH))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_PUT
    {
        return Some(too_large());
    }
    None
}

/// S3's answer to a body over [`MAX_PUT`].
pub fn too_large() -> S3Error {
    s3_error!(
        EntityTooLarge,
        "Your proposed upload exceeds the maximum allowed object size (5 GiB); use multipart"
    )
}

/// A query parameter percent-decoded (`+` stays, as in SigV4's canonical query).
fn decoded(text: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// A SigV2 presigned URL (`AWSAccessKeyId` + `Signature`) names its key so.
fn is_sigv2_query(name: &str) -> bool {
    name.eq_ignore_ascii_case("AWSAccessKeyId")
}

/// SigV2 is refused: its header form carries no freshness s3s checks (a captured request
/// replays for ever) and its presigned form no bounded expiry. Every maintained client signs
/// with SigV4.
fn sigv2_refused() -> S3Error {
    let mut e = S3Error::with_message(
        s3s::S3ErrorCode::Custom("InvalidRequest".into()),
        "Signature Version 2 is not supported: sign requests with AWS Signature Version 4",
    );
    e.set_status_code(http::StatusCode::BAD_REQUEST);
    e
}

/// s3s's service with the checks above and request ids.
#[derive(Clone)]
pub struct Front {
    inner: S3Service,
    next_id: std::sync::Arc<AtomicU64>,
    node_tag: u32,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Front")
    }
}

impl Front {
    /// Wraps an s3s service.
    pub fn new(inner: S3Service) -> Self {
        let node_tag = std::process::id();
        Front {
            inner,
            next_id: std::sync::Arc::new(AtomicU64::new(1)),
            node_tag,
        }
    }
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for Front {
    type Response = HttpResponse;
    type Error = HttpError;
    type Future = BoxFuture<'static, Result<HttpResponse, HttpError>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let id = format!(
            "{:08X}{:016X}",
            self.node_tag,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let early = precheck(req.method(), req.uri(), req.headers());
        let expects_continue = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let empty_body = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .is_none_or(|v| v.as_bytes() == b"0");
        let inner = self.inner.clone();
        let what = format!("{} {}", req.method(), req.uri());
        tracing::debug!(%id, %what, "request");
        Box::pin(async move {
            let mut resp = match early {
                Some(mut e) => {
                    e.set_request_id(id.clone());
                    e.to_http_response()
                        .map_err(|e| HttpError::new(Box::new(e)))?
                }
                None => hyper::service::Service::call(&inner, req).await?,
            };
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amz-request-id", v);
            }
            with_request_id(&mut resp, &id);
            if expects_continue && (empty_body || !resp.status().is_success()) {
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            tracing::debug!(%id, %what, status = resp.status().as_u16(), "response");
            Ok(resp)
        })
    }
}

/// Completes an S3 error body as clients expect: a `<Message>` when s3s made the error without
/// one (aws cli prints "Unknown" otherwise — s3s's own bucket-name check does), and a
/// `<RequestId>` equal to the `x-amz-request-id` header (s3s writes none).
pub fn with_request_id(resp: &mut HttpResponse, id: &str) {
    if !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return;
    }
    let Some(body) = resp.body().bytes() else {
        return;
    };
    let text = body.as_ref();
    let Some(end) = find(text, b"</Error>") else {
        return;
    };
    let mut out = Vec::with_capacity(text.len() + id.len() + 96);
    let mut rest = &text[..end];
    if find(rest, b"<Message>").is_none()
        && let (Some(open), Some(close)) = (find(rest, b"<Code>"), find(rest, b"</Code>"))
        && open + 6 <= close
    {
        let code = String::from_utf8_lossy(&rest[open + 6..close]).into_owned();
        let after = close + b"</Code>".len();
        out.extend_from_slice(&rest[..after]);
        out.extend_from_slice(format!("<Message>{}</Message>", default_message(&code)).as_bytes());
        rest = &rest[after..];
    }
    out.extend_from_slice(rest);
    if find(text, b"<RequestId>").is_none() {
        out.extend_from_slice(format!("<RequestId>{id}</RequestId>").as_bytes());
    }
    out.extend_from_slice(&text[end..]);
    if out.len() == text.len() {
        return;
    }
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, out.len().into());
    *resp.body_mut() = s3s::Body::from(out);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// S3's message for an error code, for errors made without one.
fn default_message(code: &str) -> String {
    match code {
        "InvalidBucketName" => "The specified bucket is not valid.".to_owned(),
        "NoSuchBucket" => "The specified bucket does not exist".to_owned(),
        "NoSuchKey" => "The specified key does not exist.".to_owned(),
        "AccessDenied" => "Access Denied".to_owned(),
        "InvalidArgument" => "Invalid Argument".to_owned(),
        "MethodNotAllowed" => {
            "The specified method is not allowed against this resource.".to_owned()
        }
        "NotImplemented" => {
            "A header you provided implies functionality that is not implemented".to_owned()
        }
        other => format!("The request failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &str, uri: &str, len: Option<u64>) -> Option<String> {
        let mut headers = http::HeaderMap::new();
        if let Some(l) = len {
            headers.insert(http::header::CONTENT_LENGTH, l.into());
        }
        precheck(&method.parse().unwrap(), &uri.parse().unwrap(), &headers)
            .map(|e| e.code().as_str().to_owned())
    }

    #[test]
    fn request_id_goes_into_error_bodies() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>";
        let mut resp = http::Response::new(s3s::Body::from(body.to_owned()));
        *resp.status_mut() = http::StatusCode::NOT_FOUND;
        with_request_id(&mut resp, "ABC");
        let out = String::from_utf8(resp.body().bytes().unwrap().to_vec()).unwrap();
        assert!(
            out.ends_with("<Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><RequestId>ABC</RequestId></Error>"),
            "{out}"
        );
        let mut ok = http::Response::new(s3s::Body::from(body.to_owned()));
        with_request_id(&mut ok, "ABC");
        assert!(
            !String::from_utf8(ok.body().bytes().unwrap().to_vec())
                .unwrap()
                .contains("ABC")
        );
    }

    /// An error s3s made without a message gets S3's (aws cli printed "Unknown").
    #[test]
    fn errors_without_a_message_get_one() {
        let body = "<?xml version=\"1.0\"?><Error><Code>InvalidBucketName</Code></Error>";
        let mut resp = http::Response::new(s3s::Body::from(body.to_owned()));
        *resp.status_mut() = http::StatusCode::BAD_REQUEST;
        with_request_id(&mut resp, "ID");
        let out = String::from_utf8(resp.body().bytes().unwrap().to_vec()).unwrap();
        assert!(
            out.ends_with(
                "<Code>InvalidBucketName</Code><Message>The specified bucket is not valid.\
                 </Message><RequestId>ID</RequestId></Error>"
            ),
            "{out}"
        );
        assert_eq!(
            resp.headers()[http::header::CONTENT_LENGTH],
            out.len().to_string()
        );
    }

    #[test]
    fn prechecks() {
        assert_eq!(check("GET", "/b/k?X-Amz-Expires=100", None), None);
        assert_eq!(
            check("GET", "/b/k?X-Amz-Expires=609901", None).as_deref(),
            Some("AuthorizationQueryParametersError")
        );
        assert!(check("GET", "/b/k?X-Amz-Expires=-7", None).is_some());
        assert_eq!(
            check("OPTIONS", "/b/k", None).as_deref(),
            Some("InvalidRequest")
        );
        assert_eq!(check("PUT", "/b/k", Some(MAX_PUT)), None);
        assert_eq!(
            check("PUT", "/b/k", Some(MAX_PUT + 1)).as_deref(),
            Some("EntityTooLarge")
        );
    }

    /// L1: a presigned lifetime hidden behind an encoded parameter name is still checked.
    #[test]
    fn encoded_parameter_names_are_checked() {
        for uri in [
            "/b/k?X%2DAmz%2DExpires=4294967295",
            "/b/k?x-amz-expires=4294967295",
            "/b/k?X-Amz-Expires=%34294967295",
        ] {
            assert_eq!(
                check("GET", uri, None).as_deref(),
                Some("AuthorizationQueryParametersError"),
                "{uri}"
            );
        }
        assert_eq!(check("GET", "/b/k?X%2DAmz%2DExpires=60", None), None);
    }

    /// L1: SigV2 (a header with no freshness check, presigned URLs with no bounded expiry)
    /// is refused in both forms.
    #[test]
    fn sigv2_is_refused() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="
                .parse()
                .unwrap(),
        );
        let e = precheck(&http::Method::GET, &"/b/k".parse().unwrap(), &headers).unwrap();
        assert_eq!(e.code().as_str(), "InvalidRequest");
        assert!(e.message().unwrap().contains("Version 4"));
        for uri in [
            "/b/k?AWSAccessKeyId=AKID&Expires=99999999999&Signature=x",
            "/b/k?AWSAccess%4BeyId=AKID&Expires=1&Signature=x",
        ] {
            assert_eq!(
                check("GET", uri, None).as_deref(),
                Some("InvalidRequest"),
                "{uri}"
            );
        }
    }
}
