//! Server-side encryption headers: what a request asks for (`x-amz-server-side-encryption`,
//! SSE-C's customer key) and what a response says. The keys and ciphers are the node's
//! ([`cairn_node::crypt`]); S3 names the algorithm `AES256`, which is what clients send and
//! expect back — Cairn answers it for "encrypted with keys the server holds", while the
//! cipher is XChaCha20-Poly1305 (docs/architecture.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cairn_node::crypt::{Key, Sse};
use cairn_node::model::crypt::KeyWrap;
use cairn_node::model::records::ObjectMeta;
use md5::{Digest, Md5};
use s3s::dto::ServerSideEncryption;
use s3s::{S3Result, s3_error};

/// The SSE-C key of a request, checked: algorithm `AES256`, a base64 256-bit key, and its
/// MD5 as sent. `None` when the request carries none.
pub fn customer(
    algorithm: Option<&str>,
    key: Option<&str>,
    key_md5: Option<&str>,
) -> S3Result<Option<(Key, String)>> {
    match (algorithm, key) {
        (None, None) if key_md5.is_none() => Ok(None),
        (Some(a), Some(k)) => {
            if a != "AES256" {
                return Err(s3_error!(
                    InvalidEncryptionAlgorithmError,
                    "SSE-C: the algorithm must be AES256"
                ));
            }
            let bytes: [u8; 32] = STANDARD
                .decode(k.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    s3_error!(InvalidArgument, "SSE-C: the key must be 256 bits, base64")
                })?;
            let md5 = STANDARD.encode(Md5::digest(bytes));
            if let Some(sent) = key_md5
                && sent.trim() != md5
            {
                return Err(s3_error!(
                    InvalidArgument,
                    "SSE-C: the key's MD5 does not match the key"
                ));
            }
            Ok(Some((Key::from_bytes(bytes), md5)))
        }
        _ => Err(s3_error!(
            InvalidArgument,
            "SSE-C needs both the algorithm and the key headers"
        )),
    }
}

/// What a write asks for: SSE-C, the bucket key (`x-amz-server-side-encryption`), or the
/// bucket's default.
pub fn requested(
    sse: Option<&ServerSideEncryption>,
    customer: Option<(Key, String)>,
) -> S3Result<Sse> {
    if let Some((key, md5)) = customer {
        if sse.is_some() {
            return Err(s3_error!(
                InvalidArgument,
                "SSE-C and x-amz-server-side-encryption cannot both be set"
            ));
        }
        return Ok(Sse::Customer(key, md5));
    }
    match sse.map(ServerSideEncryption::as_str) {
        None => Ok(Sse::Default),
        Some(
            ServerSideEncryption::AES256
            | ServerSideEncryption::AWS_KMS
            | ServerSideEncryption::AWS_KMS_DSSE,
        ) => Ok(Sse::Bucket),
        Some(other) => Err(s3_error!(
            InvalidArgument,
            "x-amz-server-side-encryption {other:?}: AES256, aws:kms or aws:kms:dsse"
        )),
    }
}

/// The response's encryption headers for an object: `(x-amz-server-side-encryption,
/// SSE-C algorithm, SSE-C key MD5)`.
pub fn out(meta: &ObjectMeta) -> (Option<ServerSideEncryption>, Option<String>, Option<String>) {
    match meta.crypt.as_ref().map(|c| &c.key) {
        None => (None, None, None),
        Some(KeyWrap::Bucket(_)) => (
            Some(ServerSideEncryption::from_static(
                ServerSideEncryption::AES256,
            )),
            None,
            None,
        ),
        Some(KeyWrap::Customer { key_md5, .. }) => {
            (None, Some("AES256".to_owned()), Some(key_md5.clone()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_keys_are_checked() {
        let key = [7u8; 32];
        let b64 = STANDARD.encode(key);
        let md5 = STANDARD.encode(Md5::digest(key));
        let (_, m) = customer(Some("AES256"), Some(&b64), Some(&md5))
            .unwrap()
            .unwrap();
        assert_eq!(m, md5);
        assert!(customer(None, None, None).unwrap().is_none());
        assert!(customer(Some("AES128"), Some(&b64), None).is_err());
        assert!(customer(Some("AES256"), Some("c2hvcnQ="), None).is_err());
        let wrong = STANDARD.encode(Md5::digest([8u8; 32]));
        assert!(customer(Some("AES256"), Some(&b64), Some(&wrong)).is_err());
        assert!(customer(Some("AES256"), None, None).is_err());
        assert!(customer(None, None, Some(&md5)).is_err());
    }
}
