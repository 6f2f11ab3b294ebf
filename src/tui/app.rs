//! The screen's state and the one place it changes: [`App::update`]. Drawing (`ui`) only reads
//! it; the terminal shell (`mod.rs`) turns terminal events and feed messages into [`Msg`]s and
//! carries out the [`Cmd`]s that `update` returns.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use ratatui::text::Line;

use super::rows::{CompactRow, RowStore};
use super::save::SaveOutcome;
use super::theme::Theme;
use super::timeline::{self, Timeline, TimelineMsg};
use crate::diagnose::Ledger;
use crate::feed::Feed;
use crate::filter::RowFilter;
pub use crate::filter::{contains_ci, no_request_label, tls_problem_label};
use crate::model::{Connection, Device, Exchange, ExchangeRef, Report, Stall, Summary};
use crate::pipeline::Counters;
use crate::replay::Progress;

/// Shortest time between two diagnosis runs while data streams in (at most ~4 per second).
pub const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// Warnings kept for the `w` overlay (a failing disk can warn on every event).
pub const MAX_WARNINGS: usize = 500;

/// One list row (an exchange, or a connection that carried no request): its index in
/// [`App::store`], kept small so the flat index of a million rows stays a few megabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowRef(pub u32);

/// Where the full connection of a row comes from when it is opened.
pub enum Details {
    /// Whole connections kept in memory (live sources, which may replace a connection by id, and
    /// tests).
    Memory {
        conns: Vec<Rc<Connection>>,
        by_id: HashMap<u64, usize>,
    },
    /// Read again from the capture file (replay): only the compact rows are kept, and the
    /// last few connections opened.
    Capture {
        reloader: crate::reload::Reloader,
        cache: RefCell<VecDeque<Rc<Connection>>>,
        /// The last connection that could not be loaded, and why (not tried again each frame).
        failed: RefCell<Option<(u64, String)>>,
    },
}

/// Connections opened from the capture kept at once (moving around the list is instant).
pub const DETAIL_CACHE: usize = 8;

/// A row's full connection and which of its exchanges the row is.
pub struct Loaded {
    pub conn: Rc<Connection>,
    pub ex: Option<usize>,
}

impl Loaded {
    /// The row's exchange (None for a connection row).
    pub fn ex(&self) -> Option<&Exchange> {
        self.ex.and_then(|i| self.conn.exchanges.get(i))
    }
}

/// Which pane the arrow keys move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    List,
    Detail,
}

/// The detail pane's tabs, in the order of the engineer's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tab {
    Handshake,
    Request,
    Response,
    Diagnosis,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Handshake, Tab::Request, Tab::Response, Tab::Diagnosis];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Handshake => "Handshake",
            Tab::Request => "Request",
            Tab::Response => "Response",
            Tab::Diagnosis => "Diagnosis",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Tab::Handshake => 0,
            Tab::Request => 1,
            Tab::Response => 2,
            Tab::Diagnosis => 3,
        }
    }

    pub fn from_index(i: usize) -> Tab {
        Tab::ALL.get(i).copied().unwrap_or(Tab::Handshake)
    }
}

/// Where the data comes from: a file (which the save key can re-read) or a live feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Replay(PathBuf),
    Live(String),
}

/// Everything that can change the state.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one Final report per session: boxing buys nothing
pub enum Msg {
    Feed(Feed),
    /// Periodic: re-run the diagnosis if data changed and the last run is old enough.
    Tick(Instant),
    /// Move the selection (list, devices) or scroll (detail) by this many rows.
    Move(i64),
    /// Move by a page up (-1) or down (+1).
    Page(i64),
    Home,
    End,
    ToggleFocus,
    NextTab,
    PrevTab,
    SelectTab(Tab),
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    /// Keep the filter and leave the input.
    FilterAccept,
    /// Clear the filter and leave the input.
    FilterCancel,
    ToggleProblems,
    NextProblem,
    PrevProblem,
    ToggleDevices,
    ToggleHelp,
    ToggleWarnings,
    Save,
    /// The background save finished so.
    SaveDone(SaveOutcome),
    /// `x`: ask which rows to export as pcap.
    StartExport,
    /// Export these rows' connections (the chooser's answer).
    Export(ExportScope),
    /// Leave the export chooser.
    ExportCancel,
    /// `f`: open the Follow-stream view on the selected row's connection.
    FollowStream,
    /// Input for the open Follow-stream view.
    Stream(super::stream::StreamMsg),
    /// Mouse wheel at a screen position (delta in rows).
    Scroll {
        column: u16,
        row: u16,
        delta: i64,
    },
    /// Left click at a screen position.
    Click {
        column: u16,
        row: u16,
    },
    /// The time line view's keys (`t` opens it).
    Timeline(TimelineMsg),
    Quit,
}

/// Which rows the `x` key exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportScope {
    /// The selected row's connection.
    Connection,
    /// Every row the current filter shows.
    Filtered,
    /// Every problem row (failed exchanges and handshakes), filter or not.
    Problems,
}

/// Work for the shell to do outside the UI thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Re-read `path` with an extractor limited to connection `conn_id` and write its parts to
    /// `dir`; `prefix` names this exchange's files.
    Save {
        path: PathBuf,
        dir: PathBuf,
        conn_id: u64,
        prefix: String,
    },
    /// Re-read `path` and write the chosen connections' frames to `out` (`crate::export`).
    Export {
        path: PathBuf,
        out: PathBuf,
        selection: crate::export::Selection,
    },
    /// Re-read `path` and index one connection's stream for the Follow-stream view; the result
    /// comes back as [`super::stream::StreamMsg::Indexed`].
    IndexStream {
        path: PathBuf,
        target: super::stream_load::StreamTarget,
    },
}

