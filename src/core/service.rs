//! One service's lifecycle, as a single `match (state, event)` with no wildcard arm: adding a
//! state or an event does not compile until every pair has been decided.

use super::exit::{ExitStatus, Pid};
use super::io::{Generation, SpawnErrorKind};
use super::signal::Signal;
use super::spec::{KILL_REAP_GRACE, RestartPolicy, ServiceId, ServiceSpec};
use super::time::Instant;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// Not started yet.
    Idle,
    /// `Spawn` was asked for; the shell has not answered. `stop` records a stop request that
    /// arrived meanwhile, carried out as soon as the pid is known.
    Starting { generation: Generation, stop: bool },
    Running {
        generation: Generation,
        pid: Pid,
        since: Instant,
        /// When it counts as ready (it has stayed up `start-secs`); None once it is.
        ready_at: Option<Instant>,
    },
    /// The process group led by `pgid` is being stopped; `after` says why and what comes
    /// next. `status` is the main process's, once reaped.
    Stopping {
        generation: Generation,
        /// The main process: the process group's leader, except for a followed daemon
        /// (`pid-file`) that does not lead its group.
        main: Pid,
        pgid: Pid,
        main_alive: bool,
        status: Option<ExitStatus>,
        since: Instant,
        deadline: Instant,
        killed: bool,
        after: AfterStop,
    },
    /// The instance is gone (its end was `status`, after running for `ran`) and its
    /// `finish` command runs (`pid`, once the shell has started it). What was decided for
    /// after the stop (`after`) happens when it ends, or once it is killed at `deadline`.
    Finishing {
        generation: Generation,
        status: ExitStatus,
        ran: Duration,
        after: AfterStop,
        pid: Option<Pid>,
        deadline: Instant,
        killed: bool,
    },
    /// Waiting to restart after a failure.
    Backoff { until: Instant },
    /// Ended for good, successfully (a completed one-shot task, or a success under a policy
    /// that does not restart it).
    Exited { status: ExitStatus },
    /// Ended for good, unsuccessfully: gave up, or failed under `restart = "never"`.
    Failed { outcome: Outcome },
    /// Stopped on request; `status` is the last instance's, if there was one. It stays
    /// stopped, whatever its restart policy, until it is started again.
    Stopped { status: Option<ExitStatus> },
    /// Never started because a dependency failed for good.
    Blocked { on: ServiceId },
    /// A scheduled task between runs: the supervisor starts it at its next time. `last` is
    /// how its latest run ended, and whether that was a success.
    Scheduled { last: Option<(Outcome, bool)> },
}

/// What happens once a stopping group is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterStop {
    /// The main process exited on its own: the restart policy decides.
    Settle,
    /// A stop was requested: stay stopped.
    Stop,
    /// A restart was requested: start a new instance at once.
    Restart,
    /// tend stopped it because it failed its readiness deadline or its health checks: a
    /// failed start, whatever its exit status.
    Failed,
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
    /// Run it (the first start, or `tend start`).
    Start,
    Spawned {
        generation: Generation,
        pid: Pid,
    },
    SpawnFailed {
        generation: Generation,
        kind: SpawnErrorKind,
    },
    /// Its main process (looked up by pid) was reaped.
    Exited {
        pid: Pid,
        status: ExitStatus,
    },
    /// No process is left in the group led by this pid.
    GroupEmpty {
        pgid: Pid,
    },
    /// The state's deadline has passed.
    Timeout,
    /// Stop gracefully and stay stopped.
    Stop,
    /// Stop gracefully, then start a new instance.
    Restart,
    /// Stop now: SIGKILL to the group.
    Kill,
    /// A dependency failed for good: a service still waiting to start never will.
    /// Its readiness probe succeeded, or it notified readiness.
    Ready,
    /// Its health checks failed `failures` times in a row, or it uses more memory than
    /// its `memory-limit`: it is stopped and restarted as a failed start.
    Unhealthy,
    DependencyFailed {
        on: ServiceId,
    },
    /// A scheduled task's time has come: it starts as soon as its dependencies allow.
    Due,
    /// Its `finish` command was started.
    FinishSpawned {
        generation: Generation,
        pid: Pid,
    },
    /// Its `finish` command could not be started.
    FinishSpawnFailed {
        generation: Generation,
    },
}

