//! Sniff shell: a live capture fed through the same pipeline as replay, with live judgement
//! ([`crate::diagnose::live`]) of unanswered requests and stalls. Headless output is one JSON
//! line (or text line) per finding, then a summary.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::capture::file::RawFrame;
use crate::capture::live::{LiveCapture, LiveError, LiveOptions, LiveStats};
use crate::diagnose::live::{Finding, LiveDiagnoser};
use crate::feed::Feed;
use crate::model::{Connection, Exchange, ExchangeNote, KernelDrops, Stall, Summary, Verdict};
use crate::pipeline::{Analyzer, Counters, Footprint, PipelineConfig};
use crate::tcp::Handshake;
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
    /// An NSS key log that grows while the capture runs (`--keylog`, e.g. the one
    /// `listen --tls --keylog` writes): re-read before every frame, so TLS sessions logged
    /// just before their records arrive are decrypted.
    pub keylog: Option<std::path::PathBuf>,
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
            keylog: None,
        }
    }
}

/// Follows a key log file as it grows (the shell side of `sniff --keylog`): the pipeline's
/// decryptors share the [`KeyLog`] behind the lock and look a session up when its first
/// encrypted record needs it; [`KeyLogFollower::refresh`] feeds it what was appended. A file
/// that does not exist yet is waited for; one that shrank was rewritten and is read anew.
///
/// [`KeyLog`]: crate::tls::KeyLog
pub struct KeyLogFollower {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    offset: u64,
    log: std::sync::Arc<std::sync::RwLock<crate::tls::KeyLog>>,
}

/// Most bytes read from the key log per refresh (the rest comes with the next ones).
const KEYLOG_READ_MAX: u64 = 1 << 20;

impl KeyLogFollower {
    /// Follow `path` (read what it holds now, if it exists).
    pub fn new(path: &std::path::Path) -> Self {
        let mut f = KeyLogFollower {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            log: std::sync::Arc::new(std::sync::RwLock::new(crate::tls::KeyLog::default())),
        };
        f.refresh();
        f
    }

    /// The key log the pipeline looks sessions up in.
    pub fn shared(&self) -> crate::tls::SharedKeys {
        crate::tls::SharedKeys(self.log.clone())
    }

    /// Feed the key log what was appended since the last call (one `fstat` when nothing was).
    pub fn refresh(&mut self) {
        use std::io::{Read, Seek, SeekFrom};
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return;
        };
        if len < self.offset {
            // Rewritten: start over.
            self.offset = 0;
            let mut log = self.log.write().unwrap_or_else(|e| e.into_inner());
            *log = crate::tls::KeyLog::default();
        }
        if len == self.offset {
            return;
        }
        let mut buf = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.take(KEYLOG_READ_MAX).read_to_end(&mut buf).is_err()
        {
            return;
        }
        self.offset += buf.len() as u64;
        let mut log = self.log.write().unwrap_or_else(|e| e.into_inner());
        log.feed(&buf);
    }
}

/// The session of a capture, and the key log follower its pipeline decrypts with.
fn start(opts: &SniffOptions) -> (Session, Option<KeyLogFollower>) {
    let follower = opts.keylog.as_deref().map(KeyLogFollower::new);
    let mut o = opts.clone();
    if let Some(f) = &follower {
        o.pipeline.keys = Some(f.shared());
    }
    (Session::new(&o), follower)
}

