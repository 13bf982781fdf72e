//! Sockets: a non-blocking one for an IP address, and peer credentials of a unix socket.

use rustix::net::{self, AddressFamily, SocketFlags, SocketType};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// A non-blocking, close-on-exec socket of `kind` for talking to (or listening on) `ip`'s
/// address family: what the probes, DNS lookups and the HTTP endpoints all start from.
pub fn nonblocking(ip: IpAddr, kind: SocketType) -> rustix::io::Result<OwnedFd> {
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::INET,
        IpAddr::V6(_) => AddressFamily::INET6,
    };
    net::socket_with(
        family,
        kind,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
}

/// Who is at the other end of a unix socket, as the kernel recorded it at connect time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// 0 when the peer is in a pid namespace tend cannot see (a client on the host talking
    /// to a containerised tend through a bind-mounted socket).
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// SO_PEERCRED. Read with libc rather than rustix, whose type cannot represent pid 0.
pub fn peer_credentials(fd: impl AsFd) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writing and `len` holds the buffer's size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}
