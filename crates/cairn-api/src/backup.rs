//! What `cairn backup` and `cairn restore` use besides `/cat`: many files in one request, the
//! tree manifest (with UnixFS 1.5 mode/mtime), named snapshots, and the JSON of `/ls` and
//! `/stat` entries with their metadata.
//!
//! Metadata in JSON: `"mode": 420` (permission bits) and `"mtime": {"secs": 1700000000,
//! "nsecs": 5}`, both optional; absent means none (and, in a manifest, the CIDs `add -r`
//! gives).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use cairn_dag::dir::NodeKind;
use cairn_dag::meta::{UnixMeta, UnixTime};
use cairn_node::SnapshotRow;
use cairn_node::import::StoredItem;
use cairn_node::snapshot::{DetailedEntry, Forget};
use futures::TryStreamExt;
use serde_json::{Map, Value, json};

use crate::{ApiResult, AppState, Params, arg, blocking, cid_version, fail, pin};

/// The largest tree manifest `/tree` reads (about a million entries).
pub const MAX_MANIFEST: usize = 256 << 20;

/// Reads `mode` and `mtime` of a JSON object.
pub fn meta_from_json(v: &Value) -> Result<UnixMeta, String> {
    let mode = match &v["mode"] {
        Value::Null => None,
        m => Some(
            m.as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| format!("mode {m} is not a 32-bit number"))?,
        ),
    };
    let mtime = match &v["mtime"] {
        Value::Null => None,
        t => {
            let secs = t["secs"]
                .as_i64()
                .ok_or_else(|| format!("mtime {t} has no integer secs"))?;
            let nsecs = match &t["nsecs"] {
                Value::Null => 0,
                n => n
                    .as_u64()
                    .filter(|n| *n < 1_000_000_000)
                    .ok_or_else(|| format!("mtime nsecs {n} is not below 10^9"))?
                    as u32,
            };
            Some(UnixTime { secs, nsecs })
        }
    };
    Ok(UnixMeta { mode, mtime })
}

/// Adds `mode` and `mtime` (when set) to a JSON object.
pub fn meta_to_json(meta: &UnixMeta, out: &mut Map<String, Value>) {
    if let Some(mode) = meta.mode {
        out.insert("mode".into(), json!(mode));
    }
    if let Some(t) = meta.mtime {
        out.insert("mtime".into(), json!({ "secs": t.secs, "nsecs": t.nsecs }));
    }
}

fn kind_name(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::File { .. } => "file",
        NodeKind::Directory { .. } => "dir",
        NodeKind::Symlink => "symlink",
        NodeKind::Other => "other",
    }
}

/// `/stat`'s answer: `cid`, `kind` (`file` with `size`, `dir`, `symlink` with `target`,
/// `other`), and `mode`/`mtime` when the node carries them.
pub fn stat_json(
    cid: &cairn_dag::Cid,
    kind: &NodeKind,
    meta: &UnixMeta,
    target: Option<&str>,
) -> Value {
    let mut m = Map::new();
    m.insert("cid".into(), json!(cid.to_string()));
    m.insert("kind".into(), json!(kind_name(kind)));
    if let NodeKind::File { size } = kind {
        m.insert("size".into(), json!(size));
    }
    if let Some(t) = target {
        m.insert("target".into(), json!(t));
    }
    meta_to_json(meta, &mut m);
    Value::Object(m)
}

/// One `/ls` entry: `name`, `cid`, `size`, `dir`, and `kind`, `target`, `mode`, `mtime`.
pub fn entry_json(e: &DetailedEntry) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(e.entry.name));
    m.insert("cid".into(), json!(e.entry.cid.to_string()));
    m.insert("size".into(), json!(e.entry.size));
    m.insert(
        "dir".into(),
        json!(matches!(e.entry.kind, NodeKind::Directory { .. })),
    );
    m.insert("kind".into(), json!(kind_name(&e.entry.kind)));
    if let Some(t) = &e.target {
        m.insert("target".into(), json!(t));
    }
    meta_to_json(&e.meta, &mut m);
    Value::Object(m)
}

