//! Interop with an independent IPFS implementation: a Helia peer (npm, in tests/js) fetches
//! over Bitswap what Cairn holds, and Cairn fetches what only the Helia peer holds — CIDv0 and
//! CIDv1, up to several hundred blocks, byte-exact and with the same CIDs.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{Server, cairn, ok, pattern};

fn last_json(stdout: &str) -> serde_json::Value {
    let line = stdout
        .lines()
        .rfind(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {stdout}"));
    serde_json::from_str(line).unwrap()
}

struct HeliaServer(Child);

impl Drop for HeliaServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `helia-peer.mjs serve FILE`; returns it with its `ready` line.
fn helia_serve(file: &Path, v1: bool) -> (HeliaServer, serde_json::Value) {
    let mut cmd = Command::new("node");
    cmd.arg("helia-peer.mjs").arg("serve").arg(file);
    if v1 {
        cmd.arg("--cid-version=1");
    }
    let mut child = cmd
        .current_dir(common::helia::dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let server = HeliaServer(child);
    loop {
        let line = lines.next().expect("helia exited before ready").unwrap();
        if line.contains("\"ready\"") {
            return (server, serde_json::from_str(&line).unwrap());
        }
    }
}

#[test]
fn helia_and_cairn_fetch_from_each_other_by_bitswap() {
    if !common::helia::ready() {
        return;
    }
    let node = Server::start();
    let id: serde_json::Value =
        serde_json::from_str(&ok(&cairn(node.data.path(), &["id", "--json"]))).unwrap();
    let cairn_addr = id["addrs"][0].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    // (size, CIDv1?): a one-block file, and ~320 leaves (several hundred blocks)
    for (i, (size, v1)) in [(100_000usize, false), (80 << 20, false), (80 << 20, true)]
        .into_iter()
        .enumerate()
    {
        let data = pattern(size, i as u8 + 40);
        let file = dir.path().join(format!("f{i}"));
        std::fs::write(&file, &data).unwrap();

        // Helia fetches what Cairn holds
        let mut add = vec!["add", "-q"];
        if v1 {
            add.extend(["--cid-version", "1"]);
        }
        add.push(file.to_str().unwrap());
        let cid = ok(&cairn(node.data.path(), &add)).trim().to_owned();
        let out_file = dir.path().join(format!("helia-got-{i}"));
        let fetched = Command::new("node")
            .args([
                "helia-peer.mjs",
                "fetch",
                &cid,
                &cairn_addr,
                "--timeout=120",
            ])
            .arg(format!("--out={}", out_file.display()))
            .current_dir(common::helia::dir())
            .output()
            .unwrap();
        let report = last_json(&ok(&fetched));
        assert_eq!(report["event"], "fetched", "{report}");
        assert!(
            std::fs::read(&out_file).unwrap() == data,
            "Helia got other bytes"
        );

        // Cairn fetches what only Helia holds (a second copy with other bytes)
        let theirs = pattern(size, i as u8 + 90);
        let their_file = dir.path().join(format!("theirs-{i}"));
        std::fs::write(&their_file, &theirs).unwrap();
        let (_helia, ready) = helia_serve(&their_file, v1);
        let their_cid = ready["cid"].as_str().unwrap().to_owned();
        assert_eq!(
            their_cid,
            {
                let scratch = tempfile::tempdir().unwrap();
                let mut add = vec!["add", "-q"];
                if v1 {
                    add.extend(["--cid-version", "1"]);
                }
                add.push(their_file.to_str().unwrap());
                ok(&cairn(scratch.path(), &add)).trim().to_owned()
            },
            "Helia and Cairn give the same CID"
        );
        let their_addr = ready["multiaddrs"][0].as_str().unwrap().to_owned();
        let their_addr = if their_addr.contains("/p2p/") {
            their_addr
        } else {
            format!("{their_addr}/p2p/{}", ready["peerId"].as_str().unwrap())
        };
        ok(&cairn(node.data.path(), &["dial", &their_addr]));
        let got = cairn(node.data.path(), &["cat", &their_cid]);
        assert!(
            got.status.success(),
            "{}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert!(got.stdout == theirs, "Cairn got other bytes from Helia");
    }
}
