//! The core's vocabulary: what the shell tells it, and what it asks the shell to do.

use super::exit::{ExitStatus, Pid};
use super::signal::Signal;
use super::spec::ServiceId;
use std::fmt;
use std::time::Duration;

/// Instance counter of a service: late events about an older instance are recognised and
/// dropped instead of being applied to the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gen(pub u64);

/// Why a spawn failed, in the terms a shell uses for its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnErrorKind {
    /// The program does not exist (exit 127).
    NotFound,
    /// It exists but cannot be executed (exit 126).
    NotExecutable,
    /// Anything else: fork failed, bad working directory... (exit 126, as shells do).
    Other,
}

impl SpawnErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            SpawnErrorKind::NotFound => 127,
            SpawnErrorKind::NotExecutable | SpawnErrorKind::Other => 126,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The shell started the process asked for by `Action::Spawn`.
    Spawned {
        svc: ServiceId,
        generation: Gen,
        pid: Pid,
    },
    /// The shell could not start it; `message` is for people.
    SpawnFailed {
        svc: ServiceId,
        generation: Gen,
        kind: SpawnErrorKind,
        message: String,
    },
    /// The reaper collected a child (a service, or an orphan tend adopted).
    ChildExited { pid: Pid, status: ExitStatus },
    /// The reaper found that tend has no child left at all.
    NoChildren,
    /// tend received this signal.
    Signal(Signal),
}

/// Who a `Kill` is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillTarget {
    Process(Pid),
    /// The process group led by this pid.
    Group(Pid),
    /// Every process tend is responsible for except itself: as PID 1, everything in the pid
    /// namespace; as a subreaper, its descendants.
    Everyone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Spawn {
        svc: ServiceId,
        generation: Gen,
    },
    Kill {
        target: KillTarget,
        signal: Signal,
    },
    Log(Note),
    /// Flush and exit the process with this code. Always the last action.
    Exit(u8),
}

/// Something worth telling the operator. The shell picks the level and the wording's frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    Spawned {
        name: String,
        pid: Pid,
    },
    SpawnFailed {
        name: String,
        message: String,
    },
    ServiceExited {
        name: String,
        pid: Pid,
        status: ExitStatus,
    },
    OrphanReaped {
        pid: Pid,
        status: ExitStatus,
    },
    Forwarded {
        signal: Signal,
        target: KillTarget,
    },
    /// A signal arrived while there was nobody to forward it to.
    SignalDropped {
        signal: Signal,
    },
    StoppingDescendants {
        grace: Duration,
    },
    KillingDescendants,
    /// Leftovers were SIGKILLed but not all were reaped in time; tend exits anyway.
    ExitingWithUnreaped,
    Exiting {
        code: u8,
    },
}

impl Note {
    pub fn level(&self) -> Level {
        match self {
            Note::SpawnFailed { .. } | Note::ExitingWithUnreaped => Level::Error,
            Note::KillingDescendants | Note::SignalDropped { .. } => Level::Warn,
            Note::Spawned { .. }
            | Note::ServiceExited { .. }
            | Note::StoppingDescendants { .. }
            | Note::Exiting { .. } => Level::Info,
            Note::Forwarded { .. } | Note::OrphanReaped { .. } => Level::Debug,
        }
    }
}

/// Importance of a note, ordered from most to least important.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Spawned { name, pid } => write!(f, "spawned '{name}' with pid {pid}"),
            Note::SpawnFailed { name, message } => write!(f, "cannot run '{name}': {message}"),
            Note::ServiceExited { name, pid, status } => {
                write!(f, "'{name}' (pid {pid}) ended: {status}")
            }
            Note::OrphanReaped { pid, status } => write!(f, "reaped zombie pid {pid} ({status})"),
            Note::Forwarded { signal, target } => match target {
                KillTarget::Process(p) => write!(f, "forwarded {signal} to pid {p}"),
                KillTarget::Group(p) => write!(f, "forwarded {signal} to process group {p}"),
                KillTarget::Everyone => write!(f, "sent {signal} to every process"),
            },
            Note::SignalDropped { signal } => {
                write!(f, "received {signal} with no child to forward it to")
            }
            Note::StoppingDescendants { grace } => write!(
                f,
                "main child is gone: sending SIGTERM to the processes it left, {} to exit",
                humantime_like(*grace)
            ),
            Note::KillingDescendants => {
                write!(f, "processes left after the grace period: sending SIGKILL")
            }
            Note::ExitingWithUnreaped => {
                write!(
                    f,
                    "some processes did not die after SIGKILL; exiting anyway"
                )
            }
            Note::Exiting { code } => write!(f, "exiting with code {code}"),
        }
    }
}

/// `1.5s`, `250ms`: short and exact enough for log lines.
fn humantime_like(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
