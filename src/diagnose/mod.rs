//! Diagnosis: verdict counts, stalls, retries and per-device summaries over a set of connections.
//!
//! Pure: connections in, findings out. Run at the end of a replay, or again over the current
//! state for live views (it is O(n log n) in the number of exchanges).

mod explain;
pub mod live;

pub use explain::{explain_handshake, explain_verdict, Explanation};

use std::collections::{BTreeMap, HashMap};

use crate::model::{Connection, Device, ExchangeRef, Stall, Summary, Verdict};
use crate::pipeline::Counters;
use crate::tcp::Handshake;
use crate::time::Timestamp;

/// What the diagnosis adds to the connections.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub stalls: Vec<Stall>,
    pub devices: Vec<Device>,
    pub summary: Summary,
}

/// One request, flattened for the per-device time line (~64 bytes: what stalls and retries need).
struct Item {
    at: ExchangeRef,
    time: Timestamp,
    verdict: Verdict,
    status: Option<u16>,
    hash: u64,
    has_body: bool,
    metadata_key: Option<u64>,
}

/// A device's counters while connections come in, with its time line.
struct DeviceAcc {
    device: Device,
    types: HashMap<String, u64>,
    items: Vec<Item>,
}

/// The diagnosis fed one finished connection at a time.
///
/// Why: a replay must not keep every exchange (headers, parts, decoded event) until the end just
/// to find stalls and retries, which need the whole per-device time line. The ledger keeps only
/// the ~64 bytes per request the time line needs plus per-device counters, so the headless
/// report can write each connection out as soon as it closes. [`diagnose`] is the same ledger run
/// over connections in memory (TUI, tests), so both give the same findings.
#[derive(Default)]
pub struct Ledger {
    devices: BTreeMap<String, DeviceAcc>,
    summary: Summary,
    last_seen: Option<Timestamp>,
}

/// What [`Ledger::finish`] found besides the [`Findings`]: each retry and the exchange it repeats.
pub type Retries = Vec<(ExchangeRef, ExchangeRef)>;

impl Ledger {
    /// Take in one finished connection (its exchanges' verdicts are final).
    pub fn add(&mut self, c: &Connection) {
        let s = &mut self.summary;
        s.connections += 1;
        s.capture_gap_bytes = s
            .capture_gap_bytes
            .saturating_add(c.gap_bytes[0].saturating_add(c.gap_bytes[1]));
        match c.handshake {
            Handshake::Unanswered => {
                s.handshake_failures += 1;
                s.handshake_unanswered += 1;
            }
            Handshake::Refused => {
                s.handshake_failures += 1;
                s.handshake_refused += 1;
            }
            _ => {}
        }
        self.last_seen = Some(self.last_seen.map_or(c.last_seen, |t| t.max(c.last_seen)));

        let acc = match self.devices.get_mut(c.device()) {
            Some(a) => a,
            None => self
                .devices
                .entry(c.device().to_string())
                .or_insert_with(|| DeviceAcc {
                    device: Device {
                        device: c.device().to_string(),
                        first_seen: c.first_seen,
                        last_seen: c.last_seen,
                        ..Device::default()
                    },
                    types: HashMap::new(),
                    items: Vec::new(),
                }),
        };
        let d = &mut acc.device;
        d.connections += 1;
        d.first_seen = d.first_seen.min(c.first_seen);
        d.last_seen = d.last_seen.max(c.last_seen);
        if c.handshake.failed() {
            d.handshake_failures += 1;
        }
        for ex in &c.exchanges {
            s.requests += 1;
            match ex.verdict {
                Verdict::Ok => s.ok += 1,
                Verdict::ErrorStatus => s.error_status += 1,
                Verdict::NoResponse => s.no_response += 1,
                Verdict::Incomplete => s.incomplete += 1,
            }
            d.events += 1;
            if ex.verdict == Verdict::Ok {
                d.ok += 1;
            } else {
                d.failures += 1;
            }
            if let Some(ev) = &ex.event {
                if let Some(t) = &ev.event_type {
                    match acc.types.get_mut(t) {
                        Some(n) => *n += 1,
                        None => {
                            acc.types.insert(t.clone(), 1);
                        }
                    }
                }
                if d.mac.is_none() {
                    d.mac = ev.mac.clone();
                }
            }
            acc.items.push(Item {
                at: ExchangeRef {
                    connection: c.id,
                    index: ex.index,
                },
                time: ex.request.time,
                verdict: ex.verdict,
                status: ex.response.as_ref().map(|r| r.status),
                hash: ex.body_hash,
                has_body: ex.request.body_bytes > 0,
                metadata_key: ex.metadata.as_deref().map(hash_str),
            });
        }
    }

