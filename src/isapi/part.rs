//! What a body part is: its headers as the device sent them, and its exact size once it ended.
//!
//! A leaf module (it imports nothing of the crate but the picture check's result type) so that the multipart decoder, the body decoder
//! and every sink of part bytes (extraction, the store, the TUI) can share these types without the
//! multipart decoder depending on the body decoder that drives it.

use serde::Serialize;

/// Headers of one part (or of the whole body when it is not multipart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartHeader {
    /// Position in the body, from 0.
    pub index: usize,
    /// Content-Disposition name (for a non-multipart body: "body").
    pub name: Option<String>,
    /// Content-Disposition filename, as sent (untrusted: sanitise before using as a path).
    pub filename: Option<String>,
    /// The part's Content-Type, as sent.
    pub content_type: Option<String>,
    /// The part's own Content-Length header, when it has a readable one (cameras send it; a
    /// picture shorter than it was cut).
    pub content_length: Option<u64>,
}

/// A part with its exact size, as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartInfo {
    pub name: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    /// Exact size of the part's content in bytes.
    pub bytes: u64,
    /// A JPEG part's check (starts and ends as a JPEG, header decodes, size in pixels); absent
    /// for other parts. The picture module (`isapi::picture`) fills it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<super::picture::PictureCheck>,
}
