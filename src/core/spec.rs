//! What the core is asked to supervise: validated, plain data.
//!
//! Anything the core has no opinion on (argv, environment, credentials) lives in `Launch`,
//! carried through untouched so the shell can act on `Action::Spawn`.

use std::ffi::OsString;
use std::time::Duration;

/// Index of a service in `Spec::services`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub usize);

/// How to start a service's process. Opaque to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Program and arguments; `argv[0]` is looked up in `PATH` when it has no slash.
    pub argv: Vec<OsString>,
    /// Put the process in its own process group and give it the terminal's foreground
    /// (single-child mode), instead of a session of its own (supervisor mode).
    pub session: SessionMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionMode {
    /// `setpgid(0, 0)` and, when stdin is a terminal, `tcsetpgrp`: what tini does, so job
    /// control works in `docker run -it`.
    ForegroundGroup,
    /// `setsid()`: the service is detached from tend's terminal and owns its group.
    NewSession,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    pub launch: Launch,
    /// The service's end ends tend, with the service's exit code.
    pub critical: bool,
}

/// A set of exit codes (0..=255).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCodeSet([u64; 4]);

impl ExitCodeSet {
    pub fn insert(&mut self, code: u8) {
        self.0[usize::from(code / 64)] |= 1 << (code % 64);
    }

    pub fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }
}

/// Where signals that tend receives go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalRouting {
    /// Single-child mode: every catchable asynchronous signal goes to the main service, to
    /// its process or (tini's `-g`) to its whole process group.
    ForwardToMain { to_group: bool },
}

/// What happens once the main service has exited (single-child mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MainExit {
    /// Exit codes reported as 0 (tini's `-e`).
    pub remap_to_zero: ExitCodeSet,
    /// When set, the processes the main child left behind get SIGTERM, this long to exit,
    /// then SIGKILL, and tend exits only when all are reaped. When unset (tini's behaviour),
    /// tend exits at once and the kernel SIGKILLs whatever is left in the namespace.
    pub stop_descendants: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub services: Vec<ServiceSpec>,
    pub signals: SignalRouting,
    pub main_exit: MainExit,
}

/// After SIGKILL to the leftovers, how long tend waits to see them reaped before exiting
/// anyway (a process stuck in uninterruptible sleep must not keep the container up forever).
pub const KILL_REAP_GRACE: Duration = Duration::from_secs(2);

impl Spec {
    /// Single-child mode: one critical service, never restarted, signals forwarded to it.
    pub fn single(argv: Vec<OsString>, to_group: bool, main_exit: MainExit) -> Spec {
        Spec {
            services: vec![ServiceSpec {
                name: argv
                    .first()
                    .map(|a| a.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                launch: Launch {
                    argv,
                    session: SessionMode::ForegroundGroup,
                },
                critical: true,
            }],
            signals: SignalRouting::ForwardToMain { to_group },
            main_exit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_set() {
        let mut s = ExitCodeSet::default();
        for c in [0u8, 63, 64, 143, 255] {
            assert!(!s.contains(c));
            s.insert(c);
            assert!(s.contains(c));
        }
        assert!(!s.contains(1));
        assert!(!s.contains(254));
    }
}
