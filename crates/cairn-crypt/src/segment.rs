//! Segmented authenticated encryption of object bodies (STREAM construction, XChaCha20-Poly1305).
//!
//! Owns the ciphertext layout, streaming [`Encryptor`]/[`Decryptor`] and range planning.
//!
//! Layout: the plaintext is cut into segments of `Params::segment` bytes (the last one may be
//! shorter); each is sealed on its own and stored as `ciphertext ‖ 16-byte tag`, back to back.
//! - nonce of segment `i` = `nonce_prefix (16 bytes) ‖ i as u64 big-endian` (24 bytes), so a
//!   segment moved to another position, or taken from an object with another prefix or key,
//!   fails authentication;
//! - AAD = `"cairn-crypt/segment/v1"` ‖ one flag byte (1 on the last segment, else 0), so
//!   dropping trailing segments is detected even at a segment boundary;
//! - an empty plaintext is ONE empty final segment (16 bytes), so "truncated to nothing" fails.
//!
//! The decryptor is told the plaintext size from the object's record and derives from it which
//! segment is last and how long each one is: a record whose size was lowered or raised makes
//! decryption fail (the last flag or the lengths no longer match). Every segment is
//! authenticated before any of its bytes are emitted. Memory is one segment on each side.
//! Segment sizes are limited to 1..=[`MAX_SEGMENT`] so a hostile record cannot ask for a huge
//! buffer.

use chacha20poly1305::{AeadInOut, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{CryptError, Key, Result, fill_random};

/// Default plaintext bytes per segment.
pub const DEFAULT_SEGMENT: u32 = 65536;
/// Authentication tag bytes appended to each segment.
pub const TAG: usize = 16;
/// Largest accepted segment size (16 MiB).
pub const MAX_SEGMENT: u32 = 1 << 24;

const AAD_LABEL: &[u8; 22] = b"cairn-crypt/segment/v1";

/// Per-object encryption parameters, stored (in clear) in the object's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// The STREAM nonce prefix (random per piece).
    #[serde(with = "serde_bytes")]
    pub nonce_prefix: [u8; 16],
    /// Plaintext bytes per segment.
    pub segment: u32,
}

impl Params {
    /// Fresh random nonce prefix with the given segment size.
    pub fn random(segment: u32) -> Result<Params> {
        let mut p = Params {
            nonce_prefix: [0; 16],
            segment,
        };
        p.check()?;
        fill_random(&mut p.nonce_prefix)?;
        Ok(p)
    }

    /// Rejects a segment size of 0 or above [`MAX_SEGMENT`].
    pub fn check(&self) -> Result<()> {
        check_segment(self.segment)
    }
}

fn check_segment(segment: u32) -> Result<()> {
    if segment == 0 || segment > MAX_SEGMENT {
        return Err(CryptError::Malformed(format!(
            "segment size {segment} is not in 1..={MAX_SEGMENT}"
        )));
    }
    Ok(())
}

/// Number of segments for a plaintext size (at least 1: empty plaintext is one empty segment).
/// A segment size of 0 (rejected everywhere else) is treated as 1 here instead of panicking.
pub fn segment_count(plain_size: u64, segment: u32) -> u64 {
    plain_size.div_ceil(u64::from(segment.max(1))).max(1)
}

/// Ciphertext bytes for a plaintext size (saturates instead of overflowing).
pub fn ciphertext_size(plain_size: u64, segment: u32) -> u64 {
    plain_size.saturating_add(segment_count(plain_size, segment).saturating_mul(TAG as u64))
}

fn checked_ciphertext_size(plain_size: u64, segment: u32) -> Result<u64> {
    check_segment(segment)?;
    segment_count(plain_size, segment)
        .checked_mul(TAG as u64)
        .and_then(|t| t.checked_add(plain_size))
        .ok_or_else(|| CryptError::Malformed(format!("object size {plain_size} is too large")))
}

fn nonce(prefix: &[u8; 16], index: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..16].copy_from_slice(prefix);
    n[16..].copy_from_slice(&index.to_be_bytes());
    XNonce::from(n)
}

fn aad(last: bool) -> [u8; AAD_LABEL.len() + 1] {
    let mut a = [0u8; AAD_LABEL.len() + 1];
    a[..AAD_LABEL.len()].copy_from_slice(AAD_LABEL);
    a[AAD_LABEL.len()] = u8::from(last);
    a
}

