//! The `cairn` binary: command-line parsing and wiring. All storage logic lives in the
//! library crates; this file maps commands onto [`cairn_node::Node`] and prints results the way
//! the matching `ipfs` commands do.

mod backup;
mod bucket_cmd;
mod cli;
mod cluster;
mod config;
mod follow;
mod invite;
mod listen;
mod provide;
mod remote;
mod serve;
mod user;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cairn_node::import::AddOptions;
use cairn_node::{CidVersion, Node, parse_path};
use clap::Parser;
use cli::{BucketCmd, CarCmd, Cli, Command, KeyCmd, PinCmd, UserCmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libp2p_kad=error")),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<()> {
    // A node running on this data folder holds it: go through its local API.
    if let Command::Bucket(BucketCmd::VerifyHead { file, key }) = &cli.command {
        return bucket_cmd::verify_head(file, key.as_deref());
    }
    match &cli.command {
        Command::User(UserCmd::Create { name, out }) => return user::create(name, out.as_deref()),
        Command::User(UserCmd::Show { key }) => return user::show(key),
        Command::Cluster(cli::ClusterCommand::Invite { admin }) if cli.node.is_none() => {
            // Read from the data folder; the addresses from the node, when it runs.
            let addrs = remote::Remote::discover(&cli.data)
                .and_then(|r| remote::Remote::json(r.get("/id").ok()?).ok())
                .map(|v| {
                    v["addrs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            println!("{}", invite::invite(&cli.data, *admin, addrs)?);
            return Ok(());
        }
        _ => {}
    }
    // `--node URL` (or CAIRN_NODE, or the CLI config): a node elsewhere, through its API.
    let config = user::CliConfig::load()?;
    if let Some(url) = cli.node.clone().or(config.node) {
        let identity = match cli.identity.clone().or(config.identity) {
            Some(path) => Some(user::load(&path)?),
            None => None,
        };
        let token = cli.token.clone().or(config.token);
        if let Command::Login = cli.command {
            let id = identity.context("login needs --identity KEYFILE (or CAIRN_IDENTITY)")?;
            println!(
                "{}",
                remote::login(&url, &id, &remote::agent(cli.ca_cert.as_deref())?)?
            );
            return Ok(());
        }
        if matches!(cli.command, Command::Serve(_) | Command::Bench(_)) {
            bail!("serve and bench run here, not on --node");
        }
        let agent = remote::agent(cli.ca_cert.as_deref())?;
        let remote = remote::Remote::connect(&url, token, identity.as_ref(), agent)?;
        return remote::run(&remote, &cli.command);
    }
    if let Command::Login = cli.command {
        bail!("login needs --node URL (or CAIRN_NODE)");
    }
    if !matches!(cli.command, Command::Serve(_) | Command::Bench(_))
        && let Some(remote) = remote::Remote::discover(&cli.data)
    {
        return remote::run(&remote, &cli.command);
    }
    let open = || -> Result<Node> {
        let node = Node::open(&cli.data)
            .with_context(|| format!("opening store {}", cli.data.display()))?;
        // Roots folded in offline are built as the node's config says.
        let settings = config::Settings::resolve(&cli.data, &cli::ServeArgs::default())?;
        node.set_roots_config(cairn_node::roots::RootsConfig {
            version: settings.cid_version,
            retention: settings.history_retention,
        });
        if let Some((user, _)) = user::node_key(cli.identity.as_deref(), &node, false)? {
            node.set_user_key(user);
        }
        if let Some(cluster) = invite::load(&cli.data)? {
            invite::set_admin(&node, &cluster)?;
        }
        Ok(node)
    };
    match cli.command {
        Command::Serve(args) => {
            let settings = config::Settings::resolve(&cli.data, &args)?;
            serve::run(config::Settings {
                identity: cli.identity.clone(),
                ..settings
            })?;
        }
        Command::Add(args) => {
            let node = open()?;
            let version = CidVersion::try_from(args.cid_version)?;
            let mut out = std::io::stdout().lock();
            let paths = if args.paths.is_empty() {
                vec!["-".into()]
            } else {
                args.paths
            };
            for path in paths {
                if path.as_os_str() == "-" {
                    let link = node.add_reader(&mut std::io::stdin().lock(), version, args.pin)?;
                    print_added(
                        &mut out,
                        args.quiet,
                        &link.cid.to_string(),
                        &link.cid.to_string(),
                    )?;
                    continue;
                }
                let opts = AddOptions {
                    cid_version: version,
                    recursive: args.recursive,
                    hidden: args.hidden,
                    pin: args.pin,
                };
                let bar = progress_bar(&path, args.recursive);
                let added = node.add_path_with_progress(&path, opts, &|n| {
                    if let Some(bar) = &bar {
                        bar.inc(n)
                    }
                });
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                let added = added?;
                if args.quiet {
                    let root = added.last().expect("add returns the root");
                    writeln!(out, "{}", root.cid)?;
                } else {
                    for a in &added {
                        print_added(&mut out, false, &a.cid.to_string(), &a.path)?;
                    }
                }
            }
        }
        Command::Cat(args) => {
            let node = open()?;
            let cid = resolve(&node, &args.path)?;
            let range = match (args.offset, args.length) {
                (0, None) => None,
                (offset, len) => Some(offset..len.map_or(u64::MAX, |l| offset.saturating_add(l))),
            };
            let mut out = std::io::stdout().lock();
            for piece in node.cat(cid, range) {
                out.write_all(&piece?)?;
            }
            out.flush()?;
        }
        Command::Get(args) => {
            let node = open()?;
            let cid = resolve(&node, &args.path)?;
            let out = args.output.unwrap_or_else(|| cid.to_string().into());
            node.get_to_path(&cid, &out)?;
            eprintln!("Saved {} to {}", cid, out.display());
        }
        Command::Ls(args) => {
            let node = open()?;
            let cid = resolve(&node, &args.path)?;
            let mut out = std::io::stdout().lock();
            for e in node.ls(&cid)? {
                let slash = if matches!(e.kind, cairn_dag::dir::NodeKind::Directory { .. }) {
                    "/"
                } else {
                    ""
                };
                writeln!(out, "{} {} {}{}", e.cid, e.size, e.name, slash)?;
            }
        }
        Command::Car(CarCmd::Export { path, output }) => {
            let node = open()?;
            let cid = resolve(&node, &path)?;
            let n = export_car(&node, cid, &output)?;
            eprintln!("exported {n} blocks of {cid} to {}", output.display());
        }
        Command::Car(CarCmd::Import { file, no_pin }) => {
            let node = open()?;
            let rt = runtime()?;
            let result = rt.block_on(async {
                let f = tokio::fs::File::open(&file)
                    .await
                    .with_context(|| format!("open {}", file.display()))?;
                let r = node
                    .car_import(tokio::io::BufReader::new(f), !no_pin)
                    .await
                    .with_context(|| format!("importing {}", file.display()))?;
                anyhow::Ok(r)
            })?;
            let mut out = std::io::stdout().lock();
            for root in &result.pinned {
                writeln!(out, "pinned root {root}")?;
            }
            eprintln!("imported {} blocks", result.blocks);
            if !result.incomplete.is_empty() {
                let list: Vec<String> = result.incomplete.iter().map(|c| c.to_string()).collect();
                bail!(
                    "blocks imported, but these roots are incomplete and were not pinned: {}",
                    list.join(", ")
                );
            }
        }
        Command::Pin(PinCmd::Ls) => {
            let node = open()?;
            let mut out = std::io::stdout().lock();
            for (cid, count) in node.pins()? {
                writeln!(out, "{cid} recursive {count}")?;
            }
        }
        Command::Pin(PinCmd::Add { paths }) => {
            let node = open()?;
            for p in paths {
                let cid = resolve(&node, &p)?;
                node.pin(&cid)?;
                println!("pinned {cid} recursively");
            }
        }
        Command::Pin(PinCmd::Rm { paths }) => {
            let node = open()?;
            for p in paths {
                let cid = resolve(&node, &p)?;
                if !node.unpin(&cid)? {
                    bail!("{cid} is not pinned");
                }
                println!("unpinned {cid}");
            }
        }
        Command::Gc => {
            let node = open()?;
            let s = node.collect_garbage()?;
            print_gc(s.removed, s.freed_bytes, s.kept, s.missing);
        }
        Command::Scrub => {
            let node = open()?;
            let s = node.scrub_all()?;
            let corrupt: Vec<String> = s.corrupt.iter().map(|c| c.to_string()).collect();
            print_scrub(s.checked, s.bytes, &corrupt)?;
        }
        Command::User(_) | Command::Login => bail!("user and login are answered before this"),
        Command::Share {
            target,
            to,
            expires,
            revoke,
        } => {
            let node = open()?;
            let (bucket, key) = target.split_once('/').context("expected BUCKET/KEY")?;
            let to: cairn_crypt::identity::PublicId = to
                .parse()
                .map_err(|e| anyhow::anyhow!("--to {to:?}: {e}"))?;
            let v = if revoke {
                let info = runtime()?.block_on(node.revoke(bucket, key, &to))?;
                serde_json::json!({ "revoked": to.to_string(), "cid": info.cid.to_string() })
            } else {
                let expires_ms = user::expiry_ms(expires.as_deref())?;
                let info = node.share(bucket, key, &to, expires_ms)?;
                serde_json::json!({ "shared_with": to.to_string(), "cid": info.cid.to_string() })
            };
            user::print_share(&target, revoke, &v);
        }
        Command::Bench(args) => {
            let env = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok());
            let cfg = cairn_bench::Config {
                endpoint: args.endpoint,
                access_key: args
                    .access_key
                    .or_else(|| env(&["AWS_ACCESS_KEY_ID", "CAIRN_ROOT_ACCESS_KEY"]))
                    .context("no access key: --access-key or AWS_ACCESS_KEY_ID")?,
                secret_key: args
                    .secret_key
                    .or_else(|| env(&["AWS_SECRET_ACCESS_KEY", "CAIRN_ROOT_SECRET_KEY"]))
                    .context("no secret key: --secret-key or AWS_SECRET_ACCESS_KEY")?,
                region: args.region,
                large_size: args.large_mib << 20,
                large_count: args.large_count,
                small_count: args.small_count,
                concurrency: args.concurrency,
                multipart_size: args.multipart_mib << 20,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(cairn_bench::run(&cfg))?;
            print!("{report}");
        }
        Command::Key(KeyCmd::Create { user }) => {
            let node = open()?;
            let (access, secret) = node.create_key(&user)?;
            println!("user:       {user}\naccess key: {access}\nsecret key: {secret}");
        }
        Command::Key(KeyCmd::List) => {
            let node = open()?;
            for (access, rec) in node.keys()? {
                println!("{access} {}", rec.user);
            }
        }
        Command::Key(KeyCmd::Delete { access_key }) => {
            let node = open()?;
            if !node.delete_key(&access_key)? {
                bail!("no such access key {access_key}");
            }
            println!("deleted {access_key}");
        }
        Command::Bucket(BucketCmd::List) => {
            let node = open()?;
            for (name, rec) in node.buckets()? {
                let vis = if rec.is_public() { "public" } else { "private" };
                println!("{name} {} {vis}", rec.owner);
            }
        }
        Command::Bucket(BucketCmd::SetPublic { bucket, off }) => {
            let node = open()?;
            node.set_public(&bucket, !off)?;
            println!("{bucket} is now {}", if off { "private" } else { "public" });
        }
        Command::Bucket(cmd) => {
            let node = open()?;
            bucket_cmd::offline(&node, &cmd)?;
        }
        Command::Id { json } => {
            let node = open()?;
            let keypair = cairn_net::keypair_from_seed(node.identity()?.secret_seed())?;
            print_id(&keypair.public().to_peer_id().to_string(), &[], json);
        }
        Command::Backup { .. } | Command::Restore { .. } | Command::Snapshot(_) => {
            bail!(
                "no node is running on {}: start `cairn serve` first (backup and restore go \
                 through a node)",
                cli.data.display()
            )
        }
        Command::Peers
        | Command::Dial { .. }
        | Command::Providers { .. }
        | Command::Workers
        | Command::Cluster(_) => {
            bail!(
                "no node is running on {}: start `cairn serve` first",
                cli.data.display()
            )
        }
        Command::Check(args) => {
            let node = open()?;
            let cid = resolve(&node, &args.path)?;
            let report = node.check(&cid, args.hard)?;
            for c in &report.missing {
                eprintln!("missing block {c}");
            }
            for c in &report.corrupt {
                eprintln!("CorruptBlock {c} (quarantined)");
            }
            for (c, why) in &report.bad_files {
                eprintln!("file {c} does not re-assemble: {why}");
            }
            if !report.is_ok() {
                bail!(
                    "{cid}: check failed ({} missing, {} corrupt, {} bad files)",
                    report.missing.len(),
                    report.corrupt.len(),
                    report.bad_files.len()
                );
            }
            println!(
                "{cid}: ok ({} blocks, {} bytes read, {})",
                report.blocks,
                report.bytes_read,
                if args.hard { "hard" } else { "soft" }
            );
        }
    }
    Ok(())
}

/// Prints a scrub pass; fails when a block was quarantined.
fn print_scrub(checked: u64, bytes: u64, corrupt: &[String]) -> Result<()> {
    println!("re-hashed {checked} blocks ({bytes} bytes)");
    for c in corrupt {
        eprintln!("CorruptBlock {c} (quarantined)");
    }
    if !corrupt.is_empty() {
        bail!(
            "{} corrupt block(s) quarantined; in a cluster `cairn cluster repair` re-creates them",
            corrupt.len()
        );
    }
    Ok(())
}

/// Writes the CAR of `cid` to `output` (temp → fsync → rename); returns the block count.
fn export_car(node: &Node, cid: cairn_dag::Cid, output: &std::path::Path) -> Result<u64> {
    let tmp = output.with_extension("car.tmp");
    let written = runtime()?.block_on(async {
        let file = tokio::fs::File::create(&tmp)
            .await
            .with_context(|| format!("create {}", tmp.display()))?;
        let mut file = tokio::io::BufWriter::new(file);
        let n = node.car_export(cid, &mut file).await?;
        use tokio::io::AsyncWriteExt;
        file.flush().await?;
        file.into_inner().sync_all().await?;
        anyhow::Ok(n)
    });
    match written {
        Ok(n) => {
            std::fs::rename(&tmp, output).with_context(|| format!("write {}", output.display()))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn resolve(node: &Node, path: &str) -> Result<cairn_dag::Cid> {
    let (root, rest) = parse_path(path)?;
    Ok(node.resolve(root, &rest)?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn print_added(out: &mut impl Write, quiet: bool, cid: &str, name: &str) -> Result<()> {
    if quiet {
        writeln!(out, "{cid}")?;
    } else {
        writeln!(out, "added {cid} {name}")?;
    }
    Ok(())
}

/// A byte progress bar on stderr, only on a terminal and only for inputs of 16 MiB or more.
fn progress_bar(path: &std::path::Path, recursive: bool) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total = total_size(path, recursive);
    if total < 16 << 20 {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .ok()?,
    );
    Some(bar)
}

fn total_size(path: &std::path::Path, recursive: bool) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() && recursive {
        std::fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| total_size(&e.path(), true)).sum())
            .unwrap_or(0)
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}

/// What `cairn id` prints, offline or through the node.
fn print_id(peer_id: &str, addrs: &[String], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "peer_id": peer_id, "addrs": addrs })
        );
    } else {
        println!("{peer_id}");
        for a in addrs {
            println!("{a}");
        }
    }
}

/// What `cairn gc` prints, offline or through the node.
fn print_gc(removed: u64, freed_bytes: u64, kept: u64, missing: u64) {
    println!("removed {removed} blocks ({freed_bytes} bytes), kept {kept}");
    if missing > 0 {
        eprintln!(
            "warning: {missing} blocks of pinned DAGs are missing or corrupt; run `cairn check`"
        );
    }
}
