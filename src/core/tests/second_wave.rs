//! The keys people coming from supervisord, runit and s6 use every day: `autostart`,
//! `finish` and shutdown tasks (`run-on = "shutdown"`); with a fake clock.

use super::common::{at, run, service, spawned, spec};
use crate::core::spec::ServiceSpec;
use crate::core::*;

fn needs(mut s: ServiceSpec, on: usize, condition: Condition) -> ServiceSpec {
    s.depends_on.push(Dependency {
        on: ServiceId(on),
        condition,
    });
    s
}

fn manual(name: &str) -> ServiceSpec {
    ServiceSpec {
        autostart: false,
        ..service(name)
    }
}

#[test]
fn autostart_false_is_loaded_stopped_and_its_dependents_wait_for_it() {
    // 0: tools (autostart = false); 1: app needs tools started; 2: web (independent).
    let mut sup = Supervisor::new(spec(vec![
        manual("tools"),
        needs(service("app"), 0, Condition::Started),
        service("web"),
    ]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![2], "only web starts");
    assert_eq!(sup.service(ServiceId(0)).state_name(), "stopped");
    assert_eq!(sup.service(ServiceId(1)).state_name(), "waiting");
    assert_eq!(sup.poll_timeout(), None, "no timer for a stopped service");
    // `tend start tools`: it starts, then its dependent; its first start is no restart.
    sup.control(
        at(500),
        Some(RequestId(1)),
        ControlOp::Start,
        &[ServiceId(0)],
    )
    .unwrap();
    let actions = run(&mut sup, 500);
    assert_eq!(spawned(&actions), vec![0, 1]);
    assert_eq!(sup.service(ServiceId(0)).restarts, 0);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply { id: RequestId(1), results } if results[0].ok
    )));
}

#[test]
fn autostart_false_stays_stopped_at_a_reload_that_adds_it() {
    let mut sup = Supervisor::new(spec(vec![service("web")]));
    sup.start(at(0));
    run(&mut sup, 0);
    let report = sup
        .reload(at(100), spec(vec![service("web"), manual("tools")]))
        .unwrap();
    assert_eq!(report.added, ["tools"]);
    assert!(spawned(&run(&mut sup, 100)).is_empty());
    assert_eq!(sup.service(ServiceId(1)).state_name(), "stopped");
    // A stopped service does not keep tend up as if it still had work: shutdown is clean.
    sup.handle(at(200), Input::Signal(Signal::TERM));
    let actions = run(&mut sup, 200);
    assert!(actions.contains(&Action::Kill {
        target: KillTarget::Group(Pid(101)),
        signal: Signal::TERM
    }));
}

fn task(name: &str, on: usize) -> ServiceSpec {
    ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::OnFailure,
        start_secs: std::time::Duration::ZERO,
        run_on: RunOn::Shutdown,
        stop_timeout: std::time::Duration::from_secs(3),
        ..needs(service(name), on, Condition::Started)
    }
}

/// Pid of service `svc`'s instance `generation` in these tests.
fn pid(svc: usize, generation: u64) -> Pid {
    Pid(100 + svc as i32 * 10 + generation as i32)
}

fn exits(sup: &mut Supervisor, now: u64, pid: Pid, status: ExitStatus) -> Vec<Action> {
    sup.handle(at(now), Input::ChildExited { pid, status });
    sup.handle(at(now), Input::GroupEmpty { pgid: pid });
    run(sup, now)
}

