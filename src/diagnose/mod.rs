//! Diagnosis: verdict counts, stalls, retries and per-device summaries over a set of connections.
//!
//! Pure: connections in, findings out. Run at the end of a replay, or again over the current
//! state for live views (it is O(n log n) in the number of exchanges).

mod explain;
pub mod live;

pub use explain::{explain_handshake, explain_tls_finding, explain_verdict, Explanation};

use std::collections::{BTreeMap, HashMap};

use crate::exchange::Counters;
use crate::model::{Connection, Device, ExchangeRef, Stall, Summary, Verdict};
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
    /// What the walk over items already folded away leaves for the rest of the time line.
    carry: Carry,
}

/// Bodies that did not get 200 OK yet (by body hash, and by metadata hash), each mapped to the
/// first exchange that sent it: a later request with the same body is a retry of that one.
#[derive(Default, Clone)]
struct Carry {
    unanswered: HashMap<u64, ExchangeRef>,
    unanswered_meta: HashMap<u64, ExchangeRef>,
}

/// Most bodies [`Carry`] remembers per device; beyond that it starts afresh (a device that fails
/// forever with ever new bodies must not grow it without end).
const MAX_UNANSWERED: usize = 10_000;

/// The diagnosis fed one finished connection at a time.
///
/// Why: a replay must not keep every exchange (headers, parts, decoded event) until the end just
/// to find stalls and retries, which need the whole per-device time line. The ledger keeps only
/// the ~64 bytes per request the time line needs plus per-device counters, so the headless
/// report can write each connection out as soon as it closes. [`diagnose`] is the same ledger run
/// over connections in memory (TUI, tests), so both give the same findings.
///
/// A listener runs for days, so [`Ledger::bounded`] also caps the time lines: past the cap, the
/// older half of each device's time line is walked at once (its stalls and retries are settled)
/// and dropped. Counts stay exact; only the listed stalls and retries are capped.
#[derive(Default)]
pub struct Ledger {
    devices: BTreeMap<String, DeviceAcc>,
    summary: Summary,
    last_seen: Option<Timestamp>,
    /// Most requests held on the time lines (0: no cap).
    max_items: usize,
    items: usize,
    /// Fold when `items` passes `max_items`, or this when more: twice what the last fold left
    /// when that was over 3/4 of the cap (many devices with a request or two each leave little to
    /// fold, and folding again at once would free nothing).
    fold_at: usize,
    /// Stalls and retries found in time lines already folded away (newest kept, see
    /// `max_items`).
    settled_stalls: Vec<Stall>,
    settled_retries: Retries,
    /// List every settled stall and retry (a report lists them all; see [`Ledger::folding`]).
    list_all: bool,
}

/// What [`Ledger::finish`] found besides the [`Findings`]: each retry and the exchange it repeats.
pub type Retries = Vec<(ExchangeRef, ExchangeRef)>;

impl Ledger {
    /// A ledger holding at most `max_items` requests on its time lines (at ~64 bytes each),
    /// and listing at most `max_items / 8` settled stalls and as many retries.
    pub fn bounded(max_items: usize) -> Self {
        Ledger {
            max_items: max_items.max(2),
            ..Ledger::default()
        }
    }

    /// A ledger that folds its time lines past `max_items` requests like [`Ledger::bounded`] but
    /// lists every stall and retry: what a report needs, whose lists are its output (they grow
    /// with the problems, not with the requests).
    pub fn folding(max_items: usize) -> Self {
        Ledger {
            list_all: true,
            ..Ledger::bounded(max_items)
        }
    }

