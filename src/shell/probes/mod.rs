//! Probe runners driven by the event loop: polled checks (`tcp`, `http`, `exec`) and
//! notification-based readiness (`notify-fd`, `sd-notify`).
//!
//! Everything here is non-blocking and lives in the loop's epoll instance: no threads, no
//! sleeping, no waiting on children. Exec probes are ordinary children reaped by the loop's
//! one reaper (invariant 1), which hands their exits to [`Probes::on_child_exit`].
//!
//! Host names are resolved without blocking by `dns` (libc's resolver blocks, and in a
//! static binary may crash in NSS, invariant 3): an attempt that needs DNS starts as a
//! lookup on a UDP socket in the loop's epoll, and goes on to connect once it has an address.

pub mod dns;
pub mod http;

use crate::core::{Credentials, ExitStatus, HttpTarget, Launch, Probe, SessionMode};
use crate::shell::token::{self, Token};
use crate::sys::process;
use crate::sys::signals::Inherited;
use crate::sys::spawn::{self, ChildStdio};
use dns::Lookup;
use http::StatusLine;
use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Attempt ids wrap below this (what a `Token::Probe` can hold).
const ATTEMPT_IDS: u64 = token::NUMBERS;

/// Why an attempt could not be begun.
#[derive(Debug)]
enum Begin {
    /// A failed attempt: the service's answer, or its address, is wrong.
    Failed(String),
    /// tend could not make the attempt at all (no descriptor or process to spare): no
    /// verdict on the service.
    NotRun(String),
}

impl From<String> for Begin {
    fn from(reason: String) -> Begin {
        Begin::Failed(reason)
    }
}

impl Begin {
    fn reason(self) -> String {
        match self {
            Begin::Failed(reason) | Begin::NotRun(reason) => reason,
        }
    }
}

/// An attempt `Probes::start` could not make, for a reason of tend's own: the core counts
/// nothing and asks again one interval later.
#[derive(Debug)]
pub struct NotRun(pub String);

/// Which check a result belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub svc: usize,
    pub generation: u64,
    /// The health check (true) or the readiness check (false).
    pub health: bool,
}

/// What a reaped pid meant to the probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildExit {
    /// Not an exec probe: the core must hear of it.
    NotProbe,
    /// An exec probe whose attempt was already settled (timed out, cancelled or superseded):
    /// nobody needs its status, and the core must not see the pid either.
    Ignored,
    /// An exec probe's result: exit 0 is a pass.
    Finished(ProbeKey, bool),
}

/// Polled probes: tcp, http and exec attempts in flight.
pub struct Probes {
    attempts: HashMap<u64, Attempt>,
    /// The attempt running for each (service, health?) pair. A new attempt supersedes any
    /// older one of the same pair, whatever its generation.
    by_slot: HashMap<(usize, bool), u64>,
    /// Running exec probes.
    by_pid: HashMap<i32, u64>,
    /// Exec probes killed or abandoned whose exit is still to come through the reaper. The
    /// pid cannot be reused before tend reaps it, so the entry stays unambiguous.
    abandoned: HashSet<i32>,
    /// Attempts that ended inside `start` (bad address, refused at once, spawn failed). They
    /// are handed out by `expire`, due at once, so `start` itself never returns a result.
    settled: Vec<(ProbeKey, bool, Instant)>,
    /// Why the latest attempt of a (service, health?) pair failed, for the loop's log line.
    reasons: HashMap<(usize, bool), (u64, String)>,
    next_id: u64,
    /// Exec probes write here, so periodic checks do not flood the container's log.
    devnull: Option<OwnedFd>,
    /// How host names are looked up.
    pub resolver: dns::Resolver,
}

struct Attempt {
    key: ProbeKey,
    deadline: Instant,
    timeout: Duration,
    work: Work,
}

enum Work {
    /// Waiting for DNS; then connect for a tcp probe, or for an http one with this target.
    Resolving(Lookup, Option<HttpTarget>),
    Tcp(OwnedFd),
    Http(HttpExchange),
    Exec(i32),
}

struct HttpExchange {
    sock: OwnedFd,
    connected: bool,
    request: Vec<u8>,
    sent: usize,
    response: Vec<u8>,
}

/// An attempt's fate after an event: still going, or decided (a failure with its reason).
type Progress = Option<Result<(), String>>;

impl Default for Probes {
    fn default() -> Self {
        Probes::new()
    }
}

impl Probes {
    pub fn new() -> Probes {
        Probes {
            attempts: HashMap::new(),
            by_slot: HashMap::new(),
            by_pid: HashMap::new(),
            abandoned: HashSet::new(),
            settled: Vec::new(),
            reasons: HashMap::new(),
            next_id: 0,
            devnull: None,
            resolver: dns::Resolver::default(),
        }
    }

    /// Starts one attempt, which ends by `now + timeout`. An attempt still running for the
    /// same service and check (any generation) is cancelled first. Exec probes run in a
    /// session of their own with stdin, stdout and stderr on /dev/null; their pid is known
    /// here before this returns, so before the loop's next reap.
    ///
    /// Returns Err for an attempt not made: a probe kind that is not polled, or tend short
    /// of descriptors or processes to make it with (no verdict on the service). Every other
    /// failure (bad address, refused at once, the check command not found) is a failed
    /// attempt, delivered by `expire` at once (`next_deadline` is then `now`), its reason in
    /// `failure_reason`.
    pub fn start(
        &mut self,
        ep: &OwnedFd,
        key: ProbeKey,
        probe: &Probe,
        timeout: Duration,
        now: Instant,
        inherited: &Inherited,
    ) -> Result<(), NotRun> {
        if !probe.is_polled() {
            return Err(NotRun(format!(
                "{} is not a polled probe",
                probe_name(probe)
            )));
        }
        self.cancel_slot(ep, key.svc, key.health);
        self.settled
            .retain(|(k, _, _)| (k.svc, k.health) != (key.svc, key.health));
        let id = self.allocate_id();
        let work = self
            .begin(probe, now, timeout, inherited)
            .and_then(|work| watch(ep, id, work));
        let work = match work {
            Err(Begin::NotRun(reason)) => return Err(NotRun(reason)),
            Err(Begin::Failed(reason)) => Err(reason),
            Ok(work) => Ok(work),
        };
        match work {
            Ok(work) => {
                if let Work::Exec(pid) = work {
                    self.by_pid.insert(pid, id);
                }
                self.attempts.insert(
                    id,
                    Attempt {
                        key,
                        deadline: deadline_after(now, timeout),
                        timeout,
                        work,
                    },
                );
                self.by_slot.insert((key.svc, key.health), id);
            }
            Err(reason) => {
                self.note(key, false, reason);
                self.settled.push((key, false, now));
            }
        }
        Ok(())
    }

