//! The detail pane: the selected row's handshake, request, response and diagnosis, one tab each.
//! Lines are built for one row only and cached until the row, tab or data change.

use std::rc::Rc;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Tabs, Wrap};
use ratatui::Frame;

use super::app::{App, DetailCache, Focus, RowRef, ScrollLimit, Tab};
use super::format::{bytes, num};
use super::pretty;
use super::theme::Theme;
use crate::diagnose::{explain_handshake, explain_tls_finding, explain_verdict, Explanation};
use crate::isapi::{sniff_syntax, Syntax};
use crate::model::{Connection, Exchange};
use crate::tcp::{CloseKind, Direction, Handshake, Side};

/// Lines of pretty-printed body, tree or hex shown at most.
const MAX_BODY_LINES: usize = 2000;
const MAX_TREE_LINES: usize = 500;
const HEX_BYTES: usize = 512;

/// Draw the pane: tab titles on the first inner row, the tab's text below.
pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let focused = app.focus == Focus::Detail;
    let block = Block::bordered()
        .title(" Detail ")
        .border_style(if focused {
            t.focus_border()
        } else {
            t.border()
        });
    let inner = block.inner(area);
    f.render_widget(block, area);
    app.view.detail.set(area);
    let [tabs_area, text_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
    // The Request tab of an exchange with pictures: they take the right (or lower) part.
    let text_area = super::picture::split(f, text_area, app);
    app.view.detail_text.set(text_area);
    let titles: Vec<String> = Tab::ALL
        .iter()
        .map(|tab| format!("{} {}", tab.index() + 1, tab.title()))
        .collect();
    let tabs = Tabs::new(titles)
        .select(app.tab.index())
        .style(t.dim())
        .highlight_style(
            t.title()
                .patch(t.accent())
                .add_modifier(ratatui::style::Modifier::REVERSED),
        );
    f.render_widget(tabs, tabs_area);
    app.view.detail_tabs.set(tab_areas(tabs_area));

    let lines = cached_lines(app);
    measure_scroll(app, &lines, text_area);
    let scroll = app.detail_scroll as usize;
    let take = scroll
        .saturating_add(text_area.height as usize)
        .min(lines.len());
    // Only the lines up to the bottom of the window are handed to the widget (each source line
    // renders to at least one row, so that is always enough).
    let shown: Vec<Line<'static>> = lines.get(..take).unwrap_or(&[]).to_vec();
    let p = Paragraph::new(shown)
        .wrap(Wrap { trim: false })
        .scroll((app.detail_scroll, 0));
    f.render_widget(p, text_area);
}

/// Where each tab's title is drawn in the tab row `row` (the widget pads each title by one space
/// each side and separates titles by a one-column divider), clipped to the row.
fn tab_areas(row: Rect) -> [Rect; 4] {
    let mut areas = [Rect::default(); 4];
    let mut x = row.x;
    for (area, tab) in areas.iter_mut().zip(Tab::ALL) {
        let w = (tab.title().len() + 2 + 2) as u16; // "N " + title, plus padding
        *area = Rect::new(x, row.y, w, 1).intersection(row);
        x = x.saturating_add(w + 1);
    }
    areas
}

/// Leave in the view how far `lines` can scroll in `area` (rows after wrapping, less a page),
/// for the scroll keys and the wheel. Measured again only when the row, tab, data or size changed.
fn measure_scroll(app: &App, lines: &[Line<'static>], area: Rect) {
    let size = (area.width, area.height);
    let (row, tab, data_version) = (app.selected_row(), app.tab, app.data_version);
    let known = app.view.detail_scroll_max.get().filter(|l| {
        l.row == row && l.tab == tab && l.data_version == data_version && l.size == size
    });
    if known.is_some() {
        return;
    }
    let width = area.width.max(1) as usize;
    let rendered: usize = lines.iter().map(|l| l.width().max(1).div_ceil(width)).sum();
    let max = rendered.saturating_sub(area.height.max(1) as usize);
    app.view.detail_scroll_max.set(Some(ScrollLimit {
        row,
        tab,
        data_version,
        size,
        max: u16::try_from(max).unwrap_or(u16::MAX),
    }));
}

/// The selected row's lines for the current tab, from the cache when still valid.
pub fn cached_lines(app: &App) -> Rc<Vec<Line<'static>>> {
    let Some(r) = app.selected_row() else {
        return Rc::new(vec![Line::from(empty_text(app))]);
    };
    let key = (r, app.tab, app.data_version);
    if let Ok(cache) = app.detail_cache.try_borrow() {
        if let Some(c) = cache.as_ref().filter(|c| c.key == key) {
            return c.lines.clone();
        }
    }
    let lines = Rc::new(build(app, r, app.tab));
    if let Ok(mut cache) = app.detail_cache.try_borrow_mut() {
        *cache = Some(DetailCache {
            key,
            lines: lines.clone(),
        });
    }
    lines
}

