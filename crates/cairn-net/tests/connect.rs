//! Two or three nodes on 127.0.0.1: dialing, identify, private networks and allow-lists,
//! cluster membership by proof, and what strangers are refused.

use std::collections::HashSet;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_bitswap::{BlockQuery, Lookup};
use cairn_dag::Cid;
use cairn_net::{BlockProvider, HeadProvider, PieceProvider, Providers};
use cairn_net::{NetConfig, NetHandle, keypair_from_seed};

/// Blocks in memory; `bad` serves wrong bytes for every block; `private` publishes none
/// (else every block is published, as a gateway in `all` mode).
#[derive(Default)]
struct Memory {
    blocks: Mutex<HashMap<Cid, Bytes>>,
    bad: bool,
    private: bool,
    published: Mutex<HashSet<Cid>>,
    looked_up: Mutex<HashSet<Cid>>,
}

impl BlockProvider for Memory {
    fn lookup(&self, queries: &[BlockQuery]) -> Vec<(Cid, Lookup)> {
        let blocks = self.blocks.lock().unwrap();
        let mut looked_up = self.looked_up.lock().unwrap();
        looked_up.extend(queries.iter().map(|q| q.cid));
        queries
            .iter()
            .map(|q| {
                let answer = match blocks.get(&q.cid) {
                    Some(d) if d.len() > q.max_data => Lookup::Have { size: d.len() },
                    Some(_) if self.bad => Lookup::Block(Bytes::from_static(b"forged bytes")),
                    Some(d) => Lookup::Block(d.clone()),
                    None => Lookup::Missing,
                };
                (q.cid, answer)
            })
            .collect()
    }
    fn store(&self, cid: &Cid, data: &Bytes) {
        self.blocks.lock().unwrap().insert(*cid, data.clone());
    }
    fn published(&self, cid: &Cid) -> bool {
        !self.private || self.published.lock().unwrap().contains(cid)
    }
}

impl HeadProvider for Memory {
    fn bucket_heads(&self) -> Vec<u8> {
        b"the heads".to_vec()
    }
}

impl PieceProvider for Memory {
    fn piece_request(&self, _peer: libp2p::PeerId, request: Vec<u8>) -> Vec<u8> {
        [b"piece answer to ".as_slice(), &request].concat()
    }
}

/// Everything `memory` serves.
fn all(memory: Arc<Memory>) -> Providers {
    Providers::new(memory.clone())
        .heads(memory.clone())
        .pieces(memory)
}

async fn node(seed: u8, config: NetConfig) -> (NetHandle, tokio::sync::watch::Sender<bool>) {
    node_with(seed, config, Arc::new(Memory::default())).await
}

async fn node_with(
    seed: u8,
    config: NetConfig,
    blocks: Arc<Memory>,
) -> (NetHandle, tokio::sync::watch::Sender<bool>) {
    let (handle, stop, _task) = node_task(seed, config, blocks).await;
    (handle, stop)
}

async fn node_task(
    seed: u8,
    config: NetConfig,
    blocks: Arc<Memory>,
) -> (
    NetHandle,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        ..config
    };
    let (handle, task) = cairn_net::start(
        keypair_from_seed([seed; 32]).unwrap(),
        config,
        all(blocks),
        None,
        rx,
    )
    .await
    .unwrap();
    (handle, stop, task)
}

