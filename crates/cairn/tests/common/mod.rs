//! The test node shared by the integration tests: `cairn serve` on free 127.0.0.1 ports with
//! fixed root credentials, clients for it, and the way to `../shared`.
#![allow(dead_code)]

pub mod helia;
pub mod nodes;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region};

pub const ACCESS: &str = "CAIRNTESTACCESSKEY01";
pub const SECRET: &str = "cairn-test-secret-key-0123456789abcdefghij";

/// `cairn serve` on free loopback ports.
pub const SERVE: [&str; 11] = [
    "serve",
    "--s3-listen",
    "127.0.0.1:0",
    "--api-listen",
    "127.0.0.1:0",
    "--gateway-listen",
    "127.0.0.1:0",
    "--p2p-listen",
    "/ip4/127.0.0.1/tcp/0",
    "--metrics-listen",
    "127.0.0.1:0",
];

pub struct Server {
    child: Child,
    /// `host:port` of the S3 API.
    pub addr: String,
    /// `host:port` of the IPFS gateway.
    pub gateway: String,
    /// `http://host:port/metrics`.
    pub metrics: String,
    /// The node's data folder.
    pub data: tempfile::TempDir,
    /// Its S3 and gateway listeners speak TLS.
    pub tls: bool,
    /// `host:port` of the SFTP door, when it was started.
    pub sftp: Option<String>,
}

/// The `host:port` the start line gives after `label` and `http://` or `https://`.
fn listed(line: &str, label: &str) -> String {
    line.split(label)
        .nth(1)
        .and_then(|rest| rest.split_once("://"))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label:?} address in {line:?}"))
        .to_owned()
}

impl Server {
    pub fn start() -> Server {
        Server::start_in(tempfile::tempdir().unwrap())
    }

    /// Starts a node on the data folder `data` (which may hold an earlier node's data).
    pub fn start_in(data: tempfile::TempDir) -> Server {
        Server::start_with(data, &[])
    }

    pub fn start_with(data: tempfile::TempDir, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(SERVE)
            .args(extra)
            .arg("--data")
            .arg(data.path())
            .env("CAIRN_ROOT_ACCESS_KEY", ACCESS)
            .env("CAIRN_ROOT_SECRET_KEY", SECRET)
            .env_remove("CAIRN_DATA")
            .stdout(Stdio::piped())
            .stderr(match std::env::var_os("CAIRN_TEST_SERVE_LOG") {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("open the serve log"),
                ),
                None => Stdio::null(),
            })
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = listed(&line, "S3 API on ");
        let gateway = listed(&line, "gateway on ");
        let tls = line.contains("S3 API on https://");
        let sftp = line.contains("sftp on ").then(|| listed(&line, "sftp on "));
        let metrics = line
            .split("metrics on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
            .to_owned();
        Server {
            child,
            addr,
            gateway,
            metrics,
            data,
            tls,
            sftp,
        }
    }

    /// Starts a node that joins `member`'s cluster (with the admin key, so it may promote).
    pub fn join(member: &Server) -> Server {
        Server::join_with(member, tempfile::tempdir().unwrap(), &[])
    }

    /// [`Server::join`] on the data folder `data`, with more flags.
    pub fn join_with(member: &Server, data: tempfile::TempDir, extra: &[&str]) -> Server {
        let token = member.invite();
        let mut args = vec!["--join", token.as_str()];
        args.extend_from_slice(extra);
        Server::start_with(data, &args)
    }

    /// The value of the first `/metrics` sample whose line starts with `name`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let text = ureq::get(&self.metrics)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A token to join this node's cluster (`cairn cluster invite --admin`).
    pub fn invite(&self) -> String {
        ok(&cairn(self.data.path(), &["cluster", "invite", "--admin"]))
            .trim()
            .to_owned()
    }

    pub fn client_with(&self, access: &str, secret: &str) -> Client {
        let config = aws_sdk_s3::Config::builder()
            .endpoint_url(self.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(access, secret, None, None, "test"))
            .force_path_style(true)
            .build();
        Client::from_conf(config)
    }

    pub fn client(&self) -> Client {
        self.client_with(ACCESS, SECRET)
    }

    /// A raw HTTP/1.1 request; returns (status, body).
    pub fn raw(&self, method: &str, path_and_query: &str) -> (u16, Vec<u8>) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let head_end = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&resp[..head_end]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let mut body = resp[head_end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        (status, body)
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

impl Server {
    /// SIGKILL, no goodbye; returns the data folder.
    pub fn kill_9(mut self) -> tempfile::TempDir {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let data = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.data, data)
    }
}

impl Server {
    /// `http://host:port` (`https://` when the node serves TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// A command with this node's credentials and endpoint in its environment (for real
    /// clients).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("AWS_ACCESS_KEY_ID", ACCESS)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("S3_ENDPOINT", self.endpoint())
            .env_remove("AWS_CA_BUNDLE")
            .env_remove("AWS_PROFILE");
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CID the node reports for `bucket/key` (its `x-amz-meta-cid`).
pub async fn cid_of(s3: &Client, bucket: &str, key: &str) -> String {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    head.metadata().unwrap()["cid"].clone()
}

/// Makes `bucket` public the way `cairn bucket set-public` does: the bucket policy allowing
/// anyone to list it and read its current objects (a `public-read` bucket ACL only lists).
pub async fn make_public(s3: &Client, bucket: &str) {
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}},{{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::{bucket}"}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap();
}

/// `../shared` beside the project root (CI clones the project next to it).
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CAIRN_SHARED") {
        return dir.into();
    }
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        if dir.join("shared/s3").is_dir() {
            return dir.join("shared");
        }
        assert!(dir.pop(), "../shared not found; set CAIRN_SHARED");
    }
}

/// `len` bytes from a xorshift stream: no 256 KiB chunk repeats, so a misordered or dropped leaf
/// changes the CID and the bytes read back.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    pattern_seeded(len, u64::from(seed))
}

/// [`pattern`] for any number of distinct seeds (e.g. one per file of a large tree).
pub fn pattern_seeded(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs the `cairn` binary on a data folder (through a running node's API when one holds it).
pub fn cairn(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("CAIRN_DATA")
        .output()
        .unwrap()
}

/// The stdout of a command that must have succeeded (its output shown when it did not).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// What `cairn add -q` prints for a file, in a throwaway store.
pub fn cairn_add_cid(file: &Path) -> String {
    let store = tempfile::tempdir().unwrap();
    let out = cairn(store.path(), &["add", "-q", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The root CID on the last line of `cairn add -r` output (`added <cid> <name>`).
pub fn added_root(stdout: &str) -> String {
    let last = stdout.lines().last().expect("add printed nothing");
    last.split(' ')
        .nth(1)
        .expect("no CID on the line")
        .to_owned()
}

/// Every block file in a data folder.
pub fn block_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(data.join("blocks")).unwrap().flatten() {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out
}
