//! Readiness notifications: the s6 notification fd (a pipe whose write end the service gets
//! as fd N) and systemd's sd_notify (a datagram socket named by `$NOTIFY_SOCKET`). A service
//! says it is ready once per instance; the loop hands that to the core.

use super::{os_error, probe_name};
use crate::core::{Credentials, Probe};
use crate::shell::token::Token;
use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{self, AddressFamily, RecvFlags, SocketFlags, SocketType};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a service's next instance needs for its readiness notification. Keep it until the
/// instance is spawned, then drop it: `fd_map`'s descriptor is tend's copy of the pipe's write
/// end, and while tend holds it, the pipe cannot report the service's end of it.
#[derive(Debug, Default)]
pub struct Prepared {
    /// notify-fd: dup2 this descriptor to this fd number in the child (dup2 clears
    /// close-on-exec on the copy; the original is close-on-exec).
    pub fd_map: Option<(OwnedFd, i32)>,
    /// sd-notify: `NOTIFY_SOCKET=<path>` for the child's environment.
    pub env: Option<(OsString, OsString)>,
}

/// Notification-based readiness: one channel per service, made anew for every instance so a
/// message from an old instance (or one still queued) cannot make a new one ready.
#[derive(Default)]
pub struct Notify {
    channels: HashMap<usize, Channel>,
}

struct Channel {
    kind: ChannelKind,
    /// Readiness is reported once per instance.
    reported: bool,
}

enum ChannelKind {
    /// The read end of the notify-fd pipe.
    Pipe(OwnedFd),
    /// The sd_notify socket and where it is bound.
    Socket(OwnedFd, PathBuf),
}

/// Datagrams or pipe reads handled per wake-up, so a chatty service cannot hold the loop;
/// level-triggered epoll brings the rest.
const NOTIFY_READS_PER_EVENT: usize = 64;

impl Notify {
    /// No channel is open (every service's was closed or never made).
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    pub fn new() -> Notify {
        Notify::default()
    }

