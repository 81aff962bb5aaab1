//! Whole engines wired together in memory: every message goes through `encode_frame` and a
//! `FrameDecoder`, like on a stream; clients walk the DAG the way a reader would (want the
//! root, then the links of every block received) and the file is read back with
//! `cairn_dag::read::FileRead`.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_bitswap::{
    Bitswap, BlockSource, Config, Event, FrameDecoder, Lookup, Misbehaviour, answer_queries,
};
use cairn_dag::{Cid, CidVersion, file::encode_bytes, read::FileRead};
use common::*;

struct Node {
    id: Peer,
    bs: Bitswap<Peer>,
    store: MemStore,
    /// Walk the links of received dag-pb blocks.
    fetch_dag: bool,
    received_from: Vec<(Cid, Peer)>,
    failed: Vec<Cid>,
    reports: Vec<(Peer, Misbehaviour)>,
}

struct Net {
    nodes: Vec<Node>,
    now: Instant,
    frames: usize,
}

impl Net {
    fn new(ids: &[Peer], config: Config) -> Self {
        Net {
            nodes: ids
                .iter()
                .map(|id| Node {
                    id,
                    bs: Bitswap::new(config.clone()),
                    store: MemStore::default(),
                    fetch_dag: false,
                    received_from: Vec::new(),
                    failed: Vec::new(),
                    reports: Vec::new(),
                })
                .collect(),
            now: Instant::now(),
            frames: 0,
        }
    }

    fn node(&mut self, id: Peer) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }

    fn connect(&mut self, a: Peer, b: Peer) {
        let now = self.now;
        self.node(a).bs.peer_connected(b, now);
        self.node(b).bs.peer_connected(a, now);
    }

    /// Runs until no node has anything to do at the current time.
    fn run(&mut self) {
        let now = self.now;
        for _round in 0..100_000 {
            let mut wire: Vec<(Peer, Peer, Bytes)> = Vec::new();
            let mut busy = false;
            for n in &mut self.nodes {
                while let Some(ev) = n.bs.poll(now) {
                    busy = true;
                    match ev {
                        Event::Send { peer, message } => {
                            wire.push((n.id, peer, message.encode_frame()));
                            n.bs.message_sent(&peer);
                        }
                        Event::NeedBlocks { peer, queries } => {
                            let answers = answer_queries(&n.store, &queries);
                            n.bs.blocks_found(&peer, answers);
                        }
                        Event::BlockReceived { cid, data, from } => {
                            cairn_bitswap::prefix::verify(&cid, &data).unwrap();
                            n.store.insert(&cid, data.clone());
                            n.received_from.push((cid, from));
                            n.bs.block_added(&cid, &data);
                            if n.fetch_dag {
                                for link in cairn_dag::links_of(&cid, &data).unwrap() {
                                    if matches!(n.store.lookup(&link, 0), Lookup::Missing) {
                                        n.bs.want(link, 1, now).unwrap();
                                    }
                                }
                            }
                        }
                        Event::WantFailed { cid } => n.failed.push(cid),
                        Event::PeerMisbehaved { peer, reason } => n.reports.push((peer, reason)),
                    }
                }
            }
            for (from, to, frame) in wire {
                self.frames += 1;
                let node = self.node(to);
                let mut d = FrameDecoder::new(node.bs.config().max_message_size);
                d.push(&frame);
                while let Some(body) = d.next_frame().unwrap() {
                    node.bs.handle_message(from, &body, now);
                }
                assert!(d.is_empty());
            }
            if !busy {
                return;
            }
        }
        panic!("the network did not settle");
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.run();
    }
}

fn read_file(store: &MemStore, root: Cid) -> Vec<u8> {
    let mut r = FileRead::new(root, None);
    let mut out = Vec::new();
    while let Some(cid) = r.next_cid() {
        let Lookup::Block(data) = store.lookup(&cid, usize::MAX) else {
            panic!("missing {cid}")
        };
        out.extend_from_slice(r.feed(&data).unwrap());
    }
    out
}

fn file_bytes(len: usize, seed: u32) -> Vec<u8> {
    block(seed, len).1.to_vec()
}

