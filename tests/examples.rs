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
        "log-shipper/tend.toml",
        "web-redis/tend.toml",
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

/// One instruction of a Dockerfile: the line it starts on, its keyword as written, and its
/// arguments with continuation lines joined (comment lines between them left out, as Docker
/// does).
struct Instruction {
    line: usize,
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut found = Vec::new();
    let mut current: Option<Instruction> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (body, more) = match trimmed.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (trimmed, false),
        };
        match &mut current {
            Some(ins) => {
                ins.args.push(' ');
                ins.args.push_str(body);
            }
            None => {
                let (keyword, args) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
                current = Some(Instruction {
                    line: i + 1,
                    keyword: keyword.to_string(),
                    args: args.trim().to_string(),
                });
            }
        }
        if !more {
            found.extend(current.take());
        }
    }
    assert!(current.is_none(), "the last line continues into nothing");
    found
}

/// An exec-form argument list (`["a", "b"]`), which must be a JSON array of strings.
fn exec_form(args: &str, at: &str) -> Vec<String> {
    let parsed: serde_json::Value =
        serde_json::from_str(args).unwrap_or_else(|e| panic!("{at}: not JSON: {e}: {args}"));
    parsed
        .as_array()
        .unwrap_or_else(|| panic!("{at}: not an array: {args}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{at}: not a string: {v}"))
                .to_string()
        })
        .collect()
}

