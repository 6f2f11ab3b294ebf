//! The exchange list. Virtualised: only the rows in the window are built, from the flat index
//! [`App::rows`], so drawing costs the same for ten rows or a million.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};
use ratatui::Frame;

use super::app::{App, Focus, RowRef};
use super::detail::latency;
use super::format::{num, secs_short};
use super::rows::{flag, CompactRow};
use super::theme::Theme;

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
    let Some(row) = app.row(r) else {
        return Row::new(vec![Cell::from("?")]);
    };
    let store = &app.store;
    let device = store.str(row.device);
    let encrypted = row.has(flag::ENCRYPTED);
    let cells = cols.iter().map(|(col, _)| match row.exchange() {
        Some(_) => match col {
            Col::Time => Cell::from(row.time.to_clock_string()),
            Col::TimeShort => Cell::from(clock_short(row.time)),
            Col::Device => Cell::from(device),
            Col::Request | Col::Path if encrypted => {
                Cell::from(ENCRYPTED_REQUEST).style(t.accent())
            }
            Col::Request => {
                Cell::from(format!("{} {}", store.str(row.method), store.str(row.path)))
            }
            Col::Path => Cell::from(store.str(row.path)),
            Col::Event => Cell::from(store.str(row.event)),
            // Inside TLS the status is unknown: `?`, never a guessed one.
            Col::Status if encrypted => Cell::from("?").style(t.dim()),
            Col::Status => match row.status() {
                Some(s) => Cell::from(s.to_string()).style(t.verdict(row.verdict)),
                None => Cell::from("-").style(t.dim()),
            },
            Col::Latency => match row.latency() {
                Some(ms) => Cell::from(latency(ms)),
                None => Cell::from("-").style(t.dim()),
            },
            Col::Verdict => Cell::from(store.label(row)).style(t.verdict(row.verdict)),
            Col::Marks => Cell::from(marks(
                t,
                // E: read without keys from TLS records; D: decrypted with the key log; K after
                // either: the connection has a decryption problem (detail pane).
                match (
                    encrypted,
                    row.has(flag::DECRYPTED),
                    row.has(flag::DECRYPTION_PROBLEM),
                ) {
                    (true, _, false) => Some("E"),
                    (true, _, true) => Some("EK"),
                    (false, true, false) => Some("D"),
                    (false, true, true) => Some("DK"),
                    _ => None,
                },
                app.is_retry(row),
                app.row_stall_seconds(row),
                row.has(flag::PICTURE_PROBLEM),
            )),
        },
        None => match col {
            Col::Time => Cell::from(row.time.to_clock_string()),
            Col::TimeShort => Cell::from(clock_short(row.time)),
            Col::Device => Cell::from(device),
            Col::Request | Col::Path => {
                Cell::from(store.str(row.note)).style(no_request_style(t, row))
            }
            Col::Verdict => Cell::from(store.label(row)).style(no_request_style(t, row)),
            Col::Event | Col::Status | Col::Latency | Col::Marks => Cell::from(""),
        },
    });
    Row::new(cells.collect::<Vec<_>>())
}

fn clock_short(at: crate::time::Timestamp) -> String {
    let s = at.to_clock_string();
    s.get(..8).unwrap_or(&s).to_string()
}

pub use super::rows::event_text;

/// What the request column shows for an exchange inferred from TLS records.
pub const ENCRYPTED_REQUEST: &str = "HTTPS (encrypted)";

/// A connection row without a request: bad for a failed TCP handshake or a TLS problem.
fn no_request_style(t: Theme, r: &CompactRow) -> Style {
    if r.has(flag::TLS_PROBLEM) {
        t.bad()
    } else {
        t.handshake(r.handshake)
    }
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
