//! Interactive use (`docker run -it`): tend as PID 1 on a terminal hands the foreground to
//! its child, so Ctrl-C, Ctrl-Z and job control behave as in a normal terminal.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::tend_bin;

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
    p.send_line("echo $((6*7))X; sleep 100").unwrap();
    p.exp_string("42X").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("PS> ").unwrap();
    p.send_line("echo rc=$?").unwrap();
    p.exp_string("rc=130").unwrap();
    p.exp_string("PS> ").unwrap();

    // Ctrl-Z stops it; fg resumes it; Ctrl-C ends it.
    p.send_line("echo $((6*8))Y; sleep 200").unwrap();
    p.exp_string("48Y").unwrap();
    p.send_control('z').unwrap();
    p.exp_string("Stopped").unwrap();
    p.exp_string("PS> ").unwrap();
    p.send_line("jobs").unwrap();
    p.exp_regex(r"\[1\]\+\s+Stopped\s+sleep 200").unwrap();
    p.exp_string("PS> ").unwrap();
    p.send_line("fg").unwrap();
    p.exp_string("sleep 200").unwrap();
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
