//! Cairn's service core: the one place where an add and a read are orchestrated over the block
//! store. Later layers (S3, gateway, network) call into [`Node`]; it never calls them.
//!
//! [`Node`] itself builds, holds and hands out; what it does is reached through capability
//! handles, each a `Copy` borrow of the node whose methods live beside the code they run:
//! [`Node::objects`] ([`Objects`]), [`Node::multipart`] ([`Multipart`]), [`Node::buckets`]
//! ([`Buckets`]), [`Node::keys`] ([`Keys`]), [`Node::files`] ([`Files`]), [`Node::roots`]
//! ([`Roots`]), [`Node::replication`] ([`Replication`]), [`Node::jobs`] ([`Jobs`]),
//! [`Node::repo`] ([`Repo`]) and [`Node::access`] ([`Access`]).
//!
//! * [`error`] — [`NodeError`] and its [`ErrorKind`], from which every door answers.
//! * [`access`] — who may do what: the one authorization decision every door asks.
//! * [`import`] — streaming, parallel UnixFS import of byte streams, files and directory trees.
//! * [`export`] — verified streaming reads of files and ranges, path resolution, listings,
//!   writing trees back to disk.
//! * [`bucket_car`] — a bucket as a CAR of its root, and a bucket made from one.
//! * [`car`] — CARv1 export (depth-first, de-duplicated) and verified, all-or-nothing import.
//! * [`objects`] — buckets and objects for the S3 front end: staged streaming PUTs made
//!   visible atomically, ranged GET streams, listings, copies without data copy.
//! * [`keys`] — users' S3 access keys.
//! * [`accounts`] — SFTP accounts: SSH keys, quota, the home bucket (issue 20).
//! * [`put`] — one PUT as a whole: bucket, sealing, staged body, the door's checks, the
//!   conditional commit.
//! * [`read`] — one read of an object planned for GET and HEAD (version, preconditions,
//!   part or range, SSE-C key) and its plaintext as a stream.
//! * [`multipart`] — multipart uploads whose completed DAG equals `ipfs add` of the whole.
//! * [`versions`] — bucket versioning: version ids, delete markers, history.
//! * [`ownership`] — who may move a bucket's head: owner keys pinned, takeover certificates
//!   (the one decision every received head goes through).
//! * [`replication`] — in a cluster, writes wait for their bucket head on its replica set;
//!   other nodes' buckets mirrored read-only, held heads (`replication::follow`), promote and
//!   takeovers (`replication::promote`).
//! * [`roots`] — buckets as IPLD: a UnixFS root per bucket version, dag-cbor version records
//!   linked into a history, signed heads, restore.
//! * [`repo`] — the repository as a whole for the doors: pins, scrub, stats, whether it holds
//!   anything, GC.
//! * [`identity`] — the node's ed25519 key.
//! * [`snapshot`] — `cairn backup`'s side: many files in one batch, trees with UnixFS
//!   mode/mtime, named snapshots (GC roots).
//! * [`jobs`] — upload jobs: bodies spooled durably, imported in the background, resumed
//!   after a restart.
//! * [`published`] — which CIDs anonymous readers (the gateway) may fetch.
//! * [`files`] — the files capability's handle (its methods are in the modules above).
//! * [`worker`] — the one shape of background jobs (periodic, on a blocking thread); GC.
//! * [`check`] — soft (every block present) and hard (every block re-hashed, files
//!   re-assembled) checks of a DAG.

#![warn(missing_docs)]

pub mod access;
pub mod accounts;
mod blocks;
pub mod bucket_car;
pub mod buckets;
mod builder;
pub mod car;
pub mod check;
pub mod crypt;
pub mod error;
pub mod export;
pub mod files;
pub mod identity;
pub mod import;
pub mod jobs;
pub mod keys;
pub mod model;
pub mod multipart;
pub mod objects;
pub mod ownership;
pub mod provide;
pub mod published;
pub mod put;
pub mod read;
pub mod replication;
pub mod repo;
pub mod roots;
pub mod snapshot;
pub mod versions;
pub mod worker;

use cairn_dag::Cid;
use cairn_store::{Store, WriteBatch};

pub use access::Access;
pub use accounts::Accounts;
pub use buckets::Buckets;
pub use builder::NodeBuilder;
pub use cairn_store::scrub::ScrubPage;
pub use cairn_store::{RootRow, SnapshotRow, StoreError};
pub use error::{ErrorKind, NodeError};
pub use files::Files;
pub use jobs::Jobs;
pub use keys::Keys;
pub use multipart::Multipart;
pub use objects::Objects;
pub use replication::Replication;
pub use repo::Repo;
pub use roots::Roots;

pub use cairn_dag::CidVersion;

/// Bytes as an async stream (object bodies).
pub type ByteStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<bytes::Bytes, NodeError>> + Send + Sync + 'static>,
>;

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

