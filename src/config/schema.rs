//! The file as written: serde structs that mirror the TOML keys one to one.
//!
//! Only the *shape* is checked here (known keys, right types), and spans are kept for every
//! value whose *meaning* is checked later in `convert`, so those errors can point at it too.
//! `deny_unknown_fields` everywhere: a misspelt key silently ignored is a service that runs
//! with a default nobody chose.

use super::duration::DurationValue;
use super::size::SizeValue;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct Document {
    pub tend: Option<TendTable>,
    pub services: Option<Spanned<Ordered<ServiceTable>>>,
}

#[derive(Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "the [tend] table"
)]
pub struct TendTable {
    pub shutdown_timeout: Option<Spanned<DurationValue>>,
    pub socket: Option<Spanned<String>>,
    pub socket_group: Option<Spanned<IdValue>>,
    pub http: Option<Spanned<String>>,
    pub log_timestamps: Option<bool>,
    pub log_format: Option<super::LogFormat>,
    pub shutdown_signals: Option<Spanned<Vec<Spanned<String>>>>,
    pub shm: Option<Spanned<ShmTable>>,
    pub timezone: Option<Spanned<String>>,
}

/// `[tend.shm]`: SysV shared memory segments kept across restarts in a file.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { file = \"/data/shm.bin\", keys = [0x1234] }"
)]
pub struct ShmTable {
    pub file: Spanned<String>,
    pub keys: Spanned<Vec<Spanned<i64>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a service table"
)]
pub struct ServiceTable {
    pub command: Option<Spanned<Command>>,
    pub instances: Option<Spanned<i64>>,
    pub shell: Option<Spanned<bool>>,
    pub env: Option<Ordered<Spanned<String>>>,
    pub env_file: Option<Spanned<String>>,
    pub workdir: Option<Spanned<String>>,
    pub user: Option<Spanned<IdValue>>,
    pub group: Option<Spanned<IdValue>>,
    pub umask: Option<Spanned<UmaskValue>>,
    pub limits: Option<LimitsTable>,
    pub oneshot: Option<bool>,
    pub autostart: Option<bool>,
    pub run_on: Option<Spanned<RunOnValue>>,
    pub schedule: Option<Spanned<String>>,
    pub restart: Option<Spanned<Restart>>,
    pub success_codes: Option<Spanned<Vec<Spanned<i64>>>>,
    pub backoff: Option<Spanned<BackoffTable>>,
    pub start_secs: Option<Spanned<DurationValue>>,
    pub max_restarts: Option<Spanned<i64>>,
    pub critical: Option<bool>,
    pub stop_signal: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<DurationValue>>,
    pub finish: Option<Spanned<Command>>,
    pub finish_timeout: Option<Spanned<DurationValue>>,
    pub logs: Option<LogsTable>,
    pub pid_file: Option<Spanned<String>>,
    pub depends_on: Option<Spanned<DependsOn>>,
    pub ready: Option<Spanned<ReadyTable>>,
    pub health: Option<Spanned<HealthTable>>,
    pub memory_limit: Option<Spanned<SizeValue>>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

/// `run-on`: when tend runs the service.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOnValue {
    Start,
    Shutdown,
}

impl ServiceTable {
    /// A one-shot task: said so, or implied by `run-on = "shutdown"` or a `schedule`.
    pub fn is_oneshot(&self) -> bool {
        self.oneshot.unwrap_or_else(|| {
            self.run_on.as_ref().map(Spanned::get_ref) == Some(&RunOnValue::Shutdown)
                || self.schedule.is_some()
        })
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table { initial = .., max = .., factor = .. }"
)]
pub struct BackoffTable {
    pub initial: Option<Spanned<DurationValue>>,
    pub max: Option<Spanned<DurationValue>>,
    pub factor: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table of limits such as { nofile = 65536 }"
)]
pub struct LimitsTable {
    pub nofile: Option<Spanned<LimitValue>>,
    pub nproc: Option<Spanned<LimitValue>>,
    pub core: Option<Spanned<LimitValue>>,
    pub memlock: Option<Spanned<LimitValue>>,
    pub stack: Option<Spanned<LimitValue>>,
}

/// `logs`: what tend keeps of a service's output besides writing it to its own stdout.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a table such as { ring = 1000, file = \"/var/log/app.log\" }"
)]
pub struct LogsTable {
    pub ring: Option<Spanned<i64>>,
    pub ring_max_size: Option<Spanned<SizeValue>>,
    pub file: Option<Spanned<String>>,
    pub max_size: Option<Spanned<SizeValue>>,
    pub keep: Option<Spanned<i64>>,
}

