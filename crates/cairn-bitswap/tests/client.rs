//! The client side: who is asked what, HAVE → WANT_BLOCK, DONT_HAVE → next peer, timeouts and
//! hedging, forged blocks, cancels, providers, failures.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_bitswap::{
    BitswapError, BlockPresence, Config, Event, Message, Misbehaviour, PayloadBlock, Prefix,
    PresenceType, WantEntry, WantType,
};
use cairn_dag::{Cid, CidVersion, DAG_PB, block::cid_of};
use common::*;

type Bs = cairn_bitswap::Bitswap<Peer>;

fn engine(config: Config, peers: &[Peer], now: Instant) -> Bs {
    let mut bs = Bs::new(config);
    for p in peers {
        bs.peer_connected(p, now);
    }
    assert!(drain(&mut bs, now).is_empty());
    bs
}

fn reply_presence(cid: Cid, p: PresenceType) -> Message {
    Message {
        presences: vec![BlockPresence { cid, presence: p }],
        ..Message::default()
    }
}

fn reply_block(cid: &Cid, data: &Bytes) -> Message {
    Message {
        payload: vec![PayloadBlock::new(cid, data.clone())],
        ..Message::default()
    }
}

/// (want type, sendDontHave) of every want entry for `cid` sent to `peer`.
fn asked(events: &[Event<Peer>], peer: Peer, cid: &Cid) -> Vec<(WantType, bool)> {
    to(events, peer)
        .wantlist
        .iter()
        .filter(|e| e.cid == *cid && !e.cancel)
        .map(|e| (e.want_type, e.send_dont_have))
        .collect()
}

fn cancelled(events: &[Event<Peer>], peer: Peer, cid: &Cid) -> bool {
    to(events, peer)
        .wantlist
        .iter()
        .any(|e| e.cid == *cid && e.cancel)
}

fn received(events: &[Event<Peer>]) -> Vec<(Cid, Bytes, Peer)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::BlockReceived { cid, data, from } => Some((*cid, data.clone(), *from)),
            _ => None,
        })
        .collect()
}

const BLOCK: (WantType, bool) = (WantType::Block, true);
const HAVE: (WantType, bool) = (WantType::Have, true);

#[test]
fn first_round_is_want_block_to_one_and_want_have_to_others() {
    let now = Instant::now();
    let mut bs = engine(Config::default(), &["a", "b", "c"], now);
    let (x, _) = block(1, 100);
    bs.want(x, 5, now).unwrap();
    let ev = drain(&mut bs, now);
    assert_eq!(sends(&ev).len(), 3);
    assert_eq!(asked(&ev, "a", &x), vec![BLOCK]);
    assert_eq!(asked(&ev, "b", &x), vec![HAVE]);
    assert_eq!(asked(&ev, "c", &x), vec![HAVE]);
    assert_eq!(to(&ev, "a").wantlist[0].priority, 5);
    assert_eq!(bs.wantlist(), vec![x]);
}

#[test]
fn have_then_want_block_then_cancel_to_the_others() {
    let now = Instant::now();
    let config = Config {
        direct_block_peers: 0,
        ..Config::default()
    };
    let mut bs = engine(config, &["a", "b", "c"], now);
    let (x, data) = block(1, 2000);
    bs.want(x, 1, now).unwrap();
    let ev = drain(&mut bs, now);
    for p in ["a", "b", "c"] {
        assert_eq!(asked(&ev, p, &x), vec![HAVE], "{p}");
    }
    // b has it: it gets the WANT_BLOCK, nobody else.
    bs.handle_decoded("b", reply_presence(x, PresenceType::Have), now);
    let ev = drain(&mut bs, now);
    assert_eq!(sends(&ev).len(), 1);
    assert_eq!(asked(&ev, "b", &x), vec![BLOCK]);
    // A second HAVE does not start a second WANT_BLOCK (before the hedge delay).
    bs.handle_decoded("c", reply_presence(x, PresenceType::Have), now);
    assert!(drain(&mut bs, now).is_empty());
    // The block: delivered, and the others are told to forget the want.
    bs.handle_decoded("b", reply_block(&x, &data), now);
    let ev = drain(&mut bs, now);
    assert_eq!(received(&ev), vec![(x, data, "b")]);
    assert!(cancelled(&ev, "a", &x));
    assert!(cancelled(&ev, "c", &x));
    assert!(!cancelled(&ev, "b", &x));
    assert!(bs.wantlist().is_empty());
    assert_eq!(bs.next_deadline(), None);
    let s = bs.stats();
    assert_eq!((s.blocks_received, s.block_bytes_received), (1, 2000));
    assert_eq!((s.haves_received, s.cancels_sent), (2, 2));
}

