//! Pieces: the blocks this node keeps for the cluster — whole replicas, and the data and
//! parity shards of Reed-Solomon stripes — with, for each, the stripe it belongs to; the stripe
//! manifests held here; and, for every data block of those stripes, which stripe rebuilds it.
//! A piece is written like any block (synced file, then one redb commit that records the block
//! and its piece row together), and pieces are GC roots.
//!
//! Pieces arrive from peers, so nothing a `Put` says is allowed to change what an earlier one
//! established (the caller, `cairn-cluster`, has already verified every block and bounded the
//! manifest):
//! * **A piece row is never relabelled.** A block already kept as a piece of one unit stays
//!   that unit's when another unit (an honest stripe holding the same bytes, or a liar's)
//!   sends it again; it is only dropped with that unit.
//! * **A block's stripe is never re-pointed.** `STRIPE_OF[d] → stripe` is written only for a
//!   data block `d` held here as a piece of that stripe (the `Put` carried it, now or earlier),
//!   and only when `d` has no stripe yet. The other data blocks a manifest lists get a weaker
//!   *hint* (so that a reader can find the stripe of a block whose holder is gone from the
//!   holders of its other shards), written only when `d` has neither a stripe nor a hint, and
//!   ranked below a held stripe. [`Store::stripe_of`] answers the held stripe first, then the
//!   hint; either changes only when its stripe is dropped here ([`Store::drop_unit`]). A lying
//!   manifest can therefore not move a block that is mapped here already; what stays open is a
//!   liar who names a block before its honest stripe reaches this node — closed by cluster
//!   membership (who may send `Put` at all), not here.
//! * **Every unit is accounted to its owner.** A unit is a stripe (its shards and manifest) or
//!   a whole-replica block. The first peer that stores a piece of a unit here is the peer it
//!   is *accounted to* (for a write, the node that placed it; for a unit first re-created here
//!   by repair, the repairing node), recorded with when the unit arrived, when it last grew
//!   or was put again, and its pieces and bytes here. [`Store::units_of`],
//!   [`Store::usage_of`] and [`Store::usage_by_owner`] list and count them.
//! * **A unit has owners.** Its *owners* are the nodes whose data may reference it, kept in a
//!   multimap (unit → owner peer id), at most [`MAX_UNIT_OWNERS`]: two writers storing
//!   identical bytes make the same unit, and both become its owners. A `Put` that names no
//!   owners makes its sender one (a write); one that names owners (repair, moves) adds those;
//!   one that names an empty list says they are *unknown*. A unit with no owners — stored
//!   before owners were recorded, with pieces kept here before units were accounted, or sent
//!   with unknown owners — never gains any, and neither does one past the bound (an empty id
//!   marks it): such units are kept forever.
//!
//! # Piece GC
//!
//! Holders ask the unit's owners whether it is still referenced; owners answer from their last
//! GC mark ([`crate::refs`], [`Store::referenced`]). Never free on doubt. The holder's pass
//! (`cairn-cluster`'s `Cluster::collect_pass`, run before each repair pass) pages over the
//! units here ([`Store::units_page`]) that have owners and whose `last_ms` is older than a
//! grace period (`[storage] piece_grace`, `1h` by default: longer than a write takes), asks
//! every owner about the unit's blocks (a replica's block, a stripe's data blocks), and when
//! every owner answered "not referenced" for every block — an owner not connected, or an
//! answer it could not read, keeps the unit — drops it with [`Store::collect_unit`]: only if
//! no `Put` of the unit arrived since it read `last_ms` (every `Put` of a held unit moves it),
//! so a write of the same bytes racing the question keeps the unit. The piece rows go in that
//! transaction; the next local GC then sweeps the blocks unless something else here needs
//! them (pieces are GC roots only while their rows exist).

use std::collections::BTreeMap;

use cairn_dag::{Block, Cid};
use redb::{
    ReadTransaction, ReadableDatabase, ReadableMultimapTable, ReadableTable, WriteTransaction,
};

use crate::tables::{
    OWNED, PIECES, STRIPE_HINTS, STRIPE_OF, STRIPES, UNIT_OWNERS, UNITS, parse_cid,
};
use crate::{Store, StoreError};

/// Most owners recorded for one unit; past that the unit's owners are unknown and it is kept.
pub const MAX_UNIT_OWNERS: usize = 16;

/// A piece held here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRow {
    /// Its multihash (the key pieces are paged by).
    pub key: Vec<u8>,
    /// What it is.
    pub of: PieceOf,
}

/// What a piece is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceOf {
    /// A shard of the stripe with this manifest.
    Stripe(Cid),
    /// A whole copy of the block with this CID, one of `copies` the cluster keeps (`None`: as
    /// many as its default policy says; a bucket may ask for another number).
    Replica {
        /// The block.
        cid: Cid,
        /// How many copies the cluster keeps.
        copies: Option<u8>,
    },
}

fn piece_value(of: &PieceOf) -> Vec<u8> {
    match of {
        PieceOf::Stripe(m) => [&[1u8][..], &m.to_bytes()].concat(),
        PieceOf::Replica { cid, copies: None } => [&[0u8][..], &cid.to_bytes()].concat(),
        PieceOf::Replica {
            cid,
            copies: Some(n),
        } => [&[2u8, *n][..], &cid.to_bytes()].concat(),
    }
}

