//! The core's vocabulary: what the shell tells it, and what it asks the shell to do.

use super::exit::{ExitStatus, Pid};
use super::signal::Signal;
use super::spec::ServiceId;
use jiff::Timestamp;
use std::fmt;
use std::time::Duration;

/// Instance counter of a service: late events about an older instance are recognised and
/// dropped instead of being applied to the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Generation(pub u64);

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
        generation: Generation,
        pid: Pid,
    },
    /// The shell could not start it; `message` is for people.
    SpawnFailed {
        svc: ServiceId,
        generation: Generation,
        kind: SpawnErrorKind,
        message: String,
    },
    /// The daemon named by the service's `pid-file` (answer to `Action::ReadPidFile`): it is
    /// the instance's main process from now on; `pgid` is its process group, which it may
    /// not lead.
    Adopted {
        svc: ServiceId,
        generation: Generation,
        pid: Pid,
        pgid: Pid,
    },
    /// The shell started the `finish` command asked for by `Action::SpawnFinish`.
    FinishSpawned {
        svc: ServiceId,
        generation: Generation,
        pid: Pid,
    },
    /// The shell could not start it; `message` is for people.
    FinishSpawnFailed {
        svc: ServiceId,
        generation: Generation,
        message: String,
    },
    /// The reaper collected a child (a service, or an orphan tend adopted).
    ChildExited { pid: Pid, status: ExitStatus },
    /// The reaper found that tend has no child left at all.
    NoChildren,
    /// No process is left in this process group (answer to `Supervisor::awaited_groups`).
    GroupEmpty { pgid: Pid },
    /// The attempt asked for by `Action::Probe` could not be made for a reason of tend's own
    /// (no descriptor or process left): no verdict on the service, so nothing is counted,
    /// and the next attempt comes one interval later.
    ProbeNotRun {
        svc: ServiceId,
        generation: Generation,
        health: bool,
    },
    /// A readiness (`health: false`) or health probe asked for by `Action::Probe` finished.
    ProbeResult {
        svc: ServiceId,
        generation: Generation,
        health: bool,
        ok: bool,
    },
    /// The service said it is ready (notification fd or sd_notify).
    ReadyNotify {
        svc: ServiceId,
        generation: Generation,
    },
    /// The resident memory of the instance's process group, in bytes, as measured for
    /// `Action::MeasureMemory`.
    MemoryUsage {
        svc: ServiceId,
        generation: Generation,
        bytes: u64,
    },
    /// The kernel's count of OOM kills (tend's cgroup's, or the machine's), as the shell
    /// read it when tend started and, once per batch of reaped children, before the first
    /// service process of the batch that died of SIGKILL. A rise since the last count
    /// explains that many SIGKILLs tend did not send, in the same batch (same `now`).
    OomKills { count: u64 },
    /// tend received this signal.
    Signal(Signal),
    /// The wall clock reads `wall` (at the `now` this is handed in with): when tend starts,
    /// after a reload, when the time `Supervisor::poll_wall_timeout` named has come, and with
    /// `set` when the clock was set (a jump, rather than its own course).
    WallClock { wall: Timestamp, set: bool },
}

/// Names a control request whose answer the shell is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// What a control request asks of services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlOp {
    Start,
    Stop,
    Restart,
}