#[test]
fn dont_have_moves_on_and_the_want_fails_when_nobody_has_it() {
    let now = Instant::now();
    let config = Config {
        have_fanout: 0,
        ..Config::default()
    };
    let starve = config.starve_timeout;
    let mut bs = engine(config, &["a", "b", "c"], now);
    let (x, _) = block(1, 10);
    bs.want(x, 1, now).unwrap();
    let ev = drain(&mut bs, now);
    assert_eq!(asked(&ev, "a", &x), vec![BLOCK]);
    assert_eq!(sends(&ev).len(), 1);
    for (p, next) in [("a", Some("b")), ("b", Some("c")), ("c", None)] {
        bs.handle_decoded(p, reply_presence(x, PresenceType::DontHave), now);
        let ev = drain(&mut bs, now);
        match next {
            Some(n) => assert_eq!(asked(&ev, n, &x), vec![BLOCK]),
            None => assert!(ev.is_empty(), "{ev:?}"),
        }
    }
    // Nobody left: the want waits for new candidates, then fails.
    assert_eq!(bs.next_deadline(), Some(now + starve));
    assert!(drain(&mut bs, now + starve - Duration::from_millis(1)).is_empty());
    let ev = drain(&mut bs, now + starve);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::WantFailed { cid } if *cid == x))
    );
    // Servers keep DONT_HAVE'd wants waiting; they are cancelled.
    for p in ["a", "b", "c"] {
        assert!(cancelled(&ev, p, &x), "{p}");
    }
    assert!(bs.wantlist().is_empty());
    assert_eq!(bs.stats().wants_failed, 1);
}

#[test]
fn unanswered_want_block_is_hedged_and_late_duplicates_are_harmless() {
    let now = Instant::now();
    let config = Config::default();
    let hedge = config.hedge_delay;
    let mut bs = engine(config, &["a", "b", "c"], now);
    let (x, data) = block(1, 500);
    bs.want(x, 1, now).unwrap();
    drain(&mut bs, now);
    // b says HAVE while a's WANT_BLOCK is outstanding: b is kept in reserve.
    bs.handle_decoded("b", reply_presence(x, PresenceType::Have), now);
    assert!(drain(&mut bs, now).is_empty());
    assert_eq!(bs.next_deadline(), Some(now + hedge));
    // a is silent: after the hedge delay b is asked for the block too.
    let t1 = now + hedge;
    let ev = drain(&mut bs, t1);
    assert_eq!(asked(&ev, "b", &x), vec![BLOCK]);
    assert_eq!(sends(&ev).len(), 1);
    // After another delay, c (still a pending WANT_HAVE) is asked as well: three at most.
    let t2 = t1 + hedge;
    let ev = drain(&mut bs, t2);
    assert_eq!(asked(&ev, "c", &x), vec![BLOCK]);
    assert!(drain(&mut bs, t2 + hedge).is_empty());
    // a answers first; b and c get cancels.
    bs.handle_decoded("a", reply_block(&x, &data), t2);
    let ev = drain(&mut bs, t2);
    assert_eq!(received(&ev), vec![(x, data.clone(), "a")]);
    assert!(cancelled(&ev, "b", &x) && cancelled(&ev, "c", &x));
    // b's copy crosses the cancel: a duplicate, not misbehaviour.
    bs.handle_decoded("b", reply_block(&x, &data), t2);
    assert!(drain(&mut bs, t2).is_empty());
    let s = bs.stats();
    assert_eq!((s.duplicate_blocks_received, s.misbehaviours), (1, 0));
}