/// Screen areas, scroll offsets and limits from the last draw, so mouse clicks, page keys and
/// scrolling match what the engineer sees. Written by the renderer (interior mutability:
/// rendering takes `&App`), read by [`App::update`], which never calls drawing code itself (as
/// with ratatui's `TableState`, the view leaves behind what input handling needs).
#[derive(Debug, Default)]
pub struct ViewCache {
    /// The list's table area, inside the border (first row is the column header).
    pub list: Cell<Rect>,
    pub list_offset: Cell<usize>,
    /// The detail pane (border included) and its text area.
    pub detail: Cell<Rect>,
    pub detail_text: Cell<Rect>,
    /// The devices table area, inside the border.
    pub devices: Cell<Rect>,
    pub devices_offset: Cell<usize>,
    /// Where each detail tab's title is ([`Tab::index`] order), for clicks.
    pub detail_tabs: Cell<[Rect; 4]>,
    /// How far the detail text could scroll when it was last drawn.
    pub detail_scroll_max: Cell<Option<ScrollLimit>>,
}

/// The largest scroll offset of the detail text that still fills the pane, and what it was
/// measured for: the row, tab and data shown, and the text area's size. Valid only while all of
/// them are what the state says (the renderer measures again after any change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrollLimit {
    /// The row shown (none: the empty-list note).
    pub row: Option<RowRef>,
    /// The tab shown.
    pub tab: Tab,
    /// [`App::data_version`] when measured.
    pub data_version: u64,
    /// Width and height of the text area measured.
    pub size: (u16, u16),
    pub max: u16,
}

/// Detail lines of one row and tab, kept until the row, tab or data change.
pub struct DetailCache {
    pub key: (RowRef, Tab, u64),
    pub lines: Rc<Vec<Line<'static>>>,
}

/// The whole state of the screen.
pub struct App {
    pub source: Source,
    pub theme: Theme,
    /// Every row, compact, in arrival order.
    pub store: RowStore,
    /// Where opened rows get their full connection.
    pub details: Details,
    /// Connections taken in.
    connections: usize,
    /// The diagnosis, fed each connection once as it arrives.
    ledger: Ledger,
    /// A connection was replaced (live): rows and ledger are rebuilt at the next refresh.
    rebuild: bool,
    /// Rows added since the last refresh, not yet in `all_rows`.
    pending: Vec<u32>,
    pub devices: Vec<Device>,
    pub summary: Summary,
    /// Stalls by the exchange that started them.
    pub stall_at: HashMap<ExchangeRef, Stall>,
    /// Retries: each exchange that repeats an unanswered body, and the exchange it repeats.
    pub retry_at: HashMap<ExchangeRef, ExchangeRef>,
    pub counters: Counters,
    /// The report's warnings and those sent while running (the newest [`MAX_WARNINGS`]).
    pub warnings: Vec<String>,
    /// Warnings no longer kept in `warnings`.
    pub warnings_dropped: u64,
    pub progress: Option<Progress>,
    pub eta_secs: Option<f64>,
    started: Instant,
    /// Final report received (replay finished or live session over).
    pub finished: bool,
    pub error: Option<String>,
    /// Data changed since the last diagnosis.
    dirty: bool,
    /// Earliest time of the next diagnosis run (paced by how long the last one took).
    next_refresh: Option<Instant>,
    /// Bumped whenever the data or rows change (detail cache key).
    pub data_version: u64,
    /// Every row, in time order.
    all_rows: Vec<RowRef>,
    /// The rows shown (filter and problems-only applied).
    pub rows: Vec<RowRef>,
    pub selected: usize,
    pub focus: Focus,
    pub tab: Tab,
    pub detail_scroll: u16,
    pub show_devices: bool,
    pub device_selected: usize,
    pub show_help: bool,
    pub show_warnings: bool,
    pub filter: String,
    pub filter_editing: bool,
    filter_before_edit: String,
    pub problems_only: bool,
    /// The `x` chooser is open: the next key picks what to export.
    pub export_choosing: bool,
    /// Footer message (save results, search notes) and whether it is an error.
    pub status: Option<(String, bool)>,
    pub saving: bool,
    pub quit: bool,
    pub view: ViewCache,
    pub detail_cache: RefCell<Option<DetailCache>>,
    /// The Follow-stream view, while open (it takes the keys).
    pub stream: Option<super::stream::StreamView>,
    /// The replay's key log (`--keylog`), for the Follow-stream view's plaintext.
    pub stream_keys: Option<crate::tls::SharedKeys>,
    /// The time line view (`t`).
    pub timeline: Timeline,
    /// The pictures of the selected exchange (detail pane, Request tab).
    pub pictures: super::picture::Pictures,
}

