//! The device's own event stream, `GET /ISAPI/Event/notification/alertStream`: a long-lived
//! `multipart/mixed` answer, one part per event (XML or JSON, sometimes followed by a picture
//! part), for as long as the connection lasts. Sans-IO: bytes in, [`StreamItem`]s out.
//!
//! Why not [`super::multipart::MultipartDecoder`]: that one is strict RFC 2046 for a body that
//! ends, and a part ends only at the next delimiter. Here the body never ends, and devices
//! write the delimiter *before* each part, so waiting for it would hold every event until the
//! next one (or the next keep-alive, up to tens of seconds later). Published streams also show
//! LF-only line ends and `Content-Length` values that do not match the part (documentation
//! samples re-indented by hand). So a part is taken as finished at the first of:
//! 1. the next delimiter line (`--boundary` at a line start, CRLF or LF);
//! 2. its `Content-Length`, when the bytes it covers form a complete XML or JSON document;
//! 3. a complete XML or JSON document (root element closed, braces balanced) without waiting.
//!
//! Memory is bounded: a part larger than [`StreamLimits::max_part`] is skipped to the next
//! delimiter (reported, never kept), headers by [`StreamLimits::max_head`], and bytes outside
//! parts are dropped as they are scanned. Nothing here panics on input.

use memchr::memmem;

use super::event::{decode_event, EventInfo};

/// Bounds of the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest part kept (event documents are a few KB; pictures may follow as parts).
    pub max_part: usize,
    /// Largest part header block.
    pub max_head: usize,
    /// Parts up to this size are checked for completeness as they arrive (rule 3); larger
    /// ones wait for their delimiter or Content-Length, so the scan stays cheap.
    pub max_early: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_part: 4 << 20,
            max_head: 16 << 10,
            max_early: 64 << 10,
        }
    }
}

/// Why part of the stream could not be used. Located by part index (0-based, in stream order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamProblem {
    /// Bytes that are neither part headers, content nor a delimiter (`bytes` dropped).
    Garbage { after_part: Option<u64>, bytes: u64 },
    /// A part's headers were longer than the limit; the part was skipped.
    HeadTooLarge { index: u64, limit: usize },
    /// A part was larger than the limit; skipped to the next delimiter.
    PartTooLarge { index: u64, limit: usize },
    /// An XML/JSON part that is no event (the decoder's message).
    Undecodable { index: u64, error: String },
    /// The part's `Content-Length` did not match its content (it was read to its delimiter or
    /// to the end of its document instead).
    LengthMismatch {
        index: u64,
        declared: u64,
        actual: u64,
    },
    /// The stream ended inside a part.
    Truncated { index: u64, bytes: u64 },
}

impl std::fmt::Display for StreamProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamProblem::Garbage { after_part, bytes } => match after_part {
                Some(i) => write!(f, "{bytes} bytes outside any part after part {i}"),
                None => write!(f, "{bytes} bytes before the first part"),
            },
            StreamProblem::HeadTooLarge { index, limit } => {
                write!(
                    f,
                    "part {index}: headers longer than {limit} bytes; skipped"
                )
            }
            StreamProblem::PartTooLarge { index, limit } => {
                write!(f, "part {index}: larger than {limit} bytes; skipped")
            }
            StreamProblem::Undecodable { index, error } => {
                write!(f, "part {index}: not an event: {error}")
            }
            StreamProblem::LengthMismatch {
                index,
                declared,
                actual,
            } => write!(
                f,
                "part {index}: Content-Length {declared} but {actual} bytes of content"
            ),
            StreamProblem::Truncated { index, bytes } => {
                write!(f, "part {index}: stream ended after {bytes} bytes of it")
            }
        }
    }
}

/// What the decoder reports, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// An event part, decoded by the project's event decoder.
    Event {
        index: u64,
        event: Box<EventInfo>,
    },
    /// A part that is not XML or JSON (a picture): counted, not kept.
    Attachment {
        index: u64,
        content_type: Option<String>,
        bytes: u64,
    },
    /// The closing delimiter (`--boundary--`): the device ended the stream.
    End,
    Problem(StreamProblem),
}

