//! The addresses probes connect to: `HOST:PORT` for `tcp`, `http://HOST[:PORT]/PATH` for
//! `http`; and the address tend's own HTTP server listens on, `IP:PORT`.
//!
//! A probe's address is read here once, into the typed target the probe uses
//! (`core::spec::HostPort`, `HttpTarget`): what loads is what is sent. Only the shape is
//! checked: no name is resolved while loading (a name that does not resolve yet, because the
//! service that provides it is not up, is normal at start).

use crate::core::spec::{HostPort, HttpTarget};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

/// What is wrong with an address, and which bytes of it are wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub at: Range<usize>,
    pub message: String,
}

fn problem(at: Range<usize>, message: impl Into<String>) -> Problem {
    Problem {
        at,
        message: message.into(),
    }
}

const HOST_FORMS: &str =
    "a name (letters, digits, '-', '_' and '.'), an IPv4 address, or an IPv6 address in brackets";

/// Reads a `tcp` address: `HOST:PORT`, HOST a name or an IP address (IPv6 in brackets),
/// PORT from 1 to 65535.
pub fn tcp(text: &str) -> Result<HostPort, Problem> {
    const EXAMPLE: &str = "HOST:PORT such as \"127.0.0.1:8080\" or \"[::1]:8080\"";
    if text.is_empty() {
        return Err(problem(
            0..0,
            format!("the address is empty; expected {EXAMPLE}"),
        ));
    }
    let (host, port) = host_and_port(text, 0)?;
    let Some(port) = port else {
        return Err(problem(
            0..text.len(),
            format!(
                "\"{}\" has no port; expected {EXAMPLE}",
                text.escape_debug()
            ),
        ));
    };
    let host = check_host(host)?;
    let port = check_port(&port)?;
    Ok(HostPort::new(host, port))
}

