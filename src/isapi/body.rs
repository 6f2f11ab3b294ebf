//! The body decoder shared by replay, sniff and the listener.

use serde::Serialize;

use super::event::{decode_event_with, EventInfo, TreeDetail};
use super::multipart::{MultipartDecoder, PartEvent, MAX_GAP_FILL};
// Re-exported so that `isapi::body::{PartHeader, PartInfo}` keep naming them.
pub use super::part::{PartHeader, PartInfo};
use super::picture::{is_jpeg_part, JpegCheck, PictureProblem};
use super::sniff::{sniff_syntax, Syntax};

/// Receives part bytes as they are decoded (picture extraction, the listener's store).
pub trait PartSink {
    fn part_start(&mut self, header: &PartHeader);
    fn part_data(&mut self, index: usize, data: &[u8]);
    fn part_end(&mut self, index: usize, bytes: u64);
}

/// Bounds on what a body decoder keeps in memory.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    /// Bytes of the metadata (XML/JSON) part kept for decoding and display; beyond this the event
    /// is decoded from the prefix and a warning says so.
    pub max_metadata_bytes: usize,
    /// Parts counted per body; further parts are counted in `extra_parts` only.
    pub max_parts: usize,
    /// How much of the event's element tree to keep: the headless reports need only the fields.
    pub event_tree: TreeDetail,
    /// Leave the event's decoding to whoever takes the finished connection
    /// ([`DecodedBody::pending`], [`PendingEvent::decode`]): a replay decodes events on the thread
    /// that writes the report, beside the analysis, so both cores work. Off: decoded at once.
    pub defer_event: bool,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_metadata_bytes: 256 * 1024,
            max_parts: 64,
            event_tree: TreeDetail::Full,
            defer_event: false,
        }
    }
}

/// What a whole body turned out to contain.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecodedBody {
    /// "xml", "json", "multipart", "empty" or "other".
    pub kind: &'static str,
    pub event: Option<EventInfo>,
    /// Parts of a multipart body (empty for a plain body).
    pub parts: Vec<PartInfo>,
    /// Parts beyond `max_parts`.
    pub extra_parts: u64,
    /// The metadata text (the first XML/JSON part, or the whole plain body), at most
    /// `max_metadata_bytes`, lossily UTF-8.
    pub metadata: Option<String>,
    /// Why no event was found or the multipart body was broken, if so.
    pub error: Option<String>,
    /// Hash of the whole body's bytes (retry detection: equal bodies are the same event re-sent).
    pub body_hash: u64,
    /// Total body bytes fed.
    pub bytes: u64,
    /// With [`BodyLimits::defer_event`]: the metadata still to decode. `event`, `metadata` and
    /// `error` are then set only by [`PendingEvent::decode`] (error: for an XML/JSON body).
    #[serde(skip)]
    pub pending: Option<PendingEvent>,
}

/// A body's metadata (XML or JSON) whose event is decoded later, on another thread
/// ([`BodyLimits::defer_event`]). Decoding it gives exactly what [`BodyDecoder::finish`] would
/// have given at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingEvent {
    meta: Vec<u8>,
    content_type: Option<String>,
    notes: Vec<String>,
    error: Option<String>,
    tree: TreeDetail,
}

/// What decoding a body's metadata gives: the event, the metadata text, and the body's error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodedEvent {
    pub event: Option<EventInfo>,
    pub metadata: Option<String>,
    pub error: Option<String>,
}

impl PendingEvent {
    /// Decode the event (the work [`BodyLimits::defer_event`] put off).
    pub fn decode(self) -> DecodedEvent {
        decode_metadata(
            &self.meta,
            self.content_type.as_deref(),
            self.notes,
            self.error,
            self.tree,
        )
    }
}

/// The metadata part (or plain body) decoded into an event: the decoder's `notes` become the
/// event's warnings, or join `error` when no event came out; the text is kept lossily as UTF-8.
fn decode_metadata(
    meta: &[u8],
    content_type: Option<&str>,
    mut notes: Vec<String>,
    mut error: Option<String>,
    tree: TreeDetail,
) -> DecodedEvent {
    let mut event = None;
    match decode_event_with(meta, content_type, tree) {
        Ok(mut e) => {
            e.warnings.append(&mut notes);
            event = Some(e);
        }
        Err(e) => error = Some(join(error, e.to_string())),
    }
    if event.is_none() && !notes.is_empty() {
        error = Some(join(error, notes.join("; ")));
    }
    // The strict check first: several times faster than the lossy one on valid text.
    let metadata = Some(match std::str::from_utf8(meta) {
        Ok(t) => t.to_owned(),
        Err(_) => String::from_utf8_lossy(meta).into_owned(),
    });
    DecodedEvent {
        event,
        metadata,
        error,
    }
}

/// Incremental decoder of one HTTP body.
pub struct BodyDecoder {
    limits: BodyLimits,
    request_type: Option<String>,
    header_boundary: Option<String>,
    multipart_type: bool,
    mode: Mode,
    hash: Box<xxhash_rust::xxh3::Xxh3>,
    fed: u64,
    missing: u64,
    /// Missing bytes not yet applied (applied at the next `feed`/`finish`, which have the sink).
    pending_gap: u64,
    st: State,
}

