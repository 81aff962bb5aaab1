//! The server side: what each peer wants from us (its ledger) and how it gets answered.
//!
//! A ledger holds at most [`Config::max_wants_per_peer`] entries, keyed by multihash; each is
//! *queued* (needs a lookup), *looking* (in an outstanding [`Event::NeedBlocks`]) or *waiting*
//! (we do not have the block; [`Bitswap::block_added`] answers it later). A full wantlist
//! replaces the ledger; a cancel removes its entry; a want beyond the bound is refused with
//! DONT_HAVE (when asked for), which the spec allows ("has but is not willing to give").
//!
//! Lookups are the caller's I/O: the server emits [`Event::NeedBlocks`] with at most
//! [`Config::lookup_batch`] CIDs, highest priority first, one batch per peer at a time,
//! [`Config::max_lookups_in_flight`] CIDs across all peers, peers taken round-robin, and none for
//! a peer with [`Config::max_unacked_bytes_per_peer`] bytes of messages not yet acknowledged.
//! So memory held for answers is bounded by those numbers times [`Config::max_block_size`].
//!
//! Answers (spec §Bitswap 1.2.0, and boxo's / Helia's choices where it leaves room):
//!
//! | want | we have it | we don't |
//! |---|---|---|
//! | WANT_HAVE | HAVE, or the block itself if ≤ [`Config::max_have_block_size`] | DONT_HAVE if `sendDontHave`, entry waits |
//! | WANT_BLOCK | the block (≤ [`Config::max_block_size`], else as "don't have", entry dropped) | DONT_HAVE if `sendDontHave`, entry waits |
//!
//! An answered entry leaves the ledger (boxo does the same): asking again is a new want.
//!
//! [`Bitswap::block_added`]: crate::Bitswap::block_added

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;
use tracing::trace;

use crate::message::{PresenceType, WantEntry, WantType};
use crate::types::{BlockQuery, Ctx, Event, Lookup};

#[cfg(doc)]
use crate::types::Config;

type Mh = Multihash<64>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryState {
    Queued,
    Looking,
    Waiting,
}

#[derive(Debug)]
struct PeerWant {
    cid: Cid,
    priority: i32,
    want_type: WantType,
    send_dont_have: bool,
    state: EntryState,
    /// The want type the outstanding lookup was made for.
    looked_up_as: WantType,
    seq: u64,
}

#[derive(Debug, Default)]
struct Ledger {
    entries: HashMap<Mh, PeerWant>,
    queued: usize,
    lookup: Option<Vec<Mh>>,
}

impl Ledger {
    fn remove(&mut self, mh: &Mh) -> Option<PeerWant> {
        let pw = self.entries.remove(mh)?;
        if pw.state == EntryState::Queued {
            self.queued -= 1;
        }
        Some(pw)
    }
}

#[derive(Debug)]
pub(crate) struct Server<P> {
    ledgers: HashMap<P, Ledger>,
    /// Peers that may get a lookup, round-robin; each at most once (`in_ready`).
    ready: VecDeque<P>,
    in_ready: HashSet<P>,
    lookups_in_flight: usize,
    entries: usize,
    seq: u64,
}

impl<P: Clone + Eq + Hash + Debug> Server<P> {
    pub(crate) fn new() -> Self {
        Server {
            ledgers: HashMap::new(),
            ready: VecDeque::new(),
            in_ready: HashSet::new(),
            lookups_in_flight: 0,
            entries: 0,
            seq: 0,
        }
    }

    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    pub(crate) fn lookups_in_flight(&self) -> usize {
        self.lookups_in_flight
    }

    pub(crate) fn wantlist(&self, peer: &P) -> Vec<(Cid, WantType)> {
        self.ledgers.get(peer).map_or_else(Vec::new, |l| {
            let mut v: Vec<_> = l
                .entries
                .values()
                .map(|e| (e.seq, e.cid, e.want_type))
                .collect();
            v.sort_by_key(|e| e.0);
            v.into_iter().map(|(_, c, t)| (c, t)).collect()
        })
    }