fn empty_text(app: &App) -> String {
    if app.connection_count() == 0 {
        if app.finished {
            "No connection in this capture.".into()
        } else {
            "Waiting for connections ...".into()
        }
    } else {
        "No row matches the filter.".into()
    }
}

/// Build a tab's lines for one row.
pub fn build(app: &App, r: RowRef, tab: Tab) -> Vec<Line<'static>> {
    let Some(loaded) = app.exchange(r) else {
        return vec![Line::from(match app.load_error(r) {
            Some(why) => format!("(cannot load this connection: {why})"),
            None => "(row no longer available)".to_string(),
        })];
    };
    let (c, ex) = (&*loaded.conn, loaded.ex());
    let t = app.theme;
    match (tab, ex) {
        (Tab::Handshake, _) => handshake_lines(t, c),
        (Tab::Request, Some(ex)) if ex.encrypted.is_some() => encrypted_request_lines(t, c, ex),
        (Tab::Request, Some(ex)) => {
            let mut v = request_lines(t, ex);
            if ex.decrypted {
                v.insert(1, decrypted_line(t, c));
            }
            v
        }
        (Tab::Response, Some(ex)) if ex.encrypted.is_some() => encrypted_response_lines(t, c, ex),
        (Tab::Response, Some(ex)) => response_lines(t, c, ex),
        (Tab::Diagnosis, Some(ex)) => diagnosis_lines(app, c, ex),
        (Tab::Request | Tab::Response, None) => no_request_lines(t, c),
        (Tab::Diagnosis, None) => {
            let mut v = vec![heading(t, "Handshake")];
            v.extend(explanation(t, &explain_handshake(c)));
            v.extend(connection_problems(t, c));
            v
        }
    }
}

/// A "Headers" section: each header as sent, or a note that none was seen.
fn header_lines(t: Theme, headers: &[(String, String)]) -> Vec<Line<'static>> {
    let mut v = vec![heading(t, "Headers")];
    if headers.is_empty() {
        v.push(Line::styled("  (none seen)", t.dim()));
    }
    for (k, val) in headers {
        v.push(Line::from(vec![
            Span::styled(format!("  {k}: "), t.accent()),
            Span::raw(val.clone()),
        ]));
    }
    v
}

fn heading(t: Theme, s: &str) -> Line<'static> {
    Line::from(Span::styled(s.to_string(), t.title()))
}

fn kv(t: Theme, k: &str, v: String) -> Line<'static> {
    Line::from(vec![Span::styled(format!("{k}: "), t.dim()), Span::raw(v)])
}

fn explanation(t: Theme, e: &Explanation) -> Vec<Line<'static>> {
    vec![
        Line::from(vec![
            Span::styled("What:    ", t.title()),
            Span::raw(e.what.clone()),
        ]),
        Line::from(vec![
            Span::styled("Meaning: ", t.title()),
            Span::raw(e.meaning.clone()),
        ]),
        Line::from(vec![
            Span::styled("Next:    ", t.title()),
            Span::raw(e.next.clone()),
        ]),
    ]
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Client => "device",
        Side::Server => "server",
    }
}

fn close_text(c: &CloseKind) -> String {
    match c {
        CloseKind::Fin(s) => format!("FIN by {}", side_name(*s)),
        CloseKind::Rst(s) => format!("RST by {}", side_name(*s)),
        CloseKind::Open => "still open at the end".into(),
    }
}

fn handshake_name(h: Handshake) -> &'static str {
    match h {
        Handshake::Complete => "complete",
        Handshake::Unanswered => "unanswered",
        Handshake::Refused => "refused",
        Handshake::SynAckNotAcked => "SYN-ACK not acknowledged by the client",
        Handshake::ClientReset => "reset by the client after SYN-ACK",
        Handshake::OneSided => "complete (one-sided capture: client's ACKs)",
        Handshake::NotSeen => "not seen (capture began later)",
    }
}

