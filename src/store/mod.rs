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

use std::collections::{BTreeSet, HashSet};
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
/// First bytes of every record in a segment.
const RECORD_MAGIC: &[u8; 4] = b"ASEV";
/// Zeros written ahead of the records when a batch of small events makes the segment grow and no
/// prepared segment is ready (see [`Preparer`], the usual way).
/// Appending allocates blocks and changes the file's size, so its `fdatasync` must also write that
/// metadata (on a journalling file system: commit the journal, which waits for everything else it
/// holds; this project's VM runs ext4 without a journal, where the inode and allocation records
/// are written synchronously, one more round trip). On a busy disk we measured 4 ms for such a
/// flush against 0.2 ms for the same bytes written over blocks that already exist. So small
/// events are written over zeros flushed earlier, and only one batch in `ZERO_AHEAD` bytes pays
/// for the metadata. Readers stop at the zeros like at any unfinished record.
const ZERO_AHEAD: u64 = 1 << 20;
/// A batch larger than this (pictures at full rate) just appends: zeros ahead would double what
/// the disk writes when its bandwidth, not the metadata, is the limit.
const ZERO_AHEAD_MAX_BATCH: u64 = 256 * 1024;
/// Room counted for a record's prefix and header when deciding whether a batch fits in a
/// segment's zeros (a header lists the event's files; a few hundred bytes).
const RECORD_HEAD_ROOM: u64 = 4096;
/// Zeros, for writing ahead.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
/// Event data at least this large is written to the segment directly, not through its buffer.
const DIRECT_WRITE: usize = 16 * 1024;
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

type Done = Box<dyn FnOnce(Result<StoredEvent, String>) + Send>;

struct Job {
    sealed: Sealed,
    done: Done,
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
        let mut writer = CommitWriter {
            root,
            fsync: opts.fsync,
            max_batch: opts.max_batch.max(1),
            segment_bytes: opts.segment_bytes.max(1),
            dates,
            current: None,
            last_segment,
            index,
            index_path,
            index_dirty: false,
            prep: None,
            last_used: last_segment,
        };
        if opts.fsync && opts.prepared_bytes > 0 {
            writer.prep = Some(
                Preparer::start(writer.root.clone(), opts.prepared_bytes)
                    .map_err(|e| io_err(dir, e))?,
            );
            // The first events will most likely be today's.
            writer.ask_prepared(&date_of(Timestamp::now()));
        }
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
            crc: crc32fast::Hasher::new(),
            expect: 0,
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

/// A segment file: its number (creation order) and paths.
struct SegmentFile {
    number: u64,
    /// Relative to the store root, `/`-separated (as in index lines).
    rel: String,
    path: PathBuf,
}

/// The number in a segment name `events-<n>.seg`.
fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix("events-")
        .and_then(|s| s.strip_suffix(".seg"))
        .and_then(|s| s.parse::<u64>().ok())
}

/// Every segment in the store, in creation order (by number), and the date directories present.
fn list_segments(root: &Path) -> io::Result<(Vec<SegmentFile>, BTreeSet<String>)> {
    let mut segs = Vec::new();
    let mut dates = BTreeSet::new();
    for e in fs::read_dir(root)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_date(&name) || !e.path().is_dir() {
            continue;
        }
        let Ok(inner) = fs::read_dir(e.path()) else {
            dates.insert(name);
            continue;
        };
        for seg in inner.flatten() {
            let n = seg.file_name().to_string_lossy().into_owned();
            if let Some(number) = segment_number(&n) {
                segs.push(SegmentFile {
                    number,
                    rel: format!("{name}/{n}"),
                    path: seg.path(),
                });
            }
        }
        dates.insert(name);
    }
    segs.sort_by(|a, b| (a.number, &a.rel).cmp(&(b.number, &b.rel)));
    Ok((segs, dates))
}

