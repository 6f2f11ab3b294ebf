//! Streaming `multipart/form-data` over multer, driven sans-IO: multer's parser is polled by hand
//! with a no-op waker over a buffer the caller fills, so no runtime, socket or thread is involved
//! and part bytes are counted (and passed on) as they arrive rather than collected.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream::Stream;

use super::body::PartHeader;

/// Largest piece handed to multer at once: multer copies everything queued into its buffer on
/// each poll, so feeding bounded pieces and draining between them bounds that buffer.
pub const PIECE: usize = 16 * 1024;
/// Most bytes of preamble plus part headers waited through before giving up: multer buffers
/// these whole (it searches them for the boundary / the blank line), so they must be bounded.
pub const MAX_HEAD_BYTES: u64 = 64 * 1024;
/// Largest capture gap filled with zeros to keep part sizes exact; a larger gap stops parsing.
pub const MAX_GAP_FILL: u64 = 1024 * 1024;

static ZEROS: [u8; PIECE] = [0; PIECE];

/// What the decoder reports, in body order.
#[derive(Debug, PartialEq, Eq)]
pub enum PartEvent<'a> {
    /// A part's headers were read.
    Start(PartHeader),
    /// Bytes of the part's content (exact: boundary and its CRLF excluded).
    Data { index: usize, data: &'a [u8] },
    /// The part is over. `complete` is false when the body ended inside it (then `bytes` is its
    /// size so far).
    End {
        index: usize,
        bytes: u64,
        complete: bool,
    },
}

/// The byte queue multer reads from. multer needs a `Send` stream, hence `Arc<Mutex<..>>`.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    closed: bool,
}

struct QueueStream(Arc<Mutex<Queue>>);

fn lock(q: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A poisoned lock only means a panic elsewhere; the queue itself is still consistent.
    q.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stream for QueueStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut q = lock(&self.0);
        match q.chunks.pop_front() {
            Some(b) => Poll::Ready(Some(Ok(b))),
            None if q.closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// The part being read.
struct Current {
    field: multer::Field<'static>,
    index: usize,
    name: Option<String>,
    bytes: u64,
}

/// Streaming `multipart/*` decoder: multer's parser polled by hand (no runtime), fed in pieces.
pub struct MultipartDecoder {
    boundary: String,
    queue: Arc<Mutex<Queue>>,
    multipart: multer::Multipart<'static>,
    current: Option<Current>,
    parts: usize,
    /// Bytes pushed since the last part started while no part was open (preamble + headers).
    head_bytes: u64,
    /// Final boundary seen.
    done: bool,
    /// Parsing stopped on this error.
    error: Option<String>,
    /// Bytes missing from the capture so far (filled with zeros or not).
    missing: u64,
    /// Set while `finish` pushes a synthetic closing boundary after a part cut short.
    finishing: bool,
    /// Set when `finish` completed a delimiter the body ended inside of.
    completed_delimiter: bool,
    /// The last bytes fed (at most the delimiter's length), to recognise a body that ends
    /// inside a delimiter.
    tail: Vec<u8>,
    /// Input gathered until a whole piece is ready for multer.
    pending: bytes::BytesMut,
}

impl std::fmt::Debug for MultipartDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultipartDecoder")
            .field("boundary", &self.boundary)
            .field("parts", &self.parts)
            .field("done", &self.done)
            .field("error", &self.error)
            .finish()
    }
}

impl MultipartDecoder {
    /// `boundary` as in the Content-Type parameter (quotes already removed).
    pub fn new(boundary: &str) -> Self {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let stream = QueueStream(queue.clone());
        MultipartDecoder {
            boundary: boundary.to_string(),
            queue,
            // No multer size limits: they would cap pictures, not multer's buffering, which
            // `PIECE` and `MAX_HEAD_BYTES` bound instead.
            multipart: multer::Multipart::new(stream, boundary.to_string()),
            current: None,
            parts: 0,
            head_bytes: 0,
            done: false,
            error: None,
            missing: 0,
            finishing: false,
            completed_delimiter: false,
            tail: Vec::new(),
            pending: bytes::BytesMut::new(),
        }
    }

