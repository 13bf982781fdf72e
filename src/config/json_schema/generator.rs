//! Builds the schema from the loader's keys, table by table (see the module above). Only
//! the tests run it: they hold its output to the loader and to docs/tend.schema.json.

use super::build::{
    Json, Key, Table, boolean, closed, count, entry, exactly_one, integer, key, obj, one_of, path,
    positive_duration, reference, string, strings, table,
};
use crate::config::convert::{MAX_LOG_KEEP, MAX_LOG_RING, MAX_LOG_RING_BYTES, MIN_MEMORY_LIMIT};
use crate::config::probes::{HEALTH_FAILURES_RANGE, NOTIFY_FDS};

/// The schema as `tend schema` prints it, ending with a newline.
pub fn schema() -> String {
    let mut out = String::new();
    document().write(&mut out, 0);
    out.push('\n');
    out
}

/// The whole file: `[tend]` and `[services.NAME]`.
fn document() -> Json {
    let keys = vec![
        key(
            "tend",
            "tend's own settings; every key is optional.",
            table(tend_keys()),
        ),
        key(
            "services",
            "The services, one table each, listed and started in file order (dependencies \
             first). A name is letters, digits, '.', '_' and '-'.",
            obj([
                ("type", "object".into()),
                ("minProperties", 1.into()),
                ("propertyNames", reference("service-name")),
                ("additionalProperties", service()),
            ]),
        ),
    ];
    let mut root = vec![
        entry(
            "$schema",
            "https://json-schema.org/draft/2020-12/schema".into(),
        ),
        entry("title", "tend configuration file".into()),
        entry(
            "description",
            "The TOML file that `tend run FILE` and `tend check FILE` load; every key is \
             described in docs/config.md. Printed by `tend schema`."
                .into(),
        ),
    ];
    root.extend(closed(keys));
    root.push(entry("required", strings(&["services"])));
    root.push(entry("$defs", super::values::definitions()));
    Json::Object(root)
}

/// `[tend]`, in the order of `schema::TendTable`.
fn tend_keys() -> Vec<Key> {
    vec![
        key(
            "shutdown-timeout",
            "Budget for the whole graceful shutdown, services that stop one after another \
             included. Docker sends SIGKILL 10 s after `docker stop`.",
            reference("duration"),
        )
        .default("9s"),
        key(
            "socket",
            "Where tend creates its control socket, which `tend status` and the other client \
             commands use (relative to this file's directory).",
            path(),
        )
        .default(crate::config::DEFAULT_SOCKET),
        key(
            "socket-group",
            "A group whose members may use the control socket besides root and tend's user: a \
             name from /etc/group or a numeric gid. None by default.",
            reference("id"),
        ),
        key(
            "http",
            "Serve /livez, /readyz and /metrics over plain HTTP on this address: \"IP:PORT\" \
             (IPv6 in brackets), or \":PORT\" for 127.0.0.1. None by default.",
            super::values::listen_address(),
        ),
        key(
            "log-timestamps",
            "Put an RFC 3339 timestamp on every line tend writes (Docker and Kubernetes stamp \
             lines already).",
            boolean(),
        )
        .default(false),
        key(
            "log-format",
            "`prefixed`: each line led by its service's name, for people; `json`: one JSON \
             object per line, for log collectors.",
            one_of(&["prefixed", "json"]),
        )
        .default("prefixed"),
        key(
            "shutdown-signals",
            "Signals that start a graceful shutdown; a second one escalates to SIGKILL. KILL, \
             STOP, CHLD and the fault signals cannot be among them.",
            obj([
                ("type", "array".into()),
                ("items", reference("shutdown-signal")),
            ]),
        )
        .default(strings(&["TERM", "INT"])),
        key(
            "shm",
            "SysV shared memory segments kept across container restarts in a file: restored \
             at start, saved at exit.",
            Table::new(shm_keys()).required(&["file", "keys"]).build(),
        ),
        key(
            "timezone",
            "The time zone in which `schedule` cron rules are read: an IANA name (a file under \
             /usr/share/zoneinfo, such as \"Europe/Berlin\"), \"UTC\", or a POSIX TZ rule. \
             Without it: $TZ, else /etc/localtime, else UTC.",
            obj([
                ("type", "string".into()),
                ("minLength", 1.into()),
                (
                    "examples",
                    strings(&[
                        "Europe/Berlin",
                        "America/New_York",
                        "UTC",
                        "CET-1CEST,M3.5.0,M10.5.0/3",
                    ]),
                ),
            ]),
        ),
    ]
}