/// What the service asks of the supervisor as a consequence of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Spawn(Generation),
    /// Read the service's pid file and answer with `Spawned` (the daemon) or `SpawnFailed`.
    AwaitPidFile(Generation),
    /// A process now belongs to this service.
    Track(Pid),
    /// The process no longer does.
    Untrack(Pid),
    /// Send a signal to the service's process group.
    SignalGroup {
        pgid: Pid,
        signal: Signal,
    },
    /// SIGKILL was needed: the group outlived its stop timeout.
    StopTimedOut,
    /// Not every process of the group could be seen gone after SIGKILL.
    GaveUpWaiting,
    /// The instance failed; a new one starts after `delay`.
    Restarting {
        delay: Duration,
        failures: u32,
    },
    /// Too many failed starts in a row.
    GaveUp {
        failures: u32,
    },
    /// Ended for good on its own. `success`: it completed as it should.
    Ended {
        outcome: Outcome,
        success: bool,
    },
    /// Stopped because it was asked to.
    Stopped,
    /// It is ready (stayed up `start-secs`, passed its readiness probe, or notified):
    /// dependents waiting for it may start.
    Ready,
    /// It was not ready within its readiness timeout: it is being stopped as a failed start.
    NotReadyInTime,
    /// Run the `finish` command for the instance that ended with `status`.
    SpawnFinish {
        generation: Generation,
        status: ExitStatus,
    },
    /// This process is the service's `finish` command.
    TrackFinish(Pid),
    /// The `finish` command outlived its timeout: SIGKILL was sent to its group.
    FinishTimedOut,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub state: ServiceState,
    last_generation: Generation,
    /// Failed starts in a row.
    pub failures: u32,
    /// Instances started after the first.
    pub restarts: u32,
    /// How the latest instance ended.
    pub last_exit: Option<ExitStatus>,
    /// ... and whether that end was the OOM killer's (set by the supervisor).
    pub last_exit_oom: bool,
    /// Instances the OOM killer ended.
    pub oom_kills: u32,
    /// SIGKILL was sent to this instance's group on request (`tend signal KILL`).
    pub kill_requested: bool,
    /// This instance's started process (whose pid is kept here: it led its process group)
    /// has exited and handed over to a daemon named by `pid-file`, or is about to: the next
    /// `Spawned` is the daemon, and its exit ends the instance.
    pub launcher: Option<Pid>,
    /// The process group of a followed daemon that does not lead one (it forked twice, or
    /// never called setsid): stops go there instead of to a group named by its pid.
    pub group: Option<Pid>,
    /// The last spawn failure said, until a spawn succeeds: the same one is not said again.
    pub spawn_error: Option<String>,
}

impl Default for Service {
    fn default() -> Self {
        Service {
            state: ServiceState::Idle,
            last_generation: Generation(0),
            failures: 0,
            restarts: 0,
            last_exit: None,
            last_exit_oom: false,
            oom_kills: 0,
            kill_requested: false,
            launcher: None,
            group: None,
            spawn_error: None,
        }
    }
}

impl Service {
    /// A service as loaded from the file: waiting to start, or stopped until `tend start`
    /// when it is not started automatically.
    pub fn loaded(spec: &ServiceSpec) -> Service {
        let mut service = Service::default();
        if !spec.autostart {
            service.state = ServiceState::Stopped { status: None };
        } else if spec.schedule.is_some() {
            service.state = ServiceState::Scheduled { last: None };
        }
        service
    }

