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

use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// epoll tokens: the listener, and one per connection from `HTTP_CONN_BASE` (below the probe
/// tokens at 1 << 40).
pub const HTTP_LISTENER_TOKEN: u64 = 4;
pub const HTTP_CONN_BASE: u64 = 1 << 36;
/// Connection ids wrap below this, so tokens stay below the probes' tokens.
const CONN_IDS: u64 = super::probes::PROBE_BASE - HTTP_CONN_BASE;
const _: () = assert!(HTTP_CONN_BASE + CONN_IDS <= super::probes::PROBE_BASE);
// Far above the control connections' tokens (`control::CONN_BASE` + a connection number).
const _: () = assert!(HTTP_CONN_BASE >= super::control::CONN_BASE + (1 << 32));

/// Connections beyond this are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;

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
/// descriptors), the listener stays readable; it is taken out of epoll for this long rather
/// than waking the loop again and again.
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
    output: Vec<u8>,
    /// How much of `output` is sent.
    sent: usize,
    phase: Phase,
    deadline: Instant,
    /// The epoll interest registered now.
    interest: epoll::EventFlags,
}

pub struct HttpServer {
    listener: TcpListener,
    conns: HashMap<usize, Conn>,
    next_conn: u64,
    deadline: Duration,
    /// While the listener is out of epoll after an accept error: when it goes back in.
    paused_until: Option<Instant>,
}

impl HttpServer {
    /// Listens on `addr`: a non-blocking, close-on-exec socket with SO_REUSEADDR, so a
    /// restarted tend can bind again while old connections are in TIME_WAIT.
    pub fn bind(addr: SocketAddr) -> io::Result<HttpServer> {
        let family = match addr {
            SocketAddr::V4(_) => AddressFamily::INET,
            SocketAddr::V6(_) => AddressFamily::INET6,
        };
        let sock = net::socket_with(
            family,
            SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )?;
        net::sockopt::set_socket_reuseaddr(&sock, true)?;
        net::bind(&sock, &addr)?;
        net::listen(&sock, BACKLOG)?;
        Ok(HttpServer {
            listener: TcpListener::from(sock),
            conns: HashMap::new(),
            next_conn: 0,
            deadline: REQUEST_DEADLINE,
            paused_until: None,
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
            epoll::EventData::new_u64(HTTP_LISTENER_TOKEN),
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
                Err(_) => {
                    // Out of descriptors or memory: the listener would stay readable and
                    // wake the loop at once. Out of epoll for a moment; `expire` puts it back.
                    if epoll::delete(ep, &self.listener).is_ok() {
                        self.paused_until = Some(now + ACCEPT_PAUSE);
                    }
                    return;
                }
            };
            if self.conns.len() >= MAX_CONNECTIONS {
                drop(sock);
                continue;
            }
            let Some(id) = self.free_id() else {
                continue;
            };
            let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
            let token = epoll::EventData::new_u64(HTTP_CONN_BASE + id as u64);
            if epoll::add(ep, &sock, token, interest).is_err() {
                continue;
            }
            self.conns.insert(
                id,
                Conn {
                    sock,
                    input: Vec::new(),
                    output: Vec::new(),
                    sent: 0,
                    phase: Phase::Reading,
                    deadline: now + self.deadline,
                    interest,
                },
            );
        }
    }