/// Remove the segments that hold nothing but zeros: made ahead of need and never written to
/// before the process stopped (once anything is written, a segment starts with a record's magic).
/// Best effort: a segment that cannot be read is left alone (the scans report it). Returns the
/// segments kept.
fn remove_unwritten_segments(segs: Vec<SegmentFile>) -> Vec<SegmentFile> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = Vec::with_capacity(segs.len());
    for seg in segs {
        let unwritten = (|| -> io::Result<bool> {
            let mut f = File::open(&seg.path)?;
            loop {
                let n = f.read(&mut buf)?;
                match buf.get(..n) {
                    None | Some([]) => return Ok(true),
                    Some(b) if b.iter().any(|&c| c != 0) => return Ok(false),
                    Some(_) => {}
                }
            }
        })();
        if matches!(unwritten, Ok(true)) {
            match fs::remove_file(&seg.path) {
                Ok(()) => continue,
                Err(e) => tracing::debug!("{}: {e}", seg.path.display()),
            }
        }
        kept.push(seg);
    }
    kept
}

/// Where an index line's event ends in commit order: (segment number, segment, end offset).
fn line_end(l: &IndexLine) -> Option<(u64, String, u64)> {
    let name = l.segment.rsplit('/').next()?;
    let number = segment_number(name)?;
    let end = l
        .files
        .iter()
        .map(|f| f.offset.saturating_add(f.bytes))
        .max()?;
    Some((number, l.segment.clone(), end))
}

/// Sort index lines into commit order (segment number, then offset); used where lines recovered
/// from the segments fill a gap in the middle of the index.
fn sort_commit_order(lines: &mut [IndexLine]) {
    lines.sort_by_key(|l| line_end(l).map(|(n, _, end)| (n, end)));
}

/// An index line's identity in the store: its segment and the offset of its first file.
fn line_key(l: &IndexLine) -> (String, u64) {
    (
        l.segment.clone(),
        l.files.first().map_or(u64::MAX, |f| f.offset),
    )
}

/// What reading `index.jsonl` found.
#[derive(Default)]
struct IndexScan {
    /// Valid lines in file order (only when asked to keep them).
    lines: Vec<IndexLine>,
    /// Bytes up to the last newline (a torn last line starts there).
    good_len: u64,
    /// A line before the last one is damaged (the file must be rewritten).
    damaged: bool,
    max_seq: u64,
    /// End of the last valid line before the first damaged one: segments are scanned from there.
    resume: Option<(u64, String, u64)>,
    /// Events indexed by valid lines after the first damaged one (not to be added twice).
    after: HashSet<(String, u64)>,
}

/// Read an index: valid lines, where its damage starts, the highest seq.
fn scan_index(r: impl BufRead, keep: bool) -> io::Result<IndexScan> {
    let mut r = r;
    let mut scan = IndexScan::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        scan.good_len = scan.good_len.saturating_add(n as u64);
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.is_empty() {
            continue;
        }
        match serde_json::from_slice::<IndexLine>(text) {
            Ok(l) => {
                scan.max_seq = scan.max_seq.max(l.seq);
                if scan.damaged {
                    scan.after.insert(line_key(&l));
                } else if let Some(end) = line_end(&l) {
                    scan.resume = Some(end);
                }
                if keep {
                    scan.lines.push(l);
                }
            }
            Err(_) => scan.damaged = true,
        }
    }
    Ok(scan)
}

/// The complete records the index lacks, in commit order: every record from the index's resume
/// point on (the rest of that segment, then every later segment) whose header and payload check
/// out and that no valid index line after the damage already lists.
fn missing_records(segs: &[SegmentFile], scan: &IndexScan) -> io::Result<Vec<IndexLine>> {
    let mut out = Vec::new();
    for seg in segs {
        let from = match &scan.resume {
            None => 0,
            Some((n, _, _)) if seg.number < *n => continue,
            Some((n, rel, end)) if seg.number == *n && seg.rel == *rel => *end,
            Some(_) => 0,
        };
        scan_segment(seg, from, &scan.after, &mut out)?;
    }
    Ok(out)
}

