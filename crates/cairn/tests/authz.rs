//! The authorization matrix: every S3 operation Cairn implements × every kind of caller,
//! against a running node with aws-sdk-s3, compared cell by cell with the table in
//! `docs/security.md` (a cell that differs fails the test, and the report names every such
//! cell). Also the regressions of the review's holes: copies of others' objects (plain and
//! encrypted), old private versions behind a public current one, guessable version ids, and
//! the S3 meaning of public-read buckets and policies.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{
    ConfigBag, Credentials, Intercept, Region, RequestChecksumCalculation, RuntimeComponents,
};
use aws_sdk_s3::error::{BoxError, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Delete,
    ObjectCannedAcl, ObjectIdentifier, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging,
    VersioningConfiguration,
};
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use common::{ACCESS, SECRET, Server};

/// How a column's requests are signed, after the SDK signed them with the column's keys.
#[derive(Debug, Clone)]
enum Signing {
    /// As the SDK signed it (Authorization header).
    Header,
    /// Every credential removed.
    Anonymous,
    /// Re-signed in the query string (a presigned URL) with these keys; `expired`: signed two
    /// hours ago for one minute.
    Presigned {
        access: String,
        secret: String,
        expired: bool,
    },
    /// One digit of the header signature changed.
    BadSignature,
}

#[derive(Debug)]
struct Resign(Signing);

const AUTH_HEADERS: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

impl Intercept for Resign {
    fn name(&self) -> &'static str {
        "matrix-resign"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request_mut();
        match &self.0 {
            Signing::Header => {}
            Signing::Anonymous => {
                for h in AUTH_HEADERS {
                    req.headers_mut().remove(h);
                }
            }
            Signing::BadSignature => {
                let auth = req
                    .headers()
                    .get("authorization")
                    .ok_or("no Authorization to spoil")?
                    .to_owned();
                let last = auth.chars().last().ok_or("empty Authorization")?;
                let spoiled = format!(
                    "{}{}",
                    &auth[..auth.len() - 1],
                    if last == '0' { '1' } else { '0' }
                );
                req.headers_mut().insert("authorization", spoiled);
            }
            Signing::Presigned {
                access,
                secret,
                expired,
            } => {
                for h in AUTH_HEADERS {
                    req.headers_mut().remove(h);
                }
                let identity: Identity =
                    Credentials::new(access, secret, None, None, "matrix").into();
                let mut settings = SigningSettings::default();
                settings.signature_location = SignatureLocation::QueryParams;
                settings.percent_encoding_mode = PercentEncodingMode::Single;
                settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
                let (time, expires) = if *expired {
                    (
                        SystemTime::now() - Duration::from_secs(7200),
                        Duration::from_secs(60),
                    )
                } else {
                    (SystemTime::now(), Duration::from_secs(600))
                };
                settings.expires_in = Some(expires);
                let params = aws_sigv4::sign::v4::SigningParams::builder()
                    .identity(&identity)
                    .region("us-east-1")
                    .name("s3")
                    .time(time)
                    .settings(settings)
                    .build()?
                    .into();
                let uri = req.uri().to_owned();
                let headers: Vec<(String, String)> = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                let signable = SignableRequest::new(
                    req.method(),
                    uri.as_str(),
                    headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    SignableBody::UnsignedPayload,
                )?;
                let (instructions, _) = sign(signable, &params)?.into_parts();
                let mut query = String::new();
                for (k, v) in instructions.params() {
                    query.push(if query.is_empty() && !uri.contains('?') {
                        '?'
                    } else {
                        '&'
                    });
                    query.push_str(k);
                    query.push('=');
                    query.push_str(
                        &percent_encoding::utf8_percent_encode(
                            v,
                            percent_encoding::NON_ALPHANUMERIC,
                        )
                        .to_string(),
                    );
                }
                req.set_uri(format!("{uri}{query}"))?;
            }
        }
        Ok(())
    }
}

fn client(server: &Server, access: &str, secret: &str, signing: Signing) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access, secret, None, None, "test"))
        .force_path_style(true)
        // plain bodies (no aws-chunked trailers), so a request can be re-signed in its URL
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .interceptor(Resign(signing))
        .build();
    Client::from_conf(config)
}

