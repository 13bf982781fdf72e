//! `depends-on`: service names resolved to ids, the graph checked for cycles, and what only
//! the whole graph can tell: a `completed` wait on a service that is not a one-shot task,
//! and stop chains longer than the shutdown budget.

use super::context::Context;
use super::duration;
use super::error::ConfigError;
use super::schema::{ConditionValue, DependsOn};
use crate::core::spec::{Condition, Dependency, ServiceId, ServiceSpec};
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

/// What resolving a `depends-on` needs to know of every service, so that a service may
/// depend on one defined further down the file.
pub(super) struct Roster {
    /// In file order: the index of a name is its `ServiceId`.
    pub names: Vec<String>,
    pub oneshot: Vec<bool>,
    /// `run-on = "shutdown"`: nothing can wait for it, since it runs only at the end.
    pub shutdown_task: Vec<bool>,
    /// `schedule`: nothing can wait for it either, since it never completes for good.
    pub scheduled: Vec<bool>,
    /// The table each service comes from, when its `instances` made it (`worker` for
    /// `worker-3`): naming that table means every instance.
    pub instance_of: Vec<Option<String>>,
}

impl Roster {
    /// The services `name` means: the one of that name, else every instance of the table of
    /// that name.
    fn resolve(&self, name: &str) -> Vec<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return vec![i];
        }
        (0..self.names.len())
            .filter(|&i| self.instance_of[i].as_deref() == Some(name))
            .collect()
    }

    /// The services of the file for a message: a table's instances as one entry.
    fn shown(&self) -> String {
        let mut shown: Vec<String> = Vec::new();
        let mut i = 0;
        while i < self.names.len() {
            let base = self.instance_of[i]
                .as_ref()
                .filter(|b| **b != self.names[i]);
            let n = base.map_or(1, |b| {
                self.instance_of[i..]
                    .iter()
                    .take_while(|o| o.as_ref() == Some(b))
                    .count()
            });
            shown.push(match base {
                Some(b) => format!("`{b}` ({} to {})", self.names[i], self.names[i + n - 1]),
                None => format!("`{}`", self.names[i]),
            });
            i += n;
        }
        shown.join(", ")
    }
}

/// Where the parts of one service that the graph checks talk about were written.
pub(super) struct Places {
    /// The span of each `depends-on` entry, parallel to `ServiceSpec::depends_on`.
    pub entries: Vec<Range<usize>>,
    /// Where its `stop-timeout` starts in the file (a byte offset), or its name when it uses
    /// the default: where a warning about its stop time points.
    pub stop_timeout_at: usize,
    /// Its `stop-timeout` was written in the file; otherwise it gets a share of the budget.
    pub stop_timeout_set: bool,
}

/// One entry of either form, as written.
struct Entry<'a> {
    name: &'a Spanned<String>,
    condition: Condition,
    /// From the name to the condition (table form), or the name (array form).
    span: Range<usize>,
    /// The condition, or the name in the array form, where the condition is implied.
    condition_at: usize,
}

