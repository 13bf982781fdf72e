//! `schedule`: cron expressions as Vixie cron (Debian's cron) reads them, with an optional
//! leading seconds field, the `@daily`-style shorthands, and `@every DURATION`.
//!
//! A problem names the bytes of the expression it is about, so the error can point inside
//! the string in the file.

use crate::core::schedule::{Cron, Rule, Schedule};
use std::ops::Range;
use std::time::Duration;

/// Why an expression is refused, and where in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Bytes of the expression.
    pub at: Range<usize>,
    pub message: String,
}

/// The shortest `@every` interval: schedules count in seconds.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// The fields, in the order of a six-field expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Weekday,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::Day => "day of the month",
            Field::Month => "month",
            Field::Weekday => "day of the week",
        }
    }

    /// The values the field takes, as written (7 is also Sunday).
    fn range(self) -> (u8, u8) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::Day => (1, 31),
            Field::Month => (1, 12),
            Field::Weekday => (0, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &[
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ],
            Field::Weekday => &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            Field::Second | Field::Minute | Field::Hour | Field::Day => &[],
        }
    }

    /// The value `names()[i]` stands for.
    fn first_name_value(self) -> u8 {
        if self == Field::Month { 1 } else { 0 }
    }
}

const SHORTHANDS: &[(&str, &str)] = &[
    ("@yearly", "0 0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *"),
    ("@monthly", "0 0 0 1 * *"),
    ("@weekly", "0 0 0 * * 0"),
    ("@daily", "0 0 0 * * *"),
    ("@midnight", "0 0 0 * * *"),
    ("@hourly", "0 0 * * * *"),
];

const FIELDS_HELP: &str = "minute hour day-of-month month day-of-week, or 6 with a seconds \
                           field first";

/// Reads a `schedule` value.
pub fn parse(text: &str) -> Result<Schedule, Problem> {
    let rule = rule(text)?;
    Ok(Schedule {
        text: text.trim().to_string(),
        rule,
    })
}

fn rule(text: &str) -> Result<Rule, Problem> {
    let words = words(text);
    let Some(&(first, ref first_at)) = words.first() else {
        return Err(Problem {
            at: 0..text.len(),
            message: format!(
                "the schedule is empty: expected a cron expression ({FIELDS_HELP}), a shorthand such as @daily, or @every DURATION"
            ),
        });
    };
    if first.starts_with('@') {
        return shorthand(text, &words);
    }
    if !(words.len() == 5 || words.len() == 6) {
        let whole = first_at.start..words.last().map_or(text.len(), |(_, r)| r.end);
        return Err(Problem {
            at: whole,
            message: format!(
                "a cron expression has 5 fields ({FIELDS_HELP}), found {}",
                words.len()
            ),
        });
    }
    let fields: &[Field] = if words.len() == 6 {
        &[
            Field::Second,
            Field::Minute,
            Field::Hour,
            Field::Day,
            Field::Month,
            Field::Weekday,
        ]
    } else {
        &[
            Field::Minute,
            Field::Hour,
            Field::Day,
            Field::Month,
            Field::Weekday,
        ]
    };
    let mut cron = Cron {
        seconds: 1,
        minutes: 0,
        hours: 0,
        days: 0,
        months: 0,
        weekdays: 0,
        either_day: false,
    };
    let mut star = [false; 2];
    let mut day_at = 0..0;
    for (&field, (word, at)) in fields.iter().zip(&words) {
        let bits = self::field(field, word, at.start)?;
        match field {
            Field::Second => cron.seconds = bits,
            Field::Minute => cron.minutes = bits,
            Field::Hour => cron.hours = bits as u32,
            Field::Day => {
                cron.days = bits as u32;
                star[0] = word.starts_with('*');
                day_at = at.clone();
            }
            Field::Month => cron.months = bits as u16,
            Field::Weekday => {
                // 7 is Sunday too.
                let bits = (bits | bits >> 7) & 0x7f;
                cron.weekdays = bits as u8;
                star[1] = word.starts_with('*');
            }
        }
    }
    cron.either_day = !star[0] && !star[1];
    if !cron.can_match() {
        return Err(Problem {
            at: day_at,
            message: "this schedule never matches: no month it lists has such a day".into(),
        });
    }
    Ok(Rule::Cron(cron))
}

