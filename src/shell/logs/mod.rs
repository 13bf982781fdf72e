//! Services' stdout and stderr: one pipe per stream per service, created once and kept across
//! restarts (so a crashing service's last words are still read), cut into lines and written to
//! tend's stdout/stderr with an aligned `name | ` prefix, and kept in a ring for `tend logs`.

pub mod json_line;
pub mod lines;
pub mod logfile;
pub mod output;
pub mod queue;
pub mod ring;
pub mod timestamp;

pub use crate::config::LogFormat;
use crate::core::spec::ServiceSpec;
use lines::{LineBuffer, LineSink, MAX_LINE};
use logfile::LogFile;
use output::OutputQueue;
use queue::ByteQueue;
use ring::{LineRef, Ring};
use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// A partial line waits this long for its end before it is written as it is.
pub const PARTIAL_LINE_DELAY: Duration = Duration::from_millis(200);

/// Bytes read from one pipe per wake-up, so one chatty service cannot starve the others:
/// a ring block's size, so that the read buffer can become one (`Ring::adopt`).
const READ_CHUNK: usize = ring::BLOCK_BYTES;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    pub const BOTH: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    /// This stream's one of a pair kept in stream order.
    pub fn of<T>(self, pair: &[T; 2]) -> &T {
        let [out, err] = pair;
        match self {
            Stream::Stdout => out,
            Stream::Stderr => err,
        }
    }

    pub fn of_mut<T>(self, pair: &mut [T; 2]) -> &mut T {
        let [out, err] = pair;
        match self {
            Stream::Stdout => out,
            Stream::Stderr => err,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub format: LogFormat,
    pub timestamps: bool,
    /// ANSI colour on the prefix (only on a terminal, never under NO_COLOR).
    pub color: bool,
}

struct Source {
    read: OwnedFd,
    /// Kept open by tend so the pipe outlives each instance and never hits EOF.
    write: OwnedFd,
    lines: LineBuffer,
    partial_since: Option<Instant>,
    /// Not being read because its output is congested.
    paused: bool,
}

/// A source to stop reading (`paused`: its output is congested) or to read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PauseChange {
    pub svc: usize,
    pub stream: Stream,
    pub paused: bool,
}

/// Everything tend keeps for one service's output.
struct ServiceLogs {
    /// Its stdout and stderr pipes, in stream order.
    sources: [Source; 2],
    name: String,
    /// `name | `, padded to the longest name (and coloured on a terminal).
    prefix: String,
    ring: Ring,
    /// Its `logs.file`, if any.
    file: Option<LogFile>,
    /// Someone runs `tend logs -f` on it, so its new lines are also collected for the
    /// control server.
    followed: bool,
}

/// A line read while someone follows its service, kept until the control server takes it.
#[derive(Clone, Debug)]
pub struct FreshLine {
    pub stream: Stream,
    pub time_ms: u64,
    pub text: Vec<u8>,
}

impl FreshLine {
    pub fn as_ref(&self) -> LineRef<'_> {
        LineRef {
            stream: self.stream,
            time_ms: self.time_ms,
            text: &self.text,
        }
    }
}

/// Where the lines of one chunk go: the output, the ring, and followers if any.
///
/// Lines are copied straight into the output queue, which goes out with one `write` per
/// chunk (measured: `writev` of a prefix and a line per line, without the copy, is no faster
/// into /dev/null and a third slower into a pipe, which is where a container's stdout goes).
/// A run of whole lines lying in the chunk (most of a busy service's lines) is taken in one
/// go: in the prefixed format copied line by line behind its prefix by `bytes::prefix_lines`
/// (one `memchr` and two copies per line), into the ring with one copy, into an unstamped
/// log file with one copy.
struct Sink<'a> {
    out: &'a mut OutputQueue,
    ring: &'a mut Ring,
    fresh: Option<&'a mut Vec<(usize, FreshLine)>>,
    /// What goes to the service's `logs.file`, if it has one.
    file: Option<&'a mut ByteQueue>,
    format: LogFormat,
    /// What goes before each line: in the prefixed format the timestamp if any and the
    /// name, in the JSON format the object up to the line's text.
    head: &'a [u8],
    /// The timestamp of this chunk and a space, for the log file.
    stamp: Option<&'a [u8]>,
    svc: usize,
    stream: Stream,
    time_ms: u64,
    /// The chunk, when it lies in the read buffer, which the ring may then adopt as a block
    /// (`Ring::adopt`) instead of copying its lines.
    adoptable: Option<&'a [u8]>,
    /// A run of the chunk (`start..end`, lines) the ring is to adopt, held back as long as
    /// nothing else goes into the ring after it.
    adopt: Option<(usize, usize, usize)>,
}

