//! When cron expressions are due: fields, names, steps, the day-of-month/day-of-week rule,
//! seconds, and the days the clocks change in real zones (read from the system's tzdata).

use crate::config::cron;
use crate::core::schedule::{Cron, Rule, civil_text, weekday};
use jiff::Timestamp;
use jiff::tz::TimeZone;

pub fn cron(text: &str) -> Cron {
    match cron::parse(text)
        .unwrap_or_else(|p| panic!("{text}: {p:?}"))
        .rule
    {
        Rule::Cron(c) => c,
        Rule::Every(_) => panic!("{text} is not a cron expression"),
    }
}

/// A zone of the system's time zone database (Debian's tzdata).
pub fn zone(name: &str) -> TimeZone {
    let path = format!("/usr/share/zoneinfo/{name}");
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (install tzdata)"));
    TimeZone::tzif(name, &data).unwrap()
}

pub fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// The next `n` due times after `from`, as the zone's clocks show them.
fn next_n(expr: &str, tz: &TimeZone, from: &str, n: usize) -> Vec<String> {
    let c = cron(expr);
    let mut t = ts(from);
    let mut out = Vec::new();
    for _ in 0..n {
        t = c.next_after(tz, t).unwrap();
        out.push(civil_text(tz, t));
    }
    out
}

/// The next `n` due times after `from`, in UTC.
fn next_utc(expr: &str, tz: &TimeZone, from: &str, n: usize) -> Vec<String> {
    let c = cron(expr);
    let mut t = ts(from);
    let mut out = Vec::new();
    for _ in 0..n {
        t = c.next_after(tz, t).unwrap();
        out.push(t.to_string());
    }
    out
}

#[test]
fn weekdays_of_known_dates() {
    assert_eq!(weekday(1970, 1, 1), 4);
    assert_eq!(weekday(2026, 1, 1), 4);
    assert_eq!(weekday(2000, 2, 29), 2);
    assert_eq!(weekday(2028, 2, 29), 2);
    assert_eq!(weekday(1900, 3, 1), 4);
}

#[test]
fn five_fields_with_steps_ranges_and_lists() {
    let utc = TimeZone::UTC;
    assert_eq!(
        next_n("*/15 * * * *", &utc, "2026-01-01T10:07:30Z", 3),
        [
            "2026-01-01 10:15:00 UTC",
            "2026-01-01 10:30:00 UTC",
            "2026-01-01 10:45:00 UTC"
        ]
    );
    assert_eq!(
        next_n("5-20/5,45 3 * * *", &utc, "2026-01-01T03:00:00Z", 6),
        [
            "2026-01-01 03:05:00 UTC",
            "2026-01-01 03:10:00 UTC",
            "2026-01-01 03:15:00 UTC",
            "2026-01-01 03:20:00 UTC",
            "2026-01-01 03:45:00 UTC",
            "2026-01-02 03:05:00 UTC"
        ]
    );
    // `N/STEP` runs to the end of the field.
    assert_eq!(
        next_n("0 20/2 * * *", &utc, "2026-01-01T00:00:00Z", 3),
        [
            "2026-01-01 20:00:00 UTC",
            "2026-01-01 22:00:00 UTC",
            "2026-01-02 20:00:00 UTC"
        ]
    );
    // Strictly after: a time that matches is not its own next time.
    assert_eq!(
        next_n("0 0 * * *", &utc, "2026-01-01T00:00:00Z", 1),
        ["2026-01-02 00:00:00 UTC"]
    );
    assert_eq!(
        next_n("59 23 31 12 *", &utc, "2026-06-01T00:00:00Z", 2),
        ["2026-12-31 23:59:00 UTC", "2027-12-31 23:59:00 UTC"]
    );
}

