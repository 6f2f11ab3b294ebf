//! Live diagnosis for `sniff` (and the listener's headless output): decides, as packets arrive,
//! when an exchange is worth reporting, when an unanswered request is judged `no_response`, when
//! that judgement is corrected, and when a device's stall starts and ends. Pure: connections and
//! the current capture time in, findings out.

use std::collections::{HashMap, HashSet};

use crate::model::{Connection, Exchange, ExchangeRef, Stall, Summary, Verdict};
use crate::time::Timestamp;

/// What the live diagnosis reports, in the order it learns it.
#[derive(Debug, Clone)]
pub enum Finding {
    /// An exchange was judged. `provisional`: the request has waited longer than the answer
    /// timeout on a connection still open (verdict `no_response` for now). `corrected`: an earlier
    /// provisional judgement turned out different (the answer came late). `conn` is the
    /// connection without its exchanges ([`Connection::header`]) and `exchange` what reports
    /// print ([`Exchange::reported`]: no event tree); a view wanting more keeps the connections.
    Exchange {
        conn: Box<Connection>,
        exchange: Box<Exchange>,
        provisional: bool,
        corrected: bool,
    },
    /// A connection failed its handshake (unanswered SYNs, refused).
    Handshake { conn: Box<Connection> },
    /// A TLS problem on a finished connection (HTTPS/HTTP mismatch, TLS handshake failure...).
    Tls {
        conn: Box<Connection>,
        finding: crate::tls::TlsFinding,
    },
    /// A device's stall ended (or was still running when the capture stopped: `open_ended`).
    Stall(Stall),
}

/// Live judgement of exchanges and stalls.
pub struct LiveDiagnoser {
    answer_timeout_nanos: i64,
    /// Exchanges reported provisionally, awaiting their final verdict.
    provisional: HashSet<ExchangeRef>,
    /// Per device: the stall running since a request without 200 OK.
    open_stalls: HashMap<String, Stall>,
    summary: Summary,
}

impl LiveDiagnoser {
    /// `answer_timeout_nanos`: how long a complete request may wait for its answer before it is
    /// reported as `no_response` while the connection is still open.
    pub fn new(answer_timeout_nanos: i64) -> Self {
        LiveDiagnoser {
            answer_timeout_nanos,
            provisional: HashSet::new(),
            open_stalls: HashMap::new(),
            summary: Summary::default(),
        }
    }

    /// Counts of final judgements so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Stalls still running (at most one per device).
    pub fn open_stalls(&self) -> usize {
        self.open_stalls.len()
    }

    /// Exchanges reported provisionally and not yet judged finally (all on open connections).
    pub fn provisional(&self) -> usize {
        self.provisional.len()
    }

    /// A connection is over: report each exchange's final verdict (once), the handshake failure,
    /// and the stalls they start or end.
    pub fn on_finished(&mut self, conn: &Connection, out: &mut Vec<Finding>) {
        self.summary.count_connection(conn);
        if conn.handshake.failed() {
            out.push(Finding::Handshake {
                conn: Box::new(header_only(conn)),
            });
        }
        for f in conn.tls_problems() {
            out.push(Finding::Tls {
                conn: Box::new(header_only(conn)),
                finding: f.clone(),
            });
        }
        for ex in &conn.exchanges {
            let r = ExchangeRef {
                connection: conn.id,
                index: ex.index,
            };
            let was_provisional = self.provisional.remove(&r);
            self.summary.count_request(ex.verdict);
            let corrected = was_provisional && ex.verdict != Verdict::NoResponse;
            if !was_provisional || corrected {
                self.request_seen(conn, ex, out);
                if ex.verdict.is_problem() && !ex.verdict.is_uncertain() {
                    self.start_stall(conn, ex, r);
                }
            }
            out.push(Finding::Exchange {
                conn: Box::new(header_only(conn)),
                exchange: Box::new(ex.reported()),
                provisional: false,
                corrected,
            });
        }
    }