impl LineSink for Sink<'_> {
    fn run(&mut self, data: &[u8], start: usize, end: usize) -> usize {
        let run = data.get(start..end).unwrap_or_default();
        let (taken, lines) = match self.format {
            LogFormat::Prefixed => self.out.push_prefixed(self.head, run, MAX_LINE),
            LogFormat::Json => {
                let (mut taken, mut count) = (0, 0);
                for line in lines::lines_of(run, MAX_LINE) {
                    let text = line.split_last().map_or(line, |(_, text)| text);
                    self.json_line(text);
                    taken += line.len();
                    count += 1;
                }
                (taken, count)
            }
        };
        let run = run.get(..taken).unwrap_or_default();
        if let Some(fresh) = self.fresh.as_deref_mut() {
            for line in lines::lines_of(run, MAX_LINE) {
                let text = line.split_last().map_or(line, |(_, text)| text);
                fresh.push((
                    self.svc,
                    FreshLine {
                        stream: self.stream,
                        time_ms: self.time_ms,
                        text: text.to_vec(),
                    },
                ));
            }
        }
        self.ring_held();
        if self.adoptable.is_some() && self.ring.adopts(run.len()) {
            self.adopt = Some((start, start + taken, lines));
        } else {
            self.ring.push_lines(self.stream, self.time_ms, run, lines);
        }
        match (self.file.as_deref_mut(), self.stamp) {
            (Some(file), Some(stamp)) => {
                file.push_prefixed(stamp, run, MAX_LINE);
            }
            (Some(file), None) => file.push(run),
            (None, _) => {}
        }
        start + taken
    }

    fn own(&mut self, text: &[u8]) {
        if let Some(fresh) = self.fresh.as_deref_mut() {
            fresh.push((
                self.svc,
                FreshLine {
                    stream: self.stream,
                    time_ms: self.time_ms,
                    text: text.to_vec(),
                },
            ));
        }
        self.ring_held();
        self.ring.push(self.stream, self.time_ms, text);
        if let Some(file) = self.file.as_deref_mut() {
            file.push_line(self.stamp.unwrap_or_default(), text);
            file.push(b"\n");
        }
        match self.format {
            LogFormat::Prefixed => {
                self.out.push_line(self.head, text);
                self.out.push(b"\n");
            }
            LogFormat::Json => self.json_line(text),
        }
    }
}

impl Sink<'_> {
    /// A run held back for adoption is copied into the ring after all: something else goes
    /// there after it.
    fn ring_held(&mut self) {
        if let (Some((start, end, lines)), Some(chunk)) = (self.adopt.take(), self.adoptable) {
            let run = chunk.get(start..end).unwrap_or_default();
            self.ring.push_lines(self.stream, self.time_ms, run, lines);
        }
    }

    /// One line in the JSON format, escaped straight into the output queue.
    fn json_line(&mut self, text: &[u8]) {
        self.out.push(self.head);
        json_line::escape_into(self.out, text);
        self.out.push(json_line::TAIL);
    }

    /// Everything still held goes out: at the end of each chunk. Returns the run for the
    /// ring to adopt, if any.
    fn finish(self) -> Option<(usize, usize, usize)> {
        let _ = self.out.flush();
        self.adopt
    }
}

