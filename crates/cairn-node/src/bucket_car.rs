//! Buckets in and out of CAR files. Export is the CAR of the bucket's current root (a UnixFS
//! directory any IPFS tool can import); import verifies a CAR of a UnixFS directory, then
//! makes a bucket whose objects are its files (keys are their paths, empty directories become
//! `dir/` markers), so the new bucket's root equals the CAR's root. Metadata UnixFS does not
//! carry (content types, user metadata) is not restored; ETags are recomputed (MD5).

use crate::Buckets;
use std::collections::HashMap;

use cairn_dag::dir::{DirLimits, MAX_TREE_DEPTH, NodeKind};
use cairn_dag::{Cid, DagError, Limit};
use md5::{Digest, Md5};
use tokio::io::AsyncRead;

use crate::model::codec::now_ms;
use crate::model::records::ObjectMeta;
use crate::{Node, NodeError};

/// What a bucket import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketImport {
    /// The CAR's root (the directory imported).
    pub root: Option<Cid>,
    /// Objects created.
    pub objects: usize,
    /// Entries skipped (symlinks, non-UnixFS nodes).
    pub skipped: usize,
}

impl Node {
    /// Makes the objects of the directory `root`; `pinned`: the import's own pin keeps its
    /// DAG until the objects do (checked again in the commit that makes them).
    fn objects_from_tree(
        &self,
        bucket: &str,
        owner: &str,
        root: Cid,
        pinned: bool,
    ) -> Result<BucketImport, NodeError> {
        if !matches!(self.files().describe(&root)?, NodeKind::Directory { .. }) {
            return Err(NodeError::Car(format!(
                "the CAR's root {root} is not a UnixFS directory"
            )));
        }
        let mut files = Vec::new();
        let mut report = BucketImport {
            root: Some(root),
            ..Default::default()
        };
        // Every path becomes a key, so a subtree linked from several folders is walked once per
        // path: the walk is bounded in depth and in keys (a crafted CAR of a few blocks can
        // have 256⁴ paths), and each distinct file is read once for its ETag.
        let too_many = || -> NodeError {
            DagError::LimitExceeded {
                root,
                limit: Limit::Entries,
                max: DirLimits::DEFAULT_MAX_ENTRIES as u64,
            }
            .into()
        };
        let mut stack = vec![(root, String::new(), 0usize)];
        while let Some((dir, prefix, depth)) = stack.pop() {
            let entries = self.files().list(&dir)?;
            if entries.is_empty() && !prefix.is_empty() {
                files.push((prefix.clone(), None));
            }
            if !entries.is_empty() && depth >= MAX_TREE_DEPTH {
                return Err(DagError::LimitExceeded {
                    root,
                    limit: Limit::Depth,
                    max: MAX_TREE_DEPTH as u64,
                }
                .into());
            }
            for entry in entries {
                if files.len() + stack.len() >= DirLimits::DEFAULT_MAX_ENTRIES {
                    return Err(too_many());
                }
                let path = format!("{prefix}{}", entry.name);
                match self.files().describe(&entry.cid)? {
                    NodeKind::Directory { .. } => {
                        stack.push((entry.cid, format!("{path}/"), depth + 1))
                    }
                    NodeKind::File { size } => files.push((path, Some((entry.cid, size)))),
                    NodeKind::Symlink | NodeKind::Other => report.skipped += 1,
                }
            }
        }
        let mut etags: HashMap<Cid, String> = HashMap::new();
        let mut metas = Vec::with_capacity(files.len());
        // Made durable with the objects (the empty file's blocks, held until then).
        let batch = self.store().batch();
        for (key, file) in files {
            let (cid, meta) = match file {
                Some((cid, size)) => {
                    let etag = match etags.get(&cid) {
                        Some(etag) => etag.clone(),
                        None => {
                            let mut md5 = Md5::new();
                            let mut stream = self.files().cat(cid, None);
                            while let Some(piece) = stream.next_piece()? {
                                md5.update(&piece);
                            }
                            let etag = hex::encode(md5.finalize());
                            etags.insert(cid, etag.clone());
                            etag
                        }
                    };
                    let meta = ObjectMeta {
                        size,
                        etag,
                        ..Default::default()
                    };
                    (cid, meta)
                }
                None => {
                    let (blocks, empty) = cairn_dag::file::encode_bytes(b"", crate::CidVersion::V0);
                    for b in &blocks {
                        batch.put(b)?;
                    }
                    let meta = ObjectMeta {
                        etag: hex::encode(Md5::digest(b"")),
                        ..Default::default()
                    };
                    (empty.link.cid, meta)
                }
            };
            metas.push((key, cid, meta));
        }
        self.buckets().create(bucket, owner)?;
        report.objects = metas.len();
        batch.commit_with(|txn| {
            // The files' DAGs are kept by the import's pin: still there, or the import fails
            // (someone unpinned it, and GC may have taken them since).
            if pinned && !txn.is_pinned(&root)? {
                return Err(NodeError::Car(format!(
                    "{root} was unpinned during the import; import it again"
                )));
            }
            for (key, cid, mut meta) in metas {
                meta.last_modified_ms = now_ms();
                crate::versions::record_put(txn, bucket, &key, &cid, &mut meta)?;
            }
            Ok::<_, NodeError>(())
        })?;
        self.replication().replicate(bucket)?;
        Ok(report)
    }
}
impl Buckets<'_> {
    /// Creates `bucket` (owned by `owner`) from a CARv1 whose first root is a UnixFS directory.
    /// The bucket must not exist yet.
    pub async fn import_car<R: AsyncRead + Send + Unpin>(
        &self,
        bucket: &str,
        owner: &str,
        car: R,
    ) -> Result<BucketImport, NodeError> {
        if self.node.buckets().get(bucket).is_ok() {
            return Err(NodeError::BucketAlreadyExists(bucket.to_owned()));
        }
        // Pinned while the objects are made (GC must not sweep the blocks meanwhile).
        let imported = self.node.files().car_import(car, true).await?;
        let Some(root) = imported.roots.first().copied() else {
            return Err(NodeError::Car("the CAR names no root".into()));
        };
        let node = self.node.clone();
        let (bucket, owner) = (bucket.to_owned(), owner.to_owned());
        let was_pinned = imported.pinned.contains(&root);
        tokio::task::spawn_blocking(move || {
            let result = node.objects_from_tree(&bucket, &owner, root, was_pinned);
            if was_pinned {
                // The import's own pin reference goes; the objects hold the blocks now.
                node.store().update(|txn| txn.unpin_once(&root))?;
            }
            result
        })
        .await
        .map_err(|e| NodeError::Unsupported(format!("bucket import task failed: {e}")))?
    }
}
