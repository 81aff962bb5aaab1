//! `/api/v1` on the gateway listener, driven over HTTP like a web client would: the secret
//! mode refuses anonymous and wrong callers; a 100 MiB upload answers a job id while its
//! import is still running, the long-poll returns the CID `cairn add` gives the same bytes
//! (with BLAKE3 and size); the file reads back with ranges, exists, checks hard; malformed
//! requests get 4xx JSON; a node killed right after accepting an upload finishes (or fails)
//! the job after a restart and never loses a finished one; the public mode and the upload cap.

mod common;

use std::time::Duration;

use common::{Server, cairn_add_cid, pattern};
use serde_json::Value;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

struct V1 {
    base: String,
    auth: Option<String>,
    agent: ureq::Agent,
}

impl V1 {
    fn new(node: &Server, secret: Option<&str>) -> V1 {
        V1 {
            base: format!("http://{}/api/v1", node.gateway),
            auth: secret.map(|s| format!("Bearer {s}")),
            agent: agent(),
        }
    }

    fn secret_of(node: &Server) -> String {
        std::fs::read_to_string(node.data.path().join("api-secret"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// (status, headers, body)
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, Vec<u8>) {
        let uri = format!("{}{path}", self.base);
        let mut req = http::Request::builder().method(method).uri(&uri);
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match body {
            Some(b) => self.agent.run(req.body(b.to_vec()).unwrap()),
            None => self.agent.run(req.body(()).unwrap()),
        }
        .unwrap_or_else(|e| panic!("{method} {uri}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        (status, headers, body)
    }

    fn json(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, Value) {
        let (status, headers, bytes) = self.call(method, path, body, &[]);
        let ct = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "{method} {path}: {status} {ct:?} {}",
            String::from_utf8_lossy(&bytes)
        );
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

/// Submits `bytes`; returns the job id (asserting the job was still ACTIVE when answered).
fn submit(api: &V1, bytes: &[u8], query: &str) -> String {
    let (status, job) = api.json("POST", &format!("/files{query}"), Some(bytes));
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["state"], "ACTIVE", "{job}");
    job["job_id"].as_str().unwrap().to_owned()
}

fn wait_done(api: &V1, id: &str) -> Value {
    for _ in 0..20 {
        let (status, job) = api.json("GET", &format!("/jobs/{id}?wait=true"), None);
        assert_eq!(status, 200, "{job}");
        if job["state"] != "ACTIVE" {
            return job;
        }
    }
    panic!("job {id} never finished");
}

#[test]
fn upload_jobs_files_checks_and_auth() {
    let node = Server::start();
    let secret = V1::secret_of(&node);
    assert!(secret.len() >= 32, "a generated secret");

    // Secret mode: anonymous 401, wrong secret 403, unknown endpoint 404 (all JSON).
    let anonymous = V1::new(&node, None);
    let (status, e) = anonymous.json("GET", "/jobs/0", None);
    assert_eq!(status, 401, "{e}");
    assert!(e["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = anonymous.json("POST", "/files?ext=bin", Some(b"x"));
    assert_eq!(status, 401);
    let (status, _) = V1::new(&node, Some("not-the-secret")).json("GET", "/jobs/0", None);
    assert_eq!(status, 403);
    // The node's key is public (a login signs it): open to anyone.
    let (status, key) = anonymous.json("GET", "/pubkey", None);
    assert_eq!(status, 200, "{key}");
    let api = V1::new(&node, Some(&secret));
    let (status, key) = api.json("GET", "/pubkey", None);
    assert_eq!(status, 200);
    assert_eq!(key["public_key"].as_str().unwrap().len(), 64, "{key}");
    assert_eq!(api.json("GET", "/nowhere", None).0, 404);

    // 100 MiB: a job id at once, then the CID `cairn add` gives.
    let data = pattern(100 << 20, 7);
    let id = submit(&api, &data, "?ext=bin");
    let answered_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let job = wait_done(&api, &id);
    assert_eq!(job["state"], "DONE", "{job}");
    // The import ended after the answer reached us (it runs in the background, not before
    // the 202 is sent).
    assert!(
        job["finished_ms"].as_u64().unwrap() >= answered_ms,
        "import finished at {} but the job id only arrived at {answered_ms}",
        job["finished_ms"]
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, &data).unwrap();
    let cid = cairn_add_cid(&file);
    assert_eq!(job["cid"], cid.as_str(), "{job}");
    assert_eq!(job["size"], data.len() as u64);
    assert_eq!(job["ext"], "bin");
    assert_eq!(job["blake3"], blake3::hash(&data).to_hex().as_str());

    // The file: ranges, content type from the extension, existence, a hard check.
    let (status, headers, part) = api.call(
        "GET",
        &format!("/files/{cid}.bin"),
        None,
        &[("Range", "bytes=1000000-1999999")],
    );
    assert_eq!(status, 206);
    assert!(part == data[1_000_000..2_000_000], "range bytes");
    assert_eq!(headers["content-type"], "application/octet-stream");
    let (status, headers, _) = api.call("HEAD", &format!("/files/{cid}"), None, &[]);
    assert_eq!(status, 200);
    assert_eq!(
        headers["content-length"],
        (100u64 << 20).to_string().as_str()
    );
    let (status, _, _) = api.call(
        "HEAD",
        "/files/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        None,
        &[],
    );
    assert_eq!(status, 404, "a CID this node does not have");
    let (status, report) = api.json("GET", &format!("/check/{cid}?hard=true"), None);
    assert_eq!(
        (status, &report["ok"], &report["mode"]),
        (200, &Value::Bool(true), &Value::from("hard"))
    );
    let small = submit(&api, b"<p>hello</p>", "?ext=html&cid_version=1");
    let small = wait_done(&api, &small);
    let (_, headers, body) = api.call(
        "GET",
        &format!("/files/{}.html", small["cid"].as_str().unwrap()),
        None,
        &[],
    );
    assert_eq!(body, b"<p>hello</p>");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Malformed requests: 4xx with a JSON error.
    for (method, path, body, want) in [
        ("GET", "/jobs/nonsense", None, 404),
        ("GET", "/jobs/0123456789abcdef0123456789abcdef", None, 404),
        ("GET", "/jobs/x?wait=maybe", None, 400),
        ("POST", "/files?cid_version=7", Some(&b"x"[..]), 400),
        ("POST", "/files?ext=a..b", Some(&b"x"[..]), 400),
        ("POST", "/files?ext=.b", Some(&b"x"[..]), 400),
        ("GET", "/files/notacid", None, 400),
        ("GET", "/check/notacid", None, 400),
    ] {
        let (status, e) = api.json(method, path, body);
        assert_eq!(status, want, "{method} {path}: {e}");
        assert!(e["error"].is_string(), "{method} {path}: {e}");
    }

    // Killed right after accepting an upload: after the restart the job finishes (or says
    // ERROR), and the finished job is still there.
    let other = pattern(30 << 20, 9);
    let pending = submit(&api, &other, "");
    let data_dir = node.kill_9();
    let node = Server::start_in(data_dir);
    let api = V1::new(&node, Some(&secret));
    let after = wait_done(&api, &pending);
    match after["state"].as_str().unwrap() {
        "DONE" => {
            std::fs::write(&file, &other).unwrap();
            assert_eq!(after["cid"], cairn_add_cid(&file).as_str(), "{after}");
        }
        "ERROR" => assert!(after["error"].is_string(), "{after}"),
        other => panic!("state {other}"),
    }
    let (_, kept) = api.json("GET", &format!("/jobs/{id}"), None);
    assert_eq!(
        (&kept["state"], &kept["cid"]),
        (&Value::from("DONE"), &Value::from(cid))
    );
}

#[test]
fn public_mode_and_the_upload_cap() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("cairn.toml"),
        "[api]\nsecurity = \"public\"\nmax_upload = \"1KiB\"\n",
    )
    .unwrap();
    let node = Server::start_in(data);
    let api = V1::new(&node, None);
    let (status, e) = api.json("POST", "/files", Some(&[0u8; 2048]));
    assert_eq!(status, 413, "{e}");
    let id = submit(&api, b"small enough", "");
    assert_eq!(wait_done(&api, &id)["size"], 12);
    assert!(
        !node.data.path().join("api-secret").exists(),
        "no secret in public mode"
    );
}
