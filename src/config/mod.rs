//! The configuration file: TOML in, a validated [`Spec`] plus tend's own [`Settings`] out,
//! or one precise error that names file, line and column.
//!
//! Loading is all-or-nothing and has no side effects beyond reading files (the config, an
//! `env-file`, `passwd` and `group`): a bad file, at start or on reload, leaves whatever is
//! running untouched. The keys are documented in docs/config.md.
//!
//! - `schema`: serde structs, the shape of the file (unknown keys and wrong types);
//! - `context`: what every part of the conversion shares (where the file came from, the
//!   warnings so far, errors that point into the file);
//! - `convert` and `launch`: meaning (values, defaults, cross-checks) into `core::spec`;
//! - `instances`: `instances = N` and the `{instance}` placeholder;
//! - `depends`: `depends-on` resolved, and the dependency graph checked as a whole;
//! - `probes`: `ready` and `health`;
//! - `words`, `envfile`, `users`, `duration`, `size`, `address`: the small languages inside
//!   values;
//! - `error`: spans into `FILE:LINE:COLUMN` and the rendered excerpt;
//! - `json_schema`: the same keys as a JSON Schema for editors (`tend schema`).

mod address;
mod context;
mod convert;
pub mod cron;
mod depends;
mod duration;
mod envfile;
mod error;
pub mod import;
mod instances;
mod json_schema;
mod launch;
mod probes;
mod schema;
mod size;
mod users;
mod words;
mod zone;

#[cfg(test)]
mod instances_tests;
#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use json_schema::CHECKED_IN as JSON_SCHEMA;

use crate::core::spec::Spec;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where the control socket lives unless `[tend] socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/tend/control.sock";

/// A configuration that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub spec: Spec,
    pub settings: Settings,
    /// Things that are allowed but probably not meant, each a complete line starting with
    /// `FILE:LINE:COLUMN: warning:`.
    pub warnings: Vec<String>,
}

/// tend's own settings: how it talks and logs, as opposed to what it supervises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub socket: PathBuf,
    /// Members of this group (by gid) may use the control socket besides root and tend's
    /// own user.
    pub socket_group: Option<u32>,
    /// Where tend serves `/livez`, `/readyz` and `/metrics` over HTTP; none by default.
    pub http: Option<std::net::SocketAddr>,
    pub log_timestamps: bool,
    pub log_format: LogFormat,
    /// `[tend.shm]`: segments restored at start and saved at exit.
    pub shm: Option<ShmSettings>,
}

/// `[tend.shm]`: which SysV shared memory segments to keep, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmSettings {
    pub file: PathBuf,
    /// The segments' keys (`key_t`).
    pub keys: Vec<i32>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            socket: PathBuf::from(DEFAULT_SOCKET),
            socket_group: None,
            http: None,
            log_timestamps: false,
            log_format: LogFormat::Prefixed,
            shm: None,
        }
    }
}

/// How service output and tend's own lines are written to tend's stdout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `name | line`, for people reading `docker logs`.
    #[default]
    Prefixed,
    /// One JSON object per line, for log collectors.
    Json,
}

/// What the loader reads besides the config file itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// Directory holding `passwd` and `group` (`/etc`; tests point it elsewhere).
    pub etc: PathBuf,
    /// `$TZ` as tend found it: the time zone of schedules unless `[tend] timezone` names one.
    pub tz: Option<std::ffi::OsString>,
    /// The zone files (`$TZDIR`, else `/usr/share/zoneinfo`).
    pub zoneinfo: PathBuf,
    /// The system's zone when `$TZ` is not set (`/etc/localtime`).
    pub localtime: PathBuf,
}

impl Default for Environment {
    /// This machine's: `/etc`, and the time zone settings of tend's own environment.
    fn default() -> Self {
        Environment {
            etc: PathBuf::from("/etc"),
            tz: std::env::var_os("TZ"),
            zoneinfo: std::env::var_os("TZDIR")
                .filter(|d| !d.is_empty())
                .map_or_else(|| PathBuf::from("/usr/share/zoneinfo"), PathBuf::from),
            localtime: PathBuf::from("/etc/localtime"),
        }
    }
}

/// Loads the file at `path`. Relative paths inside it are relative to its directory.
pub fn load_file(path: &Path, env: &Environment) -> Result<Loaded, ConfigError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::bare(&origin, format!("cannot read the configuration file: {e}"))
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| error::not_utf8(&origin, &bytes, e))?;
    // Absolute, so the paths it yields stay right whatever the services' working directory.
    let base_dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    load_str(text, &origin, &base_dir, env)
}

/// Loads configuration text. `origin` names it in messages; relative paths in it are taken
/// relative to `base_dir`.
pub fn load_str(
    source: &str,
    origin: &str,
    base_dir: &Path,
    env: &Environment,
) -> Result<Loaded, ConfigError> {
    let source = error::Source::new(origin, source);
    let document: schema::Document =
        toml::from_str(source.text).map_err(|e| error::from_toml(&source, &e))?;
    convert::convert(document, &source, base_dir, env)
}
