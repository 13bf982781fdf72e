//! The supervisor: routes inputs to services, decides what tend does as a whole.
//!
//! Sans-IO: `start`, `handle` and `handle_timeout` take the current time and queue actions;
//! `poll_action` hands them out in order; `poll_timeout` says when to call `handle_timeout`;
//! `awaited_groups` names the process groups whose emptiness the shell should report.
//!
//! Indexing by service: every per-service vector (`services`, `spec.services`, `retired`,
//! `stop_sent`, `task_deadline`, `checks`, `plans`, `last_success`) has one entry per slot and they grow together
//! (`new`, `reload`); slots are never removed (a removed service is retired), and every
//! `ServiceId` is one the core handed out. Writing each lookup with `get` would hide the
//! logic behind error paths that cannot be taken; the property tests in `tests/supervise.rs`
//! drive every path with random inputs and would abort on a bad index.
#![allow(
    clippy::indexing_slicing,
    reason = "per-service vectors share one length that only grows; see above"
)]

mod plans;

pub use plans::{Due, JUMP_LIMIT};

use super::exit::{ExitStatus, Pid};
use super::io::{
    Action, ControlOp, ControlResult, Generation, Input, KillTarget, Note, RequestId,
    ShutdownReason,
};
use super::pid_map::PidMap;
use super::service::{Effect, Event, Outcome, Service, ServiceState};
use super::signal::Signal;
use super::spec::{
    Condition, Dependency, KILL_REAP_GRACE, MEMORY_CHECK_EVERY, RunOn, ServiceId, ServiceSpec,
    SignalRouting, Spec,
};
use super::time::Instant;
use jiff::Timestamp;
use plans::Plan;
use std::cell::Cell;
use std::collections::VecDeque;
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
    /// Live main processes of services. Any other pid the reaper reports is an orphan, or
    /// one of these: the live `finish` commands of services.
    pids: PidMap,
    finish_pids: PidMap,
    phase: Phase,
    actions: VecDeque<Action>,
    orphans_reaped: u64,
    /// `retired[i]`: service i was removed by a reload; its slot stays so ids stay stable.
    retired: Vec<bool>,
    /// Control requests waiting for their services to reach a state.
    pending: Vec<Pending>,
    /// During shutdown: the services already told to stop.
    stop_sent: Vec<bool>,
    /// During shutdown: when each shutdown task still running gets SIGKILL.
    task_deadline: Vec<Option<Instant>>,
    /// Each service's readiness or health checks, for its current instance.
    checks: Vec<Checks>,
    /// The kernel's OOM-kill count as last read, and the kills it rose by then that no
    /// exit has been put down to yet, valid in the batch of exits it was read for.
    oom: OomCount,
    /// When the services with a `memory_limit` are next measured. It counts (in
    /// `poll_timeout`) only while one of them runs, so without one tend never wakes for it.
    memory_check: Option<Instant>,
    /// Scheduled tasks: when each is next due (None while its schedule is not followed:
    /// stopped, blocked, shutting down, or a cron rule before the first wall-clock reading).
    plans: Vec<Option<Plan>>,
    /// When each scheduled task's latest successful run ended.
    last_success: Vec<Option<Instant>>,
    /// The latest wall-clock reading the shell handed in, and the moment it was taken.
    wall: Option<(Instant, Timestamp)>,
    /// Set while `start_waiting` or `stop_in_order` runs, so the steps they take do not
    /// run them again from inside.
    reentered: bool,
    /// `poll_timeout`'s answer until the state changes. The shell asks on every wake-up, a
    /// busy log's too, and the answer scans every service. Every `pub fn` that takes
    /// `&mut self` (the only way to change the state) clears it first, except
    /// `poll_action`, which only hands out queued actions.
    next_timeout: Cell<Option<Option<Instant>>>,
}

/// A control request that answers once each of its services has reached the state it asked
/// for (or clearly will not).
struct Pending {
    id: RequestId,
    op: ControlOp,
    waiting: Vec<ServiceId>,
    results: Vec<ControlResult>,
}

/// The readiness or health checks of a service's current instance.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checks {
    /// When the next attempt is due (None: none scheduled).
    next: Option<Instant>,
    in_flight: bool,
    /// The scheduled attempt is a health check (else a readiness probe).
    health: bool,
    /// Health checks failed in a row (those that count).
    pub failures: u32,
    /// Health failures before this time do not count (`start-period`).
    count_from: Instant,
    /// The last health check's verdict, once there was one.
    pub healthy: Option<bool>,
}

/// The kernel's count of OOM kills, for telling its SIGKILLs from others.
#[derive(Clone, Copy, Debug, Default)]
struct OomCount {
    /// The count as last read (None before the first reading).
    last: Option<u64>,
    /// How much it rose at the last reading, less the exits put down to it since.
    unexplained: u64,
    /// When that reading was made: it explains exits reaped in the same batch (same time).
    at: Instant,
}

