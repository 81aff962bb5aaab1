//! The server side: answers to WANT_HAVE / WANT_BLOCK, cancels, full wantlists, bounds, flow
//! control, blocks added later, disconnects.

mod common;

use std::time::Instant;

use bytes::Bytes;
use cairn_bitswap::{
    Bitswap, BlockPresence, Config, Event, Lookup, Message, Misbehaviour, PresenceType, WantEntry,
    WantType,
};
use common::*;

fn wants(entries: Vec<WantEntry>) -> Message {
    Message {
        wantlist: entries,
        ..Message::default()
    }
}

fn have(cid: cairn_dag::Cid, sdh: bool) -> WantEntry {
    WantEntry::want(cid, WantType::Have, 1, sdh)
}

fn want_block(cid: cairn_dag::Cid, sdh: bool) -> WantEntry {
    WantEntry::want(cid, WantType::Block, 1, sdh)
}

fn presence(cid: cairn_dag::Cid, p: PresenceType) -> BlockPresence {
    BlockPresence { cid, presence: p }
}

fn setup() -> (Bitswap<Peer>, MemStore, Instant) {
    let now = Instant::now();
    let mut bs = Bitswap::new(Config::default());
    bs.peer_connected("c", now);
    assert!(drain(&mut bs, now).is_empty());
    (bs, MemStore::default(), now)
}

#[test]
fn want_have_answers_have_dont_have_and_small_blocks() {
    let (mut bs, mut store, now) = setup();
    let (big, big_data) = block(1, 5000);
    let (small, small_data) = block(2, 100);
    let (missing, _) = block(3, 10);
    let (missing_quiet, _) = block(4, 10);
    store.insert(&big, big_data);
    store.insert(&small, small_data.clone());

    bs.handle_decoded(
        "c",
        wants(vec![
            have(big, true),
            have(missing, true),
            have(missing_quiet, false),
            have(small, true),
        ]),
        now,
    );
    let events = drain(&mut bs, now);
    assert_eq!(events.len(), 1);
    let Event::NeedBlocks { peer, queries } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(*peer, "c");
    assert_eq!(queries.len(), 4);
    assert!(queries.iter().all(|q| q.max_data == 1024));
    bs.blocks_found(&"c", cairn_bitswap::answer_queries(&store, queries));

    let events = drain(&mut bs, now);
    let m = to(&events, "c");
    assert_eq!(
        m.presences,
        vec![
            presence(big, PresenceType::Have),
            presence(missing, PresenceType::DontHave)
        ]
    );
    // The small block is sent in place of HAVE, as boxo and Helia do.
    assert_eq!(m.payload.len(), 1);
    assert_eq!(
        m.payload[0].prefix.cid_for(&m.payload[0].data).unwrap(),
        small
    );
    assert_eq!(m.payload[0].data, small_data);
    // Answered entries leave the ledger; the two missing ones wait.
    let mut left: Vec<_> = bs.peer_wantlist(&"c").into_iter().map(|(c, _)| c).collect();
    left.sort();
    let mut expected = vec![missing, missing_quiet];
    expected.sort();
    assert_eq!(left, expected);
    let s = bs.stats();
    assert_eq!((s.haves_sent, s.dont_haves_sent, s.blocks_sent), (1, 1, 1));
    assert_eq!(s.peer_wants, 2);
}

#[test]
fn want_block_sends_block_or_dont_have() {
    let (mut bs, mut store, now) = setup();
    let (a, a_data) = block(1, 300_000);
    let (missing, _) = block(2, 10);
    let (missing_quiet, _) = block(3, 10);
    store.insert(&a, a_data.clone());
    bs.handle_decoded(
        "c",
        wants(vec![
            want_block(a, false),
            want_block(missing, true),
            want_block(missing_quiet, false),
        ]),
        now,
    );
    let events = serve(&mut bs, &store, now);
    let m = to(&events, "c");
    assert_eq!(m.payload.len(), 1);
    assert_eq!(m.payload[0].prefix, cairn_bitswap::Prefix::of(&a));
    assert_eq!(m.payload[0].data, a_data);
    assert_eq!(m.presences, vec![presence(missing, PresenceType::DontHave)]);
    assert_eq!(bs.stats().block_bytes_sent, 300_000);
}

