//! supervisord.conf: every `[program:x]` becomes a service (`numprocs` of them when it says
//! so), with the settings that have a tend equivalent translated and the others named in
//! notes.

use super::Parts;
use super::emit::{self, Service};
use std::collections::BTreeMap;
use std::path::Path;

struct Section {
    name: String,
    line: usize,
    /// Keys (lower-case) in file order, with their values and lines.
    entries: Vec<(String, String, usize)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&(String, String, usize)> {
        self.entries.iter().rev().find(|(k, _, _)| k == key)
    }
}

/// The INI dialect supervisord reads (Python's configparser): `[section]`, `key = value` or
/// `key: value`, `;` and `#` comment lines, ` ;` inline comments, indented continuation lines.
fn parse_ini(origin: &str, text: &str) -> Result<Vec<Section>, String> {
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        let continuation = raw.starts_with([' ', '\t']);
        if continuation {
            if let Some((_, value, _)) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                value.push('\n');
                value.push_str(strip_comment(trimmed));
                continue;
            }
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let Some(name) = header.strip_suffix(']') else {
                return Err(format!(
                    "{origin}:{line}: a section header without its closing ']'"
                ));
            };
            sections.push(Section {
                name: name.trim().to_string(),
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let Some(at) = trimmed.find(['=', ':']) else {
            return Err(format!(
                "{origin}:{line}: expected `key = value`, found {trimmed:?}"
            ));
        };
        let Some(section) = sections.last_mut() else {
            return Err(format!("{origin}:{line}: a setting before any [section]"));
        };
        let key = trimmed[..at].trim().to_ascii_lowercase();
        let value = strip_comment(trimmed[at + 1..].trim()).to_string();
        section.entries.push((key, value, line));
    }
    Ok(sections)
}

/// supervisord's inline comments: a `;` after whitespace.
fn strip_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if bytes[i] == b';' && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

/// The settings of a `[program:x]` that are translated; any other key is named in a note.
const TRANSLATED: &[&str] = &[
    "command",
    "process_name",
    "numprocs",
    "numprocs_start",
    "priority",
    "autostart",
    "autorestart",
    "startsecs",
    "startretries",
    "exitcodes",
    "stopsignal",
    "stopwaitsecs",
    "stopasgroup",
    "killasgroup",
    "user",
    "directory",
    "umask",
    "environment",
    "redirect_stderr",
    "stdout_logfile",
    "stdout_logfile_maxbytes",
    "stdout_logfile_backups",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
];

struct Program {
    service: Service,
    priority: i64,
}

pub fn services(origin: &str, text: &str, path: &Path) -> Result<Parts, String> {
    let sections = parse_ini(origin, text)?;
    let here = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
        .unwrap_or_else(|| ".".to_string());
    let mut notes = Vec::new();
    let mut programs: Vec<Program> = Vec::new();
    for section in &sections {
        let (kind, name) = section.name.split_once(':').unwrap_or((&section.name, ""));
        match kind {
            "program" => {
                for program in program(origin, section, name.trim(), &here, &mut notes)? {
                    if programs.iter().any(|p| p.service.name == program.service.name) {
                        return Err(format!(
                            "{origin}:{}: a second program named `{}`",
                            section.line, program.service.name
                        ));
                    }
                    programs.push(program);
                }
            }
            "supervisord" | "supervisorctl" | "unix_http_server" | "inet_http_server"
            | "rpcinterface" => {}
            "group" => notes.push(format!(
                "[{}] is not imported: tend has no groups; name the services in one command (`tend restart a b`)",
                section.name
            )),
            "include" => notes.push(format!(
                "{origin}:{}: [include] is not followed; import each included file and put the services in one file",
                section.line
            )),
            _ => notes.push(format!(
                "{origin}:{}: [{}] is not imported: tend has no equivalent",
                section.line, section.name
            )),
        }
    }
    order_by_priority(&mut programs, &mut notes);
    if programs
        .iter()
        .any(|p| !p.service.keys.iter().any(|(k, _)| *k == "stop-timeout"))
    {
        notes.push(
            "supervisord waits 10 s (stopwaitsecs) before SIGKILL by default; tend waits \
             `stop-timeout`, 5 s by default, so that a whole shutdown fits in Docker's 10 s"
                .to_string(),
        );
    }
    Ok(Parts {
        services: programs.into_iter().map(|p| p.service).collect(),
        notes,
        ..Parts::default()
    })
}

fn program(
    origin: &str,
    section: &Section,
    program_name: &str,
    here: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Program>, String> {
    let at = |line: usize| format!("{origin}:{line}");
    let Some((_, command, _)) = section.get("command") else {
        return Err(format!(
            "{}: [{}] has no command",
            at(section.line),
            section.name
        ));
    };
    let number = |key: &str, default: i64| -> Result<i64, String> {
        match section.get(key) {
            None => Ok(default),
            Some((_, v, line)) => v
                .parse()
                .map_err(|_| format!("{}: {key} must be a number, found {v:?}", at(*line))),
        }
    };
    let numprocs = number("numprocs", 1)?;
    let numprocs_start = number("numprocs_start", 0)?;
    let priority = number("priority", 999)?;
    if numprocs < 1 {
        return Err(format!("{}: numprocs must be at least 1", at(section.line)));
    }
    for (key, _, line) in &section.entries {
        if !TRANSLATED.contains(&key.as_str()) {
            notes.push(format!(
                "{}: `{key}` of [{}] is not carried over",
                at(*line),
                section.name
            ));
        }
    }
    let mut out = Vec::new();
    for n in numprocs_start..numprocs_start + numprocs {
        let vars = Vars {
            program_name,
            process_num: n,
            here,
        };
        let default_name = if numprocs > 1 {
            "%(program_name)s_%(process_num)02d"
        } else {
            "%(program_name)s"
        };
        let raw_name = match section.get("process_name") {
            Some((_, v, _)) => vars.expand(v, notes),
            None => vars.expand(default_name, notes),
        };
        let name = super::service_name(&raw_name, notes);
        let mut service = Service::new(name.clone());
        let (command, uses_env) = vars.expand_command(command);
        service.set("command", emit::string(&command));
        if uses_env {
            // %(ENV_X)s was the environment at supervisord's start; a shell reads it at the
            // service's start, which is the nearest tend has.
            service.set("shell", "true".to_string());
        }
        if let Some((_, v, _)) = section.get("directory") {
            service.set("workdir", emit::string(&vars.expand(v, notes)));
        }
        if let Some((_, v, _)) = section.get("user") {
            service.set("user", emit::string(v));
        }
        if let Some((_, v, line)) = section.get("umask") {
            let mask = u32::from_str_radix(v, 8)
                .map_err(|_| format!("{}: umask must be octal, found {v:?}", at(*line)))?;
            service.set("umask", emit::string(&format!("{mask:04o}")));
        }
        if let Some((_, v, line)) = section.get("environment") {
            let pairs = environment(v).map_err(|m| format!("{}: environment: {m}", at(*line)))?;
            let pairs: Vec<(String, String)> = pairs
                .into_iter()
                .map(|(k, v)| (k, emit::string(&vars.expand(&v, notes))))
                .collect();
            service.set("env", emit::inline_table(&pairs));
        }
        if let Some((_, v, line)) = section.get("autorestart") {
            let policy = match v.to_ascii_lowercase().as_str() {
                "true" => "always",
                "false" => "never",
                "unexpected" => "on-failure",
                _ => {
                    return Err(format!(
                        "{}: autorestart must be true, false or unexpected, found {v:?}",
                        at(*line)
                    ));
                }
            };
            service.set("restart", emit::string(policy));
        } else {
            // supervisord's default restarts only on an exit code not in exitcodes.
            service.set("restart", emit::string("on-failure"));
        }
        if let Some((_, v, line)) = section.get("exitcodes") {
            let codes: Result<Vec<u8>, _> = v.split(',').map(|c| c.trim().parse()).collect();
            let codes = codes.map_err(|_| {
                format!(
                    "{}: exitcodes must be numbers 0-255, found {v:?}",
                    at(*line)
                )
            })?;
            let codes: Vec<String> = codes.iter().map(u8::to_string).collect();
            service.set("success-codes", format!("[{}]", codes.join(", ")));
        }
        if let Some((_, v, line)) = section.get("startsecs") {
            let secs: u64 = v
                .parse()
                .map_err(|_| format!("{}: startsecs must be a number, found {v:?}", at(*line)))?;
            service.set("start-secs", emit::string(&format!("{secs}s")));
        }
        // supervisord gives up after 3 failed starts unless told otherwise (tend: 10).
        let retries = match section.get("startretries") {
            Some((_, v, line)) => v.parse::<u32>().map_err(|_| {
                format!("{}: startretries must be a number, found {v:?}", at(*line))
            })?,
            None => 3,
        };
        service.set("max-restarts", retries.to_string());
        if let Some((_, v, _)) = section.get("stopsignal") {
            service.set("stop-signal", emit::string(v.trim_start_matches("SIG")));
        }
        if let Some((_, v, line)) = section.get("stopwaitsecs") {
            let secs: u64 = v.parse().map_err(|_| {
                format!("{}: stopwaitsecs must be a number, found {v:?}", at(*line))
            })?;
            service.set("stop-timeout", emit::string(&format!("{secs}s")));
        }
        if let Some(logs) = log_file(section, &vars, notes, &name, numprocs > 1, &at)? {
            service.set("logs", logs);
        }
        if section
            .get("autostart")
            .is_some_and(|(_, v, _)| v.eq_ignore_ascii_case("false"))
        {
            notes.push(format!(
                "`{name}` has autostart=false; tend starts every service: leave it out, or stop it with `tend stop {name}`"
            ));
        }
        out.push(Program { service, priority });
    }
    Ok(out)
}

/// `stdout_logfile` (and `stderr_logfile`) as `logs = { file, max-size, keep }`.
fn log_file(
    section: &Section,
    vars: &Vars<'_>,
    notes: &mut Vec<String>,
    name: &str,
    several: bool,
    at: &dyn Fn(usize) -> String,
) -> Result<Option<String>, String> {
    let to_stdout = |v: &str| {
        matches!(
            v,
            "/dev/stdout"
                | "/dev/fd/1"
                | "/proc/self/fd/1"
                | "/dev/stderr"
                | "/dev/fd/2"
                | "/proc/self/fd/2"
        )
    };
    let file = match section.get("stdout_logfile").map(|(_, v, _)| v.as_str()) {
        None | Some("AUTO") => {
            notes.push(format!(
                "`{name}`: supervisord kept its output in an automatic log file; under tend it goes to tend's stdout (add `logs = {{ file = ... }}` to keep a file)"
            ));
            return Ok(None);
        }
        Some("NONE") => {
            notes.push(format!(
                "`{name}`: stdout_logfile=NONE discarded its output; tend writes it to its own stdout"
            ));
            return Ok(None);
        }
        Some(v) if to_stdout(v) => return Ok(None),
        Some(v) if several && !v.contains("%(process_num)") => {
            // One file per process: tend rotates each service's file on its own.
            let path = std::path::Path::new(v);
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            let ext = path
                .extension()
                .map(|e| format!(".{}", e.to_string_lossy()));
            let file = format!(
                "{}-{:02}{}",
                stem.unwrap_or_default(),
                vars.process_num,
                ext.unwrap_or_default()
            );
            let file = path.with_file_name(file).display().to_string();
            notes.push(format!(
                "`{name}`: its processes shared {v}; under tend each has a file of its own: {file}"
            ));
            vars.expand(&file, notes)
        }
        Some(v) => vars.expand(v, notes),
    };
    let redirected = section
        .get("redirect_stderr")
        .is_some_and(|(_, v, _)| v.eq_ignore_ascii_case("true"));
    if !redirected {
        notes.push(format!(
            "`{name}`: logs.file gets stdout and stderr together (supervisord kept stderr apart unless redirect_stderr=true)"
        ));
    }
    let max_size = match section.get("stdout_logfile_maxbytes") {
        Some((_, v, line)) => size(v).map_err(|m| format!("{}: {m}", at(*line)))?,
        None => "50MiB".to_string(),
    };
    let keep = match section.get("stdout_logfile_backups") {
        Some((_, v, line)) => v.parse::<u32>().map_err(|_| {
            format!(
                "{}: stdout_logfile_backups must be a number, found {v:?}",
                at(*line)
            )
        })?,
        None => 10,
    };
    Ok(Some(emit::inline_table(&[
        ("file".to_string(), emit::string(&file)),
        ("max-size".to_string(), emit::string(&max_size)),
        ("keep".to_string(), keep.to_string()),
    ])))
}

/// supervisord's byte sizes: `50MB` is 50 * 1024 * 1024 there.
fn size(value: &str) -> Result<String, String> {
    let v = value.trim();
    let (number, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("not a size: {value:?}"))?;
    let unit = match unit.trim().to_ascii_uppercase().as_str() {
        "" => "B",
        "KB" => "KiB",
        "MB" => "MiB",
        "GB" => "GiB",
        _ => return Err(format!("not a size: {value:?}")),
    };
    Ok(format!("{n}{unit}"))
}

/// `KEY="value",KEY2=value2` (values may be quoted; commas inside quotes belong to them).
fn environment(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(format!("expected KEY=value in {text:?}"));
        }
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, ',') => break,
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                _ => value.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return Err(format!("an unclosed quote in {text:?}"));
        }
        pairs.push((key, value.trim().to_string()));
    }
}