fn create_key(data: &std::path::Path, user: &str) -> (String, String) {
    let out = common::cairn(data, &["key", "create", "--user", user]);
    let text = common::ok(&out);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .trim()
            .to_owned()
    };
    (field("access key:"), field("secret key:"))
}

/// ✓ when the request got through (`Ok`), ✗ on 403; anything else is shown as it is.
fn outcome<T, E: std::fmt::Debug>(r: Result<T, SdkError<E>>, absent_ok: bool) -> String {
    match r {
        Ok(_) => "✓".into(),
        Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(403) => "✗".into(),
            Some(404) if absent_ok => "✓".into(),
            Some(status) => format!("{status}"),
            None => format!("{e:?}"),
        },
    }
}

/// What one cell works on: a private versioned bucket of alice's with two private versions
/// of `k` (tagged), an upload in progress with one part, an empty bucket, and the caller's own
/// bucket with an upload of its own (for copies).
struct Fixture {
    bucket: String,
    empty: String,
    old_version: String,
    upload: String,
    part_etag: String,
    own: String,
    own_upload: String,
}

async fn fixture(alice: &Client, own_client: Option<&Client>, name: &str) -> Fixture {
    let bucket = name.to_owned();
    alice.create_bucket().bucket(&bucket).send().await.unwrap();
    alice
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let old = alice
        .put_object()
        .bucket(&bucket)
        .key("k")
        .body(ByteStream::from_static(b"old secret"))
        .send()
        .await
        .unwrap();
    alice
        .put_object()
        .bucket(&bucket)
        .key("k")
        .tagging("t=1")
        .body(ByteStream::from_static(b"new secret"))
        .send()
        .await
        .unwrap();
    let upload = alice
        .create_multipart_upload()
        .bucket(&bucket)
        .key("mp")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let part = alice
        .upload_part()
        .bucket(&bucket)
        .key("mp")
        .upload_id(&upload)
        .part_number(1)
        .body(ByteStream::from_static(b"part one"))
        .send()
        .await
        .unwrap();
    let empty = format!("{name}-e");
    alice.create_bucket().bucket(&empty).send().await.unwrap();
    let (own, own_upload) = match own_client {
        Some(c) => {
            let own = format!("{name}-o");
            c.create_bucket().bucket(&own).send().await.unwrap();
            let up = c
                .create_multipart_upload()
                .bucket(&own)
                .key("into")
                .send()
                .await
                .unwrap();
            (own, up.upload_id().unwrap().to_owned())
        }
        None => (bucket.clone(), upload.clone()),
    };
    Fixture {
        bucket,
        empty,
        old_version: old.version_id().unwrap().to_owned(),
        upload,
        part_etag: part.e_tag().unwrap().to_owned(),
        own,
        own_upload,
    }
}