fn snapshot_json(row: &SnapshotRow) -> Value {
    json!({ "name": row.name, "time_ms": row.time_ms, "cid": row.cid.to_string() })
}

/// `POST /api/v0/add/many?cid_version=0|1` — many files in one body and one commit (framing:
/// `cairn_node::snapshot`); answers `[{"cid", "size", "dag_size"}]` in order. Not pinned: a
/// `/tree` with `snapshot=` (or a pin) keeps them.
pub(crate) async fn add_many(State(s): State<AppState>, Query(q): Params, body: Body) -> ApiResult {
    let version = cid_version(&q)?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let links = s.node.add_many(Box::pin(stream), version).await?;
    Ok(Json(
        links
            .iter()
            .map(|l| json!({ "cid": l.cid.to_string(), "size": l.file_size, "dag_size": l.dag_size }))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

/// `POST /api/v0/tree?cid_version=0|1&pin=true|false[&snapshot=NAME]` with JSON
/// `{"root": "name", "mode": .., "mtime": .., "entries": [{"path": "name/a", "kind":
/// "dir"|"file"|"symlink", "cid": .., "dag_size": .., "target": .., "mode": .., "mtime":
/// ..}]}`: builds the folders of a tree whose files were uploaded with `/add` or `/add/many`
/// (`cairn add -r`, `cairn backup`), with the metadata given (file roots, directories,
/// symlinks; the top-level `mode`/`mtime` are the root folder's). With `snapshot`, the root
/// is recorded as that snapshot in the same commit. Answers the folders, root last — or, with
/// `snapshot`, `{"folders": [...], "snapshot": {"name", "time_ms", "cid"}}`.
pub(crate) async fn tree(State(s): State<AppState>, Query(q): Params, body: Body) -> ApiResult {
    let bad = |m: &str| fail(StatusCode::BAD_REQUEST, m);
    let (version, pin) = (cid_version(&q)?, pin(&q));
    let snapshot = q.get("snapshot").cloned();
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|e| fail(StatusCode::PAYLOAD_TOO_LARGE, format!("tree manifest: {e}")))?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("tree manifest: {e}")))?;
    drop(bytes);
    let root = body["root"]
        .as_str()
        .ok_or_else(|| bad("missing root"))?
        .to_owned();
    let root_meta = meta_from_json(&body).map_err(|e| bad(&e))?;
    let mut entries = Vec::new();
    for e in body["entries"].as_array().into_iter().flatten() {
        let path = e["path"]
            .as_str()
            .ok_or_else(|| bad("entry without path"))?
            .to_owned();
        let item = match e["kind"].as_str() {
            Some("dir") => StoredItem::Dir,
            Some("file") => StoredItem::File {
                cid: e["cid"]
                    .as_str()
                    .and_then(|c| cairn_dag::Cid::try_from(c).ok())
                    .ok_or_else(|| bad("file entry without a valid cid"))?,
                dag_size: e["dag_size"]
                    .as_u64()
                    .ok_or_else(|| bad("file entry without dag_size"))?,
            },
            Some("symlink") => StoredItem::Symlink(
                e["target"]
                    .as_str()
                    .ok_or_else(|| bad("symlink entry without target"))?
                    .to_owned(),
            ),
            _ => return Err(bad("entry kind must be dir, file or symlink")),
        };
        let meta = meta_from_json(e).map_err(|m| bad(&format!("{path}: {m}")))?;
        entries.push((path, item, meta));
    }
    drop(body);
    let node = s.node.clone();
    let name = snapshot.clone();
    let (added, row) = blocking(move || {
        node.build_tree_with_meta(&root, &root_meta, &entries, version, pin, name.as_deref())
    })
    .await?;
    let folders: Vec<Value> = added
        .into_iter()
        .map(|a| json!({ "path": a.path, "cid": a.cid.to_string(), "size": a.size }))
        .collect();
    Ok(match row {
        Some(row) => Json(json!({ "folders": folders, "snapshot": snapshot_json(&row) })),
        None => Json(Value::Array(folders)),
    }
    .into_response())
}

