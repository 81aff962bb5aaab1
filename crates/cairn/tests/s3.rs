//! The S3 API driven by a real client (aws-sdk-s3) against `cairn serve` on a free
//! 127.0.0.1 port.

use std::io::{Read, Write};
use std::process::Command;

mod common;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use common::{
    ACCESS, SECRET, Server, added_root, block_files, cairn, cairn_add_cid, pattern, shared_dir,
};

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_owned()
}

async fn body(out: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn buckets() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("alpha").send().await.unwrap();
    s3.create_bucket().bucket("beta").send().await.unwrap();
    // re-creating one's own bucket succeeds (us-east-1 behaviour)
    s3.create_bucket().bucket("alpha").send().await.unwrap();
    let err = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "InvalidBucketName");
    // s3s's own path check makes this error without a message; every S3 error has one
    // (aws cli prints "Unknown" otherwise)
    let (status, body) = server.raw("GET", "/a_/");
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("<Code>InvalidBucketName</Code><Message>"),
        "{body}"
    );

    let names: Vec<String> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    s3.head_bucket().bucket("alpha").send().await.unwrap();
    assert!(s3.head_bucket().bucket("nope").send().await.is_err());
    s3.get_bucket_location()
        .bucket("alpha")
        .send()
        .await
        .unwrap();

    s3.put_object()
        .bucket("alpha")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let err = s3.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BucketNotEmpty");
    s3.delete_object()
        .bucket("alpha")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("alpha").send().await.unwrap();
    let err = s3.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "NoSuchBucket");
}

#[tokio::test]
async fn objects_cid_metadata_ranges() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    let bytes = pattern(3 * 262144 + 1000, 7);
    let put = s3
        .put_object()
        .bucket("bkt")
        .key("dir/file.bin")
        .content_type("application/x-test")
        .cache_control("max-age=60")
        .metadata("color", "blue")
        .metadata("cid", "bafy-forged") // reserved: ignored
        .body(ByteStream::from(bytes.clone()))
        .send()
        .await
        .unwrap();
    let md5 = put.e_tag().unwrap().trim_matches('"').to_owned();
    assert_eq!(md5.len(), 32);

    // The CID header equals `cairn add` of the same bytes (the CLI on another data folder).
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["add", "-q", "--data"])
        .arg(tmp.path().join("d"))
        .arg(tmp.path().join("f"))
        .output()
        .unwrap();
    let cid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(cid.starts_with("Qm"), "{cid}");

    let head = s3
        .head_object()
        .bucket("bkt")
        .key("dir/file.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(bytes.len() as i64));
    assert_eq!(head.content_type(), Some("application/x-test"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
    assert_eq!(
        meta.get("cid"),
        Some(&cid),
        "x-amz-meta-cid must be the ipfs add CID"
    );

    let got = s3
        .get_object()
        .bucket("bkt")
        .key("dir/file.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.metadata().unwrap().get("cid"), Some(&cid));
    assert!(body(got).await == bytes);

    // ranges, including across leaves and a suffix range
    for (header, start, end) in [
        ("bytes=0-0", 0, 1),
        ("bytes=262000-262300", 262000, 262301),
        ("bytes=-100", bytes.len() - 100, bytes.len()),
        ("bytes=786000-", 786000, bytes.len()),
    ] {
        let got = s3
            .get_object()
            .bucket("bkt")
            .key("dir/file.bin")
            .range(header)
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.content_range(),
            Some(format!("bytes {}-{}/{}", start, end - 1, bytes.len()).as_str())
        );
        assert!(body(got).await == bytes[start..end], "{header}");
    }
    let err = s3
        .get_object()
        .bucket("bkt")
        .key("dir/file.bin")
        .range(format!("bytes={}-", bytes.len() + 5))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "InvalidRange");

    // response-* overrides
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("dir/file.bin")
        .response_content_type("text/plain")
        .response_content_disposition("attachment; filename=x")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(got.content_disposition(), Some("attachment; filename=x"));

    let err = s3
        .get_object()
        .bucket("bkt")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "NoSuchKey");
    let err = s3
        .get_object()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "NoSuchBucket");

    // an empty object
    s3.put_object()
        .bucket("bkt")
        .key("empty")
        .body(ByteStream::from_static(b""))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("bkt")
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.metadata().unwrap().get("cid").map(String::as_str),
        Some("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH")
    );
    assert!(body(got).await.is_empty());
}

#[tokio::test]
async fn content_md5_mismatch_stores_nothing() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    let err = s3
        .put_object()
        .bucket("bkt")
        .key("k")
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==") // MD5 of the empty string
        .body(ByteStream::from_static(b"not empty"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BadDigest");
    let err = s3
        .head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_not_found());
}

