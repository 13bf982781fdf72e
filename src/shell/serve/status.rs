//! Building control-protocol answers from the supervisor's state.

use crate::core::supervisor::Due;
use crate::core::{ExitStatus, Instant, ServiceId, ServiceState, Supervisor};
use crate::proto::{ExitReport, ServiceStatus, StatusReport};
use crate::shell::usage::Measured;
use jiff::Timestamp;
use std::time::{Duration, SystemTime};

/// The status of `ids`, with what `usage` measured of them.
pub fn report(
    sup: &Supervisor,
    ids: &[ServiceId],
    uptime: Duration,
    now: Instant,
    usage: &Measured,
) -> StatusReport {
    let wall = Timestamp::try_from(SystemTime::now()).unwrap_or(Timestamp::UNIX_EPOCH);
    report_at(sup, ids, uptime, now, wall, usage)
}

/// As `report`, with the wall clock reading `wall` at `now` (tests fix it).
pub fn report_at(
    sup: &Supervisor,
    ids: &[ServiceId],
    uptime: Duration,
    now: Instant,
    wall: Timestamp,
    usage: &Measured,
) -> StatusReport {
    let clock = Clock { now, wall };
    StatusReport {
        services: ids
            .iter()
            .filter_map(|&id| service(sup, id, clock, usage))
            .collect(),
        shutting_down: sup.phase() != crate::core::Phase::Running,
        orphans_reaped: sup.orphans_reaped(),
        uptime_ms: uptime.as_millis() as u64,
    }
}

/// The moment a report is about, on both clocks.
#[derive(Clone, Copy)]
struct Clock {
    now: Instant,
    wall: Timestamp,
}

impl Clock {
    /// When a scheduled task is due, on the wall clock.
    fn wall_of(self, due: Due) -> Timestamp {
        match due {
            Due::Wall(t) => t,
            Due::Mono(at) => {
                let ahead = jiff::SignedDuration::try_from(at.since(self.now)).unwrap_or_default();
                self.wall.checked_add(ahead).unwrap_or(self.wall)
            }
        }
    }

    /// When something that happened at `at` (in the past) happened, on the wall clock.
    fn wall_before(self, at: Instant) -> Timestamp {
        let ago = jiff::SignedDuration::try_from(self.now.since(at)).unwrap_or_default();
        self.wall.checked_sub(ago).unwrap_or(self.wall)
    }
}

