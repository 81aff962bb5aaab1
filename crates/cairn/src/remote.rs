//! The CLI's side of the node API (`/api/v0`): when `serve` runs on the data folder (its
//! `api.toml` names a live API), every data command goes to the node instead of opening the
//! store, which the node holds; with `--node URL` it goes to a node on another machine
//! through its gateway listener, with its secret or a login token.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cli::{BucketCmd, Command, KeyCmd};
use crate::config::ApiFile;

/// A running node's local API.
pub struct Remote {
    base: String,
    token: String,
    agent: ureq::Agent,
}

pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The HTTP client: `https://` URLs are verified against `ca_cert` (a PEM file) when given,
/// else against the public web roots.
pub fn agent(ca_cert: Option<&Path>) -> Result<ureq::Agent> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(std::time::Duration::from_secs(5)));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading the CA certificate {}", path.display()))?;
        let certs = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing the CA certificate {}", path.display()))?;
        if certs.is_empty() {
            bail!("{} holds no PEM certificate", path.display());
        }
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    Ok(config.build().into())
}

/// Logs in to the node at `url` (allowlist mode) with `identity`: signs the current time,
/// answers the token.
pub fn login(
    url: &str,
    identity: &cairn_crypt::identity::Identity,
    agent: &ureq::Agent,
) -> Result<String> {
    let url = url.trim_end_matches('/');
    // A login names the node it is for (its key), so it cannot be replayed at another.
    let resp = agent
        .get(format!("{url}/api/v1/pubkey"))
        .call()
        .with_context(|| format!("asking {url} for its key"))?;
    let v = Remote::json(Remote::check(resp).context("the node answered no key")?)?;
    let audience: [u8; 32] = v["public_key"]
        .as_str()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok())
        .context("the node's key is not 32 bytes of hex")?;
    let epoch_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let body = serde_json::json!({
        "public_key": identity.public().to_string(),
        "epoch_ms": epoch_ms,
        "signature": hex::encode(identity.sign_login(&audience, epoch_ms)),
    });
    let resp = agent
        .post(format!("{url}/api/v1/login"))
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .with_context(|| format!("logging in to {url}"))?;
    let v = Remote::json(Remote::check(resp).context("login refused")?)?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .context("the node answered no token")
}

impl Remote {
    /// The node at `url` (its gateway listener), with `token` (its secret or a login token)
    /// or else a login with `identity`; checked with a first call.
    pub fn connect(
        url: &str,
        token: Option<String>,
        identity: Option<&cairn_crypt::identity::Identity>,
        agent: ureq::Agent,
    ) -> Result<Remote> {
        let url = url.trim_end_matches('/');
        let token = match (token, identity) {
            (Some(t), _) => t,
            (None, Some(id)) => login(url, id, &agent)?,
            (None, None) => String::new(),
        };
        let remote = Remote {
            base: format!("{url}/api/v0"),
            token,
            agent,
        };
        let resp = remote
            .agent
            .get(format!("{}/id", remote.base))
            .header("Authorization", format!("Bearer {}", remote.token))
            .call()
            .with_context(|| format!("calling {url}"))?;
        if resp.status() == ureq::http::StatusCode::NOT_FOUND {
            bail!(
                "{url} serves no node API: give its gateway address, and the node must not be \
                 in public mode (the remote API needs [api] security = \"secret\" or \"allowlist\")"
            );
        }
        Self::check(resp).with_context(|| format!("{url} refused the credentials"))?;
        Ok(remote)
    }

    /// The API of the node running on `data`, if one answers.
    pub fn discover(data: &Path) -> Option<Remote> {
        let text = std::fs::read_to_string(data.join(cairn_api::API_FILE)).ok()?;
        let file: ApiFile = toml::from_str(&text).ok()?;
        // A node serving TLS is trusted by exactly its own certificate.
        let (scheme, agent) = match &file.tls_cert {
            Some(cert) => ("https", agent(Some(cert)).ok()?),
            None => ("http", agent(None).ok()?),
        };
        let remote = Remote {
            base: format!("{scheme}://{}/api/v0", file.addr),
            token: file.token,
            agent,
        };
        // A stale file (node killed) answers nothing: open the folder directly then.
        remote.get("/id").ok().map(|_| remote)
    }

    fn check(
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or(text);
        bail!("{message}")
    }

