//! The readable summary printed by `--text`: per device, per problem, each with a one-line
//! explanation of what it means for the engineer.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::diagnose::{apply_retries, explain_handshake, explain_verdict, Ledger};
use crate::model::{Connection, ExchangeRef, Report, Verdict};
use crate::pipeline::Counters;
use crate::time::Timestamp;

/// Problems listed in full before the rest are only counted.
const MAX_PROBLEMS_LISTED: usize = 50;

/// Render the text report.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let s = &r.summary;
    let _ = writeln!(o, "alarmscope report: {}", r.source);
    if let (Some(a), Some(b)) = (s.first_packet, s.last_packet) {
        let _ = writeln!(
            o,
            "capture: {} .. {} UTC ({:.1} s), {} packets ({} TCP)",
            a.to_utc_string(),
            b.to_utc_string(),
            b.secs_since(a),
            s.packets,
            s.tcp_packets
        );
    } else {
        let _ = writeln!(o, "capture: {} packets", s.packets);
    }
    let _ = write!(
        o,
        "connections: {}   requests: {}   ok: {}   error_status: {}   no_response: {}   incomplete: {}",
        s.connections, s.requests, s.ok, s.error_status, s.no_response, s.incomplete
    );
    // Shown only when there are some, so the line stays as it was for the usual capture.
    for v in [Verdict::NotCaptured, Verdict::MalformedResponse] {
        if s.verdict_count(v) > 0 {
            let _ = write!(o, "   {}: {}", v.as_str(), s.verdict_count(v));
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "handshake failures: {} (unanswered {}, refused {})   stalls: {} ({:.1} s)   retries: {}",
        s.handshake_failures,
        s.handshake_unanswered,
        s.handshake_refused,
        s.stalls,
        s.stalled_seconds,
        s.retries
    );
    if s.capture_gap_bytes > 0 || s.truncated_frames > 0 || s.undecodable_frames > 0 {
        let _ = writeln!(
            o,
            "capture quality: {} bytes missing (capture gaps), {} frames cut by snap length, {} undecodable frames",
            s.capture_gap_bytes, s.truncated_frames, s.undecodable_frames
        );
    }
    if s.connections_evicted > 0 || s.connections_expired > 0 {
        let _ = writeln!(
            o,
            "connection table: {} closed early because the table was full (peak {} open), {} closed after the idle timeout; their last requests may be judged on partial data",
            s.connections_evicted, s.peak_open_connections, s.connections_expired
        );
    }
    if s.requests == 0 && s.handshake_failures == 0 {
        let _ = writeln!(
            o,
            "\nNo HTTP request and no connection attempt to an alarm server in this capture. The \
             commonest reasons: the event is not linked to \"notify surveillance center\" or not \
             armed by schedule on the device, the device's httpHosts points elsewhere (or uses \
             HTTPS when the server speaks HTTP), or the capture was taken where the traffic does \
             not pass."
        );
    }

    if !r.devices.is_empty() {
        let _ = writeln!(o, "\nDEVICES");
        let _ = writeln!(
            o,
            "{:<40} {:>6} {:>6} {:>6} {:>5} {:>7} {:>6}  {:<12} event types",
            "device", "events", "ok", "fail", "hs", "stalls", "stall_s", "last seen"
        );
        for d in &r.devices {
            let types: Vec<String> = d
                .event_types
                .iter()
                .take(4)
                .map(|(t, n)| format!("{t}x{n}"))
                .collect();
            let name = match &d.mac {
                Some(m) => format!("{} ({m})", d.device),
                None => d.device.clone(),
            };
            let _ = writeln!(
                o,
                "{:<40} {:>6} {:>6} {:>6} {:>5} {:>7} {:>6.1}  {:<12} {}",
                name,
                d.events,
                d.ok,
                d.failures,
                d.handshake_failures,
                d.stalls,
                d.stalled_seconds,
                d.last_seen.to_clock_string(),
                types.join(" ")
            );
        }
    }

    let stall_of: HashMap<ExchangeRef, f64> =
        r.stalls.iter().map(|s| (s.exchange, s.seconds)).collect();
    let mut problems = Vec::new();
    for c in &r.connections {
        if c.handshake.failed() {
            let e = explain_handshake(c);
            problems.push((
                c.first_seen,
                format!(
                    "{} {}\n    {}\n    next: {}",
                    c.first_seen.to_clock_string(),
                    e.what,
                    e.meaning,
                    e.next
                ),
            ));
        }
        for ex in &c.exchanges {
            if ex.verdict == Verdict::Ok {
                continue;
            }
            let r#ref = ExchangeRef {
                connection: c.id,
                index: ex.index,
            };
            let e = explain_verdict(c, ex, stall_of.get(&r#ref).copied());
            let ev = ex
                .event
                .as_ref()
                .and_then(|e| e.event_type.clone())
                .unwrap_or_else(|| "-".into());
            let retry = match ex.retry_of {
                Some(of) => format!(
                    " (retry of connection {} request {})",
                    of.connection, of.index
                ),
                None => String::new(),
            };
            let notes: String = ex
                .notes
                .iter()
                .map(|n| format!("\n    note: {n}"))
                .collect();
            problems.push((
                ex.request.time,
                format!(
                    "{} {} {} {} {} [{}] {}{}\n    {}\n    {}\n    next: {}{notes}",
                    ex.request.time.to_clock_string(),
                    c.client,
                    ex.request.method,
                    ex.request.path,
                    ev,
                    ex.verdict.as_str(),
                    c.server,
                    retry,
                    e.what,
                    e.meaning,
                    e.next
                ),
            ));
        }
    }
    // Counted from the summary: a streamed report keeps only the earliest problems' connections.
    let total = s.handshake_failures + s.requests.saturating_sub(s.ok);
    if total > 0 {
        problems.sort_by_key(|p| p.0);
        let _ = writeln!(o, "\nPROBLEMS ({total})");
        let listed = problems.len().min(MAX_PROBLEMS_LISTED);
        for (_, p) in problems.iter().take(listed) {
            let _ = writeln!(o, "{p}");
        }
        if total > listed as u64 {
            let _ = writeln!(
                o,
                "... and {} more (use --json for all)",
                total - listed as u64
            );
        }
    } else if s.requests > 0 {
        let _ = writeln!(o, "\nNo problems: every request got 200 OK.");
    }

    if !r.stalls.is_empty() {
        let _ = writeln!(
            o,
            "\nSTALLS (device held its events after a request without 200 OK)"
        );
        for st in &r.stalls {
            let _ = writeln!(
                o,
                "{:<40} {} .. {}  {:>7.1} s  {}{}",
                st.device,
                st.from.to_clock_string(),
                st.to.to_clock_string(),
                st.seconds,
                st.cause,
                if st.open_ended {
                    " (until capture end)"
                } else {
                    ""
                }
            );
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(o, "\nWARNINGS");
        for w in &r.warnings {
            let _ = writeln!(o, "{w}");
        }
    }
    o
}

/// The text report built while the capture is read, in bounded memory: the diagnosis ledger
/// takes every connection, but only the connections holding the earliest problems (as many as
/// are listed in full) are kept for their explanations.
#[derive(Default)]
pub struct TextStream {
    ledger: Ledger,
    /// Connections with a problem, by their first problem's time (and arrival, for ties).
    kept: BTreeMap<(Timestamp, u64), Connection>,
    arrivals: u64,
}

impl TextStream {
    /// Take in one finished connection.
    pub fn add(&mut self, c: Connection) {
        self.ledger.add(&c);
        let first_problem = c
            .exchanges
            .iter()
            .filter(|e| e.verdict != Verdict::Ok)
            .map(|e| e.request.time)
            .chain(c.handshake.failed().then_some(c.first_seen))
            .min();
        let Some(at) = first_problem else {
            return;
        };
        self.arrivals += 1;
        self.kept.insert((at, self.arrivals), c);
        // The first N problems lie in the N connections whose first problem is earliest.
        if self.kept.len() > MAX_PROBLEMS_LISTED {
            self.kept.pop_last();
        }
    }

    /// Diagnose and render.
    pub fn finish(self, source: &str, counters: &Counters, warnings: Vec<String>) -> String {
        let (findings, retries) = self.ledger.finish(counters, counters.last_packet);
        let mut connections: Vec<Connection> = self.kept.into_values().collect();
        connections.sort_by_key(|c| (c.first_seen, c.id));
        apply_retries(&mut connections, retries);
        render(&super::assemble(source, connections, findings, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{replay, ReplayOptions};
    use crate::report::tests::sample;

    #[test]
    fn streamed_text_is_the_in_memory_text() {
        for name in [
            "stall-no-answer.pcap",
            "server-close.pcap",
            "syn-unanswered.pcap",
            "refused.pcap",
            "keepalive.pcap",
            "error-503.pcap",
        ] {
            let r = replay(
                &sample(name),
                ReplayOptions::default(),
                &mut |_| {},
                &mut |_| {},
            )
            .expect("sample opens");
            let mut t = TextStream::default();
            for c in r.connections.clone() {
                t.add(c);
            }
            let counters = counters_of(&r);
            assert_eq!(
                t.finish(&r.source, &counters, r.warnings.clone()),
                render(&r),
                "{name}"
            );
        }
    }

    fn counters_of(r: &Report) -> Counters {
        Counters::from_summary(&r.summary)
    }

    #[test]
    fn many_problems_arriving_out_of_order_list_the_earliest() {
        // 3 x MAX connections with one unanswered request each, handed over latest first.
        let r = replay(
            &sample("stall-no-answer.pcap"),
            ReplayOptions::default(),
            &mut |_| {},
            &mut |_| {},
        )
        .expect("sample opens");
        let failed = r
            .connections
            .iter()
            .find(|c| c.exchanges.iter().any(|e| e.verdict != Verdict::Ok))
            .expect("the sample has a failed request")
            .clone();
        let n = 3 * MAX_PROBLEMS_LISTED;
        let mut all = Vec::new();
        for k in 0..n {
            let mut c = failed.clone();
            c.id = 1000 + k as u64;
            c.client = format!("10.9.{}.{}:5000", k / 200, k % 200 + 1);
            let shift = Timestamp(k as i64 * 1_000_000_000);
            c.first_seen = Timestamp(c.first_seen.0 + shift.0);
            c.last_seen = Timestamp(c.last_seen.0 + shift.0);
            for e in &mut c.exchanges {
                e.request.time = Timestamp(e.request.time.0 + shift.0);
                e.request.end_time = Timestamp(e.request.end_time.0 + shift.0);
            }
            all.push(c);
        }
        let mut t = TextStream::default();
        for c in all.iter().rev().cloned() {
            t.add(c);
        }
        assert!(t.kept.len() <= MAX_PROBLEMS_LISTED);
        let counters = Counters {
            last_packet: all.last().map(|c| c.last_seen),
            ..Counters::default()
        };
        let streamed = t.finish("src", &counters, vec![]);
        let whole = render(&crate::report::build("src", all, &counters, vec![]));
        assert_eq!(streamed, whole);
        assert!(streamed.contains("more (use --json for all)"), "{streamed}");
        assert!(streamed.contains("10.9.0.1:5000"), "earliest listed");
    }
}