/// `@daily` and the like, or `@every DURATION`.
fn shorthand(text: &str, words: &[(&str, Range<usize>)]) -> Result<Rule, Problem> {
    let Some((first, at)) = words.first() else {
        return Err(Problem {
            at: 0..text.len(),
            message: "the schedule is empty".into(),
        });
    };
    let name = first.to_ascii_lowercase();
    if name == "@every" {
        let Some(rest_at) = words.get(1).map(|(_, r)| r.start..text.trim_end().len()) else {
            return Err(Problem {
                at: at.clone(),
                message: "@every needs a duration, such as `@every 30s` or `@every 1h 30m`".into(),
            });
        };
        let rest = text.get(rest_at.clone()).unwrap_or_default();
        let every = humantime::parse_duration(rest).map_err(|e| Problem {
            at: rest_at.clone(),
            message: format!(
                "invalid duration \"{rest}\" after @every: {e}; expected a duration with a unit, such as \"30s\" or \"1h 30m\""
            ),
        })?;
        if every < MIN_EVERY {
            return Err(Problem {
                at: rest_at,
                message: format!("@every {rest} is too often: the shortest interval is 1s"),
            });
        }
        return Ok(Rule::Every(every));
    }
    if name == "@reboot" {
        return Err(Problem {
            at: at.clone(),
            message: "@reboot is not a schedule: a task that runs once when tend starts is \
                      `oneshot = true` without `schedule`"
                .into(),
        });
    }
    let Some((_, expansion)) = SHORTHANDS.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = SHORTHANDS.iter().map(|(n, _)| *n).collect();
        return Err(Problem {
            at: at.clone(),
            message: format!(
                "unknown shorthand `{first}`: expected one of {}, or @every DURATION",
                known.join(" ")
            ),
        });
    };
    if let Some((_, extra)) = words.get(1) {
        return Err(Problem {
            at: extra.start..text.trim_end().len(),
            message: format!("`{first}` stands alone: nothing may follow it"),
        });
    }
    rule(expansion)
}

