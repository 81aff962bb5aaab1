//! How a node joins the network and how much it takes on: [`NetConfig`], its [`Limits`], the
//! zone a peer's agent string names, and keys from seeds.

use super::*;

/// How the node joins the network.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Listen addresses (`/ip4/127.0.0.1/tcp/4001`, `/ip4/127.0.0.1/udp/4001/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Pre-shared key of a private network (TCP only; QUIC is off then).
    pub psk: Option<[u8; 32]>,
    /// When set, only these peers may connect.
    pub allow: Option<HashSet<PeerId>>,
    /// Kademlia protocol name.
    pub kad_protocol: String,
    /// Addresses other peers should use to reach this node (put in provider records); empty
    /// announces the listen addresses.
    pub announce: Vec<Multiaddr>,
    /// Where the Kademlia record store lives (`dht.redb`); `None` keeps it in memory.
    pub dht_path: Option<PathBuf>,
    /// This node's failure domain, told to peers in its identify agent (`cairn/V zone=Z`).
    pub zone: Option<String>,
    /// The cluster secret members prove; `None`: no peer is a member.
    pub cluster: Option<cairn_crypt::ClusterSecret>,
    /// Connection and request limits.
    pub limits: Limits,
}

/// How much the network takes on.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Connections established with one peer.
    pub per_peer: u32,
    /// Connections established in all.
    pub established: u32,
    /// Incoming connections still in their handshake.
    pub pending_incoming: u32,
    /// Outgoing connections still in their handshake.
    pub pending_outgoing: u32,
    /// No new connection while the process uses more than this share of the machine's memory.
    pub max_memory_fraction: f64,
    /// Request streams (heads, pieces) open at once on one connection. A member's writes,
    /// read-ahead, repair and heads share them (32 was too few for one busy write); a
    /// stranger's are read (at most `rpc::MAX_REQUEST` each, as the bytes arrive) and dropped.
    pub streams_per_connection: usize,
    /// Member requests handled at once, over all peers (the rest wait their turn).
    pub handlers: usize,
    /// Member requests one peer may have in flight; past that they are refused.
    pub requests_per_peer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_peer: 4,
            established: 1024,
            pending_incoming: 128,
            pending_outgoing: 256,
            max_memory_fraction: 0.8,
            streams_per_connection: 128,
            handlers: 16,
            requests_per_peer: 512,
        }
    }
}

/// The zone a Cairn peer's identify agent names, if any.
pub fn zone_of_agent(agent: &str) -> Option<&str> {
    agent
        .split_whitespace()
        .find_map(|word| word.strip_prefix("zone="))
        .filter(|z| !z.is_empty())
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: vec![
                "/ip4/127.0.0.1/tcp/4001".parse().expect("valid multiaddr"),
                "/ip4/127.0.0.1/udp/4001/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            ],
            bootstrap: Vec::new(),
            psk: None,
            allow: None,
            kad_protocol: DEFAULT_KAD_PROTOCOL.into(),
            announce: Vec::new(),
            dht_path: None,
            zone: None,
            cluster: None,
            limits: Limits::default(),
        }
    }
}

/// The libp2p keypair of a node identity seed (the 32 bytes of `identity.key`).
pub fn keypair_from_seed(seed: [u8; 32]) -> Result<Keypair, NetError> {
    Keypair::ed25519_from_bytes(seed).map_err(|e| NetError::Setup(e.to_string()))
}
