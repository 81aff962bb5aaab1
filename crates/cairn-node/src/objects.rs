//! The object service: buckets and keys over UnixFS DAGs, as the S3 front end (and later the
//! gateway and the REST API) needs them. A PUT is staged first — body streamed into a write
//! batch on a blocking thread, MD5 computed on the way — and becomes visible only when
//! [`Objects::commit`] records it, in the same redb transaction that makes its blocks
//! durable. A staged object that is dropped (bad checksum, client gone) leaves nothing behind.

use crate::Files;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use cairn_dag::Cid;
use cairn_dag::file::FileLink;
use cairn_store::WriteBatch;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};

use crate::import::FileImporter;
use crate::model::codec::{encode, now_ms};
use crate::model::records::BUCKETS;
use crate::{CidVersion, Node, NodeError};

use crate::model::codec::decode;
use crate::model::records::{ObjectInfo, ObjectMeta};

/// A node's objects ([`Node::objects`]): put, read, copy, list, delete, share.
#[derive(Debug, Clone, Copy)]
pub struct Objects<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Objects: put, read, copy, list, delete, share.
    pub fn objects(&self) -> Objects<'_> {
        Objects { node: self }
    }
}

/// The bucket policy `cairn bucket set-public` writes: anonymous `s3:GetObject` on every
/// object and `s3:ListBucket` on the bucket.
pub fn public_policy(bucket: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CairnPublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": format!("arn:aws:s3:::{bucket}/*"),
            },
            {
                "Sid": "CairnPublicList",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:ListBucket",
                "Resource": format!("arn:aws:s3:::{bucket}"),
            },
        ],
    })
    .to_string()
}

/// Preconditions of a write (`If-Match`, `If-None-Match` on PUT), checked against the current
/// object inside the commit transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// The current object's ETag must be this (or any object must exist, for `*`).
    pub if_match: Option<String>,
    /// The current object's ETag must not be this (or no object may exist, for `*`).
    pub if_none_match: Option<String>,
}

impl WriteCondition {
    fn check(&self, current: Option<&ObjectMeta>) -> Result<(), NodeError> {
        let etag = current.map(|m| m.etag.as_str());
        let matches = |want: &str| match (want.trim_matches('"'), etag) {
            ("*", Some(_)) => true,
            (w, Some(e)) => w == e,
            (_, None) => false,
        };
        if let Some(want) = &self.if_match
            && !matches(want)
        {
            return Err(if etag.is_none() {
                NodeError::NoSuchKey {
                    bucket: String::new(),
                    key: String::new(),
                }
            } else {
                NodeError::PreconditionFailed
            });
        }
        if let Some(want) = &self.if_none_match
            && matches(want)
        {
            return Err(NodeError::PreconditionFailed);
        }
        Ok(())
    }
}

/// What a copy changes besides where the data is: the metadata (S3's `REPLACE` directive)
/// and the tags (its tagging `REPLACE`). Both are written in the copy's one transaction, as
/// one new version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyChanges {
    /// New metadata instead of the source's (size, ETag, parts and encryption stay the
    /// source's).
    pub meta: Option<ObjectMeta>,
    /// New tags instead of the source's (or the replaced metadata's).
    pub tags: Option<BTreeMap<String, String>>,
}

/// A copy of an object ([`Objects::copy`]).
#[derive(Debug)]
pub struct CopyObject<'a> {
    /// The source, as [`Objects::read`] planned it.
    pub source: &'a crate::read::ReadPlan,
    /// The source's key.
    pub source_key: &'a str,
    /// The source version the request named (`None`: the current one).
    pub source_version: Option<&'a str>,
    /// The destination bucket and key.
    pub to: (&'a str, &'a str),
    /// The encryption the request asks of the copy.
    pub encryption: crate::crypt::Sse,
    /// The metadata and tags the copy replaces.
    pub changes: CopyChanges,
}

/// A listing page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Objects, in key order.
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes (with a delimiter), in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub truncated: bool,
    /// Where the next page starts (exclusive), when truncated.
    pub next_marker: Option<String>,
    /// The bucket's owner (who owns its objects).
    pub owner: String,
}

/// An uploaded body whose blocks are written but not yet visible.
pub struct StagedObject {
    batch: WriteBatch,
    link: FileLink,
    md5: [u8; 16],
    /// Plaintext bytes (the DAG holds more when encrypted).
    plain_size: u64,
    /// How it was encrypted, and the data key to seal renewed shares with.
    crypt: Option<(crate::model::crypt::ObjectCrypt, cairn_crypt::Key)>,
}

impl std::fmt::Debug for StagedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedObject")
            .field("cid", &self.link.cid)
            .field("size", &self.link.file_size)
            .finish()
    }
}

impl StagedObject {
    /// Root of the staged DAG.
    pub fn cid(&self) -> Cid {
        self.link.cid
    }
    /// Body size (of the plaintext, when encrypted).
    pub fn size(&self) -> u64 {
        self.plain_size
    }
    /// Bytes in the DAG (more than [`size`](Self::size) when encrypted).
    pub fn stored_size(&self) -> u64 {
        self.link.file_size
    }
    /// How the body was encrypted, if it was.
    pub fn crypt(&self) -> Option<&crate::model::crypt::ObjectCrypt> {
        self.crypt.as_ref().map(|(c, _)| c)
    }
    /// MD5 of the body.
    pub fn md5(&self) -> [u8; 16] {
        self.md5
    }
    pub(crate) fn into_batch(self) -> WriteBatch {
        self.batch
    }
}

/// Feeds a request body to an import worker's channel; stops early when the worker has gone
/// (its own error is the answer then). Returns the body's error, if it failed.
pub(crate) async fn feed<S, E>(
    body: &mut S,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> Option<NodeError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    while let Some(piece) = body.next().await {
        match piece {
            Ok(bytes) => {
                if tx.send(bytes).await.is_err() {
                    return None;
                }
            }
            Err(e) => return Some(NodeError::Body(e.into())),
        }
    }
    None
}

/// Bodies imported at once (`Node::stage_object_sealed`); more wait their turn without a
/// thread (tokio's blocking pool has 512, shared with reads and commits).
pub const MAX_STAGING: usize = 128;

impl Node {
    /// [`stage_object`](crate::Objects::stage), encrypting the body on the way in with
    /// `sealing` when given (one STREAM piece): the DAG is of ciphertext; MD5 and size are of
    /// the plaintext.
    pub(crate) async fn stage_object_sealed<S, E>(
        &self,
        bucket: Option<&str>,
        mut body: S,
        version: CidVersion,
        sealing: Option<crate::crypt::Sealing>,
    ) -> Result<StagedObject, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let node = self.clone();
        let bucket = bucket.map(str::to_owned);
        let slot = self
            .staging
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| NodeError::Unavailable("the node is stopping".into()))?;
        let worker = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            // (a batch holds no lock while it streams; its commit waits for a running GC)
            let (batch, placer) = node.write_batch(bucket.as_deref())?;
            let batch = Arc::new(batch);
            let mut importer = FileImporter::new(batch.clone(), version);
            let mut md5 = Md5::new();
            let mut stream = match &sealing {
                Some(s) => Some(s.piece()?),
                None => None,
            };
            let (mut sealed, mut plain_size) = (Vec::new(), 0u64);
            while let Some(piece) = rx.blocking_recv() {
                md5.update(&piece);
                plain_size += piece.len() as u64;
                match &mut stream {
                    Some((enc, _)) => {
                        enc.update(&piece, &mut sealed);
                        importer.write(&sealed)?;
                        sealed.clear();
                    }
                    None => importer.write(&piece)?,
                }
            }
            let crypt = match (stream, sealing) {
                (Some((enc, prefix)), Some(sealing)) => {
                    enc.finish(&mut sealed);
                    importer.write(&sealed)?;
                    let piece = crate::model::crypt::CryptPiece {
                        prefix,
                        plain: plain_size,
                    };
                    Some((sealing.object(vec![piece]), sealing.key))
                }
                _ => None,
            };
            let link = importer.finish()?;
            crate::placed(placer)?;
            let md5 = <[u8; 16]>::from(md5.finalize());
            Ok::<_, NodeError>((batch, link, md5, plain_size, crypt))
        });
        let failure = crate::objects::feed(&mut body, tx).await;
        let result = worker
            .await
            .map_err(|e| NodeError::Unsupported(format!("import task failed: {e}")))?;
        if let Some(e) = failure {
            return Err(e); // dropping the batch removes what was written
        }
        let (batch, link, md5, plain_size, crypt) = result?;
        let batch = Arc::try_unwrap(batch)
            .map_err(|_| NodeError::Unsupported("import still running at commit".into()))?;
        Ok(StagedObject {
            batch,
            link,
            md5,
            plain_size,
            crypt,
        })
    }

    /// Commits a staged body as a plain file (no bucket): its blocks durable and, with `pin`,
    /// its root pinned — what `cairn add` does, for bodies that arrive as streams.
    pub(crate) fn commit_file(
        &self,
        staged: StagedObject,
        pin: bool,
    ) -> Result<FileLink, NodeError> {
        if pin {
            return self.commit_pinned(staged, true);
        }
        staged.batch.commit(&[])?;
        Ok(staged.link)
    }

    /// Commits a staged body with its root pinned, announced to the network when `announce`.
    pub(crate) fn commit_pinned(
        &self,
        staged: StagedObject,
        announce: bool,
    ) -> Result<FileLink, NodeError> {
        let link = staged.link;
        staged.batch.commit(&[link.cid])?;
        if announce {
            self.provide_queue().push([link.cid]);
        }
        Ok(link)
    }

    /// [`commit_object`](crate::Objects::commit) if `condition` holds for the current object at
    /// commit time; otherwise nothing is stored.
    pub(crate) fn commit_object_if(
        &self,
        staged: StagedObject,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        condition: &WriteCondition,
    ) -> Result<ObjectInfo, NodeError> {
        self.commit_checked(staged, bucket, key, meta, condition, &|_| true)
    }

    /// Commits a re-keyed version: shares of the version it replaces carry over only where
    /// `keep` says so.
    pub(crate) fn commit_object_keeping(
        &self,
        staged: StagedObject,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        keep: &dyn Fn(&crate::model::crypt::Share) -> bool,
    ) -> Result<ObjectInfo, NodeError> {
        self.commit_checked(staged, bucket, key, meta, &WriteCondition::default(), keep)
    }

    fn commit_checked(
        &self,
        staged: StagedObject,
        bucket: &str,
        key: &str,
        mut meta: ObjectMeta,
        condition: &WriteCondition,
        keep: &dyn Fn(&crate::model::crypt::Share) -> bool,
    ) -> Result<ObjectInfo, NodeError> {
        meta.size = staged.plain_size;
        if meta.etag.is_empty() {
            meta.etag = hex::encode(staged.md5);
        }
        meta.last_modified_ms = now_ms();
        let (crypt, data_key) = match staged.crypt {
            Some((c, k)) => (Some(c), Some(k)),
            None => (None, None),
        };
        meta.crypt = crypt;
        let cid = staged.link.cid;
        staged.batch.commit_with(|txn| {
            if txn.get(BUCKETS, bucket)?.is_none() {
                return Err(NodeError::NoSuchBucket(bucket.to_owned()));
            }
            let current: Option<ObjectMeta> = match txn.object(bucket, key)? {
                Some((_, rec)) => Some(decode(&rec)?),
                None => None,
            };
            if let (Some(c), Some(data)) = (meta.crypt.as_mut(), &data_key) {
                c.shares = Node::renew_shares(current.as_ref(), data, keep)?;
            }
            if *condition != WriteCondition::default() {
                condition.check(current.as_ref()).map_err(|e| match e {
                    NodeError::NoSuchKey { .. } => NodeError::NoSuchKey {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    },
                    other => other,
                })?;
            }
            crate::versions::record_put(txn, bucket, key, &cid, &mut meta)?;
            Ok(())
        })?;
        self.replication().replicate(bucket)?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            cid,
            meta,
        })
    }
}
impl Objects<'_> {
    /// Changes an object's metadata in place (same DAG), e.g. its ACL.
    pub fn update_meta(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&mut ObjectMeta),
    ) -> Result<ObjectInfo, NodeError> {
        let info = self.node.store().update(|txn| {
            let Some((cid, rec)) = txn.object(bucket, key)? else {
                return Err(NodeError::NoSuchKey {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                });
            };
            let mut meta: ObjectMeta = decode(&rec)?;
            change(&mut meta);
            let record = encode(&meta)?;
            txn.put_object(bucket, key, &cid, &record)?;
            // keep the history's copy of the current version in step
            if let Some(current) = txn.versions_of(bucket, key)?.first()
                && current.cid == Some(cid)
            {
                txn.put_version(bucket, key, current.seq, Some(&cid), &record)?;
            }
            Ok(ObjectInfo {
                key: key.to_owned(),
                cid,
                meta,
            })
        })?;
        self.node.replication().replicate(bucket)?;
        Ok(info)
    }

    /// Every current object of `bucket` under `prefix`, in key order, listed a page at a time
    /// (held in memory: for whole-folder work such as renames, quotas, packing).
    pub fn list_all(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectInfo>, NodeError> {
        let mut all: Vec<ObjectInfo> = Vec::new();
        loop {
            let after = all.last().map(|o| o.key.clone());
            let page = self.list(bucket, prefix, None, after.as_deref(), 1000)?;
            let more = page.truncated && !page.objects.is_empty();
            all.extend(page.objects);
            if !more {
                return Ok(all);
            }
        }
    }

    /// Every object key of a bucket, in order (held in memory: for whole-bucket rewrites).
    pub fn keys(&self, bucket: &str) -> Result<Vec<String>, NodeError> {
        Ok(self
            .node
            .store()
            .objects(bucket, "", None, usize::MAX)?
            .into_iter()
            .map(|o| o.key)
            .collect())
    }

    /// Streams a body into the store as a UnixFS file; nothing is visible until
    /// [`commit_object`](Self::commit). In a cluster the blocks are placed with
    /// `bucket`'s redundancy (`None`: the cluster's default). A failing body aborts and
    /// leaves nothing.
    pub async fn stage<S, E>(
        &self,
        bucket: Option<&str>,
        body: S,
        version: CidVersion,
    ) -> Result<StagedObject, NodeError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.node
            .stage_object_sealed(bucket, body, version, None)
            .await
    }

    /// Makes a staged object visible under `bucket/key` (replacing any previous one): its
    /// blocks are synced, then its record is committed in one transaction.
    pub fn commit(
        &self,
        staged: StagedObject,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
    ) -> Result<ObjectInfo, NodeError> {
        self.node
            .commit_object_if(staged, bucket, key, meta, &WriteCondition::default())
    }

    /// An object's root and metadata.
    pub fn get(&self, bucket: &str, key: &str) -> Result<ObjectInfo, NodeError> {
        match self.node.store().object(bucket, key)? {
            Some((cid, rec)) => Ok(ObjectInfo {
                key: key.to_owned(),
                cid,
                meta: decode(&rec)?,
            }),
            None => {
                self.node.buckets().get(bucket)?;
                Err(NodeError::NoSuchKey {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                })
            }
        }
    }

    /// A copy, as a door asks it: the source as [`Objects::read`] planned it (so read as
    /// its caller may, with its preconditions and SSE-C key checked), the destination, the
    /// encryption the request asks and the metadata and tags it replaces. The copy names
    /// the source's DAG when the encryption allows ([`Objects::link`], one transaction,
    /// tags included); else the plaintext streams from the source through a new encryptor
    /// into a new DAG. A copy onto itself that changes nothing is refused
    /// ([`NodeError::CopyToItself`]).
    pub async fn copy(&self, copy: CopyObject<'_>) -> Result<ObjectInfo, NodeError> {
        let CopyObject {
            source,
            source_key,
            source_version,
            to: (dst_bucket, dst_key),
            encryption,
            changes,
        } = copy;
        let (crypt, bucket) = (source.info().meta.crypt.clone(), dst_bucket.to_owned());
        let sealing = self
            .node
            .blocking(move |node| {
                node.objects()
                    .copy_sealing(crypt.as_ref(), &bucket, encryption)
            })
            .await?;
        if changes.meta.is_none()
            && sealing.is_none()
            && source.bucket() == dst_bucket
            && source_key == dst_key
        {
            return Err(NodeError::CopyToItself);
        }
        match sealing {
            Some(sealing) => {
                let mut meta = changes.meta.unwrap_or_else(|| source.info().meta.clone());
                meta.tags = changes
                    .tags
                    .unwrap_or_else(|| source.info().meta.tags.clone());
                self.copy_resealed(
                    (source.bucket(), source.info(), source.customer()),
                    (dst_bucket, dst_key),
                    meta,
                    sealing,
                )
                .await
            }
            None => {
                // The version the plan read and checked, even when the request named none:
                // a newer one written since is not what the preconditions passed.
                let version = source_version
                    .map(str::to_owned)
                    .or_else(|| source.info().meta.version_id.clone());
                let from = (source.bucket().to_owned(), source_key.to_owned(), version);
                let to = (dst_bucket.to_owned(), dst_key.to_owned());
                self.node
                    .blocking(move |node| {
                        node.objects().link(
                            (&from.0, &from.1, from.2.as_deref()),
                            (&to.0, &to.1),
                            changes,
                        )
                    })
                    .await
            }
        }
    }

    /// Copies an object (the current one, or the given version of the source) without copying
    /// data: the destination names the same DAG. With `replace`, the destination gets that
    /// metadata (size and ETag stay the source's).
    pub fn link(
        &self,
        (src_bucket, src_key, src_version): (&str, &str, Option<&str>),
        (dst_bucket, dst_key): (&str, &str),
        changes: CopyChanges,
    ) -> Result<ObjectInfo, NodeError> {
        let CopyChanges {
            meta: replace,
            tags,
        } = changes;
        let source = match src_version {
            Some(v) => Some(self.get_version(src_bucket, src_key, v)?),
            None => None,
        };
        // An encrypted source keeps its ciphertext; its data key is re-wrapped for the
        // destination bucket's key (made if the bucket has none).
        let rewrap = match &source {
            Some(info) => info.meta.crypt.clone(),
            None => self.get(src_bucket, src_key)?.meta.crypt,
        }
        .filter(|_| src_bucket != dst_bucket)
        .map(|c| {
            self.node
                .rewrap_for(src_bucket, dst_bucket, &c)
                .map(|w| (c.key, w))
        })
        .transpose()?;
        let info = self.node.store().update(|txn| {
            // The source as this transaction sees it: a version read above may be gone (and
            // its blocks with it, to GC), so it is looked up again here.
            let current = match (&source, src_version) {
                (Some(info), Some(id)) => Some(version_in(txn, (src_bucket, src_key, id), info)?),
                _ => txn.object(src_bucket, src_key)?,
            };
            let Some((cid, rec)) = current else {
                return Err(if txn.get(BUCKETS, src_bucket)?.is_none() {
                    NodeError::NoSuchBucket(src_bucket.to_owned())
                } else {
                    NodeError::NoSuchKey {
                        bucket: src_bucket.to_owned(),
                        key: src_key.to_owned(),
                    }
                });
            };
            if txn.get(BUCKETS, dst_bucket)?.is_none() {
                return Err(NodeError::NoSuchBucket(dst_bucket.to_owned()));
            }
            let src: ObjectMeta = decode(&rec)?;
            let mut meta = replace.unwrap_or_else(|| src.clone());
            if let Some(tags) = tags {
                meta.tags = tags;
            }
            meta.size = src.size;
            meta.etag = src.etag;
            meta.part_sizes = src.part_sizes;
            meta.crypt = src.crypt.map(|mut c| {
                c.shares.clear();
                if let Some((from, to)) = &rewrap
                    && c.key == *from
                {
                    c.key = to.clone();
                }
                c
            });
            if let Some(c) = &meta.crypt
                && src_bucket != dst_bucket
                && matches!(c.key, crate::model::crypt::KeyWrap::Bucket(_))
                && rewrap.as_ref().is_none_or(|(_, to)| *to != c.key)
            {
                return Err(NodeError::Unsupported(
                    "the source changed during the copy: retry".into(),
                ));
            }
            meta.last_modified_ms = now_ms();
            crate::versions::record_put(txn, dst_bucket, dst_key, &cid, &mut meta)?;
            Ok(ObjectInfo {
                key: dst_key.to_owned(),
                cid,
                meta,
            })
        })?;
        self.node.replication().replicate(dst_bucket)?;
        Ok(info)
    }

    /// Lists a bucket like ListObjects: keys under `prefix` after `after`, rolled up at the
    /// first `delimiter` past the prefix into common prefixes; at most `max` entries (objects
    /// and prefixes together).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> Result<Listing, NodeError> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut listing = Listing {
            owner: self.node.buckets().get(bucket)?.owner,
            ..Listing::default()
        };
        if max == 0 {
            return Ok(listing);
        }
        let mut cursor: Option<String> = after.map(str::to_owned);
        // The common prefix being skipped: its keys follow it in the page (no new query each).
        let mut skipping: Option<String> = None;
        const PAGE: usize = 1000;
        'scan: loop {
            let page = self
                .node
                .store()
                .objects(bucket, prefix, cursor.as_deref(), PAGE)?;
            let exhausted = page.len() < PAGE;
            for entry in page {
                if skipping
                    .as_deref()
                    .is_some_and(|cp| entry.key.starts_with(cp))
                {
                    continue;
                }
                let rolled = delimiter.and_then(|d| {
                    entry.key[prefix.len()..]
                        .find(d)
                        .map(|i| entry.key[..prefix.len() + i + d.len()].to_owned())
                });
                if listing.objects.len() + listing.common_prefixes.len() == max {
                    listing.truncated = true;
                    break 'scan;
                }
                match rolled {
                    Some(cp) => {
                        // Past the rest of this prefix: every key under it sorts before this.
                        cursor = Some(format!("{cp}\u{10FFFF}"));
                        // A marker that names a common prefix has listed all of it already.
                        if after.is_none_or(|a| cp.as_str() > a) {
                            listing.next_marker = Some(cp.clone());
                            listing.common_prefixes.push(cp.clone());
                        }
                        skipping = Some(cp);
                    }
                    None => {
                        listing.next_marker = Some(entry.key.clone());
                        cursor = Some(entry.key.clone());
                        listing.objects.push(ObjectInfo {
                            key: entry.key,
                            cid: entry.cid,
                            meta: decode(&entry.record)?,
                        });
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        if !listing.truncated {
            listing.next_marker = None;
        }
        Ok(listing)
    }
}

impl Files<'_> {
    /// The bytes of a file DAG (or a range of them) as an async stream of verified pieces,
    /// read on a blocking thread with a few pieces of read-ahead.
    pub fn cat_stream(
        &self,
        cid: Cid,
        range: Option<Range<u64>>,
    ) -> impl Stream<Item = Result<Bytes, NodeError>> + Send + Sync + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || {
            for piece in node.files().cat(cid, range) {
                let failed = piece.is_err();
                if tx.blocking_send(piece).is_err() || failed {
                    return;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

/// The version `wanted` (read earlier as version `id` of `bucket/key`) as `txn` sees it: its
/// root and record, or `NoSuchVersion` when it was deleted meanwhile.
fn version_in(
    txn: &cairn_store::MetaTxn<'_>,
    (bucket, key, id): (&str, &str, &str),
    wanted: &ObjectInfo,
) -> Result<(Cid, Vec<u8>), NodeError> {
    for v in txn.versions_of(bucket, key)? {
        if v.cid == Some(wanted.cid)
            && decode::<ObjectMeta>(&v.record)?.version_id == wanted.meta.version_id
        {
            return Ok((wanted.cid, v.record));
        }
    }
    Err(NodeError::NoSuchVersion(id.to_owned()))
}

/// Parses a redundancy policy as written in a bucket record or given by a user.
pub(crate) fn parse_redundancy(text: &str) -> Result<cairn_cluster::Redundancy, NodeError> {
    text.parse()
        .map_err(|e: cairn_cluster::ClusterError| NodeError::Unsupported(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bucket of `keys` with placeholder records, written in one transaction.
    fn bucket_with(keys: &[String]) -> (tempfile::TempDir, Node) {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        node.buckets().create("bkt", "owner").unwrap();
        let cid = cairn_dag::block::cid_of(cairn_dag::CidVersion::V1, 0x55, b"x").unwrap();
        let rec = encode(&ObjectMeta::default()).unwrap();
        node.store()
            .update(|txn| {
                for k in keys {
                    txn.put_object("bkt", k, &cid, &rec)?;
                }
                Ok::<_, NodeError>(())
            })
            .unwrap();
        (dir, node)
    }

    #[test]
    fn delimiter_listing_pages_across_store_pages() {
        // 1200 prefixes of 3 keys each (more rows than one store page), and loose keys
        let mut keys: Vec<String> = (0..1200)
            .flat_map(|i| ["a", "b", "c"].map(|s| format!("d{i:04}/{s}")))
            .collect();
        keys.extend((0..5).map(|i| format!("z{i}")));
        let (_dir, node) = bucket_with(&keys);
        let all = node
            .objects()
            .list("bkt", "", Some("/"), None, 5000)
            .unwrap();
        assert_eq!(all.common_prefixes.len(), 1200);
        assert_eq!(all.common_prefixes[1199], "d1199/");
        assert_eq!(all.objects.len(), 5);
        assert!(!all.truncated && all.next_marker.is_none());
        assert_eq!(all.owner, "owner");

        // paged by 500: the pages join up to the whole listing
        let (mut prefixes, mut objects, mut after) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let page = node
                .objects()
                .list("bkt", "", Some("/"), after.as_deref(), 500)
                .unwrap();
            assert!(page.common_prefixes.len() + page.objects.len() <= 500);
            prefixes.extend(page.common_prefixes);
            objects.extend(page.objects.into_iter().map(|o| o.key));
            if !page.truncated {
                break;
            }
            after = page.next_marker;
        }
        assert_eq!(prefixes, all.common_prefixes);
        assert_eq!(objects.len(), 5);
    }
}
