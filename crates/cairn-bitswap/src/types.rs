//! The engine's shared vocabulary: [`Config`], [`Event`], the block lookup contract
//! ([`BlockQuery`], [`Lookup`], [`BlockSource`]), [`Stats`] — and the peer registry and call
//! context the client (`client`) and the server (`server`) share with the engine
//! (`bitswap`): which peers are connected, which misbehaved, and how many bytes of sent
//! messages each has not yet acknowledged (flow control). It imports none of them, so the
//! engine, client and server form no loop.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;

use crate::BitswapError;
use crate::message::{DEFAULT_MAX_ENTRIES, DEFAULT_MAX_MESSAGE_SIZE, Limits, Message};
use crate::outbox::Outbox;

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
    /// not acknowledged with [`crate::Bitswap::message_sent`]. Default 4 MiB.
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
    /// new candidates arrive ([`crate::Bitswap::add_providers`], [`crate::Bitswap::peer_connected`]).
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
    pub(crate) fn normalized(mut self) -> Self {
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
/// feed [`Event::NeedBlocks`] through [`answer_queries`] into [`crate::Bitswap::blocks_found`].
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

/// What the caller must do next. Drain with [`crate::Bitswap::poll`].
#[derive(Debug)]
pub enum Event<P> {
    /// Send `message` to `peer` — on a new outbound stream, length-prefixed
    /// ([`Message::encode_frame`]) — then call [`crate::Bitswap::message_sent`] (also when sending
    /// failed).
    Send {
        /// Recipient.
        peer: P,
        /// What to send.
        message: Message,
    },
    /// Look these blocks up (ideally off the network thread) and answer with
    /// [`crate::Bitswap::blocks_found`]. At most one lookup per peer is outstanding.
    NeedBlocks {
        /// The peer waiting for the answer.
        peer: P,
        /// What to look up.
        queries: Vec<BlockQuery>,
    },
    /// A wanted block arrived and was verified against its CID. Store it, then call
    /// [`crate::Bitswap::block_added`] so peers waiting for it are served.
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
    pub(crate) unacked: VecDeque<usize>,
    pub(crate) unacked_bytes: usize,
}

/// The peer registry, bounded by [`Config::max_peers`].
#[derive(Debug)]
pub(crate) struct Peers<P> {
    pub(crate) info: HashMap<P, PeerInfo>,
    /// Connected peers in connection order: the default candidates of a want.
    pub(crate) connected: Vec<P>,
    pub(crate) max: usize,
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
    pub(crate) fn set_connected(&mut self, peer: &P) -> Option<bool> {
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
