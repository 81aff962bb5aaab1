//! Cluster membership: this node, plus every Cairn peer seen connected, with when it was last
//! seen. A member unreachable for longer than `down_after` leaves placement, so the pieces it
//! held are re-created on the members that now follow in line; until then writes skip it
//! (their quorum allows that) and reads go around it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::placement::{Member, Ring};

#[derive(Debug, Clone)]
struct Seen {
    zone: Option<String>,
    last_seen: Instant,
    connected: bool,
}

/// Who is in the cluster.
#[derive(Debug, Clone)]
pub struct Membership {
    me: Member,
    peers: BTreeMap<Vec<u8>, Seen>,
    down_after: Duration,
    /// The last ring handed out, reused while the member list is the same.
    ring: Option<Arc<Ring>>,
}

impl Membership {
    /// Only this node so far.
    pub fn new(me: Member, down_after: Duration) -> Self {
        Membership {
            me,
            peers: BTreeMap::new(),
            down_after,
            ring: None,
        }
    }

    /// This node.
    pub fn me(&self) -> &Member {
        &self.me
    }

    /// Records the members connected now; every other known member is marked disconnected.
    pub fn observe(&mut self, connected: &[Member], now: Instant) {
        for seen in self.peers.values_mut() {
            seen.connected = false;
        }
        for m in connected.iter().filter(|m| m.id != self.me.id) {
            self.peers.insert(
                m.id.clone(),
                Seen {
                    zone: m.zone.clone(),
                    last_seen: now,
                    connected: true,
                },
            );
        }
    }

    /// The members placement counts on — this node, and every peer connected now or seen
    /// within `down_after` — as a ring (rebuilt only when that list changes).
    pub fn placement(&mut self, now: Instant) -> Arc<Ring> {
        let members = self.members_at(now);
        match &self.ring {
            Some(ring) if ring.members() == members.as_slice() => ring.clone(),
            _ => {
                let ring = Arc::new(Ring::new(members));
                self.ring = Some(ring.clone());
                ring
            }
        }
    }

    fn members_at(&self, now: Instant) -> Vec<Member> {
        let mut out = vec![self.me.clone()];
        out.extend(
            self.peers
                .iter()
                .filter(|(_, s)| s.connected || now.duration_since(s.last_seen) < self.down_after)
                .map(|(id, s)| Member {
                    id: id.clone(),
                    zone: s.zone.clone(),
                }),
        );
        out
    }

    /// Peers connected now (reads ask them).
    pub fn connected(&self) -> Vec<Vec<u8>> {
        self.peers
            .iter()
            .filter(|(_, s)| s.connected)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether `id` is this node or a connected peer.
    pub fn is_up(&self, id: &[u8]) -> bool {
        id == self.me.id.as_slice() || self.peers.get(id).is_some_and(|s| s.connected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_leaves_placement_only_after_down_after() {
        let t0 = Instant::now();
        let mut m = Membership::new(Member::new("me"), Duration::from_secs(60));
        m.observe(&[Member::new("a"), Member::new("b"), Member::new("me")], t0);
        assert_eq!(m.placement(t0).members().len(), 3);
        assert!(
            Arc::ptr_eq(&m.placement(t0), &m.placement(t0)),
            "the ring is reused"
        );
        m.observe(&[Member::new("a")], t0 + Duration::from_secs(30));
        assert_eq!(m.connected(), vec![b"a".to_vec()]);
        assert!(!m.is_up(b"b") && m.is_up(b"me") && m.is_up(b"a"));
        assert_eq!(
            m.placement(t0 + Duration::from_secs(59)).members().len(),
            3,
            "b only missed"
        );
        let later = t0 + Duration::from_secs(61);
        m.observe(&[Member::new("a")], later);
        let ids: Vec<_> = m
            .placement(later)
            .members()
            .iter()
            .map(|m| m.id.clone())
            .collect();
        assert_eq!(ids, vec![b"me".to_vec(), b"a".to_vec()], "b is down");
    }
}
