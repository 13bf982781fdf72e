//! The schema held to the loader. The tests walk the schema as `tend schema` prints it and ask
//! the loader about every part of it:
//!
//! - every table the loader closes has exactly the keys the loader accepts: an unknown key put
//!   in that table is refused with the list of keys it takes, which must be the schema's;
//! - every value of an `enum` loads, and a value outside it is refused;
//! - a key left out gets the schema's `default` (the file loads to the same spec and settings
//!   as with `key = default`), and another value changes them;
//! - every value the schema offers loads (its defaults, examples, enum values, bounds), a
//!   value of each type it allows is among them, a value of a type it does not allow is
//!   refused as an invalid type, and just past each bound is refused.
//!
//! So a key added to the loader and not to the schema, or the other way round, or a default
//! changed on one side only, fails here with a message that says what to edit.

use super::schema;
use crate::config::{Environment, Loaded, load_str};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

const UNKNOWN_KEY: &str = "zz-unknown-key";
const NOT_A_VALUE: &str = "zz-not-a-value";
const HOW_TO_FIX: &str = "edit the table's function in src/config/json_schema/generator.rs, \
                          then regenerate the checked-in copy: TEND_WRITE_SCHEMA=1 cargo test \
                          --lib json_schema";

/// The names the tests choose where the user chooses one (the key of an open table).
fn chosen_name(table_key: &str) -> Option<(&'static str, &'static str)> {
    match table_key {
        "services" => Some(("a", "NAME")),
        "env" => Some(("VAR", "VAR")),
        "depends-on" => Some(("db", "SERVICE")),
        _ => None,
    }
}

/// Every file also has this service, which `depends-on` examples name.
fn base() -> Value {
    json!({ "services": { "db": { "command": "x" } } })
}

/// A directory with what the examples need: `etc/passwd` and `etc/group` with `www-data`
/// (33), and `app.env`.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(etc.join("group"), "root:x:0:\nwww-data:x:33:\n").unwrap();
        std::fs::write(dir.path().join("app.env"), "A=b\n").unwrap();
        Fixture { dir }
    }

    fn load(&self, document: &Value) -> Result<Loaded, String> {
        let env = Environment {
            etc: self.dir.path().join("etc"),
            tz: None,
            zoneinfo: "/usr/share/zoneinfo".into(),
            localtime: self.dir.path().join("localtime"),
        };
        let text = toml_text(document);
        load_str(&text, "tend.toml", self.dir.path(), &env).map_err(|e| format!("{e}\n{text}"))
    }

    /// What loading `document` makes of it: the spec and the settings.
    fn meaning(&self, document: &Value) -> (crate::core::spec::Spec, crate::config::Settings) {
        match self.load(document) {
            Ok(loaded) => (loaded.spec, loaded.settings),
            Err(e) => panic!("expected to load, got: {e}"),
        }
    }
}

/// A JSON document as TOML: every table inline, on one line per top-level key.
fn toml_text(document: &Value) -> String {
    let Value::Object(top) = document else {
        panic!("not a table: {document}")
    };
    top.iter()
        .map(|(k, v)| format!("{} = {}\n", Value::from(k.as_str()), toml_value(v)))
        .collect()
}

fn toml_value(value: &Value) -> String {
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{} = {}", Value::from(k.as_str()), toml_value(v)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
        // JSON's strings, numbers and booleans are written as TOML writes them.
        other => other.to_string(),
    }
}

/// The schema as the generator builds it (`tend schema` prints the checked-in copy, which
/// `the_checked_in_schema_is_what_the_generator_builds` holds to it).
fn the_schema() -> Value {
    serde_json::from_str(&schema()).expect("tend schema prints JSON")
}

fn resolve<'s>(schema: &'s Value, reference: &Value) -> &'s Value {
    let pointer = reference
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
        .unwrap_or_else(|| panic!("only local references: {reference}"));
    schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} leads nowhere"))
}

/// How a value sits inside a key's value: an item of its array, or an entry of its table.
#[derive(Clone, Debug)]
enum Wrap {
    Item,
    Entry(&'static str),
}

/// One way a key's value may be written: the schemas that apply to it, from the key's own
/// inwards (through `$ref` and `anyOf`), and where it sits in the key's value.
#[derive(Clone)]
struct Shape<'s> {
    chain: Vec<&'s Value>,
    wrap: Vec<Wrap>,
}

