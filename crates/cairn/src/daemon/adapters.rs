//! The adapters between the network and the node, in both directions: what the node serves
//! to peers (`cairn_net::Providers`: its blocks, its bucket heads, cluster pieces), the
//! network as the node's source of missing blocks (`NetBlocks`), and the network as the API
//! sees it (`ApiNetwork`). Each is a thin translation; the decisions are the node's.

use std::sync::Arc;
use std::time::Duration;

use cairn_api::network::NetworkError;
use cairn_node::Node;
use futures::future::BoxFuture;

/// What the node serves to peers: its blocks (every block to members, what the gateway would
/// serve to strangers), the heads of its buckets, and — in a cluster — piece requests (the
/// network layer asks for heads and pieces only for members).
pub fn providers(node: &Node, serve_all: bool) -> cairn_net::Providers {
    let providers = cairn_net::Providers::new(Arc::new(NodeBlocks {
        node: node.clone(),
        serve_all,
    }))
    .heads(Arc::new(NodeHeads {
        node: node.clone(),
        last: Default::default(),
    }));
    match node.cluster() {
        Some(cluster) => providers.pieces(Arc::new(ClusterPieces(cluster.clone()))),
        None => providers,
    }
}

/// The node's blocks, for Bitswap.
struct NodeBlocks {
    node: Node,
    /// `gateway_policy = "all"`: strangers get every block, as gateway users do.
    serve_all: bool,
}

impl cairn_net::BlockProvider for NodeBlocks {
    fn lookup(
        &self,
        queries: &[cairn_bitswap::BlockQuery],
    ) -> Vec<(cairn_dag::Cid, cairn_bitswap::Lookup)> {
        use cairn_bitswap::Lookup;
        queries
            .iter()
            .map(|q| {
                let answer = match self.node.block_here(&q.cid, q.max_data) {
                    Ok(Some(Ok(data))) => Lookup::Block(data),
                    Ok(Some(Err(size))) => Lookup::Have {
                        size: size as usize,
                    },
                    _ => Lookup::Missing,
                };
                (q.cid, answer)
            })
            .collect()
    }

    fn published(&self, cid: &cairn_dag::Cid) -> bool {
        self.serve_all
            || self
                .node
                .access()
                .published(cid)
                .unwrap_or_else(|e| {
                    tracing::warn!(%cid, "publication unknown, refused: {e}");
                    None
                })
                .is_some()
    }

    fn store(&self, cid: &cairn_dag::Cid, data: &bytes::Bytes) {
        self.store_many(&[(*cid, data.clone())]);
    }

    fn store_many(&self, blocks: &[(cairn_dag::Cid, bytes::Bytes)]) {
        if let Err(e) = self.node.keep_fetched(blocks) {
            tracing::warn!("fetched blocks not stored: {e}");
        }
    }
}

/// How long one heads answer is reused.
const HEADS_FRESH: Duration = Duration::from_secs(1);

/// The heads of the node's buckets, for members that follow them.
struct NodeHeads {
    node: Node,
    /// The last answer and when it was made: every member asks every couple of seconds, and
    /// one answer reads every bucket and held head.
    last: parking_lot::Mutex<Option<(std::time::Instant, Vec<u8>)>>,
}

impl cairn_net::HeadProvider for NodeHeads {
    fn bucket_heads(&self) -> Vec<u8> {
        let mut cached = self.last.lock();
        if let Some((at, bytes)) = &*cached
            && at.elapsed() < HEADS_FRESH
        {
            return bytes.clone();
        }
        let bytes = self.node.replication().shared_heads().unwrap_or_else(|e| {
            tracing::warn!("bucket heads not shared: {e}");
            Vec::new()
        });
        *cached = Some((std::time::Instant::now(), bytes.clone()));
        bytes
    }
}

/// The cluster's answers to members' piece requests.
struct ClusterPieces(cairn_cluster::Cluster);

impl cairn_net::PieceProvider for ClusterPieces {
    fn piece_request(&self, peer: cairn_net::libp2p::PeerId, request: Vec<u8>) -> Vec<u8> {
        self.0.handle(&peer.to_bytes(), &request)
    }
}

/// The network as the API sees it ([`cairn_api::network::Network`]).
pub struct ApiNetwork(pub cairn_net::NetHandle);

impl cairn_api::network::Network for ApiNetwork {
    fn peer_id(&self) -> String {
        self.0.peer_id().to_string()
    }

    fn addrs(&self) -> BoxFuture<'_, Result<Vec<String>, NetworkError>> {
        Box::pin(async move {
            let addrs = self.0.addrs().await.map_err(unavailable)?;
            Ok(addrs.iter().map(|a| a.to_string()).collect())
        })
    }

    fn peers(&self) -> BoxFuture<'_, Result<Vec<cairn_api::network::Peer>, NetworkError>> {
        Box::pin(async move {
            let peers = self.0.peers().await.map_err(unavailable)?;
            Ok(peers
                .into_iter()
                .map(|p| cairn_api::network::Peer {
                    peer_id: p.peer_id.to_string(),
                    addr: p.addr.to_string(),
                    agent: p.agent,
                    member: p.member,
                })
                .collect())
        })
    }

    fn dial(&self, addr: String) -> BoxFuture<'_, Result<String, NetworkError>> {
        Box::pin(async move {
            let parsed: cairn_net::libp2p::Multiaddr = addr
                .parse()
                .map_err(|e| NetworkError::Invalid(format!("invalid multiaddr {addr:?}: {e}")))?;
            let peer = self
                .0
                .dial(parsed)
                .await
                .map_err(|e| NetworkError::Unreachable(e.to_string()))?;
            Ok(peer.to_string())
        })
    }

    fn find_providers(
        &self,
        cid: cairn_dag::Cid,
    ) -> BoxFuture<'_, Result<Vec<String>, NetworkError>> {
        Box::pin(async move {
            let peers = self.0.find_providers(cid).await.map_err(unavailable)?;
            Ok(peers.iter().map(|p| p.to_string()).collect())
        })
    }
}

fn unavailable(e: cairn_net::NetError) -> NetworkError {
    NetworkError::Unavailable(e.to_string())
}

/// The network as the store's source of missing blocks.
pub struct NetBlocks {
    pub net: cairn_net::NetHandle,
    pub runtime: tokio::runtime::Handle,
}

impl cairn_store::RemoteBlocks for NetBlocks {
    fn prefetch(&self, cids: &[cairn_dag::Cid]) {
        let (net, cids) = (self.net.clone(), cids.to_vec());
        self.runtime.spawn(async move {
            if let Err(e) = net.prefetch(cids).await {
                tracing::debug!("prefetch: {e}");
            }
        });
    }

    fn fetch(&self, cid: &cairn_dag::Cid) -> Option<bytes::Bytes> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (net, cid) = (self.net.clone(), *cid);
        self.runtime.spawn(async move {
            let _ = tx.send(net.fetch(cid).await);
        });
        match rx.recv() {
            Ok(Ok(data)) => Some(data),
            Ok(Err(e)) => {
                tracing::debug!("{e}");
                None
            }
            Err(_) => None,
        }
    }
}
