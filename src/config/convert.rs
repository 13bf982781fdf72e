//! From the file as written to what it means: defaults filled in, values checked, and the
//! result as `core::spec` data plus tend's settings. Every check that fails points at the
//! value it is about.

use super::address;
use super::context::Context;
use super::depends::{self, Places, Roster};
use super::error::{ConfigError, Source};
use super::schema::{
    BackoffTable, Document, LogsTable, Restart, RunOnValue, ServiceTable, ShmTable,
};
use super::size::SizeValue;
use super::users::Accounts;
use super::{Environment, Loaded, Settings, ShmSettings, cron, duration, instances, size, zone};
use crate::core::schedule::Rule;
use crate::core::signal::Signal;
use crate::core::spec::{
    Backoff, DEFAULT_SHUTDOWN_TIMEOUT, ExitCodeSet, ExitSignals, Finish, LogFile, MainExit,
    RestartPolicy, RunOn, ServiceSpec, SignalRouting, Spec,
};
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// The most output lines `logs.ring` may keep per service: a bound on the memory one
/// service's output can hold.
pub(super) const MAX_LOG_RING: usize = 1_000_000;
/// The most bytes of output `logs.ring-max-size` may keep per service.
pub(super) const MAX_LOG_RING_BYTES: usize = 1 << 30;
/// Rotated log files kept at most (`logs.keep`).
pub(super) const MAX_LOG_KEEP: u32 = 1000;
/// The smallest `memory-limit`.
pub(super) const MIN_MEMORY_LIMIT: u64 = 1 << 20;

/// The parts of `[tend]` and of a service that need a file system check.
impl Context<'_> {
    /// `[tend.shm]`: a file in an existing directory, and distinct keys that can name a
    /// segment (not 0, IPC_PRIVATE; up to 0xffffffff, as `ipcs` shows them).
    fn shm(&self, table: &ShmTable) -> Result<ShmSettings, ConfigError> {
        let file = self.path(&table.file, "shm.file")?;
        if let Some(dir) = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.is_dir())
        {
            return Err(self.error(
                table.file.span(),
                format!(
                    "shm.file {}: the directory {} does not exist",
                    file.display(),
                    dir.display()
                ),
            ));
        }
        if table.keys.get_ref().is_empty() {
            return Err(self.error(
                table.keys.span(),
                "shm.keys is empty: name the segments to keep",
            ));
        }
        let mut keys = Vec::new();
        for key in table.keys.get_ref() {
            let value = *key.get_ref();
            let Some(k) = u32::try_from(value).ok().filter(|k| *k != 0) else {
                return Err(self.error(
                    key.span(),
                    format!("a shm key is from 1 to 0xffffffff, found {value}"),
                ));
            };
            let k = k as i32;
            if keys.contains(&k) {
                return Err(self.error(key.span(), format!("shm key {value:#x} is listed twice")));
            }
            keys.push(k);
        }
        Ok(ShmSettings { file, keys })
    }

    /// `logs.file`, `logs.max-size`, `logs.keep`.
    fn log_file(&self, logs: &LogsTable) -> Result<Option<LogFile>, ConfigError> {
        let Some(file) = &logs.file else {
            let stray = [
                logs.max_size.as_ref().map(|v| ("max-size", v.span())),
                logs.keep.as_ref().map(|v| ("keep", v.span())),
            ];
            if let Some((key, span)) = stray.into_iter().flatten().next() {
                return Err(self.error(
                    span,
                    format!("logs.{key} says how to rotate logs.file, which is not set"),
                ));
            }
            return Ok(None);
        };
        let path = self.path(file, "logs.file")?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir.filter(|d| !d.is_dir()) {
            return Err(self.error(
                file.span(),
                format!(
                    "logs.file {}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                ),
            ));
        }
        if path.is_dir() {
            return Err(self.error(
                file.span(),
                format!("logs.file {} is a directory", path.display()),
            ));
        }
        let max_size = match &logs.max_size {
            Some(value) => size::parse(value.get_ref()).map_err(|m| self.error(value.span(), m))?,
            None => LogFile::DEFAULT_MAX_SIZE,
        };
        let keep = match &logs.keep {
            Some(value) => u32::try_from(*value.get_ref())
                .ok()
                .filter(|n| *n <= MAX_LOG_KEEP)
                .ok_or_else(|| {
                    self.error(
                        value.span(),
                        format!(
                            "logs.keep must be from 0 to {MAX_LOG_KEEP}, found {}",
                            value.get_ref()
                        ),
                    )
                })?,
            None => LogFile::DEFAULT_KEEP,
        };
        Ok(Some(LogFile {
            path,
            max_size,
            keep,
        }))
    }
}

