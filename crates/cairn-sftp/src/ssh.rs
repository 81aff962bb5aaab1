//! One SSH connection (russh's server [`Handler`](russh::server::Handler)): a public key logs
//! in as an account when the node's accounts hold it for that name; the only thing a session
//! may then open is the `sftp` subsystem. Password and keyboard-interactive logins are refused
//! (only `publickey` is offered); a shell, a command, a terminal, X11 or a port forward is
//! refused, and a shell or a command is told why on its standard error, with exit status 1.

use std::collections::HashMap;
use std::net::SocketAddr;

use cairn_node::Node;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session as SshSession};
use russh::{Channel, ChannelId};

use crate::{SftpConfig, SftpError};

/// What a refused shell or command is told.
pub const SFTP_ONLY: &str = "This Cairn server speaks SFTP only: use sftp, scp or an SFTP client; \
no shell, commands or forwarding.\r\n";

/// One SSH connection's state.
pub struct Session {
    node: Node,
    config: SftpConfig,
    peer: SocketAddr,
    /// The account, once a key of it logged in.
    account: Option<String>,
    /// Session channels opened and not yet given to a subsystem.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Session channels opened so far ([`crate::MAX_SESSIONS`] at most).
    sessions: usize,
}

impl Session {
    /// A connection from `peer`, nobody logged in yet.
    pub fn new(node: Node, config: SftpConfig, peer: SocketAddr) -> Session {
        Session {
            node,
            config,
            peer,
            account: None,
            channels: HashMap::new(),
            sessions: 0,
        }
    }

    /// Whether `key` may log in as `user` (the node's accounts decide).
    fn known(&self, user: &str, key: &russh::keys::PublicKey) -> bool {
        let Ok(line) = key.to_openssh() else {
            return false;
        };
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next()) {
            (Some(algorithm), Some(blob)) => self.node.accounts().may_log_in(user, algorithm, blob),
            _ => false,
        }
    }

    /// Refuses a request on a session channel, telling the client why: the request is taken
    /// only so the message reaches the client's standard error (a bare failure shows as
    /// "exec request failed"), then the channel ends with exit status 1.
    fn refuse(&mut self, channel: ChannelId, session: &mut SshSession) -> Result<(), SftpError> {
        session.channel_success(channel)?;
        session.extended_data(channel, 1, SFTP_ONLY.as_bytes().to_vec())?;
        session.exit_status_request(channel, 1)?;
        session.eof(channel)?;
        session.close(channel)?;
        Ok(())
    }
}

impl russh::server::Handler for Session {
    type Error = SftpError;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, SftpError> {
        Ok(if self.known(user, offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, SftpError> {
        if self.known(user, key.public_key) {
            tracing::info!(account = user, peer = %self.peer, "sftp login");
            self.account = Some(user.to_owned());
            Ok(Auth::Accept)
        } else {
            tracing::info!(account = user, peer = %self.peer, "sftp login refused: key not on the account");
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut SshSession,
    ) -> Result<(), SftpError> {
        self.sessions += 1;
        if self.sessions > crate::MAX_SESSIONS {
            tracing::info!(peer = %self.peer, "sftp: too many session channels");
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut SshSession,
    ) -> Result<(), SftpError> {
        let (Some(account), "sftp") = (self.account.clone(), name) else {
            return self.refuse(channel, session);
        };
        let Some(open) = self.channels.remove(&channel) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        let fs = crate::fs::Home::new(self.node.clone(), account, self.config.clone());
        // Requests are pumped off the channel into a buffer of their own ([`crate::INBOX`]),
        // so russh's session loop never waits on a handler that waits on it; answers go
        // straight back.
        let (mut from_client, to_client) = tokio::io::split(open.into_stream());
        let (mut inbox, requests) = tokio::io::duplex(crate::INBOX);
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_client, &mut inbox).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut inbox).await;
        });
        russh_sftp::server::run(tokio::io::join(requests, to_client), fs).await;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut SshSession,
    ) -> Result<(), SftpError> {
        // The client is done (an sftp or scp session ends so): exit status 0, as OpenSSH's
        // sftp-server gives, then close; scp counts a session without one as failed.
        session.exit_status_request(channel, 0)?;
        session.eof(channel)?;
        session.close(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut SshSession,
    ) -> Result<(), SftpError> {
        tracing::info!(peer = %self.peer, "sftp: shell refused");
        self.refuse(channel, session)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut SshSession,
    ) -> Result<(), SftpError> {
        tracing::info!(peer = %self.peer, "sftp: command refused");
        self.refuse(channel, session)
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut SshSession,
    ) -> Result<(), SftpError> {
        session.channel_failure(channel)?;
        Ok(())
    }

    /// A local forward (`ssh -L`, `ssh -W`): refused (russh's default too; said here so it
    /// cannot change under us).
    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut SshSession,
    ) -> Result<(), SftpError> {
        tracing::info!(peer = %self.peer, "sftp: port forward refused");
        reply
            .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut SshSession,
    ) -> Result<bool, SftpError> {
        tracing::info!(peer = %self.peer, "sftp: port forward refused");
        Ok(false)
    }
}
