//! `instances = N`: one `[services.NAME]` table, N services `NAME-0` ... `NAME-(N-1)`, and
//! the `{instance}` placeholder in the values that differ from one instance to the next.
//!
//! The placeholder is `{instance}`, or `{instance:0W}` for the number padded with zeros to
//! width W (`{instance:02}` gives `03`). It is replaced in `command` (each argument of an
//! array; the whole string of a string command, before it is split or given to the shell),
//! `finish` (likewise), the values of `env`, `workdir`, `pid-file`, `logs.file`, and the
//! `tcp`, `http` and `exec`
//! of `ready` and `health`. A service without `instances` is the one instance 0.
//!
//! Braces are common in commands for other reasons (`${VAR}`, awk programs, JSON, `find
//! -exec {} \;`, Go templates), so only what looks like the placeholder is taken for one:
//! `{instance}` itself, and near misses (`{instanse}`, `{Instance}`, `{inst}`, `{instance_id}`),
//! which are errors rather than text passed on by mistake. A `{` right after `$` is the
//! shell's. Doubled braces around one (`{{instance}}`) are the text `{instance}` itself.

use super::context::Context;
use super::error::ConfigError;
use super::schema::{Command, ServiceTable};
use std::borrow::Cow;
use std::ops::{Range, RangeInclusive};
use toml::Spanned;

/// What `instances` may be.
pub(super) const INSTANCES: RangeInclusive<i64> = 1..=1000;

/// The widest `{instance:0W}` may pad to.
const MAX_WIDTH: usize = 99;

/// The placeholder's name.
const NAME: &str = "instance";

/// Something wrong inside one value, at a byte range of it.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub at: Range<usize>,
    pub message: String,
}

/// `text` with each placeholder replaced by `instance`.
pub fn fill(text: &str, instance: u32) -> Result<Cow<'_, str>, Problem> {
    let mut out = String::new();
    let mut done = 0; // text[..done] is in `out` (or needs no change)
    let mut from = 0;
    while let Some(found) = text[from..].find('{') {
        let at = from + found;
        from = at + 1;
        if text[..at].ends_with('$') {
            continue; // the shell's `${VAR}`
        }
        if text[at + 1..].starts_with('{') {
            // `{{instance}}` is the text `{instance}`.
            if let Some(p) = placeholder(text, at + 1)
                .filter(|p| p.closed && looks_like(p.name) && text[p.end..].starts_with('}'))
            {
                out.push_str(&text[done..at]);
                out.push_str(&text[at + 1..p.end]);
                done = p.end + 1;
                from = done;
            } else {
                from = at + 2; // `{{` of something else (a Go template): left alone
            }
            continue;
        }
        let Some(p) = placeholder(text, at).filter(|p| looks_like(p.name)) else {
            continue;
        };
        let written = &text[at..p.end];
        if !p.closed {
            return Err(Problem {
                at: at..p.end,
                message: format!(
                    "`{written}` is not closed: write `{{instance}}` or `{{instance:02}}`"
                ),
            });
        }
        if p.name != NAME {
            return Err(Problem {
                at: at..p.end,
                message: format!(
                    "unknown placeholder `{written}`: the one placeholder is `{{instance}}` \
                     (or `{{instance:02}}` for zero padding); write `{{{written}}}` for the \
                     text itself"
                ),
            });
        }
        let width = match p.format {
            None => 0,
            Some(format) => width(format).ok_or_else(|| Problem {
                at: at..p.end,
                message: format!(
                    "`{written}`: the one format is zero padding to a width from 1 to \
                     {MAX_WIDTH}, such as `{{instance:02}}` (00, 01, ...)"
                ),
            })?,
        };
        out.push_str(&text[done..at]);
        out.push_str(&format!("{instance:0width$}"));
        done = p.end;
        from = done;
    }
    if done == 0 {
        return Ok(Cow::Borrowed(text));
    }
    out.push_str(&text[done..]);
    Ok(Cow::Owned(out))
}

