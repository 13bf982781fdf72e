//! tend's stdout or stderr as a non-blocking, queued writer, so a slow reader (a throttled
//! `docker logs` pipe) makes tend stop reading its services' pipes instead of blocking the
//! event loop or dropping lines.

use super::queue::ByteQueue;
use crate::sys::bytes;
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

pub struct OutputQueue {
    target: Target,
    queue: ByteQueue,
    /// When the target is a pipe, its capacity: writes larger than `PIPE_BUF` are then cut
    /// to the whole lines the pipe has room for (see `whole_lines`).
    pipe_size: Option<usize>,
    /// A write failed for good (the reader is gone: EPIPE): nothing is queued any more.
    broken: bool,
    /// The error that broke it, until `take_error` takes it to be said.
    error: Option<io::Error>,
}

/// Pipes keep data in page-sized slots.
const PAGE: usize = 4096;

/// Writes to a pipe of at most this many bytes are atomic: all of it, or EAGAIN.
const PIPE_BUF: usize = 4096;

/// Bytes a write to the pipe surely takes now: its capacity, less what it holds, less up to
/// a page that the reader has partly consumed (pipes keep data in page-sized slots).
fn pipe_room(fd: &OwnedFd, size: usize) -> usize {
    let unread = rustix::io::ioctl_fionread(fd).map_or(size, |n| n as usize);
    size.saturating_sub(unread).saturating_sub(PAGE)
}

/// What of `chunk` (whole lines, then maybe a partial one) to write to a pipe with `room`
/// bytes free, so that the pipe never holds a line cut in two (a partial write ends where
/// the kernel found no more room, anywhere in a line; if tend then has to exit with nobody
/// reading, the rest of that line is lost and the reader gets half a line): the whole lines
/// that fit; if not even the first does, that line alone, which is written whole or not at
/// all when it is at most `PIPE_BUF` long. Only a longer line can still be cut.
fn whole_lines(chunk: &[u8], room: usize) -> &[u8] {
    if chunk.len() <= room {
        return chunk;
    }
    let fits = chunk.get(..room).unwrap_or(chunk);
    if let Some(last) = bytes::find_last(b'\n', fits) {
        return chunk.get(..=last).unwrap_or(chunk);
    }
    match bytes::find(b'\n', chunk) {
        Some(first) if first < PIPE_BUF => chunk.get(..=first).unwrap_or(chunk),
        _ => chunk,
    }
}

impl OutputQueue {
    /// Wraps tend's fd `fd` (1 or 2).
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<OutputQueue> {
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
        let pipe_size = match (&target, kind) {
            (Target::Reopened(fd), Ok(FileType::Fifo)) => rustix::pipe::fcntl_getpipe_size(fd).ok(),
            _ => None,
        };
        Ok(OutputQueue {
            target,
            pipe_size,
            queue: ByteQueue::default(),
            broken: false,
            error: None,
        })
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if !self.broken {
            self.queue.push(bytes);
        }
    }

    /// One log line: `head` (the prefix), then `line` (the text with its newline).
    #[inline(always)]
    pub fn push_line(&mut self, head: &[u8], line: &[u8]) {
        if !self.broken {
            self.queue.push_line(head, line);
        }
    }

