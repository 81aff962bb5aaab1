//! `cairn serve`'s settings: flags, else the TOML config file (`--config`, or `cairn.toml` in
//! the data folder when present), else defaults; the root credentials and the API secret
//! files; size, duration and retention parsing. Nothing here starts anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use cairn_node::CidVersion;
use serde::{Deserialize, Serialize};

/// `cairn serve`'s flags (each overrides the TOML file, which overrides the defaults).
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML config file (default: cairn.toml in the data folder, when present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// S3 listen address (default 127.0.0.1:8000).
    #[arg(long)]
    pub s3_listen: Option<std::net::SocketAddr>,
    /// Local API listen address for the CLI (default 127.0.0.1:5001).
    #[arg(long)]
    pub api_listen: Option<std::net::SocketAddr>,
    /// IPFS HTTP gateway listen address (default 127.0.0.1:8080).
    #[arg(long)]
    pub gateway_listen: Option<std::net::SocketAddr>,
    /// Prometheus /metrics listen address (default 127.0.0.1:9464).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// SFTP listen address for the accounts' home folders (off unless set here or as
    /// `[sftp] listen`; accounts: `cairn sftp add`).
    #[arg(long)]
    pub sftp_listen: Option<std::net::SocketAddr>,
    /// libp2p listen multiaddrs (default /ip4/127.0.0.1/tcp/4001 and its QUIC twin).
    #[arg(long)]
    pub p2p_listen: Vec<String>,
    /// Peers to connect to at start (multiaddrs ending in `/p2p/<id>`).
    #[arg(long)]
    pub bootstrap: Vec<String>,
    /// CID version of new objects: 0 (what `ipfs add` gives, default) or 1.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub cid_version: Option<u8>,
    /// Seconds between background garbage collections (default 3600; 0: never).
    #[arg(long)]
    pub gc_interval: Option<u64>,
    /// Serve S3, the gateway and the APIs over TLS with this PEM certificate chain (with
    /// `--tls-key`; or `[tls] cert` in the config).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Join a cluster with a token from `cairn cluster invite` on one of its nodes (kept in
    /// `cluster.toml` in the data folder; its addresses are dialled at start).
    #[arg(long)]
    pub join: Option<String>,
}

/// Settings of `serve`, as in the TOML file (every field optional there).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// S3 listen address.
    pub s3_listen: Option<SocketAddr>,
    /// Local API listen address (for the CLI while the node runs).
    pub api_listen: Option<SocketAddr>,
    /// IPFS HTTP gateway listen address.
    pub gateway_listen: Option<SocketAddr>,
    /// Prometheus `/metrics` listen address.
    pub metrics_listen: Option<SocketAddr>,
    /// `public` (default): the gateway serves published CIDs only; `all`: every stored CID.
    pub gateway_policy: Option<String>,
    /// CID version of new objects (0 = what `ipfs add` gives; 1 = CIDv1 raw leaves).
    pub cid_version: Option<u8>,
    /// Seconds between background garbage collections (0: never).
    pub gc_interval_secs: Option<u64>,
    /// How long old bucket roots stay pinned: `30d` (default), `12h`, `90m`, `3600s` or
    /// `forever`.
    pub history_retention: Option<String>,
    /// libp2p listen multiaddrs.
    pub p2p_listen: Option<Vec<String>>,
    /// Peers to connect to at start.
    pub bootstrap: Option<Vec<String>>,
    /// A go-ipfs style `swarm.key` file: the pre-shared key of a private network (TCP only).
    pub swarm_key_file: Option<PathBuf>,
    /// Only these peer ids may connect.
    pub allow_peers: Option<Vec<String>>,
    /// Kademlia protocol (`/cairn/kad/1.0.0` by default; `/ipfs/kad/1.0.0` joins IPFS's DHT).
    pub kad_protocol: Option<String>,
    /// Addresses put in provider records (default: the listen addresses).
    pub announce: Option<Vec<String>>,
    /// How often every root is announced again: `12h` (default), `30m`, ... (`d h m s`).
    pub reprovide_interval: Option<String>,
    /// `[storage]`: how data is kept across the cluster.
    pub storage: Option<StorageConfig>,
    /// `[api]`: the `/api/v1` REST API on the gateway listener.
    pub api: Option<ApiConfig>,
    /// `[tls]`: serve S3, the gateway and the APIs over TLS.
    pub tls: Option<TlsConfig>,
    /// `[sftp]`: the SFTP door.
    pub sftp: Option<SftpFileConfig>,
}

