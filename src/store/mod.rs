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
//! Creating a file or directory costs a metadata journal entry and, on some virtual machines,
//! around a millisecond of kernel CPU; with a directory, a body file and a `meta.json` per event
//! that alone capped a durable listener far below what devices can push. So events are appended
//! to a few large *segment* files, one write each, and the hot path creates no file at all
//! (pictures beyond the spill threshold excepted). `alarmscope store export` writes the familiar
//! one-directory-per-event tree from a store whenever an engineer wants to browse pictures.
//!
//! # Layout (see docs/listen.md)
//!
//! ```text
//! DIR/index.jsonl                      one JSON line per committed event (IndexLine)
//! DIR/YYYY-MM-DD/events-<seq>.seg      segments: each event's body or parts, then its meta.json
//! DIR/.spool/<seq>.tmp                 large bodies while they arrive (removed on the next start)
//! ```
//! Each index line names its segment and, for every file of the event (`meta.json`, then the
//! body or each part), its byte offset and exact length in that segment.
//!
//! # Durability protocol (group commit, two stages)
//! 1. The segment writer thread takes every sealed event waiting (a batch) and appends each
//!    one's bytes to the current segment (a new one on a new UTC date, past
//!    [`StoreOptions::segment_bytes`], or after a write error); then `fdatasync`s the segment,
//!    `fsync`s any directory that got a new segment, and passes the batch on.
//! 2. The index writer thread takes every batch passed on, appends their index lines, `fdatasync`s
//!    the index once, and only then reports success for those events. The listener answers
//!    200 OK after that report.
//!
//! One segment flush and one index flush per batch whatever its size, and the index flush of one
//! batch overlaps the segment flush of the next.
//!
//! So an index line exists on disk only for an event whose bytes are all on disk. A crash leaves
//! at most bytes at the end of a segment that no index line points at (ignored; the next start
//! opens a new segment rather than appending after them), spool files (deleted on the next start)
//! and a torn last index line without its newline (cut off on the next start).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use serde::Serialize;

use crate::extract::{extension_for, part_base_name, sanitize_file_name};
use crate::isapi::{PartHeader, PartSink};
use crate::time::Timestamp;

/// Name of the index file in the store directory.
pub const INDEX_FILE: &str = "index.jsonl";
/// Name of each event's metadata file (in the index and in exports).
pub const META_FILE: &str = "meta.json";
/// Directory of spool files for large bodies being received.
pub const SPOOL_DIR: &str = ".spool";

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
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            fsync: true,
            max_batch: 512,
            spill_bytes: 256 * 1024,
            segment_bytes: 1 << 30,
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
    next_seq: AtomicU64,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

type Done = Box<dyn FnOnce(Result<StoredEvent, String>) + Send>;

struct Job {
    sealed: Sealed,
    done: Done,
}

impl Store {
    /// Open (creating if needed) the store in `dir`: check it is writable, repair a torn index
    /// line, clear the spool, continue the sequence numbers, start the commit thread.
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
        let mut index = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&index_path)
            .map_err(|e| io_err(&index_path, e))?;
        let max_indexed = repair_index(&mut index, &index_path)?;
        let (max_segment, dates) = scan_segments(&root)?;
        let next = max_indexed.max(max_segment).saturating_add(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let inner = Arc::new(Inner {
            root: root.clone(),
            opts: opts.clone(),
            next_seq: AtomicU64::new(next),
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(None),
        });
        let index = IndexWriter {
            root: root.clone(),
            index,
            index_path,
            fsync: opts.fsync,
        };
        let writer = CommitWriter {
            root,
            fsync: opts.fsync,
            max_batch: opts.max_batch.max(1),
            segment_bytes: opts.segment_bytes.max(1),
            dates,
            current: None,
        };
        let handle = std::thread::Builder::new()
            .name("alarmscope-store".into())
            .spawn(move || writer.run(rx, index))
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
        Ok(Staging {
            seq,
            received,
            client: client.to_string(),
            spool_dir: self.inner.root.join(SPOOL_DIR),
            spill_bytes: self.inner.opts.spill_bytes,
            mem: Vec::new(),
            spill: None,
            len: 0,
            files: Vec::new(),
            current: None,
            error: None,
        })
    }

    /// Queue a sealed event for the group commit; `done` is called from the commit thread once
    /// the event is durable (or could not be made so).
    pub fn commit(
        &self,
        sealed: Sealed,
        done: impl FnOnce(Result<StoredEvent, String>) + Send + 'static,
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
            (job.done)(Err("store is closed".into()));
        }
    }

    /// [`Store::commit`] and wait (tests, simple callers).
    pub fn commit_wait(&self, sealed: Sealed) -> Result<StoredEvent, String> {
        let (tx, rx) = mpsc::channel();
        self.commit(sealed, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| Err("store is closed".into()))
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

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `len` bytes at `offset` of `path`.
fn read_range(path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(64 << 20));
    f.take(len).read_to_end(&mut out)?;
    if (out.len() as u64) < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{}: segment shorter than the index says", path.display()),
        ));
    }
    Ok(out)
}