impl App {
    pub fn new(source: Source, theme: Theme) -> Self {
        App {
            source,
            theme,
            store: RowStore::default(),
            details: Details::Memory {
                conns: Vec::new(),
                by_id: HashMap::new(),
            },
            connections: 0,
            ledger: tui_ledger(),
            rebuild: false,
            pending: Vec::new(),
            devices: Vec::new(),
            summary: Summary::default(),
            stall_at: HashMap::new(),
            retry_at: HashMap::new(),
            counters: Counters::default(),
            warnings: Vec::new(),
            warnings_dropped: 0,
            progress: None,
            eta_secs: None,
            started: Instant::now(),
            finished: false,
            error: None,
            dirty: false,
            next_refresh: None,
            data_version: 0,
            all_rows: Vec::new(),
            rows: Vec::new(),
            selected: 0,
            focus: Focus::List,
            tab: Tab::Request,
            detail_scroll: 0,
            show_devices: false,
            device_selected: 0,
            show_help: false,
            show_warnings: false,
            filter: String::new(),
            filter_editing: false,
            filter_before_edit: String::new(),
            problems_only: false,
            export_choosing: false,
            status: None,
            saving: false,
            quit: false,
            view: ViewCache::default(),
            detail_cache: RefCell::new(None),
            stream: None,
            stream_keys: None,
            timeline: Timeline::default(),
            pictures: super::picture::Pictures::default(),
        }
    }

    /// The source as the header shows it.
    pub fn source_label(&self) -> String {
        match &self.source {
            Source::Replay(p) => format!("replay {}", p.display()),
            Source::Live(t) => t.clone(),
        }
    }

    // ----- data -----

    /// Keep only compact rows and load a row's connection from the capture file when it is
    /// opened (replay). Call before any connection arrives; the feed must then send each
    /// connection once (a replay does: its final report carries none), since connections are
    /// not kept to be replaced.
    pub fn load_from_capture(&mut self, reloader: crate::reload::Reloader) {
        self.details = Details::Capture {
            reloader,
            cache: RefCell::new(VecDeque::new()),
            failed: RefCell::new(None),
        };
    }

    /// Add connections, or replace them by id (live sources; connections in memory only).
    pub fn upsert(&mut self, conns: Vec<Connection>) {
        for c in conns {
            match &mut self.details {
                Details::Memory { conns, by_id } => {
                    if let Some(slot) = by_id.get(&c.id).and_then(|&i| conns.get_mut(i)) {
                        *slot = Rc::new(c);
                        self.rebuild = true;
                        continue;
                    }
                    by_id.insert(c.id, conns.len());
                    if !self.rebuild {
                        add_rows(&mut self.ledger, &mut self.store, &mut self.pending, &c);
                    }
                    conns.push(Rc::new(c));
                }
                Details::Capture { .. } => {
                    // The connection itself is dropped here: only its rows stay.
                    add_rows(&mut self.ledger, &mut self.store, &mut self.pending, &c);
                }
            }
            self.connections += 1;
        }
        self.dirty = true;
    }

    /// Connections taken in.
    pub fn connection_count(&self) -> usize {
        self.connections
    }

    fn on_final(&mut self, r: Report) {
        self.counters = Counters::from_summary(&r.summary);
        // Live warnings came before; a replay's come only here.
        self.add_warnings(r.warnings.iter().map(ToString::to_string));
        self.upsert(r.connections);
        self.finished = true;
        self.eta_secs = None;
        self.refresh();
    }

    fn on_progress(&mut self, p: Progress) {
        self.progress = Some(p);
        self.counters.packets = p.packets;
        if p.file_size > 0 && p.bytes_read > 0 && p.bytes_read < p.file_size {
            let elapsed = self.started.elapsed().as_secs_f64();
            let rate = p.bytes_read as f64 / elapsed.max(1e-3);
            self.eta_secs = Some((p.file_size - p.bytes_read) as f64 / rate.max(1.0));
        } else {
            self.eta_secs = None;
        }
    }

    /// Take the findings so far from the ledger and merge the new rows into the time order
    /// (keeping the selection). Every connection is walked again only after a live source
    /// replaced one.
    pub fn refresh(&mut self) {
        let keep = self.selected_row();
        let follow = !self.rows.is_empty() && self.selected + 1 == self.rows.len();
        // Row indices change in a rebuild: the selection is found again by connection and
        // exchange.
        let keep_key = keep.and_then(|r| self.row(r)).map(|r| (r.conn_id, r.ex));
        let rebuilt = self.rebuild;
        if rebuilt {
            self.rebuild_all();
        }
        let end = self.counters.last_packet;
        let (f, retries) = self.ledger.snapshot(&self.counters, end);
        self.stall_at = f.stalls.into_iter().map(|s| (s.exchange, s)).collect();
        self.retry_at = retries.into_iter().collect();
        self.devices = f.devices;
        self.summary = f.summary;
        self.dirty = false;
        self.merge_rows(keep.filter(|_| !rebuilt), follow);
        if let Some(k) = keep_key.filter(|_| rebuilt && !follow) {
            let store = &self.store;
            let at = self
                .rows
                .iter()
                .position(|r| store.get(r.0).is_some_and(|row| (row.conn_id, row.ex) == k));
            if let Some(i) = at {
                self.selected = i;
            }
        }
    }

    /// Rows and ledger anew from the connections in memory (after a replacement).
    fn rebuild_all(&mut self) {
        self.rebuild = false;
        self.ledger = tui_ledger();
        self.store.clear();
        self.pending.clear();
        self.all_rows.clear();
        if let Details::Memory { conns, .. } = &self.details {
            for c in conns {
                add_rows(&mut self.ledger, &mut self.store, &mut self.pending, c);
            }
        }
        self.rows.clear();
    }

