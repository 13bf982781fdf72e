#![allow(clippy::disallowed_methods)]
//! tend under a real Docker engine (Debian packages: docker.io, which pulls in containerd and
//! runc, and busybox-static; must run as root; no registry needed).
//!
//! The test starts a private dockerd (own data root, exec root, socket, managed containerd, no
//! networking setup) with `--init-path=<tend>`, imports a busybox rootfs holding tend at
//! /sbin/tend as two images (one with `ENTRYPOINT ["/sbin/tend","--"]`, one plain), and checks:
//! - Docker reports tend's `--version` git hash as its InitCommit;
//! - tend as ENTRYPOINT: `docker stop` reaches the child, whose exit code becomes the
//!   container's, quickly (no SIGKILL after the timeout);
//! - `docker run --init`: PID 1 is /sbin/docker-init = tend, and `docker stop` works the same;
//! - Docker's HEALTHCHECK with `tend health`, in the "keep the crash scene" set-up (a service
//!   with `restart = "never"`, `critical = false`): healthy (and `/readyz` 200) while the
//!   service runs, unhealthy (and 503) once it has died, the container still up for
//!   `docker exec`, and `docker stop` then a clean shutdown with exit code 0;
//! - a supervisord.conf with a pool of workers imported at start and run: `tend status` and
//!   `tend restart` of one worker through `docker exec`, prefixed lines in `docker logs`;
//! - `docker run -it --init` from a pty: job control in the container's shell (Ctrl-C, Ctrl-Z,
//!   `fg`) and the shell's exit code as `docker run`'s.
//!
//! Everything runs in one #[test] so one daemon serves all cases (nextest runs each test in its
//! own process). `TEND_E2E_BIN` substitutes the init under test (e.g. /usr/bin/tini-static),
//! `TEND_E2E_DOCKER` / `TEND_E2E_DOCKERD` the client / daemon, and
//! `TEND_E2E_STORAGE_DRIVER` sets dockerd's `--storage-driver` (e.g. vfs where overlayfs is
//! unavailable).

mod e2e_support;

use e2e_support::*;
use std::env;
use std::fs::{self, File};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const CMD_TIMEOUT: Duration = Duration::from_secs(120);
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(90);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// `docker stop -t STOP_TIMEOUT`: after that long Docker SIGKILLs the container.
const STOP_TIMEOUT_SECS: u64 = 10;
/// A stop that takes longer than this means the SIGTERM was lost and Docker had to SIGKILL.
const STOP_BOUND: Duration = Duration::from_secs(8);
const EXIT_CODE: u8 = 42;

const IMAGE_ENTRYPOINT: &str = "tend-e2e:entrypoint";
const IMAGE_PLAIN: &str = "tend-e2e:plain";

fn env_path(var: &str) -> Option<PathBuf> {
    env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The client from Debian's docker.io (/usr/bin/docker) matches the daemon; prefer it to
/// whatever else may come first on PATH.
fn docker_cli() -> PathBuf {
    env_path("TEND_E2E_DOCKER").unwrap_or_else(|| {
        let debian = PathBuf::from("/usr/bin/docker");
        if is_executable(&debian) {
            debian
        } else {
            find_tool("docker", "docker.io")
        }
    })
}

/// A private Docker daemon. Dropping it removes all its containers, stops it (and its
/// containerd), kills anything left that still refers to its directory, unmounts what is
/// mounted below it and deletes it.
struct Dockerd {
    docker: PathBuf,
    host: String,
    child: Option<Child>,
    /// `docker` cgroups (cgroupfs driver) that did not exist before this daemon started.
    new_cgroups: Vec<PathBuf>,
    dir: TempDir,
}

/// Where dockerd's cgroupfs driver puts its parent cgroup `docker` (v2 root, each v1 hierarchy).
fn docker_cgroup_candidates() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut all = vec![root.join("docker")];
    if let Ok(rd) = fs::read_dir(root) {
        all.extend(
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path().join("docker")),
        );
    }
    all
}

