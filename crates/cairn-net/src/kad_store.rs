//! Kademlia's record store on disk (redb, `dht.redb` in the data folder): value records and
//! provider records — the node's own and those other peers announced to it — survive a
//! restart, where libp2p's `MemoryStore` forgets them and caps them in RAM.
//!
//! Records are soft state (peers re-announce them), so writes commit without an fsync and
//! [`RedbStore::flush`] makes them durable on a timer. Expiry times are kept as wall-clock
//! milliseconds and turned back into `Instant`s on read; an expired record is never returned.
//! Capacity is bounded: [`StoreLimits`] caps records, providers per key and value size.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::kad::store::{Error, RecordStore, Result};
use libp2p::kad::{KBucketKey, ProviderRecord, Record, RecordKey};
use libp2p::{Multiaddr, PeerId};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

use crate::NetError;

/// Value records: key → encoded record.
const RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("records");
/// Provider records: `len(key) u16 ‖ key ‖ peer id` → encoded provider record.
const PROVIDERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("providers");
/// The keys this node provides itself: key → expiry (ms since the epoch, 0 = none).
const PROVIDED: TableDefinition<&[u8], u64> = TableDefinition::new("provided");

/// Bounds of the store (a peer must not be able to fill the disk).
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Value records kept at most.
    pub max_records: usize,
    /// Largest value record, bytes.
    pub max_value_bytes: usize,
    /// Provider records kept per key (the closest providers win).
    pub max_providers_per_key: usize,
    /// Provider records from other peers kept at most (the node's own are not counted).
    pub max_provider_records: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_records: 100_000,
            max_value_bytes: 64 * 1024,
            max_providers_per_key: libp2p::kad::K_VALUE.get(),
            max_provider_records: 1_000_000,
        }
    }
}

/// A Kademlia record store kept in redb.
pub struct RedbStore {
    db: Arc<Database>,
    local: PeerId,
    limits: StoreLimits,
    /// Row counts, kept in step with the tables (read once at open).
    records: usize,
    provider_records: usize,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("records", &self.records)
            .field("provider_records", &self.provider_records)
            .finish()
    }
}

fn db_error(e: impl std::fmt::Display) -> NetError {
    NetError::Setup(format!("dht store: {e}"))
}

impl RedbStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, local: PeerId, limits: StoreLimits) -> Result2<Self> {
        let db = Database::create(path).map_err(db_error)?;
        Self::with_db(db, local, limits)
    }

    /// A store that lives in memory only (tests, or a node without a data folder).
    pub fn in_memory(local: PeerId, limits: StoreLimits) -> Result2<Self> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_error)?;
        Self::with_db(db, local, limits)
    }

    fn with_db(db: Database, local: PeerId, limits: StoreLimits) -> Result2<Self> {
        let txn = db.begin_write().map_err(db_error)?;
        let (records, provider_records) = {
            let r = txn.open_table(RECORDS).map_err(db_error)?;
            let p = txn.open_table(PROVIDERS).map_err(db_error)?;
            txn.open_table(PROVIDED).map_err(db_error)?;
            (
                r.len().map_err(db_error)? as usize,
                p.len().map_err(db_error)? as usize,
            )
        };
        txn.commit().map_err(db_error)?;
        Ok(RedbStore {
            db: Arc::new(db),
            local,
            limits,
            records,
            provider_records,
        })
    }

    /// Makes every write so far durable (one fsync).
    pub fn flush(&self) -> Result2<()> {
        let mut txn = self.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_error)?;
        txn.commit().map_err(db_error)
    }

    /// Keys this node provides, with their expiry.
    pub fn provided_keys(&self) -> Vec<RecordKey> {
        self.read(|txn| {
            let t = txn.open_table(PROVIDED)?;
            let mut keys = Vec::new();
            for row in t.iter()? {
                let (k, _) = row?;
                keys.push(RecordKey::new(&k.value()));
            }
            Ok(keys)
        })
        .unwrap_or_default()
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> std::result::Result<T, redb::Error>,
    ) -> Option<T> {
        let run = || -> std::result::Result<T, redb::Error> { f(&self.db.begin_read()?) };
        match run() {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!("dht store read failed: {e}");
                None
            }
        }
    }

    /// Runs `f` in a write transaction committed without fsync.
    fn write<T>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> std::result::Result<T, redb::Error>,
    ) -> std::result::Result<T, redb::Error> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        let v = f(&txn)?;
        txn.commit()?;
        Ok(v)
    }
}