#[tokio::test]
async fn listings() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("lst").send().await.unwrap();
    let keys = ["a/1", "a/2", "a/b/3", "c", "d+e f", "z/9"];
    for k in keys {
        s3.put_object()
            .bucket("lst")
            .key(k)
            .body(ByteStream::from_static(b"v"))
            .send()
            .await
            .unwrap();
    }
    let all = s3.list_objects_v2().bucket("lst").send().await.unwrap();
    let got: Vec<&str> = all.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, keys);

    let top = s3
        .list_objects_v2()
        .bucket("lst")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = top
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["a/", "z/"]);
    let files: Vec<&str> = top.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(files, ["c", "d+e f"]);

    let sub = s3
        .list_objects_v2()
        .bucket("lst")
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let files: Vec<&str> = sub.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(files, ["a/1", "a/2"]);
    let prefixes: Vec<&str> = sub
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["a/b/"]);

    // pagination with continuation tokens, two at a time
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("lst")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_owned);
    }
    assert_eq!(seen, keys);

    let after = s3
        .list_objects_v2()
        .bucket("lst")
        .start_after("c")
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = after.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["d+e f", "z/9"]);

    // v1 with marker
    let v1 = s3
        .list_objects()
        .bucket("lst")
        .marker("a/b/3")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, ["c", "d+e f"]);
    assert_eq!(v1.is_truncated(), Some(true));

    // versions listing (every object is version "null" until versioning lands)
    let versions = s3
        .list_object_versions()
        .bucket("lst")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), keys.len());
    assert!(
        versions
            .versions()
            .iter()
            .all(|v| v.version_id() == Some("null"))
    );
}

#[tokio::test]
async fn copy_and_batch_delete() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("src").send().await.unwrap();
    s3.create_bucket().bucket("dst").send().await.unwrap();
    s3.put_object()
        .bucket("src")
        .key("o")
        .metadata("m", "1")
        .content_type("text/x")
        .body(ByteStream::from(pattern(300_000, 1)))
        .send()
        .await
        .unwrap();
    let src = s3
        .head_object()
        .bucket("src")
        .key("o")
        .send()
        .await
        .unwrap();

    s3.copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("src/o")
        .send()
        .await
        .unwrap();
    let copy = s3
        .head_object()
        .bucket("dst")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        copy.metadata(),
        src.metadata(),
        "COPY keeps metadata and the same DAG"
    );
    assert_eq!(copy.e_tag(), src.e_tag());
    assert_eq!(copy.content_type(), Some("text/x"));

    s3.copy_object()
        .bucket("dst")
        .key("replaced")
        .copy_source("src/o")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("m", "2")
        .send()
        .await
        .unwrap();
    let replaced = s3
        .head_object()
        .bucket("dst")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(
        replaced.metadata().unwrap().get("m").map(String::as_str),
        Some("2")
    );
    assert_eq!(
        replaced.metadata().unwrap().get("cid"),
        src.metadata().unwrap().get("cid")
    );

    let err = s3
        .copy_object()
        .bucket("src")
        .key("o")
        .copy_source("src/o")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "InvalidRequest");

    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let delete = Delete::builder()
        .objects(ObjectIdentifier::builder().key("copy").build().unwrap())
        .objects(ObjectIdentifier::builder().key("replaced").build().unwrap())
        .objects(
            ObjectIdentifier::builder()
                .key("never-existed")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = s3
        .delete_objects()
        .bucket("dst")
        .delete(delete)
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 3);
    let left = s3.list_objects_v2().bucket("dst").send().await.unwrap();
    assert!(left.contents().is_empty());
}

#[tokio::test]
async fn auth_errors_and_presigned_urls() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("pre").send().await.unwrap();
    s3.put_object()
        .bucket("pre")
        .key("k")
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await
        .unwrap();

    let bad = server.client_with(ACCESS, "wrong-secret-wrong-secret-wrong-secret00");
    let err = bad.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "SignatureDoesNotMatch");
    let unknown = server.client_with("NOSUCHACCESSKEY00000", SECRET);
    let err = unknown.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "InvalidAccessKeyId");

    // anonymous is refused
    let (status, body) = server.raw("GET", "/pre/k");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));

    // a presigned GET works without credentials, and a tampered one does not
    let presigned = s3
        .get_object()
        .bucket("pre")
        .key("k")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(
                60,
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let uri: http::Uri = presigned.uri().parse().unwrap();
    let pq = uri.path_and_query().unwrap().as_str().to_owned();
    let (status, body) = server.raw("GET", &pq);
    assert_eq!((status, body.as_slice()), (200, &b"secret"[..]));
    let tampered = pq.replace("/pre/k", "/pre/k2");
    let (status, _) = server.raw("GET", &tampered);
    assert_eq!(status, 403);
}

#[tokio::test]
async fn large_object_streams() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("big").send().await.unwrap();
    let bytes = pattern(24 << 20, 3);
    s3.put_object()
        .bucket("big")
        .key("b")
        .body(ByteStream::from(bytes.clone()))
        .send()
        .await
        .unwrap();
    let got = s3.get_object().bucket("big").key("b").send().await.unwrap();
    assert!(body(got).await == bytes);
}

