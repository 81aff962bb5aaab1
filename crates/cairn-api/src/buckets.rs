//! Bucket roots over the API: current root, history, restore, signed head, import from CAR,
//! and the bucket's own redundancy policy.
//! The JSON shapes are built here once, for the API and for the CLI working offline.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Json};
use cairn_node::RootRow;
use cairn_node::{Node, NodeError};
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::{ApiResult, AppState, Params, arg, blocking};

fn row_json(bucket: &str, row: &RootRow) -> Value {
    json!({
        "bucket": bucket,
        "seq": row.seq,
        "time_ms": row.time_ms,
        "root": row.tree.to_string(),
        "record": row.record.to_string(),
    })
}

/// The bucket's current root (after folding in queued changes).
pub fn root_value(node: &Node, bucket: &str) -> Result<Value, NodeError> {
    Ok(row_json(bucket, &node.bucket_root(bucket)?))
}

/// The bucket's retained roots, oldest first.
pub fn history_value(node: &Node, bucket: &str) -> Result<Value, NodeError> {
    let rows = node.bucket_history(bucket)?;
    Ok(Value::Array(
        rows.iter().map(|r| row_json(bucket, r)).collect(),
    ))
}

/// Restores `root` as the bucket's current contents.
pub fn restore_value(node: &Node, bucket: &str, root: &str) -> Result<Value, NodeError> {
    let (cid, _) = cairn_node::parse_path(root)?;
    let done = node.restore_bucket(bucket, &cid)?;
    let now = node.bucket_root(bucket)?;
    Ok(json!({
        "written": done.written,
        "deleted": done.deleted,
        "root": now.tree.to_string(),
        "seq": now.seq,
    }))
}

/// The bucket's redundancy: its own policy if set (with `set`: after setting it, `""` or
/// `"default"` clearing it), and the one its writes get (`effective`; `null` outside a
/// cluster).
pub fn redundancy_value(node: &Node, bucket: &str, set: Option<&str>) -> Result<Value, NodeError> {
    let record = match set {
        Some("" | "default") => node.set_bucket_redundancy(bucket, None)?,
        Some(policy) => node.set_bucket_redundancy(bucket, Some(policy))?,
        None => node.bucket(bucket)?,
    };
    let effective = node.bucket_redundancy(Some(bucket))?;
    Ok(json!({
        "bucket": bucket,
        "redundancy": record.redundancy,
        "effective": effective.map(|p| p.to_string()),
    }))
}

/// `GET /api/v0/bucket/redundancy?arg=B` reads it; `POST …&policy=P` sets it (`default`
/// clears it).
pub(crate) async fn redundancy(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let set = q.get("policy").cloned();
    let node = s.node.clone();
    let v = blocking(move || redundancy_value(&node, &bucket, set.as_deref())).await?;
    Ok(Json(v).into_response())
}

pub(crate) async fn root(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let node = s.node.clone();
    Ok(Json(blocking(move || root_value(&node, &bucket)).await?).into_response())
}

pub(crate) async fn history(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let node = s.node.clone();
    Ok(Json(blocking(move || history_value(&node, &bucket)).await?).into_response())
}

pub(crate) async fn restore(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let (bucket, root) = (arg(&q, "arg")?.to_owned(), arg(&q, "root")?.to_owned());
    let node = s.node.clone();
    Ok(Json(blocking(move || restore_value(&node, &bucket, &root)).await?).into_response())
}

/// `POST /api/v0/bucket/promote?arg=B[&force=true]` — take over a mirrored bucket whose owner
/// is gone; answers `{"seq"}` of the first head signed here.
pub(crate) async fn promote(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let force = q.get("force").is_some_and(|f| f == "true");
    let node = s.node.clone();
    let seq = blocking(move || node.promote(&bucket, force)).await?;
    Ok(Json(json!({ "seq": seq })).into_response())
}

/// `GET /api/v0/bucket/head?arg=B` — the signed head, dag-cbor.
pub(crate) async fn head(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let node = s.node.clone();
    let bytes = blocking(move || node.bucket_head(&bucket)).await?;
    Ok(([(header::CONTENT_TYPE, "application/cbor")], bytes).into_response())
}

/// `POST /api/v0/bucket/import?arg=B` — the body is a CARv1 of a UnixFS directory.
pub(crate) async fn import(State(s): State<AppState>, Query(q): Params, body: Body) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let done = s
        .node
        .import_bucket(&bucket, cairn_node::keys::ROOT_USER, Box::pin(reader))
        .await?;
    Ok(Json(json!({
        "root": done.root.map(|c| c.to_string()),
        "objects": done.objects,
        "skipped": done.skipped,
    }))
    .into_response())
}
