//! Readiness probes and notifications, the readiness timeout, and health checks, with a fake
//! clock: the core schedules attempts and hears results; the shell runs them.

use super::common::{at, run_spawning, service, spec};
use crate::core::spec::{HealthRule, HostPort, HttpTarget, Probe, ReadyRule, ServiceSpec};
use crate::core::*;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn tcp_ready(s: ServiceSpec) -> ServiceSpec {
    ServiceSpec {
        ready: Some(ReadyRule {
            probe: Probe::Tcp {
                target: HostPort::new("127.0.0.1", 80),
            },
            interval: ms(250),
            attempt_timeout: ms(1000),
            timeout: ms(5000),
        }),
        ..s
    }
}

fn healthy(s: ServiceSpec) -> ServiceSpec {
    ServiceSpec {
        health: Some(HealthRule {
            probe: Probe::Http {
                target: HttpTarget::new("127.0.0.1", 80, "/healthz"),
            },
            interval: ms(1000),
            timeout: ms(500),
            start_period: ms(0),
            failures: 3,
        }),
        ..s
    }
}

/// Spawns succeed with pid 100 + generation*10 + index; returns the other actions.
fn run(sup: &mut Supervisor, now: u64) -> Vec<Action> {
    run_spawning(sup, now, |svc, generation| {
        Pid(100 + generation.0 as i32 * 10 + svc.0 as i32)
    })
}

fn probe(svc: usize, generation: u64, health: bool) -> Action {
    Action::Probe {
        svc: ServiceId(svc),
        generation: Generation(generation),
        health,
    }
}

fn result(sup: &mut Supervisor, now: u64, svc: usize, generation: u64, health: bool, ok: bool) {
    sup.handle(
        at(now),
        Input::ProbeResult {
            svc: ServiceId(svc),
            generation: Generation(generation),
            health,
            ok,
        },
    );
}

fn tick(sup: &mut Supervisor, now: u64) -> Vec<Action> {
    sup.handle_timeout(at(now));
    run(sup, now)
}

#[test]
fn a_polled_readiness_probe_runs_until_it_succeeds_and_gates_dependents() {
    let app = ServiceSpec {
        depends_on: vec![Dependency {
            on: ServiceId(0),
            condition: Condition::Ready,
        }],
        ..service("app")
    };
    let mut sup = Supervisor::new(spec(vec![tcp_ready(service("db")), app]));
    sup.start(at(0));
    let acts = run(&mut sup, 0);
    assert_eq!(
        acts[0],
        Action::Spawn {
            svc: ServiceId(0),
            generation: Generation(1)
        }
    );
    assert_eq!(sup.poll_timeout(), Some(at(0)), "first attempt at once");
    assert_eq!(tick(&mut sup, 0), vec![probe(0, 1, false)]);
    assert_eq!(
        sup.poll_timeout(),
        Some(at(5000)),
        "only the readiness timeout while an attempt runs"
    );
    result(&mut sup, 40, 0, 1, false, false);
    assert_eq!(
        sup.poll_timeout(),
        Some(at(290)),
        "next attempt one interval later"
    );
    assert_eq!(tick(&mut sup, 290), vec![probe(0, 1, false)]);
    result(&mut sup, 300, 0, 1, false, true);
    let acts = run(&mut sup, 300);
    assert_eq!(
        acts,
        vec![Action::Spawn {
            svc: ServiceId(1),
            generation: Generation(1)
        }],
        "app starts when db is ready"
    );
    assert!(sup.service(ServiceId(0)).is_ready());
}

#[test]
fn not_ready_in_time_is_a_failed_start() {
    let mut sup = Supervisor::new(spec(vec![tcp_ready(service("db"))]));
    sup.start(at(0));
    run(&mut sup, 0);
    tick(&mut sup, 0);
    result(&mut sup, 10, 0, 1, false, false);
    let acts = tick(&mut sup, 5000);
    assert!(
        acts.contains(&Action::Kill {
            target: KillTarget::Group(Pid(110)),
            signal: Signal::TERM
        }),
        "{acts:?}"
    );
    sup.handle(
        at(5010),
        Input::ChildExited {
            pid: Pid(110),
            status: ExitStatus::Signaled(Signal::TERM),
        },
    );
    sup.handle(at(5010), Input::GroupEmpty { pgid: Pid(110) });
    run(&mut sup, 5010);
    assert_eq!(sup.service(ServiceId(0)).failures, 1);
    assert_eq!(sup.service(ServiceId(0)).state_name(), "backoff");
}

