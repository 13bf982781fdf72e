//! Byte search through the C library's `memchr`.
//!
//! glibc picks a `memchr` for this CPU when the program starts (AVX2 or EVEX on current
//! machines) and its start-up cost per call is small: the log path calls it once per line,
//! and lines are short, so the per-call cost is what counts (measured on 100-byte lines).

/// The offset of the first `byte` in `haystack`.
#[inline]
pub fn find(byte: u8, haystack: &[u8]) -> Option<usize> {
    let start = haystack.as_ptr();
    // SAFETY: `start` and `haystack.len()` describe one live, initialised slice, and
    // memchr reads no further than that length; the result is either null or a pointer
    // into that same slice.
    let found = unsafe { libc::memchr(start.cast(), i32::from(byte), haystack.len()) };
    if found.is_null() {
        None
    } else {
        Some(found as usize - start as usize)
    }
}

/// The offset of the last `byte` in `haystack`.
#[inline]
pub fn find_last(byte: u8, haystack: &[u8]) -> Option<usize> {
    let start = haystack.as_ptr();
    // SAFETY: as for `find`: one live, initialised slice, read no further than its length,
    // and the result is null or a pointer into it.
    let found = unsafe { libc::memrchr(start.cast(), i32::from(byte), haystack.len()) };
    if found.is_null() {
        None
    } else {
        Some(found as usize - start as usize)
    }
}

/// How many times `byte` occurs in `haystack`.
pub fn count(byte: u8, haystack: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = haystack;
    while let Some(i) = find(byte, rest) {
        n += 1;
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::{count, find, find_last};

    #[test]
    fn finds_the_last_occurrence_and_counts() {
        assert_eq!(find_last(b'\n', b""), None);
        assert_eq!(find_last(b'\n', b"a\nb\nc"), Some(3));
        assert_eq!(count(b'\n', b"a\nb\n\n"), 3);
        assert_eq!(count(b'\n', b"abc"), 0);
    }

    #[test]
    fn finds_the_first_occurrence_or_none() {
        assert_eq!(find(b'\n', b""), None);
        assert_eq!(find(b'\n', b"abc"), None);
        assert_eq!(find(b'\n', b"\n"), Some(0));
        assert_eq!(find(b'\n', b"ab\ncd\n"), Some(2));
        let long: Vec<u8> = (0..10_000)
            .map(|i| if i == 9_999 { b'\n' } else { b'x' })
            .collect();
        assert_eq!(find(b'\n', &long), Some(9_999));
        assert_eq!(find(b'\n', &long[..9_999]), None);
    }
}
