//! Reading a gateway request: the content path (`/ipfs/{cid}[/path]`), the response format
//! (`?format=` over `Accept`), CAR parameters (`dag-scope`, `entity-bytes`, `car-*` and the
//! `Accept` parameters `version`, `order`, `dups`) and `filename` / `download`. Pure: no I/O.

use axum::http::{HeaderMap, Uri, header};
use cairn_dag::Cid;
use cairn_dag::car::{CarSelection, DagScope, EntityBytes};
use percent_encoding::percent_decode_str;

use crate::GatewayError;

/// The response type asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Files, directory listings: the path gateway.
    Deserialized,
    /// `application/vnd.ipld.raw`: one block.
    Raw,
    /// `application/vnd.ipld.car`: a CARv1 stream.
    Car,
}

impl Format {
    /// The `?format=` spelling.
    pub(crate) fn query_value(self) -> &'static str {
        match self {
            Format::Deserialized => "",
            Format::Raw => "raw",
            Format::Car => "car",
        }
    }
}

/// A parsed `/ipfs/` request.
#[derive(Debug, Clone)]
pub(crate) struct GatewayRequest {
    /// The CID in the URL.
    pub root: Cid,
    /// Decoded path segments below it (no empty ones).
    pub segments: Vec<String>,
    /// Whether the URL path ends in `/`.
    pub trailing_slash: bool,
    /// The URL path as received (still percent-encoded): `X-Ipfs-Path`, redirects.
    pub content_path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The response type.
    pub format: Format,
    /// The format came from `Accept`, not `?format=` (answer with `Content-Location`).
    pub format_from_accept: bool,
    /// `dag-scope` (default `all`; `entity` when only `entity-bytes` is given).
    pub scope: DagScope,
    /// `entity-bytes`.
    pub entity_bytes: Option<EntityBytes>,
    /// `?filename=`.
    pub filename: Option<String>,
    /// `?download=true`.
    pub download: bool,
}

impl GatewayRequest {
    /// The CAR selection this request names.
    pub(crate) fn selection(&self) -> CarSelection {
        CarSelection {
            path: self.segments.join("/"),
            scope: self.scope,
            bytes: self.entity_bytes,
        }
    }
}

fn bad(msg: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest(msg.into())
}

/// `application/x-www-form-urlencoded` pairs (`+` is a space); undecodable ones are an error.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, GatewayError> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad(format!("query {query:?} is not UTF-8")))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// One entry of an `Accept` header: type, parameters (lower-case names), quality.
struct MediaRange {
    essence: String,
    params: Vec<(String, String)>,
    q: f32,
}

fn accept_list(accept: &str) -> Vec<MediaRange> {
    let mut list: Vec<MediaRange> = accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let essence = parts.next()?.to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let mut q = 1.0;
            let mut params = Vec::new();
            for p in parts {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"'));
                if k == "q" {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v.to_owned()));
                }
            }
            Some(MediaRange { essence, params, q })
        })
        .filter(|m| m.q > 0.0)
        .collect();
    list.sort_by(|a, b| b.q.total_cmp(&a.q)); // stable: ties keep the client's order
    list
}

/// Whether CAR parameters (`version`, `order`, `dups`) ask for something this gateway writes:
/// CARv1, depth-first (or unknown) order, no duplicates.
fn car_params_supported<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    params.into_iter().all(|(k, v)| match k {
        "version" => v == "1",
        "order" => v == "dfs" || v == "unk",
        "dups" => v == "n",
        _ => true,
    })
}

/// The format `Accept` names, if any; a CAR variant this gateway cannot write is 406 when
/// nothing else listed is acceptable.
fn format_from_accept(accept: &str) -> Result<Option<Format>, GatewayError> {
    let mut refused_car = false;
    for m in accept_list(accept) {
        match m.essence.as_str() {
            "application/vnd.ipld.raw" => return Ok(Some(Format::Raw)),
            "application/vnd.ipld.car" => {
                if car_params_supported(m.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
                    return Ok(Some(Format::Car));
                }
                refused_car = true;
            }
            _ => return Ok(None),
        }
    }
    if refused_car {
        return Err(GatewayError::NotAcceptable(
            "this gateway writes CARs with version=1; order=dfs; dups=n".into(),
        ));
    }
    Ok(None)
}

