use super::lines::MAX_LINE;
use super::*;
use crate::core::spec::{Launch, SessionMode};
use proptest::prelude::*;
use std::os::fd::AsFd;

/// A `Logs` for one service `svc` whose stdout and stderr go into pipes of 1 MiB.
fn logs_into_pipes(ring: usize, format: LogFormat) -> (Logs, [OwnedFd; 2]) {
    let mut spec = svc();
    spec.log_ring = ring;
    let style = Style {
        format,
        timestamps: false,
        color: false,
    };
    logs_for(spec, style)
}

/// The service `svc`, running `true`.
fn svc() -> ServiceSpec {
    let launch = Launch::command(vec!["true".into()], SessionMode::NewSession);
    ServiceSpec::new("svc", launch)
}

/// A `Logs` for the one service `spec` whose stdout and stderr go into pipes of 1 MiB.
fn logs_for(spec: ServiceSpec, style: Style) -> (Logs, [OwnedFd; 2]) {
    let mut reads = Vec::new();
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK).unwrap();
        rustix::pipe::fcntl_setpipe_size(&w, 1 << 20).unwrap();
        outputs.push(OutputQueue::new(w.as_fd()).unwrap());
        reads.push(r);
    }
    let outputs: [OutputQueue; 2] = outputs.try_into().ok().unwrap();
    let logs = Logs::with_outputs(&[spec], style, outputs).unwrap();
    (logs, reads.try_into().unwrap())
}

fn drain(logs: &mut Logs, read: &OwnedFd, stream: Stream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        logs.write_out(stream);
        match rustix::io::read(read, &mut buf[..]) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ if logs.pending(stream) => {}
            _ => return got,
        }
    }
}

/// The lines a reader of the whole stream at once would see: split at newlines, the
/// rest as a last line, each cut into pieces of at most MAX_LINE.
fn reference_lines(data: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<&[u8]> = data.split(|&c| c == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            out.push(Vec::new());
        }
        out.extend(line.chunks(MAX_LINE).map(<[u8]>::to_vec));
    }
    out
}

