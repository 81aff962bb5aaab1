//! Who may call the HTTP APIs on the gateway listener (`/api/v1`, and `/api/v0` for a remote
//! CLI): the three security modes and the ed25519-signed login.
//!
//! * `public` — anyone.
//! * `secret` — `Authorization: Bearer SECRET` with the node's shared secret.
//! * `allowlist` — `Authorization: Bearer TOKEN`, a token from `POST /api/v1/login` for a
//!   listed user key. Login: the client signs the node's key (`GET /api/v1/pubkey`, so a
//!   login is for one node only) and the current epoch (ms) with its ed25519 key
//!   ([`cairn_crypt::login`]); the node refuses an unlisted key before anything else, accepts
//!   the login within ± the skew window, once — the node remembers logins durably
//!   ([`cairn_node::Access::remember_login`]: a replay is refused after a restart too, and the
//!   memory is bounded) — and answers a token MAC'd with a key only the node has, valid for
//!   the token lifetime (24 h by default). Every request re-checks that the token's key is
//!   still listed.
//!
//! A missing credential is `401` (with `WWW-Authenticate: Bearer`), a wrong one `403`.
//!
//! Who the caller then is goes on with the request (a [`Caller`] in its extensions): in
//! `public` mode nobody in particular (anonymous), in `secret` mode the operator (root), in
//! `allowlist` mode the user of the key (named by its `cpk1…` text, also as an S3 user). What
//! the caller may do is not decided here but by the node ([`cairn_node::Access::authorize`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use cairn_crypt::identity::PublicId;
use cairn_crypt::login::{check_token, issue_token, verify_login};
use cairn_crypt::{CryptError, Key};
use cairn_node::access::{Caller, LoginSeen};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

/// Who may call the APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// Anyone.
    Public,
    /// Callers presenting `Authorization: Bearer SECRET`.
    Secret(String),
    /// Callers presenting a login token of one of these users.
    Allowlist(Vec<PublicId>),
}

impl Security {
    /// The mode's name in the config.
    pub fn name(&self) -> &'static str {
        match self {
            Security::Public => "public",
            Security::Secret(_) => "secret",
            Security::Allowlist(_) => "allowlist",
        }
    }
}

