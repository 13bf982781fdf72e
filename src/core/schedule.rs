//! When a scheduled task is due: pure computation on times handed in.
//!
//! A cron rule matches civil (wall-clock) times, seconds included, in a time zone; `next_after`
//! turns that into instants. Where the zone's rules make a civil time not exist (a gap: the
//! clocks go forward) the time counts as reached at the change itself, so the task runs right
//! after it; where a civil time happens twice (a fold: the clocks go back) only its first
//! occurrence counts, so the task runs once. `@every` is no calendar rule at all: it counts
//! on tend's monotonic clock, which neither time zones nor a clock being set can move.
//!
//! The zone rules are jiff's (`jiff::tz::TimeZone`, loaded by the configuration from the
//! system's zone files); the cron fields and the search are tend's own, see
//! docs/architecture.md.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};
use std::time::Duration;

/// `schedule`: as written, and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The expression as written in the file, for messages and `tend status`.
    pub text: String,
    pub rule: Rule,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// `@every D`: D after the schedule begins, then every D (on the monotonic clock).
    Every(Duration),
    /// A cron expression (or `@daily` and the like), in the configured time zone.
    Cron(Cron),
}

/// The times a cron expression matches, one bit per value of each field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cron {
    /// Bit s for second s (0-59); only bit 0 for a five-field expression.
    pub seconds: u64,
    /// Bit m for minute m (0-59).
    pub minutes: u64,
    /// Bit h for hour h (0-23).
    pub hours: u32,
    /// Bit d for day of the month d (1-31).
    pub days: u32,
    /// Bit m for month m (1-12).
    pub months: u16,
    /// Bit w for day of the week w (0-6, 0 is Sunday).
    pub weekdays: u8,
    /// Both the day of the month and the day of the week are restricted (neither field
    /// starts with `*`): a day matches when either does, as in Vixie cron. Otherwise both
    /// must, the unrestricted one matching every day.
    pub either_day: bool,
}

/// A civil (wall-clock) time to the second, with no zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// How far ahead the calendar search looks: a February 29th needs up to eight years.
const SEARCH_YEARS: i32 = 9;

/// The candidates `next_after` may look at and pass over: those that resolve to an instant
/// already gone, which only happens while a fold is lived through the second time (at most
/// its length in seconds).
const MAX_SKIPPED: u32 = 100_000;

impl Cron {
    /// Whether the expression can ever match: a day of the month that some listed month has
    /// (February counting 29 days). With the either-day rule, or the day of the month
    /// unrestricted, every month has matching days.
    pub fn can_match(&self) -> bool {
        if self.either_day || self.days == ALL_DAYS {
            return self.months != 0 && self.weekdays != 0;
        }
        (1..=12u8).any(|m| {
            self.months & (1 << m) != 0
                && (1..=max_days(m)).any(|d| self.days & (1 << d) != 0)
                && self.weekdays != 0
        })
    }

    /// Whether the day `(year, month, day)` matches the day fields.
    pub fn day_matches(&self, year: i32, month: u8, day: u8) -> bool {
        let dom = self.days & (1 << day) != 0;
        let dow = self.weekdays & (1 << weekday(year, month, day)) != 0;
        if self.either_day {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first civil time after `after` (strictly) that the expression matches, within the
    /// next few years; None if there is none (an expression that `can_match` always has one).
    pub fn next_civil_after(&self, after: Civil) -> Option<Civil> {
        let mut t = after.next_second();
        let last_year = after.year.saturating_add(SEARCH_YEARS);
        loop {
            if t.year > last_year {
                return None;
            }
            match next_bit(u64::from(self.months), t.month, 13) {
                None => {
                    t = Civil::midnight(t.year + 1, 1, 1);
                    continue;
                }
                Some(m) if m != t.month => {
                    t = Civil::midnight(t.year, m, 1);
                }
                Some(_) => {}
            }
            if !self.day_matches(t.year, t.month, t.day) {
                t = t.next_day();
                continue;
            }
            match next_bit(u64::from(self.hours), t.hour, 24) {
                None => {
                    t = t.next_day();
                    continue;
                }
                Some(h) if h != t.hour => {
                    t.hour = h;
                    t.minute = 0;
                    t.second = 0;
                }
                Some(_) => {}
            }
            match next_bit(self.minutes, t.minute, 60) {
                None => {
                    t = t.next_hour();
                    continue;
                }
                Some(m) if m != t.minute => {
                    t.minute = m;
                    t.second = 0;
                }
                Some(_) => {}
            }
            match next_bit(self.seconds, t.second, 60) {
                None => {
                    t = t.next_minute();
                    continue;
                }
                Some(s) => {
                    t.second = s;
                    return Some(t);
                }
            }
        }
    }

    /// The first instant after `after` (strictly) at which the expression is due in `tz`.
    ///
    /// A matching civil time is due at the instant the zone's clocks show it; one that the
    /// clocks skip (a gap) at the instant of the change, so the times of a gap are run once,
    /// right after it; one that they show twice (a fold) only the first time.
    pub fn next_after(&self, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
        let mut civil = Civil::from_datetime(tz.to_datetime(after));
        for _ in 0..MAX_SKIPPED {
            civil = self.next_civil_after(civil)?;
            let due = instant_of(tz, civil)?;
            if due > after {
                return Some(due);
            }
        }
        None
    }
}

/// Every day of the month, 1 to 31.
const ALL_DAYS: u32 = 0xffff_fffe;

/// When the clocks of `tz` reach `civil`: the instant they show it (the first, in a fold), or
/// for a time they skip, the instant they skip it.
fn instant_of(tz: &TimeZone, civil: Civil) -> Option<Timestamp> {
    let dt = civil.to_datetime()?;
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
            ambiguous.earlier().ok()
        }
        AmbiguousOffset::Gap { .. } => {
            // `earlier` reads it with the offset after the change, which puts it before the
            // change; the change is the first transition after that.
            let before = ambiguous.earlier().ok()?;
            tz.following(before).next().map(|t| t.timestamp())
        }
    }
}

