//! The Follow-stream view (`f` on any row): the selected connection's bytes in both directions in
//! capture order, each side in its colour, as escaped text or as a hex dump (`x`), with capture
//! gaps, HTTP message starts and TLS records marked, and `/` search with `n`/`N`.
//!
//! State and input live here ([`StreamView`], [`StreamMsg`]); `App` only holds the view while it
//! is open and forwards keys to it. The index ([`crate::stream_index`]) is built on a background
//! thread by the shell ([`super::stream_load`]); afterwards only the visible window's frames are
//! read back, through the injected [`PayloadSource`], and kept in a small bounded cache, so a
//! multi-megabyte picture body costs the index (64 bytes per segment) plus a screenful.
//!
//! The position is an entry and a line inside it, not an absolute line number: a text entry's
//! line count is only known once its bytes are read, and nothing is read beyond the window.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::app::{App, Cmd, Source};
use super::format::num;
use super::stream_load::{LoadError, PayloadSource, StreamReady, StreamTarget};
use crate::stream_index::{
    escape_text, find_ci, hex_line, line_ranges, Entry, Layout, PlainStats, StreamIndex,
};
use crate::tcp::Side;

/// Most bytes of entries kept read back at once (the window needs far fewer).
const CACHE_BYTES: usize = 4 << 20;
/// Most entries kept read back at once.
const CACHE_ENTRIES: usize = 1024;
/// Longest search text.
const MAX_SEARCH: usize = 100;

/// Why there is no stream to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// A live source: its packets are not kept here.
    NoCaptureFile,
    /// The row's addresses cannot be read back (not from the pipeline).
    NoAddresses,
    /// Nothing selected.
    NothingSelected,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unavailable::NoCaptureFile => {
                "follow stream needs a capture file (sniff --write), then replay it"
            }
            Unavailable::NoAddresses => "this connection's addresses cannot be read back",
            Unavailable::NothingSelected => "nothing selected",
        })
    }
}

/// Where the view is: waiting for its index, showing it, or saying why it cannot.
pub enum StreamState {
    Unavailable(Unavailable),
    /// The background thread is reading the capture.
    Indexing,
    /// The index, and the reader of its frames.
    Ready {
        index: StreamIndex,
        source: Box<dyn PayloadSource>,
    },
    /// The capture could not be read again.
    Failed(LoadError),
}

/// A position: an entry of the index and a line inside it (line counts of text entries are
/// known only once read, so there is no absolute line number).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub entry: usize,
    pub line: usize,
}

/// Input to the view.
#[derive(Debug)]
pub enum StreamMsg {
    /// The background index is done (for connection `.0`).
    Indexed(u64, Result<StreamReady, LoadError>),
    Move(i64),
    Page(i64),
    Home,
    End,
    ToggleHex,
    StartSearch,
    SearchChar(char),
    SearchBackspace,
    /// Search forward from the current position (Enter in the prompt, `n`).
    SearchNext,
    /// Search backward (`N`).
    SearchPrev,
    SearchCancel,
    Close,
}

/// The Follow-stream view's state.
pub struct StreamView {
    /// The connection followed (a late index for another one is ignored).
    pub conn_id: u64,
    /// Its addresses, for the title.
    pub client: String,
    pub server: String,
    pub state: StreamState,
    /// Text or hex.
    pub layout: Layout,
    /// The first line shown.
    pub top: Cursor,
    /// Read-back bytes of data entries (their own `len` bytes), bounded.
    cache: HashMap<usize, Vec<u8>>,
    cache_order: VecDeque<usize>,
    cache_bytes: usize,
    /// The search text, and whether the prompt is open.
    pub search: String,
    pub search_editing: bool,
    /// The last match: entry and byte inside it.
    pub hit: Option<(usize, usize)>,
    /// The view's footer note (search misses, read errors) and whether it is an error.
    pub status: Option<(String, bool)>,
    /// Text rows of the last draw (the window to keep read).
    pub height: Cell<u16>,
    /// Set by the close keys: `App` drops the view.
    pub closed: bool,
}