/// Append to `out` the complete records of `seg` from byte `from` on, as index lines, skipping
/// those in `known`. Stops at the first record that is cut short or fails a check (a crash's
/// unfinished write; nothing after it in this segment was acknowledged).
fn scan_segment(
    seg: &SegmentFile,
    from: u64,
    known: &HashSet<(String, u64)>,
    out: &mut Vec<IndexLine>,
) -> io::Result<()> {
    let f = match File::open(&seg.path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let mut r = BufReader::with_capacity(256 * 1024, f);
    r.seek(SeekFrom::Start(from))?;
    let mut pos = from;
    let mut chunk = vec![0u8; 64 * 1024];
    while len.saturating_sub(pos) >= RECORD_PREFIX as u64 {
        let mut prefix = [0u8; RECORD_PREFIX];
        if r.read_exact(&mut prefix).is_err() || !prefix.starts_with(RECORD_MAGIC) {
            break;
        }
        let word = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(prefix.get(i..i + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(b)
        };
        let (head_len, head_crc) = (word(4), word(8));
        let start = pos
            .saturating_add(RECORD_PREFIX as u64)
            .saturating_add(u64::from(head_len));
        if head_len > MAX_RECORD_HEAD || start > len {
            break;
        }
        let mut head = vec![0u8; head_len as usize];
        if r.read_exact(&mut head).is_err() || crc32fast::hash(&head) != head_crc {
            break;
        }
        let Ok(h) = serde_json::from_slice::<RecordHead>(&head) else {
            break;
        };
        let end = start.saturating_add(h.len);
        if end > len
            || h.files
                .iter()
                .any(|f| f.offset.saturating_add(f.bytes) > h.len)
        {
            break;
        }
        let mut files = h.files;
        for f in &mut files {
            f.offset = f.offset.saturating_add(start);
        }
        let line = IndexLine {
            seq: h.seq,
            time: h.time,
            dir: h.dir,
            segment: seg.rel.clone(),
            client: h.client,
            event_type: h.event_type,
            files,
        };
        if known.contains(&line_key(&line)) {
            let Ok(skip) = i64::try_from(h.len) else {
                break;
            };
            r.seek_relative(skip)?;
        } else {
            let mut crc = crc32fast::Hasher::new();
            let mut left = h.len;
            while left > 0 {
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(chunk.len());
                let Some(buf) = chunk.get_mut(..want) else {
                    break;
                };
                if r.read_exact(buf).is_err() {
                    break;
                }
                crc.update(buf);
                left -= want as u64;
            }
            if left > 0 || crc.finalize() != h.crc32 {
                break;
            }
            out.push(line);
        }
        pos = end;
    }
    Ok(())
}

/// Bring `index.jsonl` up to date with the segments when the store opens: cut a torn last line,
/// rewrite the file without damaged lines if there are any, append the records it lacks, flush.
/// Returns the index (open for appending) and the highest seq in it.
fn repair_index(
    root: &Path,
    segs: &[SegmentFile],
    mut index: File,
    path: &Path,
) -> Result<(File, u64), StoreError> {
    let err = |e| io_err(path, e);
    let len = index.metadata().map_err(err)?.len();
    index.seek(SeekFrom::Start(0)).map_err(err)?;
    let scan = scan_index(BufReader::new(&index), false).map_err(err)?;
    let missing = missing_records(segs, &scan).map_err(|e| io_err(root, e))?;
    let max_seq = missing.iter().map(|l| l.seq).fold(scan.max_seq, u64::max);
    let mut text = Vec::new();
    for l in &missing {
        serde_json::to_writer(&mut text, l).map_err(|e| err(io::Error::other(e)))?;
        text.push(b'\n');
    }
    if scan.damaged {
        // Keep the valid lines, in order, then the missing ones; swap the file in atomically.
        index.seek(SeekFrom::Start(0)).map_err(err)?;
        let mut lines = scan_index(BufReader::new(&index), true).map_err(err)?.lines;
        lines.extend(missing);
        sort_commit_order(&mut lines);
        let tmp = root.join(format!("{INDEX_FILE}.tmp"));
        let terr = |e| io_err(&tmp, e);
        let mut w = BufWriter::new(File::create(&tmp).map_err(terr)?);
        for l in &lines {
            serde_json::to_writer(&mut w, l).map_err(|e| terr(io::Error::other(e)))?;
            w.write_all(b"\n").map_err(terr)?;
        }
        let f = w.into_inner().map_err(|e| terr(e.into_error()))?;
        f.sync_all().map_err(terr)?;
        drop(f);
        fs::rename(&tmp, path).map_err(err)?;
        sync_dir(root).map_err(|e| io_err(root, e))?;
        let index = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        return Ok((index, max_seq));
    }
    if scan.good_len < len || !text.is_empty() {
        index.set_len(scan.good_len).map_err(err)?;
        index.write_all(&text).map_err(err)?;
        index.sync_all().map_err(err)?;
    }
    Ok((index, max_seq))
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
    /// CRC-32 of the bytes staged so far (the record header carries the payload's).
    crc: crc32fast::Hasher,
    /// Bytes expected ([`Staging::reserve`]).
    expect: usize,
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

    /// Expect about `bytes` of data (a declared Content-Length): memory for it, at most the spill
    /// threshold (an untrusted length cannot make it allocate more), is reserved when the first
    /// bytes arrive (a head alone allocates nothing), instead of growing and copying the buffer
    /// as the bytes come.
    pub fn reserve(&mut self, bytes: u64) {
        self.expect = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(self.spill_bytes);
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
                if self.mem.capacity() == 0 {
                    self.mem.reserve(self.expect.max(data.len()));
                }
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
        self.crc.update(data);
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
        let mut crc = self.crc.clone();
        crc.update(&meta_bytes);
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
            crc: crc.finalize(),
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
    /// CRC-32 of the data then the meta bytes.
    crc: u32,
}

impl Sealed {
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.line.seq
    }
}

/// A segment made ahead of need: created, filled with zeros, flushed, its directory entry
/// flushed.
struct Prepared {
    date: String,
    number: u64,
    rel: String,
    path: PathBuf,
    file: File,
    zeroed: u64,
}

/// Work for the preparer thread.
enum PrepWork {
    /// Make segment `number` in date directory `date`.
    Make { date: String, number: u64 },
    /// Cut the unused zeros off a segment the commit thread has left.
    Trim { path: PathBuf, len: u64 },
}

/// The preparer thread, seen from the commit thread. Small events are cheap to make durable only
/// when they are written over blocks that already exist: a flush that also grows the file must
/// write its metadata too (see [`ZERO_AHEAD`]). Writing the zeros in line (1 MiB after each
/// batch that reaches the end of the zeros, flushed with it) put a ~3 ms flush into the answer
/// path once per megabyte; on this project's VM a lone writer doing just that had a flush p99 of
/// 2.9-3.2 ms against 0.9-1.0 ms over a file zeroed beforehand. So a thread of its own makes the
/// next segment, zeroed and flushed, before it is needed, and the commit thread switches to it
/// when a small batch would otherwise grow the current one.
struct Preparer {
    tx: Option<mpsc::Sender<PrepWork>>,
    rx: mpsc::Receiver<io::Result<Prepared>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// A `Make` is in progress.
    asked: bool,
    ready: Option<Prepared>,
    /// After a failure (a full disk, say), no new `Make` before this: in line zeros meanwhile,
    /// and one warning rather than one per batch.
    pause_until: Option<std::time::Instant>,
}

impl Preparer {
    fn start(root: PathBuf, bytes: u64) -> io::Result<Preparer> {
        let (tx, work) = mpsc::channel::<PrepWork>();
        let (done, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("alarmscope-prepare".into())
            .spawn(move || {
                while let Ok(w) = work.recv() {
                    match w {
                        PrepWork::Make { date, number } => {
                            if done
                                .send(prepare_segment(&root, bytes, date, number))
                                .is_err()
                            {
                                return;
                            }
                        }
                        PrepWork::Trim { path, len } => trim(&path, len),
                    }
                }
            })?;
        Ok(Preparer {
            tx: Some(tx),
            rx,
            thread: Some(thread),
            asked: false,
            ready: None,
            pause_until: None,
        })
    }

    /// Whether to ask for a segment now: none made or being made, and no pause after a failure.
    fn wants(&self) -> bool {
        !self.asked
            && self.ready.is_none()
            && self
                .pause_until
                .is_none_or(|t| std::time::Instant::now() >= t)
    }

    fn send(&mut self, w: PrepWork) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(w).is_ok())
    }

    /// Take what the thread has finished.
    fn poll(&mut self) {
        while let Ok(r) = self.rx.try_recv() {
            self.asked = false;
            match r {
                Ok(p) => {
                    if let Some(old) = self.ready.replace(p) {
                        discard(old);
                    }
                }
                Err(e) => {
                    tracing::warn!("preparing a segment ahead: {e} (trying again in 10 s)");
                    self.pause_until =
                        Some(std::time::Instant::now() + std::time::Duration::from_secs(10));
                }
            }
        }
    }

    /// Stop the thread after its queued work; remove a segment made but never used.
    fn stop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.poll();
        if let Some(p) = self.ready.take() {
            discard(p);
        }
    }
}