#[test]
fn slow_want_haves_start_a_new_round_and_time_out() {
    let now = Instant::now();
    let config = Config {
        direct_block_peers: 0,
        have_fanout: 1,
        ..Config::default()
    };
    let (hedge, have_timeout) = (config.hedge_delay, config.have_timeout);
    let mut bs = engine(config, &["a", "b"], now);
    let (x, _) = block(1, 10);
    bs.want(x, 1, now).unwrap();
    let ev = drain(&mut bs, now);
    assert_eq!(asked(&ev, "a", &x), vec![HAVE]);
    assert_eq!(sends(&ev).len(), 1);
    let ev = drain(&mut bs, now + hedge);
    assert_eq!(asked(&ev, "b", &x), vec![HAVE]);
    // Both time out; a late HAVE from a is still used.
    assert!(drain(&mut bs, now + hedge + have_timeout).is_empty());
    bs.handle_decoded(
        "a",
        reply_presence(x, PresenceType::Have),
        now + hedge + have_timeout,
    );
    let ev = drain(&mut bs, now + hedge + have_timeout);
    assert_eq!(asked(&ev, "a", &x), vec![BLOCK]);
}

#[test]
fn want_block_timeout_moves_to_the_next_peer() {
    let now = Instant::now();
    let config = Config {
        have_fanout: 0,
        max_block_requests: 1,
        ..Config::default()
    };
    let block_timeout = config.block_timeout;
    let mut bs = engine(config, &["a", "b"], now);
    let (x, data) = block(1, 10);
    bs.want(x, 1, now).unwrap();
    assert_eq!(asked(&drain(&mut bs, now), "a", &x), vec![BLOCK]);
    assert_eq!(bs.next_deadline(), Some(now + block_timeout));
    let ev = drain(&mut bs, now + block_timeout);
    assert_eq!(asked(&ev, "b", &x), vec![BLOCK]);
    // a's late block is still taken.
    bs.handle_decoded("a", reply_block(&x, &data), now + block_timeout);
    let ev = drain(&mut bs, now + block_timeout);
    assert_eq!(received(&ev), vec![(x, data, "a")]);
    assert!(cancelled(&ev, "b", &x));
}

#[test]
fn forged_block_reports_the_peer_and_wants_elsewhere() {
    let now = Instant::now();
    let config = Config {
        have_fanout: 0,
        ..Config::default()
    };
    let mut bs = engine(config, &["a", "b"], now);
    let (x, data) = block(1, 100);
    bs.want(x, 1, now).unwrap();
    assert_eq!(asked(&drain(&mut bs, now), "a", &x), vec![BLOCK]);
    // a answers with other bytes under x's prefix.
    let forged = Message {
        payload: vec![PayloadBlock {
            prefix: Prefix::of(&x),
            data: Bytes::from_static(b"not the block you want"),
        }],
        ..Message::default()
    };
    bs.handle_decoded("a", forged, now);
    let ev = drain(&mut bs, now);
    assert!(received(&ev).is_empty());
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::PeerMisbehaved {
            peer: "a",
            reason: Misbehaviour::UnrequestedBlock(_)
        }
    )));
    assert_eq!(asked(&ev, "b", &x), vec![BLOCK]);
    bs.handle_decoded("b", reply_block(&x, &data), now);
    assert_eq!(received(&drain(&mut bs, now)), vec![(x, data, "b")]);
    // a is not asked again until it reconnects.
    let (y, _) = block(2, 10);
    bs.want(y, 1, now).unwrap();
    let ev = drain(&mut bs, now);
    assert!(asked(&ev, "a", &y).is_empty());
    assert_eq!(asked(&ev, "b", &y), vec![BLOCK]);
    let s = bs.stats();
    assert_eq!((s.misbehaviours, s.unrequested_blocks_received), (1, 1));
}

