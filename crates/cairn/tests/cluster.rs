//! A three-node cluster on 127.0.0.1: nodes join the first's cluster by invite; what is written on one
//! node reads byte-exact on every other through S3 GET/HEAD/LIST, the gateway and `cairn cat`;
//! another node's bucket is read-only; a change of its ACL and its deletion reach every node;
//! providers are announced in the DHT.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{Server, cairn, ok, pattern};

fn peer_id(server: &Server) -> String {
    let id: serde_json::Value =
        serde_json::from_str(&ok(&cairn(server.data.path(), &["id", "--json"]))).unwrap();
    id["peer_id"].as_str().unwrap().to_owned()
}

async fn head_big(
    client: &aws_sdk_s3::Client,
) -> aws_sdk_s3::operation::head_object::HeadObjectOutput {
    client
        .head_object()
        .bucket("shared")
        .key("big.bin")
        .send()
        .await
        .unwrap()
}

/// Retries `f` until it returns `Some`, for up to `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_reads_what_any_node_wrote() {
    let first = Server::start();
    let (b, c) = (Server::join(&first), Server::join(&first));
    let nodes = [first, b, c];

    // Node 1 (not the bootstrap node) owns a public bucket with a one-block, a multi-block
    // and a nested object.
    let owner = &nodes[1];
    let s3 = owner.client();
    s3.create_bucket().bucket("shared").send().await.unwrap();
    common::make_public(&s3, "shared").await;
    let objects = [
        ("small.txt", pattern(100, 1)),
        ("big.bin", pattern(3_000_000, 2)),
        ("dir/nested.bin", pattern(300_000, 3)),
    ];
    for (key, body) in &objects {
        s3.put_object()
            .bucket("shared")
            .key(*key)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    }
    let head = head_big(&s3).await;
    let big_cid = head.metadata().unwrap()["cid"].clone();

    // Node 2 adds a file by CID only.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("added.bin");
    let added = pattern(1_200_000, 4);
    std::fs::write(&file, &added).unwrap();
    let added_cid = ok(&cairn(
        nodes[2].data.path(),
        &["add", "-q", file.to_str().unwrap()],
    ))
    .trim()
    .to_owned();

    for (i, node) in nodes.iter().enumerate() {
        let client = node.client();
        // S3: every object, byte-exact, once the bucket's head has reached this node
        for (key, body) in &objects {
            let got = eventually(30, &format!("{key} on node {i}"), || {
                let client = client.clone();
                async move {
                    let out = client
                        .get_object()
                        .bucket("shared")
                        .key(*key)
                        .send()
                        .await
                        .ok()?;
                    Some(out.body.collect().await.unwrap().into_bytes())
                }
            })
            .await;
            assert!(got.as_ref() == body.as_slice(), "{key} differs on node {i}");
        }
        let listed = client
            .list_objects_v2()
            .bucket("shared")
            .send()
            .await
            .unwrap();
        let mut keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
        keys.sort();
        assert_eq!(keys, ["big.bin", "dir/nested.bin", "small.txt"], "node {i}");
        let h = head_big(&client).await;
        assert_eq!(h.content_length(), Some(3_000_000));
        assert_eq!(h.e_tag(), head.e_tag());

        // Gateway: the public object by CID
        let url = format!("http://{}/ipfs/{big_cid}", node.gateway);
        let body = ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .unwrap();
        assert!(body == objects[1].1, "gateway bytes differ on node {i}");

        // CLI: the added file and the object, by CID
        for (cid, want) in [(&added_cid, &added), (&big_cid, &objects[1].1)] {
            let out = cairn(node.data.path(), &["cat", cid]);
            assert!(
                out.status.success(),
                "node {i}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == *want, "cat {cid} differs on node {i}");
        }
    }

    // Another node's bucket is read-only: a clear 503, and the owner's data is untouched.
    let err = nodes[0]
        .client()
        .put_object()
        .bucket("shared")
        .key("small.txt")
        .body(ByteStream::from_static(b"overwrite"))
        .send()
        .await
        .unwrap_err();
    let raw = err.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 503);
    assert!(format!("{:?}", err.into_service_error()).contains("ServiceUnavailable"));

    // A newer version on the owner reaches the others.
    s3.put_object()
        .bucket("shared")
        .key("small.txt")
        .body(ByteStream::from_static(b"second version"))
        .send()
        .await
        .unwrap();
    let c = nodes[2].client();
    eventually(30, "the new version on node 2", || {
        let c = c.clone();
        async move {
            let out = c
                .get_object()
                .bucket("shared")
                .key("small.txt")
                .send()
                .await
                .ok()?;
            let bytes = out.body.collect().await.unwrap().into_bytes();
            (bytes.as_ref() == b"second version").then_some(())
        }
    })
    .await;

    // A change of the bucket's record alone reaches the others: its policy dropped on the owner,
    // it is refused to anonymous readers everywhere.
    assert_eq!(nodes[2].raw("GET", "/shared/small.txt").0, 200);
    s3.delete_bucket_policy()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    for (i, node) in nodes.iter().enumerate() {
        eventually(30, &format!("the private bucket on node {i}"), || {
            let status = node.raw("GET", "/shared/small.txt").0;
            async move { (status == 403).then_some(()) }
        })
        .await;
    }

    // Deleted by its owner: gone from every node (a tombstone head), not left read-only.
    for (key, _) in &objects {
        s3.delete_object()
            .bucket("shared")
            .key(*key)
            .send()
            .await
            .unwrap();
    }
    s3.delete_bucket().bucket("shared").send().await.unwrap();
    for (i, node) in nodes.iter().enumerate() {
        let client = node.client();
        eventually(30, &format!("the deleted bucket gone on node {i}"), || {
            let client = client.clone();
            async move {
                let err = client.head_bucket().bucket("shared").send().await.err()?;
                (err.raw_response()?.status().as_u16() == 404).then_some(())
            }
        })
        .await;
    }

    // The DHT knows who provides the added file (announced by node 2's provide job).
    let provider = peer_id(&nodes[2]);
    eventually(30, "node 2 as provider", || {
        let out = cairn(nodes[0].data.path(), &["providers", &added_cid]);
        let found = String::from_utf8_lossy(&out.stdout).contains(&provider);
        async move { found.then_some(()) }
    })
    .await;
}
