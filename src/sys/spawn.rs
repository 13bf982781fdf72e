//! Starting a child: std's `Command` for argv, environment, PATH lookup and exec-error
//! reporting, plus a `pre_exec` recipe for what std does not do or does in the wrong order
//! (working directory, process group or session, terminal, credentials, umask, limits, signal
//! state).
//!
//! std reports every failure the same way, whether tend's fork failed, a step of the recipe
//! did, or the program's exec. So the child also writes to a pipe of its own: one byte as
//! soon as it exists, and one more naming the step that failed. No byte: tend never got a
//! child (fork failed, for example at the process limit). The first byte only: the exec
//! failed, and the program is named.

use super::signals::Inherited;
use crate::core::{Credentials, Launch, Limit, Pid, Resource, SessionMode, SpawnErrorKind};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

pub struct SpawnError {
    pub kind: SpawnErrorKind,
    pub message: String,
    /// tend itself was short of processes or descriptors, and no child ever ran: a fault of
    /// tend's situation, not of what it was asked to run.
    pub out_of_resources: bool,
}

/// Errors that say tend (or the system) has no process, memory or descriptor to spare.
pub fn is_out_of_resources(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EAGAIN | libc::ENOMEM | libc::EMFILE | libc::ENFILE)
    )
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
            out_of_resources: false,
            kind: SpawnErrorKind::NotFound,
            message: "empty command".into(),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in launch.env.iter().chain(&extra.env) {
        cmd.env(k, v);
    }
    // Changed to by the recipe rather than by std, so a failure names the directory.
    let workdir = match launch.workdir.as_deref().map(path_cstring).transpose() {
        Ok(dir) => dir,
        Err(e) => {
            return Err(SpawnError {
                out_of_resources: false,
                kind: SpawnErrorKind::Other,
                message: e,
            });
        }
    };
    let (report_read, report_write) = match report_pipe(&extra.fds) {
        Ok(ends) => ends,
        Err(e) => {
            return Err(SpawnError {
                out_of_resources: is_out_of_resources(&e),
                kind: SpawnErrorKind::Other,
                message: format!("cannot create the process: {}", describe(&e)),
            });
        }
    };
    if let ChildStdio::Pipes { stdout, stderr } = stdio {
        let (out, err) = match (dup(stdout), dup(stderr)) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(e), _) | (_, Err(e)) => {
                return Err(SpawnError {
                    out_of_resources: is_out_of_resources(&e),
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
        report: report_write.as_raw_fd(),
        workdir,
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
    let spawned = cmd.spawn();
    // The child, if there was one, has exited by now (std reaped it on failure) or exec'd:
    // whatever it wrote is in the pipe.
    drop(cmd);
    drop(report_write);
    match spawned {
        // Dropping `Child` neither waits nor kills.
        Ok(child) => Ok(Pid(child.id() as i32)),
        Err(err) => {
            let mut report = [0u8; 2];
            let n = rustix::io::read(&report_read, &mut report).unwrap_or(0);
            let step = match report.get(..n) {
                Some(&[STARTED, step]) => Some(step),
                Some(&[STARTED]) => None,
                _ => return Err(not_created(&err)),
            };
            Err(failed_in_child(&err, step, program.as_ref(), launch))
        }
    }
}

/// The report pipe (see the module comment), its write end clear of the fd numbers the child
/// is to get `fds` as: they are set up before the last step that may report.
fn report_pipe(fds: &[(i32, i32)]) -> io::Result<(OwnedFd, OwnedFd)> {
    use rustix::pipe::PipeFlags;
    let (read, write) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let write = match fds.iter().map(|&(_, to)| to).max() {
        Some(highest) if highest >= write.as_raw_fd() => {
            rustix::io::fcntl_dupfd_cloexec(&write, highest.saturating_add(1))?
        }
        _ => write,
    };
    Ok((read, write))
}

/// The child never existed: tend's fork failed (or std failed before it).
fn not_created(err: &io::Error) -> SpawnError {
    let message = match err.raw_os_error() {
        Some(libc::EAGAIN) => format!("fork failed: {} (process limit reached?)", describe(err)),
        Some(libc::ENOMEM) => format!("fork failed: {}", describe(err)),
        _ => format!("cannot create the process: {}", describe(err)),
    };
    SpawnError {
        out_of_resources: is_out_of_resources(err),
        kind: SpawnErrorKind::Other,
        message,
    }
}

/// The child existed: a step of the recipe failed (`step`), or else the program's exec.
fn failed_in_child(
    err: &io::Error,
    step: Option<u8>,
    program: &Path,
    launch: &Launch,
) -> SpawnError {
    let what = match step {
        None => {
            let kind = match (err.kind(), err.raw_os_error()) {
                (io::ErrorKind::NotFound, _) => SpawnErrorKind::NotFound,
                (io::ErrorKind::PermissionDenied, _) | (_, Some(libc::ENOEXEC)) => {
                    SpawnErrorKind::NotExecutable
                }
                _ => SpawnErrorKind::Other,
            };
            return SpawnError {
                out_of_resources: false,
                kind,
                message: format!("{}: {}", program.display(), describe(err)),
            };
        }
        Some(WORKDIR) => match &launch.workdir {
            Some(dir) => format!("working directory {}", dir.display()),
            None => "working directory".to_string(),
        },
        Some(SESSION) => "its process group or session".to_string(),
        Some(LIMITS) => "its resource limits".to_string(),
        Some(CREDENTIALS) => match &launch.credentials {
            Some(c) => format!("switching to uid {} gid {}", c.uid, c.gid),
            None => "switching user".to_string(),
        },
        Some(FDS) => "passing its file descriptors".to_string(),
        Some(_) => "restoring its signal state".to_string(),
    };
    SpawnError {
        out_of_resources: false,
        kind: SpawnErrorKind::Other,
        message: format!("{what}: {}", describe(err)),
    }
}

fn path_cstring(path: &Path) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("working directory {:?} contains a NUL byte", path))
}

fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// What the child writes to its report pipe: `STARTED` first, then the step that failed.
const STARTED: u8 = b'+';
const WORKDIR: u8 = b'd';
const SESSION: u8 = b's';
const LIMITS: u8 = b'l';
const CREDENTIALS: u8 = b'c';
const FDS: u8 = b'f';
const SIGNALS: u8 = b'g';

/// Everything the child does to itself between fork and exec, prepared before the fork.
struct ChildSetup {
    /// The report pipe's write end (close-on-exec).
    report: i32,
    workdir: Option<CString>,
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
        self.tell(STARTED);
        self.steps().map_err(|(step, err)| {
            self.tell(step);
            err
        })
    }

    /// One byte to the parent (see the module comment). Nothing to do if it cannot be written.
    fn tell(&self, byte: u8) {
        // SAFETY: write(2) from a one-byte buffer on the stack; async-signal-safe.
        unsafe { libc::write(self.report, (&raw const byte).cast(), 1) };
    }

    fn steps(&self) -> Result<(), (u8, io::Error)> {
        let failed = |step: u8| (step, io::Error::last_os_error());
        // std has emptied the mask by now; nothing may interrupt the steps below.
        self.inherited.block_everything_in_child();
        if let Some(dir) = &self.workdir {
            // SAFETY: `dir` is a NUL-terminated string made before fork.
            if unsafe { libc::chdir(dir.as_ptr()) } != 0 {
                return Err(failed(WORKDIR));
            }
        }
        match self.session {
            SessionMode::ForegroundGroup => {
                // SAFETY: a plain system call on integers; no memory is shared with the parent.
                if unsafe { libc::setpgid(0, 0) } != 0 {
                    return Err(failed(SESSION));
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
                    return Err(failed(SESSION));
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
                return Err(failed(LIMITS));
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
                return Err(failed(CREDENTIALS));
            }
            // SAFETY: a plain system call on integers; no memory is shared with the parent.
            if unsafe { libc::setresgid(c.gid, c.gid, c.gid) } != 0 {
                return Err(failed(CREDENTIALS));
            }
            // SAFETY: a plain system call on integers; no memory is shared with the parent.
            if unsafe { libc::setresuid(c.uid, c.uid, c.uid) } != 0 {
                return Err(failed(CREDENTIALS));
            }
        }
        for &(from, to) in &self.fds {
            if from == to {
                // dup2 onto itself does nothing, close-on-exec included: clear it by hand.
                // SAFETY: plain fcntl on an integer fd.
                if unsafe { libc::fcntl(to, libc::F_SETFD, 0) } < 0 {
                    return Err(failed(FDS));
                }
                continue;
            }
            // SAFETY: plain system call on integers; dup2 clears close-on-exec on `to`.
            if unsafe { libc::dup2(from, to) } < 0 {
                return Err(failed(FDS));
            }
        }
        self.inherited.restore_in_child().map_err(|e| (SIGNALS, e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Limit, Resource};

    fn attempt(launch: &Launch) -> SpawnError {
        // Blocks signals in this test's thread only; the recorded state is what children get.
        let inherited = super::super::signals::block_all().unwrap();
        match spawn(launch, &inherited, ChildStdio::Inherit, &Extra::default()) {
            Ok(pid) => panic!("started as {pid:?}"),
            Err(e) => e,
        }
    }

    fn launch(argv: &[&str]) -> Launch {
        Launch::command(
            argv.iter().map(Into::into).collect(),
            SessionMode::NewSession,
        )
    }

    #[test]
    fn a_failed_exec_names_the_program() {
        let e = attempt(&launch(&["/no/such/program", "x"]));
        assert_eq!(e.message, "/no/such/program: No such file or directory");
        assert_eq!(e.kind, SpawnErrorKind::NotFound);
        let e = attempt(&launch(&["/"]));
        assert_eq!(e.message, "/: Permission denied");
        assert_eq!(e.kind, SpawnErrorKind::NotExecutable);
    }

    #[test]
    fn a_failed_step_before_exec_names_the_step_not_the_program() {
        let mut l = launch(&["true"]);
        l.workdir = Some("/no/such/dir".into());
        let e = attempt(&l);
        assert_eq!(
            e.message,
            "working directory /no/such/dir: No such file or directory"
        );
        assert_eq!(e.kind, SpawnErrorKind::Other);
        let mut l = launch(&["true"]);
        l.limits = vec![Limit {
            resource: Resource::Nofile,
            soft: 10,
            hard: 5,
        }];
        let e = attempt(&l);
        assert_eq!(e.message, "its resource limits: Invalid argument");
    }

    /// tend's own fork failing (EAGAIN at the process or pids-cgroup limit) is tend's
    /// failure, not the program's.
    #[test]
    fn a_failed_fork_says_so() {
        let e = not_created(&io::Error::from_raw_os_error(libc::EAGAIN));
        assert_eq!(
            e.message,
            "fork failed: Resource temporarily unavailable (process limit reached?)"
        );
        assert_eq!(e.kind, SpawnErrorKind::Other);
        let e = not_created(&io::Error::from_raw_os_error(libc::ENOMEM));
        assert_eq!(e.message, "fork failed: Cannot allocate memory");
        let e = not_created(&io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(e.message, "cannot create the process: Too many open files");
    }

    #[test]
    fn the_report_pipe_keeps_clear_of_the_childs_fds() {
        let (_, write) = report_pipe(&[]).unwrap();
        let low = write.as_raw_fd();
        drop(write);
        let (_, write) = report_pipe(&[(0, low), (0, low + 7)]).unwrap();
        assert!(write.as_raw_fd() > low + 7, "{}", write.as_raw_fd());
    }
}
