//! What the control socket and the HTTP endpoints share about connections: a table of at
//! most `MAX_CONNECTIONS`, each registered in epoll under its token with its interest kept
//! in step; a queue of bytes sent without ever blocking; and a listener that gives up a
//! spare descriptor to accept one client when tend has none, and otherwise rests a moment
//! after accept fails rather than failing again on every wake-up.
//!
//! What a connection reads, and what it answers, stays with each server.

use crate::shell::token::Token;
use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{self, SendFlags};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// Connections beyond this are not kept: a flood of clients cannot exhaust tend's fds.
pub const MAX_CONNECTIONS: usize = 64;

/// A connection's socket.
pub trait Socket: AsFd {}
impl<T: AsFd> Socket for T {}

struct Entry<C> {
    conn: C,
    /// The epoll interest registered now.
    interest: epoll::EventFlags,
}

/// The open connections of one server, by a number that fits its token.
pub struct Table<C> {
    entries: HashMap<usize, Entry<C>>,
    next: u64,
    token: fn(usize) -> Token,
}

impl<C: Socket> Table<C> {
    /// An empty table whose connection `n` is named `token(n)` in epoll.
    pub fn new(token: fn(usize) -> Token) -> Table<C> {
        Table {
            entries: HashMap::new(),
            next: 0,
            token,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= MAX_CONNECTIONS
    }

    /// Registers `conn`'s socket under a free number with `interest` and keeps it. None
    /// (and `conn` dropped, so closed) when the table is full or epoll refuses it.
    pub fn insert(&mut self, ep: &OwnedFd, conn: C, interest: epoll::EventFlags) -> Option<usize> {
        if self.is_full() {
            return None;
        }
        let id = self.free_id()?;
        epoll::add(ep, conn.as_fd(), (self.token)(id).data(), interest).ok()?;
        self.entries.insert(id, Entry { conn, interest });
        Some(id)
    }

    /// The next number not in use; numbers wrap within what a token holds.
    fn free_id(&mut self) -> Option<usize> {
        for _ in 0..=MAX_CONNECTIONS {
            let id = usize::try_from(self.next).ok()?;
            self.next = (self.next + 1) % crate::shell::token::NUMBERS;
            if !self.entries.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    pub fn get(&self, id: usize) -> Option<&C> {
        self.entries.get(&id).map(|e| &e.conn)
    }

    pub fn get_mut(&mut self, id: usize) -> Option<&mut C> {
        self.entries.get_mut(&id).map(|e| &mut e.conn)
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &C)> {
        self.entries.iter().map(|(&id, e)| (id, &e.conn))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut C)> {
        self.entries.iter_mut().map(|(&id, e)| (id, &mut e.conn))
    }

    /// The connections `keep` says yes to stay; the others are closed.
    pub fn retain(&mut self, ep: &OwnedFd, mut keep: impl FnMut(&C) -> bool) {
        let gone: Vec<usize> = self
            .entries
            .iter()
            .filter(|(_, e)| !keep(&e.conn))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.close(ep, id);
        }
    }

    /// Watches connection `id` for `interest` from now on. An error means the connection is
    /// of no more use: the caller closes it.
    pub fn set_interest(
        &mut self,
        ep: &OwnedFd,
        id: usize,
        interest: epoll::EventFlags,
    ) -> io::Result<()> {
        let token = (self.token)(id).data();
        let Some(e) = self.entries.get_mut(&id) else {
            return Ok(());
        };
        if e.interest != interest {
            epoll::modify(ep, e.conn.as_fd(), token, interest)?;
            e.interest = interest;
        }
        Ok(())
    }

    /// Takes connection `id` out of epoll and the table; dropping it closes the socket.
    pub fn remove(&mut self, ep: &OwnedFd, id: usize) -> Option<C> {
        let e = self.entries.remove(&id)?;
        let _ = epoll::delete(ep, e.conn.as_fd());
        Some(e.conn)
    }

    pub fn close(&mut self, ep: &OwnedFd, id: usize) {
        drop(self.remove(ep, id));
    }
}

/// Bytes queued for a peer, sent as it takes them.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: Vec<u8>,
    sent: usize,
    /// The last byte sent, once any was.
    last_sent: Option<u8>,
}

/// What `Outbox::send` managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Everything queued is out.
    All,
    /// The peer takes no more for now: wait for EPOLLOUT.
    Some,
    /// The connection failed (the peer is gone).
    Failed,
}

impl Outbox {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.sent == self.bytes.len() {
            self.bytes.clear();
            self.sent = 0;
        }
        self.bytes.extend_from_slice(bytes);
    }

    /// The bytes not sent yet.
    pub fn unsent(&self) -> &[u8] {
        self.bytes.get(self.sent..).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.unsent().is_empty()
    }

    /// Drops what is not sent yet beyond its first `keep` bytes.
    pub fn truncate_unsent(&mut self, keep: usize) {
        self.bytes.truncate(self.sent + keep);
    }

    /// The last byte that went out ended a line (or nothing went out yet): the next one
    /// starts a line.
    pub fn at_line_start(&self) -> bool {
        self.last_sent.is_none_or(|b| b == b'\n')
    }

    /// Sends what the peer takes now, never blocking and never raising SIGPIPE.
    pub fn send(&mut self, sock: impl AsFd) -> Sent {
        while !self.is_empty() {
            match net::send(
                &sock,
                self.unsent(),
                SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
            ) {
                Ok(0) => return Sent::Some,
                Ok(n) => {
                    self.last_sent = self.unsent().get(n - 1).copied().or(self.last_sent);
                    self.sent += n;
                }
                Err(Errno::AGAIN) => return Sent::Some,
                Err(Errno::INTR) => {}
                Err(_) => return Sent::Failed,
            }
        }
        self.bytes = Vec::new();
        self.sent = 0;
        Sent::All
    }
}

