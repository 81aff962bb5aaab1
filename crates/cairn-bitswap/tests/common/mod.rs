//! Helpers shared by the engine tests: an in-memory block store and event draining.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use cairn_bitswap::{Bitswap, BlockSource, Event, Lookup, Message, answer_queries};
use cairn_dag::{Cid, CidVersion, RAW, block::cid_of};
use multihash::Multihash;

pub type Peer = &'static str;

#[derive(Default, Clone)]
pub struct MemStore {
    pub blocks: HashMap<Multihash<64>, Bytes>,
}

impl MemStore {
    pub fn insert(&mut self, cid: &Cid, data: Bytes) {
        self.blocks.insert(*cid.hash(), data);
    }
}

impl BlockSource for MemStore {
    fn lookup(&self, cid: &Cid, max_data: usize) -> Lookup {
        match self.blocks.get(cid.hash()) {
            Some(d) if d.len() <= max_data => Lookup::Block(d.clone()),
            Some(d) => Lookup::Have { size: d.len() },
            None => Lookup::Missing,
        }
    }
}

/// A raw CIDv1 block of `len` bytes derived from `seed`.
pub fn block(seed: u32, len: usize) -> (Cid, Bytes) {
    let mut data = Vec::with_capacity(len);
    let mut x = u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.push(x as u8);
    }
    let data = Bytes::from(data);
    (cid_of(CidVersion::V1, RAW, &data).unwrap(), data)
}

/// Everything the engine has to say at `now`.
pub fn drain(bs: &mut Bitswap<Peer>, now: Instant) -> Vec<Event<Peer>> {
    std::iter::from_fn(|| bs.poll(now)).collect()
}

/// Drains, answering lookups from `store` and acknowledging sends, and returns the rest.
pub fn serve(bs: &mut Bitswap<Peer>, store: &MemStore, now: Instant) -> Vec<Event<Peer>> {
    let mut out = Vec::new();
    while let Some(ev) = bs.poll(now) {
        match ev {
            Event::NeedBlocks { peer, queries } => {
                bs.blocks_found(&peer, answer_queries(store, &queries));
            }
            Event::Send { peer, message } => {
                bs.message_sent(&peer);
                out.push(Event::Send { peer, message });
            }
            other => out.push(other),
        }
    }
    out
}

/// The messages among `events`, in order.
pub fn sends(events: &[Event<Peer>]) -> Vec<(Peer, Message)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Send { peer, message } => Some((*peer, message.clone())),
            _ => None,
        })
        .collect()
}

/// All messages to `peer` merged into one (for order-insensitive checks).
pub fn to(events: &[Event<Peer>], peer: Peer) -> Message {
    let mut m = Message::default();
    for (p, msg) in sends(events) {
        if p == peer {
            m.wantlist.extend(msg.wantlist);
            m.payload.extend(msg.payload);
            m.presences.extend(msg.presences);
            m.blocks.extend(msg.blocks);
        }
    }
    m
}
