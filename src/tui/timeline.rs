//! The time line view (`t`): events per time bucket over the capture's span (or the live session
//! so far), for all devices or one lane per device, with failures, stalls and the answer latency
//! marked, and a cursor in time that selects the first list row of its bucket.
//!
//! Why: the stall the field guide warns about (a device that holds its events for seconds after
//! an unanswered push) is a shape in time, which a list of rows hides. Here it is a run of `═`
//! after an `S`, in its own band, readable without colour.
//!
//! The buckets are computed by a pure function over the rows ([`buckets`], [`lanes`]): no
//! terminal needed to test them, and memory bounded by the number of buckets (one per screen
//! column, at most [`MAX_BUCKETS`]) and lanes ([`MAX_LANES`]), whatever the number of rows.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span as TextSpan};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::app::{App, RowRef};
use super::rows::RowStore;
use crate::model::Stall;
use crate::time::Timestamp;

/// Most buckets computed (a very wide terminal gets no more columns than this).
pub const MAX_BUCKETS: usize = 1000;
/// Most device lanes kept (the rest are counted, not drawn).
pub const MAX_LANES: usize = 64;
/// The shortest bucket zooming in reaches: 1 ms.
const MIN_BUCKET_NS: i64 = 1_000_000;
/// Width of the band labels at the left (device lanes: up to [`MAX_LANE_LABEL`]).
const LABEL_W: usize = 9;
/// Widest device label of a lane (an IPv6 address is cut).
const MAX_LANE_LABEL: usize = 16;

/// A stretch of capture time, in nanoseconds since the epoch: `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub from: i64,
    pub to: i64,
}

impl Span {
    /// A span of at least one nanosecond (a capture of one instant still has a bucket).
    pub fn new(from: i64, to: i64) -> Span {
        Span {
            from,
            to: to.max(from.saturating_add(1)),
        }
    }

    /// Its length in nanoseconds (at least 1; `i64::MAX` at most).
    pub fn nanos(&self) -> i64 {
        i64::try_from(self.len_wide()).unwrap_or(i64::MAX)
    }

    /// Its exact length (a span of any two `i64` times fits an `i128`).
    fn len_wide(&self) -> i128 {
        (i128::from(self.to) - i128::from(self.from)).max(1)
    }

    /// Which of `n` equal buckets holds time `t`, if the span holds it.
    pub fn bucket_of(&self, t: i64, n: usize) -> Option<usize> {
        if t < self.from || t >= self.to || n == 0 {
            return None;
        }
        let off = i128::from(t) - i128::from(self.from);
        let i = off * n as i128 / self.len_wide();
        usize::try_from(i).ok().filter(|i| *i < n)
    }

    /// Where bucket `i` of `n` starts: its first time (rounded up, so that
    /// `bucket_of(bucket_start(i))` is `i`).
    pub fn bucket_start(&self, i: usize, n: usize) -> i64 {
        let n = n.max(1) as i128;
        let off = (self.len_wide() * i as i128 + n - 1) / n;
        i64::try_from(i128::from(self.from) + off).unwrap_or(self.to)
    }
}

/// How a stall touches a bucket, ordered by how much it says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum StallMark {
    #[default]
    None,
    /// The device held its events during this bucket.
    Held,
    /// The device held its events and the capture ended before it sent again: how long it
    /// would have waited is unknown.
    HeldOpen,
    /// The unanswered (or refused) push that started a stall.
    Start,
}

/// What happened in one time bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Rows (pushes, or connections that carried none) that started in the bucket.
    pub events: u32,
    /// Of them, problems: failed exchanges and failed handshakes.
    pub failures: u32,
    /// Of the failures, those a capture gap could have caused (`not_captured`).
    pub uncertain: u32,
    pub stall: StallMark,
    /// The slowest answer in the bucket, in milliseconds.
    pub max_latency_ms: Option<f64>,
}

