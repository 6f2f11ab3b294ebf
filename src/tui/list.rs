//! The exchange list. Virtualised: only the rows in the window are built, from the flat index
//! [`App::rows`], so drawing costs the same for ten rows or a million.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};
use ratatui::Frame;

use super::app::{no_request_label, App, Focus, RowRef};
use super::detail::latency;
use super::format::{num, secs_short};
use super::theme::Theme;
use crate::model::Connection;
use crate::tcp::Handshake;

/// A list column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// `HH:MM:SS.mmm`
    Time,
    /// `HH:MM:SS`
    TimeShort,
    Device,
    /// Method and path.
    Request,
    /// Path only.
    Path,
    Event,
    Status,
    Latency,
    Verdict,
    Marks,
}

impl Col {
    fn title(self) -> &'static str {
        match self {
            Col::Time | Col::TimeShort => "time",
            Col::Device => "device",
            Col::Request => "request",
            Col::Path => "path",
            Col::Event => "event",
            Col::Status => "st",
            Col::Latency => "latency",
            Col::Verdict => "verdict",
            Col::Marks => "marks",
        }
    }
}

/// Columns for a table of `width` columns (inside the border): the narrower the terminal, the
/// fewer; the request column takes what is left.
pub fn columns(width: u16) -> Vec<(Col, Constraint)> {
    use Constraint::{Fill, Length};
    if width >= 128 {
        vec![
            (Col::Time, Length(12)),
            (Col::Device, Length(15)),
            (Col::Request, Fill(1)),
            (Col::Event, Length(24)),
            (Col::Status, Length(3)),
            (Col::Latency, Length(9)),
            (Col::Verdict, Length(12)),
            (Col::Marks, Length(9)),
        ]
    } else if width >= 98 {
        vec![
            (Col::Time, Length(12)),
            (Col::Device, Length(15)),
            (Col::Request, Fill(1)),
            (Col::Event, Length(20)),
            (Col::Status, Length(3)),
            (Col::Verdict, Length(12)),
            (Col::Marks, Length(8)),
        ]
    } else if width >= 76 {
        vec![
            (Col::TimeShort, Length(8)),
            (Col::Device, Length(15)),
            (Col::Path, Fill(1)),
            (Col::Event, Length(13)),
            (Col::Status, Length(3)),
            (Col::Verdict, Length(12)),
            (Col::Marks, Length(7)),
        ]
    } else if width >= 60 {
        vec![
            (Col::TimeShort, Length(8)),
            (Col::Device, Length(15)),
            (Col::Path, Fill(1)),
            (Col::Status, Length(3)),
            (Col::Verdict, Length(12)),
            (Col::Marks, Length(7)),
        ]
    } else {
        vec![
            (Col::TimeShort, Length(8)),
            (Col::Device, Fill(1)),
            (Col::Verdict, Length(12)),
            (Col::Marks, Length(5)),
        ]
    }
}

/// First row to show so that `selected` is inside a window of `height` rows, moving the previous
/// offset as little as possible.
pub fn window_offset(prev: usize, selected: usize, height: usize, len: usize) -> usize {
    let height = height.max(1);
    let mut off = prev;
    if selected < off {
        off = selected;
    } else if selected >= off.saturating_add(height) {
        off = selected + 1 - height;
    }
    off.min(len.saturating_sub(height))
}

/// The rows of a `len`-row table drawn in `table` (its first row the column header) that keep
/// `selected` in view: `(offset, end)`. The offset is left in `offset_cell` for the next frame and
/// for mouse clicks.
pub fn visible_rows(
    offset_cell: &std::cell::Cell<usize>,
    selected: usize,
    table: Rect,
    len: usize,
) -> (usize, usize) {
    let height = (table.height as usize).saturating_sub(1);
    let offset = window_offset(offset_cell.get(), selected, height, len);
    offset_cell.set(offset);
    (offset, offset.saturating_add(height).min(len))
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let focused = app.focus == Focus::List;
    let mut title = format!(
        " Exchanges {} of {} ",
        num(app.rows.len() as u64),
        num(app.total_rows() as u64)
    );
    if app.problems_only {
        title.push_str("[problems] ");
    }
    if !app.filter.is_empty() {
        title.push_str(&format!("[/{}] ", app.filter));
    }
    let block = Block::bordered().title(title).border_style(if focused {
        t.focus_border()
    } else {
        t.border()
    });
    let inner = block.inner(area);
    f.render_widget(block, area);
    app.view.list.set(inner);

    let (offset, end) = visible_rows(&app.view.list_offset, app.selected, inner, app.rows.len());
    let cols = columns(inner.width);
    let window = app.rows.get(offset..end).unwrap_or(&[]);
    let rows: Vec<Row> = window.iter().map(|r| row(app, *r, &cols)).collect();
    let header = Row::new(cols.iter().map(|(c, _)| Cell::from(c.title()))).style(t.title());
    let table = Table::new(rows, cols.iter().map(|(_, w)| *w))
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selected());
    let mut state = TableState::default();
    if app.selected >= offset && app.selected < end {
        state.select(Some(app.selected - offset));
    }
    f.render_stateful_widget(table, inner, &mut state);
}

