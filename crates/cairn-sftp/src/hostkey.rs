//! The SFTP server's host key: ed25519, made on first start and kept in the data folder
//! (`sftp_host_ed25519`, OpenSSH format, mode 0600), so clients' `known_hosts` entries stay
//! valid across restarts. Its SHA-256 fingerprint is what `ssh-keygen -lf` prints.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};

use crate::SftpError;

/// The host key's file name in the data folder.
pub const FILE: &str = "sftp_host_ed25519";

/// The host key in `dir` (made when there is none), whether it was made now, and its
/// fingerprint (`SHA256:…`).
pub fn load_or_create(dir: &Path) -> Result<(PrivateKey, bool, String), SftpError> {
    let path = dir.join(FILE);
    let fail = |reason: String| SftpError::HostKey {
        path: path.clone(),
        reason,
    };
    let (key, made) = match std::fs::read_to_string(&path) {
        Ok(text) => (
            PrivateKey::from_openssh(text).map_err(|e| fail(e.to_string()))?,
            false,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| fail(e.to_string()))?;
            let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
            let text = key
                .to_openssh(LineEnding::LF)
                .map_err(|e| fail(e.to_string()))?;
            // Written whole under a temporary name, then renamed: a crash leaves either no
            // key (made again) or the whole key.
            let tmp = dir.join(format!("{FILE}.tmp"));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| fail(e.to_string()))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(e.to_string()))?;
            std::fs::rename(&tmp, &path).map_err(|e| fail(e.to_string()))?;
            (key, true)
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
    Ok((key, made, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (first, made, print) = load_or_create(dir.path()).unwrap();
        assert!(made);
        assert!(print.starts_with("SHA256:"), "{print}");
        let (again, made, print2) = load_or_create(dir.path()).unwrap();
        assert!(!made);
        assert_eq!(print, print2);
        assert_eq!(first.public_key(), again.public_key());
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // A damaged key file stops the start instead of being replaced.
        std::fs::write(dir.path().join(FILE), "not a key").unwrap();
        assert!(load_or_create(dir.path()).is_err());
    }
}
