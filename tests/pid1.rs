//! tend as a real PID 1 (`unshare --pid --fork --mount-proc`): real signals, real orphans,
//! real exit codes. Needs root (or unprivileged user namespaces) and python3.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

fn sh(script: &str) -> Vec<String> {
    vec!["--".into(), "/bin/sh".into(), "-c".into(), script.into()]
}

fn run_pid1(args: &[String]) -> Running {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Running::start(pid1_command(&refs))
}

#[test]
fn exit_codes_are_passed_through() {
    for code in [0, 1, 2, 127, 255] {
        let mut t = run_pid1(&sh(&format!("exit {code}")));
        assert_eq!(t.code(LIMIT), code, "stderr: {}", t.stderr());
    }
}

#[test]
fn death_by_signal_is_128_plus_n() {
    for (sig, n) in [("KILL", 9), ("TERM", 15), ("SEGV", 11), ("USR1", 10)] {
        let mut t = run_pid1(&sh(&format!("kill -{sig} $$")));
        assert_eq!(t.code(LIMIT), 128 + n, "{sig}: {}", t.stderr());
    }
}

#[test]
fn exec_failures_exit_126_and_127_with_a_message() {
    let mut t = run_pid1(&["--".into(), "/no/such/program".into()]);
    assert_eq!(t.code(LIMIT), 127);
    assert!(
        t.stderr()
            .contains("/no/such/program: No such file or directory"),
        "{}",
        t.stderr()
    );
    let dir = tempfile::tempdir().unwrap();
    let not_executable = dir.path().join("data");
    std::fs::write(&not_executable, "just data").unwrap();
    let mut t = run_pid1(&["--".into(), not_executable.display().to_string()]);
    assert_eq!(t.code(LIMIT), 126);
    assert!(t.stderr().contains("Permission denied"), "{}", t.stderr());
    let mut t = run_pid1(&["--".into(), "/".into()]);
    assert_eq!(t.code(LIMIT), 126);
}

#[test]
fn remapped_exit_codes_become_zero() {
    let mut t = run_pid1(&[
        "-e".into(),
        "3".into(),
        "-e143".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        "exit 3".into(),
    ]);
    assert_eq!(t.code(LIMIT), 0);
    let mut t = run_pid1(&[
        "-e".into(),
        "143".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        "kill $$".into(),
    ]);
    assert_eq!(t.code(LIMIT), 0);
    let mut t = run_pid1(&[
        "-e".into(),
        "3".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        "exit 4".into(),
    ]);
    assert_eq!(t.code(LIMIT), 4);
}

#[test]
fn usage_errors_exit_1() {
    for args in [
        &[][..],
        &["-x", "--", "true"],
        &["-e", "300", "--", "true"],
        &["-p", "BOGUS", "--", "true"],
    ] {
        let out = Command::new(tend_bin()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Usage: tend"),
            "{args:?}"
        );
    }
}

