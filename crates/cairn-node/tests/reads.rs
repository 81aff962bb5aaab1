//! One read plan for GET and HEAD (`Objects::read`): the version asked, its preconditions,
//! the part or range, and the bytes `Objects::body` streams for it.

use bytes::Bytes;
use cairn_dag::CidVersion;
use cairn_node::read::{ByteRange, Conditions, EtagCondition, ReadObject};
use cairn_node::{Node, NodeError};
use futures::StreamExt;

async fn put(
    node: &Node,
    key: &str,
    data: &'static [u8],
) -> cairn_node::model::records::ObjectInfo {
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(data))]);
    let staged = node
        .objects()
        .stage(Some("bkt"), body, CidVersion::V1)
        .await
        .unwrap();
    node.objects()
        .commit(staged, "bkt", key, Default::default())
        .unwrap()
}

async fn body(node: &Node, read: ReadObject<'_>) -> Result<(Option<String>, Vec<u8>), NodeError> {
    let plan = node.objects().read(read)?;
    let mut stream = node.objects().body(&plan)?;
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece?);
    }
    assert_eq!(
        out.len() as u64,
        plan.length(),
        "the plan's length is what streams"
    );
    Ok((plan.content_range(), out))
}

#[tokio::test]
async fn one_plan_reads_versions_ranges_parts_and_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.buckets().create("bkt", "root").unwrap();
    node.buckets().set_versioning("bkt", "Enabled").unwrap();
    let first = put(&node, "k", b"0123456789").await;
    let second = put(&node, "k", b"abcdefghij").await;
    let read = |version| ReadObject {
        bucket: "bkt",
        key: "k",
        version,
        ..Default::default()
    };

    // The current version, whole; an older one by its id.
    assert_eq!(
        body(&node, read(None)).await.unwrap(),
        (None, b"abcdefghij".to_vec())
    );
    let old = first.meta.version_id.clone().unwrap();
    assert_eq!(
        body(&node, read(Some(&old))).await.unwrap().1,
        b"0123456789".to_vec()
    );
    // A range, and the last bytes.
    let ranged = ReadObject {
        range: Some(ByteRange::From {
            first: 2,
            last: Some(4),
        }),
        ..read(None)
    };
    assert_eq!(
        body(&node, ranged).await.unwrap(),
        (Some("bytes 2-4/10".into()), b"cde".to_vec())
    );
    let suffix = ReadObject {
        range: Some(ByteRange::Suffix { length: 3 }),
        ..read(Some(&old))
    };
    assert_eq!(body(&node, suffix).await.unwrap().1, b"789".to_vec());
    let beyond = ReadObject {
        range: Some(ByteRange::From {
            first: 10,
            last: None,
        }),
        ..read(None)
    };
    assert!(matches!(
        node.objects().read(beyond),
        Err(NodeError::InvalidRange { size: 10 })
    ));
    // A single-part object has part 1 (all of it) and no part 2; the part wins over a range.
    let part = |n| ReadObject {
        part: Some(n),
        range: Some(ByteRange::Suffix { length: 1 }),
        ..read(None)
    };
    let plan = node.objects().read(part(1)).unwrap();
    assert_eq!(
        (plan.range().cloned(), plan.parts_count()),
        (Some(0..10), Some(1))
    );
    assert!(matches!(
        node.objects().read(part(2)),
        Err(NodeError::InvalidPart(_))
    ));
    // A part number S3 never allows is refused, after the preconditions.
    for n in [0, 10_001] {
        assert!(matches!(
            node.objects().read(part(n)),
            Err(NodeError::Unsupported(_))
        ));
    }
    let stale = ReadObject {
        conditions: Conditions {
            if_match: Some(EtagCondition::Etag("not-this".into())),
            ..Default::default()
        },
        ..part(0)
    };
    assert!(matches!(
        node.objects().read(stale),
        Err(NodeError::PreconditionFailed)
    ));
    // Preconditions are checked against the version read.
    let current = second.meta.etag.clone();
    let if_none = |etag: &str| ReadObject {
        conditions: Conditions {
            if_none_match: Some(EtagCondition::Etag(etag.into())),
            ..Default::default()
        },
        ..read(None)
    };
    assert!(matches!(
        node.objects().read(if_none(&current)),
        Err(NodeError::NotModified { etag }) if etag == current
    ));
    assert!(node.objects().read(if_none(&first.meta.etag)).is_ok());
    let if_match = ReadObject {
        conditions: Conditions {
            if_match: Some(EtagCondition::Etag(first.meta.etag.clone())),
            ..Default::default()
        },
        ..read(None)
    };
    assert!(matches!(
        node.objects().read(if_match),
        Err(NodeError::PreconditionFailed)
    ));
    // A plain object is not read with a customer key.
    let keyed = ReadObject {
        customer: Some((cairn_node::crypt::Key::random().unwrap(), "md5".into())),
        ..read(None)
    };
    assert!(matches!(
        node.objects().read(keyed),
        Err(NodeError::CustomerKey(_))
    ));
    // What the access decision already read is not read again: a known version is the answer.
    let known = ReadObject {
        known: Some(first.clone()),
        ..read(None)
    };
    assert_eq!(body(&node, known).await.unwrap().1, b"0123456789".to_vec());
}