/// `text` with each thing that looks like a placeholder written so that `fill` gives it back
/// as it is (for `tend import`, whose sources may hold any text).
pub fn escape(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut done = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find('{') {
        let at = from + found;
        from = at + 1;
        if text[..at].ends_with('$') {
            continue;
        }
        let Some(p) = placeholder(text, at).filter(|p| p.closed && looks_like(p.name)) else {
            continue;
        };
        out.push_str(&text[done..at]);
        out.push('{');
        out.push_str(&text[at..p.end]);
        out.push('}');
        done = p.end;
        from = done;
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// Whether `text` has a placeholder that `fill` replaces.
pub fn has_placeholder(text: &str) -> bool {
    fill(text, 0).is_ok_and(|filled| filled != fill(text, 1).unwrap_or_default())
}

/// A `{NAME}` or `{NAME:FORMAT}` starting at `text[at]` (a `{`).
struct Placeholder<'t> {
    name: &'t str,
    format: Option<&'t str>,
    /// Just past its `}` (or the end of the text when it has none).
    end: usize,
    closed: bool,
}

fn placeholder(text: &str, at: usize) -> Option<Placeholder<'_>> {
    let inner = &text[at + 1..];
    let name_len = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    if name.is_empty() {
        return None;
    }
    let after = at + 1 + name_len;
    match text[after..].chars().next() {
        Some('}') => Some(Placeholder {
            name,
            format: None,
            end: after + 1,
            closed: true,
        }),
        Some(':') => {
            let rest = &text[after + 1..];
            match rest.find(['}', '{']) {
                Some(close) if rest[close..].starts_with('}') => Some(Placeholder {
                    name,
                    format: Some(&rest[..close]),
                    end: after + 1 + close + 1,
                    closed: true,
                }),
                _ => Some(Placeholder {
                    name,
                    format: None,
                    end: after + 1 + rest.find('{').unwrap_or(rest.len()),
                    closed: false,
                }),
            }
        }
        // `{print $1}`, `{a,b}`: not a placeholder.
        _ => None,
    }
}

/// `instance` itself, or a near miss of it: in another case, starting with `inst`, or one
/// letter off (one added, dropped, changed, or two swapped).
fn looks_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("inst") || edits(&lower, NAME) <= 1
}

/// The width of `0W`, if that is what `format` is.
fn width(format: &str) -> Option<usize> {
    let digits = format.strip_prefix('0')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|w| (1..=MAX_WIDTH).contains(w))
}

