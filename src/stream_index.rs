//! The "stream index" behind the TUI's Follow-stream view: for one TCP connection, where each
//! reassembled byte of each direction sits in the capture file, in capture order, without keeping
//! the bytes.
//!
//! Sans-IO: [`StreamIndexer`] is fed the connection's TCP segments (with the position of the
//! frame that carried each) by a shell that reads the file (`tui::stream_load`), and
//! [`StreamIndexer::finish`] returns a [`StreamIndex`], a list of [`Entry`]s:
//! - [`Entry::Data`]: a run of new bytes of one direction, found in one frame's TCP payload at
//!   `skip..skip + len` (retransmitted overlap trimmed off);
//! - [`Entry::Gap`]: bytes of one direction the capture never saw (a hole that was never filled,
//!   bytes cut by the snapshot length);
//! - [`Entry::Mark`]: where an HTTP message starts (its start line) or a TLS record starts (type,
//!   length), placed exactly before its first byte (a data run is split there).
//!
//! Rules and invariants:
//! - Per direction, data entries cover the stream in order without overlap; a hole is either
//!   filled by a later (out-of-order) segment before the next byte is shown or shown as a gap
//!   with its byte count. Out-of-order segments wait in a bounded queue ([`MAX_PENDING`]); when
//!   the peer acknowledges bytes past the hole (it got them: the capture missed them), when the
//!   queue is full, or at the end, the hole is declared a gap.
//! - Memory is bounded: at most [`MAX_ENTRIES`] entries (64 bytes each; a 5 MB picture in
//!   1448-byte segments took 3 624, 226 KB), then [`StreamIndex::truncated`] says where the
//!   index stopped. Bytes are kept only while a segment waits out of order, in the HTTP framer's
//!   header buffer (64 KiB at most), and for segments put together from IP fragments (no single
//!   frame holds them; [`MAX_INLINE_BYTES`] at most).
//! - HTTP message starts come from the project's own HTTP decoder ([`crate::http`]): it is fed
//!   the stream in pieces that end at line ends, so a head's end falls at a piece's end and its
//!   first byte is `end - header_bytes`, wherever the previous body ended.
//! - TLS connections are labelled by record (5-byte record header: type, version, length); their
//!   payload is not decoded as HTTP. With a key log ([`StreamIndexer::with_keys`]) the records
//!   that decrypt are shown as their plaintext ([`Entry::Plain`], HTTP starts marked), the
//!   others stay labelled records (the `plain` submodule says how, and why memory stays bounded).

use std::net::SocketAddr;

use crate::capture::frame::TcpSegment;
use crate::http::{HttpEvent, Kind, Limits, MessageDecoder};
use crate::tcp::seq::SeqNumber;
use crate::tcp::Side;
use crate::time::Timestamp;
use crate::tls::SharedKeys;

mod plain;
pub use plain::{PlainStats, MAX_PLAIN_BYTES};

/// Most entries an index holds (64 bytes each: 32 MB at worst, ~700 MB of stream in full-size
/// segments): past it the index stops and says so.
pub const MAX_ENTRIES: usize = 500_000;
/// Most out-of-order segments waiting per direction before the hole before them is called a gap.
pub const MAX_PENDING: usize = 256;
/// Most payload bytes kept for segments reassembled from IP fragments (rare: devices behind a
/// small-MTU link); past it their bytes are shown as gaps.
pub const MAX_INLINE_BYTES: usize = 16 << 20;
/// Longest start line kept as a mark's label.
const MAX_LABEL: usize = 160;

/// Where a frame is in the capture file, so its bytes can be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePos {
    /// The frame's number in the file, from 0.
    pub ordinal: u64,
    /// Byte offset of the frame's record in the file, when the file allows seeking there
    /// (uncompressed classic pcap); otherwise the frame is found again by its ordinal.
    pub offset: Option<u64>,
    /// Captured length of the frame, checked when it is read again.
    pub caplen: u32,
    /// The segment was put together from IP fragments (several frames): its payload is kept in
    /// the index ([`StreamIndex::inline`], this index) rather than read back from one frame.
    pub inline: Option<u32>,
}

/// What starts at a mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkKind {
    /// An HTTP request or response head; `line` is its start line.
    Http { line: String },
    /// A TLS record header.
    Tls {
        content_type: u8,
        version: u16,
        length: u16,
    },
}

