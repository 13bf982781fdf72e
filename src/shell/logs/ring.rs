//! The last N lines of a service, kept in memory for `tend logs`.
//!
//! Lines are stored as newline-terminated bytes in blocks of [`BLOCK_BYTES`] (a buffer of that
//! size each, never grown), with the stream and time of each run of lines read together kept
//! beside them (one entry per chunk read, not per line). A busy service's chunk of hundreds of
//! lines is copied in with one `memcpy` (see [`Ring::push_lines`]) instead of a record per
//! line, or, when it fills at least half a block, not copied at all: the buffer it was read
//! into becomes the block, and the ring hands back the buffer of a block it dropped for the
//! next read ([`Ring::adopt`]). A quiet service's lines, read one at a time, share a block
//! instead of each having its own; lines are found again only when someone asks for them. The oldest block is
//! dropped once the newer blocks hold the capacity by themselves, so the ring
//! keeps at least the last N lines and at most one block more. The same holds for bytes:
//! a service writing long lines is held to its byte budget (plus a block), not to N lines of
//! whatever length.

use super::Stream;
use std::collections::VecDeque;

/// A block grows to about this size before a new one is started.
pub const BLOCK_BYTES: usize = 64 * 1024;

/// One line out of the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineRef<'a> {
    pub stream: Stream,
    /// Milliseconds since the Unix epoch when tend read it.
    pub time_ms: u64,
    /// The line's bytes as the service wrote them, without the newline.
    pub text: &'a [u8],
}

impl LineRef<'_> {
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(self.text).into_owned()
    }
}

/// Lines of one stream read at one time, from the block's line `from` on.
#[derive(Debug)]
struct Run {
    from: usize,
    stream: Stream,
    time_ms: u64,
}

#[derive(Debug)]
struct Block {
    /// In order; the first is for line 0.
    runs: Vec<Run>,
    /// From `start` on, whole lines, each ending with `\n` (stored lines never contain one
    /// themselves). `start` is 0 but for a block adopted from the buffer its lines were read
    /// into (`Ring::adopt`), where they start after the end of a line begun earlier.
    bytes: Vec<u8>,
    start: usize,
    lines: usize,
}

impl Block {
    fn new() -> Block {
        Block {
            runs: Vec::new(),
            bytes: Vec::with_capacity(BLOCK_BYTES),
            start: 0,
            lines: 0,
        }
    }

    /// The bytes of its lines.
    fn stored(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Room for `n` more bytes without growing (an empty block takes anything).
    #[inline]
    fn has_room(&self, n: usize) -> bool {
        self.bytes.is_empty() || self.bytes.len() + n <= self.bytes.capacity()
    }

    /// Lines of `stream` read at `time_ms` come next.
    #[inline]
    fn at(&mut self, stream: Stream, time_ms: u64) {
        let same = self
            .runs
            .last()
            .is_some_and(|r| r.stream == stream && r.time_ms == time_ms);
        if !same {
            self.runs.push(Run {
                from: self.lines,
                stream,
                time_ms,
            });
        }
    }

    /// Its lines with their stream and time, oldest first.
    fn lines(&self) -> impl Iterator<Item = LineRef<'_>> {
        let mut runs = self.runs.iter().peekable();
        let (mut stream, mut time_ms) = (Stream::Stdout, 0);
        self.bytes
            .get(self.start..)
            .unwrap_or_default()
            .split_inclusive(|&c| c == b'\n')
            .enumerate()
            .map(move |(i, line)| {
                while let Some(run) = runs.next_if(|r| r.from <= i) {
                    (stream, time_ms) = (run.stream, run.time_ms);
                }
                LineRef {
                    stream,
                    time_ms,
                    text: line.strip_suffix(b"\n").unwrap_or(line),
                }
            })
    }
}

#[derive(Debug)]
pub struct Ring {
    blocks: VecDeque<Block>,
    /// Lines in all blocks.
    lines: usize,
    /// Bytes in all blocks.
    bytes: usize,
    capacity: usize,
    max_bytes: usize,
}

impl Ring {
    /// A ring for the last `capacity` lines, in at most about `max_bytes`.
    pub fn new(capacity: usize, max_bytes: usize) -> Ring {
        Ring {
            blocks: VecDeque::new(),
            lines: 0,
            bytes: 0,
            capacity,
            max_bytes,
        }
    }