/// The shared aws-chunked checker: signed and unsigned streaming, trailers, and the error
/// cases (tampered chunk signature → 403, payload hash mismatch → 400, wrong trailing or header
/// checksum → 400 with nothing stored).
#[test]
fn streaming_sigv4_checker_passes() {
    let server = Server::start();
    let out = Command::new("python3")
        .arg(shared_dir().join("s3/sigv4-streaming-check.py"))
        .arg(format!("http://{}", server.addr))
        .args([ACCESS, SECRET])
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(" 0 failed"), "{text}");
}

#[tokio::test]
async fn flexible_checksums_round_trip() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("sum").send().await.unwrap();
    for algo in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Sha256,
    ] {
        let put = s3
            .put_object()
            .bucket("sum")
            .key("k")
            .checksum_algorithm(algo.clone())
            .body(ByteStream::from(pattern(100_000, 9)))
            .send()
            .await
            .unwrap();
        let got = s3
            .get_object()
            .bucket("sum")
            .key("k")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let (sent, back) = match algo {
            ChecksumAlgorithm::Crc32 => (put.checksum_crc32(), got.checksum_crc32()),
            ChecksumAlgorithm::Crc32C => (put.checksum_crc32_c(), got.checksum_crc32_c()),
            _ => (put.checksum_sha256(), got.checksum_sha256()),
        };
        assert!(sent.is_some(), "{algo:?} not reported on PUT");
        assert_eq!(sent, back, "{algo:?}");
        // x-amz-checksum-type on PUT, GET and HEAD (minio-py's suite reads it)
        use aws_sdk_s3::types::ChecksumType;
        assert_eq!(put.checksum_type(), Some(&ChecksumType::FullObject));
        assert_eq!(got.checksum_type(), Some(&ChecksumType::FullObject));
        let head = s3
            .head_object()
            .bucket("sum")
            .key("k")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
    }
    // a multipart upload's checksum of part checksums is COMPOSITE
    {
        use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
        let id = s3
            .create_multipart_upload()
            .bucket("sum")
            .key("mpu")
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_owned();
        let part = s3
            .upload_part()
            .bucket("sum")
            .key("mpu")
            .upload_id(&id)
            .part_number(1)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(pattern(10_000, 3)))
            .send()
            .await
            .unwrap();
        let done = s3
            .complete_multipart_upload()
            .bucket("sum")
            .key("mpu")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(part.e_tag().unwrap())
                            .checksum_crc32(part.checksum_crc32().unwrap())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));
        let head = s3
            .head_object()
            .bucket("sum")
            .key("mpu")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(head.checksum_type(), Some(&ChecksumType::Composite));
    }
    // a wrong checksum header is refused and stores nothing
    let err = s3
        .put_object()
        .bucket("sum")
        .key("bad")
        .checksum_crc32("AAAAAA==")
        .body(ByteStream::from_static(b"payload"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BadDigest");
    assert!(
        s3.head_object()
            .bucket("sum")
            .key("bad")
            .send()
            .await
            .is_err()
    );
}

/// `cairn add` of these bytes, for comparison with what the S3 door stored.
fn cid_of_bytes(bytes: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), bytes).unwrap();
    cairn_add_cid(&tmp.path().join("f"))
}

