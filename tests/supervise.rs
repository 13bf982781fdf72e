//! Supervisor mode (`tend run FILE`) with real processes, tend as a real PID 1 (or as a
//! subreaper where a test must look at processes after tend is gone).
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn count_lines(path: &Path) -> usize {
    lines(path).len()
}

#[test]
fn a_crashing_service_is_restarted_with_growing_backoff() {
    let s = Setup::new(
        r#"
[services.crashy]
command = "sh -c 'date +%s%N >> $DIR/starts; exit 1'"
backoff = { initial = "200ms", max = "10s", factor = 2.0 }
max-restarts = 3
"#,
    );
    let mut t = s.pid1();
    wait_log(&t, "giving up");
    let starts: Vec<u128> = lines(&s.path("starts"))
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 4, "first start and three restarts");
    for (i, pair) in starts.windows(2).enumerate() {
        let gap = Duration::from_nanos((pair[1] - pair[0]) as u64);
        let backoff = Duration::from_millis(200 << i);
        assert!(
            gap >= backoff,
            "restart {} came after {gap:?}, before its backoff {backoff:?}",
            i + 1
        );
    }
    let err = t.stderr();
    assert!(
        err.contains("restarting in 200ms")
            && err.contains("restarting in 400ms")
            && err.contains("restarting in 800ms"),
        "{err}"
    );
    assert!(
        err.contains("'crashy' has failed for good (code 1)"),
        "{err}"
    );
    // Not critical: tend stays up with the failed service (keep the scene) until told.
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn on_failure_does_not_restart_a_clean_exit() {
    let s = Setup::new(
        r#"
[services.task]
command = "sh -c 'echo run >> $DIR/runs; exit 0'"
restart = "on-failure"

[services.idle]
command = "sleep 1000"
"#,
    );
    let mut t = s.pid1();
    wait_log(&t, "'task' has ended (code 0)");
    assert!(
        t.child.try_wait().unwrap().is_none(),
        "tend must stay up: 'idle' still runs"
    );
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
    assert_eq!(count_lines(&s.path("runs")), 1);
}

#[test]
fn a_critical_services_exit_code_becomes_tends_after_the_others_stop() {
    let s = Setup::new(
        r#"
[services.shipper]
command = "sh -c 'trap \"echo stopped > $DIR/shipper; exit 0\" TERM; while :; do sleep 0.05; done'"

[services.app]
command = "sh -c 'sleep 0.3; exit 7'"
critical = true
restart = "never"
"#,
    );
    let mut t = s.pid1();
    assert_eq!(t.code(LIMIT), 7, "{}", t.stderr());
    assert_eq!(
        std::fs::read_to_string(s.path("shipper"))
            .unwrap_or_default()
            .trim(),
        "stopped"
    );
    assert!(
        t.stderr()
            .contains("critical service 'app' ended with code 7"),
        "{}",
        t.stderr()
    );
}

#[test]
fn a_critical_service_killed_by_a_signal_gives_128_plus_n() {
    let s = Setup::new(
        r#"
[services.app]
command = "sh -c 'kill -SEGV $$'"
critical = true
restart = "never"
"#,
    );
    let mut t = s.pid1();
    assert_eq!(t.code(LIMIT), 139, "{}", t.stderr());
}

#[test]
fn keep_the_scene_a_failed_non_critical_service_keeps_tend_up() {
    let s = Setup::new(
        r#"
[services.java]
command = "sh -c 'echo boom >&2; exit 1'"
restart = "never"
critical = false
"#,
    );
    let mut t = s.pid1();
    wait_log(&t, "'java' has failed for good (code 1)");
    assert!(t.stderr().contains("java | boom"), "{}", t.stderr());
    assert!(
        t.child.try_wait().unwrap().is_none(),
        "tend exited; the scene is gone"
    );
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn a_service_ignoring_sigterm_is_killed_at_its_timeout_while_others_stop_on_time() {
    let s = Setup::new(
        r#"
[tend]
shutdown-timeout = "8s"

[services.stubborn]
command = "sh -c 'trap \"\" TERM; touch $DIR/ready-a; while :; do sleep 0.05; done'"
stop-timeout = "1s"

[services.polite]
command = "sh -c 'trap \"touch $DIR/polite-stopped; exit 0\" TERM; touch $DIR/ready-b; while :; do sleep 0.05; done'"
stop-timeout = "5s"
"#,
    );
    let mut t = s.pid1();
    wait_for("both ready", LIMIT, || {
        (s.path("ready-a").exists() && s.path("ready-b").exists()).then_some(())
    });
    let start = Instant::now();
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    let took = start.elapsed();
    assert!(s.path("polite-stopped").exists());
    let err = t.stderr();
    let polite_done = err.find("'polite' (pid").expect("polite's exit is logged");
    let stubborn_killed = err
        .find("'stubborn' did not stop within its stop-timeout")
        .expect("stubborn was killed");
    assert!(
        polite_done < stubborn_killed,
        "polite waited for stubborn:\n{err}"
    );
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?}: longer than stubborn's timeout allows"
    );
}

