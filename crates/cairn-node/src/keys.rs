//! Users' access keys for the S3 API. Each key belongs to a user (a name); buckets are owned
//! by users. The root key pair of `serve` is not stored here (it comes from the environment or
//! the data folder's credentials file) and belongs to the user `root`.

use serde::{Deserialize, Serialize};

use crate::model::codec::now_ms;
use crate::{Node, NodeError};

use crate::model::codec::random_string;

/// The user the root credentials belong to.
pub const ROOT_USER: &str = "root";

/// What is stored about an access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Secret key.
    pub secret: String,
    /// The user it belongs to.
    pub user: String,
    /// Unix milliseconds of creation.
    pub created_ms: i64,
}

/// access key → its record (secret, user).
pub(crate) const KEYS: cairn_store::Table<KeyRecord> = cairn_store::Table::new("keys");

/// A new random key pair: 20 upper-case letters/digits and 40 base64-alphabet characters, the
/// shapes AWS uses.
pub fn new_key_pair() -> Result<(String, String), NodeError> {
    Ok((
        random_string(20, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")?,
        random_string(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        )?,
    ))
}

/// The node's S3 access keys, as a capability ([`Node::keys`]).
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    pub(crate) node: &'a Node,
}

impl Node {
    /// Users' S3 access keys.
    pub fn keys(&self) -> Keys<'_> {
        Keys { node: self }
    }
}

impl Keys<'_> {
    /// Creates a key pair for `user`; returns (access key, secret key).
    pub fn create(&self, user: &str) -> Result<(String, String), NodeError> {
        if user.is_empty() || user == ROOT_USER {
            return Err(NodeError::Unsupported(format!(
                "invalid user name {user:?}"
            )));
        }
        let (access, secret) = new_key_pair()?;
        let record = KeyRecord {
            secret: secret.clone(),
            user: user.to_owned(),
            created_ms: now_ms(),
        };
        self.node
            .store()
            .update(|txn| txn.put(KEYS, &access, &record))?;
        Ok((access, secret))
    }

    /// A stored key's record.
    pub fn get(&self, access: &str) -> Result<Option<KeyRecord>, NodeError> {
        Ok(self.node.store().read(KEYS, access)?)
    }

    /// Every stored key.
    pub fn list(&self) -> Result<Vec<(String, KeyRecord)>, NodeError> {
        Ok(self.node.store().list(KEYS)?)
    }

    /// Deletes a key; returns whether it existed.
    pub fn delete(&self, access: &str) -> Result<bool, NodeError> {
        self.node
            .store()
            .update(|txn| Ok::<_, NodeError>(txn.delete(KEYS, access)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_lifecycle() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(dir.path()).unwrap();
        let (access, secret) = node.keys().create("alice").unwrap();
        assert_eq!(access.len(), 20);
        assert_eq!(secret.len(), 40);
        let rec = node.keys().get(&access).unwrap().unwrap();
        assert_eq!(
            (rec.user.as_str(), rec.secret.as_str()),
            ("alice", secret.as_str())
        );
        assert_eq!(node.keys().list().unwrap().len(), 1);
        assert!(node.keys().create("root").is_err());
        assert!(node.keys().delete(&access).unwrap());
        assert!(node.keys().get(&access).unwrap().is_none());
    }

    #[test]
    fn random_strings_use_the_whole_alphabet_evenly() {
        let s = random_string(36_000, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789").unwrap();
        assert_eq!(s.len(), 36_000);
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".chars() {
            let n = s.chars().filter(|x| *x == c).count();
            assert!((700..1300).contains(&n), "{c}: {n}");
        }
        assert_ne!(
            random_string(32, b"0123456789abcdef").unwrap(),
            random_string(32, b"0123456789abcdef").unwrap()
        );
    }
}