impl GatewayRequest {
    /// Parses the request line and headers.
    pub(crate) fn parse(uri: &Uri, headers: &HeaderMap) -> Result<Self, GatewayError> {
        let path = uri.path();
        let Some(rest) = path.strip_prefix("/ipfs/") else {
            if path == "/ipns" || path.starts_with("/ipns/") {
                return Err(GatewayError::NotImplemented(
                    "IPNS is not supported by this gateway: use /ipfs/{cid}".into(),
                ));
            }
            return Err(GatewayError::NotFound(
                "not found: request /ipfs/{cid}[/path]".into(),
            ));
        };
        let mut parts = rest.split('/');
        let cid_text = parts.next().unwrap_or_default();
        if cid_text.is_empty() {
            return Err(bad("missing CID: request /ipfs/{cid}[/path]"));
        }
        let root =
            Cid::try_from(cid_text).map_err(|e| bad(format!("invalid CID {cid_text:?}: {e}")))?;
        let mut segments = Vec::new();
        for raw in parts.filter(|s| !s.is_empty()) {
            let segment = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| bad(format!("path segment {raw:?} is not UTF-8")))?;
            if segment == "." || segment == ".." || segment.contains(['/', '\0']) {
                return Err(bad(format!("invalid path segment {raw:?}")));
            }
            segments.push(segment.into_owned());
        }