/// Cut a torn last line; return the highest seq in the index (0 if none).
fn repair_index(index: &mut File, path: &Path) -> Result<u64, StoreError> {
    let len = index.metadata().map_err(|e| io_err(path, e))?.len();
    index
        .seek(SeekFrom::Start(0))
        .map_err(|e| io_err(path, e))?;
    let mut reader = BufReader::new(&*index);
    let mut good: u64 = 0;
    let mut max = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io_err(path, e))?;
        if n == 0 {
            break;
        }
        if line.last() != Some(&b'\n') {
            break;
        }
        good = good.saturating_add(n as u64);
        if let Ok(l) = serde_json::from_slice::<IndexLine>(&line) {
            max = max.max(l.seq);
        }
    }
    if good < len {
        index.set_len(good).map_err(|e| io_err(path, e))?;
        index.sync_all().map_err(|e| io_err(path, e))?;
    }
    Ok(max)
}

/// The highest first-seq among segment names (a crash may have left a segment whose events were
/// never indexed: new events must not reuse its name) and the date directories present.
fn scan_segments(root: &Path) -> Result<(u64, BTreeSet<String>), StoreError> {
    let mut max = 0u64;
    let mut dates = BTreeSet::new();
    let entries = fs::read_dir(root).map_err(|e| io_err(root, e))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_date(&name) || !e.path().is_dir() {
            continue;
        }
        dates.insert(name);
        let Ok(inner) = fs::read_dir(e.path()) else {
            continue;
        };
        for seg in inner.flatten() {
            let n = seg.file_name().to_string_lossy().into_owned();
            if let Some(seq) = n
                .strip_prefix("events-")
                .and_then(|s| s.strip_suffix(".seg"))
                .and_then(|s| s.parse::<u64>().ok())
            {
                max = max.max(seq);
            }
        }
    }
    Ok((max, dates))
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// File name for part `index` of a multipart body: `p<index>-<sanitised filename or name>`, with
/// an extension from the content type when the name has none.
pub fn part_file_name(header: &PartHeader) -> String {
    format!("p{}-{}", header.index, part_base_name(header))
}

/// Which stream the next bytes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Part(usize),
    Body,
}

/// An event being received: its bytes (body or parts back to back, offsets relative to the
/// event's start), in memory or, past the spill threshold, in a spool file. Implements
/// [`PartSink`] for multipart bodies; plain bodies go through [`Staging::write_body`].
pub struct Staging {
    seq: u64,
    received: Timestamp,
    client: String,
    spool_dir: PathBuf,
    spill_bytes: usize,
    mem: Vec<u8>,
    spill: Option<(PathBuf, BufWriter<File>)>,
    /// Bytes staged so far (memory or spool).
    len: u64,
    files: Vec<StoredFile>,
    /// The file receiving bytes now, and its slot in `files`.
    current: Option<(Key, usize)>,
    error: Option<String>,
}

