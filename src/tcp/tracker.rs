//! Connection table: handshake verdicts, close detection and reassembly for both directions.

use std::net::SocketAddr;

use serde::Serialize;

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

/// The three-way handshake as the capture shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Handshake {
    /// SYN, SYN-ACK and ACK (or data acknowledging the SYN-ACK) were seen.
    Complete,
    /// SYN(s) with no SYN-ACK: nothing accepted the connection.
    Unanswered,
    /// The SYN was answered with RST: nothing listens on that port, or a firewall rejects it.
    Refused,
    /// The capture began after the handshake (no SYN seen).
    NotSeen,
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
    /// Re-sent bytes that differed from what arrived first (kept the first).
    pub inconsistent_retransmissions: u64,
    /// Frames of this connection cut by the snapshot length.
    pub truncated_frames: u64,
}

/// Limits that keep memory bounded however large or hostile the capture.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Connections tracked at once; past this the least recently active is closed as `Open`.
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
    Open { id: u64, client: SocketAddr, server: SocketAddr, ts: Timestamp },
    /// In-order bytes; `ts` is the capture time of the segment that completed them.
    Data { id: u64, dir: Direction, ts: Timestamp, data: &'a [u8] },
    /// `bytes` of the stream that the capture never saw, at this point of the stream.
    Gap { id: u64, dir: Direction, ts: Timestamp, bytes: u64 },
    /// The connection is over (RST, FIN from both sides, eviction, or end of capture). No more
    /// events carry this id.
    Close { id: u64, info: Box<ConnInfo> },
}

/// The connection table. Feed it segments in capture order.
pub struct TcpTracker {
    // private: the tcp helper fills this in
}

impl TcpTracker {
    pub fn new(config: TcpConfig) -> Self {
        todo!("tcp helper")
    }

    /// Process one segment captured at `ts`. `truncated` is true when the frame was cut by the
    /// snapshot length (its `missing` payload bytes become a gap).
    pub fn segment(&mut self, ts: Timestamp, seg: &TcpSegment<'_>, sink: &mut dyn FnMut(TcpEvent<'_>)) {
        todo!("tcp helper")
    }

    /// Close every connection idle since before `now - idle_nanos` (live capture housekeeping).
    pub fn expire(&mut self, now: Timestamp, idle_nanos: i64, sink: &mut dyn FnMut(TcpEvent<'_>)) {
        todo!("tcp helper")
    }

    /// End of capture: deliver what can be delivered (holes before buffered data become gaps)
    /// and close every connection still in the table.
    pub fn finish(&mut self, sink: &mut dyn FnMut(TcpEvent<'_>)) {
        todo!("tcp helper")
    }

    /// Connections currently tracked.
    pub fn open_connections(&self) -> usize {
        todo!("tcp helper")
    }
}
