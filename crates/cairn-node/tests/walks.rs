//! DAG walks over crafted DAGs end, quickly and without a stack overflow (security review H3):
//! a HAMT whose shards link to shared children, 256-way shared directory subtrees, and
//! directories nested thousands deep. Each walk runs on a thread with a small stack and a
//! deadline, so a runaway walk fails the test instead of hanging or exhausting memory.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cairn_dag::dir::MAX_TREE_DEPTH;
use cairn_dag::dir_edit::{DirEditor, EntryLink};
use cairn_dag::file::encode_bytes;
use cairn_dag::{Block, Cid, CidVersion, DagError, Limit, RAW};
use cairn_node::{Node, NodeError};

fn node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    (dir, node)
}

fn store(node: &Node, blocks: &[Block], root: Cid) {
    let batch = node.store().batch();
    for b in blocks {
        batch.put(b).unwrap();
    }
    batch.commit(&[root]).unwrap();
}

/// Runs `f` on a thread with a 512 KiB stack (a quarter of tokio's blocking threads'), failing
/// if it takes longer than `limit`; returns its result and how long it took.
fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let start = Instant::now();
            let out = f();
            let _ = tx.send((out, start.elapsed()));
        })
        .unwrap();
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the walk did not finish within {limit:?}"))
}

/// A plain directory holding `entries`.
fn dir(entries: &[(String, Cid, u64)], out: &mut Vec<Block>) -> EntryLink {
    let mut editor = DirEditor::empty(CidVersion::V1);
    let mut no_load = |cid: &Cid| -> Result<bytes::Bytes, NodeError> {
        Err(NodeError::Unsupported(format!("no block {cid}")))
    };
    for (name, cid, size) in entries {
        let link = EntryLink {
            cid: *cid,
            dag_size: *size,
        };
        editor.set(name, Some(link), &mut no_load).unwrap();
    }
    editor.finish(&mut no_load, out).unwrap().link
}

/// `levels` directories, each holding the next as `d`, the deepest holding the file `f`;
/// returns the root and the file.
fn nested(node: &Node, levels: usize) -> (Cid, Cid) {
    let built = Instant::now();
    let (mut blocks, file) = encode_bytes(b"deep\n", CidVersion::V1);
    let file = file.link;
    let mut top = dir(&[("f".into(), file.cid, file.dag_size)], &mut blocks);
    for _ in 1..levels {
        top = dir(&[("d".into(), top.cid, top.dag_size)], &mut blocks);
    }
    let start = Instant::now();
    store(node, &blocks, top.cid);
    eprintln!(
        "{levels} levels: built in {:?}, stored in {:?}",
        start - built,
        start.elapsed()
    );
    (top.cid, file.cid)
}

fn is_depth_error(e: &NodeError) -> bool {
    matches!(e, NodeError::Dag(d) if matches!(**d, DagError::LimitExceeded { limit: Limit::Depth, .. }))
}

/// The review's bomb: four HAMT shards, each linking all 256 slots to the next, the last
/// holding 256 entries "f" → a raw leaf (256⁴ paths). Listing reads each shard once; lookups
/// read one shard per level; the hard check finishes.
#[test]
fn hamt_bomb_lists_resolves_and_checks_quickly() {
    let (_dir, node) = node();
    let leaf = Block::new(CidVersion::V1, RAW, &b"x"[..]).unwrap();
    let links = |suffix: &str, to: Cid| -> Vec<(String, Cid, u64)> {
        (0..256)
            .map(|i| (format!("{i:02X}{suffix}"), to, 1))
            .collect()
    };
    let mut blocks = vec![leaf.clone()];
    let mut shard = cairn_dag::hamt::shard_node(&links("f", leaf.cid), CidVersion::V1).unwrap();
    for _ in 0..3 {
        blocks.push(shard.clone());
        shard = cairn_dag::hamt::shard_node(&links("", shard.cid), CidVersion::V1).unwrap();
    }
    blocks.push(shard.clone());
    let root = shard.cid;
    store(&node, &blocks, root);

    let n = node.clone();
    let (entries, took) = bounded(Duration::from_secs(20), move || n.files().list(&root));
    let entries = entries.unwrap();
    assert_eq!(entries.len(), 256);
    eprintln!(
        "bomb: list of 4 shards, {} entries in {took:?}",
        entries.len()
    );

    let n = node.clone();
    let (found, took) = bounded(Duration::from_secs(20), move || {
        (
            n.files().resolve(root, "f"),
            n.files().resolve(root, "nope"),
        )
    });
    assert_eq!(found.0.unwrap(), leaf.cid);
    assert!(matches!(found.1, Err(NodeError::Dag(e)) if matches!(*e, DagError::NotFound { .. })));
    eprintln!("bomb: two lookups in {took:?}");

    let n = node.clone();
    let (report, took) = bounded(Duration::from_secs(20), move || {
        n.files().check(&root, true)
    });
    let report = report.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.blocks, 5);
    eprintln!("bomb: hard check in {took:?}");
}

