//! Every data command of the CLI, written once over [`NodeApi`]: the same code runs against a
//! node on this data folder, a node elsewhere (`--node`), or the folder opened here when no node
//! runs. One printer per command, reading typed answers.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use cairn_api::NodeApi;
use cairn_api::types::{Kind, Meta, TreeEntry, TreeKind, TreeManifest};
use cairn_dag::CidVersion;
use cairn_node::replication::RepairMode;

use crate::cli::{AddArgs, CarCmd, ClusterCommand, Command, KeyCmd, PinCmd};
use crate::output::{export_car, write_atomic};

/// Runs a data command (not `serve`, `bench`, `user`, `login`) through `api`.
pub fn run(api: &dyn NodeApi, command: &Command) -> Result<()> {
    match command {
        Command::Add(args) => add(api, args)?,
        Command::Cat(args) => {
            let mut out = std::io::stdout().lock();
            api.cat(&args.path, args.offset, args.length, &mut out)?;
        }
        Command::Get(args) => {
            let cid = api.stat(&args.path)?.cid;
            let out = args
                .output
                .clone()
                .unwrap_or_else(|| cid.to_string().into());
            get_tree(api, &cid, &out)?;
            eprintln!("Saved {cid} to {}", out.display());
        }
        Command::Ls(args) => {
            let mut out = std::io::stdout().lock();
            for e in api.ls(&args.path)? {
                let slash = if e.kind == Kind::Dir { "/" } else { "" };
                writeln!(out, "{} {} {}{slash}", e.cid, e.size, e.name)?;
            }
        }
        Command::Car(CarCmd::Export { path, output }) => {
            export_car(api, path, output)?;
            eprintln!("exported {path} to {}", output.display());
        }
        Command::Car(CarCmd::Import { file, no_pin }) => {
            let mut f = File::open(file).with_context(|| format!("open {}", file.display()))?;
            let r = api
                .car_import(&mut f, !no_pin)
                .with_context(|| format!("importing {}", file.display()))?;
            for root in &r.pinned {
                println!("pinned root {root}");
            }
            eprintln!("imported {} blocks", r.blocks);
            if !r.incomplete.is_empty() {
                let list: Vec<String> = r.incomplete.iter().map(|c| c.to_string()).collect();
                bail!(
                    "blocks imported, but these roots are incomplete and were not pinned: {}",
                    list.join(", ")
                );
            }
        }
        Command::Pin(PinCmd::Ls) => {
            let mut out = std::io::stdout().lock();
            for p in api.pins()? {
                writeln!(out, "{} recursive {}", p.cid, p.count)?;
            }
        }
        Command::Pin(PinCmd::Add { paths }) => {
            for p in paths {
                println!("pinned {} recursively", api.pin(p)?.cid);
            }
        }
        Command::Pin(PinCmd::Rm { paths }) => {
            for p in paths {
                println!("unpinned {}", api.unpin(p)?.cid);
            }
        }
        Command::Gc => {
            let s = api.gc()?;
            println!(
                "removed {} blocks ({} bytes), kept {}",
                s.removed, s.freed_bytes, s.kept
            );
            if s.missing > 0 {
                eprintln!(
                    "warning: {} blocks of pinned DAGs are missing or corrupt; run `cairn check`",
                    s.missing
                );
            }
        }
        Command::Scrub => {
            let s = api.scrub()?;
            println!("re-hashed {} blocks ({} bytes)", s.checked, s.bytes);
            for c in &s.corrupt {
                eprintln!("CorruptBlock {c} (quarantined)");
            }
            if !s.corrupt.is_empty() {
                bail!(
                    "{} corrupt block(s) quarantined; in a cluster `cairn cluster repair` re-creates them",
                    s.corrupt.len()
                );
            }
        }
        Command::Check(args) => {
            let r = api.check(&args.path, args.hard)?;
            for c in &r.missing {
                eprintln!("missing block {c}");
            }
            for c in &r.corrupt {
                eprintln!("CorruptBlock {c} (quarantined)");
            }
            for (c, why) in &r.bad_files {
                eprintln!("file {c} does not re-assemble: {why}");
            }
            if !r.is_ok() {
                bail!(
                    "{}: check failed ({} missing, {} corrupt, {} bad files)",
                    r.cid,
                    r.missing.len(),
                    r.corrupt.len(),
                    r.bad_files.len()
                );
            }
            let how = if args.hard { "hard" } else { "soft" };
            println!(
                "{}: ok ({} blocks, {} bytes read, {how})",
                r.cid, r.blocks, r.bytes_read
            );
        }
        Command::Share {
            target,
            to,
            expires,
            revoke,
        } => {
            if *revoke {
                let r = api.revoke(target, to)?;
                println!("revoked {} on {target}; re-keyed as {}", r.revoked, r.cid);
            } else {
                let expires_ms = crate::user::expiry_ms(expires.as_deref())?;
                let s = api.share(target, to, expires_ms)?;
                println!("shared {target} ({}) with {}", s.cid, s.shared_with);
            }
        }
        Command::Key(KeyCmd::Create { user }) => {
            let k = api.create_key(user)?;
            println!(
                "user:       {user}\naccess key: {}\nsecret key: {}",
                k.access_key, k.secret_key
            );
        }
        Command::Key(KeyCmd::List) => {
            for k in api.keys()? {
                println!("{} {}", k.access_key, k.user);
            }
        }
        Command::Key(KeyCmd::Delete { access_key }) => {
            api.delete_key(access_key)?;
            println!("deleted {access_key}");
        }
        Command::Bucket(cmd) => crate::bucket_cmd::run(api, cmd)?,
        Command::Sftp(cmd) => sftp(api, cmd)?,
        Command::Id { json } => {
            let id = api.id()?;
            let peer_id = id.peer_id.unwrap_or_default();
            if *json {
                let v = serde_json::json!({ "peer_id": peer_id, "addrs": id.addrs });
                println!("{v}");
            } else {
                println!("{peer_id}");
                for a in &id.addrs {
                    println!("{a}");
                }
            }
        }
        Command::Peers => {
            for p in api.peers()? {
                let role = if p.member { "member" } else { "stranger" };
                let agent = p.agent.as_deref().unwrap_or("-");
                println!("{} {} {role} {agent}", p.peer_id, p.addr);
            }
        }
        Command::Dial { addr } => println!("connected to {}", api.dial(addr)?.peer_id),
        Command::Providers { cid } => {
            for p in api.providers(cid)? {
                println!("{p}");
            }
        }
        Command::Workers => {
            for w in api.workers()? {
                let st = &w.status;
                // An older node says only whether a run is going on.
                let state = match st.state.as_str() {
                    "" if st.running => "busy",
                    "" => "idle",
                    s => s,
                };
                println!(
                    "{:<10} runs {:<6} {state:<9} last {} ms: {}{}",
                    w.name,
                    st.runs,
                    st.last_took_ms,
                    if st.last_failed { "FAILED: " } else { "" },
                    st.last
                );
            }
        }
        Command::Cluster(cmd) => cluster(api, cmd)?,
        Command::Backup {
            dir,
            name,
            cid_version,
        } => crate::backup::backup(
            api,
            dir,
            name.as_deref(),
            CidVersion::try_from(*cid_version)?,
        )?,
        Command::Restore { what, dir } => crate::restore::restore(api, what, dir)?,
        Command::Snapshot(cmd) => crate::backup::snapshot(api, cmd)?,
        Command::Serve(_) | Command::Bench(_) | Command::User(_) | Command::Login => {
            bail!("serve, bench, user and login do not go through a node's API")
        }
    }
    Ok(())
}