    /// Periodic check at capture time `now` over the connections still open: requests that have
    /// waited past the timeout are reported `no_response`, and any new request from a stalled
    /// device ends its stall.
    pub fn on_tick<'a>(
        &mut self,
        now: Timestamp,
        open: impl IntoIterator<Item = &'a Connection>,
        out: &mut Vec<Finding>,
    ) {
        for conn in open {
            for ex in &conn.exchanges {
                let r = ExchangeRef {
                    connection: conn.id,
                    index: ex.index,
                };
                self.request_seen(conn, ex, out);
                if ex.response.is_none()
                    && ex.request.complete
                    && now.0.saturating_sub(ex.request.end_time.0) >= self.answer_timeout_nanos
                    && self.provisional.insert(r)
                {
                    let mut e = ex.reported();
                    e.verdict = Verdict::NoResponse;
                    self.start_stall(conn, &e, r);
                    out.push(Finding::Exchange {
                        conn: Box::new(header_only(conn)),
                        exchange: Box::new(e),
                        provisional: true,
                        corrected: false,
                    });
                }
            }
        }
    }

    /// The capture is over: stalls still running end at `end`.
    pub fn finish(&mut self, end: Timestamp, out: &mut Vec<Finding>) {
        let mut rest: Vec<Stall> = self.open_stalls.drain().map(|(_, s)| s).collect();
        rest.sort_by_key(|s| s.from);
        for mut s in rest {
            s.to = end.max(s.from);
            s.seconds = s.to.secs_since(s.from);
            s.open_ended = true;
            self.summary.stalls += 1;
            self.summary.stalled_seconds += s.seconds;
            out.push(Finding::Stall(s));
        }
    }

    /// A request from `conn`'s device: it ends that device's running stall if it came later.
    fn request_seen(&mut self, conn: &Connection, ex: &Exchange, out: &mut Vec<Finding>) {
        let device = conn.device();
        let ends = self.open_stalls.get(device).is_some_and(|s| {
            ex.request.time > s.from
                && s.exchange
                    != (ExchangeRef {
                        connection: conn.id,
                        index: ex.index,
                    })
        });
        if ends {
            if let Some(mut s) = self.open_stalls.remove(device) {
                s.to = ex.request.time;
                s.seconds = s.to.secs_since(s.from);
                self.summary.stalls += 1;
                self.summary.stalled_seconds += s.seconds;
                out.push(Finding::Stall(s));
            }
        }
    }

    fn start_stall(&mut self, conn: &Connection, ex: &Exchange, r: ExchangeRef) {
        let cause = match (&ex.response, ex.verdict) {
            (Some(resp), Verdict::ErrorStatus) => format!("error_status {}", resp.status),
            _ => ex.verdict.as_str().to_string(),
        };
        self.open_stalls
            .entry(conn.device().to_string())
            .or_insert(Stall {
                device: conn.device().to_string(),
                from: ex.request.time,
                to: ex.request.time,
                seconds: 0.0,
                cause,
                exchange: r,
                open_ended: false,
            });
    }
}

