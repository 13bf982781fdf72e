//! The control socket end to end: the real `tend run` as PID 1 of a pid namespace, the real
//! client commands (`tend status`, `tend stop`, ...) over a real unix socket, and raw
//! connections for what a well-behaved client never sends.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;
use tend::proto::Response;

const LIMIT: Duration = Duration::from_secs(30);

/// `tend ARGS...` run here, outside any tend's pid namespace.
fn client_raw(args: &[&str]) -> Out {
    output(
        Command::new(tend_bin())
            .args(args)
            .env_remove("TEND_SOCKET"),
    )
}

/// Sends raw bytes on a new connection to `t` and returns what tend answered before closing
/// it (see tests/helpers/rawclient.py).
fn raw(t: &Tend, bytes: &[u8], close_write: bool) -> String {
    let mut cmd = t.in_ns();
    cmd.arg("python3")
        .arg(helper("rawclient.py"))
        .arg(&t.sock)
        .arg("20");
    if close_write {
        cmd.arg("--close-write");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "raw client: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A service that runs until stopped.
const IDLE: &str = "sleep 1000";

#[test]
fn status_prints_a_table_or_json() {
    let mut t = Tend::start(&format!(
        "[services.web]\ncommand = \"{IDLE}\"\n\n[services.worker-long-name]\ncommand = \"{IDLE}\"\n"
    ));
    t.pid("web");
    t.pid("worker-long-name");
    let out = t.ok(&["status"]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "NAME",
            "STATE",
            "READY",
            "PID",
            "UPTIME",
            "CPU",
            "MEM",
            "RESTARTS",
            "LAST-EXIT"
        ],
        "{}",
        out.stdout
    );
    assert!(lines[0].starts_with("NAME              STATE    READY  PID  UPTIME  CPU  "));
    let web: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(web[0], "web");
    assert_eq!(web[1], "running");
    // Ready after start-secs (1s by default): either answer is right this early.
    assert!(web[2] == "yes" || web[2] == "no", "{}", lines[1]);
    assert!(web[3].parse::<i32>().unwrap() > 1, "a pid: {}", lines[1]);
    assert!(
        web[4].ends_with('s') || web[4].ends_with('m'),
        "{}",
        lines[1]
    );
    assert!(web[5].ends_with('s'), "CPU time: {}", lines[1]);
    assert!(web[6].ends_with("iB"), "memory: {}", lines[1]);
    assert_eq!(&web[7..], ["0", "-"]);
    assert!(lines[2].starts_with("worker-long-name  running  "));
    assert!(lines[3].starts_with("tend: up "), "{}", out.stdout);
    assert_eq!(lines.len(), 4);

    // --json: the answer as it came, one line.
    let out = t.ok(&["status", "--json", "web"]);
    assert_eq!(out.stdout.lines().count(), 1);
    let Response::Status(report) = serde_json::from_str(&out.stdout).unwrap() else {
        panic!("{}", out.stdout)
    };
    assert_eq!(report.services.len(), 1);
    assert_eq!(report.services[0].name, "web");
    assert_eq!(report.services[0].state, "running");
    assert!(!report.shutting_down);
    t.shutdown();
}

#[test]
fn status_of_named_services_exits_3_when_one_is_not_running() {
    let mut t = Tend::start(&format!(
        "[services.up]\ncommand = \"{IDLE}\"\n\n\
         [services.task]\ncommand = \"true\"\noneshot = true\n"
    ));
    t.wait_state("task", "exited");
    t.pid("up");
    assert_eq!(t.client(&["status", "up"]).code, 0);
    let out = t.client(&["status", "task"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout.contains("task") && out.stdout.contains("exit 0"),
        "{out:?}"
    );
    assert_eq!(t.client(&["status", "up", "task"]).code, 3);
    assert_eq!(t.client(&["status", "task", "--json"]).code, 3);
    // Without names, tend answering is success.
    assert_eq!(t.client(&["status"]).code, 0);
    let out = t.client(&["status", "nope"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("nope"), "{out:?}");
    t.shutdown();
}

#[test]
fn stop_keeps_a_service_down_whatever_its_restart_policy_and_start_brings_it_back() {
    let mut t = Tend::start(&format!(
        "[services.web]\ncommand = \"sh -c 'echo start >> $DIR/starts; exec {IDLE}'\"\n\
         restart = \"always\"\nbackoff = {{ initial = \"10ms\" }}\n\n\
         [services.other]\ncommand = \"{IDLE}\"\n"
    ));
    let first = t.pid("web");
    let other = t.pid("other");
    let out = t.ok(&["stop", "web"]);
    assert_eq!(out.stdout, "web: stopped\n");
    let s = t.service("web").unwrap();
    assert_eq!((s.state.as_str(), s.pid), ("stopped", None), "{s:?}");
    assert_eq!(t.client(&["status", "web"]).code, 3);
    // Watch for a while (far longer than the 10ms backoff): nothing restarts it.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_millis(500) {
        assert_eq!(t.service("web").unwrap().state, "stopped");
    }
    assert_eq!(lines(&t.path("starts")).len(), 1);

    // Stopping what is stopped is fine, and says so.
    let out = t.ok(&["stop", "web"]);
    assert!(out.stdout.starts_with("web: "), "{out:?}");

    let out = t.ok(&["start", "web"]);
    let pid = t.pid("web");
    assert_eq!(out.stdout, format!("web: running (pid {pid})\n"));
    assert_ne!(pid, first);
    assert_eq!(lines(&t.path("starts")).len(), 2);
    assert_eq!(t.pid("other"), other, "the other service was left alone");
    t.shutdown();
}

#[test]
fn restart_gives_new_pids_one_service_or_all() {
    let mut t = Tend::start(&format!(
        "[services.a]\ncommand = \"{IDLE}\"\n\n[services.b]\ncommand = \"{IDLE}\"\n"
    ));
    let (a, b) = (t.pid("a"), t.pid("b"));
    let out = t.ok(&["restart", "a"]);
    let a2 = t.pid("a");
    assert_ne!(a2, a);
    assert_eq!(out.stdout, format!("a: running (pid {a2})\n"));
    assert_eq!(t.pid("b"), b);

    let out = t.ok(&["restart", "--all"]);
    let (a3, b3) = (t.pid("a"), t.pid("b"));
    assert!(a3 != a2 && b3 != b);
    assert_eq!(
        out.stdout,
        format!("a: running (pid {a3})\nb: running (pid {b3})\n")
    );

    let out = t.ok(&["stop", "--all", "--json"]);
    let Response::Done { results } = serde_json::from_str(&out.stdout).unwrap() else {
        panic!("{}", out.stdout)
    };
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.ok && r.message == "stopped"));
    let out = t.ok(&["start", "--all"]);
    assert_eq!(out.stdout.lines().count(), 2, "{out:?}");
    t.pid("a");
    t.pid("b");
    t.shutdown();
}

