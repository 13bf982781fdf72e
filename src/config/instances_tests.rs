//! `instances = N` through the whole loader: the services it makes, `{instance}` in every
//! place it is replaced, dependencies on a table with instances, and the errors, each at its
//! place in the file.

use super::*;
use crate::core::spec::{Condition, HostPort, HttpTarget, Probe, ServiceSpec};
use std::ffi::OsString;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\n").unwrap();
        Fixture { dir }
    }

    fn load(&self, source: &str) -> Result<Loaded, ConfigError> {
        let env = Environment {
            etc: self.dir.path().join("etc"),
            tz: None,
            zoneinfo: "/usr/share/zoneinfo".into(),
            localtime: self.dir.path().join("localtime"),
        };
        load_str(source, "tend.toml", self.dir.path(), &env)
    }
}

fn load(source: &str) -> Loaded {
    Fixture::new()
        .load(source)
        .unwrap_or_else(|e| panic!("{e}\n{source}"))
}

/// The error's position and message, and that the rendering starts as promised.
#[track_caller]
fn assert_error(source: &str, line: usize, column: usize, message: &str) {
    let e = match Fixture::new().load(source) {
        Ok(_) => panic!("expected an error for:\n{source}"),
        Err(e) => e,
    };
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (line, column, message),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("tend.toml:{line}:{column}: error: {message}\n")),
        "{e}"
    );
}

fn names(loaded: &Loaded) -> Vec<&str> {
    loaded
        .spec
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect()
}

fn service<'l>(loaded: &'l Loaded, name: &str) -> &'l ServiceSpec {
    loaded
        .spec
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn argv(s: &ServiceSpec) -> Vec<String> {
    strings(&s.launch.argv)
}

fn strings(words: &[OsString]) -> Vec<String> {
    words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect()
}

