//! SFTP accounts as a capability ([`Node::accounts`]), issue 20: an account's name is also the
//! S3 user it acts as and the bucket that is its home folder; it holds the SSH public keys that
//! may log in as it, and its quota. The SSH door asks [`Accounts::may_log_in`]; what the account
//! may then do in its home is [`crate::Access::authorize`]'s, as for any user, so SFTP and S3
//! see the same files and an account reaches no bucket it does not own.
//!
//! What a path of a home names ([`home_key`]) and a file's modification time ([`mtime_of`])
//! are decided here for every door; [`process`] makes a path of a home one stored file.

pub mod process;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::keys::ROOT_USER;
use crate::model::codec::now_ms;
use crate::model::records::{ObjectInfo, ObjectMeta, valid_bucket_name};
use crate::{Node, NodeError};

/// account name → its record.
pub(crate) const ACCOUNTS: cairn_store::Table<AccountRecord> = cairn_store::Table::new("accounts");

/// The SSH key algorithms an account's key may have (what OpenSSH's `ssh-keygen` makes).
pub const KEY_ALGORITHMS: [&str; 5] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// The key a path names in a home: `.` and `..` resolved, no leading slash (`""` is the home
/// itself). `..` never climbs out of the home.
pub fn home_key(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// The user metadata holding a file's modification time: Unix seconds, maybe with a fraction
/// (`x-amz-meta-mtime`, as rclone keeps it).
pub const MTIME: &str = "mtime";

/// A file's modification time, Unix seconds: the one kept with it ([`MTIME`]), else the time
/// it was written.
pub fn mtime_of(meta: &ObjectMeta) -> u32 {
    let kept = meta
        .user
        .get(MTIME)
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0 && *t <= f64::from(u32::MAX));
    match kept {
        Some(t) => t as u32,
        None => u32::try_from(meta.last_modified_ms.div_euclid(1000)).unwrap_or(0),
    }
}

/// What happens to an upload that would take an account past its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuotaPolicy {
    /// The upload is refused and nothing is stored.
    #[default]
    Refuse,
    /// The account's oldest files are removed until the upload fits.
    EvictOldest,
}

impl std::str::FromStr for QuotaPolicy {
    type Err = NodeError;

    fn from_str(s: &str) -> Result<Self, NodeError> {
        match s {
            "refuse" => Ok(QuotaPolicy::Refuse),
            "evict-oldest" => Ok(QuotaPolicy::EvictOldest),
            other => Err(NodeError::Unsupported(format!(
                "quota policy {other:?}: say refuse or evict-oldest"
            ))),
        }
    }
}

/// An SSH public key as OpenSSH writes it (`ssh-ed25519 AAAA… comment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKey {
    /// Its algorithm (one of [`KEY_ALGORITHMS`]).
    pub algorithm: String,
    /// The key blob, base64 as OpenSSH writes it.
    pub blob: String,
    /// The comment after it (may be empty).
    pub comment: String,
}

impl SshKey {
    /// Reads one OpenSSH public key line: a known algorithm, then a base64 blob that names the
    /// same algorithm first (RFC 4253 §6.6), then an optional comment.
    pub fn parse(text: &str) -> Result<SshKey, NodeError> {
        let bad = |why: &str| NodeError::Unsupported(format!("not an SSH public key: {why}"));
        let mut fields = text.split_whitespace();
        let (Some(algorithm), Some(blob)) = (fields.next(), fields.next()) else {
            return Err(bad("say `ALGORITHM BASE64 [COMMENT]`, as in a .pub file"));
        };
        if !KEY_ALGORITHMS.contains(&algorithm) {
            return Err(bad(&format!(
                "algorithm {algorithm:?} (one of {})",
                KEY_ALGORITHMS.join(", ")
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .map_err(|_| bad("the key is not base64"))?;
        let named = bytes
            .get(..4)
            .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
            .and_then(|n| bytes.get(4..4 + n));
        if named != Some(algorithm.as_bytes()) {
            return Err(bad("the key blob does not name its algorithm"));
        }
        Ok(SshKey {
            algorithm: algorithm.to_owned(),
            blob: blob.to_owned(),
            comment: fields.collect::<Vec<_>>().join(" "),
        })
    }

    /// The key as one OpenSSH line.
    pub fn to_line(&self) -> String {
        if self.comment.is_empty() {
            format!("{} {}", self.algorithm, self.blob)
        } else {
            format!("{} {} {}", self.algorithm, self.blob, self.comment)
        }
    }
}

/// What is stored about an SFTP account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The keys that may log in as it.
    pub keys: Vec<SshKey>,
    /// Bytes its home may hold (`None`: no limit).
    pub quota: Option<u64>,
    /// What an upload past the quota does.
    pub policy: QuotaPolicy,
    /// Unix milliseconds of creation.
    pub created_ms: i64,
}

/// What an account's home holds against its quota ([`Accounts::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes of the home's current files.
    pub used: u64,
    /// Bytes it may hold (`None`: no limit).
    pub quota: Option<u64>,
}

/// The node's SFTP accounts ([`Node::accounts`]).
#[derive(Debug, Clone, Copy)]
pub struct Accounts<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// SFTP accounts: add, list, remove, quotas, who may log in.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { node: self }
    }
}

