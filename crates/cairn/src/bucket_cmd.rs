//! `cairn bucket ...`: every bucket command over the node's API ([`NodeApi`]), one printer each.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use cairn_api::NodeApi;
use cairn_node::model::heads::SignedHead;

use crate::cli::BucketCmd;

fn time(ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

fn print_head(bytes: &[u8], output: Option<&Path>) -> Result<()> {
    let head = SignedHead::verify(bytes, None)?;
    let p = &head.payload;
    println!(
        "bucket {} version {} at {}",
        p.bucket,
        p.seq,
        time(p.time_ms)
    );
    println!("root {}\nrecord {}", p.tree, p.record);
    println!("signed by ed25519 key {}", hex::encode(&head.public_key));
    if let Some(out) = output {
        crate::output::write_atomic(out, |f| Ok(f.write_all(bytes)?))?;
    }
    Ok(())
}

/// Runs `cmd` through the node's API.
pub fn run(api: &dyn NodeApi, cmd: &BucketCmd) -> Result<()> {
    match cmd {
        BucketCmd::List => {
            for b in api.buckets()? {
                let vis = if b.public { "public" } else { "private" };
                println!("{} {} {vis}", b.name, b.owner);
            }
        }
        BucketCmd::SetPublic { bucket, off } => {
            api.set_public(bucket, !off)?;
            println!(
                "{bucket} is now {}",
                if *off { "private" } else { "public" }
            );
        }
        BucketCmd::Root { bucket } => println!("{}", api.root(bucket)?.tree),
        BucketCmd::History { bucket } => {
            for r in api.history(bucket)? {
                println!(
                    "{} {} {} record {}",
                    r.seq,
                    r.tree,
                    time(r.time_ms),
                    r.record
                );
            }
        }
        BucketCmd::Restore { bucket, root } => {
            let r = api.restore(bucket, root)?;
            println!(
                "restored: {} objects written back, {} deleted; new root {} (version {})",
                r.written, r.deleted, r.root, r.seq
            );
        }
        BucketCmd::Promote { bucket, force } => println!(
            "bucket {bucket} is this node's now (version {}); writes are accepted here",
            api.promote(bucket, *force)?.seq
        ),
        BucketCmd::Redundancy { bucket, policy } => {
            let r = api.redundancy(bucket, policy.as_deref())?;
            match (r.redundancy, r.effective) {
                (Some(p), _) => println!("bucket {bucket}: {p} (its own)"),
                (None, Some(p)) => println!("bucket {bucket}: {p} (the cluster's default)"),
                (None, None) => println!("bucket {bucket}: the cluster's default"),
            }
        }
        BucketCmd::Export { bucket, output } => {
            let root = api.root(bucket)?.tree;
            crate::output::export_car(api, &root.to_string(), output)?;
            eprintln!("exported bucket {bucket} ({root}) to {}", output.display());
        }
        BucketCmd::Import { bucket, file } => {
            let mut f =
                std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
            let done = api
                .import_bucket(bucket, &mut f)
                .with_context(|| format!("importing {}", file.display()))?;
            let root = done.root.map(|c| c.to_string()).unwrap_or_default();
            println!(
                "created bucket {bucket} from {root} ({} objects)",
                done.objects
            );
            if done.skipped > 0 {
                eprintln!("skipped {} symlinks or non-UnixFS entries", done.skipped);
            }
        }
        BucketCmd::Head { bucket, output } => print_head(&api.head(bucket)?, output.as_deref())?,
        BucketCmd::Create { bucket, encrypted } => {
            let e = api.create_bucket(bucket, *encrypted)?;
            let how = if e.encrypted { " (encrypted)" } else { "" };
            println!("created bucket {bucket}{how}");
        }
        BucketCmd::Encryption { bucket, state } => {
            let e = api.encryption(bucket, state.as_deref().map(|s| s == "on"))?;
            let how = if e.encrypted { "on" } else { "off" };
            println!("bucket {bucket}: default encryption {how}");
        }
        BucketCmd::VerifyHead { file, key } => verify_head(file, key.as_deref())?,
    }
    Ok(())
}

/// `cairn bucket verify-head FILE [--key HEX]`.
pub fn verify_head(file: &Path, key: Option<&str>) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
    let key = key
        .map(|k| hex::decode(k).context("--key must be hex"))
        .transpose()?;
    let head = SignedHead::verify(&bytes, key.as_deref())
        .with_context(|| format!("{} does not verify", file.display()))?;
    let p = &head.payload;
    println!(
        "valid: bucket {} version {} root {} record {} signed by {}",
        p.bucket,
        p.seq,
        p.tree,
        p.record,
        hex::encode(&head.public_key)
    );
    Ok(())
}
