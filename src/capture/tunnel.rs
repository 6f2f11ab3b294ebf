//! Encapsulations that mirror ports and overlay networks wrap around the traffic: GRE (with
//! transparent Ethernet bridging; Aruba's 802.11 frames), ERSPAN types I/II/III, VXLAN, GENEVE,
//! MPLS label stacks, IP-in-IP, 802.2 LLC/SNAP, and the UDP tunnels of mobile and IPv6
//! transition networks: GTP-U, AYIYA and Teredo.
//!
//! Sans-IO and allocation-free: each function reads one encapsulation header and says where the
//! carried packet starts and what it is ([`Inner`]); [`super::frame::decode_frame`] slices that
//! packet again, so the TCP segment it reports carries the *inner* addresses and ports (the
//! tunnel's outer addresses are the mirror or the overlay endpoints, not the device).
//!
//! Hand-written because etherparse 0.21 decodes none of these headers (it stops at an unknown
//! EtherType or IP protocol and hands over the payload, which is where these functions start).
//! Header layouts: GRE RFC 2784/2890 (routing of RFC 1701), ERSPAN
//! draft-foschiano-erspan, VXLAN RFC 7348, GENEVE RFC 8926, MPLS RFC 3032 (pseudowire control
//! word RFC 4385), SNAP IEEE 802, GTP-U 3GPP TS 29.281, AYIYA draft-massar-v6ops-ayiya-02,
//! Teredo RFC 4380.

use etherparse::EtherType;
use serde::Serialize;

/// An encapsulation alarmscope looks through, for counts and error locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap {
    /// GRE carrying Ethernet (0x6558) or a packet by EtherType (not ERSPAN), directly over IP
    /// or over UDP port 4754 (GRE-in-UDP).
    Gre,
    /// ERSPAN type I, II or III (GRE protocol 0x88BE or 0x22EB): a switch's remote mirror.
    Erspan,
    /// VXLAN, UDP port 4789.
    Vxlan,
    /// GENEVE, UDP port 6081.
    Geneve,
    /// An MPLS label stack (EtherType 0x8847/0x8848).
    Mpls,
    /// IPv4 or IPv6 carried directly in IPv4 or IPv6 (protocol 4 or 41: 6in4, IPIP).
    IpInIp,
    /// An IEEE 802.3 frame with an 802.2 LLC/SNAP header in place of the EtherType.
    LlcSnap,
    /// GTPv1-U, UDP port 2152 on either side: a mobile core's user plane (Gn/S1-U/N3), where a
    /// camera on a cellular router is seen from the operator's side.
    GtpU,
    /// AYIYA ("anything in anything"), UDP port 5072 on either side: IPv6 tunnel brokers.
    Ayiya,
    /// Teredo, UDP port 3544 on either side: IPv6 over UDP/IPv4 through NAT.
    Teredo,
}

impl Encap {
    /// Short lower-case name, as used for the JSON keys of [`EncapCounts`] and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Encap::Gre => "gre",
            Encap::Erspan => "erspan",
            Encap::Vxlan => "vxlan",
            Encap::Geneve => "geneve",
            Encap::Mpls => "mpls",
            Encap::IpInIp => "ip_in_ip",
            Encap::LlcSnap => "llc_snap",
            Encap::GtpU => "gtp_u",
            Encap::Ayiya => "ayiya",
            Encap::Teredo => "teredo",
        }
    }
}

impl std::fmt::Display for Encap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How many frames were found inside each encapsulation, so a report says that the capture was
/// taken on a mirror port or an overlay (and a frame nested twice counts once in each). ERSPAN
/// frames count under `erspan` only, not also under `gre`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EncapCounts {
    pub gre: u64,
    pub erspan: u64,
    pub vxlan: u64,
    pub geneve: u64,
    pub mpls: u64,
    pub ip_in_ip: u64,
    pub llc_snap: u64,
    pub gtp_u: u64,
    pub ayiya: u64,
    pub teredo: u64,
}