impl Bucket {
    fn add_row(&mut self, problem: bool, uncertain: bool, latency: Option<f64>) {
        self.events = self.events.saturating_add(1);
        if problem {
            self.failures = self.failures.saturating_add(1);
        }
        if uncertain {
            self.uncertain = self.uncertain.saturating_add(1);
        }
        if let Some(l) = latency {
            self.max_latency_ms = Some(self.max_latency_ms.map_or(l, |m| m.max(l)));
        }
    }
}

/// One device's buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// The device's address, as the devices view names it.
    pub device: String,
    pub buckets: Vec<Bucket>,
}

/// The time a row is placed at: its request's first byte, or the connection's first packet when
/// it carried no request.
pub fn row_time(store: &RowStore, r: RowRef) -> Option<i64> {
    store.get(r.0).map(|row| row.time.0)
}

/// The device of a row (the client's address without port).
fn row_device(store: &RowStore, r: RowRef) -> Option<&str> {
    store.get(r.0).map(|row| store.str(row.device))
}

/// `n` buckets over `span` for the rows (of one `device`, or all): events, failures and answer
/// latency by request time, and the stalls' extent. Memory: the `n` buckets (capped at
/// [`MAX_BUCKETS`]).
pub fn buckets<'a>(
    conns: &RowStore,
    rows: &[RowRef],
    stalls: impl IntoIterator<Item = &'a Stall>,
    span: Span,
    n: usize,
    device: Option<&str>,
) -> Vec<Bucket> {
    let n = n.clamp(1, MAX_BUCKETS);
    let mut out = vec![Bucket::default(); n];
    for r in rows {
        if device.is_some() && row_device(conns, *r) != device {
            continue;
        }
        add_row(conns, *r, span, &mut out);
    }
    for s in stalls {
        if device.is_none_or(|d| d == s.device) {
            mark_stall(s, span, &mut out);
        }
    }
    out
}

/// One lane of `n` buckets per device, in order of the devices' first row, at most
/// [`MAX_LANES`]; also how many devices had no lane.
pub fn lanes<'a>(
    conns: &RowStore,
    rows: &[RowRef],
    stalls: impl IntoIterator<Item = &'a Stall>,
    span: Span,
    n: usize,
    device: Option<&str>,
) -> (Vec<Lane>, usize) {
    let n = n.clamp(1, MAX_BUCKETS);
    let mut index: HashMap<&str, Option<usize>> = HashMap::new();
    let mut out: Vec<Lane> = Vec::new();
    let mut dropped = 0;
    for r in rows {
        let Some(d) = row_device(conns, *r) else {
            continue;
        };
        if device.is_some_and(|want| want != d) {
            continue;
        }
        let lane = *index.entry(d).or_insert_with(|| {
            if out.len() < MAX_LANES {
                out.push(Lane {
                    device: d.to_string(),
                    buckets: vec![Bucket::default(); n],
                });
                Some(out.len() - 1)
            } else {
                dropped += 1;
                None
            }
        });
        if let Some(lane) = lane.and_then(|i| out.get_mut(i)) {
            add_row(conns, *r, span, &mut lane.buckets);
        }
    }
    for s in stalls {
        if let Some(Some(i)) = index.get(s.device.as_str()) {
            if let Some(lane) = out.get_mut(*i) {
                mark_stall(s, span, &mut lane.buckets);
            }
        }
    }
    (out, dropped)
}

fn add_row(conns: &RowStore, r: RowRef, span: Span, out: &mut [Bucket]) {
    let Some(row) = conns.get(r.0) else {
        return;
    };
    let Some(b) = span
        .bucket_of(row.time.0, out.len())
        .and_then(|i| out.get_mut(i))
    else {
        return;
    };
    match row.exchange() {
        Some(_) => b.add_row(
            row.is_problem(),
            row.verdict.is_uncertain(),
            row.response_latency(),
        ),
        None => b.add_row(row.is_problem(), false, None),
    }
}

