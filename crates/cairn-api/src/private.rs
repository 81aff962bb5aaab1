//! Private data over the API: creating a bucket (encrypted or not), its default encryption,
//! sharing an encrypted object with a user's public key and revoking it, and the node's user
//! key.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use cairn_crypt::identity::PublicId;
use serde_json::json;

use crate::{ApiResult, AppState, Params, arg, blocking, fail};

fn public_id(text: &str) -> Result<PublicId, crate::ApiError> {
    text.parse()
        .map_err(|e| fail(StatusCode::BAD_REQUEST, format!("--to {text:?}: {e}")))
}

fn bucket_and_key(path: &str) -> Result<(String, String), crate::ApiError> {
    match path.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_owned(), k.to_owned())),
        _ => Err(fail(StatusCode::BAD_REQUEST, "expected BUCKET/KEY")),
    }
}

/// `POST /api/v0/bucket/create?arg=B[&encrypted=true]` — a bucket owned by the caller (the
/// root user for the operator).
pub(crate) async fn create(
    State(s): State<AppState>,
    axum::Extension(caller): axum::Extension<cairn_node::access::Caller>,
    Query(q): Params,
) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let encrypted = q.get("encrypted").map(String::as_str) == Some("true");
    let owner = caller
        .name()
        .ok_or_else(|| fail(StatusCode::FORBIDDEN, "making a bucket needs credentials"))?
        .to_owned();
    let node = s.node.clone();
    blocking(move || {
        node.create_bucket(&bucket, &owner)?;
        if encrypted {
            node.set_bucket_encryption(&bucket, true)?;
        }
        Ok(Json(
            json!({ "bucket": bucket, "encrypted": node.bucket_encrypted(&bucket)? }),
        ))
    })
    .await
    .map(IntoResponse::into_response)
}

/// `GET /api/v0/bucket/encryption?arg=B` shows, `POST …&on=true|false` sets the bucket's
/// default encryption.
pub(crate) async fn encryption(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let bucket = arg(&q, "arg")?.to_owned();
    let set = match q.get("on").map(String::as_str) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                format!("on={other:?}: true or false"),
            ));
        }
    };
    let node = s.node.clone();
    blocking(move || {
        if let Some(on) = set {
            node.set_bucket_encryption(&bucket, on)?;
        }
        Ok(Json(
            json!({ "bucket": bucket, "encrypted": node.bucket_encrypted(&bucket)? }),
        ))
    })
    .await
    .map(IntoResponse::into_response)
}

/// `POST /api/v0/share?arg=B/K&to=PUBKEY[&expires_ms=T]` — seals the object's data key for
/// `to`; `…&revoke=true` revokes and re-keys.
pub(crate) async fn share(State(s): State<AppState>, Query(q): Params) -> ApiResult {
    let (bucket, key) = bucket_and_key(arg(&q, "arg")?)?;
    let to = public_id(arg(&q, "to")?)?;
    if q.get("revoke").map(String::as_str) == Some("true") {
        let info = s.node.revoke(&bucket, &key, &to).await?;
        return Ok(Json(json!({
            "revoked": to.to_string(),
            "cid": info.cid.to_string(),
            "version_id": info.meta.version_id,
        }))
        .into_response());
    }
    let expires_ms = match q.get("expires_ms") {
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| fail(StatusCode::BAD_REQUEST, "expires_ms: Unix milliseconds"))?,
        ),
        None => None,
    };
    let node = s.node.clone();
    let info = blocking(move || node.share(&bucket, &key, &to, expires_ms)).await?;
    Ok(Json(json!({
        "shared_with": to.to_string(),
        "cid": info.cid.to_string(),
        "expires_ms": expires_ms,
    }))
    .into_response())
}

/// `GET /api/v0/user` — the public key of the user this node acts as.
pub(crate) async fn user(State(s): State<AppState>) -> ApiResult {
    Ok(Json(json!({ "public_key": s.node.user_public().map(|p| p.to_string()) })).into_response())
}
