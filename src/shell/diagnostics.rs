//! tend's own diagnostics on stderr, filtered by tini-style verbosity.

use crate::core::{Level, Note};
use std::io::Write;

/// tini's levels: 1 (default) shows errors and warnings, 2 adds info, 3 adds debug.
#[derive(Clone, Copy, Debug)]
pub struct Logger {
    pub verbosity: u8,
    /// tini's `-w`: reaping an orphan is worth a warning.
    pub warn_on_reap: bool,
}

impl Logger {
    pub fn note(&self, note: &Note) {
        if let Some(line) = self.render_note(note) {
            write_stderr(&line);
        }
    }

    /// The line for `note`, or None when the verbosity hides it.
    pub fn render_note(&self, note: &Note) -> Option<String> {
        let level = match note {
            Note::OrphanReaped { .. } if self.warn_on_reap => Level::Warn,
            _ => note.level(),
        };
        self.render(level, format_args!("{note}"))
    }

    pub fn say(&self, level: Level, msg: std::fmt::Arguments<'_>) {
        if let Some(line) = self.render(level, msg) {
            write_stderr(&line);
        }
    }

    pub fn render(&self, level: Level, msg: std::fmt::Arguments<'_>) -> Option<String> {
        let needed = match level {
            Level::Error => 0,
            Level::Warn => 1,
            Level::Info => 2,
            Level::Debug => 3,
        };
        if self.verbosity < needed {
            return None;
        }
        let word = match level {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        };
        Some(format!("tend: {word}: {msg}\n"))
    }
}

/// One write per line so lines from tend and its children do not interleave mid-line.
/// Nothing useful can be done if stderr is gone; tend must carry on regardless.
fn write_stderr(line: &str) {
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