fn mark_stall(s: &Stall, span: Span, out: &mut [Bucket]) {
    let n = out.len();
    let (from, to) = (
        s.from.0.max(span.from),
        s.to.0.min(span.to.saturating_sub(1)),
    );
    if from > to {
        return;
    }
    let held = if s.open_ended {
        StallMark::HeldOpen
    } else {
        StallMark::Held
    };
    let (Some(a), Some(b)) = (span.bucket_of(from, n), span.bucket_of(to, n)) else {
        return;
    };
    for bucket in out.iter_mut().take(b + 1).skip(a) {
        bucket.stall = bucket.stall.max(held);
    }
    if let Some(i) = span.bucket_of(s.from.0, n) {
        if let Some(bucket) = out.get_mut(i) {
            bucket.stall = StallMark::Start;
        }
    }
}

// ----- state and input -----

/// The view's state: open or not, lanes or one band, zoom, device, cursor.
#[derive(Debug, Default)]
pub struct Timeline {
    pub open: bool,
    /// One lane per device instead of one band for all.
    pub per_device: bool,
    /// The span shown when zoomed (none: the whole capture).
    pub zoom: Option<Span>,
    /// Only this device's rows (the `z` key).
    pub device: Option<String>,
    /// The cursor's time; none: at the selected row (the list moved last).
    pub cursor: Option<i64>,
    /// Buckets drawn last time (the cursor moves by one of them).
    pub columns: Cell<u16>,
    /// The last frame's buckets and lanes, kept while rows, span, width and device are the same:
    /// a million rows cost one pass per data change, not one per frame.
    cache: RefCell<Option<(CacheKey, Rc<Drawn>)>>,
}

/// What the cached buckets were computed for: [`App::data_version`], span, width, device,
/// lanes or not.
type CacheKey = (u64, Span, usize, Option<String>, bool);

/// The buckets of one frame: all devices, and the lanes when shown (with the dropped count).
#[derive(Debug)]
struct Drawn {
    all: Vec<Bucket>,
    lanes: Option<(Vec<Lane>, usize)>,
}

/// The buckets for this frame, from the cache when nothing they depend on changed.
fn drawn(app: &App, span: Span, n: usize) -> Rc<Drawn> {
    let tl = &app.timeline;
    let key: CacheKey = (app.data_version, span, n, tl.device.clone(), tl.per_device);
    if let Ok(c) = tl.cache.try_borrow() {
        if let Some((_, d)) = c.as_ref().filter(|(k, _)| *k == key) {
            return d.clone();
        }
    }
    let device = tl.device.as_deref();
    let stalls = || app.stall_at.values();
    let d = Rc::new(Drawn {
        all: buckets(&app.store, &app.rows, stalls(), span, n, device),
        lanes: tl
            .per_device
            .then(|| lanes(&app.store, &app.rows, stalls(), span, n, device)),
    });
    if let Ok(mut c) = tl.cache.try_borrow_mut() {
        *c = Some((key, d.clone()));
    }
    d
}

/// The view's keys, as messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineMsg {
    /// Open or close the view.
    Toggle,
    /// Move the cursor by this many buckets.
    Cursor(i64),
    ZoomIn,
    ZoomOut,
    /// Back to the whole capture, all devices.
    Whole,
    /// One band for all devices, or one lane each.
    ToggleLanes,
    /// Zoom to the selected row's device (again: back to all).
    ZoomDevice,
}

/// The message for a key while the view is open (other keys keep their list meaning).
pub fn key_msg(code: ratatui::crossterm::event::KeyCode) -> Option<TimelineMsg> {
    use ratatui::crossterm::event::KeyCode;
    Some(match code {
        KeyCode::Left | KeyCode::Char('h') => TimelineMsg::Cursor(-1),
        KeyCode::Right | KeyCode::Char('l') => TimelineMsg::Cursor(1),
        KeyCode::Char('H') | KeyCode::Char('<') => TimelineMsg::Cursor(-10),
        KeyCode::Char('L') | KeyCode::Char('>') => TimelineMsg::Cursor(10),
        KeyCode::Char('+') | KeyCode::Char('=') => TimelineMsg::ZoomIn,
        KeyCode::Char('-') => TimelineMsg::ZoomOut,
        KeyCode::Char('0') => TimelineMsg::Whole,
        KeyCode::Char('a') => TimelineMsg::ToggleLanes,
        KeyCode::Char('z') => TimelineMsg::ZoomDevice,
        KeyCode::Char('t') | KeyCode::Esc => TimelineMsg::Toggle,
        _ => return None,
    })
}

