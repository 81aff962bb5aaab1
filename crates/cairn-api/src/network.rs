//! What the API asks of the node's network (`id`, `swarm peers`, `swarm connect`,
//! `routing findprovs`), as a trait the composition root implements over the libp2p handle:
//! the API knows no network crate, and a node without a network passes none.

use std::sync::Arc;

use futures::future::BoxFuture;

/// A connected peer, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Peer {
    /// Its peer id (base58).
    pub peer_id: String,
    /// The address of the connection.
    pub addr: String,
    /// What it says it runs (identify), once known.
    pub agent: Option<String>,
    /// It proved this node's cluster secret.
    pub member: bool,
}

/// Why a network call failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The caller's input is malformed (an address that does not parse).
    #[error("{0}")]
    Invalid(String),
    /// The peer could not be reached.
    #[error("{0}")]
    Unreachable(String),
    /// The network task is gone or did not answer.
    #[error("{0}")]
    Unavailable(String),
}

/// The node's network, as the API uses it.
pub trait Network: Send + Sync + 'static {
    /// This node's peer id (base58).
    fn peer_id(&self) -> String;
    /// The addresses it listens on.
    fn addrs(&self) -> BoxFuture<'_, Result<Vec<String>, NetworkError>>;
    /// The connected peers.
    fn peers(&self) -> BoxFuture<'_, Result<Vec<Peer>, NetworkError>>;
    /// Dials a multiaddr; the peer id that answered.
    fn dial(&self, addr: String) -> BoxFuture<'_, Result<String, NetworkError>>;
    /// The peers that announced they provide `cid`.
    fn find_providers(
        &self,
        cid: cairn_dag::Cid,
    ) -> BoxFuture<'_, Result<Vec<String>, NetworkError>>;
}

/// A shared network handle.
pub type SharedNetwork = Arc<dyn Network>;
