//! ISAPI event decoding: what a device's POST body says.
//!
//! [`body::BodyDecoder`] is fed the decoded HTTP body in pieces (sans-IO) and works out, from the
//! Content-Type and by sniffing, whether it is XML, JSON or `multipart/form-data`
//! ([`multipart`], streamed sans-IO). It counts every part's exact size, hands part bytes
//! to an optional [`body::PartSink`] (picture extraction, the listener's store), keeps only a
//! bounded copy of the metadata part, and decodes that into an [`event::EventInfo`].
//! [`part`] (what a part is) and [`sniff`] ("XML or JSON?") are leaves that every other module
//! here, and any caller outside, can use without pulling in a decoder.

pub mod alert_stream;
pub mod body;
pub mod event;
pub mod multipart;
pub mod part;
pub mod picture;
pub mod sniff;

pub use body::{BodyDecoder, BodyLimits, DecodedBody, PartSink};
pub use event::{decode_event, decode_event_with, EventInfo, Node, TreeDetail};
pub use part::{PartHeader, PartInfo};
pub use sniff::{sniff_syntax, Syntax};
