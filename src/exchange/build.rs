//! Constructors of the exchange record and the request body in flight: the one place that turns
//! a request head, body bytes and a decoded body into an [`Exchange`], for the capture pipeline
//! and the listener alike.

use std::net::SocketAddr;

use crate::http::Head;
use crate::isapi::{BodyDecoder, BodyLimits, DecodedBody, PartSink};
use crate::model::{Connection, EventSummary, Exchange, ExchangeNote, Request, Response};
use crate::tcp::{CloseKind, Handshake};
use crate::time::Timestamp;

impl Connection {
    /// A connection just seen (capture) or accepted (listener): nothing carried yet. The capture
    /// pipeline fills the TCP facts in when it closes; the listener knows them at once.
    pub fn opened(
        id: u64,
        client: SocketAddr,
        server: SocketAddr,
        handshake: Handshake,
        syn_attempts: u32,
        ts: Timestamp,
    ) -> Connection {
        Connection {
            id,
            client: client.to_string(),
            server: server.to_string(),
            handshake,
            one_sided: None,
            syn_attempts,
            closed: CloseKind::Open,
            first_seen: ts,
            last_seen: ts,
            packets: 0,
            gap_bytes: [0, 0],
            retransmissions: 0,
            truncated_frames: 0,
            errors: Vec::new(),
            upgrade: None,
            upgraded_bytes: [0, 0],
            tls: None,
            tls_findings: Vec::new(),
            decryption: None,
            handshake_uncertain: None,
            exchanges: Vec::new(),
            timeline: Vec::new(),
        }
    }
}

impl Request {
    /// The request a head starts at `ts`: its start line and headers (moved, not copied), no body
    /// yet, not complete.
    pub fn from_head(head: Head, ts: Timestamp) -> Request {
        let content_type = head.header("content-type").map(str::to_string);
        let content_length = head
            .header("content-length")
            .and_then(|v| v.trim().parse().ok());
        Request {
            time: ts,
            end_time: ts,
            method: head.method.unwrap_or_default(),
            path: head.path.unwrap_or_default(),
            content_type,
            body_bytes: 0,
            content_length,
            complete: false,
            missing_bytes: 0,
            error: None,
            headers: head.headers,
        }
    }

    /// A request known only by when it began (a head that could not be read, a timeout before
    /// any head).
    pub fn begun(ts: Timestamp) -> Request {
        Request {
            time: ts,
            end_time: ts,
            ..Default::default()
        }
    }
}

impl Response {
    /// The final answer to `request`, begun at `time`. Latency counts from the request's last
    /// byte, and only when the request was complete (an early 413 has none).
    pub fn answering(
        request: &Request,
        time: Timestamp,
        status: u16,
        reason: String,
        headers: Vec<(String, String)>,
        interim: Vec<u16>,
    ) -> Response {
        let latency_ms = if request.complete {
            time.millis_since(request.end_time)
        } else {
            0.0
        };
        Response {
            time,
            status,
            reason,
            latency_ms,
            headers,
            interim,
            body_bytes: 0,
        }
    }
}

impl Exchange {
    /// Keep what the body decoder found: kind, hash, parts (and a note per bad picture), metadata, the event (summary for the
    /// report, tree for the detail view) and why there was none.
    pub fn apply_body(&mut self, d: DecodedBody) {
        self.body_kind = d.kind;
        self.body_hash = d.body_hash;
        self.parts = d.parts;
        // A cut or corrupt picture is a note of the exchange, whichever mode read it.
        self.notes.extend(ExchangeNote::pictures(&self.parts));
        self.metadata = d.metadata;
        self.event = d.event.as_ref().map(EventSummary::from);
        self.event_detail = d.event.map(Box::new);
        self.body_error = d.error;
        self.pending_event = d.pending.map(Box::new);
    }

    /// Decode the event the pipeline deferred ([`crate::isapi::BodyLimits::defer_event`]), if
    /// any: sets what [`Exchange::apply_body`] would have set at once.
    pub fn decode_event(&mut self) {
        if let Some(p) = self.pending_event.take() {
            let d = p.decode();
            self.metadata = d.metadata;
            self.event = d.event.as_ref().map(EventSummary::from);
            self.event_detail = d.event.map(Box::new);
            self.body_error = d.error;
        }
    }
}

/// A request whose body is being received: the exchange it belongs to and its body decoder.
/// Each mode keeps its own exchange list (the listener drops old ones), so every step takes the
/// exchange it resolved, or None when it is gone; the decoder is fed all the same.
pub struct RequestInFlight {
    /// Position of the exchange on its connection.
    pub index: usize,
    body: BodyDecoder,
}

