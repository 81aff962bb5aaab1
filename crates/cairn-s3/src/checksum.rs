//! Flexible checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256): computed while the body
//! streams in, then compared with the values the client sent in headers or in the aws-chunked
//! trailer — before the object is committed, so a mismatch stores nothing.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::dto::Checksum;
use s3s::{S3Error, s3_error};

/// The algorithms S3 defines, with their header names.
pub const ALGORITHMS: [(&str, &str); 5] = [
    ("CRC32", "x-amz-checksum-crc32"),
    ("CRC32C", "x-amz-checksum-crc32c"),
    ("CRC64NVME", "x-amz-checksum-crc64nvme"),
    ("SHA1", "x-amz-checksum-sha1"),
    ("SHA256", "x-amz-checksum-sha256"),
];

/// What a request expects to be checked, and the running hash.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Values sent as headers, by algorithm name.
    pub headers: Vec<(&'static str, String)>,
    /// Algorithm whose value arrives in the trailer (`x-amz-trailer`).
    pub trailer: Option<&'static str>,
    /// Algorithms to compute even without a value to compare (to report them back).
    pub requested: Vec<&'static str>,
}

/// The algorithm named by a header (`x-amz-checksum-crc32`) or by its name (`CRC32`).
pub fn algorithm(name: &str) -> Option<&'static str> {
    ALGORITHMS
        .iter()
        .find(|(a, h)| a.eq_ignore_ascii_case(name) || h.eq_ignore_ascii_case(name))
        .map(|(a, _)| *a)
}

fn hasher_for(algos: &[&str]) -> ChecksumHasher {
    let mut h = ChecksumHasher::default();
    for a in algos {
        match *a {
            "CRC32" => h.crc32 = Some(s3s::crypto::Crc32::new()),
            "CRC32C" => h.crc32c = Some(s3s::crypto::Crc32c::new()),
            "CRC64NVME" => h.crc64nvme = Some(s3s::crypto::Crc64Nvme::new()),
            "SHA1" => h.sha1 = Some(s3s::crypto::Sha1::new()),
            "SHA256" => h.sha256 = Some(s3s::crypto::Sha256::new()),
            _ => {}
        }
    }
    h
}

fn value_of<'c>(sums: &'c Checksum, algo: &str) -> Option<&'c str> {
    match algo {
        "CRC32" => sums.checksum_crc32.as_deref(),
        "CRC32C" => sums.checksum_crc32c.as_deref(),
        "CRC64NVME" => sums.checksum_crc64nvme.as_deref(),
        "SHA1" => sums.checksum_sha1.as_deref(),
        "SHA256" => sums.checksum_sha256.as_deref(),
        _ => None,
    }
}

/// The base64 checksum of `bytes` with `algo`.
pub fn digest_base64(algo: &str, bytes: &[u8]) -> Option<String> {
    let mut h = hasher_for(&[algo]);
    h.update(bytes);
    value_of(&h.finalize(), algo).map(str::to_owned)
}

/// The composite checksum of a multipart upload: the checksum of the concatenated binary part
/// checksums, then `-N`.
pub fn composite(algo: &str, part_sums_b64: &[&str]) -> Option<String> {
    use base64::Engine;
    let mut raw = Vec::new();
    for b64 in part_sums_b64 {
        raw.extend(base64::engine::general_purpose::STANDARD.decode(b64).ok()?);
    }
    Some(format!(
        "{}-{}",
        digest_base64(algo, &raw)?,
        part_sums_b64.len()
    ))
}

/// A body stream that hashes what passes through it.
pub struct Hashing {
    state: Arc<Mutex<Option<ChecksumHasher>>>,
    expected: Expected,
}