#[test]
fn cancel_removes_and_block_added_serves_waiting_wants() {
    let (mut bs, store, now) = setup();
    let (x, x_data) = block(1, 2000);
    let (y, y_data) = block(2, 3000);
    let (z, z_data) = block(3, 10);
    bs.handle_decoded(
        "c",
        wants(vec![
            want_block(x, false),
            have(y, true),
            want_block(z, true),
        ]),
        now,
    );
    let events = serve(&mut bs, &store, now);
    assert_eq!(
        to(&events, "c").presences,
        vec![
            presence(y, PresenceType::DontHave),
            presence(z, PresenceType::DontHave)
        ]
    );
    assert_eq!(bs.peer_wantlist(&"c").len(), 3);

    // The peer cancels z; then all three blocks arrive locally.
    bs.handle_decoded("c", wants(vec![WantEntry::cancel(z)]), now);
    assert!(drain(&mut bs, now).is_empty());
    assert_eq!(bs.peer_wantlist(&"c").len(), 2);
    bs.block_added(&x, &x_data);
    bs.block_added(&y, &y_data);
    bs.block_added(&z, &z_data);
    let events = drain(&mut bs, now);
    let m = to(&events, "c");
    assert_eq!(m.payload.len(), 1, "x as a block");
    assert_eq!(m.payload[0].data, x_data);
    assert_eq!(m.presences, vec![presence(y, PresenceType::Have)]);
    assert!(bs.peer_wantlist(&"c").is_empty());
    assert_eq!(bs.stats().peer_wants, 0);
}

#[test]
fn full_wantlist_replaces_the_ledger() {
    let (mut bs, store, now) = setup();
    let (x, _) = block(1, 10);
    let (y, _) = block(2, 10);
    let (z, _) = block(3, 10);
    bs.handle_decoded(
        "c",
        wants(vec![want_block(x, false), want_block(y, false)]),
        now,
    );
    serve(&mut bs, &store, now);
    assert_eq!(bs.peer_wantlist(&"c").len(), 2);
    bs.handle_decoded(
        "c",
        Message {
            full: true,
            wantlist: vec![have(z, false)],
            ..Message::default()
        },
        now,
    );
    serve(&mut bs, &store, now);
    assert_eq!(bs.peer_wantlist(&"c"), vec![(z, WantType::Have)]);
    // An empty full wantlist clears it.
    bs.handle_decoded(
        "c",
        Message {
            full: true,
            ..Message::default()
        },
        now,
    );
    assert!(bs.peer_wantlist(&"c").is_empty());
}

#[test]
fn disconnect_drops_the_ledger_and_pending_lookups() {
    let (mut bs, store, now) = setup();
    let (x, x_data) = block(1, 10);
    let (y, _) = block(2, 10);
    bs.handle_decoded("c", wants(vec![want_block(x, false)]), now);
    serve(&mut bs, &store, now);
    bs.handle_decoded("c", wants(vec![want_block(y, true)]), now);
    // A lookup is outstanding for y when the peer leaves.
    assert_eq!(bs.stats().lookups_in_flight, 1);
    bs.peer_disconnected(&"c", now);
    let s = bs.stats();
    assert_eq!((s.peer_wants, s.lookups_in_flight, s.peers), (0, 0, 0));
    // Its queued NeedBlocks event is gone too, and a late answer is ignored.
    assert!(drain(&mut bs, now).is_empty());
    bs.blocks_found(&"c", vec![(y, Lookup::Missing)]);
    bs.block_added(&x, &x_data);
    assert!(drain(&mut bs, now).is_empty());
}

#[test]
fn ledger_is_bounded_and_refuses_with_dont_have() {
    let now = Instant::now();
    let mut bs = Bitswap::new(Config {
        max_wants_per_peer: 2,
        ..Config::default()
    });
    let store = MemStore::default();
    let cids: Vec<_> = (0..4).map(|i| block(i, 10).0).collect();
    bs.handle_decoded(
        "c",
        wants(vec![
            want_block(cids[0], false),
            want_block(cids[1], false),
            want_block(cids[2], true),
            want_block(cids[3], false),
        ]),
        now,
    );
    let events = serve(&mut bs, &store, now);
    assert_eq!(
        to(&events, "c").presences,
        vec![presence(cids[2], PresenceType::DontHave)]
    );
    assert_eq!(bs.peer_wantlist(&"c").len(), 2);
    assert_eq!(bs.stats().peer_wants_refused, 2);
}

