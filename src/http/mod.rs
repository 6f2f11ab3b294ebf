//! Sans-IO HTTP/1.1 message framing over httparse, shared by replay, sniff and the listener.
//!
//! One [`MessageDecoder`] per direction of a connection. Bytes go in through [`MessageDecoder::feed`]
//! in whatever pieces the network delivered; [`HttpEvent`]s come out. It handles several messages
//! per keep-alive connection, Content-Length and chunked bodies, 1xx interim responses, a
//! `101 Switching Protocols` or CONNECT tunnel (after which the bytes are counted, not parsed),
//! bodies delimited by the connection closing, capture gaps, and garbage (after which it
//! resynchronises on the next start line, found anywhere, never inside a framed body). It never
//! allocates per body byte and never buffers a whole body. Errors are typed ([`HttpErrorKind`]).

mod decoder;
mod error;
mod start;

pub use decoder::{Head, HttpEvent, Kind, Limits, MessageDecoder, StreamRange};
pub use error::{ChunkError, FramingError, HttpError, HttpErrorKind};