enum Mode {
    /// Waiting for the first line to tell a multipart body (and its real boundary) apart.
    Start(Vec<u8>),
    Plain {
        started: bool,
    },
    Multipart(Box<MultipartDecoder>),
}

/// Bytes of the body's start looked at to find a boundary line.
const SNIFF_BYTES: usize = 256;

static ZEROS: [u8; 4096] = [0; 4096];

/// What the body decoder keeps besides the mode (split out so that multipart events can update
/// it while the multipart decoder is borrowed).
#[derive(Default)]
struct State {
    max_meta: usize,
    max_parts: usize,
    parts: Vec<PartInfo>,
    extra_parts: u64,
    open_part: Option<usize>,
    meta: Meta,
    meta_buf: Vec<u8>,
    /// Size of the metadata part (or plain body) in bytes, kept or not.
    meta_bytes: u64,
    meta_gap: bool,
    meta_content_type: Option<String>,
    /// Body-level remarks that end up in the event's warnings (or the error when no event).
    notes: Vec<String>,
    /// The open part's picture check, when it is a JPEG: (part index, check, its Content-Length).
    picture: Option<(usize, Box<JpegCheck>, Option<u64>)>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Meta {
    /// No metadata part chosen yet.
    #[default]
    Searching,
    /// This part's type allows XML/JSON (text/plain, missing): its first bytes decide.
    Sniffing(usize),
    /// This part is the metadata.
    Chosen(usize),
    /// The metadata part is over.
    Done,
}

/// What a part's Content-Type says about it being the metadata.
fn metadata_type(ct: Option<&str>) -> Option<bool> {
    let media = ct.map(media_type).unwrap_or_default();
    if media.contains("xml") || media.contains("json") {
        Some(true)
    } else if media.is_empty() || media == "text/plain" || media == "application/octet-stream" {
        None
    } else {
        Some(false)
    }
}

/// The media type, lowercased, without parameters.
fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A Content-Type parameter's value (quotes and escapes removed), by case-insensitive name.
pub fn content_type_param(ct: &str, name: &str) -> Option<String> {
    let mut rest = ct.split_once(';')?.1;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_whitespace());
        if rest.is_empty() {
            return None;
        }
        let key_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let key = rest.get(..key_end).unwrap_or_default().trim();
        rest = rest.get(key_end..).unwrap_or_default();
        let Some(after_eq) = rest.strip_prefix('=') else {
            continue;
        };
        let after_eq = after_eq.trim_start();
        let value;
        if let Some(q) = after_eq.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            v.push(e);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = q.get(end..).unwrap_or_default();
        } else {
            let end = after_eq.find(';').unwrap_or(after_eq.len());
            value = after_eq.get(..end).unwrap_or_default().trim().to_string();
            rest = after_eq.get(end..).unwrap_or_default();
        }
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
    }
}

enum Sniff {
    NeedMore,
    NoBoundaryLine,
    Boundary(String),
}

/// Does the body start with a boundary line ("--xyz" CRLF), and which boundary?
fn sniff_boundary(head: &[u8], at_end: bool) -> Sniff {
    let enough = at_end || head.len() >= SNIFF_BYTES;
    let Some(start) = head.iter().position(|b| !b.is_ascii_whitespace()) else {
        return if enough {
            Sniff::NoBoundaryLine
        } else {
            Sniff::NeedMore
        };
    };
    if head.get(start) != Some(&b'-') {
        return Sniff::NoBoundaryLine;
    }
    let line = head.get(start..).unwrap_or_default();
    let line = match line.iter().position(|&b| b == b'\n') {
        Some(nl) => line.get(..nl).unwrap_or_default(),
        None if enough => line,
        None => return Sniff::NeedMore,
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Sniff::NoBoundaryLine;
    };
    let candidate = line.trim_end().strip_prefix("--").unwrap_or_default();
    let valid = !candidate.is_empty()
        && candidate.len() <= 200
        && candidate.chars().all(|c| c.is_ascii_graphic());
    if valid {
        Sniff::Boundary(candidate.to_string())
    } else {
        Sniff::NoBoundaryLine
    }
}

/// XXH3-64 of `data` in one go: the same value the streaming hasher gives for the same bytes,
/// stable across runs and platforms (retry detection compares hashes) and fast enough for every
/// picture byte (several GB/s, against under 1 GB/s for byte-wise FNV).
pub fn body_hash(data: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(data)
}