async fn wait_for_agent(on: &NetHandle, peer: libp2p::PeerId) -> String {
    for _ in 0..100 {
        if let Some(p) = on
            .peers()
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.peer_id == peer)
            && let Some(agent) = p.agent
        {
            return agent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{peer} never identified");
}

use cairn_net::libp2p;

#[tokio::test]
async fn nodes_dial_and_identify_each_other() {
    let (a, _sa) = node(1, NetConfig::default()).await;
    let (b, _sb) = node(2, NetConfig::default()).await;
    let addr = a.addrs().await.unwrap().remove(0);
    assert!(addr.to_string().ends_with(&format!("/p2p/{}", a.peer_id())));
    assert_eq!(b.dial(addr.clone()).await.unwrap(), a.peer_id());
    // dialing again is a no-op
    assert_eq!(b.dial(addr).await.unwrap(), a.peer_id());
    assert!(wait_for_agent(&a, b.peer_id()).await.starts_with("cairn/"));
    assert!(wait_for_agent(&b, a.peer_id()).await.starts_with("cairn/"));
    let seen = b.peers().await.unwrap();
    let port = |a: &libp2p::Multiaddr| {
        a.to_string()
            .split("/tcp/")
            .nth(1)
            .map(|r| r.split('/').next().unwrap().to_owned())
    };
    assert_eq!(
        port(&seen[0].addr),
        port(&a.addrs().await.unwrap()[0]),
        "{seen:?}"
    );
    // the same seed gives the same peer id
    assert_eq!(
        keypair_from_seed([1; 32]).unwrap().public().to_peer_id(),
        a.peer_id()
    );
}

#[tokio::test]
async fn a_wrong_pre_shared_key_gets_no_connection() {
    let psk = |k| NetConfig {
        psk: Some([k; 32]),
        ..NetConfig::default()
    };
    let (a, _sa) = node(1, psk(7)).await;
    let (b, _sb) = node(2, psk(7)).await;
    let (c, _sc) = node(3, psk(8)).await;
    let addr = a.addrs().await.unwrap().remove(0);
    assert_eq!(b.dial(addr.clone()).await.unwrap(), a.peer_id());
    assert!(c.dial(addr).await.is_err());
    assert!(c.peers().await.unwrap().is_empty());
    // QUIC cannot carry a private network
    let (stop, rx) = tokio::sync::watch::channel(false);
    let quic = NetConfig {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()],
        ..psk(7)
    };
    let blocks = Arc::new(Memory::default());
    assert!(
        cairn_net::start(
            keypair_from_seed([4; 32]).unwrap(),
            quic,
            all(blocks),
            None,
            rx
        )
        .await
        .is_err()
    );
    drop(stop);
}

#[tokio::test]
async fn peers_outside_the_allow_list_are_refused() {
    let b_id = keypair_from_seed([2; 32]).unwrap().public().to_peer_id();
    let (a, _sa) = node(
        1,
        NetConfig {
            allow: Some(HashSet::from([b_id])),
            ..NetConfig::default()
        },
    )
    .await;
    let (b, _sb) = node(2, NetConfig::default()).await;
    let (c, _sc) = node(3, NetConfig::default()).await;
    let addr = a.addrs().await.unwrap().remove(0);
    assert_eq!(b.dial(addr.clone()).await.unwrap(), a.peer_id());
    let _ = c.dial(addr).await; // the handshake may complete before A drops it
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_a: Vec<_> = a
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.peer_id)
        .collect();
    assert!(on_a.contains(&b.peer_id()));
    assert!(!on_a.contains(&c.peer_id()), "{on_a:?}");
}

