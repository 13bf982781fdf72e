//! tend's own HTTP endpoints (`[tend] http`): `/livez`, `/readyz` and `/metrics`, for
//! Kubernetes probes and Prometheus, served by the event loop without ever blocking it.
//!
//! HTTP/1.1 (and 1.0), hand-written around `httparse`: one request per connection, answered
//! with `Connection: close`. Only `GET` and `HEAD` of the three paths are served. Nothing a
//! client does can stall the loop or make tend hold much: sockets are non-blocking, a request
//! head may be at most 8 KiB, at most 64 connections are open at once (more are closed as
//! soon as they are accepted), and each connection has a deadline for its request and
//! another for its answer.
//!
//! A connection goes through three phases: `Reading` the request head; `Writing` the answer
//! (watched for EPOLLOUT only, so a client that sends more meanwhile does not wake the loop);
//! `Draining`: the answer is out and the write side shut down (FIN), and tend reads and
//! discards whatever the client still sends until it hangs up. Closing while unread bytes sit
//! in the receive buffer would make the kernel send a reset, which can destroy the answer
//! before the client has read it (a 431 to a client still sending its oversized head, say).

use super::conn::{Acceptor, Outbox, Retry, Sent, Table};
use crate::shell::token::Token;
use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{self, RecvFlags, SocketFlags, SocketType};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// A client must send its whole request head within this time, and take the whole answer
/// (and hang up) within as much again.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// The longest request head (request line and headers) tend reads; longer ones get 431.
pub const MAX_HEAD: usize = 8 * 1024;

/// More headers than this get 431 too (each costs httparse a slot on the stack).
const MAX_HEADERS: usize = 64;

/// What one `read` call discards at most once the request is in: a client that keeps
/// sending cannot hold the loop for longer than that.
const DISCARD_PER_CALL: usize = 64 * 1024;

/// After an accept error other than "nothing to accept" (typically EMFILE: out of file
/// descriptors, with the spare one in use), the listener stays readable; it rests out of
/// epoll for this long rather than waking the loop again and again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The listen backlog: connections the kernel queues before tend accepts them.
const BACKLOG: i32 = 128;

const PLAIN: &str = "text/plain; charset=utf-8";
const METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the server needs to answer; the loop builds it fresh for each complete request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub alive: bool,
    pub ready: bool,
    /// Why tend is not ready, for the 503 of `/readyz`.
    pub ready_reason: String,
    /// The `/metrics` text (see `shell::metrics`).
    pub metrics: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Reading,
    Writing,
    Draining,
}

struct Conn {
    sock: OwnedFd,
    input: Vec<u8>,
    output: Outbox,
    phase: Phase,
    deadline: Instant,
}

impl AsFd for Conn {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

pub struct HttpServer {
    listener: TcpListener,
    conns: Table<Conn>,
    acceptor: Acceptor,
    deadline: Duration,
}

impl HttpServer {
    /// Listens on `addr`: a non-blocking, close-on-exec socket with SO_REUSEADDR, so a
    /// restarted tend can bind again while old connections are in TIME_WAIT.
    pub fn bind(addr: SocketAddr) -> io::Result<HttpServer> {
        let sock = crate::sys::socket::nonblocking(addr.ip(), SocketType::STREAM)?;
        net::sockopt::set_socket_reuseaddr(&sock, true)?;
        net::bind(&sock, &addr)?;
        net::listen(&sock, BACKLOG)?;
        Ok(HttpServer {
            listener: TcpListener::from(sock),
            conns: Table::new(Token::HttpConn),
            acceptor: Acceptor::new(Token::HttpListener, ACCEPT_PAUSE),
            deadline: REQUEST_DEADLINE,
        })
    }

    /// The address actually bound (the port the kernel chose for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn register(&self, ep: &OwnedFd) -> io::Result<()> {
        epoll::add(
            ep,
            &self.listener,
            Token::HttpListener.data(),
            epoll::EventFlags::IN,
        )?;
        Ok(())
    }

