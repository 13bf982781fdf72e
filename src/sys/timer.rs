//! A wall-clock timer: a `CLOCK_REALTIME` timerfd armed at an absolute time with
//! `TFD_TIMER_CANCEL_ON_SET`, so that it becomes readable both when that time has come and
//! when the clock is set (by NTP stepping it, by hand, or by a resume from suspend), which a
//! timer on the monotonic clock cannot tell. Safe wrappers over rustix; no `unsafe` needed.

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, timerfd_create, timerfd_settime,
};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// What a readable timer had to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fired {
    /// The time it was armed for has come.
    Due,
    /// The clock was set: the timer is disarmed, and the time it was armed for means
    /// something else now.
    ClockSet,
    /// Nothing (already read).
    Nothing,
}

pub struct WallTimer {
    fd: OwnedFd,
}

impl WallTimer {
    /// A disarmed timer: it never becomes readable until it is armed.
    pub fn new() -> io::Result<WallTimer> {
        let fd = timerfd_create(
            TimerfdClockId::Realtime,
            TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK,
        )?;
        Ok(WallTimer { fd })
    }

    /// Armed for the wall-clock time `at` (seconds and nanoseconds since the Unix epoch; a
    /// time already gone makes it readable at once), or disarmed with None.
    pub fn set(&self, at: Option<(i64, u32)>) -> io::Result<()> {
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let (value, flags) = match at {
            // A zero value would disarm it: the epoch itself is one nanosecond later.
            Some((sec, nsec)) => (
                rustix::time::Timespec {
                    tv_sec: sec.max(0),
                    tv_nsec: if sec <= 0 && nsec == 0 {
                        1
                    } else {
                        i64::from(nsec)
                    },
                },
                TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
            ),
            None => (zero, TimerfdTimerFlags::empty()),
        };
        let spec = Itimerspec {
            it_interval: zero,
            it_value: value,
        };
        timerfd_settime(&self.fd, flags, &spec)?;
        Ok(())
    }

    /// Reads what made it readable.
    pub fn read(&self) -> io::Result<Fired> {
        let mut expirations = [0u8; 8];
        match rustix::io::read(&self.fd, &mut expirations) {
            Ok(_) => Ok(Fired::Due),
            Err(rustix::io::Errno::CANCELED) => Ok(Fired::ClockSet),
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => Ok(Fired::Nothing),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for WallTimer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn wall_in(ms: u64) -> (i64, u32) {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
            + std::time::Duration::from_millis(ms);
        (t.as_secs() as i64, t.subsec_nanos())
    }

    /// Armed for a time already gone it is readable at once, and once; disarmed, never.
    #[test]
    fn fires_once_for_a_time_gone_and_never_disarmed() {
        let timer = WallTimer::new().unwrap();
        assert_eq!(timer.read().unwrap(), Fired::Nothing);
        timer.set(Some(wall_in(0))).unwrap();
        let mut fds = [rustix::event::PollFd::new(
            &timer,
            rustix::event::PollFlags::IN,
        )];
        let deadline = rustix::event::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        assert_eq!(rustix::event::poll(&mut fds, Some(&deadline)).unwrap(), 1);
        assert_eq!(timer.read().unwrap(), Fired::Due);
        assert_eq!(timer.read().unwrap(), Fired::Nothing);
        timer.set(Some(wall_in(60_000))).unwrap();
        assert_eq!(timer.read().unwrap(), Fired::Nothing);
        timer.set(None).unwrap();
        assert_eq!(timer.read().unwrap(), Fired::Nothing);
    }
}