/// TLS record content type name (RFC 8446 5.1).
pub fn tls_content_type_name(t: u8) -> &'static str {
    match t {
        20 => "change_cipher_spec",
        21 => "alert",
        22 => "handshake",
        23 => "application_data",
        24 => "heartbeat",
        _ => "unknown",
    }
}

impl std::fmt::Display for MarkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MarkKind::Http { line } => write!(f, "HTTP {line}"),
            MarkKind::Tls {
                content_type,
                version,
                length,
            } => write!(
                f,
                "TLS record {} ({content_type}), version 0x{version:04x}, {length} bytes",
                tls_content_type_name(*content_type)
            ),
        }
    }
}

/// One piece of the followed stream, in capture order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// New bytes of `side`'s stream at `stream_off`: `len` bytes of the frame's TCP payload from
    /// `skip`.
    Data {
        side: Side,
        stream_off: u64,
        frame: FramePos,
        ts: Timestamp,
        skip: u32,
        len: u32,
    },
    /// `bytes` of `side`'s stream at `stream_off` that the capture does not hold.
    Gap {
        side: Side,
        stream_off: u64,
        bytes: u64,
    },
    /// A message or record of `side` starts at `stream_off` (for an HTTP start inside decrypted
    /// plaintext: the plaintext offset).
    Mark {
        side: Side,
        stream_off: u64,
        kind: MarkKind,
    },
    /// Decrypted application data of `side` (`--keylog`), shown in place of its record's
    /// encrypted bytes: `len` bytes of plaintext chunk `chunk` ([`StreamIndex::plain`]) from
    /// `skip`, at offset `stream_off` of the side's plaintext.
    Plain {
        side: Side,
        stream_off: u64,
        ts: Timestamp,
        chunk: u32,
        skip: u32,
        len: u32,
    },
}

impl Entry {
    /// The bytes at stream offsets `[from, to)` of a data run (within it), as a run of their
    /// own: what splitting a run before a mark or a decrypted record leaves. None when empty
    /// or not a data run.
    fn data_part(&self, from: u64, to: u64) -> Option<Entry> {
        match *self {
            Entry::Data {
                side,
                stream_off,
                frame,
                ts,
                skip,
                ..
            } if to > from => Some(Entry::Data {
                side,
                stream_off: from,
                frame,
                ts,
                skip: skip + (from - stream_off) as u32,
                len: (to - from) as u32,
            }),
            _ => None,
        }
    }

    /// The direction the entry belongs to.
    pub fn side(&self) -> Side {
        match self {
            Entry::Data { side, .. }
            | Entry::Gap { side, .. }
            | Entry::Mark { side, .. }
            | Entry::Plain { side, .. } => *side,
        }
    }
}

/// Counts of what the index skipped, for the view's header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Segments whose bytes had all been seen already.
    pub retransmissions: u64,
    /// Bytes shown as gaps, per side (client, server).
    pub gap_bytes: [u64; 2],
    /// Bytes of data indexed per side (client, server).
    pub data_bytes: [u64; 2],
    /// Segments reassembled from IP fragments past [`MAX_INLINE_BYTES`], shown as gaps.
    pub fragments_dropped: u64,
}

/// The finished index of one connection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamIndex {
    /// The stream's pieces in capture order (per side in stream order).
    pub entries: Vec<Entry>,
    pub stats: IndexStats,
    /// The index hit [`MAX_ENTRIES`]: entries stop at this client/server stream offset.
    pub truncated: Option<[u64; 2]>,
    /// The connection is TLS: records are labelled, no HTTP marks.
    pub tls: bool,
    /// Payloads of segments reassembled from IP fragments ([`FramePos::inline`]).
    pub inline: Vec<Vec<u8>>,
    /// Decrypted plaintext, one chunk per record shown ([`Entry::Plain`]); bounded by
    /// [`MAX_PLAIN_BYTES`].
    pub plain: Vec<Vec<u8>>,
    /// With a key log: what decryption gave (`None` without one, or on a plain connection).
    pub decryption: Option<Box<PlainStats>>,
}

