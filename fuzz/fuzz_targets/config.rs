//! Arbitrary bytes as a configuration file: loading must return a configuration or a
//! ConfigError (and rendering that error must work), never panic.
//!
//! Relative paths in the file (`env-file`, `workdir`, `socket`) resolve against a fixed,
//! empty temporary directory, and users and groups against a fixed `passwd` and `group`, so
//! every run sees the same file system and a crash reproduces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use tend::config::Environment;

struct Fixture {
    /// Removed at exit (statics are never dropped, so a `TempDir` would be left behind).
    root: PathBuf,
    base: PathBuf,
    env: Environment,
    /// `TEND_FUZZ_VERBOSE=1`: print what each input loads to (for looking at single inputs,
    /// e.g. `.../config fuzz/seeds/config/*`).
    verbose: bool,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// libFuzzer ends with `exit()` when a run is over (`-max_total_time`, `-runs`), which runs
/// this; after a crash the directory stays, which does not matter.
extern "C" fn remove_fixture() {
    if let Some(f) = FIXTURE.get() {
        let _ = std::fs::remove_dir_all(&f.root);
    }
}

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("tend-fuzz-config")
            .tempdir()
            .expect("temp dir")
            .keep();
        // SAFETY: registers a plain `extern "C" fn()`, as atexit(3) expects.
        unsafe { atexit(remove_fixture) };
        let base = root.join("base");
        let etc = root.join("etc");
        std::fs::create_dir(&base).expect("base dir");
        std::fs::create_dir(&etc).expect("etc dir");
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
             app:x:1000:1000::/home/app:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            etc.join("group"),
            "root:x:0:\nadm:x:4:app\nwww-data:x:33:\napp:x:1000:\n",
        )
        .expect("group");
        // One env-file the fuzzer can find by name (`env-file = "app.env"`).
        std::fs::write(
            base.join("app.env"),
            "A=1\nexport B='two words'\n# comment\n",
        )
        .expect("env file");
        Fixture {
            root,
            base,
            env: Environment { etc },
            verbose: std::env::var_os("TEND_FUZZ_VERBOSE").is_some(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let outcome = match tend::config::load_str(text, "fuzz.toml", &f.base, &f.env) {
        Ok(loaded) => format!(
            "ok, {} service(s), {} warning(s)\n{}",
            loaded.spec.services.len(),
            loaded.warnings.len(),
            loaded.warnings.join("\n")
        ),
        // tend prints the error; rendering it (excerpt, line and column) must not panic.
        Err(e) => e.to_string(),
    };
    if f.verbose {
        eprintln!("--- {outcome}");
    } else {
        std::hint::black_box(outcome);
    }
});