    /// Requests taken in so far.
    pub fn requests(&self) -> u64 {
        self.summary.requests
    }

    /// Walk every device's time line: stalls, retries, device summaries and the capture summary.
    /// `capture_end` is the last packet's time (stalls still running then end there; without it,
    /// the last time any connection was seen).
    pub fn finish(
        self,
        counters: &Counters,
        capture_end: Option<Timestamp>,
    ) -> (Findings, Retries) {
        let end = capture_end.or(self.last_seen);
        let mut stalls = Vec::new();
        let mut retries: Retries = Vec::new();
        let mut devices = Vec::with_capacity(self.devices.len());
        for (name, mut acc) in self.devices {
            let items = &mut acc.items;
            items.sort_by_key(|i| (i.time, i.at));
            let first_stall = stalls.len();
            let mut device_retries = 0u64;
            // Bodies of requests that did not get 200 OK, by hash -> the first such exchange.
            let mut unanswered: HashMap<u64, ExchangeRef> = HashMap::new();
            let mut unanswered_meta: HashMap<u64, ExchangeRef> = HashMap::new();
            for (k, it) in items.iter().enumerate() {
                let of = unanswered
                    .get(&it.hash)
                    .filter(|_| it.has_body)
                    .or_else(|| it.metadata_key.and_then(|m| unanswered_meta.get(&m)))
                    .copied();
                if let Some(of) = of {
                    retries.push((it.at, of));
                    device_retries += 1;
                }
                if it.verdict.is_problem() {
                    if it.has_body {
                        unanswered.entry(it.hash).or_insert(of.unwrap_or(it.at));
                    }
                    if let Some(m) = it.metadata_key {
                        unanswered_meta.entry(m).or_insert(of.unwrap_or(it.at));
                    }
                    let next = items.get(k + 1).map(|n| n.time);
                    let (to, open_ended) = match next {
                        Some(t) => (t, false),
                        None => (end.unwrap_or(it.time).max(it.time), true),
                    };
                    let cause = match it.status {
                        Some(s) if it.verdict == Verdict::ErrorStatus => {
                            format!("error_status {s}")
                        }
                        _ => it.verdict.as_str().to_string(),
                    };
                    stalls.push(Stall {
                        device: name.clone(),
                        from: it.time,
                        to,
                        seconds: to.secs_since(it.time),
                        cause,
                        exchange: it.at,
                        open_ended,
                    });
                } else {
                    // Answered: a later identical body is a new event, not a retry.
                    unanswered.remove(&it.hash);
                    if let Some(m) = it.metadata_key {
                        unanswered_meta.remove(&m);
                    }
                }
            }
            let mut d = acc.device;
            d.retries = device_retries;
            for st in stalls.get(first_stall..).unwrap_or_default() {
                d.stalls += 1;
                d.stalled_seconds += st.seconds;
            }
            let mut t: Vec<(String, u64)> = acc.types.into_iter().collect();
            t.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            d.event_types = t;
            devices.push(d);
        }
        stalls.sort_by(|a, b| (a.from, &a.device).cmp(&(b.from, &b.device)));

        let summary = Summary {
            packets: counters.packets,
            tcp_packets: counters.tcp_packets,
            non_tcp_packets: counters.non_tcp_packets,
            undecodable_frames: counters.undecodable_frames,
            truncated_frames: counters.truncated_frames,
            first_packet: counters.first_packet,
            last_packet: counters.last_packet,
            connections_evicted: counters.connections_evicted,
            connections_expired: counters.connections_expired,
            peak_open_connections: counters.peak_open_connections,
            stalls: stalls.len() as u64,
            stalled_seconds: stalls.iter().fold(0.0, |a, s| a + s.seconds),
            retries: retries.len() as u64,
            ..self.summary
        };
        (
            Findings {
                stalls,
                devices,
                summary,
            },
            retries,
        )
    }
}