/// Open the view on the selected row: ask the shell to index it, or say why it cannot.
pub fn open(app: &App) -> (StreamView, Option<Cmd>) {
    let mut v = StreamView::new(0, String::new(), String::new(), StreamState::Indexing);
    let Some(loaded) = app.selected_row().and_then(|r| app.exchange(r)) else {
        v.state = StreamState::Unavailable(Unavailable::NothingSelected);
        return (v, None);
    };
    let c = &*loaded.conn;
    v.conn_id = c.id;
    v.client = c.client.clone();
    v.server = c.server.clone();
    let path = match &app.source {
        Source::Replay(p) => p.clone(),
        Source::Live(_) => {
            v.state = StreamState::Unavailable(Unavailable::NoCaptureFile);
            return (v, None);
        }
    };
    let (Ok(client), Ok(server)) = (
        c.client.parse::<SocketAddr>(),
        c.server.parse::<SocketAddr>(),
    ) else {
        v.state = StreamState::Unavailable(Unavailable::NoAddresses);
        return (v, None);
    };
    let mut selection = crate::export::Selection::default();
    selection.add(c);
    let target = StreamTarget {
        conn_id: c.id,
        client,
        server,
        tls: c.tls.is_some(),
        selection,
        keys: app.stream_keys.clone(),
    };
    (v, Some(Cmd::IndexStream { path, target }))
}

impl StreamView {
    /// A view in `state` (tests build it from an index directly).
    pub fn new(conn_id: u64, client: String, server: String, state: StreamState) -> Self {
        StreamView {
            conn_id,
            client,
            server,
            state,
            layout: Layout::Text,
            top: Cursor::default(),
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            cache_bytes: 0,
            search: String::new(),
            search_editing: false,
            hit: None,
            status: None,
            height: Cell::new(40),
            closed: false,
        }
    }