fn handshake_lines(t: Theme, c: &Connection) -> Vec<Line<'static>> {
    let hs_style = match c.handshake {
        Handshake::Complete => t.ok(),
        h if h.failed() => t.handshake_fail(),
        _ => t.dim(),
    };
    let mut v = vec![
        Line::from(vec![
            Span::styled(format!("Connection {}: ", c.id), t.title()),
            Span::raw(format!("{} -> {}", c.client, c.server)),
        ]),
        Line::from(vec![
            Span::styled("handshake: ", t.dim()),
            Span::styled(handshake_name(c.handshake), hs_style),
            Span::styled("  SYNs: ", t.dim()),
            Span::raw(c.syn_attempts.to_string()),
            Span::styled("  closed: ", t.dim()),
            Span::raw(close_text(&c.closed)),
            Span::styled("  packets: ", t.dim()),
            Span::raw(num(c.packets)),
        ]),
    ];
    if c.retransmissions > 0 || c.gap_bytes != [0, 0] || c.truncated_frames > 0 {
        v.push(kv(
            t,
            "capture",
            format!(
                "{} retransmissions, missing {} device->server / {} server->device, {} frames cut",
                num(c.retransmissions),
                bytes(c.gap_bytes[0]),
                bytes(c.gap_bytes[1]),
                num(c.truncated_frames)
            ),
        ));
    }
    v.push(Line::default());
    if c.timeline.is_empty() {
        v.push(Line::styled(
            "(no packets kept for this connection)",
            t.dim(),
        ));
    } else {
        v.push(Line::styled(
            format!(
                "{:>12}  {:<14}  {:<11} {:>10} {:>10} {:>6}",
                "time", "direction", "flags", "seq", "ack", "len"
            ),
            t.title(),
        ));
        let t0 = c.timeline.first().map(|p| p.ts).unwrap_or(c.first_seen);
        for p in &c.timeline {
            let dir = match p.dir {
                Direction::ClientToServer => "device->server",
                Direction::ServerToClient => "server->device",
            };
            let flags_style = if p.flags.contains("RST") {
                t.bad()
            } else if p.flags.contains("SYN") {
                t.accent()
            } else {
                Style::new()
            };
            v.push(Line::from(vec![
                Span::raw(format!(
                    "{:>12}  {:<14}  ",
                    format!("+{:.3} ms", p.ts.millis_since(t0)),
                    dir
                )),
                Span::styled(format!("{:<11}", p.flags), flags_style),
                Span::raw(format!(" {:>10} {:>10} {:>6}", p.seq, p.ack, p.len)),
            ]));
        }
        if c.packets > c.timeline.len() as u64 {
            v.push(Line::styled(
                format!(
                    "... {} more packets not kept",
                    num(c.packets - c.timeline.len() as u64)
                ),
                t.dim(),
            ));
        }
    }
    v.push(Line::default());
    v.extend(explanation(t, &explain_handshake(c)));
    if let Some(info) = &c.tls {
        v.push(Line::default());
        v.extend(tls_lines(t, info));
    }
    v
}