        let query = uri.query().map(str::to_owned);
        let pairs = query_pairs(query.as_deref().unwrap_or_default())?;
        let param = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };

        let (format, format_from_accept) = match param("format") {
            Some("raw") => (Format::Raw, false),
            Some("car") => (Format::Car, false),
            Some(other) => {
                return Err(bad(format!(
                    "unsupported format {other:?}: this gateway serves raw and car"
                )));
            }
            None => {
                let accept = headers
                    .get_all(header::ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect::<Vec<_>>()
                    .join(",");
                match format_from_accept(&accept)? {
                    Some(f) => (f, true),
                    None => (Format::Deserialized, false),
                }
            }
        };
        let car_query: Vec<(&str, &str)> = [
            ("version", param("car-version")),
            ("order", param("car-order")),
            ("dups", param("car-dups")),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        if !car_params_supported(car_query.iter().copied()) {
            return Err(bad(
                "unsupported car-version/car-order/car-dups: this gateway writes version=1, order=dfs, dups=n",
            ));
        }

        let scope = param("dag-scope")
            .map(str::parse::<DagScope>)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let entity_bytes = param("entity-bytes")
            .map(str::parse::<EntityBytes>)
            .transpose()
            .map_err(|e| bad(e.to_string()))?;
        let scope = match (scope, entity_bytes) {
            (Some(s), Some(_)) if s != DagScope::Entity => {
                return Err(bad("entity-bytes needs dag-scope=entity"));
            }
            (_, Some(_)) => DagScope::Entity,
            (s, None) => s.unwrap_or_default(),
        };

        let download = match param("download") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(format!(
                    "download must be true or false, not {other:?}"
                )));
            }
        };

        Ok(GatewayRequest {
            root,
            segments,
            trailing_slash: rest.ends_with('/'),
            content_path: path.to_owned(),
            query,
            format,
            format_from_accept,
            scope,
            entity_bytes,
            filename: param("filename")
                .filter(|f| !f.is_empty())
                .map(str::to_owned),
            download,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const V0: &str = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";

    fn parse(uri: &str, accept: Option<&str>) -> Result<GatewayRequest, GatewayError> {
        let mut headers = HeaderMap::new();
        if let Some(a) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        GatewayRequest::parse(&uri.parse().unwrap(), &headers)
    }

    fn status(r: Result<GatewayRequest, GatewayError>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|e| e.status().as_u16())
    }

    #[test]
    fn paths() {
        let r = parse(&format!("/ipfs/{V0}"), None).unwrap();
        assert_eq!(r.root.to_string(), V0);
        assert!(r.segments.is_empty() && !r.trailing_slash);
        assert_eq!(r.format, Format::Deserialized);
        let r = parse(&format!("/ipfs/{V0}/"), None).unwrap();
        assert!(r.segments.is_empty() && r.trailing_slash);
        let r = parse(&format!("/ipfs/{V0}/a%20b//c%C3%A9/?x=1"), None).unwrap();
        assert_eq!(r.segments, ["a b", "cé"]);
        assert!(r.trailing_slash);
        assert_eq!(r.content_path, format!("/ipfs/{V0}/a%20b//c%C3%A9/"));
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert_eq!(r.selection().path, "a b/cé");

        assert_eq!(status(parse("/ipfs/not-a-cid", None)), 400);
        assert_eq!(status(parse("/ipfs/", None)), 400);
        assert_eq!(status(parse("/", None)), 404);
        assert_eq!(status(parse("/ipfsx/abc", None)), 404);
        assert_eq!(status(parse("/ipns/example.com", None)), 501);
        for bad in ["..", ".", "a%2Fb", "%FF", "a%00"] {
            assert_eq!(
                status(parse(&format!("/ipfs/{V0}/{bad}"), None)),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn formats() {
        let f = |uri: &str, accept| parse(uri, accept).map(|r| (r.format, r.format_from_accept));
        let base = format!("/ipfs/{V0}");
        assert_eq!(
            f(&format!("{base}?format=raw"), None).unwrap(),
            (Format::Raw, false)
        );
        assert_eq!(
            f(&format!("{base}?format=car"), None).unwrap(),
            (Format::Car, false)
        );
        assert_eq!(
            f(&base, Some("application/vnd.ipld.raw")).unwrap(),
            (Format::Raw, true)
        );
        assert_eq!(
            f(
                &base,
                Some("application/vnd.ipld.car; version=1; order=dfs; dups=n")
            )
            .unwrap(),
            (Format::Car, true)
        );
        // the query wins over Accept
        assert_eq!(
            f(
                &format!("{base}?format=raw"),
                Some("application/vnd.ipld.car")
            )
            .unwrap(),
            (Format::Raw, false)
        );
        // quality order, then the client's order
        assert_eq!(
            f(
                &base,
                Some("application/vnd.ipld.raw;q=0.5, application/vnd.ipld.car")
            )
            .unwrap(),
            (Format::Car, true)
        );
        assert_eq!(
            f(&base, Some("text/html,application/vnd.ipld.raw;q=0.9")).unwrap(),
            (Format::Deserialized, false)
        );
        assert_eq!(
            f(
                &base,
                Some("application/vnd.ipld.car;dups=y, application/vnd.ipld.car;q=0.5")
            )
            .unwrap(),
            (Format::Car, true)
        );
        assert_eq!(
            status(parse(&base, Some("application/vnd.ipld.car;dups=y"))),
            406
        );
        assert_eq!(
            status(parse(&base, Some("application/vnd.ipld.car;version=2"))),
            406
        );
        assert_eq!(status(parse(&format!("{base}?format=tar"), None)), 400);
        assert_eq!(status(parse(&format!("{base}?format="), None)), 400);
        assert_eq!(
            status(parse(&format!("{base}?format=car&car-dups=y"), None)),
            400
        );
        assert_eq!(
            status(parse(
                &format!("{base}?format=car&car-version=1&car-order=dfs&car-dups=n"),
                None
            )),
            200
        );
    }

    #[test]
    fn scopes() {
        let base = format!("/ipfs/{V0}?format=car");
        let r = parse(&base, None).unwrap();
        assert_eq!((r.scope, r.entity_bytes), (DagScope::All, None));
        let r = parse(&format!("{base}&dag-scope=block"), None).unwrap();
        assert_eq!(r.scope, DagScope::Block);
        let r = parse(&format!("{base}&entity-bytes=-10:*"), None).unwrap();
        assert_eq!(r.scope, DagScope::Entity);
        assert_eq!(
            r.entity_bytes,
            Some(EntityBytes {
                from: -10,
                to: None
            })
        );
        let r = parse(
            &format!("{base}&dag-scope=entity&entity-bytes=0%3A99"),
            None,
        )
        .unwrap();
        assert_eq!(
            r.entity_bytes,
            Some(EntityBytes {
                from: 0,
                to: Some(99)
            })
        );
        for bad in [
            "dag-scope=x",
            "dag-scope=",
            "entity-bytes=x",
            "entity-bytes=5:1",
            "dag-scope=all&entity-bytes=0:1",
            "download=maybe",
            "filename=%FF",
        ] {
            assert_eq!(status(parse(&format!("{base}&{bad}"), None)), 400, "{bad}");
        }
    }

    #[test]
    fn filename_and_download() {
        let r = parse(
            &format!("/ipfs/{V0}?filename=a+b%2Bc.txt&download=true"),
            None,
        )
        .unwrap();
        assert_eq!(r.filename.as_deref(), Some("a b+c.txt"));
        assert!(r.download);
    }
}
