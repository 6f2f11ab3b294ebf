//! Replay shell: read a capture file frame by frame into the [`Analyzer`], with progress, and
//! hand finished connections to the caller as they close (the TUI shows them while loading).

use std::path::Path;

use crate::capture::file::{CaptureFile, OpenError};
use crate::capture::Warning;
use crate::model::{Connection, Report};
use crate::pipeline::{Analyzer, Counters, ExchangeSink, PipelineConfig};

/// How far a replay has got.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub bytes_read: u64,
    pub file_size: u64,
    pub packets: u64,
}

/// Options for one replay.
#[derive(Default)]
pub struct ReplayOptions {
    pub config: PipelineConfig,
    /// Receives every part's bytes (`--extract`).
    pub sink: Option<Box<dyn ExchangeSink + Send>>,
    /// Only these connections feed the sink.
    pub sink_only: Option<Vec<u64>>,
    /// Record a checkpoint here every [`crate::reload::CHECKPOINT_EVERY`] frames, so that one
    /// connection can be read again later without reading the whole file (the TUI).
    pub checkpoints: Option<crate::reload::SharedCheckpoints>,
}

/// Frames between progress callbacks.
const PROGRESS_EVERY: u64 = 4096;

use crate::reload::CHECKPOINT_EVERY;

/// Replay `path`. `progress` is called every few thousand frames; `on_closed` receives connections
/// as they finish (pass a no-op to collect them only in the report). Returns the full report.
pub fn replay(
    path: &Path,
    opts: ReplayOptions,
    progress: &mut dyn FnMut(Progress),
    on_closed: &mut dyn FnMut(&[Connection]),
) -> Result<Report, OpenError> {
    let mut all: Vec<Connection> = Vec::new();
    let (counters, warnings) = replay_each(path, opts, progress, &mut |done| {
        on_closed(&done);
        all.extend(done);
    })?;
    Ok(crate::report::build(
        &path.display().to_string(),
        all,
        &counters,
        warnings,
    ))
}

/// Replay `path`, handing each batch of finished connections to `on_closed` to keep or drop
/// (the streaming report keeps none). Returns the capture counters and the warnings.
///
/// Two threads: a scoped worker reads and analyses the frames, the calling thread decodes the
/// events of the closed connections (the analysis defers them: [`crate::isapi::BodyLimits::defer_event`])
/// and runs `progress` and `on_closed` (the reports serialise and diagnose there), handed over
/// through a bounded channel so memory stays flat if the caller is slower. Why: on a capture of
/// small events, decoding events is a third of the analysis, and serialising and diagnosing
/// about a fifth of the work: both run beside the analysis on a second core (measured in
/// benches/scale.sh).
pub fn replay_each(
    path: &Path,
    opts: ReplayOptions,
    progress: &mut dyn FnMut(Progress),
    on_closed: &mut dyn FnMut(Vec<Connection>),
) -> Result<(Counters, Vec<Warning>), OpenError> {
    let file = CaptureFile::open(path)?;
    let mut config = opts.config;
    // Events are decoded on this (the calling) thread, in `deliver`, beside the analysis.
    config.body.defer_event = true;
    let mut an = Analyzer::new(config);
    if let Some(sink) = opts.sink {
        an.set_sink(sink, opts.sink_only);
    }
    let checkpoints = opts.checkpoints;
    let (tx, rx) = std::sync::mpsc::sync_channel(BATCHES_IN_FLIGHT);
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("alarmscope-analyse".into())
            .spawn_scoped(scope, move || analyse(file, an, checkpoints.as_ref(), &tx));
        let worker = match worker {
            Ok(w) => w,
            Err(e) => {
                return Err(OpenError::Other {
                    path: path.display().to_string(),
                    detail: format!("cannot start the analysis thread: {e}"),
                })
            }
        };
        deliver(rx, progress, on_closed);
        match worker.join() {
            Ok(out) => Ok(out),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Messages from the analysis thread to the caller's.
enum Handover {
    Progress(Progress),
    Closed(Vec<Connection>),
}

/// Messages waiting between the threads at most (each a progress note or a batch of up to
/// [`PROGRESS_EVERY`] frames' closed connections).
const BATCHES_IN_FLIGHT: usize = 2;

fn deliver(
    rx: std::sync::mpsc::Receiver<Handover>,
    progress: &mut dyn FnMut(Progress),
    on_closed: &mut dyn FnMut(Vec<Connection>),
) {
    for m in rx {
        match m {
            Handover::Progress(p) => progress(p),
            Handover::Closed(mut c) => {
                for ex in c.iter_mut().flat_map(|c| c.exchanges.iter_mut()) {
                    ex.decode_event();
                }
                on_closed(c)
            }
        }
    }
}

/// The analysis thread: every frame into the analyser, finished connections and progress out.
/// A closed receiver (the caller gave up) only loses those messages; the analysis completes.
fn analyse(
    mut file: CaptureFile,
    mut an: Analyzer,
    checkpoints: Option<&crate::reload::SharedCheckpoints>,
    tx: &std::sync::mpsc::SyncSender<Handover>,
) -> (Counters, Vec<Warning>) {
    let mut number: u64 = 0;
    let mut latest: Option<crate::time::Timestamp> = None;
    loop {
        if let Some(cps) = checkpoints.filter(|_| number.is_multiple_of(CHECKPOINT_EVERY)) {
            if let Ok(mut cps) = cps.lock() {
                cps.record(crate::reload::Checkpoint {
                    frames_before: number,
                    offset: file.next_record_offset(),
                    latest_before: latest,
                });
            }
        }
        match file.next_frame() {
            Ok(Some(f)) => {
                number += 1;
                latest = latest.max(Some(f.ts));
                an.frame(number, f.ts, f.link, f.data, f.orig_len);
            }
            Ok(None) => break,
            Err(w) => {
                an.warn(Warning::CaptureFile(w));
            }
        }
        if number.is_multiple_of(PROGRESS_EVERY) {
            let _ = tx.send(Handover::Progress(Progress {
                bytes_read: file.bytes_read(),
                file_size: file.file_size(),
                packets: number,
            }));
            let done = an.take_finished();
            if !done.is_empty() {
                let _ = tx.send(Handover::Closed(done));
            }
        }
    }
    let _ = tx.send(Handover::Progress(Progress {
        bytes_read: file.bytes_read(),
        file_size: file.file_size(),
        packets: number,
    }));
    let (rest, counters, warnings) = an.finish();
    if !rest.is_empty() {
        let _ = tx.send(Handover::Closed(rest));
    }
    (counters, warnings)
}
