//! Faults from outside: tend as a real PID 1 (`tend run`) while the system around it fails
//! (no file descriptor left, fork failing, a full disk, a stdout nobody reads or nobody is
//! there to read, an endless line, a flood of bad clients, a frozen service at shutdown).
//!
//! Each test checks the same things: tend keeps running, says once what happened (the
//! messages in its output are counted), loses no line (services write numbered lines, and
//! the numbers must be contiguous), keeps answering `tend status`, and recovers by itself
//! when the fault clears. A test that finds several things wrong reports them all at once.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tend::proto::{Response, StatusReport};

const LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The harness: tend as PID 1, its output, its client, its descriptors and limits.

/// Where tend's stdout goes.
enum Stdout {
    /// A file the test reads whenever it likes.
    File,
    /// A pipe the test reads (or does not read) itself.
    Pipe,
}

/// `tend run` as PID 1 of a new pid namespace, with its control socket at `$DIR/ctl.sock`.
struct Tend {
    setup: Setup,
    sock: PathBuf,
    /// `unshare`, whose only child is tend (killed with it: `--kill-child`).
    launcher: Child,
    /// tend's pid as seen from here.
    pid: i32,
    stdout_file: Option<PathBuf>,
    stderr_file: PathBuf,
}

impl Tend {
    /// Starts tend on `toml` (services; `$DIR` is the temp dir, `$COUNTER` the counter
    /// helper), optionally inside the cgroup `cgroup`, and waits until it answers.
    fn start(toml: &str, stdout: Stdout, cgroup: Option<&Path>) -> (Tend, Option<ChildStdout>) {
        let toml = toml.replace("$COUNTER", &helper("counter.py").display().to_string());
        let setup = Setup::with_socket(&toml);
        let sock = setup.path("ctl.sock");
        let stderr_file = setup.path("tend.stderr");
        let stdout_file = matches!(stdout, Stdout::File).then(|| setup.path("tend.stdout"));
        let mut cmd = match cgroup {
            // The launcher joins the cgroup, then becomes `unshare`: tend and everything it
            // starts are in it from the first fork on.
            Some(dir) => {
                let mut cmd = Command::new("sh");
                cmd.args([
                    "-c",
                    "echo $$ > \"$1/cgroup.procs\" && shift && exec \"$@\"",
                    "sh",
                ])
                .arg(dir)
                .arg("unshare");
                cmd
            }
            None => Command::new("unshare"),
        };
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(tend_bin())
            .arg("run")
            .arg(&setup.config)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&stderr_file).unwrap());
        match &stdout_file {
            Some(path) => cmd.stdout(std::fs::File::create(path).unwrap()),
            None => cmd.stdout(Stdio::piped()),
        };
        let mut launcher = cmd.spawn().unwrap();
        let pipe = launcher.stdout.take();
        let lpid = launcher.id();
        let pid = wait_for("tend to start under unshare", LIMIT, || {
            let kids =
                std::fs::read_to_string(format!("/proc/{lpid}/task/{lpid}/children")).ok()?;
            kids.split_whitespace().next()?.parse().ok()
        });
        let tend = Tend {
            setup,
            sock,
            launcher,
            pid,
            stdout_file,
            stderr_file,
        };
        wait_for("tend to answer on its socket", LIMIT, || {
            tend.status(Duration::from_secs(5)).ok()
        });
        (tend, pipe)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.setup.path(name)
    }

    /// Replaces the services of the configuration (for reloads).
    fn rewrite(&self, toml: &str) {
        let toml = toml
            .replace("$COUNTER", &helper("counter.py").display().to_string())
            .replace("$DIR", &self.setup.dir.path().display().to_string());
        let sock = self.sock.display();
        std::fs::write(
            &self.setup.config,
            format!("[tend]\nsocket = \"{sock}\"\n{toml}"),
        )
        .unwrap();
    }

    /// Whether tend (its launcher, which ends with it) still runs.
    fn alive(&mut self) -> bool {
        self.launcher.try_wait().unwrap().is_none()
    }

    /// `tend ARGS... --socket SOCK`, run from here (outside tend's pid namespace), killed if
    /// it has not finished within `limit`.
    fn client(&self, args: &[&str], limit: Duration) -> Result<String, String> {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let mut child = Command::new(tend_bin())
            .args(args)
            .arg("--socket")
            .arg(&self.sock)
            .args(["--timeout", &format!("{}ms", limit.as_millis())])
            .env_remove("TEND_SOCKET")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        // The client's own timeout does not cover connecting; this covers everything.
        let hard = limit + Duration::from_secs(2);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > hard {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = std::fs::read_to_string(out).unwrap_or_default();
        let err = std::fs::read_to_string(err).unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok(out),
            Some(s) => Err(format!("tend {args:?} failed ({s}): {out}{err}")),
            None => Err(format!("tend {args:?}: no answer within {hard:?}")),
        }
    }

    fn status(&self, limit: Duration) -> Result<StatusReport, String> {
        let out = self.client(&["status", "--json"], limit)?;
        match serde_json::from_str(out.trim()) {
            Ok(Response::Status(report)) => Ok(report),
            other => Err(format!("not a status: {out:?} ({other:?})")),
        }
    }

    /// The state and pid of service `name`, if tend answers.
    fn service(&self, name: &str) -> Option<(String, Option<i32>)> {
        let report = self.status(Duration::from_secs(5)).ok()?;
        let s = report.services.into_iter().find(|s| s.name == name)?;
        Some((s.state, s.pid))
    }

    /// Waits until `name` runs; returns its pid in tend's namespace.
    fn wait_running(&self, name: &str, limit: Duration) -> i32 {
        wait_for(&format!("'{name}' to run"), limit, || {
            match self.service(name)? {
                (state, Some(pid)) if state == "running" => Some(pid),
                _ => None,
            }
        })
    }

    /// tend's stdout so far (when it goes to a file).
    fn stdout(&self) -> String {
        std::fs::read_to_string(self.stdout_file.as_ref().unwrap()).unwrap_or_default()
    }

    /// How much tend has written to its stderr: a mark for `stderr_since`.
    fn stderr_mark(&self) -> u64 {
        std::fs::metadata(&self.stderr_file).map_or(0, |m| m.len())
    }

    /// tend's stderr from `mark` on.
    fn stderr_since(&self, mark: u64) -> String {
        let mut f = std::fs::File::open(&self.stderr_file).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(mark)).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until tend's stderr has `what` after `mark`, reading only what is new each time
    /// (a fault may make tend write a lot).
    fn wait_stderr(&self, mark: u64, what: &str, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let mut from = mark;
        loop {
            let text = self.stderr_since(from);
            if text.contains(what) {
                return Ok(());
            }
            from += text.len().saturating_sub(what.len()) as u64;
            if start.elapsed() > limit {
                return Err(format!("'{what}' did not appear in tend's stderr"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The host pid of tend's child that runs `cmd` (its argv joined by spaces).
    fn child_running(&self, cmd: &str) -> i32 {
        let pid = self.pid;
        wait_for(&format!("tend's child '{cmd}'"), LIMIT, || {
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            kids.split_whitespace()
                .filter_map(|k| k.parse::<i32>().ok())
                .find(|k| {
                    std::fs::read(format!("/proc/{k}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmd)
                        .unwrap_or(false)
                })
        })
    }

    /// Waits for tend to end; how long that took, and its exit code.
    fn wait_exit(&mut self, limit: Duration) -> Option<(Duration, Option<i32>)> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.launcher.try_wait().unwrap() {
                return Some((start.elapsed(), status.code()));
            }
            if start.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Ends tend with `tend shutdown` and checks that it exits 0 in time.
    fn shutdown(&mut self, p: &mut Problems) {
        if !self.alive() {
            return;
        }
        let _ = self.client(&["shutdown"], Duration::from_secs(5));
        match self.wait_exit(LIMIT) {
            Some((_, Some(0))) => {}
            Some((_, code)) => p.fail(format!("tend ended with code {code:?} after shutdown")),
            None => p.fail("tend did not end after `tend shutdown`"),
        }
    }
}

impl Drop for Tend {
    fn drop(&mut self) {
        if self.launcher.try_wait().ok().flatten().is_none() {
            let _ = self.launcher.kill();
            let _ = self.launcher.wait();
        }
    }
}

/// Open descriptors of process `pid`.
fn fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}

/// The RLIMIT_NOFILE (soft) under which process `pid` can open exactly `free` more
/// descriptors.
fn nofile_leaving(pid: i32, free: usize) -> u64 {
    let open = fds(pid);
    let mut left = free;
    let mut n = 0;
    loop {
        if !open.contains(&n) {
            if left == 0 {
                return n as u64;
            }
            left -= 1;
        }
        n += 1;
    }
}

/// Lowers RLIMIT_NOFILE of process `pid` so that it can open exactly `free` more
/// descriptors, checked once it is set (a descriptor open for a moment when it was measured
/// would leave a hole below the limit). Returns the limit.
fn starve(pid: i32, free: usize, hard: u64) -> u64 {
    for _ in 0..50 {
        let limit = nofile_leaving(pid, free);
        set_nofile(pid, limit, hard);
        std::thread::sleep(Duration::from_millis(50));
        let open = fds(pid);
        let holes = (0..limit as i32).filter(|n| !open.contains(n)).count();
        if holes == free {
            return limit;
        }
    }
    panic!("could not leave exactly {free} free descriptor(s) to tend");
}

/// RLIMIT_NOFILE of process `pid`: (soft, hard).
fn nofile(pid: i32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// Sets RLIMIT_NOFILE of a running process with `prlimit --pid`.
fn set_nofile(pid: i32, soft: u64, hard: u64) {
    let ok = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            &format!("--nofile={soft}:{hard}"),
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "prlimit failed");
}

/// VmRSS of process `pid`, in bytes.
fn rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The numbers a counter service wrote, from tend's prefixed output (`name<pad> | N`).
/// Lines of that service that are not a number are returned as errors.
fn numbers(output: &str, service: &str) -> (Vec<u64>, Vec<String>) {
    let mut nums = Vec::new();
    let mut bad = Vec::new();
    for line in output.lines() {
        let Some((name, text)) = line.split_once(" | ") else {
            continue;
        };
        if name.trim_end() != service {
            continue;
        }
        match text.parse() {
            Ok(n) => nums.push(n),
            Err(_) => bad.push(line.to_string()),
        }
    }
    (nums, bad)
}

/// Checks that `nums` is `first, first+1, ...` with nothing missing, repeated or cut.
fn contiguous(what: &str, nums: &[u64], bad: &[String], first: Option<u64>) -> Result<(), String> {
    if !bad.is_empty() {
        let shown: Vec<&String> = bad.iter().take(5).collect();
        return Err(format!(
            "{what}: {} line(s) are not whole: {shown:?}",
            bad.len()
        ));
    }
    let Some(&start) = nums.first() else {
        return Err(format!("{what}: no line at all"));
    };
    if let Some(first) = first
        && start != first
    {
        return Err(format!("{what}: starts at {start}, not {first}"));
    }
    for (i, pair) in nums.windows(2).enumerate() {
        if pair[1] != pair[0] + 1 {
            return Err(format!(
                "{what}: line {} is followed by {} (at index {}; {} lines in all)",
                pair[0],
                pair[1],
                i + 1,
                nums.len()
            ));
        }
    }
    Ok(())
}

/// What tend said last: a panic's message if there is one, and the last line.
fn last_words(text: &str) -> String {
    let all: Vec<&str> = text.lines().collect();
    let mut words: Vec<&str> = Vec::new();
    for (i, line) in all.iter().enumerate() {
        if line.contains("panicked at") {
            words.extend(&all[i..(i + 2).min(all.len())]);
        }
    }
    words.extend(all.last());
    words.join("\n")
}

/// tend's own lines (`tend: LEVEL: ...`) in `text` that contain `needle`.
fn tend_lines<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with("tend: ") && l.contains(needle))
        .collect()
}

/// A line with its numbers replaced by `#`, so that repeats of one message compare equal.
fn masked(line: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('#');
            }
            in_num = true;
        } else {
            out.push(c);
            in_num = false;
        }
    }
    out
}

