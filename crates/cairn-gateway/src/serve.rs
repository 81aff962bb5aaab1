//! Answering a request. Everything that reads blocks before the status is known — the
//! publication check, path resolution, the entity's root block, a file's first bytes for
//! sniffing, a directory listing — runs in [`plan`] on one blocking task. The response then
//! streams file bytes ([`Files::cat_stream`]) or a CAR ([`Files::car_stream`]) from the node.

use std::fmt::Write;
use std::ops::Range;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_dag::Cid;
use cairn_dag::car::{DagScope, is_identity};
use cairn_dag::dir::{NodeKind, describe};
use cairn_node::{Node, NodeError};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::content_type::{self, SNIFF_LEN};
use crate::range::{RangeRequest, parse_range};
use crate::request::{Format, GatewayRequest};
use crate::{GatewayConfig, GatewayError, listing};

/// `Cache-Control` of everything under `/ipfs/`: the content of a CID never changes.
const IMMUTABLE: &str = "public, max-age=29030400, immutable";
const CAR_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";
const RAW_TYPE: &str = "application/vnd.ipld.raw";

/// The handler's state.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    pub(crate) node: Node,
    pub(crate) config: GatewayConfig,
}

/// The one handler: any method, any path.
pub(crate) async fn handle(State(gw): State<Gateway>, req: Request) -> Response {
    let (req, _body) = req.into_parts();
    let method = req.method.clone();
    let mut response = match serve(&gw, &req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    tracing::debug!(%method, uri = %req.uri, status = %response.status(), "gateway");
    response
}

/// What [`plan`] found; the response is built from it.
enum Plan {
    /// A directory asked for without the trailing slash.
    Redirect,
    /// A UnixFS file (also a directory's `index.html`).
    File {
        cid: Cid,
        size: u64,
        content_type: String,
    },
    /// The generated index page of a directory.
    Listing { cid: Cid, html: String },
    /// A block shown as it is (symlink target, dag-cbor, ...).
    Block {
        cid: Cid,
        data: Bytes,
        content_type: String,
    },
    /// `format=raw`: the terminal block.
    Raw { cid: Cid, data: Bytes },
    /// `format=car`: checked, ready to stream.
    Car,
}

struct Planned {
    /// The CID of each logical path segment, root first (`X-Ipfs-Roots`).
    roots: Vec<Cid>,
    plan: Plan,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GatewayError> + Send + 'static,
) -> Result<T, GatewayError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| GatewayError::Internal(format!("gateway task: {e}")))?
}

pub(crate) async fn serve(gw: &Gateway, req: &Parts) -> Result<Response, GatewayError> {
    if req.method != Method::GET && req.method != Method::HEAD {
        return Err(GatewayError::MethodNotAllowed);
    }
    let request = GatewayRequest::parse(&req.uri, &req.headers)?;
    let (node, config) = (gw.node.clone(), gw.config);
    let (request, planned) = blocking(move || {
        let planned = plan(&node, config, &request)?;
        Ok((request, planned))
    })
    .await?;
    respond(&gw.node, &request, req, planned)
}

