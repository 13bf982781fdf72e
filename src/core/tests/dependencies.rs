//! Dependencies: start order, conditions (started, ready, completed), blocking on a failed
//! dependency, and the reverse order at shutdown; with a fake clock.

use super::common::{at, run, service, spawned, spec};
use crate::core::spec::ServiceSpec;
use crate::core::*;
use std::time::Duration;

fn needs(mut s: ServiceSpec, deps: &[(usize, Condition)]) -> ServiceSpec {
    s.depends_on = deps
        .iter()
        .map(|&(on, condition)| Dependency {
            on: ServiceId(on),
            condition,
        })
        .collect();
    s
}

fn gone(sup: &mut Supervisor, now: u64, pid: i32, status: ExitStatus) -> Vec<Action> {
    sup.handle(
        at(now),
        Input::ChildExited {
            pid: Pid(pid),
            status,
        },
    );
    sup.handle(at(now), Input::GroupEmpty { pgid: Pid(pid) });
    run(sup, now)
}

#[test]
fn started_dependencies_start_in_order_and_independent_ones_at_once() {
    // 0: db; 1: app needs db started; 2: cache (independent); 3: web needs app started.
    let mut sup = Supervisor::new(spec(vec![
        service("db"),
        needs(service("app"), &[(0, Condition::Started)]),
        service("cache"),
        needs(service("web"), &[(1, Condition::Started)]),
    ]));
    sup.start(at(0));
    // db and cache first (file order); app once db runs; web once app runs.
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0, 2, 1, 3]);
}

#[test]
fn ready_waits_for_start_secs_without_polling() {
    let db = ServiceSpec {
        start_secs: Duration::from_secs(2),
        ..service("db")
    };
    let mut sup = Supervisor::new(spec(vec![
        db,
        needs(service("app"), &[(0, Condition::Ready)]),
    ]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0]);
    assert_eq!(sup.service(ServiceId(1)).state_name(), "waiting");
    assert_eq!(
        sup.poll_timeout(),
        Some(at(2000)),
        "one timer: db's readiness"
    );
    sup.handle_timeout(at(1999));
    assert_eq!(spawned(&run(&mut sup, 1999)), Vec::<usize>::new());
    sup.handle_timeout(at(2000));
    assert_eq!(
        spawned(&run(&mut sup, 2000)),
        vec![1],
        "app starts the moment db is ready"
    );
    assert_eq!(
        sup.poll_timeout(),
        None,
        "nobody waits for app to be ready: no timer"
    );
}

#[test]
fn completed_waits_for_a_successful_task() {
    let migrate = ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::OnFailure,
        ..service("migrate")
    };
    let mut sup = Supervisor::new(spec(vec![
        migrate,
        needs(service("app"), &[(0, Condition::Completed)]),
    ]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0]);
    // A failed run is retried; app keeps waiting.
    gone(&mut sup, 10, 101, ExitStatus::Exited(1));
    assert_eq!(sup.service(ServiceId(1)).state_name(), "waiting");
    sup.handle_timeout(at(110));
    assert_eq!(spawned(&run(&mut sup, 110)), vec![0]);
    let acts = gone(&mut sup, 200, 102, ExitStatus::Exited(0));
    assert_eq!(spawned(&acts), vec![1], "completed: app starts");
}

#[test]
fn a_failed_dependency_blocks_its_dependents_and_status_says_why() {
    let migrate = ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::Never,
        ..service("migrate")
    };
    let mut sup = Supervisor::new(spec(vec![
        migrate,
        needs(service("app"), &[(0, Condition::Completed)]),
        needs(service("web"), &[(1, Condition::Started)]),
        service("sidecar"),
    ]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0, 3]);
    gone(&mut sup, 10, 101, ExitStatus::Exited(2));
    assert_eq!(
        sup.service(ServiceId(1)).state,
        ServiceState::Blocked { on: ServiceId(0) }
    );
    assert_eq!(
        sup.service(ServiceId(2)).state,
        ServiceState::Blocked { on: ServiceId(1) },
        "transitively"
    );
    assert_eq!(
        sup.phase(),
        Phase::Running,
        "none is critical: tend stays up to show it"
    );
}