pub struct Logs {
    /// By service id, in the spec's order.
    services: Vec<ServiceLogs>,
    outputs: [OutputQueue; 2],
    style: Style,
    buf: Vec<u8>,
    /// Bytes for a log file, gathered over one chunk.
    file_buf: ByteQueue,
    /// The outputs' congestion every source's pause was last matched to (None: not yet,
    /// or sources were added since).
    pauses_match: Option<[bool; 2]>,
    fresh: Vec<(usize, FreshLine)>,
}

const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

impl Logs {
    /// One source per service, in the spec's order.
    pub fn new(services: &[ServiceSpec], style: Style) -> io::Result<Logs> {
        let outputs = [
            OutputQueue::new(rustix::stdio::stdout())?,
            OutputQueue::new(rustix::stdio::stderr())?,
        ];
        Logs::with_outputs(services, style, outputs)
    }

    fn with_outputs(
        services: &[ServiceSpec],
        style: Style,
        outputs: [OutputQueue; 2],
    ) -> io::Result<Logs> {
        let mut logs = Logs {
            services: Vec::new(),
            outputs,
            style,
            buf: Vec::with_capacity(READ_CHUNK),
            file_buf: ByteQueue::default(),
            fresh: Vec::new(),
            pauses_match: None,
        };
        logs.grow(services.len(), |_, _, _| Ok(()))?;
        logs.sync(services);
        Ok(logs)
    }

    /// Pipes for services up to `count` (existing ones keep theirs), each read end handed to
    /// `register` (the event loop's epoll). All or nothing: when a pipe cannot be made or
    /// registered (out of file descriptors), the new ones are closed again and nothing
    /// changes, so a reload can be refused before it commits.
    pub fn grow(
        &mut self,
        count: usize,
        mut register: impl FnMut(usize, Stream, BorrowedFd<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut new = Vec::new();
        for svc in self.services.len()..count {
            let sources = [source()?, source()?];
            for stream in Stream::BOTH {
                register(svc, stream, stream.of(&sources).read.as_fd())?;
            }
            new.push(ServiceLogs {
                sources,
                name: String::new(),
                prefix: String::new(),
                ring: Ring::new(0, 0),
                file: None,
                followed: false,
            });
        }
        if !new.is_empty() {
            self.pauses_match = None;
        }
        self.services.extend(new);
        Ok(())
    }

    /// Matches the services after a reload (after `grow` made their pipes): prefixes are
    /// realigned, ring sizes and log files updated.
    pub fn sync(&mut self, services: &[ServiceSpec]) {
        let width = services
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let color = self.style.color;
        for (i, (logs, spec)) in self.services.iter_mut().zip(services).enumerate() {
            logs.ring.set_capacity(spec.log_ring, spec.log_ring_bytes);
            // An unchanged file stays open; a changed one is opened at its next line.
            if logs.file.as_ref().map(LogFile::settings) != spec.log_file.as_ref() {
                logs.file = spec.log_file.clone().map(LogFile::new);
            }
            let name = &spec.name;
            let pad = " ".repeat(width - name.chars().count());
            logs.prefix = match COLORS.get(i % COLORS.len()) {
                Some(code) if color => format!("\x1b[{code}m{name}{pad} |\x1b[0m "),
                _ => format!("{name}{pad} | "),
            };
            logs.name.clone_from(name);
        }
    }

    /// The write ends a new instance of service `svc` gets as stdout and stderr (None for a
    /// service without pipes, which `grow` rules out for every service the core knows).
    pub fn child_fds(&self, svc: usize) -> Option<(BorrowedFd<'_>, BorrowedFd<'_>)> {
        let [out, err] = &self.services.get(svc)?.sources;
        Some((out.write.as_fd(), err.write.as_fd()))
    }

    pub fn read_fd(&self, svc: usize, stream: Stream) -> Option<BorrowedFd<'_>> {
        let logs = self.services.get(svc)?;
        Some(stream.of(&logs.sources).read.as_fd())
    }