/// Zeros written back at a time while a segment is prepared, and the pause after each.
const PREPARE_CHUNK: u64 = 256 * 1024;
const PREPARE_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Start writing back a range of a file and wait until it is written (data only: no metadata, no
/// cache flush).
fn write_back(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is valid for the
    // borrow of `file`.
    let r = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            off,
            n,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Write `len` zeros (segments zeroed ahead, in line or by the preparer).
fn write_zeros(w: &mut impl Write, len: u64) -> io::Result<()> {
    let mut left = len;
    while left > 0 {
        let n = left.min(ZEROS.len() as u64);
        w.write_all(ZEROS.get(..n as usize).unwrap_or(&[]))?;
        left -= n;
    }
    Ok(())
}

/// Cut a segment's unused zeros off after its records end at `len` (what a reader sees does not
/// change). Best effort.
fn trim(path: &Path, len: u64) {
    let cut = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len));
    if let Err(e) = cut {
        tracing::debug!("{}: {e}", path.display());
    }
}

/// Remove a prepared segment that was never written to.
fn discard(p: Prepared) {
    drop(p.file);
    if let Err(e) = fs::remove_file(&p.path) {
        tracing::debug!("{}: {e}", p.path.display());
    }
}

/// Create segment `number` in directory `date`, write `bytes` of zeros, flush it and its
/// directory entry (and the date directory's, if new).
fn prepare_segment(root: &Path, bytes: u64, date: String, number: u64) -> io::Result<Prepared> {
    let dir = root.join(&date);
    if !dir.is_dir() {
        fs::create_dir_all(&dir)?;
        sync_dir(root)?;
    }
    let name = format!("events-{number:08}.seg");
    let path = dir.join(&name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let filled = (|| -> io::Result<()> {
        // Trickled: a few hundred KiB at a time, each written back before the next (no flush, no
        // metadata), with a pause between, so that the commit thread's flushes never queue
        // behind megabytes of zeros. One flush at the end makes the blocks and the size durable.
        let mut done = 0u64;
        while done < bytes {
            let chunk = (bytes - done).min(PREPARE_CHUNK);
            write_zeros(&mut file, chunk)?;
            write_back(&file, done, chunk)?;
            done += chunk;
            std::thread::sleep(PREPARE_PAUSE);
        }
        file.sync_all()?;
        sync_dir(&dir)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(())
    })();
    if let Err(e) = filled {
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(Prepared {
        rel: format!("{date}/{name}"),
        date,
        number,
        path,
        file,
        zeroed: bytes,
    })
}

/// The segment being appended to.
struct Segment {
    date: String,
    rel: String,
    path: PathBuf,
    /// Buffered: a batch of small events goes out in a few writes; flushed before each sync.
    file: BufWriter<File>,
    /// End of the records (the next one starts here).
    len: u64,
    /// File size: records, then zeros written ahead of them ([`ZERO_AHEAD`]).
    zeroed: u64,
    /// Written since its last flush.
    dirty: bool,
}

/// The group commit: appends each batch to the segment, flushes it once, then indexes the batch
/// and reports it committed.
struct CommitWriter {
    root: PathBuf,
    fsync: bool,
    max_batch: usize,
    segment_bytes: u64,
    /// Date directories that exist.
    dates: BTreeSet<String>,
    current: Option<Segment>,
    /// Number of the newest segment (new ones get higher numbers: creation order).
    last_segment: u64,
    index: File,
    index_path: PathBuf,
    /// Index lines written since the index was last flushed.
    index_dirty: bool,
    /// Makes zeroed segments ahead of need (none without fsync or with `prepared_bytes` 0).
    prep: Option<Preparer>,
    /// Number of the newest segment written to.
    last_used: u64,
}

impl CommitWriter {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
        if let Some((path, len)) = self.current.take().and_then(|s| self.leave(s)) {
            trim(&path, len);
        }
        if let Some(p) = self.prep.as_mut() {
            p.stop();
        }
        self.flush_index();
    }

    /// Before a batch of small events (`bytes` in all) for `date`: if it would not fit in the
    /// current segment's zeros, move on to the prepared segment when one is ready (the old one
    /// is complete and flushed; its unused zeros are cut off in the background). A prepared
    /// segment for another date, or numbered before a segment made since it was asked for, is
    /// removed: segment numbers must follow the commit order.
    fn use_prepared(&mut self, date: &str, bytes: u64) {
        let Some(mut prep) = self.prep.take() else {
            return;
        };
        prep.poll();
        let fits = self
            .current
            .as_ref()
            .is_some_and(|s| s.date == date && s.len.saturating_add(bytes) <= s.zeroed);
        if !fits {
            if let Some(p) = prep.ready.take() {
                if p.date == date && p.number > self.last_used {
                    let old = self.current.replace(Segment {
                        date: p.date,
                        rel: p.rel,
                        path: p.path,
                        file: BufWriter::with_capacity(256 * 1024, p.file),
                        len: 0,
                        zeroed: p.zeroed,
                        dirty: false,
                    });
                    self.last_used = p.number;
                    if let Some((path, len)) = old.and_then(|o| self.leave(o)) {
                        prep.send(PrepWork::Trim { path, len });
                    }
                } else {
                    discard(p);
                }
            }
        }
        self.prep = Some(prep);
    }

    /// Have the next segment made for `date`, unless one is made or being made.
    fn ask_prepared(&mut self, date: &str) {
        let Some(prep) = self.prep.as_mut() else {
            return;
        };
        if !prep.wants() {
            return;
        }
        let number = self.last_segment.saturating_add(1);
        if prep.send(PrepWork::Make {
            date: date.to_string(),
            number,
        }) {
            self.last_segment = number;
            prep.asked = true;
        }
    }

    /// Flush the index (not needed for durability, see the module docs: it keeps the next
    /// start's scan of the segments short).
    fn flush_index(&mut self) {
        if self.fsync && self.index_dirty {
            match self.index.sync_data() {
                Ok(()) => self.index_dirty = false,
                Err(e) => tracing::warn!("{}: {e}", self.index_path.display()),
            }
        }
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
            self.flush_index();
        }
        let dir = self.root.join(date);
        if !self.dates.contains(date) {
            fs::create_dir_all(&dir)?;
            if self.fsync {
                sync_dir(&self.root)?;
            }
            self.dates.insert(date.to_string());
        }
        let number = seq.max(self.last_segment.saturating_add(1));
        let name = format!("events-{number:08}.seg");
        let path = dir.join(&name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        self.last_segment = number;
        self.last_used = number;
        self.current = Some(Segment {
            date: date.to_string(),
            rel: format!("{date}/{name}"),
            path,
            file: BufWriter::with_capacity(256 * 1024, file),
            len: 0,
            zeroed: 0,
            dirty: false,
        });
        Ok(true)
    }

    /// Append one event (header, data, meta) to the current segment; offsets in its line become
    /// absolute.
    fn append(&mut self, job: &mut Job, new_dirs: &mut BTreeSet<String>) -> io::Result<()> {
        if self.segment_for(&job.sealed.date, job.sealed.line.seq)? {
            new_dirs.insert(job.sealed.date.clone());
        }
        let Some(seg) = self.current.as_mut() else {
            return Err(io::Error::other("no segment"));
        };
        seg.dirty = true;
        let sealed = &mut job.sealed;
        let total = sealed.data_len.saturating_add(sealed.meta.len() as u64);
        let head = RecordHead {
            seq: sealed.line.seq,
            time: sealed.line.time,
            dir: sealed.line.dir.clone(),
            client: sealed.line.client.clone(),
            event_type: sealed.line.event_type.clone(),
            files: sealed.line.files.clone(),
            len: total,
            crc32: sealed.crc,
        };
        let head = serde_json::to_vec(&head).map_err(io::Error::other)?;
        let head_len = u32::try_from(head.len())
            .ok()
            .filter(|n| *n <= MAX_RECORD_HEAD)
            .ok_or_else(|| io::Error::other("record header too large"))?;
        let mut prefix = [0u8; RECORD_PREFIX];
        prefix[..4].copy_from_slice(RECORD_MAGIC);
        prefix[4..8].copy_from_slice(&head_len.to_le_bytes());
        prefix[8..].copy_from_slice(&crc32fast::hash(&head).to_le_bytes());
        let start = seg
            .len
            .saturating_add(RECORD_PREFIX as u64)
            .saturating_add(u64::from(head_len));
        let result = (|| -> io::Result<()> {
            seg.file.write_all(&prefix)?;
            seg.file.write_all(&head)?;
            match &mut sealed.data {
                // A large body (a picture) goes straight to the file rather than through a copy
                // in the buffer.
                Payload::Memory(v) if v.len() >= DIRECT_WRITE => {
                    seg.file.flush()?;
                    seg.file.get_mut().write_all(v)?;
                }
                Payload::Memory(v) => seg.file.write_all(v)?,
                Payload::Spooled(s) => {
                    s.file.seek(SeekFrom::Start(0))?;
                    let n = io::copy(&mut (&s.file).take(sealed.data_len), &mut seg.file)?;
                    if n != sealed.data_len {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "spool file shorter than staged",
                        ));
                    }
                }
            }
            seg.file.write_all(&sealed.meta)
        })();
        if let Err(e) = result {
            // The segment's end is now unknown: never append after it.
            if let Some(seg) = self.current.take() {
                let _ = self.flush_segment(seg);
            }
            return Err(e);
        }
        seg.len = start.saturating_add(total);
        sealed.line.segment = seg.rel.clone();
        // The bytes are with the segment now: free the memory, remove the spool file, before the
        // event is reported.
        sealed.data = Payload::Memory(Vec::new());
        sealed.meta = Vec::new();
        for f in &mut sealed.line.files {
            f.offset = f.offset.saturating_add(start);
        }
        Ok(())
    }

    /// Stop writing to a segment: flush it; if that worked and zeros are left after its records,
    /// the segment and where to cut them off.
    fn leave(&self, seg: Segment) -> Option<(PathBuf, u64)> {
        let (len, zeroed) = (seg.len, seg.zeroed);
        let path = seg.path.clone();
        (self.flush_segment(seg).is_ok() && zeroed > len).then_some((path, len))
    }

    fn flush_segment(&self, mut seg: Segment) -> io::Result<()> {
        seg.file.flush()?;
        if self.fsync && seg.dirty {
            seg.file.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// After a batch that made the current segment grow: unless the batch was large, write
    /// [`ZERO_AHEAD`] zeros after the records (flushed with the batch), so that the next batches
    /// are written over them without changing the file's size.
    fn zero_ahead(&mut self, start: Option<(String, u64)>) -> io::Result<()> {
        let Some(seg) = self.current.as_mut() else {
            return Ok(());
        };
        if !self.fsync || seg.len <= seg.zeroed {
            return Ok(());
        }
        let from = match start {
            Some((rel, len)) if rel == seg.rel => len,
            _ => 0,
        };
        seg.zeroed = seg.len;
        if seg.len.saturating_sub(from) > ZERO_AHEAD_MAX_BATCH {
            return Ok(());
        }
        write_zeros(&mut seg.file, ZERO_AHEAD)?;
        seg.zeroed = seg.len.saturating_add(ZERO_AHEAD);
        seg.file.seek(SeekFrom::Start(seg.len))?;
        Ok(())
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        let bytes = batch
            .iter()
            .map(|j| {
                j.sealed
                    .data_len
                    .saturating_add(j.sealed.meta.len() as u64)
                    .saturating_add(RECORD_HEAD_ROOM)
            })
            .fold(0u64, u64::saturating_add);
        if let Some(first) = batch.first() {
            if bytes <= ZERO_AHEAD_MAX_BATCH {
                self.use_prepared(&first.sealed.date, bytes);
            }
        }
        let start = self.current.as_ref().map(|s| (s.rel.clone(), s.len));
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
        if self.prep.as_ref().is_some_and(Preparer::wants) {
            if let Some(date) = self.current.as_ref().map(|s| s.date.clone()) {
                self.ask_prepared(&date);
            }
        }
        if ok.is_empty() {
            return;
        }
        // 2. One flush makes the batch durable: its records (headers, data, meta) and any new
        //    directory entries.
        let zeroed = self.zero_ahead(start);
        let synced = (|| -> io::Result<()> {
            zeroed?;
            if let Some(seg) = self.current.as_mut() {
                seg.file.flush()?;
                if self.fsync && seg.dirty {
                    seg.file.get_ref().sync_data()?;
                    seg.dirty = false;
                }
            }
            if self.fsync {
                for d in &new_dirs {
                    sync_dir(&self.root.join(d))?;
                }
            }
            Ok(())
        })();
        if let Err(e) = synced {
            let msg = format!("{}: {e}", self.root.display());
            for job in ok {
                (job.done)(Err(msg.clone()));
            }
            // Never append after data whose flush failed.
            self.current = None;
            return;
        }
        // 3. Index the batch (written, not flushed: the records are the durable truth and every
        //    reader adds what the index lacks), then report it committed.
        let mut buf = Vec::with_capacity(ok.len() * 512);
        for job in &ok {
            if serde_json::to_writer(&mut buf, &job.sealed.line).is_ok() {
                buf.push(b'\n');
            }
        }
        match self.index.write_all(&buf) {
            Ok(()) => self.index_dirty = true,
            Err(e) => tracing::warn!(
                "{}: {e} (the events are stored; the index is rebuilt at the next start)",
                self.index_path.display()
            ),
        }
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
}

/// Read a store's index: every valid line of `index.jsonl`, then the records of the segments it
/// lacks (after a machine crash, before the listener's next start has written them back; see the
/// module docs), in commit order. For tools and tests; reads, never writes.
pub fn read_index(dir: &Path) -> io::Result<Vec<IndexLine>> {
    let scan = match File::open(dir.join(INDEX_FILE)) {
        Ok(f) => scan_index(BufReader::new(f), true)?,
        // A lost index: the segments alone tell (no segments either: not a store).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (segs, _) = list_segments(dir).map_err(|_| e)?;
            if segs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no index and no segments", dir.display()),
                ));
            }
            IndexScan::default()
        }
        Err(e) => return Err(e),
    };
    let (segs, _) = list_segments(dir)?;
    let mut missing = missing_records(&segs, &scan)?;
    let damaged = scan.damaged;
    let mut lines = scan.lines;
    lines.append(&mut missing);
    if damaged {
        sort_commit_order(&mut lines);
    }
    Ok(lines)
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
