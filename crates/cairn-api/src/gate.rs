//! The `/api/v0` door's question to the node: every route is an [`Action`] on a resource
//! (the node, a bucket named by `arg`, a CID named by `arg`), put to
//! [`cairn_node::Access::authorize`] with the [`Caller`] the listener's gate named (the local
//! listener's token and the `secret` mode are root; an `allowlist` login is that user). A
//! route not in the table is the administrator's; a request with no caller is refused.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cairn_node::access::{Action, Caller, Resource};
use cairn_node::{Node, NodeError, parse_path};

use crate::ApiError;

/// What a route asks for, and where its resource is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any signed-in caller (it answers about the caller, or filters by it).
    SignedIn,
    /// Making a bucket (owned by the caller).
    CreateBucket,
    /// Reading the CID (or `CID/path`) in `arg`.
    ReadCid,
    /// Reading the settings of the bucket in `arg`.
    ReadBucket,
    /// Changing the bucket in `arg`.
    WriteBucket,
    /// Changing the object `BUCKET/KEY` in `arg`.
    WriteObject,
    /// The administrator.
    Admin,
}

/// The table: what each `/api/v0` route needs (see `docs/security.md`).
pub fn needs(path: &str) -> Needs {
    match path.strip_prefix("/api/v0").unwrap_or(path) {
        "/id" | "/user" | "/bucket/list" => Needs::SignedIn,
        "/bucket/create" => Needs::CreateBucket,
        "/cat" | "/ls" | "/check" | "/stat" | "/car/export" => Needs::ReadCid,
        "/bucket/root" | "/bucket/history" | "/bucket/head" => Needs::ReadBucket,
        "/bucket/set-public" | "/bucket/restore" | "/bucket/encryption" => Needs::WriteBucket,
        "/share" => Needs::WriteObject,
        _ => Needs::Admin,
    }
}

fn arg(req: &Request) -> Option<String> {
    let query = req.uri().query()?;
    url_arg(query)
}

fn url_arg(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "arg").then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn decide(node: &Node, caller: &Caller, needs: Needs, arg: Option<&str>) -> Result<(), ApiError> {
    let missing = || ApiError::invalid("missing arg");
    let asked = match needs {
        Needs::SignedIn => node
            .access()
            .authorize(caller, Action::ListBuckets, &Resource::node()),
        Needs::CreateBucket => {
            node.access()
                .authorize(caller, Action::CreateBucket, &Resource::node())
        }
        Needs::Admin => node
            .access()
            .authorize(caller, Action::Admin, &Resource::node()),
        Needs::ReadCid => {
            let (cid, _) = parse_path(arg.ok_or_else(missing)?)?;
            node.access()
                .authorize(caller, Action::ReadCid, &Resource::cid(cid))
        }
        Needs::ReadBucket | Needs::WriteBucket => {
            let action = if needs == Needs::ReadBucket {
                Action::ReadBucketSettings
            } else {
                Action::WriteBucketSettings
            };
            node.access()
                .authorize(caller, action, &Resource::bucket(arg.ok_or_else(missing)?))
        }
        Needs::WriteObject => {
            let arg = arg.ok_or_else(missing)?;
            let (bucket, key) = crate::api::bucket_and_key(arg)?;
            node.access().authorize(
                caller,
                Action::WriteObject,
                &Resource::object(bucket, key, None),
            )
        }
    };
    match asked {
        Ok(_) => Ok(()),
        Err(NodeError::AccessDenied(why)) => Err(ApiError::new(StatusCode::FORBIDDEN, why)),
        Err(e) => Err(e.into()),
    }
}

/// The middleware: asks the node about the request and lets it on only if allowed.
pub async fn gate(State(node): State<Node>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return ApiError::new(StatusCode::FORBIDDEN, "the caller is not known").into_response();
    };
    let needs = needs(req.uri().path());
    let arg = arg(&req);
    let decided =
        tokio::task::spawn_blocking(move || decide(&node, &caller, needs, arg.as_deref())).await;
    match decided {
        Ok(Ok(())) => next.run(req).await,
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_default_to_the_administrator() {
        assert_eq!(needs("/api/v0/key/create"), Needs::Admin);
        assert_eq!(needs("/api/v0/gc"), Needs::Admin);
        assert_eq!(needs("/api/v0/something/new"), Needs::Admin);
        assert_eq!(needs("/api/v0/cat"), Needs::ReadCid);
        assert_eq!(needs("/api/v0/bucket/set-public"), Needs::WriteBucket);
        assert_eq!(url_arg("x=1&arg=a%2Fb").as_deref(), Some("a/b"));
    }
}
