//! tini's command line, flag for flag, so `tend` can replace `tini` in an ENTRYPOINT and serve
//! as Docker's `--init` binary. Parsing is getopt-style and stops at the first non-option (or
//! after `--`): everything from there on belongs to the child.

use crate::core::{ExitCodeSet, Signal};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TiniOptions {
    /// `-s` / TINI_SUBREAPER
    pub subreaper: bool,
    /// `-p SIGNAL`
    pub parent_death_signal: Option<Signal>,
    /// 1 by default (errors and warnings); TINI_VERBOSITY sets the base, each `-v` adds one.
    pub verbosity: u8,
    /// `-w`
    pub warn_on_reap: bool,
    /// `-g` / TINI_KILL_PROCESS_GROUP
    pub kill_group: bool,
    /// `-e CODE`, repeatable
    pub remap_to_zero: ExitCodeSet,
    /// `--stop-descendants[=GRACE]` / TEND_STOP_DESCENDANTS=GRACE (tend's own, off by default)
    pub stop_descendants: Option<Duration>,
    pub program: Vec<OsString>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(TiniOptions),
    Help,
    Version,
    License,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// tini mode's long options (without their `--`).
pub const LONG_OPTIONS: &[&str] = &["version", "help", "stop-descendants"];

/// Grace period of `--stop-descendants` when no value is given.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(3);

/// Takes the command line by value: what follows the options becomes the child's argv in
/// place (the strings and the vector are not copied; the init's heap keeps its high-water).
pub fn parse(
    mut args: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Parsed, UsageError> {
    let mut opts = TiniOptions {
        subreaper: env("TINI_SUBREAPER").is_some(),
        parent_death_signal: None,
        // tini reads this with atoi(): junk counts as 0.
        verbosity: env("TINI_VERBOSITY")
            .map(|v| v.to_string_lossy().trim().parse::<u8>().unwrap_or(0))
            .unwrap_or(1),
        warn_on_reap: false,
        kill_group: env("TINI_KILL_PROCESS_GROUP").is_some(),
        remap_to_zero: ExitCodeSet::default(),
        stop_descendants: match env("TEND_STOP_DESCENDANTS") {
            Some(v) => Some(parse_grace(&v.to_string_lossy())?),
            None => None,
        },
        program: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let Some(arg) = args[i].to_str() else { break };
        if arg == "--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                None if long == "version" => return Ok(Parsed::Version),
                None if long == "help" => return Ok(Parsed::Help),
                None if long == "stop-descendants" => {
                    opts.stop_descendants = Some(DEFAULT_STOP_GRACE)
                }
                Some(("stop-descendants", v)) => opts.stop_descendants = Some(parse_grace(v)?),
                _ => return Err(UsageError(format!("unrecognized option '{arg}'"))),
            }
            i += 1;
            continue;
        }
        let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) else {
            break;
        };
        for (at, c) in cluster.char_indices() {
            match c {
                's' => opts.subreaper = true,
                'v' => opts.verbosity = opts.verbosity.saturating_add(1),
                'w' => opts.warn_on_reap = true,
                'g' => opts.kill_group = true,
                'h' => return Ok(Parsed::Help),
                'l' => return Ok(Parsed::License),
                'p' | 'e' => {
                    let attached = &cluster[at + c.len_utf8()..];
                    let value = if !attached.is_empty() {
                        attached.to_string()
                    } else {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.to_string_lossy().into_owned(),
                            None => {
                                return Err(UsageError(format!(
                                    "option requires an argument -- '{c}'"
                                )));
                            }
                        }
                    };
                    if c == 'p' {
                        let sig = Signal::parse(&value).ok_or_else(|| {
                            UsageError(format!("invalid signal '{value}' for -p"))
                        })?;
                        opts.parent_death_signal = Some(sig);
                    } else {
                        let code = value.trim().parse::<u8>().map_err(|_| {
                            UsageError(format!(
                                "EXIT_CODE must be 0 <= EXIT_CODE <= 255, got '{value}'"
                            ))
                        })?;
                        opts.remap_to_zero.insert(code);
                    }
                    break;
                }
                other => return Err(UsageError(format!("invalid option -- '{other}'"))),
            }
        }
        i += 1;
    }
    args.drain(..i);
    opts.program = args;
    if opts.program.is_empty() || opts.program[0] == OsStr::new("") {
        return Err(UsageError("no program to run".into()));
    }
    Ok(Parsed::Run(opts))
}

/// `3s`, `500ms`, or a plain number of seconds.
fn parse_grace(text: &str) -> Result<Duration, UsageError> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(t)
        .map_err(|e| UsageError(format!("invalid grace period '{text}': {e}")))
}

pub fn usage() -> String {
    format!(
        "{version}
Usage: tend [OPTIONS] [--] PROGRAM [ARGS...]
       tend COMMAND [ARGS...]
       tend --version

Runs PROGRAM as the child of an init that reaps zombies, forwards signals and
exits with the child's exit code (128+N if signal N killed it): a drop-in for
tini. The commands supervise services from a TOML file and talk to them.

Commands (`tend COMMAND --help` for more):
{commands}
The commands that talk to tend take --socket PATH, --json and --timeout DURATION
before COMMAND too: `tend --socket PATH status` is `tend status --socket PATH`.

Options:
  --version          Print the version and exit.
  -h, --help         Print this help and exit.
  -s                 Register as a child subreaper (automatic when not PID 1).
  -p SIGNAL          Have the kernel send SIGNAL to tend when its parent dies,
                     e.g. -p SIGKILL.
  -v                 More output on stderr; repeat for more (up to -vvv).
  -w                 Print a warning for every zombie reaped that tend did not
                     start.
  -g                 Forward signals to the child's whole process group.
  -e EXIT_CODE       Report EXIT_CODE (0-255) as 0. May be repeated.
  -l                 Print the license and exit.
  --stop-descendants[=GRACE]
                     When the child exits, SIGTERM the processes it left
                     behind, wait up to GRACE (default 3s) for them, SIGKILL
                     the rest, reap them, then exit.

Environment:
  TINI_SUBREAPER           Set: same as -s.
  TINI_VERBOSITY=N         Base verbosity (default 1).
  TINI_KILL_PROCESS_GROUP  Set: same as -g.
  TEND_STOP_DESCENDANTS=GRACE  Same as --stop-descendants=GRACE.
",
        version = super::version_line(),
        commands = commands()
    )
}

