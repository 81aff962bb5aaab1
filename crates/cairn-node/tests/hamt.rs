//! `add -r` of a directory big enough to shard gives the CID of the JavaScript UnixFS importer
//! (ipfs-unixfs-importer 17.1.1, which produced ../shared/vectors) configured like Kubo:
//! `links-bytes` estimate, threshold 262144, fanout 256. With CIDv0 a link costs 38 + 34 bytes,
//! so 3641 files (262152 B) shard. More sizes, around the threshold and in both CID versions,
//! are checked in memory in `cairn-dag` (`dir::tests::hamt_trees_match_the_reference_importer`).

use cairn_node::import::AddOptions;
use cairn_node::{CidVersion, Node};

#[test]
fn add_r_of_a_sharded_directory_matches_the_reference_importer() {
    let n = 3641;
    let src = tempfile::tempdir().unwrap();
    let big = src.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..n {
        let name = format!("file-with-a-fairly-long-name-{i:05}.txt");
        std::fs::write(big.join(name), format!("hello {i}\n")).unwrap();
    }
    let store = tempfile::tempdir().unwrap();
    let node = Node::open(store.path()).unwrap();
    let opts = AddOptions {
        cid_version: CidVersion::V0,
        recursive: true,
        hidden: false,
        pin: true,
    };
    let added = node.files().add_path(&big, opts).unwrap();
    let root = added.last().unwrap();
    assert_eq!(
        root.cid.to_string(),
        "QmdDhgcMmwY8AnSiMeERuDvqSNhBa2aAwFWzTvgbjbDtgd"
    );
    assert_eq!(
        node.files().describe(&root.cid).unwrap(),
        cairn_dag::dir::NodeKind::Directory { sharded: true }
    );
    // listing, path resolution and a hard check all go through the shards
    assert_eq!(node.files().list(&root.cid).unwrap().len(), n);
    let last = format!("file-with-a-fairly-long-name-{:05}.txt", n - 1);
    let cid = node.files().resolve(root.cid, &last).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut node.files().cat(cid, None), &mut text).unwrap();
    assert_eq!(text, format!("hello {}\n", n - 1));
    assert!(node.files().check(&root.cid, true).unwrap().is_ok());
}
