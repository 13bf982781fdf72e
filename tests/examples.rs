//! The examples under `examples/`: each configuration loads without a single warning, each
//! Dockerfile holds together, and the examples of the use cases do what their READMEs say.
//!
//! The runs use the example's own `tend.toml`, unchanged, with stand-ins on `PATH` for the
//! programs it names (`java`, `rsyslogd`, the app; `ledger` is built from its source), and
//! tend as PID 1 of a sandbox: new pid, network, IPC and mount namespaces, with `/run` and
//! `/var/log` on tmpfs, so the example's own paths, socket and ports serve and nothing of the
//! host is touched.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

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
        "java-inspect/tend.toml",
        "legacy-shm/tend.toml",
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

/// A directory of stand-ins for the programs an example runs, readable and executable by
/// any user (an example may run its service as another user).
struct StandIns {
    dir: tempfile::TempDir,
}

impl StandIns {
    fn new() -> StandIns {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        StandIns { dir }
    }

    /// Adds an executable script `name`.
    fn script(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `PATH` with the stand-ins first.
    fn search_path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

/// tend running an example's configuration as PID 1 of a sandbox.
struct Sandbox {
    tend: Running,
    /// tend's pid on the host, for `nsenter`.
    pid: i32,
}

impl Sandbox {
    /// `tend run CONFIG` in new pid, network, IPC and mount namespaces, with loopback up,
    /// tmpfs on `/run` and `/var/log`, each `(from, onto)` of `binds` bind-mounted, the
    /// stand-ins first on `PATH`, and `STANDIN_DIR` naming their directory.
    fn start(config: &Path, stand_ins: &StandIns, binds: &[(&Path, &Path)]) -> Sandbox {
        let mut script = String::from(
            "set -e; ip link set lo up; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /var/log; ",
        );
        for (from, onto) in binds {
            script += &format!("mount --bind '{}' '{}'; ", from.display(), onto.display());
        }
        script += "exec \"$@\"";
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            "--net",
            "--ipc",
            "--mount",
        ])
        .args(["sh", "-c", &script, "sh", tend_bin(), "run"])
        .arg(config)
        .env("PATH", stand_ins.search_path())
        .env("STANDIN_DIR", stand_ins.dir.path());
        let tend = Running::start(cmd);
        let pid = tend.tend_pid_under_unshare();
        Sandbox { tend, pid }
    }

