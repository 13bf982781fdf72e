//! `tend schema` and docs/tend.schema.json, checked from outside: the checked-in file is what
//! the binary prints, and an independent validator (Python's `jsonschema`, through
//! tests/helpers/validate_schema.py) accepts every example configuration, refuses broken ones,
//! and agrees with tend's loader on the values the schema's patterns describe.
//!
//! That the schema has every key, type, default and enum of the loader is checked inside the
//! crate, in src/config/json_schema/tests.rs.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

const REGENERATE: &str =
    "regenerate it with: TEND_WRITE_SCHEMA=1 cargo test --lib json_schema (then rebuild)";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path() -> PathBuf {
    root().join("docs/tend.schema.json")
}

/// One file for the validator: a TOML text, or a path to one.
enum Doc {
    Text(String),
    File(PathBuf),
}

struct Verdict {
    valid: bool,
    errors: Vec<String>,
}

/// Asks validate_schema.py about each document (one Python process for all of them). Fails
/// the test, rather than skipping it, when python3 or its jsonschema package is missing.
fn validate(docs: &[(String, Doc)]) -> Vec<Verdict> {
    let mut jobs: Vec<Value> = docs
        .iter()
        .map(|(name, doc)| match doc {
            Doc::Text(text) => json!({ "name": name, "toml": text }),
            Doc::File(path) => json!({ "name": name, "path": path }),
        })
        .collect();
    jobs.push(json!({ "name": "self-check", "self-check": true }));
    let script = helper("validate_schema.py");
    let child = Command::new("python3")
        .arg(&script)
        .arg(schema_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot run python3 ({e}): this test validates docs/tend.schema.json with Python's \
             jsonschema package; install python3 and python3-jsonschema (see .ci/run)"
        ),
    };
    let input = serde_json::to_vec(&jobs).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!(
            "Python's jsonschema package is missing: install python3-jsonschema (see \
             .ci/run)\n{stderr}"
        ),
        _ => panic!("{} failed: {:?}\n{stderr}", script.display(), out.status),
    }
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut results: Vec<Verdict> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Verdict {
            valid: r["valid"].as_bool().unwrap(),
            errors: r["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap().to_string())
                .collect(),
        })
        .collect();
    let self_check = results.pop().unwrap();
    assert!(
        self_check.valid,
        "a default or an example of the schema does not match it (jsonschema {}):\n{}",
        answer["jsonschema"],
        self_check.errors.join("\n")
    );
    assert_eq!(results.len(), docs.len());
    results
}

#[test]
fn the_checked_in_schema_is_what_tend_schema_prints() {
    let out = Command::new(tend_bin()).arg("schema").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let checked_in = std::fs::read_to_string(schema_path())
        .unwrap_or_else(|e| panic!("cannot read docs/tend.schema.json ({e}); {REGENERATE}"));
    assert!(
        printed == checked_in,
        "docs/tend.schema.json is not what `tend schema` prints; {REGENERATE}"
    );
    let help = Command::new(tend_bin()).arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("\n  schema "), "{help}");
}