/// The TLS section: what the records showed (versions, SNI, ALPN, cipher, certificate,
/// handshake, alerts, application data per direction).
fn tls_lines(t: Theme, info: &crate::tls::TlsInfo) -> Vec<Line<'static>> {
    use crate::tls::{CertificateView, HandshakeState};
    let mut v = vec![heading(t, "TLS")];
    let list = |xs: &[String]| {
        if xs.is_empty() {
            "-".to_string()
        } else {
            xs.join(", ")
        }
    };
    match &info.client_hello {
        Some(h) => {
            let versions: Vec<String> =
                h.supported_versions.iter().map(|x| x.to_string()).collect();
            let offered = if versions.is_empty() {
                h.legacy_version
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "-".into())
            } else {
                versions.join(", ")
            };
            v.push(kv(t, "  offered", offered));
            v.push(kv(
                t,
                "  SNI",
                h.sni.clone().unwrap_or_else(|| "(none)".into()),
            ));
            if !h.alpn.is_empty() {
                v.push(kv(t, "  ALPN offered", list(&h.alpn)));
            }
            v.push(kv(
                t,
                "  cipher suites offered",
                num(h.cipher_suites.len() as u64),
            ));
        }
        None => v.push(Line::styled("  no ClientHello seen", t.dim())),
    }
    match &info.server_hello {
        Some(s) => {
            v.push(kv(
                t,
                "  chosen",
                format!(
                    "{} {}{}",
                    s.version
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| "?".into()),
                    s.cipher_suite.map(|x| x.to_string()).unwrap_or_default(),
                    if s.hello_retry_request {
                        " (after a HelloRetryRequest)"
                    } else {
                        ""
                    }
                ),
            ));
            if let Some(a) = &s.alpn {
                v.push(kv(t, "  ALPN chosen", a.clone()));
            }
        }
        None => v.push(Line::styled("  no ServerHello seen", t.dim())),
    }
    let cert = match &info.certificate {
        CertificateView::Readable(c) => format!(
            "{} issued by {}{}, valid {} .. {}{}, chain of {}",
            c.subject,
            c.issuer,
            if c.self_signed { " (self-signed)" } else { "" },
            c.not_before,
            c.not_after,
            if c.valid_at_capture {
                ""
            } else {
                " (NOT valid at capture time)"
            },
            c.chain_length
        ),
        CertificateView::Encrypted => "encrypted (TLS 1.3: a key log is needed to read it)".into(),
        CertificateView::NotSeen => "not seen".into(),
        CertificateView::Unreadable { reason } => format!("unreadable ({reason:?})"),
    };
    v.push(kv(t, "  certificate", cert));
    let (hs, style) = match info.handshake {
        HandshakeState::Completed => ("completed", t.ok()),
        HandshakeState::InProgress => ("in progress", t.dim()),
        HandshakeState::Failed => ("failed", t.bad()),
        HandshakeState::NotSeen => ("not seen (capture began later)", t.dim()),
    };
    v.push(Line::from(vec![
        Span::styled("  handshake: ", t.dim()),
        Span::styled(hs, style),
    ]));
    for a in &info.alerts {
        let text = match (a.readable, a.level, a.description) {
            (true, Some(l), Some(d)) => format!("{l} {d}"),
            _ => "encrypted".into(),
        };
        v.push(Line::styled(
            format!(
                "  alert by the {}: {text} at {}{}",
                side_name(a.by),
                a.time.to_clock_string(),
                if a.during_handshake {
                    " (during the handshake)"
                } else {
                    ""
                }
            ),
            t.bad(),
        ));
    }
    for (name, d) in [
        ("device->server", &info.application_data.client_to_server),
        ("server->device", &info.application_data.server_to_client),
    ] {
        v.push(kv(
            t,
            &format!("  application data {name}"),
            format!("{} records, {}", num(d.records), bytes(d.bytes)),
        ));
    }
    let (a, b) = (
        info.non_tls_bytes.client_to_server,
        info.non_tls_bytes.server_to_client,
    );
    if a + b > 0 {
        v.push(Line::styled(
            format!(
                "  not TLS: {} device->server, {} server->device",
                bytes(a),
                bytes(b)
            ),
            t.warn(),
        ));
    }
    v
}

/// An exchange inferred from TLS records: sizes and times, no method, path or body.
fn encrypted_request_lines(t: Theme, c: &Connection, ex: &Exchange) -> Vec<Line<'static>> {
    let mut v = vec![Line::styled(
        "HTTPS request (encrypted: method, path and body need the session keys)",
        t.title(),
    )];
    v.push(kv(
        t,
        "time",
        format!("{} UTC", ex.request.time.to_utc_string()),
    ));
    if let Some(e) = &ex.encrypted {
        v.push(kv(
            t,
            "records",
            format!(
                "{} application-data record(s), {}",
                num(e.request_records),
                bytes(e.request_bytes)
            ),
        ));
        if let Some(u) = e.uncertain {
            v.push(Line::styled(format!("uncertain: {u:?}"), t.warn()));
        }
    }
    if let Some(info) = &c.tls {
        v.push(Line::default());
        v.extend(tls_lines(t, info));
    }
    v
}

