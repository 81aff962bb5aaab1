//! Buckets as IPLD. Each bucket has a root: a UnixFS directory of its current objects (keys
//! split on `/`, HAMT-sharded like Kubo when large, so `/ipfs/{root}/a/b` works anywhere and
//! equals `ipfs add -r` of the same tree), next to a dag-cbor version record that carries what
//! UnixFS cannot: every object's record (content-type, user metadata, ETag, version id) in an
//! index, and the previous record — a linked history. A signed head names each version.
//!
//! Object changes queue their key in the same transaction (see `cairn_store::roots`); a
//! background job folds the queue into a new root, rewriting only the directories and index
//! shards on changed paths (O(depth) blocks per change). Old roots stay GC roots for the
//! retention period; [`Roots::restore`] makes one current again as a new version.
//!
//! Keys that cannot be a UnixFS path (an empty segment as in `a//b` or `/a`, a `.` or `..`
//! segment) are in the index but not in the tree. A key ending in `/` (a "folder" marker) makes
//! its directory exist even when empty. When a key is both an object and a prefix of others
//! (`a` and `a/b`), the directory wins in the tree; the object stays in the index.

use crate::Repo;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use cairn_dag::dir_edit::{DirEditor, EntryLink};
use cairn_dag::{Block, Cid, CidVersion, DAG_CBOR};
use cairn_store::{DirtyKey, RootRow};

use crate::identity::Identity;
use crate::model::codec::{decode, encode, now_ms};
use crate::model::heads::RECORD_KIND;
use crate::model::records::ObjectMeta;
use crate::{Node, NodeError};

use crate::model::heads::{HeadPayload, ObjectRecord, SignedHead, VersionRecord, settings_digest};

/// Buckets' roots ([`Node::roots`]): commit, history, restore, heads, expiry.
#[derive(Debug, Clone, Copy)]
pub struct Roots<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Buckets' roots: commit, history, restore, signed heads, expiry.
    pub fn roots(&self) -> Roots<'_> {
        Roots { node: self }
    }
}

/// How bucket roots are built and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootsConfig {
    /// CID version of directory nodes (the node's `cid_version`, so a root equals
    /// `ipfs add -r` of the same files added the same way).
    pub version: CidVersion,
    /// How long old roots stay pinned (`None`: forever).
    pub retention: Option<Duration>,
}

impl Default for RootsConfig {
    fn default() -> Self {
        RootsConfig {
            version: CidVersion::V0,
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
        }
    }
}

/// A root just committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedRoot {
    /// Bucket.
    pub bucket: String,
    /// The history row.
    pub row: RootRow,
    /// Blocks the commit wrote (not counting ones already stored).
    pub blocks_written: usize,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Objects written back (new versions).
    pub written: usize,
    /// Objects deleted (they were not in the old root).
    pub deleted: usize,
}

/// The name under which `key` is held in the record index: `%`, `/` and NUL escaped, and the
/// whole key escaped when it is `.` or `..`, so every key is a valid UnixFS name.
pub fn index_name(key: &str) -> String {
    match key {
        "" => "%".into(),
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => key
            .replace('%', "%25")
            .replace('/', "%2F")
            .replace('\0', "%00"),
    }
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('\0')
}

/// Where a key sits in the tree: its path segments, and whether it is a folder marker (ends
/// in `/`). `None` for keys that are not UnixFS paths.
fn tree_path(key: &str) -> Option<(Vec<&str>, bool)> {
    let (body, marker) = match key.strip_suffix('/') {
        Some(body) => (body, true),
        None => (key, false),
    };
    let segments: Vec<&str> = body.split('/').collect();
    segments
        .iter()
        .all(|s| valid_segment(s))
        .then_some((segments, marker))
}

/// Changes below one directory.
#[derive(Debug, Default)]
struct Patch {
    /// The marker key of this directory changed.
    marker: bool,
    /// Children by name: (the key of that name changed, changes below it).
    children: BTreeMap<String, (bool, Patch)>,
}

