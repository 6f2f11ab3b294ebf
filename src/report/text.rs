//! The readable summary printed by `--text`: per device, per problem, each with a one-line
//! explanation of what it means for the engineer.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::diagnose::{
    apply_retries, explain_handshake, explain_tls_finding, explain_verdict, Ledger,
};
use crate::model::{Connection, ExchangeRef, Report, Summary, Verdict};
use crate::pipeline::Counters;
use crate::time::Timestamp;
use crate::tls::decrypt::NotDecryptedReason;
use crate::tls::{CertificateView, TlsInfo};

/// Problems listed in full before the rest are only counted.
const MAX_PROBLEMS_LISTED: usize = 50;

/// Render the text report.
pub fn render(r: &Report) -> String {
    let mut pictures = Pictures::default();
    let mut decryption = Decryption::default();
    r.connections.iter().for_each(|c| {
        pictures.add(c);
        decryption.add(c);
    });
    render_with(r, &pictures, &decryption)
}

/// Broken pictures (`isapi::picture`) to list: the earliest [`MAX_PROBLEMS_LISTED`] and a count.
/// Kept apart from the problems because the exchange itself may well be `ok`: the server got the
/// event, without a usable picture.
#[derive(Default)]
struct Pictures {
    lines: Vec<(Timestamp, String)>,
    total: u64,
}

impl Pictures {
    fn add(&mut self, c: &Connection) {
        for ex in &c.exchanges {
            for n in ex.notes.iter().filter(|n| n.kind() == "picture") {
                self.total += 1;
                let ev = ex
                    .event
                    .as_ref()
                    .map(|e| e.type_label())
                    .unwrap_or_default();
                self.lines.push((
                    ex.request.time,
                    format!(
                        "{} {} {} {} {} [{}]: {n}",
                        ex.request.time.to_clock_string(),
                        c.client,
                        ex.request.method,
                        ex.request.path,
                        if ev.is_empty() { "-" } else { &ev },
                        ex.verdict.as_str()
                    ),
                ));
            }
        }
        if self.lines.len() > 2 * MAX_PROBLEMS_LISTED {
            self.lines.sort();
            self.lines.truncate(MAX_PROBLEMS_LISTED);
        }
    }
}

/// Connections with a decryption problem (`--keylog`: not decrypted, a direction that stopped,
/// a fatal alert read from the plaintext), one line each: the earliest [`MAX_PROBLEMS_LISTED`]
/// and a count. Apart from the problems: most say what the key log or the capture lacks, not
/// what the device or server did.
#[derive(Default)]
struct Decryption {
    /// (first problem's time, not decrypted because the session is not in the log, line).
    lines: Vec<(Timestamp, bool, String)>,
    total: u64,
}

impl Decryption {
    fn add(&mut self, c: &Connection) {
        let Some(d) = c.decryption.as_deref() else {
            return;
        };
        let mut problems = d.problems();
        let Some(first) = problems.next() else {
            return;
        };
        self.total += 1;
        let more = problems.count();
        let state = match d.not_decrypted() {
            Some(why) => format!("not decrypted ({})", why.as_str()),
            None => "decrypted".to_string(),
        };
        let more = if more > 0 {
            format!(" (and {more} more: --json)")
        } else {
            String::new()
        };
        self.lines.push((
            first.time(),
            d.not_decrypted() == Some(NotDecryptedReason::KeyNotInLog),
            format!(
                "{} {} -> {} {state}: {first}{more}",
                first.time().to_clock_string(),
                c.client,
                c.server
            ),
        ));
        if self.lines.len() > 2 * MAX_PROBLEMS_LISTED {
            self.lines.sort();
            self.lines.truncate(MAX_PROBLEMS_LISTED);
        }
    }

