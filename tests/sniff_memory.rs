//! `sniff` memory bounds with many idle connections: 200 000 connections from 2 000 devices open
//! (SYN, SYN-ACK, ACK), send a few bytes and go silent, one per millisecond of capture time. They
//! are fed as raw frames through [`Session`], the state machine `alarmscope sniff` runs, ticked
//! once per second of capture time (the capture loop ticks every 250 ms). No root or network
//! needed.
//!
//! Asserted: the connection table never holds more than the documented default limit
//! (100 000), the HTTP stage holds state for exactly the connections the table holds, buffered
//! bytes stay within the documented per-connection limits, the live judgement state stays bounded
//! by the open connections and devices, and every connection closed early (evicted because the
//! table was full, or expired after the idle timeout) is counted in the summary and its JSON and
//! text reports, none silently lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::net::Ipv4Addr;

use alarmscope::capture::LinkType;
use alarmscope::diagnose::live::Finding;
use alarmscope::model::Report;
use alarmscope::pipeline::Footprint;
use alarmscope::sniff::{Line, Session, SniffOptions};
use alarmscope::time::Timestamp;

const CONNS: u32 = 200_000;
const DEVICES: u32 = 2_000;
/// A new connection every millisecond: 1 000 a second, faster than 100 000 connections can idle
/// out in 120 s, so the table fills and must evict.
const SPACING: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;
const T0: i64 = 1_764_000_000 * SEC;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

const SERVER: (Ipv4Addr, u16) = (Ipv4Addr::new(192, 0, 2, 1), 8080);
const FULL_REQUEST: &[u8] =
    b"POST /ISAPI/Event/notification/alertStream HTTP/1.1\r\nHost: 192.0.2.1\r\nContent-Length: 0\r\n\r\n";
const PARTIAL_HEAD: &[u8] = b"POST /ISAPI/Eve";