impl Dockerd {
    fn start(init: &Path) -> Dockerd {
        require_root();
        let dockerd =
            env_path("TEND_E2E_DOCKERD").unwrap_or_else(|| find_tool("dockerd", "docker.io"));
        let docker = docker_cli();
        // Short: containerd's sockets live below the exec root and unix socket paths are
        // limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("tdk")
            .tempdir_in("/tmp")
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let d = dir.path();
        let host = format!("unix://{}", d.join("docker.sock").display());
        for sub in ["cli", "data", "exec"] {
            fs::create_dir_all(d.join(sub)).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        // An empty config file, so /etc/docker/daemon.json cannot interfere.
        fs::write(d.join("daemon.json"), "{}\n").unwrap_or_else(|e| panic!("daemon.json: {e}"));
        let log = File::create(d.join("dockerd.log")).unwrap_or_else(|e| panic!("log: {e}"));
        let log2 = log.try_clone().unwrap_or_else(|e| panic!("dup: {e}"));
        let mut cmd = Command::new(&dockerd);
        cmd.arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("docker.pid"))
            .args(["-H", &host])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
            ])
            .arg(format!("--init-path={}", init.display()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if let Ok(driver) = env::var("TEND_E2E_STORAGE_DRIVER") {
            cmd.arg(format!("--storage-driver={driver}"));
        }
        let new_cgroups = docker_cgroup_candidates()
            .into_iter()
            .filter(|p| !p.exists())
            .collect();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", dockerd.display()));
        let mut daemon = Dockerd {
            docker,
            host,
            child: Some(child),
            new_cgroups,
            dir,
        };
        daemon.wait_until_up();
        daemon
    }

    fn wait_until_up(&mut self) {
        let started = Instant::now();
        let mut last = String::new();
        let up = poll_until(DAEMON_START_TIMEOUT, || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Some(Err(format!("dockerd exited: {status}")));
            }
            match try_run(
                self.cli().args(["info", "--format", "{{.ServerVersion}}"]),
                Duration::from_secs(20),
            ) {
                Ok(out) if out.status.success() => Some(Ok(())),
                Ok(out) => {
                    last = out.describe();
                    None
                }
                Err(e) => {
                    last = e;
                    None
                }
            }
        });
        match up {
            Some(Ok(())) => eprintln!("dockerd up after {:?}", started.elapsed()),
            Some(Err(e)) => panic!("{e}\n{}", self.log_tail()),
            None => panic!(
                "dockerd did not answer within {DAEMON_START_TIMEOUT:?}; last `docker info`: \
                 {last}\n{}",
                self.log_tail()
            ),
        }
    }

    fn cli(&self) -> Command {
        let mut cmd = Command::new(&self.docker);
        cmd.env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .args(["-H", &self.host]);
        cmd
    }

    /// Runs `docker ARGS`; fails the test (with the daemon's log) unless it succeeds.
    fn docker(&self, args: &[&str]) -> String {
        let out = run(self.cli().args(args), CMD_TIMEOUT);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}",
            out.describe(),
            self.log_tail()
        );
        out.stdout
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- dockerd log (last 40 lines) ---\n{tail}")
    }

    /// State, output and daemon log of a container, for failure messages.
    fn diagnose(&self, name: &str) -> String {
        let show = |args: &[&str]| match try_run(self.cli().args(args), CMD_TIMEOUT) {
            Ok(out) => format!("{}{}", out.stdout, out.stderr),
            Err(e) => e,
        };
        format!(
            "--- docker inspect State ---\n{}\n--- docker logs ---\n{}\n{}",
            show(&["inspect", "--format", "{{json .State}}", name]),
            show(&["logs", name]),
            self.log_tail()
        )
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(out) = try_run(self.cli().args(["ps", "-aq"]), Duration::from_secs(30)) {
            let ids: Vec<&str> = out.stdout.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = try_run(
                    self.cli().args(["rm", "-f"]).args(&ids),
                    Duration::from_secs(60),
                );
            }
        }
        // Only signal a dockerd not yet reaped: a reaped one's PID may belong to someone else.
        if child.try_wait().ok().flatten().is_none() {
            send_signal(child.id(), "TERM");
            if poll_until(Duration::from_secs(30), || child.try_wait().ok().flatten()).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let dir = self.dir.path().to_string_lossy().into_owned();
        kill_processes_mentioning(&dir);
        unmount_all_under(self.dir.path());
        // The empty parent cgroups dockerd left behind (rmdir fails harmlessly if not empty).
        for cgroup in &self.new_cgroups {
            let _ = fs::remove_dir(cgroup);
        }
    }
}

/// Where a container's /out is on the host.
fn out_dir(d: &Dockerd, case: &str) -> PathBuf {
    let out = d.path(&format!("out-{case}"));
    fs::create_dir_all(&out).unwrap_or_else(|e| panic!("mkdir {}: {e}", out.display()));
    out
}

