//! The crash campaign (issue 17): one node, one data folder, many rounds. Each round 64
//! writers put objects through aws-sdk-s3 — empty, a few bytes, ~100 KiB, a few MiB, multipart
//! uploads of 2–3 parts of 5 MiB (aligned and not), overwrites of keys written in earlier
//! rounds, deletes — while GC runs in a loop (the background job every second and `POST
//! /api/v0/gc` back to back; old bucket roots kept 30 s, so overwritten data is really swept),
//! and the node is killed with SIGKILL after a seeded delay with writes in flight. Then, on the
//! same data folder:
//!
//! * offline, before the restart: `cairn bucket root` (queued changes folded in) and `cairn
//!   check --hard` of that root; `cairn check` of every bucket root committed since the last
//!   round (a root is signed, mirrored, served and restorable: it must be whole);
//! * after the restart: every key reads back byte-exact as its last acknowledged write left it
//!   — or, when a write to it was in flight at the kill, exactly as that write would leave it
//!   (an overwrite, a delete, a multipart Complete), nothing else; the listing shows exactly the
//!   keys that read back, with their sizes; an upload whose Complete was not sent is still
//!   listed and not an object, and completing it from its acknowledged parts gives those bytes;
//!   `cairn scrub` (every block re-hashed) and `cairn check --hard` of the bucket's current root
//!   (every file re-assembled) pass.
//!
//! `CAIRN_CRASH_ROUNDS` (default 3, what CI runs; the campaign is 20 or more by hand),
//! `CAIRN_CRASH_SEED` (kill delays and the writers' choices; printed, so a failing round can be
//! replayed), `CAIRN_CRASH_WRITERS` (default 64), `CAIRN_CRASH_KEEP` (keep the data folder to
//! look at after a failure; `CAIRN_TEST_SERVE_LOG` collects the node's log). `--nocapture`
//! prints a line per round.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region, StalledStreamProtectionConfig};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{ACCESS, SECRET, Server, cairn, ok};
use futures::StreamExt;

const BUCKET: &str = "crash";
const MIB: usize = 1 << 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?}")))
        .unwrap_or(default)
}

/// splitmix64: seeds from (seed, round, writer, seq) and the campaign's random choices.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(parts: &[u64]) -> Rng {
        Rng(parts.iter().fold(0x5EED, |acc, &p| mix(acc ^ p)))
    }
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// `len` bytes of an xorshift stream started from `seed`: no two seeds, and no two 256 KiB
/// chunks of one stream, are alike, so a misplaced, stale or torn block shows.
fn fill(seed: u64, len: usize) -> Vec<u8> {
    let mut x = mix(seed) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An object's content as the segments (seed, length) it was written from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Body(Vec<(u64, usize)>);

impl Body {
    fn one(seed: u64, len: usize) -> Body {
        Body(vec![(seed, len)])
    }
    fn len(&self) -> usize {
        self.0.iter().map(|s| s.1).sum()
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for &(seed, len) in &self.0 {
            out.extend_from_slice(&fill(seed, len));
        }
        out
    }
}

/// What a key holds as far as the writers know.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Absent,
    Present { body: Body, etag: String },
}

/// A multipart upload under way.
#[derive(Debug, Clone, Default)]
struct Upload {
    /// Set once CreateMultipartUpload was acknowledged.
    id: Option<String>,
    /// Every part the upload is made of: (seed, length).
    parts: Vec<(u64, usize)>,
    /// The acknowledged parts: (number, ETag), in order (a prefix of `parts`).
    acked: Vec<(i32, String)>,
    /// Whether CompleteMultipartUpload was sent.
    complete_sent: bool,
}

/// The write that was in flight on a key when the node died (or failed).
#[derive(Debug, Clone)]
enum Pending {
    Put(Body),
    Delete,
    Multipart(Upload),
}

#[derive(Debug, Clone)]
struct Key {
    name: String,
    state: State,
    pending: Option<Pending>,
}

