//! Keys and tables as schema objects, and the JSON they are written in.

use std::fmt::Write as _;

/// One alternative per key: exactly one of them is present.
pub(super) fn exactly_one(keys: &[&str]) -> Json {
    Json::Array(
        keys.iter()
            .map(|k| obj([("required", strings(&[k]))]))
            .collect(),
    )
}

/// One key of a table: what it takes, its default when it has one, and what it means.
pub(super) struct Key {
    name: &'static str,
    about: &'static str,
    value: Json,
    default: Option<Json>,
}

pub(super) fn key(name: &'static str, about: &'static str, value: Json) -> Key {
    Key {
        name,
        about,
        value,
        default: None,
    }
}

impl Key {
    /// The value the loader uses when the key is left out, as it would be written.
    pub(super) fn default(mut self, value: impl Into<Json>) -> Key {
        self.default = Some(value.into());
        self
    }

    /// `{ "description", the value's schema, "default" }`.
    fn property(self) -> Json {
        let mut entries = vec![entry("description", self.about.into())];
        if let Json::Object(value) = self.value {
            entries.extend(value);
        }
        if let Some(default) = self.default {
            entries.push(entry("default", default));
        }
        Json::Object(entries)
    }
}

/// A table whose keys the loader knows all of, refusing any other.
pub(super) struct Table {
    about: Option<&'static str>,
    keys: Vec<Key>,
    required: &'static [&'static str],
    rules: Vec<(String, Json)>,
}

impl Table {
    pub(super) fn new(keys: Vec<Key>) -> Table {
        Table {
            about: None,
            keys,
            required: &[],
            rules: Vec::new(),
        }
    }

    /// What the table is, where no key's description says it.
    pub(super) fn about(mut self, about: &'static str) -> Table {
        self.about = Some(about);
        self
    }

    pub(super) fn required(mut self, keys: &'static [&'static str]) -> Table {
        self.required = keys;
        self
    }

    /// A condition between its keys (`oneOf`, `dependentRequired`, ...).
    pub(super) fn rule(mut self, name: &str, value: Json) -> Table {
        self.rules.push(entry(name, value));
        self
    }

    pub(super) fn build(self) -> Json {
        let mut entries: Vec<_> = self
            .about
            .map(|a| entry("description", a.into()))
            .into_iter()
            .collect();
        entries.extend(closed(self.keys));
        if !self.required.is_empty() {
            entries.push(entry("required", strings(self.required)));
        }
        entries.extend(self.rules);
        Json::Object(entries)
    }
}

pub(super) fn table(keys: Vec<Key>) -> Json {
    Table::new(keys).build()
}

/// `type: object`, its properties, and no other key.
pub(super) fn closed(keys: Vec<Key>) -> Vec<(String, Json)> {
    let properties = keys
        .into_iter()
        .map(|k| (k.name.to_string(), k.property()))
        .collect();
    vec![
        entry("type", "object".into()),
        entry("additionalProperties", false.into()),
        entry("properties", Json::Object(properties)),
    ]
}

pub(super) fn reference(name: &str) -> Json {
    obj([("$ref", format!("#/$defs/{name}").into())])
}

pub(super) fn boolean() -> Json {
    obj([("type", "boolean".into())])
}

pub(super) fn string() -> Json {
    obj([("type", "string".into())])
}

/// A path: any string but an empty one.
pub(super) fn path() -> Json {
    obj([("type", "string".into()), ("minLength", 1.into())])
}

pub(super) fn integer(min: i64, max: i64) -> Json {
    obj([
        ("type", "integer".into()),
        ("minimum", min.into()),
        ("maximum", max.into()),
    ])
}

pub(super) fn one_of(values: &[&str]) -> Json {
    obj([("type", "string".into()), ("enum", strings(values))])
}

/// A duration that must be longer than zero (a string such as "0s" is left to the loader).
pub(super) fn positive_duration() -> Json {
    reference("duration").with(&[("exclusiveMinimum", 0.into())])
}

pub(super) fn count(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

pub(super) fn strings(values: &[&str]) -> Json {
    Json::Array(values.iter().map(|v| (*v).into()).collect())
}

pub(super) fn entry(name: &str, value: Json) -> (String, Json) {
    (name.to_string(), value)
}

pub(super) fn obj<const N: usize>(entries: [(&str, Json); N]) -> Json {
    Json::Object(entries.into_iter().map(|(k, v)| entry(k, v)).collect())
}

/// A JSON value whose objects keep their keys in the order they were written, so that the
/// schema reads from the top down (serde_json's own map sorts them).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Json {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Json {
        Json::Int(n)
    }
}

impl From<i32> for Json {
    fn from(n: i32) -> Json {
        Json::Int(n.into())
    }
}

impl From<u32> for Json {
    fn from(n: u32) -> Json {
        Json::Int(n.into())
    }
}

impl From<f64> for Json {
    fn from(x: f64) -> Json {
        Json::Float(x)
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_string())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}

impl Json {
    /// This object with `entries` added after its own.
    pub(super) fn with(self, entries: &[(&str, Json)]) -> Json {
        match self {
            Json::Object(mut own) => {
                own.extend(entries.iter().map(|(k, v)| entry(k, v.clone())));
                Json::Object(own)
            }
            other => other,
        }
    }

    pub(super) fn examples(self, values: &[&str]) -> Json {
        self.with(&[("examples", strings(values))])
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Json::Array(_) | Json::Object(_))
    }

    /// A small object of scalars (or arrays of them), such as `{"type": "integer",
    /// "minimum": 0}`, reads best on one line.
    fn fits_on_a_line(&self) -> bool {
        let Json::Object(entries) = self else {
            return false;
        };
        let flat = |v: &Json| match v {
            Json::Array(items) => items.iter().all(Json::is_scalar),
            Json::Object(_) => false,
            _ => true,
        };
        if !entries.iter().all(|(_, v)| flat(v)) {
            return false;
        }
        let mut line = String::new();
        for (name, value) in entries {
            line.push_str(name);
            value.write(&mut line, 0);
        }
        line.len() + 4 * entries.len() <= 60
    }

    /// Two spaces per level; an array of scalars stays on one line.
    pub(super) fn write(&self, out: &mut String, level: usize) {
        let indent = |out: &mut String, level: usize| out.push_str(&"  ".repeat(level));
        match self {
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Float(x) => out.push_str(&serde_json::Value::from(*x).to_string()),
            Json::Str(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
            Json::Array(items) if items.iter().all(Json::is_scalar) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, level);
                }
                out.push(']');
            }
            Json::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    indent(out, level + 1);
                    item.write(out, level + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                indent(out, level);
                out.push(']');
            }
            Json::Object(entries) if entries.is_empty() => out.push_str("{}"),
            Json::Object(entries) if self.fits_on_a_line() => {
                out.push('{');
                for (i, (name, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    Json::Str(name.clone()).write(out, level);
                    out.push_str(": ");
                    value.write(out, level);
                }
                out.push('}');
            }
            Json::Object(entries) => {
                out.push_str("{\n");
                for (i, (name, value)) in entries.iter().enumerate() {
                    indent(out, level + 1);
                    Json::Str(name.clone()).write(out, level + 1);
                    out.push_str(": ");
                    value.write(out, level + 1);
                    out.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
                }
                indent(out, level);
                out.push('}');
            }
        }
    }
}
