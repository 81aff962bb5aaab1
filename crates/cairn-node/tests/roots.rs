//! Bucket roots: the tree equals `ipfs add -r` of the same files, one change rewrites O(depth)
//! blocks, old roots restore, retention keeps them from GC, heads are signed, and a root never
//! links an object GC swept while it was built.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use bytes::Bytes;
use cairn_dag::dir::DirectoryBuilder;
use cairn_dag::{Cid, CidVersion};
use cairn_node::Node;
use cairn_node::import::AddOptions;
use cairn_node::model::heads::SignedHead;
use cairn_node::model::records::{ObjectInfo, ObjectMeta};
use cairn_node::roots::RootsConfig;

fn node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.buckets().create("bkt", "root").unwrap();
    (dir, node)
}

async fn put(node: &Node, key: &str, data: &[u8]) -> ObjectInfo {
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(data))]);
    let staged = node
        .objects()
        .stage(None, body, CidVersion::V0)
        .await
        .unwrap();
    node.objects()
        .commit(staged, "bkt", key, ObjectMeta::default())
        .unwrap()
}

fn cat(node: &Node, cid: Cid) -> Vec<u8> {
    let mut stream = node.files().cat(cid, None);
    let mut out = Vec::new();
    while let Some(piece) = stream.next_piece().unwrap() {
        out.extend_from_slice(&piece);
    }
    out
}

