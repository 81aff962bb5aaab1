//! Which cluster a node belongs to: `cluster.toml` in the data folder (0600) holds the
//! cluster secret members prove to each other (`cairn_crypt::membership`) and the cluster
//! admin's public key (bucket takeovers it signs are accepted); `admin_key`, its secret half,
//! only where the operator keeps it (the first node, or one given an `--admin` invite).
//!
//! A node started without one founds a cluster of one: a new secret and admin key. Another
//! node joins with a token from `cairn cluster invite` (`cairn serve --join TOKEN`): the
//! secret, the admin's public key (and secret key with `--admin`) and the inviting node's p2p
//! addresses, as `cairn-invite-` + base64url(JSON). The token is a secret: whoever holds it is
//! a member.

use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use cairn_crypt::ClusterSecret;
use serde::{Deserialize, Serialize};

/// The file in the data folder.
pub const CLUSTER_FILE: &str = "cluster.toml";
const TOKEN_PREFIX: &str = "cairn-invite-";

/// `cluster.toml`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The cluster secret, 64 hex digits.
    pub secret: String,
    /// The cluster admin's ed25519 public key, 64 hex digits.
    pub admin: String,
    /// The admin's secret key (64 hex digits), where takeovers may be signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key: Option<String>,
}

impl std::fmt::Debug for ClusterFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterFile")
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// What an invite carries.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    v: u8,
    #[serde(flatten)]
    cluster: ClusterFile,
    addrs: Vec<String>,
}

impl ClusterFile {
    /// A new cluster: a fresh secret and admin key.
    pub fn found() -> Result<ClusterFile> {
        let admin =
            cairn_node::identity::Identity::from_seed(*cairn_crypt::Key::random()?.as_bytes());
        Ok(ClusterFile {
            secret: ClusterSecret::generate()?.to_hex(),
            admin: hex::encode(admin.public_key()),
            admin_key: Some(hex::encode(admin.secret_seed())),
        })
    }

    /// The secret.
    pub fn secret(&self) -> Result<ClusterSecret> {
        ClusterSecret::from_hex(&self.secret).context("cluster.toml: secret")
    }

    /// The admin's public key.
    pub fn admin_public(&self) -> Result<[u8; 32]> {
        hex32(&self.admin).context("cluster.toml: admin")
    }

    /// The admin's signing key, where this node holds it.
    pub fn admin_signer(&self) -> Result<Option<cairn_node::identity::Identity>> {
        let Some(key) = &self.admin_key else {
            return Ok(None);
        };
        let id = cairn_node::identity::Identity::from_seed(
            hex32(key).context("cluster.toml: admin_key")?,
        );
        if id.public_key() != self.admin_public()? {
            bail!("cluster.toml: admin_key is not the secret half of admin");
        }
        Ok(Some(id))
    }

    fn check(&self) -> Result<()> {
        self.secret()?;
        self.admin_signer()?;
        Ok(())
    }
}

fn hex32(text: &str) -> Result<[u8; 32]> {
    hex::decode(text.trim())?
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected 64 hex digits"))
}

/// The node's cluster: `join`'s (written to `cluster.toml`), else the one in the data folder,
/// else a new one. Returns it, whether it is new, and the addresses to dial (the invite's).
pub fn load_or_found(data: &Path, join: Option<&str>) -> Result<(ClusterFile, bool, Vec<String>)> {
    let path = data.join(CLUSTER_FILE);
    let current = load(data)?;
    let (file, addrs, new) = match (join, current) {
        (Some(token), current) => {
            let invite = read_token(token)?;
            if let Some(old) = current
                && old.secret != invite.cluster.secret
            {
                let old_id = old.secret()?.id();
                tracing::warn!(
                    from = old_id,
                    to = invite.cluster.secret()?.id(),
                    "leaving cluster for the one of the invite"
                );
            }
            (invite.cluster, invite.addrs, true)
        }
        (None, Some(file)) => return Ok((file, false, Vec::new())),
        (None, None) => (ClusterFile::found()?, Vec::new(), true),
    };
    cairn_node::identity::write_private(&path, toml::to_string(&file)?.as_bytes())?;
    Ok((file, new, addrs))
}

