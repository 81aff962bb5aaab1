//! The follow job: every couple of seconds it asks each connected member for the bucket
//! heads it knows, holds the newer ones, and mirrors every held head newer than its local
//! mirror — including heads owners pushed here since the last run (cairn_node::follow) — so
//! every node of a cluster serves every bucket.

use std::time::Duration;

use cairn_node::worker::Worked;
use cairn_node::{Node, NodeError};

/// How often peers are asked.
pub const FOLLOW_TICK: Duration = Duration::from_secs(2);

/// Mirrors other nodes' buckets.
pub struct Follow {
    pub net: cairn_net::NetHandle,
}

impl cairn_node::worker::Worker for Follow {
    fn name(&self) -> &'static str {
        "follow"
    }

    async fn work(&mut self, node: &Node) -> Result<Worked, NodeError> {
        let peers = self.net.peers().await.unwrap_or_default();
        for peer in peers {
            if !peer.member {
                continue;
            }
            let heads = match self.net.bucket_heads(peer.peer_id).await {
                Ok(h) if !h.is_empty() => h,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(peer = %peer.peer_id, "no bucket heads: {e}");
                    continue;
                }
            };
            if let Err(e) = node
                .blocking(move |node| node.replication().hold_shared(&heads))
                .await
            {
                tracing::warn!(peer = %peer.peer_id, "bucket heads refused: {e}");
            }
        }
        let done = node
            .blocking(|node| node.replication().mirror_held())
            .await?;
        Ok(Worked::idle(if done.updated.is_empty() {
            String::new()
        } else {
            format!(
                "mirrored {} ({} objects)",
                done.updated.join(","),
                done.objects
            )
        }))
    }
}
