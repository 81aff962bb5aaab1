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
    if method == http::Method::PUT
        && let Some(len) = headers
            .get("x-amz-decoded-content-length")
            .or_else(|| headers.get(http::header::CONTENT_LENGTH))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_PUT
    {
        return Some(s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size (5 GiB); use multipart"
        ));
    }
    None
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

/// Puts `<RequestId>` into an S3 error body (s3s builds them without one), so it matches the
/// `x-amz-request-id` header as clients and s3-tests expect.
pub fn with_request_id(resp: &mut HttpResponse, id: &str) {
    if !(resp.status().is_client_error() || resp.status().is_server_error()) {
        return;
    }
    let Some(body) = resp.body().bytes() else {
        return;
    };
    let text = body.as_ref();
    let Some(end) = text.windows(8).rposition(|w| w == b"</Error>") else {
        return;
    };
    if text.windows(11).any(|w| w == b"<RequestId>") {
        return;
    }
    let mut out = Vec::with_capacity(text.len() + id.len() + 23);
    out.extend_from_slice(&text[..end]);
    out.extend_from_slice(format!("<RequestId>{id}</RequestId>").as_bytes());
    out.extend_from_slice(&text[end..]);
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, out.len().into());
    *resp.body_mut() = s3s::Body::from(out);
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
            out.ends_with("<Code>NoSuchKey</Code><RequestId>ABC</RequestId></Error>"),
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
}