pub(super) fn convert(
    document: Document,
    source: &Source<'_>,
    base_dir: &Path,
    env: &Environment,
) -> Result<Loaded, ConfigError> {
    let mut cx = Context {
        source,
        base_dir,
        accounts: Accounts::new(&env.etc),
        warnings: Vec::new(),
    };
    let tend = document.tend.unwrap_or_default();
    let shutdown_timeout = match &tend.shutdown_timeout {
        Some(value) => cx.duration(value)?,
        None => DEFAULT_SHUTDOWN_TIMEOUT,
    };
    let mut settings = Settings::default();
    if let Some(socket) = &tend.socket {
        settings.socket = cx.path(socket, "socket")?;
    }
    if let Some(group) = &tend.socket_group {
        settings.socket_group = Some(cx.group(group, "socket-group")?);
    }
    if let Some(http) = &tend.http {
        let text = http.get_ref();
        let addr = address::listen(text).map_err(|p| {
            let span = cx.inside_string(http.span(), text, p.at);
            cx.error(span, p.message)
        })?;
        settings.http = Some(addr);
    }
    settings.log_timestamps = tend.log_timestamps.unwrap_or(settings.log_timestamps);
    settings.log_format = tend.log_format.unwrap_or(settings.log_format);
    if let Some(shm) = &tend.shm {
        settings.shm = Some(cx.shm(shm.get_ref())?);
    }
    let shutdown = match &tend.shutdown_signals {
        Some(signals) => shutdown_signals(&mut cx, signals)?,
        None => ExitSignals::default(),
    };

    let Some(services) = document.services else {
        return Err(cx
            .error(
                0..0,
                "no services: the file must define at least one [services.NAME] table",
            )
            .with_help("for example:\n[services.app]\ncommand = [\"/usr/local/bin/app\"]"));
    };
    let services_span = services.span();
    let tables = services.into_inner().0;
    if tables.is_empty() {
        return Err(cx.error(
            services_span,
            "no services: `services` must hold at least one [services.NAME] table",
        ));
    }
    // Known before any service is converted, so a service may depend on a later one.
    let mut counts = Vec::with_capacity(tables.len());
    for (_, table) in &tables {
        counts.push(cx.instances(table)?);
    }
    let named: Vec<instances::Table<'_>> = tables
        .iter()
        .zip(&counts)
        .map(|((name, table), &count)| instances::Table {
            name,
            count,
            count_at: table.instances.as_ref().map(Spanned::span),
        })
        .collect();
    let names = cx.service_names(&named)?;
    let mut roster = Roster {
        names,
        oneshot: Vec::new(),
        shutdown_task: Vec::new(),
        scheduled: Vec::new(),
        instance_of: Vec::new(),
    };
    for ((name, table), count) in tables.iter().zip(&counts) {
        for _ in 0..count.unwrap_or(1) {
            roster.oneshot.push(table.is_oneshot());
            roster
                .shutdown_task
                .push(table.run_on.as_ref().map(Spanned::get_ref) == Some(&RunOnValue::Shutdown));
            roster.scheduled.push(table.schedule.is_some());
            roster
                .instance_of
                .push(count.map(|_| name.get_ref().clone()));
        }
    }
    // Where the first cron rule is written: a warning about the system's zone points there.
    let mut first_cron_at = None;
    let mut specs: Vec<ServiceSpec> = Vec::with_capacity(roster.names.len());
    let mut places = Vec::with_capacity(roster.names.len());
    for ((name, mut table), count) in tables.into_iter().zip(counts) {
        let stop_timeout_set = table.stop_timeout.is_some();
        let stop_timeout_at = table
            .stop_timeout
            .as_ref()
            .map_or(name.span().start, |t| t.span().start);
        let depends_on = table.depends_on.take();
        let log_file_span = table
            .logs
            .as_ref()
            .and_then(|logs| logs.file.as_ref())
            .map(Spanned::span);
        let schedule_at = table.schedule.as_ref().map(|v| v.span().start);
        let written = instances::Written::of(&table);
        let mine = specs.len()..specs.len() + count.unwrap_or(1) as usize;
        for i in 0..count.unwrap_or(1) {
            let warned = cx.warnings.len();
            written.apply(&cx, &mut table, i)?;
            let mut spec = service(&mut cx, name.clone(), &table)
                .map_err(|e| in_instance(&cx, e, &written, count, &name, i))?;
            if spec
                .schedule
                .as_ref()
                .is_some_and(|s| matches!(s.rule, Rule::Cron(_)))
            {
                first_cron_at = first_cron_at.or(schedule_at);
            }
            if i > 0 {
                // The first instance has said it for all of them.
                cx.warnings.truncate(warned);
            }
            if let Some(count) = count {
                spec.name = instances::name(name.get_ref(), count, i);
                spec.instance_of = Some(name.get_ref().clone());
                spec.launch
                    .env
                    .insert(0, ("TEND_INSTANCE".into(), i.to_string().into()));
            }
            // Two services rotating one file would rename it from under each other.
            if let (Some(file), Some(span)) = (&spec.log_file, log_file_span.clone()) {
                let other = specs.iter().position(|s: &ServiceSpec| {
                    s.log_file.as_ref().is_some_and(|f| f.path == file.path)
                });
                if let Some(other) = other {
                    let message = if mine.contains(&other) {
                        format!(
                            "every instance of `{}` would write logs.file {}: put `{{instance}}` \
                             in the path, since each service needs a file of its own",
                            name.get_ref(),
                            file.path.display()
                        )
                    } else {
                        format!(
                            "logs.file {} is also service `{}`'s: each service needs a file of \
                             its own",
                            file.path.display(),
                            specs[other].name
                        )
                    };
                    return Err(cx.error(span, message));
                }
            }
            specs.push(spec);
        }
        let mut entries = Vec::new();
        if let Some(value) = &depends_on {
            let dependencies;
            (dependencies, entries) =
                cx.depends_on(&roster, name.get_ref(), mine.clone(), value)?;
            for spec in &mut specs[mine.clone()] {
                spec.depends_on = dependencies.clone();
            }
        }
        for _ in mine {
            places.push(Places {
                entries: entries.clone(),
                stop_timeout_at,
                stop_timeout_set,
            });
        }
    }
    depends::check_graph(&mut cx, &mut specs, &places, shutdown_timeout)?;
    let timezone = match (&tend.timezone, first_cron_at) {
        (Some(name), _) => {
            zone::named(env, name.get_ref().trim()).map_err(|m| cx.error(name.span(), m))?
        }
        // Read only when a cron rule needs it: a file without one does not depend on the
        // machine's zone settings.
        (None, Some(at)) => {
            let (zone, trouble) = zone::system(env);
            if let Some(trouble) = trouble {
                cx.warn(at, trouble);
            }
            zone
        }
        (None, None) => jiff::tz::TimeZone::UTC,
    };
    let spec = Spec {
        services: specs,
        signals: SignalRouting::Supervise { shutdown },
        main_exit: MainExit::default(),
        shutdown_timeout,
        timezone,
    };
    Ok(Loaded {
        spec,
        settings,
        warnings: cx.warnings,
    })
}