impl State {
    /// Handle one multipart event (`zeros`: the bytes are capture-gap filler).
    fn on_part_event(
        &mut self,
        ev: PartEvent<'_>,
        sink: &mut Option<&mut dyn PartSink>,
        zeros: bool,
    ) {
        match ev {
            PartEvent::Start(header) => {
                let index = header.index;
                self.open_part = Some(index);
                if index < self.max_parts {
                    self.parts.push(PartInfo {
                        name: header.name.clone(),
                        filename: header.filename.clone(),
                        content_type: header.content_type.clone(),
                        bytes: 0,
                        picture: None,
                    });
                    self.picture = is_jpeg_part(
                        header.content_type.as_deref(),
                        header.filename.as_deref(),
                        header.name.as_deref(),
                    )
                    .then(|| (index, Box::default(), header.content_length));
                    if let Some(s) = sink.as_deref_mut() {
                        s.part_start(&header);
                    }
                } else {
                    self.extra_parts = self.extra_parts.saturating_add(1);
                }
                if self.meta == Meta::Searching {
                    match metadata_type(header.content_type.as_deref()) {
                        Some(true) => self.choose(index, header.content_type),
                        None => {
                            self.meta = Meta::Sniffing(index);
                            self.meta_content_type = header.content_type;
                        }
                        Some(false) => {}
                    }
                }
            }
            PartEvent::Data { index, data } => {
                if index < self.max_parts {
                    if let Some(p) = self.parts.get_mut(index) {
                        p.bytes = p.bytes.saturating_add(data.len() as u64);
                    }
                    if let Some((i, check, _)) = self.picture.as_mut() {
                        if *i == index {
                            if zeros {
                                check.gap(data.len() as u64);
                            } else {
                                check.feed(data);
                            }
                        }
                    }
                    if let Some(s) = sink.as_deref_mut() {
                        s.part_data(index, data);
                    }
                }
                if self.meta == Meta::Sniffing(index) && !zeros {
                    self.keep_meta(data);
                    match sniff_syntax(&self.meta_buf) {
                        Some(Syntax::Xml | Syntax::Json) => self.meta = Meta::Chosen(index),
                        Some(Syntax::Other) => self.reset_meta(),
                        None => {}
                    }
                } else if self.meta == Meta::Chosen(index) {
                    self.meta_bytes = self.meta_bytes.saturating_add(data.len() as u64);
                    if zeros {
                        self.meta_gap = true;
                    } else {
                        self.keep_meta(data);
                    }
                }
            }
            PartEvent::End {
                index,
                bytes,
                complete,
            } => {
                self.open_part = None;
                let picture = match self.picture.take() {
                    Some((i, check, declared)) if i == index => {
                        let mut c = check.finish(declared);
                        // The body ended inside the picture (request cut, capture over): the
                        // verdict says so; the picture itself cannot be called cut.
                        if !complete && matches!(c.problem, Some(PictureProblem::Cut { .. })) {
                            c.problem = None;
                        }
                        Some(c)
                    }
                    _ => None,
                };
                if index < self.max_parts {
                    if let Some(p) = self.parts.get_mut(index) {
                        p.bytes = bytes;
                        p.picture = picture;
                    }
                    if let Some(s) = sink.as_deref_mut() {
                        s.part_end(index, bytes);
                    }
                }
                if self.meta == Meta::Sniffing(index) {
                    // Whitespace only: not the metadata.
                    self.reset_meta();
                } else if self.meta == Meta::Chosen(index) {
                    self.meta = Meta::Done;
                }
            }
        }
    }

    fn choose(&mut self, index: usize, content_type: Option<String>) {
        self.meta = Meta::Chosen(index);
        self.meta_content_type = content_type;
    }

    fn reset_meta(&mut self) {
        self.meta = Meta::Searching;
        self.meta_buf.clear();
        self.meta_bytes = 0;
        self.meta_content_type = None;
    }

    /// Keep metadata bytes up to the limit (counting them either way).
    fn keep_meta(&mut self, data: &[u8]) {
        if let Meta::Sniffing(_) = self.meta {
            self.meta_bytes = self.meta_bytes.saturating_add(data.len() as u64);
        }
        let room = self.max_meta.saturating_sub(self.meta_buf.len());
        self.meta_buf
            .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
    }

    fn note(&mut self, n: String) {
        if self.notes.len() < 16 {
            self.notes.push(n);
        }
    }

    fn part_label(&self, index: usize) -> String {
        match self.parts.get(index).and_then(|p| p.name.as_deref()) {
            Some(name) => format!("part {index} (\"{name}\")"),
            None => format!("part {index}"),
        }
    }
}

impl BodyDecoder {
    /// `content_type` is the request's Content-Type header value (boundary taken from it).
    pub fn new(content_type: Option<&str>, limits: BodyLimits) -> Self {
        let multipart_type =
            content_type.is_some_and(|ct| media_type(ct).starts_with("multipart/"));
        let header_boundary = if multipart_type {
            content_type
                .and_then(|ct| content_type_param(ct, "boundary"))
                .filter(|b| !b.is_empty())
        } else {
            None
        };
        let st = State {
            max_meta: limits.max_metadata_bytes,
            max_parts: limits.max_parts,
            ..State::default()
        };
        BodyDecoder {
            limits,
            request_type: content_type.map(str::to_string),
            header_boundary,
            multipart_type,
            mode: Mode::Start(Vec::new()),
            hash: Box::default(),
            fed: 0,
            missing: 0,
            pending_gap: 0,
            st,
        }
    }

    /// The limits this decoder was made with.
    pub fn limits(&self) -> &BodyLimits {
        &self.limits
    }

    /// Feed decoded body bytes in order.
    pub fn feed(&mut self, data: &[u8], mut sink: Option<&mut dyn PartSink>) {
        if data.is_empty() {
            return;
        }
        self.hash.update(data);
        self.fed = self.fed.saturating_add(data.len() as u64);
        self.apply_gap(&mut sink);
        if let Mode::Start(head) = &mut self.mode {
            let room = SNIFF_BYTES.saturating_sub(head.len());
            let (now, later) = data.split_at(room.min(data.len()));
            head.extend_from_slice(now);
            let mut head_copy = std::mem::take(head);
            if !self.decide(&mut head_copy, false, &mut sink) {
                self.mode = Mode::Start(head_copy);
                return;
            }
            self.pass(later, &mut sink, false);
        } else {
            self.pass(data, &mut sink, false);
        }
    }