/// Results of opening or flushing the store.
pub type Result2<T> = std::result::Result<T, NetError>;

// ---- encoding ----

fn to_wall(expires: Option<Instant>) -> u64 {
    let Some(at) = expires else { return 0 };
    let now = Instant::now();
    let wall = if at >= now {
        SystemTime::now() + (at - now)
    } else {
        SystemTime::now() - (now - at)
    };
    wall.duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis().max(1) as u64)
}

/// `None` for "never expires"; `Some(Err)` for a time already past.
fn from_wall(ms: u64) -> Option<std::result::Result<Instant, ()>> {
    if ms == 0 {
        return None;
    }
    let at = UNIX_EPOCH + Duration::from_millis(ms);
    Some(match at.duration_since(SystemTime::now()) {
        Ok(left) => Ok(Instant::now() + left),
        Err(_) => Err(()),
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Expiry, publisher (empty = none), value.
fn encode_record(r: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.value.len() + 64);
    out.extend_from_slice(&to_wall(r.expires).to_be_bytes());
    put_bytes(
        &mut out,
        &r.publisher.map(|p| p.to_bytes()).unwrap_or_default(),
    );
    put_bytes(&mut out, &r.value);
    out
}

/// `None` when the row is unreadable or expired.
fn decode_record(key: &[u8], row: &[u8]) -> Option<Record> {
    let mut r = Reader(row);
    let expires = match from_wall(r.u64()?) {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(())) => return None,
    };
    let publisher = match r.bytes()? {
        [] => None,
        b => Some(PeerId::from_bytes(b).ok()?),
    };
    let value = r.bytes()?.to_vec();
    Some(Record {
        key: RecordKey::new(&key),
        value,
        publisher,
        expires,
    })
}

/// Expiry, then the addresses.
fn encode_provider(p: &ProviderRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&to_wall(p.expires).to_be_bytes());
    for a in &p.addresses {
        put_bytes(&mut out, &a.to_vec());
    }
    out
}

fn provider_row_key(key: &[u8], peer: &PeerId) -> Vec<u8> {
    let mut out = provider_prefix(key);
    out.extend_from_slice(&peer.to_bytes());
    out
}

