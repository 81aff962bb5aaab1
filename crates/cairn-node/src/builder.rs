//! [`NodeBuilder`]: a node is built once with everything it is wired to — how its roots are
//! built, the user key it acts as, the cluster admin key, where missing blocks come from, and
//! its cluster (created here, over the node's store, with the node's head records as the
//! cluster's record sink). Nothing is set on a running node afterwards.

use std::sync::Arc;

use cairn_cluster::{Cluster, ClusterConfig, Transport};
use cairn_store::{RemoteBlocks, Store};

use crate::identity::Identity;
use crate::roots::RootsConfig;
use crate::{Node, NodeError, NodeInner};

/// What a node is built with ([`Node::builder`]).
pub struct NodeBuilder {
    store: Store,
    roots: RootsConfig,
    user_key: Option<cairn_crypt::identity::Identity>,
    admin: (Option<[u8; 32]>, Option<Identity>),
    remote: Option<Arc<dyn RemoteBlocks>>,
    cluster: Option<(ClusterConfig, Arc<dyn Transport>)>,
}

impl Node {
    /// A builder for a node over `store`.
    pub fn builder(store: Store) -> NodeBuilder {
        NodeBuilder {
            store,
            roots: RootsConfig::default(),
            user_key: None,
            admin: (None, None),
            remote: None,
            cluster: None,
        }
    }
}

impl NodeBuilder {
    /// How bucket roots are built and kept.
    pub fn roots(mut self, config: RootsConfig) -> Self {
        self.roots = config;
        self
    }

    /// The user key the node acts as: it owns the node's encrypted buckets and opens what is
    /// shared with it (kept in memory only).
    pub fn user_key(mut self, identity: Option<cairn_crypt::identity::Identity>) -> Self {
        self.user_key = identity;
        self
    }

    /// The cluster admin key: its public half (`public`; taken from `signer` when not given)
    /// makes the node accept takeovers it signed; its secret half (`signer`) lets the node's
    /// operator promote buckets ([`crate::Replication::promote`]).
    pub fn cluster_admin(mut self, public: Option<[u8; 32]>, signer: Option<Identity>) -> Self {
        self.admin = (public, signer);
        self
    }

    /// Where blocks missing here (and, in a cluster, from the cluster) are fetched: the
    /// network.
    pub fn remote(mut self, remote: Arc<dyn RemoteBlocks>) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Makes the node a cluster member talking through `transport`: its writes are placed on
    /// the cluster and its misses read from it. Must be built inside a tokio runtime.
    pub fn cluster(mut self, config: ClusterConfig, transport: Arc<dyn Transport>) -> Self {
        self.cluster = Some((config, transport));
        self
    }

    /// The node. Fails only on an admin key whose halves do not match.
    pub fn build(self) -> Result<Node, NodeError> {
        let NodeBuilder {
            store,
            roots,
            user_key,
            admin,
            remote,
            cluster,
        } = self;
        let inner = Arc::new_cyclic(|me| {
            // The cluster hands the records peers send to this node, which it does not keep
            // alive (a `Weak`): node → cluster → node is no cycle of strong references.
            let cluster = cluster.map(|(config, transport)| {
                let sink = Arc::new(crate::replication::follow::HeadRecords(me.clone()));
                Cluster::new(store.clone(), config, transport, Some(sink))
            });
            NodeInner::new(store, cluster, remote)
        });
        let node = Node { inner };
        node.set_roots_config(roots);
        if let Some(key) = user_key {
            node.set_user_key(key);
        }
        let (public, signer) = admin;
        node.set_cluster_admin(public, signer)?;
        Ok(node)
    }
}
