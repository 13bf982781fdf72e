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
