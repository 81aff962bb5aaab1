//! Typed record tables. A [`Table<R>`] names a redb table keyed by text whose every value is
//! one record type `R`, kept as dag-cbor: reads and writes go through
//! [`MetaTxn::get`]/[`MetaTxn::put`]/[`MetaTxn::delete`] and [`Store::read`]/[`Store::list`],
//! so a caller never handles the bytes and a table's name, key and value type are written
//! once, where it is declared. The node declares its own tables (buckets, keys, jobs, …) next
//! to their record types; a table that has not been written yet reads as empty, so they need
//! no registration here. The encoding is the one the node always used (`serde_ipld_dagcbor`),
//! so existing databases read unchanged.

use std::marker::PhantomData;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::meta::MetaTxn;
use crate::{Store, StoreError};

/// A table of `R` records keyed by text (see the module docs).
pub struct Table<R> {
    name: &'static str,
    record: PhantomData<fn() -> R>,
}

impl<R> Table<R> {
    /// The table called `name`.
    pub const fn new(name: &'static str) -> Self {
        Table {
            name,
            record: PhantomData,
        }
    }

    /// Its name in the database.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    fn definition(&self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name)
    }
}

impl<R> Clone for Table<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Table<R> {}

impl<R> std::fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({})", self.name)
    }
}

fn encode<R: Serialize>(table: &'static str, record: &R) -> Result<Vec<u8>, StoreError> {
    serde_ipld_dagcbor::to_vec(record).map_err(|e| StoreError::Record {
        table,
        reason: e.to_string(),
    })
}

fn decode<R: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> Result<R, StoreError> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(|e| StoreError::Record {
        table,
        reason: e.to_string(),
    })
}

impl MetaTxn<'_> {
    /// The record under `key`.
    pub fn get<R: DeserializeOwned>(
        &self,
        table: Table<R>,
        key: &str,
    ) -> Result<Option<R>, StoreError> {
        let t = self.txn.open_table(table.definition())?;
        let bytes = t.get(key)?.map(|v| v.value().to_vec());
        bytes.map(|b| decode(table.name, &b)).transpose()
    }

    /// Writes the record under `key` (replacing any).
    pub fn put<R: Serialize>(
        &self,
        table: Table<R>,
        key: &str,
        record: &R,
    ) -> Result<(), StoreError> {
        let bytes = encode(table.name, record)?;
        self.txn
            .open_table(table.definition())?
            .insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Removes the record under `key`; whether there was one.
    pub fn delete<R>(&self, table: Table<R>, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .txn
            .open_table(table.definition())?
            .remove(key)?
            .is_some())
    }

    /// How many records the table holds.
    pub fn count<R>(&self, table: Table<R>) -> Result<u64, StoreError> {
        Ok(self.txn.open_table(table.definition())?.len()?)
    }
}

impl Store {
    /// The record under `key` (a read transaction: no writer lock).
    pub fn read<R: DeserializeOwned>(
        &self,
        table: Table<R>,
        key: &str,
    ) -> Result<Option<R>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let t = match txn.open_table(table.definition()) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = t.get(key)?.map(|v| v.value().to_vec());
        bytes.map(|b| decode(table.name, &b)).transpose()
    }

    /// Every record, by key; one that does not decode fails the whole list.
    pub fn list<R: DeserializeOwned>(
        &self,
        table: Table<R>,
    ) -> Result<Vec<(String, R)>, StoreError> {
        self.list_each(table)?
            .into_iter()
            .map(|(k, r)| r.map(|r| (k, r)))
            .collect()
    }

    /// Every record, by key, each decoded on its own: a caller that can go on without a bad
    /// row gets the others (and the row's error).
    #[allow(clippy::type_complexity)]
    pub fn list_each<R: DeserializeOwned>(
        &self,
        table: Table<R>,
    ) -> Result<Vec<(String, Result<R, StoreError>)>, StoreError> {
        let txn = self.inner.index.db.begin_read()?;
        let t = match txn.open_table(table.definition()) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value().to_owned(), decode(table.name, v.value())));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        name: String,
        n: u64,
    }

    const RECS: Table<Rec> = Table::new("recs");

    /// A table reads empty before its first write; records round-trip; bytes written through
    /// a raw `&str → &[u8]` definition (as before typed tables) read back as records, and
    /// a record that does not decode is an error naming the table.
    #[test]
    fn typed_tables_read_what_raw_tables_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read(RECS, "a").unwrap(), None);
        assert!(store.list(RECS).unwrap().is_empty());
        let a = Rec {
            name: "a".into(),
            n: 1,
        };
        store.update(|txn| txn.put(RECS, "a", &a)).unwrap();
        assert_eq!(store.read(RECS, "a").unwrap(), Some(a));
        // the old way: dag-cbor bytes put through a raw definition of the same name
        let raw: TableDefinition<&str, &[u8]> = TableDefinition::new("recs");
        let old = serde_ipld_dagcbor::to_vec(&Rec {
            name: "b".into(),
            n: 2,
        })
        .unwrap();
        store
            .update(|txn| {
                txn.txn.open_table(raw)?.insert("b", old.as_slice())?;
                txn.txn.open_table(raw)?.insert("bad", &b"\xff"[..])?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        assert_eq!(store.read(RECS, "b").unwrap().unwrap().n, 2);
        assert!(matches!(
            store.read(RECS, "bad"),
            Err(StoreError::Record { table: "recs", .. })
        ));
        store
            .update(|txn| {
                assert_eq!(txn.count(RECS)?, 3);
                assert!(txn.delete(RECS, "bad")?);
                assert!(!txn.delete(RECS, "bad")?);
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let names: Vec<String> = store
            .list(RECS)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
