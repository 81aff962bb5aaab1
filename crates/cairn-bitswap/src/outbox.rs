//! The outbox: what the client and the server want to tell each peer, gathered during one call
//! into the state machine and turned into as few messages as fit under the size target.
//!
//! Wantlist entries for the same CID are merged (a later want upgrades WANT_HAVE to WANT_BLOCK;
//! a cancel replaces a queued want, a want replaces a queued cancel). Messages are split so that
//! each stays under the target size; a single block larger than the target travels alone.

use std::collections::HashMap;
use std::hash::Hash;

use bytes::Bytes;
use cid::Cid;
use quick_protobuf::MessageWrite;

use crate::message::{
    BlockPresence, Message, PayloadBlock, PresenceType, WantEntry, WantType, field_len,
};

/// Room kept for the wantlist wrapper (tag, length, `full`) when packing entries.
const WANTLIST_SLACK: usize = 16;

#[derive(Debug, Default)]
struct Pending {
    wants: Vec<Option<WantEntry>>,
    index: HashMap<Cid, usize>,
    presences: Vec<BlockPresence>,
    blocks: Vec<PayloadBlock>,
}

#[derive(Debug)]
pub(crate) struct Outbox<P> {
    order: Vec<P>,
    pending: HashMap<P, Pending>,
}

impl<P: Clone + Eq + Hash> Outbox<P> {
    pub(crate) fn new() -> Self {
        Outbox {
            order: Vec::new(),
            pending: HashMap::new(),
        }
    }

    fn slot(&mut self, peer: &P) -> &mut Pending {
        if !self.pending.contains_key(peer) {
            self.order.push(peer.clone());
        }
        self.pending.entry(peer.clone()).or_default()
    }

    /// Queues a want or a cancel, merging with what is queued for the same CID.
    pub(crate) fn entry(&mut self, peer: &P, entry: WantEntry) {
        let p = self.slot(peer);
        if let Some(&i) = p.index.get(&entry.cid)
            && let Some(old) = p.wants[i].as_mut()
        {
            if entry.cancel || old.cancel {
                *old = entry;
            } else {
                if entry.want_type == WantType::Block {
                    old.want_type = WantType::Block;
                }
                old.priority = entry.priority;
                old.send_dont_have |= entry.send_dont_have;
            }
            return;
        }
        p.index.insert(entry.cid, p.wants.len());
        p.wants.push(Some(entry));
    }

    pub(crate) fn presence(&mut self, peer: &P, cid: Cid, presence: PresenceType) {
        self.slot(peer)
            .presences
            .push(BlockPresence { cid, presence });
    }

    pub(crate) fn block(&mut self, peer: &P, cid: &Cid, data: Bytes) {
        self.slot(peer).blocks.push(PayloadBlock::new(cid, data));
    }

    pub(crate) fn drop_peer(&mut self, peer: &P) {
        if self.pending.remove(peer).is_some() {
            self.order.retain(|p| p != peer);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Everything queued, as messages of at most about `target` bytes each (a block larger than
    /// that goes alone), peers in the order they were first written to.
    pub(crate) fn take(&mut self, target: usize) -> Vec<(P, Message)> {
        let budget = target.saturating_sub(WANTLIST_SLACK).max(1);
        let mut out = Vec::new();
        for peer in std::mem::take(&mut self.order) {
            let Some(p) = self.pending.remove(&peer) else {
                continue;
            };
            let mut cur = Message::default();
            let mut size = 0usize;
            let mut push = |cur: &mut Message, size: &mut usize, item: usize| {
                if !cur.is_empty() && *size + item > budget {
                    out.push((peer.clone(), std::mem::take(cur)));
                    *size = 0;
                }
                *size += item;
            };
            for b in p.blocks {
                push(&mut cur, &mut size, field_len(b.get_size()));
                cur.payload.push(b);
            }
            for pr in p.presences {
                push(&mut cur, &mut size, field_len(pr.get_size()));
                cur.presences.push(pr);
            }
            for e in p.wants.into_iter().flatten() {
                push(&mut cur, &mut size, field_len(e.get_size()));
                cur.wantlist.push(e);
            }
            if !cur.is_empty() {
                out.push((peer.clone(), cur));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::{CidVersion, RAW, block::cid_of};

    fn cid(n: u32) -> Cid {
        cid_of(CidVersion::V1, RAW, &n.to_le_bytes()).unwrap()
    }

    #[test]
    fn merges_entries_per_cid() {
        let mut o = Outbox::new();
        o.entry(&1u8, WantEntry::want(cid(1), WantType::Have, 1, true));
        o.entry(&1u8, WantEntry::want(cid(1), WantType::Block, 2, false));
        o.entry(&1u8, WantEntry::want(cid(2), WantType::Have, 1, true));
        o.entry(&1u8, WantEntry::cancel(cid(2)));
        o.entry(&1u8, WantEntry::cancel(cid(3)));
        o.entry(&1u8, WantEntry::want(cid(3), WantType::Have, 1, true));
        let msgs = o.take(1 << 20);
        assert_eq!(msgs.len(), 1);
        let wl = &msgs[0].1.wantlist;
        assert_eq!(
            wl,
            &vec![
                WantEntry::want(cid(1), WantType::Block, 2, true),
                WantEntry::cancel(cid(2)),
                WantEntry::want(cid(3), WantType::Have, 1, true),
            ]
        );
        assert!(o.is_empty());
        assert!(o.take(1 << 20).is_empty());
    }

    #[test]
    fn splits_under_target_and_big_blocks_go_alone() {
        let mut o = Outbox::new();
        for i in 0..4 {
            o.block(&7u8, &cid(i), Bytes::from(vec![0u8; 400]));
        }
        o.block(&7u8, &cid(9), Bytes::from(vec![0u8; 5000]));
        for i in 0..100 {
            o.presence(&7u8, cid(100 + i), PresenceType::DontHave);
        }
        let msgs = o.take(1000);
        assert!(msgs.len() >= 5);
        let mut blocks = 0;
        let mut presences = 0;
        for (peer, m) in &msgs {
            assert_eq!(*peer, 7);
            blocks += m.payload.len();
            presences += m.presences.len();
            if m.payload.iter().all(|b| b.data.len() < 1000) {
                assert!(m.encoded_len() <= 1000, "{}", m.encoded_len());
            } else {
                assert_eq!(m.payload.len(), 1);
            }
        }
        assert_eq!((blocks, presences), (5, 100));
    }

    #[test]
    fn peers_keep_first_write_order() {
        let mut o = Outbox::new();
        o.presence(&3u8, cid(1), PresenceType::Have);
        o.presence(&1u8, cid(1), PresenceType::Have);
        o.presence(&3u8, cid(2), PresenceType::Have);
        o.presence(&2u8, cid(2), PresenceType::Have);
        o.drop_peer(&2u8);
        let peers: Vec<u8> = o.take(1 << 20).into_iter().map(|(p, _)| p).collect();
        assert_eq!(peers, vec![3, 1]);
    }
}
