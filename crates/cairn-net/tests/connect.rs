//! Two or three nodes on 127.0.0.1: dialing, identify, private networks and allow-lists.

use std::collections::HashSet;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cairn_bitswap::{BlockQuery, Lookup};
use cairn_dag::Cid;
use cairn_net::bitswap::LocalBlocks;
use cairn_net::{NetConfig, NetHandle, keypair_from_seed};

/// Blocks in memory; `bad` serves wrong bytes for every block.
#[derive(Default)]
struct Memory {
    blocks: Mutex<HashMap<Cid, Bytes>>,
    bad: bool,
}

impl LocalBlocks for Memory {
    fn lookup(&self, queries: &[BlockQuery]) -> Vec<(Cid, Lookup)> {
        let blocks = self.blocks.lock().unwrap();
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
        blocks,
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
        cairn_net::start(keypair_from_seed([4; 32]).unwrap(), quic, blocks, None, rx)
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
