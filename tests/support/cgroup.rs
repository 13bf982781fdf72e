//! cgroup v1 groups made for one test: a process limit (`pids`) or a memory limit
//! (`memory`), as a container runtime sets them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A cgroup of one v1 controller, made for one test under `/sys/fs/cgroup/CONTROLLER`;
/// whatever is left in it is killed and the group removed when it goes (a group made with
/// `child` goes first, being declared after its parent).
pub struct TestCgroup(pub PathBuf);

impl TestCgroup {
    /// A new group of `controller`; None when that controller is not mounted (v1) here.
    pub fn new(controller: &str) -> Option<TestCgroup> {
        let root = Path::new("/sys/fs/cgroup").join(controller);
        if !root.join("cgroup.procs").exists() {
            return None;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = root.join(format!("tend-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Some(TestCgroup(dir))
    }

    /// A group below this one.
    pub fn child(&self, name: &str) -> TestCgroup {
        let dir = self.0.join(name);
        std::fs::create_dir(&dir).unwrap();
        TestCgroup(dir)
    }

    /// Writes one of the group's files (`pids.max`, `memory.limit_in_bytes`, ...).
    pub fn set(&self, file: &str, value: &str) {
        std::fs::write(self.0.join(file), value)
            .unwrap_or_else(|e| panic!("cannot write {value} to {file} of {:?}: {e}", self.0));
    }

    /// The number a file of the group holds, alone (`pids.current`) or on a line after
    /// `key ` (`oom_kill` in `memory.oom_control`).
    pub fn number(&self, file: &str, key: Option<&str>) -> u64 {
        let text = std::fs::read_to_string(self.0.join(file)).unwrap();
        let value = match key {
            None => text.trim(),
            Some(key) => text
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("no {key} in {file}: {text}")),
        };
        value.trim().parse().unwrap()
    }

    pub fn procs(&self) -> Vec<i32> {
        std::fs::read_to_string(self.0.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // A process limit would keep nothing from dying, but lift it anyway: a test that
        // failed midway may have left it at what is running.
        let _ = std::fs::write(self.0.join("pids.max"), "max");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let procs = self.procs();
            if procs.is_empty() {
                break;
            }
            for pid in procs {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}
