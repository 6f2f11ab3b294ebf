//! Sans-IO frame decoding: link layer -> IPv4/IPv6 -> TCP, zero-copy over the captured bytes.
//!
//! Supported link types: Ethernet II (with stacked 802.1Q/802.1ad VLAN tags), Linux cooked
//! capture v1 (SLL) and v2 (SLL2, `tcpdump -i any`), BSD loopback/NULL and OpenBSD LOOP (family
//! in either byte order), and raw IP (DLT_RAW / LINKTYPE_IPV4 / LINKTYPE_IPV6).
//!
//! Frames cut short by the snapshot length are not misread: the TCP payload is what was captured
//! and [`TcpSegment::missing`] says how many payload bytes the IP header promised beyond it.

use std::net::SocketAddr;

/// Link-layer header type of a capture, from the pcap LINKTYPE/DLT number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    LinuxSll,
    LinuxSll2,
    /// BSD loopback (DLT_NULL): 4-byte address family in host byte order of the capturing machine.
    Null,
    /// OpenBSD loopback (DLT_LOOP): 4-byte address family in network byte order.
    Loop,
    /// Raw IP, version taken from the first nibble.
    Raw,
    Ipv4,
    Ipv6,
    /// A link type alarmscope does not decode; frames are counted and skipped.
    Unsupported(i32),
}

impl LinkType {
    /// Map a pcap DLT/LINKTYPE number (as libpcap reports it) to a link type.
    pub fn from_dlt(dlt: i32) -> Self {
        todo!("capture helper")
    }
}

/// TCP header flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    pub fn psh(self) -> bool {
        self.0 & Self::PSH != 0
    }
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
    /// Short text such as `SYN`, `SYN,ACK`, `FIN,ACK`, `RST`, `PSH,ACK` for time lines.
    pub fn describe(self) -> String {
        let mut v = Vec::new();
        for (bit, name) in [
            (Self::SYN, "SYN"),
            (Self::FIN, "FIN"),
            (Self::RST, "RST"),
            (Self::PSH, "PSH"),
            (Self::ACK, "ACK"),
        ] {
            if self.0 & bit != 0 {
                v.push(name);
            }
        }
        v.join(",")
    }
}

/// One TCP segment, borrowing its payload from the frame.
#[derive(Debug, Clone)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
    /// Payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload bytes the IP length promised but the snapshot length cut off (0 for whole frames).
    pub missing: u32,
}

/// What a frame turned out to be.
#[derive(Debug)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    /// A well-formed frame that is not TCP over IP (ARP, UDP, ICMP, ...): counted, not analysed.
    NotTcp,
}

/// A frame that could not be decoded, with the layer at fault. The capture goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{layer}: {message}")]
pub struct FrameError {
    /// "link", "vlan", "ipv4", "ipv6" or "tcp".
    pub layer: &'static str,
    pub message: String,
}

/// Decode one captured frame. `orig_len` is the frame's length on the wire (pcap `orig_len`),
/// which is larger than `data.len()` when the snapshot length cut it.
pub fn decode_frame(link: LinkType, data: &[u8], orig_len: u32) -> Result<Decoded<'_>, FrameError> {
    todo!("capture helper")
}
