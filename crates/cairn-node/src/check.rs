//! Checking a DAG. Soft: every block is present (blocks the index knows to be link-less are
//! only looked up, not read). Hard: every block is read and re-hashed, then every distinct
//! UnixFS file in the tree is re-assembled once and its length compared with what its root
//! says (an iterative, depth-bounded walk: `Node::walk_tree` in `export.rs`). A soft check can
//! also *hold* every block it visits in a write batch (`Node::check_held`): what it found
//! then stays until the batch commits the reference that needs it (a pin, a snapshot, a
//! directory), whatever GC does meanwhile.

use crate::Files;
use crate::Replication;
use std::collections::HashSet;

use cairn_dag::Cid;
use cairn_dag::dir::NodeKind;
use cairn_store::{StoreError, WriteBatch};

use crate::{Node, NodeError};

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Distinct blocks visited.
    pub blocks: u64,
    /// Bytes in the blocks that were read.
    pub bytes_read: u64,
    /// Blocks that are not in the store.
    pub missing: Vec<Cid>,
    /// Blocks that failed verification (now quarantined).
    pub corrupt: Vec<Cid>,
    /// Files whose re-assembly failed or had the wrong length (hard check only).
    pub bad_files: Vec<(Cid, String)>,
}

impl CheckReport {
    /// Whether everything checked out.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.bad_files.is_empty()
    }
}

impl Node {
    /// Soft-checks the DAG under `root` as `batch` sees it (its own blocks count as present)
    /// and holds every block visited in it: when nothing is missing, a reference to `root`
    /// committed with `batch` is safe against a concurrent GC.
    pub(crate) fn check_held(
        &self,
        root: &Cid,
        batch: &WriteBatch,
    ) -> Result<CheckReport, NodeError> {
        self.check_with(root, false, Some(batch))
    }

    /// A batch holding the whole DAG under `root` (checked present), for a reference to it
    /// that the batch's commit makes (a pin, a snapshot): `doing` names that reference in the
    /// error when blocks are missing.
    pub(crate) fn hold_whole(&self, root: &Cid, doing: &str) -> Result<WriteBatch, NodeError> {
        let batch = self.store().batch();
        let report = self.check_held(root, &batch)?;
        match report.missing.first() {
            Some(missing) => Err(NodeError::Unsupported(format!(
                "cannot {doing}: {} block(s) missing, e.g. {missing}",
                report.missing.len()
            ))),
            None => Ok(batch),
        }
    }