/// tend's messages in `text` that contain `needle`, grouped by their masked text, most
/// frequent first: (count, one of them).
fn messages(text: &str, needle: &str) -> Vec<(usize, String)> {
    let mut groups: Vec<(String, usize, String)> = Vec::new();
    for line in tend_lines(text, needle) {
        let key = masked(line);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1 += 1,
            None => groups.push((key, 1, line.to_string())),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    groups.into_iter().map(|(_, n, line)| (n, line)).collect()
}

/// Fails for every message about the fault (naming `needle`) that tend repeated.
fn said_once(p: &mut Problems, text: &str, needle: &str) {
    let all = messages(text, needle);
    if all.is_empty() {
        p.fail(format!(
            "tend never said what happened (no message with {needle:?})"
        ));
    }
    let repeated: Vec<String> = all
        .iter()
        .filter(|(n, _)| *n > 1)
        .map(|(n, line)| format!("{n} times: {line}"))
        .collect();
    if !repeated.is_empty() {
        p.fail(format!(
            "tend repeated its message about the fault ({} lines with {needle:?} in all):\n    {}",
            all.iter().map(|(n, _)| n).sum::<usize>(),
            repeated.join("\n    ")
        ));
    }
}

/// The properties a test found broken, reported together at its end.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn fail(&mut self, what: impl Into<String>) {
        self.0.push(what.into());
    }

    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.fail(what);
        }
    }

    fn result(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.fail(e);
        }
    }

    /// Panics with every problem found, and a digest of tend's messages.
    fn finish(self, t: &Tend) {
        if self.0.is_empty() {
            return;
        }
        let digest: Vec<String> = messages(&t.stderr_since(0), "")
            .into_iter()
            .take(20)
            .map(|(n, line)| format!("  {n:>7} x {line}"))
            .collect();
        panic!(
            "{} problem(s):\n- {}\n\ntend's messages (count x one of them):\n{}",
            self.0.len(),
            self.0.join("\n- "),
            digest.join("\n")
        );
    }
}

