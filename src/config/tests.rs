//! Loading whole files: the exact `Spec` a file produces, defaults, and every error with
//! its exact position.

use super::*;
use crate::core::schedule::Rule;
use crate::core::signal::Signal;
use crate::core::spec::{
    Backoff, Condition, Credentials, DEFAULT_SHUTDOWN_TIMEOUT, Dependency, ExitCodeSet,
    ExitSignals, Finish, HealthRule, HostPort, HttpTarget, Launch, Limit, LogFile, MainExit,
    Output, Probe, ReadyRule, Resource, RestartPolicy, RunOn, ServiceId, ServiceSpec, SessionMode,
    SignalRouting,
};
use std::ffi::OsString;
use std::time::Duration;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
                      app:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\nadm:x:4:www-data,app\nvideo:x:44:www-data\nwww-data:x:33:\n\
                     staff:x:50:\napp:x:1000:\n";

/// A temp directory holding `etc/passwd`, `etc/group` and whatever a test writes; configs
/// are loaded as if they lived in it.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        Fixture { dir }
    }

    fn env(&self) -> Environment {
        Environment {
            etc: self.dir.path().join("etc"),
            tz: None,
            zoneinfo: PathBuf::from("/usr/share/zoneinfo"),
            localtime: self.dir.path().join("localtime"),
        }
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn load(&self, source: &str) -> Result<Loaded, ConfigError> {
        load_str(source, "tend.toml", self.dir.path(), &self.env())
    }
}

fn load(source: &str) -> Result<Loaded, ConfigError> {
    Fixture::new().load(source)
}

fn error(source: &str) -> ConfigError {
    match load(source) {
        Ok(_) => panic!("expected an error for:\n{source}"),
        Err(e) => e,
    }
}

/// Asserts the error's position and message, and that the rendering starts as promised.
#[track_caller]
fn assert_error(source: &str, line: usize, column: usize, message: &str) {
    let e = error(source);
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (line, column, message),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("tend.toml:{line}:{column}: error: {message}\n"))
    );
}

fn argv(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

fn codes(list: &[u8]) -> ExitCodeSet {
    let mut set = ExitCodeSet::default();
    for &c in list {
        set.insert(c);
    }
    set
}

fn launch(words: &[&str]) -> Launch {
    Launch {
        argv: argv(words),
        session: SessionMode::NewSession,
        env: Vec::new(),
        workdir: None,
        credentials: None,
        umask: None,
        limits: Vec::new(),
        output: Output::Prefixed,
    }
}

const FULL: &str = r#"
[tend]
shutdown-timeout = "20s"
socket = "/tmp/tend.sock"
socket-group = "adm"
http = "0.0.0.0:9100"
log-timestamps = true
log-format = "json"
shutdown-signals = ["TERM", "SIGQUIT", "usr1"]

[services.php-fpm]
command = ["php-fpm", "-F"]
env-file = "app.env"
env = { APP_ENV = "prod", B = "from-toml" }
workdir = "/srv/app"
user = "www-data"
group = "staff"
umask = "0027"
limits = { nofile = 65536, nproc = { soft = 100, hard = "unlimited" }, core = "unlimited", memlock = 0, stack = { soft = 8388608, hard = 16777216 } }
restart = "on-failure"
success-codes = [0, 2, 255]
backoff = { initial = "250ms", max = "1m", factor = 1.5 }
start-secs = 3
max-restarts = 0
critical = true
stop-signal = "QUIT"
stop-timeout = "7s"
logs = { ring = 5000 }
depends-on = { migrate = "completed" }
ready = { tcp = "127.0.0.1:9000", timeout = "30s" }
health = { exec = "php-fpm-healthcheck --ping", interval = "30s", timeout = "5s", start-period = "1m", failures = 5 }
memory-limit = "512MiB"

[services.nginx]
command = "nginx -g 'daemon off;'"
shell = false
oneshot = false
depends-on = ["php-fpm"]
ready = { http = "http://localhost:8080", interval = "100ms", attempt-timeout = "500ms" }

[services.nginx.health]
tcp = "[::1]:8080"
failures = 1

[services.migrate]
shell = true
command = "./migrate.sh && echo done"
oneshot = true
user = 1000
umask = 0o022
workdir = "app"
logs.ring = 0
"#;

#[test]
fn a_full_file_gives_exactly_this_spec() {
    let f = Fixture::new();
    f.write("app.env", "# from the image\nexport A=1\nB='from-file'\n");
    let loaded = f.load(FULL).unwrap();

    let php = ServiceSpec {
        name: "php-fpm".into(),
        instance_of: None,
        launch: Launch {
            argv: argv(&["php-fpm", "-F"]),
            session: SessionMode::NewSession,
            env: vec![
                ("A".into(), "1".into()),
                ("B".into(), "from-file".into()),
                ("APP_ENV".into(), "prod".into()),
                ("B".into(), "from-toml".into()),
            ],
            workdir: Some("/srv/app".into()),
            credentials: Some(Credentials {
                uid: 33,
                gid: 50,
                groups: vec![4, 44],
            }),
            umask: Some(0o027),
            limits: vec![
                Limit {
                    resource: Resource::Nofile,
                    soft: 65536,
                    hard: 65536,
                },
                Limit {
                    resource: Resource::Nproc,
                    soft: 100,
                    hard: u64::MAX,
                },
                Limit {
                    resource: Resource::Core,
                    soft: u64::MAX,
                    hard: u64::MAX,
                },
                Limit {
                    resource: Resource::Memlock,
                    soft: 0,
                    hard: 0,
                },
                Limit {
                    resource: Resource::Stack,
                    soft: 8 << 20,
                    hard: 16 << 20,
                },
            ],
            output: Output::Prefixed,
        },
        critical: true,
        oneshot: false,
        autostart: true,
        run_on: RunOn::Start,
        schedule: None,
        finish: None,
        restart: RestartPolicy::OnFailure,
        success_codes: codes(&[0, 2, 255]),
        backoff: Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(60),
            factor: 1.5,
        },
        start_secs: Duration::from_secs(3),
        max_restarts: 0,
        stop_signal: Signal::QUIT,
        stop_timeout: Duration::from_secs(7),
        stop_group_leftovers: true,
        log_ring: 5000,
        log_ring_bytes: crate::core::spec::DEFAULT_LOG_RING_BYTES,
        log_file: None,
        pid_file: None,
        depends_on: vec![Dependency {
            on: ServiceId(2),
            condition: Condition::Completed,
        }],
        ready: Some(ReadyRule {
            probe: Probe::Tcp {
                target: HostPort::new("127.0.0.1", 9000),
            },
            interval: Duration::from_millis(250),
            attempt_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        }),
        health: Some(HealthRule {
            probe: Probe::Exec {
                argv: argv(&["php-fpm-healthcheck", "--ping"]),
            },
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            start_period: Duration::from_secs(60),
            failures: 5,
        }),
        memory_limit: Some(512 << 20),
    };
    let nginx = ServiceSpec {
        depends_on: vec![Dependency {
            on: ServiceId(0),
            condition: Condition::Started,
        }],
        ready: Some(ReadyRule {
            probe: Probe::Http {
                target: HttpTarget::new("localhost", 8080, "/"),
            },
            interval: Duration::from_millis(100),
            attempt_timeout: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
        }),
        health: Some(HealthRule {
            probe: Probe::Tcp {
                target: HostPort::new("::1", 8080),
            },
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            start_period: Duration::ZERO,
            failures: 1,
        }),
        ..ServiceSpec::new("nginx", launch(&["nginx", "-g", "daemon off;"]))
    };
    let migrate = ServiceSpec {
        oneshot: true,
        restart: RestartPolicy::OnFailure,
        start_secs: Duration::ZERO,
        log_ring: 0,
        ..ServiceSpec::new(
            "migrate",
            Launch {
                credentials: Some(Credentials {
                    uid: 1000,
                    gid: 1000,
                    groups: vec![4],
                }),
                umask: Some(0o022),
                workdir: Some(f.dir.path().join("app")),
                ..launch(&["/bin/sh", "-c", "./migrate.sh && echo done"])
            },
        )
    };
    let expected = Spec {
        services: vec![php, nginx, migrate],
        signals: SignalRouting::Supervise {
            shutdown: ExitSignals::of(&[Signal::TERM, Signal::QUIT, Signal::USR1]),
        },
        main_exit: MainExit::default(),
        shutdown_timeout: Duration::from_secs(20),
        timezone: jiff::tz::TimeZone::UTC,
    };
    assert_eq!(loaded.spec, expected);
    assert_eq!(
        loaded.settings,
        Settings {
            socket: "/tmp/tend.sock".into(),
            socket_group: Some(4),
            http: Some("0.0.0.0:9100".parse().unwrap()),
            log_timestamps: true,
            log_format: LogFormat::Json,
            shm: None,
        }
    );
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

#[test]
fn defaults() {
    let loaded = load("[services.app]\ncommand = [\"/app\"]\n").unwrap();
    let expected = Spec {
        services: vec![ServiceSpec::new("app", launch(&["/app"]))],
        signals: SignalRouting::Supervise {
            shutdown: ExitSignals::default(),
        },
        main_exit: MainExit::default(),
        shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        timezone: jiff::tz::TimeZone::UTC,
    };
    assert_eq!(loaded.spec, expected);
    assert_eq!(loaded.settings, Settings::default());
    assert_eq!(
        loaded.settings.socket,
        PathBuf::from("/run/tend/control.sock")
    );
    assert_eq!(loaded.settings.socket_group, None);
    assert_eq!(
        loaded.settings.http, None,
        "no HTTP server unless asked for"
    );
    assert_eq!(loaded.settings.log_format, LogFormat::Prefixed);
    assert!(!loaded.settings.log_timestamps);
    assert!(loaded.warnings.is_empty());

    // What ServiceSpec::new promises, spelt out, so a change there shows up here.
    let s = &loaded.spec.services[0];
    assert!(!s.critical && !s.oneshot);
    assert_eq!(s.restart, RestartPolicy::Always);
    assert_eq!(s.success_codes, codes(&[0]));
    assert_eq!(
        s.backoff,
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0
        }
    );
    assert_eq!(s.start_secs, Duration::from_secs(1));
    assert_eq!(s.max_restarts, 10);
    assert_eq!(s.stop_signal, Signal::TERM);
    assert_eq!(s.stop_timeout, Duration::from_secs(5));
    assert_eq!(s.log_ring, 1000);
    assert!(s.depends_on.is_empty());
    assert_eq!((&s.ready, &s.health), (&None, &None));
    assert_eq!(
        ExitSignals::default(),
        ExitSignals::of(&[Signal::TERM, Signal::INT])
    );
}

#[test]
fn oneshot_defaults_and_overrides() {
    let loaded = load(
        "[services.a]\ncommand = \"a\"\noneshot = true\n\
         [services.b]\ncommand = \"b\"\noneshot = true\nrestart = \"never\"\nstart-secs = \"2s\"\n",
    )
    .unwrap();
    let [a, b] = &loaded.spec.services[..] else {
        panic!()
    };
    assert_eq!(
        (a.restart, a.start_secs),
        (RestartPolicy::OnFailure, Duration::ZERO)
    );
    assert_eq!(
        (b.restart, b.start_secs),
        (RestartPolicy::Never, Duration::from_secs(2))
    );
}