/// The cluster in `data`, if the node has one yet.
pub fn load(data: &Path) -> Result<Option<ClusterFile>> {
    let path = data.join(CLUSTER_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let file: ClusterFile =
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            file.check()
                .with_context(|| format!("checking {}", path.display()))?;
            Ok(Some(file))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The cluster admin a node is built with: its public key, and its signing key where this
/// node holds it.
pub fn admin(
    cluster: &ClusterFile,
) -> Result<(Option<[u8; 32]>, Option<cairn_node::identity::Identity>)> {
    Ok((Some(cluster.admin_public()?), cluster.admin_signer()?))
}

/// `cairn cluster invite`: the token for the cluster in `data`, naming `addrs`.
pub fn invite(data: &Path, admin: bool, addrs: Vec<String>) -> Result<String> {
    let path = data.join(CLUSTER_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (a node makes it on its first `cairn serve`)",
            path.display()
        )
    })?;
    let mut cluster: ClusterFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    cluster.check()?;
    if admin && cluster.admin_key.is_none() {
        bail!(
            "this node does not hold the cluster admin key: invite with --admin from one that does"
        );
    }
    if !admin {
        cluster.admin_key = None;
    }
    let json = serde_json::to_vec(&Invite {
        v: 1,
        cluster,
        addrs,
    })?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    ))
}

fn read_token(token: &str) -> Result<Invite> {
    let bad =
        "not a cluster invite (it starts with cairn-invite-; make one with `cairn cluster invite`)";
    let body = token.trim().strip_prefix(TOKEN_PREFIX).context(bad)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .context(bad)?;
    let invite: Invite = serde_json::from_slice(&json).context(bad)?;
    if invite.v != 1 {
        bail!("a version {} invite: this cairn reads version 1", invite.v);
    }
    invite.cluster.check()?;
    Ok(invite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_founds_a_cluster_and_another_joins_it_by_invite() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (founded, new, addrs) = load_or_found(a.path(), None).unwrap();
        assert!(new && addrs.is_empty() && founded.admin_signer().unwrap().is_some());
        let (again, new, _) = load_or_found(a.path(), None).unwrap();
        assert!(!new);
        assert_eq!(again.secret, founded.secret, "kept across restarts");

        let token = invite(a.path(), false, vec!["/ip4/127.0.0.1/tcp/1".into()]).unwrap();
        assert!(token.starts_with("cairn-invite-"), "{token}");
        let (joined, _, addrs) = load_or_found(b.path(), Some(&token)).unwrap();
        assert_eq!(
            joined.secret().unwrap().id(),
            founded.secret().unwrap().id()
        );
        assert_eq!(joined.admin, founded.admin);
        assert!(
            joined.admin_key.is_none(),
            "a plain invite carries no admin key"
        );
        assert_eq!(addrs, vec!["/ip4/127.0.0.1/tcp/1".to_owned()]);
        // b remembers it.
        assert_eq!(
            load_or_found(b.path(), None).unwrap().0.secret,
            founded.secret
        );
        assert!(
            invite(b.path(), true, vec![]).is_err(),
            "b holds no admin key"
        );
        let admin = invite(a.path(), true, vec![]).unwrap();
        let c = tempfile::tempdir().unwrap();
        assert!(
            load_or_found(c.path(), Some(&admin))
                .unwrap()
                .0
                .admin_signer()
                .unwrap()
                .is_some()
        );

        assert!(load_or_found(c.path(), Some("cairn-invite-!!")).is_err());
        assert!(load_or_found(c.path(), Some("hello")).is_err());
        // An admin key that does not match the admin is refused.
        let mut bad = founded.clone();
        bad.admin_key = Some(hex::encode([1u8; 32]));
        assert!(bad.check().is_err());
        assert!(!format!("{founded:?}").contains(&founded.secret));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.path().join(CLUSTER_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
