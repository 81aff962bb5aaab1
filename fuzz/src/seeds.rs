//! Seed inputs of each target, made with the encoders of the code itself (files, directories,
//! HAMT shards, records, heads, messages), a few hundred bytes each. `fuzz/seeds/<target>/`
//! holds them (`CAIRN_FUZZ_SEEDS=fuzz/seeds/<target> fuzz/target/.../<target>` remakes them).

use std::collections::BTreeMap;

use bytes::Bytes;
use cairn_bitswap::{Message, PayloadBlock, PresenceType, WantEntry, WantType};
use cairn_cluster::proto::{self, Request, Response, WireBlock};
use cairn_cluster::stripe;
use cairn_dag::dir::{DirectoryBuilder, symlink};
use cairn_dag::file::{BalancedLayout, encode_leaf};
use cairn_dag::hamt::{self, shard_node};
use cairn_dag::meta::{UnixMeta, UnixTime, with_metadata};
use cairn_dag::{Block, Cid, CidVersion, DAG_PB, RAW, cid_of};
use cairn_node::identity::Identity;
use cairn_node::jobs::{JobRecord, JobState};
use cairn_node::model::records::{BucketRecord, ObjectMeta};
use cairn_node::model::heads::{HeadPayload, ObjectRecord, SignedHead, VersionRecord};
use ipld_core::ipld::Ipld;
use serde_bytes::ByteBuf;

use crate::{BlockSet, header};

type Seeds = Vec<(String, Vec<u8>)>;

fn named(prefix: &str, items: Vec<Vec<u8>>) -> Seeds {
    items
        .into_iter()
        .enumerate()
        .map(|(i, b)| (format!("{prefix}-{i:02}"), b))
        .collect()
}

/// A file of small leaves (`n` of `len` bytes) laid out like `ipfs add`: its blocks, root last.
pub fn small_file(n: usize, len: usize, version: CidVersion) -> Vec<Block> {
    let mut layout = BalancedLayout::new(version);
    let mut blocks = Vec::new();
    for i in 0..n {
        let chunk: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
        let (leaf, link) = encode_leaf(&chunk, version);
        blocks.push(leaf);
        blocks.extend(layout.push_leaf(link));
    }
    let (rest, _) = layout.finish().expect("a file finishes");
    blocks.extend(rest);
    blocks
}

/// A plain directory `d` holding a file, an empty folder and a symlink: blocks, root last.
pub fn small_dir(version: CidVersion) -> Vec<Block> {
    let mut blocks = small_file(3, 5, version);
    let file = blocks.last().expect("a file").clone();
    let link = symlink("a", version);
    let mut builder = DirectoryBuilder::new(version);
    builder
        .add_link("d/a", file.cid, file.data.len() as u64)
        .expect("add a file");
    builder.add_dir("d/e").expect("add a folder");
    builder
        .add_link("d/l", link.cid, link.data.len() as u64)
        .expect("add a symlink");
    blocks.push(link);
    blocks.extend(
        builder
            .build()
            .expect("a tree")
            .into_iter()
            .map(|n| n.block),
    );
    blocks
}

/// A HAMT directory of names placed by their hash, two of them (`a`, and the one after it that
/// shares its first slot) under a sub-shard: blocks, root last.
pub fn small_hamt(version: CidVersion) -> Vec<Block> {
    let leaf = Block::new(CidVersion::V1, RAW, &b"x"[..]).expect("a leaf");
    let names = ["a", "b", "c", "index.html"];
    let first = hamt::hash("a")[0];
    // a second name sharing `a`'s first slot
    let twin = (0..10_000)
        .map(|i| format!("n{i}"))
        .find(|n| hamt::hash(n)[0] == first)
        .expect("a name in the same slot");
    let sub = shard_node(
        &[
            (format!("{:02X}a", hamt::hash("a")[1]), leaf.cid, 1),
            (format!("{:02X}{twin}", hamt::hash(&twin)[1]), leaf.cid, 1),
        ],
        version,
    )
    .expect("a sub-shard");
    let mut links = vec![(format!("{first:02X}"), sub.cid, sub.data.len() as u64)];
    for n in &names[1..] {
        links.push((format!("{:02X}{n}", hamt::hash(n)[0]), leaf.cid, 1));
    }
    links.sort();
    let root = shard_node(&links, version).expect("a root shard");
    vec![leaf, sub, root]
}

