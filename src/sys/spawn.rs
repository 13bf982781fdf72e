//! Starting a child: std's `Command` for argv, PATH lookup and exec-error reporting, plus a
//! `pre_exec` recipe for what std does not do (process group, terminal, signal state).

use super::signals::Inherited;
use crate::core::{Launch, Pid, SessionMode, SpawnErrorKind};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

pub struct SpawnError {
    pub kind: SpawnErrorKind,
    pub message: String,
}

/// Starts `launch` and returns its pid. The child is never waited for here: `sys::reap` will
/// collect it (invariant 1). On exec failure std reaps the failed child itself, before this
/// returns, which is safe: that pid was never visible to anyone else.
pub fn spawn(launch: &Launch, inherited: &Inherited) -> Result<Pid, SpawnError> {
    let Some((program, args)) = launch.argv.split_first() else {
        return Err(SpawnError {
            kind: SpawnErrorKind::NotFound,
            message: "empty command".into(),
        });
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    let inherited = *inherited;
    let session = launch.session;
    // SAFETY: the closure runs in the forked child before exec. It only makes
    // async-signal-safe system calls (sigprocmask, setpgid, tcsetpgrp, setsid, sigaction) on
    // data copied before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            inherited.block_everything_in_child();
            match session {
                SessionMode::ForegroundGroup => {
                    if libc::setpgid(0, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    // Take the terminal's foreground so job control works. Not having a
                    // terminal (ENOTTY) or not being in its session (ENXIO/EPERM) is fine.
                    // SIGTTOU is blocked here, so a background group may do this.
                    libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
                }
                SessionMode::NewSession => {
                    if libc::setsid() < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            inherited.restore_in_child()
        });
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
            Err(SpawnError {
                kind,
                message: format!("{}: {}", program.to_string_lossy(), describe(&err)),
            })
        }
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
