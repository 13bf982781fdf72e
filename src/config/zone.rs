//! The time zone that schedules read the clock in: `[tend] timezone`, else `$TZ`, else
//! `/etc/localtime`, else UTC. Zones are read from the system's zone files (TZif, as
//! Debian's tzdata installs them under /usr/share/zoneinfo); jiff only interprets them.

use super::Environment;
use jiff::tz::TimeZone;
use std::path::Path;

/// `[tend] timezone`: an IANA name such as `Europe/Berlin` (a file under the zone
/// directory), `UTC`, or a POSIX TZ rule such as `CET-1CEST,M3.5.0,M10.5.0/3`.
pub fn named(env: &Environment, name: &str) -> Result<TimeZone, String> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok(TimeZone::UTC);
    }
    let safe = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    let path = env.zoneinfo.join(name);
    if safe && path.is_file() {
        return file(name, &path);
    }
    // Not a file: perhaps a rule (images without tzdata can still say what they mean).
    if let Ok(tz) = TimeZone::posix(name) {
        return Ok(tz);
    }
    Err(format!(
        "unknown time zone \"{name}\": there is no {} (zones are IANA names such as \
         \"Europe/Berlin\" or \"America/New_York\", which Debian's package tzdata installs; \
         or UTC; or a POSIX TZ rule such as \"CET-1CEST,M3.5.0,M10.5.0/3\")",
        path.display()
    ))
}

/// The zone in TZif file `path`, named `name`.
fn file(name: &str, path: &Path) -> Result<TimeZone, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    TimeZone::tzif(name, &data)
        .map_err(|_| format!("{} is not a time zone file (TZif)", path.display()))
}

/// Without `[tend] timezone`: `$TZ` as the C library reads it, else `/etc/localtime`, else
/// UTC. The second value says why a zone that was asked for could not be used.
pub fn system(env: &Environment) -> (TimeZone, Option<String>) {
    let mut trouble = None;
    if let Some(tz) = &env.tz {
        let text = tz.to_string_lossy();
        let spec = text.strip_prefix(':').unwrap_or(&text);
        let found = if spec.is_empty() {
            Ok(TimeZone::UTC)
        } else if spec.starts_with('/') {
            file(spec, Path::new(spec))
        } else {
            named(env, spec)
        };
        match found {
            Ok(zone) => return (zone, None),
            Err(e) => trouble = Some(format!("$TZ is \"{text}\", which tend cannot use: {e}")),
        }
    }
    match std::fs::symlink_metadata(&env.localtime) {
        Ok(_) => {
            // A link into the zone directory names the zone; a copy is just "localtime".
            let link = std::fs::read_link(&env.localtime).ok();
            let name = link
                .as_deref()
                .and_then(|l| l.to_str())
                .and_then(|l| l.split_once("zoneinfo/").map(|(_, n)| n.to_string()))
                .unwrap_or_else(|| "localtime".to_string());
            match file(&name, &env.localtime) {
                Ok(zone) => {
                    let instead = format!("; schedules use {} ({name})", env.localtime.display());
                    (zone, trouble.map(|t| t + &instead))
                }
                Err(e) => {
                    let e = format!("{e}; schedules use UTC");
                    (
                        TimeZone::UTC,
                        Some(trouble.map_or(e.clone(), |t| format!("{t}; and {e}"))),
                    )
                }
            }
        }
        Err(_) => (
            TimeZone::UTC,
            trouble.map(|t| format!("{t}; schedules use UTC")),
        ),
    }
}