    /// Put the rows added since the last refresh into `all_rows`, in time order. They arrive
    /// nearly in order: usually they go at the end; otherwise one merge pass.
    fn merge_rows(&mut self, keep: Option<RowRef>, follow: bool) {
        let store = &self.store;
        let key = |i: u32| (store.get(i).map_or(i64::MAX, |r| r.time.0), i);
        let mut new = std::mem::take(&mut self.pending);
        new.sort_unstable_by_key(|i| key(*i));
        let in_order = match (self.all_rows.last(), new.first()) {
            (Some(last), Some(first)) => key(last.0) <= key(*first),
            _ => true,
        };
        if in_order {
            self.all_rows.extend(new.into_iter().map(RowRef));
        } else {
            let old = std::mem::take(&mut self.all_rows);
            let mut merged = Vec::with_capacity(old.len() + new.len());
            let (mut a, mut b) = (old.into_iter().peekable(), new.into_iter().peekable());
            loop {
                let take_old = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) => key(x.0) <= key(*y),
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => break,
                };
                let next = if take_old {
                    a.next()
                } else {
                    b.next().map(RowRef)
                };
                merged.extend(next);
            }
            self.all_rows = merged;
        }
        self.apply_filter(keep, follow);
    }

    /// The filter the list applies now: the typed words (core [`RowFilter`], the same meaning as
    /// the headless `--device`, `--verdict`... options) and the `p` key. A word that cannot be read
    /// (e.g. `verdict:fine`) leaves the typed line as free text and says why in the footer.
    pub fn row_filter(&self) -> RowFilter {
        let typed = RowFilter::parse_query(&self.filter).unwrap_or_else(|_| RowFilter {
            text: self.filter.to_ascii_lowercase(),
            ..RowFilter::default()
        });
        RowFilter {
            problems: self.problems_only,
            ..RowFilter::default()
        }
        .and(typed)
    }

    /// Rebuild the shown rows from all rows, keeping `keep` selected when it is still shown.
    fn apply_filter(&mut self, keep: Option<RowRef>, follow: bool) {
        let filter = self.row_filter();
        let store = &self.store;
        let hits = store.text_hits(&filter.text);
        self.rows = if filter.is_empty() {
            self.all_rows.clone()
        } else {
            // The rows are read in the store's order (sequential memory, which the time order
            // only nearly is), then picked in time order from the flags.
            let keep: Vec<bool> = store
                .iter()
                .map(|row| filter.matches_row(&store.filter_row(row, &hits)))
                .collect();
            let mut shown = Vec::with_capacity(self.all_rows.len());
            shown.extend(
                self.all_rows
                    .iter()
                    .filter(|r| keep.get(r.0 as usize).copied().unwrap_or(false)),
            );
            shown
        };
        self.data_version = self.data_version.wrapping_add(1);
        if follow && !self.rows.is_empty() {
            self.selected = self.rows.len() - 1;
        } else if let Some(k) = keep {
            if let Some(pos) = self.rows.iter().position(|r| *r == k) {
                self.selected = pos;
            }
        }
        self.clamp_selection();
    }

    fn clamp_selection(&mut self) {
        if self.selected >= self.rows.len() {
            self.selected = self.rows.len().saturating_sub(1);
        }
        if self.device_selected >= self.devices.len() {
            self.device_selected = self.devices.len().saturating_sub(1);
        }
    }

    // ----- queries -----

    /// Rows before the filter.
    pub fn total_rows(&self) -> usize {
        self.all_rows.len()
    }

    pub fn selected_row(&self) -> Option<RowRef> {
        self.rows.get(self.selected).copied()
    }

    /// The compact row.
    pub fn row(&self, r: RowRef) -> Option<&CompactRow> {
        self.store.get(r.0)
    }

    /// The row's full connection (with its retry marks), loaded from the capture file for a
    /// replay (the last [`DETAIL_CACHE`] stay at hand). None when the row points nowhere or the
    /// connection cannot be loaded ([`App::load_error`] says why).
    pub fn exchange(&self, r: RowRef) -> Option<Loaded> {
        let row = self.row(r)?;
        let conn = match &self.details {
            Details::Memory { conns, by_id } => {
                by_id.get(&row.conn_id).and_then(|&i| conns.get(i))?.clone()
            }
            Details::Capture {
                reloader,
                cache,
                failed,
            } => {
                let hit = cache
                    .try_borrow()
                    .ok()?
                    .iter()
                    .find(|c| c.id == row.conn_id)
                    .cloned();
                match hit {
                    Some(c) => c,
                    None => {
                        if failed
                            .try_borrow()
                            .ok()?
                            .as_ref()
                            .is_some_and(|(id, _)| *id == row.conn_id)
                        {
                            return None;
                        }
                        match self.reload(reloader, row) {
                            Ok(c) => {
                                let c = Rc::new(c);
                                if let Ok(mut cache) = cache.try_borrow_mut() {
                                    if cache.len() >= DETAIL_CACHE {
                                        cache.pop_front();
                                    }
                                    cache.push_back(c.clone());
                                }
                                c
                            }
                            Err(e) => {
                                if let Ok(mut f) = failed.try_borrow_mut() {
                                    *f = Some((row.conn_id, e.to_string()));
                                }
                                return None;
                            }
                        }
                    }
                }
            }
        };
        Some(Loaded {
            conn: self.with_retry_marks(conn),
            ex: row.exchange(),
        })
    }

    /// Why the connection of a row could not be loaded from the capture, if it could not.
    pub fn load_error(&self, r: RowRef) -> Option<String> {
        let row = self.row(r)?;
        let Details::Capture { failed, .. } = &self.details else {
            return None;
        };
        let f = failed.try_borrow().ok()?;
        f.as_ref()
            .filter(|(id, _)| *id == row.conn_id)
            .map(|(_, why)| why.clone())
    }

    fn reload(
        &self,
        reloader: &crate::reload::Reloader,
        row: &CompactRow,
    ) -> Result<Connection, crate::reload::ReloadError> {
        let (Some(client), Some(server)) = (self.store.client(row), self.store.server(row)) else {
            return Err(crate::reload::ReloadError::NoAddresses);
        };
        reloader.load(&crate::reload::Target {
            id: row.conn_id,
            client,
            server,
            first_seen: row.first_seen,
            last_seen: row.last_seen(),
            packets: u64::from(row.packets),
        })
    }

    /// The connection with `retry_of` set as the diagnosis found (a copy only when it differs).
    fn with_retry_marks(&self, c: Rc<Connection>) -> Rc<Connection> {
        let mark = |ex: &Exchange| {
            self.retry_at
                .get(&ExchangeRef {
                    connection: c.id,
                    index: ex.index,
                })
                .copied()
        };
        if c.exchanges.iter().all(|ex| ex.retry_of == mark(ex)) {
            return c;
        }
        let mut copy = (*c).clone();
        for ex in &mut copy.exchanges {
            ex.retry_of = mark(ex);
        }
        Rc::new(copy)
    }

    /// Is the row's exchange a retry of an earlier one?
    pub fn is_retry(&self, row: &CompactRow) -> bool {
        row.exchange().is_some_and(|i| {
            self.retry_at.contains_key(&ExchangeRef {
                connection: row.conn_id,
                index: i,
            })
        })
    }

    /// Seconds of the stall the row's exchange started, if it started one.
    pub fn row_stall_seconds(&self, row: &CompactRow) -> Option<f64> {
        let i = row.exchange()?;
        self.stall_at
            .get(&ExchangeRef {
                connection: row.conn_id,
                index: i,
            })
            .map(|s| s.seconds)
    }

    /// The stall an exchange started, if it started one.
    pub fn stall(&self, c: &Connection, ex: &Exchange) -> Option<&Stall> {
        self.stall_at.get(&ExchangeRef {
            connection: c.id,
            index: ex.index,
        })
    }

    pub fn is_problem(&self, r: RowRef) -> bool {
        self.row(r).is_some_and(CompactRow::is_problem)
    }

    /// Rows in the list viewport (from the last draw; a sane default before the first).
    fn list_page(&self) -> usize {
        let h = self.view.list.get().height as usize;
        h.saturating_sub(1).max(1)
    }

    fn detail_page(&self) -> u16 {
        self.view.detail_text.get().height.max(1)
    }

    fn devices_page(&self) -> usize {
        (self.view.devices.get().height as usize)
            .saturating_sub(1)
            .max(1)
    }

    // ----- input -----

    /// Map a key to a message, given the current mode (filter input, help, normal).
    pub fn key_to_msg(&self, key: KeyEvent) -> Option<Msg> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c')) {
            return Some(Msg::Quit);
        }
        if let Some(s) = &self.stream {
            return s.key_to_msg(key).map(Msg::Stream);
        }
        if self.filter_editing {
            return match key.code {
                KeyCode::Esc => Some(Msg::FilterCancel),
                KeyCode::Enter => Some(Msg::FilterAccept),
                KeyCode::Backspace => Some(Msg::FilterBackspace),
                KeyCode::Char(c) if !ctrl => Some(Msg::FilterChar(c)),
                KeyCode::Up => Some(Msg::Move(-1)),
                KeyCode::Down => Some(Msg::Move(1)),
                _ => None,
            };
        }
        if self.export_choosing {
            return Some(match key.code {
                KeyCode::Char('c') => Msg::Export(ExportScope::Connection),
                KeyCode::Char('f') => Msg::Export(ExportScope::Filtered),
                KeyCode::Char('p') => Msg::Export(ExportScope::Problems),
                _ => Msg::ExportCancel,
            });
        }
        // An open box (help, warnings): any key but q closes it.
        if self.show_help || self.show_warnings {
            return Some(match key.code {
                KeyCode::Char('q') => Msg::Quit,
                _ if self.show_help => Msg::ToggleHelp,
                _ => Msg::ToggleWarnings,
            });
        }
        if self.timeline.open && !self.show_devices {
            if let Some(m) = timeline::key_msg(key.code) {
                return Some(Msg::Timeline(m));
            }
        }
        let msg = match key.code {
            KeyCode::Char('q') => Msg::Quit,
            KeyCode::Esc => Msg::Quit,
            KeyCode::Up | KeyCode::Char('k') => Msg::Move(-1),
            KeyCode::Down | KeyCode::Char('j') => Msg::Move(1),
            KeyCode::PageUp => Msg::Page(-1),
            KeyCode::PageDown | KeyCode::Char(' ') => Msg::Page(1),
            KeyCode::Home | KeyCode::Char('g') => Msg::Home,
            KeyCode::End | KeyCode::Char('G') => Msg::End,
            KeyCode::Enter | KeyCode::Tab | KeyCode::BackTab => Msg::ToggleFocus,
            KeyCode::Left | KeyCode::Char('h') => Msg::PrevTab,
            KeyCode::Right | KeyCode::Char('l') => Msg::NextTab,
            KeyCode::Char(c @ '1'..='4') => {
                Msg::SelectTab(Tab::from_index((c as usize).saturating_sub('1' as usize)))
            }
            KeyCode::Char('/') => Msg::StartFilter,
            KeyCode::Char('p') => Msg::ToggleProblems,
            KeyCode::Char('n') => Msg::NextProblem,
            KeyCode::Char('N') => Msg::PrevProblem,
            KeyCode::Char('d') => Msg::ToggleDevices,
            KeyCode::Char('s') => Msg::Save,
            KeyCode::Char('x') => Msg::StartExport,
            KeyCode::Char('f') => Msg::FollowStream,
            KeyCode::Char('?') => Msg::ToggleHelp,
            KeyCode::Char('w') => Msg::ToggleWarnings,
            KeyCode::Char('t') => Msg::Timeline(TimelineMsg::Toggle),
            _ => return None,
        };
        Some(msg)
    }

    /// Map a mouse event: wheel scrolls what is under the pointer, a left click selects.
    pub fn mouse_to_msg(&self, m: MouseEvent) -> Option<Msg> {
        let (column, row) = (m.column, m.row);
        match m.kind {
            MouseEventKind::ScrollDown => Some(Msg::Scroll {
                column,
                row,
                delta: 3,
            }),
            MouseEventKind::ScrollUp => Some(Msg::Scroll {
                column,
                row,
                delta: -3,
            }),
            MouseEventKind::Down(MouseButton::Left) => Some(Msg::Click { column, row }),
            _ => None,
        }
    }

    // ----- update -----

    /// Apply one message. Returns work for the shell, if any.
    pub fn update(&mut self, msg: Msg) -> Option<Cmd> {
        if !matches!(
            msg,
            Msg::Feed(_) | Msg::Tick(_) | Msg::SaveDone(_) | Msg::StartExport
        ) && !self.saving
        {
            // A key or click dismisses the last note.
            self.status = None;
        }
        match msg {
            Msg::Feed(f) => self.on_feed(f),
            Msg::Tick(now) => {
                super::picture::tick(self);
                if self.dirty && self.next_refresh.is_none_or(|t| now >= t) {
                    let t0 = Instant::now();
                    self.refresh();
                    // A diagnosis over a million rows takes a while: never spend more than a
                    // fifth of the time on it.
                    self.next_refresh =
                        Some(now + REFRESH_EVERY.max(t0.elapsed().saturating_mul(4)));
                }
                if let Some(s) = self.stream.as_mut() {
                    s.ensure_window(); // the window may have grown (terminal resized)
                }
            }
            Msg::Move(d) => self.move_by(d),
            Msg::Page(d) => {
                let page = match (self.show_devices, self.focus) {
                    (true, _) => self.devices_page() as i64,
                    (false, Focus::List) => self.list_page() as i64,
                    (false, Focus::Detail) => i64::from(self.detail_page()),
                };
                self.move_by(d.saturating_mul(page));
            }
            Msg::Home => self.move_by(i64::MIN / 2),
            Msg::End => self.move_by(i64::MAX / 2),
            Msg::ToggleFocus => {
                if !self.show_devices {
                    self.focus = match self.focus {
                        Focus::List => Focus::Detail,
                        Focus::Detail => Focus::List,
                    };
                }
            }
            Msg::NextTab => self.set_tab(Tab::from_index((self.tab.index() + 1) % 4)),
            Msg::PrevTab => self.set_tab(Tab::from_index((self.tab.index() + 3) % 4)),
            Msg::SelectTab(t) => self.set_tab(t),
            Msg::StartFilter => {
                self.filter_editing = true;
                self.filter_before_edit = self.filter.clone();
            }
            Msg::FilterChar(c) => {
                if self.filter.chars().count() < 200 {
                    self.filter.push(c);
                    self.refilter();
                }
            }
            Msg::FilterBackspace => {
                self.filter.pop();
                self.refilter();
            }
            Msg::FilterAccept => self.filter_editing = false,
            Msg::FilterCancel => {
                self.filter_editing = false;
                self.filter.clear();
                self.refilter();
            }
            Msg::ToggleProblems => {
                self.problems_only = !self.problems_only;
                self.refilter();
            }
            Msg::NextProblem => self.jump_problem(true),
            Msg::PrevProblem => self.jump_problem(false),
            Msg::ToggleDevices => {
                self.show_devices = !self.show_devices;
            }
            Msg::ToggleHelp => self.show_help = !self.show_help,
            Msg::ToggleWarnings => self.show_warnings = !self.show_warnings,
            Msg::Save => return self.save(),
            Msg::StartExport => self.start_export(),
            Msg::ExportCancel => self.export_choosing = false,
            Msg::Export(scope) => {
                self.export_choosing = false;
                return self.export(scope);
            }
            Msg::SaveDone(m) => {
                self.saving = false;
                self.status = Some((m.to_string(), m.is_failure()));
            }
            Msg::Scroll { column, row, delta } => {
                let p = Position { x: column, y: row };
                if let Some(s) = self.stream.as_mut() {
                    s.update(super::stream::StreamMsg::Move(delta));
                } else if !self.show_devices && self.view.detail.get().contains(p) {
                    self.scroll_detail(delta);
                } else if self.show_devices {
                    self.move_devices(delta);
                } else {
                    self.move_list(delta);
                }
            }
            Msg::Click { column, row } => self.click(column, row),
            Msg::FollowStream => {
                let (view, cmd) = super::stream::open(self);
                self.stream = Some(view);
                return cmd;
            }
            Msg::Stream(m) => {
                if let Some(s) = self.stream.as_mut() {
                    s.update(m);
                    if s.closed {
                        self.stream = None;
                    }
                }
            }
            Msg::Timeline(m) => timeline::update(self, m),
            Msg::Quit => self.quit = true,
        }
        None
    }

    fn on_feed(&mut self, f: Feed) {
        match f {
            Feed::Progress(p) => self.on_progress(p),
            Feed::Upsert(c) => {
                self.upsert(c);
                if self.next_refresh.is_none() && self.rows.is_empty() {
                    // Show the first rows at once; later refreshes are paced by Tick.
                    self.refresh();
                    self.next_refresh = Some(Instant::now() + REFRESH_EVERY);
                }
            }
            Feed::Final(r) => self.on_final(r),
            Feed::Error(e) => self.error = Some(e),
            Feed::Warning(w) => self.add_warnings(std::iter::once(w)),
        }
    }

    /// Keep the newest [`MAX_WARNINGS`] warnings; count the rest.
    fn add_warnings(&mut self, ws: impl IntoIterator<Item = String>) {
        self.warnings.extend(ws);
        if self.warnings.len() > MAX_WARNINGS {
            let excess = self.warnings.len() - MAX_WARNINGS;
            self.warnings.drain(..excess);
            self.warnings_dropped += excess as u64;
        }
    }

    fn refilter(&mut self) {
        let keep = self.selected_row();
        self.apply_filter(keep, false);
        self.detail_scroll = 0;
    }

    fn set_tab(&mut self, t: Tab) {
        if self.tab != t {
            self.tab = t;
            self.detail_scroll = 0;
        }
    }

    fn move_by(&mut self, d: i64) {
        if self.show_devices {
            self.move_devices(d);
        } else if self.focus == Focus::Detail {
            self.scroll_detail(d);
        } else {
            self.move_list(d);
        }
    }

    fn move_list(&mut self, d: i64) {
        let before = self.selected;
        self.selected = step(self.selected, d, self.rows.len());
        // The time line's cursor follows the list again.
        self.timeline.cursor = None;
        if before != self.selected {
            self.detail_scroll = 0;
        }
    }

    fn move_devices(&mut self, d: i64) {
        self.device_selected = step(self.device_selected, d, self.devices.len());
    }

    /// Keep the detail scroll within the text, by the limit the last draw measured for the row,
    /// tab and data shown now. Without one (nothing drawn since they changed) it is left as is;
    /// the next scroll after a draw clamps it first.
    fn clamp_detail_scroll(&mut self) {
        if let Some(max) = self.detail_scroll_max() {
            self.detail_scroll = self.detail_scroll.min(max);
        }
    }

    /// Scroll the detail text by `d` rows, within the text.
    fn scroll_detail(&mut self, d: i64) {
        self.clamp_detail_scroll();
        self.detail_scroll = clamp_scroll(i64::from(self.detail_scroll).saturating_add(d));
        self.clamp_detail_scroll();
    }

    /// The last draw's scroll limit, if it was measured for what is shown now.
    fn detail_scroll_max(&self) -> Option<u16> {
        let l = self.view.detail_scroll_max.get()?;
        let current = l.row == self.selected_row()
            && l.tab == self.tab
            && l.data_version == self.data_version;
        current.then_some(l.max)
    }

    fn jump_problem(&mut self, forward: bool) {
        let n = self.rows.len();
        if n == 0 {
            return;
        }
        let start = self.selected.min(n - 1);
        let mut wrapped = false;
        let mut found = None;
        for k in 1..=n {
            let i = if forward {
                (start + k) % n
            } else {
                (start + n - k % n) % n
            };
            if self.is_problem_at(i) {
                wrapped = if forward { i <= start } else { i >= start };
                found = Some(i);
                break;
            }
        }
        match found {
            Some(i) => {
                if i != self.selected {
                    self.detail_scroll = 0;
                }
                self.selected = i;
                self.status = wrapped.then(|| ("search wrapped around".to_string(), false));
            }
            None => self.status = Some(("no problem rows in this view".to_string(), false)),
        }
    }

    fn is_problem_at(&self, i: usize) -> bool {
        self.rows.get(i).is_some_and(|r| self.is_problem(*r))
    }

    fn save(&mut self) -> Option<Cmd> {
        let path = match &self.source {
            Source::Replay(p) => p.clone(),
            Source::Live(_) => {
                self.status = Some((
                    "save works on a replayed file (live bodies are not kept here); listen keeps \
                     every event: alarmscope store export STORE OUT"
                        .into(),
                    true,
                ));
                return None;
            }
        };
        if self.saving {
            self.status = Some(("a save is already running".into(), false));
            return None;
        }
        let Some(r) = self.selected_row() else {
            self.status = Some(("nothing selected".into(), true));
            return None;
        };
        let row = self.row(r)?;
        let Some(index) = row.exchange() else {
            self.status = Some((
                "nothing to save: this connection carried no request".into(),
                true,
            ));
            return None;
        };
        let prefix = format!("c{}-r{}-", row.conn_id, index);
        let conn_id = row.conn_id;
        self.saving = true;
        self.status = Some((
            format!("saving connection {conn_id} to ./alarmscope-extract ..."),
            false,
        ));
        Some(Cmd::Save {
            path,
            dir: PathBuf::from("alarmscope-extract"),
            conn_id,
            prefix,
        })
    }

    fn start_export(&mut self) {
        if let Source::Live(_) = self.source {
            self.status = Some((
                "export works on a replayed file; sniff keeps the packets with --write FILE.pcap"
                    .into(),
                true,
            ));
            return;
        }
        if self.saving {
            self.status = Some(("a save or export is already running".into(), false));
            return;
        }
        self.export_choosing = true;
        self.status = Some((
            "export pcap: c the selected connection, f the rows of this filter, p every problem \
             row (any other key cancels)"
                .into(),
            false,
        ));
    }

    /// The connections of the chosen rows, for the shell to export in the background.
    fn export(&mut self, scope: ExportScope) -> Option<Cmd> {
        let Source::Replay(path) = &self.source else {
            return None;
        };
        let path = path.clone();
        let store = &self.store;
        let conn_of = |r: &RowRef| store.get(r.0).map(|row| row.conn_id);
        let mut chosen: Vec<u64> = match scope {
            ExportScope::Connection => self
                .selected_row()
                .and_then(|r| conn_of(&r))
                .into_iter()
                .collect(),
            ExportScope::Filtered => self.rows.iter().filter_map(conn_of).collect(),
            ExportScope::Problems => self
                .all_rows
                .iter()
                .filter(|r| self.is_problem(**r))
                .filter_map(conn_of)
                .collect(),
        };
        chosen.sort_unstable();
        chosen.dedup();
        let mut selection = crate::export::Selection::default();
        let mut seen = std::collections::HashSet::new();
        for row in self.all_rows.iter().filter_map(|r| store.get(r.0)) {
            if chosen.binary_search(&row.conn_id).is_ok() && seen.insert(row.conn_id) {
                add_to_selection(&mut selection, store, row);
            }
        }
        if selection.is_empty() {
            self.status = Some(("nothing to export: no such rows".into(), true));
            return None;
        }
        let what = match scope {
            ExportScope::Connection => "connection",
            ExportScope::Filtered => "filtered",
            ExportScope::Problems => "problems",
        };
        let out = PathBuf::from(format!("alarmscope-{what}.pcap"));
        self.saving = true;
        self.status = Some((
            format!(
                "exporting {} connection(s) to {} ...",
                selection.len(),
                out.display()
            ),
            false,
        ));
        Some(Cmd::Export {
            path,
            out,
            selection,
        })
    }

    fn click(&mut self, column: u16, row: u16) {
        let p = Position { x: column, y: row };
        if self.show_devices {
            let area = self.view.devices.get();
            if area.contains(p) && row > area.y {
                let i = self.view.devices_offset.get() + (row - area.y - 1) as usize;
                if i < self.devices.len() {
                    self.device_selected = i;
                }
            }
            return;
        }
        let list = self.view.list.get();
        if list.contains(p) {
            self.focus = Focus::List;
            if row > list.y {
                let i = self.view.list_offset.get() + (row - list.y - 1) as usize;
                if i < self.rows.len() && i != self.selected {
                    self.selected = i;
                    self.detail_scroll = 0;
                }
            }
            return;
        }
        let detail = self.view.detail.get();
        if detail.contains(p) {
            self.focus = Focus::Detail;
            let tabs = self.view.detail_tabs.get();
            if let Some(i) = tabs.iter().position(|r| r.contains(p)) {
                self.set_tab(Tab::from_index(i));
            }
        }
    }
}