#[tokio::test]
async fn multipart_upload_cid_equals_cairn_add() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let bytes = pattern((11 << 20) + 777, 5);
    let expected_cid = cid_of_bytes(&bytes);

    // aligned parts (5 MiB) and unaligned ones (5 MiB + 3): same CID either way
    for (key, part_size) in [("aligned", 5usize << 20), ("unaligned", (5 << 20) + 3)] {
        let id = s3
            .create_multipart_upload()
            .bucket("mpu")
            .key(key)
            .content_type("application/x-mp")
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_owned();
        let mut parts = Vec::new();
        for (i, chunk) in bytes.chunks(part_size).enumerate() {
            let n = i as i32 + 1;
            let out = s3
                .upload_part()
                .bucket("mpu")
                .key(key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .unwrap();
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(out.e_tag().unwrap())
                    .build(),
            );
        }
        let listed = s3
            .list_parts()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.parts().len(), parts.len());
        let uploads = s3
            .list_multipart_uploads()
            .bucket("mpu")
            .send()
            .await
            .unwrap();
        assert_eq!(uploads.uploads().len(), 1);

        let done = s3
            .complete_multipart_upload()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.clone()))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(
            done.e_tag()
                .unwrap()
                .ends_with(&format!("-{}\"", parts.len())),
            "{:?}",
            done.e_tag()
        );
        let head = s3
            .head_object()
            .bucket("mpu")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.metadata().unwrap().get("cid"),
            Some(&expected_cid),
            "{key}"
        );
        assert_eq!(head.content_type(), Some("application/x-mp"));
        let got = s3.get_object().bucket("mpu").key(key).send().await.unwrap();
        assert!(body(got).await == bytes);
        // GET/HEAD of one part
        let part2 = s3
            .get_object()
            .bucket("mpu")
            .key(key)
            .part_number(2)
            .send()
            .await
            .unwrap();
        assert_eq!(part2.parts_count(), Some(parts.len() as i32));
        assert!(body(part2).await == bytes[part_size..2 * part_size]);
        let head = s3
            .head_object()
            .bucket("mpu")
            .key(key)
            .part_number(3)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.content_length(),
            Some((bytes.len() - 2 * part_size) as i64)
        );
        let err = s3
            .get_object()
            .bucket("mpu")
            .key(key)
            .part_number(9)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err.into_service_error()), "InvalidPart");
        let err = s3
            .list_parts()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err.into_service_error()), "NoSuchUpload");
    }

    // abort, and errors on bad part lists
    let id = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("x")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let small = s3
        .upload_part()
        .bucket("mpu")
        .key("x")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"tiny"))
        .send()
        .await
        .unwrap();
    let p = |n: i32, e: &str| CompletedPart::builder().part_number(n).e_tag(e).build();
    let complete = |parts: Vec<CompletedPart>| {
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("x")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
    };
    let err = complete(vec![p(1, "\"0000\"")]).await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "InvalidPart");
    let err = complete(vec![
        p(1, small.e_tag().unwrap()),
        p(1, small.e_tag().unwrap()),
    ])
    .await
    .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "InvalidPartOrder");
    s3.abort_multipart_upload()
        .bucket("mpu")
        .key("x")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let err = s3
        .abort_multipart_upload()
        .bucket("mpu")
        .key("x")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "NoSuchUpload");

    // UploadPartCopy from an existing object, with a range
    let id = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("copied")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let part = s3
        .upload_part_copy()
        .bucket("mpu")
        .key("copied")
        .upload_id(&id)
        .part_number(1)
        .copy_source("mpu/aligned")
        .copy_source_range("bytes=0-999")
        .send()
        .await
        .unwrap();
    let etag = part.copy_part_result().unwrap().e_tag().unwrap().to_owned();
    s3.complete_multipart_upload()
        .bucket("mpu")
        .key("copied")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(p(1, &etag))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("mpu")
        .key("copied")
        .send()
        .await
        .unwrap();
    assert!(body(got).await == bytes[..1000]);
}

fn status<E>(
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn conditional_reads() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("cond").send().await.unwrap();
    let put = s3
        .put_object()
        .bucket("cond")
        .key("k")
        .body(ByteStream::from_static(b"v1"))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();

    s3.get_object()
        .bucket("cond")
        .key("k")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket("cond")
        .key("k")
        .if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(412));
    let err = s3
        .get_object()
        .bucket("cond")
        .key("k")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(304));
    let err = s3
        .head_object()
        .bucket("cond")
        .key("k")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(304));

    let past = aws_sdk_s3::primitives::DateTime::from_secs(1_000_000_000);
    let future = aws_sdk_s3::primitives::DateTime::from_secs(4_000_000_000);
    s3.get_object()
        .bucket("cond")
        .key("k")
        .if_modified_since(past)
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket("cond")
        .key("k")
        .if_modified_since(future)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(304));
    let err = s3
        .get_object()
        .bucket("cond")
        .key("k")
        .if_unmodified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(412));
    s3.get_object()
        .bucket("cond")
        .key("k")
        .if_unmodified_since(future)
        .send()
        .await
        .unwrap();
}

