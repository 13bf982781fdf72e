//! Splitting a command string into words the way a POSIX shell would, with no shell: quotes
//! and backslashes group and escape, and nothing is expanded (`$HOME` stays `$HOME`).
//!
//! Written here rather than taken from a crate because the rules are short, and the error
//! must say *where* the unterminated quote opened so the config error can point at it.

/// A command string split into words.
#[derive(Debug, PartialEq, Eq)]
pub struct Words {
    pub words: Vec<String>,
    /// The first unquoted character that means something to a shell (`|`, `&`, `;`, `<`,
    /// `>`, `$`, backquote): with no shell it is passed on literally, which is rarely what
    /// the author meant.
    pub shell_syntax: Option<char>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    /// A quote opened at byte offset `at` and never closed.
    UnterminatedQuote { quote: char, at: usize },
    /// A backslash at byte offset `at` with nothing after it to escape.
    TrailingBackslash { at: usize },
}

/// Splits `text` into words: blanks (space, tab, newline) separate words; `'...'` keeps
/// everything literal; `"..."` keeps everything literal except `\` before `$`, `` ` ``, `"`,
/// `\` or newline; outside quotes `\` escapes the next character and backslash-newline is
/// removed. `''` is an empty word. `#` is not a comment (as in Python's `shlex.split`).
pub fn split(text: &str) -> Result<Words, SplitError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut shell_syntax = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, escaped)) => {
                    current.push(escaped);
                    in_word = true;
                }
                None => return Err(SplitError::TrailingBackslash { at }),
            },
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, inner)) => current.push(inner),
                        None => return Err(SplitError::UnterminatedQuote { quote: '\'', at }),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.peek() {
                            Some(&(_, escaped @ ('$' | '`' | '"' | '\\'))) => {
                                current.push(escaped);
                                chars.next();
                            }
                            Some(&(_, '\n')) => {
                                chars.next();
                            }
                            _ => current.push('\\'),
                        },
                        Some((_, inner)) => current.push(inner),
                        None => return Err(SplitError::UnterminatedQuote { quote: '"', at }),
                    }
                }
            }
            _ => {
                if shell_syntax.is_none() && matches!(c, '|' | '&' | ';' | '<' | '>' | '$' | '`') {
                    shell_syntax = Some(c);
                }
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(Words {
        words,
        shell_syntax,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split(text).unwrap().words
    }

    #[test]
    fn splits_on_blanks() {
        assert_eq!(words("  nginx   -g\tx\ny "), ["nginx", "-g", "x", "y"]);
        assert!(words("").is_empty());
        assert!(words(" \t\n").is_empty());
    }

    #[test]
    fn quotes_group_and_keep_text_literal() {
        assert_eq!(
            words("nginx -g 'daemon off;'"),
            ["nginx", "-g", "daemon off;"]
        );
        assert_eq!(
            words(r#"echo "a  b" 'c"d' "e'f""#),
            ["echo", "a  b", "c\"d", "e'f"]
        );
        assert_eq!(words("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(words("x '' \"\""), ["x", "", ""]);
        assert_eq!(words("echo '$HOME' \"$HOME\""), ["echo", "$HOME", "$HOME"]);
        assert_eq!(words("'a\\b'"), ["a\\b"]);
    }

    #[test]
    fn backslashes() {
        assert_eq!(words(r"a\ b c\\d \'"), ["a b", r"c\d", "'"]);
        assert_eq!(words("a\\\nb"), ["ab"]);
        assert_eq!(words("a \\\n b"), ["a", "b"]);
        assert_eq!(words(r#""\$ \` \" \\ \n \a""#), [r#"$ ` " \ \n \a"#]);
        assert_eq!(words("\"a\\\nb\""), ["ab"]);
    }

    #[test]
    fn nothing_is_expanded_but_shell_syntax_is_noticed() {
        let w = split("echo $HOME | wc").unwrap();
        assert_eq!(w.words, ["echo", "$HOME", "|", "wc"]);
        assert_eq!(w.shell_syntax, Some('$'));
        assert_eq!(split("a '|' \"&&\" \\;").unwrap().shell_syntax, None);
        assert_eq!(split("a>b").unwrap().shell_syntax, Some('>'));
        assert_eq!(words("a #b"), ["a", "#b"]);
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            split("nginx -g 'daemon off;"),
            Err(SplitError::UnterminatedQuote { quote: '\'', at: 9 })
        );
        assert_eq!(
            split("é \"x"),
            Err(SplitError::UnterminatedQuote { quote: '"', at: 3 })
        );
        assert_eq!(
            split("\"a\\\""),
            Err(SplitError::UnterminatedQuote { quote: '"', at: 0 })
        );
        assert_eq!(
            split("\"a\\"),
            Err(SplitError::UnterminatedQuote { quote: '"', at: 0 })
        );
        assert_eq!(split("ab\\"), Err(SplitError::TrailingBackslash { at: 2 }));
    }
}
