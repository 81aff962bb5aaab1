//! The network through the CLI: `cairn id`, `dial` and `peers` against running nodes.

mod common;

use common::{Server, cairn, ok};

#[test]
fn id_dial_and_peers_through_running_nodes() {
    let a = Server::start();
    let b = Server::start();
    let id: serde_json::Value =
        serde_json::from_str(&ok(&cairn(a.data.path(), &["id", "--json"]))).unwrap();
    let peer_id = id["peer_id"].as_str().unwrap().to_owned();
    let addr = id["addrs"][0].as_str().unwrap().to_owned();
    assert!(addr.starts_with("/ip4/127.0.0.1/tcp/"), "{addr}");
    assert!(addr.ends_with(&format!("/p2p/{peer_id}")), "{addr}");

    let dialed = ok(&cairn(b.data.path(), &["dial", &addr]));
    assert!(dialed.contains(&peer_id), "{dialed}");
    let mut listed = String::new();
    for _ in 0..50 {
        listed = ok(&cairn(b.data.path(), &["peers"]));
        if listed.contains("cairn/") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        listed.contains(&peer_id) && listed.contains("cairn/"),
        "{listed}"
    );

    // a bad address is a clear error, not a hang or a panic
    let bad = cairn(
        b.data.path(),
        &["dial", "/ip4/127.0.0.1/tcp/1/p2p/nonsense"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cairn: error:"));

    // the peer id survives restarts: the offline answer equals the running one
    let data = a.kill_9();
    let offline = ok(&cairn(data.path(), &["id"]));
    assert_eq!(offline.trim(), peer_id);
    let peers = cairn(data.path(), &["peers"]);
    assert!(!peers.status.success(), "peers needs a running node");
}

#[test]
fn a_node_reads_by_cid_what_only_its_peer_holds() {
    let a = Server::start();
    let b = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    let data = common::pattern(3_000_000, 9); // 12 leaves and a root
    std::fs::write(&file, &data).unwrap();
    let added = ok(&cairn(
        a.data.path(),
        &["add", "-q", file.to_str().unwrap()],
    ));
    let cid = added.trim().to_owned();
    // B does not have it (and is connected to nobody)
    let alone = cairn(b.data.path(), &["cat", &cid]);
    assert!(!alone.status.success());

    let id: serde_json::Value =
        serde_json::from_str(&ok(&cairn(a.data.path(), &["id", "--json"]))).unwrap();
    ok(&cairn(
        b.data.path(),
        &["dial", id["addrs"][0].as_str().unwrap()],
    ));
    let out = cairn(b.data.path(), &["cat", &cid]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == data, "bytes differ");
    // B keeps what it fetched (stored in groups, just after the read): a local hard check
    // passes soon after
    let mut checked = cairn(b.data.path(), &["check", "--hard", &cid]);
    for _ in 0..50 {
        if checked.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        checked = cairn(b.data.path(), &["check", "--hard", &cid]);
    }
    ok(&checked);

    // B's /metrics shows the peer and the blocks it received; A's the blocks it sent
    let metric = |server: &Server, name: &str| -> f64 {
        server
            .metric(name)
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert_eq!(metric(&b, "cairn_connected_peers"), 1.0);
    assert!(metric(&b, "cairn_bitswap_blocks_received_total") >= 13.0);
    assert!(metric(&b, "cairn_bitswap_block_bytes_received_total") >= data.len() as f64);
    assert!(metric(&a, "cairn_bitswap_blocks_sent_total") >= 13.0);
    assert!(metric(&a, "libp2p_swarm_connections_established_total") >= 1.0);
}