/// Reads a pipe in a thread, into memory, while `reading` is set (and not while it is not:
/// the pipe then fills up as if nobody were there).
struct PipeReader {
    data: Arc<Mutex<Vec<u8>>>,
    reading: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PipeReader {
    fn new(mut pipe: ChildStdout, reading: bool) -> PipeReader {
        let data = Arc::new(Mutex::new(Vec::new()));
        let flag = Arc::new(AtomicBool::new(reading));
        let done = Arc::new(AtomicBool::new(false));
        let (d, f, e) = (data.clone(), flag.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                if !f.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => d.lock().unwrap().extend_from_slice(&buf[..n]),
                }
            }
            e.store(true, Ordering::SeqCst);
        });
        PipeReader {
            data,
            reading: flag,
            done,
            thread: Some(thread),
        }
    }

    fn set_reading(&self, on: bool) {
        self.reading.store(on, Ordering::SeqCst);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data.lock().unwrap()).into_owned()
    }

    /// Whether the last 64 KiB read hold `needle`.
    fn tail_contains(&self, needle: &str) -> bool {
        let data = self.data.lock().unwrap();
        let tail = &data[data.len().saturating_sub(1 << 16)..];
        tail.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    /// Reads to the end (the writer gone) and returns everything.
    fn finish(mut self, limit: Duration) -> String {
        self.set_reading(true);
        let start = Instant::now();
        while !self.done.load(Ordering::SeqCst) && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.done.load(Ordering::SeqCst) {
            let _ = self.thread.take().unwrap().join();
        }
        self.text()
    }
}

/// A tmpfs of a given size mounted on a fresh directory, unmounted when it goes.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn new(size: &str) -> TinyFs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "cannot mount a tmpfs");
        TinyFs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(self.dir.path())
            .status();
    }
}

/// Waits until tend's stdout file has `n` lines of counter `service`.
fn wait_lines(t: &Tend, service: &str, n: usize) {
    wait_for(&format!("{n} lines of '{service}'"), LIMIT, || {
        (numbers(&t.stdout(), service).0.len() >= n).then_some(())
    });
}

/// A service that writes numbered lines every `interval` (`0` for as fast as it can).
fn counter(name: &str, interval: &str, extra: &str) -> String {
    format!("\n[services.{name}]\ncommand = [\"python3\", \"$COUNTER\", \"{interval}\"]\n{extra}\n")
}

// ---------------------------------------------------------------------------------------------
// The faults.

