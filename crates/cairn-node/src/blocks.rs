//! Where the node's blocks come from: this store; then, in a cluster, the cluster (it knows
//! where pieces are and rebuilds lost ones); then the network at large. Every block from
//! elsewhere is verified against its CID before use (wrong bytes are refused, never returned),
//! and a fetched node's missing children are asked for at once (prefetch), since they are read
//! next. The sources are given when the node is built ([`crate::NodeBuilder`]); the store
//! itself never reaches out.

use std::sync::Arc;

use bytes::Bytes;
use cairn_dag::Cid;
use cairn_store::{RemoteBlocks, Store, StoreError};

/// The node's block source.
#[derive(Clone)]
pub(crate) struct Blocks {
    store: Store,
    cluster: Option<cairn_cluster::Cluster>,
    remote: Option<Arc<dyn RemoteBlocks>>,
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocks")
            .field("store", &self.store)
            .field("cluster", &self.cluster.is_some())
            .field("remote", &self.remote.is_some())
            .finish()
    }
}

impl Blocks {
    pub(crate) fn new(
        store: Store,
        cluster: Option<cairn_cluster::Cluster>,
        remote: Option<Arc<dyn RemoteBlocks>>,
    ) -> Blocks {
        Blocks {
            store,
            cluster,
            remote,
        }
    }

    /// The node's own store.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// The sources after the store, in order.
    fn elsewhere(&self) -> impl Iterator<Item = &dyn RemoteBlocks> {
        let cluster = self.cluster.as_ref().map(|c| c as &dyn RemoteBlocks);
        cluster.into_iter().chain(self.remote.as_deref())
    }

    /// Reads and verifies a block: here, else fetched (and kept by the source that fetched it).
    pub(crate) fn get(&self, cid: &Cid) -> Result<Bytes, StoreError> {
        match self.store.get(cid) {
            Err(StoreError::NotFound(_)) => {}
            found => return found,
        }
        for source in self.elsewhere() {
            let Some(data) = source.fetch(cid) else {
                continue;
            };
            if cairn_dag::verify(cid, &data).is_err() {
                tracing::warn!(%cid, "a block source returned wrong bytes; refused");
                continue;
            }
            // A node's children are read next: ask for all of them at once, from the first
            // source (the cluster when there is one: it knows where they are).
            if let Ok(links) = cairn_dag::links_of(cid, &data) {
                let missing: Vec<Cid> = links
                    .into_iter()
                    .filter(|c| !matches!(self.store.has(c), Ok(true)))
                    .collect();
                if let (false, Some(first)) = (missing.is_empty(), self.elsewhere().next()) {
                    first.prefetch(&missing);
                }
            }
            return Ok(data);
        }
        Err(StoreError::NotFound(*cid))
    }
}

impl crate::Node {
    /// A block stored here, for a peer that asked: its verified bytes when it is at most
    /// `max_data` long, else `Err(size)`; `None` when it is not here (a corrupt file is
    /// quarantined and counts as not here). Never asks the cluster or the network.
    pub fn block_here(
        &self,
        cid: &Cid,
        max_data: usize,
    ) -> Result<Option<Result<Bytes, u64>>, crate::NodeError> {
        let Some(info) = self.store().block_info(cid)? else {
            return Ok(None);
        };
        if info.size as usize > max_data {
            return Ok(Some(Err(info.size)));
        }
        match self.store().get_local(cid) {
            Ok(data) => Ok(Some(Ok(data))),
            Err(StoreError::NotFound(_) | StoreError::CorruptBlock { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Keeps blocks fetched from peers (verified by the caller) in one commit, unpinned: a
    /// cache GC may sweep.
    pub fn keep_fetched(&self, blocks: &[(Cid, Bytes)]) -> Result<(), crate::NodeError> {
        Ok(self.store().put_fetched_many(blocks)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_dag::CidVersion;
    use cairn_dag::file::encode_bytes;

    /// Another store as the network; `lie` returns a wrong block instead.
    struct Peer {
        store: Store,
        lie: bool,
        prefetched: parking_lot::Mutex<Vec<Cid>>,
    }

    impl RemoteBlocks for Peer {
        fn fetch(&self, cid: &Cid) -> Option<Bytes> {
            if self.lie {
                return Some(Bytes::from_static(b"not the block"));
            }
            self.store.get(cid).ok()
        }

        fn prefetch(&self, cids: &[Cid]) {
            self.prefetched.lock().extend_from_slice(cids);
        }
    }

    #[test]
    fn a_miss_is_fetched_verified_and_its_children_prefetched() {
        let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (local, remote_store) = (
            Store::open(here.path()).unwrap(),
            Store::open(there.path()).unwrap(),
        );
        let (blocks, root) = encode_bytes(&vec![7u8; 3 * cairn_dag::CHUNK_SIZE], CidVersion::V1);
        let batch = remote_store.batch();
        for b in &blocks {
            batch.put(b).unwrap();
        }
        batch.commit(&[root.link.cid]).unwrap();
        let root_block = blocks.iter().find(|b| b.cid == root.link.cid).unwrap();

        let alone = Blocks::new(local.clone(), None, None);
        assert!(matches!(
            alone.get(&root.link.cid),
            Err(StoreError::NotFound(_))
        ));

        let peer = Arc::new(Peer {
            store: remote_store.clone(),
            lie: false,
            prefetched: Default::default(),
        });
        let with_peer = Blocks::new(local.clone(), None, Some(peer.clone()));
        assert_eq!(with_peer.get(&root.link.cid).unwrap(), root_block.data);
        let children = cairn_dag::links_of(&root.link.cid, &root_block.data).unwrap();
        assert_eq!(*peer.prefetched.lock(), children);

        let liar = Arc::new(Peer {
            store: remote_store,
            lie: true,
            prefetched: Default::default(),
        });
        let with_liar = Blocks::new(local, None, Some(liar));
        assert!(matches!(
            with_liar.get(&root.link.cid),
            Err(StoreError::NotFound(_))
        ));
    }
}
