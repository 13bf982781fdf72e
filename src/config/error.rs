//! Configuration errors: a byte span in the source becomes `FILE:LINE:COLUMN` plus the
//! offending line with the span underlined.
//!
//! The error keeps only the one source line it shows, not the whole file, so it can outlive
//! the source text and be moved around freely.

use std::fmt;
use std::ops::Range;

/// Why a configuration could not be loaded, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or whatever the caller named the source).
    pub origin: String,
    /// 1-based line of the error.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What is wrong, in one sentence, without the location.
    pub message: String,
    /// Boxed to keep `Result<_, ConfigError>` small on the happy path.
    detail: Box<Detail>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Detail {
    excerpt: Option<Excerpt>,
    help: Option<String>,
}

/// The source line to show and the part of it to underline.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Excerpt {
    text: String,
    span: Range<usize>,
}

impl ConfigError {
    /// An error with no source line to show (the file could not be read at all).
    pub(crate) fn bare(origin: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: origin.to_string(),
            line: 1,
            column: 1,
            message: message.into(),
            detail: Box::new(Detail {
                excerpt: None,
                help: None,
            }),
        }
    }

    /// Adds a `= help:` line under the excerpt.
    pub(crate) fn with_help(mut self, help: impl Into<String>) -> ConfigError {
        self.detail.help = Some(help.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.origin, self.line, self.column, self.message
        )?;
        let Some(excerpt) = &self.detail.excerpt else {
            if let Some(help) = &self.detail.help {
                write!(f, "\n  = help: {help}")?;
            }
            return Ok(());
        };
        // Plain text, rustc's layout: the message goes to logs and terminals alike, and
        // colour codes in a container log are noise.
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        let text = excerpt.text.trim_end_matches(['\n', '\r']);
        let before = text.get(..excerpt.span.start).unwrap_or("").chars().count();
        let width = text
            .get(excerpt.span.clone())
            .map_or(0, |s| s.chars().count())
            .max(1);
        write!(
            f,
            "\n{gutter} |\n{number} | {text}\n{gutter} | {}{}",
            " ".repeat(before),
            "^".repeat(width)
        )?;
        if let Some(help) = &self.detail.help {
            write!(f, "\n{gutter} |\n{gutter} = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The text being loaded, able to turn byte offsets into positions and errors.
pub(crate) struct Source<'a> {
    pub origin: &'a str,
    pub text: &'a str,
}

impl<'a> Source<'a> {
    pub fn new(origin: &'a str, text: &'a str) -> Source<'a> {
        Source { origin, text }
    }

    /// An error whose excerpt underlines `span`. Spans running past the end of their first
    /// line are cut there: one line is enough to recognise the place, and a whole table
    /// underlined would bury the message.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let (line, column, line_range) = self.position(start);
        let start = start.min(line_range.end);
        let line_text = &self.text[line_range.clone()];
        let end = span.end.clamp(start, line_range.end);
        let end = floor_char_boundary(self.text, end).max(start);
        ConfigError {
            origin: self.origin.to_string(),
            line,
            column,
            message: message.into(),
            detail: Box::new(Detail {
                excerpt: Some(Excerpt {
                    text: line_text.to_string(),
                    span: start - line_range.start..end - line_range.start,
                }),
                help: None,
            }),
        }
    }

    /// `FILE:LINE:COLUMN` of a byte offset, for warnings.
    pub fn location(&self, offset: usize) -> String {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let (line, column, _) = self.position(offset);
        format!("{}:{}:{}", self.origin, line, column)
    }

    /// 1-based line and character column of a byte offset, as errors give them.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(self.text, offset.min(self.text.len()));
        let (line, column, _) = self.position(offset);
        (line, column)
    }

    /// 1-based line and character column of `offset` (a char boundary), and the byte range
    /// of its line without the line ending.
    fn position(&self, offset: usize) -> (usize, usize, Range<usize>) {
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let rest = &self.text[line_start..];
        let mut line_end = line_start + rest.find('\n').unwrap_or(rest.len());
        if self.text[line_start..line_end].ends_with('\r') {
            line_end -= 1;
        }
        // An offset on the line ending itself counts as the end of the line.
        let offset = offset.min(line_end);
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column, line_start..line_end)
    }
}

/// The largest char boundary at or below `i` (`str::floor_char_boundary` is not stable yet).
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An error from the TOML parser or from serde, placed at its span.
pub(crate) fn from_toml(source: &Source<'_>, error: &toml::de::Error) -> ConfigError {
    let span = error.span().unwrap_or(0..0);
    // serde speaks of "fields"; in a TOML file they are keys.
    let message = error
        .message()
        .trim()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("unknown variant", "invalid value")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table");
    source.error(span, message)
}

/// Bytes that are not UTF-8: the error points at the first invalid byte.
pub(crate) fn not_utf8(origin: &str, bytes: &[u8], error: std::str::Utf8Error) -> ConfigError {
    let valid = error.valid_up_to();
    let lossy = String::from_utf8_lossy(bytes);
    // The valid prefix is unchanged by the lossy conversion, so `valid` is still the offset
    // of the first bad byte (now a replacement character).
    let source = Source::new(origin, &lossy);
    let byte = bytes.get(valid).copied().unwrap_or_default();
    source.error(
        valid..valid + 1,
        format!("the file is not valid UTF-8 (byte 0x{byte:02X}); TOML files must be UTF-8"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters_and_lines() {
        let text = "a = 1\nbé = \"x\"\r\nc = 3";
        let src = Source::new("f.toml", text);
        let e = src.error(text.find("\"x\"").unwrap()..text.len(), "bad");
        assert_eq!((e.line, e.column), (2, 6));
        assert_eq!(
            e.to_string(),
            "f.toml:2:6: error: bad\n  |\n2 | bé = \"x\"\n  |      ^^^"
        );
        assert_eq!(src.location(text.len()), "f.toml:3:6");
        assert_eq!(src.location(usize::MAX), "f.toml:3:6");
    }

    #[test]
    fn spans_at_the_end_and_in_empty_input_do_not_panic() {
        let src = Source::new("f.toml", "");
        let e = src.error(5..9, "empty");
        assert_eq!((e.line, e.column), (1, 1));
        assert!(e.to_string().starts_with("f.toml:1:1: error: empty\n"));
        let src = Source::new("f.toml", "x\n");
        let e = src.error(2..2, "eof");
        assert_eq!((e.line, e.column), (2, 1));
        let src = Source::new("f.toml", "é");
        let e = src.error(1..2, "inside a char");
        assert_eq!((e.line, e.column), (1, 1));
    }

    #[test]
    fn help_is_rendered_under_the_excerpt() {
        let src = Source::new("f.toml", "x = 1");
        let e = src.error(0..1, "bad").with_help("try y");
        assert_eq!(
            e.to_string(),
            "f.toml:1:1: error: bad\n  |\n1 | x = 1\n  | ^\n  |\n  = help: try y"
        );
        let e = ConfigError::bare("f.toml", "gone").with_help("look");
        assert_eq!(e.to_string(), "f.toml:1:1: error: gone\n  = help: look");
    }

    #[test]
    fn invalid_utf8_points_at_the_first_bad_byte() {
        let bytes: Vec<u8> = b"a = 1\nb = \"\xff\"\n".to_vec();
        let err = std::str::from_utf8(&bytes).unwrap_err();
        let e = not_utf8("f.toml", &bytes, err);
        assert_eq!((e.line, e.column), (2, 6));
        assert!(e.message.contains("0xFF"), "{}", e.message);
    }
}
