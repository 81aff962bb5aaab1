//! `cairn restore NAME|CID DIR`, over the node's API ([`NodeApi`]): a running node's, or the
//! data folder's when none runs. Its counterpart is [`crate::backup`].
//!
//! Choices:
//!
//! * **Restore** takes a snapshot name (its newest snapshot) or a CID (or `CID/path`), and a
//!   directory that is new or empty. It lists the whole tree first (`/ls`, which carries each
//!   entry's kind, size, metadata and symlink target), then fetches files four at a time
//!   (`/cat`), each written to a temp file in its folder, given its mode and mtime, then
//!   renamed into place. Symlinks are made as symlinks (their mtime set without following
//!   them). Folders get their modes and mtimes last, deepest first, since creating entries
//!   changes a folder's mtime and a read-only mode would forbid them. Names the node lists are
//!   checked again (no `/`, `.`, `..`, NUL). Files are not fsynced one by one. Hard links come
//!   back as separate files; owners and extended attributes are not kept (UnixFS has no place
//!   for them).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use cairn_api::NodeApi;
use cairn_api::types::{Kind as NodeKind, Meta, Stat};
use cairn_dag::meta::{UnixMeta, UnixTime};

use crate::backup::{bar, spinner};

/// Files fetched at once by a restore.
const RESTORE_THREADS: usize = 4;

fn meta_from(m: &Meta) -> Result<UnixMeta> {
    UnixMeta::try_from(*m).map_err(anyhow::Error::msg)
}

#[derive(Debug)]
enum Plan {
    Dir,
    File { cid: cairn_dag::Cid, size: u64 },
    Symlink(String),
}

fn safe_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0'))
}

fn system_time(t: UnixTime) -> std::time::SystemTime {
    let secs = std::time::Duration::from_secs(t.secs.unsigned_abs());
    let base = if t.secs >= 0 {
        std::time::UNIX_EPOCH + secs
    } else {
        std::time::UNIX_EPOCH - secs
    };
    base + std::time::Duration::from_nanos(u64::from(t.nsecs))
}

/// Sets a symlink's own mtime (not its target's).
fn set_symlink_mtime(path: &Path, t: UnixTime) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: t.secs as libc::time_t,
            tv_nsec: t.nsecs as _,
        },
    ];
    // SAFETY: `c` is a NUL-terminated path and `times` two valid timespecs, as utimensat needs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("set the mtime of {}", path.display()));
    }
    Ok(())
}

/// Gives a folder its mtime, then its mode (which may forbid opening it).
fn apply_meta(path: &Path, meta: &UnixMeta) -> Result<()> {
    if let Some(t) = meta.mtime {
        let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
        f.set_times(std::fs::FileTimes::new().set_modified(system_time(t)))
            .with_context(|| format!("set the mtime of {}", path.display()))?;
    }
    if let Some(mode) = meta.mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
            .with_context(|| format!("set the mode of {}", path.display()))?;
    }
    Ok(())
}

