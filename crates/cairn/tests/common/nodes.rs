//! Clusters of `cairn serve` processes on 127.0.0.1 for the durability tests: started fully
//! meshed with a `[storage]` table, grown, checked with `cairn cluster`, read back.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{Server, cairn, ok};

/// The node's first p2p address.
pub fn addr_of(server: &Server) -> String {
    let id: serde_json::Value =
        serde_json::from_str(&ok(&cairn(server.data.path(), &["id", "--json"]))).unwrap();
    id["addrs"][0].as_str().unwrap().to_owned()
}

/// Starts `n` nodes with `redundancy`, the first founding the cluster, each next joining it
/// and bootstrapping from all before it, and waits until every node sees every other as a
/// member.
pub fn cluster(n: usize, redundancy: &str) -> Vec<Server> {
    grow(Vec::new(), n, redundancy)
}

/// [`cluster`] with more configuration: `top` (top-level lines, e.g. `gc_interval_secs = 1`)
/// and `storage` (lines added to the `[storage]` table, e.g. `piece_grace = "2s"`; a
/// `repair_interval` there replaces the default `1h`).
pub fn cluster_with(n: usize, redundancy: &str, top: &str, storage: &str) -> Vec<Server> {
    grow_with(Vec::new(), n, redundancy, top, storage)
}

/// Adds `n` nodes that bootstrap from every node already there, and waits until all see all.
pub fn grow(nodes: Vec<Server>, n: usize, redundancy: &str) -> Vec<Server> {
    grow_with(nodes, n, redundancy, "", "")
}

/// [`grow`] with the extra configuration of [`cluster_with`].
pub fn grow_with(
    mut nodes: Vec<Server>,
    n: usize,
    redundancy: &str,
    top: &str,
    storage: &str,
) -> Vec<Server> {
    let mut addrs: Vec<String> = nodes.iter().map(addr_of).collect();
    let repair = if storage.contains("repair_interval") {
        ""
    } else {
        "repair_interval = \"1h\"\n"
    };
    for _ in 0..n {
        let data = tempfile::tempdir().unwrap();
        std::fs::write(
            data.path().join("cairn.toml"),
            format!(
                "{top}\n[storage]\nredundancy = \"{redundancy}\"\ndown_after = \"3s\"\n{repair}{storage}\n"
            ),
        )
        .unwrap();
        let mut extra = Vec::new();
        for a in &addrs {
            extra.push("--bootstrap");
            extra.push(a.as_str());
        }
        let node = match nodes.first() {
            Some(first) => Server::join_with(first, data, &extra),
            None => Server::start_with(data, &extra),
        };
        addrs.push(addr_of(&node));
        nodes.push(node);
    }
    let until = Instant::now() + Duration::from_secs(30);
    let total = nodes.len();
    for (i, node) in nodes.iter().enumerate() {
        loop {
            let peers = ok(&cairn(node.data.path(), &["peers"]));
            if peers.matches(" member ").count() >= total - 1 {
                break;
            }
            assert!(Instant::now() < until, "node {i} sees only:\n{peers}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    std::thread::sleep(Duration::from_secs(2)); // a members tick on every node
    nodes
}

/// Bytes of block files under a data folder.
pub fn block_bytes(data: &Path) -> u64 {
    super::block_files(data)
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// `cairn cluster <args>` on every node, summing "N at full margin, N degraded, N lost".
pub fn cluster_cmd(nodes: &[Server], args: &[&str]) -> (u64, u64, u64) {
    let mut sum = (0, 0, 0);
    for node in nodes {
        let mut full = vec!["cluster"];
        full.extend_from_slice(args);
        let out = ok(&cairn(node.data.path(), &full));
        let num = |label: &str| -> u64 {
            let before = out.split(label).next().unwrap();
            before.split_whitespace().last().unwrap().parse().unwrap()
        };
        sum.0 += num(" at full margin");
        sum.1 += num(" degraded");
        sum.2 += num(" lost");
    }
    sum
}

/// `cairn_objects_by_margin` from `node`'s metrics: margin label → objects (waits until the
/// family appears).
pub fn objects_by_margin(node: &Server) -> std::collections::BTreeMap<String, u64> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let text = ureq::get(&node.metrics)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        let found: std::collections::BTreeMap<String, u64> = text
            .lines()
            .filter_map(|l| l.strip_prefix("cairn_objects_by_margin{margin=\""))
            .filter_map(|l| {
                let (margin, rest) = l.split_once("\"} ")?;
                Some((margin.to_owned(), rest.trim().parse().ok()?))
            })
            .collect();
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < until,
            "no cairn_objects_by_margin in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits until every node lists `count` objects in the bucket.
pub async fn wait_listing(nodes: &[Server], bucket: &str, count: i32) {
    for (i, node) in nodes.iter().enumerate() {
        let client = node.client();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = client
                .list_objects_v2()
                .bucket(bucket)
                .send()
                .await
                .ok()
                .map(|l| l.key_count().unwrap_or(0));
            if listed == Some(count) {
                break;
            }
            assert!(Instant::now() < until, "node {i} lists {listed:?} objects");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(out.body.collect().await.ok()?.into_bytes().to_vec())
}
