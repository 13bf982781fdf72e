//! `memory-limit` with a fake clock: a timer only while a limited service runs, the shell
//! asked to measure, and a service over its limit restarted like one that failed its health
//! check (graceful stop, backoff, give-up after `max-restarts`). And the OOM killer: a
//! SIGKILL tend did not send, in the batch where the kernel's count of OOM kills rose.

use super::common::{at, run_spawning, service, spec};
use crate::core::spec::{MEMORY_CHECK_EVERY, ServiceSpec};
use crate::core::*;
use std::time::Duration;

const MIB: u64 = 1 << 20;

fn limited(name: &str, limit_mib: u64) -> ServiceSpec {
    ServiceSpec {
        memory_limit: Some(limit_mib * MIB),
        start_secs: Duration::ZERO,
        ..service(name)
    }
}

/// Spawns succeed with pid 100 + generation*10 + index; every other action is returned in
/// order, with the notes this file is about (over the limit, gave up) and no other.
fn run(sup: &mut Supervisor, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = sup.poll_action() {
        match a {
            Action::Spawn { svc, generation } => {
                let pid = Pid(100 + generation.0 as i32 * 10 + svc.0 as i32);
                sup.handle(
                    at(now),
                    Input::Spawned {
                        svc,
                        generation,
                        pid,
                    },
                );
                out.push(Action::Spawn { svc, generation });
            }
            Action::Log(note)
                if !matches!(note, Note::OverMemoryLimit { .. } | Note::GaveUp { .. }) => {}
            other => out.push(other),
        }
    }
    out
}

fn measure(services: &[(usize, u64)]) -> Action {
    Action::MeasureMemory {
        services: services
            .iter()
            .map(|&(s, g)| (ServiceId(s), Generation(g)))
            .collect(),
    }
}

fn usage(sup: &mut Supervisor, now: u64, svc: usize, generation: u64, bytes: u64) {
    sup.handle(
        at(now),
        Input::MemoryUsage {
            svc: ServiceId(svc),
            generation: Generation(generation),
            bytes,
        },
    );
}

/// The main process ends of `signal` and its group empties, at `now`.
fn killed(sup: &mut Supervisor, now: u64, pid: i32, signal: Signal) {
    let status = ExitStatus::Signaled(signal);
    sup.handle(
        at(now),
        Input::ChildExited {
            pid: Pid(pid),
            status,
        },
    );
    sup.handle(at(now), Input::GroupEmpty { pgid: Pid(pid) });
}

fn five_s() -> u64 {
    MEMORY_CHECK_EVERY.as_millis() as u64
}

#[test]
fn without_a_memory_limit_there_is_no_timer() {
    let mut sup = Supervisor::new(spec(vec![service("a"), service("b")]));
    sup.start(at(0));
    run_spawning(&mut sup, 0, |svc, _| Pid(100 + svc.0 as i32));
    assert_eq!(sup.poll_timeout(), None, "an idle tend never wakes");
}

#[test]
fn the_running_limited_services_are_measured_every_5_s_and_only_while_one_runs() {
    let mut sup = Supervisor::new(spec(vec![
        limited("a", 100),
        service("b"),
        limited("c", 50),
    ]));
    sup.start(at(0));
    run(&mut sup, 0);
    assert_eq!(sup.poll_timeout(), Some(at(five_s())));
    sup.handle_timeout(at(five_s()));
    assert_eq!(run(&mut sup, five_s()), vec![measure(&[(0, 1), (2, 1)])]);
    // Under their limits: nothing happens, and the next check is one interval later.
    usage(&mut sup, five_s() + 2, 0, 1, 100 * MIB);
    usage(&mut sup, five_s() + 2, 2, 1, MIB);
    assert_eq!(run(&mut sup, five_s() + 2), vec![]);
    assert_eq!(sup.poll_timeout(), Some(at(2 * five_s())));

    // Once neither limited service runs, the timer is gone: b alone never wakes tend.
    let ids = [ServiceId(0), ServiceId(2)];
    sup.control(at(6000), None, ControlOp::Stop, &ids).unwrap();
    run(&mut sup, 6000);
    killed(&mut sup, 6010, 110, Signal::TERM);
    killed(&mut sup, 6010, 112, Signal::TERM);
    run(&mut sup, 6010);
    assert_eq!(sup.service(ServiceId(0)).state_name(), "stopped");
    assert_eq!(sup.poll_timeout(), None);

    // Started again at 7 s: the first check comes 5 s later.
    sup.control(at(7000), None, ControlOp::Start, &[ServiceId(2)])
        .unwrap();
    run(&mut sup, 7000);
    assert_eq!(sup.poll_timeout(), Some(at(7000 + five_s())));
    sup.handle_timeout(at(7000 + five_s()));
    assert_eq!(run(&mut sup, 7000 + five_s()), vec![measure(&[(2, 2)])]);
}

