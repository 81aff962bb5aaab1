//! The client side: the blocks *we* want, which peers are asked, and when to ask again.
//!
//! Per want (keyed by multihash, so a CIDv0 and a CIDv1 dag-pb name of the same bytes are one
//! want) the client keeps the peers still to ask (`untried`: providers first, then connected
//! peers, at most [`Config::max_candidates_per_want`] in all) and what each asked peer said.
//!
//! * A round of asking sends WANT_BLOCK to [`Config::direct_block_peers`] candidates and
//!   WANT_HAVE to the next [`Config::have_fanout`], all with `sendDontHave`.
//! * The first peer to answer HAVE gets a WANT_BLOCK when no WANT_BLOCK is outstanding.
//! * DONT_HAVE, a disconnect or a timeout ([`Config::have_timeout`], [`Config::block_timeout`])
//!   takes a peer out of the running; the next HAVE-peer or the next round takes over. A round
//!   also starts when WANT_HAVEs are unanswered after [`Config::hedge_delay`].
//! * Hedging: a WANT_BLOCK unanswered after [`Config::hedge_delay`] sends another WANT_BLOCK (to
//!   a HAVE-peer, else a fresh candidate, else a peer whose WANT_HAVE is pending), up to
//!   [`Config::max_block_requests`] outstanding.
//! * A block is accepted when the hash of its bytes is the multihash of a want (see
//!   `prefix`): [`Event::BlockReceived`] goes out and every other peer asked gets a CANCEL.
//!   A block matching no want, and no want finished in the last
//!   [`Config::recent_capacity`] wants, is unrequested: the caller reports the sender, whose
//!   outstanding asks then count as DONT_HAVE everywhere (so the want moves to other peers).
//! * With nobody left to ask and nothing outstanding for [`Config::starve_timeout`], the want
//!   fails ([`Event::WantFailed`]).
//!
//! Timers live in one ordered set of (deadline, want); each want has at most one entry.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Instant;

use bytes::Bytes;
use cid::Cid;
use multihash::Multihash;
use tracing::{debug, trace};

use crate::BitswapError;
use crate::message::{PresenceType, WantEntry, WantType};
use crate::prefix::check_supported;
use crate::types::{Config, Ctx, Event};

type Mh = Multihash<64>;

/// At most this many other CIDs with the same multihash ride along one want.
const MAX_ALIASES: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AskState {
    /// WANT_HAVE sent, no answer yet.
    HavePending,
    /// WANT_BLOCK sent, no answer yet.
    BlockPending,
    /// Answered HAVE; no WANT_BLOCK sent yet.
    Has,
    /// Answered DONT_HAVE (or misbehaved).
    DontHave,
    /// WANT_HAVE unanswered past the timeout.
    HaveTimedOut,
    /// WANT_BLOCK unanswered past the timeout.
    BlockTimedOut,
}

#[derive(Debug)]
struct Ask<P> {
    peer: P,
    state: AskState,
    sent_at: Instant,
}

#[derive(Debug)]
struct Want<P> {
    cid: Cid,
    aliases: Vec<Cid>,
    priority: i32,
    readers: usize,
    untried: VecDeque<P>,
    asks: Vec<Ask<P>>,
    last_sent: Option<Instant>,
    last_block_sent: Option<Instant>,
    starved_since: Option<Instant>,
    timer: Option<Instant>,
}

impl<P: Clone + Eq + Hash> Want<P> {
    fn count(&self, state: AskState) -> usize {
        self.asks.iter().filter(|a| a.state == state).count()
    }

    fn send(&mut self, peer: &P, want_type: WantType, ctx: &mut Ctx<'_, P>, now: Instant) {
        ctx.outbox.entry(
            peer,
            WantEntry::want(self.cid, want_type, self.priority, true),
        );
        self.last_sent = Some(now);
        if want_type == WantType::Block {
            self.last_block_sent = Some(now);
        }
    }

    /// Sends WANT_BLOCK to the peer of `asks[i]`.
    fn ask_block(&mut self, i: usize, ctx: &mut Ctx<'_, P>, now: Instant) {
        let peer = self.asks[i].peer.clone();
        self.asks[i].state = AskState::BlockPending;
        self.asks[i].sent_at = now;
        self.send(&peer, WantType::Block, ctx, now);
    }

    fn ask_new(&mut self, peer: P, want_type: WantType, ctx: &mut Ctx<'_, P>, now: Instant) {
        self.send(&peer, want_type, ctx, now);
        let state = match want_type {
            WantType::Block => AskState::BlockPending,
            WantType::Have => AskState::HavePending,
        };
        self.asks.push(Ask {
            peer,
            state,
            sent_at: now,
        });
    }

