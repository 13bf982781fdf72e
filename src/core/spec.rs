//! What the core is asked to supervise: validated, plain data.
//!
//! Anything the core has no opinion on (argv, environment, credentials) lives in `Launch`,
//! carried through untouched so the shell can act on `Action::Spawn`.

use super::schedule::Schedule;
use super::signal::Signal;
use jiff::tz::TimeZone;
use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Index of a service in `Spec::services`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(pub usize);

/// How to start a service's process. Opaque to the core: carried to `Action::Spawn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Program and arguments; `argv[0]` is looked up in `PATH` when it has no slash.
    pub argv: Vec<OsString>,
    pub session: SessionMode,
    /// Variables set on top of tend's own environment, in order (later wins).
    pub env: Vec<(OsString, OsString)>,
    pub workdir: Option<PathBuf>,
    /// Switch to these ids before exec (setgroups, setresgid, setresuid).
    pub credentials: Option<Credentials>,
    pub umask: Option<u32>,
    pub limits: Vec<Limit>,
    pub output: Output,
}

impl Launch {
    /// Just a command, everything else inherited.
    pub fn command(argv: Vec<OsString>, session: SessionMode) -> Launch {
        Launch {
            argv,
            session,
            env: Vec::new(),
            workdir: None,
            credentials: None,
            umask: None,
            limits: Vec::new(),
            output: Output::Inherit,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from /etc/group, or empty).
    pub groups: Vec<u32>,
}

/// A resource limit set before exec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Nofile,
    Nproc,
    Core,
    Memlock,
    Stack,
}

/// Where the service's stdout and stderr go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// tend's own stdout/stderr (single-child mode).
    Inherit,
    /// Pipes read by tend and written out as prefixed lines (supervisor mode).
    Prefixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionMode {
    /// `setpgid(0, 0)` and, when stdin is a terminal, `tcsetpgrp`: what tini does, so job
    /// control works in `docker run -it`.
    ForegroundGroup,
    /// `setsid()`: the service is detached from tend's terminal and owns its group.
    NewSession,
}

/// `finish` (runit's and s6's `./finish`): a command run after every end of the service's
/// process, as the service (user, workdir, environment, output), with two arguments added:
/// the exit code (or -1 when a signal killed it) and the signal's number (or 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finish {
    pub argv: Vec<OsString>,
    /// Then SIGKILL to its process group, and the service goes on without it.
    pub timeout: Duration,
}

impl Finish {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
}

/// `run-on`: when a service is started by tend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOn {
    /// With the others, as its dependencies allow.
    Start,
    /// A task run when the shutdown begins (s6-overlay's `cont-finish.d`): the services it
    /// depends on stay up until it has ended, or until its `stop-timeout` has passed and
    /// it was killed.
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// Delay before restart attempt n (n = failed starts in a row, from 1):
/// `min(initial * factor^(n-1), max)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Backoff {
    pub fn delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(64) as i32;
        let secs = self.initial.as_secs_f64() * self.factor.max(1.0).powi(exp);
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs).min(self.max)
        }
    }
}

impl Eq for Backoff {}

/// `logs.ring-max-size` by default: 1000 lines of up to a KiB each.
pub const DEFAULT_LOG_RING_BYTES: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    pub name: String,
    /// The service whose `instances = N` made this one (`worker` for `worker-3`), so that a
    /// request naming `worker` reaches every instance. Names are never parsed for it: a
    /// service may well be called `a-1` by itself. The core's decisions ignore it.
    pub instance_of: Option<String>,
    pub launch: Launch,
    /// Its end for good (failed, or exited and not restarted) ends tend, with its code.
    pub critical: bool,
    /// Runs to completion: a success exit is its normal end, not a reason to restart.
    pub oneshot: bool,
    /// Started with the others (and when a reload adds it); otherwise it is loaded stopped
    /// and only `tend start` starts it.
    pub autostart: bool,
    /// When it runs: with the others, or (a task) when the shutdown begins.
    pub run_on: RunOn,
    /// A scheduled task: not started with the others but at these times (always a
    /// one-shot task); between runs it is `Scheduled`.
    pub schedule: Option<Schedule>,
    /// Run after every end of its process, before anything else happens to the service.
    pub finish: Option<Finish>,
    pub restart: RestartPolicy,
    /// Exit codes that count as success (for `on-failure` and one-shot tasks).
    pub success_codes: ExitCodeSet,
    pub backoff: Backoff,
    /// Must stay up this long to count as started; a start that lasts less is a failure,
    /// a start that lasts this long resets the backoff.
    pub start_secs: Duration,
    /// Failed starts in a row after which the service is `failed` (0: never give up).
    pub max_restarts: u32,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    /// When the main process exits, stop what is left of its process group (stop signal,
    /// SIGKILL after `stop_timeout`) before restarting or settling. Off in single-child mode,
    /// where tini's behaviour is to leave that to the end of the container.
    pub stop_group_leftovers: bool,
    /// How many of its latest output lines tend keeps in memory for `tend logs`.
    pub log_ring: usize,
    /// ... and at most about this many bytes of them (long lines would otherwise let the
    /// line count hold many megabytes).
    pub log_ring_bytes: usize,
    /// A file that also gets its output lines, rotated by size.
    pub log_file: Option<LogFile>,
    /// A daemon that forks: when the started process exits successfully, the process this
    /// file names becomes the service's main process.
    pub pid_file: Option<PathBuf>,
    /// What must hold before it starts. Its dependents stop before it does.
    pub depends_on: Vec<Dependency>,
    /// How tend learns that it is ready. Without a rule: once it has stayed up `start_secs`.
    pub ready: Option<ReadyRule>,
    /// A liveness check that restarts it when it keeps failing.
    pub health: Option<HealthRule>,
    /// Bytes of resident memory its process group may use; above it, checked every
    /// `MEMORY_CHECK_EVERY`, it is restarted as if it had failed its health check.
    pub memory_limit: Option<u64>,
}

