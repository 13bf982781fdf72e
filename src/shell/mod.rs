//! The impure half: one thread, one epoll loop, feeding `core` and carrying out its actions.
#![warn(clippy::indexing_slicing)]

pub mod control;
pub mod dns;
pub mod event_loop;
pub mod http_client;
pub mod http_server;
pub mod json_line;
pub mod lines;
pub mod log;
pub mod logfile;
pub mod logs;
pub mod metrics;
pub mod output;
pub mod pidfile;
pub mod probes;
pub mod repeated;
pub mod ring;
pub mod shm_store;
pub mod status;
pub mod timestamp;
