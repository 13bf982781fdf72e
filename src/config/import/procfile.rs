//! Procfiles: `name: command` per line, each command run by a shell, as foreman and honcho do.

use super::emit::{self, Service};

pub fn services(origin: &str, text: &str) -> Result<(Vec<Service>, Vec<String>), String> {
    let mut services = Vec::new();
    let mut notes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((name, command)) = trimmed.split_once(':') else {
            return Err(format!(
                "{origin}:{}: expected `name: command`, found {trimmed:?}",
                i + 1
            ));
        };
        let (name, command) = (name.trim(), command.trim());
        if name.is_empty() || command.is_empty() {
            return Err(format!(
                "{origin}:{}: expected `name: command`, found {trimmed:?}",
                i + 1
            ));
        }
        let name = super::service_name(name, &mut notes);
        if services.iter().any(|s: &Service| s.name == name) {
            return Err(format!(
                "{origin}:{}: a second process named `{name}`",
                i + 1
            ));
        }
        let mut service = Service::new(name);
        service.set("command", emit::string(command));
        // foreman and honcho run each line with `sh -c`, so $VARIABLES and pipes work.
        service.set("shell", "true".to_string());
        services.push(service);
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
    Ok((services, notes))
}