/// How often open connections are re-examined.
const TICK: Duration = Duration::from_millis(250);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Make SIGINT and SIGTERM end the capture loop cleanly (summary printed, save file flushed).
#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
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
    /// A TLS problem finding of a finished connection (also inside `connection.tls_findings`).
    TlsProblem {
        connection: &'a Connection,
        finding: &'a crate::tls::TlsFinding,
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

/// Everything a sniff loop takes from outside: frames, the time, and whether to stop. The live
/// capture plugs in libpcap, the wall clock and SIGINT/SIGTERM ([`LiveInput`]); a test plugs in a
/// capture file and a clock that follows its timestamps, and drives the same loops.
pub trait FrameSource {
    /// The next frame, waiting at most `wait` for one; None when none came in time.
    fn next_frame(&mut self, wait: Duration) -> Result<Option<RawFrame<'_>>, LiveError>;
    /// Time since the session began (for `--duration` and the tick).
    fn elapsed(&self) -> Duration;
    /// The time to judge open connections at (capture time).
    fn now(&self) -> Timestamp;
    /// True once the user asked to stop.
    fn stop_requested(&self) -> bool;
    /// End of session: deliver frames still buffered.
    fn flush(&mut self);
    /// Packet counters of the source.
    fn stats(&mut self) -> LiveStats;
    /// What is captured (interface name, file).
    fn name(&self) -> &str;
}

/// The real source: libpcap, the wall clock and (optionally) the stop signals.
pub struct LiveInput {
    cap: LiveCapture,
    started: Instant,
    /// Stop on SIGINT/SIGTERM ([`install_stop_signals`]); the TUI's feed stops by closing its
    /// channel instead.
    signals: bool,
}

impl LiveInput {
    /// Wrap an open capture; the session's time starts now.
    pub fn new(cap: LiveCapture, signals: bool) -> LiveInput {
        LiveInput {
            cap,
            started: Instant::now(),
            signals,
        }
    }
}

impl FrameSource for LiveInput {
    fn next_frame(&mut self, wait: Duration) -> Result<Option<RawFrame<'_>>, LiveError> {
        self.cap.next(wait)
    }
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    fn stop_requested(&self) -> bool {
        self.signals && STOP.load(Ordering::SeqCst)
    }
    fn flush(&mut self) {
        self.cap.flush();
    }
    fn stats(&mut self) -> LiveStats {
        self.cap.stats()
    }
    fn name(&self) -> &str {
        self.cap.interface()
    }
}

/// A capture file as a live source: the capture's own timestamps are the clock (ticks, answer
/// timeouts, `--duration`), and the session stops when the file ends. Why: the live loop's tests
/// and `examples/sniff_offline` (sniff's ceiling in events/s) run the real loop without an
/// interface or root.
pub struct FileInput {
    file: crate::capture::file::CaptureFile,
    first: Option<Timestamp>,
    last: Timestamp,
    done: bool,
}

impl FileInput {
    pub fn new(file: crate::capture::file::CaptureFile) -> FileInput {
        FileInput {
            file,
            first: None,
            last: Timestamp(0),
            done: false,
        }
    }
}

impl FrameSource for FileInput {
    fn next_frame(&mut self, _wait: Duration) -> Result<Option<RawFrame<'_>>, LiveError> {
        match self.file.next_frame() {
            Ok(Some(f)) => {
                self.first.get_or_insert(f.ts);
                self.last = f.ts;
                Ok(Some(f))
            }
            _ => {
                self.done = true;
                Ok(None)
            }
        }
    }
    fn elapsed(&self) -> Duration {
        let first = self.first.unwrap_or(self.last);
        Duration::from_nanos(u64::try_from(self.last.0 - first.0).unwrap_or(0))
    }
    fn now(&self) -> Timestamp {
        self.last
    }
    fn stop_requested(&self) -> bool {
        self.done
    }
    fn flush(&mut self) {}
    fn stats(&mut self) -> LiveStats {
        LiveStats::default()
    }
    fn name(&self) -> &str {
        "file"
    }
}

