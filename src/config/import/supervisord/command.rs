//! A program's `command` as supervisord runs it: expanded, then split into words by Python's
//! `shlex.split` (POSIX rules, no comments), then executed with no shell.
//!
//! `%(ENV_X)s` was read from supervisord's environment when it started. tend has no
//! expansion of its own without a shell, so such a command becomes a `/bin/sh -c` line in
//! which everything but the variables is quoted: the shell adds nothing of its own (no
//! `;`, no globbing), and a variable is split into words where shlex would have split it
//! (outside quotes) and kept whole where it would not (inside quotes).

use super::expand::Piece;

/// One part of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// A variable read at the start; `quoted` when it stood inside quotes in the command.
    Env {
        name: String,
        quoted: bool,
    },
}

pub type Word = Vec<Part>;

/// What the lexer reads: a character of text, or a variable as a whole.
enum Item<'a> {
    Char(char),
    Env(&'a str),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    Word,
    Quote(char),
    /// After a backslash; the state to go back to.
    Escape(Quoting),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quoting {
    None,
    Double,
}

/// `shlex.split` over the expanded command.
pub fn split(pieces: &[Piece]) -> Result<Vec<Word>, String> {
    let items = pieces
        .iter()
        .flat_map(|p| -> Box<dyn Iterator<Item = Item<'_>>> {
            match p {
                Piece::Text(t) => Box::new(t.chars().map(Item::Char)),
                Piece::Env(name) => Box::new(std::iter::once(Item::Env(name))),
            }
        });
    let mut words = Vec::new();
    let mut word: Word = Vec::new();
    let mut state = State::Between;
    for item in items {
        let c = match item {
            Item::Env(name) => {
                let quoted = !matches!(state, State::Between | State::Word);
                state = match state {
                    State::Between | State::Word => State::Word,
                    State::Escape(Quoting::None) => State::Word,
                    State::Escape(Quoting::Double) => State::Quote('"'),
                    quote @ State::Quote(_) => quote,
                };
                word.push(Part::Env {
                    name: name.to_string(),
                    quoted,
                });
                continue;
            }
            Item::Char(c) => c,
        };
        state = match (state, c) {
            (State::Between | State::Word, ' ' | '\t' | '\r' | '\n') => {
                if state == State::Word {
                    words.push(std::mem::take(&mut word));
                }
                State::Between
            }
            (State::Between | State::Word, '\\') => State::Escape(Quoting::None),
            (State::Between | State::Word, '\'' | '"') => {
                // An empty pair of quotes is a word of its own.
                push_char(&mut word, None);
                State::Quote(c)
            }
            (State::Between | State::Word, c) => {
                push_char(&mut word, Some(c));
                State::Word
            }
            (State::Quote(q), c) if c == q => State::Word,
            (State::Quote('"'), '\\') => State::Escape(Quoting::Double),
            (State::Quote(q), c) => {
                push_char(&mut word, Some(c));
                State::Quote(q)
            }
            (State::Escape(Quoting::None), c) => {
                push_char(&mut word, Some(c));
                State::Word
            }
            (State::Escape(Quoting::Double), c) => {
                // Inside double quotes a backslash escapes only `"` and itself.
                if c != '"' && c != '\\' {
                    push_char(&mut word, Some('\\'));
                }
                push_char(&mut word, Some(c));
                State::Quote('"')
            }
        };
    }
    match state {
        State::Between => {}
        State::Word => words.push(word),
        State::Quote(_) => return Err("a quote that is never closed".to_string()),
        State::Escape(_) => {
            return Err("a backslash at the end, with nothing to escape".to_string());
        }
    }
    Ok(words)
}

/// Adds `c` to the word's text (`None`: only makes sure the word exists, for `''`).
fn push_char(word: &mut Word, c: Option<char>) {
    if let Some(Part::Text(text)) = word.last_mut() {
        text.extend(c);
        return;
    }
    word.push(Part::Text(c.map(String::from).unwrap_or_default()));
}

/// The words as plain arguments, when there is no variable among them.
pub fn plain(words: &[Word]) -> Option<Vec<String>> {
    words
        .iter()
        .map(|word| {
            word.iter()
                .map(|part| match part {
                    Part::Text(t) => Some(t.as_str()),
                    Part::Env { .. } => None,
                })
                .collect::<Option<String>>()
        })
        .collect()
}

/// A `/bin/sh -c` line that runs the words, reading the variables when it runs. `exec`: the
/// program is the service's process, as under supervisord. `${X?}`: an unset variable stops
/// the start with a message, as supervisord refuses to start without it. `set -f`: a
/// variable outside quotes is split into words but not globbed, as shlex does.
pub fn shell_line(words: &[Word]) -> Result<String, String> {
    let mut line = String::new();
    let unquoted = words
        .iter()
        .flatten()
        .any(|p| matches!(p, Part::Env { quoted: false, .. }));
    if unquoted {
        line.push_str("set -f; ");
    }
    line.push_str("exec");
    for word in words {
        line.push(' ');
        let start = line.len();
        for part in word {
            match part {
                Part::Text(t) if t.is_empty() => {}
                Part::Text(t) => line.push_str(&quote(t)),
                Part::Env { name, quoted } => {
                    if !is_shell_name(name) {
                        return Err(format!(
                            "%(ENV_{name})s: `{name}` is not a name a shell can read at the start"
                        ));
                    }
                    if *quoted {
                        line.push_str(&format!("\"${{{name}?}}\""));
                    } else {
                        line.push_str(&format!("${{{name}?}}"));
                    }
                }
            }
        }
        if line.len() == start {
            line.push_str("''");
        }
    }
    Ok(line)
}

/// `text` as one shell word that means exactly itself.
fn quote(text: &str) -> String {
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

fn is_shell_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
