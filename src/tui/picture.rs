//! Pictures in the detail pane: the selected exchange's JPEG parts drawn inside the terminal,
//! each beside its check (size in pixels, or what is cut or corrupt).
//!
//! Why: the engineer wants to see what the device sent (the plate, the scene) without saving
//! files and opening a viewer. The bytes are not kept by the analysis (a replay keeps no
//! bodies), so they are re-read from the capture on demand, like the `s` key's save: a replay
//! limited to the exchange's connection collects the picture parts (at most
//! [`MAX_PICTURE_BYTES`] each), decodes them with `zune-jpeg` and reduces them to at most
//! [`MAX_SIDE`] pixels a side, all on a thread of its own. The result comes back over a channel
//! that [`tick`] polls; drawing only reads it.
//!
//! Drawing uses `ratatui-image`: kitty, sixel or iTerm2 graphics where the terminal answers the
//! query for them, Unicode half-blocks elsewhere (tmux, tests). `replay --no-pictures` turns
//! the pane off. Live modes keep no bytes to show: the pane says so.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};

use image::{DynamicImage, RgbImage};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::StatefulImage;

use super::app::{App, RowRef, Source, Tab};
use crate::isapi::picture::{grouped, PictureCheck};
use crate::isapi::{PartHeader, PartInfo};
use crate::model::ExchangeRef;
use crate::pipeline::ExchangeSink;
use crate::replay::{replay_each, ReplayOptions};

/// Most bytes of one picture read back from the capture (camera pictures are under 1 MB; a
/// bigger part is shown from its first bytes, as a cut picture would be).
pub const MAX_PICTURE_BYTES: usize = 8 * 1024 * 1024;
/// Largest side, in pixels, of a picture handed to the terminal (a pane is at most a few hundred
/// pixels wide; the protocol fits it further to the pane).
pub const MAX_SIDE: u32 = 640;
/// Largest picture side the decoder accepts (a hostile header may claim 65 535 x 65 535).
const MAX_DECODE_SIDE: usize = 12_000;
/// Pictures shown per exchange (the rest are listed).
const MAX_SHOWN: usize = 3;

/// Why a picture could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The re-read capture held no bytes for this part.
    #[error("its bytes are not in the capture")]
    NotInCapture,
    /// The decoder gave up (its message).
    #[error("it does not decode: {0}")]
    Decode(String),
    /// The capture could not be read again (its message).
    #[error("the capture cannot be read again: {0}")]
    Replay(String),
    /// The loading thread could not be started or stopped early.
    #[error("the picture loader stopped: {0}")]
    Loader(String),
}

/// One picture's pixels, reduced to at most [`MAX_SIDE`] a side.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub image: RgbImage,
    /// The picture's own size in pixels.
    pub width: u32,
    pub height: u32,
    /// True when the part was longer than [`MAX_PICTURE_BYTES`] and only its start was read.
    pub capped: bool,
}

/// What the loader found for one part.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The part's index in the exchange.
    pub part: usize,
    pub result: Result<Decoded, LoadError>,
}

/// The exchange's JPEG parts: index and part (the check says it is a JPEG).
fn jpeg_parts(parts: &[PartInfo]) -> impl Iterator<Item = (usize, &PartInfo)> {
    parts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.picture.is_some())
}

/// Decode a JPEG and reduce it to at most [`MAX_SIDE`] pixels a side. A cut picture decodes as
/// far as `zune-jpeg` can take it or fails with its message; never panics.
pub fn decode(bytes: &[u8]) -> Result<Decoded, LoadError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_DECODE_SIDE)
        .set_max_height(MAX_DECODE_SIDE);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts);
    let pixels = d
        .decode()
        .map_err(|e| LoadError::Decode(format!("{e:?}")))?;
    let (w, h) = d
        .dimensions()
        .ok_or_else(|| LoadError::Decode("no frame header".into()))?;
    let (w, h) = (w as u32, h as u32);
    let full = RgbImage::from_raw(w, h, pixels)
        .ok_or_else(|| LoadError::Decode("fewer pixels than its size says".into()))?;
    Ok(Decoded {
        image: shrink(&full, MAX_SIDE),
        width: w,
        height: h,
        capped: false,
    })
}