fn provider_prefix(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 40);
    out.extend_from_slice(&(key.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// `None` when the row is unreadable or expired.
fn decode_provider(key: &[u8], peer: &[u8], row: &[u8]) -> Option<ProviderRecord> {
    let mut r = Reader(row);
    let expires = match from_wall(r.u64()?) {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(())) => return None,
    };
    let mut addresses = Vec::new();
    while !r.0.is_empty() {
        addresses.push(Multiaddr::try_from(r.bytes()?.to_vec()).ok()?);
    }
    Some(ProviderRecord {
        key: RecordKey::new(&key),
        provider: PeerId::from_bytes(peer).ok()?,
        expires,
        addresses,
    })
}

/// Providers of `key` read from the table, expired ones left out.
fn read_providers(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> std::result::Result<Vec<ProviderRecord>, redb::Error> {
    let prefix = provider_prefix(key);
    let mut found = Vec::new();
    for row in table.range(prefix.as_slice()..)? {
        let (k, v) = row?;
        let k = k.value();
        if !k.starts_with(&prefix) {
            break;
        }
        if let Some(p) = decode_provider(key, &k[prefix.len()..], v.value()) {
            found.push(p);
        }
    }
    Ok(found)
}

impl RecordStore for RedbStore {
    type RecordsIter<'a> = std::vec::IntoIter<Cow<'a, Record>>;
    type ProvidedIter<'a> = std::vec::IntoIter<Cow<'a, ProviderRecord>>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.read(|txn| {
            let t = txn.open_table(RECORDS)?;
            Ok(t.get(k.as_ref())?
                .and_then(|v| decode_record(k.as_ref(), v.value())))
        })
        .flatten()
        .map(Cow::Owned)
    }

    fn put(&mut self, r: Record) -> Result<()> {
        if r.value.len() > self.limits.max_value_bytes {
            return Err(Error::ValueTooLarge);
        }
        let max = self.limits.max_records;
        let row = encode_record(&r);
        let added = self
            .write(|txn| {
                let mut t = txn.open_table(RECORDS)?;
                let exists = t.get(r.key.as_ref())?.is_some();
                if !exists && self.records >= max {
                    return Ok(None);
                }
                t.insert(r.key.as_ref(), row.as_slice())?;
                Ok(Some(!exists))
            })
            .map_err(|e| {
                tracing::warn!("dht store write failed: {e}");
                Error::MaxRecords
            })?;
        match added {
            None => Err(Error::MaxRecords),
            Some(new) => {
                self.records += usize::from(new);
                Ok(())
            }
        }
    }

    fn remove(&mut self, k: &RecordKey) {
        match self.write(|txn| Ok(txn.open_table(RECORDS)?.remove(k.as_ref())?.is_some())) {
            Ok(true) => self.records -= 1,
            Ok(false) => {}
            Err(e) => tracing::warn!("dht store write failed: {e}"),
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.read(|txn| {
            let t = txn.open_table(RECORDS)?;
            let mut all = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                if let Some(r) = decode_record(k.value(), v.value()) {
                    all.push(Cow::Owned(r));
                }
            }
            Ok(all)
        })
        .unwrap_or_default()
        .into_iter()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> Result<()> {
        let local = record.provider == self.local;
        let limits = self.limits;
        let others = self.provider_records;
        let key = record.key.clone();
        let delta = self
            .write(|txn| {
                let mut t = txn.open_table(PROVIDERS)?;
                let row_key = provider_row_key(key.as_ref(), &record.provider);
                let mut delta: isize = 0;
                if t.get(row_key.as_slice())?.is_none() {
                    let current = read_providers(&t, key.as_ref())?;
                    if current.len() >= limits.max_providers_per_key {
                        // Keep the closest providers: replace the farthest if it is farther.
                        let target = KBucketKey::new(key.clone());
                        let distance = |p: &PeerId| target.distance(&KBucketKey::from(*p));
                        let farthest = current
                            .iter()
                            .filter(|p| p.provider != self.local)
                            .max_by_key(|p| distance(&p.provider));
                        match farthest {
                            Some(f)
                                if local || distance(&f.provider) > distance(&record.provider) =>
                            {
                                t.remove(provider_row_key(key.as_ref(), &f.provider).as_slice())?;
                                delta -= 1;
                            }
                            _ => return Ok(None),
                        }
                    } else if !local && others >= limits.max_provider_records {
                        return Ok(None);
                    }
                    delta += 1;
                }
                t.insert(row_key.as_slice(), encode_provider(&record).as_slice())?;
                if local {
                    txn.open_table(PROVIDED)?
                        .insert(key.as_ref(), to_wall(record.expires))?;
                }
                Ok(Some(delta))
            })
            .map_err(|e| {
                tracing::warn!("dht store write failed: {e}");
                Error::MaxProvidedKeys
            })?;
        match delta {
            None => Err(Error::MaxProvidedKeys),
            Some(d) => {
                self.provider_records = self.provider_records.saturating_add_signed(d);
                Ok(())
            }
        }
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.read(|txn| read_providers(&txn.open_table(PROVIDERS)?, key.as_ref()))
            .unwrap_or_default()
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        let local = self.local;
        let keys = self.provided_keys();
        self.read(|txn| {
            let t = txn.open_table(PROVIDERS)?;
            let mut mine = Vec::new();
            for key in keys {
                let row = t.get(provider_row_key(key.as_ref(), &local).as_slice())?;
                if let Some(p) =
                    row.and_then(|v| decode_provider(key.as_ref(), &local.to_bytes(), v.value()))
                {
                    mine.push(Cow::Owned(p));
                }
            }
            Ok(mine)
        })
        .unwrap_or_default()
        .into_iter()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        let local = *p == self.local;
        let removed = self.write(|txn| {
            let mut t = txn.open_table(PROVIDERS)?;
            let gone = t
                .remove(provider_row_key(k.as_ref(), p).as_slice())?
                .is_some();
            if local {
                txn.open_table(PROVIDED)?.remove(k.as_ref())?;
            }
            Ok(gone)
        });
        match removed {
            Ok(true) => self.provider_records = self.provider_records.saturating_sub(1),
            Ok(false) => {}
            Err(e) => tracing::warn!("dht store write failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    fn provider(key: &RecordKey, p: PeerId, ttl: Duration) -> ProviderRecord {
        ProviderRecord {
            key: key.clone(),
            provider: p,
            expires: Some(Instant::now() + ttl),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
        }
    }

    #[test]
    fn records_and_providers_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.redb");
        let me = peer();
        let other = peer();
        let key = RecordKey::new(&b"some-cid");
        {
            let mut s = RedbStore::open(&path, me, StoreLimits::default()).unwrap();
            s.put(Record {
                key: key.clone(),
                value: b"value".to_vec(),
                publisher: Some(other),
                expires: Some(Instant::now() + Duration::from_secs(3600)),
            })
            .unwrap();
            s.add_provider(provider(&key, other, Duration::from_secs(3600)))
                .unwrap();
            s.add_provider(provider(&key, me, Duration::from_secs(3600)))
                .unwrap();
            s.flush().unwrap();
        }
        let s = RedbStore::open(&path, me, StoreLimits::default()).unwrap();
        let r = s.get(&key).unwrap();
        assert_eq!(r.value, b"value");
        assert_eq!(r.publisher, Some(other));
        assert!(r.expires.unwrap() > Instant::now() + Duration::from_secs(3500));
        let mut found: Vec<PeerId> = s.providers(&key).into_iter().map(|p| p.provider).collect();
        found.sort();
        let mut want = vec![me, other];
        want.sort();
        assert_eq!(found, want);
        assert_eq!(s.providers(&key)[0].addresses.len(), 1);
        let provided: Vec<_> = s.provided().map(|p| p.into_owned()).collect();
        assert_eq!(provided.len(), 1);
        assert_eq!(provided[0].provider, me);
        assert_eq!(s.provided_keys(), vec![key]);
    }

    #[test]
    fn expired_records_are_not_returned() {
        let me = peer();
        let mut s = RedbStore::in_memory(me, StoreLimits::default()).unwrap();
        let key = RecordKey::new(&b"k");
        s.add_provider(ProviderRecord {
            key: key.clone(),
            provider: peer(),
            expires: Some(Instant::now() - Duration::from_secs(1)),
            addresses: vec![],
        })
        .unwrap();
        s.put(Record {
            key: key.clone(),
            value: vec![1],
            publisher: None,
            expires: Some(Instant::now() - Duration::from_secs(1)),
        })
        .unwrap();
        assert!(s.providers(&key).is_empty());
        assert!(s.get(&key).is_none());
        assert_eq!(s.records().count(), 0);
    }

    #[test]
    fn limits_hold() {
        let me = peer();
        let limits = StoreLimits {
            max_records: 2,
            max_value_bytes: 8,
            max_providers_per_key: 3,
            max_provider_records: 100,
        };
        let mut s = RedbStore::in_memory(me, limits).unwrap();
        let rec = |k: &str, n: usize| Record::new(RecordKey::new(&k), vec![0; n]);
        assert!(matches!(s.put(rec("a", 9)), Err(Error::ValueTooLarge)));
        s.put(rec("a", 1)).unwrap();
        s.put(rec("b", 1)).unwrap();
        s.put(rec("a", 2)).unwrap(); // replacing is fine
        assert!(matches!(s.put(rec("c", 1)), Err(Error::MaxRecords)));
        s.remove(&RecordKey::new(&"a"));
        s.put(rec("c", 1)).unwrap();

        let key = RecordKey::new(&b"popular");
        let target = KBucketKey::new(key.clone());
        let mut peers: Vec<PeerId> = (0..6).map(|_| peer()).collect();
        for p in &peers {
            let _ = s.add_provider(provider(&key, *p, Duration::from_secs(60)));
        }
        // The three closest of the six are kept, whatever the order they came in.
        peers.sort_by_key(|p| target.distance(&KBucketKey::from(*p)));
        let mut kept: Vec<PeerId> = s.providers(&key).into_iter().map(|p| p.provider).collect();
        kept.sort_by_key(|p| target.distance(&KBucketKey::from(*p)));
        assert_eq!(kept, peers[..3]);
        // The node's own record always finds a place.
        s.add_provider(provider(&key, me, Duration::from_secs(60)))
            .unwrap();
        assert!(s.providers(&key).iter().any(|p| p.provider == me));
        assert_eq!(s.providers(&key).len(), 3);
        s.remove_provider(&key, &me);
        assert!(s.provided_keys().is_empty());
    }
}
