use super::*;
use crate::shell::serve::conn::MAX_CONNECTIONS;
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
    let (answer, asked) = answer_asking(head, snap);
    (answer, asked.is_some())
}

/// The answer to a complete head, and whether the snapshot was asked for with or without
/// the metrics.
fn answer_asking(head: &str, snap: Snapshot) -> (Answer, Option<bool>) {
    let mut asked = None;
    let bytes = respond(&request(head), |metrics| {
        asked = Some(metrics);
        snap
    });
    (decode(&bytes), asked)
}

/// The metrics text (and the /proc scan behind it) is made for `/metrics` only, not for
/// every probe of `/livez` or `/readyz`.
#[test]
fn only_metrics_asks_for_the_metrics_text() {
    for (path, wanted) in [
        ("/metrics", Some(true)),
        ("/livez", Some(false)),
        ("/readyz", Some(false)),
        ("/nope", None),
    ] {
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        let (_, asked) = answer_asking(&head, Snapshot::default());
        assert_eq!(asked, wanted, "{path}");
    }
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
            match Token::decode(ev.data.u64()) {
                Some(Token::HttpListener) => self.server.accept(&self.ep, Instant::now()),
                Some(Token::HttpConn(conn)) => {
                    let snap = &self.snapshot;
                    let answered = &mut self.answered;
                    let now = Instant::now();
                    self.server.on_event(&self.ep, conn, ev.flags, now, |_| {
                        *answered += 1;
                        snap.clone()
                    });
                }
                other => panic!("not the HTTP server's token: {other:?}"),
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