/// `schedule`: the rule, pointing inside the string at what is wrong with it; a scheduled
/// task is a one-shot task that runs at its times, not at start nor at shutdown.
fn schedule(
    cx: &Context<'_>,
    table: &ServiceTable,
    value: &Spanned<String>,
    oneshot: bool,
) -> Result<crate::core::schedule::Schedule, ConfigError> {
    let text = value.get_ref();
    let schedule = cron::parse(text).map_err(|p| {
        let span = cx.inside_string(value.span(), text, p.at);
        cx.error(span, p.message)
    })?;
    if !oneshot {
        return Err(cx
            .error(
                value.span(),
                "schedule makes a one-shot task, run at its times, but `oneshot = false` is set",
            )
            .with_help("remove `oneshot = false`: each run of a scheduled task runs to its end"));
    }
    if let Some(run_on) = &table.run_on
        && *run_on.get_ref() == RunOnValue::Shutdown
    {
        return Err(cx.error(
            run_on.span(),
            "a scheduled task runs at its times, a shutdown task when tend shuts down: \
                 `schedule` and run-on = \"shutdown\" do not go together",
        ));
    }
    Ok(schedule)
}

/// `finish` and `finish-timeout`.
fn finish(
    cx: &mut Context<'_>,
    service: &str,
    table: &ServiceTable,
) -> Result<Option<Finish>, ConfigError> {
    let Some(command) = &table.finish else {
        if let Some(timeout) = &table.finish_timeout {
            return Err(cx.error(
                timeout.span(),
                "finish-timeout limits the `finish` command, but this service has none",
            ));
        }
        return Ok(None);
    };
    let (argv, shell_syntax) = cx.program(command, "finish")?;
    if let Some(c) = shell_syntax {
        cx.warn(
            command.span().start,
            format_args!(
                "`finish` of service `{service}` contains `{c}`, which is passed on literally \
                 because no shell runs it; write it as [\"/bin/sh\", \"-c\", \"...\"] to run \
                 it with a shell, or quote it to silence this warning"
            ),
        );
    }
    let timeout = match &table.finish_timeout {
        Some(value) => cx.duration(value)?,
        None => Finish::DEFAULT_TIMEOUT,
    };
    Ok(Some(Finish { argv, timeout }))
}

