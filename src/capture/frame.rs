//! Sans-IO frame decoding: link layer -> IPv4/IPv6 -> TCP, zero-copy over the captured bytes.
//!
//! Supported link types: Ethernet II (with stacked 802.1Q/802.1ad VLAN tags), Linux cooked
//! capture v1 (SLL) and v2 (SLL2, `tcpdump -i any`), BSD loopback/NULL and OpenBSD LOOP (family
//! in either byte order), and raw IP (DLT_RAW / LINKTYPE_IPV4 / LINKTYPE_IPV6).
//!
//! Frames cut short by the snapshot length are not misread: the TCP payload is what was captured
//! and [`TcpSegment::missing`] says how many payload bytes the IP header promised beyond it.

use std::net::{IpAddr, SocketAddr};

use etherparse::err::packet::SliceError;
use etherparse::err::{Layer, LenError};
use etherparse::{
    EtherType, IpNumber, Ipv6ExtensionSlice, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket,
    LenSource, TcpSlice, TransportSlice,
};

use super::defrag::{Defrag, DefragError, DefragLimits, DefragWarning, FragKey, Fragment};
use super::tunnel::{self, Encap, EncapCounts, Inner, TunnelError};
use crate::time::Timestamp;

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
        match dlt {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            // 12 is DLT_RAW on most systems, 14 on OpenBSD; 101 is LINKTYPE_RAW in files.
            12 | 14 | 101 => LinkType::Raw,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            other => LinkType::Unsupported(other),
        }
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

/// The layer a frame broke at: tells the reader which header to look at, and tests and callers
/// match on it instead of on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLayer {
    /// The capture's link-layer header (Ethernet, SLL, loopback, raw IP) or an unknown link type.
    Link,
    Vlan,
    Ipv4,
    Ipv6,
    Tcp,
    /// A tunnel or encapsulation header.
    Tunnel(Encap),
    /// More encapsulations nested than [`MAX_ENCAP_DEPTH`].
    Nesting,
}

impl std::fmt::Display for FrameLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameLayer::Link => "link",
            FrameLayer::Vlan => "vlan",
            FrameLayer::Ipv4 => "ipv4",
            FrameLayer::Ipv6 => "ipv6",
            FrameLayer::Tcp => "tcp",
            FrameLayer::Tunnel(e) => e.name(),
            FrameLayer::Nesting => "tunnel",
        })
    }
}

/// What is wrong with a frame at its layer: the kinds callers and tests tell apart, and the
/// rest in etherparse's or our words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameProblem {
    /// A header shorter than it must be: `len` of `required` bytes are in the capture.
    Cut {
        what: String,
        len: usize,
        required: usize,
    },
    /// IP fragments the decoder does not join (no reassembly state, or a fragment inside a joined
    /// packet).
    NotReassembled,
    /// A fragment that could not be joined; its packet was dropped.
    Defrag(DefragError),
    /// A broken tunnel or encapsulation header.
    Tunnel(TunnelError),
    /// More than [`MAX_ENCAP_DEPTH`] encapsulations nested.
    TooDeep,
    /// An IPv4 header length field (IHL, in 32-bit words) below the minimum of 5.
    Ipv4HeaderLength { ihl: u8 },
    /// A frame of a link type the decoder does not read.
    UnsupportedLink { dlt: i32 },
    /// Anything else, worded where it was found.
    Other(String),
}

impl std::fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameProblem::Cut {
                what,
                len,
                required,
            } => write!(f, "{what} cut short ({len} of {required} bytes)"),
            FrameProblem::NotReassembled => f.write_str("fragmented packet not reassembled"),
            FrameProblem::Defrag(e) => e.fmt(f),
            FrameProblem::Tunnel(e) => e.fmt(f),
            FrameProblem::Ipv4HeaderLength { ihl } => {
                write!(f, "header length field {ihl} is below the minimum of 5")
            }
            FrameProblem::TooDeep => {
                write!(f, "more than {MAX_ENCAP_DEPTH} nested encapsulations")
            }
            FrameProblem::UnsupportedLink { dlt } => {
                write!(f, "unsupported link type (DLT {dlt})")
            }
            FrameProblem::Other(text) => f.write_str(text),
        }
    }
}

impl From<String> for FrameProblem {
    fn from(text: String) -> FrameProblem {
        FrameProblem::Other(text)
    }
}

/// A frame that could not be decoded, with the layer at fault. The capture goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub layer: FrameLayer,
    pub problem: FrameProblem,
    /// The innermost encapsulation the fault lies in, when the frame was tunnelled: the outer
    /// headers were fine, so the message must not send the reader looking at them.
    pub inside: Option<Encap>,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.layer, self.problem)?;
        if let Some(e) = self.inside {
            write!(f, " (inside {e})")?;
        }
        Ok(())
    }
}

impl std::error::Error for FrameError {}

/// Encapsulations opened inside one another before a frame is given up as an error: real
/// mirror and overlay set-ups nest two or three (ERSPAN of a VXLAN of an MPLS pseudowire).
pub const MAX_ENCAP_DEPTH: usize = 8;

/// Decode one captured frame. `orig_len` is the frame's length on the wire (pcap `orig_len`),
/// which is larger than `data.len()` when the snapshot length cut it. Tunnelled frames are
/// decapsulated but not counted; see [`decode_frame_counted`].
pub fn decode_frame(link: LinkType, data: &[u8], orig_len: u32) -> Result<Decoded<'_>, FrameError> {
    decode_frame_counted(link, data, orig_len, &mut EncapCounts::default())
}

/// Decode one captured frame, adding each encapsulation it was found in to `encaps`.
///
/// Choices worth knowing:
/// - Frames of an [`LinkType::Unsupported`] link type are an error (layer "link"), so they show
///   up in error counts rather than disappearing as "not TCP".
/// - This stateless decoder does not join IP fragments ([`FrameDecoder`] does): TCP carried in
///   IP fragments (IPv4 or IPv6, first fragment included) is an error ("ipv4: fragmented
///   packet (offset N) not reassembled"), since a first fragment alone would look like a
///   segment with a silent hole. Fragments of other protocols are [`Decoded::NotTcp`], except
///   those of tunnels (GRE, IP-in-IP), which may carry TCP and are errors too.
/// - Errors in layers other than link/VLAN/IP/TCP/tunnel (a cut UDP or ICMP header, a short ARP
///   packet) are [`Decoded::NotTcp`]: those frames are of no interest either way.
/// - Tunnels ([`super::tunnel`]) are opened up to [`MAX_ENCAP_DEPTH`] deep; the segment carries
///   the innermost addresses. The checks sit on the not-TCP branches only, so plain frames pay
///   nothing for them.
pub fn decode_frame_counted<'a>(
    link: LinkType,
    data: &'a [u8],
    orig_len: u32,
    encaps: &mut EncapCounts,
) -> Result<Decoded<'a>, FrameError> {
    decode(link, data, orig_len, encaps, None)
}

/// The frame decoder with state: [`decode_frame_counted`] plus the reassembly of IP fragments
/// ([`super::defrag`]), which needs the fragments seen before. One per capture; the pipeline
/// owns it. Frames that are not fragments take the stateless path and never touch the state,
/// which is allocated at the first fragment (so moving the decoder is two words).
#[derive(Default)]
pub struct FrameDecoder {
    limits: DefragLimits,
    defrag: Option<Box<Defrag>>,
}

impl FrameDecoder {
    /// A decoder whose reassembly state is bounded by `limits`.
    pub fn new(limits: DefragLimits) -> Self {
        FrameDecoder {
            limits,
            defrag: None,
        }
    }

    /// Decode one frame captured at `ts` (capture time drives the fragment timeout), adding
    /// each encapsulation to `encaps`. A fragment that leaves its packet incomplete is held and
    /// reported as [`Decoded::NotTcp`] (the frame carries no segment by itself); the one that
    /// completes it gives the whole packet's segment. A fragment that cannot be taken is an
    /// error on its frame, at the IP layer.
    pub fn decode<'a>(
        &'a mut self,
        ts: Timestamp,
        link: LinkType,
        data: &'a [u8],
        orig_len: u32,
        encaps: &mut EncapCounts,
    ) -> Result<Decoded<'a>, FrameError> {
        let slot = DefragSlot {
            state: &mut self.defrag,
            limits: self.limits,
            ts,
        };
        decode(link, data, orig_len, encaps, Some(slot))
    }

    /// Fragment sets dropped since the last call without an error on a frame of their own (they
    /// timed out): for the caller's warnings.
    pub fn take_warnings(&mut self) -> Vec<DefragWarning> {
        match &mut self.defrag {
            Some(d) => d.take_warnings(),
            None => Vec::new(),
        }
    }

    /// End of the capture: the fragment sets still incomplete, as warnings.
    pub fn finish(&mut self) -> Vec<DefragWarning> {
        match &mut self.defrag {
            Some(d) => d.finish(),
            None => Vec::new(),
        }
    }

    /// Fragment sets and bytes held now.
    pub fn pending_fragments(&self) -> (usize, usize) {
        self.defrag.as_ref().map_or((0, 0), |d| d.pending())
    }
}

/// Where [`decode`] finds (or makes) the reassembly state, and the frame's capture time.
struct DefragSlot<'a> {
    state: &'a mut Option<Box<Defrag>>,
    limits: DefragLimits,
    ts: Timestamp,
}