    fn round(&mut self, ctx: &mut Ctx<'_, P>, now: Instant) {
        for _ in 0..ctx.config.direct_block_peers {
            let Some(p) = self.untried.pop_front() else {
                return;
            };
            self.ask_new(p, WantType::Block, ctx, now);
        }
        for _ in 0..ctx.config.have_fanout {
            let Some(p) = self.untried.pop_front() else {
                return;
            };
            self.ask_new(p, WantType::Have, ctx, now);
        }
    }

    fn hedge(&mut self, ctx: &mut Ctx<'_, P>, now: Instant) {
        if let Some(i) = self.asks.iter().position(|a| a.state == AskState::Has) {
            self.ask_block(i, ctx, now);
        } else if let Some(p) = self.untried.pop_front() {
            self.ask_new(p, WantType::Block, ctx, now);
        } else if let Some(i) = self
            .asks
            .iter()
            .position(|a| a.state == AskState::HavePending)
        {
            self.ask_block(i, ctx, now);
        }
    }

    /// The earliest time at which `progress` would do something without new input. Always
    /// after the `now` of the `progress` call that computed it.
    fn next_wakeup(&self, cfg: &Config) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        for a in &self.asks {
            match a.state {
                AskState::HavePending => consider(a.sent_at + cfg.have_timeout),
                AskState::BlockPending => consider(a.sent_at + cfg.block_timeout),
                _ => {}
            }
        }
        let blocks = self.count(AskState::BlockPending);
        let haves = self.count(AskState::HavePending);
        let has = self.count(AskState::Has) > 0;
        if blocks > 0
            && blocks < cfg.max_block_requests
            && (has || !self.untried.is_empty() || haves > 0)
            && let Some(t) = self.last_block_sent
        {
            consider(t + cfg.hedge_delay);
        }
        if blocks == 0
            && !has
            && haves > 0
            && !self.untried.is_empty()
            && let Some(t) = self.last_sent
        {
            consider(t + cfg.hedge_delay);
        }
        if let Some(t) = self.starved_since {
            consider(t + cfg.starve_timeout);
        }
        next
    }
}

/// The multihashes of recently finished wants (bounded FIFO).
#[derive(Debug)]
struct Recent {
    order: VecDeque<Mh>,
    set: HashSet<Mh>,
    cap: usize,
}

impl Recent {
    fn insert(&mut self, mh: Mh) {
        if !self.set.insert(mh) {
            return;
        }
        self.order.push_back(mh);
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, mh: &Mh) -> bool {
        self.set.contains(mh)
    }
}

#[derive(Debug)]
pub(crate) struct Client<P> {
    wants: BTreeMap<u64, Want<P>>,
    by_hash: HashMap<Mh, u64>,
    timers: BTreeSet<(Instant, u64)>,
    next_id: u64,
    recent: Recent,
}

