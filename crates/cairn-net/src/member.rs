//! Who is a member of this node's cluster, decided by proof (sans-I/O; the swarm task carries
//! the messages). On a peer's first connection each side challenges the other over
//! `/cairn/member/1.0.0` ([`cairn_crypt::membership`]: a fresh nonce, answered by a MAC of the
//! cluster secret bound to both peer ids). A peer is a **member** once its proof checks; until
//! then, and for good when it fails, cannot answer or does not speak the protocol (a Kubo or
//! Helia node, a node of another cluster), it is a **stranger**: Kademlia and Bitswap (for
//! published blocks) only.
//!
//! Member-protocol requests (heads, pieces) that arrive while a peer's proof is on its way are
//! held — at most [`MAX_HELD`] per peer — and served or refused when it settles, so two nodes
//! that just connected need not retry. A node with no secret has no members.

use std::collections::HashMap;

use cairn_crypt::ClusterSecret;
use cairn_crypt::membership::PROOF_LEN;
use libp2p::PeerId;

/// Member-protocol requests held per peer while its proof is pending.
pub const MAX_HELD: usize = 32;

enum State<H> {
    /// Our challenge is out; requests wait for its answer.
    Challenged {
        nonce: [u8; PROOF_LEN],
        held: Vec<H>,
    },
    Member,
    Stranger,
}

/// What to do with a member-protocol request.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit<H> {
    /// From a member: serve it.
    Serve(H),
    /// Held until the peer's proof settles.
    Held,
    /// From a stranger (or over the held limit): refuse it.
    Refuse(H),
}

/// How a peer's proof settled, and the requests it held.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled<H> {
    /// The peer proved the secret.
    pub member: bool,
    /// Requests held meanwhile: to serve when `member`, else to refuse.
    pub held: Vec<H>,
}

/// Every connected peer's standing.
pub struct Gate<H> {
    secret: Option<ClusterSecret>,
    me: Vec<u8>,
    peers: HashMap<PeerId, State<H>>,
}

impl<H> Gate<H> {
    /// The gate of node `me`; with no secret every peer is a stranger.
    pub fn new(me: PeerId, secret: Option<ClusterSecret>) -> Self {
        Gate {
            secret,
            me: me.to_bytes(),
            peers: HashMap::new(),
        }
    }

    /// The cluster's public id, when this node has a secret.
    pub fn cluster_id(&self) -> Option<String> {
        self.secret.as_ref().map(ClusterSecret::id)
    }

    /// A peer's first connection: the challenge to send it (none without a secret, or when a
    /// challenge is already out).
    pub fn connected(&mut self, peer: PeerId) -> Option<[u8; PROOF_LEN]> {
        if self.secret.is_none() {
            self.peers.insert(peer, State::Stranger);
            return None;
        }
        if self.peers.contains_key(&peer) {
            return None;
        }
        let nonce = ClusterSecret::challenge().ok()?;
        self.peers.insert(
            peer,
            State::Challenged {
                nonce,
                held: Vec::new(),
            },
        );
        Some(nonce)
    }

    /// Our proof for `peer`'s challenge (none without a secret or for a malformed one).
    pub fn answer(&self, peer: &PeerId, challenge: &[u8]) -> Option<Vec<u8>> {
        let secret = self.secret.as_ref()?;
        let nonce: [u8; PROOF_LEN] = challenge.try_into().ok()?;
        Some(secret.prove(&self.me, &peer.to_bytes(), &nonce).to_vec())
    }

    /// `peer` answered our challenge with `proof`.
    pub fn proof_received(&mut self, peer: PeerId, proof: &[u8]) -> Settled<H> {
        let member = match (&self.secret, self.peers.get(&peer)) {
            (Some(secret), Some(State::Challenged { nonce, .. })) => {
                secret.check(&peer.to_bytes(), &self.me, nonce, proof)
            }
            _ => false,
        };
        self.settle(peer, member)
    }

    /// Our challenge to `peer` failed (timeout, protocol not spoken, connection gone).
    pub fn challenge_failed(&mut self, peer: PeerId) -> Settled<H> {
        self.settle(peer, false)
    }

    fn settle(&mut self, peer: PeerId, member: bool) -> Settled<H> {
        let previous = self.peers.insert(
            peer,
            if member {
                State::Member
            } else {
                State::Stranger
            },
        );
        let held = match previous {
            Some(State::Challenged { held, .. }) => held,
            // Only a pending challenge settles: an answer out of turn changes nothing.
            Some(other) => {
                self.peers.insert(peer, other);
                return Settled {
                    member: self.is_member(&peer),
                    held: Vec::new(),
                };
            }
            None => {
                self.peers.remove(&peer);
                Vec::new()
            }
        };
        Settled { member, held }
    }