#[test]
fn a_notification_makes_it_ready_and_late_ones_are_ignored() {
    let mut db = tcp_ready(service("db"));
    db.ready.as_mut().unwrap().probe = Probe::SdNotify;
    let mut sup = Supervisor::new(spec(vec![db]));
    sup.start(at(0));
    run(&mut sup, 0);
    assert_eq!(tick(&mut sup, 0), vec![], "notifications are not polled");
    sup.handle(
        at(5),
        Input::ReadyNotify {
            svc: ServiceId(0),
            generation: Generation(7),
        },
    );
    assert!(
        !sup.service(ServiceId(0)).is_ready(),
        "a notification for another instance"
    );
    sup.handle(
        at(6),
        Input::ReadyNotify {
            svc: ServiceId(0),
            generation: Generation(1),
        },
    );
    assert!(sup.service(ServiceId(0)).is_ready());
    assert_eq!(sup.poll_timeout(), None);
}

#[test]
fn health_checks_restart_after_the_threshold_and_count_as_failed_starts() {
    let mut sup = Supervisor::new(spec(vec![healthy(ServiceSpec {
        start_secs: ms(0),
        ..service("web")
    })]));
    sup.start(at(0));
    run(&mut sup, 0);
    assert_eq!(
        sup.poll_timeout(),
        Some(at(1000)),
        "first check one interval after ready"
    );
    // Each check answers 10 ms after it starts; the next one is due an interval later.
    for (n, t) in [(1u32, 1000u64), (2, 2010)] {
        assert_eq!(sup.poll_timeout(), Some(at(t)));
        assert_eq!(tick(&mut sup, t), vec![probe(0, 1, true)]);
        result(&mut sup, t + 10, 0, 1, true, false);
        assert_eq!(sup.checks(ServiceId(0)).failures, n);
    }
    // A success resets the count.
    assert_eq!(tick(&mut sup, 3020), vec![probe(0, 1, true)]);
    result(&mut sup, 3030, 0, 1, true, true);
    assert_eq!(sup.checks(ServiceId(0)).failures, 0);
    for t in [4030u64, 5040, 6050] {
        assert_eq!(tick(&mut sup, t), vec![probe(0, 1, true)]);
        result(&mut sup, t + 10, 0, 1, true, false);
    }
    let acts = run(&mut sup, 6060);
    assert_eq!(
        acts,
        vec![Action::Kill {
            target: KillTarget::Group(Pid(110)),
            signal: Signal::TERM
        }]
    );
    sup.handle(
        at(6100),
        Input::ChildExited {
            pid: Pid(110),
            status: ExitStatus::Signaled(Signal::TERM),
        },
    );
    sup.handle(at(6100), Input::GroupEmpty { pgid: Pid(110) });
    run(&mut sup, 6100);
    assert_eq!(sup.service(ServiceId(0)).state_name(), "backoff");
    assert_eq!(
        sup.service(ServiceId(0)).failures,
        1,
        "counts toward max-restarts"
    );
}

#[test]
fn failures_in_the_start_period_do_not_count() {
    let mut web = healthy(ServiceSpec {
        start_secs: ms(0),
        ..service("web")
    });
    web.health.as_mut().unwrap().start_period = ms(2500);
    let mut sup = Supervisor::new(spec(vec![web]));
    sup.start(at(0));
    run(&mut sup, 0);
    for t in [1000u64, 2000] {
        tick(&mut sup, t);
        result(&mut sup, t, 0, 1, true, false);
    }
    assert_eq!(sup.checks(ServiceId(0)).failures, 0);
    tick(&mut sup, 3000);
    result(&mut sup, 3000, 0, 1, true, false);
    assert_eq!(sup.checks(ServiceId(0)).failures, 1);
}

