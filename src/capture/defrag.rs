//! IP fragment reassembly (IPv4, and IPv6 fragment headers), sans-IO and bounded.
//!
//! Why: a tunnel adds its headers to a packet that already filled the link's MTU, so the outer
//! IP packet of GRE/ERSPAN, GTP-U or VXLAN is often sent in two fragments; the TCP segment
//! inside is readable only once they are joined (tshark and Zeek join them). Plain TCP is
//! fragmented rarely (path MTU discovery sets DF), but the same code serves it.
//!
//! Rules:
//! - Only fragments of protocols that can carry TCP are held: TCP, UDP, GRE, IPv4/IPv6 in IP.
//!   The caller ([`super::frame::FrameDecoder`]) decides; this module takes any it is given.
//! - One reassembly per frame: a fragment found inside a packet just joined stays an error.
//! - A set is keyed by version, addresses, identification and protocol (RFC 791 / RFC 8200).
//! - The bytes are joined by etherparse's [`IpDefragBuf`]; this module adds what it lacks: the
//!   bounds, the timeout, and overlap checks. Fragments that overlap with the *same* bytes
//!   (a duplicate from a mirror port, a retransmission) are fine; overlap with *different*
//!   bytes drops the whole set, since which copy the receiver kept cannot be known from the
//!   capture (RFC 5722 has IPv6 receivers drop overlapping fragments, Linux does so for IPv4
//!   too).
//! - Bounds: at most [`DefragLimits::max_sets`] sets and [`DefragLimits::max_bytes`] bytes held
//!   at once; a fragment that would pass them is refused (an error on its frame) and its set is
//!   dropped. Sets are dropped [`DefragLimits::timeout_nanos`] of *capture* time after their
//!   first fragment (the sweep runs only when a fragment arrives, so plain traffic pays
//!   nothing). Every drop is reported: an error on the frame at fault, or a [`DefragWarning`].
//! - A fragment cut by the snapshot length cannot be joined: an error on its frame.

use std::collections::HashMap;
use std::net::IpAddr;

use etherparse::defrag::{IpDefragBuf, IpDefragError};
use etherparse::{IpFragOffset, IpNumber};

use crate::time::Timestamp;

/// Bounds of the reassembly state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragLimits {
    /// Fragment sets held at once.
    pub max_sets: usize,
    /// Bytes held over all sets (each set holds at most 64 KiB).
    pub max_bytes: usize,
    /// Capture time after a set's first fragment at which an unfinished set is dropped.
    pub timeout_nanos: i64,
}

impl Default for DefragLimits {
    /// 256 sets, 8 MiB, 30 s: Linux's `ipfrag_time` is 30 s, and 256 sets of tunnel packets
    /// (about 3 KB each) is far more than a mirror port has in flight.
    fn default() -> Self {
        DefragLimits {
            max_sets: 256,
            max_bytes: 8 << 20,
            timeout_nanos: 30_000_000_000,
        }
    }
}

/// What identifies the fragments of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// The protocol of the fragmented payload.
    pub proto: u8,
}

/// One captured fragment, its payload borrowed from its frame.
#[derive(Debug, Clone)]
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Where the payload goes in the packet.
    pub offset: IpFragOffset,
    /// More fragments follow (MF flag / M flag).
    pub more: bool,
    /// The IP header to rebuild the packet with: the IPv4 header with its options, or the
    /// 40-byte IPv6 header. Kept from the fragment at offset 0. (A copy: etherparse lends
    /// header slices only for as long as the packet slice it reads them from.)
    pub header: Vec<u8>,
    /// The fragment's payload as captured.
    pub payload: &'a [u8],
    /// Payload bytes the IP length promised beyond what was captured (snapshot length).
    pub missing: usize,
}

