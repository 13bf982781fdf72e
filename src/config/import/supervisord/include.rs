//! `[include] files = ...`: the patterns supervisord hands to Python's `glob.glob`, matched
//! here with the same rules, so that the same files are read in the same order: `*`, `?`
//! and `[...]` (`[!...]` negated, ranges) in any component; a leading `.` is matched only by
//! a pattern component that starts with one; each pattern's files sorted by name.

use std::path::{Path, PathBuf};

/// The files a pattern names, sorted; `base` is where a relative pattern starts.
pub fn matches(base: &Path, pattern: &str) -> Vec<PathBuf> {
    let full = base.join(pattern);
    let mut found = vec![PathBuf::new()];
    for component in full.components() {
        let part = component.as_os_str().to_string_lossy();
        let magic = part.contains(['*', '?', '[']);
        found = found
            .into_iter()
            .flat_map(|dir| {
                if !magic {
                    return vec![dir.join(component)];
                }
                // A directory that cannot be listed has nothing to match.
                let listed = if dir.as_os_str().is_empty() {
                    std::fs::read_dir(".")
                } else {
                    std::fs::read_dir(&dir)
                };
                let Ok(listed) = listed else {
                    return Vec::new();
                };
                listed
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| !name.starts_with('.') || part.starts_with('.'))
                    .filter(|name| fnmatch(&part, name))
                    .map(|name| dir.join(name))
                    .collect()
            })
            .collect();
    }
    // Components without magic were only joined: keep what exists (a dangling link too).
    let mut files: Vec<PathBuf> = found
        .into_iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .collect();
    files.sort();
    files
}

/// Python's `fnmatch.fnmatchcase`: the whole name against the pattern.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches_from(&pattern, &name)
}

fn matches_from(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        // Backtracking is fine here: include patterns are short.
        '*' => (0..=name.len()).any(|skip| matches_from(rest, &name[skip..])),
        '?' => !name.is_empty() && matches_from(rest, &name[1..]),
        '[' => match class(rest) {
            Some((set, after)) => {
                name.first().is_some_and(|&c| set.contains(c)) && matches_from(after, &name[1..])
            }
            // A `[` with no closing `]` is an ordinary character.
            None => name.first() == Some(&'[') && matches_from(rest, &name[1..]),
        },
        c => name.first() == Some(&c) && matches_from(rest, &name[1..]),
    }
}

/// A bracket expression after its `[`: the set and the pattern after its `]`. A `]` right
/// after the `[` (or `[!`) belongs to the set.
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

fn class(pattern: &[char]) -> Option<(Class, &[char])> {
    let negated = pattern.first() == Some(&'!');
    let body = if negated { &pattern[1..] } else { pattern };
    // A `]` right after `[` or `[!` is a member, not the end.
    let from = usize::from(body.first() == Some(&']'));
    let close = from + body[from..].iter().position(|&c| c == ']')?;
    let members = &body[..close];
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < members.len() {
        if i + 2 < members.len() && members[i + 1] == '-' {
            ranges.push((members[i], members[i + 2]));
            i += 3;
        } else {
            ranges.push((members[i], members[i]));
            i += 1;
        }
    }
    Some((Class { negated, ranges }, &body[close + 1..]))
}