/// The `[sftp]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpFileConfig {
    /// Listen address (the `--sftp-listen` flag wins).
    pub listen: Option<SocketAddr>,
}

/// The `[tls]` table: PEM files (the `--tls-cert`/`--tls-key` flags win).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The certificate and key from the flags, else from `[tls]`.
fn tls_files(args: &ServeArgs, file: Option<&TlsConfig>) -> Result<Option<TlsConfig>> {
    Ok(match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        }),
        (None, None) => file.cloned(),
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    })
}

/// The `[api]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `"secret"` (default: `Authorization: Bearer SECRET`, the secret from
    /// `CAIRN_API_SECRET` or `api-secret` in the data folder, generated on first start),
    /// `"allowlist"` (a login token of a user key in `allow`) or `"public"` (anyone; the
    /// remote CLI API `/api/v0` is then not served on the gateway listener).
    pub security: Option<String>,
    /// `allowlist` mode: the users' public keys (`cpk1…`, as `cairn user create` prints).
    pub allow: Option<Vec<String>>,
    /// How long a login token is valid (`24h` default).
    pub token_ttl: Option<String>,
    /// How far a login's signed time may be from the node's clock (`5m` default).
    pub login_skew: Option<String>,
    /// Largest upload accepted: `10GiB` (default), `512MiB`, `100KiB` or bytes.
    pub max_upload: Option<String>,
    /// How long finished upload jobs stay readable (`7d` default; `d h m s`).
    pub job_retention: Option<String>,
    /// Longest a `GET /api/v1/jobs/{id}?wait=true` is held (`30s` default).
    pub long_poll: Option<String>,
}

/// The security mode, before the secret is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Anyone.
    Public,
    /// The shared secret.
    Secret,
    /// Login tokens of these users.
    Allowlist(Vec<cairn_crypt::identity::PublicId>),
}

/// Effective `/api/v1` settings.
#[derive(Debug, Clone)]
pub struct V1Settings {
    /// Who may call the APIs on the gateway listener.
    pub mode: Mode,
    /// Login token lifetime.
    pub token_ttl: Duration,
    /// Login clock-skew window.
    pub login_skew: Duration,
    /// Largest upload, bytes.
    pub max_upload: u64,
    /// How long finished jobs stay.
    pub job_retention: Duration,
    /// Longest long-poll.
    pub long_poll: Duration,
}

/// `10GiB`, `512MiB`, `100KiB`, `1TiB` or plain bytes.
pub(crate) fn parse_size(what: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .with_context(|| format!("{what} {text:?}: expected a number and a unit"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => anyhow::bail!("{what} {text:?}: unknown unit {other:?} (B, KiB, MiB, GiB, TiB)"),
    };
    n.checked_mul(scale)
        .with_context(|| format!("{what} {text:?} is too large"))
}

fn v1_settings(api: Option<&ApiConfig>) -> Result<V1Settings> {
    let api = api.cloned().unwrap_or_default();
    let allow = api.allow.clone().unwrap_or_default();
    let mode = match api.security.as_deref() {
        None | Some("secret") => Mode::Secret,
        Some("public") => Mode::Public,
        Some("allowlist") => Mode::Allowlist(
            allow
                .iter()
                .map(|k| {
                    k.parse()
                        .map_err(|e| anyhow::anyhow!("[api] allow: {k:?}: {e}"))
                })
                .collect::<Result<_>>()?,
        ),
        Some(other) => anyhow::bail!(
            "[api] security must be \"secret\", \"allowlist\" or \"public\", not {other:?}"
        ),
    };
    if !allow.is_empty() && !matches!(mode, Mode::Allowlist(_)) {
        anyhow::bail!("[api] allow is only read with security = \"allowlist\"");
    }
    Ok(V1Settings {
        mode,
        token_ttl: match &api.token_ttl {
            Some(t) => parse_duration("[api] token_ttl", t)?,
            None => Duration::from_secs(86_400),
        },
        login_skew: match &api.login_skew {
            Some(t) => parse_duration("[api] login_skew", t)?,
            None => Duration::from_secs(300),
        },
        max_upload: match &api.max_upload {
            Some(t) => parse_size("[api] max_upload", t)?,
            None => 10 << 30,
        },
        job_retention: match &api.job_retention {
            Some(t) => parse_duration("[api] job_retention", t)?,
            None => Duration::from_secs(7 * 86_400),
        },
        long_poll: match &api.long_poll {
            Some(t) => parse_duration("[api] long_poll", t)?,
            None => Duration::from_secs(30),
        },
    })
}

/// The `/api/v1` secret: `CAIRN_API_SECRET`, else `api-secret` in the data folder (0600),
/// created on first start.
pub(crate) fn api_secret(data: &Path) -> Result<String> {
    if let Ok(s) = std::env::var("CAIRN_API_SECRET")
        && !s.is_empty()
    {
        return Ok(s);
    }
    let path = data.join("api-secret");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(text.trim().to_owned());
    }
    let secret =
        cairn_node::model::codec::random_string(40, b"0123456789abcdefghijklmnopqrstuvwxyz")?;
    write_private(&path, secret.as_bytes())?;
    Ok(secret)
}

