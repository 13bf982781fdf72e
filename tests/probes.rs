//! Readiness probes (tcp, http, notify-fd, sd_notify), the readiness timeout, health checks
//! that restart a service, and `tend health`, with real servers and tend as a real PID 1.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

/// A port nothing listens on now (bound and released by the test).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn a_tcp_readiness_probe_gates_the_dependent() {
    let port = free_port();
    let s = Setup::with_socket(&format!(
        r#"
[services.db]
command = ["python3", "$HTTP", "{port}", "$DIR", "0.5"]
ready = {{ tcp = "127.0.0.1:{port}", interval = "50ms", timeout = "20s" }}

[services.app]
command = ["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', {port})); open('$DIR/app-connected', 'w')"]
oneshot = true
depends-on = {{ db = "ready" }}
"#
    ));
    let mut t = s.pid1();
    wait_for("app to connect", LIMIT, || {
        s.path("app-connected").exists().then_some(())
    });
    assert!(
        !t.stderr().contains("'app' (pid"),
        "app never failed to connect: {}",
        t.stderr()
    );
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn notify_fd_and_sd_notify_make_a_service_ready() {
    let s = Setup::with_socket(
        r#"
[services.fdnotify]
command = ["sh", "-c", "sleep 0.3; touch $DIR/fd-before; echo >&3; exec sleep 1000"]
ready = { notify-fd = 3, timeout = "20s" }

[services.sdnotify]
command = ["python3", "-c", "import os, socket, time; time.sleep(0.3); open('$DIR/sd-before', 'w'); s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b'STATUS=warming up\\nREADY=1\\n', os.environ['NOTIFY_SOCKET']); time.sleep(1000)"]
ready = { sd-notify = true, timeout = "20s" }

[services.after]
command = ["sh", "-c", "test -f $DIR/fd-before && test -f $DIR/sd-before && touch $DIR/after-ok"]
oneshot = true
depends-on = { fdnotify = "ready", sdnotify = "ready" }
"#,
    );
    let mut t = s.pid1();
    wait_for("the dependent to run", LIMIT, || {
        s.path("after-ok").exists().then_some(())
    });
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}

