//! Capture stage: turn link-layer frames into TCP segments.
//!
//! [`frame`] is the sans-IO decoder (bytes in, [`frame::TcpSegment`] out; [`FrameDecoder`] adds
//! the IP fragment reassembly of [`defrag`]); [`file`](mod@file) is the thin
//! shell that reads pcap/pcapng files through libpcap and feeds frames to it; [`pcapwrite`] writes
//! classic pcap files (for `sniff --write` and test fixtures).

pub mod defrag;
pub mod file;
pub mod frame;
pub mod live;
pub mod pcapwrite;
pub mod tunnel;
pub mod warning;

pub use defrag::{DefragLimits, DefragWarning};
pub use frame::{
    decode_frame, decode_frame_counted, FrameDecoder, FrameError, FrameLayer, LinkType, TcpFlags,
    TcpSegment,
};
pub use tunnel::{Encap, EncapCounts};
pub use warning::Warning;
