//! Pieces: the blocks this node keeps for the cluster — whole replicas, and the data and
//! parity shards of Reed-Solomon stripes — with, for each, the stripe it belongs to; the stripe
//! manifests held here; and, for every data block of those stripes, which stripe rebuilds it.
//! A piece is written like any block (synced file, then one redb commit that records the block
//! and its piece row together), and pieces are GC roots.

use cairn_dag::{Block, Cid};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::meta::parse_cid;
use crate::{Store, StoreError};

/// piece multihash → `1 ‖ CID of its stripe's manifest` for a shard; for a whole replica
/// `2 ‖ copies ‖ its own CID` (`0 ‖ its own CID`: as many copies as the cluster's policy says).
const PIECES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pieces");
/// manifest CID bytes → () for every stripe manifest held here.
const STRIPES: TableDefinition<&[u8], ()> = TableDefinition::new("stripes");
/// data block multihash → CID bytes of the manifest of the stripe it belongs to.
const STRIPE_OF: TableDefinition<&[u8], &[u8]> = TableDefinition::new("stripe_of");

pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(PIECES)?;
    txn.open_table(STRIPES)?;
    txn.open_table(STRIPE_OF)?;
    Ok(())
}

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
    /// durably: when this returns they survive a crash. The caller has verified every block
    /// against its CID.
    pub fn put_pieces(
        &self,
        pieces: &[(Block, PieceOf)],
        stripe: Option<StripeRecord<'_>>,
    ) -> Result<(), StoreError> {
        let batch = self.batch();
        for (block, _) in pieces {
            batch.put(block)?;
        }
        if let Some(s) = stripe {
            batch.put(s.manifest)?;
        }
        batch.commit_with(|meta| {
            let mut table = meta.txn.open_table(PIECES)?;
            for (block, of) in pieces {
                let value = piece_value(of);
                table.insert(block.cid.hash().to_bytes().as_slice(), value.as_slice())?;
            }
            if let Some(s) = stripe {
                let manifest = s.manifest.cid.to_bytes();
                let value = piece_value(&PieceOf::Stripe(s.manifest.cid));
                table.insert(
                    s.manifest.cid.hash().to_bytes().as_slice(),
                    value.as_slice(),
                )?;
                meta.txn
                    .open_table(STRIPES)?
                    .insert(manifest.as_slice(), ())?;
                let mut of = meta.txn.open_table(STRIPE_OF)?;
                for cid in s.data {
                    of.insert(cid.hash().to_bytes().as_slice(), manifest.as_slice())?;
                }
            }
            Ok::<_, StoreError>(())
        })
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

    /// The manifest of the stripe that can rebuild data block `cid`, if this node holds it.
    pub fn stripe_of(&self, cid: &Cid) -> Result<Option<Cid>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let table = txn.open_table(STRIPE_OF)?;
        table
            .get(cid.hash().to_bytes().as_slice())?
            .map(|v| parse_cid(v.value()))
            .transpose()
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
    /// row names `unit` (a piece last written for another unit is left alone), and for a
    /// stripe its manifest and the rows saying which stripe rebuilds its data blocks — once
    /// the unit is whole on its targets elsewhere. GC then removes the blocks unless
    /// something else needs them. Returns how many pieces were dropped.
    pub fn drop_unit(&self, unit: &PieceOf, multihashes: &[Vec<u8>]) -> Result<u64, StoreError> {
        self.update(|meta| {
            let mut table = meta.txn.open_table(PIECES)?;
            let mut dropped = 0;
            for mh in multihashes {
                let mine = match table.get(mh.as_slice())? {
                    Some(v) => parse_piece(v.value())? == *unit,
                    None => false,
                };
                if mine {
                    table.remove(mh.as_slice())?;
                    dropped += 1;
                }
            }
            if let PieceOf::Stripe(mcid) = unit {
                table.remove(mcid.hash().to_bytes().as_slice())?;
                meta.txn
                    .open_table(STRIPES)?
                    .remove(mcid.to_bytes().as_slice())?;
                let mut of = meta.txn.open_table(STRIPE_OF)?;
                let manifest = mcid.to_bytes();
                for mh in multihashes {
                    let points_here = of
                        .get(mh.as_slice())?
                        .is_some_and(|v| v.value() == manifest.as_slice());
                    if points_here {
                        of.remove(mh.as_slice())?;
                    }
                }
            }
            Ok::<_, StoreError>(dropped)
        })
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
                .put_pieces(&[(b.clone(), replica(b.cid, None))], None)
                .unwrap();
            store
                .put_pieces(&[(c.clone(), replica(c.cid, Some(5)))], None)
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
}