fn dag_pb_seeds() -> Seeds {
    let mut out = Vec::new();
    for version in [CidVersion::V0, CidVersion::V1] {
        for blocks in [
            small_file(3, 5, version),
            small_dir(version),
            small_hamt(version),
        ] {
            out.extend(
                blocks
                    .into_iter()
                    .filter(|b| b.cid.codec() == DAG_PB)
                    .map(|b| b.data.to_vec()),
            );
        }
    }
    let leaf = small_file(1, 9, CidVersion::V0).pop().expect("a leaf");
    let meta = UnixMeta {
        mode: Some(0o755),
        mtime: Some(UnixTime {
            secs: 1_700_000_000,
            nsecs: 5,
        }),
    };
    out.push(with_metadata(&leaf, &meta).expect("metadata").data.to_vec());
    out.sort();
    out.dedup();
    named("block", out)
}

fn cid(n: u8) -> Cid {
    cid_of(CidVersion::V1, RAW, &[n]).expect("a CID")
}

fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_ipld_dagcbor::to_vec(v).expect("encodes")
}

/// A signed head of bucket `photos`, as its owner makes it.
pub fn signed_head(seq: u64) -> SignedHead {
    let payload = HeadPayload {
        bucket: "photos".into(),
        seq,
        time_ms: 1_700_000_000_000,
        tree: cid(1),
        record: cid(2),
        taken_from: None,
        settings: Some(ByteBuf::from(vec![7u8; 32])),
        deleted: false,
        takeover: None,
    };
    SignedHead::sign(payload, &Identity::from_seed([9; 32])).expect("signs")
}

fn bucket_record() -> BucketRecord {
    BucketRecord {
        created_ms: 1,
        owner: "alice".into(),
        versioning: Some("Enabled".into()),
        ..Default::default()
    }
}

fn dag_cbor_seeds() -> Seeds {
    let meta = ObjectMeta {
        size: 5,
        etag: "5d41402abc4b2a76b9719d911017c592".into(),
        content_type: Some("text/plain".into()),
        user: BTreeMap::from([("k".into(), "v".into())]),
        ..Default::default()
    };
    let version = VersionRecord {
        kind: "cairn/bucket-version/1".into(),
        bucket: "photos".into(),
        seq: 3,
        time_ms: 4,
        tree: cid(1),
        objects: cid(2),
        prev: Some(cid(3)),
        settings: Some(bucket_record()),
    };
    let object = ObjectRecord {
        key: "a/b.txt".into(),
        data: cid(4),
        meta: meta.clone(),
    };
    let links = Ipld::Map(BTreeMap::from([
        ("a".into(), Ipld::Link(cid(5))),
        (
            "l".into(),
            Ipld::List(vec![
                Ipld::Link(cid(6)),
                Ipld::Integer(-1),
                Ipld::Float(0.5),
            ]),
        ),
    ]));
    named(
        "record",
        vec![
            cbor(&version),
            cbor(&object),
            cbor(&bucket_record()),
            cbor(&meta),
            signed_head(1).to_bytes().expect("encodes"),
            cbor(&links),
        ],
    )
}

/// A CARv1 of `roots` and `blocks`, as `ipfs dag export` writes one.
pub fn car(roots: &[Cid], blocks: &[Block]) -> Vec<u8> {
    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    let header = Ipld::Map(BTreeMap::from([
        (
            "roots".into(),
            Ipld::List(roots.iter().map(|c| Ipld::Link(*c)).collect()),
        ),
        ("version".into(), Ipld::Integer(1)),
    ]));
    let header = cbor(&header);
    let mut out = Vec::new();
    varint(header.len(), &mut out);
    out.extend_from_slice(&header);
    for b in blocks {
        let cid = b.cid.to_bytes();
        varint(cid.len() + b.data.len(), &mut out);
        out.extend_from_slice(&cid);
        out.extend_from_slice(&b.data);
    }
    out
}

