//! The IPFS HTTP gateway (path gateway `GET/HEAD /ipfs/{cid}[/path]` and trustless responses).
//! Read-only; which CIDs it serves is decided by [`GatewayConfig`] and the node's publication
//! rules ([`cairn_node::Node::published`]).

use axum::Router;
use cairn_node::Node;

/// What the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GatewayConfig {
    /// Serve every CID in the store, not only published ones (objects of public buckets, public
    /// bucket roots, pinned CIDs).
    pub serve_all: bool,
}

/// The gateway's routes.
pub fn router(node: Node, config: GatewayConfig) -> Router {
    let _ = (node, config);
    Router::new()
}