#[test]
fn month_and_weekday_names_in_any_case() {
    let utc = TimeZone::UTC;
    // 2026-01-01 is a Thursday.
    assert_eq!(
        next_n("0 9 * JAN,jul Mon-Fri", &utc, "2026-01-01T10:00:00Z", 4),
        [
            "2026-01-02 09:00:00 UTC",
            "2026-01-05 09:00:00 UTC",
            "2026-01-06 09:00:00 UTC",
            "2026-01-07 09:00:00 UTC"
        ]
    );
    assert_eq!(cron("0 9 * 1,7 1-5"), cron("0 9 * jan,jul mon-fri"));
    // 7 is Sunday as 0 is; so is `sun`.
    assert_eq!(cron("0 0 * * 7"), cron("0 0 * * 0"));
    assert_eq!(cron("0 0 * * sun"), cron("0 0 * * 0"));
    assert_eq!(cron("0 0 * * 5-7"), cron("0 0 * * fri,sat,sun"));
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    let utc = TimeZone::UTC;
    // The 13th, or any Friday (Vixie cron): January 2026's Fridays are 2, 9, 16; the 13th a
    // Tuesday.
    assert_eq!(
        next_n("0 0 13 * fri", &utc, "2026-01-01T00:00:00Z", 4),
        [
            "2026-01-02 00:00:00 UTC",
            "2026-01-09 00:00:00 UTC",
            "2026-01-13 00:00:00 UTC",
            "2026-01-16 00:00:00 UTC"
        ]
    );
    // A field starting with `*` counts as unrestricted, so both must match: odd days that
    // are Fridays.
    assert_eq!(
        next_n("0 0 */2 * fri", &utc, "2026-01-01T00:00:00Z", 2),
        ["2026-01-09 00:00:00 UTC", "2026-01-23 00:00:00 UTC"]
    );
    // Only one restricted: that one decides.
    assert_eq!(
        next_n("0 0 * * fri", &utc, "2026-01-01T00:00:00Z", 1),
        ["2026-01-02 00:00:00 UTC"]
    );
    assert_eq!(
        next_n("0 0 13 * *", &utc, "2026-01-01T00:00:00Z", 1),
        ["2026-01-13 00:00:00 UTC"]
    );
}

#[test]
fn six_fields_have_seconds_first() {
    let utc = TimeZone::UTC;
    assert_eq!(
        next_n("*/20 * * * * *", &utc, "2026-01-01T00:00:05.5Z", 4),
        [
            "2026-01-01 00:00:20 UTC",
            "2026-01-01 00:00:40 UTC",
            "2026-01-01 00:01:00 UTC",
            "2026-01-01 00:01:20 UTC"
        ]
    );
    assert_eq!(
        next_n("30 0 12 * * *", &utc, "2026-01-01T12:00:30Z", 1),
        ["2026-01-02 12:00:30 UTC"]
    );
    // Every second, across the end of a year.
    assert_eq!(
        next_n("* * * * * *", &utc, "2026-12-31T23:59:58.9Z", 3),
        [
            "2026-12-31 23:59:59 UTC",
            "2027-01-01 00:00:00 UTC",
            "2027-01-01 00:00:01 UTC"
        ]
    );
}

#[test]
fn shorthands() {
    let utc = TimeZone::UTC;
    let from = "2026-01-01T10:07:30Z"; // a Thursday
    for (expr, next) in [
        ("@hourly", "2026-01-01 11:00:00 UTC"),
        ("@daily", "2026-01-02 00:00:00 UTC"),
        ("@midnight", "2026-01-02 00:00:00 UTC"),
        ("@weekly", "2026-01-04 00:00:00 UTC"),
        ("@monthly", "2026-02-01 00:00:00 UTC"),
        ("@yearly", "2027-01-01 00:00:00 UTC"),
        ("@annually", "2027-01-01 00:00:00 UTC"),
    ] {
        assert_eq!(next_n(expr, &utc, from, 1), [next], "{expr}");
    }
}

#[test]
fn february_29th_comes_every_four_years() {
    assert_eq!(
        next_n("0 0 29 2 *", &TimeZone::UTC, "2026-01-01T00:00:00Z", 2),
        ["2028-02-29 00:00:00 UTC", "2032-02-29 00:00:00 UTC"]
    );
}

