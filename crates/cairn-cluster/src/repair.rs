//! Checks and repair of the pieces this node holds. For every stripe manifest (or whole
//! replica) kept here, the current targets are asked which shards they hold:
//! * a **soft check** counts the distinct shards on their targets; the margin is how many more
//!   may be lost before the stripe cannot be read (full margin: M, or N-1 copies);
//! * a **hard check** also rebuilds the data from parity and compares every CID;
//! * **repair** re-creates the shards no target holds — copied from wherever a copy is, or
//!   rebuilt from any K — on targets that hold none (each `Put` names the unit's owners as
//!   recorded here, or none known, so piece GC asks the right nodes: [`crate::collect`]; and
//!   nothing is re-created of a unit all of whose owners say they no longer reference it), after a member has been gone longer than
//!   `down_after` or a write was stored short; it also spreads shards that share a node (a
//!   write made while the cluster looked smaller) onto targets that hold none. One node acts per unit: the first live target
//!   holding its manifest (or replica), so repairs are not done twice;
//! * and a node that holds pieces of a unit it is no longer a target of (members joined, so
//!   the unit's targets moved) drops them once the unit is at full margin on its targets in
//!   two passes running (so members' views of the cluster have had a pass to agree): pieces
//!   move, they do not pile up.
//!
//! Work is paged: a pass takes up to `limit` units and the next pass continues after them.
//!
//! What is checked came from peers, so it is bounded first: a manifest that fails
//! [`Manifest::from_block`] (one stored before the bounds, say) is counted as failed and left
//! alone, never rebuilt; a replica's number of copies is clamped to 1..=16; and rebuilding pads
//! nothing until K verified shards are at hand ([`stripe::rebuild`]).

use std::collections::HashSet;

use bytes::Bytes;
use cairn_dag::{Block, Cid};
use serde_bytes::ByteBuf;

use cairn_store::pieces::{PieceOf, Unit};

use crate::proto::{Request, Response, WireBlock};
use crate::stripe::{self, Manifest};
use crate::{Cluster, ClusterError};

/// What one pass found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckReport {
    /// Units looked at.
    pub checked: u64,
    /// Units this node leads (the others are counted by their leaders).
    pub led: u64,
    /// Led units that can lose as many nodes as the policy allows (M, or N-1 copies).
    pub at_full_margin: u64,
    /// Led units below full margin but readable.
    pub degraded: u64,
    /// Led units that cannot be read.
    pub lost: u64,
    /// Pieces re-created.
    pub repaired: u64,
    /// Hard checks that rebuilt and verified.
    pub verified: u64,
    /// Hard checks or repairs that failed.
    pub failed: u64,
    /// Pieces dropped here because their unit is whole on its (new) targets.
    pub moved: u64,
    /// Whether the pass reached the end (the next one starts over).
    pub wrapped: bool,
}

impl CheckReport {
    /// Adds another pass's counts to these.
    pub fn add(&mut self, other: &CheckReport) {
        self.checked += other.checked;
        self.led += other.led;
        self.at_full_margin += other.at_full_margin;
        self.degraded += other.degraded;
        self.lost += other.lost;
        self.repaired += other.repaired;
        self.verified += other.verified;
        self.failed += other.failed;
        self.moved += other.moved;
        self.wrapped = other.wrapped;
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        format!(
            "{} units checked, {} led: {} at full margin, {} degraded, {} lost; {} pieces re-created, {} verified, {} failed, {} moved away",
            self.checked,
            self.led,
            self.at_full_margin,
            self.degraded,
            self.lost,
            self.repaired,
            self.verified,
            self.failed,
            self.moved
        )
    }
}

/// What to do with each unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count pieces.
    Soft,
    /// Count, then rebuild and verify.
    Hard,
    /// Count, then re-create what is missing.
    Repair,
}

/// A unit's pieces and who holds them.
pub(crate) struct Survey {
    key: Vec<u8>,
    shards: Vec<Cid>,
    /// Current targets (peer ids), in placement order.
    targets: Vec<Vec<u8>>,
    /// For each target, which shards it holds (empty: unreachable).
    held: Vec<Vec<bool>>,
    /// Pieces needed to read.
    needed: usize,
}