/// The `[storage]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `"replicas:N"` or `"ec:K+M"`; unset: this node keeps its own data (no cluster).
    pub redundancy: Option<String>,
    /// This node's failure domain; placement spreads pieces over zones first.
    pub zone: Option<String>,
    /// How long a member may be unreachable before its pieces are re-created elsewhere
    /// (`10m` default; `d h m s`).
    pub down_after: Option<String>,
    /// How often the repair job runs a pass (`1m` default).
    pub repair_interval: Option<String>,
    /// How long a unit held here must have gone without a new piece before piece GC asks its
    /// owners whether it is still referenced (`1h` default; `d h m s`).
    pub piece_grace: Option<String>,
    /// How often the objects-by-margin metrics are recounted (`10m` default).
    pub margins_interval: Option<String>,
    /// How often the scrubber re-hashes its next 64 MiB of blocks (`10s` default, so at most
    /// 6.4 MiB/s; a node scrubs with or without a cluster).
    pub scrub_interval: Option<String>,
}

/// Effective cluster settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub redundancy: cairn_cluster::Redundancy,
    pub zone: Option<String>,
    pub down_after: Duration,
    pub repair_interval: Duration,
    pub margins_interval: Duration,
    /// Piece GC's grace period (`[storage] piece_grace`).
    pub piece_grace: Duration,
}

/// Effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    /// The user key file the node acts as (`--identity`); default in the CLI config folder.
    pub identity: Option<PathBuf>,
    pub s3_listen: SocketAddr,
    pub api_listen: SocketAddr,
    pub gateway_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    /// The SFTP door's address, when it is on.
    pub sftp_listen: Option<SocketAddr>,
    pub gateway: cairn_gateway::GatewayConfig,
    pub cid_version: CidVersion,
    pub gc_interval: Option<Duration>,
    /// How long old bucket roots stay pinned (`None`: forever).
    pub history_retention: Option<Duration>,
    /// The libp2p node.
    pub net: cairn_net::NetConfig,
    /// How often every provided root is announced again.
    pub reprovide_interval: Duration,
    /// Cluster durability, when `[storage] redundancy` is set.
    pub cluster: Option<ClusterSettings>,
    /// How often the scrubber runs (each run re-hashes up to [`SCRUB_BYTES`]).
    pub scrub_interval: Duration,
    /// `/api/v1` on the gateway listener.
    pub v1: V1Settings,
    /// TLS on the S3, gateway and local API listeners (`/metrics` stays plain HTTP).
    pub tls: Option<TlsConfig>,
    /// An invite to join a cluster (`--join`).
    pub join: Option<String>,
}

/// Bytes the scrubber re-hashes per run.
pub const SCRUB_BYTES: u64 = 64 << 20;

pub(crate) fn multiaddrs(list: &[String]) -> Result<Vec<cairn_net::libp2p::Multiaddr>> {
    list.iter()
        .map(|a| {
            a.parse()
                .with_context(|| format!("invalid multiaddr {a:?}"))
        })
        .collect()
}

