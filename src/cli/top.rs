//! `tend top`: the services' CPU use, CPU time, memory and processes, refreshed every
//! second, busiest first; plain text, no terminal library.
//!
//! Each second is one `status` request (a new connection, as for `tend status`). CPU% is
//! the CPU time an instance used between two answers over the time between them, both as
//! tend measured them, so the client's own delays do not skew it; the first table, with no
//! answer before it, shows the use since each instance started. SIGINT and SIGTERM are
//! blocked and waited for between two tables, so Ctrl-C ends `top` between two writes, with
//! exit code 0; so does tend going away (its socket gone, a connection it closes, or no
//! answer within 5 s, so that Ctrl-C never waits longer than that).

use super::client::{print, request, unexpected};
use super::commands::TopArgs;
use super::table;
use crate::core::Signal;
use crate::proto::{Command, Response, ServiceStatus, StatusReport};
use crate::sys::signals::Waiter;
use std::ffi::c_int;
use std::io::IsTerminal;
use std::time::Duration;

/// Time between two tables.
const EVERY: Duration = Duration::from_secs(1);

/// The longest a request of `top` waits for its answer, whatever --timeout says.
const STUCK: Duration = Duration::from_secs(5);

/// On a terminal, before each table: cursor home, clear the screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

pub fn run(mut a: TopArgs) -> Result<c_int, String> {
    // SIGINT waits while a request is out: a tend that does not answer must not keep
    // Ctrl-C waiting for the whole --timeout.
    a.conn.timeout = a.conn.timeout.min(STUCK);
    let waiter = Waiter::block(&[Signal::INT, Signal::TERM])
        .map_err(|e| format!("cannot block SIGINT and SIGTERM: {e}"))?;
    let terminal = std::io::stdout().is_terminal();
    let mut previous: Option<StatusReport> = None;
    let mut shown = 0;
    loop {
        let (raw, report) = match fetch(&a) {
            Ok(answer) => answer,
            Err(Failure::Refused(message)) => return Err(message),
            // The first request failing is an error like any client's; later, tend has
            // gone away (shut down, or the container stopped) and top is done.
            Err(Failure::Gone(message)) if previous.is_none() => return Err(message),
            Err(Failure::Gone(message)) => {
                let first = message.lines().next().unwrap_or_default();
                eprintln!("tend top: tend has gone away or stopped answering: {first}");
                return Ok(0);
            }
        };
        if a.conn.json {
            print(&format!("{raw}\n"))?;
        } else {
            let text = frame(&report, previous.as_ref());
            if terminal {
                print(&format!("{CLEAR}{text}"))?;
            } else if shown == 0 {
                print(&text)?;
            } else {
                print(&format!("\n{text}"))?;
            }
        }
        shown += 1;
        if a.count.is_some_and(|n| shown >= n) {
            return Ok(0);
        }
        previous = Some(report);
        match waiter.wait(EVERY) {
            Ok(Some(_)) => return Ok(0),
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for the next second: {e}")),
        }
    }
}

enum Failure {
    /// tend could not be reached, or closed the connection: it is gone.
    Gone(String),
    /// tend answered with an error (an unknown service name).
    Refused(String),
}

fn fetch(a: &TopArgs) -> Result<(String, StatusReport), Failure> {
    let command = Command::Status {
        services: a.names.clone(),
    };
    let mut c = request(&a.conn, command, false).map_err(Failure::Gone)?;
    let (raw, response) = c.answer().map_err(Failure::Gone)?;
    match response {
        Response::Status(report) => Ok((raw, report)),
        Response::Error { message } => Err(Failure::Refused(message)),
        _ => Err(Failure::Refused(unexpected(&raw))),
    }
}

/// One table: the services busiest first, then a line of totals.
fn frame(report: &StatusReport, previous: Option<&StatusReport>) -> String {
    let mut rows: Vec<(&ServiceStatus, Option<f64>)> = report
        .services
        .iter()
        .map(|s| (s, cpu_percent(s, report.uptime_ms, previous)))
        .collect();
    // Busiest first; services with nothing running last; otherwise in the file's order.
    rows.sort_by(|(_, a), (_, b)| b.unwrap_or(-1.0).total_cmp(&a.unwrap_or(-1.0)));
    let header = [
        "NAME", "STATE", "PID", "CPU%", "CPU", "MEM", "PROCS", "UPTIME",
    ];
    let dash = || "-".to_string();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(s, pct)| {
            vec![
                s.name.clone(),
                s.state.clone(),
                s.pid.map_or_else(dash, |p| p.to_string()),
                pct.map_or_else(dash, |p| format!("{p:.1}")),
                s.cpu_ms.map_or_else(dash, table::cpu),
                s.memory_bytes.map_or_else(dash, table::bytes),
                s.processes.map_or_else(dash, |n| n.to_string()),
                s.uptime_ms.map_or_else(dash, table::duration),
            ]
        })
        .collect();
    let mut out = table::render(&header, &cells);
    let total_pct: f64 = rows.iter().filter_map(|(_, p)| *p).sum();
    let memory: u64 = report.services.iter().filter_map(|s| s.memory_bytes).sum();
    let processes: u32 = report.services.iter().filter_map(|s| s.processes).sum();
    out.push_str(&format!(
        "tend: up {}; services: {total_pct:.1}% CPU, {}, {processes} process{}{}\n",
        table::duration(report.uptime_ms),
        table::bytes(memory),
        if processes == 1 { "" } else { "es" },
        if report.shutting_down {
            "; shutting down"
        } else {
            ""
        }
    ));
    out
}

