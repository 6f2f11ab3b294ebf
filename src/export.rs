//! Export the whole original frames of chosen connections to a pcap file, for a ticket or a
//! second look in Wireshark (`replay FILE --export-pcap OUT`, the TUI's `x` key).
//!
//! Why a second pass over the capture, not a list of frame numbers kept during the first: the
//! pipeline keeps no per-packet record (its memory must not grow with the capture), and which
//! connections are wanted is often only known at the end (a filter on verdicts needs the
//! verdict). A [`Selection`] holds one entry per chosen connection (its two addresses and its
//! first and last packet times, ~80 bytes), and the second pass streams the file again, writing
//! every frame whose TCP addresses and time fall on a chosen connection. Memory stays bounded by
//! the number of chosen connections; time is one more read of the file (the page cache usually
//! still holds it). A port reused later by another connection is told apart by the time range.
//!
//! Frames are written as they were captured: same bytes (outer tunnel headers included), same
//! timestamps (nanosecond pcap, so pcapng's precision survives), same link type. A classic pcap
//! holds one link type; frames of a chosen connection captured on an interface of another link
//! type (a pcapng with several) are counted in [`ExportStats::other_link_skipped`], never
//! silently dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::Path;

use crate::capture::file::{CaptureFile, OpenError};
use crate::capture::frame::{decode_frame_counted, Decoded, LinkType};
use crate::capture::pcapwrite::PcapWriter;
use crate::capture::EncapCounts;
use crate::model::Connection;
use crate::time::Timestamp;

/// Largest record libpcap reads back (its `MAXIMUM_SNAPLEN`).
const SNAPLEN: u32 = 262_144;

/// After a chosen connection's last packet, frames on its addresses still belong to it for this
/// long unless a new SYN opens another connection: the tracker closes a connection at its FIN
/// exchange, and the last ACK or a retransmitted FIN follow within a round trip.
const STRAGGLERS_NANOS: i64 = 1_000_000_000;

/// One chosen connection's frames: from its first packet to its last (and stragglers after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    from: Timestamp,
    to: Timestamp,
    /// A SYN after `to` opened another connection on the same addresses: no stragglers after it.
    reused: bool,
}

/// The connections to export: per address pair (either order), the time ranges of the chosen
/// connections on it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selection {
    wanted: HashMap<(SocketAddr, SocketAddr), Vec<Range>>,
    connections: usize,
    /// Connections whose addresses cannot be read back (none from the pipeline; counted).
    unreadable: usize,
}

impl Selection {
    /// Choose a connection (all its frames, from its first to its last packet).
    pub fn add(&mut self, c: &Connection) {
        let (Ok(a), Ok(b)) = (
            c.client.parse::<SocketAddr>(),
            c.server.parse::<SocketAddr>(),
        ) else {
            self.unreadable += 1;
            return;
        };
        self.wanted.entry(key(a, b)).or_default().push(Range {
            from: c.first_seen,
            to: c.last_seen,
            reused: false,
        });
        self.connections += 1;
    }

    /// Connections chosen.
    pub fn len(&self) -> usize {
        self.connections
    }

    /// True when nothing is chosen.
    pub fn is_empty(&self) -> bool {
        self.connections == 0
    }

    /// Does a frame between `src` and `dst` at `ts` (a SYN without ACK when `syn`) belong to a
    /// chosen connection? Frames must come in capture order: a SYN after a connection's last
    /// packet ends its stragglers.
    pub fn wants(&mut self, src: SocketAddr, dst: SocketAddr, ts: Timestamp, syn: bool) -> bool {
        let Some(ranges) = self.wanted.get_mut(&key(src, dst)) else {
            return false;
        };
        let mut hit = false;
        for r in ranges.iter_mut() {
            if r.from <= ts && ts <= r.to {
                hit = true;
            } else if ts > r.to {
                if syn {
                    r.reused = true;
                }
                hit |= !r.reused && ts.0 <= r.to.0.saturating_add(STRAGGLERS_NANOS);
            }
        }
        hit
    }
}

/// The pair in a fixed order, so both directions find the same entry.
fn key(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Connections chosen.
    pub connections: usize,
    /// Frames read in the second pass.
    pub frames_read: u64,
    /// Frames written.
    pub frames_written: u64,
    /// Frames of chosen connections left out because their link type differs from the first
    /// written frame's (a classic pcap holds one link type).
    pub other_link_skipped: u64,
    /// The LINKTYPE number of the file written.
    pub linktype: u32,
}