/// The whole span of the data: the capture's first to last packet, or the rows' and stalls'
/// times while they are not known yet (live).
pub fn data_span(app: &App) -> Option<Span> {
    let rows = app
        .rows
        .first()
        .zip(app.rows.last())
        .and_then(|(a, b)| Some((row_time(&app.store, *a)?, row_time(&app.store, *b)?)));
    let from = app
        .summary
        .first_packet
        .map(|t| t.0)
        .or(rows.map(|r| r.0))?;
    let mut to = app.summary.last_packet.map(|t| t.0).or(rows.map(|r| r.1))?;
    for s in app.stall_at.values() {
        to = to.max(s.to.0);
    }
    // Inclusive end: one nanosecond more so the last packet falls in the last bucket.
    Some(Span::new(from, to.saturating_add(1)))
}

/// The span shown now.
pub fn view_span(app: &App) -> Option<Span> {
    app.timeline.zoom.or_else(|| data_span(app))
}

/// The cursor's time: set by the time keys, or the selected row's.
pub fn cursor_time(app: &App) -> Option<i64> {
    app.timeline
        .cursor
        .or_else(|| app.selected_row().and_then(|r| row_time(&app.store, r)))
}

/// Apply a time line message to the state.
pub fn update(app: &mut App, m: TimelineMsg) {
    let n = usize::from(app.timeline.columns.get()).clamp(1, MAX_BUCKETS);
    match m {
        TimelineMsg::Toggle => app.timeline.open = !app.timeline.open,
        TimelineMsg::ToggleLanes => app.timeline.per_device = !app.timeline.per_device,
        TimelineMsg::Whole => {
            app.timeline.zoom = None;
            app.timeline.device = None;
        }
        TimelineMsg::Cursor(d) => {
            let Some(mut span) = view_span(app) else {
                return;
            };
            let step = (span.nanos() / n as i64).max(1);
            let cur = cursor_time(app).unwrap_or(span.from);
            // Keep the cursor on its bucket's start so repeated moves do not drift.
            let i = span
                .bucket_of(cur.clamp(span.from, span.to - 1), n)
                .unwrap_or(0) as i64;
            let wanted = i.saturating_add(d);
            let target = wanted.clamp(0, n as i64 - 1);
            // Zoomed in: moving past an edge pans the view (within the whole capture).
            if let (Some(z), Some(whole)) = (app.timeline.zoom, data_span(app)) {
                let shift = (wanted - target).saturating_mul(step);
                let from = z.from.saturating_add(shift).clamp(
                    whole.from,
                    whole.to.saturating_sub(z.nanos()).max(whole.from),
                );
                span = Span::new(from, from.saturating_add(z.nanos()));
                app.timeline.zoom = Some(span);
            }
            let t = span.bucket_start(target as usize, n);
            app.timeline.cursor = Some(t);
            select_in_bucket(app, Span::new(t, t.saturating_add(step)));
        }
        TimelineMsg::ZoomIn | TimelineMsg::ZoomOut => {
            let (Some(whole), Some(span)) = (data_span(app), view_span(app)) else {
                return;
            };
            let len = if m == TimelineMsg::ZoomIn {
                (span.nanos() / 2).max(MIN_BUCKET_NS.saturating_mul(n as i64))
            } else {
                span.nanos().saturating_mul(2)
            };
            // Within a hundredth of the whole (halving rounds down): the whole.
            if len >= whole.nanos() - whole.nanos() / 100 {
                app.timeline.zoom = None;
                return;
            }
            let centre = cursor_time(app).unwrap_or(span.from + span.nanos() / 2);
            let from = centre
                .saturating_sub(len / 2)
                .clamp(whole.from, whole.to.saturating_sub(len));
            app.timeline.zoom = Some(Span::new(from, from.saturating_add(len)));
        }
        TimelineMsg::ZoomDevice => {
            if app.timeline.device.is_some() {
                app.timeline.device = None;
                app.timeline.zoom = None;
                return;
            }
            let Some(d) = app
                .selected_row()
                .and_then(|r| row_device(&app.store, r))
                .map(str::to_string)
            else {
                return;
            };
            let times = app
                .rows
                .iter()
                .filter(|r| row_device(&app.store, **r) == Some(d.as_str()))
                .filter_map(|r| row_time(&app.store, *r));
            let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
            let hi = app
                .stall_at
                .values()
                .filter(|s| s.device == d)
                .fold(hi, |h, s| h.max(s.to.0));
            if lo <= hi {
                // A little room either side, so the first and last events are not on the edge.
                let pad = ((hi - lo) / 20).max(MIN_BUCKET_NS.saturating_mul(n as i64) / 2);
                app.timeline.zoom = Some(Span::new(lo.saturating_sub(pad), hi.saturating_add(pad)));
            }
            app.timeline.device = Some(d);
        }
    }
}

