//! Cutting a byte stream into lines: whole lines out, partial ones kept until they end, grow
//! too long (then split, never dropped), or are flushed because the writer exited or went quiet.

use crate::sys::bytes;

/// Longest line written as one; longer ones are cut into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

/// A line found by [`LineBuffer::feed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `data[start..end]` of the data just fed, with its newline at `data[end]`: most lines
    /// of a busy service, passed on without being copied.
    InPlace { start: usize, end: usize },
    /// A line put together from an earlier partial one, a piece of an over-long line, or a
    /// flushed partial line: no newline follows it.
    Own(&'a [u8]),
}

impl<'a> Line<'a> {
    /// The line's bytes, without a newline; `data` is what was fed.
    pub fn text(self, data: &'a [u8]) -> &'a [u8] {
        match self {
            Line::InPlace { start, end } => data.get(start..end).unwrap_or_default(),
            Line::Own(text) => text,
        }
    }
}

#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
    /// The line being read had a piece cut off and nothing has come since: the newline that
    /// ends it adds no empty piece (which would depend on how the reads fell).
    cut: bool,
}

impl LineBuffer {
    /// Appends `data`, calling `emit` for each complete line, in order.
    pub fn feed(&mut self, data: &[u8], mut emit: impl FnMut(Line<'_>)) {
        let mut pos = 0;
        let mut rest = data;
        // The newline search is most of the per-byte work on a busy log.
        while let Some(found) = bytes::find(b'\n', rest) {
            let nl = pos + found;
            let (line, after) = rest.split_at(found);
            let cut = std::mem::take(&mut self.cut);
            if !self.partial.is_empty() {
                self.partial.extend_from_slice(line);
                emit_split(&self.partial, &mut emit);
                self.partial.clear();
            } else if cut && line.is_empty() {
                // The line was a whole number of pieces, all of them out already.
            } else if line.len() <= MAX_LINE {
                emit(Line::InPlace {
                    start: pos,
                    end: nl,
                });
            } else {
                emit_split(line, &mut emit);
            }
            // `after` starts with the newline.
            rest = after.split_first().map_or(&[], |(_, r)| r);
            pos = nl + 1;
        }
        self.partial.extend_from_slice(rest);
        if !self.partial.is_empty() {
            self.cut = false;
        }
        while let Some((piece, _)) = self.partial.split_at_checked(MAX_LINE) {
            emit(Line::Own(piece));
            self.partial.drain(..MAX_LINE);
            self.cut = self.partial.is_empty();
        }
    }

    /// Emits what is left as a line of its own.
    pub fn flush(&mut self, mut emit: impl FnMut(Line<'_>)) {
        if !self.partial.is_empty() {
            emit(Line::Own(&self.partial));
            self.partial.clear();
        }
        self.cut = false;
    }

    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }
}

fn emit_split(line: &[u8], emit: &mut impl FnMut(Line<'_>)) {
    if line.is_empty() {
        emit(Line::Own(line));
    }
    for piece in line.chunks(MAX_LINE) {
        emit(Line::Own(piece));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, LineBuffer) {
        let mut b = LineBuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            b.feed(c, |l| out.push(l.text(c).to_vec()));
        }
        (out, b)
    }

    #[test]
    fn whole_and_split_lines() {
        let (out, b) = run(&[b"one\ntw", b"o\n\nthr", b"ee"]);
        assert_eq!(out, vec![b"one".to_vec(), b"two".to_vec(), b"".to_vec()]);
        assert!(b.has_partial());
        let mut b = b;
        let mut rest = Vec::new();
        b.flush(|l| rest.push(l.text(&[]).to_vec()));
        assert_eq!(rest, vec![b"three".to_vec()]);
        assert!(!b.has_partial());
    }

    #[test]
    fn whole_lines_are_passed_in_place_and_joined_ones_as_their_own() {
        let mut b = LineBuffer::default();
        let mut got = Vec::new();
        b.feed(b"ab\ncd\npar", |l| got.push(format!("{l:?}")));
        b.feed(b"tial\nef\n", |l| got.push(format!("{l:?}")));
        assert_eq!(
            got,
            [
                "InPlace { start: 0, end: 2 }",
                "InPlace { start: 3, end: 5 }",
                "Own([112, 97, 114, 116, 105, 97, 108])",
                "InPlace { start: 5, end: 7 }",
            ]
        );
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
        // The same arriving in small pieces without a newline.
        let (out, b) = run(&long.chunks(1000).collect::<Vec<_>>());
        assert_eq!(out.len(), 2);
        assert!(b.has_partial());
    }
}
