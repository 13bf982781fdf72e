//! The event loop: epoll over the signalfd, services' log pipes, tend's own outputs, the
//! servers' sockets and the probes', with the timeout the core asks for. With nothing to
//! time, it sleeps in epoll_wait with no timeout at all: an idle tend makes no system calls.
//!
//! Three rules hold here (invariant 7). One clock: the loop reads `now` once per wake-up and
//! passes it down. One voice: everything tend says goes through `Loop::say` (in supervisor
//! mode, the same queue as the services' lines). One token map: every descriptor in the
//! epoll set is a `shell::token::Token`, dispatched by one exhaustive match.

mod actions;
mod probing;
mod reaping;
mod requests;
mod scheduling;
mod serving;

use super::diagnostics::Logger;
use super::logs::{Logs, Stream};
use super::oom::OomCounter;
use super::pidfile::PidFiles;
use super::probes::{Notify, Probes};
use super::repeated::Repeated;
use super::serve::control::ControlServer;
use super::serve::http::HttpServer;
use super::shm_store;
use super::token::Token;
use crate::config::ShmSettings;
use crate::core::{self, Input, Level, Pid, PidMap, RequestId, ServiceId, Supervisor};
use crate::sys::process;
use crate::sys::signals::{Inherited, Received, SignalFd};
use crate::sys::timer::WallTimer;
use rustix::event::epoll;
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// What the loop needs besides the core's spec.
///
/// What only supervisor mode has is boxed: in single-child mode a `None` takes a word of the
/// stack instead of the whole part (see *Memory of the single-child loop* in
/// docs/architecture.md).
pub struct Context {
    pub inherited: Inherited,
    pub signals: SignalFd,
    pub log: Logger,
    /// tend is PID 1 of its pid namespace: `kill(-1)` means "everything in the container".
    pub is_pid1: bool,
    /// Supervisor mode: services' output, prefixed. None in single-child mode.
    pub logs: Option<Box<Logs>>,
    /// Supervisor mode: the control socket.
    pub control: Option<Box<ControlServer>>,
    /// Supervisor mode: the file to re-read on reload.
    pub config_path: Option<std::path::PathBuf>,
    /// Where sd_notify sockets for services are made.
    pub notify_dir: Option<std::path::PathBuf>,
    /// Supervisor mode: /livez, /readyz and /metrics, when configured.
    pub http: Option<Box<HttpServer>>,
    /// Supervisor mode: shared memory segments to save once every service has stopped.
    pub shm: Option<Box<ShmSettings>>,
}

/// How many ready descriptors one `epoll_wait` reports at most.
const EVENTS_PER_WAIT: usize = 32;

/// How long tend waits at exit for a `tend shutdown` client to read its answer.
const SHUTDOWN_CLIENT_LINGER: Duration = Duration::from_millis(500);

/// How long tend waits at exit for a slow reader to take the last log lines.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

struct Loop {
    sup: Supervisor,
    ctx: Context,
    ep: OwnedFd,
    /// The core's time is the time since this.
    origin: Instant,
    me: Pid,
    /// Live service processes, to drain their pipes when they exit.
    service_pids: PidMap,
    /// Whether each output is registered for EPOLLOUT.
    watching_output: [bool; 2],
    /// Control requests waiting for the core's answer, by connection.
    waiting: HashMap<RequestId, usize>,
    next_request: u64,
    /// Readiness and health probes in flight (tcp, http, exec); made at the first probe.
    probes: Option<Box<Probes>>,
    /// Readiness notifications (notification fd, sd_notify).
    notify: Notify,
    /// Daemons whose pid file is being waited for.
    pid_files: PidFiles,
    /// Probe attempts tend could not make (out of descriptors), said once per burst.
    probes_not_run: Repeated,
    /// The kernel's count of OOM kills (supervisor mode, where the kernel has one).
    oom: Option<OomCounter>,
    /// Nothing but signals can ever wake the loop (single-child mode: no log pipes, sockets
    /// or probes): while no timer is due it sleeps in `sigwaitinfo`, one system call per
    /// signal instead of `epoll_wait` and `read`.
    signals_only: bool,
    /// Supervisor mode: the timer of scheduled tasks' wall-clock times.
    wall_timer: Option<WallTimer>,
    /// The time it is armed for (None: disarmed).
    wall_armed: Option<jiff::Timestamp>,
}

