//! The terminal UI (ratatui + crossterm): a view over analysis results shared by replay, sniff and
//! listen.
//!
//! Layout of the module (Elm-style, as in the ratatui app examples):
//! - [`app`]: the state ([`App`]), the messages ([`Msg`]) and [`App::update`], the only place the
//!   state changes; keys and mouse map to messages there too.
//! - [`ui`]: [`render`] draws a frame from `&App` with the components [`list`], [`detail`],
//!   [`devices`] and the header, footer and help overlay.
//! - [`save`]: saving an exchange's parts on a thread of its own; its [`SaveOutcome`] comes back
//!   as a message.
//! - [`stream`]: the Follow-stream view (`f`); [`stream_load`] indexes the connection on a thread
//!   of its own and reads the visible frames back.
//! - this file: the terminal shell (raw mode, alternate screen, mouse capture, panic hook), the
//!   event loop, and the background threads (replay, save) that talk to it over std `mpsc`
//!   channels with [`Feed`] messages (defined in [`crate::feed`], shared with the live modes).

pub mod app;
pub mod detail;
pub mod devices;
pub mod format;
pub mod list;
pub mod picture;
pub mod pretty;
pub mod rows;
pub mod save;
pub mod stream;
pub mod stream_load;
pub mod theme;
pub mod timeline;
pub mod ui;
pub mod warnings;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod picture_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_decrypted;
#[cfg(test)]
mod timeline_tests;

use std::io::{stdout, Stdout};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

pub use app::{App, Cmd, ExportScope, Focus, Msg, RowRef, Source, Tab};
pub use save::{SaveError, SaveOutcome};
pub use theme::Theme;
pub use ui::render;
// Re-exported: the feed was defined here once, and the listener still names it `tui::Feed`.
pub use crate::feed::Feed;

use crate::replay::{replay_each, ReplayOptions};

/// Open the TUI on a capture file. The replay runs on its own thread; the screen fills in as
/// connections close. `pictures`: draw the exchanges' JPEG pictures (off: `--no-pictures`).
/// Returns 0, or 2 when the file could not be read.
pub fn run_replay(path: &Path, opts: ReplayOptions, pictures: bool) -> anyhow::Result<i32> {
    // A file that cannot be opened is reported on the plain terminal, as in headless mode.
    if let Err(e) = std::fs::File::open(path) {
        eprintln!("alarmscope: {}: {e}", path.display());
        return Ok(2);
    }
    let (app, rx) = start_replay(path, opts)?;
    let mut app = app;
    app.pictures.enabled = pictures;
    run_app(app, rx)
}

/// Start replaying `path` on a thread of its own and return the [`App`] that shows it and the
/// feed it reads. The App keeps compact rows only and loads a row's connection from the file
/// when it is opened ([`crate::reload`]), from the checkpoints this replay records. Public for
/// `examples/tui_load.rs`, which measures the load without a terminal.
pub fn start_replay(path: &Path, mut opts: ReplayOptions) -> anyhow::Result<(App, Receiver<Feed>)> {
    let checkpoints = crate::reload::SharedCheckpoints::default();
    opts.checkpoints = Some(checkpoints.clone());
    let reloader = crate::reload::Reloader::new(path, opts.config.clone(), checkpoints);
    // Bounded: when drawing falls behind, the replay waits instead of queueing whole
    // connections (memory would follow the capture again).
    let (tx, rx) = mpsc::sync_channel(FEED_IN_FLIGHT);
    let worker_path = path.to_path_buf();
    let keys = opts.config.keys.clone();
    thread::Builder::new()
        .name("alarmscope-replay".into())
        .spawn(move || replay_worker(&worker_path, opts, &tx))?;
    let mut app = App::new(Source::Replay(path.to_path_buf()), Theme::from_env());
    app.load_from_capture(reloader);
    app.stream_keys = keys;
    Ok((app, rx))
}

