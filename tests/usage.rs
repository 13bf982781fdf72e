//! What services cost, through the real binary: `tend run` as PID 1 of a pid namespace,
//! `tend status`, `tend top` and `/metrics` showing the CPU time, memory and processes of a
//! service's whole process group.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::*;
use tend::proto::Response;

const LIMIT: Duration = Duration::from_secs(30);

/// `name` ended by SIGKILL, reported as the OOM killer's (`oom`) or not.
fn assert_killed(t: &Tend, name: &str, oom: bool) {
    let service = t.service(name).unwrap();
    let exit = service.last_exit.clone().unwrap();
    assert_eq!(
        (exit.signal.as_deref(), exit.oom),
        (Some("KILL"), oom),
        "{service:?}\n{}",
        t.t.stderr()
    );
}

/// A `tend run` as PID 1 with `/metrics` on a port of its own.
fn start(services: &str) -> Tend {
    start_in(services, None)
}

/// The same, started inside the cgroup `cgroup` when one is given.
fn start_in(services: &str, cgroup: Option<&Path>) -> Tend {
    Tend::start_with(services, Options { http: true, cgroup })
}

/// A service whose shell starts two children in its group and runs a third to completion
/// (a busy loop it waits for): its CPU time includes the finished child's, its memory and
/// process count the three processes left.
#[test]
fn status_and_metrics_show_what_a_services_whole_group_uses() {
    let mut t = start(
        "[services.forks]\n\
         command = [\"sh\", \"-c\", \"sleep 1000 & sleep 1000 & \
         (i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); echo burnt; wait\"]\n\n\
         [services.off]\ncommand = \"sleep 1000\"\nautostart = false\n",
    );
    t.wait_log("forks | burnt");
    let forks = t.service("forks").unwrap();
    assert_eq!(forks.processes, Some(3), "sh and its two sleeps: {forks:?}");
    // The busy loop ran in a subshell the service's shell waited for: its time counts.
    let cpu = forks.cpu_ms.unwrap();
    assert!(cpu >= 100, "{forks:?}");
    let memory = forks.memory_bytes.unwrap();
    assert!(
        (300 << 10..1 << 30).contains(&memory),
        "three small processes: {forks:?}"
    );
    let off = t.service("off").unwrap();
    assert_eq!(
        (off.cpu_ms, off.memory_bytes, off.processes),
        (None, None, None)
    );

    // The table: CPU and MEM for the running one, dashes for the other.
    let out = t.client(&["status"]);
    let row = |name: &str| -> Vec<String> {
        let line = out.stdout.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().map(str::to_string).collect()
    };
    let (forks_row, off_row) = (row("forks"), row("off"));
    assert!(
        forks_row[5].ends_with('s') && forks_row[5] != "-",
        "{}",
        out.stdout
    );
    assert!(forks_row[6].ends_with("iB"), "{}", out.stdout);
    assert_eq!(&off_row[5..7], ["-", "-"], "{}", out.stdout);

    // /metrics: the same three measures, for the running service only.
    let metrics = t.metrics();
    assert!(
        metrics.contains("\ntend_service_processes{service=\"forks\"} 3\n"),
        "{metrics}"
    );
    let sample = |name: &str| -> f64 {
        let prefix = format!("{name}{{service=\"forks\"}} ");
        let line = metrics.lines().find(|l| l.starts_with(&prefix)).unwrap();
        line[prefix.len()..].parse().unwrap()
    };
    assert!(sample("tend_service_cpu_seconds_total") >= 0.1, "{metrics}");
    assert!(
        sample("tend_service_memory_bytes") >= (300 << 10) as f64,
        "{metrics}"
    );
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("tend_service_memory_bytes{service=\"off\"}")),
        "{metrics}"
    );
    t.shutdown();
}

/// A service that keeps one CPU busy, and one that sleeps.
const BUSY_AND_IDLE: &str = "[services.idle]\ncommand = \"sleep 1000\"\n\n\
                             [services.busy]\ncommand = [\"sh\", \"-c\", \"while :; do :; done\"]\n";

