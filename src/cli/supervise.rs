//! `tend run [FILE]` (supervise the services of a TOML file) and `tend check FILE`.

use super::socket_place;
use crate::config::{self, DEFAULT_SOCKET, Environment};
use crate::core::{Level, Supervisor};
use crate::shell::diagnostics::Logger;
use crate::shell::event_loop::{self, Context};
use crate::shell::logs::{Logs, Style};
use crate::shell::serve::control::{Access, ControlServer};
use crate::shell::serve::http::HttpServer;
use crate::shell::shm_store;
use crate::sys::{process, signals};
use std::ffi::{OsStr, OsString, c_int};
use std::path::{Path, PathBuf};

/// Where `tend run` looks without a FILE argument or `$TEND_CONFIG`.
pub const DEFAULT_CONFIG: &str = "/etc/tend.toml";

/// Exit code for a configuration that does not load (tend itself uses 1 for other failures).
pub const CONFIG_ERROR: c_int = 2;

pub const RUN_USAGE: &str = "Usage: tend run [-v|-q] [FILE]
Supervises the services in FILE (default: $TEND_CONFIG, else /etc/tend.toml).
  -v  more of tend's own messages (repeatable)    -q  errors only
";

pub const CHECK_USAGE: &str = "Usage: tend check FILE
Validates FILE as tend run would, starts nothing, and prints any warnings.
";

// Not inlined into `cli::main`, whose frame stays under tini mode's loop.
#[inline(never)]
pub fn run(
    args: &[OsString],
    inherited: signals::Inherited,
    signal_fd: signals::SignalFd,
) -> c_int {
    let mut verbosity: u8 = 2;
    let mut file: Option<PathBuf> = None;
    for arg in args {
        match arg.to_str() {
            Some("-h" | "--help") => {
                print!("{RUN_USAGE}");
                return 0;
            }
            Some(flag) if flag.starts_with("-v") && flag[1..].chars().all(|c| c == 'v') => {
                verbosity = verbosity.saturating_add((flag.len() - 1) as u8);
            }
            Some("-q") => verbosity = 0,
            Some(flag) if flag.starts_with('-') && flag != "-" => {
                eprint!("tend: unknown option '{flag}'\n{RUN_USAGE}");
                return 1;
            }
            _ if file.is_none() => file = Some(PathBuf::from(arg)),
            _ => {
                eprint!("tend: too many arguments\n{RUN_USAGE}");
                return 1;
            }
        }
    }
    let path = file
        .or_else(|| {
            std::env::var_os("TEND_CONFIG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let loaded = match config::load_file(&path, &Environment::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("tend: nothing was started");
            return CONFIG_ERROR;
        }
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let log = Logger {
        verbosity,
        warn_on_reap: false,
    };
    let is_pid1 = process::getpid().0 == 1;
    if !is_pid1
        && !process::is_subreaper().unwrap_or(false)
        && let Err(e) = process::become_subreaper()
    {
        log.say(
            Level::Warn,
            format_args!(
                "not PID 1 and cannot become a subreaper ({e}): orphans will not be reaped by tend"
            ),
        );
    }
    let style = Style {
        format: loaded.settings.log_format,
        timestamps: loaded.settings.log_timestamps,
        color: use_color(),
    };
    let logs = match Logs::new(&loaded.spec.services, style) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tend: error: cannot set up log pipes: {e}");
            return 1;
        }
    };
    // Asked-for probe endpoints that cannot be served would make the orchestrator restart the
    // container in a loop for a reason nobody sees: refuse to start instead.
    let http = match loaded.settings.http.map(HttpServer::bind).transpose() {
        Ok(server) => server,
        Err(e) => {
            eprintln!(
                "tend: error: cannot listen on http = {:?}: {e}",
                loaded
                    .settings
                    .http
                    .map(|a| a.to_string())
                    .unwrap_or_default()
            );
            eprintln!("tend: nothing was started");
            return 1;
        }
    };
    // Services run even when the socket cannot be made (a read-only /run, say): control is
    // a convenience, supervision is the job.
    let access = Access {
        uid: rustix::process::geteuid().as_raw(),
        group: loaded.settings.socket_group,
    };
    let control = bind_control(&loaded.settings.socket, access, &log);
    // In a fallback place (tend's own uid, which services cannot leave), next to the socket
    // inside its private directory.
    let notify_dir = match control.as_ref().map(ControlServer::path) {
        Some(bound) if bound != loaded.settings.socket => bound
            .parent()
            .map_or_else(|| PathBuf::from("tend-notify"), |d| d.join("notify")),
        _ => notify_dir(&loaded.settings.socket),
    };
    // Shared memory saved by the last run, made again before any service can look for it.
    if let Some(shm) = &loaded.settings.shm {
        match shm_store::restore(shm) {
            Ok(notes) => {
                for (level, note) in notes {
                    log.say(level, format_args!("{note}"));
                }
            }
            Err(e) => {
                eprintln!("tend: error: {e}");
                return 1;
            }
        }
    }
    let ctx = Context {
        inherited,
        signals: signal_fd,
        log,
        is_pid1,
        logs: Some(Box::new(logs)),
        control: control.map(Box::new),
        config_path: Some(path),
        notify_dir: Some(notify_dir),
        http: http.map(Box::new),
        shm: loaded.settings.shm.clone().map(Box::new),
    };
    match event_loop::run(Supervisor::new(loaded.spec), ctx) {
        Ok(code) => c_int::from(code),
        Err(e) => {
            eprintln!("tend: error: cannot start the event loop: {e}");
            1
        }
    }
}

