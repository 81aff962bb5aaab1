//! [`NodeApi`]: what the CLI asks of a node, one method per `/api/v0` route, answering the
//! route's [`crate::types`] value. Two implementations: [`crate::client::HttpApi`] (a running
//! node, here or elsewhere, over HTTP) and [`crate::local::LocalApi`] (a stopped node's data
//! folder, opened in the CLI's process). Each command of the CLI is written once over this trait.

use std::io::{Read, Write};

use cairn_node::CidVersion;
use cairn_node::replication::RepairMode;
use cairn_node::snapshot::Forget;

use crate::ApiError;
use crate::types::*;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The node answered an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The node could not be reached, or the connection broke.
    #[error("calling the node's API: {0}")]
    Transport(String),
    /// The node's answer is not what the route answers.
    #[error("the node's answer does not read: {0}")]
    Decode(String),
    /// Reading the caller's input or writing its output failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// What this way of reaching the node cannot do (a network command on a stopped node).
    #[error("{0}")]
    Unsupported(String),
}

/// A result of a call.
pub type Call<T> = Result<T, CallError>;

/// What the CLI asks of a node. Paths are `CID[/path]`.
pub trait NodeApi: Send + Sync {
    /// The node's data folder, peer id and addresses.
    fn id(&self) -> Call<Id>;
    /// Connected peers.
    fn peers(&self) -> Call<Vec<Peer>>;
    /// Dials a multiaddr.
    fn dial(&self, addr: &str) -> Call<Connected>;
    /// Peers that announced they provide `cid`.
    fn providers(&self, cid: &str) -> Call<Vec<String>>;
    /// Every background job's last run.
    fn workers(&self) -> Call<Vec<Worker>>;
    /// Objects by margin: one object, a bucket, or every bucket.
    fn margins(&self, bucket: Option<&str>, key: Option<&str>, hard: bool) -> Call<BucketMargins>;
    /// One full pass of the cluster check.
    fn cluster_check(&self, mode: RepairMode) -> Call<ClusterCheck>;

    /// Stores a byte stream as one UnixFS file.
    fn add(&self, body: &mut dyn Read, version: CidVersion, pin: bool) -> Call<Added>;
    /// Stores many files framed in one stream ([`cairn_node::snapshot`]), in one commit.
    fn add_many(&self, frames: &mut dyn Read, version: CidVersion) -> Call<Vec<Added>>;
    /// Builds the folders of a manifest over files stored before.
    fn tree(
        &self,
        manifest: &TreeManifest,
        version: CidVersion,
        pin: bool,
        snapshot: Option<&str>,
    ) -> Call<TreeBuilt>;
    /// Writes the file's bytes (from `offset`, at most `length`) to `out`.
    fn cat(&self, path: &str, offset: u64, length: Option<u64>, out: &mut dyn Write) -> Call<()>;
    /// A directory's entries.
    fn ls(&self, path: &str) -> Call<Vec<Entry>>;
    /// What the path names.
    fn stat(&self, path: &str) -> Call<Stat>;
    /// Checks the DAG (`hard`: reads and re-assembles every file).
    fn check(&self, path: &str, hard: bool) -> Call<Checked>;
    /// Collects garbage now.
    fn gc(&self) -> Call<Collected>;
    /// Re-hashes every block file now.
    fn scrub(&self) -> Call<Scrubbed>;
    /// Every pin.
    fn pins(&self) -> Call<Vec<Pin>>;
    /// Pins the DAG.
    fn pin(&self, path: &str) -> Call<Pinned>;
    /// Unpins the DAG.
    fn unpin(&self, path: &str) -> Call<Pinned>;
    /// Writes the DAG as a CARv1 to `out`.
    fn car_export(&self, path: &str, out: &mut dyn Write) -> Call<()>;
    /// Stores a CARv1 (every block verified).
    fn car_import(&self, car: &mut dyn Read, pin: bool) -> Call<CarImported>;

    /// A new S3 key for `user`.
    fn create_key(&self, user: &str) -> Call<NewKey>;
    /// Every S3 key.
    fn keys(&self) -> Call<Vec<Key>>;
    /// Deletes an S3 key.
    fn delete_key(&self, access: &str) -> Call<Deleted>;

