//! The read path for blocks missing here: ask the block's likely holder, else find a holder or
//! its stripe among the connected members, else rebuild it from any K shards of its stripe.
//! Every block returned is verified against its CID. A read-ahead table lets the reader of a
//! DAG ask for a node's children at once ([`Cluster::prefetch`]): they are fetched in parallel
//! and wait, bounded in number and age, until read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_dag::Cid;
use cairn_store::RemoteBlocks;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::proto::{Request, Response};
use crate::stripe::{self, Manifest};
use crate::{Cluster, ClusterError, Redundancy};

/// Blocks fetched ahead and not yet read, at most.
const READ_AHEAD: usize = 256;
/// How long a block fetched ahead waits to be read.
const READ_AHEAD_TTL: Duration = Duration::from_secs(60);
/// Manifests remembered (by data block) so a stripe is located once per read.
const MANIFESTS: usize = 4096;
/// How long one request to a peer may take on the read path.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// A stripe manifest and its CID.
type KnownStripe = (Cid, std::sync::Arc<Manifest>);

enum Slot {
    Pending(Vec<oneshot::Sender<Option<Bytes>>>),
    Ready(Bytes, Instant),
}

pub(crate) struct ReadState {
    slots: Mutex<HashMap<Vec<u8>, Slot>>,
    /// Read-ahead fetches running at once (later ones then find their stripe already known).
    ahead: std::sync::Arc<tokio::sync::Semaphore>,
    /// data block multihash → (manifest CID, manifest)
    manifests: Mutex<HashMap<Vec<u8>, KnownStripe>>,
}

impl Default for ReadState {
    fn default() -> Self {
        ReadState {
            slots: Default::default(),
            ahead: std::sync::Arc::new(tokio::sync::Semaphore::new(AHEAD_AT_ONCE)),
            manifests: Default::default(),
        }
    }
}

/// Read-ahead fetches running at once.
const AHEAD_AT_ONCE: usize = 16;

impl RemoteBlocks for Cluster {
    fn fetch(&self, cid: &Cid) -> Option<Bytes> {
        self.inner.runtime.block_on(self.fetch(cid))
    }

    fn prefetch(&self, cids: &[Cid]) {
        Cluster::prefetch(self, cids);
    }
}

