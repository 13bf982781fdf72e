//! Shared helpers for the end-to-end tests that run tend inside real containers (`e2e_runc`,
//! `e2e_docker`). They need root, a static busybox (Debian: busybox-static) and, per test file,
//! runc or docker.io. Nothing here is skipped silently: a missing tool is a test failure that
//! names the package to install.
//!
//! `TEND_E2E_BIN` replaces the binary under test (default: the `tend` that cargo built), e.g.
//! with `/usr/bin/tini-static`, which has the same command line.
#![allow(dead_code)] // each test file uses its own subset

use std::env;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The init under test.
pub fn tend_bin() -> PathBuf {
    match env::var_os("TEND_E2E_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_tend")),
    }
}

/// True when `TEND_E2E_BIN` points somewhere else than the freshly built tend.
pub fn tend_overridden() -> bool {
    env::var_os("TEND_E2E_BIN").is_some_and(|p| !p.is_empty())
}

/// Fails the test unless it runs as root (runc and dockerd need it).
pub fn require_root() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1).map(str::to_owned));
    assert_eq!(
        euid.as_deref(),
        Some("0"),
        "the end-to-end container tests must run as root (they start runc / dockerd)"
    );
}

/// Locates an executable on PATH or in the usual system directories (sbin is often not on a
/// non-login PATH).
pub fn find_tool_opt(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        dirs.push(PathBuf::from(d));
    }
    dirs.iter().map(|d| d.join(name)).find(|p| is_executable(p))
}

/// [`find_tool_opt`], failing the test with the Debian package that provides the tool.
pub fn find_tool(name: &str, package: &str) -> PathBuf {
    find_tool_opt(name).unwrap_or_else(|| {
        panic!("`{name}` not found on PATH or in /usr/sbin etc.: install the Debian package `{package}`")
    })
}

pub fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A name no other test (thread or process) uses at the same time.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Calls `probe` every 20 ms until it returns `Some`, or gives up after `timeout`.
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn read_all(mut f: File) -> String {
    let mut s = String::new();
    let _ = f.seek(SeekFrom::Start(0));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    s.push_str(&String::from_utf8_lossy(&bytes));
    s
}

/// Runs a command to completion with stdin from /dev/null, killing it if it is still running
/// after `timeout`. Output goes to anonymous files, so a command that leaves daemons behind
/// holding its stdout cannot hang us. Never panics (usable from `Drop`).
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let desc = format!("{cmd:?}");
    let files = (tempfile::tempfile(), tempfile::tempfile());
    let (Ok(out), Ok(err)) = files else {
        return Err(format!("{desc}: cannot create temporary files"));
    };
    let (Ok(out2), Ok(err2)) = (out.try_clone(), err.try_clone()) else {
        return Err(format!("{desc}: cannot duplicate file descriptors"));
    };
    cmd.stdin(Stdio::null()).stdout(out2).stderr(err2);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {desc}: {e}"))?;
    let status = poll_until(timeout, || child.try_wait().ok().flatten());
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "{desc} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            read_all(out),
            read_all(err)
        ));
    };
    Ok(Output {
        status,
        stdout: read_all(out),
        stderr: read_all(err),
    })
}