/// Off a terminal `tend top` prints one table after another, busiest first, and `-n` ends
/// it; `--json` gives the status answers as they came.
#[test]
fn top_prints_a_table_a_second_busiest_first() {
    let mut t = start(BUSY_AND_IDLE);
    wait_for("busy to have used some CPU", LIMIT, || {
        (t.service("busy").unwrap().cpu_ms? > 0).then_some(())
    });
    let out = t.client(&["top", "-n", "2"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !out.stdout.contains('\x1b'),
        "no escapes off a terminal: {out:?}"
    );
    let tables: Vec<&str> = out.stdout.split("\n\n").collect();
    assert_eq!(tables.len(), 2, "{}", out.stdout);
    for table in tables {
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "NAME", "STATE", "PID", "CPU%", "CPU", "MEM", "PROCS", "UPTIME"
            ],
            "{table}"
        );
        assert!(lines[1].starts_with("busy "), "busiest first: {table}");
        assert!(lines[2].starts_with("idle "), "{table}");
        assert!(lines[3].starts_with("tend: up "), "{table}");
    }
    let out = t.client(&["top", "-n", "1", "--json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let Response::Status(report) = serde_json::from_str(out.stdout.trim()).unwrap() else {
        panic!("{out:?}")
    };
    assert_eq!(report.services.len(), 2);
    let out = t.client(&["top", "nope"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("nope"), "{out:?}");
    t.shutdown();
}

/// On a terminal each table clears the screen first, and Ctrl-C ends `top` with 0.
#[test]
fn top_on_a_terminal_clears_the_screen_and_ends_cleanly_on_ctrl_c() {
    let mut t = start(BUSY_AND_IDLE);
    // From outside tend's pid namespace, as a client on the host would run it.
    let cmd = format!("{} top --socket {}", tend_bin(), t.sock.display());
    let mut p = rexpect::spawn(&cmd, Some(20_000)).unwrap();
    for _ in 0..2 {
        p.exp_string("\x1b[H\x1b[2J").unwrap();
        p.exp_regex(r"NAME\s+STATE\s+PID\s+CPU%").unwrap();
    }
    p.send_control('c').unwrap();
    p.exp_eof().unwrap();
    let status = p.process.wait().unwrap();
    assert!(
        matches!(status, rexpect::process::wait::WaitStatus::Exited(_, 0)),
        "{status:?}"
    );
    t.shutdown();
}

/// When tend goes away (here: shut down), `top` says so and ends with 0.
#[test]
fn top_ends_when_tend_goes_away() {
    let mut t = start(BUSY_AND_IDLE);
    let mut cmd = Command::new(tend_bin());
    cmd.args(["top", "--socket"])
        .arg(&t.sock)
        .env_remove("TEND_SOCKET");
    let mut top = Running::start(cmd);
    wait_for("a first table", LIMIT, || {
        top.stdout().contains("tend: up ").then_some(())
    });
    t.shutdown();
    assert_eq!(top.code(LIMIT), 0, "{}", top.stderr());
    assert!(
        top.stderr()
            .starts_with("tend top: tend has gone away or stopped answering: "),
        "{}",
        top.stderr()
    );
}

/// A service that holds 64 MiB with a memory-limit of 32 MiB: at the check (every 5 s) it
/// is stopped and restarted with the reason said, counted as a failed start, and with
/// `max-restarts = 1` given up on at the second time.
#[test]
fn a_service_over_its_memory_limit_is_restarted_then_given_up_on() {
    let mut t = start(
        "[services.hog]\n\
         command = [\"python3\", \"-c\", \"import sys, time; b = b'x' * (64 << 20); \
         print('holding', flush=True); time.sleep(1000)\"]\n\
         memory-limit = \"32MiB\"\nmax-restarts = 1\nstart-secs = \"0s\"\n\n\
         [services.small]\ncommand = \"sleep 1000\"\nmemory-limit = \"32MiB\"\n",
    );
    t.wait_log("| holding");
    t.wait_log(", over its memory-limit of 32 MiB: restarting");
    let said = t.t.stderr();
    let line = said
        .lines()
        .find(|l| l.contains("over its memory-limit"))
        .unwrap();
    assert!(
        line.starts_with("tend: error: 'hog' uses ") && line.contains(" MiB, over its"),
        "{line}"
    );
    wait_for("hog to be restarted", LIMIT, || {
        (t.service("hog").unwrap().restarts == 1).then_some(())
    });
    // The second time, it has failed one start more than max-restarts allows.
    wait_for("hog to be given up on", LIMIT, || {
        (t.service("hog").unwrap().state == "failed").then_some(())
    });
    assert!(
        t.t.stderr()
            .contains("'hog' failed 2 times in a row; giving up"),
        "{}",
        t.t.stderr()
    );
    // The small one, under its limit, is left alone.
    let small = t.service("small").unwrap();
    assert_eq!((small.state.as_str(), small.restarts), ("running", 0));
    assert!(!t.t.stderr().contains("'small' uses"), "{}", t.t.stderr());
    t.shutdown();
}

/// `tend check` takes the key, and points at a limit written without its unit.
#[test]
fn tend_check_validates_memory_limit() {
    let check = |toml: &str| {
        let setup = Setup::new(toml);
        let out = Command::new(tend_bin())
            .arg("check")
            .arg(&setup.config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr, setup)
    };
    let (code, stderr, _) = check("[services.a]\ncommand = \"a\"\nmemory-limit = \"512MiB\"\n");
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr, setup) = check("[services.a]\ncommand = \"a\"\nmemory-limit = 512\n");
    assert_eq!(code, Some(2), "{stderr}");
    let at = format!(
        "{}:3:16: error: memory-limit must be at least 1MiB, found 512 bytes",
        setup.config.display()
    );
    assert!(stderr.contains(&at), "{stderr}");
}