impl Cluster {
    /// A block from the cluster (verified), or `None` when no member has it and its stripe
    /// cannot rebuild it.
    pub async fn fetch(&self, cid: &Cid) -> Option<Bytes> {
        let mh = cid.hash().to_bytes();
        let waiter = {
            let mut slots = self.inner.read.slots.lock();
            match slots.get_mut(&mh) {
                Some(Slot::Ready(data, _)) => {
                    let data = data.clone();
                    slots.remove(&mh);
                    return Some(data);
                }
                Some(Slot::Pending(waiters)) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    slots.insert(mh.clone(), Slot::Pending(Vec::new()));
                    None
                }
            }
        };
        if let Some(rx) = waiter {
            return rx.await.ok().flatten();
        }
        let got = self.fetch_now(cid).await;
        self.settle(&mh, got.clone(), false);
        got
    }

    /// Starts fetching `cids` in the background (the children of a node being read).
    pub fn prefetch(&self, cids: &[Cid]) {
        let mut slots = self.inner.read.slots.lock();
        let now = Instant::now();
        slots.retain(
            |_, s| !matches!(s, Slot::Ready(_, at) if now.duration_since(*at) > READ_AHEAD_TTL),
        );
        for cid in cids {
            if slots.len() >= READ_AHEAD {
                break;
            }
            let mh = cid.hash().to_bytes();
            if slots.contains_key(&mh) || matches!(self.store().has(cid), Ok(true)) {
                continue;
            }
            slots.insert(mh.clone(), Slot::Pending(Vec::new()));
            let this = self.clone();
            let cid = *cid;
            let ahead = self.inner.read.ahead.clone();
            self.inner.runtime.spawn(async move {
                let _permit = ahead.acquire_owned().await;
                let got = this.fetch_now(&cid).await;
                this.settle(&mh, got, true);
            });
        }
    }

    /// Hands a finished fetch to its waiters, keeping it for a later read when asked to.
    fn settle(&self, mh: &[u8], got: Option<Bytes>, keep: bool) {
        let mut slots = self.inner.read.slots.lock();
        let waiters = match slots.remove(mh) {
            Some(Slot::Pending(w)) => w,
            Some(ready) => {
                slots.insert(mh.to_vec(), ready);
                return;
            }
            None => Vec::new(),
        };
        let wanted = !waiters.is_empty();
        for w in waiters {
            let _ = w.send(got.clone());
        }
        if keep
            && !wanted
            && let Some(data) = got
        {
            slots.insert(mh.to_vec(), Slot::Ready(data, Instant::now()));
        }
    }

    /// Offers blocks rebuilt alongside the one asked for to pending and later reads.
    fn offer(&self, blocks: Vec<cairn_dag::Block>) {
        let mut slots = self.inner.read.slots.lock();
        for b in blocks {
            let mh = b.cid.hash().to_bytes();
            match slots.remove(&mh) {
                Some(Slot::Pending(waiters)) => {
                    for w in waiters {
                        let _ = w.send(Some(b.data.clone()));
                    }
                }
                Some(ready) => {
                    slots.insert(mh, ready);
                }
                None if slots.len() < READ_AHEAD => {
                    slots.insert(mh, Slot::Ready(b.data, Instant::now()));
                }
                None => {}
            }
        }
    }

    pub(crate) async fn ask(&self, peer: &[u8], request: &Request) -> Option<Response> {
        match tokio::time::timeout(ASK_TIMEOUT, self.call(peer, request)).await {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) => {
                tracing::debug!("piece request failed: {e}");
                None
            }
            Err(_) => None,
        }
    }

    /// Asks `peer` for `cid`; only verified bytes are returned.
    async fn get_from(&self, peer: &[u8], cid: &Cid) -> Option<Bytes> {
        match self.ask(peer, &Request::Get { cid: *cid }).await? {
            Response::Block(data) if cairn_dag::verify(cid, &data).is_ok() => {
                Some(data.into_vec().into())
            }
            Response::Block(_) => {
                tracing::warn!(%cid, peer = %crate::write::hex(peer), "peer sent wrong bytes; refused");
                None
            }
            _ => None,
        }
    }

    pub(crate) fn remember(&self, mcid: Cid, manifest: Manifest) -> std::sync::Arc<Manifest> {
        let manifest = std::sync::Arc::new(manifest);
        let mut map = self.inner.read.manifests.lock();
        if map.len() + manifest.data.len() > MANIFESTS {
            map.clear();
        }
        for d in &manifest.data {
            map.insert(d.hash().to_bytes(), (mcid, manifest.clone()));
        }
        manifest
    }

    pub(crate) fn known_manifest(&self, cid: &Cid) -> Option<KnownStripe> {
        if let Some(found) = self.inner.read.manifests.lock().get(&cid.hash().to_bytes()) {
            return Some(found.clone());
        }
        match self.local_manifest(cid) {
            Ok(Some((mcid, m))) => Some((mcid, self.remember(mcid, m))),
            _ => None,
        }
    }

    /// Members to ask, likely holders first.
    fn candidates(&self, key: &[u8], width: usize) -> Vec<Vec<u8>> {
        let ring = self.placement_members();
        let me = self.inner.members.lock().me().id.clone();
        let mut out: Vec<Vec<u8>> = ring
            .targets(key, width)
            .into_iter()
            .map(|i| ring.members()[i].id.clone())
            .collect();
        for c in self.inner.members.lock().connected() {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out.retain(|p| *p != me && self.inner.members.lock().is_up(p));
        out
    }

    async fn fetch_now(&self, cid: &Cid) -> Option<Bytes> {
        // 1. The likely holder: a replica target, or the stripe's nominal holder.
        let mut manifest = self.known_manifest(cid);
        // (A bucket may keep its blocks otherwise than the cluster's default: a known stripe
        // wins, and a wrong guess only costs the ask.)
        let likely: Vec<Vec<u8>> = match (self.policy(), &manifest) {
            (_, Some((mcid, m))) => {
                let ring = self.placement_members();
                let pos = m.position(cid)?;
                let t = ring.targets(&mcid.hash().to_bytes(), m.k() + m.parity.len());
                t.get(pos)
                    .map(|&i| ring.members()[i].id.clone())
                    .filter(|p| self.inner.members.lock().is_up(p))
                    .into_iter()
                    .collect()
            }
            (Redundancy::Replicas(n), None) => self
                .candidates(&cid.hash().to_bytes(), n as usize)
                .into_iter()
                .take(n as usize)
                .collect(),
            (Redundancy::Ec { .. }, None) => Vec::new(),
        };
        for peer in &likely {
            if let Some(data) = self.get_from(peer, cid).await {
                return Some(data);
            }
        }
        // 2. Ask every connected member who has it, or which stripe rebuilds it (the likely
        //    holders too: without the block they may still hold its stripe's manifest).
        let peers = self.inner.members.lock().connected();
        let mut asks: FuturesUnordered<_> = peers
            .iter()
            .map(|p| async move { (p.clone(), self.ask(p, &Request::Locate { cid: *cid }).await) })
            .collect();
        let mut holders = Vec::new();
        while let Some((peer, answer)) = asks.next().await {
            if let Some(Response::Located { have, stripe }) = answer {
                if have {
                    holders.push(peer);
                }
                if manifest.is_none()
                    && let Some(w) = stripe
                    && let Ok(m) = Manifest::from_block(&w.cid, &w.data)
                    && m.position(cid).is_some()
                {
                    manifest = Some((w.cid, self.remember(w.cid, m)));
                }
            }
            if !holders.is_empty() {
                break;
            }
        }
        drop(asks);
        for peer in &holders {
            if let Some(data) = self.get_from(peer, cid).await {
                return Some(data);
            }
        }
        // 3. Rebuild from the stripe.
        let (mcid, manifest) = manifest?;
        match self.rebuild(&mcid, &manifest).await {
            Ok(blocks) => {
                let wanted = blocks
                    .iter()
                    .find(|b| b.cid.hash() == cid.hash())?
                    .data
                    .clone();
                tracing::info!(%cid, stripe = %mcid, "block rebuilt from its stripe");
                self.offer(
                    blocks
                        .into_iter()
                        .filter(|b| b.cid.hash() != cid.hash())
                        .collect(),
                );
                Some(wanted)
            }
            Err(e) => {
                tracing::warn!(%cid, stripe = %mcid, "cannot rebuild: {e}");
                None
            }
        }
    }

    /// Collects shards of a stripe from this node and the connected members until any K
    /// verify, and rebuilds its data blocks.
    pub(crate) async fn rebuild(
        &self,
        mcid: &Cid,
        manifest: &Manifest,
    ) -> Result<Vec<cairn_dag::Block>, ClusterError> {
        let shards: Vec<Cid> = manifest.shards().copied().collect();
        let mut have: Vec<Option<Bytes>> = vec![None; shards.len()];
        let mut count = 0;
        for (i, c) in shards.iter().enumerate() {
            if let Ok(Some(data)) = self.local_block(c) {
                have[i] = Some(data);
                count += 1;
            }
        }
        let k = manifest.k();
        if count < k {
            // Who holds which shard: one question to each member, then the shards themselves.
            let peers = self.candidates(&mcid.hash().to_bytes(), shards.len());
            let question = Request::Has {
                cids: shards.clone(),
            };
            let question = &question;
            let width = shards.len();
            let held: Vec<(Vec<u8>, Vec<bool>)> =
                futures::future::join_all(peers.iter().map(|p| async move {
                    match self.ask(p, question).await {
                        Some(Response::Held(h)) if h.len() == width => (p.clone(), h),
                        _ => (p.clone(), Vec::new()),
                    }
                }))
                .await;
            let mut gets = FuturesUnordered::new();
            for i in 0..shards.len() {
                if have[i].is_some() {
                    continue;
                }
                if let Some((peer, _)) = held.iter().find(|(_, h)| h.get(i) == Some(&true)) {
                    let cid = shards[i];
                    gets.push(async move { (i, self.get_from(peer, &cid).await) });
                }
            }
            while let Some((i, got)) = gets.next().await {
                if let Some(data) = got {
                    have[i] = Some(data);
                    count += 1;
                    if count >= k && have[..k].iter().all(Option::is_some) {
                        break;
                    }
                }
            }
        }
        let rebuilt = tokio::task::spawn_blocking({
            let manifest = manifest.clone();
            move || stripe::rebuild(&manifest, &have)
        })
        .await
        .map_err(|e| ClusterError::Coding(e.to_string()))??;
        Ok(rebuilt)
    }
}
