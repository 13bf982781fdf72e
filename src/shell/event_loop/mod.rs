//! The event loop: epoll over the signalfd, services' log pipes and tend's own outputs, with
//! the timeout the core asks for. With nothing to time, it sleeps in epoll_wait with no
//! timeout at all: an idle tend makes no system calls.

mod probing;
mod requests;

use super::diagnostics::Logger;
use super::logs::{Logs, Stream};
use super::pidfile::{self, PidFiles};
use super::probes::{self, ChildExit, Notify, Probes};
use super::repeated::Repeated;
use super::serve::control::{self, ControlServer};
use super::serve::http::{self as http_server, HttpServer, Snapshot};
use super::serve::{metrics, status};
use super::shm_store;
use crate::config::ShmSettings;
use crate::core::{
    self, Action, Input, KillTarget, Level, Output, Pid, RequestId, ServiceId, ServiceState,
    Signal, SignalRouting, SpawnErrorKind, Supervisor,
};
use crate::proto::{self, Response};
use crate::sys::process;
use crate::sys::reap::{self, Reaped};
use crate::sys::signals::{Inherited, Received, SignalFd};
use crate::sys::spawn::{self, ChildStdio};
use rustix::event::epoll;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// What the loop needs besides the core's spec.
pub struct Context {
    pub inherited: Inherited,
    pub signals: SignalFd,
    pub log: Logger,
    /// tend is PID 1 of its pid namespace: `kill(-1)` means "everything in the container".
    pub is_pid1: bool,
    /// Supervisor mode: services' output, prefixed. None in single-child mode.
    pub logs: Option<Logs>,
    /// Supervisor mode: the control socket.
    pub control: Option<ControlServer>,
    /// Supervisor mode: the file to re-read on reload.
    pub config_path: Option<std::path::PathBuf>,
    /// Where sd_notify sockets for services are made.
    pub notify_dir: Option<std::path::PathBuf>,
    /// Supervisor mode: /livez, /readyz and /metrics, when configured.
    pub http: Option<HttpServer>,
    /// Supervisor mode: shared memory segments to save once every service has stopped.
    pub shm: Option<ShmSettings>,
}

const SIGNALFD: u64 = 0;
const OUTPUT_BASE: u64 = 1; // + stream
const SOURCE_BASE: u64 = 16; // + svc * 2 + stream

/// How long tend waits at exit for a `tend shutdown` client to read its answer.
const SHUTDOWN_CLIENT_LINGER: Duration = Duration::from_millis(500);

/// How long tend waits at exit for a slow reader to take the last log lines.
const FINAL_FLUSH: Duration = Duration::from_secs(2);

struct Loop {
    sup: Supervisor,
    ctx: Context,
    ep: std::os::fd::OwnedFd,
    origin: Instant,
    me: Pid,
    /// Live service processes, to drain their pipes when they exit.
    service_pids: HashMap<Pid, ServiceId>,
    /// Whether each output is registered for EPOLLOUT.
    watching_output: [bool; 2],
    /// Control requests waiting for the core's answer, by connection.
    waiting: HashMap<RequestId, usize>,
    next_request: u64,
    /// Readiness and health probes in flight (tcp, http, exec).
    probes: Probes,
    /// Readiness notifications (notification fd, sd_notify).
    notify: Notify,
    /// Daemons whose pid file is being waited for.
    pid_files: PidFiles,
    /// Probe attempts tend could not make (out of descriptors), said once per burst.
    probes_not_run: Repeated,
    /// Nothing but signals can ever wake the loop (single-child mode: no log pipes, sockets
    /// or probes): while no timer is due it sleeps in `sigwaitinfo`, one system call per
    /// signal instead of `epoll_wait` and `read`.
    signals_only: bool,
}

