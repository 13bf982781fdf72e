//! Scheduled tasks (`schedule`) with a fake monotonic clock and a fake wall clock: runs at
//! their times, skipped runs, `tend start` and `tend stop`, the days the clocks change in a
//! real zone, and the wall clock being set.

use super::common::{at, service, spawned, spec};
use super::cron::{ts, zone};
use crate::config::cron;
use crate::core::spec::{Finish, ServiceSpec};
use crate::core::supervisor::Due;
use crate::core::*;
use jiff::Timestamp;
use std::time::Duration;

fn task(name: &str, schedule: &str) -> ServiceSpec {
    ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::Never,
        start_secs: Duration::ZERO,
        schedule: Some(cron::parse(schedule).unwrap()),
        ..service(name)
    }
}

/// Pid of service `svc`'s instance `generation`.
fn pid(svc: usize, generation: u64) -> Pid {
    Pid(100 + svc as i32 * 10 + generation as i32)
}

/// What the shell would do at fake time `now`: every spawn succeeds with `pid`; the other
/// actions are returned (log notes included).
fn run(sup: &mut Supervisor, now: u64) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = sup.poll_action() {
        if let Action::Spawn { svc, generation } = a {
            let pid = pid(svc.0, generation.0);
            sup.handle(
                at(now),
                Input::Spawned {
                    svc,
                    generation,
                    pid,
                },
            );
        }
        out.push(a);
    }
    out
}

fn notes(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(note) => Some(note.to_string()),
            _ => None,
        })
        .collect()
}

/// Its process exits with `code` and its group is empty.
fn exits(sup: &mut Supervisor, now: u64, pid: Pid, code: u8) -> Vec<Action> {
    let status = ExitStatus::Exited(code);
    sup.handle(at(now), Input::ChildExited { pid, status });
    sup.handle(at(now), Input::GroupEmpty { pgid: pid });
    run(sup, now)
}

/// The wall clock reads `wall` at fake time `now`.
fn wall(sup: &mut Supervisor, now: u64, wall: &str, set: bool) -> Vec<Action> {
    sup.handle(
        at(now),
        Input::WallClock {
            wall: ts(wall),
            set,
        },
    );
    run(sup, now)
}

fn state(sup: &Supervisor, svc: usize) -> &'static str {
    sup.service(ServiceId(svc)).state_name()
}

fn next_wall(sup: &Supervisor) -> Option<String> {
    sup.poll_wall_timeout().map(|t: Timestamp| t.to_string())
}

#[test]
fn every_runs_at_its_interval_and_not_at_start() {
    let mut sup = Supervisor::new(spec(vec![service("web"), task("tick", "@every 1s")]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), [0], "only web starts");
    assert_eq!(state(&sup, 1), "scheduled");
    assert_eq!(sup.next_run(ServiceId(1)), Some(Due::Mono(at(1000))));
    assert_eq!(
        sup.poll_timeout(),
        Some(at(1000)),
        "one wake-up, at its time"
    );
    assert_eq!(
        sup.poll_wall_timeout(),
        None,
        "no wall-clock timer for @every"
    );

    sup.handle_timeout(at(1000));
    assert_eq!(spawned(&run(&mut sup, 1000)), [1]);
    assert_eq!(state(&sup, 1), "running");
    let actions = exits(&mut sup, 1200, pid(1, 1), 0);
    assert_eq!(state(&sup, 1), "scheduled");
    assert_eq!(
        notes(&actions).last().unwrap(),
        "'tick' has run (code 0); next run in 800ms"
    );
    assert_eq!(sup.last_success(ServiceId(1)), Some(at(1200)));
    // The next time counts from the last one due, not from the run's end.
    assert_eq!(sup.poll_timeout(), Some(at(2000)));
    // Its runs are no restarts.
    assert_eq!(sup.service(ServiceId(1)).restarts, 0);
    // A wake-up that is late passes over the times gone: one run, then on the beat.
    sup.handle_timeout(at(3500));
    assert_eq!(spawned(&run(&mut sup, 3500)), [1]);
    assert_eq!(sup.next_run(ServiceId(1)), Some(Due::Mono(at(4000))));
}

