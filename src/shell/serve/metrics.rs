//! `/metrics`: the supervisor's state in the Prometheus text exposition format (version
//! 0.0.4), built from the core's state alone, so it is a pure function of what it is given.
//!
//! One family after another, each with its `# HELP` and `# TYPE` lines and all its samples
//! together, as the format requires; a family with no sample at all is left out. Services are
//! labelled `service="NAME"`, in the order of the file; retired services are not shown.

use crate::core::supervisor::Due;
use crate::core::{Instant, ServiceState, Supervisor};
use crate::shell::usage::Measured;
use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The metrics as of `now` (the core's clock), for a tend that has been up `uptime`, with
/// what `usage` measured of the services.
pub fn render(sup: &Supervisor, now: Instant, uptime: Duration, usage: &Measured) -> String {
    render_at(sup, now, uptime, SystemTime::now(), usage)
}

/// As `render`, with the wall clock `wall` standing for `now` (tests fix it).
pub fn render_at(
    sup: &Supervisor,
    now: Instant,
    uptime: Duration,
    wall: SystemTime,
    usage: &Measured,
) -> String {
    let wall = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut up = Vec::new();
    let mut ready = Vec::new();
    let mut healthy = Vec::new();
    let mut restarts = Vec::new();
    let mut oom_kills = Vec::new();
    let mut last_exit = Vec::new();
    let mut started = Vec::new();
    let mut cpu = Vec::new();
    let mut memory = Vec::new();
    let mut processes = Vec::new();
    let mut next_run = Vec::new();
    let mut last_success = Vec::new();
    for id in sup.live_services() {
        let Some(spec) = sup.spec().services.get(id.0) else {
            continue;
        };
        let s = sup.service(id);
        let name = spec.name.as_str();
        let running = matches!(s.state, ServiceState::Running { .. });
        up.push((name, u64::from(running).to_string()));
        ready.push((name, u64::from(s.is_ready_at(spec, now)).to_string()));
        // No verdict yet (not running, or its first check is still to come): no sample,
        // rather than a 0 that would read as a failing check.
        if spec.health.is_some()
            && let Some(ok) = sup.checks(id).healthy
        {
            healthy.push((name, u64::from(ok).to_string()));
        }
        restarts.push((name, s.restarts.to_string()));
        oom_kills.push((name, s.oom_kills.to_string()));
        if let Some(status) = s.last_exit {
            last_exit.push((name, status.code().to_string()));
        }
        if let Some(since) = s.since() {
            started.push((name, seconds(wall.saturating_sub(now.since(since)))));
        }
        if let Some(u) = usage.get(&id) {
            cpu.push((name, seconds(u.cpu)));
            memory.push((name, u.memory.to_string()));
            processes.push((name, u.processes.to_string()));
        }
        match sup.next_run(id) {
            Some(Due::Mono(at)) => next_run.push((name, seconds(wall + at.since(now)))),
            Some(Due::Wall(t)) => {
                let since_epoch = t.as_duration().try_into().unwrap_or_default();
                next_run.push((name, seconds(since_epoch)));
            }
            None => {}
        }
        if let Some(at) = sup.last_success(id) {
            last_success.push((name, seconds(wall.saturating_sub(now.since(at)))));
        }
    }

    let mut out = String::new();
    family(
        &mut out,
        "tend_service_up",
        "gauge",
        "Whether the service is running (1) or not (0).",
        &up,
    );
    family(
        &mut out,
        "tend_service_ready",
        "gauge",
        "Whether the service is running and ready (1) or not (0).",
        &ready,
    );
    family(
        &mut out,
        "tend_service_healthy",
        "gauge",
        "Whether the service's health checks pass (1) or have failed their threshold (0); \
         absent before the first verdict and for services without health checks.",
        &healthy,
    );
    family(
        &mut out,
        "tend_service_restarts_total",
        "counter",
        "Instances of the service started after the first.",
        &restarts,
    );
    family(
        &mut out,
        "tend_service_oom_kills_total",
        "counter",
        "Instances of the service the kernel's OOM killer ended (a SIGKILL tend did not send, \
         while the kernel's count of OOM kills rose).",
        &oom_kills,
    );
    family(
        &mut out,
        "tend_service_last_exit_code",
        "gauge",
        "Exit code of the service's latest instance that ended (128+N for signal N).",
        &last_exit,
    );
    family(
        &mut out,
        "tend_service_start_time_seconds",
        "gauge",
        "Start time of the service's current instance, in seconds since the Unix epoch.",
        &started,
    );
    family(
        &mut out,
        "tend_service_cpu_seconds_total",
        "counter",
        "CPU time used by the processes of the service's current instance (its process group) \
         and the children they waited for; starts over with each instance.",
        &cpu,
    );
    family(
        &mut out,
        "tend_service_memory_bytes",
        "gauge",
        "Resident memory of the processes in the service's process group, summed (pages they \
         share count once per process).",
        &memory,
    );
    family(
        &mut out,
        "tend_service_processes",
        "gauge",
        "Processes in the service's process group.",
        &processes,
    );
    family(
        &mut out,
        "tend_service_next_run_time_seconds",
        "gauge",
        "When a scheduled task runs next, in seconds since the Unix epoch; absent while its \
         schedule is not followed (stopped, or tend shutting down).",
        &next_run,
    );
    family(
        &mut out,
        "tend_service_last_success_time_seconds",
        "gauge",
        "When the latest successful run of a scheduled task ended, in seconds since the Unix \
         epoch; absent until one has.",
        &last_success,
    );
    let orphans = sup.orphans_reaped().to_string();
    family(
        &mut out,
        "tend_orphans_reaped_total",
        "counter",
        "Processes tend did not start (orphans it adopted) that it reaped.",
        &[("", orphans)],
    );
    family(
        &mut out,
        "tend_uptime_seconds",
        "gauge",
        "Seconds since tend started.",
        &[("", seconds(uptime))],
    );
    out
}

/// One family: HELP, TYPE, then one sample per `(service, value)`; an empty service name
/// means a sample without labels.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, String)]) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (service, value) in samples {
        if service.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\"}} {value}",
                escape_label(service)
            );
        }
    }
}