    /// A member-protocol request from `peer`.
    pub fn admit(&mut self, peer: &PeerId, request: H) -> Admit<H> {
        match self.peers.get_mut(peer) {
            Some(State::Member) => Admit::Serve(request),
            Some(State::Challenged { held, .. }) if held.len() < MAX_HELD => {
                held.push(request);
                Admit::Held
            }
            _ => Admit::Refuse(request),
        }
    }

    /// Whether `peer` proved the secret on its current connections.
    pub fn is_member(&self, peer: &PeerId) -> bool {
        matches!(self.peers.get(peer), Some(State::Member))
    }

    /// The peer's last connection closed: its standing goes (it proves again next time); the
    /// requests it had held are returned to be dropped.
    pub fn disconnected(&mut self, peer: &PeerId) -> Vec<H> {
        match self.peers.remove(peer) {
            Some(State::Challenged { held, .. }) => held,
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Option<ClusterSecret> {
        Some(ClusterSecret::from_bytes([5; 32]))
    }

    #[test]
    fn two_holders_of_the_secret_become_members_of_each_other() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut ga: Gate<u32> = Gate::new(a, secret());
        let mut gb: Gate<u32> = Gate::new(b, secret());
        let na = ga.connected(b).expect("a challenges b");
        let nb = gb.connected(a).expect("b challenges a");
        assert_eq!(ga.connected(b), None, "one challenge per peer");
        // b's request arrives at a before b's proof does: held, then served.
        assert_eq!(ga.admit(&b, 1), Admit::Held);
        let settled = ga.proof_received(b, &gb.answer(&a, &na).unwrap());
        assert_eq!(
            settled,
            Settled {
                member: true,
                held: vec![1]
            }
        );
        assert!(ga.is_member(&b));
        assert_eq!(ga.admit(&b, 2), Admit::Serve(2));
        assert!(gb.proof_received(a, &ga.answer(&b, &nb).unwrap()).member);
        // A replayed proof after the fact settles nothing new.
        assert!(ga.proof_received(b, &[0; 32]).member);
        assert!(ga.disconnected(&b).is_empty());
        assert!(!ga.is_member(&b), "proves again on the next connection");
    }

    #[test]
    fn strangers_never_become_members() {
        let (a, b, m) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut ga: Gate<u32> = Gate::new(a, secret());
        let other: Gate<u32> = Gate::new(m, Some(ClusterSecret::from_bytes([6; 32])));
        let gb: Gate<u32> = Gate::new(b, secret());
        // Another cluster's node answers with its own secret.
        let n = ga.connected(m).unwrap();
        assert_eq!(ga.admit(&m, 7), Admit::Held);
        let s = ga.proof_received(m, &other.answer(&a, &n).unwrap());
        assert_eq!(
            s,
            Settled {
                member: false,
                held: vec![7]
            }
        );
        assert_eq!(ga.admit(&m, 8), Admit::Refuse(8));
        // A stranger relaying a member's proof: the proof names the member, not it.
        let mallory = PeerId::random();
        let n = ga.connected(mallory).unwrap();
        let relayed = gb.answer(&a, &n).unwrap();
        assert!(!ga.proof_received(mallory, &relayed).member);
        // A node that does not speak the protocol (Helia) is a stranger.
        let helia = PeerId::random();
        ga.connected(helia).unwrap();
        assert!(!ga.challenge_failed(helia).member);
        assert_eq!(ga.admit(&helia, 9), Admit::Refuse(9));
        // Without a secret there are no members, and no proofs are given.
        let mut lone: Gate<u32> = Gate::new(a, None);
        assert_eq!(lone.connected(b), None);
        assert!(lone.answer(&b, &[0; 32]).is_none());
        assert_eq!(lone.admit(&b, 1), Admit::Refuse(1));
        // Malformed challenges get no answer.
        assert!(ga.answer(&b, &[0; 31]).is_none());
    }

    #[test]
    fn held_requests_are_bounded() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut ga: Gate<usize> = Gate::new(a, secret());
        ga.connected(b).unwrap();
        for i in 0..MAX_HELD {
            assert_eq!(ga.admit(&b, i), Admit::Held);
        }
        assert_eq!(ga.admit(&b, 99), Admit::Refuse(99));
        assert_eq!(ga.disconnected(&b).len(), MAX_HELD);
    }
}
