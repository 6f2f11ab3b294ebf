//! The incremental decoder behind [`super::MessageDecoder`].
//!
//! Design notes:
//! - Header bytes are scanned once with a tiny terminator state machine ([`TermScan`]), so a
//!   header block arriving one byte at a time costs linear time; httparse runs once per block.
//!   When a whole block sits inside one `feed` it is parsed in place without copying.
//! - Body bytes are handed out as slices of the caller's buffer; only chunk framing state is kept.
//! - Resynchronisation looks at the first few bytes of each line through a fixed-size probe, so
//!   skipping garbage needs no buffer.

use std::collections::VecDeque;

/// Whether a decoder reads requests (client to server) or responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

/// Size limits: a header block larger than `max_header_bytes` is an error (HTTP 431/413 for the
/// listener), never an unbounded buffer.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// A parsed start line and header block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// Request method (requests only).
    pub method: Option<String>,
    /// Request target (requests only).
    pub path: Option<String>,
    /// Status code (responses only).
    pub status: Option<u16>,
    /// Reason phrase (responses only).
    pub reason: Option<String>,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Headers in order, names as sent, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    /// Length of the start line and header block including the final CRLFCRLF.
    pub header_bytes: usize,
}

impl Head {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True for a 1xx response other than 101: an interim head that gets no `End` and is followed
    /// by another head answering the same request.
    pub fn is_interim(&self) -> bool {
        matches!(self.status, Some(s) if (100..200).contains(&s) && s != 101)
    }
}

/// Why a message could not be framed. Carries the stream offset so the diagnostic is located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset} of the stream: {message}")]
pub struct HttpError {
    /// Offset in this direction's byte stream (gaps counted) where the problem was found.
    pub offset: u64,
    pub message: String,
}

/// What the decoder found.
///
/// Sequence per message: `Head`, then zero or more `Body`/`Missing`, then exactly one of `End`,
/// `Incomplete` or `Error`. Exceptions: an interim (1xx except 101) response `Head` is followed by
/// nothing of its own (the next event is the next `Head`), and an `Error` can also come without a
/// `Head` (unparsable header block, garbage).
#[derive(Debug, PartialEq, Eq)]
pub enum HttpEvent<'a> {
    /// A complete start line and header block. For responses, a 1xx status is an interim head:
    /// it is followed by another `Head` (the final one) for the same request.
    ///
    /// Interim heads (1xx other than 101, see [`Head::is_interim`]) get no `End`: pair only final
    /// heads with requests. `101 Switching Protocols` and a 2xx answer to `CONNECT` are final:
    /// they get `End { body_bytes: 0 }` and the rest of the stream is another protocol, which the
    /// decoder then ignores (no further events).
    Head(Head),
    /// Decoded body bytes (chunk framing removed), in order.
    Body(&'a [u8]),
    /// The body has a hole of this many bytes (capture gap inside a body).
    Missing(u64),
    /// The message (head and body) is complete.
    End {
        /// Decoded body length including missing bytes.
        body_bytes: u64,
    },
    /// The stream cannot be framed here (bad start line, bad Content-Length, bad chunk size,
    /// header block too large, gap inside a header). The current message, if any, is abandoned;
    /// the decoder skips to the next plausible start line.
    Error(HttpError),
    /// The stream ended (or a gap hit the header block) in the middle of a message: the message is
    /// incomplete. `body_bytes` received so far (bytes reported as `Missing` included).
    Incomplete { body_bytes: u64 },
}

/// Bytes of a line looked at to decide whether it is a start line.
const PROBE_MAX: usize = 24;
/// Longest chunk-size line (size, extensions) accepted.
const CHUNK_LINE_MAX: usize = 4096;
/// Most request methods remembered for response framing.
const MAX_PENDING_METHODS: usize = 1024;
/// A head buffer that grew beyond this is freed rather than kept for the next message.
const KEEP_HEAD_CAPACITY: usize = 16 * 1024;

/// Methods that resynchronisation accepts as the start of a request line.
const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "M-SEARCH",
];

/// How the answered request's method affects response framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqMethod {
    Head,
    Connect,
    Other,
}

/// Finds the empty line ending a header block, across `feed` boundaries, one pass per byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum TermScan {
    #[default]
    Other,
    /// Last byte was LF.
    Lf,
    /// Last bytes were LF CR.
    LfCr,
}