/// An alertStream event that only says the stream is alive: `heartBeat`, or the `videoloss`
/// / `inactive` older cameras send every few seconds on the stream.
pub fn is_keepalive(e: &EventInfo) -> bool {
    is_keepalive_type(e.event_type.as_deref(), e.event_state.as_deref())
}

/// [`is_keepalive`] from the type and state alone (for decoded summaries).
pub fn is_keepalive_type(event_type: Option<&str>, state: Option<&str>) -> bool {
    let ty = event_type.unwrap_or("");
    let state = state.unwrap_or("");
    ty.eq_ignore_ascii_case("heartBeat")
        || (ty.eq_ignore_ascii_case("videoloss") && state.eq_ignore_ascii_case("inactive"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for a delimiter line.
    Seek,
    /// After a delimiter line: part headers up to the blank line.
    Head,
    /// In a part's content.
    Body,
    /// In a part too large to keep: drop to the next delimiter.
    Skip,
    /// After the closing delimiter.
    Done,
}

/// Streaming alertStream decoder (see the module doc).
#[derive(Debug)]
pub struct AlertStreamDecoder {
    /// `--boundary`; learnt from the first `--` line when the Content-Type gave none.
    dash_boundary: Option<Vec<u8>>,
    limits: StreamLimits,
    state: State,
    buf: Vec<u8>,
    /// How far `buf` was searched for a delimiter already.
    scanned: usize,
    parts: u64,
    content_type: Option<String>,
    content_length: Option<usize>,
    /// Bytes dropped outside parts since the last report.
    garbage: u64,
}

impl AlertStreamDecoder {
    /// `boundary` from the answer's Content-Type (`multipart/mixed; boundary=...`), if any.
    pub fn new(boundary: Option<&str>) -> Self {
        Self::with_limits(boundary, StreamLimits::default())
    }

    /// With other bounds (tests).
    pub fn with_limits(boundary: Option<&str>, limits: StreamLimits) -> Self {
        AlertStreamDecoder {
            dash_boundary: boundary
                .map(|b| b.trim().trim_matches('"'))
                .filter(|b| !b.is_empty())
                .map(|b| format!("--{b}").into_bytes()),
            limits,
            state: State::Seek,
            buf: Vec::new(),
            scanned: 0,
            parts: 0,
            content_type: None,
            content_length: None,
            garbage: 0,
        }
    }

    /// Parts begun so far.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// Feed the next bytes of the answer body; finished items are appended to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<StreamItem>) {
        if self.state == State::Done {
            return;
        }
        self.buf.extend_from_slice(data);
        while self.step(out) {}
    }

    /// The connection ended: report a part cut short (a complete document is still decoded).
    pub fn finish(&mut self, out: &mut Vec<StreamItem>) {
        match self.state {
            State::Body => {
                let body = std::mem::take(&mut self.buf);
                let trimmed = trim_end(&body);
                if complete_document(trimmed) {
                    self.emit(trimmed, out);
                } else if !trimmed.is_empty() {
                    out.push(StreamItem::Problem(StreamProblem::Truncated {
                        index: self.parts.saturating_sub(1),
                        bytes: trimmed.len() as u64,
                    }));
                }
            }
            State::Head | State::Skip => out.push(StreamItem::Problem(StreamProblem::Truncated {
                index: self.parts.saturating_sub(1),
                bytes: self.buf.len() as u64,
            })),
            State::Seek => {
                self.garbage += trim_end(&self.buf).len() as u64;
                self.flush_garbage(out);
            }
            State::Done => {}
        }
        self.buf.clear();
        self.scanned = 0;
        self.state = State::Done;
    }

    fn flush_garbage(&mut self, out: &mut Vec<StreamItem>) {
        if self.garbage > 0 {
            out.push(StreamItem::Problem(StreamProblem::Garbage {
                after_part: self.parts.checked_sub(1),
                bytes: self.garbage,
            }));
            self.garbage = 0;
        }
    }

    /// Drop the first `n` bytes of the buffer.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        self.scanned = self.scanned.saturating_sub(n);
    }

    /// Position of the next delimiter line start (`--boundary` at the start of `buf` or after
    /// `\n`) at or after the scanned mark; returns the index of its first `-`.
    fn find_delimiter(&mut self) -> Option<usize> {
        let dash = self.dash_boundary.as_deref()?;
        let from = self.scanned.saturating_sub(dash.len() + 1);
        let hay = self.buf.get(from..)?;
        let mut found = None;
        for i in memmem::find_iter(hay, dash) {
            let at = from + i;
            if at == 0 || self.buf.get(at - 1) == Some(&b'\n') {
                found = Some(at);
                break;
            }
        }
        if found.is_none() {
            self.scanned = self.buf.len();
        }
        found
    }

    /// One transition; false when more input is needed.
    fn step(&mut self, out: &mut Vec<StreamItem>) -> bool {
        match self.state {
            State::Seek => self.seek(out),
            State::Head => self.head(out),
            State::Body => self.body(out),
            State::Skip => self.skip(),
            State::Done => false,
        }
    }

    fn seek(&mut self, out: &mut Vec<StreamItem>) -> bool {
        if self.dash_boundary.is_none() {
            // Learn the boundary from the first line that starts with `--`.
            let Some(nl) = memchr::memchr(b'\n', &self.buf) else {
                if self.buf.len() > self.limits.max_head {
                    self.garbage += self.buf.len() as u64;
                    self.buf.clear();
                }
                return false;
            };
            let line = trim_end(self.buf.get(..nl).unwrap_or_default());
            if line.starts_with(b"--") && line.len() > 2 {
                let b = line.strip_suffix(b"--").unwrap_or(line);
                self.dash_boundary = Some(b.to_vec());
            } else {
                self.garbage += (nl + 1) as u64;
                self.consume(nl + 1);
                return true;
            }
        }
        let Some(at) = self.find_delimiter() else {
            // Keep only what could be the start of a delimiter.
            let keep = self.dash_boundary.as_ref().map_or(0, |d| d.len() + 1);
            let drop = self.buf.len().saturating_sub(keep);
            self.garbage += trim_count(self.buf.get(..drop).unwrap_or_default());
            self.consume(drop);
            return false;
        };
        let dlen = self.dash_boundary.as_ref().map_or(0, Vec::len);
        let after = at + dlen;
        // The rest of the delimiter line: `--` (close), or padding then the line end.
        let Some(nl) = self.buf.get(after..).and_then(|r| memchr::memchr(b'\n', r)) else {
            if self.buf.get(after..after + 2) == Some(b"--") {
                self.garbage += trim_count(self.buf.get(..at).unwrap_or_default());
                self.flush_garbage(out);
                out.push(StreamItem::End);
                self.buf.clear();
                self.state = State::Done;
                return false;
            }
            return false;
        };
        self.garbage += trim_count(self.buf.get(..at).unwrap_or_default());
        self.flush_garbage(out);
        let rest = trim_end(self.buf.get(after..after + nl).unwrap_or_default());
        if rest.starts_with(b"--") {
            out.push(StreamItem::End);
            self.buf.clear();
            self.state = State::Done;
            return false;
        }
        self.consume(after + nl + 1);
        self.parts = self.parts.saturating_add(1);
        self.content_type = None;
        self.content_length = None;
        self.state = State::Head;
        true
    }

    fn head(&mut self, out: &mut Vec<StreamItem>) -> bool {
        let index = self.parts.saturating_sub(1);
        loop {
            // A part without headers: content right after the delimiter line.
            let first = self.buf.iter().find(|b| !b.is_ascii_whitespace());
            if self.content_type.is_none()
                && self.content_length.is_none()
                && matches!(first, Some(b'<') | Some(b'{'))
            {
                self.state = State::Body;
                return true;
            }
            let Some(nl) = memchr::memchr(b'\n', &self.buf) else {
                if self.buf.len() > self.limits.max_head {
                    out.push(StreamItem::Problem(StreamProblem::HeadTooLarge {
                        index,
                        limit: self.limits.max_head,
                    }));
                    self.consume(self.buf.len());
                    self.state = State::Skip;
                    return true;
                }
                return false;
            };
            let line = trim_end(self.buf.get(..nl).unwrap_or_default()).to_vec();
            self.consume(nl + 1);
            if line.is_empty() {
                self.state = State::Body;
                return true;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some((name, value)) = text.split_once(':') {
                let value = value.trim();
                if name.trim().eq_ignore_ascii_case("content-type") {
                    self.content_type = Some(value.to_string());
                } else if name.trim().eq_ignore_ascii_case("content-length") {
                    self.content_length = value.parse().ok();
                }
            }
        }
    }

    fn body(&mut self, out: &mut Vec<StreamItem>) -> bool {
        let index = self.parts.saturating_sub(1);
        if let Some(at) = self.find_delimiter() {
            // Content ends at the line break before the delimiter.
            let end = if at > 0 { at - 1 } else { 0 };
            let end = if end > 0 && self.buf.get(end - 1) == Some(&b'\r') {
                end - 1
            } else {
                end
            };
            let body = self.buf.get(..end).unwrap_or_default().to_vec();
            self.finish_part(index, &body, out);
            self.consume(at);
            self.state = State::Seek;
            return true;
        }
        if let Some(cl) = self.content_length {
            if let Some(exact) = self.buf.get(..cl) {
                let binary = !is_document_type(self.content_type.as_deref());
                if binary || complete_document(trim_end(exact)) {
                    let body = exact.to_vec();
                    self.finish_part(index, &body, out);
                    self.consume(cl);
                    self.state = State::Seek;
                    return true;
                }
            }
        }
        if self.buf.len() <= self.limits.max_early {
            let t = trim_end(&self.buf);
            if matches!(t.last(), Some(b'>') | Some(b'}')) && complete_document(t) {
                let body = t.to_vec();
                self.finish_part(index, &body, out);
                self.consume(self.buf.len());
                self.state = State::Seek;
                return true;
            }
        }
        if self.buf.len() > self.limits.max_part {
            out.push(StreamItem::Problem(StreamProblem::PartTooLarge {
                index,
                limit: self.limits.max_part,
            }));
            self.state = State::Skip;
            return true;
        }
        false
    }

    fn skip(&mut self) -> bool {
        if let Some(at) = self.find_delimiter() {
            self.consume(at);
            self.state = State::Seek;
            return true;
        }
        let keep = self.dash_boundary.as_ref().map_or(0, |d| d.len() + 1);
        let drop = self.buf.len().saturating_sub(keep);
        self.consume(drop);
        false
    }

    fn finish_part(&mut self, index: u64, body: &[u8], out: &mut Vec<StreamItem>) {
        if let Some(cl) = self.content_length {
            // A declared length counts the content exactly or with the line break after it.
            let t = trim_end(body).len();
            if cl != body.len() && cl != t && cl != t + 1 && cl != t + 2 {
                out.push(StreamItem::Problem(StreamProblem::LengthMismatch {
                    index,
                    declared: cl as u64,
                    actual: body.len() as u64,
                }));
            }
        }
        self.emit(body, out);
    }

    fn emit(&mut self, body: &[u8], out: &mut Vec<StreamItem>) {
        let index = self.parts.saturating_sub(1);
        let ct = self.content_type.take();
        self.content_length = None;
        if !is_document_type(ct.as_deref()) {
            out.push(StreamItem::Attachment {
                index,
                content_type: ct,
                bytes: body.len() as u64,
            });
            return;
        }
        match decode_event(body, ct.as_deref()) {
            Ok(event) => out.push(StreamItem::Event {
                index,
                event: Box::new(event),
            }),
            Err(e) => out.push(StreamItem::Problem(StreamProblem::Undecodable {
                index,
                error: e.to_string(),
            })),
        }
    }
}

/// XML, JSON, text or no type at all: decoded as an event; anything else (pictures) is not.
fn is_document_type(ct: Option<&str>) -> bool {
    match ct {
        None => true,
        Some(t) => {
            let t = t.to_ascii_lowercase();
            t.contains("xml") || t.contains("json") || t.starts_with("text/") || t.is_empty()
        }
    }
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    b.get(..n).unwrap_or_default()
}

/// Non-whitespace bytes (what counts as garbage between parts).
fn trim_count(b: &[u8]) -> u64 {
    b.iter().filter(|c| !c.is_ascii_whitespace()).count() as u64
}

/// A whole XML document (its root element closed) or JSON value (braces balanced, outside
/// strings). Cheap and conservative: false when unsure.
fn complete_document(b: &[u8]) -> bool {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace() && *c != 0xEF && *c != 0xBB && *c != 0xBF);
    let Some(start) = start else { return false };
    let doc = b.get(start..).unwrap_or_default();
    match doc.first() {
        Some(b'{') => json_complete(doc),
        Some(b'<') => xml_complete(doc),
        _ => false,
    }
}