    /// Prepares the readiness channel of service `svc`'s next instance, replacing the
    /// previous one.
    ///
    /// - `NotifyFd { fd }`: a pipe; the child gets its write end as fd `fd` (3 or more).
    ///   A newline on it means ready.
    /// - `SdNotify`: a datagram socket bound at `dir/<svc>.sock`, named to the child by
    ///   `NOTIFY_SOCKET`. A datagram with a line `READY=1` means ready; other fields are
    ///   ignored. `dir` is created if needed with mode 0711 (it must be owned by tend's user):
    ///   services running as another user can reach their own socket but cannot list the
    ///   others. Its parent must be searchable by such services, so it cannot live inside the
    ///   control socket's 0700 directory. Each socket is mode 0600, owned by `owner` (the
    ///   service's credentials, if it switches user) so only its service may send to it.
    ///
    /// Fails with InvalidInput for a polled probe, or with the system's error.
    pub fn prepare(
        &mut self,
        ep: &OwnedFd,
        svc: usize,
        probe: &Probe,
        dir: &Path,
        owner: Option<&Credentials>,
    ) -> io::Result<Prepared> {
        self.remove(ep, svc);
        let token = Token::Notify(svc).data();
        match probe {
            Probe::NotifyFd { fd } => {
                if *fd < 3 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "notify-fd {fd}: must be 3 or more (0-2 are stdin, stdout, stderr)"
                        ),
                    ));
                }
                let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
                // Non-blocking only on the read end: the flag belongs to the open file
                // description, and the service's writes should behave as it expects.
                let flags = rustix::fs::fcntl_getfl(&read)?;
                rustix::fs::fcntl_setfl(&read, flags | rustix::fs::OFlags::NONBLOCK)?;
                epoll::add(ep, &read, token, epoll::EventFlags::IN)?;
                self.channels.insert(
                    svc,
                    Channel {
                        kind: ChannelKind::Pipe(read),
                        reported: false,
                    },
                );
                Ok(Prepared {
                    fd_map: Some((write, *fd)),
                    env: None,
                })
            }
            Probe::SdNotify => {
                ensure_private_dir(dir)?;
                let path = dir.join(format!("{svc}.sock"));
                let sock = bind_notify_socket(&path, owner)?;
                if let Err(e) = epoll::add(ep, &sock, token, epoll::EventFlags::IN) {
                    let _ = std::fs::remove_file(&path);
                    return Err(e.into());
                }
                let env = (
                    OsString::from("NOTIFY_SOCKET"),
                    path.clone().into_os_string(),
                );
                self.channels.insert(
                    svc,
                    Channel {
                        kind: ChannelKind::Socket(sock, path),
                        reported: false,
                    },
                );
                Ok(Prepared {
                    fd_map: None,
                    env: Some(env),
                })
            }
            Probe::Tcp { .. } | Probe::Http { .. } | Probe::Exec { .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a notification", probe_name(probe)),
            )),
        }
    }

    /// Handles readiness of service `svc`'s channel (`Token::Notify`). Returns the services
    /// that have just said they are ready (each at most once per instance). A pipe whose
    /// writers are all gone is closed and removed from epoll.
    pub fn on_event(&mut self, ep: &OwnedFd, svc: usize) -> Vec<usize> {
        let Some(channel) = self.channels.get_mut(&svc) else {
            return Vec::new();
        };
        let mut ready = false;
        let mut closed = false;
        match &channel.kind {
            ChannelKind::Pipe(read) => {
                let mut buf = [0u8; 512];
                for _ in 0..NOTIFY_READS_PER_EVENT {
                    match rustix::io::read(read, &mut buf) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        // Anything after the first newline is drained and ignored (s6 stops
                        // listening at that point; draining spares a chatty service SIGPIPE).
                        Ok(n) => ready |= buf.get(..n).unwrap_or_default().contains(&b'\n'),
                        Err(Errno::INTR) => {}
                        Err(_) => break,
                    }
                }
            }
            ChannelKind::Socket(sock, _) => {
                // sd_notify messages are small; a longer one is cut here and its tail lost,
                // which can only hide fields tend ignores anyway.
                let mut buf = [0u8; 4096];
                for _ in 0..NOTIFY_READS_PER_EVENT {
                    match net::recv(sock, &mut buf, RecvFlags::DONTWAIT) {
                        // A datagram longer than the buffer reports its whole length.
                        Ok((_, n)) => ready |= says_ready(buf.get(..n).unwrap_or(&buf)),
                        Err(Errno::INTR) => {}
                        Err(_) => break,
                    }
                }
            }
        }
        let mut out = Vec::new();
        if ready && !channel.reported {
            channel.reported = true;
            out.push(svc);
        }
        if closed {
            // EOF: every write end is closed, the pipe has nothing more to say, and a
            // level-triggered hang-up would otherwise wake the loop forever.
            self.remove(ep, svc);
        }
        out
    }

    /// Service `svc` is gone (or its next instance is being prepared): close its channel.
    pub fn remove(&mut self, ep: &OwnedFd, svc: usize) {
        if let Some(channel) = self.channels.remove(&svc) {
            match channel.kind {
                ChannelKind::Pipe(read) => {
                    let _ = epoll::delete(ep, &read);
                }
                ChannelKind::Socket(sock, path) => {
                    let _ = epoll::delete(ep, &sock);
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

impl Drop for Notify {
    /// Socket files are not removed by closing the socket; leave no litter at exit.
    fn drop(&mut self) {
        for channel in self.channels.values() {
            if let ChannelKind::Socket(_, path) = &channel.kind {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Whether an sd_notify datagram holds the line `READY=1` (newline-separated assignments).
pub fn says_ready(datagram: &[u8]) -> bool {
    datagram
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

/// Creates `dir` (mode 0711) or checks that an existing one is a real directory owned by
/// tend's user: whoever owns it could swap the sockets and fake readiness.
fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o711).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: must be a directory owned by uid {me} (it holds the sd_notify sockets)",
                dir.display()
            ),
        ));
    }
    // The umask may have narrowed the mode at creation, or an old run widened it.
    if meta.permissions().mode() & 0o7777 != 0o711 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
    }
    Ok(())
}

/// Binds a fresh datagram socket at `path` (replacing a stale one), mode 0600, owned by the
/// service's user when it has one.
fn bind_notify_socket(path: &Path, owner: Option<&Credentials>) -> io::Result<OwnedFd> {
    let addr = net::SocketAddrUnix::new(path).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: not usable as a socket path: {}",
                path.display(),
                os_error(e)
            ),
        )
    })?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let sock = net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    net::bind(&sock, &addr)?;
    // Sending needs write permission on the socket file. Between bind and here the mode is
    // 0777 minus tend's umask; the directory is tend's and not writable by others, so the
    // only exposure is to processes of tend's own user.
    let result =
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).and_then(|()| {
            match owner {
                Some(c) => rustix::fs::chown(
                    path,
                    Some(rustix::process::Uid::from_raw(c.uid)),
                    Some(rustix::process::Gid::from_raw(c.gid)),
                )
                .map_err(io::Error::from),
                None => Ok(()),
            }
        });
    if let Err(e) = result {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(sock)
}