/// Directories sharing subtrees 256 ways four levels deep (256⁴ paths to one file, six blocks):
/// the hard check verifies each distinct node once.
#[test]
fn shared_directory_subtrees_are_checked_once() {
    let (_dir, node) = node();
    let (mut blocks, file) = encode_bytes(b"shared\n", CidVersion::V1);
    let file = file.link;
    let mut top = dir(&[("f".into(), file.cid, file.dag_size)], &mut blocks);
    for _ in 0..4 {
        let entries: Vec<_> = (0..256)
            .map(|i| (format!("e{i:03}"), top.cid, top.dag_size))
            .collect();
        top = dir(&entries, &mut blocks);
    }
    let root = top.cid;
    store(&node, &blocks, root);
    let n = node.clone();
    let (report, took) = bounded(Duration::from_secs(20), move || {
        n.files().check(&root, true)
    });
    let report = report.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.blocks, 6);
    eprintln!("shared subtrees: hard check of 256^4 paths in {took:?}");
}

/// A tree exactly [`MAX_TREE_DEPTH`] directories deep is checked on a 512 KiB stack, and a
/// 1000-deep one is written out by `get` (paths then stay under Linux's PATH_MAX).
#[test]
fn deep_trees_check_and_get_without_recursion() {
    let (dir, node) = node();
    let (root, _) = nested(&node, MAX_TREE_DEPTH);
    let n = node.clone();
    let (report, took) = bounded(Duration::from_secs(60), move || {
        n.files().check(&root, true)
    });
    let report = report.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.blocks, MAX_TREE_DEPTH as u64 + 1);
    eprintln!("{MAX_TREE_DEPTH} levels: hard check in {took:?}");

    let (root, _) = nested(&node, 1000);
    let out = dir.path().join("out");
    let (n, o) = (node.clone(), out.clone());
    let (written, took) = bounded(Duration::from_secs(60), move || {
        n.files().get_to_path(&root, &o)
    });
    written.unwrap();
    let mut deepest = out;
    for _ in 1..1000 {
        deepest.push("d");
    }
    assert_eq!(std::fs::read(deepest.join("f")).unwrap(), b"deep\n");
    eprintln!("1000 levels: get in {took:?}");
}

/// 20 000 nested directories (the review's stack overflow): the hard check ends with a depth
/// error, on a 512 KiB stack; `get` ends with an error too, the filesystem's (a path longer
/// than PATH_MAX, about 2000 levels down) or, where paths may be longer, the depth limit.
#[test]
fn twenty_thousand_levels_end_with_a_depth_error() {
    let (_dir, node) = node();
    let (root, _) = nested(&node, 20_000);
    let n = node.clone();
    let (checked, took) = bounded(Duration::from_secs(60), move || {
        n.files().check(&root, true)
    });
    let e = checked.unwrap_err();
    assert!(is_depth_error(&e), "{e}");
    eprintln!("20000 levels: hard check ends in {took:?}: {e}");

    let out = tempfile::tempdir().unwrap();
    let (n, o) = (node.clone(), out.path().join("out"));
    let (written, took) = bounded(Duration::from_secs(60), move || {
        n.files().get_to_path(&root, &o)
    });
    let e = written.unwrap_err();
    assert!(
        is_depth_error(&e) || matches!(e, NodeError::Io { .. }),
        "{e}"
    );
    let e = e.to_string();
    eprintln!(
        "20000 levels: get ends in {took:?}: {}",
        &e[..e.len().min(120)]
    );
}
