//! What services cost, through the real binary: `tend run` as PID 1 of a pid namespace,
//! `tend status`, `tend top` and `/metrics` showing the CPU time, memory and processes of a
//! service's whole process group.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::*;
use tend::proto::{Response, ServiceStatus, StatusReport};

const LIMIT: Duration = Duration::from_secs(30);

/// A `tend run` as PID 1, its control socket at `$DIR/ctl.sock`, and `/metrics` on a port
/// of its own.
struct Tend {
    setup: Setup,
    t: Running,
    /// tend's pid as seen from here.
    pid: i32,
    port: u16,
}

/// What a client command did.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
}

impl Tend {
    fn start(services: &str) -> Tend {
        // A port nobody listens on now; tend binds it a moment later.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let setup = Setup::new(&format!(
            "[tend]\nsocket = \"$DIR/ctl.sock\"\nhttp = \"127.0.0.1:{port}\"\n\n{services}"
        ));
        let t = setup.pid1();
        let pid = t.tend_pid_under_unshare();
        let tend = Tend {
            setup,
            t,
            pid,
            port,
        };
        wait_for("tend to answer on its socket", LIMIT, || {
            (tend.client(&["status"]).code == 0).then_some(())
        });
        tend
    }

    fn sock(&self) -> PathBuf {
        self.setup.path("ctl.sock")
    }

    /// `tend ARGS... --socket SOCK`, run in tend's pid namespace (as `docker exec` would).
    fn client(&self, args: &[&str]) -> Out {
        let out = Command::new("nsenter")
            .args(["--target", &self.pid.to_string(), "--pid", "--"])
            .arg(tend_bin())
            .args(args)
            .arg("--socket")
            .arg(self.sock())
            .env_remove("TEND_SOCKET")
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        }
    }

    fn status(&self) -> StatusReport {
        let out = self.client(&["status", "--json"]);
        assert_eq!(out.code, 0, "{out:?}\n{}", self.t.stderr());
        match serde_json::from_str(out.stdout.trim()).unwrap() {
            Response::Status(report) => report,
            other => panic!("not a status: {other:?}"),
        }
    }

    fn service(&self, name: &str) -> ServiceStatus {
        self.status()
            .services
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    /// The body of `GET /metrics`.
    fn metrics(&self) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: tend\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        body.to_string()
    }

    fn shutdown(&mut self) {
        let _ = self.client(&["shutdown"]);
        assert_eq!(self.t.code(LIMIT), 0, "{}", self.t.stderr());
    }
}

/// A service whose shell starts two children in its group and runs a third to completion
/// (a busy loop it waits for): its CPU time includes the finished child's, its memory and
/// process count the three processes left.
#[test]
fn status_and_metrics_show_what_a_services_whole_group_uses() {
    let mut t = Tend::start(
        "[services.forks]\n\
         command = [\"sh\", \"-c\", \"sleep 1000 & sleep 1000 & \
         (i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); echo burnt; wait\"]\n\n\
         [services.off]\ncommand = \"sleep 1000\"\nautostart = false\n",
    );
    wait_log(&t.t, "forks | burnt");
    let forks = t.service("forks");
    assert_eq!(forks.processes, Some(3), "sh and its two sleeps: {forks:?}");
    // The busy loop ran in a subshell the service's shell waited for: its time counts.
    let cpu = forks.cpu_ms.unwrap();
    assert!(cpu >= 100, "{forks:?}");
    let memory = forks.memory_bytes.unwrap();
    assert!(
        (300 << 10..1 << 30).contains(&memory),
        "three small processes: {forks:?}"
    );
    let off = t.service("off");
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