/// Policy, path resolution, and what to answer (blocking).
fn plan(
    node: &Node,
    config: GatewayConfig,
    request: &GatewayRequest,
) -> Result<Planned, GatewayError> {
    let root = request.root;
    // A raw identity CID carries its bytes and links nowhere: serving it reveals nothing (and
    // `bafkqaaa` is the trustless gateway's probe). Other identity CIDs could embed links to
    // unpublished blocks, so they go through the policy like any CID.
    let published = if is_identity(&root) && root.codec() == cairn_dag::RAW {
        Default::default()
    } else {
        match node.access().published(&root)? {
            Some(p) => p,
            None if config.serve_all => Default::default(),
            None => return Err(GatewayError::not_served(&root)),
        }
    };
    let mut roots = vec![root];
    let mut cid = root;
    for segment in &request.segments {
        cid = node.files().resolve(cid, segment)?;
        roots.push(cid);
    }
    let data = node.files().block(&cid)?;
    let kind = describe(&cid, &data);
    let plan = match request.format {
        Format::Raw => Plan::Raw { cid, data },
        Format::Car => {
            if let (NodeKind::File { size }, Some(bytes)) = (&kind, request.entity_bytes)
                && bytes.starts_after(*size)
            {
                return Err(GatewayError::BadRequest(format!(
                    "entity-bytes {bytes} starts after the end of the file ({size} bytes)"
                )));
            }
            if request.scope != DagScope::Block {
                // an undecodable entity fails here, not after the 200
                cairn_dag::links_of(&cid, &data).map_err(NodeError::from)?;
            }
            Plan::Car
        }
        Format::Deserialized => match kind {
            NodeKind::File { size } => {
                let name = request.segments.last().map(String::as_str);
                let recorded = if cid == root {
                    published.content_type.as_deref()
                } else {
                    None
                };
                file_plan(node, request, cid, size, &data, recorded, name)?
            }
            NodeKind::Directory { .. } if !request.trailing_slash => Plan::Redirect,
            NodeKind::Directory { .. } => match index_html(node, cid)? {
                Some((index, size, data)) => {
                    file_plan(node, request, index, size, &data, None, Some("index.html"))?
                }
                None => Plan::Listing {
                    cid,
                    html: listing::render(&root, &request.segments, &cid, &node.files().ls(&cid)?),
                },
            },
            NodeKind::Symlink => Plan::Block {
                cid,
                data: cairn_dag::dir::symlink_target(&cid, &data)
                    .map_err(NodeError::from)?
                    .into(),
                content_type: "inode/symlink".into(),
            },
            NodeKind::Other => Plan::Block {
                cid,
                content_type: codec_content_type(&cid)?.into(),
                data,
            },
        },
    };
    Ok(Planned { roots, plan })
}

/// The `index.html` file of directory `dir` (CID, size, root block), if it has one.
fn index_html(node: &Node, dir: Cid) -> Result<Option<(Cid, u64, Bytes)>, GatewayError> {
    let index = match node.files().resolve(dir, "index.html") {
        Ok(index) => index,
        Err(NodeError::Dag(e)) if matches!(*e, cairn_dag::DagError::NotFound { .. }) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let data = node.files().block(&index)?;
    Ok(match describe(&index, &data) {
        NodeKind::File { size } => Some((index, size, data)),
        _ => None,
    })
}

/// A file: its content type is the recorded one (an S3 object's, for the root alone), else
/// the extension's (`?filename=`, else the last path segment), else sniffed from its first bytes.
fn file_plan(
    node: &Node,
    request: &GatewayRequest,
    cid: Cid,
    size: u64,
    root_block: &Bytes,
    recorded: Option<&str>,
    name: Option<&str>,
) -> Result<Plan, GatewayError> {
    let known = recorded
        .filter(|t| HeaderValue::from_str(t).is_ok())
        .map(str::to_owned)
        .or_else(|| {
            [request.filename.as_deref(), name]
                .into_iter()
                .flatten()
                .find_map(content_type::from_extension)
                .map(str::to_owned)
        });
    if is_identity(&cid) {
        // no block to stream: the bytes are the CID's digest
        let content_type = known.unwrap_or_else(|| content_type::sniff(root_block).to_owned());
        return Ok(Plan::Block {
            cid,
            data: root_block.clone(),
            content_type,
        });
    }
    let content_type = match known {
        Some(t) => t,
        None => {
            let mut head = Vec::new();
            for piece in node.files().cat(cid, Some(0..SNIFF_LEN)) {
                head.extend_from_slice(&piece?);
            }
            content_type::sniff(&head).to_owned()
        }
    };
    Ok(Plan::File {
        cid,
        size,
        content_type,
    })
}

/// The content type of a non-UnixFS block shown deserialized, by its codec.
fn codec_content_type(cid: &Cid) -> Result<&'static str, GatewayError> {
    match cid.codec() {
        0x71 => Ok("application/vnd.ipld.dag-cbor"),
        0x0129 => Ok("application/vnd.ipld.dag-json"),
        0x51 => Ok("application/cbor"),
        0x0200 => Ok("application/json"),
        _ => Err(GatewayError::NotAcceptable(format!(
            "{cid} is not UnixFS: ask for ?format=raw or ?format=car"
        ))),
    }
}