/// `[tend.shm]`, in the order of `schema::ShmTable`.
fn shm_keys() -> Vec<Key> {
    vec![
        key(
            "file",
            "Where the segments are saved, on a volume (relative to this file's directory); its \
             directory must exist.",
            path(),
        ),
        key(
            "keys",
            "The segments' keys, as ipcs shows them (TOML takes hexadecimal: 0x1234), each \
             once.",
            obj([
                ("type", "array".into()),
                ("items", integer(1, u32::MAX.into())),
                ("minItems", 1.into()),
                ("uniqueItems", true.into()),
                (
                    "examples",
                    Json::Array(vec![Json::Array(vec![0x1234.into()])]),
                ),
            ]),
        ),
    ]
}

/// `[services.NAME]`, in the order of `schema::ServiceTable`.
fn service_keys() -> Vec<Key> {
    vec![
        key(
            "command",
            "What to run. An array is the exec form: the program and its arguments, as they \
             are. A string is split into words as a POSIX shell would, but no shell runs and \
             nothing is expanded.",
            reference("command"),
        ),
        key(
            "instances",
            "Run this many copies, NAME-0 to NAME-(N-1), each with TEND_INSTANCE set to its \
             number; {instance} (or {instance:02}, zero-padded) in command, env values, \
             workdir, pid-file, logs.file and the probes is replaced by it. Unset: one service under \
             its own name, without TEND_INSTANCE.",
            integer(
                *crate::config::instances::INSTANCES.start(),
                *crate::config::instances::INSTANCES.end(),
            ),
        ),
        key(
            "shell",
            "Run `command`, which must then be a string, as /bin/sh -c COMMAND: with pipes, && \
             and $VAR.",
            boolean(),
        )
        .default(false),
        key(
            "env",
            "Variables set on top of tend's own environment, after `env-file` (so these win). \
             Values are strings.",
            obj([
                ("type", "object".into()),
                ("propertyNames", obj([("pattern", "^[^=\\s]+$".into())])),
                ("additionalProperties", string()),
                (
                    "examples",
                    Json::Array(vec![obj([("APP_ENV", "prod".into())])]),
                ),
            ]),
        ),
        key(
            "env-file",
            "A file of KEY=VALUE lines, loaded before `env` (relative to this file's \
             directory). A missing file is an error.",
            path().examples(&["app.env"]),
        ),
        key(
            "workdir",
            "The directory the service starts in (relative to this file's directory). Default: \
             tend's working directory.",
            path(),
        ),
        key(
            "user",
            "The user to run as: a name from /etc/passwd, or a numeric uid. Default: tend's \
             user.",
            reference("id"),
        ),
        key(
            "group",
            "The group to run as: a name from /etc/group, or a numeric gid; needs `user`. \
             Default: the user's primary group.",
            reference("id"),
        ),
        key(
            "umask",
            "Octal digits as a string (\"0022\"), or an integer (TOML's 0o022); at most 0777. \
             Default: tend's umask.",
            obj([
                ("type", strings(&["string", "integer"])),
                ("pattern", "^0?[0-7]{1,3}$".into()),
                ("minimum", 0.into()),
                ("maximum", 0o777.into()),
                ("examples", strings(&["0022", "027"])),
            ]),
        ),
        key(
            "limits",
            "Resource limits set before exec. Each is an integer (soft and hard limit alike), \
             \"unlimited\", or { soft = .., hard = .. }.",
            table(limits_keys()),
        ),
        key(
            "oneshot",
            "A task that runs to completion: exiting with a success code is its normal end, \
             not a reason to restart.",
            boolean(),
        )
        .default(false),
        key(
            "autostart",
            "false: loaded but not started (by `tend run` nor by a reload that adds it); \
             `tend start NAME` starts it, and services that depend on it wait until then.",
            boolean(),
        )
        .default(true),
        key(
            "run-on",
            "\"shutdown\": a shutdown task, a one-shot task run when the shutdown begins while \
             the services it depends on stay up; it has its stop-timeout to end.",
            one_of(&["start", "shutdown"]),
        )
        .default("start"),
        key(
            "schedule",
            "A scheduled task, run at these times instead of at start (oneshot is implied): a \
             cron expression of 5 fields (minute hour day-of-month month day-of-week) or 6 \
             (seconds first), a shorthand (@yearly, @annually, @monthly, @weekly, @daily, \
             @midnight, @hourly), or @every DURATION (at least 1s).",
            obj([
                ("type", "string".into()),
                ("minLength", 1.into()),
                (
                    "examples",
                    strings(&[
                        "*/15 * * * *",
                        "30 2 * * mon-fri",
                        "*/10 * * * * *",
                        "@daily",
                        "@every 30s",
                    ]),
                ),
            ]),
        ),
        key(
            "restart",
            "When to restart it after its process exits. `on-failure`: after an exit code not \
             in success-codes, or a death by signal. Default \"on-failure\" when oneshot = true, \
             \"never\" with schedule (where \"always\" is refused).",
            one_of(&["always", "on-failure", "never"]),
        )
        .default("always"),
        key(
            "success-codes",
            "Exit codes that count as success, for on-failure and one-shot tasks. Not empty.",
            obj([
                ("type", "array".into()),
                ("items", integer(0, 255)),
                ("minItems", 1.into()),
            ]),
        )
        .default(Json::Array(vec![0.into()])),
        key(
            "backoff",
            "The delay before restart attempt n (failed starts in a row): min(initial × \
             factor^(n-1), max).",
            table(backoff_keys()),
        ),
        key(
            "start-secs",
            "How long its process must stay up to count as started (and, without `ready`, as \
             ready). Default \"0s\" when oneshot = true.",
            reference("duration"),
        )
        .default("1s"),
        key(
            "max-restarts",
            "Failed starts in a row after which the service is failed and no longer \
             restarted; 0: never give up.",
            integer(0, u32::MAX.into()),
        )
        .default(10),
        key(
            "critical",
            "When the service ends for good (failed, or exited and not restarted), tend stops \
             everything and exits with its code.",
            boolean(),
        )
        .default(false),
        key(
            "stop-signal",
            "The signal sent to its process group to stop it.",
            reference("signal"),
        )
        .default("TERM"),
        key(
            "stop-timeout",
            "How long to wait after stop-signal before SIGKILL. Unset: 5s, or less along a \
             chain of dependencies, where the services that set none share shutdown-timeout.",
            reference("duration"),
        )
        .default("5s"),
        key(
            "finish",
            "Run after every end of its process, as the service, with two arguments added: \
             the exit code (or -1 when killed by a signal) and the signal (or 0). An array \
             (exec form) or a string split into words; no shell.",
            reference("command"),
        ),
        key(
            "finish-timeout",
            "How long `finish` may run before SIGKILL to its process group. Only with \
             `finish`.",
            reference("duration"),
        )
        .default("5s"),
        key(
            "logs",
            "What tend keeps of its output, besides writing every line to tend's stdout or \
             stderr.",
            Table::new(logs_keys())
                .rule(
                    "dependentRequired",
                    obj([
                        ("max-size", strings(&["file"])),
                        ("keep", strings(&["file"])),
                    ]),
                )
                .build(),
        ),
        key(
            "pid-file",
            "For a daemon that forks: once the started process exits successfully, the process \
             this file names is followed as the service (relative to this file's directory). \
             Not with oneshot.",
            path(),
        ),
        key(
            "depends-on",
            "Services that must reach a condition before this one starts: { NAME = \"started\" \
             | \"ready\" | \"completed\" }, or an array of names, each meaning \"started\".",
            obj([
                ("type", strings(&["object", "array"])),
                ("propertyNames", reference("service-name")),
                (
                    "additionalProperties",
                    one_of(&["started", "ready", "completed"]),
                ),
                ("items", reference("service-name")),
                ("uniqueItems", true.into()),
                (
                    "examples",
                    Json::Array(vec![
                        obj([("db", "ready".into())]),
                        Json::Array(vec!["db".into()]),
                    ]),
                ),
            ]),
        ),
        key(
            "ready",
            "How tend learns that it is ready: exactly one probe (tcp, http, exec, notify-fd or \
             sd-notify). Without it: once it has stayed up start-secs.",
            Table::new(ready_keys())
                .rule(
                    "oneOf",
                    exactly_one(&["tcp", "http", "exec", "notify-fd", "sd-notify"]),
                )
                .rule(
                    "dependentSchemas",
                    obj(["notify-fd", "sd-notify"].map(|notified| {
                        (
                            notified,
                            obj([(
                                "properties",
                                obj([
                                    ("interval", false.into()),
                                    ("attempt-timeout", false.into()),
                                ]),
                            )]),
                        )
                    })),
                )
                .build(),
        ),
        key(
            "health",
            "A check run again and again while it is up: exactly one probe (tcp, http or \
             exec). After `failures` failed checks in a row it is restarted.",
            Table::new(health_keys())
                .rule("oneOf", exactly_one(&["tcp", "http", "exec"]))
                .build(),
        ),
        key(
            "memory-limit",
            "The most resident memory its process group may use: a size of at least 1MiB \
             with a unit (B, KiB, MiB, GiB, KB, MB, GB), or an integer counting bytes. \
             Checked every 5 s; above it, it is restarted as if it had failed its health \
             check.",
            obj([
                ("type", strings(&["string", "integer"])),
                ("pattern", super::values::SIZE_PATTERN.into()),
                ("minimum", count(MIN_MEMORY_LIMIT).into()),
                (
                    "examples",
                    Json::Array(vec![
                        "512MiB".into(),
                        "2GB".into(),
                        count(MIN_MEMORY_LIMIT).into(),
                    ]),
                ),
            ]),
        ),
    ]
}