impl TermScan {
    /// Returns the index just past the block's final LF, if `data` completes the block.
    fn scan(&mut self, data: &[u8]) -> Option<usize> {
        for (i, &b) in data.iter().enumerate() {
            *self = match (b, *self) {
                (b'\n', TermScan::Lf | TermScan::LfCr) => {
                    *self = TermScan::Other;
                    return Some(i + 1);
                }
                (b'\n', _) => TermScan::Lf,
                (b'\r', TermScan::Lf) => TermScan::LfCr,
                _ => TermScan::Other,
            };
        }
        None
    }
}

/// Verdict on the first bytes of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Match,
    /// Not a start line; the index is the byte that decided it.
    NoMatch(usize),
    NeedMore,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Does `p` (the first bytes of a line) look like a start line? `strict` is used when hunting for
/// a message in unknown data (known methods only); otherwise any token is let through to httparse
/// so its error message can say what is wrong. Decided byte by byte, so a verdict on a prefix
/// never changes when more bytes arrive; never `NeedMore` once `p` holds `PROBE_MAX` bytes.
fn classify(kind: Kind, strict: bool, p: &[u8]) -> Probe {
    match kind {
        Kind::Response => {
            let pat: &[u8] = if strict { b"HTTP/1." } else { b"HTTP/" };
            for (i, (b, want)) in p.iter().zip(pat).enumerate() {
                if b != want {
                    return Probe::NoMatch(i);
                }
            }
            if p.len() >= pat.len() {
                Probe::Match
            } else {
                Probe::NeedMore
            }
        }
        Kind::Request if strict => classify_request_strict(p),
        Kind::Request => {
            for (i, &b) in p.iter().enumerate().take(PROBE_MAX) {
                if b == b' ' && i > 0 {
                    return Probe::Match;
                }
                if !is_tchar(b) {
                    return Probe::NoMatch(i);
                }
            }
            if p.len() >= PROBE_MAX {
                Probe::Match
            } else {
                Probe::NeedMore
            }
        }
    }
}

/// `METHOD SP` then `/`, `http`, `*` (OPTIONS) or an authority (CONNECT).
fn classify_request_strict(p: &[u8]) -> Probe {
    let mut method: Option<&[u8]> = None;
    for (i, &b) in p.iter().enumerate().take(PROBE_MAX) {
        let Some(m) = method else {
            let so_far = p.get(..=i).unwrap_or_default();
            if b == b' ' {
                let name = p.get(..i).unwrap_or_default();
                if METHODS.iter().any(|k| k.as_bytes() == name) {
                    method = Some(name);
                    continue;
                }
                return Probe::NoMatch(i);
            }
            if !METHODS.iter().any(|k| k.as_bytes().starts_with(so_far)) {
                return Probe::NoMatch(i);
            }
            continue;
        };
        let j = i.saturating_sub(m.len() + 1);
        if j == 0 {
            match b {
                b'/' => return Probe::Match,
                b'*' if m == b"OPTIONS" => return Probe::Match,
                _ if m == b"CONNECT" && (b.is_ascii_alphanumeric() || b == b'[') => {
                    return Probe::Match
                }
                b'h' => {}
                _ => return Probe::NoMatch(i),
            }
        } else {
            if b"http".get(j) != Some(&b) {
                return Probe::NoMatch(i);
            }
            if j == 3 {
                return Probe::Match;
            }
        }
    }
    if p.len() >= PROBE_MAX {
        Probe::NoMatch(PROBE_MAX - 1)
    } else {
        Probe::NeedMore
    }
}

/// Discarding bytes until a line that looks like a start line.
#[derive(Debug, Clone)]
struct Resync {
    /// The next byte begins a line.
    at_line_start: bool,
    /// First bytes of the current line (only while undecided, so always fewer than `PROBE_MAX`).
    probe: [u8; PROBE_MAX],
    probe_len: usize,
    /// Report the skipped bytes as "stream does not start with ..." (start of stream only).
    report: bool,
    first_skip: Option<u64>,
    skipped: u64,
}

impl Resync {
    fn new(at_line_start: bool, report: bool) -> Self {
        Resync {
            at_line_start,
            probe: [0; PROBE_MAX],
            probe_len: 0,
            report,
            first_skip: None,
            skipped: 0,
        }
    }

    /// `n` bytes starting at stream offset `at` were thrown away.
    fn skip(&mut self, at: u64, n: usize) {
        if n > 0 && self.first_skip.is_none() {
            self.first_skip = Some(at);
        }
        self.skipped = self.skipped.saturating_add(n as u64);
    }
}

