//! How much a set of blocks (an object's DAG, a bucket) can still lose: for every block, the
//! unit that keeps it — its stripe, or its replica set — is surveyed on its targets, and the
//! lowest margin wins. A soft check of objects; metrics count objects by this margin.

use std::collections::HashSet;

use cairn_dag::Cid;

use crate::proto::{Request, Response};
use crate::stripe::Manifest;
use crate::{Cluster, Redundancy};

/// The durability of a set of blocks.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Margins {
    /// Blocks looked at.
    pub blocks: u64,
    /// Distinct units (stripes or replica sets) they are kept in.
    pub units: u64,
    /// The lowest margin among those units: how many more nodes may fail with every block
    /// still readable. `None`: some unit cannot be read now.
    pub margin: Option<usize>,
    /// The margin a healthy unit has (M, or N-1 copies).
    pub full: usize,
    /// Units below full margin but readable.
    pub degraded: u64,
    /// Units that cannot be read.
    pub lost: u64,
    /// Blocks kept in no unit the cluster knows (written outside the cluster, or inline).
    pub unplaced: u64,
}

impl Margins {
    fn unit(&mut self, margin: Option<usize>) {
        self.units += 1;
        match margin {
            None => self.lost += 1,
            Some(m) if m < self.full => self.degraded += 1,
            Some(_) => {}
        }
        self.margin = match (self.units, self.margin, margin) {
            (1, _, m) => m,
            (_, None, _) | (_, _, None) => None,
            (_, Some(a), Some(b)) => Some(a.min(b)),
        };
    }
}

impl Cluster {
    /// Surveys the units keeping `cids`, written with `policy` (their bucket's), and reports
    /// the lowest margin among them.
    pub async fn margins(&self, cids: &[Cid], policy: Redundancy) -> Margins {
        let mut out = Margins {
            full: policy.tolerance(),
            ..Margins::default()
        };
        let mut stripes = HashSet::new();
        for cid in cids {
            out.blocks += 1;
            match policy {
                Redundancy::Replicas(n) => {
                    let survey = self.replica_survey(cid, n as usize).await;
                    out.unit(survey.margin());
                }
                Redundancy::Ec { .. } => match self.find_manifest(cid).await {
                    Some((mcid, manifest)) => {
                        if stripes.insert(mcid) {
                            let survey = self.stripe_survey(&mcid, &manifest).await;
                            out.unit(survey.margin());
                        }
                    }
                    None => out.unplaced += 1,
                },
            }
        }
        if out.units == 0 {
            out.margin = None;
        }
        out
    }

    /// [`margins`](Self::margins) from a blocking thread.
    pub fn margins_blocking(&self, cids: &[Cid], policy: Redundancy) -> Margins {
        self.inner.runtime.block_on(self.margins(cids, policy))
    }

    /// The manifest of the stripe keeping `cid`: known here, or from the first member that
    /// knows it.
    async fn find_manifest(&self, cid: &Cid) -> Option<(Cid, std::sync::Arc<Manifest>)> {
        if let Some(found) = self.known_manifest(cid) {
            return Some(found);
        }
        let peers = self.inner.members.lock().connected();
        for peer in peers {
            if let Some(Response::Located {
                stripe: Some(w), ..
            }) = self.ask(&peer, &Request::Locate { cid: *cid }).await
                && let Ok(m) = Manifest::from_block(&w.cid, &w.data)
                && m.position(cid).is_some()
            {
                return Some((w.cid, self.remember(w.cid, m)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_margin_wins_and_a_lost_unit_is_none() {
        let mut m = Margins {
            full: 2,
            ..Default::default()
        };
        m.unit(Some(2));
        m.unit(Some(1));
        assert_eq!((m.margin, m.degraded, m.lost), (Some(1), 1, 0));
        m.unit(None);
        m.unit(Some(2));
        assert_eq!((m.margin, m.units, m.lost), (None, 4, 1));
    }
}
