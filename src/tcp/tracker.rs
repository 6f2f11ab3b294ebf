//! Connection table: handshake verdicts, close detection and reassembly for both directions.
//!
//! Rules, in short:
//! - a connection is keyed by its 4-tuple in either direction; the client is the SYN sender (or
//!   the receiver of a SYN-ACK); with neither seen, the side with the higher port (ties: the
//!   first packet's source) and the handshake is [`Handshake::NotSeen`];
//! - the handshake verdict says only what the packets prove: a plain client ACK after its SYN
//!   proves the SYN-ACK came (captured or not); a SYN-ACK the client never acknowledged, or
//!   answered with RST, is trouble on the client's side, not an unanswered SYN; with no server
//!   packet at all the capture is one-sided and the client's ACKs are logged ([`super::oneside`]);
//! - a SYN (without ACK) that is not a retransmission of the connection's SYN (same client, same
//!   ISN) closes the connection on that tuple and opens a new one (port reuse);
//! - RST closes at once (buffered data is flushed with gaps; data in or after the RST is
//!   ignored); FINs from both sides with all data up to them delivered close gracefully;
//! - stray packets of a just-closed tuple (final ACK, retransmitted FIN, data after RST) are
//!   absorbed by a small bounded set of recently closed tuples instead of opening a bogus
//!   connection: within 240 s of the close and 16 MiB of the last sequence number seen;
//! - bytes the peer acknowledged but the capture never saw become a gap, on the second ACK
//!   showing them missing, or at once when the ACK comes with data or FIN or acknowledges the
//!   FIN (one packet of grace for captures that reorder an ACK before the data it acknowledges;
//!   an excess of exactly one byte with no FIN seen is taken for an unseen FIN, not data);
//! - the table holds at most `max_connections` (default 100 000); the least recently active is
//!   evicted through a lazy min-heap of activity ticks (amortised O(log n) per packet). Evicted
//!   and idle-expired connections are closed like any other (their exchanges are judged) and
//!   counted in [`TrackerStats`], which the summary reports.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;

use serde::Serialize;

use super::assembler::{Assembler, Chunk, FAR_AHEAD_LIMIT};
use super::oneside::{AckLog, OneSided};
use super::seq::SeqNumber;
use crate::capture::TcpSegment;
use crate::time::Timestamp;

/// Which way bytes flow on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the side that opened the connection (the device, in HTTP listening mode).
    ClientToServer,
    ServerToClient,
}

/// One end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Client,
    Server,
}

/// Hasher of the connection tables: looked up once per packet, where SipHash showed in profiles.
/// Seeded per process, so crafted addresses cannot aim at a known collision pattern.
type ConnHasher = foldhash::fast::RandomState;

/// The three-way handshake as the capture shows it: each value says only what the packets prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Handshake {
    /// SYN, then the client's ACK of the SYN-ACK (or data acknowledging it), with server packets
    /// in the capture (the SYN-ACK itself may be missing: the client's ACK proves it came).
    Complete,
    /// SYN(s), and nothing from the server nor an ACK from the client: nothing accepted the
    /// connection, as far as the capture shows.
    Unanswered,
    /// The SYN was answered with RST: nothing listens on that port, or a firewall rejects it.
    Refused,
    /// The server answered with SYN-ACK (perhaps several times) and the client never
    /// acknowledged it: the trouble is on the client's side (or the capture missed its ACK).
    SynAckNotAcked,
    /// The server answered with SYN-ACK and the client reset the connection instead of
    /// completing it.
    ClientReset,
    /// Only the client's packets were captured; its ACK after the SYN proves the server's SYN-ACK
    /// arrived (see [`ConnInfo::one_sided`] for what its later ACKs prove).
    OneSided,
    /// The capture began after the handshake (no SYN seen).
    NotSeen,
}

impl Handshake {
    /// True when the connection never got established: the device's attempt failed before any
    /// request (unanswered, refused, or the client did not complete the SYN-ACK it got).
    pub fn failed(self) -> bool {
        matches!(
            self,
            Handshake::Unanswered
                | Handshake::Refused
                | Handshake::SynAckNotAcked
                | Handshake::ClientReset
        )
    }

    /// The JSON name (`serde`), for text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Handshake::Complete => "complete",
            Handshake::Unanswered => "unanswered",
            Handshake::Refused => "refused",
            Handshake::SynAckNotAcked => "syn_ack_not_acked",
            Handshake::ClientReset => "client_reset",
            Handshake::OneSided => "one_sided",
            Handshake::NotSeen => "not_seen",
        }
    }
}

/// How (or whether) a connection ended within the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "by")]
pub enum CloseKind {
    /// A FIN was seen; `by` is the side that sent the first FIN.
    Fin(Side),
    /// A RST was seen; `by` is the side that sent it.
    Rst(Side),
    /// Still open when the capture ended (or when the connection was evicted from the table).
    Open,
}

/// One packet in a connection's time line (kept for the first packets of each connection, so
/// the handshake and the first exchange read at a glance).
#[derive(Debug, Clone, Serialize)]
pub struct PacketNote {
    pub ts: Timestamp,
    pub dir: Direction,
    /// `describe()` of the flags, e.g. "SYN,ACK".
    pub flags: String,
    /// Sequence number relative to that direction's ISN (raw if no SYN was seen).
    pub seq: u32,
    /// Ack number relative to the other direction's ISN (0 if ACK is not set).
    pub ack: u32,
    /// Captured payload length.
    pub len: u32,
}

/// Everything the capture said about one connection, emitted with [`TcpEvent::Close`].
#[derive(Debug, Clone, Serialize)]
pub struct ConnInfo {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub handshake: Handshake,
    /// Set when only one side's packets were captured: what its ACKs prove of the other side.
    pub one_sided: Option<OneSided>,
    /// The client's ACKs of server bytes over time, when no server packet was captured (empty
    /// otherwise): the proof that answers came although the capture does not hold them.
    #[serde(skip)]
    pub client_acks: AckLog,
    /// SYNs sent by the client (retransmitted SYNs counted).
    pub syn_attempts: u32,
    pub closed: CloseKind,
    pub packets: u64,
    /// First packets of the connection (bounded by [`TcpConfig::timeline_packets`]).
    pub timeline: Vec<PacketNote>,
    /// Packets beyond the time line limit.
    pub timeline_dropped: u64,
    /// Bytes the peer acknowledged (or that lay between later data) but the capture never saw,
    /// per direction: [client->server, server->client].
    pub gap_bytes: [u64; 2],
    /// Segments that re-sent bytes already seen.
    pub retransmissions: u64,
    /// Retransmitted segments whose bytes differed from buffered bytes that arrived first (the
    /// first are kept). Bytes already delivered are not kept, so they cannot be compared.
    pub inconsistent_retransmissions: u64,
    /// Frames of this connection cut by the snapshot length.
    pub truncated_frames: u64,
}

/// Limits that keep memory bounded however large or hostile the capture.
///
/// Worst case per tracked connection: per direction at most `max_buffered_per_direction`
/// out-of-order bytes, held in a ring of less than twice that (at least 4 KiB, allocated only
/// once the direction buffers something), and `timeline_packets` time-line entries.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Connections tracked at once (default 100 000); past this the least recently active is
    /// closed as `Open` and counted in [`TrackerStats::evicted`].
    pub max_connections: usize,
    /// Out-of-order bytes buffered per direction before the earliest hole is declared a gap.
    pub max_buffered_per_direction: usize,
    /// Holes tracked per direction before the earliest is declared a gap.
    pub max_holes: usize,
    /// Packets kept in each connection's time line.
    pub timeline_packets: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_connections: 100_000,
            max_buffered_per_direction: 4 << 20,
            max_holes: 32,
            timeline_packets: 32,
        }
    }
}