/// Chunked body framing (RFC 9112 section 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size; `start` is the offset of the size line.
    Size {
        value: u64,
        digits: usize,
        line: usize,
        start: u64,
    },
    /// After the size: whitespace and chunk extensions up to the line end.
    Ext {
        value: u64,
        line: usize,
        start: u64,
    },
    /// Saw CR ending the size line.
    SizeLf {
        value: u64,
        start: u64,
    },
    Data {
        remaining: u64,
    },
    /// Expecting the CRLF after chunk data.
    DataCr,
    DataLf,
    /// After the last chunk: trailer lines up to an empty line.
    Trailer {
        line: usize,
        total: usize,
    },
}

impl Chunk {
    fn size_line(start: u64) -> Self {
        Chunk::Size {
            value: 0,
            digits: 0,
            line: 0,
            start,
        }
    }
}

enum ChunkOutcome {
    /// All input consumed, message not finished.
    More,
    /// The message ended after `used` bytes.
    End { used: usize },
    /// Framing broke; `used` bytes were consumed (the offending byte is not).
    Error {
        used: usize,
        offset: u64,
        message: String,
        line_start: bool,
    },
}

impl Chunk {
    /// Runs the chunk framing over `rest` (which starts at stream offset `base`).
    fn run(
        &mut self,
        rest: &[u8],
        base: u64,
        body_bytes: &mut u64,
        max_trailer: usize,
        sink: &mut dyn FnMut(HttpEvent<'_>),
    ) -> ChunkOutcome {
        let mut i = 0usize;
        while let Some(tail) = rest.get(i..).filter(|t| !t.is_empty()) {
            if let Chunk::Data { remaining } = self {
                let take = usize::try_from(*remaining).map_or(tail.len(), |r| r.min(tail.len()));
                let (data, _) = tail.split_at(take);
                *remaining = remaining.saturating_sub(take as u64);
                *body_bytes = body_bytes.saturating_add(take as u64);
                i += take;
                if *remaining == 0 {
                    *self = Chunk::DataCr;
                }
                sink(HttpEvent::Body(data));
                continue;
            }
            let b = tail.first().copied().unwrap_or(0);
            let off = base.saturating_add(i as u64);
            let size_error = |line: usize, start: u64, message: String| ChunkOutcome::Error {
                used: i,
                offset: start,
                message,
                line_start: line == 0,
            };
            match *self {
                Chunk::Size {
                    value,
                    digits,
                    line,
                    start,
                } => {
                    if line >= CHUNK_LINE_MAX {
                        return size_error(line, start, chunk_line_too_long());
                    }
                    if let Some(d) = (b as char).to_digit(16) {
                        let Some(v) = value.checked_mul(16).and_then(|v| v.checked_add(d.into()))
                        else {
                            return size_error(
                                line,
                                start,
                                "chunk size does not fit in 64 bits".into(),
                            );
                        };
                        *self = Chunk::Size {
                            value: v,
                            digits: digits + 1,
                            line: line + 1,
                            start,
                        };
                    } else if digits == 0 {
                        return size_error(
                            line,
                            start,
                            format!(
                                "bad chunk size: expected a hex digit, found {}",
                                show_byte(b)
                            ),
                        );
                    } else {
                        match b {
                            b' ' | b'\t' | b';' => {
                                *self = Chunk::Ext {
                                    value,
                                    line: line + 1,
                                    start,
                                }
                            }
                            b'\r' => *self = Chunk::SizeLf { value, start },
                            b'\n' => *self = Chunk::after_size(value),
                            _ => {
                                return size_error(
                                    line,
                                    start,
                                    format!(
                                        "bad chunk size: unexpected {} after the size",
                                        show_byte(b)
                                    ),
                                )
                            }
                        }
                    }
                }
                Chunk::Ext { value, line, start } => match b {
                    b'\r' => *self = Chunk::SizeLf { value, start },
                    b'\n' => *self = Chunk::after_size(value),
                    _ if line >= CHUNK_LINE_MAX => {
                        return size_error(line, start, chunk_line_too_long())
                    }
                    _ => {
                        *self = Chunk::Ext {
                            value,
                            line: line + 1,
                            start,
                        }
                    }
                },
                Chunk::SizeLf { value, start } => {
                    if b != b'\n' {
                        return size_error(
                            1,
                            start,
                            "bad chunk size line: CR not followed by LF".into(),
                        );
                    }
                    *self = Chunk::after_size(value);
                }
                Chunk::DataCr | Chunk::DataLf => match (b, &*self) {
                    (b'\r', Chunk::DataCr) => *self = Chunk::DataLf,
                    (b'\n', _) => *self = Chunk::size_line(off.saturating_add(1)),
                    _ => {
                        return ChunkOutcome::Error {
                            used: i,
                            offset: off,
                            message: format!(
                                "chunk data not followed by CRLF (found {}): chunk size wrong?",
                                show_byte(b)
                            ),
                            line_start: false,
                        }
                    }
                },
                Chunk::Trailer { line, total } => {
                    let total = total + 1;
                    if total > max_trailer {
                        return ChunkOutcome::Error {
                            used: i,
                            offset: off,
                            message: format!("trailer section larger than {max_trailer} bytes"),
                            line_start: false,
                        };
                    }
                    match b {
                        b'\n' if line == 0 => return ChunkOutcome::End { used: i + 1 },
                        b'\n' => *self = Chunk::Trailer { line: 0, total },
                        b'\r' => *self = Chunk::Trailer { line, total },
                        _ => {
                            *self = Chunk::Trailer {
                                line: line + 1,
                                total,
                            }
                        }
                    }
                }
                Chunk::Data { .. } => {}
            }
            i += 1;
        }
        ChunkOutcome::More
    }

    fn after_size(value: u64) -> Self {
        if value == 0 {
            Chunk::Trailer { line: 0, total: 0 }
        } else {
            Chunk::Data { remaining: value }
        }
    }
}

fn chunk_line_too_long() -> String {
    format!("chunk size line longer than {CHUNK_LINE_MAX} bytes")
}

fn show_byte(b: u8) -> String {
    format!("'{}'", b.escape_ascii())
}

/// What the decoder is doing.
#[derive(Debug, Clone)]
enum State {
    /// Between messages or reading a header block (`head_buf` holds what arrived so far).
    Head,
    /// Content-Length body; never constructed with 0.
    Length {
        remaining: u64,
    },
    Chunked(Chunk),
    /// Body delimited by the end of the stream.
    Close,
    Resync(Resync),
    /// After 101 or CONNECT 2xx: another protocol; ignored.
    Opaque,
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// Incremental HTTP/1.x decoder for one direction of one connection.
///
/// Memory is bounded by `Limits::max_header_bytes` (the head buffer) plus a small fixed state and a
/// queue of at most 1024 pending request methods.
#[derive(Debug)]
pub struct MessageDecoder {
    kind: Kind,
    limits: Limits,
    offset: u64,
    state: State,
    /// Header bytes of the message being read (only those not yet parsed).
    head_buf: Vec<u8>,
    /// Stream offset of the first byte of the current head.
    head_start: u64,
    /// The current head's first line has passed [`classify`].
    head_probe_ok: bool,
    head_scan: TermScan,
    /// Nothing has been decoded yet: a stream that does not begin with a start line is reported
    /// once as garbage.
    garbage_check: bool,
    /// Body bytes of the current message (received plus missing).
    body_bytes: u64,
    methods: VecDeque<ReqMethod>,
}

impl MessageDecoder {
    pub fn new(kind: Kind, limits: Limits) -> Self {
        MessageDecoder {
            kind,
            limits,
            offset: 0,
            state: State::Head,
            head_buf: Vec::new(),
            head_start: 0,
            head_probe_ok: false,
            head_scan: TermScan::default(),
            garbage_check: true,
            body_bytes: 0,
            methods: VecDeque::new(),
        }
    }