    pub(crate) fn on_wantlist(
        &mut self,
        peer: &P,
        full: bool,
        entries: &[WantEntry],
        ctx: &mut Ctx<'_, P>,
    ) {
        let max = ctx.config.max_wants_per_peer;
        let ledger = self.ledgers.entry(peer.clone()).or_default();
        if full {
            self.entries -= ledger.entries.len();
            ledger.entries.clear();
            ledger.queued = 0;
        }
        for e in entries {
            let mh = *e.cid.hash();
            if e.cancel {
                if ledger.remove(&mh).is_some() {
                    self.entries -= 1;
                }
                continue;
            }
            if let Some(pw) = ledger.entries.get_mut(&mh) {
                pw.cid = e.cid;
                pw.priority = e.priority;
                if e.want_type == WantType::Block {
                    pw.want_type = WantType::Block;
                }
                pw.send_dont_have = e.send_dont_have;
                if pw.state == EntryState::Waiting {
                    pw.state = EntryState::Queued;
                    ledger.queued += 1;
                }
                continue;
            }
            if ledger.entries.len() >= max {
                trace!(?peer, cid = %e.cid, "ledger full, want refused");
                ctx.stats.peer_wants_refused += 1;
                if e.send_dont_have {
                    ctx.outbox.presence(peer, e.cid, PresenceType::DontHave);
                }
                continue;
            }
            self.seq += 1;
            ledger.entries.insert(
                mh,
                PeerWant {
                    cid: e.cid,
                    priority: e.priority,
                    want_type: e.want_type,
                    send_dont_have: e.send_dont_have,
                    state: EntryState::Queued,
                    looked_up_as: e.want_type,
                    seq: self.seq,
                },
            );
            ledger.queued += 1;
            self.entries += 1;
        }
        if ledger.entries.is_empty() && ledger.lookup.is_none() {
            self.ledgers.remove(peer);
            return;
        }
        self.mark_ready(peer, ctx);
    }

    fn mark_ready(&mut self, peer: &P, ctx: &Ctx<'_, P>) {
        let Some(l) = self.ledgers.get_mut(peer) else {
            return;
        };
        if l.queued > 0
            && l.lookup.is_none()
            && ctx.peers.unacked(peer) < ctx.config.max_unacked_bytes_per_peer
            && self.in_ready.insert(peer.clone())
        {
            self.ready.push_back(peer.clone());
        }
    }

    /// Starts lookups while there is room, peers round-robin. Called after the outbox was
    /// flushed, so that flow control sees every message queued so far.
    pub(crate) fn schedule(&mut self, ctx: &mut Ctx<'_, P>) {
        let cfg = ctx.config;
        while self.lookups_in_flight < cfg.max_lookups_in_flight {
            let Some(peer) = self.ready.pop_front() else {
                break;
            };
            self.in_ready.remove(&peer);
            let Some(l) = self.ledgers.get_mut(&peer) else {
                continue;
            };
            if l.lookup.is_some()
                || l.queued == 0
                || ctx.peers.unacked(&peer) >= cfg.max_unacked_bytes_per_peer
            {
                continue;
            }
            let n = cfg
                .lookup_batch
                .min(cfg.max_lookups_in_flight - self.lookups_in_flight);
            let mut queued: Vec<(i32, u64, Mh)> = l
                .entries
                .iter()
                .filter(|(_, e)| e.state == EntryState::Queued)
                .map(|(mh, e)| (e.priority, e.seq, *mh))
                .collect();
            queued.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            queued.truncate(n);
            let mut batch = Vec::with_capacity(queued.len());
            let mut queries = Vec::with_capacity(queued.len());
            for (_, _, mh) in queued {
                let Some(e) = l.entries.get_mut(&mh) else {
                    continue;
                };
                e.state = EntryState::Looking;
                e.looked_up_as = e.want_type;
                l.queued -= 1;
                batch.push(mh);
                queries.push(BlockQuery {
                    cid: e.cid,
                    max_data: match e.want_type {
                        WantType::Block => cfg.max_block_size,
                        WantType::Have => cfg.max_have_block_size,
                    },
                });
            }
            self.lookups_in_flight += batch.len();
            l.lookup = Some(batch);
            trace!(?peer, n = queries.len(), "lookup");
            ctx.events.push_back(Event::NeedBlocks { peer, queries });
        }
    }

