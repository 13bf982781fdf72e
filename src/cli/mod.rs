//! Entry points: what `main` does with its arguments.

pub mod client;
pub mod commands;
mod connection;
mod manpage;
mod render;
mod socket_place;
pub mod supervise;
mod table;
pub mod tini;
mod top;

use crate::core::{self, MainExit, Spec, Supervisor};
use crate::shell::diagnostics::Logger;
use crate::shell::event_loop::{self, Context};
use crate::sys::{process, signals};
use std::ffi::c_int;
use tini::{Parsed, TiniOptions};

/// `tend version 0.1.0 - git.abc1234`
pub fn version_line() -> String {
    format!(
        "tend version {} - git.{}",
        env!("CARGO_PKG_VERSION"),
        env!("TEND_GIT_HASH")
    )
}

/// The init's stack pages stay touched for its whole life, so what only a client or the
/// supervisor needs (clap, the configuration loader, their large frames) is kept in functions
/// of its own (`#[inline(never)]`), called and returned from before tini mode's loop starts,
/// instead of being inlined into this frame, which stays on the stack under the loop.
pub fn main() -> c_int {
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    // `tend --socket PATH status` is `tend status --socket PATH`.
    match commands::options_before_command(&args) {
        None => {}
        Some(Ok(moved)) => args = moved,
        Some(Err(e)) => return client_usage_error(&e),
    }
    // A client (`tend status`, ...) is an ordinary program: it starts no child and leaves the
    // signal mask alone, so Ctrl-C ends `tend logs -f`. Only these names go to clap; anything
    // else keeps tini's getopt-style command line below.
    if commands::is_client_command(args.first()) {
        return client::main(&args);
    }
    // Invariant 2: signals are blocked before anything else can fork or spawn a thread, and
    // the signalfd exists before the first child, so no signal is ever missed.
    let inherited = match signals::block_all() {
        Ok(i) => i,
        Err(e) => return fatal(format_args!("cannot block signals: {e}")),
    };
    let signal_fd = match signals::SignalFd::new() {
        Ok(fd) => fd,
        Err(e) => return fatal(format_args!("cannot create signalfd: {e}")),
    };
    // Subcommands first; anything else is tini's command line (`tend -- run` runs a
    // program called "run").
    match args.first().and_then(|a| a.to_str()) {
        Some("run") => return supervise::run(&args[1..], inherited, signal_fd),
        Some("check") => return supervise::check(&args[1..]),
        _ => {}
    }
    let env = |name: &str| std::env::var_os(name);
    match tini::parse(args, env) {
        Ok(Parsed::Run(opts)) => run_single(opts, inherited, signal_fd),
        Ok(Parsed::Help) => print_out(tini::usage()),
        Ok(Parsed::Version) => print_out(format!("{}\n", version_line())),
        Ok(Parsed::License) => print_out(
            "tend is licensed under the MIT license or the Apache License 2.0, at your option.\n"
                .into(),
        ),
        Err(e) => tini_usage_error(&e),
    }
}

/// A usage error of the client commands (clap's code), not of tini mode.
#[inline(never)]
#[cold]
fn client_usage_error(e: &str) -> c_int {
    eprintln!("tend: error: {e}");
    2
}

/// Help, version or license on stdout: tini mode's command lines that run nothing.
#[inline(never)]
fn print_out(text: String) -> c_int {
    print!("{text}");
    0
}

/// tini's usage error: the message, then the usage, on stderr, and 1.
#[inline(never)]
#[cold]
fn tini_usage_error(e: &tini::UsageError) -> c_int {
    eprintln!("tend: {e}");
    eprint!("{}", tini::usage());
    1
}

/// tini mode: one child, signals forwarded, its exit code becomes ours.
fn run_single(
    opts: TiniOptions,
    inherited: signals::Inherited,
    signal_fd: signals::SignalFd,
) -> c_int {
    let log = Logger {
        verbosity: opts.verbosity,
        warn_on_reap: opts.warn_on_reap,
    };
    if let Some(sig) = opts.parent_death_signal
        && let Err(e) = process::set_parent_death_signal(sig)
    {
        return fatal(format_args!(
            "cannot set the parent-death signal {sig}: {e}"
        ));
    }
    let is_pid1 = process::getpid().0 == 1;
    if opts.subreaper {
        if let Err(e) = process::become_subreaper() {
            return fatal(format_args!("cannot register as a child subreaper: {e}"));
        }
    } else if !is_pid1 && !process::is_subreaper().unwrap_or(false) {
        // Without this, orphans would go to the real init and never be reaped by us.
        match process::become_subreaper() {
            Ok(()) => log.say(
                core::Level::Info,
                format_args!("not PID 1: registered as a child subreaper so orphans are still reaped"),
            ),
            Err(e) => log.say(
                core::Level::Warn,
                format_args!("not PID 1 and cannot become a subreaper ({e}): orphans will not be reaped by tend"),
            ),
        }
    }
    let main_exit = MainExit {
        remap_to_zero: opts.remap_to_zero,
        stop_descendants: opts.stop_descendants,
    };
    let spec = Spec::single(opts.program, opts.kill_group, main_exit);
    let ctx = Context {
        inherited,
        signals: signal_fd,
        log,
        is_pid1,
        logs: None,
        control: None,
        config_path: None,
        notify_dir: None,
        http: None,
        shm: None,
    };
    match event_loop::run(Supervisor::new(spec), ctx) {
        Ok(code) => c_int::from(code),
        Err(e) => fatal(format_args!("cannot start the event loop: {e}")),
    }
}

/// A setup error: say it and exit 1 (tini's code for its own failures).
fn fatal(msg: std::fmt::Arguments<'_>) -> c_int {
    eprintln!("tend: error: {msg}");
    1
}
