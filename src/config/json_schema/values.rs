//! The kinds of value several keys share, as `#/$defs/NAME`: what the loader's small
//! languages (`duration.rs`, `size.rs`, `Signal::parse`, `address.rs`, ...) accept, as far as
//! a pattern can say it.

use super::build::{Json, Table, key, obj, one_of, reference, string, strings};
use crate::config::convert::shutdown_refusal;
use crate::core::signal::{self, Signal};
use std::fmt::Write as _;

/// Value types that several keys share, referred to as `#/$defs/NAME`.
pub(super) fn definitions() -> Json {
    obj([
        (
            "duration",
            obj([
                (
                    "description",
                    "A duration: a string with units, such as \"100ms\", \"9s\" or \"1m 30s\" \
                     (ns, us, ms, s, m, h, d, w, ...), or a number of seconds."
                        .into(),
                ),
                ("type", strings(&["string", "number"])),
                ("pattern", duration_pattern().into()),
                ("minimum", 0.into()),
                (
                    "examples",
                    Json::Array(vec!["1m 30s".into(), "100ms".into(), 2.into(), 0.5.into()]),
                ),
            ]),
        ),
        (
            "size",
            obj([
                (
                    "description",
                    "A size: a whole number with a unit, B, KiB, MiB, GiB (powers of 1024) \
                     or KB, MB, GB (powers of 1000), or an integer counting bytes."
                        .into(),
                ),
                ("type", strings(&["string", "integer"])),
                (
                    "pattern",
                    "^\\s*[0-9]+\\s*(?:B|KiB|MiB|GiB|KB|MB|GB)\\s*$".into(),
                ),
                ("minimum", 0.into()),
                (
                    "examples",
                    Json::Array(vec!["512KiB".into(), "2MB".into(), 65536.into()]),
                ),
            ]),
        ),
        (
            "signal",
            signal_type(
                "A signal: its name with or without SIG, in any case (\"TERM\", \"SIGQUIT\", \
                 \"hup\"), RTMIN+N or RTMAX-N, or its number as a string (\"15\").",
                |_| true,
            ),
        ),
        (
            "shutdown-signal",
            signal_type(
                "A signal that can start a graceful shutdown: any but KILL, STOP, CHLD and the \
                 fault signals (ILL, TRAP, BUS, FPE, SEGV, SYS).",
                |s| shutdown_refusal(s).is_none(),
            ),
        ),
        (
            "command",
            obj([
                (
                    "description",
                    "A command: an array of strings, the program first, or a string split \
                     into words."
                        .into(),
                ),
                ("type", strings(&["string", "array"])),
                ("pattern", "\\S".into()),
                ("items", string()),
                ("minItems", 1.into()),
                (
                    "examples",
                    Json::Array(vec![
                        "nginx -g 'daemon off;'".into(),
                        Json::Array(vec!["php-fpm".into(), "-F".into()]),
                    ]),
                ),
            ]),
        ),
        (
            "id",
            obj([
                (
                    "description",
                    "A user or group: a name, or a numeric id (an integer, or a string of \
                     digits)."
                        .into(),
                ),
                ("type", strings(&["string", "integer"])),
                ("minLength", 1.into()),
                ("minimum", 0.into()),
                ("maximum", (i64::from(u32::MAX) - 1).into()),
                ("examples", Json::Array(vec!["www-data".into(), 33.into()])),
            ]),
        ),
        (
            "limit",
            obj([
                (
                    "description",
                    "A resource limit: an integer or \"unlimited\" for soft and hard alike, or \
                     both given as { soft = .., hard = .. } with soft <= hard."
                        .into(),
                ),
                (
                    "anyOf",
                    Json::Array(vec![
                        reference("limit-bound"),
                        Table::new(vec![
                            key("soft", "The soft limit.", reference("limit-bound")),
                            key("hard", "The hard limit.", reference("limit-bound")),
                        ])
                        .required(&["soft", "hard"])
                        .build(),
                    ]),
                ),
            ]),
        ),
        (
            "limit-bound",
            obj([(
                "anyOf",
                Json::Array(vec![
                    obj([("type", "integer".into()), ("minimum", 0.into())]),
                    one_of(&["unlimited"]),
                ]),
            )]),
        ),
        (
            "tcp-address",
            obj([
                ("type", "string".into()),
                ("pattern", format!("^(?:{IPV6}|{HOST}):{PORT}$").into()),
                (
                    "examples",
                    strings(&["127.0.0.1:5432", "db:5432", "[::1]:8080"]),
                ),
            ]),
        ),
        (
            "http-url",
            obj([
                ("type", "string".into()),
                (
                    "pattern",
                    format!("^[Hh][Tt][Tt][Pp]://(?:{IPV6}|{HOST})(?::{PORT})?(?:[/?][^\\s#]*)?$")
                        .into(),
                ),
                (
                    "examples",
                    strings(&["http://127.0.0.1:8080/health", "http://web/ready?full=1"]),
                ),
            ]),
        ),
        (
            "service-name",
            obj([
                ("type", "string".into()),
                ("pattern", "^[A-Za-z0-9._-]+$".into()),
                ("examples", strings(&["db"])),
            ]),
        ),
    ])
}

