//! Control requests: what each command of the control protocol does to the supervisor, and
//! the answers. Part of the event loop (a child module, so it shares `Loop`'s state).

use super::Loop;
use crate::config;
use crate::core::{self, ControlOp, ControlResult, Level, RequestId, ServiceId, Signal};
use crate::proto::{self, Command, Response, Targets};
use crate::shell::logs::json_line;
use crate::shell::logs::ring::LineRef;
use crate::shell::serve::control::Incoming;
use crate::shell::serve::status;
use crate::shell::usage;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

impl Loop {
    /// The core's per-service results as the client gets them, by service name.
    pub(super) fn named(&self, results: Vec<ControlResult>) -> Vec<proto::ServiceResult> {
        results
            .into_iter()
            .map(|r| proto::ServiceResult {
                service: self.sup.name(r.svc).to_string(),
                ok: r.ok,
                message: r.message,
            })
            .collect()
    }

    pub(super) fn respond(&mut self, conn: usize, response: Response) {
        if let Some(server) = &mut self.ctx.control {
            server.reply(&self.ep, conn, &response);
        }
    }

    /// Names to service ids; every name must exist, and `--all` means every live service.
    /// A name is a service's, else that of a service with `instances`, meaning each of them
    /// (`worker` for `worker-0` ... `worker-3`). Each service is in the answer once.
    pub(super) fn targets(&self, targets: &Targets) -> Result<Vec<ServiceId>, String> {
        if targets.all {
            return Ok(self.sup.live_services().collect());
        }
        if targets.services.is_empty() {
            return Err("name at least one service, or use --all".into());
        }
        let mut ids: Vec<ServiceId> = Vec::new();
        for name in &targets.services {
            let found = self.sup.resolve(name);
            if found.is_empty() {
                return Err(format!("no service named '{name}'"));
            }
            for id in found {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        Ok(ids)
    }

    #[inline(never)]
    pub(super) fn on_request(&mut self, incoming: Incoming, now: Instant) {
        let conn = incoming.conn;
        let request = match incoming.request {
            Ok(r) => r,
            Err(message) => return self.respond(conn, Response::Error { message }),
        };
        let at = self.core_time(now);
        match request.command {
            Command::Status { services } => {
                let ids = if services.is_empty() {
                    Ok(self.sup.live_services().collect())
                } else {
                    self.targets(&Targets {
                        services,
                        all: false,
                    })
                };
                let response = match ids {
                    Ok(ids) => Response::Status(status::report(
                        &self.sup,
                        &ids,
                        now.saturating_duration_since(self.origin),
                        at,
                        &usage::measure(&self.sup, ids.iter().copied()),
                    )),
                    Err(message) => Response::Error { message },
                };
                self.respond(conn, response);
            }
            Command::Start { targets, wait } => {
                self.control(conn, ControlOp::Start, &targets, wait, at)
            }
            Command::Stop { targets, wait } => {
                self.control(conn, ControlOp::Stop, &targets, wait, at)
            }
            Command::Restart { targets, wait } => {
                self.control(conn, ControlOp::Restart, &targets, wait, at)
            }
            Command::Signal { signal, targets } => {
                let response = match (Signal::parse(&signal), self.targets(&targets)) {
                    (None, _) => Response::Error {
                        message: format!("unknown signal '{signal}'"),
                    },
                    (_, Err(message)) => Response::Error { message },
                    (Some(sig), Ok(ids)) => {
                        let results = self.sup.signal_services(sig, &ids);
                        Response::Done {
                            results: self.named(results),
                        }
                    }
                };
                self.respond(conn, response);
            }
            Command::Logs {
                service,
                lines,
                follow,
            } => {
                // One service, or each instance of one: their lines interleaved.
                let svcs = self.sup.resolve(&service);
                let (false, Some(logs)) = (svcs.is_empty(), &self.ctx.logs) else {
                    return self.respond(
                        conn,
                        Response::Error {
                            message: format!("no service named '{service}'"),
                        },
                    );
                };
                let backlogs: Vec<Vec<proto::LogLine>> = svcs
                    .iter()
                    .map(|&svc| {
                        let name = self.sup.name(svc);
                        logs.backlog(svc.0, lines)
                            .map(|l| log_line(name, &l))
                            .collect()
                    })
                    .collect();
                let lines = latest(backlogs, lines);
                let response = Response::Logs { service, lines };
                if let Some(server) = &mut self.ctx.control {
                    if follow {
                        let svcs: Vec<usize> = svcs.iter().map(|s| s.0).collect();
                        if let Some(logs) = &mut self.ctx.logs {
                            for &svc in &svcs {
                                logs.follow(svc);
                            }
                        }
                        server.follow(&self.ep, conn, &response, svcs);
                    } else {
                        server.reply(&self.ep, conn, &response);
                    }
                }
            }
            Command::Health => {
                let (ok, reason) = status::health(&self.sup, at);
                self.respond(conn, Response::Health { ok, reason });
            }
            Command::Reload => {
                let response = self.reload(now);
                self.respond(conn, response);
            }
            Command::Shutdown => match self.sup.request_shutdown(at) {
                Ok(()) => {
                    if let Some(server) = &mut self.ctx.control {
                        server.reply_and_linger(&self.ep, conn, &Response::Accepted);
                    }
                }
                Err(message) => self.respond(conn, Response::Error { message }),
            },
        }
    }

    pub(super) fn control(
        &mut self,
        conn: usize,
        op: ControlOp,
        targets: &Targets,
        wait: bool,
        at: core::Instant,
    ) {
        let ids = match self.targets(targets) {
            Ok(ids) => ids,
            Err(message) => return self.respond(conn, Response::Error { message }),
        };
        let id = wait.then(|| {
            self.next_request += 1;
            RequestId(self.next_request)
        });
        if let Some(id) = id {
            self.waiting.insert(id, conn);
        }
        // A task started again after a pause plans its next time from the wall clock, which
        // may have been set meanwhile without a word (no cron time was armed then).
        self.hand_wall_clock_at(at, false);
        match self.sup.control(at, id, op, &ids) {
            Ok(()) if wait => {} // Action::Reply answers.
            Ok(()) => self.respond(conn, Response::Accepted),
            Err(message) => {
                if let Some(id) = id {
                    self.waiting.remove(&id);
                }
                self.respond(conn, Response::Error { message });
            }
        }
    }

    /// Re-reads the configuration; a file that does not load changes nothing.
    #[inline(never)]
    pub(super) fn reload(&mut self, now: Instant) -> Response {
        let Some(path) = self.ctx.config_path.clone() else {
            return Response::Error {
                message: "no configuration file to reload".into(),
            };
        };
        let loaded = match config::load_file(&path, &config::Environment::default()) {
            Ok(l) => l,
            Err(e) => {
                let message = format!("reload failed, nothing was changed:\n{e}");
                self.say(Level::Error, &message);
                return Response::Error { message };
            }
        };
        for w in &loaded.warnings {
            self.say(Level::Warn, w);
        }
        // Everything the new file needs is set up before anything changes: a reload that
        // cannot have it is refused and the running system stays as it was.
        let refused = match self.sup.slots_after_reload(&loaded.spec) {
            Err(message) => Some(message),
            Ok(slots) => self.ctx.logs.as_mut().and_then(|logs| {
                let ep = &self.ep;
                logs.grow(slots, |svc, stream, fd| {
                    super::register_source(ep, svc, stream, fd)
                })
                .err()
                .map(|e| format!("cannot set up log pipes for the new services: {e}"))
            }),
        };
        if let Some(reason) = refused {
            let message = format!("reload refused, nothing was changed: {reason}");
            self.say(Level::Error, &message);
            return Response::Error { message };
        }
        let report = match self.sup.reload(self.core_time(now), loaded.spec) {
            Ok(r) => r,
            Err(message) => return Response::Error { message },
        };
        // Added or changed cron rules are planned from the wall clock.
        self.hand_wall_clock(now, false);
        if let Some(logs) = &mut self.ctx.logs {
            logs.sync(&self.sup.spec().services);
        }
        self.say(
            Level::Info,
            &format!(
                "reloaded {}: added {:?}, removed {:?}, changed {:?}, unchanged {}",
                path.display(),
                report.added,
                report.removed,
                report.changed,
                report.unchanged.len()
            ),
        );
        Response::Reloaded(proto::ReloadReport {
            added: report.added,
            removed: report.removed,
            changed: report.changed,
            unchanged: report.unchanged,
        })
    }

    /// New lines of followed services go to their followers.
    #[inline(never)]
    pub(super) fn forward_fresh_lines(&mut self) {
        let (Some(logs), Some(server)) = (&mut self.ctx.logs, &mut self.ctx.control) else {
            return;
        };
        // Most wake-ups: no line for anyone, nobody to unmark.
        if !logs.forwarding() {
            return;
        }
        let fresh = logs.take_fresh();
        let lines = fresh.into_iter().map(|(svc, line)| {
            let stream = line.stream.name();
            let bytes =
                json_line::log_line_response(logs.name(svc), stream, line.time_ms, &line.text);
            (svc, bytes)
        });
        server.broadcast(&self.ep, lines);
        logs.unfollow_unless(|svc| server.followers_of(svc));
    }
}

/// The last `n` lines of several services, in the order they were read: each service's
/// lines keep their order, and lines of different services go by their time (the earlier
/// service first when two have the same millisecond).
pub(super) fn latest(mut backlogs: Vec<Vec<proto::LogLine>>, n: usize) -> Vec<proto::LogLine> {
    if backlogs.len() == 1 {
        return backlogs.pop().unwrap_or_default();
    }
    let total: usize = backlogs.iter().map(Vec::len).sum();
    let mut rest: Vec<std::vec::IntoIter<proto::LogLine>> =
        backlogs.into_iter().map(Vec::into_iter).collect();
    // The time of each service's next line, earliest first.
    let mut heads: BinaryHeap<Reverse<(u64, usize)>> = rest
        .iter()
        .enumerate()
        .filter_map(|(k, lines)| Some(Reverse((lines.as_slice().first()?.time_ms, k))))
        .collect();
    let mut merged = Vec::with_capacity(total);
    while let Some(Reverse((_, k))) = heads.pop() {
        let Some(lines) = rest.get_mut(k) else {
            continue;
        };
        if let Some(line) = lines.next() {
            merged.push(line);
        }
        if let Some(next) = lines.as_slice().first() {
            heads.push(Reverse((next.time_ms, k)));
        }
    }
    merged.split_off(merged.len().saturating_sub(n))
}

pub(super) fn log_line(service: &str, line: &LineRef<'_>) -> proto::LogLine {
    proto::LogLine {
        service: service.to_string(),
        stream: line.stream.name().to_string(),
        time_ms: line.time_ms,
        line: line.text_lossy(),
    }
}
