//! The write path: a [`Placer`] takes the blocks of one write as the importer produces them
//! (it is the [`BlockSink`] of a forwarding batch), groups them into stripes of K (or takes them
//! one by one for replication), and sends every piece to its target while the body is still
//! arriving. At most [`IN_FLIGHT`] units travel at once, so memory stays bounded by a few
//! stripes whatever the object's size. A piece its target does not store goes once to the next
//! member in the unit's order (so one member that is gone, or that takes pieces and keeps
//! none, does not fail writes until it is `down_after` gone). [`Placer::finish`] says whether
//! every unit reached its quorum; units stored short of their full width are completed by the
//! repair job.

use std::collections::HashSet;
use std::sync::Arc;

use cairn_dag::Block;
use cairn_store::{BlockSink, StoreError};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use parking_lot::Mutex;
use serde_bytes::ByteBuf;
use tokio::sync::{mpsc, oneshot};

use crate::proto::{Request, Response, WireBlock};
use crate::{Cluster, ClusterError, Redundancy, stripe};

/// Units (stripes or replicated blocks) being placed at once per write.
pub const IN_FLIGHT: usize = 4;

/// What a write placed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlaceReport {
    /// Distinct blocks placed.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Units (stripes, or blocks when replicating).
    pub units: u64,
    /// Units stored on fewer than all their targets (left for repair).
    pub short: u64,
}

/// Places the blocks of one write; see the module docs.
pub struct Placer {
    tx: Mutex<Option<mpsc::Sender<Block>>>,
    done: Mutex<Option<oneshot::Receiver<Result<PlaceReport, ClusterError>>>>,
}

impl BlockSink for Placer {
    /// Must be called from a blocking thread (it waits while the queue is full).
    fn block(&self, block: &Block) -> Result<(), StoreError> {
        let tx = self.tx.lock().clone();
        match tx {
            Some(tx) => tx
                .blocking_send(block.clone())
                .map_err(|_| StoreError::Sink("placement stopped".into())),
            None => Err(StoreError::Sink("placement already finished".into())),
        }
    }
}

impl Placer {
    /// Closes the queue; the receiver of the placement task's verdict.
    fn close(&self) -> Result<oneshot::Receiver<Result<PlaceReport, ClusterError>>, ClusterError> {
        self.tx.lock().take();
        self.done
            .lock()
            .take()
            .ok_or_else(|| ClusterError::Transport("placement already finished".into()))
    }

    /// Waits until every block given so far is placed.
    pub async fn finish(&self) -> Result<PlaceReport, ClusterError> {
        self.close()?.await.map_err(|_| stopped())?
    }

    /// [`finish`](Self::finish) from a blocking thread.
    pub fn finish_blocking(&self) -> Result<PlaceReport, ClusterError> {
        self.close()?.blocking_recv().map_err(|_| stopped())?
    }
}

fn stopped() -> ClusterError {
    ClusterError::Transport("placement task stopped".into())
}

impl Cluster {
    /// A placer for one write with the cluster's policy.
    pub fn placer(&self) -> Arc<Placer> {
        self.placer_for(self.policy())
    }

    /// A placer for one write kept with `policy` (a bucket's own): stripes carry their K and
    /// M in their manifests and replicas their number of copies, so checks and repair keep
    /// each unit as it was written whatever the cluster's default.
    pub fn placer_for(&self, policy: Redundancy) -> Arc<Placer> {
        let (tx, rx) = mpsc::channel(64);
        let (done_tx, done_rx) = oneshot::channel();
        let this = self.clone();
        self.inner.runtime.spawn(async move {
            let _ = done_tx.send(this.run_placer(policy, rx).await);
        });
        Arc::new(Placer {
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(Some(done_rx)),
        })
    }