    /// Responses only: tell the decoder the method of the request the next final response answers
    /// (HEAD and CONNECT change how its body is framed). Call once per request, in order.
    ///
    /// Ignored on a request decoder. At most 1024 methods wait; later ones are dropped (their
    /// responses are then framed as answers to GET).
    pub fn expect_response_to(&mut self, method: &str) {
        if self.kind != Kind::Response || self.methods.len() >= MAX_PENDING_METHODS {
            return;
        }
        let m = if method.eq_ignore_ascii_case("HEAD") {
            ReqMethod::Head
        } else if method.eq_ignore_ascii_case("CONNECT") {
            ReqMethod::Connect
        } else {
            ReqMethod::Other
        };
        self.methods.push_back(m);
    }

    /// Feed the next bytes of the stream.
    pub fn feed(&mut self, data: &[u8], sink: &mut dyn FnMut(HttpEvent<'_>)) {
        let mut pos = 0usize;
        let mut stalls = 0u32;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            let used = self.step(rest, sink).min(rest.len());
            pos += used;
            self.offset = self.offset.saturating_add(used as u64);
            if used == 0 {
                // Every zero-length step changes state towards one that consumes; a stall would
                // be a bug, so fail loudly in tests and degrade to skipping in release builds.
                stalls += 1;
                debug_assert!(
                    stalls < 8,
                    "http decoder made no progress in state {:?}",
                    self.state
                );
                if stalls >= 8 {
                    self.offset = self.offset.saturating_add(rest.len() as u64);
                    self.enter_resync(false);
                    return;
                }
            } else {
                stalls = 0;
            }
        }
    }

