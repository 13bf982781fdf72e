//! `instances = N` end to end: the real `tend run` as PID 1 of a pid namespace runs N
//! processes with their number, and the real client commands act on all of them by the
//! service's name or on one by the instance's; a reload changes N.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;
use support::*;

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

/// What these tests ask of a `Tend` beyond the shared harness.
trait Instances {
    /// Name, state and pid of each service, as `tend status` lists them.
    fn table(&self) -> Vec<(String, String, Option<i32>)>;
    /// The pids of `names` once each of them runs.
    fn pids(&self, names: &[&str]) -> Vec<i32>;
    /// What worker `i` wrote when it started, once it has: `TEND_INSTANCE ARG PID`.
    fn started(&self, i: usize, pid: i32) -> Vec<String>;
}

impl Instances for Tend {
    fn table(&self) -> Vec<(String, String, Option<i32>)> {
        self.status()
            .services
            .into_iter()
            .map(|s| (s.name, s.state, s.pid))
            .collect()
    }

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
        t.status_of(names)
            .services
            .into_iter()
            .map(|s| s.name)
            .collect()
    };
    assert_eq!(named(&["worker"]), WORKER_NAMES);
    assert_eq!(named(&["worker-1"]), ["worker-1"]);
    assert_eq!(
        t.client(&["status", "worker"]).code,
        0,
        "every instance runs"
    );

    // `tend logs worker`: the lines of every instance, each with its own name.
    let logs = wait_for("every worker's line in tend logs", LIMIT, || {
        let logs = t.ok(&["logs", "worker"]).stdout;
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
    let out = t.ok(&["restart", "worker"]).stdout;
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
    assert_eq!(t.ok(&["stop", "worker-1"]).stdout, "worker-1: stopped\n");
    let table = t.table();
    assert_eq!(table[1], ("worker-1".into(), "stopped".into(), None));
    assert_eq!(
        t.pids(&["worker-0", "worker-2"]),
        [restarted[0], restarted[2]]
    );
    assert_eq!(
        t.client(&["status", "worker"]).code,
        3,
        "not all of them run"
    );

    // Two instances: worker-2 goes, the others (and app, which waits for `worker`) stay.
    t.rewrite(&config(2));
    let out = t.ok(&["reload"]).stdout;
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
    assert_eq!(
        t.client(&["status", "worker-2"]).code,
        1,
        "worker-2 is gone"
    );
    t.ok(&["start", "worker"]);
    assert_eq!(named(&["worker"]), ["worker-0", "worker-1"]);
    let two = t.pids(&["worker-0", "worker-1"]);

    // And back to three: worker-2 starts again, with its number.
    t.rewrite(&config(3));
    let out = t.ok(&["reload"]).stdout;
    assert_eq!(out, "added: worker-2\nunchanged: worker-0, worker-1, app\n");
    let three = t.pids(&WORKER_NAMES);
    assert_eq!(three[..2], two[..]);
    assert_eq!(t.started(2, three[2])[..2], ["2", "w02"]);
    assert_eq!(t.pids(&["app"]), [app]);
    t.shutdown();
}

#[test]
fn check_counts_the_instances() {
    let setup = Setup::with_socket(&config(3));
    let path = &setup.config;
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(path)
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
    setup.write(&socket_config(
        &config(3).replace("[services.app]", "[services.worker-2]"),
    ));
    let out = Command::new(tend_bin())
        .arg("check")
        .arg(path)
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