#[test]
fn version_has_the_shape_docker_parses() {
    let out = Command::new(tend_bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(parts.len(), 5, "{text}");
    assert_eq!((parts[0], parts[1], parts[3]), ("tend", "version", "-"));
    assert_eq!(parts[2], env!("CARGO_PKG_VERSION"));
    assert!(parts[4].starts_with("git."), "{text}");
}

/// Every signal a child can receive, sent to tend, arrives at the child.
#[test]
fn every_forwardable_signal_reaches_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signals");
    let catcher = helper("sigcatch.py");
    let mut t = run_pid1(&[
        "--".into(),
        "python3".into(),
        catcher.display().to_string(),
        out.display().to_string(),
        "15".into(),
        "0".into(),
    ]);
    wait_ready(&out);
    let tend = t.tend_pid_under_unshare();
    // Everything but KILL/STOP (uncatchable), CHLD (tend's own) and the fault signals; TERM
    // last because it makes the catcher exit.
    let mut signals: Vec<i32> = (1..=31)
        .filter(|n| ![4, 5, 7, 8, 9, 11, 15, 17, 19, 21, 22, 31].contains(n))
        .collect();
    signals.extend([34, 35, 40, 50, 63, 64]);
    for &n in &signals {
        send(tend, &n.to_string());
        let want = n.to_string();
        wait_for(&format!("signal {n} at the child"), LIMIT, || {
            lines(&out).contains(&want).then_some(())
        });
    }
    send(tend, "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    let got = lines(&out);
    assert_eq!(got.last().map(String::as_str), Some("15"));
}

/// As with tini, SIGTTIN and SIGTTOU sent to tend are dropped: forwarded to the child they
/// would stop it (its default action) or its whole group with `-g`.
#[test]
fn terminal_stop_signals_are_not_forwarded() {
    for group in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("signals");
        let catcher = helper("sigcatch.py");
        let mut args: Vec<String> = if group { vec!["-g".into()] } else { vec![] };
        args.extend([
            "--".into(),
            "python3".into(),
            catcher.display().to_string(),
            out.display().to_string(),
            "15".into(),
            "0".into(),
        ]);
        let mut t = run_pid1(&args);
        wait_ready(&out);
        let tend = t.tend_pid_under_unshare();
        send(tend, "TTIN");
        send(tend, "TTOU");
        // A real-time signal is taken after any pending standard one: once it is at the
        // child, tend has dealt with TTIN and TTOU.
        send(tend, "40");
        wait_for("signal 40 at the child", LIMIT, || {
            lines(&out).contains(&"40".to_string()).then_some(())
        });
        send(tend, "TERM");
        assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
        let got = lines(&out);
        assert_eq!(got[1..], ["40", "15"], "with -g: {group}");
    }
}

/// A burst: every queued real-time signal is forwarded exactly once; standard signals that
/// the kernel may merge still arrive, and tend keeps forwarding afterwards.
#[test]
fn a_burst_of_signals_is_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signals");
    let catcher = helper("sigcatch.py");
    let mut t = run_pid1(&[
        "--".into(),
        "python3".into(),
        catcher.display().to_string(),
        out.display().to_string(),
        "15".into(),
        "9".into(),
    ]);
    wait_ready(&out);
    let tend = t.tend_pid_under_unshare();
    let burst = format!(
        "import os\nfor i in range(500):\n    os.kill({tend}, 36)\n    os.kill({tend}, [10, 12, 1, 28][i % 4])\n"
    );
    assert!(
        Command::new("python3")
            .args(["-c", &burst])
            .status()
            .unwrap()
            .success()
    );
    wait_for("500 real-time signals at the child", LIMIT, || {
        (lines(&out).iter().filter(|l| *l == "36").count() >= 500).then_some(())
    });
    let got = lines(&out);
    assert_eq!(
        got.iter().filter(|l| *l == "36").count(),
        500,
        "real-time signals are never merged"
    );
    for n in ["10", "12", "1", "28"] {
        assert!(got.iter().any(|l| l == n), "signal {n} never arrived");
    }
    send(tend, "TERM");
    assert_eq!(t.code(LIMIT), 9);
}

/// `-g`: a signal reaches a grandchild in the child's process group.
#[test]
fn dash_g_reaches_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signals");
    let catcher = helper("sigcatch.py");
    // The shell ignores USR1 and TERM itself; only the grandchild (same group, not job-controlled)
    // can report it. TERM makes the grandchild exit 5; the shell's `wait` returns that.
    let script = format!(
        "trap '' USR1 TERM; python3 {} {} 15 5 & wait $!",
        catcher.display(),
        out.display()
    );
    let mut t = run_pid1(&[vec!["-g".to_string()], sh(&script)].concat());
    wait_ready(&out);
    let tend = t.tend_pid_under_unshare();
    send(tend, "USR1");
    wait_for("USR1 at the grandchild", LIMIT, || {
        lines(&out).contains(&"10".to_string()).then_some(())
    });
    send(tend, "TERM");
    assert_eq!(t.code(LIMIT), 5, "{}", t.stderr());
}

