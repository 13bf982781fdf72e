//! A byte queue that lines are copied into in place: what waits for tend's stdout or stderr
//! (`output::OutputQueue`) and what a chunk adds to a `logs.file`.

use crate::sys::bytes;

/// The buffer grows by whole pages.
const PAGE: usize = 4096;

/// The queued bytes are `buf[head..end]`. The buffer only grows, zero-filled once when it
/// does, so the bytes past `end` are already there to copy into: queuing a log line is one
/// room check and two copies in place, not a `Vec` append with its own growth check per
/// piece (measured: the appends were a tenth of tend's time on a busy log).
#[derive(Debug, Default)]
pub struct ByteQueue {
    buf: Vec<u8>,
    head: usize,
    end: usize,
}

impl ByteQueue {
    pub fn push(&mut self, bytes: &[u8]) {
        if let Some(room) = self.room(bytes.len()) {
            room.copy_from_slice(bytes);
        }
    }

    /// One log line: `head` (the prefix), then `line` (the text with its newline).
    #[inline(always)]
    pub fn push_line(&mut self, head: &[u8], line: &[u8]) {
        if let Some((first, second)) = self
            .room(head.len() + line.len())
            .and_then(|room| room.split_at_mut_checked(head.len()))
        {
            first.copy_from_slice(head);
            second.copy_from_slice(line);
        }
    }

    /// The lines at the front of `run` (whole lines, each with its newline), each after
    /// `prefix`, up to the first one longer than `max_line` bytes without its newline.
    /// Returns the bytes of `run` taken and how many lines they are.
    pub fn push_prefixed(&mut self, prefix: &[u8], run: &[u8], max_line: usize) -> (usize, usize) {
        let (mut read, mut lines) = (0, 0);
        while let Some(rest) = run.get(read..).filter(|rest| !rest.is_empty()) {
            // Room for at least the next line, when it is not too long: so a call that
            // takes no line has found one longer than `max_line`.
            let next = prefix.len() + rest.len().min(max_line.saturating_add(1));
            if self.buf.len() - self.end < next {
                self.make_room(next);
            }
            let room = self.buf.get_mut(self.end..).unwrap_or_default();
            let done = bytes::prefix_lines(rest, prefix, max_line, room);
            self.end += done.written;
            read += done.read;
            lines += done.lines;
            if done.lines == 0 {
                break;
            }
        }
        (read, lines)
    }

    /// The next `n` bytes of the queue, to be filled by the caller (`make_room` sees to it
    /// that they exist; None only if it could not).
    #[inline(always)]
    fn room(&mut self, n: usize) -> Option<&mut [u8]> {
        if self.buf.len() - self.end < n {
            self.make_room(n);
        }
        let room = self.buf.get_mut(self.end..self.end + n)?;
        self.end += n;
        Some(room)
    }

    /// Moves the queue to the front of the buffer, and grows the buffer if that is not
    /// enough for `n` more bytes.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, n: usize) {
        if self.head > 0 {
            self.buf.copy_within(self.head..self.end, 0);
            self.end -= self.head;
            self.head = 0;
        }
        if self.buf.len() - self.end < n {
            // Only what is needed is zero-filled (and so becomes resident), a page at a time;
            // the Vec's own capacity doubling keeps the reallocations few.
            self.buf.resize((self.end + n).next_multiple_of(PAGE), 0);
        }
    }

    /// The queued bytes.
    pub fn queued(&self) -> &[u8] {
        self.buf.get(self.head..self.end).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.end - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.head
    }

    /// The first `n` queued bytes are gone (written).
    pub fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.end);
        if self.head == self.end {
            self.clear();
        }
    }

    pub fn clear(&mut self) {
        self.head = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines pushed with a prefix come out as pushed one by one, whatever room the queue
    /// had: it grows as it goes, and stops at a line that is too long.
    #[test]
    fn prefixed_runs_grow_the_queue_and_stop_at_a_long_line() {
        let mut run = Vec::new();
        for i in 0..3000 {
            run.extend_from_slice(format!("line {i} {}\n", "z".repeat(i % 50)).as_bytes());
        }
        let mut q = ByteQueue::default();
        q.push(b"first\n");
        let mut want = b"first\n".to_vec();
        for line in run.split_inclusive(|&c| c == b'\n') {
            want.extend_from_slice(b"svc | ");
            want.extend_from_slice(line);
        }
        assert_eq!(q.push_prefixed(b"svc | ", &run, 100), (run.len(), 3000));
        assert!(q.queued() == want);
        q.consume(want.len());
        assert!(q.is_empty());
        let run = b"ab\n0123456789\ncd\n";
        assert_eq!(q.push_prefixed(b"> ", run, 9), (3, 1));
        assert_eq!(q.push_prefixed(b"> ", &run[3..], 9), (0, 0));
        assert_eq!(q.push_prefixed(b"> ", &run[14..], 9), (3, 1));
        assert_eq!(q.queued(), b"> ab\n> cd\n");
    }
}