    /// Bytes missing from the body (capture gap): counted, and the part they fall in is marked.
    pub fn missing(&mut self, bytes: u64) {
        self.missing = self.missing.saturating_add(bytes);
        self.pending_gap = self.pending_gap.saturating_add(bytes);
    }

    /// The body is over (complete or not): decode the metadata and report.
    pub fn finish(mut self, mut sink: Option<&mut dyn PartSink>) -> DecodedBody {
        self.apply_gap(&mut sink);
        if let Mode::Start(head) = &mut self.mode {
            let mut head_copy = std::mem::take(head);
            self.decide(&mut head_copy, true, &mut sink);
        }
        let total = self.fed.saturating_add(self.missing);
        let mut error: Option<String> = None;
        let kind;
        match &mut self.mode {
            Mode::Multipart(dec) => {
                let st = &mut self.st;
                dec.finish(&mut |ev| st.on_part_event(ev, &mut sink, false));
                error = dec.error().map(ToString::to_string);
                kind = "multipart";
            }
            Mode::Plain { started } => {
                if *started {
                    if let Some(s) = sink {
                        s.part_end(0, total);
                    }
                }
                kind = match sniff_syntax(&self.st.meta_buf) {
                    None if total == 0 || !self.st.meta_gap => "empty",
                    Some(Syntax::Xml) => "xml",
                    Some(Syntax::Json) => "json",
                    _ => "other",
                };
            }
            Mode::Start(_) => kind = "empty",
        }
        let st = &mut self.st;
        if st.meta_buf.len() >= st.max_meta && st.meta_bytes > st.meta_buf.len() as u64 {
            let n = format!(
                "metadata is {} bytes; decoded from the first {}",
                st.meta_bytes,
                st.meta_buf.len()
            );
            st.note(n);
        }
        let has_meta = matches!(st.meta, Meta::Chosen(_) | Meta::Done) || kind != "multipart";
        let mut event = None;
        let mut metadata = None;
        let mut pending = None;
        if has_meta && kind != "empty" {
            let ct = st
                .meta_content_type
                .as_deref()
                .or(self.request_type.as_deref());
            let notes = std::mem::take(&mut st.notes);
            if self.limits.defer_event {
                pending = Some(PendingEvent {
                    meta: std::mem::take(&mut st.meta_buf),
                    content_type: ct.map(str::to_string),
                    notes,
                    error: error.take(),
                    tree: self.limits.event_tree,
                });
            } else {
                let d = decode_metadata(
                    &st.meta_buf,
                    ct,
                    notes,
                    error.take(),
                    self.limits.event_tree,
                );
                event = d.event;
                metadata = d.metadata;
                error = d.error;
            }
        } else {
            if kind == "multipart" {
                let n = st.parts.len() as u64 + st.extra_parts;
                error = Some(join(error, format!("no XML or JSON part among {n} parts")));
            } else if total == 0 {
                error = Some("empty body".to_string());
            } else {
                error = Some(format!("body holds only whitespace ({total} bytes)"));
            }
            if !st.notes.is_empty() {
                let notes = std::mem::take(&mut st.notes).join("; ");
                error = Some(join(error, notes));
            }
        }
        DecodedBody {
            kind,
            event,
            parts: std::mem::take(&mut st.parts),
            extra_parts: st.extra_parts,
            metadata,
            error,
            body_hash: self.hash.digest(),
            bytes: total,
            pending,
        }
    }

    /// Pick plain or multipart from the first bytes. False when more bytes are needed.
    fn decide(
        &mut self,
        head: &mut Vec<u8>,
        at_end: bool,
        sink: &mut Option<&mut dyn PartSink>,
    ) -> bool {
        let boundary = match sniff_boundary(head, at_end) {
            Sniff::NeedMore => return false,
            Sniff::Boundary(b) => match &self.header_boundary {
                Some(h) if *h == b => Some(b),
                Some(h) => {
                    let n = format!("boundary in the body ({b}) differs from the Content-Type's ({h}); using the body's");
                    self.st.note(n);
                    Some(b)
                }
                None => {
                    let n = if self.multipart_type {
                        format!("Content-Type has no boundary; using the body's ({b})")
                    } else {
                        format!("multipart body without a multipart Content-Type (boundary {b})")
                    };
                    self.st.note(n);
                    Some(b)
                }
            },
            Sniff::NoBoundaryLine
                if self.multipart_type
                    && matches!(sniff_syntax(head), Some(Syntax::Xml | Syntax::Json)) =>
            {
                self.st
                    .note("Content-Type says multipart but the body is plain XML/JSON".to_string());
                None
            }
            Sniff::NoBoundaryLine => {
                if self.multipart_type && self.header_boundary.is_none() {
                    self.st.note(
                        "multipart Content-Type without a boundary; read as a plain body"
                            .to_string(),
                    );
                }
                self.header_boundary.clone()
            }
        };
        self.mode = match boundary {
            Some(b) => Mode::Multipart(Box::new(MultipartDecoder::new(&b))),
            None => Mode::Plain { started: false },
        };
        let head = std::mem::take(head);
        self.pass(&head, sink, false);
        true
    }

