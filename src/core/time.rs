//! Time as the core sees it: a point on a monotonic line chosen by the shell.
//!
//! The core never reads a clock. The shell passes `now` with every input, and tests pass
//! whatever they like, which makes every timeout in the core deterministic.

use std::time::Duration;

/// A moment, measured from an origin the caller chose (the shell: its start; tests: zero).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(Duration);

impl Instant {
    pub const ZERO: Instant = Instant(Duration::ZERO);

    pub fn from_origin(since_origin: Duration) -> Self {
        Instant(since_origin)
    }

    pub fn since_origin(self) -> Duration {
        self.0
    }

    /// `self + d`, saturating instead of overflowing (a "never" deadline stays far away).
    pub fn after(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }

    /// How long from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_origin(Duration::from_secs(5));
        assert_eq!(
            t.after(Duration::from_secs(1)).since_origin(),
            Duration::from_secs(6)
        );
        assert_eq!(Instant::ZERO.since(t), Duration::ZERO);
        assert_eq!(t.since(Instant::ZERO), Duration::from_secs(5));
        assert_eq!(t.after(Duration::MAX).since_origin(), Duration::MAX);
    }
}
