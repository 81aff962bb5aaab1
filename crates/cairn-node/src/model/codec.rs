//! The node's record codec (dag-cbor both ways), the clock, random names and hex: the helpers
//! every record module shares.

use serde::{Deserialize, Serialize};

use crate::NodeError;

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, NodeError> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| NodeError::Unsupported(format!("encode: {e}")))
}

/// Decodes a dag-cbor record (public for the fuzz targets, `fuzz/`).
#[doc(hidden)]
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, NodeError> {
    serde_ipld_dagcbor::from_slice(bytes)
        .map_err(|e| NodeError::Unsupported(format!("unreadable metadata record: {e}")))
}

/// `len` characters drawn uniformly from `alphabet` (at most 256 characters) with the OS's
/// randomness; bytes past the largest multiple of the alphabet's size are redrawn, so no
/// character is more likely than another.
pub fn random_string(len: usize, alphabet: &[u8]) -> Result<String, NodeError> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut bytes = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut bytes)
            .map_err(|e| NodeError::Unsupported(format!("randomness: {e}")))?;
        for b in bytes.iter().map(|b| *b as usize).filter(|b| *b < limit) {
            if out.len() == len {
                break;
            }
            out.push(alphabet[b % alphabet.len()] as char);
        }
    }
    Ok(out)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex to bytes (invalid digits give an empty result: no key matches it).
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_default()
}
