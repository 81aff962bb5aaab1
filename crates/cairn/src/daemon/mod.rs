//! The composition root: everything that knows the network, the store, the cluster and the
//! doors together lives here, and nothing else of the binary does (`crates/cairn/tests/layers.rs`
//! checks that no other file of the binary names `cairn_net`, `cairn_store`, `cairn_cluster`,
//! `cairn_bitswap`, `cairn_s3` or `cairn_gateway`). `serve` starts a node with its listeners
//! and workers; `config` resolves its settings; `adapters` translate between the network and the
//! node; `cluster`, `follow` and `provide` are its network workers; `invite` its cluster file;
//! `listen` the accept loop of every HTTP listener. [`open_offline`] builds the node the CLI
//! opens when none runs.

pub mod adapters;
pub mod cluster;
pub mod config;
pub mod follow;
pub mod invite;
pub mod listen;
pub mod provide;
pub mod serve;

use std::path::Path;

use anyhow::{Context, Result};
use cairn_node::{Node, NodeBuilder};

/// The node on the data folder `data` when no node runs there: built as `serve` would build it
/// (roots settings, user key, cluster admin key), without a network.
pub fn open_offline(data: &Path, identity: Option<&Path>) -> Result<Node> {
    let store = cairn_store::Store::open(data)
        .with_context(|| format!("opening store {}", data.display()))?;
    // Roots folded in offline are built as the node's config says.
    let settings = config::Settings::resolve(data, &config::ServeArgs::default())?;
    let user = crate::user::node_key(identity, &Node::new(store.clone()), false)?;
    let cluster = invite::load(data)?;
    Ok(node_builder(
        store,
        &settings,
        user.map(|(user, _)| user),
        cluster.as_ref(),
    )?
    .build()?)
}

/// A node's builder as `serve` and the offline CLI both start it: its roots settings, the user
/// key it acts as, and its cluster's admin key.
pub fn node_builder(
    store: cairn_store::Store,
    settings: &config::Settings,
    user_key: Option<cairn_crypt::identity::Identity>,
    cluster: Option<&invite::ClusterFile>,
) -> Result<NodeBuilder> {
    let (admin, signer) = match cluster {
        Some(cluster) => invite::admin(cluster)?,
        None => (None, None),
    };
    Ok(Node::builder(store)
        .roots(cairn_node::roots::RootsConfig {
            version: settings.cid_version,
            retention: settings.history_retention,
        })
        .user_key(user_key)
        .cluster_admin(admin, signer))
}
