//! In-process clusters: N nodes, each a real store in its own folder, joined by an in-memory
//! switch that can "kill" nodes. Writes go through the same `Placer` a PUT uses; reads through
//! `Cluster::fetch`, the path a node takes for a block it does not have.

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

struct Port(Arc<Switch>);

impl Transport for Port {
    fn call(&self, peer: Vec<u8>, request: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let switch = self.0.clone();
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
            tokio::task::spawn_blocking(move || node.handle(&request))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

struct Harness {
    switch: Arc<Switch>,
    nodes: Vec<(Vec<u8>, Cluster)>,
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
        for i in 0..n {
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
                },
                Arc::new(Port(switch.clone())),
            );
            switch.nodes.lock().insert(id.clone(), cluster.clone());
            nodes.push((id, cluster));
            dirs.push(dir);
        }
        let h = Harness {
            switch,
            nodes,
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
    };
    let node = h.nodes[0].1.clone();
    let answer =
        tokio::task::spawn_blocking(move || node.handle(&cairn_cluster::proto::encode(&forged)))
            .await
            .unwrap();
    let answer: cairn_cluster::proto::Response = cairn_cluster::proto::decode(&answer).unwrap();
    assert!(
        matches!(answer, cairn_cluster::proto::Response::Error(_)),
        "{answer:?}"
    );
    assert!(!h.nodes[0].1.store().has(&good.cid).unwrap());
    let garbage = h.nodes[0].1.handle(b"\x00\x01");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_their_replica_set_and_survive_its_writer() {
    let h = Harness::new(6, Redundancy::Ec { k: 4, m: 2 });
    let sinks: Vec<Arc<Keep>> = h
        .nodes
        .iter()
        .map(|(_, c)| {
            let sink = Arc::new(Keep::default());
            c.set_record_sink(sink.clone());
            sink
        })
        .collect();
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
