//! Byte sizes as written in the file: `"10MiB"`, `"500 KB"`, or a plain number of bytes.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

pub const ALLOWED: &str = "a size such as \"10MiB\", \"512KiB\" or \"1GB\", or a number of bytes";

/// A size as written: `"10MiB"` or a number of bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum SizeValue {
    Text(String),
    Bytes(i64),
}

impl<'de> Deserialize<'de> for SizeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = SizeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(ALLOWED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SizeValue, E> {
                Ok(SizeValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeValue, E> {
                Ok(SizeValue::Bytes(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeValue, E> {
                i64::try_from(v)
                    .map(SizeValue::Bytes)
                    .map_err(|_| E::custom(format!("invalid size {v}: too large")))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

const UNITS: [(&str, u64); 7] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
];

pub fn parse(value: &SizeValue) -> Result<u64, String> {
    let text = match value {
        SizeValue::Bytes(n) => {
            return u64::try_from(*n).map_err(|_| format!("invalid size {n}: it is negative"));
        }
        SizeValue::Text(text) => text.trim(),
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit = unit.trim_start();
    let invalid = || {
        format!(
            "invalid size \"{text}\": expected a whole number and one of the units {}",
            UNITS.map(|(u, _)| u).join(", ")
        )
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let Some((_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(invalid());
    };
    number
        .checked_mul(*scale)
        .ok_or_else(|| format!("invalid size \"{text}\": too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<u64, String> {
        parse(&SizeValue::Text(s.to_string()))
    }

    #[test]
    fn sizes() {
        assert_eq!(text("10MiB"), Ok(10 << 20));
        assert_eq!(text("512 KiB"), Ok(512 << 10));
        assert_eq!(text("1GB"), Ok(1_000_000_000));
        assert_eq!(text("7B"), Ok(7));
        assert_eq!(parse(&SizeValue::Bytes(4096)), Ok(4096));
        assert_eq!(text("0MiB"), Ok(0));
        for bad in ["", "MiB", "10", "10mb", "1.5MiB", "-1MiB", "10 MiB extra"] {
            assert!(text(bad).is_err(), "{bad}");
        }
        assert!(parse(&SizeValue::Bytes(-1)).is_err());
        assert!(text("99999999999999GiB").unwrap_err().contains("too large"));
    }
}
