//! Crontabs: a user's (`crontab -l`: five time fields, then the command) or the system's
//! (`/etc/crontab`, `/etc/cron.d/*`: a user name between them), as Vixie cron (Debian's
//! `cron`) reads them. One scheduled task per line.

use super::emit::{self, Service};
use super::{Host, Parts};
use crate::config::cron;

/// Whether lines have a user column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// Decide from the file: a system crontab's path, or every line's sixth word a user of
    /// this machine.
    Detect,
    /// A user's crontab.
    NoUser,
    /// The system crontab format.
    WithUser,
}

/// Names cron gives a special meaning among the variables a crontab sets.
const MAIL: &[&str] = &[
    "MAILTO",
    "MAILFROM",
    "CONTENT_TYPE",
    "CONTENT_TRANSFER_ENCODING",
];

/// Words that only lead to the program a line runs, passed over when naming its task.
const WRAPPERS: &[&str] = &[
    "exec", "nice", "ionice", "env", "sudo", "timeout", "flock", "chronic", "{", "}", "(", ")",
];

/// One job line: its schedule (None: `@reboot`), user and command.
struct Job<'a> {
    line: usize,
    text: &'a str,
    /// The time fields with single blanks between them, or the shorthand.
    schedule: Option<String>,
    user: Option<&'a str>,
    command: &'a str,
}

pub fn services(origin: &str, text: &str, columns: Columns, host: &Host) -> Result<Parts, String> {
    let with_user = match columns {
        Columns::WithUser => true,
        Columns::NoUser => false,
        Columns::Detect => {
            origin == "/etc/crontab"
                || origin.starts_with("/etc/cron.d/")
                || detect_user_column(text, host)
        }
    };
    let mut parts = Parts::default();
    // What the lines so far have set: cron gives each job the variables set above it.
    let mut env: Vec<(String, String)> = Vec::new();
    let mut shell: Option<String> = None;
    let mut timezone: Option<String> = None;
    let mut mailto_said = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = assignment(trimmed) {
            match name {
                "SHELL" => shell = Some(value),
                "CRON_TZ" | "TZ" => {
                    match &timezone {
                        None => {
                            parts.tend.push(("timezone", emit::string(&value)));
                            parts.notes.push(format!(
                                "{origin}:{line}: {name}={value} is `[tend] timezone`, for every task (tend has one time zone for all schedules)"
                            ));
                        }
                        Some(first) if *first != value => parts.notes.push(format!(
                            "{origin}:{line}: {name}={value} is not carried over: tend reads every schedule in one time zone, {first}"
                        )),
                        Some(_) => {}
                    }
                    timezone.get_or_insert(value);
                }
                _ if MAIL.contains(&name) => {
                    if !mailto_said {
                        parts.notes.push(format!(
                            "{origin}:{line}: {name} is not carried over: tend mails nothing; a task's output goes to tend's stdout with its name in front (and to `logs.file` if you set one)"
                        ));
                        mailto_said = true;
                    }
                }
                _ => {
                    env.retain(|(k, _)| k != name);
                    env.push((name.to_string(), value));
                }
            }
            continue;
        }
        // The command runs to the end of the line, blanks included: after a `%` they are
        // input.
        let job = job(raw.trim_start(), line, with_user)
            .ok_or_else(|| format!("{origin}:{line}: not a crontab line: {trimmed:?}"))?;
        let service = task(origin, &job, &env, shell.as_deref(), &mut parts)?;
        parts.services.push(service);
    }
    if !parts.services.is_empty() {
        parts.notes.push(
            "cron starts a job again at its time even while the last run still goes; tend \
             skips that run and says so. Times missed while tend was not running are not \
             made up, as under cron."
                .to_string(),
        );
        parts.notes.push(
            "cron gives jobs a small environment of their own (HOME and LOGNAME of their \
             user, SHELL=/bin/sh, PATH=/usr/bin:/bin) and the variables the crontab sets; \
             under tend they get tend's environment and the variables the crontab sets (as \
             `env`). Set PATH in the crontab or in `env` if a job relies on cron's."
                .to_string(),
        );
    }
    Ok(parts)
}