/// How often the services with a `memory_limit` have their memory measured.
pub const MEMORY_CHECK_EVERY: Duration = Duration::from_secs(5);

/// `logs.file`: where a service's lines are also written, and how the file is rotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    pub path: PathBuf,
    /// Rotate before a write would take the file past this many bytes (0: never).
    pub max_size: u64,
    /// Rotated files kept as `PATH.1` (newest) to `PATH.KEEP`.
    pub keep: u32,
}

impl LogFile {
    pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
    pub const DEFAULT_KEEP: u32 = 5;
}

/// A check run by the shell; the core only schedules it and hears the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection to the target succeeds.
    Tcp { target: HostPort },
    /// An HTTP/1.1 GET of the target answers 2xx or 3xx.
    Http { target: HttpTarget },
    /// A command exits 0 (run as an ordinary child, reaped by the one reaper).
    Exec { argv: Vec<OsString> },
    /// The service writes a newline on this fd of its own (the s6 `notification-fd`
    /// convention). Readiness only.
    NotifyFd { fd: i32 },
    /// The service sends `READY=1` to the datagram socket named by `NOTIFY_SOCKET`
    /// (systemd's sd_notify). Readiness only.
    SdNotify,
}

impl Probe {
    /// Polled probes are run by tend at intervals; the others are notifications that the
    /// service sends by itself.
    pub fn is_polled(&self) -> bool {
        matches!(
            self,
            Probe::Tcp { .. } | Probe::Http { .. } | Probe::Exec { .. }
        )
    }
}

/// Where a `tcp` probe connects. Checked when the file is loaded; a name is looked up at
/// every attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// A name, or an IP address (an IPv6 one without brackets: `::1`).
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn new(host: impl Into<String>, port: u16) -> HostPort {
        HostPort {
            host: host.into(),
            port,
        }
    }
}

/// `HOST:PORT`, an IPv6 address in brackets.
impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", bracketed(&self.host), self.port)
    }
}

/// What an `http` probe asks for: `GET path` from `host:port`. Checked when the file is
/// loaded, so it can be sent as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    /// A name, or an IP address (an IPv6 one without brackets: `::1`).
    pub host: String,
    /// 80 when the URL names none.
    pub port: u16,
    /// The request target as it goes into the request line: starting with `/`, with the
    /// query if any, printable ASCII only (the configuration percent-encodes the rest).
    pub path: String,
}

impl HttpTarget {
    pub fn new(host: impl Into<String>, port: u16, path: impl Into<String>) -> HttpTarget {
        HttpTarget {
            host: host.into(),
            port,
            path: path.into(),
        }
    }

