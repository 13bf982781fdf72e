//! The pure half of the HTTP probe: the request, and reading the status line of the answer
//! as it arrives in pieces. No I/O here: `shell::probes` moves the bytes. The target was read
//! from the URL, and checked, when the configuration was loaded (`config::address`).
//!
//! Only what a health check needs: plain `http://`, one GET, `Connection: close`, and the
//! status code. No TLS, no redirects followed (a 3xx already counts as healthy), no body.

use crate::core::HttpTarget;

/// At most this many bytes of the answer are read looking for the status line. A server
/// that sends this much without one is not speaking HTTP.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// The whole request. `Connection: close` so the server ends the exchange and no connection
/// lingers; tend reads nothing past the status line anyway.
pub fn request(target: &HttpTarget) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: tend\r\n\r\n",
        target.path,
        target.authority()
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

    #[test]
    fn request_bytes() {
        let t = HttpTarget::new("127.0.0.1", 80, "/healthz?full=1");
        assert_eq!(
            request(&t),
            b"GET /healthz?full=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nUser-Agent: tend\r\n\r\n"
        );
        let t = HttpTarget::new("::1", 8080, "/");
        assert!(
            String::from_utf8(request(&t))
                .unwrap()
                .contains("\r\nHost: [::1]:8080\r\n")
        );
        // The default port is left out, as browsers and curl do, also when the URL named it.
        let t = HttpTarget::new("localhost", 80, "/");
        assert!(
            String::from_utf8(request(&t))
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
        let input = include_bytes!("../../../fuzz/regressions/http_answer/status-000");
        assert_eq!(parse_status(input), StatusLine::Code(0));
        assert!(!is_success(0));
    }
}