impl Survey {
    fn key_hex(&self) -> String {
        crate::write::hex(&self.key)
    }

    fn present(held: &[&Vec<bool>], width: usize) -> usize {
        (0..width)
            .filter(|&i| held.iter().any(|h| h.get(i) == Some(&true)))
            .count()
    }

    /// How many more target nodes may be lost with the unit still readable (`None`: it cannot
    /// be read now), losing the nodes that hold the most shards first.
    pub(crate) fn margin(&self) -> Option<usize> {
        let width = self.shards.len();
        let mut left: Vec<&Vec<bool>> = self.held.iter().filter(|h| h.iter().any(|x| *x)).collect();
        if Survey::present(&left, width) < self.needed {
            return None;
        }
        let mut lost = 0;
        while !left.is_empty() {
            // Lose the node whose loss removes the most shards held nowhere else.
            let worst = (0..left.len())
                .max_by_key(|&i| {
                    let others: Vec<&Vec<bool>> = left
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, h)| *h)
                        .collect();
                    width - Survey::present(&others, width)
                })
                .expect("not empty");
            left.remove(worst);
            if Survey::present(&left, width) < self.needed {
                break;
            }
            lost += 1;
        }
        Some(lost)
    }
}

impl Cluster {
    /// Passes of `mode` until every stripe and replica held here has been seen once.
    pub async fn check_all(&self, mode: Mode) -> Result<CheckReport, ClusterError> {
        *self.inner.check_cursor.lock() = Default::default();
        let mut total = CheckReport::default();
        loop {
            let r = self.check_pass(mode, 1024).await?;
            total.add(&r);
            if r.wrapped {
                return Ok(total);
            }
        }
    }

    /// One pass of `mode` over up to `limit` stripes and replicas held here.
    pub async fn check_pass(&self, mode: Mode, limit: usize) -> Result<CheckReport, ClusterError> {
        let mut report = CheckReport::default();
        let cursor = self.inner.check_cursor.lock().clone();
        let store = self.store().clone();
        let (stripes, pieces) = tokio::task::spawn_blocking(move || {
            let stripes = store.stripes_page(cursor.0.as_ref(), limit)?;
            let pieces = store.pieces_page(cursor.1.as_deref(), limit)?;
            Ok::<_, ClusterError>((stripes, pieces))
        })
        .await
        .map_err(|e| ClusterError::Transport(e.to_string()))??;
        let replicas: Vec<(Cid, Option<u8>)> = pieces
            .iter()
            .filter_map(|p| match p.of {
                PieceOf::Replica { cid, copies } => Some((cid, copies)),
                PieceOf::Stripe(_) => None,
            })
            .collect();
        for mcid in &stripes {
            report.checked += 1;
            if let Err(e) = self.check_stripe(mcid, mode, &mut report).await {
                tracing::warn!(stripe = %mcid, "check: {e}");
                report.failed += 1;
            }
        }
        for (cid, copies) in &replicas {
            report.checked += 1;
            if let Err(e) = self.check_replica(cid, *copies, mode, &mut report).await {
                tracing::warn!(%cid, "check: {e}");
                report.failed += 1;
            }
        }
        let mut cursor = self.inner.check_cursor.lock();
        let stripes_done = stripes.len() < limit;
        let pieces_done = pieces.len() < limit;
        cursor.0 = if stripes_done {
            None
        } else {
            stripes.last().copied()
        };
        cursor.1 = if pieces_done {
            None
        } else {
            pieces.last().map(|p| p.key.clone())
        };
        report.wrapped = stripes_done && pieces_done;
        Ok(report)
    }