/// A segment waiting for the hole before it to be filled.
struct Pending {
    seq: SeqNumber,
    frame: FramePos,
    ts: Timestamp,
    /// Offset of `data` in the frame's payload.
    skip: u32,
    data: Vec<u8>,
    /// Payload bytes the snapshot length cut off after `data`.
    missing: u32,
}

/// Per-direction reassembly state.
struct DirState {
    side: Side,
    /// Sequence number of the next byte to show (`None` until the first segment).
    next: Option<SeqNumber>,
    /// Stream offset of the next byte to show.
    off: u64,
    pending: Vec<Pending>,
    /// The HTTP framer that finds message starts (none on a TLS connection).
    http: Option<MessageDecoder>,
    tls: TlsRecords,
}

/// Finds TLS record headers across segment boundaries.
#[derive(Default)]
struct TlsRecords {
    /// Header bytes gathered so far (up to 5).
    head: [u8; 5],
    have: usize,
    /// Stream offset of the header being gathered.
    head_off: u64,
    /// Body bytes of the current record still to skip.
    body_left: u64,
    /// A gap hit the records: lost track until the end.
    lost: bool,
}

/// Builds a [`StreamIndex`] from one connection's segments, in capture order.
pub struct StreamIndexer {
    client: SocketAddr,
    server: SocketAddr,
    dirs: [DirState; 2],
    entries: Vec<Entry>,
    marks: [Vec<(u64, MarkKind)>; 2],
    stats: IndexStats,
    truncated: Option<[u64; 2]>,
    tls: bool,
    inline: Vec<Vec<u8>>,
    inline_bytes: usize,
    decrypt: Option<plain::Decrypt>,
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl StreamIndexer {
    /// An indexer for the connection from `client` to `server`; `tls` when it carries TLS
    /// (records are labelled instead of HTTP messages).
    pub fn new(client: SocketAddr, server: SocketAddr, tls: bool) -> Self {
        let dir = |side, kind| DirState {
            side,
            next: None,
            off: 0,
            pending: Vec::new(),
            http: (!tls).then(|| MessageDecoder::new(kind, Limits::default())),
            tls: TlsRecords::default(),
        };
        StreamIndexer {
            client,
            server,
            dirs: [
                dir(Side::Client, Kind::Request),
                dir(Side::Server, Kind::Response),
            ],
            entries: Vec::new(),
            marks: [Vec::new(), Vec::new()],
            stats: IndexStats::default(),
            truncated: None,
            tls,
            inline: Vec::new(),
            inline_bytes: 0,
            decrypt: None,
        }
    }

    /// Decrypt a TLS connection's records with `keys` (`replay --keylog`) and show the
    /// plaintext of those that authenticate in their place. No effect on a plain connection.
    pub fn with_keys(mut self, keys: SharedKeys) -> Self {
        if self.tls {
            self.decrypt = Some(plain::Decrypt::new(keys));
        }
        self
    }

    /// Take a segment put together from IP fragments (its bytes are in no single frame, so
    /// they are kept, up to [`MAX_INLINE_BYTES`]; past it the bytes count as cut off).
    pub fn reassembled_segment(
        &mut self,
        mut frame: FramePos,
        ts: Timestamp,
        seg: &TcpSegment<'_>,
    ) {
        if self.inline_bytes + seg.payload.len() <= MAX_INLINE_BYTES {
            frame.inline = u32::try_from(self.inline.len()).ok();
        }
        let Some(_) = frame.inline else {
            self.stats.fragments_dropped += 1;
            let cut = TcpSegment {
                payload: &[],
                missing: seg
                    .missing
                    .saturating_add(u32::try_from(seg.payload.len()).unwrap_or(u32::MAX)),
                ..*seg
            };
            self.segment(frame, ts, &cut);
            return;
        };
        self.inline_bytes += seg.payload.len();
        self.inline.push(seg.payload.to_vec());
        self.segment(frame, ts, seg);
    }

    /// Take one segment of the connection (segments of other connections are ignored).
    pub fn segment(&mut self, frame: FramePos, ts: Timestamp, seg: &TcpSegment<'_>) {
        let side = if seg.src == self.client && seg.dst == self.server {
            Side::Client
        } else if seg.src == self.server && seg.dst == self.client {
            Side::Server
        } else {
            return;
        };
        if self.truncated.is_some() {
            return;
        }
        let d = idx(side);
        // The peer acknowledges bytes beyond a hole in the other direction: it received them,
        // the capture missed them. Show the gap now, where it falls, not at the end.
        let other = 1 - d;
        if seg.flags.ack() && !self.dirs[other].pending.is_empty() {
            if let Some(next) = self.dirs[other].next {
                if SeqNumber(seg.ack) - next > 0 {
                    self.force(other);
                }
            }
        }
        let seq = SeqNumber(seg.seq);
        if seg.flags.syn() {
            self.dirs[d].next = Some(seq + 1);
            return;
        }
        let len = seg.payload.len() as u64 + u64::from(seg.missing);
        if len == 0 {
            return;
        }
        let next = *self.dirs[d].next.get_or_insert(seq);
        let rel = seq - next;
        if rel + len as i64 <= 0 {
            self.stats.retransmissions += 1;
            return;
        }
        if rel > 0 {
            if self.dirs[d].pending.len() >= MAX_PENDING {
                self.force(d);
            }
            self.dirs[d].pending.push(Pending {
                seq,
                frame,
                ts,
                skip: 0,
                data: seg.payload.to_vec(),
                missing: seg.missing,
            });
            // The hole may have been declared a gap just now: deliver what now fits.
            self.drain(d);
            return;
        }
        let trim = (-rel) as u64;
        self.deliver(d, frame, ts, seq, 0, seg.payload, seg.missing, trim);
        self.drain(d);
    }

    /// Show `payload` (from `base` in the frame's payload, sequence `seq`, then `missing` cut-off
    /// bytes) minus its first `trim` bytes, already shown.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        d: usize,
        frame: FramePos,
        ts: Timestamp,
        seq: SeqNumber,
        base: u32,
        payload: &[u8],
        missing: u32,
        trim: u64,
    ) {
        let total = payload.len() as u64 + u64::from(missing);
        if trim >= total {
            self.stats.retransmissions += 1;
            return;
        }
        let start = usize::try_from(trim)
            .unwrap_or(usize::MAX)
            .min(payload.len());
        let data = payload.get(start..).unwrap_or(&[]);
        let side = self.dirs[d].side;
        if !data.is_empty() {
            let off = self.dirs[d].off;
            let skip = base.saturating_add(u32::try_from(start).unwrap_or(u32::MAX));
            self.push(Entry::Data {
                side,
                stream_off: off,
                frame,
                ts,
                skip,
                len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            });
            self.observe(d, ts, data);
            self.dirs[d].off += data.len() as u64;
            self.stats.data_bytes[d] += data.len() as u64;
        }
        let cut = total - trim - data.len() as u64;
        if cut > 0 {
            self.gap(d, cut);
        }
        self.dirs[d].next = Some(seq + u32::try_from(total).unwrap_or(u32::MAX));
    }