/// Select the first list row that starts in `bucket` (of the zoomed device, when there is one).
fn select_in_bucket(app: &mut App, bucket: Span) {
    let conns = &app.store;
    let start = app
        .rows
        .partition_point(|r| row_time(conns, *r).is_some_and(|t| t < bucket.from));
    let device = app.timeline.device.as_deref();
    let found = app
        .rows
        .iter()
        .enumerate()
        .skip(start)
        .take_while(|(_, r)| row_time(conns, **r).is_some_and(|t| t < bucket.to))
        .find(|(_, r)| device.is_none() || row_device(conns, **r) == device)
        .map(|(i, _)| i);
    if let Some(i) = found {
        if i != app.selected {
            app.selected = i;
            app.detail_scroll = 0;
        }
    }
}

// ----- drawing -----

/// Rows the view wants in a body of `body_height` rows (it leaves the list at least half).
pub fn height(app: &App, body_height: u16) -> u16 {
    let bands: u16 = if app.timeline.per_device {
        let devices = app.devices.len().clamp(1, MAX_LANES) as u16;
        devices + 2 // lanes, latency band, failures band
    } else {
        4
    };
    // Border, info line, bands, axis.
    (bands + 4).min(body_height / 2).max(body_height.min(5))
}

const SPARK: [&str; 8] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];

/// A sparkline glyph for `v` of `max` (at least the lowest bar for any `v` > 0).
fn spark(v: f64, max: f64) -> &'static str {
    if v <= 0.0 || max <= 0.0 {
        return " ";
    }
    let i = ((v / max) * 7.0).round() as usize;
    SPARK.get(i.clamp(0, 7)).copied().unwrap_or("█")
}

