//! Real S3 clients against `cairn serve`: aws cli, boto3, rclone and restic (installed by
//! `.ci/run`). On CI a missing client fails the test; elsewhere it is skipped with a message.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{ACCESS, SECRET, Server, cairn_add_cid, pattern, shared_dir};

/// Whether `program` can run; on CI its absence is a failure.
fn have(program: &str, version_arg: &str) -> bool {
    let ok = Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{program} is missing on CI: .ci/run must install it"
        );
        eprintln!("SKIPPED: {program} not installed (run .ci/run or install it)");
    }
    ok
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A small tree with a multipart-sized file, an empty file and awkward names.
fn source_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub/deep")).unwrap();
    std::fs::write(dir.join("big.bin"), pattern(12_000_000, 1)).unwrap();
    std::fs::write(dir.join("a.txt"), b"hello\n").unwrap();
    std::fs::write(dir.join("sub/mid.bin"), pattern(300_000, 2)).unwrap();
    std::fs::write(dir.join("sub/empty"), b"").unwrap();
    std::fs::write(dir.join("sub/deep/space name+plus.txt"), b"z\n").unwrap();
}

#[test]
fn aws_cli() {
    if !have("aws", "--version") {
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    source_tree(&src);
    let aws = |args: &[&str]| {
        let mut c = server.command("aws");
        c.arg("--endpoint-url").arg(server.endpoint()).args(args);
        run(c)
    };
    aws(&["s3", "mb", "s3://awscli"]);
    aws(&[
        "s3",
        "cp",
        "--recursive",
        src.to_str().unwrap(),
        "s3://awscli/tree/",
    ]);
    let listing = aws(&["s3", "ls", "--recursive", "s3://awscli/"]);
    assert!(
        listing.contains("tree/sub/deep/space name+plus.txt"),
        "{listing}"
    );
    // the 12 MB file went up in 8 MiB parts: its CID is still `cairn add`'s
    let cid = aws(&[
        "s3api",
        "head-object",
        "--bucket",
        "awscli",
        "--key",
        "tree/big.bin",
        "--query",
        "Metadata.cid",
        "--output",
        "text",
    ]);
    assert_eq!(cid.trim(), cairn_add_cid(&src.join("big.bin")));
    let back = tmp.path().join("back");
    aws(&[
        "s3",
        "cp",
        "--recursive",
        "s3://awscli/tree/",
        back.to_str().unwrap(),
    ]);
    for f in [
        "big.bin",
        "a.txt",
        "sub/mid.bin",
        "sub/empty",
        "sub/deep/space name+plus.txt",
    ] {
        assert!(
            std::fs::read(src.join(f)).unwrap() == std::fs::read(back.join(f)).unwrap(),
            "{f}"
        );
    }
    aws(&["s3", "rm", "--recursive", "s3://awscli/"]);
    aws(&["s3", "rb", "s3://awscli"]);
}

#[test]
fn boto3() {
    let have_boto3 = Command::new("python3")
        .args(["-c", "import boto3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_boto3 {
        assert!(
            std::env::var("CI").is_err(),
            "boto3 is missing on CI: .ci/run must install it"
        );
        eprintln!("SKIPPED: boto3 not installed");
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big");
    std::fs::write(&big, pattern(13 * 1024 * 1024 + 5, 7)).unwrap();
    let expected = cairn_add_cid(&big);
    let mut c = server.command("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/boto3_check.py"))
        .args([&server.endpoint(), ACCESS, SECRET])
        .arg(&big)
        .arg(&expected);
    assert!(run(c).contains("boto3: all checks passed"));
}

#[test]
fn rclone_sync_and_back() {
    if !have("rclone", "version") {
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    source_tree(&src);
    let mut c = server.command("bash");
    c.arg(shared_dir().join("s3/recipes/rclone-backup-restore.sh"))
        .arg(&src)
        .arg("rclone-bk")
        .arg(tmp.path().join("restore"));
    let out = run(c);
    assert!(out.contains("restore identical to source"), "{out}");
}

#[test]
fn restic_backup_check_restore() {
    if !have("restic", "version") {
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    source_tree(&src);
    let mut c = server.command("bash");
    c.arg(shared_dir().join("s3/recipes/restic-backup-restore.sh"))
        .arg(&src)
        .arg("restic-bk")
        .arg(tmp.path().join("restore"))
        .env("RESTIC_PASSWORD", "cairn-test")
        .env("RESTIC_CACHE_DIR", tmp.path().join("cache"));
    let out = run(c);
    assert!(
        out.contains("restic recipe: OK") && out.contains("no errors were found"),
        "{out}"
    );
}
