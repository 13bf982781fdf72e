//! How a process ended, and the exit code that reports it.

use super::signal::Signal;
use std::fmt;

/// A process id as the kernel gave it (always positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub i32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What `waitpid` reported for a process that is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Exited(u8),
    /// A signal killed it.
    Signaled(Signal),
}

impl ExitStatus {
    /// The code a shell would report: the exit code, or 128+N for death by signal N.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Exited(c) => c,
            // Signal numbers are at most 64, so this never wraps.
            ExitStatus::Signaled(s) => (128 + s.number()) as u8,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_style_codes() {
        assert_eq!(ExitStatus::Exited(0).code(), 0);
        assert_eq!(ExitStatus::Exited(255).code(), 255);
        assert_eq!(ExitStatus::Signaled(Signal::TERM).code(), 143);
        assert_eq!(ExitStatus::Signaled(Signal::KILL).code(), 137);
        assert_eq!(
            ExitStatus::Signaled(Signal::from_number(64).unwrap()).code(),
            192
        );
    }
}