pub(crate) fn cipher(key: &Key) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.as_bytes().into())
}

/// Streaming encryptor. Holds back the latest full segment until it knows whether more input
/// follows (the last flag is authenticated), so its memory is one segment.
pub struct Encryptor {
    cipher: XChaCha20Poly1305,
    prefix: [u8; 16],
    segment: usize,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    total: u64,
}

impl Encryptor {
    /// An encryptor of one STREAM under `key` with `params`.
    pub fn new(key: &Key, params: &Params) -> Result<Encryptor> {
        params.check()?;
        let segment = params.segment as usize;
        Ok(Encryptor {
            cipher: cipher(key),
            prefix: params.nonce_prefix,
            segment,
            buf: Zeroizing::new(Vec::with_capacity(segment)),
            index: 0,
            total: 0,
        })
    }

    /// Consume plaintext; appends every segment that is known not to be the last to `out`.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            if self.buf.len() == self.segment {
                self.seal(false, out);
            }
            let take = (self.segment - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.total += take as u64;
        }
    }

    /// Seal the final segment (possibly empty); returns the plaintext size.
    pub fn finish(mut self, out: &mut Vec<u8>) -> u64 {
        self.seal(true, out);
        self.total
    }

    fn seal(&mut self, last: bool, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &nonce(&self.prefix, self.index),
                &aad(last),
                (&mut out[start..]).into(),
            )
            // Only fails above ~256 GiB per message; segments are at most MAX_SEGMENT.
            .expect("segment is within XChaCha20-Poly1305 message limits");
        out.extend_from_slice(&tag);
        self.buf.clear();
        self.index += 1;
    }
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("segment", &self.segment)
            .field("index", &self.index)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// Which ciphertext segments cover a plaintext range, and how to cut the decrypted bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangePlan {
    /// The first segment holding the range.
    pub first_segment: u64,
    /// Byte offset of `first_segment` in the ciphertext.
    pub ct_start: u64,
    /// End (exclusive) of the last covering segment in the ciphertext.
    pub ct_end: u64,
    /// Plaintext bytes to drop from the start of the first decrypted segment.
    pub skip: u64,
    /// Plaintext bytes to return.
    pub len: u64,
}

/// Plan the read of plaintext `[start, end_exclusive)`. An empty range covers no segment
/// (`ct_start == ct_end`) and so authenticates nothing.
pub fn plan_range(
    plain_size: u64,
    segment: u32,
    start: u64,
    end_exclusive: u64,
) -> Result<RangePlan> {
    let ct_size = checked_ciphertext_size(plain_size, segment)?;
    if start > end_exclusive || end_exclusive > plain_size {
        return Err(CryptError::Malformed(format!(
            "range {start}..{end_exclusive} is outside an object of {plain_size} bytes"
        )));
    }
    let seg = u64::from(segment);
    let stride = seg + TAG as u64;
    let first = start / seg;
    let end_segment = if end_exclusive == start {
        first
    } else {
        (end_exclusive - 1) / seg + 1
    };
    Ok(RangePlan {
        first_segment: first,
        ct_start: (first * stride).min(ct_size),
        ct_end: (end_segment * stride).min(ct_size),
        skip: start - first * seg,
        len: end_exclusive - start,
    })
}

/// Streaming decryptor for a run of consecutive segments of one object.
pub struct Decryptor {
    cipher: XChaCha20Poly1305,
    prefix: [u8; 16],
    segment: u64,
    plain_size: u64,
    count: u64,
    next: u64,
    end: u64,
    skip: u64,
    remaining: u64,
    buf: Zeroizing<Vec<u8>>,
    failed: Option<CryptError>,
}

impl Decryptor {
    /// Decrypt from segment `first_segment` to the end of an object of `plain_size` bytes.
    pub fn new(
        key: &Key,
        params: &Params,
        plain_size: u64,
        first_segment: u64,
    ) -> Result<Decryptor> {
        checked_ciphertext_size(plain_size, params.segment)?;
        let count = segment_count(plain_size, params.segment);
        if first_segment >= count {
            return Err(CryptError::Malformed(format!(
                "segment {first_segment} is past the object's {count} segments"
            )));
        }
        let seg = u64::from(params.segment);
        Ok(Self::build(
            key,
            params,
            plain_size,
            first_segment,
            count,
            0,
            plain_size - first_segment * seg,
        ))
    }