impl Patch {
    fn add(&mut self, key: &str) {
        let Some((segments, marker)) = tree_path(key) else {
            return;
        };
        let mut node = self;
        let last = segments.len() - 1;
        for (i, segment) in segments.into_iter().enumerate() {
            let entry = node.children.entry(segment.to_owned()).or_default();
            if i == last && !marker {
                entry.0 = true;
            }
            node = &mut entry.1;
        }
        if marker {
            node.marker = true;
        }
    }
}

/// Shared state of root building in one node.
#[derive(Debug, Default)]
pub(crate) struct RootsState {
    config: parking_lot::RwLock<RootsConfig>,
    identity: std::sync::OnceLock<Identity>,
    /// One root build at a time.
    building: parking_lot::Mutex<()>,
    /// Roots to announce to the network.
    pub(crate) provide: crate::provide::ProvideQueue,
}

/// One root build: the bucket, the blocks it makes, sizes it looked up.
struct Build<'a> {
    node: &'a Node,
    bucket: &'a str,
    version: CidVersion,
    out: Vec<Block>,
    dag_sizes: HashMap<Cid, u64>,
    /// Object roots the build met (changed keys): announced once the root commits.
    fresh: Vec<Cid>,
    /// Every object root the build linked, with the key whose row named it when read: those
    /// reads were outside the commit's transaction (see `commit_bucket_root`).
    linked: Vec<(String, Cid)>,
}

impl Build<'_> {
    fn load(&self) -> impl FnMut(&Cid) -> Result<Bytes, NodeError> + '_ {
        |cid| Ok(self.node.blocks().get(cid)?)
    }

    fn dag_size(&mut self, cid: &Cid) -> Result<u64, NodeError> {
        if let Some(size) = self.dag_sizes.get(cid) {
            return Ok(*size);
        }
        let block = self.node.blocks().get(cid)?;
        let size = cairn_dag::block::dag_size(cid, &block)?;
        self.dag_sizes.insert(*cid, size);
        Ok(size)
    }

    fn object(&self, key: &str) -> Result<Option<(Cid, Vec<u8>)>, NodeError> {
        Ok(self.node.store().object(self.bucket, key)?)
    }

    fn file_link(&mut self, key: &str) -> Result<Option<EntryLink>, NodeError> {
        match self.object(key)? {
            Some((cid, _)) => {
                self.linked.push((key.to_owned(), cid));
                Ok(Some(EntryLink {
                    cid,
                    dag_size: self.dag_size(&cid)?,
                }))
            }
            None => Ok(None),
        }
    }

    fn is_dir(&self, cid: &Cid) -> Result<bool, NodeError> {
        Ok(cid.codec() == cairn_dag::DAG_PB
            && matches!(
                cairn_dag::dir::describe(cid, &self.node.blocks().get(cid)?),
                cairn_dag::dir::NodeKind::Directory { .. }
            ))
    }

    /// Applies `patch` to the directory `dir` (at `prefix`, which ends in `/` unless it is
    /// the root); `None` when the directory should no longer exist.
    fn edit_dir(
        &mut self,
        dir: Option<Cid>,
        prefix: &str,
        patch: &Patch,
    ) -> Result<Option<EntryLink>, NodeError> {
        let mut editor = match dir {
            Some(cid) => DirEditor::open(&cid, &self.node.blocks().get(&cid)?, self.version)?,
            None => DirEditor::empty(self.version),
        };
        for (name, (_, child)) in &patch.children {
            let existing = editor.get(name, &mut self.load())?;
            let existing_dir = match existing {
                Some(link) if self.is_dir(&link.cid)? => Some(link),
                _ => None,
            };
            let path = format!("{prefix}{name}");
            let sub = if child.children.is_empty() && !child.marker {
                existing_dir
            } else {
                self.edit_dir(existing_dir.map(|l| l.cid), &format!("{path}/"), child)?
            };
            let new = match sub {
                Some(link) => Some(link),
                None => self.file_link(&path)?,
            };
            if new != existing {
                editor.set(name, new, &mut self.load())?;
            }
        }
        let mut out = std::mem::take(&mut self.out);
        let edited = editor.finish(&mut self.load(), &mut out);
        self.out = out;
        let edited = edited?;
        let keep = !edited.is_empty || prefix.is_empty() || self.object(prefix)?.is_some();
        Ok(keep.then_some(edited.link))
    }

    /// Applies the changed keys to the record index `index`.
    fn edit_index(&mut self, index: Option<Cid>, keys: &[&str]) -> Result<Cid, NodeError> {
        let mut editor = match index {
            Some(cid) => DirEditor::open(&cid, &self.node.blocks().get(&cid)?, self.version)?,
            None => DirEditor::empty(self.version),
        };
        for key in keys {
            let link = match self.object(key)? {
                Some((data, rec)) => {
                    self.fresh.push(data);
                    self.linked.push(((*key).to_owned(), data));
                    let record = ObjectRecord {
                        key: (*key).to_owned(),
                        data,
                        meta: decode(&rec)?,
                    };
                    let block = Block::new(CidVersion::V1, DAG_CBOR, encode(&record)?)?;
                    let link = EntryLink {
                        cid: block.cid,
                        dag_size: block.data.len() as u64 + self.dag_size(&data)?,
                    };
                    self.out.push(block);
                    Some(link)
                }
                None => None,
            };
            editor.set(&index_name(key), link, &mut self.load())?;
        }
        let mut out = std::mem::take(&mut self.out);
        let edited = editor.finish(&mut self.load(), &mut out);
        self.out = out;
        Ok(edited?.link.cid)
    }
}

