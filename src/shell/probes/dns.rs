//! Host names for tcp and http probes, resolved without blocking the event loop: an IP
//! address as it is, `localhost`, then `/etc/hosts`, then DNS over UDP to the first
//! `nameserver` of `/etc/resolv.conf`, with its `search` list and `ndots` as the C library
//! applies them. (libc's resolver blocks, and in a static binary it needs NSS modules that a
//! container image may not have.)
//!
//! DNS asks for a name's IPv4 address (A record) first and, when the name exists but has
//! none, for its IPv6 address (AAAA), as an IPv6-only cluster needs; `/etc/hosts` gives
//! either family. A query that goes unanswered is sent again, to the next nameserver if
//! there is one, after resolv.conf's `timeout` (5 s by default, as in the C library) or a
//! third of the probe's own timeout, whichever is shorter: one lost UDP packet must not fail
//! the attempt. DNS is asked over UDP only: an answer the server cut short (TC) is used if it
//! holds an address, and fails the attempt with that reason otherwise.

use rustix::io::Errno;
use rustix::net::{self, RecvFlags, SendFlags, SocketType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Where names are looked up: the system's files and DNS port (tests point elsewhere).
#[derive(Clone, Debug)]
pub struct Resolver {
    pub hosts: std::path::PathBuf,
    pub resolv_conf: std::path::PathBuf,
    pub port: u16,
}

impl Default for Resolver {
    fn default() -> Self {
        Resolver {
            hosts: "/etc/hosts".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            port: 53,
        }
    }
}

/// What `/etc/resolv.conf` says, as far as a lookup needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    /// How long to wait for an answer before asking again (`options timeout:N`).
    pub timeout: Duration,
}

/// The C library's defaults for `timeout:` and its upper bound.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_TIMEOUT_SECS: u64 = 30;

pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf {
        nameservers: Vec::new(),
        search: Vec::new(),
        ndots: 1,
        timeout: DEFAULT_TIMEOUT,
    };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                    conf.nameservers.push(ip);
                }
            }
            // The last of `domain` and `search` wins, as in the C library.
            Some("search" | "domain") => conf.search = words.map(str::to_string).collect(),
            Some("options") => {
                for option in words {
                    if let Some(n) = option.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                        conf.ndots = std::cmp::min(n, 15);
                    }
                    let timeout = option.strip_prefix("timeout:").and_then(|n| n.parse().ok());
                    if let Some(secs) = timeout {
                        conf.timeout = Duration::from_secs(u64::clamp(secs, 1, MAX_TIMEOUT_SECS));
                    }
                }
            }
            _ => {}
        }
    }
    conf
}

/// The first address `/etc/hosts` gives `name`.
pub fn parse_hosts(text: &str, name: &str) -> Option<IpAddr> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let ip: IpAddr = words.next()?.parse().ok()?;
        words.any(|w| w.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

/// The names to ask for, in order: with fewer than `ndots` dots the search domains come
/// first, else the name as it is; a name ending in '.' is only itself.
pub fn candidates(name: &str, conf: &ResolvConf) -> Vec<String> {
    if let Some(absolute) = name.strip_suffix('.') {
        return vec![absolute.to_string()];
    }
    let searched = conf.search.iter().map(|d| format!("{name}.{d}"));
    if name.matches('.').count() >= conf.ndots {
        std::iter::once(name.to_string()).chain(searched).collect()
    } else {
        searched.chain(std::iter::once(name.to_string())).collect()
    }
}

/// The record types a lookup asks for, in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    A,
    Aaaa,
}

impl Record {
    fn code(self) -> u16 {
        match self {
            Record::A => 1,
            Record::Aaaa => 28,
        }
    }
}