/// Draw the view in `area`.
pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let legend = "x failed, S stall starts, ═ events held";
    let title = match &app.timeline.device {
        Some(d) => format!(" Time line: {d} ({legend}) "),
        None => format!(" Time line ({legend}) "),
    };
    let block = Block::bordered()
        .title(title)
        .border_style(t.focus_border());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let Some(span) = view_span(app) else {
        f.render_widget(Paragraph::new("no events yet"), inner);
        return;
    };
    let width = usize::from(inner.width);
    let label_w = if app.timeline.per_device {
        let longest = app.devices.iter().map(|d| d.device.chars().count()).max();
        longest.unwrap_or(0).clamp(LABEL_W - 1, MAX_LANE_LABEL) + 1
    } else {
        LABEL_W
    };
    let n = width.saturating_sub(label_w).clamp(1, MAX_BUCKETS);
    app.timeline
        .columns
        .set(u16::try_from(n).unwrap_or(u16::MAX));
    let frame = drawn(app, span, n);
    let all = &frame.all;
    let cursor = cursor_time(app).and_then(|c| span.bucket_of(c, n));

    let mut lines: Vec<Line> = Vec::new();
    lines.push(info_line(app, span, n, all, cursor));
    let max_events = all.iter().map(|b| b.events).max().unwrap_or(0);
    let max_lat = all
        .iter()
        .filter_map(|b| b.max_latency_ms)
        .fold(0.0_f64, f64::max);
    let cell = |i: usize, s: &'static str, style: Style| {
        let style = if Some(i) == cursor {
            style.patch(t.selected())
        } else {
            style
        };
        TextSpan::styled(s, style)
    };
    let band = |label: &str, cells: Vec<TextSpan<'static>>| {
        let mut spans = vec![TextSpan::styled(
            format!("{:<w$}", truncate(label, label_w - 1), w = label_w),
            t.dim(),
        )];
        spans.extend(cells);
        Line::from(spans)
    };
    let events_cell = |i: usize, b: &Bucket, max: u32| {
        cell(i, spark(f64::from(b.events), f64::from(max)), t.ok())
    };
    let fail_cell = |i: usize, b: &Bucket| {
        if b.failures > b.uncertain {
            cell(i, "x", t.bad())
        } else if b.failures > 0 {
            cell(i, "?", t.warn())
        } else {
            cell(i, " ", Style::new())
        }
    };
    let stall_cell = |i: usize, b: &Bucket| match b.stall {
        StallMark::Start => cell(i, "S", t.bad()),
        StallMark::Held => cell(i, "═", t.bad()),
        StallMark::HeldOpen => cell(i, "…", t.warn()),
        StallMark::None => cell(i, " ", Style::new()),
    };
    if let Some((lanes, dropped)) = &frame.lanes {
        let room = usize::from(inner.height).saturating_sub(4);
        let max = lanes
            .iter()
            .flat_map(|l| l.buckets.iter().map(|b| b.events))
            .max()
            .unwrap_or(0);
        let shown = lanes.len().min(room);
        for lane in lanes.iter().take(shown) {
            // One row per device: a failure wins, then a stall's start, events, a held stall.
            let cells = lane
                .buckets
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if b.failures > b.uncertain {
                        cell(i, "x", t.bad())
                    } else if b.stall == StallMark::Start {
                        cell(i, "S", t.bad())
                    } else if b.events > 0 {
                        events_cell(i, b, max)
                    } else if b.stall != StallMark::None {
                        stall_cell(i, b)
                    } else {
                        cell(i, " ", Style::new())
                    }
                })
                .collect();
            lines.push(band(&lane.device, cells));
        }
        let hidden = lanes.len() - shown + *dropped;
        if hidden > 0 {
            lines.push(Line::styled(
                format!("{hidden} more device(s): zoom to one with z, or filter with /"),
                t.dim(),
            ));
        }
    } else {
        let ev = all
            .iter()
            .enumerate()
            .map(|(i, b)| events_cell(i, b, max_events))
            .collect();
        lines.push(band("events", ev));
        let fl = all
            .iter()
            .enumerate()
            .map(|(i, b)| fail_cell(i, b))
            .collect();
        lines.push(band("failed", fl));
        let st = all
            .iter()
            .enumerate()
            .map(|(i, b)| stall_cell(i, b))
            .collect();
        lines.push(band("stalls", st));
    }
    let lat = all
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let v = b.max_latency_ms.unwrap_or(0.0);
            // Any answer shows, even a fast one among slow.
            let g = if b.max_latency_ms.is_some() && v <= 0.0 {
                "▁"
            } else {
                spark(v, max_lat)
            };
            cell(i, g, t.accent())
        })
        .collect();
    lines.push(band("answer", lat));
    lines.push(axis(span, n, cursor, label_w, t));
    f.render_widget(Paragraph::new(lines), inner);
}