    fn gap(&mut self, d: usize, bytes: u64) {
        let side = self.dirs[d].side;
        let off = self.dirs[d].off;
        self.push(Entry::Gap {
            side,
            stream_off: off,
            bytes,
        });
        self.stats.gap_bytes[d] += bytes;
        self.dirs[d].off += bytes;
        if let Some(h) = self.dirs[d].http.as_mut() {
            h.gap(bytes, &mut |_| {});
        }
        if let Some(x) = self.decrypt.as_mut() {
            x.gap(d, bytes);
        }
        self.dirs[d].tls.lost = true;
    }

    /// Deliver waiting segments that now touch the stream's end.
    fn drain(&mut self, d: usize) {
        loop {
            let Some(next) = self.dirs[d].next else {
                return;
            };
            let Some(i) = self.dirs[d].pending.iter().position(|p| p.seq - next <= 0) else {
                return;
            };
            let p = self.dirs[d].pending.swap_remove(i);
            let trim = (next - p.seq) as u64;
            self.deliver(d, p.frame, p.ts, p.seq, p.skip, &p.data, p.missing, trim);
        }
    }

    /// The hole before the earliest waiting segment will not be filled: show it as a gap.
    fn force(&mut self, d: usize) {
        let Some(next) = self.dirs[d].next else {
            return;
        };
        let Some(first) = self.dirs[d].pending.iter().map(|p| p.seq - next).min() else {
            return;
        };
        if first > 0 {
            self.gap(d, first as u64);
            self.dirs[d].next = Some(next + u32::try_from(first).unwrap_or(u32::MAX));
        }
        self.drain(d);
    }