/// The answer of an exchange inferred from TLS records: sizes and latency; the status is unknown.
fn encrypted_response_lines(t: Theme, c: &Connection, ex: &Exchange) -> Vec<Line<'static>> {
    let Some(r) = ex.encrypted.as_ref().and_then(|e| e.response) else {
        let e = explain_verdict(c, ex, None);
        return vec![
            Line::styled("No encrypted answer.", t.verdict(ex.verdict)),
            Line::from(e.what),
        ];
    };
    vec![
        Line::from(vec![
            Span::styled(
                "Encrypted answer (status unknown)",
                t.warn().patch(t.title()),
            ),
            Span::styled("   latency: ", t.dim()),
            Span::raw(latency(r.latency_ms)),
        ]),
        kv(t, "time", format!("{} UTC", r.time.to_utc_string())),
        kv(
            t,
            "records",
            format!(
                "{} application-data record(s), {}",
                num(r.records),
                bytes(r.bytes)
            ),
        ),
    ]
}

fn no_request_lines(t: Theme, c: &Connection) -> Vec<Line<'static>> {
    let what = match c.handshake {
        Handshake::Unanswered => format!(
            "No request: the device sent {} SYN(s) and nothing answered.",
            c.syn_attempts
        ),
        Handshake::Refused => "No request: the server refused the connection (RST).".into(),
        Handshake::SynAckNotAcked => {
            "No request: the server answered SYN-ACK, the client never acknowledged it.".into()
        }
        Handshake::ClientReset => {
            "No request: the server answered SYN-ACK, the client reset the connection.".into()
        }
        Handshake::Complete | Handshake::OneSided | Handshake::NotSeen => {
            "No request was sent on this connection.".into()
        }
    };
    vec![
        Line::styled(what, t.handshake(c.handshake)),
        Line::from("See the Handshake and Diagnosis tabs."),
    ]
}

/// "decrypted (TLS 1.x, suite)": the row was read from TLS records with the key log.
fn decrypted_line(t: Theme, c: &Connection) -> Line<'static> {
    let d = c.decryption.as_deref();
    let what = [
        d.and_then(|d| d.version).map(|v| v.to_string()),
        d.and_then(|d| d.cipher_suite).map(|s| s.to_string()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    kv(t, "decrypted", format!("({what}) with the key log"))
}

fn request_lines(t: Theme, ex: &Exchange) -> Vec<Line<'static>> {
    let rq = &ex.request;
    let mut v = vec![Line::from(vec![
        Span::styled(format!("{} ", rq.method), t.title()),
        Span::raw(rq.path.clone()),
    ])];
    v.push(kv(t, "time", format!("{} UTC", rq.time.to_utc_string())));
    let mut body = bytes(rq.body_bytes);
    if let Some(cl) = rq.content_length {
        body.push_str(&format!(" (Content-Length {})", num(cl)));
    }
    body.push_str(if rq.complete {
        ", complete"
    } else {
        ", NOT complete"
    });
    v.push(kv(t, "body", body));
    if rq.missing_bytes > 0 {
        v.push(Line::styled(
            format!("{} missing from the capture", bytes(rq.missing_bytes)),
            t.bad(),
        ));
    }
    if let Some(e) = &rq.error {
        v.push(Line::styled(format!("framing error: {e}"), t.bad()));
    }
    if let Some(f) = &ex.injected_fault {
        v.push(Line::styled(format!("injected fault: {f}"), t.warn()));
    }
    if let Some(a) = ex.auth {
        let style = if a == crate::model::AuthCheck::Accepted {
            t.dim()
        } else {
            t.bad()
        };
        v.push(Line::styled(format!("listener --auth: {a}"), style));
    }
    v.push(Line::default());
    v.extend(header_lines(t, &rq.headers));
    v.push(Line::default());
    v.push(heading(t, &format!("Body: {}", ex.body_kind)));
    if !ex.parts.is_empty() {
        v.push(Line::styled(
            format!(
                "  {:>2}  {:<24} {:<28} {:<16} {:>12}",
                "#", "name", "filename", "type", "size"
            ),
            t.dim(),
        ));
        for (i, p) in ex.parts.iter().enumerate() {
            let pic = p.picture.as_ref();
            v.push(Line::from(format!(
                "  {:>2}  {:<24} {:<28} {:<16} {:>12}  {}",
                i,
                p.name.as_deref().unwrap_or("-"),
                p.filename.as_deref().unwrap_or("-"),
                p.content_type.as_deref().unwrap_or("-"),
                bytes(p.bytes),
                pic.filter(|c| c.problem.is_none())
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )));
            if let Some(problem) = pic.and_then(|c| c.problem.as_ref()) {
                let style = if problem.is_uncertain() {
                    t.warn()
                } else {
                    t.bad()
                };
                v.push(Line::styled(format!("      picture {problem}"), style));
            }
        }
    }
    if let Some(e) = &ex.body_error {
        v.push(Line::styled(format!("No event: {e}"), t.warn()));
    }
    if let Some(e) = &ex.event {
        let mut parts = Vec::new();
        let mut add = |k: &str, val: &Option<String>| match val {
            Some(x) if k.is_empty() => parts.push(x.clone()),
            Some(x) => parts.push(format!("{k} {x}")),
            None => {}
        };
        add("type", &Some(e.type_label()).filter(|l| !l.is_empty()));
        add("state", &e.event_state);
        add("plate", &e.plate);
        add("ip", &e.device_ip);
        add("mac", &e.mac);
        add("", &e.channel_label());
        add("at", &e.date_time);
        add("description", &e.description);
        v.push(Line::from(vec![
            Span::styled("Event: ", t.title()),
            Span::raw(parts.join("  ")),
        ]));
    }
    if let Some(d) = &ex.event_detail {
        for w in &d.warnings {
            v.push(Line::styled(format!("  warning: {w}"), t.warn()));
        }
        v.push(Line::default());
        v.push(heading(t, "Event tree"));
        v.extend(
            pretty::tree_lines(&d.tree, MAX_TREE_LINES)
                .into_iter()
                .map(|l| Line::from(format!("  {l}"))),
        );
    }
    if let Some(m) = &ex.metadata {
        v.push(Line::default());
        v.extend(metadata_lines(t, ex.body_kind, m));
    }
    v
}

