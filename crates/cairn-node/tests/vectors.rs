//! Every UnixFS vector of ../shared/vectors gives the CID `ipfs add` gives, in both modes, and
//! reads back byte-exact; the directory tree vector too; the shared CARs round-trip.

mod common;

use std::io::Read;

use cairn_node::import::AddOptions;
use cairn_node::{CidVersion, Node};
use common::{XorShift, input_for, shared_dir, vectors};
use sha2::{Digest, Sha256};

fn node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    (dir, node)
}

#[test]
fn file_vectors_match_kubo_in_both_modes() {
    let (_dir, node) = node();
    let vectors = vectors();
    let mut checked = 0;
    for v in vectors["vectors"].as_array().unwrap() {
        if v["size"].is_null() {
            continue;
        }
        for (version, key, dag) in [
            (CidVersion::V0, "cid_v0", "dag_v0"),
            (CidVersion::V1, "cid_v1_raw", "dag_v1_raw"),
        ] {
            let link = node
                .files()
                .add_reader(&mut input_for(v), version, true)
                .unwrap();
            assert_eq!(
                link.cid.to_string(),
                v[key].as_str().unwrap(),
                "{} {key}",
                v["name"]
            );
            assert_eq!(link.file_size, v["size"].as_u64().unwrap());
            let report = node.files().check(&link.cid, false).unwrap();
            assert!(report.is_ok(), "{report:?}");
            assert_eq!(
                report.blocks,
                v[dag]["blocks"].as_u64().unwrap(),
                "{} {dag}",
                v["name"]
            );
            if let Some(expected) = v[dag].get("root_block_hex").and_then(|h| h.as_str()) {
                let root = node.store().get(&link.cid).unwrap();
                assert_eq!(hex::encode(&root), expected, "{} root block", v["name"]);
            }
            // read back: the whole file hashes to the vector's sha256
            let mut hasher = Sha256::new();
            let mut stream = node.files().cat(link.cid, None);
            let mut buf = vec![0u8; 100_000];
            loop {
                let n = stream.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            assert_eq!(
                hex::encode(hasher.finalize()),
                v["sha256"].as_str().unwrap()
            );
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} vector checks ran");
}

#[test]
fn directory_tree_vector() {
    let vectors = vectors();
    let v = vectors["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "dir-tree")
        .unwrap();
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("tree");
    std::fs::create_dir_all(tree.join("emptydir")).unwrap();
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::write(tree.join("a.txt"), b"hello world\n").unwrap();
    std::fs::write(tree.join("empty.txt"), b"").unwrap();
    std::fs::write(tree.join("sub/big.bin"), XorShift::bytes(262145)).unwrap();
    std::fs::write(tree.join("sub/one.bin"), XorShift::bytes(1)).unwrap();
    std::fs::write(tree.join("sub/deeper/z.txt"), b"z\n").unwrap();
    std::fs::write(tree.join(".hidden"), b"skipped like Kubo without --hidden").unwrap();

    for (version, key) in [(CidVersion::V0, "cid_v0"), (CidVersion::V1, "cid_v1_raw")] {
        let (_dir, node) = node();
        let opts = AddOptions {
            cid_version: version,
            recursive: true,
            hidden: false,
            pin: true,
        };
        let added = node.files().add_path(&tree, opts).unwrap();
        for (path, expected) in v["entries"].as_object().unwrap() {
            let got = added
                .iter()
                .find(|a| &a.path == path)
                .unwrap_or_else(|| panic!("{path} not added"));
            assert_eq!(
                got.cid.to_string(),
                expected[key].as_str().unwrap(),
                "{path} {key}"
            );
        }
        let root = added.last().unwrap();
        assert_eq!(root.path, "tree");
        assert_eq!(root.cid.to_string(), v[key].as_str().unwrap());

        // resolve, list, get back
        let z = node.files().resolve(root.cid, "sub/deeper/z.txt").unwrap();
        let mut text = String::new();
        node.files().cat(z, None).read_to_string(&mut text).unwrap();
        assert_eq!(text, "z\n");
        let names: Vec<String> = node
            .files()
            .ls(&root.cid)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["a.txt", "empty.txt", "emptydir", "sub"]);
        let out = tempfile::tempdir().unwrap();
        node.files()
            .get_to_path(&root.cid, &out.path().join("t"))
            .unwrap();
        assert_eq!(
            std::fs::read(out.path().join("t/sub/big.bin")).unwrap(),
            XorShift::bytes(262145)
        );
        assert!(out.path().join("t/emptydir").is_dir());
        assert!(node.files().check(&root.cid, true).unwrap().is_ok());
    }
}

#[tokio::test]
async fn shared_cars_import_and_reexport_identically() {
    let vectors = vectors();
    for car in vectors["cars"].as_array().unwrap() {
        let file = car["file"].as_str().unwrap().trim_start_matches("car/");
        let bytes = std::fs::read(shared_dir().join("vectors").join(file)).unwrap();
        let (_dir, node) = node();
        let imported = node.files().car_import(&bytes[..], true).await.unwrap();
        assert_eq!(imported.roots.len(), 1);
        assert_eq!(imported.roots[0].to_string(), car["root"].as_str().unwrap());
        assert_eq!(imported.blocks, car["blocks"].as_u64().unwrap());
        assert_eq!(imported.pinned, imported.roots);
        let mut out = Vec::new();
        let n = node
            .files()
            .car_export(imported.roots[0], &mut out)
            .await
            .unwrap();
        assert_eq!(n, imported.blocks);
        // Same roots and blocks; for these DAGs the depth-first order is the same too.
        assert_eq!(out, bytes, "{file} re-export differs");
        // And it is the DAG of the 1 MiB input.
        let link = node
            .files()
            .add_reader(
                &mut XorShift::new(1 << 20),
                if file.contains("v1") {
                    CidVersion::V1
                } else {
                    CidVersion::V0
                },
                false,
            )
            .unwrap();
        assert_eq!(link.cid, imported.roots[0]);
    }
}
