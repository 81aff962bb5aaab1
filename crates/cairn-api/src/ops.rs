//! What each `/api/v0` route does, over the node, answering the route's type ([`crate::types`]).
//! The routes parse a request and call one of these; the CLI working on a stopped node's data
//! folder calls the same ones, so both paths answer alike. Functions without `async` read or
//! write blocks: call them off the async workers.

use cairn_dag::Cid;
use cairn_node::access::Caller;
use cairn_node::import::StoredItem;
use cairn_node::snapshot::Forget;
use cairn_node::{CidVersion, Node, parse_path};
use futures::Stream;

use crate::ApiError;
use crate::types::*;

/// The CID a path `CID[/path]` names.
pub fn resolve(node: &Node, path: &str) -> Result<Cid, ApiError> {
    let (root, rest) = parse_path(path)?;
    Ok(node.files().resolve(root, &rest)?)
}

/// Stores a byte stream as one UnixFS file.
pub async fn add<S, E>(
    node: &Node,
    body: S,
    version: CidVersion,
    pin: bool,
) -> Result<Added, ApiError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    Ok(Added::from(
        &node.files().add_stream(body, version, pin).await?,
    ))
}

/// Stores many files framed in one stream ([`cairn_node::snapshot`]), in one commit.
pub async fn add_many<S, E>(
    node: &Node,
    body: S,
    version: CidVersion,
) -> Result<Vec<Added>, ApiError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let links = node.files().add_many(body, version).await?;
    Ok(links.iter().map(Added::from).collect())
}

/// A directory's entries with their metadata.
pub fn ls(node: &Node, cid: &Cid) -> Result<Vec<Entry>, ApiError> {
    Ok(node
        .files()
        .ls_detailed(cid)?
        .iter()
        .map(Entry::from)
        .collect())
}

/// What `cid` is.
pub fn stat(node: &Node, cid: &Cid) -> Result<Stat, ApiError> {
    let (kind, meta, target) = node.files().stat_detailed(cid)?;
    Ok(Stat {
        cid: *cid,
        kind: Kind::from(&kind),
        size: match kind {
            cairn_dag::dir::NodeKind::File { size } => Some(size),
            _ => None,
        },
        target,
        meta: Meta::from(&meta),
    })
}

/// Checks the DAG under `cid` (`hard`: reads and re-assembles every file).
pub fn check(node: &Node, cid: &Cid, hard: bool) -> Result<Checked, ApiError> {
    let r = node.files().check(cid, hard)?;
    Ok(Checked {
        cid: *cid,
        blocks: r.blocks,
        bytes_read: r.bytes_read,
        missing: r.missing,
        corrupt: r.corrupt,
        bad_files: r
            .bad_files
            .into_iter()
            .map(|(c, why)| (c.to_string(), why))
            .collect(),
    })
}

/// Re-hashes every block file now; failing ones are quarantined.
pub fn scrub(node: &Node) -> Result<Scrubbed, ApiError> {
    let page = node.repo().scrub()?;
    Ok(Scrubbed {
        checked: page.checked,
        bytes: page.bytes,
        corrupt: page.corrupt,
    })
}

/// Collects garbage now.
pub fn gc(node: &Node) -> Result<Collected, ApiError> {
    let st = node.repo().collect_garbage()?;
    Ok(Collected {
        removed: st.removed,
        freed_bytes: st.freed_bytes,
        kept: st.kept,
        missing: st.missing,
    })
}

/// Every pin.
pub fn pins(node: &Node) -> Result<Vec<Pin>, ApiError> {
    Ok(node
        .repo()
        .pins()?
        .into_iter()
        .map(|(cid, count)| Pin { cid, count })
        .collect())
}

/// Pins `cid` (its whole DAG must be here).
pub fn pin(node: &Node, cid: &Cid) -> Result<Pinned, ApiError> {
    node.repo().pin(cid)?;
    Ok(Pinned { cid: *cid })
}

/// Removes the operator's pin of `cid`; a 404 when there is none.
pub fn unpin(node: &Node, cid: &Cid) -> Result<Pinned, ApiError> {
    if node.repo().unpin(cid)? {
        Ok(Pinned { cid: *cid })
    } else {
        Err(ApiError::not_found(format!("{cid} is not pinned")))
    }
}

