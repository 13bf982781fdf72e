//! Control requests (start, stop, restart, signal, shutdown) and reload, with a fake clock.

use super::common::{at, run_spawning, service, spec};
use crate::core::spec::ServiceSpec;
use crate::core::*;
use std::time::Duration;

/// Actions without log notes; spawns answered with pids 100, 101, ... in order.
struct Harness {
    sup: Supervisor,
    next_pid: i32,
    now: u64,
}

impl Harness {
    fn new(services: Vec<ServiceSpec>) -> Harness {
        let mut h = Harness {
            sup: Supervisor::new(spec(services)),
            next_pid: 100,
            now: 0,
        };
        h.sup.start(at(0));
        h.run();
        h
    }

    /// Carries out spawns at once (pids counting up) and returns the other actions.
    fn run(&mut self) -> Vec<Action> {
        let next = std::cell::Cell::new(self.next_pid);
        let actions = run_spawning(&mut self.sup, self.now, |_, _| {
            next.set(next.get() + 1);
            Pid(next.get() - 1)
        });
        self.next_pid = next.get();
        actions
            .into_iter()
            .filter(|a| !matches!(a, Action::Spawn { .. }))
            .collect()
    }

    /// The group of `pid` is gone (its main process exited with `status`).
    fn gone(&mut self, pid: i32, status: ExitStatus) -> Vec<Action> {
        self.sup.handle(
            at(self.now),
            Input::ChildExited {
                pid: Pid(pid),
                status,
            },
        );
        self.sup
            .handle(at(self.now), Input::GroupEmpty { pgid: Pid(pid) });
        self.run()
    }

    fn state(&self, i: usize) -> &'static str {
        self.sup.service(ServiceId(i)).state_name()
    }
}

fn reply(id: u64, results: &[(usize, bool, &str)]) -> Action {
    Action::Reply {
        id: RequestId(id),
        results: results
            .iter()
            .map(|&(svc, ok, message)| ControlResult {
                svc: ServiceId(svc),
                ok,
                message: message.into(),
            })
            .collect(),
    }
}

const TERM: ExitStatus = ExitStatus::Signaled(Signal::TERM);

#[test]
fn stop_waits_for_the_group_and_the_service_stays_stopped() {
    let mut h = Harness::new(vec![service("web")]);
    h.sup
        .control(at(0), Some(RequestId(1)), ControlOp::Stop, &[ServiceId(0)])
        .unwrap();
    assert_eq!(
        h.run(),
        vec![Action::Kill {
            target: KillTarget::Group(Pid(100)),
            signal: Signal::TERM
        }]
    );
    assert_eq!(h.gone(100, TERM), vec![reply(1, &[(0, true, "stopped")])]);
    assert_eq!(
        h.state(0),
        "stopped",
        "restart = always does not bring it back"
    );
    assert_eq!(h.sup.poll_timeout(), None);
    assert_eq!(
        h.sup.phase(),
        Phase::Running,
        "a stopped service does not end tend"
    );
}

#[test]
fn start_brings_a_stopped_service_back_and_answers_with_its_pid() {
    let mut h = Harness::new(vec![service("web")]);
    h.sup
        .control(at(0), None, ControlOp::Stop, &[ServiceId(0)])
        .unwrap();
    h.run();
    h.gone(100, TERM);
    h.sup
        .control(at(5), Some(RequestId(2)), ControlOp::Start, &[ServiceId(0)])
        .unwrap();
    assert_eq!(h.run(), vec![reply(2, &[(0, true, "running (pid 101)")])]);
    assert_eq!(h.sup.service(ServiceId(0)).restarts, 1);
}

#[test]
fn start_of_a_running_service_answers_at_once() {
    let mut h = Harness::new(vec![service("web")]);
    h.sup
        .control(at(0), Some(RequestId(3)), ControlOp::Start, &[ServiceId(0)])
        .unwrap();
    assert_eq!(h.run(), vec![reply(3, &[(0, true, "running (pid 100)")])]);
}

