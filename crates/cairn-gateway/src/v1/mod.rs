//! `/api/v1`, the storage-gateway REST API on the gateway listener (spec: `docs/api-v1.yaml`):
//! streaming uploads that answer a job id at once ([`cairn_node::jobs`]), long-polled job
//! status, files by CID (ranges, content type from the extension — usable directly in a web
//! page), existence, soft/hard checks and the node's verification key; and the SFTP accounts'
//! administration (`v1/ssh.rs`). Every answer is JSON (errors `{"error": "..."}`) except file
//! bodies. Who may call it is [`crate::auth`]; what a caller may do, the node
//! ([`cairn_node::Access::authorize`]).

mod ssh;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use cairn_dag::Cid;
use cairn_node::access::{Action, Caller, Resource};
use cairn_node::jobs::SubmitError;
use cairn_node::{CidVersion, ErrorKind, Node, NodeError};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::GatewayConfig;
use crate::auth::{Auth, authorize, error};
use crate::serve::{Gateway, serve};

/// Settings of `/api/v1`.
#[derive(Debug, Clone)]
pub struct V1Config {
    /// Largest upload accepted, in bytes.
    pub max_upload: u64,
    /// Longest a `?wait=true` poll is held.
    pub long_poll: Duration,
}

#[derive(Clone)]
struct V1 {
    node: Node,
    config: V1Config,
}

/// The routes, to be nested under `/api/v1`: `POST /login` for anyone, the rest for callers
/// `auth` lets through.
pub fn router(node: Node, config: V1Config, auth: Arc<Auth>) -> Router {
    let state = V1 { node, config };
    Router::new()
        .route("/files", post(upload))
        .route("/files/{name}", get(file).head(file))
        .route("/jobs/{id}", get(job))
        .route("/check/{cid}", get(check))
        .route("/ssh/enable", post(ssh::enable))
        .route("/ssh/{user}/size", get(ssh::size))
        .route("/ssh/process", post(ssh::process))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(auth.clone(), authorize))
        .with_state(state.clone())
        .merge(Router::new().route("/login", post(login)).with_state(auth))
        // The node's public key is what a login signs (its audience): known before logging in.
        .merge(
            Router::new()
                .route("/pubkey", get(pubkey))
                .with_state(state),
        )
}

/// `POST /login`: see [`Auth::login`].
async fn login(State(auth): State<Arc<Auth>>, body: axum::body::Bytes) -> Response {
    tokio::task::spawn_blocking(move || auth.login(&body))
        .await
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

fn node_error(e: NodeError) -> Response {
    error(status_of(e.kind()), e)
}

/// `/api/v1`'s answer to each kind of node failure: [`ErrorKind::rest_status`], the table
/// both REST APIs share.
pub(crate) fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.rest_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no such endpoint {}", uri.path()),
    )
}

#[derive(Deserialize)]
struct UploadQuery {
    ext: Option<String>,
    cid_version: Option<u8>,
    public: Option<bool>,
}

/// `POST /files?ext=EXT[&cid_version=0|1][&public=true]`: the raw body → `202 {"job_id",
/// "state"}` once it is spooled durably; the import goes on in the background. The file is
/// the caller's: only it (and the operator) may read its CID, unless `public=true` publishes
/// it.
async fn upload(
    State(v1): State<V1>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    req: Request,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(StatusCode::BAD_REQUEST, "malformed query");
    };
    let (parts, body) = req.into_parts();
    let Some(caller) = parts.extensions.get::<Caller>() else {
        return error(StatusCode::FORBIDDEN, "the caller is not known");
    };
    let uploader = cairn_node::jobs::Uploader {
        owner: caller.name().map(str::to_owned),
        public: q.public.unwrap_or(false),
    };
    let version = match CidVersion::try_from(q.cid_version.unwrap_or(0)) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let ext = q.ext.filter(|e| !e.is_empty());
    let stream = body.into_data_stream().map_err(|e| e.to_string());
    submitted(
        v1.node
            .jobs()
            .submit(stream, ext, version, v1.config.max_upload, uploader)
            .await,
    )
}

/// The answer to a job submission: `202` with the job, else why not.
fn submitted(job: Result<cairn_node::jobs::JobRecord, SubmitError>) -> Response {
    match job {
        Ok(job) => (StatusCode::ACCEPTED, Json(job)).into_response(),
        Err(SubmitError::TooLarge { limit }) => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over the upload limit of {limit} bytes"),
        ),
        Err(SubmitError::Body(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(SubmitError::Node(e)) => node_error(e),
    }
}

#[derive(Deserialize)]
struct JobQuery {
    wait: Option<bool>,
    timeout: Option<u64>,
}

/// `GET /jobs/{id}[?wait=true[&timeout=SECS]]`: the job; with `wait`, held until it is no
/// longer `ACTIVE` or the poll times out.
async fn job(
    State(v1): State<V1>,
    Path(id): Path<String>,
    query: Result<Query<JobQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed query: wait=true|false, timeout=SECONDS",
        );
    };
    let wait = if q.wait.unwrap_or(false) {
        q.timeout
            .map_or(v1.config.long_poll, Duration::from_secs)
            .min(v1.config.long_poll)
    } else {
        Duration::ZERO
    };
    match v1.node.jobs().wait(&id, wait).await {
        Ok(job) => Json(job).into_response(),
        Err(e) => node_error(e),
    }
}