    /// Hand bytes to the chosen mode.
    fn pass(&mut self, data: &[u8], sink: &mut Option<&mut dyn PartSink>, zeros: bool) {
        if data.is_empty() {
            return;
        }
        match &mut self.mode {
            Mode::Start(_) => {}
            Mode::Plain { started } => {
                if !*started {
                    *started = true;
                    self.st.meta = Meta::Chosen(0);
                    if let Some(s) = sink.as_deref_mut() {
                        let header = PartHeader {
                            index: 0,
                            name: Some("body".to_string()),
                            filename: None,
                            content_type: self.request_type.clone(),
                            content_length: None,
                        };
                        s.part_start(&header);
                    }
                }
                if let Some(s) = sink.as_deref_mut() {
                    s.part_data(0, data);
                }
                if !zeros {
                    self.st.keep_meta(data);
                }
                self.st.meta_bytes = self.st.meta_bytes.saturating_add(data.len() as u64);
            }
            Mode::Multipart(dec) => {
                let st = &mut self.st;
                if zeros {
                    dec.gap(data.len() as u64, &mut |ev| {
                        st.on_part_event(ev, sink, true)
                    });
                } else {
                    dec.feed(data, &mut |ev| st.on_part_event(ev, sink, false));
                }
            }
        }
    }

    /// Apply missing bytes: a note saying where, and zeros so that sizes stay exact.
    fn apply_gap(&mut self, sink: &mut Option<&mut dyn PartSink>) {
        let gap = std::mem::take(&mut self.pending_gap);
        if gap == 0 {
            return;
        }
        if let Mode::Start(head) = &mut self.mode {
            let mut head_copy = std::mem::take(head);
            self.decide(&mut head_copy, true, sink);
        }
        let at = match (&self.mode, self.st.open_part) {
            (Mode::Multipart(_), Some(i)) => format!(" in {}", self.st.part_label(i)),
            (Mode::Multipart(_), None) => " between parts".to_string(),
            _ => String::new(),
        };
        self.st
            .note(format!("{gap} body bytes missing from the capture{at}"));
        match &mut self.mode {
            Mode::Multipart(dec) => {
                let st = &mut self.st;
                dec.gap(gap, &mut |ev| st.on_part_event(ev, sink, true));
            }
            Mode::Plain { .. } | Mode::Start(_) => {
                self.st.meta_gap = true;
                if gap > MAX_GAP_FILL {
                    self.st.meta_bytes = self.st.meta_bytes.saturating_add(gap);
                    return;
                }
                let mut left = gap;
                while left > 0 {
                    let n = usize::try_from(left)
                        .unwrap_or(ZEROS.len())
                        .min(ZEROS.len());
                    self.pass(ZEROS.get(..n).unwrap_or_default(), sink, true);
                    left = left.saturating_sub(n as u64);
                }
            }
        }
    }
}

fn join(a: Option<String>, b: String) -> String {
    match a {
        Some(a) => format!("{a}; {b}"),
        None => b,
    }
}

#[cfg(test)]
mod tests {
    use super::super::multipart::tests::{anpr_body, build, tricky_jpeg};
    use super::*;
    use proptest::prelude::*;

    /// Records what a sink is told.
    #[derive(Default, Debug, PartialEq)]
    struct Rec {
        starts: Vec<PartHeader>,
        data: Vec<Vec<u8>>,
        ends: Vec<(usize, u64)>,
    }

    impl PartSink for Rec {
        fn part_start(&mut self, header: &PartHeader) {
            assert_eq!(header.index, self.starts.len());
            self.starts.push(header.clone());
            self.data.push(Vec::new());
        }
        fn part_data(&mut self, index: usize, data: &[u8]) {
            match self.data.get_mut(index) {
                Some(d) => d.extend_from_slice(data),
                None => panic!("data before start of part {index}"),
            }
        }
        fn part_end(&mut self, index: usize, bytes: u64) {
            self.ends.push((index, bytes));
        }
    }

    fn run(ct: Option<&str>, pieces: &[&[u8]], limits: BodyLimits) -> (DecodedBody, Rec) {
        let mut rec = Rec::default();
        let mut dec = BodyDecoder::new(ct, limits);
        for p in pieces {
            dec.feed(p, Some(&mut rec));
        }
        (dec.finish(Some(&mut rec)), rec)
    }

    const VMD: &str = "<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\
        <ipAddress>192.168.1.64</ipAddress><macAddress>44:19:b6:12:34:56</macAddress>\
        <eventType>VMD</eventType><eventState>active</eventState></EventNotificationAlert>";

