//! Buckets as signed IPLD: the version and object records ([`VersionRecord`],
//! [`ObjectRecord`]), the signed head ([`HeadPayload`], [`SignedHead`]), a held head
//! (`HeldHead`, the `records` table) and a shared bucket as it travels. Takeover
//! certificates are in [`crate::model::takeover`].

use cairn_dag::Cid;
use serde::{Deserialize, Serialize};

use crate::NodeError;
use crate::identity::{self, Identity};
use crate::model::codec::{decode, encode};
use crate::model::records::{BucketRecord, ObjectMeta};

/// The dag-cbor record of one bucket version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Always `cairn/bucket-version/1`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Bucket name.
    pub bucket: String,
    /// Sequence number within the bucket.
    pub seq: u64,
    /// Commit time, Unix milliseconds.
    pub time_ms: u64,
    /// The UnixFS directory of the objects.
    pub tree: Cid,
    /// UnixFS directory of escaped keys → [`ObjectRecord`] blocks.
    pub objects: Cid,
    /// The previous version's record.
    pub prev: Option<Cid>,
    /// The bucket's record at this version (owner, ACL, policy, versioning, redundancy,
    /// sealed bucket key): mirrors take it from here, covered by the head's signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<BucketRecord>,
}

pub(crate) const RECORD_KIND: &str = "cairn/bucket-version/1";

const HEAD_DOMAIN: &[u8] = b"cairn-bucket-head-v1\0";

/// The dag-cbor record of one object in a bucket version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Object key.
    pub key: String,
    /// Root of the object's UnixFS DAG.
    pub data: Cid,
    /// Its S3 metadata.
    pub meta: ObjectMeta,
}

/// What a signed head states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadPayload {
    /// Bucket name.
    pub bucket: String,
    /// Sequence number of the version.
    pub seq: u64,
    /// Commit time, Unix milliseconds.
    pub time_ms: u64,
    /// The bucket's UnixFS root.
    pub tree: Cid,
    /// The version record.
    pub record: Cid,
    /// Set on the heads of a bucket taken over (`cairn bucket promote`): the previous owner's
    /// public key. Informational only (the certificate, [`HeadPayload::takeover`], is what
    /// counts): nothing acts on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_from: Option<serde_bytes::ByteBuf>,
    /// BLAKE3 of the bucket record in this version's [`VersionRecord`] (see
    /// [`settings_digest`]): a change of the record alone makes a new head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_bytes::ByteBuf>,
    /// Set on the head that ends a bucket: its owner deleted it. Mirrors drop the bucket; a
    /// bucket of that name made again later continues the sequence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Set on the heads of a bucket taken over: the certificate that passed it to the signer
    /// of this head (see [`crate::ownership`]); a node that pinned the previous owner follows
    /// the new one when it accepts it. Absent from heads of a bucket never taken over (which
    /// encode and verify as before the field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover: Option<crate::model::takeover::Takeover>,
}

/// What a head's `settings` says of a bucket record: BLAKE3 of its dag-cbor encoding.
pub fn settings_digest(record: &BucketRecord) -> Result<[u8; 32], NodeError> {
    Ok(*blake3::hash(&encode(record)?).as_bytes())
}

/// A bucket head signed by a node's ed25519 key (dag-cbor); the signature covers
/// `cairn-bucket-head-v1\0` followed by the dag-cbor encoding of the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    /// What is signed.
    pub payload: HeadPayload,
    /// The signer's ed25519 public key.
    pub public_key: serde_bytes::ByteBuf,
    /// The signature.
    pub signature: serde_bytes::ByteBuf,
}

impl SignedHead {
    fn signed_bytes(payload: &HeadPayload) -> Result<Vec<u8>, NodeError> {
        let mut msg = HEAD_DOMAIN.to_vec();
        msg.extend_from_slice(&encode(payload)?);
        Ok(msg)
    }

    /// Signs `payload` with `identity`.
    pub fn sign(payload: HeadPayload, identity: &Identity) -> Result<SignedHead, NodeError> {
        let signature = identity.sign(&Self::signed_bytes(&payload)?);
        Ok(SignedHead {
            payload,
            public_key: serde_bytes::ByteBuf::from(identity.public_key().to_vec()),
            signature: serde_bytes::ByteBuf::from(signature.to_vec()),
        })
    }

    /// Decodes a head and checks its signature (against its own key, and `expected_key` if
    /// given).
    pub fn verify(bytes: &[u8], expected_key: Option<&[u8]>) -> Result<SignedHead, NodeError> {
        let head: SignedHead = decode(bytes)?;
        let msg = Self::signed_bytes(&head.payload)?;
        let key_ok = expected_key.is_none_or(|k| k == head.public_key.as_slice());
        if !key_ok || !identity::verify(&head.public_key, &msg, &head.signature) {
            return Err(NodeError::Unsupported(
                "bad signature on bucket head".into(),
            ));
        }
        Ok(head)
    }

    /// The dag-cbor bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, NodeError> {
        encode(self)
    }
}

/// One shared bucket: its signed head, and (from the owner) its record. Mirrors take the record
/// from the signed version ([`VersionRecord::settings`]) only: this one is not covered by the
/// signature and is never used here (older nodes read it for heads from before the settings
/// were signed). A tombstone head (the owner deleted the bucket) comes without one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SharedBucket {
    #[serde(with = "serde_bytes")]
    pub(crate) head: Vec<u8>,
    pub(crate) bucket: Option<BucketRecord>,
}

/// A head held for a bucket (the record `head/BUCKET`): the newest accepted, and the owner it
/// pinned. Records written before owners were pinned have none: their head's signer is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HeldHead {
    #[serde(with = "serde_bytes")]
    pub(crate) head: Vec<u8>,
    /// Kept by older versions; never used.
    #[serde(default)]
    pub(crate) bucket: Option<BucketRecord>,
    /// The pinned owner's public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<serde_bytes::ByteBuf>,
    /// The `seq` of the takeover certificate that pinned it (0: none).
    #[serde(default)]
    pub(crate) epoch: u64,
}

/// record key (`head/BUCKET`) → the head held for that bucket: for other nodes (cluster
/// replica sets), and this node's own tombstones, shared from here.
pub(crate) const RECORDS: cairn_store::Table<HeldHead> = cairn_store::Table::new("records");