#[tokio::test]
async fn blocks_move_by_bitswap_and_forged_ones_are_refused() {
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (blocks, root) = cairn_dag::file::encode_bytes(&data, cairn_dag::CidVersion::V1);
    let holder = Arc::new(Memory::default());
    for b in &blocks {
        holder.store(&b.cid, &b.data);
    }
    let (a, _sa) = node_with(1, NetConfig::default(), holder).await;
    let (b, _sb) = node(2, NetConfig::default()).await;
    let addr = a.addrs().await.unwrap().remove(0);
    b.dial(addr).await.unwrap();
    // every block, root first, verified on arrival
    for blk in &blocks {
        let got = b.fetch(blk.cid).await.unwrap();
        assert_eq!(got, blk.data);
    }
    assert_eq!(
        b.fetch(root.link.cid).await.unwrap(),
        blocks.last().unwrap().data
    );
    let stats = b.bitswap_stats().await.unwrap();
    assert!(stats.blocks_received >= blocks.len() as u64, "{stats:?}");
    assert!(stats.block_bytes_received >= data.len() as u64, "{stats:?}");

    // a node that serves wrong bytes never makes a fetch return them
    let liar = Arc::new(Memory {
        bad: true,
        ..Memory::default()
    });
    for blk in &blocks {
        liar.store(&blk.cid, &blk.data);
    }
    let (l, _sl) = node_with(3, NetConfig::default(), liar).await;
    let (c, _sc) = node(4, NetConfig::default()).await;
    c.dial(l.addrs().await.unwrap().remove(0)).await.unwrap();
    let small = blocks.iter().find(|b| b.data.len() < 1_000_000).unwrap();
    // (refused, or timed out: nobody honest has it)
    if let Ok(Ok(bytes)) = tokio::time::timeout(Duration::from_secs(30), c.fetch(small.cid)).await {
        assert_eq!(bytes, small.data, "wrong bytes returned");
    }
    let stats = c.bitswap_stats().await.unwrap();
    assert!(stats.misbehaviours >= 1, "the liar was noticed: {stats:?}");
    // with an honest peer as well, the fetch succeeds with the right bytes
    c.dial(a.addrs().await.unwrap().remove(0)).await.unwrap();
    assert_eq!(c.fetch(small.cid).await.unwrap(), small.data);
}

#[tokio::test]
async fn providers_are_found_through_the_dht_and_kept_across_restarts() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let dht = NetConfig {
        dht_path: Some(dir.path().join("dht.redb")),
        ..NetConfig::default()
    };
    let data: Vec<u8> = (0..600_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let (blocks, root) = cairn_dag::file::encode_bytes(&data, cairn_dag::CidVersion::V1);
    let holder = Arc::new(Memory::default());
    for b in &blocks {
        holder.store(&b.cid, &b.data);
    }
    // H is the bootstrap hub; A holds the file; C only knows H.
    let (h, stop_h, task_h) = node_task(10, dht.clone(), Arc::new(Memory::default())).await;
    let (a, _sa) = node_with(11, NetConfig::default(), holder).await;
    let (c, _sc) = node(12, NetConfig::default()).await;
    let hub = h.addrs().await.unwrap().remove(0);
    a.dial(hub.clone()).await.unwrap();
    c.dial(hub.clone()).await.unwrap();
    wait_for_agent(&a, h.peer_id()).await;
    wait_for_agent(&c, h.peer_id()).await;
    wait_for_agent(&h, a.peer_id()).await;

    assert!(a.provide(vec![root.link.cid]).await.unwrap() >= 1);
    let found = c.find_providers(root.link.cid).await.unwrap();
    assert_eq!(found, vec![a.peer_id()]);
    // A read on C finds A through the DHT and fetches every block from it.
    for blk in blocks.iter().rev() {
        assert_eq!(c.fetch(blk.cid).await.unwrap(), blk.data);
    }
    assert!(
        c.peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == a.peer_id())
    );

    // H restarts on its record store: a new node asking H still learns that A provides the
    // root, though A announced nothing since.
    stop_h.send(true).unwrap();
    task_h.await.unwrap();
    drop(h);
    {
        use libp2p::kad::store::RecordStore;
        let s = cairn_net::kad_store::RedbStore::open(
            &dir.path().join("dht.redb"),
            keypair_from_seed([10; 32]).unwrap().public().to_peer_id(),
            Default::default(),
        )
        .unwrap();
        let stored: Vec<_> = s
            .providers(&cairn_net::provider_key(&root.link.cid))
            .into_iter()
            .map(|p| p.provider)
            .collect();
        assert_eq!(stored, vec![a.peer_id()], "H kept A's record on disk");
    }
    let (h2, _sh2, _t) = node_task(10, dht, Arc::new(Memory::default())).await;
    let (d, _sd) = node(13, NetConfig::default()).await;
    d.dial(h2.addrs().await.unwrap().remove(0)).await.unwrap();
    wait_for_agent(&d, h2.peer_id()).await;
    wait_for_agent(&h2, d.peer_id()).await;
    let found = d.find_providers(root.link.cid).await.unwrap();
    assert!(found.contains(&a.peer_id()), "{found:?}");
}