/// What a reload changed, by service name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Supervisor {
    pub fn new(spec: Spec) -> Supervisor {
        let services = spec.services.iter().map(Service::loaded).collect();
        let n = spec.services.len();
        Supervisor {
            spec,
            services,
            pids: PidMap::new(),
            finish_pids: PidMap::new(),
            phase: Phase::Running,
            actions: VecDeque::new(),
            orphans_reaped: 0,
            retired: vec![false; n],
            pending: Vec::new(),
            stop_sent: vec![false; n],
            task_deadline: vec![None; n],
            checks: vec![Checks::default(); n],
            memory_check: None,
            oom: OomCount::default(),
            plans: vec![None; n],
            last_success: vec![None; n],
            wall: None,
            reentered: false,
            next_timeout: Cell::new(None),
        }
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The definition of service `id`; None only for an id the core never handed out.
    pub fn service_spec(&self, id: ServiceId) -> Option<&ServiceSpec> {
        self.spec.services.get(id.0)
    }

    /// The name of service `id` (empty for an id the core never handed out).
    pub fn name(&self, id: ServiceId) -> &str {
        self.service_spec(id).map_or("", |s| &s.name)
    }

    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id.0]
    }

    /// Removed by a reload: not shown, not started, never again part of any decision.
    pub fn is_retired(&self, id: ServiceId) -> bool {
        self.retired[id.0]
    }

    /// The live (not retired) service with this name.
    pub fn find(&self, name: &str) -> Option<ServiceId> {
        (0..self.services.len())
            .find(|&i| !self.retired[i] && self.spec.services[i].name == name)
            .map(ServiceId)
    }

    /// The live services a request naming `name` is about: the service of that name, else
    /// every instance of the service with `instances` of that name (`worker` for `worker-0`
    /// ... `worker-3`), in order; none when neither exists.
    pub fn resolve(&self, name: &str) -> Vec<ServiceId> {
        if let Some(id) = self.find(name) {
            return vec![id];
        }
        self.live_services()
            .filter(|id| self.spec.services[id.0].instance_of.as_deref() == Some(name))
            .collect()
    }

    /// Every live service, in the order of the spec.
    pub fn live_services(&self) -> impl Iterator<Item = ServiceId> + '_ {
        (0..self.services.len())
            .filter(|&i| !self.retired[i])
            .map(ServiceId)
    }

    /// Starts, stops or restarts `targets`. With an id, `Action::Reply` follows once every
    /// target has reached the asked-for state (or clearly will not); without, nobody waits.
    /// Refused while tend shuts down.
    pub fn control(
        &mut self,
        now: Instant,
        id: Option<RequestId>,
        op: ControlOp,
        targets: &[ServiceId],
    ) -> Result<(), String> {
        self.next_timeout.set(None);
        if self.phase != Phase::Running {
            return Err("tend is shutting down".into());
        }
        let event = match op {
            ControlOp::Start => Event::Start,
            ControlOp::Stop => Event::Stop,
            ControlOp::Restart => Event::Restart,
        };
        if let Some(id) = id {
            self.pending.push(Pending {
                id,
                op,
                waiting: targets.to_vec(),
                results: Vec::new(),
            });
        }
        for &svc in targets {
            self.step(svc, event, now);
        }
        // Targets already in the asked-for state (or that did not move) answer now.
        for &svc in targets {
            self.resolve_pending(svc, true);
        }
        Ok(())
    }

    /// Sends `signal` to the process group of each target that runs.
    pub fn signal_services(&mut self, signal: Signal, targets: &[ServiceId]) -> Vec<ControlResult> {
        self.next_timeout.set(None);
        targets
            .iter()
            .map(|&svc| match self.services[svc.0].pid() {
                Some(pid) => {
                    if signal == Signal::KILL {
                        self.services[svc.0].kill_requested = true;
                    }
                    self.actions.push_back(Action::Kill {
                        target: KillTarget::Group(pid),
                        signal,
                    });
                    ControlResult {
                        svc,
                        ok: true,
                        message: format!("sent {signal} to process group {pid}"),
                    }
                }
                None => ControlResult {
                    svc,
                    ok: false,
                    message: format!("not running ({})", self.services[svc.0].state_name()),
                },
            })
            .collect()
    }

    /// `tend shutdown`: the same graceful shutdown as SIGTERM.
    pub fn request_shutdown(&mut self, now: Instant) -> Result<(), String> {
        self.next_timeout.set(None);
        if self.phase != Phase::Running {
            return Err("tend is already shutting down".into());
        }
        self.begin_shutdown(ShutdownReason::Requested, 0, now);
        Ok(())
    }

    /// Applies a new, already validated spec as a difference: new services start (once their
    /// dependencies allow), removed ones stop, changed ones restart with their new definition,
    /// the others are untouched.
    /// How many service slots there will be once `new` is applied by `reload` (ids of the
    /// services beyond today's count are new), or why `reload` would refuse it. The shell
    /// sets up what new slots need (log pipes) before it commits to the reload.
    pub fn slots_after_reload(&self, new: &Spec) -> Result<usize, String> {
        if self.phase != Phase::Running {
            return Err("tend is shutting down".into());
        }
        let slots = self.reload_slots(new);
        Ok(slots
            .iter()
            .map(|&i| i + 1)
            .max()
            .unwrap_or(0)
            .max(self.services.len()))
    }

    /// Where each service of `new` will live: its current slot, the slot of a removed service
    /// of the same name that is down, or a new one at the end. Ids stay stable that way.
    fn reload_slots(&self, new: &Spec) -> Vec<usize> {
        let mut next = self.services.len();
        new.services
            .iter()
            .map(|def| {
                let live = self.find(&def.name).map(|id| id.0);
                let reused = (0..self.services.len()).find(|&i| {
                    self.retired[i]
                        && self.spec.services[i].name == def.name
                        && self.services[i].is_down()
                });
                live.or(reused).unwrap_or_else(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    }

    pub fn reload(&mut self, now: Instant, mut new: Spec) -> Result<ReloadReport, String> {
        self.next_timeout.set(None);
        self.slots_after_reload(&new)?;
        let slots = self.reload_slots(&new);
        // Read before anything is renamed or replaced: what each service waits for, by name.
        let old_waits: Vec<Vec<(String, Condition)>> = self
            .spec
            .services
            .iter()
            .map(|s| waits_for(&self.spec.services, s))
            .collect();
        let new_waits: Vec<Vec<(String, Condition)>> = new
            .services
            .iter()
            .map(|s| waits_for(&new.services, s))
            .collect();
        for def in &mut new.services {
            for dep in &mut def.depends_on {
                dep.on = ServiceId(slots[dep.on.0]);
            }
        }
        let mut report = ReloadReport::default();
        for (i, waited) in old_waits.iter().enumerate() {
            if self.retired[i] {
                continue;
            }
            let name = self.spec.services[i].name.clone();
            let found = new
                .services
                .iter()
                .enumerate()
                .find(|(_, s)| s.name == name);
            match found {
                Some((_, def)) if *def == self.spec.services[i] => report.unchanged.push(name),
                // It waits for the same services as before, only some of them have more or
                // fewer instances: its process is left alone, and it waits for the new set
                // from its next start.
                Some((k, def))
                    if same_but_dependencies(def, &self.spec.services[i])
                        && same_set(&new_waits[k], waited) =>
                {
                    self.spec.services[i] = def.clone();
                    report.unchanged.push(name);
                }
                Some((_, def)) => {
                    // Stopped with the old definition (its stop signal), started with the new.
                    // One still waiting starts as its (new) dependencies allow; a shutdown
                    // task that is not running waits for the shutdown.
                    let state = &self.services[i].state;
                    let stay_stopped = matches!(
                        state,
                        ServiceState::Stopped { .. }
                            | ServiceState::Idle
                            | ServiceState::Scheduled { .. }
                    ) || (def.run_on == RunOn::Shutdown
                        && self.services[i].is_down());
                    if !stay_stopped {
                        self.step(ServiceId(i), Event::Restart, now);
                    }
                    self.spec.services[i] = def.clone();
                    self.rescheduled(i);
                    report.changed.push(name);
                }
                None => {
                    self.step(ServiceId(i), Event::Stop, now);
                    self.retired[i] = true;
                    report.removed.push(name);
                }
            }
        }
        for (k, def) in new.services.into_iter().enumerate() {
            let i = slots[k];
            if i < self.services.len() && !self.retired[i] {
                continue; // live: handled above
            }
            report.added.push(def.name.clone());
            if i < self.services.len() {
                self.retired[i] = false;
                self.services[i] = Service::loaded(&def);
                self.spec.services[i] = def;
            } else {
                self.services.push(Service::loaded(&def));
                self.retired.push(false);
                self.stop_sent.push(false);
                self.task_deadline.push(None);
                self.checks.push(Checks::default());
                self.plans.push(None);
                self.last_success.push(None);
                self.spec.services.push(def);
            }
            self.plans[i] = None;
        }
        self.spec.shutdown_timeout = new.shutdown_timeout;
        self.spec.signals = new.signals;
        if new.timezone != self.spec.timezone {
            // Calendar times mean other instants now.
            for plan in &mut self.plans {
                if plan.is_some_and(|p| matches!(p.due, Due::Wall(_))) {
                    *plan = None;
                }
            }
            self.spec.timezone = new.timezone;
        }
        self.keep_plans(now);
        // Added services start as their dependencies allow.
        self.start_waiting(now);
        Ok(report)
    }

    pub fn orphans_reaped(&self) -> u64 {
        self.orphans_reaped
    }

    /// Starts every service whose dependencies allow it, in the order of the spec; the
    /// others start as their dependencies' conditions come to hold.
    pub fn start(&mut self, now: Instant) {
        self.next_timeout.set(None);
        self.start_waiting(now);
        self.keep_plans(now);
    }

    /// Whether `dep` holds now: `Some(true)` yes, `Some(false)` not yet, `None` never (the
    /// service it names failed for good or is blocked itself).
    pub fn condition_holds(&self, dep: Dependency) -> Option<bool> {
        let s = &self.services[dep.on.0];
        match (&s.state, dep.condition) {
            (ServiceState::Failed { .. } | ServiceState::Blocked { .. }, _) => None,
            // Ended for good successfully: it did start, was ready, and completed.
            (ServiceState::Exited { .. }, _) => Some(true),
            (ServiceState::Running { .. }, Condition::Started) => Some(true),
            (ServiceState::Running { .. }, Condition::Ready) => Some(s.is_ready()),
            (
                ServiceState::Idle
                | ServiceState::Starting { .. }
                | ServiceState::Running { .. }
                | ServiceState::Stopping { .. }
                | ServiceState::Finishing { .. }
                | ServiceState::Backoff { .. }
                | ServiceState::Stopped { .. }
                | ServiceState::Scheduled { .. },
                _,
            ) => Some(false),
        }
    }

    /// Starts the services still waiting whose dependencies now all hold, and blocks those
    /// with a dependency that never will.
    fn start_waiting(&mut self, now: Instant) {
        if self.phase != Phase::Running || self.reentered {
            return;
        }
        self.reentered = true;
        loop {
            let mut changed = false;
            for i in 0..self.services.len() {
                if self.retired[i]
                    || self.services[i].state != ServiceState::Idle
                    || self.is_shutdown_task(i)
                {
                    continue;
                }
                let deps = self.spec.services[i].depends_on.clone();
                let mut verdict = Some(true);
                for dep in &deps {
                    match self.condition_holds(*dep) {
                        None => {
                            verdict = None;
                            self.reentered = false;
                            self.step(ServiceId(i), Event::DependencyFailed { on: dep.on }, now);
                            self.reentered = true;
                            let name = self.spec.services[i].name.clone();
                            let dependency = self.spec.services[dep.on.0].name.clone();
                            self.log(Note::Blocked { name, dependency });
                            changed = true;
                            break;
                        }
                        Some(false) => verdict = Some(false),
                        Some(true) => {}
                    }
                }
                if verdict == Some(true) {
                    self.reentered = false;
                    self.step(ServiceId(i), Event::Start, now);
                    self.reentered = true;
                    changed = true;
                }
                if self.phase != Phase::Running {
                    break;
                }
            }
            if !changed || self.phase != Phase::Running {
                break;
            }
        }
        self.reentered = false;
    }

    /// During shutdown: a service stops once every service that depends on it is down, so
    /// the order is the reverse of the start order; independent ones stop in parallel.
    fn stop_in_order(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::ShuttingDown { .. }) || self.reentered {
            return;
        }
        self.reentered = true;
        loop {
            let mut changed = false;
            for i in 0..self.services.len() {
                // A shutdown task ends on its own (or is killed at its deadline); one that
                // failed is not run again.
                if self.is_shutdown_task(i) {
                    if matches!(self.services[i].state, ServiceState::Backoff { .. }) {
                        self.reentered = false;
                        self.step(ServiceId(i), Event::Stop, now);
                        self.reentered = true;
                        changed = true;
                    }
                    continue;
                }
                if self.stop_sent[i] {
                    continue;
                }
                let dependents_down = (0..self.services.len()).all(|d| {
                    self.services[d].is_down()
                        || !self.spec.services[d]
                            .depends_on
                            .iter()
                            .any(|dep| dep.on.0 == i)
                });
                if dependents_down {
                    self.stop_sent[i] = true;
                    self.reentered = false;
                    self.step(ServiceId(i), Event::Stop, now);
                    self.reentered = true;
                    changed = true;
                }
                if !matches!(self.phase, Phase::ShuttingDown { .. }) {
                    break;
                }
            }
            if !changed || !matches!(self.phase, Phase::ShuttingDown { .. }) {
                break;
            }
        }
        self.reentered = false;
    }

    /// `run-on = "shutdown"`: run when the shutdown begins, not with the others.
    fn is_shutdown_task(&self, i: usize) -> bool {
        self.spec.services[i].run_on == RunOn::Shutdown
    }

    /// At the start of a shutdown: every shutdown task starts, each with its stop-timeout to
    /// end. All of them before any service is told to stop, so the services they depend on
    /// stay up for them.
    fn start_shutdown_tasks(&mut self, now: Instant) {
        let was = std::mem::replace(&mut self.reentered, true);
        for i in 0..self.services.len() {
            if self.retired[i] || !self.is_shutdown_task(i) {
                continue;
            }
            self.task_deadline[i] = Some(now.after(self.spec.services[i].stop_timeout));
            self.step(ServiceId(i), Event::Start, now);
        }
        self.reentered = was;
    }

    pub fn handle(&mut self, now: Instant, input: Input) {
        self.next_timeout.set(None);
        if self.phase == Phase::Exited {
            return;
        }
        match input {
            Input::Spawned {
                svc,
                generation,
                pid,
            } => {
                self.services[svc.0].spawn_error = None;
                self.step(svc, Event::Spawned { generation, pid }, now);
            }
            Input::Adopted {
                svc,
                generation,
                pid,
                pgid,
            } => {
                let service = &mut self.services[svc.0];
                if matches!(service.state, ServiceState::Starting { generation: g, .. } if g == generation)
                {
                    service.group = (pgid != pid).then_some(pgid);
                }
                self.step(svc, Event::Spawned { generation, pid }, now);
            }
            Input::SpawnFailed {
                svc,
                generation,
                kind,
                message,
            } => {
                // Said once for a run of the same failure (a process limit, no descriptors):
                // each retry still says that it failed and when it tries again.
                let service = &mut self.services[svc.0];
                if service.spawn_error.as_ref() != Some(&message) {
                    service.spawn_error = Some(message.clone());
                    let name = self.spec.services[svc.0].name.clone();
                    self.log(Note::SpawnFailed { name, message });
                }
                self.step(svc, Event::SpawnFailed { generation, kind }, now);
            }
            Input::ChildExited { pid, status } => {
                if let Some(svc) = self.pids.get(pid) {
                    let name = self.spec.services[svc.0].name.clone();
                    let oom = self.oom_killed(svc, status, now);
                    if oom {
                        self.log(Note::OomKilled { name, pid });
                    } else {
                        self.log(Note::ServiceExited { name, pid, status });
                    }
                    self.step(svc, Event::Exited { pid, status }, now);
                    let service = &mut self.services[svc.0];
                    service.last_exit_oom = oom;
                    if oom {
                        service.oom_kills = service.oom_kills.saturating_add(1);
                    }
                } else if let Some(svc) = self.finish_pids.get(pid) {
                    let name = self.spec.services[svc.0].name.clone();
                    self.log(Note::FinishExited { name, pid, status });
                    self.step(svc, Event::Exited { pid, status }, now);
                } else {
                    self.orphans_reaped += 1;
                    self.log(Note::OrphanReaped { pid, status });
                }
            }
            Input::FinishSpawned {
                svc,
                generation,
                pid,
            } => self.step(svc, Event::FinishSpawned { generation, pid }, now),
            Input::FinishSpawnFailed {
                svc,
                generation,
                message,
            } => {
                let name = self.spec.services[svc.0].name.clone();
                self.log(Note::FinishFailed { name, message });
                self.step(svc, Event::FinishSpawnFailed { generation }, now);
            }
            Input::ProbeResult {
                svc,
                generation,
                health,
                ok,
            } => self.on_probe_result(svc, generation, health, ok, now),
            Input::ProbeNotRun {
                svc,
                generation,
                health,
            } => {
                if self.running_generation(svc) == Some(generation)
                    && self.checks[svc.0].health == health
                {
                    let spec = &self.spec.services[svc.0];
                    let interval = match (health, &spec.ready, &spec.health) {
                        (false, Some(rule), _) => Some(rule.interval),
                        (true, _, Some(rule)) => Some(rule.interval),
                        _ => None,
                    };
                    let c = &mut self.checks[svc.0];
                    c.in_flight = false;
                    c.next = interval.map(|i| now.after(i));
                }
            }
            Input::ReadyNotify { svc, generation } => {
                if self.running_generation(svc) == Some(generation) {
                    self.step(svc, Event::Ready, now);
                }
            }
            Input::MemoryUsage {
                svc,
                generation,
                bytes,
            } => self.on_memory_usage(svc, generation, bytes, now),
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
            Input::OomKills { count } => {
                let rise = self.oom.last.map_or(0, |last| count.saturating_sub(last));
                self.oom = OomCount {
                    last: Some(count),
                    unexplained: rise,
                    at: now,
                };
            }
            Input::Signal(signal) => self.on_signal(signal, now),
            Input::WallClock { wall, set } => self.on_wall_clock(now, wall, set),
        }
    }

    /// Whether the OOM killer ended this main process of `svc`: SIGKILL that tend did not
    /// send, reaped in the batch whose reading of the OOM-kill count rose. Each rise
    /// explains one such exit.
    fn oom_killed(&mut self, svc: ServiceId, status: ExitStatus, now: Instant) -> bool {
        let service = &self.services[svc.0];
        let killed = status == ExitStatus::Signaled(Signal::KILL)
            && !service.kill_sent(&self.spec.services[svc.0]);
        if !killed || self.oom.at != now || self.oom.unexplained == 0 {
            return false;
        }
        self.oom.unexplained -= 1;
        true
    }

    /// Call when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.next_timeout.set(None);
        self.run_due(now);
        for i in 0..self.services.len() {
            if self.phase == Phase::Exited {
                return;
            }
            let due = self.checks[i].next.is_some_and(|t| t <= now) && !self.checks[i].in_flight;
            if let (true, Some(generation)) = (due, self.running_generation(ServiceId(i))) {
                let health = self.checks[i].health;
                self.checks[i].in_flight = true;
                self.checks[i].next = None;
                self.actions.push_back(Action::Probe {
                    svc: ServiceId(i),
                    generation,
                    health,
                });
            }
            if self.services[i].deadline().is_some_and(|d| d <= now) {
                self.step(ServiceId(i), Event::Timeout, now);
            }
            if self.task_deadline[i].is_some_and(|d| d <= now) {
                self.task_deadline[i] = None;
                if !self.services[i].is_down() {
                    let name = self.spec.services[i].name.clone();
                    self.log(Note::TaskTimedOut { name });
                    self.step(ServiceId(i), Event::Kill, now);
                }
            }
        }
        if self.memory_check.is_some_and(|t| t <= now) {
            self.check_memory(now);
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
        if let Some(known) = self.next_timeout.get() {
            return known;
        }
        let next = self.compute_timeout();
        self.next_timeout.set(Some(next));
        next
    }

    /// `poll_timeout` worked out afresh.
    pub(crate) fn compute_timeout(&self) -> Option<Instant> {
        let phase = match self.phase {
            Phase::ShuttingDown { deadline, .. } | Phase::Draining { deadline, .. } => {
                Some(deadline)
            }
            Phase::Running => self
                .memory_check
                .filter(|_| !self.memory_limited().is_empty()),
            Phase::Exited => return None,
        };
        let awaited = self.ready_awaited();
        (0..self.services.len())
            .filter_map(|i| {
                let check = self.checks[i].next.filter(|_| {
                    !self.checks[i].in_flight && self.running_generation(ServiceId(i)).is_some()
                });
                let own = match self.services[i].state {
                    // With a readiness rule this is the readiness timeout. Without one it only
                    // marks the end of `start-secs`, which matters only to a service waiting
                    // for it: otherwise it would be a wake-up for nothing.
                    ServiceState::Running {
                        ready_at: Some(at), ..
                    } => {
                        let spec = &self.spec.services[i];
                        // Health checks begin when it becomes ready: that wake-up is needed too.
                        (spec.ready.is_some()
                            || spec.health.is_some()
                            || awaited.get(i).copied().unwrap_or(false))
                        .then_some(at)
                    }
                    _ => self.services[i].deadline(),
                };
                let task = self.task_deadline[i].filter(|_| !self.services[i].is_down());
                let plan = match self.plans[i] {
                    Some(Plan {
                        due: Due::Mono(at), ..
                    }) => Some(at),
                    Some(_) | None => None,
                };
                own.into_iter().chain(check).chain(task).chain(plan).min()
            })
            .chain(phase)
            .min()
    }

    /// The generation of the service's running instance, if one runs.
    pub fn running_generation(&self, svc: ServiceId) -> Option<Generation> {
        match self.services[svc.0].state {
            ServiceState::Running { generation, .. } => Some(generation),
            _ => None,
        }
    }

    /// The state of a service's checks (for status and `tend health`).
    pub fn checks(&self, svc: ServiceId) -> &Checks {
        &self.checks[svc.0]
    }

    fn on_probe_result(
        &mut self,
        svc: ServiceId,
        generation: Generation,
        health: bool,
        ok: bool,
        now: Instant,
    ) {
        // A result for an instance that is gone, or for a check no longer scheduled, is late.
        if self.running_generation(svc) != Some(generation) || self.checks[svc.0].health != health {
            return;
        }
        self.checks[svc.0].in_flight = false;
        let spec = &self.spec.services[svc.0];
        if !health {
            if ok {
                self.step(svc, Event::Ready, now);
            } else if let Some(rule) = &spec.ready {
                self.checks[svc.0].next = Some(now.after(rule.interval));
            }
            return;
        }
        let Some(rule) = spec.health.clone() else {
            return;
        };
        let name = spec.name.clone();
        let c = &mut self.checks[svc.0];
        c.next = Some(now.after(rule.interval));
        if ok {
            c.failures = 0;
            c.healthy = Some(true);
            return;
        }
        if now < c.count_from {
            return; // still in its start period
        }
        c.failures += 1;
        let failures = c.failures;
        self.log(Note::HealthCheckFailed {
            name: name.clone(),
            failures,
            threshold: rule.failures,
        });
        if failures >= rule.failures {
            self.checks[svc.0].healthy = Some(false);
            self.checks[svc.0].next = None;
            self.log(Note::Unhealthy { name });
            self.step(svc, Event::Unhealthy, now);
        }
    }

    /// The running instances of services with a `memory_limit`.
    fn memory_limited(&self) -> Vec<(ServiceId, Generation)> {
        (0..self.services.len())
            .filter(|&i| !self.retired[i] && self.spec.services[i].memory_limit.is_some())
            .filter_map(|i| Some((ServiceId(i), self.running_generation(ServiceId(i))?)))
            .collect()
    }

    /// The memory check is due: the shell measures the limited services that run, and
    /// the next check is one interval later; with none running, there is no next one.
    fn check_memory(&mut self, now: Instant) {
        let services = self.memory_limited();
        if self.phase != Phase::Running || services.is_empty() {
            self.memory_check = None;
            return;
        }
        self.memory_check = Some(now.after(MEMORY_CHECK_EVERY));
        self.actions.push_back(Action::MeasureMemory { services });
    }

    /// A measurement of a service's memory: above its limit, the running instance is
    /// stopped and restarted as if it had failed its health check (a failed start).
    fn on_memory_usage(
        &mut self,
        svc: ServiceId,
        generation: Generation,
        bytes: u64,
        now: Instant,
    ) {
        if self.phase != Phase::Running || self.running_generation(svc) != Some(generation) {
            return; // a late answer about an instance that is gone, or a shutdown begun
        }
        let spec = &self.spec.services[svc.0];
        let Some(limit) = spec.memory_limit.filter(|&limit| bytes > limit) else {
            return;
        };
        let name = spec.name.clone();
        self.log(Note::OverMemoryLimit {
            name,
            used: bytes,
            limit,
        });
        self.step(svc, Event::Unhealthy, now);
    }

    /// For each service, whether a service still waiting to start needs it to be ready
    /// (`awaited.get(i)`: empty when none waits for any). In one pass over the dependencies
    /// (this runs on every turn of the event loop, so it must stay linear in the number of
    /// services). Allocated only when some service waits: glibc's `calloc` (which `vec!`
    /// of zeros is) takes no block from malloc's per-thread cache, so a block made and freed
    /// on every turn would creep up the init's heap.
    fn ready_awaited(&self) -> Vec<bool> {
        let mut awaited = Vec::new();
        for d in 0..self.services.len() {
            if self.retired[d] || self.services[d].state != ServiceState::Idle {
                continue;
            }
            for dep in &self.spec.services[d].depends_on {
                if dep.condition == Condition::Ready {
                    awaited.resize(self.services.len(), false);
                    awaited[dep.on.0] = true;
                }
            }
        }
        awaited
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
            (SignalRouting::ForwardToMain { .. }, Phase::Running) if signal.is_terminal_stop() => {
                self.log(Note::SignalIgnored { signal });
            }
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
                Effect::AwaitPidFile(generation) => self
                    .actions
                    .push_back(Action::ReadPidFile { svc, generation }),
                Effect::Track(pid) => {
                    // A new instance: its checks start over, a polled readiness probe at once.
                    let polled = self.spec.services[svc.0]
                        .ready
                        .as_ref()
                        .is_some_and(|r| r.probe.is_polled());
                    self.checks[svc.0] = Checks {
                        next: polled.then_some(now),
                        count_from: now,
                        ..Checks::default()
                    };
                    self.pids.insert(pid, svc);
                    // Its memory is measured at the next check: one interval from now when
                    // no other limited service runs (the timer starts afresh), else with
                    // theirs, within one interval.
                    if self.spec.services[svc.0].memory_limit.is_some()
                        && self.memory_limited().iter().all(|&(s, _)| s == svc)
                    {
                        self.memory_check = Some(now.after(MEMORY_CHECK_EVERY));
                    }
                    let name = name();
                    // A pid-file service whose started process has handed over: this pid is
                    // the daemon it left, which tend did not spawn.
                    if self.services[svc.0].launcher.is_some() {
                        self.log(Note::Adopted { name, pid });
                    } else {
                        self.log(Note::Spawned { name, pid });
                    }
                }
                Effect::Untrack(pid) => {
                    self.pids.remove(pid);
                    self.finish_pids.remove(pid);
                }
                Effect::SpawnFinish { generation, status } => {
                    self.actions.push_back(Action::SpawnFinish {
                        svc,
                        generation,
                        status,
                    })
                }
                Effect::TrackFinish(pid) => {
                    self.finish_pids.insert(pid, svc);
                    let name = name();
                    self.log(Note::FinishStarted { name, pid });
                }
                Effect::FinishTimedOut => {
                    let name = name();
                    self.log(Note::FinishTimedOut { name });
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
                Effect::Stopped => {}
                Effect::Ready => {
                    let name = name();
                    self.log(Note::Ready { name });
                    // Health checks begin once it is ready.
                    let c = &mut self.checks[svc.0];
                    c.in_flight = false;
                    c.next = None;
                    if let Some(rule) = &self.spec.services[svc.0].health {
                        c.health = true;
                        c.next = Some(now.after(rule.interval));
                        c.count_from = now.after(rule.start_period);
                        c.failures = 0;
                    }
                }
                Effect::NotReadyInTime => {
                    let name = name();
                    self.log(Note::NotReadyInTime { name });
                }
            }
        }
        self.keep_plan(svc.0, now);
        self.resolve_pending(svc, false);
        self.start_waiting(now);
        self.stop_in_order(now);
        if let Phase::ShuttingDown { code, .. } = self.phase
            && self.services.iter().all(Service::is_down)
        {
            self.drain(code, now);
        }
    }

    fn on_ended(&mut self, svc: ServiceId, outcome: Outcome, success: bool, now: Instant) {
        if self.retired[svc.0] {
            return;
        }
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
                if success && spec.schedule.is_some() {
                    self.last_success[svc.0] = Some(now);
                }
                if self.phase != Phase::Running {
                    return;
                }
                if self.spec.services[svc.0].schedule.is_some() && (success || !critical) {
                    // One run is over; the task is not. Only a critical one's failure ends
                    // tend (below, as any critical service's end).
                    let next = self.next_run_text(svc.0, now);
                    self.log(Note::RunEnded {
                        name: name.clone(),
                        success,
                        code,
                        next,
                    });
                    return;
                }
                self.log(Note::Ended {
                    name: name.clone(),
                    success,
                    code,
                });
                if critical {
                    self.begin_shutdown(ShutdownReason::Critical { name, code }, code, now);
                } else if self.services.iter().enumerate().all(|(i, s)| {
                    self.retired[i]
                        || self.is_shutdown_task(i)
                        || matches!(s.state, ServiceState::Exited { .. })
                }) {
                    self.begin_shutdown(ShutdownReason::AllDone, 0, now);
                }
            }
        }
    }

    /// Answers the control requests that were waiting for `svc`, if it has reached the state
    /// they asked for or clearly will not. `fresh`: the request was just made, so a service
    /// that did not move at all (already running, already stopped) answers too.
    fn resolve_pending(&mut self, svc: ServiceId, fresh: bool) {
        if self.pending.is_empty() {
            return;
        }
        let service = &self.services[svc.0];
        // A pid-file service runs once its daemon is followed, not while the process that
        // starts the daemon runs: answering then gave the launcher's pid, and a client
        // acting on the answer found the daemon not there yet.
        let launching = self.spec.services[svc.0].pid_file.is_some() && service.launcher.is_none();
        let mut done = Vec::new();
        for (k, p) in self.pending.iter_mut().enumerate() {
            if !p.waiting.contains(&svc) {
                continue;
            }
            let verdict = match (p.op, &service.state) {
                (ControlOp::Start | ControlOp::Restart, ServiceState::Running { .. })
                    if launching =>
                {
                    None
                }
                (ControlOp::Start | ControlOp::Restart, ServiceState::Running { pid, .. }) => {
                    Some((true, format!("running (pid {pid})")))
                }
                (ControlOp::Start | ControlOp::Restart, ServiceState::Exited { status }) => {
                    Some((true, format!("completed ({status})")))
                }
                (ControlOp::Start | ControlOp::Restart, ServiceState::Failed { outcome }) => {
                    Some((false, format!("failed: {}", describe(outcome))))
                }
                (ControlOp::Start | ControlOp::Restart, ServiceState::Backoff { .. }) => Some((
                    false,
                    format!(
                        "failed to start ({}); tend keeps retrying",
                        service
                            .last_exit
                            .map_or("spawn failed".to_string(), |s| s.to_string())
                    ),
                )),
                (ControlOp::Start | ControlOp::Restart, ServiceState::Stopped { .. }) if !fresh => {
                    Some((false, "stopped before it was running".into()))
                }
                // A scheduled task's run that ended before it was seen running (it could not
                // be started, or it was that quick).
                (
                    ControlOp::Start | ControlOp::Restart,
                    ServiceState::Scheduled {
                        last: Some((outcome, ok)),
                    },
                ) if !fresh => Some((*ok, format!("ran: {}", describe(outcome)))),
                (ControlOp::Stop, ServiceState::Stopped { .. }) => Some((true, "stopped".into())),
                (
                    ControlOp::Stop,
                    ServiceState::Exited { .. } | ServiceState::Failed { .. } | ServiceState::Idle,
                ) => Some((true, format!("not running ({})", service.state_name()))),
                (_, _) => None,
            };
            if let Some((ok, message)) = verdict {
                p.waiting.retain(|&s| s != svc);
                p.results.push(ControlResult { svc, ok, message });
                if p.waiting.is_empty() {
                    done.push(k);
                }
            }
        }
        for k in done.into_iter().rev() {
            let p = self.pending.remove(k);
            let mut results = p.results;
            results.sort_by_key(|r| r.svc);
            self.actions.push_back(Action::Reply { id: p.id, results });
        }
    }

    fn begin_shutdown(&mut self, reason: ShutdownReason, code: u8, now: Instant) {
        self.log(Note::ShutdownStarted { reason });
        // No run starts any more.
        self.plans.iter_mut().for_each(|p| *p = None);
        self.phase = Phase::ShuttingDown {
            code,
            deadline: now.after(self.spec.shutdown_timeout),
        };
        self.stop_sent = vec![false; self.services.len()];
        self.start_shutdown_tasks(now);
        self.stop_in_order(now);
        if let Phase::ShuttingDown { code, .. } = self.phase
            && self.services.iter().all(Service::is_down)
        {
            self.drain(code, now);
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
                self.signal_leftovers(code, Signal::TERM, grace, now);
            }
            None => self.exit(code),
        }
    }

    /// SIGKILL to everything left; give the reaper a bounded time to see them go.
    fn kill_leftovers(&mut self, code: u8, now: Instant) {
        self.log(Note::KillingDescendants);
        self.signal_leftovers(code, Signal::KILL, KILL_REAP_GRACE, now);
    }

    /// `signal` to every process left, and `grace` for the reaper to see them go before the
    /// next step (SIGKILL after a TERM, exit after a KILL).
    fn signal_leftovers(&mut self, code: u8, signal: Signal, grace: Duration, now: Instant) {
        self.actions.push_back(Action::Kill {
            target: KillTarget::Everyone,
            signal,
        });
        self.phase = Phase::Draining {
            code,
            deadline: now.after(grace),
            killed: signal == Signal::KILL,
        };
    }

    fn exit(&mut self, code: u8) {
        // Nobody will answer these any more: tell the clients so.
        for p in std::mem::take(&mut self.pending) {
            let mut results = p.results;
            results.extend(p.waiting.into_iter().map(|svc| ControlResult {
                svc,
                ok: false,
                message: "tend exited".into(),
            }));
            self.actions.push_back(Action::Reply { id: p.id, results });
        }
        self.actions.push_back(Action::Exit(code));
        self.phase = Phase::Exited;
    }

    fn log(&mut self, note: Note) {
        self.actions.push_back(Action::Log(note));
    }
}

/// What `spec` waits for, by the name its file gives each dependency: the instances of a
/// service with `instances` all count as that service, however many there are.
fn waits_for(services: &[ServiceSpec], spec: &ServiceSpec) -> Vec<(String, Condition)> {
    let mut waits: Vec<(String, Condition)> = Vec::new();
    for dep in &spec.depends_on {
        let Some(on) = services.get(dep.on.0) else {
            continue;
        };
        let name = on.instance_of.as_ref().unwrap_or(&on.name);
        if !waits.iter().any(|(n, c)| n == name && *c == dep.condition) {
            waits.push((name.clone(), dep.condition));
        }
    }
    waits
}

fn same_set(a: &[(String, Condition)], b: &[(String, Condition)]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// Whether two definitions differ at most in their dependencies.
fn same_but_dependencies(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    let bare = |s: &ServiceSpec| ServiceSpec {
        depends_on: Vec::new(),
        ..s.clone()
    };
    bare(a) == bare(b)
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited(status) => status.to_string(),
        Outcome::SpawnFailed(kind) => format!("could not be started (exit {})", kind.exit_code()),
    }
}
