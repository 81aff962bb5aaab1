//! The `cairn` binary driven as a user would: outputs, errors on bad input (one line, non-zero,
//! never a panic), corruption detection with quarantine, and crash safety under kill -9.

mod common;

use std::process::{Command, Output, Stdio};

use common::{added_root, block_files, cairn};

fn ok_bytes(out: &Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "cairn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

fn ok(out: &Output) -> String {
    String::from_utf8_lossy(&ok_bytes(out)).into_owned()
}

/// A clear failure: non-zero exit, one `cairn: error:` line, no panic.
fn fails(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, stdout {:?}",
        out.stdout
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("cairn: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    assert!(errors[0].contains(needle), "{needle:?} not in {stderr}");
}

#[test]
fn add_cat_ls_get_pin_gc() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("hello.txt");
    std::fs::write(&file, b"hello world\n").unwrap();

    let out = ok(&cairn(&data, &["add", file.to_str().unwrap()]));
    assert_eq!(
        out,
        "added QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o hello.txt\n"
    );
    // --data before the subcommand, and CAIRN_DATA, work too
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .arg("--data")
        .arg(&data)
        .args(["add", "--cid-version", "1", "-q", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        ok(&out),
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .env("CAIRN_DATA", &data)
        .args([
            "cat",
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
            "--offset",
            "6",
            "--length",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(ok(&out), "world");

    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/a.txt"), b"A").unwrap();
    std::fs::write(tree.join("b.txt"), b"B").unwrap();
    fails(&cairn(&data, &["add", tree.to_str().unwrap()]), "use -r");
    let out = ok(&cairn(&data, &["add", "-r", tree.to_str().unwrap()]));
    let root = added_root(&out);
    assert!(out.lines().last().unwrap().ends_with(" tree"), "{out}");
    let ls = ok(&cairn(&data, &["ls", &root]));
    let names: Vec<&str> = ls.lines().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(names, ["b.txt", "sub/"]);
    assert_eq!(
        ok(&cairn(&data, &["cat", &format!("{root}/sub/a.txt")])),
        "A"
    );
    let dest = tmp.path().join("restored");
    ok(&cairn(&data, &["get", &root, "-o", dest.to_str().unwrap()]));
    assert_eq!(std::fs::read(dest.join("sub/a.txt")).unwrap(), b"A");

    let pins = ok(&cairn(&data, &["pin", "ls"]));
    assert!(pins.contains(&root));
    ok(&cairn(&data, &["pin", "rm", &root]));
    let gc = ok(&cairn(&data, &["gc"]));
    assert!(gc.starts_with("removed "), "{gc}");
    fails(
        &cairn(&data, &["cat", &format!("{root}/b.txt")]),
        "not found",
    );
    ok(&cairn(
        &data,
        &[
            "check",
            "--hard",
            "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
        ],
    ));
}

#[test]
fn bad_input_gives_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fails(&cairn(&data, &["add", "/no/such/file"]), "/no/such/file");
    fails(&cairn(&data, &["cat", "not-a-cid"]), "invalid CID");
    fails(
        &cairn(
            &data,
            &[
                "cat",
                "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
            ],
        ),
        "not found",
    );
    let junk = tmp.path().join("junk.car");
    std::fs::write(&junk, b"\x05hello this is not a car").unwrap();
    fails(
        &cairn(&data, &["car", "import", junk.to_str().unwrap()]),
        "CAR",
    );
    fails(
        &cairn(&data, &["car", "import", "/no/such.car"]),
        "/no/such.car",
    );
    fails(
        &cairn(
            &data,
            &[
                "pin",
                "add",
                "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o",
            ],
        ),
        "missing",
    );
    fails(
        &cairn(
            &data,
            &["check", "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"],
        ),
        "check failed",
    );
    let real = tmp.path().join("real.txt");
    std::fs::write(&real, b"real").unwrap();
    // clap rejects it before anything runs
    let out = cairn(
        &data,
        &["add", "--cid-version", "7", real.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("invalid value '7' for '--cid-version"));
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn flipped_byte_fails_with_corrupt_block_and_quarantines() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("f.bin");
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let cid = ok(&cairn(&data, &["add", "-q", file.to_str().unwrap()]))
        .trim()
        .to_owned();
    ok(&cairn(&data, &["check", "--hard", &cid]));

    // flip one byte in the biggest block file (a leaf)
    let victim = block_files(&data)
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut raw = std::fs::read(&victim).unwrap();
    raw[1000] ^= 0x20;
    std::fs::write(&victim, raw).unwrap();

    let out = cairn(&data, &["cat", &cid]);
    fails(&out, "CorruptBlock");
    assert!(!victim.exists(), "the corrupt block was not moved away");
    assert_eq!(
        std::fs::read_dir(data.join("quarantine")).unwrap().count(),
        1
    );
    fails(&cairn(&data, &["check", &cid]), "check failed");
    // re-adding the same bytes repairs the store
    ok(&cairn(&data, &["add", "-q", file.to_str().unwrap()]));
    assert!(ok_bytes(&cairn(&data, &["cat", &cid])) == bytes);
}

#[test]
fn kill_9_mid_import_leaves_a_clean_store() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let small = tmp.path().join("small.txt");
    std::fs::write(&small, b"committed before the crash\n").unwrap();
    let committed = ok(&cairn(&data, &["add", "-q", small.to_str().unwrap()]))
        .trim()
        .to_owned();

    for round in 0..3 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
            .args(["add", "-q", "--data"])
            .arg(&data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut x: u64 = 0x1234_5678 + round;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                for b in buf.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *b = x as u8;
                }
                if stdin.write_all(&buf).is_err() {
                    return;
                }
            }
        });
        // wait until the import is visibly writing blocks, then kill -9
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while block_files(&data).len() < 40 + 20 * round as usize {
            assert!(std::time::Instant::now() < deadline, "import never started");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        writer.join().unwrap();

        // the store opens, the earlier add is intact, and nothing of the killed one is pinned
        ok(&cairn(&data, &["check", "--hard", &committed]));
        let pins = ok(&cairn(&data, &["pin", "ls"]));
        assert_eq!(pins.lines().count(), 1, "{pins}");
    }
    // GC sweeps what the killed imports left (blocks and temp files)
    ok(&cairn(&data, &["gc"]));
    assert_eq!(block_files(&data).len(), 1);
    ok(&cairn(&data, &["check", "--hard", &committed]));
}

#[test]
fn car_export_import_between_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let file = tmp.path().join("f.bin");
    std::fs::write(&file, vec![42u8; 1_000_000]).unwrap();
    let cid = ok(&cairn(
        &a,
        &["add", "-q", "--cid-version", "1", file.to_str().unwrap()],
    ))
    .trim()
    .to_owned();
    let car = tmp.path().join("f.car");
    ok(&cairn(
        &a,
        &["car", "export", &cid, "-o", car.to_str().unwrap()],
    ));
    let out = ok(&cairn(&b, &["car", "import", car.to_str().unwrap()]));
    assert_eq!(out, format!("pinned root {cid}\n"));
    assert!(ok_bytes(&cairn(&b, &["cat", &cid])) == vec![42u8; 1_000_000]);
}

/// `cairn cat BIG | head -c 10`: the reader closing the pipe early is not an error (as with
/// `cat`), through the CLI's one path (here the folder opened in-process).
#[test]
fn a_closed_output_pipe_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("big.bin");
    std::fs::write(&file, vec![7u8; 4 << 20]).unwrap();
    let cid = added_root(&ok(&cairn(&data, &["add", file.to_str().unwrap()])));
    let mut child = Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["cat", &cid, "--data"])
        .arg(&data)
        .env_remove("CAIRN_NODE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 10];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut head).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