#[test]
fn a_service_not_ready_in_time_is_restarted_as_a_failed_start() {
    let port = free_port();
    let s = Setup::with_socket(&format!(
        r#"
[services.never]
command = ["sh", "-c", "echo start >> $DIR/starts; exec sleep 1000"]
ready = {{ tcp = "127.0.0.1:{port}", interval = "50ms", timeout = "400ms" }}
backoff = {{ initial = "50ms", max = "1s", factor = 2.0 }}
max-restarts = 1
"#
    ));
    let mut t = s.pid1();
    wait_log(&t, "'never' has failed for good");
    assert!(
        t.stderr()
            .contains("'never' was not ready within its readiness timeout"),
        "{}",
        t.stderr()
    );
    assert_eq!(
        lines(&s.path("starts")).len(),
        2,
        "first start and one restart"
    );
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn failing_health_checks_restart_the_service() {
    let port = free_port();
    let s = Setup::with_socket(&format!(
        r#"
[services.web]
command = ["sh", "-c", "rm -f $DIR/broken; exec python3 $HTTP {port} $DIR"]
critical = true
ready = {{ http = "http://127.0.0.1:{port}/", interval = "50ms" }}
health = {{ http = "http://127.0.0.1:{port}/healthz", interval = "100ms", timeout = "1s", failures = 2 }}
backoff = {{ initial = "50ms", max = "1s", factor = 2.0 }}
"#
    ));
    let mut t = s.pid1();
    wait_for("web's pid", LIMIT, || {
        (!read(&s.path("pid")).is_empty()).then_some(())
    });
    let first = read(&s.path("pid"));
    // Break it only once it is ready (a broken server would never become ready).
    wait_for("web to be ready and healthy", LIMIT, || {
        (health(&s, &t).0 == 0).then_some(())
    });
    std::fs::write(s.path("broken"), "").unwrap();
    wait_log(&t, "'web' is unhealthy: restarting it");
    wait_for("a new instance", LIMIT, || {
        let pid = read(&s.path("pid"));
        (!pid.is_empty() && pid != first).then_some(())
    });
    assert!(
        t.stderr()
            .contains("health check of 'web' failed (2 of 2 in a row)"),
        "{}",
        t.stderr()
    );
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn tend_health_follows_readiness_and_failures() {
    let port = free_port();
    let s = Setup::with_socket(&format!(
        r#"
[services.api]
command = ["python3", "$HTTP", "{port}", "$DIR", "1.0"]
critical = true
ready = {{ http = "http://127.0.0.1:{port}/état?q=ü", interval = "50ms", timeout = "20s" }}

[services.batch]
command = "sh -c 'while [ ! -f $DIR/fail-now ]; do sleep 0.05; done; exit 4'"
restart = "never"
"#
    ));
    let t = s.pid1();
    wait_log(&t, "spawned 'api'");
    let (code, reason) = health(&s, &t);
    assert_eq!(code, 1, "api not ready yet: {reason}");
    assert!(reason.contains("api"), "{reason}");
    wait_for("api to be ready", LIMIT, || {
        (health(&s, &t).0 == 0).then_some(())
    });
    // What the file says is what the probe sends: non-ASCII percent-encoded, as loaded.
    assert_eq!(read(&s.path("last-path")), "/%C3%A9tat?q=%C3%BC");
    std::fs::write(s.path("fail-now"), "").unwrap();
    wait_log(&t, "'batch' has failed for good");
    let (code, reason) = health(&s, &t);
    assert_eq!(
        code, 1,
        "a failed service is not healthy (the scene is kept, no traffic)"
    );
    assert!(reason.contains("batch"), "{reason}");
}

#[test]
fn an_unhealthy_critical_service_that_gives_up_ends_the_container_with_its_code() {
    let port = free_port();
    let s = Setup::with_socket(&format!(
        r#"
[services.web]
command = ["sh", "-c", "touch $DIR/broken; exec python3 $HTTP {port} $DIR"]
critical = true
restart = "on-failure"
max-restarts = 1
start-secs = "0s"
health = {{ http = "http://127.0.0.1:{port}/", interval = "100ms", timeout = "1s", failures = 2 }}
backoff = {{ initial = "50ms", max = "1s", factor = 2.0 }}
"#
    ));
    let mut t = s.pid1();
    let code = t.code(LIMIT);
    assert_eq!(
        code,
        143,
        "killed with SIGTERM after failing its checks: {}",
        t.stderr()
    );
    assert!(
        t.stderr()
            .contains("critical service 'web' ended with code 143"),
        "{}",
        t.stderr()
    );
}

/// `tend health` from inside tend's pid namespace, as `docker exec` would run it.
fn health(s: &Setup, t: &Running) -> (i32, String) {
    let tend = t.tend_pid_under_unshare();
    let out = Command::new("nsenter")
        .args([
            "--target",
            &tend.to_string(),
            "--pid",
            "--",
            tend_bin(),
            "health",
            "--socket",
        ])
        .arg(s.path("ctl.sock"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// `GET path` on 127.0.0.1:port; the status code and the body.
fn get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn http_endpoints_report_liveness_readiness_and_metrics() {
    let port = free_port();
    let s = Setup::new(&format!(
        r#"
[tend]
http = "127.0.0.1:{port}"
socket = "$DIR/ctl.sock"

[services.app]
command = ["sh", "-c", "trap 'sleep 0.5; exit 0' TERM; while :; do sleep 0.05; done"]
critical = true
start-secs = "0s"
"#
    ));
    let mut t = s.pid1();
    wait_for("the endpoints", LIMIT, || {
        (std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()).then_some(())
    });
    assert_eq!(get(port, "/livez").0, 200);
    wait_for("ready", LIMIT, || {
        (get(port, "/readyz").0 == 200).then_some(())
    });
    let (code, metrics) = get(port, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("tend_service_up{service=\"app\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tend_service_ready{service=\"app\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE tend_orphans_reaped_total counter"),
        "{metrics}"
    );
    assert_eq!(get(port, "/nope").0, 404);
    // The moment shutdown starts, /readyz says 503 so Kubernetes stops routing.
    send(t.tend_pid_under_unshare(), "TERM");
    wait_for("503 during the shutdown", LIMIT, || {
        (get(port, "/readyz").0 == 503).then_some(())
    });
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn an_exec_readiness_probe_and_an_exec_health_check() {
    let s = Setup::with_socket(
        r#"
[services.db]
command = ["sh", "-c", "sleep 0.3; touch $DIR/db-ready; exec sleep 1000"]
ready = { exec = ["test", "-f", "$DIR/db-ready"], interval = "50ms", timeout = "20s" }
health = { exec = "test ! -f $DIR/db-broken", interval = "100ms", failures = 2 }
backoff = { initial = "50ms", max = "1s", factor = 2.0 }

[services.app]
command = ["sh", "-c", "test -f $DIR/db-ready && touch $DIR/app-ok"]
oneshot = true
depends-on = { db = "ready" }
"#,
    );
    let mut t = s.pid1();
    wait_for("app after db's exec probe", LIMIT, || {
        s.path("app-ok").exists().then_some(())
    });
    std::fs::write(s.path("db-broken"), "").unwrap();
    wait_log(&t, "'db' is unhealthy: restarting it");
    // Exec probes are reaped as probes, not counted as adopted orphans.
    let tend = t.tend_pid_under_unshare();
    let out = Command::new("nsenter")
        .args([
            "--target",
            &tend.to_string(),
            "--pid",
            "--",
            tend_bin(),
            "status",
            "--json",
            "--socket",
        ])
        .arg(s.path("ctl.sock"))
        .output()
        .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"orphans_reaped\":0"), "{json}");
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}