/// Chunks of a service's output: short and long lines (some a whole number of pieces
/// long), empty lines, no final newline sometimes, cut at random places and just before
/// some newlines.
fn stream_and_cuts() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let line = prop_oneof![
        6 => proptest::collection::vec(b'a'..=b'z', 0..120),
        1 => (0usize..3).prop_map(|k| vec![b'x'; MAX_LINE * (k + 1)]),
        1 => (1usize..3 * MAX_LINE).prop_map(|n| vec![b'y'; n]),
    ];
    (
        proptest::collection::vec(line, 0..60),
        any::<bool>(),
        proptest::collection::vec(1usize..40_000, 0..12),
        proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
    )
        .prop_map(|(lines, last_newline, mut cuts, at_newlines)| {
            let mut data = lines.join(&b'\n');
            if last_newline && !data.is_empty() {
                data.push(b'\n');
            }
            let newlines: Vec<usize> = data
                .iter()
                .enumerate()
                .filter_map(|(i, &c)| (c == b'\n').then_some(i))
                .collect();
            if !newlines.is_empty() {
                cuts.extend(at_newlines.iter().map(|i| *i.get(&newlines)));
            }
            let mut cuts: Vec<usize> = cuts
                .into_iter()
                .filter(|&c| c > 0 && c < data.len())
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            (data, cuts)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the reads fall, the prefixed output and the ring hold exactly the lines
    /// of the whole stream, in order.
    #[test]
    fn output_and_ring_do_not_depend_on_how_reads_fall(
        (data, cuts) in stream_and_cuts(),
        ring in 1usize..50,
    ) {
        let (mut logs, reads) = logs_into_pipes(ring, LogFormat::Prefixed);
        let mut from = 0;
        for to in cuts.iter().copied().chain([data.len()]) {
            logs.take_lines(0, Stream::Stdout, &data[from..to], false);
            from = to;
        }
        logs.flush_partial(0, Stream::Stdout);
        let want = reference_lines(&data);
        let mut want_out = Vec::new();
        for line in &want {
            want_out.extend_from_slice(b"svc | ");
            want_out.extend_from_slice(line);
            want_out.push(b'\n');
        }
        let got_out = drain(&mut logs, &reads[0], Stream::Stdout);
        prop_assert!(got_out == want_out, "output differs");
        let got_ring: Vec<Vec<u8>> =
            logs.backlog(0, usize::MAX).map(|l| l.text.to_vec()).collect();
        let keep = want.len().saturating_sub(ring);
        prop_assert!(got_ring == want[keep..].to_vec(), "ring differs");
        prop_assert!(drain(&mut logs, &reads[1], Stream::Stderr).is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The other places a line goes see the same lines, however the reads fall: the JSON
    /// format, a follower (`tend logs -f`), and a log file with or without timestamps.
    #[test]
    fn json_follower_and_file_do_not_depend_on_how_reads_fall(
        (data, cuts) in stream_and_cuts(),
        timestamps in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut spec = svc();
        spec.log_file = Some(crate::core::spec::LogFile {
            path: path.clone(),
            max_size: 0,
            keep: 1,
        });
        let style = Style { format: LogFormat::Json, timestamps, color: false };
        let (mut logs, reads) = logs_for(spec, style);
        logs.follow(0);
        let mut from = 0;
        for to in cuts.iter().copied().chain([data.len()]) {
            logs.take_lines(0, Stream::Stdout, &data[from..to], false);
            from = to;
        }
        logs.flush_partial(0, Stream::Stdout);
        let want: Vec<String> = reference_lines(&data)
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let out = String::from_utf8(drain(&mut logs, &reads[0], Stream::Stdout)).unwrap();
        let json: Vec<String> = out
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["line"].as_str().unwrap().to_string()
            })
            .collect();
        prop_assert!(json == want, "JSON lines differ");
        let fresh: Vec<String> = logs
            .take_fresh()
            .iter()
            .map(|(_, l)| String::from_utf8_lossy(&l.text).into_owned())
            .collect();
        prop_assert!(fresh == want, "followed lines differ");
        let file = std::fs::read(&path).unwrap_or_default();
        let mut file_lines: Vec<&[u8]> = file.split(|&c| c == b'\n').collect();
        prop_assert_eq!(file_lines.pop(), Some(&b""[..]));
        let file_lines: Vec<String> = file_lines
            .iter()
            .map(|l| {
                let l = if timestamps { &l[25..] } else { l };
                String::from_utf8_lossy(l).into_owned()
            })
            .collect();
        prop_assert!(file_lines == want, "file lines differ");
    }
}

/// A busy service's output: thousands of lines, some long, cut into writes at random places.
fn busy_stream() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    let line = prop_oneof![
        200 => (0usize..200).prop_map(|n| vec![b'a'; n]),
        1 => (MAX_LINE - 2..MAX_LINE + 300).prop_map(|n| vec![b'l'; n]),
    ];
    (
        proptest::collection::vec(line, 0..4000),
        proptest::collection::vec(1usize..300_000, 0..20),
    )
        .prop_map(|(lines, cuts)| {
            let mut data = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                data.extend_from_slice(format!("{i} ").as_bytes());
                data.extend_from_slice(line);
                data.push(b'\n');
            }
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c < data.len()).collect();
            cuts.sort_unstable();
            cuts.dedup();
            (data, cuts)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Through the service's pipe, 64 KiB reads at a time: the ring adopts the read buffer
    /// of a busy chunk as a block (`Ring::adopt`) and hands another back. The output and the
    /// ring hold every line once, in order, whatever the ring's size.
    #[test]
    fn reads_through_the_pipe_keep_every_line_in_output_and_ring(
        (data, cuts) in busy_stream(),
        ring in prop_oneof![Just(0usize), 1usize..3000, Just(100_000)],
    ) {
        let mut spec = svc();
        spec.log_ring = ring;
        // Held to the line count only (the byte budget has tests of its own in ring.rs).
        spec.log_ring_bytes = usize::MAX;
        let style = Style { format: LogFormat::Prefixed, timestamps: false, color: false };
        let (mut logs, reads) = logs_for(spec, style);
        let (write, _) = logs.child_fds(0).unwrap();
        let write = write.try_clone_to_owned().unwrap();
        rustix::pipe::fcntl_setpipe_size(&write, 1 << 20).unwrap();
        let now = Instant::now();
        let mut got_out = Vec::new();
        let mut from = 0;
        for to in cuts.iter().copied().chain([data.len()]) {
            let mut piece = &data[from..to];
            while !piece.is_empty() {
                let n = rustix::io::write(&write, &piece[..piece.len().min(1 << 19)]).unwrap();
                piece = &piece[n..];
                while logs.read(0, Stream::Stdout, now) {}
                got_out.extend(drain(&mut logs, &reads[0], Stream::Stdout));
            }
            from = to;
        }
        logs.flush_partial(0, Stream::Stdout);
        got_out.extend(drain(&mut logs, &reads[0], Stream::Stdout));
        let want = reference_lines(&data);
        let mut want_out = Vec::new();
        for line in &want {
            want_out.extend_from_slice(b"svc | ");
            want_out.extend_from_slice(line);
            want_out.push(b'\n');
        }
        prop_assert!(got_out == want_out, "output differs");
        let got_ring: Vec<Vec<u8>> =
            logs.backlog(0, usize::MAX).map(|l| l.text.to_vec()).collect();
        let keep = want.len().saturating_sub(ring);
        prop_assert!(got_ring.len() == want.len() - keep, "{} lines in the ring, want {} of {}", got_ring.len(), want.len() - keep, want.len());
        prop_assert!(got_ring == want[keep..].to_vec(), "ring differs");
    }
}