#[test]
fn restart_gives_a_new_pid_and_answers_once_it_runs() {
    let mut h = Harness::new(vec![service("a"), service("b")]);
    h.sup
        .control(
            at(0),
            Some(RequestId(4)),
            ControlOp::Restart,
            &[ServiceId(0), ServiceId(1)],
        )
        .unwrap();
    assert_eq!(
        h.run(),
        vec![
            Action::Kill {
                target: KillTarget::Group(Pid(100)),
                signal: Signal::TERM
            },
            Action::Kill {
                target: KillTarget::Group(Pid(101)),
                signal: Signal::TERM
            },
        ]
    );
    assert_eq!(h.gone(101, TERM), vec![], "waits for both");
    assert_eq!(
        h.gone(100, TERM),
        vec![reply(
            4,
            &[
                (0, true, "running (pid 103)"),
                (1, true, "running (pid 102)")
            ]
        )]
    );
}

#[test]
fn a_start_that_fails_is_reported_as_a_failure() {
    let mut h = Harness::new(vec![ServiceSpec {
        restart: RestartPolicy::Never,
        ..service("app")
    }]);
    h.gone(100, ExitStatus::Exited(2));
    assert_eq!(h.state(0), "failed");
    h.sup
        .control(
            at(10),
            Some(RequestId(5)),
            ControlOp::Start,
            &[ServiceId(0)],
        )
        .unwrap();
    let Some(Action::Spawn { svc, generation }) = h.sup.poll_action() else {
        panic!("no spawn")
    };
    h.sup.handle(
        at(10),
        Input::SpawnFailed {
            svc,
            generation,
            kind: SpawnErrorKind::NotFound,
            message: "app: not found".into(),
        },
    );
    assert_eq!(
        h.run(),
        vec![reply(
            5,
            &[(0, false, "failed: could not be started (exit 127)")]
        )]
    );
    assert_eq!(h.state(0), "failed");
}

#[test]
fn control_is_refused_during_shutdown() {
    let mut h = Harness::new(vec![service("web")]);
    h.sup.handle(at(0), Input::Signal(Signal::TERM));
    h.run();
    assert!(
        h.sup
            .control(at(1), Some(RequestId(6)), ControlOp::Start, &[ServiceId(0)])
            .is_err()
    );
    assert!(h.sup.request_shutdown(at(1)).is_err());
}

#[test]
fn pending_requests_are_answered_when_tend_exits() {
    let slow = ServiceSpec {
        stop_timeout: Duration::from_secs(60),
        ..service("db")
    };
    let mut h = Harness::new(vec![slow]);
    h.sup
        .control(at(0), Some(RequestId(7)), ControlOp::Stop, &[ServiceId(0)])
        .unwrap();
    h.run();
    h.sup.handle(at(1), Input::Signal(Signal::TERM));
    h.sup.handle(at(2), Input::Signal(Signal::TERM)); // escalate
    let acts = h.run();
    assert!(
        acts.contains(&Action::Kill {
            target: KillTarget::Everyone,
            signal: Signal::KILL
        }),
        "{acts:?}"
    );
    h.sup.handle(at(3), Input::NoChildren);
    let acts = h.run();
    assert_eq!(acts.last(), Some(&Action::Exit(0)));
    assert!(
        acts.iter().any(|a| matches!(
            a,
            Action::Reply {
                id: RequestId(7),
                ..
            }
        )),
        "{acts:?}"
    );
}

#[test]
fn signal_goes_to_running_services_only() {
    let mut h = Harness::new(vec![
        service("a"),
        ServiceSpec {
            restart: RestartPolicy::Never,
            ..service("b")
        },
    ]);
    h.gone(101, ExitStatus::Exited(0));
    let results = h
        .sup
        .signal_services(Signal::USR1, &[ServiceId(0), ServiceId(1)]);
    assert!(results[0].ok && !results[1].ok);
    assert_eq!(
        h.run(),
        vec![Action::Kill {
            target: KillTarget::Group(Pid(100)),
            signal: Signal::USR1
        }]
    );
}