/// `NAME = VALUE` (blanks around `=` allowed, one pair of quotes around the value removed),
/// as cron reads a variable; None for a job line.
fn assignment(line: &str) -> Option<(&str, String)> {
    let (name, value) = line.split_once('=')?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return None;
    }
    let value = value.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(value);
    Some((name, unquoted.to_string()))
}

/// A job line: the schedule (five fields, or an `@` shorthand), then the user with a user
/// column, then the command.
fn job(line: &str, index: usize, with_user: bool) -> Option<Job<'_>> {
    let mut rest = line;
    let schedule = if line.starts_with('@') {
        let (word, after) = split_word(rest)?;
        rest = after;
        (!word.eq_ignore_ascii_case("@reboot")).then(|| word.to_string())
    } else {
        let mut fields = Vec::with_capacity(5);
        for _ in 0..5 {
            let (word, after) = split_word(rest)?;
            fields.push(word);
            rest = after;
        }
        Some(fields.join(" "))
    };
    let user = if with_user {
        let (word, after) = split_word(rest)?;
        rest = after;
        Some(word)
    } else {
        None
    };
    let command = rest.trim_start();
    (!command.trim_end().is_empty()).then_some(Job {
        line: index,
        text: line.trim_end(),
        schedule,
        user,
        command,
    })
}

/// The first blank-separated word and what follows it.
fn split_word(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Some((&text[..end], &text[end..]))
}

/// A system crontab when every job line has a user of this machine as its sixth word (the
/// second after an `@` shorthand) and something after it.
fn detect_user_column(text: &str, host: &Host) -> bool {
    let mut jobs = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || assignment(line).is_some() {
            continue;
        }
        let skip = if line.starts_with('@') { 1 } else { 5 };
        let mut words = line.split_whitespace().skip(skip);
        let (Some(user), Some(_)) = (words.next(), words.next()) else {
            return false;
        };
        if !host.users.iter().any(|u| u == user) {
            return false;
        }
        jobs += 1;
    }
    jobs > 0
}

/// The scheduled task of one job.
fn task(
    origin: &str,
    job: &Job<'_>,
    env: &[(String, String)],
    shell: Option<&str>,
    parts: &mut Parts,
) -> Result<Service, String> {
    let line = job.line;
    let (command, input) = command_and_input(job.command);
    let name = unique(
        super::service_name(&task_name(&command), &mut Vec::new()),
        &parts.services,
    );
    let mut service = Service::new(name.clone());
    service
        .comments
        .push(format!("{origin}:{line}: {}", job.text));
    let script = match input.as_deref() {
        None => command,
        Some(input) => {
            let unterminated = !input.ends_with('\n');
            if unterminated {
                parts.notes.push(format!(
                    "{origin}:{line}: `{name}`: cron ends this input with the backslash after its last `%`, without a newline; a here-document ends every line, so the command reads one more newline at the end"
                ));
            } else {
                parts.notes.push(format!(
                    "{origin}:{line}: `{name}`: what follows the first `%` is the command's standard input, as under cron (each further `%` a new line): a here-document in front of the command feeds it the same bytes"
                ));
            }
            with_input(&command, input)
        }
    };
    let value = emit::text(&script);
    match shell {
        None | Some("/bin/sh") => {
            service.set("command", value);
            service.set("shell", "true".to_string());
        }
        Some(sh) => {
            service.set(
                "command",
                format!("[{}, \"-c\", {value}]", emit::string(sh)),
            );
            parts.notes.push(format!(
                "{origin}:{line}: `{name}` runs with {sh}, as the crontab's SHELL says"
            ));
        }
    }
    match job.schedule.as_deref() {
        Some(schedule) => {
            cron::parse(schedule)
                .map_err(|p| format!("{origin}:{line}: {}: {}", schedule, p.message))?;
            service.set("schedule", emit::string(schedule));
        }
        None => {
            // `@reboot`: once when cron starts; here, once when tend starts.
            service.set("oneshot", "true".to_string());
            // cron runs it once, failed or not.
            service.set("restart", emit::string("never"));
            parts.notes.push(format!(
                "{origin}:{line}: `{name}` is @reboot: a one-shot task run once when tend starts"
            ));
        }
    }
    match job.user {
        Some("root") | None => {}
        Some(user) => service.set("user", emit::string(user)),
    }
    if !env.is_empty() {
        let pairs: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.clone(), emit::string(v)))
            .collect();
        service.set("env", emit::inline_table(&pairs));
    }
    Ok(service)
}

