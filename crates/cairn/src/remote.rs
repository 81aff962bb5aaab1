//! Finding the node that runs on a data folder: its `api.toml` names the loopback listener,
//! its token and (with TLS) its certificate. While it runs, it holds the folder, and every data
//! command goes through its API.

use std::path::Path;

use cairn_api::{HttpApi, NodeApi};

use crate::daemon::config::ApiFile;

/// The API of the node running on `data`, if one answers.
pub fn discover(data: &Path) -> Option<HttpApi> {
    let text = std::fs::read_to_string(data.join(cairn_api::API_FILE)).ok()?;
    let file: ApiFile = toml::from_str(&text).ok()?;
    // A node serving TLS is trusted by exactly its own certificate.
    let (scheme, agent) = match &file.tls_cert {
        Some(cert) => ("https", cairn_api::client::agent(Some(cert)).ok()?),
        None => ("http", cairn_api::client::agent(None).ok()?),
    };
    let api = HttpApi::new(&format!("{scheme}://{}", file.addr), file.token, agent);
    // A stale file (node killed) answers nothing: open the folder directly then.
    api.id().ok().map(|_| api)
}
