//! Signal numbers and names, as plain data.
//!
//! The core decides *which* signal goes *where*; it never sends one. Numbers are Linux's
//! (x86-64 and aarch64 agree on all of these).

use std::fmt;

/// A signal number, 1..=64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signal(i32);

/// Names of the standard signals, indexed by number (index 0 is unused).
const NAMES: [&str; 32] = [
    "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// Older names `parse` also takes for standard signals.
const ALIASES: [(&str, Signal); 3] = [
    ("IOT", Signal::ABRT),
    ("POLL", Signal(29)),
    ("CLD", Signal::CHLD),
];

/// The lowest real-time signal a program may use (glibc keeps 32 and 33 for itself).
pub const RTMIN: i32 = 34;
/// The highest signal number on Linux.
pub const MAX: i32 = 64;

impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const QUIT: Signal = Signal(3);
    pub const ILL: Signal = Signal(4);
    pub const TRAP: Signal = Signal(5);
    pub const ABRT: Signal = Signal(6);
    pub const BUS: Signal = Signal(7);
    pub const FPE: Signal = Signal(8);
    pub const KILL: Signal = Signal(9);
    pub const USR1: Signal = Signal(10);
    pub const SEGV: Signal = Signal(11);
    pub const USR2: Signal = Signal(12);
    pub const PIPE: Signal = Signal(13);
    pub const ALRM: Signal = Signal(14);
    pub const TERM: Signal = Signal(15);
    pub const CHLD: Signal = Signal(17);
    pub const CONT: Signal = Signal(18);
    pub const STOP: Signal = Signal(19);
    pub const TSTP: Signal = Signal(20);
    pub const TTIN: Signal = Signal(21);
    pub const TTOU: Signal = Signal(22);
    pub const WINCH: Signal = Signal(28);
    pub const SYS: Signal = Signal(31);

    /// The signal with this number, if Linux has one.
    pub fn from_number(n: i32) -> Option<Signal> {
        (1..=MAX).contains(&n).then_some(Signal(n))
    }

    pub fn number(self) -> i32 {
        self.0
    }

    /// Signals the kernel raises for a fault in the thread itself. Blocking them would turn a
    /// crash into a hang, so tend leaves them alone and never forwards them. SIGABRT is not
    /// one: `abort()` unblocks it before raising it, so tend can block and forward it (tini
    /// cannot).
    pub fn is_synchronous(self) -> bool {
        matches!(
            self,
            Signal::ILL | Signal::TRAP | Signal::BUS | Signal::FPE | Signal::SEGV | Signal::SYS
        )
    }

    /// The stop signals a terminal sends to a background process group that reads from it or
    /// writes to it. Sent to tend they concern tend's own group only: forwarded to a
    /// foreground child's group they would stop it, so tend drops them, as tini does.
    pub fn is_terminal_stop(self) -> bool {
        matches!(self, Signal::TTIN | Signal::TTOU)
    }

    /// Signals that cannot be caught or blocked.
    pub fn is_uncatchable(self) -> bool {
        matches!(self, Signal::KILL | Signal::STOP)
    }

    /// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3` or `SIGRTMAX-1`.
    pub fn parse(text: &str) -> Option<Signal> {
        let t = text.trim();
        if let Ok(n) = t.parse::<i32>() {
            return Signal::from_number(n);
        }
        let upper = t.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(i) = NAMES.iter().position(|n| !n.is_empty() && *n == name) {
            return Signal::from_number(i as i32);
        }
        if let Some((_, signal)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
            return Some(*signal);
        }
        let rt = |rest: &str, base: i32, sign: i32| -> Option<Signal> {
            if rest.is_empty() {
                return Signal::from_number(base);
            }
            let off: i32 = rest
                .strip_prefix(if sign > 0 { '+' } else { '-' })?
                .parse()
                .ok()?;
            let n = base + sign * off;
            (RTMIN..=MAX).contains(&n).then_some(Signal(n))
        };
        if let Some(rest) = name.strip_prefix("RTMIN") {
            return rt(rest, RTMIN, 1);
        }
        if let Some(rest) = name.strip_prefix("RTMAX") {
            return rt(rest, MAX, -1);
        }
        None
    }

    /// Every name `parse` takes for a standard signal (1 to 31), without `SIG`, in
    /// uppercase: the conventional ones by number, then the older aliases (`IOT`, ...).
    /// The real-time ones are `RTMIN`, `RTMIN+N`, `RTMAX` and `RTMAX-N`.
    pub fn standard_names() -> impl Iterator<Item = (&'static str, Signal)> {
        let conventional = NAMES
            .iter()
            .enumerate()
            .skip(1)
            .map(|(n, &name)| (name, Signal(n as i32)));
        conventional.chain(ALIASES)
    }

    /// The conventional name without the `SIG` prefix: `TERM`, `RTMIN+2`, or the number.
    pub fn name(self) -> String {
        match self.0 {
            n @ 1..=31 => NAMES
                .get(n as usize)
                .map_or_else(|| n.to_string(), |name| name.to_string()),
            n @ RTMIN..=MAX => format!("RTMIN+{}", n - RTMIN),
            n => n.to_string(),
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIG{}", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(Signal::parse("TERM"), Some(Signal::TERM));
        assert_eq!(Signal::parse("SIGTERM"), Some(Signal::TERM));
        assert_eq!(Signal::parse("sigkill"), Some(Signal::KILL));
        assert_eq!(Signal::parse("10"), Some(Signal::USR1));
        assert_eq!(Signal::parse("RTMIN"), Some(Signal(34)));
        assert_eq!(Signal::parse("SIGRTMIN+3"), Some(Signal(37)));
        assert_eq!(Signal::parse("RTMAX-1"), Some(Signal(63)));
        assert_eq!(Signal::parse("RTMAX+1"), None);
        assert_eq!(Signal::parse("0"), None);
        assert_eq!(Signal::parse("65"), None);
        assert_eq!(Signal::parse("NOPE"), None);
        assert_eq!(Signal::parse(""), None);
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=MAX {
            if (32..RTMIN).contains(&n) {
                continue;
            }
            let s = Signal::from_number(n).unwrap();
            assert_eq!(Signal::parse(&s.name()), Some(s), "{n}");
            assert_eq!(Signal::parse(&s.to_string()), Some(s), "{n}");
        }
    }

    #[test]
    fn every_standard_name_parses_in_any_case() {
        let names: Vec<_> = Signal::standard_names().collect();
        assert_eq!(names.len(), 31 + 3);
        for (name, signal) in names {
            assert_eq!(Signal::parse(name), Some(signal), "{name}");
            let lower = format!("sig{}", name.to_ascii_lowercase());
            assert_eq!(Signal::parse(&lower), Some(signal), "{lower}");
        }
    }

    #[test]
    fn classes() {
        assert!(Signal::SEGV.is_synchronous());
        assert!(!Signal::TERM.is_synchronous());
        assert!(Signal::TTIN.is_terminal_stop() && Signal::TTOU.is_terminal_stop());
        assert!(!Signal::TSTP.is_terminal_stop());
        assert!(Signal::KILL.is_uncatchable());
        assert!(!Signal::USR1.is_uncatchable());
    }
}
