//! The `/api/v0` vocabulary: one type per answer (and the `/tree` manifest), serialized by the
//! node's routes and read by the CLI's client, so a renamed field is a compile error on both
//! sides instead of an empty print. The JSON is what the untyped handlers answered before
//! (`crates/cairn/tests/golden/api-v0.json` holds every shape): an older CLI keeps working
//! against a newer node.
//!
//! CIDs travel as their text form ([`cid_text`]); metadata as `"mode": 420` (permission bits)
//! and `"mtime": {"secs": 1700000000, "nsecs": 5}`, both optional — absent means none.

use cairn_dag::Cid;
use cairn_dag::dir::NodeKind;
use cairn_dag::meta::{UnixMeta, UnixTime};
use serde::{Deserialize, Serialize};

pub use cairn_node::check::BucketMargins;
pub use cairn_node::replication::ClusterCheck;
pub use cairn_node::worker::WorkerStatus;

/// Serde of a value by its text form (`Display` / `FromStr`): CIDs and lists of them.
pub mod cid_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes `v` as its text.
    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Reads `T` from its text.
    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
    }

    /// A list of values as a list of texts.
    pub mod list {
        use super::*;

        /// Writes every value as its text.
        pub fn serialize<T: Display, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(v.iter().map(|x| x.to_string()))
        }

        /// Reads every value from its text.
        pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
        where
            T: FromStr,
            T::Err: Display,
            D: Deserializer<'de>,
        {
            Vec::<String>::deserialize(d)?
                .into_iter()
                .map(|t| {
                    t.parse()
                        .map_err(|e| D::Error::custom(format!("{t:?}: {e}")))
                })
                .collect()
        }
    }

    /// An optional value as its text or `null`.
    pub mod option {
        use super::*;

        /// Writes the value's text, or `null`.
        pub fn serialize<T: Display, S: Serializer>(
            v: &Option<T>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_str(v),
                None => s.serialize_none(),
            }
        }

        /// Reads the value from its text; `null` is none.
        pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
        where
            T: FromStr,
            T::Err: Display,
            D: Deserializer<'de>,
        {
            Option::<String>::deserialize(d)?
                .map(|t| {
                    t.parse()
                        .map_err(|e| D::Error::custom(format!("{t:?}: {e}")))
                })
                .transpose()
        }
    }
}

/// An error answer: `{"error": "..."}` with a 4xx/5xx status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// A UnixFS 1.5 modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mtime {
    /// Seconds since the Unix epoch.
    pub secs: i64,
    /// Nanoseconds (below 10^9; absent is 0).
    #[serde(default)]
    pub nsecs: u32,
}

/// UnixFS 1.5 metadata as JSON fields of the object that carries them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Modification time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<Mtime>,
}

impl From<&UnixMeta> for Meta {
    fn from(m: &UnixMeta) -> Self {
        Meta {
            mode: m.mode,
            mtime: m.mtime.map(|t| Mtime {
                secs: t.secs,
                nsecs: t.nsecs,
            }),
        }
    }
}

impl TryFrom<Meta> for UnixMeta {
    type Error = String;

    /// Refuses a time whose `nsecs` is not below 10^9.
    fn try_from(m: Meta) -> Result<Self, String> {
        let mtime = match m.mtime {
            Some(t) if t.nsecs >= 1_000_000_000 => {
                return Err(format!("mtime nsecs {} is not below 10^9", t.nsecs));
            }
            Some(t) => Some(UnixTime {
                secs: t.secs,
                nsecs: t.nsecs,
            }),
            None => None,
        };
        Ok(UnixMeta {
            mode: m.mode,
            mtime,
        })
    }
}

/// What a UnixFS node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A file.
    File,
    /// A directory (plain or HAMT).
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (raw leaves of other formats, metadata nodes).
    Other,
}

impl From<&NodeKind> for Kind {
    fn from(k: &NodeKind) -> Self {
        match k {
            NodeKind::File { .. } => Kind::File,
            NodeKind::Directory { .. } => Kind::Dir,
            NodeKind::Symlink => Kind::Symlink,
            NodeKind::Other => Kind::Other,
        }
    }
}

/// `GET /id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Id {
    /// The node's data folder.
    pub data: String,
    /// Its peer id, when it runs a network.
    pub peer_id: Option<String>,
    /// The addresses it listens on.
    pub addrs: Vec<String>,
}