    /// The section; sessions missing from the key log are listed one by one only when others
    /// decrypted (when none did, one line says the log is not this capture's).
    fn render(&self, o: &mut String, s: &Summary) {
        if self.total == 0 {
            return;
        }
        let dc = &s.decryption;
        let none_decrypted = dc.decrypted_connections == 0;
        let mut lines = self.lines.clone();
        lines.sort();
        let _ = writeln!(
            o,
            "\nDECRYPTION PROBLEMS ({} connection(s); their exchanges are judged without the plaintext where it is missing)",
            self.total
        );
        if none_decrypted && dc.not_decrypted.key_not_in_log > 0 {
            let _ = writeln!(
                o,
                "none of the {} TLS session(s) is in the key log: is it the log of this capture's server or device?",
                dc.not_decrypted.key_not_in_log
            );
        }
        let listed: Vec<&String> = lines
            .iter()
            .filter(|(_, missing, _)| !(none_decrypted && *missing))
            .map(|(_, _, l)| l)
            .collect();
        for l in listed.iter().take(MAX_PROBLEMS_LISTED) {
            let _ = writeln!(o, "{l}");
        }
        let shown = listed.len().min(MAX_PROBLEMS_LISTED) as u64;
        let collapsed = if none_decrypted {
            dc.not_decrypted.key_not_in_log
        } else {
            0
        };
        let rest = self.total.saturating_sub(shown).saturating_sub(collapsed);
        if rest > 0 {
            let _ = writeln!(o, "... and {rest} more (use --json for all)");
        }
    }
}

/// The summary line on decryption, when a key log was given and a TLS connection needed it:
/// how many decrypted, how many not and why, how many with problems (replay and sniff `--text`).
pub fn decryption_line(s: &Summary) -> Option<String> {
    let d = &s.decryption;
    let given = d.decrypted_connections + d.not_decrypted_connections;
    if given == 0 {
        return None;
    }
    let mut o = format!(
        "decryption: {} of {given} TLS connection(s) decrypted",
        d.decrypted_connections
    );
    if d.not_decrypted_connections > 0 {
        let why: Vec<String> = d
            .not_decrypted
            .each()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{} {n}", r.as_str()))
            .collect();
        let _ = write!(
            o,
            ", {} not ({})",
            d.not_decrypted_connections,
            why.join(", ")
        );
    }
    let _ = write!(o, "   decryption problems: {}", d.decryption_problems);
    Some(o)
}