#[test]
fn autostart_defaults_to_true_and_takes_a_bool() {
    let loaded =
        load("[services.a]\ncommand = \"a\"\n[services.b]\ncommand = \"b\"\nautostart = false\n")
            .unwrap();
    let autostart: Vec<bool> = loaded.spec.services.iter().map(|s| s.autostart).collect();
    assert_eq!(autostart, [true, false]);
    let e = error("[services.a]\ncommand = \"a\"\nautostart = \"no\"\n");
    assert_eq!((e.line, e.column), (3, 13), "{e}");
}

#[test]
fn run_on_shutdown_makes_a_task_that_nothing_may_wait_for() {
    let loaded = load(
        "[services.app]\ncommand = \"a\"\n\
         [services.deregister]\ncommand = \"d\"\nrun-on = \"shutdown\"\ndepends-on = [\"app\"]\n\
         [services.web]\ncommand = \"w\"\nrun-on = \"start\"\n",
    )
    .unwrap();
    let [app, task, web] = &loaded.spec.services[..] else {
        panic!()
    };
    assert_eq!((app.run_on, web.run_on), (RunOn::Start, RunOn::Start));
    // Implied: a one-shot task, with a one-shot task's defaults.
    assert_eq!(
        (task.run_on, task.oneshot, task.restart, task.start_secs),
        (
            RunOn::Shutdown,
            true,
            RestartPolicy::OnFailure,
            Duration::ZERO
        )
    );
    // It is a link of the stop chain: it and app share the budget.
    assert_eq!(
        (task.stop_timeout, app.stop_timeout),
        (Duration::from_millis(4500), Duration::from_millis(4500))
    );
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_error(
        "[services.t]\ncommand = \"t\"\noneshot = false\nrun-on = \"shutdown\"\n",
        4,
        10,
        "run-on = \"shutdown\" makes a one-shot task, but `oneshot = false` is set",
    );
    assert_error(
        "[services.t]\ncommand = \"t\"\nrun-on = \"shutdown\"\n\
         [services.app]\ncommand = \"a\"\ndepends-on = [\"t\"]\n",
        6,
        15,
        "service `app` depends on `t`, which runs only when tend shuts down \
         (`run-on = \"shutdown\"`), so `app` would never start",
    );
    let e = error("[services.t]\ncommand = \"t\"\nrun-on = \"stop\"\n");
    assert_eq!((e.line, e.column), (3, 10), "{e}");
    assert!(e.message.contains("expected `start` or `shutdown`"), "{e}");
}

#[test]
fn schedule_makes_a_task_that_runs_at_its_times() {
    let loaded = load(
        "[services.backup]\ncommand = \"b\"\nschedule = \" */15 * * * * \"\n\
         [services.tick]\ncommand = \"t\"\nschedule = \"@every 30s\"\nrestart = \"on-failure\"\n",
    )
    .unwrap();
    let [backup, tick] = &loaded.spec.services[..] else {
        panic!()
    };
    // Implied: a one-shot task that waits for its next time after a failed run.
    assert_eq!(
        (backup.oneshot, backup.restart, backup.start_secs),
        (true, RestartPolicy::Never, Duration::ZERO)
    );
    let schedule = backup.schedule.as_ref().unwrap();
    assert_eq!(schedule.text, "*/15 * * * *");
    assert!(matches!(schedule.rule, Rule::Cron(_)));
    assert_eq!(tick.restart, RestartPolicy::OnFailure);
    assert_eq!(
        tick.schedule.as_ref().unwrap().rule,
        Rule::Every(Duration::from_secs(30))
    );
    // No $TZ, no /etc/localtime in the fixture: UTC.
    assert_eq!(loaded.spec.timezone, jiff::tz::TimeZone::UTC);
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

#[test]
fn schedule_errors_point_inside_the_expression() {
    assert_error(
        "[services.b]\ncommand = \"b\"\nschedule = \"*/15 * 32 * *\"\n",
        3,
        20,
        "day of the month 32 is out of range: it goes from 1 to 31",
    );
    assert_error(
        "[services.b]\ncommand = \"b\"\nschedule = \"@every 10\"\n",
        3,
        20,
        "invalid duration \"10\" after @every: time unit needed, for example 10sec or 10ms; \
         expected a duration with a unit, such as \"30s\" or \"1h 30m\"",
    );
    assert_error(
        "[services.b]\ncommand = \"b\"\nschedule = \"0 0 * *\"\n",
        3,
        13,
        "a cron expression has 5 fields (minute hour day-of-month month day-of-week, or 6 \
         with a seconds field first), found 4",
    );
    assert_error(
        "[services.b]\ncommand = \"b\"\noneshot = false\nschedule = \"@daily\"\n",
        4,
        12,
        "schedule makes a one-shot task, run at its times, but `oneshot = false` is set",
    );
    assert_error(
        "[services.b]\ncommand = \"b\"\nrun-on = \"shutdown\"\nschedule = \"@daily\"\n",
        3,
        10,
        "a scheduled task runs at its times, a shutdown task when tend shuts down: `schedule` \
         and run-on = \"shutdown\" do not go together",
    );
    assert_error(
        "[services.b]\ncommand = \"b\"\nschedule = \"@daily\"\nrestart = \"always\"\n",
        4,
        11,
        "restart = \"always\" would start a scheduled task again as soon as it ends",
    );
    assert_error(
        "[services.b]\ncommand = \"b\"\nschedule = \"@daily\"\n\
         [services.app]\ncommand = \"a\"\ndepends-on = [\"b\"]\n",
        6,
        15,
        "service `app` depends on `b`, a scheduled task, which runs at its times and is never \
         done for good",
    );
}

/// A fixture whose time zone settings are `tz` ($TZ) and `localtime` (a link to a zone file,
/// or none).
fn zone_env(fixture: &Fixture, tz: Option<&str>, localtime: Option<&str>) -> Environment {
    let link = fixture.dir.path().join("localtime");
    if let Some(zone) = localtime {
        std::os::unix::fs::symlink(format!("/usr/share/zoneinfo/{zone}"), &link).unwrap();
    }
    Environment {
        tz: tz.map(OsString::from),
        ..fixture.env()
    }
}

fn zone_name(loaded: &Loaded) -> Option<&str> {
    loaded.spec.timezone.iana_name()
}

#[test]
fn timezone_from_the_file_then_tz_then_localtime() {
    let cron = "[services.b]\ncommand = \"b\"\nschedule = \"@daily\"\n";
    let f = Fixture::new();
    // `[tend] timezone` wins over everything.
    let env = zone_env(&f, Some("America/New_York"), Some("Asia/Tokyo"));
    let with_zone = format!("[tend]\ntimezone = \"Europe/Berlin\"\n{cron}");
    let loaded = load_str(&with_zone, "tend.toml", f.dir.path(), &env).unwrap();
    assert_eq!(zone_name(&loaded), Some("Europe/Berlin"));
    // Then $TZ, then /etc/localtime (named after its link).
    let loaded = load_str(cron, "tend.toml", f.dir.path(), &env).unwrap();
    assert_eq!(zone_name(&loaded), Some("America/New_York"));
    let env = Environment { tz: None, ..env };
    let loaded = load_str(cron, "tend.toml", f.dir.path(), &env).unwrap();
    assert_eq!(zone_name(&loaded), Some("Asia/Tokyo"));
    // A $TZ tend cannot read is said, pointing at the first cron rule, and not used.
    let env = Environment {
        tz: Some("Mars/Olympus".into()),
        ..env
    };
    let two = format!("[services.t]\ncommand = \"t\"\nschedule = \"@every 1s\"\n{cron}");
    let loaded = load_str(&two, "tend.toml", f.dir.path(), &env).unwrap();
    assert_eq!(zone_name(&loaded), Some("Asia/Tokyo"));
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].starts_with(
            "tend.toml:6:12: warning: $TZ is \"Mars/Olympus\", which tend cannot use: unknown time zone"
        ),
        "{}",
        loaded.warnings[0]
    );
    assert!(
        loaded.warnings[0].ends_with("(Asia/Tokyo)"),
        "{}",
        loaded.warnings[0]
    );
    // $TZ as the C library takes it: `:NAME`, a path, a POSIX rule, empty for UTC.
    for (tz, name) in [
        (":Europe/Paris", Some("Europe/Paris")),
        (
            "/usr/share/zoneinfo/Asia/Kolkata",
            Some("/usr/share/zoneinfo/Asia/Kolkata"),
        ),
        ("", Some("UTC")),
    ] {
        let env = Environment {
            tz: Some(tz.into()),
            ..env.clone()
        };
        let loaded = load_str(cron, "tend.toml", f.dir.path(), &env).unwrap();
        assert_eq!(zone_name(&loaded), name, "TZ={tz}");
    }
    let env = Environment {
        tz: Some("CET-1CEST,M3.5.0,M10.5.0/3".into()),
        ..env
    };
    let loaded = load_str(cron, "tend.toml", f.dir.path(), &env).unwrap();
    let summer: jiff::Timestamp = "2026-07-01T12:00:00Z".parse().unwrap();
    assert_eq!(loaded.spec.timezone.to_offset(summer).seconds(), 7200);
    // Without a cron rule nothing of the machine's is read.
    let every = "[services.t]\ncommand = \"t\"\nschedule = \"@every 1s\"\n";
    let loaded = load_str(every, "tend.toml", f.dir.path(), &env).unwrap();
    assert_eq!(loaded.spec.timezone, jiff::tz::TimeZone::UTC);
}

#[test]
fn timezone_errors() {
    let e = error("[tend]\ntimezone = \"Europe/Berln\"\n[services.a]\ncommand = \"a\"\n");
    assert_eq!((e.line, e.column), (2, 12), "{e}");
    assert!(
        e.message.starts_with(
            "unknown time zone \"Europe/Berln\": there is no /usr/share/zoneinfo/Europe/Berln"
        ),
        "{e}"
    );
    for bad in ["../../etc/passwd", "/etc/passwd", ""] {
        let e = error(&format!(
            "[tend]\ntimezone = \"{bad}\"\n[services.a]\ncommand = \"a\"\n"
        ));
        assert!(e.message.starts_with("unknown time zone"), "{bad}: {e}");
    }
    // A rule, and UTC, need no file.
    let loaded =
        load("[tend]\ntimezone = \"EST5EDT,M3.2.0,M11.1.0\"\n[services.a]\ncommand = \"a\"\n")
            .unwrap();
    assert_ne!(loaded.spec.timezone, jiff::tz::TimeZone::UTC);
    let loaded = load("[tend]\ntimezone = \"utc\"\n[services.a]\ncommand = \"a\"\n").unwrap();
    assert_eq!(loaded.spec.timezone, jiff::tz::TimeZone::UTC);
}