fn net_config(
    file: &FileConfig,
    p2p_listen: &[String],
    bootstrap: &[String],
) -> Result<cairn_net::NetConfig> {
    let mut net = cairn_net::NetConfig::default();
    let listen = if p2p_listen.is_empty() {
        file.p2p_listen.clone().unwrap_or_default()
    } else {
        p2p_listen.to_vec()
    };
    if !listen.is_empty() {
        net.listen = multiaddrs(&listen)?;
    }
    let defaulted = listen.is_empty();
    let mut boot = file.bootstrap.clone().unwrap_or_default();
    boot.extend(bootstrap.iter().cloned());
    net.bootstrap = multiaddrs(&boot)?;
    if let Some(path) = &file.swarm_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading swarm key {}", path.display()))?;
        let psk: cairn_net::libp2p::pnet::PreSharedKey = text
            .parse()
            .map_err(|e| anyhow::anyhow!("swarm key {}: {e:?}", path.display()))?;
        net.psk = Some(psk_bytes(&text)?);
        if defaulted {
            // QUIC cannot carry a pre-shared key: a private node listens on TCP only.
            net.listen.retain(|a| {
                !a.iter()
                    .any(|p| matches!(p, cairn_net::libp2p::multiaddr::Protocol::QuicV1))
            });
        }
        tracing::info!(fingerprint = %psk.fingerprint(), "private network");
    }
    if let Some(peers) = &file.allow_peers {
        net.allow = Some(
            peers
                .iter()
                .map(|p| p.parse().with_context(|| format!("invalid peer id {p:?}")))
                .collect::<Result<_>>()?,
        );
    }
    if let Some(p) = &file.kad_protocol {
        net.kad_protocol = p.clone();
    }
    if let Some(addrs) = &file.announce {
        net.announce = multiaddrs(addrs)?;
    }
    Ok(net)
}

/// The 32 key bytes of a `swarm.key` (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits).
fn psk_bytes(text: &str) -> Result<[u8; 32]> {
    let hex_line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .context("empty swarm key")?;
    let bytes = hex::decode(hex_line).context("swarm key: the last line must be 64 hex digits")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("swarm key: the key must be 32 bytes"))
}

/// Parses `30d`, `12h`, `90m`, `3600s`, a bare number of days, or `forever`.
pub fn parse_retention(text: &str) -> Result<Option<Duration>> {
    if text.trim() == "forever" {
        return Ok(None);
    }
    parse_duration("history_retention", text).map(Some)
}

/// Parses `30d`, `12h`, `90m`, `3600s` or a bare number of days, for setting `what`.
fn cluster_settings(storage: Option<&StorageConfig>) -> Result<Option<ClusterSettings>> {
    let Some(storage) = storage else {
        return Ok(None);
    };
    let Some(redundancy) = &storage.redundancy else {
        return Ok(None);
    };
    Ok(Some(ClusterSettings {
        redundancy: redundancy
            .parse()
            .map_err(|e| anyhow::anyhow!("[storage] redundancy: {e}"))?,
        zone: storage.zone.clone(),
        down_after: match &storage.down_after {
            Some(text) => parse_duration("[storage] down_after", text)?,
            None => Duration::from_secs(600),
        },
        repair_interval: match &storage.repair_interval {
            Some(text) => parse_duration("[storage] repair_interval", text)?,
            None => Duration::from_secs(60),
        },
        margins_interval: match &storage.margins_interval {
            Some(text) => parse_duration("[storage] margins_interval", text)?,
            None => Duration::from_secs(600),
        },
        piece_grace: match &storage.piece_grace {
            Some(text) => parse_duration("[storage] piece_grace", text)?,
            None => Duration::from_secs(3600),
        },
    }))
}

pub(crate) fn parse_duration(what: &str, text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "d"),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("{what} {text:?}: expected e.g. 30d, 12h or 90m"))?;
    let secs = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        "s" => n,
        other => anyhow::bail!("{what} {text:?}: unknown unit {other:?} (d, h, m, s)"),
    };
    Ok(Duration::from_secs(secs))
}

