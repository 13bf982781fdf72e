//! `tend import`: what people run today, turned into a tend configuration.
//!
//! Each importer reads its format and describes services with [`emit::Service`]; the result
//! is TOML text for a human to read, check with `tend check` and adjust, plus notes on what
//! could not be carried over or means something slightly different under tend. Nothing is
//! dropped silently: every setting is either translated or named in a note.

mod crontab;
mod emit;
mod procfile;
mod runit;
mod supervisord;

use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Procfile (foreman, honcho, Heroku): `name: command` lines.
    Procfile,
    /// A directory of runit service directories (`/etc/service`), each with a `run` script.
    Runit,
    /// A supervisord configuration file (`[program:x]` sections).
    Supervisord,
    /// A crontab: a user's (`crontab -l`) or the system's (with a user column), told apart
    /// by its path or its lines.
    Crontab,
    /// A crontab with a user column (`/etc/crontab`, `/etc/cron.d/*`), wherever it is.
    CronD,
    /// A crontab without one (`crontab -l`), whatever its lines look like.
    UserCrontab,
}

impl Format {
    pub const NAMES: [&'static str; 6] = [
        "procfile",
        "runit",
        "supervisord",
        "crontab",
        "cron.d",
        "user-crontab",
    ];

    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "procfile" => Some(Format::Procfile),
            "runit" => Some(Format::Runit),
            "supervisord" => Some(Format::Supervisord),
            "crontab" => Some(Format::Crontab),
            "cron.d" => Some(Format::CronD),
            "user-crontab" => Some(Format::UserCrontab),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub struct Imported {
    /// The configuration, as TOML.
    pub toml: String,
    /// What the reader should know: settings not carried over, differences in meaning.
    pub notes: Vec<String>,
}

/// What an import reads of the machine it runs on: supervisord expands `%(ENV_X)s` and
/// `%(host_node_name)s` from its own process when it starts, and the nearest tend import has
/// is its own process. Tests pass a `Host` of their own, so that they do not depend on (or
/// change) the environment they run in.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// Environment variables (those that are not UTF-8 are left out).
    pub env: BTreeMap<String, String>,
    /// The host name, as `uname -n` gives it.
    pub hostname: Option<String>,
    /// The user names of `/etc/passwd` (a crontab whose sixth words are all users has a user
    /// column).
    pub users: Vec<String>,
}

impl Host {
    /// This process's environment and the kernel's host name.
    pub fn current() -> Host {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        // What uname(2) calls the nodename, without needing a system call wrapper.
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        let users = std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(':').next())
            .filter(|u| !u.is_empty() && !u.starts_with('#'))
            .map(str::to_string)
            .collect();
        Host {
            env,
            hostname,
            users,
        }
    }
}

/// What an importer found: the services, settings for `[tend]`, and the notes.
#[derive(Debug, Default)]
struct Parts {
    services: Vec<emit::Service>,
    /// `[tend]` keys, each with its value written as TOML.
    tend: Vec<(&'static str, String)>,
    notes: Vec<String>,
}

/// Reads `path` as `format`. Errors name the file (and line, where there is one).
pub fn import(format: Format, path: &Path) -> Result<Imported, String> {
    import_on(format, path, &Host::current())
}

/// [`import`], with `host` as the machine's environment and host name.
pub fn import_on(format: Format, path: &Path, host: &Host) -> Result<Imported, String> {
    let origin = path.display().to_string();
    let read =
        || std::fs::read_to_string(path).map_err(|e| format!("{origin}: cannot read it: {e}"));
    let parts = match format {
        Format::Procfile => procfile::services(&origin, &read()?)?,
        Format::Supervisord => {
            let source = supervisord::Source {
                path,
                host,
                follow_includes: true,
            };
            supervisord::services(&origin, &read()?, &source)?
        }
        Format::Runit => runit::services(path)?,
        Format::Crontab => crontab::services(&origin, &read()?, crontab::Columns::Detect, host)?,
        Format::CronD => crontab::services(&origin, &read()?, crontab::Columns::WithUser, host)?,
        Format::UserCrontab => {
            crontab::services(&origin, &read()?, crontab::Columns::NoUser, host)?
        }
    };
    finish(format, &origin, parts)
}

/// A Procfile's or a supervisord.conf's text, as if read from `origin` (for fuzzing: the
/// parsers without the file system, so `[include]` is not followed, and with an empty
/// environment; a runit import is a directory, so it is refused).
pub fn import_text(format: Format, origin: &str, text: &str) -> Result<Imported, String> {
    let parts = match format {
        Format::Procfile => procfile::services(origin, text)?,
        Format::Supervisord => {
            let source = supervisord::Source {
                path: Path::new(origin),
                host: &Host::default(),
                follow_includes: false,
            };
            supervisord::services(origin, text, &source)?
        }
        Format::Runit => return Err("a runit import reads a directory".to_string()),
        Format::Crontab => {
            crontab::services(origin, text, crontab::Columns::Detect, &Host::default())?
        }
        Format::CronD => {
            crontab::services(origin, text, crontab::Columns::WithUser, &Host::default())?
        }
        Format::UserCrontab => {
            crontab::services(origin, text, crontab::Columns::NoUser, &Host::default())?
        }
    };
    finish(format, origin, parts)
}

fn finish(format: Format, origin: &str, parts: Parts) -> Result<Imported, String> {
    if parts.services.is_empty() {
        return Err(format!("{origin}: no services found in it"));
    }
    let header = [
        format!(
            "Imported from {origin} ({}) by `tend import`.",
            Format::NAMES[format as usize]
        ),
        "Check it with `tend check FILE` and read the notes tend import printed.".to_string(),
    ];
    Ok(Imported {
        toml: emit::document(&header, &parts.tend, &parts.services),
        notes: parts.notes,
    })
}

/// A service name tend accepts (letters, digits, '.', '_', '-'), made from `raw`.
fn service_name(raw: &str, notes: &mut Vec<String>) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = if name.is_empty() {
        "service".to_string()
    } else {
        name
    };
    if name != raw {
        notes.push(format!(
            "`{raw}` is named `{name}`: tend's names use letters, digits, '.', '_' and '-'"
        ));
    }
    name
}

#[cfg(test)]
mod tests;