/// The ```toml blocks of a Markdown file that are whole files (they have a service).
fn toml_blocks(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                if block.lines().any(|l| l.starts_with("[services.")) {
                    blocks.push(block.clone());
                }
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

fn import(format: &str, path: &str) -> String {
    let out = Command::new(tend_bin())
        .args(["import", format])
        .arg(root().join(path))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_example_configuration_is_valid() {
    let mut docs = Vec::new();
    let mut files = Vec::new();
    toml_files(&root().join("examples"), &mut files);
    let examples = files.len();
    toml_files(&root().join("fuzz/seeds/config"), &mut files);
    assert!(examples >= 3 && files.len() > examples, "{files:?}");
    for file in files {
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        docs.push((name, Doc::File(file)));
    }
    for markdown in ["docs/config.md", "README.md"] {
        let blocks = toml_blocks(&root().join(markdown));
        assert!(!blocks.is_empty(), "{markdown}: no TOML block");
        for (i, block) in blocks.into_iter().enumerate() {
            docs.push((format!("{markdown}, block {}", i + 1), Doc::Text(block)));
        }
    }
    let imported = [
        ("procfile", "tests/fixtures/import/Procfile"),
        (
            "supervisord",
            "tests/fixtures/import/debian/supervisord.conf",
        ),
    ];
    for (format, path) in imported {
        docs.push((
            format!("tend import {format} {path}"),
            Doc::Text(import(format, path)),
        ));
    }
    // The comment editors read (taplo, Even Better TOML) is only a comment to TOML.
    let with_comment = "#:schema ./tend.schema.json\n[services.a]\ncommand = \"x\"\n";
    docs.push(("#:schema".into(), Doc::Text(with_comment.into())));
    let verdicts = validate(&docs);
    let invalid: Vec<String> = docs
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| !v.valid)
        .map(|((name, _), v)| format!("{name}:\n  {}", v.errors.join("\n  ")))
        .collect();
    assert!(invalid.is_empty(), "not valid:\n{}", invalid.join("\n"));
}

#[test]
fn a_file_that_starts_with_the_schema_comment_loads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tend.toml");
    std::fs::write(
        &file,
        "#:schema ./tend.schema.json\n[services.a]\ncommand = [\"sleep\", \"1\"]\n",
    )
    .unwrap();
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A directory for the loader: `etc/passwd` and `etc/group` with `www-data`.
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
        Fixture { dir }
    }

    fn loads(&self, text: &str) -> Result<(), String> {
        let env = tend::config::Environment {
            etc: self.dir.path().join("etc"),
            tz: None,
            zoneinfo: "/usr/share/zoneinfo".into(),
            localtime: self.dir.path().join("localtime"),
        };
        tend::config::load_str(text, "tend.toml", self.dir.path(), &env)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Files that each break one rule: the validator refuses every one (so the validation above
/// cannot pass by accepting anything), and so does tend.
#[test]
fn the_validator_refuses_what_tend_refuses() {
    let service = "[services.a]\ncommand = \"x\"\n";
    let broken = [
        ("an unknown key in a service", format!("{service}restat = \"always\"\n")),
        ("an unknown key in [tend]", format!("[tend]\nmetrics = true\n{service}")),
        ("an unknown key in ready", format!("{service}ready = {{ tcp = \"a:1\", wait = 1 }}\n")),
        ("an unknown table", format!("{service}[global]\nx = 1\n")),
        ("a string for a boolean", format!("{service}critical = \"yes\"\n")),
        ("a number for a command", "[services.a]\ncommand = 5\n".to_string()),
        ("a string for a number", format!("{service}max-restarts = \"10\"\n")),
        ("a value outside an enum", format!("{service}restart = \"sometimes\"\n")),
        ("an unknown condition", "[services.a]\ncommand = \"x\"\n[services.b]\ncommand = \"x\"\ndepends-on = { a = \"healthy\" }\n".to_string()),
        ("a duration without a unit", format!("{service}stop-timeout = \"5\"\n")),
        ("a size without a unit", format!("{service}logs = {{ ring-max-size = \"10\" }}\n")),
        ("a number past its bound", format!("{service}health = {{ tcp = \"a:1\", failures = 0 }}\n")),
        ("two probes", format!("{service}ready = {{ tcp = \"a:1\", http = \"http://a/\" }}\n")),
        ("no probe", format!("{service}health = {{ interval = \"1s\" }}\n")),
        ("a group without a user", format!("{service}group = \"www-data\"\n")),
        ("an array with shell = true", "[services.a]\ncommand = [\"x\"]\nshell = true\n".to_string()),
        ("a service without a command", "[services.a]\nshell = false\n".to_string()),
        ("no service", "[tend]\nlog-timestamps = true\n".to_string()),
        ("KILL as a shutdown signal", format!("[tend]\nshutdown-signals = [\"KILL\"]\n{service}")),
        ("an https probe", format!("{service}ready = {{ http = \"https://a/\" }}\n")),
    ];
    let fixture = Fixture::new();
    let mut docs = vec![("a good file".to_string(), Doc::Text(service.to_string()))];
    for (what, text) in &broken {
        assert!(fixture.loads(text).is_err(), "tend loads {what}:\n{text}");
        docs.push((what.to_string(), Doc::Text(text.clone())));
    }
    let verdicts = validate(&docs);
    assert!(verdicts[0].valid, "{:?}", verdicts[0].errors);
    for ((what, doc), verdict) in docs.iter().zip(&verdicts).skip(1) {
        let Doc::Text(text) = doc else { unreachable!() };
        assert!(!verdict.valid, "the schema accepts {what}:\n{text}");
    }
}

/// Values of the keys whose syntax the schema gives as a pattern (durations, sizes, signals,
/// umasks, addresses, names): the validator and tend's loader agree on every one. (What the
/// schema cannot say is left out: a port above 65535, `backoff.initial` above `max`, a
/// fraction of a nanosecond, a name of a service that does not exist, ...)
#[test]
fn the_validator_and_tend_agree_on_the_patterns() {
    type Case = (&'static str, Vec<&'static str>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            "[services.a]\ncommand = \"x\"\nstop-timeout = {}\n",
            vec![
                "\"5s\"",
                "\"100ms\"",
                "\"1m 30s\"",
                "\" 9s \"",
                "\"1.5s\"",
                "\"2h\"",
                "\"1d\"",
                "\"1w\"",
                "\"1M\"",
                "\"1y\"",
                "\"500us\"",
                "\"5µs\"",
                "\"1h30m\"",
                "\"2 min\"",
                "5",
                "0.5",
                "0",
            ],
            vec![
                "\"9\"",
                "\"5 parsecs\"",
                "\"\"",
                "\"s\"",
                "\"-1s\"",
                "\"5S\"",
                "\"1.s\"",
                "-1",
                "-0.5",
                "\"5s,\"",
            ],
        ),
        (
            "[services.a]\ncommand = \"x\"\nlogs = {{ file = \"a.log\", max-size = {} }}\n",
            vec![
                "\"10MiB\"",
                "\"512 KiB\"",
                "\"1GB\"",
                "\"7B\"",
                "\"0MiB\"",
                "\" 2KB \"",
                "4096",
                "0",
            ],
            vec![
                "\"10\"",
                "\"10mb\"",
                "\"1.5MiB\"",
                "\"-1MiB\"",
                "\"MiB\"",
                "\"10 MiB extra\"",
                "\"10TiB\"",
                "-1",
            ],
        ),
        (
            "[services.a]\ncommand = \"x\"\numask = {}\n",
            vec![
                "\"0022\"", "\"027\"", "\"0\"", "\"0777\"", "\"00\"", "\"000\"", "\"0000\"", "0",
                "18", "511",
            ],
            vec![
                "\"0800\"",
                "\"1777\"",
                "\"00777\"",
                "\"\"",
                "\"abc\"",
                "\"8\"",
                "\"0o22\"",
                "512",
                "-1",
            ],
        ),
        (
            "[services.a]\ncommand = \"x\"\nstop-signal = {}\n",
            vec![
                "\"TERM\"",
                "\"SIGTERM\"",
                "\"sigterm\"",
                "\"Term\"",
                "\" hup \"",
                "\"15\"",
                "\"+15\"",
                "\"015\"",
                "\"1\"",
                "\"64\"",
                "\"32\"",
                "\"RTMIN\"",
                "\"RTMIN+3\"",
                "\"sigrtmax-1\"",
                "\"RTMIN+30\"",
                "\"RTMAX-30\"",
                "\"RTMAX\"",
                "\"IOT\"",
                "\"cld\"",
                "\"poll\"",
                "\"SIGKILL\"",
                "\"winch\"",
            ],
            vec![
                "\"TREM\"",
                "\"0\"",
                "\"65\"",
                "\"-15\"",
                "\"RTMIN+31\"",
                "\"RTMAX+1\"",
                "\"RTMAX-31\"",
                "\"SIG\"",
                "\"\"",
                "\"SIGSIGTERM\"",
                "\"SIG TERM\"",
                "15",
            ],
        ),
        (
            "[tend]\nshutdown-signals = [{}]\n[services.a]\ncommand = \"x\"\n",
            vec![
                "\"HUP\"",
                "\"sigusr1\"",
                "\"RTMIN+2\"",
                "\"10\"",
                "\"PWR\"",
                "\"ABRT\"",
                "\"iot\"",
                "\"33\"",
            ],
            vec![
                "\"KILL\"",
                "\"sigstop\"",
                "\"9\"",
                "\"CHLD\"",
                "\"cld\"",
                "\"SEGV\"",
                "\"11\"",
                "\"SYS\"",
                "\"31\"",
                "\"bus\"",
                "\"TRAP\"",
                "\"4\"",
            ],
        ),
        (
            "[services.{}]\ncommand = \"x\"\n",
            vec!["web", "\"web.v2\"", "a_b-c", "0", "\"A.\""],
            vec!["\"web app\"", "\"é\"", "\"a/b\"", "\"\"", "\"a:b\""],
        ),
        (
            "[tend]\nhttp = {}\n[services.a]\ncommand = \"x\"\n",
            vec![
                "\"127.0.0.1:9100\"",
                "\"0.0.0.0:1\"",
                "\":9100\"",
                "\"9100\"",
                "\"[::1]:9100\"",
                "\"[fe80::1]:80\"",
            ],
            vec![
                "\"localhost:9100\"",
                "\"127.0.0.1\"",
                "\":\"",
                "\"\"",
                "\"127.0.0.1:x\"",
                "\"[::1]\"",
                "\"http://a:1\"",
                "\"::1:80\"",
                "9100",
            ],
        ),
        (
            "[services.a]\ncommand = \"x\"\nready = {{ tcp = {} }}\n",
            vec![
                "\"127.0.0.1:5432\"",
                "\"db:5432\"",
                "\"[::1]:8080\"",
                "\"my_db.local:1\"",
            ],
            vec![
                "\"db\"",
                "\"db:\"",
                "\":5432\"",
                "\"https://x:1\"",
                "\"a b:1\"",
                "\"::1:80\"",
            ],
        ),
        (
            "[services.a]\ncommand = \"x\"\nhealth = {{ http = {} }}\n",
            vec![
                "\"http://127.0.0.1:8080/health\"",
                "\"http://web\"",
                "\"HTTP://web/x?y=1\"",
                "\"http://[::1]:80/\"",
                "\"http://web?x\"",
                "\"http://web/%20\"",
            ],
            vec![
                "\"https://web/\"",
                "\"web/health\"",
                "\"http://\"",
                "\"http://web/a b\"",
                "\"http://web/#x\"",
                "\"ftp://web\"",
                "\"http://user@web/\"",
            ],
        ),
        (
            "[services.a]\ncommand = \"x\"\nenv = {{ {} = \"v\" }}\n",
            vec!["APP_ENV", "\"a.b\"", "\"1x\""],
            vec!["\"A=B\"", "\"A B\"", "\"\"", "\"A\\tB\""],
        ),
        (
            "[services.a]\ncommand = {}\n",
            vec!["\"x\"", "[\"x\"]", "[\"x\", \"\"]", "\"  x  \""],
            vec!["\"\"", "\"   \"", "[]", "true"],
        ),
        (
            "[services.a]\ncommand = \"x\"\nuser = {}\n",
            vec!["\"www-data\"", "33", "\"33\"", "0", "4294967294"],
            vec!["\"\"", "-1", "4294967295", "1.5"],
        ),
    ];
    let fixture = Fixture::new();
    let mut docs = Vec::new();
    let mut expected = Vec::new();
    for (template, good, bad) in &cases {
        for (value, ok) in good
            .iter()
            .map(|v| (v, true))
            .chain(bad.iter().map(|v| (v, false)))
        {
            let text = template
                .replacen("{}", value, 1)
                .replace("{{", "{")
                .replace("}}", "}");
            let loaded = fixture.loads(&text);
            assert_eq!(
                loaded.is_ok(),
                ok,
                "tend {} {value}, which this test expects it to {}:\n{text}\n{loaded:?}",
                if loaded.is_ok() { "loads" } else { "refuses" },
                if ok { "load" } else { "refuse" }
            );
            docs.push((value.to_string(), Doc::Text(text)));
            expected.push(ok);
        }
    }
    let verdicts = validate(&docs);
    let disagree: Vec<String> = docs
        .iter()
        .zip(&verdicts)
        .zip(&expected)
        .filter(|((_, v), ok)| v.valid != **ok)
        .map(|(((value, doc), v), ok)| {
            let Doc::Text(text) = doc else { unreachable!() };
            let side = if *ok { "refuses" } else { "accepts" };
            format!(
                "the schema {side} {value}, unlike tend:\n{text}{:?}",
                v.errors
            )
        })
        .collect();
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
