//! `instances = N` end to end: the real `tend run` as PID 1 of a pid namespace runs N
//! processes with their number, and the real client commands act on all of them by the
//! service's name or on one by the instance's; a reload changes N.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;
use tend::proto::{Response, StatusReport};

const LIMIT: Duration = Duration::from_secs(30);

/// Each worker writes `TEND_INSTANCE ARG PID` to `$DIR/out-{instance}` (a file named by the
/// substituted argument list) and a line to its stdout, then idles. `app` waits for every
/// worker.
const WORKERS: &str = r#"
[services.worker]
command = ["sh", "-c", "echo $TEND_INSTANCE $1 $$ > $DIR/out-$2; echo worker $2 up as $$; exec sleep 1000", "sh", "w{instance:02}", "{instance}"]
instances = N
stop-timeout = "2s"

[services.app]
command = "sleep 1001"
depends-on = ["worker"]
"#;

fn config(n: usize) -> String {
    WORKERS.replace("instances = N", &format!("instances = {n}"))
}

/// A `tend run` as PID 1 with its control socket in its temp dir; clients run inside its
/// pid namespace, as `docker exec CONTAINER tend ...` does.
struct Tend {
    dir: tempfile::TempDir,
    config: PathBuf,
    sock: PathBuf,
    t: Running,
    pid: i32,
}

impl Tend {
    fn start(services: &str) -> Tend {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("tend.toml");
        let sock = dir.path().join("ctl.sock");
        write_config(&config, dir.path(), services);
        let t = Running::start(pid1_command(&["run", config.to_str().unwrap()]));
        let pid = t.tend_pid_under_unshare();
        let tend = Tend {
            dir,
            config,
            sock,
            t,
            pid,
        };
        wait_for("tend to answer on its socket", LIMIT, || {
            (tend.sock.exists() && tend.client(&["status"]).0 == 0).then_some(())
        });
        tend
    }