fn client(server: &Server) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ACCESS, SECRET, None, None, "test"))
        .force_path_style(true)
        // One attempt: a request the kill cut off is in flight, not retried into a later
        // outcome; and a slow upload on a loaded machine is not a stalled stream.
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(180))
                .build(),
        )
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    Client::from_conf(config)
}

fn err_text<E: std::fmt::Debug>(e: E) -> String {
    let text = format!("{e:?}");
    text.chars().take(600).collect()
}

/// Writer classes by `writer % 16`: multipart (0), a few MiB (1–3), ~100 KiB (4–8), a few
/// bytes or none (9–11), anything with deletes (12–13), small overwrites and deletes on two
/// keys (14–15).
fn keys_of(writer: usize) -> usize {
    match writer % 16 {
        14 | 15 => 2,
        _ => 4,
    }
}

enum Op {
    Put(Body),
    Delete,
    Multipart(Vec<(u64, usize)>),
}

fn choose(rng: &mut Rng, writer: usize, seed: u64) -> Op {
    let tiny = |rng: &mut Rng| {
        if rng.next().is_multiple_of(4) {
            0
        } else {
            rng.range(1, 64) as usize
        }
    };
    let small = |rng: &mut Rng| rng.range(60_000, 160_000) as usize;
    let big = |rng: &mut Rng| rng.range(MIB as u64, 4 * MIB as u64) as usize;
    let len = match writer % 16 {
        0 => {
            // 2 or 3 parts; every part but the last 5 MiB (aligned to 256 KiB, so Complete
            // joins the parts' leaves) or 5 MiB + 3 (re-chunked at Complete).
            let n = rng.range(2, 3) as usize;
            let first = if rng.next().is_multiple_of(2) {
                5 * MIB
            } else {
                5 * MIB + 3
            };
            let mut parts: Vec<(u64, usize)> = (0..n - 1)
                .map(|i| (mix(seed ^ (i as u64 + 1)), first))
                .collect();
            let last = rng.range(1, 5 * MIB as u64) as usize;
            parts.push((mix(seed ^ 0xFF), last));
            return Op::Multipart(parts);
        }
        1..=3 => big(rng),
        4..=8 => small(rng),
        9..=11 => tiny(rng),
        12 | 13 => match rng.next() % 5 {
            0 => return Op::Delete,
            1 => tiny(rng),
            2 | 3 => small(rng),
            _ => big(rng),
        },
        _ => match rng.next() % 10 {
            0..=2 => return Op::Delete,
            3..=5 => tiny(rng),
            _ => small(rng),
        },
    };
    Op::Put(Body::one(seed, len))
}

async fn put(s3: &Client, key: &str, body: &Body) -> Result<String, String> {
    let out = s3
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body.bytes()))
        .send()
        .await
        .map_err(err_text)?;
    out.e_tag()
        .map(str::to_owned)
        .ok_or_else(|| format!("PUT {key} acknowledged without an ETag"))
}

/// Runs a multipart upload step by step, recording each acknowledgement in `up`; returns the
/// object's ETag.
async fn multipart(s3: &Client, key: &str, up: &mut Upload) -> Result<String, String> {
    let created = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .map_err(err_text)?;
    let id = created
        .upload_id()
        .ok_or("CreateMultipartUpload acknowledged without an id")?
        .to_owned();
    up.id = Some(id.clone());
    for (i, &(seed, len)) in up.parts.clone().iter().enumerate() {
        let number = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(number)
            .body(ByteStream::from(fill(seed, len)))
            .send()
            .await
            .map_err(err_text)?;
        let etag = out
            .e_tag()
            .ok_or("UploadPart acknowledged without an ETag")?;
        up.acked.push((number, etag.to_owned()));
    }
    up.complete_sent = true;
    complete(s3, key, &id, &up.acked).await
}

