//! The node's ed25519 identity: a 32-byte secret key in `identity.key` in the data folder
//! (created on first use, mode 0600, written temp → fsync → rename). It signs bucket heads now
//! and is the same key libp2p will use for the node's peer id.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::{NodeError, io_err};

/// File name of the secret key in the data folder.
pub const IDENTITY_FILE: &str = "identity.key";

/// The node's signing key.
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("public", &hex::encode(self.public_key()))
            .finish()
    }
}

impl Identity {
    /// Loads the key from `dir`, creating it if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Identity, NodeError> {
        let path = dir.join(IDENTITY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    NodeError::Unsupported(format!(
                        "{} must hold a 32-byte ed25519 secret key, not {} bytes",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(Identity::from_seed(seed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| NodeError::Unsupported(format!("no randomness: {e}")))?;
                write_private(&path, &seed)?;
                Ok(Identity::from_seed(seed))
            }
            Err(e) => Err(io_err(format!("read {}", path.display()))(e)),
        }
    }

    /// The identity with this secret key.
    pub fn from_seed(seed: [u8; 32]) -> Identity {
        Identity {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The secret key's 32 bytes (what the network layer turns into the libp2p keypair).
    pub fn secret_seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The libp2p peer id of this key (base58), as the network layer derives it ([`peer_id_of`]).
    /// What `cairn id` prints for a node that is not running.
    pub fn peer_id(&self) -> String {
        let bytes = peer_id_of(&self.public_key());
        let text =
            cairn_dag::cid::multibase::encode(cairn_dag::cid::multibase::Base::Base58Btc, bytes);
        text[1..].to_owned() // without the multibase prefix `z`
    }
}

/// The libp2p peer id (bytes) of an ed25519 public key: the identity multihash of its
/// protobuf encoding (`KeyType = Ed25519`, `Data = key`), as the libp2p spec defines it.
pub fn peer_id_of(public_key: &[u8]) -> Vec<u8> {
    let mut protobuf = vec![0x08, 0x01, 0x12, public_key.len() as u8];
    protobuf.extend_from_slice(public_key);
    let mut id = vec![0x00, protobuf.len() as u8];
    id.extend_from_slice(&protobuf);
    id
}

/// Writes a secret file: mode 0600, temp → fsync → rename, so it is whole or absent.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(&tmp)
        .map_err(io_err(format!("create {}", tmp.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("rename to {}", path.display())))
}

/// Whether `signature` is `public`'s signature of `message`.
pub fn verify(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(public), Ok(signature)) = (
        <[u8; 32]>::try_from(public),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    VerifyingKey::from_bytes(&public)
        .map(|key| {
            key.verify(message, &Signature::from_bytes(&signature))
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded_and_signatures_verify() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::load_or_create(dir.path()).unwrap();
        let b = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(IDENTITY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sig = a.sign(b"head");
        assert!(verify(&a.public_key(), b"head", &sig));
        assert!(!verify(&a.public_key(), b"heat", &sig));
        assert!(!verify(&a.public_key()[..31], b"head", &sig));
        std::fs::write(dir.path().join(IDENTITY_FILE), b"short").unwrap();
        assert!(Identity::load_or_create(dir.path()).is_err());
    }
}
