//! Piece GC, the holder's pass: units held here whose owners no longer reference them are
//! dropped (their pieces then go with the next local GC). Holders ask the unit's owners;
//! owners answer from their last GC mark ([`cairn_store::refs`]). Never free on doubt.
//!
//! [`Cluster::collect_pass`] pages over the units held here (like the check passes) and, for
//! each unit that has owners ([`cairn_store::pieces`]: units without, or with more than the
//! bound, are kept forever) and whose `last_ms` is older than the grace period, asks every
//! owner with `Referenced` about the unit's blocks — a replica's block, a stripe's data blocks
//! (from its manifest, which must be held here) — this node itself included, answered from its
//! own store. The unit is dropped ([`cairn_store::Store::collect_unit`]) only when every owner
//! answered, and answered false for every block. An owner that is not connected, an answer
//! that is not one flag per block, a manifest not held or unreadable: the unit is kept. A `Put`
//! of the unit that arrives while the owners are asked (a new write of the same bytes) moves its
//! `last_ms`, and the drop is then skipped.
//!
//! Who may say a unit is dead: only its owners, each for itself, asked directly by the holder
//! — never a third node relaying it — and only from a complete mark. A member can name owners
//! in a `Put` (members are trusted to say who owns a unit), so a lying member can make a unit
//! it stores depend on owners that do not reference it; it could as well not store it at all.
//!
//! The pass runs at the start of each repair run (the binary's `Repair` job), so a holder that
//! comes back frees a dead unit before the check that follows could re-create its pieces
//! elsewhere; the same ordering on every holder keeps repair from spreading a unit all its
//! holders are about to free.

use std::collections::HashMap;
use std::time::Duration;

use cairn_dag::Cid;
use cairn_store::pieces::{Unit, UnitRow};

use crate::limits::MAX_CIDS;
use crate::proto::{Request, Response};
use crate::stripe::Manifest;
use crate::{Cluster, ClusterError};

/// What one piece GC pass found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CollectReport {
    /// Units looked at.
    pub units: u64,
    /// Units without known owners (kept forever).
    pub unowned: u64,
    /// Units put here within the grace period (kept for now).
    pub young: u64,
    /// Units an owner said it may still reference.
    pub referenced: u64,
    /// Units kept because an owner could not be asked (not connected, no usable answer) or
    /// the unit's blocks are not known here.
    pub unanswered: u64,
    /// Units put again while their owners were asked (kept).
    pub rewritten: u64,
    /// Units dropped here.
    pub freed: u64,
    /// Their pieces.
    pub freed_pieces: u64,
    /// Their bytes.
    pub freed_bytes: u64,
    /// Whether the pass reached the end (the next one starts over).
    pub wrapped: bool,
}

impl CollectReport {
    /// Adds another pass's counts to these.
    pub fn add(&mut self, other: &CollectReport) {
        self.units += other.units;
        self.unowned += other.unowned;
        self.young += other.young;
        self.referenced += other.referenced;
        self.unanswered += other.unanswered;
        self.rewritten += other.rewritten;
        self.freed += other.freed;
        self.freed_pieces += other.freed_pieces;
        self.freed_bytes += other.freed_bytes;
        self.wrapped = other.wrapped;
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "piece GC: {} units looked at, {} freed ({} pieces, {} bytes); kept {} referenced, {} unanswered, {} young, {} without owners, {} put again",
            self.units,
            self.freed,
            self.freed_pieces,
            self.freed_bytes,
            self.referenced,
            self.unanswered,
            self.young,
            self.unowned,
            self.rewritten
        )
    }
}