/// supervisord's `%(name)s` expansions for one process.
struct Vars<'a> {
    program_name: &'a str,
    process_num: i64,
    here: &'a str,
}

impl Vars<'_> {
    fn expand(&self, text: &str, notes: &mut Vec<String>) -> String {
        let (out, env) = self.expand_with(text, |name| format!("%({name})s"));
        for name in env {
            notes.push(format!(
                "%(ENV_{name})s in {text:?} is left as it is: set it in `env`, or use the value"
            ));
        }
        out
    }

    /// In a command, `%(ENV_X)s` becomes `${X}` for the shell to fill in; returns whether
    /// there was one.
    fn expand_command(&self, text: &str) -> (String, bool) {
        let (out, env) = self.expand_with(text, |name| format!("${{{name}}}"));
        (out, !env.is_empty())
    }

    fn expand_with(&self, text: &str, env_as: impl Fn(&str) -> String) -> (String, Vec<String>) {
        let mut out = String::new();
        let mut env = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
                continue;
            }
            let Some(close) = rest.find(')').filter(|_| rest.starts_with("%(")) else {
                out.push('%');
                rest = &rest[1..];
                continue;
            };
            let name = &rest[2..close];
            let spec_end = rest[close + 1..]
                .find(|c: char| c.is_ascii_alphabetic())
                .map(|i| close + 1 + i);
            let Some(spec_end) = spec_end else {
                out.push('%');
                rest = &rest[1..];
                continue;
            };
            let width = &rest[close + 1..spec_end];
            let value = match name {
                "program_name" | "group_name" => Some(self.program_name.to_string()),
                "process_num" => Some(match width.strip_prefix('0') {
                    Some(w) => format!("{:0w$}", self.process_num, w = w.parse().unwrap_or(0)),
                    None => self.process_num.to_string(),
                }),
                "here" => Some(self.here.to_string()),
                _ => None,
            };
            match (value, name.strip_prefix("ENV_")) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(var)) => {
                    out.push_str(&env_as(var));
                    env.push(var.to_string());
                }
                (None, None) => out.push_str(&rest[..=spec_end]),
            }
            rest = &rest[spec_end + 1..];
        }
        out.push_str(rest);
        (out, env)
    }
}

/// supervisord starts programs by ascending `priority` (and stops them in reverse); tend
/// does that through `depends-on`: each program waits for the start of those one priority
/// level below it.
fn order_by_priority(programs: &mut [Program], notes: &mut Vec<String>) {
    let levels: std::collections::BTreeSet<i64> = programs.iter().map(|p| p.priority).collect();
    if levels.len() < 2 {
        return;
    }
    let mut by_level: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for p in programs.iter() {
        by_level
            .entry(p.priority)
            .or_default()
            .push(p.service.name.clone());
    }
    for p in programs.iter_mut() {
        if let Some((_, below)) = by_level.range(..p.priority).next_back() {
            p.service.set("depends-on", emit::strings(below));
        }
    }
    notes.push(
        "priorities became `depends-on` (each program starts once those of the next lower \
         priority have started, and stops before them)"
            .to_string(),
    );
}