fn wait_ready(d: &Dockerd, name: &str, out: &Path) {
    let ready = out.join("ready");
    let ok = poll_until(READY_TIMEOUT, || {
        if ready.exists() {
            return Some(true);
        }
        let running = try_run(
            d.cli()
                .args(["inspect", "--format", "{{.State.Running}}", name]),
            Duration::from_secs(20),
        );
        match running {
            Ok(o) if o.stdout.trim() == "false" && !ready.exists() => Some(false),
            _ => None,
        }
    });
    match ok {
        Some(true) => {}
        Some(false) => panic!(
            "container {name} stopped before signalling ready\n{}",
            d.diagnose(name)
        ),
        None => panic!(
            "container {name} not ready after {READY_TIMEOUT:?}\n{}",
            d.diagnose(name)
        ),
    }
}

/// `docker stop` the container and check the TERM reached the trapping shell: marker written,
/// its exit code is the container's, and Docker did not have to wait for its timeout.
fn stop_and_check(d: &Dockerd, name: &str, out: &Path) {
    let started = Instant::now();
    d.docker(&["stop", "-t", &STOP_TIMEOUT_SECS.to_string(), name]);
    let took = started.elapsed();
    let waited = d.docker(&["wait", name]).trim().to_owned();
    let code = d
        .docker(&["inspect", "--format", "{{.State.ExitCode}}", name])
        .trim()
        .to_owned();
    let marker = fs::read_to_string(out.join("marker")).unwrap_or_default();
    let summary = format!(
        "docker stop took {took:?}, exit code {code} (docker wait: {waited}), marker {:?}",
        marker.trim()
    );
    eprintln!("{name}: {summary}");
    assert!(
        took < STOP_BOUND,
        "{summary}: SIGTERM did not reach the child, Docker had to SIGKILL after \
         {STOP_TIMEOUT_SECS} s\n{}",
        d.diagnose(name)
    );
    assert_eq!(
        marker.trim(),
        "got-TERM",
        "{summary}: the child's TERM trap did not run\n{}",
        d.diagnose(name)
    );
    assert_eq!(
        code,
        EXIT_CODE.to_string(),
        "{summary}: the container's exit code must be the child's\n{}",
        d.diagnose(name)
    );
    assert_eq!(waited, EXIT_CODE.to_string(), "{summary}: `docker wait`");
}

/// `docker stop` of a `tend run` container: in time (no SIGKILL from Docker) and with exit
/// code 0, as a requested shutdown is clean whatever died before it; then removes it.
fn stop_cleanly(d: &Dockerd, name: &str) {
    let started = Instant::now();
    d.docker(&["stop", "-t", &STOP_TIMEOUT_SECS.to_string(), name]);
    let took = started.elapsed();
    let code = d.docker(&["inspect", "--format", "{{.State.ExitCode}}", name]);
    assert!(took < STOP_BOUND, "docker stop took {took:?}");
    assert_eq!(
        code.trim(),
        "0",
        "a requested shutdown is clean, whatever died before it\n{}",
        d.diagnose(name)
    );
    d.docker(&["rm", "-f", name]);
}

/// The NUL-separated command line of the container's PID 1, spaces instead of NULs.
fn pid1_cmdline(d: &Dockerd, name: &str) -> String {
    d.docker(&["exec", name, "cat", "/proc/1/cmdline"])
        .replace('\0', " ")
        .trim()
        .to_owned()
}

/// Docker runs `<init-path> --version` and reports the `git.HASH` part as InitCommit.ID.
fn case_init_commit(d: &Dockerd, init: &Path) {
    let line = version_line(init);
    let expected = match git_hash_of(&line) {
        Some(hash) => hash.to_owned(),
        None if tend_overridden() => String::new(), // e.g. Debian's tini prints no hash
        None => panic!(
            "`tend --version` printed {line:?}, not `tend version X.Y.Z - git.HASH` (the shape \
             Docker parses for its init binary)"
        ),
    };
    let id = d.docker(&["info", "--format", "{{.InitCommit.ID}}"]);
    eprintln!(
        "init version line {line:?}; docker's InitCommit.ID {:?}",
        id.trim()
    );
    assert_eq!(
        id.trim(),
        expected,
        "docker info InitCommit.ID vs `{} --version` = {line:?}",
        init.display()
    );
    let binary = d.docker(&["info", "--format", "{{.InitBinary}}"]);
    assert_eq!(
        binary.trim(),
        init.display().to_string(),
        "docker info InitBinary"
    );
}

