use super::*;
use crate::config::{Environment, Loaded, load_str};
use crate::core::spec::{Condition, Finish, RestartPolicy, ServiceSpec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The machine the tests import on: a fixed environment and host name, whatever the
/// environment the tests run in.
fn host() -> Host {
    let env = [
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/root"),
        ("APP_DIR", "/srv/app"),
        ("APP_USER", "www-data"),
        ("WORKERS", "3"),
        ("MSG", "hello  world"),
    ];
    Host {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        hostname: Some("box".to_string()),
        users: ["root", "daemon", "www-data", "backup"]
            .map(String::from)
            .to_vec(),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Imports `path` on [`host`] and loads the result the way `tend check` would, from a
/// directory whose `etc/passwd` knows `www-data`.
fn import_and_load(format: Format, path: &Path) -> (Imported, Loaded) {
    let imported = import_on(format, path, &host()).unwrap();
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(
        etc.path().join("passwd"),
        "root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(etc.path().join("group"), "root:x:0:\nwww-data:x:33:\n").unwrap();
    let env = Environment {
        etc: etc.path().to_path_buf(),
        tz: None,
        zoneinfo: PathBuf::from("/usr/share/zoneinfo"),
        localtime: PathBuf::from("/nonexistent/localtime"),
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

/// A supervisord.conf with `text`, imported on [`host`] and loaded.
fn import_supervisord(text: &str) -> (Imported, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supervisord.conf");
    std::fs::write(&path, text).unwrap();
    import_and_load(Format::Supervisord, &path)
}

/// The error importing a supervisord.conf with `text` gives, without its path.
fn supervisord_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("supervisord.conf");
    std::fs::write(&path, text).unwrap();
    let err = import_on(Format::Supervisord, &path, &host()).unwrap_err();
    err.replace(&path.display().to_string(), "supervisord.conf")
}

fn notes(imported: &Imported) -> String {
    imported.notes.join("\n")
}

fn env(s: &ServiceSpec) -> Vec<(String, String)> {
    s.launch
        .env
        .iter()
        .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
        .collect()
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
        [
            "/bin/sh",
            "-c",
            "set -f; exec /usr/bin/worker --id 2 --home ${HOME?}"
        ]
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
    for s in &loaded.spec.services {
        assert_eq!(s.autostart, !s.name.starts_with("worker"), "{}", s.name);
    }
    for expected in [
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
    // An s6-overlay service directory: the same layout, with s6's own files.
    make("s6svc", &["run", "finish"]);
    std::fs::write(dir.path().join("s6svc/timeout-finish"), "2500\n").unwrap();
    std::fs::write(dir.path().join("s6svc/notification-fd"), "3\n").unwrap();
    make("lazy", &["run"]);
    std::fs::write(dir.path().join("lazy/finish"), "#!/bin/sh\n").unwrap();
    std::fs::create_dir(dir.path().join("not-a-service")).unwrap();
    // runsv does not start a run file without the execute bit.
    make("broken", &[]);
    std::fs::write(dir.path().join("broken/run"), "#!/bin/sh\n").unwrap();
    let (imported, loaded) = import_and_load(Format::Runit, dir.path());
    assert_eq!(names(&loaded), ["cron", "lazy", "s6svc", "web"]);
    // ./finish becomes `finish`, with s6's timeout when it has one.
    let finish = |name: &str| service(&loaded, name).finish.clone();
    assert_eq!(
        finish("cron"),
        Some(Finish {
            argv: vec![dir.path().join("cron/finish").into_os_string()],
            timeout: Duration::from_secs(5)
        })
    );
    assert_eq!(
        finish("s6svc").map(|f| f.timeout),
        Some(Duration::from_millis(2500))
    );
    assert_eq!(
        finish("lazy"),
        None,
        "not executable: runsv would not run it"
    );
    assert_eq!(finish("web"), None);
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
    assert!(!service(&loaded, "cron").autostart, "a `down` file");
    assert!(service(&loaded, "web").autostart);
    for expected in [
        "`cron`: runsv waits for ./finish as long as it takes",
        "`s6svc`: s6 passes 256 as ./finish's first argument",
        "`lazy`: its ./finish is not executable",
        "`web`: its log service",
        "broken: skipped: its run file is not executable",
    ] {
        assert!(notes.contains(expected), "{expected}\n{notes}");
    }
    // Said once for every runit service with a ./finish, not once each.
    assert_eq!(
        notes.matches("runsv waits for ./finish").count(),
        1,
        "{notes}"
    );
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

#[test]
fn configparser_reads_indented_keys_as_keys_and_deeper_lines_as_continuations() {
    // What Python's configparser (as supervisord 4.3 sets it up) reads from these lines:
    // keys indented alike are separate keys, only a deeper line continues a value, a comment
    // line inside a value is skipped and an empty one kept, `a;b` keeps its `;`.
    let (_, loaded) = import_supervisord(
        "[program:beat]\n  command=celery beat\n  directory=/app\n  user=www-data\n\n\
         [program:multi]\ncommand=/bin/prog --a # a comment\n    --b  ; another\n\
         ; a comment line\n\n    --c\ndirectory=/srv/a;b\n",
    );
    let beat = service(&loaded, "beat");
    assert_eq!(argv(beat), ["celery", "beat"]);
    assert_eq!(beat.launch.workdir.as_deref(), Some(Path::new("/app")));
    assert_eq!(beat.launch.credentials.as_ref().unwrap().uid, 33);
    assert_eq!(
        argv(service(&loaded, "multi")),
        ["/bin/prog", "--a", "--b", "--c"]
    );
    // No whitespace before the `;`: not a comment.
    assert_eq!(
        service(&loaded, "multi").launch.workdir.as_deref(),
        Some(Path::new("/srv/a;b"))
    );
}

#[test]
fn inline_comments_after_whitespace_are_dropped() {
    let (_, loaded) = import_supervisord(
        "[program:fpm]\ncommand=php-fpm -F # run in foreground\n\
         [program:echo]\ncommand=/bin/echo a#b c;d ;comment\n",
    );
    assert_eq!(argv(service(&loaded, "fpm")), ["php-fpm", "-F"]);
    assert_eq!(argv(service(&loaded, "echo")), ["/bin/echo", "a#b", "c;d"]);
}

#[test]
fn env_expansions_outside_commands_are_read_when_importing() {
    let (imported, loaded) = import_supervisord(
        "[program:app]\ncommand=/srv/app/run\n\
         environment=PATH=\"/opt/venv/bin:%(ENV_PATH)s\",HOST=\"%(host_node_name)s\"\n\
         directory=%(ENV_APP_DIR)s\nuser=%(ENV_APP_USER)s\n\
         [program:pool]\ncommand=/srv/app/worker %(process_num)d\n\
         process_name=pool-%(process_num)d\nnumprocs=%(ENV_WORKERS)s\n",
    );
    let app = service(&loaded, "app");
    let env = env(app);
    assert!(
        env.contains(&("PATH".into(), "/opt/venv/bin:/usr/bin:/bin".into())),
        "{env:?}"
    );
    assert!(env.contains(&("HOST".into(), "box".into())), "{env:?}");
    assert_eq!(app.launch.workdir.as_deref(), Some(Path::new("/srv/app")));
    assert_eq!(app.launch.credentials.as_ref().unwrap().uid, 33);
    assert_eq!(names(&loaded), ["app", "pool-0", "pool-1", "pool-2"]);
    let notes = notes(&imported);
    for expected in [
        "%(ENV_PATH)s in `environment` was read from tend import's environment now",
        "%(ENV_APP_DIR)s in `directory`",
        "%(ENV_APP_USER)s in `user`",
        "%(ENV_WORKERS)s in `numprocs`",
        "%(host_node_name)s is this machine's host name when importing, box",
    ] {
        assert!(notes.contains(expected), "{expected}\n{notes}");
    }
    // As supervisord, which would not start: a variable that is not set is an error.
    assert_eq!(
        supervisord_error("[program:x]\ncommand=x\ndirectory=%(ENV_NOPE)s\n"),
        "supervisord.conf:3: directory: %(ENV_NOPE)s: NOPE is not set in tend import's environment (supervisord would refuse to start without it): set it and import again"
    );
    // So is a lone `%`, which supervisord refuses too.
    assert!(
        supervisord_error("[program:x]\ncommand=date +%s\n")
            .starts_with("supervisord.conf:2: command: a `%` that is neither `%%` nor `%(name)s`")
    );
}

#[test]
fn env_expansions_in_a_command_are_read_at_its_start_and_nothing_else_is_shell() {
    let (imported, loaded) = import_supervisord(
        "[program:app]\ncommand=/bin/app --msg='%(ENV_MSG)s' --home %(ENV_HOME)s/x a;b *\n\
         [program:plain]\ncommand=/bin/app --msg='hi there' a;b\n",
    );
    let app = service(&loaded, "app");
    assert_eq!(
        argv(app),
        [
            "/bin/sh",
            "-c",
            "set -f; exec /bin/app --msg=\"${MSG?}\" --home ${HOME?}/x 'a;b' '*'"
        ]
    );
    // Without a variable, the words supervisord would run, as an array where tend's own
    // split would differ (or warn).
    assert_eq!(
        argv(service(&loaded, "plain")),
        ["/bin/app", "--msg=hi there", "a;b"]
    );
    assert!(notes(&imported).contains("`app`: its command reads %(ENV_...)s when it starts"));
}

#[test]
fn the_shell_line_gives_the_words_supervisord_runs() {
    // The line runs under a real /bin/sh: shlex's words, the variable split outside quotes
    // and kept whole inside them, nothing globbed or run besides.
    let (_, loaded) = import_supervisord(
        "[program:app]\ncommand=/usr/bin/printf '<%%s>' '%(ENV_MSG)s' %(ENV_MSG)s x;y * \"q'%(ENV_MSG)s\"\n",
    );
    let line = argv(service(&loaded, "app"));
    #[allow(clippy::disallowed_methods)]
    let out = std::process::Command::new(&line[0])
        .args(&line[1..])
        .env_clear()
        .env("MSG", "hello  world")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<hello  world><hello><world><x;y><*><q'hello  world>"
    );
}

#[test]
fn start_retries_keep_their_meaning() {
    let (imported, loaded) = import_supervisord(
        "[program:never-again]\ncommand=a\nautorestart=true\nstartretries=0\n\
         [program:once]\ncommand=b\nautorestart=false\nstartretries=5\n\
         [program:five]\ncommand=c\nstartretries=5\n\
         [program:default]\ncommand=d\n",
    );
    // tend's 0 is "never give up": one retry is the nearest to supervisord's none.
    assert_eq!(service(&loaded, "never-again").max_restarts, 1);
    // supervisord's N retries are tend's N restarts after failed starts.
    assert_eq!(service(&loaded, "five").max_restarts, 5);
    assert_eq!(service(&loaded, "default").max_restarts, 3);
    let once = service(&loaded, "once");
    assert_eq!(once.restart, RestartPolicy::Never);
    assert!(
        !imported
            .toml
            .contains("[services.once]\ncommand = \"b\"\nrestart = \"never\"\nmax-restarts")
    );
    let notes = notes(&imported);
    for expected in [
        "`never-again`: startretries=0 (supervisord gives up after one failed start) became max-restarts = 1",
        "`once`: startretries=5 is not carried over: with autorestart=false, supervisord still tries a start that fails",
    ] {
        assert!(notes.contains(expected), "{expected}\n{notes}");
    }
}

#[test]
fn included_files_are_read_as_supervisord_reads_them() {
    // Debian's main file holds no program: they are all in conf.d.
    let (imported, loaded) =
        import_and_load(Format::Supervisord, &fixture("debian/supervisord.conf"));
    assert_eq!(names(&loaded), ["beat", "worker", "web"]);
    let beat = service(&loaded, "beat");
    assert_eq!(argv(beat), ["celery", "-A", "proj", "beat", "-l", "info"]);
    // %(here)s in an included file is that file's directory.
    assert_eq!(
        beat.launch.workdir.as_deref(),
        Some(fixture("debian/conf.d").as_path())
    );
    assert_eq!(beat.restart, RestartPolicy::Always);
    assert_eq!(
        argv(service(&loaded, "worker")),
        [
            "celery",
            "-A",
            "proj",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2"
        ]
    );
    // conf.d/ab.ini (matched by `[a-c]?.ini`) adds to [program:web] of conf.d/web.conf.
    assert_eq!(service(&loaded, "web").stop_timeout, Duration::from_secs(3));
    let notes = notes(&imported);
    assert!(
        notes.contains("web.conf: its [include] is not followed"),
        "{notes}"
    );
    assert!(!notes.contains("no file matches"), "{notes}");

    // The glob rules: hidden names only for a pattern that starts with '.', classes,
    // negation, a `]` first in a class, an unclosed `[` as itself.
    use super::supervisord::include::fnmatch;
    assert!(fnmatch("*.conf", "a.conf") && !fnmatch("*.conf", "a.confx"));
    assert!(fnmatch("[a-c]?.ini", "ab.ini") && !fnmatch("[a-c]?.ini", "zz.ini"));
    assert!(fnmatch("[!a]*", "b") && !fnmatch("[!a]*", "a"));
    assert!(fnmatch("[]]x", "]x") && fnmatch("[x", "[x"));
    let matched = super::supervisord::include::matches(&fixture("debian"), "conf.d/*.conf");
    let matched: Vec<String> = matched
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(matched, ["celery.conf", "web.conf"]);
}

#[test]
fn a_repeated_program_section_is_one_program_with_later_keys_winning() {
    let (_, loaded) = import_supervisord(
        "[program:web]\ncommand=old\nstopwaitsecs=2\n\
         [program:other]\ncommand=x\n\
         [program:web]\ncommand=new --flag\n",
    );
    assert_eq!(names(&loaded), ["web", "other"]);
    let web = service(&loaded, "web");
    assert_eq!(argv(web), ["new", "--flag"]);
    assert_eq!(web.stop_timeout, Duration::from_secs(2));
}

#[test]
fn booleans_take_every_spelling_supervisord_takes() {
    for (spelling, restart) in [
        ("yes", RestartPolicy::Always),
        ("On", RestartPolicy::Always),
        ("1", RestartPolicy::Always),
        ("TRUE", RestartPolicy::Always),
        ("no", RestartPolicy::Never),
        ("off", RestartPolicy::Never),
        ("0", RestartPolicy::Never),
        ("Unexpected", RestartPolicy::OnFailure),
    ] {
        let (_, loaded) =
            import_supervisord(&format!("[program:x]\ncommand=x\nautorestart={spelling}\n"));
        assert_eq!(service(&loaded, "x").restart, restart, "{spelling}");
    }
    for spelling in ["no", "off", "0", "False"] {
        let (imported, loaded) =
            import_supervisord(&format!("[program:x]\ncommand=x\nautostart={spelling}\n"));
        assert!(imported.toml.contains("autostart = false"), "{spelling}");
        assert!(!service(&loaded, "x").autostart, "{spelling}");
    }
    let (imported, loaded) = import_supervisord("[program:x]\ncommand=x\nautostart=yes\n");
    assert!(!imported.toml.contains("autostart"));
    assert!(service(&loaded, "x").autostart);
    assert_eq!(
        supervisord_error("[program:x]\ncommand=x\nautostart=maybe\n"),
        "supervisord.conf:3: autostart must be true or false (or yes/no, on/off, 1/0), found \"maybe\""
    );
    // redirect_stderr=on: one stream, so no note that stderr joins the file.
    let (imported, loaded) = import_supervisord(
        "[program:x]\ncommand=x\nredirect_stderr=on\nstdout_logfile=%(here)s/x.log\n",
    );
    assert!(service(&loaded, "x").log_file.is_some());
    assert!(
        !notes(&imported).contains("together"),
        "{}",
        notes(&imported)
    );
}

#[test]
fn stderr_logfiles_and_syslog_are_said() {
    let (imported, loaded) = import_supervisord(
        "[program:both]\ncommand=x\nstdout_logfile=%(here)s/out.log\nstderr_logfile=%(here)s/err.log\n\
         [program:err-only]\ncommand=y\nstdout_logfile=/dev/stdout\nstderr_logfile=%(here)s/y.err\n\
         stderr_logfile_backups=2\n\
         [program:sys]\ncommand=z\nstdout_logfile=syslog\nstderr_syslog=true\n",
    );
    let err_only = service(&loaded, "err-only").log_file.as_ref().unwrap();
    assert!(err_only.path.ends_with("y.err"));
    assert_eq!(err_only.keep, 2);
    assert!(
        service(&loaded, "both")
            .log_file
            .as_ref()
            .unwrap()
            .path
            .ends_with("out.log")
    );
    assert!(service(&loaded, "sys").log_file.is_none());
    let notes = notes(&imported);
    for expected in [
        "err.log is not carried over: tend's logs.file",
        "`err-only`: logs.file is its stderr_logfile",
        "`sys`: supervisord sent its stdout to syslog; tend writes it to its own stdout",
        "`sys`: supervisord sent its stderr to syslog; tend writes it to its own stderr",
    ] {
        assert!(notes.contains(expected), "{expected}\n{notes}");
    }
}

#[test]
fn a_long_stopwaitsecs_raises_the_shutdown_budget() {
    let (imported, loaded) = import_supervisord(
        "[program:db]\ncommand=db\npriority=1\nstopwaitsecs=600\n\
         [program:app]\ncommand=app\npriority=2\nstopwaitsecs=20\n\
         [program:side]\ncommand=side\npriority=2\n",
    );
    // Stopped one priority level after the other: 20 s, then 600 s, and a second more.
    assert_eq!(loaded.spec.shutdown_timeout, Duration::from_secs(621));
    assert!(
        imported
            .toml
            .contains("[tend]\nshutdown-timeout = \"621s\"\n")
    );
    assert!(notes(&imported).contains("[tend] shutdown-timeout is 621s"));
    // Within tend's default, nothing is written.
    let (imported, _) = import_supervisord("[program:a]\ncommand=a\nstopwaitsecs=8\n");
    assert!(!imported.toml.contains("[tend]"));
    // Three priority levels without stopwaitsecs: tend shares its 9 s among them (3 s each),
    // so the budget stays as it is and the file loads without a warning.
    let (imported, loaded) = import_supervisord(
        "[program:a]\ncommand=a\npriority=1\n[program:b]\ncommand=b\npriority=2\n\
         [program:c]\ncommand=c\npriority=3\n",
    );
    assert!(!imported.toml.contains("[tend]"), "{}", imported.toml);
    assert_eq!(loaded.warnings, Vec::<String>::new());
    assert!(
        loaded
            .spec
            .services
            .iter()
            .all(|s| s.stop_timeout == Duration::from_secs(3))
    );
}

#[test]
fn a_listener_that_stops_supervisord_makes_the_programs_critical() {
    let (imported, loaded) = import_supervisord(
        "[program:app]\ncommand=app\n[program:nginx]\ncommand=nginx\n\
         [eventlistener:processes]\n\
         command=bash -c \"printf 'READY\\n' && while read line; do kill -SIGQUIT $PPID; done < /dev/stdin\"\n\
         events=PROCESS_STATE_STOPPED,PROCESS_STATE_EXITED,PROCESS_STATE_FATAL\n\
         [eventlistener:memmon]\ncommand=memmon -a 200MB\nevents=TICK_60\n",
    );
    assert!(service(&loaded, "app").critical);
    assert!(service(&loaded, "nginx").critical);
    let notes = notes(&imported);
    assert!(
        notes.contains("[eventlistener:processes] stops supervisord when a program changes state"),
        "{notes}"
    );
    assert!(
        notes.contains("[eventlistener:memmon] is not imported"),
        "{notes}"
    );
    let (_, loaded) = import_supervisord("[program:app]\ncommand=app\n");
    assert!(!service(&loaded, "app").critical);
}

/// Seen while writing the `import_runit` fuzz target, which now checks both: two
/// directories whose names become the same service name gave a file with the same
/// `[services.NAME]` table twice, which is not TOML; and a directory name that is not UTF-8
/// was written with U+FFFD in place of its bytes, naming a `run` that does not exist.
#[test]
fn runit_directories_tend_cannot_name_apart_or_write_down_are_said() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &std::ffi::OsStr| {
        let sv = dir.path().join(name);
        std::fs::create_dir(&sv).unwrap();
        let run = sv.join("run");
        std::fs::write(&run, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    make("web".as_ref());
    make(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    let (imported, loaded) = import_and_load(Format::Runit, dir.path());
    assert_eq!(names(&loaded), ["web"]);
    assert!(
        notes(&imported).contains("skipped: its path is not UTF-8"),
        "{}",
        notes(&imported)
    );
    make("my app".as_ref());
    make("my!app".as_ref());
    let err = import(Format::Runit, dir.path()).unwrap_err();
    assert!(
        err.ends_with("my!app: a second service named `my-app`; rename one of the directories"),
        "{err}"
    );
}

/// Found by fuzzing (`import`, fuzz/regressions/import/width-beyond-u16): a width beyond
/// 65,535 in an expansion made Rust's formatting panic; the leading zeros are flags.
#[test]
fn expansion_widths_beyond_what_tend_pads_are_refused() {
    let input = include_bytes!("../../../fuzz/regressions/import/width-beyond-u16");
    let text = std::str::from_utf8(input).unwrap();
    assert!(import_text(Format::Supervisord, "fuzz.conf", text).is_err());
    assert_eq!(
        supervisord_error("[program:x]\ncommand=x\ndirectory=%(here)099999s\n"),
        "supervisord.conf:3: directory: `%(here)`: a width of 99999 (tend import pads to 4096 at most)"
    );
    // Up to the limit, padding works as in Python.
    let (_, loaded) =
        import_supervisord("[program:x]\ncommand=x\ndirectory=/%(program_name)4096s\n");
    let workdir = service(&loaded, "x").launch.workdir.clone().unwrap();
    assert_eq!(workdir.as_os_str().len(), 4097);
}

/// Found by fuzzing (`import`, fuzz/regressions/import/env-key-twice): a key given twice in
/// `environment` was written twice in the `env` table, which is not TOML. supervisord keeps
/// the last value, as a dict does.
#[test]
fn an_environment_key_given_twice_keeps_its_last_value() {
    let input = include_bytes!("../../../fuzz/regressions/import/env-key-twice");
    let imported = import_text(
        Format::Supervisord,
        "fuzz.conf",
        std::str::from_utf8(input).unwrap(),
    )
    .unwrap();
    assert!(
        toml::from_str::<toml::Table>(&imported.toml).is_ok(),
        "{}",
        imported.toml
    );
    let (_, loaded) = import_supervisord("[program:x]\ncommand=x\nenvironment=A=1,B=2,A=\"3\"\n");
    assert_eq!(
        env(service(&loaded, "x")),
        [
            ("A".to_string(), "3".to_string()),
            ("B".to_string(), "2".to_string())
        ]
    );
}

/// Debian's /etc/crontab as shipped, with lines of the kinds people add.
#[test]
fn a_system_crontab() {
    let (imported, loaded) = import_and_load(Format::Crontab, &fixture("cron/crontab"));
    assert_eq!(
        names(&loaded),
        [
            "cron.hourly",
            "cron.daily",
            "cron.weekly",
            "cron.monthly",
            "php",
            "backup",
            "warm-cache",
            "mail"
        ]
    );
    let schedule = |name: &str| {
        service(&loaded, name)
            .schedule
            .as_ref()
            .map(|s| s.text.clone())
    };
    assert_eq!(schedule("cron.hourly").as_deref(), Some("17 * * * *"));
    assert_eq!(schedule("cron.weekly").as_deref(), Some("47 6 * * 7"));
    assert_eq!(schedule("backup").as_deref(), Some("0 2 * * mon-fri"));
    // Each line runs with /bin/sh -c, as cron runs it.
    assert_eq!(
        argv(service(&loaded, "cron.daily")),
        [
            "/bin/sh",
            "-c",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }"
        ]
    );
    // `\%` is a percent sign; the user column is `user` (root is tend's own).
    assert_eq!(
        argv(service(&loaded, "backup"))[2],
        "/usr/local/bin/backup --db app --to /backups/$(date +%F).sql"
    );
    assert_eq!(
        service(&loaded, "backup")
            .launch
            .credentials
            .as_ref()
            .map(|c| c.uid),
        Some(33)
    );
    assert_eq!(service(&loaded, "cron.hourly").launch.credentials, None);
    // A variable applies to the lines after it.
    assert_eq!(env(service(&loaded, "cron.monthly")), []);
    assert_eq!(
        env(service(&loaded, "php")),
        [(
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string()
        )]
    );
    // @reboot: a one-shot task at start.
    let warm = service(&loaded, "warm-cache");
    assert!(warm.oneshot && warm.schedule.is_none());
    assert_eq!(warm.restart, RestartPolicy::Never);
    // `%`: the command ends there; what follows is its input, fed by a here-document,
    // written with its lines as they are.
    assert_eq!(
        argv(service(&loaded, "mail"))[2],
        "exec <<'CRON_INPUT'\nTime for the fortnightly check.\nBye\nCRON_INPUT\n\
         /usr/bin/mail -s \"fortnightly\" root"
    );
    assert!(
        imported
            .toml
            .contains("command = '''\nexec <<'CRON_INPUT'\nTime for the fortnightly check.\n"),
        "{}",
        imported.toml
    );
    let notes = notes(&imported);
    for expected in [
        "MAILTO is not carried over",
        "`mail`: what follows the first `%` is the command's standard input, as under cron",
        "`warm-cache` is @reboot",
        "skips that run and says so",
        "PATH=/usr/bin:/bin",
    ] {
        assert!(notes.contains(expected), "{expected}:\n{notes}");
    }
    // The header and each task's line are in the file for the reader.
    assert!(
        imported.toml.contains(
            "/crontab:20: 17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n\
             [services.\"cron.hourly\"]\n"
        ),
        "{}",
        imported.toml
    );
}

/// A user's crontab (`crontab -l`): no user column, CRON_TZ as the zone.
#[test]
fn a_user_crontab() {
    let (imported, loaded) = import_and_load(Format::Crontab, &fixture("cron/user-crontab"));
    assert_eq!(names(&loaded), ["poll", "rotate", "poll-2"]);
    assert_eq!(
        argv(service(&loaded, "rotate"))[2],
        "nice -n 10 /home/app/bin/rotate >> /home/app/rotate.log 2>&1"
    );
    assert_eq!(
        service(&loaded, "poll-2").schedule.as_ref().unwrap().text,
        "@weekly"
    );
    assert_eq!(loaded.spec.timezone.iana_name(), Some("Europe/Berlin"));
    assert!(
        imported
            .toml
            .contains("[tend]\ntimezone = \"Europe/Berlin\"\n")
    );
    assert!(notes(&imported).contains("CRON_TZ=Europe/Berlin is `[tend] timezone`"));
    // Read as a system crontab, its lines have no command after the "user".
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app");
    std::fs::write(&path, "0 0 * * * /bin/true\n").unwrap();
    assert_eq!(
        import_on(Format::CronD, &path, &host()).unwrap_err(),
        format!(
            "{}:1: not a crontab line: \"0 0 * * * /bin/true\"",
            path.display()
        )
    );
    // Forced the other way: a user's crontab whose sixth words are all users of this machine.
    std::fs::write(&path, "0 0 * * * backup --all\n").unwrap();
    let guessed = import_on(Format::Crontab, &path, &host()).unwrap();
    assert!(
        guessed.toml.contains("user = \"backup\""),
        "{}",
        guessed.toml
    );
    let forced = import_on(Format::UserCrontab, &path, &host()).unwrap();
    assert!(
        forced.toml.contains("command = \"backup --all\""),
        "{}",
        forced.toml
    );
    std::fs::write(&path, "0 0 31 2 * /bin/true\n").unwrap();
    let err = import_on(Format::Crontab, &path, &host()).unwrap_err();
    assert!(
        err.contains(":1: 0 0 31 2 *: this schedule never matches"),
        "{err}"
    );
}

/// The input after a `%` becomes a here-document in front of the command, which names the
/// task; its delimiter is none of the input's lines; a SHELL of the crontab's own runs the
/// same script; the one input a here-document cannot end as cron does is said.
#[test]
fn a_crontab_commands_input_is_a_here_document_in_front_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crontab");
    std::fs::write(
        &path,
        "* * * * * cat%a%\\\nSHELL=/bin/bash\n@daily cat > /tmp/x%CRON_INPUT%\n",
    )
    .unwrap();
    let (imported, loaded) = import_and_load(Format::UserCrontab, &path);
    assert_eq!(names(&loaded), ["cat", "cat-2"]);
    assert_eq!(
        argv(service(&loaded, "cat")),
        [
            "/bin/sh",
            "-c",
            "exec <<'CRON_INPUT'\na\n\\\nCRON_INPUT\ncat"
        ]
    );
    assert_eq!(
        argv(service(&loaded, "cat-2")),
        [
            "/bin/bash",
            "-c",
            "exec <<'CRON_INPUT_2'\nCRON_INPUT\nCRON_INPUT_2\ncat > /tmp/x"
        ]
    );
    assert!(
        imported
            .toml
            .contains("command = [\"/bin/bash\", \"-c\", '''\nexec <<'CRON_INPUT_2'\nCRON_INPUT\n"),
        "{}",
        imported.toml
    );
    let notes = notes(&imported);
    assert!(
        notes.contains(
            ":1: `cat`: cron ends this input with the backslash after its last `%`, without a newline"
        ),
        "{notes}"
    );
}

#[test]
fn numprocs_becomes_instances_with_the_process_number_as_its_placeholder() {
    let (imported, loaded) = import_supervisord(
        "[program:worker]\n\
         command=/usr/bin/worker --id %(process_num)d --slot %(process_num)02d --of %(numprocs)d\n\
         process_name=%(program_name)s_%(process_num)02d\n\
         numprocs=3\n\
         directory=/srv/w%(process_num)s\n\
         environment=SLOT=\"%(process_num)03d\",NAME=\"%(program_name)s\"\n\
         stdout_logfile=%(here)s/worker.log\n\
         [program:web]\n\
         command=web --literal {instance} --also {instanse}\n\
         priority=1000\n",
    );
    assert!(
        imported.toml.contains("[services.worker]\ncommand = \"/usr/bin/worker --id {instance} --slot {instance:02} --of 3\"\ninstances = 3\n"),
        "{}",
        imported.toml
    );
    assert_eq!(names(&loaded), ["worker-0", "worker-1", "worker-2", "web"]);
    let w = service(&loaded, "worker-2");
    assert_eq!(
        argv(w),
        ["/usr/bin/worker", "--id", "2", "--slot", "02", "--of", "3"]
    );
    assert_eq!(w.launch.workdir.as_deref(), Some(Path::new("/srv/w2")));
    assert_eq!(
        env(w),
        [
            ("TEND_INSTANCE".into(), "2".into()),
            ("SLOT".into(), "002".into()),
            ("NAME".into(), "worker".into())
        ]
    );
    // One log file per process, as tend rotates each on its own.
    let log = w.log_file.as_ref().unwrap().path.clone();
    assert_eq!(log.file_name().unwrap(), "worker-02.log");
    // Text that looks like tend's placeholder is kept as text.
    assert_eq!(
        argv(service(&loaded, "web")),
        ["web", "--literal", "{instance}", "--also", "{instanse}"]
    );
    // Priorities wait for the whole pool.
    let web = service(&loaded, "web");
    assert_eq!(web.depends_on.len(), 3);
    let notes = notes(&imported);
    assert!(
        notes.contains(
            "`worker`: numprocs=3 became `instances = 3`: tend runs worker-0 to worker-2 \
             (supervisord's worker_00 to worker_02), with %(process_num) as {instance}; \
             `tend restart worker` acts on them all, as `supervisorctl restart worker:*` does, \
             and `tend restart worker-2` on one"
        ),
        "{notes}"
    );
}

#[test]
fn numprocs_that_instances_cannot_say_stays_a_service_per_process() {
    for (body, names_, why) in [
        (
            "command=run %(process_num)d\nnumprocs_start=1\n",
            ["w-1", "w-2"],
            "numprocs_start=1 numbers them from 1, and tend's {instance} counts from 0 with no offset",
        ),
        (
            "command=run %(process_num)2d\n",
            ["w-0", "w-1"],
            "`%(process_num)` is written in a way tend's {instance} cannot say (it pads with zeros only: `{instance}`, `{instance:02}`)",
        ),
        (
            "command=run\nenvironment=W%(process_num)d=1\n",
            ["w-0", "w-1"],
            "environment: the variable `W{instance}` is named with %(process_num), and tend has {instance} in the values only",
        ),
    ] {
        let (imported, loaded) = import_supervisord(&format!(
            "[program:w]\n{body}process_name=w-%(process_num)d\nnumprocs=2\n"
        ));
        assert_eq!(names(&loaded), names_, "{}", imported.toml);
        assert!(!imported.toml.contains("instances"), "{}", imported.toml);
        let notes = notes(&imported);
        assert!(
            notes.contains(
                "`w`: numprocs=2 is written as 2 services, one per process, not as `instances = 2`: "
            ) && notes.contains(why),
            "{why}\n{notes}"
        );
        assert!(!notes.contains("became `instances"), "{notes}");
    }
}

/// The comments of the output quote the original (a crontab's line, a path): a control
/// character there is written as `\xNN`, so the output is still TOML. Found by fuzzing
/// (`import`, fuzz/regressions/import/crontab-control-character).
#[test]
fn control_characters_in_quoted_lines_keep_the_output_toml() {
    let text = "*/10 * * * * www-data /usr/bin/php /var/www/cr\x01on.php\x7f > /dev/null\n";
    let imported = import_text(Format::CronD, "odd\nname\x1b.cron", text).unwrap();
    assert!(
        toml::from_str::<toml::Table>(&imported.toml).is_ok(),
        "{}",
        imported.toml
    );
    assert!(
        imported.toml.contains("cr\\x01on.php\\x7f"),
        "{}",
        imported.toml
    );
    assert!(
        imported
            .toml
            .starts_with("# Imported from odd\\x0aname\\x1b.cron (cron.d)"),
        "{}",
        imported.toml
    );
    assert_eq!(emit::comment("a\tb"), "# a\tb\n");
}
