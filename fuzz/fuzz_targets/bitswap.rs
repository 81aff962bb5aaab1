//! An untrusted Bitswap stream from one peer: the unsigned-varint framing (`FrameDecoder`, fed
//! in pieces of a fuzzed size), each body through `Message::decode` with the default limits,
//! and the same bodies through the engine (`Bitswap::handle_message`) — server ledgers,
//! lookups answered from a small store, client wants for a few CIDs, the outbox — drained to
//! the end after each message.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_bitswap::message::{FrameDecoder, Limits};
use cairn_bitswap::{
    Bitswap, BlockSource, Config, Event, Lookup, Message, answer_queries,
    message::DEFAULT_MAX_MESSAGE_SIZE,
};
use cairn_dag::Cid;
use libfuzzer_sys::fuzz_target;

struct Store(Vec<(Cid, Bytes)>);

impl BlockSource for Store {
    fn lookup(&self, cid: &Cid, max_data: usize) -> Lookup {
        match self.0.iter().find(|(c, _)| c.hash() == cid.hash()) {
            Some((_, d)) if d.len() <= max_data => Lookup::Block(d.clone()),
            Some((_, d)) => Lookup::Have { size: d.len() },
            None => Lookup::Missing,
        }
    }
}

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("bitswap"),
    |data: &[u8]| {
        let Some((&piece, stream)) = data.split_first() else { return };
        let piece = (piece as usize).max(1);
        let now = Instant::now();
        let (held, wanted) = cairn_fuzz::seeds::bitswap_blocks();
        let store = Store(held);
        let mut engine: Bitswap<u8> = Bitswap::new(Config::default());
        engine.peer_connected(1, now);
        engine.peer_connected(2, now);
        for (i, (cid, _)) in wanted.iter().enumerate() {
            let _ = engine.want(*cid, i as i32, now);
        }
        let mut frames = FrameDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        let mut t = now;
        'stream: for chunk in stream.chunks(piece) {
            frames.push(chunk);
            loop {
                let body = match frames.next_frame() {
                    Ok(Some(body)) => body,
                    Ok(None) => break,
                    Err(_) => break 'stream,
                };
                if let Ok(msg) = Message::decode(&body, &Limits::default()) {
                    let again = Message::decode(&Bytes::from(msg.encode()), &Limits::default());
                    assert_eq!(again.ok().as_ref(), Some(&msg), "decode ∘ encode ∘ decode");
                }
                t += Duration::from_millis(700);
                engine.handle_message(1, &body, t);
                let mut events = 0;
                while let Some(event) = engine.poll(t) {
                    events += 1;
                    assert!(events < 100_000, "the engine does not settle");
                    match event {
                        Event::Send { peer, .. } => engine.message_sent(&peer),
                        Event::NeedBlocks { peer, queries } => {
                            let answers = answer_queries(&store, &queries);
                            engine.blocks_found(&peer, answers);
                        }
                        Event::BlockReceived { cid, data, .. } => engine.block_added(&cid, &data),
                        Event::PeerMisbehaved { .. } | Event::WantFailed { .. } => {}
                    }
                }
            }
        }
    }
);