/// Reads an `http` URL, `http://HOST[:PORT]/PATH`, into what the probe sends: PORT 80 when
/// it is left out, PATH `/` when it is left out (a query alone, `http://h?x`, is `/?x`), and
/// the bytes of any non-ASCII character in PATH percent-encoded (`/é` is sent as `/%C3%A9`,
/// as browsers and Kubernetes' httpGet send it). A blank or control character is an error:
/// it would end the request line, and an encoding of it is better written by hand.
pub fn http(text: &str) -> Result<HttpTarget, Problem> {
    const EXAMPLE: &str = "\"http://127.0.0.1:8080/health\"";
    let Some(scheme_end) = text.find("://") else {
        return Err(problem(
            0..text.len(),
            format!("expected a URL starting with http://, such as {EXAMPLE}"),
        ));
    };
    let scheme = &text[..scheme_end];
    if scheme.eq_ignore_ascii_case("https") {
        return Err(problem(
            0..scheme_end,
            "https is not supported: probes speak plain HTTP only (tend has no TLS); use an \
             http:// URL, or an `exec` probe that runs an HTTPS client",
        ));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(problem(
            0..scheme_end,
            format!(
                "unsupported URL scheme \"{}\": expected a URL starting with http://, such as \
                 {EXAMPLE}",
                scheme.escape_debug()
            ),
        ));
    }
    let start = scheme_end + 3;
    let rest = &text[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let path = &rest[authority_len..];
    if let Some(at) = authority.find('@') {
        return Err(problem(
            start..start + at + 1,
            "a user name or password (`user@`) is not supported in a probe URL",
        ));
    }
    if authority.is_empty() {
        return Err(problem(
            0..text.len(),
            format!("the URL has no host; expected http://HOST[:PORT]/PATH, such as {EXAMPLE}"),
        ));
    }
    let (host, port) = host_and_port(authority, start)?;
    let host = check_host(host)?;
    let port = match port {
        Some(port) => check_port(&port)?,
        None => 80,
    };
    let path_start = start + authority_len;
    if let Some(i) = path.find('#') {
        return Err(problem(
            path_start + i..text.len(),
            "a URL fragment (`#...`) is never sent to the server; remove it",
        ));
    }
    if let Some((i, c)) = path
        .char_indices()
        .find(|(_, c)| c.is_whitespace() || c.is_control())
    {
        return Err(problem(
            path_start + i..path_start + i + c.len_utf8(),
            "the URL contains a blank or control character; percent-encode it (a space is %20)",
        ));
    }
    let slash = if path.starts_with('/') { "" } else { "/" };
    let path = format!("{slash}{}", percent_encode_non_ascii(path));
    Ok(HttpTarget::new(host, port, path))
}

/// `text` with the UTF-8 bytes of every non-ASCII character written as `%XX`.
fn percent_encode_non_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Reads the address of tend's HTTP server: `IP:PORT` (IPv6 in brackets), or `:PORT` or
/// `PORT` alone for 127.0.0.1, so that only what asks for it is reachable from outside the
/// container. No name is accepted: a listening address is an interface, not a peer to look up.
pub fn listen(text: &str) -> Result<SocketAddr, Problem> {
    const EXAMPLE: &str = "IP:PORT such as \"127.0.0.1:9100\" or \"0.0.0.0:9100\", or \":9100\" \
                           for 127.0.0.1";
    if text.is_empty() {
        return Err(problem(
            0..0,
            format!("the address is empty; expected {EXAMPLE}"),
        ));
    }
    let (ip, port) = if text.bytes().all(|b| b.is_ascii_digit()) {
        let port = Part { text, at: 0 };
        (IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else if let Some(rest) = text.strip_prefix(':').filter(|r| !r.contains(':')) {
        let port = Part { text: rest, at: 1 };
        (IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else {
        let (host, port) = host_and_port(text, 0)?;
        let Some(port) = port else {
            return Err(problem(
                0..text.len(),
                format!(
                    "\"{}\" has no port; expected {EXAMPLE}",
                    text.escape_debug()
                ),
            ));
        };
        (listen_ip(host)?, port)
    };
    let number = check_port(&port)?;
    Ok(SocketAddr::new(ip, number))
}

/// The IP address a listening socket binds to.
fn listen_ip(host: Part<'_>) -> Result<IpAddr, Problem> {
    let text = host.text;
    if text.is_empty() {
        return Err(problem(
            host.at..host.at,
            "the IP address is missing before `:`; write \":PORT\" alone for 127.0.0.1",
        ));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        if let Ok(ip) = inner.parse::<Ipv6Addr>() {
            return Ok(IpAddr::V6(ip));
        }
    } else if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Ok(IpAddr::V4(ip));
    }
    let message = if !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') && valid_name(text) {
        format!(
            "\"{}\" is a name, but tend listens on an IP address: write 127.0.0.1 (this container \
             only) or 0.0.0.0 (every interface)",
            text.escape_debug()
        )
    } else {
        format!(
            "invalid IP address \"{}\": expected an IPv4 address, or an IPv6 address in brackets",
            text.escape_debug()
        )
    };
    Err(problem(host.span(), message))
}

/// A host or port as written, and the offset of its first byte in the whole value.
struct Part<'a> {
    text: &'a str,
    at: usize,
}

impl Part<'_> {
    fn span(&self) -> Range<usize> {
        self.at..self.at + self.text.len()
    }
}

/// Splits `HOST[:PORT]` (`offset`: where `text` starts in the whole value).
fn host_and_port(text: &str, offset: usize) -> Result<(Part<'_>, Option<Part<'_>>), Problem> {
    let port_after = |colon: usize| Part {
        text: &text[colon + 1..],
        at: offset + colon + 1,
    };
    if text.starts_with('[') {
        let Some(close) = text.find(']') else {
            return Err(problem(
                offset..offset + text.len(),
                "the IPv6 address opened with `[` is never closed with `]`",
            ));
        };
        let host = Part {
            text: &text[..=close],
            at: offset,
        };
        return match &text[close + 1..] {
            "" => Ok((host, None)),
            after if after.starts_with(':') => Ok((host, Some(port_after(close + 1)))),
            _ => Err(problem(
                offset + close + 1..offset + text.len(),
                "expected `:PORT` or nothing after the IPv6 address",
            )),
        };
    }
    match text.split_once(':') {
        None => Ok((Part { text, at: offset }, None)),
        Some((host, port)) if !port.contains(':') => Ok((
            Part {
                text: host,
                at: offset,
            },
            Some(port_after(host.len())),
        )),
        Some(_) => Err(problem(
            offset..offset + text.len(),
            "an IPv6 address must be written in brackets, as in [::1]:8080",
        )),
    }
}

/// The host as a probe uses it (an IPv6 address without its brackets), if it is a name or
/// an IP address.
fn check_host(host: Part<'_>) -> Result<&str, Problem> {
    let text = host.text;
    if text.is_empty() {
        return Err(problem(
            host.at..host.at,
            format!("the host is missing; expected {HOST_FORMS}"),
        ));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        if inner.parse::<Ipv6Addr>().is_ok() {
            return Ok(inner);
        }
    } else if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        if text.parse::<Ipv4Addr>().is_ok() {
            return Ok(text);
        }
    } else if valid_name(text) {
        return Ok(text);
    }
    Err(problem(
        host.span(),
        format!(
            "invalid host \"{}\": expected {HOST_FORMS}",
            text.escape_debug()
        ),
    ))
}

