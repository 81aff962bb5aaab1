//! Every HTTP listener of `cairn serve` (S3, the gateway with `/api/v1` and `/api/v0`, the
//! local API, `/metrics`) is served by [`serve`]: one accept loop with the same limits for all
//! — a header read timeout, a bounded header buffer, a bounded number of open connections, a
//! TLS handshake timeout — optional TLS from PEM files ([`Tls::load`], rustls), NODELAY, and
//! a graceful drain on stop.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio_rustls::rustls;

/// How long a client may take to send a request's headers (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest read buffer of a connection, which bounds a request's headers.
pub const MAX_HEADER_BUF: usize = 64 * 1024;
/// Open connections per listener; further clients wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long open connections may take to finish after a stop.
const DRAIN: Duration = Duration::from_secs(30);

/// A server certificate chain and key, ready to accept TLS connections.
#[derive(Clone)]
pub struct Tls(tokio_rustls::TlsAcceptor);

impl Tls {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or
    /// SEC1). HTTP/1.1 and HTTP/2 are offered by ALPN.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
        anyhow::ensure!(
            !chain.is_empty(),
            "the TLS certificate file {} holds no certificate",
            cert.display()
        );
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the TLS key {}", key.display()))?;
        // The provider is named: with several compiled in, rustls will not pick one itself.
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS key does not fit the certificate")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

/// `https` with TLS, else `http`.
pub fn scheme(tls: Option<&Tls>) -> &'static str {
    if tls.is_some() { "https" } else { "http" }
}

/// Serves `service` on `listener` until `stop` turns true, then lets open connections finish
/// for up to 30 s. `what` names the listener in logs.
pub async fn serve<S, B>(
    what: &'static str,
    listener: tokio::net::TcpListener,
    tls: Option<Tls>,
    service: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = ConnBuilder::new(TokioExecutor::new());
    conn.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BUF);
    conn.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BUF as u32);
    let conn = Arc::new(conn);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(listener = what, "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Headers and body leave in separate writes: without NODELAY, Nagle waits for the
        // client's delayed ACK and every small answer takes ~40 ms.
        let _ = stream.set_nodelay(true);
        let (conn, watcher, service, tls) = (
            conn.clone(),
            graceful.watcher(),
            service.clone(),
            tls.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            let ended = match tls {
                None => {
                    let c = conn.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(c.into_owned()).await
                }
                Some(Tls(acceptor)) => {
                    let stream = match tokio::time::timeout(
                        TLS_HANDSHAKE_TIMEOUT,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(listener = what, %peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(listener = what, %peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let c = conn.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(c.into_owned()).await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(listener = what, %peer, "connection ended: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!(listener = what, "connections still open after 30 s; stopping anyway");
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone); holds no borrow across awaits.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// An axum router as a hyper service for [`serve`].
pub fn router(router: axum::Router) -> hyper_util::service::TowerToHyperService<axum::Router> {
    hyper_util::service::TowerToHyperService::new(router)
}