fn cluster(api: &dyn NodeApi, cmd: &ClusterCommand) -> Result<()> {
    let mode = match cmd {
        ClusterCommand::Check {
            hard,
            target,
            objects,
        } if target.is_some() || *objects => {
            let (bucket, key) = match target
                .as_deref()
                .map(|t| t.split_once('/').unwrap_or((t, "")))
            {
                Some((b, k)) => (Some(b), Some(k).filter(|k| !k.is_empty())),
                None => (None, None),
            };
            let m = api.margins(bucket, key, *hard)?;
            let by: Vec<String> = m
                .by_margin
                .iter()
                .map(|(margin, n)| format!("{n} at margin {margin}"))
                .collect();
            println!(
                "{} objects (full margin {}): {}",
                m.objects,
                m.full,
                by.join(", ")
            );
            for (key, margin) in &m.below_full {
                let margin = margin.map_or("LOST".to_owned(), |m| m.to_string());
                println!("  {key} margin {margin}");
            }
            if m.by_margin.get("lost").copied().unwrap_or_default() > 0 {
                bail!("some objects cannot be read");
            }
            return Ok(());
        }
        ClusterCommand::Check { hard: false, .. } => RepairMode::Soft,
        ClusterCommand::Check { hard: true, .. } => RepairMode::Hard,
        ClusterCommand::Repair => RepairMode::Repair,
        ClusterCommand::Invite { .. } => bail!(
            "an invite holds the cluster secret: run `cairn cluster invite` on the node's machine, with its --data"
        ),
    };
    let c = api.cluster_check(mode)?;
    let r = &c.report;
    println!(
        "{} units checked; led here: {} at full margin, {} degraded, {} lost; {} pieces re-created, {} verified, {} failed",
        r.checked, r.at_full_margin, r.degraded, r.lost, r.repaired, r.verified, r.failed
    );
    if let Some(g) = &c.collected {
        println!(
            "piece GC: {} units freed ({} bytes); {} kept as referenced, {} unanswered, {} young, {} without owners",
            g.freed, g.freed_bytes, g.referenced, g.unanswered, g.young, g.unowned
        );
    }
    if r.lost > 0 || r.failed > 0 {
        bail!("some data cannot be read or verified");
    }
    Ok(())
}