/// `docker run -d` of a container without network, `out` mounted at /out, then `args`
/// (options, image, command).
fn run_detached(d: &Dockerd, name: &str, out: &Path, args: &[&str]) {
    let volume = format!("{}:/out", out.display());
    let head = [
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "-v",
        &volume,
    ];
    d.docker(&[&head[..], args].concat());
}

/// tend as the image's ENTRYPOINT.
fn case_entrypoint(d: &Dockerd) {
    let name = unique_name("tend-ep");
    let out = out_dir(d, "entrypoint");
    let script = trap_script("/out", EXIT_CODE);
    run_detached(
        d,
        &name,
        &out,
        &[IMAGE_ENTRYPOINT, "/bin/sh", "-c", &script],
    );
    wait_ready(d, &name, &out);
    let pid1 = pid1_cmdline(d, &name);
    assert!(
        pid1.starts_with("/sbin/tend -- /bin/sh -c"),
        "PID 1 should be tend from the ENTRYPOINT, is {pid1:?}"
    );
    stop_and_check(d, &name, &out);
    d.docker(&["rm", "-f", &name]);
}

/// `docker run --init`: Docker bind-mounts its --init-path (tend) as /sbin/docker-init and
/// makes it PID 1 in front of the image's plain command.
fn case_docker_init(d: &Dockerd, init: &Path) {
    let name = unique_name("tend-init");
    let out = out_dir(d, "init");
    let script = trap_script("/out", EXIT_CODE);
    let args = ["--init", IMAGE_PLAIN, "/bin/sh", "-c", &script];
    run_detached(d, &name, &out, &args);
    wait_ready(d, &name, &out);
    let pid1 = pid1_cmdline(d, &name);
    assert!(
        pid1.starts_with("/sbin/docker-init -- /bin/sh -c"),
        "with --init, PID 1 should be /sbin/docker-init, is {pid1:?}"
    );
    let inside = d.docker(&["exec", &name, "/sbin/docker-init", "--version"]);
    assert_eq!(
        inside.trim(),
        version_line(init),
        "/sbin/docker-init in the container is not {}",
        init.display()
    );
    stop_and_check(d, &name, &out);
    d.docker(&["rm", "-f", &name]);
}

/// Polls `docker inspect` until the container's health status is `want`.
fn wait_health(d: &Dockerd, name: &str, want: &str) {
    let mut last = String::new();
    let reached = poll_until(READY_TIMEOUT, || {
        let out = try_run(
            d.cli()
                .args(["inspect", "--format", "{{.State.Health.Status}}", name]),
            Duration::from_secs(20),
        );
        if let Ok(o) = out {
            last = o.stdout.trim().to_owned();
        }
        (last == want).then_some(())
    });
    assert!(
        reached.is_some(),
        "health of {name} did not become {want:?} within {READY_TIMEOUT:?} (last {last:?})\n{}",
        d.diagnose(name)
    );
}

