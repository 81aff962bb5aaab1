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
    common::cid_of(&s3, bucket, key).await
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

/// The dag-cbor shape of a shared head (`cairn_node::replication::follow::SharedBucket`).
#[derive(serde::Serialize)]
struct Shared {
    #[serde(with = "serde_bytes")]
    head: Vec<u8>,
    bucket: Option<()>,
}

/// A rust-libp2p peer that holds the cluster secret and misbehaves: it proves membership,
/// then pushes forged heads of the owner's bucket (another key with a higher seq, a forged
/// `taken_from`, a tombstone, `u64::MAX`), serves them when asked, and sends lying and
/// junk pieces and a flood of requests. The owner keeps its bucket and every byte, stays
/// responsive and within its memory.
#[tokio::test(flavor = "multi_thread")]
async fn a_misbehaving_member_changes_nothing() {
    use cairn_cluster::proto::{Request, WireBlock};
    use cairn_net::libp2p::{self, futures::StreamExt};
    use cairn_net::testkit::MemberProtocolsEvent as EvilEvent;
    use cairn_node::model::heads::{HeadPayload, SignedHead};
    use libp2p::request_response::{Event, Message};
    use libp2p::swarm::SwarmEvent;
    use serde_bytes::ByteBuf;

    let nodes = common::nodes::cluster(2, "replicas:2");
    let a = &nodes[0];
    let s3 = a.client();
    s3.create_bucket().bucket("keep").send().await.unwrap();
    let objects: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("o{i}"), pattern(300_000 + i * 1000, 30 + i as u8)))
        .collect();
    for (k, v) in &objects {
        put(a, "keep", k, v).await;
    }
    // The owner's signed head, once the roots job has made it.
    let head_file = a.data.path().join("keep.head");
    let until = Instant::now() + Duration::from_secs(20);
    let real = loop {
        let out = cairn(
            a.data.path(),
            &["bucket", "head", "keep", "-o", head_file.to_str().unwrap()],
        );
        if out.status.success()
            && let Ok(bytes) = std::fs::read(&head_file)
        {
            let h = SignedHead::verify(&bytes, None).unwrap();
            if h.payload.seq > 0 {
                break h;
            }
        }
        assert!(Instant::now() < until, "no head for keep");
        std::thread::sleep(Duration::from_millis(200));
    };
    let cluster: toml::Table =
        toml::from_str(&std::fs::read_to_string(a.data.path().join("cluster.toml")).unwrap())
            .unwrap();
    let secret = cairn_crypt::ClusterSecret::from_hex(cluster["secret"].as_str().unwrap()).unwrap();

    // The forged heads, signed by the misbehaving member's own key.
    let evil_key = cairn_node::identity::Identity::from_seed([66; 32]);
    let forge = |f: &dyn Fn(&mut HeadPayload)| {
        let mut p = real.payload.clone();
        p.seq += 1;
        p.taken_from = Some(ByteBuf::from(real.public_key.to_vec()));
        f(&mut p);
        let head = SignedHead::sign(p, &evil_key).unwrap().to_bytes().unwrap();
        Shared { head, bucket: None }
    };
    let forged: Vec<Shared> = vec![
        forge(&|_| {}),
        forge(&|p| p.deleted = true),
        forge(&|p| p.seq = u64::MAX),
        forge(&|p| {
            p.seq = u64::MAX;
            p.deleted = true
        }),
    ];
    // The list as the heads protocol carries it.
    let heads_answer = cairn_cluster::proto::encode(&forged);
    let junk = |n: u8| {
        cairn_dag::Block::new(cairn_dag::CidVersion::V1, cairn_dag::RAW, vec![n; 1000]).unwrap()
    };
    let lying = cairn_cluster::stripe::Manifest {
        v: 1,
        shard_len: 0xFFFF_FFC0,
        data: vec![junk(1).cid, junk(2).cid],
        lens: vec![1000, 1000],
        parity: vec![junk(3).cid],
    };
    let lying_block = cairn_dag::Block::new(
        cairn_dag::CidVersion::V1,
        cairn_dag::DAG_CBOR,
        cairn_cluster::proto::encode(&lying),
    )
    .unwrap();
    let wire = |b: &cairn_dag::Block| WireBlock {
        cid: b.cid,
        data: ByteBuf::from(b.data.to_vec()),
    };
    let mut attacks: Vec<Vec<u8>> = forged
        .iter()
        .map(|shared| {
            cairn_cluster::proto::encode(&Request::PutRecord {
                key: "head/keep".into(),
                bytes: ByteBuf::from(cairn_cluster::proto::encode(shared)),
            })
        })
        .collect();
    attacks.push(cairn_cluster::proto::encode(&Request::put_one(
        &junk(4),
        None,
        Some(0),
    )));
    attacks.push(cairn_cluster::proto::encode(&Request::put_one(
        &junk(5),
        None,
        Some(50),
    )));
    attacks.push(cairn_cluster::proto::encode(&Request::put_one(
        &junk(1),
        Some(wire(&lying_block)),
        None,
    )));
    // A flood: more requests than a member may have in flight.
    for _ in 0..300 {
        attacks.push(cairn_cluster::proto::encode(&Request::Has {
            cids: vec![junk(9).cid; 200],
        }));
    }

    let a_addr: libp2p::Multiaddr = id(a)["addrs"][0].as_str().unwrap().parse().unwrap();
    let mut evil = cairn_net::testkit::swarm(cairn_net::testkit::MemberProtocols::new(
        Duration::from_secs(30),
    ));
    let me = evil.local_peer_id().to_bytes();
    evil.dial(a_addr).unwrap();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let attacker = tokio::spawn(async move {
        let mut sent = false;
        let mut answered = 0usize;
        let mut asked_heads = 0usize;
        loop {
            tokio::select! {
                _ = &mut done_rx => return (answered, asked_heads),
                event = evil.select_next_some() => match event {
                    // Prove membership to the node's challenge, then attack.
                    SwarmEvent::Behaviour(EvilEvent::Member(Event::Message {
                        peer,
                        message: Message::Request { channel, request, .. },
                        ..
                    })) => {
                        let nonce: [u8; 32] = request.try_into().unwrap();
                        let proof = secret.prove(&me, &peer.to_bytes(), &nonce);
                        let _ = evil.behaviour_mut().member.send_response(channel, proof.to_vec());
                        if !sent {
                            sent = true;
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            for body in &attacks {
                                evil.behaviour_mut().pieces.send_request(&peer, body.clone());
                            }
                        }
                    }
                    SwarmEvent::Behaviour(EvilEvent::Heads(Event::Message {
                        message: Message::Request { channel, .. },
                        ..
                    })) => {
                        asked_heads += 1;
                        let _ = evil.behaviour_mut().heads.send_response(channel, heads_answer.clone());
                    }
                    SwarmEvent::Behaviour(EvilEvent::Pieces(Event::Message {
                        message: Message::Response { .. },
                        ..
                    })) => answered += 1,
                    _ => {}
                }
            }
        }
    });
    // A few follow and repair ticks with the attacker connected; meanwhile writes go on: a
    // piece the member takes and does not store goes to the next member instead.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during: Vec<u8> = pattern(700_000, 77);
    put(a, "keep", "during", &during).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _ = done_tx.send(());
    let (answered, asked_heads) = attacker.await.unwrap();
    assert!(answered > 0, "the member's requests were never answered");
    assert!(asked_heads > 0, "the node never asked the member for heads");

    // The owner still owns its bucket: every object byte-exact (the one written during the
    // attack too), its head its own, and it is still writable.
    for (k, v) in objects.iter().chain([&("during".to_owned(), during)]) {
        let got = s3.get_object().bucket("keep").key(k).send().await.unwrap();
        assert!(got.body.collect().await.unwrap().into_bytes() == v.as_slice());
    }
    put(a, "keep", "after", b"still mine").await;
    ok(&cairn(
        a.data.path(),
        &["bucket", "head", "keep", "-o", head_file.to_str().unwrap()],
    ));
    let now = SignedHead::verify(&std::fs::read(&head_file).unwrap(), None).unwrap();
    assert_eq!(
        now.public_key, real.public_key,
        "another key signs the bucket"
    );
    assert!(
        now.payload.seq < 1 << 20 && !now.payload.deleted,
        "{:?}",
        now.payload
    );
    // Memory stayed bounded (no 4 GiB rebuild, no unbounded queues).
    let status = std::fs::read_to_string(format!("/proc/{}/status", a.pid())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rss_kb < 1 << 20, "peak RSS {rss_kb} KiB");
}
