//! Sans-IO HTTP/1.1 message framing over httparse, shared by replay, sniff and the listener.
//!
//! One [`MessageDecoder`] per direction of a connection. Bytes go in through [`MessageDecoder::feed`]
//! in whatever pieces the network delivered; [`HttpEvent`]s come out. It handles several messages
//! per keep-alive connection, Content-Length and chunked bodies, 1xx interim responses, bodies
//! delimited by the connection closing, capture gaps, and garbage (after which it resynchronises
//! on the next start line). It never allocates per body byte and never buffers a whole body.

mod decoder;

pub use decoder::{
    ChunkError, FramingError, Head, HttpError, HttpErrorKind, HttpEvent, Kind, Limits, MessageDecoder,
};
