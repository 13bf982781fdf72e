//! The pure half of the HTTP probe: URL parsing, the request, and reading the status line of
//! the answer as it arrives in pieces. No I/O here: `shell::probes` moves the bytes.
//!
//! Only what a health check needs: plain `http://`, one GET, `Connection: close`, and the
//! status code. No TLS, no redirects followed (a 3xx already counts as healthy), no body.

use std::fmt;

/// At most this many bytes of the answer are read looking for the status line. A server
/// that sends this much without one is not speaking HTTP.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The parts of an `http://host[:port]/path` URL a probe uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// As written, without brackets for IPv6 (`::1`, `127.0.0.1`, `localhost`).
    pub host: String,
    pub port: u16,
    /// Whether the URL named the port (it then goes into the `Host` header too).
    pub explicit_port: bool,
    /// Path and query, always starting with `/`; the fragment is dropped (it never goes on
    /// the wire).
    pub path: String,
}

impl Url {
    /// The `Host` header's value: the host (bracketed if IPv6), plus the port when it is not
    /// the default (RFC 9110 section 7.2; virtual hosts on other ports rely on it).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.explicit_port && self.port != 80 {
            format!("{host}:{}", self.port)
        } else {
            host
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "http://{host}:{}{}", self.port, self.path)
    }
}

/// Parses `http://host[:port][/path][?query][#fragment]`. Public so the configuration can
/// reject a bad URL at load time rather than at the first probe.
pub fn parse_url(url: &str) -> Result<Url, String> {
    let rest = strip_prefix_ignore_case(url, "http://").ok_or_else(|| {
        if strip_prefix_ignore_case(url, "https://").is_some() {
            format!("{url:?}: https is not supported by the HTTP probe (plain http:// only)")
        } else {
            format!("{url:?}: the URL must start with http://")
        }
    })?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!(
            "{url:?}: user credentials in the URL are not supported"
        ));
    }
    let (host, port) = split_host_port(authority, true).map_err(|e| format!("{url:?}: {e}"))?;
    let explicit_port = port.is_some();
    // The fragment is the client's business and never sent.
    let tail = tail.split('#').next().unwrap_or("");
    let path = if tail.starts_with('/') {
        tail.to_string()
    } else {
        // Empty, or a query right after the authority (`http://h?x`).
        format!("/{tail}")
    };
    // The path goes verbatim into the request line: anything that could end or split it must
    // have been percent-encoded.
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "{url:?}: the path contains {c:?}; percent-encode spaces, control and non-ASCII characters"
        ));
    }
    Ok(Url {
        host: host.to_string(),
        port: port.unwrap_or(80),
        explicit_port,
        path,
    })
}

/// Splits `host:port`, `[v6]:port`, or (when `port_optional`) a bare `host` / `[v6]`.
/// The host comes back without brackets. Only the syntax is checked here.
pub fn split_host_port(s: &str, port_optional: bool) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| "missing ']' after an IPv6 address".to_string())?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("unexpected {after:?} after ']'")),
            },
        }
    } else {
        match s.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err("write an IPv6 address in brackets: [addr]:port".to_string());
            }
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    if let Some(c) = host.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("the host contains {c:?}"));
    }
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{p:?} is not a port number (1-65535)")),
            Ok(n) => Some(n),
        },
        None if port_optional => None,
        None => return Err("no port: write host:port".to_string()),
    };
    Ok((host, port))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The whole request. `Connection: close` so the server ends the exchange and no connection
/// lingers; tend reads nothing past the status line anyway.
pub fn request(url: &Url) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: tend\r\n\r\n",
        url.path,
        url.authority()
    )
    .into_bytes()
}

/// What the bytes received so far say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusLine {
    /// No complete status line yet.
    NeedMore,
    /// The status code.
    Code(u16),
    /// Not an HTTP/1.x answer.
    Malformed(String),
}

/// Reads the status line from the start of `buf`, which may hold any prefix of the answer.
/// Headers and body are never needed, so only the first line is given to httparse (with a
/// blank line appended, which makes it a complete head with no headers): a server's odd or
/// numerous headers cannot fail an answer whose status is fine.
pub fn parse_status(buf: &[u8]) -> StatusLine {
    // httparse tolerates empty lines before the status line; so must the line search.
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let rest = buf.get(start..).unwrap_or_default();
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        // Reject garbage early (an SSH banner, a TLS alert) instead of waiting for more.
        let mut resp = httparse::Response::new(&mut []);
        return match resp.parse(rest) {
            Err(e) => StatusLine::Malformed(e.to_string()),
            Ok(_) => StatusLine::NeedMore,
        };
    };
    let mut head = Vec::with_capacity(nl + 3);
    head.extend_from_slice(rest.get(..=nl).unwrap_or(rest));
    head.extend_from_slice(b"\r\n");
    let mut resp = httparse::Response::new(&mut []);
    match resp.parse(&head) {
        Ok(httparse::Status::Complete(_)) => match resp.code {
            Some(code) => StatusLine::Code(code),
            None => StatusLine::Malformed("no status code".to_string()),
        },
        Ok(httparse::Status::Partial) => {
            StatusLine::Malformed("incomplete status line".to_string())
        }
        Err(e) => StatusLine::Malformed(e.to_string()),
    }
}

