//! Scheduled tasks through the real binary as PID 1 of a pid namespace: `@every` and a
//! per-second cron rule run again and again with their prefix, `tend status` shows them
//! `scheduled` with their next run, `tend start` runs one at once, a run still going makes
//! the next one skipped and said, a critical task's failed run ends the container, and
//! `tend check` points inside a bad expression. Every wait has a deadline; nothing is timed.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;
use tend::proto::{Response, ServiceStatus};

const LIMIT: Duration = Duration::from_secs(30);

/// `tend ARGS... --socket $DIR/ctl.sock`: (exit code, stdout, stderr).
fn client(setup: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(tend_bin())
        .args(args)
        .arg("--socket")
        .arg(setup.path("ctl.sock"))
        .env_remove("TEND_SOCKET")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The status of service `name`, once tend answers.
fn status_of(setup: &Setup, name: &str) -> Option<ServiceStatus> {
    let (code, out, _) = client(setup, &["status", "--json"]);
    if code != 0 {
        return None;
    }
    match serde_json::from_str::<Response>(out.trim()).ok()? {
        Response::Status(report) => report.services.into_iter().find(|s| s.name == name),
        _ => None,
    }
}

/// Lines of tend's stdout that start with `prefix`.
fn lines_of(t: &Running, prefix: &str) -> Vec<String> {
    t.stdout()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// Waits until tend's stdout has `n` lines starting with `prefix`.
fn wait_lines(t: &Running, prefix: &str, n: usize) -> Vec<String> {
    wait_for(&format!("{n} lines `{prefix}`"), LIMIT, || {
        let lines = lines_of(t, prefix);
        (lines.len() >= n).then_some(lines)
    })
}

#[test]
fn an_every_task_runs_again_and_again_as_an_ordinary_start_and_shows_scheduled() {
    let setup = Setup::with_socket(
        "[services.tick]\n\
         command = \"echo run $WHO $(pwd) $$\"\n\
         shell = true\n\
         env = { WHO = \"ticker\" }\n\
         workdir = \"/tmp\"\n\
         schedule = \"@every 1s\"\n\
         [services.app]\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let mut t = setup.pid1();
    // Three runs, each its own process, each line with the task's prefix, env and workdir.
    let lines = wait_lines(&t, "tick | run ticker /tmp ", 3);
    let pids: std::collections::HashSet<&str> =
        lines.iter().filter_map(|l| l.rsplit(' ').next()).collect();
    assert_eq!(pids.len(), lines.len(), "{lines:?}");
    // Between runs it is `scheduled`, with its next run.
    let status = wait_for("tick to show scheduled", LIMIT, || {
        status_of(&setup, "tick").filter(|s| s.state == "scheduled")
    });
    assert_eq!(status.schedule.as_deref(), Some("@every 1s"));
    assert!(status.next_run_ms.is_some(), "{status:?}");
    assert!(status.last_success_ms.is_some(), "{status:?}");
    assert!(
        status.reason.as_deref().unwrap().starts_with("next run "),
        "{status:?}"
    );
    let (_, table, _) = client(&setup, &["status"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("tick") && (l.contains("scheduled") || l.contains("running"))),
        "{table}"
    );
    assert_eq!(client(&setup, &["shutdown"]).0, 0);
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}

/// Every run drops to the task's `user` (and that user's group, from /etc/passwd), in its
/// workdir with its env: `nobody`, which may not write the workdir it is given.
#[test]
fn a_scheduled_run_runs_as_its_user_in_its_workdir_with_its_env() {
    let setup = Setup::with_socket(
        "[services.tick]\n\
         command = \"echo run $(id -u):$(id -g) $WHO $(pwd); touch mine 2>/dev/null || echo denied\"\n\
         shell = true\n\
         user = \"nobody\"\n\
         env = { WHO = \"ticker\" }\n\
         workdir = \"$DIR\"\n\
         schedule = \"@every 1s\"\n\
         [services.app]\ncommand = [\"sleep\", \"1000\"]\n",
    );
    // Open to others, as a workdir must be for nobody to enter it; written by root only.
    std::fs::set_permissions(
        setup.dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let nobody: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a user nobody in /etc/passwd")
        .split(':')
        .collect();
    let mut t = setup.pid1();
    let dir = setup.dir.path().display().to_string();
    let run = format!("tick | run {}:{} ticker {dir}", nobody[2], nobody[3]);
    // Two runs, each as nobody; neither could write root's directory.
    wait_lines(&t, &run, 2);
    wait_lines(&t, "tick | denied", 2);
    assert!(!setup.path("mine").exists());
    assert_eq!(client(&setup, &["shutdown"]).0, 0);
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}

#[test]
fn a_per_second_cron_rule_runs_every_second() {
    let setup = Setup::with_socket(
        "[services.sec]\ncommand = [\"echo\", \"second\"]\nschedule = \"* * * * * *\"\n",
    );
    let mut t = setup.pid1();
    wait_lines(&t, "sec | second", 3);
    let status = wait_for("sec to show scheduled", LIMIT, || {
        status_of(&setup, "sec").filter(|s| s.state == "scheduled")
    });
    assert_eq!(status.schedule.as_deref(), Some("* * * * * *"));
    assert!(status.next_run_ms.is_some(), "{status:?}");
    assert_eq!(client(&setup, &["shutdown"]).0, 0);
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}

#[test]
fn tend_start_runs_a_task_at_once_and_it_goes_back_to_its_schedule() {
    let setup = Setup::with_socket(
        "[services.nightly]\ncommand = [\"echo\", \"nightly run\"]\nschedule = \"0 3 * * *\"\n\
         [services.app]\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let mut t = setup.pid1();
    // Not started by `tend run`: it waits for 03:00.
    let status = wait_for("tend to answer", LIMIT, || status_of(&setup, "nightly"));
    assert_eq!(status.state, "scheduled", "{status:?}");
    assert!(status.next_run_ms.is_some());
    assert_eq!(status.last_success_ms, None);
    assert!(lines_of(&t, "nightly |").is_empty());
    let (code, out, err) = client(&setup, &["start", "nightly"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("nightly: "), "{out}");
    wait_lines(&t, "nightly | nightly run", 1);
    let status = wait_for("nightly to be done", LIMIT, || {
        status_of(&setup, "nightly").filter(|s| s.last_success_ms.is_some())
    });
    assert_eq!(status.state, "scheduled", "{status:?}");
    assert_eq!(lines_of(&t, "nightly |").len(), 1, "it ran once");
    assert_eq!(client(&setup, &["shutdown"]).0, 0);
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}

#[test]
fn a_run_still_going_when_the_next_is_due_makes_it_skipped_and_said() {
    let setup = Setup::with_socket(
        "[services.slow]\ncommand = \"echo start; sleep 3; echo end\"\nshell = true\n\
         schedule = \"@every 1s\"\n",
    );
    let mut t = setup.pid1();
    wait_log(&t, "'slow' is due but still running (pid ");
    wait_log(&t, "from its last run: this run is skipped; next run in ");
    wait_lines(&t, "slow | end", 1);
    assert_eq!(client(&setup, &["shutdown"]).0, 0);
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}

#[test]
fn a_critical_task_whose_run_fails_ends_the_container_with_its_code() {
    let setup = Setup::with_socket(
        "[services.check]\ncommand = [\"sh\", \"-c\", \"echo checking; exit 3\"]\n\
         schedule = \"@every 1s\"\ncritical = true\n\
         [services.app]\ncommand = [\"sleep\", \"1000\"]\n",
    );
    let mut t = setup.pid1();
    assert_eq!(t.code(LIMIT), 3, "{}", t.stderr());
    assert!(t.stdout().contains("check | checking"));
    assert!(
        t.stderr()
            .contains("shutting down: critical service 'check' ended with code 3"),
        "{}",
        t.stderr()
    );
}

#[test]
fn tend_check_points_inside_a_bad_schedule() {
    let setup = Setup::new("[services.b]\ncommand = \"b\"\nschedule = \"*/5 25 * * *\"\n");
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(&setup.config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("tend.toml:3:17: error: hour 25 is out of range: it goes from 0 to 23"),
        "{err}"
    );
    let setup = Setup::new(
        "[tend]\ntimezone = \"Europe/Berlin\"\n\
         [services.b]\ncommand = \"b\"\nschedule = \"30 2 * * mon-fri\"\n",
    );
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(&setup.config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
