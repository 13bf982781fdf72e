//! Starting a child: std's `Command` for argv, environment, working directory, PATH lookup and
//! exec-error reporting, plus a `pre_exec` recipe for what std does not do or does in the
//! wrong order (process group or session, terminal, credentials, umask, limits, signal state).

use super::signals::Inherited;
use crate::core::{Credentials, Launch, Limit, Pid, Resource, SessionMode, SpawnErrorKind};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

pub struct SpawnError {
    pub kind: SpawnErrorKind,
    pub message: String,
}

/// What a service's instance gets besides its `Launch`: readiness plumbing.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// (open fd in tend, number the child gets it as), e.g. a notification pipe's write end.
    pub fds: Vec<(i32, i32)>,
    /// Variables set after the launch's own, e.g. NOTIFY_SOCKET.
    pub env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
}

/// Where the child's standard streams go.
pub enum ChildStdio<'a> {
    /// tend's own stdin, stdout and stderr (single-child mode).
    Inherit,
    /// stdin from /dev/null, stdout and stderr into these pipes (supervisor mode).
    Pipes {
        stdout: BorrowedFd<'a>,
        stderr: BorrowedFd<'a>,
    },
}

/// Starts `launch` and returns its pid. The child is never waited for here: `sys::reap` will
/// collect it (invariant 1). On exec failure std reaps the failed child itself, before this
/// returns, which is safe: that pid was never visible to anyone else.
pub fn spawn(
    launch: &Launch,
    inherited: &Inherited,
    stdio: ChildStdio<'_>,
    extra: &Extra,
) -> Result<Pid, SpawnError> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(SpawnError {
            kind: SpawnErrorKind::NotFound,
            message: "empty command".into(),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in launch.env.iter().chain(&extra.env) {
        cmd.env(k, v);
    }
    if let Some(dir) = &launch.workdir {
        cmd.current_dir(dir);
    }
    if let ChildStdio::Pipes { stdout, stderr } = stdio {
        let (out, err) = match (dup(stdout), dup(stderr)) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                return Err(SpawnError {
                    kind: SpawnErrorKind::Other,
                    message: format!("cannot set up output: {e}"),
                });
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
    }
    let recipe = ChildSetup {
        inherited: *inherited,
        session: launch.session,
        credentials: launch.credentials.clone(),
        umask: launch.umask,
        limits: launch.limits.clone(),
        fds: extra.fds.clone(),
    };
    // SAFETY: the closure runs in the forked child before exec. `ChildSetup::apply` only makes
    // async-signal-safe system calls on data prepared before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || recipe.apply());
    }
    match cmd.spawn() {
        // Dropping `Child` neither waits nor kills.
        Ok(child) => Ok(Pid(child.id() as i32)),
        Err(err) => {
            let kind = match (err.kind(), err.raw_os_error()) {
                (io::ErrorKind::NotFound, _) => SpawnErrorKind::NotFound,
                (io::ErrorKind::PermissionDenied, _) | (_, Some(libc::ENOEXEC)) => {
                    SpawnErrorKind::NotExecutable
                }
                _ => SpawnErrorKind::Other,
            };
            let context = match (&launch.workdir, kind) {
                (Some(dir), SpawnErrorKind::NotFound) if !dir.is_dir() => {
                    format!(" (working directory {})", dir.display())
                }
                _ => String::new(),
            };
            Err(SpawnError {
                kind,
                message: format!("{}: {}{context}", program.to_string_lossy(), describe(&err)),
            })
        }
    }
}

fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// Everything the child does to itself between fork and exec, prepared before the fork.
struct ChildSetup {
    inherited: Inherited,
    session: SessionMode,
    credentials: Option<Credentials>,
    umask: Option<u32>,
    limits: Vec<Limit>,
    /// (open fd in tend, fd number the child gets it as)
    fds: Vec<(i32, i32)>,
}

impl ChildSetup {
    /// Runs in the forked child. Async-signal-safe system calls only; no allocation.
    fn apply(&self) -> io::Result<()> {
        // std has emptied the mask by now; nothing may interrupt the steps below.
        self.inherited.block_everything_in_child();
        match self.session {
            SessionMode::ForegroundGroup => {
                // SAFETY: a plain system call on integers; no memory is shared with the parent.
                if unsafe { libc::setpgid(0, 0) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                // Take the terminal's foreground so job control works. Not having a terminal
                // (ENOTTY) or not being in its session (ENXIO/EPERM) is fine. SIGTTOU is
                // blocked here, so a background group may do this.
                // SAFETY: a plain system call on integers; no memory is shared with the parent.
                unsafe { libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid()) };
            }
            SessionMode::NewSession => {
                // SAFETY: a plain system call on integers; no memory is shared with the parent.
                if unsafe { libc::setsid() } < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        for limit in &self.limits {
            let rl = libc::rlimit {
                rlim_cur: limit.soft,
                rlim_max: limit.hard,
            };
            // SAFETY: `rl` is a valid rlimit on the stack.
            if unsafe { libc::setrlimit(resource(limit.resource), &rl) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(mask) = self.umask {
            // SAFETY: a plain system call on integers; no memory is shared with the parent.
            unsafe { libc::umask(mask as libc::mode_t) };
        }
        // Invariant 3: groups, then gid, then uid (after which nothing else is allowed).
        if let Some(c) = &self.credentials {
            // SAFETY: `groups` is a live Vec built before fork; its length matches.
            if unsafe { libc::setgroups(c.groups.len(), c.groups.as_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a plain system call on integers; no memory is shared with the parent.
            if unsafe { libc::setresgid(c.gid, c.gid, c.gid) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a plain system call on integers; no memory is shared with the parent.
            if unsafe { libc::setresuid(c.uid, c.uid, c.uid) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        for &(from, to) in &self.fds {
            if from == to {
                // dup2 onto itself does nothing, close-on-exec included: clear it by hand.
                // SAFETY: plain fcntl on an integer fd.
                if unsafe { libc::fcntl(to, libc::F_SETFD, 0) } < 0 {
                    return Err(io::Error::last_os_error());
                }
                continue;
            }
            // SAFETY: plain system call on integers; dup2 clears close-on-exec on `to`.
            if unsafe { libc::dup2(from, to) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        self.inherited.restore_in_child()
    }
}

fn resource(r: Resource) -> libc::__rlimit_resource_t {
    match r {
        Resource::Nofile => libc::RLIMIT_NOFILE,
        Resource::Nproc => libc::RLIMIT_NPROC,
        Resource::Core => libc::RLIMIT_CORE,
        Resource::Memlock => libc::RLIMIT_MEMLOCK,
        Resource::Stack => libc::RLIMIT_STACK,
    }
}

/// The OS error text without Rust's " (os error N)" suffix, as a shell would print it.
fn describe(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
