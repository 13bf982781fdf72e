//! `logs.file`: a service's lines appended to a file of its own, rotated by size
//! (`PATH` -> `PATH.1` -> ... -> `PATH.KEEP`, the oldest removed).
//!
//! Writes go to a regular file, which does not block the way a pipe can; a failing write
//! (disk full, file removed from under tend, permissions) loses those lines for the file
//! only (what part of them got in is cut off again), is reported once, and the file is
//! opened afresh for the next chunk.

use crate::core::spec::LogFile as Settings;
use crate::sys::bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub struct LogFile {
    settings: Settings,
    file: Option<File>,
    /// Bytes in the current file.
    size: u64,
    /// The last write failed (reported once until one succeeds again).
    failing: bool,
}

impl LogFile {
    pub fn new(settings: Settings) -> LogFile {
        LogFile {
            settings,
            file: None,
            size: 0,
            failing: false,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Appends `bytes` (whole lines), rotating whenever the next line would take the file
    /// past `max-size`. Returns a message when the file has just started failing.
    pub fn write(&mut self, bytes: &[u8]) -> Option<String> {
        if bytes.is_empty() {
            return None;
        }
        match self.try_write(bytes) {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(e) => {
                self.file = None;
                let first = !std::mem::replace(&mut self.failing, true);
                first.then(|| {
                    format!(
                        "log file {}: {e}; its lines are lost until it can be written again",
                        self.settings.path.display()
                    )
                })
            }
        }
    }

    /// Whole lines go to a file as long as they fit in `max-size`; a file is rotated when the
    /// next line would not fit. (A single line longer than `max-size` gets a file of its own.)
    fn try_write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        let max = self.settings.max_size;
        while !bytes.is_empty() {
            let room = max.saturating_sub(self.size) as usize;
            let take = if max == 0 || bytes.len() <= room {
                bytes.len()
            } else {
                // room < bytes.len() here.
                match bytes::find_last(b'\n', bytes.get(..room).unwrap_or(bytes)) {
                    Some(nl) => nl + 1,
                    None if self.size > 0 => 0,
                    None => bytes::find(b'\n', bytes).map_or(bytes.len(), |nl| nl + 1),
                }
            };
            if take > 0 {
                let Some(file) = &mut self.file else {
                    return Err(io::Error::other("not open"));
                };
                // take <= bytes.len(): the whole, or up to a newline within it.
                let (head, rest) = bytes.split_at_checked(take).unwrap_or((bytes, &[]));
                if let Err(e) = file.write_all(head) {
                    // Part of it may be in: a disk that filled up mid-write. Taken back, so
                    // the file holds whole lines only and the next line does not join it.
                    let _ = file.set_len(self.size);
                    return Err(e);
                }
                self.size += head.len() as u64;
                bytes = rest;
            }
            if !bytes.is_empty() {
                self.rotate()?;
            }
        }
        Ok(())
    }

    fn open(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.settings.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    /// `PATH.(k-1)` -> `PATH.k` from the oldest down, `PATH` -> `PATH.1`, a fresh `PATH`.
    /// With `keep = 0` the full file is simply started over.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let path = &self.settings.path;
        let keep = self.settings.keep;
        if keep == 0 {
            std::fs::remove_file(path)?;
        } else {
            for k in (1..keep).rev() {
                match std::fs::rename(numbered(path, k), numbered(path, k + 1)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
            std::fs::rename(path, numbered(path, 1))?;
        }
        self.open()
    }
}

fn numbered(path: &std::path::Path, k: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path, max_size: u64, keep: u32) -> Settings {
        Settings {
            path: dir.join("svc.log"),
            max_size,
            keep,
        }
    }

    fn read(dir: &std::path::Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|_| "<none>".into())
    }

    #[test]
    fn appends_and_rotates_keeping_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("svc.log"), "old\n").unwrap();
        let mut f = LogFile::new(settings(dir.path(), 10, 2));
        // "old\n" + "a1\na2\n" = 10 bytes: fits exactly.
        assert_eq!(f.write(b"a1\na2\n"), None);
        assert_eq!(read(dir.path(), "svc.log"), "old\na1\na2\n");
        // Lines fill a file up to 10 bytes, then the next file.
        for chunk in ["b1\n", "c1\nc2\nc3\n", "d1\n"] {
            assert_eq!(f.write(chunk.as_bytes()), None);
        }
        assert_eq!(read(dir.path(), "svc.log"), "c3\nd1\n");
        assert_eq!(read(dir.path(), "svc.log.1"), "b1\nc1\nc2\n");
        assert_eq!(read(dir.path(), "svc.log.2"), "old\na1\na2\n");
        assert_eq!(read(dir.path(), "svc.log.3"), "<none>");
        assert_eq!(f.write(b"e1\ne2\n"), None);
        assert_eq!(read(dir.path(), "svc.log"), "e2\n");
        assert_eq!(read(dir.path(), "svc.log.1"), "c3\nd1\ne1\n");
        assert_eq!(read(dir.path(), "svc.log.2"), "b1\nc1\nc2\n");
        // A line longer than max-size gets a file of its own.
        assert_eq!(f.write(b"0123456789ABC\nf1\n"), None);
        assert_eq!(read(dir.path(), "svc.log.1"), "0123456789ABC\n");
        assert_eq!(read(dir.path(), "svc.log"), "f1\n");
    }

    #[test]
    fn keep_zero_starts_over_and_max_size_zero_never_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = LogFile::new(settings(dir.path(), 4, 0));
        f.write(b"abc\n");
        f.write(b"def\n");
        assert_eq!(read(dir.path(), "svc.log"), "def\n");
        assert_eq!(read(dir.path(), "svc.log.1"), "<none>");
        let mut f = LogFile::new(settings(dir.path(), 0, 3));
        for _ in 0..100 {
            f.write(b"0123456789\n");
        }
        assert_eq!(read(dir.path(), "svc.log").len(), 4 + 1100);
    }

    #[test]
    fn a_failing_file_is_reported_once_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = LogFile::new(Settings {
            path: dir.path().join("gone/svc.log"),
            max_size: 0,
            keep: 1,
        });
        let first = f.write(b"x\n").unwrap();
        assert!(first.contains("gone/svc.log"), "{first}");
        assert_eq!(f.write(b"y\n"), None);
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        assert_eq!(f.write(b"z\n"), None);
        assert_eq!(read(dir.path(), "gone/svc.log"), "z\n");
        // Removed from under tend: the next chunk goes to a new file once the old one is
        // rotated away; until then the open file keeps taking it.
        std::fs::remove_dir_all(dir.path().join("gone")).unwrap();
        assert!(f.write(b"w\n").is_none());
    }
}