#[test]
fn unverifiable_prefix_is_misbehaviour() {
    let now = Instant::now();
    let mut bs = engine(Config::default(), &["a"], now);
    let blake3 = Message {
        payload: vec![PayloadBlock {
            prefix: Prefix::parse(&[1, 0x55, 0x1e, 0x20]).unwrap(),
            data: Bytes::from_static(b"x"),
        }],
        ..Message::default()
    };
    bs.handle_decoded("a", blake3, now);
    let ev = drain(&mut bs, now);
    assert!(matches!(
        ev.as_slice(),
        [Event::PeerMisbehaved {
            peer: "a",
            reason: Misbehaviour::BadBlock(BitswapError::Unsupported(_))
        }]
    ));
}

#[test]
fn cancel_want_counts_readers_and_cancels_everywhere() {
    let now = Instant::now();
    let mut bs = engine(Config::default(), &["a", "b"], now);
    let (x, _) = block(1, 10);
    bs.want(x, 1, now).unwrap();
    bs.want(x, 1, now).unwrap();
    drain(&mut bs, now);
    bs.cancel_want(&x, now);
    assert!(drain(&mut bs, now).is_empty());
    assert_eq!(bs.wantlist(), vec![x]);
    bs.cancel_want(&x, now);
    let ev = drain(&mut bs, now);
    assert!(cancelled(&ev, "a", &x) && cancelled(&ev, "b", &x));
    assert!(bs.wantlist().is_empty());
    assert_eq!(bs.next_deadline(), None);
    // Want and cancel in quick succession: the last word to each peer is the cancel.
    let (y, _) = block(2, 10);
    bs.want(y, 1, now).unwrap();
    bs.cancel_want(&y, now);
    let ev = drain(&mut bs, now);
    for p in ["a", "b"] {
        let last = to(&ev, p)
            .wantlist
            .into_iter()
            .rfind(|e| e.cid == y)
            .unwrap();
        assert!(last.cancel, "{p}");
    }
}

#[test]
fn providers_are_asked_first_and_revive_a_starving_want() {
    let now = Instant::now();
    let config = Config {
        have_fanout: 0,
        ..Config::default()
    };
    let mut bs = engine(config, &[], now);
    let (x, data) = block(1, 10);
    bs.want(x, 1, now).unwrap();
    assert!(drain(&mut bs, now).is_empty());
    // Nobody to ask: the starve timer runs.
    assert!(bs.next_deadline().is_some());
    let later = now + Duration::from_secs(3);
    bs.add_providers(&x, ["p1", "p2"], later);
    let ev = drain(&mut bs, later);
    assert_eq!(asked(&ev, "p1", &x), vec![BLOCK]);
    assert!(asked(&ev, "p2", &x).is_empty());
    bs.handle_decoded("p1", reply_presence(x, PresenceType::DontHave), later);
    assert_eq!(asked(&drain(&mut bs, later), "p2", &x), vec![BLOCK]);
    bs.handle_decoded("p2", reply_block(&x, &data), later);
    assert_eq!(received(&drain(&mut bs, later)), vec![(x, data, "p2")]);
}

#[test]
fn connections_and_disconnections_redirect_wants() {
    let now = Instant::now();
    let config = Config {
        have_fanout: 0,
        ..Config::default()
    };
    let mut bs = engine(config, &["a", "b"], now);
    let (x, _) = block(1, 10);
    bs.want(x, 1, now).unwrap();
    assert_eq!(asked(&drain(&mut bs, now), "a", &x), vec![BLOCK]);
    bs.peer_disconnected(&"a", now);
    assert_eq!(asked(&drain(&mut bs, now), "b", &x), vec![BLOCK]);
    bs.handle_decoded("b", reply_presence(x, PresenceType::DontHave), now);
    assert!(drain(&mut bs, now).is_empty());
    // Starving; a new peer is asked at once.
    bs.peer_connected("c", now);
    assert_eq!(asked(&drain(&mut bs, now), "c", &x), vec![BLOCK]);
}

