use super::*;
use crate::config::{Environment, Loaded, load_str};
use crate::core::spec::{Condition, RestartPolicy, ServiceSpec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Imports `path` and loads the result the way `tend check` would, from a directory whose
/// `etc/passwd` knows `www-data`.
fn import_and_load(format: Format, path: &Path) -> (Imported, Loaded) {
    let imported = import(format, path).unwrap();
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(
        etc.path().join("passwd"),
        "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(etc.path().join("group"), "root:x:0:\nwww-data:x:33:\n").unwrap();
    let env = Environment {
        etc: etc.path().to_path_buf(),
    };
    let dir = path.parent().unwrap();
    let loaded = load_str(&imported.toml, "imported.toml", dir, &env)
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    (imported, loaded)
}

fn service<'a>(loaded: &'a Loaded, name: &str) -> &'a ServiceSpec {
    loaded
        .spec
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn names(loaded: &Loaded) -> Vec<&str> {
    loaded
        .spec
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect()
}

fn argv(s: &ServiceSpec) -> Vec<String> {
    s.launch
        .argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn notes(imported: &Imported) -> String {
    imported.notes.join("\n")
}

#[test]
fn procfile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Procfile");
    std::fs::write(
        &path,
        "# the app\nweb: bundle exec puma -p $PORT\nworker:   bundle exec sidekiq -q \"default\"\n\n",
    )
    .unwrap();
    let (imported, loaded) = import_and_load(Format::Procfile, &path);
    assert_eq!(names(&loaded), ["web", "worker"]);
    assert_eq!(
        argv(service(&loaded, "web")),
        ["/bin/sh", "-c", "bundle exec puma -p $PORT"]
    );
    assert_eq!(
        argv(service(&loaded, "worker")),
        ["/bin/sh", "-c", "bundle exec sidekiq -q \"default\""]
    );
    assert!(imported.notes.iter().any(|n| n.contains("$PORT")));
    assert!(imported.notes.iter().any(|n| n.contains("critical = true")));
    assert!(service(&loaded, "web").depends_on.is_empty());

    std::fs::write(&path, "web: ok\nweb: again\n").unwrap();
    assert_eq!(
        import(Format::Procfile, &path).unwrap_err(),
        format!("{}:2: a second process named `web`", path.display())
    );
    std::fs::write(&path, "# nothing\nnot a process line\n").unwrap();
    assert!(
        import(Format::Procfile, &path)
            .unwrap_err()
            .ends_with("no services found in it")
    );
}

#[test]
fn procfile_release_is_a_task_the_others_wait_for() {
    let (imported, loaded) = import_and_load(Format::Procfile, &fixture("Procfile"));
    // foreman's own rules: `  indented:` and `release.sh:` are not process lines.
    assert_eq!(names(&loaded), ["release", "web", "worker"]);
    let release = service(&loaded, "release");
    assert!(release.oneshot);
    assert!(release.depends_on.is_empty());
    let release_id = loaded
        .spec
        .services
        .iter()
        .position(|s| s.name == "release")
        .unwrap();
    for name in ["web", "worker"] {
        let deps = &service(&loaded, name).depends_on;
        assert_eq!(deps.len(), 1, "{name}");
        assert_eq!(deps[0].condition, Condition::Completed);
        assert_eq!(deps[0].on.0, release_id);
    }
    let notes = notes(&imported);
    assert!(
        notes.contains("`release` is Heroku's release phase"),
        "{notes}"
    );
    for skipped in [
        "Procfile:6: skipped \"indented:",
        "Procfile:7: skipped \"release.sh:",
    ] {
        assert!(notes.contains(skipped), "{skipped}\n{notes}");
    }
    // A comment line is skipped without a word.
    assert!(!notes.contains("# Procfile"), "{notes}");
}

#[test]
fn supervisord() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supervisord.conf");
    std::fs::write(
        &path,
        r#"[supervisord]
nodaemon=true
logfile=/dev/null

; the web tier
[program:php-fpm]
command=php-fpm -F   ; in the foreground
priority=10
autorestart=true
startsecs=3
startretries=5
stopsignal=QUIT
stopwaitsecs=4
user=www-data
directory=/srv/app
umask=022
environment=APP_ENV="prod",GREETING="a, b",
    EXTRA=1
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
redirect_stderr=true

[program:nginx]
command=nginx -g "daemon off;"
priority=20
autorestart=unexpected
exitcodes=0,2
stdout_logfile=%(here)s/nginx.log
stdout_logfile_maxbytes=1MB
stdout_logfile_backups=3
redirect_stderr=true
killasgroup=true

[program:worker]
command=/usr/bin/worker --id %(process_num)d --home %(ENV_HOME)s
process_name=%(program_name)s-%(process_num)02d
numprocs=2
numprocs_start=1
priority=20
autostart=false
serverurl=AUTO
stdout_logfile=%(here)s/worker.log

[group:web]
programs=php-fpm,nginx

[eventlistener:memmon]
command=memmon -a 200MB
"#,
    )
    .unwrap();
    let (imported, loaded) = import_and_load(Format::Supervisord, &path);
    assert_eq!(
        names(&loaded),
        ["php-fpm", "nginx", "worker-01", "worker-02"]
    );

    let php = service(&loaded, "php-fpm");
    assert_eq!(argv(php), ["php-fpm", "-F"]);
    assert_eq!(php.restart, RestartPolicy::Always);
    assert_eq!(php.start_secs, std::time::Duration::from_secs(3));
    assert_eq!(php.max_restarts, 5);
    assert_eq!(php.stop_signal.name(), "QUIT");
    assert_eq!(php.stop_timeout, std::time::Duration::from_secs(4));
    assert_eq!(php.launch.workdir.as_deref(), Some(Path::new("/srv/app")));
    assert_eq!(php.launch.umask, Some(0o022));
    let env: Vec<(String, String)> = php
        .launch
        .env
        .iter()
        .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
        .collect();
    for pair in [("APP_ENV", "prod"), ("GREETING", "a, b"), ("EXTRA", "1")] {
        assert!(env.contains(&(pair.0.into(), pair.1.into())), "{env:?}");
    }
    assert!(php.log_file.is_none());
    // supervisord's default startretries is carried over.
    assert_eq!(service(&loaded, "nginx").max_restarts, 3);
    assert!(php.depends_on.is_empty());

    let nginx = service(&loaded, "nginx");
    assert_eq!(argv(nginx), ["nginx", "-g", "daemon off;"]);
    assert_eq!(nginx.restart, RestartPolicy::OnFailure);
    let log = nginx.log_file.as_ref().unwrap();
    assert_eq!(log.path, dir.path().join("nginx.log"));
    assert_eq!((log.max_size, log.keep), (1 << 20, 3));
    assert_eq!(nginx.depends_on.len(), 1);

    let worker = service(&loaded, "worker-02");
    assert_eq!(
        argv(worker),
        ["/bin/sh", "-c", "/usr/bin/worker --id 2 --home ${HOME}"]
    );
    assert_eq!(worker.depends_on.len(), 1);
    // One log file per process, as tend rotates each on its own.
    assert_eq!(
        worker.log_file.as_ref().unwrap().path,
        dir.path().join("worker-02.log")
    );
    assert_eq!(
        service(&loaded, "worker-01")
            .log_file
            .as_ref()
            .unwrap()
            .path,
        dir.path().join("worker-01.log")
    );

    let notes = imported.notes.join("\n");
    for expected in [
        "autostart=false",
        "`serverurl` of [program:worker] is not carried over",
        "[group:web] is not imported",
        "[eventlistener:memmon] is not imported",
        "priorities became `depends-on`",
    ] {
        assert!(notes.contains(expected), "{expected}\n{notes}");
    }
    // Everything php-fpm set was translated: no note names it, except as a dependency.
    assert!(!notes.contains("of [program:php-fpm]"), "{notes}");

    std::fs::write(&path, "[program:x]\nautorestart=true\n").unwrap();
    assert_eq!(
        import(Format::Supervisord, &path).unwrap_err(),
        format!("{}:1: [program:x] has no command", path.display())
    );
    std::fs::write(&path, "[program:x]\ncommand=x\nautorestart=maybe\n").unwrap();
    assert!(
        import(Format::Supervisord, &path)
            .unwrap_err()
            .contains(":3: autorestart must be true, false or unexpected")
    );
}

