//! The kernel's count of OOM kills, which tells the OOM killer's SIGKILLs from others: the
//! `oom_kill` line of tend's cgroup's `memory.events` (cgroup v2) or `memory.oom_control`
//! (cgroup v1), else of `/proc/vmstat` (the whole machine's).
//!
//! Found once at start; read at start and when a service's process dies of SIGKILL, never
//! on a timer. A cgroup v2 count covers tend's cgroup and those below it. A cgroup v1 count
//! covers only the processes in that cgroup itself (the kernel adds a v1 kill to the
//! victim's own cgroup, not to those above it), so on v1 the counts of tend's cgroup and of
//! every cgroup below it are added up: a service that went into a memory cgroup of its own
//! is counted too. The root cgroup never counts kills, so there (and without a memory
//! controller) the machine's count is used, which also rises for kills elsewhere on the
//! machine.

use std::path::{Path, PathBuf};

/// Where tend reads the count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OomCounter {
    path: PathBuf,
    /// cgroup v1: the counts of the cgroups below `path`'s are added to its own.
    below: bool,
}

impl OomCounter {
    /// The counter of tend's cgroup, else the machine's; None when the kernel has none
    /// (before Linux 4.13) or none can be read.
    pub fn find() -> Option<OomCounter> {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        find_in(Path::new("/sys/fs/cgroup"), &own, Path::new("/proc/vmstat"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the kills are counted, for tend's message.
    pub fn describe(&self) -> String {
        match self.path.parent() {
            Some(dir) if self.below => format!(
                "{} and in the memory cgroups below {}",
                self.path.display(),
                dir.display()
            ),
            _ => self.path.display().to_string(),
        }
    }

    /// The count now; None when it cannot be read.
    pub fn read(&self) -> Option<u64> {
        let own = count_in(&std::fs::read_to_string(&self.path).ok()?)?;
        match self.path.parent() {
            Some(dir) if self.below => Some(own.saturating_add(count_below(dir))),
            _ => Some(own),
        }
    }
}

/// The counter for a process whose `/proc/self/cgroup` says `own`, with the cgroup file
/// systems mounted under `root` and the machine's count in `vmstat`.
fn find_in(root: &Path, own: &str, vmstat: &Path) -> Option<OomCounter> {
    let mut candidates = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            // cgroup v2: tend's cgroup's memory.events; at the root there is none, and with a
            // cgroup namespace the path is "/" while the mount is tend's own cgroup.
            candidates.push(OomCounter {
                path: root.join(rel).join("memory.events"),
                below: false,
            });
        } else if controllers.split(',').any(|c| c == "memory") && !rel.is_empty() {
            // cgroup v1, not the root: its memory.oom_control, at its path, or at the
            // controller's mount itself where a container sees its own cgroup there.
            let mount = root.join("memory");
            for path in [mount.join(rel), mount] {
                candidates.push(OomCounter {
                    path: path.join("memory.oom_control"),
                    below: true,
                });
            }
        }
    }
    candidates.push(OomCounter {
        path: vmstat.to_path_buf(),
        below: false,
    });
    candidates.into_iter().find(|c| c.read().is_some())
}

/// The OOM kills of the cgroup v1 memory cgroups below `dir`, added up. A cgroup removed
/// while it is read counts nothing.
fn count_below(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total: u64 = 0;
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let sub = entry.path();
        let own = std::fs::read_to_string(sub.join("memory.oom_control"))
            .ok()
            .and_then(|text| count_in(&text))
            .unwrap_or(0);
        total = total.saturating_add(own).saturating_add(count_below(&sub));
    }
    total
}

/// The number on the `oom_kill` line of such a file.
fn count_in(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_is_the_oom_kill_line() {
        assert_eq!(
            count_in("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n"),
            Some(7)
        );
        assert_eq!(
            count_in("low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n"),
            Some(2)
        );
        assert_eq!(count_in("pgfault 10\noom_kill 0\n"), Some(0));
        assert_eq!(count_in("oom_kill_disable 0\nunder_oom 0\n"), None);
        assert_eq!(count_in(""), None);
    }

    /// A fake /sys/fs/cgroup and /proc/vmstat: tend's own cgroup is preferred, the root
    /// never is, the machine's count is the last resort.
    #[test]
    fn tends_cgroup_first_then_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cgroup");
        let vmstat = dir.path().join("vmstat");
        let write = |path: PathBuf, text: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(vmstat.clone(), "nr_free_pages 1\noom_kill 40\n");
        let found = |own: &str| find_in(&root, own, &vmstat).map(|c| c.path().to_path_buf());

        // cgroup v2, in a cgroup of its own.
        let v2 = root.join("system.slice/app.service/memory.events");
        write(v2.clone(), "low 0\nhigh 0\nmax 0\noom 0\noom_kill 3\n");
        assert_eq!(found("0::/system.slice/app.service\n"), Some(v2.clone()));
        let c = OomCounter {
            path: v2,
            below: false,
        };
        assert_eq!(c.read(), Some(3));
        // v2 root: no memory.events there, so the machine's.
        assert_eq!(found("0::/\n"), Some(vmstat.clone()));

        // cgroup v1 (with a v2 line for the other hierarchy, as on hybrid systems).
        let v1 = root.join("memory/docker/abc/memory.oom_control");
        write(v1.clone(), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        let own = "9:pids:/docker/abc\n4:memory:/docker/abc\n0::/\n";
        assert_eq!(found(own), Some(v1.clone()));
        // v1 counts a kill only in the victim's own cgroup: the cgroups below tend's are
        // added up, at any depth; other files and cgroups beside it are not.
        write(
            root.join("memory/docker/abc/worker/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        write(
            root.join("memory/docker/abc/worker/batch/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n",
        );
        write(root.join("memory/docker/abc/empty/cgroup.procs"), "");
        write(
            root.join("memory/docker/other/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 8\n",
        );
        let tree = find_in(&root, own, &vmstat).unwrap();
        assert_eq!(tree.read(), Some(1 + 2 + 4));
        // tend's own count unreadable: none at all, whatever is below.
        std::fs::remove_file(&v1).unwrap();
        assert_eq!(tree.read(), None);
        // In the container, the path is the host's but the mount is its own cgroup.
        let mount = root.join("memory/memory.oom_control");
        write(
            mount.clone(),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        );
        assert_eq!(found("4:cpu,memory:/kubepods/pod1/x\n"), Some(mount));
        // The v1 root cgroup never counts: the machine's.
        assert_eq!(found("4:memory:/\n0::/\n"), Some(vmstat.clone()));
        // Nothing at all.
        std::fs::remove_file(&vmstat).unwrap();
        assert_eq!(found("0::/\n"), None);
    }
}
