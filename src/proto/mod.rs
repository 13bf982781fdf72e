//! The control protocol between `tend` clients and the supervisor: one JSON object per line
//! over a unix socket, a request from the client, then one or more responses from tend.
//!
//! Every request carries `"v": VERSION`. A server that does not speak that version answers
//! `Error` and closes. `logs --follow` is the only request answered by more than one line:
//! `Logs` with the backlog, then a `LogLine` per new line until the client goes away.

use serde::{Deserialize, Serialize};

/// Protocol version spoken by this build.
pub const VERSION: u32 = 1;

/// Longest request line the server accepts; longer ones are answered with an error.
pub const MAX_REQUEST: usize = 64 * 1024;

/// The two largest units of a duration, as `ps` and `docker ps` show them: `3s`, `5m12s`,
/// `2h3m`, `4d7h`; less than a second is `0s`. The status table shows times so, and so do
/// the notes tend writes into a status ("next run ... (in 5m12s)").
pub fn duration_text(ms: u64) -> String {
    let s = ms / 1000;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{m}m{}s", s % 60)
    } else if s < 86_400 {
        format!("{h}h{}m", m % 60)
    } else {
        format!("{d}d{}h", h % 24)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    pub fn new(command: Command) -> Request {
        Request {
            v: VERSION,
            command,
        }
    }
}

/// Which services a request is about: named ones, or every one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Command {
    /// State of the named services (all when none are named).
    Status {
        #[serde(default)]
        services: Vec<String>,
    },
    Start {
        #[serde(flatten)]
        targets: Targets,
        /// Answer once the outcome is known (default), or at once.
        #[serde(default = "yes")]
        wait: bool,
    },
    Stop {
        #[serde(flatten)]
        targets: Targets,
        #[serde(default = "yes")]
        wait: bool,
    },
    Restart {
        #[serde(flatten)]
        targets: Targets,
        #[serde(default = "yes")]
        wait: bool,
    },
    /// Send a signal (name or number) to the services' process groups.
    Signal {
        signal: String,
        #[serde(flatten)]
        targets: Targets,
    },
    /// The last `lines` lines of a service, then (with `follow`) every new one.
    Logs {
        service: String,
        #[serde(default = "default_lines")]
        lines: usize,
        #[serde(default)]
        follow: bool,
    },
    /// Re-read the configuration file and apply the difference.
    Reload,
    /// The same graceful shutdown as SIGTERM.
    Shutdown,
    /// Whether the container is healthy: every critical service running and ready, and no
    /// health check failing.
    Health,
}

fn yes() -> bool {
    true
}

fn default_lines() -> usize {
    10
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "kebab-case")]
pub enum Response {
    Status(StatusReport),
    /// Outcome of start/stop/restart/signal, one entry per service.
    Done {
        results: Vec<ServiceResult>,
    },
    Logs {
        service: String,
        lines: Vec<LogLine>,
    },
    /// One more line of a followed service.
    LogLine(LogLine),
    Reloaded(ReloadReport),
    /// The request was accepted (shutdown, or anything sent with `wait: false`).
    Accepted,
    /// The answer to `health`; `reason` is one line, for people and for `docker inspect`.
    Health {
        ok: bool,
        reason: String,
    },
    Error {
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub services: Vec<ServiceStatus>,
    /// tend is shutting down.
    pub shutting_down: bool,
    pub orphans_reaped: u64,
    pub uptime_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The service whose `instances` made this one (`worker` for `worker-3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_of: Option<String>,
    /// idle, starting, running, stopping, backoff, exited, failed, stopped
    pub state: String,
    pub pid: Option<i32>,
    /// Time since the current instance started.
    pub uptime_ms: Option<u64>,
    pub restarts: u32,
    pub last_exit: Option<ExitReport>,
    pub critical: bool,
    /// Whether it is ready (running, and its readiness rule or `start-secs` satisfied).
    #[serde(default)]
    pub ready: bool,
    /// healthy, unhealthy, or starting (no verdict yet); absent without a health check.
    #[serde(default)]
    pub health: Option<String>,
    /// Why it is in this state, when that is not obvious (e.g. "gave up after 11 failed starts").
    #[serde(default)]
    pub reason: Option<String>,
    /// CPU time used so far by the processes of its current instance (its process group)
    /// and the children they waited for, in milliseconds. Absent while none runs.
    #[serde(default)]
    pub cpu_ms: Option<u64>,
    /// Resident memory of the processes in its process group, summed, in bytes. Absent
    /// while none runs.
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// How many processes its process group has. Absent while none runs.
    #[serde(default)]
    pub processes: Option<u32>,
    /// A scheduled task's `schedule`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// When a scheduled task runs next, in milliseconds since the Unix epoch; absent while
    /// its schedule is not followed (stopped, or tend shutting down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_ms: Option<u64>,
    /// When its latest successful run ended, in milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitReport {
    /// Exit code, when it exited.
    pub code: Option<u8>,
    /// Signal name (TERM, KILL...), when a signal killed it.
    pub signal: Option<String>,
    /// The kernel's OOM killer ended it (a SIGKILL tend did not send, while the kernel's
    /// count of OOM kills rose).
    #[serde(default)]
    pub oom: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceResult {
    pub service: String,
    pub ok: bool,
    /// What happened: "running (pid 42)", "stopped", "already running", "failed: exit code 1".
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub service: String,
    /// stdout or stderr
    pub stream: String,
    /// Milliseconds since the Unix epoch when tend read it.
    pub time_ms: u64,
    pub line: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Parses one request line. Errors are meant to be sent back to the client as they are.
pub fn decode_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST {
        return Err(format!("request too long (more than {MAX_REQUEST} bytes)"));
    }
    let req: Request =
        serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))?;
    if req.v != VERSION {
        return Err(format!(
            "unsupported protocol version {} (this tend speaks {VERSION})",
            req.v
        ));
    }
    Ok(req)
}

/// One line of JSON, newline included.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain types cannot fail; an empty object keeps the stream well formed.
    let mut out = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_with_defaults() {
        let r = decode_request(br#"{"v":1,"cmd":"stop","services":["web"]}"#).unwrap();
        assert_eq!(
            r.command,
            Command::Stop {
                targets: Targets {
                    services: vec!["web".into()],
                    all: false
                },
                wait: true
            }
        );
        let r = decode_request(br#"{"v":1,"cmd":"logs","service":"web"}"#).unwrap();
        assert_eq!(
            r.command,
            Command::Logs {
                service: "web".into(),
                lines: 10,
                follow: false
            }
        );
        for c in [
            Command::Status { services: vec![] },
            Command::Restart {
                targets: Targets {
                    services: vec![],
                    all: true,
                },
                wait: false,
            },
            Command::Signal {
                signal: "HUP".into(),
                targets: Targets {
                    services: vec!["a".into()],
                    all: false,
                },
            },
            Command::Reload,
            Command::Shutdown,
        ] {
            let line = encode(&Request::new(c.clone()));
            assert_eq!(decode_request(line.trim_ascii_end()).unwrap().command, c);
        }
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"{",
            b"null",
            b"[]",
            b"{\"v\":1}",
            b"{\"v\":2,\"cmd\":\"status\"}",
            b"{\"v\":1,\"cmd\":\"nope\"}",
            b"\xff\xfe",
            b"{\"v\":1,\"cmd\":\"logs\"}",
        ] {
            assert!(decode_request(bad).is_err(), "{bad:?}");
        }
        let huge = vec![b' '; MAX_REQUEST + 1];
        assert!(decode_request(&huge).unwrap_err().contains("too long"));
    }
}
