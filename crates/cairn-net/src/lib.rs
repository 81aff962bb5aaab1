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

#![warn(missing_docs)]

pub mod bitswap;
pub mod kad_store;
pub mod member;
pub mod metrics;
mod providers;
pub mod rpc;
mod start;
pub mod streams;
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

pub use libp2p;
pub use providers::{BlockProvider, HeadProvider, PieceProvider, Providers};
pub use start::{Pending, prepare, start};

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

/// How the node joins the network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Listen addresses (`/ip4/127.0.0.1/tcp/4001`, `/ip4/127.0.0.1/udp/4001/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Pre-shared key of a private network (TCP only; QUIC is off then).
    pub psk: Option<[u8; 32]>,
    /// When set, only these peers may connect.
    pub allow: Option<HashSet<PeerId>>,
    /// Kademlia protocol name.
    pub kad_protocol: String,
    /// Addresses other peers should use to reach this node (put in provider records); empty
    /// announces the listen addresses.
    pub announce: Vec<Multiaddr>,
    /// Where the Kademlia record store lives (`dht.redb`); `None` keeps it in memory.
    pub dht_path: Option<PathBuf>,
    /// This node's failure domain, told to peers in its identify agent (`cairn/V zone=Z`).
    pub zone: Option<String>,
    /// The cluster secret members prove; `None`: no peer is a member.
    pub cluster: Option<cairn_crypt::ClusterSecret>,
    /// Connection and request limits.
    pub limits: Limits,
}

/// How much the network takes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Connections established with one peer.
    pub per_peer: u32,
    /// Connections established in all.
    pub established: u32,
    /// Incoming connections still in their handshake.
    pub pending_incoming: u32,
    /// Outgoing connections still in their handshake.
    pub pending_outgoing: u32,
    /// No new connection while the process uses more than this share of the machine's memory.
    pub max_memory_fraction: f64,
    /// Request streams (heads, pieces) open at once on one connection. A member's writes,
    /// read-ahead, repair and heads share them (32 was too few for one busy write); a
    /// stranger's are read (at most `rpc::MAX_REQUEST` each, as the bytes arrive) and dropped.
    pub streams_per_connection: usize,
    /// Member requests handled at once, over all peers (the rest wait their turn).
    pub handlers: usize,
    /// Member requests one peer may have in flight; past that they are refused.
    pub requests_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_peer: 4,
            established: 1024,
            pending_incoming: 128,
            pending_outgoing: 256,
            max_memory_fraction: 0.8,
            streams_per_connection: 128,
            handlers: 16,
            requests_per_peer: 512,
        }
    }
}

/// The zone a Cairn peer's identify agent names, if any.
pub fn zone_of_agent(agent: &str) -> Option<&str> {
    agent
        .split_whitespace()
        .find_map(|word| word.strip_prefix("zone="))
        .filter(|z| !z.is_empty())
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![
                "/ip4/127.0.0.1/tcp/4001".parse().expect("valid multiaddr"),
                "/ip4/127.0.0.1/udp/4001/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            ],
            bootstrap: Vec::new(),
            psk: None,
            allow: None,
            kad_protocol: DEFAULT_KAD_PROTOCOL.into(),
            announce: Vec::new(),
            dht_path: None,
            zone: None,
            cluster: None,
            limits: Limits::default(),
        }
    }
}