/// 2xx and 3xx are healthy (as Kubernetes' httpGet probe counts them).
pub fn is_success(code: u16) -> bool {
    (200..400).contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, explicit_port: bool, path: &str) -> Url {
        Url {
            host: host.into(),
            port,
            explicit_port,
            path: path.into(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1/healthz"),
            Ok(url("127.0.0.1", 80, false, "/healthz"))
        );
        assert_eq!(
            parse_url("HTTP://localhost:8080"),
            Ok(url("localhost", 8080, true, "/"))
        );
        assert_eq!(
            parse_url("http://[::1]:9000/a/b?x=1&y=2#frag"),
            Ok(url("::1", 9000, true, "/a/b?x=1&y=2"))
        );
        assert_eq!(parse_url("http://[::1]"), Ok(url("::1", 80, false, "/")));
        assert_eq!(parse_url("http://h?q=1"), Ok(url("h", 80, false, "/?q=1")));
        assert_eq!(parse_url("http://h#x"), Ok(url("h", 80, false, "/")));
    }

    #[test]
    fn bad_urls() {
        for (bad, why) in [
            ("https://127.0.0.1/", "https is not supported"),
            ("ftp://x/", "must start with http://"),
            ("127.0.0.1:80", "must start with http://"),
            ("http://", "no host"),
            ("http:///path", "no host"),
            ("http://:80/", "no host"),
            ("http://h:0/", "not a port number"),
            ("http://h:65536/", "not a port number"),
            ("http://h:x/", "not a port number"),
            ("http://h:/", "not a port number"),
            ("http://u:p@h/", "credentials"),
            ("http://::1/", "brackets"),
            ("http://[::1/", "missing ']'"),
            ("http://[::1]x/", "unexpected"),
            ("http://h/a b", "percent-encode"),
            ("http://h/a\r\nX: y", "percent-encode"),
            ("http://h/é", "percent-encode"),
        ] {
            let err = parse_url(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            split_host_port("127.0.0.1:80", false),
            Ok(("127.0.0.1", Some(80)))
        );
        assert_eq!(split_host_port("[::1]:443", false), Ok(("::1", Some(443))));
        assert_eq!(
            split_host_port("localhost:1", false),
            Ok(("localhost", Some(1)))
        );
        assert!(split_host_port("localhost", false).is_err());
        assert_eq!(split_host_port("localhost", true), Ok(("localhost", None)));
        assert!(split_host_port("::1:80", false).is_err());
        assert!(split_host_port(":80", false).is_err());
    }

    #[test]
    fn request_bytes() {
        let u = parse_url("http://127.0.0.1/healthz?full=1").unwrap();
        assert_eq!(
            request(&u),
            b"GET /healthz?full=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nUser-Agent: tend\r\n\r\n"
        );
        let u = parse_url("http://[::1]:8080/").unwrap();
        assert!(
            String::from_utf8(request(&u))
                .unwrap()
                .contains("\r\nHost: [::1]:8080\r\n")
        );
        // An explicit default port is left out, as browsers and curl do.
        let u = parse_url("http://localhost:80/").unwrap();
        assert!(
            String::from_utf8(request(&u))
                .unwrap()
                .contains("\r\nHost: localhost\r\n")
        );
    }

    #[test]
    fn status_in_pieces() {
        let answer = b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n";
        // Every prefix that ends before the line's newline needs more; from there on the code
        // is known.
        let nl = answer.iter().position(|&b| b == b'\n').unwrap();
        for cut in 0..=answer.len() {
            let got = parse_status(&answer[..cut]);
            if cut <= nl {
                assert_eq!(got, StatusLine::NeedMore, "cut at {cut}");
            } else {
                assert_eq!(got, StatusLine::Code(204), "cut at {cut}");
            }
        }
    }

    #[test]
    fn status_variants() {
        assert_eq!(parse_status(b"HTTP/1.0 503 Busy\n"), StatusLine::Code(503));
        assert_eq!(parse_status(b"HTTP/1.1 200\r\n"), StatusLine::Code(200));
        assert_eq!(
            parse_status(b"\r\nHTTP/1.1 301 Moved\r\n"),
            StatusLine::Code(301)
        );
        // Headers httparse would choke on do not matter once the status is known.
        assert_eq!(
            parse_status(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"),
            StatusLine::Code(200)
        );
        assert!(matches!(
            parse_status(b"SSH-2.0-OpenSSH_9.6\r\n"),
            StatusLine::Malformed(_)
        ));
        // Garbage is recognised before its line ends.
        assert!(matches!(parse_status(b"SSH-2.0"), StatusLine::Malformed(_)));
        assert!(matches!(
            parse_status(b"HTTP/1.1 2x0 OK\r\n"),
            StatusLine::Malformed(_)
        ));
        assert!(matches!(
            parse_status(b"HTTP/2 200\r\n"),
            StatusLine::Malformed(_)
        ));
    }

    #[test]
    fn success_codes() {
        assert!(!is_success(199));
        assert!(is_success(200));
        assert!(is_success(302));
        assert!(is_success(399));
        assert!(!is_success(404));
        assert!(!is_success(500));
    }

    /// From fuzzing (`http_answer`, fuzz/regressions/http_answer/status-000): httparse takes
    /// any three digits as a status code, `000` too; the probe counts it as a failure.
    #[test]
    fn status_000_is_a_failure() {
        let input = include_bytes!("../../fuzz/regressions/http_answer/status-000");
        assert_eq!(parse_status(input), StatusLine::Code(0));
        assert!(!is_success(0));
    }
}
