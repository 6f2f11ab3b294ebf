//! Durable event store for `alarmscope listen`: every event a device pushed, with its headers,
//! decoded metadata and every body part, written and flushed to disk before the listener answers
//! 200 OK.
//!
//! Synchronous code with a small API; the listener drives it from tokio (staging writes go to the
//! page cache from the connection task, [`Staging::seal`] runs on the blocking pool, and
//! [`Store::commit`] hands the event to one group-commit thread).
//!
//! # Layout (see docs/listen.md)
//!
//! ```text
//! DIR/index.jsonl                                   one JSON line per committed event
//! DIR/YYYY-MM-DD/<seq>-<device>-<eventType>/meta.json
//! DIR/YYYY-MM-DD/<seq>-<device>-<eventType>/p<k>-<sanitised part name>   (multipart)
//! DIR/YYYY-MM-DD/<seq>-<device>-<eventType>/body.<xml|json|bin>          (plain body)
//! DIR/YYYY-MM-DD/.<seq>.tmp/                        staging (removed on the next start)
//! ```
//!
//! # Durability protocol
//! 1. Parts are streamed into files of the staging directory `DATE/.<seq>.tmp/`.
//! 2. [`Staging::seal`]: flush and `fdatasync` every part file, write `meta.json` and `fsync` it,
//!    `fsync` the staging directory (its entries). Concurrent events seal in parallel so the file
//!    system batches their journal commits.
//! 3. The commit thread takes every sealed event waiting (a batch), renames each staging directory
//!    to its final name, `fsync`s each date directory once, appends one line per event to
//!    `index.jsonl`, `fdatasync`s the index once, and only then reports success for the whole
//!    batch (group commit). The listener answers 200 OK after that report.
//!
//! So an index line exists on disk only for a complete event; a crash between steps leaves at
//! most a staging directory (deleted on the next open) or a renamed directory with no index line
//! (never acknowledged; kept, and skipped when numbering). A torn last index line (no final
//! newline) is cut off on the next open.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use serde::Serialize;

use crate::extract::sanitize_file_name;
use crate::isapi::{PartHeader, PartSink};
use crate::time::Timestamp;

/// Name of the index file in the store directory.
pub const INDEX_FILE: &str = "index.jsonl";
/// Name of the metadata file in each event directory.
pub const META_FILE: &str = "meta.json";

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
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            fsync: true,
            max_batch: 512,
        }
    }
}

/// One file of a stored event, as the index and meta.json list it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StoredFile {
    /// File name inside the event directory.
    pub file: String,
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

/// One line of `index.jsonl`: where a committed event's files are.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct IndexLine {
    pub seq: u64,
    /// Receive time, seconds since the Unix epoch.
    pub time: f64,
    /// Event directory relative to the store root, `/`-separated.
    pub dir: String,
    pub client: String,
    pub event_type: Option<String>,
    /// `meta.json` first, then the body or its parts in order.
    pub files: Vec<StoredFile>,
}

