//! The two request-reading macros every operation module uses: the SSE-C key of a request
//! (`sse_customer!`) and the body checks it asks for (`body_checks!`). Declared first in
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
