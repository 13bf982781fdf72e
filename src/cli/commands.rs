//! The clap definition of tend's command line: what `tend man` and `tend completions` are
//! generated from, and the parser of the client subcommands.
//!
//! Only the client subcommands are parsed here. `run` and `check` are described (so the man
//! page and completions cover them) but parsed by `supervise.rs`, and the top-level options
//! describe tini mode, which `tini.rs` parses getopt-style: clap never sees a command line
//! whose first argument is not one of [`CLIENT_COMMANDS`].

use clap::{ArgGroup, Args, Parser, Subcommand, ValueHint};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// First arguments that make tend a control client (parsed by clap) instead of an init.
pub const CLIENT_COMMANDS: &[&str] = &[
    "status",
    "top",
    "start",
    "stop",
    "restart",
    "signal",
    "logs",
    "reload",
    "shutdown",
    "health",
    "completions",
    "man",
    "import",
    "schema",
];

/// Whether `tend FIRST ...` is a client command line.
pub fn is_client_command(first: Option<&OsString>) -> bool {
    first
        .and_then(|a| a.to_str())
        .is_some_and(|a| CLIENT_COMMANDS.contains(&a))
}

/// `tend --socket PATH status ...` means `tend status --socket PATH ...`: the options every
/// command that talks to tend accepts ([`Conn`]: `--socket`, `--json`, `--timeout`) may come
/// before the command too. Returns the command line with them moved to just after the
/// command's name, or `None` when it does not start with one of them (tini's command line,
/// where none of them is an option, is never touched). `Err` when no client command follows.
// Not inlined into `cli::main`, whose frame stays under tini mode's loop.
#[inline(never)]
pub fn options_before_command(args: &[OsString]) -> Option<Result<Vec<OsString>, String>> {
    // tini's command lines (`tend -- cmd`, `tend -s cmd`, `tend --stop-descendants cmd`) are
    // told apart without building clap's definition, whose allocations and deep frames the
    // init would otherwise carry for its whole life (the heap and stack pages stay touched).
    let first = args.first()?.to_str()?.strip_prefix("--")?;
    let first = first.split_once('=').map_or(first, |(name, _)| name);
    if first.is_empty() || super::tini::LONG_OPTIONS.contains(&first) {
        return None;
    }
    let conn = Conn::augment_args(clap::Command::new("conn"));
    let mut taken = 0;
    while let Some(arg) = args.get(taken).and_then(|a| a.to_str()) {
        let Some((name, value)) = arg.strip_prefix("--").map(|a| match a.split_once('=') {
            Some((name, _)) => (name, true),
            None => (a, false),
        }) else {
            break;
        };
        let Some(option) = conn.get_arguments().find(|o| o.get_long() == Some(name)) else {
            break;
        };
        taken += if option.get_action().takes_values() && !value {
            2
        } else {
            1
        };
    }
    if taken == 0 {
        return None;
    }
    let Some((command, rest)) = args.get(taken..).and_then(|a| a.split_first()) else {
        return Some(Err(format!(
            "{} must be followed by a command that talks to tend, such as status",
            args.first()?.to_string_lossy()
        )));
    };
    if !is_client_command(Some(command)) {
        return Some(Err(format!(
            "{} must be followed by a command that talks to tend, such as status, not {:?}",
            args.first()?.to_string_lossy(),
            command.to_string_lossy()
        )));
    }
    let mut moved = Vec::with_capacity(args.len());
    moved.push(command.clone());
    moved.extend(args.iter().take(taken).cloned());
    moved.extend(rest.iter().cloned());
    Some(Ok(moved))
}

/// How long a client waits for tend's answer unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const ABOUT: &str = "A container init and process supervisor";

const LONG_ABOUT: &str = "\
A container init and process supervisor.

tend [OPTIONS] PROGRAM [ARGS...] runs PROGRAM as the only child of an init that reaps \
zombies, forwards signals and exits with the child's exit code (128+N if signal N killed \
it): a drop-in for tini, and usable as Docker's --init binary.

tend run FILE supervises the services of a TOML file; the other subcommands talk to a \
running `tend run` over its control socket.";

const EXIT_STATUS: &str = "\
Exit status of the client subcommands:
  0  success
  1  an error: tend could not be reached, it answered with an error, or an operation failed
  2  a usage error
  3  tend status NAME...: a named service is not running";