    /// Feed body bytes in order.
    ///
    /// Small inputs (one TCP segment each) are gathered into pieces of [`PIECE`] bytes before
    /// multer sees them: multer re-runs its boundary search on every poll, so handing it
    /// 1448-byte segments one by one costs several times more than the same bytes in 16 KiB.
    pub fn feed(&mut self, data: &[u8], on: &mut dyn FnMut(PartEvent<'_>)) {
        if self.stopped() {
            return;
        }
        self.pending.extend_from_slice(data);
        while self.pending.len() >= PIECE && !self.stopped() {
            let piece = self.pending.split_to(PIECE).freeze();
            self.push(piece, on);
        }
    }

    /// Hand the gathered bytes to multer now (before a gap or the end).
    pub fn flush(&mut self, on: &mut dyn FnMut(PartEvent<'_>)) {
        if !self.pending.is_empty() && !self.stopped() {
            let piece = self.pending.split().freeze();
            self.push(piece, on);
        }
    }

    /// `bytes` of the body are missing (capture gap). Small gaps are filled with zeros so that part
    /// sizes stay exact (the sink sees zeros); a gap over [`MAX_GAP_FILL`] stops parsing.
    pub fn gap(&mut self, bytes: u64, on: &mut dyn FnMut(PartEvent<'_>)) {
        self.flush(on);
        self.missing = self.missing.saturating_add(bytes);
        if self.stopped() || bytes == 0 {
            return;
        }
        if bytes > MAX_GAP_FILL {
            let at = match &self.current {
                Some(c) => format!("in part {}{}", c.index, quoted(&c.name)),
                None => "between parts".to_string(),
            };
            self.stop(format!("multipart: {bytes} body bytes missing from the capture {at}; parts after it not decoded"), on);
            return;
        }
        let mut left = bytes;
        while left > 0 && !self.stopped() {
            let n = usize::try_from(left).unwrap_or(PIECE).min(PIECE);
            self.push(Bytes::from_static(ZEROS.get(..n).unwrap_or_default()), on);
            left = left.saturating_sub(n as u64);
        }
    }

    /// The body is over. A part still open is reported incomplete with its size so far.
    pub fn finish(&mut self, on: &mut dyn FnMut(PartEvent<'_>)) {
        self.flush(on);
        if self.stopped() {
            return;
        }
        if self.current.is_some() {
            // multer holds back the last bytes of a part (they could start a delimiter) and drops
            // them at end of stream; a synthetic closing delimiter releases them. When the body
            // ends with the start of a delimiter ("\r\n--bou"), that delimiter is completed and
            // the part counts as whole; otherwise the part was cut short.
            let delim = format!("\r\n--{}", self.boundary);
            let started = (1..delim.len())
                .rev()
                .find(|&k| {
                    delim
                        .as_bytes()
                        .get(..k)
                        .is_some_and(|p| self.tail.ends_with(p))
                })
                .unwrap_or(0);
            let rest = delim.get(started..).unwrap_or_default();
            if started > 0 {
                self.completed_delimiter = true;
            } else {
                self.finishing = true;
            }
            lock(&self.queue)
                .chunks
                .push_back(Bytes::from(format!("{rest}--\r\n")));
        }
        lock(&self.queue).closed = true;
        self.drive(on);
        if self.completed_delimiter && self.done && self.error.is_none() {
            self.done = false;
            self.error = Some(format!(
                "multipart: body ended without the closing boundary{}",
                self.gap_note()
            ));
        }
        if !self.stopped() {
            // multer neither ended nor failed: cannot happen with a closed stream, but stay sound.
            self.error = Some("multipart: body ended before the closing boundary".to_string());
        }
    }

    /// Why parsing stopped (broken body, body ended early), if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// True once the closing boundary was read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Parts started so far.
    pub fn parts(&self) -> usize {
        self.parts
    }

    fn stopped(&self) -> bool {
        self.done || self.error.is_some()
    }

    fn push(&mut self, piece: Bytes, on: &mut dyn FnMut(PartEvent<'_>)) {
        if self.current.is_none() {
            self.head_bytes = self.head_bytes.saturating_add(piece.len() as u64);
        }
        let keep = self.boundary.len().saturating_add(4);
        self.tail.extend_from_slice(
            piece
                .get(piece.len().saturating_sub(keep)..)
                .unwrap_or_default(),
        );
        let excess = self.tail.len().saturating_sub(keep);
        self.tail.drain(..excess);
        lock(&self.queue).chunks.push_back(piece);
        self.drive(on);
        if !self.stopped() && self.current.is_none() && self.head_bytes > MAX_HEAD_BYTES {
            let what = if self.parts == 0 {
                format!("no boundary line \"--{}\" and part headers", self.boundary)
            } else {
                format!("no part headers after part {}", self.parts - 1)
            };
            self.stop(
                format!("multipart: {what} within {MAX_HEAD_BYTES} bytes"),
                on,
            );
        }
    }

    /// Stop parsing: close the open part (incomplete) and record why.
    fn stop(&mut self, why: String, on: &mut dyn FnMut(PartEvent<'_>)) {
        if let Some(c) = self.current.take() {
            on(PartEvent::End {
                index: c.index,
                bytes: c.bytes,
                complete: false,
            });
        }
        lock(&self.queue).chunks.clear();
        self.error = Some(why);
    }

    /// Poll multer until it needs more input, reporting what it yields.
    fn drive(&mut self, on: &mut dyn FnMut(PartEvent<'_>)) {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Some(cur) = self.current.as_mut() {
                match Pin::new(&mut cur.field).poll_next(&mut cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        if !data.is_empty() {
                            cur.bytes = cur.bytes.saturating_add(data.len() as u64);
                            on(PartEvent::Data {
                                index: cur.index,
                                data: &data,
                            });
                        }
                    }
                    Poll::Ready(None) => {
                        let complete = !self.finishing;
                        if let Some(c) = self.current.take() {
                            on(PartEvent::End {
                                index: c.index,
                                bytes: c.bytes,
                                complete,
                            });
                            if !complete {
                                self.error = Some(format!(
                                    "multipart: body ended inside part {}{} after {} bytes{}",
                                    c.index,
                                    quoted(&c.name),
                                    c.bytes,
                                    self.gap_note()
                                ));
                                return;
                            }
                        }
                        self.head_bytes = 0;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        let why = format!("multipart: {}{}", describe(&e), self.gap_note());
                        self.stop(why, on);
                        return;
                    }
                    Poll::Pending => return,
                }
            } else {
                match self.multipart.poll_next_field(&mut cx) {
                    Poll::Ready(Ok(Some(field))) => {
                        let header = PartHeader {
                            index: self.parts,
                            name: field.name().map(str::to_string),
                            filename: field.file_name().map(str::to_string),
                            content_type: field
                                .headers()
                                .get("content-type")
                                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string()),
                        };
                        let name = header.name.clone();
                        on(PartEvent::Start(header));
                        self.current = Some(Current {
                            field,
                            index: self.parts,
                            name,
                            bytes: 0,
                        });
                        self.parts = self.parts.saturating_add(1);
                        self.head_bytes = 0;
                    }
                    Poll::Ready(Ok(None)) => {
                        self.done = true;
                        lock(&self.queue).chunks.clear();
                        return;
                    }
                    Poll::Ready(Err(e)) => {
                        let closed = lock(&self.queue).closed;
                        let why = if closed
                            && matches!(
                                e,
                                multer::Error::IncompleteStream | multer::Error::IncompleteHeaders
                            ) {
                            if self.parts == 0 {
                                format!(
                                    "body ended before the first part (boundary \"--{}\")",
                                    self.boundary
                                )
                            } else {
                                "body ended without the closing boundary".to_string()
                            }
                        } else {
                            describe(&e)
                        };
                        self.error = Some(format!("multipart: {why}{}", self.gap_note()));
                        lock(&self.queue).chunks.clear();
                        return;
                    }
                    Poll::Pending => return,
                }
            }
        }
    }

    fn gap_note(&self) -> String {
        if self.missing > 0 {
            format!(
                " (after {} body bytes missing from the capture)",
                self.missing
            )
        } else {
            String::new()
        }
    }
}

fn quoted(name: &Option<String>) -> String {
    match name {
        Some(n) => format!(" (\"{n}\")"),
        None => String::new(),
    }
}

/// multer's error, phrased for a capture analysis.
fn describe(e: &multer::Error) -> String {
    match e {
        multer::Error::IncompleteStream => {
            "malformed boundary line (not followed by CRLF or \"--\")".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A part as the tests expect it or saw it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Seen {
        pub header: PartHeader,
        pub data: Vec<u8>,
        pub end: Option<(u64, bool)>,
    }

    pub(crate) fn collect(dec: &mut MultipartDecoder, pieces: &[&[u8]], finish: bool) -> Vec<Seen> {
        let mut seen: Vec<Seen> = Vec::new();
        let mut on = |ev: PartEvent<'_>| match ev {
            PartEvent::Start(h) => seen.push(Seen {
                header: h,
                data: Vec::new(),
                end: None,
            }),
            PartEvent::Data { index, data } => match seen.last_mut() {
                Some(s) if s.header.index == index && s.end.is_none() => {
                    s.data.extend_from_slice(data)
                }
                _ => panic!("data for part {index} out of order"),
            },
            PartEvent::End {
                index,
                bytes,
                complete,
            } => match seen.last_mut() {
                Some(s) if s.header.index == index && s.end.is_none() => {
                    s.end = Some((bytes, complete))
                }
                _ => panic!("end for part {index} out of order"),
            },
        };
        for p in pieces {
            dec.feed(p, &mut on);
        }
        if finish {
            dec.finish(&mut on);
        }
        seen
    }

    /// name, filename, content type, content, with a Content-Length header.
    pub(crate) type PartSpec<'a> = (&'a str, Option<&'a str>, &'a str, &'a [u8], bool);

    /// Builds a multipart body; the parts' contents are kept to compare with.
    pub(crate) struct Body {
        pub bytes: Vec<u8>,
        pub parts: Vec<Seen>,
    }

    pub(crate) fn build(boundary: &str, preamble: &str, parts: &[PartSpec<'_>]) -> Body {
        let mut bytes = preamble.as_bytes().to_vec();
        let mut seen = Vec::new();
        for (i, (name, filename, ct, data, with_len)) in parts.iter().enumerate() {
            bytes.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let fname = filename
                .map(|f| format!("; filename=\"{f}\""))
                .unwrap_or_default();
            bytes.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"{fname}\r\n").as_bytes(),
            );
            bytes.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
            if *with_len {
                bytes.extend_from_slice(format!("Content-Length: {}\r\n", data.len()).as_bytes());
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(data);
            bytes.extend_from_slice(b"\r\n");
            seen.push(Seen {
                header: PartHeader {
                    index: i,
                    name: Some(name.to_string()),
                    filename: filename.map(str::to_string),
                    content_type: Some(ct.to_string()),
                },
                data: data.to_vec(),
                end: Some((data.len() as u64, true)),
            });
        }
        bytes.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Body { bytes, parts: seen }
    }

    pub(crate) const ANPR_XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>172.16.0.9</ipAddress>\r\n<eventType>ANPR</eventType>\r\n<eventState>active</eventState>\r\n<ANPR><licensePlate>AB123CD</licensePlate></ANPR>\r\n</EventNotificationAlert>\r\n";

    /// JPEG-ish bytes containing things that look like (but are not) the boundary "boundary".
    pub(crate) fn tricky_jpeg(len: usize) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
        let traps: [&[u8]; 6] = [
            b"--boundary",
            b"\r\n--boundar",
            b"\r\n-",
            b"\r\n--",
            b"\r\r\n--bound\r\n",
            b"\n--boundary",
        ];
        let mut i = 0u32;
        while v.len() < len {
            v.extend_from_slice(traps[(i % 6) as usize]);
            // A NUL after each trap, and filler without CR: no real delimiter line
            // ("\r\n--boundary" + CRLF or "--") can form by chance.
            v.push(0);
            v.extend(
                (0..37u32)
                    .map(|k| (k.wrapping_mul(31).wrapping_add(i) % 251) as u8)
                    .map(|b| if b == b'\r' { 14 } else { b }),
            );
            i += 1;
        }
        v.truncate(len);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    pub(crate) fn anpr_body() -> Body {
        let plate = tricky_jpeg(3000);
        let scene = tricky_jpeg(40_000);
        build(
            "boundary",
            "",
            &[
                (
                    "anpr.xml",
                    Some("anpr.xml"),
                    "text/xml",
                    ANPR_XML.as_bytes(),
                    false,
                ),
                (
                    "licensePlatePicture.jpg",
                    Some("licensePlatePicture.jpg"),
                    "image/jpeg",
                    &plate,
                    true,
                ),
                (
                    "detectionPicture.jpg",
                    Some("detectionPicture.jpg"),
                    "image/pjpeg",
                    &scene,
                    false,
                ),
            ],
        )
    }

    #[test]
    fn anpr_whole_and_byte_by_byte() {
        let body = anpr_body();
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &[&body.bytes], true);
        assert_eq!(seen, body.parts);
        assert!(dec.is_done());
        assert_eq!(dec.error(), None);
        assert_eq!(dec.parts(), 3);

        let pieces: Vec<&[u8]> = body.bytes.chunks(1).collect();
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &pieces, true);
        assert_eq!(seen, body.parts);
        assert_eq!(dec.error(), None);
    }

    #[test]
    fn boundaries_preamble_epilogue_and_content_length() {
        for boundary in [
            "MIME_boundary",
            "AaB03x",
            "----WebKitFormBoundary7MA4YWxkTrZu0gW",
        ] {
            let face = tricky_jpeg(5000);
            let json = br#"{"eventType":"AccessControllerEvent","AccessControllerEvent":{"majorEventType":5}}"#;
            let mut body = build(
                boundary,
                "This is a preamble.\r\n",
                &[
                    (
                        "AccessControllerEvent",
                        None,
                        "application/json",
                        json,
                        true,
                    ),
                    ("Picture", Some("Picture.jpg"), "image/jpeg", &face, true),
                ],
            );
            body.bytes.extend_from_slice(b"epilogue, ignored\r\n");
            let mut dec = MultipartDecoder::new(boundary);
            let seen = collect(&mut dec, &[&body.bytes], true);
            assert_eq!(seen, body.parts, "{boundary}");
            assert_eq!(dec.error(), None);
        }
    }

    #[test]
    fn truncated_inside_picture_reports_size_so_far() {
        let body = anpr_body();
        let scene_start =
            body.bytes.len() - "\r\n--boundary--\r\n".len() - body.parts[2].data.len();
        for cut in [1usize, 7, 11, 12, 13, 9_999] {
            let end = scene_start + cut;
            let mut dec = MultipartDecoder::new("boundary");
            let seen = collect(&mut dec, &[&body.bytes[..end]], true);
            assert_eq!(seen.len(), 3);
            assert_eq!(seen[..2], body.parts[..2]);
            assert_eq!(seen[2].header, body.parts[2].header);
            assert_eq!(
                seen[2].data,
                body.parts[2].data[..cut].to_vec(),
                "cut {cut}"
            );
            assert_eq!(seen[2].end, Some((cut as u64, false)));
            let err = dec.error().unwrap_or_default();
            assert!(
                err.contains("ended inside part 2 (\"detectionPicture.jpg\")"),
                "{err}"
            );
        }
    }

    #[test]
    fn truncated_elsewhere() {
        let body = anpr_body();
        let total = body.bytes.len();
        // Missing the closing boundary line entirely: all parts complete.
        let cut = total - "--boundary--\r\n".len();
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &[&body.bytes[..cut]], true);
        assert_eq!(seen, body.parts);
        assert_eq!(
            dec.error(),
            Some("multipart: body ended without the closing boundary")
        );

        // Closing boundary without "--".
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &[&body.bytes[..total - 4]], true);
        assert_eq!(seen, body.parts);
        assert!(dec
            .error()
            .is_some_and(|e| e.contains("without the closing boundary")));

        // Inside the second part's headers.
        let hdr = b"--boundary\r\nContent-Disposition: form-data; name=\"licensePlatePicture.jpg\"";
        let pos = body
            .bytes
            .windows(hdr.len())
            .position(|w| w == hdr)
            .unwrap_or(0)
            + 40;
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &[&body.bytes[..pos]], true);
        assert_eq!(seen, body.parts[..1].to_vec());
        assert!(dec
            .error()
            .is_some_and(|e| e.contains("without the closing boundary")));