impl<P: Clone + Eq + Hash + Debug> Client<P> {
    pub(crate) fn new(recent_capacity: usize) -> Self {
        Client {
            wants: BTreeMap::new(),
            by_hash: HashMap::new(),
            timers: BTreeSet::new(),
            next_id: 0,
            recent: Recent {
                order: VecDeque::new(),
                set: HashSet::new(),
                cap: recent_capacity,
            },
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.wants.len()
    }

    pub(crate) fn wantlist(&self) -> Vec<Cid> {
        self.wants.values().map(|w| w.cid).collect()
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    pub(crate) fn want(
        &mut self,
        cid: Cid,
        priority: i32,
        ctx: &mut Ctx<'_, P>,
        now: Instant,
    ) -> Result<(), BitswapError> {
        check_supported(&cid)?;
        let mh = *cid.hash();
        if let Some(w) = self.by_hash.get(&mh).and_then(|id| self.wants.get_mut(id)) {
            w.readers += 1;
            if w.cid != cid && !w.aliases.contains(&cid) && w.aliases.len() < MAX_ALIASES {
                w.aliases.push(cid);
            }
            return Ok(());
        }
        if self.wants.len() >= ctx.config.max_wants {
            return Err(BitswapError::TooManyWants {
                max: ctx.config.max_wants,
            });
        }
        let untried = ctx
            .peers
            .connected
            .iter()
            .filter(|p| ctx.peers.usable(p))
            .take(ctx.config.max_candidates_per_want)
            .cloned()
            .collect();
        let id = self.next_id;
        self.next_id += 1;
        self.wants.insert(
            id,
            Want {
                cid,
                aliases: Vec::new(),
                priority,
                readers: 1,
                untried,
                asks: Vec::new(),
                last_sent: None,
                last_block_sent: None,
                starved_since: None,
                timer: None,
            },
        );
        self.by_hash.insert(mh, id);
        debug!(%cid, "want");
        self.progress(id, ctx, now);
        Ok(())
    }

    pub(crate) fn add_providers(
        &mut self,
        cid: &Cid,
        providers: Vec<P>,
        ctx: &mut Ctx<'_, P>,
        now: Instant,
    ) {
        let Some(&id) = self.by_hash.get(cid.hash()) else {
            return;
        };
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        for p in providers.into_iter().rev() {
            if !ctx.peers.ensure(&p) || !ctx.peers.usable(&p) || w.asks.iter().any(|a| a.peer == p)
            {
                continue;
            }
            w.untried.retain(|u| *u != p);
            w.untried.push_front(p);
        }
        while w.asks.len() + w.untried.len() > ctx.config.max_candidates_per_want
            && w.untried.pop_back().is_some()
        {}
        self.progress(id, ctx, now);
    }

    pub(crate) fn cancel_want(&mut self, cid: &Cid, ctx: &mut Ctx<'_, P>, _now: Instant) {
        let Some(&id) = self.by_hash.get(cid.hash()) else {
            return;
        };
        if let Some(w) = self.wants.get_mut(&id) {
            w.readers = w.readers.saturating_sub(1);
            if w.readers > 0 {
                return;
            }
        }
        if let Some(w) = self.remove(id) {
            debug!(cid = %w.cid, "want cancelled");
            self.send_cancels(&w, None, ctx);
        }
    }

    pub(crate) fn peer_connected(&mut self, peer: &P, ctx: &mut Ctx<'_, P>, now: Instant) {
        if !ctx.peers.usable(peer) {
            return;
        }
        let ids: Vec<u64> = self.wants.keys().copied().collect();
        for id in ids {
            let Some(w) = self.wants.get_mut(&id) else {
                continue;
            };
            if w.asks.iter().any(|a| a.peer == *peer)
                || w.untried.contains(peer)
                || w.asks.len() + w.untried.len() >= ctx.config.max_candidates_per_want
            {
                continue;
            }
            w.untried.push_back(peer.clone());
            self.progress(id, ctx, now);
        }
    }

    /// `peer` disconnected: forget it as a candidate and its answers.
    pub(crate) fn peer_gone(&mut self, peer: &P, ctx: &mut Ctx<'_, P>, now: Instant) {
        let ids: Vec<u64> = self.wants.keys().copied().collect();
        for id in ids {
            let Some(w) = self.wants.get_mut(&id) else {
                continue;
            };
            let before = w.asks.len() + w.untried.len();
            w.untried.retain(|p| p != peer);
            w.asks.retain(|a| a.peer != *peer);
            if w.asks.len() + w.untried.len() != before {
                self.progress(id, ctx, now);
            }
        }
    }

    /// `peer` misbehaved: whatever it was asked counts as DONT_HAVE.
    pub(crate) fn peer_misbehaved(&mut self, peer: &P, ctx: &mut Ctx<'_, P>, now: Instant) {
        let ids: Vec<u64> = self.wants.keys().copied().collect();
        for id in ids {
            let Some(w) = self.wants.get_mut(&id) else {
                continue;
            };
            let mut changed = false;
            let before = w.untried.len();
            w.untried.retain(|p| p != peer);
            changed |= w.untried.len() != before;
            for a in w.asks.iter_mut().filter(|a| a.peer == *peer) {
                if a.state != AskState::DontHave {
                    a.state = AskState::DontHave;
                    changed = true;
                }
            }
            if changed {
                self.progress(id, ctx, now);
            }
        }
    }

    pub(crate) fn on_presence(
        &mut self,
        from: &P,
        cid: &Cid,
        presence: PresenceType,
        ctx: &mut Ctx<'_, P>,
        now: Instant,
    ) {
        let Some(&id) = self.by_hash.get(cid.hash()) else {
            return;
        };
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        trace!(?from, %cid, ?presence, "presence");
        let ask = w.asks.iter_mut().find(|a| a.peer == *from);
        match (presence, ask) {
            (PresenceType::Have, Some(a)) => {
                if matches!(
                    a.state,
                    AskState::HavePending | AskState::HaveTimedOut | AskState::DontHave
                ) && ctx.peers.usable(from)
                {
                    a.state = AskState::Has;
                }
            }
            (PresenceType::Have, None) => {
                if ctx.peers.usable(from) && w.asks.len() < ctx.config.max_candidates_per_want {
                    w.untried.retain(|p| p != from);
                    if w.asks.len() + w.untried.len() >= ctx.config.max_candidates_per_want {
                        w.untried.pop_back();
                    }
                    w.asks.push(Ask {
                        peer: from.clone(),
                        state: AskState::Has,
                        sent_at: now,
                    });
                }
            }
            (PresenceType::DontHave, Some(a)) => a.state = AskState::DontHave,
            (PresenceType::DontHave, None) => w.untried.retain(|p| p != from),
        }
        self.progress(id, ctx, now);
    }

    /// A block whose bytes hash to `cid` arrived from `from`. False when nobody wanted it,
    /// now or recently.
    pub(crate) fn on_block(
        &mut self,
        from: &P,
        cid: Cid,
        data: Bytes,
        ctx: &mut Ctx<'_, P>,
        _now: Instant,
    ) -> bool {
        let mh = *cid.hash();
        let Some(&id) = self.by_hash.get(&mh) else {
            if self.recent.contains(&mh) {
                ctx.stats.duplicate_blocks_received += 1;
                return true;
            }
            debug!(?from, %cid, "unrequested block");
            return false;
        };
        let Some(w) = self.remove(id) else {
            return false;
        };
        debug!(?from, cid = %w.cid, len = data.len(), "block received");
        ctx.stats.blocks_received += 1;
        ctx.stats.block_bytes_received += data.len() as u64;
        self.send_cancels(&w, Some(from), ctx);
        for cid in std::iter::once(w.cid).chain(w.aliases) {
            ctx.events.push_back(Event::BlockReceived {
                cid,
                data: data.clone(),
                from: from.clone(),
            });
        }
        true
    }

    /// Runs the timers due at `now`.
    pub(crate) fn handle_timeouts(&mut self, ctx: &mut Ctx<'_, P>, now: Instant) {
        let due: Vec<u64> = self
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in due {
            self.progress(id, ctx, now);
        }
    }

    fn remove(&mut self, id: u64) -> Option<Want<P>> {
        let w = self.wants.remove(&id)?;
        self.by_hash.remove(w.cid.hash());
        if let Some(t) = w.timer {
            self.timers.remove(&(t, id));
        }
        self.recent.insert(*w.cid.hash());
        Some(w)
    }

    fn send_cancels(&self, w: &Want<P>, except: Option<&P>, ctx: &mut Ctx<'_, P>) {
        for a in &w.asks {
            if Some(&a.peer) != except && ctx.peers.info.contains_key(&a.peer) {
                ctx.outbox.entry(&a.peer, WantEntry::cancel(w.cid));
            }
        }
    }

    /// Moves one want forward: expires asks, asks more peers, hedges, fails, reschedules.
    fn progress(&mut self, id: u64, ctx: &mut Ctx<'_, P>, now: Instant) {
        let Some(w) = self.wants.get_mut(&id) else {
            return;
        };
        let cfg = ctx.config;
        for a in &mut w.asks {
            match a.state {
                AskState::HavePending if a.sent_at + cfg.have_timeout <= now => {
                    a.state = AskState::HaveTimedOut;
                }
                AskState::BlockPending if a.sent_at + cfg.block_timeout <= now => {
                    a.state = AskState::BlockTimedOut;
                }
                _ => {}
            }
        }
        let blocks = w.count(AskState::BlockPending);
        let haves = w.count(AskState::HavePending);
        if blocks == 0 {
            if let Some(i) = w.asks.iter().position(|a| a.state == AskState::Has) {
                w.ask_block(i, ctx, now);
            } else if !w.untried.is_empty()
                && (haves == 0 || w.last_sent.is_none_or(|t| t + cfg.hedge_delay <= now))
            {
                w.round(ctx, now);
            }
        } else if blocks < cfg.max_block_requests
            && w.last_block_sent
                .is_some_and(|t| t + cfg.hedge_delay <= now)
        {
            w.hedge(ctx, now);
        }
        let active = !w.untried.is_empty()
            || w.asks.iter().any(|a| {
                matches!(
                    a.state,
                    AskState::HavePending | AskState::BlockPending | AskState::Has
                )
            });
        if active {
            w.starved_since = None;
        } else if w.starved_since.is_none() {
            w.starved_since = Some(now);
        }
        if w.starved_since
            .is_some_and(|t| t + cfg.starve_timeout <= now)
        {
            if let Some(w) = self.remove(id) {
                debug!(cid = %w.cid, "want failed");
                ctx.stats.wants_failed += 1;
                self.send_cancels(&w, None, ctx);
                for cid in std::iter::once(w.cid).chain(w.aliases) {
                    ctx.events.push_back(Event::WantFailed { cid });
                }
            }
            return;
        }
        let next = w.next_wakeup(cfg);
        if w.timer != next {
            if let Some(old) = w.timer.take() {
                self.timers.remove(&(old, id));
            }
            if let Some(t) = next {
                self.timers.insert((t, id));
                w.timer = Some(t);
            }
        }
    }
}
