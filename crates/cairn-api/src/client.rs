//! [`HttpApi`]: the [`NodeApi`] of a running node over HTTP — the node on this data folder
//! (its `api.toml` names the loopback listener and token) or a node elsewhere through its
//! gateway listener, with its secret or a login token. Blocking (ureq): the CLI's calls.

use std::io::{Read, Write};
use std::path::Path;

use cairn_node::CidVersion;
use cairn_node::replication::RepairMode;
use cairn_node::snapshot::Forget;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;

use crate::ApiError;
use crate::api::{Call, CallError, NodeApi, mode_name};
use crate::types::*;

/// What a query value keeps as it is: unreserved characters and `/` (paths read better).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A query value, percent-encoded.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

/// An HTTP response.
type Response = ureq::http::Response<ureq::Body>;

fn transport(e: ureq::Error) -> CallError {
    CallError::Transport(e.to_string())
}

/// The HTTP client: `https://` URLs are verified against `ca_cert` (a PEM file) when given,
/// else against the public web roots.
pub fn agent(ca_cert: Option<&Path>) -> Result<ureq::Agent, CallError> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(5)));
    if let Some(path) = ca_cert {
        let bad = |why: String| {
            CallError::Unsupported(format!("the CA certificate {}: {why}", path.display()))
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".into()));
        }
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    Ok(config.build().into())
}

/// A success as it is; an error answer as [`CallError::Api`] with the node's message.
fn check(mut resp: Response) -> Call<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or(text);
    let status = axum::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    Err(ApiError::new(status, message).into())
}

fn json<T: DeserializeOwned>(resp: Response) -> Call<T> {
    serde_json::from_reader(resp.into_body().into_reader())
        .map_err(|e| CallError::Decode(e.to_string()))
}

/// Logs in to the node at `url` (allowlist mode) with `identity`: signs the current time,
/// answers the token.
pub fn login(
    url: &str,
    identity: &cairn_crypt::identity::Identity,
    agent: &ureq::Agent,
) -> Call<String> {
    #[derive(serde::Deserialize)]
    struct Key {
        public_key: String,
    }
    #[derive(serde::Deserialize)]
    struct Token {
        token: String,
    }
    let url = url.trim_end_matches('/');
    // A login names the node it is for (its key), so it cannot be replayed at another.
    let resp = agent
        .get(format!("{url}/api/v1/pubkey"))
        .call()
        .map_err(transport)?;
    let key: Key = json(check(resp)?)?;
    let audience: [u8; 32] = hex::decode(&key.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CallError::Decode("the node's key is not 32 bytes of hex".into()))?;
    let epoch_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let body = serde_json::json!({
        "public_key": identity.public().to_string(),
        "epoch_ms": epoch_ms,
        "signature": hex::encode(identity.sign_login(&audience, epoch_ms)),
    });
    let resp = agent
        .post(format!("{url}/api/v1/login"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .map_err(transport)?;
    Ok(json::<Token>(check(resp)?)?.token)
}

/// A running node's `/api/v0`.
pub struct HttpApi {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl HttpApi {
    /// The API under `url` (`http[s]://host:port`), with `token`; nothing is called yet.
    pub fn new(url: &str, token: String, agent: ureq::Agent) -> HttpApi {
        HttpApi {
            base: format!("{}/api/v0", url.trim_end_matches('/')),
            token,
            agent,
        }
    }

    /// The node at `url` (its gateway listener), with `token` (its secret or a login token) or
    /// else a login with `identity`; checked with a first call.
    pub fn connect(
        url: &str,
        token: Option<String>,
        identity: Option<&cairn_crypt::identity::Identity>,
        agent: ureq::Agent,
    ) -> Call<HttpApi> {
        let token = match (token, identity) {
            (Some(t), _) => t,
            (None, Some(id)) => login(url, id, &agent)?,
            (None, None) => String::new(),
        };
        let api = HttpApi::new(url, token, agent);
        let resp = api.request("/id").call().map_err(transport)?;
        if resp.status() == ureq::http::StatusCode::NOT_FOUND {
            return Err(CallError::Unsupported(format!(
                "{url} serves no node API: give its gateway address, and the node must not be \
                 in public mode (the remote API needs [api] security = \"secret\" or \"allowlist\")"
            )));
        }
        check(resp).map_err(|e| match e {
            CallError::Api(a) => CallError::Api(ApiError::new(
                a.status(),
                format!("{url} refused the credentials: {a}"),
            )),
            e => e,
        })?;
        Ok(api)
    }

    fn request(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
    }

    fn get(&self, path: &str) -> Call<Response> {
        check(self.request(path).call().map_err(transport)?)
    }

    fn post_body(&self, path: &str, body: &mut dyn Read, content_type: &str) -> Call<Response> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .send(ureq::SendBody::from_reader(body))
            .map_err(transport)?;
        check(resp)
    }

    fn post(&self, path: &str) -> Call<Response> {
        self.post_body(path, &mut std::io::empty(), "application/octet-stream")
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> Call<T> {
        json(self.get(path)?)
    }

    fn post_json<T: DeserializeOwned>(&self, path: &str) -> Call<T> {
        json(self.post(path)?)
    }

    /// Streams an answer's body to `out`: a read that fails is the node's answer cut off
    /// ([`CallError::Transport`]), a write that fails is the caller's output
    /// ([`CallError::Io`], e.g. a closed pipe or a full disk).
    fn copy(resp: Response, out: &mut dyn Write) -> Call<()> {
        let mut body = resp.into_body().into_reader();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CallError::Transport(e.to_string())),
            };
            out.write_all(&buf[..n])?;
        }
    }
}