/// The libp2p keypair of a node identity seed (the 32 bytes of `identity.key`).
pub fn keypair_from_seed(seed: [u8; 32]) -> Result<Keypair, NetError> {
    Keypair::ed25519_from_bytes(seed).map_err(|e| NetError::Setup(e.to_string()))
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

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    memory: memory_connection_limits::Behaviour,
    allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad_store::RedbStore>,
    bitswap: streams::Behaviour,
    heads: libp2p::request_response::Behaviour<rpc::Codec>,
    pieces: libp2p::request_response::Behaviour<rpc::Codec>,
    member: libp2p::request_response::Behaviour<rpc::Codec>,
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

fn build_swarm(keypair: Keypair, config: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let kad_protocol =
        StreamProtocol::try_from_owned(config.kad_protocol.clone()).map_err(|e| setup(&e))?;
    let allow = config.allow.clone();
    let local = keypair.public().to_peer_id();
    let limits = kad_store::StoreLimits::default();
    let store = match &config.dht_path {
        Some(path) => kad_store::RedbStore::open(path, local, limits)?,
        None => kad_store::RedbStore::in_memory(local, limits)?,
    };
    let behaviour = move |key: &Keypair| {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(kad_protocol);
        kad_config.set_query_timeout(Duration::from_secs(30));
        // Cairn re-announces what it holds itself, in bounded batches (`NetHandle::provide`),
        // rather than kad's job that starts a query for every provided key at once.
        kad_config.set_provider_publication_interval(None);
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
        kad.set_mode(Some(kad::Mode::Server));
        let allow = allow.map(|peers| {
            let mut list = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
            for p in peers {
                list.allow_peer(p);
            }
            list
        });
        Behaviour {
            limits: connection_limits::Behaviour::new(
                connection_limits::ConnectionLimits::default()
                    .with_max_established_per_peer(Some(config.limits.per_peer))
                    .with_max_established(Some(config.limits.established))
                    .with_max_pending_incoming(Some(config.limits.pending_incoming))
                    .with_max_pending_outgoing(Some(config.limits.pending_outgoing)),
            ),
            memory: memory_connection_limits::Behaviour::with_max_percentage(
                config.limits.max_memory_fraction,
            ),
            allow: Toggle::from(allow),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public()).with_agent_version(
                    match &config.zone {
                        Some(zone) => format!("cairn/{} zone={zone}", env!("CARGO_PKG_VERSION")),
                        None => format!("cairn/{}", env!("CARGO_PKG_VERSION")),
                    },
                ),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            bitswap: streams::Behaviour::new(bitswap::protocol()),
            heads: rpc_behaviour(rpc::HEADS, config.limits.streams_per_connection),
            pieces: rpc_behaviour(rpc::PIECES, config.limits.streams_per_connection),
            member: rpc_behaviour(rpc::MEMBER, 2),
        }
    };
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(120));
    let builder = SwarmBuilder::with_existing_identity(keypair).with_tokio();
    let swarm = match config.psk {
        Some(psk) => {
            use libp2p::core::{Transport, upgrade::Version};
            let psk = pnet::PreSharedKey::new(psk);
            builder
                .with_other_transport(|key| {
                    let noise = noise::Config::new(key)
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                        tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                            .and_then(move |socket, _| pnet::PnetConfig::new(psk).handshake(socket))
                            .upgrade(Version::V1)
                            .authenticate(noise)
                            .multiplex(yamux::Config::default()),
                    )
                })
                .map_err(|e| setup(&e))?
                .with_behaviour(behaviour)
                .map_err(|e| setup(&e))?
                .with_swarm_config(idle)
                .build()
        }
        None => builder
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| setup(&e))?
            .with_quic()
            .with_behaviour(behaviour)
            .map_err(|e| setup(&e))?
            .with_swarm_config(idle)
            .build(),
    };
    Ok(swarm)
}

fn rpc_behaviour(
    protocol: libp2p::StreamProtocol,
    streams: usize,
) -> libp2p::request_response::Behaviour<rpc::Codec> {
    libp2p::request_response::Behaviour::new(
        [(protocol, libp2p::request_response::ProtocolSupport::Full)],
        libp2p::request_response::Config::default()
            .with_request_timeout(Duration::from_secs(20))
            .with_max_concurrent_streams(streams),
    )
}

/// Binds a TCP listen address once, plainly, before libp2p does: libp2p's listening sockets
/// set `SO_REUSEPORT`, so a second node on a busy port would otherwise start and share it
/// without a word.
fn probe_tcp(addr: &Multiaddr) -> Result<(), NetError> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind((ip, port))
        .map(drop)
        .map_err(|e| NetError::Setup(format!("p2p listen address {addr}: {e}")))
}

/// A dial waiting for its connection: the peer (if the address names one), the address, the
/// reply.
type PendingDial = (
    Option<PeerId>,
    Multiaddr,
    oneshot::Sender<Result<PeerId, NetError>>,
);

/// How often the DHT record store's writes are made durable.
const DHT_FLUSH_INTERVAL: Duration = Duration::from_secs(30);