#[derive(Debug, Parser)]
#[command(
    name = "tend",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXIT_STATUS,
    // tini's --version is described by `TiniArgs`; clap's own would add a -V that tini mode
    // does not have. (clap's -h/--help stays: tini mode has the same flags, and disabling it
    // would disable it in every subcommand too.)
    disable_version_flag = true,
    disable_help_subcommand = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub tini: TiniArgs,
    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// tini mode's options, for the man page and completions only (see the module comment).
#[derive(Debug, Args)]
pub struct TiniArgs {
    /// Register as a child subreaper (automatic when not PID 1); also $TINI_SUBREAPER
    #[arg(short = 's')]
    pub subreaper: bool,
    /// Have the kernel send SIGNAL to tend when its parent dies, e.g. -p SIGKILL
    #[arg(short = 'p', value_name = "SIGNAL")]
    pub parent_death_signal: Option<String>,
    /// More output on stderr; repeat for more (up to -vvv); $TINI_VERBOSITY sets the base
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print a warning for every zombie reaped that tend did not start
    #[arg(short = 'w')]
    pub warn_on_reap: bool,
    /// Forward signals to the child's whole process group; also $TINI_KILL_PROCESS_GROUP
    #[arg(short = 'g')]
    pub kill_group: bool,
    /// Report EXIT_CODE (0-255) as 0; may be repeated
    #[arg(short = 'e', value_name = "EXIT_CODE")]
    pub remap: Vec<u8>,
    /// Print the license and exit
    #[arg(short = 'l')]
    pub license: bool,
    /// When the child exits, SIGTERM what it left behind, SIGKILL it after GRACE (default
    /// 3s), then exit; also $TEND_STOP_DESCENDANTS=GRACE
    #[arg(long, value_name = "GRACE", num_args = 0..=1, require_equals = true)]
    pub stop_descendants: Option<Option<String>>,
    /// Print the version and exit
    #[arg(long)]
    pub version: bool,
    /// The program to run as tend's child, and its arguments
    #[arg(
        value_name = "PROGRAM",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_hint = ValueHint::CommandWithArguments
    )]
    pub program: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Supervise the services of a configuration file
    #[command(
        long_about = "Supervises the services of FILE (default: $TEND_CONFIG, else /etc/tend.toml) \
                      and listens on the control socket that the other subcommands use. \
                      Exits 2 when the file does not load."
    )]
    Run(RunArgs),
    /// Validate a configuration file without starting anything
    #[command(
        long_about = "Validates FILE as tend run would, starts nothing, and prints any warnings. \
                      Exits 2 when the file does not load."
    )]
    Check(CheckArgs),
    /// Show the state of services
    #[command(
        long_about = "Shows each service's state, pid, uptime, CPU time and resident memory \
                      (of its whole process group), restart count and last exit (exit code or \
                      signal), with the reason when the state needs one.",
        after_help = "Exit status: 0 when every named service is running (or, without NAME, \
                      when tend answered); 1 on an error; 3 when a named service is not running."
    )]
    Status(StatusArgs),
    /// Show what each service uses, refreshed every second, busiest first
    #[command(
        long_about = "Shows the services' CPU use over the last second (CPU%: 100 is one whole \
                      CPU), CPU time, resident memory and processes (of each service's whole \
                      process group), busiest first, refreshed every second until interrupted \
                      (Ctrl-C) or until tend goes away (or leaves a request unanswered for 5 s, \
                      whatever --timeout says). The first table shows the CPU use since \
                      each instance started. On a terminal the screen is cleared for each \
                      table; otherwise one table follows another. With --json, each second's \
                      status answer as it came, one per line."
    )]
    Top(TopArgs),
    /// Start stopped services and wait until they run
    Start(ChangeArgs),
    /// Stop services (they stay stopped, whatever their restart policy) and wait until they are down
    Stop(ChangeArgs),
    /// Stop then start services, and wait for the outcome
    Restart(ChangeArgs),
    /// Send a signal to the process groups of services
    // The derived usage would list the required NAME|--all group before SIGNAL.
    #[command(override_usage = "tend signal [OPTIONS] <SIGNAL> <NAME...|--all>")]
    Signal(SignalArgs),
    /// Show the last lines a service wrote, and optionally follow it
    #[command(
        long_about = "Prints the last LINES lines the service wrote to stdout or stderr, as \
                      \"NAME | line\", from tend's in-memory buffer; with --follow, keeps \
                      printing new lines until interrupted or until tend exits."
    )]
    Logs(LogsArgs),
    /// Re-read the configuration file and apply the difference
    #[command(
        long_about = "Re-reads the file tend run was started with: added services start, removed \
                      ones stop, changed ones restart, the others are left alone. A file that \
                      does not load changes nothing, and its error is printed here. SIGHUP to \
                      tend does the same."
    )]
    Reload(Conn),
    /// Shut tend down gracefully, as SIGTERM does
    Shutdown(Conn),
    /// Exit 0 if every critical service runs, is ready and passes its health checks
    #[command(
        long_about = "Exits 0 when every critical service is running and ready and no health check \
                      is failing, 1 otherwise, with a one-line reason: made for Docker's \
                      HEALTHCHECK CMD tend health."
    )]
    Health(Conn),
    /// Print a shell completion script
    #[command(long_about = "Prints a completion script for SHELL, e.g. \
                      `tend completions bash > /etc/bash_completion.d/tend`.")]
    Completions {
        /// bash, elvish, fish, powershell or zsh
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(long_about = "Prints tend(1) in roff, e.g. `tend man | man -l -`.")]
    Man,
    /// Print the JSON Schema of the configuration file, for editors
    #[command(
        long_about = "Prints a JSON Schema (draft 2020-12) of the configuration file that tend \
                      run and tend check load: every key, its type, default and meaning. \
                      Editors that know TOML schemas (taplo, Even Better TOML) complete and \
                      check a file whose first line is `#:schema PATH` pointing at it, e.g. \
                      `tend schema > tend.schema.json` and `#:schema ./tend.schema.json`. The \
                      same schema is docs/tend.schema.json in tend's sources."
    )]
    Schema,
    /// Turn a Procfile, runit service directories, a supervisord.conf or a crontab into a tend file
    #[command(
        long_about = "Reads PATH as FORMAT and prints the equivalent tend configuration on stdout, \
                      and on stderr a note for every setting that could not be carried over or \
                      means something different under tend. FORMAT is procfile (a Procfile), \
                      runit (a service directory with a run script, or a directory of them such \
                      as /etc/service), supervisord (a supervisord.conf), or crontab (a crontab, \
                      one scheduled task per line; a user column is recognised by the path \
                      /etc/crontab or /etc/cron.d/*, or by every line naming a user of this \
                      machine; cron.d and user-crontab say which it is). Nothing is started; \
                      check the result with `tend check`."
    )]
    Import {
        /// procfile, runit, supervisord, crontab, cron.d or user-crontab
        #[arg(value_name = "FORMAT", value_parser = crate::config::import::Format::NAMES)]
        format: String,
        /// The Procfile, service directory, supervisord.conf or crontab
        #[arg(value_name = "PATH", value_hint = ValueHint::AnyPath)]
        path: PathBuf,
    },
}

