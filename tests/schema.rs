//! `tend schema` and docs/tend.schema.json: the checked-in file is what the binary prints.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const REGENERATE: &str = "regenerate it with: cargo run -- schema > docs/tend.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path() -> PathBuf {
    root().join("docs/tend.schema.json")
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