    async fn run_placer(
        &self,
        policy: Redundancy,
        mut rx: mpsc::Receiver<Block>,
    ) -> Result<PlaceReport, ClusterError> {
        let mut report = PlaceReport::default();
        let mut seen = HashSet::new();
        let mut pending: Vec<Block> = Vec::new();
        let mut flying = FuturesUnordered::new();
        let mut failure: Option<ClusterError> = None;
        let unit = match policy {
            Redundancy::Ec { k, .. } => k as usize,
            Redundancy::Replicas(_) => 1,
        };
        let mut closed = false;
        loop {
            // Send a full unit (or, at the end, what is left) when there is room.
            if failure.is_none()
                && flying.len() < IN_FLIGHT
                && (pending.len() >= unit || (closed && !pending.is_empty()))
            {
                let take = pending.len().min(unit);
                let blocks: Vec<Block> = pending.drain(..take).collect();
                let this = self.clone();
                flying.push(async move { this.place_unit(policy, blocks).await });
                continue;
            }
            if closed && (pending.is_empty() || failure.is_some()) && flying.is_empty() {
                break;
            }
            tokio::select! {
                block = rx.recv(), if !closed && (pending.len() < unit || failure.is_some()) => match block {
                    Some(block) => {
                        if failure.is_none() && seen.insert(block.cid.hash().to_bytes()) {
                            report.blocks += 1;
                            report.bytes += block.data.len() as u64;
                            pending.push(block);
                        }
                    }
                    None => closed = true,
                },
                Some(done) = flying.next(), if !flying.is_empty() => match done {
                    Ok(short) => {
                        report.units += 1;
                        report.short += short as u64;
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                },
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Places one unit: a stripe of blocks (EC) or one block (replicas). Returns whether it is
    /// short of its full width.
    async fn place_unit(
        &self,
        policy: Redundancy,
        blocks: Vec<Block>,
    ) -> Result<bool, ClusterError> {
        let copies = match policy {
            Redundancy::Replicas(n) => Some(n),
            Redundancy::Ec { .. } => None,
        };
        let (key, stripe, shards): (Vec<u8>, Option<WireBlock>, Vec<Block>) = match policy {
            Redundancy::Ec { m, .. } => {
                let (_, mblock, parity) = stripe::encode(&blocks, m as usize)?;
                let key = mblock.cid.hash().to_bytes();
                let wire = WireBlock {
                    cid: mblock.cid,
                    data: ByteBuf::from(mblock.data.to_vec()),
                };
                let mut shards = blocks;
                shards.extend(parity);
                (key, Some(wire), shards)
            }
            Redundancy::Replicas(n) => {
                let block = blocks.into_iter().next().expect("one block per unit");
                let key = block.cid.hash().to_bytes();
                (key, None, vec![block; n as usize])
            }
        };
        let data = match policy {
            Redundancy::Ec { m, .. } => shards.len() - m as usize,
            Redundancy::Replicas(_) => 1,
        };
        let width = policy.width(data);
        let ring = self.placement_members();
        let members = ring.members();
        let chosen = ring.targets(&key, width);
        let mut sends = FuturesUnordered::new();
        for (i, shard) in shards.iter().enumerate() {
            // Fewer members than pieces: several pieces share a node (said in the docs).
            let peer = members[chosen[i % chosen.len()]].id.clone();
            let request = Request::put_one(shard, stripe.clone(), copies);
            let this = self.clone();
            sends.push(async move { (i, peer.clone(), this.call(&peer, &request).await) });
        }
        let mut per_node: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut failed_peers: HashSet<Vec<u8>> = HashSet::new();
        let mut failed_shards = Vec::new();
        while let Some((i, peer, answer)) = sends.next().await {
            match answer {
                Ok(Response::Stored) => *per_node.entry(peer).or_default() += 1,
                other => {
                    match other {
                        Ok(other) => {
                            tracing::debug!(peer = %hex(&peer), "piece not stored: {other:?}")
                        }
                        Err(e) => tracing::debug!(peer = %hex(&peer), "piece not stored: {e}"),
                    }
                    failed_peers.insert(peer);
                    failed_shards.push(i);
                }
            }
        }
        // A target that did not store its piece (gone, full, or a member that takes pieces
        // and keeps none) is skipped: each such piece goes once to the next member in the
        // unit's order that holds none of it yet and has not failed, as far as there are any.
        // Reads find it there (they ask every member), and repair moves it to its target later.
        if !failed_shards.is_empty() {
            let order = ring.targets(&key, members.len());
            let mut spare = order.iter().map(|&m| &members[m].id).filter(|id| {
                !failed_peers.contains(*id)
                    && !per_node.contains_key(*id)
                    && !chosen.iter().any(|&c| members[c].id == **id)
            });
            let mut retries = FuturesUnordered::new();
            for i in failed_shards {
                let Some(peer) = spare.next().cloned() else {
                    break;
                };
                let request = Request::put_one(&shards[i], stripe.clone(), copies);
                let this = self.clone();
                retries.push(async move { (peer.clone(), this.call(&peer, &request).await) });
            }
            while let Some((peer, answer)) = retries.next().await {
                match answer {
                    Ok(Response::Stored) => *per_node.entry(peer).or_default() += 1,
                    other => {
                        tracing::debug!(peer = %hex(&peer), "piece not stored on a spare either: {other:?}")
                    }
                }
            }
        }
        let counts: Vec<usize> = per_node.into_values().collect();
        let stored: usize = counts.iter().sum();
        if !policy.acknowledges(&counts, data) {
            return Err(ClusterError::Quorum {
                stored,
                nodes: counts.len(),
                width,
            });
        }
        Ok(stored < width)
    }
}

/// A short printable form of a peer id for logs.
pub(crate) fn hex(id: &[u8]) -> String {
    id.iter()
        .rev()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}