/// A cgroup v1 memory cgroup made for one test, with a limit (`-1`: none).
fn memory_cgroup(limit: &str) -> TestCgroup {
    let group = TestCgroup::new("memory").unwrap_or_else(|| {
        panic!(
            "this test needs the cgroup v1 memory controller mounted at /sys/fs/cgroup/memory \
             (see /proc/cgroups and /proc/mounts); the OOM classification itself is covered by \
             the core's tests and shell::oom's, on fake counter files"
        )
    });
    group.set("memory.limit_in_bytes", limit);
    group
}

/// The kernel's count of OOM kills in `group` itself (v1 counts none in the groups above).
fn oom_kills(group: &TestCgroup) -> u64 {
    group.number("memory.oom_control", Some("oom_kill"))
}

/// tend in a memory cgroup limited to 64 MiB, where a service allocates until the kernel's
/// OOM killer ends it: tend says so, shows LAST-EXIT `oom` and counts it in /metrics. A
/// SIGKILL from someone else (no OOM kill) and one sent through tend are not taken for it.
#[test]
fn a_service_the_oom_killer_ends_is_reported_as_such() {
    let cgroup = memory_cgroup("64M");
    let mut t = start_in(
        "[services.hog]\n\
         command = [\"python3\", \"-c\", \"import time\\nb = []\\ntime.sleep(0.5)\\n\
         while True: b.append(b'x' * (1 << 20))\"]\n\
         restart = \"never\"\n\n\
         [services.victim]\ncommand = [\"sleep\", \"7919.5\"]\nrestart = \"never\"\n\n\
         [services.signalled]\ncommand = \"sleep 1000\"\nrestart = \"never\"\n",
        Some(&cgroup.0),
    );
    wait_for("hog to be ended", LIMIT, || {
        (t.service("hog").unwrap().state == "failed").then_some(())
    });
    assert!(oom_kills(&cgroup) >= 1, "the kernel killed nothing?");
    assert_killed(&t, "hog", true);
    let stderr = t.t.stderr();
    assert!(
        stderr.contains("tend: error: 'hog' (pid ")
            && stderr.contains(") was killed by the kernel's OOM killer (out of memory)"),
        "{stderr}"
    );

    // kill -9 from outside tend, with no OOM kill: a plain SIGKILL.
    let out = Command::new("pkill")
        .args(["-KILL", "-f", "^sleep 7919.5$"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // And `tend signal KILL`: tend sent it.
    assert_eq!(t.client(&["signal", "KILL", "signalled"]).code, 0);
    for name in ["victim", "signalled"] {
        wait_for(&format!("{name} to be ended"), LIMIT, || {
            (t.service(name).unwrap().state == "failed").then_some(())
        });
        assert_killed(&t, name, false);
    }

    let out = t.client(&["status"]);
    let last_exit = |name: &str| {
        let line = out.stdout.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(8).unwrap().to_string()
    };
    assert_eq!(last_exit("hog"), "oom", "{}", out.stdout);
    assert_eq!(last_exit("victim"), "SIGKILL", "{}", out.stdout);
    assert_eq!(last_exit("signalled"), "SIGKILL", "{}", out.stdout);
    let metrics = t.metrics();
    for (name, n) in [("hog", 1), ("victim", 0), ("signalled", 0)] {
        let line = format!("\ntend_service_oom_kills_total{{service=\"{name}\"}} {n}\n");
        assert!(metrics.contains(&line), "{line}{metrics}");
    }
    t.shutdown();
}

/// cgroup v1 counts an OOM kill only in the victim's own memory cgroup, not in those above
/// it: a service that went into a memory cgroup of its own, below tend's, and was killed
/// there is still reported as killed by the OOM killer.
#[test]
fn a_service_the_oom_killer_ends_in_a_memory_cgroup_below_tends_is_reported_as_such() {
    let cgroup = memory_cgroup("-1");
    let below = cgroup.child("hog");
    below.set("memory.limit_in_bytes", "64M");
    let mut t = start_in(
        &format!(
            "[services.hog]\n\
             command = [\"sh\", \"-c\", \"echo $$ > \\\"$0/cgroup.procs\\\" && exec python3 -c \\\"$1\\\"\", \
             \"{}\", \"import time\\nb = []\\ntime.sleep(0.5)\\nwhile True: b.append(b'x' * (1 << 20))\"]\n\
             restart = \"never\"\n",
            below.0.display()
        ),
        Some(&cgroup.0),
    );
    wait_for("hog to be ended", LIMIT, || {
        (t.service("hog").unwrap().state == "failed").then_some(())
    });
    assert!(oom_kills(&below) >= 1, "the kernel killed nothing?");
    assert_eq!(
        oom_kills(&cgroup),
        0,
        "tend's own cgroup counted the kill below it: not what this test is about"
    );
    assert_killed(&t, "hog", true);
    assert!(
        t.metrics()
            .contains("\ntend_service_oom_kills_total{service=\"hog\"} 1\n")
    );
    t.shutdown();
}