/// Stores a CARv1 stream; every block is verified and a bad one rejects the whole import.
pub async fn car_import<R>(node: &Node, car: R, pin: bool) -> Result<CarImported, ApiError>
where
    R: tokio::io::AsyncRead + Send + Unpin,
{
    let r = node.files().car_import(car, pin).await?;
    Ok(CarImported {
        roots: r.roots,
        blocks: r.blocks,
        pinned: r.pinned,
        incomplete: r.incomplete,
    })
}

/// A new S3 key for `user`.
pub fn create_key(node: &Node, user: &str) -> Result<NewKey, ApiError> {
    let (access_key, secret_key) = node.keys().create(user)?;
    Ok(NewKey {
        access_key,
        secret_key,
    })
}

/// Every S3 key.
pub fn keys(node: &Node) -> Result<Vec<Key>, ApiError> {
    Ok(node
        .keys()
        .list()?
        .into_iter()
        .map(|(access_key, r)| Key {
            access_key,
            user: r.user,
        })
        .collect())
}

/// Deletes an S3 key; a 404 when there is none.
pub fn delete_key(node: &Node, access: &str) -> Result<Deleted, ApiError> {
    if node.keys().delete(access)? {
        Ok(Deleted { deleted: true })
    } else {
        Err(ApiError::not_found(format!("no such access key {access}")))
    }
}

fn account(name: String, record: cairn_node::accounts::AccountRecord) -> Account {
    use cairn_node::accounts::QuotaPolicy;
    Account {
        name,
        keys: record.keys.iter().map(|k| k.to_line()).collect(),
        quota: record.quota,
        policy: match record.policy {
            QuotaPolicy::Refuse => "refuse",
            QuotaPolicy::EvictOldest => "evict-oldest",
        }
        .to_owned(),
    }
}

fn policy_of(text: Option<&str>) -> Result<Option<cairn_node::accounts::QuotaPolicy>, ApiError> {
    Ok(text.map(str::parse).transpose()?)
}

/// Adds `key` to the SFTP account `name`, making the account and its home bucket.
pub fn sftp_add(
    node: &Node,
    name: &str,
    key: &str,
    quota: Option<u64>,
    policy: Option<&str>,
) -> Result<Account, ApiError> {
    let record = node.accounts().add(name, key, quota, policy_of(policy)?)?;
    Ok(account(name.to_owned(), record))
}

/// Every SFTP account.
pub fn sftp_list(node: &Node) -> Result<Vec<Account>, ApiError> {
    Ok(node
        .accounts()
        .list()?
        .into_iter()
        .map(|(name, record)| account(name, record))
        .collect())
}

/// Removes an SFTP account (its home bucket stays); a 404 when there is none.
pub fn sftp_remove(node: &Node, name: &str) -> Result<Deleted, ApiError> {
    node.accounts().remove(name)?;
    Ok(Deleted { deleted: true })
}

/// What an SFTP account's home holds against its quota.
pub fn sftp_usage(node: &Node, name: &str) -> Result<AccountUsage, ApiError> {
    let usage = node.accounts().usage(name)?;
    Ok(AccountUsage {
        name: name.to_owned(),
        used: usage.used,
        quota: usage.quota,
    })
}

/// Sets an SFTP account's quota (`None`: no limit) and policy.
pub fn sftp_set_quota(
    node: &Node,
    name: &str,
    quota: Option<u64>,
    policy: Option<&str>,
) -> Result<Account, ApiError> {
    let record = node.accounts().set_quota(name, quota, policy_of(policy)?)?;
    Ok(account(name.to_owned(), record))
}

/// The buckets `caller` sees: every one for root, a user's own otherwise.
pub fn buckets(node: &Node, caller: &Caller) -> Result<Vec<Bucket>, ApiError> {
    Ok(node
        .buckets()
        .list()?
        .into_iter()
        .filter(|(_, r)| {
            *caller == Caller::Root || cairn_node::access::local_owner(r) == caller.name()
        })
        .map(|(name, r)| Bucket {
            public: r.is_public(),
            owner: r.owner,
            name,
        })
        .collect())
}

