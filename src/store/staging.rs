//! Staging: an event's bytes while it is received, in memory or past the spill threshold in a
//! spool file, then sealed with its `meta.json` for the commit thread ([`super::writer`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use super::{date_of, IndexLine, StoredFile, META_FILE};
use crate::extract::{extension_for, part_base_name, sanitize_file_name};
use crate::isapi::{PartHeader, PartSink};
use crate::time::Timestamp;

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

/// Why an event could not be staged (it is then not acknowledged).
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// The same part index came twice: its file would shadow the earlier part's.
    #[error("duplicate part file name {file}")]
    DuplicatePart { file: String },
    /// Writing to memory or the spool file failed.
    #[error("staging event {seq}: {source}")]
    Spool { seq: u64, source: io::Error },
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
    /// The bytes while they fit in memory (the store's tests check how much it reserves).
    pub(super) mem: Vec<u8>,
    spill: Option<(PathBuf, BufWriter<File>)>,
    /// Bytes staged so far (memory or spool).
    len: u64,
    files: Vec<StoredFile>,
    /// The file receiving bytes now, and its slot in `files`.
    current: Option<(Key, usize)>,
    error: Option<StagingError>,
    /// CRC-32 of the bytes staged so far (the record header carries the payload's).
    crc: crc32fast::Hasher,
    /// Bytes expected ([`Staging::reserve`]).
    expect: usize,
}

impl Staging {
    /// An empty event `seq` from `client`, spooled to `spool_dir` past `spill_bytes`.
    pub(super) fn new(
        seq: u64,
        received: Timestamp,
        client: &str,
        spool_dir: PathBuf,
        spill_bytes: usize,
    ) -> Staging {
        Staging {
            seq,
            received,
            client: client.to_string(),
            spool_dir,
            spill_bytes,
            mem: Vec::new(),
            spill: None,
            len: 0,
            files: Vec::new(),
            current: None,
            error: None,
            crc: crc32fast::Hasher::new(),
            expect: 0,
        }
    }

    /// Sequence number of this event.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The first write error, if any (the event then cannot be acknowledged).
    pub fn error(&self) -> Option<&StagingError> {
        self.error.as_ref()
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

    fn fail(&mut self, e: StagingError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn start_file(&mut self, key: Key, mut file: StoredFile) {
        if self.files.iter().any(|f| f.file == file.file) {
            // Same part index sent twice: it must never shadow the earlier part.
            self.fail(StagingError::DuplicatePart {
                file: file.file.clone(),
            });
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
            self.fail(StagingError::Spool {
                seq: self.seq,
                source: e,
            });
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
pub(super) struct SpoolFile {
    path: PathBuf,
    pub(super) file: File,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Where a sealed event's bytes wait for the commit thread.
pub(super) enum Payload {
    Memory(Vec<u8>),
    Spooled(SpoolFile),
}

/// An event complete in memory (or spool), waiting for the group commit.
pub struct Sealed {
    pub(super) line: IndexLine,
    /// UTC date of the event (its segment's directory).
    pub(super) date: String,
    pub(super) data: Payload,
    pub(super) data_len: u64,
    pub(super) meta: Vec<u8>,
    /// CRC-32 of the data then the meta bytes.
    pub(super) crc: u32,
}

impl Sealed {
    /// Sequence number.
    pub fn seq(&self) -> u64 {
        self.line.seq
    }
}
