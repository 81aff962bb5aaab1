//! The provider-announcement job: every few seconds it announces the roots the node committed
//! since the last run; at start, every `reprovide_interval` and after a queue overflow it
//! sweeps through everything the node provides (cairn_node::provide), in bounded batches so a
//! node with millions of objects never starts millions of DHT queries at once.

use std::time::{Duration, Instant};

use cairn_node::worker::Worked;
use cairn_node::{Node, NodeError};

/// How often the job looks for fresh roots.
pub const PROVIDE_TICK: Duration = Duration::from_secs(5);
/// DHT announcements in flight at once.
const BATCH: usize = 64;
/// Roots read from the store per sweep page.
const PAGE: usize = 1024;

/// Announces provider records through the network layer.
pub struct Announce {
    pub net: cairn_net::NetHandle,
    /// Re-announce everything this often (provider records expire on peers after 48 h).
    pub every: Duration,
    pub last_sweep: Option<Instant>,
}

impl Announce {
    /// Announces `cids`; returns (announced, reached a peer).
    async fn announce(&self, cids: &[cairn_dag::Cid]) -> (usize, usize) {
        let mut reached = 0;
        for chunk in cids.chunks(BATCH) {
            match self.net.provide(chunk.to_vec()).await {
                Ok(n) => reached += n,
                Err(e) => {
                    tracing::debug!("provide: {e}");
                    break;
                }
            }
        }
        (cids.len(), reached)
    }
}

impl cairn_node::worker::Worker for Announce {
    fn name(&self) -> &'static str {
        "provide"
    }

    async fn work(&mut self, node: &Node) -> Result<Worked, NodeError> {
        let fresh = node
            .blocking(|node| node.roots().take_fresh(PAGE * 4))
            .await?;
        let due = self.last_sweep.is_none_or(|t| t.elapsed() >= self.every);
        let (mut announced, mut reached) = (0, 0);
        if due || fresh.overflowed {
            self.last_sweep = Some(Instant::now());
            let mut cursor = None;
            loop {
                let (page, next) = node
                    .blocking(move |node| node.roots().provide_sweep(cursor, PAGE))
                    .await?;
                let (a, r) = self.announce(&page).await;
                (announced, reached) = (announced + a, reached + r);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        } else {
            (announced, reached) = self.announce(&fresh.cids).await;
        }
        Ok(Worked::idle(if announced == 0 {
            String::new()
        } else {
            format!("announced {announced} roots ({reached} reached a peer)")
        }))
    }
}
