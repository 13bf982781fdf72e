//! `tend man`: one page, tend(1), generated from the clap definition so it cannot drift from
//! what the binary accepts. clap_mangen renders the top (tini mode); every subcommand gets a
//! subsection of COMMANDS here, since a container image ships one binary, not one page per
//! subcommand.

use super::commands;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};
use std::io::{self, Write};

const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "tini mode",
        "the child's exit code: 128+N if signal N killed it, 127 if PROGRAM was not found, 126 \
         if it could not be run, 0 for a code given with -e; 1 on a usage error or when tend \
         itself failed",
    ),
    (
        "tend run",
        "0 after a graceful shutdown, or when every service ended successfully; the exit code \
         of a critical service that ended for good (128+N if signal N killed it, 127 or 126 if \
         it could not be started, 1 if it failed with exit code 0); 1 on a usage error or when \
         tend cannot start: no log pipes, an http address that cannot be bound, or a \
         [tend.shm] file that cannot be restored (refused rather than let the next save \
         overwrite it); 1 in place of 0 when the [tend.shm] segments cannot be saved at exit; \
         2 when the configuration does not load",
    ),
    (
        "tend check",
        "0 when the file loads, 2 when it does not, 1 on a usage error",
    ),
    (
        "client commands",
        "0 on success; 1 when tend cannot be reached, answers with an error, or an operation \
         failed (tend health: tend is not healthy; tend import: PATH cannot be read or \
         converted); 2 on a usage error; 3 from tend status NAME... when a named service is \
         not running",
    ),
];

const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "TEND_SOCKET",
        "The control socket for client commands when --socket is not given.",
    ),
    (
        "TEND_CONFIG",
        "The configuration file of tend run when FILE is not given.",
    ),
    (
        "TINI_SUBREAPER, TINI_VERBOSITY, TINI_KILL_PROCESS_GROUP, TEND_STOP_DESCENDANTS",
        "tini mode: the same as -s, the base verbosity, -g and --stop-descendants=GRACE.",
    ),
    (
        "NO_COLOR",
        "Set and not empty: tend run writes service output without colour.",
    ),
];

const FILES: &[(&str, &str)] = &[
    (
        "/etc/tend.toml",
        "The configuration file of tend run by default.",
    ),
    (
        crate::config::DEFAULT_SOCKET,
        "The control socket by default ([tend] socket in the configuration file). Only root \
         may use it.",
    ),
];

/// Forms listed under SYNOPSIS (the derived one would mix tini's options with subcommands).
const SYNOPSIS: &str = "\
tend [-s] [-p SIGNAL] [-v]... [-w] [-g] [-e EXIT_CODE]... [--stop-descendants[=GRACE]] [--] PROGRAM [ARGS]...
tend run [-v|-q] [FILE]
tend check FILE
tend [--socket PATH] [--json] [--timeout DURATION] status|start|stop|restart|signal|logs|reload|shutdown|health [OPTIONS] ...
tend import FORMAT PATH
tend schema
tend completions SHELL
tend man";

/// One of clap_mangen's section renderers.
type Part = fn(&Man, &mut dyn Write) -> io::Result<()>;

pub fn write(w: &mut dyn Write) -> io::Result<()> {
    let cmd = commands::command().override_usage(SYNOPSIS);
    let man = Man::new(cmd.clone());
    // Each part rendered on its own starts with the same preamble (roff's apostrophe
    // handling); the page needs it once.
    let preamble = Roff::new().render();
    let mut page = preamble.clone().into_bytes();
    let parts: [Part; 5] = [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ];
    for part in parts {
        let mut out = Vec::new();
        part(&man, &mut out)?;
        page.extend_from_slice(out.strip_prefix(preamble.as_bytes()).unwrap_or(&out));
    }
    w.write_all(&page)?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands() {
        subcommand(&mut roff, sub);
    }
    list(&mut roff, "EXIT STATUS", EXIT_STATUS);
    list(&mut roff, "ENVIRONMENT", ENVIRONMENT);
    list(&mut roff, "FILES", FILES);
    let mut out = Vec::new();
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    let tail = String::from_utf8_lossy(&out).replace(&preamble, "");
    w.write_all(tail.as_bytes())
}

