//! supervisord.conf: every `[program:x]` becomes a service (`numprocs` of them when it says
//! so), with the settings that have a tend equivalent translated and the others named in
//! notes. The file is read as supervisord 4 reads it: configparser's rules (`ini`), the
//! `[include]`d files (`include`), `%(name)s` expansions (`expand`), and the command split
//! by shlex (`command`).

mod command;
mod expand;
pub(super) mod include;
mod ini;

use super::emit::{self, Service};
use super::{Host, Parts};
use expand::{Names, Used};
use ini::{Entry, Ini, Section};
use std::collections::BTreeMap;
use std::path::Path;

/// Where the text came from, and what of the machine the import may read.
pub struct Source<'a> {
    pub path: &'a Path,
    pub host: &'a Host,
    /// Whether `[include] files` are read (not when fuzzing text without a file system).
    pub follow_includes: bool,
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
    "stdout_syslog",
    "stderr_logfile",
    "stderr_logfile_maxbytes",
    "stderr_logfile_backups",
    "stderr_syslog",
];

/// tend's defaults, which the shutdown budget is reckoned with: a program written without a
/// `stop-timeout` shares what the budget leaves along its chain, and takes at least 1 s of it.
const TEND_LEAST_STOP_SHARE: u64 = 1;
const TEND_SHUTDOWN_TIMEOUT: u64 = 9;

struct Program {
    service: Service,
    /// The names of the services it makes: the service's, or those of its instances.
    names: Vec<String>,
    priority: i64,
    /// Seconds, as written, or the least share of the budget tend gives one that sets none.
    stop_timeout: u64,
}

/// The notes, with what has been said once already.
#[derive(Default)]
struct Notes {
    list: Vec<String>,
}

impl Notes {
    fn push(&mut self, note: String) {
        // Each process of a `numprocs` program would say the same again.
        if !self.list.contains(&note) {
            self.list.push(note);
        }
    }

    /// Says what an expansion took from the machine the import runs on.
    fn used(&mut self, entry: &Entry, used: Used, host: &Host) {
        if !used.env.is_empty() {
            let vars: Vec<String> = used.env.iter().map(|v| format!("%(ENV_{v})s")).collect();
            self.push(format!(
                "{}: {} in `{}` was read from tend import's environment now, where supervisord reads its own environment when it starts: import where the services run (at the container's start), or check the value",
                entry.at,
                vars.join(", "),
                entry.key
            ));
        }
        if used.host_node_name {
            self.push(format!(
                "%(host_node_name)s is this machine's host name when importing, {}; supervisord reads it when it starts (in a container, the container's)",
                host.hostname.as_deref().unwrap_or("unknown")
            ));
        }
    }
}

/// The value of `key`, expanded: `None` when it is not set.
fn get<'s>(
    section: &'s Section,
    names: &Names<'_>,
    key: &str,
    notes: &mut Notes,
) -> Result<Option<(String, &'s Entry)>, String> {
    let Some(entry) = section.get(key) else {
        return Ok(None);
    };
    let mut used = Used::default();
    let value = names
        .expand(&entry.value, &mut used)
        .map_err(|m| format!("{}: {key}: {m}", entry.at))?;
    notes.used(entry, used, names.host);
    Ok(Some((value, entry)))
}

/// A whole number, as Python's `int()` reads it.
fn number(
    section: &Section,
    names: &Names<'_>,
    key: &str,
    default: i64,
    notes: &mut Notes,
) -> Result<i64, String> {
    match get(section, names, key, notes)? {
        None => Ok(default),
        Some((v, entry)) => v.trim().parse().map_err(|_| {
            format!(
                "{}: {key} must be a whole number, found {:?}",
                entry.at, entry.value
            )
        }),
    }
}

/// supervisord's booleans: true/yes/on/1 and false/no/off/0, in any case.
fn boolean(
    section: &Section,
    names: &Names<'_>,
    key: &str,
    default: bool,
    notes: &mut Notes,
) -> Result<bool, String> {
    let Some((v, entry)) = get(section, names, key, notes)? else {
        return Ok(default);
    };
    truth(&v).ok_or_else(|| {
        format!(
            "{}: {key} must be true or false (or yes/no, on/off, 1/0), found {:?}",
            entry.at, entry.value
        )
    })
}