    /// The next connection id not in use (ids wrap, so tokens stay in their range).
    fn free_id(&mut self) -> Option<usize> {
        for _ in 0..=MAX_CONNECTIONS {
            let id = self.next_conn as usize;
            self.next_conn = (self.next_conn + 1) % CONN_IDS;
            if !self.conns.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    /// Reads from a connection. Once a whole request head is in, calls `answer` for the
    /// snapshot (only for a request that needs one) and queues the response. Call it for
    /// EPOLLIN, EPOLLRDHUP, EPOLLHUP and EPOLLERR.
    pub fn read(
        &mut self,
        ep: &OwnedFd,
        conn: usize,
        now: Instant,
        answer: impl FnOnce() -> Snapshot,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
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
        c.output = response;
        c.phase = Phase::Writing;
        c.deadline = now + self.deadline;
        self.flush(ep, conn);
    }

    /// Writes what the client takes now; once the answer is out, shuts down the write side
    /// and waits for the client to hang up. Call it for EPOLLOUT.
    pub fn flush(&mut self, ep: &OwnedFd, conn: usize) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.phase != Phase::Writing {
            return;
        }
        while c.sent < c.output.len() {
            let rest = c.output.get(c.sent..).unwrap_or_default();
            match net::send(&c.sock, rest, SendFlags::NOSIGNAL) {
                Ok(0) => break,
                Ok(n) => c.sent += n,
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => {}
                Err(_) => {
                    self.close(ep, conn);
                    return;
                }
            }
        }
        let interest = if c.sent < c.output.len() {
            epoll::EventFlags::OUT
        } else {
            c.output = Vec::new();
            c.sent = 0;
            if net::shutdown(&c.sock, net::Shutdown::Write).is_err() {
                self.close(ep, conn);
                return;
            }
            c.phase = Phase::Draining;
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP
        };
        if interest != c.interest {
            let token = epoll::EventData::new_u64(HTTP_CONN_BASE + conn as u64);
            if epoll::modify(ep, c.sock.as_fd(), token, interest).is_err() {
                self.close(ep, conn);
                return;
            }
            c.interest = interest;
        }
    }

    fn close(&mut self, ep: &OwnedFd, conn: usize) {
        if let Some(c) = self.conns.remove(&conn) {
            let _ = epoll::delete(ep, &c.sock);
        }
    }

    /// When `expire` next has something to do: the earliest connection deadline, or the end
    /// of an accept pause.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .values()
            .map(|c| c.deadline)
            .chain(self.paused_until)
            .min()
    }

    /// Cuts off connections past their deadline: one that sent part of a request gets a 408
    /// and at most a second more to take it; anything else is closed. Ends an accept pause.
    pub fn expire(&mut self, ep: &OwnedFd, now: Instant) {
        if self.paused_until.is_some_and(|at| at <= now) {
            self.paused_until = None;
            if self.register(ep).is_err() {
                self.paused_until = Some(now + ACCEPT_PAUSE);
            }
        }
        let late: Vec<(usize, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(&id, c)| (id, c.phase == Phase::Reading && !c.input.is_empty()))
            .collect();
        for (id, started) in late {
            let Some(c) = self.conns.get_mut(&id).filter(|_| started) else {
                self.close(ep, id);
                continue;
            };
            c.input = Vec::new();
            c.output = error_response(Status::RequestTimeout, false);
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
        Parsed::Complete(request) => Some(respond(&request, answer)),
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
/// method are served.
fn respond(request: &Request, answer: impl FnOnce() -> Snapshot) -> Vec<u8> {
    let head_only = request.method == Method::Head;
    let Some(route) = request.route else {
        return error_response(Status::NotFound, head_only);
    };
    if request.method == Method::Other {
        return error_response(Status::MethodNotAllowed, false);
    }
    let snapshot = answer();
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
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::thread;

    /// A parsed response: status code, headers (names in lowercase), body.
    #[derive(Debug)]
    struct Answer {
        code: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Answer {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        fn text(&self) -> &str {
            std::str::from_utf8(&self.body).unwrap()
        }
    }

    fn decode(bytes: &[u8]) -> Answer {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        let httparse::Status::Complete(len) = response.parse(bytes).unwrap() else {
            panic!("incomplete response: {:?}", String::from_utf8_lossy(bytes));
        };
        Answer {
            code: response.code.unwrap(),
            headers: response
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8(h.value.to_vec()).unwrap(),
                    )
                })
                .collect(),
            body: bytes[len..].to_vec(),
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            alive: true,
            ready: true,
            ready_reason: String::new(),
            metrics: "# TYPE tend_uptime_seconds gauge\ntend_uptime_seconds 1.000\n".into(),
        }
    }

    fn request(head: &str) -> Request {
        match parse(head.as_bytes()) {
            Parsed::Complete(r) => r,
            other => panic!("{head:?}: {other:?}"),
        }
    }

    /// The answer to a complete head, and whether the snapshot was asked for.
    fn answer_to(head: &str, snap: Snapshot) -> (Answer, bool) {
        let mut asked = false;
        let bytes = respond(&request(head), || {
            asked = true;
            snap
        });
        (decode(&bytes), asked)
    }

    // ---- parsing and responses, without sockets ----

    #[test]
    fn parses_get_and_head_of_each_route() {
        for (head, method, route) in [
            (
                "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
                Method::Get,
                Route::Livez,
            ),
            ("HEAD /readyz HTTP/1.1\r\n\r\n", Method::Head, Route::Readyz),
            ("GET /metrics HTTP/1.0\r\n\r\n", Method::Get, Route::Metrics),
            (
                "GET /metrics?name[]=x HTTP/1.1\r\n\r\n",
                Method::Get,
                Route::Metrics,
            ),
            // Absolute form, which HTTP/1.1 servers must take.
            (
                "GET http://tend:9100/livez HTTP/1.1\r\n\r\n",
                Method::Get,
                Route::Livez,
            ),
            // Bare LF line ends.
            (
                "GET /livez HTTP/1.1\nHost: x\n\n",
                Method::Get,
                Route::Livez,
            ),
        ] {
            assert_eq!(
                request(head),
                Request {
                    method,
                    route: Some(route)
                },
                "{head:?}"
            );
        }
        for path in ["/", "/livez/", "/LIVEZ", "/metrics.txt", "*", "/livez%20"] {
            let head = format!("GET {path} HTTP/1.1\r\n\r\n");
            assert_eq!(request(&head).route, None, "{path}");
        }
        assert_eq!(
            request("POST /livez HTTP/1.1\r\nContent-Length: 0\r\n\r\n").method,
            Method::Other
        );
        assert_eq!(request("get /livez HTTP/1.1\r\n\r\n").method, Method::Other);
    }

    #[test]
    fn partial_heads_wait_for_more() {
        let whole = b"GET /livez HTTP/1.1\r\nHost: localhost:9100\r\nAccept: */*\r\n\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse(&whole[..cut]), Parsed::Partial, "cut at {cut}");
        }
        assert!(matches!(parse(whole), Parsed::Complete(_)));
        // A body after the head (or a second request) is ignored.
        let mut more = whole.to_vec();
        more.extend_from_slice(b"GET /metrics HTTP/1.1\r\n");
        assert_eq!(
            parse(&more),
            Parsed::Complete(Request {
                method: Method::Get,
                route: Some(Route::Livez)
            })
        );
    }