/// One of `GET /swarm/peers`.
pub use crate::network::Peer;

/// `POST /swarm/connect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connected {
    /// The peer that answered.
    pub peer_id: String,
}

/// One of `GET /workers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Worker {
    /// The job's name.
    pub name: String,
    /// What it last did.
    pub status: WorkerStatus,
}

/// `POST /add` (and each of `POST /add/many`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Added {
    /// The file's root.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// Its bytes.
    pub size: u64,
    /// Its DAG's bytes (dag-pb Tsize).
    pub dag_size: u64,
}

impl From<&cairn_dag::file::FileLink> for Added {
    fn from(l: &cairn_dag::file::FileLink) -> Self {
        Added {
            cid: l.cid,
            size: l.file_size,
            dag_size: l.dag_size,
        }
    }
}

/// One of `GET /ls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Its name in the directory.
    pub name: String,
    /// Its CID.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// File bytes (files) or DAG bytes.
    pub size: u64,
    /// Whether it is a directory (older CLIs read this).
    pub dir: bool,
    /// What it is.
    pub kind: Kind,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its metadata.
    #[serde(flatten)]
    pub meta: Meta,
}

impl From<&cairn_node::snapshot::DetailedEntry> for Entry {
    fn from(e: &cairn_node::snapshot::DetailedEntry) -> Self {
        let kind = Kind::from(&e.entry.kind);
        Entry {
            name: e.entry.name.clone(),
            cid: e.entry.cid,
            size: e.entry.size,
            dir: kind == Kind::Dir,
            kind,
            target: e.target.clone(),
            meta: Meta::from(&e.meta),
        }
    }
}

/// `GET /stat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stat {
    /// The node's CID.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// What it is.
    pub kind: Kind,
    /// A file's size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its metadata.
    #[serde(flatten)]
    pub meta: Meta,
}

/// `GET /check`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checked {
    /// The DAG's root.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// Blocks visited.
    pub blocks: u64,
    /// Bytes read (hard) or 0.
    pub bytes_read: u64,
    /// Blocks not found.
    #[serde(with = "cid_text::list")]
    pub missing: Vec<Cid>,
    /// Blocks whose bytes do not hash to their CID (quarantined).
    #[serde(with = "cid_text::list")]
    pub corrupt: Vec<Cid>,
    /// Files that do not re-assemble, and why (`[cid, why]`).
    pub bad_files: Vec<(String, String)>,
}

impl Checked {
    /// Whether nothing is missing, corrupt or bad.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty() && self.bad_files.is_empty()
    }
}

/// `POST /scrub`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scrubbed {
    /// Block files re-hashed.
    pub checked: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Those that failed (quarantined).
    #[serde(with = "cid_text::list")]
    pub corrupt: Vec<Cid>,
}

/// `POST /gc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Collected {
    /// Blocks removed.
    pub removed: u64,
    /// Their bytes.
    pub freed_bytes: u64,
    /// Blocks kept.
    pub kept: u64,
    /// Blocks of pinned DAGs missing or corrupt.
    pub missing: u64,
}

/// One of `GET /pin/ls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pin {
    /// The pinned root.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// How many references hold it.
    pub count: u64,
}

/// `POST /pin/add` and `POST /pin/rm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pinned {
    /// The root pinned or unpinned.
    #[serde(with = "cid_text")]
    pub cid: Cid,
}

/// `POST /car/import`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarImported {
    /// The CAR's roots.
    #[serde(with = "cid_text::list")]
    pub roots: Vec<Cid>,
    /// Blocks stored.
    pub blocks: u64,
    /// Roots pinned (the complete ones, when pinning).
    #[serde(with = "cid_text::list")]
    pub pinned: Vec<Cid>,
    /// Roots whose DAG is not complete here (not pinned).
    #[serde(with = "cid_text::list")]
    pub incomplete: Vec<Cid>,
}

/// `POST /key/create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewKey {
    /// The access key id.
    pub access_key: String,
    /// Its secret (shown once).
    pub secret_key: String,
}

/// One of `GET /key/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    /// The access key id.
    pub access_key: String,
    /// The user it belongs to.
    pub user: String,
}

