//! The incremental decoder behind [`super::MessageDecoder`].
//!
//! Design notes:
//! - Header bytes are scanned once with a tiny terminator state machine ([`TermScan`]), so a
//!   header block arriving one byte at a time costs linear time; httparse runs once per block.
//!   When a whole block sits inside one `feed` it is parsed in place without copying.
//! - Body bytes are handed out as slices of the caller's buffer; only chunk framing state is kept.
//! - The first line of a message is judged through a fixed-size probe of its first bytes
//!   ([`classify`], in `start.rs`).
//! - Out of sync (after garbage, a framing error or a capture gap outside a body), the decoder
//!   looks for a start line anywhere ([`find_start`], in `start.rs`), never inside a framed body.
//!   The bytes kept between feeds while searching are bounded ([`CARRY_MAX`]).
//! - After `101 Switching Protocols` or a CONNECT tunnel, bytes are counted, never parsed.

use std::collections::VecDeque;
use std::mem::MaybeUninit;

use super::error::{ChunkError, FramingError, HttpError, HttpErrorKind};
use super::start::{classify, find_start, Found, Probe, CARRY_MAX, PROBE_MAX, SEARCH_BACK};

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
    /// Stream offset of the head's first byte (capture gaps included). Set by the decoder, so a
    /// response's place in the server's stream can be weighed against how far that stream had
    /// got when each request was sent.
    pub start: u64,
    /// Bytes the capture lost between the previous message and this head, outside any framed
    /// body (gaps the decoder could not frame past). Whole answers may have been there.
    pub lost_before: Option<StreamRange>,
}

/// A range `[start, end)` of stream offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamRange {
    /// First offset in the range.
    pub start: u64,
    /// First offset after it.
    pub end: u64,
}