/// A listening socket's accepting: a spare descriptor for when tend has none left, and a
/// rest after accept fails otherwise.
pub struct Acceptor {
    /// Kept open (on /dev/null) only to be closed when accept fails for want of a
    /// descriptor: the client waiting then gets it, so `tend status` or `/livez` is still
    /// answered. Opened again once a descriptor is free.
    spare: Option<OwnedFd>,
    /// Out of epoll until then, after accept failed with the spare in use or otherwise.
    resting_until: Option<Instant>,
    rest: Duration,
    token: Token,
}

/// What the acceptor says to do after accept failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Retry {
    /// A descriptor was freed: accept again now.
    Now,
    /// The listener rests (out of epoll) until `Acceptor::wake`; the error is to be said.
    Later,
}

impl Acceptor {
    pub fn new(token: Token, rest: Duration) -> Acceptor {
        Acceptor {
            spare: spare_fd(),
            resting_until: None,
            rest,
            token,
        }
    }

    /// accept failed with `e`.
    pub fn failed(
        &mut self,
        ep: &OwnedFd,
        listener: impl AsFd,
        e: &io::Error,
        now: Instant,
    ) -> Retry {
        if is_out_of_fds(e) && self.spare.take().is_some() {
            return Retry::Now;
        }
        if epoll::modify(ep, listener, self.token.data(), epoll::EventFlags::empty()).is_ok() {
            self.resting_until = Some(now + self.rest);
        }
        Retry::Later
    }

    /// A connection was closed: its descriptor may be the spare again.
    pub fn closed(&mut self) {
        if self.spare.is_none() {
            self.spare = spare_fd();
        }
    }

    /// When a resting listener is to be watched again.
    pub fn deadline(&self) -> Option<Instant> {
        self.resting_until
    }

    /// Watches the listener again once its rest is over.
    pub fn wake(&mut self, ep: &OwnedFd, listener: impl AsFd, now: Instant) {
        if self.resting_until.is_some_and(|t| t <= now) {
            self.resting_until = None;
            self.closed();
            let flags = epoll::EventFlags::IN;
            if epoll::modify(ep, listener, self.token.data(), flags).is_err() {
                self.resting_until = Some(now + self.rest);
            }
        }
    }
}

/// The spare descriptor: /dev/null, held only to be given up.
fn spare_fd() -> Option<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
}

/// EMFILE or ENFILE: tend (or the system) has no descriptor left.
fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    fn ep() -> OwnedFd {
        epoll::create(epoll::CreateFlags::CLOEXEC).unwrap()
    }

    #[test]
    fn a_table_holds_at_most_its_connections_and_closes_what_it_drops() {
        let ep = ep();
        let mut table: Table<UnixStream> = Table::new(Token::ControlConn);
        let mut peers = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let (ours, theirs) = UnixStream::pair().unwrap();
            peers.push(theirs);
            assert!(table.insert(&ep, ours, epoll::EventFlags::IN).is_some());
        }
        assert!(table.is_full());
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        assert_eq!(table.insert(&ep, ours, epoll::EventFlags::IN), None);
        let mut buf = [0u8; 1];
        assert_eq!(theirs.read(&mut buf).unwrap(), 0, "closed at once");
        table.close(&ep, 0);
        assert_eq!(peers[0].read(&mut buf).unwrap(), 0);
        assert_eq!(table.len(), MAX_CONNECTIONS - 1);
        table.retain(&ep, |_| false);
        assert!(table.is_empty());
    }

    #[test]
    fn numbers_wrap_within_a_token() {
        let ep = ep();
        let mut table: Table<UnixStream> = Table::new(Token::HttpConn);
        table.next = crate::shell::token::NUMBERS - 1;
        let (a, _pa) = UnixStream::pair().unwrap();
        let (b, _pb) = UnixStream::pair().unwrap();
        let last = table.insert(&ep, a, epoll::EventFlags::IN).unwrap();
        assert_eq!(last as u64, crate::shell::token::NUMBERS - 1);
        assert_eq!(table.insert(&ep, b, epoll::EventFlags::IN), Some(0));
    }

    #[test]
    fn an_outbox_sends_what_the_peer_takes_and_knows_where_lines_end() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut out = Outbox::default();
        assert!(out.at_line_start());
        out.push(b"one\ntw");
        assert_eq!(out.send(&ours), Sent::All);
        assert!(!out.at_line_start());
        // A peer that does not read: the queue keeps what it could not send.
        let big = vec![b'x'; 4 << 20];
        out.push(&big);
        assert_eq!(out.send(&ours), Sent::Some);
        assert!(!out.is_empty());
        out.truncate_unsent(1);
        assert_eq!(out.unsent(), b"x");
        let mut got = vec![0u8; 6];
        theirs.read_exact(&mut got).unwrap();
        assert_eq!(got, b"one\ntw");
        drop(theirs);
        assert_eq!(out.send(&ours), Sent::Failed);
    }
}
