//! `cairn backup DIR` and `cairn snapshot` (restore is [`crate::restore`]), over the node's API ([`NodeApi`]): a
//! running node's, or the data folder's when none runs.
//!
//! Choices:
//!
//! * **The backup is an ordinary UnixFS tree.** Modes and mtimes are stored the IPFS way, as
//!   UnixFS 1.5 `mode`/`mtime` on file roots, directories and symlinks (symlinks: mtime only),
//!   like `ipfs add --preserve-mode --preserve-mtime`: any IPFS tool reads the files, and a
//!   restore gets the metadata back. A file root carrying metadata is a small node over the
//!   file's unchanged DAG (`cairn_dag::meta`), so equal contents are stored once.
//! * **Incremental through a local cache.** `$XDG_CACHE_HOME/cairn/backup-<hash>.json`
//!   (else `~/.cache/cairn/`; `<hash>` covers the node's peer id and data folder, the
//!   directory and the CID version) maps each file's relative path to its lstat fingerprint
//!   (size, mtime, ctime, inode) and its CID without metadata. A file whose fingerprint is
//!   unchanged is neither read nor sent; the others are read and sent whole — the node
//!   stores only the blocks it lacks, so an edit in a large file costs the changed chunks on
//!   disk. ctime is in the fingerprint because a same-size edit within one mtime tick, or an
//!   mtime set back by a tool, still changes it. The cache is written temp → fsync → rename
//!   after the snapshot is recorded; a lost or stale cache only costs a full re-read (if the
//!   node says a cached file is gone, e.g. after its snapshots were removed and GC ran, the
//!   backup runs once more without the cache).
//! * **Few requests.** Files go up many per request (`POST /api/v0/add/many`, one write batch
//!   and one commit per group of ≤ 1024 files or ≤ 256 MiB), the tree as one JSON manifest
//!   (`/tree?snapshot=NAME`), which builds the folders and records the snapshot in one
//!   commit. Between an upload and that commit the new blocks are unpinned (as with
//!   `add -r`): a GC in that window makes the tree step fail, and the backup retries once.
//! * **What is backed up**: regular files, directories (empty ones too), symlinks, hidden
//!   names included. Sockets, FIFOs and devices are skipped with a warning, as are names
//!   and link targets that are not UTF-8 (UnixFS names are strings). The node's own data
//!   folder, if inside the tree, is skipped. A file that cannot be read is left out and
//!   reported, the snapshot is still recorded, and the command exits with an error.
//! * **Snapshots** are named (default: the directory's name) and kept by the node as GC
//!   roots, not pins (pins are published by the gateway; backups are not).
//! * Progress bars (indicatif) on stderr only when it is a terminal.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cairn_api::NodeApi;
use cairn_api::types::{Meta, TreeEntry, TreeKind, TreeManifest};
use cairn_dag::meta::{UnixMeta, UnixTime};
use serde::{Deserialize, Serialize};

use crate::cli::SnapshotCmd;

/// Files per `/add/many` request.
const GROUP_FILES: usize = 1024;
/// Bytes (by lstat size) per `/add/many` request.
const GROUP_BYTES: u64 = 256 << 20;
/// Read size for files being sent (one frame each).
const CHUNK: usize = 256 * 1024;
/// The top folder's name in the tree manifest (a root folder's own name is not in its CID).
const ROOT: &str = "r";

/// What a backup needs to know of a file to tell whether it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    size: u64,
    mtime: i64,
    mtime_ns: i64,
    ctime: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Fingerprint {
    pub(crate) fn of(m: &std::fs::Metadata) -> Self {
        Fingerprint {
            size: m.len(),
            mtime: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_ns: m.ctime_nsec(),
            ino: m.ino(),
        }
    }
}

/// A cached file: its fingerprint when it was read, and its CID without metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cached {
    #[serde(flatten)]
    fp: Fingerprint,
    cid: String,
    dag_size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    /// Describes what the cache is for (node, directory, CID version).
    key: String,
    files: HashMap<String, Cached>,
}

/// What the walk found under the backed-up directory.
#[derive(Debug)]
enum Kind {
    Dir,
    File { path: PathBuf, fp: Fingerprint },
    Symlink(String),
}

#[derive(Debug)]
struct Item {
    /// Path below the backed-up directory, `/`-separated.
    rel: String,
    kind: Kind,
    meta: UnixMeta,
}

