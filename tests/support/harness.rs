//! `Tend`: a `tend run` as PID 1 of a fresh pid namespace, its control socket in its temp
//! dir, and the client run inside that namespace as `docker exec CONTAINER tend ...` does.

use super::{Running, Setup, pid1_command, pid1_command_in, socket_config, tend_bin, wait_for};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tend::proto::{Response, ServiceStatus, StatusReport};

const LIMIT: Duration = Duration::from_secs(30);

/// What a client command did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, with no `$TEND_SOCKET` unless the caller set one; it must end
/// with an exit code, not by a signal.
pub fn output(cmd: &mut Command) -> Out {
    let out = cmd.output().unwrap();
    Out {
        code: out
            .status
            .code()
            .unwrap_or_else(|| panic!("ended by a signal: {out:?}")),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How to start tend, beyond its services.
#[derive(Default)]
pub struct Options<'a> {
    /// Serve `/metrics` on a port of its own (see `Tend::metrics`).
    pub http: bool,
    /// Start tend, and so all it starts, inside this cgroup.
    pub cgroup: Option<&'a Path>,
}

/// A `tend run` as PID 1 of a fresh pid namespace, its control socket at `$DIR/ctl.sock`.
///
/// Clients run inside tend's pid namespace, as `docker exec CONTAINER tend status` does.
pub struct Tend {
    pub setup: Setup,
    pub sock: PathBuf,
    pub t: Running,
    /// tend's pid as seen from here.
    pub pid: i32,
    /// The port of `/metrics`, when tend serves it.
    port: Option<u16>,
}

impl Tend {
    /// Starts tend on `services` (TOML with `$DIR` for the temp dir) and waits until it
    /// answers on its socket.
    pub fn start(services: &str) -> Tend {
        Tend::start_with(services, Options::default())
    }

    pub fn start_with(services: &str, options: Options) -> Tend {
        // A port nobody listens on now; tend binds it a moment later.
        let port = options.http.then(|| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        });
        let setup = Setup::new(&config(port, services));
        let sock = setup.path("ctl.sock");
        let args = ["run", setup.config.to_str().unwrap()];
        let t = Running::start(match options.cgroup {
            None => pid1_command(&args),
            Some(cgroup) => pid1_command_in(cgroup, &args),
        });
        let pid = t.tend_pid_under_unshare();
        let tend = Tend {
            setup,
            sock,
            t,
            pid,
            port,
        };
        let start = Instant::now();
        loop {
            let out = tend.sock.exists().then(|| tend.client(&["status"]));
            match out {
                Some(out) if out.code == 0 => break,
                _ if start.elapsed() > LIMIT => panic!(
                    "tend does not answer on its socket: {out:?}\ntend's stderr:\n{}",
                    tend.t.stderr()
                ),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        tend
    }

    /// `nsenter` into tend's pid namespace, ready for the program to run there.
    pub fn in_ns(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &self.pid.to_string(), "--pid", "--"])
            .env_remove("TEND_SOCKET");
        cmd
    }

    /// `tend ARGS... --socket SOCK` in tend's pid namespace, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.in_ns();
        cmd.arg(tend_bin())
            .args(args)
            .arg("--socket")
            .arg(&self.sock);
        cmd
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.setup.path(name)
    }

    /// Replaces the services of the configuration (for reloads).
    pub fn rewrite(&self, services: &str) {
        self.setup.write(&config(self.port, services));
    }

    /// Runs `tend ARGS... --socket SOCK`.
    pub fn client(&self, args: &[&str]) -> Out {
        output(&mut self.command(args))
    }

    /// Like `client`, and the command must succeed.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.client(args);
        assert_eq!(
            out.code,
            0,
            "tend {args:?}: {out:?}\ntend's stderr:\n{}",
            self.t.stderr()
        );
        out
    }

    /// `tend status --json`.
    pub fn status(&self) -> StatusReport {
        self.status_of(&[])
    }

    /// `tend status --json NAMES...`, which exits 3 when a named service is not running.
    pub fn status_of(&self, names: &[&str]) -> StatusReport {
        let mut args = vec!["status", "--json"];
        args.extend(names);
        let out = self.client(&args);
        assert!(
            out.code == 0 || (out.code == 3 && !names.is_empty()),
            "tend {args:?}: {out:?}\ntend's stderr:\n{}",
            self.t.stderr()
        );
        match serde_json::from_str(out.stdout.trim()) {
            Ok(Response::Status(report)) => report,
            other => panic!("not a status: {other:?} from {out:?}"),
        }
    }

    pub fn service(&self, name: &str) -> Option<ServiceStatus> {
        self.status().services.into_iter().find(|s| s.name == name)
    }

    /// Waits until `name` is in `state`; returns its status then.
    pub fn wait_state(&self, name: &str, state: &str) -> ServiceStatus {
        wait_for(&format!("'{name}' to be {state}"), LIMIT, || {
            self.service(name).filter(|s| s.state == state)
        })
    }

    /// The pid of `name` once it runs.
    pub fn pid(&self, name: &str) -> i32 {
        self.wait_state(name, "running").pid.unwrap()
    }

    /// Waits until tend's stdout or stderr contains `what`.
    pub fn wait_log(&self, what: &str) {
        super::wait_log(&self.t, what);
    }

    /// The body of `GET /metrics`.
    pub fn metrics(&self) -> String {
        let port = self
            .port
            .expect("tend started with Options { http: true, .. }");
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: tend\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
        body.to_string()
    }

    /// Ends tend through the socket and checks that it exits 0.
    pub fn shutdown(&mut self) {
        shutdown_answered(&mut self.command(&["shutdown"]));
        assert_eq!(self.t.code(LIMIT), 0, "{}", self.t.stderr());
    }
}

/// Runs `tend shutdown` inside tend's pid namespace: it says "shutdown started", or does not
/// live to.
///
/// When tend, PID 1 of the namespace the client runs in, exits, the kernel SIGKILLs
/// everything left there, and with services that stop at once that can come before the
/// client has printed.
pub fn shutdown_answered(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        (out.status.code() == Some(0) && stdout == "shutdown started\n")
            || out.status.signal() == Some(9),
        "{out:?}"
    );
}

/// The configuration: the socket, `/metrics` on `port` if there is one, then `services`.
fn config(port: Option<u16>, services: &str) -> String {
    let http = port.map_or(String::new(), |port| {
        format!("http = \"127.0.0.1:{port}\"\n")
    });
    socket_config(&format!("{http}\n{services}"))
}
