//! Kubo-identical UnixFS file layout, split so that leaves can be hashed in parallel.
//!
//! [`encode_leaf`] turns one chunk into its leaf block (a pure function: call it from any
//! thread). [`BalancedLayout`] takes the leaves' links in file order and emits the branch
//! nodes of Kubo's balanced DAG (≤ [`MAX_LINKS`] links per node) as soon as they are complete,
//! so memory stays bounded by `MAX_LINKS × depth` links whatever the file size.

use bytes::Bytes;
use cid::Cid;
use multihash_codetable::Code;
use rust_unixfs::file::adder::{FileAdder, FileBranchLink, parse_file_branch, rebuild_file_branch};

use crate::{Block, CidVersion, DagError, MAX_LINKS};

/// A link to a finished subtree of a file: what its parent needs to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLink {
    /// The subtree's root.
    pub cid: Cid,
    /// File bytes the subtree covers (UnixFS blocksize).
    pub file_size: u64,
    /// Bytes of all blocks in the subtree (dag-pb Tsize).
    pub dag_size: u64,
}

impl FileLink {
    fn as_branch_link(&self) -> FileBranchLink {
        FileBranchLink {
            cid: self.cid,
            blocksize: self.file_size,
            tsize: self.dag_size,
        }
    }
}

/// Encodes one chunk (at most [`crate::CHUNK_SIZE`] bytes) as a leaf: a raw block under CIDv1,
/// a dag-pb UnixFS `File` node under CIDv0. An empty chunk gives the empty file's leaf.
pub fn encode_leaf(chunk: &[u8], version: CidVersion) -> (Block, FileLink) {
    let mut adder = FileAdder::builder()
        .with_cid_version(version.to_cid_version())
        .build();
    let mut blocks = Vec::with_capacity(1);
    let mut consumed = 0;
    while consumed < chunk.len() {
        let (ready, n) = adder.push(&chunk[consumed..]);
        blocks.extend(ready);
        consumed += n;
    }
    blocks.extend(adder.finish());
    debug_assert_eq!(blocks.len(), 1, "a chunk is one leaf");
    let (cid, data) = blocks.swap_remove(0);
    let link = FileLink {
        cid,
        file_size: chunk.len() as u64,
        dag_size: data.len() as u64,
    };
    (
        Block {
            cid,
            data: Bytes::from(data),
        },
        link,
    )
}

/// Streaming builder of Kubo's balanced file layout over leaves pushed in file order.
#[derive(Debug)]
pub struct BalancedLayout {
    version: CidVersion,
    /// `levels[d]` holds the finished links at depth `d` not yet gathered into a parent.
    levels: Vec<Vec<FileLink>>,
    leaves: u64,
}

/// The finished file: its root and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileRoot {
    /// Root link: CID, file size and DAG size.
    pub link: FileLink,
    /// Number of leaves.
    pub leaves: u64,
}

impl BalancedLayout {
    /// A builder for a file encoded as `version`.
    pub fn new(version: CidVersion) -> Self {
        BalancedLayout {
            version,
            levels: vec![Vec::with_capacity(MAX_LINKS)],
            leaves: 0,
        }
    }

    /// Adds the next leaf; returns the branch blocks this completed (often none).
    pub fn push_leaf(&mut self, leaf: FileLink) -> Vec<Block> {
        self.leaves += 1;
        self.levels[0].push(leaf);
        let mut out = Vec::new();
        let mut depth = 0;
        while self.levels[depth].len() == MAX_LINKS {
            let parent = self.gather(depth, &mut out);
            self.push_at(depth + 1, parent);
            depth += 1;
        }
        out
    }

    /// Closes the tree; returns the remaining branch blocks (root last, if it is a branch) and
    /// the root. A file must have at least one leaf (the empty file has one empty leaf).
    pub fn finish(mut self) -> Result<(Vec<Block>, FileRoot), DagError> {
        if self.leaves == 0 {
            return Err(DagError::Unsupported(
                "a file needs at least one leaf".into(),
            ));
        }
        let mut out = Vec::new();
        let mut depth = 0;
        loop {
            let top = depth + 1 == self.levels.len();
            if top && self.levels[depth].len() == 1 {
                let link = self.levels[depth][0];
                return Ok((
                    out,
                    FileRoot {
                        link,
                        leaves: self.leaves,
                    },
                ));
            }
            if !self.levels[depth].is_empty() {
                let parent = self.gather(depth, &mut out);
                self.push_at(depth + 1, parent);
            }
            depth += 1;
        }
    }

    fn push_at(&mut self, depth: usize, link: FileLink) {
        if self.levels.len() == depth {
            self.levels.push(Vec::with_capacity(MAX_LINKS));
        }
        self.levels[depth].push(link);
    }

