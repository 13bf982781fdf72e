//! Scheduled tasks: when each is next due, and what happens then.
//!
//! `@every` counts on the monotonic clock, like every other timer of the core, so its due
//! time is part of `poll_timeout`. A cron rule is due at a wall-clock time: the shell hands
//! the wall clock in as data (`Input::WallClock`), when it starts, when the earliest time
//! `poll_wall_timeout` names has come, and when the clock was set; the core decides. Each due
//! time makes one run, or, while the last run is still going, one message that it was
//! skipped; the next time is planned from the time it was due, so runs missed meanwhile are
//! not made up.

use super::{Instant, Note, Phase, ServiceId, ServiceState, Supervisor};
use crate::core::schedule::{Rule, civil_text};
use crate::core::service::Event;
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// A wall clock set by more than this is not caught up with: forward, the run it passed over
/// is not made (as if tend had not been running); back, the times it brings back are run
/// again. Within it, a run passed over is made at once, and times that come again are not
/// run twice. Vixie cron draws the line at the same place.
pub const JUMP_LIMIT: Duration = Duration::from_secs(3 * 3600);

/// When a scheduled task is next due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// `@every`: on the core's (monotonic) clock.
    Mono(Instant),
    /// A cron rule: on the wall clock.
    Wall(Timestamp),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub due: Due,
    /// A cron rule's: the wall-clock time the plan was made at. Times up to it have been
    /// reached (run, or skipped), so a clock set back a little does not run them again.
    pub reached: Option<Timestamp>,
}

impl Supervisor {
    /// When a scheduled task is next due, while its schedule is followed.
    pub fn next_run(&self, svc: ServiceId) -> Option<Due> {
        self.plans.get(svc.0).copied().flatten().map(|p| p.due)
    }

    /// When the latest successful run of a scheduled task ended.
    pub fn last_success(&self, svc: ServiceId) -> Option<Instant> {
        self.last_success.get(svc.0).copied().flatten()
    }

    /// The earliest wall-clock time at which the shell must hand in `Input::WallClock`: the
    /// next time a cron rule is due. None: no cron rule is followed.
    pub fn poll_wall_timeout(&self) -> Option<Timestamp> {
        self.plans
            .iter()
            .filter_map(|p| match p {
                Some(Plan {
                    due: Due::Wall(t), ..
                }) => Some(*t),
                Some(_) | None => None,
            })
            .min()
    }

    /// The wall-clock time at `now`, from the latest reading.
    pub(super) fn wall_at(&self, now: Instant) -> Option<Timestamp> {
        let (then, wall) = self.wall?;
        let ahead = SignedDuration::try_from(now.since(then)).ok()?;
        let behind = SignedDuration::try_from(then.since(now)).ok()?;
        wall.checked_add(ahead)
            .and_then(|t| t.checked_sub(behind))
            .ok()
    }

    /// Every service's plan as its state wants it.
    pub(super) fn keep_plans(&mut self, now: Instant) {
        for i in 0..self.services.len() {
            self.keep_plan(i, now);
        }
    }

    /// A task's schedule is followed while tend runs and the task is neither stopped nor
    /// blocked: then it has a plan (a cron rule as soon as the wall clock is known); else none.
    pub(super) fn keep_plan(&mut self, i: usize, now: Instant) {
        let active = self.phase == Phase::Running
            && !self.retired[i]
            && self.spec.services[i].schedule.is_some()
            && !matches!(
                self.services[i].state,
                ServiceState::Stopped { .. } | ServiceState::Blocked { .. }
            );
        if !active {
            self.plans[i] = None;
        } else if self.plans[i].is_none() {
            self.plans[i] = self.plan_from(i, now, self.wall_at(now));
        }
    }

    /// The first due time of task `i` after `now` (`wall` on the wall clock).
    fn plan_from(&self, i: usize, now: Instant, wall: Option<Timestamp>) -> Option<Plan> {
        match &self.spec.services[i].schedule.as_ref()?.rule {
            Rule::Every(every) => Some(Plan {
                due: Due::Mono(now.after(*every)),
                reached: None,
            }),
            Rule::Cron(cron) => {
                let wall = wall?;
                let next = cron.next_after(&self.spec.timezone, wall)?;
                Some(Plan {
                    due: Due::Wall(next),
                    reached: Some(wall),
                })
            }
        }
    }