/// Diagnose `conns`: fills in each exchange's `retry_of`, and returns stalls, devices and the
/// summary. `capture_end` is the last packet's time (stalls still running then end there).
pub fn diagnose(
    conns: &mut [Connection],
    counters: &Counters,
    capture_end: Option<Timestamp>,
) -> Findings {
    let mut ledger = Ledger::default();
    for c in conns.iter() {
        ledger.add(c);
    }
    let (findings, retries) = ledger.finish(counters, capture_end);
    apply_retries(conns, retries);
    findings
}

/// Set `retry_of` on the exchanges of `conns` that [`Ledger::finish`] found to be retries
/// (retries on connections not in `conns` are skipped).
pub fn apply_retries(conns: &mut [Connection], retries: Retries) {
    if retries.is_empty() {
        return;
    }
    let pos: HashMap<u64, usize> = conns.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    for (at, of) in retries {
        if let Some(ex) = pos
            .get(&at.connection)
            .and_then(|&i| conns.get_mut(i))
            .and_then(|c| c.exchanges.get_mut(at.index))
        {
            ex.retry_of = Some(of);
        }
    }
}

fn hash_str(s: &str) -> u64 {
    // FNV-1a: deterministic across runs, unlike the std hasher's random keys.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exchange, Request, Response};
    use crate::tcp::CloseKind;

    fn conn(id: u64, client: &str, handshake: Handshake, exchanges: Vec<Exchange>) -> Connection {
        Connection {
            id,
            client: client.into(),
            server: "10.0.0.1:8080".into(),
            handshake,
            syn_attempts: 1,
            closed: CloseKind::Open,
            first_seen: exchanges
                .first()
                .map(|e| e.request.time)
                .unwrap_or_default(),
            last_seen: exchanges
                .last()
                .map(|e| e.request.end_time)
                .unwrap_or_default(),
            packets: 0,
            gap_bytes: [0, 0],
            retransmissions: 0,
            truncated_frames: 0,
            errors: vec![],
            exchanges,
            timeline: vec![],
        }
    }

    fn ex(index: usize, t_secs: i64, status: Option<u16>, hash: u64) -> Exchange {
        let time = Timestamp::from_nanos(t_secs, 0);
        let mut e = Exchange {
            index,
            request: Request {
                time,
                end_time: time,
                method: "POST".into(),
                path: "/alarm".into(),
                body_bytes: 100,
                complete: true,
                ..Request::default()
            },
            response: status.map(|s| Response {
                status: s,
                time,
                ..Response::default()
            }),
            verdict: Verdict::Ok,
            event: None,
            parts: vec![],
            retry_of: None,
            injected_fault: None,
            body_kind: "xml",
            body_error: None,
            body_hash: hash,
            metadata: None,
            event_detail: None,
        };
        e.verdict = crate::pipeline::final_verdict(&e);
        e
    }

    #[test]
    fn unanswered_request_stalls_until_next_request_and_retry_is_linked() {
        let mut conns = vec![
            conn(
                1,
                "10.0.0.5:5000",
                Handshake::Complete,
                vec![ex(0, 100, Some(200), 1)],
            ),
            conn(
                2,
                "10.0.0.5:5001",
                Handshake::Complete,
                vec![ex(0, 110, None, 2)],
            ),
            // retry of the same body 5 s later, answered
            conn(
                3,
                "10.0.0.5:5002",
                Handshake::Complete,
                vec![ex(0, 115, Some(200), 2)],
            ),
            conn(
                4,
                "10.0.0.5:5003",
                Handshake::Complete,
                vec![ex(0, 116, Some(200), 3)],
            ),
            // another device with a 503 at the end of the capture
            conn(
                5,
                "10.0.0.6:6000",
                Handshake::Complete,
                vec![ex(0, 112, Some(503), 9)],
            ),
            conn(6, "10.0.0.7:6000", Handshake::Unanswered, vec![]),
        ];
        let f = diagnose(
            &mut conns,
            &Counters::default(),
            Some(Timestamp::from_nanos(120, 0)),
        );
        assert_eq!(f.stalls.len(), 2);
        let s = &f.stalls[0];
        assert_eq!(
            (s.device.as_str(), s.seconds, s.open_ended),
            ("10.0.0.5", 5.0, false)
        );
        assert_eq!(s.cause, "no_response");
        let s = &f.stalls[1];
        assert_eq!(
            (s.device.as_str(), s.seconds, s.open_ended),
            ("10.0.0.6", 8.0, true)
        );
        assert_eq!(s.cause, "error_status 503");
        assert_eq!(
            conns[2].exchanges[0].retry_of,
            Some(ExchangeRef {
                connection: 2,
                index: 0
            })
        );
        assert_eq!(conns[3].exchanges[0].retry_of, None);
        assert_eq!(conns[0].exchanges[0].retry_of, None);
        assert_eq!(f.summary.requests, 5);
        assert_eq!(
            (f.summary.ok, f.summary.no_response, f.summary.error_status),
            (3, 1, 1)
        );
        assert_eq!(
            (f.summary.handshake_failures, f.summary.handshake_unanswered),
            (1, 1)
        );
        assert_eq!(f.summary.retries, 1);
        let d5 = f.devices.iter().find(|d| d.device == "10.0.0.5").unwrap();
        assert_eq!(
            (d5.events, d5.ok, d5.failures, d5.stalls, d5.retries),
            (4, 3, 1, 1, 1)
        );
        let d7 = f.devices.iter().find(|d| d.device == "10.0.0.7").unwrap();
        assert_eq!((d7.events, d7.handshake_failures), (0, 1));
    }

    #[test]
    fn identical_body_after_an_answered_one_is_not_a_retry() {
        let mut conns = vec![
            conn(
                1,
                "[fd00::10]:5000",
                Handshake::Complete,
                vec![ex(0, 1, Some(200), 7)],
            ),
            conn(
                2,
                "[fd00::10]:5001",
                Handshake::Complete,
                vec![ex(0, 2, Some(200), 7)],
            ),
        ];
        let f = diagnose(&mut conns, &Counters::default(), None);
        assert!(f.stalls.is_empty());
        assert_eq!(conns[1].exchanges[0].retry_of, None);
        assert_eq!(f.devices.len(), 1);
        assert_eq!(f.devices[0].device, "fd00::10");
    }

    #[test]
    fn consecutive_failures_each_stall_until_the_next_attempt() {
        let mut conns = vec![conn(
            1,
            "10.0.0.5:5000",
            Handshake::Complete,
            vec![
                ex(0, 10, Some(500), 1),
                ex(1, 13, Some(500), 1),
                ex(2, 20, Some(200), 1),
            ],
        )];
        let f = diagnose(&mut conns, &Counters::default(), None);
        let secs: Vec<f64> = f.stalls.iter().map(|s| s.seconds).collect();
        assert_eq!(secs, vec![3.0, 7.0]);
        // both later sends repeat the first failed body
        let first = Some(ExchangeRef {
            connection: 1,
            index: 0,
        });
        assert_eq!(conns[0].exchanges[1].retry_of, first);
        assert_eq!(conns[0].exchanges[2].retry_of, first);
    }
}
