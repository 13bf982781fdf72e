//! Shared test harness: run the real tend binary, as PID 1 of a fresh pid namespace or not,
//! and wait for conditions with deadlines instead of sleeping.
#![allow(
    dead_code,
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn tend_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tend")
}

pub fn helper(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(name)
}

/// Polls `cond` until it returns Some or `limit` passes.
pub fn wait_for<T>(what: &str, limit: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

mod cgroup;
mod harness;
#[allow(unused_imports)] // not every test crate makes a cgroup
pub use cgroup::*;
#[allow(unused_imports)] // not every test crate starts a `Tend`
pub use harness::*;

/// What runs tend as PID 1 of a new pid namespace (killed with it).
const UNSHARE: [&str; 5] = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// `unshare --pid --fork --mount-proc TEND ARGS...`: tend as PID 1 of a new pid namespace.
pub fn pid1_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(UNSHARE[0]);
    cmd.args(&UNSHARE[1..]).arg(tend_bin()).args(args);
    cmd
}

/// The same, inside the cgroup `cgroup`: the launcher joins it, then becomes `unshare`, so
/// tend and all it starts are in it from the first fork on.
pub fn pid1_command_in(cgroup: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"",
        "sh",
    ])
    .arg(cgroup)
    .args(UNSHARE)
    .arg(tend_bin())
    .args(args);
    cmd
}

/// A running process that is killed (with its namespace) if the test fails midway.
pub struct Running {
    pub child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Starts `cmd` with stdout and stderr going to files that `stdout()`/`stderr()` read.
    pub fn start(mut cmd: Command) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let stdout = dir.path().join("stdout");
        let stderr = dir.path().join("stderr");
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().unwrap();
        Running {
            child,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The host pid of tend: the launcher's only child when it runs under `unshare --fork`.
    pub fn tend_pid_under_unshare(&self) -> i32 {
        let launcher = self.child.id();
        wait_for(
            "tend to start under unshare",
            Duration::from_secs(10),
            || {
                let kids =
                    std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children"))
                        .ok()?;
                kids.split_whitespace().next()?.parse().ok()
            },
        )
    }

    /// Waits for the process to end; panics (after killing it) if that takes too long.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the exit code, which must be a normal exit.
    pub fn code(&mut self, limit: Duration) -> i32 {
        let status = self.wait(limit);
        status
            .code()
            .unwrap_or_else(|| panic!("ended by signal: {status:?}\nstderr:\n{}", self.stderr()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends a signal with the `kill` utility (no unsafe in tests).
pub fn send(pid: i32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{signal} {pid} failed");
}

/// Lines of a file that may not exist yet.
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Waits until the signal-catcher helper has written "ready".
pub fn wait_ready(path: &Path) {
    wait_for("the helper to be ready", Duration::from_secs(20), || {
        lines(path)
            .iter()
            .any(|l| l.starts_with("ready"))
            .then_some(())
    })
}

/// A temp dir holding a configuration file, for `tend run` tests. In the TOML, `$DIR` is the
/// temp dir and `$HTTP` the test HTTP server helper.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Setup {
    pub fn new(toml: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tend.toml");
        let setup = Setup { dir, config };
        setup.write(toml);
        setup
    }

    /// The same, with the control socket at `$DIR/ctl.sock` (the TOML must not have a
    /// [tend] table of its own).
    pub fn with_socket(toml: &str) -> Setup {
        Setup::new(&socket_config(toml))
    }

    /// Replaces the configuration file (for reloads), with `$DIR` and `$HTTP` as in `new`.
    pub fn write(&self, toml: &str) {
        let toml = toml
            .replace("$DIR", &self.dir.path().display().to_string())
            .replace("$HTTP", &helper("httpserver.py").display().to_string());
        std::fs::write(&self.config, toml).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tend run` on the file as PID 1 of a new pid namespace.
    pub fn pid1(&self) -> Running {
        Running::start(pid1_command(&["run", self.config.to_str().unwrap()]))
    }
}

/// `toml` after a [tend] table that puts the control socket at `$DIR/ctl.sock`.
pub fn socket_config(toml: &str) -> String {
    format!("[tend]\nsocket = \"$DIR/ctl.sock\"\n{toml}")
}

/// Waits until tend's stdout or stderr contains `what`; on timeout, shows its stderr.
pub fn wait_log(t: &Running, what: &str) {
    let limit = Duration::from_secs(30);
    let start = Instant::now();
    while !(t.stderr().contains(what) || t.stdout().contains(what)) {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for '{what}' in tend's output:\n{}",
            t.stderr()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