    /// Asks every current target which of `shards` it holds.
    async fn survey(&self, key: &[u8], shards: Vec<Cid>, width: usize, needed: usize) -> Survey {
        let ring = self.placement_members();
        let targets: Vec<Vec<u8>> = ring
            .targets(key, width)
            .into_iter()
            .map(|i| ring.members()[i].id.clone())
            .collect();
        let asked = shards.len();
        let question = Request::Pieces {
            cids: shards.clone(),
        };
        let question = &question;
        let held = futures::future::join_all(targets.iter().map(|t| async move {
            match self.ask(t, question).await {
                Some(Response::Held(h)) if h.len() == asked => h,
                _ => Vec::new(),
            }
        }))
        .await;
        Survey {
            key: key.to_vec(),
            shards,
            targets,
            held,
            needed,
        }
    }

    /// Asks the `n` targets of a block kept as whole copies whether they hold it: target i
    /// "holds shard i" when it has the block.
    pub(crate) async fn replica_survey(&self, cid: &Cid, n: usize) -> Survey {
        let mut survey = self
            .survey(&cid.hash().to_bytes(), vec![*cid; n], n, 1)
            .await;
        for (i, h) in survey.held.iter_mut().enumerate() {
            let has = h.first() == Some(&true);
            *h = (0..n).map(|j| j == i && has).collect();
        }
        survey
    }

    /// Asks a stripe's targets which of its shards they hold.
    pub(crate) async fn stripe_survey(&self, mcid: &Cid, manifest: &Manifest) -> Survey {
        let shards: Vec<Cid> = manifest.shards().copied().collect();
        let width = shards.len();
        self.survey(&mcid.hash().to_bytes(), shards, width, manifest.k())
            .await
    }

    pub(crate) fn me(&self) -> Vec<u8> {
        self.inner.members.lock().me().id.clone()
    }

    /// Whether this node acts for a unit: it is the first target holding `marker` (the
    /// manifest's position, or the replica), or no target holds it and this node does.
    fn leads(&self, survey: &Survey, marker: usize) -> bool {
        let me = self.me();
        match survey
            .targets
            .iter()
            .zip(&survey.held)
            .find(|(_, h)| h.get(marker) == Some(&true))
        {
            Some((t, _)) => *t == me,
            None => true,
        }
    }

    fn tally(&self, survey: &Survey, full: usize, report: &mut CheckReport) {
        report.led += 1;
        match survey.margin() {
            None => report.lost += 1,
            Some(m) if m >= full => report.at_full_margin += 1,
            Some(m) => {
                report.degraded += 1;
                let held: Vec<String> = survey
                    .targets
                    .iter()
                    .zip(&survey.held)
                    .map(|(t, h)| {
                        let bits: String = h.iter().map(|x| if *x { '1' } else { '0' }).collect();
                        format!("{}:{bits}", crate::write::hex(t))
                    })
                    .collect();
                tracing::debug!(unit = %survey.key_hex(), margin = m, held = ?held, "degraded unit");
            }
        }
    }