/// A reader that moves a progress bar.
struct Progress<'a, R> {
    inner: R,
    bar: Option<&'a indicatif::ProgressBar>,
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(bar) = self.bar {
            bar.inc(n as u64);
        }
        Ok(n)
    }
}

/// `cairn add`: stdin or files with `/add`, a folder (`-r`) as its files then one `/tree`.
fn add(api: &dyn NodeApi, args: &AddArgs) -> Result<()> {
    let version = CidVersion::try_from(args.cid_version)?;
    let mut out = std::io::stdout().lock();
    let paths = if args.paths.is_empty() {
        vec!["-".into()]
    } else {
        args.paths.clone()
    };
    let mut print = |cid: &str, name: &str| -> Result<()> {
        if !args.quiet {
            writeln!(out, "added {cid} {name}")?;
        }
        Ok(())
    };
    for path in paths {
        let root = if path.as_os_str() == "-" {
            let cid = api
                .add(&mut std::io::stdin().lock(), version, args.pin)?
                .cid
                .to_string();
            print(&cid, &cid)?;
            cid
        } else if let meta =
            std::fs::symlink_metadata(&path).with_context(|| format!("{}", path.display()))?
            && !meta.is_dir()
            && !meta.is_file()
        {
            // `/add` takes bytes: reading through the link would store its target's.
            bail!(
                "{}: not a regular file or directory (add symlinks with -r inside a directory)",
                path.display()
            );
        } else if path.is_dir() {
            if !args.recursive {
                bail!(
                    "{} is a directory, use -r to add directories",
                    path.display()
                );
            }
            add_tree(api, args, version, &path, &mut print)?
        } else {
            let file = File::open(&path).with_context(|| format!("{}", path.display()))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bar = progress_bar(&path, false);
            let mut reader = Progress {
                inner: file,
                bar: bar.as_ref(),
            };
            let added = api.add(&mut reader, version, args.pin);
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            let cid = added?.cid.to_string();
            print(&cid, &name)?;
            cid
        };
        if args.quiet {
            println!("{root}");
        }
    }
    Ok(())
}

/// `add -r`: the walk `ipfs add -r` makes, its files stored with `/add/many` (many per request,
/// one commit per group), then the folders built by `/tree`. Returns the root's CID.
fn add_tree(
    api: &dyn NodeApi,
    args: &AddArgs,
    version: CidVersion,
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
    let walk = walk_tree(dir, &root, args.hidden)?;
    // The files first, many per request and one commit per group (as `backup` sends them).
    let mut files = Vec::new();
    for e in &walk {
        if let TreeItem::File(p) = &e.item {
            let meta = std::fs::symlink_metadata(p).with_context(|| format!("{}", p.display()))?;
            files.push((p.as_path(), crate::backup::Fingerprint::of(&meta)));
        }
    }
    let bar = progress_bar(dir, true).unwrap_or_else(indicatif::ProgressBar::hidden);
    let (sent, _) = crate::backup::send_files(api, &files, version, &bar)?;
    bar.finish_and_clear();
    let mut sent = sent.into_iter();
    let mut entries = Vec::new();
    for e in &walk {
        let entry = |kind| TreeEntry {
            path: e.rel.clone(),
            kind,
            cid: None,
            dag_size: None,
            target: None,
            meta: Meta::default(),
        };
        entries.push(match &e.item {
            TreeItem::Dir => entry(TreeKind::Dir),
            TreeItem::File(p) => {
                let file = sent
                    .next()
                    .context("the node answered fewer files than sent")?;
                if file.failed {
                    bail!(
                        "{}",
                        file.note.unwrap_or_else(|| format!("{}", p.display()))
                    );
                }
                print(&file.cid, &e.rel)?;
                TreeEntry {
                    cid: Some(file.cid.parse().context("the node answered a bad CID")?),
                    dag_size: Some(file.dag_size),
                    ..entry(TreeKind::File)
                }
            }
            TreeItem::Symlink(p) => {
                let target = std::fs::read_link(p)?;
                let target = target
                    .to_str()
                    .context("link target is not UTF-8")?
                    .to_owned();
                // Pure encoding: the node will make the same block.
                print(
                    &cairn_dag::dir::symlink(&target, version).cid.to_string(),
                    &e.rel,
                )?;
                TreeEntry {
                    target: Some(target),
                    ..entry(TreeKind::Symlink)
                }
            }
        });
    }
    let manifest = TreeManifest {
        root,
        meta: Meta::default(),
        entries,
    };
    let built = api.tree(&manifest, version, args.pin, None)?;
    let mut last = String::new();
    for f in built.folders() {
        last = f.cid.to_string();
        print(&last, &f.path)?;
    }
    Ok(last)
}