impl std::fmt::Display for ExportStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} frames of {} connections",
            self.frames_written, self.connections
        )?;
        if self.other_link_skipped > 0 {
            write!(
                f,
                " ({} frames of another link type left out: a pcap holds one)",
                self.other_link_skipped
            )?;
        }
        Ok(())
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The capture cannot be read again.
    #[error("{0}")]
    Open(#[from] OpenError),
    /// The output cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The LINKTYPE number a file records for a link type (`None` for one alarmscope cannot read,
/// whose frames never belong to a connection).
pub fn linktype_number(l: LinkType) -> Option<u32> {
    Some(match l {
        LinkType::Null => 0,
        LinkType::Ethernet => 1,
        LinkType::Raw => 101,
        LinkType::Loop => 108,
        LinkType::LinuxSll => 113,
        LinkType::Ipv4 => 228,
        LinkType::Ipv6 => 229,
        LinkType::LinuxSll2 => 276,
        LinkType::Unsupported(_) => return None,
    })
}

/// Read `input` again and write the frames of the chosen connections to `out` (a classic pcap,
/// nanosecond timestamps).
pub fn export_pcap(input: &Path, sel: &Selection, out: &Path) -> Result<ExportStats, ExportError> {
    let write_err = |source| ExportError::Write {
        path: out.display().to_string(),
        source,
    };
    let mut sel = sel.clone();
    let mut cf = CaptureFile::open(input)?;
    let file = File::create(out).map_err(write_err)?;
    let mut stats = ExportStats {
        connections: sel.len(),
        ..ExportStats::default()
    };
    let mut writer: Option<PcapWriter<BufWriter<File>>> = None;
    let mut file = Some(file);
    let mut encaps = EncapCounts::default();
    loop {
        let frame = match cf.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            // Already reported by the analysis pass; the rest is read on.
            Err(_) => continue,
        };
        stats.frames_read += 1;
        if sel.is_empty() {
            continue;
        }
        let Ok(Decoded::Tcp(seg)) =
            decode_frame_counted(frame.link, frame.data, frame.orig_len, &mut encaps)
        else {
            continue;
        };
        let syn = seg.flags.syn() && !seg.flags.ack();
        if !sel.wants(seg.src, seg.dst, frame.ts, syn) {
            continue;
        }
        let Some(lt) = linktype_number(frame.link) else {
            continue;
        };
        if writer.is_none() {
            if let Some(f) = file.take() {
                let w = PcapWriter::new(BufWriter::with_capacity(1 << 16, f), lt, SNAPLEN, true)
                    .map_err(write_err)?;
                writer = Some(w);
                stats.linktype = lt;
            }
        }
        if lt != stats.linktype {
            stats.other_link_skipped += 1;
            continue;
        }
        if let Some(w) = writer.as_mut() {
            w.write_frame(frame.ts, frame.data, frame.orig_len)
                .map_err(write_err)?;
            stats.frames_written += 1;
        }
    }
    // Nothing chosen or found: an empty capture of the file's own link type.
    if let Some(f) = file.take() {
        let lt = linktype_number(cf.link_type()).unwrap_or(1);
        stats.linktype = lt;
        writer = Some(PcapWriter::new(BufWriter::new(f), lt, SNAPLEN, true).map_err(write_err)?);
    }
    if let Some(mut w) = writer {
        w.flush().map_err(write_err)?;
        w.into_inner()
            .into_inner()
            .map_err(|e| write_err(e.into_error()))?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::{CloseKind, Handshake};

    fn conn(client: &str, server: &str, from: i64, to: i64) -> Connection {
        Connection {
            id: 1,
            client: client.into(),
            server: server.into(),
            handshake: Handshake::Complete,
            one_sided: None,
            syn_attempts: 1,
            closed: CloseKind::Fin(crate::tcp::Side::Client),
            first_seen: Timestamp(from),
            last_seen: Timestamp(to),
            packets: 1,
            gap_bytes: [0, 0],
            retransmissions: 0,
            truncated_frames: 0,
            errors: vec![],
            upgrade: None,
            upgraded_bytes: [0, 0],
            tls: None,
            tls_findings: vec![],
            decryption: None,
            handshake_uncertain: None,
            exchanges: vec![],
            timeline: vec![],
        }
    }

    #[test]
    fn selection_matches_both_directions_within_the_time_range() {
        let mut s = Selection::default();
        s.add(&conn("10.0.0.5:4000", "10.0.0.1:8080", 100, 200));
        s.add(&conn("[::1]:5000", "[::1]:8080", 0, 10));
        let dev: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let srv: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        assert_eq!(s.len(), 2);
        assert!(!s.wants(dev, srv, Timestamp(99), false));
        assert!(s.wants(dev, srv, Timestamp(100), false));
        assert!(s.wants(srv, dev, Timestamp(200), false));
        // The last ACK after the FIN exchange still belongs to it.
        assert!(s.wants(dev, srv, Timestamp(300), false));
        assert!(!s.wants(dev, srv, Timestamp(200 + STRAGGLERS_NANOS + 1), false));
        assert!(!s.wants(dev, "10.0.0.1:8081".parse().unwrap(), Timestamp(150), false));
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(s.wants(v6, "[::1]:5000".parse().unwrap(), Timestamp(5), false));
    }

    #[test]
    fn a_new_syn_on_the_same_ports_ends_the_stragglers() {
        let mut s = Selection::default();
        s.add(&conn("10.0.0.5:4000", "10.0.0.1:8080", 100, 200));
        let dev: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let srv: SocketAddr = "10.0.0.1:8080".parse().unwrap();
        assert!(!s.wants(dev, srv, Timestamp(250), true));
        assert!(!s.wants(srv, dev, Timestamp(260), false));
    }

    #[test]
    fn unreadable_addresses_are_counted_not_chosen() {
        let mut s = Selection::default();
        s.add(&conn("nonsense", "10.0.0.1:8080", 0, 1));
        assert!(s.is_empty());
        assert_eq!(s.unreadable, 1);
    }

    #[test]
    fn link_type_numbers_are_the_file_numbers() {
        assert_eq!(linktype_number(LinkType::Ethernet), Some(1));
        assert_eq!(linktype_number(LinkType::LinuxSll2), Some(276));
        assert_eq!(linktype_number(LinkType::Raw), Some(101));
        assert_eq!(linktype_number(LinkType::Unsupported(147)), None);
    }
}