    fn push(&mut self, e: Entry) {
        if self.entries.len() >= MAX_ENTRIES {
            if self.truncated.is_none() {
                self.truncated = Some([self.dirs[0].off, self.dirs[1].off]);
            }
            return;
        }
        self.entries.push(e);
    }

    /// Look at newly shown bytes for HTTP heads or TLS record headers.
    fn observe(&mut self, d: usize, ts: Timestamp, data: &[u8]) {
        let start = self.dirs[d].off;
        if self.tls {
            let found = self.dirs[d].tls.feed(start, data);
            self.marks[d].extend(found);
            if let Some(x) = self.decrypt.as_mut() {
                x.data(d, ts, data);
            }
            return;
        }
        let Some(h) = self.dirs[d].http.as_mut() else {
            return;
        };
        http_marks(h, start, data, &mut self.marks[d]);
    }

    /// Finish: declare remaining holes as gaps and place the marks.
    pub fn finish(mut self) -> StreamIndex {
        for d in 0..2 {
            while !self.dirs[d].pending.is_empty() && self.truncated.is_none() {
                let before = self.dirs[d].pending.len();
                self.force(d);
                if self.dirs[d].pending.len() == before {
                    // Cannot happen (force delivers at least one), but never loop forever.
                    break;
                }
            }
        }
        let entries = place_marks(std::mem::take(&mut self.entries), &self.marks);
        let (entries, plain, decryption) = match self.decrypt.take() {
            Some(x) => {
                let (entries, plain, stats) = x.apply(entries);
                (entries, plain, Some(Box::new(stats)))
            }
            None => (entries, Vec::new(), None),
        };
        StreamIndex {
            entries,
            stats: self.stats,
            truncated: self.truncated,
            tls: self.tls,
            inline: self.inline,
            plain,
            decryption,
        }
    }
}

/// Feed `data` (at stream offset `start`) to the HTTP framer `h` and note where each message
/// head starts: fed in pieces that end at line ends, so a head's end falls at a piece's end and
/// its first byte is `end - header_bytes`.
fn http_marks(h: &mut MessageDecoder, start: u64, data: &[u8], marks: &mut Vec<(u64, MarkKind)>) {
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = data.get(pos..).unwrap_or(&[]);
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let piece = rest.get(..end).unwrap_or(&[]);
        pos += end;
        let piece_end = start + pos as u64;
        h.feed(piece, &mut |ev| {
            if let HttpEvent::Head(head) = ev {
                let line = match (&head.method, &head.path, head.status) {
                    (Some(m), Some(p), _) => format!("{m} {p} HTTP/1.{}", head.version),
                    (_, _, Some(s)) => format!(
                        "HTTP/1.{} {s} {}",
                        head.version,
                        head.reason.as_deref().unwrap_or("")
                    ),
                    _ => "message".to_string(),
                };
                let line: String = line.trim_end().chars().take(MAX_LABEL).collect();
                let at = piece_end.saturating_sub(head.header_bytes as u64);
                marks.push((at, MarkKind::Http { line }));
            }
        });
    }
}

impl TlsRecords {
    /// Record headers that begin in `data` (at stream offset `start`).
    fn feed(&mut self, start: u64, data: &[u8]) -> Vec<(u64, MarkKind)> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() && !self.lost {
            if self.body_left > 0 {
                let n = self.body_left.min((data.len() - pos) as u64);
                self.body_left -= n;
                pos += n as usize;
                continue;
            }
            if self.have == 0 {
                self.head_off = start + pos as u64;
            }
            if let (Some(slot), Some(&b)) = (self.head.get_mut(self.have), data.get(pos)) {
                *slot = b;
            }
            self.have += 1;
            pos += 1;
            if self.have == 5 {
                self.have = 0;
                let [t, v1, v2, l1, l2] = self.head;
                if !(20..=24).contains(&t) {
                    // Not a record header: stop labelling rather than label garbage.
                    self.lost = true;
                    break;
                }
                let length = u16::from_be_bytes([l1, l2]);
                self.body_left = u64::from(length);
                out.push((
                    self.head_off,
                    MarkKind::Tls {
                        content_type: t,
                        version: u16::from_be_bytes([v1, v2]),
                        length,
                    },
                ));
            }
        }
        out
    }
}

