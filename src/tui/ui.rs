//! Drawing: [`render`] lays out header, body (list + detail, or devices) and footer, and the
//! help overlay. Reads the state only (the view cache aside).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Focus, Source};
use super::format::{mb, num};
use super::{detail, devices, list, timeline};

/// Draw the whole screen.
pub fn render(f: &mut Frame, app: &App) {
    let area = f.area();
    // Panes not drawn this frame must not catch clicks.
    for r in [
        &app.view.list,
        &app.view.detail,
        &app.view.detail_text,
        &app.view.devices,
    ] {
        r.set(Rect::default());
    }
    app.view.detail_tabs.set([Rect::default(); 4]);
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, header, app);
    // The time line takes the top of the body; the panes share the rest as usual.
    let body = if app.stream.is_none() && app.timeline.open && !app.show_devices {
        let [tl, rest] = Layout::vertical([
            Constraint::Length(timeline::height(app, body.height)),
            Constraint::Fill(1),
        ])
        .areas(body);
        timeline::draw(f, tl, app);
        rest
    } else {
        body
    };
    if let Some(s) = &app.stream {
        super::stream::draw(f, body, app, s);
    } else if app.show_devices {
        devices::draw(f, body, app);
    } else if body.width >= 160 {
        // Wide: list and detail side by side.
        let [l, d] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
            .areas(body);
        list::draw(f, l, app);
        detail::draw(f, d, app);
    } else if body.height < 12 {
        // Too short for two panes: the focused one only.
        match app.focus {
            Focus::List => list::draw(f, body, app),
            Focus::Detail => detail::draw(f, body, app),
        }
    } else {
        // The focused pane gets the larger share.
        let list_pct = if app.focus == Focus::List { 50 } else { 35 };
        let [l, d] = Layout::vertical([
            Constraint::Percentage(list_pct),
            Constraint::Percentage(100 - list_pct),
        ])
        .areas(body);
        list::draw(f, l, app);
        detail::draw(f, d, app);
    }
    draw_footer(f, footer, app);
    if app.show_help {
        draw_help(f, area, app);
    } else if app.show_warnings {
        draw_warnings(f, area, app);
    }
}

fn draw_header(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let [l1, l2, l3] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let state = if app.error.is_some() {
        Span::styled(" stopped ", t.bad())
    } else if app.finished {
        Span::styled(" done ", t.ok())
    } else {
        match app.source {
            Source::Replay(_) => Span::styled(" loading ", t.warn()),
            Source::Live(_) => Span::styled(" live ", t.accent()),
        }
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("alarmscope", t.title()),
            Span::raw(" | "),
            Span::raw(app.source_label()),
            Span::raw(" |"),
            state,
        ])),
        l1,
    );

    // Second line: the error, the load gauge, or the totals.
    if let Some(e) = &app.error {
        f.render_widget(
            Paragraph::new(Span::styled(format!("error: {e}"), t.bad())),
            l2,
        );
    } else {
        match (app.progress, app.finished, &app.source) {
            (Some(p), false, Source::Replay(_)) if p.file_size > 0 => {
                let ratio = (p.bytes_read as f64 / p.file_size as f64).clamp(0.0, 1.0);
                let eta = app
                    .eta_secs
                    .map(|s| format!(", ETA {s:.0} s"))
                    .unwrap_or_default();
                let label = format!(
                    "{:.0}%  {} / {}, {} packets{eta}",
                    ratio * 100.0,
                    mb(p.bytes_read),
                    mb(p.file_size),
                    num(p.packets)
                );
                f.render_widget(
                    Gauge::default()
                        .ratio(ratio)
                        .label(label)
                        .gauge_style(t.accent()),
                    l2,
                );
            }
            _ => {
                // The listener sees no packets: no "0 packets" for it (nor for a sniffer that has
                // seen none yet).
                let packets = app.summary.packets.max(app.counters.packets);
                let mut s = if packets > 0 || matches!(app.source, Source::Replay(_)) {
                    format!("{} packets, ", num(packets))
                } else {
                    String::new()
                };
                s.push_str(&format!(
                    "{} connections",
                    num(app.connection_count() as u64)
                ));
                if let (Some(a), Some(b)) = (app.summary.first_packet, app.summary.last_packet) {
                    s.push_str(&format!(
                        ", {} .. {} UTC",
                        a.to_utc_string(),
                        b.to_clock_string()
                    ));
                }
                if let Some(p) = app.progress.filter(|p| p.file_size > 0) {
                    s.push_str(&format!(", {}", mb(p.file_size)));
                }
                let warnings = app.warnings.len() as u64 + app.warnings_dropped;
                if warnings > 0 {
                    s.push_str(&format!(", {} warnings (w)", num(warnings)));
                }
                f.render_widget(Paragraph::new(Span::styled(s, t.dim())), l2);
            }
        }
    }

    let s = &app.summary;
    let count = |label: &str, n: u64, style| {
        vec![
            Span::styled(format!("{label} "), t.dim()),
            Span::styled(num(n), if n > 0 { style } else { t.dim() }),
            Span::raw("  "),
        ]
    };
    // Full names when they fit, short ones on narrow terminals.
    let wide = area.width >= 100;
    let label = |long: &'static str, short: &'static str| if wide { long } else { short };
    let mut spans = Vec::new();
    if wide {
        spans.extend(count("requests", s.requests, ratatui::style::Style::new()));
    }
    spans.extend(count("ok", s.ok, t.ok()));
    spans.extend(count(
        label("error_status", "error"),
        s.error_status,
        t.warn(),
    ));
    spans.extend(count(
        label("no_response", "no_resp"),
        s.no_response,
        t.bad(),
    ));
    spans.extend(count(label("incomplete", "incompl"), s.incomplete, t.bad()));
    spans.extend(count(
        label("handshake_fail", "hs_fail"),
        s.handshake_failures,
        t.handshake_fail(),
    ));
    spans.extend(count("stalls", s.stalls, t.bad()));
    spans.extend(count("retries", s.retries, t.accent()));
    // Shown only when there is HTTPS, so the line stays as it was for plain HTTP.
    if s.encrypted_answered > 0 {
        spans.extend(count(
            label("encrypted_answered", "enc"),
            s.encrypted_answered,
            t.warn(),
        ));
    }
    if s.tls_problems > 0 {
        spans.extend(count(label("tls_problems", "tls"), s.tls_problems, t.bad()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), l3);
}