impl Context<'_> {
    /// The dependencies of the services `mine` (the instances of table `myself`, or the one
    /// service it is), and the span of each.
    pub fn depends_on(
        &mut self,
        roster: &Roster,
        myself: &str,
        mine: Range<usize>,
        value: &Spanned<DependsOn>,
    ) -> Result<(Vec<Dependency>, Vec<Range<usize>>), ConfigError> {
        let entries: Vec<Entry<'_>> = match value.get_ref() {
            DependsOn::Conditions(table) => table
                .0
                .iter()
                .map(|(name, condition)| Entry {
                    name,
                    condition: match condition.get_ref() {
                        ConditionValue::Started => Condition::Started,
                        ConditionValue::Ready => Condition::Ready,
                        ConditionValue::Completed => Condition::Completed,
                    },
                    span: name.span().start..condition.span().end,
                    condition_at: condition.span().start,
                })
                .collect(),
            // docker compose's short form: each only has to be started.
            DependsOn::Names(names) => names
                .iter()
                .map(|name| Entry {
                    name,
                    condition: Condition::Started,
                    span: name.span(),
                    condition_at: name.span().start,
                })
                .collect(),
        };
        let mut dependencies: Vec<Dependency> = Vec::with_capacity(entries.len());
        let mut spans = Vec::with_capacity(entries.len());
        let mut named: Vec<&str> = Vec::with_capacity(entries.len());
        for entry in entries {
            let target = entry.name.get_ref();
            let targets = roster.resolve(target);
            let Some(&on) = targets.first() else {
                return Err(self
                    .error(
                        entry.name.span(),
                        format!(
                            "service `{myself}` depends on `{}`, which is not defined",
                            target.escape_debug()
                        ),
                    )
                    .with_help(format!(
                        "the services defined in this file are {}",
                        roster.shown()
                    )));
            };
            if targets.iter().any(|&t| roster.shutdown_task[t]) {
                return Err(self
                    .error(
                        entry.name.span(),
                        format!(
                            "service `{myself}` depends on `{target}`, which runs only when tend \
                             shuts down (`run-on = \"shutdown\"`), so `{myself}` would never start"
                        ),
                    )
                    .with_help(format!(
                        "a shutdown task may depend on services (they stay up until it ends), \
                         not the other way round; remove `{target}` from the `depends-on` of \
                         `{myself}`"
                    )));
            }
            if targets.iter().any(|&t| roster.scheduled[t]) {
                return Err(self
                    .error(
                        entry.name.span(),
                        format!(
                            "service `{myself}` depends on `{target}`, a scheduled task, which \
                             runs at its times and is never done for good"
                        ),
                    )
                    .with_help(format!(
                        "a scheduled task may depend on services, not the other way round; \
                         remove `{target}` from the `depends-on` of `{myself}`"
                    )));
            }
            if target == myself {
                return Err(self.error(
                    entry.name.span(),
                    format!("service `{myself}` depends on itself"),
                ));
            }
            if mine.contains(&on) {
                return Err(self.error(
                    entry.name.span(),
                    format!(
                        "service `{myself}` depends on `{target}`, one of its own instances: \
                         every instance waits for the same services, so that one would wait \
                         for itself"
                    ),
                ));
            }
            // Only the array form can get here: TOML refuses a key written twice.
            if named.contains(&target.as_str()) {
                return Err(self.error(
                    entry.name.span(),
                    format!("`{target}` is listed twice in the `depends-on` of `{myself}`"),
                ));
            }
            named.push(target);
            if entry.condition == Condition::Completed && !roster.oneshot[on] {
                self.warn(
                    entry.condition_at,
                    format_args!(
                        "service `{myself}` waits for `{target}` to complete, but `{target}` is \
                         not `oneshot = true`: it completes only if it exits successfully and is \
                         not restarted"
                    ),
                );
            }
            // A table with instances: each of them.
            for on in targets {
                dependencies.push(Dependency {
                    on: ServiceId(on),
                    condition: entry.condition,
                });
                spans.push(entry.span.clone());
            }
        }
        Ok((dependencies, spans))
    }
}

/// Checks the whole graph once every service is converted: no cycle (an error); gives the
/// services that set no `stop-timeout` their share of the shutdown budget; and warns for each
/// stop chain that still does not fit in `shutdown_timeout`.
pub(super) fn check_graph(
    cx: &mut Context<'_>,
    services: &mut [ServiceSpec],
    places: &[Places],
    shutdown_timeout: Duration,
) -> Result<(), ConfigError> {
    let order = dependencies_first(cx, services, places)?;
    share_stop_budget(services, places, &order, shutdown_timeout);
    warn_about_stop_chains(cx, services, places, &order, shutdown_timeout);
    Ok(())
}

/// `stop-timeout` when a service sets none and stops on its own or in parallel with others.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The least a shared default gives a service to stop; a chain too long for it warns.
pub const MIN_SHARED_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// A `completed` dependency does not make a stop chain: its dependent starts only after it
/// has exited, so the two never have to be stopped one after the other.
fn runs_along(d: &Dependency) -> bool {
    d.condition != Condition::Completed
}

