//! tend: a container init and process supervisor.
//!
//! Layers, from pure to impure (see docs/architecture.md):
//! - [`core`]: the supervisor's decisions, sans-IO and deterministic;
//! - [`sys`]: every system call that needs `unsafe`;
//! - [`shell`]: the event loop that feeds the core and carries out its actions;
//! - [`cli`]: command-line parsing and entry points.

pub mod cli;
pub mod config;
pub mod core;
pub mod proto;
pub mod shell;
pub mod sys;