async fn complete(
    s3: &Client,
    key: &str,
    id: &str,
    parts: &[(i32, String)],
) -> Result<String, String> {
    let parts = parts
        .iter()
        .map(|(n, etag)| CompletedPart::builder().part_number(*n).e_tag(etag).build())
        .collect();
    let out = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .map_err(err_text)?;
    out.e_tag()
        .map(str::to_owned)
        .ok_or_else(|| format!("Complete {key} acknowledged without an ETag"))
}

/// What one writer did in a round.
#[derive(Default)]
struct WriterReport {
    keys: Vec<Key>,
    /// Acknowledged PUTs, DELETEs, Completes.
    acked: u64,
    acked_bytes: u64,
    /// Acknowledged parts (of uploads completed or not).
    acked_parts: u64,
    /// Failures seen before the kill was issued: each is a finding.
    early_errors: Vec<String>,
}

async fn writer(
    s3: Client,
    (seed, round, w): (u64, u64, usize),
    mut keys: Vec<Key>,
    killed: Arc<AtomicBool>,
) -> WriterReport {
    let mut rng = Rng::new(&[seed, round, w as u64, 1]);
    let mut report = WriterReport::default();
    for seq in 0u64.. {
        if killed.load(Ordering::SeqCst) {
            break;
        }
        let j = (rng.next() % keys.len() as u64) as usize;
        let key = keys[j].name.clone();
        let content_seed = mix(seed ^ mix(round ^ mix(w as u64 ^ mix(seq))));
        let (result, pending) = match choose(&mut rng, w, content_seed) {
            Op::Put(body) => {
                let r = put(&s3, &key, &body).await;
                (
                    r.map(|etag| State::Present {
                        body: body.clone(),
                        etag,
                    }),
                    Pending::Put(body),
                )
            }
            Op::Delete => {
                let r = s3
                    .delete_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .send()
                    .await
                    .map(|_| State::Absent)
                    .map_err(err_text);
                (r, Pending::Delete)
            }
            Op::Multipart(parts) => {
                let mut up = Upload {
                    parts: parts.clone(),
                    ..Upload::default()
                };
                let r = multipart(&s3, &key, &mut up).await;
                report.acked_parts += up.acked.len() as u64;
                let body = Body(parts);
                (
                    r.map(|etag| State::Present { body, etag }),
                    Pending::Multipart(up),
                )
            }
        };
        match result {
            Ok(state) => {
                report.acked += 1;
                if let State::Present { body, .. } = &state {
                    report.acked_bytes += body.len() as u64;
                }
                keys[j].state = state;
            }
            Err(e) => {
                if !killed.load(Ordering::SeqCst) {
                    report.early_errors.push(format!("{key}: {e}"));
                }
                keys[j].pending = Some(pending);
                break;
            }
        }
    }
    report.keys = keys;
    report
}

/// GC back to back through the running node's API (`POST /api/v0/gc`) until `stop`.
fn gc_loop(
    data: &Path,
    stop: Arc<AtomicBool>,
    killed: Arc<AtomicBool>,
    busy: Arc<AtomicBool>,
    seed: u64,
) -> std::thread::JoinHandle<(u64, Vec<String>)> {
    let api: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("api.toml")).unwrap()).unwrap();
    let url = format!("http://{}/api/v0/gc", api["addr"].as_str().unwrap());
    let auth = format!("Bearer {}", api["token"].as_str().unwrap());
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut rng = Rng::new(&[seed, 2]);
        let (mut runs, mut errors) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            busy.store(true, Ordering::SeqCst);
            let r = agent.post(&url).header("Authorization", &auth).send_empty();
            busy.store(false, Ordering::SeqCst);
            match r {
                Ok(_) => runs += 1,
                Err(e) if !killed.load(Ordering::SeqCst) => errors.push(e.to_string()),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(rng.range(0, 150)));
        }
        (runs, errors)
    })
}