/// `[tend] http`: where tend's HTTP server listens.
pub(super) fn listen_address() -> Json {
    obj([
        ("type", "string".into()),
        (
            "pattern",
            format!("^(?:(?:{IPV4}|{IPV6})?:)?{PORT}$").into(),
        ),
        (
            "examples",
            strings(&["127.0.0.1:9100", "0.0.0.0:9100", ":9100"]),
        ),
    ])
}

/// The shapes of addresses, loosely: the loader checks them exactly.
const HOST: &str = "[A-Za-z0-9._-]+";
const IPV4: &str = "[0-9]{1,3}(?:\\.[0-9]{1,3}){3}";
const IPV6: &str = "\\[[0-9A-Fa-f:.]+\\]";
const PORT: &str = "[0-9]{1,5}";

/// What humantime reads: numbers (with an optional fraction), each followed by a unit.
fn duration_pattern() -> String {
    let units = [
        "nanos", "nsec", "ns", "usec", "us", "µs", "millis", "msec", "ms", "seconds", "second",
        "secs", "sec", "s", "minutes", "minute", "mins", "min", "m", "hours", "hour", "hrs", "hr",
        "h", "days", "day", "d", "weeks", "week", "wks", "wk", "w", "months", "month", "M",
        "years", "year", "yrs", "yr", "y",
    ];
    format!(
        "^\\s*(?:[0-9]+(?:\\.[0-9]+)?\\s*(?:{})\\s*)+$",
        units.join("|")
    )
}

/// A signal the loader reads with `Signal::parse`, limited to those `accept` takes: an enum of
/// the conventional names (what an editor offers), and a pattern for every spelling.
fn signal_type(about: &str, accept: impl Fn(Signal) -> bool) -> Json {
    let conventional: Vec<Json> = (1..=31)
        .filter_map(Signal::from_number)
        .filter(|s| accept(*s))
        .map(|s| s.name().into())
        .collect();
    obj([
        ("description", about.into()),
        ("type", "string".into()),
        (
            "anyOf",
            Json::Array(vec![
                obj([("enum", Json::Array(conventional))]),
                obj([("pattern", signal_pattern(&accept).into())]),
            ]),
        ),
    ])
}

/// Every spelling `Signal::parse` takes for a signal `accept` takes: a name in any case, with
/// or without SIG; RTMIN, RTMIN+N, RTMAX, RTMAX-N; a number. Surrounding blanks are trimmed.
fn signal_pattern(accept: &impl Fn(Signal) -> bool) -> String {
    let names: Vec<String> = Signal::standard_names()
        .filter(|(_, s)| accept(*s))
        .map(|(name, _)| any_case(name))
        .collect();
    let numbers: Vec<String> = (1..=signal::MAX)
        .filter_map(Signal::from_number)
        .filter(|s| accept(*s))
        .map(|s| s.number().to_string())
        .collect();
    let mut names = names.join("|");
    // Real-time signals as offsets from either end, when every one of them is accepted.
    let mut realtime = (signal::RTMIN..=signal::MAX).filter_map(Signal::from_number);
    if realtime.all(accept) {
        let offsets: Vec<String> = (0..=signal::MAX - signal::RTMIN)
            .map(|n| n.to_string())
            .collect();
        let offsets = offsets.join("|");
        let _ = write!(
            names,
            "|{}(?:\\+0*(?:{offsets}))?|{}(?:-0*(?:{offsets}))?",
            any_case("RTMIN"),
            any_case("RTMAX")
        );
    }
    format!(
        "^\\s*(?:(?:{})?(?:{names})|\\+?0*(?:{}))\\s*$",
        any_case("SIG"),
        numbers.join("|")
    )
}

/// `TERM` as `[Tt][Ee][Rr][Mm]`: the patterns of draft 2020-12 have no flag for case.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}