/// What Debian's cron makes of a job's command before it runs `SHELL -c COMMAND`: the
/// command up to the first `%` that is not escaped, with `\%` made `%` and `\\` made `\`
/// (other backslashes stay); and the bytes it writes to the command's standard input, if
/// any: the text after that `%`, with every further `%` a newline, `\%` a `%`, and a newline
/// at the end unless the last character written was one (None when nothing follows the
/// `%`: the command then reads an empty pipe, as it reads tend's /dev/null).
fn command_and_input(line: &str) -> (String, Option<String>) {
    let mut command = String::with_capacity(line.len());
    let mut escaped = false;
    let mut rest = "";
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            if matches!(c, '%' | '\\') {
                command.pop();
            }
            command.push(c);
            continue;
        }
        if c == '%' {
            rest = &line[i + 1..];
            break;
        }
        command.push(c);
        escaped = c == '\\';
    }
    // Blanks at the end mean nothing to the shell, unless a backslash quotes one.
    let trimmed = command.trim_end();
    if !trimmed.ends_with('\\') {
        command.truncate(trimmed.len());
    }
    if rest.is_empty() {
        return (command, None);
    }
    let mut input = String::with_capacity(rest.len() + 1);
    let mut need_newline = false;
    let mut escaped = false;
    for c in rest.chars() {
        let c = match (escaped, c) {
            (true, '%') => '%',
            (true, c) => {
                input.push('\\');
                c
            }
            (false, '%') => '\n',
            (false, c) => c,
        };
        escaped = c == '\\';
        if !escaped {
            input.push(c);
            need_newline = c != '\n';
        }
    }
    if escaped {
        input.push('\\');
    }
    if need_newline {
        input.push('\n');
    }
    (command, Some(input))
}

/// `command` run with `input` as its standard input: `exec` takes it from a here-document
/// for the whole shell, so the command stays as written and runs in the shell cron would
/// run it in. The delimiter is quoted, so nothing in the input is expanded, and chosen to be
/// none of its lines. A here-document ends with a newline, so one is added to an input
/// without it.
fn with_input(command: &str, input: &str) -> String {
    let lines: Vec<&str> = input.lines().collect();
    let delimiter = std::iter::once("CRON_INPUT".to_string())
        .chain((2..).map(|k| format!("CRON_INPUT_{k}")))
        .find(|d| !lines.contains(&d.as_str()))
        .unwrap_or_default();
    let newline = if input.ends_with('\n') { "" } else { "\n" };
    format!("exec <<'{delimiter}'\n{input}{newline}{delimiter}\n{command}")
}