fn parse_piece(v: &[u8]) -> Result<PieceOf, StoreError> {
    match v {
        [1, cid @ ..] => Ok(PieceOf::Stripe(parse_cid(cid)?)),
        [0, cid @ ..] => Ok(PieceOf::Replica {
            cid: parse_cid(cid)?,
            copies: None,
        }),
        [2, n, cid @ ..] => Ok(PieceOf::Replica {
            cid: parse_cid(cid)?,
            copies: Some(*n),
        }),
        _ => Err(StoreError::Sink("unreadable piece row".into())),
    }
}

impl PieceOf {
    /// The unit this piece belongs to.
    pub fn unit(&self) -> Unit {
        match *self {
            PieceOf::Stripe(m) => Unit::Stripe(m),
            PieceOf::Replica { cid, .. } => Unit::Block(cid),
        }
    }
}

/// A unit of placement: what is kept, checked, repaired and accounted as one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// A stripe, by its manifest's CID: its data and parity shards and the manifest.
    Stripe(Cid),
    /// A block kept as whole replicas.
    Block(Cid),
}

fn unit_key(unit: &Unit) -> Vec<u8> {
    match unit {
        Unit::Stripe(m) => [&[1u8][..], &m.to_bytes()].concat(),
        Unit::Block(c) => [&[2u8][..], &c.to_bytes()].concat(),
    }
}

fn parse_unit(key: &[u8]) -> Result<Unit, StoreError> {
    match key {
        [1, cid @ ..] => Ok(Unit::Stripe(parse_cid(cid)?)),
        [2, cid @ ..] => Ok(Unit::Block(parse_cid(cid)?)),
        _ => Err(StoreError::Sink("unreadable unit key".into())),
    }
}

/// The prefix of an owner's rows in `OWNED`.
fn owner_prefix(owner: &[u8]) -> Result<Vec<u8>, StoreError> {
    let len = u16::try_from(owner.len())
        .map_err(|_| StoreError::Sink(format!("owner id of {} bytes", owner.len())))?;
    Ok([&len.to_be_bytes()[..], owner].concat())
}