/// The metadata text: indented XML, pretty JSON, or a hex view when it is binary or broken.
fn metadata_lines(t: Theme, kind: &str, m: &str) -> Vec<Line<'static>> {
    let mut v = Vec::new();
    let syntax = sniff_syntax(m.as_bytes());
    let indent = |l: String| Line::from(format!("  {l}"));
    if pretty::looks_binary(m) {
        v.push(heading(
            t,
            &format!(
                "Body bytes (hex, {} shown)",
                bytes(m.len().min(HEX_BYTES) as u64)
            ),
        ));
        v.extend(
            pretty::hex_dump(m.as_bytes(), HEX_BYTES)
                .into_iter()
                .map(indent),
        );
        return v;
    }
    match syntax {
        Some(Syntax::Xml) => {
            let (lines, err) = pretty::pretty_xml(m, MAX_BODY_LINES);
            v.push(heading(t, "Metadata (XML)"));
            if let Some(e) = err {
                v.push(Line::styled(format!("  {e}"), t.warn()));
            }
            v.extend(lines.into_iter().map(indent));
        }
        Some(Syntax::Json) => match pretty::pretty_json(m, MAX_BODY_LINES) {
            Ok(lines) => {
                v.push(heading(t, "Metadata (JSON)"));
                v.extend(lines.into_iter().map(indent));
            }
            Err(e) => {
                v.push(heading(t, "Metadata (JSON, as received)"));
                v.push(Line::styled(format!("  {e}"), t.warn()));
                v.extend(pretty::raw_lines(m, MAX_BODY_LINES).into_iter().map(indent));
                v.push(heading(t, "Hex"));
                v.extend(
                    pretty::hex_dump(m.as_bytes(), HEX_BYTES)
                        .into_iter()
                        .map(indent),
                );
            }
        },
        _ => {
            v.push(heading(t, &format!("Body ({kind}, as received)")));
            v.extend(pretty::raw_lines(m, MAX_BODY_LINES).into_iter().map(indent));
            v.push(heading(t, "Hex"));
            v.extend(
                pretty::hex_dump(m.as_bytes(), HEX_BYTES)
                    .into_iter()
                    .map(indent),
            );
        }
    }
    v
}