/// One service: its keys, and the rules between them that a schema can say.
fn service() -> Json {
    let only_if = |key: &str, value: bool, then: Json| {
        obj([
            (
                "if",
                obj([
                    ("properties", obj([(key, obj([("const", value.into())]))])),
                    ("required", strings(&[key])),
                ]),
            ),
            ("then", then),
        ])
    };
    let rules = Json::Array(vec![
        only_if(
            "shell",
            true,
            obj([("properties", obj([("command", string())]))]),
        ),
        only_if(
            "oneshot",
            true,
            obj([("properties", obj([("pid-file", false.into())]))]),
        ),
        // A scheduled task is a one-shot task that runs at its times only.
        obj([
            ("if", obj([("required", strings(&["schedule"]))])),
            (
                "then",
                obj([(
                    "properties",
                    obj([
                        ("oneshot", obj([("const", true.into())])),
                        ("run-on", obj([("const", "start".into())])),
                        (
                            "restart",
                            obj([("enum", strings(&["on-failure", "never"]))]),
                        ),
                        ("pid-file", false.into()),
                    ]),
                )]),
            ),
        ]),
    ]);
    Table::new(service_keys())
        .about("A service; only `command` is required.")
        .required(&["command"])
        .rule(
            "dependentRequired",
            obj([
                ("group", strings(&["user"])),
                ("finish-timeout", strings(&["finish"])),
            ]),
        )
        .rule("allOf", rules)
        .build()
}