#[test]
fn runit() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, files: &[&str]| {
        let sv = dir.path().join(name);
        std::fs::create_dir_all(sv.join("log")).unwrap();
        for f in files {
            let p = sv.join(f);
            std::fs::write(&p, "#!/bin/sh\nexec true\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    };
    make("web", &["run", "check", "log/run"]);
    make("cron", &["run", "finish", "down"]);
    std::fs::create_dir(dir.path().join("not-a-service")).unwrap();
    // runsv does not start a run file without the execute bit.
    make("broken", &[]);
    std::fs::write(dir.path().join("broken/run"), "#!/bin/sh\n").unwrap();
    let (imported, loaded) = import_and_load(Format::Runit, dir.path());
    assert_eq!(names(&loaded), ["cron", "web"]);
    // runsv never gives up on a service: neither does tend with max-restarts = 0.
    for name in ["cron", "web"] {
        assert_eq!(service(&loaded, name).max_restarts, 0, "{name}");
        assert_eq!(
            service(&loaded, name).restart,
            RestartPolicy::Always,
            "{name}"
        );
    }
    let web = service(&loaded, "web");
    assert_eq!(
        argv(web),
        [dir.path().join("web/run").display().to_string()]
    );
    assert_eq!(
        web.launch.workdir.as_deref(),
        Some(dir.path().join("web").as_path())
    );
    assert!(web.ready.is_some());
    assert!(service(&loaded, "cron").ready.is_none());
    let notes = imported.notes.join("\n");
    for expected in [
        "`cron` has a `down` file",
        "`cron`: its ./finish",
        "`web`: its log service",
        "broken: skipped: its run file is not executable",
    ] {
        assert!(notes.contains(expected), "{expected}\n{notes}");
    }
    // A single service directory works too.
    let (_, loaded) = import_and_load(Format::Runit, &dir.path().join("web"));
    assert_eq!(loaded.spec.services.len(), 1);
    assert!(import(Format::Runit, &dir.path().join("nope")).is_err());
}

#[test]
fn names_strings_and_keys_are_written_so_that_they_read_back() {
    let mut notes = Vec::new();
    assert_eq!(service_name("my app!", &mut notes), "my-app-");
    assert_eq!(notes.len(), 1);
    assert_eq!(
        emit::string("a\"b\\c\nd\u{1}"),
        "\"a\\\"b\\\\c\\nd\\u0001\""
    );
    assert_eq!(emit::key("a.b"), "\"a.b\"");
    assert_eq!(emit::key("a_b-c"), "a_b-c");
}
