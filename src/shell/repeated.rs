//! Trouble that comes in bursts (a flood of clients, a check tend cannot run while it is out
//! of descriptors), said once per burst instead of once per occurrence.

use std::time::{Duration, Instant};

/// A kind of trouble is said at most once per this time, with a count of what happened
/// since: one note per burst, not one per connection or attempt.
pub const NOTE_EVERY: Duration = Duration::from_secs(10);

/// One kind of repeated trouble, said once per burst.
#[derive(Default)]
pub struct Repeated {
    last_said: Option<Instant>,
    since: u64,
}

impl Repeated {
    /// `text`, unless the same kind was said less than `NOTE_EVERY` ago (then counted).
    pub fn note(&mut self, now: Instant, text: String) -> Option<String> {
        if self.last_said.is_some_and(|t| now < t + NOTE_EVERY) {
            self.since += 1;
            return None;
        }
        self.last_said = Some(now);
        let since = std::mem::take(&mut self.since);
        Some(match since {
            0 => text,
            n => format!("{text} ({n} more since this was last said)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn said_once_per_burst_with_a_count() {
        let t0 = Instant::now();
        let mut r = Repeated::default();
        assert_eq!(r.note(t0, "full".into()).as_deref(), Some("full"));
        assert_eq!(r.note(t0 + Duration::from_secs(1), "full".into()), None);
        assert_eq!(r.note(t0 + Duration::from_secs(9), "full".into()), None);
        assert_eq!(
            r.note(t0 + NOTE_EVERY, "full".into()).as_deref(),
            Some("full (2 more since this was last said)")
        );
    }
}