fn response_lines(t: Theme, c: &Connection, ex: &Exchange) -> Vec<Line<'static>> {
    let Some(r) = &ex.response else {
        let e = explain_verdict(c, ex, None);
        return vec![
            Line::styled("No final response.", t.verdict(ex.verdict)),
            Line::from(e.what),
        ];
    };
    let style = if r.status == 200 { t.ok() } else { t.warn() };
    let mut v = vec![Line::from(vec![
        Span::styled(
            format!("HTTP {} {}", r.status, r.reason),
            style.patch(t.title()),
        ),
        Span::styled("   latency: ", t.dim()),
        Span::raw(latency(r.latency_ms)),
    ])];
    v.push(kv(t, "time", format!("{} UTC", r.time.to_utc_string())));
    if !r.interim.is_empty() {
        let s: Vec<String> = r.interim.iter().map(u16::to_string).collect();
        v.push(kv(t, "interim", s.join(", ")));
    }
    v.push(kv(t, "body", bytes(r.body_bytes)));
    v.push(Line::default());
    v.extend(header_lines(t, &r.headers));
    v
}

fn diagnosis_lines(app: &App, c: &Connection, ex: &Exchange) -> Vec<Line<'static>> {
    let t = app.theme;
    let stall = app.stall(c, ex);
    let mut v = vec![Line::from(vec![
        Span::styled("Verdict: ", t.title()),
        Span::styled(ex.verdict.as_str(), t.verdict(ex.verdict)),
    ])];
    v.extend(explanation(
        t,
        &explain_verdict(c, ex, stall.map(|s| s.seconds)),
    ));
    if let Some(s) = stall {
        v.push(Line::default());
        v.push(Line::from(vec![
            Span::styled("Stall: ", t.title()),
            Span::styled(format!("{:.1} s", s.seconds), t.bad()),
            Span::raw(format!(
                " from {} to {} UTC ({}){}",
                s.from.to_clock_string(),
                s.to.to_clock_string(),
                s.cause,
                if s.open_ended {
                    ", still running when the capture ended"
                } else {
                    ""
                }
            )),
        ]));
    }
    if let Some(of) = ex.retry_of {
        v.push(kv(
            t,
            "Retry of",
            format!(
                "connection {} request {} (same body, unanswered)",
                of.connection, of.index
            ),
        ));
    }
    if let Some(f) = &ex.injected_fault {
        v.push(kv(t, "Injected fault", f.clone()));
    }
    v.push(Line::default());
    v.push(heading(t, "Handshake"));
    v.extend(explanation(t, &explain_handshake(c)));
    v.extend(connection_problems(t, c));
    v
}

fn connection_problems(t: Theme, c: &Connection) -> Vec<Line<'static>> {
    let mut v = Vec::new();
    for f in &c.tls_findings {
        v.push(Line::default());
        if f.is_problem() {
            v.push(Line::styled(format!("TLS problem: {}", f.kind()), t.bad()));
            v.extend(explanation(t, &explain_tls_finding(f)));
        } else {
            v.push(Line::styled(format!("TLS note: {f}"), t.warn()));
        }
    }
    // --keylog: what decryption could not do (problems) and what it noted.
    for f in c.decryption.iter().flat_map(|d| d.findings.iter()) {
        let (what, style) = match f.is_problem() {
            true => ("Decryption problem", t.bad()),
            false => ("Decryption note", t.warn()),
        };
        v.push(Line::styled(format!("{what}: {f}"), style));
    }
    if !c.errors.is_empty() {
        v.push(Line::default());
        v.push(heading(t, "HTTP framing problems"));
        v.extend(
            c.errors
                .iter()
                .map(|e| Line::styled(format!("  {e}"), t.warn())),
        );
    }
    if c.gap_bytes != [0, 0] {
        v.push(Line::styled(
            format!(
                "The capture missed {} device->server and {} server->device on this connection.",
                bytes(c.gap_bytes[0]),
                bytes(c.gap_bytes[1])
            ),
            t.warn(),
        ));
    }
    v
}

/// Latency as the list and response tab show it.
pub fn latency(ms: f64) -> String {
    if !ms.is_finite() {
        return "-".into();
    }
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod auth_tests {
    use super::*;
    use crate::model::AuthCheck;

    fn text(ex: &Exchange) -> String {
        request_lines(Theme::from_env(), ex)
            .iter()
            .map(|l| {
                l.spans
                    .iter()
                    .map(|s| s.content.as_ref())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn request_detail_names_the_listener_auth_check() {
        let mut ex = crate::tui::fixtures::exchange(1.0, "/alarm", Some(401), 1);
        assert!(!text(&ex).contains("listener --auth"));
        ex.auth = Some(AuthCheck::WrongCredentials);
        let want = format!("listener --auth: {}", AuthCheck::WrongCredentials);
        assert!(text(&ex).contains(&want));
    }
}