/// A name for the task from its command: the program it runs, past guards (`test -x X ||`,
/// `cd / &&`), wrappers (`nice`, `flock`...), options and assignments; for `run-parts`, the
/// directory it runs (`cron.daily`).
fn task_name(command: &str) -> String {
    let mut segments: Vec<Vec<&str>> = vec![Vec::new()];
    for word in command.split_whitespace() {
        if matches!(word, "&&" | "||" | ";" | "|") {
            segments.push(Vec::new());
            continue;
        }
        let trimmed = word.trim_end_matches(';');
        if let Some(segment) = segments.last_mut()
            && !trimmed.is_empty()
        {
            segment.push(trimmed);
        }
        if trimmed.len() != word.len() {
            segments.push(Vec::new());
        }
    }
    let program = segments.iter().find_map(|segment| {
        let words: Vec<&str> = segment
            .iter()
            .copied()
            .skip_while(|w| matches!(*w, "{" | "(" | "if" | "then" | "!"))
            .collect();
        if matches!(
            words.first(),
            None | Some(&("test" | "[" | "cd" | "true" | ":"))
        ) {
            return None;
        }
        let program = words.iter().copied().find(|w| {
            !WRAPPERS.contains(w)
                && !w.starts_with('-')
                && !w.contains('=')
                && !w.starts_with(['$', '"', '\'', '>', '<'])
                && !w.chars().all(|c| c.is_ascii_digit())
        })?;
        let base = basename(program);
        if base == "run-parts" {
            let dir = words
                .iter()
                .rev()
                .find(|w| !w.starts_with('-') && **w != program);
            return dir
                .map(|d| basename(d))
                .filter(|d| !d.is_empty())
                .or(Some(base));
        }
        Some(base)
    });
    program
        .filter(|p| !p.is_empty())
        .unwrap_or("cron")
        .to_string()
}

fn basename(path: &str) -> &str {
    path.trim_end_matches(['/', '}', ')'])
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// `name`, or `name-2`, `name-3`... if it is taken.
fn unique(name: String, taken: &[Service]) -> String {
    let free = |n: &str| !taken.iter().any(|s| s.name == n);
    if free(&name) {
        return name;
    }
    (2..)
        .map(|k| format!("{name}-{k}"))
        .find(|n| free(n))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's cron, do_command.c, worked by hand: (line, command, input).
    #[test]
    fn percent_signs_and_backslashes_as_debians_cron_reads_them() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("cmd --x", "cmd --x", None),
            (r"date +\%F", "date +%F", None),
            // Debian (not upstream Vixie) also makes `\\` one backslash; others stay.
            (r"echo a\\b", r"echo a\b", None),
            (r"echo a\b \$x", r"echo a\b \$x", None),
            // Nothing after the `%`: no input, an empty pipe.
            ("cat%", "cat", None),
            ("cat %hello", "cat", Some("hello\n")),
            ("cat%a%b", "cat", Some("a\nb\n")),
            // The newline at the end only when the last character is not one.
            ("cat%a%", "cat", Some("a\n")),
            ("cat%%", "cat", Some("\n")),
            (r"cat%100\% sure", "cat", Some("100% sure\n")),
            (r"cat%a\b", "cat", Some("a\\b\n")),
            (r"cat%a\\%b", "cat", Some("a\\%b\n")),
            // A backslash at the very end is written after the newline rule was decided.
            (r"cat%a%\", "cat", Some("a\n\\")),
            (r"cat%a\", "cat", Some("a\\\n")),
            // Blanks: at the end of the input they are input; before the `%` nothing.
            ("cat  %  a b  ", "cat", Some("  a b  \n")),
            // A backslash before the `%` quotes the blank after it, so the blank stays.
            (r"echo a\ %in", r"echo a\ ", Some("in\n")),
            (r"printf x \\%y", r"printf x \", Some("y\n")),
            (
                "cat%it's $HOME \"q\" `x` 'y'",
                "cat",
                Some("it's $HOME \"q\" `x` 'y'\n"),
            ),
        ];
        for (line, command, input) in cases {
            assert_eq!(
                command_and_input(line),
                (command.to_string(), input.map(str::to_string)),
                "{line}"
            );
        }
    }

    #[test]
    fn the_here_document_ends_on_a_line_the_input_does_not_have() {
        assert_eq!(
            with_input("cat", "a\n"),
            "exec <<'CRON_INPUT'\na\nCRON_INPUT\ncat"
        );
        assert_eq!(
            with_input("cat", "CRON_INPUT\nCRON_INPUT_2\n"),
            "exec <<'CRON_INPUT_3'\nCRON_INPUT\nCRON_INPUT_2\nCRON_INPUT_3\ncat"
        );
        // Without a newline at the end (cron's trailing backslash), one is added.
        assert_eq!(
            with_input("cat", "a\n\\"),
            "exec <<'CRON_INPUT'\na\n\\\nCRON_INPUT\ncat"
        );
    }
}