/// Over its limit, a service is stopped gracefully (its stop signal, SIGKILL only after its
/// stop-timeout), counted as a failed start, restarted after the backoff, and given up on
/// after `max-restarts` in a row, like a service that fails its health check.
#[test]
fn over_the_limit_it_restarts_gracefully_with_backoff_and_gives_up_after_max_restarts() {
    let worker = ServiceSpec {
        max_restarts: 2,
        stop_signal: Signal::QUIT,
        stop_timeout: Duration::from_secs(3),
        ..limited("worker", 512)
    };
    let mut sup = Supervisor::new(spec(vec![worker]));
    sup.start(at(0));
    run(&mut sup, 0);
    let over = 530 * MIB;
    let mut delays = Vec::new();
    for generation in 1..=3u64 {
        let pid = 100 + generation as i32 * 10;
        let check = sup.poll_timeout().unwrap();
        let mut now = check.since_origin().as_millis() as u64;
        sup.handle_timeout(check);
        assert_eq!(run(&mut sup, now), vec![measure(&[(0, generation)])]);
        usage(&mut sup, now + 1, 0, generation, over);
        let note = Note::OverMemoryLimit {
            name: "worker".into(),
            used: over,
            limit: 512 * MIB,
        };
        assert_eq!(
            note.to_string(),
            "'worker' uses 530 MiB, over its memory-limit of 512 MiB: restarting"
        );
        assert_eq!(note.level(), Level::Error);
        let quit = Action::Kill {
            target: KillTarget::Group(Pid(pid)),
            signal: Signal::QUIT,
        };
        assert_eq!(run(&mut sup, now + 1), vec![Action::Log(note), quit]);
        assert_eq!(sup.service(ServiceId(0)).state_name(), "stopping");
        // It ignores QUIT: SIGKILL once its stop-timeout has passed, not before.
        assert_eq!(sup.poll_timeout(), Some(at(now + 1 + 3000)));
        sup.handle_timeout(at(now + 1 + 3000));
        let kill = Action::Kill {
            target: KillTarget::Group(Pid(pid)),
            signal: Signal::KILL,
        };
        assert!(run(&mut sup, now + 3001).contains(&kill));
        killed(&mut sup, now + 3002, pid, Signal::KILL);
        let after = run(&mut sup, now + 3002);
        now += 3002;
        match sup.service(ServiceId(0)).state {
            ServiceState::Backoff { until } => {
                assert_eq!(sup.service(ServiceId(0)).failures, generation as u32);
                delays.push(until.since(at(now)));
                // The restart after the backoff.
                sup.handle_timeout(until);
                now = until.since_origin().as_millis() as u64;
                assert_eq!(
                    run(&mut sup, now),
                    vec![Action::Spawn {
                        svc: ServiceId(0),
                        generation: Generation(generation + 1)
                    }]
                );
            }
            ServiceState::Failed { .. } => {
                assert_eq!(
                    generation, 3,
                    "gave up after max-restarts (2) failed starts"
                );
                assert!(
                    after.contains(&Action::Log(Note::GaveUp {
                        name: "worker".into(),
                        failures: 3
                    })),
                    "{after:?}"
                );
            }
            ref other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        delays,
        [Duration::from_millis(100), Duration::from_millis(200)],
        "the usual backoff"
    );
    assert_eq!(sup.service(ServiceId(0)).state_name(), "failed");
    assert_eq!(sup.poll_timeout(), None, "nothing left to measure");
}

#[test]
fn a_measurement_of_an_instance_that_is_gone_or_under_the_limit_changes_nothing() {
    let mut sup = Supervisor::new(spec(vec![limited("a", 10)]));
    sup.start(at(0));
    run(&mut sup, 0);
    // Restarted on request: generation 2 runs; a late answer about generation 1 is moot.
    sup.control(at(100), None, ControlOp::Restart, &[ServiceId(0)])
        .unwrap();
    run(&mut sup, 100);
    killed(&mut sup, 110, 110, Signal::TERM);
    run(&mut sup, 110);
    assert_eq!(sup.running_generation(ServiceId(0)), Some(Generation(2)));
    usage(&mut sup, 120, 0, 1, 1 << 40);
    assert_eq!(run(&mut sup, 120), vec![]);
    // Exactly at the limit is not over it.
    usage(&mut sup, 130, 0, 2, 10 * MIB);
    assert_eq!(run(&mut sup, 130), vec![]);
    assert_eq!(sup.service(ServiceId(0)).state_name(), "running");
}

#[test]
fn no_check_once_the_shutdown_has_begun() {
    let slow = ServiceSpec {
        stop_timeout: Duration::from_secs(8),
        ..limited("a", 10)
    };
    let mut sup = Supervisor::new(spec(vec![slow]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.handle(at(4000), Input::Signal(Signal::TERM));
    run(&mut sup, 4000);
    // The next wake-up is the stop-timeout of the service, not a memory check at 5 s.
    sup.handle_timeout(at(five_s()));
    assert!(
        !run(&mut sup, five_s())
            .iter()
            .any(|a| matches!(a, Action::MeasureMemory { .. })),
    );
    usage(&mut sup, five_s(), 0, 1, 1 << 40);
    assert!(
        !run(&mut sup, five_s())
            .iter()
            .any(|a| matches!(a, Action::Log(Note::OverMemoryLimit { .. })))
    );
}

fn oom_count(sup: &mut Supervisor, now: u64, count: u64) {
    sup.handle(at(now), Input::OomKills { count });
}

fn exit(sup: &mut Supervisor, now: u64, pid: i32, status: ExitStatus) -> Vec<Note> {
    sup.handle(
        at(now),
        Input::ChildExited {
            pid: Pid(pid),
            status,
        },
    );
    let notes = std::iter::from_fn(|| sup.poll_action())
        .filter_map(|a| match a {
            Action::Log(n @ (Note::OomKilled { .. } | Note::ServiceExited { .. })) => Some(n),
            _ => None,
        })
        .collect();
    sup.handle(at(now), Input::GroupEmpty { pgid: Pid(pid) });
    notes
}

const KILL: ExitStatus = ExitStatus::Signaled(Signal::KILL);

fn oom_note(name: &str, pid: i32) -> Vec<Note> {
    vec![Note::OomKilled {
        name: name.into(),
        pid: Pid(pid),
    }]
}

fn exit_note(name: &str, pid: i32, status: ExitStatus) -> Vec<Note> {
    vec![Note::ServiceExited {
        name: name.into(),
        pid: Pid(pid),
        status,
    }]
}

/// Two services (pids 110 and 111), the OOM-kill count at 5 when tend started.
fn two() -> Supervisor {
    let fast = |name: &str| ServiceSpec {
        start_secs: Duration::ZERO,
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(10),
            factor: 1.0,
        },
        ..service(name)
    };
    let mut sup = Supervisor::new(spec(vec![fast("a"), fast("b")]));
    oom_count(&mut sup, 0, 5);
    sup.start(at(0));
    run(&mut sup, 0);
    sup
}

#[test]
fn a_sigkill_tend_did_not_send_while_the_count_rose_is_the_oom_killers() {
    let mut sup = two();
    // The shell reads the count before the SIGKILLed exit, in the same batch.
    oom_count(&mut sup, 1000, 6);
    assert_eq!(exit(&mut sup, 1000, 110, KILL), oom_note("a", 110));
    let a = sup.service(ServiceId(0));
    assert_eq!(
        (a.last_exit, a.last_exit_oom, a.oom_kills),
        (Some(KILL), true, 1)
    );
    assert_eq!(
        Note::OomKilled {
            name: "a".into(),
            pid: Pid(110)
        }
        .to_string(),
        "'a' (pid 110) was killed by the kernel's OOM killer (out of memory)"
    );
    // It is restarted like any crash; the next end, a plain exit, is no OOM kill.
    sup.handle_timeout(at(1010));
    run(&mut sup, 1010);
    let fail = ExitStatus::Exited(1);
    assert_eq!(exit(&mut sup, 2000, 120, fail), exit_note("a", 120, fail));
    let a = sup.service(ServiceId(0));
    assert_eq!((a.last_exit_oom, a.oom_kills), (false, 1));
}

#[test]
fn no_rise_an_earlier_rise_or_another_signal_is_not_the_oom_killer() {
    let mut sup = two();
    // The count did not move: someone else's kill -9.
    oom_count(&mut sup, 1000, 5);
    assert_eq!(exit(&mut sup, 1000, 110, KILL), exit_note("a", 110, KILL));
    // A rise read in an earlier batch (a worker the main process reaped itself) explains
    // nothing later.
    oom_count(&mut sup, 1500, 6);
    assert_eq!(exit(&mut sup, 1600, 111, KILL), exit_note("b", 111, KILL));
    // A rise, but the process died of another signal.
    sup.handle_timeout(at(1700));
    run(&mut sup, 1700);
    let segv = ExitStatus::Signaled(Signal::SEGV);
    oom_count(&mut sup, 1800, 7);
    assert_eq!(exit(&mut sup, 1800, 120, segv), exit_note("a", 120, segv));
    assert_eq!(sup.service(ServiceId(0)).oom_kills, 0);
    assert_eq!(sup.service(ServiceId(1)).oom_kills, 0);
}

#[test]
fn each_kill_the_count_rose_by_explains_one_exit_of_the_batch() {
    let mut sup = two();
    oom_count(&mut sup, 1000, 6); // one kill...
    assert_eq!(exit(&mut sup, 1000, 110, KILL), oom_note("a", 110));
    assert_eq!(exit(&mut sup, 1000, 111, KILL), exit_note("b", 111, KILL));
    sup.handle_timeout(at(1010));
    run(&mut sup, 1010);
    oom_count(&mut sup, 2000, 8); // ... two kills
    assert_eq!(exit(&mut sup, 2000, 120, KILL), oom_note("a", 120));
    assert_eq!(exit(&mut sup, 2000, 121, KILL), oom_note("b", 121));
    assert_eq!(sup.service(ServiceId(0)).oom_kills, 2);
    assert_eq!(sup.service(ServiceId(1)).oom_kills, 1);
}

#[test]
fn tends_own_sigkill_is_not_the_oom_killer_even_when_the_count_rose() {
    let stubborn = ServiceSpec {
        stop_timeout: Duration::from_secs(2),
        ..service("a")
    };
    let quick = ServiceSpec {
        stop_signal: Signal::KILL,
        ..service("b")
    };
    let mut sup = Supervisor::new(spec(vec![stubborn, quick, service("c")]));
    oom_count(&mut sup, 0, 5);
    sup.start(at(0));
    run(&mut sup, 0);
    // a ignores its stop signal and gets SIGKILL at its stop-timeout; b's stop signal is
    // KILL; c gets `tend signal KILL`. The count rises meanwhile: none was the OOM killer.
    let ab = [ServiceId(0), ServiceId(1)];
    sup.control(at(100), None, ControlOp::Stop, &ab).unwrap();
    run(&mut sup, 100);
    sup.handle_timeout(at(2100));
    run(&mut sup, 2100);
    sup.signal_services(Signal::KILL, &[ServiceId(2)]);
    run(&mut sup, 2100);
    oom_count(&mut sup, 2200, 9);
    assert_eq!(exit(&mut sup, 2200, 110, KILL), exit_note("a", 110, KILL));
    assert_eq!(exit(&mut sup, 2200, 111, KILL), exit_note("b", 111, KILL));
    assert_eq!(exit(&mut sup, 2200, 112, KILL), exit_note("c", 112, KILL));
    // c's next instance was not signalled: its SIGKILL with a rise is the OOM killer's.
    let c = sup.service(ServiceId(2));
    let ServiceState::Backoff { until } = c.state else {
        panic!("{:?}", c.state)
    };
    sup.handle_timeout(until);
    let now = until.since_origin().as_millis() as u64;
    run(&mut sup, now);
    let pid = sup.service(ServiceId(2)).pid().unwrap().0;
    oom_count(&mut sup, now + 10, 10);
    assert_eq!(exit(&mut sup, now + 10, pid, KILL), oom_note("c", pid));
}

#[test]
fn without_a_count_no_exit_is_put_down_to_the_oom_killer() {
    let mut sup = Supervisor::new(spec(vec![service("a")]));
    sup.start(at(0));
    run(&mut sup, 0);
    assert_eq!(exit(&mut sup, 1000, 110, KILL), exit_note("a", 110, KILL));
    // The first reading is where the count starts, not a rise.
    let mut sup = Supervisor::new(spec(vec![service("a")]));
    sup.start(at(0));
    run(&mut sup, 0);
    oom_count(&mut sup, 1000, 3);
    assert_eq!(exit(&mut sup, 1000, 110, KILL), exit_note("a", 110, KILL));
}