/// `limits`, in the order of `schema::LimitsTable`.
fn limits_keys() -> Vec<Key> {
    let limit = |name, about| key(name, about, reference("limit"));
    vec![
        limit("nofile", "Open files (RLIMIT_NOFILE)."),
        limit("nproc", "Processes of its user (RLIMIT_NPROC)."),
        limit("core", "Size of a core dump, in bytes (RLIMIT_CORE)."),
        limit("memlock", "Locked memory, in bytes (RLIMIT_MEMLOCK)."),
        limit("stack", "Stack size, in bytes (RLIMIT_STACK)."),
    ]
}

/// `backoff`, in the order of `schema::BackoffTable`.
fn backoff_keys() -> Vec<Key> {
    vec![
        key(
            "initial",
            "The first delay; at most `max`.",
            reference("duration"),
        )
        .default("100ms"),
        key("max", "The longest delay.", reference("duration")).default("30s"),
        key(
            "factor",
            "How much each delay grows over the one before; at least 1.0.",
            obj([("type", "number".into()), ("minimum", 1.into())]),
        )
        .default(2.0),
    ]
}

/// `logs`, in the order of `schema::LogsTable`.
fn logs_keys() -> Vec<Key> {
    vec![
        key(
            "ring",
            "How many of its latest output lines tend keeps in memory for `tend logs`; 0 keeps \
             none.",
            integer(0, count(MAX_LOG_RING)),
        )
        .default(1000),
        key(
            "ring-max-size",
            "The most bytes of those lines tend keeps, from 1 byte to 1GiB.",
            reference("size").with(&[
                ("minimum", 1.into()),
                ("maximum", count(MAX_LOG_RING_BYTES).into()),
            ]),
        )
        .default("1MiB"),
        key(
            "file",
            "Also append its lines to this file (relative to this file's directory), whose \
             directory must exist. Each service needs a file of its own.",
            path(),
        ),
        key(
            "max-size",
            "Rotate the file when the next line would take it past this size; 0 never \
             rotates. Needs `file`.",
            reference("size"),
        )
        .default("10MiB"),
        key(
            "keep",
            "Rotated files kept (PATH.1 is the newest); 0 keeps none. Needs `file`.",
            integer(0, MAX_LOG_KEEP.into()),
        )
        .default(5),
    ]
}

