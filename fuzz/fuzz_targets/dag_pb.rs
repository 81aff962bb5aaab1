//! One untrusted dag-pb block (as it arrives over Bitswap, in a CAR, or from `block/put`)
//! through every per-block decoder the node runs on it: links and sizes (`cairn_dag::block`),
//! the UnixFS kind, symlink target and 1.5 metadata (`dir`, `meta`), a file branch's links
//! (`file`), the first step of a listing, a path lookup (plain and HAMT) and a file read, the
//! directory editor's open, and the metadata rewrite of a file root.
#![no_main]

use bytes::Bytes;
use cairn_dag::dir::{DirListing, PathResolve, describe, symlink_target};
use cairn_dag::dir_edit::DirEditor;
use cairn_dag::hamt::ShardLookup;
use cairn_dag::meta::{UnixMeta, UnixTime, metadata_of, with_metadata_sized};
use cairn_dag::read::FileRead;
use cairn_dag::{Block, CidVersion, DAG_PB, block, cid_of, file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("dag_pb"),
    |data: &[u8]| {
        let bytes = Bytes::copy_from_slice(data);
        for version in [CidVersion::V0, CidVersion::V1] {
            let cid = cid_of(version, DAG_PB, data).unwrap();
            let _ = block::links_of(&cid, &bytes);
            let _ = block::dag_size(&cid, &bytes);
            let _ = describe(&cid, data);
            let _ = symlink_target(&cid, data);
            let _ = metadata_of(&cid, data);
            let _ = file::branch_links(&cid, data);
            if let Ok(listing) = DirListing::start(&cid, data) {
                let _ = listing.next_cid();
                let _ = listing.entries();
            }
            for name in ["a", "index.html", "é"] {
                let mut resolve = PathResolve::new(cid, name);
                let _ = resolve.feed(data);
                let _ = resolve.next_cid();
                let _ = ShardLookup::new(cid, name).feed(data);
            }
            for range in [None, Some(0..u64::MAX), Some(1..2)] {
                let mut read = FileRead::new(cid, range);
                let _ = read.feed(data);
                let _ = read.next_cid();
            }
            if let Ok(mut editor) = DirEditor::open(&cid, data, version) {
                let mut load = |_: &cairn_dag::Cid| -> Result<Bytes, cairn_dag::DagError> {
                    Err(cairn_dag::DagError::Unsupported("no other block".into()))
                };
                let _ = editor.get("a", &mut load);
            }
            let meta = UnixMeta {
                mode: Some(0o644),
                mtime: Some(UnixTime { secs: 1, nsecs: 2 }),
            };
            let root = Block { cid, data: bytes.clone() };
            if let Ok((rewritten, _)) = with_metadata_sized(&root, &meta) {
                // what the rewrite wrote reads back
                assert_eq!(metadata_of(&rewritten.cid, &rewritten.data).ok(), Some(meta));
            }
        }
    }
);
