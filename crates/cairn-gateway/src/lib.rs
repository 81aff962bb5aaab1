//! The IPFS HTTP gateway: the path gateway (`GET/HEAD /ipfs/{cid}[/path]`: files with ranges,
//! directories with `index.html` or a generated listing) and the trustless gateway (raw blocks
//! and scoped CARs, `?format=raw|car` or `Accept`). Read-only; which CIDs it serves is decided by
//! [`GatewayConfig`] and the node's publication rules ([`cairn_node::Access::published`]).
//! Behaviour and choices: `docs/gateway.md`. On the same listener, [`v1`] is the
//! storage-gateway REST API (uploads as jobs, files by CID) for authorised callers.
//!
//! * `request` — parsing the URL, query and `Accept` (pure).
//! * `serve` — policy, resolution and metadata reads on a blocking task, then the response;
//!   file bodies and CARs stream from the node.
//! * `range`, `content_type`, `listing` — `Range` headers, content types, directory pages.

#![warn(missing_docs)]

pub mod auth;
mod content_type;
mod error;
mod listing;
mod range;
mod request;
mod serve;
pub mod v1;

use axum::Router;
use cairn_node::Node;

pub use error::GatewayError;

/// What the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayConfig {
    /// Serve every CID in the store, not only published ones (objects of public buckets, public
    /// bucket roots, pinned CIDs).
    pub serve_all: bool,
}

/// The gateway's routes: every path goes to one handler, which answers `/ipfs/...` and
/// refuses the rest.
pub fn router(node: Node, config: GatewayConfig) -> Router {
    Router::new()
        .fallback(serve::handle)
        .with_state(serve::Gateway { node, config })
}