/// `ready`: how tend learns that the service is ready. Exactly one probe (`tcp`, `http`,
/// `exec`, `notify-fd`, `sd-notify`) is required; that is checked in `convert`, which can
/// point at the table and name what it found.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a table with one probe, such as { tcp = \"127.0.0.1:8080\" }"
)]
pub struct ReadyTable {
    pub tcp: Option<Spanned<String>>,
    pub http: Option<Spanned<String>>,
    pub exec: Option<Spanned<Command>>,
    pub notify_fd: Option<Spanned<i64>>,
    pub sd_notify: Option<Spanned<bool>>,
    pub timeout: Option<Spanned<DurationValue>>,
    pub interval: Option<Spanned<DurationValue>>,
    pub attempt_timeout: Option<Spanned<DurationValue>>,
}

/// `health`: a check tend runs again and again while the service is up.
///
/// Deserialized by hand rather than derived so that `notify-fd` and `sd-notify`, which
/// `ready` takes, are refused at the key with a message that says why; derived code could
/// only call them unknown.
pub struct HealthTable {
    pub tcp: Option<Spanned<String>>,
    pub http: Option<Spanned<String>>,
    pub exec: Option<Spanned<Command>>,
    pub interval: Option<Spanned<DurationValue>>,
    pub timeout: Option<Spanned<DurationValue>>,
    pub start_period: Option<Spanned<DurationValue>>,
    pub failures: Option<Spanned<i64>>,
}

/// The keys of `health`, in the order the unknown-key message lists them.
const HEALTH_KEYS: &[&str] = &[
    "tcp",
    "http",
    "exec",
    "interval",
    "timeout",
    "start-period",
    "failures",
];

enum HealthKey {
    Tcp,
    Http,
    Exec,
    Interval,
    Timeout,
    StartPeriod,
    Failures,
}

impl<'de> Deserialize<'de> for HealthKey {
    /// An error raised here, while the key is read, is placed at the key.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = HealthKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key of `health`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HealthKey, E> {
                match v {
                    "tcp" => Ok(HealthKey::Tcp),
                    "http" => Ok(HealthKey::Http),
                    "exec" => Ok(HealthKey::Exec),
                    "interval" => Ok(HealthKey::Interval),
                    "timeout" => Ok(HealthKey::Timeout),
                    "start-period" => Ok(HealthKey::StartPeriod),
                    "failures" => Ok(HealthKey::Failures),
                    "notify-fd" | "sd-notify" => Err(E::custom(format!(
                        "`{v}` cannot be a health check: the service notifies readiness once, \
                         while health is checked again and again; use it in `ready`, and \
                         `tcp`, `http` or `exec` here"
                    ))),
                    _ => Err(E::unknown_field(v, HEALTH_KEYS)),
                }
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for HealthTable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HealthVisitor;
        impl<'de> Visitor<'de> for HealthVisitor {
            type Value = HealthTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a table with one check, such as { http = \"http://127.0.0.1:8080/health\" }",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HealthTable, A::Error> {
                let mut t = HealthTable {
                    tcp: None,
                    http: None,
                    exec: None,
                    interval: None,
                    timeout: None,
                    start_period: None,
                    failures: None,
                };
                // TOML itself refuses a key written twice, so each is met at most once.
                while let Some(key) = map.next_key()? {
                    match key {
                        HealthKey::Tcp => t.tcp = Some(map.next_value()?),
                        HealthKey::Http => t.http = Some(map.next_value()?),
                        HealthKey::Exec => t.exec = Some(map.next_value()?),
                        HealthKey::Interval => t.interval = Some(map.next_value()?),
                        HealthKey::Timeout => t.timeout = Some(map.next_value()?),
                        HealthKey::StartPeriod => t.start_period = Some(map.next_value()?),
                        HealthKey::Failures => t.failures = Some(map.next_value()?),
                    }
                }
                Ok(t)
            }
        }
        deserializer.deserialize_struct("HealthTable", HEALTH_KEYS, HealthVisitor)
    }
}

/// `depends-on`: a table of service names to conditions, or an array of service names
/// (each meaning `"started"`, docker compose's short form). Names are resolved later, once
/// every service is known.
pub enum DependsOn {
    Conditions(Ordered<Spanned<ConditionValue>>),
    Names(Vec<Spanned<String>>),
}