impl StreamRange {
    /// Bytes of this range that also lie in `[from, to)`.
    pub fn overlap(&self, from: u64, to: u64) -> u64 {
        self.end.min(to).saturating_sub(self.start.max(from))
    }
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
    /// decoder then ignores (no further events). Likewise a `CONNECT` request: `End` at once, and
    /// the rest of the client's stream is treated as tunnel data.
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

/// Longest chunk-size line (size, extensions) accepted.
const CHUNK_LINE_MAX: usize = 4096;
/// Most request methods remembered for response framing.
const MAX_PENDING_METHODS: usize = 1024;
/// A head buffer that grew beyond this is freed rather than kept for the next message.
const KEEP_HEAD_CAPACITY: usize = 16 * 1024;

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

/// Discarding bytes until a start line (see [`find_start`]).
#[derive(Debug, Clone)]
struct Resync {
    /// The first byte of `carry` (or of the next input, when `carry` is empty) begins a line.
    at_line_start: bool,
    /// Bytes a start line may begin in, kept until the next feed decides (at most `CARRY_MAX`).
    carry: Vec<u8>,
    /// Report the skipped bytes as "stream does not start with ..." (start of stream only).
    report: bool,
    first_skip: Option<u64>,
    skipped: u64,
}

impl Resync {
    fn new(at_line_start: bool, report: bool) -> Self {
        Resync {
            at_line_start,
            carry: Vec::new(),
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
        error: ChunkError,
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
            let size_error = |line: usize, start: u64, error: ChunkError| ChunkOutcome::Error {
                used: i,
                offset: start,
                error,
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
                            return size_error(line, start, ChunkError::SizeOverflow);
                        };
                        *self = Chunk::Size {
                            value: v,
                            digits: digits + 1,
                            line: line + 1,
                            start,
                        };
                    } else if digits == 0 {
                        return size_error(line, start, ChunkError::NotHex { found: b });
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
                                return size_error(line, start, ChunkError::AfterSize { found: b })
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
                        return size_error(1, start, ChunkError::CrWithoutLf);
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
                            error: ChunkError::DataNotFollowedByCrlf { found: b },
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
                            error: ChunkError::TrailerTooLarge { max: max_trailer },
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

fn chunk_line_too_long() -> ChunkError {
    ChunkError::LineTooLong {
        max: CHUNK_LINE_MAX,
    }
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
    /// After 101 or CONNECT 2xx: another protocol; counted, never parsed.
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
    /// The current head's complete first line has passed httparse.
    head_line_ok: bool,
    head_scan: TermScan,
    /// Nothing has been decoded yet: a stream that does not begin with a start line is reported
    /// once as garbage.
    garbage_check: bool,
    /// Body bytes of the current message (received plus missing).
    body_bytes: u64,
    methods: VecDeque<ReqMethod>,
    /// Stream bytes after a protocol switch (gaps included).
    opaque_bytes: u64,
    /// Lost bytes outside framed bodies since the last head (their hull), for the next head.
    lost: Option<StreamRange>,
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
            head_line_ok: false,
            head_scan: TermScan::default(),
            garbage_check: true,
            body_bytes: 0,
            methods: VecDeque::new(),
            opaque_bytes: 0,
            lost: None,
        }
    }

    /// For a server reading requests off its own socket: the stream must begin with a start line.
    /// Bytes that cannot begin one are an `Error` at once, and any token is let through as a
    /// method (httparse judges it), instead of the capture default of skipping unknown leading
    /// bytes silently (a capture may begin in the middle of a stream). Call before feeding.
    pub fn require_start_line(&mut self) {
        if self.offset == 0 {
            self.garbage_check = false;
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
    /// The part of the hole outside any framed body is handed to the next head
    /// ([`Head::lost_before`]): whole messages may have been in it.
    pub fn gap(&mut self, bytes: u64, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        if bytes == 0 {
            return;
        }
        let at = self.offset;
        self.offset = self.offset.saturating_add(bytes);
        let end = self.offset;
        // Where whole messages may have been lost: everything in the hole outside a framed body
        // (a cut head counts from its start, since a message began there).
        let lost_from = match &self.state {
            State::Head if !self.head_buf.is_empty() => Some(self.head_start),
            State::Chunked(Chunk::Data { remaining }) if bytes <= *remaining => None,
            State::Head | State::Resync(_) | State::Chunked(_) => Some(at),
            State::Length { remaining } if bytes > *remaining => {
                Some(at.saturating_add(*remaining))
            }
            State::Length { .. } | State::Close | State::Opaque => None,
        };
        if let Some(from) = lost_from {
            self.note_lost(from, end);
        }
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
                // Bytes on both sides of a hole cannot form one line; the next byte after it is
                // taken as a line start (the hole is usually whole segments).
                let pending = rs.carry.len();
                rs.skip(at.saturating_sub(pending as u64), pending);
                rs.carry.clear();
                rs.at_line_start = true;
            }
            State::Opaque => self.opaque_bytes = self.opaque_bytes.saturating_add(bytes),
        }
    }

    /// A hole of unknown length, at most `at_most` bytes (plaintext a TLS decryptor could not
    /// give: records lost across a capture gap, or TLS 1.3 records whose padding is unknown).
    /// No framed body is assumed to span it exactly: the message in progress loses its framing
    /// as after a hole past its end ([`Self::gap`] with more than the body's remaining bytes).
    /// The offset advances by `at_most`, so later positions stay finite: an upper bound, at
    /// most `at_most` past the true plaintext position (a `u64::MAX` gap would pin every later
    /// offset at `u64::MAX`).
    pub fn gap_unknown(&mut self, at_most: u64, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        let at = self.offset;
        let past_body = match &self.state {
            State::Length { remaining } | State::Chunked(Chunk::Data { remaining }) => {
                remaining.saturating_add(1)
            }
            _ => 0,
        };
        self.gap(at_most.max(past_body).max(1), sink);
        let end = at.saturating_add(at_most);
        self.offset = end;
        if let Some(l) = self.lost.as_mut() {
            l.end = l.end.min(end);
            l.start = l.start.min(l.end);
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
                let pending = rs.carry.len() as u64;
                let skipped = rs.skipped.saturating_add(pending);
                if rs.report && skipped > 0 {
                    let at = rs.first_skip.unwrap_or(self.offset.saturating_sub(pending));
                    let kind = self.garbage(skipped);
                    self.error(at, kind, sink);
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

    /// True while hunting for a start line (after garbage, a framing error or a gap it could not
    /// frame past): bytes fed now are skipped.
    pub fn out_of_sync(&self) -> bool {
        matches!(self.state, State::Resync(_))
    }

    /// True while skipping bytes at the start of a capture's stream, before its first start line
    /// (the capture began in the middle of a message).
    pub fn skipping_stream_start(&self) -> bool {
        matches!(&self.state, State::Resync(rs) if rs.report)
    }

    /// Total bytes of the stream seen so far (gaps included).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes held for a header block still being received (at most `Limits::max_header_bytes`)
    /// or for a start line being searched for (at most 8 KiB); body bytes are never held.
    pub fn buffered_bytes(&self) -> usize {
        let carry = match &self.state {
            State::Resync(rs) => rs.carry.len(),
            _ => 0,
        };
        self.head_buf.len() + carry
    }

    /// Bytes of the stream after a protocol switch (`101`, a CONNECT tunnel, or
    /// [`MessageDecoder::switch_protocols`]), capture gaps included: counted, never parsed.
    pub fn opaque_bytes(&self) -> u64 {
        self.opaque_bytes
    }

    /// The other direction answered `101 Switching Protocols`: from here this stream is another
    /// protocol too (WebSocket, h2c, a raw TCP stream), counted and never parsed as HTTP. A
    /// message still being read is `Incomplete`; bytes already held count as switched.
    pub fn switch_protocols(&mut self, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        let held = match &self.state {
            State::Head => self.head_buf.len(),
            State::Resync(rs) => rs.carry.len(),
            State::Opaque => return,
            State::Length { .. } | State::Chunked(_) | State::Close => {
                sink(HttpEvent::Incomplete {
                    body_bytes: self.body_bytes,
                });
                0
            }
        };
        self.opaque_bytes = self.opaque_bytes.saturating_add(held as u64);
        self.clear_head();
        self.state = State::Opaque;
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
                        error,
                        line_start,
                    } => {
                        self.error(offset, error.into(), sink);
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
            State::Opaque => {
                self.opaque_bytes = self.opaque_bytes.saturating_add(rest.len() as u64);
                rest.len()
            }
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
                        let kind = self.kind;
                        self.error(start, HttpErrorKind::NotStartLine { kind, found }, sink);
                        self.enter_resync(line_start);
                    }
                    return used;
                }
            }
        }

        let max = self.limits.max_header_bytes;
        let room = max.saturating_sub(self.head_buf.len());
        let window = rest.get(..room.min(rest.len())).unwrap_or_default();
        if !self.head_line_ok {
            // Check the start line as soon as it is complete, so that a stray text line cannot
            // swallow the next message into one bad header block.
            if let Some(line_end) = window.iter().position(|&b| b == b'\n').map(|e| e + 1) {
                let line = window.get(..line_end).unwrap_or_default();
                let copied = !self.head_buf.is_empty();
                let checked = if copied {
                    self.head_buf.extend_from_slice(line);
                    // The first LF cannot end the block; this only advances the scanner.
                    let _ = self.head_scan.scan(line);
                    check_start_line(self.kind, &self.head_buf)
                } else {
                    check_start_line(self.kind, line)
                };
                match checked {
                    Ok(()) => {
                        self.head_line_ok = true;
                        if copied {
                            return line_end;
                        }
                    }
                    Err(message) => {
                        let start = self.head_start;
                        self.clear_head();
                        self.error(start, message, sink);
                        self.enter_resync(true);
                        return line_end;
                    }
                }
            }
        }
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
                self.error(start, HttpErrorKind::HeadTooLarge { max }, sink);
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
        self.head_line_ok = false;
        self.head_scan = TermScan::default();
        self.garbage_check = false;
        self.body_bytes = 0;
        self.state = State::Head;
        // A head (even one that cannot be read) is the message the loss came before.
        let lost_before = self.lost.take();
        let head = match parse_head(self.kind, block, self.limits.max_headers) {
            Ok(h) => Head {
                start,
                lost_before,
                ..h
            },
            Err(message) => {
                self.error(start, message, sink);
                // The block ended with its empty line, so the next byte starts a line.
                self.enter_resync(true);
                return;
            }
        };
        let body_start = start.saturating_add(block.len() as u64);
        let framing = match self.kind {
            Kind::Request if head.method.as_deref() == Some("CONNECT") => {
                // The bytes after a CONNECT request are tunnel data (or nothing, if refused).
                sink(HttpEvent::Head(head));
                sink(HttpEvent::End { body_bytes: 0 });
                self.state = State::Opaque;
                return;
            }
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
            Err(framing) => {
                self.error(start, HttpErrorKind::Framing(framing), sink);
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
        let mut carry = std::mem::take(&mut rs.carry);
        let carried = carry.len();
        // The carried bytes and the new ones are searched as one run (a copy of at most
        // `CARRY_MAX` bytes plus this feed, only while out of sync).
        if carried > 0 {
            carry.extend_from_slice(rest);
        }
        let window: &[u8] = if carried > 0 { &carry } else { rest };
        let window_offset = offset.saturating_sub(carried as u64);
        let from = carried.saturating_sub(SEARCH_BACK);
        match find_start(kind, window, from, rs.at_line_start) {
            Found::At(at) => {
                rs.skip(window_offset, at);
                let garbage = (rs.report && rs.skipped > 0)
                    .then(|| (rs.first_skip.unwrap_or(window_offset), rs.skipped));
                // The start line may begin in the carried bytes (which hold no line break): they
                // become the start of the head buffer.
                let held = window.get(at..carried).unwrap_or_default().to_vec();
                self.clear_head();
                self.head_buf.extend_from_slice(&held);
                self.head_start = window_offset.saturating_add(at as u64);
                self.head_probe_ok = true;
                self.state = State::Head;
                if let Some((at, n)) = garbage {
                    let kind = self.garbage(n);
                    self.error(at, kind, sink);
                }
                at.saturating_sub(carried)
            }
            Found::Not { keep } => {
                let keep = keep.max(window.len().saturating_sub(CARRY_MAX));
                rs.skip(window_offset, keep);
                if let Some(i) = keep.checked_sub(1) {
                    rs.at_line_start = window.get(i) == Some(&b'\n');
                }
                if carried > 0 {
                    carry.drain(..keep.min(carry.len()));
                } else {
                    carry.extend_from_slice(rest.get(keep..).unwrap_or_default());
                }
                rs.carry = carry;
                rest.len()
            }
        }
    }

    fn garbage(&self, skipped: u64) -> HttpErrorKind {
        HttpErrorKind::Garbage {
            kind: self.kind,
            skipped,
        }
    }

    fn error(&mut self, offset: u64, kind: HttpErrorKind, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        self.garbage_check = false;
        sink(HttpEvent::Error(HttpError { offset, kind }));
    }

    /// Widens the lost hull handed to the next head by `[from, to)`.
    fn note_lost(&mut self, from: u64, to: u64) {
        self.lost = Some(match self.lost {
            Some(l) => StreamRange {
                start: l.start.min(from),
                end: l.end.max(to),
            },
            None => StreamRange {
                start: from,
                end: to,
            },
        });
    }

    fn clear_head(&mut self) {
        self.head_buf.clear();
        self.head_probe_ok = false;
        self.head_line_ok = false;
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

/// httparse as configured for devices' sloppiness (extra spaces, obs-fold in responses).
fn parser_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true);
    config
}

/// Checks a complete first line (`line` ends with LF and holds nothing after it).
fn check_start_line(kind: Kind, line: &[u8]) -> Result<(), HttpErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; 1];
    let config = parser_config();
    let result = match kind {
        Kind::Request => config.parse_request(&mut httparse::Request::new(&mut headers), line),
        Kind::Response => config.parse_response(&mut httparse::Response::new(&mut headers), line),
    };
    match result {
        Ok(_) | Err(httparse::Error::TooManyHeaders) => Ok(()),
        Err(e) => Err(head_error(kind, line, Err(e), 0)),
    }
}

/// The error for a header block httparse rejected, quoting its start line.
fn head_error(
    kind: Kind,
    block: &[u8],
    e: Result<httparse::Status<usize>, httparse::Error>,
    max_headers: usize,
) -> HttpErrorKind {
    let first = block.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let start_line = first.get(..100).unwrap_or(first).escape_ascii().to_string();
    match e {
        Err(httparse::Error::TooManyHeaders) => HttpErrorKind::TooManyHeaders {
            kind,
            max: max_headers,
        },
        Err(e) => HttpErrorKind::MalformedHead {
            kind,
            reason: Some(e),
            start_line,
        },
        Ok(_) => HttpErrorKind::MalformedHead {
            kind,
            reason: None,
            start_line,
        },
    }
}

/// `bytes` as text, invalid UTF-8 replaced. The strict check first: on valid text (nearly every
/// header value) it is several times faster than `from_utf8_lossy`'s chunk iterator.
fn lossy_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Header slots [`parse_head`] keeps on the stack (2 KiB); larger limits allocate.
const STACK_HEADERS: usize = 64;

/// Parses a complete header block with httparse.
fn parse_head(kind: Kind, block: &[u8], max_headers: usize) -> Result<Head, HttpErrorKind> {
    // A header line takes at least 3 bytes ("a:\n"), which bounds the array by the block size.
    let slots = max_headers.min(block.len() / 3 + 1);
    // httparse's obs-fold option is for responses only: a request is unfolded into a copy.
    let unfolded = match kind {
        Kind::Request => unfold(block),
        Kind::Response => None,
    };
    let buf = unfolded.as_deref().unwrap_or(block);
    // Header slots left uninitialised, on the stack for usual heads: a zero-filled Vec per head
    // (up to max_headers x 32 bytes) was the largest allocation per small exchange.
    let mut on_stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut on_heap = Vec::new();
    let headers: &mut [MaybeUninit<httparse::Header<'_>>] = match on_stack.get_mut(..slots) {
        Some(h) => h,
        None => {
            on_heap.resize_with(slots, MaybeUninit::uninit);
            &mut on_heap
        }
    };
    let config = parser_config();
    let fail = |e| head_error(kind, block, e, max_headers);
    let convert = |hs: &[httparse::Header<'_>]| -> Vec<(String, String)> {
        hs.iter()
            .map(|h| (h.name.to_owned(), lossy_string(h.value)))
            .collect()
    };
    match kind {
        Kind::Request => {
            let mut req = httparse::Request::new(&mut []);
            match config.parse_request_with_uninit_headers(&mut req, buf, headers) {
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
            let mut res = httparse::Response::new(&mut []);
            match config.parse_response_with_uninit_headers(&mut res, buf, headers) {
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

/// The header block with each obs-fold (a line break followed by SP or HTAB, continuing the header
/// field above it) replaced by spaces, as RFC 9112 section 5.2 lets a recipient do; same length,
/// so offsets hold. None when there is no fold (the common case: one memchr pass, no copy). A
/// line of whitespace right after the start line is no fold and is left for httparse to reject.
fn unfold(block: &[u8]) -> Option<Vec<u8>> {
    let first_lf = memchr::memchr(b'\n', block)?;
    let is_fold = |i: usize| {
        i > first_lf
            && matches!(block.get(i + 1), Some(b' ' | b'\t'))
            && block.get(i + 2..).is_some_and(|rest| {
                // Not the final empty line: the fold must carry more than whitespace.
                rest.iter()
                    .take_while(|&&b| b != b'\n')
                    .any(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
            })
    };
    let folds: Vec<usize> = memchr::memchr_iter(b'\n', block)
        .filter(|&i| is_fold(i))
        .collect();
    if folds.is_empty() {
        return None;
    }
    let mut out = block.to_vec();
    for i in folds {
        if let Some(b) = out.get_mut(i) {
            *b = b' ';
        }
        if let Some(b) = i.checked_sub(1).and_then(|j| out.get_mut(j)) {
            if *b == b'\r' {
                *b = b' ';
            }
        }
    }
    Some(out)
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
fn content_length(head: &Head) -> Result<Option<u64>, FramingError> {
    let mut found: Option<u64> = None;
    for (name, value) in &head.headers {
        if !name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        for part in value.split(',') {
            let part = part.trim_matches(|c| c == ' ' || c == '\t');
            if part.starts_with('-') {
                return Err(FramingError::NegativeContentLength {
                    value: value.clone(),
                });
            }
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FramingError::InvalidContentLength {
                    value: value.clone(),
                });
            }
            let n: u64 = part
                .parse()
                .map_err(|_| FramingError::ContentLengthOverflow {
                    value: part.to_string(),
                })?;
            match found {
                Some(f) if f != n => {
                    return Err(FramingError::ConflictingContentLength {
                        first: f,
                        second: n,
                    })
                }
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// RFC 9112 section 6.3 for requests: chunked, else Content-Length, else no body.
fn request_framing(head: &Head) -> Result<Framing, FramingError> {
    match transfer_chunked(head) {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Err(FramingError::RequestTransferEncoding {
            value: head
                .header("transfer-encoding")
                .unwrap_or_default()
                .to_string(),
        }),
        None => Ok(Framing::Length(content_length(head)?.unwrap_or(0))),
    }
}

/// RFC 9112 section 6.3 for responses not already known to be bodiless.
fn response_framing(head: &Head) -> Result<Framing, FramingError> {
    match transfer_chunked(head) {
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::Close),
        None => Ok(content_length(head)?.map_or(Framing::Close, Framing::Length)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Owned event with consecutive `Body` slices merged, so runs with different splits compare.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Head(Head),
        Body(Vec<u8>),
        Missing(u64),
        End(u64),
        Error(u64, String),
        Incomplete(u64),
    }

    enum Op<'a> {
        Feed(&'a [u8]),
        Gap(u64),
        Eof,
        Expect(&'a str),
    }

    fn push(evs: &mut Vec<Ev>, e: HttpEvent<'_>) {
        let ev = match e {
            HttpEvent::Head(h) => Ev::Head(h),
            HttpEvent::Body(b) => {
                if let Some(Ev::Body(prev)) = evs.last_mut() {
                    prev.extend_from_slice(b);
                    return;
                }
                Ev::Body(b.to_vec())
            }
            HttpEvent::Missing(n) => Ev::Missing(n),
            HttpEvent::End { body_bytes } => Ev::End(body_bytes),
            HttpEvent::Error(e) => Ev::Error(e.offset, e.kind.to_string()),
            HttpEvent::Incomplete { body_bytes } => Ev::Incomplete(body_bytes),
        };
        evs.push(ev);
    }

    fn run_with(kind: Kind, limits: Limits, ops: &[Op<'_>]) -> (Vec<Ev>, MessageDecoder) {
        let mut dec = MessageDecoder::new(kind, limits);
        let mut evs = Vec::new();
        for op in ops {
            let mut sink = |e: HttpEvent<'_>| push(&mut evs, e);
            match op {
                Op::Feed(d) => dec.feed(d, &mut sink),
                Op::Gap(n) => dec.gap(*n, &mut sink),
                Op::Eof => dec.eof(&mut sink),
                Op::Expect(m) => dec.expect_response_to(m),
            }
        }
        (evs, dec)
    }

    fn run(kind: Kind, ops: &[Op<'_>]) -> Vec<Ev> {
        run_with(kind, Limits::default(), ops).0
    }

    /// Short text form for table comparisons.
    fn render(evs: &[Ev]) -> Vec<String> {
        evs.iter()
            .map(|e| match e {
                Ev::Head(h) => match h.status {
                    Some(s) => format!("HEAD {s}"),
                    None => format!(
                        "HEAD {} {}",
                        h.method.as_deref().unwrap_or("?"),
                        h.path.as_deref().unwrap_or("?")
                    ),
                },
                Ev::Body(b) => format!("BODY {}", b.escape_ascii()),
                Ev::Missing(n) => format!("MISSING {n}"),
                Ev::End(n) => format!("END {n}"),
                Ev::Error(at, m) => format!("ERROR@{at} {m}"),
                Ev::Incomplete(n) => format!("INCOMPLETE {n}"),
            })
            .collect()
    }

    /// Error lines in `want` match by prefix (the message tail may say more), the rest exactly.
    fn check(case: &str, got: &[Ev], want: &[&str]) {
        let got = render(got);
        let ok = got.len() == want.len()
            && got.iter().zip(want).all(|(g, w)| {
                if w.starts_with("ERROR") {
                    g.starts_with(w)
                } else {
                    g == w
                }
            });
        assert!(ok, "case {case}:\n got  {got:#?}\n want {want:#?}");
    }

    #[test]
    fn table_single_feed() {
        use Kind::{Request as Q, Response as R};
        // (name, kind, bytes fed in one piece then eof, expected events)
        let cases: &[(&str, Kind, &str, &[&str])] = &[
            (
                "xml post with content-length",
                Q,
                "POST /alarm HTTP/1.1\r\nHost: 10.0.0.5\r\nContent-Type: application/xml\r\n\
                 Content-Length: 25\r\n\r\n<EventNotificationAlert/>",
                &["HEAD POST /alarm", "BODY <EventNotificationAlert/>", "END 25"],
            ),
            (
                "chunked with extensions and trailers, then another request",
                Q,
                "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\n\
                 6 ; x\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                &["HEAD POST /c", "BODY hello world", "END 11", "HEAD GET /", "END 0"],
            ),
            (
                "keep-alive: three responses in one feed",
                R,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\
                 cdeHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
                &["HEAD 200", "BODY ab", "END 2", "HEAD 200", "BODY cde", "END 3", "HEAD 500", "END 0"],
            ),
            (
                "100-continue then 200",
                R,
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
                &["HEAD 100", "HEAD 200", "BODY x", "END 1"],
            ),
            (
                "204 and 304 carry no body whatever Content-Length says",
                R,
                "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\n\
                 Content-Length: 7\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
                &["HEAD 204", "END 0", "HEAD 304", "END 0", "HEAD 200", "BODY z", "END 1"],
            ),
            (
                "close-delimited response body ends at eof",
                R,
                "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nabc\r\ndef",
                &["HEAD 200", "BODY abc\\r\\ndef", "END 8"],
            ),
            (
                "response with non-chunked transfer-encoding is close-delimited",
                R,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nabc",
                &["HEAD 200", "BODY abc", "END 3"],
            ),
            (
                "bad content-length, then resync on next request",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
                &["HEAD POST /", "ERROR@0 invalid Content-Length", "HEAD GET /next", "END 0"],
            ),
            (
                "negative content-length",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                &["HEAD POST /", "ERROR@0 negative Content-Length"],
            ),
            (
                "content-length beyond u64",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
                &["HEAD POST /", "ERROR@0 Content-Length 18446744073709551616 does not fit"],
            ),
            (
                "conflicting content-lengths",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                &["HEAD POST /", "ERROR@0 conflicting Content-Length values 5 and 6"],
            ),
            (
                "conflicting content-length list",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd",
                &["HEAD POST /", "ERROR@0 conflicting Content-Length values 3 and 4"],
            ),
            (
                "repeated equal content-lengths are fine",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\nabc",
                &["HEAD POST /", "BODY abc", "END 3"],
            ),
            (
                "transfer-encoding wins over content-length",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
                 3\r\nabc\r\n0\r\n\r\n",
                &["HEAD POST /", "BODY abc", "END 3"],
            ),
            (
                "request transfer-encoding not ending in chunked",
                Q,
                "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
                &["HEAD POST /", "ERROR@0 request Transfer-Encoding \"gzip\""],
            ),
            (
                // head 48 bytes, "5\r\nhello\r\n" 10 more: the bad size line starts at 58
                "bad chunk size, located, then resync",
                Q,
                "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n\
                 GET /after HTTP/1.1\r\n\r\n",
                &[
                    "HEAD POST /c",
                    "BODY hello",
                    "ERROR@58 bad chunk size: expected a hex digit, found 'z'",
                    "HEAD GET /after",
                    "END 0",
                ],
            ),
            (
                "chunk data longer than its size",
                Q,
                "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n",
                &["HEAD POST /c", "BODY hel", "ERROR@54 chunk data not followed by CRLF"],
            ),
            (
                "chunk size overflow",
                Q,
                "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
                &["HEAD POST /c", "ERROR@48 chunk size does not fit in 64 bits"],
            ),
            (
                "pipelined requests",
                Q,
                "GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz\
                 GET /c HTTP/1.0\r\n\r\n",
                &["HEAD GET /a", "END 0", "HEAD POST /b", "BODY xyz", "END 3", "HEAD GET /c", "END 0"],
            ),
            (
                "bare LF line endings everywhere",
                Q,
                "POST /a HTTP/1.1\nContent-Length: 2\n\nhiPOST /b HTTP/1.1\nTransfer-Encoding: chunked\n\n\
                 2\nhi\n0\n\n",
                &["HEAD POST /a", "BODY hi", "END 2", "HEAD POST /b", "BODY hi", "END 2"],
            ),
            (
                "mixed LF and CRLF ending the block",
                R,
                "HTTP/1.1 200 OK\nContent-Length: 1\n\r\nq",
                &["HEAD 200", "BODY q", "END 1"],
            ),
            (
                "blank lines between messages are skipped",
                Q,
                "GET /a HTTP/1.1\r\n\r\n\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
                &["HEAD GET /a", "END 0", "HEAD GET /b", "END 0"],
            ),
            (
                // "hello world" looks like "METHOD target" but its line fails httparse at once,
                // so the request after it is not swallowed. It starts at byte 18.
                "stray text line between requests",
                Q,
                "GET / HTTP/1.1\r\n\r\nhello world\r\nGET /b HTTP/1.1\r\n\r\n",
                &[
                    "HEAD GET /",
                    "END 0",
                    "ERROR@18 malformed HTTP request head (invalid token), start line \"hello world\"",
                    "HEAD GET /b",
                    "END 0",
                ],
            ),
            (
                "binary between responses",
                R,
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\x00\x01\x02\nHTTP/1.1 200 OK\r\n\r\n",
                &[
                    "HEAD 200",
                    "END 0",
                    "ERROR@38 expected the start line of an HTTP response, found \"\\x00\"",
                    "HEAD 200",
                    "END 0",
                ],
            ),
            (
                // 33 bytes of body tail precede the first request
                "garbage at stream start is reported once, located",
                Q,
                "ody of a previous message\r\nmore\r\nPOST /alarm HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                &[
                    "ERROR@0 stream does not start with an HTTP request (33 bytes skipped)",
                    "HEAD POST /alarm",
                    "END 0",
                ],
            ),
            (
                "garbage only, reported at eof",
                R,
                "\x00\x01binary\n\x7f",
                &["ERROR@0 stream does not start with an HTTP response (10 bytes skipped)"],
            ),
            (
                // RFC 9110 section 9.1: any token is a method (the old expectation, garbage, was wrong).
                "unknown method at stream start is a method",
                Q,
                "BREW /pot HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                &["HEAD BREW /pot", "END 0", "HEAD GET /", "END 0"],
            ),
            (
                "message cut by eof in the body",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
                &["HEAD POST /", "BODY abc", "INCOMPLETE 3"],
            ),
            (
                "message cut by eof in the head",
                Q,
                "POST / HTTP/1.1\r\nContent-Le",
                &["INCOMPLETE 0"],
            ),
            (
                "chunked cut by eof in trailers",
                R,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX: y\r\n",
                &["HEAD 200", "BODY a", "INCOMPLETE 1"],
            ),
            (
                "malformed header name",
                Q,
                "GET / HTTP/1.1\r\nBad Header: x\r\n\r\nGET /ok HTTP/1.1\r\n\r\n",
                &["ERROR@0 malformed HTTP request head (invalid header name)", "HEAD GET /ok", "END 0"],
            ),
            (
                // A capture that begins inside a picture: the answer starts right after its
                // last bytes, not after a line break (B3).
                "response start found mid-line after binary at stream start",
                R,
                "\x7f\x01\x02\x03HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                &[
                    "ERROR@0 stream does not start with an HTTP response (4 bytes skipped)",
                    "HEAD 200",
                    "END 0",
                ],
            ),
            (
                // A 1-byte TCP keep-alive probe begins the client's stream (B3).
                "request after a keep-alive byte",
                Q,
                "\x00GET /a HTTP/1.1\r\n\r\n",
                &[
                    "ERROR@0 stream does not start with an HTTP request (1 bytes skipped)",
                    "HEAD GET /a",
                    "END 0",
                ],
            ),
            (
                "binary token bytes run into the method: the known method is taken",
                Q,
                "\x01\x02ZQGET /x HTTP/1.1\r\n\r\n",
                &[
                    "ERROR@0 stream does not start with an HTTP request (4 bytes skipped)",
                    "HEAD GET /x",
                    "END 0",
                ],
            ),
            (
                "whitespace before the method: not a start line",
                Q,
                "\x01\x02\x03 GET /txt HTTP/1.1\r\n\r\n",
                &["ERROR@0 stream does not start with an HTTP request (25 bytes skipped)"],
            ),
            (
                "never searched inside a framed body",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\nxxGET / HTTP/1.1\r\n\r\n",
                &["HEAD POST /", "BODY xxGET / HTTP/1.1\\r\\n\\r\\n", "END 20"],
            ),
            (
                "after a framing error, the next request is found mid-line",
                Q,
                "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n\x01\x02GET /n HTTP/1.1\r\n\r\n",
                &["HEAD POST /", "ERROR@0 invalid Content-Length", "HEAD GET /n", "END 0"],
            ),
            (
                "any token is a method (B4)",
                Q,
                "QUERY /users HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}CCM_POST / HTTP/1.1\r\n\r\n",
                &["HEAD QUERY /users", "BODY {}", "END 2", "HEAD CCM_POST /", "END 0"],
            ),
            (
                "absolute-form target with an upper-case scheme (B5)",
                Q,
                "GET HTTP://bro.org/ HTTP/1.1\r\nHost: bro.org\r\n\r\n",
                &["HEAD GET HTTP://bro.org/", "END 0"],
            ),
            (
                "obs-fold continuation lines in a request (B6)",
                Q,
                "GET /u HTTP/1.1\r\nX-Info: a\r\n\tb\r\n  c\r\nHost: h\r\n\r\n",
                &["HEAD GET /u", "END 0"],
            ),
            (
                "whitespace line right after the start line is no fold",
                Q,
                "GET /u HTTP/1.1\r\n x: y\r\n\r\n",
                &["ERROR@0 malformed HTTP request head"],
            ),
            (
                "malformed status line",
                R,
                "HTTP/1.0 2XX OK\r\n\r\n",
                &["ERROR@0 malformed HTTP response head (invalid response status), start line \"HTTP/1.0 2XX OK\""],
            ),
            (
                "101 switches protocols: rest ignored",
                R,
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x01\x05hello",
                &["HEAD 101", "END 0"],
            ),
        ];
        for (name, kind, input, want) in cases {
            let got = run(*kind, &[Op::Feed(input.as_bytes()), Op::Eof]);
            check(name, &got, want);
            // Byte by byte must give the same events.
            let bytes = input.as_bytes();
            let mut ops: Vec<Op<'_>> = bytes.chunks(1).map(Op::Feed).collect();
            ops.push(Op::Eof);
            check(&format!("{name} (byte by byte)"), &run(*kind, &ops), want);
        }
    }

    #[test]
    fn obs_fold_becomes_spaces() {
        let input = b"GET /u HTTP/1.1\r\nX-Info: a\r\n\tb\r\nHost: h\r\n\r\n";
        let evs = run(Kind::Request, &[Op::Feed(input)]);
        let Some(Ev::Head(h)) = evs.first() else {
            panic!("no head: {evs:?}")
        };
        assert_eq!(h.header("x-info"), Some("a  \tb"));
        assert_eq!(h.header("host"), Some("h"));
        assert_eq!(h.header_bytes, input.len());
    }

    #[test]
    fn long_request_line_found_across_feeds() {
        // Out of sync, a 3000-byte request line arriving byte by byte is kept (bounded carry).
        let target = format!("/{}", "a".repeat(3000));
        let input = format!("\x01\x02\nGET {target} HTTP/1.1\r\n\r\n");
        let mut ops: Vec<Op<'_>> = input.as_bytes().chunks(1).map(Op::Feed).collect();
        ops.push(Op::Eof);
        let (evs, _) = run_with(Kind::Request, Limits::default(), &ops);
        check(
            "long line",
            &evs,
            &[
                "ERROR@0 stream does not start with an HTTP request (3 bytes skipped)",
                &format!("HEAD GET {target}"),
                "END 0",
            ],
        );
        // Beyond the carry limit it is not found, and memory stays bounded.
        let target = format!("/{}", "a".repeat(CARRY_MAX + 10));
        let input = format!("\x01\x02GET {target} HTTP/1.1\r\n\r\n");
        let mut dec = MessageDecoder::new(Kind::Request, Limits::default());
        let mut heads = 0;
        for b in input.as_bytes().chunks(7) {
            dec.feed(b, &mut |e| {
                heads += usize::from(matches!(e, HttpEvent::Head(_)))
            });
            assert!(dec.buffered_bytes() <= CARRY_MAX + 7);
        }
        assert_eq!(heads, 0);
    }

    #[test]
    fn gap_then_response_mid_segment() {
        let evs = run(
            Kind::Response,
            &[
                Op::Feed(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nab"),
                Op::Gap(100),
                Op::Feed(b"AAAA"),
                Op::Feed(b"AAHTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
            ],
        );
        check(
            "gap, body tail, next answer",
            &evs,
            &["HEAD 200", "BODY ab", "END 2", "HEAD 200", "END 0"],
        );
    }

    #[test]
    fn switch_protocols_counts_the_rest() {
        let mut req = MessageDecoder::new(Kind::Request, Limits::default());
        let mut evs = Vec::new();
        req.feed(
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            &mut |e| push(&mut evs, e),
        );
        req.switch_protocols(&mut |e| push(&mut evs, e));
        req.feed(b"\x81\x05hello", &mut |e| push(&mut evs, e));
        req.gap(3, &mut |e| push(&mut evs, e));
        req.feed(b"GET / HTTP/1.1\r\n\r\n", &mut |e| push(&mut evs, e));
        check("switched", &evs, &["HEAD GET /ws", "END 0"]);
        assert_eq!(req.opaque_bytes(), 7 + 3 + 18);

        let (evs, resp) = run_with(
            Kind::Response,
            Limits::default(),
            &[Op::Feed(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
            )],
        );
        check("101", &evs, &["HEAD 101", "END 0"]);
        assert_eq!(resp.opaque_bytes(), 4);
    }

    #[test]
    fn error_kinds_are_typed() {
        let evs = {
            let mut dec = MessageDecoder::new(Kind::Request, Limits::default());
            let mut v = Vec::new();
            dec.feed(
                b"POST / HTTP/1.1\r\nContent-Length: 11\r\nContent-Length: 93\r\n\r\n",
                &mut |e| {
                    if let HttpEvent::Error(e) = e {
                        v.push(e);
                    }
                },
            );
            v
        };
        assert_eq!(
            evs.first().map(|e| &e.kind),
            Some(&HttpErrorKind::Framing(
                FramingError::ConflictingContentLength {
                    first: 11,
                    second: 93
                }
            ))
        );
        assert!(HttpErrorKind::HeadTooLarge { max: 1 }.is_too_large());
        assert!(!HttpErrorKind::Chunk(ChunkError::SizeOverflow).is_too_large());
    }

    #[test]
    fn heads_know_their_offset_and_the_bytes_lost_before_them() {
        let first = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
        let second = b"HTTP/1.1 204 No Content\r\n\r\n";
        let n = first.len() as u64;
        let heads = |ops: &[Op<'_>]| -> Vec<(u64, Option<StreamRange>)> {
            run(Kind::Response, ops)
                .into_iter()
                .filter_map(|e| match e {
                    Ev::Head(h) => Some((h.start, h.lost_before)),
                    _ => None,
                })
                .collect()
        };
        let range = |start, end| Some(StreamRange { start, end });
        // A gap inside the framed body loses no message; one running past its end does, from
        // the body's end on.
        assert_eq!(
            heads(&[
                Op::Feed(first),
                Op::Feed(b"abcd"),
                Op::Gap(6),
                Op::Feed(second)
            ]),
            vec![(0, None), (n + 10, None)]
        );
        assert_eq!(
            heads(&[
                Op::Feed(first),
                Op::Feed(b"abcd"),
                Op::Gap(106),
                Op::Feed(second)
            ]),
            vec![(0, None), (n + 110, range(n + 10, n + 110))]
        );
        // A head cut by a gap: a message began there.
        assert_eq!(
            heads(&[
                Op::Feed(b"HTTP/1.1 200 OK\r\n"),
                Op::Gap(50),
                Op::Feed(second)
            ]),
            vec![(17 + 50, range(0, 17 + 50))]
        );
        // The loss goes to the next head only.
        assert_eq!(
            heads(&[Op::Gap(30), Op::Feed(second), Op::Feed(second)]),
            vec![(30, range(0, 30)), (30 + second.len() as u64, None)]
        );
    }

    #[test]
    fn head_fields() {
        let input = b"POST /ISAPI/alarm?x=1 HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
        let evs = run(Kind::Request, &[Op::Feed(input)]);
        let want = Head {
            method: Some("POST".into()),
            path: Some("/ISAPI/alarm?x=1".into()),
            status: None,
            reason: None,
            version: 0,
            headers: vec![
                ("Host".into(), "a".into()),
                ("Content-Length".into(), "3".into()),
            ],
            // 32 + 9 + 19 + 2
            header_bytes: 62,
            start: 0,
            lost_before: None,
        };
        assert_eq!(
            evs,
            vec![Ev::Head(want), Ev::Body(b"abc".to_vec()), Ev::End(3)]
        );

        let evs = run(
            Kind::Response,
            &[Op::Feed(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            )],
        );
        let Some(Ev::Head(h)) = evs.first() else {
            panic!("no head: {evs:?}")
        };
        assert_eq!(h.status, Some(404));
        assert_eq!(h.reason.as_deref(), Some("Not Found"));
        assert_eq!(h.version, 1);
        assert_eq!(h.header("Content-Length"), Some("0"));
        assert_eq!(h.header_bytes, 45);
    }

    #[test]
    fn head_and_connect_responses() {
        let evs = run(
            Kind::Response,
            &[
                Op::Expect("HEAD"),
                Op::Expect("GET"),
                Op::Feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
                Op::Feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
            ],
        );
        check(
            "head response",
            &evs,
            &["HEAD 200", "END 0", "HEAD 200", "BODY hi", "END 2"],
        );

        // 1xx does not consume the queued method: the final answer to HEAD is still bodiless.
        let evs = run(
            Kind::Response,
            &[
                Op::Expect("HEAD"),
                Op::Feed(
                    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n",
                ),
                Op::Feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk"),
            ],
        );
        check(
            "1xx then head",
            &evs,
            &[
                "HEAD 100", "HEAD 200", "END 0", "HEAD 200", "BODY k", "END 1",
            ],
        );

        let (evs, dec) = run_with(
            Kind::Response,
            Limits::default(),
            &[
                Op::Expect("CONNECT"),
                Op::Feed(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01garbage"),
            ],
        );
        check("connect", &evs, &["HEAD 200", "END 0"]);
        assert!(dec.is_idle());
    }

    #[test]
    fn oversize_header_block() {
        let limits = Limits {
            max_header_bytes: 40,
            max_headers: 100,
        };
        // Exactly 40 bytes: 16 + 22 + 2.
        let fits = b"GET /a HTTP/1.1\r\nX: 0123456789012345\r\n\r\n";
        assert_eq!(fits.len(), 40);
        let (evs, _) = run_with(Kind::Request, limits.clone(), &[Op::Feed(fits)]);
        check("fits", &evs, &["HEAD GET /a", "END 0"]);

        // One byte more does not fit; the decoder resyncs on the next request.
        let input = b"GET /a HTTP/1.1\r\nX: 01234567890123456\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let want = [
            "ERROR@0 header block larger than 40 bytes",
            "HEAD GET /b",
            "END 0",
        ];
        let (evs, _) = run_with(Kind::Request, limits.clone(), &[Op::Feed(input)]);
        check("too big", &evs, &want);
        let ops: Vec<Op<'_>> = input.chunks(3).map(Op::Feed).collect();
        let (evs, _) = run_with(Kind::Request, limits.clone(), &ops);
        check("too big, in pieces", &evs, &want);

        // Too many headers.
        let limits = Limits {
            max_header_bytes: 1000,
            max_headers: 2,
        };
        let (evs, _) = run_with(
            Kind::Request,
            limits,
            &[Op::Feed(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")],
        );
        check(
            "too many headers",
            &evs,
            &["ERROR@0 HTTP request head has more than 2 header fields"],
        );
    }

    #[test]
    fn gaps() {
        let post10 = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
        let (evs, dec) = run_with(
            Kind::Request,
            Limits::default(),
            &[
                Op::Feed(post10),
                Op::Feed(b"abc"),
                Op::Gap(4),
                Op::Feed(b"def"),
            ],
        );
        check(
            "gap inside body",
            &evs,
            &["HEAD POST /", "BODY abc", "MISSING 4", "BODY def", "END 10"],
        );
        assert_eq!(dec.offset(), post10.len() as u64 + 10);
        assert!(dec.is_idle());

        let evs = run(
            Kind::Request,
            &[
                Op::Feed(post10),
                Op::Feed(b"ab"),
                Op::Gap(20),
                Op::Feed(b"xyz\r\nGET /next HTTP/1.1\r\n\r\n"),
            ],
        );
        check(
            "gap past the end of the body: End, then silent resync",
            &evs,
            &[
                "HEAD POST /",
                "BODY ab",
                "MISSING 8",
                "END 10",
                "HEAD GET /next",
                "END 0",
            ],
        );

        let evs = run(
            Kind::Request,
            &[
                Op::Feed(post10),
                Op::Gap(10),
                Op::Feed(b"GET /n HTTP/1.1\r\n\r\n"),
            ],
        );
        check(
            "gap ends exactly at body end",
            &evs,
            &[
                "HEAD POST /",
                "MISSING 10",
                "END 10",
                "HEAD GET /n",
                "END 0",
            ],
        );

        let evs = run(
            Kind::Request,
            &[
                Op::Feed(b"POST /a HTTP/1.1\r\nHo"),
                Op::Gap(5),
                Op::Feed(b"st: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n"),
            ],
        );
        check(
            "gap in header block",
            &evs,
            &["INCOMPLETE 0", "HEAD GET /b", "END 0"],
        );

        let chunked = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na\r\n";
        let evs = run(
            Kind::Request,
            &[
                Op::Feed(chunked),
                Op::Feed(b"abc"),
                Op::Gap(3),
                Op::Feed(b"defg\r\n0\r\n\r\n"),
            ],
        );
        check(
            "gap within one chunk keeps framing",
            &evs,
            &[
                "HEAD POST /c",
                "BODY abc",
                "MISSING 3",
                "BODY defg",
                "END 10",
            ],
        );

        let evs = run(
            Kind::Request,
            &[
                Op::Feed(chunked),
                Op::Feed(b"abc"),
                Op::Gap(100),
                Op::Feed(b"\r\n0\r\n\r\nGET /z HTTP/1.1\r\n\r\n"),
            ],
        );
        check(
            "gap across chunk framing",
            &evs,
            &[
                "HEAD POST /c",
                "BODY abc",
                "MISSING 100",
                "INCOMPLETE 103",
                "HEAD GET /z",
                "END 0",
            ],
        );

        let (evs, dec) = run_with(
            Kind::Response,
            Limits::default(),
            &[
                Op::Feed(b"HTTP/1.0 200 OK\r\n\r\nab"),
                Op::Gap(7),
                Op::Feed(b"cd"),
                Op::Eof,
            ],
        );
        check(
            "gap in close-delimited body",
            &evs,
            &["HEAD 200", "BODY ab", "MISSING 7", "BODY cd", "END 11"],
        );
        assert_eq!(dec.offset(), 19 + 2 + 7 + 2);

        let (evs, dec) = run_with(
            Kind::Request,
            Limits::default(),
            &[
                Op::Feed(b"GET / HTTP/1.1\r\n\r\n"),
                Op::Gap(50),
                Op::Feed(b"GET /x HTTP/1.1\r\n\r\n"),
            ],
        );
        check(
            "gap between messages",
            &evs,
            &["HEAD GET /", "END 0", "HEAD GET /x", "END 0"],
        );
        assert_eq!(dec.offset(), 18 + 50 + 19);

        // Capture started mid-connection: gap first, then the tail of a body.
        let evs = run(
            Kind::Request,
            &[Op::Gap(1000), Op::Feed(b"tail>\r\nPOST / HTTP/1.1\r\n\r\n")],
        );
        check(
            "gap then garbage at start",
            &evs,
            &[
                "ERROR@1000 stream does not start with an HTTP request (7 bytes skipped)",
                "HEAD POST /",
                "END 0",
            ],
        );
    }

    #[test]
    fn huge_content_length_does_not_overflow() {
        let head = b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n";
        let (evs, dec) = run_with(
            Kind::Request,
            Limits::default(),
            &[
                Op::Feed(head),
                Op::Feed(b"abc"),
                Op::Gap(u64::MAX - 3),
                Op::Gap(5),
                Op::Eof,
            ],
        );
        let max = u64::MAX;
        check(
            "u64::MAX body",
            &evs,
            &[
                "HEAD POST /",
                "BODY abc",
                &format!("MISSING {}", max - 3),
                &format!("END {max}"),
            ],
        );
        assert_eq!(dec.offset(), u64::MAX);
    }

    #[test]
    fn connect_request_then_tunnel() {
        let evs = run(
            Kind::Request,
            &[
                Op::Feed(b"CONNECT cam:443 HTTP/1.1\r\nHost: cam:443\r\n\r\n\x16\x03\x01\x02\x00"),
                Op::Eof,
            ],
        );
        check("connect request", &evs, &["HEAD CONNECT cam:443", "END 0"]);
    }

    #[test]
    fn large_header_block_byte_by_byte() {
        // 60 headers of 1000 bytes: each byte fed alone must stay cheap (no re-parse per byte).
        let mut input = b"POST /big HTTP/1.1\r\n".to_vec();
        for i in 0..60 {
            input.extend_from_slice(format!("X-{i:02}: {}\r\n", "v".repeat(992)).as_bytes());
        }
        input.extend_from_slice(b"Content-Length: 1\r\n\r\nZ");
        let mut dec = MessageDecoder::new(Kind::Request, Limits::default());
        let mut evs = Vec::new();
        for b in input.chunks(1) {
            dec.feed(b, &mut |e| push(&mut evs, e));
        }
        let Some(Ev::Head(h)) = evs.first() else {
            panic!("no head: {evs:?}")
        };
        assert_eq!(h.headers.len(), 61);
        // 20 + 60 * 1000 + 19 + 2
        assert_eq!(h.header_bytes, 60_041);
        assert_eq!(
            evs.get(1..),
            Some(&[Ev::Body(b"Z".to_vec()), Ev::End(1)][..])
        );
    }

    #[test]
    fn require_start_line_reports_leading_garbage_at_once() {
        for (input, want) in [
            (
                &b"\xff\xfeST / HTTP/1.1\r\n"[..],
                "ERROR@0 expected the start line of an HTTP request, found \"\\xff\"",
            ),
            (
                &b"\x16\x03\x01\x02\x00"[..],
                "ERROR@0 expected the start line of an HTTP request, found \"\\x16\"",
            ),
        ] {
            let mut d = MessageDecoder::new(Kind::Request, Limits::default());
            d.require_start_line();
            let mut evs = Vec::new();
            d.feed(input, &mut |e| push(&mut evs, e));
            check("strict start", &evs, &[want]);
        }
        // Any token is a method for httparse to judge; the listener answers it 405.
        let mut d = MessageDecoder::new(Kind::Request, Limits::default());
        d.require_start_line();
        let mut evs = Vec::new();
        d.feed(b"BREW /pot HTTP/1.1\r\n\r\n", &mut |e| push(&mut evs, e));
        assert!(
            matches!(evs.first(), Some(Ev::Head(h)) if h.method.as_deref() == Some("BREW")),
            "{evs:?}"
        );
    }

    #[test]
    fn idle_and_offset() {
        let mut dec = MessageDecoder::new(Kind::Request, Limits::default());
        let mut sink = |_: HttpEvent<'_>| {};
        assert!(dec.is_idle());
        dec.feed(b"POST / HTTP/1.1\r\n", &mut sink);
        assert!(!dec.is_idle());
        dec.feed(b"Content-Length: 2\r\n\r\na", &mut sink);
        assert!(!dec.is_idle());
        dec.feed(b"b", &mut sink);
        assert!(dec.is_idle());
        assert_eq!(dec.offset(), 17 + 19 + 2 + 2);
    }

    // ---- property tests ----

    #[derive(Debug, Clone)]
    enum Framing {
        Length,
        /// Chunk sizes (cycled), extensions, a trailer.
        Chunked(Vec<usize>, bool, bool),
    }

    #[derive(Debug, Clone)]
    struct Msg {
        body: Vec<u8>,
        framing: Framing,
        bare_lf: bool,
    }

    fn msg_strategy() -> impl Strategy<Value = Msg> {
        let framing = prop_oneof![
            Just(Framing::Length),
            (
                prop::collection::vec(1usize..40, 1..6),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(s, e, t)| Framing::Chunked(s, e, t)),
        ];
        (
            prop::collection::vec(any::<u8>(), 0..150),
            framing,
            any::<bool>(),
        )
            .prop_map(|(body, framing, bare_lf)| Msg {
                body,
                framing,
                bare_lf,
            })
    }

    /// Renders message `i`; a `close` response has no length and ends at eof.
    fn render_msg(kind: Kind, i: usize, m: &Msg, close: bool) -> Vec<u8> {
        let nl = if m.bare_lf { "\n" } else { "\r\n" };
        let mut out = match kind {
            Kind::Request => format!("POST /m{i} HTTP/1.1{nl}Host: cam{nl}"),
            Kind::Response => format!("HTTP/1.1 {} OK{nl}Server: x{nl}", 200 + i),
        }
        .into_bytes();
        if close {
            out.extend_from_slice(nl.as_bytes());
            out.extend_from_slice(&m.body);
            return out;
        }
        match &m.framing {
            Framing::Length => {
                out.extend_from_slice(
                    format!("Content-Length: {}{nl}{nl}", m.body.len()).as_bytes(),
                );
                out.extend_from_slice(&m.body);
            }
            Framing::Chunked(sizes, ext, trailer) => {
                out.extend_from_slice(format!("Transfer-Encoding: chunked{nl}{nl}").as_bytes());
                let mut rest = &m.body[..];
                let mut k = 0;
                while !rest.is_empty() {
                    let n = sizes[k % sizes.len()].min(rest.len());
                    k += 1;
                    let e = if *ext { ";ext=\"v\"" } else { "" };
                    out.extend_from_slice(format!("{n:X}{e}{nl}").as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(nl.as_bytes());
                    rest = &rest[n..];
                }
                out.extend_from_slice(format!("0{nl}").as_bytes());
                if *trailer {
                    out.extend_from_slice(format!("X-Checksum: 1{nl}").as_bytes());
                }
                out.extend_from_slice(nl.as_bytes());
            }
        }
        out
    }

    fn split_ops<'a>(data: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<Op<'a>> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.push(0);
        points.push(data.len());
        points.sort_unstable();
        points.dedup();
        let mut ops: Vec<Op<'a>> = points
            .windows(2)
            .map(|w| Op::Feed(&data[w[0]..w[1]]))
            .collect();
        ops.push(Op::Eof);
        ops
    }

    proptest! {
        #[test]
        fn split_points_do_not_change_events(
            is_request in any::<bool>(),
            msgs in prop::collection::vec(msg_strategy(), 1..5),
            last_close in any::<bool>(),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let kind = if is_request { Kind::Request } else { Kind::Response };
            let close = last_close && kind == Kind::Response;
            let mut stream = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                stream.extend(render_msg(kind, i, m, close && i + 1 == msgs.len()));
            }
            let whole = run(kind, &[Op::Feed(&stream), Op::Eof]);
            let split = run(kind, &split_ops(&stream, &cuts));
            prop_assert_eq!(&split, &whole);

            // And the events are the messages: Head, the body (if any), End with its length.
            let mut want = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                let head = match &whole.get(want.len()) {
                    Some(Ev::Head(h)) => h.clone(),
                    other => return Err(TestCaseError::fail(format!("message {i}: {other:?}"))),
                };
                match kind {
                    Kind::Request => prop_assert_eq!(head.path.clone(), Some(format!("/m{i}"))),
                    Kind::Response => prop_assert_eq!(head.status, Some(200 + i as u16)),
                }
                want.push(Ev::Head(head));
                if !m.body.is_empty() {
                    want.push(Ev::Body(m.body.clone()));
                }
                want.push(Ev::End(m.body.len() as u64));
            }
            prop_assert_eq!(whole, want);
        }

        #[test]
        fn hostile_input_never_panics(
            is_request in any::<bool>(),
            pieces in prop::collection::vec(prop_oneof![
                prop::collection::vec(any::<u8>(), 0..60),
                prop::sample::select(vec![
                    &b"GET / HTTP/1.1\r\n"[..], b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 100 Continue\r\n",
                    b"\r\n", b"\n", b"Content-Length: 5\r\n", b"Content-Length: 99999999999\r\n",
                    b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n", b"0\r\n\r\n",
                    b"ffffffffffffffff\r\n", b"POST /a HTTP/1.1\r\n", b"HEAD / HTTP/1.1\r\n",
                ]).prop_map(|s| s.to_vec()),
            ], 0..30),
            gaps in prop::collection::vec((any::<prop::sample::Index>(), 1u64..100), 0..3),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            small_limits in any::<bool>(),
        ) {
            let kind = if is_request { Kind::Request } else { Kind::Response };
            let limits = if small_limits {
                Limits { max_header_bytes: 30, max_headers: 2 }
            } else {
                Limits::default()
            };
            let stream: Vec<u8> = pieces.concat();

            // Without gaps: never panics, offset is the byte count, and splitting is invisible.
            let (whole, dec) = run_with(kind, limits.clone(), &[Op::Feed(&stream), Op::Eof]);
            prop_assert_eq!(dec.offset(), stream.len() as u64);
            let (split, dec) = run_with(kind, limits.clone(), &split_ops(&stream, &cuts));
            prop_assert_eq!(dec.offset(), stream.len() as u64);
            prop_assert_eq!(split, whole);

            // With gaps inserted at random points: offset counts bytes fed plus gap bytes.
            let mut ops = split_ops(&stream, &cuts);
            ops.pop();
            let mut total = stream.len() as u64;
            for (at, n) in &gaps {
                ops.insert(at.index(ops.len() + 1), Op::Gap(*n));
                total += n;
            }
            ops.push(Op::Eof);
            let (_, dec) = run_with(kind, limits, &ops);
            prop_assert_eq!(dec.offset(), total);
        }
    }
}
