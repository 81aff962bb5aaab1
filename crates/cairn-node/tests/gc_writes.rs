//! GC never blocks writers, and nothing a writer relies on is swept under it:
//!
//! * H1 — a cluster write (whose own shards come back to this node through the piece path)
//!   and a GC that starts while it streams both finish;
//! * M2 — an upload trickling for a minute holds up neither GC nor other writes, and commits
//!   byte-exact afterwards although GC ran several times while it was in flight;
//! * M3 — a copy of a version, a pin and a snapshot racing the deletion of what they
//!   reference and a GC are either refused or keep a complete DAG.
//!
//! A regression here deadlocks blocking threads, so every test runs on its own runtime that is
//! abandoned (not waited for) at the end: a failing test fails, it does not hang.

mod common;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_cluster::proto::{Request, Response, decode, encode};
use cairn_cluster::{ClusterConfig, Member, Redundancy, Transport};
use cairn_dag::{Cid, CidVersion};
use cairn_node::model::records::{ObjectInfo, ObjectMeta};
use cairn_node::{Node, NodeError};
use common::XorShift;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;

/// Runs `test` on a fresh runtime and leaves threads stuck in a deadlock behind.
fn bounded(test: impl Future<Output = ()>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(test)));
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Peers that keep every piece and record they are sent.
struct Keepers;

impl Transport for Keepers {
    fn call(
        &self,
        _peer: Vec<u8>,
        request: Vec<u8>,
    ) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let answer = match decode::<Request>(&request).map_err(|e| e.to_string())? {
                Request::Put { .. } | Request::PutRecord { .. } => Response::Stored,
                _ => Response::NotFound,
            };
            Ok(encode(&answer))
        })
    }
}

/// A node in a cluster of three keeping three copies: every block of its own writes is also
/// kept here, through the piece path (`Cluster::call` → `keep` → `Store::put_pieces`).
async fn cluster_node(dir: &std::path::Path) -> Node {
    let node = Node::builder(cairn_store::Store::open(dir).unwrap())
        .cluster(
            ClusterConfig {
                me: b"me".to_vec(),
                zone: None,
                policy: Redundancy::Replicas(3),
                down_after: Duration::from_secs(3600),
                piece_grace: Duration::from_secs(3600),
            },
            Arc::new(Keepers),
        )
        .build()
        .unwrap();
    let cluster = node.cluster().expect("built with a cluster");
    cluster.observe(&[b"p1".to_vec(), b"p2".to_vec()].map(Member::new));
    let n = node.clone();
    tokio::task::spawn_blocking(move || n.buckets().create("bkt", "root"))
        .await
        .unwrap()
        .unwrap();
    node
}

type Body = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// A node on its own, with bucket `bkt`.
async fn plain_node(dir: &std::path::Path) -> Node {
    let node = Node::open(dir).unwrap();
    let n = node.clone();
    tokio::task::spawn_blocking(move || n.buckets().create("bkt", "root"))
        .await
        .unwrap()
        .unwrap();
    node
}

/// Stages `body` into `bkt` and commits it as `key`.
async fn put_body(node: &Node, key: String, body: Body) -> Result<ObjectInfo, NodeError> {
    let staged = node
        .objects()
        .stage(Some("bkt"), body, CidVersion::V1)
        .await?;
    let node = node.clone();
    tokio::task::spawn_blocking(move || {
        node.objects()
            .commit(staged, "bkt", &key, ObjectMeta::default())
    })
    .await
    .unwrap()
}

async fn put(node: &Node, key: &str, data: &[u8]) -> Result<ObjectInfo, NodeError> {
    let body = futures::stream::iter([Ok(Bytes::copy_from_slice(data))]).boxed();
    put_body(node, key.to_owned(), body).await
}

/// The whole content of file `cid`, read back and verified.
async fn read_back(node: &Node, cid: Cid) -> Vec<u8> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for piece in node.files().cat(cid, None) {
            out.extend_from_slice(&piece.unwrap());
        }
        out
    })
    .await
    .unwrap()
}

/// `store.gc()` on a thread of its own; the receiver gets its outcome.
fn gc_thread(node: &Node) -> tokio::sync::oneshot::Receiver<Result<cairn_store::GcStats, String>> {
    let store = node.store().clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(store.gc().map_err(|e| e.to_string()));
    });
    rx
}

