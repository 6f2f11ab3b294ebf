//! The devices view (`d`): one row per device with its counts, virtualised like the list.

use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Cell, Row, Table, TableState};
use ratatui::Frame;

use super::app::App;
use super::format::{num, secs_short};
use super::list::visible_rows;
use crate::model::Device;

fn types_text(d: &Device) -> String {
    let v: Vec<String> = d
        .event_types
        .iter()
        .take(6)
        .map(|(t, n)| format!("{t} x{n}"))
        .collect();
    v.join(", ")
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let block = Block::bordered()
        .title(format!(
            " Devices {} (d: back to exchanges) ",
            num(app.devices.len() as u64)
        ))
        .border_style(t.focus_border());
    let inner = block.inner(area);
    f.render_widget(block, area);
    app.view.devices.set(inner);

    let wide = inner.width >= 110;
    let seen = inner.width >= 76;
    let mut header = vec!["device"];
    let mut widths = vec![Constraint::Length(if wide { 34 } else { 15 })];
    header.extend(["events", "ok", "fail", "hs", "stalls", "stall s"]);
    widths.extend([6u16, 6, 5, 4, 6, 7].map(Constraint::Length));
    if wide {
        header.push("retries");
        widths.push(Constraint::Length(7));
    }
    if seen {
        header.push("last seen");
        widths.push(Constraint::Length(12));
    }
    header.push("event types");
    widths.push(Constraint::Fill(1));

    let (offset, end) = visible_rows(
        &app.view.devices_offset,
        app.device_selected,
        inner,
        app.devices.len(),
    );
    let rows: Vec<Row> = app
        .devices
        .get(offset..end)
        .unwrap_or(&[])
        .iter()
        .map(|d| {
            let name = match (&d.mac, wide) {
                (Some(m), true) => format!("{} ({m})", d.device),
                _ => d.device.clone(),
            };
            let fail_style = if d.failures > 0 { t.bad() } else { t.dim() };
            let hs_style = if d.handshake_failures > 0 {
                t.handshake_fail()
            } else {
                t.dim()
            };
            let stall_style = if d.stalls > 0 { t.bad() } else { t.dim() };
            let mut cells = vec![
                Cell::from(name),
                Cell::from(num(d.events)),
                Cell::from(num(d.ok)).style(t.ok()),
                Cell::from(num(d.failures)).style(fail_style),
                Cell::from(num(d.handshake_failures)).style(hs_style),
                Cell::from(num(d.stalls)).style(stall_style),
                Cell::from(secs_short(d.stalled_seconds)).style(stall_style),
            ];
            if wide {
                cells.push(Cell::from(num(d.retries)));
            }
            if seen {
                cells.push(Cell::from(d.last_seen.to_clock_string()));
            }
            cells.push(Cell::from(types_text(d)));
            Row::new(cells)
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.title()))
        .column_spacing(1)
        .row_highlight_style(t.selected());
    let mut state = TableState::default();
    if app.device_selected >= offset && app.device_selected < end {
        state.select(Some(app.device_selected - offset));
    }
    f.render_stateful_widget(table, inner, &mut state);
}