fn decode<'a>(
    link: LinkType,
    data: &'a [u8],
    orig_len: u32,
    encaps: &mut EncapCounts,
    mut defrag: Option<DefragSlot<'a>>,
) -> Result<Decoded<'a>, FrameError> {
    let Some(mut sliced) = slice_link(link, data)? else {
        return Ok(Decoded::NotTcp);
    };
    let mut inside = None;
    for _ in 0..=MAX_ENCAP_DEPTH {
        let step = interpret(sliced, data.len(), orig_len, defrag.is_some()).map_err(|mut e| {
            e.inside = inside;
            e
        })?;
        let (encap, inner) = match step {
            Step::Done(d) => return Ok(d),
            Step::Inner(encap, inner) => (encap, inner),
            Step::Fragment(frag, layer) => {
                // One reassembly per frame: `take` leaves `None`, so a fragment inside the
                // joined packet takes the stateless path (an error).
                let Some(slot) = defrag.take() else {
                    return Err(FrameError {
                        layer,
                        problem: FrameProblem::NotReassembled,
                        inside,
                    });
                };
                let limits = slot.limits;
                let state = slot
                    .state
                    .get_or_insert_with(|| Box::new(Defrag::new(limits)));
                match state.add(slot.ts, frag) {
                    Ok(None) => return Ok(Decoded::NotTcp),
                    Ok(Some(packet)) => {
                        sliced = match layer {
                            FrameLayer::Ipv6 => {
                                LaxSlicedPacket::from_ether_type(EtherType::IPV6, packet)
                            }
                            _ => LaxSlicedPacket::from_ether_type(EtherType::IPV4, packet),
                        };
                        continue;
                    }
                    Err(e) => {
                        return Err(FrameError {
                            layer,
                            problem: FrameProblem::Defrag(e),
                            inside,
                        })
                    }
                }
            }
        };
        encaps.add(encap);
        inside = Some(encap);
        sliced = match inner {
            Inner::Ethernet(frame) => {
                LaxSlicedPacket::from_ethernet(frame).map_err(|e| FrameError {
                    layer: FrameLayer::Link,
                    problem: FrameProblem::Cut {
                        what: "Ethernet header".to_string(),
                        len: e.len,
                        required: e.required_len,
                    },
                    inside,
                })?
            }
            Inner::EtherType(et, packet) => LaxSlicedPacket::from_ether_type(et, packet),
            Inner::Ip(packet) => match packet.first().map(|b| b >> 4) {
                Some(6) => LaxSlicedPacket::from_ether_type(EtherType::IPV6, packet),
                _ => LaxSlicedPacket::from_ether_type(EtherType::IPV4, packet),
            },
            Inner::Other => return Ok(Decoded::NotTcp),
        };
    }
    Err(FrameError {
        layer: FrameLayer::Nesting,
        problem: FrameProblem::TooDeep,
        inside,
    })
}

