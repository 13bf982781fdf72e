//! Carrying out the core's actions: spawning instances, signalling, tend's own lines,
//! answers to waited-for requests, pid files to read, probes to run. Part of the event loop
//! (a child module, so it shares `Loop`'s state).

use super::Loop;
use crate::core::{self, Action, ControlResult, Input, KillTarget, Output, RequestId};
use crate::core::{Level, Signal, SpawnErrorKind};
use crate::core::{ServiceId, ServiceState};
use crate::proto::Response;
use crate::shell::pidfile;
use crate::shell::usage;
use crate::sys::process;
use crate::sys::spawn::{self, ChildStdio};
use std::time::Instant;

impl Loop {
    /// Carries out one action at `now`. Returns the exit code once the core asks to exit.
    pub(super) fn execute(&mut self, action: Action, now: Instant) -> Option<u8> {
        match action {
            Action::Spawn { svc, generation } => self.spawn(svc, generation, now),
            Action::SpawnFinish {
                svc,
                generation,
                status,
            } => self.spawn_finish(svc, generation, status, now),
            Action::Kill { target, signal } => {
                if let Err(text) = self.kill(target, signal) {
                    self.say(text.0, &text.1);
                }
                if target == KillTarget::Everyone {
                    // If nobody is left, no SIGCHLD will ever say so: ask the reaper now.
                    self.reap_all(now);
                }
            }
            Action::Log(note) => {
                if let Some(line) = self.ctx.log.render_note(&note) {
                    self.voice(&line);
                }
            }
            Action::Reply { id, results } => self.reply(id, results),
            Action::ReadPidFile { svc, generation } => self.read_pid_file(svc, generation, now),
            Action::Probe {
                svc,
                generation,
                health,
            } => self.start_probe(svc, generation, health, now),
            Action::MeasureMemory { services } => self.measure_memory(&services, now),
            Action::Exit(code) => return Some(code),
        }
        None
    }

    /// The answer to a waited-for control request.
    #[inline(never)]
    fn reply(&mut self, id: RequestId, results: Vec<ControlResult>) {
        let results = self.named(results);
        if let (Some(conn), Some(server)) = (self.waiting.remove(&id), &mut self.ctx.control) {
            server.reply(&self.ep, conn, &Response::Done { results });
        }
    }

    /// A daemon's pid file to wait for.
    #[inline(never)]
    fn read_pid_file(&mut self, svc: ServiceId, generation: core::Generation, now: Instant) {
        let path = self.sup.service_spec(svc).and_then(|s| s.pid_file.clone());
        if let Some(path) = path {
            self.pid_files.add(svc, generation, path, now);
            self.poll_pid_files(now);
        }
    }

    /// Measures the process groups of the instances the core asks about, in one pass over
    /// /proc, and hands it what was found (a group already gone has no answer).
    #[inline(never)]
    fn measure_memory(&mut self, services: &[(ServiceId, core::Generation)], now: Instant) {
        let used = usage::measure(&self.sup, services.iter().map(|&(svc, _)| svc));
        let at = self.core_time(now);
        for &(svc, generation) in services {
            if let Some(u) = used.get(&svc) {
                let bytes = u.memory;
                self.sup.handle(
                    at,
                    Input::MemoryUsage {
                        svc,
                        generation,
                        bytes,
                    },
                );
            }
        }
    }

    /// Starts an instance of `svc` and tells the core how that went.
    fn spawn(&mut self, svc: ServiceId, generation: core::Generation, now: Instant) {
        let Some(spec) = self.sup.service_spec(svc) else {
            return; // The core hands out only its own ids.
        };
        // Readiness plumbing for this instance: a fresh pipe or socket each time, so a
        // late message from an earlier instance cannot make this one ready.
        let mut extra = spawn::Extra::default();
        let mut keep_until_spawned = None;
        let mut warning = None;
        if spec.ready.as_ref().is_some_and(|r| !r.probe.is_polled()) {
            (keep_until_spawned, warning) = self.prepare_notify(svc, &mut extra);
        }
        let Some(spec) = self.sup.service_spec(svc) else {
            return;
        };
        let launch = &spec.launch;
        let result = self
            .child_stdio(svc, launch.output)
            .and_then(|stdio| spawn::spawn(launch, &self.ctx.inherited, stdio, &extra));
        // tend's copy of the notification pipe's write end must go, or it never sees EOF.
        drop(keep_until_spawned);
        if let Some(text) = warning {
            self.say(Level::Warn, &text);
        }
        let input = match result {
            // Registered before the next reap: this thread reaps only between actions.
            Ok(pid) => {
                self.service_pids.insert(pid, svc);
                Input::Spawned {
                    svc,
                    generation,
                    pid,
                }
            }
            Err(e) => Input::SpawnFailed {
                svc,
                generation,
                kind: e.kind,
                message: e.message,
            },
        };
        self.sup.handle(self.core_time(now), input);
    }

