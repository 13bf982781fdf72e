#![allow(clippy::disallowed_methods)]
//! tend as PID 1 of a real OCI container run by runc (Debian packages: runc, busybox-static;
//! must run as root). `runc kill ID TERM` is exactly what `docker stop` does to a container.
//!
//! Each test builds its own bundle in a temporary directory (busybox rootfs, the static tend at
//! /sbin/tend, config.json from `runc spec`) and keeps runc's state in that directory too
//! (`runc --root`), so tests never see each other's containers. `TEND_E2E_BIN` substitutes the
//! init under test (e.g. /usr/bin/tini-static).

mod e2e_support;

use e2e_support::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const CMD_TIMEOUT: Duration = Duration::from_secs(60);
/// Generous: a container normally starts in well under a second.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `runc run` in the background, in its own bundle. Dropping it force-deletes the container
/// and removes the bundle, also when the test failed.
struct Container {
    runc: PathBuf,
    state_root: PathBuf,
    bundle: PathBuf,
    id: String,
    /// The `runc run` process; its exit status is the container's.
    run: Option<Child>,
    _dir: TempDir,
}

impl Container {
    /// Starts `/sbin/tend -- /bin/sh -c <script>`.
    fn start(script: &str) -> Container {
        Container::start_with(&["/sbin/tend", "--", "/bin/sh", "-c", script], |_| {})
    }

    /// Starts `tend run /etc/tend.toml` with `config` as that file, after `prepare` has had
    /// the rootfs (host path) to add what else the services need.
    fn run_config(config: &str, prepare: impl FnOnce(&Path)) -> Container {
        Container::start_with(&["/sbin/tend", "run", "/etc/tend.toml"], |rootfs| {
            fs::write(rootfs.join("etc/tend.toml"), config)
                .unwrap_or_else(|e| panic!("write tend.toml: {e}"));
            prepare(rootfs);
        })
    }

    /// Starts the container with `args` as its process, after `prepare` has had the finished
    /// rootfs (host path) to add files to.
    fn start_with(args: &[&str], prepare: impl FnOnce(&Path)) -> Container {
        Container::start_edited(args, prepare, |_| {})
    }

    /// `start_with`, and `edit` changes config.json (as `runc spec` wrote it, with the args
    /// set and the root writable) before the container starts.
    fn start_edited(
        args: &[&str],
        prepare: impl FnOnce(&Path),
        edit: impl FnOnce(&mut String),
    ) -> Container {
        require_root();
        let runc = find_tool("runc", "runc");
        let dir = tempfile::Builder::new()
            .prefix("tend-runc")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let mut c = Container {
            runc,
            state_root: dir.path().join("state"),
            bundle: dir.path().join("bundle"),
            id: unique_name("tend-e2e"),
            run: None,
            _dir: dir,
        };
        let rootfs = c.bundle.join("rootfs");
        build_rootfs(&rootfs);
        prepare(&rootfs);
        c.write_config(args);
        let path = c.bundle.join("config.json");
        let mut json = fs::read_to_string(&path).unwrap_or_else(|e| panic!("config.json: {e}"));
        edit(&mut json);
        fs::write(&path, json).unwrap_or_else(|e| panic!("write config.json: {e}"));
        let stdout = File::create(c.log_path("stdout")).unwrap_or_else(|e| panic!("log: {e}"));
        let stderr = File::create(c.log_path("stderr")).unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new(&c.runc)
            .arg("--root")
            .arg(&c.state_root)
            .arg("run")
            .arg("--bundle")
            .arg(&c.bundle)
            .arg(&c.id)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start runc run: {e}"));
        c.run = Some(child);
        c
    }

    /// `runc spec`, then: our args, no terminal, writable root.
    fn write_config(&self, args: &[&str]) {
        run_ok(
            Command::new(&self.runc)
                .arg("spec")
                .arg("--bundle")
                .arg(&self.bundle),
            CMD_TIMEOUT,
        );
        let path = self.bundle.join("config.json");
        let mut json = fs::read_to_string(&path).unwrap_or_else(|e| panic!("config.json: {e}"));
        replace_one(&mut json, "\"terminal\": true", "\"terminal\": false");
        replace_one(&mut json, "\"readonly\": true", "\"readonly\": false");
        let start = json
            .find("\"args\": [")
            .unwrap_or_else(|| panic!("no \"args\" in `runc spec` output:\n{json}"));
        let end = start
            + json[start..]
                .find(']')
                .unwrap_or_else(|| panic!("unterminated \"args\" in:\n{json}"))
            + 1;
        let list: Vec<String> = args.iter().map(|a| json_str(a)).collect();
        json.replace_range(start..end, &format!("\"args\": [{}]", list.join(", ")));
        fs::write(&path, json).unwrap_or_else(|e| panic!("write config.json: {e}"));
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.bundle.with_file_name(format!("runc-run.{name}"))
    }

    /// The container's /out, seen from the host (the rootfs is a plain directory).
    fn out(&self) -> PathBuf {
        self.bundle.join("rootfs/out")
    }

