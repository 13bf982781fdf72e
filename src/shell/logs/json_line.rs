//! Service lines in the JSON log format (`log-format = "json"`), one object per line:
//! `{"time":"…","service":"web","stream":"stdout","line":"…"}` (`time` only with
//! `log-timestamps`).
//!
//! Everything before a line's text is the same for every line of a chunk, so it is put
//! together once per chunk ([`head`]); each line then costs one copy of that head and its
//! text escaped ([`escape_into`]) straight into the output queue: runs of printable ASCII are
//! found sixteen bytes at a time (`sys::bytes::json_plain`) and copied as they are, and only
//! the rest of a line with a byte of 0x80 or above is checked as UTF-8 (measured: formatting
//! each line through `from_utf8_lossy(..).chars()` ran at 80 MB/s on 100-byte lines).

use crate::sys::bytes;

/// Where escaped text goes: a `Vec`, or the output queue itself.
pub trait Put {
    fn put(&mut self, bytes: &[u8]);
}

impl Put for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// What goes before a line's escaped text: the object up to the opening quote of `line`.
pub fn head(stamp: Option<&str>, service: &str, stream: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + service.len());
    out.push(b'{');
    if let Some(stamp) = stamp {
        out.extend_from_slice(b"\"time\":\"");
        escape_into(&mut out, stamp.as_bytes());
        out.extend_from_slice(b"\",");
    }
    out.extend_from_slice(b"\"service\":\"");
    escape_into(&mut out, service.as_bytes());
    out.extend_from_slice(b"\",\"stream\":\"");
    escape_into(&mut out, stream.as_bytes());
    out.extend_from_slice(b"\",\"line\":\"");
    out
}

/// What goes after a line's escaped text.
pub const TAIL: &[u8] = b"\"}\n";

/// A followed line as the control protocol sends it (`Response::LogLine`, one JSON line),
/// written with this module's escaping instead of serde's, which costs a follower's every
/// line several times as much (measured: serde's string escaping was an eighth of all the
/// time on a followed busy service). Equal to `proto::encode` of the same line once parsed.
pub fn log_line_response(service: &str, stream: &str, time_ms: u64, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + service.len() + text.len());
    out.extend_from_slice(b"{\"reply\":\"log-line\",\"service\":\"");
    escape_into(&mut out, service.as_bytes());
    out.extend_from_slice(b"\",\"stream\":\"");
    escape_into(&mut out, stream.as_bytes());
    out.extend_from_slice(b"\",\"time_ms\":");
    out.extend_from_slice(time_ms.to_string().as_bytes());
    out.extend_from_slice(b",\"line\":\"");
    escape_into(&mut out, text);
    out.extend_from_slice(TAIL);
    out
}

/// `bytes` as the inside of a JSON string: `"` `\` and control characters escaped, invalid
/// UTF-8 replaced by U+FFFD (as `String::from_utf8_lossy` does).
pub fn escape_into(out: &mut impl Put, bytes: &[u8]) {
    let mut rest = bytes;
    loop {
        let plain = bytes::json_plain(rest);
        let (run, after) = rest.split_at_checked(plain).unwrap_or((rest, &[]));
        out.put(run);
        let Some((&c, tail)) = after.split_first() else {
            return;
        };
        if c >= 0x80 {
            // Everything before was ASCII, so `after` starts a character: the line is UTF-8
            // if and only if `after` is, and replacing what is not gives the same.
            match std::str::from_utf8(after) {
                Ok(text) => escape_valid(out, text.as_bytes()),
                Err(_) => escape_valid(out, String::from_utf8_lossy(after).as_bytes()),
            }
            return;
        }
        put_escape(out, c);
        rest = tail;
    }
}

/// The escape of `c`, a quote, a backslash or a control character.
fn put_escape(out: &mut impl Put, c: u8) {
    let unicode;
    let escaped: &[u8] = match c {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        c => {
            unicode = [b'\\', b'u', b'0', b'0', b'0' + (c >> 4), hex_digit(c & 0xf)];
            &unicode
        }
    };
    out.put(escaped);
}

/// Escapes valid UTF-8 (the rest of a line that is not all ASCII). Multi-byte characters
/// need no escaping (their bytes are all 0x80 or above), so the work is finding the few ASCII
/// bytes that do.
fn escape_valid(out: &mut impl Put, bytes: &[u8]) {
    let mut copied = 0; // bytes[..copied] are in `out` already
    let mut at = 0;
    // (Measured with the release profile's opt-level: faster than chunks_exact or
    // split_first_chunk on short lines, and as fast on long ones.)
    while at < bytes.len() {
        let rest = bytes.get(at..).unwrap_or_default();
        if let Some(word) = rest.first_chunk::<8>()
            && !needs_escape(u64::from_le_bytes(*word))
        {
            at += 8;
            continue;
        }
        let part = rest.get(..8).unwrap_or(rest);
        escape_bytes(out, bytes, at, part, &mut copied);
        at += part.len();
    }
    out.put(bytes.get(copied..).unwrap_or_default());
}