/// Runs until the core says exit; returns the exit code. Errors here are setup errors.
pub fn run(sup: Supervisor, ctx: Context) -> std::io::Result<u8> {
    let setup = Setup::new(&ctx)?;
    // Built where it stays: `Loop::new` cannot fail, so no `Result<Loop>` is moved out of.
    let mut lp = Loop::new(sup, ctx, setup);
    let origin = lp.origin;
    lp.count_oom_kills(origin);
    lp.sup.start(lp.core_time(origin));
    lp.hand_wall_clock(origin, false);
    lp.run(origin)
}

/// What making a loop can fail at: its epoll set with `ctx`'s descriptors registered, and
/// the wall-clock timer.
struct Setup {
    ep: OwnedFd,
    wall_timer: Option<WallTimer>,
}

impl Setup {
    fn new(ctx: &Context) -> std::io::Result<Setup> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &ep,
            &ctx.signals,
            Token::Signals.data(),
            epoll::EventFlags::IN,
        )?;
        if let Some(server) = &ctx.control {
            server.register(&ep)?;
        }
        if let Some(server) = &ctx.http {
            server.register(&ep)?;
        }
        // Supervisor mode: schedules may come with a reload, so the timer is always there
        // (disarmed, it never wakes anyone).
        let wall_timer = match ctx.logs {
            Some(_) => {
                let timer = WallTimer::new()?;
                epoll::add(&ep, &timer, Token::WallTimer.data(), epoll::EventFlags::IN)?;
                Some(timer)
            }
            None => None,
        };
        if let Some(logs) = &ctx.logs {
            register_sources(&ep, logs)?;
            for stream in Stream::BOTH {
                if let Some(fd) = logs.output_fd(stream) {
                    let token = Token::Output(stream).data();
                    epoll::add(&ep, fd, token, epoll::EventFlags::empty())?;
                }
            }
        }
        Ok(Setup { ep, wall_timer })
    }
}

impl Loop {
    /// The loop over `ctx`'s descriptors, registered in `setup`'s epoll set; the supervisor
    /// is not started yet.
    fn new(sup: Supervisor, ctx: Context, setup: Setup) -> Loop {
        let signals_only = ctx.logs.is_none()
            && ctx.control.is_none()
            && ctx.http.is_none()
            && ctx.config_path.is_none()
            && sup
                .spec()
                .services
                .iter()
                .all(|s| s.ready.is_none() && s.health.is_none());
        Loop {
            signals_only,
            sup,
            ctx,
            ep: setup.ep,
            origin: Instant::now(),
            me: process::getpid(),
            service_pids: PidMap::new(),
            watching_output: [false; 2],
            waiting: HashMap::new(),
            next_request: 0,
            probes: None,
            notify: Notify::new(),
            pid_files: PidFiles::default(),
            probes_not_run: Repeated::default(),
            oom: None,
            wall_timer: setup.wall_timer,
            wall_armed: None,
        }
    }

    /// `now` on the core's clock.
    fn core_time(&self, now: Instant) -> core::Instant {
        core::Instant::from_origin(now.saturating_duration_since(self.origin))
    }

    fn run(&mut self, start: Instant) -> std::io::Result<u8> {
        // Both grow only on the epoll path: a single-child tend asleep in `sigwaitinfo`
        // takes its one signal at a time without them.
        let mut received: Vec<Received> = Vec::new();
        let mut events = Vec::new();
        let mut now = start;
        loop {
            if let Some(code) = self.settle(now) {
                return Ok(self.finish(code));
            }
            self.update_interest(now);
            self.update_wall_timer();
            let wakeup = self.next_wakeup();
            if wakeup.is_none() && self.signals_only {
                let signal = self.ctx.signals.wait_one();
                now = Instant::now();
                match signal {
                    Ok(signal) => self.handle_signals(signal.as_slice(), now),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => self.trouble(&format!("sigwaitinfo: {e}")),
                }
                continue;
            }
            let timeout = wakeup.map(|at| {
                let d = at.saturating_duration_since(now);
                rustix::event::Timespec {
                    tv_sec: d.as_secs() as i64,
                    tv_nsec: i64::from(d.subsec_nanos()),
                }
            });
            events.clear();
            events.reserve(EVENTS_PER_WAIT);
            let waited = epoll::wait(
                &self.ep,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            );
            // The one clock read of this wake-up.
            now = Instant::now();
            match waited {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => self.trouble(&format!("epoll_wait: {e}")),
            }
            for ev in events.iter() {
                match Token::decode(ev.data.u64()) {
                    Some(token) => self.dispatch(token, ev.flags, &mut received, now),
                    None => self.say(Level::Debug, "an epoll event with no token of tend's"),
                }
            }
            self.on_timeouts(now);
        }
    }

