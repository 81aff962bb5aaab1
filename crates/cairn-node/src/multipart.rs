//! Multipart uploads. Each part is staged and committed as its own UnixFS DAG (a GC root while
//! the upload lasts). Complete makes the object's DAG equal to `ipfs add` of the whole body:
//! when every part but the last is a multiple of 256 KiB — the defaults of aws cli, boto3,
//! rclone and restic — the parts' leaves are exactly the whole file's leaves, so only new upper
//! nodes are written and no data is re-read; otherwise the parts are re-chunked. The object
//! becomes visible, and the upload disappears, in one transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_dag::file::{BalancedLayout, FileLink, branch_links};
use cairn_dag::{CHUNK_SIZE, Cid};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::import::FileImporter;
use crate::model::codec::now_ms;
use crate::model::records::{BUCKETS, ObjectInfo, ObjectMeta};
use crate::objects::StagedObject;
use crate::{CidVersion, Node, NodeError};

/// What starting a multipart upload asks ([`Multipart::create`]).
#[derive(Debug)]
pub struct CreateUpload<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The key.
    pub key: &'a str,
    /// The object's metadata (its encryption is decided by the node).
    pub meta: ObjectMeta,
    /// The user starting it.
    pub owner: &'a str,
    /// The checksum algorithm the parts carry (composite checksums).
    pub checksum_algorithm: Option<String>,
    /// The encryption the request asks.
    pub encryption: crate::crypt::Sse,
}

/// A node's multipart uploads ([`Node::multipart`]).
#[derive(Debug, Clone, Copy)]
pub struct Multipart<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Multipart uploads: create, upload parts, list, complete, abort.
    pub fn multipart(&self) -> Multipart<'_> {
        Multipart { node: self }
    }
}

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// What is stored about an upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Target bucket.
    pub bucket: String,
    /// Target key.
    pub key: String,
    /// Metadata the object will get.
    pub meta: ObjectMeta,
    /// Unix milliseconds of CreateMultipartUpload.
    pub initiated_ms: i64,
    /// Access key of the initiator.
    pub owner: String,
    /// Flexible-checksum algorithm asked for at creation (`SHA256`, `CRC32`, ...).
    #[serde(default)]
    pub checksum_algorithm: Option<String>,
}

/// multipart upload id → its record.
pub(crate) const UPLOADS: cairn_store::Table<UploadRecord> = cairn_store::Table::new("uploads");

/// Removes an upload and all its parts; whether it existed.
fn delete_upload(txn: &cairn_store::MetaTxn<'_>, id: &str) -> Result<bool, NodeError> {
    let existed = txn.delete(UPLOADS, id)?;
    txn.delete_parts(id)?;
    Ok(existed)
}

/// What is stored about a part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Size in bytes.
    pub size: u64,
    /// Hex MD5 of the part (its ETag).
    pub etag: String,
    /// Unix milliseconds of the upload.
    pub last_modified_ms: i64,
    /// Verified flexible checksums.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// The part's STREAM piece, when the upload is encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypt: Option<crate::model::crypt::CryptPiece>,
    /// Bytes in the part's DAG, when not `size` (encrypted parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<u64>,
}

impl PartRecord {
    /// Bytes in the part's DAG.
    pub fn stored_size(&self) -> u64 {
        self.stored.unwrap_or(self.size)
    }
}

/// A part as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// Part number.
    pub number: u32,
    /// Root of the part's DAG.
    pub cid: Cid,
    /// Its record.
    pub record: PartRecord,
}

