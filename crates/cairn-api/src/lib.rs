//! The local API of a running node: what the `cairn` CLI talks to while `serve` holds the data
//! folder (the way `ipfs` talks to its daemon). On its loopback listener every request carries the token
//! that `serve` writes (0600) next to the API address in the data folder. Paths are under
//! `/api/v0`; errors are JSON `{"error": "..."}` with a 4xx/5xx status.

#![warn(missing_docs)]

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use cairn_node::{ErrorKind, Node};

pub mod api;
pub mod client;
pub mod gate;
pub mod local;
pub mod network;
pub mod ops;
mod routes;
pub mod types;

pub use api::{CallError, NodeApi};
pub use client::HttpApi;
pub use local::LocalApi;
pub use routes::MAX_MANIFEST;

/// The file in the data folder that says where the API listens and its token.
pub const API_FILE: &str = "api.toml";

#[derive(Clone)]
struct AppState {
    node: Node,
    net: Option<network::SharedNetwork>,
}

/// The API's routes over `node` (and its network, when it runs one), requiring `token`.
pub fn router(node: Node, token: String, net: Option<network::SharedNetwork>) -> Router {
    let token = std::sync::Arc::new(token);
    routes(node, net).layer(middleware::from_fn_with_state(token, auth))
}

/// The API's routes behind the node's authorization ([`gate`]); the caller puts its own
/// authentication in front, which names the [`cairn_node::access::Caller`] (the local
/// listener's token in [`router`]; the gateway listener's security mode for a remote CLI).
pub fn routes(node: Node, net: Option<network::SharedNetwork>) -> Router {
    let gatekeeper = node.clone();
    let state = AppState { node, net };
    Router::new()
        .route("/api/v0/id", get(routes::id))
        .route("/api/v0/swarm/peers", get(routes::swarm_peers))
        .route("/api/v0/swarm/connect", post(routes::swarm_connect))
        .route("/api/v0/routing/findprovs", get(routes::find_providers))
        .route("/api/v0/add", post(routes::add))
        .route("/api/v0/cat", get(routes::cat))
        .route("/api/v0/ls", get(routes::ls))
        .route("/api/v0/gc", post(routes::gc))
        .route("/api/v0/scrub", post(routes::scrub))
        .route("/api/v0/pin/ls", get(routes::pin_ls))
        .route("/api/v0/pin/add", post(routes::pin_add))
        .route("/api/v0/pin/rm", post(routes::pin_rm))
        .route("/api/v0/check", get(routes::check))
        .route("/api/v0/stat", get(routes::stat))
        .route("/api/v0/tree", post(routes::tree))
        .route("/api/v0/add/many", post(routes::add_many))
        .route("/api/v0/snapshot/add", post(routes::snapshot_add))
        .route("/api/v0/snapshot/ls", get(routes::snapshot_ls))
        .route("/api/v0/snapshot/rm", post(routes::snapshot_rm))
        .route("/api/v0/repo/stat", get(routes::repo_stat))
        .route("/api/v0/car/export", get(routes::car_export))
        .route("/api/v0/car/import", post(routes::car_import))
        .route("/api/v0/key/create", post(routes::key_create))
        .route("/api/v0/key/list", get(routes::key_list))
        .route("/api/v0/key/delete", post(routes::key_delete))
        .route("/api/v0/sftp/add", post(routes::sftp_add))
        .route("/api/v0/sftp/list", get(routes::sftp_list))
        .route("/api/v0/sftp/remove", post(routes::sftp_remove))
        .route("/api/v0/sftp/set-quota", post(routes::sftp_set_quota))
        .route("/api/v0/sftp/usage", get(routes::sftp_usage))
        .route("/api/v0/bucket/list", get(routes::bucket_list))
        .route("/api/v0/bucket/set-public", post(routes::bucket_set_public))
        .route("/api/v0/bucket/root", get(routes::root))
        .route("/api/v0/bucket/history", get(routes::history))
        .route("/api/v0/bucket/restore", post(routes::restore))
        .route("/api/v0/bucket/head", get(routes::head))
        .route("/api/v0/bucket/promote", post(routes::promote))
        .route(
            "/api/v0/bucket/redundancy",
            get(routes::redundancy).post(routes::redundancy),
        )
        .route("/api/v0/bucket/import", post(routes::import))
        .route("/api/v0/bucket/create", post(routes::create))
        .route(
            "/api/v0/bucket/encryption",
            get(routes::encryption).post(routes::encryption),
        )
        .route("/api/v0/share", post(routes::share))
        .route("/api/v0/user", get(routes::user))
        .route("/api/v0/workers", get(routes::workers))
        .route("/api/v0/cluster/check", post(routes::cluster_check))
        .route("/api/v0/cluster/margins", get(routes::cluster_margins))
        .with_state(state)
        .layer(middleware::from_fn_with_state(gatekeeper, gate::gate))
}

async fn auth(State(token): State<std::sync::Arc<String>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
    if ok {
        // The local API's token is the operator's.
        let mut req = req;
        req.extensions_mut()
            .insert(cairn_node::access::Caller::Root);
        next.run(req).await
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong API token").into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An API failure: a status and a message, answered as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct ApiError(StatusCode, String);

impl ApiError {
    /// A failure with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError(status, message.into())
    }

    /// A malformed request (400).
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// Nothing by that name (404).
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(types::ErrorBody { error: self.1 })).into_response()
    }
}

/// The API's answer to each kind of node failure: [`ErrorKind::rest_status`], the table both
/// REST APIs share.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.rest_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A node error as the API's: its kind's status ([`status_of`]) and its message.
impl From<cairn_node::NodeError> for ApiError {
    fn from(e: cairn_node::NodeError) -> Self {
        ApiError::new(status_of(e.kind()), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_errors_answer_from_the_rest_table() {
        assert_eq!(
            status_of(ErrorKind::BadDag),
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