    /// One ready descriptor, by what it is.
    fn dispatch(
        &mut self,
        token: Token,
        flags: epoll::EventFlags,
        received: &mut Vec<Received>,
        now: Instant,
    ) {
        match token {
            Token::Signals => self.on_signals(received, now),
            Token::Output(stream) => self.on_output(stream),
            Token::Source { svc, stream } => self.on_source(svc, stream, now),
            Token::ControlListener => self.accept_control(now),
            Token::ControlConn(conn) => self.on_control(conn, flags, now),
            Token::HttpListener => self.accept_http(now),
            Token::HttpConn(conn) => self.on_http(conn, flags, now),
            Token::Probe(id) => self.on_probe(id, now),
            Token::WallTimer => self.on_wall_timer(now),
            Token::Notify(svc) => self.on_notify(svc, now),
        }
    }

    // The supervisor's events each in a function of its own (`#[inline(never)]`, like the
    // other rooms' handlers): inlined, their locals would all be in `run`'s frame, which
    // stays on the stack, and so in memory, for the whole life of a single-child tend too.

    #[inline(never)]
    fn on_output(&mut self, stream: Stream) {
        if let Some(logs) = &mut self.ctx.logs {
            logs.write_out(stream);
        }
    }

    #[inline(never)]
    fn on_source(&mut self, svc: usize, stream: Stream, now: Instant) {
        if let Some(logs) = &mut self.ctx.logs {
            logs.read(svc, stream, now);
        }
    }

    #[inline(never)]
    fn on_probe(&mut self, id: u64, now: Instant) {
        let Some(probes) = &mut self.probes else {
            return;
        };
        let results = probes.on_event(&self.ep, id, now);
        self.probe_results(results, now);
    }

    #[inline(never)]
    fn on_notify(&mut self, svc: usize, now: Instant) {
        let at = self.core_time(now);
        for svc in self.notify.on_event(&self.ep, svc) {
            let svc = ServiceId(svc);
            if let Some(generation) = self.sup.running_generation(svc) {
                self.sup.handle(at, Input::ReadyNotify { svc, generation });
            }
        }
    }

    /// Whatever has a deadline: the core's timers, partial lines, slow clients, probe
    /// attempts, pid files; then new lines for followers.
    fn on_timeouts(&mut self, now: Instant) {
        // The core's clock only when it has a timer.
        if let Some(due) = self.sup.poll_timeout() {
            let at = self.core_time(now);
            if at >= due {
                self.sup.handle_timeout(at);
            }
        }
        if !self.signals_only {
            self.expire_supervision(now);
        }
    }

    /// The supervisor's deadlines: partial lines, slow clients, probe attempts, pid files;
    /// then new lines for followers.
    #[inline(never)]
    fn expire_supervision(&mut self, now: Instant) {
        if let Some(logs) = &mut self.ctx.logs {
            logs.on_timeout(now);
        }
        if let Some(server) = &mut self.ctx.control {
            server.expire(&self.ep, now);
        }
        if let Some(server) = &mut self.ctx.http {
            server.expire(&self.ep, now);
        }
        if let Some(probes) = &mut self.probes {
            let expired = probes.expire(&self.ep, now);
            self.probe_results(expired, now);
        }
        self.poll_pid_files(now);
        self.forward_fresh_lines();
    }

    /// The earliest of every deadline the loop keeps.
    ///
    /// Asked on every wake-up: plain comparisons, no iterator over an array of options.
    fn next_wakeup(&self) -> Option<Instant> {
        let mut at = self
            .sup
            .poll_timeout()
            .map(|at| self.origin + at.since_origin());
        if let Some(logs) = self.ctx.logs.as_deref() {
            at = earliest(at, logs.next_deadline());
        }
        if let Some(server) = self.ctx.control.as_deref() {
            at = earliest(at, server.next_deadline());
        }
        if let Some(probes) = self.probes.as_deref() {
            at = earliest(at, probes.next_deadline());
        }
        if !self.pid_files.is_empty() {
            at = earliest(at, self.pid_files.next_deadline());
        }
        if let Some(server) = self.ctx.http.as_deref() {
            at = earliest(at, server.next_deadline());
        }
        at
    }

