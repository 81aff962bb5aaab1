//! The `/api/v0` handlers: each parses its query (and body), calls one [`crate::ops`] function,
//! and answers its [`crate::types`] value as JSON. Streams (`cat`, `car/export`, the signed
//! head) are answered as bytes.

use std::collections::HashMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use cairn_node::access::Caller;
use cairn_node::snapshot::Forget;
use cairn_node::{CidVersion, Node};
use futures::{StreamExt, TryStreamExt};

use crate::types::*;
use crate::{ApiError, AppState, network, ops};

type Answer<T> = Result<Json<T>, ApiError>;
type Params = Query<HashMap<String, String>>;

/// The largest tree manifest `/tree` reads (about a million entries).
pub const MAX_MANIFEST: usize = 256 << 20;

fn arg<'a>(q: &'a HashMap<String, String>, name: &str) -> Result<&'a str, ApiError> {
    q.get(name)
        .map(String::as_str)
        .ok_or_else(|| ApiError::invalid(format!("missing ?{name}=")))
}

fn owned(q: &HashMap<String, String>, name: &str) -> Result<String, ApiError> {
    arg(q, name).map(str::to_owned)
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v == "true")
}

/// `?cid_version=0|1` (0 when absent).
pub(crate) fn cid_version(q: &HashMap<String, String>) -> Result<CidVersion, ApiError> {
    let v = q.get("cid_version").map(String::as_str).unwrap_or("0");
    v.parse::<u8>()
        .ok()
        .and_then(|n| CidVersion::try_from(n).ok())
        .ok_or_else(|| ApiError::invalid(format!("cid_version {v}")))
}

/// `?pin=true|false` (true unless `false`).
pub(crate) fn pin(q: &HashMap<String, String>) -> bool {
    q.get("pin").map(String::as_str) != Some("false")
}

/// Runs a blocking node operation off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// Runs `f(node)` off the async workers and answers its value as JSON.
async fn with_node<T: Send + 'static>(
    s: &AppState,
    f: impl FnOnce(&Node) -> Result<T, ApiError> + Send + 'static,
) -> Answer<T> {
    let node = s.node.clone();
    blocking(move || f(&node)).await.map(Json)
}

/// The CID `?arg=CID[/path]` names (walking the path reads blocks: off the async workers).
async fn resolve(s: &AppState, q: &HashMap<String, String>) -> Result<cairn_dag::Cid, ApiError> {
    let path = owned(q, "arg")?;
    let node = s.node.clone();
    blocking(move || ops::resolve(&node, &path)).await
}

fn body_stream(
    body: Body,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + Unpin + 'static {
    body.into_data_stream().map_err(std::io::Error::other)
}

fn body_reader(body: Body) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    tokio_util::io::StreamReader::new(body_stream(body))
}

fn net(s: &AppState) -> Result<&network::SharedNetwork, ApiError> {
    s.net
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "this node runs no network"))
}

pub(crate) async fn id(State(s): State<AppState>) -> Answer<Id> {
    let (peer_id, addrs) = match &s.net {
        Some(net) => (Some(net.peer_id()), net.addrs().await?),
        None => (None, Vec::new()),
    };
    Ok(Json(Id {
        data: s.node.repo().data_dir().display().to_string(),
        peer_id,
        addrs,
    }))
}

/// `GET /swarm/peers` — connected peers.
pub(crate) async fn swarm_peers(State(s): State<AppState>) -> Answer<Vec<Peer>> {
    Ok(Json(net(&s)?.peers().await?))
}