    /// Accepts every waiting client; beyond `MAX_CONNECTIONS` they are closed at once.
    pub fn accept(&mut self, ep: &OwnedFd, now: Instant) {
        loop {
            let sock = match net::accept_with(
                &self.listener,
                SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            ) {
                Ok(sock) => sock,
                Err(Errno::AGAIN) => return,
                // Interrupted, or a client that gave up while queued: try the next one.
                Err(Errno::INTR | Errno::CONNABORTED) => continue,
                Err(e) => match self.acceptor.failed(ep, &self.listener, &e.into(), now) {
                    // Out of descriptors: the spare one is free now for this client.
                    Retry::Now => continue,
                    // The listener would stay readable and wake the loop at once: it rests
                    // out of epoll for a moment; `expire` puts it back.
                    Retry::Later => return,
                },
            };
            let conn = Conn {
                sock,
                input: Vec::new(),
                output: Outbox::default(),
                phase: Phase::Reading,
                deadline: now + self.deadline,
            };
            // Beyond MAX_CONNECTIONS it is closed at once.
            let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
            let _ = self.conns.insert(ep, conn, interest);
        }
    }

    /// An event on connection `conn`: EPOLLOUT writes the answer; input, a hang-up or an
    /// error reads, and once a whole request head is in, `answer` gives the snapshot to
    /// answer from (asked only for a request that needs one; its argument says whether the
    /// request is for `/metrics`, so the metrics text is made only then).
    pub fn on_event(
        &mut self,
        ep: &OwnedFd,
        conn: usize,
        flags: epoll::EventFlags,
        now: Instant,
        answer: impl FnOnce(bool) -> Snapshot,
    ) {
        if flags.contains(epoll::EventFlags::OUT) {
            self.flush(ep, conn);
        }
        if flags.intersects(super::READABLE) {
            self.read(ep, conn, now, answer);
        }
    }

    /// Reads from a connection. Once a whole request head is in, calls `answer` for the
    /// snapshot (only for a request that needs one) and queues the response.
    fn read(
        &mut self,
        ep: &OwnedFd,
        conn: usize,
        now: Instant,
        answer: impl FnOnce(bool) -> Snapshot,
    ) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        match c.phase {
            Phase::Reading => {}
            Phase::Writing => {
                // Only a hang-up or an error wakes a writing connection: whether the client
                // can still take the answer, the next write tells.
                self.flush(ep, conn);
                return;
            }
            Phase::Draining => {
                match discard(&c.sock) {
                    Discarded::More => {}
                    Discarded::Gone => self.close(ep, conn),
                }
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        let response = loop {
            // Never more than one byte past the limit: enough to know the head is too long.
            let room = (MAX_HEAD + 1 - c.input.len()).min(chunk.len());
            let into = chunk.get_mut(..room).unwrap_or_default();
            match net::recv(&c.sock, into, RecvFlags::empty()) {
                Ok((_, 0)) => {
                    if c.input.is_empty() {
                        self.close(ep, conn);
                        return;
                    }
                    // Half-closed after part of a head: it can still read why it failed.
                    break error_response(Status::BadRequest, false);
                }
                Ok((_, n)) => {
                    let from = c.input.len();
                    c.input
                        .extend_from_slice(chunk.get(..n).unwrap_or_default());
                    // Parsed once the blank line that ends a head arrives (or the limit is
                    // passed), not after every byte of a client that sends one at a time.
                    if !ends_head(&c.input, from) && c.input.len() <= MAX_HEAD {
                        continue;
                    }
                    match parse(&c.input) {
                        Parsed::Partial => {}
                        Parsed::Invalid(status) => break error_response(status, false),
                        Parsed::Complete(request) => break respond(&request, answer),
                    }
                }
                Err(Errno::AGAIN) => return,
                Err(Errno::INTR) => {}
                Err(_) => {
                    self.close(ep, conn);
                    return;
                }
            }
        };
        c.input = Vec::new();
        c.output.push(&response);
        c.phase = Phase::Writing;
        c.deadline = now + self.deadline;
        self.flush(ep, conn);
    }

    /// Writes what the client takes now; once the answer is out, shuts down the write side
    /// and waits for the client to hang up. Call it for EPOLLOUT.
    pub fn flush(&mut self, ep: &OwnedFd, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.phase != Phase::Writing {
            return;
        }
        let interest = match c.output.send(&c.sock) {
            Sent::Failed => return self.close(ep, conn),
            Sent::Some => epoll::EventFlags::OUT,
            Sent::All => {
                if net::shutdown(&c.sock, net::Shutdown::Write).is_err() {
                    return self.close(ep, conn);
                }
                c.phase = Phase::Draining;
                epoll::EventFlags::IN | epoll::EventFlags::RDHUP
            }
        };
        if self.conns.set_interest(ep, conn, interest).is_err() {
            self.close(ep, conn);
        }
    }

    fn close(&mut self, ep: &OwnedFd, conn: usize) {
        self.conns.close(ep, conn);
        self.acceptor.closed();
    }

    /// When `expire` next has something to do: the earliest connection deadline, or the end
    /// of an accept pause.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .map(|(_, c)| c.deadline)
            .chain(self.acceptor.deadline())
            .min()
    }

