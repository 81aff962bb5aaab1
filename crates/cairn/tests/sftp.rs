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

/// A served node with the SFTP door, and a folder to work in.
struct Door {
    server: Server,
    /// `host:port` of the SFTP door.
    addr: String,
    work: tempfile::TempDir,
}

fn door() -> Door {
    let server = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--sftp-listen", "127.0.0.1:0"],
    );
    let addr = server
        .sftp
        .clone()
        .expect("the start line names the SFTP address");
    Door {
        server,
        addr,
        work: tempfile::tempdir().unwrap(),
    }
}

impl Door {
    /// A new key pair and the account `name` holding it: the private key file.
    fn account(&self, name: &str) -> PathBuf {
        let (key, public) = keypair(self.work.path(), name);
        ok(&cairn(
            self.server.data.path(),
            &["sftp", "add", name, "--key-text", &public],
        ));
        key
    }
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
    let d = door();
    let (server, addr, work) = (&d.server, &d.addr, &d.work);
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
        addr,
        "alice",
        work.path(),
        "put big.bin\nmkdir docs\nput docs/* docs/\nmkdir tmp\nput docs/1.txt tmp/one.txt\n\
         rename tmp moved\nrename moved/one.txt moved/uno.txt\nls -l\n",
    );
    assert!(put.status.success(), "{}", text(&put));
    let get = sftp(
        &alice_key,
        addr,
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
        addr,
        "alice",
        work.path(),
        "rm moved/uno.txt\nrmdir moved\nrm big.bin\n",
    );
    assert!(rm.status.success(), "{}", text(&rm));
    let gone = sftp(
        &alice_key,
        addr,
        "alice",
        work.path(),
        "get big.bin gone.bin\n",
    );
    assert!(!gone.status.success(), "{}", text(&gone));

    // Bob's home is his own: alice's files are not there, and no path climbs out of it.
    let bob = sftp(
        &bob_key,
        addr,
        "bob",
        work.path(),
        "ls -la /\nls ../alice\n",
    );
    let seen = text(&bob);
    assert!(!seen.contains("docs"), "{seen}");

    // A key that is not the account's, a command, and a password are refused.
    let wrong = sftp(&bob_key, addr, "alice", work.path(), "ls\n");
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
    // A port forward (`-W`, a direct-tcpip channel to the S3 port) is refused.
    let s3_port = server.addr.rsplit_once(':').unwrap().1.to_owned();
    let forward = Command::new("ssh")
        .args(&exec_args)
        .args(["-W", &format!("127.0.0.1:{s3_port}")])
        .arg(format!("alice@{host}"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!forward.status.success(), "{}", text(&forward));
    // (OpenSSH says "stdio forwarding failed" when the server refuses the channel.)
    assert!(
        text(&forward).contains("forwarding failed"),
        "{}",
        text(&forward)
    );
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
    let d = door();
    let (server, addr, work) = (&d.server, &d.addr, &d.work);
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
    let put = |name: &str| sftp(&key, addr, "carol", work.path(), &format!("put {name}\n"));
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
    let d = door();
    let key = d.account("dave");
    let (server, addr, work) = (&d.server, &d.addr, &d.work);
    let run = |batch: &str| {
        let out = sftp(&key, addr, "dave", work.path(), batch);
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

    // Modification times: `put -p` keeps the local file's (fsetstat before close), `get -p`
    // gives it back, S3 shows it as `x-amz-meta-mtime`; rclone sets one on a stored file
    // (setstat after close) and reads it back.
    let old = work.path().join("old.txt");
    std::fs::write(&old, "from 2001").unwrap();
    let touched = Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(&old)
        .status()
        .unwrap();
    assert!(touched.success());
    run("put -p old.txt old.txt\nget -p old.txt old.back\n");
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    assert_eq!(mtime(&work.path().join("old.back")), 1_000_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let head = rt
        .block_on(
            server
                .client()
                .head_object()
                .bucket("dave")
                .key("old.txt")
                .send(),
        )
        .unwrap();
    assert_eq!(
        head.metadata().unwrap().get("mtime").map(String::as_str),
        Some("1000000000")
    );
    let (host, port) = addr.rsplit_once(':').unwrap();
    let rclone = |args: &[&str]| {
        let out = Command::new("rclone")
            .args(args)
            .args([
                "--sftp-host",
                host,
                "--sftp-port",
                port,
                "--sftp-user",
                "dave",
                "--sftp-key-file",
                key.to_str().unwrap(),
                "--sftp-shell-type",
                "none",
                "--config",
                "/dev/null",
            ])
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "rclone {args:?}\n{}", text(&out));
        text(&out)
    };
    let older = work.path().join("older.txt");
    std::fs::write(&older, "from 1973").unwrap();
    let touched = Command::new("touch")
        .args(["-d", "@100000000"])
        .arg(&older)
        .status()
        .unwrap();
    assert!(touched.success());
    rclone(&["copyto", "older.txt", ":sftp:older.txt"]);
    let listed = rclone(&["lsl", ":sftp:older.txt"]);
    assert!(listed.contains("1973-03-03"), "{listed}");

    // Two sessions at once see each other's files (each file visible once closed).
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
        seen = text(&sftp(&key, addr, "dave", work.path(), "ls -1\n"));
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

/// `/api/v1/ssh/*`: `enable` makes an account, `size` reports its usage, and `process` turns a
/// folder of 1000 files put over SFTP into one `.tar.gz` job whose CID `cairn cat`s into the
/// same tree; with `remove` the folder leaves the home once the job is `DONE`.
#[test]
fn the_v1_ssh_api_enables_sizes_and_processes() {
    let d = door();
    let (server, addr, work) = (&d.server, &d.addr, &d.work);
    let data = server.data.path();
    let secret = std::fs::read_to_string(data.join("api-secret"))
        .unwrap()
        .trim()
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let call = |method: &str, path: &str, body: Option<serde_json::Value>| {
        let url = format!("http://{}/api/v1{path}", server.gateway);
        let auth = format!("Bearer {secret}");
        let mut resp = match body {
            Some(b) => agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(b.to_string())
                .unwrap(),
            None if method == "GET" => agent
                .get(&url)
                .header("Authorization", &auth)
                .call()
                .unwrap(),
            None => panic!("{method}"),
        };
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
        )
    };
    let (key, public) = keypair(work.path(), "frank");

    let (s, v) = call(
        "POST",
        "/ssh/enable",
        Some(serde_json::json!({"username": "frank", "sshpubkey": public, "max_size": 100 << 20})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["keys"].as_u64(), v["max_size"].as_u64()),
        (Some(1), Some(100 << 20))
    );
    let (s, v) = call(
        "POST",
        "/ssh/enable",
        Some(serde_json::json!({"username": "frank", "sshpubkey": "ssh-ed25519 nonsense"})),
    );
    assert_eq!(s, 400, "{v}");

    // 1000 files in ten folders, put over SFTP.
    let tree = work.path().join("tree");
    let mut bytes = 0u64;
    for d in 0..10 {
        std::fs::create_dir_all(tree.join(format!("d{d}"))).unwrap();
        for f in 0..100 {
            let body = format!("folder {d}, file {f}\n").repeat(f + 1);
            bytes += body.len() as u64;
            std::fs::write(tree.join(format!("d{d}/f{f:02}.txt")), body).unwrap();
        }
    }
    let put = sftp(&key, addr, "frank", work.path(), "put -r tree\n");
    assert!(put.status.success(), "{}", text(&put));
    let (s, v) = call("GET", "/ssh/frank/size", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["used"].as_u64(), Some(bytes), "{v}");
    // What S3 writes into the home shows in the folder.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(
        server
            .client()
            .put_object()
            .bucket("frank")
            .key("tree/d3/from-s3.txt")
            .body(b"written over S3\n".to_vec().into())
            .send(),
    )
    .unwrap();
    let got = sftp(
        &key,
        addr,
        "frank",
        work.path(),
        "ls tree/d3\nget tree/d3/from-s3.txt from-s3.back\n",
    );
    assert!(got.status.success(), "{}", text(&got));
    assert!(text(&got).contains("from-s3.txt"), "{}", text(&got));
    assert_eq!(
        std::fs::read(work.path().join("from-s3.back")).unwrap(),
        b"written over S3\n"
    );
    std::fs::rename(
        work.path().join("from-s3.back"),
        tree.join("d3/from-s3.txt"),
    )
    .unwrap();
    assert_eq!(call("GET", "/ssh/nobody/size", None).0, 404);

    // The folder as one .tar.gz job, then removed.
    let (s, job) = call(
        "POST",
        "/ssh/process",
        Some(serde_json::json!({"user": "frank", "path": "/tree", "remove": true})),
    );
    assert_eq!(s, 202, "{job}");
    let id = job["job_id"].as_str().unwrap();
    let (s, done) = call("GET", &format!("/jobs/{id}?wait=true"), None);
    assert_eq!(s, 200);
    assert_eq!(done["state"], "DONE", "{done}");
    assert_eq!(done["ext"], "tar.gz", "{done}");
    let cid = done["cid"].as_str().unwrap();
    let cat = cairn(data, &["cat", cid]);
    assert!(cat.status.success(), "{}", text(&cat));
    std::fs::write(work.path().join("tree.tar.gz"), &cat.stdout).unwrap();
    let back = work.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let untar = Command::new("tar")
        .arg("xzf")
        .arg(work.path().join("tree.tar.gz"))
        .current_dir(&back)
        .output()
        .unwrap();
    assert!(untar.status.success(), "{}", text(&untar));
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(back.join("tree"))
        .output()
        .unwrap();
    assert!(diff.status.success(), "{}", text(&diff));
    let mut left = String::new();
    for _ in 0..100 {
        left = text(&sftp(&key, addr, "frank", work.path(), "ls -1\n"));
        if !left.contains("tree") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!left.contains("tree"), "{left}");
    let (_, v) = call("GET", "/ssh/frank/size", None);
    assert_eq!(v["used"].as_u64(), Some(0), "{v}");
}

