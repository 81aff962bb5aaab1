//! The security modes of the APIs on the gateway listener, over every endpoint of `/api/v1`
//! and of `/api/v0` (the remote CLI's API, read from the router's source so a new route is
//! covered without editing this test): anonymous, wrong secret, unlisted key, expired,
//! replayed, skewed or badly signed logins and tampered or foreign tokens are refused with
//! 401/403; the right credentials are served. Then the CLI against a node "elsewhere"
//! (`--node URL` with a secret, or logging in with a key file).

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_crypt::identity::Identity;
use common::{Server, cairn, ok};
use serde_json::{Value, json};

/// Every `(method, path)` of `/api/v0`, from the router's source.
fn v0_routes() -> Vec<(String, String)> {
    let src = include_str!("../../cairn-api/src/lib.rs");
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(path) = rest
            .trim_start()
            .strip_prefix('"')
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        let after = &rest[rest.find(path).unwrap() + path.len()..];
        let method = if after
            .trim_start_matches([',', ' ', '\n', '"'])
            .starts_with("post(")
        {
            "POST"
        } else {
            "GET"
        };
        out.push((method.to_owned(), path.to_owned()));
    }
    assert!(out.len() > 30, "the route list was not found: {out:?}");
    out
}

/// Every `(method, path)` of `/api/v1` but login, with real arguments.
fn v1_routes(cid: &str) -> Vec<(String, String)> {
    [
        ("POST", "/api/v1/files?ext=txt".to_owned()),
        ("GET", format!("/api/v1/files/{cid}")),
        ("HEAD", format!("/api/v1/files/{cid}")),
        ("GET", "/api/v1/jobs/nosuchjob".to_owned()),
        ("GET", format!("/api/v1/check/{cid}")),
        ("POST", "/api/v1/ssh/enable".to_owned()),
        ("GET", "/api/v1/ssh/nosuchuser/size".to_owned()),
        ("POST", "/api/v1/ssh/process".to_owned()),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p))
    .collect()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The status of `method path` on `gateway` with `Authorization: Bearer auth`.
fn status(gateway: &str, method: &str, path: &str, auth: Option<&str>) -> u16 {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{gateway}{path}"));
    if let Some(a) = auth {
        req = req.header("Authorization", format!("Bearer {a}"));
    }
    let resp = agent()
        .run(req.body(b"hello".to_vec()).unwrap())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    resp.status().as_u16()
}