/// Services that set no `stop-timeout` share what `shutdown_timeout` leaves along their stop
/// chains, so that the simplest file (an app that depends on a database, both with defaults)
/// fits Docker's 10 s: each gets `min(5s, (budget - E) / D)`, where E is the largest sum of
/// set stop-timeouts and D the largest number of defaulted services on any chain through it
/// (at least 1 s).
///
/// Why every chain then fits (when its set timeouts leave room): for a chain C and each
/// defaulted service s on it, E(C) <= E(s) and D(C) <= D(s), so s gets at most
/// (budget - E(C)) / D(C), and C's D(C) defaulted services together at most budget - E(C).
fn share_stop_budget(
    services: &mut [ServiceSpec],
    places: &[Places],
    order: &[usize],
    shutdown_timeout: Duration,
) {
    let n = services.len();
    // (set stop-timeouts and finish-timeouts, defaulted services) of a service alone.
    let own = |s: usize| -> (Duration, u32) {
        let finish = finish_time(&services[s]);
        if places[s].stop_timeout_set {
            (services[s].stop_timeout.saturating_add(finish), 0)
        } else {
            (finish, 1)
        }
    };
    let own: Vec<(Duration, u32)> = (0..n).map(own).collect();
    // The largest of each along the chains from a service down through what it depends on
    // (`below`, dependencies first) and up through what depends on it (`above`).
    let mut below = own.clone();
    for &s in order {
        let (mut e, mut d) = (Duration::ZERO, 0);
        for dep in services[s].depends_on.iter().filter(|d| runs_along(d)) {
            e = e.max(below[dep.on.0].0);
            d = d.max(below[dep.on.0].1);
        }
        below[s] = (own[s].0.saturating_add(e), own[s].1 + d);
    }
    let mut above = own.clone();
    for &s in order.iter().rev() {
        for dep in services[s].depends_on.iter().filter(|d| runs_along(d)) {
            let on = dep.on.0;
            above[on].0 = above[on].0.max(above[s].0.saturating_add(own[on].0));
            above[on].1 = above[on].1.max(above[s].1 + own[on].1);
        }
    }
    for s in 0..n {
        if places[s].stop_timeout_set {
            continue;
        }
        // Through s: what is above it and below it, s itself counted once.
        let set = (above[s].0 + below[s].0).saturating_sub(own[s].0);
        let defaulted = (above[s].1 + below[s].1).saturating_sub(own[s].1).max(1);
        let share = shutdown_timeout.saturating_sub(set) / defaulted;
        // Whole milliseconds: what `tend check` and the logs show stays readable.
        let share = Duration::from_millis(u64::try_from(share.as_millis()).unwrap_or(u64::MAX));
        services[s].stop_timeout = share.clamp(MIN_SHARED_STOP_TIMEOUT, DEFAULT_STOP_TIMEOUT);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    /// On the current DFS path: reaching it again closes a cycle.
    OnPath,
    Done,
}

/// Every service after all of its dependencies (a DFS post-order, from each service in file
/// order), or the first cycle met, reported at the entry that closes it.
///
/// The DFS keeps its own stack: a file with a very long chain must not overflow tend's.
fn dependencies_first(
    cx: &Context<'_>,
    services: &[ServiceSpec],
    places: &[Places],
) -> Result<Vec<usize>, ConfigError> {
    let mut visit = vec![Visit::New; services.len()];
    let mut order = Vec::with_capacity(services.len());
    // (service, index of its next dependency to follow)
    let mut path: Vec<(usize, usize)> = Vec::new();
    for root in 0..services.len() {
        if visit[root] != Visit::New {
            continue;
        }
        visit[root] = Visit::OnPath;
        path.push((root, 0));
        while let Some((service, next)) = path.last_mut() {
            let service = *service;
            let Some(dependency) = services[service].depends_on.get(*next) else {
                visit[service] = Visit::Done;
                order.push(service);
                path.pop();
                continue;
            };
            let entry = *next;
            *next += 1;
            let on = dependency.on.0;
            match visit[on] {
                Visit::New => {
                    visit[on] = Visit::OnPath;
                    path.push((on, 0));
                }
                Visit::OnPath => {
                    let start = path.iter().position(|&(s, _)| s == on).unwrap_or(0);
                    let cycle: Vec<&str> = path[start..]
                        .iter()
                        .map(|&(s, _)| services[s].name.as_str())
                        .chain([services[on].name.as_str()])
                        .collect();
                    return Err(cx
                        .error(
                            places[service].entries[entry].clone(),
                            format!("dependency cycle: {}", cycle.join(" -> ")),
                        )
                        .with_help(
                            "each of these services would wait for the next one to start, so \
                             none ever would; remove one of these dependencies",
                        ));
                }
                Visit::Done => {}
            }
        }
    }
    Ok(order)
}

/// At shutdown a service is stopped only once the services that depend on it are down, so
/// stop-timeouts add up along dependency chains, and the longest chain has to fit in the
/// shutdown budget. Warns once for each chain that does not, from each service nothing
/// waits on, along its longest chain.
///
/// How long a service's `finish` command may run after it has stopped: part of its link in
/// a stop chain.
fn finish_time(spec: &ServiceSpec) -> Duration {
    spec.finish.as_ref().map_or(Duration::ZERO, |f| f.timeout)
}

/// What a service's link in a stop chain can take, for people: "5s", "2s + finish 1s".
fn show_link(spec: &ServiceSpec) -> String {
    match &spec.finish {
        Some(f) => format!(
            "{} + finish {}",
            duration::show(spec.stop_timeout),
            duration::show(f.timeout)
        ),
        None => duration::show(spec.stop_timeout),
    }
}

/// A `completed` dependency does not lengthen a chain (see `runs_along`).
fn warn_about_stop_chains(
    cx: &mut Context<'_>,
    services: &[ServiceSpec],
    places: &[Places],
    order: &[usize],
    shutdown_timeout: Duration,
) {
    // For each service: the longest time it and what it depends on can take to stop, and
    // which of its dependencies that chain goes through.
    let mut longest = vec![Duration::ZERO; services.len()];
    let mut through: Vec<Option<usize>> = vec![None; services.len()];
    for &service in order {
        let mut best: Option<(usize, Duration)> = None;
        for (entry, dependency) in services[service].depends_on.iter().enumerate() {
            let chain = longest[dependency.on.0];
            if runs_along(dependency) && best.is_none_or(|(_, b)| chain > b) {
                best = Some((entry, chain));
            }
        }
        let rest = best.map_or(Duration::ZERO, |(_, d)| d);
        longest[service] = services[service]
            .stop_timeout
            .saturating_add(finish_time(&services[service]))
            .saturating_add(rest);
        through[service] = best.map(|(entry, _)| entry);
    }
    // Every chain is part of one that starts at a service nothing running waits on.
    let mut waited_on = vec![false; services.len()];
    for dependency in services.iter().flat_map(|s| &s.depends_on) {
        if runs_along(dependency) {
            waited_on[dependency.on.0] = true;
        }
    }
    let budget = duration::show(shutdown_timeout);
    let mut told: Vec<&str> = Vec::new();
    for (first, spec) in services.iter().enumerate() {
        if waited_on[first] || longest[first] <= shutdown_timeout {
            continue;
        }
        // The instances of a table are alike: one warning, by the table's name, is for all.
        let own_name = spec.instance_of.as_deref().unwrap_or(&spec.name);
        if spec.instance_of.is_some() {
            if told.contains(&own_name) {
                continue;
            }
            told.push(own_name);
        }
        let Some(entry) = through[first] else {
            cx.warn(
                places[first].stop_timeout_at,
                format_args!(
                    "service `{}` has stop-timeout {}, longer than shutdown-timeout {budget}: \
                     services stop in parallel within the shutdown budget, so it may be \
                     killed before it has stopped",
                    own_name,
                    show_link(spec),
                ),
            );
            continue;
        };
        let mut chain = vec![first];
        let mut at = spec.depends_on[entry].on.0;
        loop {
            chain.push(at);
            match through[at] {
                Some(next) => at = services[at].depends_on[next].on.0,
                None => break,
            }
        }
        let mut names: Vec<&str> = chain.iter().map(|&s| services[s].name.as_str()).collect();
        names[0] = own_name;
        let parts: Vec<String> = chain.iter().map(|&s| show_link(&services[s])).collect();
        cx.warn(
            places[first].entries[entry].start,
            format_args!(
                "the stop chain {} (each stops before the one it depends on) can take {} \
                 (stop-timeouts {}), longer than shutdown-timeout {budget}, so `{}` may be \
                 killed before it has stopped",
                names.join(" -> "),
                duration::show(longest[first]),
                parts.join(" + "),
                names[names.len() - 1],
            ),
        );
    }
}
