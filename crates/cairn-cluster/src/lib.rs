//! Cairn's cluster layer: how a node's data survives the loss of other nodes.
//!
//! * [`policy`] — `replicas:N` / `ec:K+M` and the write quorum (pure).
//! * [`placement`] — XOR-closest targets over zones (pure).
//! * [`stripe`] — Reed-Solomon stripes over IPFS blocks and their manifests (pure).
//! * [`proto`] — the `/cairn/piece/1.0.0` messages (pure).
//! * [`limits`] — every bound on those messages and on stripe manifests, checked when they are
//!   decoded, before anything is allocated or stored (pure).
//! * [`members`] — who is in the cluster, from the network's view plus heartbeats.
//! * [`Cluster`] — the async shell: answers peers ([`Cluster::handle`], trusting nothing they
//!   send: see [`limits`] and the server's checks), places what a write
//!   produces ([`Placer`]), reads what is missing here ([`Cluster::fetch`]), rebuilding from
//!   stripes when a holder is gone.
//! * [`collect`] — piece GC: a holder drops the units whose owners no longer reference them
//!   (asked with `Referenced`, answered from the owner's last GC mark; never on doubt).
//! * [`margins`] — how many more losses a set of blocks (an object, a bucket) survives.
//! * [`records`] — small records (bucket heads) on a key's replica set.
//!
//! The network is behind [`Transport`], so this layer runs the same over libp2p and over an
//! in-memory switch in tests.

#![warn(missing_docs)]

pub mod collect;
pub mod limits;
pub mod margins;
pub mod members;
pub mod placement;
pub mod policy;
pub mod proto;
mod read;
pub mod records;
pub mod repair;
mod server;
pub mod stripe;
mod write;

/// Test-only: the largest single allocation a thread makes, so tests can show that a lying
/// size is refused before anything that large is allocated.
#[cfg(test)]
pub(crate) mod test_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    struct Peak;

    fn note(size: usize) {
        let _ = LARGEST.try_with(|c| c.set(c.get().max(size)));
    }

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Peak {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static PEAK: Peak = Peak;

    /// Runs `f` and returns its result with the largest allocation it made on this thread.
    pub(crate) fn largest_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
        LARGEST.with(|c| c.set(0));
        let r = f();
        (r, LARGEST.with(Cell::get))
    }
}

use std::sync::Arc;

use cairn_store::Store;
use futures::future::BoxFuture;
use parking_lot::Mutex;

pub use members::Membership;
pub use placement::Member;
pub use policy::Redundancy;
pub use records::RecordSink;
pub use write::{PlaceReport, Placer};

/// Errors of the cluster layer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A redundancy policy that cannot be used.
    #[error("redundancy policy {0}")]
    Policy(String),
    /// Bytes that do not decode to what they should.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The erasure coder refused its input.
    #[error("erasure coding: {0}")]
    Coding(String),
    /// Too few shards of a stripe are left to rebuild it.
    #[error("unrecoverable: {0}")]
    Unrecoverable(String),
    /// A write could not reach its quorum.
    #[error(
        "only {stored} of {width} pieces could be stored, on {nodes} node(s): the write would not survive one more node failure, so it is refused"
    )]
    Quorum {
        /// Pieces stored.
        stored: usize,
        /// Nodes they are on.
        nodes: usize,
        /// Pieces wanted.
        width: usize,
    },
    /// A peer could not be asked.
    #[error("peer: {0}")]
    Transport(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] cairn_store::StoreError),
    /// A block failed to decode or verify.
    #[error(transparent)]
    Dag(Box<cairn_dag::DagError>),
}

impl From<cairn_dag::DagError> for ClusterError {
    fn from(e: cairn_dag::DagError) -> Self {
        ClusterError::Dag(Box::new(e))
    }
}

/// How requests reach other nodes: `/cairn/piece/1.0.0` over libp2p in a real node.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` to `peer` (peer id bytes) and returns its answer.
    fn call(&self, peer: Vec<u8>, request: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>>;
}

/// What a node needs to take part in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// This node's peer id bytes.
    pub me: Vec<u8>,
    /// This node's zone label.
    pub zone: Option<String>,
    /// The cluster's redundancy.
    pub policy: Redundancy,
    /// How long a member may be unreachable before it leaves placement (and its pieces are
    /// re-created elsewhere).
    pub down_after: std::time::Duration,
    /// How long a unit must go without a new piece before its owners are asked whether they
    /// still reference it (piece GC, [`collect`]).
    pub piece_grace: std::time::Duration,
}

/// A node's cluster service; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    policy: Redundancy,
    piece_grace: std::time::Duration,
    members: Mutex<Membership>,
    transport: Arc<dyn Transport>,
    runtime: tokio::runtime::Handle,
    read: read::ReadState,
    /// Where the next check pass starts: (stripe manifest, piece multihash).
    check_cursor: Mutex<(Option<cairn_dag::Cid>, Option<Vec<u8>>)>,
    /// Where records from peers are kept (none: they are refused).
    records: Option<Arc<dyn RecordSink>>,
    /// Units whose pieces here were surplus at the last repair pass (dropped if still so).
    surplus: Mutex<std::collections::HashSet<Vec<u8>>>,
    /// Where the next piece GC pass starts.
    collect_cursor: Mutex<Option<cairn_store::pieces::Unit>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("policy", &self.inner.policy)
            .finish()
    }
}

impl Cluster {
    /// A cluster service over `store`, talking through `transport`; must be created inside a
    /// tokio runtime, which its background work uses.
    /// Records peers send (bucket heads) go to `records`; without one they are refused.
    pub fn new(
        store: Store,
        config: ClusterConfig,
        transport: Arc<dyn Transport>,
        records: Option<Arc<dyn RecordSink>>,
    ) -> Self {
        let me = Member {
            id: config.me,
            zone: config.zone,
        };
        Cluster {
            inner: Arc::new(Inner {
                store,
                policy: config.policy,
                piece_grace: config.piece_grace,
                members: Mutex::new(Membership::new(me, config.down_after)),
                transport,
                runtime: tokio::runtime::Handle::current(),
                read: Default::default(),
                check_cursor: Default::default(),
                records,
                surplus: Default::default(),
                collect_cursor: Default::default(),
            }),
        }
    }

    /// The redundancy policy.
    pub fn policy(&self) -> Redundancy {
        self.inner.policy
    }

    /// Piece GC's grace period.
    pub fn piece_grace(&self) -> std::time::Duration {
        self.inner.piece_grace
    }

    /// The local store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Records which cluster members are connected now (a heartbeat).
    pub fn observe(&self, connected: &[Member]) {
        self.inner
            .members
            .lock()
            .observe(connected, std::time::Instant::now());
    }

    /// The members placement counts on now (this node included).
    pub fn placement_members(&self) -> Arc<placement::Ring> {
        self.inner
            .members
            .lock()
            .placement(std::time::Instant::now())
    }

    /// Sends one request to `peer`, answering it here when `peer` is this node.
    async fn call(
        &self,
        peer: &[u8],
        request: &proto::Request,
    ) -> Result<proto::Response, ClusterError> {
        let me = self.inner.members.lock().me().id.clone();
        if peer == me.as_slice() {
            let this = self.clone();
            let request = request.clone();
            return tokio::task::spawn_blocking(move || this.answer(&me, request))
                .await
                .map_err(|e| ClusterError::Transport(e.to_string()));
        }
        let bytes = self
            .inner
            .transport
            .call(peer.to_vec(), proto::encode(request))
            .await
            .map_err(ClusterError::Transport)?;
        proto::decode_response(&bytes)
    }
}
