//! Signed logins and node-issued bearer tokens. Time is always passed in (`now_ms`, Unix ms).
//!
//! - Login message: `"cairn-login-v2\0"` ‖ the node's ed25519 key (32 bytes: the
//!   *audience*, what `GET /api/v1/pubkey` answers) ‖ `epoch_ms` as u64 big-endian, signed with
//!   the user's ed25519 key ([`Identity::sign_login`]). A login signed for one node does not
//!   verify at another. [`verify_login`] refuses, in this order: an epoch more than `window_ms`
//!   from `now_ms` (`Skew`, checked first because it is cheap) and a signature that does not
//!   verify strictly for this audience (`BadSignature`). Refusing a replay within the window
//!   needs memory that outlives a restart: the node keeps it (`Access::remember_login`).
//! - Token: `"ct1."` ‖ base64url-nopad(user 32 ‖ expires_ms u64 BE 8 ‖ mac 32) — 100
//!   characters. mac = blake3 keyed hash under `derive_key("cairn-crypt token mac key v1",
//!   node_key)` of `"cairn-token-v1\0"` ‖ user ‖ expires. The comparison is constant time
//!   (`blake3::Hash` equality); the MAC is checked before expiry, so a forged token is
//!   `Integrity` whatever its date, and a valid one is `Expired` from `now_ms >= expires_ms`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::identity::{Identity, PublicId};
use crate::{CryptError, Key, Result};

const LOGIN_LABEL: &[u8; 15] = b"cairn-login-v2\0";
const TOKEN_PREFIX: &str = "ct1.";
const TOKEN_KDF: &str = "cairn-crypt token mac key v1";
const TOKEN_LABEL: &[u8; 15] = b"cairn-token-v1\0";
const TOKEN_BYTES: usize = 32 + 8 + 32;
const TOKEN_B64: usize = TOKEN_BYTES / 3 * 4;

/// The bytes a user signs to log in at the node whose ed25519 key is `audience`, at
/// `epoch_ms`.
pub fn login_message(audience: &[u8; 32], epoch_ms: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(LOGIN_LABEL.len() + 32 + 8);
    m.extend_from_slice(LOGIN_LABEL);
    m.extend_from_slice(audience);
    m.extend_from_slice(&epoch_ms.to_be_bytes());
    m
}

impl Identity {
    /// Signature over [`login_message`]`(audience, epoch_ms)`.
    pub fn sign_login(&self, audience: &[u8; 32], epoch_ms: u64) -> [u8; 64] {
        self.sign(&login_message(audience, epoch_ms))
    }
}

/// Checks a login by `user` for the node `audience`, signed for `epoch_ms`: within
/// `window_ms` of `now_ms` (else `Skew`) and strictly verified (else `BadSignature`). Whether
/// it was seen before is the caller's memory.
pub fn verify_login(
    user: &PublicId,
    audience: &[u8; 32],
    epoch_ms: u64,
    sig: &[u8; 64],
    now_ms: u64,
    window_ms: u64,
) -> Result<()> {
    if epoch_ms.abs_diff(now_ms) > window_ms {
        return Err(CryptError::Skew);
    }
    user.verify(&login_message(audience, epoch_ms), sig)
}

fn token_mac(node_key: &Key, user: &[u8; 32], expires_ms: u64) -> blake3::Hash {
    let mac_key = zeroize::Zeroizing::new(blake3::derive_key(TOKEN_KDF, node_key.as_bytes()));
    let mut h = blake3::Hasher::new_keyed(&mac_key);
    h.update(TOKEN_LABEL)
        .update(user)
        .update(&expires_ms.to_be_bytes());
    h.finalize()
}

/// A bearer token for `user` valid until `expires_ms`.
pub fn issue_token(node_key: &Key, user: &[u8; 32], expires_ms: u64) -> String {
    let mut b = [0u8; TOKEN_BYTES];
    b[..32].copy_from_slice(user);
    b[32..40].copy_from_slice(&expires_ms.to_be_bytes());
    b[40..].copy_from_slice(token_mac(node_key, user, expires_ms).as_bytes());
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(b))
}