/// Without `-g` only the child gets the signal, not the rest of its group.
#[test]
fn without_dash_g_only_the_child_is_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signals");
    let catcher = helper("sigcatch.py");
    // The shell exits 7 on USR1; the grandchild would record it if it got it too.
    let script = format!(
        "trap 'exit 7' USR1; python3 {} {} 99 & while :; do wait; done",
        catcher.display(),
        out.display()
    );
    let mut t = run_pid1(&sh(&script));
    wait_ready(&out);
    let tend = t.tend_pid_under_unshare();
    send(tend, "USR1");
    assert_eq!(t.code(LIMIT), 7, "{}", t.stderr());
    assert!(
        !lines(&out).contains(&"10".to_string()),
        "the grandchild got USR1"
    );
}

/// 1,000 double-forked orphans are all reaped, and none is left a zombie.
#[test]
fn a_thousand_orphans_are_reaped() {
    let mut t = run_pid1(&[
        "-w".into(),
        "--".into(),
        "python3".into(),
        helper("orphans.py").display().to_string(),
        "1000".into(),
    ]);
    assert_eq!(t.code(Duration::from_secs(120)), 0, "{}", t.stderr());
    assert!(t.stdout().contains("all 1000 orphans reaped"));
    let reaped = t
        .stderr()
        .lines()
        .filter(|l| l.contains("reaped zombie"))
        .count();
    assert!(
        reaped >= 1000,
        "tend reported {reaped} reaped zombies (expected >= 1000)"
    );
}

/// Not PID 1, with `-s`: tend is the subreaper and reaps the orphans itself.
#[test]
fn dash_s_reaps_orphans_when_not_pid1() {
    let mut cmd = Command::new(tend_bin());
    cmd.args(["-s", "-w", "--", "python3"])
        .arg(helper("orphans.py"))
        .arg("200");
    let mut t = Running::start(cmd);
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    let reaped = t
        .stderr()
        .lines()
        .filter(|l| l.contains("reaped zombie"))
        .count();
    assert!(reaped >= 200, "{reaped}");
}

/// Not PID 1 and not asked to be a subreaper: tend becomes one anyway and says so at -v.
#[test]
fn becomes_a_subreaper_by_itself_when_not_pid1() {
    let mut cmd = Command::new(tend_bin());
    cmd.args(["-v", "-w", "--", "python3"])
        .arg(helper("orphans.py"))
        .arg("50");
    let mut t = Running::start(cmd);
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
    assert!(
        t.stderr().contains("registered as a child subreaper"),
        "{}",
        t.stderr()
    );
    let mut cmd = Command::new(tend_bin());
    cmd.args(["--", "true"]);
    let mut quiet = Running::start(cmd);
    assert_eq!(quiet.code(LIMIT), 0);
    assert_eq!(
        quiet.stderr(),
        "",
        "nothing is said at the default verbosity"
    );
}

/// `-p SIGNAL`: when tend's parent dies, tend gets SIGNAL and (being tini) forwards it.
#[test]
fn parent_death_signal_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signals");
    // No --kill-child here: the launcher's death must be seen only through -p.
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        tend_bin(),
        "-p",
        "SIGUSR1",
        "--",
        "python3",
    ])
    .arg(helper("sigcatch.py"))
    .arg(&out)
    .args(["10", "0"]);
    let mut t = Running::start(cmd);
    wait_ready(&out);
    let tend = t.tend_pid_under_unshare();
    // Kill the launcher (tend's parent); tend forwards USR1 and the catcher exits.
    t.child.kill().unwrap();
    let _ = t.wait(LIMIT);
    wait_for("tend to exit after its parent died", LIMIT, || {
        (!std::path::Path::new(&format!("/proc/{tend}")).exists()).then_some(())
    });
    assert!(
        lines(&out).contains(&"10".to_string()),
        "the child never got USR1"
    );
}

