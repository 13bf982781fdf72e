//! Supervisor mode: several services, restart policies, backoff, critical services and the
//! ordered graceful shutdown.

use super::common::{at, service, spec};
use crate::core::spec::{KILL_REAP_GRACE, ServiceSpec};
use crate::core::supervisor::LEFTOVER_GRACE;
use crate::core::*;
use std::time::Duration;

fn drain(sup: &mut Supervisor) -> Vec<Action> {
    std::iter::from_fn(|| sup.poll_action())
        .filter(|a| !matches!(a, Action::Log(_)))
        .collect()
}

fn notes(sup: &mut Supervisor) -> Vec<Note> {
    std::iter::from_fn(|| sup.poll_action())
        .filter_map(|a| match a {
            Action::Log(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn svc(i: usize) -> ServiceId {
    ServiceId(i)
}

fn spawn(i: usize, generation: u64) -> Action {
    Action::Spawn {
        svc: svc(i),
        generation: Generation(generation),
    }
}

fn group(pid: i32, signal: Signal) -> Action {
    Action::Kill {
        target: KillTarget::Group(Pid(pid)),
        signal,
    }
}

fn everyone(signal: Signal) -> Action {
    Action::Kill {
        target: KillTarget::Everyone,
        signal,
    }
}

fn spawned(sup: &mut Supervisor, now: u64, i: usize, generation: u64, pid: i32) {
    sup.handle(
        at(now),
        Input::Spawned {
            svc: svc(i),
            generation: Generation(generation),
            pid: Pid(pid),
        },
    );
}

fn exited(sup: &mut Supervisor, now: u64, pid: i32, status: ExitStatus) {
    sup.handle(
        at(now),
        Input::ChildExited {
            pid: Pid(pid),
            status,
        },
    );
}

fn group_empty(sup: &mut Supervisor, now: u64, pid: i32) {
    sup.handle(at(now), Input::GroupEmpty { pgid: Pid(pid) });
}

/// Services `names`, all spawned at t=0 with pids 100, 101, ...
fn running(services: Vec<ServiceSpec>) -> Supervisor {
    let n = services.len();
    let mut sup = Supervisor::new(spec(services));
    sup.start(at(0));
    assert_eq!(
        drain(&mut sup),
        (0..n).map(|i| spawn(i, 1)).collect::<Vec<_>>(),
        "started in file order"
    );
    for i in 0..n {
        spawned(&mut sup, 0, i, 1, 100 + i as i32);
    }
    assert_eq!(drain(&mut sup), vec![]);
    assert_eq!(sup.poll_timeout(), None, "nothing to time while all run");
    sup
}

const FAIL: ExitStatus = ExitStatus::Exited(1);
const OK: ExitStatus = ExitStatus::Exited(0);

#[test]
fn a_crash_stops_the_groups_leftovers_then_restarts_with_backoff() {
    let mut sup = running(vec![service("web")]);
    exited(&mut sup, 50, 100, FAIL);
    assert_eq!(
        drain(&mut sup),
        vec![group(100, Signal::TERM)],
        "leftovers of the group first"
    );
    assert_eq!(sup.awaited_groups().collect::<Vec<_>>(), vec![Pid(100)]);
    group_empty(&mut sup, 60, 100);
    assert_eq!(drain(&mut sup), vec![]);
    assert_eq!(sup.poll_timeout(), Some(at(160)), "initial backoff 100ms");
    sup.handle_timeout(at(159));
    assert_eq!(drain(&mut sup), vec![]);
    sup.handle_timeout(at(160));
    assert_eq!(drain(&mut sup), vec![spawn(0, 2)]);
    spawned(&mut sup, 161, 0, 2, 200);
    exited(&mut sup, 170, 200, FAIL);
    group_empty(&mut sup, 170, 200);
    assert_eq!(sup.poll_timeout(), Some(at(370)), "doubled: 200ms");
    assert_eq!(sup.service(svc(0)).failures, 2);
    assert_eq!(sup.service(svc(0)).restarts, 1);
}

#[test]
fn a_long_run_resets_the_backoff() {
    let mut sup = running(vec![service("web")]);
    // Two quick failures...
    exited(&mut sup, 10, 100, FAIL);
    group_empty(&mut sup, 10, 100);
    sup.handle_timeout(at(110));
    spawned(&mut sup, 110, 0, 2, 200);
    exited(&mut sup, 120, 200, FAIL);
    group_empty(&mut sup, 120, 200);
    assert_eq!(sup.poll_timeout(), Some(at(320)));
    sup.handle_timeout(at(320));
    spawned(&mut sup, 320, 0, 3, 300);
    // ...then a run longer than start-secs (1s): the next delay is the initial one again.
    exited(&mut sup, 5000, 300, FAIL);
    group_empty(&mut sup, 5000, 300);
    assert_eq!(sup.service(svc(0)).failures, 0);
    assert_eq!(sup.poll_timeout(), Some(at(5100)));
}

#[test]
fn leftovers_that_ignore_the_stop_signal_are_killed_at_the_stop_timeout() {
    let mut sup = running(vec![ServiceSpec {
        stop_signal: Signal::QUIT,
        ..service("php")
    }]);
    exited(&mut sup, 1000, 100, ExitStatus::Signaled(Signal::KILL));
    assert_eq!(drain(&mut sup), vec![group(100, Signal::QUIT)]);
    assert_eq!(sup.poll_timeout(), Some(at(6000)), "stop-timeout 5s");
    sup.handle_timeout(at(6000));
    assert_eq!(drain(&mut sup), vec![group(100, Signal::KILL)]);
    group_empty(&mut sup, 6001, 100);
    assert!(matches!(
        sup.service(svc(0)).state,
        ServiceState::Backoff { .. }
    ));
}

#[test]
fn on_failure_does_not_restart_a_success() {
    let on_failure = ServiceSpec {
        restart: RestartPolicy::OnFailure,
        ..service("job")
    };
    let mut sup = running(vec![on_failure, service("other")]);
    exited(&mut sup, 2000, 100, OK);
    group_empty(&mut sup, 2000, 100);
    drain(&mut sup);
    assert_eq!(
        sup.service(svc(0)).state,
        ServiceState::Exited { status: OK }
    );
    assert_eq!(sup.phase(), Phase::Running, "the other service still runs");
    assert_eq!(sup.poll_timeout(), None);
}

#[test]
fn giving_up_marks_the_service_failed_and_keeps_the_scene() {
    let flaky = ServiceSpec {
        max_restarts: 2,
        restart: RestartPolicy::Always,
        ..service("java")
    };
    let mut sup = running(vec![flaky, service("sshd")]);
    let mut pid = 100;
    for generation in 1..=3u64 {
        if generation > 1 {
            let t = sup.poll_timeout().unwrap();
            sup.handle_timeout(t);
            assert_eq!(drain(&mut sup), vec![spawn(0, generation)]);
            pid = 100 * generation as i32;
            spawned(
                &mut sup,
                t.since_origin().as_millis() as u64,
                0,
                generation,
                pid,
            );
        }
        let now = sup
            .poll_timeout()
            .map_or(10, |t| t.since_origin().as_millis() as u64)
            + 10;
        exited(&mut sup, now, pid, ExitStatus::Exited(3));
        assert_eq!(drain(&mut sup), vec![group(pid, Signal::TERM)]);
        group_empty(&mut sup, now, pid);
    }
    let n = notes(&mut sup);
    assert!(
        n.iter()
            .any(|n| matches!(n, Note::GaveUp { failures: 3, .. })),
        "{n:?}"
    );
    assert_eq!(
        sup.service(svc(0)).state,
        ServiceState::Failed {
            outcome: Outcome::Exited(ExitStatus::Exited(3))
        }
    );
    assert_eq!(
        sup.phase(),
        Phase::Running,
        "a failed non-critical service keeps tend up"
    );
    assert_eq!(sup.poll_timeout(), None);
}

#[test]
fn restart_never_keeps_the_crash_scene() {
    let once = ServiceSpec {
        restart: RestartPolicy::Never,
        ..service("app")
    };
    let mut sup = running(vec![once]);
    exited(&mut sup, 10, 100, ExitStatus::Exited(1));
    group_empty(&mut sup, 10, 100);
    drain(&mut sup);
    assert!(matches!(
        sup.service(svc(0)).state,
        ServiceState::Failed { .. }
    ));
    assert_eq!(
        sup.phase(),
        Phase::Running,
        "nothing else runs, but tend stays up"
    );
}

fn graceful_shutdown_to_exit(sup: &mut Supervisor, now: u64, code: u8) {
    sup.handle(at(now), Input::NoChildren);
    assert_eq!(drain(sup), vec![Action::Exit(code)]);
}

#[test]
fn a_critical_service_ending_stops_everything_with_its_code() {
    let app = ServiceSpec {
        critical: true,
        restart: RestartPolicy::Never,
        ..service("app")
    };
    let mut sup = running(vec![service("shipper"), app]);
    exited(&mut sup, 500, 101, ExitStatus::Exited(3));
    assert_eq!(drain(&mut sup), vec![group(101, Signal::TERM)]);
    group_empty(&mut sup, 501, 101);
    // The app is failed for good: everything else stops.
    assert_eq!(drain(&mut sup), vec![group(100, Signal::TERM)]);
    assert!(matches!(sup.phase(), Phase::ShuttingDown { code: 3, .. }));
    exited(&mut sup, 600, 100, ExitStatus::Signaled(Signal::TERM));
    group_empty(&mut sup, 600, 100);
    assert_eq!(
        drain(&mut sup),
        vec![everyone(Signal::TERM)],
        "then whatever is left"
    );
    graceful_shutdown_to_exit(&mut sup, 601, 3);
}

#[test]
fn a_critical_service_killed_by_a_signal_exits_128_plus_n() {
    let app = ServiceSpec {
        critical: true,
        restart: RestartPolicy::Never,
        ..service("app")
    };
    let mut sup = running(vec![app]);
    exited(&mut sup, 500, 100, ExitStatus::Signaled(Signal::SEGV));
    group_empty(&mut sup, 500, 100);
    assert!(matches!(sup.phase(), Phase::Draining { code: 139, .. }));
}

#[test]
fn sigterm_stops_every_service_in_parallel_and_exits_zero() {
    let slow = ServiceSpec {
        stop_timeout: Duration::from_secs(2),
        ..service("stubborn")
    };
    let quit = ServiceSpec {
        stop_signal: Signal::QUIT,
        ..service("nginx")
    };
    let mut sup = running(vec![slow, quit, service("fast")]);
    sup.handle(at(1000), Input::Signal(Signal::TERM));
    assert_eq!(
        drain(&mut sup),
        vec![
            group(100, Signal::TERM),
            group(101, Signal::QUIT),
            group(102, Signal::TERM)
        ],
        "each with its own stop signal, all at once"
    );
    for pid in [101, 102] {
        exited(&mut sup, 1100, pid, OK);
    }
    assert_eq!(drain(&mut sup), vec![]);
    assert_eq!(
        sup.poll_timeout(),
        Some(at(3000)),
        "the stubborn one's stop-timeout"
    );
    sup.handle_timeout(at(3000));
    assert_eq!(drain(&mut sup), vec![group(100, Signal::KILL)]);
    exited(&mut sup, 3001, 100, ExitStatus::Signaled(Signal::KILL));
    assert_eq!(
        drain(&mut sup),
        vec![],
        "services are stopped only once their groups are empty"
    );
    for pid in [100, 101, 102] {
        group_empty(&mut sup, 3002, pid);
    }
    assert_eq!(drain(&mut sup), vec![everyone(Signal::TERM)]);
    assert_eq!(sup.poll_timeout(), Some(at(3002).after(LEFTOVER_GRACE)));
    sup.handle_timeout(at(3002).after(LEFTOVER_GRACE));
    assert_eq!(drain(&mut sup), vec![everyone(Signal::KILL)]);
    graceful_shutdown_to_exit(&mut sup, 4100, 0);
}

#[test]
fn a_second_sigterm_escalates_to_sigkill() {
    let mut sup = running(vec![service("a"), service("b")]);
    sup.handle(at(10), Input::Signal(Signal::TERM));
    drain(&mut sup);
    sup.handle(at(20), Input::Signal(Signal::INT));
    assert_eq!(
        drain(&mut sup),
        vec![
            group(100, Signal::KILL),
            group(101, Signal::KILL),
            everyone(Signal::KILL)
        ]
    );
    graceful_shutdown_to_exit(&mut sup, 30, 0);
}

#[test]
fn the_shutdown_timeout_bounds_the_whole_shutdown() {
    let patient = ServiceSpec {
        stop_timeout: Duration::from_secs(60),
        ..service("db")
    };
    let mut sup = running(vec![patient]);
    sup.handle(at(0), Input::Signal(Signal::TERM));
    drain(&mut sup);
    assert_eq!(
        sup.poll_timeout(),
        Some(at(9000)),
        "the global budget comes first"
    );
    sup.handle_timeout(at(9000));
    assert_eq!(
        drain(&mut sup),
        vec![group(100, Signal::KILL), everyone(Signal::KILL)]
    );
    assert_eq!(sup.poll_timeout(), Some(at(9000).after(KILL_REAP_GRACE)));
    sup.handle_timeout(at(9000).after(KILL_REAP_GRACE));
    assert_eq!(
        drain(&mut sup),
        vec![Action::Exit(0)],
        "exits even if something never dies"
    );
}

#[test]
fn other_signals_are_ignored_in_supervisor_mode() {
    let mut sup = running(vec![service("a")]);
    for s in [
        Signal::USR1,
        Signal::WINCH,
        Signal::HUP,
        Signal::CHLD,
        Signal::TTIN,
        Signal::TTOU,
    ] {
        sup.handle(at(1), Input::Signal(s));
    }
    assert_eq!(drain(&mut sup), vec![]);
    assert_eq!(sup.phase(), Phase::Running);
}

#[test]
fn oneshot_tasks_completing_end_tend_with_zero() {
    let task = |n| ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::OnFailure,
        ..service(n)
    };
    let mut sup = running(vec![task("migrate"), task("seed")]);
    exited(&mut sup, 10, 100, OK);
    group_empty(&mut sup, 10, 100);
    assert_eq!(sup.phase(), Phase::Running);
    exited(&mut sup, 20, 101, OK);
    assert_eq!(
        drain(&mut sup),
        vec![group(100, Signal::TERM), group(101, Signal::TERM)]
    );
    group_empty(&mut sup, 20, 101);
    assert_eq!(drain(&mut sup), vec![everyone(Signal::TERM)]);
    graceful_shutdown_to_exit(&mut sup, 30, 0);
}

#[test]
fn a_failing_oneshot_is_retried_then_fails() {
    let task = ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::OnFailure,
        max_restarts: 1,
        ..service("migrate")
    };
    let mut sup = running(vec![task, service("app")]);
    exited(&mut sup, 5000, 100, FAIL);
    group_empty(&mut sup, 5000, 100);
    assert_eq!(
        sup.service(svc(0)).failures,
        1,
        "a failed task counts even after a long run"
    );
    sup.handle_timeout(at(5100));
    spawned(&mut sup, 5100, 0, 2, 200);
    exited(&mut sup, 9000, 200, FAIL);
    group_empty(&mut sup, 9000, 200);
    assert!(matches!(
        sup.service(svc(0)).state,
        ServiceState::Failed { .. }
    ));
}

#[test]
fn spawn_failures_count_as_failed_starts() {
    let mut sup = Supervisor::new(spec(vec![ServiceSpec {
        max_restarts: 1,
        ..service("nope")
    }]));
    sup.start(at(0));
    drain(&mut sup);
    let fail = |g| Input::SpawnFailed {
        svc: svc(0),
        generation: Generation(g),
        kind: SpawnErrorKind::NotFound,
        message: "nope: not found".into(),
    };
    sup.handle(at(0), fail(1));
    sup.handle_timeout(at(100));
    assert_eq!(drain(&mut sup), vec![spawn(0, 2)]);
    sup.handle(at(100), fail(2));
    assert_eq!(
        sup.service(svc(0)).state,
        ServiceState::Failed {
            outcome: Outcome::SpawnFailed(SpawnErrorKind::NotFound)
        }
    );
}

/// A spawn that keeps failing the same way (out of processes or descriptors) is said once,
/// not at every retry; a different failure, or the same one after a successful start, is
/// said again.
#[test]
fn a_repeated_spawn_failure_is_said_once() {
    let mut sup = Supervisor::new(spec(vec![service("w")]));
    sup.start(at(0));
    let fail = |sup: &mut Supervisor, now: u64, g: u64, message: &str| {
        let input = Input::SpawnFailed {
            svc: svc(0),
            generation: Generation(g),
            kind: SpawnErrorKind::Other,
            message: message.into(),
        };
        sup.handle(at(now), input);
        let said: Vec<String> = std::iter::from_fn(|| sup.poll_action())
            .filter_map(|a| match a {
                Action::Log(n @ Note::SpawnFailed { .. }) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        sup.handle_timeout(at(now + 60_000));
        said
    };
    let eagain = "fork failed: Resource temporarily unavailable";
    assert_eq!(
        fail(&mut sup, 0, 1, eagain),
        [format!("cannot run 'w': {eagain}")]
    );
    assert!(fail(&mut sup, 100_000, 2, eagain).is_empty());
    assert!(fail(&mut sup, 200_000, 3, eagain).is_empty());
    assert_eq!(fail(&mut sup, 300_000, 4, "other").len(), 1);
    while sup.poll_action().is_some() {}
    spawned(&mut sup, 400_000, 0, 5, 100);
    exited(&mut sup, 400_010, 100, FAIL);
    group_empty(&mut sup, 400_010, 100);
    sup.handle_timeout(at(460_000));
    assert_eq!(fail(&mut sup, 460_000, 6, "other").len(), 1);
}

#[test]
fn a_stop_during_spawn_is_carried_out_once_the_pid_is_known() {
    let mut sup = Supervisor::new(spec(vec![service("a")]));
    sup.start(at(0));
    drain(&mut sup);
    sup.handle(at(1), Input::Signal(Signal::TERM));
    assert_eq!(drain(&mut sup), vec![]);
    spawned(&mut sup, 2, 0, 1, 100);
    assert_eq!(drain(&mut sup), vec![group(100, Signal::TERM)]);
    exited(&mut sup, 3, 100, OK);
    group_empty(&mut sup, 3, 100);
    assert_eq!(drain(&mut sup), vec![everyone(Signal::TERM)]);
}

#[test]
fn a_service_in_backoff_stops_at_once() {
    let mut sup = running(vec![service("a")]);
    exited(&mut sup, 10, 100, FAIL);
    group_empty(&mut sup, 10, 100);
    drain(&mut sup);
    sup.handle(at(20), Input::Signal(Signal::TERM));
    assert_eq!(drain(&mut sup), vec![everyone(Signal::TERM)]);
}

#[test]
fn orphans_do_not_disturb_services() {
    let mut sup = running(vec![service("a")]);
    for pid in 1000..1100 {
        exited(&mut sup, 5, pid, OK);
    }
    assert_eq!(drain(&mut sup), vec![]);
    assert_eq!(sup.orphans_reaped(), 100);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Step {
        Exit {
            svc: usize,
            code: u8,
        },
        /// The OOM killer takes the service's main process: the count rises, then it is
        /// reaped in the same batch.
        OomKill {
            svc: usize,
        },
        LeftoversGone {
            svc: usize,
        },
        Signal(Signal),
        Wait(u64),
    }

    /// The `memory_limit` of the services that have one; measurements alternate between
    /// under and over it.
    const LIMIT: u64 = 64 << 20;

    /// The shell's answer to `MeasureMemory`: every service measured must be running
    /// and limited; each gets a usage under or over its limit, in turn.
    fn measure(
        sup: &mut Supervisor,
        now: u64,
        services: &[(ServiceId, Generation)],
        turn: &mut u64,
    ) -> Result<(), TestCaseError> {
        prop_assert!(
            !services.is_empty(),
            "a memory check with nothing to measure"
        );
        for &(svc, generation) in services {
            prop_assert_eq!(sup.running_generation(svc), Some(generation));
            prop_assert!(sup.service_spec(svc).unwrap().memory_limit.is_some());
            *turn += 1;
            let bytes = if (*turn).is_multiple_of(3) {
                LIMIT + 1
            } else {
                LIMIT / 2
            };
            sup.handle(
                at(now),
                Input::MemoryUsage {
                    svc,
                    generation,
                    bytes,
                },
            );
        }
        Ok(())
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..3usize, prop_oneof![Just(0u8), Just(1u8), Just(3u8)])
                .prop_map(|(svc, code)| Step::Exit { svc, code }),
            (0..3usize).prop_map(|svc| Step::LeftoversGone { svc }),
            (0..3usize).prop_map(|svc| Step::OomKill { svc }),
            prop_oneof![Just(Signal::TERM), Just(Signal::USR1), Just(Signal::HUP)]
                .prop_map(Step::Signal),
            (0..3000u64).prop_map(Step::Wait),
        ]
    }

    fn any_spec() -> impl Strategy<Value = ServiceSpec> {
        (
            prop_oneof![
                Just(RestartPolicy::Always),
                Just(RestartPolicy::OnFailure),
                Just(RestartPolicy::Never)
            ],
            any::<bool>(),
            any::<bool>(),
            0..4u32,
            0..3000u64,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(restart, critical, oneshot, max_restarts, stop_ms, forks, limited)| ServiceSpec {
                    restart,
                    critical,
                    oneshot,
                    max_restarts,
                    stop_timeout: Duration::from_millis(stop_ms),
                    // A forking daemon followed through its pid file (never a one-shot task).
                    pid_file: (forks && !oneshot).then(|| "/run/s.pid".into()),
                    memory_limit: limited.then_some(LIMIT),
                    ..service("s")
                },
            )
    }

    proptest! {
        /// Whatever happens: at most one live instance per service; restart delays never
        /// shrink while failures accumulate and never exceed the cap; every stop ends by its
        /// timeout plus the SIGKILL grace; `Exit` comes at most once and last.
        #[test]
        fn supervisor_invariants(specs in prop::collection::vec(any_spec(), 1..4), steps in prop::collection::vec(step(), 0..60)) {
            let n = specs.len();
            let caps: Vec<Duration> = specs.iter().map(|s| s.backoff.max).collect();
            let stop_limits: Vec<Duration> = specs.iter().map(|s| s.stop_timeout + KILL_REAP_GRACE).collect();
            let mut sup = Supervisor::new(spec(specs));
            let mut now = 0u64;
            let mut next_pid = 100;
            // Each service's live main process and its process group.
            let mut live: Vec<Option<(i32, i32)>> = vec![None; n];
            let mut exited_once = false;
            // When each service was first seen stopping, and which group (an instance) it was.
            let mut stopping_since: Vec<Option<(u64, Pid)>> = vec![None; n];
            let mut turn = 0;
            let mut oom_kills = 0;
            sup.handle(at(0), Input::OomKills { count: 0 });
            sup.start(at(0));
            for st in steps {
                // Carry out actions like a shell would.
                while let Some(a) = sup.poll_action() {
                    prop_assert!(!exited_once, "action after Exit: {:?}", a);
                    match a {
                        Action::Spawn { svc, generation } => {
                            prop_assert!(live[svc.0].is_none(), "second live instance of {}", svc.0);
                            next_pid += 1;
                            live[svc.0] = Some((next_pid, next_pid));
                            sup.handle(at(now), Input::Spawned { svc, generation, pid: Pid(next_pid) });
                        }
                        Action::ReadPidFile { svc, generation } => {
                            prop_assert!(live[svc.0].is_none(), "a daemon next to a live instance of {}", svc.0);
                            // Found: a daemon leading its group, or one in another group.
                            next_pid += 1;
                            let pgid = if next_pid % 2 == 0 { next_pid } else { next_pid + 10_000 };
                            live[svc.0] = Some((next_pid, pgid));
                            sup.handle(at(now), Input::Adopted { svc, generation, pid: Pid(next_pid), pgid: Pid(pgid) });
                        }
                        Action::MeasureMemory { services } => measure(&mut sup, now, &services, &mut turn)?,
                        Action::Exit(_) => exited_once = true,
                        Action::Kill { .. } | Action::Log(_) | Action::Reply { .. } | Action::Probe { .. } | Action::SpawnFinish { .. } => {}
                    }
                }
                if exited_once {
                    break;
                }
                // The remembered next timeout is never stale.
                prop_assert_eq!(sup.poll_timeout(), sup.compute_timeout());
                for i in 0..n {
                    let stopping = match sup.service(ServiceId(i)).state {
                        ServiceState::Stopping { pgid, .. } => Some(pgid),
                        _ => None,
                    };
                    match (stopping, stopping_since[i]) {
                        (Some(pgid), Some((t0, seen))) if pgid == seen => prop_assert!(
                            // Samples are taken between steps, so allow one step's length.
                            Duration::from_millis(now - t0) <= stop_limits[i] + Duration::from_millis(3000),
                            "service {} stopping for too long", i
                        ),
                        (Some(pgid), _) => stopping_since[i] = Some((now, pgid)),
                        (None, _) => stopping_since[i] = None,
                    }
                    if let ServiceState::Backoff { until } = sup.service(ServiceId(i)).state {
                        prop_assert!(until.since(at(now)) <= caps[i]);
                    }
                }
                match st {
                    Step::Exit { svc, code } => {
                        let svc = svc % n;
                        if let Some((pid, _)) = live[svc] {
                            live[svc] = None;
                            sup.handle(at(now), Input::ChildExited { pid: Pid(pid), status: ExitStatus::Exited(code) });
                        }
                    }
                    Step::OomKill { svc } => {
                        let svc = svc % n;
                        if let Some((pid, _)) = live[svc] {
                            live[svc] = None;
                            oom_kills += 1;
                            let before = sup.service(ServiceId(svc)).oom_kills;
                            let tends = sup.service(ServiceId(svc)).kill_sent(sup.service_spec(ServiceId(svc)).unwrap());
                            let is_main = sup.service(ServiceId(svc)).pid() == Some(Pid(pid));
                            sup.handle(at(now), Input::OomKills { count: oom_kills });
                            sup.handle(at(now), Input::ChildExited { pid: Pid(pid), status: ExitStatus::Signaled(Signal::KILL) });
                            // Counted as the OOM killer's exactly when tend did not send a KILL itself.
                            let counted = sup.service(ServiceId(svc)).oom_kills - before;
                            prop_assert_eq!(counted, u32::from(is_main && !tends));
                        }
                    }
                    Step::LeftoversGone { svc } => {
                        let svc = svc % n;
                        if let Some(pgid) = sup.service(ServiceId(svc)).awaited_group() {
                            sup.handle(at(now), Input::GroupEmpty { pgid });
                        }
                    }
                    Step::Signal(s) => sup.handle(at(now), Input::Signal(s)),
                    Step::Wait(ms) => {
                        // Never sleep past a deadline: handle each one on time.
                        let target = now + ms;
                        while let Some(d) = sup.poll_timeout() {
                            prop_assert_eq!(Some(d), sup.compute_timeout());
                            let d_ms = d.since_origin().as_millis() as u64;
                            if d_ms > target {
                                break;
                            }
                            now = now.max(d_ms);
                            sup.handle_timeout(at(now));
                            if sup.phase() == Phase::Exited {
                                break;
                            }
                            // Killed processes die: report them.
                            while let Some(a) = sup.poll_action() {
                                match a {
                                    Action::Kill { target: KillTarget::Group(g), signal: Signal::KILL } => {
                                        for l in live.iter_mut() {
                                            if let Some((pid, pgid)) = *l
                                                && pgid == g.0 {
                                                    *l = None;
                                                    sup.handle(at(now), Input::ChildExited { pid: Pid(pid), status: ExitStatus::Signaled(Signal::KILL) });
                                                }
                                        }
                                    }
                                    Action::Spawn { svc, generation } => {
                                        prop_assert!(live[svc.0].is_none());
                                        next_pid += 1;
                                        live[svc.0] = Some((next_pid, next_pid));
                                        sup.handle(at(now), Input::Spawned { svc, generation, pid: Pid(next_pid) });
                                    }
                                    Action::ReadPidFile { svc, generation } => {
                                        prop_assert!(live[svc.0].is_none());
                                        next_pid += 1;
                                        let pgid = if next_pid % 2 == 0 { next_pid } else { next_pid + 10_000 };
                                        live[svc.0] = Some((next_pid, pgid));
                                        sup.handle(at(now), Input::Adopted { svc, generation, pid: Pid(next_pid), pgid: Pid(pgid) });
                                    }
                                    Action::MeasureMemory { services } => measure(&mut sup, now, &services, &mut turn)?,
                                    Action::Exit(_) => exited_once = true,
                                    Action::Log(_) | Action::Kill { .. } | Action::Reply { .. } | Action::Probe { .. } | Action::SpawnFinish { .. } => {}
                                }
                            }
                            if exited_once {
                                break;
                            }
                        }
                        now = target;
                    }
                }
            }
        }
    }
}

fn daemon(name: &str) -> ServiceSpec {
    let mut s = service(name);
    s.pid_file = Some(format!("/run/{name}.pid").into());
    s
}

fn read_pid_file(i: usize, generation: u64) -> Action {
    Action::ReadPidFile {
        svc: svc(i),
        generation: Generation(generation),
    }
}

#[test]
fn a_forking_daemon_is_followed_through_its_pid_file() {
    let mut sup = running(vec![daemon("fpm")]);
    // The started process forks and exits 0: no leftovers are stopped (the daemon is one).
    exited(&mut sup, 30, 100, OK);
    assert_eq!(drain(&mut sup), vec![read_pid_file(0, 1)]);
    assert_eq!(sup.service(svc(0)).state_name(), "starting");
    // The shell found the daemon: it is the service's main process now.
    spawned(&mut sup, 40, 0, 1, 150);
    assert_eq!(drain(&mut sup), vec![]);
    assert_eq!(sup.service(svc(0)).pid(), Some(Pid(150)));
    // Its exit is the service's: leftovers, backoff, a new instance that forks again.
    exited(&mut sup, 5_000, 150, FAIL);
    assert_eq!(drain(&mut sup), vec![group(150, Signal::TERM)]);
    group_empty(&mut sup, 5_010, 150);
    sup.handle_timeout(at(5_110));
    assert_eq!(drain(&mut sup), vec![spawn(0, 2)]);
    spawned(&mut sup, 5_111, 0, 2, 200);
    exited(&mut sup, 5_120, 200, OK);
    assert_eq!(drain(&mut sup), vec![read_pid_file(0, 2)]);
    spawned(&mut sup, 5_121, 0, 2, 250);
    // A stop goes to the daemon's group.
    sup.handle(at(6_000), Input::Signal(Signal::TERM));
    assert_eq!(drain(&mut sup), vec![group(250, Signal::TERM)]);
    exited(&mut sup, 6_010, 250, OK);
    group_empty(&mut sup, 6_010, 250);
    assert_eq!(drain(&mut sup), vec![everyone(Signal::TERM)]);
    graceful_shutdown_to_exit(&mut sup, 6_020, 0);
}

/// `tend restart` of a pid-file service answers once the new daemon is followed, with its
/// pid, not when the process that starts it runs; the daemon is logged as followed, not as
/// spawned.
#[test]
fn a_restart_of_a_forking_daemon_answers_once_the_daemon_is_followed() {
    let mut sup = running(vec![daemon("nginx")]);
    exited(&mut sup, 30, 100, OK);
    drain(&mut sup);
    adopted(&mut sup, 40, 0, 1, 150, 150);
    let notes: Vec<String> = std::iter::from_fn(|| sup.poll_action())
        .filter_map(|a| match a {
            Action::Log(note) => Some(note.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(notes, ["'nginx' forked: following its daemon, pid 150"]);
    let id = RequestId(7);
    sup.control(at(1_000), Some(id), ControlOp::Restart, &[svc(0)])
        .unwrap();
    assert_eq!(drain(&mut sup), vec![group(150, Signal::TERM)]);
    exited(&mut sup, 1_010, 150, OK);
    group_empty(&mut sup, 1_010, 150);
    assert_eq!(drain(&mut sup), vec![spawn(0, 2)]);
    spawned(&mut sup, 1_011, 0, 2, 200);
    assert_eq!(drain(&mut sup), vec![], "no answer while the launcher runs");
    exited(&mut sup, 1_020, 200, OK);
    assert_eq!(drain(&mut sup), vec![read_pid_file(0, 2)]);
    adopted(&mut sup, 1_030, 0, 2, 250, 250);
    assert_eq!(
        drain(&mut sup),
        vec![Action::Reply {
            id,
            results: vec![ControlResult {
                svc: svc(0),
                ok: true,
                message: "running (pid 250)".into(),
            }],
        }]
    );
}

#[test]
fn a_daemon_whose_pid_file_never_names_it_is_a_failed_start() {
    let mut sup = running(vec![daemon("fpm")]);
    exited(&mut sup, 30, 100, OK);
    assert_eq!(drain(&mut sup), vec![read_pid_file(0, 1)]);
    sup.handle(
        at(10_030),
        Input::SpawnFailed {
            svc: svc(0),
            generation: Generation(1),
            kind: SpawnErrorKind::Other,
            message: "no pid".into(),
        },
    );
    // What the started process left in its group (not a daemon tend could follow) goes.
    assert_eq!(drain(&mut sup), vec![group(100, Signal::KILL)]);
    assert_eq!(sup.service(svc(0)).state_name(), "backoff");
    assert_eq!(sup.service(svc(0)).failures, 1);
    // A started process that fails is a failure as usual, with no pid file read.
    sup.handle_timeout(at(10_130));
    assert_eq!(drain(&mut sup), vec![spawn(0, 2)]);
    spawned(&mut sup, 10_131, 0, 2, 300);
    exited(&mut sup, 10_140, 300, FAIL);
    assert_eq!(drain(&mut sup), vec![group(300, Signal::TERM)]);
}

fn adopted(sup: &mut Supervisor, now: u64, i: usize, generation: u64, pid: i32, pgid: i32) {
    sup.handle(
        at(now),
        Input::Adopted {
            svc: svc(i),
            generation: Generation(generation),
            pid: Pid(pid),
            pgid: Pid(pgid),
        },
    );
}

#[test]
fn a_daemon_that_does_not_lead_its_group_is_stopped_through_the_group() {
    let mut sup = running(vec![daemon("legacy")]);
    exited(&mut sup, 30, 100, OK);
    assert_eq!(drain(&mut sup), vec![read_pid_file(0, 1)]);
    // It forked twice: its group is the one its intermediate parent made (170).
    adopted(&mut sup, 40, 0, 1, 171, 170);
    assert_eq!(sup.service(svc(0)).pid(), Some(Pid(171)));
    sup.handle(at(1_000), Input::Signal(Signal::TERM));
    assert_eq!(drain(&mut sup), vec![group(170, Signal::TERM)]);
    assert_eq!(sup.service(svc(0)).pid(), Some(Pid(171)));
    // Its exit is recognised by its pid; then the group must be empty.
    exited(&mut sup, 1_010, 171, OK);
    assert_eq!(sup.awaited_groups().collect::<Vec<_>>(), vec![Pid(170)]);
    group_empty(&mut sup, 1_010, 170);
    assert_eq!(drain(&mut sup), vec![everyone(Signal::TERM)]);
    graceful_shutdown_to_exit(&mut sup, 1_020, 0);
}

#[test]
fn a_crashed_daemon_outside_its_group_has_its_group_stopped_before_the_restart() {
    let mut sup = running(vec![daemon("legacy")]);
    exited(&mut sup, 30, 100, OK);
    drain(&mut sup);
    adopted(&mut sup, 40, 0, 1, 171, 170);
    exited(&mut sup, 5_000, 171, FAIL);
    assert_eq!(drain(&mut sup), vec![group(170, Signal::TERM)]);
    group_empty(&mut sup, 5_010, 170);
    sup.handle_timeout(at(5_110));
    assert_eq!(drain(&mut sup), vec![spawn(0, 2)]);
    // A new instance starts with no group of its own yet: its pid names it again.
    spawned(&mut sup, 5_111, 0, 2, 200);
    sup.handle(at(5_200), Input::Signal(Signal::TERM));
    assert_eq!(drain(&mut sup), vec![group(200, Signal::TERM)]);
}

#[test]
fn a_stop_while_the_pid_file_is_read_stops_the_daemon_once_found() {
    let mut sup = running(vec![daemon("fpm")]);
    exited(&mut sup, 30, 100, OK);
    assert_eq!(drain(&mut sup), vec![read_pid_file(0, 1)]);
    sup.handle(at(35), Input::Signal(Signal::TERM));
    assert_eq!(drain(&mut sup), vec![]);
    spawned(&mut sup, 40, 0, 1, 150);
    assert_eq!(drain(&mut sup), vec![group(150, Signal::TERM)]);
    exited(&mut sup, 50, 150, OK);
    group_empty(&mut sup, 50, 150);
    assert_eq!(drain(&mut sup), vec![everyone(Signal::TERM)]);
    graceful_shutdown_to_exit(&mut sup, 60, 0);
}

/// A second SIGTERM kills at once: the log says the shutdown escalated, and does not claim
/// that a service overran its stop-timeout (it did not); one that really does is named.
#[test]
fn an_escalated_stop_is_not_reported_as_a_stop_timeout() {
    let notes = |sup: &mut Supervisor| -> Vec<String> {
        std::iter::from_fn(|| sup.poll_action())
            .filter_map(|a| match a {
                Action::Log(n) => Some(n.to_string()),
                _ => None,
            })
            .collect()
    };
    let mut sup = running(vec![service("app")]);
    sup.handle(at(1000), Input::Signal(Signal::TERM));
    notes(&mut sup);
    sup.handle(at(1100), Input::Signal(Signal::TERM));
    let said = notes(&mut sup);
    assert!(said.iter().all(|n| !n.contains("stop-timeout")), "{said:?}");
    let mut sup = running(vec![service("app")]);
    sup.handle(at(1000), Input::Signal(Signal::TERM));
    notes(&mut sup);
    sup.handle_timeout(at(6000));
    let said = notes(&mut sup);
    assert!(
        said.iter()
            .any(|n| n.contains("'app' did not stop within its stop-timeout")),
        "{said:?}"
    );
}