    /// Turns the links pending at `depth` into one branch node.
    fn gather(&mut self, depth: usize, out: &mut Vec<Block>) -> FileLink {
        let links: Vec<FileBranchLink> = self.levels[depth]
            .drain(..)
            .map(|l| l.as_branch_link())
            .collect();
        let file_size: u64 = links.iter().map(|l| l.blocksize).sum();
        let children_dag: u64 = links.iter().map(|l| l.tsize).sum();
        let (cid, data) = rebuild_file_branch(
            file_size,
            &links,
            self.version.to_cid_version(),
            Code::Sha2_256,
        );
        let link = FileLink {
            cid,
            file_size,
            dag_size: children_dag + data.len() as u64,
        };
        out.push(Block {
            cid,
            data: Bytes::from(data),
        });
        link
    }
}

/// The child links of a UnixFS file branch node, in order; `None` for a leaf (a raw block or
/// a dag-pb `File` node without links).
pub fn branch_links(cid: &Cid, block: &[u8]) -> Option<Vec<FileLink>> {
    if cid.codec() != crate::DAG_PB || !crate::meta::pb_well_formed(block) {
        return None;
    }
    parse_file_branch(block).map(|branch| {
        branch
            .links
            .into_iter()
            .map(|l| FileLink {
                cid: l.cid,
                file_size: l.blocksize,
                dag_size: l.tsize,
            })
            .collect()
    })
}

/// Encodes a whole in-memory file (tests, small objects): every block, root last, and the root.
pub fn encode_bytes(bytes: &[u8], version: CidVersion) -> (Vec<Block>, FileRoot) {
    let mut layout = BalancedLayout::new(version);
    let mut blocks = Vec::new();
    let mut chunks = bytes.chunks(crate::CHUNK_SIZE).peekable();
    if chunks.peek().is_none() {
        let (block, link) = encode_leaf(&[], version);
        blocks.push(block);
        blocks.extend(layout.push_leaf(link));
    }
    for chunk in chunks {
        let (block, link) = encode_leaf(chunk, version);
        blocks.push(block);
        blocks.extend(layout.push_leaf(link));
    }
    let (rest, root) = layout.finish().expect("at least one leaf was pushed above");
    blocks.extend(rest);
    (blocks, root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_unixfs::file::adder::build_file_from_leaves;

    fn fake_leaf(i: u64) -> FileLink {
        let (_, link) = encode_leaf(&i.to_le_bytes(), CidVersion::V1);
        link
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// The streaming layout equals rust-unixfs's whole-list builder (itself Kubo-identical)
        /// for leaf counts around the 174-link boundaries.
        #[test]
        fn streaming_layout_matches_reference(n in prop_oneof![1u64..400, 30270u64..30320]) {
            for version in [CidVersion::V0, CidVersion::V1] {
                let leaves: Vec<FileLink> = (0..n).map(fake_leaf).collect();
                let mut layout = BalancedLayout::new(version);
                let mut ours = Vec::new();
                for l in &leaves {
                    ours.extend(layout.push_leaf(*l));
                }
                let (rest, root) = layout.finish().unwrap();
                ours.extend(rest);
                let refs: Vec<FileBranchLink> = leaves.iter().map(|l| l.as_branch_link()).collect();
                let (ref_root, ref_tsize, ref_blocks) =
                    build_file_from_leaves(&refs, version.to_cid_version(), Code::Sha2_256);
                prop_assert_eq!(root.link.cid, ref_root);
                prop_assert_eq!(root.link.dag_size, ref_tsize);
                prop_assert_eq!(ours.last().map(|b| b.cid), ref_blocks.last().map(|b| b.0));
                let mut ours: Vec<Cid> = ours.iter().map(|b| b.cid).collect();
                let mut theirs: Vec<Cid> = ref_blocks.iter().map(|b| b.0).collect();
                ours.sort();
                theirs.sort();
                prop_assert!(ours == theirs, "branch block sets differ for {} leaves", n);
            }
        }
    }

    #[test]
    fn branch_links_of_a_two_leaf_file() {
        let data = vec![5u8; crate::CHUNK_SIZE + 10];
        let (blocks, root) = encode_bytes(&data, CidVersion::V0);
        let root_block = blocks.last().unwrap();
        let links = branch_links(&root.link.cid, &root_block.data).unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].file_size, crate::CHUNK_SIZE as u64);
        assert_eq!(links[1].file_size, 10);
        assert!(branch_links(&blocks[0].cid, &blocks[0].data).is_none());
    }

    #[test]
    fn empty_file_is_one_leaf() {
        let (blocks, root) = encode_bytes(b"", CidVersion::V0);
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            root.link.cid.to_string(),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert!(BalancedLayout::new(CidVersion::V0).finish().is_err());
    }
}