/// `tend run`: described here, parsed by `supervise::run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// More of tend's own messages (repeatable)
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Errors only
    #[arg(short = 'q')]
    pub quiet: bool,
    /// The configuration file
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: Option<PathBuf>,
}

/// `tend check`: described here, parsed by `supervise::check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
}

/// How to reach tend and how to print its answer; accepted by every client command.
#[derive(Debug, Args)]
pub struct Conn {
    /// The control socket [default: $TEND_SOCKET, else /run/tend/control.sock]
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub socket: Option<PathBuf>,
    /// Print tend's answer as JSON, one object per line as it came, instead of text
    #[arg(long)]
    pub json: bool,
    /// How long to wait for tend's answer (logs --follow waits forever)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Services to show (default: all); the name of a service with `instances` shows each
    /// instance
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Services to show (default: all)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Stop after this many tables
    #[arg(short = 'n', long, value_name = "COUNT")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Services named one by one, or `--all`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("targets").required(true).args(["names", "all"])))]
pub struct Targets {
    /// The services; the name of a service with `instances` means each instance (NAME-3: that
    /// one)
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Every service
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Return as soon as tend has accepted the request, without waiting for the outcome
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// A signal name (TERM, SIGHUP, USR1...), RTMIN+N, or number
    #[arg(value_name = "SIGNAL")]
    pub signal: String,
    #[command(flatten)]
    pub targets: Targets,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service; the name of a service with `instances` shows the lines of every instance,
    /// interleaved
    #[arg(value_name = "NAME")]
    pub name: String,
    /// How many of the last lines to print first
    #[arg(short = 'n', long, value_name = "LINES", default_value_t = 10)]
    pub lines: usize,
    /// Keep printing new lines as they come
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Put the time tend read each line before it (RFC 3339, UTC, to the millisecond)
    #[arg(short = 't', long)]
    pub timestamps: bool,
    #[command(flatten)]
    pub conn: Conn,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 30s, 2m, 500ms)"))
}

