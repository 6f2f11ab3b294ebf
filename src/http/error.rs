//! Why an HTTP message could not be framed: typed kinds with the facts that say so, text via
//! `Display`. Callers (the listener's 413 vs 400, the pipeline's exchange notes, tests) match on
//! the kind, never on the text.

use super::decoder::Kind;

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Request => "request",
            Kind::Response => "response",
        })
    }
}

/// Why a message could not be framed. Carries the stream offset so the diagnostic is located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset} of the stream: {kind}")]
pub struct HttpError {
    /// Offset in this direction's byte stream (gaps counted) where the problem was found.
    pub offset: u64,
    pub kind: HttpErrorKind,
}

/// What could not be framed, with the facts that say so: callers (the listener's 413 vs 400, the
/// pipeline's notes, tests) match on the kind, never on the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpErrorKind {
    /// Bytes before the first start line of a capture's stream (it began mid-message).
    #[error("stream does not start with an HTTP {kind} ({skipped} bytes skipped)")]
    Garbage { kind: Kind, skipped: u64 },
    /// Between messages, bytes that cannot begin a start line.
    #[error("expected the start line of an HTTP {kind}, found \"{found}\"")]
    NotStartLine { kind: Kind, found: String },
    /// httparse rejected the start line or header block (`reason` None: the block was cut short).
    #[error("malformed HTTP {kind} head ({}), start line \"{start_line}\"", .reason.map_or_else(|| "cut short".to_string(), |e| e.to_string()))]
    MalformedHead {
        kind: Kind,
        reason: Option<httparse::Error>,
        /// The start line, escaped, at most 100 bytes.
        start_line: String,
    },
    #[error("HTTP {kind} head has more than {max} header fields")]
    TooManyHeaders { kind: Kind, max: usize },
    #[error("header block larger than {max} bytes")]
    HeadTooLarge { max: usize },
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// The head parsed, but its body length cannot be known.
    #[error(transparent)]
    Framing(#[from] FramingError),
}

impl HttpErrorKind {
    /// A size limit was hit (the listener answers 413 rather than 400).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            HttpErrorKind::TooManyHeaders { .. }
                | HttpErrorKind::HeadTooLarge { .. }
                | HttpErrorKind::Chunk(ChunkError::TrailerTooLarge { .. })
        )
    }

    /// The framing error, when the head was read but its body length is unknown.
    pub fn framing(&self) -> Option<&FramingError> {
        match self {
            HttpErrorKind::Framing(f) => Some(f),
            _ => None,
        }
    }
}

/// Chunked framing that broke (RFC 9112 section 7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("chunk size does not fit in 64 bits")]
    SizeOverflow,
    #[error("bad chunk size: expected a hex digit, found {}", show_byte(*.found))]
    NotHex { found: u8 },
    #[error("bad chunk size: unexpected {} after the size", show_byte(*.found))]
    AfterSize { found: u8 },
    #[error("bad chunk size line: CR not followed by LF")]
    CrWithoutLf,
    #[error("chunk data not followed by CRLF (found {}): chunk size wrong?", show_byte(*.found))]
    DataNotFollowedByCrlf { found: u8 },
    #[error("chunk size line longer than {max} bytes")]
    LineTooLong { max: usize },
    #[error("trailer section larger than {max} bytes")]
    TrailerTooLarge { max: usize },
}

/// A head whose body length cannot be known (RFC 9110 section 8.6, RFC 9112 section 6.3). The
/// head itself was read: the message was sent, and its answer still pairs with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FramingError {
    #[error("negative Content-Length \"{}\"", .value.escape_debug())]
    NegativeContentLength { value: String },
    #[error("invalid Content-Length \"{}\"", .value.escape_debug())]
    InvalidContentLength { value: String },
    #[error("Content-Length {value} does not fit in 64 bits")]
    ContentLengthOverflow { value: String },
    #[error("conflicting Content-Length values {first} and {second}")]
    ConflictingContentLength { first: u64, second: u64 },
    #[error("request Transfer-Encoding \"{}\" does not end in chunked: body length unknown", .value.escape_debug())]
    RequestTransferEncoding { value: String },
}

/// A byte as messages show it, quoted and escaped.
pub(super) fn show_byte(b: u8) -> String {
    format!("'{}'", b.escape_ascii())
}