fn env(s: &ServiceSpec) -> Vec<(String, String)> {
    s.launch
        .env
        .iter()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

fn depends(s: &ServiceSpec) -> Vec<(usize, Condition)> {
    s.depends_on.iter().map(|d| (d.on.0, d.condition)).collect()
}

#[test]
fn instances_make_that_many_services_with_their_number() {
    let loaded = load(
        r#"
[services.db]
command = ["db"]

[services.worker]
command = ["php", "artisan", "queue:work", "--name=w{instance}", "--slot={instance:02}"]
instances = 3
env = { QUEUE = "q{instance}", MODE = "fast" }
critical = true
depends-on = { db = "ready" }

[services.web]
command = "nginx"
"#,
    );
    assert_eq!(
        names(&loaded),
        ["db", "worker-0", "worker-1", "worker-2", "web"]
    );
    for i in 0..3 {
        let w = service(&loaded, &format!("worker-{i}"));
        assert_eq!(
            argv(w),
            [
                "php",
                "artisan",
                "queue:work",
                &format!("--name=w{i}"),
                &format!("--slot=0{i}")
            ]
        );
        assert_eq!(
            env(w),
            [
                ("TEND_INSTANCE".into(), i.to_string()),
                ("QUEUE".into(), format!("q{i}")),
                ("MODE".into(), "fast".into()),
            ],
            "TEND_INSTANCE first, so that `env` can still say otherwise"
        );
        assert_eq!(w.instance_of.as_deref(), Some("worker"));
        assert!(w.critical, "each instance is critical");
        assert_eq!(depends(w), [(0, Condition::Ready)]);
    }
    let web = service(&loaded, "web");
    assert_eq!(web.instance_of, None);
    assert!(web.launch.env.is_empty());
}

#[test]
fn every_place_the_placeholder_is_replaced_in() {
    let f = Fixture::new();
    for i in 0..3 {
        std::fs::create_dir(f.dir.path().join(format!("log{i}"))).unwrap();
    }
    let loaded = f
        .load(
            r#"
[services.api]
command = "serve --port 80{instance:02} --id {instance}"
instances = 3
workdir = "/srv/api-{instance}"
pid-file = "/run/api-{instance}.pid"
finish = ["api-finish", "--id={instance}"]
logs = { file = "log{instance}/api.log" }
ready = { tcp = "127.0.0.1:80{instance:02}" }
health = { http = "http://localhost:90{instance:02}/health?n={instance}" }

[services.sh]
command = "exec worker --id={instance:03} 2>&1"
shell = true
instances = 2
ready = { exec = ["check", "{instance}"] }
health = { exec = "probe --n {instance}" }

[services.tcp]
command = ["t"]
instances = 2
health = { tcp = "db{instance}:5432" }
ready = { http = "http://127.0.0.1:81{instance}/" }
"#,
        )
        .unwrap();
    let api = service(&loaded, "api-2");
    assert_eq!(argv(api), ["serve", "--port", "8002", "--id", "2"]);
    assert_eq!(api.launch.workdir.as_deref(), Some(Path::new("/srv/api-2")));
    assert_eq!(api.pid_file.as_deref(), Some(Path::new("/run/api-2.pid")));
    assert_eq!(
        api.finish.as_ref().map(|f| f.argv.clone()),
        Some(vec!["api-finish".into(), "--id=2".into()])
    );
    assert_eq!(
        api.log_file.as_ref().unwrap().path,
        f.dir.path().join("log2/api.log")
    );
    assert_eq!(
        api.ready.as_ref().unwrap().probe,
        Probe::Tcp {
            target: HostPort::new("127.0.0.1", 8002)
        }
    );
    assert_eq!(
        api.health.as_ref().unwrap().probe,
        Probe::Http {
            target: HttpTarget::new("localhost", 9002, "/health?n=2")
        }
    );
    let sh = service(&loaded, "sh-1");
    assert_eq!(argv(sh), ["/bin/sh", "-c", "exec worker --id=001 2>&1"]);
    assert_eq!(
        sh.ready.as_ref().unwrap().probe,
        Probe::Exec {
            argv: vec!["check".into(), "1".into()]
        }
    );
    assert_eq!(
        sh.health.as_ref().unwrap().probe,
        Probe::Exec {
            argv: vec!["probe".into(), "--n".into(), "1".into()]
        }
    );
    let tcp = service(&loaded, "tcp-1");
    assert_eq!(
        tcp.health.as_ref().unwrap().probe,
        Probe::Tcp {
            target: HostPort::new("db1", 5432)
        }
    );
    assert_eq!(
        tcp.ready.as_ref().unwrap().probe,
        Probe::Http {
            target: HttpTarget::new("127.0.0.1", 811, "/")
        }
    );
}

#[test]
fn without_instances_a_service_is_instance_0_and_keeps_its_name() {
    let loaded = load(
        r#"
[services.solo]
command = ["run", "--id={instance}", "{instance:03}", "{{instance}}", "${instance}", "{time}"]

[services.one]
command = ["run", "--id={instance}"]
instances = 1
"#,
    );
    assert_eq!(names(&loaded), ["solo", "one"]);
    let solo = service(&loaded, "solo");
    assert_eq!(
        argv(solo),
        [
            "run",
            "--id=0",
            "000",
            "{instance}",
            "${instance}",
            "{time}"
        ]
    );
    assert!(
        solo.launch.env.is_empty(),
        "no TEND_INSTANCE without the key"
    );
    assert_eq!(solo.instance_of, None);
    let one = service(&loaded, "one");
    assert_eq!(argv(one), ["run", "--id=0"]);
    assert_eq!(env(one), [("TEND_INSTANCE".into(), "0".into())]);
    assert_eq!(one.instance_of.as_deref(), Some("one"));
}

#[test]
fn depending_on_a_table_with_instances_means_each_of_them() {
    let loaded = load(
        r#"
[services.app]
command = ["app"]
depends-on = ["worker"]

[services.one]
command = ["one"]
depends-on = { worker-2 = "ready" }

[services.worker]
command = ["w"]
instances = 3
depends-on = ["db"]

[services.db]
command = ["db"]

[services.both]
command = ["both"]
depends-on = { worker = "started", worker-0 = "ready" }
"#,
    );
    assert_eq!(
        names(&loaded),
        [
            "app", "one", "worker-0", "worker-1", "worker-2", "db", "both"
        ]
    );
    let started = Condition::Started;
    assert_eq!(
        depends(service(&loaded, "app")),
        [(2, started), (3, started), (4, started)]
    );
    assert_eq!(depends(service(&loaded, "one")), [(4, Condition::Ready)]);
    for w in ["worker-0", "worker-1", "worker-2"] {
        assert_eq!(depends(service(&loaded, w)), [(5, started)]);
    }
    assert_eq!(
        depends(service(&loaded, "both")),
        [
            (2, started),
            (3, started),
            (4, started),
            (2, Condition::Ready)
        ]
    );
}

#[test]
fn instances_out_of_range_or_not_a_number() {
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 0\n",
        3,
        13,
        "instances must be from 1 to 1000, found 0",
    );
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 1001\n",
        3,
        13,
        "instances must be from 1 to 1000, found 1001",
    );
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = -3\n",
        3,
        13,
        "instances must be from 1 to 1000, found -3",
    );
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = \"3\"\n",
        3,
        13,
        "invalid type: string \"3\", expected i64",
    );
    assert_eq!(
        load("[services.w]\ncommand = \"w\"\ninstances = 1000\n")
            .spec
            .services
            .len(),
        1000
    );
}