    /// Handles readiness of attempt `id`'s socket (`Token::Probe`). Returns the attempts that
    /// ended: at most one, or none for a stale token of an attempt already settled.
    /// (An answer that comes in counts even if its deadline has just passed, since `expire`
    /// has not failed it; `now` times a DNS lookup's next query.)
    pub fn on_event(&mut self, ep: &OwnedFd, id: u64, now: Instant) -> Vec<(ProbeKey, bool)> {
        let Some(attempt) = self.attempts.get_mut(&id) else {
            return Vec::new();
        };
        let progress = match &mut attempt.work {
            Work::Resolving(lookup, target) => match lookup.on_readable(now) {
                dns::Step::Waiting => None,
                dns::Step::Failed(reason) => Some(Err(reason)),
                dns::Step::Found(addr) => {
                    // On to connecting, under the same token; the lookup's socket goes.
                    let _ = epoll::delete(ep, &lookup.sock);
                    let next = match target.take() {
                        None => connect(addr).map(Work::Tcp),
                        Some(target) => http_work(addr, &target),
                    };
                    match next.and_then(|work| watch(ep, id, work)) {
                        Ok(work) => {
                            attempt.work = work;
                            None
                        }
                        Err(begin) => Some(Err(begin.reason())),
                    }
                }
            },
            Work::Tcp(sock) => Some(check_connected(sock)),
            Work::Http(x) => x.advance(ep, Token::Probe(id)),
            // Exec attempts have no fd; a token naming one is stale.
            Work::Exec(_) => None,
        };
        match progress {
            None => Vec::new(),
            Some(result) => self.finish(ep, id, result).into_iter().collect(),
        }
    }

    /// The loop's reaper found `pid` gone. Exec probes are answered here and must then not
    /// go to the core; anything else is `NotProbe`. Call it for every reaped pid before
    /// anything else touches `Probes`: until then a probe's pid counts as alive, and
    /// `expire` or `cancel_service` would signal its (by then reusable) group.
    pub fn on_child_exit(&mut self, pid: i32, status: ExitStatus) -> ChildExit {
        if self.abandoned.remove(&pid) {
            return ChildExit::Ignored;
        }
        let Some(id) = self.by_pid.remove(&pid) else {
            return ChildExit::NotProbe;
        };
        let Some(attempt) = self.attempts.remove(&id) else {
            return ChildExit::Ignored;
        };
        let key = attempt.key;
        if self.by_slot.get(&(key.svc, key.health)) == Some(&id) {
            self.by_slot.remove(&(key.svc, key.health));
        }
        let ok = status == ExitStatus::Exited(0);
        self.note(key, ok, format!("the check command ended with {status}"));
        ChildExit::Finished(key, ok)
    }

    /// The earliest moment `expire` has something to do: an attempt's deadline, a DNS query
    /// to send again, or `now` of a `start` whose attempt ended at once.
    pub fn next_deadline(&self) -> Option<Instant> {
        let running = self.attempts.values().map(|a| match &a.work {
            Work::Resolving(lookup, _) => a.deadline.min(lookup.resend_at()),
            _ => a.deadline,
        });
        let settled = self.settled.iter().map(|(_, _, at)| *at);
        running.chain(settled).min()
    }

    /// Fails every attempt past its deadline (sockets closed; exec probes get SIGKILL on
    /// their process group and their exit, when reaped, is `Ignored`), hands out the
    /// attempts that ended inside `start`, and sends unanswered DNS queries again.
    pub fn expire(&mut self, ep: &OwnedFd, now: Instant) -> Vec<(ProbeKey, bool)> {
        let mut out: Vec<(ProbeKey, bool)> = Vec::new();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.settled)
            .into_iter()
            .partition(|(_, _, at)| *at <= now);
        self.settled = later;
        out.extend(due.into_iter().map(|(key, ok, _)| (key, ok)));
        let mut expired: Vec<(u64, Instant)> = self
            .attempts
            .iter()
            .filter(|(_, a)| a.deadline <= now)
            .map(|(id, a)| (*id, a.deadline))
            .collect();
        // Oldest first, so results come out in a stable order.
        expired.sort_by_key(|(id, deadline)| (*deadline, *id));
        for (id, _) in expired {
            let Some(attempt) = self.attempts.get(&id) else {
                continue;
            };
            let within = humantime::format_duration(attempt.timeout);
            let reason = match attempt.work {
                Work::Exec(_) => format!("the check command did not finish within {within}"),
                Work::Resolving(..) => format!("no address from DNS within {within}"),
                Work::Tcp(_) | Work::Http(_) => format!("no answer within {within}"),
            };
            out.extend(self.finish(ep, id, Err(reason)));
        }
        // Lookups still in time whose query went unanswered: ask again.
        let mut lost = Vec::new();
        for (id, attempt) in &mut self.attempts {
            if let Work::Resolving(lookup, _) = &mut attempt.work {
                if lookup.resend_at() <= now {
                    if let dns::Step::Failed(reason) = lookup.resend(now) {
                        lost.push((*id, reason));
                    }
                }
            }
        }
        lost.sort_by_key(|(id, _)| *id);
        for (id, reason) in lost {
            out.extend(self.finish(ep, id, Err(reason)));
        }
        out
    }

    /// A service instance is gone: its attempts end without a result (exec probes are
    /// killed, their exits later `Ignored`), and nothing about it is kept.
    pub fn cancel_service(&mut self, ep: &OwnedFd, svc: usize) {
        for health in [false, true] {
            self.cancel_slot(ep, svc, health);
            self.reasons.remove(&(svc, health));
        }
        self.settled.retain(|(k, _, _)| k.svc != svc);
    }

    /// Why the latest finished attempt for `key` failed (None if it passed, or belonged to
    /// another generation); for the loop's log line next to a failed result.
    pub fn failure_reason(&self, key: ProbeKey) -> Option<&str> {
        match self.reasons.get(&(key.svc, key.health)) {
            Some((generation, reason)) if *generation == key.generation => Some(reason),
            _ => None,
        }
    }

    fn allocate_id(&mut self) -> u64 {
        loop {
            let id = self.next_id;
            self.next_id = (self.next_id + 1) % ATTEMPT_IDS;
            if !self.attempts.contains_key(&id) {
                return id;
            }
        }
    }

    fn note(&mut self, key: ProbeKey, ok: bool, reason: String) {
        if ok {
            self.reasons.remove(&(key.svc, key.health));
        } else {
            self.reasons
                .insert((key.svc, key.health), (key.generation, reason));
        }
    }

    /// Ends attempt `id` with `result` and returns it as a result.
    fn finish(
        &mut self,
        ep: &OwnedFd,
        id: u64,
        result: Result<(), String>,
    ) -> Option<(ProbeKey, bool)> {
        let attempt = self.drop_attempt(ep, id)?;
        let ok = result.is_ok();
        self.note(attempt.key, ok, result.err().unwrap_or_default());
        Some((attempt.key, ok))
    }

    /// Removes attempt `id` without a result: sockets leave epoll and close, an exec probe's
    /// group is killed.
    fn drop_attempt(&mut self, ep: &OwnedFd, id: u64) -> Option<Attempt> {
        let attempt = self.attempts.remove(&id)?;
        let slot = (attempt.key.svc, attempt.key.health);
        if self.by_slot.get(&slot) == Some(&id) {
            self.by_slot.remove(&slot);
        }
        match &attempt.work {
            // Closing would drop the registration too, but only once every duplicate of the
            // socket is gone (a concurrent fork holds one until its exec); be explicit.
            Work::Tcp(sock) => {
                let _ = epoll::delete(ep, sock);
            }
            Work::Resolving(lookup, _) => {
                let _ = epoll::delete(ep, &lookup.sock);
            }
            Work::Http(x) => {
                let _ = epoll::delete(ep, &x.sock);
            }
            Work::Exec(pid) => {
                self.by_pid.remove(pid);
                // The probe runs in its own session, so its group is its pid: whatever it
                // started goes too. Failure (ESRCH) means it is already a zombie; either way
                // its exit is still to be reaped and must be recognised then.
                let _ = process::kill(-*pid, crate::core::Signal::KILL);
                self.abandoned.insert(*pid);
            }
        }
        Some(attempt)
    }

    fn cancel_slot(&mut self, ep: &OwnedFd, svc: usize, health: bool) {
        if let Some(id) = self.by_slot.remove(&(svc, health)) {
            self.drop_attempt(ep, id);
        }
    }

    /// The attempt's first step: a lookup, a connection under way, or a running command.
    fn begin(
        &mut self,
        probe: &Probe,
        now: Instant,
        timeout: Duration,
        inherited: &Inherited,
    ) -> Result<Work, Begin> {
        match probe {
            Probe::Tcp { target } => {
                match dns::resolve(&self.resolver, &target.host, target.port, now, timeout)? {
                    Ok(addr) => Ok(Work::Tcp(connect(addr)?)),
                    Err(lookup) => Ok(Work::Resolving(lookup, None)),
                }
            }
            Probe::Http { target } => {
                match dns::resolve(&self.resolver, &target.host, target.port, now, timeout)? {
                    Ok(addr) => http_work(addr, target),
                    Err(lookup) => Ok(Work::Resolving(lookup, Some(target.clone()))),
                }
            }
            Probe::Exec { argv } => self.spawn_exec(argv, inherited).map(Work::Exec),
            Probe::NotifyFd { .. } | Probe::SdNotify => Err(Begin::NotRun(format!(
                "{} is not a polled probe",
                probe_name(probe)
            ))),
        }
    }

    fn spawn_exec(&mut self, argv: &[OsString], inherited: &Inherited) -> Result<i32, Begin> {
        let launch = Launch::command(argv.to_vec(), SessionMode::NewSession);
        if self.devnull.is_none() {
            self.devnull = rustix::fs::open(
                "/dev/null",
                rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok();
        }
        // Without /dev/null (a very bare container), tend's own outputs are the fallback.
        let stdio = match &self.devnull {
            Some(fd) => ChildStdio::Pipes {
                stdout: fd.as_fd(),
                stderr: fd.as_fd(),
            },
            None => ChildStdio::Inherit,
        };
        spawn::spawn(&launch, inherited, stdio, &spawn::Extra::default())
            .map(|pid| pid.0)
            .map_err(|e| {
                let reason = format!("cannot run the check command: {}", e.message);
                if e.out_of_resources {
                    Begin::NotRun(reason)
                } else {
                    Begin::Failed(reason)
                }
            })
    }
}

