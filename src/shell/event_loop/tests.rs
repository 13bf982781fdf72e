//! The loop's glue without root and without spawning anything: a `Loop` over a real control
//! socket in a temporary directory and a supervisor that has not started its services. A
//! client connects and sends a request line; the test hands the loop the events epoll would
//! (through the same `dispatch`) and reads the answer as the client would.

use super::*;
use crate::core::spec::{Launch, ServiceSpec, SessionMode, Spec};
use crate::core::{ExitSignals, MainExit, SignalRouting};
use crate::proto::{Command, Request, Response, Targets};
use crate::shell::serve::control::Access;
use crate::sys::signals;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

struct Harness {
    lp: Loop,
    socket: std::path::PathBuf,
    received: Vec<Received>,
    _dir: tempfile::TempDir,
}

fn service(name: &str) -> ServiceSpec {
    let launch = Launch::command(vec![name.into()], SessionMode::NewSession);
    ServiceSpec::new(name, launch)
}

impl Harness {
    fn new(names: &[&str]) -> Harness {
        Harness::with(names.iter().map(|n| service(n)).collect())
    }

    fn with(services: Vec<ServiceSpec>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("ctl.sock");
        let access = Access {
            uid: rustix::process::geteuid().as_raw(),
            group: None,
        };
        let control = ControlServer::bind(&socket, access).unwrap();
        let inherited = signals::block_all().unwrap();
        let ctx = Context {
            inherited,
            signals: SignalFd::new().unwrap(),
            log: Logger {
                verbosity: 0,
                warn_on_reap: false,
            },
            is_pid1: false,
            logs: None,
            control: Some(Box::new(control)),
            config_path: None,
            notify_dir: None,
            http: None,
            shm: None,
        };
        let spec = Spec {
            services,
            signals: SignalRouting::Supervise {
                shutdown: ExitSignals::default(),
            },
            main_exit: MainExit::default(),
            shutdown_timeout: std::time::Duration::from_secs(9),
            timezone: jiff::tz::TimeZone::UTC,
        };
        let setup = Setup::new(&ctx).unwrap();
        let lp = Loop::new(Supervisor::new(spec), ctx, setup);
        Harness {
            lp,
            socket,
            received: Vec::new(),
            _dir: dir,
        }
    }

    /// Connects, sends `line`, lets the loop accept and read it, and returns the answer.
    fn ask(&mut self, line: &[u8]) -> Response {
        let mut client = UnixStream::connect(&self.socket).unwrap();
        client.write_all(line).unwrap();
        let now = Instant::now();
        let flags = epoll::EventFlags::IN;
        self.lp
            .dispatch(Token::ControlListener, flags, &mut self.received, now);
        // The connection the loop just accepted is the newest one.
        let conn = self.newest_connection();
        self.lp
            .dispatch(Token::ControlConn(conn), flags, &mut self.received, now);
        let mut answer = String::new();
        BufReader::new(client).read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
    }

    fn newest_connection(&self) -> usize {
        let mut events = Vec::with_capacity(8);
        let none = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        epoll::wait(
            &self.lp.ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&none),
        )
        .unwrap();
        // Connections are numbered in the order they came (an answered one that lingers may
        // be ready too: its client hung up).
        events
            .iter()
            .filter_map(|ev| match Token::decode(ev.data.u64()) {
                Some(Token::ControlConn(conn)) => Some(conn),
                _ => None,
            })
            .max()
            .unwrap_or_else(|| panic!("no connection ready"))
    }
}

fn request(command: Command) -> Vec<u8> {
    crate::proto::encode(&Request::new(command))
}

#[test]
fn status_is_answered_from_the_supervisor() {
    let mut h = Harness::new(&["db", "web"]);
    let Response::Status(report) = h.ask(&request(Command::Status { services: vec![] })) else {
        panic!("not a status")
    };
    let names: Vec<&str> = report.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    assert!(report.services.iter().all(|s| s.pid.is_none()));
    assert!(!report.shutting_down);
}