#[test]
fn finish_takes_a_command_and_its_timeout() {
    let loaded = load(
        "[services.a]\ncommand = \"a\"\nfinish = \"/srv/finish --quiet\"\n\
         [services.b]\ncommand = \"b\"\nfinish = [\"/bin/sh\", \"-c\", \"echo $1\", \"finish\"]\n\
         finish-timeout = \"2s\"\n\
         [services.c]\ncommand = \"c\"\n",
    )
    .unwrap();
    let [a, b, c] = &loaded.spec.services[..] else {
        panic!()
    };
    assert_eq!(
        a.finish,
        Some(Finish {
            argv: argv(&["/srv/finish", "--quiet"]),
            timeout: Duration::from_secs(5)
        })
    );
    assert_eq!(
        b.finish,
        Some(Finish {
            argv: argv(&["/bin/sh", "-c", "echo $1", "finish"]),
            timeout: Duration::from_secs(2)
        })
    );
    assert_eq!(c.finish, None);
    assert_error(
        "[services.a]\ncommand = \"a\"\nfinish-timeout = \"1s\"\n",
        3,
        18,
        "finish-timeout limits the `finish` command, but this service has none",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nfinish = []\n",
        3,
        10,
        "`finish` is empty",
    );
    // Its timeout is part of the service's link of a stop chain.
    let loaded = load(
        "[services.db]\ncommand = \"d\"\nstop-timeout = \"4s\"\nfinish = \"f\"\n\
         [services.app]\ncommand = \"a\"\ndepends-on = [\"db\"]\nstop-timeout = \"1s\"\n",
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:7:15: warning: the stop chain app -> db (each stops before the one it \
          depends on) can take 10s (stop-timeouts 1s + 4s + finish 5s), longer than \
          shutdown-timeout 9s, so `db` may be killed before it has stopped"
        ]
    );
}

#[test]
fn services_keep_file_order() {
    let loaded = load(
        "[services.zeta]\ncommand = \"z\"\n[services.alpha]\ncommand = \"a\"\n\
         [services.mid]\ncommand = \"m\"\n[services.beta]\ncommand = \"b\"\n",
    )
    .unwrap();
    let names: Vec<&str> = loaded
        .spec
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["zeta", "alpha", "mid", "beta"]);
}

#[test]
fn commands_strings_and_numbers() {
    let loaded = load(
        r#"
[services.a]
command = "run --name 'my app' \"x y\" a\\ b"
start-secs = 0.5
stop-timeout = "1m 30s"
user = "1000"
group = 7
umask = "022"
success-codes = [3]
"#,
    )
    .unwrap();
    let a = &loaded.spec.services[0];
    assert_eq!(
        a.launch.argv,
        argv(&["run", "--name", "my app", "x y", "a b"])
    );
    assert_eq!(a.start_secs, Duration::from_millis(500));
    assert_eq!(a.stop_timeout, Duration::from_secs(90));
    assert_eq!(
        a.launch.credentials,
        Some(Credentials {
            uid: 1000,
            gid: 7,
            groups: vec![4]
        })
    );
    assert_eq!(a.launch.umask, Some(0o022));
    assert_eq!(a.success_codes, codes(&[3]));
}

#[test]
fn warns_when_a_stop_timeout_exceeds_the_shutdown_budget() {
    let loaded = load(
        "[tend]\nshutdown-timeout = \"3s\"\n\
         [services.slow]\ncommand = \"x\"\nstop-timeout = \"10s\"\n\
         [services.quick]\ncommand = \"x\"\nstop-timeout = 1\n\
         [services.default]\ncommand = \"x\"\n",
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:5:16: warning: service `slow` has stop-timeout 10s, longer than \
             shutdown-timeout 3s: services stop in parallel within the shutdown budget, so it \
             may be killed before it has stopped",
        ]
    );
    // The one that sets none gets the whole (short) budget rather than the usual 5s.
    assert_eq!(loaded.spec.services[2].stop_timeout, Duration::from_secs(3));
}

#[test]
fn depends_on_in_both_forms() {
    let loaded = load(
        r#"
[tend]
shutdown-timeout = "1m"

[services.web]
command = "web"
depends-on = { app = "ready", migrate = "completed", cache = "started" }

[services.app]
command = "app"
depends-on = ["db", "cache"]

[services.db]
command = "db"
depends-on = []

[services.cache]
command = "cache"
depends-on.db = "ready"

[services.migrate]
command = "migrate"
oneshot = true

[services.migrate.depends-on]
db = "ready"
"#,
    )
    .unwrap();
    let dep = |on: usize, condition: Condition| Dependency {
        on: ServiceId(on),
        condition,
    };
    let deps: Vec<&[Dependency]> = loaded
        .spec
        .services
        .iter()
        .map(|s| s.depends_on.as_slice())
        .collect();
    assert_eq!(
        deps,
        [
            &[
                dep(1, Condition::Ready),
                dep(4, Condition::Completed),
                dep(3, Condition::Started)
            ][..],
            &[dep(2, Condition::Started), dep(3, Condition::Started)],
            &[],
            &[dep(2, Condition::Ready)],
            &[dep(2, Condition::Ready)],
        ]
    );
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

#[test]
fn bad_depends_on() {
    const TWO: &str = "[services.b]\ncommand = \"b\"\n";
    let with = |line: &str| format!("[services.a]\ncommand = \"a\"\n{line}\n{TWO}");
    assert_error(
        &with("depends-on = { b = \"healthy\" }"),
        3,
        20,
        "invalid value `healthy`, expected one of `started`, `ready`, `completed`",
    );
    assert_error(
        &with("depends-on = { b = 1 }"),
        3,
        20,
        "invalid type: integer `1`, expected a condition: \"started\", \"ready\" or \"completed\"",
    );
    assert_error(
        &with("depends-on = \"b\""),
        3,
        14,
        "invalid type: string \"b\", expected a table of service names and conditions such as \
         { db = \"ready\" }, or an array of service names",
    );
    assert_error(
        &with("depends-on = [1]"),
        3,
        15,
        "invalid type: integer `1`, expected a string",
    );
    assert_error(
        &with("depends-on = [\"b\", \"c\"]"),
        3,
        20,
        "service `a` depends on `c`, which is not defined",
    );
    assert_error(
        &with("depends-on = { \"b\" = \"ready\", cc = \"ready\" }"),
        3,
        31,
        "service `a` depends on `cc`, which is not defined",
    );
    assert_error(
        &with("depends-on = { a = \"ready\" }"),
        3,
        16,
        "service `a` depends on itself",
    );
    assert_error(
        &with("depends-on = [\"b\", \"a\"]"),
        3,
        20,
        "service `a` depends on itself",
    );
    assert_error(
        &with("depends-on = [\"b\", \"b\"]"),
        3,
        20,
        "`b` is listed twice in the `depends-on` of `a`",
    );
    // A key written twice is TOML's own error.
    let e = error(&with("depends-on = { b = \"ready\", b = \"started\" }"));
    assert_eq!(e.line, 3, "{e}");
    // Each service's dependencies are checked with it, so errors come in file order.
    assert_error(
        "[services.a]\ncommand = \"a\"\ndepends-on = [\"nope\"]\n\
         [services.b]\ncommand = \"b\"\nmax-restarts = -1\n",
        3,
        15,
        "service `a` depends on `nope`, which is not defined",
    );
}

#[test]
fn dependency_cycles_are_spelt_out() {
    assert_error(
        "[services.web]\ncommand = \"w\"\ndepends-on = [\"app\"]\n\
         [services.app]\ncommand = \"a\"\ndepends-on = { web = \"ready\" }\n",
        6,
        16,
        "dependency cycle: web -> app -> web",
    );
    // Found from the first service, reported from where the cycle begins.
    assert_error(
        "[services.front]\ncommand = \"f\"\ndepends-on = [\"a\"]\n\
         [services.a]\ncommand = \"a\"\ndepends-on = [\"b\"]\n\
         [services.b]\ncommand = \"b\"\ndepends-on = [\"x\", \"c\"]\n\
         [services.c]\ncommand = \"c\"\ndepends-on = { a = \"started\" }\n\
         [services.x]\ncommand = \"x\"\n",
        12,
        16,
        "dependency cycle: a -> b -> c -> a",
    );
    // A graph without a cycle, where paths meet again, is fine.
    let loaded = load(
        "[tend]\nshutdown-timeout = \"1m\"\n\
         [services.a]\ncommand = \"a\"\ndepends-on = [\"b\", \"c\"]\n\
         [services.b]\ncommand = \"b\"\ndepends-on = [\"d\"]\n\
         [services.c]\ncommand = \"c\"\ndepends-on = [\"d\"]\n\
         [services.d]\ncommand = \"d\"\n",
    )
    .unwrap();
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

#[test]
fn warns_when_waiting_for_a_service_that_is_not_oneshot_to_complete() {
    let loaded = load(
        "[services.setup]\ncommand = \"s\"\n\
         [services.app]\ncommand = \"a\"\ndepends-on = { setup = \"completed\" }\n\
         [services.task]\ncommand = \"t\"\noneshot = true\n\
         [services.other]\ncommand = \"o\"\ndepends-on = { task = \"completed\" }\n",
    )
    .unwrap();
    // `completed` dependencies do not add up at shutdown: no stop-chain warning either.
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:5:24: warning: service `app` waits for `setup` to complete, but `setup` is \
          not `oneshot = true`: it completes only if it exits successfully and is not restarted"
        ]
    );
}

#[test]
fn warns_when_a_stop_chain_exceeds_the_shutdown_budget() {
    let loaded = load(
        r#"[tend]
shutdown-timeout = "12s"
[services.web]
command = "w"
depends-on = ["cache", "app"]
[services.app]
command = "a"
depends-on = { db = "ready", migrate = "completed" }
[services.db]
command = "d"
stop-timeout = "4s"
[services.cache]
command = "c"
stop-timeout = "9s"
[services.migrate]
command = "m"
oneshot = true
stop-timeout = "30s"
depends-on = ["db"]
[services.worker]
command = "k"
stop-timeout = 3
depends-on = { db = "started" }
"#,
    )
    .unwrap();
    // Defaulted stop-timeouts share the budget: web's chains go through cache (9s set) and
    // through app -> db (4s set, app defaulted), so web gets (12s - 9s) / 2 and fits.
    // migrate: its dependent app starts only once it has exited, so it heads its own chain,
    // and its own 30s is what does not fit.
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:19:15: warning: the stop chain migrate -> db (each stops before the one \
          it depends on) can take 34s (stop-timeouts 30s + 4s), longer than \
          shutdown-timeout 12s, so `db` may be killed before it has stopped"
        ]
    );
    let timeouts: Vec<(&str, Duration)> = loaded
        .spec
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.stop_timeout))
        .collect();
    assert_eq!(
        timeouts,
        [
            ("web", Duration::from_millis(1500)),
            ("app", Duration::from_secs(4)),
            ("db", Duration::from_secs(4)),
            ("cache", Duration::from_secs(9)),
            ("migrate", Duration::from_secs(30)),
            ("worker", Duration::from_secs(3)),
        ]
    );
    // Set stop-timeouts that leave no room: the defaulted ones get the least share (1s) and
    // the chain warns.
    let loaded = load(
        "[services.web]\ncommand = \"w\"\ndepends-on = { app = \"ready\" }\n\
         [services.app]\ncommand = \"a\"\ndepends-on = [\"db\"]\n\
         [services.db]\ncommand = \"d\"\nstop-timeout = \"8s\"\n",
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:3:16: warning: the stop chain web -> app -> db (each stops before the one \
          it depends on) can take 10s (stop-timeouts 1s + 1s + 8s), longer than \
          shutdown-timeout 9s, so `db` may be killed before it has stopped"
        ]
    );
}

