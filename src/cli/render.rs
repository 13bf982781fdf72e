//! tend's answers as text for people, and what they mean for the client's exit code.

use super::table;
use crate::proto::{ExitReport, LogLine, ReloadReport, ServiceResult, StatusReport};
use crate::shell::logs::timestamp;

/// `tend status NAME...` when a named service is not running (the LSB code for "not running").
pub const NOT_RUNNING: i32 = 3;

/// The state that counts as up for `tend status NAME` (the process exists and is not being
/// stopped).
const RUNNING: &str = "running";

/// `exit 0`, `SIGKILL`, `oom` (the OOM killer's SIGKILL), or `-` for no exit yet.
pub fn last_exit(exit: Option<&ExitReport>) -> String {
    match exit {
        Some(ExitReport { oom: true, .. }) => "oom".to_string(),
        Some(ExitReport {
            code: Some(code), ..
        }) => format!("exit {code}"),
        Some(ExitReport {
            signal: Some(sig), ..
        }) => {
            if sig.bytes().all(|b| b.is_ascii_digit()) {
                format!("signal {sig}")
            } else if sig.starts_with("SIG") {
                sig.clone()
            } else {
                format!("SIG{sig}")
            }
        }
        _ => "-".to_string(),
    }
}

/// The status table, then a line about tend itself. A REASON column appears only when some
/// service has a reason, so the common table stays narrow.
pub fn status(report: &StatusReport) -> String {
    let with_reason = report.services.iter().any(|s| s.reason.is_some());
    let with_health = report.services.iter().any(|s| s.health.is_some());
    let mut header = vec![
        "NAME",
        "STATE",
        "READY",
        "PID",
        "UPTIME",
        "CPU",
        "MEM",
        "RESTARTS",
        "LAST-EXIT",
    ];
    if with_health {
        header.push("HEALTH");
    }
    if with_reason {
        header.push("REASON");
    }
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = report
        .services
        .iter()
        .map(|s| {
            let mut row = vec![
                s.name.clone(),
                s.state.clone(),
                match (s.ready, s.state.as_str()) {
                    (true, _) => "yes".to_string(),
                    (false, "running" | "starting") => "no".to_string(),
                    (false, _) => dash(),
                },
                s.pid.map_or_else(dash, |p| p.to_string()),
                s.uptime_ms.map_or_else(dash, table::duration),
                s.cpu_ms.map_or_else(dash, table::cpu),
                s.memory_bytes.map_or_else(dash, table::bytes),
                s.restarts.to_string(),
                last_exit(s.last_exit.as_ref()),
            ];
            if with_health {
                row.push(s.health.clone().unwrap_or_else(dash));
            }
            if with_reason {
                row.push(s.reason.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    let mut out = table::render(&header, &rows);
    out.push_str(&format!(
        "tend: up {}, {} orphan{} reaped{}\n",
        table::duration(report.uptime_ms),
        report.orphans_reaped,
        if report.orphans_reaped == 1 { "" } else { "s" },
        if report.shutting_down {
            ", shutting down"
        } else {
            ""
        }
    ));
    out
}

/// 0, or [`NOT_RUNNING`] when a service named on the command line is not running (or not in
/// the report at all); the name of a service with `instances` is running when each of its
/// instances is. Without names, tend having answered is success.
pub fn status_code(report: &StatusReport, named: &[String]) -> i32 {
    let up = |name: &String| {
        let exact = report.services.iter().any(|s| &s.name == name);
        let mut these = report
            .services
            .iter()
            .filter(|s| &s.name == name || (!exact && s.instance_of.as_ref() == Some(name)));
        let first = these.next();
        first.is_some_and(|s| s.state == RUNNING) && these.all(|s| s.state == RUNNING)
    };
    if named.iter().all(up) { 0 } else { NOT_RUNNING }
}

/// `web: stopped`, one line per service; and whether every one went well.
pub fn done(results: &[ServiceResult]) -> (String, bool) {
    let text = results
        .iter()
        .map(|r| format!("{}: {}\n", r.service, r.message))
        .collect();
    (text, results.iter().all(|r| r.ok))
}

/// One line per kind of change that happened, e.g. `added: a, b`; unchanged services last.
pub fn reload(report: &ReloadReport) -> String {
    let mut out = String::new();
    for (what, names) in [
        ("added", &report.added),
        ("removed", &report.removed),
        ("changed", &report.changed),
        ("unchanged", &report.unchanged),
    ] {
        if !names.is_empty() {
            out.push_str(&format!("{what}: {}\n", names.join(", ")));
        }
    }
    if report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty() {
        out.push_str("reloaded: nothing changed\n");
    }
    out
}

/// `web | the line`, or with `timestamps` `2026-11-25T19:32:15.123Z web | the line` (the
/// shape of `log-timestamps` in tend's own output). Both streams go to stdout, in the order
/// tend read them.
pub fn log_line(line: &LogLine, timestamps: bool) -> String {
    if timestamps {
        let stamp = timestamp::format_unix_millis(line.time_ms);
        format!("{stamp} {} | {}\n", line.service, line.line)
    } else {
        format!("{} | {}\n", line.service, line.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ServiceStatus;

    fn svc(name: &str, state: &str) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            instance_of: None,
            state: state.into(),
            pid: None,
            uptime_ms: None,
            restarts: 0,
            last_exit: None,
            critical: false,
            ready: false,
            health: None,
            reason: None,
            cpu_ms: None,
            memory_bytes: None,
            processes: None,
            schedule: None,
            next_run_ms: None,
            last_success_ms: None,
        }
    }

    fn report(services: Vec<ServiceStatus>) -> StatusReport {
        StatusReport {
            services,
            shutting_down: false,
            orphans_reaped: 0,
            uptime_ms: 312_000,
        }
    }

    #[test]
    fn last_exit_shows_a_code_or_a_signal() {
        let exit = |code, signal: Option<&str>| ExitReport {
            code,
            signal: signal.map(str::to_string),
            oom: false,
        };
        assert_eq!(last_exit(None), "-");
        assert_eq!(last_exit(Some(&exit(Some(0), None))), "exit 0");
        assert_eq!(last_exit(Some(&exit(Some(137), None))), "exit 137");
        assert_eq!(last_exit(Some(&exit(None, Some("KILL")))), "SIGKILL");
        assert_eq!(last_exit(Some(&exit(None, Some("SIGTERM")))), "SIGTERM");
        assert_eq!(last_exit(Some(&exit(None, Some("RTMIN+2")))), "SIGRTMIN+2");
        assert_eq!(last_exit(Some(&exit(None, Some("40")))), "signal 40");
        assert_eq!(last_exit(Some(&exit(None, None))), "-");
        let oom = ExitReport {
            oom: true,
            ..exit(None, Some("KILL"))
        };
        assert_eq!(last_exit(Some(&oom)), "oom");
    }

    #[test]
    fn the_status_table_has_dashes_for_what_is_unknown() {
        let mut web = svc("web", "running");
        web.ready = true;
        web.pid = Some(42);
        web.uptime_ms = Some(7_380_000);
        web.restarts = 2;
        web.cpu_ms = Some(1_234);
        web.memory_bytes = Some(530 << 20);
        web.processes = Some(3);
        web.last_exit = Some(ExitReport {
            code: None,
            signal: Some("KILL".into()),
            oom: false,
        });
        let text = status(&report(vec![web, svc("worker", "stopped")]));
        assert_eq!(
            text,
            "NAME    STATE    READY  PID  UPTIME  CPU    MEM     RESTARTS  LAST-EXIT\n\
             web     running  yes    42   2h3m    1.23s  530MiB  2         SIGKILL\n\
             worker  stopped  -      -    -       -      -       0         -\n\
             tend: up 5m12s, 0 orphans reaped\n"
        );
    }

    #[test]
    fn a_reason_adds_a_column() {
        let mut bad = svc("bad", "failed");
        bad.reason = Some("gave up after 11 failed starts".into());
        let mut r = report(vec![svc("ok", "running"), bad]);
        r.orphans_reaped = 1;
        r.shutting_down = true;
        let text = status(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with("LAST-EXIT  REASON"), "{text}");
        assert!(lines[1].ends_with(" -"), "no trailing blanks: {text:?}");
        assert!(
            lines[2].ends_with("-          gave up after 11 failed starts"),
            "{text}"
        );
        assert_eq!(lines[3], "tend: up 5m12s, 1 orphan reaped, shutting down");
    }

    #[test]
    fn status_code_is_3_when_a_named_service_is_not_running() {
        let r = report(vec![svc("a", "running"), svc("b", "stopped")]);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(status_code(&r, &[]), 0, "no names: answering is success");
        assert_eq!(status_code(&r, &names(&["a"])), 0);
        assert_eq!(status_code(&r, &names(&["a", "b"])), NOT_RUNNING);
        assert_eq!(status_code(&r, &names(&["missing"])), NOT_RUNNING);
        for state in [
            "starting", "stopping", "backoff", "exited", "failed", "idle",
        ] {
            let r = report(vec![svc("x", state)]);
            assert_eq!(status_code(&r, &names(&["x"])), NOT_RUNNING, "{state}");
        }
        // The name of a service with instances: running when each instance is.
        let instance = |i: u32, state: &str| ServiceStatus {
            instance_of: Some("w".into()),
            ..svc(&format!("w-{i}"), state)
        };
        let r = report(vec![instance(0, "running"), instance(1, "running")]);
        assert_eq!(status_code(&r, &names(&["w"])), 0);
        let r = report(vec![instance(0, "running"), instance(1, "stopped")]);
        assert_eq!(status_code(&r, &names(&["w"])), NOT_RUNNING);
        assert_eq!(status_code(&r, &names(&["w-0"])), 0);
    }

    #[test]
    fn done_is_one_line_per_service_and_fails_if_any_failed() {
        let result = |service: &str, ok, message: &str| ServiceResult {
            service: service.into(),
            ok,
            message: message.into(),
        };
        let (text, ok) = done(&[
            result("web", true, "stopped"),
            result("db", true, "already stopped"),
        ]);
        assert_eq!(text, "web: stopped\ndb: already stopped\n");
        assert!(ok);
        let (_, ok) = done(&[
            result("web", true, "running (pid 4)"),
            result("db", false, "failed: exit code 1"),
        ]);
        assert!(!ok);
    }

    #[test]
    fn reload_lists_each_kind_of_change() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let r = ReloadReport {
            added: names(&["c", "d"]),
            removed: names(&["b"]),
            changed: vec![],
            unchanged: names(&["a"]),
        };
        assert_eq!(reload(&r), "added: c, d\nremoved: b\nunchanged: a\n");
        let r = ReloadReport {
            unchanged: names(&["a"]),
            ..ReloadReport::default()
        };
        assert_eq!(reload(&r), "unchanged: a\nreloaded: nothing changed\n");
    }

    #[test]
    fn log_lines_are_prefixed_with_the_service() {
        let l = LogLine {
            service: "web".into(),
            stream: "stderr".into(),
            time_ms: 1_764_000_000_123,
            line: "GET / 200".into(),
        };
        assert_eq!(log_line(&l, false), "web | GET / 200\n");
        assert_eq!(
            log_line(&l, true),
            "2025-11-24T16:00:00.123Z web | GET / 200\n"
        );
    }
}
