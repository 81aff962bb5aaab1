//! The node's repository as a whole, for the doors and the CLI: where its data folder is, its
//! pins, its block count, a scrub of every block file, a bucket's latest root, and a full pass
//! of the cluster check. The doors ask these of the node and never reach its store.

use std::path::Path;

use cairn_dag::Cid;
use cairn_store::RootRow;
use cairn_store::scrub::ScrubPage;

use crate::{Node, NodeError};

/// A full cluster check ([`Node::cluster_check`]): how each unit this node leads stands, and
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

/// What a cluster check does with each unit.
pub use cairn_cluster::repair::Mode as RepairMode;

impl Node {
    /// The data folder this node's store lives in.
    pub fn data_dir(&self) -> &Path {
        self.store().root()
    }

    /// Every pinned CID and how many references hold it.
    pub fn pins(&self) -> Result<Vec<(Cid, u64)>, NodeError> {
        Ok(self.store().pins()?)
    }

    /// Removes the operator's pin of `cid`; whether there was one.
    pub fn unpin(&self, cid: &Cid) -> Result<bool, NodeError> {
        Ok(self.store().unpin(cid)?)
    }

    /// Re-hashes every block file now; the failing ones are quarantined (blocking).
    pub fn scrub_all(&self) -> Result<ScrubPage, NodeError> {
        Ok(self.store().scrub_all()?)
    }

    /// The blocks stored here and their bytes.
    pub fn repo_stats(&self) -> Result<(u64, u64), NodeError> {
        Ok(self.store().stats()?)
    }

    /// The bucket's latest committed root, as it is (no queued change folded in).
    pub fn latest_root(&self, bucket: &str) -> Result<Option<RootRow>, NodeError> {
        Ok(self.store().latest_root(bucket)?)
    }

    /// One full pass over the stripes and replicas this node holds (the units it leads are
    /// counted); [`RepairMode::Repair`] first frees the units whose owners no longer reference
    /// them (piece GC, as the repair job does). [`NodeError::NotInCluster`] outside a cluster.
    pub async fn cluster_check(&self, mode: RepairMode) -> Result<ClusterCheck, NodeError> {
        let cluster = self.cluster().cloned().ok_or(NodeError::NotInCluster)?;
        let collected = match mode {
            RepairMode::Repair => Some(cluster.collect_all(cluster.piece_grace()).await?),
            _ => None,
        };
        let report = cluster.check_all(mode).await?;
        Ok(ClusterCheck { report, collected })
    }
}