fn mtime_of(m: &std::fs::Metadata) -> UnixTime {
    UnixTime {
        secs: m.mtime(),
        nsecs: m.mtime_nsec().clamp(0, 999_999_999) as u32,
    }
}

/// Metadata a backup keeps: permission bits and mtime (symlinks: mtime only).
fn meta_of(m: &std::fs::Metadata) -> UnixMeta {
    UnixMeta {
        mode: (!m.file_type().is_symlink()).then_some(m.mode() & 0o7777),
        mtime: Some(mtime_of(m)),
    }
}

struct Walk {
    items: Vec<Item>,
    skipped: Vec<String>,
    /// (dev, ino) of a folder never to enter: the node's own data folder.
    exclude: Option<(u64, u64)>,
}

impl Walk {
    fn dir(&mut self, dir: &Path, rel: &str) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("list {}", dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("list {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                self.skipped
                    .push(format!("{}: name is not UTF-8", path.display()));
                continue;
            };
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let m =
                std::fs::symlink_metadata(&path).with_context(|| format!("{}", path.display()))?;
            let ft = m.file_type();
            if ft.is_dir() {
                if self.exclude == Some((m.dev(), m.ino())) {
                    self.skipped
                        .push(format!("{}: the node's data folder", path.display()));
                    continue;
                }
                self.items.push(Item {
                    rel: child.clone(),
                    kind: Kind::Dir,
                    meta: meta_of(&m),
                });
                self.dir(&path, &child)?;
            } else if ft.is_file() {
                self.items.push(Item {
                    rel: child,
                    kind: Kind::File {
                        path,
                        fp: Fingerprint::of(&m),
                    },
                    meta: meta_of(&m),
                });
            } else if ft.is_symlink() {
                let target =
                    std::fs::read_link(&path).with_context(|| format!("{}", path.display()))?;
                match target.into_os_string().into_string() {
                    Ok(target) => self.items.push(Item {
                        rel: child,
                        kind: Kind::Symlink(target),
                        meta: meta_of(&m),
                    }),
                    Err(_) => self
                        .skipped
                        .push(format!("{}: link target is not UTF-8", path.display())),
                }
            } else {
                self.skipped.push(format!(
                    "{}: not a regular file, directory or symlink",
                    path.display()
                ));
            }
        }
        Ok(())
    }
}

fn cache_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("cairn"))
}

fn load_cache(path: &Path, key: &str) -> Cache {
    let cache = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cache>(&b).ok())
        .filter(|c| c.key == key);
    cache.unwrap_or_else(|| Cache {
        key: key.to_owned(),
        files: HashMap::new(),
    })
}

/// Writes `bytes` to `path`: temp file → fsync → rename → folder fsync.
fn write_cache(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    crate::output::write_atomic(path, |f| Ok(f.write_all(bytes)?))
}

pub(crate) fn spinner(what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) =
        indicatif::ProgressStyle::with_template(&format!("{{spinner}} {what} {{pos}}"))
    {
        bar.set_style(style);
    }
    bar
}

pub(crate) fn bar(total: u64, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{what} {{bar:40}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} eta {{eta}} {{msg}}"
    )) {
        bar.set_style(style);
    }
    bar
}

/// A file's read failure while sending.
#[derive(Debug, Default)]
struct SendOutcome {
    /// Per file: `None` if read whole and unchanged meanwhile, else why not to cache it or
    /// (with `failed`) to leave it out.
    notes: Vec<Option<String>>,
    failed: Vec<bool>,
    bytes: u64,
}

/// The body of one `/add/many` request: each file in chunks of `u32` BE length + bytes, then
/// a zero length. A file that cannot be opened or read is ended where it failed and marked.
struct Frames<'a> {
    files: &'a [(&'a Path, Fingerprint)],
    index: usize,
    current: Option<std::fs::File>,
    /// `4 + CHUNK` bytes, allocated once; `out[pos..len]` is still to be sent.
    out: Vec<u8>,
    len: usize,
    pos: usize,
    read_size: u64,
    outcome: SendOutcome,
    bar: &'a indicatif::ProgressBar,
}