/// `cairn get`: files by `cat` (temp → rename), folders by `ls`, symlinks by `stat`. Entry
/// names come from the node's directory listing, which refuses `/`, `.`, `..`. Iterative (its
/// own stack, not the thread's) and at most [`MAX_TREE_DEPTH`](cairn_dag::dir::MAX_TREE_DEPTH)
/// folders deep.
fn get_tree(api: &dyn NodeApi, cid: &cairn_dag::Cid, out: &Path) -> Result<()> {
    let mut stack = vec![(*cid, out.to_path_buf(), 0usize)];
    while let Some((cid, out, depth)) = stack.pop() {
        let st = api.stat(&cid.to_string())?;
        match st.kind {
            Kind::File => write_atomic(&out, |f| {
                let mut w = std::io::BufWriter::new(f);
                api.cat(&cid.to_string(), 0, None, &mut w)?;
                Ok(w.flush()?)
            })?,
            Kind::Dir => {
                std::fs::create_dir_all(&out)
                    .with_context(|| format!("create {}", out.display()))?;
                let entries = api.ls(&cid.to_string())?;
                if !entries.is_empty() && depth >= cairn_dag::dir::MAX_TREE_DEPTH {
                    bail!(
                        "{cid} is more than {} folders deep",
                        cairn_dag::dir::MAX_TREE_DEPTH
                    );
                }
                for e in entries.iter().rev() {
                    let name = e.name.as_str();
                    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                        bail!("unsafe entry name {name:?} in {cid}");
                    }
                    stack.push((e.cid, out.join(name), depth + 1));
                }
            }
            Kind::Symlink => {
                let target = st.target.unwrap_or_default();
                let _ = std::fs::remove_file(&out);
                std::os::unix::fs::symlink(target, &out)
                    .with_context(|| format!("symlink {}", out.display()))?;
            }
            Kind::Other => bail!("{cid} is neither a UnixFS file nor a directory"),
        }
    }
    Ok(())
}

/// A byte progress bar on stderr, only on a terminal and only for inputs of 16 MiB or more.
fn progress_bar(path: &Path, recursive: bool) -> Option<indicatif::ProgressBar> {
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

fn total_size(path: &Path, recursive: bool) -> u64 {
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

/// `cairn sftp …`.
fn sftp(api: &dyn NodeApi, cmd: &crate::cli::SftpCmd) -> Result<()> {
    use crate::cli::SftpCmd;
    let quota_of = |text: &str| -> Result<Option<u64>> {
        match text {
            "none" => Ok(None),
            t => crate::daemon::config::parse_size("quota", t).map(Some),
        }
    };
    let print = |a: &cairn_api::types::Account| {
        let quota = a
            .quota
            .map_or("no quota".to_owned(), |q| format!("quota {q} bytes"));
        println!("{}\t{quota}, {}\t{} key(s)", a.name, a.policy, a.keys.len());
    };
    match cmd {
        SftpCmd::Add {
            name,
            key,
            key_text,
            quota,
            policy,
        } => {
            let text = match (key, key_text) {
                (Some(path), _) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, Some(text)) => text.clone(),
                (None, None) => anyhow::bail!("give --key FILE or --key-text TEXT"),
            };
            let quota = quota.as_deref().map(quota_of).transpose()?.flatten();
            print(&api.sftp_add(name, text.trim(), quota, policy.as_deref())?);
        }
        SftpCmd::List => {
            for a in api.sftp_list()? {
                print(&a);
            }
        }
        SftpCmd::Usage { name } => {
            let u = api.sftp_usage(name)?;
            match u.quota {
                Some(q) => println!("{name}: {} of {q} bytes", u.used),
                None => println!("{name}: {} bytes (no quota)", u.used),
            }
        }
        SftpCmd::Remove { name } => {
            api.sftp_remove(name)?;
            println!("removed {name} (its home bucket stays)");
        }
        SftpCmd::SetQuota {
            name,
            quota,
            policy,
        } => print(&api.sftp_set_quota(name, quota_of(quota)?, policy.as_deref())?),
    }
    Ok(())
}
