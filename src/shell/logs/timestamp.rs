//! RFC 3339 UTC timestamps for log lines (`2026-11-25T19:32:15.123Z`), by humantime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The time `millis` after the Unix epoch.
pub fn format_unix_millis(millis: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(millis)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_unix_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_unix_millis(951_782_400_005),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            format_unix_millis(1_795_635_135_123),
            "2026-11-25T19:32:15.123Z"
        );
        assert_eq!(now_rfc3339().len(), 24);
    }
}
