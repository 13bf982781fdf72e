//! The services that `instances = N` makes, with a fake clock: each instance is a service of
//! its own (its crash restarts only it), a dependent of all instances waits for every one,
//! requests naming the base reach them all, and a reload that changes N touches only the
//! instances it adds or removes.

use super::common::{at, run, service, spawned, spec};
use crate::core::spec::ServiceSpec;
use crate::core::*;

/// `base-0` ... `base-(n-1)`, as the configuration makes them.
fn instances(base: &str, n: usize) -> Vec<ServiceSpec> {
    (0..n)
        .map(|i| ServiceSpec {
            instance_of: Some(base.to_string()),
            ..service(&format!("{base}-{i}"))
        })
        .collect()
}

/// `s`, waiting for `condition` of each service in `on`.
fn needs(mut s: ServiceSpec, on: &[usize], condition: Condition) -> ServiceSpec {
    s.depends_on = on
        .iter()
        .map(|&i| Dependency {
            on: ServiceId(i),
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

fn term(pgid: i32) -> Action {
    Action::Kill {
        target: KillTarget::Group(Pid(pgid)),
        signal: Signal::TERM,
    }
}

fn pids(sup: &Supervisor) -> Vec<Option<i32>> {
    sup.live_services()
        .map(|id| sup.service(id).pid().map(|p| p.0))
        .collect()
}

#[test]
fn each_instance_is_supervised_on_its_own_and_a_dependent_waits_for_all() {
    // 0..=2: worker-0 .. worker-2 (ready after start-secs, 1 s); 3: app needs every worker
    // ready.
    let mut services = instances("worker", 3);
    services.push(needs(service("app"), &[0, 1, 2], Condition::Ready));
    let mut sup = Supervisor::new(spec(services));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0, 1, 2], "all at once");

    // worker-1 crashes before it is ready: only it is restarted (after the backoff's 100 ms).
    let acts = gone(&mut sup, 500, 111, ExitStatus::Exited(1));
    assert_eq!(
        acts,
        vec![term(111)],
        "what is left of its own group is stopped; nothing is sent to the other instances"
    );
    assert_eq!(pids(&sup), vec![Some(101), None, Some(121), None]);
    assert_eq!(sup.poll_timeout(), Some(at(600)));
    sup.handle_timeout(at(600));
    assert_eq!(spawned(&run(&mut sup, 600)), vec![1]);

    // worker-0 and worker-2 are ready at 1 s, worker-1 not yet: app waits.
    sup.handle_timeout(at(1000));
    assert_eq!(spawned(&run(&mut sup, 1000)), Vec::<usize>::new());
    assert_eq!(sup.service(ServiceId(3)).state_name(), "waiting");
    assert_eq!(sup.poll_timeout(), Some(at(1600)), "worker-1's readiness");
    sup.handle_timeout(at(1600));
    assert_eq!(
        spawned(&run(&mut sup, 1600)),
        vec![3],
        "app starts once the last instance is ready"
    );

    // Later, worker-2 dies: it alone restarts; app and the others keep their processes.
    let acts = gone(&mut sup, 5000, 121, ExitStatus::Signaled(Signal::KILL));
    assert_eq!(acts, vec![term(121)]);
    sup.handle_timeout(at(5100));
    assert_eq!(spawned(&run(&mut sup, 5100)), vec![2]);
    assert_eq!(pids(&sup), vec![Some(101), Some(112), Some(122), Some(131)]);
}

#[test]
fn a_name_reaches_the_service_of_that_name_else_every_instance() {
    let mut services = instances("worker", 3);
    // A service may be called like an instance by itself: it is found by its own name only.
    services.push(service("a-1"));
    services.push(service("a"));
    let sup = Supervisor::new(spec(services));
    let ids = |name: &str| -> Vec<usize> { sup.resolve(name).iter().map(|s| s.0).collect() };
    assert_eq!(ids("worker"), vec![0, 1, 2]);
    assert_eq!(ids("worker-1"), vec![1]);
    assert_eq!(ids("a"), vec![4]);
    assert_eq!(ids("a-1"), vec![3]);
    assert_eq!(ids("work"), Vec::<usize>::new());
}

#[test]
fn a_critical_instance_ending_for_good_ends_everything() {
    let mut services = instances("worker", 2);
    for s in &mut services {
        s.critical = true;
        s.restart = RestartPolicy::Never;
    }
    let mut sup = Supervisor::new(spec(services));
    sup.start(at(0));
    run(&mut sup, 0);
    let acts = gone(&mut sup, 2000, 111, ExitStatus::Exited(3));
    assert_eq!(
        acts,
        vec![term(111), term(101)],
        "its own leftovers, then the other instance, are stopped"
    );
    assert!(matches!(sup.phase(), Phase::ShuttingDown { code: 3, .. }));
}

#[test]
fn a_reload_from_four_instances_to_two_stops_the_last_two_only() {
    // 0..=3: worker-0 .. worker-3; 4: app needs every worker started.
    let mut services = instances("worker", 4);
    services.push(needs(service("app"), &[0, 1, 2, 3], Condition::Started));
    let mut sup = Supervisor::new(spec(services));
    sup.start(at(0));
    assert_eq!(spawned(&run(&mut sup, 0)), vec![0, 1, 2, 3, 4]);

    let mut fewer = instances("worker", 2);
    fewer.push(needs(service("app"), &[0, 1], Condition::Started));
    let report = sup.reload(at(10_000), spec(fewer)).unwrap();
    assert_eq!(report.removed, vec!["worker-2", "worker-3"]);
    assert_eq!(report.unchanged, vec!["worker-0", "worker-1", "app"]);
    assert!(report.changed.is_empty() && report.added.is_empty());
    assert_eq!(
        run(&mut sup, 10_000),
        vec![term(121), term(131)],
        "app depends on worker as before: it keeps running"
    );
    gone(&mut sup, 10_100, 121, ExitStatus::Signaled(Signal::TERM));
    gone(&mut sup, 10_100, 131, ExitStatus::Signaled(Signal::TERM));
    assert_eq!(pids(&sup), vec![Some(101), Some(111), Some(141)]);
    assert_eq!(sup.resolve("worker"), vec![ServiceId(0), ServiceId(1)]);
    // From its next start, app waits for the two that are left.
    let app = sup.service_spec(ServiceId(4)).unwrap();
    assert_eq!(
        app.depends_on.iter().map(|d| d.on.0).collect::<Vec<_>>(),
        vec![0, 1]
    );

    // Back to three: worker-2 comes back in its old slot, nothing else moves.
    let mut more = instances("worker", 3);
    more.push(needs(service("app"), &[0, 1, 2], Condition::Started));
    let report = sup.reload(at(20_000), spec(more)).unwrap();
    assert_eq!(report.added, vec!["worker-2"]);
    assert_eq!(report.unchanged, vec!["worker-0", "worker-1", "app"]);
    assert_eq!(spawned(&run(&mut sup, 20_000)), vec![2]);
    assert_eq!(
        pids(&sup),
        vec![Some(101), Some(111), Some(121), Some(141)],
        "in the order of the spec"
    );
    // A dependency on another service is a change, as ever: app restarts.
    let mut other = instances("worker", 3);
    other.push(service("db"));
    other.push(needs(service("app"), &[0, 1, 2, 3], Condition::Started));
    let report = sup.reload(at(30_000), spec(other)).unwrap();
    assert_eq!(report.changed, vec!["app"]);
    assert_eq!(report.added, vec!["db"]);
}
