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
        let job = job(trimmed, line, with_user)
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
    let command = rest.trim();
    (!command.is_empty()).then_some(Job {
        line: index,
        text: line,
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
    let name = unique(
        super::service_name(&task_name(job.command), &mut Vec::new()),
        &parts.services,
    );
    let mut service = Service::new(name.clone());
    service
        .comments
        .push(format!("{origin}:{line}: {}", job.text));
    let (command, stdin) = command_and_input(job.command);
    if let Some(input) = stdin {
        parts.notes.push(format!(
            "{origin}:{line}: `{name}`: cron turns `%` into a newline and feeds what follows the first one ({input:?}) to the command's standard input; tend gives tasks no input, so the command ends before it: pipe the input in yourself (printf ... | command)"
        ));
    }
    match shell {
        None | Some("/bin/sh") => {
            service.set("command", emit::string(&command));
            service.set("shell", "true".to_string());
        }
        Some(sh) => {
            service.set("command", emit::strings(&[sh, "-c", command.as_str()]));
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

/// The command up to the first `%` that is not escaped (with `\%` made `%`), and the text
/// cron would feed to it as input, if any.
fn command_and_input(command: &str) -> (String, Option<String>) {
    let mut out = String::with_capacity(command.len());
    let mut chars = command.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if chars.peek().map(|&(_, n)| n) == Some('%') => {
                out.push('%');
                chars.next();
            }
            '%' => {
                let input = command[i + 1..].replace('%', "\n");
                return (out.trim_end().to_string(), Some(input));
            }
            c => out.push(c),
        }
    }
    (out, None)
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
        if let Some(segment) = segments.last_mut() {
            if !trimmed.is_empty() {
                segment.push(trimmed);
            }
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