fn tree_names(node: &Node, dir: &Cid) -> Vec<String> {
    node.files()
        .list(dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

#[tokio::test]
async fn bucket_root_equals_add_r_of_the_same_tree() {
    let (dir, node) = node();
    let files: [(&str, Vec<u8>); 3] = [
        ("a.txt", b"hello\n".to_vec()),
        (
            "dir/b.bin",
            (0..700_000u32).map(|i| (i % 251) as u8).collect(),
        ),
        ("dir/sub/c", b"c".to_vec()),
    ];
    let disk = dir.path().join("disk/tree");
    for (key, data) in &files {
        put(&node, key, data).await;
        let path = disk.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    let root = node.roots().current("bkt").unwrap();
    let added = node
        .files()
        .add_path(
            &disk,
            AddOptions {
                cid_version: CidVersion::V0,
                recursive: true,
                hidden: false,
                pin: false,
            },
        )
        .unwrap();
    assert_eq!(root.tree, added.last().unwrap().cid);
    let c = node.files().resolve(root.tree, "dir/sub/c").unwrap();
    assert_eq!(cat(&node, c), b"c");
    // a second look with nothing changed commits nothing new
    assert_eq!(node.roots().current("bkt").unwrap(), root);
    assert_eq!(node.roots().history("bkt").unwrap().len(), 1);
}

#[tokio::test]
async fn one_put_in_a_10000_object_bucket_rewrites_o_depth_blocks() {
    let (_dir, node) = node();
    let mut builder = DirectoryBuilder::new(CidVersion::V0);
    for i in 0..10_000 {
        let key = format!("objects/object-{i:05}");
        let info = put(&node, &key, format!("body {i}").as_bytes()).await;
        let size = cairn_dag::block::dag_size(&info.cid, &node.store().get(&info.cid).unwrap());
        builder
            .add_link(&format!("t/{key}"), info.cid, size.unwrap())
            .unwrap();
    }
    // (the queue is paged, so 10 000 keys plus the bucket's creation may take two roots)
    let first = node.roots().commit().unwrap();
    let written: usize = first.iter().map(|c| c.blocks_written).sum();
    assert!(written > 100, "{written}");
    // equal to building the whole tree at once
    let expected = builder.build().unwrap().last().unwrap().block.cid;
    assert_eq!(first.last().unwrap().row.tree, expected);

    put(&node, "objects/object-04242", b"changed").await;
    let second = node.roots().commit().unwrap();
    assert_eq!(second.len(), 1);
    // tree: root dir, HAMT root (+ maybe one sub-shard); index: HAMT root (+ one sub-shard),
    // the object record; the version record
    assert!(
        second[0].blocks_written <= 8,
        "one PUT wrote {} blocks",
        second[0].blocks_written
    );
    eprintln!(
        "10 000 objects: first roots wrote {written} blocks; one PUT then wrote {}",
        second[0].blocks_written
    );
    let changed = node
        .files()
        .resolve(second[0].row.tree, "objects/object-04242")
        .unwrap();
    assert_eq!(cat(&node, changed), b"changed");
    assert_eq!(second[0].row.seq, first.last().unwrap().row.seq + 1);
}

#[tokio::test]
async fn markers_conflicts_and_keys_that_are_not_paths() {
    let (_dir, node) = node();
    put(&node, "a", b"file a").await;
    put(&node, "a/b", b"file a/b").await;
    put(&node, "x//y", b"not a path").await;
    put(&node, "empty/", b"").await;
    let root = node.roots().current("bkt").unwrap();
    assert_eq!(tree_names(&node, &root.tree), ["a", "empty"]);
    // the directory wins over the object `a`; `empty/` makes an empty directory
    assert_eq!(
        tree_names(&node, &node.files().resolve(root.tree, "a").unwrap()),
        ["b"]
    );
    assert!(tree_names(&node, &node.files().resolve(root.tree, "empty").unwrap()).is_empty());
    // every key has a record, paths or not
    let mut keys: Vec<String> = node
        .roots()
        .objects(&root)
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["a", "a/b", "empty/", "x//y"]);

    node.objects().delete("bkt", "a/b", None).unwrap();
    node.objects().delete("bkt", "empty/", None).unwrap();
    let root = node.roots().current("bkt").unwrap();
    assert_eq!(tree_names(&node, &root.tree), ["a"]);
    let a = node.files().resolve(root.tree, "a").unwrap();
    assert_eq!(cat(&node, a), b"file a");
}

#[tokio::test]
async fn restore_brings_old_bytes_back_and_retention_keeps_them_from_gc() {
    let (_dir, node) = node();
    put(&node, "keep", b"unchanged").await;
    let v1 = put(&node, "doc", b"version one").await;
    put(&node, "gone", b"deleted later").await;
    let old = node.roots().current("bkt").unwrap();

    // ransomware: overwrite, delete, add
    put(&node, "doc", b"ENCRYPTED").await;
    node.objects().delete("bkt", "gone", None).unwrap();
    put(&node, "ransom-note.txt", b"pay up").await;
    let bad = node.roots().current("bkt").unwrap();
    assert_ne!(bad.tree, old.tree);
    // nothing but the history holds the old bytes now, and GC keeps them
    node.store().gc().unwrap();
    assert_eq!(cat(&node, v1.cid), b"version one");

    let restored = node.roots().restore("bkt", &old.tree).unwrap();
    assert_eq!((restored.written, restored.deleted), (2, 1));
    assert_eq!(
        cat(&node, node.objects().get("bkt", "doc").unwrap().cid),
        b"version one"
    );
    assert_eq!(
        cat(&node, node.objects().get("bkt", "gone").unwrap().cid),
        b"deleted later"
    );
    assert!(node.objects().get("bkt", "ransom-note.txt").is_err());
    let now = node.roots().current("bkt").unwrap();
    assert_eq!(now.tree, old.tree, "same contents, same root");
    let history = node.roots().history("bkt").unwrap();
    assert!(history.len() >= 3, "{history:?}");
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    // the bad root is still there to restore (nothing destroyed)
    assert!(history.iter().any(|r| r.tree == bad.tree));
    // an unknown root is refused
    assert!(node.roots().restore("bkt", &v1.cid).is_err());

    // with zero retention every root but the newest expires, and GC takes the ransom note
    let note = node.store().objects_with_cid(&v1.cid).unwrap();
    assert_eq!(note.len(), 1);
    let node = Node::builder(node.store().clone())
        .roots(RootsConfig {
            version: CidVersion::V0,
            retention: Some(Duration::ZERO),
        })
        .build()
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(node.roots().expire().unwrap(), history.len() - 1);
    let ransom = bad.index;
    node.store().gc().unwrap();
    assert!(!node.store().has(&ransom).unwrap());
    assert_eq!(node.roots().history("bkt").unwrap().len(), 1);
}

/// Where a block's file is (`blocks/<shard>/<key>`, as `cairn_store::files` lays it out).
fn block_path(data: &std::path::Path, cid: &Cid) -> std::path::PathBuf {
    let key = cairn_store::files::key_of(cid);
    data.join("blocks")
        .join(&key[key.len() - 3..key.len() - 1])
        .join(&key)
}

/// The network, for one block: its first fetch waits until the test says go.
struct PausedFetch {
    block: (Cid, Bytes),
    started: Mutex<mpsc::Sender<()>>,
    go: Mutex<Option<mpsc::Receiver<()>>>,
}

impl cairn_store::RemoteBlocks for PausedFetch {
    fn fetch(&self, cid: &Cid) -> Option<Bytes> {
        if *cid != self.block.0 {
            return None;
        }
        if let Some(go) = self.go.lock().unwrap().take() {
            self.started.lock().unwrap().send(()).unwrap();
            go.recv().unwrap();
        }
        Some(self.block.1.clone())
    }
}

/// A root build reads each changed key's object outside its commit. When the key is
/// overwritten and GC sweeps the object it read before the root commits, the root must not
/// link the swept blocks (it would be committed broken, for restores, mirrors and the gateway
/// to trip over): the build holds every object it links whole, or builds again. Found by the
/// crash campaign (`crates/cairn/tests/crash.rs`); here the build is paused on a block it
/// fetches from the network right after it has read `k`.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_never_links_an_object_swept_while_it_was_built() {
    let (dir, node) = node();
    put(&node, "k", b"k, first").await;
    let m = put(&node, "m", b"m, first").await;
    node.roots().commit().unwrap();
    // k's second object is in no root: only its row keeps it.
    let x = put(&node, "k", "k, second ".repeat(60_000).as_bytes()).await;
    put(&node, "m", b"m, second").await;
    // m's first object, which the build looks at after k, is fetched from the network.
    let m_block = node.store().get(&m.cid).unwrap();
    std::fs::remove_file(block_path(dir.path(), &m.cid)).unwrap();
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let node = Node::builder(node.store().clone())
        .remote(Arc::new(PausedFetch {
            block: (m.cid, m_block),
            started: Mutex::new(started_tx),
            go: Mutex::new(Some(go_rx)),
        }))
        .build()
        .unwrap();
    let fold = {
        let node = node.clone();
        std::thread::spawn(move || node.roots().commit())
    };
    started
        .recv_timeout(Duration::from_secs(30))
        .expect("the build reaches m");
    // The build has read k as x. k is overwritten, and GC sweeps x.
    put(&node, "k", b"k, third").await;
    node.repo().collect_garbage().unwrap();
    assert!(!node.store().has(&x.cid).unwrap(), "x is swept");
    go.send(()).unwrap();
    let committed = fold.join().unwrap().unwrap();
    assert_eq!(committed.len(), 1);

    let root = node.store().latest_root("bkt").unwrap().unwrap();
    assert_eq!(root.seq, 2);
    for (what, cid) in [("tree", root.tree), ("index", root.index)] {
        let report = node.files().check(&cid, false).unwrap();
        assert!(report.missing.is_empty(), "the root's {what}: {report:?}");
    }
    assert_eq!(
        cat(&node, node.files().resolve(root.tree, "k").unwrap()),
        b"k, third"
    );
    assert_eq!(
        cat(&node, node.files().resolve(root.tree, "m").unwrap()),
        b"m, second"
    );
}

/// An object that is damaged (a block lost) but still current does not hold its bucket's
/// roots up: it is linked as it is, as before the build held what it links.
#[tokio::test]
async fn a_damaged_object_does_not_stop_its_bucket_roots() {
    let (dir, node) = node();
    let info = put(&node, "big", &vec![7u8; 600_000]).await;
    let root_block = node.store().get(&info.cid).unwrap();
    let leaf = cairn_dag::links_of(&info.cid, &root_block).unwrap()[0];
    std::fs::remove_file(block_path(dir.path(), &leaf)).unwrap();
    put(&node, "small", b"fine").await;
    let root = node.roots().current("bkt").unwrap();
    assert_eq!(node.files().resolve(root.tree, "big").unwrap(), info.cid);
    assert_eq!(
        node.files().check(&root.tree, false).unwrap().missing,
        [leaf]
    );
}

#[tokio::test]
async fn heads_are_signed_by_the_node_identity() {
    let (_dir, node) = node();
    put(&node, "k", b"v").await;
    let root = node.roots().current("bkt").unwrap();
    let head =
        SignedHead::verify(&root.head, Some(&node.identity().unwrap().public_key())).unwrap();
    assert_eq!(head.payload.tree, root.tree);
    assert_eq!(head.payload.record, root.record);
    assert_eq!(head.payload.seq, root.seq);
    let mut forged = head.clone();
    forged.payload.seq += 1;
    assert!(SignedHead::verify(&forged.to_bytes().unwrap(), None).is_err());
    assert!(SignedHead::verify(&root.head, Some(&[7u8; 32])).is_err());
    assert!(SignedHead::verify(b"garbage", None).is_err());
}

#[tokio::test]
async fn provided_roots_are_queued_on_commit_and_swept_in_pages() {
    let (_dir, node) = node();
    // A private bucket's roots are never announced (a provider record tells the DHT's servers
    // the multihash).
    node.buckets().create("sec", "root").unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
        b"not for the DHT",
    ))]);
    let staged = node
        .objects()
        .stage(None, body, CidVersion::V0)
        .await
        .unwrap();
    let private = node
        .objects()
        .commit(staged, "sec", "private", ObjectMeta::default())
        .unwrap()
        .cid;
    node.roots().commit().unwrap();
    let private_root = node.roots().current("sec").unwrap().tree;
    assert!(node.roots().take_fresh(100).unwrap().cids.is_empty());
    let (page, _) = node.roots().provide_sweep(None, 100).unwrap();
    assert!(page.is_empty(), "{page:?}");
    node.buckets().set_public("bkt", true).unwrap();
    let mut cids = Vec::new();
    for i in 0..25u32 {
        cids.push(put(&node, &format!("k{i}"), &i.to_be_bytes()).await.cid);
    }
    // the same bytes under another key: one root, announced once by a sweep
    put(&node, "again", &0u32.to_be_bytes()).await;
    assert!(
        node.roots().take_fresh(100).unwrap().cids.is_empty(),
        "nothing before a root commit"
    );
    node.roots().commit().unwrap();
    let root = node.roots().current("bkt").unwrap().tree;
    let fresh = node.roots().take_fresh(1000).unwrap();
    assert!(!fresh.overflowed);
    for cid in cids.iter().chain([&root]) {
        assert!(fresh.cids.contains(cid), "{cid} queued");
    }
    assert!(
        node.roots().take_fresh(1000).unwrap().cids.is_empty(),
        "taken once"
    );

    // a sweep in pages of 10 sees every object root once, plus the bucket root
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = node.roots().provide_sweep(cursor, 10).unwrap();
        seen.extend(page);
        pages += 1;
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert!(pages >= 3);
    let mut want = cids.clone();
    want.push(root);
    want.sort();
    seen.sort();
    assert_eq!(seen, want);
    assert!(!seen.contains(&private) && !seen.contains(&private_root));
}

