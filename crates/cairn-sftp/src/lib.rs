//! Cairn's SFTP door (issue 20): each account's home folder over SSH, kept as the objects of
//! the bucket the account owns, so what `sftp`, `scp` or `restic -r sftp:` write is what S3
//! lists and the gateway serves.
//!
//! * [`hostkey`] — the server's persistent ed25519 host key and its fingerprint.
//! * [`ssh`] — the SSH side (russh): public-key logins asked of the node's accounts
//!   ([`cairn_node::accounts::Accounts::may_log_in`]); password and keyboard-interactive
//!   logins, shells, commands, terminals and port forwarding refused with a message; the
//!   `sftp` subsystem handed to [`fs`].
//! * [`fs`] — the SFTP protocol (russh-sftp) over the account's home bucket: paths are keys,
//!   directories are `dir/` markers and prefixes, reads are ranged object reads, writes are
//!   spooled to a file in the data folder and stored as one object PUT when the file is
//!   closed (a dropped connection leaves nothing half-visible).
//!
//! The door decides nothing itself: logins are the accounts' answer, every file operation is
//! asked of [`cairn_node::Access::authorize`] as the account's user, and stores through the
//! node's object operations.

#![warn(missing_docs)]

pub mod fs;
pub mod hostkey;
mod reader;
pub mod ssh;
mod status;

use std::sync::Arc;

use cairn_dag::CidVersion;
use cairn_node::Node;

/// What the SFTP door fails with.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    /// The SSH layer failed (a closed connection, a protocol error).
    #[error("ssh: {0}")]
    Ssh(#[from] russh::Error),
    /// The host key could not be read, made or kept.
    #[error("host key {path}: {reason}")]
    HostKey {
        /// Its file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Reading or writing a local file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// How the SFTP door runs.
#[derive(Debug, Clone)]
pub struct SftpConfig {
    /// CID version of the files it stores (the node's setting, as S3's PUTs use).
    pub cid_version: CidVersion,
    /// Connections served at once; more wait for the accept loop.
    pub max_connections: usize,
}

impl Default for SftpConfig {
    fn default() -> Self {
        SftpConfig {
            cid_version: CidVersion::V0,
            max_connections: 256,
        }
    }
}

/// Bytes of a session's requests read off the SSH channel and not yet handled. russh's
/// session loop waits for room in a channel's message buffer (100 messages) before it reads
/// on — window adjustments included — so the SFTP handler must never leave its channel full
/// while it waits for window to answer: restic's `check --read-data` (pipelined reads) hung
/// for good so. A pump moves each session's requests from the channel into this buffer as
/// they come; clients keep far less in flight (OpenSSH 64 requests, restic's and rclone's
/// libraries 64 per transfer, each at most 32 KiB of data).
pub const INBOX: usize = 16 << 20;

/// Session channels one connection may open (sftp and scp use one).
pub const MAX_SESSIONS: usize = 2;

/// Serves SFTP on `listener` until `stop` turns true: each connection is an SSH session
/// ([`ssh::Session`]) with the host key `key`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    node: Node,
    key: russh::keys::PrivateKey,
    config: SftpConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let ssh_config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-cairn_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: russh::MethodSet::from(&[russh::MethodKind::PublicKey][..]),
        auth_rejection_time: std::time::Duration::from_millis(500),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        inactivity_timeout: Some(std::time::Duration::from_secs(3600)),
        keys: vec![key],
        ..Default::default()
    });
    fs::clear_spools(node.repo().data_dir());
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("sftp accept: {e}");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let session = ssh::Session::new(node.clone(), config.clone(), peer);
        let ssh_config = ssh_config.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match russh::server::run_stream(ssh_config, stream, session).await {
                Ok(running) => {
                    if let Err(e) = running.await {
                        tracing::debug!(%peer, "ssh session ended: {e}");
                    }
                }
                Err(e) => tracing::debug!(%peer, "ssh handshake failed: {e}"),
            }
        });
    }
}