/// The blank-separated words of `text`, with their byte ranges.
fn words(text: &str) -> Vec<(&str, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((text.get(s..i).unwrap_or_default(), s..i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// One field: items separated by commas, each `*`, `N`, `N-M`, with an optional `/STEP`.
/// `at` is where the field starts in the expression.
fn field(field: Field, word: &str, at: usize) -> Result<u64, Problem> {
    let (low, high) = field.range();
    let mut bits = 0u64;
    let mut offset = at;
    for item in word.split(',') {
        let here = offset..offset + item.len();
        offset += item.len() + 1;
        if item.is_empty() {
            return Err(Problem {
                at: here,
                message: format!("an empty item in the {} field", field.name()),
            });
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step_at = here.start + range.len() + 1..here.end;
                let n = number(step).filter(|n| *n >= 1).ok_or_else(|| Problem {
                    at: step_at,
                    message: format!(
                        "the step after `/` must be a whole number of at least 1, found `{step}`"
                    ),
                })?;
                (range, Some(n))
            }
            None => (item, None),
        };
        let range_at = here.start..here.start + range.len();
        let (first, last) = if range == "*" {
            (low, high)
        } else if let Some((a, b)) = range.split_once('-') {
            let a_at = range_at.start..range_at.start + a.len();
            let b_at = a_at.end + 1..range_at.end;
            let a = value(field, a, a_at.clone())?;
            let b = value(field, b, b_at)?;
            if a > b {
                return Err(Problem {
                    at: range_at,
                    message: format!(
                        "the range {range} goes backwards: a range in the {} field runs from the smaller value to the larger",
                        field.name()
                    ),
                });
            }
            (a, b)
        } else {
            let a = value(field, range, range_at)?;
            // `N/STEP` runs from N to the end of the field, as cronie and most crons read it.
            (a, if step.is_some() { high } else { a })
        };
        let step = step.unwrap_or(1);
        let mut v = u32::from(first);
        while v <= u32::from(last) {
            bits |= 1 << v;
            v = v.saturating_add(step);
        }
    }
    Ok(bits)
}

/// A value of `field`: a number in its range, or (months, days of the week) a name.
fn value(field: Field, text: &str, at: Range<usize>) -> Result<u8, Problem> {
    let (low, high) = field.range();
    if let Some(n) = number(text) {
        if (u32::from(low)..=u32::from(high)).contains(&n) {
            return Ok(n as u8);
        }
        return Err(Problem {
            at,
            message: format!(
                "{} {text} is out of range: it goes from {low} to {high}{}",
                field.name(),
                if field == Field::Weekday {
                    " (0 and 7 are Sunday)"
                } else {
                    ""
                }
            ),
        });
    }
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names().iter().position(|n| *n == lower) {
        return Ok(field.first_name_value() + i as u8);
    }
    let expected = if field.names().is_empty() {
        format!("a number from {low} to {high}")
    } else {
        format!(
            "a number from {low} to {high} or a name ({}...)",
            field
                .names()
                .iter()
                .take(3)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(Problem {
        at,
        message: format!(
            "`{text}` is not a value of the {} field: expected {expected}",
            field.name()
        ),
    })
}

/// Digits only (no sign); a number too large for any field is `u32::MAX`.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u32>().unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problem with `text`, and the part of `text` it points at.
    fn refused(text: &str) -> (String, &str) {
        let p = parse(text).expect_err(text);
        (p.message, &text[p.at])
    }

    #[test]
    fn every_takes_a_duration_of_a_second_or_more() {
        assert_eq!(
            parse("@every 30s").unwrap().rule,
            Rule::Every(Duration::from_secs(30))
        );
        assert_eq!(
            parse(" @every 1h 30m ").unwrap(),
            Schedule {
                text: "@every 1h 30m".into(),
                rule: Rule::Every(Duration::from_secs(5400))
            }
        );
        let (message, at) = refused("@every 30");
        assert!(message.contains("invalid duration \"30\""), "{message}");
        assert_eq!(at, "30");
        let (message, at) = refused("@every 500ms");
        assert!(message.contains("the shortest interval is 1s"), "{message}");
        assert_eq!(at, "500ms");
        assert_eq!(refused("@every").1, "@every");
    }

    #[test]
    fn shorthands_stand_alone() {
        assert_eq!(
            parse("@daily").unwrap().rule,
            parse("0 0 * * *").unwrap().rule
        );
        assert_eq!(
            parse("@HOURLY").unwrap().rule,
            parse("0 * * * *").unwrap().rule
        );
        assert_eq!(
            parse("@weekly").unwrap().rule,
            parse("0 0 * * 0").unwrap().rule
        );
        let (message, at) = refused("@daily 5");
        assert!(message.contains("stands alone"), "{message}");
        assert_eq!(at, "5");
        let (message, at) = refused("@fortnightly");
        assert!(message.contains("unknown shorthand"), "{message}");
        assert!(message.contains("@yearly"), "{message}");
        assert_eq!(at, "@fortnightly");
        let (message, _) = refused("@reboot");
        assert!(message.contains("oneshot = true"), "{message}");
    }

    #[test]
    fn problems_point_inside_the_expression() {
        for (text, part, words) in [
            (
                "61 * * * *",
                "61",
                "minute 61 is out of range: it goes from 0 to 59",
            ),
            ("* 24 * * *", "24", "hour 24 is out of range"),
            (
                "* * 0 * *",
                "0",
                "day of the month 0 is out of range: it goes from 1 to 31",
            ),
            ("* * * 13 *", "13", "month 13 is out of range"),
            ("* * * * 8", "8", "(0 and 7 are Sunday)"),
            ("60 * * * * *", "60", "second 60 is out of range"),
            (
                "*/0 * * * *",
                "0",
                "the step after `/` must be a whole number of at least 1",
            ),
            ("1-5/x * * * *", "x", "found `x`"),
            ("* * * * mon-sun", "mon-sun", "goes backwards"),
            ("30-10 * * * *", "30-10", "goes backwards"),
            (
                "* * * foo *",
                "foo",
                "`foo` is not a value of the month field",
            ),
            ("* * * * funday", "funday", "a name (sun, mon, tue...)"),
            ("1,,2 * * * *", "", "an empty item in the minute field"),
            ("* * * * * * *", "* * * * * * *", "found 7"),
            ("  * * *  ", "* * *", "a cron expression has 5 fields"),
            ("0 0 30 2 *", "30", "never matches"),
            ("0 0 31 4,6,9,11 *", "31", "never matches"),
            (
                "* * ? * *",
                "?",
                "`?` is not a value of the day of the month field",
            ),
            ("-1 * * * *", "", "is not a value of the minute field"),
            ("99999999999 * * * *", "99999999999", "out of range"),
        ] {
            let (message, at) = refused(text);
            assert!(message.contains(words), "{text}: {message}");
            assert_eq!(at, part, "{text}: {message}");
        }
        assert!(refused("").0.contains("the schedule is empty"));
        assert!(refused("   ").0.contains("the schedule is empty"));
    }

    #[test]
    fn a_day_that_some_month_has_is_enough() {
        // February 29th happens; the 31st in a list with one long month does.
        assert!(parse("0 0 29 2 *").is_ok());
        assert!(parse("0 0 31 4,5 *").is_ok());
        // With a day of the week too, either may match (Vixie cron): not an error.
        assert!(parse("0 0 30 2 mon").is_ok());
    }
}
