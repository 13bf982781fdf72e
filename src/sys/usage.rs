//! What processes cost, as the kernel counts it in /proc: CPU time and resident memory of
//! every process, with its process group, in one pass over /proc.
//!
//! Read only when someone asks (a status request, a scrape, a memory-limit check): nothing
//! here runs on its own.

use rustix::fs::{Dir, Mode, OFlags};
use std::io;
use std::os::fd::OwnedFd;

/// The fields of one process's `/proc/PID/stat` that tend uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    /// Its process group.
    pub pgrp: i32,
    /// `utime + stime`: CPU time of all its threads, in clock ticks.
    pub cpu_ticks: u64,
    /// `cutime + cstime`: CPU time of the children it waited for (and of theirs), in ticks.
    pub children_ticks: u64,
    /// Resident pages (`rss`: anonymous, file-backed and shared memory mapped in).
    pub rss_pages: u64,
}

/// Bytes per page, from `sysconf(_SC_PAGESIZE)`.
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes a plain integer name and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Clock ticks per second (the unit of the CPU times in /proc), from `sysconf(_SC_CLK_TCK)`.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf takes a plain integer name and touches no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

/// Calls `each` with the stat of every process in /proc, in one pass: one `getdents` walk
/// and one open and read per process. Processes that end while they are looked at are
/// skipped; the error is only for /proc itself.
pub fn scan(mut each: impl FnMut(ProcStat)) -> io::Result<()> {
    let proc = rustix::fs::open(
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir = Dir::read_from(&proc)?;
    let mut path = String::with_capacity(24);
    let mut buf = [0u8; 1024];
    for entry in dir {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        path.clear();
        path.push_str(name);
        path.push_str("/stat");
        if let Some(stat) = read_stat(&proc, &path, &mut buf) {
            each(stat);
        }
    }
    Ok(())
}

/// `PID/stat` under the open /proc, parsed; None for a process gone meanwhile.
fn read_stat(proc: &OwnedFd, path: &str, buf: &mut [u8]) -> Option<ProcStat> {
    let fd =
        rustix::fs::openat(proc, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    // The kernel writes the whole line at once; it is far shorter than the buffer.
    let n = rustix::io::read(&fd, &mut *buf).ok()?;
    parse_stat(buf.get(..n)?)
}

/// Parses a `/proc/PID/stat` line. The second field (the command name, in parentheses) may
/// hold spaces and parentheses itself, so the fields are counted from its last `)`.
pub fn parse_stat(line: &[u8]) -> Option<ProcStat> {
    let open = line.iter().position(|&b| b == b'(')?;
    let close = line.iter().rposition(|&b| b == b')')?;
    let pid = number(line.get(..open)?.trim_ascii())?;
    let rest = std::str::from_utf8(line.get(close + 1..)?).ok()?;
    // Fields from the 3rd (state) on: field N is at N - 3.
    let mut fields = rest.split_ascii_whitespace();
    let mut field = |skip: usize| -> Option<i64> { fields.nth(skip)?.parse().ok() };
    let pgrp = field(2)?; // 5: pgrp
    let utime = field(8)?; // 14: utime
    let stime = field(0)?; // 15: stime
    let cutime = field(0)?; // 16: cutime
    let cstime = field(0)?; // 17: cstime
    let rss = field(6)?; // 24: rss
    let ticks = |a: i64, b: i64| {
        u64::try_from(a.max(0)).unwrap_or(0) + u64::try_from(b.max(0)).unwrap_or(0)
    };
    Some(ProcStat {
        pid: i32::try_from(pid).ok()?,
        pgrp: i32::try_from(pgrp).ok()?,
        cpu_ticks: ticks(utime, stime),
        children_ticks: ticks(cutime, cstime),
        rss_pages: u64::try_from(rss.max(0)).unwrap_or(0),
    })
}

fn number(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names() {
        // A real line of a shell (fields 1 to 52), with its name made awkward.
        let line = b"4242 (a) b (c)) S 1 4240 4240 0 -1 4194560 1500 2600 3 4 \
                     120 30 700 80 20 0 1 0 5000 12345678 640 18446744073709551615 \
                     1 1 0 0 0 0 65536 4 65538 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                pid: 4242,
                pgrp: 4240,
                cpu_ticks: 150,
                children_ticks: 780,
                rss_pages: 640,
            })
        );
        assert_eq!(parse_stat(b"1 (init) S 0 1 1"), None, "cut short");
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b""), None);
    }

    #[test]
    fn this_process_is_found_with_its_group() {
        let me = std::process::id() as i32;
        let mut found = None;
        scan(|s| {
            if s.pid == me {
                found = Some(s);
            }
        })
        .unwrap();
        let found = found.expect("this process in /proc");
        assert_eq!(
            found.pgrp,
            rustix::process::getpgrp().as_raw_nonzero().get()
        );
        assert!(found.rss_pages > 0, "{found:?}");
        assert!(page_size() >= 4096);
        assert!(clock_ticks() >= 1);
    }
}
