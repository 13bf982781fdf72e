//! Signals and the one reaper (invariant 1): what tend receives goes to the core, SIGCHLD
//! becomes `waitpid` until nothing is left. Part of the event loop (a child module, so it
//! shares `Loop`'s state).

use super::Loop;
use crate::core::{Input, Level, Signal, SignalRouting};
use crate::shell::probes::ChildExit;
use crate::sys::reap::{self, Reaped};
use crate::sys::signals::Received;
use std::time::Instant;

impl Loop {
    /// The signalfd is readable: everything pending, in order.
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
        loop {
            match reap::reap_one() {
                Ok(Reaped::Child(pid, status)) => {
                    // Exec probes are children too: their exits are results, not orphans.
                    match self.probes.on_child_exit(pid.0, status) {
                        ChildExit::NotProbe => {}
                        ChildExit::Ignored => continue,
                        ChildExit::Finished(key, ok) => {
                            self.probe_results(vec![(key, ok)], now);
                            continue;
                        }
                    }
                    if let Some(svc) = self.service_pids.remove(&pid) {
                        // Probes of the instance that just ended are moot.
                        self.probes.cancel_service(&self.ep, svc.0);
                        // Its last words come before anything tend says about its exit.
                        if let Some(logs) = &mut self.ctx.logs {
                            logs.drain_service(svc.0, now);
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