/// Reduce `img` to at most `max` pixels a side by averaging boxes of pixels (zune-jpeg decodes
/// at full size only; `image`'s resize would pull in its `imageops` filters for one box filter).
fn shrink(img: &RgbImage, max: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let f = w.max(h).div_ceil(max.max(1)).max(1);
    if f == 1 {
        return img.clone();
    }
    let (nw, nh) = (w.div_ceil(f), h.div_ceil(f));
    RgbImage::from_fn(nw, nh, |x, y| {
        let mut sum = [0u32; 3];
        let mut n = 0u32;
        for yy in (y * f)..((y + 1) * f).min(h) {
            for xx in (x * f)..((x + 1) * f).min(w) {
                let p = img.get_pixel(xx, yy);
                for (s, c) in sum.iter_mut().zip(p.0) {
                    *s += u32::from(c);
                }
                n += 1;
            }
        }
        let n = n.max(1);
        image::Rgb(sum.map(|s| u8::try_from(s / n).unwrap_or(u8::MAX)))
    })
}

/// Collects the bytes of some parts of one exchange while the capture is re-read.
struct Collect {
    ex: ExchangeRef,
    /// Wanted part index, its bytes so far, and whether it went over the cap.
    parts: Vec<(usize, Vec<u8>, bool)>,
}

impl ExchangeSink for Collect {
    fn part_start(&mut self, _ex: ExchangeRef, _client: &str, _header: &PartHeader) {}
    fn part_data(&mut self, ex: ExchangeRef, index: usize, data: &[u8]) {
        if ex != self.ex {
            return;
        }
        if let Some((_, buf, capped)) = self.parts.iter_mut().find(|(i, _, _)| *i == index) {
            let room = MAX_PICTURE_BYTES.saturating_sub(buf.len());
            if data.len() > room {
                *capped = true;
            }
            buf.extend_from_slice(data.get(..room.min(data.len())).unwrap_or(&[]));
        }
    }
    fn part_end(&mut self, _ex: ExchangeRef, _index: usize, _bytes: u64) {}
}

/// The sink shared with the replay (which takes and drops its box).
struct Shared(Arc<Mutex<Collect>>);

impl ExchangeSink for Shared {
    fn part_start(&mut self, ex: ExchangeRef, client: &str, header: &PartHeader) {
        if let Ok(mut c) = self.0.lock() {
            c.part_start(ex, client, header);
        }
    }
    fn part_data(&mut self, ex: ExchangeRef, index: usize, data: &[u8]) {
        if let Ok(mut c) = self.0.lock() {
            c.part_data(ex, index, data);
        }
    }
    fn part_end(&mut self, ex: ExchangeRef, index: usize, bytes: u64) {
        if let Ok(mut c) = self.0.lock() {
            c.part_end(ex, index, bytes);
        }
    }
}

/// Re-read `path` for exchange `ex`'s parts `parts` and decode each. Blocking: call it off the
/// UI thread.
pub fn load(path: &Path, ex: ExchangeRef, parts: &[usize]) -> Vec<Loaded> {
    let shared = Arc::new(Mutex::new(Collect {
        ex,
        parts: parts.iter().map(|i| (*i, Vec::new(), false)).collect(),
    }));
    let opts = ReplayOptions {
        sink: Some(Box::new(Shared(shared.clone()))),
        sink_only: Some(vec![ex.connection]),
        ..ReplayOptions::default()
    };
    // The connections are dropped as they close (only the sink's bytes are wanted): memory
    // does not follow the capture.
    if let Err(e) = replay_each(path, opts, &mut |_| {}, &mut |_| {}) {
        let e = LoadError::Replay(e.to_string());
        return parts
            .iter()
            .map(|p| Loaded {
                part: *p,
                result: Err(e.clone()),
            })
            .collect();
    }
    let collected = match shared.lock() {
        Ok(mut c) => std::mem::take(&mut c.parts),
        Err(_) => Vec::new(),
    };
    parts
        .iter()
        .map(|p| {
            let result = match collected.iter().find(|(i, _, _)| i == p) {
                Some((_, bytes, capped)) if !bytes.is_empty() => decode(bytes).map(|d| Decoded {
                    capped: *capped,
                    ..d
                }),
                _ => Err(LoadError::NotInCapture),
            };
            Loaded { part: *p, result }
        })
        .collect()
}

/// What the pane holds for one picture.
pub enum Shown {
    /// Being read and decoded.
    Loading,
    /// Ready to draw (the protocol keeps its encoding for the last area drawn).
    Ready {
        protocol: Box<StatefulProtocol>,
        width: u32,
        height: u32,
        capped: bool,
    },
    Failed(LoadError),
}