/// Runs until the core says exit; returns the exit code. Errors here are setup errors.
pub fn run(sup: Supervisor, ctx: Context) -> std::io::Result<u8> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        &ctx.signals,
        epoll::EventData::new_u64(SIGNALFD),
        epoll::EventFlags::IN,
    )?;
    if let Some(server) = &ctx.control {
        server.register(&ep)?;
    }
    if let Some(server) = &ctx.http {
        server.register(&ep)?;
    }
    if let Some(logs) = &ctx.logs {
        register_sources(&ep, logs)?;
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(fd) = logs.output_fd(stream) {
                let token = OUTPUT_BASE + stream as u64;
                epoll::add(
                    &ep,
                    fd,
                    epoll::EventData::new_u64(token),
                    epoll::EventFlags::empty(),
                )?;
            }
        }
    }
    let signals_only = ctx.logs.is_none()
        && ctx.control.is_none()
        && ctx.http.is_none()
        && ctx.config_path.is_none()
        && sup
            .spec()
            .services
            .iter()
            .all(|s| s.ready.is_none() && s.health.is_none());
    let mut lp = Loop {
        signals_only,
        sup,
        ctx,
        ep,
        origin: Instant::now(),
        me: process::getpid(),
        service_pids: HashMap::new(),
        watching_output: [false; 2],
        waiting: HashMap::new(),
        next_request: 0,
        probes: Probes::new(),
        notify: Notify::new(),
        pid_files: PidFiles::default(),
        probes_not_run: Repeated::default(),
    };
    let now = lp.now();
    lp.sup.start(now);
    lp.run()
}

impl Loop {
    fn now(&self) -> core::Instant {
        core::Instant::from_origin(self.origin.elapsed())
    }

