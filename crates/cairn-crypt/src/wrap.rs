//! Key wrapping (a data key encrypted under a key-encryption key) and sealing a key to a user's
//! X25519 public key.
//!
//! - [`wrap`]/[`unwrap`]: XChaCha20-Poly1305 with a random 24-byte nonce; AAD =
//!   `"cairn-crypt/wrap/v1\0"` ‖ `context`. The caller's context (e.g. bucket ‖ key ‖ version)
//!   binds the wrapped key to one place: moved elsewhere it fails with `Integrity`.
//! - [`seal`]/[`open`]: a fresh ephemeral X25519 key per seal; KEK =
//!   `blake3::derive_key("cairn-crypt seal x25519 kek v1", shared ‖ ephemeral_pub ‖ recipient_pub)`,
//!   then [`wrap`] with the same context. A non-contributory (all-zero) shared secret — a
//!   low-order point on either side — is refused as `Malformed`.

use chacha20poly1305::{AeadInOut, Tag, XNonce};
use serde::{Deserialize, Serialize};
use x25519_dalek::{PublicKey, SharedSecret, StaticSecret};
use zeroize::Zeroizing;

use crate::identity::Identity;
use crate::segment::cipher;
use crate::{CryptError, Key, Result, fill_random};

const WRAP_LABEL: &[u8; 20] = b"cairn-crypt/wrap/v1\0";
const SEAL_KDF: &str = "cairn-crypt seal x25519 kek v1";
const WRAPPED_LEN: usize = 32 + 16;

/// A 256-bit key encrypted under a KEK: `ct` is 32 bytes of ciphertext ‖ 16-byte tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrapped {
    /// The XChaCha20-Poly1305 nonce.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 24],
    /// The wrapped key and its tag.
    #[serde(with = "serde_bytes")]
    pub ct: Vec<u8>,
}

/// A key sealed to the X25519 public key `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The recipient's X25519 public key.
    #[serde(with = "serde_bytes")]
    pub to: [u8; 32],
    /// The ephemeral X25519 public key of the sealing.
    #[serde(with = "serde_bytes")]
    pub ephemeral: [u8; 32],
    /// The key, wrapped under the shared secret.
    pub wrapped: Wrapped,
}

fn aad(context: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(WRAP_LABEL.len() + context.len());
    a.extend_from_slice(WRAP_LABEL);
    a.extend_from_slice(context);
    a
}

/// Encrypt `key` under `kek`, bound to `context`.
pub fn wrap(kek: &Key, key: &Key, context: &[u8]) -> Result<Wrapped> {
    let mut nonce = [0u8; 24];
    fill_random(&mut nonce)?;
    let mut buf = Zeroizing::new(*key.as_bytes());
    let tag = cipher(kek)
        .encrypt_inout_detached(
            &XNonce::from(nonce),
            &aad(context),
            buf.as_mut_slice().into(),
        )
        .map_err(|_| CryptError::Malformed("context is too long".into()))?;
    let mut ct = Vec::with_capacity(WRAPPED_LEN);
    ct.extend_from_slice(buf.as_slice());
    ct.extend_from_slice(&tag);
    Ok(Wrapped { nonce, ct })
}

/// Decrypt a wrapped key; `Integrity` for a wrong KEK, wrong context or any tampering.
pub fn unwrap(kek: &Key, w: &Wrapped, context: &[u8]) -> Result<Key> {
    if w.ct.len() != WRAPPED_LEN {
        return Err(CryptError::Malformed(format!(
            "wrapped key is {} bytes, expected {WRAPPED_LEN}",
            w.ct.len()
        )));
    }
    let mut buf = Zeroizing::new([0u8; 32]);
    buf.copy_from_slice(&w.ct[..32]);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&w.ct[32..]);
    cipher(kek)
        .decrypt_inout_detached(
            &XNonce::from(w.nonce),
            &aad(context),
            buf.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .map_err(|_| CryptError::Integrity)?;
    Ok(Key::from_bytes(*buf))
}

fn seal_kek(shared: &SharedSecret, ephemeral: &[u8; 32], to: &[u8; 32]) -> Result<Key> {
    if !shared.was_contributory() {
        return Err(CryptError::Malformed(
            "X25519 key is a low-order point (all-zero shared secret)".into(),
        ));
    }
    let mut h = blake3::Hasher::new_derive_key(SEAL_KDF);
    h.update(shared.as_bytes()).update(ephemeral).update(to);
    Ok(Key::from_bytes(*h.finalize().as_bytes()))
}

