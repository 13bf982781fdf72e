//! The INI dialect supervisord 4 reads: Python 3's `configparser.RawConfigParser` as
//! supervisord sets it up (`inline_comment_prefixes = (';', '#')`, `strict = False`, the
//! other settings at their defaults), followed rule by rule:
//!
//! - a line is a continuation of the value above only when it is indented *more than the
//!   line that set the key*: configparser compares indentation, so keys indented alike
//!   (`  command=...` then `  user=...`) are separate keys, and a section's first key may be
//!   indented at all;
//! - `;` or `#` starts a comment at the start of a line or after whitespace (`a;b` keeps
//!   its `;`); comment lines inside a value are skipped, and an empty line inside a value
//!   stays in it (`empty_lines_in_values`), trailing ones are dropped;
//! - a section or key seen again is the same one: later keys replace earlier ones, in this
//!   file or in an included one (`strict = False`);
//! - keys are case-insensitive (lower-cased), section names are not.

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// `FILE:LINE` where the key was (last) set, for errors and notes.
    pub at: String,
}

#[derive(Clone, Debug)]
pub struct Section {
    pub name: String,
    /// `FILE:LINE` of the header that opened it first.
    pub at: String,
    /// In the order keys were first set, as Python's dict keeps them.
    pub entries: Vec<Entry>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

#[derive(Debug, Default)]
pub struct Ini {
    /// In the order they were first seen.
    pub sections: Vec<Section>,
}

impl Ini {
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Reads one file's text into what was read so far. Returns the names of the sections
    /// this file has headers for.
    pub fn read(&mut self, origin: &str, text: &str) -> Result<Vec<String>, String> {
        let mut seen = Vec::new();
        // The section and entry the next continuation line would extend.
        let mut section: Option<usize> = None;
        let mut entry: Option<usize> = None;
        // The indentation of the line that set the current key.
        let mut indent_level = usize::MAX;
        for (i, raw) in text.lines().enumerate() {
            let at = format!("{origin}:{}", i + 1);
            let (content, commented) = strip_comment(raw);
            let value = content.trim();
            if value.is_empty() {
                // An empty line belongs to the value above; a comment line does not.
                if let (false, Some(s), Some(e)) = (commented, section, entry) {
                    self.sections[s].entries[e].value.push('\n');
                }
                continue;
            }
            let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
            if let (true, Some(s), Some(e)) = (indent > indent_level, section, entry) {
                let current = &mut self.sections[s].entries[e].value;
                current.push('\n');
                current.push_str(value);
                continue;
            }
            indent_level = indent;
            if let Some(name) = header(value) {
                section = Some(self.open(name, &at));
                entry = None;
                seen.push(name.to_string());
                continue;
            }
            let Some(s) = section else {
                return Err(format!("{at}: a setting before any [section]"));
            };
            let Some(split) = value.find(['=', ':']) else {
                return Err(format!("{at}: expected `key = value`, found {value:?}"));
            };
            let key = value[..split].trim_end().to_lowercase();
            if key.is_empty() {
                return Err(format!("{at}: a value without a key: {value:?}"));
            }
            let set = value[split + 1..].trim().to_string();
            entry = Some(self.set(s, key, set, at));
        }
        // configparser joins a value's lines and strips what trails them.
        for section in &mut self.sections {
            for entry in &mut section.entries {
                let end = entry.value.trim_end().len();
                entry.value.truncate(end);
            }
        }
        Ok(seen)
    }

    /// The section named `name`, made if it is new.
    fn open(&mut self, name: &str, at: &str) -> usize {
        if let Some(i) = self.sections.iter().position(|s| s.name == name) {
            return i;
        }
        self.sections.push(Section {
            name: name.to_string(),
            at: at.to_string(),
            entries: Vec::new(),
        });
        self.sections.len() - 1
    }

    /// Sets `key` in section `s`, replacing an earlier value in place.
    fn set(&mut self, s: usize, key: String, value: String, at: String) -> usize {
        let entries = &mut self.sections[s].entries;
        match entries.iter().position(|e| e.key == key) {
            Some(i) => {
                entries[i].value = value;
                entries[i].at = at;
                i
            }
            None => {
                entries.push(Entry { key, value, at });
                entries.len() - 1
            }
        }
    }
}

/// The line without its comment, and whether it had one. A comment starts with `;` or `#`
/// at the start of the line or after whitespace, or is a line whose text starts with one.
fn strip_comment(line: &str) -> (&str, bool) {
    if line.trim_start().starts_with([';', '#']) {
        return ("", true);
    }
    let mut previous_blank = true;
    for (i, c) in line.char_indices() {
        if matches!(c, ';' | '#') && previous_blank {
            return (&line[..i], true);
        }
        previous_blank = c.is_whitespace();
    }
    (line, false)
}

/// `[name]`: configparser's `\[(?P<header>.+)\]` matched at the start, so the name runs to
/// the last `]` and must not be empty.
fn header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}