    /// The keys of the view (the list's keys do not apply while it is open).
    pub fn key_to_msg(&self, key: KeyEvent) -> Option<StreamMsg> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if self.search_editing {
            return match key.code {
                KeyCode::Esc => Some(StreamMsg::SearchCancel),
                KeyCode::Enter => Some(StreamMsg::SearchNext),
                KeyCode::Backspace => Some(StreamMsg::SearchBackspace),
                KeyCode::Char(c) if !ctrl => Some(StreamMsg::SearchChar(c)),
                _ => None,
            };
        }
        Some(match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('f') => StreamMsg::Close,
            KeyCode::Up | KeyCode::Char('k') => StreamMsg::Move(-1),
            KeyCode::Down | KeyCode::Char('j') => StreamMsg::Move(1),
            KeyCode::PageUp => StreamMsg::Page(-1),
            KeyCode::PageDown | KeyCode::Char(' ') => StreamMsg::Page(1),
            KeyCode::Home | KeyCode::Char('g') => StreamMsg::Home,
            KeyCode::End | KeyCode::Char('G') => StreamMsg::End,
            KeyCode::Char('x') => StreamMsg::ToggleHex,
            KeyCode::Char('/') => StreamMsg::StartSearch,
            KeyCode::Char('n') => StreamMsg::SearchNext,
            KeyCode::Char('N') => StreamMsg::SearchPrev,
            _ => return None,
        })
    }

    /// The one place the view changes. Returns with the visible window read.
    pub fn update(&mut self, msg: StreamMsg) {
        if !matches!(msg, StreamMsg::Indexed(..)) {
            self.status = None;
        }
        match msg {
            StreamMsg::Indexed(id, result) => {
                if id != self.conn_id || !matches!(self.state, StreamState::Indexing) {
                    return;
                }
                self.state = match result {
                    Ok(r) => StreamState::Ready {
                        index: r.index,
                        source: r.source,
                    },
                    Err(e) => StreamState::Failed(e),
                };
            }
            StreamMsg::Move(d) => self.move_lines(d),
            StreamMsg::Page(d) => {
                let page = i64::from(self.height.get().max(2) - 1);
                self.move_lines(d.saturating_mul(page));
            }
            StreamMsg::Home => self.top = Cursor::default(),
            StreamMsg::End => {
                let n = self.entry_count();
                if n > 0 {
                    let last = n - 1;
                    let lines = self.lines_of(last);
                    self.top = Cursor {
                        entry: last,
                        line: lines.saturating_sub(1),
                    };
                    self.move_lines(1 - i64::from(self.height.get().max(1)));
                }
            }
            StreamMsg::ToggleHex => {
                self.layout = match self.layout {
                    Layout::Text => Layout::Hex,
                    Layout::Hex => Layout::Text,
                };
                // Stay on the same byte.
                let byte = self.byte_at(self.top);
                self.top.line = self.line_of_byte(self.top.entry, byte);
            }
            StreamMsg::StartSearch => {
                self.search_editing = true;
                self.search.clear();
                self.hit = None;
            }
            StreamMsg::SearchChar(c) => {
                if self.search.chars().count() < MAX_SEARCH {
                    self.search.push(c);
                }
            }
            StreamMsg::SearchBackspace => {
                self.search.pop();
            }
            StreamMsg::SearchCancel => self.search_editing = false,
            StreamMsg::SearchNext => {
                self.search_editing = false;
                self.find(true);
            }
            StreamMsg::SearchPrev => self.find(false),
            StreamMsg::Close => self.closed = true,
        }
        self.ensure_window();
    }

    /// The index, when ready.
    pub fn index(&self) -> Option<&StreamIndex> {
        match &self.state {
            StreamState::Ready { index, .. } => Some(index),
            _ => None,
        }
    }

    fn entry_count(&self) -> usize {
        self.index().map_or(0, |i| i.entries.len())
    }

    /// Bytes of a data entry, read back if not cached (none for other entries or on error).
    fn bytes(&mut self, i: usize) -> Option<&[u8]> {
        if !self.cache.contains_key(&i) {
            let StreamState::Ready { index, source } = &mut self.state else {
                return None;
            };
            if !matches!(
                index.entries.get(i),
                Some(Entry::Data { .. } | Entry::Plain { .. })
            ) {
                return None;
            }
            let data = match entry_bytes(index, source.as_mut(), i) {
                Ok(d) => d,
                Err(e) => {
                    self.status = Some((e.to_string(), true));
                    None
                }
            };
            let data = data.unwrap_or_default();
            self.cache_bytes += data.len();
            self.cache.insert(i, data);
            self.cache_order.push_back(i);
        }
        self.cache.get(&i).map(Vec::as_slice)
    }

    /// Lines entry `i` takes in the current layout.
    fn lines_of(&mut self, i: usize) -> usize {
        let layout = self.layout;
        let tls = self.index().is_some_and(|x| x.tls);
        match self.index().and_then(|x| x.entries.get(i)) {
            Some(Entry::Plain { len, .. }) => match layout {
                Layout::Hex => (*len as usize)
                    .div_ceil(crate::stream_index::HEX_WIDTH)
                    .max(1),
                Layout::Text => self.bytes(i).map_or(1, |b| line_ranges(b, layout).len()),
            },
            Some(Entry::Data { len, .. }) => match layout {
                Layout::Hex => (*len as usize)
                    .div_ceil(crate::stream_index::HEX_WIDTH)
                    .max(1),
                Layout::Text if tls => 1,
                Layout::Text => self.bytes(i).map_or(1, |b| line_ranges(b, layout).len()),
            },
            Some(_) => 1,
            None => 0,
        }
    }

    fn move_lines(&mut self, d: i64) {
        let n = self.entry_count();
        if n == 0 {
            return;
        }
        let mut left = d.unsigned_abs();
        while left > 0 {
            if d > 0 {
                if self.top.line + 1 < self.lines_of(self.top.entry) {
                    self.top.line += 1;
                } else if self.top.entry + 1 < n {
                    self.top = Cursor {
                        entry: self.top.entry + 1,
                        line: 0,
                    };
                } else {
                    break;
                }
            } else if self.top.line > 0 {
                self.top.line -= 1;
            } else if self.top.entry > 0 {
                let e = self.top.entry - 1;
                self.top = Cursor {
                    entry: e,
                    line: self.lines_of(e).saturating_sub(1),
                };
            } else {
                break;
            }
            left -= 1;
        }
    }

    /// The first byte (inside its entry) of the line at `c`.
    fn byte_at(&mut self, c: Cursor) -> usize {
        let layout = match self.layout {
            // The layout just switched: the cursor's line is in the other one.
            Layout::Text => Layout::Hex,
            Layout::Hex => Layout::Text,
        };
        self.bytes(c.entry)
            .and_then(|b| line_ranges(b, layout).get(c.line).map(|r| r.start))
            .unwrap_or(0)
    }

    fn line_of_byte(&mut self, entry: usize, byte: usize) -> usize {
        let layout = self.layout;
        let encrypted =
            |x: &StreamIndex| x.tls && matches!(x.entries.get(entry), Some(Entry::Data { .. }));
        if layout == Layout::Text && self.index().is_some_and(encrypted) {
            return 0;
        }
        self.bytes(entry)
            .map(|b| {
                line_ranges(b, layout)
                    .iter()
                    .position(|r| r.contains(&byte) || (r.is_empty() && byte == 0))
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Read the entries the window shows; forget far ones past the cache bounds.
    pub fn ensure_window(&mut self) {
        let n = self.entry_count();
        let mut need = usize::from(self.height.get()) + self.top.line;
        let mut i = self.top.entry;
        let mut window = Vec::new();
        while i < n && need > 0 {
            need = need.saturating_sub(self.lines_of(i));
            window.push(i);
            i += 1;
        }
        while self.cache_bytes > CACHE_BYTES || self.cache.len() > CACHE_ENTRIES {
            let Some(old) = self.cache_order.pop_front() else {
                break;
            };
            if window.contains(&old) {
                self.cache_order.push_back(old);
                if self.cache_order.len() <= window.len() {
                    break;
                }
                continue;
            }
            if let Some(b) = self.cache.remove(&old) {
                self.cache_bytes -= b.len();
            }
        }
    }

    /// Search the data for `self.search` (ASCII case-insensitive) after (or before) the last
    /// match or the top of the window; a match across two segments of a side is found too.
    fn find(&mut self, forward: bool) {
        if self.search.is_empty() || self.index().is_none() {
            return;
        }
        let needle = self.search.clone().into_bytes();
        let n = self.entry_count();
        let (start_entry, start_byte) = match self.hit {
            Some((e, b)) => (e, b),
            None => (self.top.entry, self.byte_at_current()),
        };
        let found = if forward {
            let from = start_byte + usize::from(self.hit.is_some());
            self.scan_forward(&needle, start_entry, from, n)
        } else {
            self.scan_backward(&needle, start_entry, start_byte)
        };
        match found {
            Some((e, b)) => {
                self.hit = Some((e, b));
                self.top = Cursor {
                    entry: e,
                    line: self.line_of_byte(e, b),
                };
            }
            None => {
                self.status = Some((
                    format!(
                        "\"{}\" not found {}",
                        self.search,
                        if forward { "below" } else { "above" }
                    ),
                    false,
                ));
            }
        }
    }

    fn byte_at_current(&mut self) -> usize {
        let (layout, top) = (self.layout, self.top);
        self.bytes(top.entry)
            .and_then(|b| line_ranges(b, layout).get(top.line).map(|r| r.start))
            .unwrap_or(0)
    }

    /// Bytes of entry `i` for a search: from the cache, else read without caching.
    fn scan_bytes(&mut self, i: usize) -> Option<Vec<u8>> {
        if let Some(b) = self.cache.get(&i) {
            return Some(b.clone());
        }
        let StreamState::Ready { index, source } = &mut self.state else {
            return None;
        };
        entry_bytes(index, source.as_mut(), i).ok().flatten()
    }

    fn side_of(&self, i: usize) -> Option<Side> {
        self.index().and_then(|x| x.entries.get(i)).map(Entry::side)
    }

    fn scan_forward(
        &mut self,
        needle: &[u8],
        start: usize,
        from: usize,
        n: usize,
    ) -> Option<(usize, usize)> {
        // Per side: the tail of its previous data entry (entry, offset of the tail in it).
        let mut carry: [(Vec<u8>, usize, usize); 2] = Default::default();
        for i in start..n {
            let Some(bytes) = self.scan_bytes(i) else {
                continue;
            };
            let s = usize::from(self.side_of(i) == Some(Side::Server));
            let from_here = if i == start { from } else { 0 };
            let (tail, te, toff) = std::mem::take(&mut carry[s]);
            if i != start && !tail.is_empty() {
                let mut joined = tail.clone();
                joined.extend_from_slice(bytes.get(..needle.len().min(bytes.len())).unwrap_or(&[]));
                if let Some(m) = find_ci(&joined, needle, 0) {
                    if m < tail.len() {
                        return Some((te, toff + m));
                    }
                }
            }
            if let Some(m) = find_ci(&bytes, needle, from_here) {
                return Some((i, m));
            }
            let keep = needle.len().saturating_sub(1).min(bytes.len());
            let off = bytes.len() - keep;
            carry[s] = (bytes.get(off..).unwrap_or(&[]).to_vec(), i, off);
        }
        None
    }

    /// The last match in entries `start` and before that begins before byte `bound` of `start`.
    fn scan_backward(
        &mut self,
        needle: &[u8],
        start: usize,
        bound: usize,
    ) -> Option<(usize, usize)> {
        for i in (0..=start).rev() {
            let Some(bytes) = self.scan_bytes(i) else {
                continue;
            };
            let limit = if i == start { bound } else { usize::MAX };
            let mut last = None;
            let mut from = 0;
            while let Some(m) = find_ci(&bytes, needle, from) {
                if m >= limit {
                    break;
                }
                last = Some(m);
                from = m + 1;
            }
            if last.is_some() {
                return last.map(|m| (i, m));
            }
        }
        None
    }
}

/// The colour of a side's bytes.
fn side_style(app: &App, side: Side) -> Style {
    if !app.theme.color {
        return Style::new();
    }
    match side {
        Side::Client => Style::new().fg(Color::Cyan),
        Side::Server => Style::new().fg(Color::LightGreen),
    }
}

/// The gutter that tells the sides apart without colour.
fn arrow(side: Side) -> &'static str {
    match side {
        Side::Client => "→ ",
        Side::Server => "← ",
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Client => "client",
        Side::Server => "server",
    }
}

/// Draw the view over `area` (the body between header and footer).
pub fn draw(f: &mut Frame, area: Rect, app: &App, v: &StreamView) {
    let t = app.theme;
    let mode = match v.layout {
        Layout::Text => "text",
        Layout::Hex => "hex",
    };
    let block = Block::bordered()
        .title(format!(
            " Follow stream: {} → {} ({mode}) ",
            v.client, v.server
        ))
        .border_style(t.focus_border());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [head, body, keys] = Split::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    v.height.set(body.height);

    let index = match &v.state {
        StreamState::Ready { index, .. } => index,
        StreamState::Indexing => {
            f.render_widget(
                Paragraph::new(Span::styled(
                    "reading the capture for this connection...",
                    t.warn(),
                )),
                head,
            );
            return;
        }
        StreamState::Unavailable(u) => {
            f.render_widget(Paragraph::new(Span::styled(u.to_string(), t.bad())), head);
            return;
        }
        StreamState::Failed(e) => {
            f.render_widget(
                Paragraph::new(Span::styled(format!("follow stream failed: {e}"), t.bad())),
                head,
            );
            return;
        }
    };
    let s = &index.stats;
    let mut summary = vec![
        Span::styled(
            format!("→ client {} bytes", num(s.data_bytes[0])),
            side_style(app, Side::Client),
        ),
        Span::raw("  "),
        Span::styled(
            format!("← server {} bytes", num(s.data_bytes[1])),
            side_style(app, Side::Server),
        ),
    ];
    if s.gap_bytes != [0, 0] {
        summary.push(Span::styled(
            format!(
                "  gaps {} / {} bytes",
                num(s.gap_bytes[0]),
                num(s.gap_bytes[1])
            ),
            t.bad(),
        ));
    }
    if let Some(d) = &index.decryption {
        summary.push(decryption_span(app, d));
    }
    if s.retransmissions > 0 {
        summary.push(Span::styled(
            format!("  retransmitted segments {}", num(s.retransmissions)),
            t.dim(),
        ));
    }
    if let Some([c, sv]) = index.truncated {
        summary.push(Span::styled(
            format!(
                "  index stopped at {} / {} bytes (too many segments)",
                num(c),
                num(sv)
            ),
            t.warn(),
        ));
    }
    summary.push(Span::styled(
        format!(
            "  entry {}/{}",
            v.top.entry.saturating_add(1).min(index.entries.len()),
            index.entries.len()
        ),
        t.dim(),
    ));
    f.render_widget(Paragraph::new(Line::from(summary)), head);

    let lines = window_lines(app, v, index, usize::from(body.height));
    f.render_widget(Paragraph::new(lines), body);

    let key_line = if v.search_editing {
        Line::from(vec![
            Span::styled("/", t.accent()),
            Span::raw(v.search.clone()),
            Span::styled("_", t.selected()),
            Span::styled("  Enter find, Esc cancel", t.dim()),
        ])
    } else if let Some((m, bad)) = &v.status {
        Line::from(Span::styled(
            m.clone(),
            if *bad { t.bad() } else { t.warn() },
        ))
    } else {
        let mut spans = Vec::new();
        for (k, what) in [
            ("x", "hex/text"),
            ("/", "search"),
            ("n/N", "next/prev"),
            ("g/G", "start/end"),
            ("f q Esc", "close"),
        ] {
            spans.push(Span::styled(k, t.accent()));
            spans.push(Span::raw(format!(" {what}  ")));
        }
        Line::from(spans)
    };
    f.render_widget(Paragraph::new(key_line), keys);
}

/// The visible lines, from the top cursor, from cached bytes only (drawing reads nothing).
fn window_lines(
    app: &App,
    v: &StreamView,
    index: &StreamIndex,
    height: usize,
) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut out = Vec::with_capacity(height);
    let mut first_line = v.top.line;
    for (i, e) in index.entries.iter().enumerate().skip(v.top.entry) {
        if out.len() >= height {
            break;
        }
        let side = e.side();
        let style = side_style(app, side);
        match e {
            Entry::Mark { kind, .. } => {
                if first_line == 0 {
                    out.push(Line::styled(
                        format!("── {} {kind} ──", side_name(side)),
                        style.add_modifier(Modifier::BOLD),
                    ));
                }
            }
            Entry::Gap { bytes, .. } => {
                if first_line == 0 {
                    out.push(Line::styled(
                        format!(
                            "[gap: {} bytes of {} data not in the capture]",
                            num(*bytes),
                            side_name(side)
                        ),
                        t.bad().add_modifier(Modifier::REVERSED),
                    ));
                }
            }
            Entry::Data { len, .. } if index.tls && v.layout == Layout::Text => {
                if first_line == 0 {
                    out.push(Line::from(vec![
                        Span::styled(arrow(side), style),
                        Span::styled(
                            format!(
                                "({} bytes of TLS records, x shows them)",
                                num(u64::from(*len))
                            ),
                            t.dim(),
                        ),
                    ]));
                }
            }
            Entry::Plain { stream_off, .. } | Entry::Data { stream_off, .. } => {
                if let Some(bytes) = v.cache.get(&i) {
                    push_lines(
                        &mut out,
                        v,
                        i,
                        bytes,
                        *stream_off,
                        first_line,
                        height,
                        style,
                    );
                } else {
                    out.push(Line::styled(format!("{}…", arrow(side)), t.dim()));
                }
            }
        }
        first_line = 0;
    }
    if out.is_empty() {
        out.push(Line::styled("(no data in this connection)", t.dim()));
    }
    out
}