fn member_of(secret: u8) -> NetConfig {
    NetConfig {
        cluster: Some(cairn_crypt::ClusterSecret::from_bytes([secret; 32])),
        ..NetConfig::default()
    }
}

async fn wait_for_member(on: &NetHandle, peer: libp2p::PeerId) {
    for _ in 0..100 {
        if on
            .peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer_id == peer && p.member)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{peer} never became a member");
}

#[tokio::test]
async fn members_prove_the_cluster_secret_and_strangers_get_no_member_protocol() {
    let (a, _sa) = node(31, member_of(1)).await;
    let (b, _sb) = node(32, member_of(1)).await;
    let (other, _so) = node(33, member_of(2)).await;
    let (plain, _sp) = node(34, NetConfig::default()).await;
    let addr = a.addrs().await.unwrap().remove(0);
    for n in [&b, &other, &plain] {
        n.dial(addr.clone()).await.unwrap();
    }
    wait_for_member(&a, b.peer_id()).await;
    wait_for_member(&b, a.peer_id()).await;
    // Member protocols work between members, both ways, at once after the proof.
    assert_eq!(b.bucket_heads(a.peer_id()).await.unwrap(), b"the heads");
    assert_eq!(
        a.piece_request(b.peer_id(), b"x".to_vec()).await.unwrap(),
        b"piece answer to x"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_a = a.peers().await.unwrap();
    for stranger in [&other, &plain] {
        let p = on_a
            .iter()
            .find(|p| p.peer_id == stranger.peer_id())
            .unwrap();
        assert!(!p.member, "{p:?}");
        // A node does not ask a stranger, and a stranger's node does not ask it either.
        assert!(a.bucket_heads(stranger.peer_id()).await.is_err());
        assert!(stranger.bucket_heads(a.peer_id()).await.is_err());
        assert!(
            stranger
                .piece_request(a.peer_id(), b"x".to_vec())
                .await
                .is_err()
        );
    }
}

/// A rust-libp2p peer that speaks Cairn's member protocols without the secret: its heads and
/// piece requests and its forged proofs are refused, and it never becomes a member.
#[tokio::test]
async fn an_adversarial_peer_without_the_secret_is_refused() {
    use cairn_net::testkit::MemberProtocolsEvent as EvilEvent;
    use futures::StreamExt;
    use libp2p::request_response::{Event, Message};
    use libp2p::swarm::SwarmEvent;
    let (a, _sa) = node(41, member_of(1)).await;
    let mut evil = cairn_net::testkit::swarm(cairn_net::testkit::MemberProtocols::new(
        Duration::from_secs(5),
    ));
    evil.dial(a.addrs().await.unwrap().remove(0)).unwrap();
    let mut asked = false;
    let (mut heads_failed, mut pieces_failed, mut challenged) = (false, false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(heads_failed && pieces_failed && challenged) {
        let event = tokio::time::timeout_at(deadline, evil.select_next_some())
            .await
            .expect("the node answered every request in time");
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if !asked => {
                asked = true;
                let b = evil.behaviour_mut();
                b.heads.send_request(&peer_id, Vec::new());
                b.pieces.send_request(&peer_id, b"junk".to_vec());
                // A proof nobody asked for.
                b.member.send_request(&peer_id, vec![0; 32]);
            }
            SwarmEvent::Behaviour(EvilEvent::Heads(Event::Message {
                message: Message::Response { .. },
                ..
            }))
            | SwarmEvent::Behaviour(EvilEvent::Pieces(Event::Message {
                message: Message::Response { .. },
                ..
            })) => panic!("a stranger was answered"),
            SwarmEvent::Behaviour(EvilEvent::Heads(Event::OutboundFailure { .. })) => {
                heads_failed = true
            }
            SwarmEvent::Behaviour(EvilEvent::Pieces(Event::OutboundFailure { .. })) => {
                pieces_failed = true
            }
            // The node challenges us: answer with a made-up proof.
            SwarmEvent::Behaviour(EvilEvent::Member(Event::Message {
                message: Message::Request { channel, .. },
                ..
            })) => {
                challenged = true;
                let _ = evil
                    .behaviour_mut()
                    .member
                    .send_response(channel, vec![7; 32]);
            }
            _ => {}
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let me = *evil.local_peer_id();
    let seen = a.peers().await.unwrap();
    let p = seen
        .iter()
        .find(|p| p.peer_id == me)
        .expect("still connected");
    assert!(!p.member, "a forged proof made a member");
}

#[tokio::test]
async fn strangers_get_published_dags_only_and_members_everything() {
    let public: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let private: Vec<u8> = (0..300_000u32).map(|i| (i * 11 % 253) as u8).collect();
    let (pub_blocks, pub_root) = cairn_dag::file::encode_bytes(&public, cairn_dag::CidVersion::V1);
    let (priv_blocks, priv_root) =
        cairn_dag::file::encode_bytes(&private, cairn_dag::CidVersion::V1);
    let holder = Arc::new(Memory {
        private: true,
        ..Memory::default()
    });
    for b in pub_blocks.iter().chain(&priv_blocks) {
        holder.store(&b.cid, &b.data);
    }
    holder.published.lock().unwrap().insert(pub_root.link.cid);
    let (a, _sa) = node_with(51, member_of(1), holder.clone()).await;
    let (member, _sm) = node(52, member_of(1)).await;
    let (stranger, _ss) = node(53, member_of(2)).await;
    let addr = a.addrs().await.unwrap().remove(0);
    member.dial(addr.clone()).await.unwrap();
    stranger.dial(addr).await.unwrap();
    wait_for_member(&a, member.peer_id()).await;
    // A leaf of the published file, asked before its root: not yet shown to this peer.
    let leaf = &pub_blocks[0];
    assert!(
        tokio::time::timeout(Duration::from_secs(3), stranger.fetch(leaf.cid))
            .await
            .map_or(true, |r| r.is_err()),
        "a leaf served before its published root"
    );
    assert!(!holder.looked_up.lock().unwrap().contains(&leaf.cid));
    // From the published root down: every block.
    let root = pub_blocks.last().unwrap();
    assert_eq!(root.cid, pub_root.link.cid);
    assert_eq!(stranger.fetch(root.cid).await.unwrap(), root.data);
    for blk in &pub_blocks {
        assert_eq!(stranger.fetch(blk.cid).await.unwrap(), blk.data);
    }
    // The unpublished file: neither its root nor a leaf.
    for cid in [priv_root.link.cid, priv_blocks[0].cid] {
        assert!(
            tokio::time::timeout(Duration::from_secs(3), stranger.fetch(cid))
                .await
                .map_or(true, |r| r.is_err()),
            "{cid} served to a stranger"
        );
    }
    // Refused before the store was asked.
    let looked_up = holder.looked_up.lock().unwrap().clone();
    assert!(!looked_up.contains(&priv_root.link.cid) && !looked_up.contains(&priv_blocks[0].cid));
    // A member reads it all.
    for blk in priv_blocks.iter().rev() {
        assert_eq!(member.fetch(blk.cid).await.unwrap(), blk.data);
    }
}

#[tokio::test]
async fn a_busy_p2p_port_stops_the_start() {
    let (a, _sa) = node(61, NetConfig::default()).await;
    let busy = a.addrs().await.unwrap().remove(0);
    let tcp: libp2p::Multiaddr = busy
        .iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let err = cairn_net::start(
        keypair_from_seed([62; 32]).unwrap(),
        NetConfig {
            listen: vec![tcp.clone()],
            ..NetConfig::default()
        },
        all(Arc::new(Memory::default())),
        None,
        rx,
    )
    .await
    .expect_err("a second node on a busy port does not start");
    let text = err.to_string();
    assert!(
        text.contains(&tcp.to_string()) && text.contains("in use"),
        "{text}"
    );
}

/// A stranger that opens far more Bitswap streams than it may and fills each with a full
/// wantlist of blocks nobody has: the node reads at most its share of streams, keeps a
/// bounded ledger, and another peer still fetches a published file from it meanwhile.
#[tokio::test]
async fn a_stranger_flooding_streams_and_wants_does_not_starve_others() {
    use cairn_bitswap::{Message, WantEntry, WantType};
    use futures::{AsyncWriteExt, StreamExt};
    let data: Vec<u8> = (0..1_200_000u32).map(|i| (i * 3 % 241) as u8).collect();
    let (blocks, root) = cairn_dag::file::encode_bytes(&data, cairn_dag::CidVersion::V1);
    let holder = Arc::new(Memory {
        private: true,
        ..Memory::default()
    });
    for b in &blocks {
        holder.store(&b.cid, &b.data);
    }
    holder.published.lock().unwrap().insert(root.link.cid);
    let (a, _sa) = node_with(71, member_of(1), holder).await;
    let addr = a.addrs().await.unwrap().remove(0);

    let mut evil = cairn_net::testkit::swarm(cairn_net::streams::Behaviour::new(
        libp2p::StreamProtocol::new(cairn_bitswap::PROTOCOL),
    ));
    evil.dial(addr.clone()).unwrap();
    let a_id = a.peer_id();
    let wants: Vec<WantEntry> = (0..1024u32)
        .map(|i| {
            let cid = cairn_dag::Block::new(
                cairn_dag::CidVersion::V1,
                cairn_dag::RAW,
                Bytes::from(i.to_be_bytes().to_vec()),
            )
            .unwrap()
            .cid;
            WantEntry::want(cid, WantType::Block, 1, true)
        })
        .collect();
    let frame = Message {
        full: true,
        wantlist: wants,
        ..Message::default()
    }
    .encode_frame();
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel(512);
    let flood = tokio::spawn(async move {
        let mut asked = false;
        loop {
            tokio::select! {
                event = evil.select_next_some() => {
                    if let libp2p::swarm::SwarmEvent::ConnectionEstablished { .. } = event
                        && !asked
                    {
                        asked = true;
                        for _ in 0..300 {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            evil.behaviour_mut().open(a_id, tx);
                            let frame = frame.clone();
                            let opened = opened_tx.clone();
                            tokio::spawn(async move {
                                if let Ok(Ok(mut s)) = rx.await {
                                    // Write the wants and hold the stream open.
                                    let _ = s.write_all(&frame).await;
                                    let _ = s.flush().await;
                                    let _ = opened.send(s).await;
                                }
                            });
                        }
                    }
                }
                () = tokio::time::sleep(Duration::from_secs(60)) => return,
            }
        }
    });
    // Let the flood land, then a polite stranger fetches the published file.
    let mut held = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while held.len() < 300 {
        match tokio::time::timeout_at(until, opened_rx.recv()).await {
            Ok(Some(s)) => held.push(s),
            _ => break,
        }
    }
    assert!(!held.is_empty(), "no stream opened at all");
    let (b, _sb) = node(72, member_of(2)).await;
    b.dial(addr).await.unwrap();
    let started = std::time::Instant::now();
    for blk in blocks.iter().rev() {
        let got = tokio::time::timeout(Duration::from_secs(30), b.fetch(blk.cid))
            .await
            .expect("a polite peer starved by the flood")
            .unwrap();
        assert_eq!(got, blk.data);
    }
    let fetched_in = started.elapsed();
    // The node reads at most its share of the flood's streams; it closed the others.
    let mut still_read = 0;
    for s in &mut held {
        let mut buf = [0u8; 16];
        if tokio::time::timeout(
            Duration::from_millis(200),
            futures::AsyncReadExt::read(s, &mut buf),
        )
        .await
        .is_err()
        {
            still_read += 1;
        }
    }
    println!(
        "{} flood streams opened, {still_read} read by the node; the file fetched in {fetched_in:?}",
        held.len(),
    );
    assert!(
        still_read <= cairn_net::bitswap::MAX_INBOUND_STREAMS_PER_PEER,
        "{still_read} of a stranger's streams are read at once"
    );
    flood.abort();
}
