//! Writing the imported services as TOML, in the order and key style of docs/config.md.

/// One `[services.NAME]` table: keys in order, each with its value already written as TOML.
#[derive(Debug, Default)]
pub struct Service {
    pub name: String,
    /// Comment lines above the table (without `# `).
    pub comments: Vec<String>,
    pub keys: Vec<(&'static str, String)>,
}

impl Service {
    pub fn new(name: impl Into<String>) -> Service {
        Service {
            name: name.into(),
            ..Service::default()
        }
    }

    pub fn set(&mut self, key: &'static str, value: String) {
        self.keys.push((key, value));
    }
}

/// The whole file: `header` (comment lines), a `[tend]` table when `tend` has keys, then the
/// services.
pub fn document(
    header: &[String],
    tend: &[(&'static str, String)],
    services: &[Service],
) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(&comment(line));
    }
    if !tend.is_empty() {
        out.push_str("\n[tend]\n");
        for (k, v) in tend {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    for service in services {
        out.push('\n');
        for line in &service.comments {
            out.push_str(&comment(line));
        }
        out.push_str(&format!("[services.{}]\n", key(&service.name)));
        for (k, v) in &service.keys {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

/// `text` as one comment line. Comments quote what was imported (a line of the original, a
/// path), which may hold characters a TOML comment may not: control characters other than
/// tab, a line break among them, are written as `\xNN`.
pub fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("# ");
    for c in text.chars() {
        if (c < ' ' && c != '\t') || c == '\x7f' {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

/// A TOML key: bare when it can be, quoted otherwise (a '.' would make a bare key dotted).
pub fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { name.to_string() } else { string(name) }
}

/// A TOML basic string.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML string for text that may hold several lines: a multi-line literal string
/// (`'''`, its first newline not part of the value) that shows the lines as they are, when
/// it can hold the text; else a basic string.
pub fn text(text: &str) -> String {
    let literal = text.contains('\n')
        && !text.contains("'''")
        && !text.ends_with('\'')
        && text
            .chars()
            .all(|c| matches!(c, '\n' | '\t') || !(c < ' ' || c == '\x7f'));
    if literal {
        format!("'''\n{text}'''")
    } else {
        string(text)
    }
}

pub fn strings<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// `{ a = 1, b = "x" }` from keys and values already written as TOML.
pub fn inline_table(pairs: &[(String, String)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{} = {v}", key(k)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}
