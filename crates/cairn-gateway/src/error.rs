//! Gateway errors and their HTTP answers: plain-text bodies, never a server path or a panic.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_dag::DagError;
use cairn_node::NodeError;
use cairn_store::StoreError;

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
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The 404 of a CID that is not served: the same whether it is unknown or unpublished.
    pub(crate) fn not_served(cid: &cairn_dag::Cid) -> Self {
        GatewayError::NotFound(format!("{cid}: not found"))
    }
}

fn from_dag(e: &DagError) -> GatewayError {
    match e {
        DagError::NotFound { parent, name } => {
            GatewayError::NotFound(format!("no link named {name:?} under {parent}"))
        }
        DagError::NotADirectory(cid) => {
            GatewayError::NotFound(format!("{cid} is not a directory: no such path"))
        }
        // malformed, unsupported or past a walk limit (a crafted DAG, or a listing too large
        // to answer): the content cannot be answered right
        other => GatewayError::BadData(other.to_string()),
    }
}

impl From<NodeError> for GatewayError {
    fn from(e: NodeError) -> Self {
        match &e {
            NodeError::Store(StoreError::NotFound(cid)) => GatewayError::not_served(cid),
            // the quarantine path stays in the log, not in the answer
            NodeError::Store(StoreError::CorruptBlock { cid, .. }) => {
                GatewayError::BadData(format!("block {cid} failed verification"))
            }
            NodeError::Store(StoreError::Dag(d)) | NodeError::Dag(d) => from_dag(d),
            _ => GatewayError::Internal(e.to_string()),
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
        assert_eq!(status(NodeError::Unsupported("x".into())), 500);
        // unknown and unpublished answer alike
        assert_eq!(
            GatewayError::from(NodeError::Store(StoreError::NotFound(cid))).to_string(),
            GatewayError::not_served(&cid).to_string()
        );
    }
}