#[test]
fn h1_a_cluster_write_and_a_gc_waiting_for_it_both_finish() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let node = cluster_node(dir.path()).await;
        let data = XorShift::bytes(4 * 1024 * 1024 + 100_000);
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (first, rest) = (
            Bytes::copy_from_slice(&data[..4 * 1024 * 1024]),
            Bytes::copy_from_slice(&data[4 * 1024 * 1024..]),
        );
        let body = futures::stream::once(async move { Ok(first) })
            .chain(futures::stream::once(async move {
                let _ = wait.await;
                Ok(rest)
            }))
            .boxed();
        let n = node.clone();
        let write = tokio::spawn(async move { put_body(&n, "big".into(), body).await });

        tokio::time::sleep(Duration::from_millis(200)).await;
        let gc = gc_thread(&node);
        tokio::time::sleep(Duration::from_millis(200)).await;
        go.send(()).unwrap();
        let started = Instant::now();
        let info = tokio::time::timeout(Duration::from_secs(30), write)
            .await
            .expect("the cluster write finishes (it deadlocked with the waiting GC)")
            .unwrap()
            .unwrap();
        let stats = tokio::time::timeout(Duration::from_secs(30), gc)
            .await
            .expect("GC finishes")
            .unwrap()
            .unwrap();
        eprintln!(
            "write and GC done {:?} after the body was released; GC {stats:?}",
            started.elapsed()
        );
        assert_eq!(read_back(&node, info.cid).await, data);
    });
}

