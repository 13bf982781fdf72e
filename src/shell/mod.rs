//! The impure half: one thread, one epoll loop, feeding `core` and carrying out its actions.
//!
//! Rooms: `event_loop` (the loop, its token map, and what it does for the core), `logs`
//! (services' output: lines, ring, files, tend's own outputs), `probes` (readiness and health
//! checks: tcp, http, dns, exec, notifications), `serve` (the control socket and the HTTP
//! endpoints, one connection type), and the small ones: daemons' pid files, the shm store,
//! tend's own diagnostics, what services cost (`usage`), the kernel's count of OOM kills
//! (`oom`).
#![warn(clippy::indexing_slicing)]

pub mod diagnostics;
pub mod event_loop;
pub mod logs;
pub mod oom;
pub mod pidfile;
pub mod probes;
pub mod repeated;
pub mod serve;
pub mod shm_store;
pub mod token;
pub mod usage;
