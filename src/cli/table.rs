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

/// The two largest units of a duration, as `ps` and `docker ps` show them: `3s`, `5m12s`,
/// `2h3m`, `4d7h`. Less than a second is `0s`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{m}m{}s", s % 60)
    } else if s < 86_400 {
        format!("{h}h{}m", m % 60)
    } else {
        format!("{d}d{}h", h % 24)
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
}
