//! The Helia peer of the interop tests (npm, in `tests/js`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `helia-peer.mjs` is.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// `node_modules` ready (CI runs `npm ci` there); `false` (skip, loudly) without node and npm.
pub fn ready() -> bool {
    let dir = dir();
    if dir.join("node_modules").is_dir() {
        return true;
    }
    if Command::new("npm").arg("--version").output().is_err() {
        eprintln!("SKIPPED: npm is not installed; .ci/run installs it");
        return false;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "npm ci failed in {}", dir.display());
    true
}
