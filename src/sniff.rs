//! Sniff shell: a live capture fed through the same pipeline as replay, with live judgement
//! ([`crate::diagnose::live`]) of unanswered requests and stalls. Headless output is one JSON
//! line (or text line) per finding, then a summary.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capture::live::{LiveCapture, LiveError, LiveOptions, LiveStats};
use crate::diagnose::live::{Finding, LiveDiagnoser};
use crate::feed::Feed;
use crate::model::{Connection, Exchange, Stall, Summary};
use crate::pipeline::{Analyzer, Counters, Footprint, PipelineConfig};
use crate::time::Timestamp;

/// Options of one live capture session.
#[derive(Debug, Clone)]
pub struct SniffOptions {
    pub live: LiveOptions,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many exchanges were judged finally.
    pub count: Option<u64>,
    /// A complete request without an answer for this long is reported `no_response` (corrected if
    /// the answer comes later). Default 5 s: devices wait a few seconds before they give up.
    pub answer_timeout: Duration,
    /// Connections idle this long are closed and judged (memory stays bounded on a busy server).
    pub idle_timeout: Duration,
    pub pipeline: PipelineConfig,
    /// Which findings the headless output prints (`--device`, `--verdict`...; the TUI's filter).
    pub rows: crate::filter::RowFilter,
}

impl Default for SniffOptions {
    fn default() -> Self {
        SniffOptions {
            live: LiveOptions::default(),
            duration: None,
            count: None,
            answer_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(120),
            pipeline: PipelineConfig::default(),
            rows: crate::filter::RowFilter::default(),
        }
    }
}

/// How often open connections are re-examined.
const TICK: Duration = Duration::from_millis(250);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Make SIGINT and SIGTERM end the capture loop cleanly (summary printed, save file flushed).
pub fn install_stop_signals() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// A duration in nanoseconds, saturating (an `as` cast would wrap a huge `--idle-timeout` to a
/// negative number and expire every connection at once).
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// One JSON line of `sniff --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line<'a> {
    Exchange {
        provisional: bool,
        corrected: bool,
        connection: &'a Connection,
        exchange: &'a Exchange,
    },
    Handshake {
        connection: &'a Connection,
    },
    Stall(&'a Stall),
    Summary {
        interface: &'a str,
        summary: &'a Summary,
        capture: LiveStats,
        packets: u64,
    },
}

/// What a session saw, for the caller (tests, exit status).
#[derive(Debug, Clone, Default)]
pub struct SniffResult {
    pub summary: Summary,
    pub stats: LiveStats,
    pub packets: u64,
}

