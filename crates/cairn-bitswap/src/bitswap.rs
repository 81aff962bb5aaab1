//! [`Bitswap`]: the whole protocol engine, client and server, behind one sans-I/O API.
//!
//! This module owns the public surface — [`Config`], [`Event`], the block lookup contract
//! ([`BlockQuery`], [`Lookup`], [`BlockSource`]), [`Stats`] — and the peer registry shared by the
//! client (`client`) and the server (`server`): which peers are connected, which misbehaved,
//! and how many bytes of sent messages each has not yet acknowledged (flow control).
//!
//! Every method that changes state queues [`Event`]s; the caller drains them with
//! [`Bitswap::poll`] after each call and acts on them: sends messages, looks blocks up, hands
//! received blocks to readers. Time only enters as the `now` arguments.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_dag::{CidVersion, DAG_PB};
use cid::Cid;
use tracing::{debug, trace};

use crate::BitswapError;
use crate::client::Client;
use crate::message::{
    DEFAULT_MAX_ENTRIES, DEFAULT_MAX_MESSAGE_SIZE, Limits, Message, PresenceType, WantType,
};
use crate::outbox::Outbox;
use crate::server::Server;

/// Tunables and bounds. Every collection the engine keeps is bounded by one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    // --- wire ---
    /// Largest message accepted or sent (body bytes). Default 4 MiB, the spec's limit.
    pub max_message_size: usize,
    /// Most wantlist entries + blocks + presences accepted in one message. Default 8192.
    pub max_entries_per_message: usize,
    /// Messages we build are split to stay under this size (a bigger block goes alone).
    /// Default 1 MiB.
    pub target_message_size: usize,

    // --- server ---
    /// Largest block served; bigger ones are answered as not available. Default
    /// [`cairn_dag::MAX_BLOCK_SIZE`], 2 MiB (the spec's interoperable maximum).
    pub max_block_size: usize,
    /// A WANT_HAVE for a block of at most this many bytes is answered with the block itself
    /// instead of HAVE, as boxo and Helia do. Default 1024; 0 disables.
    pub max_have_block_size: usize,
    /// Most peers tracked at once (connected peers and providers asked). Messages from further
    /// peers are dropped. Default 1024.
    pub max_peers: usize,
    /// Most wantlist entries kept per peer. Wants beyond it are refused (DONT_HAVE when the
    /// peer asked for DONT_HAVEs). Default 1024.
    pub max_wants_per_peer: usize,
    /// Most CIDs being looked up ([`Event::NeedBlocks`]) across all peers. Default 64.
    pub max_lookups_in_flight: usize,
    /// Most CIDs in one [`Event::NeedBlocks`]. Default 16.
    pub lookup_batch: usize,
    /// No new lookups are started for a peer while this many bytes of messages sent to it are
    /// not acknowledged with [`Bitswap::message_sent`]. Default 4 MiB.
    pub max_unacked_bytes_per_peer: usize,

    // --- client ---
    /// Most CIDs wanted at once. Default 16384.
    pub max_wants: usize,
    /// Most peers considered per want (asked + still to ask). Default 32.
    pub max_candidates_per_want: usize,
    /// Peers sent WANT_BLOCK directly when a round of asking starts. Default 1.
    pub direct_block_peers: usize,
    /// Peers sent WANT_HAVE when a round of asking starts. Default 8.
    pub have_fanout: usize,
    /// Most peers with an unanswered WANT_BLOCK per want (the first plus hedges). Default 3.
    pub max_block_requests: usize,
    /// A WANT_BLOCK unanswered this long makes us ask one more peer; the same delay starts a
    /// new round when WANT_HAVEs are slow. Default 1 s.
    pub hedge_delay: Duration,
    /// A WANT_HAVE unanswered this long counts as DONT_HAVE (a late HAVE is still used).
    /// Default 5 s (Helia's receive timeout).
    pub have_timeout: Duration,
    /// A WANT_BLOCK unanswered this long counts as failed (a late block is still used).
    /// Default 15 s.
    pub block_timeout: Duration,
    /// A want with nobody left to ask and nothing outstanding fails after this long, unless
    /// new candidates arrive ([`Bitswap::add_providers`], [`Bitswap::peer_connected`]).
    /// Default 10 s.
    pub starve_timeout: Duration,
    /// How many finished wants are remembered so that late duplicates are not taken for
    /// unrequested blocks. Default 4096.
    pub recent_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_entries_per_message: DEFAULT_MAX_ENTRIES,
            target_message_size: 1024 * 1024,
            max_block_size: cairn_dag::MAX_BLOCK_SIZE,
            max_have_block_size: 1024,
            max_peers: 1024,
            max_wants_per_peer: 1024,
            max_lookups_in_flight: 64,
            lookup_batch: 16,
            max_unacked_bytes_per_peer: 4 * 1024 * 1024,
            max_wants: 16384,
            max_candidates_per_want: 32,
            direct_block_peers: 1,
            have_fanout: 8,
            max_block_requests: 3,
            hedge_delay: Duration::from_secs(1),
            have_timeout: Duration::from_secs(5),
            block_timeout: Duration::from_secs(15),
            starve_timeout: Duration::from_secs(10),
            recent_capacity: 4096,
        }
    }
}