fn kills(actions: &[Action]) -> Vec<(KillTarget, Signal)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Kill { target, signal } => Some((*target, *signal)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_shutdown_task_runs_at_shutdown_while_what_it_depends_on_stays_up() {
    // 0: app; 1: deregister (run-on = "shutdown", depends on app); 2: other (independent).
    let mut sup = Supervisor::new(spec(vec![
        service("app"),
        task("deregister", 0),
        service("other"),
    ]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0, 2], "the task waits");
    assert_eq!(sup.service(ServiceId(1)).state_name(), "waiting");
    // Everything else done would not end tend while a task waits for the shutdown either.
    assert_eq!(sup.poll_timeout(), None);

    sup.handle(at(1000), Input::Signal(Signal::TERM));
    let actions = run(&mut sup, 1000);
    // The task starts; `other` (nothing depends on it) stops at once; `app` stays up.
    assert_eq!(spawned(&actions), vec![1]);
    assert_eq!(
        kills(&actions),
        [(KillTarget::Group(pid(2, 1)), Signal::TERM)]
    );
    exits(
        &mut sup,
        1100,
        pid(2, 1),
        ExitStatus::Signaled(Signal::TERM),
    );
    // The task completes (what it left in its group is swept, as for any service); once its
    // group is empty, `app` gets its stop signal.
    let actions = exits(&mut sup, 1500, pid(1, 1), ExitStatus::Exited(0));
    assert_eq!(
        kills(&actions),
        [
            (KillTarget::Group(pid(1, 1)), Signal::TERM),
            (KillTarget::Group(pid(0, 1)), Signal::TERM)
        ]
    );
    let actions = exits(
        &mut sup,
        1600,
        pid(0, 1),
        ExitStatus::Signaled(Signal::TERM),
    );
    assert!(
        kills(&actions).contains(&(KillTarget::Everyone, Signal::TERM)),
        "then the leftovers: {actions:?}"
    );
}

#[test]
fn a_shutdown_task_that_overruns_its_stop_timeout_is_killed_and_the_shutdown_goes_on() {
    let mut sup = Supervisor::new(spec(vec![service("app"), task("flush", 0)]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.request_shutdown(at(1000)).unwrap();
    assert_eq!(spawned(&run(&mut sup, 1000)), vec![1]);
    // Its stop-timeout (3s) is the next deadline, before the 9s budget.
    assert_eq!(sup.poll_timeout(), Some(at(4000)));
    sup.handle_timeout(at(4000));
    let actions = run(&mut sup, 4000);
    assert_eq!(
        kills(&actions),
        [(KillTarget::Group(pid(1, 1)), Signal::KILL)]
    );
    let actions = exits(
        &mut sup,
        4010,
        pid(1, 1),
        ExitStatus::Signaled(Signal::KILL),
    );
    assert_eq!(
        kills(&actions),
        [(KillTarget::Group(pid(0, 1)), Signal::TERM)],
        "app is stopped once the task is gone"
    );
}

#[test]
fn a_failing_shutdown_task_is_not_run_again_and_tasks_do_not_hold_up_the_all_done_exit() {
    // 0: a one-shot job; 1: a task depending on it.
    let job = ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::OnFailure,
        start_secs: std::time::Duration::ZERO,
        ..service("job")
    };
    let mut sup = Supervisor::new(spec(vec![job, task("report", 0)]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0]);
    // The job completes: everything that runs with the others is done, so tend shuts down,
    // and the task runs then.
    let actions = exits(&mut sup, 500, pid(0, 1), ExitStatus::Exited(0));
    assert_eq!(spawned(&actions), vec![1]);
    // It fails: no retry during the shutdown; tend drains and exits 0.
    let actions = exits(&mut sup, 600, pid(1, 1), ExitStatus::Exited(2));
    assert!(spawned(&actions).is_empty(), "{actions:?}");
    assert!(kills(&actions).contains(&(KillTarget::Everyone, Signal::TERM)));
    sup.handle(at(700), Input::NoChildren);
    assert_eq!(run(&mut sup, 700), [Action::Exit(0)]);
}

fn finishing(mut s: ServiceSpec, timeout_ms: u64) -> ServiceSpec {
    s.finish = Some(Finish {
        argv: vec!["finish".into()],
        timeout: std::time::Duration::from_millis(timeout_ms),
    });
    s
}

/// Pid of the finish command of service `svc`'s instance `generation`.
fn finish_pid(svc: usize, generation: u64) -> Pid {
    Pid(900 + svc as i32 * 10 + generation as i32)
}

/// Like `run`, and every `SpawnFinish` is answered as started; the statuses it was asked
/// for are returned with the other actions.
fn run_finishing(sup: &mut Supervisor, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    loop {
        let actions = run(sup, now);
        if actions.is_empty() {
            return out;
        }
        for a in actions {
            if let Action::SpawnFinish {
                svc, generation, ..
            } = a
            {
                sup.handle(
                    at(now),
                    Input::FinishSpawned {
                        svc,
                        generation,
                        pid: finish_pid(svc.0, generation.0),
                    },
                );
            }
            out.push(a);
        }
    }
}

fn gone(sup: &mut Supervisor, now: u64, pid: Pid, status: ExitStatus) -> Vec<Action> {
    sup.handle(at(now), Input::ChildExited { pid, status });
    sup.handle(at(now), Input::GroupEmpty { pgid: pid });
    run_finishing(sup, now)
}

fn finishes(actions: &[Action]) -> Vec<(usize, ExitStatus)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SpawnFinish { svc, status, .. } => Some((svc.0, *status)),
            _ => None,
        })
        .collect()
}

