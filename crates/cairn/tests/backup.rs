//! `cairn backup` / `cairn restore` against a running node: a tree of 10 000 files (nested
//! folders, small and multi-MiB files, varied modes, distinct mtimes, symlinks, an empty and
//! a read-only folder, a hidden file) round-trips byte-exact with modes and mtimes; a second
//! backup after one in-place edit sends that file only and stores only its new blocks; both
//! snapshots survive GC and restore their own version.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, ok, pattern_seeded};
use serde_json::Value;

/// `cairn ARGS --data DATA` with its backup cache under `cache`.
fn cairn(data: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("CAIRN_DATA")
        .env_remove("CAIRN_NODE")
        .env("XDG_CACHE_HOME", cache)
        .output()
        .unwrap()
}

/// A GET on the node's local API (address and token from its `api.toml`).
fn api(data: &Path, path: &str) -> Value {
    let file: toml::Value =
        toml::from_str(&std::fs::read_to_string(data.join("api.toml")).unwrap()).unwrap();
    let url = format!("http://{}/api/v0{path}", file["addr"].as_str().unwrap());
    let mut resp = ureq::get(&url)
        .header(
            "Authorization",
            format!("Bearer {}", file["token"].as_str().unwrap()),
        )
        .call()
        .unwrap();
    serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
}

fn blocks(data: &Path) -> u64 {
    api(data, "/repo/stat")["blocks"].as_u64().unwrap()
}

fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
    std::fs::File::open(path)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(t))
        .unwrap();
}

const DIRS: usize = 25;
const SUBS: usize = 4;
const PER: usize = 100; // 25 × 4 × 100 = 10 000 files
const BIG: [(usize, usize, usize, usize); 3] = [
    // (dir, sub, file, size)
    (3, 1, 7, 5 << 20),
    (11, 0, 42, 3 * (1 << 20) + 12_345),
    (20, 3, 99, 2 << 20),
];

/// Builds the source tree; returns the total of file bytes.
fn build(src: &Path) -> u64 {
    let modes = [0o644, 0o600, 0o755, 0o640, 0o444, 0o700, 0o664];
    let mut total = 0u64;
    let mut n = 0u64;
    for d in 0..DIRS {
        for s in 0..SUBS {
            let sub = src.join(format!("d{d:02}/s{s}"));
            std::fs::create_dir_all(&sub).unwrap();
            for f in 0..PER {
                let size = BIG
                    .iter()
                    .find(|b| (b.0, b.1, b.2) == (d, s, f))
                    .map_or((n as usize * 37) % 3000, |b| b.3);
                let path = sub.join(format!("f{f:03}.dat"));
                std::fs::write(&path, pattern_seeded(size, n)).unwrap();
                total += size as u64;
                std::fs::set_permissions(
                    &path,
                    std::fs::Permissions::from_mode(modes[n as usize % modes.len()]),
                )
                .unwrap();
                set_mtime(
                    &path,
                    1_500_000_000 + n * 61,
                    (n as u32 * 7919) % 1_000_000_000,
                );
                n += 1;
            }
        }
    }
    std::fs::write(src.join(".hidden"), b"dot file\n").unwrap();
    total += 9;
    std::fs::create_dir(src.join("empty")).unwrap();
    std::os::unix::fs::symlink("d00/s0/f000.dat", src.join("link")).unwrap();
    std::os::unix::fs::symlink("../nowhere", src.join("d01/dangling")).unwrap();
    // folder metadata last (creating entries changes a folder's mtime), deepest first
    for d in 0..DIRS {
        for s in 0..SUBS {
            let sub = src.join(format!("d{d:02}/s{s}"));
            set_mtime(&sub, 1_400_000_000 + (d * 10 + s) as u64, 500);
            let mode = if (d, s) == (7, 2) { 0o555 } else { 0o750 };
            std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let dir = src.join(format!("d{d:02}"));
        set_mtime(&dir, 1_300_000_000 + d as u64, 0);
        std::fs::set_permissions(
            &dir,
            std::fs::Permissions::from_mode(0o700 + (d as u32 % 2) * 0o55),
        )
        .unwrap();
    }
    set_mtime(&src.join("empty"), 1_200_000_000, 1);
    set_mtime(src, 1_100_000_000, 2);
    total
}

/// What a tree holds: path → (kind, mode, mtime, content or link target).
type Snapshot = BTreeMap<PathBuf, (char, u32, (i64, i64), Vec<u8>)>;

fn scan(root: &Path) -> Snapshot {
    fn walk(root: &Path, rel: &Path, out: &mut Snapshot) {
        let path = root.join(rel);
        let m = std::fs::symlink_metadata(&path).unwrap();
        let time = (m.mtime(), m.mtime_nsec());
        let entry = if m.file_type().is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            ('l', 0, time, target.into_os_string().into_encoded_bytes())
        } else if m.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                walk(root, &rel.join(n), out);
            }
            ('d', m.mode() & 0o7777, time, Vec::new())
        } else {
            ('f', m.mode() & 0o7777, time, std::fs::read(&path).unwrap())
        };
        out.insert(rel.to_owned(), entry);
    }
    let mut out = Snapshot::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn assert_same(a: &Snapshot, b: &Snapshot, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: entry counts differ");
    for ((pa, ea), (pb, eb)) in a.iter().zip(b) {
        assert_eq!(pa, pb, "{what}: entries differ");
        assert_eq!(
            (ea.0, ea.1, ea.2),
            (eb.0, eb.1, eb.2),
            "{what}: kind, mode or mtime of {}",
            pa.display()
        );
        assert!(ea.3 == eb.3, "{what}: content of {} differs", pa.display());
    }
}

