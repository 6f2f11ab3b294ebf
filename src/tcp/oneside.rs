//! One-sided captures: what a side's ACK numbers prove about the other side's stream when the
//! capture holds only one direction (a mirror port or a filter that saw only the device's
//! packets, asymmetric routing).
//!
//! Rules:
//! - a connection is one-sided when every captured packet came from one side; its handshake is
//!   judged from the captured side alone (a client ACK after its SYN proves the SYN-ACK arrived);
//! - while no server packet has been seen, the client's acknowledgement number is logged as a
//!   running count of server bytes acknowledged (forward steps only, each at most
//!   [`FAR_AHEAD_LIMIT`]), with the time of the packet that first showed each new level;
//!   consecutive pure-ACK advances with no client data between them share one point, so a
//!   keep-alive connection costs about two points per request, at most [`MAX_ACK_POINTS`];
//! - a last advance of exactly one byte is taken for the server's FIN, not data (as the tracker
//!   does for unseen FINs);
//! - the log is dropped as soon as a server packet is seen: the capture is not one-sided and the
//!   server's own packets tell more.

use serde::Serialize;

use super::assembler::FAR_AHEAD_LIMIT;
use super::seq::SeqNumber;
use super::tracker::Side;
use crate::time::Timestamp;

/// Ack points kept per connection; past this the log stops and is marked truncated.
pub const MAX_ACK_POINTS: usize = 1024;

/// What the capture shows of a connection that only one side's packets reached.
///
/// Why: without the other side's packets, "no answer" cannot be told from "answer not captured";
/// the captured side's ACK numbers are the only proof either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OneSided {
    /// The side whose packets the capture holds.
    pub captured: Side,
    /// Bytes of the other side's stream that the captured side acknowledged (the SYN and a FIN
    /// acknowledged last not counted).
    pub peer_bytes_acked: u64,
    /// Requests left without a captured answer although the client acknowledged response bytes
    /// after them: (request index on the connection, bytes acknowledged between the end of that
    /// request and the next request, or the end of the connection).
    pub answers_acked: Vec<AckedAnswer>,
}

/// A request whose answer the client's ACKs prove although the capture does not hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AckedAnswer {
    /// Index of the exchange on its connection.
    pub index: usize,
    /// Response bytes the client acknowledged after the request.
    pub bytes: u64,
}

/// One step of the log: from `ts` on, the client had acknowledged `acked` server bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPoint {
    pub ts: Timestamp,
    pub acked: u64,
}

/// The client's acknowledgements of server bytes over time, in a connection with no server
/// packet captured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckLog {
    /// Ack number of the first ACK after the SYN (server ISN + 1) and then the last one seen.
    last: Option<SeqNumber>,
    points: Vec<AckPoint>,
    total: u64,
    /// Size of the last advance (1: perhaps the server's FIN).
    last_step: u64,
    /// Client data was sent since the last point (the next advance starts a new point).
    data_since_point: bool,
    /// [`MAX_ACK_POINTS`] was reached: later advances are counted in the total only.
    truncated: bool,
}

impl AckLog {
    /// Take one client packet's acknowledgement number (`has_data`: it carried payload).
    pub fn client_ack(&mut self, ts: Timestamp, ack: SeqNumber, has_data: bool) {
        let Some(last) = self.last else {
            // The first ACK after the SYN acknowledges the SYN-ACK: the base of the count.
            self.last = Some(ack);
            self.data_since_point |= has_data;
            return;
        };
        let step = ack - last;
        if step <= 0 || step > FAR_AHEAD_LIMIT as i64 {
            self.data_since_point |= has_data;
            return;
        }
        self.last = Some(ack);
        let step = step.unsigned_abs();
        self.total = self.total.saturating_add(step);
        self.last_step = step;
        let acked = self.total;
        let full = self.points.len() >= MAX_ACK_POINTS;
        match self.points.last_mut() {
            Some(p) if !self.data_since_point && !has_data => p.acked = acked,
            _ if full => self.truncated = true,
            _ => self.points.push(AckPoint { ts, acked }),
        }
        self.data_since_point = has_data;
    }

    /// Server bytes acknowledged in all (a last one-byte step, the server's FIN, not counted).
    pub fn total(&self) -> u64 {
        if self.last_step == 1 {
            self.total.saturating_sub(1)
        } else {
            self.total
        }
    }