/// Makes a bucket public (or private again).
pub fn set_public(node: &Node, bucket: &str, public: bool) -> Result<Public, ApiError> {
    Ok(Public {
        public: node.buckets().set_public(bucket, public)?.is_public(),
    })
}

/// The bucket's current root (after folding in queued changes).
pub fn root(node: &Node, bucket: &str) -> Result<Root, ApiError> {
    Ok(Root::of(bucket, &node.roots().current(bucket)?))
}

/// The bucket's retained roots, oldest first.
pub fn history(node: &Node, bucket: &str) -> Result<Vec<Root>, ApiError> {
    let rows = node.roots().history(bucket)?;
    Ok(rows.iter().map(|r| Root::of(bucket, r)).collect())
}

/// Restores `root` (a CID or CID/path of a bucket tree) as the bucket's contents.
pub fn restore(node: &Node, bucket: &str, root: &str) -> Result<Restored, ApiError> {
    let (cid, _) = parse_path(root)?;
    let done = node.roots().restore(bucket, &cid)?;
    let now = node.roots().current(bucket)?;
    Ok(Restored {
        written: done.written,
        deleted: done.deleted,
        root: now.tree,
        seq: now.seq,
    })
}

/// Takes over a mirrored bucket whose owner is gone.
pub fn promote(node: &Node, bucket: &str, force: bool) -> Result<Promoted, ApiError> {
    Ok(Promoted {
        seq: node.replication().promote(bucket, force)?,
    })
}

/// The bucket's redundancy: its own policy (with `set`: after setting it, `""` or `"default"`
/// clearing it), and the one its writes get.
pub fn redundancy(node: &Node, bucket: &str, set: Option<&str>) -> Result<Redundancy, ApiError> {
    let record = match set {
        Some("" | "default") => node.buckets().set_redundancy(bucket, None)?,
        Some(policy) => node.buckets().set_redundancy(bucket, Some(policy))?,
        None => node.buckets().get(bucket)?,
    };
    let effective = node.buckets().redundancy(Some(bucket))?;
    Ok(Redundancy {
        bucket: bucket.to_owned(),
        redundancy: record.redundancy,
        effective: effective.map(|p| p.to_string()),
    })
}

/// Makes a bucket from a CARv1 of a UnixFS directory, owned by `owner`.
pub async fn import_bucket<R>(
    node: &Node,
    bucket: &str,
    owner: &str,
    car: R,
) -> Result<BucketImported, ApiError>
where
    R: tokio::io::AsyncRead + Send + Unpin,
{
    let done = node.buckets().import_car(bucket, owner, car).await?;
    Ok(BucketImported {
        root: done.root,
        objects: done.objects,
        skipped: done.skipped,
    })
}

/// Makes a bucket owned by `owner`, encrypted by default if asked.
pub fn create_bucket(
    node: &Node,
    bucket: &str,
    owner: &str,
    encrypted: bool,
) -> Result<Encryption, ApiError> {
    node.buckets().create(bucket, owner)?;
    if encrypted {
        node.buckets().set_encryption(bucket, true)?;
    }
    encryption(node, bucket, None)
}

/// The bucket's default encryption, after setting it when `set`.
pub fn encryption(node: &Node, bucket: &str, set: Option<bool>) -> Result<Encryption, ApiError> {
    if let Some(on) = set {
        node.buckets().set_encryption(bucket, on)?;
    }
    Ok(Encryption {
        bucket: bucket.to_owned(),
        encrypted: node.buckets().encrypted(bucket)?,
    })
}

/// Seals the data key of `bucket/key` for `to`, until `expires_ms` if given.
pub fn share(
    node: &Node,
    bucket: &str,
    key: &str,
    to: &cairn_crypt::identity::PublicId,
    expires_ms: Option<i64>,
) -> Result<Shared, ApiError> {
    let info = node.objects().share(bucket, key, to, expires_ms)?;
    Ok(Shared {
        shared_with: to.to_string(),
        cid: info.cid,
        expires_ms,
    })
}

/// Revokes `to`'s share of `bucket/key` and re-keys the object.
pub async fn revoke(
    node: &Node,
    bucket: &str,
    key: &str,
    to: &cairn_crypt::identity::PublicId,
) -> Result<Revoked, ApiError> {
    let info = node.objects().revoke(bucket, key, to).await?;
    Ok(Revoked {
        revoked: to.to_string(),
        cid: info.cid,
        version_id: info.meta.version_id,
    })
}