/// The APIs' gatekeeper: the mode, the token key and the replay memory of logins.
pub struct Auth {
    security: Security,
    /// Allowlist mode: each listed signing key and the user name it acts as.
    allowed: HashMap<[u8; 32], String>,
    token_key: Key,
    token_ttl: Duration,
    /// How far a login's signed time may be from the node's clock.
    skew: Duration,
    /// The node: its key is the logins' audience, and it remembers logins.
    node: cairn_node::Node,
    audience: [u8; 32],
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

/// Constant-time comparison of a presented secret with the configured one.
fn same_secret(presented: &[u8], secret: &[u8]) -> bool {
    presented.len() == secret.len()
        && presented
            .iter()
            .zip(secret)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn unauthorized(message: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

impl Auth {
    /// A gatekeeper for `security` in front of `node`; tokens are MAC'd with `token_key`
    /// (derive it from a node secret so tokens outlive a restart) and live `token_ttl`; logins
    /// must be signed for the node's key and are accepted within `skew` of its clock.
    pub fn new(
        node: cairn_node::Node,
        security: Security,
        token_key: Key,
        token_ttl: Duration,
        skew: Duration,
    ) -> Result<Self, cairn_node::NodeError> {
        let audience = node.identity()?.public_key();
        let allowed = match &security {
            Security::Allowlist(keys) => keys.iter().map(|k| (k.sign, k.to_string())).collect(),
            _ => HashMap::new(),
        };
        Ok(Auth {
            security,
            allowed,
            token_key,
            token_ttl,
            skew,
            node,
            audience,
        })
    }

    /// The mode.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// Who a request with this `Authorization` header is, or the refusal.
    pub fn check(&self, authorization: Option<&str>) -> Result<Caller, Box<Response>> {
        if self.security == Security::Public {
            return Ok(Caller::Anonymous);
        }
        let presented = authorization.and_then(|v| v.strip_prefix("Bearer "));
        let Some(presented) = presented.map(str::trim) else {
            return Err(Box::new(unauthorized(match self.security {
                Security::Secret(_) => "this API needs Authorization: Bearer SECRET",
                _ => "this API needs Authorization: Bearer TOKEN (POST /api/v1/login)",
            })));
        };
        match &self.security {
            Security::Public => Ok(Caller::Anonymous),
            Security::Secret(secret) => {
                // An empty secret is no secret: nothing matches it.
                if !secret.is_empty() && same_secret(presented.as_bytes(), secret.as_bytes()) {
                    Ok(Caller::Root)
                } else {
                    Err(Box::new(error(StatusCode::FORBIDDEN, "wrong secret")))
                }
            }
            Security::Allowlist(_) => match check_token(&self.token_key, presented, now_ms()) {
                Ok((user, _)) if self.allowed.contains_key(&user) => {
                    Ok(Caller::User(self.allowed[&user].clone()))
                }
                Ok(_) => Err(Box::new(error(
                    StatusCode::FORBIDDEN,
                    "this key is not on the allowlist",
                ))),
                Err(CryptError::Expired) => Err(Box::new(error(
                    StatusCode::UNAUTHORIZED,
                    "the token has expired: log in again",
                ))),
                Err(_) => Err(Box::new(error(
                    StatusCode::FORBIDDEN,
                    "not a valid token of this node",
                ))),
            },
        }
    }

    /// `POST /login {"public_key", "epoch_ms", "signature"}` → `{"token", "expires_ms"}`.
    /// Blocking (the login memory is a database write): run it off the async threads.
    pub fn login(&self, body: &[u8]) -> Response {
        #[derive(Deserialize)]
        struct Login {
            public_key: String,
            epoch_ms: u64,
            signature: String,
        }
        let Security::Allowlist(_) = self.security else {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "this node is in {} mode: login is for allowlist mode",
                    self.security.name()
                ),
            );
        };
        let login: Login = match serde_json::from_slice(body) {
            Ok(l) => l,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "expected {{\"public_key\": \"cpk1…\", \"epoch_ms\": N, \"signature\": \"hex\"}}: {e}"
                    ),
                );
            }
        };
        let user: PublicId = match login.public_key.parse() {
            Ok(u) => u,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let signature: [u8; 64] = match hex::decode(&login.signature)
            .ok()
            .and_then(|s| s.try_into().ok())
        {
            Some(s) => s,
            None => return error(StatusCode::BAD_REQUEST, "signature: 128 hex digits"),
        };
        // Unlisted keys are refused before the replay guard remembers anything of them:
        // strangers cannot fill it.
        if !self.allowed.contains_key(&user.sign) {
            return error(StatusCode::FORBIDDEN, "this key is not on the allowlist");
        }
        let now = now_ms();
        let window = self.skew.as_millis() as u64;
        if let Err(e) = verify_login(
            &user,
            &self.audience,
            login.epoch_ms,
            &signature,
            now,
            window,
        ) {
            return match e {
                CryptError::Skew => error(
                    StatusCode::UNAUTHORIZED,
                    "the signed time is too far from the node's clock: sign the current time",
                ),
                _ => error(
                    StatusCode::FORBIDDEN,
                    "bad signature (a login signs this node's key, GET /api/v1/pubkey, and the \
                     time)",
                ),
            };
        }
        match self
            .node
            .access()
            .remember_login(&user.to_string(), login.epoch_ms, now, window)
        {
            Ok(LoginSeen::Fresh) => {}
            Ok(LoginSeen::Replayed) => {
                return error(
                    StatusCode::FORBIDDEN,
                    "this login was already used (replay)",
                );
            }
            Ok(LoginSeen::Full) => {
                return error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many logins in the clock window: try again later",
                );
            }
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e),
        }
        let expires_ms = now.saturating_add(self.token_ttl.as_millis() as u64);
        Json(json!({
            "token": issue_token(&self.token_key, &user.sign, expires_ms),
            "expires_ms": expires_ms,
        }))
        .into_response()
    }
}

/// The middleware: refuses requests [`Auth::check`] refuses.
pub async fn authorize(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth.check(header) {
        Ok(caller) => {
            let mut req = req;
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(refusal) => *refusal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }
}
