//! Durability with whole copies across processes: five `cairn serve` nodes with `[storage]
//! redundancy = "replicas:3"`; objects of mixed sizes go in through S3 on one node, which is
//! then killed with another node. Each block had three holders on three nodes, so each lost at
//! most two of them (every block both dead nodes held lost exactly two): every object still
//! reads byte-exact from the three survivors, the soft check shows degraded replicas and none
//! lost, and the bucket's head reached the survivors before the writes were acknowledged.
//! A second bucket overrides the cluster's policy with `cairn bucket redundancy wide ec:3+2`:
//! its objects take (3+2)/3 of their size on disk, not 3×, and survive the same two losses.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::nodes::{block_bytes, cluster, cluster_cmd, get, wait_listing};
use common::{cairn, ok, pattern};

#[tokio::test(flavor = "multi_thread")]
async fn five_nodes_replicas_3_lose_two_holders() {
    let mut nodes = cluster(5, "replicas:3");
    let s3 = nodes[0].client();
    s3.create_bucket().bucket("copies").send().await.unwrap();
    let sizes = [1usize, 5000, 262_144, 700_000, 3_000_000, 9_000_000];
    let mut logical = 0;
    for round in 0..5 {
        for (i, &size) in sizes.iter().enumerate() {
            let n = round * sizes.len() + i;
            s3.put_object()
                .bucket("copies")
                .key(format!("o/{n:02}"))
                .body(ByteStream::from(pattern(size, n as u8)))
                .send()
                .await
                .unwrap();
            logical += size as u64;
        }
    }
    let total = sizes.len() * 5;
    let stored: u64 = nodes.iter().map(|n| block_bytes(n.data.path())).sum();
    let overhead = stored as f64 / logical as f64;
    println!("stored {stored} bytes for {logical} logical: {overhead:.3} (ideal 3)");
    assert!((2.9..3.2).contains(&overhead), "overhead {overhead}");

    // A bucket of its own redundancy: stripes of 3 + 2 parity, set through the CLI.
    s3.create_bucket().bucket("wide").send().await.unwrap();
    let set = ok(&cairn(
        nodes[0].data.path(),
        &["bucket", "redundancy", "wide", "ec:3+2"],
    ));
    assert!(set.contains("ec:3+2 (its own)"), "{set}");
    let bad = cairn(
        nodes[0].data.path(),
        &["bucket", "redundancy", "wide", "ec:0+2"],
    );
    assert!(!bad.status.success(), "a nonsense policy is refused");
    let before: u64 = nodes.iter().map(|n| block_bytes(n.data.path())).sum();
    let wide_size = 3_000_000;
    for n in 0..6 {
        s3.put_object()
            .bucket("wide")
            .key(format!("w/{n}"))
            .body(ByteStream::from(pattern(wide_size, 100 + n as u8)))
            .send()
            .await
            .unwrap();
    }
    let after: u64 = nodes.iter().map(|n| block_bytes(n.data.path())).sum();
    let wide = (after - before) as f64 / (6 * wide_size) as f64;
    println!("bucket wide (ec:3+2): {wide:.3} of its logical size on disk (ideal 1.667)");
    assert!((1.6..1.85).contains(&wide), "ec:3+2 overhead {wide}");
    let shown = ok(&cairn(
        nodes[2].data.path(),
        &["bucket", "redundancy", "copies"],
    ));
    assert!(
        shown.contains("replicas:3 (the cluster's default)"),
        "{shown}"
    );

    let _owner = nodes.remove(0).kill_9();
    let _other = nodes.remove(1).kill_9();
    wait_listing(&nodes, "copies", total as i32).await;
    for (s, node) in nodes.iter().enumerate() {
        let client = node.client();
        for n in 0..total {
            let body = get(&client, "copies", &format!("o/{n:02}"))
                .await
                .unwrap_or_else(|| panic!("survivor {s} cannot read o/{n:02}"));
            assert!(
                body == pattern(sizes[n % sizes.len()], n as u8),
                "o/{n:02} on {s}"
            );
        }
    }
    wait_listing(&nodes, "wide", 6).await;
    for (s, node) in nodes.iter().enumerate() {
        for n in 0..6 {
            let got = node
                .client()
                .get_object()
                .bucket("wide")
                .key(format!("w/{n}"))
                .send()
                .await;
            let body = match got {
                Ok(out) => out.body.collect().await.map(|b| b.into_bytes().to_vec()),
                Err(e) => panic!("survivor {s} w/{n}: {e:?}"),
            };
            let body = body.unwrap_or_else(|e| panic!("survivor {s} w/{n} body: {e:?}"));
            assert!(body == pattern(wide_size, 100 + n as u8), "w/{n} on {s}");
        }
    }
    let (_, degraded, lost) = cluster_cmd(&nodes, &["check"]);
    assert!(
        degraded > 0 && lost == 0,
        "{degraded} degraded, {lost} lost"
    );
}
