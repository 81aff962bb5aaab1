//! The `cairn` binary: command-line parsing and wiring. All storage logic lives in the
//! library crates; this file picks the node's API — the node running on the data folder, one
//! elsewhere (`--node`), or the folder opened here — and hands the command to
//! [`commands::run`], which prints results the way the matching `ipfs` commands do.

mod backup;
mod bucket_cmd;
mod cli;
mod commands;
mod daemon;
mod output;
mod remote;
mod restore;
mod user;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use cairn_api::NodeApi;
use clap::Parser;
use cli::{BucketCmd, Cli, Command, UserCmd};

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

/// Whether the error is the output pipe closed by its reader (`cairn cat … | head`), directly or
/// as an API call's output error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = |io: &std::io::Error| io.kind() == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(broken)
            || matches!(c.downcast_ref(), Some(cairn_api::CallError::Io(io)) if broken(io))
    })
}

fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Bucket(BucketCmd::VerifyHead { file, key }) => {
            return bucket_cmd::verify_head(file, key.as_deref());
        }
        Command::User(UserCmd::Create { name, out }) => return user::create(name, out.as_deref()),
        Command::User(UserCmd::Show { key }) => return user::show(key),
        Command::Cluster(cli::ClusterCommand::Invite { admin }) if cli.node.is_none() => {
            // Read from the data folder; the addresses from the node, when it runs.
            let addrs = remote::discover(&cli.data)
                .and_then(|api| api.id().ok())
                .map(|id| id.addrs)
                .unwrap_or_default();
            println!("{}", daemon::invite::invite(&cli.data, *admin, addrs)?);
            return Ok(());
        }
        Command::Serve(args) => {
            let settings = daemon::config::Settings::resolve(&cli.data, args)?;
            return daemon::serve::run(daemon::config::Settings {
                identity: cli.identity.clone(),
                ..settings
            });
        }
        Command::Bench(args) => return bench(args),
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
        let agent = cairn_api::client::agent(cli.ca_cert.as_deref())?;
        if let Command::Login = cli.command {
            let id = identity.context("login needs --identity KEYFILE (or CAIRN_IDENTITY)")?;
            let token = cairn_api::client::login(&url, &id, &agent)
                .with_context(|| format!("logging in to {url}"))?;
            println!("{token}");
            return Ok(());
        }
        let api = cairn_api::HttpApi::connect(&url, token, identity.as_ref(), agent)
            .with_context(|| format!("calling {url}"))?;
        return commands::run(&api, &cli.command);
    }
    if let Command::Login = cli.command {
        bail!("login needs --node URL (or CAIRN_NODE)");
    }
    // A node running on this data folder holds it: go through its local API.
    if let Some(api) = remote::discover(&cli.data) {
        return commands::run(&api, &cli.command);
    }
    let node = daemon::open_offline(&cli.data, cli.identity.as_deref())?;
    commands::run(&cairn_api::LocalApi::new(node)?, &cli.command)
}

/// `cairn bench`: the S3 load generator against an endpoint.
fn bench(args: &cli::BenchArgs) -> Result<()> {
    let env = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok());
    let cfg = cairn_bench::Config {
        endpoint: args.endpoint.clone(),
        access_key: args
            .access_key
            .clone()
            .or_else(|| env(&["AWS_ACCESS_KEY_ID", "CAIRN_ROOT_ACCESS_KEY"]))
            .context("no access key: --access-key or AWS_ACCESS_KEY_ID")?,
        secret_key: args
            .secret_key
            .clone()
            .or_else(|| env(&["AWS_SECRET_ACCESS_KEY", "CAIRN_ROOT_SECRET_KEY"]))
            .context("no secret key: --secret-key or AWS_SECRET_ACCESS_KEY")?,
        region: args.region.clone(),
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
    Ok(())
}
