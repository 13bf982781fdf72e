//! Blocking signals, reading them from a signalfd, and giving children back the signal state
//! tend itself was started with (invariant 2).

use crate::core::Signal;
use crate::core::signal::MAX as SIGMAX;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The signal mask and the set of ignored signals as tend found them at startup, one bit per
/// signal (bit n-1 for signal n, as in the kernel's own sigset): every spawn copies this into
/// its `pre_exec` closure, a heap block at the init's high-water mark, where glibc's
/// `sigset_t` (128 bytes for 64 signals) and a `bool` per signal took 200 bytes.
#[derive(Clone, Copy)]
pub struct Inherited {
    mask: u64,
    ignored: u64,
}

/// Bit of signal `n` (1..=SIGMAX) in `Inherited`'s sets.
fn bit(n: i32) -> u64 {
    1 << (n - 1)
}

/// The signals tend blocks and reads from its signalfd: everything but the synchronous fault
/// signals (which must crash, not hang) and the two that cannot be blocked.
fn handled_set() -> io::Result<libc::sigset_t> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set it is given; we only read it after it succeeded.
    let mut set = unsafe {
        if libc::sigfillset(set.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        set.assume_init()
    };
    for n in 1..=SIGMAX {
        if let Some(sig) = Signal::from_number(n)
            && sig.is_synchronous()
        {
            // SAFETY: `set` is an initialised sigset_t and n a valid signal number.
            unsafe { libc::sigdelset(&mut set, n) };
        }
    }
    Ok(set)
}

/// Blocks every asynchronous signal and records what tend inherited. Must run before any
/// thread or child exists, so that no signal can slip past the signalfd.
pub fn block_all() -> io::Result<Inherited> {
    let set = handled_set()?;
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: both pointers are valid; sigprocmask fills `old` on success.
    let old = unsafe {
        if libc::sigprocmask(libc::SIG_SETMASK, &set, old.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        old.assume_init()
    };
    let mut inherited = Inherited {
        mask: 0,
        ignored: 0,
    };
    for n in 1..=SIGMAX {
        // SAFETY: `old` is an initialised sigset_t.
        if unsafe { libc::sigismember(&old, n) } == 1 {
            inherited.mask |= bit(n);
        }
        let mut act = MaybeUninit::<libc::sigaction>::uninit();
        // SAFETY: a null new action only queries; `act` is filled on success. Numbers glibc
        // reserves (32, 33) fail with EINVAL and are simply not recorded.
        let ok = unsafe { libc::sigaction(n, std::ptr::null(), act.as_mut_ptr()) } == 0;
        // SAFETY: sigaction succeeded, so `act` is initialised.
        if ok && unsafe { act.assume_init() }.sa_sigaction == libc::SIG_IGN {
            inherited.ignored |= bit(n);
        }
    }
    Ok(inherited)
}

impl Inherited {
    /// Whether the launcher had this signal ignored.
    pub fn is_ignored(&self, sig: Signal) -> bool {
        (1..=SIGMAX).contains(&sig.number()) && self.ignored & bit(sig.number()) != 0
    }

    /// Whether the launcher had this signal blocked.
    pub fn is_blocked(&self, sig: Signal) -> bool {
        (1..=SIGMAX).contains(&sig.number()) && self.mask & bit(sig.number()) != 0
    }

    /// In a forked child, before exec: block everything so the steps that follow cannot be
    /// interrupted (std has already emptied the mask by the time pre_exec runs).
    /// Async-signal-safe.
    pub fn block_everything_in_child(&self) {
        // Made here rather than kept in `Inherited`, which every spawn copies into its
        // pre_exec closure (a heap block, at the init's high-water mark).
        let mut full = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset (async-signal-safe) initialises the set on the child's stack;
        // sigprocmask is async-signal-safe and reads it.
        unsafe {
            libc::sigfillset(full.as_mut_ptr());
            libc::sigprocmask(libc::SIG_SETMASK, full.as_ptr(), std::ptr::null_mut());
        }
    }

    /// In a forked child, right before exec: the dispositions and the mask tend inherited,
    /// nothing of its own. Async-signal-safe: only sigaction, sigemptyset, sigaddset and
    /// sigprocmask on data prepared before fork; the mask is built on the child's stack.
    pub fn restore_in_child(&self) -> io::Result<()> {
        let mut mask = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        unsafe { libc::sigemptyset(mask.as_mut_ptr()) };
        for n in 1..=SIGMAX {
            if self.mask & bit(n) != 0 {
                // SAFETY: `mask` is initialised; numbers glibc reserves (32, 33) fail with
                // EINVAL, as its sigprocmask would leave them out anyway.
                unsafe { libc::sigaddset(mask.as_mut_ptr(), n) };
            }
            if n == libc::SIGKILL || n == libc::SIGSTOP {
                continue;
            }
            // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags).
            let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
            act.sa_sigaction = if self.ignored & bit(n) != 0 {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            // SAFETY: `act` is valid; failures for numbers glibc reserves are harmless.
            unsafe { libc::sigaction(n, &act, std::ptr::null_mut()) };
        }
        // SAFETY: `mask` was initialised by sigemptyset above.
        if unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask.as_ptr(), std::ptr::null_mut()) } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// One signal as read from the signalfd.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub signal: Signal,
    /// The sender's pid as the kernel saw it (0 for the kernel itself).
    pub sender: i32,
}

/// A non-blocking signalfd for every signal `block_all` blocked.
pub struct SignalFd(OwnedFd, libc::sigset_t);

impl SignalFd {
    pub fn new() -> io::Result<SignalFd> {
        let set = handled_set()?;
        // SAFETY: `set` is initialised; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a fresh descriptor that nothing else owns.
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(fd) }, set))
    }

    /// Reads every pending signal (until EAGAIN) into `out`.
    pub fn read_all(&self, out: &mut Vec<Received>) -> io::Result<()> {
        const INFO: usize = std::mem::size_of::<libc::signalfd_siginfo>();
        let mut buf = [MaybeUninit::<libc::signalfd_siginfo>::uninit(); 32];
        loop {
            let bytes = std::mem::size_of_val(&buf);
            // SAFETY: the buffer is valid for `bytes` bytes; the kernel writes whole records.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), bytes) };
            if n < 0 {
                let err = io::Error::last_os_error();
                return match err.kind() {
                    io::ErrorKind::WouldBlock => Ok(()),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(err),
                };
            }
            let records = n as usize / INFO;
            for slot in buf.iter().take(records) {
                // SAFETY: the kernel wrote `records` complete records.
                let info = unsafe { slot.assume_init() };
                if let Some(signal) = Signal::from_number(info.ssi_signo as i32) {
                    out.push(Received {
                        signal,
                        sender: info.ssi_pid as i32,
                    });
                }
            }
            if records < buf.len() {
                return Ok(());
            }
        }
    }
}