/// GET a key: its bytes and ETag, or `None` for NoSuchKey.
async fn get(s3: &Client, key: &str) -> Option<(Vec<u8>, String)> {
    match s3.get_object().bucket(BUCKET).key(key).send().await {
        Ok(out) => {
            let etag = out.e_tag().unwrap_or_default().to_owned();
            let bytes = out
                .body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("reading {key}: {e:?}"))
                .into_bytes()
                .to_vec();
            Some((bytes, etag))
        }
        Err(e) => {
            let service = e.into_service_error();
            assert!(service.is_no_such_key(), "GET {key}: {service:?}");
            None
        }
    }
}

fn describe(state: &State) -> String {
    match state {
        State::Absent => "absent".into(),
        State::Present { body, etag } => format!("{} bytes, ETag {etag}", body.len()),
    }
}

/// What a verification found.
#[derive(Default)]
struct Verified {
    present: u64,
    absent: u64,
    bytes: u64,
    /// Keys whose in-flight write is what reads back.
    landed: u64,
    /// Keys whose in-flight write left no trace.
    lost_in_flight: u64,
    /// Uploads completed after the restart from their acknowledged parts.
    resumed_uploads: u64,
}

/// Checks one key against what was acknowledged (and what was in flight); returns the state
/// it is in now. Panics on anything else.
async fn verify_key(s3: &Client, key: &Key, round: u64, v: &mut Verified) -> State {
    let got = get(s3, &key.name).await;
    let matches = |state: &State| match (state, &got) {
        (State::Absent, None) => true,
        (State::Present { body, .. }, Some((bytes, _))) => {
            body.len() == bytes.len() && body.bytes() == *bytes
        }
        _ => false,
    };
    let observed = match &got {
        None => State::Absent,
        Some((bytes, etag)) => {
            v.bytes += bytes.len() as u64;
            // Filled in from the candidate that matches.
            State::Present {
                body: Body(Vec::new()),
                etag: etag.clone(),
            }
        }
    };
    let with_etag = |state: &State| match (state, &observed) {
        (State::Present { body, .. }, State::Present { etag, .. }) => State::Present {
            body: body.clone(),
            etag: etag.clone(),
        },
        (s, _) => s.clone(),
    };
    let was = || {
        format!(
            "round {round}: {} reads back as {}; acknowledged: {}; in flight: {:?}",
            key.name,
            match &got {
                None => "absent".to_owned(),
                Some((b, e)) => format!("{} bytes, ETag {e}", b.len()),
            },
            describe(&key.state),
            key.pending.as_ref().map(|p| match p {
                Pending::Put(b) => format!("PUT of {} bytes", b.len()),
                Pending::Delete => "DELETE".into(),
                Pending::Multipart(u) => format!(
                    "multipart {:?}, {}/{} parts acknowledged, Complete sent: {}",
                    u.id,
                    u.acked.len(),
                    u.parts.len(),
                    u.complete_sent
                ),
            })
        )
    };
    let state = if matches(&key.state) {
        if let (State::Present { etag: want, .. }, State::Present { etag, .. }) =
            (&key.state, &observed)
        {
            assert_eq!(etag, want, "{}", was());
        }
        if key.pending.is_some() {
            v.lost_in_flight += 1;
        }
        key.state.clone()
    } else {
        let next = match &key.pending {
            Some(Pending::Put(body)) => Some(State::Present {
                body: body.clone(),
                etag: String::new(),
            }),
            Some(Pending::Delete) => Some(State::Absent),
            Some(Pending::Multipart(up)) if up.complete_sent => Some(State::Present {
                body: Body(up.parts.clone()),
                etag: String::new(),
            }),
            _ => None,
        };
        match next {
            Some(next) if matches(&next) => {
                v.landed += 1;
                with_etag(&next)
            }
            _ => panic!("{}", was()),
        }
    };
    match &state {
        State::Absent => v.absent += 1,
        State::Present { .. } => v.present += 1,
    }
    state
}