/// Run a headless capture, writing one line per finding to `out` (JSON when `json`).
pub fn run_headless(
    opts: &SniffOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<SniffResult, LiveError> {
    let cap = LiveCapture::open(&opts.live)?;
    run_headless_on(&mut LiveInput::new(cap, true), opts, json, out)
}

/// The headless loop over any [`FrameSource`].
pub fn run_headless_on(
    cap: &mut dyn FrameSource,
    opts: &SniffOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<SniffResult, LiveError> {
    let iface = cap.name().to_string();
    // On stderr, so JSON output stays clean; scripts can wait for this line.
    eprintln!(
        "alarmscope: capturing on {iface}{}",
        opts.live
            .filter
            .as_deref()
            .map(|f| format!(" (filter: {f})"))
            .unwrap_or_default()
    );
    let (mut session, mut keys) = start(opts);
    let mut last_tick = cap.elapsed();
    let mut findings = Vec::new();
    let mut told_full = false;
    loop {
        if cap.stop_requested()
            || opts.duration.is_some_and(|d| cap.elapsed() >= d)
            || opts.count.is_some_and(|c| session.judged >= c)
        {
            break;
        }
        if let Some(f) = cap.next_frame(TICK)? {
            if let Some(k) = keys.as_mut() {
                k.refresh();
            }
            session.frame(f.ts, f.link, f.data, f.orig_len);
        }
        if cap.elapsed().saturating_sub(last_tick) >= TICK {
            last_tick = cap.elapsed();
            session.kernel_dropped(cap.now(), cap.stats().dropped_total());
            session.tick(cap.now(), &mut findings);
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
    session.kernel_dropped(Timestamp::now(), stats.dropped_total());
    let mut judged = session.judged;
    let (summary, packets) = session.finish(cap.now(), &mut findings);
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
            "summary: {packets} packets, {} requests: {} ok, {} error_status, {} no_response, {} incomplete, {} not_captured; {} handshake failures ({} more uncertain); {} stalls; kernel dropped {} packets; connections: peak {} open, {} evicted (table full), {} expired (idle)",
            summary.requests, summary.ok, summary.error_status, summary.no_response, summary.incomplete,
            summary.not_captured, summary.handshake_failures, summary.handshake_uncertain, summary.stalls, stats.dropped_total(),
            summary.peak_open_connections, summary.connections_evicted, summary.connections_expired
        );
        if summary.tls_connections > 0 || summary.tls_problems > 0 {
            let _ = writeln!(
                out,
                "TLS: {} connection(s), {} encrypted_answered; TLS problems {} (HTTPS/HTTP mismatch {}, handshake failures {})",
                summary.tls_connections,
                summary.encrypted_answered,
                summary.tls_problems,
                summary.tls_mismatches,
                summary.tls_handshake_failures
            );
        }
        if let Some(line) = crate::report::text::decryption_line(&summary) {
            let _ = writeln!(out, "{line}");
        }
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
    drops: DropLog,
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
            drops: DropLog::default(),
            judged: 0,
        }
    }

    /// libpcap's drop counter (kernel and interface drops, cumulative) read at time `now`. Call
    /// it before [`Session::tick`] so that verdicts judged in that tick know of the drops.
    pub fn kernel_dropped(&mut self, now: Timestamp, total: u64) {
        let last_packet = self.analyzer.counters().last_packet;
        self.drops.observe(now, last_packet, total);
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
            drops,
            ..
        } = self;
        let (mut rest, counters, _warnings) = analyzer.finish();
        for c in &mut rest {
            drops.settle(c, now);
            diag.on_finished(c, out);
        }
        diag.finish(now, out);
        let mut s = diag.summary().clone();
        s.set_counters(&counters);
        (s, packets)
    }
}

/// Most drop windows kept; older ones merge (a long session with drops stays bounded).
const MAX_DROP_WINDOWS: usize = 1024;

/// When the kernel dropped packets during a live capture, as far as libpcap's cumulative
/// counter, read once a tick, can place them; and the verdicts those drops could have changed.
///
/// Why not only the summary's count: a dropped answer or SYN-ACK looks exactly like one never
/// sent, so a confident `no_response` or handshake failure would be reported for events that were
/// in fact answered (issue #14). Sans-IO: counter values and times in, connections adjusted.
#[derive(Debug, Default)]
pub struct DropLog {
    /// Windows with drops, oldest first, not overlapping.
    windows: std::collections::VecDeque<KernelDrops>,
    /// Counter value and time at the last reading, and the last packet's time then.
    last: Option<(u64, Timestamp, Option<Timestamp>)>,
}

