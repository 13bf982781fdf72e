//! The keys people coming from supervisord, runit and s6 use every day: `autostart`,
//! `finish` and shutdown tasks (`run-on = "shutdown"`); with a fake clock.

use super::common::{at, run_spawning, service, spec};
use crate::core::spec::ServiceSpec;
use crate::core::*;

/// Spawns succeed with pid 100 + service index * 10 + generation; other actions are
/// returned, without log notes.
fn run(sup: &mut Supervisor, now: u64) -> Vec<Action> {
    run_spawning(sup, now, |svc, generation| {
        Pid(100 + svc.0 as i32 * 10 + generation.0 as i32)
    })
}

fn spawned(actions: &[Action]) -> Vec<usize> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { svc, .. } => Some(svc.0),
            _ => None,
        })
        .collect()
}

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