/// Put each side's marks (in stream order) before the byte they name, splitting data entries.
fn place_marks(entries: Vec<Entry>, marks: &[Vec<(u64, MarkKind)>; 2]) -> Vec<Entry> {
    let mut out = Vec::with_capacity(entries.len() + marks[0].len() + marks[1].len());
    let mut next = [0usize, 0usize];
    for e in entries {
        let d = idx(e.side());
        let Entry::Data {
            side,
            stream_off,
            len,
            ..
        } = e
        else {
            // A mark that fell in a gap goes before the gap's end: before the gap.
            if let Entry::Gap {
                stream_off, bytes, ..
            } = &e
            {
                while let Some((at, kind)) = marks[d].get(next[d]) {
                    if *at >= stream_off + bytes {
                        break;
                    }
                    out.push(Entry::Mark {
                        side: e.side(),
                        stream_off: *at,
                        kind: kind.clone(),
                    });
                    next[d] += 1;
                }
            }
            out.push(e);
            continue;
        };
        let end = stream_off + u64::from(len);
        let mut cur = stream_off;
        while let Some((at, kind)) = marks[d].get(next[d]) {
            if *at >= end {
                break;
            }
            let at = (*at).max(cur);
            out.extend(e.data_part(cur, at));
            cur = at;
            out.push(Entry::Mark {
                side,
                stream_off: at,
                kind: kind.clone(),
            });
            next[d] += 1;
        }
        out.extend(e.data_part(cur, end));
    }
    out
}

/// Bytes per line in text mode when no line end comes sooner.
pub const TEXT_WIDTH: usize = 96;
/// Bytes per line in hex mode.
pub const HEX_WIDTH: usize = 16;

/// How a data entry's bytes are laid out in lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Text: a line ends after `\n` or after [`TEXT_WIDTH`] bytes.
    Text,
    /// Hex dump: [`HEX_WIDTH`] bytes a line.
    Hex,
}

/// The byte ranges of `data`'s lines in `layout` (at least one line, even for no bytes).
pub fn line_ranges(data: &[u8], layout: Layout) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0usize;
    match layout {
        Layout::Hex => {
            while start < data.len() {
                let end = (start + HEX_WIDTH).min(data.len());
                out.push(start..end);
                start = end;
            }
        }
        Layout::Text => {
            while start < data.len() {
                let limit = (start + TEXT_WIDTH).min(data.len());
                let end = data
                    .get(start..limit)
                    .and_then(|s| s.iter().position(|&b| b == b'\n'))
                    .map_or(limit, |i| start + i + 1);
                out.push(start..end);
                start = end;
            }
        }
    }
    if out.is_empty() {
        out.push(0..0);
    }
    out
}

