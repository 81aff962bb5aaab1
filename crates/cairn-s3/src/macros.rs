//! The request-reading macros the operation modules share: the SSE-C key of a request
//! (`sse_customer!`), its If-* conditions (`conditions!`) and the body checks it asks for
//! (`body_checks!`). Declared first in
//! `lib.rs` so every module sees them.

/// The SSE-C key of a request whose input has the `sse_customer_*` fields (or, with
/// `copy_source`, the `copy_source_sse_customer_*` ones), checked ([`sse::customer`]).
macro_rules! sse_customer {
    ($input:expr) => {
        sse::customer(
            $input.sse_customer_algorithm.as_deref(),
            $input.sse_customer_key.as_deref(),
            $input.sse_customer_key_md5.as_deref(),
        )
    };
    (copy_source $input:expr) => {
        sse::customer(
            $input.copy_source_sse_customer_algorithm.as_deref(),
            $input.copy_source_sse_customer_key.as_deref(),
            $input.copy_source_sse_customer_key_md5.as_deref(),
        )
    };
}

/// The [`BodyChecks`] of a PutObject or UploadPart request (their inputs share these fields).
macro_rules! body_checks {
    ($req:expr) => {
        $crate::body::BodyChecks {
            trailer: $crate::body::trailer_algorithm(&$req.headers),
            trailing: $req.trailing_headers.clone(),
            sums: [
                ("CRC32", $req.input.checksum_crc32.clone()),
                ("CRC32C", $req.input.checksum_crc32c.clone()),
                ("CRC64NVME", $req.input.checksum_crc64nvme.clone()),
                ("SHA1", $req.input.checksum_sha1.clone()),
                ("SHA256", $req.input.checksum_sha256.clone()),
            ],
            algorithm: $req.input.checksum_algorithm.clone(),
            content_md5: $req.input.content_md5.clone(),
        }
    };
}

/// The If-* conditions of a request whose input has the `if_*` fields (or, with
/// `copy_source`, the `copy_source_if_*` ones, moved out).
macro_rules! conditions {
    ($input:expr) => {
        conditional::conditions(
            $input.if_match.clone(),
            $input.if_none_match.clone(),
            $input.if_modified_since.clone(),
            $input.if_unmodified_since.clone(),
        )
    };
    (copy_source $input:expr) => {
        conditional::conditions(
            $input.copy_source_if_match,
            $input.copy_source_if_none_match,
            $input.copy_source_if_modified_since,
            $input.copy_source_if_unmodified_since,
        )
    };
}