/// Out of file descriptors (RLIMIT_NOFILE lowered on the running tend) while restarting a
/// service, running its probes, accepting control connections and reloading a file that
/// adds a service; then the limit is raised again.
#[test]
fn out_of_file_descriptors() {
    let probe_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe_port.local_addr().unwrap().port();
    // Accept and drop the probes' connections, so the backlog never fills.
    std::thread::spawn(move || {
        for conn in probe_port.incoming() {
            drop(conn);
        }
    });
    let services = format!(
        r#"{}
[services.crashy]
command = ["sh", "-c", "echo start >> $DIR/crashy-starts; sleep 0.3; exit 1"]
backoff = {{ initial = "100ms", max = "300ms" }}
max-restarts = 1000

[services.probed]
command = ["sleep", "1000"]
start-secs = "0s"
health = {{ tcp = "127.0.0.1:{port}", interval = "100ms", timeout = "100ms" }}
"#,
        counter("steady", "0.01", "")
    );
    let (mut t, _) = Tend::start(&services, Stdout::File, None);
    let mut p = Problems::default();
    let healthy = |t: &Tend| {
        t.status(Duration::from_secs(5)).ok().and_then(|r| {
            r.services
                .into_iter()
                .find(|s| s.name == "probed" && s.health.as_deref() == Some("healthy"))
                .map(|_| ())
        })
    };
    wait_for("'probed' to be healthy", LIMIT, || healthy(&t));
    t.wait_running("steady", LIMIT);
    wait_lines(&t, "steady", 20);
    let starts = |t: &Tend| lines(&t.path("crashy-starts")).len();
    wait_for("crashy to start", LIMIT, || (starts(&t) > 0).then_some(()));
    let base = fds(t.pid);
    let (soft, hard) = nofile(t.pid);

    // 1. Not one descriptor left, for two seconds: crashy's restarts, the health checks and
    // every control connection need one.
    let mark = t.stderr_mark();
    let fault = Instant::now();
    starve(t.pid, 0, hard);
    let before = starts(&t);
    let answered = t.status(Duration::from_secs(2));
    p.check(
        answered.is_ok(),
        format!("no `tend status` answer without a free descriptor: {answered:?}"),
    );
    std::thread::sleep(Duration::from_secs(2).saturating_sub(fault.elapsed()));
    p.check(t.alive(), "tend died without descriptors");
    p.check(
        starts(&t) == before,
        "crashy was started although no descriptor was free (the limit did not bite)",
    );
    set_nofile(t.pid, soft, hard);
    // A check tend could not make is no verdict on the service: probed stays up.
    let during = t.stderr_since(mark);
    p.check(
        !during.contains("'probed' is unhealthy"),
        "tend restarted 'probed' as unhealthy because tend itself had no descriptor",
    );
    let recovered = Instant::now();
    p.result(
        t.status(Duration::from_secs(5))
            .map(drop)
            .map_err(|e| format!("no `tend status` after the limit was raised: {e}")),
    );
    // It recovers by itself: crashy is started again and the health checks pass.
    let back = (|| -> Result<(), String> {
        while starts(&t) <= before {
            if recovered.elapsed() > Duration::from_secs(10) {
                return Err("crashy was not started again after the limit was raised".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        while healthy(&t).is_none() {
            if recovered.elapsed() > Duration::from_secs(10) {
                return Err("'probed' is not healthy again after the limit was raised".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })();
    p.result(back);
    // Failed attempts left nothing open behind them.
    let leaked = (|| -> Result<(), String> {
        let start = Instant::now();
        loop {
            let now = fds(t.pid);
            if now.len() == base.len() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(5) {
                return Err(format!(
                    "tend holds {} descriptors after the fault, {} before",
                    now.len(),
                    base.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })();
    p.result(leaked);
    said_once(&mut p, &t.stderr_since(mark), "os error 24");

    // 2. A reload that adds a service, with room for the control connection and the file,
    // but not for the new service's log pipes.
    if t.alive() {
        t.rewrite(&format!("{services}{}", counter("added", "0.01", "")));
        let mark = t.stderr_mark();
        starve(t.pid, 2, hard);
        let reply = t.client(&["reload"], Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(500));
        if !t.alive() {
            let status = t.launcher.wait().unwrap();
            p.fail(format!(
                "tend died ({status}) during a reload without descriptors; the reload \
                 answered {reply:?}; its last words:\n{}",
                last_words(&t.stderr_since(mark))
            ));
        } else {
            set_nofile(t.pid, soft, hard);
            p.result(
                t.status(Duration::from_secs(5))
                    .map(drop)
                    .map_err(|e| format!("no `tend status` after the failed reload: {e}")),
            );
            // Either the added service comes up by itself now that descriptors are back,
            // or the reload was refused as a whole and a new one applies it.
            let by_itself = (|| {
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(5) {
                    if matches!(t.service("added"), Some((s, _)) if s == "running") {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                false
            })();
            if !by_itself {
                p.check(
                    reply.is_err(),
                    format!(
                        "the reload answered {reply:?}, but 'added' does not run once \
                         descriptors are back"
                    ),
                );
                let again = t.client(&["reload"], Duration::from_secs(5));
                p.check(again.is_ok(), format!("a second reload failed: {again:?}"));
                let runs = (|| {
                    let start = Instant::now();
                    while start.elapsed() < Duration::from_secs(10) {
                        if matches!(t.service("added"), Some((s, _)) if s == "running") {
                            return true;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    false
                })();
                p.check(runs, "'added' does not run after a second reload");
            }
            said_once(&mut p, &t.stderr_since(mark), "os error 24");
        }
    }

    // No line of the steady service was lost through all of it.
    if t.alive() {
        t.shutdown(&mut p);
    }
    let (nums, bad) = numbers(&t.stdout(), "steady");
    p.result(contiguous("steady's lines on stdout", &nums, &bad, Some(1)));
    p.finish(&t);
}

/// `fork` fails with EAGAIN (a cgroup v1 `pids` cgroup at its limit): a restart that cannot
/// fork is a failed start with backoff, and the service runs again once forking works.
#[test]
fn fork_failing_with_eagain() {
    let cgroup =
        TestCgroup::new("pids").expect("no cgroup v1 pids controller at /sys/fs/cgroup/pids");
    let services = format!(
        "{}{}",
        counter("steady", "0.01", ""),
        r#"
[services.worker]
command = ["sleep", "1000"]
backoff = { initial = "100ms", max = "400ms" }
max-restarts = 1000
"#
    );
    let (mut t, _) = Tend::start(&services, Stdout::File, Some(&cgroup.0));
    let mut p = Problems::default();
    t.wait_running("steady", LIMIT);
    wait_lines(&t, "steady", 20);
    let first = t.wait_running("worker", LIMIT);
    let worker = t.child_running("sleep 1000");

    // One process fewer than there are: once the worker is gone, no fork succeeds.
    let mark = t.stderr_mark();
    cgroup.set(
        "pids.max",
        &(cgroup.number("pids.current", None) - 1).to_string(),
    );
    send(worker, "KILL");
    p.result(t.wait_stderr(mark, "cannot run 'worker'", LIMIT));
    let fault = Instant::now();
    let mut states = Vec::new();
    let mut unanswered = 0;
    while fault.elapsed() < Duration::from_secs(3) {
        match t.status(Duration::from_secs(2)) {
            Ok(r) => {
                let w = r.services.into_iter().find(|s| s.name == "worker").unwrap();
                if states.last() != Some(&w.state) {
                    states.push(w.state);
                }
            }
            Err(_) => unanswered += 1,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    p.check(
        unanswered == 0,
        format!("{unanswered} `tend status` went unanswered while fork failed"),
    );
    p.check(
        states.iter().any(|s| s == "backoff"),
        format!("the worker was never in backoff while fork failed: states {states:?}"),
    );
    p.check(
        !states.iter().any(|s| s == "failed"),
        format!("the worker failed for good: states {states:?}"),
    );
    p.check(t.alive(), "tend died while fork failed");
    let during = t.stderr_since(mark);
    p.check(
        during.contains("'worker' failed (") && during.contains("restarting in"),
        "the failed fork was not a failed start with backoff",
    );

    cgroup.set("pids.max", "max");
    let recovered = Instant::now();
    let again = wait_for("the worker to run again", LIMIT, || {
        match t.service("worker")? {
            (state, Some(pid)) if state == "running" && pid != first => Some(pid),
            _ => None,
        }
    });
    p.check(
        recovered.elapsed() < Duration::from_secs(2),
        format!(
            "the worker took {:?} to run again once fork worked (backoff max is 400ms)",
            recovered.elapsed()
        ),
    );
    p.check(again != first, "no new worker");
    said_once(
        &mut p,
        &t.stderr_since(mark),
        "Resource temporarily unavailable",
    );
    t.shutdown(&mut p);
    let (nums, bad) = numbers(&t.stdout(), "steady");
    p.result(contiguous("steady's lines on stdout", &nums, &bad, Some(1)));
    p.finish(&t);
}

/// `logs.file` on a full filesystem: stdout still gets every line, tend says it once, and
/// the file is written again once there is room.
#[test]
fn a_log_file_on_a_full_filesystem() {
    let fs = TinyFs::new("64k");
    let log = fs.path("writer.log");
    let services = counter(
        "writer",
        "0.005",
        &format!("logs = {{ file = \"{}\" }}", log.display()),
    );
    let (mut t, _) = Tend::start(&services, Stdout::File, None);
    let mut p = Problems::default();
    wait_for("lines in the log file", LIMIT, || {
        (lines(&log).len() >= 20).then_some(())
    });

    // Fill the filesystem.
    let mark = t.stderr_mark();
    let filler = fs.path("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = [b'f'; 512];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    p.result(t.wait_stderr(mark, "No space left on device", Duration::from_secs(10)));
    // Hold the fault a while: the service keeps writing.
    let (before, _) = numbers(&t.stdout(), "writer");
    let held = Instant::now();
    wait_for("more lines while the disk is full", LIMIT, || {
        let (now, _) = numbers(&t.stdout(), "writer");
        (now.len() >= before.len() + 100 && held.elapsed() > Duration::from_secs(1)).then_some(())
    });
    p.result(
        t.status(Duration::from_secs(2))
            .map(drop)
            .map_err(|e| format!("no `tend status` while the disk is full: {e}")),
    );
    let in_file_when_full: Vec<String> = lines(&log);

    // Room again: the file gets new lines.
    std::fs::remove_file(&filler).unwrap();
    let (at_room, _) = numbers(&t.stdout(), "writer");
    let last_before_room = *at_room.last().unwrap();
    let written_again = (|| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let newest = lines(&log)
                .iter()
                .filter_map(|l| l.parse::<u64>().ok())
                .max()
                .unwrap_or(0);
            if newest > last_before_room {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    })();
    p.check(
        written_again,
        format!(
            "the log file got no new line once there was room again (it holds {} lines)",
            lines(&log).len()
        ),
    );
    p.check(t.alive(), "tend died on the full disk");
    let err = t.stderr_since(mark);
    let said = tend_lines(&err, "os error 28");
    p.check(
        said.len() == 1,
        format!(
            "{} messages about the full disk, not one: {:?}",
            said.len(),
            &said[..said.len().min(5)]
        ),
    );
    t.shutdown(&mut p);

    let (nums, bad) = numbers(&t.stdout(), "writer");
    p.result(contiguous(
        "the writer's lines on stdout",
        &nums,
        &bad,
        Some(1),
    ));
    // The file holds whole lines, in order (some are missing: those of the full disk).
    let file = lines(&log);
    // Each line of the file is one the writer wrote, after the one before it.
    let mut prev = 0;
    for (i, l) in file.iter().enumerate() {
        match l.parse::<u64>() {
            Ok(n) if n > prev && n <= nums.last().copied().unwrap_or(0) => prev = n,
            _ => {
                p.fail(format!(
                    "the log file's line {} is {l:?}, after {prev}: not a line the writer \
                     wrote, in its place (lines {}..: {:?}; the file held {} lines when the \
                     disk was full, ending {:?})",
                    i + 1,
                    i.saturating_sub(2) + 1,
                    &file[i.saturating_sub(2)..(i + 3).min(file.len())],
                    in_file_when_full.len(),
                    in_file_when_full.last()
                ));
                break;
            }
        }
    }
    p.finish(&t);
}

/// tend's stdout reader goes away (EPIPE): the services are not killed, their lines still
/// reach `tend logs`, tend says once that its stdout is gone, keeps answering, and
/// `tend shutdown` ends it within shutdown-timeout.
#[test]
fn tends_stdout_reader_gone() {
    // Keys before the first table join the [tend] table `Setup::with_socket` starts with.
    let services = format!(
        "shutdown-timeout = \"3s\"\n{}",
        counter("steady", "0.005", "")
    );
    let (mut t, pipe) = Tend::start(&services, Stdout::Pipe, None);
    let mut p = Problems::default();
    let pid = t.wait_running("steady", LIMIT);

    // Read some lines, then close the pipe.
    let mut pipe = BufReader::new(pipe.unwrap());
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let mut line = String::new();
        if pipe.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push(line);
    }
    let mark = t.stderr_mark();
    drop(pipe);
    let closed = Instant::now();

    let mut unanswered = 0;
    while closed.elapsed() < Duration::from_secs(2) {
        if t.status(Duration::from_secs(2)).is_err() {
            unanswered += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    p.check(
        unanswered == 0,
        format!("{unanswered} `tend status` went unanswered"),
    );
    p.check(t.alive(), "tend died when its stdout went away");
    match t.service("steady") {
        Some((state, Some(now))) if state == "running" && now == pid => {}
        other => p.fail(format!("steady was killed or restarted: {other:?}")),
    }
    // Its lines still reach the ring, none missing.
    let logs = t.client(&["logs", "steady", "-n", "500"], Duration::from_secs(5));
    match logs {
        Ok(text) => {
            let (nums, bad) = numbers(&text, "steady");
            p.result(contiguous(
                "steady's lines in `tend logs`",
                &nums,
                &bad,
                None,
            ));
            p.check(
                nums.last().is_some_and(|&n| n > 300),
                format!(
                    "steady is not writing any more: last line {:?}",
                    nums.last()
                ),
            );
        }
        Err(e) => p.fail(e),
    }
    let err = t.stderr_since(mark);
    let said: Vec<&str> = ["stdout", "standard output", "os error 32", "Broken pipe"]
        .iter()
        .flat_map(|needle| tend_lines(&err, needle))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    p.check(
        said.len() == 1,
        format!(
            "{} messages saying tend's stdout is gone, not one: {said:?}",
            said.len()
        ),
    );

    let asked = Instant::now();
    let _ = t.client(&["shutdown"], Duration::from_secs(5));
    match t.wait_exit(LIMIT) {
        Some((_, code)) => {
            let took = asked.elapsed();
            p.check(
                took < Duration::from_millis(3500),
                format!("shutdown took {took:?}, longer than shutdown-timeout (3s)"),
            );
            p.check(code == Some(0), format!("tend ended with code {code:?}"));
        }
        None => p.fail("tend did not end after `tend shutdown`"),
    }
    p.finish(&t);
}

/// tend's stdout is a pipe nobody reads for 30 s: the services are held back (not killed,
/// no line dropped), `tend status` keeps answering, and `tend shutdown` still ends tend
/// within shutdown-timeout while nobody reads.
#[test]
fn tends_stdout_unread_for_30s() {
    const HOLD: Duration = Duration::from_secs(30);
    // The writer keeps its own count in a file: held back, it stops growing.
    let services = r#"shutdown-timeout = "3s"

[services.steady]
command = ["python3", "$COUNTER", "0", "$DIR/progress"]
"#;
    let (mut t, pipe) = Tend::start(services, Stdout::Pipe, None);
    let reader = PipeReader::new(pipe.unwrap(), false);
    let mut p = Problems::default();
    let pid = t.wait_running("steady", LIMIT);
    let progress = t.path("progress");
    let last_written =
        || -> Option<u64> { std::fs::read_to_string(&progress).ok()?.trim().parse().ok() };

    let start = Instant::now();
    let mut unanswered = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut samples = Vec::new();
    while start.elapsed() < HOLD {
        let asked = Instant::now();
        match t.status(Duration::from_secs(2)) {
            Ok(r) => {
                slowest = slowest.max(asked.elapsed());
                let s = r.services.into_iter().find(|s| s.name == "steady").unwrap();
                if s.pid != Some(pid) || s.state != "running" {
                    p.fail(format!(
                        "steady was killed or restarted after {:?}: {} {:?}",
                        start.elapsed(),
                        s.state,
                        s.pid
                    ));
                    break;
                }
            }
            Err(e) => unanswered.push(format!("after {:?}: {e}", start.elapsed())),
        }
        samples.push((start.elapsed(), last_written()));
        std::thread::sleep(Duration::from_millis(250));
    }
    p.check(
        unanswered.is_empty(),
        format!("`tend status` went unanswered: {unanswered:?}"),
    );
    p.check(
        slowest < Duration::from_secs(1),
        format!("the slowest `tend status` took {slowest:?}"),
    );
    p.check(t.alive(), "tend died while nobody read its stdout");
    for (n, line) in messages(&t.stderr_since(0), "") {
        p.check(n == 1, format!("tend said {n} times: {line}"));
    }
    // Held back: in the second half of the hold, the writer made no progress.
    let late: Vec<Option<u64>> = samples
        .iter()
        .filter(|(at, _)| *at > HOLD / 2)
        .map(|(_, n)| *n)
        .collect();
    p.check(
        !late.is_empty() && late.iter().all(|n| *n == late[0]),
        format!("steady was not held back while nobody read: {late:?}"),
    );

    // Read what piled up, then stop reading again and shut down while nobody reads.
    reader.set_reading(true);
    let caught_up = (|| {
        let begin = Instant::now();
        while begin.elapsed() < LIMIT {
            let (nums, _) = numbers(&reader.text(), "steady");
            if nums.len() as u64 > late.first().copied().flatten().unwrap_or(0) + 1000 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    })();
    p.check(caught_up, "the lines held back did not come once read");
    reader.set_reading(false);
    std::thread::sleep(Duration::from_secs(1)); // hold the pipe full again
    let asked = Instant::now();
    let _ = t.client(&["shutdown"], Duration::from_secs(5));
    match t.wait_exit(LIMIT) {
        Some((_, code)) => {
            let took = asked.elapsed();
            p.check(
                took < Duration::from_millis(3500),
                format!(
                    "shutdown took {took:?} with nobody reading, longer than shutdown-timeout (3s)"
                ),
            );
            p.check(code == Some(0), format!("tend ended with code {code:?}"));
        }
        None => p.fail("tend did not end after `tend shutdown` with nobody reading"),
    }
    let text = reader.finish(Duration::from_secs(5));
    let (nums, bad) = numbers(&text, "steady");
    p.result(contiguous("steady's lines on stdout", &nums, &bad, Some(1)));
    p.finish(&t);
}

/// One service writes a 200 MB line without a newline: tend's memory stays under 64 MiB and
/// every byte of it reaches stdout.
#[test]
fn a_200_mb_line_without_a_newline() {
    const SIZE: u64 = 200_000_000;
    let services = format!(
        r#"
[services.big]
command = ["python3", "-c", "import sys, time\nw = sys.stdout.buffer\nb = b'x' * 1000000\nfor _ in range({}):\n    w.write(b)\nw.flush()\ntime.sleep(1000)\n"]
{}"#,
        SIZE / 1_000_000,
        counter("steady", "0.005", "")
    );
    let (mut t, pipe) = Tend::start(&services, Stdout::Pipe, None);
    let mut p = Problems::default();
    let got = Arc::new(AtomicU64::new(0));
    let steady = Arc::new(Mutex::new(String::new()));
    let (g, s) = (got.clone(), steady.clone());
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(1 << 16, pipe.unwrap());
        let mut line = Vec::new();
        let mut foreign = 0u64;
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(rest) = line.strip_prefix(b"big    | ") {
                let text = rest.strip_suffix(b"\n").unwrap_or(rest);
                foreign += text.iter().filter(|&&b| b != b'x').count() as u64;
                g.fetch_add(text.len() as u64, Ordering::SeqCst);
            } else {
                s.lock().unwrap().push_str(&String::from_utf8_lossy(&line));
            }
        }
        foreign
    });
    let start = Instant::now();
    let mut peak = 0;
    let mut unanswered = 0;
    let mut next_status = Instant::now();
    while got.load(Ordering::SeqCst) < SIZE && start.elapsed() < Duration::from_secs(45) {
        if let Some(r) = rss(t.pid) {
            peak = peak.max(r);
        }
        if Instant::now() >= next_status {
            if t.status(Duration::from_secs(2)).is_err() {
                unanswered += 1;
            }
            next_status = Instant::now() + Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = start.elapsed();
    p.check(
        got.load(Ordering::SeqCst) == SIZE,
        format!(
            "{} of the line's {SIZE} bytes reached stdout within {took:?}",
            got.load(Ordering::SeqCst)
        ),
    );
    p.check(
        peak < 64 << 20,
        format!("tend's VmRSS reached {} MiB", peak >> 20),
    );
    p.check(
        unanswered == 0,
        format!("{unanswered} `tend status` went unanswered"),
    );
    p.check(t.alive(), "tend died of the long line");
    for (n, line) in messages(&t.stderr_since(0), "") {
        p.check(n == 1, format!("tend said {n} times: {line}"));
    }
    t.shutdown(&mut p);
    let foreign = reader.join().unwrap();
    p.check(
        foreign == 0,
        format!("{foreign} bytes of the line are not its own"),
    );
    let (nums, bad) = numbers(&steady.lock().unwrap(), "steady");
    p.result(contiguous("steady's lines on stdout", &nums, &bad, Some(1)));
    eprintln!(
        "200 MB line: {took:?}, tend's peak VmRSS {} KiB",
        peak >> 10
    );
    p.finish(&t);
}

/// 300 control connections at once that send garbage, half a request or nothing: tend says
/// so once, `tend status` answers at once afterwards, and tend's descriptors are back to
/// where they were.
#[test]
fn three_hundred_bad_control_connections() {
    let (mut t, _) = Tend::start(&counter("steady", "0.01", ""), Stdout::File, None);
    let mut p = Problems::default();
    t.wait_running("steady", LIMIT);
    wait_lines(&t, "steady", 20);
    let base = fds(t.pid);
    let mark = t.stderr_mark();

    let mut clients = Vec::new();
    for i in 0..300 {
        let mut c = match UnixStream::connect(&t.sock) {
            Ok(c) => c,
            Err(e) => {
                p.fail(format!("connection {i} failed: {e}"));
                break;
            }
        };
        let _ = match i % 3 {
            0 => c.write_all(b"\xff\xfegarbage, not json\n"),
            1 => c.write_all(b"{\"v\":1,\"cmd\":\"sta"),
            _ => Ok(()),
        };
        clients.push(c);
    }
    // Held open past tend's request deadline (5 s): tend closes its end of each by itself.
    std::thread::sleep(Duration::from_secs(6));
    let asked = Instant::now();
    let answer = t.status(Duration::from_secs(5));
    let took = asked.elapsed();
    p.check(
        answer.is_ok() && took < Duration::from_secs(1),
        format!("with the 300 clients still connected, `tend status` took {took:?}: {answer:?}"),
    );
    let settled = |t: &Tend, limit: Duration| -> Result<(), String> {
        let start = Instant::now();
        loop {
            let now = fds(t.pid);
            if now.len() <= base.len() {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!(
                    "tend holds {} descriptors, {} before the clients came",
                    now.len(),
                    base.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    p.result(
        settled(&t, Duration::from_secs(2)).map_err(|e| format!("clients still connected: {e}")),
    );
    drop(clients);
    p.result(settled(&t, Duration::from_secs(5)).map_err(|e| format!("clients gone: {e}")));
    let asked = Instant::now();
    let answer = t.status(Duration::from_secs(5));
    let took = asked.elapsed();
    p.check(
        answer.is_ok() && took < Duration::from_secs(1),
        format!("afterwards `tend status` took {took:?}: {answer:?}"),
    );
    p.check(t.alive(), "tend died of the clients");
    let err = t.stderr_since(mark);
    for (n, line) in messages(&err, "control socket") {
        p.check(n == 1, format!("tend said {n} times: {line}"));
    }
    t.shutdown(&mut p);
    let (nums, bad) = numbers(&t.stdout(), "steady");
    p.result(contiguous("steady's lines on stdout", &nums, &bad, Some(1)));
    p.finish(&t);
}

/// A service stopped with SIGSTOP when shutdown begins: it is killed at its stop-timeout
/// and tend exits within shutdown-timeout.
#[test]
fn a_frozen_service_at_shutdown() {
    // Keys before the first table join the [tend] table `Setup::with_socket` starts with.
    let services = format!(
        r#"shutdown-timeout = "5s"
{}
[services.frozen]
command = ["sleep", "1000"]
stop-timeout = "1s"
"#,
        counter("steady", "0.01", "stop-timeout = \"1s\"")
    );
    let (mut t, _) = Tend::start(&services, Stdout::File, None);
    let mut p = Problems::default();
    t.wait_running("steady", LIMIT);
    wait_lines(&t, "steady", 20);
    t.wait_running("frozen", LIMIT);
    let frozen = t.child_running("sleep 1000");
    send(frozen, "STOP");
    wait_for("the service to be stopped", LIMIT, || {
        let stat = std::fs::read_to_string(format!("/proc/{frozen}/stat")).ok()?;
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        (state == 'T').then_some(())
    });
    let mark = t.stderr_mark();
    let begun = Instant::now();
    send(t.pid, "TERM");
    match t.wait_exit(Duration::from_secs(15)) {
        Some((took, code)) => {
            p.check(code == Some(0), format!("tend ended with code {code:?}"));
            p.check(
                took < Duration::from_secs(5),
                format!("tend took {took:?} to exit, longer than shutdown-timeout (5s)"),
            );
            p.check(
                took < Duration::from_millis(2500),
                format!(
                    "the frozen service was not killed at its stop-timeout (1s): tend took {took:?}"
                ),
            );
        }
        None => p.fail(format!(
            "tend still runs {:?} after SIGTERM",
            begun.elapsed()
        )),
    }
    p.check(
        !Path::new(&format!("/proc/{frozen}")).exists(),
        "the frozen service outlived tend",
    );
    let err = t.stderr_since(mark);
    for (n, line) in messages(&err, "'frozen'") {
        p.check(n == 1, format!("tend said {n} times: {line}"));
    }
    let (nums, bad) = numbers(&t.stdout(), "steady");
    p.result(contiguous("steady's lines on stdout", &nums, &bad, Some(1)));
    p.finish(&t);
}

/// Regression: while tend's stdout is a pipe nobody reads, tend stops reading the services
/// (back-pressure); a line the service had only half written at that moment must not be
/// flushed as a line of its own when it sits waiting (it is not a writer that stopped
/// mid-line, it is tend that stopped reading).
#[test]
fn a_stalled_stdout_never_cuts_a_line() {
    const N: u64 = 200_000;
    let services = format!(
        r#"
[services.flood]
command = ["seq", "-f", "L%07.0f", "1", "{N}"]
restart = "never"

[services.idle]
command = ["sleep", "1000"]
"#
    );
    let (mut t, pipe) = Tend::start(&services, Stdout::Pipe, None);
    let reader = PipeReader::new(pipe.unwrap(), false);
    std::thread::sleep(Duration::from_millis(1500)); // the stall
    reader.set_reading(true);
    let last = format!("flood | L{N:07}\n");
    wait_for("the flood's last line", Duration::from_secs(30), || {
        reader.tail_contains(&last).then_some(())
    });
    send(t.pid, "TERM");
    let _ = t.wait_exit(LIMIT);
    let text = reader.finish(Duration::from_secs(5));
    let mut expected = 1;
    for line in text.lines().filter(|l| l.starts_with("flood ")) {
        let want = format!("flood | L{expected:07}");
        assert_eq!(
            line, want,
            "line {expected} of the flood did not arrive whole and in its place"
        );
        expected += 1;
    }
    assert_eq!(expected - 1, N, "lines of the flood that arrived");
}