    /// Cuts off connections past their deadline: one that sent part of a request gets a 408
    /// and at most a second more to take it; anything else is closed. Ends an accept pause.
    pub fn expire(&mut self, ep: &OwnedFd, now: Instant) {
        self.acceptor.wake(ep, &self.listener, now);
        let late: Vec<(usize, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, c)| (id, c.phase == Phase::Reading && !c.input.is_empty()))
            .collect();
        for (id, started) in late {
            let Some(c) = self.conns.get_mut(id).filter(|_| started) else {
                self.close(ep, id);
                continue;
            };
            c.input = Vec::new();
            c.output
                .push(&error_response(Status::RequestTimeout, false));
            c.phase = Phase::Writing;
            c.deadline = now + self.deadline.min(Duration::from_secs(1));
            self.flush(ep, id);
        }
    }
}

enum Discarded {
    /// The client may send more.
    More,
    /// It hung up, or the connection failed.
    Gone,
}

/// Reads and drops what the client sends after its request, up to `DISCARD_PER_CALL`.
fn discard(sock: &OwnedFd) -> Discarded {
    let mut chunk = [0u8; 4096];
    let mut total = 0;
    while total < DISCARD_PER_CALL {
        match net::recv(sock, &mut chunk, RecvFlags::empty()) {
            Ok((_, 0)) => return Discarded::Gone,
            Ok((_, n)) => total += n,
            Err(Errno::AGAIN) => return Discarded::More,
            Err(Errno::INTR) => {}
            Err(_) => return Discarded::Gone,
        }
    }
    Discarded::More
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    HeaderFieldsTooLarge,
    ServiceUnavailable,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::RequestTimeout => "408 Request Timeout",
            Status::HeaderFieldsTooLarge => "431 Request Header Fields Too Large",
            Status::ServiceUnavailable => "503 Service Unavailable",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Livez,
    Readyz,
    Metrics,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Request {
    method: Method,
    /// None: a path tend does not serve.
    route: Option<Route>,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// The head is not complete yet.
    Partial,
    Complete(Request),
    /// Answered with this status, whatever was asked.
    Invalid(Status),
}

/// Whether the bytes from `from` on complete a blank line (`\n\n` or `\n\r\n`), the end of
/// a request head; the last bytes before `from` are looked at too, as a line end may span
/// two reads.
pub fn ends_head(input: &[u8], from: usize) -> bool {
    let tail = input.get(from.saturating_sub(3)..).unwrap_or_default();
    tail.windows(2).any(|w| w == b"\n\n") || tail.windows(3).any(|w| w == b"\n\r\n")
}

/// Reads a request head from the bytes received so far.
fn parse(input: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(input) {
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => {
            Parsed::Invalid(Status::HeaderFieldsTooLarge)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
            Parsed::Invalid(Status::HeaderFieldsTooLarge)
        }
        Ok(httparse::Status::Complete(_)) => {
            let method = match request.method {
                Some("GET") => Method::Get,
                Some("HEAD") => Method::Head,
                _ => Method::Other,
            };
            let route = request.path.and_then(route);
            Parsed::Complete(Request { method, route })
        }
        Err(httparse::Error::TooManyHeaders) => Parsed::Invalid(Status::HeaderFieldsTooLarge),
        Err(_) => Parsed::Invalid(Status::BadRequest),
    }
}

/// What `read` answers once the bytes received so far, `input`, are parsed: None while the
/// head is incomplete. The same as `read`'s own match, without a socket (for fuzzing).
pub fn answer_input(input: &[u8], answer: impl FnOnce() -> Snapshot) -> Option<Vec<u8>> {
    match parse(input) {
        Parsed::Partial => None,
        Parsed::Invalid(status) => Some(error_response(status, false)),
        Parsed::Complete(request) => Some(respond(&request, |_| answer())),
    }
}

/// The route a request target names: origin form (`/metrics?x=1`) or absolute form
/// (`http://host:9100/metrics`).
fn route(target: &str) -> Option<Route> {
    let path = match target.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => {
            rest.find('/').map_or("/", |i| &rest[i..])
        }
        _ => target,
    };
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    match path {
        "/livez" => Some(Route::Livez),
        "/readyz" => Some(Route::Readyz),
        "/metrics" => Some(Route::Metrics),
        _ => None,
    }
}

