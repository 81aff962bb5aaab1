//! The node's walks over an untrusted DAG: the input is a small set of blocks, each stored
//! under its own CID (see `cairn_fuzz::BlockSet`), whose last block is the root, plus a path
//! and the choices below. Over it run, with the real limits:
//!
//! * a directory listing (`DirListing`, the default `DirLimits`), following HAMT shards;
//! * a path resolution (`PathResolve`, HAMT lookups by name hash);
//! * a file read (`FileRead`), whole or of a range;
//! * the CAR block selection of exports and the trustless gateway (`car::select_blocks`) with
//!   the scope and entity bytes chosen;
//! * the directory editor of bucket roots (`DirEditor`): get, set and re-encode an entry.
//!
//! A walk must end (no hang), without a panic, having done work bounded by what it was fed.
#![no_main]

use bytes::Bytes;
use cairn_dag::car::{CarSelection, DagScope, EntityBytes, select_blocks};
use cairn_dag::dir::{DirListing, PathResolve};
use cairn_dag::dir_edit::{DirEditor, EntryLink};
use cairn_dag::read::FileRead;
use cairn_dag::{Cid, CidVersion, DagError};
use cairn_fuzz::{BlockSet, Input};
use cairn_node::NodeError;
use libfuzzer_sys::fuzz_target;

/// Most blocks in one input.
const MAX_BLOCKS: usize = 64;
/// A file read stops (as a client that has had enough would) after this many bytes.
const READ_ENOUGH: u64 = 1 << 20;
/// Blocks a file read may take without having produced a single byte.
const IDLE_FEEDS: usize = 100_000;

fn missing(cid: &Cid) -> DagError {
    DagError::NotFound {
        parent: *cid,
        name: "(block not in the set)".into(),
    }
}

fn read_file(set: &BlockSet, root: Cid, range: Option<std::ops::Range<u64>>) {
    let mut read = FileRead::new(root, range);
    let (mut feeds, mut produced) = (0usize, 0u64);
    while let Some(cid) = read.next_cid() {
        let Some(block) = set.get(&cid) else { return };
        feeds += 1;
        match read.feed(block) {
            Ok(bytes) => produced += bytes.len() as u64,
            Err(_) => return,
        }
        if produced >= READ_ENOUGH {
            return;
        }
        assert!(
            produced > 0 || feeds < IDLE_FEEDS,
            "a file read took {feeds} blocks of a {}-block DAG and produced nothing",
            set.order.len()
        );
    }
}

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("dag_walk"),
    |data: &[u8]| {
        let mut input = Input::new(data);
        let path = String::from_utf8_lossy(input.short()).into_owned();
        let flags = input.byte();
        let (from, to) = (input.u16() as i16, input.u16() as i16);
        let set = BlockSet::read(&mut input, MAX_BLOCKS);
        let Some(root) = set.root() else { return };
        let distinct = set.blocks.len();

        // listing: each distinct shard is fed once
        if let Ok(mut listing) = DirListing::start(&root, &set.blocks[&root]) {
            let mut feeds = 0;
            while let Some(next) = listing.next_cid() {
                let Some(block) = set.get(&next) else { break };
                feeds += 1;
                assert!(feeds <= distinct, "a listing fed {feeds} of {distinct} blocks");
                if listing.feed(block).is_err() {
                    break;
                }
            }
        }

        // path resolution: one block per plain directory, at most 8 per HAMT level chain
        let mut resolve = PathResolve::new(root, &path);
        let segments = path.split('/').filter(|s| !s.is_empty()).count();
        let mut reads = 0;
        while let Some(next) = resolve.next_cid() {
            let Some(block) = set.get(&next) else { break };
            reads += 1;
            assert!(
                reads <= segments * cairn_dag::hamt::MAX_DEPTH,
                "{reads} blocks read to resolve {segments} segments"
            );
            if resolve.feed(block).is_err() {
                break;
            }
        }

        // file reads
        read_file(&set, root, None);
        let start = (from as u16) as u64;
        read_file(&set, root, Some(start..start + (to as u16) as u64));

        // CAR selections
        let scope = match flags & 3 {
            0 => DagScope::Block,
            1 => DagScope::Entity,
            _ => DagScope::All,
        };
        let selection = CarSelection {
            path: path.clone(),
            scope,
            bytes: (flags & 4 != 0).then(|| EntityBytes {
                from: from as i64,
                to: (flags & 8 == 0).then_some(to as i64),
            }),
        };
        let mut emitted = 0usize;
        let _ = select_blocks(
            root,
            &selection,
            |cid| set.get(cid).cloned().ok_or_else(|| NodeError::from(missing(cid))),
            |_, _| {
                emitted += 1;
                Ok(())
            },
        );
        assert!(emitted <= distinct, "{emitted} blocks emitted of {distinct}");

        // the directory editor
        let version = if flags & 16 == 0 { CidVersion::V0 } else { CidVersion::V1 };
        let mut load = |cid: &Cid| -> Result<Bytes, DagError> {
            set.get(cid).cloned().ok_or_else(|| missing(cid))
        };
        if let Ok(mut editor) = DirEditor::open(&root, &set.blocks[&root], version) {
            let name = path.split('/').find(|s| !s.is_empty()).unwrap_or("x");
            let _ = editor.get(name, &mut load);
            let link = EntryLink {
                cid: root,
                dag_size: 1,
            };
            let set_ok = if flags & 32 == 0 {
                editor.set(name, Some(link), &mut load)
            } else {
                editor.set(name, None, &mut load)
            };
            if set_ok.is_ok() {
                let mut out = Vec::new();
                let _ = editor.finish(&mut load, &mut out);
            }
        }
    }
);