fn car_seeds() -> Seeds {
    let mut out = Vec::new();
    for blocks in [
        small_file(3, 5, CidVersion::V0),
        small_file(4, 3, CidVersion::V1),
        small_dir(CidVersion::V1),
        small_hamt(CidVersion::V0),
    ] {
        let root = blocks.last().expect("a root").cid;
        out.push(car(&[root], &blocks));
    }
    out.push(car(&[], &[]));
    named("car", out)
}

fn dag_walk_seeds() -> Seeds {
    let mut out = Vec::new();
    let cases: [(&str, u8, Vec<Block>); 6] = [
        ("", 2, small_file(5, 4, CidVersion::V0)),
        ("", 1 | 4, small_file(5, 4, CidVersion::V1)),
        ("a", 2, small_dir(CidVersion::V0)),
        ("l", 1, small_dir(CidVersion::V1)),
        ("a", 1, small_hamt(CidVersion::V1)),
        ("index.html", 2 | 16, small_hamt(CidVersion::V0)),
    ];
    for (path, flags, blocks) in cases {
        let mut input = vec![path.len() as u8];
        input.extend_from_slice(path.as_bytes());
        input.push(flags);
        input.extend_from_slice(&1u16.to_le_bytes());
        input.extend_from_slice(&7u16.to_le_bytes());
        let encoded: Vec<(u8, &[u8])> = blocks
            .iter()
            .map(|b| {
                let version = if b.cid.version() == cid::Version::V0 {
                    CidVersion::V0
                } else {
                    CidVersion::V1
                };
                (header(version, b.cid.codec(), false), &b.data[..])
            })
            .collect();
        input.extend_from_slice(&BlockSet::encode(&encoded));
        out.push(input);
    }
    named("set", out)
}

/// The blocks the Bitswap target's store holds and those its engine wants.
pub fn bitswap_blocks() -> (Vec<(Cid, Bytes)>, Vec<(Cid, Bytes)>) {
    let block = |s: &'static [u8], version, codec| {
        let b = Block::new(version, codec, s).expect("a block");
        (b.cid, b.data)
    };
    (
        vec![
            block(b"held raw", CidVersion::V1, RAW),
            block(b"\x0a\x02\x08\x02", CidVersion::V0, DAG_PB),
        ],
        vec![
            block(b"wanted raw", CidVersion::V1, RAW),
            block(b"\x0a\x03\x08\x02\x18", CidVersion::V0, DAG_PB),
        ],
    )
}

fn bitswap_seeds() -> Seeds {
    let (held, wanted) = bitswap_blocks();
    let wants = Message {
        full: true,
        wantlist: vec![
            WantEntry::want(held[0].0, WantType::Have, 3, true),
            WantEntry::want(held[1].0, WantType::Block, 1, false),
            WantEntry::want(cid(1), WantType::Block, 1, true),
            WantEntry::cancel(cid(2)),
        ],
        ..Default::default()
    };
    let answers = Message {
        payload: wanted
            .iter()
            .map(|(c, d)| PayloadBlock::new(c, d.clone()))
            .collect(),
        presences: vec![cairn_bitswap::BlockPresence {
            cid: wanted[0].0,
            presence: PresenceType::DontHave,
        }],
        blocks: vec![wanted[1].1.clone()],
        pending_bytes: 9,
        ..Default::default()
    };
    let mut both = vec![7u8];
    both.extend_from_slice(&wants.encode_frame());
    both.extend_from_slice(&answers.encode_frame());
    let mut one = vec![255u8];
    one.extend_from_slice(&answers.encode_frame());
    named("stream", vec![both, one])
}