/// The whole response to a complete request. `answer` is called only when the route and
/// method are served, with whether the metrics are wanted.
fn respond(request: &Request, answer: impl FnOnce(bool) -> Snapshot) -> Vec<u8> {
    let head_only = request.method == Method::Head;
    let Some(route) = request.route else {
        return error_response(Status::NotFound, head_only);
    };
    if request.method == Method::Other {
        return error_response(Status::MethodNotAllowed, false);
    }
    let snapshot = answer(route == Route::Metrics);
    match route {
        Route::Livez if snapshot.alive => response(Status::Ok, PLAIN, b"ok\n", head_only),
        Route::Livez => response(Status::ServiceUnavailable, PLAIN, b"not alive\n", head_only),
        Route::Readyz if snapshot.ready => response(Status::Ok, PLAIN, b"ready\n", head_only),
        Route::Readyz => {
            let mut reason = snapshot.ready_reason;
            if reason.is_empty() {
                reason.push_str("not ready");
            }
            if !reason.ends_with('\n') {
                reason.push('\n');
            }
            response(
                Status::ServiceUnavailable,
                PLAIN,
                reason.as_bytes(),
                head_only,
            )
        }
        Route::Metrics => response(Status::Ok, METRICS, snapshot.metrics.as_bytes(), head_only),
    }
}

fn error_response(status: Status, head_only: bool) -> Vec<u8> {
    let body = match status {
        Status::Ok => "ok\n",
        Status::BadRequest => "bad request\n",
        Status::NotFound => "not found: tend serves /livez, /readyz and /metrics\n",
        Status::MethodNotAllowed => "method not allowed: use GET or HEAD\n",
        Status::RequestTimeout => "request timeout\n",
        Status::HeaderFieldsTooLarge => "request header fields too large\n",
        Status::ServiceUnavailable => "service unavailable\n",
    };
    response(status, PLAIN, body.as_bytes(), head_only)
}

/// Status line, headers, and the body unless the request was HEAD (whose answer still
/// says how long the body would be).
fn response(status: Status, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let allow = if status == Status::MethodNotAllowed {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        status.line(),
        body.len()
    );
    let mut out = Vec::with_capacity(head.len() + if head_only { 0 } else { body.len() });
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