/// The first line: span, bucket size, the cursor's bucket, the latency scale.
fn info_line(
    app: &App,
    span: Span,
    n: usize,
    all: &[Bucket],
    cursor: Option<usize>,
) -> Line<'static> {
    let t = app.theme;
    let per = span.nanos() as f64 / n as f64 / 1e9;
    let mut s = vec![TextSpan::raw(format!(
        "{} .. {} UTC, {}/col",
        Timestamp(span.from).to_clock_string(),
        Timestamp(span.to.saturating_sub(1)).to_clock_string(),
        seconds(per)
    ))];
    if let Some(b) = cursor.and_then(|i| all.get(i)) {
        let at = Timestamp(span.bucket_start(cursor.unwrap_or(0), n)).to_clock_string();
        s.push(TextSpan::raw(format!(
            " | {at}: {} event(s), {} failed",
            b.events, b.failures
        )));
        match b.stall {
            StallMark::Start => s.push(TextSpan::styled(", stall starts", t.bad())),
            StallMark::Held => s.push(TextSpan::styled(", in a stall", t.bad())),
            StallMark::HeldOpen => s.push(TextSpan::styled(
                ", in a stall (capture ended before the device sent again)",
                t.warn(),
            )),
            StallMark::None => {}
        }
        if let Some(l) = b.max_latency_ms {
            s.push(TextSpan::raw(format!(
                ", answer {}",
                super::detail::latency(l)
            )));
        }
    }
    let max_lat = all
        .iter()
        .filter_map(|b| b.max_latency_ms)
        .fold(0.0, f64::max);
    if max_lat > 0.0 {
        s.push(TextSpan::styled(
            format!(" | answer band max {}", super::detail::latency(max_lat)),
            t.dim(),
        ));
    }
    Line::from(s)
}

/// The time axis: the span's start and end times and the cursor as `▲`.
fn axis(
    span: Span,
    n: usize,
    cursor: Option<usize>,
    label_w: usize,
    t: super::theme::Theme,
) -> Line<'static> {
    let mut row: Vec<char> = vec![' '; n];
    let left = Timestamp(span.from).to_clock_string();
    let right = Timestamp(span.to.saturating_sub(1)).to_clock_string();
    let right_chars: Vec<char> = right.chars().collect();
    if n > left.len() + right_chars.len() + 3 {
        // From the second column: the cursor often sits on the first.
        for (slot, c) in row.iter_mut().skip(1).zip(left.chars()) {
            *slot = c;
        }
        let at = n - right_chars.len();
        for (slot, c) in row.iter_mut().skip(at).zip(right_chars) {
            *slot = c;
        }
    }
    let mut spans = vec![TextSpan::styled(format!("{:<label_w$}", "time"), t.dim())];
    for (i, c) in row.into_iter().enumerate() {
        if Some(i) == cursor {
            spans.push(TextSpan::styled("▲", t.accent()));
        } else {
            spans.push(TextSpan::styled(c.to_string(), t.dim()));
        }
    }
    Line::from(spans)
}

fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

fn truncate(s: &str, w: usize) -> String {
    s.chars().take(w).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_of_covers_the_span_evenly() {
        let s = Span::new(100, 200);
        assert_eq!(s.bucket_of(99, 10), None);
        assert_eq!(s.bucket_of(100, 10), Some(0));
        assert_eq!(s.bucket_of(109, 10), Some(0));
        assert_eq!(s.bucket_of(110, 10), Some(1));
        assert_eq!(s.bucket_of(199, 10), Some(9));
        assert_eq!(s.bucket_of(200, 10), None);
        assert_eq!(s.bucket_start(3, 10), 130);
        // Extreme times do not overflow.
        let w = Span::new(i64::MIN, i64::MAX);
        assert_eq!(w.bucket_of(i64::MAX - 1, 4), Some(3));
    }
}
