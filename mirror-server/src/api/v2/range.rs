//! The `Range` header of blob GETs (RFC 9110 §14), single ranges only.
//!
//! Anything this server does not serve as a partial response (other units,
//! several ranges, syntax errors) is ignored and the whole blob is sent,
//! which the RFC allows. Pure: no IO.

/// What to send for a blob of a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole blob (200).
    Full,
    /// Bytes `start..=end` (206).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range lies outside the blob (416).
    Unsatisfiable,
}

/// Interprets a `Range` header value for a blob of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // "-N": the last N bytes.
        (true, false) => match num(last) {
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            None => ByteRange::Full,
        },
        // "A-": from A to the end.
        (false, true) => match num(first) {
            Some(a) if a >= size => ByteRange::Unsatisfiable,
            Some(a) => ByteRange::Partial {
                start: a,
                end: size - 1,
            },
            None => ByteRange::Full,
        },
        // "A-B".
        (false, false) => match (num(first), num(last)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Partial {
                        start: a,
                        end: b.min(size - 1),
                    }
                }
            }
            _ => ByteRange::Full,
        },
        (true, true) => ByteRange::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange::*;
    use super::*;

    fn check(header: Option<&str>, size: u64, expected: ByteRange) {
        assert_eq!(parse_range(header, size), expected, "{header:?} of {size}");
    }

    #[test]
    fn ranges() {
        check(None, 10, Full);
        check(Some("bytes=0-4"), 10, Partial { start: 0, end: 4 });
        check(Some("bytes=5-"), 10, Partial { start: 5, end: 9 });
        check(Some("bytes=5-100"), 10, Partial { start: 5, end: 9 });
        check(Some("bytes=-3"), 10, Partial { start: 7, end: 9 });
        check(Some("bytes=-30"), 10, Partial { start: 0, end: 9 });
        check(Some("bytes=9-9"), 10, Partial { start: 9, end: 9 });
        check(Some("bytes=10-"), 10, Unsatisfiable);
        check(Some("bytes=10-20"), 10, Unsatisfiable);
        check(Some("bytes=-0"), 10, Unsatisfiable);
        check(Some("bytes=0-"), 0, Unsatisfiable);
        check(Some("bytes=5-4"), 10, Full);
        check(Some("bytes=0-1,3-4"), 10, Full);
        check(Some("items=0-1"), 10, Full);
        check(Some("bytes=a-b"), 10, Full);
        check(Some("bytes=-"), 10, Full);
        check(Some("bytes=+1-2"), 10, Full);
    }
}
