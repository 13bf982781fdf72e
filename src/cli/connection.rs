//! The client's end of the control socket: find it, connect, send one request, read answers.

use super::socket_place;
use crate::config::DEFAULT_SOCKET;
use crate::proto::{self, Request, Response};
use std::ffi::OsString;
use std::io::{self, BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `--socket PATH`, else `$TEND_SOCKET` (when not empty), else the default path or, where
/// tend could not make that, the per-user place it fell back to (`socket_place`).
pub fn socket_path(flag: Option<&Path>, env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| {
            env("TEND_SOCKET")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| {
            let uid = rustix::process::geteuid().as_raw();
            socket_place::find(&socket_place::places(uid, env))
        })
}

pub struct Connection {
    path: PathBuf,
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    timeout: Option<Duration>,
    /// An answer that came before the request was sent (see `send`).
    early: Option<(String, Response)>,
}

impl Connection {
    /// Connects; `timeout` bounds every later send and every wait for an answer (None: wait
    /// forever, for `logs --follow`).
    pub fn open(path: &Path, timeout: Option<Duration>) -> Result<Connection, String> {
        let stream = UnixStream::connect(path).map_err(|e| connect_error(path, &e))?;
        let io = |e: io::Error| format!("cannot set up the connection to {}: {e}", path.display());
        stream.set_read_timeout(timeout).map_err(io)?;
        stream.set_write_timeout(timeout).map_err(io)?;
        let reader = BufReader::new(stream.try_clone().map_err(io)?);
        Ok(Connection {
            path: path.to_path_buf(),
            stream,
            reader,
            timeout,
            early: None,
        })
    }

    pub fn send(&mut self, request: &Request) -> Result<(), String> {
        let line = proto::encode(request);
        let mut rest = &line[..];
        while !rest.is_empty() {
            // NOSIGNAL: tend may close first (e.g. refusing a non-root client), and the client
            // must then say so rather than die of SIGPIPE, whose disposition tend leaves alone.
            match rustix::net::send(&self.stream, rest, rustix::net::SendFlags::NOSIGNAL) {
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(e @ (rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET))
                    if self.early.is_none() =>
                {
                    // tend closed without reading: it refused this client, and its answer
                    // saying why is waiting to be read. Without one, the send error stands.
                    match self.receive() {
                        Ok(Some(answer)) => {
                            self.early = Some(answer);
                            return Ok(());
                        }
                        _ => return Err(self.send_error(e)),
                    }
                }
                Err(e) => return Err(self.send_error(e)),
            }
        }
        Ok(())
    }

    fn send_error(&self, e: rustix::io::Errno) -> String {
        format!(
            "cannot send the request to tend at {}: {}",
            self.path.display(),
            self.describe(io::Error::from(e))
        )
    }

    /// The next answer, with its JSON line as it came (newline removed); None when tend
    /// closed the connection.
    pub fn receive(&mut self) -> Result<Option<(String, Response)>, String> {
        if let Some(answer) = self.early.take() {
            return Ok(Some(answer));
        }
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "cannot read tend's answer from {}: {}",
                    self.path.display(),
                    self.describe(e)
                ));
            }
        }
        let raw = line.trim_end_matches(['\n', '\r']).to_string();
        match serde_json::from_str::<Response>(&raw) {
            Ok(response) => Ok(Some((raw, response))),
            Err(e) => Err(format!(
                "tend sent an answer this client does not understand ({e}): {raw}"
            )),
        }
    }

    /// Whether more of tend's answers have already arrived: then the next `receive` does
    /// not wait.
    pub fn has_more(&self) -> bool {
        self.early.is_some() || !self.reader.buffer().is_empty()
    }

    /// The next answer, which must come.
    pub fn answer(&mut self) -> Result<(String, Response), String> {
        self.receive()?.ok_or_else(|| {
            format!(
                "tend closed the connection at {} without answering",
                self.path.display()
            )
        })
    }

    fn describe(&self, e: io::Error) -> String {
        match (e.kind(), self.timeout) {
            (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, Some(t)) => format!(
                "no answer within {} (tend may still carry out the request: see `tend status`; \
                 --timeout waits longer)",
                humantime::format_duration(t)
            ),
            _ => e.to_string(),
        }
    }
}

