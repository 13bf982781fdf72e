//! The control socket: a unix stream socket served by the event loop without ever blocking
//! it. One request line per connection; the answer is one line (or, for `logs --follow`, a
//! stream of lines). Each connection's peer is checked with SO_PEERCRED first.

use super::conn::{Acceptor, MAX_CONNECTIONS, Outbox, Retry, Sent, Table};
use crate::proto::{self, MAX_REQUEST};
use crate::shell::repeated::Repeated;
use crate::shell::token::Token;
use crate::sys::socket::peer_credentials;
use rustix::event::epoll;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A client must finish sending its request within this time.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Out of descriptors with the spare one in use: the listener rests this long before tend
/// tries to accept again (instead of failing on every wake-up while the client waits).
const ACCEPT_RETRY: Duration = Duration::from_millis(250);

/// A follower that lets this much output pile up is disconnected, so a stuck `tend logs -f`
/// cannot make tend hold unbounded memory.
const MAX_FOLLOWER_BACKLOG: usize = 4 * 1024 * 1024;

/// A follower too far behind: what it has not been sent is dropped, except the rest of a
/// line it has part of, and it gets an error saying so as its last line (a client that
/// resumes reading learns why the lines stop), then the connection closes. Responses are
/// one JSON object per line with no raw newline inside, so a newline ends each.
fn cut_off(c: &mut Conn) {
    let keep = if c.output.at_line_start() {
        0
    } else {
        let unsent = c.output.unsent();
        unsent
            .iter()
            .position(|&b| b == b'\n')
            .map_or(unsent.len(), |nl| nl + 1)
    };
    c.output.truncate_unsent(keep);
    c.output.push(&proto::encode(&proto::Response::Error {
        message: format!(
            "this `tend logs --follow` fell more than {} MiB behind the service's output \
                 and was cut off: lines after the last one shown were not sent",
            MAX_FOLLOWER_BACKLOG >> 20
        ),
    }));
    c.phase = Phase::Closing;
}

/// Who may talk to tend: root, tend's own user, and optionally one group.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub uid: u32,
    pub group: Option<u32>,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the request line.
    Reading,
    /// The request is with the supervisor; the answer comes later.
    Waiting,
    /// Streaming new lines of these services (the instances of one, or just it).
    Following(Vec<usize>),
    /// Writing the last bytes, then closing.
    Closing,
    /// Answered, but kept open until the client hangs up: after `tend shutdown`, tend waits
    /// (briefly) for the client to read its answer before exiting, because the kernel kills
    /// every process of the container when PID 1 exits.
    Lingering,
}

struct Conn {
    stream: UnixStream,
    input: Vec<u8>,
    output: Outbox,
    phase: Phase,
    opened: Instant,
}

impl Conn {
    fn follows(&self, svc: usize) -> bool {
        matches!(&self.phase, Phase::Following(svcs) if svcs.contains(&svc))
    }
}