#[test]
fn a_misspelt_placeholder_is_an_error_where_it_is_written() {
    assert_error(
        "[services.w]\ncommand = [\"w\", \"--id={instanse}\"]\ninstances = 2\n",
        2,
        23,
        "unknown placeholder `{instanse}`: the one placeholder is `{instance}` (or \
         `{instance:02}` for zero padding); write `{{instanse}}` for the text itself",
    );
    // Without `instances` too: the placeholder means something in every service.
    assert_error(
        "[services.w]\ncommand = \"w --id={Instance}\"\n",
        2,
        19,
        "unknown placeholder `{Instance}`: the one placeholder is `{instance}` (or \
         `{instance:02}` for zero padding); write `{{Instance}}` for the text itself",
    );
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 2\nenv = { A = \"x{instance:2}\" }\n",
        4,
        15,
        "`{instance:2}`: the one format is zero padding to a width from 1 to 99, such as \
         `{instance:02}` (00, 01, ...)",
    );
    for (key, value) in [
        ("workdir", "\"/srv/{instanse}\""),
        ("pid-file", "\"/run/{instanse}.pid\""),
        ("logs.file", "\"/tmp/{instanse}.log\""),
        ("ready.tcp", "\"127.0.0.1:80{instanse}\""),
        ("ready.http", "\"http://h/{instanse}\""),
        ("health.exec", "\"check {instanse}\""),
        ("health.tcp", "\"h:8{instanse}\""),
    ] {
        let text = format!("[services.w]\ncommand = \"w\"\n{key} = {value}\n");
        let e = Fixture::new().load(&text).unwrap_err();
        assert!(
            e.message.starts_with("unknown placeholder `{instanse}`"),
            "{key}: {e}"
        );
        let column = key.len() + 4 + value.find('{').unwrap();
        assert_eq!((e.line, e.column), (3, column), "{key}: {e}");
    }
    // Elsewhere the text is not looked into (a user name with braces is simply unknown).
    let e = Fixture::new()
        .load("[services.w]\ncommand = \"w\"\nstop-signal = \"{instance}\"\n")
        .unwrap_err();
    assert!(e.message.starts_with("unknown signal"), "{e}");
}

#[test]
fn a_value_wrong_for_one_instance_says_which() {
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 8\nready = { tcp = \"127.0.0.1:6553{instance}\" }\n",
        4,
        17,
        "port 65536 is out of range: expected a number from 1 to 65535 (in `w-6`, where \
         {instance} is 6)",
    );
    assert_error(
        "[services.w]\ncommand = \"w\"\nready = { tcp = \"127.0.0.1:{instance}\" }\n",
        3,
        17,
        "port 0 is out of range: expected a number from 1 to 65535 (where {instance} is 0)",
    );
}

#[test]
fn a_name_made_twice_is_an_error_pointing_at_both() {
    assert_error(
        "[services.worker]\ncommand = \"w\"\ninstances = 3\n\n[services.worker-1]\ncommand = \"x\"\n",
        5,
        11,
        "two services are named `worker-1`: [services.worker-1] here, and instance 1 of \
         `worker` (instances = 3) at tend.toml:3:13",
    );
    assert_error(
        "[services.worker-2]\ncommand = \"x\"\n\n[services.worker]\ncommand = \"w\"\ninstances = 3\n",
        6,
        13,
        "two services are named `worker-2`: instance 2 of `worker` (instances = 3) here, and \
         [services.worker-2] at tend.toml:1:11",
    );
    // `instances = 1` keeps the name: it is the service of that name.
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 2\n\n[services.w-0]\ncommand = \"x\"\ninstances = 1\n",
        5,
        11,
        "two services are named `w-0`: [services.w-0] here, and instance 0 of `w` \
         (instances = 2) at tend.toml:3:13",
    );
    // A name like an instance's is fine by itself.
    let loaded = load("[services.a-1]\ncommand = \"x\"\n\n[services.a]\ncommand = \"w\"\n");
    assert_eq!(names(&loaded), ["a-1", "a"]);
}