/// Why a fragment could not be taken: an error on its frame. Its set, if any, is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefragError {
    /// The fragment overlaps bytes held for the same packet with different content.
    Overlap { offset: u32 },
    /// Taking it would hold more than [`DefragLimits::max_sets`] sets.
    TooManySets { limit: usize },
    /// Taking it would hold more than [`DefragLimits::max_bytes`] bytes.
    TooManyBytes { limit: usize },
    /// The snapshot length cut the fragment: `missing` bytes are not in the capture.
    Cut { missing: usize },
    /// Offsets, lengths or last-fragment marks that cannot belong to one packet (a middle
    /// fragment not a multiple of 8 long, two different ends, beyond 64 KiB).
    Inconsistent(IpDefragError),
}

impl std::fmt::Display for DefragError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefragError::Overlap { offset } => write!(
                f,
                "fragment at offset {offset} overlaps earlier fragments with different bytes; \
                 the packet was dropped (which copy the receiver kept is unknown)"
            ),
            DefragError::TooManySets { limit } => write!(
                f,
                "fragment not reassembled: {limit} fragmented packets already pending (limit)"
            ),
            DefragError::TooManyBytes { limit } => write!(
                f,
                "fragment not reassembled: {limit} bytes of fragments already pending (limit)"
            ),
            DefragError::Cut { missing } => write!(
                f,
                "fragment cut by the snapshot length ({missing} bytes missing): packet not \
                 reassembled"
            ),
            DefragError::Inconsistent(e) => match e {
                IpDefragError::UnalignedFragmentPayloadLen {
                    offset,
                    payload_len,
                } => write!(
                    f,
                    "fragment at offset {} has {payload_len} bytes, not a multiple of 8, yet \
                     more follow: packet dropped",
                    u32::from(offset.byte_offset())
                ),
                IpDefragError::SegmentTooBig { .. } => {
                    f.write_str("fragment ends beyond 65535 bytes: packet dropped")
                }
                IpDefragError::ConflictingEnd {
                    previous_end,
                    conflicting_end,
                } => write!(
                    f,
                    "fragments end at {previous_end} and at {conflicting_end}: packet dropped"
                ),
                IpDefragError::AllocationFailure { len } => {
                    write!(f, "no memory for a {len}-byte packet: packet dropped")
                }
            },
        }
    }
}

/// A set dropped without an error on a frame of its own: found too old when a later fragment
/// came, or still unfinished at the end of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefragWarning {
    pub kind: DropKind,
    pub key: FragKey,
    /// Fragments and payload bytes that were held.
    pub fragments: usize,
    pub bytes: usize,
}

/// Why a set was dropped without completing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropKind {
    /// Older than [`DefragLimits::timeout_nanos`] of capture time.
    TimedOut,
    /// Still waiting for fragments when the capture ended.
    Unfinished,
}

impl std::fmt::Display for DefragWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = &self.key;
        write!(
            f,
            "IP fragments of {} -> {} (id {:#x}, protocol {}): {} fragment(s), {} bytes held ",
            k.src, k.dst, k.id, k.proto, self.fragments, self.bytes
        )?;
        f.write_str(match self.kind {
            DropKind::TimedOut => "without the rest until the timeout; the packet was not analysed",
            DropKind::Unfinished => {
                "without the rest at the end of the capture; the packet was not analysed"
            }
        })
    }
}

/// One packet being joined.
struct Set {
    first: Timestamp,
    buf: IpDefragBuf,
    /// The header of the fragment at offset 0, once it came.
    header: Vec<u8>,
    fragments: usize,
}

/// The reassembly state: pending sets and the last joined packet.
#[derive(Default)]
pub struct Defrag {
    limits: DefragLimits,
    sets: HashMap<FragKey, Set>,
    /// Bytes held over all sets.
    held: usize,
    /// The last joined packet (IP header and payload), lent out by [`Defrag::add`].
    whole: Vec<u8>,
    warnings: Vec<DefragWarning>,
}

impl Defrag {
    /// Empty state with these bounds.
    pub fn new(limits: DefragLimits) -> Self {
        Defrag {
            limits,
            ..Defrag::default()
        }
    }

