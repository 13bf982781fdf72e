//! The last N lines of a service, kept in memory for `tend logs`. When full, the oldest
//! line's buffer is reused for the newest, so a chatty service costs no allocation per line.

use std::collections::VecDeque;

#[derive(Clone, Debug, Default)]
pub struct StoredLine {
    /// 0 stdout, 1 stderr.
    pub stream: u8,
    /// Milliseconds since the Unix epoch when tend read it.
    pub time_ms: u64,
    /// The line's bytes as the service wrote them; decoded (lossily) only when asked for.
    pub text: Vec<u8>,
}

impl StoredLine {
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }
}

#[derive(Debug)]
pub struct Ring {
    lines: VecDeque<StoredLine>,
    capacity: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            lines: VecDeque::new(),
            capacity,
        }
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.lines.len() > capacity {
            self.lines.pop_front();
        }
    }

    pub fn push(&mut self, stream: u8, time_ms: u64, line: &[u8]) {
        if self.capacity == 0 {
            return;
        }
        let mut slot = if self.lines.len() >= self.capacity {
            self.lines.pop_front().unwrap_or_default()
        } else {
            StoredLine::default()
        };
        slot.stream = stream;
        slot.time_ms = time_ms;
        slot.text.clear();
        slot.text.extend_from_slice(line);
        self.lines.push_back(slot);
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &StoredLine> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines() {
        let mut r = Ring::new(3);
        for i in 0..10 {
            r.push(0, i, format!("line {i}").as_bytes());
        }
        let got: Vec<String> = r.last(10).map(StoredLine::text_lossy).collect();
        assert_eq!(got, vec!["line 7", "line 8", "line 9"]);
        let got: Vec<String> = r.last(1).map(StoredLine::text_lossy).collect();
        assert_eq!(got, vec!["line 9"]);
        r.set_capacity(1);
        assert_eq!(r.last(5).count(), 1);
        let mut empty = Ring::new(0);
        empty.push(0, 0, b"x");
        assert_eq!(empty.last(5).count(), 0);
    }
}
