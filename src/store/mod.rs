//! Durable event store for `alarmscope listen`: every event a device pushed, with its headers,
//! decoded metadata and every body part, written and flushed to disk before the listener answers
//! 200 OK.
//!
//! Synchronous code with a small API; the listener drives it from tokio: a [`Staging`] collects
//! an event's bytes while it is received (in memory, spilling to a spool file past
//! [`StoreOptions::spill_bytes`]), [`Staging::seal`] adds the metadata, and [`Store::commit`]
//! hands the event to one group-commit thread, which reports back once it is on disk.
//!
//! # Why segments and not a directory per event
//! Creating a file or directory costs metadata writes (a journal entry, where there is a journal)
//! and, on some virtual machines, around a millisecond of kernel CPU; with a directory, a body
//! file and a `meta.json` per event that alone capped a durable listener far below what devices
//! can push. So events are appended to a few large *segment* files, one write each, and the hot
//! path creates no file at all (pictures beyond the spill threshold excepted). `alarmscope store
//! export` writes the familiar one-directory-per-event tree from a store whenever an engineer
//! wants to browse pictures.
//!
//! # Layout (see docs/listen.md)
//!
//! ```text
//! DIR/index.jsonl                      one JSON line per committed event (IndexLine)
//! DIR/YYYY-MM-DD/events-<n>.seg        segments: per event a record header, its body or parts,
//!                                      then its meta.json
//! DIR/.spool/<seq>.tmp                 large bodies while they arrive (removed on the next start)
//! ```
//! Each index line names its segment and, for every file of the event (`meta.json`, then the
//! body or each part), its byte offset and exact length in that segment. Segment numbers grow in
//! the order segments are created (`max(first event's seq, previous number + 1)`), so (segment
//! number, offset) is the order in which events were committed.
//!
//! # Record header
//! Every event in a segment is preceded by `ASEV`, the header's length and CRC-32 (u32
//! little-endian each), and the header: JSON of a [`RecordHead`] (the event's index line with
//! offsets relative to the payload, plus the payload's length and CRC-32). So a segment alone
//! says which complete events it holds, and the index is a cache of those headers that can always
//! be rebuilt from the segments.
//!
//! # Durability protocol (group commit, one flush)
//! The commit thread takes every sealed event waiting (a batch), appends each one's header and
//! bytes to the current segment (a new one on a new UTC date, past
//! [`StoreOptions::segment_bytes`], or after a write error), `fdatasync`s the segment once
//! (`fsync`ing any directory that got a new segment; see `Preparer` and `ZERO_AHEAD` for
//! why small events are written over zeros flushed earlier), appends the batch's lines to
//! `index.jsonl` (written, not flushed), and only then reports the events committed. The
//! listener answers 200 OK after that report. One flush per batch, whatever its size.
//!
//! So every acknowledged event has its header and all its bytes on disk. `index.jsonl` is flushed
//! when a segment is closed and when the store closes; after a machine crash it may lack its last
//! lines or hold a torn or zeroed stretch. Every reader ([`read_index`], and [`Store::open`], which
//! also writes what it finds back) therefore takes the index's valid lines, finds the last one
//! before any damage, and scans the segments from that event on for records whose header and
//! payload check out, adding those the index lacks. What a crash can leave besides: an unfinished
//! record at the end of a segment (its checks fail: ignored; the next start opens a new segment
//! rather than appending after it) and spool files (deleted on the next start).
//!
//! # Files
//! One concern each: `staging.rs` (an event while it arrives), `writer.rs` (the group commit),
//! `preparer.rs` (segments zeroed ahead), `recovery.rs` (what a crash left), `read.rs` (index,
//! files, export). This file keeps the public types and the [`Store`] handle.

mod preparer;
mod read;
mod recovery;
mod staging;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use serde::Serialize;

use crate::time::Timestamp;
use read::read_range;
use recovery::{list_segments, remove_unwritten_segments, repair_index};
use writer::{CommitWriter, Job};

pub use read::{export, read_file, read_index};
pub use staging::{part_file_name, Sealed, Staging, StagingError};

