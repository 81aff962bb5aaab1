//! The network's Prometheus metrics: libp2p's own (connections, identify, Kademlia, ping, via
//! `libp2p-metrics`) and Cairn's — connected peers, Bitswap blocks and bytes sent and
//! received, wantlist sizes — all in the node's one registry.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters a [`cairn_bitswap::Stats`] snapshot advances (counters only move forward: the
/// difference from the last snapshot is added).
struct StatCounter {
    counter: Counter,
    last: AtomicU64,
}

impl StatCounter {
    fn register(registry: &mut Registry, name: &str, help: &str) -> Self {
        let counter = Counter::default();
        registry.register(name, help, counter.clone());
        StatCounter {
            counter,
            last: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: u64) {
        let last = self.last.swap(value, Ordering::Relaxed);
        self.counter.inc_by(value.saturating_sub(last));
    }
}

/// Every metric of the network layer.
pub struct NetMetrics {
    pub(crate) libp2p: libp2p::metrics::Metrics,
    peers: Gauge,
    members: Gauge,
    refused: Family<Vec<(String, String)>, Counter>,
    blocks_received: StatCounter,
    bytes_received: StatCounter,
    blocks_sent: StatCounter,
    bytes_sent: StatCounter,
    misbehaviours: StatCounter,
    wants: Gauge,
    peer_wants: Gauge,
}

impl std::fmt::Debug for NetMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetMetrics")
    }
}

impl NetMetrics {
    /// Registers every metric in `registry` (libp2p's under `libp2p_`, Cairn's under
    /// `cairn_`).
    pub fn new(registry: &mut Registry) -> Self {
        let libp2p = libp2p::metrics::Metrics::new(registry);
        let r = registry.sub_registry_with_prefix("cairn");
        let peers = Gauge::default();
        r.register(
            "connected_peers",
            "Peers with an open connection",
            peers.clone(),
        );
        let members = Gauge::default();
        r.register(
            "cluster_members_connected",
            "Connected peers that proved this node's cluster secret",
            members.clone(),
        );
        let refused = Family::default();
        r.register(
            "p2p_refused",
            "Requests refused to peers by reason (member protocol from a stranger, failed proof, unpublished block)",
            refused.clone(),
        );
        let wants = Gauge::default();
        r.register(
            "bitswap_wantlist",
            "Blocks this node wants from the network",
            wants.clone(),
        );
        let peer_wants = Gauge::default();
        r.register(
            "bitswap_peer_wantlists",
            "Entries in the wantlists peers sent us",
            peer_wants.clone(),
        );
        NetMetrics {
            libp2p,
            peers,
            members,
            refused,
            blocks_received: StatCounter::register(
                r,
                "bitswap_blocks_received",
                "Blocks received by Bitswap",
            ),
            bytes_received: StatCounter::register(
                r,
                "bitswap_block_bytes_received",
                "Block bytes received by Bitswap",
            ),
            blocks_sent: StatCounter::register(r, "bitswap_blocks_sent", "Blocks sent by Bitswap"),
            bytes_sent: StatCounter::register(
                r,
                "bitswap_block_bytes_sent",
                "Block bytes sent by Bitswap",
            ),
            misbehaviours: StatCounter::register(
                r,
                "bitswap_misbehaviours",
                "Peers caught sending bad or unrequested blocks or malformed messages",
            ),
            wants,
            peer_wants,
        }
    }

    pub(crate) fn set_peers(&self, n: usize) {
        self.peers.set(n as i64);
    }

    pub(crate) fn set_members(&self, n: usize) {
        self.members.set(n as i64);
    }

    /// Counts a refusal (`what`: `heads`, `pieces`, `proof`, `block`).
    pub(crate) fn refused(&self, what: &str, n: u64) {
        self.refused
            .get_or_create(&vec![("what".to_owned(), what.to_owned())])
            .inc_by(n);
    }

    pub(crate) fn observe_bitswap(&self, stats: &cairn_bitswap::Stats) {
        self.blocks_received.observe(stats.blocks_received);
        self.bytes_received.observe(stats.block_bytes_received);
        self.blocks_sent.observe(stats.blocks_sent);
        self.bytes_sent.observe(stats.block_bytes_sent);
        self.misbehaviours.observe(stats.misbehaviours);
        self.wants.set(stats.wants as i64);
        self.peer_wants.set(stats.peer_wants as i64);
    }
}