impl<'s> Shape<'s> {
    /// A keyword, from the innermost schema that has it.
    fn get(&self, keyword: &str) -> Option<&'s Value> {
        self.chain.iter().rev().find_map(|n| n.get(keyword))
    }

    fn last(&self) -> &'s Value {
        self.chain[self.chain.len() - 1]
    }

    /// A closed table: one whose keys the schema lists.
    fn is_table(&self) -> bool {
        self.last().get("properties").is_some()
    }

    fn types(&self) -> BTreeSet<&'static str> {
        let mut types = BTreeSet::new();
        if let Some(t) = self.get("type") {
            let names: Vec<&str> = match t {
                Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
                other => other.as_str().into_iter().collect(),
            };
            for name in names {
                types.extend(match name {
                    "boolean" => &["boolean"][..],
                    "integer" => &["integer"],
                    "number" => &["integer", "float"],
                    "string" => &["string"],
                    "array" => &["array"],
                    "object" => &["object"],
                    other => panic!("type {other}"),
                });
            }
        } else if let Some(Value::Array(values)) = self.get("enum") {
            types.extend(values.iter().map(type_of));
        }
        types
    }

    /// `value` put where this shape sits in the key's value.
    fn put(&self, value: Value) -> Value {
        self.wrap.iter().rev().fold(value, |v, w| match w {
            Wrap::Item => Value::Array(vec![v]),
            Wrap::Entry(name) => json!({ *name: v }),
        })
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// The shapes of key `key`'s value whose schema is `node`.
fn shapes<'s>(schema: &'s Value, key: &str, node: &'s Value) -> Vec<Shape<'s>> {
    let mut out = Vec::new();
    expand(
        schema,
        key,
        Shape {
            chain: vec![node],
            wrap: Vec::new(),
        },
        &mut out,
    );
    out
}

fn expand<'s>(schema: &'s Value, key: &str, shape: Shape<'s>, out: &mut Vec<Shape<'s>>) {
    let last = shape.last();
    if let Some(reference) = last.get("$ref") {
        let mut inner = shape.clone();
        inner.chain.push(resolve(schema, reference));
        return expand(schema, key, inner, out);
    }
    if let Some(Value::Array(branches)) = last.get("anyOf") {
        for branch in branches {
            let mut inner = shape.clone();
            inner.chain.push(branch);
            expand(schema, key, inner, out);
        }
        return;
    }
    out.push(shape.clone());
    if shape.is_table() {
        return;
    }
    let mut inside = |node: &'s Value, wrap: Wrap| {
        let mut w = shape.wrap.clone();
        w.push(wrap);
        let inner = Shape {
            chain: vec![node],
            wrap: w,
        };
        expand(schema, key, inner, out);
    };
    if let Some(items) = last.get("items") {
        inside(items, Wrap::Item);
    }
    if let Some(entries) = last.get("additionalProperties").filter(|v| v.is_object()) {
        let (name, _) =
            chosen_name(key).unwrap_or_else(|| panic!("choose a name for the keys of `{key}`"));
        inside(entries, Wrap::Entry(name));
    }
}

/// A closed table of the schema, and where it is in a file.
struct TableAt<'s> {
    place: Vec<&'static str>,
    shown: String,
    node: &'s Value,
}

impl<'s> TableAt<'s> {
    fn properties(&self) -> impl Iterator<Item = (&'s str, &'s Value)> + use<'s> {
        let properties = self.node["properties"].as_object().expect("properties");
        properties.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Every closed table, from the top level down.
fn tables(schema: &Value) -> Vec<TableAt<'_>> {
    let mut out = Vec::new();
    walk(
        schema,
        schema,
        Vec::new(),
        "the top level".to_string(),
        &mut out,
    );
    out
}

fn walk<'s>(
    schema: &'s Value,
    node: &'s Value,
    place: Vec<&'static str>,
    shown: String,
    out: &mut Vec<TableAt<'s>>,
) {
    let table = TableAt {
        place: place.clone(),
        shown: shown.clone(),
        node,
    };
    let properties: Vec<_> = table.properties().collect();
    out.push(table);
    for (key, value) in properties {
        for shape in shapes(schema, key, value) {
            if !shape.is_table() {
                continue;
            }
            let mut inner_place = place.clone();
            inner_place.push(leak(key));
            let mut inner_shown = if place.is_empty() {
                key.to_string()
            } else {
                format!("{shown}.{key}")
            };
            for w in &shape.wrap {
                let Wrap::Entry(name) = w else {
                    panic!("a table inside an array, at {inner_shown}")
                };
                inner_place.push(name);
                inner_shown.push('.');
                inner_shown.push_str(chosen_name(key).map_or(name, |(_, shown)| shown));
            }
            walk(schema, shape.last(), inner_place, inner_shown, out);
        }
    }
}

