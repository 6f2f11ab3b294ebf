//! Reading capture files through libpcap (the `pcap` crate): pcap and pcapng, micro- and
//! nanosecond timestamps. A thin IO shell; decoding lives in [`super::frame`].

use std::path::Path;

use super::frame::LinkType;
use crate::time::Timestamp;

/// One frame as read from a file, borrowed from the reader's buffer.
pub struct RawFrame<'a> {
    pub ts: Timestamp,
    pub link: LinkType,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
}

/// Why a capture file could not be read. Shown to the user as one line.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: no such file")]
    NotFound { path: String },
    #[error("{path}: permission denied")]
    PermissionDenied { path: String },
    #[error("{path}: not a pcap or pcapng capture ({detail})")]
    NotACapture { path: String, detail: String },
    #[error("{path}: {detail}")]
    Other { path: String, detail: String },
}

/// A problem met part-way through a file; frames before it were analysed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ReadWarning(pub String);

/// Streaming reader over a capture file: constant memory whatever the file size.
pub struct CaptureFile {
    // private: the helper fills this in (pcap::Capture<Offline>, link type, counters)
}

impl CaptureFile {
    /// Open `path` with nanosecond precision. Distinguishes missing, unreadable and non-capture
    /// files so the CLI can print a clear one-line message.
    pub fn open(path: &Path) -> Result<CaptureFile, OpenError> {
        todo!("capture helper")
    }

    /// Size of the file in bytes (for progress bars).
    pub fn file_size(&self) -> u64 {
        todo!("capture helper")
    }

    /// Bytes of the file consumed so far (approximate is fine: sum of record sizes + headers).
    pub fn bytes_read(&self) -> u64 {
        todo!("capture helper")
    }

    /// Next frame, `Ok(None)` at the end. A file that ends mid-record or that libpcap stops reading
    /// part-way (e.g. a pcapng interface with another link type) yields `Err(ReadWarning)` once and
    /// then `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, ReadWarning> {
        todo!("capture helper")
    }
}