    pub fn output_fd(&self, stream: Stream) -> Option<BorrowedFd<'_>> {
        stream.of(&self.outputs).pollable()
    }

    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// The last `n` lines of `svc`, oldest first.
    pub fn backlog(&self, svc: usize, n: usize) -> impl Iterator<Item = LineRef<'_>> {
        self.services
            .get(svc)
            .into_iter()
            .flat_map(move |logs| logs.ring.last(n))
    }

    /// Someone follows `svc` (`tend logs -f`): its new lines are kept for `take_fresh`.
    pub fn follow(&mut self, svc: usize) {
        if let Some(logs) = self.services.get_mut(svc) {
            logs.followed = true;
        }
    }

    /// Whether lines wait in `take_fresh` or some service is marked followed: with neither,
    /// forwarding fresh lines has nothing to do.
    pub fn forwarding(&self) -> bool {
        !self.fresh.is_empty() || self.services.iter().any(|logs| logs.followed)
    }

    /// Services marked followed that `still` says nobody follows any more are unmarked.
    pub fn unfollow_unless(&mut self, still: impl Fn(usize) -> bool) {
        for (svc, logs) in self.services.iter_mut().enumerate() {
            if logs.followed && !still(svc) {
                logs.followed = false;
            }
        }
    }

    /// The name of service `svc` as its lines carry it.
    pub fn name(&self, svc: usize) -> &str {
        self.services.get(svc).map_or("", |logs| &logs.name)
    }

    /// Lines read since the last call, of services someone follows.
    pub fn take_fresh(&mut self) -> Vec<(usize, FreshLine)> {
        std::mem::take(&mut self.fresh)
    }

    /// Hands `data` (fresh from the pipe; with `flush`, nothing) to the service's line
    /// buffer, and the lines it finds to their sink.
    fn take_lines(&mut self, svc: usize, stream: Stream, data: &[u8], flush: bool) {
        let time_ms = timestamp::unix_millis();
        self.take_chunk(svc, stream, data, flush, time_ms, false);
    }

    /// `take_lines`, with `adoptable` when `data` is the read buffer: then the run of
    /// lines the ring is to adopt, if any, is returned instead of copied into the ring.
    fn take_chunk(
        &mut self,
        svc: usize,
        stream: Stream,
        data: &[u8],
        flush: bool,
        time_ms: u64,
        adoptable: bool,
    ) -> Option<(usize, usize, usize)> {
        let Logs {
            services,
            outputs,
            style,
            fresh,
            file_buf,
            ..
        } = self;
        let logs = services.get_mut(svc)?;
        // One timestamp per chunk: its lines were read together.
        let stamp = style.timestamps.then(timestamp::now_rfc3339);
        let head = match (style.format, &stamp) {
            (LogFormat::Prefixed, Some(stamp)) => {
                Cow::Owned(format!("{stamp} {}", logs.prefix).into_bytes())
            }
            (LogFormat::Prefixed, None) => Cow::Borrowed(logs.prefix.as_bytes()),
            (LogFormat::Json, _) => {
                Cow::Owned(json_line::head(stamp.as_deref(), &logs.name, stream.name()))
            }
        };
        let file_stamp = stamp.map(|stamp| format!("{stamp} "));
        let mut sink = Sink {
            out: stream.of_mut(outputs),
            ring: &mut logs.ring,
            fresh: logs.followed.then_some(fresh),
            file: logs.file.is_some().then_some(&mut *file_buf),
            format: style.format,
            head: &head,
            stamp: file_stamp.as_deref().map(str::as_bytes),
            svc,
            stream,
            time_ms,
            adoptable: adoptable.then_some(data),
            adopt: None,
        };
        let src = stream.of_mut(&mut logs.sources);
        if flush {
            src.lines.flush(&mut sink);
        } else {
            src.lines.feed(data, &mut sink);
        }
        let adopt = sink.finish();
        if let Some(file) = &mut logs.file {
            let failed = file.write(file_buf.queued());
            file_buf.clear();
            if let Some(message) = failed {
                self.tend_line(&format!("tend: warning: {message}\n"));
            }
        }
        self.say_broken_outputs();
        adopt
    }

    /// An output whose reader went away is said once, on the other output (stdout's loss on
    /// stderr; stderr's can only be said on stderr, so it is not).
    fn say_broken_outputs(&mut self) {
        for stream in Stream::BOTH {
            if let Some(e) = stream.of_mut(&mut self.outputs).take_error() {
                self.tend_line(&format!(
                    "tend: error: tend's {} cannot be written any more ({e}): what goes there \
                     is dropped from now on; `tend logs` still has the services' lines\n",
                    stream.name()
                ));
            }
        }
    }

    fn source_mut(&mut self, svc: usize, stream: Stream) -> Option<&mut Source> {
        let logs = self.services.get_mut(svc)?;
        Some(stream.of_mut(&mut logs.sources))
    }

    /// Reads one chunk from a service's pipe. Returns false when nothing was there.
    pub fn read(&mut self, svc: usize, stream: Stream, now: Instant) -> bool {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve_exact(READ_CHUNK);
        let got = match self.source_mut(svc, stream) {
            Some(src) => rustix::io::read(&src.read, rustix::buffer::spare_capacity(&mut buf)),
            None => Ok(0),
        };
        // EOF cannot happen (tend holds a write end); EAGAIN means drained.
        if !matches!(got, Ok(n) if n > 0) {
            self.buf = buf;
            return false;
        }
        let time_ms = timestamp::unix_millis();
        let adopt = self.take_chunk(svc, stream, &buf, false, time_ms, true);
        self.buf = match (adopt, self.services.get_mut(svc)) {
            (Some((start, end, lines)), Some(logs)) => {
                logs.ring.adopt(stream, time_ms, buf, (start, end), lines)
            }
            _ => buf,
        };
        if let Some(src) = self.source_mut(svc, stream) {
            src.partial_since = match (src.lines.has_partial(), src.partial_since) {
                // Read while its output is congested (draining an exited instance): no
                // deadline until reading resumes, see `update_pauses`.
                (true, _) if src.paused => None,
                (true, Some(t)) => Some(t),
                (true, None) => Some(now),
                (false, _) => None,
            };
        }
        true
    }

    /// Everything still in a service's pipes, and its partial lines: called when an instance
    /// has exited, so its last words are printed before anything else is said about it.
    pub fn drain_service(&mut self, svc: usize, now: Instant) {
        for stream in Stream::BOTH {
            // Bounded: a pipe holds at most its capacity, and the writer is gone.
            for _ in 0..64 {
                if !self.read(svc, stream, now) {
                    break;
                }
            }
            self.flush_partial(svc, stream);
        }
    }

    fn flush_partial(&mut self, svc: usize, stream: Stream) {
        self.take_lines(svc, stream, &[], true);
        if let Some(src) = self.source_mut(svc, stream) {
            src.partial_since = None;
        }
    }

    /// One of tend's own diagnostic lines (`tend: LEVEL: ...` with its newline), queued on
    /// stderr between whole service lines, after the time with `log-timestamps`. In the JSON
    /// format it is an object like a service's line, with `"service":"tend"`, so that a
    /// collector reading tend's output as JSON gets nothing else.
    pub fn tend_line(&mut self, line: &str) {
        let out = Stream::Stderr.of_mut(&mut self.outputs);
        let stamp = self.style.timestamps.then(timestamp::now_rfc3339);
        match self.style.format {
            LogFormat::Prefixed => {
                // With log-timestamps, tend's own lines carry the time as service lines do.
                if let Some(stamp) = &stamp {
                    out.push_line(stamp.as_bytes(), b" ");
                }
                out.push(line.as_bytes());
            }
            LogFormat::Json => {
                let mut json = json_line::head(stamp.as_deref(), "tend", "stderr");
                json_line::escape_into(&mut json, line.trim_end_matches('\n').as_bytes());
                json.extend_from_slice(json_line::TAIL);
                out.push(&json);
            }
        }
        let _ = out.flush();
    }

    /// Writes as much queued output as the reader takes now.
    pub fn write_out(&mut self, stream: Stream) {
        if stream.of_mut(&mut self.outputs).flush().is_err() {
            self.say_broken_outputs();
        }
    }

    pub fn pending(&self, stream: Stream) -> bool {
        stream.of(&self.outputs).pending() > 0
    }

    pub fn congested(&self, stream: Stream) -> bool {
        stream.of(&self.outputs).congested()
    }

    /// Sources whose paused state must change.
    ///
    /// A paused source's partial line waits without a deadline: its writer may well have the
    /// rest ready, held back only because tend stopped reading (invariant 8). Once reading
    /// resumes, the partial line gets the whole delay again.
    pub fn update_pauses(&mut self, now: Instant) -> Vec<PauseChange> {
        let mut changes = Vec::new();
        let congested = Stream::BOTH.map(|stream| self.congested(stream));
        // Called on every wake-up: only a change of congestion (or new sources) can change
        // a pause, so most calls need not look at every source.
        if self.pauses_match == Some(congested) {
            return changes;
        }
        self.pauses_match = Some(congested);
        for (svc, logs) in self.services.iter_mut().enumerate() {
            for stream in Stream::BOTH {
                let src = stream.of_mut(&mut logs.sources);
                let paused = *stream.of(&congested);
                if src.paused != paused {
                    src.paused = paused;
                    src.partial_since = (!paused && src.lines.has_partial()).then_some(now);
                    changes.push(PauseChange {
                        svc,
                        stream,
                        paused,
                    });
                }
            }
        }
        changes
    }

    /// When the oldest waiting partial line is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.services
            .iter()
            .flat_map(|logs| &logs.sources)
            .filter_map(|s| s.partial_since)
            .min()
            .map(|t| t + PARTIAL_LINE_DELAY)
    }

    /// Partial lines whose writer went quiet are written as they are. A due line is flushed
    /// only when tend reads its pipe and finds nothing more: bytes still waiting there (a
    /// wake-up that did not get to every ready pipe) mean the writer did not stop mid-line.
    pub fn on_timeout(&mut self, now: Instant) {
        for svc in 0..self.services.len() {
            for stream in Stream::BOTH {
                let due = self
                    .source_mut(svc, stream)
                    .and_then(|src| src.partial_since)
                    .is_some_and(|t| t + PARTIAL_LINE_DELAY <= now);
                // A congested output pauses the source at the next wake-up; until then its
                // line waits too.
                if !due || self.congested(stream) {
                    continue;
                }
                if self.read(svc, stream, now) {
                    if let Some(src) = self.source_mut(svc, stream) {
                        src.partial_since = src.lines.has_partial().then_some(now);
                    }
                } else {
                    self.flush_partial(svc, stream);
                }
            }
        }
    }

    /// At exit: read what is left and write everything, waiting up to `limit` for a slow reader.
    pub fn finish(&mut self, limit: Duration) {
        let now = Instant::now();
        for svc in 0..self.services.len() {
            self.drain_service(svc, now);
        }
        let deadline = now + limit;
        for stream in Stream::BOTH {
            while self.pending(stream) && Instant::now() < deadline {
                self.write_out(stream);
                if let (true, Some(fd)) = (self.pending(stream), self.output_fd(stream)) {
                    let mut fds = [rustix::event::PollFd::new(
                        &fd,
                        rustix::event::PollFlags::OUT,
                    )];
                    let left = deadline.saturating_duration_since(Instant::now());
                    let ts = rustix::event::Timespec {
                        tv_sec: left.as_secs() as i64,
                        tv_nsec: i64::from(left.subsec_nanos()),
                    };
                    let _ = rustix::event::poll(&mut fds, Some(&ts));
                }
            }
        }
    }
}

fn source() -> io::Result<Source> {
    let (read, write) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )?;
    // The service's end must block like any ordinary stdout: only tend's end is non-blocking.
    let flags = rustix::fs::fcntl_getfl(&write)?;
    rustix::fs::fcntl_setfl(&write, flags - rustix::fs::OFlags::NONBLOCK)?;
    Ok(Source {
        read,
        write,
        lines: LineBuffer::default(),
        partial_since: None,
        paused: false,
    })
}

#[cfg(test)]
mod tests;