fn truth(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

pub fn services(origin: &str, text: &str, source: &Source<'_>) -> Result<Parts, String> {
    let here = std::path::absolute(source.path)
        .ok()
        .and_then(|p| p.parent().map(|d| d.display().to_string()))
        .unwrap_or_else(|| ".".to_string());
    let base = Names {
        here: &here,
        host: source.host,
        program_name: None,
        group_name: None,
        process_num: None,
        numprocs: None,
        instance: false,
    };
    let mut notes = Notes::default();
    let mut ini = Ini::default();
    ini.read(origin, text)?;
    if let Some(include) = ini.section("include").cloned() {
        if source.follow_includes {
            includes(&mut ini, &include, &base, &mut notes)?;
        } else {
            notes.push(format!(
                "{}: [include] is not followed here; import the file itself",
                include.at
            ));
        }
    }
    let groups = groups(&ini);
    let defaults = ini.section("DEFAULT").map(|s| s.entries.clone());
    let mut programs: Vec<Program> = Vec::new();
    let mut listeners = Vec::new();
    for section in &ini.sections {
        let (kind, name) = section.name.split_once(':').unwrap_or((&section.name, ""));
        match kind {
            "program" => {
                let name = name.trim();
                let section = with_defaults(section, defaults.as_deref());
                let group = groups.get(name).map_or(name, String::as_str);
                for program in program(&section, name, group, &base, &mut notes)? {
                    if let Some(twice) = program
                        .names
                        .iter()
                        .find(|n| programs.iter().any(|p| p.names.contains(n)))
                    {
                        return Err(format!(
                            "{}: a second program named `{twice}`",
                            section.at
                        ));
                    }
                    programs.push(program);
                }
            }
            "supervisord" | "supervisorctl" | "unix_http_server" | "inet_http_server"
            | "rpcinterface" | "include" | "DEFAULT" => {}
            "group" => notes.push(format!(
                "[{}] is not imported: tend has no groups; name the services in one command (`tend restart a b`)",
                section.name
            )),
            "eventlistener" if stops_on_state_change(section).is_some() => listeners.push(section),
            _ => notes.push(format!(
                "{}: [{}] is not imported: tend has no equivalent",
                section.at, section.name
            )),
        }
    }
    for listener in listeners {
        make_critical(listener, &mut programs, &mut notes);
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
    let tend = shutdown_budget(&programs, &mut notes);
    Ok(Parts {
        services: programs.into_iter().map(|p| p.service).collect(),
        tend,
        notes: notes.list,
    })
}

/// Reads the files `[include] files` names, as supervisord does: the patterns are split on
/// blanks and taken from the main file's directory, each pattern's files read in name
/// order into the same configuration, with `%(here)s` in each meaning its own directory.
/// Included files' own `[include]` sections are not followed (supervisord reads only the
/// main file's).
fn includes(
    ini: &mut Ini,
    include: &Section,
    base: &Names<'_>,
    notes: &mut Notes,
) -> Result<(), String> {
    let Some((files, entry)) = get(include, base, "files", notes)? else {
        return Err(format!(
            "{}: [include] without `files` (supervisord refuses it)",
            include.at
        ));
    };
    for pattern in files.split_whitespace() {
        let found = include::matches(Path::new(base.here), pattern);
        if found.is_empty() {
            notes.push(format!(
                "{}: no file matches {pattern:?} (supervisord goes on without it too)",
                entry.at
            ));
        }
        for file in found {
            let shown = file.display().to_string();
            let Ok(text) = std::fs::read_to_string(&file) else {
                // configparser skips a file it cannot read.
                notes.push(format!(
                    "{shown}: cannot be read, so it is skipped (as supervisord skips it)"
                ));
                continue;
            };
            let dir = file
                .parent()
                .unwrap_or(Path::new("/"))
                .display()
                .to_string();
            let seen = ini.read(&shown, &text.replace("%(here)s", &dir))?;
            if seen.iter().any(|s| s == "include") {
                notes.push(format!(
                    "{shown}: its [include] is not followed (supervisord follows only the main file's)"
                ));
            }
        }
    }
    Ok(())
}

/// Each program a `[group:x] programs=a,b` names, with its group: that is the program's
/// `%(group_name)s` (else its own name).
fn groups(ini: &Ini) -> BTreeMap<String, String> {
    let mut groups = BTreeMap::new();
    for section in &ini.sections {
        let Some(group) = section.name.strip_prefix("group:") else {
            continue;
        };
        if let Some(programs) = section.get("programs") {
            for program in programs.value.split(',') {
                groups.insert(program.trim().to_string(), group.trim().to_string());
            }
        }
    }
    groups
}

/// configparser's `[DEFAULT]`: its keys count in every section that does not set them.
fn with_defaults(section: &Section, defaults: Option<&[Entry]>) -> Section {
    let mut section = section.clone();
    for entry in defaults.unwrap_or_default() {
        if section.get(&entry.key).is_none() {
            section.entries.push(entry.clone());
        }
    }
    section
}

fn program(
    section: &Section,
    program_name: &str,
    group_name: &str,
    base: &Names<'_>,
    notes: &mut Notes,
) -> Result<Vec<Program>, String> {
    let Some(command) = section.get("command") else {
        return Err(format!("{}: [{}] has no command", section.at, section.name));
    };
    // What supervisord reads once for the whole program, before there are process numbers.
    let names = Names {
        program_name: Some(program_name),
        group_name: Some(group_name),
        ..*base
    };
    let priority = number(section, &names, "priority", 999, notes)?;
    let autostart = boolean(section, &names, "autostart", true, notes)?;
    let restart = match get(section, &names, "autorestart", notes)? {
        // supervisord's default restarts only on an exit code not in exitcodes.
        None => "on-failure",
        Some((v, entry)) => restart_policy(&v).ok_or_else(|| {
            format!(
                "{}: autorestart must be true, false or unexpected, found {:?}",
                entry.at, entry.value
            )
        })?,
    };
    let start_secs = seconds(section, &names, "startsecs", notes)?;
    let retries = number(section, &names, "startretries", 3, notes)?;
    let retries = u32::try_from(retries)
        .map_err(|_| format!("{}: startretries must be 0 or more", section.at))?;
    let stop_signal = get(section, &names, "stopsignal", notes)?;
    let stop_timeout = seconds(section, &names, "stopwaitsecs", notes)?;
    // Nothing to write for these (tend always signals the whole group), but supervisord
    // refuses a file where they are not booleans.
    boolean(section, &names, "stopasgroup", false, notes)?;
    boolean(section, &names, "killasgroup", false, notes)?;
    let success_codes = exit_codes(section, &names, notes)?;
    let redirect_stderr = boolean(section, &names, "redirect_stderr", false, notes)?;
    let numprocs = number(section, &names, "numprocs", 1, notes)?;
    let numprocs_start = number(section, &names, "numprocs_start", 0, notes)?;
    if numprocs < 1 {
        return Err(format!("{}: numprocs must be at least 1", section.at));
    }
    let user = get(section, &names, "user", notes)?;
    let umask = match get(section, &names, "umask", notes)? {
        None => None,
        Some((v, entry)) => Some(
            u32::from_str_radix(v.trim().trim_start_matches("0o"), 8)
                .map_err(|_| format!("{}: umask must be octal, found {v:?}", entry.at))?,
        ),
    };
    for entry in &section.entries {
        if !TRANSLATED.contains(&entry.key.as_str()) {
            notes.push(format!(
                "{}: `{}` of [{}] is not carried over",
                entry.at, entry.key, section.name
            ));
        }
    }
    let common = Common {
        program_name,
        command,
        priority,
        autostart,
        restart,
        start_secs,
        retries,
        stop_signal,
        stop_timeout,
        success_codes,
        redirect_stderr,
        user,
        umask,
        numprocs,
    };
    if numprocs > 1 {
        let why = match pool(section, &names, &common, numprocs_start, notes) {
            Ok(program) => return Ok(vec![program]),
            Err(why) => why,
        };
        notes.push(format!(
            "`{program_name}`: numprocs={numprocs} is written as {numprocs} services, one per process, not as `instances = {numprocs}`: {why}"
        ));
    }
    let mut out = Vec::new();
    for n in numprocs_start..numprocs_start + numprocs {
        let names = Names {
            process_num: Some(n),
            numprocs: Some(numprocs),
            ..names
        };
        out.push(process(section, &names, &common, notes)?);
    }
    Ok(out)
}

/// What the processes of a program have in common: read once, before there are process
/// numbers.
struct Common<'s> {
    program_name: &'s str,
    command: &'s Entry,
    priority: i64,
    autostart: bool,
    restart: &'static str,
    start_secs: Option<u64>,
    retries: u32,
    stop_signal: Option<(String, &'s Entry)>,
    stop_timeout: Option<u64>,
    success_codes: Option<String>,
    redirect_stderr: bool,
    user: Option<(String, &'s Entry)>,
    umask: Option<u32>,
    numprocs: i64,
}

/// A program with `numprocs` as one service with `instances`, `%(process_num)` becoming
/// `{instance}`: what `supervisorctl restart worker:*` does is then `tend restart worker`.
/// Not when tend cannot say the same (an offset, a padding with spaces, the number where
/// tend has no placeholder): the error says why, and the caller writes a service per
/// process as supervisord names them.
fn pool(
    section: &Section,
    names: &Names<'_>,
    common: &Common<'_>,
    numprocs_start: i64,
    notes: &mut Notes,
) -> Result<Program, String> {
    let numprocs = common.numprocs;
    if numprocs_start != 0 {
        return Err(format!(
            "numprocs_start={numprocs_start} numbers them from {numprocs_start}, and tend's {{instance}} counts from 0 with no offset"
        ));
    }
    let most = *crate::config::instances::INSTANCES.end();
    if numprocs > most {
        return Err(format!("tend's `instances` goes up to {most}"));
    }
    let said = notes.list.len();
    let pooled = Names {
        process_num: None,
        numprocs: Some(numprocs),
        instance: true,
        ..*names
    };
    let mut program = process(section, &pooled, common, notes).inspect_err(|_| {
        // What this attempt said is said again, by process, by the caller.
        notes.list.truncate(said);
    })?;
    let base = program.service.name.clone();
    program.names = (0..numprocs).map(|i| format!("{base}-{i}")).collect();
    // supervisord's names for the first and the last process, as tend would write them.
    let theirs = |n: i64| -> Result<String, String> {
        let names = Names {
            process_num: Some(n),
            numprocs: Some(numprocs),
            ..*names
        };
        let raw = match get(section, &names, "process_name", &mut Notes::default())? {
            Some((v, _)) => v,
            None => names.expand("%(program_name)s_%(process_num)02d", &mut Used::default())?,
        };
        Ok(super::service_name(&raw, &mut Vec::new()))
    };
    let (first, last) = (theirs(0)?, theirs(numprocs - 1)?);
    let ours = (&program.names[0], &program.names[program.names.len() - 1]);
    let renamed = if (&first, &last) == ours {
        String::new()
    } else {
        format!(" (supervisord's {first} to {last})")
    };
    notes.push(format!(
        "`{base}`: numprocs={numprocs} became `instances = {numprocs}`: tend runs {} to {}{renamed}, with %(process_num) as {{instance}}; `tend restart {base}` acts on them all, as `supervisorctl restart {}:*` does, and `tend restart {}` on one",
        ours.0, ours.1, common.program_name, ours.1
    ));
    Ok(program)
}

/// One service: a process of the program, or all of them with `instances` when `names`
/// turns `%(process_num)` into `{instance}`.
fn process(
    section: &Section,
    names: &Names<'_>,
    common: &Common<'_>,
    notes: &mut Notes,
) -> Result<Program, String> {
    let program_name = common.program_name;
    let numprocs = common.numprocs;
    let raw_name = match section.get("process_name") {
        _ if names.instance => Some(program_name.to_string()),
        Some(_) => get(section, names, "process_name", notes)?.map(|(v, _)| v),
        None if numprocs > 1 => {
            Some(names.expand("%(program_name)s_%(process_num)02d", &mut Used::default())?)
        }
        None => Some(program_name.to_string()),
    };
    let name = super::service_name(raw_name.as_deref().unwrap_or(program_name), &mut Vec::new());
    if raw_name.as_deref() != Some(name.as_str()) {
        notes.push(format!(
            "`{}` is named `{name}`: tend's names use letters, digits, '.', '_' and '-'",
            raw_name.unwrap_or_default()
        ));
    }
    let mut service = Service::new(name.clone());
    for (key, value) in command_keys(&name, common.command, names, notes)? {
        service.set(key, value);
    }
    if names.instance {
        service.set("instances", numprocs.to_string());
    }
    if let Some((v, _)) = get(section, names, "directory", notes)? {
        service.set("workdir", emit::string(&v));
    }
    if let Some((v, _)) = &common.user {
        service.set("user", emit::string(v));
    }
    if let Some(mask) = common.umask {
        service.set("umask", emit::string(&format!("{mask:04o}")));
    }
    if let Some((v, entry)) = get(section, names, "environment", notes)? {
        let pairs = environment(&v).map_err(|m| format!("{}: environment: {m}", entry.at))?;
        if let Some((key, _)) = pairs.iter().find(|(k, _)| k.contains('{')) {
            return Err(format!(
                "{}: environment: the variable `{key}` is named with %(process_num), and tend has {{instance}} in the values only",
                entry.at
            ));
        }
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k, emit::string(&v)))
            .collect();
        service.set("env", emit::inline_table(&pairs));
    }
    service.set("restart", emit::string(common.restart));
    if let Some(codes) = &common.success_codes {
        service.set("success-codes", codes.clone());
    }
    if let Some(secs) = common.start_secs {
        service.set("start-secs", emit::string(&format!("{secs}s")));
    }
    start_retries(&mut service, common.restart, common.retries, notes);
    if let Some((v, _)) = &common.stop_signal {
        let v = v.trim();
        let v = v.strip_prefix("SIG").unwrap_or(v);
        service.set("stop-signal", emit::string(v));
    }
    if let Some(secs) = common.stop_timeout {
        service.set("stop-timeout", emit::string(&format!("{secs}s")));
    }
    let several = numprocs > 1;
    let redirect_stderr = common.redirect_stderr;
    if let Some(logs) = log_file(section, names, &name, several, redirect_stderr, notes)? {
        service.set("logs", logs);
    }
    if !common.autostart {
        service.set("autostart", "false".to_string());
    }
    Ok(Program {
        names: vec![name],
        service,
        priority: common.priority,
        stop_timeout: common.stop_timeout.unwrap_or(TEND_LEAST_STOP_SHARE),
    })
}

/// `autorestart`: true, false or unexpected, the booleans in any of their spellings.
fn restart_policy(value: &str) -> Option<&'static str> {
    if value.trim().eq_ignore_ascii_case("unexpected") {
        return Some("on-failure");
    }
    truth(value).map(|restart| if restart { "always" } else { "never" })
}

