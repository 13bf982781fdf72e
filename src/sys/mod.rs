//! The only home of `unsafe`: thin wrappers over system calls, each with its reasoning.
//!
//! Nothing here decides anything; `core` decides and `shell` calls these. The system calls
//! rustix wraps safely (the wall-clock timer) live here too, next to the others.
#![warn(clippy::indexing_slicing)]

pub mod bytes;
pub mod process;
pub mod reap;
pub mod shm;
pub mod signals;
pub mod socket;
pub mod spawn;
pub mod timer;
pub mod usage;