    fn logs(&self) -> String {
        let read = |n| fs::read_to_string(self.log_path(n)).unwrap_or_default();
        format!(
            "--- runc run stdout ---\n{}\n--- runc run stderr ---\n{}",
            read("stdout"),
            read("stderr")
        )
    }

    fn runc(&self) -> Command {
        let mut cmd = Command::new(&self.runc);
        cmd.arg("--root").arg(&self.state_root);
        cmd
    }

    /// Waits for `<out>/<name>` to appear, failing early if the container is already gone.
    fn wait_for_file(&mut self, name: &str, timeout: Duration) -> PathBuf {
        let path = self.out().join(name);
        let found = poll_until(timeout, || {
            if path.exists() {
                return Some(Ok(()));
            }
            match self.run.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => Some(Err(status)),
                _ => None,
            }
        });
        match found {
            Some(Ok(())) => path,
            Some(Err(status)) => panic!(
                "container exited ({status}) before writing /out/{name}\n{}",
                self.logs()
            ),
            None => panic!(
                "no /out/{name} from the container after {timeout:?}\n{}",
                self.logs()
            ),
        }
    }

    fn kill(&self, signal: &str) {
        run_ok(self.runc().args(["kill", &self.id, signal]), CMD_TIMEOUT);
    }

    /// Host PID of the container's PID 1 (the init under test), from `runc state`.
    fn init_pid(&self) -> u32 {
        let state = run_ok(self.runc().args(["state", &self.id]), CMD_TIMEOUT);
        let after = state
            .split_once("\"pid\":")
            .unwrap_or_else(|| panic!("no pid in `runc state`: {state}"))
            .1;
        let digits: String = after
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|e| panic!("bad pid in `runc state` ({e}): {state}"))
    }

    /// The host's view of the container's PID 1: none of its children is a zombie.
    fn assert_no_zombies(&self) {
        let zombies: Vec<ProcInfo> = children_of(self.init_pid())
            .into_iter()
            .filter(|p| p.state == 'Z')
            .collect();
        assert!(zombies.is_empty(), "zombies under PID 1: {zombies:?}");
    }

    /// Waits for `runc run` to return, i.e. for the container to exit; fails naming `why`.
    fn wait_exit(&mut self, timeout: Duration, why: &str) -> ExitStatus {
        let child = self.run.as_mut().unwrap_or_else(|| panic!("not started"));
        match poll_until(timeout, || child.try_wait().ok().flatten()) {
            Some(status) => status,
            None => panic!(
                "container still running {timeout:?} after {why}\n{}",
                self.logs()
            ),
        }
    }

    /// What the container has written to `stream` ("stdout" or "stderr") so far.
    fn log(&self, stream: &str) -> String {
        fs::read_to_string(self.log_path(stream)).unwrap_or_default()
    }

    /// `runc exec ID <args>`; never panics on a failing command (only if runc cannot be run).
    fn exec(&self, args: &[&str]) -> Output {
        let mut cmd = self.runc();
        cmd.args(["exec", &self.id]).args(args);
        run(&mut cmd, CMD_TIMEOUT)
    }

    /// `status` from `runc state` ("running", "stopped", ...).
    fn status(&self) -> String {
        let state = run_ok(self.runc().args(["state", &self.id]), CMD_TIMEOUT);
        state
            .split_once("\"status\":")
            .and_then(|(_, rest)| rest.split('"').nth(1))
            .unwrap_or_else(|| panic!("no status in `runc state`: {state}"))
            .to_owned()
    }

    /// Fails the test (with the logs) if the container has exited.
    fn assert_running(&mut self, during: &str) {
        let child = self.run.as_mut().unwrap_or_else(|| panic!("not started"));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("container exited ({status}) {during}\n{}", self.logs());
        }
    }

    /// Polls `probe` every 20 ms for up to `timeout`, failing the test with `what` and the
    /// logs if it never succeeds or the container exits first.
    fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut probe: impl FnMut(&Container) -> Option<T>,
    ) -> T {
        let found = poll_until(timeout, || {
            self.assert_running(&format!("while waiting for {what}"));
            probe(self)
        });
        found.unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.logs()
            )
        })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = try_run(
            self.runc().args(["delete", "--force", &self.id]),
            Duration::from_secs(30),
        );
        if let Some(mut child) = self.run.take()
            && poll_until(Duration::from_secs(10), || child.try_wait().ok().flatten()).is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn replace_one(text: &mut String, from: &str, to: &str) {
    let n = text.matches(from).count();
    assert_eq!(
        n, 1,
        "expected {from:?} once in `runc spec` output:\n{text}"
    );
    *text = text.replace(from, to);
}