/// Use case 3: a service that dies is kept dead for inspection, and Docker's HEALTHCHECK
/// (`tend health`) reports the container unhealthy while it stays up.
fn case_healthcheck(d: &Dockerd) {
    let name = unique_name("tend-health");
    let out = out_dir(d, "health");
    fs::write(
        out.join("tend.toml"),
        r#"
[tend]
http = "127.0.0.1:9100"

[services.app]
# Up until the test asks it to crash.
command = "sh -c 'echo app up; touch /out/ready; while [ ! -e /out/crash ]; do sleep 0.1; done; echo app crashing; exit 3'"
restart = "never"
critical = false
start-secs = "0s"

[services.helper]
command = "sleep 100000"
"#,
    )
    .unwrap_or_else(|e| panic!("tend.toml: {e}"));
    let health_check = [
        "--health-cmd",
        "/sbin/tend health",
        "--health-interval",
        "1s",
        "--health-timeout",
        "5s",
        "--health-retries",
        "1",
    ];
    let command = [IMAGE_PLAIN, "/sbin/tend", "run", "/out/tend.toml"];
    run_detached(d, &name, &out, &[&health_check[..], &command].concat());
    wait_ready(d, &name, &out);
    wait_health(d, &name, "healthy");
    let readyz = || {
        let fetch = [
            "exec",
            &name,
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:9100/readyz",
        ];
        try_run(d.cli().args(fetch), CMD_TIMEOUT).unwrap_or_else(|e| panic!("wget: {e}"))
    };
    let before = readyz();
    assert!(before.status.success(), "/readyz: {}", before.describe());

    fs::write(out.join("crash"), "").unwrap_or_else(|e| panic!("crash marker: {e}"));
    wait_health(d, &name, "unhealthy");
    let running = d.docker(&["inspect", "--format", "{{.State.Running}}", &name]);
    assert_eq!(
        running.trim(),
        "true",
        "the container must stay up after a non-critical service died\n{}",
        d.diagnose(&name)
    );
    // The scene is there to inspect: the dead service, its last words, the others running.
    let status = d.docker(&["exec", &name, "/sbin/tend", "status", "--json"]);
    let states: serde_json::Value =
        serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
    let state_of = |service: &str| {
        states["services"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == service))
            .map(|s| s["state"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(state_of("helper"), "running", "{status}");
    assert_eq!(state_of("app"), "failed", "{status}");
    let health = try_run(
        d.cli().args(["exec", &name, "/sbin/tend", "health"]),
        CMD_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("docker exec tend health: {e}"));
    assert!(
        !health.status.success(),
        "tend health must fail: {}",
        health.describe()
    );
    let logs = try_run(d.cli().args(["logs", &name]), CMD_TIMEOUT)
        .unwrap_or_else(|e| panic!("docker logs: {e}"));
    let logs = format!("{}{}", logs.stdout, logs.stderr);
    assert!(logs.contains("app crashing"), "docker logs:\n{logs}");
    // No traffic for it either: busybox wget fails on the 503.
    let after = readyz();
    assert!(
        !after.status.success() && after.stderr.contains("503"),
        "/readyz after the crash: {}",
        after.describe()
    );

    stop_cleanly(d, &name);
}

/// The supervisord.conf of the worker pool case: an app and three workers (`numprocs`).
const SUPERVISORD_CONF: &str = r#"[supervisord]
nodaemon=true

[program:app]
command=/bin/sh -c "echo app serving; exec sleep 100000"
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0

[program:worker]
command=/bin/sh -c "echo worker %(process_num)02d up as $$; touch /out/worker-%(process_num)02d.up; exec sleep 100000"
process_name=%(program_name)s-%(process_num)02d
numprocs=3
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
"#;

/// Use case 8 with the migration path: a supervisord.conf with a pool of workers is imported
/// at container start and run; `tend status` sees every process, `tend restart` acts on one
/// worker and leaves the others alone, and `docker logs` has every line with its service's
/// name in front.
fn case_imported_worker_pool(d: &Dockerd) {
    let name = unique_name("tend-pool");
    let out = out_dir(d, "pool");
    fs::write(out.join("supervisord.conf"), SUPERVISORD_CONF)
        .unwrap_or_else(|e| panic!("supervisord.conf: {e}"));
    let start = "/sbin/tend import supervisord /out/supervisord.conf > /out/tend.toml \
                 2> /out/import-notes && exec /sbin/tend run /out/tend.toml";
    run_detached(d, &name, &out, &[IMAGE_PLAIN, "/bin/sh", "-c", start]);
    let workers = ["worker-00", "worker-01", "worker-02"];
    let all_up = poll_until(READY_TIMEOUT, || {
        workers
            .iter()
            .all(|w| out.join(format!("{w}.up")).exists())
            .then_some(())
    });
    assert!(
        all_up.is_some(),
        "the imported workers did not all start\n{}",
        d.diagnose(&name)
    );
    let pid1 = pid1_cmdline(d, &name);
    assert_eq!(pid1, "/sbin/tend run /out/tend.toml", "PID 1");

    let pids = || -> Vec<(String, String, Option<i64>)> {
        let status = d.docker(&["exec", &name, "/sbin/tend", "status", "--json"]);
        let parsed: serde_json::Value =
            serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
        parsed["services"]
            .as_array()
            .unwrap_or_else(|| panic!("no services: {status}"))
            .iter()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                (text("name"), text("state"), s["pid"].as_i64())
            })
            .collect()
    };
    let before = pids();
    let names: Vec<&str> = before.iter().map(|(n, _, _)| n.as_str()).collect();
    // numprocs became `instances = 3`: tend's names for the three.
    assert_eq!(
        names,
        ["app", "worker-0", "worker-1", "worker-2"],
        "{before:?}"
    );
    assert!(
        before
            .iter()
            .all(|(_, state, pid)| state == "running" && pid.is_some()),
        "{before:?}"
    );

    d.docker(&["exec", &name, "/sbin/tend", "restart", "worker-1"]);
    let after = pids();
    for ((service, _, old), (_, state, new)) in before.iter().zip(&after) {
        assert_eq!(state, "running", "{service} after the restart: {after:?}");
        if service == "worker-1" {
            assert_ne!(old, new, "worker-1 was not restarted: {after:?}");
        } else {
            assert_eq!(
                old, new,
                "{service} must not be touched: {before:?} -> {after:?}"
            );
        }
    }

    let logs = try_run(d.cli().args(["logs", &name]), CMD_TIMEOUT)
        .unwrap_or_else(|e| panic!("docker logs: {e}"));
    let lines: Vec<&str> = logs.stdout.lines().collect();
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(
        count("app      | app serving"),
        1,
        "docker logs:\n{}",
        logs.stdout
    );
    for (i, starts) in [(0, 1), (1, 2), (2, 1)] {
        assert_eq!(
            count(&format!("worker-{i} | worker 0{i} up as ")),
            starts,
            "worker-{i} should have started {starts} time(s); docker logs:\n{}",
            logs.stdout
        );
    }

    stop_cleanly(d, &name);
}

