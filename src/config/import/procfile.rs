//! Procfiles: `name: command` per line, each command run by a shell, as foreman and honcho do.

use super::Parts;
use super::emit::{self, Service};

/// Heroku's release phase: a task run to completion before the other processes start.
const RELEASE: &str = "release";

pub fn services(origin: &str, text: &str) -> Result<Parts, String> {
    let mut services = Vec::new();
    let mut notes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((name, command)) = process_line(line) else {
            // foreman and honcho skip every line that is not a process, comments included;
            // a note for the lines that were not obviously meant as comments.
            let trimmed = line.trim();
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                notes.push(format!(
                    "{origin}:{}: skipped {trimmed:?}: not a `name: command` line (foreman and honcho skip it too; a name is letters, digits, '_' and '-' from the start of the line)",
                    i + 1
                ));
            }
            continue;
        };
        if services.iter().any(|s: &Service| s.name == name) {
            return Err(format!(
                "{origin}:{}: a second process named `{name}`",
                i + 1
            ));
        }
        let mut service = Service::new(name);
        // As written: text like tend's `{instance}` placeholder stays text.
        let command = crate::config::instances::escape(command);
        service.set("command", emit::string(&command));
        // foreman and honcho run each line with `sh -c`, so $VARIABLES and pipes work.
        service.set("shell", "true".to_string());
        services.push(service);
    }
    if services.iter().any(|s| s.name == RELEASE) {
        release_first(&mut services);
        notes.push(
            "`release` is Heroku's release phase: a task that runs to completion before the \
             other processes start. It is `oneshot = true` and the others wait for it \
             (`depends-on = { release = \"completed\" }`); if it keeps failing, they are not \
             started."
                .to_string(),
        );
    }
    if !services.is_empty() {
        notes.push(
            "foreman and honcho stop everything when one process exits; tend restarts a \
             process that exits (restart = \"always\"). Add `critical = true` to a service \
             whose end should end the container."
                .to_string(),
        );
        if text.contains("$PORT") || text.contains("${PORT}") {
            notes.push(
                "$PORT is used: foreman gives each process its own PORT (5000, 5100, ...); \
                 tend passes on its own environment, so set `env = { PORT = \"...\" }` where \
                 a service needs one."
                    .to_string(),
            );
        }
    }
    Ok(Parts {
        services,
        notes,
        ..Parts::default()
    })
}

/// A process line as foreman and honcho read it, `^([A-Za-z0-9_-]+):\s*(.+)$`: the name
/// from the start of the line, then the command (here without its surrounding blanks).
fn process_line(line: &str) -> Option<(&str, &str)> {
    let (name, command) = line.split_once(':')?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let command = command.trim();
    (name_ok && !command.is_empty()).then_some((name, command))
}

/// `release` becomes a one-shot task that every other process waits for.
fn release_first(services: &mut [Service]) {
    for service in services.iter_mut() {
        if service.name == RELEASE {
            service.set("oneshot", "true".to_string());
        } else {
            service.set(
                "depends-on",
                emit::inline_table(&[(RELEASE.to_string(), emit::string("completed"))]),
            );
        }
    }
}