    /// The notification fd or socket of a new instance of `svc`, put into `extra`; the fd
    /// tend must keep open until the spawn, or a warning to say.
    #[inline(never)]
    fn prepare_notify(
        &mut self,
        svc: ServiceId,
        extra: &mut spawn::Extra,
    ) -> (Option<std::os::fd::OwnedFd>, Option<String>) {
        let (Some(spec), Some(dir)) = (self.sup.service_spec(svc), &self.ctx.notify_dir) else {
            return (None, None);
        };
        let Some(rule) = &spec.ready else {
            return (None, None);
        };
        match self.notify.prepare(
            &self.ep,
            svc.0,
            &rule.probe,
            dir,
            spec.launch.credentials.as_ref(),
        ) {
            Ok(prepared) => {
                extra.env.extend(prepared.env);
                match prepared.fd_map {
                    Some((fd, n)) => {
                        extra.fds.push((std::os::fd::AsRawFd::as_raw_fd(&fd), n));
                        (Some(fd), None)
                    }
                    None => (None, None),
                }
            }
            Err(e) => (
                None,
                Some(format!(
                    "'{}': cannot set up its readiness notification: {e}",
                    spec.name
                )),
            ),
        }
    }

    /// Where a process of `svc` writes: the service's log pipes, or tend's own stdout/stderr.
    fn child_stdio(
        &self,
        svc: ServiceId,
        output: Output,
    ) -> Result<ChildStdio<'_>, spawn::SpawnError> {
        match (&self.ctx.logs, output) {
            (Some(logs), Output::Prefixed) => match logs.child_fds(svc.0) {
                Some((stdout, stderr)) => Ok(ChildStdio::Pipes { stdout, stderr }),
                None => Err(spawn::SpawnError {
                    out_of_resources: false,
                    kind: SpawnErrorKind::Other,
                    message: "tend has no log pipes for it".into(),
                }),
            },
            _ => Ok(ChildStdio::Inherit),
        }
    }

    /// Starts the `finish` command of `svc` for its instance that ended with `status`: as
    /// the service (its launch settings, its log pipes), with runsv's two arguments added.
    #[inline(never)]
    fn spawn_finish(
        &mut self,
        svc: ServiceId,
        generation: core::Generation,
        status: core::ExitStatus,
        now: Instant,
    ) {
        let Some(spec) = self.sup.service_spec(svc) else {
            return;
        };
        let Some(finish) = &spec.finish else {
            return;
        };
        let (code, signal) = match status {
            core::ExitStatus::Exited(code) => (i32::from(code), 0),
            core::ExitStatus::Signaled(signal) => (-1, signal.number()),
        };
        let mut launch = spec.launch.clone();
        launch.argv = finish.argv.clone();
        launch.argv.push(code.to_string().into());
        launch.argv.push(signal.to_string().into());
        let result = self.child_stdio(svc, launch.output).and_then(|stdio| {
            spawn::spawn(
                &launch,
                &self.ctx.inherited,
                stdio,
                &spawn::Extra::default(),
            )
        });
        let input = match result {
            Ok(pid) => {
                // Its exit drains the service's pipes, so its last lines come before the note.
                self.service_pids.insert(pid, svc);
                Input::FinishSpawned {
                    svc,
                    generation,
                    pid,
                }
            }
            Err(e) => Input::FinishSpawnFailed {
                svc,
                generation,
                message: e.message,
            },
        };
        self.sup.handle(self.core_time(now), input);
    }

    /// Sends `signal` to `target`. A target already gone is no error worth a warning; any
    /// other failure comes back to be said.
    fn kill(&self, target: KillTarget, signal: Signal) -> Result<(), (Level, String)> {
        let result = match target {
            KillTarget::Process(pid) => process::kill(pid.0, signal),
            KillTarget::Group(pid) => process::kill(-pid.0, signal),
            KillTarget::Everyone if self.ctx.is_pid1 => match process::kill(-1, signal) {
                // Nobody left to signal is the good case.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                other => other,
            },
            KillTarget::Everyone => {
                for pid in process::descendants(self.me) {
                    let _ = process::kill(pid.0, signal);
                }
                Ok(())
            }
        };
        result.map_err(|e| {
            let level = if e.raw_os_error() == Some(libc::ESRCH) {
                Level::Debug
            } else {
                Level::Warn
            };
            (level, format!("sending {signal} to {target:?}: {e}"))
        })
    }

    /// Reads the pid files of daemons being waited for; found ones become their service's
    /// main process, as if just spawned.
    #[inline(never)]
    pub(super) fn poll_pid_files(&mut self, now: Instant) {
        // Every wake-up asks; most have no pid file to look for.
        if self.pid_files.is_empty() {
            return;
        }
        let sup = &self.sup;
        let answers = self.pid_files.poll(now, self.me, |svc, generation| {
            !sup.is_retired(svc)
                && matches!(
                    sup.service(svc).state,
                    ServiceState::Starting { generation: g, .. } if g == generation
                )
        });
        let at = self.core_time(now);
        for answer in answers {
            match answer {
                pidfile::Answer::Found {
                    svc,
                    generation,
                    pid,
                    pgid,
                } => {
                    self.service_pids.insert(pid, svc);
                    self.sup.handle(
                        at,
                        Input::Adopted {
                            svc,
                            generation,
                            pid,
                            pgid,
                        },
                    );
                }
                pidfile::Answer::Failed {
                    svc,
                    generation,
                    message,
                } => self.sup.handle(
                    at,
                    Input::SpawnFailed {
                        svc,
                        generation,
                        kind: SpawnErrorKind::Other,
                        message,
                    },
                ),
            }
        }
    }
}
