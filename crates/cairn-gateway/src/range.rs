//! `Range: bytes=...` for file responses: one range is served as 206, several as the whole 200,
//! a syntactically invalid header is ignored (RFC 9110 §14.2), a range starting at or past the
//! end is 416.

use std::ops::Range;

/// What a `Range` header asks of a representation of a known size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable range: the whole body (absent, multi-range, other unit, bad syntax).
    Whole,
    /// One satisfiable range (half-open, within the size).
    Single(Range<u64>),
    /// A range that selects nothing of the body: 416.
    Unsatisfiable,
}

fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A position past u64::MAX is still a valid (huge) position.
    Some(s.parse().unwrap_or(u64::MAX))
}

/// Interprets `header` (the `Range` value, if any) against a body of `size` bytes.
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(header) = header else {
        return RangeRequest::Whole;
    };
    let header = header.trim();
    let Some((unit, spec)) = header.split_once('=') else {
        return RangeRequest::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // suffix range: the last N bytes
        return match number(last) {
            None => RangeRequest::Whole,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Single(size - n.min(size)..size),
        };
    }
    let Some(first) = number(first) else {
        return RangeRequest::Whole;
    };
    let last = match last {
        "" => None,
        last => match number(last) {
            Some(last) if last >= first => Some(last),
            _ => return RangeRequest::Whole,
        },
    };
    if first >= size {
        return RangeRequest::Unsatisfiable;
    }
    let end = last.map_or(size, |last| last.saturating_add(1).min(size));
    RangeRequest::Single(first..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn single_ranges() {
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Whole);
        assert_eq!(r("bytes=0-0"), Single(0..1));
        assert_eq!(r("bytes=0-499"), Single(0..500));
        assert_eq!(r("bytes=500-"), Single(500..1000));
        assert_eq!(r("bytes=990-5000"), Single(990..1000));
        assert_eq!(r("bytes=-10"), Single(990..1000));
        assert_eq!(r("bytes=-5000"), Single(0..1000));
        assert_eq!(r("BYTES = 1-2 "), Single(1..3));
        assert_eq!(r("bytes=999-99999999999999999999999"), Single(999..1000));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=5000-6000"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-5"), 0), Unsatisfiable);
        // several ranges: the whole body
        assert_eq!(r("bytes=0-1,5-6"), Whole);
        // invalid: ignored
        for bad in [
            "bytes=5-1",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1-x",
            "items=0-1",
            "bytes 0-1",
            "bytes=+1-2",
            "bytes=--1",
            "0-1",
        ] {
            assert_eq!(r(bad), Whole, "{bad}");
        }
    }
}