/// `POST /swarm/connect?arg=MULTIADDR` — dial a peer.
pub(crate) async fn swarm_connect(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<Connected> {
    let peer_id = net(&s)?.dial(owned(&q, "arg")?).await?;
    Ok(Json(Connected { peer_id }))
}

/// `GET /routing/findprovs?arg=CID` — peers that announced they provide `CID`.
pub(crate) async fn find_providers(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<Vec<String>> {
    let text = arg(&q, "arg")?;
    let cid = cairn_dag::Cid::try_from(text)
        .map_err(|e| ApiError::invalid(format!("invalid CID {text:?}: {e}")))?;
    Ok(Json(net(&s)?.find_providers(cid).await?))
}

/// `GET /workers` — every background job's last run.
pub(crate) async fn workers(State(s): State<AppState>) -> Json<Vec<Worker>> {
    Json(ops::workers(&s.node))
}

/// `GET /cluster/margins?[bucket=B[&key=K|&prefix=P]]&hard=BOOL` — objects by margin (how many
/// more node losses each survives): one object, a bucket, or every bucket.
pub(crate) async fn cluster_margins(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<BucketMargins> {
    with_node(&s, move |node| {
        let prefix = q.get("prefix").map_or("", String::as_str);
        let (bucket, key) = (q.get("bucket"), q.get("key"));
        ops::margins(
            node,
            bucket.map(String::as_str),
            key.map(String::as_str),
            prefix,
            flag(&q, "hard"),
        )
    })
    .await
}

/// `POST /scrub` — re-hash every block file now; failing ones are quarantined.
pub(crate) async fn scrub(State(s): State<AppState>) -> Answer<Scrubbed> {
    with_node(&s, ops::scrub).await
}

/// `POST /cluster/check?mode=soft|hard|repair` — one full pass over the stripes and replicas
/// this node holds (the units it leads are counted); `repair` first frees the units whose
/// owners no longer reference them (piece GC, as the repair job does).
pub(crate) async fn cluster_check(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<ClusterCheck> {
    use cairn_node::replication::RepairMode as Mode;
    let mode = match q.get("mode").map(String::as_str).unwrap_or("soft") {
        "soft" => Mode::Soft,
        "hard" => Mode::Hard,
        "repair" => Mode::Repair,
        other => return Err(ApiError::invalid(format!("mode {other:?}"))),
    };
    Ok(Json(s.node.replication().check(mode).await?))
}

/// `POST /add?cid_version=0|1&pin=true|false` — the body is the file.
pub(crate) async fn add(State(s): State<AppState>, Query(q): Params, body: Body) -> Answer<Added> {
    let (version, pin) = (cid_version(&q)?, pin(&q));
    ops::add(&s.node, body_stream(body), version, pin)
        .await
        .map(Json)
}

/// `GET /cat?arg=CID[/path]&offset=N&length=N` — streams the file.
pub(crate) async fn cat(State(s): State<AppState>, Query(q): Params) -> Result<Response, ApiError> {
    let cid = resolve(&s, &q).await?;
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
    blocking(move || Ok(node.files().describe(&cid)?)).await?;
    Ok(Body::from_stream(s.node.files().cat_stream(cid, range)).into_response())
}

/// `GET /ls?arg=CID[/path]` — the entries.
pub(crate) async fn ls(State(s): State<AppState>, Query(q): Params) -> Answer<Vec<Entry>> {
    let cid = resolve(&s, &q).await?;
    with_node(&s, move |node| ops::ls(node, &cid)).await
}

/// `GET /stat?arg=CID[/path]` — what the node is: `file` (with size), `dir`, `symlink` (with
/// target) or `other`, with its `mode`/`mtime` when it has them.
pub(crate) async fn stat(State(s): State<AppState>, Query(q): Params) -> Answer<Stat> {
    let cid = resolve(&s, &q).await?;
    with_node(&s, move |node| ops::stat(node, &cid)).await
}

/// `GET /check?arg=CID&hard=true|false` — a check report.
pub(crate) async fn check(State(s): State<AppState>, Query(q): Params) -> Answer<Checked> {
    let cid = resolve(&s, &q).await?;
    let hard = flag(&q, "hard");
    with_node(&s, move |node| ops::check(node, &cid, hard)).await
}

pub(crate) async fn key_create(State(s): State<AppState>, Query(q): Params) -> Answer<NewKey> {
    let user = owned(&q, "user")?;
    with_node(&s, move |node| ops::create_key(node, &user)).await
}

pub(crate) async fn key_list(State(s): State<AppState>) -> Answer<Vec<Key>> {
    with_node(&s, ops::keys).await
}

pub(crate) async fn key_delete(State(s): State<AppState>, Query(q): Params) -> Answer<Deleted> {
    let access = owned(&q, "arg")?;
    with_node(&s, move |node| ops::delete_key(node, &access)).await
}

/// The optional `quota` parameter: bytes, or `none`.
fn quota_of(q: &HashMap<String, String>) -> Result<Option<u64>, ApiError> {
    match q.get("quota").map(String::as_str) {
        None | Some("none") => Ok(None),
        Some(n) => n
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("quota {n:?}: bytes, or none"))),
    }
}

/// `POST /sftp/add?name=NAME&key=LINE[&quota=BYTES][&policy=P]`.
pub(crate) async fn sftp_add(State(s): State<AppState>, Query(q): Params) -> Answer<Account> {
    let (name, key) = (owned(&q, "name")?, owned(&q, "key")?);
    let quota = quota_of(&q)?;
    let policy = q.get("policy").cloned();
    with_node(&s, move |node| {
        ops::sftp_add(node, &name, &key, quota, policy.as_deref())
    })
    .await
}

/// `GET /sftp/list`.
pub(crate) async fn sftp_list(State(s): State<AppState>) -> Answer<Vec<Account>> {
    with_node(&s, ops::sftp_list).await
}

/// `POST /sftp/remove?arg=NAME`.
pub(crate) async fn sftp_remove(State(s): State<AppState>, Query(q): Params) -> Answer<Deleted> {
    let name = owned(&q, "arg")?;
    with_node(&s, move |node| ops::sftp_remove(node, &name)).await
}

/// `GET /sftp/usage?arg=NAME`.
pub(crate) async fn sftp_usage(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<AccountUsage> {
    let name = owned(&q, "arg")?;
    with_node(&s, move |node| ops::sftp_usage(node, &name)).await
}

/// `POST /sftp/set-quota?arg=NAME&quota=BYTES|none[&policy=P]`.
pub(crate) async fn sftp_set_quota(State(s): State<AppState>, Query(q): Params) -> Answer<Account> {
    let name = owned(&q, "arg")?;
    let quota = quota_of(&q)?;
    let policy = q.get("policy").cloned();
    with_node(&s, move |node| {
        ops::sftp_set_quota(node, &name, quota, policy.as_deref())
    })
    .await
}

pub(crate) async fn bucket_list(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Answer<Vec<Bucket>> {
    with_node(&s, move |node| ops::buckets(node, &caller)).await
}

pub(crate) async fn bucket_set_public(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<Public> {
    let bucket = owned(&q, "arg")?;
    let public = q.get("off").map(String::as_str) != Some("true");
    with_node(&s, move |node| ops::set_public(node, &bucket, public)).await
}

/// `POST /gc` — collects garbage now.
pub(crate) async fn gc(State(s): State<AppState>) -> Answer<Collected> {
    with_node(&s, ops::gc).await
}

pub(crate) async fn pin_ls(State(s): State<AppState>) -> Answer<Vec<Pin>> {
    with_node(&s, ops::pins).await
}

pub(crate) async fn pin_add(State(s): State<AppState>, Query(q): Params) -> Answer<Pinned> {
    let cid = resolve(&s, &q).await?;
    with_node(&s, move |node| ops::pin(node, &cid)).await
}

pub(crate) async fn pin_rm(State(s): State<AppState>, Query(q): Params) -> Answer<Pinned> {
    let cid = resolve(&s, &q).await?;
    with_node(&s, move |node| ops::unpin(node, &cid)).await
}

/// `GET /car/export?arg=CID[/path]` — the DAG as a CARv1 stream.
pub(crate) async fn car_export(
    State(s): State<AppState>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let cid = resolve(&s, &q).await?;
    s.node.files().block(&cid)?; // a clean 404 before streaming
    let (writer, reader) = tokio::io::duplex(256 * 1024);
    let node = s.node.clone();
    let export = tokio::spawn(async move { node.files().car_export(cid, writer).await });
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

/// `POST /car/import?pin=true|false` — the body is a CARv1 file; every block is verified and a
/// bad one rejects the whole import.
pub(crate) async fn car_import(
    State(s): State<AppState>,
    Query(q): Params,
    body: Body,
) -> Answer<CarImported> {
    ops::car_import(&s.node, body_reader(body), pin(&q))
        .await
        .map(Json)
}

/// `POST /add/many?cid_version=0|1` — many files in one body and one commit (framing:
/// `cairn_node::snapshot`); answers one [`Added`] per file, in order. Not pinned: a `/tree`
/// with `snapshot=` (or a pin) keeps them.
pub(crate) async fn add_many(
    State(s): State<AppState>,
    Query(q): Params,
    body: Body,
) -> Answer<Vec<Added>> {
    let version = cid_version(&q)?;
    ops::add_many(&s.node, body_stream(body), version)
        .await
        .map(Json)
}

/// `POST /tree?cid_version=0|1&pin=true|false[&snapshot=NAME]` with a [`TreeManifest`]: builds
/// the folders of a tree whose files were uploaded with `/add` or `/add/many` (`cairn add -r`,
/// `cairn backup`), with the metadata given. With `snapshot`, the root is recorded as that
/// snapshot in the same commit.
pub(crate) async fn tree(
    State(s): State<AppState>,
    Query(q): Params,
    body: Body,
) -> Answer<TreeBuilt> {
    let (version, pin) = (cid_version(&q)?, pin(&q));
    let snapshot = q.get("snapshot").cloned();
    let bytes = axum::body::to_bytes(body, MAX_MANIFEST)
        .await
        .map_err(|e| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("tree manifest: {e}")))?;
    let manifest: TreeManifest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(format!("tree manifest: {e}")))?;
    drop(bytes);
    with_node(&s, move |node| {
        ops::tree(node, manifest, version, pin, snapshot.as_deref())
    })
    .await
}

/// `POST /snapshot/add?name=NAME&arg=CID[/path]` — records the (complete) DAG as a new snapshot
/// of `NAME`, kept by GC until it is removed.
pub(crate) async fn snapshot_add(State(s): State<AppState>, Query(q): Params) -> Answer<Snapshot> {
    let name = owned(&q, "name")?;
    let cid = resolve(&s, &q).await?;
    with_node(&s, move |node| ops::snapshot_add(node, &name, &cid)).await
}

/// `GET /snapshot/ls[?name=NAME]` — snapshots by name, oldest first.
pub(crate) async fn snapshot_ls(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<Vec<Snapshot>> {
    let name = q.get("name").cloned();
    with_node(&s, move |node| ops::snapshots(node, name.as_deref())).await
}

/// `POST /snapshot/rm?name=NAME&(all=true|arg=CID|keep_last=N)` — forgets snapshots of `NAME`
/// (all, those of one root, or all but the newest N); answers the forgotten ones. Their blocks
/// go at the next GC.
pub(crate) async fn snapshot_rm(
    State(s): State<AppState>,
    Query(q): Params,
) -> Answer<Vec<Snapshot>> {
    let name = owned(&q, "name")?;
    let which = match (q.get("all"), q.get("arg"), q.get("keep_last")) {
        (Some(all), None, None) if all == "true" => Forget::All,
        (None, Some(cid), None) => Forget::Cid(
            cid.parse()
                .map_err(|e| ApiError::invalid(format!("arg={cid:?}: {e}")))?,
        ),
        (None, None, Some(n)) => Forget::KeepLast(
            n.parse()
                .map_err(|e| ApiError::invalid(format!("keep_last={n:?}: {e}")))?,
        ),
        _ => {
            return Err(ApiError::invalid(
                "say which snapshots: one of all=true, arg=CID or keep_last=N",
            ));
        }
    };
    with_node(&s, move |node| ops::snapshot_rm(node, &name, &which)).await
}

/// `GET /repo/stat` — the blocks stored here and their size.
pub(crate) async fn repo_stat(State(s): State<AppState>) -> Answer<RepoStat> {
    with_node(&s, ops::repo_stat).await
}

/// `GET /bucket/redundancy?arg=B` reads it; `POST …&policy=P` sets it (`default` clears it).
pub(crate) async fn redundancy(State(s): State<AppState>, Query(q): Params) -> Answer<Redundancy> {
    let bucket = owned(&q, "arg")?;
    let set = q.get("policy").cloned();
    with_node(&s, move |node| {
        ops::redundancy(node, &bucket, set.as_deref())
    })
    .await
}

pub(crate) async fn root(State(s): State<AppState>, Query(q): Params) -> Answer<Root> {
    let bucket = owned(&q, "arg")?;
    with_node(&s, move |node| ops::root(node, &bucket)).await
}

pub(crate) async fn history(State(s): State<AppState>, Query(q): Params) -> Answer<Vec<Root>> {
    let bucket = owned(&q, "arg")?;
    with_node(&s, move |node| ops::history(node, &bucket)).await
}

pub(crate) async fn restore(State(s): State<AppState>, Query(q): Params) -> Answer<Restored> {
    let (bucket, root) = (owned(&q, "arg")?, owned(&q, "root")?);
    with_node(&s, move |node| ops::restore(node, &bucket, &root)).await
}

/// `POST /bucket/promote?arg=B[&force=true]` — take over a mirrored bucket whose owner is gone.
pub(crate) async fn promote(State(s): State<AppState>, Query(q): Params) -> Answer<Promoted> {
    let bucket = owned(&q, "arg")?;
    let force = flag(&q, "force");
    with_node(&s, move |node| ops::promote(node, &bucket, force)).await
}

/// `GET /bucket/head?arg=B` — the signed head, dag-cbor.
pub(crate) async fn head(
    State(s): State<AppState>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let bucket = owned(&q, "arg")?;
    let node = s.node.clone();
    let bytes = blocking(move || Ok(node.roots().head(&bucket)?)).await?;
    Ok(([(header::CONTENT_TYPE, "application/cbor")], bytes).into_response())
}

/// `POST /bucket/import?arg=B` — the body is a CARv1 of a UnixFS directory.
pub(crate) async fn import(
    State(s): State<AppState>,
    Query(q): Params,
    body: Body,
) -> Answer<BucketImported> {
    let bucket = owned(&q, "arg")?;
    ops::import_bucket(
        &s.node,
        &bucket,
        cairn_node::keys::ROOT_USER,
        body_reader(body),
    )
    .await
    .map(Json)
}

/// `POST /bucket/create?arg=B[&encrypted=true]` — a bucket owned by the caller (the root user
/// for the operator).
pub(crate) async fn create(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Params,
) -> Answer<Encryption> {
    let bucket = owned(&q, "arg")?;
    let encrypted = flag(&q, "encrypted");
    let owner = caller
        .name()
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "making a bucket needs credentials"))?
        .to_owned();
    with_node(&s, move |node| {
        ops::create_bucket(node, &bucket, &owner, encrypted)
    })
    .await
}

/// `GET /bucket/encryption?arg=B` shows, `POST …&on=true|false` sets the bucket's default
/// encryption.
pub(crate) async fn encryption(State(s): State<AppState>, Query(q): Params) -> Answer<Encryption> {
    let bucket = owned(&q, "arg")?;
    let set = match q.get("on").map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => return Err(ApiError::invalid(format!("on={other:?}: true or false"))),
    };
    with_node(&s, move |node| ops::encryption(node, &bucket, set)).await
}

/// `POST /share?arg=B/K&to=PUBKEY[&expires_ms=T]` — seals the object's data key for `to`;
/// `…&revoke=true` revokes and re-keys.
pub(crate) async fn share(
    State(s): State<AppState>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let (bucket, key) = crate::api::bucket_and_key(arg(&q, "arg")?)?;
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    let to = crate::api::public_id(arg(&q, "to")?)?;
    if flag(&q, "revoke") {
        return Ok(Json(ops::revoke(&s.node, &bucket, &key, &to).await?).into_response());
    }
    let expires_ms = match q.get("expires_ms") {
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::invalid("expires_ms: Unix milliseconds"))?,
        ),
        None => None,
    };
    let shared = with_node(&s, move |node| {
        ops::share(node, &bucket, &key, &to, expires_ms)
    })
    .await?;
    Ok(shared.into_response())
}

/// `GET /user` — the public key of the user this node acts as.
pub(crate) async fn user(State(s): State<AppState>) -> Json<User> {
    Json(ops::user(&s.node))
}

impl From<network::NetworkError> for ApiError {
    /// A malformed input 400, an unreachable peer 502, a network that does not answer 503.
    fn from(e: network::NetworkError) -> Self {
        let status = match &e {
            network::NetworkError::Invalid(_) => StatusCode::BAD_REQUEST,
            network::NetworkError::Unreachable(_) => StatusCode::BAD_GATEWAY,
            network::NetworkError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_node::NodeError;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A name missing from its directory is a 404, not a 500 (the remote CLI printed "internal
    /// error" for a typo).
    #[test]
    fn node_errors_answer_by_kind() {
        let cid =
            cairn_dag::Cid::try_from("QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX").unwrap();
        let missing = NodeError::from(cairn_dag::DagError::NotFound {
            parent: cid,
            name: "missing".into(),
        });
        assert_eq!(ApiError::from(missing).status(), StatusCode::NOT_FOUND);
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