/// `.SS tend status [OPTIONS] [NAME]...`, its description, then its arguments.
fn subcommand(roff: &mut Roff, sub: &clap::Command) {
    let usage = sub.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage).trim();
    roff.control("SS", [usage]);
    if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
        roff.text([roman(about.to_string())]);
    }
    if let Some(after) = sub.get_after_help() {
        roff.control("PP", []);
        roff.text([roman(after.to_string())]);
    }
    let args = sub
        .get_arguments()
        .filter(|a| !a.is_hide_set() && a.get_id() != "help");
    for arg in args {
        roff.control("TP", []);
        roff.text(arg_header(arg));
        let mut text = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        // Flags "default" to false, which says nothing.
        let defaults = arg.get_default_values();
        if arg.get_action().takes_values() && !defaults.is_empty() {
            let defaults: Vec<_> = defaults.iter().map(|d| d.to_string_lossy()).collect();
            text.push_str(&format!(" [default: {}]", defaults.join(", ")));
        }
        roff.text([roman(text.trim_start())]);
    }
}

/// `-n, --lines LINES` in bold and italics, or `NAME` for a positional.
fn arg_header(arg: &clap::Arg) -> Vec<clap_mangen::roff::Inline> {
    let value = arg
        .get_value_names()
        .map(|v| v.join(" "))
        .unwrap_or_else(|| arg.get_id().to_string());
    if arg.is_positional() {
        return vec![italic(value)];
    }
    let mut out = Vec::new();
    if let Some(short) = arg.get_short() {
        out.push(bold(format!("-{short}")));
    }
    if let Some(long) = arg.get_long() {
        if !out.is_empty() {
            out.push(roman(", "));
        }
        out.push(bold(format!("--{long}")));
    }
    if arg.get_action().takes_values() {
        out.push(roman(" "));
        out.push(italic(value));
    }
    out
}

fn list(roff: &mut Roff, heading: &str, items: &[(&str, &str)]) {
    roff.control("SH", [heading]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_covers_every_subcommand() {
        let mut out = Vec::new();
        super::write(&mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        let preamble = super::Roff::new().render();
        assert!(
            page.strip_prefix(&preamble)
                .unwrap()
                .starts_with(".TH tend 1"),
            "{page}"
        );
        assert_eq!(page.matches(&preamble).count(), 1, "{page}");
        for sub in super::commands::command().get_subcommands() {
            let heading = format!(".SS \"tend {}", sub.get_name());
            assert!(page.contains(&heading), "{heading} missing");
            let name = sub.get_name();
            assert!(
                super::SYNOPSIS
                    .lines()
                    .any(|l| l.split([' ', '|']).any(|w| w == name)),
                "{name} missing from SYNOPSIS"
            );
        }
        for text in ["TEND_SOCKET", "\\-\\-no\\-wait", "EXIT STATUS", "PROGRAM"] {
            assert!(page.contains(text), "{text} missing");
        }
    }

    /// Every exit code tend uses is in EXIT STATUS, each with the mode that uses it.
    #[test]
    fn exit_status_lists_every_code() {
        let text = |term: &str| {
            super::EXIT_STATUS
                .iter()
                .find(|(t, _)| *t == term)
                .map(|(_, text)| *text)
                .unwrap_or_else(|| panic!("{term} missing"))
        };
        let tini = text("tini mode");
        for code in ["128+N", "127", "126", "-e", "1 on a usage error"] {
            assert!(tini.contains(code), "tini mode: {code} missing");
        }
        let run = text("tend run");
        for code in [
            "0 after a graceful shutdown",
            "critical service",
            "128+N",
            "127 or 126",
            "1 on a usage error",
            "[tend.shm] file that cannot be restored",
            "1 in place of 0 when the [tend.shm] segments cannot be saved",
            "2 when the configuration does not load",
        ] {
            assert!(run.contains(code), "tend run: {code} missing");
        }
        assert_eq!(
            super::super::supervise::CONFIG_ERROR,
            2,
            "the page says 2 for a configuration that does not load"
        );
        let check = text("tend check");
        for code in ["0 when", "2 when", "1 on a usage error"] {
            assert!(check.contains(code), "tend check: {code} missing");
        }
        let client = text("client commands");
        for code in [
            "0 on success",
            "1 when",
            "tend health",
            "2 on a usage",
            "3 from",
        ] {
            assert!(client.contains(code), "client commands: {code} missing");
        }
    }
}
