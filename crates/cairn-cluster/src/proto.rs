//! `/cairn/piece/1.0.0` messages (pure): what one cluster node asks another about pieces, and
//! the answers, as dag-cbor. The network layer carries them as opaque bytes.

use cairn_dag::Cid;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ClusterError;

/// Largest request accepted (a few shards of at most 1 MiB each plus a manifest).
pub const MAX_REQUEST: usize = 8 << 20;

/// A block on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBlock {
    /// Its CID (the receiver verifies the bytes against it).
    pub cid: Cid,
    /// Its bytes.
    pub data: ByteBuf,
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Keep these pieces durably; `stripe` is the manifest they are shards of (`None`: whole
    /// replicas). Answered only after the receiver's commit.
    Put {
        /// The pieces.
        pieces: Vec<WireBlock>,
        /// The stripe manifest block.
        stripe: Option<WireBlock>,
        /// For whole replicas: how many copies the cluster keeps of them (a bucket's own
        /// policy); absent: the cluster's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copies: Option<u8>,
    },
    /// The bytes of a block held here (as a piece or otherwise).
    Get {
        /// Which block.
        cid: Cid,
    },
    /// Which of these blocks are held here (a soft check).
    Has {
        /// The blocks.
        cids: Vec<Cid>,
    },
    /// Which of these blocks are kept here as pieces (copies cached by reads do not count:
    /// GC may drop them).
    Pieces {
        /// The blocks.
        cids: Vec<Cid>,
    },
    /// Whether this node has `cid`, and the manifest of the stripe that can rebuild it.
    Locate {
        /// The block.
        cid: Cid,
    },
    /// Keep this record (see [`crate::records`]); answered `Stored` once it is durable.
    PutRecord {
        /// Its key.
        key: String,
        /// Its bytes, opaque to the cluster.
        bytes: ByteBuf,
    },
    /// The record kept here under `key` (`Block`), or `NotFound`.
    GetRecord {
        /// Its key.
        key: String,
    },
}

impl Request {
    /// A `Put` of one piece.
    pub fn put_one(
        piece: &cairn_dag::Block,
        stripe: Option<WireBlock>,
        copies: Option<u8>,
    ) -> Self {
        Request::Put {
            pieces: vec![WireBlock {
                cid: piece.cid,
                data: ByteBuf::from(piece.data.to_vec()),
            }],
            stripe,
            copies,
        }
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The pieces of a `Put` are durable.
    Stored,
    /// A block's bytes.
    Block(ByteBuf),
    /// For `Has` and `Pieces`: one flag per asked CID.
    Held(Vec<bool>),
    /// For `Locate`.
    Located {
        /// Whether the block itself is here.
        have: bool,
        /// The manifest of the stripe that rebuilds it, when known here.
        stripe: Option<WireBlock>,
    },
    /// The block is not here.
    NotFound,
    /// The request failed.
    Error(String),
}

/// Encodes a message.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(message).expect("piece messages always encode")
}

/// Decodes a message, refusing oversized or malformed input.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, ClusterError> {
    if bytes.len() > MAX_REQUEST {
        return Err(ClusterError::Malformed(format!(
            "piece message of {} bytes is over the limit",
            bytes.len()
        )));
    }
    serde_ipld_dagcbor::from_slice(bytes)
        .map_err(|e| ClusterError::Malformed(format!("piece message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let cid = cairn_dag::cid_of(cairn_dag::CidVersion::V1, cairn_dag::RAW, b"x").unwrap();
        let msgs = vec![
            Request::Put {
                pieces: vec![WireBlock {
                    cid,
                    data: ByteBuf::from(b"x".to_vec()),
                }],
                stripe: None,
                copies: Some(3),
            },
            Request::Get { cid },
            Request::Has {
                cids: vec![cid, cid],
            },
            Request::Locate { cid },
            Request::PutRecord {
                key: "head/b".into(),
                bytes: ByteBuf::from(vec![1, 2]),
            },
            Request::GetRecord { key: "k".into() },
        ];
        for m in msgs {
            assert_eq!(decode::<Request>(&encode(&m)).unwrap(), m);
        }
        let r = Response::Located {
            have: true,
            stripe: None,
        };
        assert_eq!(decode::<Response>(&encode(&r)).unwrap(), r);
        assert!(decode::<Request>(b"\xff\x00garbage").is_err());
        assert!(decode::<Response>(&encode(&Request::Get { cid })).is_err());
    }
}
