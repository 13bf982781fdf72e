//! What each service costs: the CPU time, resident memory and number of processes of its
//! process group, measured from /proc only when someone asks (a status request, a scrape,
//! a memory-limit check), for every service asked about in one pass over /proc.
//!
//! - **CPU** is `utime + stime + cutime + cstime` of every process now in the group: the
//!   time of its own threads and of the children it waited for (a shell's commands, the
//!   workers a pre-forking server reaped). Not counted: a process that ended without a
//!   member of the group waiting for it (one whose parent died first is reaped by tend), a
//!   child that left the group (`setsid`) while it runs, and earlier instances: the count
//!   starts over with each instance.
//! - **Memory** is the sum of the resident set sizes (`rss` of `/proc/PID/stat`, what `ps`
//!   shows as RSS) of the processes in the group. Pages several of them share (the program's
//!   code, copy-on-write memory after a fork) count once per process, so a group of forked
//!   workers shows more than it holds; supervisord's memmon adds up RSS the same way.

use crate::core::{ServiceId, Supervisor};
use crate::sys::usage::{self, ProcStat};
use std::collections::HashMap;
use std::time::Duration;

/// One service's processes, as measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu: Duration,
    /// Bytes.
    pub memory: u64,
    pub processes: u32,
}

/// The usage of each service measured, by service. A service with no process group (not
/// running), or whose group was not found in /proc, has none.
pub type Measured = HashMap<ServiceId, Usage>;

/// Measures `ids` (those of them that have a process group), in one pass over /proc; no
/// pass at all when none has one.
pub fn measure(sup: &Supervisor, ids: impl IntoIterator<Item = ServiceId>) -> Measured {
    let groups: HashMap<i32, ServiceId> = ids
        .into_iter()
        .filter_map(|id| Some((sup.service(id).process_group()?.0, id)))
        .collect();
    if groups.is_empty() {
        return Measured::new();
    }
    let mut stats = Vec::new();
    // Without /proc there is nothing to show: every service's usage is unknown.
    let _ = usage::scan(|s| {
        if groups.contains_key(&s.pgrp) {
            stats.push(s);
        }
    });
    add_up(&groups, &stats, usage::page_size(), usage::clock_ticks())
}

/// Sums the processes of each group; `page` bytes per page, `hz` ticks per second.
fn add_up(groups: &HashMap<i32, ServiceId>, stats: &[ProcStat], page: u64, hz: u64) -> Measured {
    let mut ticks: HashMap<ServiceId, u64> = HashMap::with_capacity(groups.len());
    let mut out = Measured::with_capacity(groups.len());
    for s in stats {
        let Some(&id) = groups.get(&s.pgrp) else {
            continue;
        };
        let u = out.entry(id).or_default();
        u.memory = u.memory.saturating_add(s.rss_pages.saturating_mul(page));
        u.processes = u.processes.saturating_add(1);
        let t = ticks.entry(id).or_default();
        *t = t.saturating_add(s.cpu_ticks.saturating_add(s.children_ticks));
    }
    for (id, t) in ticks {
        if let Some(u) = out.get_mut(&id) {
            let nanos = u128::from(t) * 1_000_000_000 / u128::from(hz.max(1));
            u.cpu = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: i32, pgrp: i32, cpu: u64, children: u64, rss: u64) -> ProcStat {
        ProcStat {
            pid,
            pgrp,
            cpu_ticks: cpu,
            children_ticks: children,
            rss_pages: rss,
        }
    }

    #[test]
    fn each_group_adds_up_its_processes_and_others_are_left_out() {
        let groups = HashMap::from([(10, ServiceId(0)), (20, ServiceId(1)), (30, ServiceId(2))]);
        let stats = [
            stat(10, 10, 150, 50, 100),  // web's leader, with reaped children's 0.5 s
            stat(11, 10, 25, 0, 300),    // a worker of web
            stat(20, 20, 1, 0, 10),      // db alone
            stat(99, 99, 1000, 0, 1000), // not a service's
        ];
        let m = add_up(&groups, &stats, 4096, 100);
        assert_eq!(
            m[&ServiceId(0)],
            Usage {
                cpu: Duration::from_millis(2250),
                memory: 400 * 4096,
                processes: 2
            }
        );
        assert_eq!(m[&ServiceId(1)].cpu, Duration::from_millis(10));
        assert_eq!(m[&ServiceId(1)].processes, 1);
        assert!(
            !m.contains_key(&ServiceId(2)),
            "a group with nobody left has no usage"
        );
        assert_eq!(m.len(), 2);
    }
}
