//! Capture stage: turn link-layer frames into TCP segments.
//!
//! [`frame`] is the sans-IO decoder (bytes in, [`frame::TcpSegment`] out); [`file`](mod@file) is the thin
//! shell that reads pcap/pcapng files through libpcap and feeds frames to it; [`pcapwrite`] writes
//! classic pcap files (for `sniff --write` and test fixtures).

pub mod file;
pub mod frame;
pub mod live;
pub mod pcapwrite;

pub use frame::{decode_frame, FrameError, LinkType, TcpFlags, TcpSegment};
