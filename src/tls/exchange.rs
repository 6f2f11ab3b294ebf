//! Exchanges inferred from the timing of application-data records, without keys.
//!
//! Rule: a burst of client application data followed by server application data is one
//! exchange; the next client record after server data starts the next exchange. A client burst
//! with no server data before the connection closed (or the capture ended) is unanswered. The
//! HTTP status is never known here: every exchange is marked encrypted, and what a capture gap
//! could have changed is marked uncertain.

use serde::Serialize;

use crate::time::Timestamp;

/// Why an exchange's figures may be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Uncertainty {
    /// Bytes of the connection are missing from the capture during this exchange: records
    /// (and so exchange boundaries) may be missing.
    CaptureGap,
    /// TLS 1.3: server records during this exchange were taken as session tickets (sent as
    /// application data after the handshake) by their size; if one was the answer instead,
    /// the response figures (or its absence) are wrong.
    MaySessionTickets,
    /// The capture ended (or the connection was evicted) while waiting: the answer may have
    /// come later.
    CaptureEnded,
}

/// The server's side of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TlsResponse {
    /// Capture time of the first response record's header.
    pub time: Timestamp,
    /// Capture time of the last response byte seen.
    pub end_time: Timestamp,
    pub records: u64,
    /// Record payload bytes (ciphertext).
    pub bytes: u64,
    /// First response byte minus last request byte (0 when the server began before the request
    /// was complete), as for plain HTTP.
    pub latency_ms: f64,
}

/// One request/response pair inferred from record timing. Its HTTP status is unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsExchange {
    /// Position on the connection, from 0.
    pub index: usize,
    /// Capture time of the first request record's header.
    pub time: Timestamp,
    /// Capture time of the last request byte seen.
    pub end_time: Timestamp,
    pub request_records: u64,
    /// Record payload bytes (ciphertext).
    pub request_bytes: u64,
    /// None: no server application data came before the close or the end of the capture.
    pub response: Option<TlsResponse>,
    /// Always true: the content, status included, is not readable without keys.
    pub encrypted: bool,
    pub uncertain: Option<Uncertainty>,
}

/// Builds exchanges from application-data records in capture order.
#[derive(Debug, Default)]
pub(crate) struct ExchangeBuilder {
    current: Option<TlsExchange>,
    next_index: usize,
    /// Finished exchanges not yet taken (bounded by `max_kept`).
    pub(crate) done: Vec<TlsExchange>,
    pub(crate) dropped: u64,
    max_kept: usize,
}

impl ExchangeBuilder {
    pub(crate) fn new(max_kept: usize) -> Self {
        ExchangeBuilder {
            max_kept,
            ..Default::default()
        }
    }

    fn push_done(&mut self, ex: TlsExchange) {
        if self.done.len() < self.max_kept {
            self.done.push(ex);
        } else {
            self.dropped += 1;
        }
    }

    /// A client application-data record begins.
    pub(crate) fn client_record(&mut self, ts: Timestamp, len: u64) {
        if let Some(cur) = &mut self.current {
            if cur.response.is_none() {
                cur.request_records += 1;
                cur.request_bytes += len;
                cur.end_time = ts;
                return;
            }
        }
        if let Some(prev) = self.current.take() {
            self.push_done(prev);
        }
        self.current = Some(TlsExchange {
            index: self.next_index,
            time: ts,
            end_time: ts,
            request_records: 1,
            request_bytes: len,
            response: None,
            encrypted: true,
            uncertain: None,
        });
        self.next_index += 1;
    }

    /// A server application-data record begins. Returns false when no request is waiting (the
    /// record is not part of an exchange).
    pub(crate) fn server_record(&mut self, ts: Timestamp, len: u64) -> bool {
        let Some(cur) = &mut self.current else {
            return false;
        };
        match &mut cur.response {
            Some(r) => {
                r.records += 1;
                r.bytes += len;
                r.end_time = ts;
            }
            None => {
                let latency = if ts > cur.end_time {
                    ts.millis_since(cur.end_time)
                } else {
                    0.0
                };
                cur.response = Some(TlsResponse {
                    time: ts,
                    end_time: ts,
                    records: 1,
                    bytes: len,
                    latency_ms: latency,
                });
            }
        }
        true
    }

    /// More bytes of the record in progress in one direction arrived at `ts`.
    pub(crate) fn record_bytes(&mut self, client: bool, ts: Timestamp) {
        if let Some(cur) = &mut self.current {
            match (&mut cur.response, client) {
                (None, true) => cur.end_time = ts,
                (Some(r), false) => r.end_time = ts,
                _ => {}
            }
        }
    }

    /// Something during the exchange in progress (if any) makes its figures uncertain; the
    /// first reason is kept.
    pub(crate) fn uncertain(&mut self, why: Uncertainty) {
        if let Some(cur) = &mut self.current {
            cur.uncertain.get_or_insert(why);
        }
    }

    /// The connection ended (`capture_ended`: it did not close within the capture).
    pub(crate) fn finish(&mut self, capture_ended: bool) {
        if let Some(mut cur) = self.current.take() {
            if cur.response.is_none() && capture_ended && cur.uncertain.is_none() {
                cur.uncertain = Some(Uncertainty::CaptureEnded);
            }
            self.push_done(cur);
        }
    }

    /// The exchange in progress, if any.
    pub(crate) fn current(&self) -> Option<&TlsExchange> {
        self.current.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    #[test]
    fn bursts_pair_up_and_a_last_lonely_burst_is_unanswered() {
        let mut b = ExchangeBuilder::new(10);
        b.client_record(t(0), 100);
        b.client_record(t(1), 50);
        assert!(b.server_record(t(11), 30));
        b.server_record(t(12), 20);
        b.client_record(t(20), 70);
        b.finish(false);
        assert_eq!(b.done.len(), 2);
        let first = &b.done[0];
        assert_eq!((first.request_records, first.request_bytes), (2, 150));
        let r = first.response.expect("answered");
        assert_eq!((r.records, r.bytes), (2, 50));
        assert!((r.latency_ms - 10.0).abs() < 1e-9);
        assert_eq!(b.done[1].index, 1);
        assert!(b.done[1].response.is_none());
        assert_eq!(b.done[1].uncertain, None);
    }

    #[test]
    fn server_data_without_a_request_is_no_exchange_and_capture_end_is_uncertain() {
        let mut b = ExchangeBuilder::new(10);
        assert!(!b.server_record(t(0), 200));
        b.client_record(t(1), 10);
        b.finish(true);
        assert_eq!(b.done.len(), 1);
        assert_eq!(b.done[0].uncertain, Some(Uncertainty::CaptureEnded));
    }

    #[test]
    fn kept_exchanges_are_bounded() {
        let mut b = ExchangeBuilder::new(2);
        for i in 0..5 {
            b.client_record(t(i * 10), 1);
            b.server_record(t(i * 10 + 1), 1);
        }
        b.finish(false);
        assert_eq!(b.done.len(), 2);
        assert_eq!(b.dropped, 3);
    }
}