    /// Decrypt exactly the ciphertext slice `[plan.ct_start, plan.ct_end)` and emit exactly
    /// `plan.len` bytes. The plan must be the one [`plan_range`] gives for this object.
    pub fn new_range(
        key: &Key,
        params: &Params,
        plain_size: u64,
        plan: &RangePlan,
    ) -> Result<Decryptor> {
        check_segment(params.segment)?;
        let seg = u64::from(params.segment);
        let start = plan
            .first_segment
            .checked_mul(seg)
            .and_then(|s| s.checked_add(plan.skip));
        let expected = start
            .and_then(|s| Some((s, s.checked_add(plan.len)?)))
            .map(|(s, e)| plan_range(plain_size, params.segment, s, e));
        match expected {
            Some(Ok(p)) if p == *plan => {}
            _ => {
                return Err(CryptError::Malformed(
                    "range plan does not match this object".into(),
                ));
            }
        }
        let end = plan.first_segment + (plan.ct_end - plan.ct_start).div_ceil(seg + TAG as u64);
        Ok(Self::build(
            key,
            params,
            plain_size,
            plan.first_segment,
            end,
            plan.skip,
            plan.len,
        ))
    }

    fn build(
        key: &Key,
        params: &Params,
        plain_size: u64,
        first: u64,
        end: u64,
        skip: u64,
        remaining: u64,
    ) -> Decryptor {
        Decryptor {
            cipher: cipher(key),
            prefix: params.nonce_prefix,
            segment: u64::from(params.segment),
            plain_size,
            count: segment_count(plain_size, params.segment),
            next: first,
            end,
            skip,
            remaining,
            buf: Zeroizing::new(Vec::new()),
            failed: None,
        }
    }

    fn segment_ct_len(&self, index: u64) -> usize {
        let plain = if index + 1 < self.count {
            self.segment
        } else {
            self.plain_size - (self.count - 1) * self.segment
        };
        plain as usize + TAG
    }