fn piece_seeds() -> Seeds {
    let blocks = small_file(2, 40, CidVersion::V1);
    let (_, manifest, parity) = stripe::encode(&blocks[..2], 1).expect("a stripe");
    let wire = |b: &Block| WireBlock {
        cid: b.cid,
        data: ByteBuf::from(b.data.to_vec()),
    };
    named(
        "msg",
        vec![
            proto::encode(&Request::Put {
                pieces: vec![wire(&blocks[0]), wire(&parity[0])],
                stripe: Some(wire(&manifest)),
                copies: None,
                owners: None,
            }),
            proto::encode(&Request::put_one(&blocks[1], None, Some(2))),
            proto::encode(&Request::put_one_for(
                &blocks[1],
                None,
                Some(2),
                Some(vec![ByteBuf::from(b"owner-peer-id".to_vec())]),
            )),
            proto::encode(&Request::Referenced {
                blocks: vec![cid(1), cid(2)],
            }),
            proto::encode(&Response::Referenced(vec![true, false])),
            proto::encode(&Request::Has {
                cids: vec![cid(1), cid(2)],
            }),
            proto::encode(&Request::PutRecord {
                key: "head/photos".into(),
                bytes: ByteBuf::from(vec![1, 2, 3]),
            }),
            proto::encode(&Response::Located {
                have: true,
                stripe: Some(wire(&manifest)),
            }),
            proto::encode(&Response::Held(vec![true, false])),
            manifest.data.to_vec(),
        ],
    )
}

fn shared(items: &[(Vec<u8>, Option<BucketRecord>)]) -> Vec<u8> {
    let list: Vec<Ipld> = items
        .iter()
        .map(|(head, bucket)| {
            let bucket = match bucket {
                Some(b) => serde_ipld_dagcbor::from_slice(&cbor(b)).expect("an Ipld"),
                None => Ipld::Null,
            };
            Ipld::Map(BTreeMap::from([
                ("head".into(), Ipld::Bytes(head.clone())),
                ("bucket".into(), bucket),
            ]))
        })
        .collect();
    cbor(&Ipld::List(list))
}

fn heads_seeds() -> Seeds {
    let head = signed_head(4).to_bytes().expect("encodes");
    let record = shared(&[(head.clone(), Some(bucket_record()))]);
    // the record's own encoding (one item, not a list)
    let one = {
        let list: Vec<Ipld> = serde_ipld_dagcbor::from_slice(&record).expect("a list");
        cbor(&list[0])
    };
    let key = b"head/photos";
    let mut keyed = vec![key.len() as u8];
    keyed.extend_from_slice(key);
    keyed.extend_from_slice(&one);
    named(
        "heads",
        vec![
            record,
            shared(&[(head.clone(), None), (head.clone(), Some(bucket_record()))]),
            keyed,
            head,
        ],
    )
}

fn framings_seeds() -> Seeds {
    let mut stream = vec![0u8, 3];
    for file in [&b"hello"[..], b"", b"a longer file in two chunks"] {
        for chunk in file.chunks(16) {
            stream.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
            stream.extend_from_slice(chunk);
        }
        stream.extend_from_slice(&0u32.to_be_bytes());
    }
    let record = JobRecord {
        job_id: "0123456789abcdef0123456789abcdef".into(),
        state: JobState::Done,
        error: None,
        cid: Some(cid(1).to_string()),
        blake3: Some("00".repeat(32)),
        size: Some(5),
        ext: Some("png".into()),
        cid_version: 1,
        created_ms: 1,
        finished_ms: Some(2),
        owner: Some("alice".into()),
        public: true,
    };
    let mut job = vec![1u8, 32];
    job.extend_from_slice(record.job_id.as_bytes());
    job.extend_from_slice(&cbor(&record));
    named("framed", vec![stream, job])
}

/// The seeds of `target`: (file name, bytes).
pub fn seeds(target: &str) -> Seeds {
    match target {
        "dag_pb" => dag_pb_seeds(),
        "dag_cbor" => dag_cbor_seeds(),
        "car" => car_seeds(),
        "dag_walk" => dag_walk_seeds(),
        "bitswap" => bitswap_seeds(),
        "piece" => piece_seeds(),
        "heads" => heads_seeds(),
        "framings" => framings_seeds(),
        _ => Vec::new(),
    }
}
