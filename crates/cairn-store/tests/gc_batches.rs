//! GC runs while write batches are open (it never waits for one to finish streaming), and
//! sweeps nothing an open batch wrote or deduplicated against — block files, inline rows and
//! in-progress temp files alike. A GC that waits for a batch fails these tests by timing out
//! (the stuck thread is left behind).

use std::sync::mpsc;
use std::time::Duration;

use cairn_dag::file::encode_bytes;
use cairn_dag::{Block, CidVersion};
use cairn_store::{GcStats, Store};

/// `store.gc()` on its own thread, which must finish within ten seconds.
fn gc_soon(store: &Store) -> GcStats {
    let store = store.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(store.gc());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("GC waited for an open batch")
        .unwrap()
}

fn file(seed: u32, len: u32) -> (Vec<Block>, cairn_dag::Cid) {
    let data: Vec<u8> = (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect();
    let (blocks, root) = encode_bytes(&data, CidVersion::V1);
    (blocks, root.link.cid)
}

#[test]
fn gc_runs_beside_an_open_batch_and_keeps_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (blocks, root) = file(1, 700_000);
    let batch = store.batch();
    for b in &blocks {
        batch.put(b).unwrap();
    }
    let stats = gc_soon(&store);
    assert_eq!(stats.removed, 0, "{stats:?}");
    batch.commit(&[root]).unwrap();
    gc_soon(&store);
    for b in &blocks {
        assert_eq!(store.get(&b.cid).unwrap(), b.data);
    }

    // An aborted batch still leaves nothing behind, GC or not.
    let (other, _) = file(2, 600_000);
    let batch = store.batch();
    for b in &other {
        batch.put(b).unwrap();
    }
    gc_soon(&store);
    drop(batch);
    for b in &other {
        assert!(!store.has(&b.cid).unwrap());
    }
    store.unpin(&root).unwrap();
    gc_soon(&store);
    assert_eq!(store.stats().unwrap(), (0, 0));
}

#[test]
fn gc_leaves_blocks_an_open_batch_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Stored but unreferenced: garbage, until the second batch relies on it.
    let (blocks, root) = file(3, 700_000);
    let record = serde_ipld_dagcbor::to_vec(&ipld_core::ipld::Ipld::Link(root)).unwrap();
    let record = Block::new(CidVersion::V1, cairn_dag::DAG_CBOR, record).unwrap();
    let first = store.batch();
    for b in blocks.iter().chain([&record]) {
        first.put(b).unwrap();
    }
    first.commit(&[]).unwrap();

    let second = store.batch();
    for b in blocks.iter().chain([&record]) {
        second.put(b).unwrap();
    }
    assert_eq!(second.written(), 0, "everything deduplicated");
    let stats = gc_soon(&store);
    assert_eq!(stats.removed, 0, "held blocks stay: {stats:?}");
    second.commit(&[record.cid]).unwrap();
    gc_soon(&store);
    for b in blocks.iter().chain([&record]) {
        assert!(store.has(&b.cid).unwrap(), "{} swept", b.cid);
        assert_eq!(store.get(&b.cid).unwrap(), b.data);
    }
}

#[test]
fn gc_leaves_temp_files_of_held_blocks_and_sweeps_abandoned_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (blocks, _) = file(4, 1000);
    let (lost, _) = file(5, 1000);
    let batch = store.batch();
    batch.put(&blocks[0]).unwrap();
    // A write of the held block in progress, and one a crash left behind.
    let temp = |cid: &cairn_dag::Cid| {
        let key = cairn_store::files::key_of(cid);
        let shard = &key[key.len() - 3..key.len() - 1];
        dir.path()
            .join("blocks")
            .join(shard)
            .join(format!(".tmp-{key}.1.1"))
    };
    let (busy, abandoned) = (temp(&blocks[0].cid), temp(&lost[0].cid));
    for path in [&busy, &abandoned] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"partial").unwrap();
    }
    gc_soon(&store);
    assert!(busy.exists(), "the held block's temp file stays");
    assert!(!abandoned.exists(), "an abandoned temp file goes");
    drop(batch);
    gc_soon(&store);
    assert!(!busy.exists());
}