/// Why a sealed event did not become durable: the listener answers 500 and reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The commit thread has stopped (the store was closed).
    #[error("store is closed")]
    Closed,
    /// Appending or flushing under the store root failed; one error is shared by every event of
    /// the batch it hit, hence the `Arc`.
    #[error("{}: {error}", root.display())]
    Io {
        root: PathBuf,
        error: Arc<io::Error>,
    },
}

/// Name of the index file in the store directory.
pub const INDEX_FILE: &str = "index.jsonl";
/// Name of each event's metadata file (in the index and in exports).
pub const META_FILE: &str = "meta.json";
/// Directory of spool files for large bodies being received.
pub const SPOOL_DIR: &str = ".spool";
/// First bytes of every record in a segment.
const RECORD_MAGIC: &[u8; 4] = b"ASEV";
/// Magic, header length, header CRC-32.
const RECORD_PREFIX: usize = 12;
/// Largest record header a reader accepts (a header lists an event's parts; garbage must not make
/// a reader allocate gigabytes).
const MAX_RECORD_HEAD: u32 = 16 << 20;

/// Why the store could not be opened or written, worded for a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store directory {path} is not writable: {source}")]
    NotWritable { path: PathBuf, source: io::Error },
    #[error("store {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("store commit thread is gone")]
    Closed,
}

/// A store error for `path`: [`StoreError::NotWritable`] for a permission or read-only error.
fn io_err(path: &Path, source: io::Error) -> StoreError {
    if source.kind() == io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(30) {
        StoreError::NotWritable {
            path: path.to_path_buf(),
            source,
        }
    } else {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Store tuning.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Flush to disk (fsync) before reporting an event committed. Off only for tests/benchmarks
    /// of everything else.
    pub fsync: bool,
    /// Most events committed in one batch.
    pub max_batch: usize,
    /// Bytes of one event kept in memory while it arrives; beyond this the event is spooled to a
    /// file. Bounds the listener's memory: connections x this.
    pub spill_bytes: usize,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// Size of the zero-filled segments a background thread prepares for small events
    /// (see `Preparer` in the source); 0: none, small events get zeros written ahead in line instead.
    pub prepared_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            fsync: true,
            max_batch: 512,
            spill_bytes: 256 * 1024,
            segment_bytes: 1 << 30,
            prepared_bytes: 16 << 20,
        }
    }
}

/// One file of a stored event, as the index and meta.json list it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StoredFile {
    /// File name (used by `store export`; sanitised, unique within the event).
    pub file: String,
    /// Byte offset in the event's segment.
    #[serde(default)]
    pub offset: u64,
    /// Exact size in bytes.
    pub bytes: u64,
    /// Part index in the body (absent for the plain body file).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub part: Option<usize>,
    /// Content-Disposition name / filename / content type as sent by the device (untrusted text).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub content_type: Option<String>,
}

/// One line of `index.jsonl`: a committed event and where its bytes are.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct IndexLine {
    pub seq: u64,
    /// Receive time, seconds since the Unix epoch.
    pub time: f64,
    /// The event's name, `DATE/<seq>-<device>-<eventType>` (its directory in an export).
    pub dir: String,
    /// Segment holding the event, relative to the store root, `/`-separated.
    pub segment: String,
    pub client: String,
    pub event_type: Option<String>,
    /// `meta.json` first, then the body or its parts in order.
    pub files: Vec<StoredFile>,
}

/// The header before each event in its segment: the event's index line without the segment,
/// offsets relative to the payload (the bytes after the header), and the payload's length and
/// CRC-32, so that a reader can tell a complete record from one a crash cut short.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RecordHead {
    pub seq: u64,
    pub time: f64,
    pub dir: String,
    pub client: String,
    pub event_type: Option<String>,
    /// As in the index, offsets relative to the payload's start.
    pub files: Vec<StoredFile>,
    /// Payload bytes following the header.
    pub len: u64,
    /// CRC-32 (IEEE) of the payload.
    pub crc32: u32,
}

/// A committed event: where it is.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: u64,
    /// The event's name as in the index (`DATE/<seq>-<device>-<eventType>`).
    pub rel_dir: String,
    /// Absolute path of the segment holding its bytes.
    pub segment: PathBuf,
    pub files: Vec<StoredFile>,
}

