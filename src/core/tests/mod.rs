//! Deterministic tests of the supervisor with a fake clock: every input and every timeout is
//! chosen by the test, and the action trace is compared as a whole.

pub(crate) mod common;
mod control;
pub(crate) mod cron;
mod dependencies;
mod instances;
mod memory;
mod probes;
mod scheduled;
mod second_wave;
mod single;
mod supervise;
