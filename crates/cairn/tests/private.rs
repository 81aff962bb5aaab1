//! Encrypted buckets through real S3 clients: default bucket encryption
//! (`PutBucketEncryption`, `cairn bucket create --encrypted`), `x-amz-server-side-encryption`
//! on a PUT, SSE-C, multipart, range reads — and no plaintext in any block file or CAR.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use base64::Engine as _;
use common::{Server, block_files, cairn, ok, pattern};

const MARKER: &[u8] = b"CAIRN-SECRET-MARKER-41c9";

fn marked(len: usize, seed: u8) -> Vec<u8> {
    let mut v = pattern(len, seed);
    for at in (0..len - MARKER.len()).step_by(4096) {
        v[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    v
}

fn holds_marker(bytes: &[u8]) -> bool {
    bytes.windows(MARKER.len()).any(|w| w == MARKER)
}

fn disk_holds_marker(server: &Server) -> bool {
    block_files(server.data.path())
        .iter()
        .any(|f| holds_marker(&std::fs::read(f).unwrap()))
}

/// Bytes `first..=last` of `bucket/key`, read with a ranged GET.
async fn get_range(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    first: usize,
    last: usize,
) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(format!("bytes={first}-{last}"))
        .send()
        .await
        .unwrap();
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn encrypted_buckets_through_s3() {
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("owner.key");
    ok(&cairn(
        keys.path(),
        &[
            "user",
            "create",
            "owner",
            "--out",
            key_file.to_str().unwrap(),
        ],
    ));
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--identity", key_file.to_str().unwrap()],
    );
    let s3 = server.client();

    // Default encryption by PutBucketEncryption.
    s3.create_bucket().bucket("enc").send().await.unwrap();
    assert!(
        s3.get_bucket_encryption()
            .bucket("enc")
            .send()
            .await
            .is_err()
    );
    s3.put_bucket_encryption()
        .bucket("enc")
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_bucket_encryption()
        .bucket("enc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.server_side_encryption_configuration()
            .unwrap()
            .rules()
            .len(),
        1
    );
    let data = marked(3_000_000, 1);
    s3.put_object()
        .bucket("enc")
        .key("secret.bin")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("enc")
        .key("secret.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(head.content_length(), Some(data.len() as i64));
    let cid = head.metadata().unwrap()["cid"].clone();
    let whole = s3
        .get_object()
        .bucket("enc")
        .key("secret.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(whole.body.collect().await.unwrap().into_bytes(), data);
    assert!(
        get_range(&s3, "enc", "secret.bin", 100_000, 2_500_000).await == data[100_000..=2_500_000]
    );
    assert!(!disk_holds_marker(&server), "a block file holds plaintext");
    // The object's DAG as a CAR: ciphertext too.
    let car = keys.path().join("obj.car");
    ok(&cairn(
        server.data.path(),
        &["car", "export", &cid, "-o", car.to_str().unwrap()],
    ));
    assert!(!holds_marker(&std::fs::read(&car).unwrap()));

    // Encrypted multipart (aws cli's way for big files).
    let big = marked((5 << 20) + 70_000, 2);
    let up = s3
        .create_multipart_upload()
        .bucket("enc")
        .key("big")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, chunk) in [(1, &big[..5 << 20]), (2, &big[5 << 20..])] {
        let p = s3
            .upload_part()
            .bucket("enc")
            .key("big")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket("enc")
        .key("big")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (first, last) = ((5 << 20) - 10, (5 << 20) + 10);
    assert_eq!(
        get_range(&s3, "enc", "big", first, last).await,
        &big[first..=last]
    );
    assert!(!disk_holds_marker(&server));

    // A plaintext bucket: plain by default, encrypted when a PUT asks.
    s3.create_bucket().bucket("plain").send().await.unwrap();
    let asked = marked(10_000, 3);
    s3.put_object()
        .bucket("plain")
        .key("asked")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(asked.clone()))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("plain")
        .key("asked")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert!(!disk_holds_marker(&server));
    s3.put_object()
        .bucket("plain")
        .key("open")
        .body(ByteStream::from(marked(10_000, 4)))
        .send()
        .await
        .unwrap();
    assert!(
        disk_holds_marker(&server),
        "plaintext buckets stay plaintext"
    );

    // SSE-C: the key is needed to read, and must be the right one.
    let key = [9u8; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    let (key_b64, md5_b64) = (
        b64.encode(key),
        b64.encode(<md5::Md5 as md5::Digest>::digest(key)),
    );
    let secret = pattern(100_000, 5);
    s3.put_object()
        .bucket("plain")
        .key("customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .body(ByteStream::from(secret.clone()))
        .send()
        .await
        .unwrap();
    let without = s3.get_object().bucket("plain").key("customer").send().await;
    assert!(without.is_err());
    let other = [8u8; 32];
    let wrong = s3
        .get_object()
        .bucket("plain")
        .key("customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(other))
        .sse_customer_key_md5(b64.encode(<md5::Md5 as md5::Digest>::digest(other)))
        .send()
        .await;
    assert!(wrong.is_err());
    let right = s3
        .get_object()
        .bucket("plain")
        .key("customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .range("bytes=10-99")
        .send()
        .await
        .unwrap();
    assert_eq!(right.sse_customer_key_md5(), Some(md5_b64.as_str()));
    assert_eq!(
        right.body.collect().await.unwrap().into_bytes(),
        &secret[10..100]
    );

    // SSE-C multipart: the node keeps the upload's key MD5 and every part must bring that key;
    // a part with another key, or none, is refused (issue 19 moved this check into the node).
    let up = s3
        .create_multipart_upload()
        .bucket("plain")
        .key("customer-mp")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .send()
        .await
        .unwrap();
    assert_eq!(up.sse_customer_key_md5(), Some(md5_b64.as_str()));
    let id = up.upload_id().unwrap();
    let part = |key: Option<(String, String)>| {
        let req = s3
            .upload_part()
            .bucket("plain")
            .key("customer-mp")
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from(secret.clone()));
        match key {
            Some((k, m)) => req
                .sse_customer_algorithm("AES256")
                .sse_customer_key(k)
                .sse_customer_key_md5(m),
            None => req,
        }
        .send()
    };
    let refused = |r: Result<_, aws_sdk_s3::error::SdkError<_>>| match r {
        Ok(_) => "stored".to_owned(),
        Err(e) => aws_sdk_s3::error::ProvideErrorMetadata::code(&e.into_service_error())
            .unwrap_or("no code")
            .to_owned(),
    };
    let other_key = (
        b64.encode(other),
        b64.encode(<md5::Md5 as md5::Digest>::digest(other)),
    );
    assert_eq!(refused(part(Some(other_key.clone())).await), "AccessDenied");
    // UploadPartCopy checks the upload and the part's key before it reads its source: a
    // wrong key is refused as such even when the source does not exist.
    let copy_part = s3
        .upload_part_copy()
        .bucket("plain")
        .key("customer-mp")
        .upload_id(id)
        .part_number(1)
        .copy_source("plain/no-such-source")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other_key.0)
        .sse_customer_key_md5(&other_key.1)
        .send()
        .await;
    let code = copy_part.map(drop).map_err(|e| {
        aws_sdk_s3::error::ProvideErrorMetadata::code(&e.into_service_error())
            .unwrap_or("no code")
            .to_owned()
    });
    assert_eq!(code, Err("AccessDenied".to_owned()));
    assert_eq!(refused(part(None).await), "InvalidRequest");
    let stored = part(Some((key_b64.clone(), md5_b64.clone())))
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket("plain")
        .key("customer-mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(stored.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let read = s3
        .get_object()
        .bucket("plain")
        .key("customer-mp")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_b64)
        .sse_customer_key_md5(&md5_b64)
        .send()
        .await
        .unwrap();
    assert_eq!(read.body.collect().await.unwrap().into_bytes(), secret);

    // CopyObject: the destination's encryption is what the request (or the bucket's default)
    // says; an encrypted source never becomes plaintext.
    let copy = |src: &str, bucket: &str, key: &str| {
        s3.copy_object()
            .copy_source(src.to_owned())
            .bucket(bucket.to_owned())
            .key(key.to_owned())
    };
    let head_of = |bucket: &str, key: &str| s3.head_object().bucket(bucket).key(key).send();
    // plaintext into an encrypted bucket: re-encrypted, a new DAG
    let copied = copy("plain/open", "enc", "from-plain")
        .send()
        .await
        .unwrap();
    assert_eq!(
        copied.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let (open_head, copy_head) = (
        head_of("plain", "open").await.unwrap(),
        head_of("enc", "from-plain").await.unwrap(),
    );
    assert_ne!(
        open_head.metadata().unwrap()["cid"],
        copy_head.metadata().unwrap()["cid"]
    );
    let back = s3
        .get_object()
        .bucket("enc")
        .key("from-plain")
        .send()
        .await
        .unwrap();
    assert_eq!(
        back.body.collect().await.unwrap().into_bytes(),
        marked(10_000, 4)
    );
    // in place, asking for encryption: legal (the encryption changes), and encrypted
    copy("plain/open", "plain", "open")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head_of("plain", "open")
            .await
            .unwrap()
            .server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    // an SSE-C source needs its key ...
    assert!(copy("plain/customer", "plain", "c2").send().await.is_err());
    let with_source_key =
        |c: aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder| {
            c.copy_source_sse_customer_algorithm("AES256")
                .copy_source_sse_customer_key(&key_b64)
                .copy_source_sse_customer_key_md5(&md5_b64)
        };
    // ... and without a key for the copy it takes the bucket key
    with_source_key(copy("plain/customer", "plain", "c2"))
        .send()
        .await
        .unwrap();
    let c2 = s3
        .get_object()
        .bucket("plain")
        .key("c2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        c2.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(c2.body.collect().await.unwrap().into_bytes(), secret);
    // under a new customer key, only that key reads it
    let (key2_b64, md52_b64) = (
        b64.encode(other),
        b64.encode(<md5::Md5 as md5::Digest>::digest(other)),
    );
    with_source_key(copy("plain/customer", "plain", "c3"))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key2_b64)
        .sse_customer_key_md5(&md52_b64)
        .send()
        .await
        .unwrap();
    let read_c3 = |k: &str, m: &str| {
        s3.get_object()
            .bucket("plain")
            .key("c3")
            .sse_customer_algorithm("AES256")
            .sse_customer_key(k)
            .sse_customer_key_md5(m)
            .send()
    };
    assert!(read_c3(&key_b64, &md5_b64).await.is_err());
    let c3 = read_c3(&key2_b64, &md52_b64).await.unwrap();
    assert_eq!(c3.body.collect().await.unwrap().into_bytes(), secret);

    // The CLI way to an encrypted bucket.
    let out = ok(&cairn(
        server.data.path(),
        &["bucket", "create", "sealed", "--encrypted"],
    ));
    assert!(out.contains("(encrypted)"), "{out}");
    assert!(
        s3.get_bucket_encryption()
            .bucket("sealed")
            .send()
            .await
            .is_ok()
    );
}

/// A GET of `bucket/key` on `node`: the bytes, or the S3 error code.
async fn fetch(node: &Server, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
    match node
        .client()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
    {
        Ok(out) => Ok(out.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(e) => Err(e
            .into_service_error()
            .meta()
            .code()
            .unwrap_or("no code")
            .to_owned()),
    }
}

/// Waits (up to 30 s) until `node` mirrors the version of `bucket/key` whose CID is `cid`.
async fn wait_version(node: &Server, bucket: &str, key: &str, cid: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let head = node
            .client()
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        if head
            .as_ref()
            .ok()
            .and_then(|h| h.metadata()?.get("cid"))
            .map(String::as_str)
            == Some(cid)
        {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "{bucket}/{key} {cid} never reached the reader's node: {head:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The CID an owner's node now has for `bucket/key`.
async fn current_cid(node: &Server, bucket: &str, key: &str) -> String {
    common::cid_of(&node.client(), bucket, key).await
}

/// Sharing across processes: the owner's node A holds an encrypted bucket; the reader's node
/// B, started with the reader's own key, mirrors it. B cannot decrypt until `cairn share` on A
/// seals the data key for the reader; then B serves it byte-exact, and a later version too
/// (the share is renewed). After `--revoke` the re-keyed object and newer versions are
/// unreadable on B. A presigned URL from the owner shares plaintext with anyone.
#[tokio::test(flavor = "multi_thread")]
async fn shares_reach_the_readers_own_node() {
    let keys = tempfile::tempdir().unwrap();
    let key_of = |name: &str| {
        let file = keys.path().join(format!("{name}.key"));
        let public = ok(&cairn(
            keys.path(),
            &["user", "create", name, "--out", file.to_str().unwrap()],
        ));
        (file, public.trim().to_owned())
    };
    let (owner_key, _) = key_of("owner");
    let (reader_key, reader) = key_of("reader");
    assert!(reader.starts_with("cpk1"), "{reader}");

    let a = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--identity", owner_key.to_str().unwrap()],
    );
    let b = Server::join_with(
        &a,
        tempfile::tempdir().unwrap(),
        &["--identity", reader_key.to_str().unwrap()],
    );
    ok(&cairn(
        a.data.path(),
        &["bucket", "create", "vault", "--encrypted"],
    ));
    let v1 = marked(1_500_000, 6);
    let put = |body: Vec<u8>| {
        let s3 = a.client();
        async move {
            s3.put_object()
                .bucket("vault")
                .key("doc")
                .body(ByteStream::from(body))
                .send()
                .await
                .unwrap();
        }
    };
    put(v1.clone()).await;
    let cid = current_cid(&a, "vault", "doc").await;
    wait_version(&b, "vault", "doc", &cid).await;

    // Mirrored, but sealed: B's root may read the bucket, B's user key cannot open it.
    assert_eq!(fetch(&b, "vault", "doc").await.unwrap_err(), "AccessDenied");
    assert!(!disk_holds_marker(&b), "the reader's node holds plaintext");

    // The owner shares it with the reader's public key.
    let out = ok(&cairn(
        a.data.path(),
        &["share", "vault/doc", "--to", &reader, "--expires", "7d"],
    ));
    assert!(out.contains("shared"), "{out}");
    let shared = current_cid(&a, "vault", "doc").await;
    assert_eq!(shared, cid, "sharing changes the record, not the bytes");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let got = loop {
        match fetch(&b, "vault", "doc").await {
            Ok(bytes) => break bytes,
            Err(code) => assert!(
                std::time::Instant::now() < until,
                "the share never reached B: {code}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(got == v1, "the reader's node serves other bytes");
    assert!(get_range(&b.client(), "vault", "doc", 70_000, 140_000).await == v1[70_000..=140_000]);
    assert!(!disk_holds_marker(&b), "blocks fetched by B are ciphertext");

    // A new version is shared too, until revoked.
    let v2 = marked(200_000, 7);
    put(v2.clone()).await;
    let cid2 = current_cid(&a, "vault", "doc").await;
    wait_version(&b, "vault", "doc", &cid2).await;
    assert!(fetch(&b, "vault", "doc").await.unwrap() == v2);

    // Revoked: the object is re-keyed (new ciphertext, new CID), and B cannot read it.
    let out = ok(&cairn(
        a.data.path(),
        &["share", "vault/doc", "--to", &reader, "--revoke"],
    ));
    assert!(out.contains("revoked"), "{out}");
    let rekeyed = current_cid(&a, "vault", "doc").await;
    assert_ne!(rekeyed, cid2);
    wait_version(&b, "vault", "doc", &rekeyed).await;
    assert_eq!(fetch(&b, "vault", "doc").await.unwrap_err(), "AccessDenied");
    // ... nor any later version, while the owner still can.
    let v3 = marked(300_000, 8);
    put(v3.clone()).await;
    let cid3 = current_cid(&a, "vault", "doc").await;
    wait_version(&b, "vault", "doc", &cid3).await;
    assert_eq!(fetch(&b, "vault", "doc").await.unwrap_err(), "AccessDenied");
    assert!(fetch(&a, "vault", "doc").await.unwrap() == v3);

    // Plaintext sharing: a presigned URL from the owner needs no key and no credentials.
    let presigned = a
        .client()
        .get_object()
        .bucket("vault")
        .key("doc")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(
                300,
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let body = ureq::get(presigned.uri())
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    assert!(body == v3, "the presigned URL serves other bytes");
}