    /// Server bytes the client had acknowledged by time `ts` (packets at `ts` included), as far
    /// as the log can tell: `None` past the point where the log was truncated.
    pub fn acked_at(&self, ts: Timestamp) -> Option<u64> {
        let i = self.points.partition_point(|p| p.ts <= ts);
        if self.truncated && i == self.points.len() {
            return None;
        }
        let at = i.checked_sub(1).and_then(|j| self.points.get(j));
        let acked = at.map_or(0, |p| p.acked);
        // The FIN step is not a response byte.
        Some(acked.min(self.total()))
    }

    /// True when the log has seen at least the ACK of the SYN-ACK.
    pub fn started(&self) -> bool {
        self.last.is_some()
    }

    /// Requests whose answer the ACKs prove. `requests` are (index, end of the request, start of
    /// the next request or `None` for the last), in request order; only those the caller left
    /// unanswered are judged.
    pub fn answers(
        &self,
        requests: impl Iterator<Item = (usize, Timestamp, Option<Timestamp>)>,
    ) -> Vec<AckedAnswer> {
        let mut out = Vec::new();
        for (index, end, next) in requests {
            let before = self.acked_at(end);
            let after = match next {
                Some(t) => self.acked_at(t),
                None if self.truncated => None,
                None => Some(self.total()),
            };
            if let (Some(b), Some(a)) = (before, after) {
                if a > b {
                    out.push(AckedAnswer {
                        index,
                        bytes: a - b,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    /// The client side of a keep-alive connection with three GETs (server ISN + 1 = 1001):
    /// answers of 3239, 1071 and 8269 bytes, then the server's FIN acknowledged.
    fn three_gets() -> AckLog {
        let mut l = AckLog::default();
        let s = |n: u32| SeqNumber(1001 + n);
        l.client_ack(t(1), s(0), false); // ACK of the SYN-ACK
        l.client_ack(t(2), s(0), true); // GET 1
        l.client_ack(t(3), s(2920), false);
        l.client_ack(t(4), s(3239), false);
        l.client_ack(t(5), s(3239), true); // GET 2
        l.client_ack(t(6), s(4310), false);
        l.client_ack(t(7), s(4310), true); // GET 3
        l.client_ack(t(8), s(8690), false);
        l.client_ack(t(9), s(12579), false);
        l.client_ack(t(10), s(12580), false); // the FIN
        l
    }

    #[test]
    fn answers_are_charged_to_the_request_before_them() {
        let l = three_gets();
        assert_eq!(l.total(), 12579);
        assert_eq!(
            l.points.len(),
            3,
            "pure ACKs between requests share a point"
        );
        let got = l.answers(
            [
                (0, t(2), Some(t(5))),
                (1, t(5), Some(t(7))),
                (2, t(7), None),
            ]
            .into_iter(),
        );
        assert_eq!(
            got,
            vec![
                AckedAnswer {
                    index: 0,
                    bytes: 3239
                },
                AckedAnswer {
                    index: 1,
                    bytes: 1071
                },
                AckedAnswer {
                    index: 2,
                    bytes: 8269
                },
            ]
        );
    }

    #[test]
    fn no_advance_after_a_request_proves_nothing() {
        let mut l = AckLog::default();
        l.client_ack(t(1), SeqNumber(u32::MAX), false); // base just before the wrap
        l.client_ack(t(2), SeqNumber(u32::MAX), true); // request 0
        l.client_ack(t(3), SeqNumber(99), false); // 100 bytes, across the wrap
        l.client_ack(t(4), SeqNumber(99), true); // request 1: never answered
        l.client_ack(t(5), SeqNumber(50), false); // old ACK (reordered): ignored
        let got = l.answers([(0, t(2), Some(t(4))), (1, t(4), None)].into_iter());
        assert_eq!(
            got,
            vec![AckedAnswer {
                index: 0,
                bytes: 100
            }]
        );
        assert_eq!(l.total(), 100);
    }

    #[test]
    fn a_full_log_stops_judging_instead_of_guessing() {
        let mut l = AckLog::default();
        l.client_ack(t(0), SeqNumber(0), false);
        for i in 0..(MAX_ACK_POINTS as i64 + 10) {
            l.client_ack(t(2 * i + 1), SeqNumber(10 * i as u32), true);
            l.client_ack(t(2 * i + 2), SeqNumber(10 * i as u32 + 10), false);
        }
        assert!(l.truncated);
        assert_eq!(l.points.len(), MAX_ACK_POINTS);
        let last = MAX_ACK_POINTS as i64 + 9;
        assert_eq!(l.answers([(0, t(1), Some(t(3)))].into_iter()).len(), 1);
        assert!(l
            .answers([(9, t(2 * last + 1), None)].into_iter())
            .is_empty());
    }
}