impl HttpExchange {
    /// Connect, then send the request, then read until the status line is known.
    fn advance(&mut self, ep: &OwnedFd, token: Token) -> Progress {
        if !self.connected {
            if let Err(reason) = check_connected(&self.sock) {
                return Some(Err(reason));
            }
            self.connected = true;
        }
        while self.sent < self.request.len() {
            let rest = self.request.get(self.sent..).unwrap_or_default();
            match net::send(&self.sock, rest, SendFlags::NOSIGNAL) {
                Ok(n) => self.sent += n,
                Err(Errno::AGAIN) => return None,
                Err(Errno::INTR) => {}
                Err(e) => return Some(Err(format!("sending the request: {}", os_error(e)))),
            }
            if self.sent == self.request.len() {
                let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
                if let Err(e) = epoll::modify(ep, &self.sock, token.data(), interest) {
                    return Some(Err(format!("epoll: {}", os_error(e))));
                }
            }
        }
        let mut chunk = [0u8; 4096];
        loop {
            let room = http::MAX_RESPONSE_HEAD.saturating_sub(self.response.len());
            if room == 0 {
                return Some(Err(format!(
                    "no status line in the first {} bytes",
                    http::MAX_RESPONSE_HEAD
                )));
            }
            let want = room.min(chunk.len());
            let into = chunk.get_mut(..want).unwrap_or_default();
            match net::recv(&self.sock, into, RecvFlags::empty()) {
                Ok((_, 0)) => {
                    return Some(match http::parse_status(&self.response) {
                        StatusLine::Code(code) => judge(code),
                        StatusLine::Malformed(why) => Err(format!("not an HTTP answer: {why}")),
                        StatusLine::NeedMore if self.response.is_empty() => {
                            Err("the server closed the connection without answering".into())
                        }
                        StatusLine::NeedMore => {
                            Err("the connection closed in the middle of the status line".into())
                        }
                    });
                }
                Ok((_, n)) => {
                    self.response
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    match http::parse_status(&self.response) {
                        StatusLine::Code(code) => return Some(judge(code)),
                        StatusLine::Malformed(why) => {
                            return Some(Err(format!("not an HTTP answer: {why}")));
                        }
                        StatusLine::NeedMore => {}
                    }
                }
                Err(Errno::AGAIN) => return None,
                Err(Errno::INTR) => {}
                Err(e) => return Some(Err(format!("reading the answer: {}", os_error(e)))),
            }
        }
    }
}

fn judge(code: u16) -> Result<(), String> {
    if http::is_success(code) {
        Ok(())
    } else {
        Err(format!("HTTP status {code}"))
    }
}

/// A socket that was connecting has become writable (or reported an error): did it work?
fn check_connected(sock: &OwnedFd) -> Result<(), String> {
    match net::sockopt::socket_error(sock) {
        Err(e) => Err(format!("SO_ERROR: {}", os_error(e))),
        Ok(Err(e)) => Err(format!("connect: {}", os_error(e))),
        // epoll reports hang-ups whatever the interest; a socket without a peer has failed,
        // and must not be left registered to wake the loop again and again.
        Ok(Ok(())) => match net::getpeername(sock) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("connect: {}", os_error(e))),
        },
    }
}

/// A non-blocking connect: the answer comes as EPOLLOUT.
fn connect(addr: SocketAddr) -> Result<OwnedFd, Begin> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::INET,
        SocketAddr::V6(_) => AddressFamily::INET6,
    };
    let sock = net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| short_of(e, format!("cannot open a socket: {}", os_error(e))))?;
    match net::connect(&sock, &addr) {
        Ok(()) | Err(Errno::INPROGRESS) => Ok(sock),
        Err(e) => Err(Begin::Failed(format!("connect to {addr}: {}", os_error(e)))),
    }
}

/// `reason` as an attempt not made when `e` says tend is short of descriptors or memory,
/// else as a failed one.
fn short_of(e: Errno, reason: String) -> Begin {
    if spawn::is_out_of_resources(&io::Error::from(e)) || e == Errno::NOBUFS {
        Begin::NotRun(reason)
    } else {
        Begin::Failed(reason)
    }
}

/// An http exchange begun: connecting to `addr`, the request for `target` ready to go.
fn http_work(addr: SocketAddr, target: &HttpTarget) -> Result<Work, Begin> {
    Ok(Work::Http(HttpExchange {
        sock: connect(addr)?,
        connected: false,
        request: http::request(target),
        sent: 0,
        response: Vec::new(),
    }))
}

/// Registers the attempt's socket under its token: a lookup waits to read, a connection
/// to become writable (connected or refused; SO_ERROR tells which).
fn watch(ep: &OwnedFd, id: u64, work: Work) -> Result<Work, Begin> {
    let (sock, flags) = match &work {
        Work::Resolving(lookup, _) => (&lookup.sock, epoll::EventFlags::IN),
        Work::Tcp(sock) => (sock, epoll::EventFlags::OUT),
        Work::Http(x) => (&x.sock, epoll::EventFlags::OUT),
        Work::Exec(_) => return Ok(work),
    };
    match epoll::add(ep, sock, Token::Probe(id).data(), flags) {
        Ok(()) => Ok(work),
        Err(e) => Err(short_of(e, format!("epoll: {}", os_error(e)))),
    }
}