    /// Applies one event and returns what must follow from it.
    pub fn step(&mut self, spec: &ServiceSpec, event: Event, now: Instant) -> Vec<Effect> {
        use Event as E;
        use ServiceState as S;
        let mut fx = Vec::new();
        let next = match (&self.state, event) {
            // Answers about a finish command concern only a service whose finish runs.
            (
                S::Idle
                | S::Starting { .. }
                | S::Running { .. }
                | S::Stopping { .. }
                | S::Backoff { .. }
                | S::Exited { .. }
                | S::Failed { .. }
                | S::Stopped { .. }
                | S::Blocked { .. }
                | S::Scheduled { .. },
                E::FinishSpawned { .. } | E::FinishSpawnFailed { .. },
            ) => return fx,
            (
                S::Finishing {
                    generation,
                    pid: None,
                    ..
                },
                E::FinishSpawned { generation: g, pid },
            ) if *generation == g => {
                fx.push(Effect::TrackFinish(pid));
                let mut st = self.state.clone();
                if let S::Finishing { pid: p, .. } = &mut st {
                    *p = Some(pid);
                }
                st
            }
            (
                S::Finishing {
                    generation,
                    pid: None,
                    status,
                    ran,
                    after,
                    ..
                },
                E::FinishSpawnFailed { generation: g },
            ) if *generation == g => self.conclude(spec, *status, *ran, *after, now, &mut fx),
            (S::Finishing { .. }, E::FinishSpawned { .. } | E::FinishSpawnFailed { .. }) => {
                return fx;
            }
            // The finish command ended: what was decided for after the stop happens now.
            (
                S::Finishing {
                    pid: Some(p),
                    status,
                    ran,
                    after,
                    ..
                },
                E::Exited { pid, .. },
            ) if *p == pid => {
                fx.push(Effect::Untrack(pid));
                self.conclude(spec, *status, *ran, *after, now, &mut fx)
            }
            (
                S::Finishing {
                    pid,
                    deadline,
                    killed: false,
                    ..
                },
                E::Timeout,
            ) if now >= *deadline => {
                let mut st = self.state.clone();
                match *pid {
                    Some(p) => {
                        fx.push(Effect::FinishTimedOut);
                        fx.push(Effect::SignalGroup {
                            pgid: p,
                            signal: Signal::KILL,
                        });
                        if let S::Finishing {
                            killed, deadline, ..
                        } = &mut st
                        {
                            *killed = true;
                            *deadline = now.after(KILL_REAP_GRACE);
                        }
                        st
                    }
                    None => return fx, // the shell answers a spawn before anything else
                }
            }
            // SIGKILLed and still not reaped: go on without it (reaped later as an orphan).
            (
                S::Finishing {
                    pid,
                    deadline,
                    killed: true,
                    status,
                    ran,
                    after,
                    ..
                },
                E::Timeout,
            ) if now >= *deadline => {
                if let Some(p) = *pid {
                    fx.push(Effect::Untrack(p));
                }
                self.conclude(spec, *status, *ran, *after, now, &mut fx)
            }
            (S::Finishing { .. }, E::Timeout) => return fx,
            // While it runs, a stop or a start changes what happens once it has ended: the
            // next start waits for it.
            (S::Finishing { .. }, E::Stop | E::Start | E::Restart) => {
                let mut st = self.state.clone();
                if let S::Finishing { after, .. } = &mut st {
                    *after = if event == E::Stop {
                        AfterStop::Stop
                    } else {
                        AfterStop::Restart
                    };
                }
                st
            }
            (
                S::Finishing {
                    pid: Some(p),
                    killed: false,
                    ..
                },
                E::Kill,
            ) => {
                fx.push(Effect::SignalGroup {
                    pgid: *p,
                    signal: Signal::KILL,
                });
                let mut st = self.state.clone();
                if let S::Finishing {
                    killed,
                    deadline,
                    after,
                    ..
                } = &mut st
                {
                    *killed = true;
                    *deadline = now.after(KILL_REAP_GRACE);
                    *after = AfterStop::Stop;
                }
                st
            }
            (S::Finishing { .. }, E::Kill) => return fx,
            (
                S::Finishing { .. },
                E::Spawned { .. }
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty { .. }
                | E::Ready
                | E::Unhealthy
                | E::DependencyFailed { .. }
                | E::Due,
            ) => return fx,
            // Readiness and health only concern a running instance.
            (
                S::Idle
                | S::Starting { .. }
                | S::Stopping { .. }
                | S::Backoff { .. }
                | S::Exited { .. }
                | S::Failed { .. }
                | S::Stopped { .. }
                | S::Blocked { .. }
                | S::Scheduled { .. },
                E::Ready | E::Unhealthy,
            ) => return fx,
            (S::Idle, E::DependencyFailed { on }) => S::Blocked { on },
            // Only a service still waiting to start can be blocked by a failed dependency.
            (
                S::Starting { .. }
                | S::Running { .. }
                | S::Stopping { .. }
                | S::Backoff { .. }
                | S::Exited { .. }
                | S::Failed { .. }
                | S::Stopped { .. }
                | S::Blocked { .. }
                | S::Scheduled { .. },
                E::DependencyFailed { .. },
            ) => return fx,
            (S::Idle, E::Start | E::Restart) => self.spawn(&mut fx),
            (S::Idle, E::Stop | E::Kill) => S::Stopped { status: None },
            // Events about instances that do not exist (any more) change nothing.
            (
                S::Idle,
                E::Spawned { .. }
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty { .. }
                | E::Timeout
                | E::Due,
            ) => {
                return fx;
            }

            (
                S::Starting { .. },
                E::Start
                | E::Restart
                | E::Exited { .. }
                | E::GroupEmpty { .. }
                | E::Timeout
                | E::Due,
            ) => {
                return fx;
            }
            (S::Starting { generation, .. }, E::Stop | E::Kill) => S::Starting {
                generation: *generation,
                stop: true,
            },
            (S::Starting { generation, stop }, E::Spawned { generation: g, pid })
                if *generation == g =>
            {
                fx.push(Effect::Track(pid));
                if *stop {
                    let main = (pid, self.group.unwrap_or(pid));
                    signal_stop(spec, g, main, now, now, AfterStop::Stop, &mut fx)
                } else {
                    {
                        let ready_at = match &spec.ready {
                            // With a readiness rule the deadline is its timeout; the probe or
                            // the notification makes it ready before that.
                            Some(rule) => Some(now.after(rule.timeout)),
                            None => {
                                (!spec.start_secs.is_zero()).then(|| now.after(spec.start_secs))
                            }
                        };
                        if ready_at.is_none() {
                            fx.push(Effect::Ready);
                        }
                        S::Running {
                            generation: g,
                            pid,
                            since: now,
                            ready_at,
                        }
                    }
                }
            }
            (
                S::Starting { generation, stop },
                E::SpawnFailed {
                    generation: g,
                    kind,
                },
            ) if *generation == g => {
                let outcome = Outcome::SpawnFailed(kind);
                if let Some(launcher) = self.launcher {
                    // No daemon to follow: whatever the started process left goes.
                    fx.push(Effect::SignalGroup {
                        pgid: launcher,
                        signal: Signal::KILL,
                    });
                }
                if *stop {
                    fx.push(Effect::Stopped);
                    S::Stopped { status: None }
                } else {
                    self.after_failure(spec, outcome, true, now, &mut fx)
                }
            }
            (S::Starting { .. }, E::Spawned { .. } | E::SpawnFailed { .. }) => return fx,

            (
                S::Running { .. },
                E::Start
                | E::Spawned { .. }
                | E::SpawnFailed { .. }
                | E::GroupEmpty { .. }
                | E::Due,
            ) => {
                return fx;
            }
            (
                S::Running {
                    generation,
                    pid,
                    since,
                    ready_at: Some(at),
                },
                E::Timeout,
            ) if now >= *at => {
                match spec.ready {
                    // With a readiness rule the deadline is the readiness timeout: too late.
                    Some(_) => {
                        fx.push(Effect::NotReadyInTime);
                        signal_stop(
                            spec,
                            *generation,
                            (*pid, self.group.unwrap_or(*pid)),
                            *since,
                            now,
                            AfterStop::Failed,
                            &mut fx,
                        )
                    }
                    None => {
                        fx.push(Effect::Ready);
                        S::Running {
                            generation: *generation,
                            pid: *pid,
                            since: *since,
                            ready_at: None,
                        }
                    }
                }
            }
            (S::Running { .. }, E::Timeout) => return fx,
            (
                S::Running {
                    generation,
                    pid,
                    since,
                    ready_at: Some(_),
                },
                E::Ready,
            ) => {
                fx.push(Effect::Ready);
                S::Running {
                    generation: *generation,
                    pid: *pid,
                    since: *since,
                    ready_at: None,
                }
            }
            (S::Running { ready_at: None, .. }, E::Ready) => return fx,
            (
                S::Running {
                    generation,
                    pid,
                    since,
                    ..
                },
                E::Unhealthy,
            ) => signal_stop(
                spec,
                *generation,
                (*pid, self.group.unwrap_or(*pid)),
                *since,
                now,
                AfterStop::Failed,
                &mut fx,
            ),
            // A forking daemon's started process is done: the daemon it left takes over,
            // once the shell has read its pid file (answered like a spawn).
            (
                S::Running {
                    generation, pid, ..
                },
                E::Exited { pid: p, status },
            ) if *pid == p
                && spec.pid_file.is_some()
                && self.launcher.is_none()
                && matches!(status, ExitStatus::Exited(c) if spec.success_codes.contains(c)) =>
            {
                fx.push(Effect::Untrack(p));
                fx.push(Effect::AwaitPidFile(*generation));
                self.launcher = Some(p);
                S::Starting {
                    generation: *generation,
                    stop: false,
                }
            }
            (
                S::Running {
                    generation,
                    pid,
                    since,
                    ..
                },
                E::Exited { pid: p, status },
            ) if *pid == p => {
                fx.push(Effect::Untrack(p));
                self.last_exit = Some(status);
                if spec.stop_group_leftovers {
                    // Whatever the main process left in its group goes before anything else.
                    let pgid = self.group.unwrap_or(p);
                    fx.push(Effect::SignalGroup {
                        pgid,
                        signal: spec.stop_signal,
                    });
                    S::Stopping {
                        generation: *generation,
                        main: p,
                        pgid,
                        main_alive: false,
                        status: Some(status),
                        since: *since,
                        deadline: now.after(spec.stop_timeout),
                        killed: false,
                        after: AfterStop::Settle,
                    }
                } else {
                    self.settle(spec, status, *since, AfterStop::Settle, now, &mut fx)
                }
            }
            (S::Running { .. }, E::Exited { .. }) => return fx,
            (
                S::Running {
                    generation,
                    pid,
                    since,
                    ..
                },
                E::Stop,
            ) => signal_stop(
                spec,
                *generation,
                (*pid, self.group.unwrap_or(*pid)),
                *since,
                now,
                AfterStop::Stop,
                &mut fx,
            ),
            (
                S::Running {
                    generation,
                    pid,
                    since,
                    ..
                },
                E::Restart,
            ) => signal_stop(
                spec,
                *generation,
                (*pid, self.group.unwrap_or(*pid)),
                *since,
                now,
                AfterStop::Restart,
                &mut fx,
            ),
            (
                S::Running {
                    generation,
                    pid,
                    since,
                    ..
                },
                E::Kill,
            ) => {
                let pgid = self.group.unwrap_or(*pid);
                fx.push(Effect::SignalGroup {
                    pgid,
                    signal: Signal::KILL,
                });
                S::Stopping {
                    generation: *generation,
                    main: *pid,
                    pgid,
                    main_alive: true,
                    status: None,
                    since: *since,
                    deadline: now.after(KILL_REAP_GRACE),
                    killed: true,
                    after: AfterStop::Stop,
                }
            }

            (S::Stopping { .. }, E::Spawned { .. } | E::SpawnFailed { .. } | E::Due) => {
                return fx;
            }
            (
                S::Stopping {
                    main,
                    main_alive: true,
                    ..
                },
                E::Exited { pid, status },
            ) if *main == pid => {
                fx.push(Effect::Untrack(pid));
                self.last_exit = Some(status);
                let mut st = self.state.clone();
                if let S::Stopping {
                    main_alive,
                    status: s,
                    ..
                } = &mut st
                {
                    *main_alive = false;
                    *s = Some(status);
                }
                st
            }
            (S::Stopping { .. }, E::Exited { .. }) => return fx,
            (
                S::Stopping {
                    pgid,
                    main_alive: false,
                    status,
                    since,
                    after,
                    ..
                },
                E::GroupEmpty { pgid: g },
            ) if *pgid == g => {
                let status = status.unwrap_or(ExitStatus::Signaled(Signal::KILL));
                self.settle(spec, status, *since, *after, now, &mut fx)
            }
            (S::Stopping { .. }, E::GroupEmpty { .. }) => return fx,
            (
                S::Stopping {
                    pgid,
                    killed: false,
                    ..
                },
                E::Timeout | E::Kill,
            ) => {
                let pgid = *pgid;
                // A kill asked for (a second stop signal) is no timeout: the shutdown says
                // it is escalating, the service need not be blamed.
                if event == E::Timeout {
                    fx.push(Effect::StopTimedOut);
                }
                fx.push(Effect::SignalGroup {
                    pgid,
                    signal: Signal::KILL,
                });
                let mut st = self.state.clone();
                if let S::Stopping {
                    killed,
                    deadline,
                    after,
                    ..
                } = &mut st
                {
                    *killed = true;
                    *deadline = now.after(KILL_REAP_GRACE);
                    if event == E::Kill {
                        *after = AfterStop::Stop;
                    }
                }
                st
            }
            (
                S::Stopping {
                    main_alive,
                    main,
                    status,
                    since,
                    after,
                    ..
                },
                E::Timeout,
            ) => {
                // SIGKILLed and still not seen gone: a process stuck in the kernel, or one
                // re-parented where tend cannot see it. Do not wait forever.
                fx.push(Effect::GaveUpWaiting);
                if *main_alive {
                    // If it is reaped after all, it will count as an orphan.
                    fx.push(Effect::Untrack(*main));
                }
                let status = status.unwrap_or(ExitStatus::Signaled(Signal::KILL));
                self.settle(spec, status, *since, *after, now, &mut fx)
            }
            (S::Stopping { .. }, E::Kill) => return fx,
            (S::Stopping { .. }, E::Stop | E::Start | E::Restart) => {
                let mut st = self.state.clone();
                if let S::Stopping { after, .. } = &mut st {
                    *after = if event == E::Stop {
                        AfterStop::Stop
                    } else {
                        AfterStop::Restart
                    };
                }
                st
            }

            // The delay is over: back to waiting, and the supervisor starts it again as soon as
            // its dependencies allow (at once when it has none).
            (S::Backoff { until }, E::Timeout) if now >= *until => {
                self.restarts += 1;
                S::Idle
            }
            (S::Backoff { .. }, E::Start | E::Restart) => {
                self.restarts += 1;
                self.spawn(&mut fx)
            }
            (S::Backoff { .. }, E::Stop | E::Kill) => {
                fx.push(Effect::Stopped);
                S::Stopped {
                    status: self.last_exit,
                }
            }
            (
                S::Backoff { .. },
                E::Spawned { .. }
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty { .. }
                | E::Timeout
                | E::Due,
            ) => {
                return fx;
            }

            (S::Blocked { .. }, E::Stop | E::Kill) => S::Stopped { status: None },
            (
                S::Blocked { .. },
                E::Spawned { .. }
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty { .. }
                | E::Timeout
                | E::Due,
            ) => return fx,

            // A scheduled task's time: it waits to start like any service, for its
            // dependencies. `tend start` runs it now; `tend stop` pauses its schedule.
            (S::Scheduled { .. }, E::Due) => S::Idle,
            (S::Scheduled { .. }, E::Start | E::Restart) => {
                self.failures = 0;
                self.spawn(&mut fx)
            }
            (S::Scheduled { .. }, E::Stop | E::Kill) => {
                fx.push(Effect::Stopped);
                S::Stopped {
                    status: self.last_exit,
                }
            }
            (
                S::Scheduled { .. },
                E::Spawned { .. }
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty { .. }
                | E::Timeout,
            ) => return fx,

            // A service that is over starts again only when asked (a blocked one too: the
            // operator knows better).
            (
                S::Exited { .. } | S::Failed { .. } | S::Stopped { .. } | S::Blocked { .. },
                E::Start | E::Restart,
            ) => {
                self.failures = 0;
                // The first start of a service loaded stopped (`autostart = false`) is none,
                // and a scheduled task's runs are no restarts.
                if self.ever_started() && spec.schedule.is_none() {
                    self.restarts += 1;
                }
                self.spawn(&mut fx)
            }
            (
                S::Exited { .. } | S::Failed { .. } | S::Stopped { .. },
                E::Spawned { .. }
                | E::SpawnFailed { .. }
                | E::Exited { .. }
                | E::GroupEmpty { .. }
                | E::Timeout
                | E::Stop
                | E::Kill
                | E::Due,
            ) => return fx,
        };
        self.state = next;
        fx
    }