/// A unit held here (some or all of its pieces), who placed it and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    /// The unit.
    pub unit: Unit,
    /// The peer (id bytes) that first stored a piece of it here: what it is accounted to.
    pub owner: Vec<u8>,
    /// Its owners for piece GC (see the module docs): who wrote it, or whom the `Put` that
    /// brought it named; empty: unknown (a unit stored before owners were recorded, or
    /// re-created by repair from such a unit), kept forever; an empty id among them: more
    /// than [`MAX_UNIT_OWNERS`], kept forever too.
    pub owners: Vec<Vec<u8>>,
    /// When its first piece was stored here (ms since the Unix epoch).
    pub first_ms: u64,
    /// When a piece of it was last added here.
    pub last_ms: u64,
    /// Its pieces kept here (the manifest of a stripe counts as one).
    pub pieces: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl UnitRow {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + self.owner.len());
        for n in [self.first_ms, self.last_ms, self.pieces, self.bytes] {
            v.extend_from_slice(&n.to_be_bytes());
        }
        v.extend_from_slice(&self.owner);
        v
    }

    fn decode(unit: Unit, v: &[u8]) -> Result<UnitRow, StoreError> {
        if v.len() < 32 {
            return Err(StoreError::Sink("unreadable unit row".into()));
        }
        let n = |i: usize| u64::from_be_bytes(v[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        Ok(UnitRow {
            unit,
            owner: v[32..].to_vec(),
            owners: Vec::new(),
            first_ms: n(0),
            last_ms: n(1),
            pieces: n(2),
            bytes: n(3),
        })
    }
}

/// What one owner's units take here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Units.
    pub units: u64,
    /// Pieces.
    pub pieces: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Usage {
    fn add(&mut self, row: &UnitRow) {
        self.units += 1;
        self.pieces += row.pieces;
        self.bytes += row.bytes;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A stripe manifest to keep, with the data blocks it lists.
#[derive(Debug, Clone, Copy)]
pub struct StripeRecord<'a> {
    /// The manifest block.
    pub manifest: &'a Block,
    /// Its data blocks, which it can rebuild.
    pub data: &'a [Cid],
}

impl Store {
    /// Stores `pieces` (each with what it is a piece of) and, if given, a stripe manifest,
    /// durably: when this returns they survive a crash. `owner` (peer id bytes) is the peer
    /// that sent them, and the owner of what it writes: [`put_pieces_for`](Self::put_pieces_for)
    /// with no owners named.
    pub fn put_pieces(
        &self,
        owner: &[u8],
        pieces: &[(Block, PieceOf)],
        stripe: Option<StripeRecord<'_>>,
    ) -> Result<(), StoreError> {
        self.put_pieces_for(owner, None, pieces, stripe)
    }

    /// Stores `pieces` (each with what it is a piece of) and, if given, a stripe manifest,
    /// durably: when this returns they survive a crash. `sender` (peer id bytes) is the peer
    /// that sent them; it becomes the accounted owner of each unit it is the first to store
    /// here. `owners` are the unit's owners for piece GC: `None`, the sender (a write);
    /// `Some(list)`, those (repair and moves pass the unit's recorded owners; an empty list is
    /// *unknown*: a new unit gets no owner and is kept forever). Owners are added to those a
    /// unit has (at most [`MAX_UNIT_OWNERS`], then it is kept forever); a unit that exists
    /// here without owners never gains one, nor does a unit some of whose pieces were kept
    /// here before units were accounted. Every `Put` of a unit held here, new pieces or not,
    /// moves its `last_ms` to now (a holder does not free a unit written again meanwhile).
    /// The caller has verified every block against its CID and bounded the manifest.
    ///
    /// Nothing established earlier changes (see the module docs): a piece already kept for
    /// another unit keeps its row; a data block of the stripe gets `STRIPE_OF` only if it is
    /// held here as a piece of this stripe and has no stripe yet, and otherwise at most a hint
    /// if it has neither.
    pub fn put_pieces_for(
        &self,
        sender: &[u8],
        owners: Option<&[Vec<u8>]>,
        pieces: &[(Block, PieceOf)],
        stripe: Option<StripeRecord<'_>>,
    ) -> Result<(), StoreError> {
        let prefix = owner_prefix(sender)?;
        let named: Vec<Vec<u8>> = match owners {
            None => vec![sender.to_vec()],
            Some(list) => list.iter().filter(|o| !o.is_empty()).cloned().collect(),
        };
        let batch = self.batch();
        for (block, _) in pieces {
            batch.put(block)?;
        }
        if let Some(s) = stripe {
            batch.put(s.manifest)?;
        }
        batch.commit_with(|meta| {
            let mut table = meta.txn.open_table(PIECES)?;
            // unit → (pieces, bytes) newly kept here
            let mut added: BTreeMap<Unit, (u64, u64)> = BTreeMap::new();
            // units this Put names, and those of them with pieces kept here already
            let mut touched: BTreeMap<Unit, bool> = BTreeMap::new();
            let mut keep = |block: &Block, of: &PieceOf| -> Result<(), StoreError> {
                let key = block.cid.hash().to_bytes();
                let earlier = table
                    .get(key.as_slice())?
                    .map(|v| parse_piece(v.value()).map(|p| p.unit() == of.unit()))
                    .transpose()?;
                let seen = touched.entry(of.unit()).or_default();
                if let Some(same_unit) = earlier {
                    *seen |= same_unit;
                    return Ok(()); // kept already, for this unit or another: never relabelled
                }
                table.insert(key.as_slice(), piece_value(of).as_slice())?;
                let n = added.entry(of.unit()).or_default();
                n.0 += 1;
                n.1 += block.data.len() as u64;
                Ok(())
            };
            for (block, of) in pieces {
                keep(block, of)?;
            }
            if let Some(s) = stripe {
                let mcid = s.manifest.cid;
                keep(s.manifest, &PieceOf::Stripe(mcid))?;
                let manifest = mcid.to_bytes();
                meta.txn
                    .open_table(STRIPES)?
                    .insert(manifest.as_slice(), ())?;
                let mut of = meta.txn.open_table(STRIPE_OF)?;
                let mut hints = meta.txn.open_table(STRIPE_HINTS)?;
                let mine = piece_value(&PieceOf::Stripe(mcid));
                for cid in s.data {
                    let mh = cid.hash().to_bytes();
                    let mh = mh.as_slice();
                    if of.get(mh)?.is_some() {
                        continue; // never re-pointed
                    }
                    let held_here = table.get(mh)?.is_some_and(|v| v.value() == mine.as_slice());
                    if held_here {
                        of.insert(mh, manifest.as_slice())?;
                        hints.remove(mh)?;
                    } else if hints.get(mh)?.is_none() {
                        hints.insert(mh, manifest.as_slice())?;
                    }
                }
            }
            let now = now_ms();
            let mut units = meta.txn.open_table(UNITS)?;
            let mut owned = meta.txn.open_table(OWNED)?;
            let mut owners_table = meta.txn.open_multimap_table(UNIT_OWNERS)?;
            for (unit, had_pieces) in touched {
                let (n, bytes) = added.get(&unit).copied().unwrap_or_default();
                let key = unit_key(&unit);
                let existing = units
                    .get(key.as_slice())?
                    .map(|v| UnitRow::decode(unit, v.value()))
                    .transpose()?;
                let (row, fresh) = match existing {
                    Some(mut row) => {
                        row.last_ms = now;
                        row.pieces += n;
                        row.bytes += bytes;
                        (row, false)
                    }
                    None if n == 0 => continue, // nothing of it kept here for it
                    None => {
                        owned.insert([&prefix[..], &key].concat().as_slice(), ())?;
                        let row = UnitRow {
                            unit,
                            owner: sender.to_vec(),
                            owners: Vec::new(),
                            first_ms: now,
                            last_ms: now,
                            pieces: n,
                            bytes,
                        };
                        // Pieces of it kept here before units were accounted: its owners are
                        // unknown, it never gains any.
                        (row, !had_pieces)
                    }
                };
                units.insert(key.as_slice(), row.encode().as_slice())?;
                add_owners(&mut owners_table, &key, &named, fresh)?;
            }
            Ok::<_, StoreError>(())
        })
    }

    /// The owners of `unit` recorded here (see [`UnitRow::owners`]).
    pub fn unit_owners(&self, unit: &Unit) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_multimap_table(UNIT_OWNERS)?;
        owners_in(&table, &unit_key(unit))
    }

    /// Up to `limit` units held here, in unit-key order after `after`, with their owners.
    pub fn units_page(
        &self,
        after: Option<&Unit>,
        limit: usize,
    ) -> Result<Vec<UnitRow>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let units = txn.open_table(UNITS)?;
        let owners = txn.open_multimap_table(UNIT_OWNERS)?;
        let start = after.map(unit_key);
        let range = match &start {
            Some(s) => units.range::<&[u8]>((
                std::ops::Bound::Excluded(s.as_slice()),
                std::ops::Bound::Unbounded,
            ))?,
            None => units.range::<&[u8]>(..)?,
        };
        let mut out = Vec::new();
        for row in range {
            if out.len() == limit {
                break;
            }
            let (k, v) = row?;
            let mut row = UnitRow::decode(parse_unit(k.value())?, v.value())?;
            row.owners = owners_in(&owners, k.value())?;
            out.push(row);
        }
        Ok(out)
    }

    /// Piece GC on this holder: drops what this node holds of `unit` (as
    /// [`drop_unit`](Self::drop_unit), given the multihashes of its pieces) only if its
    /// `last_ms` is still `seen_last_ms`, what it was when its owners were asked — a `Put` of
    /// the unit since (a new write of the same bytes) keeps it. Returns the pieces dropped and
    /// the unit's bytes here, or `None` when it was kept (or is gone already).
    pub fn collect_unit(
        &self,
        unit: &Unit,
        multihashes: &[Vec<u8>],
        seen_last_ms: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        self.update(|meta| {
            let key = unit_key(unit);
            let row = match meta.txn.open_table(UNITS)?.get(key.as_slice())? {
                Some(v) => UnitRow::decode(*unit, v.value())?,
                None => return Ok(None),
            };
            if row.last_ms != seen_last_ms {
                return Ok(None);
            }
            let dropped = drop_in(meta.txn, unit, multihashes)?;
            Ok::<_, StoreError>(Some((dropped, row.bytes)))
        })
    }

    /// Who placed `unit` here, when, and what it takes (`None`: nothing of it is accounted
    /// here).
    pub fn unit(&self, unit: &Unit) -> Result<Option<UnitRow>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(UNITS)?;
        let key = unit_key(unit);
        let Some(v) = table.get(key.as_slice())? else {
            return Ok(None);
        };
        let mut row = UnitRow::decode(*unit, v.value())?;
        row.owners = owners_in(&txn.open_multimap_table(UNIT_OWNERS)?, &key)?;
        Ok(Some(row))
    }

    /// Up to `limit` units owned by `owner` (peer id bytes), in unit-key order after `after`.
    pub fn units_of(
        &self,
        owner: &[u8],
        after: Option<&Unit>,
        limit: usize,
    ) -> Result<Vec<UnitRow>, StoreError> {
        let prefix = owner_prefix(owner)?;
        let txn = self.inner.index.db.begin_read()?;
        let owned = txn.open_table(OWNED)?;
        let units = txn.open_table(UNITS)?;
        let owners = txn.open_multimap_table(UNIT_OWNERS)?;
        let start = [&prefix[..], &after.map(unit_key).unwrap_or_default()].concat();
        let range = match after {
            Some(_) => owned.range::<&[u8]>((
                std::ops::Bound::Excluded(start.as_slice()),
                std::ops::Bound::Unbounded,
            ))?,
            None => owned.range::<&[u8]>(start.as_slice()..)?,
        };
        let mut out = Vec::new();
        for row in range {
            let (k, _) = row?;
            let Some(key) = k.value().strip_prefix(prefix.as_slice()) else {
                break;
            };
            if out.len() == limit {
                break;
            }
            let unit = parse_unit(key)?;
            if let Some(v) = units.get(key)? {
                let mut row = UnitRow::decode(unit, v.value())?;
                row.owners = owners_in(&owners, key)?;
                out.push(row);
            }
        }
        Ok(out)
    }

    /// What the units owned by `owner` take here.
    pub fn usage_of(&self, owner: &[u8]) -> Result<Usage, StoreError> {
        let mut usage = Usage::default();
        let mut after = None;
        loop {
            let page = self.units_of(owner, after.as_ref(), 1024)?;
            for row in &page {
                usage.add(row);
            }
            match page.last() {
                Some(last) if page.len() == 1024 => after = Some(last.unit),
                _ => return Ok(usage),
            }
        }
    }

    /// What every owner's units take here, by owner.
    pub fn usage_by_owner(&self) -> Result<BTreeMap<Vec<u8>, Usage>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let units = txn.open_table(UNITS)?;
        let mut out: BTreeMap<Vec<u8>, Usage> = BTreeMap::new();
        for row in units.iter()? {
            let (k, v) = row?;
            let row = UnitRow::decode(parse_unit(k.value())?, v.value())?;
            out.entry(row.owner.clone()).or_default().add(&row);
        }
        Ok(out)
    }

    /// Whether `cid` is kept here as a piece, and as what.
    pub fn piece(&self, cid: &Cid) -> Result<Option<PieceOf>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(PIECES)?;
        table
            .get(cid.hash().to_bytes().as_slice())?
            .map(|v| parse_piece(v.value()))
            .transpose()
    }

    /// The manifest of the stripe that can rebuild data block `cid`, if this node holds it:
    /// the stripe the block is held here as a piece of, else one held here that lists it (a
    /// hint; see the module docs).
    pub fn stripe_of(&self, cid: &Cid) -> Result<Option<Cid>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let mh = cid.hash().to_bytes();
        for table in [STRIPE_OF, STRIPE_HINTS] {
            if let Some(v) = txn.open_table(table)?.get(mh.as_slice())? {
                return parse_cid(v.value()).map(Some);
            }
        }
        Ok(None)
    }

    /// Up to `limit` stripe manifests held here, in CID-byte order after `after`.
    pub fn stripes_page(&self, after: Option<&Cid>, limit: usize) -> Result<Vec<Cid>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(STRIPES)?;
        let start = after.map(|c| c.to_bytes());
        let mut out = Vec::new();
        let range = match &start {
            Some(s) => table.range::<&[u8]>((
                std::ops::Bound::Excluded(s.as_slice()),
                std::ops::Bound::Unbounded,
            ))?,
            None => table.range::<&[u8]>(..)?,
        };
        for row in range {
            if out.len() == limit {
                break;
            }
            out.push(parse_cid(row?.0.value())?);
        }
        Ok(out)
    }

    /// Up to `limit` pieces held here after multihash `after`.
    pub fn pieces_page(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<PieceRow>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(PIECES)?;
        let range = match after {
            Some(s) => {
                table.range::<&[u8]>((std::ops::Bound::Excluded(s), std::ops::Bound::Unbounded))?
            }
            None => table.range::<&[u8]>(..)?,
        };
        let mut out = Vec::new();
        for row in range {
            if out.len() == limit {
                break;
            }
            let (k, v) = row?;
            out.push(PieceRow {
                key: k.value().to_vec(),
                of: parse_piece(v.value())?,
            });
        }
        Ok(out)
    }

    /// Stops keeping what this node holds of one unit — the pieces among `multihashes` whose
    /// row names `unit` (a piece kept for another unit is left alone), for a stripe its
    /// manifest and the rows (and hints) saying that this stripe rebuilds its data blocks, and
    /// the unit's owner row — once the unit is whole on its targets elsewhere. GC then removes
    /// the blocks unless something else needs them. Returns how many pieces were dropped.
    pub fn drop_unit(&self, unit: &PieceOf, multihashes: &[Vec<u8>]) -> Result<u64, StoreError> {
        self.update(|meta| drop_in(meta.txn, &unit.unit(), multihashes))
    }

    /// Number of pieces held and of stripe manifests among them.
    pub fn piece_counts(&self) -> Result<(u64, u64), StoreError> {
        use redb::ReadableTableMetadata;
        let txn = self.inner.index.db.begin_read()?;
        Ok((
            txn.open_table(PIECES)?.len()?,
            txn.open_table(STRIPES)?.len()?,
        ))
    }
}

