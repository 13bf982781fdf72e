//! Interactive use (`docker run -it`): tend as PID 1 on a terminal hands the foreground to
//! its child, so Ctrl-C, Ctrl-Z and job control behave as in a normal terminal.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;
use support::{tend_bin, wait_for};

/// Waits until the process running `cmdline` exactly has the terminal's foreground: bash
/// prints what it runs (and `fg` the job's name) before its child has made its group the
/// foreground one, and a Ctrl-C typed in between would reach bash instead of the job.
fn wait_foreground(cmdline: &str) {
    wait_for(
        &format!("`{cmdline}` to own the terminal's foreground"),
        Duration::from_secs(20),
        || {
            std::fs::read_dir("/proc")
                .ok()?
                .flatten()
                .find_map(|entry| {
                    let dir = entry.path();
                    let argv = std::fs::read(dir.join("cmdline")).ok()?;
                    if argv
                        .split(|&b| b == 0)
                        .filter(|a| !a.is_empty())
                        .collect::<Vec<_>>()
                        != cmdline.split(' ').map(str::as_bytes).collect::<Vec<_>>()
                    {
                        return None;
                    }
                    // /proc/PID/stat: "PID (COMM) STATE PPID PGRP SESSION TTY_NR TPGID ...".
                    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
                    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                    let (pgrp, tpgid) = (fields.get(2)?, fields.get(5)?);
                    (pgrp == tpgid).then_some(())
                })
        },
    );
}

#[test]
fn job_control_works_through_a_pty() {
    let cmd = format!(
        "unshare --pid --fork --mount-proc --kill-child {} -- bash --norc --noprofile -i",
        tend_bin()
    );
    let mut p = rexpect::spawn(&cmd, Some(20_000)).unwrap();
    // A prompt that cannot be confused with the echo of the command that sets it.
    p.send_line("PS1='P''S> '").unwrap();
    p.exp_string("PS> ").unwrap();

    // bash only enables job control when it owns the terminal's foreground.
    p.send_line("set -o | grep monitor").unwrap();
    p.exp_regex(r"monitor\s+on").unwrap();
    p.exp_string("PS> ").unwrap();

    // Ctrl-C interrupts the foreground job, not bash and not tend.
    // `$((6*7))X` prints 42X only once the job runs: the echo of the line cannot match it.
    p.send_line("echo $((6*7))X; sleep 4101").unwrap();
    p.exp_string("42X").unwrap();
    wait_foreground("sleep 4101");
    p.send_control('c').unwrap();
    p.exp_string("PS> ").unwrap();
    p.send_line("echo rc=$?").unwrap();
    p.exp_string("rc=130").unwrap();
    p.exp_string("PS> ").unwrap();

    // Ctrl-Z stops it; fg resumes it; Ctrl-C ends it.
    p.send_line("echo $((6*8))Y; sleep 4202").unwrap();
    p.exp_string("48Y").unwrap();
    wait_foreground("sleep 4202");
    p.send_control('z').unwrap();
    p.exp_string("Stopped").unwrap();
    p.exp_string("PS> ").unwrap();
    p.send_line("jobs").unwrap();
    p.exp_regex(r"\[1\]\+\s+Stopped\s+sleep 4202").unwrap();
    p.exp_string("PS> ").unwrap();
    p.send_line("fg").unwrap();
    p.exp_string("sleep 4202").unwrap();
    wait_foreground("sleep 4202");
    p.send_control('c').unwrap();
    p.exp_string("PS> ").unwrap();
    p.send_line("jobs; echo $((7*7))J").unwrap();
    let (before, _) = p.exp_regex("49J").unwrap();
    assert!(!before.contains("Stopped"), "the job survived: {before}");

    // The shell's exit code is tend's (and so the container's).
    p.send_line("exit 7").unwrap();
    p.exp_eof().unwrap();
    let status = p.process.wait().unwrap();
    assert_eq!(
        format!("{status:?}").rsplit(", ").next(),
        Some("7)"),
        "{status:?}"
    );
}