/// restic's own SFTP backend against the door: init, backup, `check --read-data`, and a
/// restore identical to the source; the repository is files in the account's home.
#[test]
fn restic_backs_up_over_sftp() {
    let d = door();
    let key = d.account("gina");
    let (server, addr, work) = (&d.server, &d.addr, &d.work);
    // A tree to back up: a large file, small ones, an empty one, nested folders.
    let src = work.path().join("src");
    std::fs::create_dir_all(src.join("nested/deeper")).unwrap();
    std::fs::write(src.join("large.bin"), pattern(24 << 20, 3)).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    for i in 0..50 {
        std::fs::write(
            src.join(format!("nested/n{i}.txt")),
            format!("small {i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    std::fs::write(src.join("nested/deeper/last.bin"), pattern(1 << 20, 9)).unwrap();

    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut ssh = vec!["ssh".to_owned()];
    let mut options = ssh_options(&key, port);
    let at = options.len() - 2;
    options[at] = "-p".into();
    ssh.extend(options);
    ssh.extend([format!("gina@{host}"), "-s".into(), "sftp".into()]);
    let restic = |args: &[&str]| {
        // A stalled connection (as russh's default channel buffer made `check --read-data`)
        // fails the test instead of hanging it.
        let out = Command::new("timeout")
            .args(["300", "restic", "-r", "sftp:gina@127.0.0.1:/repo", "-o"])
            .arg(format!("sftp.command={}", ssh.join(" ")))
            .args(args)
            .env("RESTIC_PASSWORD", "correct horse")
            .env("RESTIC_CACHE_DIR", work.path().join("cache"))
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "restic {args:?}\n{}", text(&out));
        text(&out)
    };
    restic(&["init"]);
    restic(&["backup", src.to_str().unwrap()]);
    let checked = restic(&["check", "--read-data"]);
    assert!(checked.contains("no errors were found"), "{checked}");
    let target = work.path().join("restored");
    restic(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    let diff = Command::new("diff")
        .arg("-r")
        .arg(&src)
        .arg(&restored)
        .output()
        .unwrap();
    assert!(diff.status.success(), "{}", text(&diff));

    // The repository is the account's files: S3 lists its config and packs.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let keys: Vec<String> = rt
        .block_on(
            server
                .client()
                .list_objects_v2()
                .bucket("gina")
                .prefix("repo/")
                .send(),
        )
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert!(keys.contains(&"repo/config".to_owned()), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("repo/data/")), "{keys:?}");
}