/// Escapes what needs it in `part`, which starts at `bytes[at]`: the bytes since `copied` go
/// to `out` as they are, then the escape.
#[inline(always)]
fn escape_bytes(out: &mut impl Put, bytes: &[u8], at: usize, part: &[u8], copied: &mut usize) {
    for (i, &c) in (at..).zip(part) {
        if c >= 0x20 && c != b'"' && c != b'\\' {
            continue;
        }
        // Only ever `copied <= i`: an escape is rare, so this is no per-byte cost.
        out.put(bytes.get(*copied..i).unwrap_or_default());
        put_escape(out, c);
        *copied = i + 1;
    }
}

/// The lower-case hexadecimal digit of `n` (below 16).
fn hex_digit(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'a' + n - 10 }
}

/// Whether any of the eight bytes of `word` is `"`, `\` or below 0x20. Each test is the
/// classic "has a byte less than n" word trick, which never misses and never reports a
/// byte that is not there (a borrow only starts at a byte that is below n).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGHS != 0;
    below(word, 0x20) || below(word ^ (ONES * 0x22), 1) || below(word ^ (ONES * 0x5c), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The escaping done one character at a time, the obvious way.
    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in String::from_utf8_lossy(bytes).chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        out
    }

    fn escaped(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        escape_into(&mut out, bytes);
        out
    }

    #[test]
    fn escapes_quotes_backslashes_controls_and_bad_utf8() {
        assert_eq!(
            escaped(b"a\"b\\c\n\x01\xff"),
            b"a\\\"b\\\\c\\n\\u0001\xef\xbf\xbd"
        );
        assert_eq!(
            escaped(b"\x1b[31mred\x1b[0m\r\t"),
            b"\\u001b[31mred\\u001b[0m\\r\\t"
        );
        assert_eq!(
            escaped("h\u{e9}llo \u{1f600}".as_bytes()),
            "h\u{e9}llo \u{1f600}".as_bytes()
        );
        assert_eq!(escaped(b""), b"");
        assert_eq!(escaped(b"0123456789abcdef\""), b"0123456789abcdef\\\"");
    }

    #[test]
    fn the_word_test_finds_each_special_byte_in_each_place() {
        for special in (0u8..0x20).chain([b'"', b'\\']) {
            for place in 0..8 {
                let mut word = *b"abcdefgh";
                word[place] = special;
                assert!(
                    needs_escape(u64::from_le_bytes(word)),
                    "{special} at {place}"
                );
            }
        }
        for plain in (0x20u8..=0xff).filter(|b| *b != b'"' && *b != b'\\') {
            assert!(!needs_escape(u64::from_le_bytes([plain; 8])), "{plain}");
        }
    }

    #[test]
    fn the_head_makes_a_whole_object_with_the_line() {
        let mut line = head(Some("2026-11-25T19:32:15.123Z"), "we\"b", "stderr");
        escape_into(&mut line, b"x\ty");
        line.extend_from_slice(TAIL);
        let parsed: serde_json::Value =
            serde_json::from_slice(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(
            parsed,
            serde_json::json!({
                "time": "2026-11-25T19:32:15.123Z",
                "service": "we\"b",
                "stream": "stderr",
                "line": "x\ty",
            })
        );
        assert!(line.ends_with(b"}\n"));
        assert!(!head(None, "web", "stdout").starts_with(b"{\"time\""));
    }

    #[test]
    fn a_followed_line_reads_back_as_the_protocol_s_log_line() {
        use crate::proto::{LogLine, Response};
        for text in [
            &b"GET / 200"[..],
            b"",
            b"a\"b\\c\x08\x0c\x1b[0m\xff",
            "\u{e9}\u{1f600}".as_bytes(),
        ] {
            let bytes = log_line_response("we\"b", "stderr", 1_764_000_000_123, text);
            assert!(bytes.ends_with(b"}\n") && bytes.iter().filter(|&&b| b == b'\n').count() == 1);
            let parsed: Response = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
            let want = Response::LogLine(LogLine {
                service: "we\"b".into(),
                stream: "stderr".into(),
                time_ms: 1_764_000_000_123,
                line: String::from_utf8_lossy(text).into_owned(),
            });
            assert_eq!(parsed, want);
            let by_serde: Response = serde_json::from_slice(&crate::proto::encode(&want))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed, by_serde);
        }
    }

    proptest! {
        /// Any bytes: the same escaping as the character-by-character way, and JSON that
        /// reads back as the lossy text.
        #[test]
        fn same_as_char_by_char_and_reads_back(
            bytes in proptest::collection::vec(
                prop_oneof![
                    4 => b'a'..=b'z',
                    1 => 0u8..0x20,
                    1 => Just(b'"'),
                    1 => Just(b'\\'),
                    2 => 0x80u8..=0xff,
                ],
                0..80,
            ),
            text in "\\PC{0,20}",
        ) {
            let mut all = bytes.clone();
            all.extend_from_slice(text.as_bytes());
            let got = escaped(&all);
            prop_assert_eq!(&got, &reference(&all));
            let mut quoted = b"\"".to_vec();
            quoted.extend_from_slice(&got);
            quoted.push(b'"');
            let back: String = serde_json::from_slice(&quoted).unwrap_or_else(|e| panic!("{e}"));
            prop_assert_eq!(back, String::from_utf8_lossy(&all).into_owned());
        }
    }
}
