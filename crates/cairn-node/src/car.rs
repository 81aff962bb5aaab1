//! CARv1 (via `iroh-car`). Export writes the DAG's blocks in depth-first pre-order, each block
//! once, the order `ipfs dag export` writes. Import verifies every block against its CID; one
//! bad block rejects the whole import and nothing of it stays stored. Roots are pinned when
//! their DAG is complete.

use std::collections::HashSet;

use cairn_dag::{Block, Cid};
use iroh_car::{CarHeader, CarReader, CarWriter};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Node, NodeError};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarImport {
    /// Roots named in the CAR header.
    pub roots: Vec<Cid>,
    /// Blocks read.
    pub blocks: u64,
    /// Roots pinned (their DAG is complete in the store).
    pub pinned: Vec<Cid>,
    /// Roots not pinned because blocks are missing.
    pub incomplete: Vec<Cid>,
}

fn car_err(e: impl std::fmt::Display) -> NodeError {
    NodeError::Car(e.to_string())
}

impl Node {
    /// Writes the DAG under `root` as a CARv1 stream; returns the number of blocks.
    pub async fn car_export<W: AsyncWrite + Send + Unpin>(
        &self,
        root: Cid,
        out: W,
    ) -> Result<u64, NodeError> {
        let mut writer = CarWriter::new(CarHeader::new_v1(vec![root]), out);
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        let mut count = 0;
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let data = self.store().get(&cid)?;
            let links = cairn_dag::links_of(&cid, &data)?;
            writer.write(cid, &data).await.map_err(car_err)?;
            count += 1;
            stack.extend(links.into_iter().rev());
        }
        writer.finish().await.map_err(car_err)?;
        Ok(count)
    }

    /// Imports a CARv1 stream. Every block is verified first; any bad block fails the whole
    /// import with nothing stored. With `pin_roots`, each root whose DAG is complete is pinned.
    /// The stream is read here; blocks are written, synced and checked on a blocking thread.
    pub async fn car_import<R: AsyncRead + Send + Unpin>(
        &self,
        input: R,
        pin_roots: bool,
    ) -> Result<CarImport, NodeError> {
        let mut reader = CarReader::new(input).await.map_err(car_err)?;
        let roots = reader.header().roots().to_vec();
        // `None` marks the end of a CAR read whole: without it nothing is committed.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Block>>(16);
        let node = self.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let batch = node.store().batch();
            let mut result = CarImport {
                roots,
                ..Default::default()
            };
            loop {
                match rx.blocking_recv() {
                    Some(Some(block)) => batch.put(&block)?,
                    Some(None) => break,
                    None => return Err(car_err("import cut short")),
                }
                result.blocks += 1;
            }
            batch.commit(&[])?;
            if pin_roots {
                for root in result.roots.clone() {
                    if node.check(&root, false)?.missing.is_empty() {
                        node.store().pin(&root)?;
                        result.pinned.push(root);
                    } else {
                        result.incomplete.push(root);
                    }
                }
            }
            Ok(result)
        });
        let mut count = 0u64;
        let read = async {
            while let Some((cid, data)) = reader.next_block().await.map_err(car_err)? {
                count += 1;
                let block = Block::verified(cid, data)
                    .map_err(|e| NodeError::Car(format!("block #{count}: {e}")))?;
                if tx.send(Some(block)).await.is_err() {
                    return Ok(()); // the writer failed; its error is the answer
                }
            }
            let _ = tx.send(None).await;
            Ok::<_, NodeError>(())
        }
        .await;
        drop(tx);
        let written = writer
            .await
            .map_err(|e| NodeError::Unsupported(format!("CAR import task: {e}")))?;
        read?;
        written
    }
}