    pub fn set_capacity(&mut self, capacity: usize, max_bytes: usize) {
        self.capacity = capacity;
        self.max_bytes = max_bytes;
        if capacity == 0 || max_bytes == 0 {
            self.blocks.clear();
            self.lines = 0;
            self.bytes = 0;
        }
        let _ = self.evict();
    }

    /// One line (without its newline, which it must not contain).
    pub fn push(&mut self, stream: Stream, time_ms: u64, line: &[u8]) {
        if self.capacity == 0 || self.max_bytes == 0 {
            return;
        }
        let Some(block) = self.block_for(line.len() + 1) else {
            return;
        };
        block.at(stream, time_ms);
        block.bytes.extend_from_slice(line);
        block.bytes.push(b'\n');
        block.lines += 1;
        self.lines += 1;
        self.bytes += line.len() + 1;
        let _ = self.evict();
    }

    /// `count` whole lines at once: `bytes` is each line followed by its `\n`.
    pub fn push_lines(&mut self, stream: Stream, time_ms: u64, bytes: &[u8], count: usize) {
        if self.capacity == 0 || self.max_bytes == 0 || count == 0 {
            return;
        }
        debug_assert_eq!(crate::sys::bytes::count(b'\n', bytes), count);
        debug_assert_eq!(bytes.last(), Some(&b'\n'));
        let Some(block) = self.block_for(bytes.len()) else {
            return;
        };
        block.at(stream, time_ms);
        block.bytes.extend_from_slice(bytes);
        block.lines += count;
        self.lines += count;
        self.bytes += bytes.len();
        let _ = self.evict();
    }

    /// Whether [`Ring::adopt`] would take a run of `n` bytes: one of at least half a block
    /// that the newest block has no room for, so that an adopted block is at least half
    /// full, as a block filled by copies is (a quiet service's lines still share blocks).
    pub fn adopts(&self, n: usize) -> bool {
        self.capacity > 0
            && self.max_bytes > 0
            && n >= BLOCK_BYTES / 2
            && !self.blocks.back().is_some_and(|b| b.has_room(n))
    }

    /// `count` whole lines in `buf[start..end]`, the buffer they were read into, which
    /// becomes a block of its own instead of being copied into one (for a busy service, that
    /// copy was a tenth of tend's time). Returns a buffer of the same capacity for the next
    /// read: that of a block it dropped to make room, else a new one.
    pub fn adopt(
        &mut self,
        stream: Stream,
        time_ms: u64,
        mut buf: Vec<u8>,
        (start, end): (usize, usize),
        count: usize,
    ) -> Vec<u8> {
        let capacity = buf.capacity();
        if start > end || end > buf.len() || count == 0 || !self.adopts(end - start) {
            if let Some(run) = buf.get(start..end) {
                self.push_lines(stream, time_ms, run, count);
            }
            buf.clear();
            return buf;
        }
        debug_assert_eq!(
            crate::sys::bytes::count(b'\n', buf.get(start..end).unwrap_or_default()),
            count
        );
        buf.truncate(end);
        self.blocks.push_back(Block {
            runs: vec![Run {
                from: 0,
                stream,
                time_ms,
            }],
            bytes: buf,
            start,
            lines: count,
        });
        self.lines += count;
        self.bytes += end - start;
        match self.evict() {
            Some(mut old) if old.capacity() == capacity => {
                old.clear();
                old
            }
            _ => Vec::with_capacity(capacity),
        }
    }

    /// The block `n` more bytes go into: the newest one if they fit, else a fresh one (so
    /// always Some). A block's buffer is allocated once at its full size and never grows,
    /// so the ring holds what its lines need plus at most one block (a chunk larger than a
    /// block gets a block of its own, as large as the chunk).
    #[inline]
    fn block_for(&mut self, n: usize) -> Option<&mut Block> {
        if !self.blocks.back().is_some_and(|b| b.has_room(n)) {
            self.blocks.push_back(Block::new());
        }
        self.blocks.back_mut()
    }