impl Frames<'_> {
    fn end_file(&mut self, problem: Option<String>, failed: bool) {
        self.out[..4].copy_from_slice(&0u32.to_be_bytes());
        self.len = 4;
        self.pos = 0;
        self.current = None;
        self.outcome.notes.push(problem);
        self.outcome.failed.push(failed);
        self.index += 1;
        self.read_size = 0;
    }

    /// Prepares the next piece of output.
    fn fill(&mut self) {
        let (path, fp) = self.files[self.index];
        let file = match self.current.take() {
            Some(f) => f,
            None => match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) => return self.end_file(Some(format!("{}: {e}", path.display())), true),
            },
        };
        let n = loop {
            match (&file).read(&mut self.out[4..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return self.end_file(Some(format!("{}: {e}", path.display())), true);
                }
            }
        };
        if n == 0 {
            // Changed while being read? Then it is kept as read, but not cached.
            let now = file.metadata().map(|m| Fingerprint::of(&m)).ok();
            let changed = now.map(|now| (now.size, now.mtime, now.mtime_ns))
                != Some((fp.size, fp.mtime, fp.mtime_ns))
                || self.read_size != fp.size;
            let note = changed.then(|| format!("{}: changed while being read", path.display()));
            return self.end_file(note, false);
        }
        self.out[..4].copy_from_slice(&(n as u32).to_be_bytes());
        self.len = 4 + n;
        self.pos = 0;
        self.read_size += n as u64;
        self.outcome.bytes += n as u64;
        self.bar.inc(n as u64);
        self.current = Some(file);
    }
}

