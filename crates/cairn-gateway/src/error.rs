//! Gateway errors and their HTTP answers: plain-text bodies, never a server path or a panic.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_dag::DagError;
use cairn_node::{ErrorKind, NodeError};

/// Why a request was not answered with content.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Malformed request: bad CID, path segment, format or parameter (400).
    #[error("{0}")]
    BadRequest(String),
    /// Not published, not stored, or no such path (404).
    #[error("{0}")]
    NotFound(String),
    /// Only GET and HEAD are answered (405).
    #[error("only GET and HEAD are supported")]
    MethodNotAllowed,
    /// The `Accept`ed response types cannot be produced (406).
    #[error("{0}")]
    NotAcceptable(String),
    /// The `Range` starts past the end (416).
    #[error("range not satisfiable: the file has {size} bytes")]
    RangeNotSatisfiable {
        /// The file's size.
        size: u64,
    },
    /// A feature this gateway does not have, such as IPNS (501).
    #[error("{0}")]
    NotImplemented(String),
    /// Stored data failed verification or cannot be decoded (502): the answer would be wrong.
    #[error("{0}")]
    BadData(String),
    /// The caller may not have this (403).
    #[error("{0}")]
    Forbidden(String),
    /// The name is taken (409).
    #[error("{0}")]
    Conflict(String),
    /// A precondition failed (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The cluster cannot answer now (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: storage or task failure (500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            GatewayError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            GatewayError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            GatewayError::BadData(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Forbidden(_) => StatusCode::FORBIDDEN,
            GatewayError::Conflict(_) => StatusCode::CONFLICT,
            GatewayError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            GatewayError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The 404 of a CID that is not served: the same whether it is unknown or unpublished.
    pub(crate) fn not_served(cid: &cairn_dag::Cid) -> Self {
        GatewayError::NotFound(format!("{cid}: not found"))
    }
}

/// The gateway's one answer to each kind of node failure: content it cannot answer right
/// (a block failing verification, a DAG it cannot walk) is a 502, as the gateway spec asks; a
/// CID it does not serve a 404 whether unknown or unpublished.
impl From<NodeError> for GatewayError {
    fn from(e: NodeError) -> Self {
        if let Some(cid) = e.missing_block() {
            return GatewayError::not_served(cid);
        }
        let message = if let Some(cid) = e.corrupt_block() {
            // the quarantine path stays in the log, not in the answer
            format!("block {cid} failed verification")
        } else if let Some(d @ DagError::NotADirectory(_)) = e.dag_error() {
            format!("{d}: no such path")
        } else {
            e.to_string()
        };
        match e.kind() {
            ErrorKind::NotFound => GatewayError::NotFound(message),
            ErrorKind::Invalid => GatewayError::BadRequest(message),
            ErrorKind::BadDag | ErrorKind::Corrupt => GatewayError::BadData(message),
            ErrorKind::Forbidden => GatewayError::Forbidden(message),
            ErrorKind::Conflict => GatewayError::Conflict(message),
            ErrorKind::PreconditionFailed => GatewayError::PreconditionFailed(message),
            ErrorKind::Unavailable => GatewayError::Unavailable(message),
            ErrorKind::Internal => GatewayError::Internal(message),
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(%status, "gateway: {self}");
        }
        let mut response = (status, format!("{self}\n")).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        match self {
            GatewayError::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            GatewayError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_node::StoreError;

    #[test]
    fn node_errors_map_to_statuses() {
        let cid: cairn_dag::Cid = "bafkqaaa".parse().unwrap();
        let status = |e: NodeError| GatewayError::from(e).status().as_u16();
        assert_eq!(status(StoreError::NotFound(cid).into()), 404);
        assert_eq!(
            status(
                DagError::NotFound {
                    parent: cid,
                    name: "x".into()
                }
                .into()
            ),
            404
        );
        assert_eq!(status(DagError::NotADirectory(cid).into()), 404);
        assert_eq!(status(DagError::HashMismatch(cid).into()), 502);
        let too_deep = DagError::LimitExceeded {
            root: cid,
            limit: cairn_dag::Limit::Depth,
            max: 8,
        };
        assert_eq!(status(too_deep.into()), 502);
        let corrupt = GatewayError::from(NodeError::Store(StoreError::CorruptBlock {
            cid,
            quarantined: "/secret/path".into(),
        }));
        assert_eq!(corrupt.status().as_u16(), 502);
        assert!(!corrupt.to_string().contains("secret"));
        assert_eq!(status(NodeError::Unsupported("x".into())), 400);
        assert_eq!(status(DagError::NotAFile(cid).into()), 400);
        assert_eq!(status(NodeError::AccessDenied("x".into())), 403);
        assert_eq!(status(NodeError::Unavailable("x".into())), 503);
        assert_eq!(status(NodeError::BucketAlreadyExists("b".into())), 409);
        assert_eq!(status(NodeError::PreconditionFailed), 412);
        let io = NodeError::Io {
            context: "x".into(),
            source: std::io::Error::other("y"),
        };
        assert_eq!(status(io), 500);
        // unknown and unpublished answer alike
        assert_eq!(
            GatewayError::from(NodeError::Store(StoreError::NotFound(cid))).to_string(),
            GatewayError::not_served(&cid).to_string()
        );
    }
}
