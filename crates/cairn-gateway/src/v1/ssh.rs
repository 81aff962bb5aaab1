//! `/api/v1/ssh/*`: the SFTP accounts' administration, as the storage gateway had it
//! (`ssh_enable`, `ssh_size`, `ssh_process`), over [`cairn_node::Accounts`]. The operator's
//! only ([`Action::Admin`], asked of the node before the body is read).

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use cairn_node::CidVersion;
use cairn_node::access::{Action, Resource};
use cairn_node::accounts::QuotaPolicy;
use cairn_node::accounts::process::ProcessPath;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{V1, error, may, node_error, submitted};

/// The largest JSON body these routes read.
const MAX_BODY: usize = 64 << 10;

/// Refuses a caller who is not the operator, then reads the body as `T`.
async fn admin_body<T: DeserializeOwned>(
    v1: &V1,
    req: Request,
    shape: &str,
) -> Result<T, Response> {
    let (parts, body) = req.into_parts();
    may(&v1.node, &parts.extensions, Action::Admin, Resource::node()).await?;
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body is not {shape}: {e}"),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enable {
    username: String,
    sshpubkey: String,
    max_size: Option<u64>,
    policy: Option<String>,
}

/// `POST /ssh/enable {username, sshpubkey, max_size?, policy?}`: adds the key to the account,
/// making it (and its home bucket) when new; `max_size` (bytes) and `policy` (`refuse` |
/// `evict-oldest`) replace the account's when given.
pub(super) async fn enable(State(v1): State<V1>, req: Request) -> Response {
    let shape = "{\"username\", \"sshpubkey\", \"max_size\"?, \"policy\"?}";
    let e: Enable = match admin_body(&v1, req, shape).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let policy = match e
        .policy
        .as_deref()
        .map(str::parse::<QuotaPolicy>)
        .transpose()
    {
        Ok(p) => p,
        Err(why) => return node_error(why),
    };
    let username = e.username.clone();
    let added = v1
        .node
        .blocking(move |node| {
            node.accounts()
                .add(&e.username, &e.sshpubkey, e.max_size, policy)
        })
        .await;
    match added {
        Ok(record) => Json(json!({
            "username": username,
            "keys": record.keys.len(),
            "max_size": record.quota,
            "policy": record.policy,
        }))
        .into_response(),
        Err(e) => node_error(e),
    }
}

/// `GET /ssh/{user}/size`: the bytes the account's home holds and its quota.
pub(super) async fn size(State(v1): State<V1>, Path(user): Path<String>, req: Request) -> Response {
    if let Err(r) = may(&v1.node, req.extensions(), Action::Admin, Resource::node()).await {
        return r;
    }
    let name = user.clone();
    match v1
        .node
        .blocking(move |node| node.accounts().usage(&name))
        .await
    {
        Ok(usage) => Json(json!({
            "username": user,
            "used": usage.used,
            "max_size": usage.quota,
        }))
        .into_response(),
        Err(e) => node_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Process {
    user: String,
    path: String,
    #[serde(default)]
    remove: bool,
}

#[derive(Deserialize)]
pub(super) struct ProcessQuery {
    cid_version: Option<u8>,
}

/// `POST /ssh/process[?cid_version=0|1] {user, path, remove?}`: the path of the account's home
/// as one stored file — a folder packed as `.tar.gz`, a file as it is — by an upload job
/// (`202` with the job once the archive is spooled; `GET /jobs/{id}?wait=true` follows it to
/// the CID); with `remove`, the sources leave the home when the job is `DONE`.
pub(super) async fn process(
    State(v1): State<V1>,
    query: Result<Query<ProcessQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(StatusCode::BAD_REQUEST, "malformed query: cid_version=0|1");
    };
    let version = match CidVersion::try_from(q.cid_version.unwrap_or(0)) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let p: Process = match admin_body(&v1, req, "{\"user\", \"path\", \"remove\"?}").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    submitted(
        v1.node
            .accounts()
            .process(ProcessPath {
                account: p.user,
                path: p.path,
                remove: p.remove,
                version,
                limit: v1.config.max_upload,
            })
            .await,
    )
}