#[test]
fn leftovers_of_a_crashed_service_die_before_it_restarts() {
    let s = Setup::new(
        r#"
[services.php]
command = ["sh", "-c", "if [ -f $DIR/pids ]; then for p in $(cat $DIR/pids); do kill -0 $p 2>/dev/null && echo LEFTOVER $p >> $DIR/leftovers; done; fi; sleep 1000 & a=$!; sleep 1000 & echo $a $! > $DIR/pids; echo $$ > $DIR/main; echo started >> $DIR/starts; wait"]
backoff = { initial = "10ms", max = "1s", factor = 2.0 }
stop-timeout = "2s"
"#,
    );
    let mut t = s.pid1();
    wait_for("first start", LIMIT, || {
        (count_lines(&s.path("starts")) == 1 && s.path("main").exists()).then_some(())
    });
    // Kill only the main process (as the OOM killer would), by its pid in the namespace.
    let tend = t.tend_pid_under_unshare();
    let main_ns: i32 = std::fs::read_to_string(s.path("main"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let script = format!("kill -KILL {main_ns}");
    let ok = Command::new("nsenter")
        .args(["-t", &tend.to_string(), "-p", "-m", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_for("second start", LIMIT, || {
        (count_lines(&s.path("starts")) == 2).then_some(())
    });
    assert!(
        !s.path("leftovers").exists(),
        "workers of the old instance survived: {:?}",
        lines(&s.path("leftovers"))
    );
    send(tend, "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn stopping_a_service_stops_its_whole_process_group() {
    // Not PID 1 here, so what survives tend can be seen from outside.
    let s = Setup::new(
        r#"
[services.forker]
command = ["sh", "-c", "sleep 1000 & a=$!; sh -c 'sleep 1000' & echo $a $! > $DIR/pids; wait"]
"#,
    );
    let mut cmd = Command::new(tend_bin());
    cmd.args(["run", s.config.to_str().unwrap()]);
    let mut t = Running::start(cmd);
    wait_for("the children to start", LIMIT, || {
        (lines(&s.path("pids")).len() == 1).then_some(())
    });
    let pids: Vec<i32> = lines(&s.path("pids"))[0]
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    send(t.child.id() as i32, "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty(), "pid {pid} outlived its service: {state}");
    }
}

#[test]
fn orphans_adopted_during_the_run_are_reaped() {
    let s = Setup::new(&format!(
        r#"
[services.orphaner]
command = ["python3", "{}", "300"]
restart = "never"

[services.idle]
command = "sleep 1000"
"#,
        helper("orphans.py").display()
    ));
    let mut t = s.pid1();
    wait_log(&t, "'orphaner' has ended (code 0)");
    assert!(
        t.stdout().contains("orphaner | all 300 orphans reaped"),
        "{}",
        t.stdout()
    );
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

/// SIGTTIN and SIGTTOU sent to tend stop no service (nor tend): they are not shutdown
/// signals and are not passed on; the services' first signal is the shutdown's TERM.
#[test]
fn terminal_stop_signals_stop_no_service() {
    let catcher = helper("sigcatch.py");
    let s = Setup::new(&format!(
        r#"
[services.a]
command = ["python3", "{0}", "$DIR/a", "15", "0"]

[services.b]
command = ["python3", "{0}", "$DIR/b", "15", "0"]
"#,
        catcher.display()
    ));
    let mut t = s.pid1();
    wait_ready(&s.path("a"));
    wait_ready(&s.path("b"));
    let tend = t.tend_pid_under_unshare();
    for _ in 0..3 {
        send(tend, "TTIN");
        send(tend, "TTOU");
    }
    send(tend, "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    for svc in ["a", "b"] {
        assert_eq!(lines(&s.path(svc))[1..], ["15"], "{svc}: {}", t.stderr());
    }
}

#[test]
fn every_service_completing_ends_tend_with_zero() {
    let s = Setup::new(
        r#"
[services.migrate]
command = "sh -c 'echo migrating; exit 0'"
oneshot = true

[services.seed]
command = "sh -c 'echo seeding; exit 0'"
oneshot = true
"#,
    );
    let mut t = s.pid1();
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    let out = t.stdout();
    assert!(
        out.contains("migrate | migrating") && out.contains("seed    | seeding"),
        "{out}"
    );
}

#[test]
fn stdout_and_stderr_stay_apart_and_partial_lines_are_flushed() {
    let s = Setup::new(
        r#"
[services.talker]
command = ["sh", "-c", "echo out-line; echo err-line >&2; printf no-newline; sleep 1000"]
"#,
    );
    let mut t = s.pid1();
    wait_log(&t, "talker | no-newline");
    assert!(t.stdout().contains("talker | out-line\n"));
    assert!(t.stderr().contains("talker | err-line\n"));
    assert!(!t.stdout().contains("err-line") && !t.stderr().contains("out-line"));
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

/// `logs.file`: the service's lines, both streams, also go to a file that is rotated by size,
/// keeping the newest files; every retained file holds whole lines and stays under max-size.
#[test]
fn a_log_file_gets_the_lines_and_is_rotated_by_size() {
    let s = Setup::new(
        r#"
[services.writer]
command = ["sh", "-c", "for i in $(seq 100 199); do echo \"line $i of the writer\"; done; echo err-line >&2"]
restart = "never"
critical = true
logs = { file = "writer.log", max-size = "1KiB", keep = 2 }
"#,
    );
    let mut t = s.pid1();
    assert_eq!(t.code(LIMIT), 0);
    let read = |name: &str| std::fs::read_to_string(s.path(name)).unwrap_or_default();
    let files = [
        read("writer.log.2"),
        read("writer.log.1"),
        read("writer.log"),
    ];
    assert!(read("writer.log.3").is_empty());
    for f in &files {
        assert!(
            !f.is_empty() && f.len() <= 1024 && f.ends_with('\n'),
            "{f:?}"
        );
    }
    let kept: Vec<&str> = files.iter().flat_map(|f| f.lines()).collect();
    assert!(kept.contains(&"err-line"), "{kept:?}");
    let numbered: Vec<&str> = kept.iter().copied().filter(|l| *l != "err-line").collect();
    let all: Vec<String> = (100..200)
        .map(|i| format!("line {i} of the writer"))
        .collect();
    // The newest lines, in order, with nothing missing between the kept files.
    assert!(numbered.len() >= 50, "{numbered:?}");
    assert_eq!(numbered, all[all.len() - numbered.len()..]);
    // tend's own stdout still got every line.
    assert_eq!(t.stdout().matches("writer | line ").count(), 100);
}

/// `pid-file`: a service that forks a daemon and exits (use case 1: php-fpm without -F). The
/// daemon becomes the service: killing it brings a new instance, a shutdown stops it with
/// its stop signal.
#[test]
fn a_forking_daemon_is_followed_through_its_pid_file() {
    let s = Setup::new(
        r#"
[services.daemon]
command = ["sh", "-c", "setsid sh -c 'trap \"echo stopped > $DIR/stopped; exit 0\" TERM; while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 & echo $! > $DIR/d.pid"]
pid-file = "d.pid"
backoff = { initial = "10ms" }
"#,
    );
    let mut t = s.pid1();
    let read_pid = || {
        std::fs::read_to_string(s.path("d.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
    };
    let first = wait_for("the first daemon to be followed", LIMIT, || {
        let pid = read_pid()?;
        t.stderr()
            .contains(&format!("'daemon' forked: following its daemon, pid {pid}"))
            .then_some(pid)
    });
    // The started process is gone, the daemon runs on under tend.
    assert!(t.stderr().contains("'daemon' (pid "), "{}", t.stderr());
    // Kill the daemon by its pid inside the namespace.
    let script = format!("kill -KILL {first}");
    let ok = Command::new("nsenter")
        .args([
            "-t",
            &t.tend_pid_under_unshare().to_string(),
            "-p",
            "-m",
            "sh",
            "-c",
            &script,
        ])
        .status()
        .unwrap();
    assert!(ok.success());
    let second = wait_for("a new daemon after the first was killed", LIMIT, || {
        let pid = read_pid().filter(|p| *p != first)?;
        t.stderr()
            .contains(&format!("following its daemon, pid {pid}"))
            .then_some(pid)
    });
    assert_ne!(first, second);
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    assert_eq!(
        std::fs::read_to_string(s.path("stopped")).unwrap(),
        "stopped\n",
        "the daemon got its stop signal"
    );
}

/// A daemon that does not lead its process group (started with `&`, no setsid): followed all
/// the same, and stopped through its group.
#[test]
fn a_daemon_outside_its_own_group_is_followed_and_stopped_through_the_group() {
    let s = Setup::new(
        r#"
[services.daemon]
command = ["sh", "-c", "sh -c 'trap \"echo stopped > $DIR/stopped; exit 0\" TERM; while :; do sleep 0.05; done' </dev/null >/dev/null 2>&1 & echo $! > $DIR/d.pid"]
pid-file = "d.pid"
"#,
    );
    let mut t = s.pid1();
    wait_for("the daemon to be followed", LIMIT, || {
        let pid: i32 = std::fs::read_to_string(s.path("d.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        t.stderr()
            .contains(&format!("following its daemon, pid {pid}"))
            .then_some(())
    });
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    assert_eq!(
        std::fs::read_to_string(s.path("stopped")).unwrap(),
        "stopped\n",
        "the daemon got its stop signal through its group"
    );
    assert!(!t.stderr().contains("did not stop"), "{}", t.stderr());
}

/// `[tend.shm]` (use case 6): a segment made by a service is saved when tend stops, and is
/// there again, bytes and all, for the services of the next run in a fresh IPC namespace. A
/// damaged save file stops the next start and is left alone.
#[test]
fn shared_memory_outlives_a_restart() {
    let config = |mode: &str| {
        format!(
            r#"
[tend.shm]
file = "shm.bin"
keys = [0x7e57]

[services.legacy]
command = ["python3", "{}", "{mode}", "0x7e57", "kept state"]
"#,
            helper("shm.py").display()
        )
    };
    let run = |s: &Setup| {
        let mut cmd = Command::new("unshare");
        cmd.args(["--ipc", "--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(tend_bin())
            .args(["run", s.config.to_str().unwrap()]);
        Running::start(cmd)
    };
    let s = Setup::new(&config("create"));
    let mut first = run(&s);
    wait_log(&first, "legacy | created");
    assert!(
        first
            .stderr()
            .contains("does not exist yet; nothing to restore")
    );
    send(first.tend_pid_under_unshare(), "TERM");
    assert_eq!(first.code(LIMIT), 0, "{}", first.stderr());
    assert!(
        first
            .stderr()
            .contains("saved 1 segment(s), 4096 bytes, to "),
        "{}",
        first.stderr()
    );

    std::fs::write(&s.config, config("read")).unwrap();
    let mut second = run(&s);
    wait_log(&second, "legacy | read: kept state");
    assert!(
        second
            .stderr()
            .contains("restored segment 0x00007e57 (4096 bytes)")
    );
    send(second.tend_pid_under_unshare(), "TERM");
    assert_eq!(second.code(LIMIT), 0, "{}", second.stderr());

    let saved = std::fs::read(s.path("shm.bin")).unwrap();
    let mut damaged = saved.clone();
    damaged[20] ^= 0xff;
    std::fs::write(s.path("shm.bin"), &damaged).unwrap();
    let mut third = run(&s);
    assert_eq!(third.code(LIMIT), 1);
    assert!(
        third.stderr().contains("cannot be read as saved segments"),
        "{}",
        third.stderr()
    );
    assert!(
        !third.stdout().contains("legacy |"),
        "a service started: {}",
        third.stdout()
    );
    assert_eq!(
        std::fs::read(s.path("shm.bin")).unwrap(),
        damaged,
        "the file was touched"
    );
}

/// tend's own fork refused at the process limit (a pids cgroup here, as a container's
/// `--pids-limit`) is reported as tend's failure, not as the program's.
#[test]
fn a_fork_refused_at_the_process_limit_is_said_to_be_tends() {
    let Some(cgroup) = TestCgroup::new("pids") else {
        eprintln!("skipped: no cgroup v1 pids controller to make a group in");
        return;
    };
    cgroup.set("pids.max", "4");
    let s = Setup::new(
        r#"
[services.svc1]
command = "sleep 1000"

[services.svc2]
command = "sleep 1000"

[services.svc3]
command = "sleep 1000"
restart = "never"
"#,
    );
    // In the group: unshare, tend, svc1 and svc2. svc3's fork is the fifth process.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"echo $$ > "$0" && exec "$@""#)
        .arg(cgroup.0.join("cgroup.procs"))
        .args(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(tend_bin())
        .args(["run", s.config.to_str().unwrap()]);
    let mut t = Running::start(cmd);
    wait_log(
        &t,
        "cannot run 'svc3': fork failed: Resource temporarily unavailable \
         (process limit reached?)",
    );
    assert!(!t.stderr().contains("sleep:"), "{}", t.stderr());
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}

#[test]
fn no_line_is_lost_when_tends_stdout_is_slow() {
    const N: usize = 200_000;
    let s = Setup::new(&format!(
        r#"
[services.firehose]
command = ["python3", "-c", "import sys\nw = sys.stdout.write\nfor i in range({N}): w('line %d %s\\n' % (i, 'x' * 60))\n"]
restart = "never"
"#
    ));
    let mut child = pid1_command(&["run", s.config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    let mut reads = 0u64;
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
        reads += 1;
        // The throttle: a slow reader for the first part of the stream.
        if reads < 300 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let text = String::from_utf8(text).unwrap();
    let mut expected = 0;
    for line in text.lines() {
        let rest = line
            .strip_prefix("firehose | line ")
            .unwrap_or_else(|| panic!("bad line: {line:?}"));
        let (num, pad) = rest.split_once(' ').unwrap();
        assert_eq!(
            num.parse::<usize>().unwrap(),
            expected,
            "out of order or lost"
        );
        assert_eq!(pad.len(), 60, "line {expected} is cut");
        expected += 1;
    }
    assert_eq!(expected, N);
}

#[test]
fn config_errors_name_the_place_and_start_nothing() {
    let cases: &[(&str, &str)] = &[
        ("[services.a]\ncommand = \"true\"\nbogus = 1\n", ":3:1"),
        (
            "[services.a]\ncommand = \"true\"\nrestart = \"sometimes\"\n",
            ":3:11",
        ),
        (
            "[services.a]\ncommand = \"true\"\nstop-timeout = \"soon\"\n",
            ":3:16",
        ),
        (
            "[services.a]\ncommand = \"true\"\nstop-signal = \"SIGNOPE\"\n",
            ":3:15",
        ),
        (
            "[services.a]\ncommand = \"true\"\nuser = \"no-such-user-here\"\n",
            ":3:8",
        ),
        (
            "[services.a]\ncommand = \"true\"\nenv-file = \"missing.env\"\n",
            ":3:12",
        ),
        ("[services.a]\ncommand = \"echo 'unterminated\"\n", ":2:17"),
        (
            "[tend]\nshutdown-timeout = 5\nfrob = true\n[services.a]\ncommand = \"true\"\n",
            ":3:1",
        ),
        (
            "[services.a]\ncommand = \"true\"\nsuccess-codes = [300]\n",
            ":3:18",
        ),
        ("[services.a]\ncommand = []\n", ":2:11"),
        ("[services.\"bad name!\"]\ncommand = \"true\"\n", ":1:"),
        ("not toml at all [\n", ":1:"),
    ];
    for (i, (toml, place)) in cases.iter().enumerate() {
        // Every file also has a service that would leave a mark if anything started.
        let s = Setup::new(&format!(
            "{toml}\n[services.marker]\ncommand = \"touch $DIR/started\"\n"
        ));
        let check = Command::new(tend_bin())
            .arg("check")
            .arg(&s.config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&check.stderr).to_string();
        assert_eq!(check.status.code(), Some(2), "case {i}: {toml}\n{err}");
        let want = format!("{}{place}", s.config.display());
        assert!(
            err.contains(&want),
            "case {i}: expected {want:?} in:\n{err}"
        );
        let mut t = Running::start(pid1_command(&["run", s.config.to_str().unwrap()]));
        assert_eq!(t.code(LIMIT), 2, "case {i}");
        assert!(t.stderr().contains(&want), "case {i}: {}", t.stderr());
        assert!(!s.path("started").exists(), "case {i}: something started");
    }
}

#[test]
fn check_accepts_a_valid_file_and_warns_about_timeouts() {
    let s = Setup::new(
        r#"
[tend]
shutdown-timeout = "2s"

[services.slow]
command = "sleep 1"
stop-timeout = "5s"
"#,
    );
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(&s.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok, 1 service"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning") && err.contains("slow"), "{err}");
}

#[test]
fn launch_settings_reach_the_process() {
    let s = Setup::new(
        r#"
[services.show]
command = "echo umask=$(umask) nofile=$(ulimit -n) pwd=$(pwd) greeting=$GREETING from=$FROM_FILE id=$(id -u):$(id -g) groups=$(id -G)"
shell = true
env = { GREETING = "hello world" }
env-file = "app.env"
workdir = "/tmp"
umask = "0027"
limits = { nofile = 1234 }
user = "nobody"
restart = "never"
"#,
    );
    std::fs::write(
        s.path("app.env"),
        "# comment\nFROM_FILE='from the file'\nGREETING=overridden\n",
    )
    .unwrap();
    let mut t = s.pid1();
    assert_eq!(
        t.code(LIMIT),
        0,
        "the only service completed: {}",
        t.stderr()
    );
    let out = t.stdout();
    let line = out
        .lines()
        .find(|l| l.starts_with("show | "))
        .unwrap_or_else(|| panic!("no output: {out}"));
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let uid = String::from_utf8_lossy(&nobody.stdout).trim().to_string();
    assert!(line.contains("umask=0027"), "{line}");
    assert!(line.contains("nofile=1234"), "{line}");
    assert!(line.contains("pwd=/tmp"), "{line}");
    assert!(
        line.contains("greeting=hello world"),
        "env overrides env-file: {line}"
    );
    assert!(line.contains("from=from the file"), "{line}");
    assert!(line.contains(&format!("id={uid}:")), "{line}");
    assert!(!line.contains("groups=0"), "root's groups leaked: {line}");
}

#[test]
fn dependencies_order_the_start_and_the_reverse_order_the_stop() {
    let s = Setup::new(
        r#"
[services.db]
command = ["sh", "-c", "trap 'if [ -f $DIR/app-stopped ]; then touch $DIR/db-stopped-after-app; fi; exit 0' TERM; touch $DIR/db-up; while :; do sleep 0.05; done"]
start-secs = "300ms"

[services.migrate]
command = ["sh", "-c", "test -f $DIR/db-up || exit 9; sleep 0.2; touch $DIR/migrated"]
oneshot = true
depends-on = { db = "ready" }

[services.app]
command = ["sh", "-c", "trap 'touch $DIR/app-stopped; exit 0' TERM; test -f $DIR/migrated && touch $DIR/app-saw-migration; while :; do sleep 0.05; done"]
depends-on = { migrate = "completed", db = "started" }
"#,
    );
    let mut t = s.pid1();
    wait_for("app to start", LIMIT, || {
        s.path("app-saw-migration").exists().then_some(())
    });
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    assert!(
        s.path("db-stopped-after-app").exists(),
        "db stopped before its dependent app:\n{}",
        t.stderr()
    );
}

/// `run-on = "shutdown"`: not run at start; run when the shutdown begins, while the service
/// it depends on is still up; that service is stopped only once the task has ended; a task
/// that overruns its stop-timeout is killed and the shutdown goes on.
#[test]
fn shutdown_tasks_run_first_while_their_dependencies_stay_up() {
    let s = Setup::new(
        r#"
[services.app]
command = ["sh", "-c", "trap 'test -f $DIR/task-done && touch $DIR/app-stopped-after-task; exit 0' TERM; echo $$ > $DIR/app-pid.new; mv $DIR/app-pid.new $DIR/app-pid; touch $DIR/app-up; while :; do sleep 0.05; done"]

[services.deregister]
command = ["sh", "-c", "echo deregistering; sleep 0.3; test -f $DIR/app-up && kill -0 $(cat $DIR/app-pid) && touch $DIR/task-saw-app; touch $DIR/task-done"]
run-on = "shutdown"
depends-on = ["app"]

[services.slow]
command = ["sh", "-c", "touch $DIR/slow-ran; exec sleep 100"]
run-on = "shutdown"
stop-timeout = "500ms"
depends-on = ["app"]
"#,
    );
    let mut t = s.pid1();
    wait_for("app to be up", LIMIT, || {
        s.path("app-up").exists().then_some(())
    });
    assert!(
        !s.path("task-done").exists(),
        "a shutdown task ran at start"
    );
    assert!(!s.path("slow-ran").exists(), "a shutdown task ran at start");
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    let stderr = t.stderr();
    assert!(s.path("task-saw-app").exists(), "app was gone: {stderr}");
    assert!(
        s.path("app-stopped-after-task").exists(),
        "app was stopped before the task ended: {stderr}"
    );
    assert!(s.path("slow-ran").exists());
    assert!(
        stderr
            .contains("shutdown task 'slow' did not end within its stop-timeout: sending SIGKILL"),
        "{stderr}"
    );
    assert!(
        t.stdout().contains("deregister | deregistering"),
        "{}",
        t.stdout()
    );
}

/// `finish`: after every end of the service's process, with runsv's two arguments (the exit
/// code or -1, the signal or 0), in the service's workdir, its lines prefixed like the
/// service's; the restart waits for it.
#[test]
fn finish_runs_after_every_end_with_the_exit_code_and_signal() {
    let s = Setup::new(
        r#"
[services.app]
command = ["sh", "-c", "echo run >> $DIR/trace; n=$(grep -c run $DIR/trace); if [ $n = 1 ]; then exit 3; elif [ $n = 2 ]; then kill -9 $$; else exec sleep 100; fi"]
workdir = "$DIR"
backoff = { initial = "10ms" }
finish = ["sh", "-c", "echo \"finish $1 $2 in $(pwd)\" >> trace; sleep 0.2; echo said by finish; echo finish-end >> trace", "finish"]
"#,
    );
    let mut t = s.pid1();
    let dir = s.dir.path().display().to_string();
    wait_for("three runs", LIMIT, || {
        (lines(&s.path("trace"))
            .iter()
            .filter(|l| *l == "run")
            .count()
            == 3)
            .then_some(())
    });
    assert_eq!(
        lines(&s.path("trace")),
        [
            "run".to_string(),
            format!("finish 3 0 in {dir}"),
            "finish-end".into(),
            "run".into(),
            format!("finish -1 9 in {dir}"),
            "finish-end".into(),
            "run".into(),
        ]
    );
    wait_log(&t, "app | said by finish");
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    // And at the shutdown, after the stop: killed by SIGTERM.
    assert_eq!(
        lines(&s.path("trace")).get(7),
        Some(&format!("finish -1 15 in {dir}"))
    );
    assert!(
        t.stderr().contains("finish of 'app' (pid "),
        "{}",
        t.stderr()
    );
}

#[test]
fn a_failed_dependency_keeps_its_dependents_from_starting() {
    let s = Setup::new(
        r#"
[services.migrate]
command = "sh -c 'exit 3'"
oneshot = true
restart = "never"

[services.app]
command = "touch $DIR/app-started"
depends-on = { migrate = "completed" }
"#,
    );
    let mut t = s.pid1();
    wait_log(
        &t,
        "'app' will not be started: its dependency 'migrate' has failed",
    );
    assert!(!s.path("app-started").exists());
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

/// When saving the `[tend.shm]` segments fails at the end, tend exits 1, and the exit code it
/// reports is the one it exits with: said last, after the save.
#[test]
fn a_failed_shm_save_is_reported_before_the_exit_code() {
    let s = Setup::new(&format!(
        r#"
[tend.shm]
file = "state/shm.bin"
keys = [0x7e58]

[services.legacy]
command = ["python3", "{}", "create", "0x7e58", "state"]
"#,
        helper("shm.py").display()
    ));
    std::fs::create_dir(s.path("state")).unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["--ipc", "--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(tend_bin())
        .args(["run", s.config.to_str().unwrap()]);
    let mut t = Running::start(cmd);
    wait_log(&t, "legacy | created");
    // Where the segments were to be saved is gone.
    std::fs::remove_dir(s.path("state")).unwrap();
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 1, "{}", t.stderr());
    let err = t.stderr();
    let tend_lines: Vec<&str> = err.lines().filter(|l| l.starts_with("tend: ")).collect();
    assert_eq!(
        tend_lines.last(),
        Some(&"tend: info: exiting with code 1"),
        "{err}"
    );
    assert!(!err.contains("exiting with code 0"), "{err}");
}