/// A name is a service's, else that of each instance of a service with `instances`; a
/// service named twice is answered for once.
#[test]
fn a_base_name_means_each_of_its_instances() {
    let mut services: Vec<ServiceSpec> = (0..3)
        .map(|i| ServiceSpec {
            instance_of: Some("worker".into()),
            ..service(&format!("worker-{i}"))
        })
        .collect();
    services.push(service("worker-x"));
    let mut h = Harness::with(services);
    let status = |h: &mut Harness, names: &[&str]| -> Vec<String> {
        let services = names.iter().map(|n| n.to_string()).collect();
        let Response::Status(report) = h.ask(&request(Command::Status { services })) else {
            panic!("not a status")
        };
        report.services.into_iter().map(|s| s.name).collect()
    };
    assert_eq!(
        status(&mut h, &["worker"]),
        ["worker-0", "worker-1", "worker-2"]
    );
    assert_eq!(status(&mut h, &["worker-1"]), ["worker-1"]);
    assert_eq!(
        status(&mut h, &["worker-2", "worker", "worker-x"]),
        ["worker-2", "worker-0", "worker-1", "worker-x"]
    );
    let Response::Error { message } = h.ask(&request(Command::Status {
        services: vec!["work".into()],
    })) else {
        panic!("unknown name not refused")
    };
    assert_eq!(message, "no service named 'work'");
}

#[test]
fn the_lines_of_several_services_are_interleaved_by_time() {
    let line = |service: &str, time_ms: u64, text: &str| crate::proto::LogLine {
        service: service.into(),
        stream: "stdout".into(),
        time_ms,
        line: text.into(),
    };
    let a = vec![line("a", 1, "a1"), line("a", 5, "a5"), line("a", 5, "a5b")];
    let b = vec![line("b", 2, "b2"), line("b", 5, "b5"), line("b", 9, "b9")];
    let texts = |lines: Vec<crate::proto::LogLine>| -> Vec<String> {
        lines.into_iter().map(|l| l.line).collect()
    };
    assert_eq!(
        texts(requests::latest(vec![a.clone(), b.clone(), vec![]], 10)),
        ["a1", "b2", "a5", "a5b", "b5", "b9"]
    );
    assert_eq!(
        texts(requests::latest(vec![a.clone(), b], 3)),
        ["a5b", "b5", "b9"]
    );
    // One service's lines stay as they are, even if the clock went back.
    let back = vec![line("a", 9, "first"), line("a", 1, "second")];
    assert_eq!(texts(requests::latest(vec![back], 10)), ["first", "second"]);
}

/// A malformed request gets an error answer, and the loop carries on answering.
#[test]
fn a_malformed_request_is_answered_and_the_loop_carries_on() {
    let mut h = Harness::new(&["db"]);
    let Response::Error { message } = h.ask(b"{\"v\":1,\"bogus\"\n") else {
        panic!("malformed request not refused")
    };
    assert!(message.contains("malformed request"), "{message}");
    let status = request(Command::Status { services: vec![] });
    let future = String::from_utf8(status)
        .unwrap()
        .replace("\"v\":1", "\"v\":99");
    let Response::Error { message } = h.ask(future.as_bytes()) else {
        panic!("unknown version not refused")
    };
    assert!(message.contains("protocol version 99"), "{message}");
    let status = h.ask(&request(Command::Status { services: vec![] }));
    assert!(matches!(status, Response::Status(_)), "{status:?}");
}