/// Open the TUI on a live feed (sniff and listen modes). `title` names the source (interface or
/// listen address). Returns 0, or 2 when the feed reported an error.
pub fn run_live(title: String, rx: Receiver<Feed>) -> anyhow::Result<i32> {
    run_app(App::new(Source::Live(title), Theme::from_env()), rx)
}

/// Feed messages (progress notes, batches of closed connections) queued for the screen at most.
const FEED_IN_FLIGHT: usize = 4;

fn replay_worker(path: &Path, opts: ReplayOptions, tx: &SyncSender<Feed>) {
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // The connections go to the App only (which keeps compact rows): the final report
        // carries the counters and warnings, not the connections again.
        replay_each(
            path,
            opts,
            &mut |p| {
                let _ = tx.send(Feed::Progress(p));
            },
            &mut |done| {
                let _ = tx.send(Feed::Upsert(done));
            },
        )
        .map(|(counters, warnings)| {
            crate::report::build(&path.display().to_string(), Vec::new(), &counters, warnings)
        })
    }));
    let msg = match result {
        Ok(Ok(report)) => Feed::Final(report),
        Ok(Err(e)) => Feed::Error(e.to_string()),
        Err(p) => Feed::Error(format!("replay stopped: {}", panic_text(p.as_ref()))),
    };
    let _ = tx.send(msg);
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// How long one loop turn may spend taking feed messages before it draws again.
const FEED_BUDGET: Duration = Duration::from_millis(50);
/// Input poll timeout: the screen redraws at least this often (about 10 times a second).
const FRAME: Duration = Duration::from_millis(100);

