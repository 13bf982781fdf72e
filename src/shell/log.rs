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
        let level = match note {
            Note::OrphanReaped { .. } if self.warn_on_reap => Level::Warn,
            _ => note.level(),
        };
        self.say(level, format_args!("{note}"));
    }

    pub fn say(&self, level: Level, msg: std::fmt::Arguments<'_>) {
        let needed = match level {
            Level::Error => 0,
            Level::Warn => 1,
            Level::Info => 2,
            Level::Debug => 3,
        };
        if self.verbosity < needed {
            return;
        }
        let word = match level {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        };
        // One write per line so lines from tend and its children do not interleave mid-line.
        let line = format!("tend: {word}: {msg}\n");
        // Nothing useful can be done if stderr is gone; tend must carry on regardless.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}
