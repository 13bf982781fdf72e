//! SysV shared memory segments, found by key: their attributes, their bytes, and making them
//! again in a fresh IPC namespace. Used to carry segments across a container restart
//! (`[tend.shm]`).

use std::io;

/// A segment as it was: what is needed to make it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub key: i32,
    /// Permission bits (the low 9 bits of `shm_perm.mode`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub bytes: Vec<u8>,
}

/// The segment with `key`, copied out; None when there is none.
pub fn read(key: i32) -> io::Result<Option<Segment>> {
    // SAFETY: shmget with size 0 and no flags only looks the key up.
    let id = unsafe { libc::shmget(key, 0, 0) };
    if id < 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(err),
        };
    }
    let mut ds = std::mem::MaybeUninit::<libc::shmid_ds>::uninit();
    // SAFETY: `ds` is valid for writing a shmid_ds; IPC_STAT fills it on success.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: IPC_STAT succeeded, so `ds` is initialised.
    let ds = unsafe { ds.assume_init() };
    let size = ds.shm_segsz;
    let mut bytes = vec![0u8; size];
    let at = Attached::new(id, libc::SHM_RDONLY)?;
    // SAFETY: the segment is attached at `at.addr` and is `size` bytes long; `bytes` has
    // room for exactly that many, and the two do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(at.addr, bytes.as_mut_ptr(), size) };
    drop(at);
    Ok(Some(Segment {
        key,
        mode: u32::from(ds.shm_perm.mode) & 0o777,
        uid: ds.shm_perm.uid,
        gid: ds.shm_perm.gid,
        bytes,
    }))
}

/// Makes `segment` anew: it must not exist yet (`EEXIST` otherwise, and nothing is touched).
pub fn create(segment: &Segment) -> io::Result<()> {
    let size = segment.bytes.len();
    let flags = libc::IPC_CREAT | libc::IPC_EXCL | (segment.mode & 0o777) as i32;
    // SAFETY: shmget takes plain integers.
    let id = unsafe { libc::shmget(segment.key, size, flags) };
    if id < 0 {
        return Err(io::Error::last_os_error());
    }
    let filled = (|| {
        let at = Attached::new(id, 0)?;
        // SAFETY: the fresh segment is attached at `at.addr`, `size` bytes long, writable.
        unsafe { std::ptr::copy_nonoverlapping(segment.bytes.as_ptr(), at.addr, size) };
        drop(at);
        let mut ds = std::mem::MaybeUninit::<libc::shmid_ds>::uninit();
        // SAFETY: as in `read`.
        if unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: IPC_STAT succeeded.
        let mut ds = unsafe { ds.assume_init() };
        ds.shm_perm.uid = segment.uid;
        ds.shm_perm.gid = segment.gid;
        // SAFETY: IPC_SET reads uid, gid and mode from a valid shmid_ds.
        if unsafe { libc::shmctl(id, libc::IPC_SET, &mut ds) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    })();
    if filled.is_err() {
        // Half-made: do not leave it for a service to find.
        // SAFETY: IPC_RMID on the id we just created; the pointer argument is unused.
        unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
    filled
}

/// Test clean-up: removes the segment with `key`, if there is one.
#[cfg(test)]
pub(crate) fn remove(key: i32) {
    // SAFETY: shmget and shmctl take plain integers; IPC_RMID ignores the pointer argument.
    unsafe {
        let id = libc::shmget(key, 0, 0);
        if id >= 0 {
            libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
        }
    }
}

/// A segment attached to this process, detached on drop.
struct Attached {
    addr: *mut u8,
}

impl Attached {
    fn new(id: i32, flags: i32) -> io::Result<Attached> {
        // SAFETY: a null address lets the kernel choose where to attach.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
        if addr as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Attached { addr: addr.cast() })
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: `addr` came from a successful shmat and is detached only here.
        unsafe { libc::shmdt(self.addr.cast()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_made_again_with_its_bytes_mode_and_owner() {
        // A key unlikely to be in use; the test runs in the host's IPC namespace.
        let key = 0x7e4d_0000 | (std::process::id() as i32 & 0xffff);
        remove(key);
        assert_eq!(read(key).unwrap(), None);
        let (uid, gid) = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        let segment = Segment {
            key,
            mode: 0o640,
            uid,
            gid,
            bytes: (0..10_000u32).map(|i| (i % 251) as u8).collect(),
        };
        create(&segment).unwrap();
        let back = read(key).unwrap().unwrap();
        remove(key);
        // The kernel rounds nothing: shm_segsz is the size asked for.
        assert_eq!(back.bytes, segment.bytes);
        assert_eq!(back.mode, 0o640);
        assert_eq!((back.uid, back.gid), (uid, gid));
        create(&segment).unwrap();
        let again = create(&segment).unwrap_err();
        remove(key);
        assert_eq!(again.raw_os_error(), Some(libc::EEXIST));
    }
}
