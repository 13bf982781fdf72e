//! `ready` and `health`: which probe, and when and for how long it runs.

use super::context::Context;
use super::duration::DurationValue;
use super::error::ConfigError;
use super::schema::{Command, HealthTable, ReadyTable};
use super::{address, duration};
use crate::core::spec::{HealthRule, Probe, ReadyRule};
use std::ops::{Range, RangeInclusive};
use std::time::Duration;
use toml::Spanned;

/// Defaults documented in docs/config.md.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_INTERVAL: Duration = Duration::from_millis(250);
const READY_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
const HEALTH_START_PERIOD: Duration = Duration::ZERO;
const HEALTH_FAILURES: u32 = 3;

pub(super) const HEALTH_FAILURES_RANGE: RangeInclusive<i64> = 1..=1000;
/// 0, 1 and 2 are the service's stdio; 1023 keeps the fd under the usual soft
/// `RLIMIT_NOFILE` of 1024.
pub(super) const NOTIFY_FDS: RangeInclusive<i64> = 3..=1023;

const READY_PROBES: &str = "`tcp`, `http`, `exec`, `notify-fd` or `sd-notify`";
const HEALTH_PROBES: &str = "`tcp`, `http` or `exec`";

impl Context<'_> {
    /// `ready` of service `service`.
    pub fn ready(
        &mut self,
        service: &str,
        table: &Spanned<ReadyTable>,
    ) -> Result<ReadyRule, ConfigError> {
        let t = table.get_ref();
        let given = [
            ("tcp", t.tcp.is_some()),
            ("http", t.http.is_some()),
            ("exec", t.exec.is_some()),
            ("notify-fd", t.notify_fd.is_some()),
            ("sd-notify", t.sd_notify.is_some()),
        ];
        self.one_probe("ready", table.span(), &given, READY_PROBES)?;
        let probe = match (&t.tcp, &t.http, &t.exec, &t.notify_fd, &t.sd_notify) {
            (Some(address), ..) => self.tcp_probe(address)?,
            (_, Some(url), ..) => self.http_probe(url)?,
            (_, _, Some(command), ..) => self.exec_probe(service, "ready.exec", command)?,
            (_, _, _, Some(fd), _) => Probe::NotifyFd {
                fd: i32::try_from(*fd.get_ref())
                    .ok()
                    .filter(|n| NOTIFY_FDS.contains(&i64::from(*n)))
                    .ok_or_else(|| {
                        self.error(
                            fd.span(),
                            format!(
                                "ready.notify-fd must be from {} to {} (0, 1 and 2 are stdin, \
                                 stdout and stderr), found {}",
                                NOTIFY_FDS.start(),
                                NOTIFY_FDS.end(),
                                fd.get_ref()
                            ),
                        )
                    })?,
            },
            (_, _, _, _, Some(flag)) => {
                if !*flag.get_ref() {
                    return Err(self.error(
                        flag.span(),
                        "`sd-notify = false` chooses no probe: write `sd-notify = true`, or use \
                         another probe (`tcp`, `http`, `exec` or `notify-fd`)",
                    ));
                }
                Probe::SdNotify
            }
            (None, None, None, None, None) => return Err(self.no_probe("ready", table.span())),
        };
        if !probe.is_polled() {
            let kind = if t.sd_notify.is_some() {
                "sd-notify"
            } else {
                "notify-fd"
            };
            for (key, value) in [
                ("interval", &t.interval),
                ("attempt-timeout", &t.attempt_timeout),
            ] {
                if let Some(value) = value {
                    return Err(self.error(
                        value.span(),
                        format!(
                            "`{key}` applies only to the polled probes (`tcp`, `http`, `exec`): \
                             with `{kind}`, the service itself tells tend when it is ready"
                        ),
                    ));
                }
            }
        }
        Ok(ReadyRule {
            probe,
            interval: self.positive(&t.interval, "ready.interval", READY_INTERVAL)?,
            attempt_timeout: self.positive(
                &t.attempt_timeout,
                "ready.attempt-timeout",
                READY_ATTEMPT_TIMEOUT,
            )?,
            timeout: self.positive(&t.timeout, "ready.timeout", READY_TIMEOUT)?,
        })
    }

    /// `health` of service `service`.
    pub fn health(
        &mut self,
        service: &str,
        table: &Spanned<HealthTable>,
    ) -> Result<HealthRule, ConfigError> {
        let t = table.get_ref();
        let given = [
            ("tcp", t.tcp.is_some()),
            ("http", t.http.is_some()),
            ("exec", t.exec.is_some()),
        ];
        self.one_probe("health", table.span(), &given, HEALTH_PROBES)?;
        let probe = match (&t.tcp, &t.http, &t.exec) {
            (Some(address), ..) => self.tcp_probe(address)?,
            (_, Some(url), _) => self.http_probe(url)?,
            (_, _, Some(command)) => self.exec_probe(service, "health.exec", command)?,
            (None, None, None) => return Err(self.no_probe("health", table.span())),
        };
        let interval = self.positive(&t.interval, "health.interval", HEALTH_INTERVAL)?;
        let timeout = self.positive(&t.timeout, "health.timeout", HEALTH_TIMEOUT)?;
        let start_period = match &t.start_period {
            Some(value) => self.duration(value)?,
            None => HEALTH_START_PERIOD,
        };
        let failures = match &t.failures {
            Some(value) => u32::try_from(*value.get_ref())
                .ok()
                .filter(|n| HEALTH_FAILURES_RANGE.contains(&i64::from(*n)))
                .ok_or_else(|| {
                    self.error(
                        value.span(),
                        format!(
                            "health.failures must be from {} to {}, found {}",
                            HEALTH_FAILURES_RANGE.start(),
                            HEALTH_FAILURES_RANGE.end(),
                            value.get_ref()
                        ),
                    )
                })?,
            None => HEALTH_FAILURES,
        };
        if timeout > interval {
            let at = t
                .timeout
                .as_ref()
                .or(t.interval.as_ref())
                .map_or(table.span().start, |v| v.span().start);
            self.warn(
                at,
                format_args!(
                    "the health check of service `{service}` has timeout {}, longer than its \
                     interval {}: one check may still run when the next is due",
                    duration::show(timeout),
                    duration::show(interval)
                ),
            );
        }
        Ok(HealthRule {
            probe,
            interval,
            timeout,
            start_period,
            failures,
        })
    }

    /// More than one probe in `table` (`ready` or `health`) is an error at the table; none is
    /// left to the caller, which reports it with `no_probe`.
    fn one_probe(
        &self,
        table: &str,
        span: Range<usize>,
        given: &[(&str, bool)],
        allowed: &str,
    ) -> Result<(), ConfigError> {
        let found: Vec<String> = given
            .iter()
            .filter(|(_, present)| *present)
            .map(|(key, _)| format!("`{key}`"))
            .collect();
        let Some((last, others)) = found.split_last().filter(|(_, others)| !others.is_empty())
        else {
            return Ok(());
        };
        Err(self.error(
            span,
            format!(
                "`{table}` has more than one probe ({} and {last}): give exactly one of {allowed}",
                others.join(", ")
            ),
        ))
    }

    fn no_probe(&self, table: &str, span: Range<usize>) -> ConfigError {
        let (allowed, example) = if table == "ready" {
            (READY_PROBES, "ready = { tcp = \"127.0.0.1:8080\" }")
        } else {
            (
                HEALTH_PROBES,
                "health = { http = \"http://127.0.0.1:8080/health\" }",
            )
        };
        self.error(
            span,
            format!("`{table}` has no probe: give exactly one of {allowed}"),
        )
        .with_help(format!("for example: {example}"))
    }

    fn tcp_probe(&self, value: &Spanned<String>) -> Result<Probe, ConfigError> {
        let target = address::tcp(value.get_ref()).map_err(|p| self.address_error(value, p))?;
        Ok(Probe::Tcp { target })
    }

    fn http_probe(&self, value: &Spanned<String>) -> Result<Probe, ConfigError> {
        let target = address::http(value.get_ref()).map_err(|p| self.address_error(value, p))?;
        Ok(Probe::Http { target })
    }

    fn address_error(&self, value: &Spanned<String>, problem: address::Problem) -> ConfigError {
        let span = self.inside_string(value.span(), value.get_ref(), problem.at);
        self.error(span, problem.message)
    }

    fn exec_probe(
        &mut self,
        service: &str,
        key: &str,
        command: &Spanned<Command>,
    ) -> Result<Probe, ConfigError> {
        let (argv, shell_syntax) = self.program(command, key)?;
        if let Some(c) = shell_syntax {
            self.warn(
                command.span().start,
                format_args!(
                    "`{key}` of service `{service}` contains `{c}`, which is passed on \
                     literally because no shell runs it; write it as [\"/bin/sh\", \"-c\", \
                     \"...\"] to run it with a shell, or quote it to silence this warning"
                ),
            );
        }
        Ok(Probe::Exec { argv })
    }

    /// A duration that must not be zero, or `default` when it is not given.
    fn positive(
        &self,
        value: &Option<Spanned<DurationValue>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let d = self.duration(value)?;
        if d.is_zero() {
            return Err(self.error(value.span(), format!("{key} must be longer than zero")));
        }
        Ok(d)
    }
}
