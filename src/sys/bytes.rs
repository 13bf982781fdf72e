//! Byte search through the C library's `memchr`, and the log path's per-line loop built on it.
//!
//! glibc picks a `memchr` for this CPU when the program starts (AVX2 or EVEX on current
//! machines) and its start-up cost per call is small: the log path calls it once per line,
//! and lines are short, so the per-call cost is what counts (measured on 100-byte lines).

use std::ptr;

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

/// What [`prefix_lines`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefixed {
    /// Bytes of the input taken: whole lines, each with its newline.
    pub read: usize,
    /// Bytes put into the output.
    pub written: usize,
    /// Lines taken.
    pub lines: usize,
}

/// Copies the lines at the front of `input` into `out`, each as `prefix`, the line and its
/// newline, as a minimal C prefixer does (bench/supervisor-prefix.c): per line one `memchr`
/// and two copies, and one comparison of lengths for room instead of a bounds check per
/// slice (at the release profile's opt-level "z" each of those is a call of its own, which
/// made this loop cost tend twice what it costs the C program).
///
/// Stops before the first line that does not end in `input`, that is longer than
/// `max_line` bytes without its newline, or for which `out` has no room left.
pub fn prefix_lines(input: &[u8], prefix: &[u8], max_line: usize, out: &mut [u8]) -> Prefixed {
    let mut done = Prefixed::default();
    let src = input.as_ptr();
    let dst = out.as_mut_ptr();
    while done.read < input.len() {
        let left = input.len() - done.read;
        // SAFETY: `done.read < input.len()`, so `at` points into `input`, with `left` bytes
        // of it from there on.
        let at = unsafe { src.add(done.read) };
        // SAFETY: memchr reads at most `left` bytes from `at`, all of them inside `input`;
        // the result is null or a pointer into those bytes.
        let found = unsafe { libc::memchr(at.cast(), i32::from(b'\n'), left) };
        if found.is_null() {
            break;
        }
        // The line with its newline: at least 1 and at most `left` bytes.
        let len = found as usize - at as usize + 1;
        let whole = prefix.len() + len;
        if len - 1 > max_line || out.len() - done.written < whole {
            break;
        }
        // SAFETY: `out[done.written..done.written + whole]` lies inside `out` (checked just
        // above), `input[done.read..done.read + len]` inside `input` (`len <= left`), and
        // `prefix` is read whole; `out` is borrowed mutably, so neither source overlaps it.
        unsafe {
            let to = dst.add(done.written);
            ptr::copy_nonoverlapping(prefix.as_ptr(), to, prefix.len());
            ptr::copy_nonoverlapping(at, to.add(prefix.len()), len);
        }
        done.read += len;
        done.written += whole;
        done.lines += 1;
    }
    done
}

/// How many bytes at the front of `text` a JSON string takes as they are: printable ASCII
/// other than `"` and `\` (not a control character, a quote, a backslash or a byte of a
/// multi-byte character, which the caller escapes or checks as UTF-8). Sixteen bytes at a time
/// with SSE2, which every x86-64 processor has: one pass that both looks for what needs
/// escaping and finds out that the text is ASCII, so needs no UTF-8 check of its own.
pub fn json_plain(text: &[u8]) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    // SAFETY: SSE2 is part of x86-64 itself, and this build has it (the cfg above).
    let at = unsafe { json_plain_sse2(text) };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let at = 0;
    let rest = text.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|&c| !(0x20..0x80).contains(&c) || c == b'"' || c == b'\\')
        .unwrap_or(rest.len())
}

/// [`json_plain`] for whole blocks of sixteen bytes: where the first byte to look at is, or
/// the end of the last whole block.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn json_plain_sse2(text: &[u8]) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let last_control = _mm_set1_epi8(0x1f);
    let mut at = 0;
    while text.len() - at >= 16 {
        // SAFETY: `at + 16 <= text.len()`: the 16 bytes read lie inside `text`, and an
        // unaligned load has no alignment requirement.
        let x = unsafe { _mm_loadu_si128(text.as_ptr().add(at).cast()) };
        let special = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
            // A byte is at most 0x1f when the larger of it and 0x1f is 0x1f.
            _mm_cmpeq_epi8(_mm_max_epu8(x, last_control), last_control),
        );
        // The sign bit of each byte of `x` marks a byte of 0x80 or above.
        let stop = (_mm_movemask_epi8(special) | _mm_movemask_epi8(x)) as u32;
        if stop != 0 {
            return at + stop.trailing_zeros() as usize;
        }
        at += 16;
    }
    at
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
    use super::{Prefixed, count, find, find_last, json_plain, prefix_lines};

    #[test]
    fn json_plain_stops_at_each_byte_that_needs_a_look_in_each_place() {
        for len in [0, 1, 15, 16, 17, 40] {
            let plain = vec![b'a'; len];
            assert_eq!(json_plain(&plain), len);
            for at in 0..len {
                for stop in (0u8..0x20).chain([b'"', b'\\', 0x7f + 1, 0xc3, 0xff]) {
                    let mut text = plain.clone();
                    text[at] = stop;
                    assert_eq!(json_plain(&text), at, "{stop:#x} at {at} of {len}");
                }
            }
        }
        let printable: Vec<u8> = (0x20u8..0x80)
            .filter(|&c| c != b'"' && c != b'\\')
            .collect();
        assert_eq!(json_plain(&printable), printable.len());
    }

    #[test]
    fn prefix_lines_stops_at_a_partial_line_a_long_line_or_a_full_output() {
        let mut out = [0u8; 64];
        let done = prefix_lines(b"ab\n\ncd\nef", b"> ", 10, &mut out);
        let want = Prefixed {
            read: 7,
            written: 13,
            lines: 3,
        };
        assert_eq!(done, want);
        assert_eq!(&out[..13], b"> ab\n> \n> cd\n");
        // A line longer than `max_line` is left for the caller, with what follows it.
        let done = prefix_lines(b"ab\nlong line\ncd\n", b"> ", 5, &mut out);
        assert_eq!((done.read, done.lines), (3, 1));
        assert_eq!(prefix_lines(b"123456\n", b"", 5, &mut out).lines, 0);
        assert_eq!(prefix_lines(b"12345\n", b"", 5, &mut out).lines, 1);
        // Only lines that fit whole, prefix and all.
        let mut small = [0u8; 14];
        let done = prefix_lines(b"ab\ncd\nef\n", b"> ", 10, &mut small);
        assert_eq!((done.read, done.written, done.lines), (6, 10, 2));
        assert_eq!(&small[..10], b"> ab\n> cd\n");
        assert_eq!(
            prefix_lines(b"", b"> ", 10, &mut small),
            Prefixed::default()
        );
        assert_eq!(
            prefix_lines(b"ab\n", b"> ", 10, &mut []),
            Prefixed::default()
        );
    }

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