/// Run a headless capture, writing one line per finding to `out` (JSON when `json`).
pub fn run_headless(
    opts: &SniffOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<SniffResult, LiveError> {
    let mut cap = LiveCapture::open(&opts.live)?;
    let iface = cap.interface().to_string();
    // On stderr, so JSON output stays clean; scripts can wait for this line.
    eprintln!(
        "alarmscope: capturing on {iface}{}",
        opts.live
            .filter
            .as_deref()
            .map(|f| format!(" (filter: {f})"))
            .unwrap_or_default()
    );
    let mut session = Session::new(opts);
    let started = Instant::now();
    let mut last_tick = Instant::now();
    let mut findings = Vec::new();
    let mut told_full = false;
    loop {
        if STOP.load(Ordering::SeqCst)
            || opts.duration.is_some_and(|d| started.elapsed() >= d)
            || opts.count.is_some_and(|c| session.judged >= c)
        {
            break;
        }
        if let Some(f) = cap.next(TICK)? {
            session.frame(f.ts, f.link, f.data, f.orig_len);
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            session.tick(Timestamp::now(), &mut findings);
            emit(&mut findings, json, out, &mut session.judged, &opts.rows);
            if !told_full && session.counters().connections_evicted > 0 {
                told_full = true;
                eprintln!(
                    "alarmscope: connection table full ({} connections): the least recently active are closed early from now on (counted in the summary as connections_evicted); a shorter --idle-timeout or a --filter helps",
                    opts.pipeline.tcp.max_connections
                );
            }
        }
    }
    cap.flush();
    let stats = cap.stats();
    let mut judged = session.judged;
    let (summary, packets) = session.finish(Timestamp::now(), &mut findings);
    emit(&mut findings, json, out, &mut judged, &opts.rows);
    if json {
        let line = Line::Summary {
            interface: &iface,
            summary: &summary,
            capture: stats,
            packets,
        };
        let _ = serde_json::to_writer(&mut *out, &line);
        let _ = out.write_all(b"\n");
    } else {
        let _ = writeln!(
            out,
            "summary: {packets} packets, {} requests: {} ok, {} error_status, {} no_response, {} incomplete; {} handshake failures; {} stalls; kernel dropped {} packets; connections: peak {} open, {} evicted (table full), {} expired (idle)",
            summary.requests, summary.ok, summary.error_status, summary.no_response, summary.incomplete,
            summary.handshake_failures, summary.stalls, stats.dropped + stats.if_dropped,
            summary.peak_open_connections, summary.connections_evicted, summary.connections_expired
        );
        if !summary.encapsulations.is_empty() {
            // A mirror port or an overlay: the devices are the inner addresses.
            let _ = writeln!(
                out,
                "encapsulated frames: {}",
                summary.encapsulations.describe()
            );
        }
    }
    let _ = out.flush();
    Ok(SniffResult {
        summary,
        stats,
        packets,
    })
}

/// The pipeline and live diagnosis of one capture session (no IO: frames and times in).
pub struct Session {
    analyzer: Analyzer,
    diag: LiveDiagnoser,
    idle_nanos: i64,
    packets: u64,
    /// Exchanges judged finally so far (for `--count`).
    pub judged: u64,
}

impl Session {
    pub fn new(opts: &SniffOptions) -> Self {
        Session {
            analyzer: Analyzer::new(opts.pipeline.clone()),
            diag: LiveDiagnoser::new(nanos(opts.answer_timeout)),
            idle_nanos: nanos(opts.idle_timeout),
            packets: 0,
            judged: 0,
        }
    }

    pub fn frame(
        &mut self,
        ts: Timestamp,
        link: crate::capture::LinkType,
        data: &[u8],
        orig_len: u32,
    ) {
        self.packets += 1;
        self.analyzer.frame(self.packets, ts, link, data, orig_len);
    }

    /// Re-examine the state at time `now`: expire idle connections, judge what can be judged.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Finding>) {
        let mut closed = Vec::new();
        self.tick_collect(now, out, &mut closed);
    }

    /// Connections still open, with their exchanges so far (for live views).
    pub fn open_snapshot(&self) -> Vec<Connection> {
        self.analyzer.open_snapshot()
    }

    /// Packet and connection-table counters so far (evictions, idle expiries, peak table size).
    pub fn counters(&self) -> &Counters {
        self.analyzer.counters()
    }

    /// What the pipeline holds right now (scans the open connections: not per packet).
    pub fn footprint(&self) -> Footprint {
        self.analyzer.footprint()
    }

    /// The live judgement state (provisional verdicts, running stalls).
    pub fn diagnoser(&self) -> &LiveDiagnoser {
        &self.diag
    }

    /// End of capture: judge everything left. Returns the summary and the packet count.
    pub fn finish(self, now: Timestamp, out: &mut Vec<Finding>) -> (Summary, u64) {
        let Session {
            analyzer,
            mut diag,
            packets,
            ..
        } = self;
        let (rest, counters, _warnings) = analyzer.finish();
        for c in &rest {
            diag.on_finished(c, out);
        }
        diag.finish(now, out);
        let mut s = diag.summary().clone();
        s.packets = counters.packets;
        s.tcp_packets = counters.tcp_packets;
        s.non_tcp_packets = counters.non_tcp_packets;
        s.undecodable_frames = counters.undecodable_frames;
        s.truncated_frames = counters.truncated_frames;
        s.first_packet = counters.first_packet;
        s.last_packet = counters.last_packet;
        s.connections_evicted = counters.connections_evicted;
        s.connections_expired = counters.connections_expired;
        s.peak_open_connections = counters.peak_open_connections;
        s.encapsulations = counters.encapsulations;
        (s, packets)
    }
}

fn emit(
    findings: &mut Vec<Finding>,
    json: bool,
    out: &mut dyn Write,
    judged: &mut u64,
    rows: &crate::filter::RowFilter,
) {
    for f in findings.drain(..) {
        if let Finding::Exchange {
            provisional: false, ..
        } = &f
        {
            *judged += 1;
        }
        let wanted = match &f {
            Finding::Exchange { conn, exchange, .. } => rows.matches(conn, Some(exchange)),
            Finding::Handshake { conn } => rows.matches(conn, None),
            Finding::Stall(s) => rows.matches_stall(s),
        };
        if !wanted {
            continue;
        }
        if json {
            let line = match &f {
                Finding::Exchange {
                    conn,
                    exchange,
                    provisional,
                    corrected,
                } => Line::Exchange {
                    provisional: *provisional,
                    corrected: *corrected,
                    connection: conn,
                    exchange,
                },
                Finding::Handshake { conn } => Line::Handshake { connection: conn },
                Finding::Stall(s) => Line::Stall(s),
            };
            let _ = serde_json::to_writer(&mut *out, &line);
            let _ = out.write_all(b"\n");
        } else {
            let _ = writeln!(out, "{}", text_line(&f));
        }
    }
    let _ = out.flush();
}