impl Civil {
    fn midnight(year: i32, month: u8, day: u8) -> Civil {
        Civil {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
        }
    }

    pub fn from_datetime(dt: DateTime) -> Civil {
        Civil {
            year: i32::from(dt.year()),
            month: dt.month().unsigned_abs(),
            day: dt.day().unsigned_abs(),
            hour: dt.hour().unsigned_abs(),
            minute: dt.minute().unsigned_abs(),
            second: dt.second().unsigned_abs(),
        }
    }

    fn to_datetime(self) -> Option<DateTime> {
        let year = i16::try_from(self.year).ok()?;
        let [month, day, hour, minute, second] =
            [self.month, self.day, self.hour, self.minute, self.second].map(|v| v as i8);
        DateTime::new(year, month, day, hour, minute, second, 0).ok()
    }

    fn next_day(self) -> Civil {
        if self.day < days_in_month(self.year, self.month) {
            Civil::midnight(self.year, self.month, self.day + 1)
        } else if self.month < 12 {
            Civil::midnight(self.year, self.month + 1, 1)
        } else {
            Civil::midnight(self.year + 1, 1, 1)
        }
    }

    fn next_hour(self) -> Civil {
        if self.hour < 23 {
            Civil {
                hour: self.hour + 1,
                minute: 0,
                second: 0,
                ..self
            }
        } else {
            self.next_day()
        }
    }

    fn next_minute(self) -> Civil {
        if self.minute < 59 {
            Civil {
                minute: self.minute + 1,
                second: 0,
                ..self
            }
        } else {
            self.next_hour()
        }
    }

    fn next_second(self) -> Civil {
        if self.second < 59 {
            Civil {
                second: self.second + 1,
                ..self
            }
        } else {
            self.next_minute()
        }
    }
}

/// The smallest value from `from` up to (not including) `end` whose bit is set.
fn next_bit(mask: u64, from: u8, end: u8) -> Option<u8> {
    let shifted = mask.checked_shr(u32::from(from))?;
    let found = u32::from(from) + shifted.trailing_zeros();
    (shifted != 0 && found < u32::from(end)).then_some(found as u8)
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The most days month `month` has in any year.
fn max_days(month: u8) -> u8 {
    days_in_month(2000, month)
}

pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Day of the week, 0 for Sunday, of a date of the proleptic Gregorian calendar.
pub fn weekday(year: i32, month: u8, day: u8) -> u8 {
    // Days since 1970-01-01 (a Thursday), after Howard Hinnant's `days_from_civil`.
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days + 4).rem_euclid(7) as u8
}

/// `2026-03-29 03:00:00 CEST`: an instant as the zone's clocks show it, for people.
pub fn civil_text(tz: &TimeZone, at: Timestamp) -> String {
    let c = Civil::from_datetime(tz.to_datetime(at));
    let info = tz.to_offset_info(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {}",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        info.abbreviation()
    )
}
