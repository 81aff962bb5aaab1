//! The local API of a running node: what the `cairn` CLI talks to while `serve` holds the data
//! folder (the way `ipfs` talks to its daemon). On its loopback listener every request carries the token
//! that `serve` writes (0600) next to the API address in the data folder. Paths are under
//! `/api/v0`; errors are JSON `{"error": "..."}` with a 4xx/5xx status.

#![warn(missing_docs)]

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use cairn_node::{CidVersion, ErrorKind, Node, NodeError, parse_path};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

pub mod backup;
pub mod buckets;
pub mod gate;
pub mod network;
mod private;

/// The file in the data folder that says where the API listens and its token.
pub const API_FILE: &str = "api.toml";

#[derive(Clone)]
struct AppState {
    node: Node,
    net: Option<network::SharedNetwork>,
}

/// The API's routes over `node` (and its network, when it runs one), requiring `token`.
pub fn router(node: Node, token: String, net: Option<network::SharedNetwork>) -> Router {
    let token = std::sync::Arc::new(token);
    routes(node, net).layer(middleware::from_fn_with_state(token, auth))
}

/// The API's routes behind the node's authorization ([`gate`]); the caller puts its own
/// authentication in front, which names the [`cairn_node::access::Caller`] (the local
/// listener's token in [`router`]; the gateway listener's security mode for a remote CLI).
pub fn routes(node: Node, net: Option<network::SharedNetwork>) -> Router {
    let gatekeeper = node.clone();
    let state = AppState { node, net };
    Router::new()
        .route("/api/v0/id", get(id))
        .route("/api/v0/swarm/peers", get(swarm_peers))
        .route("/api/v0/swarm/connect", post(swarm_connect))
        .route("/api/v0/routing/findprovs", get(find_providers))
        .route("/api/v0/add", post(add))
        .route("/api/v0/cat", get(cat))
        .route("/api/v0/ls", get(ls))
        .route("/api/v0/gc", post(gc))
        .route("/api/v0/scrub", post(scrub))
        .route("/api/v0/pin/ls", get(pin_ls))
        .route("/api/v0/pin/add", post(pin_add))
        .route("/api/v0/pin/rm", post(pin_rm))
        .route("/api/v0/check", get(check))
        .route("/api/v0/stat", get(stat))
        .route("/api/v0/tree", post(backup::tree))
        .route("/api/v0/add/many", post(backup::add_many))
        .route("/api/v0/snapshot/add", post(backup::snapshot_add))
        .route("/api/v0/snapshot/ls", get(backup::snapshot_ls))
        .route("/api/v0/snapshot/rm", post(backup::snapshot_rm))
        .route("/api/v0/repo/stat", get(backup::repo_stat))
        .route("/api/v0/car/export", get(car_export))
        .route("/api/v0/car/import", post(car_import))
        .route("/api/v0/key/create", post(key_create))
        .route("/api/v0/key/list", get(key_list))
        .route("/api/v0/key/delete", post(key_delete))
        .route("/api/v0/bucket/list", get(bucket_list))
        .route("/api/v0/bucket/set-public", post(bucket_set_public))
        .route("/api/v0/bucket/root", get(buckets::root))
        .route("/api/v0/bucket/history", get(buckets::history))
        .route("/api/v0/bucket/restore", post(buckets::restore))
        .route("/api/v0/bucket/head", get(buckets::head))
        .route("/api/v0/bucket/promote", post(buckets::promote))
        .route(
            "/api/v0/bucket/redundancy",
            get(buckets::redundancy).post(buckets::redundancy),
        )
        .route("/api/v0/bucket/import", post(buckets::import))
        .route("/api/v0/bucket/create", post(private::create))
        .route(
            "/api/v0/bucket/encryption",
            get(private::encryption).post(private::encryption),
        )
        .route("/api/v0/share", post(private::share))
        .route("/api/v0/user", get(private::user))
        .route("/api/v0/workers", get(workers))
        .route("/api/v0/cluster/check", post(cluster_check))
        .route("/api/v0/cluster/margins", get(cluster_margins))
        .with_state(state)
        .layer(middleware::from_fn_with_state(gatekeeper, gate::gate))
}

async fn auth(State(token): State<std::sync::Arc<String>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()));
    if ok {
        // The local API's token is the operator's.
        let mut req = req;
        req.extensions_mut()
            .insert(cairn_node::access::Caller::Root);
        next.run(req).await
    } else {
        fail(StatusCode::UNAUTHORIZED, "missing or wrong API token").into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An API failure: a status and a message, answered as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        ApiError(status_of(e.kind()), e.to_string())
    }
}

/// The API's answer to each kind of node failure: [`ErrorKind::rest_status`], the table both
/// REST APIs share.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.rest_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn fail(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
    ApiError(status, message.to_string())
}