impl NodeApi for HttpApi {
    fn id(&self) -> Call<Id> {
        self.get_json("/id")
    }

    fn peers(&self) -> Call<Vec<Peer>> {
        self.get_json("/swarm/peers")
    }

    fn dial(&self, addr: &str) -> Call<Connected> {
        self.post_json(&format!("/swarm/connect?arg={}", encode(addr)))
    }

    fn providers(&self, cid: &str) -> Call<Vec<String>> {
        self.get_json(&format!("/routing/findprovs?arg={}", encode(cid)))
    }

    fn workers(&self) -> Call<Vec<Worker>> {
        self.get_json("/workers")
    }

    fn margins(&self, bucket: Option<&str>, key: Option<&str>, hard: bool) -> Call<BucketMargins> {
        let mut query = format!("/cluster/margins?hard={hard}");
        if let Some(b) = bucket {
            query += &format!("&bucket={}", encode(b));
        }
        if let Some(k) = key {
            query += &format!("&key={}", encode(k));
        }
        self.get_json(&query)
    }

    fn cluster_check(&self, mode: RepairMode) -> Call<ClusterCheck> {
        self.post_json(&format!("/cluster/check?mode={}", mode_name(mode)))
    }

    fn add(&self, body: &mut dyn Read, version: CidVersion, pin: bool) -> Call<Added> {
        let path = format!("/add?cid_version={}&pin={pin}", u8::from(version));
        json(self.post_body(&path, body, "application/octet-stream")?)
    }

    fn add_many(&self, frames: &mut dyn Read, version: CidVersion) -> Call<Vec<Added>> {
        let path = format!("/add/many?cid_version={}", u8::from(version));
        json(self.post_body(&path, frames, "application/octet-stream")?)
    }

    fn tree(
        &self,
        manifest: &TreeManifest,
        version: CidVersion,
        pin: bool,
        snapshot: Option<&str>,
    ) -> Call<TreeBuilt> {
        let mut path = format!("/tree?cid_version={}&pin={pin}", u8::from(version));
        if let Some(name) = snapshot {
            path += &format!("&snapshot={}", encode(name));
        }
        let body = serde_json::to_vec(manifest).map_err(|e| CallError::Decode(e.to_string()))?;
        json(self.post_body(&path, &mut body.as_slice(), "application/json")?)
    }