/// `{cid}` or `{cid}.{ext}`; the error is the 400 message.
fn parse_name(name: &str) -> Result<(Cid, Option<&str>), String> {
    let (cid, ext) = match name.split_once('.') {
        Some((c, e)) => (c, Some(e)),
        None => (name, None),
    };
    let cid = Cid::try_from(cid).map_err(|e| format!("{cid:?} is not a CID: {e}"))?;
    if let Some(e) = ext
        && !cairn_node::jobs::valid_ext(e)
    {
        return Err(format!(
            "extension {e:?}: 1 to 16 letters or digits, dot-separated runs (tar.gz)"
        ));
    }
    Ok((cid, ext))
}

/// [`parse_name`], refusing with a 400.
fn cid_and_ext(name: &str) -> Result<(Cid, Option<&str>), Box<Response>> {
    parse_name(name).map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, e)))
}

/// Asks the node whether the caller the gate admitted may read `cid`; the refusal if not.
async fn may_read(
    node: &Node,
    extensions: &axum::http::Extensions,
    cid: Cid,
) -> Result<(), Response> {
    may(node, extensions, Action::ReadCid, Resource::cid(cid)).await
}

/// Asks the node whether the caller the gate admitted may do `action` to `resource`; the
/// refusal if not (a caller the gate did not name is refused: deny on doubt).
async fn may(
    node: &Node,
    extensions: &axum::http::Extensions,
    action: Action,
    resource: Resource<'static>,
) -> Result<(), Response> {
    let caller = extensions
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| error(StatusCode::FORBIDDEN, "the caller is not known"))?;
    let node = node.clone();
    let decided =
        tokio::task::spawn_blocking(move || node.access().authorize(&caller, action, &resource))
            .await;
    match decided {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(NodeError::AccessDenied(why))) => Err(error(StatusCode::FORBIDDEN, why)),
        Ok(Err(e)) => Err(node_error(e)),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

/// `GET|HEAD /files/{cid}[.ext]`: the file (Range, ETag, content type from `.ext` else
/// sniffed); `HEAD` answers whether it exists.
async fn file(State(v1): State<V1>, Path(name): Path<String>, req: Request) -> Response {
    let (cid, ext) = match cid_and_ext(&name) {
        Ok(found) => found,
        Err(r) => return *r,
    };
    let (mut parts, _) = req.into_parts();
    if let Err(refusal) = may_read(&v1.node, &parts.extensions, cid).await {
        return refusal;
    }
    let method = parts.method.clone();
    let query = ext.map_or(String::new(), |e| format!("?filename={cid}.{e}"));
    parts.uri = match format!("/ipfs/{cid}{query}").parse() {
        Ok(uri) => uri,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // The node allowed this caller this CID (above): the gateway serves it as it is.
    let gateway = Gateway {
        node: v1.node.clone(),
        config: GatewayConfig { serve_all: true },
    };
    let mut response = match serve(&gateway, &parts).await {
        Ok(r) => r,
        Err(e) => error(e.status(), e),
    };
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

#[derive(Deserialize)]
struct CheckQuery {
    hard: Option<bool>,
}

/// `GET /check/{cid}[?hard=true]`: soft (every block present) or hard (re-hashed, files
/// re-assembled) check of the DAG.
async fn check(
    State(v1): State<V1>,
    Path(cid): Path<String>,
    query: Result<Query<CheckQuery>, QueryRejection>,
    req: Request,
) -> Response {
    let Ok(Query(q)) = query else {
        return error(StatusCode::BAD_REQUEST, "malformed query: hard=true|false");
    };
    let cid = match cid_and_ext(&cid) {
        Ok((cid, _)) => cid,
        Err(r) => return *r,
    };
    if let Err(refusal) = may_read(&v1.node, req.extensions(), cid).await {
        return refusal;
    }
    let hard = q.hard.unwrap_or(false);
    let node = v1.node.clone();
    let report = tokio::task::spawn_blocking(move || node.files().check(&cid, hard)).await;
    match report {
        Ok(Ok(r)) => Json(json!({
            "cid": cid.to_string(),
            "mode": if hard { "hard" } else { "soft" },
            "ok": r.is_ok(),
            "blocks": r.blocks,
            "bytes_read": r.bytes_read,
            "missing": r.missing.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "corrupt": r.corrupt.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "bad_files": r.bad_files.iter().map(|(c, why)| json!({"cid": c.to_string(), "error": why})).collect::<Vec<_>>(),
        }))
        .into_response(),
        Ok(Err(e)) => node_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// `GET /pubkey`: the node's ed25519 verification key (it signs bucket heads).
async fn pubkey(State(v1): State<V1>) -> Response {
    let node = v1.node.clone();
    match tokio::task::spawn_blocking(move || node.identity().map(|id| id.public_key())).await {
        Ok(Ok(key)) => Json(json!({
            "algorithm": "ed25519",
            "public_key": hex::encode(key),
        }))
        .into_response(),
        Ok(Err(e)) => node_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_route() {
        let spec = include_str!("../../../../docs/api-v1.yaml");
        for path in [
            "/files:",
            "/files/{name}:",
            "/jobs/{id}:",
            "/check/{cid}:",
            "/pubkey:",
            "/login:",
            "/ssh/enable:",
            "/ssh/{user}/size:",
            "/ssh/process:",
        ] {
            assert!(
                spec.contains(&format!("\n  {path}\n")),
                "{path} missing from docs/api-v1.yaml"
            );
        }
    }

    #[test]
    fn file_names_are_a_cid_and_an_extension() {
        let cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";
        assert_eq!(cid_and_ext(cid).unwrap().1, None);
        assert_eq!(cid_and_ext(&format!("{cid}.mp4")).unwrap().1, Some("mp4"));
        assert!(cid_and_ext("nonsense").is_err());
        assert!(cid_and_ext(&format!("{cid}.a/b")).is_err());
        assert!(cid_and_ext(&format!("{cid}.")).is_err());
    }
}
