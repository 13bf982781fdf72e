//! Process-wide facts and controls: pid, subreaper, parent-death signal, sending signals.

use crate::core::{Pid, Signal};
use std::io;

pub fn getpid() -> Pid {
    Pid(rustix::process::getpid().as_raw_nonzero().get())
}

/// Whether this process already is a child subreaper.
pub fn is_subreaper() -> io::Result<bool> {
    Ok(rustix::process::child_subreaper()?.is_some())
}

/// Orphaned descendants are re-parented to us instead of to the namespace's init.
pub fn become_subreaper() -> io::Result<()> {
    let me = rustix::process::getpid();
    rustix::process::set_child_subreaper(Some(me))?;
    Ok(())
}

/// The kernel sends `sig` to tend when its parent dies.
pub fn set_parent_death_signal(sig: Signal) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and no pointers.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            sig.number() as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `kill(pid, sig)`; a negative pid names a process group, -1 everyone.
pub fn kill(pid: i32, sig: Signal) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid, sig.number()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether no process (not even a zombie) is left in the process group `pgid`.
pub fn group_is_empty(pgid: Pid) -> bool {
    // SAFETY: signal 0 only checks for existence; no signal is sent.
    let r = unsafe { libc::kill(-pgid.0, 0) };
    r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Every process whose chain of parents leads to `root`, read from /proc. Used instead of
/// `kill(-1)` when tend is not PID 1, where -1 would mean every process the user owns.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut parent_of: Vec<(i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // Processes may vanish while we look: skip what cannot be read.
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(ppid) = parse_ppid(&stat)
        {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = vec![root.0];
    let mut i = 0;
    while let Some(&parent) = found.get(i) {
        found.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.into_iter().skip(1).map(Pid).collect()
}

/// The parent of `pid` and its process group, from /proc/PID/stat; None when it is gone.
pub fn parent_and_group(pid: Pid) -> Option<(Pid, Pid)> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.0)).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(1);
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((Pid(ppid), Pid(pgrp)))
}

/// The 4th field of /proc/PID/stat. The 2nd (the command name) may hold spaces and
/// parentheses, so fields are counted from its last ')'.
fn parse_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_survives_odd_command_names() {
        assert_eq!(parse_ppid("42 (a) b) c) S 7 42 42 0"), Some(7));
        assert_eq!(parse_ppid("1 (tend) S 0 1 1"), Some(0));
        assert_eq!(parse_ppid("garbage"), None);
    }
}
