//! runit service directories: each directory with an executable `run` is a service. runsv
//! runs `./run` in that directory and restarts it whenever it exits; so does tend.

use super::Parts;
use super::emit::{self, Service};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub fn services(path: &Path) -> Result<Parts, String> {
    let origin = path.display().to_string();
    let root = std::path::absolute(path).map_err(|e| format!("{origin}: {e}"))?;
    if !root.is_dir() {
        return Err(format!(
            "{origin}: not a directory (expected a runit service directory, or a directory of them such as /etc/service)"
        ));
    }
    // One service directory, or a directory of them.
    let dirs: Vec<PathBuf> = if root.join("run").exists() {
        vec![root.clone()]
    } else {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
            .map_err(|e| format!("{origin}: cannot list it: {e}"))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.join("run").exists())
            .collect();
        dirs.sort();
        dirs
    };
    let mut services: Vec<Service> = Vec::new();
    let mut notes = Vec::new();
    // runit services whose ./finish runsv would wait for without a limit: said once for all.
    let mut unbounded_finish: Vec<String> = Vec::new();
    for dir in dirs {
        let raw = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let run = dir.join("run");
        if !is_executable(&run) {
            notes.push(format!(
                "{}: skipped: its run file is not executable, so runsv would not start it (chmod +x it and import again)",
                dir.display()
            ));
            continue;
        }
        // The paths go into the TOML as strings: one that is not UTF-8 would be written
        // with U+FFFD in place of its bytes, naming a `run` that does not exist.
        if dir.to_str().is_none() {
            notes.push(format!(
                "{}: skipped: its path is not UTF-8, which a configuration file cannot hold (rename it and import again)",
                dir.display()
            ));
            continue;
        }
        let name = super::service_name(&raw, &mut notes);
        // Names are made from directory names, and two (`my app`, `my!app`) can give the
        // same one: the same table twice is not TOML. Said as the other importers say it.
        if services.iter().any(|s| s.name == name) {
            return Err(format!(
                "{}: a second service named `{name}`; rename one of the directories",
                dir.display()
            ));
        }
        let mut service = Service::new(name.clone());
        service.set("command", emit::strings(&[run.display().to_string()]));
        service.set("workdir", emit::string(&dir.display().to_string()));
        // runsv restarts ./run whatever happens and never gives up; 0 is tend's "never".
        service.set("max-restarts", "0".to_string());
        let check = dir.join("check");
        if is_executable(&check) {
            // `sv check` runs ./check until it exits 0: the same as an exec readiness probe.
            service.set(
                "ready",
                emit::inline_table(&[(
                    "exec".to_string(),
                    emit::strings(&[check.display().to_string()]),
                )]),
            );
        }
        // runsv does not start a service with a `down` file until `sv up`.
        if dir.join("down").exists() {
            service.set("autostart", "false".to_string());
        }
        if finish(&dir, &name, &mut service, &mut notes) {
            unbounded_finish.push(name.clone());
        }
        if dir.join("log").join("run").exists() {
            notes.push(format!(
                "`{name}`: its log service (log/run) is not imported; tend prefixes the service's lines and writes them to its own stdout, or to a file with `logs = {{ file = ... }}`"
            ));
        }
        if dir.join("control").is_dir() {
            notes.push(format!(
                "`{name}`: its control/ scripts (custom signal handling) are not used; set `stop-signal` if ./control/t sent something other than TERM"
            ));
        }
        services.push(service);
    }
    if !unbounded_finish.is_empty() {
        let names: Vec<String> = unbounded_finish.iter().map(|n| format!("`{n}`")).collect();
        notes.push(format!(
            "{}: runsv waits for ./finish as long as it takes; tend gives it finish-timeout (5 s unless set), then kills it",
            names.join(", ")
        ));
    }
    if !services.is_empty() {
        notes.push(
            "runit waits up to 7 s (`sv -w`) for a service to stop; tend waits `stop-timeout` \
             (5 s by default) before SIGKILL, and sends the stop signal to the service's whole \
             process group."
                .to_string(),
        );
    }
    Ok(Parts {
        services,
        notes,
        ..Parts::default()
    })
}

/// `./finish`, run by runsv (and s6-supervise) after every end of `./run`, with its exit
/// code and signal: tend's `finish`, which gets the same two arguments. True for a runit
/// one, which runsv waits for without a limit (s6 has its own, carried over).
fn finish(dir: &Path, name: &str, service: &mut Service, notes: &mut Vec<String>) -> bool {
    let finish = dir.join("finish");
    if !finish.exists() {
        return false;
    }
    if !is_executable(&finish) {
        notes.push(format!(
            "`{name}`: its ./finish is not executable, so runsv would not run it; not imported"
        ));
        return false;
    }
    service.set("finish", emit::strings(&[finish.display().to_string()]));
    // s6's own limit on ./finish, in milliseconds (5000 when there is no such file).
    let s6_timeout = std::fs::read_to_string(dir.join("timeout-finish"))
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    if let Some(ms) = s6_timeout.filter(|&ms| ms > 0) {
        service.set("finish-timeout", emit::string(&format!("{ms}ms")));
    }
    let s6 = ["timeout-finish", "notification-fd", "type", "timeout-kill"]
        .iter()
        .any(|f| dir.join(f).exists());
    if s6 {
        notes.push(format!(
            "`{name}`: s6 passes 256 as ./finish's first argument when ./run was killed by a signal; tend passes -1, as runsv does (the second argument, the signal, is the same)"
        ));
    }
    !s6
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
