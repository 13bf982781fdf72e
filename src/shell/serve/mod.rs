//! What tend serves: the control socket (`tend status` and friends) and the optional HTTP
//! endpoints (`/livez`, `/readyz`, `/metrics`), with the reports both answer from.

pub mod conn;
pub mod control;
pub mod http;
pub mod metrics;
pub mod status;

use rustix::event::epoll::EventFlags;

/// The events on a connection that call for a read: input, the peer's hang-up, an error.
const READABLE: EventFlags = EventFlags::IN
    .union(EventFlags::RDHUP)
    .union(EventFlags::HUP)
    .union(EventFlags::ERR);