/// A number of seconds (`startsecs`, `stopwaitsecs`).
fn seconds(
    section: &Section,
    names: &Names<'_>,
    key: &str,
    notes: &mut Notes,
) -> Result<Option<u64>, String> {
    let Some((v, entry)) = get(section, names, key, notes)? else {
        return Ok(None);
    };
    let secs = v.trim().parse().map_err(|_| {
        format!(
            "{}: {key} must be a number of seconds, found {:?}",
            entry.at, entry.value
        )
    })?;
    Ok(Some(secs))
}

/// `exitcodes = 0,2` as `success-codes`, written as TOML.
fn exit_codes(
    section: &Section,
    names: &Names<'_>,
    notes: &mut Notes,
) -> Result<Option<String>, String> {
    let Some((v, entry)) = get(section, names, "exitcodes", notes)? else {
        return Ok(None);
    };
    let codes: Result<Vec<u8>, _> = v.split(',').map(|c| c.trim().parse()).collect();
    let codes = codes.map_err(|_| {
        format!(
            "{}: exitcodes must be numbers 0-255, found {:?}",
            entry.at, entry.value
        )
    })?;
    let codes: Vec<String> = codes.iter().map(u8::to_string).collect();
    Ok(Some(format!("[{}]", codes.join(", "))))
}

