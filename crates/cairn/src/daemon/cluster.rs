//! Joining a cluster: the piece protocol over libp2p as the cluster's transport, the members
//! job (every connected peer that proved the cluster secret is a member; a heartbeat each
//! tick), the repair job (piece GC, then check and repair), and the order in which
//! a missing block is looked for (the cluster's placement first, then Bitswap and the DHT).

use std::sync::Arc;
use std::time::Duration;

use cairn_cluster::{Cluster, ClusterConfig, Member, Transport};
use cairn_net::NetHandle;
use cairn_node::worker::Worked;
use cairn_node::{Node, NodeBuilder, NodeError};
use futures::future::BoxFuture;

use crate::daemon::config::ClusterSettings;

/// How often membership is refreshed from the network.
pub const MEMBERS_TICK: Duration = Duration::from_secs(1);

/// `/cairn/piece/1.0.0` over the node's swarm.
struct NetTransport(NetHandle);

impl Transport for NetTransport {
    fn call(&self, peer: Vec<u8>, request: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let net = self.0.clone();
        Box::pin(async move {
            let peer = cairn_net::libp2p::PeerId::from_bytes(&peer).map_err(|e| e.to_string())?;
            net.piece_request(peer, request)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Makes the node being built a cluster member: its writes are placed, its misses read from
/// the cluster, through the network `net`.
pub fn member(node: NodeBuilder, net: &NetHandle, settings: &ClusterSettings) -> NodeBuilder {
    tracing::info!(redundancy = %settings.redundancy, zone = ?settings.zone, "cluster storage on");
    node.cluster(
        ClusterConfig {
            me: net.peer_id().to_bytes(),
            zone: settings.zone.clone(),
            policy: settings.redundancy,
            down_after: settings.down_after,
            piece_grace: settings.piece_grace,
        },
        Arc::new(NetTransport(net.clone())),
    )
}

/// The members job: every connected peer that proved the cluster secret is a member (its
/// zone is what its identify agent says).
pub struct Members {
    pub net: NetHandle,
    pub cluster: Cluster,
}

impl cairn_node::worker::Worker for Members {
    fn name(&self) -> &'static str {
        "members"
    }

    async fn work(&mut self, _node: &Node) -> Result<Worked, NodeError> {
        let Ok(peers) = self.net.peers().await else {
            return Ok(Worked::idle(""));
        };
        let members: Vec<Member> = peers
            .iter()
            .filter(|p| p.member)
            .map(|p| Member {
                id: p.peer_id.to_bytes(),
                zone: p
                    .agent
                    .as_deref()
                    .and_then(cairn_net::zone_of_agent)
                    .map(str::to_owned),
            })
            .collect();
        self.cluster.observe(&members);
        Ok(Worked::idle(""))
    }
}

/// The repair job: a piece GC pass (units whose owners no longer reference them are freed
/// here: `cairn_cluster::collect`), then a check-and-repair pass over the pieces this node
/// holds (both paged, so one run stays short; the next continues where it stopped). Piece GC
/// comes first so that a returning holder frees a dead unit before the check could re-create
/// its pieces elsewhere.
pub struct Repair {
    pub cluster: Cluster,
}

/// Units per repair run.
const REPAIR_PAGE: usize = 256;

impl cairn_node::worker::Worker for Repair {
    fn name(&self) -> &'static str {
        "repair"
    }

    async fn work(&mut self, _node: &Node) -> Result<Worked, NodeError> {
        let collected = self
            .cluster
            .collect_pass(self.cluster.piece_grace(), REPAIR_PAGE)
            .await
            .map_err(NodeError::from)?;
        let report = self
            .cluster
            .check_pass(cairn_cluster::repair::Mode::Repair, REPAIR_PAGE)
            .await
            .map_err(NodeError::from)?;
        Ok(Worked::idle(format!(
            "{}; {}",
            report.summary(),
            collected.summary()
        )))
    }
}

/// `cairn_objects_by_margin{margin="N"|"lost"}`: how many objects survive N more node losses,
/// as last counted (by the margins job, or a `cairn cluster check --objects`).
#[derive(Clone)]
pub struct MarginGauges(
    prometheus_client::metrics::family::Family<
        Vec<(String, String)>,
        prometheus_client::metrics::gauge::Gauge,
    >,
);

impl MarginGauges {
    /// Registers the family.
    pub fn new(registry: &mut prometheus_client::registry::Registry) -> Self {
        let family = prometheus_client::metrics::family::Family::default();
        registry.register(
            "cairn_objects_by_margin",
            "Objects by how many more node losses they survive (\"lost\": unreadable now)",
            family.clone(),
        );
        MarginGauges(family)
    }

    /// Sets the gauges from the node's last count.
    pub fn refresh(&self, node: &Node) {
        let Some(last) = node.replication().last_margins() else {
            return;
        };
        self.0.clear();
        for (margin, count) in &last.by_margin {
            self.0
                .get_or_create(&vec![("margin".to_owned(), margin.clone())])
                .set(*count as i64);
        }
    }
}

/// The margins job: a soft check of every object of every bucket (kept for the metrics).
pub struct Margins;

impl cairn_node::worker::Job for Margins {
    fn name(&self) -> &'static str {
        "margins"
    }

    fn run(&mut self, node: &Node) -> Result<String, NodeError> {
        let all = node.replication().all_margins(false)?;
        Ok(format!("{} objects: {:?}", all.objects, all.by_margin))
    }
}

#[cfg(test)]
mod tests {
    /// `promote` recognises a bucket owner among the connected members by its peer id,
    /// derived from the owner's ed25519 key in the node layer: it must be libp2p's.
    #[test]
    fn owner_keys_map_to_libp2p_peer_ids() {
        let id = cairn_node::identity::Identity::from_seed([3; 32]);
        let keypair = cairn_net::keypair_from_seed(id.secret_seed()).unwrap();
        assert_eq!(
            cairn_net::libp2p::PeerId::from(keypair.public()).to_bytes(),
            cairn_node::identity::peer_id_of(&id.public_key())
        );
    }
}