impl Staging {
    /// Sequence number of this event.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The first write error, if any (the event then cannot be acknowledged).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the event went to a spool file (sealing it then does blocking file IO).
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    fn fail(&mut self, e: String) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn start_file(&mut self, key: Key, mut file: StoredFile) {
        if self.files.iter().any(|f| f.file == file.file) {
            // Same part index sent twice: it must never shadow the earlier part.
            self.fail(format!("duplicate part file name {}", file.file));
            return;
        }
        file.offset = self.len;
        file.bytes = 0;
        self.current = Some((key, self.files.len()));
        self.files.push(file);
    }

    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if self.spill.is_none() && self.mem.len().saturating_add(data.len()) > self.spill_bytes {
            let path = self.spool_dir.join(format!("{:08}.tmp", self.seq));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)?;
            let mut w = BufWriter::with_capacity(64 * 1024, f);
            w.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.spill = Some((path, w));
        }
        match &mut self.spill {
            Some((_, w)) => w.write_all(data),
            None => {
                self.mem.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn write_key(&mut self, key: Key, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let Some((k, slot)) = self.current else {
            return;
        };
        if k != key {
            return;
        }
        if let Err(e) = self.append(data) {
            self.fail(format!("staging event {}: {e}", self.seq));
            return;
        }
        self.len = self.len.saturating_add(data.len() as u64);
        if let Some(f) = self.files.get_mut(slot) {
            f.bytes = f.bytes.saturating_add(data.len() as u64);
        }
    }

    /// Append bytes of a plain (non-multipart) body; the file `body.<ext>` starts on the first
    /// call.
    pub fn write_body(&mut self, content_type: Option<&str>, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if !self.files.iter().any(|f| f.part.is_none()) {
            let file = StoredFile {
                file: format!("body.{}", extension_for(content_type)),
                offset: 0,
                bytes: 0,
                part: None,
                name: None,
                filename: None,
                content_type: content_type.map(str::to_string),
            };
            self.start_file(Key::Body, file);
        }
        self.write_key(Key::Body, data);
    }

    /// Add `meta.json` (the caller's `meta` object plus `seq`, `dir` and `files`) and name the
    /// event after `device` and `event_type`. Does blocking file IO only when the event was
    /// spooled ([`Staging::spilled`]).
    pub fn seal(
        mut self,
        meta: serde_json::Map<String, serde_json::Value>,
        event_type: Option<&str>,
        device: &str,
    ) -> io::Result<Sealed> {
        if let Some(e) = self.error.take() {
            return Err(io::Error::other(e));
        }
        let label = |s: &str| {
            let mut n = sanitize_file_name(s);
            n.truncate(40);
            n
        };
        let date = date_of(self.received);
        let rel_dir = format!(
            "{date}/{:08}-{}-{}",
            self.seq,
            label(device),
            label(event_type.unwrap_or("unknown"))
        );
        let mut meta = meta;
        meta.insert("seq".into(), self.seq.into());
        meta.insert("dir".into(), rel_dir.clone().into());
        meta.insert(
            "files".into(),
            serde_json::to_value(&self.files).unwrap_or_default(),
        );
        let mut meta_bytes = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        meta_bytes.push(b'\n');
        let mut files = Vec::with_capacity(self.files.len() + 1);
        files.push(StoredFile {
            file: META_FILE.into(),
            offset: self.len,
            bytes: meta_bytes.len() as u64,
            part: None,
            name: None,
            filename: None,
            content_type: Some("application/json".into()),
        });
        files.append(&mut self.files);
        let data = match self.spill.take() {
            None => Payload::Memory(std::mem::take(&mut self.mem)),
            Some((path, w)) => {
                let f = w.into_inner().map_err(|e| e.into_error())?;
                Payload::Spooled(SpoolFile { path, file: f })
            }
        };
        Ok(Sealed {
            line: IndexLine {
                seq: self.seq,
                time: self.received.as_secs_f64(),
                dir: rel_dir,
                segment: String::new(),
                client: std::mem::take(&mut self.client),
                event_type: event_type.map(str::to_string),
                files,
            },
            date,
            data,
            data_len: self.len,
            meta: meta_bytes,
        })
    }

    /// Give up on this event (its spool file, if any, is removed).
    pub fn abort(self) {}
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Dropped without seal (connection reset mid-body) or aborted: leave no spool behind.
        if let Some((path, _)) = self.spill.take() {
            let _ = fs::remove_file(path);
        }
    }
}

impl PartSink for Staging {
    fn part_start(&mut self, header: &PartHeader) {
        let file = StoredFile {
            file: part_file_name(header),
            offset: 0,
            bytes: 0,
            part: Some(header.index),
            name: header.name.clone(),
            filename: header.filename.clone(),
            content_type: header.content_type.clone(),
        };
        self.start_file(Key::Part(header.index), file);
    }

    fn part_data(&mut self, index: usize, data: &[u8]) {
        self.write_key(Key::Part(index), data);
    }

    fn part_end(&mut self, index: usize, _bytes: u64) {
        if self.current.is_some_and(|(k, _)| k == Key::Part(index)) {
            self.current = None;
        }
    }
}

/// A spool file, removed when dropped.
struct SpoolFile {
    path: PathBuf,
    file: File,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

enum Payload {
    Memory(Vec<u8>),
    Spooled(SpoolFile),
}

/// An event complete in memory (or spool), waiting for the group commit.
pub struct Sealed {
    line: IndexLine,
    date: String,
    data: Payload,
    data_len: u64,
    meta: Vec<u8>,
}

impl Sealed {
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.line.seq
    }
}

/// The segment being appended to.
struct Segment {
    date: String,
    rel: String,
    file: File,
    len: u64,
    /// Written since its last flush.
    dirty: bool,
}