#[test]
fn unknown_services_and_signals_are_named_in_the_answer() {
    let mut h = Harness::new(&["db"]);
    let stop = Command::Stop {
        targets: Targets {
            services: vec!["nope".into()],
            all: false,
        },
        wait: true,
    };
    let Response::Error { message } = h.ask(&request(stop)) else {
        panic!("unknown service not refused")
    };
    assert_eq!(message, "no service named 'nope'");
    let signal = Command::Signal {
        signal: "SIGNOPE".into(),
        targets: Targets {
            services: vec!["db".into()],
            all: false,
        },
    };
    let Response::Error { message } = h.ask(&request(signal)) else {
        panic!("unknown signal not refused")
    };
    assert_eq!(message, "unknown signal 'SIGNOPE'");
    let Response::Error { message } = h.ask(&request(Command::Reload)) else {
        panic!("reload without a file not refused")
    };
    assert_eq!(message, "no configuration file to reload");
}

/// `tend shutdown` is accepted once; the core is shutting down from then on, and a second
/// one is refused with the reason.
#[test]
fn shutdown_is_accepted_once() {
    let mut h = Harness::new(&["db"]);
    assert_eq!(h.ask(&request(Command::Shutdown)), Response::Accepted);
    assert_ne!(h.lp.sup.phase(), core::Phase::Running);
    let Response::Error { message } = h.ask(&request(Command::Shutdown)) else {
        panic!("second shutdown not refused")
    };
    assert!(message.contains("already shutting down"), "{message}");
}

/// A health check of a running instance (the core's spawn answered by hand, nothing runs):
/// the loop starts the attempt the core asks for, the refused connection comes back as a
/// failed check, and the core counts it.
#[test]
fn a_probe_the_core_asks_for_is_run_and_its_result_counted() {
    use crate::core::spec::{HealthRule, HostPort, Probe};
    use crate::core::{Action, Generation, Pid, ServiceId};
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let web = ServiceSpec {
        health: Some(HealthRule {
            probe: Probe::Tcp {
                target: HostPort {
                    host: "127.0.0.1".into(),
                    port,
                },
            },
            interval: std::time::Duration::from_secs(1),
            timeout: std::time::Duration::from_secs(1),
            start_period: std::time::Duration::ZERO,
            failures: 3,
        }),
        // Ready at once, so the health check is the one scheduled.
        start_secs: std::time::Duration::ZERO,
        ..service("web")
    };
    let mut h = Harness::with(vec![web]);
    let start = h.lp.origin;
    h.lp.sup.start(h.lp.core_time(start));
    while h.lp.sup.poll_action().is_some() {}
    let (svc, generation) = (ServiceId(0), Generation(1));
    let spawned = Input::Spawned {
        svc,
        generation,
        pid: Pid(999_999),
    };
    h.lp.sup.handle(h.lp.core_time(start), spawned);
    let probe = Action::Probe {
        svc,
        generation,
        health: true,
    };
    assert_eq!(h.lp.execute(probe, start), None);
    // Refused at once, or on the connection's next event: either way within its timeout.
    let deadline = start + std::time::Duration::from_secs(5);
    while h.lp.sup.checks(svc).failures == 0 && Instant::now() < deadline {
        let mut events = Vec::with_capacity(8);
        let wait = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        let _ = epoll::wait(
            &h.lp.ep,
            rustix::buffer::spare_capacity(&mut events),
            Some(&wait),
        );
        let now = Instant::now();
        for ev in events.iter() {
            if let Some(token) = Token::decode(ev.data.u64()) {
                h.lp.dispatch(token, ev.flags, &mut h.received, now);
            }
        }
        h.lp.on_timeouts(now);
    }
    assert_eq!(h.lp.sup.checks(svc).failures, 1);
    assert_eq!(h.lp.sup.checks(svc).healthy, None, "one failure of three");
}

#[test]
fn the_earliest_deadline_is_the_least_of_those_present() {
    let t = Instant::now();
    let later = t + Duration::from_millis(5);
    assert_eq!(earliest(None, None), None);
    assert_eq!(earliest(Some(t), None), Some(t));
    assert_eq!(earliest(None, Some(later)), Some(later));
    assert_eq!(earliest(Some(later), Some(t)), Some(t));
    assert_eq!(earliest(Some(t), Some(later)), Some(t));
}