fn json_complete(doc: &[u8]) -> bool {
    let mut depth = 0i64;
    let mut in_str = false;
    let mut esc = false;
    for (i, &c) in doc.iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return doc
                        .get(i + 1..)
                        .is_some_and(|r| r.iter().all(u8::is_ascii_whitespace));
                }
            }
            _ => {}
        }
    }
    false
}

fn xml_complete(doc: &[u8]) -> bool {
    // The root element's name: the first `<` not followed by `?` or `!`.
    let mut i = 0;
    let name = loop {
        let Some(p) = doc.get(i..).and_then(|r| memchr::memchr(b'<', r)) else {
            return false;
        };
        let at = i + p + 1;
        match doc.get(at) {
            Some(b'?') | Some(b'!') => i = at,
            Some(_) => {
                let end = doc
                    .get(at..)
                    .and_then(|r| {
                        r.iter()
                            .position(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/')
                    })
                    .map_or(doc.len(), |e| at + e);
                break doc.get(at..end).unwrap_or_default();
            }
            None => return false,
        }
    };
    if name.is_empty() {
        return false;
    }
    let t = trim_end(doc);
    let mut close = b"</".to_vec();
    close.extend_from_slice(name);
    // `</name>` or `</name  >` at the very end.
    let Some(last) = memmem::rfind(t, &close) else {
        return false;
    };
    t.get(last + close.len()..).is_some_and(|r| {
        r.iter().all(|c| c.is_ascii_whitespace() || *c == b'>') && r.contains(&b'>')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml_event(ty: &str, state: &str, n: u32) -> String {
        format!(
            "<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>192.0.2.64</ipAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2026-12-02T10:00:{n:02}+01:00</dateTime>\r\n<activePostCount>1</activePostCount>\r\n<eventType>{ty}</eventType>\r\n<eventState>{state}</eventState>\r\n<eventDescription>{ty} alarm</eventDescription>\r\n</EventNotificationAlert>\r\n"
        )
    }

    fn part(body: &str, ct: &str, cl: Option<usize>) -> String {
        let cl = cl.unwrap_or(body.len());
        format!("--boundary\r\nContent-Type: {ct}\r\nContent-Length: {cl}\r\n\r\n{body}")
    }

    fn run(dec: &mut AlertStreamDecoder, data: &[u8], chunk: usize) -> Vec<StreamItem> {
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            dec.feed(c, &mut out);
        }
        out
    }

    fn types(items: &[StreamItem]) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Event { event, .. } => event.event_type.clone(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn events_come_out_before_the_next_delimiter() {
        // Devices write the delimiter before each part: the last event must not wait for it.
        let s = part(
            &xml_event("VMD", "active", 1),
            "application/xml; charset=\"UTF-8\"",
            None,
        );
        let mut d = AlertStreamDecoder::new(Some("boundary"));
        let out = run(&mut d, s.as_bytes(), 7);
        assert_eq!(types(&out), vec!["VMD"]);
        let mut d = AlertStreamDecoder::new(Some("boundary"));
        // Without Content-Length the end of the document is enough.
        let s = format!(
            "--boundary\r\nContent-Type: application/xml\r\n\r\n{}",
            xml_event("IO", "active", 2)
        );
        assert_eq!(types(&run(&mut d, s.as_bytes(), 3)), vec!["IO"]);
    }

    #[test]
    fn every_chunking_gives_the_same_items() {
        let mut s = String::new();
        for (i, ty) in ["VMD", "linedetection", "videoloss"].iter().enumerate() {
            s.push_str(&part(
                &xml_event(ty, "active", i as u32),
                "application/xml",
                None,
            ));
            s.push_str("\r\n");
        }
        let json = "{\n \"eventType\": \"AccessControllerEvent\",\n \"eventState\": \"active\",\n \"note\": \"a } in a string\"\n}";
        s.push_str(&part(json, "application/json", None));
        s.push_str("\r\n--boundary\r\nContent-Type: image/jpeg\r\nContent-Length: 6\r\n\r\n\x7f\x01}>\x02\x03\r\n--boundary--\r\n");
        let whole = run(
            &mut AlertStreamDecoder::new(Some("boundary")),
            s.as_bytes(),
            usize::MAX,
        );
        assert_eq!(
            types(&whole),
            vec!["VMD", "linedetection", "videoloss", "AccessControllerEvent"]
        );
        assert!(whole
            .iter()
            .any(|i| matches!(i, StreamItem::Attachment { bytes: 6, .. })));
        assert_eq!(whole.last(), Some(&StreamItem::End));
        for chunk in [1, 2, 3, 5, 13, 64] {
            let got = run(
                &mut AlertStreamDecoder::new(Some("boundary")),
                s.as_bytes(),
                chunk,
            );
            assert_eq!(got, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn lf_line_ends_wrong_lengths_and_a_learnt_boundary() {
        // As documentation samples show streams: LF only, a Content-Length that counts
        // something else, no boundary parameter known, no closing delimiter.
        let a = "{\n  \"eventType\": \"videoloss\",\n  \"eventState\": \"inactive\",\n  \"channelID\": 3\n}\n";
        let b = "{\n  \"eventType\": \"AccessControllerEvent\",\n  \"eventState\": \"active\"\n}\n";
        let s = format!(
            "--MIME_boundary\nContent-Type: application/json; charset=\"UTF-8\"\nContent-Length: 42\n\n{a}\n--MIME_boundary\nContent-Type: application/json\nContent-Length: 500\n\n{b}"
        );
        let mut d = AlertStreamDecoder::new(None);
        let mut out = run(&mut d, s.as_bytes(), 4);
        d.finish(&mut out);
        assert_eq!(types(&out), vec!["videoloss", "AccessControllerEvent"]);
        assert!(out.iter().any(|i| matches!(
            i,
            StreamItem::Problem(StreamProblem::LengthMismatch {
                index: 0,
                declared: 42,
                ..
            })
        )));
        let ev = out.iter().find_map(|i| match i {
            StreamItem::Event { event, .. } => Some(event),
            _ => None,
        });
        assert!(ev.is_some_and(|e| is_keepalive(e)));
    }

    #[test]
    fn parts_without_headers_and_garbage() {
        let s = format!(
            "junk before\r\n--boundary\r\n{}--boundary\r\nX-Odd: 1\r\n\r\nnot a document\r\n--boundary\r\n\r\n{}",
            xml_event("VMD", "active", 1),
            xml_event("IO", "active", 2)
        );
        let out = run(
            &mut AlertStreamDecoder::new(Some("boundary")),
            s.as_bytes(),
            9,
        );
        assert_eq!(types(&out), vec!["VMD", "IO"]);
        assert!(out.iter().any(|i| matches!(
            i,
            StreamItem::Problem(StreamProblem::Garbage {
                after_part: None,
                ..
            })
        )));
        assert!(out.iter().any(|i| matches!(
            i,
            StreamItem::Problem(StreamProblem::Undecodable { index: 1, .. })
        )));
    }

    #[test]
    fn memory_is_bounded_and_oversized_parts_are_skipped() {
        let limits = StreamLimits {
            max_part: 1024,
            max_head: 256,
            max_early: 512,
        };
        let mut d = AlertStreamDecoder::with_limits(Some("b"), limits);
        let mut out = Vec::new();
        d.feed(
            b"--b\r\nContent-Type: application/xml\r\n\r\n<Big>",
            &mut out,
        );
        for _ in 0..1000 {
            d.feed(&[b'x'; 1000], &mut out);
            assert!(d.buf.len() <= 2 * 1024, "{}", d.buf.len());
        }
        d.feed(
            format!("\r\n--b\r\n\r\n{}", xml_event("VMD", "active", 1)).as_bytes(),
            &mut out,
        );
        assert!(out.iter().any(|i| matches!(
            i,
            StreamItem::Problem(StreamProblem::PartTooLarge { index: 0, .. })
        )));
        assert_eq!(types(&out), vec!["VMD"]);
        // Endless bytes with no delimiter at all stay bounded too.
        let mut d = AlertStreamDecoder::with_limits(Some("b"), limits);
        for _ in 0..1000 {
            d.feed(&[b'-'; 999], &mut out);
            assert!(d.buf.len() <= 16);
        }
        let mut d = AlertStreamDecoder::with_limits(None, limits);
        for _ in 0..100 {
            d.feed(&[b'a'; 999], &mut out);
            assert!(d.buf.len() <= 1300);
        }
        let mut d = AlertStreamDecoder::with_limits(Some("b"), limits);
        d.feed(b"--b\r\n", &mut out);
        for _ in 0..100 {
            d.feed(&[b'h'; 999], &mut out);
            assert!(d.buf.len() <= 1300);
        }
        assert!(out
            .iter()
            .any(|i| matches!(i, StreamItem::Problem(StreamProblem::HeadTooLarge { .. }))));
    }

    #[test]
    fn truncated_stream_is_reported() {
        let mut d = AlertStreamDecoder::new(Some("boundary"));
        let mut out = Vec::new();
        d.feed(b"--boundary\r\nContent-Type: application/xml\r\n\r\n<EventNotificationAlert><eventType>VMD", &mut out);
        assert!(out.is_empty());
        d.finish(&mut out);
        assert!(matches!(
            out.as_slice(),
            [StreamItem::Problem(StreamProblem::Truncated {
                index: 0,
                ..
            })]
        ));
    }

    #[test]
    fn completeness() {
        assert!(complete_document(
            b"<?xml version=\"1.0\"?>\n<!-- c --><a x=\"1\"><b/></a>\n"
        ));
        assert!(!complete_document(b"<a><b></b>"));
        assert!(!complete_document(b"<a><a></a>x"));
        assert!(complete_document(b"{\"a\": \"}\", \"b\": [1, {}]}"));
        assert!(!complete_document(b"{\"a\": \"}\""));
        assert!(!complete_document(b"plain"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), chunk in 1usize..40) {
            let mut d = AlertStreamDecoder::with_limits(Some("b"), StreamLimits { max_part: 128, max_head: 64, max_early: 64 });
            let mut out = Vec::new();
            for c in data.chunks(chunk) {
                d.feed(c, &mut out);
                proptest::prop_assert!(d.buf.len() <= 600);
            }
            d.finish(&mut out);
            let mut d = AlertStreamDecoder::new(None);
            d.feed(&data, &mut out);
            d.finish(&mut out);
        }
    }
}