/// First stage of the group commit: appends each batch to the segment and flushes it.
struct CommitWriter {
    root: PathBuf,
    fsync: bool,
    max_batch: usize,
    segment_bytes: u64,
    /// Date directories that exist.
    dates: BTreeSet<String>,
    current: Option<Segment>,
}

impl CommitWriter {
    fn run(mut self, rx: mpsc::Receiver<Job>, index: IndexWriter) {
        let (to_index, index_rx) = mpsc::channel::<Vec<Job>>();
        let indexer = std::thread::Builder::new()
            .name("alarmscope-index".into())
            .spawn(move || index.run(index_rx));
        let indexer = match indexer {
            Ok(h) => h,
            Err(e) => {
                // No index writer: nothing can be committed; say so to every event.
                let msg = format!("cannot start the store index thread: {e}");
                while let Ok(job) = rx.recv() {
                    (job.done)(Err(msg.clone()));
                }
                return;
            }
        };
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch, &to_index);
        }
        drop(to_index);
        let _ = indexer.join();
    }

    /// A segment for an event of `date` with room for it, starting a new one (after flushing
    /// the one it replaces) where needed. Returns whether a new segment was created (its
    /// directory then needs an fsync).
    fn segment_for(&mut self, date: &str, seq: u64) -> io::Result<bool> {
        if let Some(seg) = &self.current {
            if seg.date == date && seg.len < self.segment_bytes {
                return Ok(false);
            }
        }
        if let Some(old) = self.current.take() {
            self.flush_segment(old)?;
        }
        let dir = self.root.join(date);
        if !self.dates.contains(date) {
            fs::create_dir_all(&dir)?;
            if self.fsync {
                sync_dir(&self.root)?;
            }
            self.dates.insert(date.to_string());
        }
        let name = format!("events-{seq:08}.seg");
        let path = dir.join(&name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        self.current = Some(Segment {
            date: date.to_string(),
            rel: format!("{date}/{name}"),
            file,
            len: 0,
            dirty: false,
        });
        Ok(true)
    }

    /// Append one event to the current segment; offsets in its line become absolute.
    fn append(&mut self, job: &mut Job, new_dirs: &mut BTreeSet<String>) -> io::Result<()> {
        if self.segment_for(&job.sealed.date, job.sealed.line.seq)? {
            new_dirs.insert(job.sealed.date.clone());
        }
        let Some(seg) = self.current.as_mut() else {
            return Err(io::Error::other("no segment"));
        };
        seg.dirty = true;
        let base = seg.len;
        let result = (|| -> io::Result<()> {
            match &mut job.sealed.data {
                Payload::Memory(v) => seg.file.write_all(v)?,
                Payload::Spooled(s) => {
                    s.file.seek(SeekFrom::Start(0))?;
                    let n = io::copy(&mut (&s.file).take(job.sealed.data_len), &mut seg.file)?;
                    if n != job.sealed.data_len {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "spool file shorter than staged",
                        ));
                    }
                }
            }
            seg.file.write_all(&job.sealed.meta)
        })();
        if let Err(e) = result {
            // The segment's end is now unknown: never append after it.
            if let Some(seg) = self.current.take() {
                let _ = self.flush_segment(seg);
            }
            return Err(e);
        }
        let total = job
            .sealed
            .data_len
            .saturating_add(job.sealed.meta.len() as u64);
        seg.len = base.saturating_add(total);
        job.sealed.line.segment = seg.rel.clone();
        // The bytes are in the segment now: free the memory, remove the spool file, before the
        // event is reported.
        job.sealed.data = Payload::Memory(Vec::new());
        job.sealed.meta = Vec::new();
        for f in &mut job.sealed.line.files {
            f.offset = f.offset.saturating_add(base);
        }
        Ok(())
    }

    fn flush_segment(&self, seg: Segment) -> io::Result<()> {
        if self.fsync && seg.dirty {
            seg.file.sync_data()?;
        }
        Ok(())
    }

    fn commit_batch(&mut self, batch: Vec<Job>, to_index: &mpsc::Sender<Vec<Job>>) {
        // 1. Append every event; those that fail here are reported and left out of the index.
        let mut ok: Vec<Job> = Vec::with_capacity(batch.len());
        let mut new_dirs = BTreeSet::new();
        for mut job in batch {
            match self.append(&mut job, &mut new_dirs) {
                Ok(()) => ok.push(job),
                Err(e) => {
                    let msg = format!("{}: {e}", self.root.display());
                    (job.done)(Err(msg));
                }
            }
        }
        if ok.is_empty() {
            return;
        }
        // 2. Segment data (and new directory entries) durable; only then may the index writer
        //    see the batch, so an index line reaches the disk only after its bytes.
        let synced = (|| -> io::Result<()> {
            if self.fsync {
                if let Some(seg) = self.current.as_mut() {
                    if seg.dirty {
                        seg.file.sync_data()?;
                        seg.dirty = false;
                    }
                }
                for d in &new_dirs {
                    sync_dir(&self.root.join(d))?;
                }
            }
            Ok(())
        })();
        match synced {
            Ok(()) => {
                if let Err(mpsc::SendError(jobs)) = to_index.send(ok) {
                    for job in jobs {
                        (job.done)(Err("store index writer is gone".into()));
                    }
                }
            }
            Err(e) => {
                let msg = format!("{}: {e}", self.root.display());
                for job in ok {
                    (job.done)(Err(msg.clone()));
                }
                // Never append after data whose flush failed.
                self.current = None;
            }
        }
    }
}

