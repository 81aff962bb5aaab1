//! CARv1 (via `iroh-car`) over this node's store. Export writes the blocks
//! [`cairn_dag::car::select_blocks`] selects (depth-first pre-order, each block once — the
//! order `ipfs dag export` writes; or the trustless gateway's scoped selection). Import verifies
//! every block against its CID; one bad block rejects the whole import and nothing of it stays
//! stored. Roots are pinned when their DAG is complete.

use crate::Files;
use bytes::{Bytes, BytesMut};
use cairn_dag::car::{CarSelection, is_identity, select_blocks};
use cairn_dag::{Block, Cid};
use futures::{Stream, StreamExt};
use iroh_car::{CarHeader, CarReader, CarWriter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::NodeError;

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

/// The reading side of [`Files::car_import`]: a CARv1 stream's header, then its blocks, each
/// verified against its CID (a block that does not match fails the read). Public for the fuzz
/// targets (`fuzz/`), which feed it untrusted bytes as an import does.
#[doc(hidden)]
pub struct CarBlocks<R> {
    reader: CarReader<R>,
    count: u64,
}

impl<R: AsyncRead + Send + Unpin> CarBlocks<R> {
    /// Reads the header.
    pub async fn open(input: R) -> Result<Self, NodeError> {
        let reader = CarReader::new(input).await.map_err(car_err)?;
        Ok(CarBlocks { reader, count: 0 })
    }

    /// The roots the header names.
    pub fn roots(&self) -> &[Cid] {
        self.reader.header().roots()
    }

    /// The next block, verified; `None` at the end of the stream.
    pub async fn next_block(&mut self) -> Result<Option<Block>, NodeError> {
        let Some((cid, data)) = self.reader.next_block().await.map_err(car_err)? else {
            return Ok(None);
        };
        self.count += 1;
        let count = self.count;
        Block::verified(cid, data)
            .map(Some)
            .map_err(|e| NodeError::Car(format!("block #{count}: {e}")))
    }
}

impl Files<'_> {
    /// The bytes of one block, verified; an identity CID's bytes come from the CID itself.
    pub fn block(&self, cid: &Cid) -> Result<Bytes, NodeError> {
        if is_identity(cid) {
            return Ok(Bytes::copy_from_slice(cid.hash().digest()));
        }
        Ok(self.node.blocks().get(cid)?)
    }

    /// [`select_blocks`] over this node's store (blocking: call it off the async workers).
    pub fn car_blocks(
        &self,
        root: Cid,
        selection: &CarSelection,
        emit: impl FnMut(&Cid, &Bytes) -> Result<(), NodeError>,
    ) -> Result<u64, NodeError> {
        select_blocks(root, selection, |cid| self.block(cid), emit)
    }

    /// Writes the DAG under `root` as a CARv1 stream; returns the number of blocks.
    pub async fn car_export<W: AsyncWrite + Send + Unpin>(
        &self,
        root: Cid,
        out: W,
    ) -> Result<u64, NodeError> {
        self.car_export_scoped(root, CarSelection::default(), out)
            .await
    }

    /// Writes the blocks `selection` names (see [`select_blocks`]) as a CARv1 stream whose
    /// header root is `root`; returns the number of blocks. The blocks are read on a blocking
    /// thread, a few ahead of the writer.
    pub async fn car_export_scoped<W: AsyncWrite + Send + Unpin>(
        &self,
        root: Cid,
        selection: CarSelection,
        out: W,
    ) -> Result<u64, NodeError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Cid, Bytes)>(16);
        let node = self.node.clone();
        let reader = tokio::task::spawn_blocking(move || {
            node.files().car_blocks(root, &selection, |cid, data| {
                tx.blocking_send((*cid, data.clone()))
                    .map_err(|_| car_err("export cancelled"))
            })
        });
        let mut writer = CarWriter::new(CarHeader::new_v1(vec![root]), out);
        let written = async {
            writer.write_header().await.map_err(car_err)?;
            while let Some((cid, data)) = rx.recv().await {
                writer.write(cid, &data).await.map_err(car_err)?;
            }
            Ok::<_, NodeError>(())
        }
        .await;
        drop(rx); // a failed write stops the reader at its next block
        let count = reader
            .await
            .map_err(|e| NodeError::Unsupported(format!("CAR export task: {e}")));
        written?;
        let count = count??;
        writer.finish().await.map_err(car_err)?;
        Ok(count)
    }

    /// The scoped CAR as a stream of byte pieces (for a response body). A failure after the
    /// first piece ends the stream with the error, so a reader cannot take a cut CAR for a
    /// whole one.
    pub fn car_stream(
        &self,
        root: Cid,
        selection: CarSelection,
    ) -> impl Stream<Item = Result<Bytes, NodeError>> + Send + 'static {
        let (writer, reader) = tokio::io::duplex(256 * 1024);
        let node = self.node.clone();
        let export = tokio::spawn(async move {
            node.files()
                .car_export_scoped(root, selection, writer)
                .await
        });
        let pieces = futures::stream::unfold(reader, |mut reader| async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            match reader.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok(buf.freeze()), reader)),
                Err(e) => Some((Err(car_err(e)), reader)),
            }
        });
        let outcome = futures::stream::once(async move {
            let failure = match export.await {
                Ok(Ok(_)) => return None,
                Ok(Err(e)) => e,
                Err(e) => car_err(format!("CAR export task: {e}")),
            };
            tracing::warn!(%root, "CAR export failed: {failure}");
            Some(Err(failure))
        })
        .filter_map(std::future::ready);
        pieces.chain(outcome)
    }

    /// Imports a CARv1 stream. Every block is verified first; any bad block fails the whole
    /// import with nothing stored. With `pin_roots`, each root whose DAG is complete is pinned.
    /// The stream is read here; blocks are written, synced and checked on a blocking thread.
    pub async fn car_import<R: AsyncRead + Send + Unpin>(
        &self,
        input: R,
        pin_roots: bool,
    ) -> Result<CarImport, NodeError> {
        let mut reader = CarBlocks::open(input).await?;
        let roots = reader.roots().to_vec();
        // `None` marks the end of a CAR read whole: without it nothing is committed.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Block>>(16);
        let node = self.node.clone();
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
            if pin_roots {
                // Checked against the batch (its blocks and those stored already, all held),
                // then pinned in the commit that makes the blocks durable: GC never sees the
                // blocks without their pins.
                for root in result.roots.clone() {
                    if node.check_held(&root, &batch)?.missing.is_empty() {
                        result.pinned.push(root);
                    } else {
                        result.incomplete.push(root);
                    }
                }
            }
            batch.commit(&result.pinned)?;
            Ok(result)
        });
        let read = async {
            while let Some(block) = reader.next_block().await? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::car::DagScope;
    use cairn_dag::{CHUNK_SIZE, CidVersion};

    /// Patterned bytes: no two chunks alike.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u64).wrapping_mul(2_654_435_761) as u8 ^ seed ^ (i / CHUNK_SIZE) as u8)
            .collect()
    }

    #[tokio::test]
    async fn scoped_export_and_stream_are_valid_cars() {
        let dir = tempfile::tempdir().unwrap();
        let node = crate::Node::open(dir.path()).unwrap();
        let data = bytes(3 * CHUNK_SIZE + 7, 9);
        let link = node
            .files()
            .add_reader(&mut &data[..], CidVersion::V0, true)
            .unwrap();
        let parse = |car: Vec<u8>| async move {
            let mut reader = CarReader::new(&car[..]).await.unwrap();
            let roots = reader.header().roots().to_vec();
            let mut blocks = Vec::new();
            while let Some((cid, data)) = reader.next_block().await.unwrap() {
                cairn_dag::verify(&cid, &data).unwrap();
                blocks.push(cid);
            }
            (roots, blocks)
        };
        let mut car = Vec::new();
        assert_eq!(
            node.files().car_export(link.cid, &mut car).await.unwrap(),
            5
        );
        let (roots, all) = parse(car).await;
        assert_eq!((roots, all.len()), (vec![link.cid], 5));

        let selection = CarSelection {
            path: String::new(),
            scope: DagScope::Entity,
            bytes: Some("-7:*".parse().unwrap()),
        };
        let pieces: Vec<_> = node.files().car_stream(link.cid, selection).collect().await;
        let car: Vec<u8> = pieces
            .into_iter()
            .flat_map(|p| p.unwrap().to_vec())
            .collect();
        let (roots, some) = parse(car).await;
        assert_eq!(roots, vec![link.cid]);
        assert_eq!(some, [all[0], all[4]]);

        // a missing block ends the stream with an error, never a clean end
        let leaf = all[2];
        for shard in std::fs::read_dir(dir.path().join("blocks")).unwrap() {
            for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if cairn_dag::cid_of(CidVersion::V0, cairn_dag::DAG_PB, &data).ok() == Some(leaf) {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
        let pieces: Vec<_> = node
            .files()
            .car_stream(link.cid, CarSelection::default())
            .collect()
            .await;
        assert!(pieces.iter().any(Result::is_ok), "the first blocks came");
        assert!(pieces.last().unwrap().is_err());
    }
}