    /// `bytes` of the stream are missing (capture gap). Inside a Content-Length or chunk body this
    /// is `Missing` and framing continues; elsewhere the current message is `Incomplete` and the
    /// decoder resynchronises on the next start line.
    ///
    /// Details: a gap that runs past the end of a Content-Length body ends that message (`End`)
    /// and the rest of the gap is treated as a gap between messages. In a chunked body, a gap
    /// within the current chunk's data keeps framing; a gap reaching chunk framing gives
    /// `Missing(bytes)` then `Incomplete`. A gap in a close-delimited body is just `Missing`.
    pub fn gap(&mut self, bytes: u64, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        if bytes == 0 {
            return;
        }
        let at = self.offset;
        self.offset = self.offset.saturating_add(bytes);
        match &mut self.state {
            State::Head => {
                if self.head_buf.is_empty() {
                    let report = std::mem::replace(&mut self.garbage_check, false);
                    self.enter_resync_with(Resync::new(true, report));
                } else {
                    self.garbage_check = false;
                    sink(HttpEvent::Incomplete { body_bytes: 0 });
                    self.enter_resync(true);
                }
            }
            State::Length { remaining } => {
                let missing = bytes.min(*remaining);
                *remaining -= missing;
                let done = *remaining == 0;
                self.body_bytes = self.body_bytes.saturating_add(missing);
                sink(HttpEvent::Missing(missing));
                if done {
                    sink(HttpEvent::End {
                        body_bytes: self.body_bytes,
                    });
                    if bytes > missing {
                        self.enter_resync(true);
                    } else {
                        self.state = State::Head;
                    }
                }
            }
            State::Chunked(Chunk::Data { remaining }) if bytes <= *remaining => {
                *remaining -= bytes;
                if *remaining == 0 {
                    self.state = State::Chunked(Chunk::DataCr);
                }
                self.body_bytes = self.body_bytes.saturating_add(bytes);
                sink(HttpEvent::Missing(bytes));
            }
            State::Chunked(_) => {
                self.body_bytes = self.body_bytes.saturating_add(bytes);
                sink(HttpEvent::Missing(bytes));
                sink(HttpEvent::Incomplete {
                    body_bytes: self.body_bytes,
                });
                self.enter_resync(true);
            }
            State::Close => {
                self.body_bytes = self.body_bytes.saturating_add(bytes);
                sink(HttpEvent::Missing(bytes));
            }
            State::Resync(rs) => {
                let pending = rs.probe_len;
                rs.skip(at.saturating_sub(pending as u64), pending);
                rs.probe_len = 0;
                rs.at_line_start = true;
            }
            State::Opaque => {}
        }
    }

    /// The stream ended (FIN, RST or end of capture). A body delimited by close ends here
    /// (`End`); a message cut in the middle is `Incomplete`.
    ///
    /// Garbage skipped at the start of the stream with no start line after it is reported here.
    /// The decoder is then reset to idle (feeding more would start a fresh message).
    pub fn eof(&mut self, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        match &self.state {
            State::Head if !self.head_buf.is_empty() => {
                sink(HttpEvent::Incomplete { body_bytes: 0 });
            }
            State::Head | State::Opaque => {}
            State::Length { .. } | State::Chunked(_) => {
                sink(HttpEvent::Incomplete {
                    body_bytes: self.body_bytes,
                });
            }
            State::Close => sink(HttpEvent::End {
                body_bytes: self.body_bytes,
            }),
            State::Resync(rs) => {
                let pending = rs.probe_len as u64;
                let skipped = rs.skipped.saturating_add(pending);
                if rs.report && skipped > 0 {
                    let at = rs.first_skip.unwrap_or(self.offset.saturating_sub(pending));
                    let message = self.garbage_message(skipped);
                    self.error(at, message, sink);
                }
            }
        }
        self.clear_head();
        self.state = State::Head;
    }

    /// True when the decoder is between messages (nothing half-read).
    ///
    /// Also true while skipping garbage and after a protocol switch.
    pub fn is_idle(&self) -> bool {
        match self.state {
            State::Head => self.head_buf.is_empty(),
            State::Resync(_) | State::Opaque => true,
            State::Length { .. } | State::Chunked(_) | State::Close => false,
        }
    }