    /// Executes actions and answers the core's questions until nothing is left to do.
    /// Returns the exit code once the core asks to exit.
    fn settle(&mut self, now: Instant) -> Option<u8> {
        loop {
            let mut progressed = false;
            while let Some(action) = self.sup.poll_action() {
                progressed = true;
                if let Some(code) = self.execute(action, now) {
                    return Some(code);
                }
            }
            // Groups whose main process is gone: report the ones with nobody left. Asked on
            // every wake-up, when most have no such group: no list made for none.
            if self.sup.awaited_groups().next().is_none() && !progressed {
                return None;
            }
            let awaited: Vec<Pid> = self.sup.awaited_groups().collect();
            for pgid in awaited {
                if process::group_is_empty(pgid) {
                    progressed = true;
                    self.sup
                        .handle(self.core_time(now), Input::GroupEmpty { pgid });
                }
            }
            if !progressed {
                return None;
            }
        }
    }

    /// Every service has stopped and every process is reaped: save the segments (nothing
    /// can change them any more), say the code, write what is left. Returns the exit code.
    #[inline(never)]
    fn finish(&mut self, mut code: u8) -> u8 {
        if let Some(shm) = &self.ctx.shm {
            match shm_store::save(shm) {
                Ok(notes) => {
                    for note in notes {
                        self.say(Level::Info, &note);
                    }
                }
                Err(e) => {
                    self.say(Level::Error, &e);
                    // The state is lost: do not report a clean end.
                    if code == 0 {
                        code = 1;
                    }
                }
            }
        }
        // Said last: saving the segments above may still change the code.
        self.say(Level::Info, &format!("exiting with code {code}"));
        if let Some(logs) = &mut self.ctx.logs {
            logs.finish(FINAL_FLUSH);
        }
        if let Some(server) = &mut self.ctx.control {
            server.remove();
            server.linger(&self.ep, SHUTDOWN_CLIENT_LINGER);
        }
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        code
    }

    /// One of tend's own lines, if its level is shown: the one voice (invariant 7).
    fn say(&mut self, level: Level, text: &str) {
        if let Some(line) = self.ctx.log.render(level, format_args!("{text}")) {
            self.voice(&line);
        }
    }

    /// A rendered line of tend's: in supervisor mode through the output queue, between whole
    /// service lines; in single-child mode straight to stderr, which nothing else writes.
    fn voice(&mut self, line: &str) {
        match &mut self.ctx.logs {
            Some(logs) => logs.tend_line(line),
            None => {
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
        }
    }

    /// A system call of the loop's own failed when it should not: said, and a short pause so
    /// that a failure that repeats cannot make the loop spin.
    fn trouble(&mut self, text: &str) {
        self.say(Level::Error, text);
        std::thread::sleep(Duration::from_millis(10));
    }

    /// Back-pressure: services feeding a congested output are not read; outputs with queued
    /// bytes are watched for writability.
    fn update_interest(&mut self, now: Instant) {
        let Some(logs) = &mut self.ctx.logs else {
            return;
        };
        for change in logs.update_pauses(now) {
            let (svc, stream) = (change.svc, change.stream);
            let flags = if change.paused {
                epoll::EventFlags::empty()
            } else {
                epoll::EventFlags::IN
            };
            if let Some(fd) = logs.read_fd(svc, stream) {
                let token = Token::Source { svc, stream }.data();
                let _ = epoll::modify(&self.ep, fd, token, flags);
            }
        }
        for stream in Stream::BOTH {
            let want = logs.pending(stream);
            let watching = stream.of_mut(&mut self.watching_output);
            if want != *watching {
                if let Some(fd) = logs.output_fd(stream) {
                    let flags = if want {
                        epoll::EventFlags::OUT
                    } else {
                        epoll::EventFlags::empty()
                    };
                    let _ = epoll::modify(&self.ep, fd, Token::Output(stream).data(), flags);
                }
                *watching = want;
            }
        }
    }
}

/// The earlier of two deadlines, either of which may be absent.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

fn register_sources(ep: &OwnedFd, logs: &Logs) -> std::io::Result<()> {
    for svc in 0..logs.services() {
        for stream in Stream::BOTH {
            if let Some(fd) = logs.read_fd(svc, stream) {
                register_source(ep, svc, stream, fd)?;
            }
        }
    }
    Ok(())
}

fn register_source(
    ep: &OwnedFd,
    svc: usize,
    stream: Stream,
    fd: BorrowedFd<'_>,
) -> std::io::Result<()> {
    let token = Token::Source { svc, stream }.data();
    epoll::add(ep, fd, token, epoll::EventFlags::IN)?;
    Ok(())
}

#[cfg(test)]
mod tests;