/// A blocking task that panicked or was cancelled: the node's own failure.
pub(crate) fn task_failed(e: tokio::task::JoinError) -> NodeError {
    NodeError::Io {
        context: "a blocking task failed".into(),
        source: std::io::Error::other(e),
    }
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let context = context.into();
    move |source| NodeError::Io { context, source }
}

/// The service core over one block store: a cheap handle (clones share one node).
#[derive(Debug, Clone)]
pub struct Node {
    inner: std::sync::Arc<NodeInner>,
}

impl std::ops::Deref for Node {
    type Target = NodeInner;

    fn deref(&self) -> &NodeInner {
        &self.inner
    }
}

/// What a node holds; reached through [`Node`].
#[derive(Debug)]
pub struct NodeInner {
    /// The store, and where blocks come from: the store, then the cluster, then the network ([`blocks`]).
    blocks: blocks::Blocks,
    roots: roots::RootsState,
    replicate: replication::ReplicateState,
    /// Where writes are placed when this node is part of a cluster.
    cluster: Option<cairn_cluster::Cluster>,
    /// What the background jobs last did.
    workers: std::sync::Arc<worker::WorkerBoard>,
    /// The last count of objects by margin (metrics).
    last_margins: parking_lot::Mutex<Option<check::BucketMargins>>,
    /// Upload jobs' change notices and running imports.
    jobs: jobs::JobsState,
    /// Bodies being imported at once (each holds a blocking thread while it streams): slow
    /// uploads queue here instead of exhausting tokio's blocking pool, which reads and
    /// commits need too.
    staging: std::sync::Arc<tokio::sync::Semaphore>,
    /// The user key the node acts as for encrypted data ([`crypt`]); memory only.
    user_key: parking_lot::RwLock<Option<std::sync::Arc<cairn_crypt::identity::Identity>>>,
    /// The cluster admin key ([`ownership`]); memory only.
    admin: parking_lot::RwLock<ownership::ClusterAdmin>,
}

impl NodeInner {
    fn new(
        store: Store,
        cluster: Option<cairn_cluster::Cluster>,
        remote: Option<std::sync::Arc<dyn cairn_store::RemoteBlocks>>,
    ) -> NodeInner {
        NodeInner {
            blocks: blocks::Blocks::new(store, cluster.clone(), remote),
            roots: Default::default(),
            replicate: Default::default(),
            cluster,
            workers: Default::default(),
            last_margins: Default::default(),
            jobs: Default::default(),
            staging: std::sync::Arc::new(tokio::sync::Semaphore::new(objects::MAX_STAGING)),
            user_key: Default::default(),
            admin: Default::default(),
        }
    }
}

impl Node {
    /// A node over an open store, wired to nothing else (see [`Node::builder`]).
    pub fn new(store: Store) -> Self {
        Node::builder(store)
            .build()
            .expect("a node with no admin key builds")
    }

    /// Opens the store in `dir` and wraps it.
    pub fn open(dir: impl AsRef<std::path::Path>) -> Result<Self, NodeError> {
        Ok(Node::new(Store::open(dir)?))
    }

    /// The node `inner` belongs to.
    pub(crate) fn from_inner(inner: std::sync::Arc<NodeInner>) -> Node {
        Node { inner }
    }

    /// Runs `f` on a blocking thread with a clone of this node (store transactions, key
    /// handling: never on the async workers).
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Node) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let node = self.clone();
        tokio::task::spawn_blocking(move || f(node))
            .await
            .map_err(task_failed)?
    }

    /// The block store, for the node's own integration tests (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn store(&self) -> &Store {
        self.blocks.store()
    }

    /// The block store: the doors and the binary ask the node, never its store.
    #[cfg(not(feature = "testing"))]
    pub(crate) fn store(&self) -> &Store {
        self.blocks.store()
    }

    /// Where blocks come from: the store, then the cluster, then the network.
    pub(crate) fn blocks(&self) -> &blocks::Blocks {
        &self.blocks
    }

    /// The background jobs' status board.
    pub fn workers(&self) -> &std::sync::Arc<worker::WorkerBoard> {
        &self.workers
    }

    /// The cluster this node writes to, if any.
    pub fn cluster(&self) -> Option<&cairn_cluster::Cluster> {
        self.cluster.as_ref()
    }

    /// A batch for a write into `bucket` (`None`: outside any bucket): in a cluster its
    /// blocks go to their placement targets as they come, kept with the bucket's redundancy
    /// (the returned placer says when they are all placed), otherwise to this store.
    pub(crate) fn write_batch(
        &self,
        bucket: Option<&str>,
    ) -> Result<(WriteBatch, Option<std::sync::Arc<cairn_cluster::Placer>>), NodeError> {
        match (self.cluster.as_ref(), self.buckets().redundancy(bucket)?) {
            (Some(cluster), Some(policy)) => {
                let placer = cluster.placer_for(policy);
                Ok((self.store().forwarding_batch(placer.clone()), Some(placer)))
            }
            _ => Ok((self.store().batch(), None)),
        }
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