/// `startretries = N`: supervisord tries a start that fails (the program exits within
/// `startsecs`) N more times, then gives up; so does tend with `max-restarts = N`, except
/// that 0 means "never give up" in tend, and that tend's `restart = "never"` does not retry
/// a failed start at all, where supervisord retries it even with `autorestart = false`.
fn start_retries(service: &mut Service, restart: &str, retries: u32, notes: &mut Notes) {
    let name = service.name.clone();
    match (restart, retries) {
        ("never", 0) => {}
        ("never", n) => notes.push(format!(
            "`{name}`: startretries={n} is not carried over: with autorestart=false, supervisord still tries a start that fails (exits within startsecs) {n} more times; tend's restart = \"never\" does not"
        )),
        (_, 0) => {
            service.set("max-restarts", "1".to_string());
            notes.push(format!(
                "`{name}`: startretries=0 (supervisord gives up after one failed start) became max-restarts = 1, so tend tries once more: its max-restarts = 0 would mean never giving up"
            ));
        }
        (_, n) => service.set("max-restarts", n.to_string()),
    }
}

/// `command`: the words supervisord runs. Without `%(ENV_X)s`, the words themselves: the
/// command string when tend splits it into the same words, else an array. With one, a
/// shell line that reads the variables when it starts (see `command`).
fn command_keys(
    name: &str,
    entry: &Entry,
    names: &Names<'_>,
    notes: &mut Notes,
) -> Result<Vec<(&'static str, String)>, String> {
    let at = |m: String| format!("{}: command: {m}", entry.at);
    let mut used = Used::default();
    let pieces = names.pieces(&entry.value, &mut used).map_err(at)?;
    notes.used(entry, used, names.host);
    let words = command::split(&pieces).map_err(at)?;
    if words.is_empty() {
        return Err(at("it is empty".to_string()));
    }
    if let Some(argv) = command::plain(&words) {
        let text: String = pieces
            .iter()
            .map(|p| match p {
                expand::Piece::Text(t) => t.as_str(),
                expand::Piece::Env(_) => "",
            })
            .collect();
        let same = crate::config::words::split(&text)
            .is_ok_and(|w| w.words == argv && w.shell_syntax.is_none());
        let command = if same {
            emit::string(&text)
        } else {
            emit::strings(&argv)
        };
        return Ok(vec![("command", command)]);
    }
    let line = command::shell_line(&words).map_err(at)?;
    notes.push(format!(
        "`{name}`: its command reads %(ENV_...)s when it starts, as under supervisord, so it runs as a /bin/sh -c line in which everything else is quoted (an unset variable stops the start, as supervisord refuses to start without it)"
    ));
    Ok(vec![
        ("command", emit::string(&line)),
        ("shell", "true".to_string()),
    ])
}