fn row<'a>(app: &'a App, r: RowRef, cols: &[(Col, Constraint)]) -> Row<'a> {
    let t = app.theme;
    let Some(c) = app.conn(r) else {
        return Row::new(vec![Cell::from("?")]);
    };
    let ex = r.exchange().and_then(|i| c.exchanges.get(i));
    let cells = cols.iter().map(|(col, _)| match ex {
        Some(ex) => match col {
            Col::Time => Cell::from(ex.request.time.to_clock_string()),
            Col::TimeShort => Cell::from(clock_short(c, Some(ex.request.time))),
            Col::Device => Cell::from(c.device()),
            Col::Request | Col::Path if ex.encrypted.is_some() => {
                Cell::from(ENCRYPTED_REQUEST).style(t.accent())
            }
            Col::Request => Cell::from(format!("{} {}", ex.request.method, ex.request.path)),
            Col::Path => Cell::from(ex.request.path.as_str()),
            Col::Event => Cell::from(event_text(ex)),
            // Inside TLS the status is unknown: `?`, never a guessed one.
            Col::Status if ex.encrypted.is_some() => Cell::from("?").style(t.dim()),
            Col::Status => match &ex.response {
                Some(resp) => Cell::from(resp.status.to_string()).style(t.verdict(ex.verdict)),
                None => Cell::from("-").style(t.dim()),
            },
            Col::Latency => match (&ex.response, ex.encrypted.as_ref().and_then(|e| e.response)) {
                (Some(resp), _) => Cell::from(latency(resp.latency_ms)),
                (None, Some(tls)) => Cell::from(latency(tls.latency_ms)),
                (None, None) => Cell::from("-").style(t.dim()),
            },
            Col::Verdict => Cell::from(ex.verdict.as_str()).style(t.verdict(ex.verdict)),
            Col::Marks => Cell::from(marks(
                t,
                // E: read without keys from TLS records; D: decrypted with the key log; K after
                // either: the connection has a decryption problem (detail pane).
                match (
                    ex.encrypted.is_some(),
                    ex.decrypted,
                    c.decryption
                        .as_ref()
                        .is_some_and(|d| d.problems().next().is_some()),
                ) {
                    (true, _, false) => Some("E"),
                    (true, _, true) => Some("EK"),
                    (false, true, false) => Some("D"),
                    (false, true, true) => Some("DK"),
                    _ => None,
                },
                ex.retry_of.is_some(),
                app.stall_seconds(c, ex),
                has_picture_problem(ex),
            )),
        },
        None => match col {
            Col::Time => Cell::from(c.first_seen.to_clock_string()),
            Col::TimeShort => Cell::from(clock_short(c, None)),
            Col::Device => Cell::from(c.device()),
            Col::Request | Col::Path => {
                Cell::from(no_request_text(c)).style(no_request_style(t, c))
            }
            Col::Verdict => Cell::from(no_request_label(c)).style(no_request_style(t, c)),
            Col::Event | Col::Status | Col::Latency | Col::Marks => Cell::from(""),
        },
    });
    Row::new(cells.collect::<Vec<_>>())
}

fn clock_short(c: &Connection, at: Option<crate::time::Timestamp>) -> String {
    let s = at.unwrap_or(c.first_seen).to_clock_string();
    s.get(..8).unwrap_or(&s).to_string()
}

/// "type state", or "type plate" for plate events.
pub fn event_text(ex: &crate::model::Exchange) -> String {
    match &ex.event {
        Some(e) => {
            let ty = match e.type_label() {
                l if l.is_empty() => "?".to_string(),
                l => l,
            };
            match (&e.plate, &e.event_state) {
                (Some(p), _) if !p.is_empty() => format!("{ty} {p}"),
                (_, Some(s)) => format!("{ty} {s}"),
                _ => ty.to_string(),
            }
        }
        None if ex.body_error.is_some() => "(no event)".into(),
        None => String::new(),
    }
}

