//! Signals and the one reaper (invariant 1): what tend receives goes to the core, SIGCHLD
//! becomes `waitpid` until nothing is left. Part of the event loop (a child module, so it
//! shares `Loop`'s state).

use super::Loop;
use crate::core::{ExitStatus, Input, Level, Signal, SignalRouting};
use crate::shell::oom::OomCounter;
use crate::shell::probes::ChildExit;
use crate::sys::reap::{self, Reaped};
use crate::sys::signals::Received;
use std::time::Instant;

impl Loop {
    /// The signalfd is readable: everything pending, in order. Not inlined: reading takes a
    /// 4 KiB buffer, which would otherwise be part of the loop's frame even where signals
    /// come one at a time through `sigwaitinfo` (single-child mode).
    #[inline(never)]
    pub(super) fn on_signals(&mut self, received: &mut Vec<Received>, now: Instant) {
        received.clear();
        if let Err(e) = self.ctx.signals.read_all(received) {
            self.say(Level::Error, &format!("reading signals: {e}"));
            return;
        }
        self.handle_signals(received, now);
    }

    pub(super) fn handle_signals(&mut self, received: &[Received], now: Instant) {
        let mut reap_needed = false;
        for r in received.iter() {
            if r.signal == Signal::CHLD {
                reap_needed = true;
            } else if r.signal == Signal::HUP && self.reload_on_hup() {
                let _ = self.reload(now);
            } else if r.signal == Signal::PIPE && r.sender == self.me.0 {
                // tend's own write to a closed pipe: an error return handles it.
            } else {
                self.sup
                    .handle(self.core_time(now), Input::Signal(r.signal));
            }
        }
        if reap_needed {
            self.reap_all(now);
        }
    }

    /// Supervisor mode: finds the kernel's count of OOM kills and tells the core where it
    /// starts from.
    #[inline(never)]
    pub(super) fn count_oom_kills(&mut self, now: Instant) {
        if self.ctx.logs.is_none() {
            return;
        }
        self.oom = OomCounter::find();
        let text = match &self.oom {
            Some(c) => format!("OOM kills are counted in {}", c.describe()),
            None => "the kernel counts no OOM kills here: none will be reported".to_string(),
        };
        self.say(Level::Debug, &text);
        self.read_oom_kills(now);
    }

    /// The OOM-kill count now, to the core.
    fn read_oom_kills(&mut self, now: Instant) {
        if let Some(count) = self.oom.as_ref().and_then(OomCounter::read) {
            self.sup
                .handle(self.core_time(now), Input::OomKills { count });
        }
    }

    /// SIGHUP reloads in supervisor mode, unless it was made a shutdown signal.
    fn reload_on_hup(&self) -> bool {
        match self.sup.spec().signals {
            SignalRouting::Supervise { shutdown } => {
                self.ctx.config_path.is_some() && !shutdown.contains(Signal::HUP)
            }
            SignalRouting::ForwardToMain { .. } => false,
        }
    }

    /// waitpid(-1, WNOHANG) until nothing is left to collect; every pid goes to the core,
    /// which tells services from adopted orphans.
    pub(super) fn reap_all(&mut self, now: Instant) {
        let at = self.core_time(now);
        // The OOM-kill count is read at most once per batch, before its first service
        // process that died of SIGKILL.
        let mut oom_read = false;
        loop {
            match reap::reap_one() {
                Ok(Reaped::Child(pid, status)) => {
                    // Exec probes are children too: their exits are results, not orphans.
                    let exit = match &mut self.probes {
                        Some(probes) => probes.on_child_exit(pid.0, status),
                        None => ChildExit::NotProbe,
                    };
                    match exit {
                        ChildExit::NotProbe => {}
                        ChildExit::Ignored => continue,
                        ChildExit::Finished(key, ok) => {
                            self.probe_results(vec![(key, ok)], now);
                            continue;
                        }
                    }
                    if let Some(svc) = self.service_pids.remove(pid) {
                        // Probes of the instance that just ended are moot.
                        if let Some(probes) = &mut self.probes {
                            probes.cancel_service(&self.ep, svc.0);
                        }
                        // Its last words come before anything tend says about its exit.
                        if let Some(logs) = &mut self.ctx.logs {
                            logs.drain_service(svc.0, now);
                        }
                        if !oom_read && status == ExitStatus::Signaled(Signal::KILL) {
                            oom_read = true;
                            self.read_oom_kills(now);
                        }
                    }
                    self.sup.handle(at, Input::ChildExited { pid, status });
                }
                Ok(Reaped::NoneReady) => return,
                Ok(Reaped::NoChildren) => {
                    self.sup.handle(at, Input::NoChildren);
                    return;
                }
                Err(e) => {
                    self.say(Level::Error, &format!("waitpid: {e}"));
                    return;
                }
            }
        }
    }
}
