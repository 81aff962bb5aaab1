//! Files and DAGs outside buckets as a capability ([`Node::files`]): the handle lives here, its
//! methods beside the code they run — adding streams, files, trees and many files in a batch
//! ([`crate::put`], [`crate::import`], [`crate::snapshot`]), reading, resolving and listing
//! ([`crate::export`]), CAR export and import ([`crate::car`]), snapshots ([`crate::snapshot`])
//! and DAG checks ([`crate::check`]).

use crate::Node;

/// Files and DAGs outside buckets ([`Node::files`]): add, read, list, CAR, snapshots, check.
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Files and DAGs outside buckets: add, cat, ls, CAR, snapshots, check.
    pub fn files(&self) -> Files<'_> {
        Files { node: self }
    }
}