    /// Take one fragment seen at capture time `ts`. `Ok(None)`: held, the packet is not complete
    /// yet. `Ok(Some(packet))`: it completed the packet, returned whole (IP header with the
    /// fragment fields cleared and the length set, then the joined payload).
    pub fn add(&mut self, ts: Timestamp, frag: Fragment<'_>) -> Result<Option<&[u8]>, DefragError> {
        self.expire(ts);
        if frag.missing > 0 {
            self.drop_set(&frag.key);
            return Err(DefragError::Cut {
                missing: frag.missing,
            });
        }
        if !self.sets.contains_key(&frag.key) && self.sets.len() >= self.limits.max_sets {
            return Err(DefragError::TooManySets {
                limit: self.limits.max_sets,
            });
        }
        let start = usize::from(frag.offset.byte_offset());
        let end = start.saturating_add(frag.payload.len());
        let (limits, held) = (self.limits, self.held);
        let set = self.sets.entry(frag.key).or_insert_with(|| Set {
            first: ts,
            buf: IpDefragBuf::new(IpNumber(frag.key.proto), Vec::new(), Vec::new()),
            header: Vec::new(),
            fragments: 0,
        });
        let before = set.buf.data().len();
        let refused = if held.saturating_add(end.saturating_sub(before)) > limits.max_bytes {
            Some(DefragError::TooManyBytes {
                limit: limits.max_bytes,
            })
        } else if conflicts(&set.buf, start, frag.payload) {
            Some(DefragError::Overlap {
                offset: u32::from(frag.offset.byte_offset()),
            })
        } else {
            set.buf
                .add(frag.offset, frag.more, frag.payload)
                .err()
                .map(DefragError::Inconsistent)
        };
        if let Some(e) = refused {
            self.drop_set(&frag.key);
            return Err(e);
        }
        set.fragments += 1;
        if start == 0 && set.header.is_empty() {
            set.header = frag.header;
        }
        // The last fragment may shrink the buffer (it fixes the end).
        let after = set.buf.data().len();
        self.held = held.saturating_add(after).saturating_sub(before);
        if !set.buf.is_complete() || set.header.is_empty() {
            return Ok(None);
        }
        let Some(set) = self.sets.remove(&frag.key) else {
            return Ok(None);
        };
        self.held = self.held.saturating_sub(set.buf.data().len());
        let (header, payload) = (&set.header, set.buf.data());
        let v6 = header.first().map(|b| b >> 4) == Some(6);
        if !v6 && header.len() + payload.len() > usize::from(u16::MAX) {
            // An IPv4 total length cannot say it (the "ping of death" shape).
            return Err(DefragError::Inconsistent(IpDefragError::SegmentTooBig {
                offset: frag.offset,
                payload_len: frag.payload.len(),
                max: u16::MAX,
            }));
        }
        rebuild(&mut self.whole, header, frag.key.proto, payload);
        Ok(Some(&self.whole))
    }

    /// Sets dropped without an error of their own since the last call (timeouts).
    pub fn take_warnings(&mut self) -> Vec<DefragWarning> {
        std::mem::take(&mut self.warnings)
    }

    /// End of the capture: every set still pending, as warnings; the state is emptied.
    pub fn finish(&mut self) -> Vec<DefragWarning> {
        let mut out = self.take_warnings();
        let mut left: Vec<(FragKey, Set)> = self.sets.drain().collect();
        left.sort_by_key(|(_, s)| s.first);
        for (key, set) in left {
            out.push(warning(DropKind::Unfinished, key, &set));
        }
        self.held = 0;
        out
    }

    /// Sets and bytes held now (for tests and memory checks).
    pub fn pending(&self) -> (usize, usize) {
        (self.sets.len(), self.held)
    }

    /// Drop the sets older than the timeout at capture time `now`.
    fn expire(&mut self, now: Timestamp) {
        let timeout = self.limits.timeout_nanos;
        if self.sets.is_empty() {
            return;
        }
        let old: Vec<FragKey> = self
            .sets
            .iter()
            .filter(|(_, s)| now.0.saturating_sub(s.first.0) > timeout)
            .map(|(k, _)| *k)
            .collect();
        for key in old {
            if let Some(set) = self.sets.remove(&key) {
                self.held = self.held.saturating_sub(set.buf.data().len());
                self.warnings.push(warning(DropKind::TimedOut, key, &set));
            }
        }
    }