/// Where supervisord sends one stream of a program's output.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Dest {
    /// `AUTO` (the default): a file supervisord names and removes itself.
    Auto,
    /// `NONE`: discarded.
    Discard,
    /// `syslog` (deprecated, still read by supervisord 4).
    Syslog,
    /// `/dev/stdout` and the like: supervisord's own output, hence the container's log.
    Terminal,
    File(String),
}

fn dest(value: &str) -> Dest {
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Dest::Auto,
        "none" => Dest::Discard,
        "syslog" => Dest::Syslog,
        "/dev/stdout" | "/dev/fd/1" | "/proc/self/fd/1" | "/dev/stderr" | "/dev/fd/2"
        | "/proc/self/fd/2" => Dest::Terminal,
        _ => Dest::File(value.trim().to_string()),
    }
}

/// `stdout_logfile` and `stderr_logfile` as `logs = { file, max-size, keep }`: tend has one
/// file per service, for both streams, so the stdout file is taken, else the stderr one.
fn log_file(
    section: &Section,
    names: &Names<'_>,
    name: &str,
    several: bool,
    redirect_stderr: bool,
    notes: &mut Notes,
) -> Result<Option<String>, String> {
    let mut stream = |key: &str| -> Result<Dest, String> {
        Ok(get(section, names, key, notes)?.map_or(Dest::Auto, |(v, _)| dest(&v)))
    };
    let out = stream("stdout_logfile")?;
    // With redirect_stderr, stderr goes where stdout goes and stderr_logfile is ignored.
    let err = if redirect_stderr {
        None
    } else {
        Some(stream("stderr_logfile")?)
    };
    for (which, dest) in [("stdout", Some(&out)), ("stderr", err.as_ref())] {
        let syslog = boolean(section, names, &format!("{which}_syslog"), false, notes)?;
        if syslog || dest == Some(&Dest::Syslog) {
            notes.push(format!(
                "`{name}`: supervisord sent its {which} to syslog; tend writes it to its own {which} with a `{name} | ` prefix, which is the container's log"
            ));
        }
    }
    match &out {
        Dest::Auto => notes.push(format!(
            "`{name}`: supervisord kept its output in an automatic log file; under tend it goes to tend's stdout (add `logs = {{ file = ... }}` to keep a file)"
        )),
        Dest::Discard => notes.push(format!(
            "`{name}`: stdout_logfile=NONE discarded its output; tend writes it to its own stdout"
        )),
        Dest::Syslog | Dest::Terminal | Dest::File(_) => {}
    }
    let (which, path) = match (&out, &err) {
        (Dest::File(path), _) => ("stdout", path),
        (_, Some(Dest::File(path))) => ("stderr", path),
        _ => return Ok(None),
    };
    match (which, &err) {
        ("stdout", Some(Dest::File(other))) if other != path => notes.push(format!(
            "`{name}`: stderr_logfile {other} is not carried over: tend's logs.file, {path}, gets stdout and stderr together"
        )),
        ("stdout", Some(Dest::File(_))) | (_, None) => {}
        ("stdout", Some(_)) => notes.push(format!(
            "`{name}`: logs.file gets stdout and stderr together (supervisord kept stderr apart unless redirect_stderr=true)"
        )),
        _ => notes.push(format!(
            "`{name}`: logs.file is its stderr_logfile, {path}, and gets its stdout too (tend keeps one file for both)"
        )),
    }
    let raw = section
        .get(&format!("{which}_logfile"))
        .map_or("", |e| e.value.as_str());
    let file = if several && !raw.contains("%(process_num)") {
        // One file per process: tend rotates each service's file on its own.
        let number = match names.process_num {
            _ if names.instance => "{instance:02}".to_string(),
            n => format!("{:02}", n.unwrap_or_default()),
        };
        let file = numbered(path, &number);
        notes.push(format!(
            "`{name}`: its processes shared {path}; under tend each has a file of its own: {file}"
        ));
        file
    } else {
        path.clone()
    };
    let max_size = match get(section, names, &format!("{which}_logfile_maxbytes"), notes)? {
        Some((v, entry)) => size(&v).map_err(|m| format!("{}: {m}", entry.at))?,
        None => "50MiB".to_string(),
    };
    let key = format!("{which}_logfile_backups");
    let keep = number(section, names, &key, 10, notes)?;
    let keep =
        u32::try_from(keep).map_err(|_| format!("{}: {key} must be 0 or more", section.at))?;
    Ok(Some(emit::inline_table(&[
        ("file".to_string(), emit::string(&file)),
        ("max-size".to_string(), emit::string(&max_size)),
        ("keep".to_string(), keep.to_string()),
    ])))
}