    #[test]
    fn malformed_heads_get_400() {
        for head in [
            "HELLO\r\n\r\n",
            "GET /livez\r\n\r\n",
            "GET /livez HTTP/2.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "GET /livez HTTP/1.1\r\nno colon here\r\n\r\n",
            "GET /livez HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET /li vez HTTP/1.1\r\n\r\n",
            "\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}\r\n\r\n",
        ] {
            assert_eq!(
                parse(head.as_bytes()),
                Parsed::Invalid(Status::BadRequest),
                "{head:?}"
            );
        }
    }

    #[test]
    fn heads_over_8_kib_or_with_too_many_headers_get_431() {
        let mut long = b"GET /livez HTTP/1.1\r\nX-Filler: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse(&long), Parsed::Invalid(Status::HeaderFieldsTooLarge));
        // Exactly 8 KiB, blank line included, is still fine.
        let mut fits = b"GET /livez HTTP/1.1\r\nX-Filler: ".to_vec();
        fits.resize(MAX_HEAD - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(fits.len(), MAX_HEAD);
        assert!(matches!(parse(&fits), Parsed::Complete(_)));
        let mut many = String::from("GET /livez HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert!(many.len() < MAX_HEAD);
        assert_eq!(
            parse(many.as_bytes()),
            Parsed::Invalid(Status::HeaderFieldsTooLarge)
        );
    }

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let head = b"GET / HTTP/1.1\r\nA: b\r\n\r\n";
        // Fed one byte at a time, the end is seen exactly at the last byte.
        for end in 1..=head.len() {
            assert_eq!(
                ends_head(&head[..end], end - 1),
                end == head.len(),
                "at {end}"
            );
        }
        // And in two pieces split anywhere.
        for cut in 0..head.len() {
            assert!(ends_head(head, cut), "cut at {cut}");
        }
        assert!(ends_head(b"GET / HTTP/1.1\n\n", 15));
        assert!(!ends_head(b"GET / HTTP/1.1\r\nA: b\r\n", 0));
    }

    #[test]
    fn each_route_answers_from_the_snapshot() {
        let (a, asked) = answer_to("GET /livez HTTP/1.1\r\n\r\n", snapshot());
        assert!(asked);
        assert_eq!((a.code, a.text()), (200, "ok\n"));
        assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(a.header("content-length"), Some("3"));
        assert_eq!(a.header("connection"), Some("close"));

        let (a, _) = answer_to("GET /readyz HTTP/1.1\r\n\r\n", snapshot());
        assert_eq!((a.code, a.text()), (200, "ready\n"));
        let not_ready = Snapshot {
            ready: false,
            ready_reason: "critical service 'db' is starting".into(),
            ..snapshot()
        };
        let (a, _) = answer_to("GET /readyz HTTP/1.1\r\n\r\n", not_ready);
        assert_eq!(
            (a.code, a.text()),
            (503, "critical service 'db' is starting\n")
        );
        let (a, _) = answer_to(
            "GET /readyz HTTP/1.1\r\n\r\n",
            Snapshot {
                ready: false,
                ..snapshot()
            },
        );
        assert_eq!((a.code, a.text()), (503, "not ready\n"));

        let (a, _) = answer_to("GET /metrics HTTP/1.1\r\n\r\n", snapshot());
        assert_eq!(a.code, 200);
        assert_eq!(a.text(), snapshot().metrics);
        assert_eq!(
            a.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        assert_eq!(
            a.header("content-length"),
            Some(snapshot().metrics.len().to_string().as_str())
        );

        let (a, _) = answer_to(
            "GET /livez HTTP/1.1\r\n\r\n",
            Snapshot {
                alive: false,
                ..snapshot()
            },
        );
        assert_eq!((a.code, a.text()), (503, "not alive\n"));
    }

    #[test]
    fn head_gets_the_headers_without_the_body() {
        let (a, asked) = answer_to("HEAD /metrics HTTP/1.1\r\n\r\n", snapshot());
        assert!(asked);
        assert_eq!(a.code, 200);
        assert_eq!(a.body, b"");
        assert_eq!(
            a.header("content-length"),
            Some(snapshot().metrics.len().to_string().as_str()),
            "the length the body would have"
        );
        let (a, _) = answer_to(
            "HEAD /readyz HTTP/1.1\r\n\r\n",
            Snapshot {
                ready: false,
                ready_reason: "shutting down".into(),
                ..snapshot()
            },
        );
        assert_eq!((a.code, a.body.len()), (503, 0));
        assert_eq!(a.header("content-length"), Some("14"));
        let (a, _) = answer_to("HEAD /nope HTTP/1.1\r\n\r\n", snapshot());
        assert_eq!((a.code, a.body.len()), (404, 0));
    }

    #[test]
    fn unknown_paths_get_404_and_other_methods_405_without_a_snapshot() {
        let (a, asked) = answer_to("GET /healthz HTTP/1.1\r\n\r\n", snapshot());
        assert!(!asked);
        assert_eq!(a.code, 404);
        assert_eq!(
            a.text(),
            "not found: tend serves /livez, /readyz and /metrics\n"
        );
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"] {
            let (a, asked) = answer_to(&format!("{method} /metrics HTTP/1.1\r\n\r\n"), snapshot());
            assert!(!asked, "{method}");
            assert_eq!(a.code, 405, "{method}");
            assert_eq!(a.header("allow"), Some("GET, HEAD"));
            assert_eq!(a.text(), "method not allowed: use GET or HEAD\n");
        }
        // The path decides first: an unknown path is not found, whatever the method.
        let (a, _) = answer_to("POST /nope HTTP/1.1\r\n\r\n", snapshot());
        assert_eq!(a.code, 404);
    }

    #[test]
    fn error_responses_are_complete() {
        for (status, code) in [
            (Status::BadRequest, 400),
            (Status::RequestTimeout, 408),
            (Status::HeaderFieldsTooLarge, 431),
        ] {
            let a = decode(&error_response(status, false));
            assert_eq!(a.code, code);
            assert_eq!(
                a.header("content-length"),
                Some(a.body.len().to_string().as_str())
            );
            assert_eq!(a.header("connection"), Some("close"));
            assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        }
    }

    // ---- the server on real sockets, with a small event loop ----

    /// The server with its own epoll instance, run by the test thread while clients run on
    /// others.
    struct Harness {
        server: HttpServer,
        ep: OwnedFd,
        snapshot: Snapshot,
        /// Snapshots asked for.
        answered: usize,
        /// The longest time one round of event handling took.
        slowest: Duration,
    }

    impl Harness {
        fn new() -> Harness {
            Harness::with_deadline(REQUEST_DEADLINE)
        }

        fn with_deadline(deadline: Duration) -> Harness {
            let mut server = HttpServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            server.deadline = deadline;
            let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
            server.register(&ep).unwrap();
            Harness {
                server,
                ep,
                snapshot: snapshot(),
                answered: 0,
                slowest: Duration::ZERO,
            }
        }

        fn addr(&self) -> SocketAddr {
            self.server.local_addr().unwrap()
        }

        /// One round of the loop: wait (at most `max`, or to the server's deadline), handle
        /// the events as the event loop does, expire.
        fn turn(&mut self, max: Duration) {
            let wait = self.server.next_deadline().map_or(max, |d| {
                d.saturating_duration_since(Instant::now()).min(max)
            });
            let ts = rustix::event::Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: i64::from(wait.subsec_nanos()),
            };
            let mut events = Vec::with_capacity(16);
            match epoll::wait(
                &self.ep,
                rustix::buffer::spare_capacity(&mut events),
                Some(&ts),
            ) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => panic!("epoll_wait: {e}"),
            }
            let started = Instant::now();
            for ev in events.iter() {
                let token = ev.data.u64();
                if token == HTTP_LISTENER_TOKEN {
                    self.server.accept(&self.ep, Instant::now());
                } else if token >= HTTP_CONN_BASE {
                    let conn = (token - HTTP_CONN_BASE) as usize;
                    let flags = ev.flags;
                    if flags.contains(epoll::EventFlags::OUT) {
                        self.server.flush(&self.ep, conn);
                    }
                    if flags.intersects(
                        epoll::EventFlags::IN
                            | epoll::EventFlags::RDHUP
                            | epoll::EventFlags::HUP
                            | epoll::EventFlags::ERR,
                    ) {
                        let snap = &self.snapshot;
                        let answered = &mut self.answered;
                        self.server.read(&self.ep, conn, Instant::now(), || {
                            *answered += 1;
                            snap.clone()
                        });
                    }
                } else {
                    panic!("unknown token {token}");
                }
            }
            self.server.expire(&self.ep, Instant::now());
            self.slowest = self.slowest.max(started.elapsed());
        }

