//! The counters a run keeps and the summary counts, in one place: the packet-level [`Counters`]
//! the pipeline keeps while it reads, and how a finished connection and its exchanges add to a
//! [`Summary`] (the replay diagnosis and the live one count alike).

use crate::capture::EncapCounts;
use crate::model::{Connection, Summary, Verdict};
use crate::time::Timestamp;

/// Packet-level counters for the summary.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub packets: u64,
    pub tcp_packets: u64,
    pub non_tcp_packets: u64,
    pub undecodable_frames: u64,
    pub truncated_frames: u64,
    pub first_packet: Option<Timestamp>,
    pub last_packet: Option<Timestamp>,
    /// Warnings beyond `max_warnings`.
    pub warnings_dropped: u64,
    /// Connections closed because the table was full (`TcpConfig::max_connections`).
    pub connections_evicted: u64,
    /// Connections closed after being idle (live capture: `--idle-timeout`).
    pub connections_expired: u64,
    /// Most connections tracked at once.
    pub peak_open_connections: u64,
    /// Frames found inside each tunnel or encapsulation (mirror ports, overlays).
    pub encapsulations: EncapCounts,
}

/// The counters a [`Summary`] carries as they are, named once for both directions (every field
/// of [`Counters`] but `warnings_dropped`, which the report shows as a warning instead).
macro_rules! summary_counters {
    ($m:ident) => {
        $m!(
            packets,
            tcp_packets,
            non_tcp_packets,
            undecodable_frames,
            truncated_frames,
            first_packet,
            last_packet,
            connections_evicted,
            connections_expired,
            peak_open_connections,
            encapsulations
        )
    };
}

impl Counters {
    /// The counters a finished report's summary carries (all but `warnings_dropped`), for views
    /// that rebuild their state from a report.
    pub fn from_summary(s: &Summary) -> Counters {
        macro_rules! take {
            ($($f:ident),*) => {
                Counters { $($f: s.$f,)* warnings_dropped: 0 }
            };
        }
        summary_counters!(take)
    }
}

impl Summary {
    /// Copy the run's packet-level counters into the summary.
    pub fn set_counters(&mut self, c: &Counters) {
        let dst = self;
        macro_rules! put {
            ($($f:ident),*) => {{
                $(dst.$f = c.$f;)*
            }};
        }
        summary_counters!(put);
    }

    /// Count one finished connection: itself, its lost bytes and its handshake.
    pub fn count_connection(&mut self, c: &Connection) {
        self.connections += 1;
        self.capture_gap_bytes = self
            .capture_gap_bytes
            .saturating_add(c.gap_bytes[0].saturating_add(c.gap_bytes[1]));
        self.count_handshake(c);
    }

    /// Count one judged request.
    pub fn count_request(&mut self, v: Verdict) {
        self.requests += 1;
        self.count_verdict(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_survive_a_trip_through_the_summary() {
        let c = Counters {
            packets: 1,
            tcp_packets: 2,
            non_tcp_packets: 3,
            undecodable_frames: 4,
            truncated_frames: 5,
            first_packet: Some(Timestamp(6)),
            last_packet: Some(Timestamp(7)),
            warnings_dropped: 8,
            connections_evicted: 9,
            connections_expired: 10,
            peak_open_connections: 11,
            encapsulations: EncapCounts {
                vxlan: 13,
                ..EncapCounts::default()
            },
        };
        let mut s = Summary {
            requests: 12,
            ..Summary::default()
        };
        s.set_counters(&c);
        assert_eq!(
            (
                s.packets,
                s.tcp_packets,
                s.non_tcp_packets,
                s.undecodable_frames
            ),
            (1, 2, 3, 4)
        );
        assert_eq!(s.truncated_frames, 5);
        assert_eq!(
            (s.first_packet, s.last_packet),
            (Some(Timestamp(6)), Some(Timestamp(7)))
        );
        assert_eq!(
            (
                s.connections_evicted,
                s.connections_expired,
                s.peak_open_connections
            ),
            (9, 10, 11)
        );
        assert_eq!(s.encapsulations.vxlan, 13);
        assert_eq!(
            s.requests, 12,
            "fields that are not counters are left alone"
        );
        let back = Counters::from_summary(&s);
        assert_eq!(back.warnings_dropped, 0, "the summary does not carry it");
        assert_eq!(
            format!(
                "{:?}",
                Counters {
                    warnings_dropped: 0,
                    ..c
                }
            ),
            format!("{back:?}")
        );
    }
}