/// The lines of entry `i`'s bytes (at stream offset `off`) from line `first`, up to `height`
/// lines in all: text or hex, the search hit reversed.
#[allow(clippy::too_many_arguments)]
fn push_lines(
    out: &mut Vec<Line<'static>>,
    v: &StreamView,
    i: usize,
    bytes: &[u8],
    off: u64,
    first: usize,
    height: usize,
    style: Style,
) {
    let side = v.index().and_then(|x| x.entries.get(i)).map(Entry::side);
    let gutter = side.map_or("  ", arrow);
    for r in line_ranges(bytes, v.layout).into_iter().skip(first) {
        if out.len() >= height {
            break;
        }
        let chunk = bytes.get(r.clone()).unwrap_or(&[]);
        let text = match v.layout {
            Layout::Text => escape_text(chunk),
            Layout::Hex => hex_line(off + r.start as u64, chunk),
        };
        let hit = v.hit.is_some_and(|(he, hb)| he == i && r.contains(&hb));
        let body_style = if hit {
            style.add_modifier(Modifier::REVERSED)
        } else {
            style
        };
        out.push(Line::from(vec![
            Span::styled(gutter, style),
            Span::styled(text, body_style),
        ]));
    }
}

/// What the key log gave this connection, for the header: records shown decrypted, or why none.
fn decryption_span(app: &App, d: &PlainStats) -> Span<'static> {
    let t = app.theme;
    let records = d.records[0] + d.records[1];
    let why = d
        .report
        .as_ref()
        .and_then(|r| r.not_decrypted())
        .map(|r| r.as_str());
    match (records, why) {
        (0, Some(why)) => Span::styled(format!("  not decrypted: {why}"), t.bad()),
        (0, None) => Span::styled("  nothing decrypted".to_string(), t.warn()),
        (n, _) => {
            let mut text = format!(
                "  decrypted {} records, {} / {} bytes",
                num(n),
                num(d.bytes[0]),
                num(d.bytes[1])
            );
            if d.not_kept != [0, 0] {
                text.push_str(&format!(
                    " ({} bytes past the plaintext bound shown encrypted)",
                    num(d.not_kept[0] + d.not_kept[1])
                ));
            }
            Span::styled(text, t.accent())
        }
    }
}

