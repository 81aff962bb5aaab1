//! What Bitswap shows a stranger (sans-I/O). A stranger gets a block when the node layer
//! publishes it ([`crate::BlockProvider::published`]: the gateway's rule — pins marked
//! public, current objects anyone may read, public buckets' current roots) or when it is
//! linked from a block this node already sent that peer: a DAG is fetched from its root down,
//! so "reachable from a published root" is decided one link at a time, as the gateway serves
//! everything below a published CID by path. Members get every block.
//!
//! The links granted to each peer are kept in arrival order, at most [`MAX_GRANTED`] per
//! peer; the oldest go first (a fetch walks down, so what it still needs is recent). A peer
//! that asks for a block whose grant went has to start again from a published root.

use std::collections::{HashMap, HashSet, VecDeque};

use bytes::Bytes;
use cairn_dag::Cid;
use libp2p::PeerId;

/// Links remembered per stranger.
pub const MAX_GRANTED: usize = 1 << 16;

#[derive(Default)]
struct Granted {
    set: HashSet<Cid>,
    order: VecDeque<Cid>,
}

/// Members, and the links each stranger has been shown.
#[derive(Default)]
pub struct Visibility {
    members: HashSet<PeerId>,
    granted: HashMap<PeerId, Granted>,
}

impl Visibility {
    /// `peer` proved the cluster secret.
    pub fn member(&mut self, peer: PeerId) {
        self.members.insert(peer);
        self.granted.remove(&peer);
    }

    /// Whether `peer` is a member.
    pub fn is_member(&self, peer: &PeerId) -> bool {
        self.members.contains(peer)
    }

    /// Whether `peer` may have `cid` without asking the node layer: a member, or a link of a
    /// block it was sent.
    pub fn granted(&self, peer: &PeerId, cid: &Cid) -> bool {
        self.members.contains(peer) || self.granted.get(peer).is_some_and(|g| g.set.contains(cid))
    }

    /// `data` (the block `cid`) was sent to `peer`: its links become visible to it.
    pub fn sent(&mut self, peer: PeerId, cid: &Cid, data: &Bytes) {
        if self.members.contains(&peer) {
            return;
        }
        let Ok(links) = cairn_dag::links_of(cid, data) else {
            return;
        };
        if links.is_empty() {
            return;
        }
        let g = self.granted.entry(peer).or_default();
        for link in links {
            if g.set.insert(link) {
                g.order.push_back(link);
            }
            while g.order.len() > MAX_GRANTED {
                if let Some(old) = g.order.pop_front() {
                    g.set.remove(&old);
                }
            }
        }
    }

    /// `peer` is gone.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.members.remove(peer);
        self.granted.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(data: &[u8]) -> cairn_dag::Block {
        cairn_dag::Block::new(
            cairn_dag::CidVersion::V1,
            cairn_dag::RAW,
            Bytes::copy_from_slice(data),
        )
        .unwrap()
    }

    #[test]
    fn links_of_sent_blocks_are_granted_per_peer_and_bounded() {
        // A file of two leaves: its root (dag-pb) links both.
        let (mut blocks, _) =
            cairn_dag::file::encode_bytes(&[7u8; 300_000], cairn_dag::CidVersion::V1);
        let root = blocks.pop().unwrap();
        let (a, b) = (blocks[0].clone(), blocks[1].clone());
        let (stranger, other, member) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut v = Visibility::default();
        v.member(member);
        assert!(v.granted(&member, &a.cid), "members see everything");
        assert!(!v.granted(&stranger, &a.cid));
        v.sent(stranger, &root.cid, &root.data);
        assert!(v.granted(&stranger, &a.cid) && v.granted(&stranger, &b.cid));
        assert!(!v.granted(&other, &a.cid), "grants are per peer");
        assert!(
            !v.granted(&stranger, &root.cid),
            "the root itself is the node's call"
        );
        v.disconnected(&stranger);
        assert!(!v.granted(&stranger, &a.cid));

        // Past MAX_GRANTED the oldest grants go.
        let mut v = Visibility::default();
        let first = raw(b"first");
        v.granted.entry(stranger).or_default();
        {
            let g = v.granted.get_mut(&stranger).unwrap();
            g.set.insert(first.cid);
            g.order.push_back(first.cid);
            for i in 0..MAX_GRANTED - 1 {
                let c = raw(&i.to_be_bytes()).cid;
                g.set.insert(c);
                g.order.push_back(c);
            }
        }
        assert!(v.granted(&stranger, &first.cid));
        v.sent(stranger, &root.cid, &root.data);
        assert!(!v.granted(&stranger, &first.cid), "evicted");
        assert!(v.granted(&stranger, &a.cid));
        assert_eq!(v.granted[&stranger].order.len(), MAX_GRANTED);
    }
}
