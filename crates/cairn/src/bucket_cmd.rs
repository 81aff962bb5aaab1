//! `cairn bucket root|history|restore|promote|redundancy|export|import|head|verify-head`: the same JSON from the
//! node (offline) or its local API (while `serve` runs), printed by one set of functions.

use std::path::Path;

use anyhow::{Context, Result, bail};
use cairn_node::Node;
use cairn_node::roots::SignedHead;
use serde_json::Value;

use crate::cli::BucketCmd;
use crate::remote::{Remote, encode};

fn time(ms: &Value) -> String {
    let ms = ms.as_u64().unwrap_or_default();
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

fn print(cmd: &BucketCmd, v: &Value) {
    let s = |f: &str| v[f].as_str().unwrap_or_default().to_owned();
    match cmd {
        BucketCmd::Root { .. } => println!("{}", s("root")),
        BucketCmd::History { .. } => {
            for r in v.as_array().into_iter().flatten() {
                println!(
                    "{} {} {} record {}",
                    r["seq"],
                    r["root"].as_str().unwrap_or_default(),
                    time(&r["time_ms"]),
                    r["record"].as_str().unwrap_or_default()
                );
            }
        }
        BucketCmd::Restore { .. } => println!(
            "restored: {} objects written back, {} deleted; new root {} (version {})",
            v["written"],
            v["deleted"],
            s("root"),
            v["seq"]
        ),
        BucketCmd::Promote { bucket, .. } => println!(
            "bucket {bucket} is this node's now (version {}); writes are accepted here",
            v["seq"]
        ),
        BucketCmd::Create { bucket, .. } => println!(
            "created bucket {bucket}{}",
            if v["encrypted"] == true {
                " (encrypted)"
            } else {
                ""
            }
        ),
        BucketCmd::Encryption { bucket, .. } => println!(
            "bucket {bucket}: default encryption {}",
            if v["encrypted"] == true { "on" } else { "off" }
        ),
        BucketCmd::Redundancy { bucket, .. } => {
            let own = v["redundancy"].as_str();
            match (own, v["effective"].as_str()) {
                (Some(p), _) => println!("bucket {bucket}: {p} (its own)"),
                (None, Some(p)) => println!("bucket {bucket}: {p} (the cluster's default)"),
                (None, None) => println!("bucket {bucket}: the cluster's default"),
            }
        }
        BucketCmd::Import { bucket, .. } => {
            println!(
                "created bucket {bucket} from {} ({} objects)",
                s("root"),
                v["objects"]
            );
            if v["skipped"].as_u64().unwrap_or_default() > 0 {
                eprintln!("skipped {} symlinks or non-UnixFS entries", v["skipped"]);
            }
        }
        _ => {}
    }
}

fn print_head(bytes: &[u8], output: Option<&Path>) -> Result<()> {
    let head = SignedHead::verify(bytes, None)?;
    let p = &head.payload;
    println!(
        "bucket {} version {} at {}",
        p.bucket,
        p.seq,
        time(&p.time_ms.into())
    );
    println!("root {}\nrecord {}", p.tree, p.record);
    println!("signed by ed25519 key {}", hex::encode(&head.public_key));
    if let Some(out) = output {
        let tmp = out.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, out))
            .with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}