/// A query for the `record`s of `name`, recursion desired.
pub fn query(id: u16, name: &str, record: Record) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    if name.is_empty() || name.len() > 253 {
        return Err(format!("{name:?} is not a host name"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name:?} is not a host name"));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&record.code().to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    Ok(q)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Found(IpAddr),
    /// The name exists but has no record of the kind asked for.
    NoRecord,
    /// The name does not exist: try the next candidate.
    NotHere,
    Failed(String),
    /// Not an answer to our query (another id, not a response): keep waiting.
    Ignore,
}

/// Reads a response to query `id`, which asked for `record`s. A truncated answer is used when
/// it holds a record of the kind asked for, and is a failure otherwise.
pub fn parse_answer(id: u16, record: Record, packet: &[u8]) -> Answer {
    let Some(
        &[
            id_high,
            id_low,
            flags,
            codes,
            q_high,
            q_low,
            a_high,
            a_low,
            ..,
        ],
    ) = packet.first_chunk::<12>()
    else {
        return Answer::Ignore;
    };
    if u16::from_be_bytes([id_high, id_low]) != id || flags & 0x80 == 0 {
        return Answer::Ignore;
    }
    // TC: the server cut the answer short because it did not fit in a UDP packet.
    let truncated = flags & 0x02 != 0;
    let malformed = || {
        Answer::Failed(if truncated {
            TRUNCATED.into()
        } else {
            "a malformed DNS answer".into()
        })
    };
    match codes & 0x0f {
        0 => {}
        3 => return Answer::NotHere,
        code => return Answer::Failed(format!("the DNS server answered with error {code}")),
    }
    let questions = u16::from_be_bytes([q_high, q_low]);
    let answers = u16::from_be_bytes([a_high, a_low]);
    let mut at = 12;
    for _ in 0..questions {
        let Some(end) = skip_name(packet, at) else {
            return malformed();
        };
        at = end + 4;
    }
    for _ in 0..answers {
        let Some(end) = skip_name(packet, at) else {
            return malformed();
        };
        // Type, class, TTL, data length.
        let Some(&[t_high, t_low, c_high, c_low, _, _, _, _, l_high, l_low]) =
            packet.get(end..).and_then(<[u8]>::first_chunk::<10>)
        else {
            return malformed();
        };
        let kind = u16::from_be_bytes([t_high, t_low]);
        let class = u16::from_be_bytes([c_high, c_low]);
        let len = usize::from(u16::from_be_bytes([l_high, l_low]));
        let Some(data) = packet.get(end + 10..end + 10 + len) else {
            return malformed();
        };
        if kind == record.code() && class == 1 {
            if let Ok(v4) = <[u8; 4]>::try_from(data) {
                return Answer::Found(IpAddr::V4(Ipv4Addr::from(v4)));
            }
            if let Ok(v6) = <[u8; 16]>::try_from(data) {
                return Answer::Found(IpAddr::V6(Ipv6Addr::from(v6)));
            }
        }
        at = end + 10 + len;
    }
    // A cut-short answer without the record may still have it in full: "no record" would be
    // a wrong verdict (and would send the lookup on to other names of the search list).
    if truncated {
        return Answer::Failed(TRUNCATED.into());
    }
    Answer::NoRecord
}

const TRUNCATED: &str = "the DNS answer was cut short (more records than fit in a UDP packet) without an address, \
     and tend does not ask again over TCP";

/// Where the name starting at `at` ends (labels, or a compression pointer).
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => {
                packet.get(at + 1)?;
                return Some(at + 2);
            }
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Where a lookup stands after an event.
pub enum Step {
    Waiting,
    Found(SocketAddr),
    Failed(String),
}

/// A DNS lookup in flight: one UDP socket (watched by the caller's epoll), one candidate
/// name at a time.
pub struct Lookup {
    pub sock: OwnedFd,
    host: String,
    port: u16,
    names: Vec<String>,
    next: usize,
    /// What the query in flight asks for about `names[next - 1]`.
    record: Record,
    id: u16,
    /// The query in flight, as sent: sent again unchanged (same id) when no answer comes, so
    /// a late answer to the first copy still counts.
    packet: Vec<u8>,
    /// The nameservers of the first one's address family (one socket serves them all),
    /// asked in turn, from the first.
    servers: Vec<SocketAddr>,
    /// Which of them is asked now: `servers[server]`.
    server: usize,
    current: SocketAddr,
    retry: Duration,
    resend_at: Instant,
}

/// Resolves `host` at once when no DNS is needed; otherwise a lookup has begun, which the
/// caller gives up on at `now + timeout`.
pub fn resolve(
    resolver: &Resolver,
    host: &str,
    port: u16,
    now: Instant,
    timeout: Duration,
) -> Result<Result<SocketAddr, Lookup>, String> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Ok(SocketAddr::new(ip, port)));
    }
    let hosts = std::fs::read_to_string(&resolver.hosts).unwrap_or_default();
    if let Some(ip) = parse_hosts(&hosts, host.trim_end_matches('.')) {
        return Ok(Ok(SocketAddr::new(ip, port)));
    }
    let conf =
        parse_resolv_conf(&std::fs::read_to_string(&resolver.resolv_conf).unwrap_or_default());
    // The C library's default without a nameserver line.
    let first = conf
        .nameservers
        .first()
        .copied()
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let servers: Vec<SocketAddr> = std::iter::once(first)
        .chain(conf.nameservers.iter().skip(1).copied())
        .filter(|ip| ip.is_ipv4() == first.is_ipv4())
        .map(|ip| SocketAddr::new(ip, resolver.port))
        .collect();
    let sock = crate::sys::socket::nonblocking(first, SocketType::DGRAM)
        .map_err(|e| format!("{host:?}: socket for DNS: {e}"))?;
    // Never 0, which would resend in a loop.
    let retry = std::cmp::min(conf.timeout, timeout / 3).max(Duration::from_millis(10));
    let mut lookup = Lookup {
        sock,
        host: host.to_string(),
        port,
        names: candidates(host, &conf),
        next: 0,
        record: Record::A,
        id: 0,
        packet: Vec::new(),
        current: SocketAddr::new(first, resolver.port),
        servers,
        server: 0,
        retry,
        resend_at: now,
    };
    match lookup.ask_next(now) {
        Step::Failed(reason) => Err(reason),
        Step::Waiting | Step::Found(_) => Ok(Err(lookup)),
    }
}

