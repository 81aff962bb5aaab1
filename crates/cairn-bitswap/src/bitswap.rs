//! [`Bitswap`]: the whole protocol engine, client and server, behind one sans-I/O API.
//!
//! It joins the client (`client`) and the server (`server`) over the vocabulary and peer
//! registry they share (`types`).
//!
//! Every method that changes state queues [`Event`]s; the caller drains them with
//! [`Bitswap::poll`] after each call and acts on them: sends messages, looks blocks up, hands
//! received blocks to readers. Time only enters as the `now` arguments.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use cairn_dag::{CidVersion, DAG_PB};
use cid::Cid;
use tracing::{debug, trace};

use crate::BitswapError;
use crate::client::Client;
use crate::message::{Message, PresenceType, WantType};
use crate::outbox::Outbox;
use crate::server::Server;
use crate::types::{Config, Ctx, Event, Lookup, Misbehaviour, Peers, Stats};

/// The Bitswap 1.2.0 engine for peers identified by `P` (a libp2p `PeerId` in the network
/// layer, anything hashable in tests).
#[derive(Debug)]
pub struct Bitswap<P> {
    config: Config,
    peers: Peers<P>,
    client: Client<P>,
    server: Server<P>,
    outbox: Outbox<P>,
    events: VecDeque<Event<P>>,
    stats: Stats,
}

macro_rules! ctx {
    ($s:ident) => {
        Ctx {
            config: &$s.config,
            peers: &mut $s.peers,
            outbox: &mut $s.outbox,
            events: &mut $s.events,
            stats: &mut $s.stats,
        }
    };
}

