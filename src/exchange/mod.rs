//! The exchange record every mode builds: HTTP events in, [`Exchange`]s with decoded bodies and
//! verdicts out, and the counters the summary is made of.
//!
//! One builder for replay, sniff and listen. The capture pipeline pairs requests with the answers
//! it sees on the wire ([`capture`]); the listener is the server and writes its answers itself;
//! both start, feed and finish requests with the same [`RequestInFlight`], fill the record with the
//! same constructors ([`build`]) and judge it with the same [`Verdict::of`]. Sans-IO: times come
//! in with the events, nothing here reads a clock, a socket or a file.
//!
//! [`Exchange`]: crate::model::Exchange
//! [`Verdict::of`]: crate::model::Verdict::of

pub mod build;
pub mod capture;
pub mod counters;
pub mod verdict;

pub use build::RequestInFlight;
pub use counters::Counters;
