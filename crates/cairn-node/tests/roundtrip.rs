//! Property tests through the real (parallel, store-backed) importer: random bytes of random
//! sizes around chunk and 174-link boundaries, pushed in random piece sizes, read back
//! byte-exact, and random ranges equal the slice.

use std::io::Read;
use std::sync::Arc;

use cairn_dag::CHUNK_SIZE;
use cairn_node::import::FileImporter;
use cairn_node::{CidVersion, Node};
use proptest::prelude::*;

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..2048,
        (1usize..12, 0usize..=3).prop_map(|(k, d)| k * CHUNK_SIZE + d),
        (1usize..12, 1usize..4).prop_map(|(k, d)| k * CHUNK_SIZE - d),
        0usize..(6 << 20),
    ]
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn import_export_roundtrip(
        len in size_strategy(),
        seed in any::<u64>(),
        piece in 1usize..700_000,
        v1 in any::<bool>(),
        ranges in proptest::collection::vec((any::<u64>(), any::<u64>()), 3),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let data = bytes(len, seed);
        let version = if v1 { CidVersion::V1 } else { CidVersion::V0 };

        let batch = Arc::new(node.store().batch());
        let mut importer = FileImporter::new(batch.clone(), version);
        for p in data.chunks(piece) {
            importer.write(p).unwrap();
        }
        let link = importer.finish().unwrap();
        Arc::try_unwrap(batch).unwrap().commit(&[link.cid]).unwrap();

        // Same CID as the pure whole-buffer encoder.
        let (_, reference) = cairn_dag::file::encode_bytes(&data, version);
        prop_assert_eq!(link.cid, reference.link.cid);
        prop_assert_eq!(link.file_size, len as u64);

        let mut back = Vec::new();
        node.files().cat(link.cid, None).read_to_end(&mut back).unwrap();
        prop_assert!(back == data, "round trip differs");
        for (a, b) in ranges {
            let start = if len == 0 { 0 } else { a % (len as u64 + 1) };
            let end = start + b % (len as u64 - start + 1);
            let mut part = Vec::new();
            node.files().cat(link.cid, Some(start..end)).read_to_end(&mut part).unwrap();
            prop_assert!(part[..] == data[start as usize..end as usize], "range {}..{}", start, end);
        }
        prop_assert!(node.files().check(&link.cid, true).unwrap().is_ok());
    }
}

#[test]
fn boundary_174_links_roundtrip() {
    for len in [174 * CHUNK_SIZE, 174 * CHUNK_SIZE + 1] {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let data = bytes(len, 7);
        let link = node
            .files()
            .add_reader(&mut &data[..], CidVersion::V1, true)
            .unwrap();
        let mut back = Vec::new();
        node.files()
            .cat(link.cid, None)
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data);
        let start = 173 * CHUNK_SIZE as u64 - 10;
        let mut part = Vec::new();
        node.files()
            .cat(link.cid, Some(start..start + 100))
            .read_to_end(&mut part)
            .unwrap();
        assert_eq!(part[..], data[start as usize..start as usize + 100]);
    }
}

#[test]
fn range_past_the_end_is_empty_and_dedup_stores_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    let data = bytes(3 * CHUNK_SIZE, 1);
    let a = node
        .files()
        .add_reader(&mut &data[..], CidVersion::V0, true)
        .unwrap();
    let (blocks, bytes_before) = node.store().stats().unwrap();
    let b = node
        .files()
        .add_reader(&mut &data[..], CidVersion::V0, true)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(node.store().stats().unwrap(), (blocks, bytes_before));
    let mut part = Vec::new();
    node.files()
        .cat(a.cid, Some(10 * CHUNK_SIZE as u64..u64::MAX))
        .read_to_end(&mut part)
        .unwrap();
    assert!(part.is_empty());
}

#[tokio::test]
async fn car_with_a_bad_block_stores_nothing() {
    let src = tempfile::tempdir().unwrap();
    let node = Node::open(src.path()).unwrap();
    let data = bytes(5 * CHUNK_SIZE, 3);
    let link = node
        .files()
        .add_reader(&mut &data[..], CidVersion::V1, true)
        .unwrap();
    let mut car = Vec::new();
    node.files().car_export(link.cid, &mut car).await.unwrap();
    let last = car.len() - 10;
    car[last] ^= 0x40; // inside the last block's data

    let dst = tempfile::tempdir().unwrap();
    let other = Node::open(dst.path()).unwrap();
    let err = other.files().car_import(&car[..], true).await.unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(other.store().stats().unwrap(), (0, 0));
    assert!(other.store().pins().unwrap().is_empty());
    let files = walkdir(dst.path().join("blocks"));
    assert_eq!(files, 0, "a rejected CAR left block files behind");
}

fn walkdir(dir: std::path::PathBuf) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                walkdir(e.path())
            } else {
                1
            }
        })
        .sum()
}