impl Node {
    fn roots_state(&self) -> &RootsState {
        &self.roots
    }

    /// Sets how roots are built and kept.
    pub(crate) fn set_roots_config(&self, config: RootsConfig) {
        *self.roots_state().config.write() = config;
    }

    /// How roots are built and kept.
    pub(crate) fn roots_config(&self) -> RootsConfig {
        *self.roots_state().config.read()
    }

    /// Roots waiting to be announced to the network.
    pub(crate) fn provide_queue(&self) -> &crate::provide::ProvideQueue {
        &self.roots_state().provide
    }

    /// The node's identity (loaded from, or created in, the data folder on first use).
    pub fn identity(&self) -> Result<&Identity, NodeError> {
        let state = self.roots_state();
        if let Some(id) = state.identity.get() {
            return Ok(id);
        }
        let loaded = Identity::load_or_create(self.store().root())?;
        Ok(state.identity.get_or_init(|| loaded))
    }

    /// Commits `bucket`'s next root from its changed `keys`. A build that linked an object
    /// which was replaced and swept before the commit could hold it is done again (a few
    /// times; then the keys stay queued for the next run).
    fn commit_bucket_root(
        &self,
        bucket: &str,
        keys: &[&DirtyKey],
    ) -> Result<Option<CommittedRoot>, NodeError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let raced = std::cell::Cell::new(false);
            match self.try_commit_bucket_root(bucket, keys, &raced) {
                Err(e) if raced.get() && attempts < 3 => {
                    tracing::debug!(bucket, "root build raced a GC, again: {e}");
                }
                other => return other,
            }
        }
    }

    fn try_commit_bucket_root(
        &self,
        bucket: &str,
        keys: &[&DirtyKey],
        raced: &std::cell::Cell<bool>,
    ) -> Result<Option<CommittedRoot>, NodeError> {
        let prev = self.store().latest_root(bucket)?;
        let config = self.roots_config();
        let mut build = Build {
            node: self,
            bucket,
            version: config.version,
            out: Vec::new(),
            dag_sizes: HashMap::new(),
            fresh: Vec::new(),
            linked: Vec::new(),
        };
        let names: Vec<&str> = keys.iter().map(|d| d.key.as_str()).collect();
        let mut patch = Patch::default();
        names.iter().for_each(|k| patch.add(k));
        let incremental = (|| {
            let tree = build.edit_dir(prev.as_ref().map(|r| r.tree), "", &patch)?;
            let index = build.edit_index(prev.as_ref().map(|r| r.index), &names)?;
            Ok::<_, NodeError>((tree, index))
        })();
        let (tree, index) = match incremental {
            Ok(done) => done,
            Err(NodeError::Store(e)) if prev.is_some() => {
                // The previous root is damaged: build this one from every object instead.
                tracing::warn!(
                    bucket,
                    "previous root unreadable ({e}); rebuilding from scratch"
                );
                build.out.clear();
                self.rebuild_from_objects(&mut build)?
            }
            Err(e) => return Err(e),
        };
        let tree = tree.expect("the root directory is always kept").cid;
        // A bucket taken over from another node continues the previous owner's sequence,
        // and its first root here is signed even when nothing changed (peers learn of the
        // new owner from it).
        let current = match self.buckets().get(bucket) {
            Ok(rec) => Some(rec),
            Err(NodeError::NoSuchBucket(_)) => None,
            Err(e) => return Err(e),
        };
        let taken = current.as_ref().and_then(|b| b.taken_over.clone());
        let floor = taken.as_ref().map_or(0, |t| t.seq);
        let settings = current.as_ref().map(settings_digest).transpose()?;
        // A bucket gone from here ends with a tombstone head, when it was this node's: a
        // mirror (which holds its owner's head) never signs one.
        let deleted = current.is_none();
        let tombstone = deleted && self.is_own_or_unheld(bucket)?;
        let (prev_settings, prev_deleted, prev_takeover) = match &prev {
            Some(p) => {
                let head: SignedHead = decode(&p.head)?;
                (
                    head.payload.settings.map(|s| s.into_vec()),
                    head.payload.deleted,
                    head.payload.takeover,
                )
            }
            None => (None, false, None),
        };
        // The certificate that made this node the owner goes in every head (a tombstone's
        // too: the bucket record that held it is gone), so nodes that pinned the previous
        // owner follow.
        let takeover = match &current {
            Some(b) => b.takeover.clone(),
            None => prev_takeover,
        };
        let clear = |txn: &cairn_store::MetaTxn<'_>| {
            for d in keys {
                txn.clear_dirty(bucket, &d.key, d.stamp)?;
            }
            Ok::<_, NodeError>(())
        };
        let unchanged = prev.as_ref().is_some_and(|p| {
            p.tree == tree
                && p.index == index
                && p.seq > floor
                && prev_settings.as_deref() == settings.as_ref().map(|s| s.as_slice())
                && prev_deleted == deleted
        });
        if unchanged || (deleted && (prev.is_none() || !tombstone)) {
            self.store().update(clear)?;
            return Ok(None);
        }
        let seq = prev
            .as_ref()
            .map_or(0, |p| p.seq)
            .max(floor)
            .checked_add(1)
            .filter(|s| *s < crate::model::takeover::MAX_SEQ)
            .ok_or_else(|| {
                NodeError::Unsupported(format!(
                    "bucket {bucket:?} has reached the highest sequence number"
                ))
            })?;
        let time_ms = now_ms() as u64;
        let record = VersionRecord {
            kind: RECORD_KIND.into(),
            bucket: bucket.to_owned(),
            seq,
            time_ms,
            tree,
            objects: index,
            prev: prev.as_ref().map(|p| p.record),
            settings: current.clone(),
        };
        let record = Block::new(CidVersion::V1, DAG_CBOR, encode(&record)?)?;
        let head = SignedHead::sign(
            HeadPayload {
                bucket: bucket.to_owned(),
                seq,
                time_ms,
                tree,
                record: record.cid,
                taken_from: match &takeover {
                    Some(t) => Some(t.from.clone()),
                    None => taken.map(|t| {
                        serde_bytes::ByteBuf::from(crate::model::codec::unhex(&t.owner_key))
                    }),
                },
                settings: settings.map(|s| serde_bytes::ByteBuf::from(s.to_vec())),
                deleted,
                takeover,
            },
            self.identity()?,
        )?;
        let row = RootRow {
            seq,
            record: record.cid,
            tree,
            index,
            time_ms,
            head: head.to_bytes()?,
        };
        build.out.push(record);
        // In a cluster the bucket's metadata DAG is kept with the same redundancy as its data.
        let (batch, placer) = self.write_batch(Some(bucket))?;
        let local = placer.is_none();
        for block in &build.out {
            batch.put(block)?;
        }
        crate::placed(placer)?;
        // The objects of changed keys were read outside the commit's transaction: one replaced
        // or deleted since is kept by nothing, and a GC between the read and the commit may
        // have swept it. So every object linked is held whole in the batch (held before it is
        // looked at, as a pin holds its DAG). One that is not whole was either swept that way
        // — its row names another object now: the build is done again — or is damaged and
        // still named by its row, which the transaction re-reads (linked as it is, as before).
        // Written to the cluster, the objects' blocks are pieces, which GC keeps as they are.
        let mut whole = std::collections::HashSet::new();
        for (key, cid) in build.linked.iter().filter(|_| local) {
            if whole.contains(cid) {
                continue;
            }
            if self.check_held(cid, &batch)?.is_ok() {
                whole.insert(*cid);
            } else if self.store().object(bucket, key)?.map(|o| o.0) != Some(*cid) {
                raced.set(true);
                return Err(NodeError::Unsupported(format!(
                    "object {key:?} of bucket {bucket:?} was replaced and swept while its \
                     root was built"
                )));
            }
        }
        let blocks_written = batch.written();
        batch.commit_with(|txn| {
            if txn.latest_root(bucket)?.map(|r| r.seq) != prev.as_ref().map(|p| p.seq) {
                return Err(NodeError::Unsupported(format!(
                    "bucket {bucket:?} got a root from elsewhere meanwhile"
                )));
            }
            for (key, cid) in build.linked.iter().filter(|_| local) {
                if !whole.contains(cid) && txn.object(bucket, key)?.map(|o| o.0) != Some(*cid) {
                    raced.set(true);
                    return Err(NodeError::Unsupported(format!(
                        "damaged object {key:?} of bucket {bucket:?} was replaced while its \
                         root was built"
                    )));
                }
            }
            txn.put_root(bucket, &row)?;
            if deleted {
                // Shared from the records, as heads held for others are (the bucket is gone).
                let held = crate::model::heads::HeldHead {
                    head: row.head.clone(),
                    bucket: None,
                    owner: None,
                    epoch: 0,
                };
                let key = crate::model::records::head_key(bucket);
                txn.put(crate::model::heads::RECORDS, &key, &held)?;
            }
            clear(txn)
        })?;
        tracing::debug!(bucket, seq, %tree, blocks_written, "bucket root committed");
        build.fresh.push(tree);
        self.provide_queue().push(build.fresh);
        Ok(Some(CommittedRoot {
            bucket: bucket.to_owned(),
            row,
            blocks_written,
        }))
    }

    fn rebuild_from_objects(
        &self,
        build: &mut Build<'_>,
    ) -> Result<(Option<EntryLink>, Cid), NodeError> {
        let all = self.objects().keys(build.bucket)?;
        let names: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut patch = Patch::default();
        names.iter().for_each(|k| patch.add(k));
        let tree = build.edit_dir(None, "", &patch)?;
        let index = build.edit_index(None, &names)?;
        Ok((tree, index))
    }

    /// Every object record of the index directory `index`.
    pub(crate) fn index_objects(&self, index: &Cid) -> Result<Vec<ObjectRecord>, NodeError> {
        self.files()
            .list(index)?
            .into_iter()
            .map(|entry| decode::<ObjectRecord>(&self.blocks().get(&entry.cid)?))
            .collect()
    }
}
impl Roots<'_> {
    /// Folds every queued change into new bucket roots; returns the roots committed.
    pub fn commit(&self) -> Result<Vec<CommittedRoot>, NodeError> {
        const PAGE: usize = 10_000;
        let _one_at_a_time = self.node.roots_state().building.lock();
        let mut committed = Vec::new();
        loop {
            let dirty = self.node.store().dirty(PAGE)?;
            let mut by_bucket: BTreeMap<&str, Vec<&DirtyKey>> = BTreeMap::new();
            for d in &dirty {
                by_bucket.entry(&d.bucket).or_default().push(d);
            }
            for (bucket, keys) in by_bucket {
                committed.extend(self.node.commit_bucket_root(bucket, &keys)?);
            }
            if dirty.len() < PAGE {
                return Ok(committed);
            }
        }
    }

    /// The bucket's current root, after folding in any queued change.
    pub fn current(&self, bucket: &str) -> Result<RootRow, NodeError> {
        self.node.buckets().get(bucket)?;
        self.commit()?;
        self.node
            .store()
            .latest_root(bucket)?
            .ok_or_else(|| NodeError::Unsupported(format!("bucket {bucket:?} has no root yet")))
    }

    /// The bucket's retained roots, oldest first.
    pub fn history(&self, bucket: &str) -> Result<Vec<RootRow>, NodeError> {
        self.current(bucket)?;
        Ok(self.node.store().root_history(bucket)?)
    }

    /// Every object record of a version record's index.
    pub fn objects(&self, row: &RootRow) -> Result<Vec<ObjectRecord>, NodeError> {
        self.node.index_objects(&row.index)
    }

    /// Makes the bucket's contents what they were at `root` (a tree or record CID from its
    /// history): objects that differ are written as new versions, objects added since are
    /// deleted (delete markers in a versioned bucket). Nothing is destroyed: the current state
    /// stays in the history.
    pub fn restore(&self, bucket: &str, root: &Cid) -> Result<Restored, NodeError> {
        let history = self.history(bucket)?;
        let Some(row) = history
            .iter()
            .rev()
            .find(|r| r.tree == *root || r.record == *root)
        else {
            return Err(NodeError::InvalidPath {
                input: root.to_string(),
                reason: format!("not a retained root of bucket {bucket:?}"),
            });
        };
        let old: BTreeMap<String, ObjectRecord> = self
            .objects(row)?
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect();
        let restored = self.node.store().update(|txn| {
            // The objects come from the root's index, read above; the retained root keeps
            // their DAGs only as long as it is retained, so that is checked here (an expiry
            // and a GC may have run since).
            if !txn.root_history(bucket)?.iter().any(|r| r == row) {
                return Err(NodeError::InvalidPath {
                    input: root.to_string(),
                    reason: format!("no longer a retained root of bucket {bucket:?}"),
                });
            }
            let mut done = Restored::default();
            for (key, record) in &old {
                let same = match txn.object(bucket, key)? {
                    Some((cid, rec)) => {
                        let current: ObjectMeta = decode(&rec)?;
                        cid == record.data && same_content(&current, &record.meta)
                    }
                    None => false,
                };
                if !same {
                    let mut meta = record.meta.clone();
                    meta.last_modified_ms = now_ms();
                    crate::versions::record_put(txn, bucket, key, &record.data, &mut meta)?;
                    done.written += 1;
                }
            }
            let current = self.node.objects().keys(bucket)?;
            for key in current.iter().filter(|k| !old.contains_key(*k)) {
                crate::versions::record_delete(txn, bucket, key)?;
                done.deleted += 1;
            }
            Ok::<_, NodeError>(done)
        })?;
        self.commit()?;
        self.node.replication().replicate(bucket)?;
        Ok(restored)
    }

    /// Drops roots older than the retention period (never a bucket's newest); returns how
    /// many went. Deleted buckets' histories expire too (their newest root is the tombstone):
    /// otherwise what a deleted bucket held would stay referenced forever.
    pub fn expire(&self) -> Result<usize, NodeError> {
        let Some(retention) = self.node.roots_config().retention else {
            return Ok(0);
        };
        let before = (now_ms() as u64).saturating_sub(retention.as_millis() as u64);
        let mut expired = 0;
        for bucket in self.node.store().history_buckets()? {
            expired += self
                .node
                .store()
                .update(|txn| txn.expire_roots(&bucket, before))?;
        }
        Ok(expired)
    }

    /// The bucket's current signed head (dag-cbor bytes).
    pub fn head(&self, bucket: &str) -> Result<Vec<u8>, NodeError> {
        Ok(self.current(bucket)?.head)
    }

    /// The bucket's latest committed root, as it is (no queued change folded in).
    pub fn latest(&self, bucket: &str) -> Result<Option<RootRow>, NodeError> {
        Ok(self.node.store().latest_root(bucket)?)
    }
}

