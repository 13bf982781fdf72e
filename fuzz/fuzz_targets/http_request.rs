//! Arbitrary bytes from a client of tend's HTTP server (`[tend] http`, `/livez`, `/readyz`,
//! `/metrics`), received in arbitrary pieces: the answer must never panic, and must be a
//! complete HTTP/1.1 response with `Connection: close` and a `Content-Length` that matches
//! its body (none for HEAD); the snapshot is taken only for a request that is served (200 or
//! 503); tend holds at most 8 KiB + 1 byte of a head; and how the bytes were cut into
//! pieces changes nothing: the loop's "a blank line arrived" shortcut (`ends_head`) never
//! makes it miss or change an answer (only a malformed head may be refused with 400 one
//! way and 431 another).
//!
//! Input: the first byte seeds the piece sizes (and the snapshot's `alive` / `ready`); the
//! rest is what the client sends before it shuts its side down.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::shell::serve::http::{MAX_HEAD, Snapshot, answer_input, ends_head};

/// What `HttpServer::read` does with `data` received in pieces of the sizes `sizes` gives
/// (each read takes at most 4096 bytes, and never more than one byte past `MAX_HEAD`), until
/// it answers or the client's bytes run out and it shuts its side down (then: 400 to part of
/// a head, `None` for a connection that sent nothing, which is closed). Also returns whether
/// malformed head is seen once a blank line arrives), but it must be the same answer.
/// malformed head is seen once a blank line arrives), but it must be the same answer.
fn serve(
    data: &[u8],
    snap: &Snapshot,
    mut sizes: impl FnMut() -> usize,
) -> (Option<Vec<u8>>, bool) {
    let mut input: Vec<u8> = Vec::new();
    let mut rest = data;
    let mut asked = false;
    while !rest.is_empty() {
        let room = (MAX_HEAD + 1 - input.len()).min(4096);
        let n = sizes().clamp(1, room).min(rest.len());
        let (piece, after) = rest.split_at(n);
        rest = after;
        let from = input.len();
        input.extend_from_slice(piece);
        assert!(input.len() <= MAX_HEAD + 1);
        if !ends_head(&input, from) && input.len() <= MAX_HEAD {
            continue;
        }
        if let Some(response) = answer_input(&input, || {
            asked = true;
            snap.clone()
        }) {
            return (Some(response), asked);
        }
    }
    if input.is_empty() {
        return (None, asked);
    }
    // The loop's shortcut must not have skipped a complete head. (It may have waited on a
    // head httparse could already refuse: it only parses once a blank line arrives, and the
    // request deadline bounds the wait.)
    if let Some(missed) = answer_input(&input, Snapshot::default) {
        assert!(
            missed.starts_with(b"HTTP/1.1 400 ") || missed.starts_with(b"HTTP/1.1 431 "),
            "a complete head was missed: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
    // A client that half-closes here gets a 400 without a snapshot (the one any malformed
    // head gets).
    (answer_input(b"\0\r\n\r\n", Snapshot::default), asked)
}

fn check_response(bytes: &[u8], asked: bool, head_request: bool) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        other => panic!(
            "not a whole response ({other:?}): {:?}",
            String::from_utf8_lossy(bytes)
        ),
    };
    assert_eq!(response.version, Some(1));
    let code = response.code.expect("a status code");
    assert!(
        [200, 400, 404, 405, 431, 503].contains(&code),
        "status {code}"
    );
    assert_eq!(
        asked,
        code == 200 || code == 503,
        "snapshot taken for {code}"
    );
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).expect("ASCII header"))
    };
    assert_eq!(header("connection"), Some("close"));
    let length: usize = header("content-length")
        .expect("content-length")
        .parse()
        .expect("a number");
    let body = &bytes[len..];
    // HEAD gets no body, except with 400, 405 and 431 (not a HEAD request tend serves).
    if head_request && [200, 404, 503].contains(&code) {
        assert!(body.is_empty(), "a body for HEAD");
    } else {
        assert_eq!(body.len(), length);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, sent)) = data.split_first() else {
        return;
    };
    let snap = Snapshot {
        alive: seed & 1 != 0,
        ready: seed & 2 != 0,
        ready_reason: if seed & 4 != 0 {
            "web: not ready".into()
        } else {
            String::new()
        },
        metrics: "# TYPE tend_uptime_seconds gauge\ntend_uptime_seconds 1.000\n".into(),
    };
    // Pieces as large as a read can take, and pieces of sizes from a small generator.
    let (whole, asked_whole) = serve(sent, &snap, || 4096);
    let mut state = u32::from(seed) | 1;
    let (cut, asked_cut) = serve(sent, &snap, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        match state % 4 {
            0 => 1,
            1 => 2,
            2 => (state >> 8) as usize % 64,
            _ => (state >> 8) as usize % 4096,
        }
    });
    // One exception: a malformed head is refused with 400 when the client half-closes, and
    // with what httparse says (431 for more than 64 headers) when a read that ends the head
    // or passes a blank line has it parsed: both refusals, the status depends on the cutting.
    let refused = |a: &Option<Vec<u8>>| {
        a.as_deref()
            .is_some_and(|a| a.starts_with(b"HTTP/1.1 400 ") || a.starts_with(b"HTTP/1.1 431 "))
    };
    assert!(
        whole == cut || (refused(&whole) && refused(&cut)),
        "the answer depends on how the request was cut: {:?} / {:?}",
        whole.as_deref().map(String::from_utf8_lossy),
        cut.as_deref().map(String::from_utf8_lossy),
    );
    assert_eq!(asked_whole, asked_cut);
    if let Some(bytes) = &whole {
        let head_request = sent.starts_with(b"HEAD ")
            || sent
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .is_some_and(|i| sent[i..].starts_with(b"HEAD "));
        check_response(bytes, asked_whole, head_request);
    }
});
