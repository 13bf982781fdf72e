//! Plain-text tables and the short forms of durations that fill them.

/// Left-aligned columns separated by two spaces, one line per row, header first. The last
/// column is not padded, so no line ends in blanks.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().take(columns).enumerate() {
            if i + 1 < columns {
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The two largest units of a duration (`5m12s`): shared with the status notes tend writes
/// itself, so both read the same.
pub use crate::proto::duration_text as duration;

/// CPU time as people read it: `0.42s` and `12.3s` under a minute, then as [`duration`]
/// (`5m12s`, `2h3m`).
pub fn cpu(ms: u64) -> String {
    if ms < 10_000 {
        format!("{}.{:02}s", ms / 1000, ms % 1000 / 10)
    } else if ms < 60_000 {
        format!("{}.{}s", ms / 1000, ms % 1000 / 100)
    } else {
        duration(ms)
    }
}

/// A size in powers of 1024, three significant digits at most: `512B`, `4.0KiB`, `12.3MiB`,
/// `530MiB`, `1.5GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS[unit];
    // One decimal below 10 (rounded down, so 9.99 stays 9.9 rather than becoming "10.0").
    if value < 10.0 {
        format!("{:.1}{name}", (value * 10.0).floor() / 10.0)
    } else {
        format!("{:.0}{name}", value.floor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_plus_two() {
        let t = render(
            &["NAME", "STATE", "PID"],
            &[
                row(&["web", "running", "42"]),
                row(&["database", "stopped", "-"]),
            ],
        );
        assert_eq!(
            t,
            "NAME      STATE    PID\n\
             web       running  42\n\
             database  stopped  -\n"
        );
    }

    #[test]
    fn the_last_column_is_not_padded_even_when_empty() {
        let t = render(
            &["A", "REASON"],
            &[
                row(&["x", "gave up after 11 failed starts"]),
                row(&["y", ""]),
            ],
        );
        assert!(t.lines().all(|l| l == l.trim_end()), "{t:?}");
        assert_eq!(t.lines().nth(2), Some("y"));
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let t = render(&["N", "X"], &[row(&["é", "1"]), row(&["ab", "2"])]);
        assert_eq!(t, "N   X\né   1\nab  2\n");
    }

    #[test]
    fn header_only() {
        assert_eq!(render(&["NAME", "STATE"], &[]), "NAME  STATE\n");
    }

    #[test]
    fn durations_keep_the_two_largest_units() {
        for (ms, text) in [
            (0, "0s"),
            (999, "0s"),
            (3_000, "3s"),
            (59_999, "59s"),
            (60_000, "1m0s"),
            (312_000, "5m12s"),
            (3_599_000, "59m59s"),
            (3_600_000, "1h0m"),
            (7_380_000, "2h3m"),
            (86_399_000, "23h59m"),
            (86_400_000, "1d0h"),
            (3 * 86_400_000 + 5 * 3_600_000 + 59_000, "3d5h"),
            (u64::MAX, "213503982334d14h"),
        ] {
            assert_eq!(duration(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn cpu_times_have_hundredths_under_ten_seconds() {
        for (ms, text) in [
            (0, "0.00s"),
            (9, "0.00s"),
            (420, "0.42s"),
            (9_999, "9.99s"),
            (12_345, "12.3s"),
            (59_999, "59.9s"),
            (312_000, "5m12s"),
        ] {
            assert_eq!(cpu(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn sizes_take_the_largest_unit_below_them() {
        for (n, text) in [
            (0, "0B"),
            (1023, "1023B"),
            (1024, "1.0KiB"),
            (10_239, "9.9KiB"),
            (5 << 20, "5.0MiB"),
            ((12 << 20) + (300 << 10), "12MiB"),
            (530 << 20, "530MiB"),
            ((3 << 30) / 2, "1.5GiB"),
            (u64::MAX, "16384PiB"),
        ] {
            assert_eq!(bytes(n), text, "{n}");
        }
    }
}
