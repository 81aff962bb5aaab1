//! What the node serves to peers, as three providers the network is started with
//! ([`Providers`]): its blocks (Bitswap, [`BlockProvider`]), the heads of the buckets it owns
//! (`/cairn/heads/1.0.0`, [`HeadProvider`]) and cluster piece requests (`/cairn/piece/1.0.0`,
//! [`PieceProvider`]). A node outside a cluster gives no piece provider; a peer asking it gets
//! an empty answer. Every call runs on a blocking thread.

use std::sync::Arc;

use bytes::Bytes;
use cairn_bitswap::{BlockQuery, Lookup};
use cairn_dag::Cid;
use libp2p::PeerId;

/// The node's blocks, for Bitswap.
pub trait BlockProvider: Send + Sync + 'static {
    /// Answers lookups: the verified bytes of a present block of at most `max_data` bytes,
    /// `Have` for a larger one, `Missing` otherwise.
    fn lookup(&self, queries: &[BlockQuery]) -> Vec<(Cid, Lookup)>;
    /// Whether a stranger may have `cid` (a DAG root the node publishes: the gateway's rule).
    /// Nothing by default.
    fn published(&self, _cid: &Cid) -> bool {
        false
    }
    /// Stores a block received from a peer (already verified against its CID).
    fn store(&self, cid: &Cid, data: &Bytes);
    /// Stores several received blocks (one commit, where the store can group them).
    fn store_many(&self, blocks: &[(Cid, Bytes)]) {
        for (cid, data) in blocks {
            self.store(cid, data);
        }
    }
}

/// The heads of the buckets this node owns, for members that follow them.
pub trait HeadProvider: Send + Sync + 'static {
    /// The heads, encoded by the node layer; empty when it has none to share.
    fn bucket_heads(&self) -> Vec<u8>;
}

/// The cluster's answers to members' piece requests.
pub trait PieceProvider: Send + Sync + 'static {
    /// Answers a piece request from `peer`.
    fn piece_request(&self, peer: PeerId, request: Vec<u8>) -> Vec<u8>;
}

/// Everything the network serves for the node.
#[derive(Clone)]
pub struct Providers {
    /// Blocks (always).
    pub blocks: Arc<dyn BlockProvider>,
    /// Bucket heads, if the node shares any.
    pub heads: Option<Arc<dyn HeadProvider>>,
    /// Piece requests, in a cluster.
    pub pieces: Option<Arc<dyn PieceProvider>>,
}

impl Providers {
    /// Serves `blocks` only.
    pub fn new(blocks: Arc<dyn BlockProvider>) -> Providers {
        Providers {
            blocks,
            heads: None,
            pieces: None,
        }
    }

    /// Also serves bucket heads.
    pub fn heads(mut self, heads: Arc<dyn HeadProvider>) -> Providers {
        self.heads = Some(heads);
        self
    }

    /// Also answers piece requests.
    pub fn pieces(mut self, pieces: Arc<dyn PieceProvider>) -> Providers {
        self.pieces = Some(pieces);
        self
    }
}
