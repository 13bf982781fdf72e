//! What tend serves: the control socket (`tend status` and friends) and the optional HTTP
//! endpoints (`/livez`, `/readyz`, `/metrics`), with the reports both answer from.

pub mod control;
pub mod http;
pub mod metrics;
pub mod status;
