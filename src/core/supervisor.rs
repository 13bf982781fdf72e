//! The supervisor: routes inputs to services, decides what tend does as a whole.
//!
//! Sans-IO: `start`, `handle` and `handle_timeout` take the current time and queue actions;
//! `poll_action` hands them out in order; `poll_timeout` says when to call `handle_timeout`.

use super::exit::Pid;
use super::io::{Action, Input, KillTarget, Note};
use super::service::{Effect, Event, Outcome, Service};
use super::signal::Signal;
use super::spec::{KILL_REAP_GRACE, ServiceId, SignalRouting, Spec};
use super::time::Instant;
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// The main child is gone; its leftovers are being stopped before tend exits with `code`.
    Draining {
        code: u8,
        deadline: Instant,
        killed: bool,
    },
    /// `Exit` has been queued; nothing else will be.
    Exited,
}

pub struct Supervisor {
    spec: Spec,
    services: Vec<Service>,
    /// Live service processes. Any other pid the reaper reports is an adopted orphan.
    pids: BTreeMap<Pid, ServiceId>,
    phase: Phase,
    actions: VecDeque<Action>,
    orphans_reaped: u64,
}

impl Supervisor {
    pub fn new(spec: Spec) -> Supervisor {
        let services = spec.services.iter().map(|_| Service::default()).collect();
        Supervisor {
            spec,
            services,
            pids: BTreeMap::new(),
            phase: Phase::Running,
            actions: VecDeque::new(),
            orphans_reaped: 0,
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.0]
    }

    pub fn orphans_reaped(&self) -> u64 {
        self.orphans_reaped
    }

    /// Starts every service.
    pub fn start(&mut self, now: Instant) {
        for i in 0..self.services.len() {
            self.step(ServiceId(i), Event::Start, now);
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        if self.phase == Phase::Exited {
            return;
        }
        match input {
            Input::Spawned {
                svc,
                generation,
                pid,
            } => self.step(svc, Event::Spawned { generation, pid }, now),
            Input::SpawnFailed {
                svc,
                generation,
                kind,
                message,
            } => {
                let name = self.spec.services[svc.0].name.clone();
                self.log(Note::SpawnFailed { name, message });
                self.step(svc, Event::SpawnFailed { generation, kind }, now);
            }
            Input::ChildExited { pid, status } => match self.pids.get(&pid).copied() {
                Some(svc) => {
                    let name = self.spec.services[svc.0].name.clone();
                    self.log(Note::ServiceExited { name, pid, status });
                    self.step(svc, Event::Exited { pid, status }, now);
                }
                None => {
                    self.orphans_reaped += 1;
                    self.log(Note::OrphanReaped { pid, status });
                }
            },
            Input::NoChildren => {
                if let Phase::Draining { code, .. } = self.phase {
                    self.exit(code);
                }
            }
            Input::Signal(signal) => self.on_signal(signal, now),
        }
    }

    /// Call when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Draining {
            code,
            deadline,
            killed,
        } = self.phase
        {
            if now < deadline {
                return;
            }
            if killed {
                self.log(Note::ExitingWithUnreaped);
                self.exit(code);
            } else {
                self.kill_leftovers(code, now);
            }
        }
    }

    /// When `handle_timeout` must be called next; `None` means only inputs can wake tend.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Draining { deadline, .. } => Some(deadline),
            Phase::Running | Phase::Exited => None,
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn on_signal(&mut self, signal: Signal, now: Instant) {
        if signal == Signal::CHLD {
            return; // The shell reaps on SIGCHLD; it is never forwarded.
        }
        match self.phase {
            Phase::Running => match self.spec.signals {
                SignalRouting::ForwardToMain { to_group } => match self.services[0].pid() {
                    Some(pid) => {
                        let target = if to_group {
                            KillTarget::Group(pid)
                        } else {
                            KillTarget::Process(pid)
                        };
                        self.actions.push_back(Action::Kill { target, signal });
                        self.log(Note::Forwarded { signal, target });
                    }
                    None => self.log(Note::SignalDropped { signal }),
                },
            },
            // A second "stop" while the leftovers get their grace period: do not wait.
            Phase::Draining {
                code,
                killed: false,
                ..
            } if signal == Signal::TERM || signal == Signal::INT => {
                self.kill_leftovers(code, now);
            }
            Phase::Draining { .. } => self.log(Note::SignalDropped { signal }),
            Phase::Exited => {}
        }
    }

    fn step(&mut self, svc: ServiceId, event: Event, now: Instant) {
        for effect in self.services[svc.0].step(event, now) {
            match effect {
                Effect::Spawn(generation) => {
                    self.actions.push_back(Action::Spawn { svc, generation })
                }
                Effect::Track(pid) => {
                    self.pids.insert(pid, svc);
                    let name = self.spec.services[svc.0].name.clone();
                    self.log(Note::Spawned { name, pid });
                }
                Effect::Untrack(pid) => {
                    self.pids.remove(&pid);
                }
                Effect::Ended(outcome) => self.on_ended(svc, outcome, now),
            }
        }
    }

    fn on_ended(&mut self, svc: ServiceId, outcome: Outcome, now: Instant) {
        if !self.spec.services[svc.0].critical || self.phase != Phase::Running {
            return;
        }
        let mut code = outcome.code();
        if self.spec.main_exit.remap_to_zero.contains(code) {
            code = 0;
        }
        match self.spec.main_exit.stop_descendants {
            Some(grace) => {
                self.log(Note::StoppingDescendants { grace });
                self.actions.push_back(Action::Kill {
                    target: KillTarget::Everyone,
                    signal: Signal::TERM,
                });
                self.phase = Phase::Draining {
                    code,
                    deadline: now.after(grace),
                    killed: false,
                };
            }
            None => self.exit(code),
        }
    }

    /// SIGKILL to everything left; give the reaper a bounded time to see them go.
    fn kill_leftovers(&mut self, code: u8, now: Instant) {
        self.log(Note::KillingDescendants);
        self.actions.push_back(Action::Kill {
            target: KillTarget::Everyone,
            signal: Signal::KILL,
        });
        self.phase = Phase::Draining {
            code,
            deadline: now.after(KILL_REAP_GRACE),
            killed: true,
        };
    }

    fn exit(&mut self, code: u8) {
        self.log(Note::Exiting { code });
        self.actions.push_back(Action::Exit(code));
        self.phase = Phase::Exited;
    }

    fn log(&mut self, note: Note) {
        self.actions.push_back(Action::Log(note));
    }
}
