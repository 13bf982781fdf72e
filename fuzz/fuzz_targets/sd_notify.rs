//! Arbitrary readiness notifications from a service, through the real channels:
//! datagrams on an `sd-notify` socket and writes on a `notify-fd` pipe, read by
//! `tend::shell::probes::Notify::on_event` as the event loop does. Never a panic; the
//! service is reported ready exactly once, at the first datagram with a line `READY=1`
//! (within its first 4096 bytes, all tend reads of one) or at the first write holding a
//! newline, and never otherwise.
//!
//! Input: records of a 2-byte big-endian length (taken modulo 8193) and that many bytes,
//! at most 16; each is one datagram, and (cut to 4096 bytes) one write on the pipe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;
use tend::core::Probe;
use tend::shell::probes::Notify;

struct Fixture {
    root: PathBuf,
    ep: OwnedFd,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
    fn epoll_create1(flags: std::ffi::c_int) -> std::ffi::c_int;
}

extern "C" fn remove_fixture() {
    if let Some(f) = FIXTURE.get() {
        let _ = std::fs::remove_dir_all(&f.root);
    }
}

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let root = tempfile::Builder::new()
            .prefix("tend-fuzz-notify")
            .tempdir()
            .expect("temp dir")
            .keep();
        // SAFETY: registers a plain `extern "C" fn()`, as atexit(3) expects.
        unsafe { atexit(remove_fixture) };
        // SAFETY: epoll_create1 takes flags (EPOLL_CLOEXEC) and returns a new descriptor.
        let fd = unsafe { epoll_create1(0o2000000) };
        assert!(fd >= 0, "epoll_create1");
        // SAFETY: `fd` was just created and belongs to nothing else.
        let ep = unsafe { OwnedFd::from_raw_fd(fd) };
        Fixture { root, ep }
    })
}

/// Whether a datagram has the line `READY=1`, said another way than tend says it.
fn has_ready_line(d: &[u8]) -> bool {
    const READY: &[u8] = b"READY=1";
    (0..d.len()).any(|i| {
        d[i..].starts_with(READY)
            && (i == 0 || d[i - 1] == b'\n')
            && d.get(i + READY.len()).is_none_or(|&b| b == b'\n')
    })
}

fn records(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let [a, b, rest @ ..] = data {
        if out.len() == 16 {
            break;
        }
        let len = (usize::from(u16::from_be_bytes([*a, *b])) % 8193).min(rest.len());
        let (record, after) = rest.split_at(len);
        out.push(record);
        data = after;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // The service's number: what the loop passes for its `Token::Notify`.
    let token = 0;
    let records = records(data);
    let mut notify = Notify::new();

    // sd_notify: one datagram per record.
    let dir = f.root.join("notify");
    let prepared = notify
        .prepare(&f.ep, 0, &Probe::SdNotify, &dir, None)
        .expect("sd-notify socket");
    let (_, path) = prepared.env.expect("NOTIFY_SOCKET");
    let client = UnixDatagram::unbound().expect("client socket");
    let mut reported = false;
    for record in &records {
        client.send_to(record, &path).expect("send");
        let got = notify.on_event(&f.ep, token);
        let cut = record.get(..4096).unwrap_or(record);
        let expected = !reported && has_ready_line(cut);
        assert_eq!(
            got,
            if expected { vec![0] } else { vec![] },
            "{:?}",
            String::from_utf8_lossy(record)
        );
        reported |= expected;
    }

    // notify-fd: one write per record.
    let prepared = notify
        .prepare(&f.ep, 0, &Probe::NotifyFd { fd: 3 }, &dir, None)
        .expect("notify-fd pipe");
    let (write, _) = prepared.fd_map.expect("the pipe's write end");
    let mut write = std::fs::File::from(write);
    let mut reported = false;
    for record in &records {
        let cut = record.get(..4096).unwrap_or(record);
        write.write_all(cut).expect("write");
        let got = notify.on_event(&f.ep, token);
        let expected = !reported && cut.contains(&b'\n');
        assert_eq!(got, if expected { vec![0] } else { vec![] });
        reported |= expected;
    }
    drop(write);
    // The service closed its end: the channel goes, and says nothing more.
    assert!(notify.on_event(&f.ep, token).is_empty());
    assert!(notify.on_event(&f.ep, token).is_empty());
    notify.remove(&f.ep, 0);
});