impl Config {
    /// The same config with values that cannot work moved into range: at least one of each
    /// count, blocks and targets fitting in a message.
    fn normalized(mut self) -> Self {
        self.max_message_size = self.max_message_size.max(4096);
        self.max_block_size = self.max_block_size.min(self.max_message_size - 1024);
        self.target_message_size = self
            .target_message_size
            .clamp(1024, self.max_message_size - 1024);
        self.max_entries_per_message = self.max_entries_per_message.max(1);
        self.max_peers = self.max_peers.max(1);
        self.max_wants_per_peer = self.max_wants_per_peer.max(1);
        self.max_lookups_in_flight = self.max_lookups_in_flight.max(1);
        self.lookup_batch = self.lookup_batch.max(1);
        self.max_unacked_bytes_per_peer = self.max_unacked_bytes_per_peer.max(1);
        self.max_wants = self.max_wants.max(1);
        self.max_candidates_per_want = self.max_candidates_per_want.max(1);
        self.max_block_requests = self.max_block_requests.max(1);
        self.recent_capacity = self.recent_capacity.max(1);
        if self.direct_block_peers == 0 && self.have_fanout == 0 {
            self.have_fanout = 1;
        }
        let ms = Duration::from_millis(1);
        self.hedge_delay = self.hedge_delay.max(ms);
        self.have_timeout = self.have_timeout.max(ms);
        self.block_timeout = self.block_timeout.max(ms);
        self.starve_timeout = self.starve_timeout.max(ms);
        self
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_message_size: self.max_message_size,
            max_entries: self.max_entries_per_message,
        }
    }
}

/// One CID the server needs looked up to answer a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockQuery {
    /// The block.
    pub cid: Cid,
    /// Return the block's bytes ([`Lookup::Block`]) if it has at most this many; a larger block
    /// that is present is answered with [`Lookup::Have`]. Small for WANT_HAVE (only tiny blocks
    /// are sent in place of HAVE), [`Config::max_block_size`] for WANT_BLOCK.
    pub max_data: usize,
}

/// The answer to a [`BlockQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Not stored here.
    Missing,
    /// Stored, `size` bytes; the bytes were not read (the block is larger than `max_data`).
    Have {
        /// The block's size.
        size: usize,
    },
    /// Stored, and here are its (verified) bytes.
    Block(Bytes),
}

/// A synchronous block store, for callers that can answer lookups on the spot (tests, caches):
/// feed [`Event::NeedBlocks`] through [`answer_queries`] into [`Bitswap::blocks_found`].
pub trait BlockSource {
    /// Answers one query (see [`BlockQuery::max_data`]).
    fn lookup(&self, cid: &Cid, max_data: usize) -> Lookup;
}

/// Answers every query from `source`.
pub fn answer_queries<S: BlockSource + ?Sized>(
    source: &S,
    queries: &[BlockQuery],
) -> Vec<(Cid, Lookup)> {
    queries
        .iter()
        .map(|q| (q.cid, source.lookup(&q.cid, q.max_data)))
        .collect()
}

/// Why a peer was reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A message could not be decoded, was too large or had too many entries.
    Malformed(BitswapError),
    /// A block came with a prefix this node cannot verify (unsupported hash or codec shape).
    BadBlock(BitswapError),
    /// A block that hashes to nothing we asked for (nor recently asked for): forged, corrupt
    /// or unsolicited.
    UnrequestedBlock(Cid),
}

/// What the caller must do next. Drain with [`Bitswap::poll`].
#[derive(Debug)]
pub enum Event<P> {
    /// Send `message` to `peer` — on a new outbound stream, length-prefixed
    /// ([`Message::encode_frame`]) — then call [`Bitswap::message_sent`] (also when sending
    /// failed).
    Send {
        /// Recipient.
        peer: P,
        /// What to send.
        message: Message,
    },
    /// Look these blocks up (ideally off the network thread) and answer with
    /// [`Bitswap::blocks_found`]. At most one lookup per peer is outstanding.
    NeedBlocks {
        /// The peer waiting for the answer.
        peer: P,
        /// What to look up.
        queries: Vec<BlockQuery>,
    },
    /// A wanted block arrived and was verified against its CID. Store it, then call
    /// [`Bitswap::block_added`] so peers waiting for it are served.
    BlockReceived {
        /// The CID that was wanted.
        cid: Cid,
        /// Its verified bytes.
        data: Bytes,
        /// Who sent it.
        from: P,
    },
    /// `peer` broke the protocol. It is no longer asked for blocks until it reconnects; the
    /// caller may also disconnect it.
    PeerMisbehaved {
        /// The offender.
        peer: P,
        /// What it did.
        reason: Misbehaviour,
    },
    /// Nobody could provide `cid`: every candidate said DONT_HAVE or timed out and no new one
    /// arrived within [`Config::starve_timeout`]. The want is gone.
    WantFailed {
        /// The CID that was wanted.
        cid: Cid,
    },
}