/// An SFTP account (`GET /sftp/list`, `POST /sftp/add`, `POST /sftp/set-quota`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// Its name: the S3 user it acts as, and its home bucket.
    pub name: String,
    /// Its SSH public keys, as OpenSSH lines.
    pub keys: Vec<String>,
    /// Bytes its home may hold (none: no limit).
    pub quota: Option<u64>,
    /// What an upload past the quota does: `refuse` or `evict-oldest`.
    pub policy: String,
}

/// `GET /sftp/usage`: what an account's home holds against its quota.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountUsage {
    /// The account.
    pub name: String,
    /// Bytes of its current files.
    pub used: u64,
    /// Bytes it may hold (none: no limit).
    pub quota: Option<u64>,
}

/// `POST /key/delete`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleted {
    /// Always true (an unknown key is a 404).
    pub deleted: bool,
}

/// One of `GET /bucket/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bucket {
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// Whether anyone may read it.
    pub public: bool,
}

/// `POST /bucket/set-public`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Public {
    /// Whether the bucket is public now.
    pub public: bool,
}

/// `GET /bucket/root` and each of `GET /bucket/history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Root {
    /// The bucket.
    pub bucket: String,
    /// Its version (head sequence).
    pub seq: u64,
    /// When the root was built, Unix milliseconds.
    pub time_ms: u64,
    /// The UnixFS tree of its objects.
    #[serde(rename = "root", with = "cid_text")]
    pub tree: Cid,
    /// The root's record (tree, index and settings).
    #[serde(with = "cid_text")]
    pub record: Cid,
}

impl Root {
    /// The answer for `bucket`'s row.
    pub fn of(bucket: &str, row: &cairn_node::RootRow) -> Root {
        Root {
            bucket: bucket.to_owned(),
            seq: row.seq,
            time_ms: row.time_ms,
            tree: row.tree,
            record: row.record,
        }
    }
}

/// `POST /bucket/restore`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restored {
    /// Objects written back.
    pub written: usize,
    /// Objects deleted.
    pub deleted: usize,
    /// The bucket's new root.
    #[serde(with = "cid_text")]
    pub root: Cid,
    /// Its version.
    pub seq: u64,
}

/// `POST /bucket/promote`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Promoted {
    /// The version of the first head signed here.
    pub seq: u64,
}

/// `GET|POST /bucket/redundancy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Redundancy {
    /// The bucket.
    pub bucket: String,
    /// Its own policy, if set.
    pub redundancy: Option<String>,
    /// The policy its writes get (`null` outside a cluster).
    pub effective: Option<String>,
}

/// `POST /bucket/import`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketImported {
    /// The directory imported (`null` for an empty CAR).
    #[serde(with = "cid_text::option")]
    pub root: Option<Cid>,
    /// Objects made.
    pub objects: usize,
    /// Entries skipped (symlinks, non-UnixFS).
    pub skipped: usize,
}

/// `POST /bucket/create` and `GET|POST /bucket/encryption`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Encryption {
    /// The bucket.
    pub bucket: String,
    /// Whether new objects are encrypted by default.
    pub encrypted: bool,
}

/// `POST /share`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shared {
    /// The reader's public key.
    pub shared_with: String,
    /// The object's CID.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// When the share ends, Unix milliseconds.
    pub expires_ms: Option<i64>,
}

/// `POST /share?revoke=true`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    /// The reader's public key.
    pub revoked: String,
    /// The re-keyed object's CID.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// Its new version, in a versioned bucket.
    pub version_id: Option<String>,
}

/// `GET /user`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// The public key of the user this node acts as, if it has one.
    pub public_key: Option<String>,
}

/// A named snapshot: `POST /snapshot/add`, each of `GET /snapshot/ls` and `POST /snapshot/rm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its name.
    pub name: String,
    /// When it was taken, Unix milliseconds.
    pub time_ms: u64,
    /// Its root.
    #[serde(with = "cid_text")]
    pub cid: Cid,
}

impl From<&cairn_node::SnapshotRow> for Snapshot {
    fn from(r: &cairn_node::SnapshotRow) -> Self {
        Snapshot {
            name: r.name.clone(),
            time_ms: r.time_ms,
            cid: r.cid,
        }
    }
}