#[test]
fn a_run_still_going_when_the_next_is_due_makes_that_one_skipped_and_said() {
    let mut sup = Supervisor::new(spec(vec![task("slow", "@every 1s")]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.handle_timeout(at(1000));
    assert_eq!(spawned(&run(&mut sup, 1000)), [0]);
    sup.handle_timeout(at(2000));
    let actions = run(&mut sup, 2000);
    assert!(spawned(&actions).is_empty());
    assert_eq!(
        notes(&actions),
        [
            "'slow' is due but still running (pid 101) from its last run: this run is skipped; next run in 1s"
        ]
    );
    assert_eq!(sup.poll_timeout(), Some(at(3000)));
    exits(&mut sup, 2500, pid(0, 1), 0);
    sup.handle_timeout(at(3000));
    assert_eq!(spawned(&run(&mut sup, 3000)), [0], "the next time runs");
}

#[test]
fn tend_start_runs_it_at_once_and_tend_stop_pauses_its_schedule() {
    let mut sup = Supervisor::new(spec(vec![task("report", "@every 10s")]));
    sup.start(at(0));
    run(&mut sup, 0);
    let svc = ServiceId(0);
    sup.control(at(3000), Some(RequestId(1)), ControlOp::Start, &[svc])
        .unwrap();
    let actions = run(&mut sup, 3000);
    assert_eq!(spawned(&actions), [0]);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply { id: RequestId(1), results } if results[0].ok && results[0].message == "running (pid 101)"
    )));
    exits(&mut sup, 3100, pid(0, 1), 0);
    // Its times stay as they were.
    assert_eq!(sup.poll_timeout(), Some(at(10_000)));

    // Stopped: its times pass without a wake-up.
    sup.control(at(4000), Some(RequestId(2)), ControlOp::Stop, &[svc])
        .unwrap();
    let actions = run(&mut sup, 4000);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Reply { id: RequestId(2), results } if results[0].ok && results[0].message == "stopped"
    )));
    assert_eq!(state(&sup, 0), "stopped");
    assert_eq!(sup.poll_timeout(), None);
    assert_eq!(sup.next_run(svc), None);
    // Started again: it runs now, then every 10 s from now.
    sup.control(at(25_000), None, ControlOp::Start, &[svc])
        .unwrap();
    assert_eq!(spawned(&run(&mut sup, 25_000)), [0]);
    assert_eq!(sup.poll_timeout(), Some(at(35_000)));
}

#[test]
fn a_run_that_cannot_start_answers_tend_start_and_waits_for_the_next_time() {
    let mut sup = Supervisor::new(spec(vec![task("report", "@every 10s")]));
    sup.start(at(0));
    run(&mut sup, 0);
    let svc = ServiceId(0);
    sup.control(at(1000), Some(RequestId(7)), ControlOp::Start, &[svc])
        .unwrap();
    let Some(Action::Spawn { generation, .. }) = sup.poll_action() else {
        panic!("no spawn");
    };
    let failed = Input::SpawnFailed {
        svc,
        generation,
        kind: SpawnErrorKind::NotFound,
        message: "report: No such file or directory".into(),
    };
    sup.handle(at(1000), failed);
    let actions = run(&mut sup, 1000);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Reply { id: RequestId(7), results } if !results[0].ok && results[0].message == "ran: could not be started (exit 127)"
        )),
        "{actions:?}"
    );
    assert_eq!(state(&sup, 0), "scheduled");
    assert_eq!(sup.poll_timeout(), Some(at(10_000)));
    assert_eq!(sup.phase(), Phase::Running, "not critical: tend carries on");
}

#[test]
fn scheduled_tasks_keep_tend_up_when_everything_else_is_done() {
    let migrate = ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::OnFailure,
        start_secs: Duration::ZERO,
        ..service("migrate")
    };
    let mut sup = Supervisor::new(spec(vec![migrate, task("cleanup", "@hourly")]));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), [0]);
    exits(&mut sup, 500, pid(0, 1), 0);
    assert_eq!(state(&sup, 0), "exited");
    assert_eq!(sup.phase(), Phase::Running);
}

