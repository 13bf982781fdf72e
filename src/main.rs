//! The `tend` binary.
//!
//! `no_main`: Rust's normal entry point sets SIGPIPE to "ignore" before any user code runs,
//! which would hide whether the launcher had ignored it — and tend must hand its child exactly
//! the signal dispositions it was started with (invariant 2). With our own C `main`, nothing
//! touches signals before `sys::signals` records them.
#![no_main]

use std::ffi::{c_char, c_int};

// SAFETY: the C runtime calls this exactly once as the program's entry point, with the usual
// argc/argv (which we do not use: std reads them itself on Linux).
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    tend::cli::main()
}