    pub(crate) fn get(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .context("calling the node's API")?;
        Self::check(resp)
    }

    pub(crate) fn post(
        &self,
        path: &str,
        body: &mut dyn Read,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        self.post_typed(path, body, "application/octet-stream")
    }

    fn post_typed(
        &self,
        path: &str,
        body: &mut dyn Read,
        content_type: &str,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", content_type)
            .send(ureq::SendBody::from_reader(body))
            .context("calling the node's API")?;
        Self::check(resp)
    }

    pub(crate) fn json(resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
        let mut resp = resp;
        let text = resp.body_mut().read_to_string()?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Writes the CAR of `path` (a CID or CID/path) to `output` (temp → fsync → rename).
    pub(crate) fn export_car(&self, path: &str, output: &Path) -> Result<()> {
        let mut resp = self.get(&format!("/car/export?arg={}", encode(path)))?;
        let tmp = output.with_extension("car.tmp");
        let result = (|| {
            let mut file =
                std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
            std::io::copy(&mut resp.body_mut().as_reader(), &mut file)?;
            file.sync_all()?;
            std::fs::rename(&tmp, output).with_context(|| format!("write {}", output.display()))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Adds a byte stream; returns its CID and DAG size.
    pub fn add(&self, reader: &mut dyn Read, cid_version: u8, pin: bool) -> Result<(String, u64)> {
        let v =
            Self::json(self.post(&format!("/add?cid_version={cid_version}&pin={pin}"), reader)?)?;
        let cid = v["cid"]
            .as_str()
            .map(str::to_owned)
            .context("the node answered no CID")?;
        let dag_size = v["dag_size"]
            .as_u64()
            .context("the node answered no DAG size")?;
        Ok((cid, dag_size))
    }
}

/// Runs `command` through the node.
pub fn run(remote: &Remote, command: &Command) -> Result<()> {
    match command {
        Command::Add(args) => add(remote, args),
        Command::Cat(args) => (|| {
            let mut q = format!("/cat?arg={}", encode(&args.path));
            if args.offset > 0 {
                q.push_str(&format!("&offset={}", args.offset));
            }
            if let Some(l) = args.length {
                q.push_str(&format!("&length={l}"));
            }
            let mut resp = remote.get(&q)?;
            let mut out = std::io::stdout().lock();
            std::io::copy(&mut resp.body_mut().as_reader(), &mut out)?;
            out.flush()?;
            Ok(())
        })(),
        Command::Ls(args) => (|| {
            let v = Remote::json(remote.get(&format!("/ls?arg={}", encode(&args.path)))?)?;
            let mut out = std::io::stdout().lock();
            for e in v.as_array().into_iter().flatten() {
                let slash = if e["dir"].as_bool() == Some(true) {
                    "/"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "{} {} {}{slash}",
                    e["cid"].as_str().unwrap_or(""),
                    e["size"],
                    e["name"].as_str().unwrap_or("")
                )?;
            }
            Ok(())
        })(),
        Command::Key(KeyCmd::Create { user }) => (|| {
            let v = Remote::json(remote.post(
                &format!("/key/create?user={}", encode(user)),
                &mut std::io::empty(),
            )?)?;
            println!(
                "user:       {user}\naccess key: {}\nsecret key: {}",
                v["access_key"].as_str().unwrap_or(""),
                v["secret_key"].as_str().unwrap_or("")
            );
            Ok(())
        })(),
        Command::Key(KeyCmd::List) => (|| {
            for k in Remote::json(remote.get("/key/list")?)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{} {}",
                    k["access_key"].as_str().unwrap_or(""),
                    k["user"].as_str().unwrap_or("")
                );
            }
            Ok(())
        })(),
        Command::Key(KeyCmd::Delete { access_key }) => (|| {
            remote.post(
                &format!("/key/delete?arg={}", encode(access_key)),
                &mut std::io::empty(),
            )?;
            println!("deleted {access_key}");
            Ok(())
        })(),
        Command::Bucket(BucketCmd::List) => (|| {
            for b in Remote::json(remote.get("/bucket/list")?)?
                .as_array()
                .into_iter()
                .flatten()
            {
                let vis = if b["public"].as_bool() == Some(true) {
                    "public"
                } else {
                    "private"
                };
                println!(
                    "{} {} {vis}",
                    b["name"].as_str().unwrap_or(""),
                    b["owner"].as_str().unwrap_or("")
                );
            }
            Ok(())
        })(),
        Command::Bucket(BucketCmd::SetPublic { bucket, off }) => (|| {
            remote.post(
                &format!("/bucket/set-public?arg={}&off={off}", encode(bucket)),
                &mut std::io::empty(),
            )?;
            println!(
                "{bucket} is now {}",
                if *off { "private" } else { "public" }
            );
            Ok(())
        })(),
        Command::Bucket(cmd) => crate::bucket_cmd::remote(remote, cmd),
        Command::Id { json } => (|| {
            let v = Remote::json(remote.get("/id")?)?;
            let addrs: Vec<String> = v["addrs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            crate::print_id(v["peer_id"].as_str().unwrap_or_default(), &addrs, *json);
            Ok(())
        })(),
        Command::Peers => (|| {
            for p in Remote::json(remote.get("/swarm/peers")?)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{} {} {} {}",
                    p["peer_id"].as_str().unwrap_or_default(),
                    p["addr"].as_str().unwrap_or("-"),
                    if p["member"].as_bool().unwrap_or(false) {
                        "member"
                    } else {
                        "stranger"
                    },
                    p["agent"].as_str().unwrap_or("-")
                );
            }
            Ok(())
        })(),
        Command::Workers => (|| {
            for w in Remote::json(remote.get("/workers")?)?
                .as_array()
                .into_iter()
                .flatten()
            {
                let st = &w["status"];
                println!(
                    "{:<10} runs {:<6} {} last {} ms: {}{}",
                    w["name"].as_str().unwrap_or_default(),
                    st["runs"].as_u64().unwrap_or_default(),
                    if st["running"].as_bool() == Some(true) {
                        "running"
                    } else {
                        "idle   "
                    },
                    st["last_took_ms"].as_u64().unwrap_or_default(),
                    if st["last_failed"].as_bool() == Some(true) {
                        "FAILED: "
                    } else {
                        ""
                    },
                    st["last"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        })(),
        Command::Cluster(crate::cli::ClusterCommand::Check {
            hard,
            target,
            objects,
        }) if target.is_some() || *objects => (|| {
            let mut query = format!("/cluster/margins?hard={hard}");
            if let Some(t) = target {
                let (bucket, key) = t.split_once('/').unwrap_or((t, ""));
                query += &format!("&bucket={}", encode(bucket));
                if !key.is_empty() {
                    query += &format!("&key={}", encode(key));
                }
            }
            let v = Remote::json(remote.get(&query)?)?;
            let by: Vec<String> = v["by_margin"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(m, n)| format!("{n} at margin {m}"))
                .collect();
            println!(
                "{} objects (full margin {}): {}",
                v["objects"],
                v["full"],
                by.join(", ")
            );
            for o in v["below_full"].as_array().into_iter().flatten() {
                println!(
                    "  {} margin {}",
                    o[0].as_str().unwrap_or_default(),
                    o[1].as_u64().map_or("LOST".to_owned(), |m| m.to_string())
                );
            }
            if v["by_margin"]["lost"].as_u64().unwrap_or_default() > 0 {
                bail!("some objects cannot be read");
            }
            Ok(())
        })(),
        Command::Cluster(crate::cli::ClusterCommand::Invite { .. }) => {
            bail!(
                "an invite holds the cluster secret: run `cairn cluster invite` on the node's machine, with its --data"
            )
        }
        Command::Cluster(cmd) => (|| {
            let mode = match cmd {
                crate::cli::ClusterCommand::Check { hard: false, .. } => "soft",
                crate::cli::ClusterCommand::Check { hard: true, .. } => "hard",
                crate::cli::ClusterCommand::Repair => "repair",
                crate::cli::ClusterCommand::Invite { .. } => unreachable!("handled above"),
            };
            let v = Remote::json(remote.post(
                &format!("/cluster/check?mode={mode}"),
                &mut std::io::empty(),
            )?)?;
            let n = |f: &str| v[f].as_u64().unwrap_or_default();
            println!(
                "{} units checked; led here: {} at full margin, {} degraded, {} lost; {} pieces re-created, {} verified, {} failed",
                n("checked"),
                n("at_full_margin"),
                n("degraded"),
                n("lost"),
                n("repaired"),
                n("verified"),
                n("failed")
            );
            if let Some(c) = v.get("collected") {
                let n = |f: &str| c[f].as_u64().unwrap_or_default();
                println!(
                    "piece GC: {} units freed ({} bytes); {} kept as referenced, {} unanswered, {} young, {} without owners",
                    n("freed"),
                    n("freed_bytes"),
                    n("referenced"),
                    n("unanswered"),
                    n("young"),
                    n("unowned")
                );
            }
            if n("lost") > 0 || n("failed") > 0 {
                bail!("some data cannot be read or verified");
            }
            Ok(())
        })(),
        Command::Providers { cid } => (|| {
            for p in Remote::json(remote.get(&format!("/routing/findprovs?arg={}", encode(cid)))?)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!("{}", p.as_str().unwrap_or_default());
            }
            Ok(())
        })(),
        Command::Dial { addr } => (|| {
            let v = Remote::json(remote.post(
                &format!("/swarm/connect?arg={}", encode(addr)),
                &mut std::io::empty(),
            )?)?;
            println!("connected to {}", v["peer_id"].as_str().unwrap_or_default());
            Ok(())
        })(),
        Command::Scrub => (|| {
            let v = Remote::json(remote.post("/scrub", &mut std::io::empty())?)?;
            let corrupt: Vec<String> = v["corrupt"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            crate::print_scrub(
                v["checked"].as_u64().unwrap_or_default(),
                v["bytes"].as_u64().unwrap_or_default(),
                &corrupt,
            )
        })(),
        Command::Gc => (|| {
            let v = Remote::json(remote.post("/gc", &mut std::io::empty())?)?;
            let n = |f: &str| {
                v[f].as_u64()
                    .with_context(|| format!("the node answered no {f}"))
            };
            crate::print_gc(n("removed")?, n("freed_bytes")?, n("kept")?, n("missing")?);
            Ok(())
        })(),
        Command::Pin(crate::cli::PinCmd::Ls) => (|| {
            for p in Remote::json(remote.get("/pin/ls")?)?
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "{} recursive {}",
                    p["cid"].as_str().unwrap_or(""),
                    p["count"]
                );
            }
            Ok(())
        })(),
        Command::Pin(crate::cli::PinCmd::Add { paths }) => (|| {
            for p in paths {
                let v = Remote::json(remote.post(
                    &format!("/pin/add?arg={}", encode(p)),
                    &mut std::io::empty(),
                )?)?;
                println!("pinned {} recursively", v["cid"].as_str().unwrap_or(""));
            }
            Ok(())
        })(),
        Command::Pin(crate::cli::PinCmd::Rm { paths }) => (|| {
            for p in paths {
                let v = Remote::json(
                    remote.post(&format!("/pin/rm?arg={}", encode(p)), &mut std::io::empty())?,
                )?;
                println!("unpinned {}", v["cid"].as_str().unwrap_or(""));
            }
            Ok(())
        })(),
        Command::Check(args) => (|| {
            let v = Remote::json(remote.get(&format!(
                "/check?arg={}&hard={}",
                encode(&args.path),
                args.hard
            ))?)?;
            let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
            for c in list("missing") {
                eprintln!("missing block {}", c.as_str().unwrap_or(""));
            }
            for c in list("corrupt") {
                eprintln!("CorruptBlock {} (quarantined)", c.as_str().unwrap_or(""));
            }
            for b in list("bad_files") {
                eprintln!(
                    "file {} does not re-assemble: {}",
                    b[0].as_str().unwrap_or(""),
                    b[1].as_str().unwrap_or("")
                );
            }
            let cid = v["cid"].as_str().unwrap_or("");
            let (m, c, b) = (
                list("missing").len(),
                list("corrupt").len(),
                list("bad_files").len(),
            );
            if m + c + b > 0 {
                bail!("{cid}: check failed ({m} missing, {c} corrupt, {b} bad files)");
            }
            println!(
                "{cid}: ok ({} blocks, {} bytes read, {})",
                v["blocks"],
                v["bytes_read"],
                if args.hard { "hard" } else { "soft" }
            );
            Ok(())
        })(),
        Command::Backup {
            dir,
            name,
            cid_version,
        } => crate::backup::backup(remote, dir, name.as_deref(), *cid_version),
        Command::Restore { what, dir } => crate::backup::restore(remote, what, dir),
        Command::Snapshot(cmd) => crate::backup::snapshot(remote, cmd),
        Command::Get(args) => (|| {
            let cid =
                Remote::json(remote.get(&format!("/stat?arg={}", encode(&args.path)))?)?["cid"]
                    .as_str()
                    .map(str::to_owned)
                    .context("the node answered no CID")?;
            let out = args.output.clone().unwrap_or_else(|| cid.clone().into());
            get_tree(remote, &cid, &out)?;
            eprintln!("Saved {cid} to {}", out.display());
            Ok(())
        })(),
        Command::Car(crate::cli::CarCmd::Export { path, output }) => (|| {
            remote.export_car(path, output)?;
            eprintln!("exported {path} to {}", output.display());
            Ok(())
        })(),
        Command::Car(crate::cli::CarCmd::Import { file, no_pin }) => (|| {
            let mut f =
                std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
            let v = Remote::json(remote.post(&format!("/car/import?pin={}", !no_pin), &mut f)?)
                .with_context(|| format!("importing {}", file.display()))?;
            for root in v["pinned"].as_array().into_iter().flatten() {
                println!("pinned root {}", root.as_str().unwrap_or(""));
            }
            eprintln!("imported {} blocks", v["blocks"]);
            let incomplete: Vec<&str> = v["incomplete"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            if !incomplete.is_empty() {
                bail!(
                    "blocks imported, but these roots are incomplete and were not pinned: {}",
                    incomplete.join(", ")
                );
            }
            Ok(())
        })(),
        Command::Share {
            target,
            to,
            expires,
            revoke,
        } => (|| {
            let mut path = format!("/share?arg={}&to={}", encode(target), encode(to));
            if *revoke {
                path.push_str("&revoke=true");
            } else if let Some(ms) = crate::user::expiry_ms(expires.as_deref())? {
                path.push_str(&format!("&expires_ms={ms}"));
            }
            let v = Remote::json(remote.post(&path, &mut std::io::empty())?)?;
            crate::user::print_share(target, *revoke, &v);
            Ok(())
        })(),
        Command::Serve(_) | Command::Bench(_) | Command::User(_) | Command::Login => {
            bail!("serve, bench, user and login do not go through a node's API")
        }
    }
}

fn add(remote: &Remote, args: &crate::cli::AddArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let paths = if args.paths.is_empty() {
        vec!["-".into()]
    } else {
        args.paths.clone()
    };
    let mut print = |cid: &str, name: &str| -> Result<()> {
        if args.quiet {
            Ok(())
        } else {
            Ok(writeln!(out, "added {cid} {name}")?)
        }
    };
    for path in paths {
        let root = if path.as_os_str() == "-" {
            let (cid, _) = remote.add(&mut std::io::stdin().lock(), args.cid_version, args.pin)?;
            print(&cid, &cid)?;
            cid
        } else if let meta =
            std::fs::symlink_metadata(&path).with_context(|| format!("{}", path.display()))?
            && !meta.is_dir()
            && !meta.is_file()
        {
            // Offline, `add` stores a symlink as a UnixFS symlink node; `/add` takes bytes only,
            // and reading through the link would give a different CID.
            bail!(
                "{}: not a regular file or directory (add symlinks with -r inside a \
                 directory, or stop the node to add them on their own)",
                path.display()
            );
        } else if path.is_dir() {
            if !args.recursive {
                bail!(
                    "{} is a directory, use -r to add directories",
                    path.display()
                );
            }
            add_tree(remote, args, &path, &mut print)?
        } else {
            let mut file =
                std::fs::File::open(&path).with_context(|| format!("{}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let (cid, _) = remote.add(&mut file, args.cid_version, args.pin)?;
            print(&cid, &name)?;
            cid
        };
        if args.quiet {
            println!("{root}");
        }
    }
    Ok(())
}

/// `add -r` through the API: the same walk as offline, each file uploaded with `/add`, then the
/// folders built by `/tree`. Returns the root's CID.
fn add_tree(
    remote: &Remote,
    args: &crate::cli::AddArgs,
    dir: &Path,
    print: &mut dyn FnMut(&str, &str) -> Result<()>,
) -> Result<String> {
    use cairn_node::import::{TreeItem, walk_tree};
    let canonical = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let root = canonical
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("root")
        .to_owned();
    let mut entries = Vec::new();
    for e in walk_tree(dir, &root, args.hidden)? {
        let v = match e.item {
            TreeItem::Dir => serde_json::json!({ "path": e.rel, "kind": "dir" }),
            TreeItem::File(p) => {
                let mut f = std::fs::File::open(&p).with_context(|| format!("{}", p.display()))?;
                let (cid, dag_size) = remote.add(&mut f, args.cid_version, false)?;
                print(&cid, &e.rel)?;
                serde_json::json!({ "path": e.rel, "kind": "file", "cid": cid, "dag_size": dag_size })
            }
            TreeItem::Symlink(p) => {
                let target = std::fs::read_link(&p)?;
                let target = target
                    .to_str()
                    .context("link target is not UTF-8")?
                    .to_owned();
                // Pure encoding: the node will make the same block.
                let version = cairn_dag::CidVersion::try_from(args.cid_version)?;
                print(
                    &cairn_dag::dir::symlink(&target, version).cid.to_string(),
                    &e.rel,
                )?;
                serde_json::json!({ "path": e.rel, "kind": "symlink", "target": target })
            }
        };
        entries.push(v);
    }
    let body = serde_json::to_vec(&serde_json::json!({ "root": root, "entries": entries }))?;
    let folders = Remote::json(remote.post_typed(
        &format!("/tree?cid_version={}&pin={}", args.cid_version, args.pin),
        &mut body.as_slice(),
        "application/json",
    )?)?;
    let mut last = String::new();
    for f in folders.as_array().into_iter().flatten() {
        last = f["cid"].as_str().unwrap_or_default().to_owned();
        print(&last, f["path"].as_str().unwrap_or_default())?;
    }
    Ok(last)
}

/// `cairn get` through the API: files by `cat` (temp → rename), folders by `ls`, symlinks by
/// `stat`. Entry names come from the node's directory listing, which refuses `/`, `.`, `..`.
/// Iterative (its own stack, not the thread's) and at most
/// [`MAX_TREE_DEPTH`](cairn_dag::dir::MAX_TREE_DEPTH) folders deep, like the node's own `get`.
fn get_tree(remote: &Remote, cid: &str, out: &Path) -> Result<()> {
    let mut stack = vec![(cid.to_owned(), out.to_path_buf(), 0usize)];
    while let Some((cid, out, depth)) = stack.pop() {
        let st = Remote::json(remote.get(&format!("/stat?arg={cid}"))?)?;
        match st["kind"].as_str() {
            Some("file") => get_file(remote, &cid, &out)?,
            Some("dir") => {
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("create {}", out.display()))?;
                let entries = Remote::json(remote.get(&format!("/ls?arg={cid}"))?)?;
                let entries = entries.as_array().map(Vec::as_slice).unwrap_or_default();
                if !entries.is_empty() && depth >= cairn_dag::dir::MAX_TREE_DEPTH {
                    bail!(
                        "{cid} is more than {} folders deep",
                        cairn_dag::dir::MAX_TREE_DEPTH
                    );
                }
                for e in entries.iter().rev() {
                    let name = e["name"].as_str().unwrap_or_default();
                    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                        bail!("unsafe entry name {name:?} in {cid}");
                    }
                    let child = e["cid"].as_str().unwrap_or_default().to_owned();
                    stack.push((child, out.join(name), depth + 1));
                }
            }
            Some("symlink") => {
                let target = st["target"].as_str().unwrap_or_default();
                let _ = std::fs::remove_file(&out);
                #[cfg(unix)]
                std::os::unix::fs::symlink(target, &out)
                    .with_context(|| format!("symlink {}", out.display()))?;
                #[cfg(not(unix))]
                std::fs::write(&out, target)?;
            }
            _ => bail!("{cid} is neither a UnixFS file nor a directory"),
        }
    }
    Ok(())
}

/// One file of [`get_tree`]: `cat` into a temporary file renamed over `out`.
fn get_file(remote: &Remote, cid: &str, out: &Path) -> Result<()> {
    let tmp = out.with_file_name(format!(
        ".{}.cairn-tmp",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    let result = (|| {
        let mut resp = remote.get(&format!("/cat?arg={cid}"))?;
        let mut file =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        std::io::copy(&mut resp.body_mut().as_reader(), &mut file)?;
        std::fs::rename(&tmp, out).with_context(|| format!("write {}", out.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
