//! Durability across processes: six `cairn serve` nodes with `[storage] redundancy = "ec:4+2"`
//! on 127.0.0.1, fully meshed. 100 objects of 1 B to 20 MiB go in through S3 on one node;
//! then two nodes — the bucket's owner among them — are killed with SIGKILL, and every object
//! still reads byte-exact from every survivor through S3 and the gateway (the owner dies right
//! after its last acknowledged write: heads reach the bucket's replica set before the ack).
//! Writes answer ServiceUnavailable until `cairn bucket promote` on a survivor; then they work
//! there and the other survivors follow the new owner. Two empty nodes
//! replace the dead ones; repair brings every stripe back to full margin (six shards on six
//! live nodes); two more of the original nodes are killed and everything still reads.
//!
//! (With six nodes and 4+2 stripes, "kill two, repair, kill two more" needs replacements: four
//! nodes cannot hold six shards so that any two of them may go.)

mod common;

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::nodes::{
    block_bytes, cluster, cluster_cmd, get, grow, objects_by_margin, wait_listing,
};
use common::{Server, cairn, ok, pattern};

fn sizes() -> Vec<usize> {
    let cycle = [
        1usize, 100, 4096, 70_000, 262_144, 262_145, 600_000, 1_500_000, 3_000_000, 2_000_000,
    ];
    let mut out: Vec<usize> = (0..100).map(|i| cycle[i % cycle.len()]).collect();
    out[9] = 20 << 20;
    out
}