#[test]
fn no_wait_returns_before_the_outcome() {
    // Takes a second to stop after SIGTERM, so a waited stop could not return in time.
    let slow = "sh -c 'trap \\\"sleep 1; exit 0\\\" TERM; while :; do sleep 0.05; done'";
    let mut t = Tend::start(&format!(
        "[services.slow]\ncommand = \"{slow}\"\nstop-timeout = \"20s\"\n"
    ));
    t.pid("slow");
    let out = t.ok(&["stop", "slow", "--no-wait"]);
    assert_eq!(out.stdout, "stop requested: slow\n");
    assert_eq!(t.service("slow").unwrap().state, "stopping");
    t.wait_state("slow", "stopped");

    let out = t.ok(&["start", "--all", "--no-wait"]);
    assert_eq!(out.stdout, "start requested: all services\n");
    t.pid("slow");

    // A waited stop answers only once it is down.
    let out = t.ok(&["stop", "slow"]);
    assert_eq!(out.stdout, "slow: stopped\n");
    assert_eq!(t.service("slow").unwrap().state, "stopped");
    t.shutdown();
}

#[test]
fn signal_reaches_the_service_and_reports_what_it_did() {
    let trap = "sh -c 'trap \\\"echo got >> $DIR/usr1\\\" USR1; echo ready > $DIR/ready; \
                while :; do sleep 0.05; done'";
    let mut t = Tend::start(&format!(
        "[services.trap]\ncommand = \"{trap}\"\n\n[services.off]\ncommand = \"{IDLE}\"\n"
    ));
    wait_ready(&t.path("ready"));
    let out = t.ok(&["signal", "USR1", "trap"]);
    assert!(
        out.stdout
            .starts_with("trap: sent SIGUSR1 to process group "),
        "{out:?}"
    );
    wait_for("the trap to run", LIMIT, || {
        lines(&t.path("usr1"))
            .contains(&"got".to_string())
            .then_some(())
    });
    assert_eq!(t.service("trap").unwrap().state, "running");

    // A service that is not running cannot be signalled: the operation fails.
    t.ok(&["stop", "off"]);
    let out = t.client(&["signal", "HUP", "off"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.starts_with("off: not running"), "{out:?}");

    let out = t.client(&["signal", "NOPE", "trap"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("unknown signal 'NOPE'"), "{out:?}");
    t.shutdown();
}

/// A follower that stops reading holds nothing up: the service writes far more than the
/// follower's backlog limit, tend keeps answering, and when the follower reads again it gets
/// whole lines, then an error saying it was cut off, then the end of the connection.
#[test]
fn a_follower_that_falls_behind_is_cut_off_with_the_reason() {
    use std::io::{BufRead, BufReader};
    let svc = "sh -c 'while [ ! -e $DIR/go ]; do sleep 0.05; done; \
               yes a-line-for-the-follower-to-fall-behind-on | head -n 400000; \
               touch $DIR/done; exec sleep 1000'";
    let mut t = Tend::start(&format!("[services.svc]\ncommand = \"{svc}\"\n"));
    let mut follower =
        std::os::unix::net::UnixStream::connect(&t.sock).unwrap_or_else(|e| panic!("connect: {e}"));
    let request = tend::proto::Request::new(tend::proto::Command::Logs {
        service: "svc".into(),
        lines: 0,
        follow: true,
    });
    follower
        .write_all(&tend::proto::encode(&request))
        .unwrap_or_else(|e| panic!("request: {e}"));
    // The first answer (the empty backlog) says the follow has begun.
    let mut reader = BufReader::new(follower.try_clone().unwrap_or_else(|e| panic!("{e}")));
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert!(first.contains("\"logs\""), "{first}");
    std::fs::write(t.path("go"), "").unwrap_or_else(|e| panic!("{e}"));
    // 400,000 lines of about 100 bytes each as JSON: ten times the backlog limit. The
    // service gets through them although nobody reads the follower's connection.
    wait_for("the service to write all its lines", LIMIT, || {
        t.path("done").exists().then_some(())
    });
    assert_eq!(t.status().services[0].state, "running");
    let mut lines = 0;
    let mut last = String::new();
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("read: {e}"));
        if n == 0 {
            break;
        }
        match serde_json::from_str::<Response>(&line) {
            Ok(Response::LogLine(l)) => {
                assert_eq!(l.line, "a-line-for-the-follower-to-fall-behind-on");
                lines += 1;
            }
            Ok(Response::Error { message }) => last = message,
            other => panic!("after {lines} lines: {other:?} from {line:?}"),
        }
    }
    assert!(last.contains("fell more than 4 MiB behind"), "{last:?}");
    assert!(lines > 0 && lines < 400_000, "{lines} lines");
    drop(follower);
    t.shutdown();
}

