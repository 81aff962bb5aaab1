//! What this node announces to the network as a provider: the roots it publishes
//! ([`crate::Access::published`], the gateway's and Bitswap's rule) — public pins, current objects
//! anyone may read, public buckets' latest roots — never every block (IPFS peers find the
//! rest of a DAG from whoever gave them its root), and never what is private: a provider
//! record tells the DHT's servers the multihash.
//!
//! Fresh roots (from each bucket-root commit) wait in a bounded in-memory queue for the next
//! announcement run; a full sweep ([`Roots::provide_sweep`]) pages through everything, at
//! start, on the re-announce timer, and whenever the queue overflowed.

use crate::Roots;
use std::collections::VecDeque;

use cairn_dag::Cid;

use crate::{Node, NodeError};

/// Fresh roots kept at most; past this the next run sweeps instead.
const FRESH_MAX: usize = 100_000;

/// Roots waiting to be announced.
#[derive(Debug, Default)]
pub(crate) struct ProvideQueue {
    inner: parking_lot::Mutex<(VecDeque<Cid>, bool)>,
}

impl ProvideQueue {
    pub(crate) fn push(&self, cids: impl IntoIterator<Item = Cid>) {
        let mut q = self.inner.lock();
        for cid in cids {
            if q.0.len() >= FRESH_MAX {
                q.1 = true;
                q.0.clear();
                return;
            }
            q.0.push_back(cid);
        }
    }
}

/// Roots taken from the queue.
#[derive(Debug, Default)]
pub struct Fresh {
    /// Roots to announce.
    pub cids: Vec<Cid>,
    /// Some were dropped: announce everything with a sweep.
    pub overflowed: bool,
}

impl Node {
    fn only_published(&self, cids: Vec<Cid>) -> Result<Vec<Cid>, NodeError> {
        let mut out = Vec::with_capacity(cids.len());
        for cid in cids {
            if self.access().published(&cid)?.is_some() {
                out.push(cid);
            }
        }
        Ok(out)
    }
}
impl Roots<'_> {
    /// Takes up to `max` roots queued since the last call, keeping those published.
    pub fn take_fresh(&self, max: usize) -> Result<Fresh, NodeError> {
        let mut fresh = {
            let mut q = self.node.provide_queue().inner.lock();
            let n = q.0.len().min(max);
            Fresh {
                cids: q.0.drain(..n).collect(),
                overflowed: std::mem::take(&mut q.1),
            }
        };
        fresh.cids = self.node.only_published(fresh.cids)?;
        Ok(fresh)
    }

    /// One page of everything this node provides, after the cursor `after` (`None`: from the
    /// start; the first page also carries pins and bucket roots), only what is published.
    /// Returns the page and the cursor of the next one (`None` when this was the last).
    pub fn provide_sweep(
        &self,
        after: Option<Cid>,
        limit: usize,
    ) -> Result<(Vec<Cid>, Option<Cid>), NodeError> {
        let mut page = Vec::new();
        if after.is_none() {
            page.extend(self.node.store().pins()?.into_iter().map(|(cid, _)| cid));
            for (bucket, _) in self.node.buckets().list()? {
                if let Some(root) = self.node.store().latest_root(&bucket)? {
                    page.push(root.tree);
                }
            }
        }
        let objects = self
            .node
            .store()
            .current_object_roots(after.as_ref(), limit)?;
        let next = (objects.len() == limit).then(|| *objects.last().expect("a full page"));
        page.extend(objects);
        Ok((self.node.only_published(page)?, next))
    }
}
