//! Cairn's service core: the one place where an add and a read are orchestrated over the block
//! store. Later layers (S3, gateway, network) call into [`Node`]; it never calls them.
//!
//! * [`access`] — who may do what: the one authorization decision every door asks.
//! * [`import`] — streaming, parallel UnixFS import of byte streams, files and directory trees.
//! * [`export`] — verified streaming reads of files and ranges, path resolution, listings,
//!   writing trees back to disk.
//! * [`bucket_car`] — a bucket as a CAR of its root, and a bucket made from one.
//! * [`car`] — CARv1 export (depth-first, de-duplicated) and verified, all-or-nothing import.
//! * [`objects`] — buckets and objects for the S3 front end: staged streaming PUTs made
//!   visible atomically, ranged GET streams, listings, copies without data copy.
//! * [`keys`] — users' S3 access keys.
//! * [`multipart`] — multipart uploads whose completed DAG equals `ipfs add` of the whole.
//! * [`versions`] — bucket versioning: version ids, delete markers, history.
//! * [`follow`] — other nodes' buckets mirrored read-only, held heads, `promote`.
//! * [`ownership`] — who may move a bucket's head: owner keys pinned, takeover certificates
//!   (the one decision every received head goes through).
//! * [`replicate`] — in a cluster, writes wait for their bucket head on its replica set.
//! * [`roots`] — buckets as IPLD: a UnixFS root per bucket version, dag-cbor version records
//!   linked into a history, signed heads, restore.
//! * [`identity`] — the node's ed25519 key.
//! * [`snapshot`] — `cairn backup`'s side: many files in one batch, trees with UnixFS
//!   mode/mtime, named snapshots (GC roots).
//! * [`jobs`] — upload jobs: bodies spooled durably, imported in the background, resumed
//!   after a restart.
//! * [`published`] — which CIDs anonymous readers (the gateway) may fetch.
//! * [`worker`] — the one shape of background jobs (periodic, on a blocking thread); GC.
//! * [`check`] — soft (every block present) and hard (every block re-hashed, files
//!   re-assembled) checks of a DAG.

pub mod access;
pub mod bucket_car;
pub mod car;
pub mod check;
pub mod crypt;
pub mod export;
pub mod follow;
pub mod identity;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod multipart;
pub mod objects;
pub mod ownership;
pub mod provide;
pub mod published;
pub mod replicate;
pub mod roots;
pub mod snapshot;
pub mod versions;
pub mod worker;

use cairn_dag::{Cid, DagError};
use cairn_store::{Store, StoreError, WriteBatch};

pub use cairn_dag::CidVersion;

/// Errors of the service core.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// From the block store (including `CorruptBlock`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// From decoding a DAG.
    #[error(transparent)]
    Dag(Box<DagError>),
    /// Local filesystem failure on an input or output path.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A string that should be a CID or `CID/path` is not.
    #[error("invalid CID or path {input:?}: {reason}")]
    InvalidPath {
        /// The input.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A CAR file is malformed or holds a block that does not match its CID.
    #[error("CAR: {0}")]
    Car(String),
    /// Input the operation cannot take (a directory without `-r`, a FIFO, ...).
    #[error("{0}")]
    Unsupported(String),
    /// No such bucket.
    #[error("no such bucket {0:?}")]
    NoSuchBucket(String),
    /// No such key.
    #[error("no such key {key:?} in bucket {bucket:?}")]
    NoSuchKey {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
    },
    /// The bucket name is taken by another owner.
    #[error("bucket {0:?} already exists")]
    BucketAlreadyExists(String),
    /// The bucket still holds objects.
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    /// The bucket name breaks S3's naming rules.
    #[error("invalid bucket name {0:?}")]
    InvalidBucketName(String),
    /// No such multipart upload (or not for this bucket and key).
    #[error("no such upload {0:?}")]
    NoSuchUpload(String),
    /// A listed part is missing or its ETag differs.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// Parts not listed in ascending order.
    #[error("parts must be listed in ascending order")]
    InvalidPartOrder,
    /// No such upload job (or expired).
    #[error("no such job {0:?}")]
    NoSuchJob(String),
    /// No such version of the object.
    #[error("no such version {0:?}")]
    NoSuchVersion(String),
    /// The version asked for is a delete marker.
    #[error("the version is a delete marker")]
    DeleteMarker,
    /// A write precondition (If-Match / If-None-Match) failed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A part other than the last is under 5 MiB.
    #[error("part {0} is smaller than the 5 MiB minimum")]
    EntityTooSmall(u32),
    /// The cluster could not keep a write with the redundancy it needs (too few peers up).
    #[error("cluster: {0}")]
    Unavailable(String),
    /// The request body failed while streaming (signature, checksum, client gone); the
    /// front end's own error is kept so it can answer with it.
    #[error("request body: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// Decryption or key handling failed: tampered, reordered or truncated ciphertext, a
    /// malformed key record.
    #[error("encryption: {0}")]
    Crypt(cairn_crypt::CryptError),
    /// The caller (or this node's user key) may not have this.
    #[error("access denied: {0}")]
    AccessDenied(String),
}

/// Bytes as an async stream (object bodies).
pub type ByteStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<bytes::Bytes, NodeError>> + Send + Sync + 'static>,
>;

impl From<cairn_cluster::ClusterError> for NodeError {
    fn from(e: cairn_cluster::ClusterError) -> Self {
        match e {
            cairn_cluster::ClusterError::Store(s) => NodeError::Store(s),
            other => NodeError::Unavailable(other.to_string()),
        }
    }
}

