//! `tend import`: what people run today becomes a tend file that loads and runs.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn an_imported_procfile_runs_under_tend() {
    let dir = tempfile::tempdir().unwrap();
    let procfile = dir.path().join("Procfile");
    std::fs::write(
        &procfile,
        "greeter: echo \"hello from $GREETING\" && exec sleep 1000\nticker: exec sleep 1000\n",
    )
    .unwrap();
    let out = Command::new(tend_bin())
        .args(["import", "procfile"])
        .arg(&procfile)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let notes = String::from_utf8(out.stderr).unwrap();
    assert!(notes.starts_with("tend import: note: "), "{notes}");
    let toml = String::from_utf8(out.stdout).unwrap();
    let s = Setup::new(&format!(
        "{toml}\n[services.greeter.env]\nGREETING = \"the Procfile\"\n"
    ));
    let check = Command::new(tend_bin())
        .arg("check")
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}\n{toml}");
    let mut t = s.pid1();
    wait_log(&t, "greeter | hello from the Procfile");
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn import_errors_name_the_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supervisord.conf");
    std::fs::write(&conf, "[program:web]\ncommand=x\nautorestart=sometimes\n").unwrap();
    let out = Command::new(tend_bin())
        .args(["import", "supervisord"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        format!(
            "tend: error: {}:3: autorestart must be true, false or unexpected, found \"sometimes\"\n",
            conf.display()
        )
    );
    assert!(out.stdout.is_empty());
    let usage = Command::new(tend_bin())
        .args(["import", "systemd", "x"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2), "{usage:?}");
}

/// `tend import ARGS...` with `env` set (and MSG unset), which must succeed: its stdout.
fn import_ok(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(tend_bin());
    cmd.arg("import").args(args).env_remove("MSG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_supervisord_command_reads_its_variables_at_start_and_runs_no_shell_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supervisord.conf");
    // supervisord expands %(ENV_MSG)s from its environment when it starts, then splits the
    // command with shlex and runs it with no shell: `a;b` is one argument.
    std::fs::write(
        &conf,
        "[program:app]\n\
         command=/bin/sh -c 'printf \"<%%s>\" \"$@\"; echo; exec sleep 1000' sh --msg='%(ENV_MSG)s' a;b\n\
         stdout_logfile=/dev/stdout\n",
    )
    .unwrap();
    // Imported where MSG is not set: it is read when the service starts.
    let toml = import_ok(&["supervisord".as_ref(), conf.as_os_str()], &[]);
    let s = Setup::new(&toml);
    let check = Command::new(tend_bin())
        .arg("check")
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}\n{toml}");
    let mut cmd = pid1_command(&["run", s.config.to_str().unwrap()]);
    cmd.env("MSG", "hello  world");
    let mut t = Running::start(cmd);
    wait_log(&t, "app | <--msg=hello  world><a;b>");
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0);
}

#[test]
fn debians_main_file_imports_the_programs_it_includes() {
    let main = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import/debian/supervisord.conf");
    let toml = import_ok(&["supervisord".as_ref(), main.as_os_str()], &[]);
    for table in ["[services.beat]", "[services.worker]", "[services.web]"] {
        assert!(toml.contains(table), "{table}\n{toml}");
    }
    assert!(
        toml.contains("command = \"celery -A proj beat -l info\"\n"),
        "{toml}"
    );
}