impl Hashing {
    /// Wraps `body`; returns the wrapped stream and the handle to check it afterwards.
    pub fn wrap<S, E>(
        body: S,
        expected: Expected,
    ) -> (impl Stream<Item = Result<Bytes, E>> + Unpin, Hashing)
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let mut algos: Vec<&str> = expected.headers.iter().map(|(a, _)| *a).collect();
        algos.extend(expected.trailer);
        algos.extend(expected.requested.iter().copied());
        let state = Arc::new(Mutex::new((!algos.is_empty()).then(|| hasher_for(&algos))));
        let feed = state.clone();
        let stream = body.inspect(move |piece| {
            if let (Ok(bytes), Ok(mut guard)) = (piece, feed.lock())
                && let Some(h) = guard.as_mut()
            {
                h.update(bytes);
            }
        });
        (stream, Hashing { state, expected })
    }

    /// After the body is consumed: the computed sums, once every value the client sent
    /// (headers now, trailer values from `trailer`) has been compared.
    pub fn verify(
        self,
        trailer: Option<&http::HeaderMap>,
    ) -> Result<Vec<(&'static str, String)>, S3Error> {
        let Some(hasher) = self.state.lock().ok().and_then(|mut g| g.take()) else {
            return Ok(Vec::new());
        };
        let sums = hasher.finalize();
        let check = |algo: &str, sent: &str| -> Result<(), S3Error> {
            if value_of(&sums, algo) != Some(sent.trim()) {
                return Err(s3_error!(
                    BadDigest,
                    "The {algo} you specified did not match the calculated checksum."
                ));
            }
            Ok(())
        };
        for (algo, sent) in &self.expected.headers {
            check(algo, sent)?;
        }
        if let Some(algo) = self.expected.trailer {
            let header = ALGORITHMS.iter().find(|(a, _)| *a == algo).map(|(_, h)| *h);
            let sent = trailer
                .zip(header)
                .and_then(|(t, h)| t.get(h))
                .and_then(|v| v.to_str().ok());
            match sent {
                Some(sent) => check(algo, sent)?,
                None => {
                    return Err(s3_error!(
                        InvalidRequest,
                        "the trailer announced in x-amz-trailer is missing"
                    ));
                }
            }
        }
        Ok(ALGORITHMS
            .iter()
            .filter_map(|(a, _)| value_of(&sums, a).map(|v| (*a, v.to_owned())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_matches_s3_tests_vector() {
        // s3-tests test_multipart_checksum_sha256: one part of 1024 × 'A'
        let part = digest_base64("SHA256", &[b'A'; 1024]).unwrap();
        assert_eq!(part, "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=");
        assert_eq!(
            composite("SHA256", &[&part]).unwrap(),
            "Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1"
        );
    }

    #[tokio::test]
    async fn header_and_trailer_values_are_checked() {
        let body = futures::stream::iter(vec![
            Ok::<_, std::io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        // CRC32 of "hello world" is 0x0d4a1185 → base64 "DUoRhQ=="
        let expected = Expected {
            headers: vec![("CRC32", "DUoRhQ==".into())],
            trailer: Some("CRC32"),
            requested: vec![],
        };
        let (stream, hashing) = Hashing::wrap(body, expected.clone());
        let _: Vec<_> = stream.collect().await;
        let mut trailer = http::HeaderMap::new();
        trailer.insert("x-amz-checksum-crc32", "DUoRhQ==".parse().unwrap());
        let sums = hashing.verify(Some(&trailer)).unwrap();
        assert_eq!(sums, vec![("CRC32", "DUoRhQ==".to_owned())]);

        let hashed = |expected: Expected, data: &'static [u8]| async move {
            let body =
                futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(data))]);
            let (stream, hashing) = Hashing::wrap(body, expected);
            let _: Vec<_> = stream.collect().await;
            hashing
        };
        // a wrong header value
        let err = hashed(expected, b"x")
            .await
            .verify(Some(&trailer))
            .unwrap_err();
        assert_eq!(*err.code(), s3s::S3ErrorCode::BadDigest);

        // trailer only: a wrong trailer value, and an announced trailer that never came
        let trailer_only = Expected {
            headers: vec![],
            trailer: Some("CRC32"),
            requested: vec![],
        };
        let mut wrong = http::HeaderMap::new();
        wrong.insert("x-amz-checksum-crc32", "AAAAAA==".parse().unwrap());
        let err = hashed(trailer_only.clone(), b"hello world")
            .await
            .verify(Some(&wrong))
            .unwrap_err();
        assert_eq!(*err.code(), s3s::S3ErrorCode::BadDigest);
        let err = hashed(trailer_only, b"hello world")
            .await
            .verify(None)
            .unwrap_err();
        assert_eq!(*err.code(), s3s::S3ErrorCode::InvalidRequest);

        // requested without a value to compare: computed and returned
        let requested = Expected {
            headers: vec![],
            trailer: None,
            requested: vec!["CRC32"],
        };
        let sums = hashed(requested, b"hello world")
            .await
            .verify(None)
            .unwrap();
        assert_eq!(sums, vec![("CRC32", "DUoRhQ==".to_owned())]);
    }
}