fn draw_footer(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let line = if app.filter_editing {
        Line::from(vec![
            Span::styled("/", t.accent()),
            Span::raw(app.filter.clone()),
            Span::styled("_", t.selected()),
            Span::styled("  Enter keep, Esc clear", t.dim()),
        ])
    } else if let Some((m, is_err)) = &app.status {
        Line::from(Span::styled(
            m.clone(),
            if *is_err { t.bad() } else { t.warn() },
        ))
    } else {
        let keys: &[(&str, &str)] = &[
            ("q", "quit"),
            ("?", "help"),
            ("↑↓", "move"),
            ("Enter", "detail"),
            ("1-4", "tabs"),
            ("/", "filter"),
            ("p", "problems"),
            ("n/N", "next"),
            ("d", "devices"),
            ("t", "time"),
            ("s", "save"),
        ];
        let mut spans = Vec::new();
        for (k, what) in keys {
            spans.push(Span::styled(*k, t.accent()));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(line), area);
}

/// The keys, as the help overlay lists them.
pub const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move the selection (scroll in the detail pane)"),
    ("PgUp PgDn", "page up / down"),
    ("Home End  g G", "first / last row"),
    ("Enter  Tab", "switch between list and detail"),
    (
        "← →  h l  1-4",
        "detail tabs: handshake, request, response, diagnosis",
    ),
    (
        "/",
        "filter: text, or device: type: verdict: since: until: words",
    ),
    ("p", "only problems (failed exchanges, failed handshakes)"),
    ("n  N", "next / previous problem"),
    ("d", "devices view"),
    (
        "f",
        "follow stream: the connection's bytes (x hex, / search, n N)",
    ),
    (
        "t",
        "time line: ← → cursor (H L by 10), + - zoom, 0 whole, a lanes, z device",
    ),
    ("s", "save the selected exchange's body and pictures"),
    (
        "x",
        "export pcap: c connection, f filtered rows, p problem rows",
    ),
    (
        "w",
        "warnings: decoding problems, the listener's store and socket errors",
    ),
    ("mouse", "wheel scrolls, click selects"),
    ("?", "this help"),
    ("q  Esc", "quit"),
];

fn draw_help(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let w = area.width.min(72);
    let h = area.height.min(HELP.len() as u16 + 6);
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<16}"), t.accent()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::default());
    lines.push(Line::styled(
        "Markers: R = retry of an unanswered event, S = stall start (seconds until the device sent again).",
        t.dim(),
    ));
    lines.push(Line::styled("Any key closes this help.", t.dim()));
    overlay(f, area, (w, h), " Keys ", lines, app);
}

/// The warnings overlay: the newest that fit, oldest first, each wrapped.
fn draw_warnings(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let w = area
        .width
        .saturating_sub(4)
        .min(120)
        .max(area.width.min(20));
    let h = area.height.saturating_sub(2).max(area.height.min(5));
    // Rows inside the border, less the two notes; the newest warnings that fit, each taking
    // the rows it wraps to.
    let inner = usize::from(w.saturating_sub(2)).max(1);
    let mut room = usize::from(h.saturating_sub(4));
    let mut shown = 0;
    for w in app.warnings.iter().rev() {
        let rows = w.chars().count().div_ceil(inner).max(1);
        if rows > room {
            break;
        }
        room -= rows;
        shown += 1;
    }
    let hidden = (app.warnings.len() - shown) as u64 + app.warnings_dropped;
    let mut lines: Vec<Line> = Vec::new();
    if app.warnings.is_empty() {
        lines.push(Line::styled("No warnings.", t.dim()));
    }
    if hidden > 0 {
        lines.push(Line::styled(
            format!("{} earlier warnings not shown", num(hidden)),
            t.dim(),
        ));
    }
    for w in &app.warnings[app.warnings.len() - shown..] {
        lines.push(Line::styled(w.clone(), t.warn()));
    }
    lines.push(Line::styled("Any key closes this list.", t.dim()));
    overlay(f, area, (w, h), " Warnings ", lines, app);
}

/// A bordered box of `size` (at most `area`'s) drawn centred over `area` (help, warnings).
fn overlay(
    f: &mut Frame,
    area: Rect,
    (w, h): (u16, u16),
    title: &str,
    lines: Vec<Line>,
    app: &App,
) {
    let r = Rect {
        x: area.x + area.width.saturating_sub(w) / 2,
        y: area.y + area.height.saturating_sub(h) / 2,
        width: w.min(area.width),
        height: h.min(area.height),
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(title.to_string())
                .border_style(app.theme.focus_border()),
        ),
        r,
    );
}