/// Edits (insertions, deletions, substitutions, swaps of neighbours) from `a` to `b`.
fn edits(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: edits from a[..i] to b[..j].
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The name of instance `i` of `base` out of `count`: the name itself when there is one.
pub fn name(base: &str, count: u32, i: u32) -> String {
    if count == 1 {
        base.to_string()
    } else {
        format!("{base}-{i}")
    }
}

/// The values of a service table that the placeholder is replaced in, as written: each
/// instance's values are made from these.
pub(super) struct Written {
    command: Option<Spanned<Command>>,
    finish: Option<Spanned<Command>>,
    env: Vec<Spanned<String>>,
    workdir: Option<Spanned<String>>,
    pid_file: Option<Spanned<String>>,
    log_file: Option<Spanned<String>>,
    ready: Probe,
    health: Probe,
}

/// The probe of a `ready` or `health` table, as written.
#[derive(Default)]
struct Probe {
    tcp: Option<Spanned<String>>,
    http: Option<Spanned<String>>,
    exec: Option<Spanned<Command>>,
}

impl Written {
    pub fn of(t: &ServiceTable) -> Written {
        let ready = t.ready.as_ref().map(|r| r.get_ref());
        let health = t.health.as_ref().map(|h| h.get_ref());
        Written {
            command: t.command.clone(),
            finish: t.finish.clone(),
            env: t
                .env
                .iter()
                .flat_map(|e| &e.0)
                .map(|(_, v)| v.clone())
                .collect(),
            workdir: t.workdir.clone(),
            pid_file: t.pid_file.clone(),
            log_file: t.logs.as_ref().and_then(|l| l.file.clone()),
            ready: Probe {
                tcp: ready.and_then(|r| r.tcp.clone()),
                http: ready.and_then(|r| r.http.clone()),
                exec: ready.and_then(|r| r.exec.clone()),
            },
            health: Probe {
                tcp: health.and_then(|h| h.tcp.clone()),
                http: health.and_then(|h| h.http.clone()),
                exec: health.and_then(|h| h.exec.clone()),
            },
        }
    }

    /// Puts instance `i`'s values into `t`.
    pub fn apply(&self, cx: &Context<'_>, t: &mut ServiceTable, i: u32) -> Result<(), ConfigError> {
        t.command = self
            .command
            .as_ref()
            .map(|c| command(cx, c, i))
            .transpose()?;
        t.finish = self
            .finish
            .as_ref()
            .map(|c| command(cx, c, i))
            .transpose()?;
        if let Some(env) = &mut t.env {
            for ((_, value), written) in env.0.iter_mut().zip(&self.env) {
                *value = string(cx, written, i)?;
            }
        }
        t.workdir = self
            .workdir
            .as_ref()
            .map(|v| string(cx, v, i))
            .transpose()?;
        t.pid_file = self
            .pid_file
            .as_ref()
            .map(|v| string(cx, v, i))
            .transpose()?;
        if let Some(logs) = &mut t.logs {
            logs.file = self
                .log_file
                .as_ref()
                .map(|v| string(cx, v, i))
                .transpose()?;
        }
        if let Some(ready) = &mut t.ready {
            let r = ready.get_mut();
            r.tcp = self
                .ready
                .tcp
                .as_ref()
                .map(|v| string(cx, v, i))
                .transpose()?;
            r.http = self
                .ready
                .http
                .as_ref()
                .map(|v| string(cx, v, i))
                .transpose()?;
            r.exec = self
                .ready
                .exec
                .as_ref()
                .map(|c| command(cx, c, i))
                .transpose()?;
        }
        if let Some(health) = &mut t.health {
            let h = health.get_mut();
            h.tcp = self
                .health
                .tcp
                .as_ref()
                .map(|v| string(cx, v, i))
                .transpose()?;
            h.http = self
                .health
                .http
                .as_ref()
                .map(|v| string(cx, v, i))
                .transpose()?;
            h.exec = self
                .health
                .exec
                .as_ref()
                .map(|c| command(cx, c, i))
                .transpose()?;
        }
        Ok(())
    }

    /// The spans of the values that hold a placeholder: an error inside one of them may
    /// depend on the instance.
    pub fn placeholder_spans(&self) -> Vec<Range<usize>> {
        let strings = [
            &self.workdir,
            &self.pid_file,
            &self.log_file,
            &self.ready.tcp,
            &self.ready.http,
            &self.health.tcp,
            &self.health.http,
        ]
        .into_iter()
        .flatten()
        .chain(&self.env);
        let commands = [
            &self.command,
            &self.finish,
            &self.ready.exec,
            &self.health.exec,
        ]
        .into_iter()
        .flatten();
        let mut spans: Vec<Range<usize>> = strings
            .filter(|v| has_placeholder(v.get_ref()))
            .map(Spanned::span)
            .collect();
        for c in commands {
            match c.get_ref() {
                Command::Text(text) if has_placeholder(text) => spans.push(c.span()),
                Command::Text(_) => {}
                Command::Argv(args) => spans.extend(
                    args.iter()
                        .filter(|a| has_placeholder(a.get_ref()))
                        .map(Spanned::span),
                ),
            }
        }
        spans
    }
}

fn string(
    cx: &Context<'_>,
    value: &Spanned<String>,
    i: u32,
) -> Result<Spanned<String>, ConfigError> {
    let filled =
        fill(value.get_ref(), i).map_err(|p| located(cx, value.span(), value.get_ref(), p))?;
    Ok(Spanned::new(value.span(), filled.into_owned()))
}

fn command(
    cx: &Context<'_>,
    value: &Spanned<Command>,
    i: u32,
) -> Result<Spanned<Command>, ConfigError> {
    let filled = match value.get_ref() {
        Command::Text(text) => Command::Text(
            fill(text, i)
                .map_err(|p| located(cx, value.span(), text, p))?
                .into_owned(),
        ),
        Command::Argv(args) => Command::Argv(
            args.iter()
                .map(|a| string(cx, a, i))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Spanned::new(value.span(), filled))
}

fn located(cx: &Context<'_>, span: Range<usize>, text: &str, p: Problem) -> ConfigError {
    cx.error(cx.inside_string(span, text, p.at), p.message)
}

/// One table of the file, as far as naming its services goes.
pub(super) struct Table<'a> {
    pub name: &'a Spanned<String>,
    /// `instances`, when written.
    pub count: Option<u32>,
    /// Where `instances` is written.
    pub count_at: Option<Range<usize>>,
}

impl Context<'_> {
    /// The name of every service the tables make, in file order. A name made twice is an
    /// error at the later table (its name, or its `instances` when that made the name) that
    /// says where the other one comes from.
    pub fn service_names(&self, tables: &[Table<'_>]) -> Result<Vec<String>, ConfigError> {
        // Each name made so far: (its table, the instance when `instances` made it).
        let mut made: std::collections::HashMap<String, (usize, Option<u32>)> =
            std::collections::HashMap::new();
        let mut names = Vec::new();
        for (k, table) in tables.iter().enumerate() {
            let base = table.name.get_ref();
            let count = table.count.unwrap_or(1);
            for i in 0..count {
                let name = name(base, count, i);
                let generated = (count > 1).then_some(i);
                if let Some(&(other, other_i)) = made.get(&name) {
                    return Err(self.clash(tables, (k, generated), (other, other_i), &name));
                }
                made.insert(name.clone(), (k, generated));
                names.push(name);
            }
        }
        Ok(names)
    }

    /// `name` made by `later` and by `earlier`, each a table and, when its `instances` made
    /// the name, the instance. The error points at the later one and says where the other is.
    fn clash(
        &self,
        tables: &[Table<'_>],
        later: (usize, Option<u32>),
        earlier: (usize, Option<u32>),
        name: &str,
    ) -> ConfigError {
        // What made the name, and where that is written.
        let maker = |(k, i): (usize, Option<u32>)| -> (String, Range<usize>) {
            let t = &tables[k];
            match (i, &t.count_at) {
                (Some(i), Some(at)) => (
                    format!(
                        "instance {i} of `{}` (instances = {})",
                        t.name.get_ref(),
                        t.count.unwrap_or(1)
                    ),
                    at.clone(),
                ),
                _ => (format!("[services.{}]", t.name.get_ref()), t.name.span()),
            }
        };
        let (this, span) = maker(later);
        let (other, other_at) = maker(earlier);
        self.error(
            span,
            format!(
                "two services are named `{name}`: {this} here, and {other} at {}",
                self.source.location(other_at.start)
            ),
        )
        .with_help("rename one of them: each service needs a name of its own")
    }

    /// `instances` of a table: how many, when it is written.
    pub fn instances(&self, t: &ServiceTable) -> Result<Option<u32>, ConfigError> {
        let Some(value) = &t.instances else {
            return Ok(None);
        };
        let n = *value.get_ref();
        if !INSTANCES.contains(&n) {
            return Err(self.error(
                value.span(),
                format!(
                    "instances must be from {} to {}, found {n}",
                    INSTANCES.start(),
                    INSTANCES.end()
                ),
            ));
        }
        Ok(u32::try_from(n).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(text: &str, i: u32) -> String {
        fill(text, i).unwrap().into_owned()
    }

    fn problem(text: &str) -> (Range<usize>, String) {
        let p = fill(text, 0).unwrap_err();
        (p.at, p.message)
    }

    #[test]
    fn the_placeholder_and_its_padding() {
        assert_eq!(filled("--name=w{instance}", 3), "--name=w3");
        assert_eq!(filled("{instance:02}", 3), "03");
        assert_eq!(filled("{instance:02}", 123), "123");
        assert_eq!(filled("{instance:04}-{instance}", 7), "0007-7");
        assert_eq!(filled("{instance:01}", 7), "7");
        assert_eq!(
            filled("/var/log/{instance}/{instance}.log", 12),
            "/var/log/12/12.log"
        );
        assert!(matches!(fill("no placeholder", 1), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn other_braces_are_left_alone() {
        for text in [
            "${instance}",
            "echo ${HOME} $${x}",
            "awk '{print $1}'",
            "find . -exec rm {} \\;",
            r#"{"a": 1}"#,
            "{a,b}",
            "docker ps --format '{{.Names}}'",
            "--log-format={time} {level} {message}",
            "{",
            "}{",
            "{instance",
            "{x:{instance",
        ] {
            assert_eq!(filled(text, 5), text, "{text}");
        }
        assert_eq!(filled("{time}-{instance}", 5), "{time}-5");
    }

    #[test]
    fn doubled_braces_are_the_text_itself() {
        assert_eq!(filled("{{instance}}", 5), "{instance}");
        assert_eq!(
            filled("{{instance:02}} {instance:02}", 5),
            "{instance:02} 05"
        );
        assert_eq!(filled("{{instanse}}", 5), "{instanse}");
        assert_eq!(
            filled("{{instance}", 5),
            "{{instance}",
            "not closed twice: as written"
        );
    }

    #[test]
    fn near_misses_and_bad_formats_are_errors_at_the_placeholder() {
        for (text, at) in [
            ("w{instanse}", 1..11),
            ("{Instance}", 0..10),
            ("{INSTANCE}", 0..10),
            ("x {inst}", 2..8),
            ("{instances}", 0..11),
            ("{instance_id}", 0..13),
            ("{isntance}", 0..10),
            ("{instace}", 0..9),
            ("{nstance}", 0..9),
            ("{instnce:02}", 0..12),
        ] {
            let (span, message) = problem(text);
            assert_eq!(span, at, "{text}: {message}");
            assert!(message.starts_with("unknown placeholder `"), "{message}");
        }
        assert_eq!(
            problem("w{instanse}").1,
            "unknown placeholder `{instanse}`: the one placeholder is `{instance}` (or \
             `{instance:02}` for zero padding); write `{{instanse}}` for the text itself"
        );
        for text in [
            "{instance:2}",
            "{instance:0}",
            "{instance:00}",
            "{instance:}",
            "{instance:x}",
            "{instance:0100}",
            "{instance:02d}",
        ] {
            let (span, message) = problem(text);
            assert_eq!(span, 0..text.len(), "{text}");
            assert!(
                message.contains("the one format is zero padding"),
                "{message}"
            );
        }
        assert_eq!(
            problem("a {instance:02 b"),
            (
                2..16,
                "`{instance:02 b` is not closed: write `{instance}` or `{instance:02}`".into()
            )
        );
        // Names far from `instance` are somebody else's braces.
        assert_eq!(
            filled("{stance} {distance} {in} {index}", 1),
            "{stance} {distance} {in} {index}"
        );
    }

    #[test]
    fn escaped_text_fills_to_itself() {
        for text in [
            "{instance}",
            "a {instance:02} b {instanse} ${instance} {time}",
            "{{.Names}}",
            "plain",
        ] {
            assert_eq!(filled(&escape(text), 4), text, "{}", escape(text));
        }
        assert_eq!(escape("x{instance}"), "x{{instance}}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Never a panic, whatever the braces; and escaped text (with no `{` right
            /// before a placeholder, which has no escape) fills back to itself.
            #[test]
            fn fill_and_escape(text in "[{}$:0-2a-z_ ]{0,30}|[{}$:02instace_ ]{0,30}") {
                let _ = fill(&text, 7);
                if !text.contains("{{")
                    && let Ok(back) = fill(&escape(&text), 7) {
                        prop_assert_eq!(back, text.as_str());
                    }
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(name("worker", 1, 0), "worker");
        assert_eq!(name("worker", 3, 2), "worker-2");
    }

    #[test]
    fn placeholders_are_found() {
        assert!(has_placeholder("a{instance}"));
        assert!(has_placeholder("{instance:03}"));
        assert!(!has_placeholder("{{instance}}"));
        assert!(!has_placeholder("plain"));
        assert!(!has_placeholder("{instanse}"));
    }
}