impl StoredEvent {
    /// Read one of the event's files (by name) back from its segment.
    pub fn read(&self, file: &str) -> io::Result<Vec<u8>> {
        let f = self
            .files
            .iter()
            .find(|f| f.file == file)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, file.to_string()))?;
        read_range(&self.segment, f.offset, f.bytes)
    }
}

/// Handle to an open store; cheap to clone, usable from many threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    opts: StoreOptions,
    /// Shared with the commit thread, which names new segments after it.
    next_seq: Arc<AtomicU64>,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Store {
    /// Open (creating if needed) the store in `dir`: check it is writable, bring the index up to
    /// date with the segments (cut a torn last line, drop damaged ones, add the records it lacks;
    /// see the module docs), clear the spool, continue the sequence numbers, start the commit
    /// thread.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let root = dir.canonicalize().map_err(|e| io_err(dir, e))?;
        let probe = root.join(".alarmscope-probe");
        File::create(&probe).map_err(|e| io_err(&root, e))?;
        let _ = fs::remove_file(&probe);
        let spool = root.join(SPOOL_DIR);
        let _ = fs::remove_dir_all(&spool);
        fs::create_dir_all(&spool).map_err(|e| io_err(&spool, e))?;
        let index_path = root.join(INDEX_FILE);
        let index = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&index_path)
            .map_err(|e| io_err(&index_path, e))?;
        let (segments, dates) = list_segments(&root).map_err(|e| io_err(&root, e))?;
        let segments = remove_unwritten_segments(segments);
        let (index, max_seq) = repair_index(&root, &segments, index, &index_path)?;
        let last_segment = segments.last().map_or(0, |s| s.number);
        let next = max_seq.max(last_segment).saturating_add(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let next_seq = Arc::new(AtomicU64::new(next));
        let inner = Arc::new(Inner {
            root: root.clone(),
            opts: opts.clone(),
            next_seq: next_seq.clone(),
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(None),
        });
        let writer = CommitWriter::new(root, &opts, dates, last_segment, index, index_path)
            .map_err(|e| io_err(dir, e))?;
        let handle = std::thread::Builder::new()
            .name("alarmscope-store".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| io_err(dir, e))?;
        if let Ok(mut t) = inner.thread.lock() {
            *t = Some(handle);
        }
        Ok(Store { inner })
    }

    /// The store directory (absolute).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The sequence number the next event will get.
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq.load(Ordering::Relaxed)
    }

    /// Start storing an event received at `received` from `client` ("ip:port"). Touches no file:
    /// the bytes stay in memory until they pass the spill threshold.
    pub fn begin(&self, received: Timestamp, client: &str) -> io::Result<Staging> {
        let seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        Ok(Staging::new(
            seq,
            received,
            client,
            self.inner.root.join(SPOOL_DIR),
            self.inner.opts.spill_bytes,
        ))
    }

    /// Queue a sealed event for the group commit; `done` is called from the commit thread once
    /// the event is durable (or could not be made so).
    pub fn commit(
        &self,
        sealed: Sealed,
        done: impl FnOnce(Result<StoredEvent, CommitError>) + Send + 'static,
    ) {
        let job = Job {
            sealed,
            done: Box::new(done),
        };
        let sent = match self.inner.tx.lock() {
            Ok(tx) => match tx.as_ref() {
                Some(tx) => tx.send(job).map_err(|e| e.0),
                None => Err(job),
            },
            Err(_) => Err(job),
        };
        if let Err(job) = sent {
            (job.done)(Err(CommitError::Closed));
        }
    }

    /// [`Store::commit`] and wait (tests, simple callers).
    pub fn commit_wait(&self, sealed: Sealed) -> Result<StoredEvent, CommitError> {
        let (tx, rx) = mpsc::channel();
        self.commit(sealed, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(CommitError::Closed))
    }

    /// Stop the commit thread after it has committed everything queued.
    pub fn close(&self) {
        if let Ok(mut tx) = self.inner.tx.lock() {
            tx.take();
        }
        let handle = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// UTC date `YYYY-MM-DD` of a timestamp.
fn date_of(t: Timestamp) -> String {
    let s = t.to_utc_string();
    s.get(..10).unwrap_or("1970-01-01").to_string()
}

/// Flush a directory's entries (a new file or directory in it) to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

pub mod cli;

#[cfg(test)]
mod tests;
