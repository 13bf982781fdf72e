//! Single-child (tini) mode.

use crate::core::*;
use std::ffi::OsString;
use std::time::Duration;

const SVC: ServiceId = ServiceId(0);
const G1: Generation = Generation(1);

fn at(ms: u64) -> Instant {
    Instant::from_origin(Duration::from_millis(ms))
}

fn spec(to_group: bool, main_exit: MainExit) -> Spec {
    Spec::single(
        vec![OsString::from("app"), OsString::from("--flag")],
        to_group,
        main_exit,
    )
}

/// All queued actions, without log notes (they are checked separately where they matter).
fn drain(sup: &mut Supervisor) -> Vec<Action> {
    std::iter::from_fn(|| sup.poll_action())
        .filter(|a| !matches!(a, Action::Log(_)))
        .collect()
}

fn drain_all(sup: &mut Supervisor) -> Vec<Action> {
    std::iter::from_fn(|| sup.poll_action()).collect()
}

/// A supervisor whose main child runs as pid 10.
fn running(to_group: bool, main_exit: MainExit) -> Supervisor {
    let mut sup = Supervisor::new(spec(to_group, main_exit));
    sup.start(at(0));
    assert_eq!(
        drain(&mut sup),
        vec![Action::Spawn {
            svc: SVC,
            generation: G1
        }]
    );
    sup.handle(
        at(1),
        Input::Spawned {
            svc: SVC,
            generation: G1,
            pid: Pid(10),
        },
    );
    assert_eq!(drain(&mut sup), vec![]);
    sup
}

fn exited(code: u8) -> Input {
    Input::ChildExited {
        pid: Pid(10),
        status: ExitStatus::Exited(code),
    }
}

#[test]
fn exit_code_of_the_child_becomes_tends() {
    for code in [0u8, 1, 2, 255] {
        let mut sup = running(false, MainExit::default());
        sup.handle(at(5), exited(code));
        assert_eq!(drain(&mut sup), vec![Action::Exit(code)]);
        assert_eq!(sup.phase(), Phase::Exited);
        assert_eq!(sup.poll_timeout(), None);
    }
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let mut sup = running(false, MainExit::default());
    sup.handle(
        at(5),
        Input::ChildExited {
            pid: Pid(10),
            status: ExitStatus::Signaled(Signal::KILL),
        },
    );
    assert_eq!(drain(&mut sup), vec![Action::Exit(137)]);
}

#[test]
fn remapped_codes_become_zero_and_others_do_not() {
    let mut remap = ExitCodeSet::default();
    remap.insert(143);
    remap.insert(3);
    let main_exit = MainExit {
        remap_to_zero: remap,
        stop_descendants: None,
    };
    let mut sup = running(false, main_exit);
    sup.handle(
        at(5),
        Input::ChildExited {
            pid: Pid(10),
            status: ExitStatus::Signaled(Signal::TERM),
        },
    );
    assert_eq!(drain(&mut sup), vec![Action::Exit(0)]);
    let mut sup = running(false, main_exit);
    sup.handle(at(5), exited(3));
    assert_eq!(drain(&mut sup), vec![Action::Exit(0)]);
    let mut sup = running(false, main_exit);
    sup.handle(at(5), exited(4));
    assert_eq!(drain(&mut sup), vec![Action::Exit(4)]);
}

#[test]
fn spawn_failures_exit_like_a_shell() {
    for (kind, code) in [
        (SpawnErrorKind::NotFound, 127),
        (SpawnErrorKind::NotExecutable, 126),
    ] {
        let mut sup = Supervisor::new(spec(false, MainExit::default()));
        sup.start(at(0));
        drain(&mut sup);
        sup.handle(
            at(0),
            Input::SpawnFailed {
                svc: SVC,
                generation: G1,
                kind,
                message: "x".into(),
            },
        );
        let all = drain_all(&mut sup);
        assert!(
            matches!(all[0], Action::Log(Note::SpawnFailed { .. })),
            "{all:?}"
        );
        assert_eq!(all.last(), Some(&Action::Exit(code)));
    }
}

#[test]
fn signals_go_to_the_child_or_its_group() {
    let mut sup = running(false, MainExit::default());
    for n in [1, 2, 3, 10, 12, 14, 15, 18, 20, 28, 34, 64] {
        let signal = Signal::from_number(n).unwrap();
        sup.handle(at(2), Input::Signal(signal));
        assert_eq!(
            drain(&mut sup),
            vec![Action::Kill {
                target: KillTarget::Process(Pid(10)),
                signal
            }]
        );
    }
    let mut sup = running(true, MainExit::default());
    sup.handle(at(2), Input::Signal(Signal::USR1));
    assert_eq!(
        drain(&mut sup),
        vec![Action::Kill {
            target: KillTarget::Group(Pid(10)),
            signal: Signal::USR1
        }]
    );
}

