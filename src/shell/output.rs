//! tend's stdout or stderr as a non-blocking, queued writer, so a slow reader (a throttled
//! `docker logs` pipe) makes tend stop reading its services' pipes instead of blocking the
//! event loop or dropping lines.

use rustix::fs::{FileType, Mode, OFlags};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Above this many queued bytes the output counts as congested: services feeding it are not
/// read until it drains below it again.
pub const HIGH_WATER: usize = 256 * 1024;

enum Target {
    /// A fresh open file description of the same pipe or terminal, made non-blocking without
    /// touching the description tend inherited (which others may share).
    Reopened(OwnedFd),
    /// A socket: each send is non-blocking by itself.
    Socket(OwnedFd),
    /// A regular file (never blocks for long) or anything we could not reopen.
    Plain(OwnedFd),
}

pub struct Output {
    target: Target,
    queue: Vec<u8>,
    /// Bytes of `queue` already written.
    head: usize,
}

impl Output {
    /// Wraps tend's fd `fd` (1 or 2).
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<Output> {
        let own = fd.try_clone_to_owned()?;
        let kind = rustix::fs::fstat(&own).map(|st| FileType::from_raw_mode(st.st_mode));
        // Only pipes and terminals both block and can be watched by epoll (/dev/null, a
        // character device too, cannot be watched and never blocks).
        let watchable = match kind {
            Ok(FileType::Fifo) => true,
            Ok(FileType::CharacterDevice) => rustix::termios::isatty(&own),
            _ => false,
        };
        let target = match kind {
            Ok(FileType::Fifo | FileType::CharacterDevice) if watchable => {
                let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&own));
                let flags = OFlags::WRONLY
                    | OFlags::NONBLOCK
                    | OFlags::CLOEXEC
                    | OFlags::NOCTTY
                    | OFlags::APPEND;
                match rustix::fs::open(path.as_str(), flags, Mode::empty()) {
                    Ok(fd) => Target::Reopened(fd),
                    Err(_) => Target::Plain(own),
                }
            }
            Ok(FileType::Socket) => Target::Socket(own),
            _ => Target::Plain(own),
        };
        Ok(Output {
            target,
            queue: Vec::new(),
            head: 0,
        })
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.queue.extend_from_slice(bytes);
    }

    /// The queue itself, to format a line straight into it without a buffer of its own.
    pub fn queue_mut(&mut self) -> &mut Vec<u8> {
        &mut self.queue
    }

    pub fn pending(&self) -> usize {
        self.queue.len() - self.head
    }

    pub fn congested(&self) -> bool {
        self.pending() >= HIGH_WATER
    }

    /// Writes as much as the target takes without blocking. Errors other than "would block"
    /// (a closed pipe) discard the queue: nobody is there to read it, and holding it would
    /// stall every service forever.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.pending() > 0 {
            let chunk = &self.queue[self.head..];
            let res = match &self.target {
                Target::Socket(fd) => {
                    rustix::net::send(fd, chunk, rustix::net::SendFlags::DONTWAIT)
                }
                Target::Reopened(fd) | Target::Plain(fd) => rustix::io::write(fd, chunk),
            };
            match res {
                Ok(n) => self.head += n,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    self.queue.clear();
                    self.head = 0;
                    return Err(e.into());
                }
            }
        }
        if self.head == self.queue.len() {
            self.queue.clear();
            self.head = 0;
        } else if self.head > HIGH_WATER {
            self.queue.drain(..self.head);
            self.head = 0;
        }
        Ok(())
    }

    /// The fd to watch for writability, when writes can block.
    pub fn pollable(&self) -> Option<BorrowedFd<'_>> {
        match &self.target {
            Target::Reopened(fd) | Target::Socket(fd) => Some(fd.as_fd()),
            Target::Plain(_) => None,
        }
    }
}