/// The pictures of one exchange, as loaded so far.
pub struct Loading {
    pub key: ExchangeRef,
    pub parts: Vec<(usize, Shown)>,
}

/// The pane's state: whether pictures are on, how to draw them, and the current exchange's.
pub struct Pictures {
    /// False with `--no-pictures`.
    pub enabled: bool,
    /// How the terminal draws pictures (set once the terminal was asked; half-blocks in tests).
    pub picker: Option<Picker>,
    /// The selected exchange's pictures (drawing mutates the protocols' encodings).
    pub current: RefCell<Option<Loading>>,
    rx: Option<Receiver<(ExchangeRef, Vec<Loaded>)>>,
}

impl Default for Pictures {
    fn default() -> Self {
        Pictures {
            enabled: true,
            picker: None,
            current: RefCell::new(None),
            rx: None,
        }
    }
}

impl std::fmt::Debug for Pictures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pictures")
            .field("enabled", &self.enabled)
            .field("picker", &self.picker.as_ref().map(|p| p.protocol_type()))
            .finish_non_exhaustive()
    }
}

impl Pictures {
    /// Choose how the terminal draws pictures (call after the alternate screen is entered,
    /// before input is read). The terminal is asked only when its environment names one known
    /// to answer (kitty, WezTerm, iTerm2, ghostty, foot, Konsole, mlterm): `ratatui-image`'s
    /// query leaves a thread reading stdin when no answer comes, which would swallow the first
    /// keys. Everywhere else, and always inside tmux or screen, half-blocks.
    pub fn query_terminal(&mut self) {
        if !self.enabled {
            return;
        }
        let env = |k: &str| std::env::var(k).unwrap_or_default().to_ascii_lowercase();
        self.picker = Some(if asks_terminal(&env) {
            Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks())
        } else {
            Picker::halfblocks()
        });
    }
}

/// Whether the terminal, by its environment variables (`env` gives one, lower case, empty when
/// unset), is one that answers the graphics queries.
fn asks_terminal(env: &dyn Fn(&str) -> String) -> bool {
    let term = env("TERM");
    if !env("TMUX").is_empty() || term.starts_with("screen") || term.starts_with("tmux") {
        return false;
    }
    let known = ["kitty", "wezterm", "ghostty", "foot", "mlterm"];
    known.iter().any(|k| term.contains(k))
        || ["iterm.app", "wezterm", "ghostty"].contains(&env("TERM_PROGRAM").as_str())
        || !env("KITTY_WINDOW_ID").is_empty()
        || !env("KONSOLE_VERSION").is_empty()
}

/// The selected row's exchange and its JPEG part indices, when it has any.
fn wanted(app: &App, r: RowRef) -> Option<(ExchangeRef, Vec<usize>)> {
    let loaded = app.exchange(r)?;
    let (c, ex) = (&*loaded.conn, loaded.ex()?);
    let parts: Vec<usize> = jpeg_parts(&ex.parts).map(|(i, _)| i).collect();
    (!parts.is_empty()).then_some((
        ExchangeRef {
            connection: c.id,
            index: ex.index,
        },
        parts,
    ))
}

/// Periodic (each loop turn): take finished loads, and start loading the selected exchange's
/// pictures when the Request tab shows them and they are not loaded yet.
pub fn tick(app: &mut App) {
    poll(app);
    // One load at a time: moving through many picture rows must not start a replay each; the
    // selection's pictures are loaded once the running load is done.
    if app.pictures.rx.is_some() {
        return;
    }
    let Source::Replay(path) = &app.source else {
        return;
    };
    if !app.pictures.enabled || app.pictures.picker.is_none() || app.tab != Tab::Request {
        return;
    }
    let Some((key, parts)) = app.selected_row().and_then(|r| wanted(app, r)) else {
        return;
    };
    let loaded = app
        .pictures
        .current
        .try_borrow()
        .ok()
        .and_then(|c| c.as_ref().map(|c| c.key))
        == Some(key);
    if loaded {
        return;
    }
    let path: PathBuf = path.clone();
    let (tx, rx) = mpsc::channel();
    let job = parts.clone();
    let spawned = std::thread::Builder::new()
        .name("alarmscope-picture".into())
        .spawn(move || {
            let _ = tx.send((key, load(&path, key, &job)));
        });
    let shown = match spawned {
        Ok(_) => {
            app.pictures.rx = Some(rx);
            parts.iter().map(|p| (*p, Shown::Loading)).collect()
        }
        Err(e) => parts
            .iter()
            .map(|p| (*p, Shown::Failed(LoadError::Loader(e.to_string()))))
            .collect(),
    };
    app.pictures
        .current
        .replace(Some(Loading { key, parts: shown }));
}