/// No image can be built here (no registry is reachable), so each example's Dockerfile is
/// read instead: known instructions, FROM first, no comment at the end of an instruction
/// (Docker would pass it on as arguments), exec forms that are JSON arrays, every file it
/// copies present or named in its opening comment (tend, the app), tend copied to
/// /sbin/tend and run as `tend run` on the place the example's tend.toml is copied to, and
/// a HEALTHCHECK, if any, that asks `tend health`.
#[test]
fn every_dockerfile_holds_together() {
    const KNOWN: [&str; 18] = [
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
        "MAINTAINER",
    ];
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let dir = entry.unwrap().path();
        let path = dir.join("Dockerfile");
        if !path.is_file() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        // The opening comment says what to put next to the Dockerfile before building.
        let header: String = text
            .lines()
            .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let all = instructions(&text);
        assert!(
            all.iter()
                .find(|i| i.keyword != "ARG")
                .is_some_and(|i| i.keyword == "FROM"),
            "{name}/Dockerfile must start with FROM"
        );
        let mut tend_copied = false;
        let mut config_copied_to = Vec::new();
        let mut entrypoint = None;
        for ins in &all {
            let at = format!("{name}/Dockerfile:{}", ins.line);
            assert!(
                KNOWN.contains(&ins.keyword.as_str()),
                "{at}: unknown instruction {:?}",
                ins.keyword
            );
            assert!(
                !ins.args.contains(" #"),
                "{at}: a comment must have a line of its own: {}",
                ins.args
            );
            let exec = |args: &str| exec_form(args, &at);
            match ins.keyword.as_str() {
                "FROM" => assert!(
                    ins.args.starts_with("debian:"),
                    "{at}: the examples build on Debian: {}",
                    ins.args
                ),
                "COPY" | "ADD" if !ins.args.starts_with("--from=") => {
                    let words: Vec<&str> = ins.args.split_whitespace().collect();
                    assert!(words.len() >= 2, "{at}: COPY SOURCE... DEST");
                    let (dest, sources) = words.split_last().unwrap();
                    for src in sources {
                        let named = header
                            .split(|c: char| !(c.is_alphanumeric() || "._-".contains(c)))
                            .any(|w| w == *src);
                        assert!(
                            dir.join(src).exists() || named,
                            "{at}: {src} is neither in examples/{name} nor named in the \
                             Dockerfile's opening comment"
                        );
                        if *src == "tend" {
                            assert_eq!(*dest, "/sbin/tend", "{at}");
                            tend_copied = true;
                        }
                        if *src == "tend.toml" {
                            config_copied_to.push(dest.to_string());
                        }
                    }
                }
                "ENTRYPOINT" => entrypoint = Some(exec(&ins.args)),
                "CMD" | "VOLUME" | "SHELL" | "RUN" if ins.args.starts_with('[') => {
                    exec(&ins.args);
                }
                "HEALTHCHECK" => {
                    let (_, cmd) = ins
                        .args
                        .split_once("CMD ")
                        .unwrap_or_else(|| panic!("{at}: HEALTHCHECK without CMD"));
                    assert_eq!(exec(cmd.trim()), ["/sbin/tend", "health"], "{at}");
                }
                "STOPSIGNAL" => assert!(
                    ["SIGTERM", "SIGINT"].contains(&ins.args.as_str()),
                    "{at}: tend stops gracefully on SIGTERM or SIGINT: {}",
                    ins.args
                ),
                _ => {}
            }
        }
        assert!(
            tend_copied,
            "{name}/Dockerfile does not COPY tend /sbin/tend"
        );
        let entrypoint =
            entrypoint.unwrap_or_else(|| panic!("{name}/Dockerfile has no ENTRYPOINT"));
        assert_eq!(
            entrypoint[..2],
            ["/sbin/tend", "run"],
            "{name}/Dockerfile: ENTRYPOINT"
        );
        assert!(
            entrypoint.len() == 3 && config_copied_to.contains(&entrypoint[2]),
            "{name}/Dockerfile runs {entrypoint:?}, but copies tend.toml to {config_copied_to:?}"
        );
        checked.push(name);
    }
    checked.sort();
    for known in [
        "java-inspect",
        "legacy-shm",
        "log-shipper",
        "nginx-php",
        "web-redis",
    ] {
        assert!(checked.iter().any(|c| c == known), "{known}: {checked:?}");
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

/// Stands in for `rsyslogd -n` in the log-shipper example: says READY=1 on `NOTIFY_SOCKET` as
/// rsyslog does, follows `/var/log/app.log` as its imfile input does and "ships" each line to
/// its stdout. On TERM it notes whether the app was still there, reads the file to its end
/// and only then exits, as a shipper that loses nothing must.
const RSYSLOGD: &str = r#"#!/usr/bin/env python3
import os, signal, socket, time

stopping = False

def on_term(signum, frame):
    global stopping
    stopping = True
    pid = open("/run/app.pid").read().strip()
    alive = os.path.exists("/proc/" + pid)
    print("stop began with the app " + ("running" if alive else "gone"), flush=True)

signal.signal(signal.SIGTERM, on_term)
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\0" + address[1:]
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", address)
log, pending = None, b""
while True:
    # Asked to stop before this read: what it returns is all there will be.
    last_round = stopping
    if log is None and os.path.exists("/var/log/app.log"):
        log = open("/var/log/app.log", "rb")
    chunk = log.read() if log else b""
    if chunk:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            print("shipped: " + line.decode(), flush=True)
    elif last_round:
        break
    else:
        time.sleep(0.01)
print("drained, exiting", flush=True)
"#;

/// Stands in for the Go app of the log-shipper example: numbered lines on stdout, and last
/// words naming the last line when it stops: exit 0 on TERM, or exit 3 when the test says
/// it crashes.
const APP: &str = r#"#!/usr/bin/env python3
import os, signal, sys, time

written = 0

def on_term(signum, frame):
    time.sleep(0.2)  # a shipper stopped at the same time would find the app still there
    print("last words after line %d: stopping on TERM" % written, flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
open("/run/app.pid", "w").write(str(os.getpid()))
crash = os.path.join(os.environ["STANDIN_DIR"], "crash")
while True:
    # TERM waits while a line is written and counted, so the last words count right.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    print("line %d" % (written + 1), flush=True)
    written += 1
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    if os.path.exists(crash):
        print("last words after line %d: fatal: database gone" % written, flush=True)
        sys.exit(3)
    time.sleep(0.01)
"#;

fn log_shipper() -> (StandIns, Sandbox) {
    let stand_ins = StandIns::new();
    stand_ins.script("rsyslogd", RSYSLOGD);
    stand_ins.script("app", APP);
    let s = Sandbox::start(
        &examples_dir().join("log-shipper/tend.toml"),
        &stand_ins,
        &[],
    );
    wait_log(&s.tend, "shipper | shipped: line 20");
    (stand_ins, s)
}

/// Checks that the shipper shipped every line the app wrote, in order, ending with its last
/// words (which end in `why`); that it started before the app, and that its stop began after
/// the app was gone; and that it drained and exited 0 without being killed.
fn assert_everything_shipped(s: &Sandbox, why: &str) {
    let (out, err, logs) = (s.tend.stdout(), s.tend.stderr(), s.logs());
    let shipped: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("shipper | shipped: "))
        .collect();
    let last = shipped
        .last()
        .and_then(|l| l.strip_prefix("last words after line "))
        .and_then(|l| l.strip_suffix(why))
        .and_then(|n| n.strip_suffix(": "))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("the app's last words ({why:?}) were not shipped last\n{logs}"));
    let want: Vec<String> = (1..=last).map(|i| format!("line {i}")).collect();
    assert!(
        shipped[..shipped.len() - 1] == want[..],
        "the app wrote lines 1..={last}, the shipper shipped {} before its last words\n{logs}",
        shipped.len() - 1
    );
    assert!(
        out.contains("shipper | stop began with the app gone"),
        "the shipper must be stopped after the app has ended\n{logs}"
    );
    assert!(out.contains("shipper | drained, exiting"), "{logs}");
    let at = |what: &str| {
        err.find(what)
            .unwrap_or_else(|| panic!("no {what:?}\n{logs}"))
    };
    assert!(
        at("spawned 'shipper'") < at("spawned 'app'"),
        "the shipper starts first\n{logs}"
    );
    let shipper_end = err.lines().find(|l| l.contains("'shipper' (pid "));
    assert!(
        shipper_end.is_some_and(|l| l.ends_with("ended: exit code 0")),
        "the shipper should exit 0 once drained, not {shipper_end:?}\n{logs}"
    );
    assert!(!err.contains("warning"), "{logs}");
}