/// Issue: the simplest file with a dependency warned (5s + 5s > 9s). Defaulted stop-timeouts
/// now share the budget along each chain, at most 5s each and at least 1s.
#[test]
fn defaulted_stop_timeouts_share_the_shutdown_budget_along_a_chain() {
    let timeouts = |text: &str| -> (Vec<Duration>, Vec<String>) {
        let loaded = load(text).unwrap();
        let t = loaded
            .spec
            .services
            .iter()
            .map(|s| s.stop_timeout)
            .collect();
        (t, loaded.warnings)
    };
    let ms = Duration::from_millis;
    let chain = |n: usize| -> String {
        (0..n)
            .map(|i| match i {
                0 => "[services.s0]\ncommand = \"x\"\n".to_string(),
                _ => format!(
                    "[services.s{i}]\ncommand = \"x\"\ndepends-on = [\"s{}\"]\n",
                    i - 1
                ),
            })
            .collect()
    };
    // Alone, or side by side: the plain default.
    assert_eq!(timeouts(&chain(1)), (vec![ms(5000)], vec![]));
    assert_eq!(
        timeouts("[services.a]\ncommand = \"a\"\n[services.b]\ncommand = \"b\"\n"),
        (vec![ms(5000), ms(5000)], vec![])
    );
    // db <- app: 4.5s each, 9s in all; a chain of three: 3s each.
    assert_eq!(timeouts(&chain(2)), (vec![ms(4500); 2], vec![]));
    assert_eq!(timeouts(&chain(3)), (vec![ms(3000); 3], vec![]));
    // A longer budget: capped at the default.
    let roomy = format!("[tend]\nshutdown-timeout = \"60s\"\n{}", chain(3));
    assert_eq!(timeouts(&roomy), (vec![ms(5000); 3], vec![]));
    // A set stop-timeout takes its part first; a `completed` wait is no chain.
    let (t, warnings) = timeouts(
        "[services.db]\ncommand = \"d\"\nstop-timeout = \"6s\"\n\
         [services.app]\ncommand = \"a\"\ndepends-on = { db = \"ready\", init = \"completed\" }\n\
         [services.init]\ncommand = \"i\"\noneshot = true\n",
    );
    assert_eq!((t, warnings), (vec![ms(6000), ms(3000), ms(5000)], vec![]));
    // Nine in a row still fit (1s each); ten cannot, and say so.
    assert_eq!(timeouts(&chain(9)), (vec![ms(1000); 9], vec![]));
    let (t, warnings) = timeouts(&chain(10));
    assert_eq!(t, vec![ms(1000); 10]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("can take 10s"), "{warnings:?}");
}

/// `ready` of the only service of `[services.a]` with `line` added.
fn ready_of(line: &str) -> Option<ReadyRule> {
    let text = format!("[services.a]\ncommand = \"a\"\n{line}\n");
    load(&text).unwrap().spec.services[0].ready.clone()
}

fn health_of(line: &str) -> Option<HealthRule> {
    let text = format!("[services.a]\ncommand = \"a\"\n{line}\n");
    load(&text).unwrap().spec.services[0].health.clone()
}

#[test]
fn ready_probes_and_their_defaults() {
    let polled = |probe: Probe| ReadyRule {
        probe,
        interval: Duration::from_millis(250),
        attempt_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(60),
    };
    assert_eq!(ready_of(""), None);
    assert_eq!(
        ready_of("ready = { tcp = \"db:5432\" }"),
        Some(polled(Probe::Tcp {
            target: HostPort::new("db", 5432)
        }))
    );
    assert_eq!(
        ready_of("ready.http = \"http://127.0.0.1:8080/ready?full=1\""),
        Some(polled(Probe::Http {
            target: HttpTarget::new("127.0.0.1", 8080, "/ready?full=1")
        }))
    );
    assert_eq!(
        ready_of("ready = { http = \"HTTP://[::1]\" }"),
        Some(polled(Probe::Http {
            target: HttpTarget::new("::1", 80, "/")
        }))
    );
    // What the probe sends: the request line takes ASCII only.
    assert_eq!(
        ready_of("ready = { http = \"http://web/é\" }"),
        Some(polled(Probe::Http {
            target: HttpTarget::new("web", 80, "/%C3%A9")
        }))
    );
    assert_eq!(
        ready_of("ready = { exec = [\"pg_isready\", \"-h\", \"127.0.0.1\"] }"),
        Some(polled(Probe::Exec {
            argv: argv(&["pg_isready", "-h", "127.0.0.1"])
        }))
    );
    assert_eq!(
        ready_of("ready = { exec = \"redis-cli -p 6380 'ping'\" }"),
        Some(polled(Probe::Exec {
            argv: argv(&["redis-cli", "-p", "6380", "ping"])
        }))
    );
    let notified = |probe: Probe, timeout: Duration| ReadyRule {
        probe,
        interval: Duration::from_millis(250),
        attempt_timeout: Duration::from_secs(1),
        timeout,
    };
    assert_eq!(
        ready_of("ready = { notify-fd = 3 }"),
        Some(notified(Probe::NotifyFd { fd: 3 }, Duration::from_secs(60)))
    );
    assert_eq!(
        ready_of("[services.a.ready]\nnotify-fd = 1023\ntimeout = \"2m\""),
        Some(notified(
            Probe::NotifyFd { fd: 1023 },
            Duration::from_secs(120)
        ))
    );
    assert_eq!(
        ready_of("ready = { sd-notify = true, timeout = 5 }"),
        Some(notified(Probe::SdNotify, Duration::from_secs(5)))
    );
    assert_eq!(
        ready_of(
            "ready = { tcp = \"db:1\", interval = 0.1, attempt-timeout = \"3s\", \
             timeout = \"1m 30s\" }"
        ),
        Some(ReadyRule {
            probe: Probe::Tcp {
                target: HostPort::new("db", 1)
            },
            interval: Duration::from_millis(100),
            attempt_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(90),
        })
    );
}

#[test]
fn health_checks_and_their_defaults() {
    let checked = |probe: Probe| HealthRule {
        probe,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        start_period: Duration::ZERO,
        failures: 3,
    };
    assert_eq!(health_of(""), None);
    assert_eq!(
        health_of("health = { http = \"http://web/healthz\" }"),
        Some(checked(Probe::Http {
            target: HttpTarget::new("web", 80, "/healthz")
        }))
    );
    assert_eq!(
        health_of("health.tcp = \"127.0.0.1:6379\""),
        Some(checked(Probe::Tcp {
            target: HostPort::new("127.0.0.1", 6379)
        }))
    );
    assert_eq!(
        health_of("[services.a.health]\nexec = \"check --quick\"\nfailures = 1000"),
        Some(HealthRule {
            failures: 1000,
            ..checked(Probe::Exec {
                argv: argv(&["check", "--quick"])
            })
        })
    );
    assert_eq!(
        health_of(
            "health = { exec = [\"check\"], interval = \"1m\", timeout = \"1m\", \
             start-period = \"30s\", failures = 1 }"
        ),
        Some(HealthRule {
            probe: Probe::Exec {
                argv: argv(&["check"])
            },
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            start_period: Duration::from_secs(30),
            failures: 1,
        })
    );
}

#[test]
fn bad_ready() {
    let with = |line: &str| format!("[services.a]\ncommand = \"a\"\n{line}\n");
    assert_error(
        &with("ready = {}"),
        3,
        9,
        "`ready` has no probe: give exactly one of `tcp`, `http`, `exec`, `notify-fd` or \
         `sd-notify`",
    );
    assert_error(
        &with("ready = { timeout = \"5s\" }"),
        3,
        9,
        "`ready` has no probe: give exactly one of `tcp`, `http`, `exec`, `notify-fd` or \
         `sd-notify`",
    );
    assert_error(
        &with("[services.a.ready]\ntimeout = \"5s\""),
        3,
        1,
        "`ready` has no probe: give exactly one of `tcp`, `http`, `exec`, `notify-fd` or \
         `sd-notify`",
    );
    assert_error(
        &with("ready = { tcp = \"db:1\", http = \"http://db/\" }"),
        3,
        9,
        "`ready` has more than one probe (`tcp` and `http`): give exactly one of `tcp`, `http`, \
         `exec`, `notify-fd` or `sd-notify`",
    );
    assert_error(
        &with("ready.exec = \"x\"\nready.notify-fd = 3\nready.sd-notify = true"),
        3,
        1,
        "`ready` has more than one probe (`exec`, `notify-fd` and `sd-notify`): give exactly \
         one of `tcp`, `http`, `exec`, `notify-fd` or `sd-notify`",
    );
    assert_error(
        &with("ready = { sd-notify = false }"),
        3,
        23,
        "`sd-notify = false` chooses no probe: write `sd-notify = true`, or use another probe \
         (`tcp`, `http`, `exec` or `notify-fd`)",
    );
    for fd in ["2", "1024", "-1", "99999999999"] {
        assert_error(
            &with(&format!("ready = {{ notify-fd = {fd} }}")),
            3,
            23,
            &format!(
                "ready.notify-fd must be from 3 to 1023 (0, 1 and 2 are stdin, stdout and \
                 stderr), found {fd}"
            ),
        );
    }
    assert_error(
        &with("ready = { sd-notify = true, interval = \"1s\" }"),
        3,
        40,
        "`interval` applies only to the polled probes (`tcp`, `http`, `exec`): with \
         `sd-notify`, the service itself tells tend when it is ready",
    );
    assert_error(
        &with("ready = { notify-fd = 5, attempt-timeout = \"1s\" }"),
        3,
        44,
        "`attempt-timeout` applies only to the polled probes (`tcp`, `http`, `exec`): with \
         `notify-fd`, the service itself tells tend when it is ready",
    );
    assert_error(
        &with("ready = { tcp = \"db:1\", interval = 0 }"),
        3,
        36,
        "ready.interval must be longer than zero",
    );
    assert_error(
        &with("ready = { tcp = \"db:1\", attempt-timeout = \"0s\" }"),
        3,
        43,
        "ready.attempt-timeout must be longer than zero",
    );
    assert_error(
        &with("ready = { tcp = \"db:1\", timeout = \"0ms\" }"),
        3,
        35,
        "ready.timeout must be longer than zero",
    );
    let e = error(&with("ready = { tcp = \"db:1\", timeout = \"soon\" }"));
    assert_eq!((e.line, e.column), (3, 35));
    assert!(e.message.starts_with("invalid duration \"soon\""), "{e}");
    assert_error(
        &with("ready = \"tcp:80\""),
        3,
        9,
        "invalid type: string \"tcp:80\", expected a table with one probe, such as \
         { tcp = \"127.0.0.1:8080\" }",
    );
    assert_error(
        &with("ready = { tcp = \"db:1\", failures = 3 }"),
        3,
        25,
        "unknown key `failures`, expected one of `tcp`, `http`, `exec`, `notify-fd`, \
         `sd-notify`, `timeout`, `interval`, `attempt-timeout`",
    );
    assert_error(
        &with("ready = { tcp = 8080 }"),
        3,
        17,
        "invalid type: integer `8080`, expected a string",
    );
    assert_error(
        &with("ready = { notify-fd = \"3\" }"),
        3,
        23,
        "invalid type: string \"3\", expected i64",
    );
}

