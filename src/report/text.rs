//! The readable summary printed by `--text`: per device, per problem, each with a one-line
//! explanation of what it means for the engineer.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::diagnose::{explain_handshake, explain_verdict};
use crate::model::{ExchangeRef, Report, Verdict};
use crate::tcp::Handshake;

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
    let _ = writeln!(
        o,
        "connections: {}   requests: {}   ok: {}   error_status: {}   no_response: {}   incomplete: {}",
        s.connections, s.requests, s.ok, s.error_status, s.no_response, s.incomplete
    );
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
        if matches!(c.handshake, Handshake::Unanswered | Handshake::Refused) {
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
            problems.push((
                ex.request.time,
                format!(
                    "{} {} {} {} {} [{}] {}{}\n    {}\n    {}\n    next: {}",
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
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.0);
        let _ = writeln!(o, "\nPROBLEMS ({})", problems.len());
        for (_, p) in problems.iter().take(MAX_PROBLEMS_LISTED) {
            let _ = writeln!(o, "{p}");
        }
        if problems.len() > MAX_PROBLEMS_LISTED {
            let _ = writeln!(
                o,
                "... and {} more (use --json for all)",
                problems.len() - MAX_PROBLEMS_LISTED
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
