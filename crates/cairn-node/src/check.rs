//! Checking a DAG. Soft: every block is present (blocks the index knows to be link-less are
//! only looked up, not read). Hard: every block is read and re-hashed, then every UnixFS file in
//! the DAG is re-assembled and its length compared with what its root says.

use std::collections::HashSet;

use cairn_dag::Cid;
use cairn_dag::dir::NodeKind;
use cairn_store::StoreError;

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
    /// Checks the DAG under `root`; `hard` re-hashes every block and re-assembles every file.
    pub fn check(&self, root: &Cid, hard: bool) -> Result<CheckReport, NodeError> {
        let mut report = CheckReport::default();
        let mut seen = HashSet::new();
        let mut stack = vec![*root];
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            report.blocks += 1;
            // Soft: a block the index knows to be link-less only needs to be present.
            if !hard
                && let Some(info) = self.store().block_info(&cid)?
                && !info.may_link
            {
                if !self.store().has(&cid)? {
                    report.missing.push(cid);
                }
                continue;
            }
            match self.store().get_local(&cid) {
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

    fn reassemble(&self, cid: &Cid, report: &mut CheckReport) -> Result<(), NodeError> {
        match self.describe(cid)? {
            NodeKind::File { size } => {
                let mut stream = self.cat(*cid, None);
                let mut total = 0u64;
                let outcome = loop {
                    match stream.next_piece() {
                        Ok(Some(piece)) => total += piece.len() as u64,
                        Ok(None) if total == size => break Ok(()),
                        Ok(None) => break Err(format!("{total} bytes, root says {size}")),
                        Err(e) => break Err(e.to_string()),
                    }
                };
                if let Err(why) = outcome {
                    report.bad_files.push((*cid, why));
                }
            }
            NodeKind::Directory { .. } => {
                for entry in self.list(cid)? {
                    self.reassemble(&entry.cid, report)?;
                }
            }
            NodeKind::Symlink | NodeKind::Other => {}
        }
        Ok(())
    }
}