/// One readable line per finding.
pub fn text_line(f: &Finding) -> String {
    match f {
        Finding::Exchange {
            conn,
            exchange: ex,
            provisional,
            corrected,
        } => {
            let status = ex
                .response
                .as_ref()
                .map(|r| r.status.to_string())
                .unwrap_or_else(|| "-".into());
            let ev = ex
                .event
                .as_ref()
                .map(|e| e.type_label())
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "-".into());
            let tag = if *provisional {
                " (no answer yet)"
            } else if *corrected {
                " (answered late: corrected)"
            } else {
                ""
            };
            format!(
                "{} {} -> {} {} {} {} status {} {}{}",
                ex.request.time.to_clock_string(),
                conn.client,
                conn.server,
                ex.request.method,
                ex.request.path,
                ev,
                status,
                ex.verdict.as_str(),
                tag
            )
        }
        Finding::Handshake { conn } => format!(
            "{} {} -> {} handshake {:?} ({} SYN)",
            conn.first_seen.to_clock_string(),
            conn.client,
            conn.server,
            conn.handshake,
            conn.syn_attempts
        ),
        Finding::Stall(s) => format!(
            "{} stall {} for {:.1} s after {}{}",
            s.from.to_clock_string(),
            s.device,
            s.seconds,
            s.cause,
            if s.open_ended {
                " (still stalled at the end)"
            } else {
                ""
            }
        ),
    }
}

/// Start a live capture on a background thread that feeds the TUI: every tick it sends the
/// connections closed since the last one and the open ones as they are now (the TUI replaces
/// them by id), with the packet count as progress. The capture is opened here, so errors (not
/// permitted, no such interface, bad filter) are reported before any screen is drawn. The
/// thread ends when the TUI goes away, on `--duration`/`--count`, or on a capture error.
pub fn spawn_feed(opts: SniffOptions) -> Result<std::sync::mpsc::Receiver<Feed>, LiveError> {
    let mut cap = LiveCapture::open(&opts.live)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut session = Session::new(&opts);
        let started = Instant::now();
        let mut last_tick = Instant::now();
        let mut findings = Vec::new();
        loop {
            if opts.duration.is_some_and(|d| started.elapsed() >= d)
                || opts.count.is_some_and(|c| session.judged >= c)
            {
                break;
            }
            match cap.next(TICK) {
                Ok(Some(f)) => session.frame(f.ts, f.link, f.data, f.orig_len),
                Ok(None) => {}
                Err(e) => {
                    let _ = tx.send(Feed::Error(e.to_string()));
                    return;
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                let mut closed = Vec::new();
                session.tick_collect(Timestamp::now(), &mut findings, &mut closed);
                session.judged += findings
                    .iter()
                    .filter(|f| {
                        matches!(
                            f,
                            Finding::Exchange {
                                provisional: false,
                                ..
                            }
                        )
                    })
                    .count() as u64;
                findings.clear();
                closed.extend(session.open_snapshot());
                let progress = crate::replay::Progress {
                    bytes_read: 0,
                    file_size: 0,
                    packets: session.packets,
                };
                if tx.send(Feed::Progress(progress)).is_err()
                    || tx.send(Feed::Upsert(closed)).is_err()
                {
                    return; // the screen was closed
                }
            }
        }
        cap.flush();
        let mut findings = Vec::new();
        let (rest, counters, warnings) = session.analyzer.finish();
        for c in &rest {
            session.diag.on_finished(c, &mut findings);
        }
        let _ = tx.send(Feed::Upsert(rest));
        let _ = (counters, warnings);
    });
    Ok(rx)
}

impl Session {
    /// Like [`Session::tick`], also handing over the connections that closed.
    pub fn tick_collect(
        &mut self,
        now: Timestamp,
        out: &mut Vec<Finding>,
        closed: &mut Vec<Connection>,
    ) {
        self.analyzer.expire(now, self.idle_nanos);
        for c in self.analyzer.take_finished() {
            self.diag.on_finished(&c, out);
            closed.push(c);
        }
        self.diag
            .on_tick(now, self.analyzer.open_with_exchanges(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_saturate_instead_of_wrapping() {
        assert_eq!(nanos(Duration::from_secs(2)), 2_000_000_000);
        assert_eq!(nanos(Duration::MAX), i64::MAX);
        assert_eq!(nanos(Duration::from_secs(u64::MAX / 1_000)), i64::MAX);
    }
}