fn transfer(version: CidVersion, len: usize) {
    let data = file_bytes(len, 7);
    let (blocks, root) = encode_bytes(&data, version);
    let mut net = Net::new(&["client", "server"], Config::default());
    for b in &blocks {
        net.node("server").store.insert(&b.cid, b.data.clone());
    }
    net.connect("client", "server");
    net.node("client").fetch_dag = true;
    let now = net.now;
    net.node("client").bs.want(root.link.cid, 1, now).unwrap();
    net.run();

    let client = net.node("client");
    assert!(client.failed.is_empty() && client.reports.is_empty());
    let got: HashSet<Cid> = client.received_from.iter().map(|r| r.0).collect();
    let all: HashSet<Cid> = blocks.iter().map(|b| b.cid).collect();
    assert_eq!(got, all);
    assert_eq!(client.received_from.len(), blocks.len(), "no block twice");
    assert_eq!(read_file(&client.store, root.link.cid), data);
    assert!(client.bs.wantlist().is_empty());
    let cs = client.bs.stats();
    assert_eq!(cs.blocks_received as usize, blocks.len());
    assert_eq!(cs.unacked_bytes, 0);
    let ss = net.node("server").bs.stats();
    assert_eq!(ss.blocks_sent as usize, blocks.len());
    assert_eq!(ss.peer_wants, 0);
    assert_eq!(ss.lookups_in_flight, 0);
}

#[test]
fn two_nodes_transfer_a_cidv1_file() {
    // 13 raw leaves under one dag-pb root.
    transfer(CidVersion::V1, 3 * 1024 * 1024 + 12345);
}

#[test]
fn two_nodes_transfer_a_cidv0_file() {
    transfer(CidVersion::V0, 2 * 1024 * 1024 + 1);
}

#[test]
fn two_nodes_transfer_a_two_level_dag() {
    // 180 leaves: more than 174 links, so the root has branch children.
    transfer(CidVersion::V1, 180 * 256 * 1024 - 1000);
}

#[test]
fn client_fetches_from_two_servers_holding_different_parts() {
    let data = file_bytes(5 * 256 * 1024, 9);
    let (blocks, root) = encode_bytes(&data, CidVersion::V1);
    let mut net = Net::new(&["client", "s1", "s2"], Config::default());
    let mut from_s2 = HashSet::new();
    for (i, b) in blocks.iter().enumerate() {
        // s1: the root and even leaves; s2: odd leaves.
        let owner = if b.cid == root.link.cid || i % 2 == 0 {
            "s1"
        } else {
            "s2"
        };
        if owner == "s2" {
            from_s2.insert(b.cid);
        }
        net.node(owner).store.insert(&b.cid, b.data.clone());
    }
    net.connect("client", "s1");
    net.connect("client", "s2");
    net.node("client").fetch_dag = true;
    let now = net.now;
    net.node("client").bs.want(root.link.cid, 1, now).unwrap();
    net.run();
    let client = net.node("client");
    assert_eq!(client.received_from.len(), blocks.len());
    for (cid, from) in &client.received_from {
        assert_eq!(*from == "s2", from_s2.contains(cid), "{cid} from {from}");
    }
    assert_eq!(read_file(&client.store, root.link.cid), data);
    assert!(client.failed.is_empty() && client.reports.is_empty());
    // Both servers had every DONT_HAVE'd want cancelled once the blocks arrived.
    for s in ["s1", "s2"] {
        assert!(net.node(s).bs.peer_wantlist(&"client").is_empty(), "{s}");
    }
}

#[test]
fn a_block_that_arrives_later_reaches_the_waiting_peer() {
    // client asks relay; relay does not have it yet (DONT_HAVE), then fetches it from origin
    // for its own reasons: the client's waiting want is answered.
    let mut net = Net::new(&["client", "relay", "origin"], Config::default());
    let (x, x_data) = block(1, 5000);
    net.node("origin").store.insert(&x, x_data.clone());
    net.connect("client", "relay");
    net.connect("relay", "origin");
    let now = net.now;
    net.node("client").bs.want(x, 1, now).unwrap();
    net.run();
    assert!(net.node("client").received_from.is_empty());
    net.node("relay").bs.want(x, 1, now).unwrap();
    net.run();
    assert_eq!(net.node("relay").received_from, vec![(x, "origin")]);
    assert_eq!(net.node("client").received_from, vec![(x, "relay")]);
}

#[test]
fn nobody_has_it_fails_after_the_starve_timeout() {
    let config = Config::default();
    let starve = config.starve_timeout;
    let mut net = Net::new(&["client", "s1", "s2"], config);
    net.connect("client", "s1");
    net.connect("client", "s2");
    let (x, _) = block(1, 10);
    let now = net.now;
    net.node("client").bs.want(x, 1, now).unwrap();
    net.run();
    assert!(net.node("client").failed.is_empty());
    net.advance(starve);
    assert_eq!(net.node("client").failed, vec![x]);
    // The servers' waiting entries were cancelled.
    assert!(net.node("s1").bs.peer_wantlist(&"client").is_empty());
    assert!(net.node("s2").bs.peer_wantlist(&"client").is_empty());
}