/// The plaintext of a [`Entry::Plain`] (none for other entries).
/// The bytes of entry `i`: a data run's read again from its frame (or kept inline in the index),
/// a plaintext run's from the index's plaintext. None for other entries, or when the bytes are
/// not where the index says; an error is the capture file's.
fn entry_bytes(
    index: &StreamIndex,
    source: &mut dyn PayloadSource,
    i: usize,
) -> Result<Option<Vec<u8>>, LoadError> {
    let (frame, skip, len) = match index.entries.get(i) {
        Some(Entry::Data {
            frame, skip, len, ..
        }) => (frame, *skip as usize, *len as usize),
        Some(e @ Entry::Plain { .. }) => return Ok(plain_bytes(index, e).map(<[u8]>::to_vec)),
        _ => return Ok(None),
    };
    Ok(match frame.inline {
        Some(k) => index
            .inline
            .get(k as usize)
            .and_then(|p| p.get(skip..skip + len))
            .map(<[u8]>::to_vec),
        None => source
            .payload(frame)?
            .get(skip..skip + len)
            .map(<[u8]>::to_vec),
    })
}

fn plain_bytes<'a>(index: &'a StreamIndex, e: &Entry) -> Option<&'a [u8]> {
    let Entry::Plain {
        chunk, skip, len, ..
    } = e
    else {
        return None;
    };
    let (skip, len) = (*skip as usize, *len as usize);
    index.plain.get(*chunk as usize)?.get(skip..skip + len)
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