    #[test]
    fn a_deferred_event_decodes_to_what_finish_gives_at_once() {
        let anpr = anpr_body();
        let long = format!("<a>{}</a>", "x".repeat(300));
        let cases: Vec<(Option<&str>, Vec<u8>)> = vec![
            (Some("application/xml"), VMD.as_bytes().to_vec()),
            (
                Some("application/json"),
                br#"{"ipAddress":"10.0.0.9","eventType":"heartBeat"}"#.to_vec(),
            ),
            (Some("application/xml"), b"<a><b>broken".to_vec()),
            (Some("application/xml"), b"\xff\xfe<a/>".to_vec()),
            (Some("multipart/form-data; boundary=boundary"), anpr.bytes),
            (Some("application/xml"), long.into_bytes()),
            (Some("text/plain"), b"   ".to_vec()),
            (None, Vec::new()),
        ];
        let mut deferred_seen = 0;
        for (ct, body) in cases {
            let small = BodyLimits {
                max_metadata_bytes: 200,
                ..BodyLimits::default()
            };
            let (now, _) = run(ct, &[&body], small.clone());
            let (later, _) = run(
                ct,
                &[&body],
                BodyLimits {
                    defer_event: true,
                    ..small
                },
            );
            let got = match later.pending.clone() {
                Some(p) => {
                    deferred_seen += 1;
                    assert!(later.event.is_none() && later.metadata.is_none());
                    p.decode()
                }
                None => DecodedEvent {
                    event: later.event.clone(),
                    metadata: later.metadata.clone(),
                    error: later.error.clone(),
                },
            };
            let want = DecodedEvent {
                event: now.event.clone(),
                metadata: now.metadata.clone(),
                error: now.error.clone(),
            };
            assert_eq!(got, want, "{ct:?} {:?}", String::from_utf8_lossy(&body));
            assert_eq!(
                (later.kind, later.parts, later.body_hash),
                (now.kind, now.parts, now.body_hash)
            );
        }
        assert_eq!(deferred_seen, 6, "the XML/JSON bodies wait for decode()");
    }

    #[test]
    fn body_hash_known_vector() {
        // XXH3-64 of the empty input, seed 0 (xxHash reference value).
        assert_eq!(body_hash(b""), 0x2D06_8005_38D3_94C2);
    }

    #[test]
    fn content_type_params() {
        let cases = [
            ("multipart/form-data; boundary=boundary", Some("boundary")),
            (
                "multipart/form-data; boundary=\"MIME_boundary\"",
                Some("MIME_boundary"),
            ),
            (
                "multipart/mixed;charset=utf-8;BOUNDARY=AaB03x",
                Some("AaB03x"),
            ),
            (
                "multipart/form-data; x=\"a;b\\\"c\"; boundary = q ",
                Some("q"),
            ),
            ("multipart/form-data", None),
            ("multipart/form-data; boundary", None),
        ];
        for (ct, want) in cases {
            assert_eq!(content_type_param(ct, "boundary").as_deref(), want, "{ct}");
        }
    }

    #[test]
    fn plain_xml_body() {
        let body = VMD.as_bytes();
        let (d, rec) = run(
            Some("application/xml; charset=\"UTF-8\""),
            &[&body[..10], &body[10..]],
            BodyLimits::default(),
        );
        assert_eq!(d.kind, "xml");
        assert_eq!(d.error, None);
        assert_eq!(d.bytes, body.len() as u64);
        assert_eq!(d.body_hash, body_hash(body));
        assert!(d.parts.is_empty());
        assert_eq!(d.metadata.as_deref(), Some(VMD));
        let e = d.event.unwrap_or_default();
        assert_eq!(e.event_type.as_deref(), Some("VMD"));
        assert_eq!(e.mac.as_deref(), Some("44:19:b6:12:34:56"));
        assert_eq!(rec.starts.len(), 1);
        assert_eq!(rec.starts[0].name.as_deref(), Some("body"));
        assert_eq!(
            rec.starts[0].content_type.as_deref(),
            Some("application/xml; charset=\"UTF-8\"")
        );
        assert_eq!(rec.data[0], body.to_vec());
        assert_eq!(rec.ends, vec![(0, body.len() as u64)]);
    }

    #[test]
    fn plain_json_under_text_plain_and_hash_stability() {
        let body = br#"{"eventType":"heartBeat","eventState":"active","deviceID":"abc"}"#;
        let (d, _) = run(Some("text/plain"), &[body], BodyLimits::default());
        assert_eq!(d.kind, "json");
        assert_eq!(
            d.event.as_ref().and_then(|e| e.event_type.as_deref()),
            Some("heartBeat")
        );
        let (d2, _) = run(
            None,
            &body.chunks(3).collect::<Vec<_>>(),
            BodyLimits::default(),
        );
        assert_eq!(d.body_hash, d2.body_hash);
        let (d3, _) = run(None, &[&body[..body.len() - 1]], BodyLimits::default());
        assert_ne!(d.body_hash, d3.body_hash);
    }

    #[test]
    fn empty_and_other_bodies() {
        let (d, rec) = run(Some("application/xml"), &[], BodyLimits::default());
        assert_eq!(d.kind, "empty");
        assert_eq!(d.error.as_deref(), Some("empty body"));
        assert_eq!(d.metadata, None);
        assert!(rec.starts.is_empty());
        let (d, _) = run(
            Some("image/jpeg"),
            &[b"\xff\xd8\xff\xe0"],
            BodyLimits::default(),
        );
        assert_eq!(d.kind, "other");
        assert!(d
            .error
            .as_deref()
            .is_some_and(|e| e.contains("neither XML nor JSON")));
    }