/// Schema keys live as long as the test; the places they make are `&'static` for simplicity.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

/// Values of every shape of a key, each placed where it sits in the key's value: its default,
/// the examples, the enum's values, booleans, integers at the bounds, a number with a
/// fraction, a string where any will do, and the smallest table that loads.
fn samples(schema: &Value, key: &str, node: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = node.get("default").into_iter().cloned().collect();
    for shape in shapes(schema, key, node) {
        for n in &shape.chain {
            if let Some(Value::Array(examples)) = n.get("examples") {
                out.extend(examples.iter().map(|e| shape.put(e.clone())));
            }
        }
        if let Some(Value::Array(values)) = shape.get("enum") {
            out.extend(values.iter().map(|v| shape.put(v.clone())));
            continue;
        }
        if shape.is_table() {
            out.push(shape.put(Value::Object(smallest(schema, shape.last(), None))));
            continue;
        }
        let types = shape.types();
        let b = bounds(&shape);
        for t in types {
            match t {
                "boolean" => out.extend([true, false].map(|b| shape.put(b.into()))),
                "integer" => {
                    out.push(shape.put(number(b.lowest(1.0))));
                    if let Some(high) = b.high {
                        out.push(shape.put(number(high)));
                    }
                }
                "float" => out.push(shape.put(number(b.lowest(0.5).floor() + 0.5))),
                "string" => {
                    let described = shape.chain.iter().any(|n| n.get("examples").is_some());
                    if shape.get("pattern").is_none() && !described {
                        out.push(shape.put("x".into()));
                    }
                }
                // Arrays and tables come from their items and entries.
                _ => {}
            }
        }
    }
    let mut unique = Vec::new();
    for v in out {
        if !unique.contains(&v) {
            unique.push(v);
        }
    }
    unique
}

/// The numbers a shape allows: the tightest bounds of all its schemas (a `$ref` with
/// `minimum` beside it takes both).
#[derive(Clone, Copy, Debug, Default)]
struct Bounds {
    /// The lowest, and whether it is excluded.
    low: Option<(f64, bool)>,
    high: Option<f64>,
}

fn bounds(shape: &Shape<'_>) -> Bounds {
    let mut b = Bounds::default();
    for n in &shape.chain {
        let number = |k| n.get(k).and_then(Value::as_f64);
        for low in [
            number("minimum").map(|m| (m, false)),
            number("exclusiveMinimum").map(|m| (m, true)),
        ]
        .into_iter()
        .flatten()
        {
            b.low = match b.low {
                Some(old) if old.0 > low.0 || (old.0 == low.0 && old.1) => Some(old),
                _ => Some(low),
            };
        }
        if let Some(high) = number("maximum") {
            b.high = Some(b.high.map_or(high, |h: f64| h.min(high)));
        }
    }
    b
}

impl Bounds {
    /// The lowest value allowed, counting in steps of `step`.
    fn lowest(&self, step: f64) -> f64 {
        match self.low {
            Some((low, true)) => low + step,
            Some((low, false)) => low,
            None => 0.0,
        }
    }

    /// Values just outside: below the lowest, above the highest.
    fn past(&self, step: f64) -> Vec<f64> {
        let below = self
            .low
            .map(|(low, excluded)| if excluded { low } else { low - step });
        let above = self.high.map(|h| h + step);
        below.into_iter().chain(above).collect()
    }
}

/// A number as JSON writes it: an integer when it is whole.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e18 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The smallest value of table `table` that loads: its required keys and, where it needs one
/// of several keys, the first of them; `except` is the key under test, left out.
fn smallest(schema: &Value, table: &Value, except: Option<&str>) -> Map<String, Value> {
    let names = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let mut keys = names(table.get("required"));
    if let Some(Value::Array(alternatives)) = table.get("oneOf") {
        let alternatives: Vec<Vec<String>> = alternatives
            .iter()
            .map(|a| names(a.get("required")))
            .collect();
        let chosen = alternatives
            .iter()
            .any(|keys| except.is_some_and(|e| keys.iter().any(|k| k == e)));
        if !chosen {
            keys.extend(alternatives.into_iter().take(1).flatten());
        }
    }
    if let Some(key) = except {
        keys.extend(names(
            table.get("dependentRequired").and_then(|d| d.get(key)),
        ));
    }
    let mut out = Map::new();
    for key in keys.into_iter().filter(|k| Some(k.as_str()) != except) {
        let node = &table["properties"][&key];
        let first = samples(schema, &key, node).into_iter().next();
        let first = first.unwrap_or_else(|| panic!("no value for `{key}`"));
        out.insert(key, first);
    }
    out
}

