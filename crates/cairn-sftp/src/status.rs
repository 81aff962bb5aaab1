//! How a node's refusal or failure is answered over SFTP.

use cairn_node::{ErrorKind, NodeError};
use russh_sftp::protocol::StatusCode;

/// The SFTP status of a node error: not found and refused map to their codes, anything else
/// is a logged failure.
pub(crate) fn fail(account: &str, e: NodeError) -> StatusCode {
    match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::Forbidden => StatusCode::PermissionDenied,
        _ => {
            tracing::warn!(account, "sftp: {e}");
            StatusCode::Failure
        }
    }
}
