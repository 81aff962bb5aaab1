//! `cairn serve`: one node with the S3 API, the gateway, the APIs and (in a cluster) the
//! network, wired together and run until a signal; the adapters between the network and the
//! node. Its settings are `config`'s.

use std::sync::Arc;

use axum::response::IntoResponse;
use std::time::Duration;

use crate::daemon::config::{
    ApiFile, Mode, SCRUB_BYTES, Settings, api_secret, multiaddrs, root_credentials, write_private,
};
use anyhow::{Context, Result};
use cairn_node::Node;

/// How long shutdown waits for running upload-job imports.
const UPLOAD_DRAIN: Duration = Duration::from_secs(5);

/// Runs the node until SIGINT/SIGTERM, then drains connections.
pub fn run(settings: Settings) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(settings))
}

async fn serve(settings: Settings) -> Result<()> {
    let store = cairn_store::Store::open(&settings.data)
        .with_context(|| format!("opening store {}", settings.data.display()))?;
    // A node over the bare store answers what the wiring asks before the node is built (its
    // key, whether it holds anything); it is dropped before the node starts.
    let probe = Node::new(store.clone());
    let keypair = cairn_net::keypair_from_seed(probe.identity()?.secret_seed())?;
    let peer_id = keypair.public().to_peer_id();
    eprintln!(
        "cairn: node key {} (peer id {peer_id})",
        settings
            .data
            .join(cairn_node::identity::IDENTITY_FILE)
            .display()
    );
    let user_key = crate::user::node_key(settings.identity.as_deref(), &probe, true)?;
    if let Some((user, path)) = &user_key {
        eprintln!("cairn: user key {} ({})", path.display(), user.public());
    }
    drop(probe);
    let (cluster, founded, join_addrs) =
        crate::daemon::invite::load_or_found(&settings.data, settings.join.as_deref())?;
    let mut net_config = settings.net.clone();
    net_config.cluster = Some(cluster.secret()?);
    net_config.bootstrap.extend(multiaddrs(&join_addrs)?);
    let holds_admin = cluster.admin_signer()?.is_some();
    eprintln!(
        "cairn: cluster {} ({}{}; {}); another node joins with `cairn --data {} cluster invite` \
         here, then `cairn serve --join TOKEN` there",
        cluster.secret()?.id(),
        if founded && settings.join.is_none() {
            "new, this node only"
        } else if founded {
            "joined"
        } else {
            "member"
        },
        if holds_admin { ", admin key here" } else { "" },
        settings
            .data
            .join(crate::daemon::invite::CLUSTER_FILE)
            .display(),
        settings.data.display(),
    );
    let (access, secret) = root_credentials(&settings.data)?;

    // The network's handle first (the node fetches and places through it), then the node,
    // then the network serving the node.
    let (net, pending_net) = cairn_net::prepare(keypair);
    let mut node = crate::daemon::node_builder(
        store,
        &settings,
        user_key.map(|(user, _)| user),
        Some(&cluster),
    )?
    .remote(Arc::new(crate::daemon::adapters::NetBlocks {
        net: net.clone(),
        runtime: tokio::runtime::Handle::current(),
    }));
    if let Some(c) = &settings.cluster {
        node = crate::daemon::cluster::member(node, &net, c);
    }
    let node = node.build()?;
    let node_for_api = node.clone();
    let ids = cairn_s3::auth::Identities::new(node.clone(), &access, &secret);
    let mut builder = s3s::service::S3ServiceBuilder::new(cairn_s3::CairnS3::new(
        node,
        settings.cid_version,
        ids.clone(),
    ));
    builder.set_auth(ids.clone());
    builder.set_access(cairn_s3::auth::CairnAccess::new(ids));
    let service = cairn_s3::front::Front::new(builder.build());
    let tls = match &settings.tls {
        Some(files) => Some(crate::daemon::listen::Tls::load(&files.cert, &files.key)?),
        None => None,
    };
    let scheme = crate::daemon::listen::scheme(tls.as_ref());

    let listener = tokio::net::TcpListener::bind(settings.s3_listen)
        .await
        .with_context(|| format!("binding {}", settings.s3_listen))?;
    let addr = listener.local_addr()?;

    // The local API for the CLI, with a fresh token written (0600) beside its address.
    let api_listener = tokio::net::TcpListener::bind(settings.api_listen)
        .await
        .with_context(|| format!("binding the local API on {}", settings.api_listen))?;
    let api_addr = api_listener.local_addr()?;
    let token = cairn_node::model::codec::random_string(32, b"0123456789abcdef")?;
    let api_file = settings.data.join(cairn_api::API_FILE);
    // The local API is for the CLI on this machine: on a loopback address nothing crosses a
    // network and it stays plain HTTP; on any other address it speaks TLS like the rest, and
    // `api.toml` names the certificate the CLI then trusts.
    let (api_tls, api_tls_cert) = match (&tls, &settings.tls) {
        (Some(tls), Some(files)) if !api_addr.ip().is_loopback() => (
            Some(tls.clone()),
            Some(std::fs::canonicalize(&files.cert).unwrap_or_else(|_| files.cert.clone())),
        ),
        _ => (None, None),
    };
    write_private(
        &api_file,
        toml::to_string(&ApiFile {
            addr: api_addr.to_string(),
            token: token.clone(),
            tls_cert: api_tls_cert.clone(),
        })?
        .as_bytes(),
    )?;
    let (stop_tx, _) = tokio::sync::watch::channel(false);
    let mut registry = prometheus_client::registry::Registry::default();
    let net_metrics = Arc::new(cairn_net::metrics::NetMetrics::new(&mut registry));
    let margin_gauges = crate::daemon::cluster::MarginGauges::new(&mut registry);
    let registry = Arc::new(registry);
    let metrics_listener = tokio::net::TcpListener::bind(settings.metrics_listen)
        .await
        .with_context(|| format!("binding /metrics on {}", settings.metrics_listen))?;
    let metrics_addr = metrics_listener.local_addr()?;
    let refresh = {
        let (node, gauges) = (node_for_api.clone(), margin_gauges.clone());
        move || gauges.refresh(&node)
    };
    let metrics_task = tokio::spawn(crate::daemon::listen::serve(
        "metrics",
        metrics_listener,
        None,
        crate::daemon::listen::router(metrics_router(registry, refresh)),
        stop_tx.subscribe(),
    ));
    let net_task = pending_net
        .start(
            net_config,
            crate::daemon::adapters::providers(&node_for_api, settings.gateway.serve_all),
            Some(net_metrics),
            stop_tx.subscribe(),
        )
        .await
        .context("starting the p2p node")?;
    let cluster_tasks = match (&settings.cluster, node_for_api.cluster().cloned()) {
        (Some(c), Some(cluster)) => {
            vec![
                cairn_node::worker::spawn(
                    node_for_api.clone(),
                    crate::daemon::cluster::Members {
                        net: net.clone(),
                        cluster: cluster.clone(),
                    },
                    crate::daemon::cluster::MEMBERS_TICK,
                    stop_tx.subscribe(),
                ),
                cairn_node::worker::spawn(
                    node_for_api.clone(),
                    crate::daemon::cluster::Repair { cluster },
                    c.repair_interval,
                    stop_tx.subscribe(),
                ),
                cairn_node::worker::spawn_periodic(
                    node_for_api.clone(),
                    crate::daemon::cluster::Margins,
                    c.margins_interval,
                    stop_tx.subscribe(),
                ),
            ]
        }
        _ => Vec::new(),
    };
    let p2p_addrs = net.addrs().await?;
    let api_net: cairn_api::network::SharedNetwork =
        Arc::new(crate::daemon::adapters::ApiNetwork(net.clone()));
    let api_task = tokio::spawn(crate::daemon::listen::serve(
        "local API",
        api_listener,
        api_tls,
        crate::daemon::listen::router(cairn_api::router(
            node_for_api.clone(),
            token,
            Some(api_net.clone()),
        )),
        stop_tx.subscribe(),
    ));
    let gateway_listener = tokio::net::TcpListener::bind(settings.gateway_listen)
        .await
        .with_context(|| format!("binding the gateway on {}", settings.gateway_listen))?;
    let gateway_addr = gateway_listener.local_addr()?;
    use cairn_gateway::auth::{Auth, Security};
    let security = match &settings.v1.mode {
        Mode::Public => Security::Public,
        Mode::Secret => Security::Secret(api_secret(&settings.data)?),
        Mode::Allowlist(keys) => Security::Allowlist(keys.clone()),
    };
    // Tokens are MAC'd with a key derived from the node's identity: they outlive a restart
    // and no other node can make one.
    let token_key = cairn_crypt::Key::from_bytes(blake3::derive_key(
        "cairn 2026 api login token key",
        &node_for_api.identity()?.secret_seed(),
    ));
    let auth = std::sync::Arc::new(Auth::new(
        node_for_api.clone(),
        security,
        token_key,
        settings.v1.token_ttl,
        settings.v1.login_skew,
    )?);
    let v1 = cairn_gateway::v1::V1Config {
        max_upload: settings.v1.max_upload,
        long_poll: settings.v1.long_poll,
    };
    let (resumed, failed) = node_for_api.jobs().resume()?;
    if resumed + failed > 0 {
        tracing::info!(resumed, failed, "upload jobs found at start");
    }
    let mut gateway_routes = cairn_gateway::router(node_for_api.clone(), settings.gateway).nest(
        "/api/v1",
        cairn_gateway::v1::router(node_for_api.clone(), v1, auth.clone()),
    );
    // A remote CLI (`cairn --node URL`) reaches the same `/api/v0` as the local one, behind
    // the security mode; never in public mode (it can delete buckets).
    if *auth.security() != Security::Public {
        gateway_routes = gateway_routes.merge(
            cairn_api::routes(node_for_api.clone(), Some(api_net.clone())).layer(
                axum::middleware::from_fn_with_state(auth, cairn_gateway::auth::authorize),
            ),
        );
    }
    let gateway_task = tokio::spawn(crate::daemon::listen::serve(
        "gateway",
        gateway_listener,
        tls.clone(),
        crate::daemon::listen::router(gateway_routes),
        stop_tx.subscribe(),
    ));
    let roots_task = cairn_node::worker::spawn_periodic(
        node_for_api.clone(),
        cairn_node::roots::RootsJob,
        Duration::from_millis(250),
        stop_tx.subscribe(),
    );
    let provide_task = cairn_node::worker::spawn(
        node_for_api.clone(),
        crate::daemon::provide::Announce {
            net: net.clone(),
            every: settings.reprovide_interval,
            last_sweep: None,
        },
        crate::daemon::provide::PROVIDE_TICK,
        stop_tx.subscribe(),
    );
    let follow_task = cairn_node::worker::spawn(
        node_for_api.clone(),
        crate::daemon::follow::Follow { net: net.clone() },
        crate::daemon::follow::FOLLOW_TICK,
        stop_tx.subscribe(),
    );
    let scrub_task = cairn_node::worker::spawn_periodic(
        node_for_api.clone(),
        cairn_node::worker::Scrub::new(SCRUB_BYTES, settings.scrub_interval),
        settings.scrub_interval,
        stop_tx.subscribe(),
    );
    let jobs_task = cairn_node::worker::spawn_periodic(
        node_for_api.clone(),
        cairn_node::jobs::ExpireJobs {
            retention: settings.v1.job_retention,
        },
        Duration::from_secs(600),
        stop_tx.subscribe(),
    );
    let gc_task = settings.gc_interval.map(|every| {
        cairn_node::worker::spawn_periodic(
            node_for_api.clone(),
            cairn_node::worker::Gc,
            every,
            stop_tx.subscribe(),
        )
    });

    let (sftp_task, sftp_line) = match settings.sftp_listen {
        Some(at) => {
            let (key, made, fingerprint) = cairn_sftp::hostkey::load_or_create(&settings.data)?;
            if made {
                eprintln!(
                    "cairn: made the SFTP host key {} ({fingerprint})",
                    settings.data.join(cairn_sftp::hostkey::FILE).display()
                );
            }
            let sftp_listener = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("binding SFTP on {at}"))?;
            let sftp_addr = sftp_listener.local_addr()?;
            let config = cairn_sftp::SftpConfig {
                cid_version: settings.cid_version,
                ..Default::default()
            };
            let task = tokio::spawn(cairn_sftp::serve(
                sftp_listener,
                node_for_api.clone(),
                key,
                config,
                stop_tx.subscribe(),
            ));
            (
                Some(task),
                format!(" ; sftp on sftp://{sftp_addr} (host key {fingerprint})"),
            )
        }
        None => (None, String::new()),
    };

    println!(
        "cairn: S3 API on {scheme}://{addr} (access key {access}); local API on {api_addr}; \
         gateway on {scheme}://{gateway_addr} ; metrics on http://{metrics_addr}/metrics ; \
         p2p on {} ; peer id {}{sftp_line}",
        p2p_addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        net.peer_id()
    );
    use std::io::Write;
    std::io::stdout().flush()?;

    let s3_task = tokio::spawn(crate::daemon::listen::serve(
        "S3",
        listener,
        tls,
        service,
        stop_tx.subscribe(),
    ));
    shutdown_signal().await;
    eprintln!("cairn: shutting down");
    let _ = stop_tx.send(true);
    let _ = std::fs::remove_file(&api_file);
    let _ = s3_task.await;
    let _ = api_task.await;
    let _ = gateway_task.await;
    if let Some(task) = sftp_task {
        let _ = task.await;
    }
    // Upload jobs still importing get a moment; one cut off resumes at the next start.
    if !node_for_api.jobs().drain(UPLOAD_DRAIN).await {
        eprintln!("cairn: upload jobs still running are resumed at the next start");
    }
    let _ = roots_task.await;
    let _ = provide_task.await;
    let _ = follow_task.await;
    let _ = scrub_task.await;
    let _ = jobs_task.await;
    let _ = net_task.await;
    let _ = metrics_task.await;
    for task in gc_task.into_iter().chain(cluster_tasks) {
        let _ = task.await;
    }
    Ok(())
}

/// `GET /metrics`: the registry in the Prometheus text format.
/// `refresh` runs before each scrape (gauges read from the node's last counts).
fn metrics_router(
    registry: Arc<prometheus_client::registry::Registry>,
    refresh: impl Fn() + Clone + Send + Sync + 'static,
) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            let refresh = refresh.clone();
            async move {
                refresh();
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response(),
                    Err(e) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                        .into_response(),
                }
            }
        }),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    /// `cairn id` on a stopped node prints the peer id the network will use.
    #[test]
    fn the_offline_peer_id_is_the_networks() {
        for seed in [[0u8; 32], [7u8; 32], *b"0123456789abcdef0123456789abcdef"] {
            let id = cairn_node::identity::Identity::from_seed(seed);
            let keypair = cairn_net::keypair_from_seed(seed).unwrap();
            assert_eq!(id.peer_id(), keypair.public().to_peer_id().to_string());
        }
    }
}