/// `tend import ARGS... > FILE` through the binary; then `tend check FILE`, which must
/// accept it. The notes on stderr are returned.
fn import_to_file(args: &[&std::ffi::OsStr], file: &std::path::Path) -> String {
    let out = Command::new(tend_bin())
        .arg("import")
        .args(args)
        .stdout(std::fs::File::create(file).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let check = Command::new(tend_bin())
        .arg("check")
        .arg(file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{check:?}\n{}",
        std::fs::read_to_string(file).unwrap()
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Debian's /etc/crontab as a system crontab: the file written by `tend import cron.d`
/// passes `tend check`. (It is not run: its tasks would run the host's cron.hourly.)
#[test]
fn debians_system_crontab_imports_to_a_file_tend_check_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/cron/crontab");
    let file = dir.path().join("tend.toml");
    let notes = import_to_file(&["cron.d".as_ref(), fixture.as_os_str()], &file);
    assert!(notes.contains("MAILTO is not carried over"), "{notes}");
    let toml = std::fs::read_to_string(&file).unwrap();
    for table in [
        "[services.\"cron.hourly\"]\n",
        "[services.\"cron.monthly\"]\n",
        "[services.backup]\n",
        "[services.mail]\n",
    ] {
        assert!(toml.contains(table), "{table}\n{toml}");
    }
}

/// A user's crontab through the binary, imported to a file that `tend check` accepts and
/// that runs as PID 1: the variables reach the tasks, `@reboot` lines run once at the start
/// with the text after their `%` on standard input byte for byte (fed by /bin/sh as the
/// import wrote it), and the timed lines are `scheduled` with their next run.
#[test]
fn an_imported_user_crontab_runs_with_its_input_and_its_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let crontab = r#"# m h  dom mon dow   command
MAILTO=""
GREETING = "hello there"
@reboot echo "$GREETING from cron"
@reboot cat > $D/plain%one line
@reboot cat > $D/lines%first%  second with blanks  %%last
@reboot cat > $D/quoted%it's "$HOME" `id` \% 100\%%back\slash\\%\$x
@reboot cat > $D/delimiter%CRON_INPUT%x
@reboot printf '<\%s>' "$(cat)" > $D/empty%
*/5 * * * * /bin/true --poll
0 3 * * mon-fri date +\%F
"#
    .replace("$D", &d);
    let source = dir.path().join("crontab");
    std::fs::write(&source, crontab).unwrap();
    let file = dir.path().join("tend.toml");
    let notes = import_to_file(&["crontab".as_ref(), source.as_os_str()], &file);
    assert!(notes.contains("is @reboot"), "{notes}");
    // The control socket in the test's directory, not /run/tend of the host.
    let toml = std::fs::read_to_string(&file).unwrap();
    assert!(!toml.contains("[tend]"), "{toml}");
    let s = Setup::with_socket(&toml);
    let mut t = s.pid1();
    // The prefix is padded to the longest name.
    wait_for("the echo task's line", LIMIT, || {
        t.stdout()
            .lines()
            .any(|l| l.starts_with("echo ") && l.ends_with(" | hello there from cron"))
            .then_some(())
    });
    let expected: [(&str, &[u8]); 5] = [
        ("plain", b"one line\n"),
        ("lines", b"first\n  second with blanks  \n\nlast\n"),
        (
            "quoted",
            b"it's \"$HOME\" `id` % 100%\nback\\slash\\%\\$x\n",
        ),
        ("delimiter", b"CRON_INPUT\nx\n"),
        ("empty", b"<>"),
    ];
    for (name, bytes) in expected {
        let path = dir.path().join(name);
        let got = wait_for(&format!("{name} to be written"), LIMIT, || {
            let got = std::fs::read(&path).ok()?;
            (got.len() >= bytes.len()).then_some(got)
        });
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(bytes),
            "{name}"
        );
    }
    // The timed lines wait for their time.
    for name in ["true", "date"] {
        let status = wait_for(&format!("{name} to show scheduled"), LIMIT, || {
            let out = Command::new(tend_bin())
                .args(["status", "--json", "--socket"])
                .arg(s.path("ctl.sock"))
                .output()
                .ok()?;
            let report: tend::proto::Response = serde_json::from_slice(&out.stdout).ok()?;
            let tend::proto::Response::Status(report) = report else {
                return None;
            };
            report
                .services
                .into_iter()
                .find(|s| s.name == name && s.state == "scheduled")
        });
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let next = status.next_run_ms.unwrap();
        let within = if name == "true" {
            5 * 60
        } else {
            4 * 24 * 3600
        };
        assert!(
            next > now_ms - 1000 && next <= now_ms + within * 1000,
            "{status:?}"
        );
    }
    send(t.tend_pid_under_unshare(), "TERM");
    assert_eq!(t.code(LIMIT), 0, "{}", t.stderr());
}
