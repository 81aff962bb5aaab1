//! User keys and the CLI's own config: `cairn user create|show`, key files (the secret half,
//! 0600, in the CLI config folder or where `--out` says — never in a data folder, which
//! peers and backups see), and `cli.toml` (`node`, `token`, `identity` defaults for a remote
//! node).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cairn_crypt::identity::Identity;
use serde::Deserialize;

/// `$XDG_CONFIG_HOME/cairn`, else `$HOME/.config/cairn`.
pub fn config_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("cairn"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither XDG_CONFIG_HOME nor HOME is set: pass a key file path")?;
    Ok(PathBuf::from(home).join(".config").join("cairn"))
}

/// A key file's path: `key` itself when it names a file or has a `/`, else
/// `users/KEY.key` in the config folder.
pub fn key_path(key: &str) -> Result<PathBuf> {
    let p = Path::new(key);
    if p.exists() || key.contains('/') {
        return Ok(p.to_path_buf());
    }
    Ok(config_dir()?.join("users").join(format!("{key}.key")))
}

/// Reads a key file (a path or a name).
pub fn load(key: &Path) -> Result<Identity> {
    let path = key_path(&key.to_string_lossy())?;
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Identity::from_text(text.trim())
        .with_context(|| format!("{} is not a key file", path.display()))
}

/// `cairn user create NAME [--out FILE]`.
pub fn create(name: &str, out: Option<&Path>) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        bail!("a key name is a plain file name, not {name:?}");
    }
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => config_dir()?.join("users").join(format!("{name}.key")),
    };
    if path.exists() {
        bail!(
            "{} exists: a key is never overwritten (remove it first if you mean it)",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let id = write_new(&path)?;
    eprintln!("cairn: secret key written to {} (0600)", path.display());
    println!("{}", id.public());
    Ok(())
}

/// A new keypair, its secret written to `path` (0600, temp → fsync → rename).
fn write_new(path: &Path) -> Result<Identity> {
    let id = Identity::generate()?;
    let mut text = id.to_text();
    text.push('\n');
    cairn_node::identity::write_private(path, text.as_bytes())?;
    Ok(id)
}

/// `cairn user show KEY`.
pub fn show(key: &str) -> Result<()> {
    println!("{}", load(Path::new(key))?.public());
    Ok(())
}

/// `cli.toml` in the config folder: defaults for `--node`, `--token`, `--identity`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliConfig {
    /// The node's URL.
    pub node: Option<String>,
    /// Its secret or a login token.
    pub token: Option<String>,
    /// A key file to log in with.
    pub identity: Option<PathBuf>,
}

impl CliConfig {
    /// The config file's contents; none when it does not exist.
    pub fn load() -> Result<CliConfig> {
        let Ok(dir) = config_dir() else {
            return Ok(CliConfig::default());
        };
        let path = dir.join("cli.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("{}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CliConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// `--expires 7d` as Unix milliseconds from now.
pub fn expiry_ms(expires: Option<&str>) -> Result<Option<i64>> {
    let Some(text) = expires else {
        return Ok(None);
    };
    let d = crate::daemon::config::parse_duration("--expires", text)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(Some((now + d).as_millis() as i64))
}

/// The user key a node acts as, and where it is: `--identity`/`CAIRN_IDENTITY`, else
/// `users/node-<peer id>.key` in the CLI config folder — one per node, so two nodes on one
/// host never share a key by default — made (with `create`) on first use. A node that acted
/// as the old shared `users/node.key` (a store with buckets or pins, and no key of its own
/// yet) keeps it: it is copied to its own name. `None` (encryption unavailable) when there is
/// none.
pub fn node_key(
    given: Option<&Path>,
    node: &cairn_node::Node,
    create: bool,
) -> Result<Option<(Identity, PathBuf)>> {
    if let Some(p) = given {
        return Ok(Some((load(p)?, key_path(&p.to_string_lossy())?)));
    }
    let Ok(dir) = config_dir() else {
        return Ok(None);
    };
    let peer = node.identity()?.peer_id();
    let users = dir.join("users");
    let path = users.join(format!("node-{peer}.key"));
    let legacy = users.join("node.key");
    if !path.exists() && legacy.exists() && !node.repo().is_empty()? {
        let text =
            std::fs::read(&legacy).with_context(|| format!("reading {}", legacy.display()))?;
        cairn_node::identity::write_private(&path, &text)?;
        tracing::warn!(
            from = %legacy.display(),
            to = %path.display(),
            "this node acted as the shared user key; it now has its own copy"
        );
    }
    if !path.exists() {
        if !create {
            return Ok(None);
        }
        std::fs::create_dir_all(&users).with_context(|| format!("creating {}", users.display()))?;
        write_new(&path)?;
        tracing::info!(path = %path.display(), "made this node's user key");
    }
    Ok(Some((load(&path)?, path)))
}