#[tokio::test]
async fn a_copy_reads_its_source_through_the_plan_and_refuses_an_empty_self_copy() {
    use cairn_node::crypt::Sse;
    use cairn_node::objects::{CopyChanges, CopyObject};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.buckets().create("bkt", "root").unwrap();
    let src = put(&node, "a", b"copied bytes").await;
    let plan = node
        .objects()
        .read(ReadObject {
            bucket: "bkt",
            key: "a",
            ..Default::default()
        })
        .unwrap();
    let copy = |to, changes| CopyObject {
        source: &plan,
        source_key: "a",
        source_version: None,
        to: ("bkt", to),
        encryption: Sse::Default,
        changes,
    };
    // A plaintext copy names the source's DAG.
    let copied = node
        .objects()
        .copy(copy("b", CopyChanges::default()))
        .await
        .unwrap();
    assert_eq!(copied.cid, src.cid);
    // Onto itself it must change something.
    assert!(matches!(
        node.objects().copy(copy("a", CopyChanges::default())).await,
        Err(NodeError::CopyToItself)
    ));
    let mut meta = src.meta.clone();
    meta.content_type = Some("text/plain".into());
    let changed = CopyChanges {
        meta: Some(meta),
        tags: None,
    };
    let same = node.objects().copy(copy("a", changed)).await.unwrap();
    assert_eq!(
        (same.cid, same.meta.content_type.as_deref()),
        (src.cid, Some("text/plain"))
    );
}

#[tokio::test]
async fn a_copy_copies_the_version_its_plan_checked() {
    use cairn_node::crypt::Sse;
    use cairn_node::objects::{CopyChanges, CopyObject};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.buckets().create("bkt", "root").unwrap();
    node.buckets().set_versioning("bkt", "Enabled").unwrap();
    let planned = put(&node, "a", b"the version checked").await;
    let plan = node
        .objects()
        .read(ReadObject {
            bucket: "bkt",
            key: "a",
            conditions: Conditions {
                if_match: Some(EtagCondition::Etag(planned.meta.etag.clone())),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
    // A newer version lands between the plan and the copy.
    let newer = put(&node, "a", b"written after the check").await;
    assert_ne!(newer.cid, planned.cid);
    let copied = node
        .objects()
        .copy(CopyObject {
            source: &plan,
            source_key: "a",
            source_version: None,
            to: ("bkt", "b"),
            encryption: Sse::Default,
            changes: CopyChanges::default(),
        })
        .await
        .unwrap();
    assert_eq!(copied.cid, planned.cid);
}
