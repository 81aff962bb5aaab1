//! User identities: an ed25519 signing key and an independent X25519 key for sealed keys, and
//! their text forms.
//!
//! Text forms (base64url, no padding, over 64 bytes):
//! - secret: `"csk1"` ‖ b64(ed25519 secret seed 32 ‖ X25519 secret 32) — 90 characters, a file
//!   the binary writes mode 0600 outside the data folder; surrounding whitespace is ignored on
//!   read. [`Identity::to_text`] returns it in a `Zeroizing<String>`.
//! - public: `"cpk1"` ‖ b64(ed25519 public 32 ‖ X25519 public 32) — 90 characters; parsing
//!   refuses a wrong prefix, a wrong length, an ed25519 key that is not a valid point, or a
//!   weak (small-order) one. [`PublicId`] (de)serializes as this string.
//!
//! Signatures are verified with `verify_strict` (no malleable or small-order forms).

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::{CryptError, Result, fill_random};

/// The text prefix of a secret key (`csk1…`).
pub const SECRET_PREFIX: &str = "csk1";
/// The text prefix of a public key (`cpk1…`).
pub const PUBLIC_PREFIX: &str = "cpk1";

/// A user's key pair. Both secrets are zeroized on drop; `Debug` shows only the public id.
#[derive(Clone)]
pub struct Identity {
    sign: SigningKey,
    boxs: StaticSecret,
    public: PublicId,
}

/// A user's public keys: `sign` (ed25519) and `boxk` (X25519).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PublicId {
    /// The ed25519 verifying key.
    pub sign: [u8; 32],
    /// The X25519 public key keys are sealed to.
    pub boxk: [u8; 32],
}

fn decode64(text: &str, prefix: &str, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let body = text
        .strip_prefix(prefix)
        .ok_or_else(|| CryptError::Malformed(format!("{what} must start with {prefix:?}")))?;
    let bytes = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| CryptError::Malformed(format!("{what}: bad base64url: {e}")))?,
    );
    if bytes.len() != 64 {
        return Err(CryptError::Malformed(format!(
            "{what} holds {} bytes, expected 64",
            bytes.len()
        )));
    }
    Ok(bytes)
}

impl Identity {
    /// Fresh random keys.
    pub fn generate() -> Result<Identity> {
        let mut b = Zeroizing::new([0u8; 64]);
        fill_random(b.as_mut_slice())?;
        Ok(Self::from_secret_bytes(b.as_slice()))
    }

    fn from_secret_bytes(b: &[u8]) -> Identity {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&b[..32]);
        let mut x = Zeroizing::new([0u8; 32]);
        x.copy_from_slice(&b[32..64]);
        let sign = SigningKey::from_bytes(&seed);
        let boxs = StaticSecret::from(*x);
        let public = PublicId {
            sign: sign.verifying_key().to_bytes(),
            boxk: PublicKey::from(&boxs).to_bytes(),
        };
        Identity { sign, boxs, public }
    }

    /// Its public keys.
    pub fn public(&self) -> PublicId {
        self.public
    }

    /// ed25519 signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.sign.sign(msg).to_bytes()
    }

    /// The X25519 secret, for [`crate::wrap::open`].
    pub(crate) fn box_secret(&self) -> &StaticSecret {
        &self.boxs
    }

    /// The secret text form (`csk1…`).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut b = Zeroizing::new([0u8; 64]);
        b[..32].copy_from_slice(self.sign.as_bytes());
        b[32..].copy_from_slice(self.boxs.as_bytes());
        let mut s = Zeroizing::new(String::with_capacity(96));
        s.push_str(SECRET_PREFIX);
        URL_SAFE_NO_PAD.encode_string(b.as_slice(), &mut s);
        s
    }

    /// Parse the secret text form; surrounding whitespace (a trailing newline) is ignored.
    pub fn from_text(text: &str) -> Result<Identity> {
        let b = decode64(text.trim(), SECRET_PREFIX, "identity")?;
        Ok(Self::from_secret_bytes(&b))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, <secret redacted>)", self.public)
    }
}

