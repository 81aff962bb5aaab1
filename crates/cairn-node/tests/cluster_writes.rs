//! In a cluster, a write is acknowledged only once its bucket's new signed head is on the
//! bucket's replica set: the PUT returns after the head naming it was sent and stored, and
//! fails (`Unavailable`, S3 503) when no replica keeps it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cairn_cluster::proto::{Request, Response, decode, encode};
use cairn_cluster::{ClusterConfig, Member, Redundancy, Transport};
use cairn_dag::CidVersion;
use cairn_node::model::heads::SignedHead;
use cairn_node::model::records::ObjectMeta;
use cairn_node::{Node, NodeError};
use futures::future::BoxFuture;
use parking_lot::Mutex;

/// A record as a peer received it: (peer, key, bytes).
type Received = (Vec<u8>, String, Vec<u8>);

/// Peers that keep every piece, and record (or refuse) every record pushed to them.
#[derive(Default)]
struct Peers {
    records: Mutex<Vec<Received>>,
    refuse_records: AtomicBool,
}

struct Port(Arc<Peers>);

impl Transport for Port {
    fn call(&self, peer: Vec<u8>, request: Vec<u8>) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let peers = self.0.clone();
        Box::pin(async move {
            let answer = match decode::<Request>(&request).map_err(|e| e.to_string())? {
                Request::PutRecord { .. } if peers.refuse_records.load(Ordering::SeqCst) => {
                    Response::Error("refused".into())
                }
                Request::PutRecord { key, bytes } => {
                    peers.records.lock().push((peer, key, bytes.into_vec()));
                    Response::Stored
                }
                Request::Put { .. } => Response::Stored,
                _ => Response::NotFound,
            };
            Ok(encode(&answer))
        })
    }
}

#[derive(serde::Deserialize)]
struct Shared {
    #[serde(with = "serde_bytes")]
    head: Vec<u8>,
}

async fn put(node: &Node, key: &'static str) -> Result<(), NodeError> {
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"data"))]);
    let staged = node
        .objects()
        .stage(Some("bkt"), body, CidVersion::V1)
        .await?;
    let node = node.clone();
    tokio::task::spawn_blocking(move || {
        node.objects()
            .commit(staged, "bkt", key, ObjectMeta::default())
            .map(|_| ())
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_returns_after_its_head_reached_the_replica_set() {
    let dir = tempfile::tempdir().unwrap();
    let peers = Arc::new(Peers::default());
    let node = Node::builder(cairn_store::Store::open(dir.path()).unwrap())
        .cluster(
            ClusterConfig {
                me: b"me".to_vec(),
                zone: None,
                policy: Redundancy::Replicas(3),
                down_after: std::time::Duration::from_secs(3600),
                piece_grace: std::time::Duration::from_secs(3600),
            },
            Arc::new(Port(peers.clone())),
        )
        .build()
        .unwrap();
    let cluster = node.cluster().expect("built with a cluster");
    cluster.observe(&[b"p1".to_vec(), b"p2".to_vec(), b"p3".to_vec()].map(Member::new));
    let n = node.clone();
    tokio::task::spawn_blocking(move || n.buckets().create("bkt", "root"))
        .await
        .unwrap()
        .unwrap();

    put(&node, "k").await.unwrap();
    // Without any background job running, the head naming "k" is already on replicas.
    let tree = {
        let n = node.clone();
        tokio::task::spawn_blocking(move || n.roots().current("bkt").unwrap().tree)
            .await
            .unwrap()
    };
    let records = peers.records.lock().clone();
    let newest = records
        .iter()
        .filter(|(_, key, _)| key == "head/bkt")
        .map(|(peer, _, bytes)| {
            let shared: Shared = serde_ipld_dagcbor::from_slice(bytes).unwrap();
            (
                peer.clone(),
                SignedHead::verify(&shared.head, None).unwrap(),
            )
        })
        .max_by_key(|(_, head)| head.payload.seq)
        .expect("a head was pushed");
    assert_eq!(newest.1.payload.tree, tree, "the pushed head names the PUT");
    let holders: std::collections::HashSet<_> = records
        .iter()
        .filter(|(_, _, bytes)| {
            let shared: Shared = serde_ipld_dagcbor::from_slice(bytes).unwrap();
            SignedHead::verify(&shared.head, None).unwrap().payload.seq == newest.1.payload.seq
        })
        .map(|(peer, _, _)| peer.clone())
        .collect();
    assert!(holders.len() >= 2, "on {} replicas", holders.len());

    // When no replica keeps the head, the write is not acknowledged.
    peers.refuse_records.store(true, Ordering::SeqCst);
    let err = put(&node, "k2").await.unwrap_err();
    assert!(
        matches!(err, NodeError::Unavailable(_)),
        "{err}: a write whose head no replica holds must fail"
    );
}