    /// Take in one finished connection (its exchanges' verdicts are final).
    pub fn add(&mut self, c: &Connection) {
        let s = &mut self.summary;
        s.count_connection(c);
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
                    carry: Carry::default(),
                }),
        };
        let d = &mut acc.device;
        d.connections += 1;
        d.first_seen = d.first_seen.min(c.first_seen);
        d.last_seen = d.last_seen.max(c.last_seen);
        if c.handshake.failed() {
            d.handshake_failures += 1;
        }
        d.tls_problems += c.tls_problems().count() as u64;
        for ex in &c.exchanges {
            s.count_request(ex.verdict);
            d.events += 1;
            if ex.verdict == Verdict::Ok {
                d.ok += 1;
            } else if ex.verdict == Verdict::EncryptedAnswered {
                d.encrypted_answered += 1;
            } else if !ex.verdict.is_uncertain() {
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
                // An encrypted body cannot be compared (no hash): never taken for a retry.
                has_body: ex.request.body_bytes > 0 && ex.encrypted.is_none(),
                metadata_key: ex.metadata.as_deref().map(hash_str),
            });
            self.items += 1;
        }
        if self.max_items > 0 && self.items > self.fold_at.max(self.max_items) {
            self.fold();
        }
    }

    /// Walk and drop the older half of every device's time line (see [`Ledger::bounded`]).
    fn fold(&mut self) {
        let mut held = 0;
        for (name, acc) in self.devices.iter_mut() {
            acc.items.sort_by_key(|i| (i.time, i.at));
            let cut = acc.items.len() / 2;
            if let Some(next) = acc.items.get(cut).map(|i| i.time) {
                let (old, _) = acc.items.split_at(cut);
                walk(
                    name,
                    old,
                    Some(next),
                    None,
                    &mut acc.carry,
                    &mut acc.device,
                    &mut self.settled_stalls,
                    &mut self.settled_retries,
                );
                acc.items.drain(..cut);
            }
            held += acc.items.len();
        }
        self.items = held;
        self.fold_at = if held > self.max_items / 4 * 3 {
            held.saturating_mul(2)
        } else {
            0
        };
        let keep = if self.list_all {
            usize::MAX
        } else {
            self.max_items / 8
        };
        if self.settled_stalls.len() > keep {
            let drop = self.settled_stalls.len() - keep;
            self.settled_stalls.drain(..drop);
        }
        if self.settled_retries.len() > keep {
            let drop = self.settled_retries.len() - keep;
            self.settled_retries.drain(..drop);
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
        mut self,
        counters: &Counters,
        capture_end: Option<Timestamp>,
    ) -> (Findings, Retries) {
        self.snapshot(counters, capture_end)
    }

    /// The findings over what was added so far, keeping the ledger to add more: what
    /// [`Ledger::finish`] would give now.
    ///
    /// Why: a view that shows findings while connections still arrive (the TUI) adds each
    /// connection once and asks again now and then, instead of diagnosing every connection anew
    /// each time. `&mut` only to keep the time lines sorted between calls (they arrive nearly in
    /// order, so sorting again is cheap); the walk runs on copies of the per-device state.
    pub fn snapshot(
        &mut self,
        counters: &Counters,
        capture_end: Option<Timestamp>,
    ) -> (Findings, Retries) {
        let end = capture_end.or(self.last_seen);
        let mut stalls = self.settled_stalls.clone();
        let mut retries = self.settled_retries.clone();
        let mut devices = Vec::with_capacity(self.devices.len());
        for (name, acc) in self.devices.iter_mut() {
            if !acc.items.is_sorted_by_key(|i| (i.time, i.at)) {
                acc.items.sort_by_key(|i| (i.time, i.at));
            }
            let mut carry = acc.carry.clone();
            let mut d = acc.device.clone();
            walk(
                name,
                &acc.items,
                None,
                end,
                &mut carry,
                &mut d,
                &mut stalls,
                &mut retries,
            );
            let mut t: Vec<(String, u64)> =
                acc.types.iter().map(|(k, v)| (k.clone(), *v)).collect();
            t.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            d.event_types = t;
            devices.push(d);
        }
        stalls.sort_by(|a, b| (a.from, &a.device).cmp(&(b.from, &b.device)));

        let mut summary = Summary {
            // From the devices: the lists may be capped (see `Ledger::bounded`), the counts not.
            stalls: devices.iter().map(|d| d.stalls).sum(),
            stalled_seconds: devices.iter().fold(0.0, |a, d| a + d.stalled_seconds),
            retries: devices.iter().map(|d| d.retries).sum(),
            ..self.summary.clone()
        };
        summary.set_counters(counters);
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

/// Walk one device's time line `items` (sorted by time): each request that repeats a body
/// still unanswered is a retry; each problem request starts a stall that lasts until the next
/// request (`next` after the last item, or else `end`: open ended). Counts go to `d`.
#[allow(clippy::too_many_arguments)] // one walk, two callers: the parts are the ledger's fields
fn walk(
    name: &str,
    items: &[Item],
    next: Option<Timestamp>,
    end: Option<Timestamp>,
    carry: &mut Carry,
    d: &mut Device,
    stalls: &mut Vec<Stall>,
    retries: &mut Retries,
) {
    for (k, it) in items.iter().enumerate() {
        let of = carry
            .unanswered
            .get(&it.hash)
            .filter(|_| it.has_body)
            .or_else(|| it.metadata_key.and_then(|m| carry.unanswered_meta.get(&m)))
            .copied();
        if let Some(of) = of {
            retries.push((it.at, of));
            d.retries += 1;
        }
        // An answer not captured (one-sided capture) came: it starts no stall.
        if it.verdict.is_problem() && !it.verdict.is_uncertain() {
            if carry.unanswered.len() >= MAX_UNANSWERED {
                carry.unanswered.clear();
            }
            if carry.unanswered_meta.len() >= MAX_UNANSWERED {
                carry.unanswered_meta.clear();
            }
            if it.has_body {
                carry
                    .unanswered
                    .entry(it.hash)
                    .or_insert(of.unwrap_or(it.at));
            }
            if let Some(m) = it.metadata_key {
                carry
                    .unanswered_meta
                    .entry(m)
                    .or_insert(of.unwrap_or(it.at));
            }
            let (to, open_ended) = match items.get(k + 1).map(|n| n.time).or(next) {
                Some(t) => (t, false),
                None => (end.unwrap_or(it.time).max(it.time), true),
            };
            let cause = match it.status {
                Some(s) if it.verdict == Verdict::ErrorStatus => format!("error_status {s}"),
                _ => it.verdict.as_str().to_string(),
            };
            let seconds = to.secs_since(it.time);
            d.stalls += 1;
            d.stalled_seconds += seconds;
            stalls.push(Stall {
                device: name.to_string(),
                from: it.time,
                to,
                seconds,
                cause,
                exchange: it.at,
                open_ended,
            });
        } else {
            // Answered: a later identical body is a new event, not a retry.
            carry.unanswered.remove(&it.hash);
            if let Some(m) = it.metadata_key {
                carry.unanswered_meta.remove(&m);
            }
        }
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
    // xxh3: deterministic across runs (unlike the std hasher's random keys), and fast on the
    // kilobytes of an event's text.
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Exchange, Request, Response};
    use crate::tcp::Handshake;

    fn conn(id: u64, client: &str, handshake: Handshake, exchanges: Vec<Exchange>) -> Connection {
        let client = client
            .parse()
            .unwrap_or_else(|_| unreachable!("test address"));
        let server = ([10, 0, 0, 1], 8080).into();
        let first = exchanges.first().map(|e| e.request.time);
        let mut c = Connection::opened(id, client, server, handshake, 1, first.unwrap_or_default());
        c.last_seen = exchanges
            .last()
            .map(|e| e.request.end_time)
            .unwrap_or_default();
        c.exchanges = exchanges;
        c
    }

    fn ex(index: usize, t_secs: i64, status: Option<u16>, hash: u64) -> Exchange {
        let time = Timestamp::from_nanos(t_secs, 0);
        let mut e = Exchange::started(
            index,
            Request {
                time,
                end_time: time,
                method: "POST".into(),
                path: "/alarm".into(),
                body_bytes: 100,
                complete: true,
                ..Request::default()
            },
        );
        e.response = status.map(|s| Response {
            status: s,
            time,
            ..Response::default()
        });
        e.body_kind = "xml";
        e.body_hash = hash;
        e.verdict = crate::model::Verdict::of(&e);
        e
    }

    /// A snapshot taken while connections still arrive (out of time order here) is what
    /// finishing a ledger of the same connections gives, and taking it changes nothing later:
    /// the ledger then finishes as one that never took a snapshot.
    #[test]
    fn snapshot_is_finish_so_far() {
        let mk = |i: u64| {
            let device = ["10.0.0.5:1", "10.0.0.6:1"][((i / 2) % 2) as usize];
            let status = if i % 5 == 2 { None } else { Some(200) };
            // Request i + 4 (same device, later) repeats the body of a failed one: a retry.
            let hash = if i >= 4 && (i - 4) % 5 == 2 {
                100 + i - 4
            } else {
                100 + i
            };
            // Pairs of one device arrive swapped: (1, 0), (3, 2)...
            let t = 1_000 + i64::try_from(i ^ 1).unwrap() * 3;
            conn(i, device, Handshake::Complete, vec![ex(0, t, status, hash)])
        };
        // The same connections in time order: what the walk must see.
        let in_order = |n: u64| {
            let mut v: Vec<Connection> = (0..n).map(mk).collect();
            v.sort_by_key(|c| c.first_seen);
            v
        };
        let c = Counters::default();
        let mut live = Ledger::default();
        for i in 0..40u64 {
            live.add(&mk(i));
            if i % 13 == 12 {
                let mut so_far = Ledger::default();
                for c in in_order(i + 1) {
                    so_far.add(&c);
                }
                let now = live.snapshot(&c, None);
                let want = so_far.finish(&c, None);
                assert_eq!(format!("{now:?}"), format!("{want:?}"), "after {i}");
                assert!(!now.0.stalls.is_empty() && !now.1.is_empty());
            }
        }
        let mut plain = Ledger::default();
        for c in in_order(40) {
            plain.add(&c);
        }
        let (a, b) = (live.finish(&c, None), plain.finish(&c, None));
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    /// A bounded ledger folds its time lines away as it goes, and still counts every stall and
    /// retry as the unbounded one does, including those that straddle a fold; its lists keep
    /// only stalls the full diagnosis also found.
    #[test]
    fn bounded_ledger_counts_what_the_full_one_counts() {
        let mut conns = Vec::new();
        for i in 0..3000u64 {
            let device = ["10.0.0.5:1", "10.0.0.6:1", "10.0.0.7:1"][(i % 3) as usize];
            let n = i / 3;
            // Every 7th request is not answered, every 11th gets 503; the request after a
            // failed one repeats its body (a retry), others are new bodies.
            let status = match n {
                n if n % 7 == 3 => None,
                n if n % 11 == 5 => Some(503),
                _ => Some(200),
            };
            let prev_failed = n % 7 == 4 || n % 11 == 6;
            let hash = if prev_failed {
                1_000_000 + n - 1
            } else {
                1_000_000 + n
            };
            let t = 1_000 + i64::try_from(i).unwrap() * 2;
            conns.push(conn(
                i,
                device,
                Handshake::Complete,
                vec![ex(0, t, status, hash)],
            ));
        }
        let mut full = Ledger::default();
        let mut bounded = Ledger::bounded(100);
        for c in &conns {
            full.add(c);
            bounded.add(c);
            assert!(bounded.items <= 100, "held {}", bounded.items);
        }
        let c = Counters::default();
        let (f, fr) = full.finish(&c, None);
        let (b, br) = bounded.finish(&c, None);
        assert!(
            f.summary.stalls > 500 && f.summary.retries > 400,
            "{:?}",
            f.summary
        );
        assert_eq!(b.summary.stalls, f.summary.stalls);
        assert_eq!(b.summary.retries, f.summary.retries);
        assert_eq!(b.summary.requests, 3000);
        assert!((b.summary.stalled_seconds - f.summary.stalled_seconds).abs() < 1e-6);
        for (bd, fd) in b.devices.iter().zip(&f.devices) {
            assert_eq!(
                (&bd.device, bd.events, bd.stalls, bd.retries),
                (&fd.device, fd.events, fd.stalls, fd.retries)
            );
            assert!((bd.stalled_seconds - fd.stalled_seconds).abs() < 1e-6);
        }
        assert!(
            b.stalls.len() < 100 && br.len() < 100,
            "{} {}",
            b.stalls.len(),
            br.len()
        );
        for st in &b.stalls {
            assert!(
                f.stalls.iter().any(|x| x.exchange == st.exchange
                    && x.to == st.to
                    && x.cause == st.cause
                    && x.open_ended == st.open_ended),
                "{st:?}"
            );
        }
        for r in &br {
            assert!(fr.contains(r), "{r:?}");
        }
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

    /// An exchange inferred from TLS records, answered or not.
    fn encrypted(t_secs: i64, answered: bool) -> Exchange {
        let time = Timestamp::from_nanos(t_secs, 0);
        Exchange::encrypted(crate::tls::TlsExchange {
            index: 0,
            time,
            end_time: time,
            request_records: 1,
            request_bytes: 700,
            response: answered.then_some(crate::tls::TlsResponse {
                time,
                end_time: time,
                records: 1,
                bytes: 160,
                latency_ms: 1.0,
            }),
            encrypted: true,
            uncertain: None,
        })
    }

    #[test]
    fn encrypted_exchanges_count_apart_stall_when_unanswered_and_are_never_retries() {
        let mut conns = vec![
            conn(
                1,
                "10.0.0.9:5000",
                Handshake::Complete,
                vec![encrypted(1, false)],
            ),
            conn(
                2,
                "10.0.0.9:5001",
                Handshake::Complete,
                vec![encrypted(3, false)],
            ),
            conn(
                3,
                "10.0.0.9:5002",
                Handshake::Complete,
                vec![encrypted(6, true)],
            ),
        ];
        let f = diagnose(&mut conns, &Counters::default(), None);
        // Same ciphertext size, no hash: not a retry.
        assert_eq!(conns[1].exchanges[0].retry_of, None);
        assert_eq!(f.summary.retries, 0);
        // Each unanswered one stalls until the next attempt; the answered one does not.
        assert_eq!(f.stalls.len(), 2);
        assert_eq!(
            (
                f.summary.no_response,
                f.summary.encrypted_answered,
                f.summary.ok
            ),
            (2, 1, 0)
        );
        let d = &f.devices[0];
        assert_eq!((d.ok, d.encrypted_answered, d.failures), (0, 1, 2));
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