/// The whole definition, built (bin names set on subcommands) for man and completions.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    cmd.build();
    // At the top, -h is tini mode's (same flags, its own text). clap adds the flag while
    // building, so it can only be reworded afterwards.
    cmd.mut_arg("help", |a| {
        a.help("Print tini mode's help and exit")
            .long_help("Print tini mode's help and exit")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Sub, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("tend").chain(args.iter().copied()))?;
        Ok(cli.command.unwrap())
    }

    #[test]
    fn the_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_client_command_is_a_subcommand_and_run_check_are_not_client_commands() {
        let cmd = command();
        for name in CLIENT_COMMANDS {
            assert!(cmd.find_subcommand(name).is_some(), "{name}");
        }
        for name in ["run", "check"] {
            assert!(cmd.find_subcommand(name).is_some());
            assert!(!is_client_command(Some(&OsString::from(name))));
        }
        assert!(is_client_command(Some(&OsString::from("status"))));
        assert!(!is_client_command(Some(&OsString::from("--"))));
        assert!(!is_client_command(Some(&OsString::from("sleep"))));
        assert!(!is_client_command(None));
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn connection_options_may_come_before_the_command() {
        let moved = |args: &[&str]| options_before_command(&os(args));
        assert_eq!(
            moved(&["--socket", "/x.sock", "status", "web"]),
            Some(Ok(os(&["status", "--socket", "/x.sock", "web"])))
        );
        assert_eq!(
            moved(&[
                "--json",
                "--socket=/x.sock",
                "--timeout",
                "2s",
                "signal",
                "HUP",
                "a"
            ]),
            Some(Ok(os(&[
                "signal",
                "--json",
                "--socket=/x.sock",
                "--timeout",
                "2s",
                "HUP",
                "a"
            ])))
        );
        // The value of --socket may be a command's name.
        assert_eq!(
            moved(&["--socket", "status", "status"]),
            Some(Ok(os(&["status", "--socket", "status"])))
        );
        let Sub::Status(s) = parse(&["status", "--socket", "/x.sock", "--json", "web"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(s.names, ["web"]);
        assert_eq!(s.conn.socket, Some(PathBuf::from("/x.sock")));
        assert!(s.conn.json);
        // No client command after them.
        for bad in [
            &["--socket", "/x.sock"][..],
            &["--socket"],
            &["--json", "sleep", "1"],
            &["--json", "--", "status"],
            &["--socket", "/x.sock", "run", "tend.toml"],
        ] {
            let err = moved(bad).unwrap().unwrap_err();
            assert!(
                err.contains("must be followed by a command"),
                "{bad:?}: {err}"
            );
        }
    }

    /// tini's command lines never start with a client option: they are left alone.
    #[test]
    fn tini_command_lines_are_not_touched() {
        for args in [
            &["--", "status"][..],
            &["-s", "--", "sleep", "1"],
            &["-g", "--", "sleep", "1"],
            &["-vvv", "--", "sleep", "1"],
            &["--stop-descendants=1s", "sleep", "1"],
            &["--version"],
            &["--help"],
            &["-h"],
            &["sleep", "--json"],
            &["status", "--socket", "/x"],
            &[],
        ] {
            assert_eq!(options_before_command(&os(args)), None, "{args:?}");
        }
        // tini's long options are told apart before clap is built: none may be a client's.
        let conn = Conn::augment_args(clap::Command::new("conn"));
        for option in conn.get_arguments().filter_map(|o| o.get_long()) {
            assert!(
                !super::super::tini::LONG_OPTIONS.contains(&option),
                "{option}"
            );
        }
    }

    #[test]
    fn status_takes_names_and_connection_options() {
        let Sub::Status(s) = parse(&[
            "status",
            "web",
            "db",
            "--json",
            "--socket",
            "/x.sock",
            "--timeout",
            "2s",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(s.names, ["web", "db"]);
        assert!(s.conn.json);
        assert_eq!(s.conn.socket, Some(PathBuf::from("/x.sock")));
        assert_eq!(s.conn.timeout, Duration::from_secs(2));
        let Sub::Status(s) = parse(&["status"]).unwrap() else {
            panic!()
        };
        assert!(s.names.is_empty() && !s.conn.json && s.conn.socket.is_none());
        assert_eq!(s.conn.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn top_takes_names_and_a_count() {
        let Sub::Top(t) = parse(&["top"]).unwrap() else {
            panic!()
        };
        assert!(t.names.is_empty() && t.count.is_none());
        let Sub::Top(t) = parse(&["top", "web", "-n", "3", "--json"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.names, t.count, t.conn.json),
            (vec!["web".into()], Some(3), true)
        );
        assert!(parse(&["top", "-n", "x"]).is_err());
    }

    #[test]
    fn start_stop_restart_need_names_or_all_but_not_both() {
        for verb in ["start", "stop", "restart"] {
            let Ok(Sub::Start(a) | Sub::Stop(a) | Sub::Restart(a)) = parse(&[verb, "--all"]) else {
                panic!("{verb} --all")
            };
            assert!(a.targets.all && a.targets.names.is_empty() && !a.no_wait);
            let Ok(Sub::Start(a) | Sub::Stop(a) | Sub::Restart(a)) =
                parse(&[verb, "a", "b", "--no-wait"])
            else {
                panic!("{verb} a b")
            };
            assert_eq!(a.targets.names, ["a", "b"]);
            assert!(a.no_wait && !a.targets.all);
            assert!(parse(&[verb]).is_err(), "{verb} with no target");
            assert!(parse(&[verb, "a", "--all"]).is_err(), "{verb} a --all");
        }
    }

    #[test]
    fn signal_takes_a_signal_then_targets() {
        let Sub::Signal(s) = parse(&["signal", "USR1", "web"]).unwrap() else {
            panic!()
        };
        assert_eq!(s.signal, "USR1");
        assert_eq!(s.targets.names, ["web"]);
        let Sub::Signal(s) = parse(&["signal", "HUP", "--all"]).unwrap() else {
            panic!()
        };
        assert!(s.targets.all);
        assert!(parse(&["signal", "HUP"]).is_err());
    }

    #[test]
    fn logs_defaults_to_ten_lines() {
        let Sub::Logs(l) = parse(&["logs", "web"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.name.as_str(), l.lines, l.follow, l.timestamps),
            ("web", 10, false, false)
        );
        let Sub::Logs(l) = parse(&["logs", "web", "-n", "3", "-f", "-t"]).unwrap() else {
            panic!()
        };
        assert_eq!((l.lines, l.follow, l.timestamps), (3, true, true));
        let Sub::Logs(l) = parse(&["logs", "--timestamps", "web"]).unwrap() else {
            panic!()
        };
        assert!(l.timestamps);
        assert!(parse(&["logs"]).is_err());
        assert!(parse(&["logs", "a", "b"]).is_err());
        assert!(parse(&["logs", "a", "-n", "x"]).is_err());
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        assert_eq!(parse(&["status", "--bogus"]).unwrap_err().exit_code(), 2);
        assert_eq!(
            parse(&["status", "--timeout", "soon"])
                .unwrap_err()
                .exit_code(),
            2
        );
        assert_eq!(parse(&["status", "--help"]).unwrap_err().exit_code(), 0);
        assert_eq!(parse(&["completions", "tcsh"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn status_help_documents_the_exit_codes() {
        let mut cmd = command();
        let status = cmd.find_subcommand_mut("status").unwrap();
        let help = status.render_long_help().to_string();
        assert!(
            help.contains("3 when a named service is not running"),
            "{help}"
        );
        assert!(help.contains("--socket"), "{help}");
    }
}
