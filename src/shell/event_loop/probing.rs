//! Readiness and health probes: starting attempts the core asks for and handing results
//! back. Part of the event loop (a child module, so it shares `Loop`'s state).

use super::Loop;
use crate::core::{self, Input, Level, ServiceId};
use crate::shell::probes::{Check, NotRun, ProbeKey, Probes};
use std::time::Instant;

impl Loop {
    /// Starts one attempt of a service's readiness or health probe.
    #[inline(never)]
    pub(super) fn start_probe(
        &mut self,
        svc: ServiceId,
        generation: core::Generation,
        health: bool,
        now: Instant,
    ) {
        let Some(spec) = self.sup.service_spec(svc) else {
            return;
        };
        let (probe, timeout) = match (health, &spec.ready, &spec.health) {
            (false, Some(rule), _) => (rule.probe.clone(), rule.attempt_timeout),
            (true, _, Some(rule)) => (rule.probe.clone(), rule.timeout),
            _ => return,
        };
        let key = ProbeKey {
            svc: svc.0,
            generation: generation.0,
            check: Check::of(health),
        };
        let what = key.check.name();
        let name = spec.name.clone();
        // Made at the first probe: a tend with none (single-child mode) keeps no resolver.
        let probes = self.probes.get_or_insert_with(|| Box::new(Probes::new()));
        if let Err(NotRun(reason)) =
            probes.start(&self.ep, key, &probe, timeout, now, &self.ctx.inherited)
        {
            // tend's own shortage (no descriptor or process to spare) says nothing about the
            // service: not counted, tried again one interval later, said once per burst.
            let text = format!(
                "cannot run the {what} of '{name}': {reason}; not counted, tried again at \
                 its next interval"
            );
            if let Some(text) = self.probes_not_run.note(now, text) {
                self.say(Level::Warn, &text);
            }
            self.sup.handle(
                self.core_time(now),
                Input::ProbeNotRun {
                    svc,
                    generation,
                    health,
                },
            );
        }
    }

    #[inline(never)]
    pub(super) fn probe_results(&mut self, results: Vec<(ProbeKey, bool)>, now: Instant) {
        for (key, ok) in results {
            if !ok && let Some(reason) = self.probes.as_mut().and_then(|p| p.failure_reason(key)) {
                let name = self.sup.name(ServiceId(key.svc)).to_string();
                let what = key.check.name();
                let text = format!("{what} of '{name}' failed: {reason}");
                self.say(Level::Debug, &text);
            }
            let input = Input::ProbeResult {
                svc: ServiceId(key.svc),
                generation: core::Generation(key.generation),
                health: key.check.is_health(),
                ok,
            };
            self.sup.handle(self.core_time(now), input);
        }
    }
}