/// Second stage of the group commit: appends the index lines of every batch whose bytes are
/// durable, flushes the index once for all of them, and reports the events committed. Runs
/// beside the segment writer so that one batch's index flush overlaps the next batch's segment
/// flush.
struct IndexWriter {
    root: PathBuf,
    index: File,
    index_path: PathBuf,
    fsync: bool,
}

impl IndexWriter {
    fn run(mut self, rx: mpsc::Receiver<Vec<Job>>) {
        while let Ok(mut jobs) = rx.recv() {
            while let Ok(more) = rx.try_recv() {
                jobs.extend(more);
            }
            self.commit(jobs);
        }
    }

    fn commit(&mut self, ok: Vec<Job>) {
        let result = (|| -> io::Result<()> {
            let mut buf = Vec::with_capacity(ok.len() * 512);
            for job in &ok {
                serde_json::to_writer(&mut buf, &job.sealed.line).map_err(io::Error::other)?;
                buf.push(b'\n');
            }
            self.index.write_all(&buf)?;
            if self.fsync {
                self.index.sync_data()?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                for job in ok {
                    let line = job.sealed.line;
                    let ev = StoredEvent {
                        seq: line.seq,
                        segment: self.root.join(&line.segment),
                        rel_dir: line.dir,
                        files: line.files,
                    };
                    (job.done)(Ok(ev));
                }
            }
            Err(e) => {
                let msg = format!("{}: {e}", self.index_path.display());
                for job in ok {
                    (job.done)(Err(msg.clone()));
                }
            }
        }
    }
}

/// Read every complete line of a store's index (tools and tests).
pub fn read_index(dir: &Path) -> io::Result<Vec<IndexLine>> {
    let data = fs::read(dir.join(INDEX_FILE))?;
    let mut out = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Ok(l) = serde_json::from_slice::<IndexLine>(line) {
            out.push(l);
        }
    }
    Ok(out)
}

/// Read one file of an indexed event from its segment in the store `root`.
pub fn read_file(root: &Path, line: &IndexLine, file: &StoredFile) -> io::Result<Vec<u8>> {
    let seg = safe_join(root, &line.segment).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad segment path {:?}", line.segment),
        )
    })?;
    read_range(&seg, file.offset, file.bytes)
}

/// `root` joined with a `/`-separated relative path from an index line, every component
/// sanitised: whatever the index says, the result stays under `root`.
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut p = root.to_path_buf();
    let mut any = false;
    for c in rel.split('/').filter(|c| !c.is_empty()) {
        p.push(sanitize_file_name(c));
        any = true;
    }
    any.then_some(p)
}

/// Write the events of the store `root` (those whose seq `keep` accepts) as one directory per
/// event under `out`: `out/DATE/<seq>-<device>-<type>/meta.json`, `body.xml`, `p1-<name>.jpg`,
/// ... Returns (events, files) written. Never writes outside `out`.
pub fn export(
    root: &Path,
    out: &Path,
    keep: impl Fn(&IndexLine) -> bool,
) -> io::Result<(u64, u64)> {
    let mut events = 0u64;
    let mut files = 0u64;
    for line in read_index(root)? {
        if !keep(&line) {
            continue;
        }
        let Some(dir) = safe_join(out, &line.dir) else {
            continue;
        };
        fs::create_dir_all(&dir)?;
        for f in &line.files {
            let bytes = read_file(root, &line, f)?;
            fs::write(dir.join(sanitize_file_name(&f.file)), bytes)?;
            files = files.saturating_add(1);
        }
        events = events.saturating_add(1);
    }
    Ok((events, files))
}

pub mod cli;

#[cfg(test)]
mod tests;