    /// Total bytes of the stream seen so far (gaps included).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Processes a prefix of `rest` (at stream offset `self.offset`); returns the bytes consumed.
    /// Zero only together with a state change towards a consuming state.
    fn step(&mut self, rest: &[u8], sink: &mut dyn FnMut(HttpEvent<'_>)) -> usize {
        match &mut self.state {
            State::Head => self.step_head(rest, sink),
            State::Length { remaining } => {
                let take = usize::try_from(*remaining).map_or(rest.len(), |r| r.min(rest.len()));
                let (body, _) = rest.split_at(take);
                *remaining = remaining.saturating_sub(take as u64);
                let done = *remaining == 0;
                self.body_bytes = self.body_bytes.saturating_add(take as u64);
                sink(HttpEvent::Body(body));
                if done {
                    sink(HttpEvent::End {
                        body_bytes: self.body_bytes,
                    });
                    self.state = State::Head;
                }
                take
            }
            State::Chunked(chunk) => {
                let max = self.limits.max_header_bytes;
                match chunk.run(rest, self.offset, &mut self.body_bytes, max, sink) {
                    ChunkOutcome::More => rest.len(),
                    ChunkOutcome::End { used } => {
                        sink(HttpEvent::End {
                            body_bytes: self.body_bytes,
                        });
                        self.state = State::Head;
                        used
                    }
                    ChunkOutcome::Error {
                        used,
                        offset,
                        message,
                        line_start,
                    } => {
                        self.error(offset, message, sink);
                        self.enter_resync(line_start);
                        used
                    }
                }
            }
            State::Close => {
                self.body_bytes = self.body_bytes.saturating_add(rest.len() as u64);
                sink(HttpEvent::Body(rest));
                rest.len()
            }
            State::Resync(_) => self.step_resync(rest, sink),
            State::Opaque => rest.len(),
        }
    }

    fn step_head(&mut self, rest: &[u8], sink: &mut dyn FnMut(HttpEvent<'_>)) -> usize {
        if self.head_buf.is_empty() {
            if !self.head_probe_ok {
                // Empty lines between messages are allowed (RFC 9112 section 2.2).
                let blank = rest
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                if blank > 0 {
                    return blank;
                }
            }
            self.head_start = self.offset;
            self.head_scan = TermScan::default();
        }

        if !self.head_probe_ok {
            let mut probe = [0u8; PROBE_MAX];
            let have = self.head_buf.len().min(PROBE_MAX);
            let take = (PROBE_MAX - have).min(rest.len());
            let (dst_old, dst_new) = probe.split_at_mut(have);
            dst_old.copy_from_slice(self.head_buf.get(..have).unwrap_or_default());
            if let (Some(dst), Some(src)) = (dst_new.get_mut(..take), rest.get(..take)) {
                dst.copy_from_slice(src);
            }
            let line = probe.get(..have + take).unwrap_or_default();
            match classify(self.kind, self.garbage_check, line) {
                Probe::Match => self.head_probe_ok = true,
                Probe::NeedMore => {}
                Probe::NoMatch(at) => {
                    let used = (at + 1).saturating_sub(have).min(rest.len());
                    let line_start = line.get(at) == Some(&b'\n');
                    let start = self.head_start;
                    let skipped = self.head_buf.len() + used;
                    let found = line
                        .get(..=at)
                        .unwrap_or_default()
                        .escape_ascii()
                        .to_string();
                    self.clear_head();
                    if self.garbage_check {
                        self.garbage_check = false;
                        let mut rs = Resync::new(line_start, true);
                        rs.skip(start, skipped);
                        self.enter_resync_with(rs);
                    } else {
                        let what = self.what();
                        self.error(
                            start,
                            format!("expected the start line of an HTTP {what}, found \"{found}\""),
                            sink,
                        );
                        self.enter_resync(line_start);
                    }
                    return used;
                }
            }
        }

        let max = self.limits.max_header_bytes;
        let room = max.saturating_sub(self.head_buf.len());
        let window = rest.get(..room.min(rest.len())).unwrap_or_default();
        match self.head_scan.scan(window) {
            Some(end) => {
                let block = window.get(..end).unwrap_or_default();
                if self.head_buf.is_empty() {
                    self.finish_head(block, sink);
                } else {
                    let mut buf = std::mem::take(&mut self.head_buf);
                    buf.extend_from_slice(block);
                    self.finish_head(&buf, sink);
                    buf.clear();
                    if buf.capacity() <= KEEP_HEAD_CAPACITY {
                        self.head_buf = buf;
                    }
                }
                end
            }
            None if window.len() >= room => {
                let line_start = match window.last() {
                    Some(&b) => b == b'\n',
                    None => self.head_buf.last() == Some(&b'\n'),
                };
                let start = self.head_start;
                self.clear_head();
                self.error(start, format!("header block larger than {max} bytes"), sink);
                self.enter_resync(line_start);
                window.len()
            }
            None => {
                self.head_buf.extend_from_slice(window);
                window.len()
            }
        }
    }

    /// A complete header block (ending with its empty line) arrived: parse it and set up framing.
    fn finish_head(&mut self, block: &[u8], sink: &mut dyn FnMut(HttpEvent<'_>)) {
        let start = self.head_start;
        self.head_probe_ok = false;
        self.head_scan = TermScan::default();
        self.garbage_check = false;
        self.body_bytes = 0;
        self.state = State::Head;
        let head = match parse_head(self.kind, block, self.limits.max_headers) {
            Ok(h) => h,
            Err(message) => {
                self.error(start, message, sink);
                // The block ended with its empty line, so the next byte starts a line.
                self.enter_resync(true);
                return;
            }
        };
        let body_start = start.saturating_add(block.len() as u64);
        let framing = match self.kind {
            Kind::Request => request_framing(&head),
            Kind::Response => {
                let status = head.status.unwrap_or(0);
                if head.is_interim() {
                    sink(HttpEvent::Head(head));
                    return;
                }
                let method = self.methods.pop_front().unwrap_or(ReqMethod::Other);
                if status == 101 || (method == ReqMethod::Connect && (200..300).contains(&status)) {
                    sink(HttpEvent::Head(head));
                    sink(HttpEvent::End { body_bytes: 0 });
                    self.state = State::Opaque;
                    return;
                }
                if method == ReqMethod::Head || status == 204 || status == 304 {
                    Ok(Framing::Length(0))
                } else {
                    response_framing(&head)
                }
            }
        };
        sink(HttpEvent::Head(head));
        match framing {
            Ok(Framing::Length(0)) => sink(HttpEvent::End { body_bytes: 0 }),
            Ok(Framing::Length(n)) => self.state = State::Length { remaining: n },
            Ok(Framing::Chunked) => self.state = State::Chunked(Chunk::size_line(body_start)),
            Ok(Framing::Close) => self.state = State::Close,
            Err(message) => {
                self.error(start, message, sink);
                self.enter_resync(true);
            }
        }
    }

    fn step_resync(&mut self, rest: &[u8], sink: &mut dyn FnMut(HttpEvent<'_>)) -> usize {
        let kind = self.kind;
        let offset = self.offset;
        let State::Resync(rs) = &mut self.state else {
            return 0;
        };
        if !rs.at_line_start {
            let (used, found) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (rest.len(), false),
            };
            rs.skip(offset, used);
            rs.at_line_start = found;
            return used;
        }
        let have = rs.probe_len.min(PROBE_MAX);
        let mut line = rs.probe;
        let take = (PROBE_MAX - have).min(rest.len());
        if let (Some(dst), Some(src)) = (line.get_mut(have..have + take), rest.get(..take)) {
            dst.copy_from_slice(src);
        }
        let line = line.get(..have + take).unwrap_or_default();
        let line_offset = offset.saturating_sub(have as u64);
        match classify(kind, true, line) {
            Probe::Match => {
                let garbage = (rs.report && rs.skipped > 0)
                    .then(|| (rs.first_skip.unwrap_or(line_offset), rs.skipped));
                self.clear_head();
                self.head_buf
                    .extend_from_slice(line.get(..have).unwrap_or_default());
                self.head_start = line_offset;
                self.head_probe_ok = true;
                self.state = State::Head;
                if let Some((at, n)) = garbage {
                    let message = self.garbage_message(n);
                    self.error(at, message, sink);
                }
                0
            }
            Probe::NeedMore => {
                if let (Some(dst), Some(src)) =
                    (rs.probe.get_mut(have..have + take), rest.get(..take))
                {
                    dst.copy_from_slice(src);
                    rs.probe_len = have + take;
                }
                take
            }
            Probe::NoMatch(at) => {
                rs.skip(line_offset, at + 1);
                rs.probe_len = 0;
                rs.at_line_start = line.get(at) == Some(&b'\n');
                (at + 1).saturating_sub(have)
            }
        }
    }

    fn what(&self) -> &'static str {
        match self.kind {
            Kind::Request => "request",
            Kind::Response => "response",
        }
    }

    fn garbage_message(&self, skipped: u64) -> String {
        format!(
            "stream does not start with an HTTP {} ({skipped} bytes skipped)",
            self.what()
        )
    }

    fn error(&mut self, offset: u64, message: String, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        self.garbage_check = false;
        sink(HttpEvent::Error(HttpError { offset, message }));
    }

    fn clear_head(&mut self) {
        self.head_buf.clear();
        self.head_probe_ok = false;
        self.head_scan = TermScan::default();
    }

    fn enter_resync(&mut self, at_line_start: bool) {
        self.enter_resync_with(Resync::new(at_line_start, false));
    }

    fn enter_resync_with(&mut self, rs: Resync) {
        self.clear_head();
        self.state = State::Resync(rs);
    }
}

/// Parses a complete header block with httparse (lenient where devices are known to be sloppy).
fn parse_head(kind: Kind, block: &[u8], max_headers: usize) -> Result<Head, String> {
    // A header line takes at least 3 bytes ("a:\n"), which bounds the array by the block size.
    let slots = max_headers.min(block.len() / 3 + 1);
    let mut headers = vec![httparse::EMPTY_HEADER; slots];
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true);
    let fail = |e: Result<httparse::Status<usize>, httparse::Error>| -> String {
        let what = match kind {
            Kind::Request => "request",
            Kind::Response => "response",
        };
        let first = block.split(|&b| b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        let shown = first.get(..100).unwrap_or(first).escape_ascii();
        match e {
            Err(httparse::Error::TooManyHeaders) => {
                format!("HTTP {what} head has more than {max_headers} header fields")
            }
            Err(e) => format!("malformed HTTP {what} head ({e}), start line \"{shown}\""),
            Ok(_) => format!("malformed HTTP {what} head (cut short), start line \"{shown}\""),
        }
    };
    let convert = |hs: &[httparse::Header<'_>]| -> Vec<(String, String)> {
        hs.iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect()
    };
    match kind {
        Kind::Request => {
            let mut req = httparse::Request::new(&mut headers);
            match config.parse_request(&mut req, block) {
                Ok(httparse::Status::Complete(_)) => Ok(Head {
                    method: req.method.map(str::to_owned),
                    path: req.path.map(str::to_owned),
                    version: req.version.unwrap_or(1),
                    headers: convert(req.headers),
                    header_bytes: block.len(),
                    ..Head::default()
                }),
                other => Err(fail(other)),
            }
        }
        Kind::Response => {
            let mut res = httparse::Response::new(&mut headers);
            match config.parse_response(&mut res, block) {
                Ok(httparse::Status::Complete(_)) => Ok(Head {
                    status: res.code,
                    reason: res.reason.map(str::to_owned),
                    version: res.version.unwrap_or(1),
                    headers: convert(res.headers),
                    header_bytes: block.len(),
                    ..Head::default()
                }),
                other => Err(fail(other)),
            }
        }
    }
}

/// `Some(true)` if Transfer-Encoding is present and its final coding is chunked, `Some(false)` if
/// present otherwise, `None` if absent.
fn transfer_chunked(head: &Head) -> Option<bool> {
    let mut present = false;
    let mut last: Option<&str> = None;
    for (name, value) in &head.headers {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            present = true;
            for coding in value.split(',') {
                let coding = coding.split(';').next().unwrap_or_default().trim();
                if !coding.is_empty() {
                    last = Some(coding);
                }
            }
        }
    }
    present.then(|| last.is_some_and(|c| c.eq_ignore_ascii_case("chunked")))
}

/// All Content-Length values (headers and comma-separated lists) must agree (RFC 9110 8.6).
fn content_length(head: &Head) -> Result<Option<u64>, String> {
    let mut found: Option<u64> = None;
    for (name, value) in &head.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for part in value.split(',') {
            let part = part.trim_matches(|c| c == ' ' || c == '\t');
            if part.starts_with('-') {
                return Err(format!(
                    "negative Content-Length \"{}\"",
                    value.escape_debug()
                ));
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "invalid Content-Length \"{}\"",
                    value.escape_debug()
                ));
            }
            let n: u64 = part
                .parse()
                .map_err(|_| format!("Content-Length {part} does not fit in 64 bits"))?;
            match found {
                Some(f) if f != n => {
                    return Err(format!("conflicting Content-Length values {f} and {n}"))
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// RFC 9112 section 6.3 for requests: chunked, else Content-Length, else no body.
fn request_framing(head: &Head) -> Result<Framing, String> {
    match transfer_chunked(head) {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Err(format!(
            "request Transfer-Encoding \"{}\" does not end in chunked: body length unknown",
            head.header("transfer-encoding")
                .unwrap_or_default()
                .escape_debug()
        )),
        None => Ok(Framing::Length(content_length(head)?.unwrap_or(0))),
    }
}

/// RFC 9112 section 6.3 for responses not already known to be bodiless.
fn response_framing(head: &Head) -> Result<Framing, String> {
    match transfer_chunked(head) {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::Close),
        None => Ok(content_length(head)?.map_or(Framing::Close, Framing::Length)),
    }
}
