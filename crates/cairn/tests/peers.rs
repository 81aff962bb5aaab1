//! Trust between peers, through running nodes: a member of the cluster reads every bucket; a
//! node of another cluster and a plain Helia peer get a public bucket's objects and are
//! refused a private bucket's (and the refusals are counted); a second node on a busy p2p
//! port does not start; two nodes on one host have their own keys.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{Server, cairn, ok, pattern};

async fn put(server: &Server, bucket: &str, key: &str, body: &[u8]) -> String {
    let s3 = server.client();
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    head.metadata().unwrap()["cid"].clone()
}

/// `cairn cat CID` on `server`, given `secs` to answer: the bytes, or `None` when it failed or
/// gave up.
fn cat_within(server: &Server, cid: &str, secs: u64) -> Option<Vec<u8>> {
    let child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["cat", cid, "--data"])
        .arg(server.data.path())
        .env_remove("CAIRN_DATA")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(out)) if out.status.success() => Some(out.stdout),
        Ok(Ok(out)) => {
            eprintln!("cat {cid}: {}", String::from_utf8_lossy(&out.stderr));
            None
        }
        _ => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            None
        }
    }
}

fn wait_member(on: &Server, peer: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let peers = ok(&cairn(on.data.path(), &["peers"]));
        if peers
            .lines()
            .any(|l| l.starts_with(peer) && l.contains(" member "))
        {
            return;
        }
        assert!(Instant::now() < until, "{peer} never a member:\n{peers}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn id(server: &Server) -> serde_json::Value {
    serde_json::from_str(&ok(&cairn(server.data.path(), &["id", "--json"]))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_get_published_objects_only_and_members_everything() {
    let a = Server::start();
    let s3 = a.client();
    for b in ["open", "closed"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    common::make_public(&s3, "open").await;
    let public = pattern(900_000, 21);
    let private = pattern(900_000, 22);
    let public_cid = put(&a, "open", "p.bin", &public).await;
    let private_cid = put(&a, "closed", "s.bin", &private).await;

    let member = Server::join(&a);
    let other = Server::start(); // its own cluster
    let a_id = id(&a);
    let a_addr = a_id["addrs"][0].as_str().unwrap().to_owned();
    ok(&cairn(other.data.path(), &["dial", &a_addr]));
    wait_member(&a, id(&member)["peer_id"].as_str().unwrap());
    let peers = ok(&cairn(a.data.path(), &["peers"]));
    let other_id = id(&other)["peer_id"].as_str().unwrap().to_owned();
    assert!(
        peers
            .lines()
            .any(|l| l.starts_with(&other_id) && l.contains(" stranger ")),
        "{peers}"
    );

    // Another cluster's node: the public object, not the private one.
    assert!(cat_within(&other, &public_cid, 60).as_deref() == Some(public.as_slice()));
    assert_eq!(cat_within(&other, &private_cid, 20), None, "private served");
    let refused = a.metric("cairn_p2p_refused_total{what=\"block\"}");
    assert!(
        refused.unwrap_or(0.0) >= 1.0,
        "refusal not counted: {refused:?}"
    );
    // It was never told the private bucket's head either: it mirrors nothing.
    let listed = other.client().list_buckets().send().await.unwrap();
    assert!(listed.buckets().is_empty(), "{listed:?}");

    // A member reads both (and mirrors both buckets).
    assert!(cat_within(&member, &private_cid, 60).as_deref() == Some(private.as_slice()));
    assert!(cat_within(&member, &public_cid, 60).as_deref() == Some(public.as_slice()));

    // Helia, a plain IPFS peer: the same.
    if common::helia::ready() {
        let fetch = |cid: &str, timeout: &str| {
            Command::new("node")
                .args(["helia-peer.mjs", "fetch", cid, &a_addr, timeout])
                .current_dir(common::helia::dir())
                .output()
                .unwrap()
        };
        let got = fetch(&public_cid, "--timeout=60");
        assert!(
            String::from_utf8_lossy(&got.stdout).contains("\"fetched\""),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        let refused = fetch(&private_cid, "--timeout=10");
        assert!(
            !String::from_utf8_lossy(&refused.stdout).contains("\"fetched\""),
            "Helia got a private object"
        );
    }
}

#[test]
fn a_busy_p2p_port_stops_a_second_node_and_nodes_have_their_own_keys() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let a = Server::start_with(tempfile::tempdir().unwrap(), &["--p2p-listen", &listen]);
    let second = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(common::SERVE)
        .args(["--p2p-listen", &listen, "--data"])
        .arg(second.path())
        .env_remove("CAIRN_DATA")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a second node started on {listen}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&listen) && stderr.contains("in use"),
        "{stderr}"
    );

    // Two nodes with default settings: their own node keys and user keys.
    let b = Server::start();
    let (ida, idb) = (id(&a), id(&b));
    assert_ne!(ida["peer_id"], idb["peer_id"]);
    let users = match std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        Some(x) => std::path::PathBuf::from(x),
        None => std::path::PathBuf::from(std::env::var_os("HOME").unwrap()).join(".config"),
    }
    .join("cairn/users");
    let key = |v: &serde_json::Value| {
        let path = users.join(format!("node-{}.key", v["peer_id"].as_str().unwrap()));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    assert_ne!(key(&ida), key(&idb), "two nodes share a user key");
}