#[test]
fn lookups_are_batched_flow_controlled_and_round_robin() {
    let now = Instant::now();
    let mut bs = Bitswap::new(Config {
        lookup_batch: 2,
        max_lookups_in_flight: 2,
        max_unacked_bytes_per_peer: 1,
        ..Config::default()
    });
    let mut store = MemStore::default();
    let blocks: Vec<_> = (0..6).map(|i| block(i, 1000)).collect();
    for (c, d) in &blocks {
        store.insert(c, d.clone());
    }
    // Priorities: higher first.
    let entries = |r: std::ops::Range<usize>| {
        wants(
            r.map(|i| WantEntry::want(blocks[i].0, WantType::Block, i as i32, false))
                .collect(),
        )
    };
    bs.handle_decoded("a", entries(0..4), now);
    bs.handle_decoded("b", entries(4..6), now);
    let ev = drain(&mut bs, now);
    // Only two CIDs in flight in all: one batch, peer a, its two highest priorities.
    assert_eq!(ev.len(), 1);
    let Event::NeedBlocks { peer, queries } = &ev[0] else {
        panic!()
    };
    assert_eq!(*peer, "a");
    assert_eq!(
        queries.iter().map(|q| q.cid).collect::<Vec<_>>(),
        vec![blocks[3].0, blocks[2].0]
    );
    bs.blocks_found(&"a", cairn_bitswap::answer_queries(&store, queries));
    // a's answer goes out; a now has unacknowledged bytes, so b is looked up next.
    let ev = drain(&mut bs, now);
    assert_eq!(sends(&ev).len(), 1);
    let Some(Event::NeedBlocks { peer, queries }) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(*peer, "b");
    bs.blocks_found(&"b", cairn_bitswap::answer_queries(&store, queries));
    let ev = drain(&mut bs, now);
    // b's answer is out; nobody may be looked up until acknowledgements arrive.
    assert_eq!(sends(&ev).len(), 1);
    assert!(!ev.iter().any(|e| matches!(e, Event::NeedBlocks { .. })));
    assert!(bs.stats().unacked_bytes > 2000);
    bs.message_sent(&"a");
    let ev = drain(&mut bs, now);
    let Some(Event::NeedBlocks { peer, queries }) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(*peer, "a");
    assert_eq!(
        queries.iter().map(|q| q.cid).collect::<Vec<_>>(),
        vec![blocks[1].0, blocks[0].0]
    );
}

#[test]
fn upgrade_to_want_block_during_a_presence_lookup_fetches_the_bytes() {
    let (mut bs, mut store, now) = setup();
    let (x, x_data) = block(1, 5000);
    store.insert(&x, x_data.clone());
    bs.handle_decoded("c", wants(vec![have(x, true)]), now);
    let ev = drain(&mut bs, now);
    let Event::NeedBlocks { queries, .. } = &ev[0] else {
        panic!()
    };
    assert_eq!(queries[0].max_data, 1024);
    let answer = cairn_bitswap::answer_queries(&store, queries);
    assert_eq!(answer[0].1, Lookup::Have { size: 5000 });
    // Before the answer, the peer asks for the block.
    bs.handle_decoded("c", wants(vec![want_block(x, true)]), now);
    bs.blocks_found(&"c", answer);
    let events = serve(&mut bs, &store, now);
    let m = to(&events, "c");
    assert!(m.presences.is_empty(), "{:?}", m.presences);
    assert_eq!(m.payload.len(), 1);
    assert_eq!(m.payload[0].data, x_data);
}

#[test]
fn blocks_over_the_size_limit_are_not_served() {
    let now = Instant::now();
    let mut bs = Bitswap::new(Config {
        max_block_size: 100,
        ..Config::default()
    });
    let mut store = MemStore::default();
    let (x, x_data) = block(1, 200);
    store.insert(&x, x_data);
    bs.handle_decoded("c", wants(vec![want_block(x, true)]), now);
    let events = serve(&mut bs, &store, now);
    let m = to(&events, "c");
    assert!(m.payload.is_empty());
    assert_eq!(m.presences, vec![presence(x, PresenceType::DontHave)]);
    assert!(bs.peer_wantlist(&"c").is_empty());
}

#[test]
fn replies_are_split_under_the_target_size() {
    let (mut bs, mut store, now) = setup();
    let blocks: Vec<_> = (0..10).map(|i| block(i, 256 * 1024)).collect();
    for (c, d) in &blocks {
        store.insert(c, d.clone());
    }
    bs.handle_decoded(
        "c",
        wants(blocks.iter().map(|(c, _)| want_block(*c, true)).collect()),
        now,
    );
    let events = serve(&mut bs, &store, now);
    let msgs = sends(&events);
    assert!(msgs.len() >= 3, "{}", msgs.len());
    let mut n = 0;
    for (_, m) in &msgs {
        assert!(m.encoded_len() <= 1024 * 1024);
        n += m.payload.len();
    }
    assert_eq!(n, 10);
}

#[test]
fn malformed_input_reports_the_peer() {
    let (mut bs, _store, now) = setup();
    bs.handle_message("c", &Bytes::from_static(&[0x0a, 0x05, 0x0a]), now);
    let ev = drain(&mut bs, now);
    assert!(matches!(
        ev.as_slice(),
        [Event::PeerMisbehaved {
            peer: "c",
            reason: Misbehaviour::Malformed(_)
        }]
    ));
    assert_eq!(bs.stats().malformed_messages, 1);
}

#[test]
fn peers_beyond_the_limit_are_ignored() {
    let now = Instant::now();
    let mut bs = Bitswap::new(Config {
        max_peers: 1,
        ..Config::default()
    });
    assert!(bs.peer_connected("a", now));
    assert!(!bs.peer_connected("b", now));
    let (x, _) = block(1, 10);
    bs.handle_decoded("b", wants(vec![want_block(x, true)]), now);
    assert!(drain(&mut bs, now).is_empty());
    assert_eq!(bs.stats().messages_dropped, 1);
}