#[test]
fn shutdown_request_is_a_graceful_shutdown_with_code_zero() {
    let mut h = Harness::new(vec![service("a")]);
    h.sup.request_shutdown(at(0)).unwrap();
    assert_eq!(
        h.run(),
        vec![Action::Kill {
            target: KillTarget::Group(Pid(100)),
            signal: Signal::TERM
        }]
    );
    h.gone(100, TERM);
    h.sup.handle(at(1), Input::NoChildren);
    assert_eq!(h.run(), vec![Action::Exit(0)]);
}

#[test]
fn reload_adds_removes_restarts_and_leaves_the_rest_alone() {
    let mut h = Harness::new(vec![service("keep"), service("drop"), service("change")]);
    let changed = ServiceSpec {
        stop_signal: Signal::QUIT,
        ..service("change")
    };
    let new = spec(vec![service("keep"), changed.clone(), service("add")]);
    // The look-ahead the shell sets up log pipes by: one slot more, and nothing changed.
    assert_eq!(h.sup.slots_after_reload(&new), Ok(4));
    assert_eq!(h.sup.live_services().count(), 3);
    let report = h.sup.reload(at(10), new).unwrap();
    assert_eq!(report.unchanged, vec!["keep"]);
    assert_eq!(report.removed, vec!["drop"]);
    assert_eq!(report.changed, vec!["change"]);
    assert_eq!(report.added, vec!["add"]);
    assert_eq!(
        h.run(),
        vec![
            Action::Kill {
                target: KillTarget::Group(Pid(101)),
                signal: Signal::TERM
            },
            // The changed service is stopped the old way (TERM), restarted the new way.
            Action::Kill {
                target: KillTarget::Group(Pid(102)),
                signal: Signal::TERM
            },
        ]
    );
    assert_eq!(
        h.sup.service(ServiceId(3)).pid(),
        Some(Pid(103)),
        "added and started"
    );
    h.gone(101, TERM);
    h.gone(102, TERM);
    assert_eq!(
        h.sup.service(ServiceId(0)).pid(),
        Some(Pid(100)),
        "untouched"
    );
    assert_eq!(
        h.sup.service(ServiceId(2)).pid(),
        Some(Pid(104)),
        "restarted"
    );
    assert_eq!(h.sup.spec().services[2], changed);
    assert!(h.sup.is_retired(ServiceId(1)));
    assert_eq!(h.sup.find("drop"), None);
    assert_eq!(h.sup.live_services().count(), 3);
    // A removed service ending does not count as a failure or a reason to exit.
    assert_eq!(h.sup.phase(), Phase::Running);
    // Re-adding the removed name reuses its slot.
    let back = spec(vec![
        service("keep"),
        changed,
        service("add"),
        service("drop"),
    ]);
    assert_eq!(h.sup.slots_after_reload(&back), Ok(4), "no new slot");
    assert_eq!(
        h.sup.slots_after_reload(&spec(vec![service("keep")])),
        Ok(4),
        "slots are never given back"
    );
    let report = h.sup.reload(at(20), back).unwrap();
    assert_eq!(report.added, vec!["drop"]);
    h.run();
    assert_eq!(h.sup.find("drop"), Some(ServiceId(1)));
    assert_eq!(h.state(1), "running");
}

#[test]
fn a_critical_service_removed_by_reload_does_not_stop_tend() {
    let mut h = Harness::new(vec![
        ServiceSpec {
            critical: true,
            ..service("app")
        },
        service("other"),
    ]);
    h.sup.reload(at(1), spec(vec![service("other")])).unwrap();
    h.run();
    h.gone(100, TERM);
    assert_eq!(h.sup.phase(), Phase::Running);
}