    fn check_with(
        &self,
        root: &Cid,
        hard: bool,
        batch: Option<&WriteBatch>,
    ) -> Result<CheckReport, NodeError> {
        let mut report = CheckReport::default();
        let mut seen = HashSet::new();
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            report.blocks += 1;
            // Held before it is looked at, so GC cannot take it between the look and the use.
            let present = match batch {
                Some(b) => Some(b.hold(&cid)?),
                None => None,
            };
            if present == Some(false) {
                report.missing.push(cid);
                continue;
            }
            // Soft: a block the index knows to be link-less only needs to be present.
            if !hard
                && let Some(info) = self.store().block_info(&cid)?
                && !info.may_link
            {
                if present.is_none() && !self.store().has(&cid)? {
                    report.missing.push(cid);
                }
                continue;
            }
            let read = match batch {
                Some(b) => b.get_local(&cid),
                None => self.store().get_local(&cid),
            };
            match read {
                Ok(data) => {
                    report.bytes_read += data.len() as u64;
                    let links = cairn_dag::links_of(&cid, &data)?;
                    stack.extend(links.into_iter().rev());
                }
                Err(StoreError::NotFound(_)) => report.missing.push(cid),
                Err(StoreError::CorruptBlock { .. }) => report.corrupt.push(cid),
                Err(e) => return Err(e.into()),
            }
        }
        if hard && report.missing.is_empty() && report.corrupt.is_empty() {
            self.reassemble(root, &mut report)?;
        }
        Ok(report)
    }

    /// Re-assembles every distinct file of the tree under `root` once (a subtree shared by
    /// several directories is checked once), walking iteratively to at most
    /// [`cairn_dag::dir::MAX_TREE_DEPTH`] levels.
    fn reassemble(&self, root: &Cid, report: &mut CheckReport) -> Result<(), NodeError> {
        self.walk_tree(
            *root,
            (),
            true,
            |cid, kind, _, _| {
                if let NodeKind::File { size } = *kind
                    && let Err(why) = self.reassemble_file(cid, size)
                {
                    report.bad_files.push((*cid, why));
                }
                Ok(())
            },
            |_, _| (),
        )
    }

    /// Reads the file `cid` through, comparing its length with `size`.
    fn reassemble_file(&self, cid: &Cid, size: u64) -> Result<(), String> {
        let mut stream = self.files().cat(*cid, None);
        let mut total = 0u64;
        loop {
            match stream.next_piece() {
                Ok(Some(piece)) => total += piece.len() as u64,
                Ok(None) if total == size => return Ok(()),
                Ok(None) => return Err(format!("{total} bytes, root says {size}")),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Objects of a bucket by how many more node losses they survive (a soft check in a cluster).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BucketMargins {
    /// Objects checked.
    pub objects: u64,
    /// Objects per margin (`"0"`, `"1"`, … and `"lost"`).
    pub by_margin: std::collections::BTreeMap<String, u64>,
    /// The margin a healthy object has.
    pub full: usize,
    /// Up to 100 objects below full margin, with theirs (`None`: cannot be read now).
    pub below_full: Vec<(String, Option<usize>)>,
}

impl BucketMargins {
    /// Adds one object.
    pub fn add(&mut self, key: &str, m: &cairn_cluster::margins::Margins) {
        self.objects += 1;
        self.full = m.full;
        let label = m.margin.map_or("lost".to_owned(), |n| n.to_string());
        *self.by_margin.entry(label).or_default() += 1;
        if m.margin.is_none_or(|n| n < m.full) && self.below_full.len() < 100 {
            self.below_full.push((key.to_owned(), m.margin));
        }
    }

    /// Adds another bucket's counts.
    pub fn merge(&mut self, other: BucketMargins) {
        self.objects += other.objects;
        self.full = other.full.max(self.full);
        for (k, v) in other.by_margin {
            *self.by_margin.entry(k).or_default() += v;
        }
        let room = 100usize.saturating_sub(self.below_full.len());
        self.below_full
            .extend(other.below_full.into_iter().take(room));
    }
}

impl Files<'_> {
    /// Checks the DAG under `root`; `hard` re-hashes every block and re-assembles every file.
    pub fn check(&self, root: &Cid, hard: bool) -> Result<CheckReport, NodeError> {
        self.node.check_with(root, hard, None)
    }
}

impl Replication<'_> {
    /// In a cluster: the margin of the DAG under `root`, an object of `bucket` — every
    /// block's stripe or replica set (as the bucket's redundancy keeps them) surveyed on its
    /// targets; `hard` also reads (fetching or rebuilding as needed) and re-hashes every block,
    /// counting failures in `lost`.
    pub fn margins(
        &self,
        bucket: &str,
        root: &Cid,
        hard: bool,
    ) -> Result<cairn_cluster::margins::Margins, NodeError> {
        let cluster = self
            .node
            .cluster()
            .ok_or_else(|| NodeError::Unsupported("this node is not in a cluster".into()))?;
        let mut cids = Vec::new();
        let mut seen = HashSet::new();
        // (block, known to have no links)
        let mut stack = vec![(*root, false)];
        let mut unreadable = 0;
        while let Some((cid, leaf)) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            cids.push(cid);
            // Raw blocks and file leaves have no links: only a hard check reads them.
            if (leaf || cid.codec() == cairn_dag::RAW) && !hard {
                continue;
            }
            match self.node.blocks().get(&cid) {
                Ok(data) => match cairn_dag::file::branch_links(&cid, &data) {
                    // A file branch's child covering at most one chunk is a leaf (Cairn's
                    // importer never makes a branch over a single chunk).
                    Some(links) => stack.extend(
                        links
                            .iter()
                            .map(|l| (l.cid, l.file_size <= cairn_dag::CHUNK_SIZE as u64)),
                    ),
                    None => stack.extend(
                        cairn_dag::links_of(&cid, &data)?
                            .into_iter()
                            .map(|c| (c, false)),
                    ),
                },
                Err(StoreError::NotFound(_)) | Err(StoreError::CorruptBlock { .. }) => {
                    unreadable += 1
                }
                Err(e) => return Err(e.into()),
            }
        }
        let policy = self
            .node
            .buckets()
            .redundancy(Some(bucket))?
            .unwrap_or_else(|| cluster.policy());
        let mut m = cluster.margins_blocking(&cids, policy);
        if unreadable > 0 {
            m.lost += unreadable;
            m.margin = None;
        }
        Ok(m)
    }

    /// [`Replication::margins`] of every object in `bucket` whose key starts with `prefix`.
    pub fn bucket_margins(
        &self,
        bucket: &str,
        prefix: &str,
        hard: bool,
    ) -> Result<BucketMargins, NodeError> {
        self.node.buckets().get(bucket)?;
        let mut out = BucketMargins::default();
        for o in self
            .node
            .store()
            .objects(bucket, prefix, None, usize::MAX)?
        {
            out.add(&o.key, &self.margins(bucket, &o.cid, hard)?);
        }
        Ok(out)
    }

    /// [`Replication::bucket_margins`] of every bucket; the result is also kept for metrics
    /// ([`Replication::last_margins`]).
    pub fn all_margins(&self, hard: bool) -> Result<BucketMargins, NodeError> {
        let mut out = BucketMargins::default();
        for (name, _) in self.node.buckets().list()? {
            out.merge(self.bucket_margins(&name, "", hard)?);
        }
        *self.node.last_margins.lock() = Some(out.clone());
        Ok(out)
    }

    /// The last count of every object by margin, if one ran.
    pub fn last_margins(&self) -> Option<BucketMargins> {
        self.node.last_margins.lock().clone()
    }
}
