//! A bare rust-libp2p peer for adversarial tests (here and in the binary's process tests): TCP,
//! Noise and yamux with a fresh identity, carrying any behaviour — typically
//! [`MemberProtocols`], which speaks Cairn's member protocols with no gate of its own, so a
//! test can send what an honest node never would.

use std::time::Duration;

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, Swarm};

use crate::rpc;

/// Cairn's member protocols, ungated: heads, pieces, membership proofs.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub struct MemberProtocols {
    /// `/cairn/heads/1.0.0`.
    pub heads: request_response::Behaviour<rpc::Codec>,
    /// `/cairn/piece/1.0.0`.
    pub pieces: request_response::Behaviour<rpc::Codec>,
    /// `/cairn/member/1.0.0`.
    pub member: request_response::Behaviour<rpc::Codec>,
}

impl MemberProtocols {
    /// The three protocols, each request given `timeout` for its answer.
    pub fn new(timeout: Duration) -> Self {
        let rr = |p: StreamProtocol| {
            request_response::Behaviour::new(
                [(p, ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(timeout),
            )
        };
        MemberProtocols {
            heads: rr(rpc::HEADS),
            pieces: rr(rpc::PIECES),
            member: rr(rpc::MEMBER),
        }
    }
}

/// A peer with a new identity carrying `behaviour` over TCP (connections kept 60 s idle).
pub fn swarm<B: NetworkBehaviour>(behaviour: B) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .expect("TCP with Noise and yamux")
        .with_behaviour(|_| behaviour)
        .expect("an infallible behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}
