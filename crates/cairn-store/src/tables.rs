//! Every table of the store's redb database, in one place: its name, key and value types, and
//! what a row means; the key encodings the tables share (`bucket \0 key`, CID bytes); and
//! [`create_all`], which opens every one at start. (The node's record tables — buckets, keys,
//! records, jobs, cid_access, uploads — are typed [`crate::Table`]s it declares beside its
//! record types.) The `"counters"` table is defined once here
//! (`seq`: the version sequence, `dirty`: the roots queue's stamps, `schema`). Nothing on disk
//! changed when the definitions moved here: the same names, key bytes and value types.

use cairn_dag::Cid;
use redb::{MultimapTableDefinition, TableDefinition, WriteTransaction};

use crate::StoreError;

// --- Blocks and pins ---

/// multihash bytes → (size, may_link)
pub(crate) const BLOCKS: TableDefinition<&[u8], (u64, bool)> = TableDefinition::new("blocks");

/// multihash bytes → block bytes, for blocks kept in the database instead of a file (see
/// [`crate::inline_eligible`])
pub(crate) const INLINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inline_blocks");

/// CID bytes → reference count
pub(crate) const PINS: TableDefinition<&[u8], u64> = TableDefinition::new("pins");

// --- Buckets, objects, versions and records ---

/// A table of records keyed by a name.
pub(crate) type NamedTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// `bucket \0 key` → (root CID bytes, object record)
pub(crate) const OBJECTS: TableDefinition<&[u8], (&[u8], &[u8])> = TableDefinition::new("objects");

/// `bucket \0 key \0 (u64::MAX - seq) BE` → (root CID bytes, empty for a delete marker;
/// version record): every version of every key, newest first.
pub(crate) const VERSIONS: TableDefinition<&[u8], (&[u8], &[u8])> =
    TableDefinition::new("versions");

/// named counters (`seq`: the version sequence)
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// The login replay memory: `epoch ms (20 digits) \0 user key (hex)` → nothing
pub(crate) const LOGINS: NamedTable = TableDefinition::new("logins");

/// `upload id \0 part number (u32 BE)` → (part DAG root CID bytes, part record)
pub(crate) const PARTS: TableDefinition<&[u8], (&[u8], &[u8])> = TableDefinition::new("parts");

// --- Bucket roots ---

/// `bucket \0 key` → stamp of its latest change (a counter, to tell a later change apart).
pub(crate) const DIRTY: TableDefinition<&[u8], u64> = TableDefinition::new("dirty");

/// `CID bytes ‖ bucket \0 key` → () for every current object (CIDs are self-delimiting, so a
/// CID's rows are exactly the keys starting with its bytes).
pub(crate) const BY_CID: TableDefinition<&[u8], ()> = TableDefinition::new("by_cid");

/// `bucket \0 seq (u64 BE)` → (record CID, tree CID, index CID, time ms, signed head).
pub(crate) const ROOTS: TableDefinition<&[u8], RootValue> = TableDefinition::new("roots");

/// A history row as stored: (record CID, tree CID, index CID, time ms, signed head).
pub(crate) type RootValue = (
    &'static [u8],
    &'static [u8],
    &'static [u8],
    u64,
    &'static [u8],
);

/// `tree CID bytes ‖ bucket` → () for every root in a history.
pub(crate) const ROOT_CIDS: TableDefinition<&[u8], ()> = TableDefinition::new("root_cids");

// --- Cluster pieces held here ---

/// piece multihash → `1 ‖ CID of its stripe's manifest` for a shard; for a whole replica
/// `2 ‖ copies ‖ its own CID` (`0 ‖ its own CID`: as many copies as the cluster's policy says).
pub(crate) const PIECES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pieces");

/// manifest CID bytes → () for every stripe manifest held here.
pub(crate) const STRIPES: TableDefinition<&[u8], ()> = TableDefinition::new("stripes");

/// data block multihash → CID bytes of the manifest of the stripe it is held here as a piece
/// of (never re-pointed; see the module docs).
pub(crate) const STRIPE_OF: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stripe_of");

/// data block multihash → CID bytes of a manifest held here that lists it (a hint, below
/// `STRIPE_OF`; never re-pointed).
pub(crate) const STRIPE_HINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stripe_hints");

/// unit key (see `unit_key`) → `first_ms ‖ last_ms ‖ pieces ‖ bytes` (u64 big-endian each)
/// `‖ owner`.
pub(crate) const UNITS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("piece_units");

/// `owner length (u16 big-endian) ‖ owner ‖ unit key` → (): units by owner.
pub(crate) const OWNED: TableDefinition<&[u8], ()> = TableDefinition::new("piece_units_by_owner");

/// unit key → every owner (peer id bytes) of the unit, at most [`crate::pieces::MAX_UNIT_OWNERS`]; an empty
/// id is the *unknown owner* (more owners than that were named): the unit is kept forever.
/// Only units with owners here are ever freed by piece GC.
pub(crate) const UNIT_OWNERS: MultimapTableDefinition<&[u8], &[u8]> =
    MultimapTableDefinition::new("piece_unit_owners");

// --- Blocks forwarded to the cluster ---

/// forwarded block multihash → `size ‖ committed_ms` (u64 big-endian each) `‖ links` (1 byte:
/// 1 when the block may link).
pub(crate) const REMOTE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("remote_blocks");

// --- Backup snapshots ---

/// `name \0 time_ms (u64 BE)` → root CID bytes: oldest first within a name.
pub(crate) const SNAPSHOTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("snapshots");

// --- Keys ---

pub(crate) fn split_object_key(full: &[u8]) -> (String, String) {
    let at = full.iter().position(|&b| b == 0).unwrap_or(full.len());
    let key = full.get(at + 1..).unwrap_or_default();
    (
        String::from_utf8_lossy(&full[..at]).into_owned(),
        String::from_utf8_lossy(key).into_owned(),
    )
}

pub(crate) fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

pub(crate) fn parse_cid(bytes: &[u8]) -> Result<Cid, StoreError> {
    Cid::try_from(bytes).map_err(|e| {
        StoreError::Dag(Box::new(cairn_dag::DagError::Unsupported(format!(
            "unreadable CID in metadata: {e}"
        ))))
    })
}

/// The bucket a `bucket \0 …` key belongs to.
pub(crate) fn bucket_of_key(key: &[u8]) -> &[u8] {
    key.split(|b| *b == 0).next().unwrap_or(key)
}

/// Opens (creates) every table, so readers never meet a missing one.
pub(crate) fn create_all(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(BLOCKS)?;
    txn.open_table(INLINE)?;
    txn.open_table(PINS)?;
    txn.open_table(OBJECTS)?;
    txn.open_table(VERSIONS)?;
    txn.open_table(COUNTERS)?;
    txn.open_table(LOGINS)?;
    txn.open_table(PARTS)?;
    txn.open_table(DIRTY)?;
    txn.open_table(BY_CID)?;
    txn.open_table(ROOTS)?;
    txn.open_table(ROOT_CIDS)?;
    txn.open_table(PIECES)?;
    txn.open_table(STRIPES)?;
    txn.open_table(STRIPE_OF)?;
    txn.open_table(STRIPE_HINTS)?;
    txn.open_table(UNITS)?;
    txn.open_table(OWNED)?;
    txn.open_multimap_table(UNIT_OWNERS)?;
    txn.open_table(REMOTE)?;
    txn.open_table(SNAPSHOTS)?;
    Ok(())
}
