//! One service's lifecycle, as a single `match (state, event)` with no wildcard arm: adding a
//! state or an event does not compile until every pair has been decided.

use super::exit::{ExitStatus, Pid};
use super::io::{Gen, SpawnErrorKind};
use super::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Not started yet.
    Idle,
    /// `Spawn` was asked for; the shell has not answered.
    Starting { generation: Gen },
    Running {
        generation: Gen,
        pid: Pid,
        since: Instant,
    },
    /// Ended for good: it will not run again.
    Ended { outcome: Outcome },
}

/// How a service's last instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(ExitStatus),
    SpawnFailed(SpawnErrorKind),
}

impl Outcome {
    /// The exit code tend reports for it: the process's code, 128+N, or 126/127.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Exited(status) => status.code(),
            Outcome::SpawnFailed(kind) => kind.exit_code(),
        }
    }
}

/// What happens to one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Start,
    Spawned {
        generation: Gen,
        pid: Pid,
    },
    SpawnFailed {
        generation: Gen,
        kind: SpawnErrorKind,
    },
    /// Its main process (looked up by pid) was reaped.
    Exited {
        pid: Pid,
        status: ExitStatus,
    },
}

/// What the service asks of the supervisor as a consequence of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Spawn(Gen),
    /// A process now belongs to this service.
    Track(Pid),
    /// The process no longer does.
    Untrack(Pid),
    Ended(Outcome),
}

#[derive(Clone, Debug)]
pub struct Service {
    pub state: ServiceState,
    last_gen: Gen,
}

impl Default for Service {
    fn default() -> Self {
        Service {
            state: ServiceState::Idle,
            last_gen: Gen(0),
        }
    }
}

impl Service {
    /// Applies one event and returns what must follow from it.
    pub fn step(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        use Event as E;
        use ServiceState as S;
        let mut effects = Vec::new();
        let next = match (&self.state, event) {
            (S::Idle, E::Start) => {
                self.last_gen = Gen(self.last_gen.0 + 1);
                effects.push(Effect::Spawn(self.last_gen));
                S::Starting {
                    generation: self.last_gen,
                }
            }
            // Events about instances that do not exist (any more) change nothing.
            (S::Idle, E::Spawned { .. } | E::SpawnFailed { .. } | E::Exited { .. }) => {
                return effects;
            }

            (S::Starting { .. }, E::Start) => return effects,
            (S::Starting { generation }, E::Spawned { generation: g, pid }) if *generation == g => {
                effects.push(Effect::Track(pid));
                S::Running {
                    generation: g,
                    pid,
                    since: now,
                }
            }
            (
                S::Starting { generation },
                E::SpawnFailed {
                    generation: g,
                    kind,
                },
            ) if *generation == g => {
                let outcome = Outcome::SpawnFailed(kind);
                effects.push(Effect::Ended(outcome));
                S::Ended { outcome }
            }
            (S::Starting { .. }, E::Spawned { .. } | E::SpawnFailed { .. } | E::Exited { .. }) => {
                return effects;
            }

            (S::Running { .. }, E::Start) => return effects,
            (S::Running { pid, .. }, E::Exited { pid: p, status }) if *pid == p => {
                let outcome = Outcome::Exited(status);
                effects.push(Effect::Untrack(p));
                effects.push(Effect::Ended(outcome));
                S::Ended { outcome }
            }
            (S::Running { .. }, E::Spawned { .. } | E::SpawnFailed { .. } | E::Exited { .. }) => {
                return effects;
            }

            // Single-child mode never restarts; restart policies extend these arms.
            (
                S::Ended { .. },
                E::Start | E::Spawned { .. } | E::SpawnFailed { .. } | E::Exited { .. },
            ) => {
                return effects;
            }
        };
        self.state = next;
        effects
    }

    /// The pid of the live instance, if there is one.
    pub fn pid(&self) -> Option<Pid> {
        match self.state {
            ServiceState::Running { pid, .. } => Some(pid),
            ServiceState::Idle | ServiceState::Starting { .. } | ServiceState::Ended { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::ZERO;

    #[test]
    fn start_spawn_run_exit() {
        let mut s = Service::default();
        assert_eq!(s.step(Event::Start, T0), vec![Effect::Spawn(Gen(1))]);
        assert_eq!(
            s.step(Event::Start, T0),
            vec![],
            "a second start while starting is a no-op"
        );
        assert_eq!(
            s.step(
                Event::Spawned {
                    generation: Gen(1),
                    pid: Pid(7)
                },
                T0
            ),
            vec![Effect::Track(Pid(7))]
        );
        assert_eq!(s.pid(), Some(Pid(7)));
        let st = ExitStatus::Exited(3);
        assert_eq!(
            s.step(
                Event::Exited {
                    pid: Pid(8),
                    status: st
                },
                T0
            ),
            vec![],
            "not its pid"
        );
        assert_eq!(
            s.step(
                Event::Exited {
                    pid: Pid(7),
                    status: st
                },
                T0
            ),
            vec![Effect::Untrack(Pid(7)), Effect::Ended(Outcome::Exited(st))]
        );
        assert_eq!(s.pid(), None);
        assert_eq!(s.step(Event::Start, T0), vec![], "ended for good");
    }

    #[test]
    fn stale_generation_is_ignored() {
        let mut s = Service::default();
        s.step(Event::Start, T0);
        assert_eq!(
            s.step(
                Event::Spawned {
                    generation: Gen(9),
                    pid: Pid(7)
                },
                T0
            ),
            vec![]
        );
        assert_eq!(s.state, ServiceState::Starting { generation: Gen(1) });
        assert_eq!(
            s.step(
                Event::SpawnFailed {
                    generation: Gen(9),
                    kind: SpawnErrorKind::NotFound
                },
                T0
            ),
            vec![]
        );
    }

    #[test]
    fn spawn_failure_ends_with_shell_codes() {
        let mut s = Service::default();
        s.step(Event::Start, T0);
        let eff = s.step(
            Event::SpawnFailed {
                generation: Gen(1),
                kind: SpawnErrorKind::NotFound,
            },
            T0,
        );
        assert_eq!(
            eff,
            vec![Effect::Ended(Outcome::SpawnFailed(
                SpawnErrorKind::NotFound
            ))]
        );
        assert_eq!(Outcome::SpawnFailed(SpawnErrorKind::NotFound).code(), 127);
        assert_eq!(
            Outcome::SpawnFailed(SpawnErrorKind::NotExecutable).code(),
            126
        );
    }
}