/// CPU use in percent of one CPU: over the time since `previous` when it shows the same
/// instance (same pid, no less CPU time), else since the instance started. None while no
/// instance runs.
fn cpu_percent(s: &ServiceStatus, uptime_ms: u64, previous: Option<&StatusReport>) -> Option<f64> {
    let cpu = s.cpu_ms?;
    let before = previous.and_then(|p| {
        let old = p.services.iter().find(|o| o.name == s.name)?;
        let old_cpu = old.cpu_ms.filter(|&c| c <= cpu && old.pid == s.pid)?;
        Some((cpu - old_cpu, uptime_ms.checked_sub(p.uptime_ms)?))
    });
    let (used, over) = match before {
        Some((used, over)) if over > 0 => (used, over),
        _ => (cpu, s.uptime_ms.unwrap_or(0)),
    };
    if over == 0 {
        return Some(0.0);
    }
    Some(used as f64 * 100.0 / over as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, pid: Option<i32>, cpu_ms: Option<u64>, uptime_ms: u64) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            instance_of: None,
            state: if pid.is_some() { "running" } else { "stopped" }.into(),
            pid,
            uptime_ms: pid.map(|_| uptime_ms),
            restarts: 0,
            last_exit: None,
            critical: false,
            ready: true,
            health: None,
            reason: None,
            cpu_ms,
            memory_bytes: cpu_ms.map(|_| 2 << 20),
            processes: cpu_ms.map(|_| 1),
            schedule: None,
            next_run_ms: None,
            last_success_ms: None,
        }
    }

    fn report(uptime_ms: u64, services: Vec<ServiceStatus>) -> StatusReport {
        StatusReport {
            services,
            shutting_down: false,
            orphans_reaped: 0,
            uptime_ms,
        }
    }

    #[test]
    fn cpu_use_is_over_the_last_second_or_since_the_start() {
        let before = report(
            10_000,
            vec![
                svc("busy", Some(10), Some(2_000), 9_000),
                svc("restarted", Some(11), Some(5_000), 9_000),
            ],
        );
        let now = report(
            11_000,
            vec![
                svc("busy", Some(10), Some(2_500), 10_000),
                svc("restarted", Some(12), Some(100), 400),
                svc("new", Some(13), Some(30), 600),
                svc("down", None, None, 0),
            ],
        );
        let pct = |i: usize| cpu_percent(&now.services[i], now.uptime_ms, Some(&before));
        assert_eq!(pct(0), Some(50.0), "500 ms of CPU in the last 1000 ms");
        assert_eq!(pct(1), Some(25.0), "a new instance: 100 ms in its 400 ms");
        assert_eq!(
            pct(2),
            Some(5.0),
            "not in the previous answer: since its start"
        );
        assert_eq!(pct(3), None);
        // The first table has nothing before it.
        assert_eq!(
            cpu_percent(&now.services[0], now.uptime_ms, None),
            Some(25.0)
        );
        // Just started: nothing to divide by yet.
        assert_eq!(
            cpu_percent(&svc("x", Some(1), Some(0), 0), 0, None),
            Some(0.0)
        );
    }

    #[test]
    fn the_busiest_come_first_and_the_totals_last() {
        let before = report(
            10_000,
            vec![
                svc("a", Some(10), Some(1_000), 9_000),
                svc("b", Some(11), Some(1_000), 9_000),
            ],
        );
        let now = report(
            11_000,
            vec![
                svc("off", None, None, 0),
                svc("a", Some(10), Some(1_100), 10_000),
                svc("b", Some(11), Some(1_900), 10_000),
            ],
        );
        let text = frame(&now, Some(&before));
        assert_eq!(
            text,
            "NAME  STATE    PID  CPU%  CPU    MEM     PROCS  UPTIME\n\
             b     running  11   90.0  1.90s  2.0MiB  1      10s\n\
             a     running  10   10.0  1.10s  2.0MiB  1      10s\n\
             off   stopped  -    -     -      -       -      -\n\
             tend: up 11s; services: 100.0% CPU, 4.0MiB, 2 processes\n"
        );
    }
}