#[test]
fn an_unhealthy_critical_service_that_gives_up_stops_the_container() {
    let web = healthy(ServiceSpec {
        start_secs: ms(0),
        critical: true,
        max_restarts: 0,
        restart: RestartPolicy::Never,
        ..service("web")
    });
    let mut sup = Supervisor::new(spec(vec![web]));
    sup.start(at(0));
    run(&mut sup, 0);
    for t in [1000u64, 2000, 3000] {
        tick(&mut sup, t);
        result(&mut sup, t, 0, 1, true, false);
    }
    run(&mut sup, 3000);
    sup.handle(
        at(3010),
        Input::ChildExited {
            pid: Pid(110),
            status: ExitStatus::Signaled(Signal::TERM),
        },
    );
    sup.handle(at(3010), Input::GroupEmpty { pgid: Pid(110) });
    run(&mut sup, 3010);
    assert!(
        matches!(
            sup.phase(),
            Phase::ShuttingDown { code: 143, .. } | Phase::Draining { code: 143, .. }
        ),
        "{:?}",
        sup.phase()
    );
}

#[test]
fn an_idle_service_with_health_checks_wakes_only_at_the_interval() {
    let mut sup = Supervisor::new(spec(vec![healthy(ServiceSpec {
        start_secs: ms(0),
        ..service("web")
    })]));
    sup.start(at(0));
    run(&mut sup, 0);
    let mut wakeups = 0;
    let mut now = 0;
    while now < 10_000 {
        let next = sup.poll_timeout().unwrap().since_origin().as_millis() as u64;
        now = next;
        let acts = tick(&mut sup, now);
        wakeups += 1;
        for a in acts {
            if let Action::Probe {
                svc,
                generation,
                health,
            } = a
            {
                sup.handle(
                    at(now),
                    Input::ProbeResult {
                        svc,
                        generation,
                        health,
                        ok: true,
                    },
                );
            }
        }
    }
    assert_eq!(wakeups, 10, "one wake-up per interval, nothing more");
}

#[test]
fn health_checks_start_after_start_secs_without_a_ready_rule() {
    // No readiness rule and no dependent: the end of start-secs must still wake tend, or
    // the first health check would never be scheduled.
    let mut sup = Supervisor::new(spec(vec![healthy(service("web"))]));
    sup.start(at(0));
    run(&mut sup, 0);
    assert_eq!(sup.poll_timeout(), Some(at(1000)), "start-secs (1s) ends");
    assert_eq!(tick(&mut sup, 1000), vec![]);
    assert!(sup.service(ServiceId(0)).is_ready());
    assert_eq!(
        sup.poll_timeout(),
        Some(at(2000)),
        "then the first check one interval later"
    );
    assert_eq!(tick(&mut sup, 2000), vec![probe(0, 1, true)]);
}

/// An attempt tend could not make (no descriptor left) is no verdict: nothing is counted,
/// the service stays healthy, and the next attempt comes one interval later.
#[test]
fn a_check_tend_could_not_run_counts_for_nothing() {
    let mut sup = Supervisor::new(spec(vec![healthy(service("web"))]));
    sup.start(at(0));
    run(&mut sup, 0);
    tick(&mut sup, 1000);
    assert_eq!(tick(&mut sup, 2000), vec![probe(0, 1, true)]);
    result(&mut sup, 2010, 0, 1, true, true);
    let mut now = 3010;
    for _ in 0..5 {
        assert_eq!(tick(&mut sup, now), vec![probe(0, 1, true)]);
        sup.handle(
            at(now + 1),
            Input::ProbeNotRun {
                svc: ServiceId(0),
                generation: Generation(1),
                health: true,
            },
        );
        assert_eq!(sup.checks(ServiceId(0)).failures, 0);
        assert_eq!(sup.checks(ServiceId(0)).healthy, Some(true));
        assert_eq!(sup.poll_timeout(), Some(at(now + 1 + 1000)));
        assert_eq!(run(&mut sup, now + 1), vec![]);
        now += 1001;
    }
}
