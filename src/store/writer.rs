//! The commit writer: one thread that appends each batch of sealed events to the current segment,
//! makes it durable with one flush, indexes it and only then reports its events committed (the
//! durability protocol of the module docs).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::mpsc;

use super::preparer::{discard, trim, write_zeros, PrepWork, Preparer};
use super::staging::{Payload, Sealed};
use super::{
    date_of, sync_dir, CommitError, RecordHead, StoreOptions, StoredEvent, MAX_RECORD_HEAD,
    RECORD_MAGIC, RECORD_PREFIX,
};
use crate::time::Timestamp;

/// Zeros written ahead of the records when a batch of small events makes the segment grow and no
/// prepared segment is ready (see [`Preparer`], the usual way).
/// Appending allocates blocks and changes the file's size, so its `fdatasync` must also write that
/// metadata (on a journalling file system: commit the journal, which waits for everything else it
/// holds; this project's VM runs ext4 without a journal, where the inode and allocation records
/// are written synchronously, one more round trip). On a busy disk we measured 4 ms for such a
/// flush against 0.2 ms for the same bytes written over blocks that already exist. So small
/// events are written over zeros flushed earlier, and only one batch in `ZERO_AHEAD` bytes pays
/// for the metadata. Readers stop at the zeros like at any unfinished record.
pub(super) const ZERO_AHEAD: u64 = 1 << 20;
/// A batch larger than this (pictures at full rate) just appends: zeros ahead would double what
/// the disk writes when its bandwidth, not the metadata, is the limit.
const ZERO_AHEAD_MAX_BATCH: u64 = 256 * 1024;
/// Room counted for a record's prefix and header when deciding whether a batch fits in a
/// segment's zeros (a header lists the event's files; a few hundred bytes).
const RECORD_HEAD_ROOM: u64 = 4096;
/// Event data at least this large is written to the segment directly, not through its buffer.
const DIRECT_WRITE: usize = 16 * 1024;

/// Called once an event is durable, or could not be made so.
type Done = Box<dyn FnOnce(Result<StoredEvent, CommitError>) + Send>;

/// An event queued for the group commit.
pub(super) struct Job {
    pub(super) sealed: Sealed,
    pub(super) done: Done,
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
pub(super) struct CommitWriter {
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
    /// The writer of the store at `root` (its index open for appending at `index_path`), after
    /// the segments up to `last_segment` and the date directories `dates` found at open; starts
    /// the preparer when `opts` asks for one.
    pub(super) fn new(
        root: PathBuf,
        opts: &StoreOptions,
        dates: BTreeSet<String>,
        last_segment: u64,
        index: File,
        index_path: PathBuf,
    ) -> io::Result<CommitWriter> {
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
            writer.prep = Some(Preparer::start(writer.root.clone(), opts.prepared_bytes)?);
            // The first events will most likely be today's.
            writer.ask_prepared(&date_of(Timestamp::now()));
        }
        Ok(writer)
    }

    /// Commit batches from `rx` until every sender is gone, then leave the segment and flush.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Job>) {
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
                Err(e) => (job.done)(Err(CommitError::Io {
                    root: self.root.clone(),
                    error: std::sync::Arc::new(e),
                })),
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
            let err = CommitError::Io {
                root: self.root.clone(),
                error: std::sync::Arc::new(e),
            };
            for job in ok {
                (job.done)(Err(err.clone()));
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
