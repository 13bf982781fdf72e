//! The examples under `examples/`: each configuration loads without a single warning.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every configuration under `examples/`: `examples/*.toml` and `examples/*/tend.toml`.
fn example_configs() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        } else if path.is_dir() {
            let config = path.join("tend.toml");
            assert!(config.is_file(), "{} has no tend.toml", path.display());
            found.push(config);
        }
    }
    found.sort();
    found
}

/// `tend check` on every example: it loads, and tend has nothing to say about it on stderr,
/// where its warnings go. A new example is picked up by itself.
#[test]
fn every_example_loads_without_a_warning() {
    let configs = example_configs();
    let names: Vec<String> = configs
        .iter()
        .map(|p| {
            p.strip_prefix(examples_dir())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for known in [
        "demo.toml",
        "nginx-php/tend.toml",
        "app-with-migration/tend.toml",
    ] {
        assert!(
            names.iter().any(|n| n == known),
            "{known} not found in {names:?}"
        );
    }
    for (config, name) in configs.iter().zip(&names) {
        let out = Command::new(tend_bin())
            .arg("check")
            .arg(config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        assert!(
            stderr.is_empty(),
            "{name} must load without a warning, tend check said:\n{stderr}"
        );
        assert!(stdout.contains(": ok, "), "{name}: {stdout}");
    }
}
