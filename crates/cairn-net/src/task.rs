//! The swarm task: the one loop that owns the swarm, runs the handle's commands, answers
//! peers' requests (members only for the member protocols), announces and looks up providers,
//! and keeps the DHT record store durable.

use super::*;
use crate::swarm::BehaviourEvent;

/// A dial waiting for its connection: the peer (if the address names one), the address, the
/// reply.
type PendingDial = (
    Option<PeerId>,
    Multiaddr,
    oneshot::Sender<Result<PeerId, NetError>>,
);

/// How often the DHT record store's writes are made durable.
pub(crate) const DHT_FLUSH_INTERVAL: Duration = Duration::from_secs(30);

/// A batch of provider announcements: queries left, how many reached a peer, the reply.
pub(crate) struct ProvideBatch {
    left: usize,
    reached: usize,
    reply: Option<oneshot::Sender<usize>>,
}

/// A provider lookup in flight.
pub(crate) struct FindQuery {
    cid: cairn_dag::Cid,
    connect: bool,
    found: HashSet<PeerId>,
    reply: Option<oneshot::Sender<Vec<PeerId>>>,
}

/// The DHT key of a CID: its multihash, as Kubo and Helia use.
pub fn provider_key(cid: &cairn_dag::Cid) -> kad::RecordKey {
    kad::RecordKey::new(&cid.hash().to_bytes())
}

pub(crate) struct Task {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) metrics: Option<Arc<metrics::NetMetrics>>,
    pub(crate) bitswap: mpsc::Sender<bitswap::BsCommand>,
    /// Inbound Bitswap streams, to the task that starts their readers.
    pub(crate) inbound_streams: mpsc::Sender<streams::Inbound>,
    pub(crate) commands: mpsc::Receiver<Command>,
    /// Dials waiting for their connection: the peer (if the address names one) and the reply.
    pub(crate) pending_dials: Vec<PendingDial>,
    pub(crate) agents: std::collections::HashMap<PeerId, String>,
    /// The remote address of the first connection to each connected peer.
    pub(crate) addrs: std::collections::HashMap<PeerId, Multiaddr>,
    /// Provider announcements in flight (query → batch), and the batches.
    pub(crate) provides: HashMap<kad::QueryId, u64>,
    pub(crate) batches: HashMap<u64, ProvideBatch>,
    pub(crate) next_batch: u64,
    /// Provider lookups in flight.
    pub(crate) finds: HashMap<kad::QueryId, FindQuery>,
    /// Requests waiting for their answer.
    pub(crate) asked: HashMap<(Rpc, libp2p::request_response::OutboundRequestId), Reply>,
    /// Where answers to peers come from (heads; pieces in a cluster), and the way back.
    pub(crate) heads: Option<Arc<dyn providers::HeadProvider>>,
    pub(crate) pieces: Option<Arc<dyn providers::PieceProvider>>,
    pub(crate) commands_tx: mpsc::Sender<Command>,
    /// Providers being dialled, and the CIDs Bitswap should ask them for once connected.
    pub(crate) provider_dials: HashMap<PeerId, Vec<cairn_dag::Cid>>,
    /// Who proved the cluster secret; member requests held while a proof is pending.
    pub(crate) gate: member::Gate<Held>,
    /// Our membership challenges in flight.
    pub(crate) challenges: HashMap<libp2p::request_response::OutboundRequestId, PeerId>,
    /// Member requests handled at once.
    pub(crate) handlers: Arc<tokio::sync::Semaphore>,
    /// Member requests in flight per peer.
    pub(crate) in_flight: HashMap<PeerId, usize>,
    pub(crate) requests_per_peer: usize,
}

/// A member-protocol request waiting for its peer's proof.
pub(crate) struct Held {
    kind: Rpc,
    channel: libp2p::request_response::ResponseChannel<Vec<u8>>,
    request: Vec<u8>,
}

impl Task {
    pub(crate) fn flush_dht(&mut self) {
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

    pub(crate) fn on_command(&mut self, command: Command) {
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

    pub(crate) fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
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