/// Check a token; returns the user and the expiry.
pub fn check_token(node_key: &Key, token: &str, now_ms: u64) -> Result<([u8; 32], u64)> {
    let body = token
        .strip_prefix(TOKEN_PREFIX)
        .filter(|b| b.len() == TOKEN_B64)
        .ok_or_else(|| CryptError::Malformed("not a ct1 token".into()))?;
    let b = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| CryptError::Malformed(format!("token: bad base64url: {e}")))?;
    if b.len() != TOKEN_BYTES {
        return Err(CryptError::Malformed("token has the wrong length".into()));
    }
    let mut user = [0u8; 32];
    user.copy_from_slice(&b[..32]);
    let mut exp = [0u8; 8];
    exp.copy_from_slice(&b[32..40]);
    let expires_ms = u64::from_be_bytes(exp);
    let mut mac = [0u8; 32];
    mac.copy_from_slice(&b[40..]);
    if token_mac(node_key, &user, expires_ms) != blake3::Hash::from(mac) {
        return Err(CryptError::Integrity);
    }
    if now_ms >= expires_ms {
        return Err(CryptError::Expired);
    }
    Ok((user, expires_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: u64 = 30_000;

    #[test]
    fn logins_refuse_skew_bad_signatures_and_other_nodes() {
        let (id, other) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let (p, now) = (id.public(), 1_700_000_000_000);
        let (here, there) = ([1u8; 32], [2u8; 32]);
        let check = |epoch, sig: &[u8; 64]| verify_login(&p, &here, epoch, sig, now, W);
        assert_eq!(login_message(&here, 1).len(), 15 + 32 + 8);
        check(now - 5, &id.sign_login(&here, now - 5)).unwrap();
        for e in [now - W - 1, now + W + 1, 0, u64::MAX] {
            assert_eq!(check(e, &id.sign_login(&here, e)), Err(CryptError::Skew));
        }
        check(now - W, &id.sign_login(&here, now - W)).unwrap();
        check(now + W, &id.sign_login(&here, now + W)).unwrap();
        for bad in [
            id.sign_login(&here, now + 1),
            other.sign_login(&here, now),
            id.sign(b"something else"),
            // signed for another node: not a login here (M6)
            id.sign_login(&there, now),
        ] {
            assert_eq!(check(now, &bad), Err(CryptError::BadSignature));
        }
    }

    #[test]
    fn token_round_trip_expiry_and_other_node() {
        let (k, user) = (Key::random().unwrap(), [7u8; 32]);
        let t = issue_token(&k, &user, 5000);
        assert!(t.starts_with("ct1.") && t.len() == 100, "{t}");
        assert_eq!(check_token(&k, &t, 4999), Ok((user, 5000)));
        assert_eq!(check_token(&k, &t, 5000), Err(CryptError::Expired));
        let other = Key::random().unwrap();
        assert_eq!(check_token(&other, &t, 0), Err(CryptError::Integrity));
        assert!(matches!(
            check_token(&k, "", 0),
            Err(CryptError::Malformed(_))
        ));
        assert!(matches!(
            check_token(&k, &t[..99], 0),
            Err(CryptError::Malformed(_))
        ));
        assert!(matches!(
            check_token(&k, &format!("{t}A"), 0),
            Err(CryptError::Malformed(_))
        ));
    }

    #[test]
    fn every_flipped_character_is_refused() {
        let k = Key::random().unwrap();
        let t = issue_token(&k, &[3u8; 32], u64::MAX);
        for i in 0..t.len() {
            for rep in ['A', 'z', '_', '.', '='] {
                let mut chars: Vec<char> = t.chars().collect();
                if chars[i] == rep {
                    continue;
                }
                chars[i] = rep;
                let bad: String = chars.into_iter().collect();
                assert!(check_token(&k, &bad, 0).is_err(), "accepted change at {i}");
            }
        }
    }

    proptest! {
        #[test]
        fn tokens_round_trip(user in any::<[u8; 32]>(), exp in 1u64.., key in any::<[u8; 32]>()) {
            let k = Key::from_bytes(key);
            let t = issue_token(&k, &user, exp);
            prop_assert_eq!(check_token(&k, &t, exp - 1), Ok((user, exp)));
            // Extend the expiry, keep the MAC.
            let mut b = URL_SAFE_NO_PAD.decode(&t[4..]).unwrap();
            b[32..40].copy_from_slice(&exp.wrapping_add(1).to_be_bytes());
            let forged = format!("ct1.{}", URL_SAFE_NO_PAD.encode(&b));
            prop_assert_eq!(check_token(&k, &forged, 0), Err(CryptError::Integrity));
        }
    }
}