    /// `tend ARGS... --socket SOCK` in tend's pid namespace.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &self.pid.to_string(), "--pid", "--"])
            .arg(tend_bin())
            .args(args)
            .arg("--socket")
            .arg(&self.sock)
            .env_remove("TEND_SOCKET");
        cmd
    }

    /// Runs `tend ARGS...`: its exit code and stdout.
    fn client(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (code, stdout)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, stdout) = self.client(args);
        assert_eq!(
            code,
            0,
            "tend {args:?}: {stdout}\ntend's stderr:\n{}",
            self.t.stderr()
        );
        stdout
    }

    fn status(&self, names: &[&str]) -> StatusReport {
        let mut args = vec!["status", "--json"];
        args.extend(names);
        let (_, stdout) = self.client(&args);
        match serde_json::from_str(stdout.trim()) {
            Ok(Response::Status(report)) => report,
            other => panic!("not a status: {other:?} from {stdout}"),
        }
    }

    /// Name, state and pid of each service, as `tend status` lists them.
    fn table(&self) -> Vec<(String, String, Option<i32>)> {
        self.status(&[])
            .services
            .into_iter()
            .map(|s| (s.name, s.state, s.pid))
            .collect()
    }

    /// The pids of `names` once each of them runs.
    fn pids(&self, names: &[&str]) -> Vec<i32> {
        wait_for(&format!("{names:?} to run"), LIMIT, || {
            let table = self.table();
            names
                .iter()
                .map(|n| {
                    table
                        .iter()
                        .find(|(name, state, _)| name == n && state == "running")
                        .and_then(|(_, _, pid)| *pid)
                })
                .collect()
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What worker `i` wrote when it started, once it has: `TEND_INSTANCE ARG PID`.
    fn started(&self, i: usize, pid: i32) -> Vec<String> {
        let path = self.path(&format!("out-{i}"));
        wait_for(&format!("worker-{i} (pid {pid}) to write"), LIMIT, || {
            let words: Vec<String> = std::fs::read_to_string(&path)
                .ok()?
                .split_whitespace()
                .map(str::to_string)
                .collect();
            (words.last() == Some(&pid.to_string())).then_some(words)
        })
    }

    fn shutdown(&mut self) {
        let out = Command::new("nsenter")
            .args(["--target", &self.pid.to_string(), "--pid", "--"])
            .arg(tend_bin())
            .args(["shutdown", "--socket"])
            .arg(&self.sock)
            .output()
            .unwrap();
        // The client may be killed with the namespace before it has printed.
        assert!(
            out.status.code() == Some(0) || out.status.signal() == Some(9),
            "{out:?}"
        );
        assert_eq!(self.t.code(LIMIT), 0, "{}", self.t.stderr());
    }
}

fn write_config(path: &Path, dir: &Path, services: &str) {
    let toml = format!("[tend]\nsocket = \"$DIR/ctl.sock\"\n{services}")
        .replace("$DIR", &dir.display().to_string());
    std::fs::write(path, toml).unwrap();
}

const WORKER_NAMES: [&str; 3] = ["worker-0", "worker-1", "worker-2"];

#[test]
fn instances_run_apart_and_answer_to_their_name_and_to_the_services() {
    let mut t = Tend::start(&config(3));
    let pids = t.pids(&WORKER_NAMES);
    for (i, &pid) in pids.iter().enumerate() {
        assert_eq!(
            t.started(i, pid),
            [i.to_string(), format!("w0{i}"), pid.to_string()],
            "TEND_INSTANCE and the arguments of worker-{i}"
        );
    }
    let app = t.pids(&["app"])[0];

    // `tend status` lists each instance; `tend status worker` all of them, `worker-1` one.
    let names: Vec<String> = t.table().into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["worker-0", "worker-1", "worker-2", "app"]);
    let named = |names: &[&str]| -> Vec<String> {
        t.status(names)
            .services
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(named(&["worker"]), WORKER_NAMES);
    assert_eq!(named(&["worker-1"]), ["worker-1"]);
    assert_eq!(t.client(&["status", "worker"]).0, 0, "every instance runs");

    // `tend logs worker`: the lines of every instance, each with its own name.
    let logs = wait_for("every worker's line in tend logs", LIMIT, || {
        let logs = t.ok(&["logs", "worker"]);
        (0..3)
            .all(|i| logs.contains(&format!("worker-{i} | worker {i} up as {}\n", pids[i])))
            .then_some(logs)
    });
    assert_eq!(logs.lines().count(), 3, "{logs}");

    // `tend logs -f worker` follows them all: once it has printed its one line of backlog,
    // it is following, and gets the lines the restart below brings.
    let follower = Running::start(t.command(&["logs", "-f", "-n", "1", "worker"]));
    wait_for("the follower's backlog", LIMIT, || {
        (follower.stdout().lines().count() == 1).then_some(())
    });

    // `tend restart worker` restarts every instance, and only them.
    let out = t.ok(&["restart", "worker"]);
    let restarted = t.pids(&WORKER_NAMES);
    for (i, (old, new)) in pids.iter().zip(&restarted).enumerate() {
        assert_ne!(old, new, "worker-{i} was not restarted");
        assert!(
            out.contains(&format!("worker-{i}: running (pid {new})")),
            "{out}"
        );
        assert_eq!(t.started(i, *new)[0], i.to_string());
    }
    assert_eq!(t.pids(&["app"]), [app], "app was left alone");
    wait_for(
        "the restarted workers' lines in tend logs -f",
        LIMIT,
        || {
            let followed = follower.stdout();
            (0..3)
                .all(|i| {
                    followed.contains(&format!("worker-{i} | worker {i} up as {}\n", restarted[i]))
                })
                .then_some(())
        },
    );
    drop(follower);

    // `tend stop worker-1` stops that one.
    assert_eq!(t.ok(&["stop", "worker-1"]), "worker-1: stopped\n");
    let table = t.table();
    assert_eq!(table[1], ("worker-1".into(), "stopped".into(), None));
    assert_eq!(
        t.pids(&["worker-0", "worker-2"]),
        [restarted[0], restarted[2]]
    );
    assert_eq!(t.client(&["status", "worker"]).0, 3, "not all of them run");

    // Two instances: worker-2 goes, the others (and app, which waits for `worker`) stay.
    write_config(&t.config, t.dir.path(), &config(2));
    let out = t.ok(&["reload"]);
    assert_eq!(
        out,
        "removed: worker-2\nunchanged: worker-0, worker-1, app\n"
    );
    wait_for("worker-2 to be gone", LIMIT, || {
        (t.table().len() == 3).then_some(())
    });
    let table = t.table();
    assert_eq!(
        table,
        [
            ("worker-0".into(), "running".into(), Some(restarted[0])),
            ("worker-1".into(), "stopped".into(), None),
            ("app".into(), "running".into(), Some(app)),
        ]
    );
    assert_eq!(t.client(&["status", "worker-2"]).0, 1, "worker-2 is gone");
    t.ok(&["start", "worker"]);
    assert_eq!(named(&["worker"]), ["worker-0", "worker-1"]);
    let two = t.pids(&["worker-0", "worker-1"]);

    // And back to three: worker-2 starts again, with its number.
    write_config(&t.config, t.dir.path(), &config(3));
    let out = t.ok(&["reload"]);
    assert_eq!(out, "added: worker-2\nunchanged: worker-0, worker-1, app\n");
    let three = t.pids(&WORKER_NAMES);
    assert_eq!(three[..2], two[..]);
    assert_eq!(t.started(2, three[2])[..2], ["2", "w02"]);
    assert_eq!(t.pids(&["app"]), [app]);
    t.shutdown();
}

#[test]
fn check_counts_the_instances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tend.toml");
    write_config(&path, dir.path(), &config(3));
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{}: ok, 4 services (3 instances of worker: worker-0 to worker-2)\n",
            path.display()
        )
    );
    write_config(
        &path,
        dir.path(),
        &config(3).replace("[services.app]", "[services.worker-2]"),
    );
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:9:11: error: two services are named `worker-2`: [services.worker-2] here, and \
             instance 2 of `worker` (instances = 3) at {}:6:13\n",
            path.display(),
            path.display()
        )),
        "{err}"
    );
}
