//! Cutting a byte stream into lines: whole lines out, partial ones kept until they end, grow
//! too long (then split, never dropped), or are flushed because the writer exited or went quiet.

use crate::sys::bytes;

/// Longest line written as one; longer ones are cut into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

/// Where [`LineBuffer::feed`] puts the lines it finds, in order.
pub trait LineSink {
    /// `data[start..end]` are whole lines of the data just fed, each with its newline (`end`
    /// is just past the last newline): most lines of a busy service, passed on without
    /// being copied. The sink takes the lines at the front that are at most [`MAX_LINE`]
    /// bytes long without their newline, and returns where it stopped: `end`, or the start
    /// of a longer line, which the line buffer then cuts into pieces.
    fn run(&mut self, data: &[u8], start: usize, end: usize) -> usize;

    /// A line put together from an earlier partial one, a piece of an over-long line, or a
    /// flushed partial line: no newline follows it.
    fn own(&mut self, text: &[u8]);
}

#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
    /// The line being read had a piece cut off and nothing has come since: the newline that
    /// ends it adds no empty piece (which would depend on how the reads fell).
    cut: bool,
}

impl LineBuffer {
    /// Appends `data`, handing each complete line to `sink`, in order.
    pub fn feed(&mut self, data: &[u8], sink: &mut impl LineSink) {
        // The end of the last whole line: what follows is the start of a partial one.
        let end = bytes::find_last(b'\n', data).map_or(0, |nl| nl + 1);
        let mut pos = 0;
        if end > 0 && !self.partial.is_empty() {
            let first = bytes::find(b'\n', data).unwrap_or(0);
            self.partial
                .extend_from_slice(data.get(..first).unwrap_or_default());
            emit_split(&self.partial, sink);
            self.partial.clear();
            pos = first + 1;
        } else if end > 0 && std::mem::take(&mut self.cut) && data.first() == Some(&b'\n') {
            // The line was a whole number of pieces, all of them out already.
            pos = 1;
        }
        while pos < end {
            pos = sink.run(data, pos, end).max(pos);
            if pos < end {
                // A line longer than MAX_LINE starts at `pos`, and ends before `end`.
                let rest = data.get(pos..end).unwrap_or_default();
                let len = bytes::find(b'\n', rest).unwrap_or(rest.len());
                emit_split(rest.get(..len).unwrap_or_default(), sink);
                pos += len + 1;
            }
        }
        if end < data.len() {
            self.partial
                .extend_from_slice(data.get(end..).unwrap_or_default());
            self.cut = false;
        }
        while let Some((piece, _)) = self.partial.split_at_checked(MAX_LINE) {
            sink.own(piece);
            self.partial.drain(..MAX_LINE);
            self.cut = self.partial.is_empty();
        }
    }

    /// Emits what is left as a line of its own.
    pub fn flush(&mut self, sink: &mut impl LineSink) {
        if !self.partial.is_empty() {
            sink.own(&self.partial);
            self.partial.clear();
        }
        self.cut = false;
    }

    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }
}

fn emit_split(line: &[u8], sink: &mut impl LineSink) {
    if line.is_empty() {
        sink.own(line);
    }
    for piece in line.chunks(MAX_LINE) {
        sink.own(piece);
    }
}

/// The lines at the front of `run` (whole lines, each with its newline) up to the first
/// one longer than `max_line` bytes without its newline, each with its newline.
pub fn lines_of(run: &[u8], max_line: usize) -> impl Iterator<Item = &[u8]> {
    let mut rest = run;
    std::iter::from_fn(move || {
        let len = bytes::find(b'\n', rest)?;
        if len > max_line {
            return None;
        }
        let (line, after) = rest.split_at_checked(len + 1)?;
        rest = after;
        Some(line)
    })
}

/// The bytes and the number of the lines [`lines_of`] gives.
pub fn count_lines(run: &[u8], max_line: usize) -> (usize, usize) {
    lines_of(run, max_line).fold((0, 0), |(read, lines), line| (read + line.len(), lines + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each line as the sink got it: `run` for lines from a run, `own` for the others.
    #[derive(Default)]
    struct Got(Vec<(&'static str, Vec<u8>)>);

    impl LineSink for Got {
        fn run(&mut self, data: &[u8], start: usize, end: usize) -> usize {
            let mut pos = start;
            for line in lines_of(&data[start..end], MAX_LINE) {
                self.0.push(("run", line[..line.len() - 1].to_vec()));
                pos += line.len();
            }
            pos
        }

        fn own(&mut self, text: &[u8]) {
            self.0.push(("own", text.to_vec()));
        }
    }

    fn run(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, LineBuffer) {
        let mut b = LineBuffer::default();
        let mut got = Got::default();
        for c in chunks {
            b.feed(c, &mut got);
        }
        (got.0.into_iter().map(|(_, l)| l).collect(), b)
    }

    #[test]
    fn whole_and_split_lines() {
        let (out, b) = run(&[b"one\ntw", b"o\n\nthr", b"ee"]);
        assert_eq!(out, vec![b"one".to_vec(), b"two".to_vec(), b"".to_vec()]);
        assert!(b.has_partial());
        let mut b = b;
        let mut rest = Got::default();
        b.flush(&mut rest);
        assert_eq!(rest.0, vec![("own", b"three".to_vec())]);
        assert!(!b.has_partial());
    }

    #[test]
    fn whole_lines_are_passed_in_place_and_joined_ones_as_their_own() {
        let mut b = LineBuffer::default();
        let mut got = Got::default();
        b.feed(b"ab\ncd\npar", &mut got);
        b.feed(b"tial\nef\n", &mut got);
        let want: Vec<(&str, Vec<u8>)> = vec![
            ("run", b"ab".to_vec()),
            ("run", b"cd".to_vec()),
            ("own", b"partial".to_vec()),
            ("run", b"ef".to_vec()),
        ];
        assert_eq!(got.0, want);
    }

    #[test]
    fn long_lines_are_split_not_dropped() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let mut input = long.clone();
        input.push(b'\n');
        let (out, b) = run(&[&input]);
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![MAX_LINE, MAX_LINE, 10]
        );
        assert_eq!(out.concat(), long);
        assert!(!b.has_partial());
        // Between short lines, in the same chunk.
        let mut input = b"a\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\nb\n");
        let (out, _) = run(&[&input]);
        assert_eq!(
            out.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, MAX_LINE, MAX_LINE, 10, 1]
        );
        // The same arriving in small pieces without a newline.
        let (out, b) = run(&long.chunks(1000).collect::<Vec<_>>());
        assert_eq!(out.len(), 2);
        assert!(b.has_partial());
    }

    #[test]
    fn a_line_of_whole_pieces_adds_no_empty_piece() {
        let long = vec![b'x'; MAX_LINE];
        let (out, b) = run(&[&long, b"\nnext\n"]);
        assert_eq!(out, vec![long.clone(), b"next".to_vec()]);
        assert!(!b.has_partial());
    }

    #[test]
    fn lines_of_a_run_stop_at_a_long_line() {
        let run = b"ab\n\nlong\ncd\n";
        let lines: Vec<&[u8]> = lines_of(run, 3).collect();
        assert_eq!(lines, [&b"ab\n"[..], b"\n"]);
        assert_eq!(count_lines(run, 3), (4, 2));
        assert_eq!(count_lines(run, 4), (run.len(), 4));
    }
}