    fn check_anpr(d: &DecodedBody, rec: &Rec) {
        let body = anpr_body();
        assert_eq!(d.kind, "multipart");
        assert_eq!(d.error, None);
        assert_eq!(d.bytes, body.bytes.len() as u64);
        assert_eq!(d.body_hash, body_hash(&body.bytes));
        let want: Vec<PartInfo> = body
            .parts
            .iter()
            .map(|p| PartInfo {
                name: p.header.name.clone(),
                filename: p.header.filename.clone(),
                content_type: p.header.content_type.clone(),
                bytes: p.data.len() as u64,
                // However the body was split, each picture is judged as when checked whole.
                picture: super::is_jpeg_part(
                    p.header.content_type.as_deref(),
                    p.header.filename.as_deref(),
                    p.header.name.as_deref(),
                )
                .then(|| crate::isapi::picture::check(&p.data, p.header.content_length)),
            })
            .collect();
        assert_eq!(d.parts, want);
        let e = d.event.clone().unwrap_or_default();
        assert_eq!(e.event_type.as_deref(), Some("ANPR"));
        assert_eq!(e.plate.as_deref(), Some("AB123CD"));
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        assert_eq!(
            d.metadata.as_deref().map(str::as_bytes),
            Some(&body.parts[0].data[..])
        );
        assert_eq!(
            rec.data,
            body.parts
                .iter()
                .map(|p| p.data.clone())
                .collect::<Vec<_>>()
        );
        let ends: Vec<(usize, u64)> = body
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.data.len() as u64))
            .collect();
        assert_eq!(rec.ends, ends);
    }

    #[test]
    fn anpr_multipart_one_byte_at_a_time() {
        let body = anpr_body();
        let pieces: Vec<&[u8]> = body.bytes.chunks(1).collect();
        let (d, rec) = run(
            Some("multipart/form-data; boundary=boundary"),
            &pieces,
            BodyLimits::default(),
        );
        check_anpr(&d, &rec);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn anpr_multipart_random_splits(cuts in proptest::collection::vec(0usize..60_000, 0..30)) {
            let body = anpr_body();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % body.bytes.len()).collect();
            cuts.sort_unstable();
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for c in cuts {
                pieces.push(&body.bytes[last..c]);
                last = c;
            }
            pieces.push(&body.bytes[last..]);
            let (d, rec) = run(Some("multipart/form-data; boundary=\"boundary\""), &pieces, BodyLimits::default());
            check_anpr(&d, &rec);
        }
    }

    #[test]
    fn metadata_part_chosen_by_type_not_name_or_position() {
        let face = tricky_jpeg(2000);
        let json = br#"{"ipAddress":"10.1.1.5","eventType":"AccessControllerEvent","AccessControllerEvent":{"majorEventType":5,"subEventType":75,"cardNo":"42"}}"#;
        // Picture first; a text/plain part that is not JSON; then the JSON part without a type.
        let mut body = build(
            "MIME_boundary",
            "",
            &[
                ("Picture", Some("face.jpg"), "image/jpeg", &face, true),
                ("note", None, "text/plain", b"  hello", false),
                ("event_log", None, "text/plain", json, false),
            ],
        );
        let (d, rec) = run(
            Some("multipart/form-data; boundary=MIME_boundary"),
            &[&body.bytes],
            BodyLimits::default(),
        );
        assert_eq!(d.error, None);
        let e = d.event.clone().unwrap_or_default();
        assert_eq!(e.event_type.as_deref(), Some("AccessControllerEvent"));
        let ace = e.tree.child("AccessControllerEvent");
        assert_eq!(ace.and_then(|n| n.child_text("cardNo")), Some("42"));
        assert_eq!(d.metadata.as_deref().map(str::as_bytes), Some(&json[..]));
        assert_eq!(
            d.parts.iter().map(|p| p.bytes).collect::<Vec<_>>(),
            vec![2002, 7, json.len() as u64]
        );
        assert_eq!(rec.ends.len(), 3);

        // The same body, multipart/mixed, boundary only in the body.
        let (d, _) = run(
            Some("multipart/mixed"),
            &[&body.bytes],
            BodyLimits::default(),
        );
        assert_eq!(
            d.event.as_ref().and_then(|e| e.event_type.as_deref()),
            Some("AccessControllerEvent")
        );
        let warnings = d.event.map(|e| e.warnings).unwrap_or_default();
        assert_eq!(
            warnings,
            vec!["Content-Type has no boundary; using the body's (MIME_boundary)".to_string()]
        );

        // No picture, no XML/JSON part at all.
        body = build(
            "AaB03x",
            "",
            &[("Picture", None, "image/jpeg", &face, false)],
        );
        let (d, _) = run(
            Some("multipart/form-data; boundary=AaB03x"),
            &[&body.bytes],
            BodyLimits::default(),
        );
        assert_eq!(d.event, None);
        assert_eq!(d.metadata, None);
        assert_eq!(
            d.error.as_deref(),
            Some("no XML or JSON part among 1 parts")
        );
    }

    #[test]
    fn sniffed_multipart_and_boundary_mismatch() {
        let body = anpr_body();
        // No Content-Type at all.
        let (d, _) = run(None, &[&body.bytes], BodyLimits::default());
        assert_eq!(d.kind, "multipart");
        assert_eq!(d.parts.len(), 3);
        let w = d.event.map(|e| e.warnings).unwrap_or_default();
        assert_eq!(
            w,
            vec!["multipart body without a multipart Content-Type (boundary boundary)".to_string()]
        );
        // Content-Type names another boundary.
        let (d, _) = run(
            Some("multipart/form-data; boundary=XYZ"),
            &[&body.bytes],
            BodyLimits::default(),
        );
        assert_eq!(d.parts.len(), 3);
        assert_eq!(d.error, None);
        // Content-Type says multipart but the body is XML.
        let (d, _) = run(
            Some("multipart/form-data; boundary=XYZ"),
            &[VMD.as_bytes()],
            BodyLimits::default(),
        );
        assert_eq!(d.kind, "xml");
        assert_eq!(
            d.event.as_ref().and_then(|e| e.event_type.as_deref()),
            Some("VMD")
        );
    }

    #[test]
    fn limits_metadata_and_parts() {
        let body = anpr_body();
        let limits = BodyLimits {
            max_metadata_bytes: 200,
            max_parts: 2,
            ..BodyLimits::default()
        };
        let (d, rec) = run(
            Some("multipart/form-data; boundary=boundary"),
            &[&body.bytes],
            limits,
        );
        assert_eq!(d.parts.len(), 2);
        assert_eq!(d.extra_parts, 1);
        assert_eq!(rec.starts.len(), 2);
        assert_eq!(d.metadata.as_ref().map(|m| m.len()), Some(200));
        let e = d.event.unwrap_or_default();
        // eventType sits inside the first 200 bytes; the plate does not.
        assert_eq!(e.event_type.as_deref(), Some("ANPR"));
        assert_eq!(e.plate, None);
        assert!(
            e.warnings
                .iter()
                .any(|w| w == "metadata is 304 bytes; decoded from the first 200"),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn missing_bytes_plain_and_multipart() {
        let body = VMD.as_bytes();
        let mut rec = Rec::default();
        let mut dec = BodyDecoder::new(Some("application/xml"), BodyLimits::default());
        dec.feed(&body[..150], Some(&mut rec));
        dec.missing(20);
        dec.feed(&body[170..], Some(&mut rec));
        let d = dec.finish(Some(&mut rec));
        assert_eq!(d.bytes, body.len() as u64);
        assert_eq!(rec.ends, vec![(0, body.len() as u64)]);
        assert_eq!(rec.data[0].len(), body.len());
        let e = d.event.unwrap_or_default();
        assert!(
            e.warnings
                .iter()
                .any(|w| w == "20 body bytes missing from the capture"),
            "{:?}",
            e.warnings
        );

        let body = anpr_body();
        let pic_start = body.bytes.len() - "\r\n--boundary--\r\n".len() - body.parts[2].data.len();
        let mut rec = Rec::default();
        let mut dec = BodyDecoder::new(
            Some("multipart/form-data; boundary=boundary"),
            BodyLimits::default(),
        );
        dec.feed(&body.bytes[..pic_start + 10], Some(&mut rec));
        dec.missing(1000);
        dec.feed(&body.bytes[pic_start + 1010..], Some(&mut rec));
        let d = dec.finish(Some(&mut rec));
        assert_eq!(d.error, None);
        assert_eq!(d.parts[2].bytes, body.parts[2].data.len() as u64);
        assert_eq!(rec.data[2][10..1010].to_vec(), vec![0u8; 1000]);
        let e = d.event.unwrap_or_default();
        assert_eq!(
            e.warnings,
            vec![
                "1000 body bytes missing from the capture in part 2 (\"detectionPicture.jpg\")"
                    .to_string()
            ]
        );
    }

    #[test]
    fn truncated_multipart_keeps_counts() {
        let body = anpr_body();
        let cut = body.bytes.len() - 20_000;
        let (d, rec) = run(
            Some("multipart/form-data; boundary=boundary"),
            &[&body.bytes[..cut]],
            BodyLimits::default(),
        );
        let so_far = body.parts[2].data.len() as u64 - 20_000 + "\r\n--boundary--\r\n".len() as u64;
        assert_eq!(d.parts.len(), 3);
        assert_eq!(d.parts[2].bytes, so_far);
        assert_eq!(rec.ends.last(), Some(&(2, so_far)));
        assert_eq!(
            d.error,
            Some(format!("multipart: body ended inside part 2 (\"detectionPicture.jpg\") after {so_far} bytes"))
        );
        assert_eq!(d.event.and_then(|e| e.plate).as_deref(), Some("AB123CD"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Arbitrary bytes and gaps under any Content-Type: no panic, and the byte count is exact.
        #[test]
        fn arbitrary_input_never_panics(
            ct in proptest::sample::select(vec![
                "multipart/form-data; boundary=boundary", "multipart/mixed", "application/xml", "text/plain", "",
            ]),
            pieces in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..300), 0u64..50), 0..10),
            prefix in any::<bool>(),
        ) {
            let mut dec = BodyDecoder::new(Some(ct).filter(|c| !c.is_empty()), BodyLimits::default());
            let mut rec = Rec::default();
            let mut total = 0u64;
            if prefix {
                dec.feed(b"--boundary\r\nContent-Type: text/xml\r\n\r\n<a>", Some(&mut rec));
                total += 41;
            }
            for (data, gap) in &pieces {
                dec.feed(data, Some(&mut rec));
                dec.missing(*gap);
                total += data.len() as u64 + gap;
            }
            let d = dec.finish(Some(&mut rec));
            prop_assert_eq!(d.bytes, total);
        }
    }
}