/// With `log-timestamps`, each line in `logs.file` gets the chunk's time before it: lines
/// that lie whole in a chunk, a line joined from two chunks and a flushed partial one.
#[test]
fn a_log_file_line_gets_its_timestamp() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("svc.log");
    let style = Style {
        format: LogFormat::Prefixed,
        timestamps: true,
        color: false,
    };
    let mut spec = svc();
    spec.log_file = Some(crate::core::spec::LogFile {
        path: path.clone(),
        max_size: 0,
        keep: 1,
    });
    let (mut logs, reads) = logs_for(spec, style);
    logs.take_lines(0, Stream::Stdout, b"one\ntwo\nthr", false);
    logs.take_lines(0, Stream::Stdout, b"ee\nfour\nfi", false);
    logs.flush_partial(0, Stream::Stdout);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read: {e}"));
    let lines: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split_once(' ').unwrap_or_else(|| panic!("{text}")))
        .collect();
    assert_eq!(
        lines.iter().map(|(_, line)| *line).collect::<Vec<_>>(),
        ["one", "two", "three", "four", "fi"],
        "{text}"
    );
    for (stamp, _) in &lines {
        assert!(stamp.len() == 24 && stamp.ends_with('Z'), "{text}");
    }
    // The prefixed output has the same lines, the stamp before the name.
    let out = String::from_utf8(drain(&mut logs, &reads[0], Stream::Stdout))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(out.lines().all(|l| {
        l.split_once(' ')
            .is_some_and(|(_, r)| r.starts_with("svc | "))
    }));
}