/// An error in instance `i` of a table, at a value that holds `{instance}`, says which
/// instance it is about: the same value may be right for the others.
fn in_instance(
    cx: &Context<'_>,
    mut e: ConfigError,
    written: &instances::Written,
    count: Option<u32>,
    name: &Spanned<String>,
    i: u32,
) -> ConfigError {
    let at = (e.line, e.column);
    let inside = written.placeholder_spans().into_iter().any(|span| {
        let start = cx.source.line_column(span.start);
        let end = cx.source.line_column(span.end);
        start <= at && at < end
    });
    if inside {
        e.message = match count {
            Some(count) if count > 1 => format!(
                "{} (in `{}`, where {{instance}} is {i})",
                e.message,
                instances::name(name.get_ref(), count, i)
            ),
            _ => format!("{} (where {{instance}} is {i})", e.message),
        };
    }
    e
}

fn shutdown_signals(
    cx: &mut Context<'_>,
    signals: &Spanned<Vec<Spanned<String>>>,
) -> Result<ExitSignals, ConfigError> {
    let mut parsed = Vec::new();
    for name in signals.get_ref() {
        let signal = parse_signal(cx, name)?;
        if let Some(why) = shutdown_refusal(signal) {
            return Err(cx.error(
                name.span(),
                format!("{signal} cannot be a shutdown signal: {why}"),
            ));
        }
        parsed.push(signal);
    }
    if parsed.is_empty() {
        cx.warn(
            signals.span().start,
            "shutdown-signals is empty: no signal stops tend gracefully, so `docker stop` \
             ends in SIGKILL; only `tend shutdown` stops it cleanly",
        );
    }
    Ok(ExitSignals::of(&parsed))
}

/// Why `signal` cannot be in `shutdown-signals`, if it cannot: tend never receives it, or
/// must not take it as a request, so the setting would be a promise it cannot keep.
pub(super) fn shutdown_refusal(signal: Signal) -> Option<&'static str> {
    if signal.is_uncatchable() {
        Some("it cannot be caught")
    } else if signal.is_synchronous() {
        Some("it is a fault signal, which tend leaves to crash whoever raised it")
    } else if signal == Signal::CHLD {
        Some("it is how tend learns that a child exited")
    } else {
        None
    }
}

