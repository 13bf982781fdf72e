//! The two servers' events: accepting clients, and handing each connection's event to its
//! server, with what answering needs from the supervisor. Part of the event loop (a child
//! module, so it shares `Loop`'s state).

use super::Loop;
use crate::core::Level;
use crate::shell::serve::http::Snapshot;
use crate::shell::serve::{metrics, status};
use crate::shell::usage;
use rustix::event::epoll;
use std::time::Instant;

impl Loop {
    #[inline(never)]
    pub(super) fn accept_control(&mut self, now: Instant) {
        let Some(server) = &mut self.ctx.control else {
            return;
        };
        for note in server.accept(&self.ep, now) {
            self.say(Level::Warn, &note);
        }
    }

    #[inline(never)]
    pub(super) fn on_control(&mut self, conn: usize, flags: epoll::EventFlags, now: Instant) {
        let incoming = self
            .ctx
            .control
            .as_mut()
            .and_then(|server| server.on_event(&self.ep, conn, flags));
        if let Some(incoming) = incoming {
            self.on_request(incoming, now);
        }
    }

    #[inline(never)]
    pub(super) fn accept_http(&mut self, now: Instant) {
        if let Some(server) = &mut self.ctx.http {
            server.accept(&self.ep, now);
        }
    }

    /// An event on an HTTP connection: answered from the supervisor's state.
    #[inline(never)]
    pub(super) fn on_http(&mut self, conn: usize, flags: epoll::EventFlags, now: Instant) {
        let at = self.core_time(now);
        let uptime = now.saturating_duration_since(self.origin);
        let Some(server) = &mut self.ctx.http else {
            return;
        };
        let sup = &self.sup;
        server.on_event(&self.ep, conn, flags, now, |wants_metrics| {
            // /readyz turns 503 the moment shutdown starts (health says so).
            let (ready, ready_reason) = status::health(sup, at);
            // Only a scrape reads /proc for what the services use.
            let metrics = if wants_metrics {
                metrics::render(sup, at, uptime, &usage::measure(sup, sup.live_services()))
            } else {
                String::new()
            };
            Snapshot {
                alive: true,
                ready,
                ready_reason,
                metrics,
            }
        });
    }
}
