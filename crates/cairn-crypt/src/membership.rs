//! Cluster membership proofs: a cluster is the set of nodes that hold one 32-byte secret (as
//! Garage's `rpc_secret`). Two connected nodes prove it to each other by challenge-response,
//! each direction on its own: the verifier sends a fresh random nonce, the prover answers
//!
//! ```text
//! proof = BLAKE3-keyed(K, len(prover) ‖ prover ‖ len(verifier) ‖ verifier ‖ nonce)
//! K     = BLAKE3-derive-key("cairn 2026 cluster membership proof", secret)
//! ```
//!
//! where `prover` and `verifier` are the two libp2p peer ids the connection's Noise handshake
//! authenticated. A proof is good for one nonce, one verifier and one prover, so it can be
//! neither replayed nor relayed: a stranger who forwards a member's challenge to another
//! member gets back a proof naming the member it talked to, not itself. The secret never
//! travels. Answering a stranger's challenge gives it nothing it can use (a proof names its
//! prover, whose key the stranger lacks).
//!
//! The cluster's public id ([`ClusterSecret::id`]) is a second derivation, safe to print and
//! compare between nodes.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{CryptError, Result, fill_random};

const PROOF_CONTEXT: &str = "cairn 2026 cluster membership proof";
const ID_CONTEXT: &str = "cairn 2026 cluster id";

/// Length of a challenge nonce and of a proof.
pub const PROOF_LEN: usize = 32;

/// A cluster's shared secret. Zeroized on drop; `Debug` shows only the public id.
#[derive(Clone)]
pub struct ClusterSecret([u8; 32]);

impl ClusterSecret {
    /// A new cluster (of one, until others are given the secret).
    pub fn generate() -> Result<ClusterSecret> {
        let mut s = ClusterSecret([0; 32]);
        fill_random(&mut s.0)?;
        Ok(s)
    }

    /// The secret from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> ClusterSecret {
        ClusterSecret(bytes)
    }

    /// The secret from 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<ClusterSecret> {
        let text = text.trim();
        let bad = || CryptError::Malformed("a cluster secret is 64 hex digits".into());
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(ClusterSecret(out))
    }

    /// The secret as 64 hex digits (for the operator's config file or an invite).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The cluster's public id: 16 hex digits derived from the secret, the same on every
    /// member, telling nothing of the secret.
    pub fn id(&self) -> String {
        blake3::derive_key(ID_CONTEXT, &self.0)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A fresh challenge nonce.
    pub fn challenge() -> Result<[u8; PROOF_LEN]> {
        let mut nonce = [0u8; PROOF_LEN];
        fill_random(&mut nonce)?;
        Ok(nonce)
    }

    /// The proof `prover` gives `verifier` for `nonce`.
    pub fn prove(&self, prover: &[u8], verifier: &[u8], nonce: &[u8; PROOF_LEN]) -> [u8; 32] {
        let key = blake3::derive_key(PROOF_CONTEXT, &self.0);
        let mut mac = blake3::Hasher::new_keyed(&key);
        for part in [prover, verifier] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(nonce);
        *mac.finalize().as_bytes()
    }

    /// Whether `proof` is the one a holder of this secret, `prover`, gives `verifier` for
    /// `nonce` (compared in constant time).
    pub fn check(
        &self,
        prover: &[u8],
        verifier: &[u8],
        nonce: &[u8; PROOF_LEN],
        proof: &[u8],
    ) -> bool {
        let Ok(proof) = <[u8; 32]>::try_from(proof) else {
            return false;
        };
        blake3::Hash::from_bytes(proof)
            == blake3::Hash::from_bytes(self.prove(prover, verifier, nonce))
    }
}

impl Drop for ClusterSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for ClusterSecret {}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterSecret(id {})", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_bound_to_secret_prover_verifier_and_nonce() {
        let s = ClusterSecret::from_bytes([1; 32]);
        let other = ClusterSecret::from_bytes([2; 32]);
        let n = [7; 32];
        let p = s.prove(b"alice", b"bob", &n);
        assert!(s.check(b"alice", b"bob", &n, &p));
        assert!(!other.check(b"alice", b"bob", &n, &p), "another cluster");
        assert!(
            !s.check(b"mallory", b"bob", &n, &p),
            "relayed by another prover"
        );
        assert!(
            !s.check(b"alice", b"carol", &n, &p),
            "replayed to another verifier"
        );
        assert!(!s.check(b"bob", b"alice", &n, &p), "reflected");
        assert!(
            !s.check(b"alice", b"bob", &[8; 32], &p),
            "another challenge"
        );
        assert!(!s.check(b"alice", b"bob", &n, &p[..31]), "short");
        // Length prefixes: moving bytes between the two ids changes the proof.
        assert_ne!(s.prove(b"ab", b"c", &n), s.prove(b"a", b"bc", &n));
    }

    #[test]
    fn hex_round_trips_and_the_id_hides_the_secret() {
        let s = ClusterSecret::generate().unwrap();
        let back = ClusterSecret::from_hex(&format!("  {}\n", s.to_hex())).unwrap();
        assert_eq!(back.to_hex(), s.to_hex());
        assert_eq!(back.id(), s.id());
        assert_eq!(s.id().len(), 16);
        assert!(!s.to_hex().contains(&s.id()));
        assert!(!format!("{s:?}").contains(&s.to_hex()[..16]));
        assert!(ClusterSecret::from_hex("zz").is_err());
        assert!(ClusterSecret::from_hex(&"g".repeat(64)).is_err());
        assert!(ClusterSecret::from_hex(&"é".repeat(32)).is_err());
        assert_ne!(
            ClusterSecret::challenge().unwrap(),
            ClusterSecret::challenge().unwrap()
        );
    }
}