    /// A definition changed by a reload: its schedule starts over. A task that got a
    /// schedule waits for its times; one that lost it starts like any service.
    pub(super) fn rescheduled(&mut self, i: usize) {
        self.plans[i] = None;
        let scheduled = self.spec.services[i].schedule.is_some();
        let state = &mut self.services[i].state;
        match (scheduled, &*state) {
            (
                true,
                ServiceState::Idle | ServiceState::Exited { .. } | ServiceState::Failed { .. },
            ) => *state = ServiceState::Scheduled { last: None },
            (false, ServiceState::Scheduled { .. }) => *state = ServiceState::Idle,
            _ => {}
        }
    }

    /// `@every` tasks whose time has come (`handle_timeout`).
    pub(super) fn run_due(&mut self, now: Instant) {
        for i in 0..self.services.len() {
            let Some(Plan {
                due: Due::Mono(at), ..
            }) = self.plans[i]
            else {
                continue;
            };
            if at > now {
                continue;
            }
            // The next time counts from this one, not from when it is handled; times already
            // gone are passed over.
            let every = match self.spec.services[i].schedule.as_ref().map(|s| &s.rule) {
                Some(Rule::Every(every)) if !every.is_zero() => *every,
                _ => continue,
            };
            let late = now.since(at);
            let periods = late.as_nanos() / every.as_nanos() + 1;
            let next = at.after(every.saturating_mul(u32::try_from(periods).unwrap_or(u32::MAX)));
            self.plans[i] = Some(Plan {
                due: Due::Mono(next),
                reached: None,
            });
            self.run_or_skip(i, now);
        }
    }

    /// The shell's reading of the wall clock at `now`: `set` when the clock was just set
    /// (a jump, not the clock's own course).
    pub(super) fn on_wall_clock(&mut self, now: Instant, wall: Timestamp, set: bool) {
        let expected = self.wall_at(now);
        self.wall = Some((now, wall));
        if self.phase != Phase::Running {
            return;
        }
        if set {
            let by = expected.map(|e| wall.duration_since(e));
            self.log(Note::ClockSet {
                by: by.map(|d| d.as_secs()),
            });
        }
        for i in 0..self.services.len() {
            let Some(plan) = self.plans[i] else {
                continue;
            };
            let Due::Wall(due) = plan.due else {
                continue;
            };
            let reached = plan.reached.unwrap_or(due);
            if wall >= due {
                let late = wall.duration_since(due).unsigned_abs();
                self.plans[i] = self.plan_from(i, now, Some(wall));
                if set && late > JUMP_LIMIT {
                    let name = self.spec.services[i].name.clone();
                    let missed = civil_text(&self.spec.timezone, due);
                    self.log(Note::RunMissed { name, missed });
                } else {
                    self.run_or_skip(i, now);
                }
            } else if set
                && wall < reached
                && reached.duration_since(wall).unsigned_abs() > JUMP_LIMIT
            {
                // Set back a long way: the clock was wrong, the times it brings back are new.
                self.plans[i] = self.plan_from(i, now, Some(wall));
            }
        }
        // Cron rules waiting for a first reading.
        self.keep_plans(now);
    }

    /// Task `i` is due: it starts (once its dependencies allow), or, while its last run is
    /// not over, this run is skipped and said.
    fn run_or_skip(&mut self, i: usize, now: Instant) {
        let svc = ServiceId(i);
        match self.services[i].state {
            ServiceState::Scheduled { .. } => self.step(svc, Event::Due, now),
            _ => {
                let name = self.spec.services[i].name.clone();
                let state = self.services[i].state_name();
                let pid = self.services[i].pid();
                let next = self.next_run_text(i, now);
                self.log(Note::RunSkipped {
                    name,
                    state,
                    pid,
                    next,
                });
            }
        }
    }

    /// "at 2026-03-29 03:00:00 CEST" or "in 30s": when task `i` runs next, for messages.
    pub(super) fn next_run_text(&self, i: usize, now: Instant) -> String {
        match self.plans.get(i).copied().flatten().map(|p| p.due) {
            Some(Due::Wall(t)) => format!("at {}", civil_text(&self.spec.timezone, t)),
            Some(Due::Mono(t)) => format!("in {}", crate::core::io::short_duration(t.since(now))),
            None => "not planned".to_string(),
        }
    }
}