/// `runc kill ID TERM` (what `docker stop` sends) reaches the child through tend, and the
/// child's exit code becomes the container's.
#[test]
fn runc_stop_signal_reaches_child_and_exit_code_propagates() {
    let mut c = Container::start(&trap_script("/out", 42));
    c.wait_for_file("ready", START_TIMEOUT);
    let sent = Instant::now();
    c.kill("TERM");
    let status = c.wait_exit(
        Duration::from_secs(10),
        "`runc kill TERM`: the init did not forward SIGTERM to its child",
    );
    let marker = fs::read_to_string(c.out().join("marker")).unwrap_or_default();
    assert_eq!(
        marker.trim(),
        "got-TERM",
        "the child's TERM trap did not run\n{}",
        c.logs()
    );
    assert_eq!(
        status.code(),
        Some(42),
        "container exit status should be the child's ({status})\n{}",
        c.logs()
    );
    eprintln!("TERM to exit: {:?}", sent.elapsed());
}

/// Orphans reparented to tend (PID 1 of the container's PID namespace) are reaped. The shell
/// double-forks sleeps (the subshell exits at once, so each sleep is adopted by PID 1), checks
/// that PID 1 adopted them, then watches their /proc entries: a zombie keeps its entry until
/// its parent reaps it, so all entries vanishing means tend reaped every one.
#[test]
fn runc_init_reaps_orphans() {
    const ORPHANS: u32 = 20;
    let script = format!(
        r#"
: > /out/pids
i=0
while [ $i -lt {ORPHANS} ]; do (sleep 2 & echo $! >> /out/pids); i=$((i+1)); done
adopted=0
for p in $(cat /out/pids); do
  set -- $(cat /proc/$p/stat 2>/dev/null)
  [ "$4" = 1 ] && adopted=$((adopted+1))
done
tries=0
while :; do
  left=
  for p in $(cat /out/pids); do [ -e /proc/$p ] && left="$left $p"; done
  [ -z "$left" ] && break
  tries=$((tries+1)); [ $tries -ge 200 ] && break
  sleep 0.05
done
states=
for p in $left; do states="$states [$(cut -d' ' -f1-3 /proc/$p/stat 2>/dev/null)]"; done
echo "adopted=$adopted left=$left$states" > /out/result.tmp
mv /out/result.tmp /out/result
exec sleep 1000
"#
    );
    let mut c = Container::start(&script);
    // The script's own deadline for the orphans to disappear is 200 * 50 ms = 10 s.
    let result_path = c.wait_for_file("result", Duration::from_secs(60));
    let result = fs::read_to_string(&result_path).unwrap_or_default();
    assert_eq!(
        result.trim(),
        format!("adopted={ORPHANS} left="),
        "every orphan must be adopted by PID 1 and then reaped (left = processes still in \
         /proc, with [pid (comm) state]; state Z = a zombie the init never reaped)\n{}",
        c.logs()
    );
    // The host's view agrees: nothing under the init is a zombie.
    c.assert_no_zombies();
    // Stop it: the exec'd `sleep 1000` dies of the forwarded TERM, and tend, like tini, exits
    // with 128 + the signal number.
    c.kill("TERM");
    let status = c.wait_exit(Duration::from_secs(10), "`runc kill TERM`");
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "child killed by SIGTERM: the init should exit 143 ({status})\n{}",
        c.logs()
    );
}

/// The page busybox httpd serves in the supervisor test.
const PAGE: &str = "<h1>served by busybox httpd under tend</h1>\n";

/// The worker of the supervisor test: it announces itself, and on SIGTERM writes a marker,
/// takes 0.3 s to "finish its work" and exits 0. `sleep & wait` lets the trap run at once.
const WORKER: &str = r#"trap 'echo "got SIGTERM, finishing"; echo got-TERM > /out/worker-term; sleep 0.3; echo "stopped cleanly"; exit 0' TERM
echo "worker up as pid $$"
: > /out/worker-ready
while :; do sleep 1 & wait $!; done
"#;

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// `tend run` config for the supervisor test: `web` (httpd in the foreground) and `worker`.
fn two_service_config() -> String {
    format!(
        r#"[tend]
shutdown-timeout = "{}s"

[services.web]
command = ["/bin/httpd", "-f", "-v", "-p", "127.0.0.1:8080", "-h", "/www"]
stop-timeout = "2s"

[services.worker]
command = ["/bin/sh", "-c", '''
{WORKER}''']
stop-timeout = "2s"
"#,
        SHUTDOWN_TIMEOUT.as_secs()
    )
}

/// PIDs (in the container's namespace) of the processes tend spawned for `name`, in order,
/// from its `tend: info: spawned 'NAME' with pid N` lines.
fn spawned_pids(stderr: &str, name: &str) -> Vec<u32> {
    let needle = format!("tend: info: spawned '{name}' with pid ");
    stderr
        .lines()
        .filter_map(|l| l.split_once(needle.as_str()))
        .filter_map(|(_, pid)| pid.trim().parse().ok())
        .collect()
}