impl DropLog {
    /// The counter read `total` at `now`; `last_packet` is the capture time of the newest packet
    /// analysed so far. An increase is placed from the previous reading's time, or the newest
    /// packet's time then if the analysis lagged behind (the dropped packets arrived after the
    /// ones it had read), to `now`. Increases before the first reading start at the capture's
    /// beginning.
    pub fn observe(&mut self, now: Timestamp, last_packet: Option<Timestamp>, total: u64) {
        let (before, from) = match self.last {
            Some((n, at, pkt)) => (n, pkt.map_or(at, |p| p.min(at))),
            None => (0, Timestamp(i64::MIN)),
        };
        self.last = Some((total, now, last_packet));
        // A counter that went down (libpcap's 32-bit counter wrapped) counts from zero.
        let dropped = if total >= before {
            total - before
        } else {
            total
        };
        if dropped == 0 {
            return;
        }
        let w = KernelDrops {
            dropped,
            from,
            to: now.max(from),
        };
        match self.windows.back_mut() {
            Some(prev) if prev.to >= w.from => {
                prev.dropped += w.dropped;
                prev.to = prev.to.max(w.to);
            }
            _ => self.windows.push_back(w),
        }
        if self.windows.len() > MAX_DROP_WINDOWS {
            if let (Some(a), Some(b)) = (self.windows.pop_front(), self.windows.pop_front()) {
                self.windows.push_front(KernelDrops {
                    dropped: a.dropped + b.dropped,
                    from: a.from,
                    to: b.to,
                });
            }
        }
    }

    /// Drops placed (partly) within `[from, to]`, summed over their windows; None without any.
    pub fn within(&self, from: Timestamp, to: Timestamp) -> Option<KernelDrops> {
        let mut hit: Option<KernelDrops> = None;
        for w in self.windows.iter().filter(|w| w.from <= to && w.to >= from) {
            hit = Some(match hit {
                None => *w,
                Some(h) => KernelDrops {
                    dropped: h.dropped + w.dropped,
                    from: h.from.min(w.from),
                    to: h.to.max(w.to),
                },
            });
        }
        hit
    }

    /// A finished connection, judged at `judged_at`: each `no_response` whose answer could have
    /// been dropped becomes `not_captured` with a [`ExchangeNote::KernelDrops`] note; an
    /// unanswered SYN or an unacknowledged SYN-ACK with drops during the handshake gets
    /// [`Connection::handshake_uncertain`]. A refusal or a reset was seen, so drops cannot have
    /// made it up: those stay. The answer could have been dropped from the request's end until
    /// the connection's last packet when a FIN or RST closed it (an answer before the close would
    /// show as missing bytes), and until `judged_at` when it was still open (idle expiry, end of
    /// capture): every packet after the request may have been among the drops.
    pub fn settle(&self, c: &mut Connection, judged_at: Timestamp) {
        if self.windows.is_empty() {
            return;
        }
        let last = match c.closed {
            crate::tcp::CloseKind::Open => c.last_seen.max(judged_at),
            _ => c.last_seen,
        };
        for ex in &mut c.exchanges {
            self.settle_exchange(ex, last);
        }
        if matches!(
            c.handshake,
            Handshake::Unanswered | Handshake::SynAckNotAcked
        ) {
            c.handshake_uncertain = self.within(c.first_seen, last);
        }
    }