/// `POST /api/v0/snapshot/add?name=NAME&arg=CID[/path]` — records the (complete) DAG as a new
/// snapshot of `NAME`, kept by GC until it is removed.
pub(crate) async fn snapshot_add(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let name = arg(&q, "name")?.to_owned();
    let cid = crate::resolve(&s.node, &q).await?;
    let node = s.node.clone();
    let row = blocking(move || node.add_snapshot(&name, &cid)).await?;
    Ok(Json(snapshot_json(&row)).into_response())
}

/// `GET /api/v0/snapshot/ls[?name=NAME]` — snapshots by name, oldest first:
/// `[{"name", "time_ms", "cid"}]`.
pub(crate) async fn snapshot_ls(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let name = q.get("name").cloned();
    let node = s.node.clone();
    let rows = blocking(move || node.snapshots(name.as_deref())).await?;
    Ok(Json(rows.iter().map(snapshot_json).collect::<Vec<_>>()).into_response())
}

/// `POST /api/v0/snapshot/rm?name=NAME&(all=true|arg=CID|keep_last=N)` — forgets snapshots
/// of `NAME` (all, those of one root, or all but the newest N); answers the forgotten ones,
/// `[{"name", "time_ms", "cid"}]`. Their blocks go at the next GC.
pub(crate) async fn snapshot_rm(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let name = arg(&q, "name")?.to_owned();
    let which = match (q.get("all"), q.get("arg"), q.get("keep_last")) {
        (Some(all), None, None) if all == "true" => Forget::All,
        (None, Some(cid), None) => Forget::Cid(
            cid.parse()
                .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("arg={cid:?}: {e}")))?,
        ),
        (None, None, Some(n)) => Forget::KeepLast(
            n.parse()
                .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("keep_last={n:?}: {e}")))?,
        ),
        _ => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "say which snapshots: one of all=true, arg=CID or keep_last=N",
            ));
        }
    };
    let node = s.node.clone();
    let rows = blocking(move || node.forget_snapshots(&name, &which)).await?;
    Ok(Json(rows.iter().map(snapshot_json).collect::<Vec<_>>()).into_response())
}

/// `GET /api/v0/repo/stat` — `{"blocks", "bytes"}`: the blocks stored here and their size.
pub(crate) async fn repo_stat(State(s): State<AppState>) -> ApiResult {
    let node = s.node.clone();
    let (blocks, bytes) = blocking(move || node.repo_stats()).await?;
    Ok(Json(json!({ "blocks": blocks, "bytes": bytes })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_json_round_trips_and_refuses_nonsense() {
        let m = UnixMeta {
            mode: Some(0o4755),
            mtime: Some(UnixTime {
                secs: -3,
                nsecs: 999_999_999,
            }),
        };
        let mut map = Map::new();
        meta_to_json(&m, &mut map);
        assert_eq!(meta_from_json(&Value::Object(map)).unwrap(), m);
        assert!(meta_from_json(&json!({})).unwrap().is_empty());
        assert_eq!(
            meta_from_json(&json!({"mtime": {"secs": 5}}))
                .unwrap()
                .mtime,
            Some(UnixTime { secs: 5, nsecs: 0 })
        );
        for bad in [
            json!({"mode": -1}),
            json!({"mode": 1u64 << 40}),
            json!({"mode": "644"}),
            json!({"mtime": {"nsecs": 1}}),
            json!({"mtime": {"secs": 1, "nsecs": 1_000_000_000}}),
        ] {
            assert!(meta_from_json(&bad).is_err(), "{bad}");
        }
    }
}