#[test]
fn bad_probe_addresses_point_inside_the_value() {
    let with = |line: &str| format!("[services.a]\ncommand = \"a\"\n{line}\n");
    assert_error(
        &with("ready = { tcp = \"db:0\" }"),
        3,
        21,
        "port 0 is out of range: expected a number from 1 to 65535",
    );
    assert_error(
        &with("ready = { tcp = \"db\" }"),
        3,
        18,
        "\"db\" has no port; expected HOST:PORT such as \"127.0.0.1:8080\" or \"[::1]:8080\"",
    );
    assert_error(
        &with("health = { tcp = \"::1:80\" }"),
        3,
        19,
        "an IPv6 address must be written in brackets, as in [::1]:8080",
    );
    assert_error(
        &with("health = { tcp = \"db server:80\" }"),
        3,
        19,
        "invalid host \"db server\": expected a name (letters, digits, '-', '_' and '.'), an \
         IPv4 address, or an IPv6 address in brackets",
    );
    assert_error(
        &with("ready = { http = \"https://web/health\" }"),
        3,
        19,
        "https is not supported: probes speak plain HTTP only (tend has no TLS); use an \
         http:// URL, or an `exec` probe that runs an HTTPS client",
    );
    assert_error(
        &with("health = { http = 'http://web:99999/' }"),
        3,
        31,
        "port 99999 is out of range: expected a number from 1 to 65535",
    );
    assert_error(
        &with("health = { http = \"web/health\" }"),
        3,
        20,
        "expected a URL starting with http://, such as \"http://127.0.0.1:8080/health\"",
    );
    assert_error(
        &with("health = { http = \"http://web/a b\" }"),
        3,
        32,
        "the URL contains a blank or control character; percent-encode it (a space is %20)",
    );
    // With escapes in the TOML string, offsets no longer match: the whole value is shown.
    assert_error(
        &with("ready = { tcp = \"d\\u0062:0\" }"),
        3,
        17,
        "port 0 is out of range: expected a number from 1 to 65535",
    );
}

#[test]
fn bad_exec_probes() {
    let with = |line: &str| format!("[services.a]\ncommand = \"a\"\n{line}\n");
    assert_error(
        &with("ready = { exec = [] }"),
        3,
        18,
        "`ready.exec` is empty",
    );
    assert_error(
        &with("health = { exec = \" \" }"),
        3,
        19,
        "`health.exec` is empty",
    );
    assert_error(
        &with("health = { exec = [\"\"] }"),
        3,
        20,
        "the program name (the first element of `health.exec`) is empty",
    );
    assert_error(
        &with("ready = { exec = \"check 'x\" }"),
        3,
        25,
        "unterminated single quote in `ready.exec`: the quote opened here is never closed",
    );
    assert_error(
        &with("ready = { exec = 5 }"),
        3,
        18,
        "invalid type: integer `5`, expected a command: an array of strings, or a string",
    );
    let loaded = load(&with("ready = { exec = \"test -e /run/ready && exit 0\" }")).unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:3:18: warning: `ready.exec` of service `a` contains `&`, which is passed \
             on literally because no shell runs it; write it as [\"/bin/sh\", \"-c\", \"...\"] to \
             run it with a shell, or quote it to silence this warning"
        ]
    );
}

#[test]
fn bad_health() {
    let with = |line: &str| format!("[services.a]\ncommand = \"a\"\n{line}\n");
    let notify = |key: &str| {
        format!(
            "`{key}` cannot be a health check: the service notifies readiness once, while \
             health is checked again and again; use it in `ready`, and `tcp`, `http` or `exec` \
             here"
        )
    };
    // At the key, in every way of writing it.
    assert_error(
        &with("health = { tcp = \"db:1\", sd-notify = true }"),
        3,
        26,
        &notify("sd-notify"),
    );
    assert_error(&with("health.notify-fd = 3"), 3, 8, &notify("notify-fd"));
    assert_error(
        &with("[services.a.health]\ninterval = \"5s\"\nnotify-fd = 3"),
        5,
        1,
        &notify("notify-fd"),
    );
    assert_error(
        &with("health = { interval = \"5s\" }"),
        3,
        10,
        "`health` has no probe: give exactly one of `tcp`, `http` or `exec`",
    );
    assert_error(
        &with("health = { exec = \"x\", tcp = \"db:1\" }"),
        3,
        10,
        "`health` has more than one probe (`tcp` and `exec`): give exactly one of `tcp`, \
         `http` or `exec`",
    );
    assert_error(
        &with("health = { tcp = \"db:1\", interval = \"0s\" }"),
        3,
        37,
        "health.interval must be longer than zero",
    );
    assert_error(
        &with("health = { tcp = \"db:1\", timeout = 0 }"),
        3,
        36,
        "health.timeout must be longer than zero",
    );
    for n in ["0", "1001", "-3"] {
        assert_error(
            &with(&format!("health = {{ tcp = \"db:1\", failures = {n} }}")),
            3,
            37,
            &format!("health.failures must be from 1 to 1000, found {n}"),
        );
    }
    let e = error(&with("health = { tcp = \"db:1\", start-period = -1 }"));
    assert_eq!((e.line, e.column), (3, 41));
    assert!(
        e.message.starts_with("invalid duration -1: it is negative"),
        "{e}"
    );
    assert_error(
        &with("health = { tcp = \"db:1\", attempt-timeout = \"1s\" }"),
        3,
        26,
        "unknown key `attempt-timeout`, expected one of `tcp`, `http`, `exec`, `interval`, \
         `timeout`, `start-period`, `failures`",
    );
    assert_error(
        &with("health = [\"curl\"]"),
        3,
        10,
        "invalid type: array, expected a table with one check, such as \
         { http = \"http://127.0.0.1:8080/health\" }",
    );
    assert_error(
        &with("health = { tcp = \"db:1\", failures = \"3\" }"),
        3,
        37,
        "invalid type: string \"3\", expected i64",
    );
}

#[test]
fn warns_when_a_health_check_can_outlast_its_interval() {
    let loaded = load(
        "[services.a]\ncommand = \"a\"\nhealth = { tcp = \"db:1\", interval = \"1s\" }\n\
         [services.b]\ncommand = \"b\"\nhealth = { tcp = \"db:1\", timeout = \"15s\" }\n\
         [services.c]\ncommand = \"c\"\n[services.c.health]\ninterval = 3\ntcp = \"db:1\"\n\
         timeout = \"3500ms\"\n\
         [services.d]\ncommand = \"d\"\n\
         health = { tcp = \"db:1\", interval = \"5s\", timeout = \"5s\" }\n",
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:3:37: warning: the health check of service `a` has timeout 2s, longer \
             than its interval 1s: one check may still run when the next is due",
            "tend.toml:6:36: warning: the health check of service `b` has timeout 15s, longer \
             than its interval 10s: one check may still run when the next is due",
            "tend.toml:12:11: warning: the health check of service `c` has timeout 3s 500ms, \
             longer than its interval 3s: one check may still run when the next is due",
        ]
    );
}

#[test]
fn other_warnings() {
    let loaded = load(
        "[tend]\nshutdown-signals = []\n\
         [services.a]\ncommand = \"echo $HOME > /x\"\nuser = 4242\n",
    )
    .unwrap();
    assert_eq!(
        loaded.spec.signals,
        SignalRouting::Supervise {
            shutdown: ExitSignals(0)
        }
    );
    let creds = loaded.spec.services[0].launch.credentials.clone();
    assert_eq!(
        creds,
        Some(Credentials {
            uid: 4242,
            gid: 0,
            groups: vec![]
        })
    );
    let w = &loaded.warnings;
    assert_eq!(w.len(), 3, "{w:#?}");
    assert!(
        w[0].starts_with("tend.toml:2:20: warning: shutdown-signals is empty"),
        "{}",
        w[0]
    );
    assert!(w[1].starts_with("tend.toml:4:11: warning: the command of service `a` contains `$`"));
    assert!(w[2].starts_with(
        "tend.toml:5:8: warning: service `a` runs as uid 4242, which has no entry in"
    ));
}

#[test]
fn load_file_resolves_relative_paths_from_the_file() {
    let f = Fixture::new();
    std::fs::create_dir(f.dir.path().join("conf")).unwrap();
    f.write("conf/vars.env", "X=1\n");
    let path = f.write(
        "conf/tend.toml",
        "[tend]\nsocket = \"ctl.sock\"\n[services.a]\ncommand = \"a\"\nenv-file = \"vars.env\"\n\
         workdir = \"../srv\"\n",
    );
    let loaded = load_file(&path, &f.env()).unwrap();
    let conf = f.dir.path().join("conf");
    assert_eq!(loaded.settings.socket, conf.join("ctl.sock"));
    let a = &loaded.spec.services[0];
    assert_eq!(a.launch.env, [("X".into(), "1".into())]);
    assert_eq!(a.launch.workdir, Some(conf.join("../srv")));
}

#[test]
fn load_file_errors() {
    let f = Fixture::new();
    let missing = f.dir.path().join("nope.toml");
    let e = load_file(&missing, &f.env()).unwrap_err();
    assert_eq!((e.line, e.column), (1, 1));
    assert!(
        e.message
            .starts_with("cannot read the configuration file: "),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("{}:1:1: error: cannot read", missing.display()))
    );

    let path = f.write("bad.toml", b"[services.a]\ncommand = \"caf\xe9\"\n");
    let e = load_file(&path, &f.env()).unwrap_err();
    assert_eq!((e.line, e.column), (2, 15));
    assert_eq!(
        e.message,
        "the file is not valid UTF-8 (byte 0xE9); TOML files must be UTF-8"
    );
}