fn connect_error(path: &Path, e: &io::Error) -> String {
    let why = match e.kind() {
        io::ErrorKind::NotFound => "no such socket".to_string(),
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there any more)".to_string()
        }
        io::ErrorKind::PermissionDenied => {
            "permission denied (the control socket is for root)".to_string()
        }
        _ => e.to_string(),
    };
    format!(
        "cannot connect to tend at {}: {why}\n\
         hint: is `tend run` running? Point the client at its socket with --socket PATH or \
         $TEND_SOCKET (default: {DEFAULT_SOCKET}, or where tend cannot make that, \
         $XDG_RUNTIME_DIR/tend/control.sock or /tmp/tend-UID/control.sock)",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_the_environment_then_the_default() {
        let env = |v: Option<&'static str>| {
            move |name: &str| match name {
                "TEND_SOCKET" => v.map(OsString::from),
                _ => None,
            }
        };
        let flag = Path::new("/flag.sock");
        assert_eq!(socket_path(Some(flag), env(Some("/env.sock"))), flag);
        assert_eq!(
            socket_path(None, env(Some("/env.sock"))),
            Path::new("/env.sock")
        );
        assert_eq!(socket_path(None, env(Some(""))), Path::new(DEFAULT_SOCKET));
        assert_eq!(socket_path(None, env(None)), Path::new(DEFAULT_SOCKET));
    }

    #[test]
    fn a_missing_socket_is_named_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let Err(e) = Connection::open(&path, None) else {
            panic!("connected to nothing")
        };
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("no such socket"), "{e}");
        assert!(e.contains("--socket") && e.contains("$TEND_SOCKET"), "{e}");
    }

    #[test]
    fn a_request_goes_out_as_one_line_and_answers_come_back_in_order() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut byte = [0u8];
            while byte[0] != b'\n' {
                s.read_exact(&mut byte).unwrap();
                got.push(byte[0]);
            }
            s.write_all(b"{\"reply\":\"accepted\"}\n{\"reply\":\"error\",\"message\":\"no\"}\n")
                .unwrap();
            got
        });
        let mut c = Connection::open(&path, Some(Duration::from_secs(10))).unwrap();
        c.send(&Request::new(proto::Command::Shutdown)).unwrap();
        assert_eq!(c.answer().unwrap().1, Response::Accepted);
        let (raw, r) = c.answer().unwrap();
        assert_eq!(raw, r#"{"reply":"error","message":"no"}"#);
        assert_eq!(
            r,
            Response::Error {
                message: "no".into()
            }
        );
        assert!(c.receive().unwrap().is_none(), "closed after the answers");
        let sent = server.join().unwrap();
        assert_eq!(
            proto::decode_request(sent.trim_ascii_end())
                .unwrap()
                .command,
            proto::Command::Shutdown
        );
    }

    #[test]
    fn an_answer_sent_before_tend_hung_up_is_read_even_though_the_request_could_not_be_sent() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut c = Connection::open(&path, Some(Duration::from_secs(10))).unwrap();
        // As tend does with a client it refuses: answer at once, close without reading.
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"{\"reply\":\"error\",\"message\":\"uid 1 may not\"}\n")
            .unwrap();
        drop(s);
        // Big enough that the send cannot complete before the closed peer is noticed.
        let request = Request::new(proto::Command::Logs {
            service: "x".repeat(1 << 20),
            lines: 1,
            follow: false,
        });
        c.send(&request).unwrap();
        let (_, answer) = c.answer().unwrap();
        assert_eq!(
            answer,
            Response::Error {
                message: "uid 1 may not".into()
            }
        );
    }

    #[test]
    fn silence_past_the_timeout_is_an_error_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut c = Connection::open(&path, Some(Duration::from_millis(50))).unwrap();
        let e = c.answer().unwrap_err();
        assert!(e.contains("no answer within 50ms"), "{e}");
        drop(listener);
    }
}