#[test]
fn finish_runs_after_every_end_and_the_restart_waits_for_it() {
    let mut sup = Supervisor::new(spec(vec![finishing(service("app"), 5000)]));
    sup.start(at(0));
    run_finishing(&mut sup, 0);
    // It crashes after 2s: its finish runs with the status; no restart yet.
    let actions = gone(&mut sup, 2000, pid(0, 1), ExitStatus::Exited(3));
    assert_eq!(finishes(&actions), [(0, ExitStatus::Exited(3))]);
    assert!(spawned(&actions).is_empty());
    assert_eq!(sup.service(ServiceId(0)).state_name(), "finishing");
    assert_eq!(sup.poll_timeout(), Some(at(7000)), "its finish-timeout");
    // The finish ends: the restart policy applies as it would have (a run of 2s is no
    // failed start, so the restart comes after the first backoff delay).
    sup.handle(
        at(2300),
        Input::ChildExited {
            pid: finish_pid(0, 1),
            status: ExitStatus::Exited(0),
        },
    );
    assert!(spawned(&run_finishing(&mut sup, 2300)).is_empty());
    assert_eq!(sup.service(ServiceId(0)).state_name(), "backoff");
    assert_eq!(sup.service(ServiceId(0)).failures, 0);
    sup.handle_timeout(at(2400));
    assert_eq!(spawned(&run_finishing(&mut sup, 2400)), [0]);
    // Killed by a signal: the finish gets that status too.
    let actions = gone(
        &mut sup,
        5000,
        pid(0, 2),
        ExitStatus::Signaled(Signal::KILL),
    );
    assert_eq!(
        finishes(&actions),
        [(0, ExitStatus::Signaled(Signal::KILL))]
    );
}

#[test]
fn a_finish_that_overruns_its_timeout_is_killed_and_the_service_goes_on() {
    let mut sup = Supervisor::new(spec(vec![finishing(service("app"), 500)]));
    sup.start(at(0));
    run_finishing(&mut sup, 0);
    gone(&mut sup, 2000, pid(0, 1), ExitStatus::Exited(1));
    sup.handle_timeout(at(2500));
    let actions = run_finishing(&mut sup, 2500);
    assert_eq!(
        kills(&actions),
        [(KillTarget::Group(finish_pid(0, 1)), Signal::KILL)]
    );
    // Reaped after the SIGKILL: the service carries on (to its backoff).
    sup.handle(
        at(2510),
        Input::ChildExited {
            pid: finish_pid(0, 1),
            status: ExitStatus::Signaled(Signal::KILL),
        },
    );
    run_finishing(&mut sup, 2510);
    assert_eq!(sup.service(ServiceId(0)).state_name(), "backoff");
}

