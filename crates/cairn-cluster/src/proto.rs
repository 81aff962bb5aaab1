//! `/cairn/piece/1.0.0` messages (pure): what one cluster node asks another about pieces, and
//! the answers, as dag-cbor. The network layer carries them as opaque bytes.
//!
//! A request from a peer is read with [`decode_request`], which refuses it unless it is within
//! the bounds of [`crate::limits`] ([`Request::check`]): at most 3 MiB; a `Put` of 1 to 256
//! pieces of at most 2 MiB + 1 bytes each, a manifest block of at most 64 KiB, and 1 to 16
//! copies, naming at most 16 owners of at most 128 bytes each; at most 257 CIDs per `Has`,
//! `Pieces` or `Referenced`; record keys of at most 256 bytes and records of at most 1 MiB. Answers are read with [`decode_response`] ([`Response::check`]).

use cairn_dag::Cid;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ClusterError;
use crate::limits::{
    MAX_CIDS, MAX_COPIES, MAX_MANIFEST, MAX_OWNER_ID, MAX_OWNERS, MAX_PIECE, MAX_PUT_PIECES,
    MAX_RECORD, MAX_RECORD_KEY,
};

/// Largest message accepted (a few shards of at most 2 MiB each plus a manifest).
pub use crate::limits::MAX_REQUEST;

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
        /// The owners of the unit (peer ids), for piece GC: absent, the sender (a write); a
        /// list, those (repair and moves send the unit's recorded owners); an empty list,
        /// unknown (the unit is then kept forever). See [`cairn_store::pieces`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owners: Option<Vec<ByteBuf>>,
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
    /// Whether this node's data may still reference each of these blocks (piece GC: a holder
    /// asks the owners of a unit; see [`cairn_store::refs`]).
    Referenced {
        /// The blocks.
        blocks: Vec<Cid>,
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
    /// A `Put` of one piece, its sender the owner (a write).
    pub fn put_one(
        piece: &cairn_dag::Block,
        stripe: Option<WireBlock>,
        copies: Option<u8>,
    ) -> Self {
        Request::put_one_for(piece, stripe, copies, None)
    }

    /// A `Put` of one piece naming the unit's owners (`None`: the sender).
    pub fn put_one_for(
        piece: &cairn_dag::Block,
        stripe: Option<WireBlock>,
        copies: Option<u8>,
        owners: Option<Vec<ByteBuf>>,
    ) -> Self {
        Request::Put {
            pieces: vec![WireBlock {
                cid: piece.cid,
                data: ByteBuf::from(piece.data.to_vec()),
            }],
            stripe,
            copies,
            owners,
        }
    }
}