/// Counters (cumulative) and gauges (current), for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages received and decoded.
    pub messages_received: u64,
    /// Messages handed out in [`Event::Send`].
    pub messages_sent: u64,
    /// Messages dropped because [`Config::max_peers`] peers were already tracked.
    pub messages_dropped: u64,
    /// Messages that failed to decode.
    pub malformed_messages: u64,
    /// Wanted blocks received and verified.
    pub blocks_received: u64,
    /// Bytes of those blocks.
    pub block_bytes_received: u64,
    /// Blocks received again after their want was already satisfied or ended.
    pub duplicate_blocks_received: u64,
    /// Blocks received that nobody wanted (forged, corrupt or unsolicited).
    pub unrequested_blocks_received: u64,
    /// Blocks sent.
    pub blocks_sent: u64,
    /// Bytes of blocks sent.
    pub block_bytes_sent: u64,
    /// HAVEs received.
    pub haves_received: u64,
    /// DONT_HAVEs received.
    pub dont_haves_received: u64,
    /// HAVEs sent.
    pub haves_sent: u64,
    /// DONT_HAVEs sent.
    pub dont_haves_sent: u64,
    /// WANT_HAVE / WANT_BLOCK entries sent.
    pub wants_sent: u64,
    /// CANCEL entries sent.
    pub cancels_sent: u64,
    /// Wants that ended in [`Event::WantFailed`].
    pub wants_failed: u64,
    /// Peer wants refused because the peer's ledger was full.
    pub peer_wants_refused: u64,
    /// [`Event::PeerMisbehaved`] reports.
    pub misbehaviours: u64,
    /// Gauge: CIDs we want now.
    pub wants: usize,
    /// Gauge: entries in all peers' ledgers.
    pub peer_wants: usize,
    /// Gauge: peers tracked.
    pub peers: usize,
    /// Gauge: CIDs being looked up.
    pub lookups_in_flight: usize,
    /// Gauge: bytes sent but not acknowledged, all peers.
    pub unacked_bytes: usize,
}

/// What the engine knows about one peer, outside the client's and the server's own state.
#[derive(Debug, Default)]
pub(crate) struct PeerInfo {
    pub(crate) connected: bool,
    pub(crate) misbehaved: bool,
    unacked: VecDeque<usize>,
    pub(crate) unacked_bytes: usize,
}

/// The peer registry, bounded by [`Config::max_peers`].
#[derive(Debug)]
pub(crate) struct Peers<P> {
    pub(crate) info: HashMap<P, PeerInfo>,
    /// Connected peers in connection order: the default candidates of a want.
    pub(crate) connected: Vec<P>,
    max: usize,
}

impl<P: Clone + Eq + Hash> Peers<P> {
    /// Tracks `peer` if there is room; false if it is unknown and the registry is full.
    pub(crate) fn ensure(&mut self, peer: &P) -> bool {
        if self.info.contains_key(peer) {
            return true;
        }
        if self.info.len() >= self.max {
            return false;
        }
        self.info.insert(peer.clone(), PeerInfo::default());
        true
    }

    /// Marks `peer` connected: `None` if the registry is full, else whether it is new.
    fn set_connected(&mut self, peer: &P) -> Option<bool> {
        if !self.ensure(peer) {
            return None;
        }
        let info = self.info.get_mut(peer)?;
        if info.connected {
            return Some(false);
        }
        info.connected = true;
        self.connected.push(peer.clone());
        Some(true)
    }

    pub(crate) fn usable(&self, peer: &P) -> bool {
        self.info.get(peer).is_some_and(|i| !i.misbehaved)
    }

    pub(crate) fn unacked(&self, peer: &P) -> usize {
        self.info.get(peer).map_or(0, |i| i.unacked_bytes)
    }
}

/// Mutable state the client and the server share during one call.
pub(crate) struct Ctx<'a, P> {
    pub(crate) config: &'a Config,
    pub(crate) peers: &'a mut Peers<P>,
    pub(crate) outbox: &'a mut Outbox<P>,
    pub(crate) events: &'a mut VecDeque<Event<P>>,
    pub(crate) stats: &'a mut Stats,
}

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