// Not inlined into `cli::main`, whose frame stays under tini mode's loop.
#[inline(never)]
pub fn check(args: &[OsString]) -> c_int {
    let [file] = args else {
        eprint!("{CHECK_USAGE}");
        return 1;
    };
    if file == OsStr::new("-h") || file == OsStr::new("--help") {
        print!("{CHECK_USAGE}");
        return 0;
    }
    match config::load_file(std::path::Path::new(file), &Environment::default()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            let n = loaded.spec.services.len();
            println!(
                "{}: ok, {n} service{}{}",
                file.to_string_lossy(),
                if n == 1 { "" } else { "s" },
                instances(&loaded.spec.services)
            );
            0
        }
        Err(e) => {
            eprintln!("{e}");
            CONFIG_ERROR
        }
    }
}

/// What `tend check` says of the services that `instances` made: ` (3 instances of worker:
/// worker-0 to worker-2)`, or nothing without any.
fn instances(services: &[crate::core::spec::ServiceSpec]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for s in services {
        let Some(base) = s.instance_of.as_deref().filter(|b| *b != s.name) else {
            continue;
        };
        match groups.iter_mut().find(|(b, _)| *b == base) {
            Some((_, names)) => names.push(&s.name),
            None => groups.push((base, vec![&s.name])),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(base, names)| {
            format!(
                "{} instances of {base}: {} to {}",
                names.len(),
                names.first().unwrap_or(&""),
                names.last().unwrap_or(&"")
            )
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// The control socket where the file says; with the default place, where that cannot be
/// made (a uid that may not write /run, a read-only root), the user's own place that the
/// client looks in too (`socket_place`). Services run even without a socket: control is a
/// convenience, supervision is the job.
fn bind_control(socket: &Path, access: Access, log: &Logger) -> Option<ControlServer> {
    let places = if socket == Path::new(DEFAULT_SOCKET) {
        socket_place::places(access.uid, |name| std::env::var_os(name))
    } else {
        vec![socket.to_path_buf()]
    };
    let mut failed = Vec::new();
    for (i, place) in places.iter().enumerate() {
        let fallback = i > 0;
        let bound = if fallback {
            socket_place::private_dir(place, access.uid)
                .and_then(|()| ControlServer::bind(place, access))
        } else {
            ControlServer::bind(place, access)
        };
        match bound {
            Ok(server) => {
                if fallback {
                    log.say(
                        Level::Info,
                        format_args!(
                            "control socket at {} ({}); tend status finds it there",
                            place.display(),
                            failed.join("; ")
                        ),
                    );
                }
                return Some(server);
            }
            Err(e) => failed.push(format!("{}: {e}", place.display())),
        }
    }
    log.say(
        Level::Warn,
        format_args!(
            "no control socket ({}); tend status and friends will not work",
            failed.join("; ")
        ),
    );
    None
}

/// Colour only for a person at a terminal who has not asked for none.
fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && rustix::termios::isatty(rustix::stdio::stdout())
}

/// sd_notify sockets live next to the control socket's directory, not inside it: that one is
/// 0700 and services running as other users must reach their socket (`/run/tend-notify` for
/// the default `/run/tend/control.sock`).
fn notify_dir(socket: &std::path::Path) -> PathBuf {
    match socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => PathBuf::from(format!("{}-notify", dir.display())),
        None => PathBuf::from("tend-notify"),
    }
}