fn parse_signal(cx: &Context<'_>, name: &Spanned<String>) -> Result<Signal, ConfigError> {
    Signal::parse(name.get_ref()).ok_or_else(|| {
        cx.error(
            name.span(),
            format!(
                "unknown signal \"{}\"; expected a name such as \"TERM\", \"SIGQUIT\" or \
                 \"RTMIN+2\", or a number from 1 to 64",
                name.get_ref()
            ),
        )
    })
}

fn service(
    cx: &mut Context<'_>,
    name: Spanned<String>,
    table: &ServiceTable,
) -> Result<ServiceSpec, ConfigError> {
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.get_ref().is_empty() || !name.get_ref().chars().all(valid) {
        return Err(cx.error(
            name.span(),
            format!(
                "invalid service name \"{}\": use letters, digits, '.', '_' and '-' only",
                name.get_ref().escape_debug()
            ),
        ));
    }
    let launch = cx.launch(&name, table)?;
    let mut spec = ServiceSpec::new(name.into_inner(), launch);

    let oneshot = table.is_oneshot();
    spec.oneshot = oneshot;
    if let Some(value) = &table.schedule {
        spec.schedule = Some(schedule(cx, table, value, oneshot)?);
    }
    if let Some(run_on) = &table.run_on {
        spec.run_on = match run_on.get_ref() {
            RunOnValue::Start => RunOn::Start,
            RunOnValue::Shutdown if !oneshot => {
                return Err(cx
                    .error(
                        run_on.span(),
                        "run-on = \"shutdown\" makes a one-shot task, but `oneshot = false` is set",
                    )
                    .with_help(
                        "remove `oneshot = false`: a shutdown task runs once, to completion",
                    ));
            }
            RunOnValue::Shutdown => RunOn::Shutdown,
        };
    }
    // A one-shot task is done once it succeeds; restarting it after a failure is still
    // useful (a migration waiting for its database), so that is its default.
    spec.restart = match table.restart.as_ref().map(|r| (*r.get_ref(), r.span())) {
        Some((Restart::Always, span)) if spec.schedule.is_some() => {
            return Err(cx
                .error(
                    span,
                    "restart = \"always\" would start a scheduled task again as soon as it ends",
                )
                .with_help(
                    "a scheduled task runs at its times; \"on-failure\" retries a failed run \
                     (with backoff), \"never\" (its default) leaves it to the next time",
                ));
        }
        Some((Restart::Always, _)) => RestartPolicy::Always,
        Some((Restart::OnFailure, _)) => RestartPolicy::OnFailure,
        Some((Restart::Never, _)) => RestartPolicy::Never,
        // A failed run waits for the next time, as under cron.
        None if spec.schedule.is_some() => RestartPolicy::Never,
        None if oneshot => RestartPolicy::OnFailure,
        None => spec.restart,
    };
    if let Some(codes) = &table.success_codes {
        spec.success_codes = success_codes(cx, codes)?;
    }
    if let Some(backoff) = &table.backoff {
        spec.backoff = self::backoff(cx, backoff.get_ref(), spec.backoff)?;
    }
    spec.start_secs = match &table.start_secs {
        Some(value) => cx.duration(value)?,
        // A task that is supposed to end cannot be required to stay up.
        None if oneshot => Duration::ZERO,
        None => spec.start_secs,
    };
    if let Some(value) = &table.max_restarts {
        spec.max_restarts = u32::try_from(*value.get_ref()).map_err(|_| {
            cx.error(
                value.span(),
                format!(
                    "max-restarts must be from 0 (never give up) to {}, found {}",
                    u32::MAX,
                    value.get_ref()
                ),
            )
        })?;
    }
    spec.critical = table.critical.unwrap_or(spec.critical);
    spec.autostart = table.autostart.unwrap_or(spec.autostart);
    if let Some(signal) = &table.stop_signal {
        spec.stop_signal = parse_signal(cx, signal)?;
    }
    if let Some(value) = &table.stop_timeout {
        spec.stop_timeout = cx.duration(value)?;
    }
    spec.finish = finish(cx, &spec.name, table)?;
    if let Some(logs) = &table.logs {
        spec.log_file = cx.log_file(logs)?;
    }
    if let Some(file) = &table.pid_file {
        if spec.oneshot {
            return Err(cx.error(
                file.span(),
                "pid-file follows a daemon that keeps running; a oneshot task has none",
            ));
        }
        spec.pid_file = Some(cx.path(file, "pid-file")?);
    }
    if let Some(ring) = table.logs.as_ref().and_then(|logs| logs.ring.as_ref()) {
        spec.log_ring = usize::try_from(*ring.get_ref())
            .ok()
            .filter(|n| *n <= MAX_LOG_RING)
            .ok_or_else(|| {
                cx.error(
                    ring.span(),
                    format!(
                        "logs.ring must be from 0 (keep nothing) to {MAX_LOG_RING}, found {}",
                        ring.get_ref()
                    ),
                )
            })?;
    }
    if let Some(value) = table.logs.as_ref().and_then(|l| l.ring_max_size.as_ref()) {
        spec.log_ring_bytes = size::parse(value.get_ref())
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_LOG_RING_BYTES).contains(n))
            .ok_or_else(|| {
                cx.error(
                    value.span(),
                    "logs.ring-max-size must be a size from 1 byte to 1GiB (to keep no lines, \
                     write ring = 0)",
                )
            })?;
    }
    if let Some(ready) = &table.ready {
        spec.ready = Some(cx.ready(&spec.name, ready)?);
    }
    if let Some(health) = &table.health {
        spec.health = Some(cx.health(&spec.name, health)?);
    }
    if let Some(value) = &table.memory_limit {
        spec.memory_limit = Some(memory_limit(cx, value)?);
    }
    Ok(spec)
}