impl RequestInFlight {
    /// The body of exchange `index`, decoded by its Content-Type.
    pub fn new(index: usize, content_type: Option<&str>, limits: BodyLimits) -> RequestInFlight {
        RequestInFlight {
            index,
            body: BodyDecoder::new(content_type, limits),
        }
    }

    /// Body bytes arrived at `ts`: decoded (parts to `sink`) and counted.
    pub fn feed(
        &mut self,
        ex: Option<&mut Exchange>,
        ts: Timestamp,
        data: &[u8],
        sink: Option<&mut dyn PartSink>,
    ) {
        self.body.feed(data, sink);
        if let Some(ex) = ex {
            ex.request.body_bytes = ex.request.body_bytes.saturating_add(data.len() as u64);
            ex.request.end_time = ts;
        }
    }

    /// `n` body bytes the capture lost: counted as body and as missing.
    pub fn missing(&mut self, ex: Option<&mut Exchange>, n: u64) {
        self.body.missing(n);
        // `n` comes from capture gaps (up to 1 GiB per ACK): saturate, never wrap.
        if let Some(ex) = ex {
            ex.request.body_bytes = ex.request.body_bytes.saturating_add(n);
            ex.request.missing_bytes = ex.request.missing_bytes.saturating_add(n);
        }
    }

    /// The body ended at `ts`: the request is complete.
    pub fn complete(&self, ex: Option<&mut Exchange>, ts: Timestamp) {
        if let Some(ex) = ex {
            ex.request.complete = true;
            ex.request.end_time = ts;
        }
    }

    /// No more body (ended, failed or abandoned): finish decoding and keep the result on the
    /// exchange.
    pub fn finish(self, ex: Option<&mut Exchange>, sink: Option<&mut dyn PartSink>) {
        let decoded = self.body.finish(sink);
        if let Some(ex) = ex {
            ex.apply_body(decoded);
        }
    }

    /// Finish decoding and hand the result back (the listener applies it once it has stored the
    /// event).
    pub fn finish_decoded(self, sink: Option<&mut dyn PartSink>) -> DecodedBody {
        self.body.finish(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> Head {
        Head {
            method: Some("POST".into()),
            path: Some("/alarm".into()),
            status: None,
            reason: None,
            version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            header_bytes: 0,
            ..Head::default()
        }
    }

    #[test]
    fn a_head_gives_the_request_its_type_and_length() {
        let r = Request::from_head(
            head(&[
                ("Content-Type", "application/xml"),
                ("content-length", " 42 "),
            ]),
            Timestamp(7),
        );
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/alarm"));
        assert_eq!(r.content_type.as_deref(), Some("application/xml"));
        assert_eq!(r.content_length, Some(42));
        assert_eq!(
            (r.time, r.end_time, r.complete),
            (Timestamp(7), Timestamp(7), false)
        );
        let bad = Request::from_head(head(&[("Content-Length", "12x")]), Timestamp(7));
        assert_eq!(bad.content_length, None);
    }

    #[test]
    fn a_body_in_flight_counts_and_decodes_into_its_exchange() {
        let xml = b"<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>";
        let mut ex = Exchange::started(0, Request::begun(Timestamp(1)));
        let mut f = RequestInFlight::new(0, Some("application/xml"), BodyLimits::default());
        let (a, b) = xml.split_at(20);
        f.feed(Some(&mut ex), Timestamp(2), a, None);
        f.feed(Some(&mut ex), Timestamp(3), b, None);
        f.missing(Some(&mut ex), 5);
        assert_eq!(ex.request.body_bytes, xml.len() as u64 + 5);
        assert_eq!(ex.request.missing_bytes, 5);
        assert_eq!(ex.request.end_time, Timestamp(3));
        f.complete(Some(&mut ex), Timestamp(4));
        assert!(ex.request.complete);
        f.finish(Some(&mut ex), None);
        assert_eq!(ex.body_kind, "xml");
        assert!(ex.event_detail.is_some());
    }

    #[test]
    fn latency_counts_only_for_a_complete_request() {
        let mut req = Request::begun(Timestamp(0));
        req.end_time = Timestamp(2_000_000);
        let early = Response::answering(
            &req,
            Timestamp(5_000_000),
            413,
            String::new(),
            vec![],
            vec![],
        );
        assert_eq!(early.latency_ms, 0.0);
        req.complete = true;
        let r = Response::answering(&req, Timestamp(5_000_000), 200, "OK".into(), vec![], vec![]);
        assert_eq!(r.latency_ms, 3.0);
    }
}
