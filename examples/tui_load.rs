//! Headless TUI load benchmark (`benches/scale.sh`): open a capture the way `alarmscope replay
//! FILE` does in a terminal (`tui::start_replay`: the replay on its own thread feeding `App`
//! through the same `Feed` messages, ticked as the event loop ticks it), but draw into ratatui's
//! in-memory `TestBackend` instead of a terminal, so the load can be timed in a script. Prints
//! one line of `key=value` figures: first screen (first rows drawn), fully loaded (final report
//! applied and drawn), the slowest keystroke of a filter typed over all rows (and of a `verdict:`
//! word), a problem jump, opening a row's detail far from the last one opened (read again from
//! the capture) and the peak RSS (VmHWM).
//!
//! Usage: cargo run --release --example tui_load -- FILE

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alarmscope::replay::ReplayOptions;
use alarmscope::tui::{render, start_replay, App, Msg, Tab};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

// The allocator the binary uses (src/main.rs), so the figures are the terminal's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Type `text` into the filter line; the slowest keystroke (each filters every row).
fn type_filter(app: &mut App, text: &str) -> Duration {
    app.update(Msg::FilterCancel);
    app.update(Msg::StartFilter);
    let mut worst = Duration::ZERO;
    for c in text.chars() {
        let t = Instant::now();
        app.update(Msg::FilterChar(c));
        worst = worst.max(t.elapsed());
    }
    app.update(Msg::FilterAccept);
    worst
}

fn main() -> anyhow::Result<()> {
    let path = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: tui_load FILE");
        std::process::exit(2)
    }));
    let t0 = Instant::now();
    let (mut app, rx) = start_replay(&path, ReplayOptions::default())?;
    let mut term = Terminal::new(TestBackend::new(200, 50))?;
    let mut first_screen = None;
    for f in rx {
        let rows_before = app.total_rows();
        app.update(Msg::Feed(f));
        // As the event loop: the tick refreshes the diagnosis when one is due.
        app.update(Msg::Tick(Instant::now()));
        if first_screen.is_none() && app.total_rows() > rows_before {
            term.draw(|fr| render(fr, &app))?;
            first_screen = Some(t0.elapsed());
        }
        if app.finished || app.error.is_some() {
            break;
        }
    }
    term.draw(|fr| render(fr, &app))?;
    let loaded = t0.elapsed();
    let rows = app.total_rows();
    let strings = app.store.strings();

    // Filters over all rows: free text, then a verdict word.
    let filter = type_filter(&mut app, "linedet");
    term.draw(|fr| render(fr, &app))?;
    let verdict_filter = type_filter(&mut app, "verdict:no_response");
    let shown = app.rows.len();
    app.update(Msg::FilterCancel);

    // A problem jump from the top.
    app.update(Msg::Home);
    let t = Instant::now();
    app.update(Msg::NextProblem);
    let jump = t.elapsed();

    // Open a row in the middle of the capture (not loaded before) on the Request tab.
    app.update(Msg::Home);
    app.update(Msg::Move(i64::try_from(rows / 2).unwrap_or(0)));
    app.update(Msg::SelectTab(Tab::Request));
    let t = Instant::now();
    term.draw(|fr| render(fr, &app))?;
    let detail = t.elapsed();
    // The next row: usually another connection, read again too.
    app.update(Msg::Move(1));
    let t = Instant::now();
    term.draw(|fr| render(fr, &app))?;
    let detail_next = t.elapsed();

    println!(
        "rows={rows} strings={strings} first_screen_s={:.3} loaded_s={:.3} filter_key_ms={:.1} \
         verdict_filter_key_ms={:.1} verdict_rows={shown} problem_jump_ms={:.1} detail_ms={:.1} \
         detail_next_ms={:.1} peak_rss_mb={:.1}",
        first_screen.unwrap_or(loaded).as_secs_f64(),
        loaded.as_secs_f64(),
        filter.as_secs_f64() * 1e3,
        verdict_filter.as_secs_f64() * 1e3,
        jump.as_secs_f64() * 1e3,
        detail.as_secs_f64() * 1e3,
        detail_next.as_secs_f64() * 1e3,
        peak_rss_mb()
    );
    Ok(())
}
