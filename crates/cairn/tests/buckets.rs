//! Buckets as IPLD through the real front doors: objects put over S3 give a root equal to
//! `cairn add -r` of the same tree, readable by path through the gateway; history, restore,
//! export/import and signed heads through the CLI while the node runs.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::{Server, cairn, ok, pattern};

fn root(server: &Server, bucket: &str) -> String {
    ok(&cairn(server.data.path(), &["bucket", "root", bucket]))
        .trim()
        .to_owned()
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

fn gateway(server: &Server, path: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(format!("http://{}{path}", server.gateway))
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_vec().unwrap())
}

#[tokio::test]
async fn s3_bucket_root_equals_add_r_and_serves_paths_through_the_gateway() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("tree").send().await.unwrap();
    let files = [
        ("a.txt", b"hello a\n".to_vec()),
        ("dir/b.bin", pattern(1_300_000, 3)),
        ("dir/sub/c", b"c's bytes".to_vec()),
    ];
    let disk = tempfile::tempdir().unwrap();
    for (key, body) in &files {
        put(&s3, "tree", key, body.clone()).await;
        let path = disk.path().join("tree").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    let bucket_root = root(&server, "tree");
    let store = tempfile::tempdir().unwrap();
    let added = ok(&cairn(
        store.path(),
        &["add", "-r", disk.path().join("tree").to_str().unwrap()],
    ));
    assert_eq!(bucket_root, common::added_root(&added));

    // private bucket: its root is not published
    let c_path = format!("/ipfs/{bucket_root}/dir/sub/c");
    assert_eq!(gateway(&server, &c_path).0, 404);
    ok(&cairn(
        server.data.path(),
        &["bucket", "set-public", "tree"],
    ));
    let (status, body) = gateway(&server, &c_path);
    assert_eq!(status, 200);
    assert_eq!(body, b"c's bytes");
    let (status, body) = gateway(&server, &format!("/ipfs/{bucket_root}/dir/b.bin"));
    assert_eq!(status, 200);
    assert!(body == files[1].1, "b.bin differs");

    // HEAD /bucket names the root (anonymous now that the bucket is public)
    let head = ureq::head(format!("{}/tree", server.endpoint()))
        .call()
        .unwrap();
    assert_eq!(
        head.headers()
            .get("x-cairn-root")
            .unwrap()
            .to_str()
            .unwrap(),
        bucket_root
    );

    // a change shows up in HEAD within a second, without asking for the root
    put(&s3, "tree", "dir/sub/d", b"new".to_vec()).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let changed = loop {
        let head = ureq::head(format!("{}/tree", server.endpoint()))
            .call()
            .unwrap();
        let now = head.headers()["x-cairn-root"].to_str().unwrap().to_owned();
        if now != bucket_root {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "root never changed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(
        gateway(&server, &format!("/ipfs/{changed}/dir/sub/d")).1,
        b"new"
    );
}

#[tokio::test]
async fn overwrite_delete_then_restore_an_old_root_and_gc_keeps_history() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("docs").send().await.unwrap();
    put(&s3, "docs", "report.txt", b"the real report".to_vec()).await;
    put(&s3, "docs", "notes/todo", b"buy milk".to_vec()).await;
    let good = root(&server, "docs");

    put(&s3, "docs", "report.txt", b"encrypted garbage".to_vec()).await;
    s3.delete_object()
        .bucket("docs")
        .key("notes/todo")
        .send()
        .await
        .unwrap();
    let bad = root(&server, "docs");
    assert_ne!(good, bad);
    ok(&cairn(server.data.path(), &["gc"]));

    let history = ok(&cairn(server.data.path(), &["bucket", "history", "docs"]));
    let roots: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(roots.contains(&good.as_str()), "{history}");
    assert!(roots.contains(&bad.as_str()), "{history}");

    let restored = ok(&cairn(
        server.data.path(),
        &["bucket", "restore", "docs", "--root", &good],
    ));
    assert!(restored.contains("2 objects written back"), "{restored}");
    assert_eq!(get(&s3, "docs", "report.txt").await, b"the real report");
    assert_eq!(get(&s3, "docs", "notes/todo").await, b"buy milk");
    assert_eq!(root(&server, "docs"), good);
    let history = ok(&cairn(server.data.path(), &["bucket", "history", "docs"]));
    assert!(history.lines().count() >= 3, "{history}"); // (empty,) good, bad, restored

    // an unknown root is refused with a clear error
    let out = cairn(
        server.data.path(),
        &[
            "bucket",
            "restore",
            "docs",
            "--root",
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a retained root"));
}

#[tokio::test]
async fn export_import_round_trip_and_signed_heads() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("src").send().await.unwrap();
    for i in 0..20 {
        put(
            &s3,
            "src",
            &format!("d{}/f{i}", i % 3),
            pattern(1000 + i * 300, i as u8),
        )
        .await;
    }
    put(&s3, "src", "empty-dir/", Vec::new()).await;
    let src_root = root(&server, "src");
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("src.car");
    ok(&cairn(
        server.data.path(),
        &["bucket", "export", "src", "-o", car.to_str().unwrap()],
    ));
    let imported = ok(&cairn(
        server.data.path(),
        &["bucket", "import", "copy", car.to_str().unwrap()],
    ));
    assert!(imported.contains("21 objects"), "{imported}");
    assert_eq!(root(&server, "copy"), src_root);
    assert_eq!(get(&s3, "copy", "d1/f4").await, pattern(1000 + 4 * 300, 4));
    // importing onto an existing bucket is refused
    let again = cairn(
        server.data.path(),
        &["bucket", "import", "copy", car.to_str().unwrap()],
    );
    assert!(!again.status.success());

    let head = dir.path().join("head.cbor");
    let shown = ok(&cairn(
        server.data.path(),
        &["bucket", "head", "src", "-o", head.to_str().unwrap()],
    ));
    assert!(shown.contains(&src_root), "{shown}");
    let key = shown
        .lines()
        .find_map(|l| l.strip_prefix("signed by ed25519 key "))
        .unwrap()
        .to_owned();
    // verification needs no node: run it on an empty folder
    let nowhere = tempfile::tempdir().unwrap();
    let verified = ok(&cairn(
        nowhere.path(),
        &[
            "bucket",
            "verify-head",
            head.to_str().unwrap(),
            "--key",
            &key,
        ],
    ));
    assert!(verified.contains(&src_root), "{verified}");
    let mut bytes = std::fs::read(&head).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // inside the signature
    std::fs::write(&head, bytes).unwrap();
    let forged = cairn(
        nowhere.path(),
        &["bucket", "verify-head", head.to_str().unwrap()],
    );
    assert!(!forged.status.success());
}
