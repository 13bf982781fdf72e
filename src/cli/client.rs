//! The client subcommands (`tend status`, `tend stop web`, ...): parse with clap, send one
//! request over the control socket, print the answer, exit with what it means.
//!
//! Runs before tend blocks any signal (see `cli::main`): a client is an ordinary program,
//! which Ctrl-C interrupts and a closed pipe ends.

use super::commands::{ChangeArgs, Cli, Conn, LogsArgs, SignalArgs, StatusArgs, Sub, Targets};
use super::connection::{self, Connection};
use super::{manpage, render};
use crate::proto::{self, Command, Request, Response};
use clap::Parser;
use std::ffi::{OsString, c_int};
use std::io::Write;

/// `args` are tend's arguments without the program name, the first being a client command.
// Not inlined into `cli::main`, whose frame stays under tini mode's loop.
#[inline(never)]
pub fn main(args: &[OsString]) -> c_int {
    let argv = std::iter::once(OsString::from("tend")).chain(args.iter().cloned());
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            // --help goes to stdout with 0, a usage error to stderr with 2.
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Some(sub) => execute(sub),
        None => Err("no command given".to_string()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("tend: error: {message}");
            1
        }
    }
}

fn execute(sub: Sub) -> Result<c_int, String> {
    match sub {
        Sub::Status(a) => status(a),
        Sub::Top(a) => super::top::run(a),
        Sub::Start(a) => change(a, "start", |targets, wait| Command::Start { targets, wait }),
        Sub::Stop(a) => change(a, "stop", |targets, wait| Command::Stop { targets, wait }),
        Sub::Restart(a) => change(a, "restart", |targets, wait| Command::Restart {
            targets,
            wait,
        }),
        Sub::Signal(a) => signal(a),
        Sub::Logs(a) => logs(a),
        Sub::Reload(conn) => reload(conn),
        Sub::Shutdown(conn) => shutdown(conn),
        Sub::Health(conn) => health(conn),
        Sub::Completions { shell } => {
            let mut cmd = super::commands::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "tend", &mut out);
            print(&String::from_utf8_lossy(&out))?;
            Ok(0)
        }
        Sub::Import { format, path } => {
            let format = crate::config::import::Format::from_name(&format)
                .ok_or_else(|| format!("unknown format {format:?}"))?;
            let imported = crate::config::import::import(format, &path)?;
            print(&imported.toml)?;
            for note in &imported.notes {
                eprintln!("tend import: note: {note}");
            }
            Ok(0)
        }
        Sub::Schema => {
            print(crate::config::JSON_SCHEMA)?;
            Ok(0)
        }
        Sub::Man => {
            let mut out = Vec::new();
            manpage::write(&mut out).map_err(|e| format!("cannot render the man page: {e}"))?;
            print(&String::from_utf8_lossy(&out))?;
            Ok(0)
        }
        // `cli::main` hands these to `supervise` before clap sees them (they need tend's
        // signal setup); clap only describes them.
        Sub::Run(_) | Sub::Check(_) => Err("run and check are not client commands".to_string()),
    }
}

/// Connects to the socket `conn` designates and sends `command`.
pub(super) fn request(conn: &Conn, command: Command, follow: bool) -> Result<Connection, String> {
    let path = connection::socket_path(conn.socket.as_deref(), |n| std::env::var_os(n));
    let mut c = Connection::open(&path, (!follow).then_some(conn.timeout))?;
    c.send(&Request::new(command))?;
    Ok(c)
}

/// The first answer; an `Error` answer becomes the client's error (and, with --json, is
/// printed as it came too).
pub(super) fn answer(c: &mut Connection, json: bool) -> Result<(String, Response), String> {
    let (raw, response) = c.answer()?;
    if let Response::Error { message } = response {
        if json {
            print(&format!("{raw}\n"))?;
        }
        return Err(message);
    }
    Ok((raw, response))
}

pub(super) fn unexpected(raw: &str) -> String {
    format!("unexpected answer from tend: {raw}")
}

fn status(a: StatusArgs) -> Result<c_int, String> {
    let command = Command::Status {
        services: a.names.clone(),
    };
    let mut c = request(&a.conn, command, false)?;
    let (raw, response) = answer(&mut c, a.conn.json)?;
    let Response::Status(report) = response else {
        return Err(unexpected(&raw));
    };
    if a.conn.json {
        print(&format!("{raw}\n"))?;
    } else {
        print(&render::status(&report))?;
    }
    Ok(render::status_code(&report, &a.names))
}

fn targets(t: Targets) -> proto::Targets {
    proto::Targets {
        services: t.names,
        all: t.all,
    }
}

