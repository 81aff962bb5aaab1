//! In-process clusters: N nodes, each a real store in its own folder, joined by an in-memory
//! switch that can "kill" nodes. Writes go through the same `Placer` a PUT uses; reads through
//! `Cluster::fetch`, the path a node takes for a block it does not have. The switch tells each
//! receiver who called (`Cluster::handle(peer, …)`), as libp2p does. Review H2's attacks
//! (lying manifests, re-pointing, absurd numbers of copies) come next, and last piece GC:
//! units freed only when every owner says it no longer references them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use cairn_cluster::repair::{CheckReport, Mode};
use cairn_cluster::{Cluster, ClusterConfig, Member, RecordSink, Redundancy, Transport};
use cairn_dag::{Block, CidVersion};
use cairn_store::{BlockSink, Store};
use futures::future::BoxFuture;
use parking_lot::Mutex;

#[derive(Default)]
struct Switch {
    nodes: Mutex<HashMap<Vec<u8>, Cluster>>,
    dead: Mutex<HashSet<Vec<u8>>>,
}

/// One node's link to the switch; the receiver learns who called, as over libp2p.
struct Port {
    switch: Arc<Switch>,
    me: Vec<u8>,
}

impl Transport for Port {
    fn call(&self, peer: Vec<u8>, request: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let switch = self.switch.clone();
        let me = self.me.clone();
        Box::pin(async move {
            if switch.dead.lock().contains(&peer) {
                return Err("connection refused".into());
            }
            let node = switch
                .nodes
                .lock()
                .get(&peer)
                .cloned()
                .ok_or("no such peer")?;
            tokio::task::spawn_blocking(move || node.handle(&me, &request))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

struct Harness {
    switch: Arc<Switch>,
    nodes: Vec<(Vec<u8>, Cluster)>,
    /// What each node keeps of the records it is sent.
    sinks: Vec<Arc<Keep>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Harness {
    fn new(n: usize, policy: Redundancy) -> Self {
        Harness::with_down_after(n, policy, Duration::from_secs(3600))
    }

    fn with_down_after(n: usize, policy: Redundancy, down_after: Duration) -> Self {
        let switch = Arc::new(Switch::default());
        let mut nodes = Vec::new();
        let mut dirs = Vec::new();
        let mut sinks = Vec::new();
        for i in 0..n {
            let sink = Arc::new(Keep::default());
            sinks.push(sink.clone());
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let id = format!("node-{i}").into_bytes();
            let cluster = Cluster::new(
                store,
                ClusterConfig {
                    me: id.clone(),
                    zone: None,
                    policy,
                    down_after,
                    piece_grace: std::time::Duration::from_secs(3600),
                },
                Arc::new(Port {
                    switch: switch.clone(),
                    me: id.clone(),
                }),
                Some(sink),
            );
            switch.nodes.lock().insert(id.clone(), cluster.clone());
            nodes.push((id, cluster));
            dirs.push(dir);
        }
        let h = Harness {
            switch,
            nodes,
            sinks,
            _dirs: dirs,
        };
        h.heartbeat();
        h
    }

    fn alive(&self) -> Vec<&(Vec<u8>, Cluster)> {
        let dead = self.switch.dead.lock();
        self.nodes
            .iter()
            .filter(|(id, _)| !dead.contains(id))
            .collect()
    }

    /// Every live node sees every other live node connected.
    fn heartbeat(&self) {
        let members: Vec<Member> = self
            .alive()
            .iter()
            .map(|(id, _)| Member::new(id.clone()))
            .collect();
        for (_, c) in self.alive() {
            c.observe(&members);
        }
    }

    fn kill(&self, which: &[usize]) {
        for &i in which {
            self.switch.dead.lock().insert(self.nodes[i].0.clone());
        }
        self.heartbeat();
    }

    /// Brings killed (or not yet joined) nodes into the cluster.
    fn revive(&self, which: &[usize]) {
        for &i in which {
            self.switch.dead.lock().remove(&self.nodes[i].0);
        }
        self.heartbeat();
    }

    /// One pass of `mode` on every live node, summed.
    async fn pass(&self, mode: Mode) -> CheckReport {
        let mut sum = CheckReport::default();
        for (_, c) in self.alive() {
            let r = c.check_all(mode).await.unwrap();
            assert!(r.wrapped);
            sum.add(&r);
        }
        sum
    }

    /// Bytes of all blocks stored on all nodes (dead ones too).
    fn stored_bytes(&self) -> u64 {
        self.nodes
            .iter()
            .map(|(_, c)| c.store().stats().unwrap().1)
            .sum()
    }
}

/// A file's blocks as the importer makes them (CIDv1, raw leaves).
fn file(size: usize, seed: u64) -> (Vec<Block>, u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let (blocks, _) = cairn_dag::file::encode_bytes(&data, CidVersion::V1);
    (blocks, size as u64)
}

async fn write(cluster: &Cluster, blocks: Vec<Block>) -> cairn_cluster::PlaceReport {
    write_as(cluster, cluster.policy(), blocks).await
}

/// Writes `blocks` kept with `policy` (a bucket's own) rather than the cluster's.
async fn write_as(
    cluster: &Cluster,
    policy: Redundancy,
    blocks: Vec<Block>,
) -> cairn_cluster::PlaceReport {
    let placer = cluster.placer_for(policy);
    tokio::task::spawn_blocking(move || {
        for b in &blocks {
            placer.block(b).unwrap();
        }
        placer.finish_blocking().unwrap()
    })
    .await
    .unwrap()
}

async fn read_all(h: &Harness, objects: &[Vec<Block>]) {
    for (id, reader) in h.alive() {
        for blocks in objects {
            for b in blocks {
                let got = match reader.store().get_local(&b.cid) {
                    Ok(data) => Some(data),
                    Err(_) => reader.fetch(&b.cid).await,
                };
                assert_eq!(
                    got.as_ref(),
                    Some(&b.data),
                    "{} reading {}",
                    String::from_utf8_lossy(id),
                    b.cid
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_nodes_ec_4_2_lose_two_and_read_everything() {
    let h = Harness::new(6, Redundancy::Ec { k: 4, m: 2 });
    let sizes = [
        1usize,
        100,
        4096,
        262_144,
        262_145,
        1 << 20,
        3 << 20,
        5_000_000,
    ];
    let mut objects = Vec::new();
    let mut logical = 0;
    for (i, &size) in sizes.iter().cycle().take(24).enumerate() {
        let (blocks, len) = file(size, i as u64);
        logical += blocks.iter().map(|b| b.data.len() as u64).sum::<u64>();
        let _ = len;
        let report = write(&h.nodes[i % 6].1, blocks.clone()).await;
        assert_eq!(report.short, 0);
        objects.push(blocks);
    }
    let overhead = h.stored_bytes() as f64 / logical as f64;
    println!("stored/logical = {overhead:.3} (ideal 1.5)");
    assert!((1.45..1.65).contains(&overhead), "overhead {overhead}");
    h.kill(&[1, 4]);
    read_all(&h, &objects).await;
}

/// The block file of `cid` in a store folder.
fn block_file(dir: &std::path::Path, cid: &cairn_dag::Cid) -> std::path::PathBuf {
    let key = cairn_store::files::key_of(cid);
    for shard in std::fs::read_dir(dir.join("blocks")).unwrap().flatten() {
        let p = shard.path().join(&key);
        if p.is_file() {
            return p;
        }
    }
    panic!("no file for {cid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_restores_full_margin_after_losses_and_corruption() {
    // 8 nodes: after 2 die, the 6 left can again hold every stripe's 6 shards on 6 nodes.
    let h = Harness::with_down_after(8, Redundancy::Ec { k: 4, m: 2 }, Duration::ZERO);
    let mut objects = Vec::new();
    for (i, size) in [1usize, 200_000, 1 << 20, 3_000_000, 6 << 20]
        .into_iter()
        .enumerate()
    {
        let (blocks, _) = file(size, 200 + i as u64);
        write(&h.nodes[i].1, blocks.clone()).await;
        objects.push(blocks);
    }
    let healthy = h.pass(Mode::Soft).await;
    assert!(
        healthy.led > 0 && healthy.degraded == 0 && healthy.lost == 0,
        "{healthy:?}"
    );
    let stripes = healthy.led;
    assert_eq!(healthy.at_full_margin, stripes);

    h.kill(&[2, 6]);
    let hurt = h.pass(Mode::Soft).await;
    assert_eq!(hurt.lost, 0, "{hurt:?}");
    assert!(
        hurt.degraded > 0,
        "two of eight nodes held some shards: {hurt:?}"
    );
    let fixed = h.pass(Mode::Repair).await;
    assert!(fixed.repaired > 0 && fixed.failed == 0, "{fixed:?}");
    let after = h.pass(Mode::Soft).await;
    assert_eq!(
        (after.led, after.at_full_margin, after.degraded, after.lost),
        (stripes, stripes, 0, 0),
        "every stripe back to full margin"
    );
    let hard = h.pass(Mode::Hard).await;
    assert_eq!((hard.verified, hard.failed), (stripes, 0), "{hard:?}");

    // A flipped byte in a shard file: never served, found, re-created.
    let (victim, blocks) = (&h.nodes[0], &objects[4]);
    let dir = victim.1.store().root().to_path_buf();
    let held = blocks
        .iter()
        .find(|b| victim.1.store().has(&b.cid).unwrap() && b.data.len() > 1000)
        .expect("node 0 holds a leaf of the big object");
    let path = block_file(&dir, &held.cid);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[500] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let hard = h.pass(Mode::Hard).await;
    assert_eq!(hard.failed, 0, "{hard:?}");
    assert!(
        !victim.1.store().has(&held.cid).unwrap(),
        "the corrupt file was quarantined"
    );
    h.pass(Mode::Repair).await;
    let again = h.pass(Mode::Soft).await;
    assert_eq!(
        (again.at_full_margin, again.degraded),
        (stripes, 0),
        "{again:?}"
    );

    // Two more losses: still everything reads.
    h.kill(&[0, 5]);
    read_all(&h, &objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_members_move_pieces_rather_than_copy_them() {
    // Six members hold the data; three more join. Repair puts shards on their new targets and
    // the old holders then drop theirs: the bytes stored stay (K+M)/K of the data.
    let h = Harness::with_down_after(9, Redundancy::Ec { k: 4, m: 2 }, Duration::ZERO);
    h.kill(&[6, 7, 8]);
    let mut objects = Vec::new();
    let mut logical = 0;
    for (i, size) in [5000usize, 700_000, 2 << 20, 5 << 20]
        .into_iter()
        .enumerate()
    {
        let (blocks, n) = file(size, 400 + i as u64);
        write(&h.nodes[i].1, blocks.clone()).await;
        objects.push(blocks);
        logical += n;
    }
    let overhead = |h: &Harness| h.stored_bytes() as f64 / logical as f64;
    let before = overhead(&h);
    assert!((1.45..1.65).contains(&before), "{before}");

    h.revive(&[6, 7, 8]);
    let mut moved = 0;
    let mut repaired = 0;
    for _ in 0..3 {
        let r = h.pass(Mode::Repair).await;
        assert_eq!(r.failed, 0, "{r:?}");
        moved += r.moved;
        repaired += r.repaired;
    }
    for (_, c) in &h.nodes {
        c.store().gc().unwrap();
    }
    let after = overhead(&h);
    println!(
        "{repaired} pieces re-created on new targets, {moved} dropped: overhead {before:.3} -> {after:.3}"
    );
    assert!(
        repaired > 0 && moved > 0,
        "{repaired} re-created, {moved} moved"
    );
    assert!(
        (1.45..1.65).contains(&after),
        "overhead after the join: {after}"
    );
    for i in 6..9 {
        assert!(
            h.nodes[i].1.store().stats().unwrap().1 > 0,
            "node {i} took a share"
        );
    }
    let soft = h.pass(Mode::Soft).await;
    assert_eq!((soft.degraded, soft.lost), (0, 0), "{soft:?}");
    h.kill(&[0, 7]);
    read_all(&h, &objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_nodes_ec_16_4_survive_four_losses() {
    let h = Harness::new(20, Redundancy::Ec { k: 16, m: 4 });
    let mut objects = Vec::new();
    for (i, size) in [1usize, 300_000, 4 << 20, 9 << 20].into_iter().enumerate() {
        let (blocks, _) = file(size, 100 + i as u64);
        write(&h.nodes[i].1, blocks.clone()).await;
        objects.push(blocks);
    }
    h.kill(&[0, 5, 11, 19]);
    read_all(&h, &objects).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_3_lose_two_holders() {
    let h = Harness::new(5, Redundancy::Replicas(3));
    let (blocks, _) = file(2 << 20, 7);
    write(&h.nodes[0].1, blocks.clone()).await;
    // Kill two of the three holders of the root block.
    let root = blocks.last().unwrap().cid;
    let holders: Vec<usize> = (0..5)
        .filter(|&i| h.nodes[i].1.store().piece(&root).unwrap().is_some())
        .collect();
    assert_eq!(holders.len(), 3);
    h.kill(&holders[..2]);
    read_all(&h, &[blocks]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_policy_overrides_the_cluster_default_through_checks_and_repair() {
    // The cluster keeps ec:4+2; one write asks for 3 copies, another for ec:2+1.
    let h = Harness::with_down_after(7, Redundancy::Ec { k: 4, m: 2 }, Duration::ZERO);
    let (copied, size) = file(3 << 20, 31);
    let before = h.stored_bytes();
    let r = write_as(&h.nodes[0].1, Redundancy::Replicas(3), copied.clone()).await;
    let overhead = (h.stored_bytes() - before) as f64 / size as f64;
    assert!(
        (2.9..3.1).contains(&overhead),
        "replicas:3 overhead {overhead}"
    );
    assert_eq!((r.units, r.short), (copied.len() as u64, 0));
    let root = copied.last().unwrap().cid;
    let holders: Vec<usize> = (0..7)
        .filter(|&i| h.nodes[i].1.store().piece(&root).unwrap().is_some())
        .collect();
    assert_eq!(
        holders.len(),
        3,
        "three copies, whatever the cluster's default"
    );
    assert_eq!(
        h.nodes[holders[0]].1.store().piece(&root).unwrap(),
        Some(cairn_store::pieces::PieceOf::Replica {
            cid: root,
            copies: Some(3)
        })
    );

    let (striped, size) = file(4 << 20, 32);
    let before = h.stored_bytes();
    write_as(
        &h.nodes[1].1,
        Redundancy::Ec { k: 2, m: 1 },
        striped.clone(),
    )
    .await;
    let overhead = (h.stored_bytes() - before) as f64 / size as f64;
    assert!(
        (1.45..1.6).contains(&overhead),
        "ec:2+1 overhead {overhead}"
    );

    let cids = |blocks: &[Block]| blocks.iter().map(|b| b.cid).collect::<Vec<_>>();
    let reader = &h.nodes[6].1;
    let m = reader
        .margins(&cids(&copied), Redundancy::Replicas(3))
        .await;
    assert_eq!((m.margin, m.full, m.lost), (Some(2), 2, 0), "{m:?}");
    let m = reader
        .margins(&cids(&striped), Redundancy::Ec { k: 2, m: 1 })
        .await;
    assert_eq!((m.margin, m.full, m.unplaced), (Some(1), 1, 0), "{m:?}");
    let healthy = h.pass(Mode::Soft).await;
    assert_eq!((healthy.degraded, healthy.lost), (0, 0), "{healthy:?}");

    // Two of the three holders die: repair makes three copies again, not six shards.
    h.kill(&holders[..2]);
    let hurt = h.pass(Mode::Soft).await;
    assert!(hurt.degraded > 0 && hurt.lost == 0, "{hurt:?}");
    let fixed = h.pass(Mode::Repair).await;
    assert_eq!(fixed.failed, 0, "{fixed:?}");
    let again = h.pass(Mode::Soft).await;
    assert_eq!((again.degraded, again.lost), (0, 0), "{again:?}");
    let alive: Vec<usize> = (0..7).filter(|i| !holders[..2].contains(i)).collect();
    let copies = alive
        .iter()
        .filter(|&&i| h.nodes[i].1.store().piece(&root).unwrap().is_some())
        .count();
    assert_eq!(copies, 3, "repair restored three copies");
    read_all(&h, &[copied, striped]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_without_quorum_is_refused_and_forged_pieces_are_not_kept() {
    let h = Harness::new(3, Redundancy::Ec { k: 4, m: 2 });
    h.kill(&[1, 2]);
    let placer = h.nodes[0].1.placer();
    let (blocks, _) = file(1 << 20, 9);
    let err = tokio::task::spawn_blocking(move || {
        for b in &blocks {
            let _ = placer.block(b);
        }
        placer.finish_blocking().unwrap_err()
    })
    .await
    .unwrap();
    assert!(err.to_string().contains("one more node failure"), "{err}");

    // A Put whose bytes do not match the CID is refused.
    let good = Block::new(CidVersion::V1, cairn_dag::RAW, b"hello".to_vec()).unwrap();
    let forged = cairn_cluster::proto::Request::Put {
        pieces: vec![cairn_cluster::proto::WireBlock {
            cid: good.cid,
            data: serde_bytes::ByteBuf::from(b"jello".to_vec()),
        }],
        stripe: None,
        copies: None,
        owners: None,
    };
    let node = h.nodes[0].1.clone();
    let answer = tokio::task::spawn_blocking(move || {
        node.handle(b"forger", &cairn_cluster::proto::encode(&forged))
    })
    .await
    .unwrap();
    let answer: cairn_cluster::proto::Response = cairn_cluster::proto::decode(&answer).unwrap();
    assert!(
        matches!(answer, cairn_cluster::proto::Response::Error(_)),
        "{answer:?}"
    );
    assert!(!h.nodes[0].1.store().has(&good.cid).unwrap());
    let garbage = h.nodes[0].1.handle(b"forger", b"\x00\x01");
    assert!(matches!(
        cairn_cluster::proto::decode::<cairn_cluster::proto::Response>(&garbage).unwrap(),
        cairn_cluster::proto::Response::Error(_)
    ));
}

/// A record sink that keeps the longest record seen (newest, for the test).
#[derive(Default)]
struct Keep(Mutex<HashMap<String, Vec<u8>>>);

impl RecordSink for Keep {
    fn accept(&self, key: &str, bytes: &[u8]) -> Result<(), String> {
        if bytes.is_empty() {
            return Err("empty record".into());
        }
        let mut kept = self.0.lock();
        let slot = kept.entry(key.to_owned()).or_default();
        if bytes.len() > slot.len() {
            *slot = bytes.to_vec();
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.lock().get(key).cloned()
    }
}

/// Every node of `h` keeps the records it is sent in a [`Keep`]; the sinks, by node.
fn keep_records(h: &Harness) -> Vec<Arc<Keep>> {
    h.sinks.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_their_replica_set_and_survive_its_writer() {
    let h = Harness::new(6, Redundancy::Ec { k: 4, m: 2 });
    let sinks = keep_records(&h);
    let writer = &h.nodes[0].1;
    // tolerance 2 → three targets; with the writer, the record is on up to four nodes
    let targets = writer.record_targets("head/b");
    assert!((2..=3).contains(&targets.len()), "{targets:?}");
    let held = writer
        .replicate_record("head/b", b"version-1".to_vec())
        .await
        .unwrap();
    assert_eq!(held, targets.len() + 1);
    let holders: Vec<usize> = (0..6)
        .filter(|&i| sinks[i].get("head/b").is_some())
        .collect();
    assert_eq!(holders.len(), targets.len());
    // refused records are not counted: an empty one reaches no quorum
    assert!(writer.replicate_record("head/b", Vec::new()).await.is_err());
    // the writer dies; any survivor gathers the record from the replica set
    writer
        .replicate_record("head/b", b"version-22".to_vec())
        .await
        .unwrap();
    h.kill(&[0]);
    let gathered = h.nodes[1].1.gather_records("head/b").await;
    assert!(gathered.iter().any(|r| r == b"version-22"), "{gathered:?}");
    // a writer alone cannot reach quorum
    h.kill(&[2, 3, 4, 5]);
    let err = h.nodes[1]
        .1
        .replicate_record("head/c", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("would not survive"), "{err}");
}

/// A member of a record's replica set that does not keep it (gone, or a member that takes
/// records and keeps none) is skipped: the record goes to the next member in the key's order,
/// and the write survives one more loss as before. (A head's replica set that held a
/// misbehaving member failed every write of that bucket.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_target_that_keeps_nothing_is_replaced_by_the_next_member() {
    let h = Harness::new(3, Redundancy::Replicas(2));
    let sinks = keep_records(&h);
    let writer = &h.nodes[0].1;
    for n in 0..64 {
        let key = format!("head/b{n}");
        let targets = writer.record_targets(&key);
        // every target but the first refuses: kill the first target of the set
        let first = h
            .nodes
            .iter()
            .position(|(id, _)| *id == targets[0])
            .unwrap();
        h.kill(&[first]);
        let held = writer
            .replicate_record(&key, b"version-1".to_vec())
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert!(held >= 2, "{key}: held by {held}");
        let holders = (1..3)
            .filter(|&i| i != first && sinks[i].get(&key).is_some())
            .count();
        assert_eq!(holders, 1, "{key}: the next member keeps it");
        h.revive(&[first]);
    }
}

// --- H2: the piece protocol trusts no input --------------------------------------------------

/// The largest single allocation made by any thread of this test binary since the last reset:
/// shows that a lying size is refused before it is allocated.
mod peak {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

    pub struct Peak;

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Peak {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static PEAK: Peak = Peak;
}

use cairn_cluster::proto::{self, Request, Response, WireBlock};
use cairn_cluster::stripe::Manifest;
use serde_bytes::ByteBuf;

/// The id of the peer that sends the attacks below (not a member: membership is the
/// network's; these tests show what a member that lies can and cannot do).
const LIAR: &[u8] = b"liar";

/// Sends `request` to `node` as peer [`LIAR`] would (through `Cluster::handle`).
async fn send(node: &Cluster, request: &Request) -> Response {
    let node = node.clone();
    let bytes = proto::encode(request);
    let answer = tokio::task::spawn_blocking(move || node.handle(LIAR, &bytes))
        .await
        .unwrap();
    proto::decode(&answer).unwrap()
}

fn raw_block(data: Vec<u8>) -> Block {
    Block::new(CidVersion::V1, cairn_dag::RAW, data).unwrap()
}

fn wire(block: &Block) -> WireBlock {
    WireBlock {
        cid: block.cid,
        data: ByteBuf::from(block.data.to_vec()),
    }
}

/// A manifest block as a liar would make it (no checks on this side).
fn lying_manifest(m: &Manifest) -> Block {
    m.to_block().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_put_cannot_make_an_honest_node_allocate_its_size_in_repair() {
    let h = Harness::with_down_after(3, Redundancy::Ec { k: 2, m: 1 }, Duration::ZERO);
    let (blocks, _) = file(600_000, 77);
    write(&h.nodes[0].1, blocks.clone()).await;
    let b = &h.nodes[1].1;
    // The review's Put: 63 tiny pieces of a "stripe" of 64 whose 64th block exists nowhere,
    // shard_len just under 4 GiB, one random parity shard.
    let pieces: Vec<Block> = (0..63u32)
        .map(|i| raw_block(i.to_be_bytes().to_vec()))
        .collect();
    let mut data: Vec<_> = pieces.iter().map(|p| p.cid).collect();
    data.push(raw_block(b"nowhere".to_vec()).cid);
    let manifest = Manifest {
        v: 1,
        shard_len: 0xFFFF_FFC0,
        data,
        lens: vec![4; 64],
        parity: vec![raw_block(b"random parity".to_vec()).cid],
    };
    let mblock = lying_manifest(&manifest);
    let put = Request::Put {
        pieces: pieces.iter().map(wire).collect(),
        stripe: Some(wire(&mblock)),
        copies: None,
        owners: None,
    };
    peak::LARGEST.store(0, std::sync::atomic::Ordering::Relaxed);
    let answer = send(b, &put).await;
    let refusal = match answer {
        Response::Error(e) => e,
        other => panic!("the lying Put was accepted: {other:?}"),
    };
    assert!(refusal.contains("shard_len"), "{refusal}");
    assert!(
        !b.store().has(&pieces[0].cid).unwrap() && !b.store().has(&mblock.cid).unwrap(),
        "nothing of the lying Put is kept"
    );
    let report = b.check_pass(Mode::Repair, 256).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");

    // The same manifest already in the store (kept before the bounds existed): the repair
    // pass refuses it, reports it, and allocates nothing of its size.
    let planted: Vec<(Block, cairn_store::pieces::PieceOf)> = pieces
        .iter()
        .map(|p| (p.clone(), cairn_store::pieces::PieceOf::Stripe(mblock.cid)))
        .collect();
    b.store()
        .put_pieces(
            b"old",
            &planted,
            Some(cairn_store::pieces::StripeRecord {
                manifest: &mblock,
                data: &manifest.data,
            }),
        )
        .unwrap();
    let report = b.check_pass(Mode::Repair, 256).await.unwrap();
    assert_eq!(report.failed, 1, "the lying stripe is reported: {report:?}");
    let largest = peak::LARGEST.load(std::sync::atomic::Ordering::Relaxed);
    assert!(largest < 256 << 20, "allocated {largest} bytes at once");
    // The honest node keeps its data, and everyone still reads it.
    assert_eq!(b.check_pass(Mode::Soft, 256).await.unwrap().lost, 0);
    read_all(&h, &[blocks]).await;
}

/// A node of `h` holding a data block of a stripe, the block and its stripe's manifest CID.
fn data_holder(h: &Harness, blocks: &[Block]) -> (usize, Block, cairn_dag::Cid) {
    for (i, (_, c)) in h.nodes.iter().enumerate() {
        for b in blocks {
            if let Ok(Some(cairn_store::pieces::PieceOf::Stripe(m))) = c.store().piece(&b.cid) {
                return (i, b.clone(), m);
            }
        }
    }
    panic!("no data block held as a shard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_manifest_cannot_repoint_an_honest_block_and_locate_keeps_the_honest_one() {
    let h = Harness::new(3, Redundancy::Ec { k: 2, m: 1 });
    let (blocks, _) = file(700_000, 78);
    write(&h.nodes[0].1, blocks.clone()).await;
    let (i, honest, mcid) = data_holder(&h, &blocks);
    let locate = Request::Locate { cid: honest.cid };
    let located = |r: Response| match r {
        Response::Located { stripe, .. } => stripe.map(|w| w.cid),
        other => panic!("{other:?}"),
    };
    // Every node that holds a shard of the stripe names it for the block.
    let mut before = Vec::new();
    for (_, node) in &h.nodes {
        before.push(located(send(node, &locate).await));
    }
    assert_eq!(before[i], Some(mcid));
    assert!(
        before.iter().all(|m| *m == Some(mcid) || m.is_none()),
        "{before:?}"
    );
    // A liar's stripe listing the honest block, sent to every node with a junk piece of its
    // own, then to the holder with the honest block's own bytes.
    let junk = raw_block(b"junk".to_vec());
    let shard_len = (honest.data.len() as u32).div_ceil(64) * 64;
    let manifest = Manifest {
        v: 1,
        shard_len,
        data: vec![honest.cid, junk.cid],
        lens: vec![honest.data.len() as u32, 4],
        parity: vec![raw_block(b"made up".to_vec()).cid],
    };
    let mblock = lying_manifest(&manifest);
    let put = |piece: &Block| Request::Put {
        pieces: vec![wire(piece)],
        stripe: Some(wire(&mblock)),
        copies: None,
        owners: None,
    };
    for (_, node) in &h.nodes {
        let answer = send(node, &put(&junk)).await;
        assert_eq!(
            answer,
            Response::Stored,
            "a well-formed stripe of its own is kept"
        );
    }
    let node = &h.nodes[i].1;
    assert_eq!(send(node, &put(&honest)).await, Response::Stored);
    assert_eq!(node.store().stripe_of(&honest.cid).unwrap(), Some(mcid));
    assert_eq!(
        node.store().piece(&honest.cid).unwrap(),
        Some(cairn_store::pieces::PieceOf::Stripe(mcid)),
        "the honest piece is not relabelled"
    );
    for (j, (_, node)) in h.nodes.iter().enumerate() {
        let now = located(send(node, &locate).await);
        if before[j].is_some() {
            assert_eq!(now, before[j], "node {j} still names the honest stripe");
        }
    }
    // What the liar stored is accounted to it, apart from the writer's units.
    let usage = node.store().usage_of(LIAR).unwrap();
    assert_eq!((usage.units, usage.pieces), (1, 2), "{usage:?}");
    let writer = node
        .store()
        .unit(&cairn_store::pieces::Unit::Stripe(mcid))
        .unwrap();
    assert_eq!(writer.unwrap().owner, h.nodes[0].0, "the writer placed it");
    read_all(&h, &[blocks]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_zero_or_fifty_are_refused_and_repair_survives_a_stored_zero() {
    let h = Harness::with_down_after(3, Redundancy::Replicas(2), Duration::ZERO);
    let node = &h.nodes[1].1;
    for (copies, tag) in [(0u8, b"zero"), (50, b"many")] {
        let block = raw_block(tag.to_vec());
        let answer = send(node, &Request::put_one(&block, None, Some(copies))).await;
        assert!(
            matches!(&answer, Response::Error(e) if e.contains("copies")),
            "copies = {copies}: {answer:?}"
        );
        assert!(!node.store().has(&block.cid).unwrap());
    }
    // Rows kept before the bound: repair clamps them (no underflow, at most 16 copies).
    for (copies, tag) in [(0u8, b"old zero"), (50, b"old many")] {
        let block = raw_block(tag.to_vec());
        let of = cairn_store::pieces::PieceOf::Replica {
            cid: block.cid,
            copies: Some(copies),
        };
        node.store()
            .put_pieces(b"old", &[(block, of)], None)
            .unwrap();
    }
    let report = node.check_pass(Mode::Repair, 256).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(report.checked, 2, "{report:?}");
}

/// Writes `blocks` from `cluster` as a node does: through a forwarding batch whose sink is
/// the placer, committed with a pin of `root` (so the writer's GC marks them as its own).
async fn write_pinned(cluster: &Cluster, blocks: Vec<Block>, root: cairn_dag::Cid) {
    let placer = cluster.placer();
    let store = cluster.store().clone();
    tokio::task::spawn_blocking(move || {
        let batch = store.forwarding_batch(placer.clone());
        for b in &blocks {
            batch.put(b).unwrap();
        }
        placer.finish_blocking().unwrap();
        batch.commit(&[root]).unwrap();
    })
    .await
    .unwrap()
}

/// Local GC on `cluster`'s store (on a blocking thread).
async fn gc(cluster: &Cluster) -> cairn_store::GcStats {
    let store = cluster.store().clone();
    tokio::task::spawn_blocking(move || store.gc().unwrap())
        .await
        .unwrap()
}

/// A piece GC pass over every unit on every live node, summed.
async fn collect(h: &Harness, grace: Duration) -> cairn_cluster::collect::CollectReport {
    let mut sum = cairn_cluster::collect::CollectReport::default();
    for (_, c) in h.alive() {
        let r = c.collect_all(grace).await.unwrap();
        sum.add(&r);
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piece_gc_frees_a_unit_only_when_every_owner_lets_go() {
    let h = Harness::new(4, Redundancy::Replicas(2));
    let (a, b) = (&h.nodes[0].1, &h.nodes[1].1);
    let (a_id, b_id) = (h.nodes[0].0.clone(), h.nodes[1].0.clone());
    let (blocks, _) = file(700_000, 21);
    let root = blocks.last().unwrap().cid;
    // Two writers, identical bytes: the same units, each with both owners.
    write_pinned(a, blocks.clone(), root).await;
    write_pinned(b, blocks.clone(), root).await;
    let units: Vec<cairn_store::pieces::Unit> = blocks
        .iter()
        .map(|blk| cairn_store::pieces::Unit::Block(blk.cid))
        .collect();
    let mut rows = 0;
    for (_, c) in &h.nodes {
        for u in &units {
            if let Some(row) = c.store().unit(u).unwrap() {
                assert_eq!(row.owners, vec![a_id.clone(), b_id.clone()], "{u:?}");
                rows += 1;
            }
        }
    }
    assert_eq!(rows, 2 * units.len(), "two holders per unit");
    // Before any GC mark the owners answer "referenced" on doubt.
    let r = collect(&h, Duration::ZERO).await;
    assert_eq!((r.freed, r.referenced), (0, rows as u64), "{r:?}");
    gc(a).await;
    gc(b).await;
    let r = collect(&h, Duration::ZERO).await;
    assert_eq!(
        (r.freed, r.referenced),
        (0, rows as u64),
        "both reference it: {r:?}"
    );

    // One writer deletes: kept (the other still references every block).
    assert!(a.store().unpin(&root).unwrap());
    assert!(gc(a).await.complete);
    let r = collect(&h, Duration::ZERO).await;
    assert_eq!((r.freed, r.referenced), (0, rows as u64), "{r:?}");

    // Both delete, but the second is not connected: kept, never freed on doubt.
    assert!(b.store().unpin(&root).unwrap());
    assert!(gc(b).await.complete);
    h.kill(&[1]);
    let r = collect(&h, Duration::ZERO).await;
    assert_eq!(r.freed, 0, "{r:?}");
    assert!(r.unanswered > 0, "{r:?}");
    h.revive(&[1]);
    // Within the grace period: kept.
    let r = collect(&h, Duration::from_secs(3600)).await;
    assert_eq!((r.freed, r.young), (0, rows as u64), "{r:?}");
    // After it: freed on every holder, and GC sweeps the pieces.
    let r = collect(&h, Duration::ZERO).await;
    assert_eq!(
        (r.freed, r.freed_pieces),
        (rows as u64, rows as u64),
        "{r:?}"
    );
    assert!(r.freed_bytes >= 2 * 700_000, "{r:?}");
    for (_, c) in &h.nodes {
        gc(c).await;
        assert_eq!(c.store().stats().unwrap(), (0, 0), "nothing left");
        assert_eq!(c.store().piece_counts().unwrap(), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_puts_carry_the_units_owners() {
    let h = Harness::new(4, Redundancy::Replicas(2));
    let writer = h.nodes[0].0.clone();
    let (blocks, _) = file(2 << 20, 22);
    let root = blocks.last().unwrap().cid;
    write_pinned(&h.nodes[0].1, blocks.clone(), root).await;
    // A unit the writer does not hold: lose its piece on one holder; the other re-creates it.
    let holders = |cid: &cairn_dag::Cid| -> Vec<usize> {
        (0..4)
            .filter(|&i| h.nodes[i].1.store().piece(cid).unwrap().is_some())
            .collect()
    };
    let blk = blocks
        .iter()
        .find(|b| !holders(&b.cid).contains(&0))
        .expect("a unit placed away from the writer");
    let (lost, kept) = (holders(&blk.cid)[0], holders(&blk.cid)[1]);
    let unit = cairn_store::pieces::Unit::Block(blk.cid);
    let of = h.nodes[lost].1.store().piece(&blk.cid).unwrap().unwrap();
    h.nodes[lost]
        .1
        .store()
        .drop_unit(&of, &[blk.cid.hash().to_bytes()])
        .unwrap();
    assert_eq!(h.nodes[lost].1.store().unit(&unit).unwrap(), None);
    let r = h.pass(Mode::Repair).await;
    assert!(r.repaired >= 1, "{r:?}");
    let row = h.nodes[lost].1.store().unit(&unit).unwrap().unwrap();
    assert_eq!(
        row.owners,
        vec![writer.clone()],
        "the writer, not the repairer"
    );
    assert_eq!(row.owner, h.nodes[kept].0, "accounted to the repairer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piece_gc_frees_the_stripes_of_a_deleted_file_and_keeps_the_others() {
    let h = Harness::new(3, Redundancy::Ec { k: 2, m: 1 });
    let writer = &h.nodes[0].1;
    let (gone, _) = file(1_500_000, 23);
    let (kept, _) = file(900_000, 24);
    let (gone_root, kept_root) = (gone.last().unwrap().cid, kept.last().unwrap().cid);
    write_pinned(writer, gone.clone(), gone_root).await;
    write_pinned(writer, kept.clone(), kept_root).await;
    let before: u64 = h
        .nodes
        .iter()
        .map(|(_, c)| c.store().piece_counts().unwrap().1)
        .sum();
    assert!(
        before >= 6,
        "stripes of both files on their holders: {before}"
    );

    assert!(writer.store().unpin(&gone_root).unwrap());
    assert!(gc(writer).await.complete);
    let r = collect(&h, Duration::ZERO).await;
    assert!(r.freed > 0 && r.unanswered == 0, "{r:?}");
    assert!(r.referenced > 0, "the kept file's stripes: {r:?}");
    for (_, c) in &h.nodes {
        gc(c).await;
        for b in &gone {
            assert!(!c.store().has(&b.cid).unwrap(), "{} still held", b.cid);
        }
    }
    // Nothing more goes, and the file that stays reads back everywhere.
    assert_eq!(collect(&h, Duration::ZERO).await.freed, 0);
    read_all(&h, &[kept]).await;
}