#[test]
fn m2_a_trickling_upload_holds_up_neither_gc_nor_other_writes() {
    const PIECES: usize = 60;
    const PIECE: usize = 100 * 1024;
    bounded(async {
        // The same minute on a cluster node (the upload's blocks are placed as they come, on
        // this node too) and on a plain one (they wait in the upload's batch, held).
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let nodes = [
            cluster_node(dirs[0].path()).await,
            plain_node(dirs[1].path()).await,
        ];
        // ~6 MB at one piece a second: a minute in flight.
        let data = XorShift::bytes(PIECES * PIECE);
        let began = Instant::now();
        let trickles = nodes.clone().map(|node| {
            let pieces: Vec<Bytes> = data.chunks(PIECE).map(Bytes::copy_from_slice).collect();
            let body = futures::stream::iter(pieces)
                .then(|piece| async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok(piece)
                })
                .boxed();
            tokio::spawn(async move { put_body(&node, "slow".into(), body).await })
        });
        tokio::time::sleep(Duration::from_secs(3)).await;

        let mut others = Vec::new();
        let (mut slowest_put, mut slowest_gc, mut held) = (Duration::ZERO, Duration::ZERO, 0);
        for round in 0..5 {
            for (n, node) in nodes.iter().enumerate() {
                // GC starts, then a write comes while it may still be waiting or running.
                let t = Instant::now();
                let gc = gc_thread(node);
                tokio::time::sleep(Duration::from_millis(200)).await;
                let other: Vec<u8> = format!("other write {round} ").repeat(30_000).into_bytes();
                let w = Instant::now();
                let info = tokio::time::timeout(
                    Duration::from_secs(20),
                    put(node, &format!("other-{round}"), &other),
                )
                .await
                .expect("another PUT finishes while the upload trickles")
                .unwrap();
                slowest_put = slowest_put.max(w.elapsed());
                let stats = tokio::time::timeout(Duration::from_secs(20), gc)
                    .await
                    .expect("GC finishes while the upload trickles")
                    .unwrap()
                    .unwrap();
                slowest_gc = slowest_gc.max(t.elapsed());
                if n == 1 {
                    held = held.max(stats.held);
                }
                assert!(
                    !trickles[n].is_finished(),
                    "round {round}: the upload must still be in flight ({:?})",
                    began.elapsed()
                );
                others.push((n, info, other));
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        eprintln!(
            "5 GC rounds and 5 PUTs per node done {:?} into the uploads; slowest PUT \
             {slowest_put:?}, slowest GC round {slowest_gc:?}; the plain upload's blocks GC \
             left because they were held: up to {held}",
            began.elapsed()
        );
        assert!(held > 0, "GC ran while the plain upload had blocks written");

        for (n, trickle) in trickles.into_iter().enumerate() {
            let node = &nodes[n];
            let info = tokio::time::timeout(Duration::from_secs(120), trickle)
                .await
                .expect("the trickled upload commits")
                .unwrap()
                .unwrap();
            eprintln!("upload {n} committed after {:?}", began.elapsed());
            assert_eq!(read_back(node, info.cid).await, data, "byte-exact");
            let stats = gc_thread(node).await.unwrap().unwrap();
            assert_eq!(read_back(node, info.cid).await, data, "after GC: {stats:?}");
        }
        for (n, info, other) in &others {
            assert_eq!(&read_back(&nodes[*n], info.cid).await, other);
        }
    });
}

/// Deterministic jitter (0–1.5 ms) so the racing threads meet in every order.
fn jitter(i: usize, thread: usize) -> Duration {
    Duration::from_micros(((i * 7919 + thread * 104_729) % 1500) as u64)
}

#[test]
fn m3_references_racing_deletion_and_gc_keep_complete_dags() {
    let iterations: usize = std::env::var("CAIRN_GC_RACE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    bounded(async move {
        let dir = tempfile::tempdir().unwrap();
        let node = plain_node(dir.path()).await;
        let n = node.clone();
        tokio::task::spawn_blocking(move || {
            n.buckets()
                .set_versioning("bkt", cairn_node::versions::ENABLED)
        })
        .await
        .unwrap()
        .unwrap();
        let (mut acked, mut broken) = ([0usize; 3], Vec::new());
        for i in 0..iterations {
            // Three sources of three blocks each (two leaves and a root), each referenced only
            // by its own version.
            let mut sources = Vec::new();
            for what in ["copy", "pin", "snapshot"] {
                let data = format!("{what} source {i} ").repeat(300 * 1024 / 20);
                let info = put(&node, what, data.as_bytes()).await.unwrap();
                sources.push(info);
            }
            let node2 = node.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let node = node2;
                let barrier = Barrier::new(7);
                let version = |s: &ObjectInfo| s.meta.version_id.clone().unwrap();
                let go = |t: usize| {
                    barrier.wait();
                    std::thread::sleep(jitter(i, t));
                };
                std::thread::scope(|scope| {
                    let copy = scope.spawn(|| {
                        go(0);
                        let (v, dst) = (version(&sources[0]), format!("dst-{i}"));
                        node.objects()
                            .link(("bkt", "copy", Some(&v)), ("bkt", &dst), Default::default())
                            .map(|info| info.cid)
                    });
                    let pin = scope.spawn(|| {
                        go(1);
                        node.repo().pin(&sources[1].cid).map(|_| sources[1].cid)
                    });
                    let snap = scope.spawn(|| {
                        go(2);
                        node.files()
                            .add_snapshot("race", &sources[2].cid)
                            .map(|row| row.cid)
                    });
                    let deletes: Vec<_> = (0..3)
                        .map(|k| {
                            let (node, go, sources) = (&node, &go, &sources);
                            scope.spawn(move || {
                                go(3 + k);
                                let key = ["copy", "pin", "snapshot"][k];
                                node.objects()
                                    .delete("bkt", key, Some(&version(&sources[k])))
                                    .unwrap();
                            })
                        })
                        .collect();
                    let gc = scope.spawn(|| {
                        go(6);
                        node.store().gc().unwrap()
                    });
                    for d in deletes {
                        d.join().unwrap();
                    }
                    gc.join().unwrap();
                    [
                        copy.join().unwrap(),
                        pin.join().unwrap(),
                        snap.join().unwrap(),
                    ]
                })
            });
            let results = tokio::time::timeout(Duration::from_secs(60), outcome)
                .await
                .expect("an iteration finishes")
                .unwrap();
            let n = node.clone();
            let checked = tokio::task::spawn_blocking(move || {
                results.map(|r| {
                    r.ok()
                        .map(|cid| (cid, n.files().check(&cid, false).unwrap().missing))
                })
            })
            .await
            .unwrap();
            for (op, result) in checked.into_iter().enumerate() {
                if let Some((cid, missing)) = result {
                    acked[op] += 1;
                    if !missing.is_empty() {
                        broken.push((i, ["copy", "pin", "snapshot"][op], cid, missing.len()));
                    }
                }
            }
        }
        eprintln!(
            "{iterations} iterations: acknowledged copies {}, pins {}, snapshots {}",
            acked[0], acked[1], acked[2]
        );
        let by_op =
            ["copy", "pin", "snapshot"].map(|op| broken.iter().filter(|b| b.1 == op).count());
        assert!(
            broken.is_empty(),
            "acknowledged references whose DAG GC swept: {} (copies {}, pins {}, snapshots {}; \
             first: {:?})",
            broken.len(),
            by_op[0],
            by_op[1],
            by_op[2],
            broken.first()
        );
    });
}