impl EncapCounts {
    /// Count one frame inside `e`.
    pub fn add(&mut self, e: Encap) {
        let n = match e {
            Encap::Gre => &mut self.gre,
            Encap::Erspan => &mut self.erspan,
            Encap::Vxlan => &mut self.vxlan,
            Encap::Geneve => &mut self.geneve,
            Encap::Mpls => &mut self.mpls,
            Encap::IpInIp => &mut self.ip_in_ip,
            Encap::LlcSnap => &mut self.llc_snap,
            Encap::GtpU => &mut self.gtp_u,
            Encap::Ayiya => &mut self.ayiya,
            Encap::Teredo => &mut self.teredo,
        };
        *n = n.saturating_add(1);
    }

    /// Every kind with its count, in a fixed order (for text reports).
    pub fn all(&self) -> [(Encap, u64); 10] {
        [
            (Encap::Gre, self.gre),
            (Encap::Erspan, self.erspan),
            (Encap::Vxlan, self.vxlan),
            (Encap::Geneve, self.geneve),
            (Encap::Mpls, self.mpls),
            (Encap::IpInIp, self.ip_in_ip),
            (Encap::LlcSnap, self.llc_snap),
            (Encap::GtpU, self.gtp_u),
            (Encap::Ayiya, self.ayiya),
            (Encap::Teredo, self.teredo),
        ]
    }

    /// The kinds seen, with their counts, for text reports: `vxlan 3, mpls 2`.
    pub fn describe(&self) -> String {
        let kinds: Vec<String> = self
            .all()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(e, n)| format!("{e} {n}"))
            .collect();
        kinds.join(", ")
    }

    /// True when no frame was encapsulated (the report then says nothing about it).
    pub fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, n)| *n == 0)
    }
}

/// What an encapsulation header says it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// A whole Ethernet II frame (TEB, ERSPAN, VXLAN, pseudowire).
    Ethernet(&'a [u8]),
    /// A packet identified by an EtherType (GRE, GENEVE, SNAP).
    EtherType(EtherType, &'a [u8]),
    /// An IP packet whose version is its first nibble (MPLS, ERSPAN III frame type IP).
    Ip(&'a [u8]),
    /// Something that is not IP and cannot carry TCP (PPP over enhanced GRE, STP, CDP, an MPLS
    /// control channel...).
    Other,
}

/// A broken encapsulation header: the reason, for a located warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelError {
    /// The header is cut short: `len` of the `required` bytes are there.
    Cut { required: usize, len: usize },
    /// A GENEVE header with a version other than 0.
    GeneveVersion(u8),
    /// An MPLS stack with more labels than [`MAX_MPLS_LABELS`] and no bottom-of-stack bit.
    TooManyLabels,
    /// GTP-U extension headers chained more than [`MAX_GTP_EXTENSIONS`] deep, or one with a
    /// length of 0 (which would never end).
    GtpExtensions,
}

impl std::fmt::Display for TunnelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunnelError::Cut { required, len } => {
                write!(f, "header cut short ({len} of {required} bytes)")
            }
            TunnelError::GeneveVersion(v) => write!(f, "unknown version {v}"),
            TunnelError::TooManyLabels => write!(
                f,
                "more than {MAX_MPLS_LABELS} labels without a bottom-of-stack bit"
            ),
            TunnelError::GtpExtensions => write!(
                f,
                "extension headers of length 0 or more than {MAX_GTP_EXTENSIONS} chained"
            ),
        }
    }
}

/// Labels read before an MPLS stack is given up: real stacks hold a handful.
pub const MAX_MPLS_LABELS: usize = 16;

/// GTP-U extension headers read before a header is given up: 3GPP defines a handful.
pub const MAX_GTP_EXTENSIONS: usize = 16;