/// The connection without its exchanges (each finding carries only what it is about).
fn header_only(c: &Connection) -> Connection {
    c.header()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Request, Response};
    use crate::tcp::Handshake;

    fn conn(id: u64, client: &str, exchanges: Vec<Exchange>) -> Connection {
        let client = client
            .parse()
            .unwrap_or_else(|_| unreachable!("test address"));
        let server = ([10, 0, 0, 1], 8080).into();
        let mut c = Connection::opened(id, client, server, Handshake::Complete, 1, Timestamp(0));
        c.exchanges = exchanges;
        c
    }

    fn ex(t: i64, status: Option<u16>) -> Exchange {
        let time = Timestamp::from_nanos(t, 0);
        let mut e = Exchange::started(
            0,
            Request {
                time,
                end_time: time,
                method: "POST".into(),
                path: "/".into(),
                complete: true,
                ..Request::default()
            },
        );
        e.response = status.map(|s| Response {
            status: s,
            ..Response::default()
        });
        e.body_kind = "xml";
        e.verdict = crate::model::Verdict::of(&e);
        e
    }

    const SEC: i64 = 1_000_000_000;

    #[test]
    fn tls_problems_of_a_finished_connection_are_reported_and_counted() {
        let mut c = conn(7, "10.0.0.9:5000", Vec::new());
        c.tls_findings = vec![
            crate::tls::TlsFinding::HandshakeAlert {
                time: Timestamp(5),
                by: crate::tcp::Side::Client,
                level: Some(crate::tls::AlertLevel::FATAL),
                description: Some(crate::tls::AlertDescription::UNKNOWN_CA),
            },
            // A capture note: not a problem, not reported.
            crate::tls::TlsFinding::NotTls {
                time: Timestamp(6),
                dir: crate::tcp::Direction::ServerToClient,
                offset: 9,
                skipped: None,
            },
        ];
        let mut d = LiveDiagnoser::new(1);
        let mut out = Vec::new();
        d.on_finished(&c, &mut out);
        assert!(
            matches!(
                &out[..],
                [Finding::Tls {
                    finding: crate::tls::TlsFinding::HandshakeAlert { .. },
                    ..
                }]
            ),
            "{out:?}"
        );
        assert_eq!(
            (d.summary().tls_problems, d.summary().tls_handshake_failures),
            (1, 1)
        );
    }

    #[test]
    fn waiting_request_is_judged_after_the_timeout_then_corrected_when_answered_late() {
        let mut d = LiveDiagnoser::new(3 * SEC);
        let mut out = Vec::new();
        let waiting = conn(1, "10.0.0.5:5000", vec![ex(100, None)]);
        d.on_tick(
            Timestamp::from_nanos(102, 0),
            std::slice::from_ref(&waiting),
            &mut out,
        );
        assert!(out.is_empty(), "not yet past the timeout");
        d.on_tick(
            Timestamp::from_nanos(103, 0),
            std::slice::from_ref(&waiting),
            &mut out,
        );
        assert!(
            matches!(&out[..], [Finding::Exchange { provisional: true, exchange, .. }] if exchange.verdict == Verdict::NoResponse)
        );
        out.clear();
        d.on_tick(
            Timestamp::from_nanos(104, 0),
            std::slice::from_ref(&waiting),
            &mut out,
        );
        assert!(out.is_empty(), "reported once");
        // The answer came at last: final verdict ok, marked as a correction.
        let answered = conn(1, "10.0.0.5:5000", vec![ex(100, Some(200))]);
        d.on_finished(&answered, &mut out);
        assert!(
            matches!(&out[..], [Finding::Exchange { provisional: false, corrected: true, exchange, .. }] if exchange.verdict == Verdict::Ok)
        );
        assert_eq!(d.summary().ok, 1);
        assert_eq!(d.summary().requests, 1);
    }

    #[test]
    fn stall_runs_from_the_failed_request_to_the_next_one() {
        let mut d = LiveDiagnoser::new(3 * SEC);
        let mut out = Vec::new();
        d.on_finished(
            &conn(1, "10.0.0.5:5000", vec![ex(100, Some(503))]),
            &mut out,
        );
        assert_eq!(d.open_stalls(), 1);
        out.clear();
        // The device's next request appears (headers seen, still open) 7 s later.
        let next = conn(2, "10.0.0.5:5001", vec![ex(107, None)]);
        d.on_tick(
            Timestamp::from_nanos(107, 0),
            std::slice::from_ref(&next),
            &mut out,
        );
        let stall = out.iter().find_map(|f| match f {
            Finding::Stall(s) => Some(s.clone()),
            _ => None,
        });
        let stall = stall.expect("stall reported");
        assert_eq!(
            (stall.seconds, stall.cause.as_str(), stall.open_ended),
            (7.0, "error_status 503", false)
        );
        assert_eq!(d.open_stalls(), 0);
    }

    #[test]
    fn stall_still_running_at_the_end_is_open_ended() {
        let mut d = LiveDiagnoser::new(SEC);
        let mut out = Vec::new();
        let mut c = conn(1, "10.0.0.9:5000", vec![ex(10, None)]);
        c.handshake = Handshake::Complete;
        d.on_finished(&c, &mut out);
        out.clear();
        d.finish(Timestamp::from_nanos(25, 0), &mut out);
        match &out[..] {
            [Finding::Stall(s)] => assert_eq!((s.seconds, s.open_ended), (15.0, true)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn handshake_failures_are_reported() {
        let mut d = LiveDiagnoser::new(SEC);
        let mut out = Vec::new();
        let mut c = conn(1, "10.0.0.9:5000", vec![]);
        c.handshake = Handshake::Refused;
        d.on_finished(&c, &mut out);
        assert!(matches!(&out[..], [Finding::Handshake { .. }]));
        assert_eq!(d.summary().handshake_refused, 1);
    }
}