static NEXT_ID: AtomicU16 = AtomicU16::new(0x5eed);

impl Lookup {
    /// Sends the query for the next candidate name's A record.
    fn ask_next(&mut self, now: Instant) -> Step {
        if self.next >= self.names.len() {
            return Step::Failed(format!(
                "{:?}: no address for it from the DNS server {} (asked for {})",
                self.host,
                self.current.ip(),
                self.names.join(", ")
            ));
        }
        self.next += 1;
        self.ask(Record::A, now)
    }

    /// Sends a query for the current candidate name's `record`s, under a new id.
    fn ask(&mut self, record: Record, now: Instant) -> Step {
        let Some(name) = self.names.get(self.next.wrapping_sub(1)) else {
            return Step::Failed(format!("{:?}: no name to ask for", self.host));
        };
        self.record = record;
        self.resend_at = now + self.retry;
        self.id = NEXT_ID
            .fetch_add(0x9e37, Ordering::Relaxed)
            .wrapping_add(std::process::id() as u16);
        self.packet = match query(self.id, name, record) {
            Ok(p) => p,
            Err(e) => return Step::Failed(e),
        };
        self.send()
    }

    fn send(&self) -> Step {
        let server = self.current;
        match net::sendto(&self.sock, &self.packet, SendFlags::DONTWAIT, &server) {
            Ok(_) => Step::Waiting,
            Err(e) => Step::Failed(format!("{:?}: DNS query to {server}: {e}", self.host)),
        }
    }

    /// When the query in flight is to be sent again if no answer has come.
    pub fn resend_at(&self) -> Instant {
        self.resend_at
    }

    /// No answer came in time: the same query again, to the next nameserver.
    pub fn resend(&mut self, now: Instant) -> Step {
        self.server = (self.server + 1) % self.servers.len().max(1);
        if let Some(&next) = self.servers.get(self.server) {
            self.current = next;
        }
        self.resend_at = now + self.retry;
        self.send()
    }

    /// The socket is readable: read what came and move on.
    pub fn on_readable(&mut self, now: Instant) -> Step {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = match net::recvfrom(&self.sock, &mut buf, RecvFlags::DONTWAIT) {
                Ok((n, _, from)) => (n, from),
                Err(Errno::AGAIN) => return Step::Waiting,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    return Step::Failed(format!(
                        "{:?}: DNS server {}: {e}",
                        self.host, self.current
                    ));
                }
            };
            // The socket is not connected (it asks several servers): only they are heard.
            let from = from.and_then(|a| SocketAddr::try_from(a).ok());
            if !from.is_some_and(|a| self.servers.contains(&a)) {
                continue;
            }
            let next = match parse_answer(self.id, self.record, buf.get(..n).unwrap_or_default()) {
                Answer::Ignore => continue,
                Answer::Found(ip) => return Step::Found(SocketAddr::new(ip, self.port)),
                Answer::Failed(reason) => {
                    return Step::Failed(format!("{:?}: {reason}", self.host));
                }
                // The name is there without an IPv4 address: perhaps an IPv6 one.
                Answer::NoRecord if self.record == Record::A => self.ask(Record::Aaaa, now),
                Answer::NoRecord | Answer::NotHere => self.ask_next(now),
            };
            match next {
                Step::Waiting => continue,
                other => return other,
            }
        }
    }
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