fn new_upload_id() -> Result<String, NodeError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| NodeError::Unsupported(format!("randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

fn no_upload(id: &str) -> NodeError {
    NodeError::NoSuchUpload(id.to_owned())
}

impl Node {
    /// Records a staged body as part `number` of an upload (replacing an earlier one).
    pub(crate) fn commit_part(
        &self,
        staged: StagedObject,
        (id, bucket, key): (&str, &str, &str),
        number: u32,
        checksums: BTreeMap<String, String>,
    ) -> Result<PartRecord, NodeError> {
        let upload = self.multipart().get(id, bucket, key)?;
        let crypt = staged.crypt().and_then(|c| c.pieces.first().cloned());
        if crypt.is_some() != upload.meta.crypt.is_some() {
            return Err(NodeError::Unsupported(
                "a part must be encrypted exactly when its upload is".into(),
            ));
        }
        let record = PartRecord {
            size: staged.size(),
            etag: hex::encode(staged.md5()),
            last_modified_ms: now_ms(),
            checksums,
            stored: crypt.as_ref().map(|_| staged.stored_size()),
            crypt,
        };
        let bytes = crate::model::codec::encode(&record)?;
        let cid = staged.cid();
        staged.into_batch().commit_with(|txn| {
            if txn.get(UPLOADS, id)?.is_none() {
                return Err(no_upload(id));
            }
            txn.put_part(id, number, &cid, &bytes)?;
            Ok(())
        })?;
        Ok(record)
    }

    /// The leaves of a file DAG that hold bytes, in order, reading only branch nodes (the
    /// index knows which blocks are leaves). Iterative, at most [`MAX_TREE_DEPTH`](cairn_dag::dir::MAX_TREE_DEPTH)
    /// branch levels deep.
    pub(crate) fn file_leaves(
        &self,
        root: FileLink,
        out: &mut Vec<FileLink>,
    ) -> Result<(), NodeError> {
        let mut stack = vec![(root, 0usize)];
        while let Some((link, depth)) = stack.pop() {
            let known_leaf = self
                .store()
                .block_info(&link.cid)?
                .is_some_and(|info| !info.may_link);
            if known_leaf || link.cid.codec() == cairn_dag::RAW {
                out.push(link);
                continue;
            }
            let block = self.blocks().get(&link.cid)?;
            match branch_links(&link.cid, &block) {
                Some(_) if depth >= cairn_dag::dir::MAX_TREE_DEPTH => {
                    return Err(cairn_dag::DagError::LimitExceeded {
                        root: root.cid,
                        limit: cairn_dag::Limit::Depth,
                        max: cairn_dag::dir::MAX_TREE_DEPTH as u64,
                    }
                    .into());
                }
                // A child of no bytes adds no leaf to a join: skipping it also keeps a crafted
                // DAG of shared zero-size children (174 links to 174 links to …) from being
                // walked 174^depth times.
                Some(children) => stack.extend(
                    children
                        .into_iter()
                        .rev()
                        .filter(|c| c.file_size > 0)
                        .map(|c| (c, depth + 1)),
                ),
                None => out.push(link),
            }
        }
        Ok(())
    }

    fn join_part_leaves(
        &self,
        batch: &Arc<cairn_store::WriteBatch>,
        parts: &[PartInfo],
        version: CidVersion,
    ) -> Result<FileLink, NodeError> {
        let total: u64 = parts.iter().map(|p| p.record.stored_size()).sum();
        let mut layout = BalancedLayout::new(version);
        for (i, part) in parts.iter().enumerate() {
            // An empty part adds no leaf (unless the whole object is empty).
            let stored = part.record.stored_size();
            if stored == 0 && !(total == 0 && i == 0) {
                continue;
            }
            let mut leaves = Vec::new();
            let dag_size = self
                .store()
                .block_info(&part.cid)?
                .map_or(stored, |b| b.size);
            self.file_leaves(
                FileLink {
                    cid: part.cid,
                    file_size: stored,
                    dag_size,
                },
                &mut leaves,
            )?;
            for leaf in leaves {
                for block in layout.push_leaf(leaf) {
                    batch.put(&block)?;
                }
            }
        }
        let (blocks, root) = layout.finish()?;
        for block in &blocks {
            batch.put(block)?;
        }
        Ok(root.link)
    }

    fn rechunk_parts(
        &self,
        batch: &Arc<cairn_store::WriteBatch>,
        parts: &[PartInfo],
        version: CidVersion,
    ) -> Result<FileLink, NodeError> {
        let mut importer = FileImporter::new(batch.clone(), version);
        for part in parts {
            for piece in self.files().cat(part.cid, None) {
                importer.write(&piece?)?;
            }
        }
        importer.finish()
    }
}

impl Multipart<'_> {
    /// Starts a multipart upload of `bucket/key`: the encryption its parts will have is
    /// decided now (from what the request asks and the bucket's default), so every part is
    /// sealed alike. Returns the upload's id and record.
    pub fn create(&self, upload: CreateUpload<'_>) -> Result<(String, UploadRecord), NodeError> {
        let CreateUpload {
            bucket,
            key,
            mut meta,
            owner,
            checksum_algorithm,
            encryption,
        } = upload;
        meta.crypt = self
            .node
            .objects()
            .sealing_for(bucket, encryption)?
            .map(|s| s.object(Vec::new()));
        let id = new_upload_id()?;
        let record = UploadRecord {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            meta,
            initiated_ms: now_ms(),
            owner: owner.to_owned(),
            checksum_algorithm,
        };
        self.node.store().update(|txn| {
            if txn.get(BUCKETS, bucket)?.is_none() {
                return Err(NodeError::NoSuchBucket(bucket.to_owned()));
            }
            txn.put(UPLOADS, &id, &record)?;
            Ok(())
        })?;
        Ok((id, record))
    }

    /// Whether a part may be written to the upload `id` of `bucket/key` with the SSE-C key
    /// `customer` (key and its base64 MD5): the upload exists, and an upload created with
    /// SSE-C gets the same key on every part, one created without gets none. UploadPartCopy
    /// asks this before it reads its source; [`Multipart::upload_part`] checks it again.
    pub fn check_part(
        &self,
        (id, bucket, key): (&str, &str, &str),
        customer: Option<&(crate::crypt::Key, String)>,
    ) -> Result<(), NodeError> {
        self.for_part(id, bucket, key, customer).map(drop)
    }

    /// The upload record a part is written to, checked as [`Multipart::check_part`] says.
    pub(crate) fn for_part(
        &self,
        id: &str,
        bucket: &str,
        key: &str,
        customer: Option<&(crate::crypt::Key, String)>,
    ) -> Result<UploadRecord, NodeError> {
        let upload = self.get(id, bucket, key)?;
        if upload.meta.crypt.is_none() && customer.is_some() {
            return Err(NodeError::CustomerKey(
                "the upload was not created with SSE-C",
            ));
        }
        crate::read::check_customer(&upload.meta, customer.map(|c| c.1.as_str()))?;
        Ok(upload)
    }

    /// An upload's record, checked against the bucket and key it was started for.
    pub fn get(&self, id: &str, bucket: &str, key: &str) -> Result<UploadRecord, NodeError> {
        let rec = self
            .node
            .store()
            .read(UPLOADS, id)?
            .ok_or_else(|| no_upload(id))?;
        if rec.bucket != bucket || rec.key != key {
            return Err(no_upload(id));
        }
        Ok(rec)
    }

    /// The parts uploaded so far, by number.
    pub fn parts(&self, id: &str) -> Result<Vec<PartInfo>, NodeError> {
        self.node
            .store()
            .parts(id)?
            .into_iter()
            .map(|p| {
                Ok(PartInfo {
                    number: p.number,
                    cid: p.cid,
                    record: crate::model::codec::decode(&p.record)?,
                })
            })
            .collect()
    }

    /// Every upload in progress into `bucket`, by key then initiation.
    pub fn list(&self, bucket: &str) -> Result<Vec<(String, UploadRecord)>, NodeError> {
        self.node.buckets().get(bucket)?;
        let mut out: Vec<(String, UploadRecord)> = self
            .node
            .store()
            .list(UPLOADS)?
            .into_iter()
            .filter(|(_, r)| r.bucket == bucket)
            .collect();
        out.sort_by(|a, b| (&a.1.key, a.1.initiated_ms).cmp(&(&b.1.key, b.1.initiated_ms)));
        Ok(out)
    }

    /// Aborts an upload; its parts become garbage.
    pub fn abort(&self, id: &str, bucket: &str, key: &str) -> Result<(), NodeError> {
        self.get(id, bucket, key)?;
        self.node.store().update(|txn| {
            if !delete_upload(txn, id)? {
                return Err(no_upload(id));
            }
            Ok(())
        })
    }

    /// Completes an upload from the listed parts `(number, etag)`, in order.
    pub fn complete(
        &self,
        (id, bucket, key): (&str, &str, &str),
        listed: &[(u32, String)],
        version: CidVersion,
        checksums: BTreeMap<String, String>,
    ) -> Result<ObjectInfo, NodeError> {
        let upload = match self.get(id, bucket, key) {
            Ok(upload) => upload,
            // Completing an upload again answers with the object it made.
            Err(NodeError::NoSuchUpload(_)) => match self.node.objects().get(bucket, key) {
                Ok(info) if info.meta.upload_id.as_deref() == Some(id) => return Ok(info),
                _ => return Err(no_upload(id)),
            },
            Err(e) => return Err(e),
        };
        let stored: BTreeMap<u32, PartInfo> =
            self.parts(id)?.into_iter().map(|p| (p.number, p)).collect();
        if listed.is_empty() {
            return Err(NodeError::InvalidPart("no parts listed".into()));
        }
        if listed.windows(2).any(|w| w[1].0 <= w[0].0) {
            return Err(NodeError::InvalidPartOrder);
        }
        let mut chosen = Vec::with_capacity(listed.len());
        for (i, (number, etag)) in listed.iter().enumerate() {
            let part = stored
                .get(number)
                .filter(|p| p.record.etag == etag.trim_matches('"'))
                .ok_or_else(|| NodeError::InvalidPart(format!("part {number}")))?;
            if i + 1 < listed.len() && part.record.size < MIN_PART_SIZE {
                return Err(NodeError::EntityTooSmall(*number));
            }
            chosen.push(part.clone());
        }

        let mut md5s = Md5::new();
        for p in &chosen {
            let raw = hex::decode(&p.record.etag)
                .map_err(|_| NodeError::Unsupported("stored part ETag is not hex".into()))?;
            md5s.update(&raw);
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());

        let (batch, placer) = self.node.write_batch(Some(bucket))?;
        let batch = Arc::new(batch);
        let aligned = chosen[..chosen.len() - 1]
            .iter()
            .all(|p| p.record.stored_size() % CHUNK_SIZE as u64 == 0);
        let root = if aligned {
            self.node.join_part_leaves(&batch, &chosen, version)?
        } else {
            self.node.rechunk_parts(&batch, &chosen, version)?
        };
        crate::placed(placer)?;

        let mut meta = upload.meta;
        if let Some(c) = meta.crypt.as_mut() {
            c.pieces = chosen
                .iter()
                .map(|p| p.record.crypt.clone())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| NodeError::InvalidPart("a part is not encrypted".into()))?;
        }
        meta.upload_id = Some(id.to_owned());
        meta.part_sizes = chosen.iter().map(|p| p.record.size).collect();
        meta.checksums = checksums;
        meta.size = chosen.iter().map(|p| p.record.size).sum();
        meta.etag = etag;
        meta.last_modified_ms = now_ms();
        let batch = Arc::try_unwrap(batch)
            .map_err(|_| NodeError::Unsupported("import still running at commit".into()))?;
        batch.commit_with(|txn| {
            // The new root links the parts' leaves, which only the part rows keep: they must
            // still be the ones chosen (a part uploaded again meanwhile leaves the old one to
            // GC).
            let now = txn.parts(id)?;
            if !delete_upload(txn, id)? {
                return Err(no_upload(id));
            }
            if let Some(gone) = chosen
                .iter()
                .find(|p| !now.iter().any(|q| q.number == p.number && q.cid == p.cid))
            {
                return Err(NodeError::InvalidPart(format!("part {}", gone.number)));
            }
            crate::versions::record_put(txn, bucket, key, &root.cid, &mut meta)?;
            Ok(())
        })?;
        self.node.replication().replicate(bucket)?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            cid: root.cid,
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    fn body(
        bytes: &[u8],
        piece: usize,
    ) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Unpin {
        let pieces: Vec<_> = bytes
            .chunks(piece.max(1))
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        stream::iter(pieces)
    }

    async fn upload(node: &Node, data: &[u8], part_size: usize, version: CidVersion) -> ObjectInfo {
        let (id, listed) = upload_parts(node, data, part_size, version).await;
        node.multipart()
            .complete((&id, "bkt", "k"), &listed, version, BTreeMap::new())
            .unwrap()
    }

    /// An upload of `data` in parts, not completed: its id and the listed parts.
    /// An upload of `bkt/k` by `me`, with nothing asked of it.
    fn plain_upload() -> CreateUpload<'static> {
        CreateUpload {
            bucket: "bkt",
            key: "k",
            meta: ObjectMeta::default(),
            owner: "me",
            checksum_algorithm: None,
            encryption: Default::default(),
        }
    }

    async fn upload_parts(
        node: &Node,
        data: &[u8],
        part_size: usize,
        version: CidVersion,
    ) -> (String, Vec<(u32, String)>) {
        let id = node.multipart().create(plain_upload()).unwrap().0;
        let mut listed = Vec::new();
        for (i, chunk) in data.chunks(part_size).enumerate() {
            let staged = node
                .objects()
                .stage(Some("bkt"), body(chunk, 100_000), version)
                .await
                .unwrap();
            let rec = node
                .commit_part(staged, (&id, "bkt", "k"), i as u32 + 1, BTreeMap::new())
                .unwrap();
            listed.push((i as u32 + 1, rec.etag));
        }
        (id, listed)
    }

    /// Aligned parts are joined from the index alone: with every leaf's file gone from disk,
    /// Complete still builds the `ipfs add` DAG; unaligned parts must re-read (and so fail).
    #[tokio::test]
    async fn aligned_parts_join_without_reading_leaves() {
        let data: Vec<u8> = (0..10u32 << 20).map(|i| (i % 251) as u8).collect();
        let (_, whole) = cairn_dag::file::encode_bytes(&data, CidVersion::V1);
        for (part, joins) in [(5 << 20, true), ((5 << 20) + 1, false)] {
            let dir = tempfile::tempdir().unwrap();
            let node = Node::open(dir.path()).unwrap();
            node.buckets().create("bkt", "me").unwrap();
            let (id, listed) = upload_parts(&node, &data, part, CidVersion::V1).await;
            for shard in std::fs::read_dir(dir.path().join("blocks")).unwrap() {
                for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                    let f = f.unwrap().path();
                    if std::fs::metadata(&f).unwrap().len() >= 100_000 {
                        std::fs::remove_file(f).unwrap();
                    }
                }
            }
            let done = node.multipart().complete(
                (&id, "bkt", "k"),
                &listed,
                CidVersion::V1,
                BTreeMap::new(),
            );
            match done {
                Ok(info) => assert!(joins && info.cid == whole.link.cid, "part size {part}"),
                Err(e) => assert!(!joins, "part size {part}: {e}"),
            }
        }
    }

    #[tokio::test]
    async fn completed_dag_equals_ipfs_add_of_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        node.buckets().create("bkt", "me").unwrap();
        let data: Vec<u8> = (0..(12 << 20) + 12345u32)
            .map(|i| (i % 251) as u8)
            .collect();
        for version in [CidVersion::V0, CidVersion::V1] {
            let (_, whole) = cairn_dag::file::encode_bytes(&data, version);
            // aligned parts (5 MiB, 8 MiB) join leaves; unaligned ones (5 MiB + 1) re-chunk
            for part in [5 << 20, 8 << 20, (5 << 20) + 1] {
                let info = upload(&node, &data, part, version).await;
                assert_eq!(info.cid, whole.link.cid, "{version:?} part size {part}");
                assert_eq!(info.meta.size, data.len() as u64);
                assert!(
                    info.meta
                        .etag
                        .ends_with(&format!("-{}", data.len().div_ceil(part)))
                );
                let mut back = Vec::new();
                std::io::Read::read_to_end(&mut node.files().cat(info.cid, None), &mut back)
                    .unwrap();
                assert!(back == data);
            }
        }
        assert!(node.multipart().list("bkt").unwrap().is_empty());
    }

    #[tokio::test]
    async fn complete_checks_parts() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        node.buckets().create("bkt", "me").unwrap();
        let id = node.multipart().create(plain_upload()).unwrap().0;
        let mut etags = Vec::new();
        for n in 1..=2u32 {
            let staged = node
                .objects()
                .stage(Some("bkt"), body(b"small", 5), CidVersion::V0)
                .await
                .unwrap();
            etags.push(
                node.commit_part(staged, (&id, "bkt", "k"), n, BTreeMap::new())
                    .unwrap()
                    .etag,
            );
        }
        let v = CidVersion::V0;
        let err = node.multipart().complete(
            (&id, "bkt", "k"),
            &[(1, etags[0].clone()), (2, etags[1].clone())],
            v,
            BTreeMap::new(),
        );
        assert!(matches!(err, Err(NodeError::EntityTooSmall(1))));
        let err = node.multipart().complete(
            (&id, "bkt", "k"),
            &[(2, etags[1].clone()), (1, etags[0].clone())],
            v,
            BTreeMap::new(),
        );
        assert!(matches!(err, Err(NodeError::InvalidPartOrder)));
        let err =
            node.multipart()
                .complete((&id, "bkt", "k"), &[(1, "bad".into())], v, BTreeMap::new());
        assert!(matches!(err, Err(NodeError::InvalidPart(_))));
        let err = node.multipart().complete(
            (&id, "bkt", "other"),
            &[(1, etags[0].clone())],
            v,
            BTreeMap::new(),
        );
        assert!(matches!(err, Err(NodeError::NoSuchUpload(_))));
        node.multipart()
            .complete(
                (&id, "bkt", "k"),
                &[(2, etags[1].clone())],
                v,
                BTreeMap::new(),
            )
            .unwrap();
        assert!(matches!(
            node.multipart().abort(&id, "bkt", "k"),
            Err(NodeError::NoSuchUpload(_))
        ));
    }
}
