//! TLS on the HTTP listeners (issue 17): a node started with `--tls-cert`/`--tls-key` serves S3,
//! the gateway and the APIs over HTTPS only — driven by aws-sdk-s3 with an HTTPS-only
//! connector that trusts the node's certificate, by aws cli with `--ca-bundle`, by curl limited
//! to `--proto =https`, and by the CLI's `--node https://… --ca-cert`. A client that does not
//! trust the certificate is refused, a plain HTTP request gets no answer, and the `[tls]`
//! table of the config does what the flags do.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use common::{ACCESS, SECRET, Server, cairn, ok};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path)
}

fn start_tls(cert: &Path, key: &Path) -> Server {
    Server::start_with(
        tempfile::tempdir().unwrap(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
}

/// aws-sdk-s3 over an HTTPS-only connector that trusts exactly `cert`.
fn https_client(node: &Server, cert: &Path) -> aws_sdk_s3::Client {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(
                    tls::TrustStore::empty().with_pem_certificate(std::fs::read(cert).unwrap()),
                )
                .build()
                .unwrap(),
        )
        .build_https();
    let config = aws_sdk_s3::Config::builder()
        .endpoint_url(node.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ACCESS, SECRET, None, None, "test"))
        .force_path_style(true)
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The stdout of a command that must have succeeded, as bytes.
fn stdout_bytes(out: &std::process::Output) -> &[u8] {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    &out.stdout
}

/// True when the listener at `addr` answers a plain HTTP request with an HTTP response.
fn answers_plain_http(addr: &str) -> bool {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    // (the TLS listener may close before the request is written: a broken pipe is no answer)
    let _ = write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer.starts_with(b"HTTP/")
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_gateway_and_apis_speak_https() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let node = start_tls(&cert, &key);
    assert!(node.tls, "the start line names https");
    assert!(node.endpoint().starts_with("https://"));

    // aws-sdk-s3, HTTPS only: a bucket, an object (multi-MiB, SSE-C among them: the key
    // travels in headers that must not cross a network in clear), read back byte-exact.
    let s3 = https_client(&node, &cert);
    s3.create_bucket().bucket("tls").send().await.unwrap();
    let body = common::pattern_seeded(3 << 20, 17);
    s3.put_object()
        .bucket("tls")
        .key("big")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("tls")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), body);
    common::make_public(&s3, "tls").await;

    // aws cli with the certificate as its CA bundle; without it, the connection is refused.
    let file = certs.path().join("upload.bin");
    std::fs::write(&file, &body[..100_000]).unwrap();
    let out = node
        .command("aws")
        .args(["--endpoint-url", &node.endpoint(), "--ca-bundle"])
        .arg(&cert)
        .args(["s3", "cp"])
        .arg(&file)
        .arg("s3://tls/from-cli")
        .output()
        .unwrap();
    ok(&out);
    let out = node
        .command("aws")
        .args(["--endpoint-url", &node.endpoint(), "--ca-bundle"])
        .arg(&cert)
        .args(["s3", "cp", "s3://tls/from-cli", "-"])
        .output()
        .unwrap();
    assert_eq!(stdout_bytes(&out), &body[..100_000]);
    let out = node
        .command("aws")
        .args(["--endpoint-url", &node.endpoint(), "s3", "ls", "s3://tls"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an untrusted certificate must fail");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SSL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The gateway, with curl allowed HTTPS only: a published object by its CID.
    let cid = common::cid_of(&s3, "tls", "from-cli").await;
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--proto", "=https", "--cacert"])
        .arg(&cert)
        .arg(format!("https://{}/ipfs/{cid}", node.gateway))
        .output()
        .unwrap();
    assert_eq!(stdout_bytes(&out), &body[..100_000]);

    // The remote CLI (`/api/v0` on the gateway listener) with the operator's secret, trusting
    // the node's certificate; without `--ca-cert` it refuses the connection.
    let secret = std::fs::read_to_string(node.data.path().join("api-secret")).unwrap();
    let url = format!("https://{}", node.gateway);
    let elsewhere = tempfile::tempdir().unwrap();
    let remote = |extra: &[&str]| {
        let mut args = vec!["--node", url.as_str(), "--token", secret.trim()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["bucket", "list"]);
        cairn(elsewhere.path(), &args)
    };
    let listed = ok(&remote(&["--ca-cert", cert.to_str().unwrap()]));
    assert!(listed.contains("tls"), "{listed}");
    let refused = remote(&[]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(why.contains("certificate") || why.contains("tls"), "{why}");

    // The local API stays on loopback, plain: the CLI on the data folder still works.
    ok(&cairn(node.data.path(), &["bucket", "list"]));

    // Plain HTTP gets no HTTP answer from the TLS listeners.
    assert!(!answers_plain_http(&node.addr));
    assert!(!answers_plain_http(&node.gateway));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tls_table_of_the_config() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("cairn.toml"),
        format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            cert.to_str().unwrap(),
            key.to_str().unwrap()
        ),
    )
    .unwrap();
    let node = Server::start_in(data);
    assert!(node.tls);
    let s3 = https_client(&node, &cert);
    s3.create_bucket()
        .bucket("from-config")
        .send()
        .await
        .unwrap();
    let listed = s3.list_buckets().send().await.unwrap();
    assert_eq!(listed.buckets()[0].name(), Some("from-config"));
}

/// A key that does not fit the certificate, or a missing file, stops `serve` with a message
/// naming the file — never a node that silently serves plain HTTP.
#[test]
fn a_bad_certificate_is_a_clear_error() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, _) = certificate(certs.path());
    let other = tempfile::tempdir().unwrap();
    let (_, wrong_key) = certificate(other.path());
    let data = tempfile::tempdir().unwrap();
    let serve = |cert: &Path, key: &Path| {
        let mut args = common::SERVE.to_vec();
        args.extend(["--tls-cert", cert.to_str().unwrap()]);
        args.extend(["--tls-key", key.to_str().unwrap()]);
        cairn(data.path(), &args)
    };
    let out = serve(&cert, &wrong_key);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not fit the certificate"), "{err}");
    let out = serve(&certs.path().join("missing.pem"), &wrong_key);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
}

/// A client that sends half a request's headers and stalls is cut after the header read
/// timeout (30 s) on every HTTP listener — the gateway here, which used to have none.
#[test]
fn a_stalled_request_is_cut() {
    let node = Server::start();
    std::thread::scope(|scope| {
        for addr in [&node.gateway, &node.addr] {
            scope.spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
                    .unwrap();
                s.write_all(b"GET /ipfs/ HTTP/1.1\r\nHost: x\r\n").unwrap();
                let mut rest = Vec::new();
                // Closed by the node: Ok; still open when the read times out: Err.
                assert!(
                    s.read_to_end(&mut rest).is_ok(),
                    "{addr}: still open after 60 s"
                );
            });
        }
    });
}