        // Ends inside what may be a delimiter ("\r\n-"): read as the delimiter, the part is whole
        // up to it.
        let scene_start = total - "\r\n--boundary--\r\n".len() - body.parts[2].data.len();
        let p = body.parts[2]
            .data
            .windows(4)
            .position(|w| w == b"\r\n-\0")
            .unwrap_or(0);
        assert!(p > 0);
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &[&body.bytes[..scene_start + p + 3]], true);
        assert_eq!(seen[..2], body.parts[..2]);
        assert_eq!(seen[2].data, body.parts[2].data[..p].to_vec());
        assert_eq!(seen[2].end, Some((p as u64, true)));
        assert_eq!(
            dec.error(),
            Some("multipart: body ended without the closing boundary")
        );

        // Never a boundary.
        let mut dec = MultipartDecoder::new("other");
        let seen = collect(&mut dec, &[&body.bytes], true);
        assert!(seen.is_empty());
        assert!(
            dec.error()
                .is_some_and(|e| e.contains("before the first part")),
            "{:?}",
            dec.error()
        );
    }

    #[test]
    fn boundary_followed_by_junk_is_an_error() {
        // multer requires CRLF (or "--") after a delimiter; content holding "\r\n--boundaryX" breaks it.
        let body = build(
            "boundary",
            "",
            &[("a", None, "image/jpeg", b"ab\r\n--boundaryX yz", false)],
        );
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &[&body.bytes], true);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].data, b"ab".to_vec());
        assert_eq!(seen[0].end, Some((2, true)));
        assert!(
            dec.error()
                .is_some_and(|e| e.contains("malformed boundary line")),
            "{:?}",
            dec.error()
        );
    }

    #[test]
    fn gap_is_zero_filled_and_big_gap_stops() {
        let body = anpr_body();
        let scene_start =
            body.bytes.len() - "\r\n--boundary--\r\n".len() - body.parts[2].data.len();
        let (a, rest) = body.bytes.split_at(scene_start + 100);
        let b = rest.get(500..).unwrap_or_default();
        let mut seen = Vec::new();
        let mut dec = MultipartDecoder::new("boundary");
        {
            let mut on = |ev: PartEvent<'_>| {
                if let PartEvent::End {
                    index,
                    bytes,
                    complete,
                } = ev
                {
                    seen.push((index, bytes, complete));
                }
            };
            dec.feed(a, &mut on);
            dec.gap(500, &mut on);
            dec.feed(b, &mut on);
            dec.finish(&mut on);
        }
        let sizes: Vec<(usize, u64, bool)> = body
            .parts
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.data.len() as u64, true))
            .collect();
        assert_eq!(seen, sizes);
        assert_eq!(dec.error(), None);

        let mut seen = Vec::new();
        let mut dec = MultipartDecoder::new("boundary");
        {
            let mut on = |ev: PartEvent<'_>| {
                if let PartEvent::End {
                    index,
                    bytes,
                    complete,
                } = ev
                {
                    seen.push((index, bytes, complete));
                }
            };
            dec.feed(a, &mut on);
            dec.gap(MAX_GAP_FILL + 1, &mut on);
            dec.feed(b, &mut on);
            dec.finish(&mut on);
        }
        assert_eq!(
            seen,
            vec![
                (0, sizes[0].1, true),
                (1, sizes[1].1, true),
                (2, 100, false)
            ]
        );
        assert!(
            dec.error()
                .is_some_and(|e| e.contains("1048577 body bytes missing")),
            "{:?}",
            dec.error()
        );
    }

    #[test]
    fn endless_preamble_or_headers_are_bounded() {
        let junk = vec![b'x'; 100_000];
        let mut dec = MultipartDecoder::new("boundary");
        let seen = collect(&mut dec, &[&junk], false);
        assert!(seen.is_empty());
        assert!(
            dec.error()
                .is_some_and(|e| e.contains("within 65536 bytes")),
            "{:?}",
            dec.error()
        );

        let mut body =
            b"--boundary\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Junk: ".to_vec();
        body.extend(std::iter::repeat_n(b'y', 100_000));
        let mut dec = MultipartDecoder::new("boundary");
        let pieces: Vec<&[u8]> = body.chunks(1000).collect();
        let seen = collect(&mut dec, &pieces, false);
        assert!(seen.is_empty());
        assert!(dec.error().is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn random_splits_give_identical_parts(cuts in proptest::collection::vec(0usize..50_000, 0..40)) {
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
            let mut dec = MultipartDecoder::new("boundary");
            let seen = collect(&mut dec, &pieces, true);
            prop_assert_eq!(seen, body.parts);
            prop_assert_eq!(dec.error(), None);
        }
    }
}
