//! The supervisor: routes inputs to services, decides what tend does as a whole.
//!
//! Sans-IO: `start`, `handle` and `handle_timeout` take the current time and queue actions;
//! `poll_action` hands them out in order; `poll_timeout` says when to call `handle_timeout`;
//! `awaited_groups` names the process groups whose emptiness the shell should report.

use super::exit::Pid;
use super::io::{Action, Input, KillTarget, Note, ShutdownReason};
use super::service::{Effect, Event, Outcome, Service, ServiceState};
use super::signal::Signal;
use super::spec::{KILL_REAP_GRACE, ServiceId, SignalRouting, Spec};
use super::time::Instant;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// In supervisor mode, once every service is down, what is left (adopted orphans, daemons
/// that escaped their group) gets SIGTERM and at most this long before SIGKILL.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Running,
    /// Services are being stopped; tend will exit with `code`.
    ShuttingDown {
        code: u8,
        deadline: Instant,
    },
    /// Services are down (or the main child is gone); leftovers get SIGTERM, then SIGKILL at
    /// `deadline`, before tend exits with `code`.
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
    /// Live main processes of services. Any other pid the reaper reports is an orphan.
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

    /// Starts every service, in the order of the spec.
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
            Input::GroupEmpty { pgid } => {
                let waiting = (0..self.services.len())
                    .find(|&i| self.services[i].awaited_group() == Some(pgid));
                if let Some(i) = waiting {
                    self.step(ServiceId(i), Event::GroupEmpty { pgid }, now);
                }
            }
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
        for i in 0..self.services.len() {
            if self.phase == Phase::Exited {
                return;
            }
            if self.services[i].deadline().is_some_and(|d| d <= now) {
                self.step(ServiceId(i), Event::Timeout, now);
            }
        }
        match self.phase {
            Phase::ShuttingDown { deadline, .. } if now >= deadline => self.escalate(now),
            Phase::Draining {
                code,
                deadline,
                killed,
            } if now >= deadline => {
                if killed {
                    self.log(Note::ExitingWithUnreaped);
                    self.exit(code);
                } else {
                    self.kill_leftovers(code, now);
                }
            }
            Phase::Running
            | Phase::ShuttingDown { .. }
            | Phase::Draining { .. }
            | Phase::Exited => {}
        }
    }

    /// When `handle_timeout` must be called next; `None` means only inputs can wake tend.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::ShuttingDown { deadline, .. } | Phase::Draining { deadline, .. } => {
                Some(deadline)
            }
            Phase::Running => None,
            Phase::Exited => return None,
        };
        self.services
            .iter()
            .filter_map(Service::deadline)
            .chain(phase)
            .min()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Process groups whose main process is gone and whose last member tend waits for. The
    /// shell answers with `Input::GroupEmpty` for each one that has no process left.
    pub fn awaited_groups(&self) -> impl Iterator<Item = Pid> + '_ {
        self.services.iter().filter_map(Service::awaited_group)
    }

    fn on_signal(&mut self, signal: Signal, now: Instant) {
        if signal == Signal::CHLD {
            return; // The shell reaps on SIGCHLD; it is never forwarded.
        }
        match (self.spec.signals, self.phase) {
            (_, Phase::Exited) => {}
            (SignalRouting::ForwardToMain { to_group }, Phase::Running) => {
                match self.services[0].pid() {
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
                }
            }
            (SignalRouting::Supervise { shutdown }, Phase::Running)
                if shutdown.contains(signal) =>
            {
                self.begin_shutdown(ShutdownReason::Signal(signal), 0, now);
            }
            (SignalRouting::Supervise { shutdown }, Phase::ShuttingDown { .. })
                if shutdown.contains(signal) =>
            {
                self.escalate(now);
            }
            (SignalRouting::ForwardToMain { .. }, Phase::ShuttingDown { .. }) => {}
            // A second "stop" while leftovers get their grace period: do not wait.
            (
                _,
                Phase::Draining {
                    code,
                    killed: false,
                    ..
                },
            ) if self.is_stop_signal(signal) => {
                self.kill_leftovers(code, now);
            }
            (SignalRouting::Supervise { .. }, Phase::Running | Phase::ShuttingDown { .. })
            | (_, Phase::Draining { .. }) => self.log(Note::SignalIgnored { signal }),
        }
    }

    fn is_stop_signal(&self, signal: Signal) -> bool {
        match self.spec.signals {
            SignalRouting::ForwardToMain { .. } => signal == Signal::TERM || signal == Signal::INT,
            SignalRouting::Supervise { shutdown } => shutdown.contains(signal),
        }
    }

    fn step(&mut self, svc: ServiceId, event: Event, now: Instant) {
        let effects = self.services[svc.0].step(&self.spec.services[svc.0], event, now);
        for effect in effects {
            let name = || self.spec.services[svc.0].name.clone();
            match effect {
                Effect::Spawn(generation) => {
                    self.actions.push_back(Action::Spawn { svc, generation })
                }
                Effect::Track(pid) => {
                    self.pids.insert(pid, svc);
                    let name = name();
                    self.log(Note::Spawned { name, pid });
                }
                Effect::Untrack(pid) => {
                    self.pids.remove(&pid);
                }
                Effect::SignalGroup { pgid, signal } => {
                    self.actions.push_back(Action::Kill {
                        target: KillTarget::Group(pgid),
                        signal,
                    });
                }
                Effect::StopTimedOut => {
                    let name = name();
                    self.log(Note::StopTimedOut { name });
                }
                Effect::GaveUpWaiting => {
                    let name = name();
                    self.log(Note::GaveUpWaiting { name });
                }
                Effect::Restarting { delay, failures } => {
                    let name = name();
                    self.log(Note::Restarting {
                        name,
                        delay,
                        failures,
                    });
                }
                Effect::GaveUp { failures } => {
                    let name = name();
                    self.log(Note::GaveUp { name, failures });
                }
                Effect::Ended { outcome, success } => self.on_ended(svc, outcome, success, now),
            }
        }
        if let Phase::ShuttingDown { code, .. } = self.phase {
            if self.services.iter().all(Service::is_down) {
                self.drain(code, now);
            }
        }
    }

    fn on_ended(&mut self, svc: ServiceId, outcome: Outcome, success: bool, now: Instant) {
        let spec = &self.spec.services[svc.0];
        let name = spec.name.clone();
        let critical = spec.critical;
        match self.spec.signals {
            SignalRouting::ForwardToMain { .. } => {
                if !critical || self.phase != Phase::Running {
                    return;
                }
                let mut code = outcome.code();
                if self.spec.main_exit.remap_to_zero.contains(code) {
                    code = 0;
                }
                self.drain(code, now);
            }
            SignalRouting::Supervise { .. } => {
                let mut code = outcome.code();
                if !success && code == 0 {
                    code = 1; // a failure must not look like success to the orchestrator
                }
                if self.phase != Phase::Running {
                    return;
                }
                self.log(Note::Ended {
                    name: name.clone(),
                    success,
                    code,
                });
                if critical {
                    self.begin_shutdown(ShutdownReason::Critical { name, code }, code, now);
                } else if self
                    .services
                    .iter()
                    .all(|s| matches!(s.state, ServiceState::Exited { .. }))
                {
                    self.begin_shutdown(ShutdownReason::AllDone, 0, now);
                }
            }
        }
    }

    fn begin_shutdown(&mut self, reason: ShutdownReason, code: u8, now: Instant) {
        self.log(Note::ShutdownStarted { reason });
        self.phase = Phase::ShuttingDown {
            code,
            deadline: now.after(self.spec.shutdown_timeout),
        };
        // No dependencies yet: every service stops at once.
        for i in 0..self.services.len() {
            self.step(ServiceId(i), Event::Stop, now);
        }
        if let Phase::ShuttingDown { code, .. } = self.phase {
            if self.services.iter().all(Service::is_down) {
                self.drain(code, now);
            }
        }
    }

    /// SIGKILL to every service's group and to everything else, now.
    fn escalate(&mut self, now: Instant) {
        let code = match self.phase {
            Phase::ShuttingDown { code, .. } | Phase::Draining { code, .. } => code,
            Phase::Running | Phase::Exited => return,
        };
        self.log(Note::ShutdownEscalated);
        self.phase = Phase::Draining {
            code,
            deadline: now.after(KILL_REAP_GRACE),
            killed: true,
        };
        for i in 0..self.services.len() {
            self.step(ServiceId(i), Event::Kill, now);
        }
        self.actions.push_back(Action::Kill {
            target: KillTarget::Everyone,
            signal: Signal::KILL,
        });
    }

    /// Every service is down: deal with what is left, then exit with `code`.
    fn drain(&mut self, code: u8, now: Instant) {
        let grace = match (self.spec.signals, self.phase) {
            (SignalRouting::ForwardToMain { .. }, _) => self.spec.main_exit.stop_descendants,
            (SignalRouting::Supervise { .. }, Phase::ShuttingDown { deadline, .. }) => {
                Some(LEFTOVER_GRACE.min(deadline.since(now)))
            }
            (SignalRouting::Supervise { .. }, _) => Some(LEFTOVER_GRACE),
        };
        match grace {
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
