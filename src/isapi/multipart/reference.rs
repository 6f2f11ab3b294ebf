#![allow(dead_code)]
//! The multer-based decoder that [`super::MulterDecoder`] replaced, kept for tests only: a
//! differential property test feeds both the same bodies and expects the same parts.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream::Stream;

use super::{gap_too_large, head_overrun, quoted, PartEvent, MAX_GAP_FILL, MAX_HEAD_BYTES};
use crate::isapi::part::PartHeader;

/// Largest piece handed to multer at once: multer copies everything queued into its buffer on
/// each poll, so feeding bounded pieces and draining between them bounds that buffer.
const PIECE: usize = 16 * 1024;

static ZEROS: [u8; PIECE] = [0; PIECE];

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
pub struct MulterDecoder {
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

impl std::fmt::Debug for MulterDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MulterDecoder")
            .field("boundary", &self.boundary)
            .field("parts", &self.parts)
            .field("done", &self.done)
            .field("error", &self.error)
            .finish()
    }
}

impl MulterDecoder {
    /// `boundary` as in the Content-Type parameter (quotes already removed).
    pub fn new(boundary: &str) -> Self {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let stream = QueueStream(queue.clone());
        MulterDecoder {
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
            let open = self.current.as_ref().map(|c| (c.index, &c.name));
            self.stop(gap_too_large(bytes, open).to_string(), on);
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
            self.stop(head_overrun(self.parts, &self.boundary).to_string(), on);
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
                            content_length: field
                                .headers()
                                .get("content-length")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.trim().parse().ok()),
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

/// multer's error, phrased for a capture analysis.
fn describe(e: &multer::Error) -> String {
    match e {
        multer::Error::IncompleteStream => {
            "malformed boundary line (not followed by CRLF or \"--\")".to_string()
        }
        other => other.to_string(),
    }
}