    fn spawn(&mut self, fx: &mut Vec<Effect>) -> ServiceState {
        self.launcher = None;
        self.group = None;
        self.kill_requested = false;
        self.last_generation = Generation(self.last_generation.0 + 1);
        fx.push(Effect::Spawn(self.last_generation));
        ServiceState::Starting {
            generation: self.last_generation,
            stop: false,
        }
    }

    /// The instance is completely gone: its `finish` command runs first, if it has one;
    /// otherwise what comes next is decided now.
    fn settle(
        &mut self,
        spec: &ServiceSpec,
        status: ExitStatus,
        since: Instant,
        after: AfterStop,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> ServiceState {
        let ran = now.since(since);
        let Some(finish) = &spec.finish else {
            return self.conclude(spec, status, ran, after, now, fx);
        };
        let generation = self.last_generation;
        fx.push(Effect::SpawnFinish { generation, status });
        ServiceState::Finishing {
            generation,
            status,
            ran,
            after,
            pid: None,
            deadline: now.after(finish.timeout),
            killed: false,
        }
    }

    /// Decides what comes after an instance that ended with `status` after running `ran`.
    fn conclude(
        &mut self,
        spec: &ServiceSpec,
        status: ExitStatus,
        ran: Duration,
        after: AfterStop,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> ServiceState {
        match after {
            AfterStop::Stop => {
                fx.push(Effect::Stopped);
                return ServiceState::Stopped {
                    status: Some(status),
                };
            }
            AfterStop::Restart => {
                self.failures = 0;
                self.restarts += 1;
                return self.spawn(fx);
            }
            AfterStop::Failed => {
                let restart = spec.restart != RestartPolicy::Never;
                if !restart {
                    let outcome = Outcome::Exited(status);
                    fx.push(Effect::Ended {
                        outcome,
                        success: false,
                    });
                    return ended(spec, outcome, false);
                }
                return self.after_failure(spec, Outcome::Exited(status), true, now, fx);
            }
            AfterStop::Settle => {}
        }
        let success = matches!(status, ExitStatus::Exited(c) if spec.success_codes.contains(c));
        if success && spec.oneshot {
            let outcome = Outcome::Exited(status);
            fx.push(Effect::Ended {
                outcome,
                success: true,
            });
            return ended(spec, outcome, true);
        }
        // Too short a run, or a failed task, counts against the give-up rule; a run that
        // lasted `start_secs` resets it.
        let failed_start = ran < spec.start_secs || (spec.oneshot && !success);
        let restart = match spec.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        };
        if !restart {
            let outcome = Outcome::Exited(status);
            fx.push(Effect::Ended { outcome, success });
            return ended(spec, outcome, success);
        }
        self.after_failure(spec, Outcome::Exited(status), failed_start, now, fx)
    }

    /// Counts a failure and schedules a restart, or gives up.
    fn after_failure(
        &mut self,
        spec: &ServiceSpec,
        outcome: Outcome,
        failed_start: bool,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> ServiceState {
        if failed_start {
            self.failures = self.failures.saturating_add(1);
        } else {
            self.failures = 0;
        }
        let never_restart = spec.restart == RestartPolicy::Never;
        if never_restart || (spec.max_restarts > 0 && self.failures > spec.max_restarts) {
            if !never_restart {
                fx.push(Effect::GaveUp {
                    failures: self.failures,
                });
            }
            fx.push(Effect::Ended {
                outcome,
                success: false,
            });
            return ended(spec, outcome, false);
        }
        let delay = spec.backoff.delay(self.failures.max(1));
        fx.push(Effect::Restarting {
            delay,
            failures: self.failures,
        });
        ServiceState::Backoff {
            until: now.after(delay),
        }
    }

    /// An instance was ever asked for (every spawn starts a new generation).
    pub fn ever_started(&self) -> bool {
        self.last_generation.0 > 0
    }

    /// The pid of the live main process, if there is one.
    pub fn pid(&self) -> Option<Pid> {
        match self.state {
            ServiceState::Running { pid, .. } => Some(pid),
            ServiceState::Stopping {
                main,
                main_alive: true,
                ..
            } => Some(main),
            ServiceState::Idle
            | ServiceState::Starting { .. }
            | ServiceState::Stopping { .. }
            | ServiceState::Finishing { .. }
            | ServiceState::Backoff { .. }
            | ServiceState::Exited { .. }
            | ServiceState::Failed { .. }
            | ServiceState::Stopped { .. }
            | ServiceState::Blocked { .. }
            | ServiceState::Scheduled { .. } => None,
        }
    }

    /// Whether tend sent SIGKILL to the current instance: to stop it (its stop signal, or
    /// after its stop-timeout, or at an escalated shutdown) or on request.
    pub fn kill_sent(&self, spec: &ServiceSpec) -> bool {
        self.kill_requested
            || match self.state {
                ServiceState::Stopping { killed, .. } => killed || spec.stop_signal == Signal::KILL,
                ServiceState::Idle
                | ServiceState::Starting { .. }
                | ServiceState::Running { .. }
                | ServiceState::Finishing { .. }
                | ServiceState::Backoff { .. }
                | ServiceState::Exited { .. }
                | ServiceState::Failed { .. }
                | ServiceState::Stopped { .. }
                | ServiceState::Blocked { .. }
                | ServiceState::Scheduled { .. } => false,
            }
    }

    /// The process group of the current instance while it may have processes: the group
    /// of its main process while that runs, the one being stopped while it stops.
    pub fn process_group(&self) -> Option<Pid> {
        match self.state {
            ServiceState::Running { pid, .. } => Some(self.group.unwrap_or(pid)),
            ServiceState::Stopping { pgid, .. } => Some(pgid),
            ServiceState::Idle
            | ServiceState::Starting { .. }
            | ServiceState::Finishing { .. }
            | ServiceState::Backoff { .. }
            | ServiceState::Exited { .. }
            | ServiceState::Failed { .. }
            | ServiceState::Stopped { .. }
            | ServiceState::Blocked { .. }
            | ServiceState::Scheduled { .. } => None,
        }
    }

    /// When the current instance started, while one runs.
    pub fn since(&self) -> Option<Instant> {
        match self.state {
            ServiceState::Running { since, .. } | ServiceState::Stopping { since, .. } => {
                Some(since)
            }
            ServiceState::Idle
            | ServiceState::Starting { .. }
            | ServiceState::Finishing { .. }
            | ServiceState::Backoff { .. }
            | ServiceState::Exited { .. }
            | ServiceState::Failed { .. }
            | ServiceState::Stopped { .. }
            | ServiceState::Blocked { .. }
            | ServiceState::Scheduled { .. } => None,
        }
    }

    /// When this service needs `Event::Timeout`.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            ServiceState::Running {
                ready_at: Some(at), ..
            } => Some(at),
            ServiceState::Stopping { deadline, .. } | ServiceState::Finishing { deadline, .. } => {
                Some(deadline)
            }
            ServiceState::Backoff { until } => Some(until),
            ServiceState::Idle
            | ServiceState::Starting { .. }
            | ServiceState::Running { .. }
            | ServiceState::Exited { .. }
            | ServiceState::Failed { .. }
            | ServiceState::Stopped { .. }
            | ServiceState::Blocked { .. }
            | ServiceState::Scheduled { .. } => None,
        }
    }

    /// The group whose emptiness the service waits for (its main process is gone).
    pub fn awaited_group(&self) -> Option<Pid> {
        match self.state {
            ServiceState::Stopping {
                pgid,
                main_alive: false,
                ..
            } => Some(pgid),
            ServiceState::Stopping {
                main_alive: true, ..
            }
            | ServiceState::Idle
            | ServiceState::Starting { .. }
            | ServiceState::Running { .. }
            | ServiceState::Finishing { .. }
            | ServiceState::Backoff { .. }
            | ServiceState::Exited { .. }
            | ServiceState::Failed { .. }
            | ServiceState::Stopped { .. }
            | ServiceState::Blocked { .. }
            | ServiceState::Scheduled { .. } => None,
        }
    }

    /// No process of this service exists, and none will be started unless asked.
    pub fn is_down(&self) -> bool {
        matches!(
            self.state,
            ServiceState::Idle
                | ServiceState::Exited { .. }
                | ServiceState::Failed { .. }
                | ServiceState::Stopped { .. }
                | ServiceState::Blocked { .. }
                | ServiceState::Scheduled { .. }
        )
    }

    /// It runs and has been marked ready (by its probe, its notification, or the end of
    /// `start-secs` when a dependent was waiting for it).
    pub fn is_ready(&self) -> bool {
        matches!(self.state, ServiceState::Running { ready_at: None, .. })
    }

    /// Ready as people see it at `now`: without a readiness rule, the end of `start-secs`
    /// makes it ready even when nobody waited for the timer.
    pub fn is_ready_at(&self, spec: &ServiceSpec, now: Instant) -> bool {
        match self.state {
            ServiceState::Running { ready_at: None, .. } => true,
            ServiceState::Running {
                ready_at: Some(at), ..
            } => spec.ready.is_none() && now >= at,
            _ => false,
        }
    }

    /// The state's name as users see it.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            ServiceState::Idle => "waiting",
            ServiceState::Starting { .. } => "starting",
            ServiceState::Running { .. } => "running",
            ServiceState::Stopping { .. } => "stopping",
            ServiceState::Finishing { .. } => "finishing",
            ServiceState::Backoff { .. } => "backoff",
            ServiceState::Exited { .. } => "exited",
            ServiceState::Failed { .. } => "failed",
            ServiceState::Stopped { .. } => "stopped",
            ServiceState::Blocked { .. } => "blocked",
            ServiceState::Scheduled { .. } => "scheduled",
        }
    }
}

/// The state after a run that ended for good with `outcome`: a scheduled task waits for its
/// next time; any other service has exited or failed.
fn ended(spec: &ServiceSpec, outcome: Outcome, success: bool) -> ServiceState {
    match outcome {
        _ if spec.schedule.is_some() => ServiceState::Scheduled {
            last: Some((outcome, success)),
        },
        Outcome::Exited(status) if success => ServiceState::Exited { status },
        Outcome::Exited(_) | Outcome::SpawnFailed(_) => ServiceState::Failed { outcome },
    }
}

/// Stop signal to the group of an instance started at `since`; SIGKILL comes at the deadline.
fn signal_stop(
    spec: &ServiceSpec,
    generation: Generation,
    (pid, pgid): (Pid, Pid),
    since: Instant,
    now: Instant,
    after: AfterStop,
    fx: &mut Vec<Effect>,
) -> ServiceState {
    fx.push(Effect::SignalGroup {
        pgid,
        signal: spec.stop_signal,
    });
    ServiceState::Stopping {
        generation,
        main: pid,
        pgid,
        main_alive: true,
        status: None,
        since,
        deadline: now.after(spec.stop_timeout),
        killed: false,
        after,
    }
}