/// OpenShift-style: `--read-only --user 12345:0 --tmpfs /tmp`, a uid with no /etc/passwd
/// entry. tend cannot make /run/tend, listens in /tmp/tend-12345/ and says so; `docker exec
/// NAME tend status` (as the same uid) finds it with no flag; `docker stop` ends it with 0.
fn case_read_only_arbitrary_user(d: &Dockerd) {
    let name = unique_name("tend-ro");
    let out = out_dir(d, "read-only");
    fs::write(
        out.join("tend.toml"),
        "[services.app]\ncommand = [\"/bin/sh\", \"-c\", \"echo up as $(id -u); exec sleep 1000\"]\n",
    )
    .unwrap_or_else(|e| panic!("tend.toml: {e}"));
    let args = [
        "--read-only",
        "--user",
        "12345:0",
        "--tmpfs",
        "/tmp",
        IMAGE_PLAIN,
        "/sbin/tend",
        "run",
        "/out/tend.toml",
    ];
    run_detached(d, &name, &out, &args);
    let up = poll_until(READY_TIMEOUT, || {
        let logs = try_run(d.cli().args(["logs", &name]), CMD_TIMEOUT).ok()?;
        logs.stdout
            .contains("app | up as 12345")
            .then_some(logs.stderr)
    });
    let Some(stderr) = up else {
        panic!("the service never said it was up\n{}", d.diagnose(&name));
    };
    assert!(
        stderr.contains("control socket at /tmp/tend-12345/control.sock"),
        "{stderr}"
    );
    let status = d.docker(&["exec", &name, "/sbin/tend", "status"]);
    assert!(
        status.contains("app") && status.contains("running"),
        "{status}"
    );
    stop_cleanly(d, &name);
}