#[derive(Clone, Copy)]
pub enum ConditionValue {
    Started,
    Ready,
    Completed,
}

impl<'de> Deserialize<'de> for ConditionValue {
    /// By hand rather than derived: toml's enum access answers a value of the wrong type
    /// with "wanted string or table", which names neither the key nor what it takes.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const VARIANTS: &[&str] = &["started", "ready", "completed"];
        struct ConditionVisitor;
        impl Visitor<'_> for ConditionVisitor {
            type Value = ConditionValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a condition: \"started\", \"ready\" or \"completed\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConditionValue, E> {
                match v {
                    "started" => Ok(ConditionValue::Started),
                    "ready" => Ok(ConditionValue::Ready),
                    "completed" => Ok(ConditionValue::Completed),
                    _ => Err(E::unknown_variant(v, VARIANTS)),
                }
            }
        }
        deserializer.deserialize_any(ConditionVisitor)
    }
}

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DependsOnVisitor;
        impl<'de> Visitor<'de> for DependsOnVisitor {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a table of service names and conditions such as { db = \"ready\" }, or \
                     an array of service names",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DependsOn, A::Error> {
                Ordered::deserialize(MapAccessDeserializer::new(map)).map(DependsOn::Conditions)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<DependsOn, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(DependsOn::Names)
            }
        }
        deserializer.deserialize_any(DependsOnVisitor)
    }
}

/// A table whose keys are names the user chose (services, variables), in file order.
///
/// toml's own maps are sorted by key unless its `preserve_order` feature (and indexmap) is
/// on; sorting by where each key appears gives file order without either.
pub struct Ordered<V>(pub Vec<(Spanned<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(Spanned<String>, V)> = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                entries.sort_by_key(|(key, _)| key.span().start);
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

/// `command`: an array is the exec form, a string is split into words (or given to the
/// shell with `shell = true`).
#[derive(Clone)]
pub enum Command {
    Text(String),
    Argv(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: an array of strings, or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                Ok(Command::Text(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Command, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(Command::Argv)
            }
        }
        deserializer.deserialize_any(CommandVisitor)
    }
}

/// `user`, `group` or `socket-group`: a name, or a numeric id (as an integer or a string of
/// digits).
pub enum IdValue {
    Text(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = IdValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name or a numeric id")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdValue, E> {
                Ok(IdValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdValue, E> {
                Ok(IdValue::Number(v))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// `umask`: a string of octal digits (`"0022"`) or an integer (`0o022` in TOML).
pub enum UmaskValue {
    Text(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for UmaskValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UmaskVisitor;
        impl Visitor<'_> for UmaskVisitor {
            type Value = UmaskValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a umask: a string of octal digits such as \"0022\", or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UmaskValue, E> {
                Ok(UmaskValue::Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<UmaskValue, E> {
                Ok(UmaskValue::Number(v))
            }
        }
        deserializer.deserialize_any(UmaskVisitor)
    }
}

/// One side of a resource limit: a number, or `"unlimited"` (any other string is refused
/// later, with its span).
pub enum LimitBound {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for LimitBound {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundVisitor;
        impl Visitor<'_> for BoundVisitor {
            type Value = LimitBound;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or \"unlimited\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LimitBound, E> {
                Ok(LimitBound::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LimitBound, E> {
                Ok(LimitBound::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(BoundVisitor)
    }
}

/// `limits.NAME`: the same soft and hard limit, or `{ soft = .., hard = .. }`.
pub enum LimitValue {
    Same(LimitBound),
    Pair(LimitPair),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table { soft = .., hard = .. }")]
pub struct LimitPair {
    pub soft: Spanned<LimitBound>,
    pub hard: Spanned<LimitBound>,
}

impl<'de> Deserialize<'de> for LimitValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LimitVisitor)
    }
}

struct LimitVisitor;

impl<'de> Visitor<'de> for LimitVisitor {
    type Value = LimitValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer, \"unlimited\", or a table { soft = .., hard = .. }")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<LimitValue, E> {
        Ok(LimitValue::Same(LimitBound::Number(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<LimitValue, E> {
        Ok(LimitValue::Same(LimitBound::Text(v.to_string())))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LimitValue, A::Error> {
        // Through the derived struct, so an unknown key is reported at the key itself.
        LimitPair::deserialize(MapAccessDeserializer::new(map)).map(LimitValue::Pair)
    }
}
