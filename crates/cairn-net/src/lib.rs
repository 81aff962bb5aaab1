//! Cairn's libp2p node: one swarm task owning the transports (TCP + QUIC, or TCP only behind a
//! pre-shared key), noise, yamux, identify, ping and Kademlia, driven through a [`NetHandle`]
//! of async commands. The node's ed25519 identity (`identity.key`) is its libp2p key, so the
//! peer id is stable across restarts.
//!
//! Bitswap and content routing of blocks plug in here in the next steps; this layer knows
//! nothing about S3 or buckets.

pub mod bitswap;
pub mod metrics;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, allow_block_list, identify, kad, noise,
    ping, pnet, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

pub use libp2p;

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
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    stream: libp2p_stream::Behaviour,
}

enum Command {
    Dial(Multiaddr, oneshot::Sender<Result<PeerId, NetError>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Addrs(oneshot::Sender<Vec<Multiaddr>>),
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
    let behaviour = move |key: &Keypair| {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(kad_protocol);
        kad_config.set_query_timeout(Duration::from_secs(30));
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
        kad.set_mode(Some(kad::Mode::Server));
        let allow = allow.map(|peers| {
            let mut list = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
            for p in peers {
                list.allow_peer(p);
            }
            list
        });
        Behaviour {
            allow: Toggle::from(allow),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("cairn/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad,
            stream: libp2p_stream::Behaviour::new(),
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

/// Starts the network: binds the listen addresses, dials the bootstrap peers, and runs the
/// swarm until `stop` turns true.
pub async fn start(
    keypair: Keypair,
    config: NetConfig,
    blocks: Arc<dyn bitswap::LocalBlocks>,
    metrics: Option<Arc<metrics::NetMetrics>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(NetHandle, tokio::task::JoinHandle<()>), NetError> {
    let mut swarm = build_swarm(keypair, &config)?;
    let bitswap = bitswap::spawn(
        swarm.behaviour().stream.new_control(),
        blocks,
        metrics.clone(),
        stop.clone(),
    )?;
    let peer_id = *swarm.local_peer_id();
    for addr in &config.listen {
        if config.psk.is_some()
            && addr
                .iter()
                .any(|p| matches!(p, libp2p::multiaddr::Protocol::QuicV1))
        {
            return Err(NetError::Setup(format!(
                "{addr}: QUIC cannot carry a private network (pre-shared key); listen on TCP"
            )));
        }
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Setup(format!("listen on {addr}: {e}")))?;
    }
    // Wait until every listener is bound, so `addrs` is complete from the start.
    let mut bound = 0;
    while bound < config.listen.len() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { .. } => bound += 1,
            SwarmEvent::ListenerError { error, .. }
            | SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            } => {
                return Err(NetError::Setup(error.to_string()));
            }
            _ => {}
        }
    }
    for addr in &config.bootstrap {
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, "bootstrap dial failed: {e}");
        }
    }
    let (tx, rx) = mpsc::channel(64);
    let bitswap_for_task = bitswap.clone();
    let task = tokio::spawn(async move {
        let mut state = Task {
            swarm,
            metrics,
            bitswap: bitswap_for_task,
            commands: rx,
            pending_dials: Vec::new(),
            agents: Default::default(),
            addrs: Default::default(),
        };
        loop {
            tokio::select! {
                event = state.swarm.select_next_some() => state.on_event(event),
                command = state.commands.recv() => match command {
                    Some(c) => state.on_command(c),
                    None => return,
                },
                _ = stop.changed() => return,
            }
        }
    });
    Ok((
        NetHandle {
            peer_id,
            commands: tx,
            bitswap,
        },
        task,
    ))
}

/// A dial waiting for its connection: the peer (if the address names one), the address, the
/// reply.
type PendingDial = (
    Option<PeerId>,
    Multiaddr,
    oneshot::Sender<Result<PeerId, NetError>>,
);

struct Task {
    swarm: Swarm<Behaviour>,
    metrics: Option<Arc<metrics::NetMetrics>>,
    bitswap: mpsc::Sender<bitswap::BsCommand>,
    commands: mpsc::Receiver<Command>,
    /// Dials waiting for their connection: the peer (if the address names one) and the reply.
    pending_dials: Vec<PendingDial>,
    agents: std::collections::HashMap<PeerId, String>,
    /// The remote address of the first connection to each connected peer.
    addrs: std::collections::HashMap<PeerId, Multiaddr>,
}

impl Task {
    fn on_command(&mut self, command: Command) {
        match command {
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
                }
                tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connected");
                let addr = endpoint.get_remote_address().clone();
                self.addrs.entry(peer_id).or_insert_with(|| addr.clone());
                self.finish_dials(peer_id, Some(&addr), Ok(()));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, "dial failed: {error}");
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
                self.agents.insert(peer_id, info.agent_version.clone());
                let kad_protocol = self.swarm.behaviour().kad.protocol_names().first().cloned();
                if kad_protocol.is_some_and(|p| info.protocols.contains(&p)) {
                    for addr in info.listen_addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.agents.remove(&peer_id);
                self.addrs.remove(&peer_id);
                let _ = self
                    .bitswap
                    .try_send(bitswap::BsCommand::Disconnected(peer_id));
            }
            _ => {}
        }
    }
}