#[test]
fn a_critical_task_ends_tend_when_a_run_fails_not_when_it_succeeds() {
    let check = ServiceSpec {
        critical: true,
        ..task("check", "@every 5s")
    };
    let mut sup = Supervisor::new(spec(vec![service("app"), check]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.handle_timeout(at(5000));
    run(&mut sup, 5000);
    exits(&mut sup, 5100, pid(1, 1), 0);
    assert_eq!(sup.phase(), Phase::Running);
    sup.handle_timeout(at(10_000));
    run(&mut sup, 10_000);
    let actions = exits(&mut sup, 10_100, pid(1, 2), 4);
    assert!(
        matches!(sup.phase(), Phase::ShuttingDown { code: 4, .. }),
        "{:?}",
        sup.phase()
    );
    assert_eq!(
        notes(&actions)[1..],
        [
            "'check' has failed for good (code 4)",
            "shutting down: critical service 'check' ended with code 4"
        ]
    );
    assert_eq!(
        sup.next_run(ServiceId(1)),
        None,
        "no run starts during the shutdown"
    );
    assert_eq!(
        sup.poll_timeout(),
        Some(at(10_100 + 5000)),
        "app's stop-timeout"
    );
}

#[test]
fn finish_runs_after_every_run() {
    let t = ServiceSpec {
        finish: Some(Finish {
            argv: vec!["after".into()],
            timeout: Duration::from_secs(5),
        }),
        ..task("t", "@every 1s")
    };
    let mut sup = Supervisor::new(spec(vec![t]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.handle_timeout(at(1000));
    run(&mut sup, 1000);
    let actions = exits(&mut sup, 1100, pid(0, 1), 0);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::SpawnFinish {
            status: ExitStatus::Exited(0),
            ..
        }
    )));
    assert_eq!(state(&sup, 0), "finishing");
}

/// Europe/Berlin, 2026-03-29: 02:30 does not exist (02:00 CET becomes 03:00 CEST at
/// 01:00 UTC): the daily 02:30 run comes at the change.
#[test]
fn dst_gap_in_berlin_runs_right_after_the_change() {
    let mut s = spec(vec![task("backup", "30 2 * * *")]);
    s.timezone = zone("Europe/Berlin");
    let mut sup = Supervisor::new(s);
    sup.start(at(0));
    run(&mut sup, 0);
    assert_eq!(
        next_wall(&sup),
        None,
        "a cron rule waits for the wall clock"
    );
    assert_eq!(sup.poll_timeout(), None);
    wall(&mut sup, 0, "2026-03-28T12:00:00Z", false);
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-03-29T01:00:00Z"));
    assert_eq!(sup.poll_timeout(), None, "no monotonic wake-up for it");
    // 13 hours later the wall-clock timer fires.
    let actions = wall(&mut sup, 46_800_000, "2026-03-29T01:00:00.002Z", false);
    assert_eq!(spawned(&actions), [0]);
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-03-30T00:30:00Z"));
    let actions = exits(&mut sup, 46_801_000, pid(0, 1), 0);
    assert_eq!(
        notes(&actions).last().unwrap(),
        "'backup' has run (code 0); next run at 2026-03-30 02:30:00 CEST"
    );
}

/// Europe/Berlin, 2026-10-25: 02:00 to 02:59 happen twice (03:00 CEST becomes 02:00 CET at
/// 01:00 UTC). An hourly task runs at 02:00 CEST and next at 03:00 CET, not at 02:00 CET.
#[test]
fn dst_fold_in_berlin_runs_a_repeated_time_once() {
    let mut s = spec(vec![task("hourly", "0 * * * *")]);
    s.timezone = zone("Europe/Berlin");
    let mut sup = Supervisor::new(s);
    sup.start(at(0));
    wall(&mut sup, 0, "2026-10-24T23:30:00Z", false);
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-10-25T00:00:00Z"));
    let actions = wall(&mut sup, 1_800_000, "2026-10-25T00:00:00Z", false);
    assert_eq!(spawned(&actions), [0]);
    exits(&mut sup, 1_810_000, pid(0, 1), 0);
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-10-25T02:00:00Z"));
    let actions = wall(&mut sup, 9_000_000, "2026-10-25T02:00:00Z", false);
    assert_eq!(spawned(&actions), [0]);
}

/// A six-field rule due every second: each reading at its time makes one run.
#[test]
fn a_per_second_rule_runs_every_second() {
    let mut sup = Supervisor::new(spec(vec![task("tick", "* * * * * *")]));
    sup.start(at(0));
    wall(&mut sup, 0, "2026-01-01T00:00:00.500Z", false);
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-01-01T00:00:01Z"));
    for k in 1..=3u64 {
        let now = k * 1000 - 500;
        let actions = wall(&mut sup, now, &format!("2026-01-01T00:00:0{k}Z"), false);
        assert_eq!(spawned(&actions), [0], "second {k}");
        exits(&mut sup, now + 100, pid(0, k), 0);
        assert_eq!(
            next_wall(&sup),
            Some(format!("2026-01-01T00:00:0{}Z", k + 1))
        );
    }
}

#[test]
fn the_wall_clock_set_forward_over_a_time_runs_it_at_once_unless_far_past() {
    let mut sup = Supervisor::new(spec(vec![task("h", "0 * * * *")]));
    sup.start(at(0));
    wall(&mut sup, 0, "2026-05-01T11:50:00Z", false);
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-05-01T12:00:00Z"));
    // Forward 40 minutes, past 12:00: that run is made now, the next one at 13:00.
    let actions = wall(&mut sup, 60_000, "2026-05-01T12:31:00Z", true);
    assert_eq!(spawned(&actions), [0]);
    assert_eq!(
        notes(&actions).first().unwrap(),
        "the wall clock was set forward by 2400s; schedules follow it"
    );
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-05-01T13:00:00Z"));
    exits(&mut sup, 61_000, pid(0, 1), 0);
    // Forward a day (a VM suspended): the run it passed is not made up.
    let actions = wall(&mut sup, 62_000, "2026-05-02T16:20:00Z", true);
    assert!(spawned(&actions).is_empty());
    assert!(notes(&actions).contains(
        &"'h' was due at 2026-05-01 13:00:00 UTC, which the wall clock was set past by more than 3 hours: that run is not made"
            .to_string()
    ));
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-05-02T17:00:00Z"));
    // Forward, but not up to the next time: nothing changes.
    let actions = wall(&mut sup, 63_000, "2026-05-02T16:50:00Z", true);
    assert!(spawned(&actions).is_empty());
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-05-02T17:00:00Z"));
}

#[test]
fn the_wall_clock_set_back_does_not_run_a_time_again_unless_far_back() {
    let mut sup = Supervisor::new(spec(vec![task("h", "0 * * * *")]));
    sup.start(at(0));
    wall(&mut sup, 0, "2026-05-01T11:59:00Z", false);
    assert_eq!(
        spawned(&wall(&mut sup, 60_000, "2026-05-01T12:00:00Z", false)),
        [0]
    );
    exits(&mut sup, 61_000, pid(0, 1), 0);
    // Back 40 minutes: 12:00 comes again, and is not run again; 13:00 is next.
    let actions = wall(&mut sup, 120_000, "2026-05-01T11:21:00Z", true);
    assert!(spawned(&actions).is_empty());
    assert_eq!(
        notes(&actions),
        ["the wall clock was set back by 2400s; schedules follow it"]
    );
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-05-01T13:00:00Z"));
    // Back a whole day (the clock was wrong): its times are new, 12:00 yesterday runs.
    wall(&mut sup, 130_000, "2026-04-30T11:10:00Z", true);
    assert_eq!(next_wall(&sup).as_deref(), Some("2026-04-30T12:00:00Z"));
}

#[test]
fn every_does_not_follow_the_wall_clock() {
    let mut sup = Supervisor::new(spec(vec![task("tick", "@every 30s")]));
    sup.start(at(0));
    wall(&mut sup, 0, "2026-05-01T12:00:00Z", false);
    assert_eq!(sup.poll_timeout(), Some(at(30_000)));
    let actions = wall(&mut sup, 10_000, "2026-05-01T15:00:00Z", true);
    assert!(spawned(&actions).is_empty());
    assert_eq!(sup.poll_timeout(), Some(at(30_000)));
    assert_eq!(sup.poll_wall_timeout(), None);
}

#[test]
fn a_reload_plans_an_added_task_and_starts_a_changed_one_over() {
    let mut sup = Supervisor::new(spec(vec![service("web")]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.reload(
        at(1000),
        spec(vec![service("web"), task("tick", "@every 5s")]),
    )
    .unwrap();
    assert!(spawned(&run(&mut sup, 1000)).is_empty());
    assert_eq!(state(&sup, 1), "scheduled");
    assert_eq!(sup.poll_timeout(), Some(at(6000)));
    let report = sup
        .reload(
            at(2000),
            spec(vec![service("web"), task("tick", "@every 1m")]),
        )
        .unwrap();
    assert_eq!(report.changed, ["tick"]);
    assert!(spawned(&run(&mut sup, 2000)).is_empty());
    assert_eq!(sup.poll_timeout(), Some(at(62_000)));
    // Its schedule removed: it is an ordinary one-shot task, started at once.
    let plain = ServiceSpec {
        schedule: None,
        ..task("tick", "@every 1m")
    };
    sup.reload(at(3000), spec(vec![service("web"), plain]))
        .unwrap();
    assert_eq!(spawned(&run(&mut sup, 3000)), [1]);
}

#[test]
fn a_task_due_while_its_dependency_is_not_up_waits_for_it() {
    let mut t = task("report", "@every 10s");
    t.depends_on.push(Dependency {
        on: ServiceId(0),
        condition: Condition::Started,
    });
    let db = ServiceSpec {
        autostart: false,
        ..service("db")
    };
    let mut sup = Supervisor::new(spec(vec![db, t]));
    sup.start(at(0));
    run(&mut sup, 0);
    sup.handle_timeout(at(10_000));
    assert!(spawned(&run(&mut sup, 10_000)).is_empty());
    assert_eq!(state(&sup, 1), "waiting");
    sup.control(at(12_000), None, ControlOp::Start, &[ServiceId(0)])
        .unwrap();
    assert_eq!(spawned(&run(&mut sup, 12_000)), [0, 1]);
}
