//! The one waiter (invariant 1): nothing else in tend calls wait.

use crate::core::{ExitStatus, Pid, Signal};
use std::io;

pub enum Reaped {
    /// A child (service or adopted orphan) is gone.
    Child(Pid, ExitStatus),
    /// Children exist but none has exited.
    NoneReady,
    /// tend has no children at all.
    NoChildren,
}

/// Collects at most one exited child without blocking. Call until it stops returning `Child`.
pub fn reap_one() -> io::Result<Reaped> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer; WNOHANG never blocks.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid == 0 {
        return Ok(Reaped::NoneReady);
    }
    if pid < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ECHILD) => Ok(Reaped::NoChildren),
            _ => Err(err),
        };
    }
    let exit = if libc::WIFSIGNALED(status) {
        match Signal::from_number(libc::WTERMSIG(status)) {
            Some(sig) => ExitStatus::Signaled(sig),
            None => ExitStatus::Exited(255),
        }
    } else {
        // Without WUNTRACED/WCONTINUED, anything not signalled exited.
        ExitStatus::Exited(libc::WEXITSTATUS(status) as u8)
    };
    Ok(Reaped::Child(Pid(pid), exit))
}