/// Take a finished load, if it is still the one shown.
fn poll(app: &mut App) {
    let Some(rx) = &app.pictures.rx else { return };
    let (key, loaded) = match rx.try_recv() {
        Ok(v) => v,
        Err(TryRecvError::Empty) => return,
        Err(TryRecvError::Disconnected) => {
            // The loader ended without an answer (it panicked): say so rather than wait.
            app.pictures.rx = None;
            if let Some(cur) = app.pictures.current.borrow_mut().as_mut() {
                for (_, s) in cur.parts.iter_mut() {
                    if matches!(s, Shown::Loading) {
                        *s = Shown::Failed(LoadError::Loader("it stopped early".into()));
                    }
                }
            }
            return;
        }
    };
    app.pictures.rx = None;
    let Some(picker) = &app.pictures.picker else {
        return;
    };
    let mut current = app.pictures.current.borrow_mut();
    let Some(cur) = current.as_mut().filter(|c| c.key == key) else {
        return;
    };
    for l in loaded {
        let shown = match l.result {
            Ok(d) => Shown::Ready {
                protocol: Box::new(picker.new_resize_protocol(DynamicImage::ImageRgb8(d.image))),
                width: d.width,
                height: d.height,
                capped: d.capped,
            },
            Err(e) => Shown::Failed(e),
        };
        if let Some(slot) = cur.parts.iter_mut().find(|(i, _)| *i == l.part) {
            slot.1 = shown;
        }
    }
}

/// On the Request tab of an exchange with pictures, draw them at the right of `area` (or below
/// it when narrow) and return what is left for the text.
pub fn split(f: &mut Frame, area: Rect, app: &App) -> Rect {
    if app.tab != Tab::Request || !app.pictures.enabled || area.height < 4 {
        return area;
    }
    let Some(r) = app.selected_row() else {
        return area;
    };
    let Some(loaded) = app.exchange(r) else {
        return area;
    };
    let (c, Some(ex)) = (&*loaded.conn, loaded.ex()) else {
        return area;
    };
    let jpegs: Vec<(usize, &PartInfo)> = jpeg_parts(&ex.parts).collect();
    if jpegs.is_empty() {
        return area;
    }
    let (text, pane) = if area.width >= 60 {
        let [t, p] = Layout::horizontal([Constraint::Percentage(45), Constraint::Fill(1)])
            .spacing(1)
            .areas(area);
        (t, p)
    } else {
        let [t, p] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(area);
        (t, p)
    };
    let key = ExchangeRef {
        connection: c.id,
        index: ex.index,
    };
    draw_pane(f, pane, app, key, &jpegs);
    text
}

