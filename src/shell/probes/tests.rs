use super::*;
use crate::core::Credentials;
use crate::core::{HostPort, Signal};
use notify::says_ready;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
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
    let check = Check::of(health);
    ProbeKey {
        svc,
        generation,
        check,
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
    results.sort_by_key(|(k, _)| k.check.is_health());
    assert_eq!(results, vec![(new, true), (health, true)]);
    drop(listener);
}

fn wait_for(pid: i32) -> ExitStatus {
    let pid = rustix::process::Pid::from_raw(pid).unwrap();
    let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
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
    assert!(n.is_empty());
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
    assert!(n.is_empty());
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
    assert!(n.is_empty());
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