/// tini's rule: SIGTTIN and SIGTTOU sent to the init stop neither the child nor its group.
#[test]
fn terminal_stop_signals_are_not_forwarded() {
    for to_group in [false, true] {
        let mut sup = running(to_group, MainExit::default());
        for signal in [Signal::TTIN, Signal::TTOU] {
            sup.handle(at(2), Input::Signal(signal));
            assert_eq!(
                drain_all(&mut sup),
                vec![Action::Log(Note::SignalIgnored { signal })]
            );
        }
        assert_eq!(sup.phase(), Phase::Running);
    }
}

#[test]
fn sigchld_is_never_forwarded() {
    let mut sup = running(false, MainExit::default());
    sup.handle(at(2), Input::Signal(Signal::CHLD));
    assert_eq!(drain_all(&mut sup), vec![]);
}

#[test]
fn orphans_are_counted_and_do_not_end_the_main_child() {
    let mut sup = running(false, MainExit::default());
    for pid in 100..1100 {
        sup.handle(
            at(3),
            Input::ChildExited {
                pid: Pid(pid),
                status: ExitStatus::Exited(0),
            },
        );
    }
    assert_eq!(drain(&mut sup), vec![]);
    assert_eq!(sup.orphans_reaped(), 1000);
    assert_eq!(sup.phase(), Phase::Running);
    // The main child is still tracked and still gets signals.
    sup.handle(at(4), Input::Signal(Signal::TERM));
    assert_eq!(
        drain(&mut sup),
        vec![Action::Kill {
            target: KillTarget::Process(Pid(10)),
            signal: Signal::TERM
        }]
    );
}

#[test]
fn idle_supervisor_asks_for_no_wakeup() {
    let sup = running(false, MainExit::default());
    assert_eq!(sup.poll_timeout(), None);
}

fn draining(grace_ms: u64) -> Supervisor {
    let main_exit = MainExit {
        stop_descendants: Some(Duration::from_millis(grace_ms)),
        ..MainExit::default()
    };
    let mut sup = running(false, main_exit);
    sup.handle(at(1000), exited(7));
    assert_eq!(
        drain(&mut sup),
        vec![Action::Kill {
            target: KillTarget::Everyone,
            signal: Signal::TERM
        }]
    );
    assert_eq!(sup.poll_timeout(), Some(at(1000 + grace_ms)));
    sup
}

#[test]
fn stop_descendants_exits_once_everything_is_reaped() {
    let mut sup = draining(500);
    sup.handle(
        at(1100),
        Input::ChildExited {
            pid: Pid(11),
            status: ExitStatus::Signaled(Signal::TERM),
        },
    );
    assert_eq!(drain(&mut sup), vec![]);
    sup.handle(at(1100), Input::NoChildren);
    assert_eq!(drain(&mut sup), vec![Action::Exit(7)]);
}

#[test]
fn stop_descendants_kills_after_the_grace_and_gives_up_waiting_eventually() {
    let mut sup = draining(500);
    sup.handle_timeout(at(1499));
    assert_eq!(drain(&mut sup), vec![], "not before the deadline");
    sup.handle_timeout(at(1500));
    assert_eq!(
        drain(&mut sup),
        vec![Action::Kill {
            target: KillTarget::Everyone,
            signal: Signal::KILL
        }]
    );
    let reap_deadline = at(1500).after(spec::KILL_REAP_GRACE);
    assert_eq!(sup.poll_timeout(), Some(reap_deadline));
    sup.handle_timeout(reap_deadline);
    assert_eq!(drain(&mut sup), vec![Action::Exit(7)]);
}

#[test]
fn second_stop_signal_while_draining_escalates_to_kill() {
    let mut sup = draining(5000);
    sup.handle(at(1200), Input::Signal(Signal::TERM));
    assert_eq!(
        drain(&mut sup),
        vec![Action::Kill {
            target: KillTarget::Everyone,
            signal: Signal::KILL
        }]
    );
    sup.handle(at(1300), Input::Signal(Signal::TERM));
    assert_eq!(
        drain(&mut sup),
        vec![],
        "already killed: nothing more to send"
    );
    sup.handle(at(1300), Input::NoChildren);
    assert_eq!(drain(&mut sup), vec![Action::Exit(7)]);
}