/// Verifies every key after a restart and settles the model: each key's state is what reads
/// back, nothing is in flight. Uploads the kill interrupted before their Complete are checked
/// to be still there and completed from their acknowledged parts (or aborted when none was).
async fn verify(s3: &Client, keys: &mut [Key], round: u64) -> Verified {
    let mut v = Verified::default();
    let states: Vec<(State, Verified)> = futures::stream::iter(keys.iter())
        .map(|key| async move {
            let mut v = Verified::default();
            let s = verify_key(s3, key, round, &mut v).await;
            (s, v)
        })
        .buffered(8)
        .collect()
        .await;
    for (key, (state, kv)) in keys.iter_mut().zip(states) {
        v.present += kv.present;
        v.absent += kv.absent;
        v.bytes += kv.bytes;
        v.landed += kv.landed;
        v.lost_in_flight += kv.lost_in_flight;
        key.state = state;
    }

    // The listing shows exactly the keys that read back, with their sizes.
    let mut listed = BTreeMap::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        for o in out.contents() {
            listed.insert(o.key().unwrap().to_owned(), o.size().unwrap_or(-1));
        }
        token = out.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let expected: BTreeMap<String, i64> = keys
        .iter()
        .filter_map(|k| match &k.state {
            State::Present { body, .. } => Some((k.name.clone(), body.len() as i64)),
            State::Absent => None,
        })
        .collect();
    assert_eq!(listed, expected, "round {round}: the listing");

    // Uploads: those whose Complete was not acknowledged.
    let mut uploads: HashMap<String, String> = HashMap::new(); // id -> key
    let mut marker: Option<(String, String)> = None;
    loop {
        let mut req = s3.list_multipart_uploads().bucket(BUCKET);
        if let Some((k, id)) = &marker {
            req = req.key_marker(k).upload_id_marker(id);
        }
        let out = req.send().await.unwrap();
        for u in out.uploads() {
            uploads.insert(
                u.upload_id().unwrap().to_owned(),
                u.key().unwrap().to_owned(),
            );
        }
        if out.is_truncated() != Some(true) {
            break;
        }
        marker = Some((
            out.next_key_marker().unwrap().to_owned(),
            out.next_upload_id_marker().unwrap().to_owned(),
        ));
    }
    for key in keys.iter_mut() {
        let Some(Pending::Multipart(up)) = key.pending.take() else {
            continue;
        };
        let Some(id) = &up.id else { continue };
        let listed = uploads.remove(id);
        let completed = matches!(&key.state, State::Present { body, .. } if body.0 == up.parts);
        if completed && up.complete_sent {
            // Its Complete landed: the upload is gone with it.
            assert!(
                listed.is_none(),
                "round {round}: {} completed but upload {id} still listed",
                key.name
            );
            continue;
        }
        // CreateMultipartUpload was acknowledged: the upload survived the kill.
        assert_eq!(
            listed.as_deref(),
            Some(key.name.as_str()),
            "round {round}: upload {id} of {} is gone",
            key.name
        );
        if up.acked.is_empty() {
            s3.abort_multipart_upload()
                .bucket(BUCKET)
                .key(&key.name)
                .upload_id(id)
                .send()
                .await
                .unwrap();
            continue;
        }
        let etag = complete(s3, &key.name, id, &up.acked)
            .await
            .unwrap_or_else(|e| panic!("round {round}: completing {id} of {}: {e}", key.name));
        let body = Body(up.parts[..up.acked.len()].to_vec());
        let (bytes, got_etag) = get(s3, &key.name).await.unwrap();
        assert!(
            bytes == body.bytes(),
            "round {round}: {} completed after the restart from {} acknowledged parts: {} \
             bytes differ from the {} expected",
            key.name,
            up.acked.len(),
            bytes.len(),
            body.len()
        );
        assert_eq!(got_etag, etag);
        key.state = State::Present { body, etag };
        v.resumed_uploads += 1;
    }
    // Uploads whose CreateMultipartUpload was in flight: unknown to the writers, aborted.
    for (id, key) in uploads {
        s3.abort_multipart_upload()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(&id)
            .send()
            .await
            .unwrap();
    }
    for key in keys.iter_mut() {
        key.pending = None;
    }
    v
}