    /// Adds an SSH key to the SFTP account `name`, making the account and its home bucket.
    fn sftp_add(
        &self,
        name: &str,
        key: &str,
        quota: Option<u64>,
        policy: Option<&str>,
    ) -> Call<Account>;
    /// Every SFTP account.
    fn sftp_list(&self) -> Call<Vec<Account>>;
    /// Removes an SFTP account (its home bucket stays).
    fn sftp_remove(&self, name: &str) -> Call<Deleted>;
    /// What an SFTP account's home holds against its quota.
    fn sftp_usage(&self, name: &str) -> Call<AccountUsage>;
    /// Sets an SFTP account's quota (`None`: no limit) and policy.
    fn sftp_set_quota(&self, name: &str, quota: Option<u64>, policy: Option<&str>)
    -> Call<Account>;

    /// The buckets the caller sees.
    fn buckets(&self) -> Call<Vec<Bucket>>;
    /// Makes a bucket public, or private again.
    fn set_public(&self, bucket: &str, public: bool) -> Call<Public>;
    /// The bucket's current root.
    fn root(&self, bucket: &str) -> Call<Root>;
    /// The bucket's retained roots, oldest first.
    fn history(&self, bucket: &str) -> Call<Vec<Root>>;
    /// Restores a root of the bucket.
    fn restore(&self, bucket: &str, root: &str) -> Call<Restored>;
    /// The bucket's signed head (dag-cbor).
    fn head(&self, bucket: &str) -> Call<Vec<u8>>;
    /// Takes over a mirrored bucket whose owner is gone.
    fn promote(&self, bucket: &str, force: bool) -> Call<Promoted>;
    /// The bucket's redundancy, after setting it when `set` (`default` clears it).
    fn redundancy(&self, bucket: &str, set: Option<&str>) -> Call<Redundancy>;
    /// Makes a bucket from a CARv1 of a UnixFS directory.
    fn import_bucket(&self, bucket: &str, car: &mut dyn Read) -> Call<BucketImported>;
    /// Makes a bucket.
    fn create_bucket(&self, bucket: &str, encrypted: bool) -> Call<Encryption>;
    /// The bucket's default encryption, after setting it when `set`.
    fn encryption(&self, bucket: &str, set: Option<bool>) -> Call<Encryption>;

    /// Shares `bucket/key` with `to` (a public key), until `expires_ms` if given.
    fn share(&self, target: &str, to: &str, expires_ms: Option<i64>) -> Call<Shared>;
    /// Revokes `to`'s share of `bucket/key` and re-keys the object.
    fn revoke(&self, target: &str, to: &str) -> Call<Revoked>;
    /// The public key of the user the node acts as.
    fn user(&self) -> Call<User>;

    /// Records the DAG as a new snapshot of `name`.
    fn snapshot_add(&self, name: &str, path: &str) -> Call<Snapshot>;
    /// Snapshots (of `name`, or all), oldest first.
    fn snapshots(&self, name: Option<&str>) -> Call<Vec<Snapshot>>;
    /// Forgets snapshots of `name`; the forgotten ones.
    fn snapshot_rm(&self, name: &str, which: &Forget) -> Call<Vec<Snapshot>>;
    /// The blocks stored and their bytes.
    fn repo_stat(&self) -> Call<RepoStat>;
}

/// `BUCKET/KEY` split, both parts non-empty.
pub fn bucket_and_key(target: &str) -> Result<(&str, &str), ApiError> {
    match target.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b, k)),
        _ => Err(ApiError::invalid("expected BUCKET/KEY")),
    }
}

/// A public key given as text.
pub fn public_id(text: &str) -> Result<cairn_crypt::identity::PublicId, ApiError> {
    text.parse()
        .map_err(|e| ApiError::invalid(format!("--to {text:?}: {e}")))
}

/// A repair mode's name in the API (`soft`, `hard`, `repair`).
pub fn mode_name(mode: RepairMode) -> &'static str {
    match mode {
        RepairMode::Soft => "soft",
        RepairMode::Hard => "hard",
        RepairMode::Repair => "repair",
    }
}