/// Fetches a file to `out`: temp file beside it, mode and mtime, rename.
fn fetch_file(
    api: &dyn NodeApi,
    cid: &cairn_dag::Cid,
    size: u64,
    meta: &UnixMeta,
    out: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<()> {
    let tmp = out.with_file_name(format!(
        ".{}.cairn-tmp",
        out.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    let result = (|| {
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        let mut sink = Counted {
            file,
            written: 0,
            bar,
        };
        api.cat(&cid.to_string(), 0, None, &mut sink)
            .with_context(|| format!("fetching {cid}"))?;
        let Counted { file, written, .. } = sink;
        if written != size {
            bail!("{cid}: got {written} bytes, the node listed {size}");
        }
        if let Some(mode) = meta.mode {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if let Some(t) = meta.mtime {
            file.set_times(std::fs::FileTimes::new().set_modified(system_time(t)))?;
        }
        drop(file);
        std::fs::rename(&tmp, out).with_context(|| format!("write {}", out.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A file being restored: counts what is written and moves the bar.
struct Counted<'a> {
    file: std::fs::File,
    written: u64,
    bar: &'a indicatif::ProgressBar,
}

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The CID `what` names: the newest snapshot of that name, else a CID or `CID/path`.
fn resolve_target(api: &dyn NodeApi, what: &str) -> Result<Stat> {
    let snaps = api.snapshots(Some(what))?;
    let path = match snaps.last() {
        Some(s) => s.cid.to_string(),
        None => what.to_owned(),
    };
    api.stat(&path)
        .with_context(|| format!("{what:?} is neither a snapshot name nor a stored CID"))
}

/// `cairn restore NAME|CID DIR`.
pub fn restore(api: &dyn NodeApi, what: &str, dir: &Path) -> Result<()> {
    let stat = resolve_target(api, what)?;
    let cid = stat.cid;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            if std::fs::read_dir(dir)?.next().is_some() {
                bail!(
                    "{} is not empty: restore into a new or empty directory",
                    dir.display()
                );
            }
        }
        Ok(_) => bail!(
            "{} exists: restore into a new or empty directory",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("{}", dir.display())),
    }
    let root_meta = meta_from(&stat.meta)?;
    match stat.kind {
        NodeKind::Dir => {}
        NodeKind::File => {
            let size = stat.size.unwrap_or_default();
            fetch_file(api, &cid, size, &root_meta, dir, &bar(size, "restore"))?;
            println!(
                "restored 1 file ({size} bytes) from {cid} to {}",
                dir.display()
            );
            return Ok(());
        }
        NodeKind::Symlink => {
            let target = stat.target.as_deref().unwrap_or_default();
            std::os::unix::fs::symlink(target, dir)
                .with_context(|| format!("symlink {}", dir.display()))?;
            if let Some(t) = root_meta.mtime {
                set_symlink_mtime(dir, t)?;
            }
            println!("restored a symlink from {cid} to {}", dir.display());
            return Ok(());
        }
        NodeKind::Other => bail!("{cid} is neither a UnixFS directory, file nor symlink"),
    }

    // The whole tree first: (relative path, what, metadata), parents before children.
    let mut plan: Vec<(PathBuf, Plan, UnixMeta)> = Vec::new();
    let mut queue = std::collections::VecDeque::from([(PathBuf::new(), cid)]);
    let listing = spinner("listing folders");
    while let Some((rel, dir_cid)) = queue.pop_front() {
        for e in api.ls(&dir_cid.to_string())? {
            if !safe_name(&e.name) {
                bail!("unsafe entry name {:?} in {dir_cid}", e.name);
            }
            let child = rel.join(&e.name);
            let what = match e.kind {
                NodeKind::Dir => {
                    queue.push_back((child.clone(), e.cid));
                    Plan::Dir
                }
                NodeKind::File => Plan::File {
                    cid: e.cid,
                    size: e.size,
                },
                NodeKind::Symlink => Plan::Symlink(e.target.clone().unwrap_or_default()),
                NodeKind::Other => bail!(
                    "{}: {} is not a UnixFS file, directory or symlink",
                    child.display(),
                    e.cid
                ),
            };
            plan.push((child, what, meta_from(&e.meta)?));
        }
        listing.inc(1);
    }
    listing.finish_and_clear();

    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let (mut dirs, mut symlinks) = (0u64, 0u64);
    let mut files = Vec::new();
    for (rel, what, meta) in &plan {
        let out = dir.join(rel);
        match what {
            Plan::Dir => {
                std::fs::create_dir(&out).with_context(|| format!("create {}", out.display()))?;
                dirs += 1;
            }
            Plan::Symlink(target) => {
                std::os::unix::fs::symlink(target, &out)
                    .with_context(|| format!("symlink {}", out.display()))?;
                if let Some(t) = meta.mtime {
                    set_symlink_mtime(&out, t)?;
                }
                symlinks += 1;
            }
            Plan::File { cid, size } => files.push((out, cid, *size, meta)),
        }
    }
    let total: u64 = files.iter().map(|f| f.2).sum();
    let progress = bar(total, "restore");
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..RESTORE_THREADS.min(files.len()) {
            s.spawn(|| {
                loop {
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((out, cid, size, meta)) = files.get(i) else {
                        return;
                    };
                    if let Err(e) = fetch_file(api, cid, *size, meta, out, &progress) {
                        if let Ok(mut f) = failure.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    progress.finish_and_clear();
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    // Folders last, deepest first: their mtimes change as entries are made in them.
    let mut folders: Vec<(PathBuf, &UnixMeta)> = plan
        .iter()
        .filter(|(_, what, _)| matches!(what, Plan::Dir))
        .map(|(rel, _, meta)| (dir.join(rel), meta))
        .collect();
    folders.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, meta) in folders {
        apply_meta(&path, meta)?;
    }
    apply_meta(dir, &root_meta)?;
    println!(
        "restored {} files ({total} bytes), {dirs} dirs, {symlinks} symlinks from {cid} to {}",
        files.len(),
        dir.display()
    );
    Ok(())
}