/// A child that ignores SIGTERM keeps running: tend forwards, it does not kill.
#[test]
fn a_child_that_ignores_sigterm_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap '' TERM; trap 'echo alive; exit 5' INT; touch {}; while :; do sleep 0.05; done",
        ready.display()
    );
    let mut t = run_pid1(&[vec!["-vvv".to_string()], sh(&script)].concat());
    wait_for("ready", LIMIT, || ready.exists().then_some(()));
    let tend = t.tend_pid_under_unshare();
    send(tend, "TERM");
    wait_for("TERM forwarded", LIMIT, || {
        t.stderr().contains("forwarded SIGTERM").then_some(())
    });
    send(tend, "INT");
    assert_eq!(t.code(LIMIT), 5, "{}", t.stderr());
    assert!(t.stdout().contains("alive"));
}

/// The child starts with the launcher's signal mask and dispositions, not tend's.
#[test]
fn child_inherits_the_launchers_signal_state_not_tends() {
    // A launcher that blocks USR2 and ignores HUP (python also ignores PIPE and XFSZ).
    let launcher = "import os, signal, sys\nsignal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\nos.execvp(sys.argv[1], sys.argv[1:])\n";
    let show = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"];
    let direct = Command::new("python3")
        .args(["-c", launcher])
        .args(show)
        .output()
        .unwrap();
    let via_tend = Command::new("python3")
        .args(["-c", launcher, tend_bin(), "--"])
        .args(show)
        .output()
        .unwrap();
    assert!(direct.status.success() && via_tend.status.success());
    let direct = String::from_utf8(direct.stdout).unwrap();
    assert!(
        direct.contains("SigBlk:\t0000000000000800"),
        "the launcher did not block USR2: {direct}"
    );
    assert_eq!(String::from_utf8(via_tend.stdout).unwrap(), direct);
    // And with nothing special: nothing blocked, nothing ignored, whatever tend did.
    let via_tend = Command::new(tend_bin())
        .arg("--")
        .args(show)
        .output()
        .unwrap();
    let direct = Command::new(show[0]).args(&show[1..]).output().unwrap();
    assert_eq!(via_tend.stdout, direct.stdout);
}

/// `--stop-descendants`: what the child leaves behind gets SIGTERM, then SIGKILL after the
/// grace period, and tend exits with the child's code only once all of it is reaped.
#[test]
fn stop_descendants_terminates_leftovers_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let polite = dir.path().join("polite");
    // One leftover exits on TERM (and says so), one ignores TERM and needs KILL.
    let script = format!(
        "sh -c 'trap \"echo termed > {p}; exit 0\" TERM; while :; do sleep 0.05; done' & \
         sh -c 'trap \"\" TERM; while :; do sleep 0.05; done' & \
         sleep 0.2; exit 3",
        p = polite.display()
    );
    let mut t = run_pid1(
        &[
            vec!["-vvv".to_string(), "--stop-descendants=1s".to_string()],
            sh(&script),
        ]
        .concat(),
    );
    assert_eq!(t.code(LIMIT), 3, "{}", t.stderr());
    assert_eq!(
        std::fs::read_to_string(&polite).unwrap_or_default().trim(),
        "termed"
    );
    let err = t.stderr();
    assert!(
        err.contains("sending SIGTERM to the processes left behind"),
        "{err}"
    );
    assert!(err.contains("sending SIGKILL"), "{err}");
}

/// Without `--stop-descendants`, tini's behaviour: exit at once, leftovers or not.
#[test]
fn without_stop_descendants_exit_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let polite = dir.path().join("polite");
    let script = format!(
        "sh -c 'trap \"echo termed > {p}; exit 0\" TERM; while :; do sleep 0.05; done' & sleep 0.2; exit 4",
        p = polite.display()
    );
    let mut t = run_pid1(&sh(&script));
    assert_eq!(t.code(LIMIT), 4);
    assert!(
        !polite.exists(),
        "the leftover was sent TERM, as tini would not"
    );
}