/// Seal `key` to the recipient's X25519 public key, bound to `context`.
pub fn seal(to: &[u8; 32], key: &Key, context: &[u8]) -> Result<Sealed> {
    let mut eph = Zeroizing::new([0u8; 32]);
    fill_random(eph.as_mut_slice())?;
    let eph = StaticSecret::from(*eph);
    let ephemeral = PublicKey::from(&eph).to_bytes();
    let kek = seal_kek(&eph.diffie_hellman(&PublicKey::from(*to)), &ephemeral, to)?;
    Ok(Sealed {
        to: *to,
        ephemeral,
        wrapped: wrap(&kek, key, context)?,
    })
}

/// Open a key sealed to `me`; `NotForMe` when it is addressed to another key.
pub fn open(me: &Identity, s: &Sealed, context: &[u8]) -> Result<Key> {
    if s.to != me.public().boxk {
        return Err(CryptError::NotForMe);
    }
    let shared = me
        .box_secret()
        .diffie_hellman(&PublicKey::from(s.ephemeral));
    let kek = seal_kek(&shared, &s.ephemeral, &s.to)?;
    unwrap(&kek, &s.wrapped, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Key>) -> CryptError {
        r.expect_err("expected an error")
    }

    #[test]
    fn wrap_round_trip_and_binding() {
        let (kek, key) = (Key::random().unwrap(), Key::random().unwrap());
        let w = wrap(&kek, &key, b"bucket/a").unwrap();
        assert_eq!(w.ct.len(), 48);
        assert_eq!(
            unwrap(&kek, &w, b"bucket/a").unwrap().as_bytes(),
            key.as_bytes()
        );
        assert_ne!(
            wrap(&kek, &key, b"bucket/a").unwrap(),
            w,
            "nonce must be fresh"
        );
        assert_eq!(err(unwrap(&kek, &w, b"bucket/b")), CryptError::Integrity);
        let other = Key::random().unwrap();
        assert_eq!(err(unwrap(&other, &w, b"bucket/a")), CryptError::Integrity);
        for i in 0..48 {
            let mut t = w.clone();
            t.ct[i] ^= 0x80;
            assert_eq!(err(unwrap(&kek, &t, b"bucket/a")), CryptError::Integrity);
        }
        let mut t = w.clone();
        t.nonce[3] ^= 1;
        assert_eq!(err(unwrap(&kek, &t, b"bucket/a")), CryptError::Integrity);
        let mut t = w.clone();
        t.ct.pop();
        assert!(matches!(
            unwrap(&kek, &t, b"bucket/a"),
            Err(CryptError::Malformed(_))
        ));
    }

    #[test]
    fn seal_open_round_trip_and_refusals() {
        let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let key = Key::random().unwrap();
        let s = seal(&alice.public().boxk, &key, b"obj").unwrap();
        assert_eq!(open(&alice, &s, b"obj").unwrap().as_bytes(), key.as_bytes());
        assert_eq!(err(open(&bob, &s, b"obj")), CryptError::NotForMe);
        assert_eq!(err(open(&alice, &s, b"other")), CryptError::Integrity);
        // Readdressing a sealed key does not help: the shared secret differs.
        let readdressed = Sealed {
            to: bob.public().boxk,
            ..s.clone()
        };
        assert_eq!(err(open(&bob, &readdressed, b"obj")), CryptError::Integrity);
        let mut t = s.clone();
        t.ephemeral[0] ^= 2;
        assert!(open(&alice, &t, b"obj").is_err());
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Sealed>(&json).unwrap(), s);
    }

    #[test]
    fn low_order_points_are_refused() {
        let key = Key::random().unwrap();
        assert!(matches!(
            seal(&[0; 32], &key, b""),
            Err(CryptError::Malformed(_))
        ));
        let me = Identity::generate().unwrap();
        let mut s = seal(&me.public().boxk, &key, b"").unwrap();
        s.ephemeral = [0; 32];
        assert!(matches!(open(&me, &s, b""), Err(CryptError::Malformed(_))));
    }
}