#[test]
fn shutdown_stops_dependents_first_and_independent_services_in_parallel() {
    // db <- app <- web; cache independent.
    let mut sup = Supervisor::new(spec(vec![
        service("db"),
        needs(service("app"), &[(0, Condition::Started)]),
        needs(service("web"), &[(1, Condition::Started)]),
        service("cache"),
    ]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.handle(at(1000), Input::Signal(Signal::TERM));
    let group = |pid| Action::Kill {
        target: KillTarget::Group(Pid(pid)),
        signal: Signal::TERM,
    };
    // web (121) and cache (131) have no dependents: they stop first, together.
    assert_eq!(run(&mut sup, 1000), vec![group(121), group(131)]);
    assert_eq!(
        gone(&mut sup, 1100, 131, ExitStatus::Signaled(Signal::TERM)),
        vec![],
        "cache down: nothing new"
    );
    assert_eq!(
        gone(&mut sup, 1200, 121, ExitStatus::Signaled(Signal::TERM)),
        vec![group(111)],
        "then app"
    );
    assert_eq!(
        gone(&mut sup, 1300, 111, ExitStatus::Signaled(Signal::TERM)),
        vec![group(101)],
        "then db"
    );
    let acts = gone(&mut sup, 1400, 101, ExitStatus::Signaled(Signal::TERM));
    assert_eq!(
        acts,
        vec![Action::Kill {
            target: KillTarget::Everyone,
            signal: Signal::TERM
        }]
    );
}

#[test]
fn a_waiting_service_does_not_hold_up_the_shutdown() {
    let db = ServiceSpec {
        start_secs: Duration::from_secs(30),
        ..service("db")
    };
    let mut sup = Supervisor::new(spec(vec![
        db,
        needs(service("app"), &[(0, Condition::Ready)]),
    ]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.handle(at(5), Input::Signal(Signal::TERM));
    assert_eq!(
        run(&mut sup, 5),
        vec![Action::Kill {
            target: KillTarget::Group(Pid(101)),
            signal: Signal::TERM
        }]
    );
    assert_eq!(
        sup.service(ServiceId(1)).state_name(),
        "stopped",
        "never started, now never will"
    );
}

#[test]
fn reload_can_add_a_service_that_depends_on_a_running_one() {
    let mut sup = Supervisor::new(spec(vec![service("db")]));
    sup.start(at(0));
    run(&mut sup, 0);
    let new = spec(vec![
        needs(service("app"), &[(1, Condition::Started)]),
        service("db"),
    ]);
    let report = sup.reload(at(10), new).unwrap();
    assert_eq!(report.added, vec!["app"]);
    assert_eq!(
        report.unchanged,
        vec!["db"],
        "the file's order changed, the definition did not"
    );
    assert_eq!(spawned(&run(&mut sup, 10)), vec![1]);
    assert_eq!(
        sup.spec().services[1].depends_on,
        vec![Dependency {
            on: ServiceId(0),
            condition: Condition::Started
        }]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            Just(Condition::Started),
            Just(Condition::Ready),
            Just(Condition::Completed)
        ]
    }

    /// Up to 5 services; each may depend on services before it (so the graph has no cycle).
    fn graph() -> impl Strategy<Value = Vec<ServiceSpec>> {
        prop::collection::vec(
            (
                any::<bool>(),
                0..1500u64,
                prop::collection::vec((0..5usize, condition()), 0..3),
            ),
            1..6,
        )
        .prop_map(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (oneshot, start_ms, deps))| {
                    let mut s = ServiceSpec {
                        oneshot,
                        restart: if oneshot {
                            RestartPolicy::OnFailure
                        } else {
                            RestartPolicy::Always
                        },
                        start_secs: Duration::from_millis(start_ms),
                        ..service(&format!("s{i}"))
                    };
                    let mut seen = Vec::new();
                    for (on, condition) in deps {
                        if i > 0 && !seen.contains(&(on % i)) {
                            seen.push(on % i);
                            s.depends_on.push(Dependency {
                                on: ServiceId(on % i),
                                condition,
                            });
                        }
                    }
                    s
                })
                .collect()
        })
    }

    #[derive(Clone, Debug)]
    enum Step {
        Exit { svc: usize, code: u8 },
        Wait(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..5usize, prop_oneof![Just(0u8), Just(1u8)])
                .prop_map(|(svc, code)| Step::Exit { svc, code }),
            (0..2000u64).prop_map(Step::Wait),
        ]
    }

    proptest! {
        /// No service is ever spawned before each of its dependencies' conditions holds.
        #[test]
        fn no_service_starts_before_its_dependencies(services in graph(), steps in prop::collection::vec(step(), 0..40)) {
            let n = services.len();
            let mut sup = Supervisor::new(spec(services));
            let mut live: Vec<Option<i32>> = vec![None; n];
            let mut next_pid = 100;
            let mut now = 0u64;
            sup.start(at(0));
            for st in std::iter::once(Step::Wait(0)).chain(steps) {
                match st {
                    Step::Exit { svc, code } => {
                        let svc = svc % n;
                        if let Some(pid) = live[svc].take() {
                            sup.handle(at(now), Input::ChildExited { pid: Pid(pid), status: ExitStatus::Exited(code) });
                            sup.handle(at(now), Input::GroupEmpty { pgid: Pid(pid) });
                        }
                    }
                    Step::Wait(ms) => {
                        now += ms;
                        while let Some(d) = sup.poll_timeout() {
                            prop_assert_eq!(Some(d), sup.compute_timeout());
                            let d = d.since_origin().as_millis() as u64;
                            if d > now {
                                break;
                            }
                            sup.handle_timeout(at(d));
                        }
                    }
                }
                while let Some(a) = sup.poll_action() {
                    if let Action::Spawn { svc, generation } = a {
                        for dep in &sup.spec().services[svc.0].depends_on {
                            prop_assert_eq!(
                                sup.condition_holds(*dep), Some(true),
                                "{} spawned before {:?} held", svc.0, dep
                            );
                        }
                        next_pid += 1;
                        live[svc.0] = Some(next_pid);
                        sup.handle(at(now), Input::Spawned { svc, generation, pid: Pid(next_pid) });
                    }
                }
            }
        }
    }
}