    /// The lines at the front of `run` (whole lines, each with its newline), each after
    /// `prefix`, up to the first one longer than `max_line` bytes: the bytes of `run` taken
    /// and how many lines they are (see `ByteQueue::push_prefixed`). A broken output takes
    /// them all the same, and drops them.
    pub fn push_prefixed(&mut self, prefix: &[u8], run: &[u8], max_line: usize) -> (usize, usize) {
        if self.broken {
            return super::lines::count_lines(run, max_line);
        }
        self.queue.push_prefixed(prefix, run, max_line)
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub fn congested(&self) -> bool {
        self.pending() >= HIGH_WATER
    }

    /// Writes as much as the target takes without blocking. Errors other than "would block"
    /// (a closed pipe) discard the queue and break the output: nobody is there to read it,
    /// and holding it would stall every service forever. The error is kept for `take_error`.
    pub fn flush(&mut self) -> io::Result<()> {
        // A pipe's room is asked for (FIONREAD) once per flush: after a write cut to that
        // room the pipe is as good as full, and what follows goes in batches of whole lines
        // of at most PIPE_BUF bytes, which the pipe takes whole or not at all, until it
        // refuses (before: a FIONREAD and a write per line while the pipe's last page had
        // room, nine of each per 64 KiB read when tend's stdout is a pipe to a busy reader).
        let mut asked = false;
        while !self.queue.is_empty() {
            let mut chunk = self.queue.queued();
            if let (Some(size), Target::Reopened(fd)) = (self.pipe_size, &self.target)
                && chunk.len() > PIPE_BUF
            {
                let room = if asked { 0 } else { pipe_room(fd, size) };
                asked = true;
                chunk = whole_lines(chunk, room.max(PIPE_BUF));
            }
            let res = match &self.target {
                Target::Socket(fd) => {
                    rustix::net::send(fd, chunk, rustix::net::SendFlags::DONTWAIT)
                }
                Target::Reopened(fd) | Target::Plain(fd) => rustix::io::write(fd, chunk),
            };
            match res {
                Ok(n) => self.queue.consume(n),
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    self.queue.clear();
                    self.broken = true;
                    self.error = Some(e.into());
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The error that broke this output, once: to be said (on the other output).
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// The fd to watch for writability, when writes can block.
    pub fn pollable(&self) -> Option<BorrowedFd<'_>> {
        match &self.target {
            Target::Reopened(fd) | Target::Socket(fd) => Some(fd.as_fd()),
            Target::Plain(_) => None,
        }
    }
}

/// JSON lines are escaped straight into the queue.
impl super::json_line::Put for OutputQueue {
    fn put(&mut self, bytes: &[u8]) {
        self.push(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads everything the pipe holds now.
    fn read_all(read: &OwnedFd, got: &mut Vec<u8>) {
        let mut buf = vec![0; 1 << 16];
        while let Ok(n) = rustix::io::read(read, &mut buf[..]) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    /// A reader that takes a little at a time leaves the queue half written again and again:
    /// new lines go in behind the unwritten ones (the queue moves to the front of its buffer
    /// or the buffer grows), and the reader gets every byte once, in order.
    #[test]
    fn a_slow_reader_gets_every_byte_once_in_order() {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK)
            .unwrap_or_else(|e| panic!("pipe: {e}"));
        rustix::pipe::fcntl_setpipe_size(&write, 4096).unwrap_or_else(|e| panic!("size: {e}"));
        let mut out = OutputQueue::new(write.as_fd()).unwrap_or_else(|e| panic!("output: {e}"));
        let mut want = Vec::new();
        let mut got = Vec::new();
        for i in 0..20_000u32 {
            let line = format!("line {i} {}\n", "x".repeat((i % 300) as usize));
            out.push_line(b"svc | ", line.as_bytes());
            want.extend_from_slice(b"svc | ");
            want.extend_from_slice(line.as_bytes());
            if i % 7 == 0 {
                out.push(b"tend: a note\n");
                want.extend_from_slice(b"tend: a note\n");
            }
            if i % 50 == 0 {
                out.flush().unwrap_or_else(|e| panic!("flush: {e}"));
                read_all(&read, &mut got);
            }
        }
        while out.pending() > 0 {
            out.flush().unwrap_or_else(|e| panic!("flush: {e}"));
            read_all(&read, &mut got);
        }
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
    }

    #[test]
    fn whole_lines_cuts_at_the_last_line_that_fits() {
        let chunk = b"aaaa\nbbbb\ncccc\n";
        assert_eq!(whole_lines(chunk, 100), chunk);
        assert_eq!(whole_lines(chunk, 12), b"aaaa\nbbbb\n");
        assert_eq!(whole_lines(chunk, 5), b"aaaa\n");
        // Not even the first line: that line alone (atomic when short).
        assert_eq!(whole_lines(chunk, 2), b"aaaa\n");
        assert_eq!(whole_lines(chunk, 0), b"aaaa\n");
        // A line longer than PIPE_BUF cannot be written whole anyway.
        let long = [vec![b'x'; 5000], b"\nnext\n".to_vec()].concat();
        assert_eq!(whole_lines(&long, 100).len(), long.len());
    }

    /// Issue: with the reader stalled, a big write could stop in the middle of a line; had
    /// tend then exited, the reader got half a line. Whenever the pipe refuses more, what it
    /// holds ends with a whole line.
    #[test]
    fn a_full_pipe_never_holds_half_a_line() {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK)
            .unwrap_or_else(|e| panic!("pipe: {e}"));
        rustix::pipe::fcntl_setpipe_size(&write, 16 * 4096).unwrap_or_else(|e| panic!("size: {e}"));
        for round in 0..20u32 {
            let mut out = OutputQueue::new(write.as_fd()).unwrap_or_else(|e| panic!("output: {e}"));
            // Lines of many lengths, far more than the pipe holds.
            for i in 0..5000u32 {
                let line = format!(
                    "{round} {i} {}\n",
                    "y".repeat(((i * 37 + round) % 900) as usize)
                );
                out.push_line(b"svc | ", line.as_bytes());
                if i % 97 == 0 {
                    out.flush().unwrap_or_else(|e| panic!("flush: {e}"));
                }
            }
            out.flush().unwrap_or_else(|e| panic!("flush: {e}"));
            assert!(out.pending() > 0, "the pipe should be full");
            let mut got = Vec::new();
            read_all(&read, &mut got);
            assert_eq!(
                got.last(),
                Some(&b'\n'),
                "round {round}: the pipe ends mid-line"
            );
            let text = String::from_utf8_lossy(&got);
            assert!(
                text.lines().all(|l| l.starts_with("svc | ")),
                "round {round}"
            );
        }
    }

    #[test]
    fn a_closed_reader_discards_the_queue() {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK)
            .unwrap_or_else(|e| panic!("pipe: {e}"));
        let mut out = OutputQueue::new(write.as_fd()).unwrap_or_else(|e| panic!("output: {e}"));
        drop(read);
        out.push_line(b"svc | ", b"gone\n");
        assert!(out.flush().is_err());
        assert_eq!(out.pending(), 0);
        // The reader is gone for good: nothing is queued any more, and the error is handed
        // out once, to be said once.
        assert_eq!(
            out.take_error().map(|e| e.raw_os_error()),
            Some(Some(libc::EPIPE))
        );
        assert!(out.take_error().is_none());
        out.push(b"next\n");
        out.push_line(b"svc | ", b"more\n");
        assert_eq!(out.pending(), 0);
        assert!(out.flush().is_ok());
    }
}
