//! Every bound of the `/cairn/piece/1.0.0` protocol, in one place. A peer's message and a
//! stripe manifest are checked against these when they are decoded ([`crate::proto::decode_request`],
//! [`crate::stripe::Manifest::from_block`]), before anything they describe is allocated or
//! stored; the repair and read paths check manifests again before they pad or rebuild.
//!
//! | what | bound |
//! |---|---|
//! | a message | [`MAX_REQUEST`] bytes (3 MiB: one piece of at most 2 MiB + 1 and a 64 KiB manifest, with room; also the network layer's request limit) |
//! | a block (data shard or replica) | [`MAX_BLOCK`] = [`cairn_dag::MAX_BLOCK_SIZE`], 2 MiB |
//! | a stripe's `shard_len` | [`MAX_SHARD_LEN`]: `MAX_BLOCK` rounded up to [`ALIGN`] (2 MiB), and exactly the longest data block rounded up to `ALIGN`, as [`crate::stripe::encode`] makes it |
//! | a piece | [`MAX_PIECE`] = `MAX_SHARD_LEN + 1` (a parity shard is its index byte then `shard_len` bytes) |
//! | data shards K, parity shards M | 1 to [`MAX_DATA_SHARDS`] and 1 to [`MAX_PARITY_SHARDS`] (64 each, the policy's [`MAX_SHARDS`]), so K + M ≤ [`MAX_STRIPE_WIDTH`] (≤ 256) |
//! | a manifest block | [`MAX_MANIFEST`] bytes |
//! | copies of a replicated block | 1 to [`MAX_COPIES`] (the policy's [`MAX_REPLICAS`], 16) |
//! | pieces per `Put` | 1 to [`MAX_PUT_PIECES`] |
//! | CIDs per `Has` / `Pieces` / `Referenced` | [`MAX_CIDS`] (a stripe's shards and its manifest) |
//! | owners named by a `Put` | [`MAX_OWNERS`] (a holder records no more per unit), each 1 to [`MAX_OWNER_ID`] bytes |
//! | a record key / record | [`MAX_RECORD_KEY`] / [`MAX_RECORD`] bytes |
//!
//! The largest allocation a manifest can cause is therefore a rebuild's K padded shards:
//! 64 × 2 MiB = 128 MiB, and only once K verified shards of those lengths are at hand.

use crate::policy::{MAX_REPLICAS, MAX_SHARDS};

/// Largest message, request or answer.
pub const MAX_REQUEST: usize = 3 << 20;

/// Shard lengths are a multiple of this (the Reed-Solomon coder works on 64-byte units).
pub const ALIGN: usize = 64;

/// Largest block kept as a piece (a data shard or a whole replica).
pub const MAX_BLOCK: usize = cairn_dag::MAX_BLOCK_SIZE;

/// Largest `shard_len` of a stripe: the largest block rounded up to [`ALIGN`].
pub const MAX_SHARD_LEN: usize = MAX_BLOCK.div_ceil(ALIGN) * ALIGN;

/// Largest piece: a parity shard is its index byte and `shard_len` bytes.
pub const MAX_PIECE: usize = MAX_SHARD_LEN + 1;

/// Most data shards (K) in a stripe.
pub const MAX_DATA_SHARDS: usize = MAX_SHARDS as usize;

/// Most parity shards (M) in a stripe.
pub const MAX_PARITY_SHARDS: usize = MAX_SHARDS as usize;

/// Most shards (K + M) in a stripe; parity shards are numbered by one byte.
pub const MAX_STRIPE_WIDTH: usize = 256;
const _: () = assert!(MAX_DATA_SHARDS + MAX_PARITY_SHARDS <= MAX_STRIPE_WIDTH);

/// Largest stripe manifest block: K + M ≤ 128 CIDs (under 80 bytes each with their CBOR tags:
/// multihashes are at most 64 bytes) and K lengths, with room to spare.
pub const MAX_MANIFEST: usize = 64 << 10;

/// Most copies a replicated block may ask for.
pub const MAX_COPIES: u8 = MAX_REPLICAS;

/// Most pieces in one `Put` (writers and repair send one).
pub const MAX_PUT_PIECES: usize = MAX_STRIPE_WIDTH;

/// Most CIDs in one `Has` or `Pieces` (a survey asks for a stripe's shards and its manifest).
pub const MAX_CIDS: usize = MAX_STRIPE_WIDTH + 1;

/// Longest record key (`head/` and a bucket name).
pub const MAX_RECORD_KEY: usize = 256;

/// Largest record (a signed head and its bucket record).
pub const MAX_RECORD: usize = 1 << 20;

/// Most owners a `Put` names (what a holder records per unit, [`cairn_store::pieces::MAX_UNIT_OWNERS`]).
pub const MAX_OWNERS: usize = cairn_store::pieces::MAX_UNIT_OWNERS;

/// Longest owner (peer id) a `Put` names.
pub const MAX_OWNER_ID: usize = 128;