fn probe_name(probe: &Probe) -> &'static str {
    match probe {
        Probe::Tcp { .. } => "tcp",
        Probe::Http { .. } => "http",
        Probe::Exec { .. } => "exec",
        Probe::NotifyFd { .. } => "notify-fd",
        Probe::SdNotify => "sd-notify",
    }
}

/// `now + timeout`, or as far as `Instant` goes for an absurd timeout.
fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    let mut step = timeout;
    loop {
        if let Some(at) = now.checked_add(step) {
            return at;
        }
        step /= 2;
    }
}

/// The OS error text without Rust's " (os error N)" suffix.
fn os_error(e: Errno) -> String {
    let text = io::Error::from(e).to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

// ---------------------------------------------------------------------------------------------

/// What a service's next instance needs for its readiness notification. Keep it until the
/// instance is spawned, then drop it: `fd_map`'s descriptor is tend's copy of the pipe's write
/// end, and while tend holds it, the pipe cannot report the service's end of it.
#[derive(Debug, Default)]
pub struct Prepared {
    /// notify-fd: dup2 this descriptor to this fd number in the child (dup2 clears
    /// close-on-exec on the copy; the original is close-on-exec).
    pub fd_map: Option<(OwnedFd, i32)>,
    /// sd-notify: `NOTIFY_SOCKET=<path>` for the child's environment.
    pub env: Option<(OsString, OsString)>,
}

/// Notification-based readiness: one channel per service, made anew for every instance so a
/// message from an old instance (or one still queued) cannot make a new one ready.
#[derive(Default)]
pub struct Notify {
    channels: HashMap<usize, Channel>,
}

struct Channel {
    kind: ChannelKind,
    /// Readiness is reported once per instance.
    reported: bool,
}

enum ChannelKind {
    /// The read end of the notify-fd pipe.
    Pipe(OwnedFd),
    /// The sd_notify socket and where it is bound.
    Socket(OwnedFd, PathBuf),
}

/// Datagrams or pipe reads handled per wake-up, so a chatty service cannot hold the loop;
/// level-triggered epoll brings the rest.
const NOTIFY_READS_PER_EVENT: usize = 64;

impl Notify {
    pub fn new() -> Notify {
        Notify::default()
    }

    /// Prepares the readiness channel of service `svc`'s next instance, replacing the
    /// previous one.
    ///
    /// - `NotifyFd { fd }`: a pipe; the child gets its write end as fd `fd` (3 or more).
    ///   A newline on it means ready.
    /// - `SdNotify`: a datagram socket bound at `dir/<svc>.sock`, named to the child by
    ///   `NOTIFY_SOCKET`. A datagram with a line `READY=1` means ready; other fields are
    ///   ignored. `dir` is created if needed with mode 0711 (it must be owned by tend's user):
    ///   services running as another user can reach their own socket but cannot list the
    ///   others. Its parent must be searchable by such services, so it cannot live inside the
    ///   control socket's 0700 directory. Each socket is mode 0600, owned by `owner` (the
    ///   service's credentials, if it switches user) so only its service may send to it.
    ///
    /// Fails with InvalidInput for a polled probe, or with the system's error.
    pub fn prepare(
        &mut self,
        ep: &OwnedFd,
        svc: usize,
        probe: &Probe,
        dir: &Path,
        owner: Option<&Credentials>,
    ) -> io::Result<Prepared> {
        self.remove(ep, svc);
        let token = Token::Notify(svc).data();
        match probe {
            Probe::NotifyFd { fd } => {
                if *fd < 3 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "notify-fd {fd}: must be 3 or more (0-2 are stdin, stdout, stderr)"
                        ),
                    ));
                }
                let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                // Non-blocking only on the read end: the flag belongs to the open file
                // description, and the service's writes should behave as it expects.
                let flags = rustix::fs::fcntl_getfl(&read)?;
                rustix::fs::fcntl_setfl(&read, flags | rustix::fs::OFlags::NONBLOCK)?;
                epoll::add(ep, &read, token, epoll::EventFlags::IN)?;
                self.channels.insert(
                    svc,
                    Channel {
                        kind: ChannelKind::Pipe(read),
                        reported: false,
                    },
                );
                Ok(Prepared {
                    fd_map: Some((write, *fd)),
                    env: None,
                })
            }
            Probe::SdNotify => {
                ensure_private_dir(dir)?;
                let path = dir.join(format!("{svc}.sock"));
                let sock = bind_notify_socket(&path, owner)?;
                if let Err(e) = epoll::add(ep, &sock, token, epoll::EventFlags::IN) {
                    let _ = std::fs::remove_file(&path);
                    return Err(e.into());
                }
                let env = (
                    OsString::from("NOTIFY_SOCKET"),
                    path.clone().into_os_string(),
                );
                self.channels.insert(
                    svc,
                    Channel {
                        kind: ChannelKind::Socket(sock, path),
                        reported: false,
                    },
                );
                Ok(Prepared {
                    fd_map: None,
                    env: Some(env),
                })
            }
            Probe::Tcp { .. } | Probe::Http { .. } | Probe::Exec { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a notification", probe_name(probe)),
            )),
        }
    }

    /// Handles readiness of service `svc`'s channel (`Token::Notify`). Returns the services
    /// that have just said they are ready (each at most once per instance). A pipe whose
    /// writers are all gone is closed and removed from epoll.
    pub fn on_event(&mut self, ep: &OwnedFd, svc: usize) -> Vec<usize> {
        let Some(channel) = self.channels.get_mut(&svc) else {
            return Vec::new();
        };
        let mut ready = false;
        let mut closed = false;
        match &channel.kind {
            ChannelKind::Pipe(read) => {
                let mut buf = [0u8; 512];
                for _ in 0..NOTIFY_READS_PER_EVENT {
                    match rustix::io::read(read, &mut buf) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        // Anything after the first newline is drained and ignored (s6 stops
                        // listening at that point; draining spares a chatty service SIGPIPE).
                        Ok(n) => ready |= buf.get(..n).unwrap_or_default().contains(&b'\n'),
                        Err(Errno::INTR) => {}
                        Err(_) => break,
                    }
                }
            }
            ChannelKind::Socket(sock, _) => {
                // sd_notify messages are small; a longer one is cut here and its tail lost,
                // which can only hide fields tend ignores anyway.
                let mut buf = [0u8; 4096];
                for _ in 0..NOTIFY_READS_PER_EVENT {
                    match net::recv(sock, &mut buf, RecvFlags::DONTWAIT) {
                        // A datagram longer than the buffer reports its whole length.
                        Ok((_, n)) => ready |= says_ready(buf.get(..n).unwrap_or(&buf)),
                        Err(Errno::INTR) => {}
                        Err(_) => break,
                    }
                }
            }
        }
        let mut out = Vec::new();
        if ready && !channel.reported {
            channel.reported = true;
            out.push(svc);
        }
        if closed {
            // EOF: every write end is closed, the pipe has nothing more to say, and a
            // level-triggered hang-up would otherwise wake the loop forever.
            self.remove(ep, svc);
        }
        out
    }

    /// Service `svc` is gone (or its next instance is being prepared): close its channel.
    pub fn remove(&mut self, ep: &OwnedFd, svc: usize) {
        if let Some(channel) = self.channels.remove(&svc) {
            match channel.kind {
                ChannelKind::Pipe(read) => {
                    let _ = epoll::delete(ep, &read);
                }
                ChannelKind::Socket(sock, path) => {
                    let _ = epoll::delete(ep, &sock);
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

impl Drop for Notify {
    /// Socket files are not removed by closing the socket; leave no litter at exit.
    fn drop(&mut self) {
        for channel in self.channels.values() {
            if let ChannelKind::Socket(_, path) = &channel.kind {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Whether an sd_notify datagram holds the line `READY=1` (newline-separated assignments).
fn says_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

/// Creates `dir` (mode 0711) or checks that an existing one is a real directory owned by
/// tend's user: whoever owns it could swap the sockets and fake readiness.
fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    match std::fs::DirBuilder::new().mode(0o711).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: must be a directory owned by uid {me} (it holds the sd_notify sockets)",
                dir.display()
            ),
        ));
    }
    // The umask may have narrowed the mode at creation, or an old run widened it.
    if meta.permissions().mode() & 0o7777 != 0o711 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

/// Binds a fresh datagram socket at `path` (replacing a stale one), mode 0600, owned by the
/// service's user when it has one.
fn bind_notify_socket(path: &Path, owner: Option<&Credentials>) -> io::Result<OwnedFd> {
    let addr = net::SocketAddrUnix::new(path).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: not usable as a socket path: {}",
                path.display(),
                os_error(e)
            ),
        )
    })?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let sock = net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    net::bind(&sock, &addr)?;
    // Sending needs write permission on the socket file. Between bind and here the mode is
    // 0777 minus tend's umask; the directory is tend's and not writable by others, so the
    // only exposure is to processes of tend's own user.
    let result =
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).and_then(|()| {
            match owner {
                Some(c) => rustix::fs::chown(
                    path,
                    Some(rustix::process::Uid::from_raw(c.uid)),
                    Some(rustix::process::Gid::from_raw(c.gid)),
                )
                .map_err(io::Error::from),
                None => Ok(()),
            }
        });
    if let Err(e) = result {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{HostPort, Signal};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixDatagram;
    use std::sync::mpsc;
    use std::thread;

    fn epoll_instance() -> OwnedFd {
        epoll::create(epoll::CreateFlags::CLOEXEC).unwrap()
    }

    fn wait_tokens(ep: &OwnedFd, d: Duration) -> Vec<u64> {
        let mut events = Vec::with_capacity(16);
        let ts = rustix::event::Timespec {
            tv_sec: d.as_secs() as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        };
        match epoll::wait(ep, rustix::buffer::spare_capacity(&mut events), Some(&ts)) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => panic!("epoll_wait: {e}"),
        }
        events.iter().map(|e| e.data.u64()).collect()
    }

    /// A miniature event loop: runs until a result comes (or `limit` passes, or with `all`
    /// for the whole of `limit`) and returns the results.
    fn run_loop(p: &mut Probes, ep: &OwnedFd, limit: Duration, all: bool) -> Vec<(ProbeKey, bool)> {
        let end = Instant::now() + limit;
        let mut out = Vec::new();
        loop {
            let now = Instant::now();
            if now >= end || (!all && !out.is_empty()) {
                return out;
            }
            let wake = p.next_deadline().map_or(end, |d| d.min(end));
            for token in wait_tokens(ep, wake.saturating_duration_since(now)) {
                let Some(Token::Probe(id)) = Token::decode(token) else {
                    panic!("not a probe's token: {token:x}");
                };
                out.extend(p.on_event(ep, id, Instant::now()));
            }
            out.extend(p.expire(ep, Instant::now()));
        }
    }

    fn drive(p: &mut Probes, ep: &OwnedFd) -> Vec<(ProbeKey, bool)> {
        run_loop(p, ep, Duration::from_secs(10), false)
    }

    fn key(svc: usize, generation: u64, health: bool) -> ProbeKey {
        ProbeKey {
            svc,
            generation,
            health,
        }
    }

    fn inherited() -> Inherited {
        // Blocks signals in this test's thread only; the recorded state is what children get.
        crate::sys::signals::block_all().unwrap()
    }

    fn tcp(host: &str, port: u16) -> Probe {
        Probe::Tcp {
            target: HostPort::new(host, port),
        }
    }

    fn http(host: &str, port: u16, path: &str) -> Probe {
        Probe::Http {
            target: HttpTarget::new(host, port, path),
        }
    }

    fn exec(argv: &[&str]) -> Probe {
        Probe::Exec {
            argv: argv.iter().map(OsString::from).collect(),
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    /// A probe's host and port straight to a socket address when no DNS is needed.
    fn resolve_address(host: &str, port: u16) -> Result<SocketAddr, String> {
        match dns::resolve(
            &dns::Resolver::default(),
            host,
            port,
            Instant::now(),
            SECOND,
        )? {
            Ok(addr) => Ok(addr),
            Err(_) => Err(format!("{host:?} needs DNS")),
        }
    }

    /// (Malformed addresses never get here: the configuration refuses them when it is
    /// loaded, see `config::address`.)
    #[test]
    fn addresses() {
        assert_eq!(
            resolve_address("127.0.0.1", 80),
            Ok("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(
            resolve_address("::1", 8080),
            Ok("[::1]:8080".parse().unwrap())
        );
        assert_eq!(
            resolve_address("localhost", 5432),
            Ok("127.0.0.1:5432".parse().unwrap())
        );
        assert_eq!(
            resolve_address("LocalHost", 1),
            Ok("127.0.0.1:1".parse().unwrap())
        );
        let err = resolve_address("db.invalid", 5432).unwrap_err();
        assert!(err.contains("needs DNS"), "{err}");
    }

    #[test]
    fn tcp_connects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(0, 1, false);
        p.start(
            &ep,
            k,
            &tcp("127.0.0.1", addr.port()),
            SECOND,
            Instant::now(),
            &inherited(),
        )
        .unwrap();
        assert!(p.next_deadline().is_some());
        assert_eq!(drive(&mut p, &ep), vec![(k, true)]);
        assert_eq!(p.failure_reason(k), None);
        assert_eq!(p.next_deadline(), None);
        // Nothing stays registered.
        assert!(wait_tokens(&ep, Duration::ZERO).is_empty());
    }

    #[test]
    fn tcp_over_ipv6() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            return; // no IPv6 loopback here
        };
        let port = listener.local_addr().unwrap().port();
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(2, 1, true);
        p.start(
            &ep,
            k,
            &tcp("::1", port),
            SECOND,
            Instant::now(),
            &inherited(),
        )
        .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, true)]);
    }

    #[test]
    fn tcp_refused() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(1, 7, true);
        p.start(
            &ep,
            k,
            &tcp("localhost", port),
            SECOND,
            Instant::now(),
            &inherited(),
        )
        .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, false)]);
        let reason = p.failure_reason(k).unwrap();
        assert!(reason.contains("refused"), "{reason}");
        // The reason belongs to that generation only.
        assert_eq!(p.failure_reason(key(1, 8, true)), None);
        assert!(wait_tokens(&ep, Duration::ZERO).is_empty());
    }

    /// A DNS server on a UDP port of 127.0.0.1 that knows `web.test` and `api.example` (both
    /// 127.0.0.1) and answers NXDOMAIN for anything else, for `queries` questions; plus the
    /// resolver files that point at it (search domain `example`, and `/etc/hosts` naming
    /// `fromhosts`). Returns the resolver and the names it was asked for.
    fn fake_dns(
        queries: usize,
    ) -> (
        dns::Resolver,
        tempfile::TempDir,
        thread::JoinHandle<Vec<String>>,
    ) {
        lossy_fake_dns(queries, 0)
    }

    /// The same, leaving the first `lost` queries unanswered, as if lost on the way.
    fn lossy_fake_dns(
        queries: usize,
        lost: usize,
    ) -> (
        dns::Resolver,
        tempfile::TempDir,
        thread::JoinHandle<Vec<String>>,
    ) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("resolv.conf"),
            "nameserver 127.0.0.1\nsearch example\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("hosts"), "127.0.0.1 fromhosts\n").unwrap();
        let resolver = dns::Resolver {
            hosts: dir.path().join("hosts"),
            resolv_conf: dir.path().join("resolv.conf"),
            port,
        };
        let handle = thread::spawn(move || {
            let mut asked = Vec::new();
            let mut buf = [0u8; 512];
            for i in 0..queries {
                let (n, from) = sock.recv_from(&mut buf).unwrap();
                let q = &buf[..n];
                // The question's name, label by label.
                let mut at = 12;
                let mut labels = Vec::new();
                while q[at] != 0 {
                    let len = usize::from(q[at]);
                    labels.push(String::from_utf8_lossy(&q[at + 1..at + 1 + len]).into_owned());
                    at += 1 + len;
                }
                let name = labels.join(".");
                let known = name == "web.test" || name == "api.example";
                let mut r = q[..at + 5].to_vec();
                r[2] = 0x81;
                r[3] = if known { 0x80 } else { 0x83 };
                r[6..12].copy_from_slice(&[0, u8::from(known), 0, 0, 0, 0]);
                if known {
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]);
                }
                if i >= lost {
                    sock.send_to(&r, from).unwrap();
                }
                asked.push(name);
            }
            asked
        });
        (resolver, dir, handle)
    }

    #[test]
    fn host_names_are_resolved_without_blocking() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // web.test (as is), api (api.example), nothing (nothing.example, nothing).
        let (resolver, _dir, server) = fake_dns(4);
        let ep = epoll_instance();
        let mut p = Probes::new();
        p.resolver = resolver;
        let now = Instant::now();
        for (i, host) in ["web.test", "api", "fromhosts"].iter().enumerate() {
            let k = key(i, 1, false);
            p.start(&ep, k, &tcp(host, port), SECOND, now, &inherited())
                .unwrap();
            assert_eq!(drive(&mut p, &ep), vec![(k, true)], "{host}");
        }
        let k = key(9, 1, false);
        p.start(&ep, k, &tcp("nothing", port), SECOND, now, &inherited())
            .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, false)]);
        let reason = p.failure_reason(k).unwrap();
        assert!(reason.contains("no address for it"), "{reason}");
        assert!(reason.contains("nothing.example, nothing"), "{reason}");
        assert_eq!(
            server.join().unwrap(),
            ["web.test", "api.example", "nothing.example", "nothing"]
        );
        // Nothing stays registered.
        assert!(wait_tokens(&ep, Duration::ZERO).is_empty());
    }

    #[test]
    fn an_http_probe_by_host_name() {
        let (port, server) = serve(vec![b"HTTP/1.1 204 No Content\r\n\r\n"]);
        let (resolver, _dir, dns) = fake_dns(1);
        let ep = epoll_instance();
        let mut p = Probes::new();
        p.resolver = resolver;
        let k = key(0, 1, true);
        let probe = http("web.test", port, "/health");
        p.start(&ep, k, &probe, SECOND, Instant::now(), &inherited())
            .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, true)]);
        let request = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(
            request.contains(&format!("Host: web.test:{port}")),
            "{request}"
        );
        assert_eq!(dns.join().unwrap(), ["web.test"]);
    }

    #[test]
    fn a_lost_dns_query_is_sent_again() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (resolver, _dir, server) = lossy_fake_dns(2, 1);
        let ep = epoll_instance();
        let mut p = Probes::new();
        p.resolver = resolver;
        let k = key(0, 1, false);
        let start = Instant::now();
        let timeout = Duration::from_secs(3);
        p.start(&ep, k, &tcp("web.test", port), timeout, start, &inherited())
            .unwrap();
        // The query goes again after a third of the attempt's timeout (under resolv.conf's
        // default 5 s), and its answer makes the attempt succeed.
        assert_eq!(p.next_deadline(), Some(start + Duration::from_secs(1)));
        assert_eq!(drive(&mut p, &ep), vec![(k, true)]);
        assert_eq!(server.join().unwrap(), ["web.test", "web.test"]);
        assert!(wait_tokens(&ep, Duration::ZERO).is_empty());
    }

    #[test]
    fn a_silent_dns_server_is_a_timeout() {
        // A socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let ep = epoll_instance();
        let mut p = Probes::new();
        p.resolver = dns::Resolver {
            hosts: dir.path().join("hosts"),
            resolv_conf: dir.path().join("resolv.conf"),
            port: silent.local_addr().unwrap().port(),
        };
        let k = key(0, 1, false);
        let short = Duration::from_millis(200);
        p.start(
            &ep,
            k,
            &tcp("db.test", 5432),
            short,
            Instant::now(),
            &inherited(),
        )
        .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, false)]);
        let reason = p.failure_reason(k).unwrap();
        assert!(
            reason.contains("no address from DNS within 200ms"),
            "{reason}"
        );
    }

    #[test]
    fn notifications_are_not_polled() {
        let ep = epoll_instance();
        let mut p = Probes::new();
        let now = Instant::now();
        for probe in [Probe::SdNotify, Probe::NotifyFd { fd: 3 }] {
            assert!(
                p.start(&ep, key(0, 1, false), &probe, SECOND, now, &inherited())
                    .is_err()
            );
        }
        assert_eq!(p.next_deadline(), None);
    }

    /// A one-connection HTTP server: reads the request head, then sends `answer` in the
    /// given pieces with a pause between them. Returns the request it received.
    fn serve(answer: Vec<&'static [u8]>) -> (u16, thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let request = read_head(&mut conn);
            for piece in answer {
                // The peer may have decided and closed already; that is its right.
                if conn.write_all(piece).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(30));
            }
            request
        });
        (port, handle)
    }

    fn read_head(conn: &mut TcpStream) -> Vec<u8> {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        request
    }

    #[test]
    fn http_answer_in_pieces() {
        let (port, server) = serve(vec![
            b"HTTP/1.",
            b"1 2",
            b"00 OK\r",
            b"\nContent-Length: 0\r\n\r\n",
        ]);
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(3, 2, true);

        p.start(
            &ep,
            k,
            &http("127.0.0.1", port, "/healthz?x=1"),
            5 * SECOND,
            Instant::now(),
            &inherited(),
        )
        .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, true)]);
        let request = server.join().unwrap();
        assert_eq!(
            String::from_utf8(request).unwrap(),
            format!(
                "GET /healthz?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nUser-Agent: tend\r\n\r\n"
            )
        );
        assert!(wait_tokens(&ep, Duration::ZERO).is_empty());
    }

    #[test]
    fn http_redirect_is_healthy() {
        let (port, server) = serve(vec![b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n"]);
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(0, 1, true);
        p.start(
            &ep,
            k,
            &http("localhost", port, "/"),
            SECOND,
            Instant::now(),
            &inherited(),
        )
        .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, true)]);
        assert!(server.join().unwrap().starts_with(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn http_failures() {
        let cases: Vec<(Vec<&'static [u8]>, &str)> = vec![
            (
                vec![b"HTTP/1.1 503 Service Unavailable\r\n\r\n"],
                "HTTP status 503",
            ),
            (vec![b"HTTP/1.1 404 Not Found\r\n\r\n"], "HTTP status 404"),
            (vec![], "without answering"),
            (vec![b"HTTP/1.1 20"], "middle of the status line"),
            (vec![b"SSH-2.0-OpenSSH_9.6\r\n"], "not an HTTP answer"),
        ];
        for (answer, why) in cases {
            let (port, server) = serve(answer);
            let ep = epoll_instance();
            let mut p = Probes::new();
            let k = key(0, 1, true);
            p.start(
                &ep,
                k,
                &http("127.0.0.1", port, "/"),
                5 * SECOND,
                Instant::now(),
                &inherited(),
            )
            .unwrap();
            assert_eq!(drive(&mut p, &ep), vec![(k, false)], "{why}");
            let reason = p.failure_reason(k).unwrap();
            assert!(reason.contains(why), "{reason:?} should say {why:?}");
            server.join().unwrap();
        }
    }

    #[test]
    fn http_endless_status_line_is_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            read_head(&mut conn);
            // A plausible start, then a reason phrase without end: the probe must give up at
            // its cap, not read forever.
            conn.write_all(b"HTTP/1.1 200 ").unwrap();
            let junk = [b'x'; 1024];
            while conn.write_all(&junk).is_ok() {}
        });
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(0, 1, true);
        p.start(
            &ep,
            k,
            &http("127.0.0.1", port, "/"),
            5 * SECOND,
            Instant::now(),
            &inherited(),
        )
        .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, false)]);
        let reason = p.failure_reason(k).unwrap();
        assert_eq!(reason, "no status line in the first 16384 bytes");
        server.join().unwrap();
    }

    #[test]
    fn http_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let server = thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            read_head(&mut conn);
            // Hold the connection open without answering until the test is done.
            let _ = done_rx.recv();
            // The probe closed its side at its deadline.
            let mut buf = [0u8; 16];
            conn.read(&mut buf).unwrap_or(0)
        });
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(5, 9, false);
        let started = Instant::now();
        p.start(
            &ep,
            k,
            &http("127.0.0.1", port, "/"),
            Duration::from_millis(200),
            started,
            &inherited(),
        )
        .unwrap();
        assert_eq!(drive(&mut p, &ep), vec![(k, false)]);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(p.failure_reason(k), Some("no answer within 200ms"));
        assert!(wait_tokens(&ep, Duration::ZERO).is_empty());
        done_tx.send(()).unwrap();
        assert_eq!(server.join().unwrap(), 0);
    }

    #[test]
    fn a_new_attempt_supersedes_the_old_one() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ep = epoll_instance();
        let mut p = Probes::new();
        let inh = inherited();
        let now = Instant::now();
        // Generation 1: an http attempt nobody answers (the listener never accepts).
        let old = key(4, 1, false);
        p.start(
            &ep,
            old,
            &http("127.0.0.1", port, "/"),
            Duration::from_millis(100),
            now,
            &inh,
        )
        .unwrap();
        let new = key(4, 2, false);
        p.start(
            &ep,
            new,
            &tcp("127.0.0.1", port),
            Duration::from_millis(100),
            now,
            &inh,
        )
        .unwrap();
        // The other check of the same service is independent.
        let health = key(4, 2, true);
        p.start(
            &ep,
            health,
            &tcp("127.0.0.1", port),
            Duration::from_millis(100),
            now,
            &inh,
        )
        .unwrap();
        let mut results = run_loop(&mut p, &ep, Duration::from_millis(300), true);
        results.sort_by_key(|(k, _)| k.health);
        assert_eq!(results, vec![(new, true), (health, true)]);
        drop(listener);
    }

    fn wait_for(pid: i32) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(pid).unwrap();
        let (_, status) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => ExitStatus::Exited(code as u8),
            (None, Some(sig)) => ExitStatus::Signaled(Signal::from_number(sig).unwrap()),
            other => panic!("odd status {other:?}"),
        }
    }

    fn only_pid(p: &Probes) -> i32 {
        assert_eq!(p.by_pid.len(), 1);
        *p.by_pid.keys().next().unwrap()
    }

    #[test]
    fn exec_results() {
        let ep = epoll_instance();
        let mut p = Probes::new();
        let inh = inherited();
        let k = key(0, 1, true);
        // Its output goes to /dev/null, not into the test's.
        p.start(
            &ep,
            k,
            &exec(&["sh", "-c", "echo noise; echo noise >&2; exit 0"]),
            5 * SECOND,
            Instant::now(),
            &inh,
        )
        .unwrap();
        let pid = only_pid(&p);
        assert!(p.next_deadline().is_some());
        let status = wait_for(pid);
        assert_eq!(p.on_child_exit(pid, status), ChildExit::Finished(k, true));
        assert_eq!(p.next_deadline(), None);
        // Reported once; afterwards the pid is nobody's.
        assert_eq!(p.on_child_exit(pid, status), ChildExit::NotProbe);

        p.start(
            &ep,
            k,
            &exec(&["sh", "-c", "exit 3"]),
            5 * SECOND,
            Instant::now(),
            &inh,
        )
        .unwrap();
        let pid = only_pid(&p);
        let status = wait_for(pid);
        assert_eq!(p.on_child_exit(pid, status), ChildExit::Finished(k, false));
        assert_eq!(
            p.failure_reason(k),
            Some("the check command ended with exit code 3")
        );
    }

    #[test]
    fn exec_that_cannot_start() {
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(0, 1, false);
        let now = Instant::now();
        p.start(
            &ep,
            k,
            &exec(&["/nonexistent/check"]),
            SECOND,
            now,
            &inherited(),
        )
        .unwrap();
        assert!(p.by_pid.is_empty());
        assert_eq!(p.expire(&ep, now), vec![(k, false)]);
        assert!(p.failure_reason(k).unwrap().contains("cannot run"));
    }

    #[test]
    fn exec_timeout_kills_the_group() {
        let ep = epoll_instance();
        let mut p = Probes::new();
        let k = key(1, 1, true);
        let now = Instant::now();
        // The shell's child sleeps too: the whole group must go.
        p.start(
            &ep,
            k,
            &exec(&["sh", "-c", "sleep 30 & sleep 30; wait"]),
            Duration::from_millis(100),
            now,
            &inherited(),
        )
        .unwrap();
        let pid = only_pid(&p);
        assert_eq!(p.expire(&ep, now), vec![]);
        let later = now + Duration::from_millis(100);
        assert_eq!(p.expire(&ep, later), vec![(k, false)]);
        assert_eq!(
            p.failure_reason(k),
            Some("the check command did not finish within 100ms")
        );
        assert_eq!(p.next_deadline(), None);
        let status = wait_for(pid);
        assert_eq!(status, ExitStatus::Signaled(Signal::KILL));
        assert_eq!(p.on_child_exit(pid, status), ChildExit::Ignored);
        assert_eq!(p.on_child_exit(pid, status), ChildExit::NotProbe);
        // The background sleep was in the group and is gone too (it is not our child, so
        // only kill(-pgid, 0) can tell).
        let deadline = Instant::now() + 5 * SECOND;
        while !process::group_is_empty(crate::core::Pid(pid)) {
            assert!(
                Instant::now() < deadline,
                "the probe's group outlived its kill"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn cancel_service_drops_everything() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ep = epoll_instance();
        let mut p = Probes::new();
        let inh = inherited();
        let now = Instant::now();
        p.start(
            &ep,
            key(2, 1, true),
            &exec(&["sleep", "30"]),
            5 * SECOND,
            now,
            &inh,
        )
        .unwrap();
        let pid = only_pid(&p);
        p.start(
            &ep,
            key(2, 1, false),
            &http("127.0.0.1", port, "/"),
            5 * SECOND,
            now,
            &inh,
        )
        .unwrap();
        // Another service's settled failure survives; service 2's does not exist anymore.
        p.start(
            &ep,
            key(3, 1, false),
            &tcp("nowhere", 1),
            5 * SECOND,
            now,
            &inh,
        )
        .unwrap();
        p.cancel_service(&ep, 2);
        assert_eq!(
            p.expire(&ep, now + 10 * SECOND),
            vec![(key(3, 1, false), false)]
        );
        assert_eq!(p.next_deadline(), None);
        assert!(wait_tokens(&ep, Duration::from_millis(50)).is_empty());
        let status = wait_for(pid);
        assert_eq!(status, ExitStatus::Signaled(Signal::KILL));
        assert_eq!(p.on_child_exit(pid, status), ChildExit::Ignored);
        drop(listener);
    }

    #[test]
    fn stale_and_foreign_tokens_are_ignored() {
        let ep = epoll_instance();
        let mut p = Probes::new();
        let now = Instant::now();
        for id in [0, 12345, token::NUMBERS - 1] {
            assert!(p.on_event(&ep, id, now).is_empty());
        }
        assert_eq!(
            p.on_child_exit(999_999, ExitStatus::Exited(0)),
            ChildExit::NotProbe
        );
    }

    #[test]
    fn attempt_ids_wrap_below_the_notify_tokens() {
        let mut p = Probes::new();
        p.next_id = ATTEMPT_IDS - 1;
        assert_eq!(p.allocate_id(), ATTEMPT_IDS - 1);
        assert_eq!(p.allocate_id(), 0);
    }

    // --- notifications ---

    const NOTHING: Vec<usize> = Vec::new();

    fn notify_tokens(ep: &OwnedFd, n: &mut Notify, d: Duration) -> Vec<usize> {
        let mut out = Vec::new();
        for token in wait_tokens(ep, d) {
            let Some(Token::Notify(svc)) = Token::decode(token) else {
                panic!("not a notification's token: {token:x}");
            };
            out.extend(n.on_event(ep, svc));
        }
        out
    }

    #[test]
    fn sd_notify() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run/notify");
        let ep = epoll_instance();
        let mut n = Notify::new();
        let prepared = n.prepare(&ep, 3, &Probe::SdNotify, &dir, None).unwrap();
        assert!(prepared.fd_map.is_none());
        let (name, path) = prepared.env.unwrap();
        assert_eq!(name, "NOTIFY_SOCKET");
        let path = PathBuf::from(path);
        assert_eq!(path, dir.join("3.sock"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dir), 0o711);
        assert_eq!(mode(&path), 0o600);

        let client = UnixDatagram::unbound().unwrap();
        // Other fields are fine and change nothing.
        client
            .send_to(b"STATUS=starting\nMAINPID=42", &path)
            .unwrap();
        client.send_to(b"READY=10\nXREADY=1", &path).unwrap();
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), NOTHING);
        client.send_to(b"STATUS=up\nREADY=1\n", &path).unwrap();
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), vec![3]);
        // Once per instance.
        client.send_to(b"READY=1", &path).unwrap();
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), NOTHING);

        n.remove(&ep, 3);
        assert!(!path.exists());
        assert!(client.send_to(b"READY=1", &path).is_err());
    }

    #[test]
    fn sd_notify_from_an_old_instance_does_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("notify");
        let ep = epoll_instance();
        let mut n = Notify::new();
        let path = |p: Prepared| PathBuf::from(p.env.unwrap().1);
        let first = path(n.prepare(&ep, 0, &Probe::SdNotify, &dir, None).unwrap());
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"READY=1", &first).unwrap();
        // The instance died before tend read it; the next one gets a fresh socket.
        let second = path(n.prepare(&ep, 0, &Probe::SdNotify, &dir, None).unwrap());
        assert_eq!(first, second);
        assert_eq!(
            notify_tokens(&ep, &mut n, Duration::from_millis(50)),
            NOTHING
        );
        client.send_to(b"READY=1", &second).unwrap();
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), vec![0]);
        drop(n);
        assert!(!second.exists(), "Drop removes the socket files");
    }

    #[test]
    fn sd_notify_socket_belongs_to_the_service_user() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("notify");
        let ep = epoll_instance();
        let mut n = Notify::new();
        let who = Credentials {
            uid: 65534,
            gid: 65533,
            groups: vec![],
        };
        let prepared = n
            .prepare(&ep, 1, &Probe::SdNotify, &dir, Some(&who))
            .unwrap();
        let meta = std::fs::metadata(prepared.env.unwrap().1).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (65534, 65533));
    }

    #[test]
    fn sd_notify_dir_must_be_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let ep = epoll_instance();
        let mut n = Notify::new();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(n.prepare(&ep, 0, &Probe::SdNotify, &file, None).is_err());
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(n.prepare(&ep, 0, &Probe::SdNotify, &link, None).is_err());
        if rustix::process::geteuid().is_root() {
            let theirs = tmp.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            rustix::fs::chown(&theirs, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
            let err = n
                .prepare(&ep, 0, &Probe::SdNotify, &theirs, None)
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        }
        // A too-long path is refused with a clear error, not truncated.
        let deep = tmp.path().join("d".repeat(120));
        let err = n
            .prepare(&ep, 0, &Probe::SdNotify, &deep, None)
            .unwrap_err();
        assert!(err.to_string().contains("socket path"), "{err}");
        assert!(n.channels.is_empty());
    }

    #[test]
    fn notify_fd() {
        let ep = epoll_instance();
        let mut n = Notify::new();
        let prepared = n
            .prepare(
                &ep,
                7,
                &Probe::NotifyFd { fd: 3 },
                Path::new("/nonexistent"),
                None,
            )
            .unwrap();
        assert!(prepared.env.is_none());
        let (write, number) = prepared.fd_map.unwrap();
        assert_eq!(number, 3);
        let mut w = std::fs::File::from(write);
        w.write_all(b"starting").unwrap();
        assert_eq!(
            notify_tokens(&ep, &mut n, Duration::from_millis(50)),
            NOTHING
        );
        w.write_all(b"...\n").unwrap();
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), vec![7]);
        w.write_all(b"\n").unwrap();
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), NOTHING);
        // The service closes its end: the channel goes, and the hang-up does not keep the
        // loop awake.
        drop(w);
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), NOTHING);
        assert!(n.channels.is_empty());
        assert!(wait_tokens(&ep, Duration::from_millis(50)).is_empty());
    }

    #[test]
    fn notify_fd_closed_without_a_word() {
        let ep = epoll_instance();
        let mut n = Notify::new();
        let prepared = n
            .prepare(&ep, 0, &Probe::NotifyFd { fd: 5 }, Path::new("/"), None)
            .unwrap();
        drop(prepared);
        assert_eq!(notify_tokens(&ep, &mut n, SECOND), NOTHING);
        assert!(n.channels.is_empty());
    }

    #[test]
    fn notify_rejects_what_it_cannot_do() {
        let ep = epoll_instance();
        let mut n = Notify::new();
        for probe in [
            Probe::NotifyFd { fd: 2 },
            tcp("127.0.0.1", 1),
            exec(&["true"]),
        ] {
            let err = n.prepare(&ep, 0, &probe, Path::new("/"), None).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{probe:?}");
        }
        assert!(n.on_event(&ep, 99).is_empty());
    }

    #[test]
    fn ready_lines() {
        assert!(says_ready(b"READY=1"));
        assert!(says_ready(b"STATUS=x\nREADY=1\n"));
        assert!(!says_ready(b"READY=0"));
        assert!(!says_ready(b"READY=10"));
        assert!(!says_ready(b" READY=1"));
        assert!(!says_ready(b""));
    }
}
