//! Starting the network in two halves: [`prepare`] makes the handle (its queues exist before
//! the swarm runs, so the node can be built over it), [`Pending::start`] builds the swarm,
//! binds the listen addresses, dials the bootstrap peers and runs the swarm task; [`start`]
//! does both at once.

use std::sync::Arc;

use futures::StreamExt;
use libp2p::identity::Keypair;
use libp2p::swarm::SwarmEvent;
use tokio::sync::mpsc;

use crate::{
    Command, DHT_FLUSH_INTERVAL, NetConfig, NetError, NetHandle, Task, bitswap, build_swarm,
    member, metrics, probe_tcp,
};

/// Starts the network: binds the listen addresses, dials the bootstrap peers, and runs the
/// swarm until `stop` turns true.
pub async fn start(
    keypair: Keypair,
    config: NetConfig,
    providers: crate::Providers,
    metrics: Option<Arc<metrics::NetMetrics>>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(NetHandle, tokio::task::JoinHandle<()>), NetError> {
    let (handle, pending) = prepare(keypair);
    let task = pending.start(config, providers, metrics, stop).await?;
    Ok((handle, task))
}

/// A network whose handle exists before it runs: the node is built with the handle (its
/// remote block source, its cluster transport), then the network starts serving that node.
/// Calls made on the handle before [`Pending::start`] wait in its queues.
pub struct Pending {
    keypair: Keypair,
    commands: (mpsc::Sender<Command>, mpsc::Receiver<Command>),
    bitswap: (
        mpsc::Sender<bitswap::BsCommand>,
        mpsc::Receiver<bitswap::BsCommand>,
    ),
}

/// The first half of [`start`]: the handle, and the network to start.
pub fn prepare(keypair: Keypair) -> (NetHandle, Pending) {
    let commands = mpsc::channel(256);
    let bitswap = mpsc::channel(1024);
    let handle = NetHandle {
        peer_id: keypair.public().to_peer_id(),
        commands: commands.0.clone(),
        bitswap: bitswap.0.clone(),
    };
    (
        handle,
        Pending {
            keypair,
            commands,
            bitswap,
        },
    )
}

impl Pending {
    /// The second half of [`start`]: binds the listen addresses, dials the bootstrap peers,
    /// and runs the swarm, serving `providers`, until `stop` turns true.
    pub async fn start(
        self,
        config: NetConfig,
        providers: crate::Providers,
        metrics: Option<Arc<metrics::NetMetrics>>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<tokio::task::JoinHandle<()>, NetError> {
        run(self, config, providers, metrics, stop).await
    }
}

async fn run(
    pending: Pending,
    config: NetConfig,
    providers: crate::Providers,
    metrics: Option<Arc<metrics::NetMetrics>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, NetError> {
    let Pending {
        keypair,
        commands: (tx, rx),
        bitswap,
    } = pending;
    let mut swarm = build_swarm(keypair, &config)?;
    let (inbound_tx, inbound_rx) = mpsc::channel(256);
    let tx_for_task = tx.clone();
    let bitswap_tx = bitswap.0.clone();
    bitswap::spawn(
        inbound_rx,
        providers.blocks.clone(),
        metrics.clone(),
        tx.clone(),
        stop.clone(),
        bitswap,
    )?;
    let bitswap = bitswap_tx;
    let peer_id = *swarm.local_peer_id();
    let gate = member::Gate::new(peer_id, config.cluster.clone());
    let handlers = Arc::new(tokio::sync::Semaphore::new(config.limits.handlers));
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
        probe_tcp(addr)?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Setup(format!("listen on {addr}: {e}")))?;
    }
    // Wait until every listener is bound, so `addrs` is complete from the start.
    let mut bound = 0;
    while bound < config.listen.len() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                // Provider records carry the provider's external addresses: without them a
                // peer that does not already know this node cannot reach it. A node with no
                // other way to learn them (no AutoNAT here) announces what it listens on.
                if config.announce.is_empty() {
                    swarm.add_external_address(address);
                }
                bound += 1;
            }
            SwarmEvent::ListenerError { error, .. }
            | SwarmEvent::ListenerClosed {
                reason: Err(error), ..
            } => {
                return Err(NetError::Setup(error.to_string()));
            }
            _ => {}
        }
    }
    for addr in &config.announce {
        swarm.add_external_address(addr.clone());
    }
    for addr in &config.bootstrap {
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, "bootstrap dial failed: {e}");
        }
    }
    let bitswap_for_task = bitswap.clone();
    let task = tokio::spawn(async move {
        let mut state = Task {
            swarm,
            metrics,
            bitswap: bitswap_for_task,
            inbound_streams: inbound_tx,
            commands: rx,
            pending_dials: Vec::new(),
            agents: Default::default(),
            addrs: Default::default(),
            provides: Default::default(),
            batches: Default::default(),
            next_batch: 0,
            finds: Default::default(),
            provider_dials: Default::default(),
            asked: Default::default(),
            heads: providers.heads,
            pieces: providers.pieces,
            commands_tx: tx_for_task,
            gate,
            challenges: Default::default(),
            handlers,
            in_flight: Default::default(),
            requests_per_peer: config.limits.requests_per_peer,
        };
        let mut flush = tokio::time::interval(DHT_FLUSH_INTERVAL);
        loop {
            tokio::select! {
                event = state.swarm.select_next_some() => state.on_event(event),
                command = state.commands.recv() => match command {
                    Some(c) => state.on_command(c),
                    None => break,
                },
                _ = flush.tick() => state.flush_dht(),
                _ = stop.changed() => break,
            }
        }
        state.flush_dht();
    });
    Ok(task)
}
