//! The incremental decoder behind [`super::MessageDecoder`].

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
        Limits { max_header_bytes: 64 * 1024, max_headers: 100 }
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
#[derive(Debug, PartialEq, Eq)]
pub enum HttpEvent<'a> {
    /// A complete start line and header block. For responses, a 1xx status is an interim head:
    /// it is followed by another `Head` (the final one) for the same request.
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
    /// incomplete. `body_bytes` received so far.
    Incomplete { body_bytes: u64 },
}

/// Incremental HTTP/1.x decoder for one direction of one connection.
#[derive(Debug)]
pub struct MessageDecoder {
    // private: the http helper fills this in
}

impl MessageDecoder {
    pub fn new(kind: Kind, limits: Limits) -> Self {
        todo!("http helper")
    }

    /// Responses only: tell the decoder the method of the request the next final response answers
    /// (HEAD and CONNECT change how its body is framed). Call once per request, in order.
    pub fn expect_response_to(&mut self, method: &str) {
        todo!("http helper")
    }

    /// Feed the next bytes of the stream.
    pub fn feed(&mut self, data: &[u8], sink: &mut dyn FnMut(HttpEvent<'_>)) {
        todo!("http helper")
    }

    /// `bytes` of the stream are missing (capture gap). Inside a Content-Length or chunk body this
    /// is `Missing` and framing continues; elsewhere the current message is `Incomplete` and the
    /// decoder resynchronises on the next start line.
    pub fn gap(&mut self, bytes: u64, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        todo!("http helper")
    }

    /// The stream ended (FIN, RST or end of capture). A body delimited by close ends here
    /// (`End`); a message cut in the middle is `Incomplete`.
    pub fn eof(&mut self, sink: &mut dyn FnMut(HttpEvent<'_>)) {
        todo!("http helper")
    }

    /// True when the decoder is between messages (nothing half-read).
    pub fn is_idle(&self) -> bool {
        todo!("http helper")
    }

    /// Total bytes of the stream seen so far (gaps included).
    pub fn offset(&self) -> u64 {
        todo!("http helper")
    }
}