/// `memory-limit`: a size of at least 1 MiB. Less is no process's resident memory, and
/// most likely a number of MiB written as a bare number, which counts bytes.
fn memory_limit(cx: &Context<'_>, value: &Spanned<SizeValue>) -> Result<u64, ConfigError> {
    let bytes = size::parse(value.get_ref()).map_err(|e| cx.error(value.span(), e))?;
    if bytes < MIN_MEMORY_LIMIT {
        return Err(cx
            .error(
                value.span(),
                format!("memory-limit must be at least 1MiB, found {bytes} bytes"),
            )
            .with_help(
                "write the size with its unit, such as \"512MiB\": a bare number counts bytes",
            ));
    }
    Ok(bytes)
}

fn success_codes(
    cx: &Context<'_>,
    codes: &Spanned<Vec<Spanned<i64>>>,
) -> Result<ExitCodeSet, ConfigError> {
    if codes.get_ref().is_empty() {
        return Err(cx.error(
            codes.span(),
            "success-codes is empty: no exit could ever count as a success; list at least one code",
        ));
    }
    let mut set = ExitCodeSet::default();
    for code in codes.get_ref() {
        let value = u8::try_from(*code.get_ref()).map_err(|_| {
            cx.error(
                code.span(),
                format!("exit codes are from 0 to 255, found {}", code.get_ref()),
            )
        })?;
        set.insert(value);
    }
    Ok(set)
}

fn backoff(
    cx: &Context<'_>,
    table: &BackoffTable,
    defaults: Backoff,
) -> Result<Backoff, ConfigError> {
    let initial = match &table.initial {
        Some(value) => cx.duration(value)?,
        None => defaults.initial,
    };
    let max = match &table.max {
        Some(value) => cx.duration(value)?,
        None => defaults.max,
    };
    let factor = match &table.factor {
        Some(value) => {
            let factor = *value.get_ref();
            // Below 1 the delays would shrink; NaN or infinity would make them meaningless.
            if !(factor.is_finite() && factor >= 1.0) {
                return Err(cx.error(
                    value.span(),
                    format!("backoff factor must be a number of at least 1.0, found {factor}"),
                ));
            }
            factor
        }
        None => defaults.factor,
    };
    if initial > max {
        let span = match (&table.initial, &table.max) {
            (Some(value), _) | (None, Some(value)) => value.span(),
            (None, None) => 0..0,
        };
        return Err(cx.error(
            span,
            format!(
                "backoff initial ({}) is longer than max ({})",
                duration::show(initial),
                duration::show(max)
            ),
        ));
    }
    Ok(Backoff {
        initial,
        max,
        factor,
    })
}