    fn cat(&self, path: &str, offset: u64, length: Option<u64>, out: &mut dyn Write) -> Call<()> {
        let mut q = format!("/cat?arg={}", encode(path));
        if offset > 0 {
            q += &format!("&offset={offset}");
        }
        if let Some(l) = length {
            q += &format!("&length={l}");
        }
        Self::copy(self.get(&q)?, out)
    }

    fn ls(&self, path: &str) -> Call<Vec<Entry>> {
        self.get_json(&format!("/ls?arg={}", encode(path)))
    }

    fn stat(&self, path: &str) -> Call<Stat> {
        self.get_json(&format!("/stat?arg={}", encode(path)))
    }

    fn check(&self, path: &str, hard: bool) -> Call<Checked> {
        self.get_json(&format!("/check?arg={}&hard={hard}", encode(path)))
    }

    fn gc(&self) -> Call<Collected> {
        self.post_json("/gc")
    }

    fn scrub(&self) -> Call<Scrubbed> {
        self.post_json("/scrub")
    }

    fn pins(&self) -> Call<Vec<Pin>> {
        self.get_json("/pin/ls")
    }

    fn pin(&self, path: &str) -> Call<Pinned> {
        self.post_json(&format!("/pin/add?arg={}", encode(path)))
    }

    fn unpin(&self, path: &str) -> Call<Pinned> {
        self.post_json(&format!("/pin/rm?arg={}", encode(path)))
    }

    fn car_export(&self, path: &str, out: &mut dyn Write) -> Call<()> {
        Self::copy(self.get(&format!("/car/export?arg={}", encode(path)))?, out)
    }

    fn car_import(&self, car: &mut dyn Read, pin: bool) -> Call<CarImported> {
        let path = format!("/car/import?pin={pin}");
        json(self.post_body(&path, car, "application/octet-stream")?)
    }

    fn create_key(&self, user: &str) -> Call<NewKey> {
        self.post_json(&format!("/key/create?user={}", encode(user)))
    }

    fn keys(&self) -> Call<Vec<Key>> {
        self.get_json("/key/list")
    }

    fn delete_key(&self, access: &str) -> Call<Deleted> {
        self.post_json(&format!("/key/delete?arg={}", encode(access)))
    }

    fn sftp_add(
        &self,
        name: &str,
        key: &str,
        quota: Option<u64>,
        policy: Option<&str>,
    ) -> Call<Account> {
        self.post_json(&format!(
            "/sftp/add?name={}&key={}{}",
            encode(name),
            encode(key),
            quota_policy(quota, policy)
        ))
    }

    fn sftp_list(&self) -> Call<Vec<Account>> {
        self.get_json("/sftp/list")
    }

    fn sftp_usage(&self, name: &str) -> Call<AccountUsage> {
        self.get_json(&format!("/sftp/usage?arg={}", encode(name)))
    }

    fn sftp_remove(&self, name: &str) -> Call<Deleted> {
        self.post_json(&format!("/sftp/remove?arg={}", encode(name)))
    }

    fn sftp_set_quota(
        &self,
        name: &str,
        quota: Option<u64>,
        policy: Option<&str>,
    ) -> Call<Account> {
        let quota = quota.map_or("none".to_owned(), |q| q.to_string());
        let policy = policy.map_or(String::new(), |p| format!("&policy={}", encode(p)));
        self.post_json(&format!(
            "/sftp/set-quota?arg={}&quota={quota}{policy}",
            encode(name)
        ))
    }

    fn buckets(&self) -> Call<Vec<Bucket>> {
        self.get_json("/bucket/list")
    }

    fn set_public(&self, bucket: &str, public: bool) -> Call<Public> {
        self.post_json(&format!(
            "/bucket/set-public?arg={}&off={}",
            encode(bucket),
            !public
        ))
    }

    fn root(&self, bucket: &str) -> Call<Root> {
        self.get_json(&format!("/bucket/root?arg={}", encode(bucket)))
    }

    fn history(&self, bucket: &str) -> Call<Vec<Root>> {
        self.get_json(&format!("/bucket/history?arg={}", encode(bucket)))
    }

