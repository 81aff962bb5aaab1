//! Durability with whole copies across processes: five `cairn serve` nodes with `[storage]
//! redundancy = "replicas:3"`; objects of mixed sizes go in through S3 on one node, which is
//! then killed with another node. Each block had three holders on three nodes, so each lost at
//! most two of them (every block both dead nodes held lost exactly two): every object still
//! reads byte-exact from the three survivors, the soft check shows degraded replicas and none
//! lost, and the bucket's head reached the survivors before the writes were acknowledged.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::nodes::{block_bytes, cluster, cluster_cmd, get, wait_listing};
use common::pattern;

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
    let (_, degraded, lost) = cluster_cmd(&nodes, &["check"]);
    assert!(
        degraded > 0 && lost == 0,
        "{degraded} degraded, {lost} lost"
    );
}