/// A DNS name (or a container name, which may hold `_`): dot-separated labels of 1 to 63
/// letters, digits, `-` or `_`, not starting or ending with `-`, at most 253 bytes in all.
fn valid_name(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_port(port: &Part<'_>) -> Result<u16, Problem> {
    let text = port.text;
    if text.is_empty() {
        return Err(problem(
            port.at..port.at,
            "the port is missing after `:`; expected a number from 1 to 65535",
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem(
            port.span(),
            format!(
                "invalid port \"{}\": expected a number from 1 to 65535",
                text.escape_debug()
            ),
        ));
    }
    match text.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(problem(
            port.span(),
            format!("port {text} is out of range: expected a number from 1 to 65535"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails_at(result: Result<impl std::fmt::Debug, Problem>) -> (Range<usize>, String) {
        let p = result.unwrap_err();
        (p.at, p.message)
    }

    #[test]
    fn tcp_addresses() {
        for (good, host, port) in [
            ("127.0.0.1:80", "127.0.0.1", 80),
            ("localhost:1", "localhost", 1),
            ("LocalHost:1", "LocalHost", 1),
            ("db:65535", "db", 65535),
            (
                "my_db.internal-net.example:5432",
                "my_db.internal-net.example",
                5432,
            ),
            ("[::1]:8080", "::1", 8080),
            ("[::1]:443", "::1", 443),
            ("[fe80::1:2]:22", "fe80::1:2", 22),
            ("0.0.0.0:9000", "0.0.0.0", 9000),
        ] {
            let target = tcp(good);
            assert_eq!(target, Ok(HostPort::new(host, port)), "{good}");
            // Shown as written.
            assert_eq!(target.unwrap().to_string(), good);
        }
        assert_eq!(fails_at(tcp("db:0")).0, 3..4);
        assert_eq!(
            fails_at(tcp("db:65536")),
            (
                3..8,
                "port 65536 is out of range: expected a number from 1 to 65535".into()
            )
        );
        assert_eq!(fails_at(tcp("db:99999999999999999999")).0, 3..23);
        assert_eq!(
            fails_at(tcp("db:http")),
            (
                3..7,
                "invalid port \"http\": expected a number from 1 to 65535".into()
            )
        );
        assert_eq!(fails_at(tcp("db:")).0, 3..3);
        assert_eq!(fails_at(tcp("db:+80")).0, 3..6);
        assert!(fails_at(tcp("db")).1.starts_with("\"db\" has no port"));
        assert!(
            fails_at(tcp("127.0.0.1"))
                .1
                .starts_with("\"127.0.0.1\" has no port")
        );
        assert!(
            fails_at(tcp("[::1]"))
                .1
                .starts_with("\"[::1]\" has no port")
        );
        assert_eq!(fails_at(tcp("127.0.0.1:0")).0, 10..11);
        assert_eq!(fails_at(tcp("127.0.0.1:99999")).0, 10..15);
        assert!(fails_at(tcp("")).1.starts_with("the address is empty"));
        assert_eq!(fails_at(tcp(":80")).0, 0..0);
        assert_eq!(fails_at(tcp("999.0.0.1:80")).0, 0..9);
        assert_eq!(fails_at(tcp("a..b:80")).0, 0..4);
        assert_eq!(fails_at(tcp("-db:80")).0, 0..3);
        assert_eq!(fails_at(tcp("d b:80")).0, 0..3);
        assert_eq!(fails_at(tcp("[::1:80")).0, 0..7);
        assert_eq!(fails_at(tcp("[::g]:80")).0, 0..5);
        assert_eq!(fails_at(tcp("[::1]80")).0, 5..7);
        assert_eq!(
            fails_at(tcp("::1:80")),
            (
                0..6,
                "an IPv6 address must be written in brackets, as in [::1]:8080".into()
            )
        );
        assert!(tcp(&format!("{}:80", "a".repeat(64))).is_err());
        assert!(tcp(&format!("{}:80", ["a"; 127].join("."))).is_ok());
        assert!(tcp(&format!("{}:80", ["a"; 128].join("."))).is_err());
    }

    #[test]
    fn http_urls_become_what_the_probe_sends() {
        for (given, host, port, path) in [
            ("http://127.0.0.1:8080/health", "127.0.0.1", 8080, "/health"),
            ("http://127.0.0.1/healthz", "127.0.0.1", 80, "/healthz"),
            ("http://localhost", "localhost", 80, "/"),
            ("http://localhost:80/", "localhost", 80, "/"),
            ("HTTP://localhost:8080", "localhost", 8080, "/"),
            ("HTTP://web:80", "web", 80, "/"),
            ("http://[::1]:8080/a/b?c=d&e", "::1", 8080, "/a/b?c=d&e"),
            ("http://[::1]:9000/a/b?x=1&y=2", "::1", 9000, "/a/b?x=1&y=2"),
            ("http://app?ready=1", "app", 80, "/?ready=1"),
            ("http://h?q=1", "h", 80, "/?q=1"),
            ("http://[::1]", "::1", 80, "/"),
            ("http://web/a%20b", "web", 80, "/a%20b"),
            // The request line takes ASCII only: other characters go as their UTF-8 bytes,
            // percent-encoded, as browsers and Kubernetes' httpGet send them.
            ("http://h/é", "h", 80, "/%C3%A9"),
            (
                "http://h/caf%C3%A9/é?q=ü",
                "h",
                80,
                "/caf%C3%A9/%C3%A9?q=%C3%BC",
            ),
            ("http://h/日本", "h", 80, "/%E6%97%A5%E6%9C%AC"),
            ("http://h?😀", "h", 80, "/?%F0%9F%98%80"),
        ] {
            assert_eq!(
                http(given),
                Ok(HttpTarget::new(host, port, path)),
                "{given}"
            );
        }
        assert_eq!(
            http("HTTP://[::1]:8080/a?b").unwrap().to_string(),
            "http://[::1]:8080/a?b"
        );
        assert_eq!(http("http://web:80/h").unwrap().to_string(), "http://web/h");
    }

    /// Whatever loads can go into the request line as it is: printable ASCII, no blank.
    #[test]
    fn every_accepted_path_can_be_sent() {
        let pieces = [
            "a",
            "/",
            "?",
            "&",
            "=",
            "%",
            "%41",
            "é",
            "ß",
            "\u{ffff}",
            "~",
            "'",
            "\"",
            "<",
            "{",
            "\u{10ffff}",
            "+",
            ";",
            "@",
            ":",
        ];
        for a in pieces {
            for b in pieces {
                let url = format!("http://h/{a}{b}");
                let target = http(&url).unwrap_or_else(|p| panic!("{url}: {}", p.message));
                assert!(
                    target.path.starts_with('/')
                        && target.path.bytes().all(|b| b.is_ascii_graphic()),
                    "{url}: {:?}",
                    target.path
                );
            }
        }
    }

    #[test]
    fn bad_http_urls_say_where() {
        let (at, message) = fails_at(http("https://web/health"));
        assert_eq!(at, 0..5);
        assert!(message.starts_with("https is not supported"), "{message}");
        assert_eq!(fails_at(http("HTTPS://web")).0, 0..5);
        assert_eq!(
            fails_at(http("ftp://web/")).1,
            "unsupported URL scheme \"ftp\": expected a URL starting with http://, such as \
             \"http://127.0.0.1:8080/health\""
        );
        assert_eq!(fails_at(http("web:80/health")).0, 0..13);
        assert!(
            fails_at(http("http:///x"))
                .1
                .starts_with("the URL has no host")
        );
        assert_eq!(fails_at(http("http://u:p@web/")).0, 7..11);
        assert_eq!(fails_at(http("http://web:0/")).0, 11..12);
        assert_eq!(fails_at(http("http://web:/")).0, 11..11);
        assert_eq!(fails_at(http("http://w b/")).0, 7..10);
        assert_eq!(fails_at(http("http://::1/")).0, 7..10);
        assert_eq!(fails_at(http("http://web/a b")).0, 12..13);
        assert_eq!(fails_at(http("http://web/a#top")).0, 12..16);
        assert_eq!(fails_at(http("http://web/\u{1}")).0, 11..12);
        assert_eq!(fails_at(http("http://h/a\r\nX: y")).0, 10..11);
        // A blank that is not ASCII is still a blank (here a no-break space).
        assert_eq!(fails_at(http("http://h/a\u{a0}b")).0, 10..12);
        assert_eq!(fails_at(http("http://h/\u{85}")).0, 9..11);
        assert_eq!(fails_at(http("http://h#x")).0, 8..10);
        assert!(
            fails_at(http("127.0.0.1:80"))
                .1
                .starts_with("expected a URL starting with http://")
        );
        for no_host in ["http://", "http:///path"] {
            assert!(
                fails_at(http(no_host)).1.starts_with("the URL has no host"),
                "{no_host}"
            );
        }
        assert_eq!(
            fails_at(http("http://:80/")),
            (7..7, format!("the host is missing; expected {HOST_FORMS}"))
        );
        assert_eq!(fails_at(http("http://h:65536/")).0, 9..14);
        assert_eq!(fails_at(http("http://h:x/")).0, 9..10);
        assert_eq!(
            fails_at(http("http://[::1/")).1,
            "the IPv6 address opened with `[` is never closed with `]`"
        );
        assert_eq!(
            fails_at(http("http://[::1]x/")),
            (
                12..13,
                "expected `:PORT` or nothing after the IPv6 address".into()
            )
        );
    }

    #[test]
    fn listen_addresses() {
        for (given, used) in [
            ("127.0.0.1:9100", "127.0.0.1:9100"),
            ("0.0.0.0:9100", "0.0.0.0:9100"),
            (":9100", "127.0.0.1:9100"),
            ("9100", "127.0.0.1:9100"),
            ("65535", "127.0.0.1:65535"),
            ("10.1.2.3:1", "10.1.2.3:1"),
            ("[::1]:9100", "[::1]:9100"),
            ("[::]:80", "[::]:80"),
        ] {
            assert_eq!(
                listen(given),
                Ok(used.parse::<std::net::SocketAddr>().unwrap()),
                "{given}"
            );
        }
    }

    #[test]
    fn bad_listen_addresses_say_where() {
        assert_eq!(
            fails_at(listen("")),
            (
                0..0,
                "the address is empty; expected IP:PORT such as \"127.0.0.1:9100\" or \
                 \"0.0.0.0:9100\", or \":9100\" for 127.0.0.1"
                    .into()
            )
        );
        assert_eq!(
            fails_at(listen("localhost:9100")),
            (
                0..9,
                "\"localhost\" is a name, but tend listens on an IP address: write 127.0.0.1 \
                 (this container only) or 0.0.0.0 (every interface)"
                    .into()
            )
        );
        assert_eq!(
            fails_at(listen("127.0.0.256:80")),
            (
                0..11,
                "invalid IP address \"127.0.0.256\": expected an IPv4 address, or an IPv6 \
                 address in brackets"
                    .into()
            )
        );
        assert_eq!(fails_at(listen("[::g]:80")).0, 0..5);
        assert_eq!(fails_at(listen("::1:80")).0, 0..6);
        assert_eq!(fails_at(listen("[::1]80")).0, 5..7);
        assert!(
            fails_at(listen("127.0.0.1"))
                .1
                .starts_with("\"127.0.0.1\" has no port")
        );
        assert!(
            fails_at(listen("[::1]"))
                .1
                .starts_with("\"[::1]\" has no port")
        );
        assert_eq!(
            fails_at(listen("127.0.0.1:0")),
            (
                10..11,
                "port 0 is out of range: expected a number from 1 to 65535".into()
            )
        );
        assert_eq!(fails_at(listen(":0")).0, 1..2);
        assert_eq!(fails_at(listen("0")).0, 0..1);
        assert_eq!(fails_at(listen("70000")).0, 0..5);
        assert_eq!(fails_at(listen(":")).0, 1..1);
        assert_eq!(fails_at(listen(":http")).0, 1..5);
        assert_eq!(fails_at(listen("127.0.0.1:")).0, 10..10);
        assert_eq!(fails_at(listen(" 9100")).0, 0..5);
    }
}