/// Rules between keys that a JSON Schema cannot say (`initial <= max`, `soft <= hard`): a
/// value of one key is tried beside a value of the other that keeps the rule whatever it is.
fn partners(table: &str, key: &str) -> Vec<(&'static str, Value)> {
    match (table, key) {
        ("services.NAME.backoff", "initial") => vec![("max", json!("1000d"))],
        ("services.NAME.backoff", "max") => vec![("initial", json!(0))],
        (t, "soft") if t.starts_with("services.NAME.limits.") => {
            vec![("hard", json!("unlimited"))]
        }
        (t, "hard") if t.starts_with("services.NAME.limits.") => vec![("soft", json!(0))],
        ("services.NAME", "finish-timeout") => vec![("finish", json!(["/srv/finish"]))],
        _ => Vec::new(),
    }
}

/// A file with `key = value` in the table at `table` (no key: just the table), and whatever
/// the tables on the way need to load.
fn document(
    schema: &Value,
    tables: &[TableAt<'_>],
    table: &TableAt<'_>,
    key: Option<(&str, Value)>,
) -> Value {
    let mut doc = base();
    for depth in 0..=table.place.len() {
        let place = &table.place[..depth];
        let Some(on_the_way) = tables.iter().find(|t| t.place == place) else {
            continue;
        };
        let except = if depth == table.place.len() {
            key.as_ref().map(|(k, _)| *k)
        } else {
            Some(table.place[depth])
        };
        let mut at = &mut doc;
        for step in place {
            at = at
                .as_object_mut()
                .expect("a table")
                .entry(*step)
                .or_insert_with(|| json!({}));
        }
        let at = at.as_object_mut().expect("a table");
        for (k, v) in smallest(schema, on_the_way.node, except) {
            at.entry(k).or_insert(v);
        }
        if depth == table.place.len()
            && let Some((k, v)) = &key
        {
            for (partner, value) in partners(&table.shown, k) {
                at.insert(partner.to_string(), value);
            }
            at.insert((*k).to_string(), v.clone());
        }
    }
    doc
}

/// The keys an unknown-key error says the table takes: the backquoted names after "expected".
fn keys_in_message(message: &str) -> BTreeSet<String> {
    let Some((_, list)) = message.split_once(", expected ") else {
        return BTreeSet::new(); // "there are no fields"
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// `tend schema` prints docs/tend.schema.json as it is checked in; this holds that file to
/// the generator, and so to the loader. With `TEND_WRITE_SCHEMA=1` in the environment the
/// test writes the file instead (and still fails, so that a run cannot pass unnoticed).
#[test]
fn the_checked_in_schema_is_what_the_generator_builds() {
    let built = schema();
    if built == super::CHECKED_IN {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tend.schema.json");
    if std::env::var_os("TEND_WRITE_SCHEMA").is_some() {
        std::fs::write(path, &built).expect("write docs/tend.schema.json");
        panic!("wrote {path}: rebuild, and run the tests again without TEND_WRITE_SCHEMA");
    }
    panic!(
        "docs/tend.schema.json is not what the generator builds from the loader's keys; \
         regenerate it with: TEND_WRITE_SCHEMA=1 cargo test --lib json_schema"
    );
}

#[test]
fn the_schema_walks_every_table_of_the_file() {
    let schema = the_schema();
    // (serde_json's maps are sorted, so the order is not the file's.)
    let shown: BTreeSet<String> = tables(&schema).into_iter().map(|t| t.shown).collect();
    let limits = ["nofile", "nproc", "core", "memlock", "stack"]
        .map(|l| format!("services.NAME.limits.{l}"));
    let mut expected = vec![
        "the top level".to_string(),
        "tend".into(),
        "tend.shm".into(),
        "services.NAME".into(),
        "services.NAME.limits".into(),
    ];
    expected.extend(limits);
    expected.extend(["backoff", "logs", "ready", "health"].map(|t| format!("services.NAME.{t}")));
    assert_eq!(shown, expected.into_iter().collect());
}

/// (a) Every closed table of the schema has exactly the keys the loader accepts there.
#[test]
fn every_table_has_the_keys_the_loader_accepts() {
    let schema = the_schema();
    let tables = tables(&schema);
    let fixture = Fixture::new();
    for table in &tables {
        let doc = document(&schema, &tables, table, Some((UNKNOWN_KEY, json!(1))));
        let Err(error) = fixture.load(&doc) else {
            panic!("the loader takes an unknown key in {}", table.shown)
        };
        assert!(
            error.contains(&format!("error: unknown key `{UNKNOWN_KEY}`")),
            "{}: {error}",
            table.shown
        );
        let first_line = error.lines().next().unwrap_or_default();
        let loader = keys_in_message(first_line);
        let schema_keys: BTreeSet<String> =
            table.properties().map(|(k, _)| k.to_string()).collect();
        let missing: Vec<_> = loader.difference(&schema_keys).collect();
        let extra: Vec<_> = schema_keys.difference(&loader).collect();
        let mut wrong = Vec::new();
        if !missing.is_empty() {
            wrong.push(format!(
                "the loader takes {missing:?}, which the schema lacks"
            ));
        }
        if !extra.is_empty() {
            wrong.push(format!(
                "the schema has {extra:?}, which the loader refuses"
            ));
        }
        assert!(
            wrong.is_empty(),
            "in {}: {}; {HOW_TO_FIX}",
            table.shown,
            wrong.join(", and ")
        );
        assert_eq!(
            table.node["additionalProperties"],
            json!(false),
            "{}: the loader refuses unknown keys",
            table.shown
        );
    }
}

/// (b) Every value of every enum loads where the schema offers it, and a value outside is
/// refused.
#[test]
fn enum_values_load_and_others_do_not() {
    let schema = the_schema();
    let tables = tables(&schema);
    let fixture = Fixture::new();
    let mut seen = 0;
    for table in &tables {
        for (key, node) in table.properties() {
            for shape in shapes(&schema, key, node) {
                let Some(Value::Array(values)) = shape.get("enum") else {
                    continue;
                };
                for value in values {
                    let doc = document(
                        &schema,
                        &tables,
                        table,
                        Some((key, shape.put(value.clone()))),
                    );
                    if let Err(e) = fixture.load(&doc) {
                        panic!(
                            "{}.{key} = {value} is in the schema's enum: {e}",
                            table.shown
                        );
                    }
                    seen += 1;
                }
                let outside = match values.first() {
                    Some(Value::Bool(b)) => json!(!b),
                    _ => json!(NOT_A_VALUE),
                };
                assert!(!values.contains(&outside));
                let doc = document(
                    &schema,
                    &tables,
                    table,
                    Some((key, shape.put(outside.clone()))),
                );
                assert!(
                    fixture.load(&doc).is_err(),
                    "{}.{key} = {outside} is outside the schema's enum {values:?}, yet loads; \
                     {HOW_TO_FIX}",
                    table.shown
                );
            }
        }
    }
    // restart, log-format, the conditions, "unlimited", sd-notify and the signals at least.
    assert!(seen > 60, "{seen}");
}

/// (c) A key left out means its default: the file loads to the same spec and settings as
/// with `key = default` written out; and another value does change them (so the key is read).
#[test]
fn defaults_are_what_the_loader_fills_in() {
    let schema = the_schema();
    let tables = tables(&schema);
    let fixture = Fixture::new();
    let mut seen = 0;
    for table in &tables {
        for (key, node) in table.properties() {
            let Some(default) = node.get("default") else {
                continue;
            };
            let with = document(&schema, &tables, table, Some((key, default.clone())));
            let mut without = with.clone();
            table_at_mut(&mut without, &table.place)
                .expect("the table")
                .remove(key);
            assert_eq!(
                fixture.meaning(&with),
                fixture.meaning(&without),
                "{}.{key}: the loader's default is not the schema's {default}; {HOW_TO_FIX}",
                table.shown
            );
            let other = samples(&schema, key, node)
                .into_iter()
                .find(|v| v != default)
                .unwrap_or_else(|| panic!("{}.{key}: no value but the default", table.shown));
            let changed = document(&schema, &tables, table, Some((key, other.clone())));
            assert_ne!(
                fixture.meaning(&changed),
                fixture.meaning(&without),
                "{}.{key} = {other} means the same as leaving it out",
                table.shown
            );
            seen += 1;
        }
    }
    assert!(seen >= 25, "{seen}");
}

fn table_at_mut<'v>(doc: &'v mut Value, place: &[&str]) -> Option<&'v mut Map<String, Value>> {
    place
        .iter()
        .try_fold(doc, |v, k| v.get_mut(*k))?
        .as_object_mut()
}

/// Whether the loader's error `error` refuses a value of type `t` for being of that type.
///
/// Besides serde's "invalid type", toml answers an enum (`restart`, `log-format`) given another
/// type than a string with "wanted string or table", or for an empty table "wanted exactly 1
/// element"; and serde's derived tables also read an array, field by field, so `[]` is refused
/// for its length. (Two quirks of the loader: `restart = { never = {} }` and
/// `backoff = ["1s", "2s", 2.0]` load. The schema says what is meant: a string, a table.)
fn refused_for_its_type(error: &str, t: &str) -> bool {
    error.contains("invalid type")
        || error.contains("wanted string or table")
        || (t == "object" && error.contains("wanted exactly 1 element, found 0"))
        || (t == "array" && error.contains("invalid length 0"))
}

/// (d) Every value the schema offers loads, there is one of each type it allows, a value of
/// any other type is refused as such, and a number just past a bound is refused.
#[test]
fn values_of_the_schemas_types_load_and_others_do_not() {
    let schema = the_schema();
    let tables = tables(&schema);
    let fixture = Fixture::new();
    let wrong: [(&str, Value); 6] = [
        ("boolean", json!(true)),
        ("integer", json!(7)),
        ("float", json!(1.5)),
        ("string", json!(NOT_A_VALUE)),
        ("array", json!([])),
        ("object", json!({})),
    ];
    for table in &tables {
        for (key, node) in table.properties() {
            let here = format!("{}.{key}", table.shown);
            let all = shapes(&schema, key, node);
            let allowed: BTreeSet<&str> = all
                .iter()
                .filter(|s| s.wrap.is_empty())
                .flat_map(Shape::types)
                .collect();
            assert!(!allowed.is_empty(), "{here}: no type");
            let values = samples(&schema, key, node);
            for value in &values {
                let doc = document(&schema, &tables, table, Some((key, value.clone())));
                if let Err(e) = fixture.load(&doc) {
                    panic!("{here} = {value} is offered by the schema but does not load: {e}");
                }
            }
            let offered: BTreeSet<&str> = values.iter().map(type_of).collect();
            for t in &allowed {
                assert!(
                    offered.contains(t),
                    "{here} takes a {t}, but the schema offers none to try: give it examples"
                );
            }
            for (t, value) in &wrong {
                if allowed.contains(t) {
                    continue;
                }
                let doc = document(&schema, &tables, table, Some((key, value.clone())));
                match fixture.load(&doc) {
                    Ok(_) => panic!(
                        "{here} = {value} loads, but the schema has no {t} there; {HOW_TO_FIX}"
                    ),
                    Err(e) => assert!(refused_for_its_type(&e, t), "{here} = {value}: {e}"),
                }
            }
            for shape in &all {
                let types = shape.types();
                if !types.contains("integer") && !types.contains("float") {
                    continue;
                }
                let step = if types.contains("float") { 0.5 } else { 1.0 };
                for past in bounds(shape).past(step) {
                    let number = number(past);
                    let doc = document(
                        &schema,
                        &tables,
                        table,
                        Some((key, shape.put(number.clone()))),
                    );
                    assert!(
                        fixture.load(&doc).is_err(),
                        "{here}: {number} is past the schema's bounds, yet loads; {HOW_TO_FIX}"
                    );
                }
            }
        }
    }
}

/// Signals by their conventional names: every one loads as a stop signal, and as a shutdown
/// signal exactly when the schema's list of shutdown signals has it.
#[test]
fn the_signal_lists_are_the_loaders() {
    let schema = the_schema();
    let names = |def: &str| -> Vec<String> {
        schema["$defs"][def]["anyOf"][0]["enum"]
            .as_array()
            .expect("an enum")
            .iter()
            .map(|v| v.as_str().expect("a name").to_string())
            .collect()
    };
    let all = names("signal");
    let shutdown = names("shutdown-signal");
    assert_eq!(all.len(), 31);
    let fixture = Fixture::new();
    for name in &all {
        let stop = json!({ "services": { "a": { "command": "x", "stop-signal": name } } });
        fixture.meaning(&stop);
        let doc = json!({ "tend": { "shutdown-signals": [name] }, "services": { "a": { "command": "x" } } });
        assert_eq!(
            fixture.load(&doc).is_ok(),
            shutdown.contains(name),
            "shutdown-signals = [{name}]"
        );
    }
}