/// Asserts every route answers `want(status)` for `auth`.
fn every_route(
    node: &Server,
    routes: &[(String, String)],
    auth: Option<&str>,
    what: &str,
    want: impl Fn(&str, u16) -> bool,
) {
    for (method, path) in routes {
        let s = status(&node.gateway, method, path, auth);
        assert!(want(path, s), "{what}: {method} {path} answered {s}");
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The node's key, which a login signs: `GET /api/v1/pubkey`, open to anyone in every mode.
fn node_key(node: &Server) -> [u8; 32] {
    let resp = agent()
        .get(format!("http://{}/api/v1/pubkey", node.gateway))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
    hex::decode(v["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// A login for `node` signed by `id` at `epoch_ms`.
fn login_body(node: &Server, id: &Identity, epoch_ms: u64) -> Value {
    json!({
        "public_key": id.public().to_string(),
        "epoch_ms": epoch_ms,
        "signature": hex::encode(id.sign_login(&node_key(node), epoch_ms)),
    })
}

/// `POST /api/v1/login` → (status, body).
fn login(node: &Server, body: &Value) -> (u16, Value) {
    let resp = agent()
        .post(format!("http://{}/api/v1/login", node.gateway))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A key file made by `cairn user create`; returns (path, public key).
fn user(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(format!("{name}.key"));
    let out = cairn(
        dir,
        &["user", "create", name, "--out", path.to_str().unwrap()],
    );
    let public = ok(&out).trim().to_owned();
    assert!(public.starts_with("cpk1"), "{public}");
    (path, public)
}

fn load(path: &Path) -> Identity {
    Identity::from_text(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

fn start_with_config(config: &str) -> Server {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("cairn.toml"), config).unwrap();
    Server::start_in(data)
}

/// Roles on the HTTP APIs: a logged-in user acts as its own user — it may not mint S3 keys
/// for another user, run GC or read a CID of someone else's private object — while the
/// operator (the secret) may; in public mode an anonymous caller gets only what is published.
#[tokio::test(flavor = "multi_thread")]
async fn roles_on_the_http_apis() {
    use aws_sdk_s3::primitives::ByteStream;
    let keys = tempfile::tempdir().unwrap();
    let (alice_file, alice_pub) = user(keys.path(), "alice");
    let alice = load(&alice_file);
    let config = format!("[api]\nsecurity = \"allowlist\"\nallow = [\"{alice_pub}\"]\n");
    let node = start_with_config(&config);
    // a private object of root's
    let s3 = node.client();
    s3.create_bucket().bucket("roots").send().await.unwrap();
    s3.put_object()
        .bucket("roots")
        .key("secret")
        .body(ByteStream::from_static(b"root's secret"))
        .send()
        .await
        .unwrap();
    let cid = common::cid_of(&s3, "roots", "secret").await;
    let (s, v) = login(&node, &login_body(&node, &alice, now_ms()));
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    let gw = &node.gateway;
    for (method, path) in [
        ("POST", "/api/v0/key/create?user=bob".to_owned()),
        ("POST", "/api/v0/key/create?user=alice".to_owned()),
        ("POST", "/api/v0/gc".to_owned()),
        ("POST", "/api/v0/bucket/set-public?arg=roots".to_owned()),
        ("GET", format!("/api/v0/cat?arg={cid}")),
        ("GET", format!("/api/v1/files/{cid}")),
        ("GET", format!("/api/v1/check/{cid}")),
    ] {
        assert_eq!(
            status(gw, method, &path, Some(&token)),
            403,
            "alice: {method} {path}"
        );
    }
    // her own bucket she may make, and she sees only her own in the list
    let url = format!("http://{gw}");
    let here = tempfile::tempdir().unwrap();
    let as_alice = |args: &[&str]| {
        let mut all = vec!["--node", &url, "--identity", alice_file.to_str().unwrap()];
        all.extend_from_slice(args);
        cairn(here.path(), &all)
    };
    ok(&as_alice(&["bucket", "create", "alices"]));
    let listed = ok(&as_alice(&["bucket", "list"]));
    assert!(
        listed.contains("alices") && !listed.contains("roots"),
        "{listed}"
    );
    // the public object stays unreadable to anonymous callers of a public-mode node
    let open = start_with_config("[api]\nsecurity = \"public\"\n");
    let s3 = open.client();
    s3.create_bucket().bucket("roots").send().await.unwrap();
    s3.put_object()
        .bucket("roots")
        .key("secret")
        .body(ByteStream::from_static(b"root's secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(&open.gateway, "GET", &format!("/api/v1/files/{cid}"), None),
        403
    );
}

/// Past the gate and to a handler: not refused, and the route exists (only a job or an
/// account that does not exist may be 404).
fn served(path: &str, s: u16) -> bool {
    s != 401 && s != 403 && s != 405 && (s != 404 || path.contains("/nosuch"))
}

/// The operator's routes of `/api/v1` (`Admin` in docs/security.md).
fn v1_admin(path: &str) -> bool {
    path.starts_with("/api/v1/ssh/")
}

#[test]
fn every_endpoint_in_every_mode() {
    let keys = tempfile::tempdir().unwrap();
    let (alice_file, alice_pub) = user(keys.path(), "alice");
    let (mallory_file, _) = user(keys.path(), "mallory");
    let (alice, mallory) = (load(&alice_file), load(&mallory_file));
    // The routes send "hello" as bodies: `/api/v0/add` (before the v1 reads) stores it, so
    // the reads find the CID locally.
    let hello = keys.path().join("hello");
    std::fs::write(&hello, b"hello").unwrap();
    let cid = common::cairn_add_cid(&hello);
    let mut routes = v0_routes();
    routes.extend(v1_routes(&cid));

    // --- secret (the default) ---
    let node = Server::start();
    let secret = std::fs::read_to_string(node.data.path().join("api-secret"))
        .unwrap()
        .trim()
        .to_owned();
    every_route(&node, &routes, None, "secret, anonymous", |_, s| s == 401);
    every_route(&node, &routes, Some("wrong"), "secret, wrong", |_, s| {
        s == 403
    });
    every_route(&node, &routes, Some(&secret), "secret, right", served);
    let (s, e) = login(&node, &login_body(&node, &alice, now_ms()));
    assert_eq!(s, 400, "login is for allowlist mode: {e}");

    // --- allowlist: alice is listed, mallory is not; tokens live 3 s ---
    let config =
        format!("[api]\nsecurity = \"allowlist\"\nallow = [\"{alice_pub}\"]\ntoken_ttl = \"3s\"\n");
    let node = start_with_config(&config);
    let other = start_with_config(&config);
    every_route(&node, &routes, None, "allowlist, anonymous", |_, s| {
        s == 401
    });
    every_route(&node, &routes, Some("wrong"), "allowlist, junk", |_, s| {
        s == 403
    });
    let node_secret = std::fs::read_to_string(node.data.path().join("api-secret")).ok();
    assert!(node_secret.is_none(), "no shared secret in allowlist mode");

    // unlisted key: a valid signature, refused
    let (s, e) = login(&node, &login_body(&node, &mallory, now_ms()));
    assert_eq!(s, 403, "{e}");
    // bad signature (alice's key, mallory's signature)
    let mut forged = login_body(&node, &mallory, now_ms());
    forged["public_key"] = json!(alice_pub);
    assert_eq!(login(&node, &forged).0, 403);
    // skew: signed ten minutes ago
    assert_eq!(
        login(&node, &login_body(&node, &alice, now_ms() - 600_000)).0,
        401
    );
    // malformed
    assert_eq!(login(&node, &json!({"public_key": "x"})).0, 400);
    // the right login, then its replay
    let body = login_body(&node, &alice, now_ms());
    // M6: a login names its node: the same allowlist elsewhere refuses it
    assert_eq!(
        login(&other, &body).0,
        403,
        "a login signed for another node is refused"
    );
    let (s, v) = login(&node, &body);
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(login(&node, &body).0, 403, "a replayed login is refused");
    // a listed user is a user, not the operator: the administrator's routes refuse her;
    // CIDs she may not read (the v1 upload may not be imported yet) too
    every_route(
        &node,
        &routes,
        Some(&token),
        "allowlist, alice",
        |path, s| {
            if let Some(v0) = path.strip_prefix("/api/v0") {
                match cairn_api::gate::needs(v0) {
                    cairn_api::gate::Needs::Admin => s == 403,
                    _ => served(path, s),
                }
            } else if path.starts_with("/api/v1/files/") || path.starts_with("/api/v1/check/") {
                served(path, s) || s == 403
            } else if v1_admin(path) {
                s == 403
            } else {
                served(path, s)
            }
        },
    );

    // a tampered token, and a token of another node with the same allowlist
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    every_route(
        &node,
        &routes,
        Some(&tampered),
        "allowlist, tampered",
        |_, s| s == 403,
    );
    let (s, v) = login(&other, &login_body(&other, &alice, now_ms()));
    assert_eq!(s, 200, "{v}");
    let foreign = v["token"].as_str().unwrap();
    every_route(
        &node,
        &routes,
        Some(foreign),
        "allowlist, foreign",
        |_, s| s == 403,
    );

    // the CLI elsewhere: logs in with the key file (and is refused with mallory's)
    let url = format!("http://{}", node.gateway);
    let elsewhere = tempfile::tempdir().unwrap();
    let out = cairn(
        elsewhere.path(),
        &[
            "--node",
            &url,
            "--identity",
            alice_file.to_str().unwrap(),
            "bucket",
            "create",
            "remote-made",
        ],
    );
    assert!(ok(&out).contains("created bucket remote-made"));
    let out = cairn(
        elsewhere.path(),
        &[
            "--node",
            &url,
            "--identity",
            mallory_file.to_str().unwrap(),
            "bucket",
            "list",
        ],
    );
    assert!(!out.status.success());
    let out = cairn(
        elsewhere.path(),
        &[
            "--node",
            &url,
            "--identity",
            alice_file.to_str().unwrap(),
            "bucket",
            "list",
        ],
    );
    assert!(ok(&out).contains("remote-made"));

    // expiry
    std::thread::sleep(Duration::from_millis(3500));
    every_route(
        &node,
        &routes,
        Some(&token),
        "allowlist, expired",
        |_, s| s == 401,
    );
    // M6: the replay memory survives a restart
    let node = Server::start_in(node.kill_9());
    assert_eq!(
        login(&node, &body).0,
        403,
        "a login replayed after a restart is refused"
    );

    // --- public: anyone on /api/v1; /api/v0 is not served at all ---
    let node = start_with_config("[api]\nsecurity = \"public\"\n");
    let upload = |query: &str, bytes: &'static [u8]| -> String {
        let resp = agent()
            .post(format!("http://{}/api/v1/files{query}", node.gateway))
            .send(bytes)
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let job: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
        let resp = agent()
            .get(format!(
                "http://{}/api/v1/jobs/{}?wait=true",
                node.gateway,
                job["job_id"].as_str().unwrap()
            ))
            .call()
            .unwrap();
        let done: Value =
            serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
        done["cid"].as_str().unwrap().to_owned()
    };
    // an upload is not published unless asked: not by /api/v1/files, nor by the gateway
    let private = upload("", b"not for everyone");
    for path in [
        format!("/api/v1/files/{private}"),
        format!("/ipfs/{private}"),
    ] {
        let s = status(&node.gateway, "GET", &path, None);
        assert!(s == 403 || s == 404, "{path}: {s}");
    }
    assert_eq!(upload("?public=true", b"hello"), cid);
    // anyone, but not as the operator: the administrator's routes refuse
    every_route(
        &node,
        &v1_routes(&cid),
        None,
        "public, anonymous",
        |path, s| {
            if v1_admin(path) {
                s == 403
            } else {
                served(path, s)
            }
        },
    );
    every_route(&node, &v0_routes(), None, "public, /api/v0", |_, s| {
        s == 404 || s == 405
    });
    let out = cairn(
        elsewhere.path(),
        &[
            "--node",
            &format!("http://{}", node.gateway),
            "bucket",
            "list",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("public mode"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_cli_works_against_a_node_elsewhere_with_its_secret() {
    let node = Server::start();
    let secret = std::fs::read_to_string(node.data.path().join("api-secret"))
        .unwrap()
        .trim()
        .to_owned();
    let url = format!("http://{}", node.gateway);
    let here = tempfile::tempdir().unwrap();
    let file = here.path().join("hello.txt");
    std::fs::write(&file, b"hello from elsewhere\n").unwrap();
    let remote = |args: &[&str]| {
        let mut all = vec!["--node", url.as_str(), "--token", secret.as_str()];
        all.extend_from_slice(args);
        cairn(here.path(), &all)
    };
    let cid = ok(&remote(&["add", "-q", file.to_str().unwrap()]))
        .trim()
        .to_owned();
    assert_eq!(cid, common::cairn_add_cid(&file));
    assert_eq!(
        ok(&remote(&["cat", &cid])),
        "hello from elsewhere\n",
        "read back through the remote node"
    );
    // It is the node's store that holds it: the local folder got no store.
    assert_eq!(std::fs::read_dir(here.path()).unwrap().count(), 1);
    // The wrong secret is refused with a clear error.
    let out = cairn(
        here.path(),
        &["--node", &url, "--token", "nope", "cat", &cid],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rows of the table after `marker` in `docs/security.md`, as cells (header and rule
/// lines skipped).
fn doc_table(marker: &str) -> Vec<Vec<String>> {
    let doc = include_str!("../../../docs/security.md");
    let start = doc
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not found"));
    doc[start + marker.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

/// Issue 17: every `/api/v0` and `/api/v1` route × role, from the two tables in
/// `docs/security.md`. The first maps each route to the kind of permission it needs — checked
/// against the router's own list and `cairn_api::gate::needs`, so a route cannot be added
/// without a row; the second says, per kind, which callers get through — checked with a
/// representative request per kind, made by root, the owner, another user and an anonymous
/// caller against a running allowlist-mode node.
#[test]
fn api_route_and_role_matrix() {
    // --- route → needs, against the code ---
    let documented: std::collections::BTreeMap<String, String> =
        doc_table("<!-- matrix:api-routes -->")
            .into_iter()
            .map(|row| (row[0].clone(), row[1].clone()))
            .collect();
    let served: std::collections::BTreeSet<String> =
        v0_routes().into_iter().map(|(_, path)| path).collect();
    let v0_documented: std::collections::BTreeSet<String> = documented
        .keys()
        .filter(|r| r.starts_with("/api/v0"))
        .cloned()
        .collect();
    assert_eq!(
        served, v0_documented,
        "the /api/v0 routes and the table differ"
    );
    for path in &served {
        assert_eq!(
            format!("{:?}", cairn_api::gate::needs(path)),
            documented[path],
            "{path}: gate::needs and docs/security.md differ"
        );
    }
    for (method, path) in v1_routes("{cid}") {
        let path = path.split('?').next().unwrap().to_owned();
        let path = path
            .replace("nosuchjob", "{id}")
            .replace("nosuchuser", "{user}");
        assert!(
            documented.contains_key(&format!("{method} {path}")),
            "{method} {path} is not in the table"
        );
    }

    // --- needs × role, against a running node ---
    let keys = tempfile::tempdir().unwrap();
    let (alice_file, alice_pub) = user(keys.path(), "alice");
    let (bob_file, bob_pub) = user(keys.path(), "bob");
    let (alice, bob) = (load(&alice_file), load(&bob_file));
    let node = start_with_config(&format!(
        "[api]\nsecurity = \"allowlist\"\nallow = [\"{alice_pub}\", \"{bob_pub}\"]\n"
    ));
    let token_of = |id: &Identity| {
        let (s, v) = login(&node, &login_body(&node, id, now_ms()));
        assert_eq!(s, 200, "{v}");
        v["token"].as_str().unwrap().to_owned()
    };
    let (alice_token, bob_token) = (token_of(&alice), token_of(&bob));
    let api: Value = toml_to_json(&node.data.path().join("api.toml"));
    let local = api["addr"].as_str().unwrap().to_owned();
    let root_token = api["token"].as_str().unwrap().to_owned();
    let gw = node.gateway.clone();
    // alice's bucket and her private upload
    assert_eq!(
        status(
            &gw,
            "POST",
            "/api/v0/bucket/create?arg=alices",
            Some(&alice_token)
        ),
        200
    );
    let resp = agent()
        .post(format!("http://{gw}/api/v1/files"))
        .header("Authorization", format!("Bearer {alice_token}"))
        .send(&b"alice's upload, private"[..])
        .unwrap();
    let job: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
    let resp = agent()
        .get(format!(
            "http://{gw}/api/v1/jobs/{}?wait=true",
            job["job_id"].as_str().unwrap()
        ))
        .header("Authorization", format!("Bearer {alice_token}"))
        .call()
        .unwrap();
    let done: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
    let cid = done["cid"].as_str().unwrap().to_owned();

    // One representative request per kind; `{n}` makes a fresh name per caller.
    let requests = |kind: &str| -> Vec<(&'static str, String)> {
        match kind {
            "Open" => vec![("GET", "/api/v1/pubkey".into())],
            "SignedIn" => vec![("GET", "/api/v0/bucket/list".into())],
            "CreateBucket" => vec![("POST", "/api/v0/bucket/create?arg=made-by-{n}".into())],
            "ReadCid" => vec![
                ("GET", format!("/api/v0/cat?arg={cid}")),
                ("GET", format!("/api/v1/files/{cid}")),
            ],
            "ReadBucket" => vec![("GET", "/api/v0/bucket/history?arg=alices".into())],
            "WriteBucket" => vec![("POST", "/api/v0/bucket/restore?arg=alices".into())],
            "WriteObject" => vec![("POST", "/api/v0/share?arg=alices/no-such-key".into())],
            "Admin" => vec![
                ("GET", "/api/v0/pin/ls".into()),
                ("GET", "/api/v1/ssh/nosuchuser/size".into()),
            ],
            other => panic!("no representative request for {other}"),
        }
    };
    let callers: [(&str, &str, Option<&str>); 4] = [
        ("root", &local, Some(&root_token)),
        ("owner", &gw, Some(&alice_token)),
        ("other", &gw, Some(&bob_token)),
        ("anonymous", &gw, None),
    ];
    let rows = doc_table("<!-- matrix:api-roles -->");
    assert_eq!(rows.len(), 8, "one row per kind");
    let mut cells = 0;
    for row in rows {
        for (column, (who, addr, token)) in callers.iter().enumerate() {
            let want = match row[column + 1].as_str() {
                "✓" => true,
                "✗" => false,
                other => panic!("cell {other:?}"),
            };
            for (method, path) in requests(&row[0]) {
                // The local API serves /api/v0 only: root's /api/v1 is the secret mode's,
                // walked by `every_endpoint_in_every_mode`.
                if *who == "root" && path.starts_with("/api/v1/") && row[0] != "Open" {
                    continue;
                }
                let addr = if path.starts_with("/api/v1/") {
                    &gw
                } else {
                    *addr
                };
                let path = path.replace("{n}", who);
                let s = status(addr, method, &path, *token);
                let through = s != 401 && s != 403;
                assert_eq!(
                    through, want,
                    "{} × {who}: {method} {path} answered {s}",
                    row[0]
                );
                cells += 1;
            }
        }
    }
    assert!(cells >= 30, "{cells} cells");
}

/// A small TOML file (`key = "value"` lines) as JSON.
fn toml_to_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let mut map = serde_json::Map::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            map.insert(k.trim().to_owned(), json!(v.trim().trim_matches('"')));
        }
    }
    Value::Object(map)
}
