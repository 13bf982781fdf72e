//! Arbitrary bytes as the answer of a server to an HTTP probe, read as it arrives:
//! `tend::shell::probes::http::parse_status` must never panic; a code it gives is three
//! digits (`000` included); "need more" only while no whole line has come (the probe also stops at
//! `MAX_RESPONSE_HEAD` bytes); and a verdict on the first bytes is never changed by the
//! bytes after them (the probe acts on the first verdict it gets).
//!
//! When the bytes are UTF-8 they are also an `http = "..."` probe URL in a configuration:
//! one the loader takes must make a request head that parses back with the same path and
//! with the URL's authority as its `Host` header (nothing in a URL can end a line or add a
//! header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tend::config::{Environment, load_str};
use tend::core::Probe;
use tend::shell::probes::http::{StatusLine, parse_status, request};

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn same_verdict(early: &StatusLine, whole: &StatusLine) -> bool {
    match (early, whole) {
        (StatusLine::NeedMore, _) => true,
        (StatusLine::Code(a), StatusLine::Code(b)) => a == b,
        (StatusLine::Malformed(_), StatusLine::Malformed(_)) => true,
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = parse_status(data);
    match &whole {
        // Three digits: httparse takes `000` too, which the probe counts as a failure.
        StatusLine::Code(code) => assert!(*code <= 999, "{code}"),
        StatusLine::NeedMore => {
            // Still waiting: no line after the empty lines httparse skips.
            let start = data
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(data.len());
            assert!(!data[start..].contains(&b'\n'), "waits after a whole line");
        }
        StatusLine::Malformed(_) => {}
    }
    // Cuts: every length up to 32, at and after each newline, and the middle.
    let mut cuts: Vec<usize> = (0..=data.len().min(32)).collect();
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            cuts.push(i);
            cuts.push(i + 1);
        }
    }
    cuts.push(data.len() / 2);
    for cut in cuts {
        let early = parse_status(&data[..cut.min(data.len())]);
        assert!(
            same_verdict(&early, &whole),
            "{early:?} after {cut} bytes, {whole:?} after all {}",
            data.len()
        );
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let quoted = toml_string(text);
    let file = format!("[services.a]\ncommand = \"a\"\nready = {{ http = {quoted} }}\n");
    let dir = std::env::temp_dir();
    let Ok(loaded) = load_str(&file, "tend.toml", &dir, &Environment::default()) else {
        return;
    };
    let Some(Probe::Http { target: url }) = loaded
        .spec
        .services
        .first()
        .and_then(|s| s.ready.as_ref())
        .map(|r| r.probe.clone())
    else {
        panic!("an http probe loaded as something else");
    };
    let head = request(&url);
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(len)) => assert_eq!(len, head.len()),
        other => panic!("{other:?}: {:?}", String::from_utf8_lossy(&head)),
    }
    assert_eq!(req.method, Some("GET"));
    assert_eq!(req.path, Some(url.path.as_str()));
    assert_eq!(req.headers.len(), 3);
    let host = req.headers.iter().find(|h| h.name == "Host").expect("Host");
    assert_eq!(host.value, url.authority().as_bytes());
});