/// A batch of provider announcements: queries left, how many reached a peer, the reply.
struct ProvideBatch {
    left: usize,
    reached: usize,
    reply: Option<oneshot::Sender<usize>>,
}

/// A provider lookup in flight.
struct FindQuery {
    cid: cairn_dag::Cid,
    connect: bool,
    found: HashSet<PeerId>,
    reply: Option<oneshot::Sender<Vec<PeerId>>>,
}

/// The DHT key of a CID: its multihash, as Kubo and Helia use.
pub fn provider_key(cid: &cairn_dag::Cid) -> kad::RecordKey {
    kad::RecordKey::new(&cid.hash().to_bytes())
}

struct Task {
    swarm: Swarm<Behaviour>,
    metrics: Option<Arc<metrics::NetMetrics>>,
    bitswap: mpsc::Sender<bitswap::BsCommand>,
    /// Inbound Bitswap streams, to the task that starts their readers.
    inbound_streams: mpsc::Sender<streams::Inbound>,
    commands: mpsc::Receiver<Command>,
    /// Dials waiting for their connection: the peer (if the address names one) and the reply.
    pending_dials: Vec<PendingDial>,
    agents: std::collections::HashMap<PeerId, String>,
    /// The remote address of the first connection to each connected peer.
    addrs: std::collections::HashMap<PeerId, Multiaddr>,
    /// Provider announcements in flight (query → batch), and the batches.
    provides: HashMap<kad::QueryId, u64>,
    batches: HashMap<u64, ProvideBatch>,
    next_batch: u64,
    /// Provider lookups in flight.
    finds: HashMap<kad::QueryId, FindQuery>,
    /// Requests waiting for their answer.
    asked: HashMap<(Rpc, libp2p::request_response::OutboundRequestId), Reply>,
    /// Where answers to peers come from (heads; pieces in a cluster), and the way back.
    heads: Option<Arc<dyn providers::HeadProvider>>,
    pieces: Option<Arc<dyn providers::PieceProvider>>,
    commands_tx: mpsc::Sender<Command>,
    /// Providers being dialled, and the CIDs Bitswap should ask them for once connected.
    provider_dials: HashMap<PeerId, Vec<cairn_dag::Cid>>,
    /// Who proved the cluster secret; member requests held while a proof is pending.
    gate: member::Gate<Held>,
    /// Our membership challenges in flight.
    challenges: HashMap<libp2p::request_response::OutboundRequestId, PeerId>,
    /// Member requests handled at once.
    handlers: Arc<tokio::sync::Semaphore>,
    /// Member requests in flight per peer.
    in_flight: HashMap<PeerId, usize>,
    requests_per_peer: usize,
}

/// A member-protocol request waiting for its peer's proof.
struct Held {
    kind: Rpc,
    channel: libp2p::request_response::ResponseChannel<Vec<u8>>,
    request: Vec<u8>,
}

impl Task {
    fn flush_dht(&mut self) {
        if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().flush() {
            tracing::warn!("{e}");
        }
    }