impl Settings {
    pub fn resolve(data: &Path, args: &ServeArgs) -> Result<Self> {
        let default_file = data.join("cairn.toml");
        let file = match args.config.as_deref() {
            Some(path) => Some(path.to_path_buf()),
            None => default_file.exists().then_some(default_file),
        };
        let from_file: FileConfig = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let version = args.cid_version.or(from_file.cid_version).unwrap_or(0);
        let serve_all = match from_file.gateway_policy.as_deref() {
            None | Some("public") => false,
            Some("all") => true,
            Some(other) => {
                anyhow::bail!("gateway_policy must be \"public\" or \"all\", not {other:?}")
            }
        };
        Ok(Settings {
            data: data.to_path_buf(),
            s3_listen: args
                .s3_listen
                .or(from_file.s3_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000))),
            api_listen: args
                .api_listen
                .or(from_file.api_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5001))),
            gateway_listen: args
                .gateway_listen
                .or(from_file.gateway_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            metrics_listen: args
                .metrics_listen
                .or(from_file.metrics_listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9464))),
            sftp_listen: args
                .sftp_listen
                .or(from_file.sftp.as_ref().and_then(|s| s.listen)),
            gateway: cairn_gateway::GatewayConfig { serve_all },
            cid_version: CidVersion::try_from(version)?,
            net: cairn_net::NetConfig {
                dht_path: Some(data.join("dht.redb")),
                zone: from_file.storage.as_ref().and_then(|s| s.zone.clone()),
                ..net_config(&from_file, &args.p2p_listen, &args.bootstrap)?
            },
            cluster: cluster_settings(from_file.storage.as_ref())?,
            v1: v1_settings(from_file.api.as_ref())?,
            identity: None,
            scrub_interval: match from_file
                .storage
                .as_ref()
                .and_then(|s| s.scrub_interval.as_ref())
            {
                Some(text) => {
                    parse_duration("[storage] scrub_interval", text)?.max(Duration::from_secs(1))
                }
                None => Duration::from_secs(10),
            },
            reprovide_interval: match &from_file.reprovide_interval {
                Some(text) => parse_duration("reprovide_interval", text)?,
                None => Duration::from_secs(12 * 3600),
            },
            history_retention: match &from_file.history_retention {
                Some(text) => parse_retention(text)?,
                None => Some(Duration::from_secs(30 * 86_400)),
            },
            tls: tls_files(args, from_file.tls.as_ref())?,
            join: args.join.clone(),
            gc_interval: match args
                .gc_interval
                .or(from_file.gc_interval_secs)
                .unwrap_or(3600)
            {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
        })
    }
}

/// Where a running node's local API is, and its token (`api.toml`, 0600).
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiFile {
    /// `host:port`.
    pub addr: String,
    /// Bearer token.
    pub token: String,
    /// The listener's TLS certificate, when it speaks TLS (the CLI trusts exactly it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RootCredentials {
    access_key: String,
    secret_key: String,
}

/// The root credentials: from the environment, the data folder, or newly generated.
pub(crate) fn root_credentials(data: &Path) -> Result<(String, String)> {
    if let (Ok(a), Ok(s)) = (
        std::env::var("CAIRN_ROOT_ACCESS_KEY"),
        std::env::var("CAIRN_ROOT_SECRET_KEY"),
    ) {
        return Ok((a, s));
    }
    let path = data.join("root-credentials.toml");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let c: RootCredentials =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return Ok((c.access_key, c.secret_key));
    }
    let (access_key, secret_key) = cairn_node::keys::new_key_pair()?;
    let creds = RootCredentials {
        access_key,
        secret_key,
    };
    write_private(&path, toml::to_string(&creds)?.as_bytes())?;
    eprintln!(
        "cairn: generated root credentials (stored in {}):\n  access key: {}\n  secret key: {}",
        path.display(),
        creds.access_key,
        creds.secret_key
    );
    Ok((creds.access_key, creds.secret_key))
}

/// Writes a file readable only by its owner: temp (0600) → fsync → rename.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(cairn_node::identity::write_private(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swarm_keys_parse() {
        let key = format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", "ab".repeat(32));
        assert_eq!(psk_bytes(&key).unwrap(), [0xab; 32]);
        assert!(psk_bytes("/key/swarm/psk/1.0.0/\n/base16/\nzz").is_err());
        assert!(
            psk_bytes(&format!(
                "/key/swarm/psk/1.0.0/\n/base16/\n{}",
                "ab".repeat(31)
            ))
            .is_err()
        );
        let file = FileConfig {
            allow_peers: Some(vec!["not-a-peer".into()]),
            ..FileConfig::default()
        };
        assert!(net_config(&file, &[], &[]).is_err());
        let net = net_config(
            &FileConfig::default(),
            &[],
            &["/ip4/127.0.0.1/tcp/1".into()],
        )
        .unwrap();
        assert_eq!(net.bootstrap.len(), 1);
        assert_eq!(net.listen.len(), 2, "TCP and QUIC by default");
    }

    #[test]
    fn retention_parses_units_and_forever() {
        assert_eq!(
            parse_retention("30d").unwrap(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            parse_retention("7").unwrap(),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            parse_retention("12h").unwrap(),
            Some(Duration::from_secs(43_200))
        );
        assert_eq!(parse_retention("0s").unwrap(), Some(Duration::ZERO));
        assert_eq!(parse_retention("forever").unwrap(), None);
        assert!(parse_retention("soon").is_err());
        assert!(parse_retention("3w").is_err());
    }
}
