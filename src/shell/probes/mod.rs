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
pub mod notify;

pub use notify::{Notify, Prepared};

use crate::core::{ExitStatus, HttpTarget, Launch, Probe, SessionMode};
use crate::shell::token::{self, Token};
use crate::sys::process;
use crate::sys::signals::Inherited;
use crate::sys::socket;
use crate::sys::spawn::{self, ChildStdio};
use dns::Lookup;
use http::StatusLine;
use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{self, RecvFlags, SendFlags, SocketType};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
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

/// The two checks a service can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Check {
    /// `ready`: until it passes once.
    Readiness,
    /// `health`: again and again while the service runs.
    Health,
}

impl Check {
    pub const BOTH: [Check; 2] = [Check::Readiness, Check::Health];

    /// `health: bool` as the core says it.
    pub fn of(health: bool) -> Check {
        if health {
            Check::Health
        } else {
            Check::Readiness
        }
    }

    pub fn is_health(self) -> bool {
        self == Check::Health
    }

    pub fn name(self) -> &'static str {
        match self {
            Check::Readiness => "readiness probe",
            Check::Health => "health check",
        }
    }
}

/// Which check a result belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProbeKey {
    pub svc: usize,
    pub generation: u64,
    pub check: Check,
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
    /// The attempt running for each (service, check) pair. A new attempt supersedes any
    /// older one of the same pair, whatever its generation.
    by_slot: HashMap<(usize, Check), u64>,
    /// Running exec probes.
    by_pid: HashMap<i32, u64>,
    /// Exec probes killed or abandoned whose exit is still to come through the reaper. The
    /// pid cannot be reused before tend reaps it, so the entry stays unambiguous.
    abandoned: HashSet<i32>,
    /// Attempts that ended inside `start` (bad address, refused at once, spawn failed). They
    /// are handed out by `expire`, due at once, so `start` itself never returns a result.
    settled: Vec<(ProbeKey, bool, Instant)>,
    /// Why the latest attempt of a (service, check) pair failed, for the loop's log line.
    reasons: HashMap<(usize, Check), (u64, String)>,
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
        self.cancel_slot(ep, key.svc, key.check);
        self.settled
            .retain(|(k, _, _)| (k.svc, k.check) != (key.svc, key.check));
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
                self.by_slot.insert((key.svc, key.check), id);
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
        if self.by_slot.get(&(key.svc, key.check)) == Some(&id) {
            self.by_slot.remove(&(key.svc, key.check));
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
            if let Work::Resolving(lookup, _) = &mut attempt.work
                && lookup.resend_at() <= now
                && let dns::Step::Failed(reason) = lookup.resend(now)
            {
                lost.push((*id, reason));
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
        for check in Check::BOTH {
            self.cancel_slot(ep, svc, check);
            self.reasons.remove(&(svc, check));
        }
        self.settled.retain(|(k, _, _)| k.svc != svc);
    }

    /// Why the latest finished attempt for `key` failed (None if it passed, or belonged to
    /// another generation); for the loop's log line next to a failed result.
    pub fn failure_reason(&self, key: ProbeKey) -> Option<&str> {
        match self.reasons.get(&(key.svc, key.check)) {
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
            self.reasons.remove(&(key.svc, key.check));
        } else {
            self.reasons
                .insert((key.svc, key.check), (key.generation, reason));
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
        let slot = (attempt.key.svc, attempt.key.check);
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

    fn cancel_slot(&mut self, ep: &OwnedFd, svc: usize, check: Check) {
        if let Some(id) = self.by_slot.remove(&(svc, check)) {
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
    let sock = socket::nonblocking(addr.ip(), SocketType::STREAM)
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

#[cfg(test)]
mod tests;