    fn restore(&self, bucket: &str, root: &str) -> Call<Restored> {
        self.post_json(&format!(
            "/bucket/restore?arg={}&root={}",
            encode(bucket),
            encode(root)
        ))
    }

    fn head(&self, bucket: &str) -> Call<Vec<u8>> {
        let mut resp = self.get(&format!("/bucket/head?arg={}", encode(bucket)))?;
        resp.body_mut()
            .read_to_vec()
            .map_err(|e| CallError::Transport(e.to_string()))
    }

    fn promote(&self, bucket: &str, force: bool) -> Call<Promoted> {
        self.post_json(&format!(
            "/bucket/promote?arg={}&force={force}",
            encode(bucket)
        ))
    }

    fn redundancy(&self, bucket: &str, set: Option<&str>) -> Call<Redundancy> {
        let path = format!("/bucket/redundancy?arg={}", encode(bucket));
        match set {
            Some(p) => self.post_json(&format!("{path}&policy={}", encode(p))),
            None => self.get_json(&path),
        }
    }

    fn import_bucket(&self, bucket: &str, car: &mut dyn Read) -> Call<BucketImported> {
        let path = format!("/bucket/import?arg={}", encode(bucket));
        json(self.post_body(&path, car, "application/octet-stream")?)
    }

    fn create_bucket(&self, bucket: &str, encrypted: bool) -> Call<Encryption> {
        self.post_json(&format!(
            "/bucket/create?arg={}&encrypted={encrypted}",
            encode(bucket)
        ))
    }

    fn encryption(&self, bucket: &str, set: Option<bool>) -> Call<Encryption> {
        let path = format!("/bucket/encryption?arg={}", encode(bucket));
        match set {
            Some(on) => self.post_json(&format!("{path}&on={on}")),
            None => self.get_json(&path),
        }
    }

    fn share(&self, target: &str, to: &str, expires_ms: Option<i64>) -> Call<Shared> {
        let mut path = format!("/share?arg={}&to={}", encode(target), encode(to));
        if let Some(ms) = expires_ms {
            path += &format!("&expires_ms={ms}");
        }
        self.post_json(&path)
    }

    fn revoke(&self, target: &str, to: &str) -> Call<Revoked> {
        self.post_json(&format!(
            "/share?arg={}&to={}&revoke=true",
            encode(target),
            encode(to)
        ))
    }

    fn user(&self) -> Call<User> {
        self.get_json("/user")
    }

    fn snapshot_add(&self, name: &str, path: &str) -> Call<Snapshot> {
        self.post_json(&format!(
            "/snapshot/add?name={}&arg={}",
            encode(name),
            encode(path)
        ))
    }

    fn snapshots(&self, name: Option<&str>) -> Call<Vec<Snapshot>> {
        match name {
            Some(n) => self.get_json(&format!("/snapshot/ls?name={}", encode(n))),
            None => self.get_json("/snapshot/ls"),
        }
    }

    fn snapshot_rm(&self, name: &str, which: &Forget) -> Call<Vec<Snapshot>> {
        let which = match which {
            Forget::All => "all=true".to_owned(),
            Forget::Cid(cid) => format!("arg={cid}"),
            Forget::KeepLast(n) => format!("keep_last={n}"),
        };
        self.post_json(&format!("/snapshot/rm?name={}&{which}", encode(name)))
    }

    fn repo_stat(&self) -> Call<RepoStat> {
        self.get_json("/repo/stat")
    }
}

/// The optional `&quota=…&policy=…` of an account request.
fn quota_policy(quota: Option<u64>, policy: Option<&str>) -> String {
    let mut query = String::new();
    if let Some(q) = quota {
        query.push_str(&format!("&quota={q}"));
    }
    if let Some(p) = policy {
        query.push_str(&format!("&policy={}", encode(p)));
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded_but_paths_read() {
        assert_eq!(encode("Qm/a b/ü?&="), "Qm/a%20b/%C3%BC%3F%26%3D");
        assert_eq!(encode("-_.~"), "-_.~");
    }
}