    /// One exchange judged (or provisionally judged) `no_response` at `until`.
    pub fn settle_exchange(&self, ex: &mut Exchange, until: Timestamp) {
        if ex.verdict != Verdict::NoResponse {
            return;
        }
        let from = ex.request.end_time;
        if let Some(d) = self.within(from, until.max(from)) {
            ex.verdict = Verdict::NotCaptured;
            ex.notes.push(ExchangeNote::KernelDrops(d));
        }
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
            Finding::Handshake { conn } | Finding::Tls { conn, .. } => rows.matches(conn, None),
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
                Finding::Tls { conn, finding } => Line::TlsProblem {
                    connection: conn,
                    finding,
                },
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
            // Inside TLS the status is unknown: `?`, never a guessed one.
            let status = match (&ex.response, &ex.encrypted) {
                (Some(r), _) => r.status.to_string(),
                (None, Some(_)) => "?".into(),
                (None, None) => "-".into(),
            };
            let (method, path) = match ex.encrypted {
                Some(_) => ("HTTPS", "(encrypted)"),
                None => (ex.request.method.as_str(), ex.request.path.as_str()),
            };
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
                method,
                path,
                ev,
                status,
                ex.verdict.as_str(),
                tag
            )
        }
        Finding::Handshake { conn } => format!(
            "{} {} -> {} handshake {:?} ({} SYN){}",
            conn.first_seen.to_clock_string(),
            conn.client,
            conn.server,
            conn.handshake,
            conn.syn_attempts,
            conn.handshake_uncertain
                .map(|d| format!(" uncertain: {d}"))
                .unwrap_or_default()
        ),
        Finding::Tls { conn, finding } => format!(
            "{} {} -> {} TLS {}: {}",
            finding.time().to_clock_string(),
            conn.client,
            conn.server,
            finding.kind(),
            finding
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
    let cap = LiveCapture::open(&opts.live)?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || feed_loop(&mut LiveInput::new(cap, false), &opts, &tx));
    Ok(rx)
}