/// What one pass of slicing found: the end, a tunnel to open, or a fragment to join.
enum Step<'a> {
    Done(Decoded<'a>),
    Inner(Encap, Inner<'a>),
    /// An IP fragment of a protocol that may carry TCP, with the IP layer it is at.
    Fragment(Fragment<'a>, FrameLayer),
}

/// Slice the link layer of a capture's frame.
///
/// `None` for frames that are well formed but cannot carry IP (netlink, other address families,
/// SLL protocols below 0x0600 other than 802.2 LLC).
fn slice_link(link: LinkType, data: &[u8]) -> Result<Option<LaxSlicedPacket<'_>>, FrameError> {
    Ok(Some(match link {
        LinkType::Ethernet => LaxSlicedPacket::from_ethernet(data).map_err(|e| {
            err(
                FrameLayer::Link,
                FrameProblem::Cut {
                    what: "Ethernet header".to_string(),
                    len: e.len,
                    required: e.required_len,
                },
            )
        })?,
        LinkType::LinuxSll => {
            // Read by hand: etherparse's SLL header refuses hardware types other than Ethernet
            // (loopback 772, Android rmnet 530, tunnels...), while the protocol field means the
            // same whatever the hardware (an EtherType, or 0x0004 for 802.2 LLC frames).
            let (header, payload) = split_at_checked(data, SLL_HEADER_LEN).ok_or_else(|| {
                err(
                    FrameLayer::Link,
                    FrameProblem::Cut {
                        what: "Linux cooked (SLL) header".to_string(),
                        len: data.len(),
                        required: SLL_HEADER_LEN,
                    },
                )
            })?;
            match sll_protocol(be16(header, 2), be16(header, 14)) {
                Some(et) => LaxSlicedPacket::from_ether_type(et, payload),
                None => return Ok(None),
            }
        }
        LinkType::LinuxSll2 => {
            let (header, payload) = split_at_checked(data, SLL2_HEADER_LEN).ok_or_else(|| {
                err(
                    FrameLayer::Link,
                    FrameProblem::Cut {
                        what: "Linux cooked v2 (SLL2) header".to_string(),
                        len: data.len(),
                        required: SLL2_HEADER_LEN,
                    },
                )
            })?;
            match sll_protocol(be16(header, 8), be16(header, 0)) {
                Some(et) => LaxSlicedPacket::from_ether_type(et, payload),
                None => return Ok(None),
            }
        }
        LinkType::Null | LinkType::Loop => {
            let (header, payload) = split_at_checked(data, 4).ok_or_else(|| {
                err(
                    FrameLayer::Link,
                    FrameProblem::Cut {
                        what: "loopback header".to_string(),
                        len: data.len(),
                        required: 4,
                    },
                )
            })?;
            match loopback_family(header) {
                Some(et) => LaxSlicedPacket::from_ether_type(et, payload),
                None => return Ok(None),
            }
        }
        LinkType::Raw => match data.first().map(|b| b >> 4) {
            Some(4) => LaxSlicedPacket::from_ether_type(EtherType::IPV4, data),
            Some(6) => LaxSlicedPacket::from_ether_type(EtherType::IPV6, data),
            Some(v) => {
                return Err(err(
                    FrameLayer::Link,
                    format!("raw IP frame with IP version {v}"),
                ))
            }
            None => return Err(err(FrameLayer::Link, "empty raw IP frame".to_string())),
        },
        LinkType::Ipv4 => LaxSlicedPacket::from_ether_type(EtherType::IPV4, data),
        LinkType::Ipv6 => LaxSlicedPacket::from_ether_type(EtherType::IPV6, data),
        LinkType::Unsupported(dlt) => {
            return Err(err(FrameLayer::Link, FrameProblem::UnsupportedLink { dlt }))
        }
    }))
}

/// The EtherType under a Linux cooked header (v1 or v2) of hardware type `arphrd`, or `None` when
/// the protocol field is not one: a netlink family (ARPHRD_NETLINK), or a Linux pseudo-protocol
/// below 0x0600 (CAN, raw 802.3...) other than 0x0004, which marks an 802.2 LLC frame and is
/// passed on (any value below 0x0600 is read as an 802.3 length, then LLC).
fn sll_protocol(arphrd: u16, protocol: u16) -> Option<EtherType> {
    if arphrd == ARPHRD_NETLINK || (protocol < 0x0600 && protocol != LINUX_SLL_P_802_2) {
        return None;
    }
    Some(EtherType(protocol))
}

/// SLL protocol value of frames that start with an 802.2 LLC header (Linux ETH_P_802_2).
const LINUX_SLL_P_802_2: u16 = 0x0004;

/// Length of a Linux cooked capture v1 header.
const SLL_HEADER_LEN: usize = 16;
/// Length of a Linux cooked capture v2 header.
const SLL2_HEADER_LEN: usize = 20;
/// ARPHRD_NETLINK: SLL/SLL2 frames whose protocol field is a netlink family.
const ARPHRD_NETLINK: u16 = 824;

fn err(layer: FrameLayer, problem: impl Into<FrameProblem>) -> FrameError {
    FrameError {
        layer,
        problem: problem.into(),
        inside: None,
    }
}

/// `data.split_at(n)` without panicking when `data` is shorter.
fn split_at_checked(data: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    Some((data.get(..n)?, data.get(n..)?))
}

/// Big-endian u16 at `at`, 0 when out of range (callers check lengths first).
fn be16(data: &[u8], at: usize) -> u16 {
    match data.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// The BSD loopback address family, read in either byte order: the NULL header is in the
/// capturing host's order, and captures move between machines. IPv6 is 24, 28 or 30 depending on
/// the BSD flavour (and Darwin).
fn loopback_family(header: &[u8]) -> Option<EtherType> {
    let bytes: [u8; 4] = header.try_into().ok()?;
    let fam = |v: u32| match v {
        2 => Some(EtherType::IPV4),
        24 | 28 | 30 => Some(EtherType::IPV6),
        _ => None,
    };
    fam(u32::from_le_bytes(bytes)).or_else(|| fam(u32::from_be_bytes(bytes)))
}

/// FrameLayer::Ipv4/FrameLayer::Ipv6 for an IP packet starting at `ip`, by its version nibble.
fn ip_layer_of(ip: &[u8]) -> FrameLayer {
    match ip.first().map(|b| b >> 4) {
        Some(6) => FrameLayer::Ipv6,
        _ => FrameLayer::Ipv4,
    }
}

fn len_message(what: &str, l: &LenError) -> FrameProblem {
    FrameProblem::Cut {
        what: what.to_string(),
        len: l.len,
        required: l.required_len,
    }
}

/// Turn etherparse's lax slicing into our three outcomes, or a tunnel to open.
fn interpret<'a>(
    sliced: LaxSlicedPacket<'a>,
    captured: usize,
    orig_len: u32,
    defrag: bool,
) -> Result<Step<'a>, FrameError> {
    // The IP layer name for errors found before the net slice exists.
    let ip_layer = sliced
        .ether_payload()
        .map(|p| {
            if p.ether_type == EtherType::IPV6 {
                FrameLayer::Ipv6
            } else {
                ip_layer_of(p.payload)
            }
        })
        .unwrap_or(FrameLayer::Ipv4);
    let ip_layer = match &sliced.net {
        Some(LaxNetSlice::Ipv4(_)) => FrameLayer::Ipv4,
        Some(LaxNetSlice::Ipv6(_)) => FrameLayer::Ipv6,
        _ => ip_layer,
    };

    if let Some((e, layer)) = &sliced.stop_err {
        return match layer {
            Layer::VlanHeader => Err(err(
                FrameLayer::Vlan,
                match e {
                    SliceError::Len(l) => len_message("VLAN tag", l),
                    other => FrameProblem::Other(other.to_string()),
                },
            )),
            Layer::IpHeader | Layer::Ipv4Header | Layer::Ipv6Header => Err(err(
                ip_layer,
                match e {
                    SliceError::Len(l) => len_message("header", l),
                    SliceError::Ip(etherparse::err::ip::HeaderError::UnsupportedIpVersion {
                        version_number,
                    }) => format!("unsupported IP version {version_number}").into(),
                    SliceError::Ip(
                        etherparse::err::ip::HeaderError::Ipv4HeaderLengthSmallerThanHeader { ihl },
                    ) => FrameProblem::Ipv4HeaderLength { ihl: *ihl },
                    other => FrameProblem::Other(other.to_string()),
                },
            )),
            Layer::Ipv4Packet
            | Layer::Ipv6Packet
            | Layer::IpAuthHeader
            | Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader => Err(err(
                ip_layer,
                match e {
                    SliceError::Len(l) => len_message(&layer.to_string(), l),
                    other => FrameProblem::Other(format!("{layer}: {other}")),
                },
            )),
            Layer::TcpHeader => Err(err(
                FrameLayer::Tcp,
                match e {
                    SliceError::Len(l) => len_message("header", l),
                    SliceError::Tcp(etherparse::err::tcp::HeaderError::DataOffsetTooSmall {
                        data_offset,
                    }) => format!("data offset {data_offset} is below the minimum of 5").into(),
                    other => FrameProblem::Other(other.to_string()),
                },
            )),
            Layer::LinuxSllHeader | Layer::Ethernet2Header | Layer::EtherPayload => {
                Err(err(FrameLayer::Link, e.to_string()))
            }
            // UDP, ICMP, IGMP, ARP, MACsec: not TCP whatever the problem.
            _ => Ok(Step::Done(Decoded::NotTcp)),
        };
    }

    let net = match &sliced.net {
        Some(net) => net,
        None => {
            // etherparse stops quietly when more VLAN tags are stacked than it keeps.
            if sliced.link_exts.is_full() {
                if let Some(p) = sliced.ether_payload() {
                    if is_vlan_type(p.ether_type) {
                        return Err(err(
                            FrameLayer::Vlan,
                            format!(
                                "more than {} stacked VLAN tags",
                                LaxSlicedPacket::LINK_EXTS_CAP
                            ),
                        ));
                    }
                }
            }
            return link_tunnel(&sliced);
        }
    };

    let (src_ip, dst_ip, payload, missing) = match net {
        LaxNetSlice::Arp(_) => return Ok(Step::Done(Decoded::NotTcp)),
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let payload = v4.payload();
            let fragmented = h.more_fragments() || h.fragments_offset().value() != 0;
            let auth_len = v4.extensions().auth.map(|a| a.slice().len()).unwrap_or(0);
            let present = h
                .slice()
                .len()
                .saturating_add(auth_len)
                .saturating_add(payload.payload.len());
            let missing = missing_bytes(
                payload,
                usize::from(h.total_len()),
                present,
                captured,
                orig_len,
            );
            if defrag && fragmented && may_carry_tcp(payload.ip_number) {
                return Ok(Step::Fragment(
                    Fragment {
                        key: FragKey {
                            src: IpAddr::V4(h.source_addr()),
                            dst: IpAddr::V4(h.destination_addr()),
                            id: u32::from(h.identification()),
                            proto: payload.ip_number.0,
                        },
                        offset: h.fragments_offset(),
                        more: h.more_fragments(),
                        header: h.slice().to_vec(),
                        payload: payload.payload,
                        missing: missing as usize,
                    },
                    FrameLayer::Ipv4,
                ));
            }
            if payload.ip_number != IpNumber::TCP {
                return ip_tunnel(&sliced, payload, fragmented, FrameLayer::Ipv4);
            }
            if fragmented {
                return Err(err(
                    FrameLayer::Ipv4,
                    format!(
                        "fragmented packet (offset {}) not reassembled",
                        u32::from(h.fragments_offset().value()) * 8
                    ),
                ));
            }
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                payload,
                missing,
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let payload = v6.payload();
            if defrag && payload.fragmented && may_carry_tcp(payload.ip_number) {
                let frag_header = v6.extensions().clone().into_iter().find_map(|e| match e {
                    Ipv6ExtensionSlice::Fragment(f) => Some(f),
                    _ => None,
                });
                if let Some(f) = frag_header {
                    let present = v6
                        .extensions()
                        .slice()
                        .len()
                        .saturating_add(payload.payload.len());
                    let missing = missing_bytes(
                        payload,
                        usize::from(h.payload_length()),
                        present,
                        captured,
                        orig_len,
                    );
                    return Ok(Step::Fragment(
                        Fragment {
                            key: FragKey {
                                src: IpAddr::V6(h.source_addr()),
                                dst: IpAddr::V6(h.destination_addr()),
                                id: f.identification(),
                                proto: payload.ip_number.0,
                            },
                            offset: f.fragment_offset(),
                            more: f.more_fragments(),
                            header: h.slice().to_vec(),
                            payload: payload.payload,
                            missing: missing as usize,
                        },
                        FrameLayer::Ipv6,
                    ));
                }
            }
            if payload.ip_number != IpNumber::TCP {
                return ip_tunnel(&sliced, payload, payload.fragmented, FrameLayer::Ipv6);
            }
            if payload.fragmented {
                return Err(err(FrameLayer::Ipv6, FrameProblem::NotReassembled));
            }
            let present = v6
                .extensions()
                .slice()
                .len()
                .saturating_add(payload.payload.len());
            let missing = missing_bytes(
                payload,
                usize::from(h.payload_length()),
                present,
                captured,
                orig_len,
            );
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                payload,
                missing,
            )
        }
    };

    let tcp: &TcpSlice<'a> = match &sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        // Not reachable with etherparse 0.21 (TCP either slices or sets stop_err), but never
        // pretend a frame is fine.
        _ => {
            return Err(err(
                FrameLayer::Tcp,
                format!(
                    "no TCP header in {} bytes of IP payload",
                    payload.payload.len()
                ),
            ))
        }
    };
    Ok(Step::Done(Decoded::Tcp(TcpSegment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags(tcp.header_slice().get(13).copied().unwrap_or(0)),
        window: tcp.window_size(),
        payload: tcp.payload(),
        missing,
    })))
}

/// UDP port of VXLAN (IANA).
const VXLAN_PORT: u16 = 4789;
/// UDP port of GENEVE (IANA).
const GENEVE_PORT: u16 = 6081;
/// UDP port of GRE-in-UDP (RFC 8086): a GRE header right after the UDP header.
const GRE_IN_UDP_PORT: u16 = 4754;

/// Protocols whose fragments are worth joining: they carry TCP or a tunnel that may.
fn may_carry_tcp(p: IpNumber) -> bool {
    matches!(
        p,
        IpNumber::TCP | IpNumber::UDP | IpNumber::GRE | IpNumber::IPV4 | IpNumber::IPV6
    )
}

/// UDP port of GTP-U (3GPP TS 29.281).
const GTP_U_PORT: u16 = 2152;
/// UDP port of AYIYA (IANA).
const AYIYA_PORT: u16 = 5072;
/// UDP port of Teredo servers and relays (RFC 4380).
const TEREDO_PORT: u16 = 3544;

/// The UDP tunnels told by a well-known port on either side, as tshark does: a GTP-U peer, a
/// tunnel broker or a Teredo server answers from its port to whatever port the other end uses
/// (a GTP-U sender may pick any source port, so one direction of a flow has 2152 only as its
/// destination and the other only as its source). The header checks in [`super::tunnel`] then
/// turn away datagrams that only share the port.
fn udp_either_port(src: u16, dst: u16) -> Option<Encap> {
    let by_port = |p| match p {
        GTP_U_PORT => Some(Encap::GtpU),
        AYIYA_PORT => Some(Encap::Ayiya),
        TEREDO_PORT => Some(Encap::Teredo),
        _ => None,
    };
    by_port(dst).or_else(|| by_port(src))
}