/// Adds `named` to the owners of the unit with key `key` (see [`Store::put_pieces_for`]):
/// only to a `fresh` unit or one with owners, at most [`MAX_UNIT_OWNERS`] (then the unknown
/// owner, an empty id, is recorded and nothing more).
fn add_owners(
    table: &mut redb::MultimapTable<&[u8], &[u8]>,
    key: &[u8],
    named: &[Vec<u8>],
    fresh: bool,
) -> Result<(), StoreError> {
    let mut current = owners_in(table, key)?;
    if (current.is_empty() && !fresh) || current.iter().any(|o| o.is_empty()) {
        return Ok(()); // unknown owners: kept forever, never gains any
    }
    for owner in named {
        if current.contains(owner) {
            continue;
        }
        if current.len() >= MAX_UNIT_OWNERS {
            table.insert(key, &[][..])?;
            return Ok(());
        }
        table.insert(key, owner.as_slice())?;
        current.push(owner.clone());
    }
    Ok(())
}

fn owners_in(
    table: &impl ReadableMultimapTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Vec<Vec<u8>>, StoreError> {
    table.get(key)?.map(|v| Ok(v?.value().to_vec())).collect()
}

/// Drops what is held here of `unit` (see [`Store::drop_unit`]) in `txn`.
fn drop_in(
    txn: &WriteTransaction,
    unit: &Unit,
    multihashes: &[Vec<u8>],
) -> Result<u64, StoreError> {
    let mut table = txn.open_table(PIECES)?;
    let mut dropped = 0;
    for mh in multihashes {
        let mine = match table.get(mh.as_slice())? {
            Some(v) => parse_piece(v.value())?.unit() == *unit,
            None => false,
        };
        if mine {
            table.remove(mh.as_slice())?;
            dropped += 1;
        }
    }
    if let Unit::Stripe(mcid) = unit {
        table.remove(mcid.hash().to_bytes().as_slice())?;
        txn.open_table(STRIPES)?
            .remove(mcid.to_bytes().as_slice())?;
        let manifest = mcid.to_bytes();
        for def in [STRIPE_OF, STRIPE_HINTS] {
            let mut of = txn.open_table(def)?;
            for mh in multihashes {
                let points_here = of
                    .get(mh.as_slice())?
                    .is_some_and(|v| v.value() == manifest.as_slice());
                if points_here {
                    of.remove(mh.as_slice())?;
                }
            }
        }
    }
    let key = unit_key(unit);
    let mut units = txn.open_table(UNITS)?;
    let owner = units
        .remove(key.as_slice())?
        .map(|v| UnitRow::decode(*unit, v.value()).map(|r| r.owner))
        .transpose()?;
    if let Some(owner) = owner {
        let mut owned = txn.open_table(OWNED)?;
        owned.remove([&owner_prefix(&owner)?[..], &key].concat().as_slice())?;
    }
    txn.open_multimap_table(UNIT_OWNERS)?
        .remove_all(key.as_slice())?;
    Ok(dropped)
}

/// Every piece's multihash in `txn` (GC keeps them).
pub(crate) fn marks_in(txn: &ReadTransaction) -> Result<Vec<Vec<u8>>, StoreError> {
    let table = txn.open_table(PIECES)?;
    table
        .iter()?
        .map(|row| Ok(row?.0.value().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::CidVersion;

    fn raw(data: &[u8]) -> Block {
        Block::new(CidVersion::V1, cairn_dag::RAW, data.to_vec()).unwrap()
    }

    #[test]
    fn pieces_are_durable_indexed_and_kept_by_gc() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c, parity, manifest) = (raw(b"a"), raw(b"b"), raw(b"c"), raw(b"p"), {
            let bytes = serde_ipld_dagcbor::to_vec(&vec![1u8, 2]).unwrap();
            Block::new(CidVersion::V1, cairn_dag::DAG_CBOR, bytes).unwrap()
        });
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .put_pieces(
                    b"peer-a",
                    &[
                        (a.clone(), PieceOf::Stripe(manifest.cid)),
                        (parity.clone(), PieceOf::Stripe(manifest.cid)),
                    ],
                    Some(StripeRecord {
                        manifest: &manifest,
                        data: &[a.cid, b.cid],
                    }),
                )
                .unwrap();
            let replica = |cid, copies| PieceOf::Replica { cid, copies };
            store
                .put_pieces(b"peer-b", &[(b.clone(), replica(b.cid, None))], None)
                .unwrap();
            store
                .put_pieces(b"peer-b", &[(c.clone(), replica(c.cid, Some(5)))], None)
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.piece(&a.cid).unwrap(),
            Some(PieceOf::Stripe(manifest.cid))
        );
        assert_eq!(
            store.piece(&b.cid).unwrap(),
            Some(PieceOf::Replica {
                cid: b.cid,
                copies: None
            })
        );
        assert_eq!(
            store.piece(&c.cid).unwrap(),
            Some(PieceOf::Replica {
                cid: c.cid,
                copies: Some(5)
            }),
            "a bucket's own number of copies is kept with the piece"
        );
        assert_eq!(store.piece(&raw(b"x").cid).unwrap(), None);
        assert_eq!(store.stripe_of(&b.cid).unwrap(), Some(manifest.cid));
        assert_eq!(store.stripes_page(None, 10).unwrap(), vec![manifest.cid]);
        assert!(
            store
                .stripes_page(Some(&manifest.cid), 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.piece_counts().unwrap(), (5, 1));
        assert_eq!(store.pieces_page(None, 2).unwrap().len(), 2);
        store.gc().unwrap();
        for blk in [&a, &b, &c, &parity, &manifest] {
            assert_eq!(store.get(&blk.cid).unwrap(), blk.data);
        }
        // The stripe moved elsewhere: its parity and manifest go; `b`, kept here as a whole
        // replica since, stays (its row names another unit), and so does `a` (not listed).
        let mh = |blk: &Block| blk.cid.hash().to_bytes();
        let unit = PieceOf::Stripe(manifest.cid);
        assert_eq!(store.drop_unit(&unit, &[mh(&parity), mh(&b)]).unwrap(), 1);
        store.gc().unwrap();
        assert!(!store.has(&parity.cid).unwrap());
        assert!(
            !store.has(&manifest.cid).unwrap(),
            "the manifest went with it"
        );
        assert!(store.stripes_page(None, 10).unwrap().is_empty());
        assert_eq!(store.stripe_of(&b.cid).unwrap(), None);
        assert!(store.has(&a.cid).unwrap() && store.has(&b.cid).unwrap());
    }

    fn manifest_block(tag: u8) -> Block {
        let bytes = serde_ipld_dagcbor::to_vec(&vec![tag, 2]).unwrap();
        Block::new(CidVersion::V1, cairn_dag::DAG_CBOR, bytes).unwrap()
    }

    #[test]
    fn a_lying_manifest_cannot_repoint_an_honest_block() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b, parity, junk) = (raw(b"a"), raw(b"b"), raw(b"p"), raw(b"junk"));
        let (honest, lying) = (manifest_block(1), manifest_block(2));
        // `sender` sends `piece` as a shard of the stripe `manifest` listing `data`.
        let put = |sender: &[u8], piece: &Block, manifest: &Block, data: &[Cid]| {
            store
                .put_pieces(
                    sender,
                    &[(piece.clone(), PieceOf::Stripe(manifest.cid))],
                    Some(StripeRecord { manifest, data }),
                )
                .unwrap();
        };
        // The honest stripe: this node keeps `a` (data) and a parity shard; `b` is elsewhere.
        put(b"peer-a", &a, &honest, &[a.cid, b.cid]);
        put(b"peer-a", &parity, &honest, &[a.cid, b.cid]);
        assert_eq!(store.stripe_of(&a.cid).unwrap(), Some(honest.cid));
        assert_eq!(store.stripe_of(&b.cid).unwrap(), Some(honest.cid));
        // A lying manifest listing both honest blocks, sent with a junk piece only.
        put(b"liar", &junk, &lying, &[a.cid, b.cid, junk.cid]);
        assert_eq!(store.stripe_of(&a.cid).unwrap(), Some(honest.cid));
        assert_eq!(store.stripe_of(&b.cid).unwrap(), Some(honest.cid));
        // Even sending the honest block's own bytes does not move it (nor relabel its piece).
        put(b"liar", &a, &lying, &[a.cid, junk.cid]);
        assert_eq!(store.stripe_of(&a.cid).unwrap(), Some(honest.cid));
        assert_eq!(
            store.piece(&a.cid).unwrap(),
            Some(PieceOf::Stripe(honest.cid))
        );
        // What the liar did store is its own unit, accounted to it.
        let liar = store.units_of(b"liar", None, 10).unwrap();
        assert_eq!(liar.len(), 1);
        assert_eq!(liar[0].unit, Unit::Stripe(lying.cid));
        assert_eq!(
            store
                .unit(&Unit::Stripe(honest.cid))
                .unwrap()
                .unwrap()
                .owner,
            b"peer-a"
        );
    }

    #[test]
    fn units_are_accounted_to_the_peer_that_placed_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b, p) = (raw(b"aaaa"), raw(b"bb"), raw(b"parity"));
        let m = manifest_block(7);
        let stripe = Some(StripeRecord {
            manifest: &m,
            data: &[a.cid, b.cid],
        });
        let shard = |blk: &Block| (blk.clone(), PieceOf::Stripe(m.cid));
        store.put_pieces(b"writer", &[shard(&a)], stripe).unwrap();
        // The same piece again (a retry) adds nothing; another shard adds to the unit, and a
        // second sender (a repairing node) does not take it over.
        store.put_pieces(b"writer", &[shard(&a)], stripe).unwrap();
        store.put_pieces(b"repairer", &[shard(&p)], stripe).unwrap();
        let c = raw(b"replicated");
        let replica = PieceOf::Replica {
            cid: c.cid,
            copies: Some(2),
        };
        store
            .put_pieces(b"other", &[(c.clone(), replica)], None)
            .unwrap();

        let row = store.unit(&Unit::Stripe(m.cid)).unwrap().unwrap();
        assert_eq!(row.owner, b"writer");
        assert_eq!(row.pieces, 3, "a, the parity shard and the manifest");
        assert_eq!(row.bytes, (4 + 6 + m.data.len()) as u64);
        assert!(row.first_ms > 0 && row.last_ms >= row.first_ms);
        let writer = store.units_of(b"writer", None, 10).unwrap();
        assert_eq!(writer, vec![row.clone()]);
        assert!(
            store
                .units_of(b"writer", Some(&row.unit), 10)
                .unwrap()
                .is_empty()
        );
        assert!(store.units_of(b"repairer", None, 10).unwrap().is_empty());
        assert!(
            store.units_of(b"write", None, 10).unwrap().is_empty(),
            "prefixes do not match"
        );
        assert_eq!(
            store.usage_of(b"writer").unwrap(),
            Usage {
                units: 1,
                pieces: 3,
                bytes: row.bytes
            }
        );
        assert_eq!(store.usage_of(b"other").unwrap().bytes, 10);
        let all = store.usage_by_owner().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[&b"other".to_vec()].units, 1);

        // Dropping a unit ends its accounting.
        let mh = |blk: &Block| blk.cid.hash().to_bytes();
        store
            .drop_unit(&PieceOf::Stripe(m.cid), &[mh(&a), mh(&b), mh(&p)])
            .unwrap();
        assert_eq!(store.unit(&Unit::Stripe(m.cid)).unwrap(), None);
        assert_eq!(store.usage_of(b"writer").unwrap(), Usage::default());
        assert_eq!(store.stripe_of(&a.cid).unwrap(), None);
        assert_eq!(store.stripe_of(&b.cid).unwrap(), None, "the hint went too");
        store.drop_unit(&replica, &[mh(&c)]).unwrap();
        assert!(store.usage_by_owner().unwrap().is_empty());
    }

    #[test]
    fn units_have_several_owners_bounded_and_legacy_units_gain_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let replica = |blk: &Block| {
            (
                blk.clone(),
                PieceOf::Replica {
                    cid: blk.cid,
                    copies: None,
                },
            )
        };
        let owners = |blk: &Block| store.unit_owners(&Unit::Block(blk.cid)).unwrap();
        // Two writers storing the same bytes: one unit, two owners; a retry adds nothing.
        let x = raw(b"same bytes");
        store.put_pieces(b"alice", &[replica(&x)], None).unwrap();
        let first = store.unit(&Unit::Block(x.cid)).unwrap().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
        store.put_pieces(b"bob", &[replica(&x)], None).unwrap();
        store.put_pieces(b"alice", &[replica(&x)], None).unwrap();
        let row = store.unit(&Unit::Block(x.cid)).unwrap().unwrap();
        assert_eq!(row.owners, vec![b"alice".to_vec(), b"bob".to_vec()]);
        assert_eq!(row.owner, b"alice", "accounted to the first");
        assert_eq!((row.pieces, row.first_ms), (1, first.first_ms));
        assert!(
            row.last_ms > first.last_ms,
            "a Put of a held unit moves last_ms"
        );

        // Repair names the owners; an empty list is unknown: no owner, and it gains none.
        let y = raw(b"repaired");
        let named = [b"alice".to_vec(), b"carol".to_vec()];
        store
            .put_pieces_for(b"repairer", Some(&named), &[replica(&y)], None)
            .unwrap();
        assert_eq!(owners(&y), named.to_vec());
        let z = raw(b"unknown owners");
        store
            .put_pieces_for(b"repairer", Some(&[]), &[replica(&z)], None)
            .unwrap();
        assert!(owners(&z).is_empty());
        store.put_pieces(b"alice", &[replica(&z)], None).unwrap();
        assert!(
            owners(&z).is_empty(),
            "a unit without owners never gains one"
        );

        // Bounded: past MAX_UNIT_OWNERS the unknown owner is recorded, and nothing more.
        let w = raw(b"popular");
        for i in 0..MAX_UNIT_OWNERS + 3 {
            store
                .put_pieces(format!("peer-{i:02}").as_bytes(), &[replica(&w)], None)
                .unwrap();
        }
        let all = owners(&w);
        assert_eq!(all.len(), MAX_UNIT_OWNERS + 1);
        assert!(all.contains(&Vec::new()), "the unknown owner");

        // A piece kept before units were accounted (no unit row): a Put of it again makes
        // no unit; a stripe with such a shard gets a unit row without owners.
        let (old, new) = (raw(b"legacy shard"), raw(b"new shard"));
        let m = manifest_block(9);
        store
            .update(|meta| {
                let mut t = meta.txn.open_table(PIECES)?;
                t.insert(
                    old.cid.hash().to_bytes().as_slice(),
                    piece_value(&PieceOf::Stripe(m.cid)).as_slice(),
                )?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let shard = |blk: &Block| (blk.clone(), PieceOf::Stripe(m.cid));
        store.put_pieces(b"alice", &[shard(&old)], None).unwrap();
        assert_eq!(store.unit(&Unit::Stripe(m.cid)).unwrap(), None);
        store
            .put_pieces(b"alice", &[shard(&old), shard(&new)], None)
            .unwrap();
        let row = store.unit(&Unit::Stripe(m.cid)).unwrap().unwrap();
        assert_eq!(row.pieces, 1);
        assert!(row.owners.is_empty(), "legacy: kept forever");

        // Pages of units, with their owners.
        let page = store.units_page(None, 100).unwrap();
        assert_eq!(page.len(), 5);
        let again = store.units_page(Some(&page[1].unit), 100).unwrap();
        assert_eq!(again, page[2..].to_vec());
    }

    #[test]
    fn a_unit_is_collected_only_if_no_put_came_since_its_owners_were_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let x = raw(b"dead");
        let piece = (
            x.clone(),
            PieceOf::Replica {
                cid: x.cid,
                copies: Some(3),
            },
        );
        store
            .put_pieces(b"alice", std::slice::from_ref(&piece), None)
            .unwrap();
        let unit = Unit::Block(x.cid);
        let seen = store.unit(&unit).unwrap().unwrap().last_ms;
        std::thread::sleep(std::time::Duration::from_millis(3));
        // Written again while its owners were asked: kept.
        store
            .put_pieces(b"alice", std::slice::from_ref(&piece), None)
            .unwrap();
        let mh = vec![x.cid.hash().to_bytes()];
        assert_eq!(store.collect_unit(&unit, &mh, seen).unwrap(), None);
        assert!(store.piece(&x.cid).unwrap().is_some());
        let seen = store.unit(&unit).unwrap().unwrap().last_ms;
        assert_eq!(
            store.collect_unit(&unit, &mh, seen).unwrap(),
            Some((1, x.data.len() as u64))
        );
        assert_eq!(store.unit(&unit).unwrap(), None);
        assert!(store.unit_owners(&unit).unwrap().is_empty());
        assert_eq!(store.piece(&x.cid).unwrap(), None);
        store.gc().unwrap();
        assert!(!store.has(&x.cid).unwrap(), "GC sweeps it");
        assert_eq!(store.collect_unit(&unit, &mh, seen).unwrap(), None, "gone");
    }
}