    fn drop_set(&mut self, key: &FragKey) {
        if let Some(set) = self.sets.remove(key) {
            self.held = self.held.saturating_sub(set.buf.data().len());
        }
    }
}

fn warning(kind: DropKind, key: FragKey, set: &Set) -> DefragWarning {
    DefragWarning {
        kind,
        key,
        fragments: set.fragments,
        bytes: set
            .buf
            .sections()
            .iter()
            .map(|r| usize::from(r.end - r.start))
            .sum(),
    }
}

/// True when `payload` at `start` overlaps bytes already held with different content.
fn conflicts(buf: &IpDefragBuf, start: usize, payload: &[u8]) -> bool {
    let end = start + payload.len();
    buf.sections().iter().any(|r| {
        let (a, b) = (usize::from(r.start).max(start), usize::from(r.end).min(end));
        a < b && buf.data().get(a..b) != payload.get(a - start..b - start)
    })
}

/// Length of the fixed IPv6 header.
const IPV6_HEADER_LEN: usize = 40;

/// The joined packet: `header` with its length and fragment fields rewritten, then `payload`.
fn rebuild(out: &mut Vec<u8>, header: &[u8], proto: u8, payload: &[u8]) {
    out.clear();
    out.extend_from_slice(header);
    let v6 = header.first().map(|b| b >> 4) == Some(6);
    if v6 {
        // The fragment header (and any extension header before it) is left out, so the
        // next-header field names the fragmented protocol; then the payload length.
        out.truncate(IPV6_HEADER_LEN);
        let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        if let Some(f) = out.get_mut(4..6) {
            f.copy_from_slice(&len.to_be_bytes());
        }
        if let Some(f) = out.get_mut(6) {
            *f = proto;
        }
    } else {
        let len = u16::try_from(header.len() + payload.len()).unwrap_or(u16::MAX);
        if let Some(f) = out.get_mut(2..4) {
            f.copy_from_slice(&len.to_be_bytes());
        }
        if let Some(f) = out.get_mut(6..8) {
            f.copy_from_slice(&[0, 0]);
        }
        // The protocol of the payload (an authentication header, if any, is left out).
        if let Some(f) = out.get_mut(9) {
            *f = proto;
        }
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const KEY: FragKey = FragKey {
        src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        id: 0x1234,
        proto: 47,
    };
    /// An IPv4 header as the first fragment carries it (MF set, length of the fragment).
    const HDR: [u8; 20] = [
        0x45, 0, 0, 36, 0x12, 0x34, 0x20, 0, 64, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];

    fn frag<'a>(offset: u16, more: bool, payload: &'a [u8]) -> Fragment<'a> {
        Fragment {
            key: KEY,
            offset: IpFragOffset::try_new(offset / 8).unwrap(),
            more,
            header: HDR.to_vec(),
            payload,
            missing: 0,
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp(secs * 1_000_000_000)
    }

    #[test]
    fn joins_in_any_order_and_rewrites_the_header() {
        let data: Vec<u8> = (0..40u8).collect();
        for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let mut d = Defrag::default();
            let parts = [
                frag(0, true, &data[..16]),
                frag(16, true, &data[16..32]),
                frag(32, false, &data[32..]),
            ];
            let mut whole = None;
            for (n, i) in order.iter().enumerate() {
                let got = d.add(t(1), parts[*i].clone()).unwrap().map(|p| p.to_vec());
                assert_eq!(got.is_some(), n == 2, "order {order:?} step {n}");
                whole = got.or(whole);
            }
            let whole = whole.unwrap();
            assert_eq!(&whole[20..], &data[..], "order {order:?}");
            // Total length 20 + 40, flags and offset cleared, the rest of the header kept.
            assert_eq!(&whole[2..4], &[0, 60]);
            assert_eq!(&whole[6..8], &[0, 0]);
            assert_eq!(&whole[12..20], &HDR[12..20]);
            assert_eq!(d.pending(), (0, 0));
        }
    }

    #[test]
    fn duplicates_are_fine_conflicts_drop_the_packet() {
        let data = [7u8; 24];
        let mut d = Defrag::default();
        assert_eq!(d.add(t(1), frag(0, true, &data[..16])), Ok(None));
        // The same bytes again (a mirror's duplicate).
        assert_eq!(d.add(t(1), frag(0, true, &data[..16])), Ok(None));
        let mut other = [7u8; 16];
        other[3] = 9; // byte 11, inside the bytes 0-16 held
        assert_eq!(
            d.add(t(1), frag(8, true, &other)),
            Err(DefragError::Overlap { offset: 8 })
        );
        assert_eq!(d.pending(), (0, 0));
        // The last fragment alone now starts a new set that never completes.
        assert_eq!(d.add(t(1), frag(16, false, &data[16..])), Ok(None));
        assert_eq!(d.pending().0, 1);
    }

    #[test]
    fn bounded_by_sets_and_bytes() {
        let limits = DefragLimits {
            max_sets: 2,
            max_bytes: 64,
            timeout_nanos: 30_000_000_000,
        };
        let mut d = Defrag::new(limits);
        let data = [1u8; 32];
        for id in 0..2 {
            let mut f = frag(0, true, &data);
            f.key.id = id;
            assert_eq!(d.add(t(1), f), Ok(None));
        }
        let mut f = frag(0, true, &data);
        f.key.id = 9;
        assert_eq!(d.add(t(1), f), Err(DefragError::TooManySets { limit: 2 }));
        // A fragment of a held set that would pass the byte limit: refused, its set dropped.
        let mut f = frag(32, true, &data);
        f.key.id = 0;
        assert_eq!(d.add(t(1), f), Err(DefragError::TooManyBytes { limit: 64 }));
        assert_eq!(d.pending(), (1, 32));
    }

    #[test]
    fn old_sets_time_out_by_capture_time_and_unfinished_ones_are_reported() {
        let data = [1u8; 16];
        let mut d = Defrag::default();
        assert_eq!(d.add(t(100), frag(0, true, &data)), Ok(None));
        let mut late = frag(0, true, &data);
        late.key.id = 2;
        assert_eq!(d.add(t(129), late.clone()), Ok(None));
        assert!(d.take_warnings().is_empty(), "29 s is within the timeout");
        late.key.id = 3;
        assert_eq!(d.add(t(131), late), Ok(None));
        let w = d.take_warnings();
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].kind, w[0].key.id, w[0].fragments, w[0].bytes),
            (DropKind::TimedOut, 0x1234, 1, 16)
        );
        let end = d.finish();
        assert_eq!(
            end.iter().map(|w| (w.kind, w.key.id)).collect::<Vec<_>>(),
            [(DropKind::Unfinished, 2), (DropKind::Unfinished, 3)]
        );
        assert_eq!(d.pending(), (0, 0));
    }

    #[test]
    fn cut_and_inconsistent_fragments_are_errors() {
        let data = [1u8; 20];
        let mut d = Defrag::default();
        let mut f = frag(0, true, &data[..16]);
        f.missing = 100;
        assert_eq!(d.add(t(1), f), Err(DefragError::Cut { missing: 100 }));
        // A middle fragment of 12 bytes: not a multiple of 8.
        assert!(matches!(
            d.add(t(1), frag(0, true, &data[..12])),
            Err(DefragError::Inconsistent(
                IpDefragError::UnalignedFragmentPayloadLen { .. }
            ))
        ));
        assert_eq!(d.add(t(1), frag(16, false, &data[..4])), Ok(None));
        assert!(matches!(
            d.add(t(1), frag(16, false, &data[..8])),
            Err(DefragError::Inconsistent(
                IpDefragError::ConflictingEnd { .. }
            ))
        ));
        assert_eq!(d.pending(), (0, 0));
    }
}