/// `(files, sent, bytes sent)` and the root CID from `cairn backup`'s output.
fn parse_backup(out: &str) -> ((u64, u64, u64), String) {
    let first = out.lines().next().unwrap();
    let nums: Vec<u64> = first
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        first.contains(" files, ") && first.contains(" sent, ") && first.contains(" bytes sent"),
        "{out}"
    );
    let cid = out.lines().last().unwrap().trim().to_owned();
    ((nums[0], nums[1], nums[2]), cid)
}

fn make_writable(root: &Path) {
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        if m.is_dir() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            make_writable(&e.path());
        }
    }
}

#[test]
fn backup_restore_10000_files_then_incremental() {
    let started = std::time::Instant::now();
    let node = Server::start();
    let data = node.data.path();
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("photos");
    let total = build(&src);
    let before = scan(&src);
    assert_eq!(before.values().filter(|e| e.0 == 'f').count(), 10_001);
    let built = started.elapsed();

    // first backup: everything is sent
    let blocks_0 = blocks(data);
    let out = ok(&cairn(data, &cache, &["backup", src.to_str().unwrap()]));
    let ((files, sent, sent_bytes), old_root) = parse_backup(&out);
    assert_eq!((files, sent, sent_bytes), (10_001, 10_001, total), "{out}");
    assert!(out.contains("snapshot photos at "), "{out}");
    let first = started.elapsed();

    // restore by name into a fresh folder: bytes, modes, mtimes, symlinks, empty folder
    let out1 = tmp.path().join("out1");
    ok(&cairn(
        data,
        &cache,
        &["restore", "photos", out1.to_str().unwrap()],
    ));
    assert_same(&before, &scan(&out1), "first restore");
    let restored = started.elapsed();

    // one in-place edit of a multi-MiB file (one 256 KiB chunk changes; its folder's mtime
    // does not), then a second backup
    let edited = src.join("d03/s1/f007.dat");
    let old_bytes = std::fs::read(&edited).unwrap();
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&edited)
            .unwrap();
        f.seek(SeekFrom::Start(3 << 20)).unwrap();
        f.write_all(b"an edit in the middle").unwrap();
    }
    let new_bytes = std::fs::read(&edited).unwrap();
    let after = scan(&src);
    let blocks_1 = blocks(data);
    let out = ok(&cairn(data, &cache, &["backup", src.to_str().unwrap()]));
    let ((files, sent, sent_bytes), new_root) = parse_backup(&out);
    assert_eq!(
        (files, sent, sent_bytes),
        (10_001, 1, new_bytes.len() as u64),
        "{out}"
    );
    assert_ne!(new_root, old_root);
    // new blocks: the file's changed leaf and its new root (CIDv0 layout), its root with
    // metadata, and the three folders above it (d03/s1, d03, the top)
    let cids = |b: &[u8]| -> HashSet<cairn_dag::Cid> {
        cairn_dag::file::encode_bytes(b, cairn_dag::CidVersion::V0)
            .0
            .iter()
            .map(|b| b.cid)
            .collect()
    };
    let new_file_blocks = cids(&new_bytes).difference(&cids(&old_bytes)).count() as u64;
    assert_eq!(new_file_blocks, 2, "one leaf and the file's root");
    assert_eq!(blocks(data) - blocks_1, new_file_blocks + 1 + 3, "{out}");

    // nothing changed: nothing sent, the same root
    let out = ok(&cairn(data, &cache, &["backup", src.to_str().unwrap()]));
    let ((files, sent, sent_bytes), same_root) = parse_backup(&out);
    assert_eq!(
        (files, sent, sent_bytes, same_root.as_str()),
        (10_001, 0, 0, new_root.as_str())
    );

    let snaps = api(data, "/snapshot/ls?name=photos");
    let snaps: Vec<&str> = snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cid"].as_str().unwrap())
        .collect();
    assert_eq!(
        snaps,
        [old_root.as_str(), new_root.as_str(), new_root.as_str()]
    );
    assert!(blocks_1 > blocks_0);

    // snapshots are GC roots (nothing is pinned): both versions restore after a GC
    ok(&cairn(data, &cache, &["gc"]));
    assert!(api(data, "/pin/ls").as_array().unwrap().is_empty());
    let out2 = tmp.path().join("out2");
    ok(&cairn(
        data,
        &cache,
        &["restore", "photos", out2.to_str().unwrap()],
    ));
    assert_same(&after, &scan(&out2), "restore of the newest snapshot");
    let out3 = tmp.path().join("out3");
    ok(&cairn(
        data,
        &cache,
        &["restore", &old_root, out3.to_str().unwrap()],
    ));
    assert_same(&before, &scan(&out3), "restore of the old snapshot by CID");

    // a restore never writes into a folder that holds something
    let refused = cairn(data, &cache, &["restore", "photos", out3.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));

    // Forgetting snapshots: the old root goes, and GC frees what only it kept.
    let listed = ok(&cairn(data, &cache, &["snapshot", "ls"]));
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(
        rows.iter().all(|r| r[0] == "photos" && r.len() == 3),
        "{listed}"
    );
    assert_eq!(rows[0][2], old_root);
    let vague = cairn(data, &cache, &["snapshot", "rm", "photos"]);
    assert!(!vague.status.success(), "rm without saying which");
    let forgot = ok(&cairn(
        data,
        &cache,
        &["snapshot", "rm", "photos", "--keep-last", "2"],
    ));
    assert_eq!(forgot.lines().count(), 1, "{forgot}");
    assert!(forgot.contains(&old_root), "{forgot}");
    let kept = blocks(data);
    ok(&cairn(data, &cache, &["gc"]));
    assert!(
        blocks(data) < kept,
        "GC kept the forgotten snapshot's blocks"
    );
    let forgot = ok(&cairn(
        data,
        &cache,
        &["snapshot", "rm", "photos", "--cid", &new_root],
    ));
    assert_eq!(forgot.lines().count(), 2, "{forgot}");
    assert!(ok(&cairn(data, &cache, &["snapshot", "ls", "photos"])).is_empty());
    let gone = cairn(data, &cache, &["snapshot", "rm", "photos", "--all"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no snapshot named"));
    ok(&cairn(data, &cache, &["gc"]));
    assert_eq!(blocks(data), 0, "nothing keeps any block now");

    for dir in [&src, &out1, &out2, &out3] {
        make_writable(dir);
    }
    eprintln!(
        "build {built:?}, first backup {:?}, restore {:?}, total {:?}",
        first - built,
        restored - first,
        started.elapsed()
    );
}

/// With no node running, backup, snapshot and restore open the data folder themselves (the
/// CLI goes through the same API either way), as a backup tool works without a server.
#[test]
fn backup_and_restore_work_on_a_stopped_node() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (dir, out) = (tmp.path().join("d"), tmp.path().join("out"));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/a.txt"), b"kept offline\n").unwrap();
    let backup = cairn(&data, tmp.path(), &["backup", dir.to_str().unwrap()]);
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let listed = cairn(&data, tmp.path(), &["snapshot", "ls"]);
    assert!(String::from_utf8_lossy(&listed.stdout).starts_with("d\t"));
    let restore = cairn(&data, tmp.path(), &["restore", "d", out.to_str().unwrap()]);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("sub/a.txt")).unwrap(),
        b"kept offline\n"
    );
}
