//! `[tend.shm]`: SysV shared memory segments saved to a file when tend exits, after every
//! service has stopped, and made again from it when tend starts, before any service. A
//! segment lives in the container's IPC namespace and is gone after a restart; the file, on
//! a volume, is not.
//!
//! The file is written whole to a temporary name, synced and renamed over the old one, so a
//! crash while saving leaves the previous save intact. A file that cannot be read back as
//! saved segments stops tend from starting: starting without the state would let the next
//! save overwrite it.

use crate::config::ShmSettings;
use crate::core::Level;
use crate::sys::shm::{self, Segment};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 9] = b"TENDSHM1\n";

/// The file's bytes: magic, count, then per segment key, mode, uid, gid, length and bytes
/// (little-endian), then an FNV-1a checksum of everything before it.
pub fn encode(segments: &[Segment]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    for s in segments {
        out.extend_from_slice(&s.key.to_le_bytes());
        out.extend_from_slice(&s.mode.to_le_bytes());
        out.extend_from_slice(&s.uid.to_le_bytes());
        out.extend_from_slice(&s.gid.to_le_bytes());
        out.extend_from_slice(&(s.bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&s.bytes);
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

pub fn decode(data: &[u8]) -> Result<Vec<Segment>, String> {
    let body_len = data
        .len()
        .checked_sub(8)
        .filter(|n| *n >= MAGIC.len() + 4)
        .ok_or("too short")?;
    let (body, sum) = data.split_at_checked(body_len).ok_or("too short")?;
    let Some(segments) = body.strip_prefix(MAGIC) else {
        return Err("not a file of saved segments".into());
    };
    if fnv1a(body).to_le_bytes() != sum {
        return Err("its checksum does not match (truncated or damaged)".into());
    }
    let mut r = Reader { data: segments };
    let count = r.u32()?;
    let mut segments = Vec::new();
    for _ in 0..count {
        let key = r.u32()? as i32;
        let mode = r.u32()?;
        let uid = r.u32()?;
        let gid = r.u32()?;
        let len = usize::try_from(r.u64()?).map_err(|_| "a segment too large")?;
        let bytes = r.take(len)?.to_vec();
        segments.push(Segment {
            key,
            mode,
            uid,
            gid,
            bytes,
        });
    }
    if !r.data.is_empty() {
        return Err("bytes after the last segment".into());
    }
    Ok(segments)
}

const ENDS_EARLY: &str = "it ends in the middle of a segment";

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let (head, rest) = self.data.split_at_checked(n).ok_or(ENDS_EARLY)?;
        self.data = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self.data.split_first_chunk::<N>().ok_or(ENDS_EARLY)?;
        self.data = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `0x0000abcd`, as `ipcs` shows keys.
pub fn show_key(key: i32) -> String {
    format!("0x{:08x}", key as u32)
}

/// At start, before any service: makes the saved segments again. Returns what to tell the
/// operator, each note with its level: a saved segment that is not made again is a warning,
/// because the next save replaces the file without its saved bytes. An error means tend
/// must not start.
pub fn restore(settings: &ShmSettings) -> Result<Vec<(Level, String)>, String> {
    let file = settings.file.display();
    let data = match std::fs::read(&settings.file) {
        Ok(data) => data,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(vec![(
                Level::Info,
                format!("shared memory: {file} does not exist yet; nothing to restore"),
            )]);
        }
        Err(e) => return Err(format!("shared memory: cannot read {file}: {e}")),
    };
    let segments = decode(&data).map_err(|why| {
        format!(
            "shared memory: {file} cannot be read as saved segments ({why}); nothing was started. \
             Move it away to start without the saved segments"
        )
    })?;
    let mut notes = Vec::new();
    for segment in &segments {
        let key = show_key(segment.key);
        if !settings.keys.contains(&segment.key) {
            notes.push((
                Level::Warn,
                format!(
                    "shared memory: segment {key} in {file} is not in shm.keys; not restored, \
                     and the next save leaves it out"
                ),
            ));
            continue;
        }
        match shm::create(segment) {
            Ok(()) => notes.push((
                Level::Info,
                format!(
                    "shared memory: restored segment {key} ({} bytes) from {file}",
                    segment.bytes.len()
                ),
            )),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => notes.push((
                Level::Warn,
                format!(
                    "shared memory: segment {key} already exists; left as it is, not restored \
                     from {file}, and the next save replaces the saved one with it"
                ),
            )),
            Err(e) => {
                return Err(format!(
                    "shared memory: cannot make segment {key} ({} bytes) again: {e}; nothing was started",
                    segment.bytes.len()
                ));
            }
        }
    }
    Ok(notes)
}

/// At exit, after every service has stopped: saves the segments. Returns what to tell the
/// operator, or why nothing was saved (the previous file is then left as it was).
pub fn save(settings: &ShmSettings) -> Result<Vec<String>, String> {
    let file = settings.file.display();
    let mut notes = Vec::new();
    let mut segments = Vec::new();
    for &key in &settings.keys {
        match shm::read(key) {
            Ok(Some(segment)) => segments.push(segment),
            Ok(None) => notes.push(format!(
                "shared memory: segment {} does not exist; not saved",
                show_key(key)
            )),
            Err(e) => {
                return Err(format!(
                    "shared memory: cannot read segment {}: {e}; {file} left as it was",
                    show_key(key)
                ));
            }
        }
    }
    write_atomically(&settings.file, &encode(&segments))
        .map_err(|e| format!("shared memory: cannot write {file}: {e}; it is left as it was"))?;
    let bytes: usize = segments.iter().map(|s| s.bytes.len()).sum();
    notes.push(format!(
        "shared memory: saved {} segment(s), {bytes} bytes, to {file}",
        segments.len()
    ));
    Ok(notes)
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        // The segments' own modes protect them while they live; on disk the file is for
        // tend alone, whatever the umask. A temporary file left by a crash may have any
        // mode, so it goes first and the new one is made afresh (O_EXCL: no symlink followed).
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask can only take bits away; make it exactly 0600.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself must reach the disk too.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments() -> Vec<Segment> {
        vec![
            Segment {
                key: 0x1234,
                mode: 0o600,
                uid: 0,
                gid: 0,
                bytes: b"state".to_vec(),
            },
            Segment {
                key: -2,
                mode: 0o644,
                uid: 33,
                gid: 33,
                bytes: vec![0; 100_000],
            },
        ]
    }

    #[test]
    fn round_trip() {
        assert_eq!(decode(&encode(&segments())).unwrap(), segments());
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn damage_is_refused() {
        let good = encode(&segments());
        assert!(decode(&good[..good.len() - 1]).is_err());
        assert!(decode(&good[..20]).is_err());
        assert!(decode(b"").unwrap_err().contains("too short"));
        let mut flipped = good.clone();
        flipped[30] ^= 1;
        assert!(decode(&flipped).unwrap_err().contains("checksum"));
        let mut other = good.clone();
        other[0] = b'X';
        assert!(
            decode(&other)
                .unwrap_err()
                .contains("not a file of saved segments")
        );
    }

    #[test]
    fn a_damaged_file_stops_the_start_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let settings = ShmSettings {
            file: dir.path().join("shm.bin"),
            keys: vec![0x1234],
        };
        let notes = restore(&settings).unwrap();
        assert_eq!(notes[0].0, Level::Info);
        assert!(notes[0].1.contains("does not exist yet"));
        std::fs::write(&settings.file, b"TENDSHM1\ngarbage").unwrap();
        let err = restore(&settings).unwrap_err();
        assert!(err.contains("nothing was started"), "{err}");
        assert_eq!(std::fs::read(&settings.file).unwrap(), b"TENDSHM1\ngarbage");
    }

    /// A segment that is already there when tend starts wins over the saved one, and the next
    /// save replaces the saved bytes: the operator must hear of it at the default verbosity.
    #[test]
    fn a_segment_in_the_way_of_a_restore_is_a_warning() {
        // A key unlikely to be in use; the test runs in the host's IPC namespace.
        let key = 0x7e4e_0000 | (std::process::id() as i32 & 0xffff);
        let remove = || shm::remove(key);
        remove();
        let dir = tempfile::tempdir().unwrap();
        let settings = ShmSettings {
            file: dir.path().join("shm.bin"),
            keys: vec![key],
        };
        let (uid, gid) = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        let saved = Segment {
            key,
            mode: 0o600,
            uid,
            gid,
            bytes: b"saved".to_vec(),
        };
        let unlisted = Segment {
            key: key ^ 0x0100_0000,
            ..saved.clone()
        };
        std::fs::write(&settings.file, encode(&[unlisted, saved.clone()])).unwrap();
        shm::create(&Segment {
            bytes: b"other".to_vec(),
            ..saved
        })
        .unwrap();
        let notes = restore(&settings);
        let there = shm::read(key);
        remove();
        let notes = notes.unwrap();
        assert_eq!(
            there.unwrap().unwrap().bytes,
            b"other",
            "the segment was touched"
        );
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert_eq!(notes[0].0, Level::Warn, "{notes:?}");
        assert!(notes[0].1.contains("is not in shm.keys"), "{notes:?}");
        assert_eq!(notes[1].0, Level::Warn, "{notes:?}");
        assert!(notes[1].1.contains("already exists"), "{notes:?}");
        assert!(notes[1].1.contains("next save replaces"), "{notes:?}");
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn the_file_is_for_tend_alone_whatever_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shm.bin");
        write_atomically(&file, b"first").unwrap();
        assert_eq!(mode(&file), 0o600);
        // An earlier file and a temporary file left by a crash, both readable by all: neither
        // mode may carry over.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let tmp = dir.path().join("shm.bin.tmp");
        std::fs::write(&tmp, b"left over").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_atomically(&file, b"second").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"second");
        assert!(!tmp.exists());
    }

    #[test]
    fn keys_are_shown_as_ipcs_does() {
        assert_eq!(show_key(0x1234), "0x00001234");
        assert_eq!(show_key(-1), "0xffffffff");
    }
}