/// Output of the TCP stage. `Data` and `Gap` come in stream order per direction; across the two
/// directions they come in capture order of the segments that made them deliverable.
#[derive(Debug)]
pub enum TcpEvent<'a> {
    /// A connection appeared (first packet of a new 4-tuple, or a new SYN on a closed one).
    Open {
        id: u64,
        client: SocketAddr,
        server: SocketAddr,
        ts: Timestamp,
    },
    /// In-order bytes; `ts` is the capture time of the segment that completed them.
    Data {
        id: u64,
        dir: Direction,
        ts: Timestamp,
        data: &'a [u8],
    },
    /// `bytes` of the stream that the capture never saw, at this point of the stream.
    Gap {
        id: u64,
        dir: Direction,
        ts: Timestamp,
        bytes: u64,
    },
    /// The connection is over (RST, FIN from both sides, eviction, or end of capture). No more
    /// events carry this id.
    Close { id: u64, info: Box<ConnInfo> },
}

/// Counters of the whole table, for the capture summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Connections opened (ids handed out).
    pub opened: u64,
    /// Connections closed because the table was full.
    pub evicted: u64,
    /// Connections closed by [`TcpTracker::expire`].
    pub expired: u64,
    /// Most connections tracked at once (never above `max_connections`).
    pub peak_open: u64,
    /// Stray packets of recently closed connections that were absorbed.
    pub absorbed_packets: u64,
}

/// Canonical 4-tuple: the two endpoints in sorted order.
type Key = (SocketAddr, SocketAddr);

