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
    let part = s3
        .get_object()
        .bucket("enc")
        .key("secret.bin")
        .range("bytes=100000-2500000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        part.body.collect().await.unwrap().into_bytes(),
        &data[100_000..=2_500_000]
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
    let got = s3
        .get_object()
        .bucket("enc")
        .key("big")
        .range(format!("bytes={}-{}", (5 << 20) - 10, (5 << 20) + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes(),
        &big[(5 << 20) - 10..=(5 << 20) + 10]
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
