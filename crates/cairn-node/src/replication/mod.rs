//! Metadata durability in a cluster: a write to a bucket is acknowledged only once the
//! bucket's new signed head (naming a metadata DAG already placed with the data's redundancy)
//! is kept by enough of the bucket's replica set to survive one more node loss — so a
//! replica can serve, and `cairn bucket promote` can take over, every acknowledged write.
//!
//! Concurrent writers share the work (group commit): each round commits every queued change
//! into new roots and pushes the heads of the buckets written since the last round; a writer
//! returns as soon as a round that started after its change finished. Outside a cluster
//! nothing waits: the roots job commits in the background, as before.
//!
//! Home of the replication capability ([`Node::replication`], [`Replication`]): `replicate`
//! and the full cluster check here; followed and held heads, mirrors ([`follow`]); promote and
//! takeovers ([`promote`]); redundancy margins in [`crate::check`].

pub mod follow;
pub mod promote;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::model::codec::encode;
use crate::model::heads::SharedBucket;
use crate::model::records::head_key;
use crate::{Node, NodeError};

/// Replication between nodes ([`Node::replication`]): followed and held heads, promote, takeovers, margins.
#[derive(Debug, Clone, Copy)]
pub struct Replication<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Replication: followed and held heads, promote, takeovers, redundancy margins.
    pub fn replication(&self) -> Replication<'_> {
        Replication { node: self }
    }
}

/// Rounds of head replication.
#[derive(Debug, Default)]
pub(crate) struct ReplicateState {
    /// Rounds started, and the last one finished successfully.
    started: AtomicU64,
    finished: AtomicU64,
    /// One round at a time.
    round: Mutex<()>,
    /// Buckets written since the last round took them.
    pending: Mutex<BTreeSet<String>>,
    /// The newest head sequence pushed per bucket.
    pushed: Mutex<HashMap<String, u64>>,
}

impl Node {
    fn replicate_round(&self, buckets: &BTreeSet<String>) -> Result<(), NodeError> {
        let Some(cluster) = self.cluster() else {
            return Ok(());
        };
        self.roots().commit()?;
        for bucket in buckets {
            let record = match self.buckets().get(bucket) {
                Ok(r) if r.mirror.is_none() => Some(r),
                // Deleted here: its tombstone head goes out like any other.
                Err(NodeError::NoSuchBucket(_)) if self.is_own_or_unheld(bucket)? => None,
                Ok(_) | Err(NodeError::NoSuchBucket(_)) => continue,
                Err(e) => return Err(e),
            };
            let Some(row) = self.store().latest_root(bucket)? else {
                continue;
            };
            if self.replicate.pushed.lock().get(bucket) >= Some(&row.seq) {
                continue;
            }
            let shared = encode(&SharedBucket {
                head: row.head,
                bucket: record,
            })?;
            let held = cluster.replicate_record_blocking(&head_key(bucket), shared)?;
            tracing::debug!(bucket, seq = row.seq, held, "head replicated");
            self.replicate.pushed.lock().insert(bucket.clone(), row.seq);
        }
        Ok(())
    }
}
impl Replication<'_> {
    /// In a cluster, returns once every change made to `bucket` before the call is in a head
    /// held by enough of the bucket's replica set to survive one more loss; a
    /// [`NodeError::Unavailable`] when too few are reachable. Outside a cluster, at once.
    pub fn replicate(&self, bucket: &str) -> Result<(), NodeError> {
        if self.node.cluster().is_none() {
            return Ok(());
        }
        let st = &self.node.replicate;
        st.pending.lock().insert(bucket.to_owned());
        let ticket = st.started.load(Ordering::SeqCst);
        let _one = st.round.lock();
        if st.finished.load(Ordering::SeqCst) > ticket {
            return Ok(()); // a round that started after the change carried it
        }
        let round = st.started.fetch_add(1, Ordering::SeqCst) + 1;
        let buckets = std::mem::take(&mut *st.pending.lock());
        match self.node.replicate_round(&buckets) {
            Ok(()) => {
                st.finished.store(round, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                st.pending.lock().extend(buckets);
                Err(e)
            }
        }
    }
}

/// What a cluster check does with each unit.
pub use cairn_cluster::repair::Mode as RepairMode;

/// A full cluster check ([`Replication::check`]): how each unit this node leads stands, and
/// (with [`RepairMode::Repair`]) what piece GC freed first.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClusterCheck {
    /// The check's counts.
    #[serde(flatten)]
    pub report: cairn_cluster::repair::CheckReport,
    /// What piece GC freed before the repair, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collected: Option<cairn_cluster::collect::CollectReport>,
}

impl Replication<'_> {
    /// One full pass over the stripes and replicas this node holds (the units it leads are
    /// counted); [`RepairMode::Repair`] first frees the units whose owners no longer reference
    /// them (piece GC, as the repair job does). [`NodeError::NotInCluster`] outside a cluster.
    pub async fn check(&self, mode: RepairMode) -> Result<ClusterCheck, NodeError> {
        let cluster = self
            .node
            .cluster()
            .cloned()
            .ok_or(NodeError::NotInCluster)?;
        let collected = match mode {
            RepairMode::Repair => Some(cluster.collect_all(cluster.piece_grace()).await?),
            _ => None,
        };
        let report = cluster.check_all(mode).await?;
        Ok(ClusterCheck { report, collected })
    }
}