/// kill -9 during 200 concurrent PUTs, restart: every acknowledged PUT reads back byte-exact,
/// and no key is visible with other bytes than its full body.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_puts_loses_no_acknowledged_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = Server::start();
    let config = aws_sdk_s3::Config::builder()
        .endpoint_url(format!("http://{}", server.addr))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ACCESS, SECRET, None, None, "test"))
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    let s3 = Client::from_conf(config);
    s3.create_bucket().bucket("crash").send().await.unwrap();

    let body_of = |i: usize| pattern(20_000 + (i * 7919) % 600_000, i as u8);
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (s3, acked, count) = (s3.clone(), acked.clone(), count.clone());
        let body = body_of(i);
        tasks.push(tokio::spawn(async move {
            let put = s3
                .put_object()
                .bucket("crash")
                .key(format!("k{i}"))
                .body(ByteStream::from(body))
                .send();
            if put.await.is_ok() {
                acked.lock().unwrap().push(i);
                count.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count.load(Ordering::SeqCst) < 40 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let data_dir = server.kill_9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 40,
        "only {} PUTs acknowledged before the kill",
        acked.len()
    );
    assert!(acked.len() < 200, "the kill came too late to test anything");

    let server = Server::start_in(data_dir);
    let s3 = server.client();
    let mut visible = 0;
    for i in 0..200 {
        match s3
            .get_object()
            .bucket("crash")
            .key(format!("k{i}"))
            .send()
            .await
        {
            Ok(got) => {
                visible += 1;
                assert!(
                    body(got).await == body_of(i),
                    "k{i} visible with wrong bytes"
                );
            }
            Err(e) => {
                assert!(!acked.contains(&i), "acknowledged k{i} lost: {e:?}");
            }
        }
    }
    assert!(visible >= acked.len());
}

/// `cairn key create` on the data folder (before the node starts): (access, secret).
fn create_key(data: &std::path::Path, user: &str) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["key", "create", "--user", user, "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    (field("access key:"), field("secret key:"))
}

#[tokio::test]
async fn users_owners_and_public_buckets() {
    let data = tempfile::tempdir().unwrap();
    let (alice_ak, alice_sk) = create_key(data.path(), "alice");
    let (bob_ak, bob_sk) = create_key(data.path(), "bob");
    let server = Server::start_in(data);
    let alice = server.client_with(&alice_ak, &alice_sk);
    let bob = server.client_with(&bob_ak, &bob_sk);
    let root = server.client();

    alice.create_bucket().bucket("alices").send().await.unwrap();
    alice
        .put_object()
        .bucket("alices")
        .key("k")
        .body(ByteStream::from_static(b"mine"))
        .send()
        .await
        .unwrap();
    // listed by root, the objects' owner is still the bucket's owner
    let listed = root
        .list_objects_v2()
        .bucket("alices")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents()[0].owner().unwrap().id(), Some("alice"));

    // another user: denied; cannot take the name; does not see it listed
    let err = bob
        .get_object()
        .bucket("alices")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "AccessDenied");
    let err = bob
        .put_object()
        .bucket("alices")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "AccessDenied");
    let err = bob
        .create_bucket()
        .bucket("alices")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BucketAlreadyExists");
    assert!(
        bob.list_buckets()
            .send()
            .await
            .unwrap()
            .buckets()
            .is_empty()
    );
    // root administers every bucket
    root.get_object()
        .bucket("alices")
        .key("k")
        .send()
        .await
        .unwrap();

    // anonymous: 403 on a private bucket, 404 on a missing one
    assert_eq!(server.raw("GET", "/alices/k").0, 403);
    assert_eq!(server.raw("GET", "/alices?list-type=2").0, 403);
    assert_eq!(server.raw("GET", "/no-such-bucket/k").0, 404);

    // a public-read object in a private bucket
    alice
        .put_object_acl()
        .bucket("alices")
        .key("k")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    assert_eq!(server.raw("GET", "/alices/k"), (200, b"mine".to_vec()));
    assert_eq!(server.raw("GET", "/alices?list-type=2").0, 403);

    // public-read bucket: anyone lists it (as in S3, the bucket ACL is not a read grant on
    // its objects), nobody anonymous writes
    alice
        .put_object()
        .bucket("alices")
        .key("p")
        .body(ByteStream::from_static(b"pub"))
        .send()
        .await
        .unwrap();
    assert_eq!(server.raw("GET", "/alices/p").0, 403);
    alice
        .put_bucket_acl()
        .bucket("alices")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let acl = alice
        .get_bucket_acl()
        .bucket("alices")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.grants().len(), 2);
    assert_eq!(server.raw("GET", "/alices/p").0, 403);
    assert_eq!(server.raw("GET", "/alices/k"), (200, b"mine".to_vec()));
    assert_eq!(server.raw("GET", "/alices?list-type=2").0, 200);
    assert_eq!(server.raw("PUT", "/alices/anon").0, 403);
    assert_eq!(server.raw("DELETE", "/alices/p").0, 403);

    // back to private, then public through a bucket policy
    alice
        .put_bucket_acl()
        .bucket("alices")
        .acl(aws_sdk_s3::types::BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    assert_eq!(server.raw("GET", "/alices/p").0, 403);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::alices/*"}]}"#;
    alice
        .put_bucket_policy()
        .bucket("alices")
        .policy(policy)
        .send()
        .await
        .unwrap();
    assert_eq!(server.raw("GET", "/alices/p").0, 200);
    let acl = alice
        .get_bucket_acl()
        .bucket("alices")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.grants().len(), 1, "a policy is not an ACL grant");
    let narrow = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::alices/only/*"}]}"#;
    let err = alice
        .put_bucket_policy()
        .bucket("alices")
        .policy(narrow)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "NotImplemented");
    alice
        .delete_bucket_policy()
        .bucket("alices")
        .send()
        .await
        .unwrap();
    assert_eq!(server.raw("GET", "/alices/p").0, 403);

    // ACL and policy are separate grants: dropping the policy keeps a public-read ACL (a
    // listing, not a read)
    alice
        .put_bucket_acl()
        .bucket("alices")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    alice
        .put_bucket_policy()
        .bucket("alices")
        .policy(policy)
        .send()
        .await
        .unwrap();
    alice
        .delete_bucket_policy()
        .bucket("alices")
        .send()
        .await
        .unwrap();
    assert_eq!(server.raw("GET", "/alices/p").0, 403);
    assert_eq!(server.raw("GET", "/alices?list-type=2").0, 200);
}

/// botocore keeps a final answer given without `100 Continue` for the next request on the
/// connection; such answers must close the connection (see `cairn_s3::front`).
#[test]
fn expect_continue_answered_early_closes_the_connection() {
    let server = Server::start();
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "PUT /anybucket/k HTTP/1.1\r\nHost: {}\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut resp = Vec::new();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.read_to_end(&mut resp).unwrap(); // returns only because the server closes
    let head = String::from_utf8_lossy(&resp).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 4"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
}

#[tokio::test]
async fn bucket_versioning_keeps_history() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("hist").send().await.unwrap();
    let enable = |status: BucketVersioningStatus| {
        s3.put_bucket_versioning()
            .bucket("hist")
            .versioning_configuration(VersioningConfiguration::builder().status(status).build())
            .send()
    };
    enable(BucketVersioningStatus::Enabled).await.unwrap();
    let got = s3
        .get_bucket_versioning()
        .bucket("hist")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), Some(&BucketVersioningStatus::Enabled));

    let put = |b: &'static [u8]| {
        s3.put_object()
            .bucket("hist")
            .key("k")
            .body(ByteStream::from_static(b))
            .send()
    };
    let v1 = put(b"one").await.unwrap().version_id().unwrap().to_owned();
    let v2 = put(b"two").await.unwrap().version_id().unwrap().to_owned();
    assert_ne!(v1, v2);
    let old = s3
        .get_object()
        .bucket("hist")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(old.version_id(), Some(v1.as_str()));
    assert_eq!(body(old).await, b"one");

    // UploadPartCopy from an old version copies that version, not the current one
    s3.create_bucket().bucket("hist-copy").send().await.unwrap();
    let id = s3
        .create_multipart_upload()
        .bucket("hist-copy")
        .key("from-v1")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let part = s3
        .upload_part_copy()
        .bucket("hist-copy")
        .key("from-v1")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("hist/k?versionId={v1}"))
        .send()
        .await
        .unwrap();
    let etag = part.copy_part_result().unwrap().e_tag().unwrap();
    s3.complete_multipart_upload()
        .bucket("hist-copy")
        .key("from-v1")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(etag)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("hist-copy")
        .key("from-v1")
        .send()
        .await
        .unwrap();
    assert_eq!(body(got).await, b"one");

    // "ransomware": delete, then restore by deleting the marker
    let del = s3
        .delete_object()
        .bucket("hist")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().unwrap().to_owned();
    assert!(
        s3.get_object()
            .bucket("hist")
            .key("k")
            .send()
            .await
            .is_err()
    );
    let err = s3
        .head_object()
        .bucket("hist")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), Some(405));
    let listed = s3
        .list_object_versions()
        .bucket("hist")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.versions().len(), 2);
    assert_eq!(listed.delete_markers().len(), 1);
    assert_eq!(listed.delete_markers()[0].is_latest(), Some(true));
    s3.delete_object()
        .bucket("hist")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    let back = s3
        .get_object()
        .bucket("hist")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(body(back).await, b"two");

    // removing the newest version makes the previous one current; copy from a version
    s3.delete_object()
        .bucket("hist")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(
            s3.get_object()
                .bucket("hist")
                .key("k")
                .send()
                .await
                .unwrap()
        )
        .await,
        b"one"
    );
    s3.copy_object()
        .bucket("hist")
        .key("copy")
        .copy_source(format!("hist/k?versionId={v1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(
            s3.get_object()
                .bucket("hist")
                .key("copy")
                .send()
                .await
                .unwrap()
        )
        .await,
        b"one"
    );

    // a copy that replaces the tags is one write: one new version, carrying the new tags (it
    // was a copy, then a tag update in a second transaction: a moment when the copy had the
    // source's tags, and two replication rounds)
    s3.copy_object()
        .bucket("hist")
        .key("tagged")
        .copy_source("hist/k")
        .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
        .tagging("team=blue")
        .send()
        .await
        .unwrap();
    let versions = s3
        .list_object_versions()
        .bucket("hist")
        .prefix("tagged")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 1, "{versions:?}");
    let tags = s3
        .get_object_tagging()
        .bucket("hist")
        .key("tagged")
        .send()
        .await
        .unwrap();
    let tags: Vec<_> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key(), t.value()))
        .collect();
    assert_eq!(tags, [("team", "blue")]);

    // suspended: new writes are the null version
    enable(BucketVersioningStatus::Suspended).await.unwrap();
    let put3 = put(b"three").await.unwrap();
    assert!(put3.version_id().is_none() || put3.version_id() == Some("null"));
    let null = s3
        .get_object()
        .bucket("hist")
        .key("k")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(body(null).await, b"three");

    // a bucket with history is not empty until every version is gone
    let err = s3.delete_bucket().bucket("hist").send().await.unwrap_err();
    assert_eq!(code(&err.into_service_error()), "BucketNotEmpty");
}

fn cid_of_x() -> String {
    let (_, root) = cairn_dag::file::encode_bytes(b"x", cairn_dag::CidVersion::V0);
    root.link.cid.to_string()
}

#[tokio::test]
async fn object_tagging() {
    use aws_sdk_s3::types::{Tag, Tagging};
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("tags").send().await.unwrap();
    s3.put_object()
        .bucket("tags")
        .key("k")
        .tagging("team=storage&note=a%20b")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(2));
    let mp = s3
        .create_multipart_upload()
        .bucket("tags")
        .key("mp")
        .tagging("a=1&b=2")
        .send()
        .await
        .unwrap();
    let part = s3
        .upload_part()
        .bucket("tags")
        .key("mp")
        .upload_id(mp.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket("tags")
        .key("mp")
        .upload_id(mp.upload_id().unwrap())
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mp_tags = s3
        .get_object_tagging()
        .bucket("tags")
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(mp_tags.tag_set().len(), 2);
    let tags = s3
        .get_object_tagging()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    let mut pairs: Vec<(String, String)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("note".into(), "a b".into()),
            ("team".into(), "storage".into())
        ]
    );

    let set = Tagging::builder()
        .tag_set(Tag::builder().key("only").value("one").build().unwrap())
        .build()
        .unwrap();
    s3.put_object_tagging()
        .bucket("tags")
        .key("k")
        .tagging(set)
        .send()
        .await
        .unwrap();
    let tags = s3
        .get_object_tagging()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set().len(), 1);
    // tags change metadata only: same DAG as `ipfs add` of "x"
    let head = s3
        .head_object()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata().unwrap().get("cid").map(String::as_str),
        Some(cid_of_x().as_str())
    );
    s3.delete_object_tagging()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    let tags = s3
        .get_object_tagging()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(tags.tag_set().is_empty());

    let too_many: Vec<Tag> = (0..11)
        .map(|i| {
            Tag::builder()
                .key(format!("k{i}"))
                .value("v")
                .build()
                .unwrap()
        })
        .collect();
    let err = s3
        .put_object_tagging()
        .bucket("tags")
        .key("k")
        .tagging(
            Tagging::builder()
                .set_tag_set(Some(too_many))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err.into_service_error()), "InvalidTag");
}

/// `cairn bench` runs every phase against a served node and leaves nothing behind.
#[tokio::test]
async fn cairn_bench_runs_and_cleans_up() {
    let server = Server::start();
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["bench", "--endpoint"])
        .arg(format!("http://{}", server.addr))
        .args(["--access-key", ACCESS, "--secret-key", SECRET])
        .args([
            "--large-mib",
            "1",
            "--large-count",
            "2",
            "--small-count",
            "20",
        ])
        .args(["--concurrency", "4", "--multipart-mib", "16"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for phase in [
        "PUT 1 MiB",
        "GET 1 MiB",
        "PUT 4 KiB",
        "GET 4 KiB",
        "HEAD 4 KiB",
        "LIST 20 keys",
        "UploadPart 8 MiB",
        "multipart 16 MiB",
    ] {
        assert!(table.contains(phase), "{phase} missing in\n{table}");
    }
    let buckets = server.client().list_buckets().send().await.unwrap();
    assert!(
        buckets.buckets().is_empty(),
        "the scratch bucket was not removed"
    );
}

#[test]
fn error_bodies_carry_the_request_id() {
    let server = Server::start();
    let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
    write!(
        s,
        "GET /no-such-bucket/k HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let header_id = resp
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-request-id: "))
        .expect("x-amz-request-id header")
        .trim()
        .to_owned();
    assert!(
        resp.contains(&format!("<RequestId>{header_id}</RequestId>")),
        "{resp}"
    );
}

/// While `serve` holds the data folder, CLI commands go through its local API.
#[tokio::test]
async fn cli_talks_to_the_running_node() {
    let server = Server::start();
    let data = server.data.path().to_path_buf();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f.bin");
    let bytes = pattern(700_000, 42);
    std::fs::write(&file, &bytes).unwrap();

    let out = cairn(&data, &["add", "-q", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cid = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        cid,
        cid_of_bytes(&bytes),
        "same CID through the API as offline"
    );
    let out = cairn(&data, &["cat", &cid, "--offset", "10", "--length", "5"]);
    assert_eq!(out.stdout, bytes[10..15]);

    // a key created through the API works at once
    let out = cairn(&data, &["key", "create", "--user", "carol"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let carol = server.client_with(&field("access key:"), &field("secret key:"));
    carol.create_bucket().bucket("carols").send().await.unwrap();
    carol
        .put_object()
        .bucket("carols")
        .key("k")
        .body(ByteStream::from_static(b"hi"))
        .send()
        .await
        .unwrap();
    let out = cairn(&data, &["bucket", "set-public", "carols"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.raw("GET", "/carols/k"), (200, b"hi".to_vec()));
    let listed = String::from_utf8(cairn(&data, &["key", "list"]).stdout).unwrap();
    assert!(listed.contains("carol"), "{listed}");

    // commands without a route say so clearly
    // add -r and get through the node: same output as offline, same tree back
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/empty")).unwrap();
    std::fs::write(tree.join("a.txt"), b"hello world\n").unwrap();
    std::fs::write(tree.join("sub/big.bin"), pattern(600_000, 3)).unwrap();
    std::fs::write(tree.join(".hidden"), b"skipped").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.txt", tree.join("link")).unwrap();
    let online = cairn(&data, &["add", "-r", tree.to_str().unwrap()]);
    assert!(
        online.status.success(),
        "{}",
        String::from_utf8_lossy(&online.stderr)
    );
    let offline = cairn(
        &tmp.path().join("offline"),
        &["add", "-r", tree.to_str().unwrap()],
    );
    assert_eq!(
        String::from_utf8_lossy(&online.stdout),
        String::from_utf8_lossy(&offline.stdout)
    );
    let root = added_root(&String::from_utf8(online.stdout).unwrap());
    let back = tmp.path().join("back");
    let out = cairn(&data, &["get", &root, "-o", back.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(back.join("sub/big.bin")).unwrap() == pattern(600_000, 3));
    assert!(back.join("sub/empty").is_dir());
    assert!(!back.join(".hidden").exists());
    #[cfg(unix)]
    assert_eq!(
        std::fs::read_link(back.join("link")).unwrap(),
        std::path::Path::new("a.txt")
    );

    // pins and checks go through the node too
    let out = cairn(&data, &["check", "--hard", &cid]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": ok ("),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cairn(&data, &["pin", "rm", &cid]).status.success());
    assert!(cairn(&data, &["pin", "add", &cid]).status.success());
    let pins = String::from_utf8(cairn(&data, &["pin", "ls"]).stdout).unwrap();
    assert!(pins.contains(&cid), "{pins}");
    // CAR out of the running node and into another (offline) folder, byte-identical DAG
    let car = tmp.path().join("t.car");
    let out = cairn(
        &data,
        &["car", "export", &root, "-o", car.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = tmp.path().join("other");
    let out = cairn(&other, &["car", "import", car.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("pinned root {root}\n")
    );
    // and back into the running node; a broken CAR is refused with a clear error
    let out = cairn(&data, &["car", "import", car.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(tmp.path().join("bad.car"), b"\x05garbage").unwrap();
    let out = cairn(
        &data,
        &[
            "car",
            "import",
            tmp.path().join("bad.car").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CAR"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // the API wants its token
    let api: String = std::fs::read_to_string(data.join("api.toml")).unwrap();
    let addr = api
        .lines()
        .find_map(|l| l.strip_prefix("addr = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /api/v0/key/list HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 401"), "{resp}");

    // a block that fails verification mid-export cuts the stream: the CLI fails and leaves no
    // short CAR behind
    for f in block_files(&data) {
        if std::fs::metadata(&f).unwrap().len() > 200_000 {
            let mut bytes = std::fs::read(&f).unwrap();
            bytes[1000] ^= 0xff;
            std::fs::write(&f, bytes).unwrap();
        }
    }
    let broken = tmp.path().join("broken.car");
    let out = cairn(
        &data,
        &["car", "export", &cid, "-o", broken.to_str().unwrap()],
    );
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!broken.exists());

    // a symlink on its own is not read through (that would store the target's bytes)
    #[cfg(unix)]
    {
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink("tree/b.txt", &link).unwrap();
        let out = cairn(&data, &["add", link.to_str().unwrap()]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a regular file or directory"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The background GC worker removes what deleted objects left once no retained bucket root
/// holds it (retention 0 here; the default keeps it 30 days), and nothing else.
#[tokio::test]
async fn background_gc_collects_deleted_objects() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("cairn.toml"),
        "history_retention = \"0s\"\n",
    )
    .unwrap();
    let server = Server::start_with(data, &["--gc-interval", "1"]);
    let dir = server.data.path().to_path_buf();
    let s3 = server.client();
    s3.create_bucket().bucket("gcb").send().await.unwrap();
    let keep = pattern(700_000, 42);
    s3.put_object()
        .bucket("gcb")
        .key("keep")
        .body(ByteStream::from(keep.clone()))
        .send()
        .await
        .unwrap();
    // the bucket's root with `keep` in it is committed before counting
    assert!(cairn(&dir, &["bucket", "root", "gcb"]).status.success());
    let before = block_files(&dir).len();
    s3.put_object()
        .bucket("gcb")
        .key("drop")
        .body(ByteStream::from(pattern(900_000, 77)))
        .send()
        .await
        .unwrap();
    assert!(block_files(&dir).len() > before);
    s3.delete_object()
        .bucket("gcb")
        .key("drop")
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while block_files(&dir).len() > before {
        assert!(std::time::Instant::now() < deadline, "GC never ran");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let got = s3
        .get_object()
        .bucket("gcb")
        .key("keep")
        .send()
        .await
        .unwrap();
    assert!(body(got).await == keep);
    // and on demand through the local API
    let out = cairn(&dir, &["gc"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("removed 0 blocks"));
}