/// Runs operation `op` as client `c` on `f`; ✓/✗ (or what else came back).
async fn run(op: &str, c: &Client, f: &Fixture) -> String {
    let b = f.bucket.as_str();
    let source = format!("{b}/k");
    match op {
        "ListBuckets" => outcome(c.list_buckets().send().await, false),
        "CreateBucket" => outcome(
            c.create_bucket().bucket(format!("{b}-n")).send().await,
            false,
        ),
        "HeadBucket" => outcome(c.head_bucket().bucket(b).send().await, false),
        "GetBucketLocation" => outcome(c.get_bucket_location().bucket(b).send().await, false),
        "ListObjects" => outcome(c.list_objects().bucket(b).send().await, false),
        "ListObjectsV2" => outcome(c.list_objects_v2().bucket(b).send().await, false),
        "ListObjectVersions" => outcome(c.list_object_versions().bucket(b).send().await, false),
        "ListMultipartUploads" => {
            outcome(c.list_multipart_uploads().bucket(b).send().await, false)
        }
        "GetObject" => outcome(c.get_object().bucket(b).key("k").send().await, false),
        "GetObject (old version)" => outcome(
            c.get_object()
                .bucket(b)
                .key("k")
                .version_id(&f.old_version)
                .send()
                .await,
            false,
        ),
        "HeadObject" => outcome(c.head_object().bucket(b).key("k").send().await, false),
        "PutObject" => outcome(
            c.put_object()
                .bucket(b)
                .key("new")
                .body(ByteStream::from_static(b"new"))
                .send()
                .await,
            false,
        ),
        "DeleteObject" => outcome(c.delete_object().bucket(b).key("k").send().await, false),
        "DeleteObjects" => outcome(
            c.delete_objects()
                .bucket(b)
                .delete(
                    Delete::builder()
                        .objects(ObjectIdentifier::builder().key("k").build().unwrap())
                        .build()
                        .unwrap(),
                )
                .send()
                .await,
            false,
        ),
        "CopyObject (within the bucket)" => outcome(
            c.copy_object()
                .bucket(b)
                .key("copy")
                .copy_source(&source)
                .send()
                .await,
            false,
        ),
        "CopyObject (source into own bucket)" => outcome(
            c.copy_object()
                .bucket(&f.own)
                .key("copy")
                .copy_source(&source)
                .send()
                .await,
            false,
        ),
        "CreateMultipartUpload" => outcome(
            c.create_multipart_upload()
                .bucket(b)
                .key("mp2")
                .send()
                .await,
            false,
        ),
        "UploadPart" => outcome(
            c.upload_part()
                .bucket(b)
                .key("mp")
                .upload_id(&f.upload)
                .part_number(2)
                .body(ByteStream::from_static(b"two"))
                .send()
                .await,
            false,
        ),
        "UploadPartCopy (source into own upload)" => {
            let key = if f.own == f.bucket { "mp" } else { "into" };
            outcome(
                c.upload_part_copy()
                    .bucket(&f.own)
                    .key(key)
                    .upload_id(&f.own_upload)
                    .part_number(3)
                    .copy_source(&source)
                    .send()
                    .await,
                false,
            )
        }
        "CompleteMultipartUpload" => outcome(
            c.complete_multipart_upload()
                .bucket(b)
                .key("mp")
                .upload_id(&f.upload)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .parts(
                            CompletedPart::builder()
                                .part_number(1)
                                .e_tag(&f.part_etag)
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await,
            false,
        ),
        "AbortMultipartUpload" => outcome(
            c.abort_multipart_upload()
                .bucket(b)
                .key("mp")
                .upload_id(&f.upload)
                .send()
                .await,
            false,
        ),
        "ListParts" => outcome(
            c.list_parts()
                .bucket(b)
                .key("mp")
                .upload_id(&f.upload)
                .send()
                .await,
            false,
        ),
        "GetObjectAcl" => outcome(c.get_object_acl().bucket(b).key("k").send().await, false),
        "PutObjectAcl" => outcome(
            c.put_object_acl()
                .bucket(b)
                .key("k")
                .acl(ObjectCannedAcl::Private)
                .send()
                .await,
            false,
        ),
        "GetObjectTagging" => outcome(
            c.get_object_tagging().bucket(b).key("k").send().await,
            false,
        ),
        "PutObjectTagging" => outcome(
            c.put_object_tagging()
                .bucket(b)
                .key("k")
                .tagging(
                    Tagging::builder()
                        .tag_set(Tag::builder().key("t").value("2").build().unwrap())
                        .build()
                        .unwrap(),
                )
                .send()
                .await,
            false,
        ),
        "DeleteObjectTagging" => outcome(
            c.delete_object_tagging().bucket(b).key("k").send().await,
            false,
        ),
        "GetBucketAcl" => outcome(c.get_bucket_acl().bucket(b).send().await, false),
        "PutBucketAcl" => outcome(
            c.put_bucket_acl()
                .bucket(b)
                .acl(BucketCannedAcl::Private)
                .send()
                .await,
            false,
        ),
        "GetBucketPolicy" => outcome(c.get_bucket_policy().bucket(b).send().await, true),
        "PutBucketPolicy" => outcome(
            c.put_bucket_policy()
                .bucket(b)
                .policy(format!(
                    r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::{b}"}}]}}"#
                ))
                .send()
                .await,
            false,
        ),
        "DeleteBucketPolicy" => outcome(c.delete_bucket_policy().bucket(b).send().await, false),
        "GetBucketVersioning" => outcome(c.get_bucket_versioning().bucket(b).send().await, false),
        "PutBucketVersioning" => outcome(
            c.put_bucket_versioning()
                .bucket(b)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Suspended)
                        .build(),
                )
                .send()
                .await,
            false,
        ),
        "GetBucketEncryption" => {
            outcome(c.get_bucket_encryption().bucket(b).send().await, true)
        }
        "PutBucketEncryption" => outcome(
            c.put_bucket_encryption()
                .bucket(b)
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
                .await,
            false,
        ),
        "DeleteBucketEncryption" => {
            outcome(c.delete_bucket_encryption().bucket(b).send().await, false)
        }
        "DeleteBucket" => outcome(c.delete_bucket().bucket(&f.empty).send().await, false),
        other => panic!("the matrix names an operation this test cannot run: {other}"),
    }
}