/// [`try_run`], failing the test if the command cannot be run or times out.
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run`], failing the test unless the command exits 0; returns its stdout.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> String {
    let desc = format!("{cmd:?}");
    let out = run(cmd, timeout);
    assert!(out.status.success(), "{desc} failed: {}", out.describe());
    out.stdout
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `path` is an ELF file with a program interpreter (i.e. dynamically linked). `None`
/// when it is not an ELF file at all (a script substituted through `TEND_E2E_BIN`).
pub fn elf_is_dynamic(path: &Path) -> Option<bool> {
    let data = fs::read(path).ok()?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return None; // not a little-endian 64-bit ELF
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().ok()?) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    Some((0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        data.get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) == PT_INTERP)
    }))
}

/// Host path of a static busybox.
pub fn busybox() -> PathBuf {
    let bb = find_tool("busybox", "busybox-static");
    assert_eq!(
        elf_is_dynamic(&bb),
        Some(false),
        "{} is not a static binary: install the Debian package `busybox-static` (not `busybox`)",
        bb.display()
    );
    bb
}

/// Fills `root` with a minimal busybox userland and the init under test at /sbin/tend.
pub fn build_rootfs(root: &Path) {
    for d in ["bin", "sbin", "etc", "tmp", "proc", "sys", "dev", "out"] {
        fs::create_dir_all(root.join(d)).unwrap_or_else(|e| panic!("mkdir {d}: {e}"));
    }
    // As in any image: open to every user, sticky (a tmpfs mounted there takes this mode).
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .unwrap_or_else(|e| panic!("chmod tmp: {e}"));
    let bb = busybox();
    fs::copy(&bb, root.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copy {}: {e}", bb.display()));
    let applets = run_ok(Command::new(&bb).arg("--list"), Duration::from_secs(30));
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = root.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", &link).unwrap_or_else(|e| panic!("symlink {applet}: {e}"));
        }
    }
    let tend = tend_bin();
    assert_ne!(
        elf_is_dynamic(&tend),
        Some(true),
        "{} is dynamically linked; the containers have no libc (build it static, see .cargo/config.toml)",
        tend.display()
    );
    let dest = root.join("sbin/tend");
    fs::copy(&tend, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", tend.display()));
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", dest.display()));
}

/// The shell script for the stop tests: it traps TERM, records it in `<out>/marker` and exits
/// with `code`; `<out>/ready` appears once the trap is in place.
pub fn trap_script(out: &str, code: u8) -> String {
    format!(
        "trap 'echo got-TERM > {out}/marker; exit {code}' TERM\n\
         sleep 1000 &\n\
         : > {out}/ready\n\
         wait\n\
         echo wait-returned-without-trap > {out}/marker\n"
    )
}

/// `tend --version` (or the substitute's), trimmed.
pub fn version_line(bin: &Path) -> String {
    run_ok(Command::new(bin).arg("--version"), Duration::from_secs(10))
        .trim()
        .to_owned()
}

/// The `HASH` of a `NAME version X.Y.Z - git.HASH` line, the part Docker reports as InitCommit.
pub fn git_hash_of(version_line: &str) -> Option<&str> {
    let (_, tail) = version_line.split_once(" - ")?;
    let hash = tail.trim().strip_prefix("git.")?;
    (!hash.is_empty() && !hash.contains('.')).then_some(hash)
}

#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
    pub cmdline: String,
}

pub fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may contain anything, so parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    Some(ProcInfo {
        pid,
        ppid,
        state,
        cmdline,
    })
}

pub fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The host's view of `pid`'s children (zombies included).
pub fn children_of(pid: u32) -> Vec<ProcInfo> {
    all_pids()
        .into_iter()
        .filter_map(proc_info)
        .filter(|p| p.ppid == pid)
        .collect()
}

/// Sends `sig` (a name like "TERM") to `pid` with busybox's kill. Never panics.
pub fn send_signal(pid: u32, sig: &str) -> bool {
    let Some(bb) = find_tool_opt("busybox") else {
        return false;
    };
    try_run(
        Command::new(bb).args(["kill", &format!("-{sig}"), &pid.to_string()]),
        Duration::from_secs(10),
    )
    .is_ok_and(|o| o.status.success())
}

/// Cleanup fallback: SIGKILLs every process whose command line mentions `needle` (e.g. a
/// containerd or shim started for a private daemon directory).
pub fn kill_processes_mentioning(needle: &str) {
    let me = std::process::id();
    for p in all_pids().into_iter().filter_map(proc_info) {
        if p.pid != me && p.state != 'Z' && p.cmdline.contains(needle) {
            send_signal(p.pid, "KILL");
        }
    }
}

fn unescape_mountinfo(s: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// Cleanup fallback: lazily unmounts everything mounted below `dir`, deepest first, so the
/// directory can be deleted.
pub fn unmount_all_under(dir: &Path) {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    let Some(bb) = find_tool_opt("busybox") else {
        return;
    };
    for p in points {
        let _ = try_run(
            Command::new(&bb).args(["umount", "-l"]).arg(&p),
            Duration::from_secs(30),
        );
    }
}