/// An IP packet that is not TCP: a tunnel to open (GRE, GRE-in-UDP, IP-in-IP, VXLAN, GENEVE)
/// or not TCP.
fn ip_tunnel<'a>(
    sliced: &LaxSlicedPacket<'a>,
    payload: &LaxIpPayloadSlice<'a>,
    fragmented: bool,
    ip_layer: FrameLayer,
) -> Result<Step<'a>, FrameError> {
    let not_tcp = Ok(Step::Done(Decoded::NotTcp));
    let encap = match payload.ip_number {
        IpNumber::GRE => Encap::Gre,
        IpNumber::IPV4 | IpNumber::IPV6 => Encap::IpInIp,
        IpNumber::UDP => match &sliced.transport {
            // etherparse slices no UDP header of a fragment, so fragmented datagrams end here.
            Some(TransportSlice::Udp(udp)) => match udp.destination_port() {
                VXLAN_PORT => Encap::Vxlan,
                GENEVE_PORT => Encap::Geneve,
                GRE_IN_UDP_PORT => Encap::Gre,
                dst => match udp_either_port(udp.source_port(), dst) {
                    Some(encap) => encap,
                    None => return not_tcp,
                },
            },
            _ => return not_tcp,
        },
        _ => return not_tcp,
    };
    if fragmented {
        // Like TCP in fragments: what it carries cannot be read without reassembly.
        return Err(err(
            ip_layer,
            format!("fragmented {encap} packet not reassembled"),
        ));
    }
    let tunnel_err = |e: TunnelError| err(FrameLayer::Tunnel(encap), FrameProblem::Tunnel(e));
    let udp_payload = || match &sliced.transport {
        Some(TransportSlice::Udp(udp)) => udp.payload(),
        _ => &[],
    };
    let (encap, inner) = match encap {
        Encap::Gre if payload.ip_number == IpNumber::UDP => {
            tunnel::gre(udp_payload()).map_err(tunnel_err)?
        }
        Encap::Gre => tunnel::gre(payload.payload).map_err(tunnel_err)?,
        Encap::Vxlan => (encap, tunnel::vxlan(udp_payload()).map_err(tunnel_err)?),
        Encap::Geneve => (encap, tunnel::geneve(udp_payload()).map_err(tunnel_err)?),
        // Told by a port that may also be some other program's ephemeral port: a header that
        // does not read as the tunnel's (or carries no packet) is that other traffic, not an
        // error and not counted.
        Encap::GtpU | Encap::Ayiya | Encap::Teredo => {
            let read = match encap {
                Encap::GtpU => tunnel::gtp_u,
                Encap::Ayiya => tunnel::ayiya,
                _ => tunnel::teredo,
            };
            match read(udp_payload()) {
                Ok(Inner::Other) | Err(_) => return not_tcp,
                Ok(inner) => (encap, inner),
            }
        }
        _ => {
            let et = if payload.ip_number == IpNumber::IPV6 {
                EtherType::IPV6
            } else {
                EtherType::IPV4
            };
            (encap, Inner::EtherType(et, payload.payload))
        }
    };
    Ok(Step::Inner(encap, inner))
}

/// A frame with no IP layer: an MPLS stack or an 802.2 LLC/SNAP header to open, or not TCP.
fn link_tunnel<'a>(sliced: &LaxSlicedPacket<'a>) -> Result<Step<'a>, FrameError> {
    let Some(p) = sliced.ether_payload() else {
        return Ok(Step::Done(Decoded::NotTcp));
    };
    let (encap, inner) = if p.ether_type.0 == MPLS_UNICAST || p.ether_type.0 == MPLS_MULTICAST {
        (Encap::Mpls, tunnel::mpls(p.payload))
    } else if p.ether_type.0 <= MAX_8023_LENGTH {
        (Encap::LlcSnap, tunnel::llc(p.payload))
    } else {
        return Ok(Step::Done(Decoded::NotTcp));
    };
    match inner {
        Ok(Inner::Other) => Ok(Step::Done(Decoded::NotTcp)),
        Ok(inner) => Ok(Step::Inner(encap, inner)),
        Err(e) => Err(err(FrameLayer::Tunnel(encap), FrameProblem::Tunnel(e))),
    }
}

/// EtherTypes of MPLS (etherparse 0.21 names none).
const MPLS_UNICAST: u16 = 0x8847;
const MPLS_MULTICAST: u16 = 0x8848;

/// Largest IEEE 802.3 length field: type/length values up to here are lengths, and an 802.2 LLC
/// header follows instead of an EtherType's packet.
const MAX_8023_LENGTH: u16 = 1500;

fn is_vlan_type(et: EtherType) -> bool {
    et == EtherType::VLAN_TAGGED_FRAME
        || et == EtherType::PROVIDER_BRIDGING
        || et == EtherType::VLAN_DOUBLE_TAGGED_FRAME
}