async fn read_everything(nodes: &[Server], sizes: &[usize], cids: &[String]) {
    for (i, node) in nodes.iter().enumerate() {
        let client = node.client();
        for (n, &size) in sizes.iter().enumerate() {
            let key = format!("obj/{n:03}");
            let body = get(&client, "durable", &key)
                .await
                .unwrap_or_else(|| panic!("survivor {i} cannot read {key}"));
            assert!(
                body == pattern(size, n as u8),
                "{key} differs on survivor {i}"
            );
        }
        for (n, cid) in cids.iter().enumerate() {
            let url = format!("http://{}/ipfs/{cid}", node.gateway);
            let body = ureq::get(&url)
                .call()
                .unwrap_or_else(|e| panic!("gateway {url}: {e}"))
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_vec()
                .unwrap();
            assert!(
                body == pattern(sizes[n], n as u8),
                "gateway {cid} on survivor {i}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn six_nodes_ec_4_2_lose_two_including_the_owner() {
    let mut nodes = cluster(6, "ec:4+2");
    let s3 = nodes[0].client();
    s3.create_bucket().bucket("durable").send().await.unwrap();
    common::make_public(&s3, "durable").await;
    let sizes = sizes();
    let mut logical = 0u64;
    let mut cids = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let key = format!("obj/{i:03}");
        s3.put_object()
            .bucket("durable")
            .key(&key)
            .body(ByteStream::from(pattern(size, i as u8)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
        let head = s3
            .head_object()
            .bucket("durable")
            .key(&key)
            .send()
            .await
            .unwrap();
        cids.push(head.metadata().unwrap()["cid"].clone());
        logical += size as u64;
    }

    let stored: u64 = nodes.iter().map(|n| block_bytes(n.data.path())).sum();
    let overhead = stored as f64 / logical as f64;
    println!("stored {stored} bytes for {logical} logical: {overhead:.3} (ideal 1.5)");
    assert!((1.4..1.75).contains(&overhead), "overhead {overhead}");

    // Kill the owner right after its last acknowledged write, and one more node: the
    // bucket's head went to its replica set before each write was acknowledged, so every
    // survivor comes to list all 100 objects (from a held head, shared onwards).
    let _owner = nodes.remove(0).kill_9();
    let _other = nodes.remove(2).kill_9();
    wait_listing(&nodes, "durable", 100).await;
    read_everything(&nodes, &sizes, &cids).await;
    for node in &nodes {
        // The owner is gone: its bucket is read-only here, with a clear error.
        let err = node
            .client()
            .put_object()
            .bucket("durable")
            .key("new")
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains("ServiceUnavailable"), "{text}");
    }
    let (_, degraded, lost) = cluster_cmd(&nodes, &["check"]);
    assert!(
        degraded > 0 && lost == 0,
        "after two losses: {degraded} degraded, {lost} lost"
    );
    // Objects by margin: none lost, some down to margin 0 or 1; one object on its own.
    let out = ok(&cairn(
        nodes[0].data.path(),
        &["cluster", "check", "durable"],
    ));
    println!("{out}");
    assert!(out.starts_with("100 objects (full margin 2)"), "{out}");
    assert!(
        out.contains("margin 1") || out.contains("margin 0"),
        "{out}"
    );
    let out = ok(&cairn(
        nodes[1].data.path(),
        &["cluster", "check", "durable/obj/009", "--hard"],
    ));
    assert!(out.starts_with("1 objects"), "{out}");

    // An operator takes the bucket over on a survivor: writes work there again, nothing
    // acknowledged is lost, and the other survivors follow the new owner.
    let out = ok(&cairn(
        nodes[0].data.path(),
        &["bucket", "promote", "durable"],
    ));
    assert!(out.contains("this node's now"), "{out}");
    nodes[0]
        .client()
        .put_object()
        .bucket("durable")
        .key("after-promote")
        .body(ByteStream::from_static(b"written by the new owner"))
        .send()
        .await
        .unwrap();
    wait_listing(&nodes, "durable", 101).await;
    for node in &nodes {
        let body = get(&node.client(), "durable", "after-promote")
            .await
            .unwrap();
        assert_eq!(body, b"written by the new owner");
    }

    // Two empty nodes join; once the dead are past down_after, repair refills every stripe.
    let mut nodes = grow(nodes, 2, "ec:4+2");
    std::thread::sleep(Duration::from_secs(4));
    // Repair runs as a periodic job; a pass can leave a unit for the next one (its leader
    // changed as shards moved), so up to three passes, as three job runs would.
    let mut passes = 0;
    let (full, degraded, lost) = loop {
        passes += 1;
        let (_, _, lost) = cluster_cmd(&nodes, &["repair"]);
        assert_eq!(lost, 0);
        let counts = cluster_cmd(&nodes, &["check"]);
        if counts.1 == 0 || passes == 3 {
            break counts;
        }
    };
    println!(
        "after {passes} repair pass(es): {full} stripes at full margin, {degraded} degraded, {lost} lost"
    );
    assert!(
        full > 0 && degraded == 0 && lost == 0,
        "{full} {degraded} {lost}"
    );
    let (_, _, lost) = cluster_cmd(&nodes, &["check", "--hard"]);
    assert_eq!(lost, 0);
    let out = ok(&cairn(
        nodes[2].data.path(),
        &["cluster", "check", "--objects"],
    ));
    // Every object at full margin (a few may have more: a block shared by two stripes counts
    // in both), and only the summary line: no object is listed below full margin.
    assert!(
        out.starts_with("101 objects (full margin 2): ") && out.trim().lines().count() == 1,
        "{out}"
    );
    // The last count is exported as metrics.
    let by_margin = objects_by_margin(&nodes[2]);
    assert_eq!(by_margin.values().sum::<u64>(), 101, "{by_margin:?}");
    assert!(
        by_margin
            .keys()
            .all(|m| m.parse::<u64>().is_ok_and(|m| m >= 2)),
        "{by_margin:?}"
    );

    // A flipped byte in a shard file: the scrubber finds and quarantines it, repair puts the
    // piece back, and the stripe is at full margin again.
    let victim = common::block_files(nodes[1].data.path())
        .into_iter()
        .find(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0) > 100_000)
        .expect("a shard file");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1000] ^= 0x40;
    std::fs::write(&victim, bytes).unwrap();
    // (`cairn scrub` runs a pass now; the scrub job may have been first.)
    let out = cairn(nodes[1].data.path(), &["scrub"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let workers = ok(&cairn(nodes[1].data.path(), &["workers"]));
    assert!(
        (!out.status.success() && err.contains("1 corrupt block(s) quarantined"))
            || workers.contains("(1 since start)"),
        "{err}\n{workers}"
    );
    assert!(!victim.exists(), "the corrupt file is quarantined");
    let mut passes = 0;
    loop {
        passes += 1;
        cluster_cmd(&nodes, &["repair"]);
        let (_, degraded, lost) = cluster_cmd(&nodes, &["check"]);
        if (degraded == 0 && lost == 0) || passes == 3 {
            assert_eq!((degraded, lost), (0, 0));
            break;
        }
    }
    let workers = ok(&cairn(nodes[0].data.path(), &["workers"]));
    assert!(
        workers.contains("members") && workers.contains("roots"),
        "{workers}"
    );

    // Two more of the original nodes die: the two originals left still read everything.
    let _third = nodes.remove(0).kill_9();
    let _fourth = nodes.remove(0).kill_9();
    read_everything(&nodes[..2], &sizes, &cids).await;
}
