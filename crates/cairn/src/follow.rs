//! The follow job: every couple of seconds it asks each connected Cairn peer for the heads
//! of the buckets it owns and mirrors the newer ones read-only (cairn_node::follow), so every
//! node of a cluster serves every bucket.

use std::time::Duration;

use cairn_node::{Node, NodeError};

/// How often peers are asked.
pub const FOLLOW_TICK: Duration = Duration::from_secs(2);

/// Mirrors other nodes' buckets.
pub struct Follow {
    pub net: cairn_net::NetHandle,
    pub runtime: tokio::runtime::Handle,
}

impl cairn_node::worker::Job for Follow {
    fn name(&self) -> &'static str {
        "follow"
    }

    fn run(&mut self, node: &Node) -> Result<String, NodeError> {
        let Ok(peers) = self.runtime.block_on(self.net.peers()) else {
            return Ok(String::new());
        };
        let mut summary = Vec::new();
        for peer in peers {
            if !peer
                .agent
                .as_deref()
                .is_some_and(|a| a.starts_with("cairn/"))
            {
                continue;
            }
            let heads = match self.runtime.block_on(self.net.bucket_heads(peer.peer_id)) {
                Ok(h) if !h.is_empty() => h,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(peer = %peer.peer_id, "no bucket heads: {e}");
                    continue;
                }
            };
            match node.follow_heads(&heads) {
                Ok(done) if !done.updated.is_empty() => summary.push(format!(
                    "{} from {} ({} objects)",
                    done.updated.join(","),
                    peer.peer_id,
                    done.objects
                )),
                Ok(_) => {}
                Err(e) => tracing::warn!(peer = %peer.peer_id, "bucket heads refused: {e}"),
            }
        }
        Ok(if summary.is_empty() {
            String::new()
        } else {
            format!("mirrored {}", summary.join("; "))
        })
    }
}