type ApiResult = Result<Response, ApiError>;
type Params = Query<HashMap<String, String>>;

fn arg<'a>(q: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    q.get(name)
        .map(String::as_str)
        .ok_or_else(|| fail(StatusCode::BAD_REQUEST, format!("missing ?{name}=")))
}

/// `?cid_version=0|1` (0 when absent).
fn cid_version(q: &HashMap<String, String>) -> Result<CidVersion, ApiError> {
    let v = q.get("cid_version").map(String::as_str).unwrap_or("0");
    v.parse::<u8>()
        .ok()
        .and_then(|n| CidVersion::try_from(n).ok())
        .ok_or_else(|| fail(StatusCode::BAD_REQUEST, format!("cid_version {v}")))
}

/// `?pin=true|false` (true unless `false`).
fn pin(q: &HashMap<String, String>) -> bool {
    q.get("pin").map(String::as_str) != Some("false")
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))??)
}

async fn id(State(s): State<AppState>) -> ApiResult {
    let (peer_id, addrs) = match &s.net {
        Some(net) => (Some(net.peer_id()), net.addrs().await.map_err(net_error)?),
        None => (None, Vec::new()),
    };
    Ok(Json(json!({
        "data": s.node.data_dir().display().to_string(),
        "peer_id": peer_id,
        "addrs": addrs,
    }))
    .into_response())
}

/// A network failure's answer: a malformed input 400, an unreachable peer 502, a network
/// that does not answer 503.
fn net_error(e: network::NetworkError) -> ApiError {
    let status = match &e {
        network::NetworkError::Invalid(_) => StatusCode::BAD_REQUEST,
        network::NetworkError::Unreachable(_) => StatusCode::BAD_GATEWAY,
        network::NetworkError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    fail(status, e)
}

fn net(s: &AppState) -> Result<&network::SharedNetwork, ApiError> {
    s.net
        .as_ref()
        .ok_or_else(|| fail(StatusCode::SERVICE_UNAVAILABLE, "this node runs no network"))
}

/// `GET /api/v0/swarm/peers` — connected peers.
async fn swarm_peers(State(s): State<AppState>) -> ApiResult {
    let peers = net(&s)?.peers().await.map_err(net_error)?;
    let list: Vec<_> = peers
        .iter()
        .map(|p| {
            json!({ "peer_id": p.peer_id, "addr": p.addr, "agent": p.agent, "member": p.member })
        })
        .collect();
    Ok(Json(list).into_response())
}

/// `POST /api/v0/swarm/connect?arg=MULTIADDR` — dial a peer.
async fn swarm_connect(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let addr = arg(&q, "arg")?;
    let peer = net(&s)?.dial(addr.to_owned()).await.map_err(net_error)?;
    Ok(Json(json!({ "peer_id": peer })).into_response())
}

/// `GET /api/v0/routing/findprovs?arg=CID` — peers that announced they provide `CID`.
async fn find_providers(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let text = arg(&q, "arg")?;
    let cid = cairn_dag::Cid::try_from(text).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            format!("invalid CID {text:?}: {e}"),
        )
    })?;
    let list = net(&s)?.find_providers(cid).await.map_err(net_error)?;
    Ok(Json(list).into_response())
}

/// `GET /api/v0/workers` — every background job's last run.
async fn workers(State(s): State<AppState>) -> ApiResult {
    let list: Vec<serde_json::Value> = s
        .node
        .workers()
        .snapshot()
        .into_iter()
        .map(|(name, status)| json!({ "name": name, "status": status }))
        .collect();
    Ok(Json(list).into_response())
}

/// `GET /api/v0/cluster/margins?[bucket=B[&key=K|&prefix=P]]&hard=BOOL` — objects by margin
/// (how many more node losses each survives): one object, a bucket, or every bucket.
async fn cluster_margins(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let hard = q.get("hard").is_some_and(|h| h == "true");
    let node = s.node.clone();
    let v = blocking(move || {
        let prefix = q.get("prefix").map_or("", String::as_str);
        match (q.get("bucket"), q.get("key")) {
            (Some(bucket), Some(key)) => {
                let object = node.object(bucket, key)?;
                let mut one = cairn_node::check::BucketMargins::default();
                one.add(key, &node.margins(bucket, &object.cid, hard)?);
                Ok(one)
            }
            (Some(bucket), None) => node.bucket_margins(bucket, prefix, hard),
            (None, _) => node.all_margins(hard),
        }
    })
    .await?;
    Ok(Json(v).into_response())
}