    async fn check_stripe(
        &self,
        mcid: &Cid,
        mode: Mode,
        report: &mut CheckReport,
    ) -> Result<(), ClusterError> {
        let Some(bytes) = self.local_block(mcid)? else {
            return Ok(());
        };
        let manifest = Manifest::from_block(mcid, &bytes)?;
        let mut shards: Vec<Cid> = manifest.shards().copied().collect();
        let width = shards.len();
        shards.push(*mcid); // the marker: who holds the manifest
        let survey = self
            .survey(&mcid.hash().to_bytes(), shards, width, manifest.k())
            .await;
        let leads = self.leads(&survey, width);
        let mut survey = survey;
        survey.shards.truncate(width);
        for h in &mut survey.held {
            h.truncate(width);
        }
        let full = manifest.parity.len();
        if mode == Mode::Repair && self.surplus(&survey, full) {
            let shards: Vec<Vec<u8>> = survey.shards.iter().map(|c| c.hash().to_bytes()).collect();
            report.moved += self.store().drop_unit(&PieceOf::Stripe(*mcid), &shards)?;
            return Ok(());
        }
        if !leads {
            return Ok(());
        }
        self.tally(&survey, full, report);
        match mode {
            Mode::Soft => {}
            Mode::Hard => {
                let blocks = self.rebuild_forced(mcid, &manifest).await?;
                if blocks.len() == manifest.k() {
                    report.verified += 1;
                }
            }
            Mode::Repair => {
                let wire = WireBlock {
                    cid: *mcid,
                    data: ByteBuf::from(bytes.to_vec()),
                };
                let owners = self.store().unit_owners(&Unit::Stripe(*mcid))?;
                let asked = manifest.data.clone();
                report.repaired += self
                    .fill(&survey, Some(wire), None, (owners, asked), |this| {
                        let manifest = manifest.clone();
                        let mcid = *mcid;
                        async move { this.all_shards(&mcid, &manifest).await }
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether this node's pieces of a unit are surplus: it is not one of the unit's targets
    /// and the targets hold every piece with full margin — seen so in the previous pass too.
    fn surplus(&self, survey: &Survey, full: usize) -> bool {
        let now =
            !survey.targets.contains(&self.me()) && survey.margin().is_some_and(|m| m >= full);
        let mut seen = self.inner.surplus.lock();
        let before = seen.remove(&survey.key);
        if now && !before {
            seen.insert(survey.key.clone());
        }
        now && before
    }

    async fn check_replica(
        &self,
        cid: &Cid,
        copies: Option<u8>,
        mode: Mode,
        report: &mut CheckReport,
    ) -> Result<(), ClusterError> {
        // A number of copies outside 1..=MAX_COPIES (one stored before the protocol bounded
        // it) is clamped: never zero (no underflow below), never more than a Put may ask for.
        let n = copies
            .map_or_else(|| self.policy().width(1), usize::from)
            .clamp(1, usize::from(crate::limits::MAX_COPIES));
        let full = n
            .checked_sub(1)
            .ok_or_else(|| ClusterError::Malformed(format!("replica {cid} kept with no copies")))?;
        let survey = self.replica_survey(cid, n).await;
        if mode == Mode::Repair && self.surplus(&survey, full) {
            let unit = PieceOf::Replica { cid: *cid, copies };
            report.moved += self.store().drop_unit(&unit, &[cid.hash().to_bytes()])?;
            return Ok(());
        }
        let me = self.me();
        let first_holder = survey
            .targets
            .iter()
            .zip(&survey.held)
            .find(|(_, h)| h.iter().any(|x| *x))
            .map(|(t, _)| t.clone());
        if first_holder.is_some_and(|t| t != me) {
            return Ok(());
        }
        self.tally(&survey, full, report);
        if mode == Mode::Repair {
            let cid = *cid;
            let copies = u8::try_from(n).ok();
            let owners = self.store().unit_owners(&Unit::Block(cid))?;
            report.repaired += self
                .fill(
                    &survey,
                    None,
                    copies,
                    (owners, vec![cid]),
                    |this| async move {
                        let data = match this.local_block(&cid)? {
                            Some(d) => d,
                            None => this.fetch(&cid).await.ok_or_else(|| {
                                ClusterError::Unrecoverable(format!("no copy of {cid} left"))
                            })?,
                        };
                        Ok(vec![Block { cid, data }; n])
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// Puts every piece no target holds on a target that holds none; `pieces` produces all
    /// pieces of the unit when some are needed. `owners` are the unit's owners recorded here
    /// (named in every `Put`) and the blocks they reference: when every owner says it no
    /// longer references them, nothing is re-created (piece GC is freeing the unit).
    async fn fill<F, Fut>(
        &self,
        survey: &Survey,
        stripe: Option<WireBlock>,
        copies: Option<u8>,
        (owners, referenced): (Vec<Vec<u8>>, Vec<Cid>),
        pieces: F,
    ) -> Result<u64, ClusterError>
    where
        F: FnOnce(Cluster) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Block>, ClusterError>>,
    {
        // Shards no target holds first, then shards whose every holder holds others too (a
        // node with two shards of a stripe loses both at once).
        let holders = |i: usize| survey.held.iter().filter(move |h| h.get(i) == Some(&true));
        let count = |h: &Vec<bool>| h.iter().filter(|x| **x).count();
        let mut missing: Vec<usize> = (0..survey.shards.len())
            .filter(|&i| holders(i).next().is_none())
            .collect();
        missing.extend(
            (0..survey.shards.len())
                .filter(|&i| holders(i).next().is_some() && holders(i).all(|h| count(h) > 1)),
        );
        // Targets that hold no shard no one else holds can take one: a block shared with
        // another stripe (the same bytes written twice) is a copy, not this target's shard.
        let sole = |h: &Vec<bool>| {
            (0..h.len())
                .filter(|&i| h[i] && holders(i).count() == 1)
                .count()
        };
        let mut free: Vec<&Vec<u8>> = survey
            .targets
            .iter()
            .zip(&survey.held)
            .filter(|(t, h)| sole(h) == 0 && self.inner.members.lock().is_up(t))
            .map(|(t, _)| t)
            .collect();
        free.reverse(); // popped from the end: closest targets first
        if missing.is_empty() || free.is_empty() {
            return Ok(0);
        }
        if self.owners_let_go(&owners, &referenced).await {
            tracing::debug!(unit = %survey.key_hex(), "not re-created: its owners no longer reference it");
            return Ok(0);
        }
        let owners = wire_owners(owners);
        let all = pieces(self.clone()).await?;
        let mut done = 0;
        let mut used: HashSet<Vec<u8>> = HashSet::new();
        for i in missing {
            let Some(target) = free.pop() else { break };
            tracing::debug!(unit = %survey.key_hex(), shard = i, target = %crate::write::hex(target), "re-creating");
            let piece = &all[i];
            let request = Request::put_one_for(piece, stripe.clone(), copies, owners.clone());
            match self.ask(target, &request).await {
                Some(Response::Stored) => {
                    done += 1;
                    used.insert(target.clone());
                }
                other => tracing::warn!(cid = %piece.cid, "repair put refused: {other:?}"),
            }
        }
        if done > 0 {
            tracing::info!(unit = %survey.key_hex(), pieces = done, targets = used.len(), "pieces re-created");
        }
        Ok(done)
    }

    /// Every shard of a stripe (data rebuilt when missing, parity re-encoded and checked).
    async fn all_shards(
        &self,
        mcid: &Cid,
        manifest: &Manifest,
    ) -> Result<Vec<Block>, ClusterError> {
        let data = self.rebuild(mcid, manifest).await?;
        let m = manifest.parity.len();
        let (again, _, parity) = tokio::task::spawn_blocking({
            let data = data.clone();
            move || stripe::encode(&data, m)
        })
        .await
        .map_err(|e| ClusterError::Coding(e.to_string()))??;
        if again.parity != manifest.parity {
            return Err(ClusterError::Unrecoverable(format!(
                "stripe {mcid}: re-encoded parity differs from the manifest"
            )));
        }
        let mut all = data;
        all.extend(parity);
        Ok(all)
    }

    /// A hard check: rebuild the data from as many parity shards as can stand in for data
    /// shards, so the decoder runs, and verify every CID.
    async fn rebuild_forced(
        &self,
        mcid: &Cid,
        manifest: &Manifest,
    ) -> Result<Vec<Block>, ClusterError> {
        let all = self.all_shards(mcid, manifest).await?;
        let k = manifest.k();
        let m = manifest.parity.len();
        let mut shards: Vec<Option<Bytes>> = all.iter().map(|b| Some(b.data.clone())).collect();
        for s in shards.iter_mut().take(m.min(k)) {
            *s = None;
        }
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || stripe::rebuild(&manifest, &shards))
            .await
            .map_err(|e| ClusterError::Coding(e.to_string()))?
    }
}

/// The owners a repair `Put` names: those recorded here, or an empty list (unknown: the
/// target keeps the unit forever) when none are, or more than a `Put` may name were.
fn wire_owners(owners: Vec<Vec<u8>>) -> Option<Vec<ByteBuf>> {
    if owners
        .iter()
        .any(|o| o.is_empty() || o.len() > crate::limits::MAX_OWNER_ID)
    {
        return Some(Vec::new());
    }
    Some(owners.into_iter().map(ByteBuf::from).collect())
}