impl Request {
    /// Whether this request is within the bounds of [`crate::limits`]; says what is out of
    /// them otherwise. Checked before anything in it is verified, allocated or stored.
    pub fn check(&self) -> Result<(), ClusterError> {
        let bad = |why: String| Err(ClusterError::Malformed(why));
        match self {
            Request::Put {
                pieces,
                stripe,
                copies,
                owners,
            } => {
                if let Some(owners) = owners {
                    if owners.len() > MAX_OWNERS {
                        return bad(format!(
                            "a Put naming {} owners (at most {MAX_OWNERS})",
                            owners.len()
                        ));
                    }
                    if let Some(o) = owners
                        .iter()
                        .find(|o| o.is_empty() || o.len() > MAX_OWNER_ID)
                    {
                        return bad(format!(
                            "an owner id of {} bytes (1 to {MAX_OWNER_ID})",
                            o.len()
                        ));
                    }
                }
                if pieces.is_empty() || pieces.len() > MAX_PUT_PIECES {
                    return bad(format!(
                        "a Put of {} pieces (1 to {MAX_PUT_PIECES})",
                        pieces.len()
                    ));
                }
                if let Some(p) = pieces.iter().find(|p| p.data.len() > MAX_PIECE) {
                    return bad(format!(
                        "piece {} of {} bytes (at most {MAX_PIECE})",
                        p.cid,
                        p.data.len()
                    ));
                }
                if let Some(w) = stripe
                    && w.data.len() > MAX_MANIFEST
                {
                    return bad(format!(
                        "stripe manifest of {} bytes (at most {MAX_MANIFEST})",
                        w.data.len()
                    ));
                }
                match copies {
                    Some(n) if !(1..=MAX_COPIES).contains(n) => {
                        bad(format!("{n} copies (1 to {MAX_COPIES})"))
                    }
                    Some(_) if stripe.is_some() => {
                        bad("copies are for whole replicas, not stripe shards".into())
                    }
                    _ => Ok(()),
                }
            }
            Request::Has { cids }
            | Request::Pieces { cids }
            | Request::Referenced { blocks: cids }
                if cids.len() > MAX_CIDS =>
            {
                bad(format!("{} CIDs asked (at most {MAX_CIDS})", cids.len()))
            }
            Request::PutRecord { key, bytes } if bytes.len() > MAX_RECORD => bad(format!(
                "record {key:.64?} of {} bytes (at most {MAX_RECORD})",
                bytes.len()
            )),
            Request::PutRecord { key, .. } | Request::GetRecord { key }
                if key.len() > MAX_RECORD_KEY =>
            {
                bad(format!(
                    "record key of {} bytes (at most {MAX_RECORD_KEY})",
                    key.len()
                ))
            }
            _ => Ok(()),
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
    /// For `Referenced`: one flag per asked block (true: it may still be referenced).
    Referenced(Vec<bool>),
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

impl Response {
    /// Whether this answer is within the bounds of [`crate::limits`] (the caller then checks
    /// that it answers what was asked: one flag per CID, bytes matching the CID).
    pub fn check(&self) -> Result<(), ClusterError> {
        let bad = |why: String| Err(ClusterError::Malformed(why));
        match self {
            Response::Held(flags) | Response::Referenced(flags) if flags.len() > MAX_CIDS => {
                bad(format!("{} flags (at most {MAX_CIDS})", flags.len()))
            }
            Response::Located {
                stripe: Some(w), ..
            } if w.data.len() > MAX_MANIFEST => bad(format!(
                "stripe manifest of {} bytes (at most {MAX_MANIFEST})",
                w.data.len()
            )),
            _ => Ok(()),
        }
    }
}

/// Decodes a request from a peer and checks it against [`crate::limits`].
pub fn decode_request(bytes: &[u8]) -> Result<Request, ClusterError> {
    let request: Request = decode(bytes)?;
    request.check()?;
    Ok(request)
}

/// Decodes a peer's answer and checks it against [`crate::limits`].
pub fn decode_response(bytes: &[u8]) -> Result<Response, ClusterError> {
    let response: Response = decode(bytes)?;
    response.check()?;
    Ok(response)
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
                owners: None,
            },
            Request::put_one_for(
                &cairn_dag::Block::new(cairn_dag::CidVersion::V1, cairn_dag::RAW, b"x".to_vec())
                    .unwrap(),
                None,
                None,
                Some(vec![ByteBuf::from(b"peer".to_vec())]),
            ),
            Request::Referenced {
                blocks: vec![cid, cid],
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

    #[test]
    fn requests_at_the_limits_are_accepted_and_one_past_them_refused() {
        use crate::limits::*;
        let cid = cairn_dag::cid_of(cairn_dag::CidVersion::V1, cairn_dag::RAW, b"x").unwrap();
        let piece = |len: usize| WireBlock {
            cid,
            data: ByteBuf::from(vec![0; len]),
        };
        let put = |pieces: Vec<WireBlock>, stripe: Option<WireBlock>, copies| Request::Put {
            pieces,
            stripe,
            copies,
            owners: None,
        };
        let ok = |r: Request| {
            let bytes = encode(&r);
            assert!(bytes.len() <= MAX_REQUEST);
            decode_request(&bytes).is_ok()
        };
        let owned = |owners: Vec<ByteBuf>| Request::Put {
            pieces: vec![piece(1)],
            stripe: None,
            copies: None,
            owners: Some(owners),
        };
        let id = |n: usize| ByteBuf::from(vec![7; n]);
        assert!(ok(owned(Vec::new())), "unknown owners");
        assert!(ok(owned(vec![id(MAX_OWNER_ID); MAX_OWNERS])));
        assert!(!ok(owned(vec![id(1); MAX_OWNERS + 1])));
        assert!(!ok(owned(vec![id(MAX_OWNER_ID + 1)])));
        assert!(!ok(owned(vec![id(0)])), "an empty owner id");
        assert!(ok(put(vec![piece(MAX_PIECE)], None, None)));
        assert!(!ok(put(vec![piece(MAX_PIECE + 1)], None, None)));
        assert!(ok(put(vec![piece(1); MAX_PUT_PIECES], None, None)));
        assert!(!ok(put(vec![piece(1); MAX_PUT_PIECES + 1], None, None)));
        assert!(!ok(put(Vec::new(), Some(piece(10)), None)), "no pieces");
        assert!(ok(put(vec![piece(1)], Some(piece(MAX_MANIFEST)), None)));
        assert!(!ok(put(
            vec![piece(1)],
            Some(piece(MAX_MANIFEST + 1)),
            None
        )));
        assert!(ok(put(vec![piece(1)], None, Some(1))));
        assert!(ok(put(vec![piece(1)], None, Some(MAX_COPIES))));
        assert!(!ok(put(vec![piece(1)], None, Some(0))), "copies = 0");
        assert!(!ok(put(vec![piece(1)], None, Some(MAX_COPIES + 1))));
        assert!(!ok(put(vec![piece(1)], None, Some(50))), "copies = 50");
        assert!(
            !ok(put(vec![piece(1)], Some(piece(10)), Some(3))),
            "copies of a shard"
        );
        for many in [MAX_CIDS, MAX_CIDS + 1] {
            let within = many <= MAX_CIDS;
            assert_eq!(
                ok(Request::Has {
                    cids: vec![cid; many]
                }),
                within
            );
            assert_eq!(
                ok(Request::Pieces {
                    cids: vec![cid; many]
                }),
                within
            );
            assert_eq!(
                ok(Request::Referenced {
                    blocks: vec![cid; many]
                }),
                within
            );
            let flags = encode(&Response::Held(vec![true; many]));
            assert_eq!(decode_response(&flags).is_ok(), within);
            let flags = encode(&Response::Referenced(vec![false; many]));
            assert_eq!(decode_response(&flags).is_ok(), within);
        }
        let key = |n: usize| "k".repeat(n);
        let record = |k: String, n: usize| Request::PutRecord {
            key: k,
            bytes: ByteBuf::from(vec![1; n]),
        };
        assert!(ok(record(key(MAX_RECORD_KEY), MAX_RECORD)));
        assert!(!ok(record(key(MAX_RECORD_KEY + 1), 1)));
        assert!(!ok(record(key(5), MAX_RECORD + 1)));
        assert!(ok(Request::GetRecord {
            key: key(MAX_RECORD_KEY)
        }));
        assert!(!ok(Request::GetRecord {
            key: key(MAX_RECORD_KEY + 1)
        }));
    }
}