/// What the request column shows for an exchange inferred from TLS records.
pub const ENCRYPTED_REQUEST: &str = "HTTPS (encrypted)";

/// A connection row without a request: bad for a failed TCP handshake or a TLS problem.
fn no_request_style(t: Theme, c: &Connection) -> Style {
    if !c.handshake.failed() && c.tls_problems().next().is_some() {
        t.bad()
    } else {
        t.handshake(c.handshake)
    }
}

fn no_request_text(c: &Connection) -> String {
    use crate::tls::TlsFinding;
    if !c.handshake.failed() {
        match c.tls_problems().next() {
            Some(TlsFinding::TlsToPlainServer { .. }) => {
                return "(HTTPS hello, the server speaks plain HTTP)".into()
            }
            Some(TlsFinding::HandshakeAlert {
                by, description, ..
            }) => {
                let who = match by {
                    crate::tcp::Side::Client => "device",
                    crate::tcp::Side::Server => "server",
                };
                return match description {
                    Some(d) => format!("(TLS handshake failed: {who} alert {d})"),
                    None => format!("(TLS handshake failed: {who} alert, encrypted)"),
                };
            }
            Some(TlsFinding::ClosedDuringHandshake { .. }) => {
                return "(TLS handshake not completed: closed)".into()
            }
            Some(TlsFinding::OnlyOldVersionsOffered { highest, .. }) => {
                return format!("(TLS: device offers up to {highest} only)")
            }
            _ if c.tls.is_some() => return "(TLS, no request)".into(),
            _ => {}
        }
    }
    match c.handshake {
        Handshake::Unanswered => format!("({} SYN, no answer)", c.syn_attempts),
        Handshake::Refused => "(SYN refused: RST)".into(),
        Handshake::SynAckNotAcked => "(SYN-ACK not acked by client)".into(),
        Handshake::ClientReset => "(client reset after SYN-ACK)".into(),
        // A connection stopped before any request says why (e.g. the listener's TLS problems).
        Handshake::Complete | Handshake::OneSided | Handshake::NotSeen => match c.errors.first() {
            Some(e) => format!("({e})"),
            None => "(no request)".into(),
        },
    }
}

/// A picture of the exchange is cut, corrupt or no JPEG (`isapi::picture`).
fn has_picture_problem(ex: &crate::model::Exchange) -> bool {
    ex.notes
        .iter()
        .any(|n| matches!(n, crate::model::ExchangeNote::Picture { .. }))
}

/// `E` for an encrypted exchange (inferred from TLS records, status unknown), `R` for a retry,
/// `S<seconds>` for the start of a stall, `P` for a broken picture.
fn marks(
    t: Theme,
    tls: Option<&'static str>,
    retry: bool,
    stall: Option<f64>,
    picture: bool,
) -> Line<'static> {
    let mut spans = Vec::new();
    if let Some(m) = tls {
        spans.push(Span::styled(m, t.accent()));
    }
    if retry {
        if !spans.is_empty() {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled("R", t.accent()));
    }
    if let Some(s) = stall {
        if !spans.is_empty() {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(format!("S{}", secs_short(s)), t.bad()));
    }
    if picture {
        if !spans.is_empty() {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled("P", t.bad()));
    }
    if spans.is_empty() {
        return Line::default();
    }
    Line::from(spans).style(Style::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_selection_visible() {
        // (prev, selected, height, len) -> offset
        let cases = [
            ((0, 0, 10, 100), 0),
            ((0, 9, 10, 100), 0),
            ((0, 10, 10, 100), 1),
            ((50, 40, 10, 100), 40),
            ((0, 99, 10, 100), 90),
            ((95, 99, 10, 100), 90),
            ((0, 3, 10, 5), 0),
            ((7, 0, 0, 0), 0),
        ];
        for ((p, s, h, l), want) in cases {
            assert_eq!(window_offset(p, s, h, l), want, "{p} {s} {h} {l}");
        }
    }

    #[test]
    fn columns_fit_their_width() {
        for w in [20u16, 38, 59, 60, 76, 78, 98, 128, 200] {
            let cols = columns(w);
            let fixed: u16 = cols
                .iter()
                .map(|(_, c)| if let Constraint::Length(n) = c { *n } else { 0 })
                .sum::<u16>()
                + cols.len() as u16
                - 1;
            // At 60 and above every fixed column plus spacing fits with room for the flexible one.
            if w >= 60 {
                assert!(fixed + 8 <= w, "width {w}: fixed {fixed}");
            }
        }
    }
}
