//! Bitswap 1.2.0 (`/ipfs/bitswap/1.2.0`) as a sans-I/O state machine: no sockets, no clocks,
//! no async runtime. The network layer feeds it connections, received bytes and the time, and
//! carries out the [`Event`]s it returns.
//!
//! * [`message`] — the protobuf messages, their encoding and defensive decoding, and the
//!   unsigned-varint framing of a stream.
//! * [`prefix`] — CID prefixes of payload blocks, rebuilding a received block's CID by hashing
//!   it (sha2-256 only), verification.
//! * [`Bitswap`] (module `bitswap`) — the engine: configuration and bounds, events, the block
//!   lookup contract, counters, the peer registry and flow control.
//! * `server` — per-peer ledgers (what each peer wants from us), lookups, HAVE / DONT_HAVE /
//!   block answers, serving blocks that arrive later.
//! * `client` — our wants: choosing peers, WANT_HAVE / WANT_BLOCK, hedging, timeouts,
//!   cancels, rejecting unrequested blocks.
//! * `outbox` — merging what client and server tell a peer into size-capped messages.
//!
//! Typical driving loop (the libp2p behaviour does the same with streams and a timer):
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use cairn_bitswap::{Bitswap, Config, Event, Lookup, answer_queries, BlockSource};
//! use cairn_dag::{Cid, CidVersion, RAW, block::cid_of};
//!
//! struct Store(Vec<(Cid, Bytes)>);
//! impl BlockSource for Store {
//!     fn lookup(&self, cid: &Cid, max_data: usize) -> Lookup {
//!         match self.0.iter().find(|(c, _)| c.hash() == cid.hash()) {
//!             Some((_, d)) if d.len() <= max_data => Lookup::Block(d.clone()),
//!             Some((_, d)) => Lookup::Have { size: d.len() },
//!             None => Lookup::Missing,
//!         }
//!     }
//! }
//!
//! let data = Bytes::from_static(b"hello bitswap");
//! let cid = cid_of(CidVersion::V1, RAW, &data).unwrap();
//! let server_store = Store(vec![(cid, data.clone())]);
//! let now = Instant::now();
//! let (mut client, mut server) = (Bitswap::new(Config::default()), Bitswap::new(Config::default()));
//! client.peer_connected("server", now);
//! server.peer_connected("client", now);
//! client.want(cid, 1, now).unwrap();
//!
//! let mut got = None;
//! for _ in 0..10 {
//!     while let Some(ev) = client.poll(now) {
//!         match ev {
//!             Event::Send { message, .. } => {
//!                 client.message_sent(&"server");
//!                 server.handle_message("client", &message.encode().into(), now);
//!             }
//!             Event::BlockReceived { data, .. } => got = Some(data),
//!             _ => {}
//!         }
//!     }
//!     while let Some(ev) = server.poll(now) {
//!         match ev {
//!             Event::Send { message, .. } => {
//!                 server.message_sent(&"client");
//!                 client.handle_message("server", &message.encode().into(), now);
//!             }
//!             Event::NeedBlocks { peer, queries } => {
//!                 server.blocks_found(&peer, answer_queries(&server_store, &queries));
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(got, Some(data));
//! ```
//!
//! Memory is bounded everywhere by [`Config`]; see `docs/bitswap.md` for the list and for what
//! of the spec is implemented.

#![warn(missing_docs)]

mod bitswap;
mod client;
mod error;
pub mod message;
mod outbox;
pub mod prefix;
mod server;
mod types;

pub use bitswap::Bitswap;
pub use error::BitswapError;
pub use message::{
    BlockPresence, FrameDecoder, Limits, Message, PROTOCOL, PayloadBlock, PresenceType, WantEntry,
    WantType,
};
pub use prefix::Prefix;
pub use types::{
    BlockQuery, BlockSource, Config, Event, Lookup, Misbehaviour, Stats, answer_queries,
};