#[test]
fn unsolicited_have_is_used() {
    let now = Instant::now();
    let config = Config {
        have_fanout: 0,
        ..Config::default()
    };
    let mut bs = engine(config, &["a"], now);
    let (x, _) = block(1, 10);
    bs.want(x, 1, now).unwrap();
    drain(&mut bs, now);
    bs.handle_decoded("a", reply_presence(x, PresenceType::DontHave), now);
    drain(&mut bs, now);
    bs.handle_decoded("z", reply_presence(x, PresenceType::Have), now);
    assert_eq!(asked(&drain(&mut bs, now), "z", &x), vec![BLOCK]);
}

#[test]
fn cidv0_and_v1_names_of_one_block_share_a_want() {
    let now = Instant::now();
    let mut bs = engine(Config::default(), &["a"], now);
    let data = Bytes::from_static(b"\x0a\x02\x08\x01");
    let v0 = cid_of(CidVersion::V0, DAG_PB, &data).unwrap();
    let v1 = cid_of(CidVersion::V1, DAG_PB, &data).unwrap();
    bs.want(v0, 1, now).unwrap();
    bs.want(v1, 1, now).unwrap();
    let ev = drain(&mut bs, now);
    assert_eq!(to(&ev, "a").wantlist.len(), 1);
    // The server answers with a CIDv1 prefix; both readers get the block.
    bs.handle_decoded("a", reply_block(&v1, &data), now);
    let got: Vec<Cid> = received(&drain(&mut bs, now))
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, vec![v0, v1]);
}

#[test]
fn legacy_1_0_blocks_are_accepted() {
    let now = Instant::now();
    let mut bs = engine(Config::default(), &["a"], now);
    let data = Bytes::from_static(b"\x0a\x02\x08\x01");
    let v0 = cid_of(CidVersion::V0, DAG_PB, &data).unwrap();
    bs.want(v0, 1, now).unwrap();
    drain(&mut bs, now);
    let m = Message {
        blocks: vec![data.clone()],
        ..Message::default()
    };
    bs.handle_message("a", &Bytes::from(m.encode()), now);
    assert_eq!(received(&drain(&mut bs, now)), vec![(v0, data, "a")]);
}

#[test]
fn unsupported_and_too_many_wants_are_refused() {
    let now = Instant::now();
    let mut bs = engine(
        Config {
            max_wants: 1,
            ..Config::default()
        },
        &[],
        now,
    );
    let mh = multihash::Multihash::<64>::wrap(0x1e, &[0u8; 32]).unwrap();
    let blake3 = Cid::new_v1(0x55, mh);
    assert!(matches!(
        bs.want(blake3, 1, now),
        Err(BitswapError::Unsupported(_))
    ));
    bs.want(block(1, 10).0, 1, now).unwrap();
    assert_eq!(
        bs.want(block(2, 10).0, 1, now),
        Err(BitswapError::TooManyWants { max: 1 })
    );
}

#[test]
fn wants_are_sent_with_send_dont_have() {
    // Helia and boxo only answer DONT_HAVE when asked to; every want we send asks.
    let now = Instant::now();
    let mut bs = engine(Config::default(), &["a", "b"], now);
    for i in 0..5 {
        bs.want(block(i, 10).0, 1, now).unwrap();
    }
    let ev = drain(&mut bs, now);
    let all: Vec<WantEntry> = sends(&ev)
        .into_iter()
        .flat_map(|(_, m)| m.wantlist)
        .collect();
    assert_eq!(all.len(), 10);
    assert!(all.iter().all(|e| e.send_dont_have && !e.cancel));
}