/// Seconds with millisecond precision, as Prometheus expects times (`12.345`).
fn seconds(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// A label value: `\`, `"` and newline escaped, as the text format requires.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: `\` and newline escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spec::{HealthRule, Probe};
    use crate::core::tests::common::{at, run_spawning, service, spec};
    use crate::core::*;
    use crate::shell::usage::Usage;

    /// Carries out the actions as the shell would: spawns get pids 100 + 10*generation +
    /// index; probes are returned, everything else is dropped.
    fn run(sup: &mut Supervisor, now: u64) -> Vec<(ServiceId, Generation)> {
        run_spawning(sup, now, |svc, generation| {
            Pid(100 + generation.0 as i32 * 10 + svc.0 as i32)
        })
        .into_iter()
        .filter_map(|a| match a {
            Action::Probe {
                svc, generation, ..
            } => Some((svc, generation)),
            _ => None,
        })
        .collect()
    }

    /// web (health-checked, passing), worker (crashed once, restarted at 0.6 s, so not ready
    /// before its start-secs end at 1.6 s), job (a one-shot task that ended with 3 and gave
    /// up), db (health-checked, no verdict yet); 2 orphans.
    fn scene() -> Supervisor {
        let checked = |name: &str| ServiceSpec {
            health: Some(HealthRule {
                probe: Probe::Tcp {
                    target: HostPort::new("127.0.0.1", 80),
                },
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(500),
                start_period: Duration::ZERO,
                failures: 3,
            }),
            start_secs: Duration::ZERO,
            ..service(name)
        };
        let job = ServiceSpec {
            oneshot: true,
            restart: RestartPolicy::Never,
            start_secs: Duration::ZERO,
            ..service("job")
        };
        let db = ServiceSpec {
            critical: false,
            ..checked("db")
        };
        let mut sup = Supervisor::new(spec(vec![checked("web"), service("worker"), job, db]));
        sup.start(at(0));
        run(&mut sup, 0);
        // worker (pid 111) crashes at 0.5 s and is back at 0.6 s (backoff 100 ms).
        sup.handle(
            at(500),
            Input::ChildExited {
                pid: Pid(111),
                status: ExitStatus::Signaled(Signal::SEGV),
            },
        );
        sup.handle(at(500), Input::GroupEmpty { pgid: Pid(111) });
        run(&mut sup, 500);
        sup.handle_timeout(at(600));
        run(&mut sup, 600);
        // job (pid 112) ends with 3.
        sup.handle(
            at(700),
            Input::ChildExited {
                pid: Pid(112),
                status: ExitStatus::Exited(3),
            },
        );
        sup.handle(at(700), Input::GroupEmpty { pgid: Pid(112) });
        run(&mut sup, 700);
        // web's first health check (due at 1 s) passes; db's is still running at 1.5 s.
        sup.handle_timeout(at(1000));
        for (svc, generation) in run(&mut sup, 1000) {
            if svc == ServiceId(0) {
                sup.handle(
                    at(1010),
                    Input::ProbeResult {
                        svc,
                        generation,
                        health: true,
                        ok: true,
                    },
                );
            }
        }
        run(&mut sup, 1010);
        for pid in [7001, 7002] {
            sup.handle(
                at(1200),
                Input::ChildExited {
                    pid: Pid(pid),
                    status: ExitStatus::Exited(0),
                },
            );
        }
        run(&mut sup, 1200);
        sup
    }

    #[test]
    fn renders_every_family_in_the_text_format() {
        let sup = scene();
        let wall = UNIX_EPOCH + Duration::from_millis(1_700_000_010_000);
        // What /proc would say of web and worker (db's group was not found: no samples).
        let used = |ms, memory, processes| Usage {
            cpu: Duration::from_millis(ms),
            memory,
            processes,
        };
        let usage = Measured::from([
            (ServiceId(0), used(1_250, 8 << 20, 3)),
            (ServiceId(1), used(40, 1 << 20, 1)),
        ]);
        let text = render_at(&sup, at(1500), Duration::from_millis(1_750), wall, &usage);
        let expected = "\
# HELP tend_service_up Whether the service is running (1) or not (0).
# TYPE tend_service_up gauge
tend_service_up{service=\"web\"} 1
tend_service_up{service=\"worker\"} 1
tend_service_up{service=\"job\"} 0
tend_service_up{service=\"db\"} 1
# HELP tend_service_ready Whether the service is running and ready (1) or not (0).
# TYPE tend_service_ready gauge
tend_service_ready{service=\"web\"} 1
tend_service_ready{service=\"worker\"} 0
tend_service_ready{service=\"job\"} 0
tend_service_ready{service=\"db\"} 1
# HELP tend_service_healthy Whether the service's health checks pass (1) or have failed their threshold (0); absent before the first verdict and for services without health checks.
# TYPE tend_service_healthy gauge
tend_service_healthy{service=\"web\"} 1
# HELP tend_service_restarts_total Instances of the service started after the first.
# TYPE tend_service_restarts_total counter
tend_service_restarts_total{service=\"web\"} 0
tend_service_restarts_total{service=\"worker\"} 1
tend_service_restarts_total{service=\"job\"} 0
tend_service_restarts_total{service=\"db\"} 0
# HELP tend_service_oom_kills_total Instances of the service the kernel's OOM killer ended (a SIGKILL tend did not send, while the kernel's count of OOM kills rose).
# TYPE tend_service_oom_kills_total counter
tend_service_oom_kills_total{service=\"web\"} 0
tend_service_oom_kills_total{service=\"worker\"} 0
tend_service_oom_kills_total{service=\"job\"} 0
tend_service_oom_kills_total{service=\"db\"} 0
# HELP tend_service_last_exit_code Exit code of the service's latest instance that ended (128+N for signal N).
# TYPE tend_service_last_exit_code gauge
tend_service_last_exit_code{service=\"worker\"} 139
tend_service_last_exit_code{service=\"job\"} 3
# HELP tend_service_start_time_seconds Start time of the service's current instance, in seconds since the Unix epoch.
# TYPE tend_service_start_time_seconds gauge
tend_service_start_time_seconds{service=\"web\"} 1700000008.500
tend_service_start_time_seconds{service=\"worker\"} 1700000009.100
tend_service_start_time_seconds{service=\"db\"} 1700000008.500
# HELP tend_service_cpu_seconds_total CPU time used by the processes of the service's current instance (its process group) and the children they waited for; starts over with each instance.
# TYPE tend_service_cpu_seconds_total counter
tend_service_cpu_seconds_total{service=\"web\"} 1.250
tend_service_cpu_seconds_total{service=\"worker\"} 0.040
# HELP tend_service_memory_bytes Resident memory of the processes in the service's process group, summed (pages they share count once per process).
# TYPE tend_service_memory_bytes gauge
tend_service_memory_bytes{service=\"web\"} 8388608
tend_service_memory_bytes{service=\"worker\"} 1048576
# HELP tend_service_processes Processes in the service's process group.
# TYPE tend_service_processes gauge
tend_service_processes{service=\"web\"} 3
tend_service_processes{service=\"worker\"} 1
# HELP tend_orphans_reaped_total Processes tend did not start (orphans it adopted) that it reaped.
# TYPE tend_orphans_reaped_total counter
tend_orphans_reaped_total 2
# HELP tend_uptime_seconds Seconds since tend started.
# TYPE tend_uptime_seconds gauge
tend_uptime_seconds 1.750
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_failing_check_reads_0_and_retired_services_are_gone() {
        let mut sup = scene();
        // web fails its next three checks (its threshold): unhealthy, and being stopped.
        for t in [2010, 3020, 4030] {
            sup.handle_timeout(at(t));
            for (svc, generation) in run(&mut sup, t) {
                if svc == ServiceId(0) {
                    sup.handle(
                        at(t + 10),
                        Input::ProbeResult {
                            svc,
                            generation,
                            health: true,
                            ok: false,
                        },
                    );
                }
            }
            run(&mut sup, t + 10);
        }
        let text = render_at(&sup, at(4100), Duration::ZERO, UNIX_EPOCH, &Measured::new());
        assert!(
            text.contains("\ntend_service_healthy{service=\"web\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\ntend_service_up{service=\"web\"} 0\n"),
            "stopping is not up: {text}"
        );
        // A reload without worker retires it: its samples go.
        let mut new = sup.spec().clone();
        new.services.remove(1);
        sup.reload(at(4200), new).unwrap();
        run(&mut sup, 4200);
        let text = render_at(&sup, at(4300), Duration::ZERO, UNIX_EPOCH, &Measured::new());
        assert!(!text.contains("worker"), "{text}");
        assert!(
            text.contains("tend_service_up{service=\"db\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn a_wall_clock_before_the_start_does_not_underflow() {
        let sup = scene();
        let text = render_at(&sup, at(1500), Duration::ZERO, UNIX_EPOCH, &Measured::new());
        assert!(text.contains("tend_service_start_time_seconds{service=\"web\"} 0.000\n"));
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
        assert_eq!(escape_label("web.v2_x-y"), "web.v2_x-y");
        assert_eq!(escape_help("a\\b\nc \"d\""), "a\\\\b\\nc \"d\"");
        let mut out = String::new();
        family(&mut out, "m", "gauge", "h", &[("x\"y", "1".into())]);
        assert_eq!(out, "# HELP m h\n# TYPE m gauge\nm{service=\"x\\\"y\"} 1\n");
        let mut out = String::new();
        family(&mut out, "m", "gauge", "h", &[]);
        assert_eq!(out, "", "an empty family is left out");
    }

    #[test]
    fn seconds_have_millisecond_precision() {
        assert_eq!(seconds(Duration::ZERO), "0.000");
        assert_eq!(seconds(Duration::from_micros(1_234_567)), "1.234");
        assert_eq!(seconds(Duration::from_secs(86_400)), "86400.000");
    }

    /// A scheduled task's next run and last success, on the wall clock: an `@every` task's
    /// from the monotonic clock, a cron task's as planned.
    #[test]
    fn scheduled_tasks_have_their_next_run_and_last_success() {
        let task = |name: &str, schedule: &str| ServiceSpec {
            oneshot: true,
            restart: RestartPolicy::Never,
            start_secs: Duration::ZERO,
            schedule: Some(crate::config::cron::parse(schedule).unwrap()),
            ..service(name)
        };
        let mut sup = Supervisor::new(spec(vec![
            task("tick", "@every 10s"),
            task("nightly", "0 3 * * *"),
        ]));
        sup.start(at(0));
        let wall: jiff::Timestamp = "2023-11-14T22:13:20Z".parse().unwrap(); // 1700000000
        sup.handle(at(0), Input::WallClock { wall, set: false });
        sup.handle_timeout(at(10_000));
        run(&mut sup, 10_000);
        let pid = sup.service(ServiceId(0)).pid().unwrap();
        sup.handle(
            at(10_500),
            Input::ChildExited {
                pid,
                status: ExitStatus::Exited(0),
            },
        );
        sup.handle(at(10_500), Input::GroupEmpty { pgid: pid });
        run(&mut sup, 10_500);
        let text = render_at(
            &sup,
            at(12_000),
            Duration::from_secs(12),
            UNIX_EPOCH + Duration::from_secs(1_700_000_012),
            &Default::default(),
        );
        assert!(
            text.contains(
                "tend_service_next_run_time_seconds{service=\"tick\"} 1700000020.000\n\
                 tend_service_next_run_time_seconds{service=\"nightly\"} 1700017200.000\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE tend_service_last_success_time_seconds gauge\n\
                 tend_service_last_success_time_seconds{service=\"tick\"} 1700000010.500\n"
            ),
            "{text}"
        );
    }
}