#[test]
fn a_finish_that_cannot_start_is_said_and_skipped() {
    let mut sup = Supervisor::new(spec(vec![finishing(service("app"), 500)]));
    sup.start(at(0));
    run_finishing(&mut sup, 0);
    sup.control(at(100), None, ControlOp::Stop, &[ServiceId(0)])
        .unwrap();
    run(&mut sup, 100);
    sup.handle(
        at(200),
        Input::ChildExited {
            pid: pid(0, 1),
            status: ExitStatus::Signaled(Signal::TERM),
        },
    );
    sup.handle(at(200), Input::GroupEmpty { pgid: pid(0, 1) });
    let mut notes = Vec::new();
    while let Some(a) = sup.poll_action() {
        match a {
            Action::SpawnFinish {
                svc, generation, ..
            } => sup.handle(
                at(200),
                Input::FinishSpawnFailed {
                    svc,
                    generation,
                    message: "No such file or directory".into(),
                },
            ),
            Action::Log(note) => notes.push(note.to_string()),
            _ => {}
        }
    }
    assert!(
        notes.contains(&"finish of 'app' could not be started: No such file or directory".into()),
        "{notes:?}"
    );
    assert_eq!(sup.service(ServiceId(0)).state_name(), "stopped");
}

#[test]
fn a_start_while_finish_runs_waits_for_it_and_a_stop_stays_stopped() {
    let mut sup = Supervisor::new(spec(vec![finishing(service("app"), 5000)]));
    sup.start(at(0));
    run_finishing(&mut sup, 0);
    sup.control(
        at(100),
        Some(RequestId(1)),
        ControlOp::Restart,
        &[ServiceId(0)],
    )
    .unwrap();
    run_finishing(&mut sup, 100);
    let actions = gone(&mut sup, 200, pid(0, 1), ExitStatus::Signaled(Signal::TERM));
    assert_eq!(
        finishes(&actions),
        [(0, ExitStatus::Signaled(Signal::TERM))]
    );
    assert!(spawned(&actions).is_empty(), "the restart waits for finish");
    sup.handle(
        at(400),
        Input::ChildExited {
            pid: finish_pid(0, 1),
            status: ExitStatus::Exited(0),
        },
    );
    let actions = run_finishing(&mut sup, 400);
    assert_eq!(spawned(&actions), [0]);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Reply { id: RequestId(1), results } if results[0].ok))
    );
    // A stop: finish runs, then it stays stopped.
    sup.control(at(1000), None, ControlOp::Stop, &[ServiceId(0)])
        .unwrap();
    run_finishing(&mut sup, 1000);
    gone(&mut sup, 1100, pid(0, 2), ExitStatus::Exited(0));
    sup.handle(
        at(1200),
        Input::ChildExited {
            pid: finish_pid(0, 2),
            status: ExitStatus::Exited(0),
        },
    );
    assert!(spawned(&run_finishing(&mut sup, 1200)).is_empty());
    assert_eq!(sup.service(ServiceId(0)).state_name(), "stopped");
}

#[test]
fn at_shutdown_a_dependency_stops_only_after_its_dependents_finish_has_ended() {
    // 0: db; 1: app (depends on db) with a finish.
    let mut sup = Supervisor::new(spec(vec![
        service("db"),
        finishing(needs(service("app"), 0, Condition::Started), 3000),
    ]));
    sup.start(at(0));
    run_finishing(&mut sup, 0);
    sup.handle(at(1000), Input::Signal(Signal::TERM));
    let actions = run_finishing(&mut sup, 1000);
    assert_eq!(
        kills(&actions),
        [(KillTarget::Group(pid(1, 1)), Signal::TERM)]
    );
    let actions = gone(
        &mut sup,
        1100,
        pid(1, 1),
        ExitStatus::Signaled(Signal::TERM),
    );
    assert_eq!(
        finishes(&actions),
        [(1, ExitStatus::Signaled(Signal::TERM))]
    );
    assert!(kills(&actions).is_empty(), "db waits for app's finish");
    sup.handle(
        at(1500),
        Input::ChildExited {
            pid: finish_pid(1, 1),
            status: ExitStatus::Exited(0),
        },
    );
    let actions = run_finishing(&mut sup, 1500);
    assert_eq!(
        kills(&actions),
        [(KillTarget::Group(pid(0, 1)), Signal::TERM)]
    );
}
