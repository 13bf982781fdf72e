//! Arbitrary runit service directories, made on disk from the input, to `tend import runit`
//! (`tend::config::import::import_on` with `Format::Runit`): it must give TOML or an error,
//! never panic; the TOML must parse as TOML, with one service per directory whose `run` is
//! executable and a UTF-8 path, each running exactly that `run` file in its directory
//! (names are arbitrary bytes: quotes, backslashes, control characters, invalid UTF-8);
//! two directories that make the same service name are refused; loading it must not panic.
//!
//! Input: entries separated by 0x00 (a name cannot hold one). Each entry's first byte says
//! what the directory holds (bit 0: `run`, bit 1: `run` is executable, bit 2: an executable
//! `check`, bit 3: `down`, bit 4: `finish`, bit 5: `log/run`, bit 6: a `control/`
//! directory); the rest is the directory's name ('/' dropped, at most 255 bytes). The first
//! entry's bit 7 puts a `run` in the top directory itself, which then is the one service.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tend::config::import::{Format, Host, import_on};
use tend::config::{Environment, load_str};

static ROOT: OnceLock<PathBuf> = OnceLock::new();

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn remove_root() {
    if let Some(root) = ROOT.get() {
        let _ = std::fs::remove_dir_all(root);
    }
}

fn root() -> &'static Path {
    ROOT.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("tend-fuzz-runit")
            .tempdir()
            .expect("temp dir")
            .keep();
        // SAFETY: registers a plain `extern "C" fn()`, as atexit(3) expects.
        unsafe { atexit(remove_root) };
        root
    })
}

/// The name tend gives the service in `dir`, worked out here again.
fn service_name(dir: &Path) -> String {
    let raw = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "service".into()
    } else {
        name
    }
}

fn file(path: &Path, executable: bool) {
    std::fs::write(path, "#!/bin/sh\n").expect("write");
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fuzz_target!(|data: &[u8]| {
    let top = root().join("service");
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir(&top).expect("top dir");
    let mut entries = data.split(|&b| b == 0);
    let mut services: BTreeSet<PathBuf> = BTreeSet::new();
    let top_is_service = data.first().is_some_and(|b| b & 0x80 != 0);
    if top_is_service {
        file(&top.join("run"), true);
        services.insert(top.clone());
    }
    for entry in entries.by_ref().take(32) {
        let Some((&flags, name)) = entry.split_first() else {
            continue;
        };
        let name: Vec<u8> = name
            .iter()
            .copied()
            .filter(|&b| b != b'/')
            .take(255)
            .collect();
        if name.is_empty() || name == b"." || name == b".." {
            continue;
        }
        let dir = top.join(OsStr::from_bytes(&name));
        if std::fs::create_dir(&dir).is_err() {
            continue; // the same name twice
        }
        if flags & 1 != 0 {
            file(&dir.join("run"), flags & 2 != 0);
            // A path that is not UTF-8 cannot be written in TOML: skipped, with a note.
            if flags & 2 != 0 && !top_is_service && dir.to_str().is_some() {
                services.insert(dir.clone());
            }
        }
        if flags & 4 != 0 {
            file(&dir.join("check"), true);
        }
        if flags & 8 != 0 {
            file(&dir.join("down"), false);
        }
        if flags & 16 != 0 {
            file(&dir.join("finish"), true);
        }
        if flags & 32 != 0 {
            std::fs::create_dir(dir.join("log")).expect("log dir");
            file(&dir.join("log/run"), true);
        }
        if flags & 64 != 0 {
            std::fs::create_dir(dir.join("control")).expect("control dir");
        }
    }
    let imported = match import_on(Format::Runit, &top, &Host::default()) {
        Ok(imported) => imported,
        Err(e) => {
            // Refused: nothing to import, or two directories that make the same name.
            let names: BTreeSet<String> = services.iter().map(|d| service_name(d)).collect();
            assert!(
                services.is_empty() || names.len() < services.len(),
                "refused with services to import: {e}"
            );
            return;
        }
    };
    let table: toml::Table = match toml::from_str(&imported.toml) {
        Ok(t) => t,
        Err(e) => panic!("not TOML: {e}\n{}", imported.toml),
    };
    let got = table
        .get("services")
        .and_then(|s| s.as_table())
        .expect("a services table");
    assert_eq!(got.len(), services.len(), "{}", imported.toml);
    // Each service runs its own `run`, in its own directory, whatever the name holds.
    let mut runs: BTreeSet<String> = BTreeSet::new();
    for (name, service) in got {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "service name {name:?}"
        );
        let command = service["command"].as_array().expect("command");
        let workdir = service["workdir"].as_str().expect("workdir");
        assert_eq!(command.len(), 1);
        assert_eq!(command[0].as_str(), Some(format!("{workdir}/run").as_str()));
        assert_eq!(name, &service_name(Path::new(workdir)));
        runs.insert(workdir.to_string());
    }
    let want: BTreeSet<String> = services
        .iter()
        .map(|d| d.to_str().expect("UTF-8").to_string())
        .collect();
    assert_eq!(runs, want);
    let _ = load_str(
        &imported.toml,
        "imported.toml",
        &std::env::temp_dir(),
        &Environment::default(),
    );
});
