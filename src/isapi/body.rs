//! The body decoder shared by replay, sniff and the listener.

use serde::Serialize;

use super::event::EventInfo;

/// Headers of one part (or of the whole body when it is not multipart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartHeader {
    /// Position in the body, from 0.
    pub index: usize,
    /// Content-Disposition name (for a non-multipart body: "body").
    pub name: Option<String>,
    /// Content-Disposition filename, as sent (untrusted: sanitise before using as a path).
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

/// A part with its exact size, as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartInfo {
    pub name: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// Exact size of the part's content in bytes.
    pub bytes: u64,
}

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
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits { max_metadata_bytes: 256 * 1024, max_parts: 64 }
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
}

/// Incremental decoder of one HTTP body.
pub struct BodyDecoder {
    // private: the isapi helper fills this in
}

impl BodyDecoder {
    /// `content_type` is the request's Content-Type header value (boundary taken from it).
    pub fn new(content_type: Option<&str>, limits: BodyLimits) -> Self {
        todo!("isapi helper")
    }

    /// Feed decoded body bytes in order.
    pub fn feed(&mut self, data: &[u8], sink: Option<&mut dyn PartSink>) {
        todo!("isapi helper")
    }

    /// Bytes missing from the body (capture gap): counted, and the part they fall in is marked.
    pub fn missing(&mut self, bytes: u64) {
        todo!("isapi helper")
    }

    /// The body is over (complete or not): decode the metadata and report.
    pub fn finish(self, sink: Option<&mut dyn PartSink>) -> DecodedBody {
        todo!("isapi helper")
    }
}
