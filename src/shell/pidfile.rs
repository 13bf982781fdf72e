//! `pid-file`: following a daemon that forks. Once the started process has exited
//! successfully, the file is read until it names a process that tend can supervise: alive,
//! and tend's own child (the daemon was re-parented to tend, which is PID 1 or a subreaper,
//! so a stale file naming some other process is not taken). Its process group, which it may
//! not lead (a daemon that forked twice, or never called setsid), is where stops go; it is
//! never tend's own group, since every service starts in a session of its own.

use crate::core::{Generation, Pid, ServiceId};
use crate::sys::process;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long the file has to name such a process.
pub const PID_FILE_WAIT: Duration = Duration::from_secs(10);

/// How often the file is read meanwhile.
const POLL: Duration = Duration::from_millis(20);

/// How long a daemon that does not lead its process group must stay in the same group
/// before it is followed. Right after the fork a daemon that will call `setsid` is still in
/// the started process's group; taking that group would send later stops to the wrong
/// place. A group leader is followed at once: its group cannot change any more.
pub const GROUP_SETTLE: Duration = Duration::from_secs(1);

struct Waiting {
    svc: ServiceId,
    generation: Generation,
    path: PathBuf,
    deadline: Instant,
    next: Instant,
    /// A daemon seen outside a group of its own: (pid, pgid, since when).
    seen: Option<(Pid, Pid, Instant)>,
}

pub enum Answer {
    Found {
        svc: ServiceId,
        generation: Generation,
        pid: Pid,
        pgid: Pid,
    },
    Failed {
        svc: ServiceId,
        generation: Generation,
        message: String,
    },
}

#[derive(Default)]
pub struct PidFiles {
    waiting: Vec<Waiting>,
}

impl PidFiles {
    pub fn add(&mut self, svc: ServiceId, generation: Generation, path: PathBuf, now: Instant) {
        self.waiting.retain(|w| w.svc != svc);
        self.waiting.push(Waiting {
            svc,
            generation,
            path,
            deadline: now + PID_FILE_WAIT,
            next: now,
            seen: None,
        });
    }

    /// No pid file is waited for.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|w| w.next).min()
    }

    /// Reads the files that are due. `wanted` says whether the core still waits for that
    /// service's instance (a stop or a reload may have moved on).
    pub fn poll(
        &mut self,
        now: Instant,
        me: Pid,
        wanted: impl Fn(ServiceId, Generation) -> bool,
    ) -> Vec<Answer> {
        let mut answers = Vec::new();
        if self.waiting.is_empty() {
            // Every wake-up asks: most have nothing to read.
            return answers;
        }
        self.waiting.retain_mut(|w| {
            if !wanted(w.svc, w.generation) {
                return false;
            }
            if now < w.next {
                return true;
            }
            let found = daemon(&w.path, me).and_then(|(pid, pgid)| {
                if pgid == pid {
                    return Ok((pid, pgid));
                }
                match w.seen {
                    Some((p, g, since)) if (p, g) == (pid, pgid) => {
                        if now.saturating_duration_since(since) >= GROUP_SETTLE {
                            return Ok((pid, pgid));
                        }
                    }
                    _ => w.seen = Some((pid, pgid, now)),
                }
                Err(format!(
                    "process {} is in process group {} and may still be moving to one of its own",
                    pid.0, pgid.0
                ))
            });
            match found {
                Ok((pid, pgid)) => {
                    answers.push(Answer::Found {
                        svc: w.svc,
                        generation: w.generation,
                        pid,
                        pgid,
                    });
                    false
                }
                Err(reason) if now >= w.deadline => {
                    answers.push(Answer::Failed {
                        svc: w.svc,
                        generation: w.generation,
                        message: format!(
                            "its pid-file {} named no process to follow within {}s: {reason}",
                            w.path.display(),
                            PID_FILE_WAIT.as_secs()
                        ),
                    });
                    false
                }
                Err(_) => {
                    w.next = now + POLL;
                    true
                }
            }
        });
        answers
    }
}

/// The pid in `path` and its process group, if it names a process tend can follow.
fn daemon(path: &Path, me: Pid) -> Result<(Pid, Pid), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let pid = match text.trim().parse::<i32>() {
        // The init (tend itself when it is PID 1) is never anyone's child.
        Ok(1) => return Err("it names pid 1, which is not a child of tend".into()),
        Ok(p) if p > 1 => Pid(p),
        _ => return Err(format!("it holds {:?}, not a process id", text.trim())),
    };
    let Some((parent, group)) = process::parent_and_group(pid) else {
        return Err(format!("no process {} is running", pid.0));
    };
    if parent != me {
        return Err(format!(
            "process {} is not tend's child (a stale file?)",
            pid.0
        ));
    }
    // Never tend's own group: stopping the service would signal tend.
    let own = process::parent_and_group(me).map(|(_, g)| g);
    if group.0 <= 1 || Some(group) == own {
        return Err(format!(
            "process {} is in tend's own process group {}",
            pid.0, group.0
        ));
    }
    Ok((pid, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_pid_file_must_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.pid");
        let me = process::getpid();
        assert!(daemon(&path, me).unwrap_err().starts_with("cannot read it"));
        std::fs::write(&path, "nonsense\n").unwrap();
        assert!(daemon(&path, me).unwrap_err().contains("not a process id"));
        std::fs::write(&path, "0\n").unwrap();
        assert!(daemon(&path, me).unwrap_err().contains("not a process id"));
        std::fs::write(&path, "-5\n").unwrap();
        assert!(daemon(&path, me).unwrap_err().contains("not a process id"));
        std::fs::write(&path, "1\n").unwrap();
        assert_eq!(
            daemon(&path, me).unwrap_err(),
            "it names pid 1, which is not a child of tend"
        );
        // This test process itself: alive, but not its own child.
        std::fs::write(&path, format!("{}\n", me.0)).unwrap();
        assert!(daemon(&path, me).unwrap_err().contains("not tend's child"));
        std::fs::write(&path, "999999999").unwrap();
        assert!(
            daemon(&path, me)
                .unwrap_err()
                .contains("no process 999999999")
        );
    }
}