/// GRE protocol type of transparent Ethernet bridging.
const TEB: u16 = 0x6558;
/// GRE protocol type of ERSPAN types I and II.
const ERSPAN_I_II: u16 = 0x88BE;
/// GRE protocol type of ERSPAN type III.
const ERSPAN_III: u16 = 0x22EB;
/// GRE protocol types Aruba access points and controllers use for the 802.11 frames they
/// tunnel to each other (0x8200-0x8220 as Wireshark registers them).
const ARUBA_FIRST: u16 = 0x8200;
const ARUBA_LAST: u16 = 0x8220;

/// `data[from..]` when at least `need` bytes are there from `from` on.
fn need(data: &[u8], from: usize, need: usize) -> Result<&[u8], TunnelError> {
    let required = from.saturating_add(need);
    if data.len() < required {
        return Err(TunnelError::Cut {
            required,
            len: data.len(),
        });
    }
    Ok(data.get(from..).unwrap_or_default())
}

fn be16(d: &[u8], at: usize) -> u16 {
    match d.get(at..at.saturating_add(2)) {
        Some(&[a, b]) => u16::from_be_bytes([a, b]),
        _ => 0,
    }
}

/// A GRE header (IP protocol 47) and, for ERSPAN, the ERSPAN header after it.
///
/// Version 1 (PPTP's enhanced GRE) carries PPP: [`Inner::Other`]. ERSPAN type I is told from
/// type II by the GRE sequence-number bit, as switches send them (type I has no ERSPAN header).
pub fn gre(d: &[u8]) -> Result<(Encap, Inner<'_>), TunnelError> {
    need(d, 0, 4)?;
    let flags = be16(d, 0);
    if flags & 0x0007 != 0 {
        return Ok((Encap::Gre, Inner::Other));
    }
    let proto = be16(d, 2);
    let (checksum, routing, key, seq) = (
        flags & 0x8000 != 0,
        flags & 0x4000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    let mut off = 4usize;
    // Checksum and offset share one 4-byte field, present when either bit is set.
    for present in [checksum || routing, key, seq] {
        if present {
            off += 4;
        }
    }
    need(d, 0, off)?;
    if routing {
        // RFC 1701 source route entries: family (2), offset (1), length (1), then `length`
        // bytes; the list ends with family 0 and length 0.
        loop {
            need(d, off, 4)?;
            let family = be16(d, off);
            let len = usize::from(d.get(off + 3).copied().unwrap_or(0));
            off += 4 + len;
            if family == 0 && len == 0 {
                break;
            }
        }
    }
    let payload = need(d, off, 0)?;
    Ok(match proto {
        TEB => (Encap::Gre, Inner::Ethernet(payload)),
        ERSPAN_I_II if !seq => (Encap::Erspan, Inner::Ethernet(payload)),
        // Type II: version (4 bits), VLAN, COS, encapsulation, truncation, session id, index.
        ERSPAN_I_II => (Encap::Erspan, Inner::Ethernet(need(payload, 8, 0)?)),
        ERSPAN_III => {
            // Type III: 12 bytes (version .. timestamp, SGT, P, frame type, hardware id, D,
            // granularity, O), then 8 bytes of platform-specific subheader when O is set.
            let h = need(payload, 0, 12)?;
            let o = h.get(11).copied().unwrap_or(0) & 0x01 != 0;
            let rest = need(payload, if o { 20 } else { 12 }, 0)?;
            let frame_type = (h.get(10).copied().unwrap_or(0) >> 2) & 0x1f;
            match frame_type {
                0 => (Encap::Erspan, Inner::Ethernet(rest)),
                2 => (Encap::Erspan, Inner::Ip(rest)),
                _ => (Encap::Erspan, Inner::Other),
            }
        }
        ARUBA_FIRST..=ARUBA_LAST => (Encap::Gre, wlan(payload)?),
        other => (Encap::Gre, Inner::EtherType(EtherType(other), payload)),
    })
}

/// An IEEE 802.11 data frame as Aruba's GRE carries it: the MAC header (24 bytes, plus the
/// fourth address between access points, QoS control, HT control), then LLC/SNAP. Management,
/// control, null-data and protected (encrypted) frames are [`Inner::Other`].
fn wlan(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    need(d, 0, 24)?;
    let (fc0, fc1) = (
        d.first().copied().unwrap_or(0),
        d.get(1).copied().unwrap_or(0),
    );
    let (kind, subtype) = ((fc0 >> 2) & 0x03, fc0 >> 4);
    let (protected, order) = (fc1 & 0x40 != 0, fc1 & 0x80 != 0);
    if kind != 2 || subtype & 0x04 != 0 || protected {
        return Ok(Inner::Other);
    }
    let qos = subtype & 0x08 != 0;
    let mut len = 24;
    if fc1 & 0x03 == 0x03 {
        len += 6; // to and from the distribution system: a fourth address
    }
    if qos {
        len += 2;
        if order {
            len += 4;
        }
    }
    llc(need(d, len, 0)?)
}

/// A VXLAN header (8 bytes: flags, reserved, VNI, reserved), then an Ethernet frame.
pub fn vxlan(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    Ok(Inner::Ethernet(need(d, 8, 0)?))
}

/// A GENEVE header: version and option length, flags, protocol type, VNI, then options.
pub fn geneve(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    need(d, 0, 8)?;
    let first = d.first().copied().unwrap_or(0);
    let version = first >> 6;
    if version != 0 {
        return Err(TunnelError::GeneveVersion(version));
    }
    let options = usize::from(first & 0x3f) * 4;
    let payload = need(d, 8 + options, 0)?;
    Ok(match be16(d, 2) {
        TEB => Inner::Ethernet(payload),
        proto => Inner::EtherType(EtherType(proto), payload),
    })
}

/// An MPLS label stack, then what is under it.
///
/// MPLS does not say what it carries; like Wireshark, the first nibble after the stack decides:
/// 4 and 6 are IP, 0 is a pseudowire control word followed by an Ethernet frame, 1 an
/// associated channel (not IP), anything else an Ethernet pseudowire without a control word.
pub fn mpls(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    let mut off = 0usize;
    for _ in 0..MAX_MPLS_LABELS {
        need(d, off, 4)?;
        let bottom = d.get(off + 2).copied().unwrap_or(0) & 0x01 != 0;
        off += 4;
        if bottom {
            let rest = need(d, off, 1)?;
            return Ok(match rest.first().map(|b| b >> 4) {
                Some(4 | 6) => Inner::Ip(rest),
                Some(0) => Inner::Ethernet(need(rest, 4, 0)?),
                Some(1) => Inner::Other,
                _ => Inner::Ethernet(rest),
            });
        }
    }
    Err(TunnelError::TooManyLabels)
}

/// An 802.2 LLC header (after an 802.3 length field or the SLL protocol 0x0004): SNAP with the
/// zero OUI (RFC 1042) or 00-00-F8 (802.1H) carries an EtherType; SAP 0x06 carries IPv4 bare.
/// Other SAPs (spanning tree, NetBIOS, CDP's SNAP OUI...) are [`Inner::Other`].
pub fn llc(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    need(d, 0, 3)?;
    match (d.first(), d.get(1), d.get(2)) {
        (Some(0xAA), Some(0xAA), Some(0x03)) => {
            let rest = need(d, 8, 0)?;
            match d.get(3..6) {
                Some([0, 0, 0] | [0, 0, 0xF8]) => Ok(Inner::EtherType(EtherType(be16(d, 6)), rest)),
                _ => Ok(Inner::Other),
            }
        }
        (Some(0x06), Some(0x06), Some(0x03)) => {
            Ok(Inner::EtherType(EtherType::IPV4, need(d, 3, 0)?))
        }
        _ => Ok(Inner::Other),
    }
}

/// GTP-U message type of a G-PDU: the only one that carries a user packet (T-PDU).
const GTP_G_PDU: u8 = 0xFF;

/// A GTPv1-U header (3GPP TS 29.281 section 5): flags, message type, length, TEID; 4 more bytes
/// (sequence number, N-PDU number, next extension type) when any of E, S, PN is set; then the
/// chain of extension headers when E is set. A G-PDU carries an IP packet; echo, error
/// indication and end marker messages, and GTPv0/GTPv2 (control plane, other ports) are
/// [`Inner::Other`].
pub fn gtp_u(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    need(d, 0, 8)?;
    let flags = d.first().copied().unwrap_or(0);
    // Version 1, protocol type 1 (GTP, not GTP').
    if flags >> 5 != 1 || flags & 0x10 == 0 || d.get(1).copied() != Some(GTP_G_PDU) {
        return Ok(Inner::Other);
    }
    let mut off = 8usize;
    if flags & 0x07 != 0 {
        need(d, 0, 12)?;
        let mut next = d.get(11).copied().unwrap_or(0);
        off = 12;
        if flags & 0x04 != 0 {
            let mut chained = 0;
            while next != 0 {
                chained += 1;
                need(d, off, 1)?;
                // Length in 4-byte units, the length byte and the next type included.
                let units = usize::from(d.get(off).copied().unwrap_or(0));
                if units == 0 || chained > MAX_GTP_EXTENSIONS {
                    return Err(TunnelError::GtpExtensions);
                }
                need(d, off, units * 4)?;
                off += units * 4;
                next = d.get(off - 1).copied().unwrap_or(0);
            }
        }
    }
    let rest = need(d, off, 0)?;
    Ok(match rest.first().map(|b| b >> 4) {
        Some(4 | 6) => Inner::Ip(rest),
        // An empty G-PDU or a non-IP PDU session (Ethernet, unstructured): nothing to read.
        _ => Inner::Other,
    })
}

/// AYIYA opcode "forward": the only one that carries a packet.
const AYIYA_FORWARD: u8 = 1;

/// An AYIYA header: identity length and type, signature length and hash method, authentication
/// method and opcode, next header, epoch time, then the identity (2^n bytes) and the signature
/// (4-byte words). Forwarded IPv6 (41) or IPv4 (4) is the payload; heartbeats and other opcodes
/// are [`Inner::Other`].
pub fn ayiya(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    need(d, 0, 8)?;
    let id_len = 1usize << (d.first().copied().unwrap_or(0) >> 4);
    let sig_len = usize::from(d.get(1).copied().unwrap_or(0) >> 4) * 4;
    let opcode = d.get(2).copied().unwrap_or(0) & 0x0f;
    let next = d.get(3).copied().unwrap_or(0);
    let payload = need(d, 8 + id_len + sig_len, 0)?;
    if opcode != AYIYA_FORWARD {
        return Ok(Inner::Other);
    }
    Ok(match next {
        41 => Inner::EtherType(EtherType::IPV6, payload),
        4 => Inner::EtherType(EtherType::IPV4, payload),
        _ => Inner::Other,
    })
}

/// A Teredo datagram (RFC 4380 section 5.1.1): optional authentication indicator (`00 01`, id
/// and authentication value lengths, id, value, 8-byte nonce, confirmation byte) and origin
/// indication (`00 00`, 8 bytes), then an IPv6 packet. Anything that is not IPv6 after them is
/// [`Inner::Other`]: port 3544 is then not carrying Teredo.
pub fn teredo(d: &[u8]) -> Result<Inner<'_>, TunnelError> {
    let mut off = 0usize;
    if be16(d, 0) == 0x0001 && d.len() >= 2 {
        need(d, 0, 4)?;
        let id = usize::from(d.get(2).copied().unwrap_or(0));
        let auth = usize::from(d.get(3).copied().unwrap_or(0));
        off = 4 + id + auth + 8 + 1;
        need(d, 0, off)?;
    }
    if be16(d, off) == 0x0000 && d.len() >= off + 2 {
        need(d, off, 8)?;
        off += 8;
    }
    let rest = need(d, off, 0)?;
    Ok(match rest.first().map(|b| b >> 4) {
        Some(6) => Inner::EtherType(EtherType::IPV6, rest),
        _ => Inner::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &[u8] = &[0x45, 1, 2, 3];

    #[test]
    fn gre_options_are_skipped() {
        // No options, EtherType IPv4.
        let mut d = vec![0, 0, 0x08, 0x00];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(
            gre(&d),
            Ok((Encap::Gre, Inner::EtherType(EtherType::IPV4, PAYLOAD)))
        );
        // Checksum + key + sequence: 12 option bytes.
        let mut d = vec![0xB0, 0, 0x65, 0x58];
        d.extend_from_slice(&[9; 12]);
        d.extend_from_slice(PAYLOAD);
        assert_eq!(gre(&d), Ok((Encap::Gre, Inner::Ethernet(PAYLOAD))));
        // Key alone.
        let mut d = vec![0x20, 0, 0x86, 0xDD, 0, 0, 0, 7];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(
            gre(&d),
            Ok((Encap::Gre, Inner::EtherType(EtherType::IPV6, PAYLOAD)))
        );
        // Routing: offset field, one 4-byte entry with 2 bytes of data, the null entry.
        let mut d = vec![0x40, 0, 0x08, 0x00, 0, 0, 0, 0];
        d.extend_from_slice(&[0x08, 0x00, 0, 2, 1, 2, 0, 0, 0, 0]);
        d.extend_from_slice(PAYLOAD);
        assert_eq!(
            gre(&d),
            Ok((Encap::Gre, Inner::EtherType(EtherType::IPV4, PAYLOAD)))
        );
        // Enhanced GRE (version 1, PPTP): PPP, not for us.
        assert_eq!(
            gre(&[0x30, 0x81, 0x88, 0x0b, 0, 0, 0, 0]),
            Ok((Encap::Gre, Inner::Other))
        );
        // Key bit set, key cut off.
        assert_eq!(
            gre(&[0x20, 0, 0x08, 0x00, 0]),
            Err(TunnelError::Cut {
                required: 8,
                len: 5
            })
        );
    }

    #[test]
    fn erspan_types() {
        // Type I: no sequence bit, no ERSPAN header.
        let mut d = vec![0, 0, 0x88, 0xBE];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(gre(&d), Ok((Encap::Erspan, Inner::Ethernet(PAYLOAD))));
        // Type II: sequence bit, 8-byte header.
        let mut d = vec![0x10, 0, 0x88, 0xBE, 0, 0, 0, 1];
        d.extend_from_slice(&[0x10, 0x64, 0, 0x01, 0, 0, 0, 0]);
        d.extend_from_slice(PAYLOAD);
        assert_eq!(gre(&d), Ok((Encap::Erspan, Inner::Ethernet(PAYLOAD))));
        // Type III without and with the platform subheader; frame type IP.
        for (o, ft) in [(0u8, 0u8), (1, 0), (0, 2)] {
            let mut d = vec![0x10, 0, 0x22, 0xEB, 0, 0, 0, 1];
            d.extend_from_slice(&[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, ft << 2, o]);
            if o == 1 {
                d.extend_from_slice(&[0xEE; 8]);
            }
            d.extend_from_slice(PAYLOAD);
            let want = if ft == 2 {
                Inner::Ip(PAYLOAD)
            } else {
                Inner::Ethernet(PAYLOAD)
            };
            assert_eq!(gre(&d), Ok((Encap::Erspan, want)), "o {o} ft {ft}");
        }
        // Type III cut inside its header.
        assert!(matches!(
            gre(&[0x10, 0, 0x22, 0xEB, 0, 0, 0, 1, 0x20, 0]),
            Err(TunnelError::Cut { .. })
        ));
    }

    #[test]
    fn aruba_802_11_in_gre() {
        // QoS data frame (subtype 8), from the DS: 24 + 2 bytes of header, then SNAP.
        let mut frame = vec![0x88, 0x02];
        frame.extend_from_slice(&[0; 22]);
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&[0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00]);
        frame.extend_from_slice(PAYLOAD);
        let mut d = vec![0, 0, 0x82, 0x00];
        d.extend_from_slice(&frame);
        assert_eq!(
            gre(&d),
            Ok((Encap::Gre, Inner::EtherType(EtherType::IPV4, PAYLOAD)))
        );
        // Protected (encrypted): nothing to read.
        d[5] |= 0x40;
        assert_eq!(gre(&d), Ok((Encap::Gre, Inner::Other)));
        // A beacon (management).
        let mut d = vec![0, 0, 0x82, 0x00, 0x80, 0];
        d.extend_from_slice(&[0; 30]);
        assert_eq!(gre(&d), Ok((Encap::Gre, Inner::Other)));
    }

    #[test]
    fn vxlan_and_geneve() {
        let mut d = vec![0x08, 0, 0, 0, 0, 0, 0x2A, 0];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(vxlan(&d), Ok(Inner::Ethernet(PAYLOAD)));
        assert!(vxlan(&d[..7]).is_err());
        // GENEVE with one 4-byte option word, Ethernet.
        let mut d = vec![0x01, 0, 0x65, 0x58, 0, 0, 0x2A, 0, 1, 2, 3, 4];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(geneve(&d), Ok(Inner::Ethernet(PAYLOAD)));
        // No options, IPv4 by EtherType.
        let mut d = vec![0, 0, 0x08, 0x00, 0, 0, 0x2A, 0];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(geneve(&d), Ok(Inner::EtherType(EtherType::IPV4, PAYLOAD)));
        d[0] = 0x40;
        assert_eq!(geneve(&d), Err(TunnelError::GeneveVersion(1)));
    }

    #[test]
    fn mpls_stacks() {
        // Two labels, then IPv4.
        let mut d = vec![0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(mpls(&d), Ok(Inner::Ip(PAYLOAD)));
        // One label, control word, Ethernet.
        let mut d = vec![0, 0x01, 0x01, 64, 0, 0, 0, 0];
        d.extend_from_slice(&[0x00, 0x1b, 0x21]);
        assert_eq!(mpls(&d), Ok(Inner::Ethernet(&[0x00, 0x1b, 0x21])));
        // No bottom of stack anywhere.
        assert_eq!(
            mpls(&[0, 0, 0, 64].repeat(MAX_MPLS_LABELS + 1)),
            Err(TunnelError::TooManyLabels)
        );
        assert!(matches!(
            mpls(&[0, 1, 0, 64, 0]),
            Err(TunnelError::Cut { .. })
        ));
    }

    #[test]
    fn llc_snap() {
        let mut d = vec![0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(llc(&d), Ok(Inner::EtherType(EtherType::IPV4, PAYLOAD)));
        // Cisco OUI (CDP): not IP.
        d[3..6].copy_from_slice(&[0, 0, 0x0C]);
        assert_eq!(llc(&d), Ok(Inner::Other));
        // Spanning tree.
        assert_eq!(llc(&[0x42, 0x42, 0x03, 0, 0]), Ok(Inner::Other));
        assert!(llc(&[0xAA, 0xAA, 0x03, 0]).is_err());
    }

    #[test]
    fn gtp_u_headers() {
        const V6: &[u8] = &[0x60, 0, 0, 0];
        // Minimal G-PDU: version 1, PT 1, no optional fields.
        let mut d = vec![0x30, 0xFF, 0, 4, 0, 0, 0, 1];
        d.extend_from_slice(PAYLOAD);
        assert_eq!(gtp_u(&d), Ok(Inner::Ip(PAYLOAD)));
        // Sequence number flag: 4 more bytes; an IPv6 T-PDU.
        let mut d = vec![0x32, 0xFF, 0, 8, 0, 0, 0, 1, 0, 7, 0, 0];
        d.extend_from_slice(V6);
        assert_eq!(gtp_u(&d), Ok(Inner::Ip(V6)));
        // Extension header chain: PDU session container (1 word), then none.
        let mut d = vec![0x34, 0xFF, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0x85];
        d.extend_from_slice(&[1, 0x10, 0x09, 0]);
        d.extend_from_slice(PAYLOAD);
        assert_eq!(gtp_u(&d), Ok(Inner::Ip(PAYLOAD)));
        // An extension of length 0 would loop for ever.
        let d = [0x34, 0xFF, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0];
        assert_eq!(gtp_u(&d), Err(TunnelError::GtpExtensions));
        // Extension cut short.
        let d = [0x34, 0xFF, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 2, 0];
        assert!(matches!(gtp_u(&d), Err(TunnelError::Cut { .. })));
        // Echo request (type 1), GTPv2 (version 2), GTP' (PT 0): no user packet.
        assert_eq!(
            gtp_u(&[0x32, 1, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]),
            Ok(Inner::Other)
        );
        assert_eq!(
            gtp_u(&[0x48, 0xFF, 0, 4, 0, 0, 0, 0, 0x45]),
            Ok(Inner::Other)
        );
        assert_eq!(
            gtp_u(&[0x20, 0xFF, 0, 4, 0, 0, 0, 0, 0x45]),
            Ok(Inner::Other)
        );
        assert!(gtp_u(&[0x30, 0xFF, 0]).is_err());
    }

    #[test]
    fn ayiya_headers() {
        // Identity 16 bytes (2^4), signature 5 words (SHA-1), opcode forward, IPv6.
        let mut d = vec![0x41, 0x52, 0x11, 41, 0, 0, 0, 0];
        d.extend_from_slice(&[0xAB; 16 + 20]);
        d.extend_from_slice(PAYLOAD);
        assert_eq!(ayiya(&d), Ok(Inner::EtherType(EtherType::IPV6, PAYLOAD)));
        // IPv4 forwarded.
        d[3] = 4;
        assert_eq!(ayiya(&d), Ok(Inner::EtherType(EtherType::IPV4, PAYLOAD)));
        // Heartbeat (opcode 0): nothing carried.
        d[2] = 0x10;
        assert_eq!(ayiya(&d), Ok(Inner::Other));
        // Signature cut.
        assert!(matches!(ayiya(&d[..30]), Err(TunnelError::Cut { .. })));
    }

    #[test]
    fn teredo_headers() {
        const V6: &[u8] = &[0x60, 0, 0, 0, 0, 0, 59, 64];
        assert_eq!(teredo(V6), Ok(Inner::EtherType(EtherType::IPV6, V6)));
        // Origin indication, then IPv6.
        let mut d = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
        d.extend_from_slice(V6);
        assert_eq!(teredo(&d), Ok(Inner::EtherType(EtherType::IPV6, V6)));
        // Authentication (id 2 bytes, value 0), nonce, confirmation, origin, IPv6.
        let mut d = vec![0, 1, 2, 0, 9, 9];
        d.extend_from_slice(&[7; 8]);
        d.push(0);
        d.extend_from_slice(&[0, 0, 0x12, 0x34, 1, 2, 3, 4]);
        d.extend_from_slice(V6);
        assert_eq!(teredo(&d), Ok(Inner::EtherType(EtherType::IPV6, V6)));
        // Not IPv6 after the indicators: port 3544 carrying something else.
        assert_eq!(teredo(PAYLOAD), Ok(Inner::Other));
        assert!(matches!(
            teredo(&[0, 1, 200, 0]),
            Err(TunnelError::Cut { .. })
        ));
    }

    #[test]
    fn counts_by_kind() {
        let mut c = EncapCounts::default();
        assert!(c.is_empty());
        c.add(Encap::Vxlan);
        c.add(Encap::Vxlan);
        c.add(Encap::Mpls);
        assert_eq!((c.vxlan, c.mpls, c.gre), (2, 1, 0));
        assert_eq!(c.describe(), "vxlan 2, mpls 1");
        assert!(!c.is_empty());
        assert_eq!(
            serde_json::to_value(c).unwrap()["vxlan"],
            serde_json::json!(2)
        );
    }
}