/// Invariant 8: a partial line is not flushed while tend itself holds the writer back
/// because its output is congested; once reading resumes the line arrives whole.
#[test]
fn a_congested_output_never_cuts_a_line() {
    let (mut logs, reads) = logs_into_pipes(10, LogFormat::Prefixed);
    let start = Instant::now();
    let write = |logs: &Logs, data: &[u8]| {
        let (out, _) = logs.child_fds(0).unwrap();
        assert_eq!(rustix::io::write(out, data).unwrap(), data.len());
    };
    write(&logs, b"whole\nL00186");
    assert!(logs.read(0, Stream::Stdout, start));
    assert!(logs.next_deadline().is_some());
    // The reader of tend's stdout stalls: the queue passes its high-water mark.
    let filler = vec![b'x'; 1000];
    while !logs.congested(Stream::Stdout) {
        let out = Stream::Stdout.of_mut(&mut logs.outputs);
        out.push(&filler);
        out.push(b"\n");
        let _ = out.flush();
    }
    let change = |paused| PauseChange {
        svc: 0,
        stream: Stream::Stdout,
        paused,
    };
    assert_eq!(logs.update_pauses(start), [change(true)]);
    assert_eq!(
        logs.next_deadline(),
        None,
        "a paused source has no deadline"
    );
    logs.on_timeout(start + 10 * PARTIAL_LINE_DELAY);
    // The reader comes back; reading resumes, and the line gets its whole delay again.
    let resumed = start + 11 * PARTIAL_LINE_DELAY;
    let mut got = drain(&mut logs, &reads[0], Stream::Stdout);
    assert_eq!(logs.update_pauses(resumed), [change(false)]);
    assert_eq!(logs.next_deadline(), Some(resumed + PARTIAL_LINE_DELAY));
    write(&logs, b"60\n");
    // The deadline passes before the wake-up that would read the rest: the pipe is read
    // first, and the line is whole.
    logs.on_timeout(resumed + 2 * PARTIAL_LINE_DELAY);
    assert_eq!(logs.next_deadline(), None);
    got.extend(drain(&mut logs, &reads[0], Stream::Stdout));
    let lines: Vec<&[u8]> = got
        .split(|&c| c == b'\n')
        .filter(|l| !l.starts_with(b"x"))
        .collect();
    assert_eq!(lines, [&b"svc | whole"[..], b"svc | L0018660", b""]);
    // A writer that really stopped mid-line is flushed after the delay.
    write(&logs, b"no end");
    let now = resumed + 3 * PARTIAL_LINE_DELAY;
    assert!(logs.read(0, Stream::Stdout, now));
    logs.on_timeout(now + PARTIAL_LINE_DELAY);
    assert_eq!(
        drain(&mut logs, &reads[0], Stream::Stdout),
        b"svc | no end\n"
    );
}

#[test]
fn tend_s_own_lines_are_json_too_in_the_json_format() {
    let (mut logs, reads) = logs_into_pipes(10, LogFormat::Json);
    logs.tend_line("tend: info: spawned 'svc' with pid 7\n");
    let got = String::from_utf8(drain(&mut logs, &reads[1], Stream::Stderr))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        got,
        "{\"service\":\"tend\",\"stream\":\"stderr\",\"line\":\"tend: info: spawned 'svc' with pid 7\"}\n"
    );
    let (mut logs, reads) = logs_into_pipes(10, LogFormat::Prefixed);
    logs.tend_line("tend: info: spawned 'svc' with pid 7\n");
    let got = drain(&mut logs, &reads[1], Stream::Stderr);
    assert_eq!(got, b"tend: info: spawned 'svc' with pid 7\n");
    // With log-timestamps, the time goes first, as on service lines.
    let style = Style {
        format: LogFormat::Prefixed,
        timestamps: true,
        color: false,
    };
    let (mut logs, reads) = logs_for(svc(), style);
    logs.tend_line("tend: info: spawned 'svc' with pid 7\n");
    let got = String::from_utf8(drain(&mut logs, &reads[1], Stream::Stderr))
        .unwrap_or_else(|e| panic!("{e}"));
    let (stamp, rest) = got.split_once(' ').unwrap_or_else(|| panic!("{got}"));
    assert!(stamp.len() == 24 && stamp.ends_with('Z'), "{got}");
    assert_eq!(rest, "tend: info: spawned 'svc' with pid 7\n");
}

#[test]
fn json_lines_carry_stream_and_escape_text() {
    let (mut logs, reads) = logs_into_pipes(10, LogFormat::Json);
    logs.take_lines(0, Stream::Stderr, b"a\"b\n\tc", false);
    logs.flush_partial(0, Stream::Stderr);
    let got = String::from_utf8(drain(&mut logs, &reads[1], Stream::Stderr)).unwrap();
    assert_eq!(
        got,
        "{\"service\":\"svc\",\"stream\":\"stderr\",\"line\":\"a\\\"b\"}\n\
         {\"service\":\"svc\",\"stream\":\"stderr\",\"line\":\"\\tc\"}\n"
    );
    let ring: Vec<(Stream, String)> = logs
        .backlog(0, 5)
        .map(|l| (l.stream, l.text_lossy()))
        .collect();
    let err = Stream::Stderr;
    assert_eq!(ring, [(err, "a\"b".to_string()), (err, "\tc".to_string())]);
}