/// A unit old enough to ask about.
struct Candidate {
    row: UnitRow,
    /// The blocks its owners are asked about.
    blocks: Vec<Cid>,
    /// The multihashes of its pieces (what is dropped here).
    pieces: Vec<Vec<u8>>,
    referenced: bool,
    unanswered: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Cluster {
    /// Whether every owner of a unit (`owners`, as recorded here) says it no longer
    /// references any of `blocks`: false when the unit has no known owners, when one is not
    /// connected or gives no usable answer, or says true for any block. Repair asks this
    /// before it re-creates pieces, so it does not spread a unit its holders are freeing.
    pub(crate) async fn owners_let_go(&self, owners: &[Vec<u8>], blocks: &[Cid]) -> bool {
        if owners.is_empty() || owners.iter().any(|o| o.is_empty()) || blocks.is_empty() {
            return false;
        }
        for owner in owners {
            if !self.inner.members.lock().is_up(owner) {
                return false;
            }
            for chunk in blocks.chunks(MAX_CIDS) {
                let request = Request::Referenced {
                    blocks: chunk.to_vec(),
                };
                match self.ask(owner, &request).await {
                    Some(Response::Referenced(flags))
                        if flags.len() == chunk.len() && flags.iter().all(|f| !f) => {}
                    _ => return false,
                }
            }
        }
        true
    }

    /// Piece GC passes until every unit held here has been looked at once.
    pub async fn collect_all(&self, grace: Duration) -> Result<CollectReport, ClusterError> {
        *self.inner.collect_cursor.lock() = None;
        let mut total = CollectReport::default();
        loop {
            let r = self.collect_pass(grace, 1024).await?;
            total.add(&r);
            if r.wrapped {
                return Ok(total);
            }
        }
    }

    /// One piece GC pass over up to `limit` units held here (see the module docs); the next
    /// pass continues after them.
    pub async fn collect_pass(
        &self,
        grace: Duration,
        limit: usize,
    ) -> Result<CollectReport, ClusterError> {
        let mut report = CollectReport::default();
        let cursor = *self.inner.collect_cursor.lock();
        let store = self.store().clone();
        let units = tokio::task::spawn_blocking(move || store.units_page(cursor.as_ref(), limit))
            .await
            .map_err(|e| ClusterError::Transport(e.to_string()))??;
        let now = now_ms();
        let grace_ms = grace.as_millis() as u64;
        let mut candidates = Vec::new();
        for row in &units {
            report.units += 1;
            if row.owners.is_empty() || row.owners.iter().any(|o| o.is_empty()) {
                report.unowned += 1;
                continue;
            }
            if now.saturating_sub(row.last_ms) < grace_ms {
                report.young += 1;
                continue;
            }
            let (blocks, pieces) = match row.unit {
                Unit::Block(cid) => (vec![cid], vec![cid.hash().to_bytes()]),
                Unit::Stripe(mcid) => {
                    let manifest = match self.local_block(&mcid)? {
                        Some(bytes) => Manifest::from_block(&mcid, &bytes).ok(),
                        None => None,
                    };
                    let Some(m) = manifest else {
                        report.unanswered += 1;
                        continue;
                    };
                    let pieces = m.shards().map(|c| c.hash().to_bytes()).collect();
                    (m.data.clone(), pieces)
                }
            };
            candidates.push(Candidate {
                row: row.clone(),
                blocks,
                pieces,
                referenced: false,
                unanswered: false,
            });
        }

        // Each owner is asked once per page (in requests of at most MAX_CIDS blocks) about
        // the blocks of every candidate it owns.
        let mut by_owner: HashMap<Vec<u8>, Vec<(usize, Cid)>> = HashMap::new();
        for (i, c) in candidates.iter().enumerate() {
            for owner in &c.row.owners {
                let asks = by_owner.entry(owner.clone()).or_default();
                asks.extend(c.blocks.iter().map(|b| (i, *b)));
            }
        }
        for (owner, asks) in by_owner {
            let up = self.inner.members.lock().is_up(&owner);
            for chunk in asks.chunks(MAX_CIDS) {
                let answer = if up {
                    let blocks: Vec<Cid> = chunk.iter().map(|(_, b)| *b).collect();
                    match self.ask(&owner, &Request::Referenced { blocks }).await {
                        Some(Response::Referenced(flags)) if flags.len() == chunk.len() => {
                            Some(flags)
                        }
                        other => {
                            tracing::debug!(owner = %crate::write::hex(&owner), "piece GC: no usable answer: {other:?}");
                            None
                        }
                    }
                } else {
                    None
                };
                for (k, (i, _)) in chunk.iter().enumerate() {
                    match &answer {
                        Some(flags) => candidates[*i].referenced |= flags[k],
                        None => candidates[*i].unanswered = true,
                    }
                }
            }
        }

        for c in candidates {
            if c.referenced {
                tracing::debug!(unit = ?c.row.unit, bytes = c.row.bytes, first_ms = c.row.first_ms, last_ms = c.row.last_ms, "piece GC: referenced");
                report.referenced += 1;
                continue;
            }
            if c.unanswered {
                report.unanswered += 1;
                continue;
            }
            let store = self.store().clone();
            let unit = c.row.unit;
            let (pieces, seen) = (c.pieces, c.row.last_ms);
            let dropped =
                tokio::task::spawn_blocking(move || store.collect_unit(&unit, &pieces, seen))
                    .await
                    .map_err(|e| ClusterError::Transport(e.to_string()))??;
            match dropped {
                Some((pieces, bytes)) => {
                    tracing::info!(unit = ?unit, pieces, bytes, owners = c.row.owners.len(), "piece GC: unit no longer referenced by its owners, freed here");
                    report.freed += 1;
                    report.freed_pieces += pieces;
                    report.freed_bytes += bytes;
                }
                None => report.rewritten += 1,
            }
        }

        let done = units.len() < limit;
        *self.inner.collect_cursor.lock() = if done {
            None
        } else {
            units.last().map(|r| r.unit)
        };
        report.wrapped = done;
        if report.freed > 0 || report.referenced > 0 || report.unanswered > 0 {
            tracing::info!(?report, "piece GC pass");
        }
        Ok(report)
    }
}
