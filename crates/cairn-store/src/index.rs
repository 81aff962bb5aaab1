//! The redb metadata database: which blocks are durable (with size and whether they can have
//! links), and which roots are pinned with how many references.

use std::path::Path;

use cairn_dag::Cid;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::StoreError;
use crate::tables::{BLOCKS, INLINE, PINS};

/// What the index knows of a durable block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Size in bytes.
    pub size: u64,
    /// Whether the block may link to others (false for raw blocks and link-less dag-pb
    /// leaves, which soft checks and GC need not read).
    pub may_link: bool,
}

pub(crate) struct Index {
    pub(crate) db: Database,
}

impl Index {
    pub(crate) fn open(path: &Path, root: &Path) -> Result<Self, StoreError> {
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::Locked(root.to_path_buf()));
            }
            Err(e) => return Err(e.into()),
        };
        let txn = db.begin_write()?;
        crate::tables::create_all(&txn)?;
        crate::roots::upgrade_schema(&txn)?;
        txn.commit()?;
        Ok(Index { db })
    }

    pub(crate) fn block(&self, cid: &Cid) -> Result<Option<BlockInfo>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let key = cid.hash().to_bytes();
        Ok(table.get(key.as_slice())?.map(|v| {
            let (size, may_link) = v.value();
            BlockInfo { size, may_link }
        }))
    }

    /// The bytes of a block kept in the database, if it is one.
    pub(crate) fn inline(&self, cid: &Cid) -> Result<Option<bytes::Bytes>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(INLINE)?;
        let key = cid.hash().to_bytes();
        Ok(table
            .get(key.as_slice())?
            .map(|v| bytes::Bytes::copy_from_slice(v.value())))
    }

    /// Records synced blocks (and blocks kept inline, with their bytes) and runs `f` on the
    /// metadata, in one transaction: committed only if `f` succeeds.
    pub(crate) fn commit_with<T, E: From<StoreError>>(
        &self,
        blocks: &[(Vec<u8>, BlockInfo)],
        inline: &[(Vec<u8>, bytes::Bytes)],
        f: impl FnOnce(&crate::meta::MetaTxn<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        {
            let mut table = txn.open_table(BLOCKS).map_err(StoreError::from)?;
            for (mh, info) in blocks {
                table
                    .insert(mh.as_slice(), (info.size, info.may_link))
                    .map_err(StoreError::from)?;
            }
            let mut table = txn.open_table(INLINE).map_err(StoreError::from)?;
            for (mh, data) in inline {
                table
                    .insert(mh.as_slice(), data.as_ref())
                    .map_err(StoreError::from)?;
            }
        }
        let out = f(&crate::meta::MetaTxn {
            txn: &txn,
            on_object_change: crate::roots::object_changed,
        })?;
        txn.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Removes the rows (and inline bytes) of these blocks, in one transaction.
    pub(crate) fn forget(&self, multihashes: &[Vec<u8>]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(BLOCKS)?;
            let mut inline = txn.open_table(INLINE)?;
            for mh in multihashes {
                table.remove(mh.as_slice())?;
                inline.remove(mh.as_slice())?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub(crate) fn unpin(&self, cid: &Cid) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let removed = {
            let mut table = txn.open_table(PINS)?;
            table.remove(cid.to_bytes().as_slice())?.is_some()
        };
        txn.commit()?;
        Ok(removed)
    }

    pub(crate) fn is_pinned(&self, cid: &Cid) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PINS)?;
        Ok(table.get(cid.to_bytes().as_slice())?.is_some())
    }

    pub(crate) fn pins(&self) -> Result<Vec<(Cid, u64)>, StoreError> {
        pins_in(&self.db.begin_read()?)
    }

    /// Up to `limit` durable blocks' multihash bytes after `after`, in key order.
    pub(crate) fn block_keys_after(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let range = match after {
            Some(a) => {
                table.range::<&[u8]>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))?
            }
            None => table.range::<&[u8]>(..)?,
        };
        let mut out = Vec::new();
        for row in range.take(limit) {
            out.push(row?.0.value().to_vec());
        }
        Ok(out)
    }

    /// Every durable block's multihash bytes.
    pub(crate) fn block_keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let mut out = Vec::with_capacity(table.len()? as usize);
        for row in table.iter()? {
            out.push(row?.0.value().to_vec());
        }
        Ok(out)
    }

    pub(crate) fn totals(&self) -> Result<(u64, u64), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BLOCKS)?;
        let mut bytes = 0;
        for row in table.iter()? {
            bytes += row?.1.value().0;
        }
        Ok((table.len()?, bytes))
    }
}

/// Pinned roots and their reference counts, as `txn` sees them.
pub(crate) fn pins_in(txn: &ReadTransaction) -> Result<Vec<(Cid, u64)>, StoreError> {
    let table = txn.open_table(PINS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        match Cid::try_from(k.value()) {
            Ok(cid) => out.push((cid, v.value())),
            Err(e) => tracing::warn!("ignoring unreadable pin key: {e}"),
        }
    }
    Ok(out)
}