/// Another node's store as the network.
struct Peer(cairn_store::Store);

impl cairn_store::RemoteBlocks for Peer {
    fn fetch(&self, cid: &Cid) -> Option<Bytes> {
        self.0.get_local(cid).ok()
    }
}

/// A node over `store` that reads the blocks it misses from `from`, with `admin` as its
/// cluster admin signer.
fn reading(
    store: cairn_store::Store,
    from: &Node,
    admin: Option<cairn_node::identity::Identity>,
) -> Node {
    Node::builder(store)
        .cluster_admin(None, admin)
        .remote(Arc::new(Peer(from.store().clone())))
        .build()
        .unwrap()
}

fn open(dir: &tempfile::TempDir) -> cairn_store::Store {
    cairn_store::Store::open(dir.path()).unwrap()
}

#[tokio::test]
async fn another_nodes_bucket_is_mirrored_from_its_signed_head() {
    let (_a_dir, a) = node();
    put(&a, "k1", b"one").await;
    let k2 = put(&a, "dir/k2", b"two").await;
    a.roots().commit().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let b = reading(open(&b_dir), &a, None);

    let heads = a.replication().shared_heads().unwrap();
    // a flipped signature byte is refused, and nothing is mirrored
    let head = a.store().latest_root("bkt").unwrap().unwrap().head;
    let signature = SignedHead::verify(&head, None).unwrap().signature.to_vec();
    let at = heads
        .windows(signature.len())
        .position(|w| w == signature.as_slice())
        .unwrap();
    let mut forged = heads.clone();
    forged[at + 3] ^= 1;
    assert!(b.replication().follow_heads(&forged).is_err());
    assert!(b.buckets().get("bkt").is_err());

    let done = b.replication().follow_heads(&heads).unwrap();
    assert_eq!(done.updated, ["bkt"]);
    assert_eq!(done.objects, 2);
    assert_eq!(b.objects().get("bkt", "dir/k2").unwrap().cid, k2.cid);
    assert!(b.buckets().get("bkt").unwrap().mirror.is_some());
    // the mirror's root is the owner's, and the mirror is shared onwards (a node that joins
    // after the owner died still learns its buckets)
    assert_eq!(
        b.roots().current("bkt").unwrap().tree,
        a.roots().current("bkt").unwrap().tree
    );
    let c_dir = tempfile::tempdir().unwrap();
    let c = reading(open(&c_dir), &a, None);
    assert_eq!(
        c.replication()
            .follow_heads(&b.replication().shared_heads().unwrap())
            .unwrap()
            .updated,
        ["bkt"]
    );
    assert_eq!(c.objects().get("bkt", "dir/k2").unwrap().cid, k2.cid);
    // the same head again changes nothing; a newer one replaces the mirror whole
    assert!(
        b.replication()
            .follow_heads(&heads)
            .unwrap()
            .updated
            .is_empty()
    );
    a.store().update(|t| t.delete_object("bkt", "k1")).unwrap();
    a.roots().commit().unwrap();
    assert_eq!(
        b.replication()
            .follow_heads(&a.replication().shared_heads().unwrap())
            .unwrap()
            .updated,
        ["bkt"]
    );
    assert!(b.objects().get("bkt", "k1").is_err());
    assert_eq!(b.objects().get("bkt", "dir/k2").unwrap().cid, k2.cid);
    // a bucket of this node's own is never replaced by another's head
    let (_o_dir, other) = node();
    put(&other, "k1", b"other").await;
    other.roots().commit().unwrap();
    assert!(
        a.replication()
            .follow_heads(&other.replication().shared_heads().unwrap())
            .unwrap()
            .updated
            .is_empty()
    );
    assert_eq!(a.objects().get("bkt", "dir/k2").unwrap().cid, k2.cid);
}

