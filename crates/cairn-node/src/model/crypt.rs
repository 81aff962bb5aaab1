//! The encryption records: a bucket's sealed key ([`BucketCrypt`]) and how an object is
//! encrypted ([`ObjectCrypt`]: its wrapped data key, STREAM pieces and shares). The keys in
//! clear never appear here.

use cairn_crypt::segment;
use cairn_crypt::wrap::{Sealed, Wrapped};
use serde::{Deserialize, Serialize};

/// A bucket's key, sealed to its owner, and whether writes are encrypted by default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCrypt {
    /// Every write is encrypted (default bucket encryption).
    pub default: bool,
    /// The bucket key sealed to each key holder's X25519 public key.
    pub keys: Vec<Sealed>,
}

/// How an object's data key is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyWrap {
    /// Wrapped with the bucket key.
    Bucket(Wrapped),
    /// Wrapped with the customer's SSE-C key; `key_md5` is the base64 MD5 of that key.
    Customer {
        /// The wrapped data key.
        wrapped: Wrapped,
        /// Base64 MD5 of the customer key, as S3 sends it.
        key_md5: String,
    },
}

/// One independently encrypted stretch of the object (a PUT's body, or a part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CryptPiece {
    /// STREAM nonce prefix.
    #[serde(with = "serde_bytes")]
    pub prefix: [u8; 16],
    /// Plaintext bytes.
    pub plain: u64,
}

/// The data key sealed for another user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The sealed data key (`sealed.to` is the recipient's X25519 key).
    pub sealed: Sealed,
    /// The recipient's public key, as given to `share`.
    pub to: String,
    /// After this (Unix ms) the share is not renewed on new versions, and the recipient's node
    /// stops using it.
    pub expires_ms: Option<i64>,
}

/// How an object is encrypted: stored in its S3 record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCrypt {
    /// Plaintext segment size.
    pub segment: u32,
    /// The data key.
    pub key: KeyWrap,
    /// The STREAM pieces, in order.
    pub pieces: Vec<CryptPiece>,
    /// Users the data key is sealed for.
    #[serde(default)]
    pub shares: Vec<Share>,
}

impl ObjectCrypt {
    /// Bytes of ciphertext (what the DAG holds).
    pub fn stored_size(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| segment::ciphertext_size(p.plain, self.segment))
            .sum()
    }
}
