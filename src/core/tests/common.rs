//! Helpers shared by the supervisor-mode tests.

use crate::core::spec::ServiceSpec;
use crate::core::*;
use std::ffi::OsString;
use std::time::Duration;

/// The fake clock: `ms` milliseconds after the origin.
pub fn at(ms: u64) -> Instant {
    Instant::from_origin(Duration::from_millis(ms))
}

/// A service with every default, running a program named like it.
pub fn service(name: &str) -> ServiceSpec {
    ServiceSpec::new(
        name,
        Launch::command(vec![OsString::from(name)], SessionMode::NewSession),
    )
}

/// Supervisor mode with SIGTERM/SIGINT as shutdown signals and a 9 s budget.
pub fn spec(services: Vec<ServiceSpec>) -> Spec {
    Spec {
        services,
        signals: SignalRouting::Supervise {
            shutdown: ExitSignals::default(),
        },
        main_exit: MainExit::default(),
        shutdown_timeout: Duration::from_secs(9),
        timezone: jiff::tz::TimeZone::UTC,
    }
}

/// Runs the supervisor like a shell at fake time `now`: every spawn succeeds, with the pid
/// `pid_of` gives it; the other actions are returned, without log notes.
pub fn run_spawning(
    sup: &mut Supervisor,
    now: u64,
    pid_of: impl Fn(ServiceId, Generation) -> Pid,
) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(a) = sup.poll_action() {
        match a {
            Action::Spawn { svc, generation } => {
                out.push(Action::Spawn { svc, generation });
                let pid = pid_of(svc, generation);
                sup.handle(
                    at(now),
                    Input::Spawned {
                        svc,
                        generation,
                        pid,
                    },
                );
            }
            Action::Log(_) => {}
            other => out.push(other),
        }
    }
    out
}

/// `run_spawning` with pid 100 + service index * 10 + generation for every spawn.
pub fn run(sup: &mut Supervisor, now: u64) -> Vec<Action> {
    run_spawning(sup, now, |svc, generation| {
        Pid(100 + svc.0 as i32 * 10 + generation.0 as i32)
    })
}

/// The services `actions` spawn, in order.
pub fn spawned(actions: &[Action]) -> Vec<usize> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { svc, .. } => Some(svc.0),
            _ => None,
        })
        .collect()
}