/// Waits (on a blocking thread) until a write's blocks are placed with their quorum.
pub(crate) fn placed(
    placer: Option<std::sync::Arc<cairn_cluster::Placer>>,
) -> Result<(), NodeError> {
    if let Some(p) = placer {
        let report = p.finish_blocking()?;
        tracing::debug!(?report, "write placed");
    }
    Ok(())
}

impl From<DagError> for NodeError {
    fn from(e: DagError) -> Self {
        NodeError::Dag(Box::new(e))
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let context = context.into();
    move |source| NodeError::Io { context, source }
}

/// The service core over one block store.
#[derive(Debug, Clone)]
pub struct Node {
    store: Store,
    roots: std::sync::Arc<roots::RootsState>,
    replicate: std::sync::Arc<replicate::ReplicateState>,
    /// Where writes are placed when this node is part of a cluster (set once, at start).
    cluster: std::sync::Arc<std::sync::OnceLock<cairn_cluster::Cluster>>,
    /// What the background jobs last did.
    workers: std::sync::Arc<worker::WorkerBoard>,
    /// The last count of objects by margin (metrics).
    last_margins: std::sync::Arc<parking_lot::Mutex<Option<check::BucketMargins>>>,
    /// Upload jobs' change notices.
    jobs: std::sync::Arc<jobs::JobsState>,
    /// Bodies being imported at once (each holds a blocking thread while it streams): slow
    /// uploads queue here instead of exhausting tokio's blocking pool, which reads and
    /// commits need too.
    staging: std::sync::Arc<tokio::sync::Semaphore>,
    /// The user key the node acts as for encrypted data ([`crypt`]); memory only.
    user_key: std::sync::Arc<
        parking_lot::RwLock<Option<std::sync::Arc<cairn_crypt::identity::Identity>>>,
    >,
    /// The cluster admin key ([`ownership`]); memory only.
    admin: std::sync::Arc<parking_lot::RwLock<ownership::ClusterAdmin>>,
}

impl Node {
    /// A node over an open store.
    pub fn new(store: Store) -> Self {
        Node {
            store,
            roots: Default::default(),
            replicate: Default::default(),
            cluster: Default::default(),
            workers: Default::default(),
            last_margins: Default::default(),
            jobs: Default::default(),
            staging: std::sync::Arc::new(tokio::sync::Semaphore::new(objects::MAX_STAGING)),
            user_key: Default::default(),
            admin: Default::default(),
        }
    }

    /// Opens the store in `dir` and wraps it.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Self, NodeError> {
        Ok(Node::new(Store::open(dir)?))
    }

    /// The block store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Makes this node place what it writes on the cluster (and read what it misses from it).
    pub fn set_cluster(&self, cluster: cairn_cluster::Cluster) {
        cluster.set_record_sink(std::sync::Arc::new(follow::HeadRecords(self.clone())));
        let _ = self.cluster.set(cluster);
    }

    /// The background jobs' status board.
    pub fn workers(&self) -> &std::sync::Arc<worker::WorkerBoard> {
        &self.workers
    }

    /// The cluster this node writes to, if any.
    pub fn cluster(&self) -> Option<&cairn_cluster::Cluster> {
        self.cluster.get()
    }

    /// A batch for a write into `bucket` (`None`: outside any bucket): in a cluster its
    /// blocks go to their placement targets as they come, kept with the bucket's redundancy
    /// (the returned placer says when they are all placed), otherwise to this store.
    pub(crate) fn write_batch(
        &self,
        bucket: Option<&str>,
    ) -> Result<(WriteBatch, Option<std::sync::Arc<cairn_cluster::Placer>>), NodeError> {
        match (self.cluster.get(), self.bucket_redundancy(bucket)?) {
            (Some(cluster), Some(policy)) => {
                let placer = cluster.placer_for(policy);
                Ok((self.store.forwarding_batch(placer.clone()), Some(placer)))
            }
            _ => Ok((self.store.batch(), None)),
        }
    }

    /// Pins `cid` after checking its whole DAG is present (and holding it until the pin is
    /// committed, so a concurrent GC cannot sweep it in between).
    pub fn pin(&self, cid: &Cid) -> Result<(), NodeError> {
        let batch = self.store.batch();
        let report = self.check_held(cid, &batch)?;
        if let Some(missing) = report.missing.first() {
            return Err(NodeError::Unsupported(format!(
                "cannot pin {cid}: {} block(s) missing, e.g. {missing}",
                report.missing.len()
            )));
        }
        // The operator's pin publishes the CID, even one an upload kept private.
        let mut access = self.cid_access(cid)?;
        if access.private_pin {
            access.private_pin = false;
            let bytes = crate::objects::encode(&access)?;
            self.store().update(|txn| txn.put_cid_access(cid, &bytes))?;
        }
        batch.commit(&[*cid])?;
        self.provide_queue().push([*cid]);
        Ok(())
    }
}

/// Parses `CID`, `CID/a/b`, `/ipfs/CID/a/b` into the CID and the path below it.
pub fn parse_path(input: &str) -> Result<(Cid, String), NodeError> {
    let trimmed = input.strip_prefix("/ipfs/").unwrap_or(input);
    let (cid, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let cid = Cid::try_from(cid).map_err(|e| NodeError::InvalidPath {
        input: input.to_owned(),
        reason: e.to_string(),
    })?;
    Ok((cid, rest.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_paths() {
        let (c, p) =
            parse_path("/ipfs/QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH/a/b").unwrap();
        assert_eq!(
            c.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!(p, "a/b");
        assert!(matches!(
            parse_path("nonsense"),
            Err(NodeError::InvalidPath { .. })
        ));
        assert!(parse_path("").is_err());
    }
}