    /// Consume ciphertext; appends the plaintext of every completed (authenticated) segment.
    pub fn update(&mut self, mut ct: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while !ct.is_empty() {
            if self.next >= self.end {
                return Err(self.fail(CryptError::Malformed("bytes after the last segment".into())));
            }
            let want = self.segment_ct_len(self.next);
            let take = (want - self.buf.len()).min(ct.len());
            self.buf.extend_from_slice(&ct[..take]);
            ct = &ct[take..];
            if self.buf.len() == want
                && let Err(e) = self.open_segment(want - TAG, out)
            {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    fn open_segment(&mut self, n: usize, out: &mut Vec<u8>) -> Result<()> {
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&self.buf[n..]);
        let last = self.next + 1 == self.count;
        self.cipher
            .decrypt_inout_detached(
                &nonce(&self.prefix, self.next),
                &aad(last),
                (&mut self.buf[..n]).into(),
                &Tag::from(tag),
            )
            .map_err(|_| CryptError::Integrity)?;
        let skip = (self.skip.min(n as u64)) as usize;
        self.skip -= skip as u64;
        let emit = (self.remaining.min((n - skip) as u64)) as usize;
        out.extend_from_slice(&self.buf[skip..skip + emit]);
        self.remaining -= emit as u64;
        self.buf.clear();
        self.next += 1;
        Ok(())
    }

    fn fail(&mut self, e: CryptError) -> CryptError {
        self.buf.clear();
        self.failed = Some(e.clone());
        e
    }

    /// Check that the stream reached the end it was told about. Nothing is held back, so
    /// `out` only receives bytes on success paths of `update`.
    pub fn finish(self, _out: &mut Vec<u8>) -> Result<()> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.next < self.end || !self.buf.is_empty() {
            return Err(CryptError::Truncated);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("plain_size", &self.plain_size)
            .field("next", &self.next)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }
    fn params(seg: u32, p: u8) -> Params {
        Params {
            nonce_prefix: [p; 16],
            segment: seg,
        }
    }
    fn encrypt(k: &Key, p: &Params, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut e = Encryptor::new(k, p).unwrap();
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            e.update(c, &mut out);
            assert!(e.buf.len() <= p.segment as usize);
        }
        assert_eq!(e.finish(&mut out), data.len() as u64);
        out
    }
    fn decrypt(k: &Key, p: &Params, size: u64, ct: &[u8], chunk: usize) -> Result<Vec<u8>> {
        let mut d = Decryptor::new(k, p, size, 0)?;
        let mut out = Vec::new();
        for c in ct.chunks(chunk.max(1)) {
            d.update(c, &mut out)?;
        }
        d.finish(&mut out)?;
        Ok(out)
    }
    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + 7) as u8).collect()
    }

    proptest! {
        #[test]
        fn round_trip_any_chunking(d in proptest::collection::vec(any::<u8>(), 0..2000),
                                   seg in 1u32..300, c1 in 1usize..700, c2 in 1usize..700) {
            let (k, p) = (key(1), params(seg, 2));
            let ct = encrypt(&k, &p, &d, c1);
            prop_assert_eq!(ct.len() as u64, ciphertext_size(d.len() as u64, seg));
            prop_assert_eq!(&ct, &encrypt(&k, &p, &d, d.len() + 1));
            prop_assert_eq!(decrypt(&k, &p, d.len() as u64, &ct, c2).unwrap(), d);
        }

        #[test]
        fn any_flipped_bit_fails(size in 0usize..600, seg in 1u32..100, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let (k, p, d) = (key(1), params(seg, 2), data(size));
            let mut ct = encrypt(&k, &p, &d, 50);
            let i = pos.index(ct.len());
            ct[i] ^= 1 << bit;
            prop_assert_eq!(decrypt(&k, &p, size as u64, &ct, 64), Err(CryptError::Integrity));
        }

        #[test]
        fn range_reads_return_exact_slice(size in 0u64..3000, seg in 1u32..200,
                                          a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(),
                                          chunk in 1usize..500) {
            let (k, p, d) = (key(3), params(seg, 4), data(size as usize));
            let ct = encrypt(&k, &p, &d, 333);
            let (x, y) = (a.index(size as usize + 1) as u64, b.index(size as usize + 1) as u64);
            let (start, end) = (x.min(y), x.max(y));
            let plan = plan_range(size, seg, start, end).unwrap();
            let mut dec = Decryptor::new_range(&k, &p, size, &plan).unwrap();
            let mut out = Vec::new();
            for c in ct[plan.ct_start as usize..plan.ct_end as usize].chunks(chunk) {
                dec.update(c, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
            prop_assert_eq!(&out[..], &d[start as usize..end as usize]);
        }
    }

    #[test]
    fn empty_plaintext_is_one_tagged_segment() {
        let (k, p) = (key(1), params(64, 2));
        let ct = encrypt(&k, &p, &[], 1);
        assert_eq!(ct.len(), TAG);
        assert_eq!(segment_count(0, 64), 1);
        assert_eq!(decrypt(&k, &p, 0, &ct, 1).unwrap(), b"");
        assert_eq!(decrypt(&k, &p, 0, &[], 1), Err(CryptError::Truncated));
    }

    #[test]
    fn holds_back_full_segment_until_more_input() {
        let (k, p) = (key(1), params(8, 2));
        let mut e = Encryptor::new(&k, &p).unwrap();
        let mut out = Vec::new();
        e.update(&[1; 8], &mut out);
        assert!(out.is_empty());
        e.update(&[2], &mut out);
        assert_eq!(out.len(), 8 + TAG);
        assert_eq!(e.finish(&mut out), 9);
        assert_eq!(out.len(), 8 + 1 + 2 * TAG);
    }

    #[test]
    fn reordered_segments_fail() {
        let (k, p, d) = (key(1), params(16, 2), data(64));
        let ct = encrypt(&k, &p, &d, 7);
        let s = 16 + TAG;
        let mut swapped = ct.clone();
        swapped[..s].copy_from_slice(&ct[s..2 * s]);
        swapped[s..2 * s].copy_from_slice(&ct[..s]);
        assert_eq!(
            decrypt(&k, &p, 64, &swapped, 100),
            Err(CryptError::Integrity)
        );
    }

    #[test]
    fn splices_from_other_objects_fail() {
        let (k, p, d) = (key(1), params(16, 2), data(40));
        let ct = encrypt(&k, &p, &d, 40);
        let s = 16 + TAG;
        for other in [
            encrypt(&k, &params(16, 9), &d, 40),
            encrypt(&key(5), &p, &d, 40),
        ] {
            let mut spliced = ct.clone();
            spliced[s..2 * s].copy_from_slice(&other[s..2 * s]);
            assert_eq!(decrypt(&k, &p, 40, &spliced, 9), Err(CryptError::Integrity));
        }
        assert!(decrypt(&key(5), &p, 40, &ct, 9).is_err());
    }

    #[test]
    fn truncation_and_trailing_bytes_are_detected() {
        let (k, p, d) = (key(1), params(16, 2), data(48));
        let ct = encrypt(&k, &p, &d, 48);
        for cut in [0, 1, 16 + TAG, 2 * (16 + TAG), ct.len() - 1] {
            assert_eq!(
                decrypt(&k, &p, 48, &ct[..cut], 5),
                Err(CryptError::Truncated),
                "cut {cut}"
            );
        }
        let mut long = ct.clone();
        long.push(0);
        assert!(matches!(
            decrypt(&k, &p, 48, &long, 5),
            Err(CryptError::Malformed(_))
        ));
    }

    #[test]
    fn wrong_size_in_record_fails() {
        let (k, p, d) = (key(1), params(16, 2), data(50));
        let ct = encrypt(&k, &p, &d, 50);
        for size in (0..50).chain(51..90) {
            // A lowered size may even line up with a segment boundary: the last flag catches it.
            let r = decrypt(
                &k,
                &p,
                size,
                &ct[..ciphertext_size(size, 16).min(ct.len() as u64) as usize],
                7,
            );
            assert!(r.is_err(), "size {size} accepted");
            assert!(
                decrypt(&k, &p, size, &ct, 7).is_err(),
                "size {size} accepted"
            );
        }
    }

    #[test]
    fn starts_mid_object() {
        let (k, p, d) = (key(1), params(10, 2), data(35));
        let ct = encrypt(&k, &p, &d, 35);
        let mut dec = Decryptor::new(&k, &p, 35, 2).unwrap();
        let mut out = Vec::new();
        dec.update(&ct[2 * (10 + TAG)..], &mut out).unwrap();
        dec.finish(&mut out).unwrap();
        assert_eq!(out, &d[20..]);
        assert!(Decryptor::new(&k, &p, 35, 4).is_err());
    }

    #[test]
    fn bad_params_and_plans_are_rejected_without_panic() {
        let k = key(1);
        assert!(Params::random(0).is_err());
        assert!(Params::random(MAX_SEGMENT + 1).is_err());
        assert_ne!(
            Params::random(64).unwrap().nonce_prefix,
            Params::random(64).unwrap().nonce_prefix
        );
        assert!(Encryptor::new(&k, &params(0, 1)).is_err());
        assert!(Decryptor::new(&k, &params(1, 1), u64::MAX, 0).is_err());
        assert!(plan_range(u64::MAX, 1, 0, 1).is_err());
        assert!(plan_range(10, 4, 3, 11).is_err());
        assert!(plan_range(10, 4, 5, 3).is_err());
        let plan = plan_range(100, 16, 10, 40).unwrap();
        assert_eq!(
            plan,
            RangePlan {
                first_segment: 0,
                ct_start: 0,
                ct_end: 96,
                skip: 10,
                len: 30
            }
        );
        let forged = RangePlan { len: 1000, ..plan };
        assert!(Decryptor::new_range(&k, &params(16, 1), 100, &forged).is_err());
        let forged = RangePlan {
            ct_end: u64::MAX,
            ..plan
        };
        assert!(Decryptor::new_range(&k, &params(16, 1), 100, &forged).is_err());
    }

    #[test]
    fn failed_decryptor_stays_failed() {
        let (k, p, d) = (key(1), params(8, 2), data(20));
        let mut ct = encrypt(&k, &p, &d, 20);
        ct[0] ^= 1;
        let mut dec = Decryptor::new(&k, &p, 20, 0).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            dec.update(&ct[..8 + TAG], &mut out),
            Err(CryptError::Integrity)
        );
        assert_eq!(
            dec.update(&ct[8 + TAG..], &mut out),
            Err(CryptError::Integrity)
        );
        assert!(out.is_empty());
        assert_eq!(dec.finish(&mut out), Err(CryptError::Integrity));
    }
}