fn key_of(a: SocketAddr, b: SocketAddr) -> Key {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Recently closed tuples remembered to absorb their stray packets.
const RECENT_CLOSED: usize = 4096;
/// How long after its close a tuple absorbs stray packets (2 MSL).
const RECENT_WINDOW_NANOS: i64 = 240 * 1_000_000_000;
/// How far from the last sequence number seen a stray packet may be and still be absorbed.
const RECENT_SEQ_WINDOW: i64 = 16 << 20;

fn dir_of(idx: usize) -> Direction {
    if idx == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

fn side_of(idx: usize) -> Side {
    if idx == 0 {
        Side::Client
    } else {
        Side::Server
    }
}

fn emit(sink: &mut dyn FnMut(TcpEvent<'_>), id: u64, dir: Direction, ts: Timestamp, c: Chunk<'_>) {
    match c {
        Chunk::Data(data) => sink(TcpEvent::Data { id, dir, ts, data }),
        Chunk::Gap(bytes) => sink(TcpEvent::Gap { id, dir, ts, bytes }),
    }
}

/// One direction of a connection (index 0: client to server).
#[derive(Default)]
struct Half {
    /// Created on the SYN (or SYN-ACK), else on the first segment with payload or FIN.
    asm: Option<Assembler>,
    isn: Option<SeqNumber>,
    /// Sequence number of the FIN (end of data).
    fin_seq: Option<SeqNumber>,
    /// Highest ack the peer sent for this direction's data.
    acked: Option<SeqNumber>,
    /// An ACK already showed bytes missing here; the next one declares the gap.
    ack_gap_pending: bool,
    /// Highest sequence number (end of segment) seen, to recognise stray packets after close.
    hi_seq: Option<SeqNumber>,
}

impl Half {
    /// Where the peer's ACK says this direction's data has reached, when beyond what was
    /// delivered (clipped to the FIN; an excess of one byte with no FIN seen is an unseen FIN).
    fn ack_target(&self) -> Option<SeqNumber> {
        let asm = self.asm.as_ref()?;
        let mut t = self.acked?;
        if let Some(f) = self.fin_seq {
            if t > f {
                t = f;
            }
        }
        let d = t - asm.next_seq();
        if d <= 0 || d > FAR_AHEAD_LIMIT as i64 {
            return None;
        }
        if d == 1 && self.fin_seq.is_none() && !asm.has_buffered() {
            return None;
        }
        Some(t)
    }

    /// FIN seen and every byte before it delivered (or declared missing).
    fn done(&self) -> bool {
        match (self.fin_seq, &self.asm) {
            (Some(f), Some(a)) => f <= a.next_seq(),
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

struct Conn {
    id: u64,
    client: SocketAddr,
    server: SocketAddr,
    first_ts: Timestamp,
    last_ts: Timestamp,
    /// Activity tick of the last packet (for eviction order; capture time may go backwards).
    tick: u64,
    half: [Half; 2],
    syn_seen: bool,
    syn_attempts: u32,
    synack_seen: bool,
    /// The client sent a plain ACK after its SYN (proof that it got the SYN-ACK).
    client_acked: bool,
    refused: bool,
    /// The client answered the SYN-ACK with RST instead of ACK.
    client_reset: bool,
    /// Packets captured from each side: [client, server].
    sent: [u64; 2],
    /// The client's ACKs of server bytes, while no server packet has been seen.
    client_acks: Option<AckLog>,
    fin_by: Option<Side>,
    rst_by: Option<Side>,
    packets: u64,
    timeline: Vec<PacketNote>,
    timeline_dropped: u64,
    truncated_frames: u64,
}

/// What the recently-closed set remembers of a tuple.
struct Recent {
    ts: Timestamp,
    client: SocketAddr,
    hi: [Option<SeqNumber>; 2],
    generation: u64,
}

impl Recent {
    fn absorbs(&self, ts: Timestamp, seg: &TcpSegment<'_>) -> bool {
        if ts.0.saturating_sub(self.ts.0) > RECENT_WINDOW_NANOS {
            return false;
        }
        let d = usize::from(seg.src != self.client);
        match self.hi.get(d).copied().flatten() {
            Some(h) => (SeqNumber(seg.seq) - h).abs() <= RECENT_SEQ_WINDOW,
            None => true,
        }
    }
}

impl Conn {
    fn new(id: u64, client: SocketAddr, server: SocketAddr, ts: Timestamp, tick: u64) -> Self {
        Conn {
            id,
            client,
            server,
            first_ts: ts,
            last_ts: ts,
            tick,
            half: [Half::default(), Half::default()],
            syn_seen: false,
            syn_attempts: 0,
            synack_seen: false,
            client_acked: false,
            refused: false,
            client_reset: false,
            sent: [0, 0],
            client_acks: Some(AckLog::default()),
            fin_by: None,
            rst_by: None,
            packets: 0,
            timeline: Vec::new(),
            timeline_dropped: 0,
            truncated_frames: 0,
        }
    }

    fn new_asm(seq: SeqNumber, config: &TcpConfig) -> Assembler {
        Assembler::new(seq, config.max_buffered_per_direction, config.max_holes)
    }

    /// Apply one segment; true when the connection is over.
    fn process(
        &mut self,
        ts: Timestamp,
        tick: u64,
        seg: &TcpSegment<'_>,
        config: &TcpConfig,
        sink: &mut dyn FnMut(TcpEvent<'_>),
    ) -> bool {
        self.packets = self.packets.saturating_add(1);
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        self.tick = tick;
        let d = usize::from(!(seg.src == self.client && seg.dst == self.server));
        let o = 1 - d;
        let (dir, side) = (dir_of(d), side_of(d));
        let f = seg.flags;
        let (seq, ack) = (SeqNumber(seg.seq), SeqNumber(seg.ack));
        let plen = u32::try_from(seg.payload.len()).unwrap_or(u32::MAX);
        if seg.missing > 0 {
            self.truncated_frames += 1;
        }
        self.sent[d] = self.sent[d].saturating_add(1);

        // Handshake.
        if f.syn() && !f.ack() && d == 0 {
            let h = &mut self.half[0];
            if h.isn.is_none() {
                h.isn = Some(seq);
            }
            if h.asm.is_none() {
                h.asm = Some(Self::new_asm(seq + 1, config));
            }
            self.syn_seen = true;
            self.syn_attempts = self.syn_attempts.saturating_add(1);
        }
        if f.syn() && f.ack() && d == 1 {
            self.synack_seen = true;
            let h = &mut self.half[1];
            if h.isn.is_none() {
                h.isn = Some(seq);
            }
            if h.asm.is_none() {
                h.asm = Some(Self::new_asm(seq + 1, config));
            }
            // SYN not seen: the SYN-ACK still tells the client's ISN.
            let c = &mut self.half[0];
            if c.isn.is_none() && c.asm.is_none() {
                c.isn = Some(ack - 1);
                c.asm = Some(Self::new_asm(ack, config));
            }
        }
        // A plain ACK from the client after its SYN: it got the SYN-ACK, captured or not.
        if d == 0 && f.ack() && !f.syn() && !f.rst() && self.syn_seen {
            self.client_acked = true;
        }
        if d == 1 {
            // The server's own packets tell more than the client's ACKs: not one-sided.
            self.client_acks = None;
        } else if let Some(log) = self.client_acks.as_mut() {
            if f.ack() && !f.syn() && !f.rst() {
                log.client_ack(ts, ack, plen > 0 || seg.missing > 0);
            }
        }
        if f.rst() {
            if d == 1 && self.syn_seen && !self.synack_seen {
                self.refused = true;
            }
            if d == 0 && self.synack_seen && !self.client_acked {
                self.client_reset = true;
            }
            if self.rst_by.is_none() {
                self.rst_by = Some(side);
            }
        }

        // Time line.
        if self.timeline.len() < config.timeline_packets {
            let rel = |s: SeqNumber, isn: Option<SeqNumber>| {
                s.raw().wrapping_sub(isn.map_or(0, |i| i.raw()))
            };
            let seq = rel(seq, self.half[d].isn);
            let ack = if f.ack() {
                rel(ack, self.half[o].isn)
            } else {
                0
            };
            self.timeline.push(PacketNote {
                ts,
                dir,
                flags: f.describe(),
                seq,
                ack,
                len: plen,
            });
        } else {
            self.timeline_dropped += 1;
        }
        let seg_end = seq + u32::from(f.syn()) + plen + seg.missing + u32::from(f.fin());
        let h = &mut self.half[d];
        h.hi_seq = Some(match h.hi_seq {
            Some(prev) if prev > seg_end => prev,
            _ => seg_end,
        });

        // The ACK: what the peer's direction must have sent.
        if f.ack() {
            let p = &mut self.half[o];
            p.acked = Some(match p.acked {
                Some(prev) if prev > ack => prev,
                _ => ack,
            });
        }
        if f.rst() {
            return true;
        }
        if f.ack() {
            let carries = plen > 0 || seg.missing > 0 || f.fin();
            let id = self.id;
            let p = &mut self.half[o];
            match p.ack_target() {
                None => p.ack_gap_pending = false,
                Some(t) => {
                    let covers_fin = p.fin_seq.is_some_and(|fs| (fs + 1) - ack <= 0);
                    if p.ack_gap_pending || carries || covers_fin {
                        p.ack_gap_pending = false;
                        if let Some(asm) = p.asm.as_mut() {
                            asm.skip_to(t, &mut |c| emit(sink, id, dir_of(o), ts, c));
                        }
                    } else {
                        p.ack_gap_pending = true;
                    }
                }
            }
        }

        // Data and FIN.
        let pseq = if f.syn() { seq + 1 } else { seq };
        let has_data = plen > 0 || seg.missing > 0;
        if has_data || f.fin() {
            let id = self.id;
            let h = &mut self.half[d];
            let asm = h.asm.get_or_insert_with(|| Self::new_asm(pseq, config));
            if has_data {
                asm.insert(pseq, seg.payload, seg.missing, &mut |c| {
                    emit(sink, id, dir, ts, c)
                });
            }
            if f.fin() {
                if h.fin_seq.is_none() {
                    h.fin_seq = Some(pseq + plen + seg.missing);
                }
                if self.fin_by.is_none() {
                    self.fin_by = Some(side);
                }
            }
        }
        self.half[0].done() && self.half[1].done()
    }

    /// Deliver what can still be delivered: bytes acknowledged but never seen, then buffered
    /// data with its holes as gaps.
    fn flush(&mut self, sink: &mut dyn FnMut(TcpEvent<'_>)) {
        let (id, ts) = (self.id, self.last_ts);
        for (i, h) in self.half.iter_mut().enumerate() {
            let target = h.ack_target();
            if let Some(asm) = h.asm.as_mut() {
                let out: &mut dyn FnMut(Chunk<'_>) = &mut |c| emit(sink, id, dir_of(i), ts, c);
                if let Some(t) = target {
                    asm.skip_to(t, out);
                }
                asm.flush(out);
            }
        }
    }

    /// The handshake as the packets prove it (see [`Handshake`]).
    fn handshake(&self) -> Handshake {
        if !self.syn_seen {
            Handshake::NotSeen
        } else if self.refused {
            Handshake::Refused
        } else if self.client_acked && self.sent[1] == 0 {
            Handshake::OneSided
        } else if self.client_acked {
            // With the SYN-ACK missed but server packets there, the client's ACK still proves it.
            Handshake::Complete
        } else if self.client_reset {
            Handshake::ClientReset
        } else if self.synack_seen {
            Handshake::SynAckNotAcked
        } else {
            Handshake::Unanswered
        }
    }

    /// What the captured side's ACKs prove, when the capture holds one side's packets only.
    fn one_sided(&self) -> Option<OneSided> {
        let captured = match self.sent {
            [_, 0] if self.client_acks.as_ref().is_some_and(AckLog::started) => Side::Client,
            [0, _] if self.synack_seen => Side::Server,
            _ => return None,
        };
        let peer_bytes_acked = match captured {
            Side::Client => self.client_acks.as_ref().map_or(0, AckLog::total),
            // The SYN-ACK told the client's ISN; the server's highest ACK tells how far the
            // client's stream reached (its SYN and a FIN not counted).
            Side::Server => {
                let h = &self.half[0];
                match (h.isn, h.acked) {
                    (Some(isn), Some(acked)) => {
                        let mut n = (acked - (isn + 1)).max(0).unsigned_abs();
                        if h.fin_seq.is_none() && n > 0 && self.fin_by == Some(Side::Client) {
                            n -= 1;
                        }
                        n
                    }
                    _ => 0,
                }
            }
        };
        Some(OneSided {
            captured,
            peer_bytes_acked,
            answers_acked: Vec::new(),
        })
    }

    /// RST wins unless both FINs were already seen (then the RST only trailed a graceful close).
    fn close_kind(&self) -> CloseKind {
        let both_fins = self.half[0].fin_seq.is_some() && self.half[1].fin_seq.is_some();
        match (self.rst_by, self.fin_by) {
            (Some(_), Some(by)) if both_fins => CloseKind::Fin(by),
            (Some(by), _) => CloseKind::Rst(by),
            (None, Some(by)) => CloseKind::Fin(by),
            (None, None) => CloseKind::Open,
        }
    }

    fn info(&mut self) -> ConnInfo {
        let stat = |i: usize| {
            self.half[i]
                .asm
                .as_ref()
                .map(|a| *a.stats())
                .unwrap_or_default()
        };
        let (s0, s1) = (stat(0), stat(1));
        ConnInfo {
            id: self.id,
            client: self.client,
            server: self.server,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            handshake: self.handshake(),
            one_sided: self.one_sided(),
            client_acks: match self.sent {
                [_, 0] => self.client_acks.take().unwrap_or_default(),
                _ => AckLog::default(),
            },
            syn_attempts: self.syn_attempts,
            closed: self.close_kind(),
            packets: self.packets,
            timeline: std::mem::take(&mut self.timeline),
            timeline_dropped: self.timeline_dropped,
            gap_bytes: [s0.gap_bytes, s1.gap_bytes],
            retransmissions: s0.retransmissions + s1.retransmissions,
            inconsistent_retransmissions: s0.inconsistent_retransmissions
                + s1.inconsistent_retransmissions,
            truncated_frames: self.truncated_frames,
        }
    }
}

/// The connection table. Feed it segments in capture order.
pub struct TcpTracker {
    config: TcpConfig,
    conns: HashMap<Key, Conn, ConnHasher>,
    /// Lazy min-heap of (activity tick, key): an entry is current when the tick matches.
    lru: BinaryHeap<Reverse<(u64, Key)>>,
    recent: HashMap<Key, Recent, ConnHasher>,
    recent_order: VecDeque<(Key, u64)>,
    recent_generation: u64,
    next_id: u64,
    tick: u64,
    stats: TrackerStats,
}

impl TcpTracker {
    pub fn new(config: TcpConfig) -> Self {
        TcpTracker {
            config,
            conns: HashMap::default(),
            lru: BinaryHeap::new(),
            recent: HashMap::default(),
            recent_order: VecDeque::new(),
            recent_generation: 0,
            next_id: 1,
            tick: 0,
            stats: TrackerStats::default(),
        }
    }

    /// Process one segment captured at `ts`. Frames cut by the snapshot length have
    /// `seg.missing > 0`: the captured prefix is delivered and the missing bytes become a gap.
    pub fn segment(
        &mut self,
        ts: Timestamp,
        seg: &TcpSegment<'_>,
        sink: &mut dyn FnMut(TcpEvent<'_>),
    ) {
        self.tick += 1;
        let key = key_of(seg.src, seg.dst);
        let syn_only = seg.flags.syn() && !seg.flags.ack();
        if let Some(conn) = self.conns.get_mut(&key) {
            let same_syn = seg.src == conn.client && conn.half[0].isn == Some(SeqNumber(seg.seq));
            if !syn_only || same_syn {
                // The common path: one table lookup.
                if conn.process(ts, self.tick, seg, &self.config, sink) {
                    self.close(key, true, sink);
                }
                return;
            }
            // Port reuse: a new connection on this tuple.
            self.close(key, false, sink);
        } else if let Some(r) = self.recent.get(&key) {
            if !syn_only && r.absorbs(ts, seg) {
                self.stats.absorbed_packets += 1;
                return;
            }
            self.recent.remove(&key);
        }
        self.open(key, ts, seg, sink);
        if let Some(conn) = self.conns.get_mut(&key) {
            if conn.process(ts, self.tick, seg, &self.config, sink) {
                self.close(key, true, sink);
            }
        }
    }

    /// Close every connection idle since before `now - idle_nanos` (live capture housekeeping).
    /// Scans the table: call it periodically (e.g. once a second), not per packet.
    pub fn expire(&mut self, now: Timestamp, idle_nanos: i64, sink: &mut dyn FnMut(TcpEvent<'_>)) {
        let cutoff = now.0.saturating_sub(idle_nanos.max(0));
        let mut idle: Vec<(u64, Key)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.last_ts.0 < cutoff)
            .map(|(k, c)| (c.id, *k))
            .collect();
        idle.sort_unstable();
        for (_, key) in idle {
            self.stats.expired += 1;
            self.close(key, false, sink);
        }
        let forget_before = now.0.saturating_sub(RECENT_WINDOW_NANOS);
        while let Some(&(key, generation)) = self.recent_order.front() {
            match self.recent.get(&key) {
                Some(r) if r.generation == generation && r.ts.0 >= forget_before => break,
                Some(r) if r.generation == generation => {
                    self.recent.remove(&key);
                }
                _ => {}
            }
            self.recent_order.pop_front();
        }
    }

    /// End of capture: deliver what can be delivered (holes before buffered data become gaps)
    /// and close every connection still in the table, in order of id.
    pub fn finish(&mut self, sink: &mut dyn FnMut(TcpEvent<'_>)) {
        let mut all: Vec<(u64, Key)> = self.conns.iter().map(|(k, c)| (c.id, *k)).collect();
        all.sort_unstable();
        for (_, key) in all {
            self.close(key, false, sink);
        }
        self.lru.clear();
        self.recent.clear();
        self.recent_order.clear();
    }

    /// Connections currently tracked.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Out-of-order bytes buffered over the whole table (both directions of every connection;
    /// at most `2 * max_buffered_per_direction` each). Scans the table: for tests and periodic
    /// diagnostics, not per packet.
    pub fn buffered_bytes(&self) -> u64 {
        self.conns
            .values()
            .flat_map(|c| c.half.iter())
            .filter_map(|h| h.asm.as_ref())
            .map(|a| a.buffered_bytes())
            .fold(0u64, u64::saturating_add)
    }

    /// Table counters so far.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    fn open(
        &mut self,
        key: Key,
        ts: Timestamp,
        seg: &TcpSegment<'_>,
        sink: &mut dyn FnMut(TcpEvent<'_>),
    ) {
        let cap = self.config.max_connections.max(1);
        while self.conns.len() >= cap {
            if !self.evict_one(sink) {
                break;
            }
        }
        let f = seg.flags;
        // The SYN sender is the client, the SYN-ACK sender the server; else the higher port
        // is the client (ties: this first packet's source).
        let src_is_client = if f.syn() {
            !f.ack()
        } else {
            seg.src.port() >= seg.dst.port()
        };
        let (client, server) = if src_is_client {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        let id = self.next_id;
        self.next_id += 1;
        self.stats.opened += 1;
        self.conns
            .insert(key, Conn::new(id, client, server, ts, self.tick));
        self.stats.peak_open = self.stats.peak_open.max(self.conns.len() as u64);
        self.lru.push(Reverse((self.tick, key)));
        if self.lru.len() > self.conns.len().saturating_mul(2).saturating_add(1024) {
            self.lru = self
                .conns
                .iter()
                .map(|(k, c)| Reverse((c.tick, *k)))
                .collect();
        }
        sink(TcpEvent::Open {
            id,
            client,
            server,
            ts,
        });
    }

    /// Close the least recently active connection. False if the table is empty.
    fn evict_one(&mut self, sink: &mut dyn FnMut(TcpEvent<'_>)) -> bool {
        while let Some(Reverse((t, key))) = self.lru.pop() {
            match self.conns.get(&key) {
                Some(c) if c.tick <= t => {
                    self.stats.evicted += 1;
                    self.close(key, false, sink);
                    return true;
                }
                Some(c) => self.lru.push(Reverse((c.tick, key))),
                None => {}
            }
        }
        false
    }

    /// Flush and close the connection on `key`. `remember`: it ended by FIN or RST, so its stray
    /// packets are to be absorbed (an evicted or expired connection may still be alive: its later
    /// packets open a new, `NotSeen` connection instead).
    fn close(&mut self, key: Key, remember: bool, sink: &mut dyn FnMut(TcpEvent<'_>)) {
        let Some(mut conn) = self.conns.remove(&key) else {
            return;
        };
        conn.flush(sink);
        let info = conn.info();
        if remember {
            self.recent_generation += 1;
            let generation = self.recent_generation;
            let hi = [conn.half[0].hi_seq, conn.half[1].hi_seq];
            self.recent.insert(
                key,
                Recent {
                    ts: conn.last_ts,
                    client: conn.client,
                    hi,
                    generation,
                },
            );
            self.recent_order.push_back((key, generation));
            while self.recent_order.len() > RECENT_CLOSED {
                if let Some((k, g)) = self.recent_order.pop_front() {
                    if self.recent.get(&k).is_some_and(|r| r.generation == g) {
                        self.recent.remove(&k);
                    }
                }
            }
        }
        sink(TcpEvent::Close {
            id: conn.id,
            info: Box::new(info),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::TcpFlags;
    use proptest::prelude::*;

    const S: u8 = TcpFlags::SYN;
    const SA: u8 = TcpFlags::SYN | TcpFlags::ACK;
    const A: u8 = TcpFlags::ACK;
    const PA: u8 = TcpFlags::PSH | TcpFlags::ACK;
    const FA: u8 = TcpFlags::FIN | TcpFlags::ACK;
    const R: u8 = TcpFlags::RST;
    const RA: u8 = TcpFlags::RST | TcpFlags::ACK;

    /// Owned copy of an event.
    #[derive(Debug, Clone)]
    enum Ev {
        Open {
            id: u64,
            client: SocketAddr,
            server: SocketAddr,
        },
        Data {
            id: u64,
            dir: Direction,
            data: Vec<u8>,
        },
        Gap {
            id: u64,
            dir: Direction,
            bytes: u64,
        },
        Close {
            id: u64,
            info: Box<ConnInfo>,
        },
    }

    fn cam() -> SocketAddr {
        "10.0.0.5:50000".parse().unwrap()
    }
    fn srv() -> SocketAddr {
        "10.0.0.1:8080".parse().unwrap()
    }

    struct H {
        t: TcpTracker,
        ev: Vec<Ev>,
        now: i64,
    }

    impl H {
        fn new() -> Self {
            Self::with(TcpConfig::default())
        }
        fn with(config: TcpConfig) -> Self {
            H {
                t: TcpTracker::new(config),
                ev: Vec::new(),
                now: 1_000_000_000,
            }
        }
        fn sink(ev: &mut Vec<Ev>) -> impl FnMut(TcpEvent<'_>) + '_ {
            move |e| {
                ev.push(match e {
                    TcpEvent::Open {
                        id, client, server, ..
                    } => Ev::Open { id, client, server },
                    TcpEvent::Data { id, dir, data, .. } => Ev::Data {
                        id,
                        dir,
                        data: data.to_vec(),
                    },
                    TcpEvent::Gap { id, dir, bytes, .. } => Ev::Gap { id, dir, bytes },
                    TcpEvent::Close { id, info } => Ev::Close { id, info },
                })
            }
        }
        #[allow(clippy::too_many_arguments)]
        fn full(
            &mut self,
            src: SocketAddr,
            dst: SocketAddr,
            seq: u32,
            ack: u32,
            flags: u8,
            p: &[u8],
            missing: u32,
        ) {
            self.now += 1_000_000;
            let seg = TcpSegment {
                src,
                dst,
                seq,
                ack,
                flags: TcpFlags(flags),
                window: 1000,
                payload: p,
                missing,
            };
            self.t
                .segment(Timestamp(self.now), &seg, &mut Self::sink(&mut self.ev));
        }
        /// Client to server.
        fn c(&mut self, seq: u32, ack: u32, flags: u8, p: &[u8]) {
            self.full(cam(), srv(), seq, ack, flags, p, 0);
        }
        /// Server to client.
        fn s(&mut self, seq: u32, ack: u32, flags: u8, p: &[u8]) {
            self.full(srv(), cam(), seq, ack, flags, p, 0);
        }
        fn finish(&mut self) {
            self.t.finish(&mut Self::sink(&mut self.ev));
        }
        fn data(&self, id: u64, dir: Direction) -> Vec<u8> {
            let mut v = Vec::new();
            for e in &self.ev {
                if let Ev::Data {
                    id: i,
                    dir: d,
                    data,
                } = e
                {
                    if *i == id && *d == dir {
                        v.extend_from_slice(data);
                    }
                }
            }
            v
        }
        fn gaps(&self, id: u64, dir: Direction) -> Vec<u64> {
            self.ev
                .iter()
                .filter_map(|e| match e {
                    Ev::Gap {
                        id: i,
                        dir: d,
                        bytes,
                    } if *i == id && *d == dir => Some(*bytes),
                    _ => None,
                })
                .collect()
        }
        fn opens(&self) -> Vec<u64> {
            self.ev
                .iter()
                .filter_map(|e| {
                    if let Ev::Open { id, .. } = e {
                        Some(*id)
                    } else {
                        None
                    }
                })
                .collect()
        }
        fn closes(&self) -> Vec<&ConnInfo> {
            self.ev
                .iter()
                .filter_map(|e| {
                    if let Ev::Close { info, .. } = e {
                        Some(&**info)
                    } else {
                        None
                    }
                })
                .collect()
        }
        fn close_of(&self, id: u64) -> &ConnInfo {
            let found = self.closes().into_iter().find(|i| i.id == id);
            found.unwrap_or_else(|| panic!("no close for {id}: {:?}", self.ev))
        }
    }

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    /// SYN (ISN 100), SYN-ACK (ISN 5000), ACK.
    fn handshake(h: &mut H) {
        h.c(100, 0, S, b"");
        h.s(5000, 101, SA, b"");
        h.c(101, 5001, A, b"");
    }

    #[test]
    fn complete_exchange_closed_by_fins() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, PA, b"POST /");
        h.s(5001, 107, PA, b"200");
        h.c(107, 5004, FA, b"");
        h.s(5004, 108, FA, b"");
        assert_eq!(h.t.open_connections(), 0, "closed on the second FIN");
        h.c(108, 5005, A, b""); // trailing ACK: absorbed
        assert_eq!(h.opens(), vec![1]);
        assert_eq!(h.t.stats().absorbed_packets, 1);
        assert!(
            matches!(h.ev[0], Ev::Open { id: 1, client, server } if client == cam() && server == srv())
        );
        assert_eq!(h.data(1, C2S), b"POST /");
        assert_eq!(h.data(1, S2C), b"200");
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::Complete);
        assert_eq!(info.closed, CloseKind::Fin(Side::Client));
        assert_eq!(info.syn_attempts, 1);
        assert_eq!(info.packets, 7);
        assert_eq!(info.gap_bytes, [0, 0]);
        let tl: Vec<(Direction, &str, u32, u32, u32)> = info
            .timeline
            .iter()
            .map(|n| (n.dir, n.flags.as_str(), n.seq, n.ack, n.len))
            .collect();
        assert_eq!(
            tl,
            vec![
                (C2S, "SYN", 0, 0, 0),
                (S2C, "SYN,ACK", 0, 1, 0),
                (C2S, "ACK", 1, 1, 0),
                (C2S, "PSH,ACK", 1, 1, 6),
                (S2C, "PSH,ACK", 1, 7, 3),
                (C2S, "FIN,ACK", 7, 4, 0),
                (S2C, "FIN,ACK", 4, 8, 0),
            ]
        );
        // Open comes first, Close last; data in capture order.
        assert!(matches!(h.ev.last(), Some(Ev::Close { id: 1, .. })));
    }

    #[test]
    fn unanswered_syns_are_counted() {
        let mut h = H::new();
        for _ in 0..3 {
            h.c(100, 0, S, b"");
        }
        assert_eq!(h.opens(), vec![1]);
        h.finish();
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::Unanswered);
        assert_eq!(info.syn_attempts, 3);
        assert_eq!(info.closed, CloseKind::Open);
        assert_eq!(h.t.open_connections(), 0);
    }

    #[test]
    fn refused_by_rst() {
        let mut h = H::new();
        h.c(100, 0, S, b"");
        h.s(0, 101, RA, b"");
        assert_eq!(h.t.open_connections(), 0);
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::Refused);
        assert_eq!(info.closed, CloseKind::Rst(Side::Server));
        // A new SYN after the refusal is a new connection (port reuse), not absorbed.
        h.c(100, 0, S, b"");
        assert_eq!(h.opens(), vec![1, 2]);
    }

    #[test]
    fn synack_without_client_ack_is_not_complete() {
        // The server answered (SYN-ACK, retransmitted); the client never completed.
        let mut h = H::new();
        h.c(100, 0, S, b"");
        h.s(5000, 101, SA, b"");
        h.c(100, 0, S, b"");
        h.s(5000, 101, SA, b"");
        h.finish();
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::SynAckNotAcked);
        assert!(info.handshake.failed());
        assert_eq!(info.syn_attempts, 2);
        assert_eq!(info.one_sided, None);
    }

    #[test]
    fn client_reset_after_synack() {
        let mut h = H::new();
        h.c(100, 0, S, b"");
        h.s(5000, 101, SA, b"");
        h.c(101, 0, R, b"");
        assert_eq!(h.t.open_connections(), 0);
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::ClientReset);
        assert!(info.handshake.failed());
        assert_eq!(info.closed, CloseKind::Rst(Side::Client));

        // A client RST after it completed the handshake is a close, not a handshake verdict.
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, RA, b"");
        assert_eq!(h.close_of(1).handshake, Handshake::Complete);
    }

    #[test]
    fn client_ack_proves_a_synack_the_capture_missed() {
        let mut h = H::new();
        h.c(100, 0, S, b"");
        h.c(101, 5001, A, b""); // the SYN-ACK was not captured
        h.c(101, 5001, PA, b"GET / HTTP/1.1\r\n\r\n");
        h.s(5001, 119, PA, b"HTTP/1.1 200 OK\r\n");
        h.finish();
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::Complete);
        assert_eq!(info.one_sided, None);
        assert_eq!(h.data(1, S2C), b"HTTP/1.1 200 OK\r\n");
    }

    #[test]
    fn one_sided_client_capture_counts_what_the_client_acked() {
        // Only client packets: SYN, ACK of the SYN-ACK (server ISN 5000), a request, ACKs of a
        // 300-byte answer, then the client's FIN acknowledging the server's FIN.
        let mut h = H::new();
        h.c(100, 0, S, b"");
        h.c(101, 5001, A, b"");
        h.c(101, 5001, PA, b"GET / HTTP/1.1\r\n\r\n");
        h.c(119, 5201, A, b"");
        h.c(119, 5301, A, b"");
        h.c(119, 5302, FA, b"");
        h.finish();
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::OneSided);
        assert!(!info.handshake.failed());
        let os = info.one_sided.as_ref().expect("one-sided");
        assert_eq!((os.captured, os.peer_bytes_acked), (Side::Client, 300));
        assert_eq!(info.client_acks.total(), 300);
        assert_eq!(
            info.gap_bytes,
            [0, 0],
            "unseen server bytes are not a gap here"
        );
        // The request's answer is proven by the ACKs after it.
        let end = info.timeline[2].ts;
        let got = info.client_acks.answers([(0, end, None)].into_iter());
        assert_eq!(got.first().map(|a| a.bytes), Some(300));
    }

    #[test]
    fn one_sided_server_capture_counts_what_the_server_acked() {
        let mut h = H::new();
        h.s(5000, 101, SA, b"");
        h.s(5001, 121, PA, b"HTTP/1.1 200 OK\r\n\r\n"); // acks 20 request bytes
        h.finish();
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::NotSeen);
        let os = info.one_sided.as_ref().expect("one-sided");
        assert_eq!((os.captured, os.peer_bytes_acked), (Side::Server, 20));
        // A two-sided capture is not one-sided, nor are SYNs nobody answered.
        let mut h = H::new();
        handshake(&mut h);
        h.c(100, 0, S, b"");
        h.finish();
        assert_eq!(h.close_of(1).one_sided, None);
        let mut h = H::new();
        h.c(100, 0, S, b"");
        h.finish();
        assert_eq!(h.close_of(1).one_sided, None);
        assert_eq!(h.close_of(1).handshake, Handshake::Unanswered);
    }

    #[test]
    fn handshake_names_are_the_json_names() {
        for hs in [
            Handshake::Complete,
            Handshake::Unanswered,
            Handshake::Refused,
            Handshake::SynAckNotAcked,
            Handshake::ClientReset,
            Handshake::OneSided,
            Handshake::NotSeen,
        ] {
            let json = serde_json::to_string(&hs).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", hs.as_str()));
        }
    }

    #[test]
    fn rst_closes_at_once_and_later_data_is_ignored() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, PA, b"abc");
        h.s(5001, 104, RA, b"junk in rst");
        assert_eq!(h.t.open_connections(), 0);
        h.c(104, 5001, PA, b"def"); // after RST: absorbed
        h.s(5001, 0, R, b"");
        assert_eq!(h.opens(), vec![1]);
        assert_eq!(h.t.stats().absorbed_packets, 2);
        assert_eq!(h.data(1, C2S), b"abc");
        assert!(h.data(1, S2C).is_empty());
        let info = h.close_of(1);
        assert_eq!(info.closed, CloseKind::Rst(Side::Server));
        assert_eq!(info.handshake, Handshake::Complete);
    }

    #[test]
    fn rst_after_both_fins_keeps_fin_close_kind() {
        // Client data hole keeps the connection open after both FINs; the RST closes it.
        let mut h = H::new();
        handshake(&mut h);
        h.c(105, 5001, PA, b"efg"); // 101..105 missing
        h.s(5001, 101, FA, b"");
        h.c(108, 5002, FA, b"");
        assert_eq!(h.t.open_connections(), 1);
        h.c(108, 5002, R, b"");
        let info = h.close_of(1);
        assert_eq!(info.closed, CloseKind::Fin(Side::Server));
        assert_eq!(h.gaps(1, C2S), vec![4]);
        assert_eq!(h.data(1, C2S), b"efg");
    }

    #[test]
    fn mid_stream_start_picks_client_by_port() {
        let mut h = H::new();
        h.s(7000, 300, PA, b"HTTP/1.1 200 OK\r\n");
        h.c(300, 7017, PA, b"POST");
        h.finish();
        assert!(
            matches!(h.ev[0], Ev::Open { id: 1, client, server } if client == cam() && server == srv())
        );
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::NotSeen);
        assert_eq!(info.closed, CloseKind::Open);
        assert_eq!(h.data(1, S2C), b"HTTP/1.1 200 OK\r\n");
        assert_eq!(h.data(1, C2S), b"POST");
        // Raw sequence numbers in the time line when no SYN was seen.
        assert_eq!(info.timeline[0].seq, 7000);
        assert_eq!(info.timeline[0].ack, 300);

        // Equal ports: the first packet's source is the client.
        let mut h = H::new();
        let a: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        h.full(a, b, 1, 1, PA, b"x", 0);
        assert!(matches!(h.ev[0], Ev::Open { client, .. } if client == a));
    }

    #[test]
    fn synack_first_tells_roles_and_client_isn() {
        let mut h = H::new();
        h.s(5000, 101, SA, b"");
        h.c(101, 5001, PA, b"GET");
        h.finish();
        assert!(matches!(h.ev[0], Ev::Open { client, .. } if client == cam()));
        let info = h.close_of(1);
        assert_eq!(info.handshake, Handshake::NotSeen);
        assert_eq!((info.timeline[1].seq, info.timeline[1].ack), (1, 1));
        assert_eq!(h.data(1, C2S), b"GET");
    }

    #[test]
    fn port_reuse_new_syn_opens_new_connection() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, FA, b"");
        h.s(5001, 102, FA, b"");
        h.c(102, 5002, A, b"");
        // Same tuple, new ISN.
        h.c(900_000, 0, S, b"");
        h.s(77, 900_001, SA, b"");
        h.c(900_001, 78, PA, b"new");
        assert_eq!(h.opens(), vec![1, 2]);
        assert_eq!(h.data(2, C2S), b"new");
        // Half-closed connection (one FIN) still in the table: a SYN with another ISN replaces it.
        h.c(900_004, 78, FA, b"");
        h.c(123, 0, S, b"");
        assert_eq!(h.opens(), vec![1, 2, 3]);
        assert_eq!(h.close_of(2).closed, CloseKind::Fin(Side::Client));
        assert_eq!(h.close_of(2).handshake, Handshake::Complete);
        // Retransmitted SYN with the same ISN stays on connection 3.
        h.c(123, 0, S, b"");
        h.finish();
        assert_eq!(h.opens(), vec![1, 2, 3]);
        assert_eq!(h.close_of(3).syn_attempts, 2);
    }

    #[test]
    fn out_of_order_overlap_and_retransmission_counts() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(105, 5001, PA, b"EFGH"); // ahead
        h.c(103, 5001, PA, b"CDxx"); // overlaps "EF" with "xx": inconsistent
        h.c(101, 5001, PA, b"AB");
        h.c(101, 5001, PA, b"AB"); // retransmission of delivered bytes
        h.finish();
        assert_eq!(h.data(1, C2S), b"ABCDEFGH");
        let info = h.close_of(1);
        assert_eq!(info.retransmissions, 2);
        assert_eq!(info.inconsistent_retransmissions, 1);
        assert_eq!(info.gap_bytes, [0, 0]);
    }

    #[test]
    fn keepalive_probe_does_not_overwrite() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, PA, b"abc");
        h.c(103, 5001, A, b"\0");
        h.c(104, 5001, PA, b"d");
        h.finish();
        assert_eq!(h.data(1, C2S), b"abcd");
        assert_eq!(h.close_of(1).retransmissions, 0);
    }

    #[test]
    fn sequence_wrap() {
        let mut h = H::new();
        let isn = u32::MAX - 2; // data starts at MAX-1
        h.c(isn, 0, S, b"");
        h.s(5000, isn.wrapping_add(1), SA, b"");
        h.c(isn.wrapping_add(1), 5001, A, b"");
        h.c(isn.wrapping_add(4), 5001, PA, b"def"); // seq 2
        h.c(isn.wrapping_add(1), 5001, PA, b"abc"); // MAX-1, MAX, 0
        h.c(isn.wrapping_add(7), 5001, FA, b"");
        h.s(5001, isn.wrapping_add(8), FA, b"");
        assert_eq!(h.data(1, C2S), b"abcdef");
        assert_eq!(h.close_of(1).closed, CloseKind::Fin(Side::Client));
        assert_eq!(h.close_of(1).timeline[4].seq, 1);
    }

    #[test]
    fn capture_gap_revealed_by_ack() {
        // Pure ACKs: the second one declares the gap.
        let mut h = H::new();
        handshake(&mut h);
        h.c(111, 5001, PA, b"tail"); // 101..111 never captured
        h.s(5001, 115, A, b"");
        assert!(h.gaps(1, C2S).is_empty(), "one packet of grace");
        h.s(5001, 115, A, b"");
        assert_eq!(h.gaps(1, C2S), vec![10]);
        assert_eq!(h.data(1, C2S), b"tail");

        // Response data acknowledging unseen request bytes: gap and request data come before it.
        let mut h = H::new();
        handshake(&mut h);
        h.c(111, 5001, PA, b"tail");
        h.s(5001, 115, PA, b"resp");
        let kinds: Vec<String> =
            h.ev.iter()
                .filter_map(|e| match e {
                    Ev::Gap { dir, bytes, .. } => Some(format!("gap {dir:?} {bytes}")),
                    Ev::Data { dir, data, .. } => {
                        Some(format!("data {dir:?} {}", String::from_utf8_lossy(data)))
                    }
                    _ => None,
                })
                .collect();
        assert_eq!(
            kinds,
            vec![
                "gap ClientToServer 10",
                "data ClientToServer tail",
                "data ServerToClient resp"
            ]
        );

        // Unseen trailing bytes (nothing buffered) also become a gap.
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, PA, b"abc");
        h.s(5001, 110, PA, b"ok"); // 104..110 never seen
        assert_eq!(h.gaps(1, C2S), vec![6]);
        h.finish();
        assert_eq!(h.close_of(1).gap_bytes, [6, 0]);
    }

    #[test]
    fn ack_of_unseen_fin_is_not_a_data_gap() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, PA, b"abc");
        h.s(5001, 105, A, b""); // acks a FIN at 104 the capture missed
        h.s(5001, 105, A, b"");
        h.finish();
        assert_eq!(h.close_of(1).gap_bytes, [0, 0]);
    }

    #[test]
    fn fin_after_hole_closes_when_ack_covers_it() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(105, 5001, FA, b"xy"); // 101..105 missing, FIN at 107
        h.s(5001, 101, FA, b"");
        assert_eq!(h.t.open_connections(), 1);
        h.c(108, 5002, A, b""); // client acks the server FIN: nothing missing there
        assert_eq!(h.t.open_connections(), 1);
        h.s(5002, 108, A, b""); // server acks the client FIN: 4 bytes were sent
        assert_eq!(h.t.open_connections(), 0);
        assert_eq!(h.gaps(1, C2S), vec![4]);
        assert_eq!(h.data(1, C2S), b"xy");
        assert_eq!(h.close_of(1).closed, CloseKind::Fin(Side::Client));
    }

    #[test]
    fn gap_at_finish() {
        let mut h = H::new();
        handshake(&mut h);
        h.c(101, 5001, PA, b"ab");
        h.c(110, 5001, PA, b"jk"); // 103..110 missing, nothing acknowledges it
        assert_eq!(h.data(1, C2S), b"ab");
        h.finish();
        assert_eq!(h.data(1, C2S), b"abjk");
        assert_eq!(h.gaps(1, C2S), vec![7]);
        let info = h.close_of(1);
        assert_eq!(info.gap_bytes, [7, 0]);
        assert_eq!(info.closed, CloseKind::Open);
        // The gap comes between the two pieces of data.
        let pos = |want: &str| h.ev.iter().position(|e| format!("{e:?}").starts_with(want));
        assert!(pos("Gap").unwrap() < pos("Close").unwrap());
    }

    #[test]
    fn truncated_frame_becomes_gap() {
        let mut h = H::new();
        handshake(&mut h);
        h.full(cam(), srv(), 101, 5001, PA, b"POST /ISAPI", 89);
        h.c(201, 5001, PA, b"next");
        h.finish();
        assert_eq!(h.data(1, C2S), b"POST /ISAPInext");
        assert_eq!(h.gaps(1, C2S), vec![89]);
        let info = h.close_of(1);
        assert_eq!(info.truncated_frames, 1);
        assert_eq!(info.gap_bytes, [89, 0]);
    }

    #[test]
    fn eviction_closes_least_recently_active() {
        let mut h = H::with(TcpConfig {
            max_connections: 2,
            ..TcpConfig::default()
        });
        let a: SocketAddr = "10.0.0.5:40001".parse().unwrap();
        let b: SocketAddr = "10.0.0.5:40002".parse().unwrap();
        let c: SocketAddr = "10.0.0.5:40003".parse().unwrap();
        h.full(a, srv(), 1, 0, S, b"", 0); // id 1
        h.full(b, srv(), 1, 0, S, b"", 0); // id 2
        h.full(a, srv(), 1, 0, S, b"", 0); // id 1 active again
        h.full(c, srv(), 1, 0, S, b"", 0); // id 3: evicts id 2
        assert_eq!(h.t.open_connections(), 2);
        assert_eq!(h.closes().iter().map(|i| i.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(h.close_of(2).closed, CloseKind::Open);
        assert_eq!(h.t.stats().evicted, 1);
        h.full(b, srv(), 9, 0, S, b"", 0); // id 4: evicts id 1
        assert_eq!(
            h.closes().iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(h.close_of(1).syn_attempts, 2);
    }

    #[test]
    fn expire_closes_idle_connections_only() {
        let mut h = H::new();
        let a: SocketAddr = "10.0.0.5:40001".parse().unwrap();
        h.full(a, srv(), 1, 0, S, b"", 0); // id 1 at now0+1ms
        h.now += 10_000_000_000; // 10 s later
        h.c(100, 0, S, b""); // id 2
        let now = Timestamp(h.now);
        h.t.expire(now, 5_000_000_000, &mut H::sink(&mut h.ev));
        assert_eq!(h.closes().iter().map(|i| i.id).collect::<Vec<_>>(), vec![1]);
        assert_eq!(h.t.open_connections(), 1);
        assert_eq!(h.t.stats().expired, 1);
        // The expired connection was only idle: its next packet opens a new connection.
        h.full(a, srv(), 2, 0, PA, b"GET", 0);
        assert_eq!(h.opens(), vec![1, 2, 3]);
        assert_eq!(h.t.stats().absorbed_packets, 0);
    }

    #[test]
    fn table_stays_within_its_limits_and_counts_what_it_closes() {
        let mut h = H::with(TcpConfig {
            max_connections: 50,
            max_buffered_per_direction: 1000,
            ..TcpConfig::default()
        });
        for i in 0..500u16 {
            let a = SocketAddr::new("10.0.0.5".parse().unwrap(), 20_000 + i);
            h.full(a, srv(), 1000, 0, S, b"", 0);
            h.full(srv(), a, 5000, 1001, SA, b"", 0);
            h.full(a, srv(), 1001, 5001, A, b"", 0);
            // Ten bytes after a 10-byte hole: buffered out of order, then silence.
            h.full(a, srv(), 1011, 5001, PA, b"0123456789", 0);
            assert!(h.t.open_connections() <= 50);
            assert!(h.t.buffered_bytes() <= 50 * 2 * 1000);
        }
        let st = h.t.stats();
        assert_eq!((st.opened, st.evicted, st.peak_open), (500, 450, 50));
        assert_eq!(h.t.buffered_bytes(), 50 * 10);
        // An evicted connection's buffered bytes were delivered behind an explicit gap.
        assert_eq!(h.gaps(1, C2S), vec![10]);
        assert_eq!(h.data(1, C2S), b"0123456789");

        h.now += 3_600_000_000_000;
        let now = Timestamp(h.now);
        h.t.expire(now, 120_000_000_000, &mut H::sink(&mut h.ev));
        let st = h.t.stats();
        assert_eq!((st.expired, st.peak_open), (50, 50));
        assert_eq!((h.t.open_connections(), h.t.buffered_bytes()), (0, 0));
        // Every connection opened was closed, with a Close event: none vanished silently.
        assert_eq!(h.closes().len() as u64, st.opened);
        assert_eq!(st.evicted + st.expired, st.opened);
    }

    #[test]
    fn ids_increase_from_one() {
        let mut h = H::new();
        for port in 1..=3u16 {
            let a = SocketAddr::new("10.0.0.7".parse().unwrap(), 40000 + port);
            h.full(a, srv(), 0, 0, S, b"", 0);
        }
        assert_eq!(h.opens(), vec![1, 2, 3]);
    }

    proptest! {
        /// Both directions segmented, shuffled within each direction and duplicated still come out
        /// exactly, with no gap, through the whole tracker.
        #[test]
        fn tracker_reassembles_reordered_streams(
            req in proptest::collection::vec(any::<u8>(), 1..2000),
            resp in proptest::collection::vec(any::<u8>(), 1..2000),
            cuts in proptest::collection::vec(1usize..200, 1..20),
            seed in any::<u64>(),
            isn_c in any::<u32>(),
            isn_s in any::<u32>(),
        ) {
            // Limits generous enough that no hole is ever forced into a gap.
            let mut h = H::with(TcpConfig { max_holes: 10_000, ..TcpConfig::default() });
            h.c(isn_c, 0, S, b"");
            h.s(isn_s, isn_c.wrapping_add(1), SA, b"");
            h.c(isn_c.wrapping_add(1), isn_s.wrapping_add(1), A, b"");
            let pieces = |len: usize| {
                let mut v = Vec::new();
                let (mut pos, mut i) = (0, 0);
                while pos < len {
                    let n = cuts[i % cuts.len()].min(len - pos);
                    v.push((pos, pos + n));
                    pos += n;
                    i += 1;
                }
                v
            };
            let mut x = seed | 1;
            let mut shuffle = |v: &mut Vec<(usize, usize)>| {
                for i in (1..v.len()).rev() {
                    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                    v.swap(i, (x % (i as u64 + 1)) as usize);
                }
                if let Some(&first) = v.first() { v.push(first); }
            };
            let mut rq = pieces(req.len());
            let mut rs = pieces(resp.len());
            shuffle(&mut rq);
            shuffle(&mut rs);
            // Acks only acknowledge what the peer has fully received so far (0 = initial).
            for (lo, hi) in rq {
                h.c(isn_c.wrapping_add(1 + lo as u32), isn_s.wrapping_add(1), PA, &req[lo..hi]);
            }
            let got = isn_c.wrapping_add(1 + req.len() as u32);
            for (lo, hi) in rs {
                h.s(isn_s.wrapping_add(1 + lo as u32), got, PA, &resp[lo..hi]);
            }
            h.finish();
            prop_assert_eq!(h.data(1, C2S), req);
            prop_assert_eq!(h.data(1, S2C), resp);
            prop_assert!(h.gaps(1, C2S).is_empty());
            prop_assert!(h.gaps(1, S2C).is_empty());
            prop_assert_eq!(h.opens(), vec![1]);
            prop_assert_eq!(h.close_of(1).handshake, Handshake::Complete);
        }

        /// With segments dropped and tight limits, every byte of the request is accounted for
        /// once the server acknowledges it all: delivered bytes sit at their right offsets and
        /// delivered + gap bytes == request length.
        #[test]
        fn tracker_accounts_for_dropped_bytes(
            req in proptest::collection::vec(any::<u8>(), 1..3000),
            cuts in proptest::collection::vec(1usize..300, 1..20),
            seed in any::<u64>(),
            drop_mask in any::<u64>(),
            isn_c in any::<u32>(),
            max_holes in 0usize..5,
            max_buffered in 0usize..1500,
        ) {
            let config = TcpConfig { max_holes, max_buffered_per_direction: max_buffered, ..TcpConfig::default() };
            let mut h = H::with(config);
            let isn_s = 7u32;
            h.c(isn_c, 0, S, b"");
            h.s(isn_s, isn_c.wrapping_add(1), SA, b"");
            h.c(isn_c.wrapping_add(1), isn_s + 1, A, b"");
            let mut segs = Vec::new();
            let (mut pos, mut i) = (0, 0);
            while pos < req.len() {
                let n = cuts[i % cuts.len()].min(req.len() - pos);
                segs.push((pos, pos + n));
                pos += n;
                i += 1;
            }
            let mut x = seed | 1;
            for i in (1..segs.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                segs.swap(i, (x % (i as u64 + 1)) as usize);
            }
            for (i, (lo, hi)) in segs.into_iter().enumerate() {
                if drop_mask & (1 << (i % 64)) == 0 {
                    h.c(isn_c.wrapping_add(1 + lo as u32), isn_s + 1, PA, &req[lo..hi]);
                }
            }
            // The client's FIN is captured; the response acknowledges the whole request and
            // the FIN. (Without a FIN seen, an excess of exactly one acknowledged byte is taken
            // for an unseen FIN: see `ack_of_unseen_fin_is_not_a_data_gap`.)
            let end = isn_c.wrapping_add(1 + req.len() as u32);
            h.c(end, isn_s + 1, FA, b"");
            h.s(isn_s + 1, end.wrapping_add(1), PA, b"HTTP/1.1 200 OK\r\n\r\n");
            h.finish();
            let mut off = 0usize;
            let mut delivered = 0u64;
            for e in &h.ev {
                match e {
                    Ev::Data { dir: C2S, data, .. } => {
                        prop_assert_eq!(req.get(off..off + data.len()), Some(&data[..]));
                        off += data.len();
                        delivered += data.len() as u64;
                    }
                    Ev::Gap { dir: C2S, bytes, .. } => off += *bytes as usize,
                    _ => {}
                }
            }
            prop_assert_eq!(off, req.len());
            let info = h.close_of(1);
            prop_assert_eq!(delivered + info.gap_bytes[0], req.len() as u64);
            prop_assert_eq!(h.data(1, S2C), b"HTTP/1.1 200 OK\r\n\r\n".to_vec());
        }
    }
}