/// `POST /api/v0/scrub` — re-hash every block file now; failing ones are quarantined.
async fn scrub(State(s): State<AppState>) -> ApiResult {
    let node = s.node.clone();
    let page = blocking(move || node.scrub_all()).await?;
    Ok(Json(json!({
        "checked": page.checked,
        "bytes": page.bytes,
        "corrupt": page.corrupt.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `POST /api/v0/cluster/check?mode=soft|hard|repair` — one full pass over the stripes and
/// replicas this node holds (the units it leads are counted); `repair` first frees the units
/// whose owners no longer reference them (piece GC, as the repair job does).
async fn cluster_check(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    use cairn_node::repo::RepairMode as Mode;
    let mode = match q.get("mode").map(String::as_str).unwrap_or("soft") {
        "soft" => Mode::Soft,
        "hard" => Mode::Hard,
        "repair" => Mode::Repair,
        other => return Err(fail(StatusCode::BAD_REQUEST, format!("mode {other:?}"))),
    };
    Ok(Json(s.node.cluster_check(mode).await?).into_response())
}

/// `POST /api/v0/add?cid_version=0|1&pin=true|false` — the body is the file.
async fn add(State(s): State<AppState>, Query(q): Params, body: Body) -> ApiResult {
    let (version, pin) = (cid_version(&q)?, pin(&q));
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let link = s.node.add_stream(Box::pin(stream), version, pin).await?;
    Ok(Json(json!({
        "cid": link.cid.to_string(),
        "size": link.file_size,
        "dag_size": link.dag_size,
    }))
    .into_response())
}

/// The CID `?arg=CID[/path]` names (walking the path reads blocks: off the async workers).
async fn resolve(node: &Node, q: &HashMap<String, String>) -> Result<cairn_dag::Cid, ApiError> {
    let (root, rest) = parse_path(arg(q, "arg")?)?;
    let node = node.clone();
    blocking(move || node.resolve(root, &rest)).await
}

/// `GET /api/v0/cat?arg=CID[/path]&offset=N&length=N` — streams the file.
async fn cat(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let cid = resolve(&s.node, &q).await?;
    let num = |name: &str| q.get(name).and_then(|v| v.parse::<u64>().ok());
    let range = match (num("offset"), num("length")) {
        (None, None) => None,
        (o, l) => {
            let start = o.unwrap_or(0);
            Some(start..l.map_or(u64::MAX, |l| start.saturating_add(l)))
        }
    };
    // Check the root first so a bad CID is a clean error, not a broken stream.
    let node = s.node.clone();
    blocking(move || node.describe(&cid)).await?;
    Ok(Body::from_stream(s.node.cat_stream(cid, range)).into_response())
}

/// `GET /api/v0/ls?arg=CID[/path]` — the entries (see [`backup::entry_json`]).
async fn ls(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let cid = resolve(&s.node, &q).await?;
    let node = s.node.clone();
    let entries: Vec<_> = blocking(move || node.ls_detailed(&cid))
        .await?
        .iter()
        .map(backup::entry_json)
        .collect();
    Ok(Json(entries).into_response())
}

async fn key_create(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let user = arg(&q, "user")?.to_owned();
    let node = s.node.clone();
    let (access, secret) = blocking(move || node.create_key(&user)).await?;
    Ok(Json(json!({ "access_key": access, "secret_key": secret })).into_response())
}

async fn key_list(State(s): State<AppState>) -> ApiResult {
    let keys: Vec<_> = s
        .node
        .keys()?
        .into_iter()
        .map(|(a, r)| json!({ "access_key": a, "user": r.user }))
        .collect();
    Ok(Json(keys).into_response())
}

async fn key_delete(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let access = arg(&q, "arg")?.to_owned();
    let node = s.node.clone();
    if blocking(move || node.delete_key(&access)).await? {
        Ok(Json(json!({ "deleted": true })).into_response())
    } else {
        Err(fail(StatusCode::NOT_FOUND, "no such access key"))
    }
}

async fn bucket_list(
    State(s): State<AppState>,
    axum::Extension(caller): axum::Extension<cairn_node::access::Caller>,
) -> ApiResult {
    let buckets: Vec<_> = s
        .node
        .buckets()?
        .into_iter()
        // root sees every bucket, a user its own
        .filter(|(_, r)| {
            caller == cairn_node::access::Caller::Root
                || cairn_node::access::local_owner(r) == caller.name()
        })
        .map(|(n, r)| json!({ "name": n, "owner": r.owner, "public": r.is_public() }))
        .collect();
    Ok(Json(buckets).into_response())
}

async fn bucket_set_public(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let public = q.get("off").map(String::as_str) != Some("true");
    let node = s.node.clone();
    let rec = blocking(move || node.set_public(&bucket, public)).await?;
    Ok(Json(json!({ "public": rec.is_public() })).into_response())
}

/// `POST /api/v0/gc` — collects garbage now.
async fn gc(State(s): State<AppState>) -> ApiResult {
    let node = s.node.clone();
    let st = blocking(move || node.collect_garbage()).await?;
    Ok(Json(json!({
        "removed": st.removed, "freed_bytes": st.freed_bytes, "kept": st.kept, "missing": st.missing
    }))
    .into_response())
}

async fn pin_ls(State(s): State<AppState>) -> ApiResult {
    let pins: Vec<_> = s
        .node
        .pins()?
        .into_iter()
        .map(|(cid, count)| json!({ "cid": cid.to_string(), "count": count }))
        .collect();
    Ok(Json(pins).into_response())
}

async fn pin_add(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let cid = resolve(&s.node, &q).await?;
    let node = s.node.clone();
    blocking(move || node.pin(&cid)).await?;
    Ok(Json(json!({ "cid": cid.to_string() })).into_response())
}

async fn pin_rm(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let cid = resolve(&s.node, &q).await?;
    let node = s.node.clone();
    if blocking(move || node.unpin(&cid)).await? {
        Ok(Json(json!({ "cid": cid.to_string() })).into_response())
    } else {
        Err(fail(StatusCode::NOT_FOUND, format!("{cid} is not pinned")))
    }
}

/// `GET /api/v0/check?arg=CID&hard=true|false` — a check report.
async fn check(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let cid = resolve(&s.node, &q).await?;
    let hard = q.get("hard").map(String::as_str) == Some("true");
    let node = s.node.clone();
    let r = blocking(move || node.check(&cid, hard)).await?;
    let cids = |v: &[cairn_dag::Cid]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    Ok(Json(json!({
        "cid": cid.to_string(),
        "blocks": r.blocks,
        "bytes_read": r.bytes_read,
        "missing": cids(&r.missing),
        "corrupt": cids(&r.corrupt),
        "bad_files": r.bad_files.iter().map(|(c, why)| json!([c.to_string(), why])).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// `GET /api/v0/stat?arg=CID[/path]` — what the node is: `file` (with size), `dir`,
/// `symlink` (with target) or `other`, with its `mode`/`mtime` when it has them.
async fn stat(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let cid = resolve(&s.node, &q).await?;
    let node = s.node.clone();
    let v = blocking(move || {
        let (kind, meta, target) = node.stat_detailed(&cid)?;
        Ok(backup::stat_json(&cid, &kind, &meta, target.as_deref()))
    })
    .await?;
    Ok(Json(v).into_response())
}

/// `GET /api/v0/car/export?arg=CID[/path]` — the DAG as a CARv1 stream.
async fn car_export(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let cid = resolve(&s.node, &q).await?;
    s.node.block(&cid)?; // a clean 404 before streaming
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let node = s.node.clone();
    let export = tokio::spawn(async move { node.car_export(cid, writer).await });
    // After the last byte, the export's outcome: a failure ends the body with an error, so the
    // response is cut off (no final chunk) and the client cannot take a short CAR for a whole one.
    let outcome = futures::stream::once(async move {
        let failure = match export.await {
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%cid, "CAR export failed: {failure}");
        Some(Err(std::io::Error::other(failure)))
    })
    .filter_map(std::future::ready);
    let body = tokio_util::io::ReaderStream::new(reader).chain(outcome);
    Ok(Body::from_stream(body).into_response())
}

/// `POST /api/v0/car/import?pin=true|false` — the body is a CARv1 file; every block is
/// verified and a bad one rejects the whole import.
async fn car_import(State(s): State<AppState>, Query(q): Params, body: Body) -> ApiResult {
    let pin = pin(&q);
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let r = s.node.car_import(Box::pin(reader), pin).await?;
    let cids = |v: &[cairn_dag::Cid]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    Ok(Json(json!({
        "roots": cids(&r.roots),
        "blocks": r.blocks,
        "pinned": cids(&r.pinned),
        "incomplete": cids(&r.incomplete),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The API answers from the node's REST table; a name missing from its directory is a
    /// 404, not a 500 (the remote CLI printed "internal error" for a typo).
    #[test]
    fn node_errors_answer_by_kind() {
        assert_eq!(
            status_of(ErrorKind::BadDag),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let cid =
            cairn_dag::Cid::try_from("QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX").unwrap();
        let missing = NodeError::from(cairn_dag::DagError::NotFound {
            parent: cid,
            name: "missing".into(),
        });
        assert_eq!(ApiError::from(missing).0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn query_flags() {
        assert_eq!(cid_version(&q(&[])).unwrap(), CidVersion::V0);
        assert_eq!(
            cid_version(&q(&[("cid_version", "1")])).unwrap(),
            CidVersion::V1
        );
        for bad in ["7", "x", ""] {
            assert!(cid_version(&q(&[("cid_version", bad)])).is_err(), "{bad}");
        }
        assert!(pin(&q(&[])) && pin(&q(&[("pin", "true")])));
        assert!(!pin(&q(&[("pin", "false")])));
    }
}