/// The pane: every JPEG part's check (and load state) at the top, then the pictures that could
/// be drawn, stacked (at most [`MAX_SHOWN`]).
fn draw_pane(f: &mut Frame, area: Rect, app: &App, key: ExchangeRef, jpegs: &[(usize, &PartInfo)]) {
    let t = app.theme;
    let mut current = app.pictures.current.try_borrow_mut().ok();
    let mut entries: Vec<(usize, Option<&mut Shown>)> = Vec::new();
    let loading = current
        .as_deref_mut()
        .and_then(|c| c.as_mut().filter(|c| c.key == key));
    let mut slots: Vec<(usize, &mut Shown)> = loading
        .map(|c| c.parts.iter_mut().map(|(i, s)| (*i, s)).collect())
        .unwrap_or_default();
    let mut lines: Vec<Line> = Vec::new();
    for (part, info) in jpegs {
        let entry = slots
            .iter()
            .position(|(i, _)| i == part)
            .map(|k| slots.swap_remove(k).1);
        let check = info.picture.clone().unwrap_or_default();
        let name = info
            .filename
            .as_deref()
            .or(info.name.as_deref())
            .unwrap_or("picture");
        let check_style = match &check.problem {
            Some(p) if p.is_uncertain() => t.warn(),
            Some(_) => t.bad(),
            None => t.ok(),
        };
        let status: Option<(String, ratatui::style::Style)> = match (&app.source, &entry) {
            (Source::Live(_), _) => {
                Some(("(pictures are shown for a replayed file)".into(), t.dim()))
            }
            (_, None) if app.pictures.picker.is_none() => None,
            (_, None) | (_, Some(Shown::Loading)) => {
                Some(("reading the picture ...".into(), t.dim()))
            }
            (_, Some(Shown::Failed(e))) => Some((format!("not drawn: {e}"), t.warn())),
            (_, Some(Shown::Ready { capped: true, .. })) => Some((
                format!(
                    "drawn from its first {} bytes",
                    grouped(MAX_PICTURE_BYTES as u64)
                ),
                t.dim(),
            )),
            (_, Some(Shown::Ready { .. })) => None,
        };
        let mut spans = vec![
            Span::styled(format!("part {} ", part + 1), t.dim()),
            Span::raw(format!("{name}: ")),
            Span::styled(check_text(&check), check_style),
        ];
        if let Some((s, style)) = status {
            spans.push(Span::styled(format!(" ({s})"), style));
        }
        lines.push(Line::from(spans));
        entries.push((*part, entry));
    }
    // Rows the captions wrap to (a word wrap may take a row more per caption).
    let w = usize::from(area.width.max(1));
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(w).max(1) + 1).sum();
    let caption_h = u16::try_from(rows)
        .unwrap_or(u16::MAX)
        .min(area.height / 2)
        .max(1);
    let [captions, pictures] =
        Layout::vertical([Constraint::Length(caption_h), Constraint::Fill(1)]).areas(area);
    f.render_widget(
        Paragraph::new(lines).wrap(ratatui::widgets::Wrap { trim: true }),
        captions,
    );
    let ready: Vec<(usize, &mut Shown)> = entries
        .into_iter()
        .filter_map(|(i, e)| {
            e.filter(|e| matches!(e, Shown::Ready { .. }))
                .map(|e| (i, e))
        })
        .take(MAX_SHOWN)
        .collect();
    if ready.is_empty() {
        return;
    }
    let many = ready.len() > 1;
    let areas = Layout::vertical(vec![Constraint::Fill(1); ready.len()]).split(pictures);
    for ((part, shown), slot) in ready.into_iter().zip(areas.iter()) {
        let img = if many && slot.height > 2 {
            let [title, img] =
                Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(*slot);
            f.render_widget(
                Paragraph::new(Line::styled(format!("part {}", part + 1), t.dim())),
                title,
            );
            img
        } else {
            *slot
        };
        if let Shown::Ready { protocol, .. } = shown {
            f.render_stateful_widget(StatefulImage::default(), img, protocol.as_mut());
        }
    }
}

/// The check beside a picture: its size, or what is wrong with it.
fn check_text(c: &PictureCheck) -> String {
    match (&c.problem, c.width, c.height) {
        (Some(p), _, _) => format!("picture {p}"),
        (None, Some(w), Some(h)) => format!("JPEG {w} x {h} px, whole"),
        (None, _, _) => "JPEG, whole".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_averages_boxes_and_keeps_small_pictures() {
        let mut img = RgbImage::new(4, 2);
        img.put_pixel(0, 0, image::Rgb([200, 0, 0]));
        img.put_pixel(1, 1, image::Rgb([0, 100, 0]));
        let s = shrink(&img, 2);
        assert_eq!(s.dimensions(), (2, 1));
        assert_eq!(s.get_pixel(0, 0).0, [50, 25, 0]);
        assert_eq!(s.get_pixel(1, 0).0, [0, 0, 0]);
        assert_eq!(shrink(&img, 640).dimensions(), (4, 2));
    }

    #[test]
    fn only_terminals_known_to_answer_are_asked() {
        let with = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default()
            }
        };
        assert!(asks_terminal(&with(&[("TERM", "xterm-kitty")])));
        assert!(asks_terminal(&with(&[("TERM_PROGRAM", "iterm.app")])));
        assert!(!asks_terminal(&with(&[("TERM", "xterm-256color")])));
        assert!(!asks_terminal(&with(&[("TERM", "tmux-256color")])));
        assert!(!asks_terminal(&with(&[
            ("TERM", "xterm-kitty"),
            ("TMUX", "/tmp/tmux-0/default,1,0")
        ])));
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(matches!(
            decode(b"\xFF\xD8\xFF\xE0garbage"),
            Err(LoadError::Decode(_))
        ));
        assert!(matches!(decode(b""), Err(LoadError::Decode(_))));
    }
}
