//! Pure (sans-I/O) cryptography for Cairn: no files, no sockets, no clocks — the only outside
//! input is the OS random source (`getrandom`), and time is always passed in as `now_ms`.
//!
//! This module owns the symmetric [`Key`] type, the crate's one error type [`CryptError`] and
//! the random-bytes helper; the layers live in submodules:
//! - [`segment`]: STREAM-style segmented XChaCha20-Poly1305 for object bodies, with range plans;
//! - [`mod@wrap`]: key wrapping under a KEK and sealing a key to a user's X25519 public key;
//! - [`identity`]: user key pairs (ed25519 for signatures, X25519 for sealed keys) and their
//!   text forms;
//! - [`login`]: signed login messages with a replay guard, and node-issued bearer tokens;
//! - [`membership`]: the cluster secret and the challenge-response proofs members exchange.
//!
//! Secrets ([`Key`], [`identity::Identity`], buffered plaintext) are zeroized on drop and their
//! `Debug` output never shows secret bytes.

#![warn(missing_docs)]

pub mod identity;
pub mod login;
pub mod membership;
pub mod segment;
pub mod wrap;

pub use identity::{Identity, PublicId};
pub use login::{check_token, issue_token, login_message, verify_login};
pub use membership::ClusterSecret;
pub use segment::{Decryptor, Encryptor, Params, RangePlan, plan_range};
pub use wrap::{Sealed, Wrapped, open, seal, unwrap, wrap};

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Everything that can go wrong in this crate. Messages are meant to be shown to an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// A tag did not verify.
    #[error("ciphertext failed authentication: tampered, reordered or from another object")]
    Integrity,
    /// The stream ended early.
    #[error("ciphertext is truncated: the stream ended before the last expected segment")]
    Truncated,
    /// Input of the wrong shape or size.
    #[error("malformed input: {0}")]
    Malformed(String),
    /// An ed25519 signature did not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A token is past its expiry.
    #[error("token has expired")]
    Expired,
    /// A login message seen before.
    #[error("login message was already used (replay)")]
    Replay,
    /// A login signed too far from this clock.
    #[error("login time is too far from the server's clock")]
    Skew,
    /// The OS random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// A sealed key for another X25519 key.
    #[error("sealed key is addressed to another recipient")]
    NotForMe,
}

/// Result alias used throughout the crate.
pub type Result<T, E = CryptError> = std::result::Result<T, E>;

/// Fill `buf` from the OS random source.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| CryptError::Random(e.to_string()))
}

/// A 256-bit symmetric key (object data key, KEK or node MAC key). Zeroized on drop; `Debug`
/// prints no key material. Deliberately not `PartialEq`: compare `as_bytes()` in tests only.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    /// A fresh key from the OS random source.
    pub fn random() -> Result<Key> {
        let mut k = Key([0; 32]);
        fill_random(&mut k.0)?;
        Ok(k)
    }

    /// The key with these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// Its bytes (to wrap or derive from; never to log).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Zeroize for Key {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_differ_and_debug_is_redacted() {
        let a = Key::random().unwrap();
        let b = Key::random().unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        let k = Key::from_bytes([0xab; 32]);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("ab") && !dbg.contains("171"), "{dbg}");
        assert_eq!(k.clone().as_bytes(), &[0xab; 32]);
    }

    #[test]
    fn zeroize_clears_key() {
        let mut k = Key::from_bytes([7; 32]);
        k.zeroize();
        assert_eq!(k.as_bytes(), &[0; 32]);
    }
}
