//! Headless TUI load benchmark (`benches/scale.sh`): open a capture the way `alarmscope replay
//! FILE` does in a terminal (replay on its own thread feeding `App` through the same `Feed`
//! messages), but draw into ratatui's in-memory `TestBackend` instead of a terminal, so the load
//! can be timed in a script. Prints one line of `key=value` figures:
//! first screen (first rows drawn), fully loaded (final report applied), a filter typed over all
//! rows, opening the selected row's detail, and the peak RSS (VmHWM).
//!
//! Usage: cargo run --release --example tui_load -- FILE

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use alarmscope::replay::{replay, ReplayOptions};
use alarmscope::tui::{render, App, Feed, Msg, Source, Tab, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: tui_load FILE");
        std::process::exit(2)
    }));
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel();
    let worker_path = path.clone();
    let worker = std::thread::spawn(move || {
        let r = replay(
            &worker_path,
            ReplayOptions::default(),
            &mut |p| {
                let _ = tx.send(Feed::Progress(p));
            },
            &mut |done| {
                let _ = tx.send(Feed::Upsert(done.to_vec()));
            },
        );
        match r {
            Ok(report) => {
                let _ = tx.send(Feed::Final(report));
            }
            Err(e) => {
                let _ = tx.send(Feed::Error(e.to_string()));
            }
        }
    });
    let mut app = App::new(Source::Replay(path), Theme::from_env());
    let mut term = Terminal::new(TestBackend::new(200, 50))?;
    let mut first_screen = None;
    for f in rx {
        let rows_before = app.total_rows();
        app.update(Msg::Feed(f));
        if first_screen.is_none() && app.total_rows() > rows_before {
            term.draw(|fr| render(fr, &app))?;
            first_screen = Some(t0.elapsed());
        }
        if app.finished || app.error.is_some() {
            break;
        }
    }
    let _ = worker.join();
    app.update(Msg::Tick(Instant::now()));
    term.draw(|fr| render(fr, &app))?;
    let loaded = t0.elapsed();
    let rows = app.total_rows();

    // A filter over all rows: type "linedet" and draw.
    let t = Instant::now();
    app.update(Msg::StartFilter);
    for c in "linedet".chars() {
        app.update(Msg::FilterChar(c));
    }
    app.update(Msg::FilterAccept);
    term.draw(|fr| render(fr, &app))?;
    let filter = t.elapsed();

    // Open the selected row's detail (the body tab) and draw it.
    let t = Instant::now();
    app.update(Msg::Move(1));
    app.update(Msg::SelectTab(Tab::from_index(1)));
    term.draw(|fr| render(fr, &app))?;
    let detail = t.elapsed();

    println!(
        "rows={rows} first_screen_s={:.3} loaded_s={:.3} filter_ms={:.1} detail_ms={:.1} peak_rss_mb={:.1}",
        first_screen.unwrap_or(loaded).as_secs_f64(),
        loaded.as_secs_f64(),
        filter.as_secs_f64() * 1e3,
        detail.as_secs_f64() * 1e3,
        peak_rss_mb()
    );
    Ok(())
}