/// A committed event: where it is.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: u64,
    /// Absolute event directory.
    pub dir: PathBuf,
    /// Relative directory as in the index.
    pub rel_dir: String,
    pub files: Vec<StoredFile>,
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
    /// Date directories known to exist durably.
    dates: Mutex<BTreeSet<String>>,
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
    /// line, remove staging left by a crash, continue the sequence numbers, start the commit
    /// thread.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let root = dir.canonicalize().map_err(|e| io_err(dir, e))?;
        let probe = root.join(".alarmscope-probe");
        File::create(&probe).map_err(|e| io_err(&root, e))?;
        let _ = fs::remove_file(&probe);
        let index_path = root.join(INDEX_FILE);
        let mut index = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&index_path)
            .map_err(|e| io_err(&index_path, e))?;
        let max_indexed = repair_index(&mut index, &index_path)?;
        let (max_dir, dates) = scan_dirs(&root)?;
        let next = max_indexed.max(max_dir).saturating_add(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let inner = Arc::new(Inner {
            root: root.clone(),
            opts: opts.clone(),
            next_seq: AtomicU64::new(next),
            dates: Mutex::new(dates),
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(None),
        });
        let writer = CommitWriter {
            root,
            index,
            index_path,
            fsync: opts.fsync,
            max_batch: opts.max_batch.max(1),
        };
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

    /// Start storing an event received at `received` from `client` ("ip:port"): creates its
    /// staging directory.
    pub fn begin(&self, received: Timestamp, client: &str) -> io::Result<Staging> {
        let seq = self.inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let date = date_of(received);
        let date_dir = self.inner.root.join(&date);
        self.ensure_date_dir(&date, &date_dir)?;
        let tmp = date_dir.join(format!(".{seq:08}.tmp"));
        fs::create_dir(&tmp)?;
        Ok(Staging {
            seq,
            received,
            client: client.to_string(),
            date,
            tmp,
            files: Vec::new(),
            open: Vec::new(),
            error: None,
            fsync: self.inner.opts.fsync,
        })
    }

    fn ensure_date_dir(&self, date: &str, date_dir: &Path) -> io::Result<()> {
        let mut dates = self
            .inner
            .dates
            .lock()
            .map_err(|_| io::Error::other("store lock poisoned"))?;
        if dates.contains(date) {
            return Ok(());
        }
        fs::create_dir_all(date_dir)?;
        if self.inner.opts.fsync {
            sync_dir(&self.inner.root)?;
        }
        dates.insert(date.to_string());
        Ok(())
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

/// Remove staging directories; return the highest seq found in event directory names and the
/// date directories present.
fn scan_dirs(root: &Path) -> Result<(u64, BTreeSet<String>), StoreError> {
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
        for ev in inner.flatten() {
            let n = ev.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') && n.ends_with(".tmp") {
                let _ = fs::remove_dir_all(ev.path());
                continue;
            }
            if let Some(seq) = n.split('-').next().and_then(|s| s.parse::<u64>().ok()) {
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

/// Which stream an open file receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Part(usize),
    Body,
    /// Ended; kept open only to be flushed and synced at seal.
    Closed,
}

struct OpenPart {
    key: Key,
    slot: usize,
    w: BufWriter<File>,
}

/// An event being received: its staging directory and the files streamed into it. Implements
/// [`PartSink`] for multipart bodies; plain bodies go through [`Staging::write_body`].
pub struct Staging {
    seq: u64,
    received: Timestamp,
    client: String,
    date: String,
    tmp: PathBuf,
    files: Vec<StoredFile>,
    open: Vec<OpenPart>,
    error: Option<String>,
    fsync: bool,
}

/// File name for part `index` of a multipart body: `p<index>-<sanitised filename or name>`, with
/// an extension from the content type when the name has none.
pub fn part_file_name(header: &PartHeader) -> String {
    let base = header
        .filename
        .as_deref()
        .or(header.name.as_deref())
        .unwrap_or("part");
    let mut name = sanitize_file_name(base);
    if !name.contains('.') {
        name.push('.');
        name.push_str(extension_for(header.content_type.as_deref()));
    }
    format!("p{}-{}", header.index, name)
}

/// Extension for a content type (plain bodies and unnamed parts).
pub fn extension_for(content_type: Option<&str>) -> &'static str {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    if ct.contains("jpeg") || ct.contains("jpg") {
        "jpg"
    } else if ct.contains("png") {
        "png"
    } else if ct.contains("xml") {
        "xml"
    } else if ct.contains("json") {
        "json"
    } else {
        "bin"
    }
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

    fn fail(&mut self, e: String) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn create(&mut self, key: Key, file: StoredFile) {
        let path = self.tmp.join(&file.file);
        // create_new: a duplicate sanitised name must never overwrite an earlier part.
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => {
                let slot = self.files.len();
                self.files.push(file);
                self.open.push(OpenPart {
                    key,
                    slot,
                    w: BufWriter::with_capacity(64 * 1024, f),
                });
            }
            Err(e) => self.fail(format!("{}: {e}", path.display())),
        }
    }

    fn write_key(&mut self, key: Key, data: &[u8]) {
        let Some(p) = self.open.iter_mut().find(|p| p.key == key) else {
            return;
        };
        let slot = p.slot;
        if let Err(e) = p.w.write_all(data) {
            self.fail(format!("writing {key:?}: {e}"));
            return;
        }
        if let Some(f) = self.files.get_mut(slot) {
            f.bytes = f.bytes.saturating_add(data.len() as u64);
        }
    }

    /// Append bytes of a plain (non-multipart) body; the file `body.<ext>` is created on the
    /// first call.
    pub fn write_body(&mut self, content_type: Option<&str>, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if !self.open.iter().any(|p| p.key == Key::Body) {
            let file = StoredFile {
                file: format!("body.{}", extension_for(content_type)),
                bytes: 0,
                part: None,
                name: None,
                filename: None,
                content_type: content_type.map(str::to_string),
            };
            self.create(Key::Body, file);
        }
        self.write_key(Key::Body, data);
    }

    /// Flush every file, write `meta.json` (the caller's `meta` object plus `seq`, `dir` and
    /// `files`), sync them and the staging directory. Blocking: run it off the async threads.
    /// `event_type` and `device` name the final directory.
    pub fn seal(
        mut self,
        meta: serde_json::Map<String, serde_json::Value>,
        event_type: Option<&str>,
        device: &str,
    ) -> io::Result<Sealed> {
        if let Some(e) = self.error.take() {
            let _ = fs::remove_dir_all(&self.tmp);
            return Err(io::Error::other(e));
        }
        for p in self.open.drain(..) {
            let f = p.w.into_inner().map_err(|e| e.into_error())?;
            if self.fsync {
                f.sync_data()?;
            }
        }
        let label = |s: &str| {
            let mut n = sanitize_file_name(s);
            n.truncate(40);
            n
        };
        let final_name = format!(
            "{:08}-{}-{}",
            self.seq,
            label(device),
            label(event_type.unwrap_or("unknown"))
        );
        let rel_dir = format!("{}/{}", self.date, final_name);
        let mut files = Vec::with_capacity(self.files.len() + 1);
        let mut meta = meta;
        meta.insert("seq".into(), self.seq.into());
        meta.insert("dir".into(), rel_dir.clone().into());
        meta.insert(
            "files".into(),
            serde_json::to_value(&self.files).unwrap_or_default(),
        );
        let bytes = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        let meta_path = self.tmp.join(META_FILE);
        let mut f = File::create(&meta_path)?;
        f.write_all(&bytes)?;
        f.write_all(b"\n")?;
        if self.fsync {
            f.sync_data()?;
            sync_dir(&self.tmp)?;
        }
        files.push(StoredFile {
            file: META_FILE.into(),
            bytes: (bytes.len() as u64).saturating_add(1),
            part: None,
            name: None,
            filename: None,
            content_type: Some("application/json".into()),
        });
        files.append(&mut self.files);
        let final_dir = self.tmp.with_file_name(&final_name);
        Ok(Sealed {
            line: IndexLine {
                seq: self.seq,
                time: self.received.as_secs_f64(),
                dir: rel_dir,
                client: self.client.clone(),
                event_type: event_type.map(str::to_string),
                files,
            },
            tmp: std::mem::take(&mut self.tmp),
            final_dir,
        })
    }

    /// Give up on this event: remove its staging directory.
    pub fn abort(mut self) {
        self.open.clear();
        let _ = fs::remove_dir_all(&self.tmp);
        self.tmp = PathBuf::new();
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Dropped without seal/abort (connection reset mid-body): do not leave staging behind.
        if !self.tmp.as_os_str().is_empty() {
            self.open.clear();
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

impl PartSink for Staging {
    fn part_start(&mut self, header: &PartHeader) {
        let file = StoredFile {
            file: part_file_name(header),
            bytes: 0,
            part: Some(header.index),
            name: header.name.clone(),
            filename: header.filename.clone(),
            content_type: header.content_type.clone(),
        };
        self.create(Key::Part(header.index), file);
    }

    fn part_data(&mut self, index: usize, data: &[u8]) {
        self.write_key(Key::Part(index), data);
    }

    fn part_end(&mut self, index: usize, _bytes: u64) {
        // Keep the file open until seal (flush + fdatasync together); only drop the index so a
        // repeated index cannot append to it.
        if let Some(p) = self.open.iter_mut().find(|p| p.key == Key::Part(index)) {
            p.key = Key::Closed;
        }
    }
}

/// An event whose files are all on disk, waiting for the group commit.
pub struct Sealed {
    line: IndexLine,
    tmp: PathBuf,
    final_dir: PathBuf,
}

impl Sealed {
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.line.seq
    }
}

struct CommitWriter {
    root: PathBuf,
    index: File,
    index_path: PathBuf,
    fsync: bool,
    max_batch: usize,
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
    }

    fn commit_batch(&mut self, batch: Vec<Job>) {
        // 1. Renames; events that fail here are reported and left out of the index.
        let mut ok: Vec<Job> = Vec::with_capacity(batch.len());
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        for job in batch {
            match fs::rename(&job.sealed.tmp, &job.sealed.final_dir) {
                Ok(()) => {
                    if let Some(p) = job.sealed.final_dir.parent() {
                        dirs.insert(p.to_path_buf());
                    }
                    ok.push(job);
                }
                Err(e) => {
                    let msg = format!("{}: {e}", job.sealed.final_dir.display());
                    let _ = fs::remove_dir_all(&job.sealed.tmp);
                    (job.done)(Err(msg));
                }
            }
        }
        if ok.is_empty() {
            return;
        }
        // 2. Directory entries durable, then the index lines, then one fdatasync of the index.
        let result = (|| -> io::Result<()> {
            if self.fsync {
                for d in &dirs {
                    sync_dir(d)?;
                }
            }
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
                    let Sealed {
                        line, final_dir, ..
                    } = job.sealed;
                    let ev = StoredEvent {
                        seq: line.seq,
                        dir: final_dir,
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
        let _ = &self.root;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(index: usize, name: &str, filename: Option<&str>, ct: &str) -> PartHeader {
        PartHeader {
            index,
            name: Some(name.into()),
            filename: filename.map(str::to_string),
            content_type: Some(ct.into()),
        }
    }

    // 2024-02-29 12:34:56 UTC
    const T: Timestamp = Timestamp(1_709_210_096_000_000_000);

    #[test]
    fn multipart_event_is_committed_with_exact_files_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
        st.part_start(&hdr(0, "anpr.xml", None, "application/xml"));
        st.part_data(0, b"<a>");
        st.part_data(0, b"</a>");
        st.part_end(0, 7);
        st.part_start(&hdr(
            1,
            "licensePlatePicture.jpg",
            Some("licensePlatePicture.jpg"),
            "image/jpeg",
        ));
        st.part_data(1, &[0xff, 0xd8, 0x00, 0xff, 0xd9]);
        st.part_end(1, 5);
        let mut meta = serde_json::Map::new();
        meta.insert("client".into(), "10.0.0.5:5000".into());
        let sealed = st.seal(meta, Some("ANPR"), "10.0.0.5").unwrap();
        let ev = store.commit_wait(sealed).unwrap();
        assert_eq!(ev.seq, 1);
        assert_eq!(ev.rel_dir, "2024-02-29/00000001-10.0.0.5-ANPR");
        let d = dir.path().join("2024-02-29/00000001-10.0.0.5-ANPR");
        assert_eq!(fs::read(d.join("p0-anpr.xml")).unwrap(), b"<a></a>");
        assert_eq!(
            fs::read(d.join("p1-licensePlatePicture.jpg")).unwrap(),
            [0xff, 0xd8, 0x00, 0xff, 0xd9]
        );
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(d.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["client"], "10.0.0.5:5000");
        assert_eq!(meta["seq"], 1);
        let idx = read_index(dir.path()).unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(idx[0].dir, "2024-02-29/00000001-10.0.0.5-ANPR");
        let names: Vec<_> = idx[0]
            .files
            .iter()
            .map(|f| (f.file.as_str(), f.part))
            .collect();
        assert_eq!(
            names,
            [
                ("meta.json", None),
                ("p0-anpr.xml", Some(0)),
                ("p1-licensePlatePicture.jpg", Some(1))
            ]
        );
        assert_eq!(idx[0].files[1].bytes, 7);
        assert_eq!(idx[0].files[2].bytes, 5);
        // No staging left.
        let left: Vec<_> = fs::read_dir(dir.path().join("2024-02-29"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1);
        store.close();
    }

    #[test]
    fn hostile_part_names_stay_inside_the_event_directory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
        st.part_start(&hdr(0, "x", Some("../../../../etc/passwd"), "image/jpeg"));
        st.part_data(0, b"evil");
        st.part_end(0, 4);
        st.part_start(&hdr(1, "x", Some("/abs/path.jpg"), "image/jpeg"));
        st.part_data(1, b"abs");
        st.part_end(1, 3);
        let ev = store
            .commit_wait(
                st.seal(Default::default(), Some("../VMD"), "10.0.0.5/..")
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(ev.rel_dir, "2024-02-29/00000001-10.0.0.5_..-_VMD");
        let files: Vec<&str> = ev.files.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(
            files,
            ["meta.json", "p0-_.._.._.._etc_passwd", "p1-_abs_path.jpg"]
        );
        assert_eq!(
            fs::read(ev.dir.join("p0-_.._.._.._etc_passwd")).unwrap(),
            b"evil"
        );
        assert!(!dir.path().join("etc").exists());
        store.close();
    }

    #[test]
    fn plain_body_and_sequence_continues_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
            for _ in 0..3 {
                let mut st = store.begin(T, "[fd00::1]:80").unwrap();
                st.write_body(Some("application/json"), b"{\"a\":");
                st.write_body(Some("application/json"), b"1}");
                let ev = store
                    .commit_wait(st.seal(Default::default(), None, "fd00::1").unwrap())
                    .unwrap();
                assert_eq!(fs::read(ev.dir.join("body.json")).unwrap(), b"{\"a\":1}");
            }
            store.close();
        }
        // A crash left a staging directory and a torn index line.
        fs::create_dir(dir.path().join("2024-02-29/.00000009.tmp")).unwrap();
        let mut idx = OpenOptions::new()
            .append(true)
            .open(dir.path().join(INDEX_FILE))
            .unwrap();
        idx.write_all(b"{\"seq\":4,\"ti").unwrap();
        drop(idx);
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.next_seq(), 4);
        assert!(!dir.path().join("2024-02-29/.00000009.tmp").exists());
        let text = fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        let st = store.begin(T, "1.2.3.4:1").unwrap();
        let ev = store
            .commit_wait(st.seal(Default::default(), Some("IO"), "1.2.3.4").unwrap())
            .unwrap();
        assert_eq!(ev.rel_dir, "2024-02-29/00000004-1.2.3.4-IO");
        assert_eq!(read_index(dir.path()).unwrap().len(), 4);
        store.close();
    }

    #[test]
    fn duplicate_part_names_do_not_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
        // Same index sent twice would sanitise to the same name: the second is refused and the
        // event is not acknowledged.
        st.part_start(&hdr(0, "a.jpg", None, "image/jpeg"));
        st.part_end(0, 0);
        st.part_start(&hdr(0, "a.jpg", None, "image/jpeg"));
        assert!(st.error().is_some());
        assert!(st.seal(Default::default(), None, "x").is_err());
        store.close();
    }

    #[test]
    fn dropped_staging_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut st = store.begin(T, "10.0.0.5:5000").unwrap();
        st.write_body(None, b"abc");
        drop(st);
        assert_eq!(
            fs::read_dir(dir.path().join("2024-02-29")).unwrap().count(),
            0
        );
        store.close();
    }

    #[test]
    fn unwritable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plainfile");
        fs::write(&file, b"x").unwrap();
        let err = Store::open(&file.join("sub"), StoreOptions::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("plainfile"), "{err}");
    }
}