    /// The URL's authority, which is also the `Host` header's value: the host (in brackets
    /// if IPv6), and the port unless it is the default 80 (RFC 9110 section 7.2; virtual
    /// hosts on other ports rely on it).
    pub fn authority(&self) -> String {
        let host = bracketed(&self.host);
        if self.port == 80 {
            host.into_owned()
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `http://AUTHORITY/PATH`.
impl fmt::Display for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

/// An IPv6 address in brackets, as it is written next to a port; anything else as it is.
fn bracketed(host: &str) -> Cow<'_, str> {
    if host.contains(':') {
        Cow::Owned(format!("[{host}]"))
    } else {
        Cow::Borrowed(host)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadyRule {
    pub probe: Probe,
    /// Time between two attempts of a polled probe.
    pub interval: Duration,
    /// How long one attempt may take.
    pub attempt_timeout: Duration,
    /// Not ready this long after the start: the start has failed.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthRule {
    /// Tcp, Http or Exec.
    pub probe: Probe,
    pub interval: Duration,
    /// How long one check may take.
    pub timeout: Duration,
    /// After a start (once ready), failures do not count for this long.
    pub start_period: Duration,
    /// This many failures in a row make the service unhealthy: it is restarted.
    pub failures: u32,
}

/// "Start me once `on` has reached `condition`."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub on: ServiceId,
    pub condition: Condition,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Its process was spawned and runs.
    Started,
    /// It runs and is ready: its readiness rule was met, or without one it has stayed up
    /// `start-secs`.
    Ready,
    /// It exited successfully (one-shot tasks).
    Completed,
}

impl ServiceSpec {
    /// The defaults documented in docs/config.md, for a service that runs `launch`.
    pub fn new(name: impl Into<String>, launch: Launch) -> ServiceSpec {
        let mut success_codes = ExitCodeSet::default();
        success_codes.insert(0);
        ServiceSpec {
            name: name.into(),
            instance_of: None,
            launch,
            critical: false,
            oneshot: false,
            autostart: true,
            run_on: RunOn::Start,
            schedule: None,
            finish: None,
            restart: RestartPolicy::Always,
            success_codes,
            backoff: Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(30),
                factor: 2.0,
            },
            start_secs: Duration::from_secs(1),
            max_restarts: 10,
            stop_signal: Signal::TERM,
            stop_timeout: Duration::from_secs(5),
            stop_group_leftovers: true,
            log_ring: 1000,
            log_ring_bytes: DEFAULT_LOG_RING_BYTES,
            log_file: None,
            pid_file: None,
            depends_on: Vec::new(),
            ready: None,
            health: None,
            memory_limit: None,
        }
    }
}

/// A set of exit codes (0..=255).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCodeSet([u64; 4]);

impl ExitCodeSet {
    pub fn insert(&mut self, code: u8) {
        // code / 64 is 0..=3: every code has its word.
        if let Some(word) = self.0.get_mut(usize::from(code / 64)) {
            *word |= 1 << (code % 64);
        }
    }

    pub fn contains(&self, code: u8) -> bool {
        self.0
            .get(usize::from(code / 64))
            .is_some_and(|word| word & (1 << (code % 64)) != 0)
    }
}

/// Where signals that tend receives go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalRouting {
    /// Single-child mode: every catchable asynchronous signal goes to the main service, to
    /// its process or (tini's `-g`) to its whole process group.
    ForwardToMain { to_group: bool },
    /// Supervisor mode: these signals start a graceful shutdown (a second one escalates);
    /// others are ignored.
    Supervise { shutdown: ExitSignals },
}

/// The signals that mean "shut down" in supervisor mode (SIGTERM and SIGINT by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitSignals(pub u64);

impl ExitSignals {
    pub fn of(signals: &[Signal]) -> ExitSignals {
        ExitSignals(signals.iter().fold(0, |bits, s| bits | 1 << s.number()))
    }

    pub fn contains(&self, s: Signal) -> bool {
        self.0 & (1 << s.number()) != 0
    }
}

impl Default for ExitSignals {
    fn default() -> Self {
        ExitSignals::of(&[Signal::TERM, Signal::INT])
    }
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
    /// Budget for the whole graceful shutdown (supervisor mode).
    pub shutdown_timeout: Duration,
    /// Where the cron rules of `schedule` read the clock (`[tend] timezone`, `$TZ`,
    /// `/etc/localtime`, else UTC).
    pub timezone: TimeZone,
}

/// Docker waits 10 s before SIGKILL; leave a second for the leftovers and the exit.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(9);

/// After SIGKILL to the leftovers, how long tend waits to see them reaped before exiting
/// anyway (a process stuck in uninterruptible sleep must not keep the container up forever).
pub const KILL_REAP_GRACE: Duration = Duration::from_secs(2);

impl Spec {
    /// Single-child mode: one critical service, never restarted, signals forwarded to it.
    pub fn single(argv: Vec<OsString>, to_group: bool, main_exit: MainExit) -> Spec {
        let name = argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default();
        Spec {
            services: vec![ServiceSpec {
                critical: true,
                restart: RestartPolicy::Never,
                stop_group_leftovers: false,
                ..ServiceSpec::new(name, Launch::command(argv, SessionMode::ForegroundGroup))
            }],
            signals: SignalRouting::ForwardToMain { to_group },
            main_exit,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            timezone: TimeZone::UTC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_monotone_and_capped() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0,
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(20), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
        let mut last = Duration::ZERO;
        for n in 1..100 {
            let d = b.delay(n);
            assert!(d >= last && d <= b.max);
            last = d;
        }
    }

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