/// Runs `cmd` on an open store.
pub fn offline(node: &Node, cmd: &BucketCmd) -> Result<()> {
    let v = match cmd {
        BucketCmd::Root { bucket } => serde_json::to_value(cairn_api::ops::root(node, bucket)?)?,
        BucketCmd::History { bucket } => {
            serde_json::to_value(cairn_api::ops::history(node, bucket)?)?
        }
        BucketCmd::Restore { bucket, root } => {
            serde_json::to_value(cairn_api::ops::restore(node, bucket, root)?)?
        }
        BucketCmd::Promote { bucket, force } => {
            serde_json::json!({ "seq": node.promote(bucket, *force)? })
        }
        BucketCmd::Redundancy { bucket, policy } => {
            serde_json::to_value(cairn_api::ops::redundancy(node, bucket, policy.as_deref())?)?
        }
        BucketCmd::Export { bucket, output } => {
            let root = node.bucket_root(bucket)?.tree;
            let n = crate::export_car(node, root, output)?;
            eprintln!(
                "exported bucket {bucket} ({root}, {n} blocks) to {}",
                output.display()
            );
            return Ok(());
        }
        BucketCmd::Import { bucket, file } => {
            let done = crate::runtime()?.block_on(async {
                let f = tokio::fs::File::open(file)
                    .await
                    .with_context(|| format!("open {}", file.display()))?;
                let reader = tokio::io::BufReader::new(f);
                let done = node
                    .import_bucket(bucket, cairn_node::keys::ROOT_USER, reader)
                    .await?;
                anyhow::Ok(done)
            })?;
            node.commit_roots()?;
            serde_json::json!({
                "root": done.root.map(|c| c.to_string()),
                "objects": done.objects,
                "skipped": done.skipped,
            })
        }
        BucketCmd::Head { bucket, output } => {
            return print_head(&node.bucket_head(bucket)?, output.as_deref());
        }
        BucketCmd::Create { bucket, encrypted } => {
            node.create_bucket(bucket, cairn_node::keys::ROOT_USER)?;
            if *encrypted {
                node.set_bucket_encryption(bucket, true)?;
            }
            serde_json::json!({ "encrypted": node.bucket_encrypted(bucket)? })
        }
        BucketCmd::Encryption { bucket, state } => {
            if let Some(s) = state {
                node.set_bucket_encryption(bucket, s == "on")?;
            }
            serde_json::json!({ "encrypted": node.bucket_encrypted(bucket)? })
        }
        BucketCmd::List | BucketCmd::SetPublic { .. } | BucketCmd::VerifyHead { .. } => {
            bail!("not a bucket root command")
        }
    };
    print(cmd, &v);
    Ok(())
}

/// Runs `cmd` through a running node's API.
pub fn remote(remote: &Remote, cmd: &BucketCmd) -> Result<()> {
    let v = match cmd {
        BucketCmd::Root { bucket } => {
            Remote::json(remote.get(&format!("/bucket/root?arg={}", encode(bucket)))?)?
        }
        BucketCmd::History { bucket } => {
            Remote::json(remote.get(&format!("/bucket/history?arg={}", encode(bucket)))?)?
        }
        BucketCmd::Restore { bucket, root } => Remote::json(remote.post(
            &format!(
                "/bucket/restore?arg={}&root={}",
                encode(bucket),
                encode(root)
            ),
            &mut std::io::empty(),
        )?)?,
        BucketCmd::Promote { bucket, force } => Remote::json(remote.post(
            &format!("/bucket/promote?arg={}&force={force}", encode(bucket)),
            &mut std::io::empty(),
        )?)?,
        BucketCmd::Redundancy { bucket, policy } => {
            let path = format!("/bucket/redundancy?arg={}", encode(bucket));
            match policy {
                Some(p) => Remote::json(remote.post(
                    &format!("{path}&policy={}", encode(p)),
                    &mut std::io::empty(),
                )?)?,
                None => Remote::json(remote.get(&path)?)?,
            }
        }
        BucketCmd::Export { bucket, output } => {
            let v = Remote::json(remote.get(&format!("/bucket/root?arg={}", encode(bucket)))?)?;
            let root = v["root"].as_str().context("the node answered no root")?;
            remote.export_car(root, output)?;
            eprintln!("exported bucket {bucket} ({root}) to {}", output.display());
            return Ok(());
        }
        BucketCmd::Import { bucket, file } => {
            let mut f =
                std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
            Remote::json(remote.post(&format!("/bucket/import?arg={}", encode(bucket)), &mut f)?)
                .with_context(|| format!("importing {}", file.display()))?
        }
        BucketCmd::Create { bucket, encrypted } => Remote::json(remote.post(
            &format!(
                "/bucket/create?arg={}&encrypted={encrypted}",
                encode(bucket)
            ),
            &mut std::io::empty(),
        )?)?,
        BucketCmd::Encryption { bucket, state } => {
            let path = format!("/bucket/encryption?arg={}", encode(bucket));
            match state.as_deref() {
                Some(s) => Remote::json(
                    remote.post(&format!("{path}&on={}", s == "on"), &mut std::io::empty())?,
                )?,
                None => Remote::json(remote.get(&path)?)?,
            }
        }
        BucketCmd::Head { bucket, output } => {
            let mut resp = remote.get(&format!("/bucket/head?arg={}", encode(bucket)))?;
            let bytes = resp.body_mut().read_to_vec()?;
            return print_head(&bytes, output.as_deref());
        }
        BucketCmd::List | BucketCmd::SetPublic { .. } | BucketCmd::VerifyHead { .. } => {
            bail!("not a bucket root command")
        }
    };
    print(cmd, &v);
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