/// Use case 2, `docker stop`, with the example's own file: the app stops first, its last
/// words still reach the shipper through tend's log file, the shipper stops last having
/// shipped every line, and the container exits 0.
#[test]
fn log_shipper_stops_last_and_loses_no_line() {
    let (_stand_ins, mut s) = log_shipper();
    send(s.pid, "TERM");
    assert_eq!(s.tend.code(LIMIT), 0, "{}", s.logs());
    assert_everything_shipped(&s, "stopping on TERM");
}

/// Use case 2, the app dies: it is critical and not restarted, so the container ends with
/// its exit code, but only after the shipper has shipped its last words and stopped.
#[test]
fn log_shipper_app_exit_ends_the_container_after_the_shipper_drained() {
    let (stand_ins, mut s) = log_shipper();
    std::fs::write(stand_ins.path("crash"), "").unwrap();
    assert_eq!(s.tend.code(LIMIT), 3, "{}", s.logs());
    assert_everything_shipped(&s, "fatal: database gone");
}

/// Use case 2, the shipper dies: the container stays up, tend starts the shipper again, and
/// the app goes on as it was (the same process).
#[test]
fn log_shipper_death_does_not_end_the_container() {
    let (_stand_ins, mut s) = log_shipper();
    let app_pid = |s: &Sandbox| {
        let (_, status) = s.tend(&["status", "--json", "app"]);
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        status["services"][0]["pid"].clone()
    };
    let before = app_pid(&s);
    let (code, _) = s.tend(&["signal", "KILL", "shipper"]);
    assert_eq!(code, 0, "{}", s.logs());
    wait_log(&s.tend, "'shipper' (pid ");
    wait_for("the shipper to be started again", LIMIT, || {
        (s.tend.stderr().matches("spawned 'shipper'").count() == 2).then_some(())
    });
    assert!(s.tend.child.try_wait().unwrap().is_none(), "{}", s.logs());
    assert_eq!(app_pid(&s), before, "{}", s.logs());
    send(s.pid, "TERM");
    assert_eq!(s.tend.code(LIMIT), 0, "{}", s.logs());
}

/// Stands in for each program of the web-redis example, by the name it is run as: it
/// listens on that program's port, if it has one (the `ready` probes connect there), and
/// stops only on that program's graceful stop signal, appending to `$STANDIN_DIR/events`
/// when its stop begins and when it is done (redis: "saved", once its snapshot is written).
/// Any other stop signal is wrong: noted, exit 1.
const WEB_REDIS: &str = r#"#!/usr/bin/env python3
import os, signal, socket, sys, time

name = os.path.basename(sys.argv[0])
stop = {"redis-server": signal.SIGTERM, "app": signal.SIGTERM, "nginx": signal.SIGQUIT}[name]
port = {"redis-server": 6379, "app": 8080}.get(name)
events = os.path.join(os.environ["STANDIN_DIR"], "events")

def note(what):
    with open(events, "a") as f:
        f.write(name + " " + what + "\n")

def on_signal(signum, frame):
    if signum != stop:
        note("got the wrong signal " + signal.Signals(signum).name)
        sys.exit(1)
    note("stopping")
    time.sleep(0.3)  # finishing requests, or writing the snapshot
    note("saved" if name == "redis-server" else "done")
    sys.exit(0)

for s in (signal.SIGTERM, signal.SIGQUIT, signal.SIGINT):
    signal.signal(s, on_signal)
if port:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
print(name + " up", flush=True)
while True:
    time.sleep(1)
"#;

/// Use case 4 with the example's own file: started in dependency order, each once the one
/// before is ready; on `docker stop`, nginx, the app and redis stop in that order, each on
/// its own signal, one after the other, redis's snapshot written before tend exits 0 and
/// nothing killed.
#[test]
fn web_redis_stops_in_reverse_order_each_its_own_way() {
    let stand_ins = StandIns::new();
    for name in ["redis-server", "app", "nginx"] {
        stand_ins.script(name, WEB_REDIS);
    }
    let mut s = Sandbox::start(&examples_dir().join("web-redis/tend.toml"), &stand_ins, &[]);
    wait_log(&s.tend, "nginx | nginx up");
    let err = s.tend.stderr();
    let spawned = |name: &str| {
        err.find(&format!("spawned '{name}'"))
            .unwrap_or_else(|| panic!("{name} not spawned\n{}", s.logs()))
    };
    assert!(spawned("redis") < spawned("app") && spawned("app") < spawned("nginx"));

    send(s.pid, "TERM");
    assert_eq!(s.tend.code(LIMIT), 0, "{}", s.logs());
    assert_eq!(
        lines(&stand_ins.path("events")),
        [
            "nginx stopping",
            "nginx done",
            "app stopping",
            "app done",
            "redis-server stopping",
            "redis-server saved",
        ],
        "{}",
        s.logs()
    );
    let err = s.tend.stderr();
    assert!(!err.contains("did not stop within"), "{}", s.logs());
    assert!(!err.contains("warning"), "{}", s.logs());
}