/// `worker.log` for process 3 is `worker-03.log` (`number` is `03`, or `{instance:02}`).
fn numbered(path: &str, number: &str) -> String {
    let path = Path::new(path);
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()));
    let file = format!(
        "{}-{number}{}",
        stem.unwrap_or_default(),
        ext.unwrap_or_default()
    );
    path.with_file_name(file).display().to_string()
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
        let value = value.trim().to_string();
        // supervisord reads the pairs into a dict: a key given twice keeps its last value.
        // (Written twice, it made the inline table, and so the file, not TOML: found by
        // fuzzing.)
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
}

/// supervisord starts programs by ascending `priority` (and stops them in reverse); tend
/// does that through `depends-on`: each program waits for the start of those one priority
/// level below it.
fn order_by_priority(programs: &mut [Program], notes: &mut Notes) {
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

/// An `[eventlistener:x]` whose only job is to stop supervisord when a program changes
/// state: it listens to process state events only, and its command kills or shuts down.
/// Returns its events.
fn stops_on_state_change(section: &Section) -> Option<String> {
    let events = &section.get("events")?.value;
    let mut listed = events.split(',').map(str::trim).filter(|e| !e.is_empty());
    let state_only = listed.clone().next().is_some()
        && listed.all(|e| e.to_ascii_uppercase().starts_with("PROCESS_STATE"));
    let command = section.get("command")?.value.to_ascii_lowercase();
    (state_only && (command.contains("kill") || command.contains("shutdown")))
        .then(|| events.clone())
}

/// Such a listener becomes what tend does itself: a `critical` service that ends for good
/// ends everything.
fn make_critical(listener: &Section, programs: &mut [Program], notes: &mut Notes) {
    let events = stops_on_state_change(listener).unwrap_or_default();
    for program in programs.iter_mut() {
        if !program.service.keys.iter().any(|(k, _)| *k == "critical") {
            program.service.set("critical", "true".to_string());
        }
    }
    let upper = events.to_ascii_uppercase();
    let at_first_exit = upper.contains("EXITED") || upper.contains("STOPPED");
    notes.push(format!(
        "{}: [{}] stops supervisord when a program changes state ({events}); under tend the programs are `critical = true` instead: when one ends for good, tend stops the others and exits with its code{}",
        listener.at,
        listener.name,
        if at_first_exit {
            ". supervisord's listener acted on the first exit, even one autorestart would have restarted; tend first restarts as `restart` says (set restart = \"never\" to end at the first exit)"
        } else {
            ""
        }
    ));
}

/// supervisord stops one priority level after the other and waits each program's
/// `stopwaitsecs`, without an overall limit; tend stops within `shutdown-timeout` (9 s by
/// default). When the stop timeouts along the priority order add up to more, the budget is
/// raised to their sum plus a second for the leftovers, rather than killing programs early.
fn shutdown_budget(programs: &[Program], notes: &mut Notes) -> Vec<(&'static str, String)> {
    let mut levels: BTreeMap<i64, u64> = BTreeMap::new();
    for p in programs {
        let level = levels.entry(p.priority).or_default();
        *level = (*level).max(p.stop_timeout);
    }
    let chain: u64 = levels.values().sum();
    if chain <= TEND_SHUTDOWN_TIMEOUT {
        return Vec::new();
    }
    let budget = chain + 1;
    notes.push(format!(
        "[tend] shutdown-timeout is {budget}s: the programs' stop timeouts add up to {chain}s along the priority order (supervisord waits that long too), plus 1 s for leftovers. Docker kills a container 10 s after `docker stop`: run it with `--stop-timeout {budget}` (Kubernetes: terminationGracePeriodSeconds)"
    ));
    vec![("shutdown-timeout", emit::string(&format!("{budget}s")))]
}
