//! What converting the document needs besides the document itself: where it came from (for
//! `FILE:LINE:COLUMN` in errors and warnings), the directory relative paths start from, the
//! user and group files, and the warnings found so far; with the helpers every part of the
//! conversion uses to read a value and to point at it.
//!
//! The parts of the conversion (`convert`, `launch`, `depends`, `probes`) each add their own
//! methods in their own file; this one imports none of them.

use super::duration::{self, DurationValue};
use super::error::{ConfigError, Source};
use super::users::Accounts;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// What converting needs besides the document: where it came from, and what it has found
/// worth a warning so far.
pub(super) struct Context<'a> {
    pub source: &'a Source<'a>,
    pub base_dir: &'a Path,
    pub accounts: Accounts,
    pub warnings: Vec<String>,
}

impl Context<'_> {
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        self.source.error(span, message)
    }

    pub fn warn(&mut self, offset: usize, message: impl std::fmt::Display) {
        let location = self.source.location(offset);
        self.warnings
            .push(format!("{location}: warning: {message}"));
    }

    /// The source span of bytes `part` of a string value, when the string is written
    /// without escapes (so offsets in the value and in the file agree); otherwise the whole
    /// value.
    pub fn inside_string(
        &self,
        span: Range<usize>,
        value: &str,
        part: Range<usize>,
    ) -> Range<usize> {
        let raw = self.source.text.get(span.clone()).unwrap_or_default();
        for delimiter in ["\"\"\"", "'''", "\"", "'"] {
            let d = delimiter.len();
            if raw.len() >= 2 * d
                && raw.starts_with(delimiter)
                && raw.ends_with(delimiter)
                && raw.get(d..raw.len() - d) == Some(value)
            {
                let start = span.start + d;
                return start + part.start..start + part.end;
            }
        }
        span
    }

    pub fn duration(&self, value: &Spanned<DurationValue>) -> Result<Duration, ConfigError> {
        duration::parse(value.get_ref()).map_err(|m| self.error(value.span(), m))
    }

    /// A path from the file; relative ones are relative to the file's directory, which is
    /// the only reading that does not change with the directory tend was started in.
    pub fn path(&self, value: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let text = value.get_ref();
        if text.is_empty() {
            return Err(self.error(value.span(), format!("`{key}` is an empty path")));
        }
        self.no_nul(value.span(), text, key)?;
        Ok(self.base_dir.join(text))
    }

    /// The kernel takes C strings: a NUL would cut the value short or fail at spawn time,
    /// long after the config was accepted.
    pub fn no_nul(&self, span: Range<usize>, text: &str, what: &str) -> Result<(), ConfigError> {
        if text.contains('\0') {
            return Err(self.error(span, format!("{what} contains a NUL character")));
        }
        Ok(())
    }
}
