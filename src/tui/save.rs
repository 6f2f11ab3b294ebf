//! Saving one exchange's body parts from the TUI: the capture is replayed on a thread of its own
//! with an [`Extractor`] limited to the exchange's connection, and the outcome comes back to the
//! screen as a [`SaveOutcome`] (a kind, with its text as `Display`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::extract::Extractor;
use crate::isapi::PartHeader;
use crate::model::ExchangeRef;
use crate::pipeline::ExchangeSink;
use crate::replay::{replay_each, ReplayOptions};

/// How a save ended, for the footer: its text is `Display`, whether it failed is
/// [`SaveOutcome::is_failure`] (the footer shows failures as errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// This exchange's files (names) were written to `dir`.
    Saved { dir: PathBuf, files: Vec<String> },
    /// None of the files written is this exchange's; `connection_files` were written for its
    /// connection.
    NothingForExchange { connection_files: usize },
    /// Some files could not be written (`error`, the first); what was written is `written`.
    WriteFailed {
        error: String,
        written: Box<SaveOutcome>,
    },
    /// The save did not get to the end.
    Failed(SaveError),
    /// The `x` key's pcap export was written.
    Exported {
        out: PathBuf,
        stats: crate::export::ExportStats,
    },
}

/// Why a save did not get to the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaveError {
    /// The output directory could not be made.
    #[error("cannot create {}: {reason}", dir.display())]
    CreateDir { dir: PathBuf, reason: String },
    /// The capture could not be read again.
    #[error("{0}")]
    Replay(String),
    /// The extractor's lock was poisoned by a panic while writing.
    #[error("extractor lock poisoned")]
    LockPoisoned,
    /// The save thread panicked (the panic's text).
    #[error("{0}")]
    Panicked(String),
    /// The save thread could not be started.
    #[error("{0}")]
    Spawn(String),
    /// The pcap export failed (its message).
    #[error("export: {0}")]
    Export(String),
}

impl SaveOutcome {
    /// Whether the footer shows it as an error.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            SaveOutcome::WriteFailed { .. } | SaveOutcome::Failed(_)
        )
    }
}

impl fmt::Display for SaveOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveOutcome::Saved { dir, files } => write!(
                f,
                "saved {} file(s) to {}: {}",
                files.len(),
                dir.display(),
                files.join(", ")
            ),
            SaveOutcome::NothingForExchange { connection_files } => write!(
                f,
                "nothing written for this exchange (no body parts in the capture); \
                 {connection_files} file(s) for its connection"
            ),
            SaveOutcome::WriteFailed { error, written } => {
                write!(f, "save failed: {error} ({written})")
            }
            SaveOutcome::Failed(e) => write!(f, "save failed: {e}"),
            SaveOutcome::Exported { out, stats } => {
                write!(f, "exported {stats} to {}", out.display())
            }
        }
    }
}

impl From<SaveError> for SaveOutcome {
    fn from(e: SaveError) -> Self {
        SaveOutcome::Failed(e)
    }
}

/// An [`Extractor`] shared with the save thread, so the list of written files can be read back
/// after the replay has consumed (and dropped) the sink box.
struct SharedExtractor(Arc<Mutex<Extractor>>);

impl ExchangeSink for SharedExtractor {
    fn part_start(&mut self, ex: ExchangeRef, client: &str, header: &PartHeader) {
        if let Ok(mut x) = self.0.lock() {
            x.part_start(ex, client, header);
        }
    }
    fn part_data(&mut self, ex: ExchangeRef, index: usize, data: &[u8]) {
        if let Ok(mut x) = self.0.lock() {
            x.part_data(ex, index, data);
        }
    }
    fn part_end(&mut self, ex: ExchangeRef, index: usize, bytes: u64) {
        if let Ok(mut x) = self.0.lock() {
            x.part_end(ex, index, bytes);
        }
    }
}

/// Re-read `path` writing connection `conn_id`'s parts to `dir`; say what was written for the
/// exchange whose files start with `prefix`.
pub fn save(path: &Path, dir: &Path, conn_id: u64, prefix: &str) -> SaveOutcome {
    save_or_fail(path, dir, conn_id, prefix).unwrap_or_else(SaveOutcome::Failed)
}

fn save_or_fail(
    path: &Path,
    dir: &Path,
    conn_id: u64,
    prefix: &str,
) -> Result<SaveOutcome, SaveError> {
    let x = Extractor::new(dir).map_err(|e| SaveError::CreateDir {
        dir: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let shared = Arc::new(Mutex::new(x));
    let opts = ReplayOptions {
        sink: Some(Box::new(SharedExtractor(shared.clone()))),
        sink_only: Some(vec![conn_id]),
        ..ReplayOptions::default()
    };
    // Connections are dropped as they close: only the extractor's files are wanted.
    replay_each(path, opts, &mut |_| {}, &mut |_| {})
        .map_err(|e| SaveError::Replay(e.to_string()))?;
    let x = shared.lock().map_err(|_| SaveError::LockPoisoned)?;
    Ok(save_message(dir, prefix, &x.written, &x.errors))
}

/// The outcome for the exchange whose files start with `prefix`, from the files the extractor
/// wrote to `dir` for its connection and the errors it met.
pub fn save_message(
    dir: &Path,
    prefix: &str,
    written: &[PathBuf],
    errors: &[String],
) -> SaveOutcome {
    let mine: Vec<String> = written
        .iter()
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()))
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    let outcome = if mine.is_empty() {
        SaveOutcome::NothingForExchange {
            connection_files: written.len(),
        }
    } else {
        SaveOutcome::Saved {
            dir: dir.to_path_buf(),
            files: mine,
        }
    };
    match errors.first() {
        Some(e) => SaveOutcome::WriteFailed {
            error: e.clone(),
            written: Box::new(outcome),
        },
        None => outcome,
    }
}
