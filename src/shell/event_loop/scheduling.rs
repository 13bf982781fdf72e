//! The wall clock for scheduled tasks: read at the wake-ups that need it and handed to the
//! core as data, and a wall-clock timer (`sys::timer`) armed for the core's next wall-clock
//! time, which also says when the clock was set. Between runs nothing else wakes tend: the
//! timer is armed once per due time, and not at all without a cron rule.

use super::Loop;
use crate::core::{self, Input, Level};
use crate::sys::timer::Fired;
use jiff::Timestamp;
use std::time::{Instant, SystemTime};

impl Loop {
    /// Hands the core the wall clock's reading at this wake-up (`set`: the clock was just
    /// set, rather than running its course).
    pub(super) fn hand_wall_clock(&mut self, now: Instant, set: bool) {
        self.hand_wall_clock_at(self.core_time(now), set);
    }

    /// The same, at `at` on the core's clock.
    pub(super) fn hand_wall_clock_at(&mut self, at: core::Instant, set: bool) {
        if self.wall_timer.is_none() {
            return;
        }
        // Not `Timestamp::now()`, which panics on a clock outside jiff's years (and links
        // every error message of jiff's in).
        let wall = Timestamp::try_from(SystemTime::now()).unwrap_or(Timestamp::MAX);
        self.sup.handle(at, Input::WallClock { wall, set });
    }

    /// The timer is readable: its time has come, or the clock was set.
    #[inline(never)]
    pub(super) fn on_wall_timer(&mut self, now: Instant) {
        let Some(timer) = &self.wall_timer else {
            return;
        };
        let fired = timer.read();
        match fired {
            Ok(Fired::Nothing) => return,
            Ok(Fired::Due) => self.hand_wall_clock(now, false),
            Ok(Fired::ClockSet) => self.hand_wall_clock(now, true),
            Err(e) => self.trouble(&format!("reading the wall-clock timer: {e}")),
        }
        // Either way the kernel disarmed it.
        self.wall_armed = None;
    }

    /// Arms the timer for the core's next wall-clock time, if that changed.
    pub(super) fn update_wall_timer(&mut self) {
        let Some(timer) = &self.wall_timer else {
            return;
        };
        let want = self.sup.poll_wall_timeout();
        if want == self.wall_armed {
            return;
        }
        let at = want.map(|t| {
            let nanos = u32::try_from(t.subsec_nanosecond()).unwrap_or(0);
            (t.as_second(), nanos)
        });
        let set = timer.set(at);
        // Kept as asked even on failure: a timer that cannot be set is said once per time,
        // not on every wake-up.
        self.wall_armed = want;
        if let Err(e) = set {
            self.say(
                Level::Error,
                &format!("cannot set the wall-clock timer of scheduled tasks: {e}"),
            );
        }
    }
}
