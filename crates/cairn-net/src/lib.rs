//! Cairn's libp2p node: one swarm task owning the transports (TCP + QUIC, or TCP only behind a
//! pre-shared key), noise, yamux, identify, ping and Kademlia, driven through a [`NetHandle`]
//! of async commands. The node's ed25519 identity (`identity.key`) is its libp2p key, so the
//! peer id is stable across restarts.
//!
//! Content routing: the node announces provider records for the roots it holds
//! ([`NetHandle::provide`]); a block no connected peer has is looked up in the DHT and its
//! providers dialled ([`NetHandle::find_providers`], and on its own for Bitswap misses). The
//! Kademlia record store is on disk ([`kad_store`]). This layer knows nothing about S3 or
//! buckets.
//!
//! Members and strangers ([`member`]): a peer that proves this node's cluster secret is a
//! member and may speak the member protocols (`/cairn/heads/1.0.0`, `/cairn/piece/1.0.0`);
//! every other peer is a stranger, which gets Kademlia and Bitswap for what the node layer
//! publishes ([`BlockProvider::published`]) and nothing else. Limits: connections per
//! peer, in total and pending (`connection_limits`), none accepted past a share of the
//! machine's memory (`memory_connection_limits`), a few request streams per connection, and a
//! bounded number of member requests handled at once.
//!
//! Where it lives: `config` (settings and limits), `swarm` (the behaviours and how the swarm is
//! built), `task` (the loop that owns the swarm), `start` (binding and running it); this file
//! keeps the [`NetHandle`] the node talks through and the commands it sends.

#![warn(missing_docs)]

pub mod bitswap;
mod config;
pub mod kad_store;
pub mod member;
pub mod metrics;
mod providers;
pub mod rpc;
mod start;
pub mod streams;
mod swarm;
mod task;
#[doc(hidden)]
pub mod testkit;
pub mod visible;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, allow_block_list, connection_limits,
    identify, kad, memory_connection_limits, noise, ping, pnet, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

pub use config::{Limits, NetConfig, keypair_from_seed, zone_of_agent};
pub use libp2p;
pub use providers::{BlockProvider, HeadProvider, PieceProvider, Providers};
pub use start::{Pending, prepare, start};
use swarm::{Behaviour, build_swarm, probe_tcp};
pub use task::provider_key;
use task::{DHT_FLUSH_INTERVAL, Task};

/// The identify protocol version Kubo and Helia announce.
pub const IDENTIFY_PROTOCOL: &str = "ipfs/0.1.0";
/// Cairn's own (private) DHT protocol; `/ipfs/kad/1.0.0` joins the public IPFS DHT.
pub const DEFAULT_KAD_PROTOCOL: &str = "/cairn/kad/1.0.0";

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A transport could not be set up or a listen address bound.
    #[error("network setup: {0}")]
    Setup(String),
    /// A dial failed.
    #[error("dial {addr}: {reason}")]
    Dial {
        /// Where.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// The network task is gone (node shutting down).
    #[error("the network task has stopped")]
    Stopped,
    /// A request to a peer (bucket heads, cluster pieces) failed.
    #[error("peer request: {0}")]
    Request(String),
    /// A block could not be fetched from the network.
    #[error("fetching {0}: {1}")]
    Fetch(cairn_dag::Cid, String),
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// Its id.
    pub peer_id: PeerId,
    /// The address of the connection.
    pub addr: Multiaddr,
    /// What it says it runs (identify), once known.
    pub agent: Option<String>,
    /// It proved this node's cluster secret.
    pub member: bool,
}

/// Where the answer to a request goes.
type Reply = oneshot::Sender<Result<Vec<u8>, NetError>>;