impl Accounts<'_> {
    /// Adds `key` to the account `name`, making the account — and its home, the bucket
    /// `name` owned by the user `name` — when it does not exist yet. `quota` and `policy`
    /// replace the account's when given. A bucket of that name owned by someone else stops it
    /// ([`NodeError::BucketAlreadyExists`]).
    pub fn add(
        &self,
        name: &str,
        key: &str,
        quota: Option<u64>,
        policy: Option<QuotaPolicy>,
    ) -> Result<AccountRecord, NodeError> {
        if name == ROOT_USER || !valid_bucket_name(name) {
            return Err(NodeError::Unsupported(format!(
                "account name {name:?}: it names the account's home bucket, so it follows \
                 bucket-name rules (3–63 of a-z, 0-9, '-', '.'), and is not {ROOT_USER:?}"
            )));
        }
        let key = SshKey::parse(key)?;
        self.node.buckets().create(name, name)?;
        self.node.store().update(|txn| {
            let mut record = txn.get(ACCOUNTS, name)?.unwrap_or(AccountRecord {
                keys: Vec::new(),
                quota: None,
                policy: QuotaPolicy::default(),
                created_ms: now_ms(),
            });
            if !record.keys.iter().any(|k| k.blob == key.blob) {
                record.keys.push(key);
            }
            if quota.is_some() {
                record.quota = quota;
            }
            if let Some(policy) = policy {
                record.policy = policy;
            }
            txn.put(ACCOUNTS, name, &record)?;
            Ok(record)
        })
    }

    /// An account's record.
    pub fn get(&self, name: &str) -> Result<AccountRecord, NodeError> {
        self.node
            .store()
            .read(ACCOUNTS, name)?
            .ok_or_else(|| NodeError::NoSuchAccount(name.to_owned()))
    }

    /// Every account.
    pub fn list(&self) -> Result<Vec<(String, AccountRecord)>, NodeError> {
        Ok(self.node.store().list(ACCOUNTS)?)
    }

    /// Removes an account: its keys no longer log in. Its home bucket and files stay (they
    /// are the user's S3 data; delete the bucket to drop them).
    pub fn remove(&self, name: &str) -> Result<(), NodeError> {
        let existed = self
            .node
            .store()
            .update(|txn| Ok::<_, NodeError>(txn.delete(ACCOUNTS, name)?))?;
        if existed {
            Ok(())
        } else {
            Err(NodeError::NoSuchAccount(name.to_owned()))
        }
    }

    /// Sets an account's quota (`None`: no limit) and, when given, its policy.
    pub fn set_quota(
        &self,
        name: &str,
        quota: Option<u64>,
        policy: Option<QuotaPolicy>,
    ) -> Result<AccountRecord, NodeError> {
        self.node.store().update(|txn| {
            let mut record = txn
                .get(ACCOUNTS, name)?
                .ok_or_else(|| NodeError::NoSuchAccount(name.to_owned()))?;
            record.quota = quota;
            if let Some(policy) = policy {
                record.policy = policy;
            }
            txn.put(ACCOUNTS, name, &record)?;
            Ok(record)
        })
    }

    /// The current files of the account's home, all of them.
    fn home(&self, name: &str) -> Result<Vec<ObjectInfo>, NodeError> {
        self.node.objects().list_all(name, "")
    }

    /// Bytes the account's home holds (its current files), and its quota.
    pub fn usage(&self, name: &str) -> Result<Usage, NodeError> {
        let record = self.get(name)?;
        let used = self.home(name)?.iter().map(|o| o.meta.size).sum();
        Ok(Usage {
            used,
            quota: record.quota,
        })
    }

    /// Makes room in the account's home for `size` bytes stored at `key` (replacing the file
    /// there, if any), as its quota policy says: `refuse` fails with
    /// [`NodeError::QuotaExceeded`] and changes nothing; `evict-oldest` deletes the oldest
    /// files (folder markers aside; each a normal delete, so history keeps it until
    /// retention) until the new file fits, and returns their keys. A file larger than the
    /// whole quota is refused under either policy. Two sessions storing at once may both pass
    /// the check (the quota is a budget, not a reservation).
    pub fn make_room(&self, name: &str, key: &str, size: u64) -> Result<Vec<String>, NodeError> {
        let record = self.get(name)?;
        let Some(quota) = record.quota else {
            return Ok(Vec::new());
        };
        let exceeded = |used: u64| NodeError::QuotaExceeded {
            account: name.to_owned(),
            used,
            quota,
        };
        let mut others = self.home(name)?;
        others.retain(|o| o.key != key);
        let mut used: u64 = others.iter().map(|o| o.meta.size).sum();
        if size > quota || (used + size > quota && record.policy == QuotaPolicy::Refuse) {
            return Err(exceeded(used + size));
        }
        others.sort_by_key(|o| o.meta.last_modified_ms);
        let mut evicted = Vec::new();
        for old in others {
            if used + size <= quota {
                break;
            }
            if old.meta.size == 0 {
                continue;
            }
            self.node.objects().delete(name, &old.key, None)?;
            tracing::info!(
                account = name,
                key = old.key,
                "quota: evicted the oldest file"
            );
            used -= old.meta.size;
            evicted.push(old.key);
        }
        Ok(evicted)
    }

    /// Whether the key `algorithm` + `blob` (base64, as OpenSSH writes it) may log in as
    /// `name`: the account exists and holds that key. Anything else — no such account, an
    /// unreadable record — is a no.
    pub fn may_log_in(&self, name: &str, algorithm: &str, blob: &str) -> bool {
        match self.node.store().read(ACCOUNTS, name) {
            Ok(Some(record)) => record
                .keys
                .iter()
                .any(|k| k.algorithm == algorithm && k.blob == blob),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(account = name, "account record unreadable: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNz8ojSUFVlIb96TSb7z/FgVsg2B8E/ewR1ROwqEgY0 alice@laptop";

    #[test]
    fn paths_are_keys_in_the_home() {
        for (path, key) in [
            ("/", ""),
            (".", ""),
            ("", ""),
            ("/a/b.txt", "a/b.txt"),
            ("a//b/./c", "a/b/c"),
            ("/a/../b", "b"),
            ("/../../etc/passwd", "etc/passwd"),
        ] {
            assert_eq!(home_key(path), key, "{path}");
        }
    }

    #[test]
    fn a_kept_mtime_is_shown_else_the_write_time() {
        let mut meta = ObjectMeta {
            last_modified_ms: 1_700_000_000_500,
            ..Default::default()
        };
        assert_eq!(mtime_of(&meta), 1_700_000_000);
        for (kept, shown) in [
            ("1500000000", 1_500_000_000),
            ("1500000000.75", 1_500_000_000),
            ("junk", 1_700_000_000),
            ("-5", 1_700_000_000),
            ("1e20", 1_700_000_000),
            ("NaN", 1_700_000_000),
        ] {
            meta.user.insert(MTIME.to_owned(), kept.to_owned());
            assert_eq!(mtime_of(&meta), shown, "{kept}");
        }
    }

    #[test]
    fn keys_are_read_as_openssh_writes_them() {
        let key = SshKey::parse(ED25519).unwrap();
        assert_eq!(
            (key.algorithm.as_str(), key.comment.as_str()),
            ("ssh-ed25519", "alice@laptop")
        );
        assert_eq!(key.to_line(), ED25519);
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-dss AAAAB3NzaC1kc3M= x",
            "ssh-ed25519 not-base64!",
            // an RSA blob under the ed25519 name
            "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFMlyz7OUNWli9514fZVlh",
        ] {
            assert!(SshKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_account_is_a_user_with_a_home_bucket_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let accounts = node.accounts();
        let rec = accounts.add("alice", ED25519, Some(1 << 30), None).unwrap();
        assert_eq!((rec.keys.len(), rec.quota), (1, Some(1 << 30)));
        // Its home is a bucket the user owns.
        assert_eq!(node.buckets().get("alice").unwrap().owner, "alice");
        let blob = &rec.keys[0].blob;
        assert!(accounts.may_log_in("alice", "ssh-ed25519", blob));
        assert!(!accounts.may_log_in("alice", "ssh-rsa", blob));
        assert!(!accounts.may_log_in("bob", "ssh-ed25519", blob));
        // The same key again is not a second key; the quota stays unless given.
        let again = accounts.add("alice", ED25519, None, None).unwrap();
        assert_eq!((again.keys.len(), again.quota), (1, Some(1 << 30)));
        let set = accounts
            .set_quota("alice", None, Some(QuotaPolicy::EvictOldest))
            .unwrap();
        assert_eq!((set.quota, set.policy), (None, QuotaPolicy::EvictOldest));
        // Names follow bucket rules; a bucket someone else owns is not taken.
        assert!(accounts.add("Alice", ED25519, None, None).is_err());
        assert!(accounts.add("root", ED25519, None, None).is_err());
        node.buckets().create("taken", "carol").unwrap();
        assert!(matches!(
            accounts.add("taken", ED25519, None, None),
            Err(NodeError::BucketAlreadyExists(_))
        ));
        accounts.remove("alice").unwrap();
        assert!(!accounts.may_log_in("alice", "ssh-ed25519", blob));
        assert!(matches!(
            accounts.remove("alice"),
            Err(NodeError::NoSuchAccount(_))
        ));
        // The home and its files stay.
        assert!(node.buckets().get("alice").is_ok());
    }

    #[tokio::test]
    async fn quotas_refuse_or_evict_the_oldest() {
        use crate::CidVersion;
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let accounts = node.accounts();
        accounts.add("carol", ED25519, Some(1000), None).unwrap();
        for (key, len) in [("a", 300usize), ("b", 300), ("dir/", 0)] {
            let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(vec![
                    7u8;
                    len
                ]))]);
            let staged = node
                .objects()
                .stage(Some("carol"), body, CidVersion::V1)
                .await
                .unwrap();
            node.objects()
                .commit(staged, "carol", key, Default::default())
                .unwrap();
        }
        assert_eq!(
            accounts.usage("carol").unwrap(),
            Usage {
                used: 600,
                quota: Some(1000)
            }
        );
        // Fits; replacing `a` counts its new size only.
        assert!(accounts.make_room("carol", "c", 400).unwrap().is_empty());
        assert!(accounts.make_room("carol", "a", 700).unwrap().is_empty());
        // Refused: nothing changes.
        assert!(matches!(
            accounts.make_room("carol", "c", 500),
            Err(NodeError::QuotaExceeded { used: 1100, .. })
        ));
        assert_eq!(accounts.usage("carol").unwrap().used, 600);
        // Evicting: the oldest goes (not the folder marker), the newest stays.
        accounts
            .set_quota("carol", Some(1000), Some(QuotaPolicy::EvictOldest))
            .unwrap();
        assert_eq!(accounts.make_room("carol", "c", 500).unwrap(), ["a"]);
        assert!(node.objects().get("carol", "b").is_ok());
        assert!(node.objects().get("carol", "dir/").is_ok());
        // Larger than the whole quota: refused under either policy.
        assert!(accounts.make_room("carol", "d", 1001).is_err());
    }
}