/// Use case 7: `docker run -it --init IMAGE sh` from a terminal (a pty here). tend, as
/// Docker's init, hands the container's terminal to the shell, so the shell has job control:
/// Ctrl-C interrupts the foreground job and not the shell, Ctrl-Z stops it, `fg` resumes it;
/// the shell's exit code is `docker run`'s.
fn case_interactive(d: &Dockerd) {
    let name = unique_name("tend-tty");
    let mut cmd = d.cli();
    let args = ["run", "-it", "--name", &name, "--network", "none", "--init"];
    cmd.args(args).args([IMAGE_PLAIN, "/bin/sh"]);
    let mut p = rexpect::session::spawn_command(cmd, Some(30_000))
        .unwrap_or_else(|e| panic!("docker run -it: {e}"));
    // Every step fails the test with what it waited for and the daemon's view.
    macro_rules! step {
        ($what:expr, $result:expr $(,)?) => {
            $result.unwrap_or_else(|e| panic!("{}: {e}\n{}", $what, d.diagnose(&name)))
        };
    }
    // A prompt that cannot be confused with the echo of the command that sets it.
    step!("prompt", p.send_line("PS1='P''S> '"));
    step!("prompt", p.exp_string("PS> "));
    // The shell turns job control on only when it owns the terminal's foreground.
    step!(
        "send",
        p.send_line("case $- in *m*) echo JOB''CONTROL;; esac"),
    );
    step!("job control on", p.exp_string("JOBCONTROL"));
    step!("prompt", p.exp_string("PS> "));
    step!(
        "send",
        p.send_line(r"echo PID1=$(tr '\0' ' ' </proc/1/cmdline).")
    );
    step!(
        "PID 1 to be tend as /sbin/docker-init",
        p.exp_string("PID1=/sbin/docker-init -- /bin/sh .")
    );
    step!("prompt", p.exp_string("PS> "));

    // `$((6*7))X` prints 42X only once the job runs: the echo of the line cannot match it.
    step!("send", p.send_line("echo $((6*7))X; sleep 100"));
    step!("job running", p.exp_string("42X"));
    step!("Ctrl-C", p.send_control('c'));
    step!("prompt after Ctrl-C", p.exp_string("PS> "));
    step!("send", p.send_line("echo rc=$?"));
    step!("Ctrl-C ended the job", p.exp_string("rc=130"));
    step!("prompt", p.exp_string("PS> "));

    step!("send", p.send_line("echo $((6*8))Y; sleep 200"));
    step!("job running", p.exp_string("48Y"));
    step!("Ctrl-Z", p.send_control('z'));
    step!("job stopped", p.exp_string("Stopped"));
    step!("prompt after Ctrl-Z", p.exp_string("PS> "));
    step!("send", p.send_line("fg"));
    step!("fg", p.exp_string("sleep 200"));
    step!("Ctrl-C", p.send_control('c'));
    step!("prompt after fg and Ctrl-C", p.exp_string("PS> "));
    step!("send", p.send_line("jobs; echo $((7*7))J"));
    let before = step!("jobs", p.exp_string("49J"));
    assert!(!before.contains("Stopped"), "the job survived: {before}");

    step!("send", p.send_line("exit 7"));
    step!("end of the session", p.exp_eof());
    let status = p
        .process
        .wait()
        .unwrap_or_else(|e| panic!("docker run -it: {e}"));
    assert_eq!(
        format!("{status:?}").rsplit(", ").next(),
        Some("7)"),
        "docker run -it should exit with the shell's code: {status:?}"
    );
    d.docker(&["rm", "-f", &name]);
}

#[test]
fn docker_end_to_end() {
    let init = tend_bin()
        .canonicalize()
        .unwrap_or_else(|e| panic!("init binary {}: {e}", tend_bin().display()));
    let t0 = Instant::now();
    let d = Dockerd::start(&init);

    let rootfs = d.path("rootfs");
    build_rootfs(&rootfs);
    let tarball = d.path("rootfs.tar");
    run_ok(
        Command::new(busybox())
            .args(["tar", "-c", "-f"])
            .arg(&tarball)
            .arg("-C")
            .arg(&rootfs)
            .arg("."),
        CMD_TIMEOUT,
    );
    let tar = tarball.to_string_lossy();
    d.docker(&[
        "import",
        "--change",
        r#"ENTRYPOINT ["/sbin/tend", "--"]"#,
        &tar,
        IMAGE_ENTRYPOINT,
    ]);
    d.docker(&["import", &tar, IMAGE_PLAIN]);
    eprintln!("daemon and images ready after {:?}", t0.elapsed());

    // Run every case even if an earlier one fails; each failure has already printed its
    // message through the panic hook.
    let cases: [(&str, &dyn Fn()); 7] = [
        ("init commit", &|| case_init_commit(&d, &init)),
        ("tend as ENTRYPOINT", &|| case_entrypoint(&d)),
        ("docker run --init", &|| case_docker_init(&d, &init)),
        ("HEALTHCHECK with tend health", &|| case_healthcheck(&d)),
        ("imported worker pool", &|| case_imported_worker_pool(&d)),
        ("docker run -it", &|| case_interactive(&d)),
        ("read-only root, arbitrary uid", &|| {
            case_read_only_arbitrary_user(&d)
        }),
    ];
    let mut failed = Vec::new();
    for (what, case) in cases {
        let t = Instant::now();
        let ok = catch_unwind(AssertUnwindSafe(case)).is_ok();
        eprintln!(
            "case {what}: {} in {:?}",
            if ok { "ok" } else { "FAILED" },
            t.elapsed()
        );
        if !ok {
            failed.push(what);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}