/// start, stop, restart: one line per service once the outcome is known, or at once with
/// --no-wait.
fn change(
    a: ChangeArgs,
    verb: &str,
    command: impl FnOnce(proto::Targets, bool) -> Command,
) -> Result<c_int, String> {
    let what = if a.targets.all {
        "all services".to_string()
    } else {
        a.targets.names.join(", ")
    };
    let mut c = request(&a.conn, command(targets(a.targets), !a.no_wait), false)?;
    let (raw, response) = answer(&mut c, a.conn.json)?;
    if a.conn.json {
        print(&format!("{raw}\n"))?;
    }
    match response {
        Response::Done { results } => {
            let (text, ok) = render::done(&results);
            if !a.conn.json {
                print(&text)?;
            }
            Ok(if ok { 0 } else { 1 })
        }
        Response::Accepted if a.no_wait => {
            if !a.conn.json {
                print(&format!("{verb} requested: {what}\n"))?;
            }
            Ok(0)
        }
        _ => Err(unexpected(&raw)),
    }
}

fn signal(a: SignalArgs) -> Result<c_int, String> {
    let command = Command::Signal {
        signal: a.signal,
        targets: targets(a.targets),
    };
    let mut c = request(&a.conn, command, false)?;
    let (raw, response) = answer(&mut c, a.conn.json)?;
    let Response::Done { results } = response else {
        return Err(unexpected(&raw));
    };
    let (text, ok) = render::done(&results);
    print(&if a.conn.json {
        format!("{raw}\n")
    } else {
        text
    })?;
    Ok(if ok { 0 } else { 1 })
}

/// The backlog, then (with --follow) every new line until tend closes the connection.
fn logs(a: LogsArgs) -> Result<c_int, String> {
    let command = Command::Logs {
        service: a.name,
        lines: a.lines,
        follow: a.follow,
    };
    let mut c = request(&a.conn, command, a.follow)?;
    let (raw, response) = answer(&mut c, a.conn.json)?;
    let Response::Logs { lines, .. } = response else {
        return Err(unexpected(&raw));
    };
    if a.conn.json {
        print(&format!("{raw}\n"))?;
    } else {
        let text: String = lines
            .iter()
            .map(|l| render::log_line(l, a.timestamps))
            .collect();
        print(&text)?;
    }
    if !a.follow {
        return Ok(0);
    }
    // Lines that arrived together are printed together: one write per batch, not per line,
    // so a follower keeps up with a busy service; none waits once nothing more has come.
    let mut text = String::new();
    while let Some((raw, response)) = c.receive()? {
        match response {
            Response::LogLine(line) if !a.conn.json => {
                text.push_str(&render::log_line(&line, a.timestamps))
            }
            Response::LogLine(_) => {
                text.push_str(&raw);
                text.push('\n');
            }
            Response::Error { message } => {
                print(&text)?;
                return Err(message);
            }
            _ => {
                print(&text)?;
                return Err(unexpected(&raw));
            }
        }
        if !c.has_more() || text.len() >= 64 * 1024 {
            print(&text)?;
            text.clear();
        }
    }
    print(&text)?;
    Ok(0)
}

fn reload(conn: Conn) -> Result<c_int, String> {
    let mut c = request(&conn, Command::Reload, false)?;
    let (raw, response) = answer(&mut c, conn.json)?;
    let Response::Reloaded(report) = response else {
        return Err(unexpected(&raw));
    };
    print(&if conn.json {
        format!("{raw}\n")
    } else {
        render::reload(&report)
    })?;
    Ok(0)
}

fn shutdown(conn: Conn) -> Result<c_int, String> {
    // As PID 1, tend ends a shutdown by sending SIGTERM to every process left in its pid
    // namespace, and a client run with `docker exec` is one of them: it must live to report.
    // Blocked, the signal stays pending and dies with this process a moment later.
    if let Err(e) = crate::sys::signals::block_all() {
        return Err(format!("cannot block signals: {e}"));
    }
    let mut c = request(&conn, Command::Shutdown, false)?;
    let (raw, response) = answer(&mut c, conn.json)?;
    let Response::Accepted = response else {
        return Err(unexpected(&raw));
    };
    print(&if conn.json {
        format!("{raw}\n")
    } else {
        "shutdown started\n".to_string()
    })?;
    Ok(0)
}

fn health(conn: Conn) -> Result<c_int, String> {
    let mut c = request(&conn, Command::Health, false)?;
    let (raw, response) = answer(&mut c, conn.json)?;
    let Response::Health { ok, reason } = response else {
        return Err(unexpected(&raw));
    };
    print(&if conn.json {
        format!("{raw}\n")
    } else {
        format!("{reason}\n")
    })?;
    Ok(if ok { 0 } else { 1 })
}

/// Writes to stdout and flushes, so followed log lines show up as they come.
pub(super) fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}