#[test]
fn nothing_happens_after_exit() {
    let mut sup = running(false, MainExit::default());
    sup.handle(at(5), exited(0));
    drain(&mut sup);
    sup.handle(at(6), Input::Signal(Signal::TERM));
    sup.handle(at(6), Input::NoChildren);
    sup.handle_timeout(at(10_000));
    assert_eq!(drain_all(&mut sup), vec![]);
}

#[test]
fn notes_trace_a_whole_run() {
    let mut sup = Supervisor::new(spec(false, MainExit::default()));
    sup.start(at(0));
    sup.handle(
        at(1),
        Input::Spawned {
            svc: SVC,
            generation: G1,
            pid: Pid(10),
        },
    );
    sup.handle(
        at(2),
        Input::ChildExited {
            pid: Pid(33),
            status: ExitStatus::Exited(0),
        },
    );
    sup.handle(at(3), exited(1));
    let notes: Vec<String> = drain_all(&mut sup)
        .into_iter()
        .filter_map(|a| match a {
            Action::Log(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        notes,
        vec![
            "spawned 'app' with pid 10",
            "reaped zombie pid 33 (exit code 0)",
            "'app' (pid 10) ended: exit code 1",
        ]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Inputs a real shell could produce, in any order, including stale and duplicate ones.
    fn input() -> impl Strategy<Value = (u64, Input)> {
        let pid = (9..13i32).prop_map(Pid);
        let status = prop_oneof![
            any::<u8>().prop_map(ExitStatus::Exited),
            (1..=64i32).prop_map(|n| ExitStatus::Signaled(Signal::from_number(n).unwrap())),
        ];
        let inp = prop_oneof![
            (1..3u64, pid.clone()).prop_map(|(g, pid)| Input::Spawned {
                svc: SVC,
                generation: Generation(g),
                pid
            }),
            (1..3u64).prop_map(|g| Input::SpawnFailed {
                svc: SVC,
                generation: Generation(g),
                kind: SpawnErrorKind::NotFound,
                message: String::new()
            }),
            (pid, status).prop_map(|(pid, status)| Input::ChildExited { pid, status }),
            Just(Input::NoChildren),
            (1..=64i32).prop_map(|n| Input::Signal(Signal::from_number(n).unwrap())),
        ];
        (0..3000u64, inp)
    }

    proptest! {
        /// Whatever happens: at most one instance is spawned, `Exit` comes once and last,
        /// deadlines are honoured, and signals only go to the live child.
        #[test]
        fn invariants_hold(grace in prop::option::of(0..2000u64), inputs in prop::collection::vec(input(), 0..40)) {
            let main_exit = MainExit {
                stop_descendants: grace.map(Duration::from_millis),
                ..MainExit::default()
            };
            let mut sup = Supervisor::new(spec(false, main_exit));
            sup.start(at(0));
            let mut now = 0;
            let mut spawns = 0;
            let mut exits = 0;
            let mut live: Option<Pid> = None;
            let mut check = |sup: &mut Supervisor, live: &mut Option<Pid>| {
                for a in drain(sup) {
                    prop_assert_eq!(exits, 0, "an action after Exit: {:?}", a);
                    match a {
                        Action::Spawn { .. } => spawns += 1,
                        Action::Exit(_) => exits += 1,
                        Action::Kill { target: KillTarget::Process(p), .. } => {
                            prop_assert_eq!(Some(p), *live, "signal to a process that is not the child");
                        }
                        Action::Kill { .. } | Action::Log(_) | Action::Reply { .. } | Action::Probe { .. } | Action::ReadPidFile { .. } | Action::SpawnFinish { .. } | Action::MeasureMemory { .. } => {}
                    }
                }
                *live = sup.service(SVC).pid();
                prop_assert!(spawns <= 1, "the single child was spawned twice");
                Ok(())
            };
            check(&mut sup, &mut live)?;
            for (dt, inp) in inputs {
                now += dt;
                if let Some(deadline) = sup.poll_timeout()
                    && at(now) >= deadline {
                        sup.handle_timeout(at(now));
                        check(&mut sup, &mut live)?;
                    }
                sup.handle(at(now), inp);
                check(&mut sup, &mut live)?;
            }
            // Every drain ends by its deadlines: at most two timeouts from any state.
            for _ in 0..2 {
                if let Some(deadline) = sup.poll_timeout() {
                    prop_assert!(deadline >= at(now) || sup.phase() != Phase::Running);
                    sup.handle_timeout(deadline);
                    check(&mut sup, &mut live)?;
                }
            }
            prop_assert_eq!(sup.poll_timeout(), None);
            if sup.phase() == Phase::Exited {
                prop_assert_eq!(exits, 1);
            }
        }
    }
}