/// The TUI's loop over any [`FrameSource`]: sends what [`spawn_feed`] describes to `tx`.
pub fn feed_loop(
    cap: &mut dyn FrameSource,
    opts: &SniffOptions,
    tx: &std::sync::mpsc::Sender<Feed>,
) {
    let (mut session, mut keys) = start(opts);
    let mut last_tick = cap.elapsed();
    let mut findings = Vec::new();
    loop {
        if cap.stop_requested()
            || opts.duration.is_some_and(|d| cap.elapsed() >= d)
            || opts.count.is_some_and(|c| session.judged >= c)
        {
            break;
        }
        match cap.next_frame(TICK) {
            Ok(Some(f)) => {
                if let Some(k) = keys.as_mut() {
                    k.refresh();
                }
                session.frame(f.ts, f.link, f.data, f.orig_len)
            }
            Ok(None) => {}
            Err(e) => {
                let _ = tx.send(Feed::Error(e.to_string()));
                return;
            }
        }
        if cap.elapsed().saturating_sub(last_tick) >= TICK {
            last_tick = cap.elapsed();
            session.kernel_dropped(cap.now(), cap.stats().dropped_total());
            let mut closed = Vec::new();
            session.tick_collect(cap.now(), &mut findings, &mut closed);
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
            if tx.send(Feed::Progress(progress)).is_err() || tx.send(Feed::Upsert(closed)).is_err()
            {
                return; // the screen was closed
            }
        }
    }
    cap.flush();
    let mut findings = Vec::new();
    session.kernel_dropped(cap.now(), cap.stats().dropped_total());
    let (mut rest, counters, warnings) = session.analyzer.finish();
    let end = cap.now();
    for c in &mut rest {
        session.drops.settle(c, end);
        session.diag.on_finished(c, &mut findings);
    }
    let _ = tx.send(Feed::Upsert(rest));
    let _ = (counters, warnings);
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
        for mut c in self.analyzer.take_finished() {
            self.drops.settle(&mut c, now);
            self.diag.on_finished(&c, out);
            closed.push(c);
        }
        let from = out.len();
        self.diag
            .on_tick(now, self.analyzer.open_with_exchanges(), out);
        for f in out.iter_mut().skip(from) {
            if let Finding::Exchange {
                exchange,
                provisional: true,
                ..
            } = f
            {
                self.drops.settle_exchange(exchange, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_log_follower_reads_what_is_appended_and_starts_over_on_a_rewrite() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("keys.log");
        let line = |n: u8| format!("CLIENT_RANDOM {} {}\n", hex(n, 32), hex(n, 48));
        let sessions = |f: &KeyLogFollower| f.log.read().map(|l| l.len()).unwrap_or(0);
        // Not there yet: waited for.
        let mut f = KeyLogFollower::new(&path);
        assert_eq!(sessions(&f), 0);
        std::fs::write(&path, line(1)).unwrap_or_else(|e| panic!("{e}"));
        f.refresh();
        assert_eq!(sessions(&f), 1);
        // A line appended in two writes counts once it is whole.
        let two = line(2);
        let (a, b) = two.split_at(20);
        let append = |s: &str| {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("{e}"));
            file.write_all(s.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        };
        append(a);
        f.refresh();
        assert_eq!(sessions(&f), 1);
        append(b);
        f.refresh();
        assert_eq!(sessions(&f), 2);
        // Rewritten shorter: read anew.
        std::fs::write(&path, "").unwrap_or_else(|e| panic!("{e}"));
        f.refresh();
        std::fs::write(&path, line(3)).unwrap_or_else(|e| panic!("{e}"));
        f.refresh();
        assert_eq!(sessions(&f), 1);
    }

    fn hex(n: u8, len: usize) -> String {
        std::iter::repeat_n(format!("{n:02x}"), len).collect()
    }
    use crate::capture::file::CaptureFile;
    use crate::model::Verdict;
    use std::collections::HashMap;

    /// A bundled sample as a live source.
    fn sample_input(sample: &str) -> FileInput {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(sample);
        FileInput::new(CaptureFile::open(&path).unwrap())
    }

    // samples/expected.json: stall-no-answer.pcap holds 4 requests, 2 ok and 2 never answered.
    const SAMPLE: &str = "stall-no-answer.pcap";

    #[test]
    fn the_headless_loop_runs_from_a_capture_file() {
        let mut out = Vec::new();
        let opts = SniffOptions::default();
        let r = run_headless_on(&mut sample_input(SAMPLE), &opts, true, &mut out).unwrap();
        assert_eq!(r.summary.requests, 4);
        assert_eq!((r.summary.ok, r.summary.no_response), (2, 2));
        let text = String::from_utf8(out).unwrap();
        let finals = text
            .lines()
            .filter(|l| l.contains(r#""type":"exchange","provisional":false"#))
            .count();
        assert_eq!(finals, 4, "{text}");
        // The device's stall after its unanswered event is reported as it ends.
        assert!(
            text.lines().any(|l| l.starts_with(r#"{"type":"stall""#)),
            "{text}"
        );
    }

    #[test]
    fn the_text_summary_says_what_the_key_log_decrypted() {
        let opts = SniffOptions {
            keylog: Some(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("samples")
                    .join("https-missing-key.keys"),
            ),
            ..SniffOptions::default()
        };
        let mut out = Vec::new();
        let r = run_headless_on(
            &mut sample_input("https-missing-key.pcap"),
            &opts,
            false,
            &mut out,
        )
        .unwrap();
        // samples/expected.json: two HTTPS pushes, the key log holds the first session only.
        assert_eq!(
            (
                r.summary.decryption.decrypted_connections,
                r.summary.decryption.not_decrypted_connections
            ),
            (1, 1)
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("decryption: 1 of 2 TLS connection(s) decrypted")),
            "{text}"
        );
    }

    #[test]
    fn the_tui_loop_runs_from_a_capture_file() {
        let (tx, rx) = std::sync::mpsc::channel();
        feed_loop(&mut sample_input(SAMPLE), &SniffOptions::default(), &tx);
        drop(tx);
        // The latest state of every connection the feed sent.
        let mut conns: HashMap<u64, Connection> = HashMap::new();
        for f in rx {
            if let Feed::Upsert(cs) = f {
                for c in cs {
                    conns.insert(c.id, c);
                }
            }
        }
        let verdicts: Vec<Verdict> = conns
            .values()
            .flat_map(|c| c.exchanges.iter().map(|e| e.verdict))
            .collect();
        assert_eq!(verdicts.len(), 4);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Ok).count(), 2);
        assert_eq!(
            verdicts
                .iter()
                .filter(|v| **v == Verdict::NoResponse)
                .count(),
            2
        );
    }

    /// Feed a recorded sample through a session as if live, with libpcap's drop counter read as
    /// `readings` (capture time, cumulative count) say; the last reading is taken after the last
    /// frame. Returns the findings and the summary.
    fn sniff_sample(name: &str, readings: &[(Timestamp, u64)]) -> (Vec<Finding>, Summary) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples")
            .join(name);
        let mut file = match crate::capture::file::CaptureFile::open(&path) {
            Ok(f) => f,
            Err(e) => panic!("{name}: {e}"),
        };
        let mut session = Session::new(&SniffOptions::default());
        let mut out = Vec::new();
        let mut pending = readings.iter().peekable();
        let mut last = Timestamp::default();
        while let Ok(Some(f)) = file.next_frame() {
            while let Some((at, n)) = pending.next_if(|(at, _)| *at <= f.ts) {
                session.kernel_dropped(*at, *n);
                session.tick(*at, &mut out);
            }
            last = f.ts;
            session.frame(f.ts, f.link, f.data, f.orig_len);
        }
        for (at, n) in pending {
            session.kernel_dropped(*at, *n);
        }
        let (summary, _) = session.finish(Timestamp(last.0 + 1_000_000_000), &mut out);
        (out, summary)
    }

    fn secs(s: f64) -> Timestamp {
        Timestamp((s * 1e9) as i64)
    }

    #[test]
    fn kernel_drops_make_no_response_uncertain() {
        // Two requests of stall-no-answer.pcap are never answered (replay: no_response).
        let (_, plain) = sniff_sample("stall-no-answer.pcap", &[]);
        assert_eq!((plain.no_response, plain.not_captured), (2, 0));

        // The counter rose by 5 while the whole capture ran: either answer may have been dropped.
        let readings = [(secs(1795606966.0), 0), (secs(1795606972.0), 5)];
        let (findings, s) = sniff_sample("stall-no-answer.pcap", &readings);
        assert_eq!((s.ok, s.no_response, s.not_captured), (2, 0, 2));
        let noted: Vec<u64> = findings
            .iter()
            .filter_map(|f| match f {
                Finding::Exchange {
                    exchange,
                    provisional: false,
                    ..
                } => exchange.notes.iter().find_map(|n| match n {
                    ExchangeNote::KernelDrops(d) => Some(d.dropped),
                    _ => None,
                }),
                _ => None,
            })
            .collect();
        assert_eq!(noted, vec![5, 5]);
    }

    #[test]
    fn kernel_drops_before_the_request_change_nothing() {
        // Drops counted at the first reading after 0.2 s: placed before either request ended
        // (0.50 s and 2.8 s in), so both stay no_response.
        let readings = [
            (secs(1795606966.0), 0),
            (secs(1795606966.2), 5),
            (secs(1795606972.0), 5),
        ];
        let (_, s) = sniff_sample("stall-no-answer.pcap", &readings);
        assert_eq!((s.no_response, s.not_captured), (2, 0));
    }

    #[test]
    fn kernel_drops_make_unanswered_handshakes_uncertain_not_refusals() {
        let (_, plain) = sniff_sample("syn-unanswered.pcap", &[]);
        assert_eq!(
            (plain.handshake_failures, plain.handshake_uncertain),
            (2, 0)
        );
        let readings = [(secs(1795606979.0), 0), (secs(1795606984.0), 7)];
        let (findings, s) = sniff_sample("syn-unanswered.pcap", &readings);
        assert_eq!((s.handshake_failures, s.handshake_uncertain), (0, 2));
        let uncertain = findings
            .iter()
            .filter(|f| {
                matches!(f, Finding::Handshake { conn } if conn.handshake_uncertain.is_some_and(|d| d.dropped == 7))
            })
            .count();
        assert_eq!(uncertain, 2);

        // A refusal (RST) was seen: drops cannot have made it up.
        let readings = [(secs(1795606976.0), 0), (secs(1795606977.0), 7)];
        let (_, s) = sniff_sample("refused.pcap", &readings);
        assert_eq!((s.handshake_failures, s.handshake_uncertain), (2, 0));
    }

    #[test]
    fn drops_after_an_open_connections_last_packet_still_count() {
        // Connection 2 of stall-no-answer.pcap: its request is never answered. Drops counted
        // after its last packet, before it is judged: if it was still open then, the answer may
        // be among them; if a FIN closed it first, an answer would have shown as missing bytes.
        let report = crate::replay::replay(
            &crate::report::tests::sample("stall-no-answer.pcap"),
            Default::default(),
            &mut |_| {},
            &mut |_| {},
        )
        .expect("sample opens");
        let conn = report
            .connections
            .iter()
            .find(|c| {
                c.exchanges
                    .first()
                    .is_some_and(|e| e.verdict == Verdict::NoResponse)
            })
            .expect("an unanswered request")
            .clone();
        let after = Timestamp(conn.last_seen.0 + 1_000_000_000);
        let mut log = DropLog::default();
        log.observe(after, Some(after), 0);
        log.observe(Timestamp(after.0 + 1_000_000_000), Some(after), 3);
        let judged = Timestamp(after.0 + 5_000_000_000);

        let mut open = conn.clone();
        open.closed = crate::tcp::CloseKind::Open;
        log.settle(&mut open, judged);
        assert_eq!(open.exchanges[0].verdict, Verdict::NotCaptured);

        let mut closed = conn;
        log.settle(&mut closed, judged);
        assert_eq!(closed.exchanges[0].verdict, Verdict::NoResponse);
    }

    #[test]
    fn drop_log_places_and_merges_windows() {
        let mut log = DropLog::default();
        log.observe(Timestamp(100), None, 0);
        log.observe(Timestamp(200), Some(Timestamp(150)), 0);
        // The analysis had read packets up to 150 at the reading at 200: drops counted at 300
        // may be of packets that arrived from 150 on.
        log.observe(Timestamp(300), Some(Timestamp(290)), 4);
        assert_eq!(
            log.within(Timestamp(0), Timestamp(1000)),
            Some(KernelDrops {
                dropped: 4,
                from: Timestamp(150),
                to: Timestamp(300)
            })
        );
        assert_eq!(log.within(Timestamp(0), Timestamp(149)), None);
        assert_eq!(log.within(Timestamp(301), Timestamp(400)), None);
        // A counter that went backwards (32-bit wrap in libpcap) counts from zero; its window
        // (from 290, the newest packet at the last reading) overlaps the previous one: merged.
        log.observe(Timestamp(400), Some(Timestamp(400)), 1);
        assert_eq!(
            log.within(Timestamp(301), Timestamp(400)),
            Some(KernelDrops {
                dropped: 5,
                from: Timestamp(150),
                to: Timestamp(400)
            })
        );
    }

    #[test]
    fn huge_timeouts_saturate_instead_of_wrapping() {
        assert_eq!(nanos(Duration::from_secs(2)), 2_000_000_000);
        assert_eq!(nanos(Duration::MAX), i64::MAX);
        assert_eq!(nanos(Duration::from_secs(u64::MAX / 1_000)), i64::MAX);
    }
}