#[test]
fn unknown_keys_point_at_the_key() {
    assert_error(
        "servics = 1\n",
        1,
        1,
        "unknown key `servics`, expected `tend` or `services`",
    );
    assert_error(
        "[tend]\nmetrics = \"127.0.0.1:9100\"\n[services.a]\ncommand = \"a\"\n",
        2,
        1,
        "unknown key `metrics`, expected one of `shutdown-timeout`, `socket`, `socket-group`, \
         `http`, `log-timestamps`, `log-format`, `shutdown-signals`, `shm`, `timezone`",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nreadiness = { tcp = \"db:5432\" }\n",
        3,
        1,
        "unknown key `readiness`, expected one of `command`, `instances`, `shell`, `env`, \
         `env-file`, `workdir`, `user`, `group`, `umask`, `limits`, `oneshot`, `autostart`, \
         `run-on`, `schedule`, `restart`, `success-codes`, \
         `backoff`, `start-secs`, `max-restarts`, `critical`, `stop-signal`, `stop-timeout`, \
         `finish`, `finish-timeout`, `logs`, `pid-file`, `depends-on`, `ready`, `health`, \
         `memory-limit`",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nbackoff = { initial = \"1s\", maximum = \"2s\" }\n",
        3,
        29,
        "unknown key `maximum`, expected one of `initial`, `max`, `factor`",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlimits = { files = 5 }\n",
        3,
        12,
        "unknown key `files`, expected one of `nofile`, `nproc`, `core`, `memlock`, `stack`",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlimits = { core = { soft = 1, max = 2 } }\n",
        3,
        31,
        "unknown key `max`, expected `soft` or `hard`",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { ring = 10, files = \"/var/log/a.log\" }\n",
        3,
        21,
        "unknown key `files`, expected one of `ring`, `ring-max-size`, `file`, `max-size`, `keep`",
    );
    // A sub-table under a service is a key of that service too.
    let e = error("[services.a]\ncommand = \"a\"\n[services.a.extra]\n");
    assert_eq!((e.line, e.column), (3, 13));
}

#[test]
fn wrong_types() {
    assert_error(
        "[services.a]\ncommand = \"a\"\ncritical = \"yes\"\n",
        3,
        12,
        "invalid type: string \"yes\", expected a boolean",
    );
    assert_error(
        "[services.a]\ncommand = 5\n",
        2,
        11,
        "invalid type: integer `5`, expected a command: an array of strings, or a string",
    );
    assert_error(
        "[services.a]\ncommand = [\"a\", 5]\n",
        2,
        17,
        "invalid type: integer `5`, expected a string",
    );
    assert_error(
        "services = [1]\n",
        1,
        12,
        "invalid type: array, expected a table",
    );
    assert_error(
        "tend = 1\n",
        1,
        8,
        "invalid type: integer `1`, expected the [tend] table",
    );
    assert_error(
        "[services]\na = 1\n",
        2,
        5,
        "invalid type: integer `1`, expected a service table",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nenv = { PORT = 80 }\n",
        3,
        16,
        "invalid type: integer `80`, expected a string",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nuser = true\n",
        3,
        8,
        "invalid type: boolean `true`, expected a name or a numeric id",
    );
    assert_error(
        "[tend]\nlog-format = \"xml\"\n[services.a]\ncommand = \"a\"\n",
        2,
        14,
        "invalid value `xml`, expected `prefixed` or `json`",
    );
}

#[test]
fn bad_durations() {
    assert_error(
        "[services.a]\ncommand = \"a\"\nstop-timeout = \"5 parsecs\"\n",
        3,
        16,
        "invalid duration \"5 parsecs\": unknown time unit \"parsecs\", supported units: ns, \
         us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations); expected \
         a duration with a unit such as \"100ms\", \"9s\" or \"1m 30s\", or a number of seconds",
    );
    let e = error("[tend]\nshutdown-timeout = -3\n[services.a]\ncommand = \"a\"\n");
    assert_eq!((e.line, e.column), (2, 20));
    assert!(
        e.message
            .starts_with("invalid duration -3: it is negative; expected"),
        "{e}"
    );
    let e = error("[services.a]\ncommand = \"a\"\nbackoff = { max = true }\n");
    assert_eq!((e.line, e.column), (3, 19));
    assert!(
        e.message
            .starts_with("invalid type: boolean `true`, expected a duration"),
        "{e}"
    );
    let e = error("[services.a]\ncommand = \"a\"\nstart-secs = \"9\"\n");
    assert!(e.message.contains("time unit needed"), "{e}");
}

#[test]
fn bad_signals() {
    assert_error(
        "[services.a]\ncommand = \"a\"\nstop-signal = \"TREM\"\n",
        3,
        15,
        "unknown signal \"TREM\"; expected a name such as \"TERM\", \"SIGQUIT\" or \"RTMIN+2\", \
         or a number from 1 to 64",
    );
    assert_error(
        "[tend]\nshutdown-signals = [\"TERM\", \"KILL\"]\n[services.a]\ncommand = \"a\"\n",
        2,
        29,
        "SIGKILL cannot be a shutdown signal: it cannot be caught",
    );
    let e = error("[tend]\nshutdown-signals = [\"SEGV\"]\n[services.a]\ncommand = \"a\"\n");
    assert!(
        e.message
            .starts_with("SIGSEGV cannot be a shutdown signal: it is a fault signal")
    );
    let e = error("[tend]\nshutdown-signals = [\"CHLD\"]\n[services.a]\ncommand = \"a\"\n");
    assert!(e.message.starts_with("SIGCHLD cannot be a shutdown signal"));
    let e = error("[tend]\nshutdown-signals = [\"nope\"]\n[services.a]\ncommand = \"a\"\n");
    assert_eq!((e.line, e.column), (2, 21));
}

#[test]
fn bad_policy_values() {
    assert_error(
        "[services.a]\ncommand = \"a\"\nrestart = \"sometimes\"\n",
        3,
        11,
        "invalid value `sometimes`, expected one of `always`, `on-failure`, `never`",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nsuccess-codes = [0, 256]\n",
        3,
        21,
        "exit codes are from 0 to 255, found 256",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nsuccess-codes = [-1]\n",
        3,
        18,
        "exit codes are from 0 to 255, found -1",
    );
    let e = error("[services.a]\ncommand = \"a\"\nsuccess-codes = []\n");
    assert_eq!((e.line, e.column), (3, 17));
    assert_error(
        "[services.a]\ncommand = \"a\"\nmax-restarts = -1\n",
        3,
        16,
        "max-restarts must be from 0 (never give up) to 4294967295, found -1",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nbackoff = { factor = 0.5 }\n",
        3,
        22,
        "backoff factor must be a number of at least 1.0, found 0.5",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nbackoff = { factor = nan }\n",
        3,
        22,
        "backoff factor must be a number of at least 1.0, found NaN",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nbackoff = { initial = \"1m\" }\n",
        3,
        23,
        "backoff initial (1m) is longer than max (30s)",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nbackoff = { max = \"10ms\" }\n",
        3,
        19,
        "backoff initial (100ms) is longer than max (10ms)",
    );
}

#[test]
fn bad_commands() {
    assert_error(
        "[services.web]\ncommand = \"nginx -g 'daemon off;\"\n",
        2,
        21,
        "unterminated single quote in `command`: the quote opened here is never closed",
    );
    // With escapes in the TOML string, offsets no longer match: the whole value is shown.
    let e = error("[services.web]\ncommand = \"a \\\"b\"\n");
    assert_eq!((e.line, e.column), (2, 11));
    assert_error(
        "[services.web]\ncommand = 'run \\'\n",
        2,
        16,
        "`command` ends with a backslash that escapes nothing",
    );
    assert_error(
        "[services.a]\nshell = true\ncommand = [\"sh\", \"-c\", \"x\"]\n",
        3,
        11,
        "with `shell = true`, `command` must be a string: the script for /bin/sh -c",
    );
    assert_error("[services.a]\ncommand = []\n", 2, 11, "`command` is empty");
    assert_error(
        "[services.a]\ncommand = \"  \"\n",
        2,
        11,
        "`command` is empty",
    );
    assert_error(
        "[services.a]\nshell = true\ncommand = \"\"\n",
        3,
        11,
        "`command` is empty",
    );
    assert_error(
        "[services.a]\ncommand = [\"\", \"x\"]\n",
        2,
        12,
        "the program name (the first element of `command`) is empty",
    );
    assert_error(
        "[services.a]\ncommand = \"'' x\"\n",
        2,
        11,
        "the program name (the first word of `command`) is empty",
    );
    assert_error(
        "[services.a]\ncommand = [\"a\\u0000\"]\n",
        2,
        12,
        "this argument contains a NUL character",
    );
    assert_error(
        "[services.a]\nshell = true\n",
        1,
        11,
        "service `a` has no `command`",
    );
}

#[test]
fn unknown_user_and_group_name_the_file() {
    let f = Fixture::new();
    let passwd = f.dir.path().join("etc/passwd");
    let group = f.dir.path().join("etc/group");
    let e = f
        .load("[services.a]\ncommand = \"a\"\nuser = \"nobody\"\n")
        .unwrap_err();
    assert_eq!((e.line, e.column), (3, 8));
    assert_eq!(
        e.message,
        format!("unknown user `nobody` (not in {})", passwd.display())
    );
    let e = f
        .load("[services.a]\ncommand = \"a\"\nuser = \"app\"\ngroup = \"wheel\"\n")
        .unwrap_err();
    assert_eq!((e.line, e.column), (4, 9));
    assert_eq!(
        e.message,
        format!("unknown group `wheel` (not in {})", group.display())
    );
}

#[test]
fn bad_ids() {
    assert_error(
        "[services.a]\ncommand = \"a\"\ngroup = \"app\"\n",
        3,
        9,
        "`group` needs `user` as well",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nuser = -1\n",
        3,
        8,
        "a uid must be from 0 to 4294967294",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nuser = \"4294967295\"\n",
        3,
        8,
        "a uid must be from 0 to 4294967294",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nuser = 0\ngroup = 99999999999\n",
        4,
        9,
        "a gid must be from 0 to 4294967294",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nuser = \"\"\n",
        3,
        8,
        "`user` is empty",
    );
}

#[test]
fn socket_group_by_name_or_number() {
    let gid = |value: &str| {
        let text = format!("[tend]\nsocket-group = {value}\n[services.a]\ncommand = \"a\"\n");
        load(&text).unwrap().settings.socket_group
    };
    assert_eq!(gid("\"adm\""), Some(4));
    assert_eq!(gid("\"staff\""), Some(50));
    assert_eq!(gid("50"), Some(50));
    assert_eq!(gid("\"44\""), Some(44));
    // A number need not be in the group file, as for `group`.
    assert_eq!(gid("12345"), Some(12345));
    assert_eq!(gid("0"), Some(0));
}

#[test]
fn bad_socket_groups() {
    let f = Fixture::new();
    let group = f.dir.path().join("etc/group");
    let e = f
        .load("[tend]\nsocket-group = \"wheel\"\n[services.a]\ncommand = \"a\"\n")
        .unwrap_err();
    assert_eq!((e.line, e.column), (2, 16));
    assert_eq!(
        e.message,
        format!("unknown group `wheel` (not in {})", group.display())
    );
    assert_error(
        "[tend]\nsocket-group = \"\"\n[services.a]\ncommand = \"a\"\n",
        2,
        16,
        "`socket-group` is empty",
    );
    assert_error(
        "[tend]\nsocket-group = -1\n[services.a]\ncommand = \"a\"\n",
        2,
        16,
        "a gid must be from 0 to 4294967294",
    );
    assert_error(
        "[tend]\nsocket-group = \"4294967295\"\n[services.a]\ncommand = \"a\"\n",
        2,
        16,
        "a gid must be from 0 to 4294967294",
    );
    assert_error(
        "[tend]\nsocket-group = true\n[services.a]\ncommand = \"a\"\n",
        2,
        16,
        "invalid type: boolean `true`, expected a name or a numeric id",
    );
}

#[test]
fn http_addresses() {
    let http = |value: &str| {
        let text = format!("[tend]\nhttp = {value}\n[services.a]\ncommand = \"a\"\n");
        load(&text).unwrap().settings.http.map(|a| a.to_string())
    };
    assert_eq!(
        http("\"127.0.0.1:9100\"").as_deref(),
        Some("127.0.0.1:9100")
    );
    // A port alone means loopback: reachable from outside only when asked for.
    assert_eq!(http("\":9100\"").as_deref(), Some("127.0.0.1:9100"));
    assert_eq!(http("\"9100\"").as_deref(), Some("127.0.0.1:9100"));
    assert_eq!(http("'0.0.0.0:80'").as_deref(), Some("0.0.0.0:80"));
    assert_eq!(http("\"[::]:9100\"").as_deref(), Some("[::]:9100"));
    assert_eq!(http("\"[::1]:9100\"").as_deref(), Some("[::1]:9100"));
}

#[test]
fn bad_http_addresses_point_inside_the_value() {
    let file = |value: &str| format!("[tend]\nhttp = {value}\n[services.a]\ncommand = \"a\"\n");
    assert_error(
        &file("\"127.0.0.1:0\""),
        2,
        19,
        "port 0 is out of range: expected a number from 1 to 65535",
    );
    assert_error(
        &file("\":99999\""),
        2,
        10,
        "port 99999 is out of range: expected a number from 1 to 65535",
    );
    assert_error(
        &file("\"localhost:9100\""),
        2,
        9,
        "\"localhost\" is a name, but tend listens on an IP address: write 127.0.0.1 (this \
         container only) or 0.0.0.0 (every interface)",
    );
    assert_error(
        &file("\"10.0.0.300:9100\""),
        2,
        9,
        "invalid IP address \"10.0.0.300\": expected an IPv4 address, or an IPv6 address in \
         brackets",
    );
    assert_error(
        &file("\"127.0.0.1\""),
        2,
        9,
        "\"127.0.0.1\" has no port; expected IP:PORT such as \"127.0.0.1:9100\" or \
         \"0.0.0.0:9100\", or \":9100\" for 127.0.0.1",
    );
    assert_error(
        &file("\"\""),
        2,
        9,
        "the address is empty; expected IP:PORT such as \"127.0.0.1:9100\" or \
         \"0.0.0.0:9100\", or \":9100\" for 127.0.0.1",
    );
    assert_error(
        &file("\"::1:9100\""),
        2,
        9,
        "an IPv6 address must be written in brackets, as in [::1]:8080",
    );
    assert_error(
        &file("\"127.0.0.1:metrics\""),
        2,
        19,
        "invalid port \"metrics\": expected a number from 1 to 65535",
    );
    // A string with escapes cannot be mapped byte for byte: the whole value is pointed at.
    assert_error(
        &file("\"127.0.0.1:\\u0030\""),
        2,
        8,
        "port 0 is out of range: expected a number from 1 to 65535",
    );
    assert_error(
        &file("9100"),
        2,
        8,
        "invalid type: integer `9100`, expected a string",
    );
}

#[test]
fn log_ring_sizes() {
    let ring = |logs: &str| {
        let text = format!("[services.a]\ncommand = \"a\"\n{logs}\n");
        load(&text).unwrap().spec.services[0].log_ring
    };
    assert_eq!(ring(""), 1000);
    assert_eq!(ring("logs = {}"), 1000);
    assert_eq!(ring("logs = { ring = 0 }"), 0);
    assert_eq!(ring("logs = { ring = 1 }"), 1);
    assert_eq!(ring("logs.ring = 1_000_000"), 1_000_000);
    assert_eq!(ring("[services.a.logs]\nring = 250"), 250);
    let bytes = |logs: &str| {
        let text = format!("[services.a]\ncommand = \"a\"\n{logs}\n");
        load(&text).unwrap().spec.services[0].log_ring_bytes
    };
    assert_eq!(bytes(""), 1 << 20);
    assert_eq!(bytes("logs.ring-max-size = \"64KiB\""), 64 << 10);
    assert_eq!(bytes("logs = { ring = 10, ring-max-size = 100 }"), 100);
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs.ring-max-size = 0\n",
        3,
        22,
        "logs.ring-max-size must be a size from 1 byte to 1GiB (to keep no lines, write ring = 0)",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs.ring-max-size = \"2GiB\"\n",
        3,
        22,
        "logs.ring-max-size must be a size from 1 byte to 1GiB (to keep no lines, write ring = 0)",
    );
}

#[test]
fn memory_limit_is_a_size_of_at_least_a_mebibyte() {
    let limit = |line: &str| {
        let text = format!("[services.a]\ncommand = \"a\"\n{line}\n");
        load(&text).unwrap().spec.services[0].memory_limit
    };
    assert_eq!(limit(""), None);
    assert_eq!(limit("memory-limit = \"512MiB\""), Some(512 << 20));
    assert_eq!(limit("memory-limit = \"2 GB\""), Some(2_000_000_000));
    assert_eq!(limit("memory-limit = 1048576"), Some(1 << 20));
    assert_error(
        "[services.a]\ncommand = \"a\"\nmemory-limit = 512\n",
        3,
        16,
        "memory-limit must be at least 1MiB, found 512 bytes",
    );
    let e = error("[services.a]\ncommand = \"a\"\nmemory-limit = 512\n");
    assert!(e.to_string().contains("a bare number counts bytes"), "{e}");
    assert_error(
        "[services.a]\ncommand = \"a\"\nmemory-limit = \"512M\"\n",
        3,
        16,
        "invalid size \"512M\": expected a whole number and one of the units B, KiB, MiB, \
         GiB, KB, MB, GB",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nmemory-limit = true\n",
        3,
        16,
        "invalid type: boolean `true`, expected a size such as \"10MiB\", \"512KiB\" or \"1GB\", \
         or a number of bytes",
    );
}

#[test]
fn bad_log_rings() {
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { ring = 1000001 }\n",
        3,
        17,
        "logs.ring must be from 0 (keep nothing) to 1000000, found 1000001",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs.ring = -1\n",
        3,
        13,
        "logs.ring must be from 0 (keep nothing) to 1000000, found -1",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { ring = \"lots\" }\n",
        3,
        17,
        "invalid type: string \"lots\", expected i64",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { ring = 1.5 }\n",
        3,
        17,
        "invalid type: floating point `1.5`, expected i64",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = 5\n",
        3,
        8,
        "invalid type: integer `5`, expected a table such as { ring = 1000, file = \"/var/log/app.log\" }",
    );
}

#[test]
fn log_files() {
    let f = Fixture::new();
    let spec = |text: &str| f.load(text).unwrap().spec.services[0].log_file.clone();
    assert_eq!(spec("[services.a]\ncommand = \"a\"\n"), None);
    assert_eq!(
        spec("[services.a]\ncommand = \"a\"\nlogs = { file = \"a.log\" }\n"),
        Some(LogFile {
            path: f.dir.path().join("a.log"),
            max_size: 10 << 20,
            keep: 5,
        })
    );
    assert_eq!(
        spec(
            "[services.a]\ncommand = \"a\"\n\
             logs = { file = \"/tmp/a.log\", max-size = \"1KiB\", keep = 0 }\n"
        ),
        Some(LogFile {
            path: "/tmp/a.log".into(),
            max_size: 1024,
            keep: 0,
        })
    );
    assert_eq!(
        spec("[services.a]\ncommand = \"a\"\nlogs = { file = \"a.log\", max-size = 0 }\n")
            .map(|l| l.max_size),
        Some(0)
    );
}

#[test]
fn bad_log_files() {
    let f = Fixture::new();
    let e = f
        .load(
            "[services.a]\ncommand = \"a\"\nlogs.file = \"x.log\"\n\
             [services.b]\ncommand = \"b\"\nlogs.file = \"x.log\"\n",
        )
        .unwrap_err();
    assert_eq!((e.line, e.column), (6, 13));
    assert_eq!(
        e.message,
        format!(
            "logs.file {} is also service `a`'s: each service needs a file of its own",
            f.dir.path().join("x.log").display()
        )
    );
    let e = f
        .load("[services.a]\ncommand = \"a\"\nlogs = { file = \"nodir/a.log\" }\n")
        .unwrap_err();
    assert_eq!((e.line, e.column), (3, 17));
    assert_eq!(
        e.message,
        format!(
            "logs.file {}: the directory {} does not exist",
            f.dir.path().join("nodir/a.log").display(),
            f.dir.path().join("nodir").display()
        )
    );
    let e = f
        .load("[services.a]\ncommand = \"a\"\nlogs = { file = \".\" }\n")
        .unwrap_err();
    assert!(e.message.ends_with("is a directory"), "{e}");
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { keep = 3 }\n",
        3,
        17,
        "logs.keep says how to rotate logs.file, which is not set",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { file = \"/tmp/a.log\", max-size = \"10M\" }\n",
        3,
        42,
        "invalid size \"10M\": expected a whole number and one of the units B, KiB, MiB, GiB, KB, MB, GB",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { file = \"/tmp/a.log\", keep = 1001 }\n",
        3,
        38,
        "logs.keep must be from 0 to 1000, found 1001",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlogs = { file = \"/tmp/a.log\", max-size = -5 }\n",
        3,
        42,
        "invalid size -5: it is negative",
    );
}

#[test]
fn bad_env() {
    let f = Fixture::new();
    let e = f
        .load("[services.a]\ncommand = \"a\"\nenv-file = \"missing.env\"\n")
        .unwrap_err();
    assert_eq!((e.line, e.column), (3, 12));
    let path = f.dir.path().join("missing.env");
    assert_eq!(
        e.message,
        format!(
            "cannot read env-file {}: No such file or directory (os error 2)",
            path.display()
        )
    );
    let path = f.write("bad.env", "A=1\nexport\n");
    let e = f
        .load("[services.a]\ncommand = \"a\"\nenv-file = \"bad.env\"\n")
        .unwrap_err();
    assert_eq!((e.line, e.column), (3, 12));
    assert_eq!(
        e.message,
        format!(
            "env-file {} line 2: expected KEY=VALUE, found `export`",
            path.display()
        )
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nenv = { \"A=B\" = \"x\" }\n",
        3,
        9,
        "invalid variable name \"A=B\": it contains `=`",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nenv-file = \"\"\n",
        3,
        12,
        "`env-file` is an empty path",
    );
}

#[test]
fn bad_umask_and_limits() {
    assert_error(
        "[services.a]\ncommand = \"a\"\numask = \"0089\"\n",
        3,
        9,
        "invalid umask \"0089\": expected octal digits from \"0000\" to \"0777\", such as \"0022\"",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\numask = 512\n",
        3,
        9,
        "invalid umask 512: expected octal digits from \"0000\" to \"0777\", such as \"0022\"",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlimits = { nofile = -1 }\n",
        3,
        21,
        "a limit cannot be negative, found -1",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlimits = { nofile = \"lots\" }\n",
        3,
        21,
        "invalid limit \"lots\": expected an integer or \"unlimited\"",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlimits = { nofile = { soft = 10, hard = 5 } }\n",
        3,
        30,
        "the soft limit is above the hard limit",
    );
    assert_error(
        "[services.a]\ncommand = \"a\"\nlimits = { nofile = { soft = 10 } }\n",
        3,
        21,
        "missing key `hard`",
    );
}

#[test]
fn bad_service_names_and_no_services() {
    assert_error(
        "[services.\"web server\"]\ncommand = \"a\"\n",
        1,
        11,
        "invalid service name \"web server\": use letters, digits, '.', '_' and '-' only",
    );
    assert_error(
        "[services.\"\"]\ncommand = \"a\"\n",
        1,
        11,
        "invalid service name \"\": use letters, digits, '.', '_' and '-' only",
    );
    let none = "no services: the file must define at least one [services.NAME] table";
    assert_error("", 1, 1, none);
    assert_error("# nothing\n\n[tend]\nlog-timestamps = true\n", 1, 1, none);
    assert_error(
        "[tend]\n[services]\n",
        2,
        1,
        "no services: `services` must hold at least one [services.NAME] table",
    );
}

#[test]
fn toml_syntax_errors_have_positions() {
    let e = error("[services.a]\ncommand = \"a\ncritical = true\n");
    assert_eq!((e.line, e.column), (2, 13));
    let e = error("[services.a]\ncommand = \"a\"\ncommand = \"b\"\n");
    assert_eq!(e.line, 3);
    let e = error("[services.a]\nmax-restarts = 99999999999999999999999\n");
    assert_eq!((e.line, e.column), (2, 16));
}

#[test]
fn rendered_errors_read_well() {
    let e = error("[services.web]\ncommand = \"nginx -g 'daemon off;\"\n");
    assert_eq!(
        e.to_string(),
        "tend.toml:2:21: error: unterminated single quote in `command`: the quote opened here is \
         never closed\n  |\n2 | command = \"nginx -g 'daemon off;\"\n  |                     ^"
    );
    let e = error("[services.a]\nshell = true\ncommand = [\"x\"]\n");
    assert_eq!(
        e.to_string(),
        "tend.toml:3:11: error: with `shell = true`, `command` must be a string: the script for \
         /bin/sh -c\n  |\n3 | command = [\"x\"]\n  |           ^^^^^\n  |\n  = help: write the \
         command as one string, or drop `shell = true` to run the array directly"
    );
    let e = error(
        "[services.web]\ncommand = \"w\"\ndepends-on = [\"app\"]\n\
         [services.app]\ncommand = \"a\"\ndepends-on = { web = \"ready\" }\n",
    );
    assert_eq!(
        e.to_string(),
        "tend.toml:6:16: error: dependency cycle: web -> app -> web\n  |\n6 | depends-on = { web = \
         \"ready\" }\n  |                ^^^^^^^^^^^^^\n  |\n  = help: each of these services \
         would wait for the next one to start, so none ever would; remove one of these \
         dependencies"
    );
    let e = error(
        "[services.web]\ncommand = \"w\"\ndepends-on = [\"php-fpm\", \"rediss\"]\n\
         [services.php-fpm]\ncommand = \"p\"\n[services.redis]\ncommand = \"r\"\n",
    );
    assert_eq!(
        e.to_string(),
        "tend.toml:3:26: error: service `web` depends on `rediss`, which is not defined\n  |\n3 \
         | depends-on = [\"php-fpm\", \"rediss\"]\n  |                          ^^^^^^^^\n  |\n  = \
         help: the services defined in this file are `web`, `php-fpm`, `redis`"
    );
    let e = error(
        "[services.web]\ncommand = \"w\"\nready = { http = \"https://127.0.0.1:8443/ready\" }\n",
    );
    assert_eq!(
        e.to_string(),
        "tend.toml:3:19: error: https is not supported: probes speak plain HTTP only (tend has \
         no TLS); use an http:// URL, or an `exec` probe that runs an HTTPS client\n  |\n3 | \
         ready = { http = \"https://127.0.0.1:8443/ready\" }\n  |                   ^^^^^"
    );
    let e = error(
        "[services.app]\ncommand = \"a\"\n\
         health = { http = \"http://127.0.0.1:8080/health\", sd-notify = true }\n",
    );
    assert_eq!(
        e.to_string(),
        "tend.toml:3:51: error: `sd-notify` cannot be a health check: the service notifies \
         readiness once, while health is checked again and again; use it in `ready`, and `tcp`, \
         `http` or `exec` here\n  |\n3 | health = { http = \"http://127.0.0.1:8080/health\", \
         sd-notify = true }\n  |                                                   ^^^^^^^^^"
    );
    let e = error("[services.app]\ncommand = \"a\"\nready = { timeout = \"10s\" }\n");
    assert_eq!(
        e.to_string(),
        "tend.toml:3:9: error: `ready` has no probe: give exactly one of `tcp`, `http`, `exec`, \
         `notify-fd` or `sd-notify`\n  |\n3 | ready = { timeout = \"10s\" }\n  |         \
         ^^^^^^^^^^^^^^^^^^^\n  |\n  = help: for example: ready = { tcp = \"127.0.0.1:8080\" }"
    );
}

/// Every prefix and every one-byte deletion of a valid file loads or fails cleanly, and
/// every failure has a position inside the text.
#[test]
fn never_panics_on_mangled_input() {
    let f = Fixture::new();
    f.write("app.env", "A=1\n");
    let check = |text: &str| {
        if let Err(e) = f.load(text) {
            assert!(
                e.line >= 1 && e.line <= text.lines().count().max(1) + 1,
                "{e}"
            );
            assert!(e.column >= 1, "{e}");
            assert!(e.to_string().starts_with("tend.toml:"));
        }
    };
    for (i, _) in FULL.char_indices() {
        check(&FULL[..i]);
        let mut deleted = FULL.to_string();
        deleted.remove(i);
        check(&deleted);
    }
    for text in [
        "\0",
        "[",
        "]]",
        "=",
        "[services.a]\ncommand = [[[]]]",
        "\u{feff}",
        "a.b.c = 1",
    ] {
        check(text);
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = load_str(&text, "t.toml", Path::new("/nonexistent"), &Environment::default());
        }

        #[test]
        fn arbitrary_commands_never_panic(command in "[ a-z'\"\\\\$|]{0,40}") {
            let text = format!("[services.a]\ncommand = '''{command}'''\n");
            let _ = load_str(&text, "t.toml", Path::new("/nonexistent"), &Environment::default());
        }
    }
}

/// The complete example in docs/config.md loads without errors or warnings.
#[test]
fn the_documented_example_loads() {
    let doc = include_str!("../../docs/config.md");
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let f = Fixture::new();
    f.write("app.env", "A=1\n");
    let loaded = f.load(example).unwrap();
    let names: Vec<&str> = loaded
        .spec
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["php-fpm", "nginx", "migrate"]);
    let [php, nginx, _] = &loaded.spec.services[..] else {
        panic!()
    };
    assert_eq!(
        php.depends_on,
        [Dependency {
            on: ServiceId(2),
            condition: Condition::Completed
        }]
    );
    assert_eq!(
        nginx.depends_on,
        [Dependency {
            on: ServiceId(0),
            condition: Condition::Started
        }]
    );
    assert_eq!(
        php.ready.as_ref().map(|r| (&r.probe, r.timeout)),
        Some((
            &Probe::Tcp {
                target: HostPort::new("127.0.0.1", 9000)
            },
            Duration::from_secs(30)
        ))
    );
    assert_eq!(
        nginx.health,
        Some(HealthRule {
            probe: Probe::Http {
                target: HttpTarget::new("127.0.0.1", 80, "/health")
            },
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            start_period: Duration::ZERO,
            failures: 3,
        })
    );
    assert_eq!(loaded.warnings, Vec::<String>::new());
}

/// The `depends-on` example in docs/config.md loads without errors or warnings, with the
/// dependencies it describes.
#[test]
fn the_documented_dependency_example_loads() {
    let doc = include_str!("../../docs/config.md");
    let section = doc.split("### What it waits for").nth(1).unwrap();
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let loaded = load(example).unwrap();
    assert_eq!(loaded.warnings, Vec::<String>::new());
    let deps: Vec<(&str, Vec<Dependency>)> = loaded
        .spec
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.depends_on.clone()))
        .collect();
    let dep = |on: usize, condition: Condition| Dependency {
        on: ServiceId(on),
        condition,
    };
    assert_eq!(
        deps,
        [
            ("redis", vec![]),
            ("migrate", vec![]),
            ("app", vec![dep(0, Condition::Started)]),
            (
                "web",
                vec![dep(2, Condition::Ready), dep(1, Condition::Completed)]
            ),
        ]
    );
}

#[test]
fn shared_memory_settings() {
    let f = Fixture::new();
    let loaded = f
        .load("[tend.shm]\nfile = \"shm.bin\"\nkeys = [0x1234, 4294967295]\n[services.a]\ncommand = \"a\"\n")
        .unwrap();
    assert_eq!(
        loaded.settings.shm,
        Some(crate::config::ShmSettings {
            file: f.dir.path().join("shm.bin"),
            keys: vec![0x1234, -1],
        })
    );
    let tail = "[services.a]\ncommand = \"a\"\n";
    assert_error(
        &format!("[tend.shm]\nfile = \"/tmp/s.bin\"\nkeys = []\n{tail}"),
        3,
        8,
        "shm.keys is empty: name the segments to keep",
    );
    assert_error(
        &format!("[tend.shm]\nfile = \"/tmp/s.bin\"\nkeys = [1, 0]\n{tail}"),
        3,
        12,
        "a shm key is from 1 to 0xffffffff, found 0",
    );
    assert_error(
        &format!("[tend.shm]\nfile = \"/tmp/s.bin\"\nkeys = [0x10, 16]\n{tail}"),
        3,
        15,
        "shm key 0x10 is listed twice",
    );
    assert_error(
        &format!("[tend.shm]\nfile = \"/nodir/s.bin\"\nkeys = [1]\n{tail}"),
        2,
        8,
        "shm.file /nodir/s.bin: the directory /nodir does not exist",
    );
    assert_error(
        &format!("[tend.shm]\nkeys = [1]\n{tail}"),
        1,
        1,
        "missing key `file`",
    );
}