impl SignalFd {
    /// Sleeps until one of the signals arrives and takes it: one system call per signal,
    /// for a loop that has nothing but signals to wait for (where `epoll_wait` and then
    /// `read` would be two).
    pub fn wait_one(&self) -> io::Result<Option<Received>> {
        let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
        // SAFETY: the set is initialised and `info` valid for writing; the signals in the set
        // are blocked (`block_all`), as sigwaitinfo requires.
        let n = unsafe { libc::sigwaitinfo(&self.1, info.as_mut_ptr()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigwaitinfo filled `info` for the signal it returned; si_pid is meaningful
        // for signals sent by a process and for SIGCHLD, and reads as 0 otherwise.
        let sender = unsafe { info.assume_init().si_pid() };
        Ok(Signal::from_number(n).map(|signal| Received { signal, sender }))
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// A few signals blocked in a client that waits for them itself (`tend top` between two
/// tables), so that one of them ends a wait instead of the process: the client can finish
/// what it writes and exit cleanly.
pub struct Waiter(libc::sigset_t);

impl Waiter {
    /// Blocks `signals` for this thread (the client has no other) and returns their waiter.
    pub fn block(signals: &[Signal]) -> io::Result<Waiter> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given.
        let mut set = unsafe {
            if libc::sigemptyset(set.as_mut_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            set.assume_init()
        };
        for sig in signals {
            // SAFETY: `set` is initialised and the number is a real signal's.
            if unsafe { libc::sigaddset(&mut set, sig.number()) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: `set` is initialised; the old mask is not asked for.
        if unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Waiter(set))
    }

    /// Waits up to `timeout` for one of the signals and takes it; None when the time ran
    /// out first.
    pub fn wait(&self, timeout: std::time::Duration) -> io::Result<Option<Signal>> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        loop {
            // SAFETY: the set is initialised and its signals blocked (`block`), as
            // sigtimedwait requires; no siginfo is asked for; `ts` is a valid timespec.
            let n = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
            if n >= 0 {
                return Ok(Signal::from_number(n));
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                // Stopped and continued (Ctrl-Z, fg): just wait again.
                Some(libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
    }
}