    /// Hands `provider` to Bitswap for `cid`, dialling it first when not connected.
    fn use_provider(&mut self, cid: cairn_dag::Cid, provider: PeerId) {
        if self.swarm.is_connected(&provider) {
            let _ = self
                .bitswap
                .try_send(bitswap::BsCommand::Providers(cid, vec![provider]));
            return;
        }
        let waiting = self.provider_dials.entry(provider).or_default();
        let first = waiting.is_empty();
        if !waiting.contains(&cid) {
            waiting.push(cid);
        }
        if first {
            // Kademlia supplies the addresses (routing table and the lookup's peers).
            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(provider).build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%provider, "provider dial failed: {e}");
                self.provider_dials.remove(&provider);
            }
        }
    }

    fn on_rpc(&mut self, kind: Rpc, event: libp2p::request_response::Event<Vec<u8>, Vec<u8>>) {
        use libp2p::request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        channel, request, ..
                    },
                ..
            } => {
                let held = Held {
                    kind,
                    channel,
                    request,
                };
                match self.gate.admit(&peer, held) {
                    member::Admit::Serve(held) => self.serve(peer, held),
                    member::Admit::Held => {}
                    member::Admit::Refuse(held) => self.refuse(peer, held),
                }
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.asked.remove(&(kind, request_id)) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.asked.remove(&(kind, request_id)) {
                    let _ = reply.send(Err(NetError::Request(error.to_string())));
                }
            }
            _ => {}
        }
    }

    /// Answers a member's request on a blocking thread (at most `handlers` at once, at most
    /// `requests_per_peer` in flight per peer); the answer comes back as a command.
    fn serve(&mut self, peer: PeerId, held: Held) {
        let in_flight = self.in_flight.entry(peer).or_insert(0);
        if *in_flight >= self.requests_per_peer {
            tracing::warn!(%peer, "member request refused: too many in flight");
            return self.refuse(peer, held);
        }
        *in_flight += 1;
        let Held {
            kind,
            channel,
            request,
        } = held;
        let (heads, pieces) = (self.heads.clone(), self.pieces.clone());
        let tx = self.commands_tx.clone();
        let handlers = self.handlers.clone();
        tokio::spawn(async move {
            let Ok(_slot) = handlers.acquire_owned().await else {
                return;
            };
            let answer = tokio::task::spawn_blocking(move || match kind {
                Rpc::Heads => heads.map(|h| h.bucket_heads()).unwrap_or_default(),
                Rpc::Pieces => pieces
                    .map(|p| p.piece_request(peer, request))
                    .unwrap_or_default(),
            })
            .await
            .unwrap_or_default();
            let _ = tx.send(Command::Answer(kind, peer, channel, answer)).await;
        });
    }

    /// Refuses a member request: its stream is closed unanswered.
    fn refuse(&mut self, peer: PeerId, held: Held) {
        let what = match held.kind {
            Rpc::Heads => "heads",
            Rpc::Pieces => "pieces",
        };
        tracing::debug!(%peer, what, "member request from a stranger refused");
        if let Some(m) = &self.metrics {
            m.refused(what, 1);
        }
    }

    /// A membership exchange: a peer's challenge (answered with our proof) or its proof.
    fn on_member(&mut self, event: libp2p::request_response::Event<Vec<u8>, Vec<u8>>) {
        use libp2p::request_response::{Event, Message};
        let settled = match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        channel, request, ..
                    },
                ..
            } => {
                if let Some(proof) = self.gate.answer(&peer, &request) {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .member
                        .send_response(channel, proof);
                }
                return;
            }
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                self.challenges.remove(&request_id);
                (peer, self.gate.proof_received(peer, &response))
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.challenges.remove(&request_id);
                tracing::debug!(%peer, "membership challenge unanswered: {error}");
                (peer, self.gate.challenge_failed(peer))
            }
            _ => return,
        };
        let (peer, settled) = settled;
        if settled.member {
            tracing::info!(%peer, "cluster member connected");
            let _ = self.bitswap.try_send(bitswap::BsCommand::Member(peer));
            for held in settled.held {
                self.serve(peer, held);
            }
        } else {
            if !settled.held.is_empty() || self.swarm.is_connected(&peer) {
                tracing::debug!(%peer, "peer is not a member of this cluster");
            }
            if let Some(m) = &self.metrics {
                m.refused("proof", 1);
            }
            for held in settled.held {
                self.refuse(peer, held);
            }
        }
    }

    fn rpc(&mut self, kind: Rpc) -> &mut libp2p::request_response::Behaviour<rpc::Codec> {
        match kind {
            Rpc::Heads => &mut self.swarm.behaviour_mut().heads,
            Rpc::Pieces => &mut self.swarm.behaviour_mut().pieces,
        }
    }

    fn on_kad(&mut self, event: kad::Event) {
        let kad::Event::OutboundQueryProgressed {
            id, result, step, ..
        } = event
        else {
            return;
        };
        match result {
            kad::QueryResult::StartProviding(result) => {
                let Some(batch) = self.provides.remove(&id) else {
                    return;
                };
                let Some(b) = self.batches.get_mut(&batch) else {
                    return;
                };
                b.left -= 1;
                match result {
                    Ok(_) => b.reached += 1,
                    Err(e) => tracing::debug!("provider announcement: {e:?}"),
                }
                if b.left == 0
                    && let Some(b) = self.batches.remove(&batch)
                    && let Some(reply) = b.reply
                {
                    let _ = reply.send(b.reached);
                }
            }
            kad::QueryResult::GetProviders(result) => {
                let me = *self.swarm.local_peer_id();
                let found: Vec<PeerId> = match result {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        providers.into_iter().filter(|p| *p != me).collect()
                    }
                    Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => Vec::new(),
                    Err(e) => {
                        tracing::debug!("provider lookup: {e:?}");
                        Vec::new()
                    }
                };
                let Some(query) = self.finds.get_mut(&id) else {
                    return;
                };
                let (cid, connect) = (query.cid, query.connect);
                let new: Vec<PeerId> = found
                    .into_iter()
                    .filter(|p| query.found.insert(*p))
                    .collect();
                if step.last {
                    let query = self.finds.remove(&id).expect("query present");
                    if let Some(reply) = query.reply {
                        let _ = reply.send(query.found.into_iter().collect());
                    }
                }
                if connect {
                    for p in new {
                        self.use_provider(cid, p);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Provide(cids, reply) => {
                let batch = self.next_batch;
                self.next_batch += 1;
                let mut left = 0;
                for cid in cids {
                    match self
                        .swarm
                        .behaviour_mut()
                        .kad
                        .start_providing(provider_key(&cid))
                    {
                        Ok(id) => {
                            left += 1;
                            self.provides.insert(id, batch);
                        }
                        Err(e) => tracing::warn!(%cid, "provider record not stored: {e}"),
                    }
                }
                if left == 0 {
                    let _ = reply.send(0);
                } else {
                    self.batches.insert(
                        batch,
                        ProvideBatch {
                            left,
                            reached: 0,
                            reply: Some(reply),
                        },
                    );
                }
            }
            Command::Ask(kind, peer, body, reply) => {
                if !self.gate.is_member(&peer) {
                    let _ = reply.send(Err(NetError::Request(format!(
                        "{peer} is not a member of this cluster"
                    ))));
                    return;
                }
                let id = self.rpc(kind).send_request(&peer, body);
                self.asked.insert((kind, id), reply);
            }
            Command::Answer(kind, peer, channel, body) => {
                if let Some(n) = self.in_flight.get_mut(&peer) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.in_flight.remove(&peer);
                    }
                }
                let _ = self.rpc(kind).send_response(channel, body);
            }
            Command::OpenStream(peer, reply) => {
                self.swarm.behaviour_mut().bitswap.open(peer, reply);
            }
            Command::FindProviders {
                cid,
                connect,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(provider_key(&cid));
                self.finds.insert(
                    id,
                    FindQuery {
                        cid,
                        connect,
                        found: HashSet::new(),
                        reply,
                    },
                );
            }
            Command::Dial(addr, reply) => {
                let peer = addr.iter().find_map(|p| match p {
                    libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                    _ => None,
                });
                if let Some(peer) = peer
                    && self.swarm.is_connected(&peer)
                {
                    let _ = reply.send(Ok(peer));
                    return;
                }
                match self.swarm.dial(addr.clone()) {
                    Ok(()) => self.pending_dials.push((peer, addr, reply)),
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dial {
                            addr,
                            reason: e.to_string(),
                        }));
                    }
                }
            }
            Command::Peers(reply) => {
                let mut peers: Vec<PeerInfo> = Vec::new();
                for peer_id in self.swarm.connected_peers() {
                    peers.push(PeerInfo {
                        peer_id: *peer_id,
                        addr: self
                            .addrs
                            .get(peer_id)
                            .cloned()
                            .unwrap_or_else(Multiaddr::empty),
                        agent: self.agents.get(peer_id).cloned(),
                        member: self.gate.is_member(peer_id),
                    });
                }
                let _ = reply.send(peers);
            }
            Command::Addrs(reply) => {
                let me = *self.swarm.local_peer_id();
                let addrs = self
                    .swarm
                    .listeners()
                    .map(|a| a.clone().with(libp2p::multiaddr::Protocol::P2p(me)))
                    .collect();
                let _ = reply.send(addrs);
            }
        }
    }

    fn finish_dials(&mut self, peer: PeerId, addr: Option<&Multiaddr>, result: Result<(), String>) {
        let mut i = 0;
        while i < self.pending_dials.len() {
            let (want, dialed, _) = &self.pending_dials[i];
            let matches = *want == Some(peer) || (want.is_none() && addr == Some(dialed));
            if matches {
                let (_, dialed, reply) = self.pending_dials.swap_remove(i);
                let _ = reply.send(match &result {
                    Ok(()) => Ok(peer),
                    Err(reason) => Err(NetError::Dial {
                        addr: dialed,
                        reason: reason.clone(),
                    }),
                });
            } else {
                i += 1;
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.metrics {
            use libp2p::metrics::Recorder;
            m.libp2p.record(&event);
            match &event {
                SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => m.libp2p.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => m.libp2p.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => m.libp2p.record(e),
                _ => {}
            }
        }
        self.on_event_inner(event);
        if let Some(m) = &self.metrics {
            m.set_peers(self.swarm.connected_peers().count());
            m.set_members(
                self.swarm
                    .connected_peers()
                    .filter(|p| self.gate.is_member(p))
                    .count(),
            );
        }
    }

    fn on_event_inner(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if num_established.get() == 1 {
                    let _ = self
                        .bitswap
                        .try_send(bitswap::BsCommand::Connected(peer_id));
                    if let Some(nonce) = self.gate.connected(peer_id) {
                        let id = self
                            .swarm
                            .behaviour_mut()
                            .member
                            .send_request(&peer_id, nonce.to_vec());
                        self.challenges.insert(id, peer_id);
                    }
                }
                if let Some(cids) = self.provider_dials.remove(&peer_id) {
                    for cid in cids {
                        let _ = self
                            .bitswap
                            .try_send(bitswap::BsCommand::Providers(cid, vec![peer_id]));
                    }
                }
                tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connected");
                let addr = endpoint.get_remote_address().clone();
                self.addrs.entry(peer_id).or_insert_with(|| addr.clone());
                self.finish_dials(peer_id, Some(&addr), Ok(()));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, "dial failed: {error}");
                if let Some(peer) = peer_id {
                    self.provider_dials.remove(&peer);
                }
                let reason = error.to_string();
                match peer_id {
                    Some(peer) => self.finish_dials(peer, None, Err(reason)),
                    None => {
                        // Without a peer id we cannot tell which dial failed: fail them all.
                        for (_, addr, reply) in self.pending_dials.drain(..) {
                            let _ = reply.send(Err(NetError::Dial {
                                addr,
                                reason: reason.clone(),
                            }));
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.agent_version.starts_with("cairn/") && !self.agents.contains_key(&peer_id) {
                    let _ = self
                        .bitswap
                        .try_send(bitswap::BsCommand::CairnPeer(peer_id));
                }
                self.agents.insert(peer_id, info.agent_version.clone());
                let kad_protocol = self.swarm.behaviour().kad.protocol_names().first().cloned();
                if kad_protocol.is_some_and(|p| info.protocols.contains(&p)) {
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad(event),
            SwarmEvent::Behaviour(BehaviourEvent::Heads(event)) => self.on_rpc(Rpc::Heads, event),
            SwarmEvent::Behaviour(BehaviourEvent::Pieces(event)) => self.on_rpc(Rpc::Pieces, event),
            SwarmEvent::Behaviour(BehaviourEvent::Member(event)) => self.on_member(event),
            SwarmEvent::Behaviour(BehaviourEvent::Bitswap(inbound)) => {
                if let Err(e) = self.inbound_streams.try_send(inbound) {
                    tracing::warn!("bitswap stream dropped: {e}");
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(%peer_id, ?cause, "connection closed");
                if num_established > 0 {
                    return;
                }
                self.agents.remove(&peer_id);
                self.addrs.remove(&peer_id);
                self.in_flight.remove(&peer_id);
                self.challenges.retain(|_, p| *p != peer_id);
                for held in self.gate.disconnected(&peer_id) {
                    self.refuse(peer_id, held);
                }
                let _ = self
                    .bitswap
                    .try_send(bitswap::BsCommand::Disconnected(peer_id));
            }
            _ => {}
        }
    }
}