/// The public key of the user this node acts as.
pub fn user(node: &Node) -> User {
    User {
        public_key: node.user_public().map(|p| p.to_string()),
    }
}

/// Builds the folders of a manifest whose files were stored before; with `snapshot`, records
/// the root as that snapshot in the same commit.
pub fn tree(
    node: &Node,
    manifest: TreeManifest,
    version: CidVersion,
    pin: bool,
    snapshot: Option<&str>,
) -> Result<TreeBuilt, ApiError> {
    let root_meta =
        cairn_dag::meta::UnixMeta::try_from(manifest.meta).map_err(ApiError::invalid)?;
    let mut entries = Vec::with_capacity(manifest.entries.len());
    for e in manifest.entries {
        let item = match e.kind {
            TreeKind::Dir => StoredItem::Dir,
            TreeKind::File => StoredItem::File {
                cid: e
                    .cid
                    .ok_or_else(|| ApiError::invalid("file entry without a valid cid"))?,
                dag_size: e
                    .dag_size
                    .ok_or_else(|| ApiError::invalid("file entry without dag_size"))?,
            },
            TreeKind::Symlink => StoredItem::Symlink(
                e.target
                    .ok_or_else(|| ApiError::invalid("symlink entry without target"))?,
            ),
        };
        let meta = cairn_dag::meta::UnixMeta::try_from(e.meta)
            .map_err(|m| ApiError::invalid(format!("{}: {m}", e.path)))?;
        entries.push((e.path, item, meta));
    }
    let (added, row) =
        node.files()
            .build_tree(&manifest.root, &root_meta, &entries, version, pin, snapshot)?;
    let folders = added
        .into_iter()
        .map(|a| Folder {
            path: a.path,
            cid: a.cid,
            size: a.size,
        })
        .collect();
    Ok(match row {
        Some(row) => TreeBuilt::Snapshot {
            folders,
            snapshot: Snapshot::from(&row),
        },
        None => TreeBuilt::Folders(folders),
    })
}

/// Records the (complete) DAG under `cid` as a new snapshot of `name`.
pub fn snapshot_add(node: &Node, name: &str, cid: &Cid) -> Result<Snapshot, ApiError> {
    Ok(Snapshot::from(&node.files().add_snapshot(name, cid)?))
}

/// Snapshots (of `name`, or all), oldest first.
pub fn snapshots(node: &Node, name: Option<&str>) -> Result<Vec<Snapshot>, ApiError> {
    Ok(node
        .files()
        .snapshots(name)?
        .iter()
        .map(Snapshot::from)
        .collect())
}

/// Forgets snapshots of `name`; answers the forgotten ones.
pub fn snapshot_rm(node: &Node, name: &str, which: &Forget) -> Result<Vec<Snapshot>, ApiError> {
    Ok(node
        .files()
        .forget_snapshots(name, which)?
        .iter()
        .map(Snapshot::from)
        .collect())
}

/// The blocks stored here and their bytes.
pub fn repo_stat(node: &Node) -> Result<RepoStat, ApiError> {
    let (blocks, bytes) = node.repo().stats()?;
    Ok(RepoStat { blocks, bytes })
}

/// Objects by margin: of one object (`bucket` and `key`), a bucket (under `prefix`), or every
/// bucket.
pub fn margins(
    node: &Node,
    bucket: Option<&str>,
    key: Option<&str>,
    prefix: &str,
    hard: bool,
) -> Result<BucketMargins, ApiError> {
    Ok(match (bucket, key) {
        (Some(bucket), Some(key)) => {
            let object = node.objects().get(bucket, key)?;
            let mut one = BucketMargins::default();
            one.add(key, &node.replication().margins(bucket, &object.cid, hard)?);
            one
        }
        (Some(bucket), None) => node.replication().bucket_margins(bucket, prefix, hard)?,
        (None, _) => node.replication().all_margins(hard)?,
    })
}

/// Every background job's last run.
pub fn workers(node: &Node) -> Vec<Worker> {
    node.workers()
        .snapshot()
        .into_iter()
        .map(|(name, status)| Worker {
            name: name.to_owned(),
            status,
        })
        .collect()
}