impl Repo<'_> {
    /// Garbage collection as the node runs it: roots past the retention period expire first,
    /// then every block no pin, object, part, version or retained root reaches is swept. The
    /// roots of buckets mirrored from another node are *foreign* to the store's GC: they keep
    /// what they reach here, but are not this node's references when a holder asks it about
    /// a unit it owns (piece GC: `cairn_store::refs`), and blocks of theirs that are not here
    /// leave its mark complete.
    pub fn collect_garbage(&self) -> Result<cairn_store::GcStats, NodeError> {
        self.node.roots().expire()?;
        let mirrored: std::collections::HashSet<String> = self
            .node
            .buckets()
            .list()?
            .into_iter()
            .filter(|(_, record)| record.mirror.is_some())
            .map(|(name, _)| name)
            .collect();
        Ok(self.node.store().gc_with_foreign(&mirrored)?)
    }
}

/// Whether two records describe the same object content and metadata (ignoring write time and
/// version id, which a restore renews).
fn same_content(a: &ObjectMeta, b: &ObjectMeta) -> bool {
    let strip = |m: &ObjectMeta| ObjectMeta {
        last_modified_ms: 0,
        version_id: None,
        ..m.clone()
    };
    strip(a) == strip(b)
}

/// Background job: commits queued changes into bucket roots (every few hundred ms). Expiry
/// of old roots happens with GC ([`Repo::collect_garbage`]), the only thing it matters to.
#[derive(Debug, Default)]
pub struct RootsJob;

impl crate::worker::Job for RootsJob {
    fn name(&self) -> &'static str {
        "roots"
    }

    fn run(&mut self, node: &Node) -> Result<String, NodeError> {
        let committed = node.roots().commit()?;
        if committed.is_empty() {
            return Ok(String::new());
        }
        let blocks: usize = committed.iter().map(|c| c.blocks_written).sum();
        Ok(format!(
            "{} bucket root(s), {blocks} blocks",
            committed.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_tree_paths() {
        assert_eq!(tree_path("a/b/c"), Some((vec!["a", "b", "c"], false)));
        assert_eq!(tree_path("dir/"), Some((vec!["dir"], true)));
        assert_eq!(tree_path("a//b"), None);
        assert_eq!(tree_path("/a"), None);
        assert_eq!(tree_path("a/./b"), None);
        assert_eq!(tree_path("../x"), None);
        assert_eq!(index_name("a/b%c"), "a%2Fb%25c");
        assert_eq!(index_name(".."), "%2E%2E");
    }
}
