//! How a service's process is started: command, environment, working directory, ids, umask
//! and resource limits, as a `core::spec::Launch`.

use super::context::Context;
use super::error::ConfigError;
use super::schema::{
    Command, IdValue, LimitBound, LimitValue, LimitsTable, ServiceTable, UmaskValue,
};
use super::users::Id;
use super::{envfile, words};
use crate::core::spec::{Credentials, Launch, Limit, Output, Resource, SessionMode};
use std::ffi::OsString;
use std::ops::Range;
use toml::Spanned;

/// `RLIM_INFINITY` on Linux.
const UNLIMITED: u64 = u64::MAX;

impl Context<'_> {
    pub fn launch(
        &mut self,
        name: &Spanned<String>,
        t: &ServiceTable,
    ) -> Result<Launch, ConfigError> {
        let Some(command) = &t.command else {
            return Err(self.error(
                name.span(),
                format!("service `{}` has no `command`", name.get_ref()),
            ));
        };
        let argv = self.argv(name.get_ref(), command, t.shell.as_ref())?;
        let workdir = match &t.workdir {
            Some(dir) => Some(self.path(dir, "workdir")?),
            None => None,
        };
        let umask = match &t.umask {
            Some(value) => Some(self.umask(value)?),
            None => None,
        };
        let limits = match &t.limits {
            Some(table) => self.limits(table)?,
            None => Vec::new(),
        };
        Ok(Launch {
            argv,
            // Each service in its own session, so stop signals reach its whole group and
            // none of it shares tend's terminal.
            session: SessionMode::NewSession,
            env: self.env(t)?,
            workdir,
            credentials: self.credentials(name.get_ref(), t)?,
            umask,
            limits,
            output: Output::Prefixed,
        })
    }

    fn argv(
        &mut self,
        service: &str,
        command: &Spanned<Command>,
        shell: Option<&Spanned<bool>>,
    ) -> Result<Vec<OsString>, ConfigError> {
        let span = command.span();
        if shell.is_some_and(|s| *s.get_ref()) {
            let Command::Text(text) = command.get_ref() else {
                let message = "with `shell = true`, `command` must be a string: the script for \
                               /bin/sh -c";
                let help = "write the command as one string, or drop `shell = true` to run the \
                            array directly";
                return Err(self.error(span, message).with_help(help));
            };
            if text.trim().is_empty() {
                return Err(self.error(span, "`command` is empty"));
            }
            self.no_nul(span, text, "`command`")?;
            return Ok(["/bin/sh", "-c", text.as_str()].map(OsString::from).into());
        }
        let (argv, shell_syntax) = self.program(command, "command")?;
        if let Some(c) = shell_syntax {
            self.warn(
                span.start,
                format_args!(
                    "the command of service `{service}` contains `{c}`, which is passed on \
                     literally because no shell runs it; set `shell = true` to run it with \
                     /bin/sh -c, or quote it to silence this warning"
                ),
            );
        }
        Ok(argv)
    }

    /// A program to run with no shell, as `key` gives it: an array (program and arguments,
    /// as they are) or a string split into words. Also returns the first unquoted character
    /// of a string that means something to a shell, for the caller to warn about.
    pub fn program(
        &self,
        command: &Spanned<Command>,
        key: &str,
    ) -> Result<(Vec<OsString>, Option<char>), ConfigError> {
        let span = command.span();
        let empty = || self.error(span.clone(), format!("`{key}` is empty"));
        let (argv, shell_syntax): (Vec<String>, _) = match command.get_ref() {
            Command::Argv(args) => {
                let Some(first) = args.first() else {
                    return Err(empty());
                };
                if first.get_ref().is_empty() {
                    return Err(self.error(
                        first.span(),
                        format!("the program name (the first element of `{key}`) is empty"),
                    ));
                }
                for arg in args {
                    self.no_nul(arg.span(), arg.get_ref(), "this argument")?;
                }
                (args.iter().map(|a| a.get_ref().clone()).collect(), None)
            }
            Command::Text(text) => {
                self.no_nul(span.clone(), text, &format!("`{key}`"))?;
                let split =
                    words::split(text).map_err(|e| self.split_error(span.clone(), text, key, e))?;
                match split.words.first() {
                    None => return Err(empty()),
                    Some(first) if first.is_empty() => {
                        return Err(self.error(
                            span.clone(),
                            format!("the program name (the first word of `{key}`) is empty"),
                        ));
                    }
                    Some(_) => {}
                }
                (split.words, split.shell_syntax)
            }
        };
        Ok((argv.into_iter().map(OsString::from).collect(), shell_syntax))
    }

    fn split_error(
        &self,
        span: Range<usize>,
        text: &str,
        key: &str,
        error: words::SplitError,
    ) -> ConfigError {
        let (at, message) = match error {
            words::SplitError::UnterminatedQuote { quote, at } => {
                let kind = if quote == '"' { "double" } else { "single" };
                (
                    at,
                    format!(
                        "unterminated {kind} quote in `{key}`: the quote opened here is never \
                         closed"
                    ),
                )
            }
            words::SplitError::TrailingBackslash { at } => (
                at,
                format!("`{key}` ends with a backslash that escapes nothing"),
            ),
        };
        let width = text[at..].chars().next().map_or(1, char::len_utf8);
        self.error(self.inside_string(span, text, at..at + width), message)
    }

    /// `env-file` first, then `env`, so the table in the config file overrides the file.
    fn env(&self, t: &ServiceTable) -> Result<Vec<(OsString, OsString)>, ConfigError> {
        let mut vars = Vec::new();
        if let Some(file) = &t.env_file {
            let path = self.path(file, "env-file")?;
            let fail = |why: String| self.error(file.span(), why);
            let bytes = std::fs::read(&path)
                .map_err(|e| fail(format!("cannot read env-file {}: {e}", path.display())))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| fail(format!("env-file {} is not valid UTF-8", path.display())))?;
            let parsed = envfile::parse(&text).map_err(|e| {
                fail(format!(
                    "env-file {} line {}: {}",
                    path.display(),
                    e.line,
                    e.message
                ))
            })?;
            vars.extend(parsed.into_iter().map(|(k, v)| (k.into(), v.into())));
        }
        if let Some(table) = &t.env {
            for (key, value) in &table.0 {
                if let Some(problem) = envfile::bad_name(key.get_ref()) {
                    let message = format!(
                        "invalid variable name \"{}\": {problem}",
                        key.get_ref().escape_debug()
                    );
                    return Err(self.error(key.span(), message));
                }
                self.no_nul(value.span(), value.get_ref(), "the value")?;
                vars.push((key.get_ref().into(), value.get_ref().into()));
            }
        }
        Ok(vars)
    }

    fn credentials(
        &mut self,
        service: &str,
        t: &ServiceTable,
    ) -> Result<Option<Credentials>, ConfigError> {
        let Some(user) = &t.user else {
            if let Some(group) = &t.group {
                return Err(self
                    .error(group.span(), "`group` needs `user` as well")
                    .with_help("to run as root with another group, add user = \"root\""));
            }
            return Ok(None);
        };
        let id = self.id(user, "user", "uid")?;
        let found = self
            .accounts
            .user(id)
            .map_err(|m| self.error(user.span(), m))?;
        let gid = match &t.group {
            Some(group) => self.group(group, "group")?,
            None => match found.gid {
                Some(gid) => gid,
                None => {
                    let passwd = self.accounts.passwd_path();
                    self.warn(
                        user.span().start,
                        format_args!(
                            "service `{service}` runs as uid {}, which has no entry in {}: its \
                             group is 0 (root), as under Docker; set `group` to choose another",
                            found.uid,
                            passwd.display()
                        ),
                    );
                    0
                }
            },
        };
        let groups = match &found.name {
            Some(name) => self
                .accounts
                .supplementary(name)
                .map_err(|m| self.error(user.span(), m))?,
            None => Vec::new(),
        };
        Ok(Some(Credentials {
            uid: found.uid,
            gid,
            groups,
        }))
    }

    /// A group key (`group`, `socket-group`) resolved to a gid: a name must be in the
    /// `group` file, a number is taken as is. Errors point at the value.
    pub fn group(&mut self, value: &Spanned<IdValue>, key: &str) -> Result<u32, ConfigError> {
        let id = self.id(value, key, "gid")?;
        self.accounts
            .group(id)
            .map_err(|m| self.error(value.span(), m))
    }

    /// A user or group as written: digits are an id, anything else a name.
    fn id<'v>(
        &self,
        value: &'v Spanned<IdValue>,
        key: &str,
        kind: &str,
    ) -> Result<Id<'v>, ConfigError> {
        // u32::MAX is -1 to setresuid/setresgid: "leave unchanged", never a real id.
        let out_of_range = || {
            self.error(
                value.span(),
                format!("a {kind} must be from 0 to {}", u32::MAX - 1),
            )
        };
        let number = |n: u64| match u32::try_from(n) {
            Ok(id) if id != u32::MAX => Ok(Id::Number(id)),
            _ => Err(out_of_range()),
        };
        match value.get_ref() {
            IdValue::Number(n) => number(u64::try_from(*n).map_err(|_| out_of_range())?),
            IdValue::Text(text) if text.is_empty() => {
                Err(self.error(value.span(), format!("`{key}` is empty")))
            }
            IdValue::Text(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
                number(text.parse().map_err(|_| out_of_range())?)
            }
            IdValue::Text(text) => Ok(Id::Name(text)),
        }
    }

    fn umask(&self, value: &Spanned<UmaskValue>) -> Result<u32, ConfigError> {
        let parsed = match value.get_ref() {
            UmaskValue::Text(text)
                if !text.is_empty()
                    && text.len() <= 4
                    && text.bytes().all(|b| (b'0'..=b'7').contains(&b)) =>
            {
                u32::from_str_radix(text, 8).ok()
            }
            UmaskValue::Text(_) => None,
            UmaskValue::Number(n) => u32::try_from(*n).ok(),
        };
        match parsed {
            Some(mask) if mask <= 0o777 => Ok(mask),
            _ => {
                let shown = match value.get_ref() {
                    UmaskValue::Text(text) => format!("\"{}\"", text.escape_debug()),
                    UmaskValue::Number(n) => n.to_string(),
                };
                Err(self.error(
                    value.span(),
                    format!(
                        "invalid umask {shown}: expected octal digits from \"0000\" to \
                         \"0777\", such as \"0022\""
                    ),
                ))
            }
        }
    }

    fn limits(&self, table: &LimitsTable) -> Result<Vec<Limit>, ConfigError> {
        let entries = [
            (Resource::Nofile, &table.nofile),
            (Resource::Nproc, &table.nproc),
            (Resource::Core, &table.core),
            (Resource::Memlock, &table.memlock),
            (Resource::Stack, &table.stack),
        ];
        let mut limits = Vec::new();
        for (resource, value) in entries {
            let Some(value) = value else { continue };
            let (soft, hard) = match value.get_ref() {
                LimitValue::Same(bound) => {
                    let n = self.limit_bound(value.span(), bound)?;
                    (n, n)
                }
                LimitValue::Pair(pair) => {
                    let soft = self.limit_bound(pair.soft.span(), pair.soft.get_ref())?;
                    let hard = self.limit_bound(pair.hard.span(), pair.hard.get_ref())?;
                    if soft > hard {
                        return Err(
                            self.error(pair.soft.span(), "the soft limit is above the hard limit")
                        );
                    }
                    (soft, hard)
                }
            };
            limits.push(Limit {
                resource,
                soft,
                hard,
            });
        }
        Ok(limits)
    }

    fn limit_bound(&self, span: Range<usize>, bound: &LimitBound) -> Result<u64, ConfigError> {
        match bound {
            LimitBound::Number(n) => u64::try_from(*n)
                .map_err(|_| self.error(span, format!("a limit cannot be negative, found {n}"))),
            LimitBound::Text(text) if text == "unlimited" => Ok(UNLIMITED),
            LimitBound::Text(text) => Err(self.error(
                span,
                format!(
                    "invalid limit \"{}\": expected an integer or \"unlimited\"",
                    text.escape_debug()
                ),
            )),
        }
    }
}
