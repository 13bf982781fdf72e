//! Building control-protocol answers from the supervisor's state.

use crate::core::{ExitStatus, ServiceId, ServiceState, Supervisor};
use crate::proto::{ExitReport, ServiceStatus, StatusReport};
use std::time::Duration;

pub fn report(
    sup: &Supervisor,
    ids: &[ServiceId],
    uptime: Duration,
    now: crate::core::Instant,
) -> StatusReport {
    StatusReport {
        services: ids.iter().map(|&id| service(sup, id, now)).collect(),
        shutting_down: sup.phase() != crate::core::Phase::Running,
        orphans_reaped: sup.orphans_reaped(),
        uptime_ms: uptime.as_millis() as u64,
    }
}

fn service(sup: &Supervisor, id: ServiceId, now: crate::core::Instant) -> ServiceStatus {
    let s = sup.service(id);
    let spec = &sup.spec().services[id.0];
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
        ServiceState::Stopped { .. } => Some("stopped on request".into()),
        ServiceState::Blocked { on } => Some(format!(
            "not started: its dependency '{}' failed",
            sup.spec().services[on.0].name
        )),
        ServiceState::Idle => waiting_for(sup, id),
        ServiceState::Starting { .. }
        | ServiceState::Running { .. }
        | ServiceState::Stopping { .. }
        | ServiceState::Exited { .. } => None,
    };
    ServiceStatus {
        name: spec.name.clone(),
        state: s.state_name().to_string(),
        pid: s.pid().map(|p| p.0),
        uptime_ms: s.since().map(|t| now.since(t).as_millis() as u64),
        restarts: s.restarts,
        last_exit: s.last_exit.map(exit_report),
        critical: spec.critical,
        ready: s.is_ready_at(spec, now),
        health: spec.health.as_ref().map(|_| {
            match sup.checks(id).healthy {
                Some(true) => "healthy",
                Some(false) => "unhealthy",
                None => "starting",
            }
            .to_string()
        }),
        reason,
    }
}

pub fn exit_report(status: ExitStatus) -> ExitReport {
    match status {
        ExitStatus::Exited(code) => ExitReport {
            code: Some(code),
            signal: None,
        },
        ExitStatus::Signaled(sig) => ExitReport {
            code: None,
            signal: Some(sig.name()),
        },
    }
}

/// "waiting for db (ready), migrate (completed)": the conditions that do not hold yet.
fn waiting_for(sup: &Supervisor, id: ServiceId) -> Option<String> {
    let waiting: Vec<String> = sup.spec().services[id.0]
        .depends_on
        .iter()
        .filter(|d| sup.condition_holds(**d) != Some(true))
        .map(|d| {
            let condition = match d.condition {
                crate::core::Condition::Started => "started",
                crate::core::Condition::Ready => "ready",
                crate::core::Condition::Completed => "completed",
            };
            format!("{} ({condition})", sup.spec().services[d.on.0].name)
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
        let spec = &sup.spec().services[id.0];
        let s = sup.service(id);
        if spec.health.is_some() && sup.checks(id).healthy == Some(false) {
            return (
                false,
                format!("'{}' is failing its health check", spec.name),
            );
        }
        if spec.critical {
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
        .map(|id| sup.spec().services[id.0].name.as_str())
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