/// Payload bytes the IP header promised beyond what was captured.
///
/// `promised` is the IP length field counted from the same origin as `present` (IPv4 total
/// length vs. header + extensions + captured payload; IPv6 payload length vs. extensions +
/// captured payload). When etherparse had to ignore the length field (IPv4 total length 0 or
/// too small, as with segmentation offload, or an IPv6 jumbogram), the wire length `orig_len`
/// tells how much the snapshot length cut instead.
fn missing_bytes(
    payload: &LaxIpPayloadSlice<'_>,
    promised: usize,
    present: usize,
    captured: usize,
    orig_len: u32,
) -> u32 {
    let missing = if payload.incomplete {
        promised.saturating_sub(present)
    } else if payload.len_source == LenSource::Slice {
        usize::try_from(orig_len)
            .unwrap_or(usize::MAX)
            .saturating_sub(captured)
    } else {
        0
    };
    u32::try_from(missing).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    // ---- hand-written frame builders (independent of etherparse) ----

    const CAM: [u8; 4] = [192, 168, 1, 64];
    const SRV: [u8; 4] = [10, 0, 0, 5];
    const CAM6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64];
    const SRV6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];

    /// TCP header (20 bytes + `opt_words` * 4 bytes of NOP options) followed by `payload`.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        opt_words: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ack.to_be_bytes());
        v.push((5 + opt_words) << 4);
        v.push(flags);
        v.extend_from_slice(&window.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        v.extend(std::iter::repeat_n(1u8, usize::from(opt_words) * 4)); // NOP options
        v.extend_from_slice(payload);
        v
    }

    /// IPv4 header (20 bytes) + `inner`; `total_len` None = correct length.
    fn ipv4(proto: u8, inner: &[u8], total_len: Option<u16>, frag: u16) -> Vec<u8> {
        let len = total_len.unwrap_or((20 + inner.len()) as u16);
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0x12, 0x34]); // identification
        v.extend_from_slice(&frag.to_be_bytes());
        v.push(64); // ttl
        v.push(proto);
        v.extend_from_slice(&[0, 0]); // checksum (not checked)
        v.extend_from_slice(&CAM);
        v.extend_from_slice(&SRV);
        v.extend_from_slice(inner);
        v
    }

    /// IPv6 header (40 bytes) + `inner`; `payload_len` None = correct length.
    fn ipv6(next: u8, inner: &[u8], payload_len: Option<u16>) -> Vec<u8> {
        let len = payload_len.unwrap_or(inner.len() as u16);
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&len.to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend_from_slice(&CAM6);
        v.extend_from_slice(&SRV6);
        v.extend_from_slice(inner);
        v
    }

    fn eth(ethertype: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 0x66, 0x77, 0x88, 0x99, 0xaa,
        ];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(inner);
        v
    }

    /// A VLAN tag body (TCI + inner EtherType) to put after an outer EtherType/TPID.
    fn vlan(vid: u16, inner_type: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = vid.to_be_bytes().to_vec();
        v.extend_from_slice(&inner_type.to_be_bytes());
        v.extend_from_slice(inner);
        v
    }

    fn sll(protocol: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0]; // packet type: to us
        v.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
        v.extend_from_slice(&6u16.to_be_bytes()); // address length
        v.extend_from_slice(&[0, 0x66, 0x77, 0x88, 0x99, 0xaa, 0, 0]);
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(inner);
        v
    }

    fn sll2(protocol: u16, arphrd: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = protocol.to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0]); // reserved
        v.extend_from_slice(&3u32.to_be_bytes()); // interface index
        v.extend_from_slice(&arphrd.to_be_bytes());
        v.push(4); // packet type: outgoing
        v.push(6); // address length
        v.extend_from_slice(&[0, 0x66, 0x77, 0x88, 0x99, 0xaa, 0, 0]);
        v.extend_from_slice(inner);
        v
    }

    fn null(family: [u8; 4], inner: &[u8]) -> Vec<u8> {
        let mut v = family.to_vec();
        v.extend_from_slice(inner);
        v
    }

    const BODY: &[u8] = b"POST /alarm HTTP/1.1\r\n";
    const PSH_ACK: u8 = 0x18;

    fn tcp_body() -> Vec<u8> {
        tcp(49152, 8080, 1_000_000, 2_000_000, PSH_ACK, 502, 0, BODY)
    }

    fn seg(link: LinkType, data: &[u8], orig_len: u32) -> TcpSegment<'_> {
        match decode_frame(link, data, orig_len) {
            Ok(Decoded::Tcp(s)) => s,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    fn v4(port: u16, ip: [u8; 4]) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
    }
    fn v6(port: u16, ip: [u8; 16]) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)
    }

    fn check_v4_body(s: &TcpSegment<'_>) {
        assert_eq!(s.src, "192.168.1.64:49152".parse().unwrap());
        assert_eq!(s.dst, v4(8080, [10, 0, 0, 5]));
        check_tcp_fields(s);
    }
    fn check_v6_body(s: &TcpSegment<'_>) {
        assert_eq!(s.src, "[fe80::64]:49152".parse().unwrap());
        assert_eq!(s.dst, v6(8080, SRV6));
        assert_eq!(s.dst, "[2001:db8::5]:8080".parse().unwrap());
        check_tcp_fields(s);
    }
    fn check_tcp_fields(s: &TcpSegment<'_>) {
        assert_eq!(s.seq, 1_000_000);
        assert_eq!(s.ack, 2_000_000);
        assert_eq!(s.flags, TcpFlags(0x18));
        assert!(s.flags.psh() && s.flags.ack() && !s.flags.syn());
        assert_eq!(s.window, 502);
        assert_eq!(s.payload, BODY);
        assert_eq!(s.missing, 0);
    }

    fn frame_err(link: LinkType, data: &[u8], orig_len: u32) -> FrameError {
        match decode_frame(link, data, orig_len) {
            Err(e) => e,
            Ok(d) => panic!("expected an error, got {d:?}"),
        }
    }

    fn is_not_tcp(link: LinkType, data: &[u8]) -> bool {
        matches!(
            decode_frame(link, data, data.len() as u32),
            Ok(Decoded::NotTcp)
        )
    }

    // ---- link types ----

    #[test]
    fn dlt_numbers() {
        let table = [
            (0, LinkType::Null),
            (1, LinkType::Ethernet),
            (12, LinkType::Raw),
            (14, LinkType::Raw),
            (101, LinkType::Raw),
            (108, LinkType::Loop),
            (113, LinkType::LinuxSll),
            (228, LinkType::Ipv4),
            (229, LinkType::Ipv6),
            (276, LinkType::LinuxSll2),
            (105, LinkType::Unsupported(105)),
            (-1, LinkType::Unsupported(-1)),
        ];
        for (dlt, want) in table {
            assert_eq!(LinkType::from_dlt(dlt), want, "DLT {dlt}");
        }
    }

    #[test]
    fn ethernet_ipv4_tcp_all_fields() {
        let f = eth(0x0800, &ipv4(6, &tcp_body(), None, 0));
        assert_eq!(f.len(), 14 + 20 + 20 + BODY.len());
        check_v4_body(&seg(LinkType::Ethernet, &f, f.len() as u32));
    }

    #[test]
    fn ethernet_ipv6_tcp_all_fields() {
        let f = eth(0x86dd, &ipv6(6, &tcp_body(), None));
        check_v6_body(&seg(LinkType::Ethernet, &f, f.len() as u32));
    }

    #[test]
    fn syn_flags_and_tcp_options() {
        let t = tcp(5000, 80, 7, 0, 0x02, 64240, 3, b"");
        let f = eth(0x0800, &ipv4(6, &t, None, 0));
        let s = seg(LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!(s.flags, TcpFlags(0x02));
        assert!(s.flags.syn() && !s.flags.ack());
        assert_eq!(s.seq, 7);
        assert_eq!(s.window, 64240);
        assert!(s.payload.is_empty());
        assert_eq!(s.src, v4(5000, CAM));
        assert_eq!(s.dst, v4(80, SRV));
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // A bare ACK is 54 bytes; Ethernet pads it to 60.
        let t = tcp(5000, 80, 7, 9, 0x10, 100, 0, b"");
        let mut f = eth(0x0800, &ipv4(6, &t, None, 0));
        f.extend_from_slice(&[0; 6]);
        let s = seg(LinkType::Ethernet, &f, 60);
        assert!(s.payload.is_empty());
        assert_eq!(s.missing, 0);
    }

    #[test]
    fn stacked_vlans() {
        // 802.1ad outer tag 100, 802.1Q inner tag 200, then IPv4.
        let inner = vlan(200, 0x0800, &ipv4(6, &tcp_body(), None, 0));
        let f = eth(0x88a8, &vlan(100, 0x8100, &inner));
        check_v4_body(&seg(LinkType::Ethernet, &f, f.len() as u32));
        // Single 802.1Q tag with IPv6.
        let f = eth(0x8100, &vlan(5, 0x86dd, &ipv6(6, &tcp_body(), None)));
        check_v6_body(&seg(LinkType::Ethernet, &f, f.len() as u32));
    }

    #[test]
    fn too_many_vlans_is_a_vlan_error() {
        let mut body = vlan(4, 0x0800, &ipv4(6, &tcp_body(), None, 0));
        for vid in [3, 2, 1] {
            body = vlan(vid, 0x8100, &body);
        }
        let f = eth(0x8100, &body);
        assert_eq!(
            frame_err(LinkType::Ethernet, &f, f.len() as u32).layer,
            FrameLayer::Vlan
        );
    }

    #[test]
    fn cut_vlan_tag_is_a_vlan_error() {
        let f = eth(0x8100, &[0, 5]);
        let e = frame_err(LinkType::Ethernet, &f, 100);
        assert_eq!(e.layer, FrameLayer::Vlan);
        assert!(matches!(e.problem, FrameProblem::Cut { .. }), "{e:?}");
    }

    #[test]
    fn linux_sll_v1() {
        let f = sll(0x0800, &ipv4(6, &tcp_body(), None, 0));
        check_v4_body(&seg(LinkType::LinuxSll, &f, f.len() as u32));
        let f = sll(0x86dd, &ipv6(6, &tcp_body(), None));
        check_v6_body(&seg(LinkType::LinuxSll, &f, f.len() as u32));
        assert!(is_not_tcp(LinkType::LinuxSll, &sll(0x0806, &[0; 28])));
    }

    #[test]
    fn linux_sll_v2() {
        let f = sll2(0x0800, 1, &ipv4(6, &tcp_body(), None, 0));
        assert_eq!(f.len(), 20 + 40 + BODY.len());
        check_v4_body(&seg(LinkType::LinuxSll2, &f, f.len() as u32));
        // Loopback device in `-i any` captures: ARPHRD_LOOPBACK (772).
        let f = sll2(0x86dd, 772, &ipv6(6, &tcp_body(), None));
        check_v6_body(&seg(LinkType::LinuxSll2, &f, f.len() as u32));
        // Netlink frames: the protocol field is not an EtherType.
        let f = sll2(0x0800, 824, &ipv4(6, &tcp_body(), None, 0));
        assert!(is_not_tcp(LinkType::LinuxSll2, &f));
        // Header cut short.
        let e = frame_err(LinkType::LinuxSll2, &f[..19], 100);
        assert_eq!(e.layer, FrameLayer::Link);
        assert!(
            matches!(
                e.problem,
                FrameProblem::Cut {
                    len: 19,
                    required: 20,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn null_and_loop_families_in_both_byte_orders() {
        let ip4 = ipv4(6, &tcp_body(), None, 0);
        let ip6 = ipv6(6, &tcp_body(), None);
        for link in [LinkType::Null, LinkType::Loop] {
            for fam in [[2, 0, 0, 0], [0, 0, 0, 2]] {
                check_v4_body(&seg(link, &null(fam, &ip4), 200));
            }
            for fam in [
                [24, 0, 0, 0],
                [0, 0, 0, 24],
                [28, 0, 0, 0],
                [0, 0, 0, 28],
                [30, 0, 0, 0],
                [0, 0, 0, 30],
            ] {
                let f = null(fam, &ip6);
                check_v6_body(&seg(link, &f, f.len() as u32));
            }
            // AF_APPLETALK (16): some other protocol.
            assert!(is_not_tcp(link, &null([16, 0, 0, 0], &ip4)));
            assert_eq!(frame_err(link, &[2, 0], 2).layer, FrameLayer::Link);
        }
    }

    #[test]
    fn raw_ip_link_types() {
        let ip4 = ipv4(6, &tcp_body(), None, 0);
        let ip6 = ipv6(6, &tcp_body(), None);
        check_v4_body(&seg(LinkType::Raw, &ip4, ip4.len() as u32));
        check_v6_body(&seg(LinkType::Raw, &ip6, ip6.len() as u32));
        check_v4_body(&seg(LinkType::Ipv4, &ip4, ip4.len() as u32));
        check_v6_body(&seg(LinkType::Ipv6, &ip6, ip6.len() as u32));
        let e = frame_err(LinkType::Raw, &[0x50, 0, 0, 20], 4);
        assert_eq!(
            e,
            FrameError {
                layer: FrameLayer::Link,
                problem: FrameProblem::Other("raw IP frame with IP version 5".into()),
                inside: None,
            }
        );
        assert_eq!(frame_err(LinkType::Raw, &[], 0).layer, FrameLayer::Link);
    }

    #[test]
    fn unsupported_link_type_is_a_link_error() {
        let e = frame_err(LinkType::Unsupported(147), &[1, 2, 3], 3);
        assert_eq!(e.to_string(), "link: unsupported link type (DLT 147)");
    }

    // ---- tunnels and encapsulations ----

    const OUTER_A: [u8; 4] = [172, 16, 0, 1];
    const OUTER_B: [u8; 4] = [172, 16, 0, 2];

    /// An outer IPv4 packet between the tunnel endpoints (not the device's addresses).
    fn outer_ipv4(proto: u8, inner: &[u8]) -> Vec<u8> {
        let mut v = ipv4(proto, inner, None, 0);
        v[12..16].copy_from_slice(&OUTER_A);
        v[16..20].copy_from_slice(&OUTER_B);
        v
    }

    fn udp(dport: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = 40000u16.to_be_bytes().to_vec();
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&((8 + inner.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(inner);
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// The inner Ethernet/IPv4/TCP frame every tunnel test carries.
    fn inner_eth() -> Vec<u8> {
        eth(0x0800, &ipv4(6, &tcp_body(), None, 0))
    }

    /// Decode `f` (Ethernet link), check it is the inner segment and return the counts.
    fn through(f: &[u8]) -> EncapCounts {
        let mut c = EncapCounts::default();
        match decode_frame_counted(LinkType::Ethernet, f, f.len() as u32, &mut c) {
            Ok(Decoded::Tcp(s)) => check_v4_body(&s),
            other => panic!("expected the inner TCP segment, got {other:?}"),
        }
        c
    }

    #[test]
    fn gre_with_options_and_teb() {
        // GRE with checksum, key and sequence number, carrying IPv4 by EtherType.
        let gre = cat(&[
            &[0xB0, 0, 0x08, 0x00],
            &[0; 12],
            &ipv4(6, &tcp_body(), None, 0),
        ]);
        let c = through(&eth(0x0800, &outer_ipv4(47, &gre)));
        assert_eq!(c.gre, 1);
        // Transparent Ethernet bridging: a whole Ethernet frame.
        let gre = cat(&[&[0x20, 0, 0x65, 0x58, 0, 0, 0, 5], &inner_eth()]);
        assert_eq!(through(&eth(0x0800, &outer_ipv4(47, &gre))).gre, 1);
        // GRE over IPv6.
        let gre = cat(&[&[0, 0, 0x08, 0x00], &ipv4(6, &tcp_body(), None, 0)]);
        assert_eq!(through(&eth(0x86dd, &ipv6(47, &gre, None))).gre, 1);
    }

    #[test]
    fn erspan_ii_and_iii() {
        let ii = cat(&[
            &[0x10, 0, 0x88, 0xBE, 0, 0, 0, 1],
            &[0x10, 0x64, 0, 0x01, 0, 0, 0, 0],
            &inner_eth(),
        ]);
        let c = through(&eth(0x0800, &outer_ipv4(47, &ii)));
        assert_eq!((c.erspan, c.gre), (1, 0));
        let iii = cat(&[
            &[0x10, 0, 0x22, 0xEB, 0, 0, 0, 1],
            &[0x20, 0x64, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
            &inner_eth(),
        ]);
        assert_eq!(through(&eth(0x0800, &outer_ipv4(47, &iii))).erspan, 1);
    }

    #[test]
    fn vxlan_and_geneve_over_udp() {
        let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 0x2A, 0], &inner_eth()]);
        let c = through(&eth(0x0800, &outer_ipv4(17, &udp(4789, &vx))));
        assert_eq!(c.vxlan, 1);
        let gn = cat(&[&[0, 0, 0x65, 0x58, 0, 0, 0x2A, 0], &inner_eth()]);
        assert_eq!(
            through(&eth(0x0800, &outer_ipv4(17, &udp(6081, &gn)))).geneve,
            1
        );
        // GRE-in-UDP (RFC 8086), counted as GRE.
        let gre = cat(&[&[0, 0, 0x08, 0x00], &ipv4(6, &tcp_body(), None, 0)]);
        assert_eq!(
            through(&eth(0x0800, &outer_ipv4(17, &udp(4754, &gre)))).gre,
            1
        );
        // The same bytes to another UDP port are just UDP.
        assert!(is_not_tcp(
            LinkType::Ethernet,
            &eth(0x0800, &outer_ipv4(17, &udp(4790, &vx)))
        ));
    }

    #[test]
    fn mpls_label_stack() {
        // Two labels, then IPv4.
        let m = cat(&[
            &[0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64],
            &ipv4(6, &tcp_body(), None, 0),
        ]);
        assert_eq!(through(&eth(0x8847, &m)).mpls, 1);
        // Ethernet pseudowire with a control word, under a VLAN tag.
        let m = cat(&[&[0, 0x01, 0x01, 64, 0, 0, 0, 0], &inner_eth()]);
        assert_eq!(through(&eth(0x8100, &vlan(7, 0x8847, &m))).mpls, 1);
    }

    #[test]
    fn llc_snap_frames() {
        let ip = ipv4(6, &tcp_body(), None, 0);
        let snap = cat(&[&[0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00], &ip]);
        let c = through(&eth(snap.len() as u16, &snap));
        assert_eq!(c.llc_snap, 1);
        // Linux cooked v1 protocol 0x0004: an 802.2 frame.
        let mut f = sll(0x0004, &snap);
        let mut counts = EncapCounts::default();
        let len = f.len() as u32;
        match decode_frame_counted(LinkType::LinuxSll, &f, len, &mut counts) {
            Ok(Decoded::Tcp(s)) => check_v4_body(&s),
            other => panic!("{other:?}"),
        }
        assert_eq!(counts.llc_snap, 1);
        // Spanning tree BPDU: not TCP, and no warning.
        f = eth(38, &[0x42, 0x42, 0x03, 0, 0, 0, 0]);
        assert!(is_not_tcp(LinkType::Ethernet, &f));
    }

    #[test]
    fn ip_in_ip() {
        let f = eth(0x0800, &outer_ipv4(4, &ipv4(6, &tcp_body(), None, 0)));
        assert_eq!(through(&f).ip_in_ip, 1);
        // 6in4.
        let f = eth(0x0800, &outer_ipv4(41, &ipv6(6, &tcp_body(), None)));
        let mut c = EncapCounts::default();
        match decode_frame_counted(LinkType::Ethernet, &f, f.len() as u32, &mut c) {
            Ok(Decoded::Tcp(s)) => check_v6_body(&s),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.ip_in_ip, 1);
    }

    #[test]
    fn nested_tunnels_count_each_layer() {
        // VXLAN inside GRE inside MPLS.
        let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 0x2A, 0], &inner_eth()]);
        let gre = cat(&[&[0, 0, 0x08, 0x00], &outer_ipv4(17, &udp(4789, &vx))]);
        let m = cat(&[&[0, 0x01, 0x01, 64], &outer_ipv4(47, &gre)]);
        let c = through(&eth(0x8847, &m));
        assert_eq!((c.mpls, c.gre, c.vxlan), (1, 1, 1));
    }

    #[test]
    fn nesting_past_the_limit_is_a_located_error() {
        let mut p = ipv4(6, &tcp_body(), None, 0);
        for _ in 0..=MAX_ENCAP_DEPTH {
            p = outer_ipv4(4, &p);
        }
        let f = eth(0x0800, &p);
        let e = frame_err(LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!(e.layer, FrameLayer::Nesting);
        assert_eq!(e.inside, Some(Encap::IpInIp));
        // One level less is fine.
        let mut p = ipv4(6, &tcp_body(), None, 0);
        for _ in 0..MAX_ENCAP_DEPTH {
            p = outer_ipv4(4, &p);
        }
        assert_eq!(through(&eth(0x0800, &p)).ip_in_ip, MAX_ENCAP_DEPTH as u64);
    }

    #[test]
    fn errors_inside_a_tunnel_say_so() {
        // VXLAN header cut short.
        let f = eth(0x0800, &outer_ipv4(17, &udp(4789, &[0x08, 0, 0])));
        let e = frame_err(LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!(
            (e.layer, e.inside),
            (FrameLayer::Tunnel(Encap::Vxlan), None)
        );
        // Inner TCP header cut short: the fault is inside GRE.
        let inner = ipv4(6, &tcp_body()[..10], None, 0);
        let f = eth(
            0x0800,
            &outer_ipv4(47, &cat(&[&[0, 0, 0x08, 0x00], &inner])),
        );
        let e = frame_err(LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!((e.layer, e.inside), (FrameLayer::Tcp, Some(Encap::Gre)));
        assert!(e.to_string().ends_with("(inside gre)"), "{e}");
        // A fragmented GRE packet cannot be opened.
        let f = eth(0x0800, &ipv4(47, &[0; 24], None, 0x2000));
        assert_eq!(
            frame_err(LinkType::Ethernet, &f, f.len() as u32).layer,
            FrameLayer::Ipv4
        );
    }

    #[test]
    fn snaplen_cut_inside_a_tunnel_reports_missing() {
        let body = vec![b'x'; 400];
        let inner = eth(
            0x0800,
            &ipv4(6, &tcp(1, 2, 3, 4, PSH_ACK, 5, 0, &body), None, 0),
        );
        let vx = cat(&[&[0x08, 0, 0, 0, 0, 0, 0x2A, 0], &inner]);
        let full = eth(0x0800, &outer_ipv4(17, &udp(4789, &vx)));
        let s = seg(LinkType::Ethernet, &full[..200], full.len() as u32);
        assert_eq!(s.payload, &body[..s.payload.len()]);
        assert_eq!(s.payload.len() + s.missing as usize, 400);
        assert!(s.missing > 0);
    }

    #[test]
    fn linux_sll_v1_any_hardware_type() {
        // Loopback (772), Android rmnet (530), IP GRE tunnel (778), "none" (0xFFFE).
        for arphrd in [772u16, 530, 778, 0xFFFE] {
            let mut f = sll(0x0800, &ipv4(6, &tcp_body(), None, 0));
            f[2..4].copy_from_slice(&arphrd.to_be_bytes());
            check_v4_body(&seg(LinkType::LinuxSll, &f, f.len() as u32));
        }
        // Netlink: the protocol field is a netlink family.
        let mut f = sll(0x0800, &ipv4(6, &tcp_body(), None, 0));
        f[2..4].copy_from_slice(&824u16.to_be_bytes());
        assert!(is_not_tcp(LinkType::LinuxSll, &f));
        // CAN (protocol 0x000C): not an EtherType.
        assert!(is_not_tcp(LinkType::LinuxSll, &sll(0x000C, &[0; 16])));
        let e = frame_err(LinkType::LinuxSll, &f[..10], 100);
        assert_eq!(
            e.to_string(),
            "link: Linux cooked (SLL) header cut short (10 of 16 bytes)"
        );
    }

    // ---- not TCP ----

    #[test]
    fn non_tcp_frames() {
        let udp = [0x13, 0x88, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4];
        let icmp = [8, 0, 0, 0, 0, 1, 0, 1];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("udp", eth(0x0800, &ipv4(17, &udp, None, 0))),
            ("udp6", eth(0x86dd, &ipv6(17, &udp, None))),
            ("icmp", eth(0x0800, &ipv4(1, &icmp, None, 0))),
            ("gre", eth(0x0800, &ipv4(47, &[0; 8], None, 0))),
            ("arp", eth(0x0806, &[0, 1, 8, 0, 6, 4, 0, 1])),
            ("lldp", eth(0x88cc, &[0; 30])),
            ("802.3 length", eth(0x0040, &[0; 64])),
            ("cut udp header", eth(0x0800, &ipv4(17, &udp[..4], None, 0))),
            // A non-first UDP fragment: not ours either.
            ("udp fragment", eth(0x0800, &ipv4(17, &[0; 16], None, 100))),
        ];
        for (name, f) in cases {
            assert!(is_not_tcp(LinkType::Ethernet, &f), "{name}");
        }
    }

    // ---- truncation ----

    #[test]
    fn snaplen_cut_reports_missing_ipv4() {
        let body = vec![b'x'; 1000];
        let full = eth(
            0x0800,
            &ipv4(6, &tcp(1, 2, 3, 4, PSH_ACK, 5, 0, &body), None, 0),
        );
        assert_eq!(full.len(), 1054);
        // Snaplen 100: 14 + 20 + 20 headers, 46 payload bytes kept, 954 cut.
        let s = seg(LinkType::Ethernet, &full[..100], 1054);
        assert_eq!(s.payload.len(), 46);
        assert_eq!(s.payload, &body[..46]);
        assert_eq!(s.missing, 954);
        // The IP header alone is enough, even if the pcap orig_len is wrong.
        assert_eq!(seg(LinkType::Ethernet, &full[..100], 100).missing, 954);
    }

    #[test]
    fn snaplen_cut_reports_missing_ipv6_and_sll2() {
        let body = vec![b'y'; 500];
        let full = sll2(
            0x86dd,
            1,
            &ipv6(6, &tcp(1, 2, 3, 4, PSH_ACK, 5, 2, &body), None),
        );
        // 20 SLL2 + 40 IPv6 + 28 TCP = 88 header bytes; keep 12 payload bytes.
        let s = seg(LinkType::LinuxSll2, &full[..100], full.len() as u32);
        assert_eq!(s.payload.len(), 12);
        assert_eq!(s.missing, 488);
    }

    #[test]
    fn payload_cut_to_nothing() {
        let full = eth(0x0800, &ipv4(6, &tcp_body(), None, 0));
        let s = seg(LinkType::Ethernet, &full[..54], full.len() as u32);
        assert!(s.payload.is_empty());
        assert_eq!(s.missing, BODY.len() as u32);
    }

    #[test]
    fn offload_total_length_zero_uses_captured_and_orig_len() {
        // Segmentation offload: total length 0, 3000 payload bytes in one captured frame.
        let body = vec![b'z'; 3000];
        let full = eth(
            0x0800,
            &ipv4(6, &tcp(1, 2, 3, 4, PSH_ACK, 5, 0, &body), Some(0), 0),
        );
        let s = seg(LinkType::Ethernet, &full, full.len() as u32);
        assert_eq!(s.payload.len(), 3000);
        assert_eq!(s.missing, 0);
        // Same frame cut at 200 bytes: the wire length tells what is missing.
        let s = seg(LinkType::Ethernet, &full[..200], full.len() as u32);
        assert_eq!(s.payload.len(), 200 - 54);
        assert_eq!(s.missing, 3000 - 146);
    }

    #[test]
    fn ipv6_payload_length_zero_falls_back_to_orig_len() {
        let full = ipv6(6, &tcp_body(), Some(0));
        let s = seg(LinkType::Raw, &full[..70], full.len() as u32);
        assert_eq!(s.payload.len(), 10);
        assert_eq!(s.missing, (BODY.len() - 10) as u32);
    }

    #[test]
    fn cut_inside_tcp_header_is_a_tcp_error() {
        let full = eth(0x0800, &ipv4(6, &tcp_body(), None, 0));
        for cut in [34, 35, 40, 53] {
            let e = frame_err(LinkType::Ethernet, &full[..cut], full.len() as u32);
            assert_eq!(e.layer, FrameLayer::Tcp, "cut at {cut}: {e}");
        }
        let e = frame_err(LinkType::Ethernet, &full[..44], full.len() as u32);
        assert_eq!(e.to_string(), "tcp: header cut short (10 of 20 bytes)");
        // Options promised by the data offset but cut off.
        let t = tcp(1, 2, 3, 4, 0x02, 5, 3, b"");
        let full = eth(0x0800, &ipv4(6, &t, None, 0));
        let e = frame_err(LinkType::Ethernet, &full[..14 + 20 + 24], full.len() as u32);
        assert_eq!(e.to_string(), "tcp: header cut short (24 of 32 bytes)");
    }

    #[test]
    fn bad_headers() {
        // IPv4 header cut short.
        let full = eth(0x0800, &ipv4(6, &tcp_body(), None, 0));
        let e = frame_err(LinkType::Ethernet, &full[..30], full.len() as u32);
        assert_eq!(e.layer, FrameLayer::Ipv4);
        assert!(
            matches!(
                e.problem,
                FrameProblem::Cut {
                    len: 16,
                    required: 20,
                    ..
                }
            ),
            "{e:?}"
        );
        // IHL 3.
        let mut bad = ipv4(6, &tcp_body(), None, 0);
        bad[0] = 0x43;
        let e = frame_err(LinkType::Raw, &bad, bad.len() as u32);
        assert_eq!(e.layer, FrameLayer::Ipv4);
        assert_eq!(e.problem, FrameProblem::Ipv4HeaderLength { ihl: 3 });
        // IPv6 header cut short.
        let full = eth(0x86dd, &ipv6(6, &tcp_body(), None));
        assert_eq!(
            frame_err(LinkType::Ethernet, &full[..40], 100).layer,
            FrameLayer::Ipv6
        );
        // Ethernet says IPv4, the packet says version 7.
        let mut bad = eth(0x0800, &ipv4(6, &tcp_body(), None, 0));
        bad[14] = 0x75;
        let e = frame_err(LinkType::Ethernet, &bad, bad.len() as u32);
        assert_eq!(e.to_string(), "ipv4: unsupported IP version 7");
        // TCP data offset 2.
        let mut t = tcp_body();
        t[12] = 0x20;
        let f = eth(0x0800, &ipv4(6, &t, None, 0));
        let e = frame_err(LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!(
            e.to_string(),
            "tcp: data offset 2 is below the minimum of 5"
        );
        // Ethernet header cut short.
        let e = frame_err(LinkType::Ethernet, &full[..10], 100);
        assert_eq!(
            e.to_string(),
            "link: Ethernet header cut short (10 of 14 bytes)"
        );
    }

    #[test]
    fn ipv4_fragments_are_errors() {
        // Non-first fragment: offset field 185 -> byte offset 1480.
        let f = eth(0x0800, &ipv4(6, &[0; 40], None, 185));
        let e = frame_err(LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!(
            e.to_string(),
            "ipv4: fragmented packet (offset 1480) not reassembled"
        );
        // First fragment (more-fragments bit), holds the TCP header but not all the payload.
        let f = eth(0x0800, &ipv4(6, &tcp_body(), None, 0x2000));
        let e = frame_err(LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!(
            e.to_string(),
            "ipv4: fragmented packet (offset 0) not reassembled"
        );
        // Don't-fragment bit alone is not a fragment.
        let f = eth(0x0800, &ipv4(6, &tcp_body(), None, 0x4000));
        check_v4_body(&seg(LinkType::Ethernet, &f, f.len() as u32));
    }

    #[test]
    fn ipv6_fragments_are_errors() {
        // Fragment header: next header TCP, offset 0 with M flag.
        let mut inner = vec![6, 0, 0x00, 0x01, 0, 0, 0, 9];
        inner.extend_from_slice(&tcp_body());
        let f = ipv6(44, &inner, None);
        let e = frame_err(LinkType::Ipv6, &f, f.len() as u32);
        assert_eq!(e.to_string(), "ipv6: fragmented packet not reassembled");
    }

    /// Decode `frames` in order with one [`FrameDecoder`]; the outcome of each.
    fn decode_all(link: LinkType, frames: &[Vec<u8>], c: &mut EncapCounts) -> Vec<String> {
        let mut d = FrameDecoder::default();
        frames
            .iter()
            .map(
                |f| match d.decode(Timestamp(0), link, f, f.len() as u32, c) {
                    Ok(Decoded::Tcp(s)) => {
                        check_v4_or_v6_body(&s);
                        "tcp".to_string()
                    }
                    Ok(Decoded::NotTcp) => "held".to_string(),
                    Err(e) => e.to_string(),
                },
            )
            .collect()
    }

    fn check_v4_or_v6_body(s: &TcpSegment<'_>) {
        if s.src.is_ipv4() {
            check_v4_body(s)
        } else {
            check_v6_body(s)
        }
    }

    #[test]
    fn frame_decoder_joins_ipv4_fragments_in_any_order() {
        let t = tcp_body();
        let first = eth(0x0800, &ipv4(6, &t[..24], None, 0x2000));
        let last = eth(0x0800, &ipv4(6, &t[24..], None, 3));
        let mut c = EncapCounts::default();
        assert_eq!(
            decode_all(LinkType::Ethernet, &[first.clone(), last.clone()], &mut c),
            ["held", "tcp"]
        );
        assert_eq!(
            decode_all(LinkType::Ethernet, &[last.clone(), first], &mut c),
            ["held", "tcp"]
        );
        // Without the first fragment nothing comes out, and nothing is an error yet.
        assert_eq!(decode_all(LinkType::Ethernet, &[last], &mut c), ["held"]);
        assert!(c.is_empty());
    }

    #[test]
    fn frame_decoder_joins_ipv6_fragments() {
        let t = tcp_body();
        // Fragment header: next header TCP, offset in 8-byte units << 3, M flag, id 9.
        let frag = |offset: u16, more: bool, part: &[u8]| {
            let mut v = vec![6, 0];
            v.extend_from_slice(&((offset / 8) << 3 | u16::from(more)).to_be_bytes());
            v.extend_from_slice(&[0, 0, 0, 9]);
            v.extend_from_slice(part);
            ipv6(44, &v, None)
        };
        let mut c = EncapCounts::default();
        let frames = [frag(0, true, &t[..32]), frag(32, false, &t[32..])];
        assert_eq!(decode_all(LinkType::Ipv6, &frames, &mut c), ["held", "tcp"]);
    }

    #[test]
    fn frame_decoder_joins_a_tunnel_split_outside() {
        // GRE (IPv4 by EtherType) whose outer IPv4 packet is sent in two fragments.
        let gre = cat(&[&[0, 0, 0x08, 0x00], &ipv4(6, &tcp_body(), None, 0)]);
        let outer = |part: &[u8], frag: u16| {
            let mut v = ipv4(47, part, None, frag);
            v[12..16].copy_from_slice(&OUTER_A);
            v[16..20].copy_from_slice(&OUTER_B);
            eth(0x0800, &v)
        };
        let frames = [outer(&gre[..40], 0x2000), outer(&gre[40..], 5)];
        let mut c = EncapCounts::default();
        assert_eq!(
            decode_all(LinkType::Ethernet, &frames, &mut c),
            ["held", "tcp"]
        );
        assert_eq!(c.gre, 1);
        // The stateless decoder still says it cannot read them.
        let e = frame_err(LinkType::Ethernet, &frames[0], frames[0].len() as u32);
        assert_eq!(e.layer, FrameLayer::Ipv4);
    }

    #[test]
    fn frame_decoder_reports_conflicting_overlap_at_the_ip_layer() {
        let t = tcp_body();
        let mut other = t[16..40].to_vec();
        other[0] ^= 0xFF;
        let frames = [
            eth(0x0800, &ipv4(6, &t[..24], None, 0x2000)),
            eth(0x0800, &ipv4(6, &other, None, 0x2000 | 2)),
        ];
        let mut c = EncapCounts::default();
        let out = decode_all(LinkType::Ethernet, &frames, &mut c);
        assert_eq!(out[0], "held");
        assert!(
            out[1].starts_with("ipv4: fragment at offset 16 overlaps"),
            "{out:?}"
        );
    }

    #[test]
    fn gtp_ayiya_teredo_frames() {
        // GTP-U G-PDU to port 2152, IPv4 inside.
        let gtp = cat(&[
            &[0x30, 0xFF, 0, 0, 0, 0, 0, 7],
            &ipv4(6, &tcp_body(), None, 0),
        ]);
        let c = through(&eth(0x0800, &outer_ipv4(17, &udp(2152, &gtp))));
        assert_eq!(c.gtp_u, 1);
        // From port 2152 to another port (the peer's choice): still GTP-U.
        let mut u = udp(2152, &gtp);
        u[0..4].copy_from_slice(&[0x08, 0x68, 0x17, 0x12]);
        assert_eq!(through(&eth(0x0800, &outer_ipv4(17, &u))).gtp_u, 1);
        // A datagram from ephemeral port 2152 that is not GTP: not TCP, not counted, no error.
        let mut c = EncapCounts::default();
        let f = eth(0x0800, &outer_ipv4(17, &udp(53, &[0x12, 0x34, 1, 0, 0, 1])));
        let mut f2 = f.clone();
        f2[34..36].copy_from_slice(&2152u16.to_be_bytes());
        for f in [f, f2] {
            assert!(matches!(
                decode_frame_counted(LinkType::Ethernet, &f, f.len() as u32, &mut c),
                Ok(Decoded::NotTcp)
            ));
        }
        assert!(c.is_empty());
        // AYIYA (16-byte identity, SHA-1 signature, forward) carrying IPv6.
        let mut ay = vec![0x41, 0x52, 0x11, 41, 0, 0, 0, 0];
        ay.extend_from_slice(&[0; 36]);
        ay.extend_from_slice(&ipv6(6, &tcp_body(), None));
        let mut c = EncapCounts::default();
        let f = eth(0x0800, &outer_ipv4(17, &udp(5072, &ay)));
        match decode_frame_counted(LinkType::Ethernet, &f, f.len() as u32, &mut c) {
            Ok(Decoded::Tcp(s)) => check_v6_body(&s),
            other => panic!("expected TCP in AYIYA, got {other:?}"),
        }
        assert_eq!(c.ayiya, 1);
        // Teredo with an origin indication.
        let te = cat(&[&[0, 0, 1, 2, 3, 4, 5, 6], &ipv6(6, &tcp_body(), None)]);
        let f = eth(0x0800, &outer_ipv4(17, &udp(3544, &te)));
        match decode_frame_counted(LinkType::Ethernet, &f, f.len() as u32, &mut c) {
            Ok(Decoded::Tcp(s)) => check_v6_body(&s),
            other => panic!("expected TCP in Teredo, got {other:?}"),
        }
        assert_eq!(c.teredo, 1);
    }

    #[test]
    fn ipv6_extension_header_before_tcp() {
        // Destination options (8 bytes) then TCP.
        let mut inner = vec![6, 0, 1, 4, 0, 0, 0, 0];
        inner.extend_from_slice(&tcp_body());
        let f = ipv6(60, &inner, None);
        check_v6_body(&seg(LinkType::Ipv6, &f, f.len() as u32));
        // Cut inside the extension header.
        let e = frame_err(LinkType::Ipv6, &f[..44], f.len() as u32);
        assert_eq!(e.layer, FrameLayer::Ipv6);
    }

    #[test]
    fn empty_input_is_an_error_for_every_link_type() {
        for link in ALL_LINKS {
            assert!(decode_frame(link, &[], 0).is_err(), "{link:?}");
        }
    }

    const ALL_LINKS: [LinkType; 9] = [
        LinkType::Ethernet,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
        LinkType::Null,
        LinkType::Loop,
        LinkType::Raw,
        LinkType::Ipv4,
        LinkType::Ipv6,
        LinkType::Unsupported(42),
    ];

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            link in 0usize..ALL_LINKS.len(),
            data in proptest::collection::vec(any::<u8>(), 0..200),
            orig_len in any::<u32>(),
        ) {
            let _ = decode_frame(ALL_LINKS[link], &data, orig_len);
        }

        /// Random bytes after a valid-looking prefix reach the deeper layers.
        #[test]
        fn random_tails_never_panic(
            prefix in 0usize..4,
            tail in proptest::collection::vec(any::<u8>(), 0..120),
            orig_len in any::<u32>(),
        ) {
            let (link, mut data) = match prefix {
                0 => (LinkType::Ethernet, eth(0x0800, &[])),
                1 => (LinkType::Ethernet, eth(0x86dd, &[])),
                2 => (LinkType::Ipv4, ipv4(6, &[], Some(0), 0)[..12].to_vec()),
                _ => (LinkType::LinuxSll2, sll2(0x86dd, 1, &[])),
            };
            data.extend_from_slice(&tail);
            let _ = decode_frame(link, &data, orig_len);
        }

        /// Whatever the snapshot length, a frame decodes to a prefix of the payload plus the
        /// exact count of cut bytes, or to an error once the cut reaches the headers.
        #[test]
        fn any_cut_keeps_payload_plus_missing(
            len in 0usize..300,
            cut in 0usize..400,
            v6 in any::<bool>(),
        ) {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let t = tcp(1, 2, 3, 4, PSH_ACK, 5, 0, &body);
            let full = if v6 { eth(0x86dd, &ipv6(6, &t, None)) } else { eth(0x0800, &ipv4(6, &t, None, 0)) };
            let headers = full.len() - len;
            let cut = cut.min(full.len());
            match decode_frame(LinkType::Ethernet, &full[..cut], full.len() as u32) {
                Ok(Decoded::Tcp(s)) => {
                    prop_assert!(cut >= headers);
                    prop_assert_eq!(s.payload, &body[..cut - headers]);
                    prop_assert_eq!(s.missing as usize, full.len() - cut);
                }
                Ok(Decoded::NotTcp) => prop_assert!(false, "not TCP at cut {}", cut),
                Err(e) => {
                    prop_assert!(cut < headers, "{} at cut {}", e, cut);
                    prop_assert!([FrameLayer::Link, FrameLayer::Ipv4, FrameLayer::Ipv6, FrameLayer::Tcp].contains(&e.layer));
                }
            }
        }
    }
}