#[test]
fn logs_shows_the_last_lines_then_follows() {
    // Each step waits for a file, so that the order of lines across stdout and stderr (two
    // pipes) is known.
    let svc = "sh -c 'for i in 1 2 3 4 5; do echo line$i; done; \
               while [ ! -e $DIR/err ]; do sleep 0.05; done; echo oops >&2; \
               while [ ! -e $DIR/go ]; do sleep 0.05; done; echo after; exec sleep 1000'";
    let started = utc_now();
    let mut t = Tend::start(&format!("[services.svc]\ncommand = \"{svc}\"\n"));
    wait_for("the service's first lines", LIMIT, || {
        let out = t.ok(&["logs", "svc", "-n", "100"]);
        out.stdout.contains("line5").then_some(())
    });
    std::fs::write(t.path("err"), "").unwrap();
    let backlog = wait_for("the service's stderr line", LIMIT, || {
        let out = t.ok(&["logs", "svc", "-n", "100"]);
        out.stdout.contains("oops").then_some(out.stdout)
    });
    assert_eq!(
        backlog,
        "svc | line1\nsvc | line2\nsvc | line3\nsvc | line4\nsvc | line5\nsvc | oops\n"
    );
    assert_eq!(
        t.ok(&["logs", "svc", "-n", "2"]).stdout,
        "svc | line5\nsvc | oops\n"
    );
    // -t: the time tend read each line, as the host's clock gives it (`date -u`).
    let stamped = t.ok(&["logs", "svc", "-n", "2", "-t"]).stdout;
    let after = utc_now();
    let got: Vec<(&str, &str)> = stamped
        .lines()
        .map(|l| l.split_once(' ').unwrap_or_else(|| panic!("{stamped}")))
        .collect();
    assert_eq!(
        got.iter().map(|(_, rest)| *rest).collect::<Vec<_>>(),
        ["svc | line5", "svc | oops"]
    );
    for (stamp, _) in &got {
        // 2026-11-25T19:32:15.123Z, the shape of `date`'s: so it sorts as text, and the
        // lines were read after the test started and before it asked.
        assert_eq!(stamp.len(), started.len(), "{stamped}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T',
            "{stamped}"
        );
        assert!(
            started.as_str() <= *stamp && *stamp <= after.as_str(),
            "{stamp} not between {started} and {after}"
        );
    }
    let json = t.ok(&["logs", "svc", "-n", "1", "--json"]).stdout;
    let Response::Logs { service, lines } = serde_json::from_str(&json).unwrap() else {
        panic!("{json}")
    };
    assert_eq!(service, "svc");
    assert_eq!(
        (lines[0].line.as_str(), lines[0].stream.as_str()),
        ("oops", "stderr")
    );

    let mut follower = Running::start(t.command(&["logs", "svc", "-f", "-n", "1"]));
    let start = Instant::now();
    while follower.stdout() != "svc | oops\n" {
        assert!(
            start.elapsed() < LIMIT,
            "the follower's backlog: {:?} {:?}",
            follower.stdout(),
            follower.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(t.path("go"), "").unwrap();
    wait_for("the follower to see the new line", LIMIT, || {
        (follower.stdout() == "svc | oops\nsvc | after\n").then_some(())
    });
    // tend going away ends the follow: by the end of the connection, or (as here, inside
    // tend's pid namespace) by the SIGTERM that PID 1 sends every process left at the end of
    // a shutdown.
    t.shutdown();
    let ended = follower.wait(LIMIT);
    assert!(
        ended.code() == Some(0) || matches!(ended.signal(), Some(9 | 15)),
        "{ended:?}: {}",
        follower.stderr()
    );

    // Logs of a service that does not exist: an error.
    let mut t = Tend::start(&format!("[services.svc]\ncommand = \"{IDLE}\"\n"));
    let out = t.client(&["logs", "nope"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no service named 'nope'"), "{out:?}");
    t.shutdown();
}

#[test]
fn an_unknown_service_is_an_error_for_every_command() {
    let mut t = Tend::start(&format!("[services.web]\ncommand = \"{IDLE}\"\n"));
    let web = t.pid("web");
    for args in [
        &["start", "nope"][..],
        &["stop", "web", "nope"],
        &["restart", "nope"],
        &["signal", "TERM", "nope"],
        &["status", "nope"],
        &["logs", "nope"],
    ] {
        let out = t.client(args);
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert_eq!(
            out.stderr, "tend: error: no service named 'nope'\n",
            "{args:?}"
        );
        assert_eq!(out.stdout, "", "{args:?}");
    }
    // With --json, the error also comes as it came.
    let out = t.client(&["stop", "nope", "--json"]);
    assert_eq!(out.code, 1);
    let Response::Error { message } = serde_json::from_str(&out.stdout).unwrap() else {
        panic!("{out:?}")
    };
    assert_eq!(message, "no service named 'nope'");
    assert_eq!(
        t.pid("web"),
        web,
        "a request naming an unknown service does nothing"
    );
    t.shutdown();
}

#[test]
fn the_socket_comes_from_the_flag_then_the_environment() {
    let mut t = Tend::start(&format!("[services.web]\ncommand = \"{IDLE}\"\n"));
    let with_env = |socket: &Path, args: &[&str]| {
        output(
            t.in_ns()
                .arg(tend_bin())
                .args(args)
                .env("TEND_SOCKET", socket),
        )
    };
    let out = with_env(&t.sock, &["status", "web"]);
    assert_eq!(out.code, 0, "$TEND_SOCKET: {out:?}");
    let bad = t.path("nothing-here.sock");
    let out = with_env(
        &bad,
        &["status", "web", "--socket", t.sock.to_str().unwrap()],
    );
    assert_eq!(out.code, 0, "--socket wins over $TEND_SOCKET: {out:?}");
    // The connection options may come before the command as well.
    let sock = t.sock.to_str().unwrap();
    let out = with_env(&bad, &["--socket", sock, "status", "web"]);
    assert_eq!(out.code, 0, "tend --socket X status: {out:?}");
    assert!(out.stdout.contains("web"), "{out:?}");
    let out = with_env(&bad, &["--json", &format!("--socket={sock}"), "status"]);
    assert_eq!(out.code, 0, "tend --json --socket=X status: {out:?}");
    assert!(out.stdout.starts_with('{'), "{out:?}");
    let out = with_env(&bad, &["--socket", sock]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("must be followed by a command"),
        "{out:?}"
    );
    let out = with_env(&bad, &["status"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "cannot connect to tend at {}: no such socket",
            bad.display()
        )),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("--socket PATH or $TEND_SOCKET"),
        "{out:?}"
    );
    t.shutdown();
}

#[test]
fn a_client_outside_tends_pid_namespace_is_served() {
    // A client whose pid tend cannot see (SO_PEERCRED reports pid 0): the host side of a
    // container whose socket is bind-mounted out, or this test process.
    let mut t = Tend::start(&format!("[services.web]\ncommand = \"{IDLE}\"\n"));
    let out = client_raw(&["status", "web", "--socket", t.sock.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}\ntend's stderr:\n{}", t.t.stderr());
    assert!(out.stdout.contains("web"), "{out:?}");
    t.shutdown();
}

#[test]
fn shutdown_ends_tend_with_0_and_removes_the_socket() {
    let mut t = Tend::start(&format!(
        "[services.a]\ncommand = \"{IDLE}\"\n\n[services.b]\ncommand = \"{IDLE}\"\n"
    ));
    t.pid("a");
    // From outside tend's namespace, the client outlives tend and reports every time.
    let out = client_raw(&["shutdown", "--socket", t.sock.to_str().unwrap()]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "shutdown started\n"),
        "{out:?}"
    );
    assert_eq!(t.t.code(LIMIT), 0, "{}", t.t.stderr());
    assert!(!t.sock.exists(), "the socket file is removed at exit");
    let out = client_raw(&["status", "--socket", t.sock.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no such socket"), "{out:?}");
}

#[test]
fn shutdown_from_inside_the_container_reports_while_services_stop() {
    // `docker exec CONTAINER tend shutdown`: the client is in tend's pid namespace. A service
    // that takes a moment to stop leaves it the time to print.
    let slow = "sh -c 'trap \\\"sleep 1; exit 0\\\" TERM; while :; do sleep 0.05; done'";
    let mut t = Tend::start(&format!("[services.slow]\ncommand = \"{slow}\"\n"));
    t.pid("slow");
    let out = t.ok(&["shutdown"]);
    assert_eq!(out.stdout, "shutdown started\n");
    // A second request while shutting down is refused, and says why.
    let out = t.client(&["stop", "slow"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("shutting down"), "{out:?}");
    let status = t.status();
    assert!(status.shutting_down);
    assert_eq!(t.t.code(LIMIT), 0, "{}", t.t.stderr());
}

/// a unchanged, b removed, c changed, d added.
const BEFORE: &str = "[services.a]\ncommand = \"sleep 1001\"\n\n\
                      [services.b]\ncommand = \"sleep 1002\"\n\n\
                      [services.c]\ncommand = \"sleep 1003\"\n";
const AFTER: &str = "[services.a]\ncommand = \"sleep 1001\"\n\n\
                     [services.c]\ncommand = \"sleep 1013\"\n\n\
                     [services.d]\ncommand = \"sleep 1004\"\n";

#[test]
fn reload_applies_the_difference_and_leaves_the_rest_alone() {
    let mut t = Tend::start(BEFORE);
    let (a, c) = (t.pid("a"), t.pid("c"));
    t.pid("b");
    t.rewrite(AFTER);
    let out = t.ok(&["reload"]);
    assert_eq!(
        out.stdout,
        "added: d\nremoved: b\nchanged: c\nunchanged: a\n"
    );
    assert_eq!(
        t.pid("a"),
        a,
        "an untouched service keeps running as it was"
    );
    assert_ne!(t.pid("c"), c, "a changed service restarts");
    t.pid("d");
    let names: Vec<String> = t.status().services.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a", "c", "d"]);
    assert_eq!(t.client(&["status", "b"]).code, 1, "b is gone");

    // Reloading the same file again changes nothing.
    let out = t.ok(&["reload", "--json"]);
    let Response::Reloaded(report) = serde_json::from_str(&out.stdout).unwrap() else {
        panic!("{out:?}")
    };
    assert!(report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty());
    assert_eq!(report.unchanged, ["a", "c", "d"]);
    t.shutdown();
}

#[test]
fn a_reload_of_a_broken_file_changes_nothing_and_says_why() {
    let mut t = Tend::start(BEFORE);
    let pids: Vec<i32> = ["a", "b", "c"].iter().map(|n| t.pid(n)).collect();
    std::fs::write(
        &t.setup.config,
        "[services.a]\ncommand = \"sleep 1001\"\nbogus = 1\n",
    )
    .unwrap();
    let out = t.client(&["reload"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("nothing was changed"), "{out:?}");
    assert!(
        out.stderr.contains("tend.toml:3:1") && out.stderr.contains("bogus"),
        "the error points at the file: {out:?}"
    );
    let after: Vec<i32> = ["a", "b", "c"].iter().map(|n| t.pid(n)).collect();
    assert_eq!(after, pids);
    t.shutdown();
}

/// Out of file descriptors, a reload that adds services is refused before it changes
/// anything (it used to report the new services added and then abort tend when it started
/// them without log pipes); once descriptors are free again the same reload goes through.
#[test]
fn a_reload_without_descriptors_for_new_services_changes_nothing() {
    let mut t = Tend::start(BEFORE);
    let pids: Vec<i32> = ["a", "b", "c"].iter().map(|n| t.pid(n)).collect();
    t.rewrite(&format!(
        "{BEFORE}
[services.d]
command = \"sh -c 'echo hello from d; exec sleep 1005'\"

\
         [services.e]
command = \"sleep 1006\"
"
    ));
    let tend = t.t.tend_pid_under_unshare();
    let open_fds = std::fs::read_dir(format!("/proc/{tend}/fd"))
        .unwrap()
        .count();
    // Room for the control connection, the file being read and one pipe, not for the four
    // the two new services need.
    let limit = |soft: String| {
        let ok = Command::new("prlimit")
            .args(["--pid", &tend.to_string(), &format!("--nofile={soft}:")])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    limit((open_fds + 4).to_string());
    let out = t.client(&["reload"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("reload refused, nothing was changed")
            && out.stderr.contains("log pipes"),
        "{out:?}"
    );
    let after: Vec<i32> = ["a", "b", "c"].iter().map(|n| t.pid(n)).collect();
    assert_eq!(after, pids, "the running services are untouched");
    let names: Vec<String> = t.status().services.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(t.client(&["logs", "d"]).code, 1, "d was never added");
    // The pipes made for the refused reload were closed again.
    let now_open = std::fs::read_dir(format!("/proc/{tend}/fd"))
        .unwrap()
        .count();
    assert_eq!(now_open, open_fds);

    limit("1024".into());
    let out = t.ok(&["reload"]);
    assert_eq!(out.stdout, "added: d, e\nunchanged: a, b, c\n");
    t.pid("e");
    t.wait_log("d | hello from d");
    assert!(t.ok(&["logs", "d"]).stdout.contains("hello from d"));
    t.shutdown();
}

/// 200 clients that connect and say nothing, or half a request, take every slot: `tend status`
/// is still served at once (it takes the slot of the oldest silent one), tend says so once,
/// not once per connection, and every descriptor is given back.
#[test]
fn a_flood_of_silent_clients_does_not_keep_status_out() {
    let mut t = Tend::start(BEFORE);
    let tend = t.t.tend_pid_under_unshare();
    let fds = || {
        std::fs::read_dir(format!("/proc/{tend}/fd"))
            .unwrap()
            .count()
    };
    let before = fds();
    let mut flood = Vec::new();
    for i in 0..200 {
        let mut s = std::os::unix::net::UnixStream::connect(&t.sock).unwrap();
        if i % 2 == 0 {
            s.write_all(b"{\"v\":1,\"comm").unwrap();
        }
        flood.push(s);
    }
    // The flood is all there before the real client comes.
    wait_for("tend to take the flood", LIMIT, || {
        (fds() >= before + 64).then_some(())
    });
    let report = t.status();
    assert_eq!(report.services.len(), 3);
    let notes = t.t.stderr().matches("control socket:").count();
    assert_eq!(notes, 1, "said once per burst:\n{}", t.t.stderr());
    drop(flood);
    wait_for("tend's descriptors back to where they were", LIMIT, || {
        (fds() == before).then_some(())
    });
    t.ok(&["status"]);
    t.shutdown();
}

/// `tend restart` of a forking daemon (`pid-file`) answers once the new daemon is followed,
/// with the daemon's pid, so the next request finds it up; the daemon is not said to be
/// spawned.
#[test]
fn restarting_a_forking_daemon_answers_with_the_daemons_pid() {
    let daemon = "[services.daemon]\n\
        command = [\"sh\", \"-c\", \"sleep 0.2; setsid sleep 1000 </dev/null >/dev/null 2>&1 & \
        echo $! > $DIR/d.pid\"]\n\
        pid-file = \"d.pid\"\n";
    let mut t = Tend::start(daemon);
    let read_pid = || {
        std::fs::read_to_string(t.path("d.pid"))
            .unwrap()
            .trim()
            .to_string()
    };
    t.wait_log("following its daemon");
    let first = read_pid();
    let out = t.ok(&["restart", "daemon"]);
    let second = read_pid();
    assert_ne!(
        first, second,
        "a new daemon wrote its pid before the answer"
    );
    assert!(
        out.stdout.contains(&format!("running (pid {second})")),
        "{out:?}"
    );
    let err = t.t.stderr();
    assert!(
        err.contains(&format!(
            "'daemon' forked: following its daemon, pid {second}"
        )),
        "{err}"
    );
    assert!(!err.contains(&format!("with pid {second}")), "{err}");
    t.shutdown();
}

#[test]
fn sighup_reloads_too() {
    let mut t = Tend::start(BEFORE);
    let a = t.pid("a");
    t.rewrite(AFTER);
    send(t.t.tend_pid_under_unshare(), "HUP");
    t.pid("d");
    wait_for("b to be removed", LIMIT, || {
        t.service("b").is_none().then_some(())
    });
    assert_eq!(t.pid("a"), a);
    t.shutdown();
}

/// `autostart = false`: loaded stopped, its dependent waits, `tend start` starts both; a
/// reload that adds one leaves it stopped too.
#[test]
fn autostart_false_waits_for_tend_start_and_its_dependents_wait_for_it() {
    let mut t = Tend::start(&format!(
        "[services.tools]\ncommand = \"sh -c 'echo start >> $DIR/tools; exec {IDLE}'\"\n\
         autostart = false\n\n\
         [services.app]\ncommand = \"{IDLE}\"\ndepends-on = [\"tools\"]\n\n\
         [services.web]\ncommand = \"{IDLE}\"\n"
    ));
    t.pid("web");
    let tools = t.service("tools").unwrap();
    assert_eq!((tools.state.as_str(), tools.pid), ("stopped", None));
    assert_eq!(
        tools.reason.as_deref(),
        Some("autostart = false: `tend start tools` starts it")
    );
    let app = t.service("app").unwrap();
    assert_eq!(app.state, "waiting");
    assert_eq!(app.reason.as_deref(), Some("waiting for tools (started)"));
    assert!(!t.path("tools").exists(), "tools never ran");

    let out = t.ok(&["start", "tools"]);
    let pid = t.pid("tools");
    assert_eq!(out.stdout, format!("tools: running (pid {pid})\n"));
    t.pid("app");
    assert_eq!(t.service("tools").unwrap().restarts, 0, "a first start");
    assert_eq!(lines(&t.path("tools")).len(), 1);

    // Added by a reload: stays stopped; the others are left alone.
    let web = t.pid("web");
    let text = std::fs::read_to_string(&t.setup.config).unwrap();
    std::fs::write(
        &t.setup.config,
        format!("{text}\n[services.extra]\ncommand = \"{IDLE}\"\nautostart = false\n"),
    )
    .unwrap();
    t.ok(&["reload"]);
    assert_eq!(t.wait_state("extra", "stopped").pid, None);
    assert_eq!(t.pid("web"), web);
    t.shutdown();
}

#[test]
fn a_client_that_is_not_root_is_refused() {
    let mut t = Tend::start(&format!("[services.web]\ncommand = \"{IDLE}\"\n"));
    let web = t.pid("web");
    // The binary must be reachable by the unprivileged user: copy it next to the socket.
    let bin = t.path("tend-client");
    std::fs::copy(tend_bin(), &bin).unwrap();
    let as_nobody = || {
        output(
            t.in_ns()
                .arg("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&bin)
                .args(["status", "--socket"])
                .arg(&t.sock),
        )
    };
    let open = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(t.setup.dir.path(), 0o755);
    // The file system refuses first: the socket is 0600.
    let out = as_nobody();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("permission denied"), "{out:?}");
    assert_eq!(out.stdout, "");

    // With the file opened up, tend itself refuses, by the peer's credentials.
    open(&t.sock, 0o666);
    let out = as_nobody();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("uid 65534") && out.stderr.contains("may not use the control socket"),
        "{out:?}"
    );
    assert_eq!(out.stdout, "");
    t.wait_log("refused a client");
    assert_eq!(t.pid("web"), web);
    t.shutdown();
}

fn error_message(answer: &str) -> String {
    match serde_json::from_str(answer.trim()) {
        Ok(Response::Error { message }) => message,
        other => panic!("not one error line: {answer:?} ({other:?})"),
    }
}

#[test]
fn garbage_partial_and_huge_requests_get_an_error_or_a_close_and_tend_keeps_going() {
    let tick = "sh -c 'i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.05; done'";
    let mut t = Tend::start(&format!("[services.tick]\ncommand = \"{tick}\"\n"));
    let pid = t.pid("tick");

    let m = error_message(&raw(&t, b"hello\n", false));
    assert!(m.starts_with("malformed request"), "{m}");
    let m = error_message(&raw(&t, b"\xff\xfe\x00\n", false));
    assert!(m.starts_with("malformed request"), "{m}");
    let m = error_message(&raw(&t, b"{\"v\":2,\"cmd\":\"status\"}\n", false));
    assert!(m.contains("unsupported protocol version 2"), "{m}");
    let m = error_message(&raw(&t, b"{\"v\":1,\"cmd\":\"explode\"}\n", false));
    assert!(m.starts_with("malformed request"), "{m}");

    // Half a request, then the client's end closed: nothing to answer.
    let answer = raw(&t, b"{\"v\":1,\"cmd\":", true);
    assert!(
        answer.is_empty() || error_message(&answer).contains("malformed"),
        "{answer:?}"
    );

    // Half a request and silence: tend gives up on it after its deadline (the helper fails
    // if tend never closes the connection).
    let answer = raw(&t, b"{\"v\":1,", false);
    assert!(
        answer.is_empty() || error_message(&answer).contains("not received in time"),
        "{answer:?}"
    );

    // A request line longer than tend accepts.
    let huge = vec![b'x'; tend::proto::MAX_REQUEST * 4];
    let answer = raw(&t, &huge, false);
    assert!(
        answer.is_empty() || error_message(&answer).contains("too long"),
        "{answer:?}"
    );

    // Two requests on one connection: the first is answered, the rest ignored.
    let two = b"{\"v\":1,\"cmd\":\"status\"}\n{\"v\":1,\"cmd\":\"shutdown\"}\n";
    let answer = raw(&t, two, false);
    assert_eq!(answer.lines().count(), 1, "{answer:?}");
    assert!(answer.contains("\"reply\":\"status\""), "{answer:?}");

    // Clients that connect and go away without a word.
    for _ in 0..5 {
        assert_eq!(raw(&t, b"", true), "");
    }

    // tend is fine: same service, still answering, logs still flowing.
    assert_eq!(t.pid("tick"), pid);
    let last = t.ok(&["logs", "tick", "-n", "1"]).stdout;
    wait_for("a newer log line", LIMIT, || {
        let now = t.ok(&["logs", "tick", "-n", "1"]).stdout;
        (now != last && now.starts_with("tick | tick")).then_some(())
    });
    t.shutdown();
}

#[test]
fn completions_and_the_man_page_come_from_the_cli_definition() {
    let out = client_raw(&["completions", "bash"]);
    assert_eq!(out.code, 0, "{out:?}");
    for word in ["status", "restart", "--no-wait", "--socket"] {
        assert!(out.stdout.contains(word), "bash completion lacks {word}");
    }
    for shell in ["zsh", "fish"] {
        let out = client_raw(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        assert!(out.stdout.contains("logs"), "{shell}");
    }
    let out = client_raw(&["completions", "tcsh"]);
    assert_eq!(out.code, 2, "{out:?}");

    let out = client_raw(&["man"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with('.'), "roff: {}", &out.stdout[..40]);
    assert!(out.stdout.contains(".TH tend 1"), "a title header");
    assert!(out.stdout.contains(".SH SYNOPSIS"));
    assert!(out.stdout.contains(".SS \"tend status"));
    assert!(out.stdout.contains(".SH \"EXIT STATUS\""));
}

#[test]
fn client_usage_errors_exit_2_and_help_documents_the_exit_codes() {
    let out = client_raw(&["stop"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("NAME|--all"), "{out:?}");
    let out = client_raw(&["status", "--help"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("3 when a named service is not running"));
    // tini mode is untouched: `--` still makes "status" a program to run.
    let out = client_raw(&["--", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
}

#[test]
fn the_ring_keeps_exactly_the_last_lines_of_a_burst() {
    // 100,000 lines arrive in large chunks (copied into the ring a run at a time); then, in
    // one write, two short lines, a line too long to keep whole (split into pieces of 16 KiB)
    // and a last line.
    let config = r#"
[services.svc]
command = ['sh', '-c', 'seq 1 100000; exec python3 -c "import os, time; os.write(1, b\"a\\nb\\n\" + b\"x\" * 40000 + b\"\\nend\\n\"); time.sleep(1000)"']
logs = { ring = 1000 }
"#;
    let mut t = Tend::start(config);
    let out = wait_for("the last line in the ring", LIMIT, || {
        let out = t.ok(&["logs", "svc", "-n", "5000"]);
        out.stdout.ends_with("svc | end\n").then_some(out.stdout)
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1000);
    let want: Vec<String> = (99_007..=100_000).map(|i| format!("svc | {i}")).collect();
    assert_eq!(lines[..994], want[..]);
    assert_eq!(lines[994..996], ["svc | a", "svc | b"]);
    let long: Vec<usize> = lines[996..999].iter().map(|l| l.len() - 6).collect();
    assert_eq!(long, [16_384, 16_384, 40_000 - 2 * 16_384]);
    assert_eq!(t.ok(&["logs", "svc", "-n", "2"]).stdout.lines().count(), 2);
    t.shutdown();
}

/// The host's UTC time in the shape of `tend logs -t`, from `date`, so the test does not
/// trust tend's own date arithmetic.
fn utc_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%3NZ"])
        .output()
        .unwrap_or_else(|e| panic!("date: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// OpenShift's arbitrary uid (no /etc/passwd entry, not allowed to make /run/tend): tend
/// falls back to a place of its own (here `$XDG_RUNTIME_DIR/tend/`, the first fallback; the
/// `/tmp/tend-UID/` one is taken in the runc and Docker tests, whose /tmp is the container's),
/// says so, and a client of the same uid finds it there with no flag.
#[test]
fn an_arbitrary_uid_gets_a_socket_in_a_place_of_its_own() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Open enough for uid 12345 to reach its runtime directory and the file.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = dir.path().join("run-12345");
    std::fs::create_dir(&runtime).unwrap();
    std::os::unix::fs::chown(&runtime, Some(12345), Some(0)).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let config = dir.path().join("tend.toml");
    std::fs::write(
        &config,
        "[services.app]\ncommand = \"sh -c 'echo up as $(id -u); exec sleep 1000'\"\n",
    )
    .unwrap();
    let as_uid = |cmd: &mut Command| {
        cmd.args([
            "setpriv",
            "--reuid",
            "12345",
            "--regid",
            "0",
            "--clear-groups",
        ])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env_remove("TEND_SOCKET");
    };
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"]);
    as_uid(&mut cmd);
    cmd.arg(tend_bin()).arg("run").arg(&config);
    let mut t = Running::start(cmd);
    wait_for("the service as uid 12345", LIMIT, || {
        t.stdout().contains("app | up as 12345").then_some(())
    });
    let place = runtime.join("tend/control.sock");
    assert!(
        t.stderr()
            .contains(&format!("control socket at {}", place.display())),
        "{}",
        t.stderr()
    );
    let pid = t.tend_pid_under_unshare();
    let command = |args: &[&str]| {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &pid.to_string(), "--pid", "--"]);
        as_uid(&mut cmd);
        cmd.arg(tend_bin()).args(args);
        cmd
    };
    let client = |args: &[&str]| output(&mut command(args));
    let status = client(&["status"]);
    assert_eq!(status.code, 0, "{status:?}\n{}", t.stderr());
    assert!(status.stdout.contains("app"), "{status:?}");
    let mode = std::fs::metadata(runtime.join("tend")).unwrap();
    assert_eq!(mode.permissions().mode() & 0o777, 0o700);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&mode), 12345);
    // Shut down through that socket (the client may be SIGKILLed with the namespace before
    // it has printed): tend exits 0.
    shutdown_answered(&mut command(&["shutdown"]));
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}
