//! The supervisor's logic, pure and deterministic: no I/O, no clock, no pids of its own, no
//! unsafe. The shell feeds it inputs with the current time and carries out its actions.
#![warn(clippy::indexing_slicing)]

pub mod exit;
pub mod io;
pub mod pid_map;
pub mod schedule;
pub mod service;
pub mod signal;
pub mod spec;
pub mod supervisor;
pub mod time;

pub use exit::{ExitStatus, Pid};
pub use io::{
    Action, ControlOp, ControlResult, Generation, Input, KillTarget, Level, Note, RequestId,
    ShutdownReason, SpawnErrorKind,
};
pub use pid_map::PidMap;
pub use service::{Outcome, ServiceState};
pub use signal::Signal;
pub use spec::{
    Backoff, Condition, Credentials, Dependency, ExitCodeSet, ExitSignals, Finish, HealthRule,
    HostPort, HttpTarget, Launch, Limit, MainExit, Output, Probe, ReadyRule, Resource,
    RestartPolicy, RunOn, ServiceId, ServiceSpec, SessionMode, SignalRouting, Spec,
};
pub use supervisor::{Phase, Supervisor};
pub use time::Instant;

#[cfg(test)]
pub(crate) mod tests;