fn run_app(mut app: App, rx: Receiver<Feed>) -> anyhow::Result<i32> {
    let mut term = TerminalGuard::enter()?;
    // After the alternate screen, before input is read: how the terminal draws pictures.
    app.pictures.query_terminal();
    let (save_tx, save_rx) = mpsc::channel::<SaveOutcome>();
    let (stream_tx, stream_rx) = mpsc::channel::<stream::StreamMsg>();
    let mut feed_open = true;
    // True while feed messages are queued: then input is only checked, not waited for.
    let mut backlog = false;
    loop {
        term.terminal.draw(|f| render(f, &app))?;
        if event::poll(if backlog {
            Duration::from_millis(1)
        } else {
            FRAME
        })? {
            loop {
                let msg = match event::read()? {
                    Event::Key(k) => app.key_to_msg(k),
                    Event::Mouse(m) => app.mouse_to_msg(m),
                    _ => None,
                };
                if let Some(cmd) = msg.and_then(|m| app.update(m)) {
                    run_cmd(cmd, save_tx.clone(), &stream_tx);
                }
                if app.quit || !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
        if app.quit {
            break;
        }
        let t0 = Instant::now();
        backlog = false;
        while feed_open {
            if t0.elapsed() >= FEED_BUDGET {
                backlog = true;
                break;
            }
            match rx.try_recv() {
                Ok(f) => {
                    app.update(Msg::Feed(f));
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    feed_open = false;
                    if !app.finished && app.error.is_none() {
                        app.update(Msg::Feed(Feed::Error(
                            "the data feed ended without a final report".into(),
                        )));
                    }
                }
            }
        }
        while let Ok(m) = save_rx.try_recv() {
            app.update(Msg::SaveDone(m));
        }
        while let Ok(m) = stream_rx.try_recv() {
            app.update(Msg::Stream(m));
        }
        app.update(Msg::Tick(Instant::now()));
    }
    drop(term);
    for m in take_deferred_panics() {
        eprintln!("alarmscope: background thread panicked: {m}");
    }
    Ok(if app.error.is_some() { 2 } else { 0 })
}

fn run_cmd(cmd: Cmd, tx: Sender<SaveOutcome>, stream_tx: &Sender<stream::StreamMsg>) {
    match cmd {
        Cmd::IndexStream { path, target } => {
            let stx = stream_tx.clone();
            let id = target.conn_id;
            let spawned = thread::Builder::new()
                .name("alarmscope-stream".into())
                .spawn(move || {
                    let result = match panic::catch_unwind(AssertUnwindSafe(|| {
                        stream_load::build(&path, &target)
                    })) {
                        Ok(r) => r,
                        Err(p) => Err(stream_load::LoadError::Io(panic_text(p.as_ref()))),
                    };
                    let _ = stx.send(stream::StreamMsg::Indexed(id, result));
                });
            if let Err(e) = spawned {
                let _ = stream_tx.send(stream::StreamMsg::Indexed(
                    id,
                    Err(stream_load::LoadError::Io(e.to_string())),
                ));
            }
        }
        Cmd::Save {
            path,
            dir,
            conn_id,
            prefix,
        } => {
            let spawned = thread::Builder::new()
                .name("alarmscope-save".into())
                .spawn({
                    let tx = tx.clone();
                    move || {
                        let msg = match panic::catch_unwind(AssertUnwindSafe(|| {
                            save::save(&path, &dir, conn_id, &prefix)
                        })) {
                            Ok(outcome) => outcome,
                            Err(p) => SaveError::Panicked(panic_text(p.as_ref())).into(),
                        };
                        let _ = tx.send(msg);
                    }
                });
            if let Err(e) = spawned {
                let _ = tx.send(SaveError::Spawn(e.to_string()).into());
            }
        }
        Cmd::Export {
            path,
            out,
            selection,
        } => {
            let spawned = thread::Builder::new()
                .name("alarmscope-export".into())
                .spawn({
                    let tx = tx.clone();
                    move || {
                        let msg = match panic::catch_unwind(AssertUnwindSafe(|| {
                            crate::export::export_pcap(&path, &selection, &out)
                        })) {
                            Ok(Ok(stats)) => SaveOutcome::Exported { out, stats },
                            Ok(Err(e)) => SaveError::Export(e.to_string()).into(),
                            Err(p) => SaveError::Panicked(panic_text(p.as_ref())).into(),
                        };
                        let _ = tx.send(msg);
                    }
                });
            if let Err(e) = spawned {
                let _ = tx.send(SaveError::Spawn(e.to_string()).into());
            }
        }
    }
}

// ----- terminal shell -----

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Panics of other threads while the screen is up: printing them would garble the screen, so
/// they are kept and printed after it is restored.
static DEFERRED_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn take_deferred_panics() -> Vec<String> {
    DEFERRED_PANICS
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

/// Raw mode, alternate screen and mouse capture for as long as it lives; restored on drop
/// (normal exit and `?` errors) and by the panic hook (panics on the UI thread).
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    prev_hook: Arc<Hook>,
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<Self> {
        let prev_hook: Arc<Hook> = Arc::new(panic::take_hook());
        let hook = prev_hook.clone();
        let ui_thread = thread::current().id();
        panic::set_hook(Box::new(move |info| {
            if thread::current().id() == ui_thread {
                restore_terminal();
                hook(info);
            } else if let Ok(mut v) = DEFERRED_PANICS.lock() {
                if v.len() < 8 {
                    v.push(info.to_string());
                }
            }
        }));
        let setup = || -> anyhow::Result<Terminal<CrosstermBackend<Stdout>>> {
            enable_raw_mode()?;
            execute!(stdout(), EnterAlternateScreen, EnableMouseCapture)?;
            Ok(Terminal::new(CrosstermBackend::new(stdout()))?)
        };
        match setup() {
            Ok(terminal) => Ok(TerminalGuard {
                terminal,
                prev_hook,
            }),
            Err(e) => {
                restore_terminal();
                reinstate_hook(&prev_hook);
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        let _ = self.terminal.show_cursor();
        if !thread::panicking() {
            reinstate_hook(&self.prev_hook);
        }
    }
}

fn reinstate_hook(prev: &Arc<Hook>) {
    let prev = prev.clone();
    let _ = panic::take_hook();
    panic::set_hook(Box::new(move |info| prev(info)));
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}
