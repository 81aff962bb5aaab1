//! The repository as a capability ([`Node::repo`]), for the doors and the CLI: where its data
//! folder is, its pins, its block count, whether it holds anything, a scrub of every block file
//! and garbage collection (`Repo::collect_garbage`, in [`crate::roots`] beside the roots it keeps).
//! The doors ask these of the node and never reach its store.

use std::path::Path;

use cairn_dag::Cid;
use cairn_store::scrub::ScrubPage;

use crate::{Node, NodeError};

/// The repository as a whole ([`Node::repo`]): pins, scrub, stats, GC.
#[derive(Debug, Clone, Copy)]
pub struct Repo<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// The repository as a whole: pins, scrub, stats, garbage collection.
    pub fn repo(&self) -> Repo<'_> {
        Repo { node: self }
    }
}

impl Repo<'_> {
    /// The data folder this node's store lives in.
    pub fn data_dir(&self) -> &Path {
        self.node.store().root()
    }

    /// Every pinned CID and how many references hold it.
    pub fn pins(&self) -> Result<Vec<(Cid, u64)>, NodeError> {
        Ok(self.node.store().pins()?)
    }

    /// Removes the operator's pin of `cid`; whether there was one.
    pub fn unpin(&self, cid: &Cid) -> Result<bool, NodeError> {
        Ok(self.node.store().unpin(cid)?)
    }

    /// Re-hashes every block file now; the failing ones are quarantined (blocking).
    pub fn scrub(&self) -> Result<ScrubPage, NodeError> {
        Ok(self.node.store().scrub_all()?)
    }

    /// The blocks stored here and their bytes.
    pub fn stats(&self) -> Result<(u64, u64), NodeError> {
        Ok(self.node.store().stats()?)
    }

    /// Pins `cid` after checking its whole DAG is present (and holding it until the pin is
    /// committed, so a concurrent GC cannot sweep it in between).
    pub fn pin(&self, cid: &Cid) -> Result<(), NodeError> {
        let batch = self.node.hold_whole(cid, &format!("pin {cid}"))?;
        // The operator's pin publishes the CID, even one an upload kept private.
        let mut access = self.node.access().cid_access(cid)?;
        if access.private_pin {
            access.private_pin = false;
            self.node
                .store()
                .update(|txn| txn.put(crate::access::CID_ACCESS, &cid.to_string(), &access))?;
        }
        batch.commit(&[*cid])?;
        self.node.provide_queue().push([*cid]);
        Ok(())
    }

    /// Whether the node holds nothing of its own yet: no bucket and no pin.
    pub fn is_empty(&self) -> Result<bool, NodeError> {
        Ok(self
            .node
            .store()
            .list(crate::model::records::BUCKETS)?
            .is_empty()
            && self.node.store().pins()?.is_empty())
    }
}