/// The outcome of a control request for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlResult {
    pub svc: ServiceId,
    pub ok: bool,
    pub message: String,
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
        generation: Generation,
    },
    Kill {
        target: KillTarget,
        signal: Signal,
    },
    Log(Note),
    /// The service's started process exited successfully and left a daemon: read its
    /// `pid-file` until it names a live child of tend, then answer `Input::Adopted` with
    /// that pid and its group, or `Input::SpawnFailed` once `PID_FILE_WAIT` has passed.
    ReadPidFile {
        svc: ServiceId,
        generation: Generation,
    },
    /// Run one attempt of the service's readiness (`health: false`) or health probe and
    /// answer with `Input::ProbeResult`.
    Probe {
        svc: ServiceId,
        generation: Generation,
        health: bool,
    },
    /// Run the service's `finish` command for the instance that ended with `status` and
    /// answer with `Input::FinishSpawned` or `Input::FinishSpawnFailed`.
    SpawnFinish {
        svc: ServiceId,
        generation: Generation,
        status: ExitStatus,
    },
    /// Measure the resident memory of these running instances' process groups (services
    /// with a `memory_limit`) and answer `Input::MemoryUsage` for each one found.
    MeasureMemory {
        services: Vec<(ServiceId, Generation)>,
    },
    /// The answer to a control request that waited for its outcome.
    Reply {
        id: RequestId,
        results: Vec<ControlResult>,
    },
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
    /// The daemon a `pid-file` service's started process left is followed as its main
    /// process (it was not spawned by tend).
    Adopted {
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
    /// A service's main process died of a SIGKILL tend did not send while the kernel's
    /// count of OOM kills rose: the OOM killer ended it.
    OomKilled {
        name: String,
        pid: Pid,
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
    /// Supervisor mode: a signal that means nothing to tend.
    SignalIgnored {
        signal: Signal,
    },
    /// The service failed and will be started again after `delay`.
    Restarting {
        name: String,
        delay: Duration,
        failures: u32,
    },
    /// Too many failed starts in a row: the service is failed.
    GaveUp {
        name: String,
        failures: u32,
    },
    /// A service's group outlived its stop timeout and was sent SIGKILL.
    StopTimedOut {
        name: String,
    },
    /// A service's `finish` command runs.
    FinishStarted {
        name: String,
        pid: Pid,
    },
    FinishExited {
        name: String,
        pid: Pid,
        status: ExitStatus,
    },
    FinishFailed {
        name: String,
        message: String,
    },
    /// A `finish` command outlived its finish-timeout: SIGKILL to its group.
    FinishTimedOut {
        name: String,
    },
    /// A shutdown task had not ended within its stop-timeout: SIGKILL to its group.
    TaskTimedOut {
        name: String,
    },
    /// Processes of a service's group were not seen gone after SIGKILL.
    GaveUpWaiting {
        name: String,
    },
    /// A service ended for good.
    Ended {
        name: String,
        success: bool,
        code: u8,
    },
    ShutdownStarted {
        reason: ShutdownReason,
    },
    /// A second stop signal, or the shutdown timeout: SIGKILL to everything now.
    ShutdownEscalated,
    /// A service has stayed up `start-secs`.
    Ready {
        name: String,
    },
    /// A service will not start: a dependency failed for good.
    Blocked {
        name: String,
        dependency: String,
    },
    /// A service was not ready within its readiness timeout.
    NotReadyInTime {
        name: String,
    },
    /// A health check failed (`failures` in a row of `threshold`).
    HealthCheckFailed {
        name: String,
        failures: u32,
        threshold: u32,
    },
    /// Too many failed health checks: the service is restarted.
    Unhealthy {
        name: String,
    },
    /// The service's process group uses more memory than its `memory-limit`: it is
    /// restarted, as if it had failed its health check.
    OverMemoryLimit {
        name: String,
        used: u64,
        limit: u64,
    },
    /// A run of a scheduled task ended; `next` says when the next one comes ("at ...").
    RunEnded {
        name: String,
        success: bool,
        code: u8,
        next: String,
    },
    /// A scheduled task was due while its last run was not over (in `state`): this run is
    /// skipped.
    RunSkipped {
        name: String,
        state: &'static str,
        pid: Option<Pid>,
        next: String,
    },
    /// The wall clock was set past a scheduled task's time by more than `JUMP_LIMIT`: that
    /// run is not made.
    RunMissed {
        name: String,
        missed: String,
    },
    /// The wall clock was set, by this many seconds (forward when positive) if known.
    ClockSet {
        by: Option<i64>,
    },
}

impl Note {
    pub fn level(&self) -> Level {
        match self {
            Note::SpawnFailed { .. } | Note::ExitingWithUnreaped | Note::GaveUp { .. } => {
                Level::Error
            }
            Note::Ended { success: false, .. } => Level::Error,
            Note::KillingDescendants
            | Note::SignalDropped { .. }
            | Note::Restarting { .. }
            | Note::StopTimedOut { .. }
            | Note::TaskTimedOut { .. }
            | Note::FinishTimedOut { .. }
            | Note::FinishFailed { .. }
            | Note::GaveUpWaiting { .. }
            | Note::ShutdownEscalated
            | Note::Blocked { .. }
            | Note::NotReadyInTime { .. }
            | Note::HealthCheckFailed { .. } => Level::Warn,
            Note::Unhealthy { .. } | Note::OverMemoryLimit { .. } | Note::OomKilled { .. } => {
                Level::Error
            }
            Note::RunEnded { success: true, .. } | Note::ClockSet { .. } => Level::Info,
            Note::RunEnded { success: false, .. }
            | Note::RunSkipped { .. }
            | Note::RunMissed { .. } => Level::Warn,
            Note::Ready { .. } => Level::Debug,
            Note::Ended { success: true, .. } | Note::ShutdownStarted { .. } => Level::Info,
            Note::Spawned { .. } | Note::Adopted { .. } | Note::ServiceExited { .. } => Level::Info,
            Note::FinishStarted { .. } | Note::FinishExited { .. } => Level::Info,
            Note::Forwarded { .. }
            | Note::OrphanReaped { .. }
            | Note::SignalIgnored { .. }
            | Note::StoppingDescendants { .. } => Level::Debug,
        }
    }
}

/// Why tend is shutting down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    Signal(Signal),
    /// A critical service ended for good.
    Critical {
        name: String,
        code: u8,
    },
    /// Every service ended for good, successfully.
    AllDone,
    /// `tend shutdown`.
    Requested,
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownReason::Signal(s) => write!(f, "received {s}"),
            ShutdownReason::Critical { name, code } => {
                write!(f, "critical service '{name}' ended with code {code}")
            }
            ShutdownReason::AllDone => write!(f, "every service has completed"),
            ShutdownReason::Requested => write!(f, "requested over the control socket"),
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
            Note::Adopted { name, pid } => {
                write!(f, "'{name}' forked: following its daemon, pid {pid}")
            }
            Note::SpawnFailed { name, message } => write!(f, "cannot run '{name}': {message}"),
            Note::ServiceExited { name, pid, status } => {
                write!(f, "'{name}' (pid {pid}) ended: {status}")
            }
            Note::OomKilled { name, pid } => write!(
                f,
                "'{name}' (pid {pid}) was killed by the kernel's OOM killer (out of memory)"
            ),
            Note::OrphanReaped { pid, status } => write!(f, "reaped zombie pid {pid} ({status})"),
            Note::Forwarded { signal, target } => match target {
                KillTarget::Process(p) => write!(f, "forwarded {signal} to pid {p}"),
                KillTarget::Group(p) => write!(f, "forwarded {signal} to process group {p}"),
                KillTarget::Everyone => write!(f, "sent {signal} to every process"),
            },
            Note::SignalDropped { signal } => {
                write!(f, "received {signal} with no child to forward it to")
            }
            Note::SignalIgnored { signal } => write!(f, "ignored {signal}"),
            Note::StoppingDescendants { grace } => write!(
                f,
                "sending SIGTERM to the processes left behind, {} to exit",
                short_duration(*grace)
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
            // After a run that lasted start-secs nothing counts as a failed start yet.
            Note::Restarting {
                name,
                delay,
                failures: 0,
            } => {
                write!(
                    f,
                    "'{name}' ended; restarting in {}",
                    short_duration(*delay)
                )
            }
            Note::Restarting {
                name,
                delay,
                failures,
            } => write!(
                f,
                "'{name}' failed ({failures} in a row); restarting in {}",
                short_duration(*delay)
            ),
            Note::GaveUp { name, failures } => {
                write!(
                    f,
                    "'{name}' failed {failures} times in a row; giving up: it is now failed"
                )
            }
            Note::StopTimedOut { name } => {
                write!(
                    f,
                    "'{name}' did not stop within its stop-timeout: sending SIGKILL to its process group"
                )
            }
            Note::FinishStarted { name, pid } => {
                write!(f, "finish of '{name}' started (pid {pid})")
            }
            Note::FinishExited { name, pid, status } => {
                write!(f, "finish of '{name}' (pid {pid}) ended: {status}")
            }
            Note::FinishFailed { name, message } => {
                write!(f, "finish of '{name}' could not be started: {message}")
            }
            Note::FinishTimedOut { name } => {
                write!(
                    f,
                    "finish of '{name}' did not end within its finish-timeout: sending SIGKILL to its process group"
                )
            }
            Note::TaskTimedOut { name } => {
                write!(
                    f,
                    "shutdown task '{name}' did not end within its stop-timeout: sending SIGKILL to its process group"
                )
            }
            Note::GaveUpWaiting { name } => {
                write!(
                    f,
                    "processes of '{name}' did not go away after SIGKILL; carrying on without them"
                )
            }
            Note::Ended {
                name,
                success: true,
                code,
            } => write!(f, "'{name}' has ended (code {code})"),
            Note::Ended {
                name,
                success: false,
                code,
            } => {
                write!(f, "'{name}' has failed for good (code {code})")
            }
            Note::ShutdownStarted { reason } => write!(f, "shutting down: {reason}"),
            Note::ShutdownEscalated => {
                write!(f, "shutdown escalated: sending SIGKILL to everything")
            }
            Note::Ready { name } => write!(f, "'{name}' is ready"),
            Note::NotReadyInTime { name } => {
                write!(
                    f,
                    "'{name}' was not ready within its readiness timeout: stopping it"
                )
            }
            Note::HealthCheckFailed {
                name,
                failures,
                threshold,
            } => {
                write!(
                    f,
                    "health check of '{name}' failed ({failures} of {threshold} in a row)"
                )
            }
            Note::Unhealthy { name } => write!(f, "'{name}' is unhealthy: restarting it"),
            Note::OverMemoryLimit { name, used, limit } => write!(
                f,
                "'{name}' uses {}, over its memory-limit of {}: restarting",
                mebibytes(*used, true),
                mebibytes(*limit, false)
            ),
            Note::Blocked { name, dependency } => {
                write!(
                    f,
                    "'{name}' will not be started: its dependency '{dependency}' has failed"
                )
            }
            Note::RunEnded {
                name,
                success: true,
                code,
                next,
            } => write!(f, "'{name}' has run (code {code}); next run {next}"),
            Note::RunEnded {
                name,
                success: false,
                code,
                next,
            } => write!(f, "'{name}' has failed (code {code}); next run {next}"),
            Note::RunSkipped {
                name,
                state,
                pid,
                next,
            } => {
                let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
                write!(
                    f,
                    "'{name}' is due but still {state}{pid} from its last run: this run is skipped; next run {next}"
                )
            }
            Note::RunMissed { name, missed } => write!(
                f,
                "'{name}' was due at {missed}, which the wall clock was set past by more than 3 hours: that run is not made"
            ),
            Note::ClockSet { by: Some(by) } => write!(
                f,
                "the wall clock was set {} by {}; schedules follow it",
                if *by < 0 { "back" } else { "forward" },
                short_duration(Duration::from_secs(by.unsigned_abs()))
            ),
            Note::ClockSet { by: None } => {
                write!(f, "the wall clock was set; schedules follow it")
            }
        }
    }
}

/// `530 MiB`, `512.3 MiB`: a size in MiB to a tenth, rounded `up` or down. A usage over a
/// limit, rounded up, never reads as the limit rounded down.
fn mebibytes(bytes: u64, up: bool) -> String {
    let tenths = u128::from(bytes) * 10;
    let mib = 1u128 << 20;
    let n = if up {
        tenths.div_ceil(mib)
    } else {
        tenths / mib
    };
    if n % 10 == 0 {
        format!("{} MiB", n / 10)
    } else {
        format!("{}.{} MiB", n / 10, n % 10)
    }
}

/// `1.5s`, `250ms`: short and exact enough for log lines.
pub(crate) fn short_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