        /// Runs the loop until `client` (on its own thread) returns.
        fn serve<T: Send + 'static>(
            &mut self,
            client: impl FnOnce(SocketAddr) -> T + Send + 'static,
        ) -> T {
            let addr = self.addr();
            let handle = thread::spawn(move || client(addr));
            let end = Instant::now() + Duration::from_secs(30);
            while !handle.is_finished() {
                assert!(Instant::now() < end, "the client did not finish");
                self.turn(Duration::from_millis(20));
            }
            handle.join().unwrap()
        }

        /// Runs the loop for `d`.
        fn run_for(&mut self, d: Duration) {
            let end = Instant::now() + d;
            while Instant::now() < end {
                self.turn(end.saturating_duration_since(Instant::now()));
            }
        }
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Sends `raw` and reads until the server closes.
    fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
        let mut s = connect(addr);
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn the_listener_is_non_blocking_close_on_exec_and_reuses_addresses() {
        let server = HttpServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let fd = server.listener.as_fd();
        assert!(
            rustix::io::fcntl_getfd(fd)
                .unwrap()
                .contains(rustix::io::FdFlags::CLOEXEC)
        );
        assert!(
            rustix::fs::fcntl_getfl(fd)
                .unwrap()
                .contains(rustix::fs::OFlags::NONBLOCK)
        );
        assert!(net::sockopt::socket_reuseaddr(fd).unwrap());
        // SO_REUSEADDR does not let a second listener take the port.
        let taken = HttpServer::bind(server.local_addr().unwrap())
            .err()
            .unwrap();
        assert_eq!(taken.kind(), ErrorKind::AddrInUse);
    }

    #[test]
    fn serves_each_route_over_tcp_and_closes() {
        let mut h = Harness::new();
        let answers = h.serve(|addr| {
            [
                "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n",
                "HEAD /metrics HTTP/1.0\r\n\r\n",
                "GET /nope HTTP/1.1\r\n\r\n",
                "DELETE /livez HTTP/1.1\r\n\r\n",
                "GARBAGE\r\n\r\n",
            ]
            .map(|raw| exchange(addr, raw.as_bytes()))
        });
        let codes: Vec<u16> = answers.iter().map(|a| decode(a).code).collect();
        assert_eq!(codes, [200, 200, 200, 200, 404, 405, 400]);
        assert_eq!(decode(&answers[0]).text(), "ok\n");
        assert_eq!(decode(&answers[2]).text(), snapshot().metrics);
        assert_eq!(decode(&answers[3]).body, b"");
        assert_eq!(h.answered, 4, "a snapshot for each served request only");
        h.run_for(Duration::from_millis(50));
        assert!(h.server.conns.is_empty());

        h.snapshot.ready = false;
        h.snapshot.ready_reason = "tend is shutting down".into();
        let answer = h.serve(|addr| exchange(addr, b"GET /readyz HTTP/1.1\r\n\r\n"));
        let answer = decode(&answer);
        assert_eq!(
            (answer.code, answer.text()),
            (503, "tend is shutting down\n")
        );
    }

    #[test]
    fn a_request_in_pieces() {
        let mut h = Harness::new();
        let answer = h.serve(|addr| {
            let mut s = connect(addr);
            for b in b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r".iter() {
                s.write_all(&[*b]).unwrap();
                thread::sleep(Duration::from_millis(1));
            }
            thread::sleep(Duration::from_millis(30));
            s.write_all(b"\n").unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            out
        });
        let answer = decode(&answer);
        assert_eq!(
            (answer.code, answer.text()),
            (200, snapshot().metrics.as_str())
        );
        assert_eq!(h.answered, 1);
    }

    #[test]
    fn a_half_closed_client_still_gets_its_answer() {
        let mut h = Harness::new();
        let answer = h.serve(|addr| {
            let mut s = connect(addr);
            s.write_all(b"GET /livez HTTP/1.1\r\n\r\n").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            out
        });
        assert_eq!(decode(&answer).code, 200);
        // Half-closed after part of a head: 400, and still readable.
        let answer = h.serve(|addr| {
            let mut s = connect(addr);
            s.write_all(b"GET /livez HTTP/1.1\r\nHost:").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            out
        });
        assert_eq!(decode(&answer).code, 400);
        h.run_for(Duration::from_millis(50));
        assert!(h.server.conns.is_empty());
    }

    /// The client sends all of an oversized head, and more, before it reads: the 431 still
    /// reaches it intact, because tend reads and drops the rest before closing (closing with
    /// unread bytes would reset the connection, and the client would lose the answer).
    #[test]
    fn an_oversized_head_gets_431_even_while_the_client_keeps_sending() {
        let mut h = Harness::new();
        let (sent, answer) = h.serve(|addr| {
            let mut s = connect(addr);
            let mut head = b"GET /metrics HTTP/1.1\r\nCookie: ".to_vec();
            head.resize(64 * 1024, b'c');
            let sent = s
                .write_all(&head)
                .and_then(|()| s.write_all(&vec![b'x'; 4 * 1024 * 1024]));
            let mut out = Vec::new();
            let read = s.read_to_end(&mut out).map(|_| out);
            (sent.map_err(|e| e.kind()), read.map_err(|e| e.kind()))
        });
        assert_eq!(sent, Ok(()), "tend took all the client sent");
        let answer = decode(&answer.unwrap());
        assert_eq!(answer.code, 431);
        assert_eq!(answer.text(), "request header fields too large\n");
        assert_eq!(h.answered, 0);
        h.run_for(Duration::from_millis(50));
        assert!(h.server.conns.is_empty());
    }

    /// Idle clients, a client that never finishes its head, and one that never reads its
    /// (large) answer: none of them delays anyone else, and each is cut off at its deadline.
    #[test]
    fn slow_clients_cannot_stall_the_loop() {
        let deadline = Duration::from_millis(800);
        let mut h = Harness::with_deadline(deadline);
        h.snapshot.metrics = "x".repeat(16 * 1024 * 1024);
        let (idle, partial, stuck) = h.serve(move |addr| {
            let idle: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
            let mut partial = connect(addr);
            partial.write_all(b"GET /livez HTTP/1.1\r\nHost").unwrap();
            let mut stuck = connect(addr);
            stuck.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            thread::sleep(Duration::from_millis(50));
            // Meanwhile, someone else is served at once.
            let started = Instant::now();
            let answer = exchange(addr, b"GET /livez HTTP/1.1\r\n\r\n");
            assert_eq!(decode(&answer).code, 200);
            assert!(started.elapsed() < deadline / 2, "{:?}", started.elapsed());
            (idle, partial, stuck)
        });
        // Once the quick client's hang-up is seen, 5 connections are left; the stuck one has
        // its answer half sent.
        h.run_for(Duration::from_millis(50));
        assert_eq!(h.server.conns.len(), 5);
        // Each is cut off at its deadline (the partial one after a moment to take its 408).
        h.run_for(deadline * 3);
        assert!(h.server.conns.is_empty(), "{}", h.server.conns.len());
        assert!(
            h.slowest < Duration::from_millis(500),
            "one round took {:?}",
            h.slowest
        );
        let answers = h.serve(move |_| {
            let read_all = |mut s: TcpStream| {
                let mut out = Vec::new();
                let result = s.read_to_end(&mut out);
                (out, result.is_ok())
            };
            let idle: Vec<_> = idle.into_iter().map(read_all).collect();
            (idle, read_all(partial), read_all(stuck))
        });
        let (idle, partial, stuck) = answers;
        for (bytes, _) in idle {
            assert_eq!(bytes, b"", "an idle connection is closed without a word");
        }
        assert_eq!(decode(&partial.0).code, 408);
        assert_eq!(decode(&partial.0).text(), "request timeout\n");
        assert!(
            stuck.0.len() < 16 * 1024 * 1024,
            "the stuck client cannot have it all"
        );
    }

    #[test]
    fn connections_beyond_64_are_closed_at_once() {
        let mut h = Harness::new();
        let kept = h.serve(|addr| {
            let kept: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| connect(addr)).collect();
            // Give the loop time to accept them all before the next one queues up.
            thread::sleep(Duration::from_millis(100));
            let mut extra = connect(addr);
            let mut buf = [0u8; 16];
            let started = Instant::now();
            match extra.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!("the 65th connection should be closed: {other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(1));
            kept
        });
        assert_eq!(h.server.conns.len(), MAX_CONNECTIONS);
        // One of them leaves; there is room again.
        let answer = h.serve(move |addr| {
            let mut kept = kept;
            drop(kept.pop());
            thread::sleep(Duration::from_millis(100));
            let answer = exchange(addr, b"GET /livez HTTP/1.1\r\n\r\n");
            drop(kept);
            answer
        });
        assert_eq!(decode(&answer).code, 200);
        h.run_for(Duration::from_millis(100));
        assert!(h.server.conns.is_empty(), "{}", h.server.conns.len());
    }

    #[test]
    fn clients_that_leave_early_leave_nothing_behind() {
        let mut h = Harness::new();
        h.snapshot.metrics = "y".repeat(1024 * 1024);
        h.serve(|addr| {
            for i in 0..50 {
                let mut s = connect(addr);
                let request: &[u8] = if i % 2 == 0 {
                    b"GET /metrics HTTP/1.1\r\n\r\n"
                } else {
                    b"GET /metr"
                };
                s.write_all(request).unwrap();
                if i % 3 == 0 {
                    // Reset rather than FIN.
                    rustix::net::sockopt::set_socket_linger(&s, Some(Duration::ZERO)).unwrap();
                }
            }
        });
        h.run_for(Duration::from_millis(200));
        assert!(h.server.conns.is_empty(), "{}", h.server.conns.len());
        let answer = h.serve(|addr| exchange(addr, b"GET /livez HTTP/1.1\r\n\r\n"));
        assert_eq!(decode(&answer).code, 200);
    }

    #[test]
    fn ids_wrap_below_the_probe_tokens() {
        let mut server = HttpServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        server.next_conn = CONN_IDS - 1;
        assert_eq!(server.free_id(), Some((CONN_IDS - 1) as usize));
        assert_eq!(server.free_id(), Some(0));
        assert_eq!(HTTP_CONN_BASE + CONN_IDS, 1 << 40);
    }
}
