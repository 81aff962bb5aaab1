//! The SFTP door (issue 20) driven by OpenSSH's own `sftp`, `scp` and `ssh`: an account's home
//! folder is its bucket — files put over SFTP come back byte-exact with the CID `cairn add`
//! gives, and S3 lists them — and everything but public-key SFTP is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, cairn, cairn_add_cid, ok, pattern};

/// A fresh ed25519 key pair in `dir`: (private key file, public key line).
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_owned())
}

/// OpenSSH options for a throwaway server: no known_hosts, no agent, no prompts.
fn ssh_options(key: &Path, port: &str) -> Vec<String> {
    [
        "-i",
        key.to_str().unwrap(),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-P",
        port,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `sftp -b` with `batch` as `user`, in `cwd`.
fn sftp(key: &Path, addr: &str, user: &str, cwd: &Path, batch: &str) -> Output {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let file = cwd.join("batch");
    std::fs::write(&file, batch).unwrap();
    Command::new("sftp")
        .args(ssh_options(key, port))
        .arg("-b")
        .arg(&file)
        .arg(format!("{user}@{host}"))
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn an_account_puts_and_gets_its_files_over_openssh_sftp() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--sftp-listen", "127.0.0.1:0"],
    );
    let addr = server
        .sftp
        .clone()
        .expect("the start line names the SFTP address");
    let work = tempfile::tempdir().unwrap();
    let (alice_key, alice_pub) = keypair(work.path(), "alice");
    let (bob_key, _) = keypair(work.path(), "bob");
    let data = server.data.path();
    let added = ok(&cairn(
        data,
        &["sftp", "add", "alice", "--key-text", &alice_pub],
    ));
    assert!(added.starts_with("alice"), "{added}");
    ok(&cairn(
        data,
        &[
            "sftp",
            "add",
            "bob",
            "--key",
            bob_key.with_extension("pub").to_str().unwrap(),
        ],
    ));
    let listed = ok(&cairn(data, &["sftp", "list"]));
    assert!(
        listed.contains("alice") && listed.contains("bob"),
        "{listed}"
    );

    // A large file and a folder of small ones, up; everything back, byte-exact.
    let big = pattern(200 << 20, 7);
    std::fs::write(work.path().join("big.bin"), &big).unwrap();
    std::fs::create_dir(work.path().join("docs")).unwrap();
    for i in 0..20 {
        std::fs::write(
            work.path().join(format!("docs/{i}.txt")),
            format!("note {i}\n"),
        )
        .unwrap();
    }
    let put = sftp(
        &alice_key,
        &addr,
        "alice",
        work.path(),
        "put big.bin\nmkdir docs\nput docs/* docs/\nmkdir tmp\nput docs/1.txt tmp/one.txt\n\
         rename tmp moved\nrename moved/one.txt moved/uno.txt\nls -l\n",
    );
    assert!(put.status.success(), "{}", text(&put));
    let get = sftp(
        &alice_key,
        &addr,
        "alice",
        work.path(),
        "get big.bin big.back\nget moved/uno.txt uno.back\nls docs\n",
    );
    assert!(get.status.success(), "{}", text(&get));
    assert!(std::fs::read(work.path().join("big.back")).unwrap() == big);
    assert_eq!(
        std::fs::read_to_string(work.path().join("uno.back")).unwrap(),
        "note 1\n"
    );
    let listing = text(&get);
    assert!(
        listing.contains("19.txt") && listing.contains("0.txt"),
        "{listing}"
    );

    // The home is the bucket: the same file under S3, with the CID `cairn add` gives.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s3 = server.client();
    let head = rt
        .block_on(s3.head_object().bucket("alice").key("big.bin").send())
        .unwrap();
    let cid = head.metadata().unwrap().get("cid").unwrap().clone();
    assert_eq!(cid, cairn_add_cid(&work.path().join("big.bin")));
    let keys: Vec<String> = rt
        .block_on(s3.list_objects_v2().bucket("alice").send())
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert!(keys.contains(&"moved/uno.txt".to_owned()), "{keys:?}");
    assert!(keys.contains(&"docs/7.txt".to_owned()), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("tmp/")), "{keys:?}");

    // scp speaks SFTP (OpenSSH 9+; -s says so on older ones): up and back again.
    let (host, port) = addr.rsplit_once(':').unwrap();
    let scp = |from: &str, to: &str| {
        let mut args = ssh_options(&alice_key, port);
        args.retain(|a| a != "-P" && a != port);
        Command::new("scp")
            .args(["-s", "-P", port])
            .args(args)
            .args([from, to])
            .current_dir(work.path())
            .output()
            .unwrap()
    };
    let up = scp("docs/3.txt", &format!("alice@{host}:/scp.txt"));
    assert!(up.status.success(), "{}", text(&up));
    let down = scp(&format!("alice@{host}:/scp.txt"), "scp.back");
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        std::fs::read_to_string(work.path().join("scp.back")).unwrap(),
        "note 3\n"
    );

    // Remove files and folders.
    let rm = sftp(
        &alice_key,
        &addr,
        "alice",
        work.path(),
        "rm moved/uno.txt\nrmdir moved\nrm big.bin\n",
    );
    assert!(rm.status.success(), "{}", text(&rm));
    let gone = sftp(
        &alice_key,
        &addr,
        "alice",
        work.path(),
        "get big.bin gone.bin\n",
    );
    assert!(!gone.status.success(), "{}", text(&gone));

    // Bob's home is his own: alice's files are not there, and no path climbs out of it.
    let bob = sftp(
        &bob_key,
        &addr,
        "bob",
        work.path(),
        "ls -la /\nls ../alice\n",
    );
    let seen = text(&bob);
    assert!(!seen.contains("docs"), "{seen}");

    // A key that is not the account's, a command, and a password are refused.
    let wrong = sftp(&bob_key, &addr, "alice", work.path(), "ls\n");
    assert!(!wrong.status.success(), "{}", text(&wrong));
    let mut exec_args = ssh_options(&alice_key, port);
    let at = exec_args.len() - 2;
    exec_args[at] = "-p".into();
    let exec = Command::new("ssh")
        .args(&exec_args)
        .arg(format!("alice@{host}"))
        .arg("ls")
        .output()
        .unwrap();
    assert!(!exec.status.success(), "{}", text(&exec));
    assert!(text(&exec).contains("SFTP only"), "{}", text(&exec));
    let password = Command::new("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "BatchMode=yes",
            "-p",
            port,
        ])
        .arg(format!("alice@{host}"))
        .arg("true")
        .output()
        .unwrap();
    assert!(!password.status.success());
    assert!(
        text(&password).contains("Permission denied"),
        "{}",
        text(&password)
    );
}