impl Read for Frames<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.len {
            if self.index >= self.files.len() {
                return Ok(0);
            }
            self.fill();
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Sends files with `/add/many`; returns each one's (CID, DAG size) and what happened.
fn send_group(
    api: &dyn NodeApi,
    files: &[(&Path, Fingerprint)],
    cid_version: cairn_dag::CidVersion,
    bar: &indicatif::ProgressBar,
) -> Result<(Vec<(String, u64)>, SendOutcome)> {
    let mut frames = Frames {
        files,
        index: 0,
        current: None,
        out: vec![0; 4 + CHUNK],
        len: 0,
        pos: 0,
        read_size: 0,
        outcome: SendOutcome::default(),
        bar,
    };
    let links: Vec<(String, u64)> = api
        .add_many(&mut frames, cid_version)?
        .into_iter()
        .map(|l| (l.cid.to_string(), l.dag_size))
        .collect();
    if links.len() != files.len() || frames.outcome.notes.len() != files.len() {
        bail!(
            "the node stored {} files of {} sent",
            links.len(),
            files.len()
        );
    }
    Ok((links, frames.outcome))
}

/// Counts of one backup run.
#[derive(Debug, Default)]
struct Counts {
    files: u64,
    sent: u64,
    bytes: u64,
    dirs: u64,
    symlinks: u64,
    failed: Vec<String>,
}

/// Why a pass failed.
enum PassError {
    /// The node lacks a file the cache names: run again without the cache.
    Retry,
    Fail(anyhow::Error),
}

impl From<anyhow::Error> for PassError {
    fn from(e: anyhow::Error) -> Self {
        PassError::Fail(e)
    }
}

/// One pass: send what the cache does not cover, then the manifest.
fn pass(
    api: &dyn NodeApi,
    root_meta: &UnixMeta,
    walk: &Walk,
    cache: &mut Cache,
    name: &str,
    cid_version: cairn_dag::CidVersion,
) -> Result<(cairn_api::types::Snapshot, Counts), PassError> {
    let mut counts = Counts::default();
    let mut fresh: HashMap<String, Cached> = HashMap::new();
    let mut failed: std::collections::HashSet<&str> = Default::default();
    let to_send: Vec<(&Item, &Path, Fingerprint)> = walk
        .items
        .iter()
        .filter_map(|i| match &i.kind {
            Kind::File { path, fp } => match cache.files.get(&i.rel) {
                Some(c) if c.fp == *fp => {
                    fresh.insert(i.rel.clone(), c.clone());
                    None
                }
                _ => Some((i, path.as_path(), *fp)),
            },
            _ => None,
        })
        .collect();
    let total: u64 = to_send.iter().map(|(_, _, fp)| fp.size).sum();
    let progress = bar(total, "backup");
    let files: Vec<(&Path, Fingerprint)> = to_send.iter().map(|(_, p, fp)| (*p, *fp)).collect();
    let (sent, bytes) = send_files(api, &files, cid_version, &progress)?;
    counts.bytes += bytes;
    for ((item, _, fp), file) in to_send.iter().zip(sent) {
        if file.failed {
            counts.failed.push(file.note.unwrap_or_default());
            failed.insert(item.rel.as_str());
            continue;
        }
        counts.sent += 1;
        let entry = Cached {
            fp: *fp,
            cid: file.cid,
            dag_size: file.dag_size,
        };
        match &file.note {
            // In this snapshot as read, but read again next time.
            Some(note) => {
                eprintln!("cairn: warning: {note}");
                fresh.insert(
                    item.rel.clone(),
                    Cached {
                        fp: Fingerprint {
                            size: u64::MAX,
                            ..*fp
                        },
                        ..entry
                    },
                );
            }
            None => {
                fresh.insert(item.rel.clone(), entry);
            }
        }
    }
    progress.finish_and_clear();

    let mut entries = Vec::with_capacity(walk.items.len());
    for item in &walk.items {
        let path = format!("{ROOT}/{}", item.rel);
        let entry = |kind| TreeEntry {
            path: path.clone(),
            kind,
            cid: None,
            dag_size: None,
            target: None,
            meta: Meta::from(&item.meta),
        };
        let e = match &item.kind {
            Kind::Dir => {
                counts.dirs += 1;
                entry(TreeKind::Dir)
            }
            Kind::File { .. } => {
                if failed.contains(item.rel.as_str()) {
                    continue;
                }
                counts.files += 1;
                let c = &fresh[&item.rel];
                let cid = c
                    .cid
                    .parse()
                    .with_context(|| format!("the backup cache's CID of {}", item.rel))?;
                TreeEntry {
                    cid: Some(cid),
                    dag_size: Some(c.dag_size),
                    ..entry(TreeKind::File)
                }
            }
            Kind::Symlink(target) => {
                counts.symlinks += 1;
                TreeEntry {
                    target: Some(target.clone()),
                    ..entry(TreeKind::Symlink)
                }
            }
        };
        entries.push(e);
    }
    let manifest = TreeManifest {
        root: ROOT.to_owned(),
        meta: Meta::from(root_meta),
        entries,
    };
    let answer = match api.tree(&manifest, cid_version, false, Some(name)) {
        Ok(a) => a,
        Err(e)
            if e.to_string().contains("is not (completely) stored") && !cache.files.is_empty() =>
        {
            return Err(PassError::Retry);
        }
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    let cairn_api::types::TreeBuilt::Snapshot { snapshot, .. } = answer else {
        return Err(anyhow::anyhow!("the node recorded no snapshot").into());
    };
    cache.files = fresh;
    Ok((snapshot, counts))
}

/// `cairn backup DIR [--name NAME] [--cid-version V]`.
pub fn backup(
    api: &dyn NodeApi,
    dir: &Path,
    name: Option<&str>,
    cid_version: cairn_dag::CidVersion,
) -> Result<()> {
    let canonical = std::fs::canonicalize(dir).with_context(|| format!("{}", dir.display()))?;
    let top = std::fs::symlink_metadata(&canonical)
        .with_context(|| format!("{}", canonical.display()))?;
    if !top.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let name = match name {
        Some(n) => n.to_owned(),
        None => canonical
            .file_name()
            .and_then(|n| n.to_str())
            .context("the directory has no UTF-8 name: give one with --name")?
            .to_owned(),
    };
    let id = api.id()?;
    let data = id.data.clone();
    let exclude = std::fs::metadata(&data).ok().map(|m| (m.dev(), m.ino()));
    let mut walk = Walk {
        items: Vec::new(),
        skipped: Vec::new(),
        exclude,
    };
    walk.dir(&canonical, "")?;
    for s in &walk.skipped {
        eprintln!("cairn: skipped {s}");
    }
    let key = format!(
        "node {} {data}; dir {}; cid version {}",
        id.peer_id.as_deref().unwrap_or("-"),
        canonical.display(),
        u8::from(cid_version)
    );
    let cache_path = cache_dir().map(|d| {
        let hash = cairn_dag::cid_of(cairn_dag::CidVersion::V1, cairn_dag::RAW, key.as_bytes())
            .expect("a raw CIDv1");
        d.join(format!("backup-{hash}.json"))
    });
    let mut cache = match &cache_path {
        Some(p) => load_cache(p, &key),
        None => Cache::default(),
    };
    let root_meta = meta_of(&top);
    let (snapshot, counts) = match pass(api, &root_meta, &walk, &mut cache, &name, cid_version) {
        Ok(done) => done,
        Err(PassError::Fail(e)) => return Err(e),
        Err(PassError::Retry) => {
            eprintln!("cairn: the node lacks files the local cache names: sending everything");
            cache.files.clear();
            match pass(api, &root_meta, &walk, &mut cache, &name, cid_version) {
                Ok(done) => done,
                Err(PassError::Fail(e)) => return Err(e),
                Err(PassError::Retry) => bail!("the node lost files uploaded just now"),
            }
        }
    };
    if let Some(p) = &cache_path
        && let Err(e) = serde_json::to_vec(&cache)
            .map_err(anyhow::Error::from)
            .and_then(|b| write_cache(p, &b))
    {
        eprintln!("cairn: warning: could not write the backup cache: {e:#}");
    }
    let (cid, time_ms) = (snapshot.cid, snapshot.time_ms);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(time_ms);
    println!(
        "{} files, {} sent, {} bytes sent; {} dirs, {} symlinks",
        counts.files, counts.sent, counts.bytes, counts.dirs, counts.symlinks
    );
    println!(
        "snapshot {name} at {} ({time_ms})",
        httpdate::fmt_http_date(when)
    );
    println!("{cid}");
    if !counts.failed.is_empty() {
        for f in &counts.failed {
            eprintln!("cairn: could not read {f}");
        }
        bail!(
            "{} file(s) could not be read and are not in the snapshot",
            counts.failed.len()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// restore

/// One file sent by [`send_files`].
pub(crate) struct Sent {
    /// Its root, as the node stored it.
    pub cid: String,
    /// Its DAG size.
    pub dag_size: u64,
    /// Why it should not be cached (changed while read) or, with `failed`, why it is left out.
    pub note: Option<String>,
    /// It could not be read whole.
    pub failed: bool,
}

/// Sends `files` with `/add/many`, many per request (≤ [`GROUP_FILES`] files or ≤
/// [`GROUP_BYTES`] each, one commit each): one [`Sent`] per file, in order, and the bytes read.
pub(crate) fn send_files(
    api: &dyn NodeApi,
    files: &[(&Path, Fingerprint)],
    cid_version: cairn_dag::CidVersion,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<Sent>, u64)> {
    let (mut sent, mut bytes) = (Vec::with_capacity(files.len()), 0);
    let mut start = 0;
    while start < files.len() {
        let mut end = start;
        let mut group_bytes = 0;
        while end < files.len()
            && end - start < GROUP_FILES
            && (end == start || group_bytes < GROUP_BYTES)
        {
            group_bytes += files[end].1.size;
            end += 1;
        }
        let (links, outcome) = send_group(api, &files[start..end], cid_version, progress)?;
        bytes += outcome.bytes;
        for (((cid, dag_size), note), failed) in
            links.into_iter().zip(outcome.notes).zip(outcome.failed)
        {
            sent.push(Sent {
                cid,
                dag_size,
                note,
                failed,
            });
        }
        progress.set_message(format!("{} files", sent.len()));
        start = end;
    }
    Ok((sent, bytes))
}

/// `cairn snapshot ls|rm`: one line per snapshot listed or forgotten.
pub fn snapshot(api: &dyn NodeApi, cmd: &SnapshotCmd) -> Result<()> {
    use cairn_node::snapshot::Forget;
    let (rows, verb) = match cmd {
        SnapshotCmd::Ls { name } => (api.snapshots(name.as_deref())?, ""),
        SnapshotCmd::Rm {
            name,
            all,
            cid,
            keep_last,
        } => {
            let which = match (all, cid, keep_last) {
                (true, _, _) => Forget::All,
                (_, Some(cid), _) => {
                    Forget::Cid(cid.parse().with_context(|| format!("--cid {cid:?}"))?)
                }
                (_, _, Some(n)) => Forget::KeepLast(*n),
                _ => bail!("say which snapshots: --all, --cid CID or --keep-last N"),
            };
            (api.snapshot_rm(name, &which)?, "forgot ")
        }
    };
    for row in &rows {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(row.time_ms);
        println!(
            "{verb}{}\t{}\t{}",
            row.name,
            httpdate::fmt_http_date(when),
            row.cid
        );
    }
    if !verb.is_empty() {
        eprintln!(
            "forgot {} snapshot(s); `cairn gc` frees blocks nothing else keeps",
            rows.len()
        );
    }
    Ok(())
}