/// `cairn bucket root` then `cairn check --hard` of that root: offline on a stopped data
/// folder, through the node's API while one runs. Returns the check's summary line.
fn check_root(data: &Path) -> String {
    let root = ok(&cairn(data, &["bucket", "root", BUCKET]));
    let root = root.trim();
    ok(&cairn(data, &["check", "--hard", root]))
        .trim()
        .to_owned()
}

/// `cairn check` (soft: every block present) of every retained root of the bucket newer than
/// `after` (a sequence number, moved on); returns how many were checked.
fn check_history(data: &Path, after: &mut u64) -> u64 {
    let history = ok(&cairn(data, &["bucket", "history", BUCKET]));
    let mut checked = 0;
    for line in history.lines() {
        let mut fields = line.split_whitespace();
        let (Some(seq), Some(root)) = (fields.next(), fields.next()) else {
            continue;
        };
        let seq: u64 = seq.parse().unwrap();
        if seq <= *after {
            continue;
        }
        let out = cairn(data, &["check", root]);
        assert!(
            out.status.success(),
            "bucket root {seq} ({root}) is not whole: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        *after = seq;
        checked += 1;
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_puts_and_gc() {
    let rounds = env_u64("CAIRN_CRASH_ROUNDS", 3);
    let seed = env_u64("CAIRN_CRASH_SEED", 17);
    let writers = env_u64("CAIRN_CRASH_WRITERS", 64) as usize;
    println!("crash campaign: {rounds} rounds, {writers} writers, CAIRN_CRASH_SEED={seed}");
    let started = Instant::now();

    let mut data = tempfile::tempdir().unwrap();
    if std::env::var_os("CAIRN_CRASH_KEEP").is_some() {
        data.disable_cleanup(true);
        println!("data folder (kept): {}", data.path().display());
    }
    std::fs::write(
        data.path().join("cairn.toml"),
        "gc_interval_secs = 1\nhistory_retention = \"30s\"\n",
    )
    .unwrap();
    let mut server = Server::start_in(data);
    client(&server)
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<Vec<Key>> = (0..writers)
        .map(|w| {
            (0..keys_of(w))
                .map(|j| Key {
                    name: format!("w{w:02}/k{j}"),
                    state: State::Absent,
                    pending: None,
                })
                .collect()
        })
        .collect();

    let mut totals = Verified::default();
    let (mut acked, mut acked_parts, mut acked_bytes, mut in_flight) = (0u64, 0, 0, 0);
    let (mut gc_runs, mut kills_during_gc) = (0, 0);
    let mut restarts = Vec::new();
    let mut delays = Vec::new();
    let (mut checked_seq, mut roots_checked) = (0, 0);
    for round in 0..rounds {
        let round_started = Instant::now();
        let s3 = client(&server);
        let killed = Arc::new(AtomicBool::new(false));
        let stop_gc = Arc::new(AtomicBool::new(false));
        let gc_busy = Arc::new(AtomicBool::new(false));
        let gc = gc_loop(
            server.data.path(),
            stop_gc.clone(),
            killed.clone(),
            gc_busy.clone(),
            mix(seed ^ round),
        );
        let tasks: Vec<_> = std::mem::take(&mut keys)
            .into_iter()
            .enumerate()
            .map(|(w, ks)| tokio::spawn(writer(s3.clone(), (seed, round, w), ks, killed.clone())))
            .collect();

        // A third of the kills early (creates, first parts, the GC started with the node),
        // the rest once the writers are well under way.
        let mut rng = Rng::new(&[seed, round, 3]);
        let delay = Duration::from_millis(match rng.next() % 3 {
            0 => rng.range(50, 800),
            _ => rng.range(800, 4000),
        });
        tokio::time::sleep(delay).await;
        killed.store(true, Ordering::SeqCst);
        let during_gc = gc_busy.load(Ordering::SeqCst);
        let data = server.kill_9();
        delays.push(delay.as_millis() as u64);
        kills_during_gc += u64::from(during_gc);

        let mut early = Vec::new();
        let (mut round_acked, mut round_pending) = (0, 0);
        for t in tasks {
            let r = t.await.unwrap();
            round_acked += r.acked;
            acked_parts += r.acked_parts;
            acked_bytes += r.acked_bytes;
            round_pending += r.keys.iter().filter(|k| k.pending.is_some()).count() as u64;
            early.extend(r.early_errors);
            keys.push(r.keys);
        }
        stop_gc.store(true, Ordering::SeqCst);
        let (runs, gc_errors) = gc.join().unwrap();
        gc_runs += runs;
        acked += round_acked;
        in_flight += round_pending;

        // Offline, on the folder the kill left: the bucket's root (queued changes folded in
        // here) re-hashed and re-assembled.
        let offline = check_root(data.path());
        let roots = check_history(data.path(), &mut checked_seq);
        roots_checked += roots;

        let t = Instant::now();
        server = Server::start_in(data);
        let restart = t.elapsed();
        restarts.push(restart.as_millis() as u64);
        let s3 = client(&server);
        let mut flat: Vec<Key> = keys.concat();
        let v = verify(&s3, &mut flat, round).await;
        let scrub = ok(&cairn(server.data.path(), &["scrub"]));
        let online = check_root(server.data.path());
        println!(
            "round {round}: killed after {} ms{} with {round_pending} writes in flight \
             ({round_acked} acknowledged, {runs} GC runs); restart {} ms; {} objects \
             ({} MiB) and {} absent keys verified, {} in-flight writes landed, {} did not, \
             {} uploads completed from their parts; {}; {roots} new roots whole; offline \
             {offline}; online {online}; round {:.1} s",
            delay.as_millis(),
            if during_gc { " during a GC" } else { "" },
            restart.as_millis(),
            v.present,
            v.bytes >> 20,
            v.absent,
            v.landed,
            v.lost_in_flight,
            v.resumed_uploads,
            scrub.trim(),
            round_started.elapsed().as_secs_f64(),
        );
        // A node that stopped answering would look like writes in flight: it must have
        // acknowledged some.
        assert!(
            round_acked > 0 || delay < Duration::from_secs(1),
            "round {round}: nothing acknowledged in {delay:?}"
        );
        assert!(
            early.is_empty(),
            "round {round}: writes failed before the kill: {early:#?}"
        );
        assert!(
            gc_errors.is_empty(),
            "round {round}: GC failed before the kill: {gc_errors:?}"
        );
        totals.present += v.present;
        totals.absent += v.absent;
        totals.bytes += v.bytes;
        totals.landed += v.landed;
        totals.lost_in_flight += v.lost_in_flight;
        totals.resumed_uploads += v.resumed_uploads;
        // Back to one list per writer.
        let mut it = flat.into_iter();
        keys = (0..writers)
            .map(|w| it.by_ref().take(keys_of(w)).collect())
            .collect();
    }
    delays.sort_unstable();
    restarts.sort_unstable();
    println!(
        "crash campaign done: {rounds} rounds in {:.0} s; {acked} writes acknowledged \
         ({} MiB, plus {acked_parts} parts), {in_flight} in flight at the kills \
         ({} landed, {} did not); {} objects ({} MiB) and {} absent keys verified; {} \
         uploads completed after a restart; {gc_runs} API GC runs, {kills_during_gc} kills \
         during one; {roots_checked} bucket roots checked; kill delays {:?} ms; restarts \
         {}–{} ms",
        started.elapsed().as_secs_f64(),
        acked_bytes >> 20,
        totals.landed,
        totals.lost_in_flight,
        totals.present,
        totals.bytes >> 20,
        totals.absent,
        totals.resumed_uploads,
        delays,
        restarts.first().copied().unwrap_or(0),
        restarts.last().copied().unwrap_or(0),
    );
}