    fn run(&mut self) -> std::io::Result<u8> {
        let mut received: Vec<Received> = Vec::with_capacity(32);
        let mut events = Vec::with_capacity(32);
        loop {
            if let Some(mut code) = self.settle() {
                // Every service has stopped and every process is reaped: nothing can change
                // the segments any more.
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
                    server.linger(SHUTDOWN_CLIENT_LINGER);
                }
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().flush();
                return Ok(code);
            }
            self.update_interest();
            let wakeup = self.next_wakeup();
            if wakeup.is_none() && self.signals_only {
                match self.ctx.signals.wait_one() {
                    Ok(signal) => {
                        received.clear();
                        received.extend(signal);
                        self.handle_signals(&received);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.ctx
                            .log
                            .say(Level::Error, format_args!("sigwaitinfo: {e}"));
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
                continue;
            }
            let timeout = wakeup.map(|at| {
                let d = at.saturating_duration_since(Instant::now());
                rustix::event::Timespec {
                    tv_sec: d.as_secs() as i64,
                    tv_nsec: i64::from(d.subsec_nanos()),
                }
            });
            events.clear();
            match epoll::wait(
                &self.ep,
                rustix::buffer::spare_capacity(&mut events),
                timeout.as_ref(),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    // Not expected; never give up the loop over it, but do not spin either.
                    self.ctx
                        .log
                        .say(Level::Error, format_args!("epoll_wait: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            for ev in events.iter() {
                match ev.data.u64() {
                    SIGNALFD => self.on_signals(&mut received),
                    t if t == OUTPUT_BASE || t == OUTPUT_BASE + 1 => {
                        let stream = if t == OUTPUT_BASE {
                            Stream::Stdout
                        } else {
                            Stream::Stderr
                        };
                        if let Some(logs) = &mut self.ctx.logs {
                            logs.write_out(stream);
                        }
                    }
                    control::LISTENER_TOKEN => self.accept(),
                    t if t >= probes::NOTIFY_BASE => {
                        for svc in self.notify.on_event(&self.ep, t) {
                            if let Some(generation) = self.sup.running_generation(ServiceId(svc)) {
                                let now = self.now();
                                self.sup.handle(
                                    now,
                                    Input::ReadyNotify {
                                        svc: ServiceId(svc),
                                        generation,
                                    },
                                );
                            }
                        }
                    }
                    t if t >= probes::PROBE_BASE => {
                        let results = self.probes.on_event(&self.ep, t, Instant::now());
                        self.probe_results(results);
                    }
                    http_server::HTTP_LISTENER_TOKEN => {
                        if let Some(server) = &mut self.ctx.http {
                            server.accept(&self.ep, Instant::now());
                        }
                    }
                    t if t >= http_server::HTTP_CONN_BASE => {
                        let conn = (t - http_server::HTTP_CONN_BASE) as usize;
                        let flags = ev.flags;
                        self.on_http(conn, flags);
                    }
                    t if t >= control::CONN_BASE => {
                        let conn = (t - control::CONN_BASE) as usize;
                        let flags = ev.flags;
                        if flags.contains(epoll::EventFlags::OUT) {
                            if let Some(server) = &mut self.ctx.control {
                                server.flush(&self.ep, conn);
                            }
                        }
                        if flags.intersects(
                            epoll::EventFlags::IN
                                | epoll::EventFlags::RDHUP
                                | epoll::EventFlags::HUP
                                | epoll::EventFlags::ERR,
                        ) {
                            let incoming = self
                                .ctx
                                .control
                                .as_mut()
                                .and_then(|s| s.read(&self.ep, conn));
                            if let Some(incoming) = incoming {
                                self.on_request(incoming);
                            }
                        }
                    }
                    t if t >= SOURCE_BASE => {
                        let svc = ((t - SOURCE_BASE) / 2) as usize;
                        let stream = if (t - SOURCE_BASE) % 2 == 0 {
                            Stream::Stdout
                        } else {
                            Stream::Stderr
                        };
                        if let Some(logs) = &mut self.ctx.logs {
                            logs.read(svc, stream, Instant::now());
                        }
                    }
                    _ => {}
                }
            }
            let now = self.now();
            if self.sup.poll_timeout().is_some_and(|at| now >= at) {
                self.sup.handle_timeout(now);
            }
            if let Some(logs) = &mut self.ctx.logs {
                logs.on_timeout(Instant::now());
            }
            if let Some(server) = &mut self.ctx.control {
                server.expire(&self.ep, Instant::now());
            }
            if let Some(server) = &mut self.ctx.http {
                server.expire(&self.ep, Instant::now());
            }
            let expired = self.probes.expire(&self.ep, Instant::now());
            self.probe_results(expired);
            self.poll_pid_files();
            self.forward_fresh_lines();
        }
    }

    /// Reads the pid files of daemons being waited for; found ones become their service's
    /// main process, as if just spawned.
    fn poll_pid_files(&mut self) {
        let sup = &self.sup;
        let answers = self
            .pid_files
            .poll(Instant::now(), self.me, |svc, generation| {
                !sup.is_retired(svc)
                    && matches!(
                        sup.service(svc).state,
                        ServiceState::Starting { generation: g, .. } if g == generation
                    )
            });
        for answer in answers {
            let now = self.now();
            match answer {
                pidfile::Answer::Found {
                    svc,
                    generation,
                    pid,
                    pgid,
                } => {
                    self.service_pids.insert(pid, svc);
                    self.sup.handle(
                        now,
                        Input::Adopted {
                            svc,
                            generation,
                            pid,
                            pgid,
                        },
                    );
                }
                pidfile::Answer::Failed {
                    svc,
                    generation,
                    message,
                } => self.sup.handle(
                    now,
                    Input::SpawnFailed {
                        svc,
                        generation,
                        kind: SpawnErrorKind::Other,
                        message,
                    },
                ),
            }
        }
    }

    /// The earliest of the core's deadline and the logs' partial-line deadline.
    fn next_wakeup(&self) -> Option<Instant> {
        let core = self
            .sup
            .poll_timeout()
            .map(|at| self.origin + at.since_origin());
        let logs = self.ctx.logs.as_ref().and_then(Logs::next_deadline);
        let control = self
            .ctx
            .control
            .as_ref()
            .and_then(ControlServer::next_deadline);
        let probes = [self.probes.next_deadline(), self.pid_files.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let http = self.ctx.http.as_ref().and_then(HttpServer::next_deadline);
        [core, logs, control, probes, http]
            .into_iter()
            .flatten()
            .min()
    }

    /// Executes actions and answers the core's questions until nothing is left to do.
    /// Returns the exit code once the core asks to exit.
    fn settle(&mut self) -> Option<u8> {
        loop {
            let mut progressed = false;
            while let Some(action) = self.sup.poll_action() {
                progressed = true;
                if let Some(code) = self.execute(action) {
                    return Some(code);
                }
            }
            // Groups whose main process is gone: report the ones with nobody left.
            let awaited: Vec<Pid> = self.sup.awaited_groups().collect();
            for pgid in awaited {
                if process::group_is_empty(pgid) {
                    progressed = true;
                    let now = self.now();
                    self.sup.handle(now, Input::GroupEmpty { pgid });
                }
            }
            if !progressed {
                return None;
            }
        }
    }

    fn execute(&mut self, action: Action) -> Option<u8> {
        match action {
            Action::Spawn { svc, generation } => self.spawn(svc, generation),
            Action::Kill { target, signal } => {
                self.kill(target, signal);
                if target == KillTarget::Everyone {
                    // If nobody is left, no SIGCHLD will ever say so: ask the reaper now.
                    self.reap_all();
                }
            }
            Action::Log(note) => match (&mut self.ctx.logs, self.ctx.log.render_note(&note)) {
                // In supervisor mode tend's lines join the same queue as the services' lines,
                // so they never land in the middle of one.
                (Some(logs), Some(line)) => logs.tend_line(&line),
                (None, Some(line)) => {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
                (_, None) => {}
            },
            Action::Reply { id, results } => {
                let results = results
                    .into_iter()
                    .map(|r| proto::ServiceResult {
                        service: self.sup.name(r.svc).to_string(),
                        ok: r.ok,
                        message: r.message,
                    })
                    .collect();
                if let (Some(conn), Some(server)) =
                    (self.waiting.remove(&id), &mut self.ctx.control)
                {
                    server.reply(&self.ep, conn, &Response::Done { results });
                }
            }
            Action::ReadPidFile { svc, generation } => {
                let path = self.sup.service_spec(svc).and_then(|s| s.pid_file.clone());
                if let Some(path) = path {
                    self.pid_files.add(svc, generation, path, Instant::now());
                    self.poll_pid_files();
                }
            }
            Action::Probe {
                svc,
                generation,
                health,
            } => self.start_probe(svc, generation, health),
            Action::Exit(code) => return Some(code),
        }
        None
    }

    /// Starts an instance of `svc` and tells the core how that went.
    fn spawn(&mut self, svc: ServiceId, generation: core::Generation) {
        let Some(spec) = self.sup.service_spec(svc) else {
            return; // The core hands out only its own ids.
        };
        // Readiness plumbing for this instance: a fresh pipe or socket each time, so a
        // late message from an earlier instance cannot make this one ready.
        let mut extra = spawn::Extra::default();
        let mut keep_until_spawned = None;
        let mut warning = None;
        if let (Some(rule), Some(dir)) = (&spec.ready, &self.ctx.notify_dir) {
            if !rule.probe.is_polled() {
                match self.notify.prepare(
                    &self.ep,
                    svc.0,
                    &rule.probe,
                    dir,
                    spec.launch.credentials.as_ref(),
                ) {
                    Ok(prepared) => {
                        if let Some((fd, n)) = prepared.fd_map {
                            extra.fds.push((std::os::fd::AsRawFd::as_raw_fd(&fd), n));
                            keep_until_spawned = Some(fd);
                        }
                        extra.env.extend(prepared.env);
                    }
                    Err(e) => {
                        warning = Some(format!(
                            "'{}': cannot set up its readiness notification: {e}",
                            spec.name
                        ));
                    }
                }
            }
        }
        let launch = &spec.launch;
        let stdio = match (&self.ctx.logs, launch.output) {
            (Some(logs), Output::Prefixed) => match logs.child_fds(svc.0) {
                Some((stdout, stderr)) => Ok(ChildStdio::Pipes { stdout, stderr }),
                None => Err(spawn::SpawnError {
                    out_of_resources: false,
                    kind: SpawnErrorKind::Other,
                    message: "tend has no log pipes for it".into(),
                }),
            },
            _ => Ok(ChildStdio::Inherit),
        };
        let result =
            stdio.and_then(|stdio| spawn::spawn(launch, &self.ctx.inherited, stdio, &extra));
        // tend's copy of the notification pipe's write end must go, or it never sees EOF.
        drop(keep_until_spawned);
        if let Some(text) = warning {
            self.say(Level::Warn, &text);
        }
        let input = match result {
            // Registered before the next reap: this thread reaps only between actions.
            Ok(pid) => {
                self.service_pids.insert(pid, svc);
                Input::Spawned {
                    svc,
                    generation,
                    pid,
                }
            }
            Err(e) => Input::SpawnFailed {
                svc,
                generation,
                kind: e.kind,
                message: e.message,
            },
        };
        let now = self.now();
        self.sup.handle(now, input);
    }

    /// An event on an HTTP probe connection: answered from the supervisor's state.
    fn on_http(&mut self, conn: usize, flags: epoll::EventFlags) {
        let now = self.now();
        let uptime = self.origin.elapsed();
        let Some(server) = &mut self.ctx.http else {
            return;
        };
        if flags.contains(epoll::EventFlags::OUT) {
            server.flush(&self.ep, conn);
        }
        if flags.intersects(
            epoll::EventFlags::IN
                | epoll::EventFlags::RDHUP
                | epoll::EventFlags::HUP
                | epoll::EventFlags::ERR,
        ) {
            let sup = &self.sup;
            server.read(&self.ep, conn, Instant::now(), || {
                // /readyz turns 503 the moment shutdown starts (health says so).
                let (ready, ready_reason) = status::health(sup, now);
                Snapshot {
                    alive: true,
                    ready,
                    ready_reason,
                    metrics: metrics::render(sup, now, uptime),
                }
            });
        }
    }

    fn accept(&mut self) {
        let Some(server) = &mut self.ctx.control else {
            return;
        };
        for note in server.accept(&self.ep, Instant::now()) {
            self.say(Level::Warn, &note);
        }
    }

    /// A line for tend's own diagnostics, through the log queue in supervisor mode.
    fn say(&mut self, level: Level, text: &str) {
        if let Some(line) = self.ctx.log.render(level, format_args!("{text}")) {
            match &mut self.ctx.logs {
                Some(logs) => logs.tend_line(&line),
                None => {
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                }
            }
        }
    }

    fn on_signals(&mut self, received: &mut Vec<Received>) {
        received.clear();
        if let Err(e) = self.ctx.signals.read_all(received) {
            self.ctx
                .log
                .say(Level::Error, format_args!("reading signals: {e}"));
            return;
        }
        self.handle_signals(received);
    }

    fn handle_signals(&mut self, received: &[Received]) {
        let mut reap_needed = false;
        for r in received.iter() {
            if r.signal == Signal::CHLD {
                reap_needed = true;
            } else if r.signal == Signal::HUP && self.reload_on_hup() {
                let _ = self.reload();
            } else if r.signal == Signal::PIPE && r.sender == self.me.0 {
                // tend's own write to a closed pipe: an error return handles it.
            } else {
                let now = self.now();
                self.sup.handle(now, Input::Signal(r.signal));
            }
        }
        if reap_needed {
            self.reap_all();
        }
    }

    /// SIGHUP reloads in supervisor mode, unless it was made a shutdown signal.
    fn reload_on_hup(&self) -> bool {
        match self.sup.spec().signals {
            SignalRouting::Supervise { shutdown } => {
                self.ctx.config_path.is_some() && !shutdown.contains(Signal::HUP)
            }
            SignalRouting::ForwardToMain { .. } => false,
        }
    }

    /// waitpid(-1, WNOHANG) until nothing is left to collect; every pid goes to the core,
    /// which tells services from adopted orphans.
    fn reap_all(&mut self) {
        loop {
            match reap::reap_one() {
                Ok(Reaped::Child(pid, status)) => {
                    // Exec probes are children too: their exits are results, not orphans.
                    match self.probes.on_child_exit(pid.0, status) {
                        ChildExit::NotProbe => {}
                        ChildExit::Ignored => continue,
                        ChildExit::Finished(key, ok) => {
                            self.probe_results(vec![(key, ok)]);
                            continue;
                        }
                    }
                    if let Some(svc) = self.service_pids.remove(&pid) {
                        // Probes of the instance that just ended are moot.
                        self.probes.cancel_service(&self.ep, svc.0);
                        // Its last words come before anything tend says about its exit.
                        if let Some(logs) = &mut self.ctx.logs {
                            logs.drain_service(svc.0, Instant::now());
                        }
                    }
                    let now = self.now();
                    self.sup.handle(now, Input::ChildExited { pid, status });
                }
                Ok(Reaped::NoneReady) => return,
                Ok(Reaped::NoChildren) => {
                    let now = self.now();
                    self.sup.handle(now, Input::NoChildren);
                    return;
                }
                Err(e) => {
                    self.ctx.log.say(Level::Error, format_args!("waitpid: {e}"));
                    return;
                }
            }
        }
    }

    fn kill(&self, target: KillTarget, signal: Signal) {
        let result = match target {
            KillTarget::Process(pid) => process::kill(pid.0, signal),
            KillTarget::Group(pid) => process::kill(-pid.0, signal),
            KillTarget::Everyone if self.ctx.is_pid1 => match process::kill(-1, signal) {
                // Nobody left to signal is the good case.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                other => other,
            },
            KillTarget::Everyone => {
                for pid in process::descendants(self.me) {
                    let _ = process::kill(pid.0, signal);
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            let level = if e.raw_os_error() == Some(libc::ESRCH) {
                Level::Debug
            } else {
                Level::Warn
            };
            self.ctx
                .log
                .say(level, format_args!("sending {signal} to {target:?}: {e}"));
        }
    }

    /// Back-pressure: services feeding a congested output are not read; outputs with queued
    /// bytes are watched for writability.
    fn update_interest(&mut self) {
        let Some(logs) = &mut self.ctx.logs else {
            return;
        };
        for (svc, stream, paused) in logs.update_pauses(Instant::now()) {
            let flags = if paused {
                epoll::EventFlags::empty()
            } else {
                epoll::EventFlags::IN
            };
            let token = SOURCE_BASE + svc as u64 * 2 + stream as u64;
            if let Some(fd) = logs.read_fd(svc, stream) {
                let _ = epoll::modify(&self.ep, fd, epoll::EventData::new_u64(token), flags);
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
                    let token = OUTPUT_BASE + stream as u64;
                    let _ = epoll::modify(&self.ep, fd, epoll::EventData::new_u64(token), flags);
                }
                *watching = want;
            }
        }
    }
}

fn register_sources(ep: &std::os::fd::OwnedFd, logs: &Logs) -> std::io::Result<()> {
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
    ep: &std::os::fd::OwnedFd,
    svc: usize,
    stream: Stream,
    fd: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<()> {
    let token = SOURCE_BASE + svc as u64 * 2 + stream as u64;
    epoll::add(
        ep,
        fd,
        epoll::EventData::new_u64(token),
        epoll::EventFlags::IN,
    )?;
    Ok(())
}