impl std::os::fd::AsFd for Conn {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

/// What a complete request line asks the event loop to do.
pub struct Incoming {
    pub conn: usize,
    pub request: Result<proto::Request, String>,
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    access: Access,
    conns: Table<Conn>,
    acceptor: Acceptor,
    /// More clients at once than there are slots.
    flood: Repeated,
    /// Clients whose user may not use the socket.
    refusals: Repeated,
    /// accept failing (out of descriptors, or otherwise).
    accept_failing: Repeated,
}

impl ControlServer {
    /// Creates the socket (mode 0600 in a 0700 directory, or 0660/0750 for `group`),
    /// replacing a stale one left by a previous run.
    pub fn bind(path: &Path, access: Access) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let existed = dir.exists();
            std::fs::create_dir_all(dir)?;
            if !existed {
                let mode = if access.group.is_some() { 0o750 } else { 0o700 };
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
                if let Some(g) = access.group {
                    chown(dir, None, Some(g))?;
                }
            }
        }
        if path.exists() {
            // A socket nobody answers on is a leftover; one that answers belongs to another
            // tend, which must not be hijacked.
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by another tend", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let mode = if access.group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if let Some(g) = access.group {
            chown(path, None, Some(g))?;
        }
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            access,
            conns: Table::new(Token::ControlConn),
            acceptor: Acceptor::new(Token::ControlListener, ACCEPT_RETRY),
            flood: Repeated::default(),
            refusals: Repeated::default(),
            accept_failing: Repeated::default(),
        })
    }

    pub fn register(&self, ep: &OwnedFd) -> io::Result<()> {
        epoll::add(
            ep,
            &self.listener,
            Token::ControlListener.data(),
            epoll::EventFlags::IN,
        )?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts every waiting client. Returns log lines about refused ones.
    pub fn accept(&mut self, ep: &OwnedFd, now: Instant) -> Vec<String> {
        let mut notes = Vec::new();
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => match self.acceptor.failed(ep, &self.listener, &e, now) {
                    // The spare descriptor is free now: this client gets it.
                    Retry::Now => continue,
                    Retry::Later => {
                        let text = format!(
                            "control socket: cannot accept a client: {e}; trying again every \
                             {} ms",
                            ACCEPT_RETRY.as_millis()
                        );
                        notes.extend(self.accept_failing.note(now, text));
                        break;
                    }
                },
            };
            if let Err(reason) = self.check_peer(&stream) {
                let text = format!("control socket: refused a client: {reason}");
                notes.extend(self.refusals.note(now, text));
                let _ = stream.set_nonblocking(true);
                let _ = (&stream)
                    .write_all(&proto::encode(&proto::Response::Error { message: reason }));
                continue;
            }
            if self.conns.is_full() {
                let made_room = self.make_room(ep);
                let text = if made_room {
                    format!(
                        "control socket: more than {MAX_CONNECTIONS} clients at once; closing \
                         the oldest ones that have not sent a request"
                    )
                } else {
                    format!(
                        "control socket: {MAX_CONNECTIONS} clients at once, each with its \
                         request; closing new ones"
                    )
                };
                notes.extend(self.flood.note(now, text));
                if !made_room {
                    continue;
                }
            }
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let conn = Conn {
                stream,
                input: Vec::new(),
                output: Outbox::default(),
                phase: Phase::Reading,
                opened: now,
            };
            let _ = self
                .conns
                .insert(ep, conn, epoll::EventFlags::IN | epoll::EventFlags::RDHUP);
        }
        notes
    }

    /// With every slot taken, a new client takes the slot of the oldest one that has not
    /// sent its request yet (a real client sends it at once, so silent or dribbling clients
    /// cannot keep `tend status` out). False when every client has made its request.
    fn make_room(&mut self, ep: &OwnedFd) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Reading)
            .min_by_key(|&(id, c)| (c.opened, id))
            .map(|(id, _)| id);
        let Some(id) = oldest else {
            return false;
        };
        let message = format!(
            "closed: more than {MAX_CONNECTIONS} clients at once, and this one had not sent \
             its request"
        );
        self.reply(ep, id, &proto::Response::Error { message });
        // A reply the client does not take at once keeps the slot until then: close it.
        self.close(ep, id);
        true
    }

    fn check_peer(&self, stream: &UnixStream) -> Result<(), String> {
        let cred = peer_credentials(stream).map_err(|e| format!("no peer credentials: {e}"))?;
        if cred.uid == 0 || cred.uid == self.access.uid {
            return Ok(());
        }
        if let Some(g) = self.access.group {
            // Supplementary groups can only be read for a peer tend can see.
            if cred.gid == g || (cred.pid > 0 && supplementary_groups(cred.pid).contains(&g)) {
                return Ok(());
            }
        }
        Err(format!(
            "uid {} (pid {}) may not use the control socket",
            cred.uid, cred.pid
        ))
    }

    /// An event on connection `conn`: EPOLLOUT writes what is queued; input, a hang-up or an
    /// error reads. Returns a complete request, if one arrived.
    pub fn on_event(
        &mut self,
        ep: &OwnedFd,
        conn: usize,
        flags: epoll::EventFlags,
    ) -> Option<Incoming> {
        if flags.contains(epoll::EventFlags::OUT) {
            self.flush(ep, conn);
        }
        if flags.intersects(super::READABLE) {
            return self.read(ep, conn);
        }
        None
    }

    /// Reads from a connection. Returns a complete request, if one arrived.
    fn read(&mut self, ep: &OwnedFd, conn: usize) -> Option<Incoming> {
        let c = self.conns.get_mut(conn)?;
        let mut buf = [0u8; 4096];
        loop {
            match (&c.stream).read(&mut buf) {
                Ok(0) => {
                    // Closed, or half-closed after a partial line: nothing to answer.
                    self.close(ep, conn);
                    return None;
                }
                Ok(n) => {
                    if c.phase != Phase::Reading {
                        // Clients send one request; anything after it is ignored.
                        continue;
                    }
                    c.input.extend_from_slice(buf.get(..n).unwrap_or_default());
                    if let Some(nl) = c.input.iter().position(|&b| b == b'\n') {
                        c.input.truncate(nl);
                        let line = std::mem::take(&mut c.input);
                        c.phase = Phase::Waiting;
                        let request = proto::decode_request(&line);
                        return Some(Incoming { conn, request });
                    }
                    if c.input.len() > MAX_REQUEST {
                        c.input.clear();
                        c.phase = Phase::Waiting;
                        return Some(Incoming {
                            conn,
                            request: Err(format!(
                                "request too long (more than {MAX_REQUEST} bytes)"
                            )),
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(ep, conn);
                    return None;
                }
            }
        }
    }

    /// Sends the final answer and closes once it is written.
    pub fn reply(&mut self, ep: &OwnedFd, conn: usize, response: &proto::Response) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.output.push(&proto::encode(response));
            c.phase = Phase::Closing;
        }
        self.flush(ep, conn);
    }

    /// Sends the answer and keeps the connection open until the client closes it (see
    /// `Phase::Lingering` and `linger`).
    pub fn reply_and_linger(&mut self, ep: &OwnedFd, conn: usize, response: &proto::Response) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.output.push(&proto::encode(response));
            c.phase = Phase::Lingering;
        }
        self.flush(ep, conn);
    }

    /// At exit: waits up to `limit` for lingering clients to take their answers and hang up.
    pub fn linger(&mut self, ep: &OwnedFd, limit: Duration) {
        let deadline = Instant::now() + limit;
        self.conns.retain(ep, |c| c.phase == Phase::Lingering);
        while !self.conns.is_empty() && Instant::now() < deadline {
            let mut gone = Vec::new();
            for (id, c) in self.conns.iter_mut() {
                let _ = c.output.send(&c.stream);
                let mut buf = [0u8; 256];
                match (&c.stream).read(&mut buf) {
                    Ok(0) => gone.push(id),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Ok(_) | Err(_) => gone.push(id),
                }
            }
            for id in gone {
                self.conns.close(ep, id);
            }
            if self.conns.is_empty() {
                break;
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20));
            let mut fds: Vec<rustix::event::PollFd<'_>> = self
                .conns
                .iter()
                .map(|(_, c)| rustix::event::PollFd::new(&c.stream, rustix::event::PollFlags::IN))
                .collect();
            let ts = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let _ = rustix::event::poll(&mut fds, Some(&ts));
        }
    }

    /// Sends an answer and keeps the connection for the lines of `svcs` that follow.
    pub fn follow(&mut self, ep: &OwnedFd, conn: usize, first: &proto::Response, svcs: Vec<usize>) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.output.push(&proto::encode(first));
            c.phase = Phase::Following(svcs);
        }
        self.flush(ep, conn);
    }

    /// Whether any connection follows `svc`.
    pub fn followers_of(&self, svc: usize) -> bool {
        self.conns.iter().any(|(_, c)| c.follows(svc))
    }

    /// Queues new lines, each for everyone following its service, then writes to each
    /// follower once: one write per follower per batch, not per line (a busy service's
    /// chunk is hundreds of lines).
    /// `lines` are (service, the line's encoded `Response::LogLine`).
    pub fn broadcast(&mut self, ep: &OwnedFd, lines: impl IntoIterator<Item = (usize, Vec<u8>)>) {
        let mut touched: Vec<usize> = Vec::new();
        for (svc, bytes) in lines {
            for (id, c) in self.conns.iter_mut() {
                if c.follows(svc) {
                    c.output.push(&bytes);
                    if !touched.contains(&id) {
                        touched.push(id);
                    }
                }
            }
        }
        for id in touched {
            if let Some(c) = self.conns.get_mut(id)
                && c.output.unsent().len() > MAX_FOLLOWER_BACKLOG
            {
                cut_off(c);
            }
            self.flush(ep, id);
        }
    }

    /// Writes what the client takes now; closes when a final answer is out.
    pub fn flush(&mut self, ep: &OwnedFd, conn: usize) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let sent = c.output.send(&c.stream);
        if sent == Sent::Failed || (sent == Sent::All && c.phase == Phase::Closing) {
            self.close(ep, conn);
            return;
        }
        let mut flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        if sent == Sent::Some {
            flags |= epoll::EventFlags::OUT;
        }
        if self.conns.set_interest(ep, conn, flags).is_err() {
            self.close(ep, conn);
        }
    }

    pub fn close(&mut self, ep: &OwnedFd, conn: usize) {
        self.conns.close(ep, conn);
        // The descriptor just freed is the spare again, if the spare was used.
        self.acceptor.closed();
    }

    /// When the oldest connection still sending its request must be cut off, or the
    /// listener is watched again.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Reading)
            .map(|(_, c)| c.opened + REQUEST_DEADLINE)
            .chain(self.acceptor.deadline())
            .min()
    }

    /// Closes connections whose request did not arrive in time; watches a resting listener
    /// again when its time is up.
    pub fn expire(&mut self, ep: &OwnedFd, now: Instant) {
        self.acceptor.wake(ep, &self.listener, now);
        // Asked on every wake-up: with no connection, nothing to collect.
        if self.conns.is_empty() {
            return;
        }
        let late: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Reading && c.opened + REQUEST_DEADLINE <= now)
            .map(|(id, _)| id)
            .collect();
        for id in late {
            self.reply(
                ep,
                id,
                &proto::Response::Error {
                    message: "request not received in time".into(),
                },
            );
        }
    }

    /// Removes the socket file (at exit).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A process's supplementary groups, from /proc (SO_PEERCRED only gives the primary one).
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}