/// Bytes as text: printable ASCII as is, `\r` `\n` `\t` `\\` escaped, anything else `\xNN`.
pub fn escape_text(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len());
    for &b in data {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// One hex dump line: stream offset, the bytes in hex, and the printable ones.
pub fn hex_line(offset: u64, data: &[u8]) -> String {
    let mut hex = String::with_capacity(HEX_WIDTH * 3);
    for (i, b) in data.iter().enumerate() {
        if i == 8 {
            hex.push(' ');
        }
        hex.push_str(&format!("{b:02x} "));
    }
    let ascii: String = data
        .iter()
        .map(|&b| {
            if (0x20..=0x7e).contains(&b) {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    format!("{offset:08x}  {hex:<49} {ascii}")
}

/// Where `needle` occurs in `hay` (first match from `from`), ASCII case-insensitive.
pub fn find_ci(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| {
        hay.get(i..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::frame::TcpFlags;

    const C: &str = "10.0.0.5:40000";
    const S: &str = "10.0.0.1:8080";

    fn seg<'a>(from_client: bool, seq: u32, payload: &'a [u8], flags: u8) -> TcpSegment<'a> {
        let (c, s): (SocketAddr, SocketAddr) = (C.parse().unwrap(), S.parse().unwrap());
        let (src, dst) = if from_client { (c, s) } else { (s, c) };
        TcpSegment {
            src,
            dst,
            seq,
            ack: 0,
            flags: TcpFlags(flags),
            window: 0,
            payload,
            missing: 0,
        }
    }

    fn pos(n: u64) -> FramePos {
        FramePos {
            ordinal: n,
            offset: None,
            caplen: 0,
            inline: None,
        }
    }

    /// Rebuild each side's shown text from the entries and the payloads fed (frame ordinal ->
    /// payload), gaps as `~N~`, marks as `|`.
    fn shown(ix: &StreamIndex, payloads: &[&[u8]]) -> [String; 2] {
        let mut out = [String::new(), String::new()];
        for e in &ix.entries {
            let d = idx(e.side());
            match e {
                Entry::Data {
                    frame, skip, len, ..
                } => {
                    let p = payloads[frame.ordinal as usize];
                    out[d].push_str(
                        std::str::from_utf8(&p[*skip as usize..(*skip + *len) as usize]).unwrap(),
                    );
                }
                Entry::Gap { bytes, .. } => out[d].push_str(&format!("~{bytes}~")),
                Entry::Mark { .. } => out[d].push('|'),
                Entry::Plain { .. } => out[d].push_str("<plain>"),
            }
        }
        out
    }

    fn indexer() -> StreamIndexer {
        StreamIndexer::new(C.parse().unwrap(), S.parse().unwrap(), false)
    }

    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;

    #[test]
    fn out_of_order_segments_are_shown_in_sequence_order() {
        let p: [&[u8]; 4] = [b"", b"ABCD", b"EFGH", b"IJ"];
        let mut ix = indexer();
        ix.segment(pos(0), Timestamp(0), &seg(true, 99, p[0], SYN));
        ix.segment(pos(2), Timestamp(1), &seg(true, 104, p[2], ACK));
        ix.segment(pos(1), Timestamp(2), &seg(true, 100, p[1], ACK));
        ix.segment(pos(3), Timestamp(3), &seg(true, 108, p[3], ACK));
        let ix = ix.finish();
        assert_eq!(shown(&ix, &p)[0], "ABCDEFGHIJ");
        assert_eq!(ix.stats.gap_bytes, [0, 0]);
    }

    #[test]
    fn a_hole_never_filled_is_a_gap_with_its_size() {
        let p: [&[u8]; 3] = [b"", b"ABCD", b"XYZ"];
        let mut ix = indexer();
        ix.segment(pos(0), Timestamp(0), &seg(false, 999, p[0], SYN | ACK));
        ix.segment(pos(1), Timestamp(1), &seg(false, 1000, p[1], ACK));
        ix.segment(pos(2), Timestamp(2), &seg(false, 1010, p[2], ACK));
        let ix = ix.finish();
        assert_eq!(shown(&ix, &p)[1], "ABCD~6~XYZ");
        assert_eq!(ix.stats.gap_bytes, [0, 6]);
    }

    #[test]
    fn a_hole_the_peer_acknowledged_is_a_gap_before_the_peers_answer() {
        let p: [&[u8]; 3] = [b"ABCD", b"XYZ", b"OK"];
        let mut ix = indexer();
        ix.segment(pos(0), Timestamp(0), &seg(true, 0, p[0], ACK));
        ix.segment(pos(1), Timestamp(1), &seg(true, 10, p[1], ACK));
        // The server acknowledges all 13 bytes and answers.
        let mut answer = seg(false, 500, p[2], ACK);
        answer.ack = 13;
        ix.segment(pos(2), Timestamp(2), &answer);
        let ix = ix.finish();
        let order: Vec<Side> = ix.entries.iter().map(Entry::side).collect();
        assert_eq!(
            order,
            [Side::Client, Side::Client, Side::Client, Side::Server]
        );
        assert!(matches!(ix.entries[1], Entry::Gap { bytes: 6, .. }));
    }

    #[test]
    fn retransmitted_overlap_is_trimmed_and_full_repeats_skipped() {
        let p: [&[u8]; 4] = [b"ABCDEF", b"DEFGHI", b"ABC", b"JK"];
        let mut ix = indexer();
        ix.segment(pos(0), Timestamp(0), &seg(true, 0, p[0], ACK));
        ix.segment(pos(1), Timestamp(1), &seg(true, 3, p[1], ACK));
        ix.segment(pos(2), Timestamp(2), &seg(true, 0, p[2], ACK));
        ix.segment(pos(3), Timestamp(3), &seg(true, 9, p[3], ACK));
        let ix = ix.finish();
        assert_eq!(shown(&ix, &p)[0], "ABCDEFGHIJK");
        assert_eq!(ix.stats.retransmissions, 1);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let p: [&[u8]; 2] = [b"AB", b"CD"];
        let mut ix = indexer();
        ix.segment(pos(0), Timestamp(0), &seg(true, u32::MAX - 1, p[0], ACK));
        ix.segment(pos(1), Timestamp(1), &seg(true, 0, p[1], ACK));
        assert_eq!(shown(&ix.finish(), &p)[0], "ABCD");
    }

    #[test]
    fn http_message_starts_are_marked_where_they_begin() {
        let body = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzPOST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        let ans = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let p: [&[u8]; 3] = [&body[..30], &body[30..], ans];
        let mut ix = indexer();
        ix.segment(pos(0), Timestamp(0), &seg(true, 0, p[0], ACK));
        ix.segment(pos(1), Timestamp(1), &seg(true, 30, p[1], ACK));
        ix.segment(pos(2), Timestamp(2), &seg(false, 0, p[2], ACK));
        let ix = ix.finish();
        let s = shown(&ix, &p);
        assert_eq!(
            s[0],
            "|POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz|POST /b HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(s[1], "|HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let labels: Vec<String> = ix
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Mark { kind, .. } => Some(kind.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(
            labels,
            [
                "HTTP POST /a HTTP/1.1",
                "HTTP POST /b HTTP/1.1",
                "HTTP HTTP/1.1 200 OK"
            ]
        );
    }

    #[test]
    fn tls_records_are_labelled_across_segments() {
        let mut rec = vec![22u8, 3, 1, 0, 4, 1, 2, 3, 4, 23, 3, 3, 0, 2, 9, 9];
        let tail = rec.split_off(11);
        let p: [&[u8]; 2] = [&rec, &tail];
        let mut ix = StreamIndexer::new(C.parse().unwrap(), S.parse().unwrap(), true);
        ix.segment(pos(0), Timestamp(0), &seg(true, 0, p[0], ACK));
        ix.segment(pos(1), Timestamp(1), &seg(true, 11, p[1], ACK));
        let ix = ix.finish();
        let marks: Vec<(u64, String)> = ix
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Mark {
                    stream_off, kind, ..
                } => Some((*stream_off, kind.to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(
            marks,
            [
                (
                    0,
                    "TLS record handshake (22), version 0x0301, 4 bytes".to_string()
                ),
                (
                    9,
                    "TLS record application_data (23), version 0x0303, 2 bytes".to_string()
                )
            ]
        );
    }

    #[test]
    fn the_index_stops_at_its_bound_and_says_where() {
        let mut ix = StreamIndexer::new(C.parse().unwrap(), S.parse().unwrap(), true);
        let n = MAX_ENTRIES as u32 + 10;
        for i in 0..n {
            ix.segment(pos(u64::from(i)), Timestamp(0), &seg(true, i, b"A", ACK));
        }
        let ix = ix.finish();
        assert_eq!(ix.entries.len(), MAX_ENTRIES);
        assert_eq!(ix.truncated, Some([MAX_ENTRIES as u64, 0]));
    }

    #[test]
    fn text_lines_break_at_line_ends_and_width() {
        let mut d = b"ab\ncd\n".to_vec();
        d.extend(std::iter::repeat_n(b'x', TEXT_WIDTH + 1));
        let r = line_ranges(&d, Layout::Text);
        assert_eq!(r, [0..3, 3..6, 6..6 + TEXT_WIDTH, 6 + TEXT_WIDTH..d.len()]);
        assert_eq!(line_ranges(&[0; 33], Layout::Hex).len(), 3);
        assert_eq!(escape_text(b"a\r\n\x00\\"), "a\\r\\n\\x00\\\\");
        assert_eq!(find_ci(b"xxPoSt /", b"post", 0), Some(2));
    }
}
