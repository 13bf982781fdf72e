//! Cutting a byte stream into lines: whole lines out, partial ones kept until they end, grow
//! too long (then split, never dropped), or are flushed because the writer exited or went quiet.

/// Longest line written as one; longer ones are cut into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Appends `data`, calling `emit` for each complete line (without its newline).
    pub fn feed(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        // memchr: the newline search is most of the per-byte work on a busy log.
        while let Some(nl) = memchr::memchr(b'\n', data) {
            let (line, rest) = data.split_at(nl);
            if self.partial.is_empty() {
                emit_split(line, &mut emit);
            } else {
                self.partial.extend_from_slice(line);
                emit_split(&self.partial, &mut emit);
                self.partial.clear();
            }
            data = &rest[1..];
        }
        self.partial.extend_from_slice(data);
        while self.partial.len() >= MAX_LINE {
            emit(&self.partial[..MAX_LINE]);
            self.partial.drain(..MAX_LINE);
        }
    }

    /// Emits what is left as a line of its own.
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(&self.partial);
            self.partial.clear();
        }
    }

    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }
}

fn emit_split(line: &[u8], emit: &mut impl FnMut(&[u8])) {
    if line.is_empty() {
        emit(line);
    }
    for piece in line.chunks(MAX_LINE) {
        emit(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, LineBuffer) {
        let mut b = LineBuffer::default();
        let mut out = Vec::new();
        for c in chunks {
            b.feed(c, |l| out.push(l.to_vec()));
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
        b.flush(|l| rest.push(l.to_vec()));
        assert_eq!(rest, vec![b"three".to_vec()]);
        assert!(!b.has_partial());
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
