//! The libp2p swarm: its behaviours (limits, identify, ping, Kademlia, Bitswap streams and the
//! request-response protocols) and how it is built over TCP + QUIC or TCP behind a pre-shared
//! key; a busy TCP port is found before libp2p would share it.

use super::*;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad_store::RedbStore>,
    pub(crate) bitswap: streams::Behaviour,
    pub(crate) heads: libp2p::request_response::Behaviour<rpc::Codec>,
    pub(crate) pieces: libp2p::request_response::Behaviour<rpc::Codec>,
    pub(crate) member: libp2p::request_response::Behaviour<rpc::Codec>,
}

pub(crate) fn build_swarm(
    keypair: Keypair,
    config: &NetConfig,
) -> Result<Swarm<Behaviour>, NetError> {
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
pub(crate) fn probe_tcp(addr: &Multiaddr) -> Result<(), NetError> {
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