fn clamp_scroll(v: i64) -> u16 {
    u16::try_from(v.max(0)).unwrap_or(u16::MAX)
}

/// Move `cur` by `d` within `0..len`.
fn step(cur: usize, d: i64, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let cur = i64::try_from(cur).unwrap_or(i64::MAX);
    let max = i64::try_from(len - 1).unwrap_or(i64::MAX);
    usize::try_from(cur.saturating_add(d).clamp(0, max)).unwrap_or(0)
}

/// The diagnosis ledger the screen feeds: the headless report's (time lines folded past
/// [`crate::report::stream::LEDGER_ITEMS`] requests, every stall and retry still listed), so that
/// the screen's findings are the report's and its memory stays flat.
fn tui_ledger() -> Ledger {
    Ledger::folding(crate::report::stream::LEDGER_ITEMS)
}

/// Take in one connection: its rows into the store (and the new ones' indices into `pending`),
/// the connection into the ledger.
fn add_rows(ledger: &mut Ledger, store: &mut RowStore, pending: &mut Vec<u32>, c: &Connection) {
    ledger.add(c);
    let (first, n) = store.push_connection(c);
    pending.extend(first..first.saturating_add(n));
}

/// Choose a row's connection for a pcap export: its addresses and time range, as
/// [`crate::export::Selection::add`] takes them from a whole connection.
fn add_to_selection(sel: &mut crate::export::Selection, store: &RowStore, row: &CompactRow) {
    let unknown = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let (client, server) = (store.client(row), store.server(row));
    let mut c = Connection::opened(
        row.conn_id,
        client.unwrap_or(unknown),
        server.unwrap_or(unknown),
        row.handshake,
        1,
        row.first_seen,
    );
    if client.is_none() || server.is_none() {
        // Unreadable addresses: counted by the selection as the whole connection's would be.
        c.client = String::new();
    }
    c.last_seen = row.last_seen();
    sel.add(&c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_stays_in_range() {
        assert_eq!(step(0, -1, 10), 0);
        assert_eq!(step(5, 3, 10), 8);
        assert_eq!(step(5, 30, 10), 9);
        assert_eq!(step(5, i64::MIN / 2, 10), 0);
        assert_eq!(step(5, i64::MAX / 2, 10), 9);
        assert_eq!(step(3, 1, 0), 0);
    }
}