/// The S3 matrix of `docs/security.md`: (operation, [(column, cell)]).
fn documented_matrix() -> Vec<(String, Vec<(String, String)>)> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/security.md"
    ))
    .unwrap();
    let table = doc
        .split("<!-- matrix:s3 -->")
        .nth(1)
        .expect("docs/security.md has no <!-- matrix:s3 --> table");
    let mut lines = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'));
    let cells = |l: &str| -> Vec<String> {
        l.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let header = cells(lines.next().unwrap());
    lines
        .skip(1)
        .map(|l| {
            let row = cells(l);
            (
                row[0].clone(),
                header[1..]
                    .iter()
                    .cloned()
                    .zip(row[1..].iter().cloned())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_matrix_matches_docs_security() {
    let data = tempfile::tempdir().unwrap();
    let (alice_ak, alice_sk) = create_key(data.path(), "alice");
    let (bob_ak, bob_sk) = create_key(data.path(), "bob");
    let server = Server::start_in(data);
    let header = |ak: &str, sk: &str| client(&server, ak, sk, Signing::Header);
    let (alice, bob, root) = (
        header(&alice_ak, &alice_sk),
        header(&bob_ak, &bob_sk),
        header(ACCESS, SECRET),
    );
    let presigned = |ak: &str, sk: &str, expired| {
        client(
            &server,
            ak,
            sk,
            Signing::Presigned {
                access: ak.to_owned(),
                secret: sk.to_owned(),
                expired,
            },
        )
    };
    // column → (the client, whose own bucket copies go into)
    let columns: BTreeMap<&str, (Client, Option<&Client>)> = [
        ("owner", (alice.clone(), Some(&alice))),
        ("other", (bob.clone(), Some(&bob))),
        (
            "anonymous",
            (
                client(&server, &alice_ak, &alice_sk, Signing::Anonymous),
                None,
            ),
        ),
        ("root", (root.clone(), Some(&root))),
        (
            "presigned owner",
            (presigned(&alice_ak, &alice_sk, false), Some(&alice)),
        ),
        (
            "presigned other",
            (presigned(&bob_ak, &bob_sk, false), Some(&bob)),
        ),
        (
            "expired presign",
            (presigned(&alice_ak, &alice_sk, true), Some(&alice)),
        ),
        (
            "bad signature",
            (
                client(&server, &alice_ak, &alice_sk, Signing::BadSignature),
                Some(&alice),
            ),
        ),
    ]
    .into_iter()
    .collect();

    let matrix = documented_matrix();
    assert!(matrix.len() >= 38, "the documented matrix lost rows");
    let mut differ = Vec::new();
    let mut cells = 0;
    for (row, (op, expected)) in matrix.iter().enumerate() {
        for (col, (column, want)) in expected.iter().enumerate() {
            let (c, own) = columns
                .get(column.as_str())
                .unwrap_or_else(|| panic!("unknown column {column:?}"));
            let f = fixture(&alice, *own, &format!("m{row}-{col}")).await;
            let got = run(op, c, &f).await;
            cells += 1;
            if got != *want {
                differ.push(format!("{op} × {column}: documented {want}, got {got}"));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {cells} cells differ from docs/security.md:\n{}",
        differ.len(),
        differ.join("\n")
    );
    eprintln!("{cells} cells match docs/security.md");
}

/// The review's C1: bob copies alice's private object — plain, from an encrypted bucket, and
/// by UploadPartCopy — into his own bucket. Each is refused, and nothing lands.
#[tokio::test(flavor = "multi_thread")]
async fn copies_of_others_objects_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let (alice_ak, alice_sk) = create_key(data.path(), "alice");
    let (bob_ak, bob_sk) = create_key(data.path(), "bob");
    let server = Server::start_in(data);
    let alice = client(&server, &alice_ak, &alice_sk, Signing::Header);
    let bob = client(&server, &bob_ak, &bob_sk, Signing::Header);
    for bucket in ["alices", "vault"] {
        alice.create_bucket().bucket(bucket).send().await.unwrap();
    }
    alice
        .put_bucket_encryption()
        .bucket("vault")
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
    for bucket in ["alices", "vault"] {
        alice
            .put_object()
            .bucket(bucket)
            .key("k")
            .body(ByteStream::from_static(b"mine"))
            .send()
            .await
            .unwrap();
    }
    bob.create_bucket().bucket("bobs").send().await.unwrap();
    let upload = bob
        .create_multipart_upload()
        .bucket("bobs")
        .key("stolen")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    for source in ["alices/k", "vault/k"] {
        let copy = bob
            .copy_object()
            .bucket("bobs")
            .key("x")
            .copy_source(source)
            .send()
            .await;
        assert_eq!(outcome(copy, false), "✗", "CopyObject from {source}");
        let part = bob
            .upload_part_copy()
            .bucket("bobs")
            .key("stolen")
            .upload_id(&upload)
            .part_number(1)
            .copy_source(source)
            .send()
            .await;
        assert_eq!(outcome(part, false), "✗", "UploadPartCopy from {source}");
    }
    let listed = bob.list_objects_v2().bucket("bobs").send().await.unwrap();
    assert!(listed.contents().is_empty(), "nothing was copied");
    let parts = bob
        .list_parts()
        .bucket("bobs")
        .key("stolen")
        .upload_id(&upload)
        .send()
        .await
        .unwrap();
    assert!(parts.parts().is_empty(), "no part was copied");
    // a public-read object may be copied by anyone signed in (it may be read)
    alice
        .put_object_acl()
        .bucket("alices")
        .key("k")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    bob.copy_object()
        .bucket("bobs")
        .key("x")
        .copy_source("alices/k")
        .send()
        .await
        .unwrap();
}

/// The review's M1: an old private version stays private when a public-read one is written
/// over it, and version ids cannot be walked.
#[tokio::test(flavor = "multi_thread")]
async fn old_private_versions_stay_private() {
    let server = Server::start();
    let root = client(&server, ACCESS, SECRET, Signing::Header);
    let anonymous = client(&server, ACCESS, SECRET, Signing::Anonymous);
    root.create_bucket().bucket("hist").send().await.unwrap();
    root.put_bucket_versioning()
        .bucket("hist")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (body, acl) in [
        (&b"secret"[..], ObjectCannedAcl::Private),
        (&b"public"[..], ObjectCannedAcl::PublicRead),
    ] {
        let put = root
            .put_object()
            .bucket("hist")
            .key("k")
            .acl(acl)
            .body(ByteStream::from_static(body))
            .send()
            .await
            .unwrap();
        ids.push(put.version_id().unwrap().to_owned());
    }
    // the current, public version: anyone
    let got = anonymous
        .get_object()
        .bucket("hist")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.version_id(), Some(ids[1].as_str()));
    // named: the public one yes, the private one no
    let public = anonymous
        .get_object()
        .bucket("hist")
        .key("k")
        .version_id(&ids[1])
        .send()
        .await;
    assert_eq!(outcome(public, false), "✓");
    for op in ["get", "head"] {
        let r = match op {
            "get" => outcome(
                anonymous
                    .get_object()
                    .bucket("hist")
                    .key("k")
                    .version_id(&ids[0])
                    .send()
                    .await,
                false,
            ),
            _ => outcome(
                anonymous
                    .head_object()
                    .bucket("hist")
                    .key("k")
                    .version_id(&ids[0])
                    .send()
                    .await,
                false,
            ),
        };
        assert_eq!(r, "✗", "{op} of the old private version");
    }
    // a guess at an id (or the old counter shape) is refused, not "no such version"
    for guess in [
        "0000000000000001",
        "null",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = anonymous
            .get_object()
            .bucket("hist")
            .key("k")
            .version_id(guess)
            .send()
            .await;
        assert_eq!(outcome(r, false), "✗", "guess {guess}");
    }
    // ids are opaque: long, random, unrelated to each other
    for id in &ids {
        assert!(id.len() >= 32, "{id}");
    }
    assert_ne!(ids[0][..8], ids[1][..8]);
    // the owner reads the old one
    let old = root
        .get_object()
        .bucket("hist")
        .key("k")
        .version_id(&ids[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.body.collect().await.unwrap().into_bytes().as_ref(),
        b"secret"
    );
}

/// S3's meaning of public buckets: a `public-read` ACL lists, a policy reads current
/// versions, `cairn bucket set-public` does both, and an object's own ACL reads that version.
#[tokio::test(flavor = "multi_thread")]
async fn public_reads_follow_acl_and_policy() {
    let server = Server::start();
    let root = client(&server, ACCESS, SECRET, Signing::Header);
    let anon = client(&server, ACCESS, SECRET, Signing::Anonymous);
    for b in ["listed", "policy", "setpub"] {
        root.create_bucket().bucket(b).send().await.unwrap();
        root.put_object()
            .bucket(b)
            .key("k")
            .body(ByteStream::from_static(b"v"))
            .send()
            .await
            .unwrap();
    }
    root.put_bucket_acl()
        .bucket("listed")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    root.put_bucket_policy()
        .bucket("policy")
        .policy(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::policy/*"}]}"#)
        .send()
        .await
        .unwrap();
    common::ok(&common::cairn(
        server.data.path(),
        &["bucket", "set-public", "setpub"],
    ));
    let cells = |b: &'static str| {
        let anon = anon.clone();
        async move {
            (
                outcome(anon.list_objects_v2().bucket(b).send().await, false),
                outcome(anon.get_object().bucket(b).key("k").send().await, false),
                outcome(anon.list_object_versions().bucket(b).send().await, false),
                outcome(anon.get_object_acl().bucket(b).key("k").send().await, false),
            )
        }
    };
    let row = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
    };
    assert_eq!(cells("listed").await, row("✓", "✗", "✗", "✗"));
    assert_eq!(cells("policy").await, row("✗", "✓", "✗", "✗"));
    assert_eq!(cells("setpub").await, row("✓", "✓", "✗", "✗"));
    // a missing key: 404 to those who may list, 403 to others (no probing)
    let missing = |b: &'static str| {
        let anon = anon.clone();
        async move { outcome(anon.get_object().bucket(b).key("nope").send().await, false) }
    };
    assert_eq!(missing("listed").await, "404");
    assert_eq!(missing("policy").await, "✗");
    // the gateway publishes set-public's bucket (its objects) and nothing of the others'
    // private objects
    let cid = |b: &'static str| {
        let root = root.clone();
        async move {
            root.head_object()
                .bucket(b)
                .key("k")
                .send()
                .await
                .unwrap()
                .metadata()
                .unwrap()["cid"]
                .clone()
        }
    };
    let gateway = |cid: String| {
        let mut s = std::net::TcpStream::connect(&server.gateway).unwrap();
        use std::io::{Read, Write};
        write!(
            s,
            "GET /ipfs/{cid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp.split(' ').nth(1).unwrap_or("").to_owned()
    };
    // the three buckets hold the same bytes (one CID); make a private-only one too
    root.put_object()
        .bucket("listed")
        .key("only-here")
        .body(ByteStream::from_static(b"listed only"))
        .send()
        .await
        .unwrap();
    assert_eq!(gateway(cid("setpub").await), "200");
    let only = common::cid_of(&root, "listed", "only-here").await;
    // not served: the gateway answers an unpublished CID as it answers an absent one
    assert_eq!(gateway(only), "404");
}