    pub(crate) fn blocks_found(
        &mut self,
        peer: &P,
        answers: Vec<(Cid, Lookup)>,
        ctx: &mut Ctx<'_, P>,
    ) {
        let Some(l) = self.ledgers.get_mut(peer) else {
            return;
        };
        let Some(batch) = l.lookup.take() else {
            return;
        };
        self.lookups_in_flight -= batch.len();
        let mut answers: HashMap<Mh, Lookup> =
            answers.into_iter().map(|(c, a)| (*c.hash(), a)).collect();
        for mh in batch {
            if l.entries
                .get(&mh)
                .is_none_or(|e| e.state != EntryState::Looking)
            {
                continue;
            }
            let answer = answers.remove(&mh).unwrap_or(Lookup::Missing);
            self.entries -= respond(peer, l, &mh, answer, ctx);
        }
        if l.entries.is_empty() {
            self.ledgers.remove(peer);
        } else {
            self.mark_ready(peer, ctx);
        }
    }

    pub(crate) fn block_added(&mut self, cid: &Cid, data: &Bytes, ctx: &mut Ctx<'_, P>) {
        if self.entries == 0 {
            return;
        }
        let mh = *cid.hash();
        for (peer, l) in &mut self.ledgers {
            let Some(e) = l.entries.get_mut(&mh) else {
                continue;
            };
            if e.state == EntryState::Queued {
                l.queued -= 1;
            }
            // The block is here now whatever the lookup (if any) will say.
            e.state = EntryState::Looking;
            e.looked_up_as = WantType::Block;
            self.entries -= respond(peer, l, &mh, Lookup::Block(data.clone()), ctx);
        }
        self.ledgers
            .retain(|_, l| !l.entries.is_empty() || l.lookup.is_some());
    }

    pub(crate) fn on_ack(&mut self, peer: &P, ctx: &mut Ctx<'_, P>) {
        self.mark_ready(peer, ctx);
    }

    pub(crate) fn peer_disconnected(&mut self, peer: &P) {
        if self.in_ready.remove(peer) {
            self.ready.retain(|p| p != peer);
        }
        if let Some(l) = self.ledgers.remove(peer) {
            self.entries -= l.entries.len();
            if let Some(b) = l.lookup {
                self.lookups_in_flight -= b.len();
            }
        }
    }
}

/// Answers the looking entry `mh` of `peer` with `answer`. Returns how many entries left the
/// ledger (0 or 1).
fn respond<P: Clone + Eq + Hash>(
    peer: &P,
    l: &mut Ledger,
    mh: &Mh,
    answer: Lookup,
    ctx: &mut Ctx<'_, P>,
) -> usize {
    let cfg = ctx.config;
    let Some(e) = l.entries.get_mut(mh) else {
        return 0;
    };
    let cid = e.cid;
    let send_dont_have = e.send_dont_have;
    match (e.want_type, answer) {
        (WantType::Have, Lookup::Block(data)) if data.len() <= cfg.max_have_block_size => {
            ctx.outbox.block(peer, &cid, data);
        }
        (WantType::Have, Lookup::Block(_) | Lookup::Have { .. }) => {
            ctx.outbox.presence(peer, cid, PresenceType::Have);
        }
        (WantType::Block, Lookup::Block(data)) if data.len() <= cfg.max_block_size => {
            ctx.outbox.block(peer, &cid, data);
        }
        (WantType::Block, Lookup::Have { .. }) if e.looked_up_as == WantType::Have => {
            // Upgraded to WANT_BLOCK while a presence lookup was out: look up the bytes.
            e.state = EntryState::Queued;
            l.queued += 1;
            return 0;
        }
        (WantType::Block, Lookup::Block(_) | Lookup::Have { .. }) => {
            // Too large to send: as good as not having it, and it will not change.
            if send_dont_have {
                ctx.outbox.presence(peer, cid, PresenceType::DontHave);
            }
        }
        (_, Lookup::Missing) => {
            if send_dont_have {
                ctx.outbox.presence(peer, cid, PresenceType::DontHave);
            }
            e.state = EntryState::Waiting;
            return 0;
        }
    }
    l.entries.remove(mh);
    1
}