/// Milliseconds since the Unix epoch (0 for times before it).
fn unix_ms(t: Timestamp) -> u64 {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

fn service(
    sup: &Supervisor,
    id: ServiceId,
    clock: Clock,
    usage: &Measured,
) -> Option<ServiceStatus> {
    let now = clock.now;
    let spec = sup.service_spec(id)?;
    let used = usage.get(&id);
    let s = sup.service(id);
    let next_run = sup.next_run(id).map(|due| clock.wall_of(due));
    let reason = match &s.state {
        ServiceState::Failed { .. } if s.failures > spec.max_restarts && spec.max_restarts > 0 => {
            Some(format!(
                "gave up after {} failed starts in a row",
                s.failures
            ))
        }
        ServiceState::Failed { outcome } => Some(format!("ended: exit code {}", outcome.code())),
        ServiceState::Backoff { until } => Some(format!(
            "restarting in {} ms ({} failed in a row)",
            until.since(now).as_millis(),
            s.failures
        )),
        // Loaded stopped, and never started since.
        ServiceState::Stopped { status: None } if !spec.autostart && !s.ever_started() => Some(
            format!("autostart = false: `tend start {}` starts it", spec.name),
        ),
        ServiceState::Stopped { .. } => Some("stopped on request".into()),
        ServiceState::Blocked { on } => Some(format!(
            "not started: its dependency '{}' failed",
            sup.name(*on)
        )),
        ServiceState::Idle if spec.run_on == crate::core::RunOn::Shutdown => {
            Some("runs when tend shuts down".into())
        }
        ServiceState::Scheduled { last } => {
            let next = match next_run {
                Some(t) => format!(
                    "next run {} (in {})",
                    crate::core::schedule::civil_text(&sup.spec().timezone, t),
                    crate::proto::duration_text(
                        u64::try_from(t.duration_since(clock.wall).unsigned_abs().as_millis())
                            .unwrap_or(u64::MAX)
                    )
                ),
                None => "no run planned".to_string(),
            };
            match last {
                Some((outcome, false)) => Some(format!(
                    "{next}; the last run failed: {}",
                    describe_outcome(outcome)
                )),
                Some((_, true)) | None => Some(next),
            }
        }
        ServiceState::Idle => waiting_for(sup, id),
        ServiceState::Starting { .. }
        | ServiceState::Running { .. }
        | ServiceState::Stopping { .. }
        | ServiceState::Finishing { .. }
        | ServiceState::Exited { .. } => None,
    };
    // A health verdict belongs to a live instance: a stopped or ended service has none.
    let live = matches!(
        s.state,
        ServiceState::Starting { .. } | ServiceState::Running { .. }
    );
    Some(ServiceStatus {
        name: spec.name.clone(),
        instance_of: spec.instance_of.clone(),
        state: s.state_name().to_string(),
        pid: s.pid().map(|p| p.0),
        uptime_ms: s.since().map(|t| now.since(t).as_millis() as u64),
        restarts: s.restarts,
        last_exit: s.last_exit.map(|status| ExitReport {
            oom: s.last_exit_oom,
            ..exit_report(status)
        }),
        critical: spec.critical,
        ready: s.is_ready_at(spec, now),
        health: spec.health.as_ref().filter(|_| live).map(|_| {
            match sup.checks(id).healthy {
                Some(true) => "healthy",
                Some(false) => "unhealthy",
                None => "starting",
            }
            .to_string()
        }),
        reason,
        cpu_ms: used.map(|u| u.cpu.as_millis() as u64),
        memory_bytes: used.map(|u| u.memory),
        processes: used.map(|u| u.processes),
        schedule: spec.schedule.as_ref().map(|s| s.text.clone()),
        next_run_ms: next_run.map(unix_ms),
        last_success_ms: sup
            .last_success(id)
            .map(|at| unix_ms(clock.wall_before(at))),
    })
}

/// "exit code 1", "killed by SIGTERM", "could not be started (127)".
fn describe_outcome(outcome: &crate::core::Outcome) -> String {
    match outcome {
        crate::core::Outcome::Exited(status) => status.to_string(),
        crate::core::Outcome::SpawnFailed(kind) => {
            format!("could not be started (exit {})", kind.exit_code())
        }
    }
}

pub fn exit_report(status: ExitStatus) -> ExitReport {
    match status {
        ExitStatus::Exited(code) => ExitReport {
            code: Some(code),
            signal: None,
            oom: false,
        },
        ExitStatus::Signaled(sig) => ExitReport {
            code: None,
            signal: Some(sig.name()),
            oom: false,
        },
    }
}

/// "waiting for db (ready), migrate (completed)": the conditions that do not hold yet.
fn waiting_for(sup: &Supervisor, id: ServiceId) -> Option<String> {
    let waiting: Vec<String> = sup
        .service_spec(id)?
        .depends_on
        .iter()
        .filter(|d| sup.condition_holds(**d) != Some(true))
        .map(|d| {
            let condition = match d.condition {
                crate::core::Condition::Started => "started",
                crate::core::Condition::Ready => "ready",
                crate::core::Condition::Completed => "completed",
            };
            format!("{} ({condition})", sup.name(d.on))
        })
        .collect();
    (!waiting.is_empty()).then(|| format!("waiting for {}", waiting.join(", ")))
}

/// `tend health`: every critical service running and ready, no health check failing.
pub fn health(sup: &Supervisor, now: crate::core::Instant) -> (bool, String) {
    if sup.phase() != crate::core::Phase::Running {
        return (false, "tend is shutting down".into());
    }
    let mut critical = 0;
    for id in sup.live_services() {
        let Some(spec) = sup.service_spec(id) else {
            continue;
        };
        let s = sup.service(id);
        if spec.health.is_some() && sup.checks(id).healthy == Some(false) {
            return (
                false,
                format!("'{}' is failing its health check", spec.name),
            );
        }
        // A shutdown task runs only once tend is shutting down, when it is unhealthy anyway;
        // a scheduled task runs now and then, and ends tend itself if a run fails.
        if spec.critical && spec.run_on == crate::core::RunOn::Start && spec.schedule.is_none() {
            critical += 1;
            if !s.is_ready_at(spec, now) {
                return (
                    false,
                    format!(
                        "critical service '{}' is {}{}",
                        spec.name,
                        s.state_name(),
                        if s.state_name() == "running" {
                            " but not ready yet"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
    }
    let failing: Vec<&str> = sup
        .live_services()
        .filter(|&id| {
            matches!(
                sup.service(id).state,
                ServiceState::Failed { .. } | ServiceState::Blocked { .. }
            )
        })
        .map(|id| sup.name(id))
        .collect();
    if let Some(name) = failing.first() {
        // A failed service keeps the container up on purpose (to inspect it), but it is not
        // healthy and should get no traffic.
        return (false, format!("'{name}' has failed"));
    }
    (
        true,
        format!("healthy: {critical} critical service(s) running and ready"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::{HealthRule, HttpTarget, Probe, ServiceSpec};
    use crate::core::tests::common::{at, run_spawning, service, spec};
    use crate::core::{ControlOp, Generation, Input, Pid, Signal};

    fn web_with_health_check() -> Supervisor {
        let web = ServiceSpec {
            health: Some(HealthRule {
                probe: Probe::Http {
                    target: HttpTarget::new("127.0.0.1", 80, "/healthz"),
                },
                interval: Duration::from_millis(100),
                timeout: Duration::from_millis(50),
                start_period: Duration::ZERO,
                failures: 3,
            }),
            ..service("web")
        };
        let mut sup = Supervisor::new(spec(vec![web]));
        sup.start(at(0));
        run_spawning(&mut sup, 0, |_, _| Pid(10));
        sup
    }

    fn health_shown(sup: &Supervisor, now: u64) -> Option<String> {
        let report = report(
            sup,
            &[ServiceId(0)],
            Duration::ZERO,
            at(now),
            &Measured::new(),
        );
        report.services.into_iter().next().and_then(|s| s.health)
    }

    /// A main process the OOM killer ended shows as such in the last exit, and in the
    /// metrics' counter.
    #[test]
    fn an_oom_kill_is_told_in_the_last_exit() {
        let mut sup = Supervisor::new(spec(vec![service("web")]));
        sup.handle(at(0), Input::OomKills { count: 2 });
        sup.start(at(0));
        run_spawning(&mut sup, 0, |_, _| Pid(10));
        sup.handle(at(50), Input::OomKills { count: 3 });
        let status = crate::core::ExitStatus::Signaled(Signal::KILL);
        sup.handle(
            at(50),
            Input::ChildExited {
                pid: Pid(10),
                status,
            },
        );
        let r = report(
            &sup,
            &[ServiceId(0)],
            Duration::ZERO,
            at(60),
            &Measured::new(),
        );
        let exit = r.services[0].last_exit.clone().unwrap();
        assert_eq!(
            (exit.code, exit.signal.as_deref(), exit.oom),
            (None, Some("KILL"), true)
        );
        let text =
            crate::shell::serve::metrics::render(&sup, at(60), Duration::ZERO, &Measured::new());
        assert!(
            text.contains("\ntend_service_oom_kills_total{service=\"web\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn usage_is_shown_as_measured_and_absent_otherwise() {
        let sup = web_with_health_check();
        let used = crate::shell::usage::Usage {
            cpu: Duration::from_micros(1_234_900),
            memory: 5 << 20,
            processes: 3,
        };
        let usage = Measured::from([(ServiceId(0), used)]);
        let r = report(&sup, &[ServiceId(0)], Duration::ZERO, at(0), &usage);
        let s = &r.services[0];
        assert_eq!(
            (s.cpu_ms, s.memory_bytes, s.processes),
            (Some(1234), Some(5 << 20), Some(3))
        );
        let r = report(
            &sup,
            &[ServiceId(0)],
            Duration::ZERO,
            at(0),
            &Measured::new(),
        );
        let s = &r.services[0];
        assert_eq!((s.cpu_ms, s.memory_bytes, s.processes), (None, None, None));
    }

    /// HEALTH is the verdict on a live instance: "healthy" while it passes its checks, and
    /// nothing once the service was stopped on request (it used to stay "healthy").
    #[test]
    fn a_service_stopped_on_request_shows_no_health() {
        let mut sup = web_with_health_check();
        assert_eq!(health_shown(&sup, 0).as_deref(), Some("starting"));
        // Ready after start-secs (1 s), first check one interval later.
        sup.handle_timeout(at(1000));
        sup.handle_timeout(at(1100));
        while sup.poll_action().is_some() {}
        let svc = ServiceId(0);
        let generation = Generation(1);
        let result = Input::ProbeResult {
            svc,
            generation,
            health: true,
            ok: true,
        };
        sup.handle(at(1110), result);
        assert_eq!(health_shown(&sup, 1110).as_deref(), Some("healthy"));
        sup.control(at(1200), None, ControlOp::Stop, &[svc])
            .unwrap_or_else(|e| panic!("{e}"));
        while sup.poll_action().is_some() {}
        let status = crate::core::ExitStatus::Signaled(Signal::TERM);
        sup.handle(
            at(1210),
            Input::ChildExited {
                pid: Pid(10),
                status,
            },
        );
        sup.handle(at(1210), Input::GroupEmpty { pgid: Pid(10) });
        assert_eq!(sup.service(svc).state_name(), "stopped");
        assert_eq!(health_shown(&sup, 1210), None);
    }

    /// A scheduled task is `scheduled` between runs, with its next run in the zone's time
    /// and in the JSON, and its last success once there is one.
    #[test]
    fn a_scheduled_task_shows_its_next_run() {
        let nightly = ServiceSpec {
            oneshot: true,
            restart: crate::core::RestartPolicy::Never,
            start_secs: Duration::ZERO,
            schedule: Some(crate::config::cron::parse("30 2 * * *").unwrap()),
            ..service("nightly")
        };
        let mut s = spec(vec![nightly]);
        s.timezone = crate::core::tests::cron::zone("Europe/Berlin");
        let mut sup = Supervisor::new(s);
        sup.start(at(0));
        let wall: Timestamp = "2026-03-28T22:00:00Z".parse().unwrap();
        sup.handle(at(0), Input::WallClock { wall, set: false });
        let report = report_at(
            &sup,
            &[ServiceId(0)],
            Duration::ZERO,
            at(60_000),
            wall,
            &Measured::default(),
        );
        let status = &report.services[0];
        assert_eq!(status.state, "scheduled");
        // 02:30 does not exist that night: it runs when the clocks go to 03:00 CEST.
        assert_eq!(
            status.reason.as_deref(),
            Some("next run 2026-03-29 03:00:00 CEST (in 3h0m)")
        );
        assert_eq!(status.schedule.as_deref(), Some("30 2 * * *"));
        assert_eq!(status.next_run_ms, Some(1_774_746_000_000));
        assert_eq!(status.last_success_ms, None);
        let json = String::from_utf8(crate::proto::encode(&status)).unwrap();
        assert!(json.contains(r#""next_run_ms":1774746000000"#), "{json}");
        assert!(
            !json.contains("last_success_ms"),
            "absent, not null: {json}"
        );
    }

    /// A critical scheduled task is not running between its runs, and that is not unhealthy.
    #[test]
    fn a_critical_scheduled_task_between_runs_is_healthy() {
        let check = ServiceSpec {
            critical: true,
            oneshot: true,
            restart: crate::core::RestartPolicy::Never,
            start_secs: Duration::ZERO,
            schedule: Some(crate::config::cron::parse("@every 1h").unwrap()),
            ..service("check")
        };
        let mut sup = Supervisor::new(spec(vec![service("web"), check]));
        sup.start(at(0));
        run_spawning(&mut sup, 0, |_, _| Pid(10));
        sup.handle_timeout(at(1000));
        assert_eq!(sup.service(ServiceId(1)).state_name(), "scheduled");
        assert_eq!(
            health(&sup, at(1000)),
            (
                true,
                "healthy: 0 critical service(s) running and ready".to_string()
            )
        );
    }
}
