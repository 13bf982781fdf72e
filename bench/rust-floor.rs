//! The smallest init that Rust's standard library allows on tend's target, as a reference
//! column for init-bench.sh: what any Rust std program built like tend (static glibc,
//! opt-level "z", LTO, panic=abort, stripped) weighs in size and memory before it does
//! anything of its own. It is a real init, so every row can measure it: signals blocked
//! before the child starts, the child started with the original mask, every signal but
//! SIGCHLD forwarded to it, every zombie reaped, the child's exit code (128+N for signal N)
//! returned. No options, no process groups, no terminal handling.
//!
//! Usage: rust-floor [--] PROGRAM [ARGS...]; rust-floor --version

use std::ffi::c_int;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// glibc's sigset_t: 1024 bits.
#[repr(C)]
#[derive(Clone, Copy)]
struct SigSet([u64; 16]);

/// glibc's siginfo_t is 128 bytes; only si_signo, the first int, is read here.
#[repr(C)]
struct SigInfo {
    signo: c_int,
    rest: [u8; 124],
}

const SIG_BLOCK: c_int = 0;
const SIG_SETMASK: c_int = 2;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;

unsafe extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--version") {
        println!("rust-floor (Rust std, static glibc; reference only)");
        return;
    }
    if args.first().map(String::as_str) == Some("--") {
        args.remove(0);
    }
    if args.is_empty() {
        eprintln!("usage: rust-floor [--] PROGRAM [ARGS...]");
        std::process::exit(1);
    }
    let mut all = SigSet([0; 16]);
    let mut original = SigSet([0; 16]);
    // SAFETY: both sets are valid, writable sigset_t-sized buffers.
    unsafe {
        sigfillset(&mut all);
        sigprocmask(SIG_BLOCK, &all, &mut original);
    }
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]);
    // SAFETY: sigprocmask is async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(move || {
            sigprocmask(SIG_SETMASK, &original, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(c) => c.id() as c_int,
        Err(e) => {
            eprintln!("rust-floor: cannot run {}: {e}", args[0]);
            std::process::exit(127);
        }
    };
    loop {
        let mut info = SigInfo {
            signo: 0,
            rest: [0; 124],
        };
        // SAFETY: `all` is a valid set and `info` a writable siginfo_t-sized buffer.
        let sig = unsafe { sigwaitinfo(&all, &mut info) };
        if sig != SIGCHLD {
            if sig > 0 {
                // SAFETY: plain syscall on the child's pid.
                unsafe { kill(child, sig) };
            }
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer; WNOHANG never blocks.
            let pid = unsafe { waitpid(-1, &mut status, WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == child {
                let signal = status & 0x7f;
                std::process::exit(if signal == 0 { (status >> 8) & 0xff } else { 128 + signal });
            }
        }
    }
}