/// `ready`, in the order of `schema::ReadyTable`.
fn ready_keys() -> Vec<Key> {
    vec![
        key(
            "tcp",
            "Ready when a TCP connection to HOST:PORT succeeds (a name, an IPv4 address, or an \
             IPv6 one in brackets).",
            reference("tcp-address"),
        ),
        key(
            "http",
            "Ready when an HTTP GET of this http:// URL answers 2xx or 3xx (plain HTTP only).",
            reference("http-url"),
        ),
        key(
            "exec",
            "Ready when this command exits 0. Written like `command`, and run with no shell.",
            reference("command"),
        ),
        key(
            "notify-fd",
            "The service writes a newline to this file descriptor of its own when it is ready \
             (s6's notification-fd).",
            integer(*NOTIFY_FDS.start(), *NOTIFY_FDS.end()),
        ),
        key(
            "sd-notify",
            "The service sends READY=1 to $NOTIFY_SOCKET when it is ready (systemd's \
             sd_notify).",
            obj([
                ("type", "boolean".into()),
                ("enum", Json::Array(vec![true.into()])),
            ]),
        ),
        key(
            "timeout",
            "If it is not ready this long after it started, the start has failed. Longer than \
             zero.",
            positive_duration(),
        )
        .default("60s"),
        key(
            "interval",
            "Time between two attempts of a polled probe (tcp, http, exec). Longer than zero.",
            positive_duration(),
        )
        .default("250ms"),
        key(
            "attempt-timeout",
            "How long one attempt of a polled probe may take. Longer than zero.",
            positive_duration(),
        )
        .default("1s"),
    ]
}

/// `health`, in the order of `schema::HEALTH_KEYS`.
fn health_keys() -> Vec<Key> {
    vec![
        key(
            "tcp",
            "The check passes when a TCP connection to HOST:PORT succeeds.",
            reference("tcp-address"),
        ),
        key(
            "http",
            "The check passes when an HTTP GET of this http:// URL answers 2xx or 3xx.",
            reference("http-url"),
        ),
        key(
            "exec",
            "The check passes when this command exits 0. Written like `command`, and run with \
             no shell.",
            reference("command"),
        ),
        key(
            "interval",
            "Time between two checks. Longer than zero.",
            positive_duration(),
        )
        .default("10s"),
        key(
            "timeout",
            "How long one check may take. Longer than zero.",
            positive_duration(),
        )
        .default("2s"),
        key(
            "start-period",
            "How long after the service became ready failed checks do not count.",
            reference("duration"),
        )
        .default("0s"),
        key(
            "failures",
            "Failed checks in a row that make the service unhealthy: it is restarted.",
            integer(*HEALTH_FAILURES_RANGE.start(), *HEALTH_FAILURES_RANGE.end()),
        )
        .default(3),
    ]
}
