//! Pure IPLD / UnixFS codec for Cairn: no files, no sockets.
//!
//! * [`block`] — blocks, CIDs, hash verification and link extraction for dag-pb, dag-cbor, raw.
//! * [`mod@file`] — Kubo-identical file layout: leaf encoding and a streaming balanced builder.
//! * [`read`] — sans-I/O range reads over a UnixFS file DAG.
//! * [`meta`] — UnixFS 1.5 metadata (mode, mtime) on file roots and other nodes.
//! * [`dir`] — directory building (plain and HAMT-sharded, like `ipfs add -r`), listing and path
//!   resolution, all sans-I/O.
//! * [`hamt`] — HAMT shard blocks: link names, the name hash, and the hash-directed lookup of
//!   one name.
//!
//! Walks over untrusted DAGs are bounded: a listing reads each distinct shard once and stops at
//! [`dir::DirLimits`], a lookup reads one shard per HAMT level, and a walk that goes past a
//! bound ends with [`DagError::LimitExceeded`] rather than running on.
//!
//! The UnixFS protobuf encoding itself comes from `rust-unixfs`; this crate composes it into the
//! streaming, parallel-friendly pieces the store and node layers drive.

#![warn(missing_docs)]

pub mod block;
pub mod buzhash;
pub mod car;
pub mod dir;
pub mod dir_edit;
pub mod file;
pub mod hamt;
pub mod meta;
pub mod read;

pub use block::{Block, cid_of, links_of, verify};
/// The `cid` crate (its `multihash` and `multibase`), for the layers above.
pub use cid;
pub use cid::Cid;

/// Multicodec of dag-pb.
pub const DAG_PB: u64 = 0x70;
/// Multicodec of raw bytes.
pub const RAW: u64 = 0x55;
/// Multicodec of dag-cbor.
pub const DAG_CBOR: u64 = 0x71;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// The largest block Cairn serves or keeps for others: 2 MiB, the IPFS spec's interoperable
/// maximum (Bitswap's `max_block_size` default, and the bound on a cluster stripe's shard
/// length). Cairn's own importer makes far smaller blocks ([`CHUNK_SIZE`] leaves).
pub const MAX_BLOCK_SIZE: usize = 2 * 1024 * 1024;

/// Kubo's default fixed chunk size (`size-262144`).
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Kubo's default maximum number of links in a balanced file node.
pub const MAX_LINKS: usize = 174;

/// How a DAG is encoded: `ipfs add` (CIDv0, dag-pb leaves) or `ipfs add --cid-version=1`
/// (CIDv1, raw leaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum CidVersion {
    /// CIDv0, dag-pb leaves: Kubo's default.
    #[default]
    V0,
    /// CIDv1 with raw leaves.
    V1,
}

impl CidVersion {
    pub(crate) fn to_cid_version(self) -> cid::Version {
        match self {
            CidVersion::V0 => cid::Version::V0,
            CidVersion::V1 => cid::Version::V1,
        }
    }
}

impl From<CidVersion> for u8 {
    /// `0` or `1`.
    fn from(v: CidVersion) -> u8 {
        match v {
            CidVersion::V0 => 0,
            CidVersion::V1 => 1,
        }
    }
}

impl TryFrom<u8> for CidVersion {
    type Error = DagError;
    fn try_from(v: u8) -> Result<Self, DagError> {
        match v {
            0 => Ok(CidVersion::V0),
            1 => Ok(CidVersion::V1),
            other => Err(DagError::Unsupported(format!("CID version {other}"))),
        }
    }
}

/// Errors of the DAG codec.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    /// A block's bytes do not hash to its CID.
    #[error("block {0} does not match its hash")]
    HashMismatch(Cid),
    /// The CID uses a hash or codec this node cannot handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A block could not be decoded as what its CID or position says it is.
    #[error("malformed block {cid}: {reason}")]
    Malformed {
        /// The offending block.
        cid: Cid,
        /// What was wrong.
        reason: String,
    },
    /// The DAG is not a UnixFS file where one was expected.
    #[error("{0} is not a file")]
    NotAFile(Cid),
    /// The DAG is not a UnixFS directory where one was expected.
    #[error("{0} is not a directory")]
    NotADirectory(Cid),
    /// A path segment does not exist.
    #[error("no link named {name:?} under {parent}")]
    NotFound {
        /// Directory searched.
        parent: Cid,
        /// Missing name.
        name: String,
    },
    /// A directory tree could not be built (duplicate or invalid path).
    #[error("directory tree: {0}")]
    Tree(String),
    /// A walk over the DAG went past one of its bounds (too deep, too many entries or shard
    /// blocks): the DAG is crafted, or too large to answer in one piece. Nothing is cut short
    /// silently.
    #[error("DAG under {root} exceeds the {limit} limit of {max}")]
    LimitExceeded {
        /// Where the walk started.
        root: Cid,
        /// The bound that was hit.
        limit: Limit,
        /// Its value.
        max: u64,
    },
}

/// The bound a DAG walk hit ([`DagError::LimitExceeded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Levels of directories (or of HAMT shards) below the walk's root.
    Depth,
    /// Entries of one directory listing.
    Entries,
    /// Distinct HAMT shard blocks read by one directory listing.
    Shards,
    /// Blocks of one file read that held none of its bytes, past what the bytes read justify.
    EmptyBlocks,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::Depth => "depth",
            Limit::Entries => "entries",
            Limit::Shards => "HAMT shard blocks",
            Limit::EmptyBlocks => "blocks without bytes",
        })
    }
}

impl DagError {
    /// Whether the error is about the DAG's content (malformed, unsupported, too deep or too
    /// large) rather than a missing name or a wrong kind of node: front doors answer these as
    /// "cannot process this DAG".
    pub fn is_bad_dag(&self) -> bool {
        matches!(
            self,
            DagError::Malformed { .. }
                | DagError::LimitExceeded { .. }
                | DagError::Unsupported(_)
                | DagError::HashMismatch(_)
        )
    }

    pub(crate) fn malformed(cid: &Cid, reason: impl std::fmt::Display) -> Self {
        DagError::Malformed {
            cid: *cid,
            reason: reason.to_string(),
        }
    }
}