#[test]
fn instances_need_a_log_file_each() {
    let f = Fixture::new();
    let e = f
        .load("[services.w]\ncommand = \"w\"\ninstances = 2\nlogs.file = \"w.log\"\n")
        .unwrap_err();
    assert_eq!((e.line, e.column), (4, 13), "{e}");
    assert_eq!(
        e.message,
        format!(
            "every instance of `w` would write logs.file {}: put `{{instance}}` in the path, \
             since each service needs a file of its own",
            f.dir.path().join("w.log").display()
        )
    );
    let loaded = f
        .load("[services.w]\ncommand = \"w\"\ninstances = 2\nlogs.file = \"w-{instance}.log\"\n")
        .unwrap();
    assert_eq!(
        loaded.spec.services[1].log_file.as_ref().unwrap().path,
        f.dir.path().join("w-1.log")
    );
}

#[test]
fn dependencies_on_instances_that_cannot_be() {
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 2\ndepends-on = [\"w\"]\n",
        4,
        15,
        "service `w` depends on itself",
    );
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 2\ndepends-on = [\"w-1\"]\n",
        4,
        15,
        "service `w` depends on `w-1`, one of its own instances: every instance waits for the \
         same services, so that one would wait for itself",
    );
    let e = Fixture::new()
        .load(
            "[services.w]\ncommand = \"w\"\ninstances = 3\n\n[services.app]\ncommand = \"a\"\n\
             depends-on = [\"wrk\"]\n",
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("= help: the services defined in this file are `w` (w-0 to w-2), `app`"),
        "{e}"
    );
    assert_error(
        "[services.w]\ncommand = \"w\"\ninstances = 2\ndepends-on = [\"app\"]\n\n\
         [services.app]\ncommand = \"a\"\ndepends-on = [\"w\"]\n",
        8,
        15,
        "dependency cycle: w-0 -> app -> w-0",
    );
}

#[test]
fn warnings_are_said_once_for_all_instances() {
    let loaded = load(
        "[tend]\nshutdown-timeout = \"3s\"\n\n[services.w]\ncommand = \"w | x\"\ninstances = 4\n\
         depends-on = [\"db\"]\nstop-timeout = \"5s\"\n\n[services.db]\ncommand = \"db\"\n\
         stop-timeout = \"5s\"\n",
    );
    assert_eq!(
        loaded.warnings,
        [
            "tend.toml:5:11: warning: the command of service `w` contains `|`, which is passed \
             on literally because no shell runs it; set `shell = true` to run it with /bin/sh \
             -c, or quote it to silence this warning",
            "tend.toml:7:15: warning: the stop chain w -> db (each stops before the one it \
             depends on) can take 10s (stop-timeouts 5s + 5s), longer than shutdown-timeout \
             3s, so `db` may be killed before it has stopped",
        ]
    );
}

#[test]
fn the_documented_example_loads() {
    let doc = include_str!("../../docs/config.md");
    let section = doc
        .split("### Several instances of one service")
        .nth(1)
        .unwrap();
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let loaded = load(example);
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert_eq!(
        names(&loaded),
        [
            "redis",
            "worker-0",
            "worker-1",
            "worker-2",
            "worker-3",
            "scheduler"
        ]
    );
    let w = service(&loaded, "worker-3");
    assert_eq!(argv(w), ["php", "artisan", "queue:work", "--name=w3"]);
    assert_eq!(
        w.log_file.as_ref().unwrap().path,
        Path::new("/var/log/worker-03.log")
    );
    assert_eq!(depends(w), [(0, Condition::Ready)]);
    let started = Condition::Started;
    assert_eq!(
        depends(service(&loaded, "scheduler")),
        [(1, started), (2, started), (3, started), (4, started)]
    );
}