/// Europe/Berlin, 2026-03-29: at 02:00 CET the clocks go to 03:00 CEST (01:00 UTC). The
/// times in between do not exist: they are due at the change, once.
#[test]
fn berlin_gap_runs_the_missing_times_once_right_after_the_change() {
    let berlin = zone("Europe/Berlin");
    assert_eq!(
        next_n("30 2 * * *", &berlin, "2026-03-27T12:00:00Z", 4),
        [
            "2026-03-28 02:30:00 CET",
            "2026-03-29 03:00:00 CEST",
            "2026-03-30 02:30:00 CEST",
            "2026-03-31 02:30:00 CEST"
        ]
    );
    assert_eq!(
        next_utc("30 2 * * *", &berlin, "2026-03-28T12:00:00Z", 1),
        ["2026-03-29T01:00:00Z"]
    );
    // Every quarter hour: 02:00, 02:15, 02:30 and 02:45 all fall into the gap and make one
    // run at the change; 03:00 is that same instant and no second run.
    assert_eq!(
        next_n("*/15 * * * *", &berlin, "2026-03-29T00:30:00Z", 4),
        [
            "2026-03-29 01:45:00 CET",
            "2026-03-29 03:00:00 CEST",
            "2026-03-29 03:15:00 CEST",
            "2026-03-29 03:30:00 CEST"
        ]
    );
    assert_eq!(
        next_n("0 * * * *", &berlin, "2026-03-28T23:30:00Z", 3),
        [
            "2026-03-29 01:00:00 CET",
            "2026-03-29 03:00:00 CEST",
            "2026-03-29 04:00:00 CEST"
        ]
    );
}

/// Europe/Berlin, 2026-10-25: at 03:00 CEST the clocks go back to 02:00 CET (01:00 UTC), so
/// 02:00 to 02:59 happen twice. A time in there runs once, the first time.
#[test]
fn berlin_fold_runs_a_repeated_time_once() {
    let berlin = zone("Europe/Berlin");
    assert_eq!(
        next_utc("30 2 * * *", &berlin, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    );
    // Asked while the hour is lived the second time (02:10 CET): the next is tomorrow's.
    assert_eq!(
        next_n("30 2 * * *", &berlin, "2026-10-25T01:10:00Z", 1),
        ["2026-10-26 02:30:00 CET"]
    );
    // Hourly: 02:00 CEST, then 03:00 CET two hours later; 02:00 CET is not run again.
    assert_eq!(
        next_n("0 * * * *", &berlin, "2026-10-24T23:30:00Z", 3),
        [
            "2026-10-25 02:00:00 CEST",
            "2026-10-25 03:00:00 CET",
            "2026-10-25 04:00:00 CET"
        ]
    );
    // Every 20 minutes through the fold: each time of the repeated hour once.
    assert_eq!(
        next_n("*/20 * * * *", &berlin, "2026-10-25T00:30:00Z", 4),
        [
            "2026-10-25 02:40:00 CEST",
            "2026-10-25 03:00:00 CET",
            "2026-10-25 03:20:00 CET",
            "2026-10-25 03:40:00 CET"
        ]
    );
}

/// America/New_York, 2026: the clocks go forward at 02:00 EST on March 8th (07:00 UTC) and
/// back at 02:00 EDT on November 1st (06:00 UTC).
#[test]
fn new_york_gap_and_fold() {
    let ny = zone("America/New_York");
    assert_eq!(
        next_n("15 2 * * *", &ny, "2026-03-07T12:00:00Z", 3),
        [
            "2026-03-08 03:00:00 EDT",
            "2026-03-09 02:15:00 EDT",
            "2026-03-10 02:15:00 EDT"
        ]
    );
    assert_eq!(
        next_utc("15 2 * * *", &ny, "2026-03-07T12:00:00Z", 1),
        ["2026-03-08T07:00:00Z"]
    );
    assert_eq!(
        next_utc("30 1 * * *", &ny, "2026-10-31T12:00:00Z", 2),
        ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
    );
    // Six fields, every 30 minutes at second 10, through the repeated hour.
    assert_eq!(
        next_n("10 */30 1 * * *", &ny, "2026-11-01T05:00:00Z", 3),
        [
            "2026-11-01 01:00:10 EDT",
            "2026-11-01 01:30:10 EDT",
            "2026-11-02 01:00:10 EST"
        ]
    );
}
