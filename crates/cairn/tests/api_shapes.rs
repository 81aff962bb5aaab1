//! The JSON shapes of `/api/v0` as they are today, kept in `tests/golden/api-v0.json`: for
//! each route the CLI uses, the keys its answer has and the kind of each value. Issue 19 turns
//! the API's `json!` answers into typed structs; a CLI from before must keep working against a
//! node from after (`cairn --node`), so the typed answers must have these shapes. A change of
//! a shape fails here; an intended one is recorded with `CAIRN_BLESS=1`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::Server;
use serde_json::{Value, json};

/// A value's shape: objects keep their keys, arrays the shape of their first element,
/// everything else its kind.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => json!([items.first().map(shape).unwrap_or(json!("empty"))]),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_keeps_its_json_shape() {
    let node = Server::start();
    let s3 = node.client();
    s3.create_bucket().bucket("shapes").send().await.unwrap();
    s3.put_object()
        .bucket("shapes")
        .key("dir/hello.txt")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    let api: toml::Table =
        toml::from_str(&std::fs::read_to_string(node.data.path().join("api.toml")).unwrap())
            .unwrap();
    let base = format!("http://{}", api["addr"].as_str().unwrap());
    let token = api["token"].as_str().unwrap().to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let call = |method: &str, path: &str, body: &[u8]| -> (u16, Value) {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header("Authorization", format!("Bearer {token}"))
            .body(body.to_vec())
            .unwrap();
        let resp = agent
            .run(req)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    };

    let (_, added) = call("POST", "/api/v0/add?cid_version=1", b"shapes of things");
    let cid = added["cid"].as_str().unwrap().to_owned();
    // the bucket's root: a directory
    let root = loop {
        let (status, v) = call("GET", "/api/v0/bucket/root?arg=shapes", b"");
        if status == 200 {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let tree = root["root"].as_str().unwrap().to_owned();
    let (_, key) = call("POST", "/api/v0/key/create?user=alice", b"");
    let access = key["access_key"].as_str().unwrap_or_default().to_owned();

    // (`/api/v0/workers` is left out: which jobs have reported by now is a matter of timing.)
    let routes: Vec<(&str, String)> = vec![
        ("GET", "/api/v0/id".into()),
        ("POST", "/api/v0/add?cid_version=1".into()),
        ("GET", format!("/api/v0/ls?arg={tree}")),
        ("GET", format!("/api/v0/stat?arg={cid}")),
        ("GET", format!("/api/v0/check?arg={cid}&hard=true")),
        ("POST", format!("/api/v0/pin/add?arg={cid}")),
        ("GET", "/api/v0/pin/ls".into()),
        ("POST", format!("/api/v0/pin/rm?arg={cid}")),
        ("POST", "/api/v0/scrub".into()),
        ("GET", "/api/v0/repo/stat".into()),
        ("GET", "/api/v0/key/list".into()),
        ("GET", "/api/v0/bucket/list".into()),
        ("GET", "/api/v0/bucket/root?arg=shapes".into()),
        ("GET", "/api/v0/bucket/history?arg=shapes".into()),
        (
            "POST",
            "/api/v0/bucket/set-public?arg=shapes&public=true".into(),
        ),
        ("GET", "/api/v0/bucket/encryption?arg=shapes".into()),
        ("GET", "/api/v0/snapshot/ls".into()),
        ("GET", "/api/v0/swarm/peers".into()),
        ("GET", "/api/v0/user".into()),
        ("POST", format!("/api/v0/key/delete?arg={access}")),
        ("POST", "/api/v0/gc".into()),
        // errors: one body shape for every refusal
        ("GET", "/api/v0/bucket/root?arg=no-such-bucket".into()),
        ("GET", "/api/v0/cat".into()),
    ];
    let mut shapes = BTreeMap::new();
    shapes.insert("POST /api/v0/key/create?user=alice".to_owned(), shape(&key));
    for (method, path) in &routes {
        let (status, v) = call(method, path, b"shapes of things");
        // the variable part of a path is not part of its name
        let name = format!("{method} {path}")
            .replace(&cid, "CID")
            .replace(&tree, "TREE")
            .replace(&access, "ACCESS");
        shapes.insert(name, json!({ "status": status, "shape": shape(&v) }));
    }
    let got = serde_json::to_string_pretty(&shapes).unwrap() + "\n";
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/api-v0.json");
    if std::env::var_os("CAIRN_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .expect("tests/golden/api-v0.json (CAIRN_BLESS=1 writes it)");
    assert!(
        got == want,
        "/api/v0 answers changed shape (CAIRN_BLESS=1 records an intended change):\n{}",
        diff(&want, &got)
    );
}

/// The lines that differ, `-` wanted, `+` got.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (
            w.get(i).copied().unwrap_or(""),
            g.get(i).copied().unwrap_or(""),
        );
        if a != b {
            out.push_str(&format!("line {}: - {a}\n         + {b}\n", i + 1));
        }
    }
    out
}