/// `pidof httpd` inside the container (empty when none runs).
fn httpd_pids(c: &Container) -> Vec<u32> {
    let out = c.exec(&["pidof", "httpd"]);
    out.stdout
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The page, when httpd answers on 127.0.0.1:8080 inside the container.
fn fetch_page(c: &Container) -> Option<String> {
    let out = c.exec(&["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]);
    out.status.success().then_some(out.stdout)
}

/// `tend run` as PID 1 with two services: both come up, a SIGKILLed service is restarted
/// while the container keeps running, and `runc kill TERM` stops both in order (the worker's
/// TERM trap runs to completion) with exit code 0, well within the shutdown timeout.
#[test]
fn runc_supervisor_two_services_restart_and_stop() {
    let config = two_service_config();
    let mut c = Container::run_config(&config, |rootfs| {
        fs::create_dir_all(rootfs.join("www")).unwrap_or_else(|e| panic!("mkdir www: {e}"));
        fs::write(rootfs.join("www/index.html"), PAGE)
            .unwrap_or_else(|e| panic!("write index.html: {e}"));
    });

    // 1. Both services come up.
    c.wait_for_file("worker-ready", START_TIMEOUT);
    let page = c.wait_until(START_TIMEOUT, "httpd to serve the page", fetch_page);
    assert_eq!(page, PAGE, "wrong page from httpd\n{}", c.logs());
    let (first, worker) = c.wait_until(START_TIMEOUT, "tend's 'spawned' lines", |c| {
        let err = c.log("stderr");
        let web = spawned_pids(&err, "web");
        let worker = spawned_pids(&err, "worker");
        Some((*web.last()?, *worker.last()?))
    });
    let running = httpd_pids(&c);
    assert!(
        running.contains(&first),
        "tend says it spawned 'web' as pid {first}, but `pidof httpd` says {running:?}\n{}",
        c.logs()
    );

    // 2. SIGKILL httpd: tend restarts it and the container keeps running.
    let killed = c.exec(&["kill", "-KILL", &first.to_string()]);
    assert!(
        killed.status.success(),
        "kill -KILL {first} in the container: {}",
        killed.describe()
    );
    let second = c.wait_until(
        Duration::from_secs(30),
        "tend to restart 'web' after SIGKILL",
        |c| {
            let pid = *spawned_pids(&c.log("stderr"), "web").last()?;
            (pid != first).then_some(pid)
        },
    );
    let page = c.wait_until(
        Duration::from_secs(30),
        "the restarted httpd to serve the page",
        fetch_page,
    );
    assert_eq!(
        page,
        PAGE,
        "wrong page from the restarted httpd\n{}",
        c.logs()
    );
    let running = httpd_pids(&c);
    assert!(
        running.contains(&second) && !running.contains(&first),
        "after the restart `pidof httpd` should show pid {second}, not {first}: {running:?}\n{}",
        c.logs()
    );
    let err = c.log("stderr");
    assert!(
        err.contains(&format!("'web' (pid {first}) ended: killed by SIGKILL")),
        "tend should report how 'web' ended\n{}",
        c.logs()
    );
    c.assert_running("after httpd was killed");
    assert_eq!(c.status(), "running", "runc state after the restart");

    // 3. `runc kill TERM` (docker stop): an orderly stop of both, exit 0, in time.
    let sent = Instant::now();
    c.kill("TERM");
    let status = c.wait_exit(
        SHUTDOWN_TIMEOUT * 4,
        "`runc kill TERM`: tend did not shut down",
    );
    let took = sent.elapsed();
    eprintln!("runc kill TERM to container exit: {took:?}");
    let logs = c.logs();
    assert_eq!(
        status.code(),
        Some(0),
        "tend should exit 0 after a stop signal ({status})\n{logs}"
    );
    assert!(
        took < SHUTDOWN_TIMEOUT,
        "shutdown took {took:?}, more than shutdown-timeout = {SHUTDOWN_TIMEOUT:?}\n{logs}"
    );
    let marker = fs::read_to_string(c.out().join("worker-term")).unwrap_or_default();
    assert_eq!(
        marker.trim(),
        "got-TERM",
        "the worker's TERM trap did not run\n{logs}"
    );
    let (out, err) = (c.log("stdout"), c.log("stderr"));
    for line in [
        "worker | worker up as pid ",
        "worker | got SIGTERM, finishing",
        "worker | stopped cleanly",
    ] {
        assert!(
            out.contains(line),
            "no {line:?} on the container's stdout\n{logs}"
        );
    }
    assert!(
        err.contains("web    | "),
        "no prefixed lines from httpd -v on the container's stderr\n{logs}"
    );
    for line in [
        "tend: info: shutting down: received SIGTERM",
        "tend: info: exiting with code 0",
    ] {
        assert!(
            err.contains(line),
            "no {line:?} on the container's stderr\n{logs}"
        );
    }
    assert!(
        err.contains(&format!("'web' (pid {second}) ended: ")),
        "tend should report how the restarted 'web' ended\n{logs}"
    );
    assert!(
        err.contains(&format!("'worker' (pid {worker}) ended: exit code 0")),
        "the worker should have exited 0 from its TERM trap\n{logs}"
    );
    for bad in ["did not stop within its stop-timeout", "shutdown escalated"] {
        assert!(
            !err.contains(bad),
            "nothing should need SIGKILL in this shutdown, but: {bad:?}\n{logs}"
        );
    }
}

/// Use case 1: a daemon that insists on forking (here a busybox shell that `setsid`s and
/// writes no log), followed through its pid file: SIGKILLed, it is started again and the new
/// daemon followed; `runc kill TERM` reaches the daemon with its stop signal, and the
/// container exits 0.
#[test]
fn runc_forking_daemon_followed_through_its_pid_file() {
    let config = r#"[services.legacy]
command = ["/bin/sh", "-c", '''
setsid sh -c 'trap "echo stopped > /out/stopped; exit 0" TERM; echo $$ >> /out/daemons; while :; do sleep 1 & wait $!; done' </dev/null >/dev/null 2>&1 &
echo $! > /run/legacy.pid''']
pid-file = "/run/legacy.pid"
backoff = { initial = "10ms" }
"#;
    let mut c = Container::run_config(config, |rootfs| {
        fs::create_dir_all(rootfs.join("run")).unwrap_or_else(|e| panic!("mkdir run: {e}"));
    });
    let daemons = |c: &Container| -> Vec<u32> {
        fs::read_to_string(c.out().join("daemons"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let first = c.wait_until(START_TIMEOUT, "the first daemon to be followed", |c| {
        let pid = *daemons(c).first()?;
        c.log("stderr")
            .contains(&format!("following its daemon, pid {pid}"))
            .then_some(pid)
    });
    let out = c.exec(&["kill", "-KILL", &first.to_string()]);
    assert!(out.status.success(), "kill: {}", out.stderr);
    let second = c.wait_until(START_TIMEOUT, "a new daemon, followed", |c| {
        let pid = *daemons(c).get(1)?;
        c.log("stderr")
            .contains(&format!("following its daemon, pid {pid}"))
            .then_some(pid)
    });
    assert_ne!(first, second);
    c.kill("TERM");
    let status = c.wait_exit(Duration::from_secs(15), "runc kill TERM");
    assert_eq!(status.code(), Some(0), "{}", c.logs());
    assert_eq!(
        fs::read_to_string(c.out().join("stopped")).unwrap_or_default(),
        "stopped\n",
        "the daemon did not get its stop signal\n{}",
        c.logs()
    );
}

/// Use case 6: a SysV shared memory segment outlives the container. The first container's
/// service makes it; `runc kill TERM` stops the service and tend saves the segment to a file
/// (the "volume"); a second container, with a fresh IPC namespace and that file, has the
/// segment back before its service reads it.
#[test]
fn runc_shared_memory_survives_a_new_container() {
    require_root();
    let tool_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let tool = tool_dir.path().join("shmtool");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/shmtool.c");
    run_ok(
        Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&tool)
            .arg(&source),
        CMD_TIMEOUT,
    );
    let config = |service: &str| {
        format!(
            r#"[tend.shm]
file = "/data/shm.bin"
keys = [0x7e57]

[services.legacy]
command = {service}
"#
        )
    };
    let prepare = |toml: String, saved: Option<Vec<u8>>| {
        let tool = tool.clone();
        move |rootfs: &Path| {
            fs::write(rootfs.join("etc/tend.toml"), toml)
                .unwrap_or_else(|e| panic!("write tend.toml: {e}"));
            fs::copy(&tool, rootfs.join("bin/shmtool")).unwrap_or_else(|e| panic!("copy: {e}"));
            fs::create_dir_all(rootfs.join("data")).unwrap_or_else(|e| panic!("mkdir: {e}"));
            if let Some(bytes) = saved {
                fs::write(rootfs.join("data/shm.bin"), bytes)
                    .unwrap_or_else(|e| panic!("write shm.bin: {e}"));
            }
        }
    };
    let args = ["/sbin/tend", "run", "/etc/tend.toml"];

    let first_config = config(r#"["/bin/shmtool", "create", "0x7e57", "kept state"]"#);
    let mut first = Container::start_with(&args, prepare(first_config, None));
    first.wait_until(START_TIMEOUT, "the segment to be made", |c| {
        c.log("stdout").contains("legacy | created").then_some(())
    });
    first.kill("TERM");
    let status = first.wait_exit(Duration::from_secs(15), "runc kill TERM");
    assert_eq!(status.code(), Some(0), "{}", first.logs());
    assert!(
        first.log("stderr").contains("saved 1 segment(s)"),
        "{}",
        first.logs()
    );
    let saved = fs::read(first.bundle.join("rootfs/data/shm.bin"))
        .unwrap_or_else(|e| panic!("no saved file: {e}\n{}", first.logs()));
    drop(first);

    let second_config = config(r#"["/bin/shmtool", "read", "0x7e57", "/out/read"]"#);
    let mut second = Container::start_with(&args, prepare(second_config, Some(saved)));
    let read = second.wait_for_file("read", START_TIMEOUT);
    second.wait_until(START_TIMEOUT, "the segment's text", |_| {
        fs::read_to_string(&read).ok().filter(|t| t.ends_with('\n'))
    });
    assert_eq!(
        fs::read_to_string(&read).unwrap_or_default(),
        "kept state\n",
        "{}",
        second.logs()
    );
    assert!(second.log("stderr").contains("restored segment 0x00007e57"));
    second.kill("TERM");
    let status = second.wait_exit(Duration::from_secs(15), "runc kill TERM");
    assert_eq!(status.code(), Some(0), "{}", second.logs());
}

/// The log shipper of use case 2, in busybox sh. It owns a FIFO that the app writes its log
/// to and ships every line to its stdout. Like filebeat, it drains before it exits: on TERM
/// it lets go of its own hold on the FIFO, so its reader gets to the end of what the app
/// wrote (end of file once no writer is left) and only then exits. Its reader subshell
/// ignores TERM (started while TERM was ignored) so the group-wide stop signal cannot cut
/// a line short, and does not hold the FIFO open itself (`5>&-`), or it would never see its end. In its trap it records whether the app was still alive when its own stop
/// began: tend reaps the app before it moves on to the shipper, so "app-gone" is the
/// answer when the stop order is right.
const SHIPPER: &str = r#"trap '' TERM
[ -p /run/app.fifo ] || mkfifo /run/app.fifo
exec 5<>/run/app.fifo
while IFS= read -r line; do echo "shipped: $line"; done </run/app.fifo 5>&- &
reader=$!
trap 'if kill -0 "$(cat /out/app.pid)" 2>/dev/null; then echo app-running; else echo app-gone; fi > /out/order' TERM
echo "shipper up"
echo >&3
exec 3>&-
wait $reader
exec 5>&-
wait $reader
echo "shipper drained, exiting"
"#;

/// The app of use case 2: it writes numbered lines to the shipper's FIFO, and last words
/// naming the last line when it stops: on TERM, after 0.3 s of "flushing" (so a shipper
/// stopped at the same time would see it still alive), exit 0; or when the test asks it to
/// crash, exit 3. The count goes up in the same command that writes the line, so a trap,
/// which runs between commands, always sees `i` lines written.
const APP: &str = r#"exec 3>/run/app.fifo
echo $$ > /out/app.pid
trap 'sleep 0.3; echo "last words after line $i: stopping on TERM" >&3; exit 0' TERM
i=0
while :; do
  echo "line $((i+=1))" >&3
  if [ -e /out/crash-now ]; then echo "last words after line $i: fatal: database gone" >&3; exit 3; fi
  sleep 0.02 & wait $!
done
"#;

/// `tend run` config for use case 2: the shipper starts first (the app waits until it is
/// ready) and the app is critical.
fn app_and_shipper_config() -> String {
    format!(
        r#"[tend]
shutdown-timeout = "8s"

[services.shipper]
command = ["/bin/sh", "-c", '''
{SHIPPER}''']
ready = {{ notify-fd = 3, timeout = "20s" }}
stop-timeout = "3s"

[services.app]
command = ["/bin/sh", "-c", '''
{APP}''']
depends-on = {{ shipper = "ready" }}
critical = true
restart = "never"
stop-timeout = "3s"
"#
    )
}

/// Starts the use case 2 container and waits until the shipper has shipped `lines` lines.
fn start_app_and_shipper(lines: usize) -> Container {
    let config = app_and_shipper_config();
    let mut c = Container::run_config(&config, |rootfs| {
        fs::create_dir_all(rootfs.join("run")).unwrap_or_else(|e| panic!("mkdir run: {e}"));
    });
    c.wait_until(START_TIMEOUT, "the app's lines to be shipped", |c| {
        (shipped(&c.log("stdout")).len() >= lines).then_some(())
    });
    c
}

/// What the shipper shipped, in order, from the container's stdout.
fn shipped(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once("shipper | shipped: "))
        .map(|(_, line)| line.to_owned())
        .collect()
}

/// Checks that every line the app wrote was shipped once and in order, ending with its last
/// words (which end in `why`), that the shipper's stop began after the app was gone and that
/// it drained.
fn assert_everything_shipped(c: &Container, why: &str) {
    let logs = c.logs();
    let got = shipped(&c.log("stdout"));
    let last = got
        .last()
        .and_then(|l| l.strip_prefix("last words after line "))
        .and_then(|l| l.strip_suffix(why))
        .unwrap_or_else(|| panic!("the app's last words ({why:?}) were not shipped last\n{logs}"));
    let count: usize = last
        .strip_suffix(": ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line count in the app's last words\n{logs}"));
    let want: Vec<String> = (1..=count).map(|i| format!("line {i}")).collect();
    assert!(
        got[..got.len() - 1] == want[..],
        "the app wrote lines 1..={count}; shipped before its last words were {} lines, \
         first difference at {:?}\n{logs}",
        got.len() - 1,
        got.iter().zip(&want).position(|(a, b)| a != b)
    );
    assert_eq!(
        fs::read_to_string(c.out().join("order"))
            .unwrap_or_default()
            .trim(),
        "app-gone",
        "the shipper must be stopped only after the app has ended\n{logs}"
    );
    assert!(
        c.log("stdout")
            .contains("shipper | shipper drained, exiting"),
        "the shipper did not drain and exit by itself\n{logs}"
    );
    let err = c.log("stderr");
    let spawned = |name| {
        err.find(&format!("tend: info: spawned '{name}' with pid "))
            .unwrap_or_else(|| panic!("no 'spawned {name}' line\n{logs}"))
    };
    assert!(
        spawned("shipper") < spawned("app"),
        "the shipper must start first\n{logs}"
    );
    let shipper_end = err
        .lines()
        .find(|l| l.contains("'shipper' (pid ") && l.contains(") ended: "));
    assert!(
        shipper_end.is_some_and(|l| l.ends_with("ended: exit code 0")),
        "the shipper should exit 0 once drained, not {shipper_end:?}\n{logs}"
    );
    assert!(
        !err.contains("did not stop within its stop-timeout"),
        "nothing should need SIGKILL here\n{logs}"
    );
}

/// Use case 2, `docker stop`: the app stops first and its last words still reach the
/// shipper, which stops last, having shipped every line; the container exits 0.
#[test]
fn runc_log_shipper_stops_last_and_loses_no_line() {
    let mut c = start_app_and_shipper(20);
    c.kill("TERM");
    let status = c.wait_exit(Duration::from_secs(20), "`runc kill TERM`");
    assert_eq!(status.code(), Some(0), "{}", c.logs());
    assert_everything_shipped(&c, "stopping on TERM");
}

/// Use case 2, the app dies: it is critical, so the container ends with its exit code, but
/// only after the shipper has shipped its last words and stopped.
#[test]
fn runc_critical_app_exit_ends_the_container_after_the_shipper_drained() {
    let mut c = start_app_and_shipper(20);
    fs::write(c.out().join("crash-now"), "").unwrap_or_else(|e| panic!("crash-now: {e}"));
    let status = c.wait_exit(Duration::from_secs(20), "the critical app exited 3");
    assert_eq!(
        status.code(),
        Some(3),
        "the container should end with the critical app's code\n{}",
        c.logs()
    );
    assert_everything_shipped(&c, "fatal: database gone");
}

/// A redis stand-in for use case 4: on TERM, its default stop signal, it takes 0.3 s to
/// write its snapshot, which records whether the web server had already finished.
const REDIS: &str = r#"trap 'echo "redis got TERM: saving"; if [ -e /out/nginx-done ]; then o=after-nginx; else o=before-nginx; fi; sleep 0.3; echo $o > /out/dump.tmp; mv /out/dump.tmp /out/dump.rdb; exit 0' TERM
trap 'echo QUIT > /out/redis-wrong-signal; exit 1' QUIT
: > /out/redis-up
while :; do sleep 1 & wait $!; done
"#;

/// An nginx stand-in: QUIT is its graceful stop (TERM would be its fast one, and is wrong
/// here). Its `sleep` children die of the group-wide QUIT, hence `core = 0` in its limits.
const NGINX: &str = r#"trap 'echo TERM > /out/nginx-wrong-signal; exit 1' TERM
trap 'echo "nginx got QUIT: finishing requests"; sleep 0.2; : > /out/nginx-done; exit 0' QUIT
: > /out/nginx-up
while :; do sleep 1 & wait $!; done
"#;

/// Use case 4, `docker stop` without losing data: each service gets its own stop signal
/// (the web server QUIT, redis TERM), the web server first because it depends on redis,
/// redis's snapshot is written before the container exits, nothing is SIGKILLed, and it
/// all fits the shutdown timeout.
#[test]
fn runc_each_service_gets_its_own_stop_signal_in_reverse_order() {
    let config = format!(
        r#"[tend]
shutdown-timeout = "{}s"

[services.redis]
command = ["/bin/sh", "-c", '''
{REDIS}''']
stop-timeout = "2s"

[services.nginx]
command = ["/bin/sh", "-c", '''
{NGINX}''']
depends-on = ["redis"]
stop-signal = "QUIT"
stop-timeout = "2s"
limits = {{ core = 0 }}
"#,
        SHUTDOWN_TIMEOUT.as_secs()
    );
    let mut c = Container::run_config(&config, |_| {});
    c.wait_for_file("redis-up", START_TIMEOUT);
    c.wait_for_file("nginx-up", START_TIMEOUT);
    let sent = Instant::now();
    c.kill("TERM");
    let status = c.wait_exit(SHUTDOWN_TIMEOUT * 4, "`runc kill TERM`");
    let took = sent.elapsed();
    let logs = c.logs();
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(
        took < SHUTDOWN_TIMEOUT,
        "shutdown took {took:?}, more than shutdown-timeout = {SHUTDOWN_TIMEOUT:?}\n{logs}"
    );
    for wrong in ["redis-wrong-signal", "nginx-wrong-signal"] {
        assert!(
            !c.out().join(wrong).exists(),
            "{wrong}: a service got another signal than its stop-signal\n{logs}"
        );
    }
    assert!(
        c.log("stdout")
            .contains("nginx | nginx got QUIT: finishing requests"),
        "{logs}"
    );
    assert_eq!(
        fs::read_to_string(c.out().join("dump.rdb"))
            .unwrap_or_default()
            .trim(),
        "after-nginx",
        "redis must get its stop signal only after the web server that depends on it has \
         finished, and its snapshot must be written before the container exits\n{logs}"
    );
    assert!(
        !c.log("stderr")
            .contains("did not stop within its stop-timeout"),
        "nothing should need SIGKILL here\n{logs}"
    );
}

/// Use case 5: the orphans that `docker exec` sessions and health-check scripts leave
/// behind are adopted by PID 1 (their parent ran in the container, so the kernel hands them
/// to the container's init) and tend reaps every one: none is left as a zombie, whatever
/// started it.
#[test]
fn runc_orphans_of_exec_sessions_are_reaped() {
    const SESSIONS: usize = 10;
    const PER_SESSION: usize = 5;
    let config = r#"[services.app]
command = ["/bin/sh", "-c", "while :; do sleep 1 & wait $!; done"]
"#;
    let mut c = Container::run_config(config, |_| {});
    c.wait_until(START_TIMEOUT, "the app to start", |c| {
        c.log("stderr").contains("spawned 'app'").then_some(())
    });
    // Each session starts short background jobs and leaves at once, like a health-check
    // script that forgets to wait for what it started.
    let script = format!(
        "i=0; while [ $i -lt {PER_SESSION} ]; do sleep 0.2 & echo $! >> /out/orphans; \
         i=$((i+1)); done"
    );
    for _ in 0..SESSIONS {
        let out = c.exec(&["/bin/sh", "-c", &script]);
        assert!(out.status.success(), "runc exec: {}", out.describe());
    }
    let orphans: Vec<String> = fs::read_to_string(c.out().join("orphans"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(orphans.len(), SESSIONS * PER_SESSION, "{}", c.logs());
    // Gone from the container's /proc means exited and reaped; a zombie stays listed.
    c.wait_until(Duration::from_secs(30), "every orphan to be reaped", |c| {
        let script = "for p in $(cat /out/orphans); do [ -e /proc/$p ] && echo $p; done; true";
        let out = c.exec(&["/bin/sh", "-c", script]);
        out.stdout.trim().is_empty().then_some(())
    });
    c.assert_no_zombies();
    c.kill("TERM");
    let status = c.wait_exit(Duration::from_secs(15), "`runc kill TERM`");
    assert_eq!(status.code(), Some(0), "{}", c.logs());
}

/// OpenShift-style: a read-only root, an arbitrary uid with no /etc/passwd entry, and a tmpfs
/// /tmp (as an emptyDir). tend cannot make /run/tend, listens in /tmp/tend-12345/ instead and
/// says so; `tend status` run as that uid finds it with no flag; `runc kill TERM` still ends
/// the container with 0.
#[test]
fn runc_read_only_root_and_an_arbitrary_uid() {
    let config = "[services.app]\ncommand = [\"/bin/sh\", \"-c\", \"echo up as $(id -u); exec sleep 1000\"]\n";
    let mut c = Container::start_edited(
        &["/sbin/tend", "run", "/etc/tend.toml"],
        |rootfs| {
            fs::write(rootfs.join("etc/tend.toml"), config)
                .unwrap_or_else(|e| panic!("write tend.toml: {e}"));
        },
        |json| {
            replace_one(json, "\"readonly\": false", "\"readonly\": true");
            replace_one(json, "\"uid\": 0", "\"uid\": 12345");
            replace_one(
                json,
                "\"mounts\": [",
                "\"mounts\": [{\"destination\": \"/tmp\", \"type\": \"tmpfs\", \
                 \"source\": \"tmpfs\", \"options\": [\"nosuid\", \"nodev\", \"mode=1777\"]},",
            );
        },
    );
    c.wait_until(START_TIMEOUT, "the service, as uid 12345", |c| {
        c.log("stdout").contains("app | up as 12345").then_some(())
    });
    assert!(
        c.log("stderr")
            .contains("control socket at /tmp/tend-12345/control.sock"),
        "{}",
        c.logs()
    );
    let out = run(
        c.runc()
            .args(["exec", "--user", "12345:0", &c.id, "/sbin/tend", "status"]),
        CMD_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "tend status: {}\n{}",
        out.stderr,
        c.logs()
    );
    assert!(out.stdout.contains("app"), "{}", out.stdout);
    c.kill("TERM");
    let status = c.wait_exit(Duration::from_secs(15), "runc kill TERM");
    assert_eq!(status.code(), Some(0), "{}", c.logs());
}