    /// Drops the oldest blocks while the newer ones still hold `capacity` lines, or
    /// `max_bytes` bytes. Returns the buffer of the last one dropped.
    #[inline]
    fn evict(&mut self) -> Option<Vec<u8>> {
        // Checked here first: most lines drop no block.
        let due = self.blocks.front().is_some_and(|front| {
            self.lines - front.lines >= self.capacity
                || self.bytes - front.stored() >= self.max_bytes
        });
        if due { self.drop_oldest() } else { None }
    }

    #[cold]
    #[inline(never)]
    fn drop_oldest(&mut self) -> Option<Vec<u8>> {
        let mut dropped = None;
        while let Some(front) = self.blocks.front() {
            let enough_lines = self.lines - front.lines >= self.capacity;
            let enough_bytes = self.bytes - front.stored() >= self.max_bytes;
            if !enough_lines && !enough_bytes {
                break;
            }
            let Some(front) = self.blocks.pop_front() else {
                break;
            };
            self.lines -= front.lines;
            self.bytes -= front.stored();
            dropped = Some(front.bytes);
        }
        dropped
    }

    /// The last `n` lines (never more than the capacity), oldest first.
    pub fn last(&self, n: usize) -> impl Iterator<Item = LineRef<'_>> {
        let skip = self.lines - n.min(self.capacity).min(self.lines);
        self.blocks.iter().flat_map(Block::lines).skip(skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(r: &Ring, n: usize) -> Vec<String> {
        r.last(n).map(|l| l.text_lossy()).collect()
    }

    #[test]
    fn keeps_the_newest_lines() {
        let mut r = Ring::new(3, usize::MAX);
        for i in 0..10 {
            r.push(Stream::Stdout, i, format!("line {i}").as_bytes());
        }
        assert_eq!(texts(&r, 10), vec!["line 7", "line 8", "line 9"]);
        assert_eq!(texts(&r, 1), vec!["line 9"]);
        r.set_capacity(1, usize::MAX);
        assert_eq!(texts(&r, 5), vec!["line 9"]);
        let mut empty = Ring::new(0, usize::MAX);
        empty.push(Stream::Stdout, 0, b"x");
        empty.push_lines(Stream::Stdout, 0, b"y\n", 1);
        assert_eq!(empty.last(5).count(), 0);
    }

    #[test]
    fn bulk_and_single_lines_mix_in_order_with_their_stream_and_time() {
        let mut r = Ring::new(5, usize::MAX);
        r.push_lines(Stream::Stdout, 1, b"a\nb\n", 2);
        r.push(Stream::Stderr, 1, b"err");
        r.push_lines(Stream::Stdout, 2, b"c\n\nd\n", 3);
        let got: Vec<(Stream, u64, String)> = r
            .last(10)
            .map(|l| (l.stream, l.time_ms, l.text_lossy()))
            .collect();
        let (out, err) = (Stream::Stdout, Stream::Stderr);
        let want = [
            (out, 1, "b"),
            (err, 1, "err"),
            (out, 2, "c"),
            (out, 2, ""),
            (out, 2, "d"),
        ];
        let want: Vec<(Stream, u64, String)> = want
            .iter()
            .map(|&(s, t, x)| (s, t, x.to_string()))
            .collect();
        // Six lines went in: the oldest, "a", is the one gone.
        assert_eq!(got, want);
        assert_eq!(texts(&r, 2), vec!["", "d"]);
    }

    #[test]
    fn holds_at_least_capacity_and_at_most_a_block_more() {
        let mut r = Ring::new(1000, usize::MAX);
        let line = [b'x'; 99];
        let mut chunk = Vec::new();
        for _ in 0..655 {
            chunk.extend_from_slice(&line);
            chunk.push(b'\n');
        }
        for t in 0..50 {
            r.push_lines(Stream::Stdout, t, &chunk, 655);
            assert_eq!(
                r.last(usize::MAX).count(),
                (655 * (t as usize + 1)).min(1000)
            );
            let stored: usize = r.blocks.iter().map(Block::stored).sum();
            assert!(stored <= 1000 * 100 + BLOCK_BYTES + chunk.len(), "{stored}");
        }
        // The last lines come from the last chunk.
        assert!(r.last(655).all(|l| l.time_ms == 49));
    }

    /// A burst, then lines one at a time (a block each): the blocks after the burst hold
    /// their line, not a reused burst-sized buffer each (the soak found a ring of a thousand
    /// one-line blocks holding megabytes).
    #[test]
    fn a_one_line_block_does_not_keep_a_burst_sized_buffer() {
        let mut r = Ring::new(1000, usize::MAX);
        let mut burst = Vec::new();
        for _ in 0..900 {
            burst.extend_from_slice(&[b'b'; 99]);
            burst.push(b'\n');
        }
        let mut t = 0;
        for _ in 0..20 {
            t += 1;
            r.push_lines(Stream::Stdout, t, &burst, 900);
            for _ in 0..100 {
                t += 1;
                r.push(Stream::Stdout, t, b"one line");
            }
        }
        let held: usize = r.blocks.iter().map(|b| b.bytes.capacity()).sum();
        let stored: usize = r.blocks.iter().map(Block::stored).sum();
        assert!(
            held <= 2 * stored + 256 * r.blocks.len() + 2 * BLOCK_BYTES,
            "{held} bytes held for {stored} stored in {} blocks",
            r.blocks.len()
        );
    }

    /// Read buffers adopted as blocks: the lines after `start` are kept, in order with
    /// copied ones; the buffer handed back is a dropped block's, of the same capacity; a
    /// small run, or one the newest block has room for, is copied instead.
    #[test]
    fn adopted_buffers_become_blocks_and_come_back() {
        let mut r = Ring::new(1500, usize::MAX);
        let mut chunk = b"end of an earlier line\n".to_vec();
        let start = chunk.len();
        for i in 0..600 {
            chunk.extend_from_slice(format!("{i:099}\n").as_bytes());
        }
        chunk.extend_from_slice(b"partial");
        let end = chunk.len() - b"partial".len();
        let mut buf = Vec::with_capacity(BLOCK_BYTES);
        let mut adopted = Vec::new();
        let mut recycled = 0;
        for t in 0..10 {
            buf.extend_from_slice(&chunk);
            adopted.push(buf.as_ptr());
            assert!(r.adopts(end - start));
            buf = r.adopt(Stream::Stdout, t, buf, (start, end), 600);
            assert!(buf.is_empty() && buf.capacity() == BLOCK_BYTES);
            recycled += usize::from(adopted.contains(&buf.as_ptr()));
            r.push(Stream::Stderr, t, b"between");
        }
        // Three blocks hold the 1,500 lines; the others came back.
        assert!(recycled >= 6, "{recycled}");
        let last: Vec<LineRef<'_>> = r.last(1500).collect();
        assert_eq!(last.len(), 1500);
        assert_eq!(last[1499].text, b"between");
        assert_eq!(last[1498].text, format!("{:099}", 599).as_bytes());
        assert_eq!(last[1498].time_ms, 9);
        let stored: usize = r.blocks.iter().map(Block::stored).sum();
        assert_eq!(stored, r.bytes);
        // Small runs are copied: the buffer comes back as it was.
        let small = b"a\nb\n".to_vec();
        assert!(!r.adopts(small.len()));
        let back = r.adopt(Stream::Stdout, 11, small, (0, 4), 2);
        assert_eq!(back.capacity(), 4);
        assert_eq!(texts(&r, 2), vec!["a", "b"]);
    }

    /// Long lines: the byte budget bounds the ring (plus a block), whatever the line count.
    #[test]
    fn long_lines_are_held_to_the_byte_budget() {
        let budget = 256 * 1024;
        let mut r = Ring::new(1_000_000, budget);
        let mut chunk = vec![b'y'; 16 * 1024 - 1];
        chunk.push(b'\n');
        for t in 0..1000 {
            r.push_lines(Stream::Stdout, t, &chunk, 1);
            r.push(Stream::Stderr, t, &chunk[1..]);
            let stored: usize = r.blocks.iter().map(Block::stored).sum();
            assert_eq!(stored, r.bytes);
            assert!(stored <= budget + BLOCK_BYTES + chunk.len(), "{stored}");
        }
        // It still holds the newest lines, and at least the budget's worth of them.
        let kept: Vec<LineRef<'_>> = r.last(usize::MAX).collect();
        assert!(kept.len() * chunk.len() >= budget, "{}", kept.len());
        assert_eq!(
            kept.last().map(|l| (l.stream, l.time_ms)),
            Some((Stream::Stderr, 999))
        );
    }
}
