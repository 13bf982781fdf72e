//! `env-file` contents: `KEY=VALUE` lines, the common subset of Docker's `--env-file` and
//! dotenv files.
//!
//! No expansion and no escapes: a value is taken as written, less one pair of matching
//! quotes around it. That is what both formats agree on; anything cleverer would make the
//! same file mean different things here and under `docker run --env-file`.

/// A line that is not `KEY=VALUE`.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvFileError {
    /// 1-based line number in the env file.
    pub line: usize,
    pub message: String,
}

/// Parses the file's text into variables, in file order. Blank lines and lines starting with
/// `#` are skipped; `export ` before the key is allowed, so a file written for `sh` works.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut vars = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |message: String| EnvFileError {
            line: index + 1,
            message,
        };
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return Err(fail(format!("expected KEY=VALUE, found `{line}`")));
        };
        let key = key.trim_end();
        if let Some(problem) = bad_name(key) {
            return Err(fail(format!("invalid variable name `{key}`: {problem}")));
        }
        let value = unquote(value.trim());
        if value.contains('\0') {
            return Err(fail(format!("the value of {key} contains a NUL character")));
        }
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

/// Why `name` cannot be an environment variable name, if it cannot. The kernel takes any
/// bytes but `=` and NUL; whitespace is refused too because here it is always a typo.
pub fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.contains('=') {
        Some("it contains `=`")
    } else if name.contains('\0') {
        Some("it contains a NUL character")
    } else if name.contains(char::is_whitespace) {
        Some("it contains whitespace")
    } else {
        None
    }
}

/// Removes one pair of matching single or double quotes around the whole value.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn parses_the_common_forms() {
        let text = "# comment\n\nA=1\n  export B = two words \nC=\"quoted # not a comment\"\n\
                    D='single'\nE=\nF=\"\nG=a=b\r\nexportH=x\n";
        assert_eq!(
            vars(text),
            [
                pair("A", "1"),
                pair("B", "two words"),
                pair("C", "quoted # not a comment"),
                pair("D", "single"),
                pair("E", ""),
                pair("F", "\""),
                pair("G", "a=b"),
                pair("exportH", "x"),
            ]
        );
    }

    #[test]
    fn quotes_must_match() {
        assert_eq!(vars("A=\"x'"), [pair("A", "\"x'")]);
        assert_eq!(vars("A='x' y"), [pair("A", "'x' y")]);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("A=1\nJUSTAKEY\n"),
            Err(EnvFileError {
                line: 2,
                message: "expected KEY=VALUE, found `JUSTAKEY`".into()
            })
        );
        assert_eq!(
            parse("=x").unwrap_err().message,
            "invalid variable name ``: it is empty"
        );
        assert_eq!(parse("\n\nA B=x").unwrap_err().line, 3);
        assert!(parse("A=\0").is_err());
    }
}