fn value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// `Content-Disposition` with `filename` (ASCII, non-ASCII as `_`) and `filename*` (UTF-8).
fn disposition(kind: &str, filename: &str) -> Option<HeaderValue> {
    let ascii: String = filename
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let mut v = format!("{kind}; filename=\"{ascii}\"");
    if ascii != filename {
        let _ = write!(
            v,
            "; filename*=UTF-8''{}",
            utf8_percent_encode(filename, NON_ALPHANUMERIC)
        );
    }
    value(&v)
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` matches).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// The `ETag` of a CAR: root, order, dups, scope, entity-bytes and (hashed) path.
fn car_etag(request: &GatewayRequest) -> String {
    let mut tag = format!("{}.car.dfs.n.{}", request.root, request.scope);
    if let Some(bytes) = request.entity_bytes {
        let _ = write!(tag, ".{bytes}");
    }
    if !request.segments.is_empty() {
        let digest = Sha256::digest(request.selection().path.as_bytes());
        tag.push_str(".p");
        for b in &digest[..8] {
            let _ = write!(tag, "{b:02x}");
        }
    }
    format!("\"{tag}\"")
}

struct Answer {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Body,
}

impl Answer {
    fn new(status: StatusCode) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Body::empty(),
        }
    }

    fn header(mut self, name: HeaderName, v: Option<HeaderValue>) -> Self {
        if let Some(v) = v {
            self.headers.push((name, v));
        }
        self
    }

    fn text(self, name: HeaderName, v: &str) -> Self {
        self.header(name, value(v))
    }

    /// A body held in memory, with its `Content-Length` (sent for HEAD too).
    fn bytes(mut self, data: Bytes, with_body: bool) -> Self {
        self = self.text(header::CONTENT_LENGTH, &data.len().to_string());
        if with_body {
            self.body = Body::from(data);
        }
        self
    }

    fn into_response(self) -> Response {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        response.headers_mut().extend(self.headers);
        response
    }
}

/// The `ETag` of what `plan` answers.
fn etag(request: &GatewayRequest, plan: &Plan) -> Option<String> {
    Some(match plan {
        Plan::Redirect => return None,
        Plan::File { cid, .. } | Plan::Block { cid, .. } => format!("\"{cid}\""),
        Plan::Listing { cid, .. } => {
            format!("\"DirIndex-{}_CID-{cid}\"", listing::LISTING_VERSION)
        }
        Plan::Raw { cid, .. } => format!("\"{cid}.raw\""),
        Plan::Car => car_etag(request),
    })
}

/// Builds the response; bodies (and the block reads behind them) only for a GET that is not
/// answered 304.
fn respond(
    node: &Node,
    request: &GatewayRequest,
    req: &Parts,
    planned: Planned,
) -> Result<Response, GatewayError> {
    let roots: Vec<String> = planned.roots.iter().map(Cid::to_string).collect();
    let head = |status| {
        Answer::new(status)
            .text(header::CACHE_CONTROL, IMMUTABLE)
            .text(
                HeaderName::from_static("x-ipfs-path"),
                &request.content_path,
            )
            .text(HeaderName::from_static("x-ipfs-roots"), &roots.join(","))
            .text(header::VARY, "Accept")
    };
    let etag = etag(request, &planned.plan);
    if let Some(etag) = &etag
        && not_modified(&req.headers, etag)
    {
        return Ok(head(StatusCode::NOT_MODIFIED)
            .text(header::ETAG, etag)
            .into_response());
    }
    let with_body = req.method == Method::GET;
    let content_location = request.format_from_accept.then(|| {
        let format = request.format.query_value();
        match request.query.as_deref() {
            Some(q) if !q.is_empty() => format!("{}?{q}&format={format}", request.content_path),
            _ => format!("{}?format={format}", request.content_path),
        }
    });
    let content_location = content_location.as_deref().and_then(value);
    let attachment = |default: String| {
        let name = request.filename.clone().unwrap_or(default);
        disposition("attachment", &name)
    };
    let inline = || {
        let kind = if request.download {
            "attachment"
        } else {
            "inline"
        };
        match &request.filename {
            Some(name) => disposition(kind, name),
            None if request.download => value("attachment"),
            None => None,
        }
    };

    let answer = match planned.plan {
        Plan::Redirect => {
            let mut location = format!("{}/", request.content_path);
            if let Some(q) = request.query.as_deref().filter(|q| !q.is_empty()) {
                location.push('?');
                location.push_str(q);
            }
            head(StatusCode::MOVED_PERMANENTLY).text(header::LOCATION, &location)
        }
        Plan::File {
            cid,
            size,
            content_type,
        } => {
            let range = header_str(&req.headers, header::RANGE);
            let (status, range) = match parse_range(range, size) {
                RangeRequest::Whole => (StatusCode::OK, None),
                RangeRequest::Single(r) => (StatusCode::PARTIAL_CONTENT, Some(r)),
                RangeRequest::Unsatisfiable => {
                    return Err(GatewayError::RangeNotSatisfiable { size });
                }
            };
            let length = range.as_ref().map_or(size, |r| r.end - r.start);
            let mut answer = head(status)
                .text(header::CONTENT_TYPE, &content_type)
                .text(header::CONTENT_LENGTH, &length.to_string())
                .text(header::ACCEPT_RANGES, "bytes")
                .text(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
                .header(header::CONTENT_DISPOSITION, inline());
            if let Some(Range { start, end }) = &range {
                answer = answer.text(
                    header::CONTENT_RANGE,
                    &format!("bytes {start}-{}/{size}", end - 1),
                );
            }
            if with_body {
                answer.body = Body::from_stream(node.files().cat_stream(cid, range));
            }
            answer
        }
        Plan::Listing { html, .. } => head(StatusCode::OK)
            .text(header::CONTENT_TYPE, content_type::HTML)
            .text(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .bytes(html.into(), with_body),
        Plan::Block {
            data, content_type, ..
        } => head(StatusCode::OK)
            .text(header::CONTENT_TYPE, &content_type)
            .text(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::CONTENT_DISPOSITION, inline())
            .bytes(data, with_body),
        Plan::Raw { cid, data } => head(StatusCode::OK)
            .text(header::CONTENT_TYPE, RAW_TYPE)
            .text(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(
                header::CONTENT_DISPOSITION,
                attachment(format!("{cid}.bin")),
            )
            .header(header::CONTENT_LOCATION, content_location)
            .bytes(data, with_body),
        Plan::Car => {
            let root = request.root;
            let mut answer = head(StatusCode::OK)
                .text(header::CONTENT_TYPE, CAR_TYPE)
                .text(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
                .text(header::ACCEPT_RANGES, "none")
                .header(
                    header::CONTENT_DISPOSITION,
                    attachment(format!("{root}.car")),
                )
                .header(header::CONTENT_LOCATION, content_location);
            if with_body {
                answer.body = Body::from_stream(node.files().car_stream(root, request.selection()));
            }
            answer
        }
    };
    Ok(answer
        .header(header::ETAG, etag.as_deref().and_then(value))
        .into_response())
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions() {
        assert_eq!(
            disposition("attachment", "a.car").unwrap(),
            "attachment; filename=\"a.car\""
        );
        assert_eq!(
            disposition("inline", "testтест.pdf").unwrap(),
            "inline; filename=\"test____.pdf\"; filename*=UTF-8''test%D1%82%D0%B5%D1%81%D1%82%2Epdf"
        );
        assert_eq!(
            disposition("inline", "a\"b\r\n.txt").unwrap(),
            "inline; filename=\"a_b__.txt\"; filename*=UTF-8''a%22b%0D%0A%2Etxt"
        );
    }

    #[test]
    fn if_none_match() {
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, "\"x\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"x\""),
        );
        assert!(not_modified(&h, "\"x\""));
        assert!(!not_modified(&h, "\"y\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, "\"y\""));
    }
}