/// A raw IPv4 + TCP frame (LINKTYPE_RAW); checksums are not checked by the decoder.
fn frame(
    out: &mut Vec<u8>,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) {
    let total = u16::try_from(40 + payload.len()).unwrap();
    out.clear();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    out.extend_from_slice(&src.0.octets());
    out.extend_from_slice(&dst.0.octets());
    out.extend_from_slice(&src.1.to_be_bytes());
    out.extend_from_slice(&dst.1.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

fn client(i: u32) -> (Ipv4Addr, u16) {
    let d = i % DEVICES;
    let ip = Ipv4Addr::new(10, 1, (d / 250) as u8, (d % 250 + 1) as u8);
    (ip, 20_000 + (i / DEVICES) as u16)
}

#[derive(Default)]
struct Seen {
    provisional: u64,
    final_exchanges: u64,
    stalls: u64,
    ticks: u64,
    /// Largest footprint seen at a tick, field by field.
    max: Footprint,
}

/// One tick of the capture loop at capture time `now`, then the bounds.
fn tick(
    s: &mut Session,
    now: i64,
    findings: &mut Vec<Finding>,
    seen: &mut Seen,
    opts: &SniffOptions,
) {
    s.tick(Timestamp(now), findings);
    for f in findings.drain(..) {
        match f {
            Finding::Exchange {
                provisional: true, ..
            } => seen.provisional += 1,
            Finding::Exchange { .. } => seen.final_exchanges += 1,
            Finding::Stall(_) => seen.stalls += 1,
            Finding::Handshake { .. } | Finding::Tls { .. } => {}
        }
    }
    seen.ticks += 1;
    if !seen.ticks.is_multiple_of(10) {
        return;
    }
    // The footprint scans the table: every tenth tick is plenty.
    let fp = s.footprint();
    let limits = &opts.pipeline;
    let open = fp.tcp_connections as u64;
    assert!(fp.tcp_connections <= limits.tcp.max_connections, "{fp:?}");
    assert_eq!(fp.http_connections, fp.tcp_connections, "HTTP state leaked");
    assert!(fp.connections_with_exchanges <= fp.http_connections);
    assert_eq!(
        fp.finished_waiting, 0,
        "closed connections were handed over"
    );
    assert!(fp.tcp_buffered_bytes <= open * 2 * limits.tcp.max_buffered_per_direction as u64);
    assert!(fp.http_buffered_bytes <= open * 2 * limits.http.max_header_bytes as u64);
    // What this traffic can buffer: 15 bytes of a partial head, or 15 bytes behind a hole.
    assert!(fp.tcp_buffered_bytes <= open * PARTIAL_HEAD.len() as u64);
    assert!(fp.http_buffered_bytes <= open * PARTIAL_HEAD.len() as u64);
    let d = s.diagnoser();
    assert!(d.provisional() <= fp.tcp_connections);
    assert!(d.open_stalls() <= DEVICES as usize);
    let m = &mut seen.max;
    m.tcp_connections = m.tcp_connections.max(fp.tcp_connections);
    m.tcp_buffered_bytes = m.tcp_buffered_bytes.max(fp.tcp_buffered_bytes);
    m.http_buffered_bytes = m.http_buffered_bytes.max(fp.http_buffered_bytes);
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn many_idle_connections_stay_within_the_limits_and_every_early_close_is_counted() {
    let opts = SniffOptions::default();
    // The documented defaults this test holds the pipeline to.
    assert_eq!(opts.pipeline.tcp.max_connections, 100_000);
    assert_eq!(opts.idle_timeout.as_secs(), 120);
    let limit = opts.pipeline.tcp.max_connections as u64;

    let mut s = Session::new(&opts);
    let mut findings = Vec::new();
    let mut seen = Seen::default();
    let mut buf = Vec::with_capacity(256);
    let mut next_tick = T0 + SEC;
    let mut requests = 0u64;
    for i in 0..CONNS {
        let t = T0 + i64::from(i) * SPACING;
        while next_tick <= t {
            tick(&mut s, next_tick, &mut findings, &mut seen, &opts);
            next_tick += SEC;
        }
        let c = client(i);
        let (isn, sisn) = (1_000u32.wrapping_mul(i), 7_000_000u32.wrapping_add(i));
        let mut send = |dt: i64, src, dst, seq, ack, flags, payload: &[u8]| {
            frame(&mut buf, src, dst, seq, ack, flags, payload);
            let len = buf.len() as u32;
            s.frame(Timestamp(t + dt), LinkType::Raw, &buf, len);
        };
        send(0, c, SERVER, isn, 0, SYN, b"");
        send(100_000, SERVER, c, sisn, isn + 1, SYN | ACK, b"");
        send(200_000, c, SERVER, isn + 1, sisn + 1, ACK, b"");
        // A few bytes, then silence: a complete request nobody answers (every tenth), bytes
        // behind a 20-byte hole the capture missed (every fiftieth), else a head cut short.
        match i % 50 {
            k if k % 10 == 0 => {
                requests += 1;
                send(300_000, c, SERVER, isn + 1, sisn + 1, PSH_ACK, FULL_REQUEST)
            }
            1 => send(
                300_000,
                c,
                SERVER,
                isn + 21,
                sisn + 1,
                PSH_ACK,
                PARTIAL_HEAD,
            ),
            _ => send(300_000, c, SERVER, isn + 1, sisn + 1, PSH_ACK, PARTIAL_HEAD),
        }
    }
    let fed_until = T0 + i64::from(CONNS) * SPACING;
    // The table filled up to its limit and had to evict while the capture went on.
    assert_eq!(s.counters().peak_open_connections, limit);
    assert_eq!(s.counters().connections_evicted, u64::from(CONNS) - limit);
    assert_eq!(s.counters().connections_expired, 0);
    assert!(
        seen.max.tcp_buffered_bytes > 0,
        "the out-of-order bytes were buffered"
    );
    assert!(
        seen.max.http_buffered_bytes > 0,
        "the partial heads were held"
    );

    // Silence: every remaining connection idles out.
    let quiet_until = fed_until + opts.idle_timeout.as_nanos() as i64 + 10 * SEC;
    while next_tick <= quiet_until {
        tick(&mut s, next_tick, &mut findings, &mut seen, &opts);
        next_tick += SEC;
    }
    let fp = s.footprint();
    assert_eq!(
        fp,
        Footprint::default(),
        "nothing left after the idle timeout"
    );
    assert_eq!(s.counters().connections_expired, limit);
    assert_eq!(s.diagnoser().provisional(), 0);

    let (summary, packets) = s.finish(Timestamp(quiet_until), &mut findings);
    assert_eq!(packets, u64::from(CONNS) * 4);
    // Every connection was closed and judged: evicted or expired, none dropped silently.
    assert_eq!(summary.connections, u64::from(CONNS));
    assert_eq!(
        summary.connections_evicted + summary.connections_expired,
        u64::from(CONNS)
    );
    assert_eq!(summary.connections_evicted, u64::from(CONNS) - limit);
    assert_eq!(summary.connections_expired, limit);
    assert_eq!(summary.peak_open_connections, limit);
    assert_eq!(summary.requests, requests);
    assert_eq!(summary.no_response, requests);
    assert_eq!(seen.final_exchanges, requests);
    assert_eq!(seen.provisional, requests, "each was flagged live first");
    assert!(seen.stalls > 0);
    assert_eq!(summary.capture_gap_bytes, 20 * u64::from(CONNS / 50));

    // Reported: in the JSON summary line of `sniff --json` ...
    let line = serde_json::to_value(Line::Summary {
        interface: "test",
        summary: &summary,
        capture: Default::default(),
        packets,
    })
    .unwrap();
    assert_eq!(line["summary"]["connections_evicted"], CONNS as u64 - limit);
    assert_eq!(line["summary"]["connections_expired"], limit);
    assert_eq!(line["summary"]["peak_open_connections"], limit);
    // ... and in the text report.
    let text = alarmscope::report::text::render(&Report {
        source: "test".into(),
        summary,
        ..Report::default()
    });
    assert!(
        text.contains("connection table: 100000 closed early because the table was full (peak 100000 open), 100000 closed after the idle timeout"),
        "{text}"
    );
    // The whole process, for 100 000 open connections: about 0.5 GiB measured (release and
    // debug alike, glibc). A generous ceiling, so that per-connection growth shows up here.
    if let Some(kib) = peak_rss_kib() {
        eprintln!("peak RSS {} MiB for {limit} open connections", kib / 1024);
        assert!(kib < 1024 * 1024, "peak RSS {} MiB", kib / 1024);
    }
}
