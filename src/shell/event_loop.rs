//! The event loop: epoll over the signalfd (and, later, sockets and pipes), with the timeout
//! the core asks for. With nothing to time, it sleeps in epoll_wait with no timeout at all.

use super::log::Logger;
use crate::core::{self, Action, Input, KillTarget, Level, Signal, Supervisor};
use crate::sys::process;
use crate::sys::reap::{self, Reaped};
use crate::sys::signals::{Inherited, Received, SignalFd};
use crate::sys::spawn;
use rustix::event::epoll;
use std::io::Write;
use std::time::Duration;

/// What the loop needs besides the core's spec.
pub struct Context {
    pub inherited: Inherited,
    pub signals: SignalFd,
    pub log: Logger,
    /// tend is PID 1 of its pid namespace: `kill(-1)` means "everything in the container".
    pub is_pid1: bool,
}

const SIGNALFD_TOKEN: u64 = 0;

/// Runs until the core says exit; returns the exit code. Errors here are setup errors.
pub fn run(mut sup: Supervisor, ctx: Context) -> std::io::Result<u8> {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &ep,
        &ctx.signals,
        epoll::EventData::new_u64(SIGNALFD_TOKEN),
        epoll::EventFlags::IN,
    )?;
    let origin = std::time::Instant::now();
    let now = || core::Instant::from_origin(origin.elapsed());
    let me = process::getpid();

    sup.start(now());
    let mut received: Vec<Received> = Vec::with_capacity(32);
    let mut events = Vec::with_capacity(8);
    loop {
        if let Some(code) = execute(&mut sup, &ctx, now) {
            return Ok(code);
        }
        let timeout = sup.poll_timeout().map(|at| {
            let d = at.since(now());
            // Round up: waking a hair early would only spin once more.
            rustix::event::Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: i64::from(d.subsec_nanos()),
            }
        });
        events.clear();
        match epoll::wait(&ep, spare(&mut events), timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                // Not expected; never give up the loop over it, but do not spin either.
                ctx.log.say(Level::Error, format_args!("epoll_wait: {e}"));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        for ev in events.iter() {
            if ev.data.u64() == SIGNALFD_TOKEN {
                on_signals(&mut sup, &ctx, me, &mut received, now);
            }
        }
        if let Some(at) = sup.poll_timeout() {
            if now() >= at {
                sup.handle_timeout(now());
            }
        }
    }
}

fn spare(events: &mut Vec<epoll::Event>) -> rustix::buffer::SpareCapacity<'_, epoll::Event> {
    rustix::buffer::spare_capacity(events)
}

fn on_signals(
    sup: &mut Supervisor,
    ctx: &Context,
    me: core::Pid,
    received: &mut Vec<Received>,
    now: impl Fn() -> core::Instant,
) {
    received.clear();
    if let Err(e) = ctx.signals.read_all(received) {
        ctx.log
            .say(Level::Error, format_args!("reading signals: {e}"));
        return;
    }
    let mut reap_needed = false;
    for r in received.iter() {
        if r.signal == Signal::CHLD {
            reap_needed = true;
        } else if r.signal == Signal::PIPE && r.sender == me.0 {
            // tend's own write to a closed pipe: an error return handles it, not the child.
        } else {
            sup.handle(now(), Input::Signal(r.signal));
        }
    }
    if reap_needed {
        reap_all(sup, ctx, now);
    }
}

/// waitpid(-1, WNOHANG) until nothing is left to collect; every pid goes to the core, which
/// tells services from adopted orphans.
fn reap_all(sup: &mut Supervisor, ctx: &Context, now: impl Fn() -> core::Instant) {
    loop {
        match reap::reap_one() {
            Ok(Reaped::Child(pid, status)) => sup.handle(now(), Input::ChildExited { pid, status }),
            Ok(Reaped::NoneReady) => return,
            Ok(Reaped::NoChildren) => {
                sup.handle(now(), Input::NoChildren);
                return;
            }
            Err(e) => {
                ctx.log.say(Level::Error, format_args!("waitpid: {e}"));
                return;
            }
        }
    }
}

/// Carries out every queued action. Returns the exit code once the core asks to exit.
fn execute(sup: &mut Supervisor, ctx: &Context, now: impl Fn() -> core::Instant) -> Option<u8> {
    while let Some(action) = sup.poll_action() {
        match action {
            Action::Spawn { svc, generation } => {
                let launch = &sup.spec().services[svc.0].launch;
                let input = match spawn::spawn(launch, &ctx.inherited) {
                    // Registered before the next reap: this thread reaps only between actions.
                    Ok(pid) => Input::Spawned {
                        svc,
                        generation,
                        pid,
                    },
                    Err(e) => Input::SpawnFailed {
                        svc,
                        generation,
                        kind: e.kind,
                        message: e.message,
                    },
                };
                sup.handle(now(), input);
            }
            Action::Kill { target, signal } => kill(ctx, target, signal),
            Action::Log(note) => ctx.log.note(&note),
            Action::Exit(code) => {
                let _ = std::io::stdout().flush();
                let _ = std::io::stderr().flush();
                return Some(code);
            }
        }
    }
    None
}

fn kill(ctx: &Context, target: KillTarget, signal: Signal) {
    let result = match target {
        KillTarget::Process(pid) => process::kill(pid.0, signal),
        KillTarget::Group(pid) => process::kill(-pid.0, signal),
        KillTarget::Everyone if ctx.is_pid1 => match process::kill(-1, signal) {
            // Nobody left to signal is the good case.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other,
        },
        KillTarget::Everyone => {
            for pid in process::descendants(process::getpid()) {
                let _ = process::kill(pid.0, signal);
            }
            Ok(())
        }
    };
    if let Err(e) = result {
        let level = if e.raw_os_error() == Some(libc::ESRCH) {
            Level::Debug
        } else {
            Level::Warn
        };
        ctx.log
            .say(level, format_args!("sending {signal} to {target:?}: {e}"));
    }
}
