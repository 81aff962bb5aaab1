//! Piece GC across processes: three `cairn serve` nodes with `[storage] redundancy =
//! "replicas:3"`, so every node holds a copy of every block. A hundred objects and a second
//! bucket with objects of its own are written, then deleted (the second bucket's objects, then
//! the bucket). After the grace period (`piece_grace = "2s"`) each holder asks the units'
//! owner, which answers from its last GC mark; the units are freed and local GC sweeps their
//! pieces, so every node's block bytes come back to the baseline, while the objects that stay
//! still read back byte-exact from every node.
//!
//! The nodes run GC every second with `history_retention = "0s"` (old bucket roots, which
//! would keep the deleted objects, expire at once) and a repair run (piece GC first) every
//! second.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::nodes::{block_bytes, cluster_with, get, wait_listing};
use common::{cairn, ok, pattern_seeded};

/// Bytes a node may keep above its baseline at the end: the bucket that stays has a new root
/// (its key tree and CID index) after the writes and deletes, and branch nodes of that size
/// may be block files rather than inline rows. Every deleted object is over 300 KB, so one
/// left over on a node would exceed this.
const TOLERANCE: u64 = 64 << 10;

#[tokio::test(flavor = "multi_thread")]
async fn deleted_objects_and_buckets_free_their_pieces_on_every_holder() {
    let nodes = cluster_with(
        3,
        "replicas:3",
        "gc_interval_secs = 1\nhistory_retention = \"0s\"",
        "piece_grace = \"2s\"\nrepair_interval = \"1s\"",
    );
    let s3 = nodes[0].client();
    s3.create_bucket().bucket("keep").send().await.unwrap();
    s3.create_bucket().bucket("gone").send().await.unwrap();
    // Objects that stay.
    let live: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| {
            (
                format!("live/{i}"),
                pattern_seeded(300_000 + i * 1000, 1000 + i as u64),
            )
        })
        .collect();
    for (key, body) in &live {
        s3.put_object()
            .bucket("keep")
            .key(key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    wait_listing(&nodes, "keep", live.len() as i32).await;
    std::thread::sleep(Duration::from_secs(3)); // a few GC and roots runs settle
    let baseline: Vec<u64> = nodes.iter().map(|n| block_bytes(n.data.path())).collect();
    println!("baseline block bytes per node: {baseline:?}");

    // A hundred objects of a few hundred KB, distinct bytes; and a second bucket's objects.
    let sizes = |i: usize| 200_000 + (i * 7919) % 300_000;
    let mut written = 0u64;
    for i in 0..100 {
        s3.put_object()
            .bucket("keep")
            .key(format!("tmp/{i:03}"))
            .body(ByteStream::from(pattern_seeded(sizes(i), i as u64)))
            .send()
            .await
            .unwrap();
        written += sizes(i) as u64;
    }
    for i in 0..10 {
        s3.put_object()
            .bucket("gone")
            .key(format!("g/{i}"))
            .body(ByteStream::from(pattern_seeded(
                sizes(i + 100),
                500 + i as u64,
            )))
            .send()
            .await
            .unwrap();
        written += sizes(i + 100) as u64;
    }
    let peak: Vec<u64> = nodes.iter().map(|n| block_bytes(n.data.path())).collect();
    println!("after writing {written} bytes: {peak:?}");
    for (p, b) in peak.iter().zip(&baseline) {
        assert!(
            p - b >= written,
            "every node holds a copy: {p} - {b} < {written}"
        );
    }

    // Delete them all, and the second bucket.
    for i in 0..100 {
        s3.delete_object()
            .bucket("keep")
            .key(format!("tmp/{i:03}"))
            .send()
            .await
            .unwrap();
    }
    for i in 0..10 {
        s3.delete_object()
            .bucket("gone")
            .key(format!("g/{i}"))
            .send()
            .await
            .unwrap();
    }
    s3.delete_bucket().bucket("gone").send().await.unwrap();
    let deleted = Instant::now();

    // Bounded wait until every node is back near its baseline.
    let until = deleted + Duration::from_secs(90);
    let mut last;
    loop {
        last = nodes
            .iter()
            .map(|n| block_bytes(n.data.path()))
            .collect::<Vec<u64>>();
        if last.iter().zip(&baseline).all(|(l, b)| *l <= b + TOLERANCE) {
            break;
        }
        assert!(
            Instant::now() < until,
            "not back to the baseline {baseline:?} after {:?}: {last:?}",
            deleted.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "back to {last:?} (baseline {baseline:?}) {:.1} s after the deletes",
        deleted.elapsed().as_secs_f64()
    );

    // Everything that stays reads back byte-exact from every node.
    wait_listing(&nodes, "keep", live.len() as i32).await;
    for (n, node) in nodes.iter().enumerate() {
        let client = node.client();
        for (key, body) in &live {
            let got = get(&client, "keep", key)
                .await
                .unwrap_or_else(|| panic!("node {n} cannot read {key}"));
            assert!(got == *body, "{key} on node {n}");
        }
    }
    // ... and stays: more GC and piece GC runs — the background job's and the operator's
    // `cairn cluster repair`, which runs piece GC first too — free nothing of it.
    std::thread::sleep(Duration::from_secs(4));
    for node in &nodes {
        let out = ok(&cairn(node.data.path(), &["cluster", "repair"]));
        assert!(out.contains("piece GC: 0 units freed"), "{out}");
    }
    for (n, node) in nodes.iter().enumerate() {
        let now = block_bytes(node.data.path());
        assert!(
            now + TOLERANCE >= baseline[n],
            "node {n} dropped live data: {now} < {}",
            baseline[n]
        );
        let client = node.client();
        for (key, body) in &live {
            assert!(
                get(&client, "keep", key).await.as_ref() == Some(body),
                "{key} on {n}"
            );
        }
    }
}