/// Which request-response protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rpc {
    Heads,
    Pieces,
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NetError>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Addrs(oneshot::Sender<Vec<Multiaddr>>),
    /// Announce provider records; the reply counts the announcements that reached a peer.
    Provide(Vec<cairn_dag::Cid>, oneshot::Sender<usize>),
    /// Send a request (heads: empty) to a peer.
    Ask(Rpc, PeerId, Vec<u8>, Reply),
    /// Answer a peer's request.
    Answer(
        Rpc,
        PeerId,
        libp2p::request_response::ResponseChannel<Vec<u8>>,
        Vec<u8>,
    ),
    /// Open an outbound Bitswap stream.
    OpenStream(PeerId, streams::OpenReply),
    /// Look providers up; with `connect`, dial them and hand them to Bitswap for `cid`.
    FindProviders {
        cid: cairn_dag::Cid,
        connect: bool,
        reply: Option<oneshot::Sender<Vec<PeerId>>>,
    },
}

/// A handle on the running network task; cheap to clone.
#[derive(Clone)]
pub struct NetHandle {
    peer_id: PeerId,
    commands: mpsc::Sender<Command>,
    bitswap: mpsc::Sender<bitswap::BsCommand>,
}

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetHandle")
            .field("peer_id", &self.peer_id)
            .finish()
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Dial(..) => "Dial",
            Command::Peers(_) => "Peers",
            Command::Addrs(_) => "Addrs",
            Command::Provide(..) => "Provide",
            Command::OpenStream(..) => "OpenStream",
            Command::Ask(..) => "Ask",
            Command::Answer(..) => "Answer",
            Command::FindProviders { .. } => "FindProviders",
        })
    }
}

impl NetHandle {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Connects to `addr` (which should end in `/p2p/<id>`); returns the peer's id once
    /// connected.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(Command::Peers).await
    }

    /// The addresses this node listens on, each ending in `/p2p/<id>`.
    pub async fn addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::Addrs).await
    }

    /// Announces in the DHT that this node provides `cids` (their records are kept in the
    /// persistent store and announced to the closest peers). Returns once every announcement
    /// has finished; the count is of those that reached at least one peer.
    pub async fn provide(&self, cids: Vec<cairn_dag::Cid>) -> Result<usize, NetError> {
        self.ask(|tx| Command::Provide(cids, tx)).await
    }

    /// The bucket heads `peer` shares (the bytes its node layer sent; verify before use).
    /// Members only: a stranger is not asked.
    pub async fn bucket_heads(&self, peer: PeerId) -> Result<Vec<u8>, NetError> {
        self.ask(|tx| Command::Ask(Rpc::Heads, peer, Vec::new(), tx))
            .await?
    }

    /// Sends a cluster piece request to `peer` and returns its answer (members only).
    pub async fn piece_request(&self, peer: PeerId, request: Vec<u8>) -> Result<Vec<u8>, NetError> {
        self.ask(|tx| Command::Ask(Rpc::Pieces, peer, request, tx))
            .await?
    }

    /// Peers that announced they provide `cid` (the DHT, then this node's own store).
    pub async fn find_providers(&self, cid: cairn_dag::Cid) -> Result<Vec<PeerId>, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::FindProviders {
                cid,
                connect: false,
                reply: Some(tx),
            })
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Fetches a block from connected peers by Bitswap; the bytes are verified against `cid`.
    pub async fn fetch(&self, cid: cairn_dag::Cid) -> Result<bytes::Bytes, NetError> {
        bitswap::fetch(&self.bitswap, cid).await
    }

    /// Asks for blocks that will be read soon; they are stored as they arrive.
    pub async fn prefetch(&self, cids: Vec<cairn_dag::Cid>) -> Result<(), NetError> {
        bitswap::prefetch(&self.bitswap, cids).await
    }

    /// Bitswap counters and gauges.
    pub async fn bitswap_stats(&self) -> Result<cairn_bitswap::Stats, NetError> {
        let (tx, rx) = oneshot::channel();
        self.bitswap
            .send(bitswap::BsCommand::Stats(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }
}