impl PublicId {
    /// Strict ed25519 verification of `sig` over `msg` by `self.sign`.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> Result<()> {
        let vk = VerifyingKey::from_bytes(&self.sign).map_err(|_| CryptError::BadSignature)?;
        vk.verify_strict(msg, &Signature::from_bytes(sig))
            .map_err(|_| CryptError::BadSignature)
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&self.sign);
        b[32..].copy_from_slice(&self.boxk);
        write!(f, "{PUBLIC_PREFIX}{}", URL_SAFE_NO_PAD.encode(b))
    }
}

impl FromStr for PublicId {
    type Err = CryptError;
    fn from_str(s: &str) -> Result<PublicId> {
        let b = decode64(s, PUBLIC_PREFIX, "public id")?;
        let mut id = PublicId {
            sign: [0; 32],
            boxk: [0; 32],
        };
        id.sign.copy_from_slice(&b[..32]);
        id.boxk.copy_from_slice(&b[32..]);
        match VerifyingKey::from_bytes(&id.sign) {
            Ok(vk) if !vk.is_weak() => Ok(id),
            Ok(_) => Err(CryptError::Malformed("public id: weak ed25519 key".into())),
            Err(_) => Err(CryptError::Malformed(
                "public id: invalid ed25519 key".into(),
            )),
        }
    }
}

impl serde::Serialize for PublicId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_keeps_keys() {
        let id = Identity::generate().unwrap();
        let text = id.to_text();
        assert!(text.starts_with("csk1") && text.len() == 90, "{}", *text);
        let back = Identity::from_text(&format!("{}\n", *text)).unwrap();
        assert_eq!(back.public(), id.public());
        assert_eq!(back.sign(b"m"), id.sign(b"m"));
        assert_eq!(back.box_secret().to_bytes(), id.box_secret().to_bytes());
        assert_ne!(id.public(), Identity::generate().unwrap().public());
        let dbg = format!("{id:?}");
        assert!(dbg.contains("cpk1") && !dbg.contains(&text[4..20]), "{dbg}");
    }

    #[test]
    fn bad_secret_text_is_refused() {
        let text = Identity::generate().unwrap().to_text();
        for bad in [
            format!("cpk1{}", &text[4..]),
            text[..89].to_string(),
            format!("{}AA", *text),
            format!("{}!", &text[..89]),
            String::new(),
        ] {
            assert!(matches!(
                Identity::from_text(&bad),
                Err(CryptError::Malformed(_))
            ));
        }
    }

    #[test]
    fn public_id_text_and_serde() {
        let p = Identity::generate().unwrap().public();
        let s = p.to_string();
        assert!(s.starts_with("cpk1") && s.len() == 90);
        assert_eq!(s.parse::<PublicId>().unwrap(), p);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<PublicId>(&json).unwrap(), p);
        assert!(serde_json::from_str::<PublicId>("\"cpk1AAAA\"").is_err());
        assert!(format!("csk1{}", &s[4..]).parse::<PublicId>().is_err());
        assert!(s[..88].parse::<PublicId>().is_err());
    }

    #[test]
    fn invalid_or_weak_signing_keys_are_refused() {
        let boxk = [9; 32];
        // The identity point (small order).
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let t = PublicId { sign: weak, boxk }.to_string();
        assert!(matches!(
            t.parse::<PublicId>(),
            Err(CryptError::Malformed(_))
        ));
        // Some y coordinate that has no point on the curve.
        let invalid = (2u8..=255)
            .map(|b| [b; 32].map(|x| x & 0x7f))
            .find(|k| VerifyingKey::from_bytes(k).is_err())
            .unwrap();
        let t = PublicId {
            sign: invalid,
            boxk,
        }
        .to_string();
        assert!(matches!(
            t.parse::<PublicId>(),
            Err(CryptError::Malformed(_))
        ));
    }

    #[test]
    fn sign_and_verify() {
        let id = Identity::generate().unwrap();
        let sig = id.sign(b"hello");
        id.public().verify(b"hello", &sig).unwrap();
        assert_eq!(
            id.public().verify(b"hellO", &sig),
            Err(CryptError::BadSignature)
        );
        let mut bad = sig;
        bad[10] ^= 1;
        assert_eq!(
            id.public().verify(b"hello", &bad),
            Err(CryptError::BadSignature)
        );
        let other = Identity::generate().unwrap().public();
        assert_eq!(other.verify(b"hello", &sig), Err(CryptError::BadSignature));
    }
}