#[test]
fn quotas_refuse_or_evict_over_sftp() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--sftp-listen", "127.0.0.1:0"],
    );
    let addr = server.sftp.clone().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keypair(work.path(), "carol");
    let data = server.data.path();
    ok(&cairn(
        data,
        &[
            "sftp",
            "add",
            "carol",
            "--key-text",
            &public,
            "--quota",
            "1MiB",
        ],
    ));
    for (seed, name) in ["a.bin", "b.bin", "c.bin"].into_iter().enumerate() {
        std::fs::write(work.path().join(name), pattern(600 << 10, seed as u8)).unwrap();
    }
    let put = |name: &str| sftp(&key, &addr, "carol", work.path(), &format!("put {name}\n"));
    let usage = || ok(&cairn(data, &["sftp", "usage", "carol"]));
    let keys = || -> Vec<String> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(server.client().list_objects_v2().bucket("carol").send())
            .unwrap()
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    };
    // `refuse`: the second 600 KiB file does not fit in 1 MiB, and nothing of it is stored.
    let first = put("a.bin");
    assert!(first.status.success(), "{}", text(&first));
    let refused = put("b.bin");
    assert!(!refused.status.success(), "{}", text(&refused));
    assert_eq!(keys(), ["a.bin"]);
    assert_eq!(
        usage().trim(),
        format!("carol: {} of {} bytes", 600 << 10, 1 << 20)
    );
    // `evict-oldest`: the new file goes in, the oldest goes out.
    ok(&cairn(
        data,
        &[
            "sftp",
            "set-quota",
            "carol",
            "1MiB",
            "--policy",
            "evict-oldest",
        ],
    ));
    let evicting = put("b.bin");
    assert!(evicting.status.success(), "{}", text(&evicting));
    assert_eq!(keys(), ["b.bin"]);
    let again = put("c.bin");
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(keys(), ["c.bin"]);
    assert_eq!(
        usage().trim(),
        format!("carol: {} of {} bytes", 600 << 10, 1 << 20)
    );
}

#[test]
fn resumed_transfers_many_files_and_two_sessions() {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--sftp-listen", "127.0.0.1:0"],
    );
    let addr = server.sftp.clone().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = keypair(work.path(), "dave");
    ok(&cairn(
        server.data.path(),
        &["sftp", "add", "dave", "--key-text", &public],
    ));
    let run = |batch: &str| {
        let out = sftp(&key, &addr, "dave", work.path(), batch);
        assert!(out.status.success(), "{batch}\n{}", text(&out));
        text(&out)
    };

    // `reput` finishes an upload cut short: the stored half is kept and the rest appended.
    let whole = pattern(3 << 20, 7);
    std::fs::write(work.path().join("half.bin"), &whole[..1 << 20]).unwrap();
    run("put half.bin resume.bin\n");
    std::fs::write(work.path().join("whole.bin"), &whole).unwrap();
    run("reput whole.bin resume.bin\n");
    // `reget` finishes a download cut short.
    std::fs::write(work.path().join("got.bin"), &whole[..(1 << 20) + 5]).unwrap();
    run("reget resume.bin got.bin\n");
    assert!(std::fs::read(work.path().join("got.bin")).unwrap() == whole);

    // 500 small files in one folder, listed whole.
    std::fs::create_dir(work.path().join("many")).unwrap();
    for i in 0..500 {
        std::fs::write(work.path().join(format!("many/f{i:03}")), format!("{i}")).unwrap();
    }
    run("mkdir many\nput many/* many/\n");
    let listing = run("ls -1 many\n");
    let names = listing.lines().filter(|l| l.contains("many/f")).count();
    assert_eq!(names, 500, "{listing}");

    // Two sessions at once see each other's files (each file visible once closed).
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut first = Command::new("sftp")
        .args(ssh_options(&key, port))
        .arg("-b")
        .arg("-")
        .arg(format!("dave@{host}"))
        .current_dir(work.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = first.stdin.as_mut().unwrap();
    use std::io::Write;
    stdin.write_all(b"put half.bin from-first.bin\n").unwrap();
    stdin.flush().unwrap();
    // The second session, while the first is still connected, finds the first's file.
    let mut seen = String::new();
    for _ in 0..100 {
        seen = text(&sftp(&key, &addr, "dave", work.path(), "ls -1\n"));
        if seen.contains("from-first.bin") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(seen.contains("from-first.bin"), "{seen}");
    run("put whole.bin from-second.bin\n");
    stdin.write_all(b"ls -1\n").unwrap();
    drop(first.stdin.take());
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("from-second.bin"), "{}", text(&out));
}