/// One line per subcommand of the clap definition (so none can be left out), with its
/// summary wrapped to 80 columns.
fn commands() -> String {
    const WIDTH: usize = 80;
    let cmd = super::commands::command();
    let subs: Vec<_> = cmd.get_subcommands().collect();
    let column = 2 + subs.iter().map(|s| s.get_name().len()).max().unwrap_or(0) + 2;
    let mut out = String::new();
    for sub in subs {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        let mut line = format!("  {:width$}", sub.get_name(), width = column - 2);
        let mut empty = true;
        for word in about.split_whitespace() {
            if !empty && line.len() + 1 + word.len() > WIDTH {
                out.push_str(&line);
                out.push('\n');
                line = " ".repeat(column);
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn run(args: &[&str]) -> TiniOptions {
        match parse(os(args), |_| None) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_program() {
        let o = run(&["--", "sleep", "-v", "5"]);
        assert_eq!(o.program, os(&["sleep", "-v", "5"]));
        assert_eq!(o.verbosity, 1);
        assert!(!o.subreaper && !o.kill_group && !o.warn_on_reap);
        assert_eq!(o.stop_descendants, None);
    }

    #[test]
    fn stops_at_first_non_option() {
        let o = run(&["-v", "sleep", "-g"]);
        assert_eq!(o.program, os(&["sleep", "-g"]));
        assert!(!o.kill_group);
        assert_eq!(o.verbosity, 2);
    }

    #[test]
    fn clustered_and_attached_values() {
        let o = run(&["-svvwg", "-e143", "-e", "1", "-pSIGKILL", "--", "x"]);
        assert!(o.subreaper && o.warn_on_reap && o.kill_group);
        assert_eq!(o.verbosity, 3);
        assert!(o.remap_to_zero.contains(143) && o.remap_to_zero.contains(1));
        assert!(!o.remap_to_zero.contains(0));
        assert_eq!(o.parent_death_signal, Some(Signal::KILL));
        let o = run(&["-p", "TERM", "-ve", "2", "x"]);
        assert_eq!(o.parent_death_signal, Some(Signal::TERM));
        assert!(o.remap_to_zero.contains(2));
    }

    #[test]
    fn environment_variables() {
        let env = |k: &str| match k {
            "TINI_SUBREAPER" => Some(OsString::new()),
            "TINI_VERBOSITY" => Some(OsString::from("3")),
            "TINI_KILL_PROCESS_GROUP" => Some(OsString::from("1")),
            "TEND_STOP_DESCENDANTS" => Some(OsString::from("250ms")),
            _ => None,
        };
        let Ok(Parsed::Run(o)) = parse(os(&["-v", "--", "x"]), env) else {
            panic!()
        };
        assert!(o.subreaper && o.kill_group);
        assert_eq!(o.verbosity, 4);
        assert_eq!(o.stop_descendants, Some(Duration::from_millis(250)));
        let junk = |k: &str| (k == "TINI_VERBOSITY").then(|| OsString::from("lots"));
        let Ok(Parsed::Run(o)) = parse(os(&["x"]), junk) else {
            panic!()
        };
        assert_eq!(o.verbosity, 0);
    }

    #[test]
    fn informational_flags() {
        assert_eq!(parse(os(&["--version"]), |_| None), Ok(Parsed::Version));
        assert_eq!(parse(os(&["-h"]), |_| None), Ok(Parsed::Help));
        assert_eq!(parse(os(&["--help"]), |_| None), Ok(Parsed::Help));
        assert_eq!(parse(os(&["-l"]), |_| None), Ok(Parsed::License));
    }

    #[test]
    fn stop_descendants_values() {
        assert_eq!(
            run(&["--stop-descendants", "x"]).stop_descendants,
            Some(DEFAULT_STOP_GRACE)
        );
        assert_eq!(
            run(&["--stop-descendants=1.5", "x"]).stop_descendants,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            run(&["--stop-descendants=200ms", "x"]).stop_descendants,
            Some(Duration::from_millis(200))
        );
    }

    /// A user coming from tini or supervisord finds every subcommand in `tend --help`.
    #[test]
    fn the_help_lists_every_command() {
        let help = usage();
        for sub in super::super::commands::command().get_subcommands() {
            let name = sub.get_name();
            assert!(
                help.lines().any(|l| l
                    .strip_prefix("  ")
                    .and_then(|l| l.strip_prefix(name))
                    .is_some_and(|rest| rest.starts_with("  "))),
                "{name} missing:\n{help}"
            );
        }
        for line in help.lines() {
            assert!(line.chars().count() <= 80, "too long: {line}");
        }
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &[][..],
            &["--"],
            &["-v"],
            &["-x", "sleep"],
            &["-e"],
            &["-e", "256", "x"],
            &["-e", "-1", "x"],
            &["-p", "NOPE", "x"],
            &["--frobnicate", "x"],
            &["--stop-descendants=soon", "x"],
        ] {
            assert!(parse(os(bad), |_| None).is_err(), "{bad:?}");
        }
    }
}
