//! Tests of the picture pane on the recorded sample `picture-cut.pcap`: an ANPR push whose plate
//! picture (part 2) is cut and whose scene picture (part 3, 2688 x 1520) is whole.

use std::time::{Duration, Instant};

use ratatui::style::Color;
use ratatui_image::picker::Picker;

use super::app::{App, Msg, Source};
use super::fixtures::{draw_buffer, rows};
use super::picture::{load, LoadError, MAX_SIDE};
use super::theme::Theme;
use super::Feed;
use crate::model::ExchangeRef;

fn sample_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn sample_app(name: &str) -> App {
    let r = crate::replay::replay(
        &sample_path(name),
        crate::replay::ReplayOptions::default(),
        &mut |_| {},
        &mut |_| {},
    )
    .expect("sample opens");
    let mut a = App::new(Source::Replay(sample_path(name)), Theme { color: true });
    a.update(Msg::Feed(Feed::Final(r)));
    a
}

/// The screen's symbols, one string per row, and how many cells are picture half-blocks: a
/// half-block glyph, or a space, painted with true colours (the theme uses named colours only).
fn draw(app: &App, w: u16, h: u16) -> (Vec<String>, usize) {
    let buf = draw_buffer(app, w, h);
    let rows = rows(&buf);
    let blocks = buf
        .content()
        .iter()
        .filter(|c| {
            matches!(c.symbol(), "▀" | "▄" | " ")
                && matches!(c.bg, Color::Rgb(..))
                && (c.symbol() == " " || matches!(c.fg, Color::Rgb(..)))
        })
        .count();
    (rows, blocks)
}

/// Select the first row whose exchange has picture parts.
fn select_pictures(app: &mut App) {
    let i = app
        .rows
        .iter()
        .position(|r| {
            app.exchange(*r).is_some_and(|l| {
                l.ex()
                    .is_some_and(|e| e.parts.iter().any(|p| p.picture.is_some()))
            })
        })
        .expect("a row with pictures");
    app.selected = i;
}

/// Tick until the loader thread has answered (or 30 s).
fn tick_until_loaded(app: &mut App) {
    let t0 = Instant::now();
    loop {
        app.update(Msg::Tick(Instant::now()));
        let loading = app.pictures.current.borrow().as_ref().is_none_or(|c| {
            c.parts
                .iter()
                .any(|(_, s)| matches!(s, super::picture::Shown::Loading))
        });
        if !loading || t0.elapsed() > Duration::from_secs(30) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn load_reads_the_parts_back_and_decodes_the_whole_one_reduced() {
    let app = sample_app("picture-cut.pcap");
    let (c, ex) = app
        .rows
        .iter()
        .find_map(|r| {
            let l = app.exchange(*r)?;
            let e = l.ex().filter(|e| e.parts.len() == 3)?.clone();
            Some((l.conn.clone(), e))
        })
        .expect("the 3-part push");
    let key = ExchangeRef {
        connection: c.id,
        index: ex.index,
    };
    let loaded = load(&sample_path("picture-cut.pcap"), key, &[2, 5]);
    assert_eq!(loaded.len(), 2);
    let whole = loaded[0].result.as_ref().expect("part 3 decodes");
    assert_eq!((whole.width, whole.height), (2688, 1520));
    let (w, h) = whole.image.dimensions();
    assert!(
        w <= MAX_SIDE && h <= MAX_SIDE && w >= MAX_SIDE / 2,
        "{w}x{h}"
    );
    assert!(!whole.capped);
    // A part the exchange does not have: nothing read.
    assert_eq!(
        loaded[1].result.as_ref().err(),
        Some(&LoadError::NotInCapture)
    );
}

#[test]
fn picture_pane_draws_half_blocks_and_the_cut_finding() {
    let mut app = sample_app("picture-cut.pcap");
    app.pictures.picker = Some(Picker::halfblocks());
    select_pictures(&mut app);
    tick_until_loaded(&mut app);
    let (screen, blocks) = draw(&app, 160, 50);
    let text = screen.join("\n");
    assert!(blocks > 100, "{blocks} half-blocks in\n{text}");
    assert!(text.contains("is cut after"), "{text}");
    assert!(text.contains("2688 x 1520 px"), "{text}");

    // Off (--no-pictures): neither the pictures nor their pane.
    app.pictures.enabled = false;
    let (screen, blocks) = draw(&app, 160, 50);
    let text = screen.join("\n");
    assert_eq!(blocks, 0);
    assert!(!text.contains("2688 x 1520 px"), "{text}");
}

#[test]
fn picture_pane_fits_at_80x24() {
    let mut app = sample_app("picture-cut.pcap");
    app.pictures.picker = Some(Picker::halfblocks());
    select_pictures(&mut app);
    tick_until_loaded(&mut app);
    let (screen, blocks) = draw(&app, 80, 24);
    let text = screen.join("\n");
    assert!(text.contains("part 2"), "{text}");
    assert!(blocks > 10, "{blocks} half-blocks in\n{text}");
}