    /// Runs a command inside the sandbox's network and mount namespaces: (exit code, stdout).
    fn exec(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new("nsenter")
            .args(["--target", &self.pid.to_string(), "--net", "--mount", "--"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// A `tend` client command inside the sandbox.
    fn tend(&self, args: &[&str]) -> (i32, String) {
        self.exec(&[&[tend_bin()], args].concat())
    }

    /// `GET http://127.0.0.1:PORT/PATH` inside the sandbox: "STATUS BODY".
    fn http_get(&self, port: u16, path: &str) -> String {
        let get = format!(
            "import urllib.request, urllib.error\n\
             try:\n    r = urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=5)\n    print(r.status, r.read().decode().strip())\n\
             except urllib.error.HTTPError as e:\n    print(e.code, e.read().decode().strip())\n"
        );
        self.exec(&["python3", "-c", &get]).1.trim().to_string()
    }

    fn logs(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.tend.stdout(),
            self.tend.stderr()
        )
    }
}

/// Stands in for `java ... -jar app.jar`: a Spring Boot build that starts, then fails as a bad
/// build does once the test says so, with the stack trace on stderr and exit code 1.
const JAVA: &str = r#"#!/bin/sh
echo "Starting OrdersApplication using Java 17 with PID $$ as uid $(id -u)"
echo "Started OrdersApplication in 0.1 seconds"
while [ ! -e "$STANDIN_DIR/crash" ]; do sleep 0.05; done
echo "APPLICATION FAILED TO START" >&2
echo "Caused by: java.lang.IllegalStateException: no DataSource" >&2
exit 1
"#;

/// Use case 3 with the example's own file: the app runs once as uid 1000; when it crashes,
/// tend and so the container stay up with the scene to inspect (its state, its last words),
/// `tend health` fails and `/readyz` answers 503, `/livez` still 200; `docker stop` then ends
/// it cleanly.
#[test]
fn java_inspect_keeps_the_container_up_after_the_crash() {
    let stand_ins = StandIns::new();
    stand_ins.script("java", JAVA);
    let mut s = Sandbox::start(
        &examples_dir().join("java-inspect/tend.toml"),
        &stand_ins,
        &[],
    );
    wait_log(&s.tend, "app | Started OrdersApplication");
    assert!(s.tend.stdout().contains("as uid 1000"), "{}", s.logs());
    assert_eq!(s.tend(&["health"]).0, 0, "{}", s.logs());

    std::fs::write(stand_ins.path("crash"), "").unwrap();
    wait_log(&s.tend, "'app' has failed for good (code 1)");
    // The scene stays: tend still runs, the service is shown failed, its last words kept.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        s.tend.child.try_wait().unwrap().is_none(),
        "tend must stay up after the app failed\n{}",
        s.logs()
    );
    let (_, status) = s.tend(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["services"][0]["state"], "failed", "{status}");
    let (code, logs) = s.tend(&["logs", "app"]);
    assert_eq!(code, 0);
    assert!(logs.contains("APPLICATION FAILED TO START"), "{logs}");
    // Unhealthy, no traffic; alive, no restart.
    let (code, health) = s.tend(&["health"]);
    assert_eq!(
        (code, health.trim()),
        (1, "'app' has failed"),
        "{}",
        s.logs()
    );
    assert_eq!(s.http_get(9100, "/readyz"), "503 'app' has failed");
    assert_eq!(s.http_get(9100, "/livez"), "200 ok");
    assert!(!s.tend.stderr().contains("warning"), "{}", s.logs());

    send(s.pid, "TERM");
    assert_eq!(s.tend.code(LIMIT), 0, "{}", s.logs());
}

/// Use case 6 with the example's own file and program (`ledger.c`, compiled here): the
/// segment the ledger keeps its state in is saved when the container stops and made again
/// before anything starts in the next container (a new IPC namespace, the same volume), so
/// the second start finds the first one's count; and the watcher reads the same segment.
#[test]
fn legacy_shm_state_survives_a_new_container() {
    let example = examples_dir().join("legacy-shm");
    let stand_ins = StandIns::new();
    let built = Command::new("cc")
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(stand_ins.path("ledger"))
        .arg(example.join("ledger.c"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "cc ledger.c: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    // The volume: the example's state/ directory, as the containers see it.
    let volume = tempfile::tempdir().unwrap();
    let state = example.join("state");
    let binds = [(volume.path(), state.as_path())];
    let config = example.join("tend.toml");
    let saved = volume.path().join("shm.bin");

    let mut first = Sandbox::start(&config, &stand_ins, &binds);
    wait_log(&first.tend, "ledger | start 1, 0 entries so far");
    wait_log(&first.tend, "watch  | 1 starts, ");
    send(first.pid, "TERM");
    assert_eq!(first.tend.code(LIMIT), 0, "{}", first.logs());
    let err = first.tend.stderr();
    assert!(
        err.contains("shared memory: saved 1 segment(s), 4096 bytes, to "),
        "{}",
        first.logs()
    );
    assert!(saved.is_file(), "{}", first.logs());
    // Saved after both services had stopped, watch first.
    let at = |what: &str| {
        err.find(what)
            .unwrap_or_else(|| panic!("no {what:?}\n{}", first.logs()))
    };
    assert!(
        at("'watch' (pid ") < at("'ledger' (pid "),
        "{}",
        first.logs()
    );
    assert!(
        at("'ledger' (pid ") < at("shared memory: saved"),
        "{}",
        first.logs()
    );

    let mut second = Sandbox::start(&config, &stand_ins, &binds);
    wait_log(&second.tend, "ledger | start 2, ");
    let err = second.tend.stderr();
    let restored = err
        .find("shared memory: restored segment 0x4c454447 (4096 bytes)")
        .unwrap_or_else(|| panic!("not restored\n{}", second.logs()));
    assert!(
        restored < err.find("spawned 'ledger'").unwrap(),
        "restored before any service starts\n{}",
        second.logs()
    );
    assert!(
        !second.tend.stdout().contains("new ledger"),
        "{}",
        second.logs()
    );
    assert!(!err.contains("warning"), "{}", second.logs());
    send(second.pid, "TERM");
    assert_eq!(second.tend.code(LIMIT), 0, "{}", second.logs());
}
