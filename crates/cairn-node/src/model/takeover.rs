//! The takeover certificate ([`Takeover`]): a signed statement that a bucket passes from one
//! owner key to another, and the bounds on a bucket's sequence numbers.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::identity::{self, Identity};
use crate::model::codec::encode;

/// How far one accepted head may move a bucket's sequence past the one held.
pub const MAX_SEQ_STEP: u64 = 1 << 32;

/// Sequence numbers are below this (so the next one never overflows).
pub const MAX_SEQ: u64 = 1 << 62;

const TAKEOVER_DOMAIN: &[u8] = b"cairn-bucket-takeover-v1\0";

/// What a takeover certificate states (its signed part).
#[derive(Serialize)]
struct Statement<'a> {
    bucket: &'a str,
    from: &'a ByteBuf,
    to: &'a ByteBuf,
    seq: u64,
}

/// A signed statement that `bucket` passes from the key `from` to the key `to`, starting at
/// sequence number `seq`. The signature covers `cairn-bucket-takeover-v1\0` followed by the
/// dag-cbor encoding of `{bucket, from, to, seq}`. It travels in the new owner's heads
/// ([`crate::model::heads::HeadPayload::takeover`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Takeover {
    /// The bucket.
    pub bucket: String,
    /// The previous owner's ed25519 public key.
    pub from: ByteBuf,
    /// The new owner's ed25519 public key.
    pub to: ByteBuf,
    /// The first sequence number under the new owner.
    pub seq: u64,
    /// Who signed: the previous owner or the cluster admin.
    pub signer_key: ByteBuf,
    /// The signature.
    pub signature: ByteBuf,
}

impl Takeover {
    fn statement_bytes(bucket: &str, from: &ByteBuf, to: &ByteBuf, seq: u64) -> Vec<u8> {
        let statement = Statement {
            bucket,
            from,
            to,
            seq,
        };
        let mut msg = TAKEOVER_DOMAIN.to_vec();
        msg.extend_from_slice(&encode(&statement).expect("a statement encodes"));
        msg
    }

    /// `signer`'s certificate that `bucket` passes from `from` to `to` at `seq`.
    pub fn sign(
        bucket: &str,
        from: [u8; 32],
        to: [u8; 32],
        seq: u64,
        signer: &Identity,
    ) -> Takeover {
        let (from, to) = (ByteBuf::from(from.to_vec()), ByteBuf::from(to.to_vec()));
        let signature = signer.sign(&Self::statement_bytes(bucket, &from, &to, seq));
        Takeover {
            bucket: bucket.to_owned(),
            from,
            to,
            seq,
            signer_key: ByteBuf::from(signer.public_key().to_vec()),
            signature: ByteBuf::from(signature.to_vec()),
        }
    }

    /// Whether the signature is `signer_key`'s.
    pub fn signature_ok(&self) -> bool {
        let msg = Self::statement_bytes(&self.bucket, &self.from, &self.to, self.seq);
        identity::verify(&self.signer_key, &msg, &self.signature)
    }
}
