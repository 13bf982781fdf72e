//! Durations: a string with units for people (`"100ms"`, `"1m 30s"`), or a bare number of
//! seconds for those who think in seconds anyway.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// What the error messages show as the accepted forms.
pub const ALLOWED: &str =
    "a duration with a unit such as \"100ms\", \"9s\" or \"1m 30s\", or a number of seconds";

/// A duration as written: `"1m 30s"`, `5` or `0.5`.
#[derive(Clone, Debug, PartialEq)]
pub enum DurationValue {
    Text(String),
    Seconds(i64),
    FractionalSeconds(f64),
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ALLOWED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                Ok(DurationValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                Ok(DurationValue::Seconds(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                i64::try_from(v)
                    .map(DurationValue::Seconds)
                    .map_err(|_| E::custom(format!("invalid duration {v}: too long")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                Ok(DurationValue::FractionalSeconds(v))
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// The duration `value` stands for, or why it stands for none.
pub fn parse(value: &DurationValue) -> Result<Duration, String> {
    match value {
        DurationValue::Text(text) => humantime::parse_duration(text.trim())
            .map_err(|e| format!("invalid duration \"{text}\": {e}; expected {ALLOWED}")),
        DurationValue::Seconds(n) => u64::try_from(*n)
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {n}: it is negative; expected {ALLOWED}")),
        DurationValue::FractionalSeconds(x) => Duration::try_from_secs_f64(*x)
            .map_err(|_| format!("invalid duration {x}: expected {ALLOWED}")),
    }
}

/// A duration as people write it (`1m 30s`, `100ms`), for messages.
pub fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<Duration, String> {
        parse(&DurationValue::Text(s.into()))
    }

    #[test]
    fn strings_numbers_and_fractions() {
        assert_eq!(text("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(text("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(text(" 9s "), Ok(Duration::from_secs(9)));
        assert_eq!(
            parse(&DurationValue::Seconds(5)),
            Ok(Duration::from_secs(5))
        );
        assert_eq!(
            parse(&DurationValue::FractionalSeconds(0.25)),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(show(Duration::from_millis(1500)), "1s 500ms");
    }

    #[test]
    fn invalid_values_say_what_is_allowed() {
        for bad in ["", "9", "5 parsecs", "-1s", "99999999999999999999999s"] {
            let err = text(bad).unwrap_err();
            assert!(
                err.ends_with(&format!("expected {ALLOWED}")),
                "{bad}: {err}"
            );
        }
        assert!(
            parse(&DurationValue::Seconds(-1))
                .unwrap_err()
                .contains("negative")
        );
        for bad in [-0.5, f64::NAN, f64::INFINITY, 1e300] {
            assert!(
                parse(&DurationValue::FractionalSeconds(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