#[tokio::test]
async fn a_mirror_taken_over_continues_the_history_and_the_old_owner_steps_down() {
    let (_a_dir, a) = node();
    put(&a, "k1", b"one").await;
    a.roots().commit().unwrap();
    let a_seq = a.store().latest_root("bkt").unwrap().unwrap().seq;
    let b_dir = tempfile::tempdir().unwrap();
    let b = reading(open(&b_dir), &a, None);
    b.replication()
        .follow_heads(&a.replication().shared_heads().unwrap())
        .unwrap();
    // promoting takes the cluster admin key: peers follow a new owner only with a takeover
    // it signed
    let err = b
        .replication()
        .promote("bkt", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cluster admin key"), "{err}");
    let admin = || cairn_node::identity::Identity::from_seed([42; 32]);
    let a = Node::builder(a.store().clone())
        .cluster_admin(None, Some(admin()))
        .build()
        .unwrap();
    let b = reading(b.store().clone(), &a, Some(admin()));
    // a bucket of its own cannot be promoted; the mirror can, and writes work there then
    assert!(a.replication().promote("bkt", false).is_err());
    let seq = b.replication().promote("bkt", false).unwrap();
    assert!(seq > a_seq, "{seq} continues {a_seq}");
    let record = b.buckets().get("bkt").unwrap();
    assert!(record.mirror.is_none() && record.taken_over.is_some());
    let head = SignedHead::verify(&b.roots().head("bkt").unwrap(), None).unwrap();
    assert_eq!(
        head.payload.taken_from.as_deref().map(|k| k.to_vec()),
        Some(a.identity().unwrap().public_key().to_vec())
    );
    let cert = head
        .payload
        .takeover
        .expect("the head carries its takeover certificate");
    assert_eq!(cert.signer_key.as_slice(), admin().public_key());
    assert_eq!(cert.to.as_slice(), b.identity().unwrap().public_key());
    let k2 = put(&b, "k2", b"two").await;
    b.roots().commit().unwrap();
    // the previous owner, back, sees the takeover and serves the new owner's version
    let a = reading(a.store().clone(), &b, Some(admin()));
    assert_eq!(
        a.replication()
            .follow_heads(&b.replication().shared_heads().unwrap())
            .unwrap()
            .updated,
        ["bkt"]
    );
    assert!(a.buckets().get("bkt").unwrap().mirror.is_some());
    assert_eq!(a.objects().get("bkt", "k2").unwrap().cid, k2.cid);
    // and an unrelated node's bucket of the same name never takes ours
    let (_o_dir, other) = node();
    put(&other, "k9", b"nine").await;
    other.roots().commit().unwrap();
    assert!(
        b.replication()
            .follow_heads(&other.replication().shared_heads().unwrap())
            .unwrap()
            .updated
            .is_empty()
    );
}

#[tokio::test]
async fn bucket_settings_and_deletion_reach_mirrors_by_signed_heads() {
    let (_a_dir, a) = node();
    put(&a, "k1", b"one").await;
    a.roots().commit().unwrap();
    let (b_dir, c_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (b, c) = (
        reading(open(&b_dir), &a, None),
        reading(open(&c_dir), &a, None),
    );
    b.replication()
        .follow_heads(&a.replication().shared_heads().unwrap())
        .unwrap();
    c.replication()
        .follow_heads(&b.replication().shared_heads().unwrap())
        .unwrap();
    assert!(!b.buckets().get("bkt").unwrap().is_public());
    let before = a.store().latest_root("bkt").unwrap().unwrap();

    // A change of the record alone is a new head (same tree), and mirrors take it.
    a.buckets().set_public("bkt", true).unwrap();
    a.roots().commit().unwrap();
    let after = a.store().latest_root("bkt").unwrap().unwrap();
    assert_eq!((after.seq, after.tree), (before.seq + 1, before.tree));
    let head = SignedHead::verify(&after.head, None).unwrap();
    assert!(head.payload.settings.is_some() && !head.payload.deleted);
    assert_eq!(
        b.replication()
            .follow_heads(&a.replication().shared_heads().unwrap())
            .unwrap()
            .updated,
        ["bkt"]
    );
    assert!(b.buckets().get("bkt").unwrap().is_public());
    // nothing changed: no new head
    a.roots().commit().unwrap();
    assert_eq!(
        a.store().latest_root("bkt").unwrap().unwrap().seq,
        after.seq
    );
    let old_heads = a.replication().shared_heads().unwrap();

    // Deleted by its owner: a tombstone head; mirrors drop the bucket and share it on.
    a.objects().delete("bkt", "k1", None).unwrap();
    a.buckets().delete("bkt").unwrap();
    a.roots().commit().unwrap();
    let tomb = a.store().latest_root("bkt").unwrap().unwrap();
    assert!(
        SignedHead::verify(&tomb.head, None)
            .unwrap()
            .payload
            .deleted
    );
    assert_eq!(
        b.replication()
            .follow_heads(&a.replication().shared_heads().unwrap())
            .unwrap()
            .updated,
        ["bkt"]
    );
    assert!(b.buckets().get("bkt").is_err());
    assert!(b.objects().get("bkt", "k1").is_err());
    assert!(
        b.replication().promote("bkt", true).is_err(),
        "a deleted bucket is not taken over"
    );
    c.replication()
        .follow_heads(&b.replication().shared_heads().unwrap())
        .unwrap();
    assert!(
        c.buckets().get("bkt").is_err(),
        "the tombstone travels through a mirror"
    );
    // an older head does not bring it back; nor does the owner's next commit
    assert!(
        b.replication()
            .follow_heads(&old_heads)
            .unwrap()
            .updated
            .is_empty()
    );
    assert!(b.buckets().get("bkt").is_err());
    a.roots().commit().unwrap();
    assert_eq!(a.store().latest_root("bkt").unwrap().unwrap().seq, tomb.seq);

    // Made again: its heads continue the sequence, and mirrors follow the new bucket.
    a.buckets().create("bkt", "root").unwrap();
    let k2 = put(&a, "k2", b"two").await;
    a.roots().commit().unwrap();
    assert!(a.store().latest_root("bkt").unwrap().unwrap().seq > tomb.seq);
    assert_eq!(
        b.replication()
            .follow_heads(&a.replication().shared_heads().unwrap())
            .unwrap()
            .updated,
        ["bkt"]
    );
    assert_eq!(b.objects().get("bkt", "k2").unwrap().cid, k2.cid);
    assert!(b.objects().get("bkt", "k1").is_err());
    assert!(!b.buckets().get("bkt").unwrap().is_public());
}