fn render_with(r: &Report, pictures: &Pictures, decryption: &Decryption) -> String {
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
    // Shown only when there are some, so the line stays as it was for the usual capture.
    let mut not_captured = String::new();
    for v in [
        Verdict::NotCaptured,
        Verdict::MalformedResponse,
        Verdict::EncryptedAnswered,
    ] {
        if s.verdict_count(v) > 0 {
            let _ = write!(not_captured, "   {}: {}", v.as_str(), s.verdict_count(v));
        }
    }
    let _ = writeln!(
        o,
        "connections: {}   requests: {}   ok: {}   error_status: {}   no_response: {}   incomplete: {}{not_captured}",
        s.connections, s.requests, s.ok, s.error_status, s.no_response, s.incomplete
    );
    // The client-side failure kinds only when there are some (the line stays as it was).
    let mut client_side = String::new();
    if s.handshake_syn_ack_not_acked > 0 {
        let _ = write!(
            client_side,
            ", SYN-ACK not acknowledged {}",
            s.handshake_syn_ack_not_acked
        );
    }
    if s.handshake_client_reset > 0 {
        let _ = write!(
            client_side,
            ", reset by the client {}",
            s.handshake_client_reset
        );
    }
    let _ = writeln!(
        o,
        "handshake failures: {} (unanswered {}, refused {}{client_side})   stalls: {} ({:.1} s)   retries: {}",
        s.handshake_failures,
        s.handshake_unanswered,
        s.handshake_refused,
        s.stalls,
        s.stalled_seconds,
        s.retries
    );
    if s.tls_connections > 0 || s.tls_problems > 0 {
        let _ = writeln!(
            o,
            "TLS: {} connection(s) spoke TLS   TLS problems: {} (HTTPS/HTTP mismatch {}, handshake failures {})",
            s.tls_connections, s.tls_problems, s.tls_mismatches, s.tls_handshake_failures
        );
    }
    if let Some(line) = decryption_line(s) {
        let _ = writeln!(o, "{line}");
    }
    if s.one_sided_connections > 0 {
        let _ = writeln!(
            o,
            "one-sided capture: {} connection(s) with only one side's packets; answers the client \
             acknowledged are reported not_captured (uncertain)",
            s.one_sided_connections
        );
    }
    if s.capture_gap_bytes > 0 || s.truncated_frames > 0 || s.undecodable_frames > 0 {
        let _ = writeln!(
            o,
            "capture quality: {} bytes missing (capture gaps), {} frames cut by snap length, {} undecodable frames",
            s.capture_gap_bytes, s.truncated_frames, s.undecodable_frames
        );
    }
    if !s.encapsulations.is_empty() {
        let _ = writeln!(
            o,
            "encapsulated frames: {} (analysed by their inner addresses)",
            s.encapsulations.describe()
        );
    }
    if s.connections_evicted > 0 || s.connections_expired > 0 {
        let _ = writeln!(
            o,
            "connection table: {} closed early because the table was full (peak {} open), {} closed after the idle timeout; their last requests may be judged on partial data",
            s.connections_evicted, s.peak_open_connections, s.connections_expired
        );
    }
    if let Some(note) = NoRequestNote::of(s) {
        let _ = writeln!(o, "\n{note}");
    }

    if !r.devices.is_empty() {
        let _ = writeln!(o, "\nDEVICES");
        let _ = writeln!(
            o,
            "{:<40} {:>6} {:>6} {:>6} {:>5} {:>7} {:>6}  {:<12} event types",
            "device", "events", "ok", "fail", "hs", "stalls", "stall_s", "last seen"
        );
        for d in &r.devices {
            let mut types: Vec<String> = d
                .event_types
                .iter()
                .take(4)
                .map(|(t, n)| format!("{t}x{n}"))
                .collect();
            // Shown only when there are some, so the line stays as it was for plain HTTP.
            if d.encrypted_answered > 0 {
                types.push(format!("(encrypted answered x{})", d.encrypted_answered));
            }
            if d.tls_problems > 0 {
                types.push(format!("(TLS problems x{})", d.tls_problems));
            }
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
        let tls = c.tls.as_deref().map(tls_line);
        for f in c.tls_problems() {
            let e = explain_tls_finding(f);
            let tls = tls
                .as_ref()
                .map(|t| format!("\n    tls: {t}"))
                .unwrap_or_default();
            problems.push((
                f.time(),
                format!(
                    "{} {} TLS [{}] {}\n    {}\n    {}\n    next: {}{tls}",
                    f.time().to_clock_string(),
                    c.client,
                    f.kind(),
                    c.server,
                    e.what,
                    e.meaning,
                    e.next
                ),
            ));
        }
        for ex in &c.exchanges {
            if !ex.verdict.is_problem() {
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
                .map(|e| e.type_label())
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| "-".into());
            let retry = match ex.retry_of {
                Some(of) => format!(
                    " (retry of connection {} request {})",
                    of.connection, of.index
                ),
                None => String::new(),
            };
            let mut notes: String = ex
                .notes
                .iter()
                .map(|n| format!("\n    note: {n}"))
                .collect();
            let (method, path) = if ex.encrypted.is_some() {
                if let Some(t) = &tls {
                    let _ = write!(notes, "\n    tls: {t}");
                }
                ("HTTPS", "(encrypted)")
            } else {
                (ex.request.method.as_str(), ex.request.path.as_str())
            };
            problems.push((
                ex.request.time,
                format!(
                    "{} {} {} {} {} [{}] {}{}\n    {}\n    {}\n    next: {}{notes}",
                    ex.request.time.to_clock_string(),
                    c.client,
                    method,
                    path,
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
    let total = s.handshake_failures
        + s.requests
            .saturating_sub(s.ok)
            .saturating_sub(s.encrypted_answered)
        + s.tls_problems;
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
    } else if s.encrypted_answered > 0 {
        let _ = writeln!(
            o,
            "\nNo problems seen: {} request(s) got 200 OK, {} were answered inside TLS (status \
             unknown without the session keys).",
            s.ok, s.encrypted_answered
        );
    } else if s.requests > 0 {
        let _ = writeln!(o, "\nNo problems: every request got 200 OK.");
    }

    decryption.render(&mut o, s);

    if pictures.total > 0 {
        let mut lines = pictures.lines.clone();
        lines.sort();
        let _ = writeln!(
            o,
            "\nPICTURES ({} cut, corrupt or not JPEG: the server got the event without a usable picture)",
            pictures.total
        );
        for (_, l) in lines.iter().take(MAX_PROBLEMS_LISTED) {
            let _ = writeln!(o, "{l}");
        }
        if pictures.total > MAX_PROBLEMS_LISTED as u64 {
            let _ = writeln!(
                o,
                "... and {} more (use --json for all)",
                pictures.total - MAX_PROBLEMS_LISTED as u64
            );
        }
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

/// One line on what a connection's TLS records showed: version chosen (and offered), SNI,
/// cipher suite, the certificate where readable, alerts, handshake state and application data
/// per direction. Shared by the text report and the TUI.
pub fn tls_line(t: &TlsInfo) -> String {
    let mut o = String::new();
    let offered = t.client_hello.as_ref().and_then(|c| c.highest_version());
    match t.server_hello.as_ref().and_then(|s| s.version) {
        Some(v) => {
            let _ = write!(o, "{v}");
        }
        None => {
            let _ = write!(o, "no server hello");
        }
    }
    if let Some(v) = offered {
        let _ = write!(o, " (offered up to {v})");
    }
    if let Some(sni) = t.client_hello.as_ref().and_then(|c| c.sni.as_deref()) {
        let _ = write!(o, ", SNI {sni}");
    }
    if let Some(cs) = t.server_hello.as_ref().and_then(|s| s.cipher_suite) {
        let _ = write!(o, ", {cs}");
    }
    match &t.certificate {
        CertificateView::Readable(c) => {
            let _ = write!(o, ", certificate {} issued by {}", c.subject, c.issuer);
            if c.self_signed {
                o.push_str(" (self-signed)");
            }
            if !c.valid_at_capture {
                let _ = write!(
                    o,
                    " (not valid at capture time: {} .. {})",
                    c.not_before, c.not_after
                );
            }
        }
        CertificateView::Encrypted => o.push_str(", certificate encrypted (TLS 1.3)"),
        CertificateView::Unreadable { reason } => {
            let _ = write!(o, ", certificate unreadable ({reason:?})");
        }
        CertificateView::NotSeen => {}
    }
    let _ = write!(o, ", handshake {}", handshake_word(t));
    for a in &t.alerts {
        let who = match a.by {
            crate::tcp::Side::Client => "device",
            crate::tcp::Side::Server => "server",
        };
        match (a.readable, a.level, a.description) {
            (true, Some(l), Some(d)) => {
                let _ = write!(o, ", {who} alert {l} {d}");
            }
            _ => {
                let _ = write!(o, ", {who} alert (encrypted)");
            }
        }
    }
    let ad = &t.application_data;
    let _ = write!(
        o,
        ", application data {} record(s) {} B device->server, {} record(s) {} B server->device",
        ad.client_to_server.records,
        ad.client_to_server.bytes,
        ad.server_to_client.records,
        ad.server_to_client.bytes
    );
    o
}

fn handshake_word(t: &TlsInfo) -> &'static str {
    match t.handshake {
        crate::tls::HandshakeState::NotSeen => "not seen",
        crate::tls::HandshakeState::InProgress => "in progress",
        crate::tls::HandshakeState::Completed => "completed",
        crate::tls::HandshakeState::Failed => "failed",
    }
}

/// What the summary says when a capture holds no request and no failed handshake: the device's
/// configuration is blamed only when the capture was readable and showed no connection at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRequestNote {
    /// No frame could be decoded as TCP, and some could not be decoded at all.
    Undecodable { frames: u64, undecodable: u64 },
    /// TCP connections were seen but carried no readable request.
    ConnectionsWithoutRequest {
        connections: u64,
        gap_bytes: u64,
        truncated_frames: u64,
        undecodable: u64,
    },
    /// Readable capture, no connection at all: the device never tried.
    NoConnectionAttempt { undecodable: u64 },
}

impl NoRequestNote {
    /// The note for this summary, `None` when there were requests or failed handshakes.
    pub fn of(s: &Summary) -> Option<NoRequestNote> {
        if s.requests > 0 || s.handshake_failures > 0 || s.tls_problems > 0 {
            return None;
        }
        Some(if s.connections > 0 {
            NoRequestNote::ConnectionsWithoutRequest {
                connections: s.connections,
                gap_bytes: s.capture_gap_bytes,
                truncated_frames: s.truncated_frames,
                undecodable: s.undecodable_frames,
            }
        } else if s.undecodable_frames > 0 && s.tcp_packets == 0 {
            NoRequestNote::Undecodable {
                frames: s.packets,
                undecodable: s.undecodable_frames,
            }
        } else {
            NoRequestNote::NoConnectionAttempt {
                undecodable: s.undecodable_frames,
            }
        })
    }
}

impl std::fmt::Display for NoRequestNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            NoRequestNote::Undecodable {
                frames,
                undecodable,
            } => write!(
                f,
                "No request can be judged: {undecodable} of {frames} frames could not be decoded \
                 (see WARNINGS), so nothing can be said about connections or alarm pushes in \
                 this capture. Capture again with a link type alarmscope reads (tcpdump -i \
                 <interface>, or -i any with the default LINUX_SLL2)."
            ),
            NoRequestNote::ConnectionsWithoutRequest {
                connections,
                gap_bytes,
                truncated_frames,
                undecodable,
            } => {
                write!(
                    f,
                    "No HTTP request could be read, although {connections} TCP connection(s) \
                     were seen (see the handshakes in --json or the TUI)."
                )?;
                if gap_bytes > 0 || truncated_frames > 0 {
                    write!(
                        f,
                        " The capture misses {gap_bytes} bytes of them ({truncated_frames} frames \
                         cut by the snap length): the requests may be in what is missing; \
                         capture with the full snap length (tcpdump -s 0)."
                    )?;
                } else {
                    write!(
                        f,
                        " They carried no HTTP/1.x request: another protocol, or HTTPS where \
                         HTTP was expected (check the host slot's protocolType)."
                    )?;
                }
                if undecodable > 0 {
                    write!(
                        f,
                        " {undecodable} frames could not be decoded (see WARNINGS)."
                    )?;
                }
                Ok(())
            }
            NoRequestNote::NoConnectionAttempt { undecodable } => {
                write!(
                    f,
                    "No HTTP request and no connection attempt to an alarm server in this \
                     capture. The commonest reasons: the event is not linked to \"notify \
                     surveillance center\" or not armed by schedule on the device, the device's \
                     httpHosts points elsewhere (or uses HTTPS when the server speaks HTTP), or \
                     the capture was taken where the traffic does not pass."
                )?;
                if undecodable > 0 {
                    write!(
                        f,
                        " ({undecodable} frames could not be decoded: see WARNINGS.)"
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// The text report built while the capture is read, in bounded memory: the diagnosis ledger
/// takes every connection, but only the connections holding the earliest problems (as many as
/// are listed in full) are kept for their explanations.
pub struct TextStream {
    ledger: Ledger,
    /// Connections with a problem, by their first problem's time (and arrival, for ties).
    kept: BTreeMap<(Timestamp, u64), Connection>,
    arrivals: u64,
    pictures: Pictures,
    decryption: Decryption,
}

impl Default for TextStream {
    fn default() -> Self {
        TextStream {
            ledger: Ledger::folding(super::stream::LEDGER_ITEMS),
            kept: BTreeMap::new(),
            arrivals: 0,
            pictures: Pictures::default(),
            decryption: Decryption::default(),
        }
    }
}

impl TextStream {
    /// Take in one finished connection.
    pub fn add(&mut self, c: Connection) {
        self.add_filtered(c, &crate::filter::RowFilter::default());
    }

    /// Take in one finished connection for the diagnosis (summary, stalls, devices still describe
    /// the whole capture) but list only problems among its rows that pass `filter`.
    pub fn add_filtered(&mut self, c: Connection, filter: &crate::filter::RowFilter) {
        self.ledger.add(&c);
        let Some(c) = filter.select(c) else {
            return;
        };
        self.pictures.add(&c);
        self.decryption.add(&c);
        let first_problem = c
            .exchanges
            .iter()
            .filter(|e| e.verdict.is_problem())
            .map(|e| e.request.time)
            .chain(c.handshake.failed().then_some(c.first_seen))
            .chain(c.tls_problems().map(|f| f.time()))
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
    pub fn finish(
        self,
        source: &str,
        counters: &Counters,
        warnings: Vec<crate::capture::Warning>,
    ) -> String {
        let (findings, retries) = self.ledger.finish(counters, counters.last_packet);
        let mut connections: Vec<Connection> = self.kept.into_values().collect();
        connections.sort_by_key(|c| (c.first_seen, c.id));
        apply_retries(&mut connections, retries);
        render_with(
            &super::assemble(source, connections, findings, warnings),
            &self.pictures,
            &self.decryption,
        )
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
            "http-to-https.pcap",
            "https-unknown-ca.pcap",
            "https-no-answer.pcap",
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

    #[test]
    fn encapsulations_get_a_line_only_when_there_are_some() {
        let mut r = Report::default();
        assert!(!render(&r).contains("encapsulated"), "{}", render(&r));
        r.summary.encapsulations.vxlan = 3;
        r.summary.encapsulations.mpls = 2;
        let text = render(&r);
        assert!(
            text.contains(
                "encapsulated frames: vxlan 3, mpls 2 (analysed by their inner addresses)"
            ),
            "{text}"
        );
    }

    #[test]
    fn no_request_note_says_what_was_seen() {
        let undecodable = Summary {
            packets: 155,
            undecodable_frames: 155,
            ..Summary::default()
        };
        assert!(matches!(
            NoRequestNote::of(&undecodable),
            Some(NoRequestNote::Undecodable {
                frames: 155,
                undecodable: 155
            })
        ));
        let handshake_and_cut_request = Summary {
            packets: 12,
            tcp_packets: 12,
            connections: 1,
            capture_gap_bytes: 2137,
            truncated_frames: 3,
            ..Summary::default()
        };
        assert!(matches!(
            NoRequestNote::of(&handshake_and_cut_request),
            Some(NoRequestNote::ConnectionsWithoutRequest {
                connections: 1,
                gap_bytes: 2137,
                truncated_frames: 3,
                ..
            })
        ));
        let nothing = Summary {
            packets: 40,
            non_tcp_packets: 40,
            ..Summary::default()
        };
        assert!(matches!(
            NoRequestNote::of(&nothing),
            Some(NoRequestNote::NoConnectionAttempt { undecodable: 0 })
        ));
        let failed_handshake = Summary {
            connections: 1,
            handshake_failures: 1,
            ..Summary::default()
        };
        assert_eq!(NoRequestNote::of(&failed_handshake), None);
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