impl<P: Clone + Eq + Hash + std::fmt::Debug> Bitswap<P> {
    /// A new engine. Out-of-range config values are moved into range.
    pub fn new(config: Config) -> Self {
        let config = config.normalized();
        Bitswap {
            peers: Peers {
                info: HashMap::new(),
                connected: Vec::new(),
                max: config.max_peers,
            },
            client: Client::new(config.recent_capacity),
            server: Server::new(),
            outbox: Outbox::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            config,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- connections ----

    /// A connection to `peer` supporting Bitswap is up: it becomes a candidate for every want
    /// (and is asked at once where a want is waiting for someone to ask). Returns false, and
    /// ignores the peer, when [`Config::max_peers`] peers are already tracked.
    pub fn peer_connected(&mut self, peer: P, now: Instant) -> bool {
        if self.peers.set_connected(&peer).is_none() {
            return false;
        }
        debug!(?peer, "bitswap peer connected");
        let mut ctx = ctx!(self);
        self.client.peer_connected(&peer, &mut ctx, now);
        self.settle();
        true
    }

    /// The last connection to `peer` is gone (or dialing it failed): its ledger, lookups,
    /// queued messages and flow-control state are dropped, and wants it was asked for move on
    /// to other peers.
    pub fn peer_disconnected(&mut self, peer: &P, now: Instant) {
        if !self.peers.info.contains_key(peer) {
            return;
        }
        debug!(?peer, "bitswap peer disconnected");
        self.server.peer_disconnected(peer);
        self.outbox.drop_peer(peer);
        self.events.retain(|e| match e {
            Event::Send { peer: p, .. } | Event::NeedBlocks { peer: p, .. } => p != peer,
            _ => true,
        });
        self.peers.info.remove(peer);
        self.peers.connected.retain(|p| p != peer);
        let mut ctx = ctx!(self);
        self.client.peer_gone(peer, &mut ctx, now);
        self.settle();
    }

    // ---- inbound ----

    /// Handles one received message body (the bytes after the length prefix). A message that
    /// does not decode reports the peer ([`Misbehaviour::Malformed`]).
    pub fn handle_message(&mut self, peer: P, body: &Bytes, now: Instant) {
        match Message::decode(body, &self.config.limits()) {
            Ok(msg) => self.handle_decoded(peer, msg, now),
            Err(e) => {
                debug!(?peer, error = %e, "malformed bitswap message");
                self.stats.malformed_messages += 1;
                self.report(peer, Misbehaviour::Malformed(e), now);
                self.settle();
            }
        }
    }

    /// Handles one decoded message from `peer`: blocks and presences feed our wants, the
    /// wantlist feeds the peer's ledger.
    pub fn handle_decoded(&mut self, peer: P, msg: Message, now: Instant) {
        let Some(new) = self.peers.set_connected(&peer) else {
            self.stats.messages_dropped += 1;
            return;
        };
        self.stats.messages_received += 1;
        trace!(?peer, entries = msg.entry_count(), "bitswap message");
        let mut offence = None;
        let mut ctx = ctx!(self);
        if new {
            // A peer that talks to us is connected, even before the caller said so.
            self.client.peer_connected(&peer, &mut ctx, now);
        }

        let legacy = msg.blocks.into_iter().map(|data| {
            let cid = cairn_dag::block::cid_of(CidVersion::V0, DAG_PB, &data)
                .map_err(|e| BitswapError::Unsupported(e.to_string()));
            (cid, data)
        });
        let payload = msg
            .payload
            .into_iter()
            .map(|b| (b.prefix.cid_for(&b.data), b.data));
        for (cid, data) in legacy.chain(payload) {
            match cid {
                Ok(cid) => {
                    if !self.client.on_block(&peer, cid, data, &mut ctx, now) {
                        ctx.stats.unrequested_blocks_received += 1;
                        offence.get_or_insert(Misbehaviour::UnrequestedBlock(cid));
                    }
                }
                Err(e) => {
                    offence.get_or_insert(Misbehaviour::BadBlock(e));
                }
            }
        }
        for p in &msg.presences {
            match p.presence {
                PresenceType::Have => ctx.stats.haves_received += 1,
                PresenceType::DontHave => ctx.stats.dont_haves_received += 1,
            }
            self.client
                .on_presence(&peer, &p.cid, p.presence, &mut ctx, now);
        }
        if msg.full || !msg.wantlist.is_empty() {
            self.server
                .on_wantlist(&peer, msg.full, &msg.wantlist, &mut ctx);
        }
        if let Some(reason) = offence {
            self.report(peer, reason, now);
        }
        self.settle();
    }

    fn report(&mut self, peer: P, reason: Misbehaviour, now: Instant) {
        debug!(?peer, ?reason, "bitswap peer misbehaved");
        self.stats.misbehaviours += 1;
        if let Some(info) = self.peers.info.get_mut(&peer) {
            info.misbehaved = true;
        }
        let mut ctx = ctx!(self);
        self.client.peer_misbehaved(&peer, &mut ctx, now);
        self.events
            .push_back(Event::PeerMisbehaved { peer, reason });
    }

    /// The answers to an [`Event::NeedBlocks`] for `peer`. CIDs of the request missing from
    /// `answers` count as [`Lookup::Missing`]; answers for a peer that has gone are ignored.
    pub fn blocks_found(&mut self, peer: &P, answers: Vec<(Cid, Lookup)>) {
        let mut ctx = ctx!(self);
        self.server.blocks_found(peer, answers, &mut ctx);
        self.settle();
    }

    /// A block is now stored locally (imported, or received and stored after
    /// [`Event::BlockReceived`]): peers waiting for it are answered now.
    pub fn block_added(&mut self, cid: &Cid, data: &Bytes) {
        let mut ctx = ctx!(self);
        self.server.block_added(cid, data, &mut ctx);
        self.settle();
    }

    /// The oldest unacknowledged message to `peer` has been written (or failed): flow control
    /// may let the next lookups for that peer start.
    pub fn message_sent(&mut self, peer: &P) {
        let Some(info) = self.peers.info.get_mut(peer) else {
            return;
        };
        if let Some(size) = info.unacked.pop_front() {
            info.unacked_bytes -= size;
        }
        let mut ctx = ctx!(self);
        self.server.on_ack(peer, &mut ctx);
        self.settle();
    }

    // ---- wants ----

    /// Starts fetching `cid` (or adds a reader to an existing want): connected peers are asked
    /// at once. Fails for CIDs this node cannot verify (only sha2-256) and when
    /// [`Config::max_wants`] wants are outstanding.
    pub fn want(&mut self, cid: Cid, priority: i32, now: Instant) -> Result<(), BitswapError> {
        let mut ctx = ctx!(self);
        let r = self.client.want(cid, priority, &mut ctx, now);
        self.settle();
        r
    }

    /// Peers that may have `cid` (from the DHT or a hint): they are asked before other
    /// candidates. The caller makes sure they can be reached (dials them); a peer that cannot
    /// be reached should be reported with [`Bitswap::peer_disconnected`].
    pub fn add_providers(
        &mut self,
        cid: &Cid,
        providers: impl IntoIterator<Item = P>,
        now: Instant,
    ) {
        let mut ctx = ctx!(self);
        let providers: Vec<P> = providers.into_iter().collect();
        self.client.add_providers(cid, providers, &mut ctx, now);
        self.settle();
    }

    /// A local reader gives up on `cid`. When it was the last reader, the want ends and the
    /// peers asked get a CANCEL.
    pub fn cancel_want(&mut self, cid: &Cid, now: Instant) {
        let mut ctx = ctx!(self);
        self.client.cancel_want(cid, &mut ctx, now);
        self.settle();
    }

    /// CIDs wanted now.
    pub fn wantlist(&self) -> Vec<Cid> {
        self.client.wantlist()
    }

    /// What `peer` wants from us now (its ledger).
    pub fn peer_wantlist(&self, peer: &P) -> Vec<(Cid, WantType)> {
        self.server.wantlist(peer)
    }

    // ---- driving ----

    /// Runs the timers due at `now` (hedges, timeouts, failures) and returns the next event.
    /// Call until it returns `None` after every other call, and again at
    /// [`Bitswap::next_deadline`].
    pub fn poll(&mut self, now: Instant) -> Option<Event<P>> {
        if self.client.next_deadline().is_some_and(|t| t <= now) {
            let mut ctx = ctx!(self);
            self.client.handle_timeouts(&mut ctx, now);
            self.settle();
        }
        self.events.pop_front()
    }

    /// When [`Bitswap::poll`] must be called next even if nothing else happens.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.client.next_deadline()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.wants = self.client.len();
        s.peer_wants = self.server.entries();
        s.peers = self.peers.info.len();
        s.lookups_in_flight = self.server.lookups_in_flight();
        s.unacked_bytes = self.peers.info.values().map(|i| i.unacked_bytes).sum();
        s
    }

    /// Ends every state change: queued messages become [`Event::Send`]s (so flow control sees
    /// them), then lookups start where there is room.
    fn settle(&mut self) {
        self.flush();
        let mut ctx = ctx!(self);
        self.server.schedule(&mut ctx);
    }

    /// Turns the outbox into [`Event::Send`]s, recording their sizes for flow control.
    fn flush(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        for (peer, message) in self.outbox.take(self.config.target_message_size) {
            let size = message.encoded_len();
            let s = &mut self.stats;
            s.messages_sent += 1;
            s.blocks_sent += message.payload.len() as u64;
            s.block_bytes_sent += message.block_bytes() as u64;
            for p in &message.presences {
                match p.presence {
                    PresenceType::Have => s.haves_sent += 1,
                    PresenceType::DontHave => s.dont_haves_sent += 1,
                }
            }
            for e in &message.wantlist {
                if e.cancel {
                    s.cancels_sent += 1;
                } else {
                    s.wants_sent += 1;
                }
            }
            if let Some(info) = self.peers.info.get_mut(&peer) {
                info.unacked.push_back(size);
                info.unacked_bytes += size;
            }
            self.events.push_back(Event::Send { peer, message });
        }
    }
}