/// `GET /repo/stat`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoStat {
    /// Blocks stored here.
    pub blocks: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// What one entry of a `/tree` manifest is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TreeKind {
    /// A folder.
    Dir,
    /// A file uploaded before (`cid` and `dag_size` given).
    File,
    /// A symlink (`target` given).
    Symlink,
}

/// One entry of a `/tree` manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Its path, starting with the root's name (`root/a/b`).
    pub path: String,
    /// What it is.
    pub kind: TreeKind,
    /// A file's root.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "cid_text::option"
    )]
    pub cid: Option<Cid>,
    /// A file's DAG size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dag_size: Option<u64>,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its metadata.
    #[serde(flatten)]
    pub meta: Meta,
}

/// The body of `POST /tree`: the folders to build over files uploaded before.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TreeManifest {
    /// The root folder's name.
    pub root: String,
    /// The root folder's metadata.
    #[serde(flatten)]
    pub meta: Meta,
    /// Everything under it, parents before children.
    #[serde(default)]
    pub entries: Vec<TreeEntry>,
}

/// One folder `POST /tree` built.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Folder {
    /// Its path.
    pub path: String,
    /// Its CID.
    #[serde(with = "cid_text")]
    pub cid: Cid,
    /// Its DAG bytes.
    pub size: u64,
}

/// `POST /tree`: the folders, root last; with `snapshot=`, also the snapshot recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TreeBuilt {
    /// With a snapshot.
    Snapshot {
        /// The folders, root last.
        folders: Vec<Folder>,
        /// The snapshot recorded.
        snapshot: Snapshot,
    },
    /// Without one.
    Folders(Vec<Folder>),
}

impl TreeBuilt {
    /// The folders, root last.
    pub fn folders(&self) -> &[Folder] {
        match self {
            TreeBuilt::Snapshot { folders, .. } | TreeBuilt::Folders(folders) => folders,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: serde_json::Value) -> Result<UnixMeta, String> {
        serde_json::from_value::<Meta>(v)
            .map_err(|e| e.to_string())
            .and_then(UnixMeta::try_from)
    }

    #[test]
    fn metadata_round_trips_and_refuses_nonsense() {
        let m = UnixMeta {
            mode: Some(0o4755),
            mtime: Some(UnixTime {
                secs: -3,
                nsecs: 999_999_999,
            }),
        };
        let v = serde_json::to_value(Meta::from(&m)).unwrap();
        assert_eq!(meta(v).unwrap(), m);
        assert!(meta(json!({})).unwrap().is_empty());
        assert_eq!(
            meta(json!({"mtime": {"secs": 5}})).unwrap().mtime,
            Some(UnixTime { secs: 5, nsecs: 0 })
        );
        for bad in [
            json!({"mode": -1}),
            json!({"mode": 1u64 << 40}),
            json!({"mode": "644"}),
            json!({"mtime": {"nsecs": 1}}),
            json!({"mtime": {"secs": 1, "nsecs": 1_000_000_000}}),
        ] {
            assert!(meta(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn cids_travel_as_text_and_bad_text_is_refused() {
        let cid = Cid::try_from("QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX").unwrap();
        let v = serde_json::to_value(Pinned { cid }).unwrap();
        assert_eq!(v, json!({"cid": cid.to_string()}));
        assert_eq!(serde_json::from_value::<Pinned>(v).unwrap().cid, cid);
        assert!(serde_json::from_value::<Pinned>(json!({"cid": "nope"})).is_err());
        assert!(serde_json::from_value::<Pinned>(json!({})).is_err());
    }

    #[test]
    fn tree_answers_read_back_with_or_without_a_snapshot() {
        let cid = Cid::try_from("QmWfVY9y3xjsixTgbd9AorQxH7VtMpzfx2HaWtsoUYecaX").unwrap();
        let folder = json!({"path": "r", "cid": cid.to_string(), "size": 4});
        let plain: TreeBuilt = serde_json::from_value(json!([folder])).unwrap();
        assert!(matches!(plain, TreeBuilt::Folders(ref f) if f.len() == 1));
        let snap: TreeBuilt = serde_json::from_value(json!({
            "folders": [folder],
            "snapshot": {"name": "n", "time_ms": 1, "cid": cid.to_string()},
        }))
        .unwrap();
        assert!(matches!(snap, TreeBuilt::Snapshot { .. }));
        assert_eq!(snap.folders().len(), 1);
    }
}
