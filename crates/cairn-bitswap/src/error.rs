//! The crate's one error type, [`BitswapError`]: malformed or oversized input from the wire,
//! blocks that cannot be verified, and local requests the state machine refuses.

use cid::Cid;

/// Errors of the Bitswap codec and state machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitswapError {
    /// A message (or the length a frame announces) is larger than the configured maximum.
    #[error("message of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Announced or actual length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A message carries more wantlist entries, blocks and presences than allowed.
    #[error("message has more than {max} entries")]
    TooManyEntries {
        /// The limit.
        max: usize,
    },
    /// The protobuf could not be parsed.
    #[error("malformed protobuf: {0}")]
    Protobuf(String),
    /// A field holds a value the protocol does not define.
    #[error("malformed field {field}: {reason}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A length prefix is not a valid unsigned varint.
    #[error("malformed length prefix")]
    Frame,
    /// A CID prefix of a payload block is malformed.
    #[error("malformed CID prefix: {0}")]
    Prefix(String),
    /// A block or CID uses a hash function or shape this node does not verify (only sha2-256
    /// with a 32-byte digest is supported).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A block does not hash to the CID it was given for.
    #[error("block does not match {0}")]
    HashMismatch(Cid),
    /// `want` was called with more wants outstanding than the configured maximum.
    #[error("too many outstanding wants (max {max})")]
    TooManyWants {
        /// The limit.
        max: usize,
    },
}

impl From<quick_protobuf::Error> for BitswapError {
    fn from(e: quick_protobuf::Error) -> Self {
        BitswapError::Protobuf(e.to_string())
    }
}
