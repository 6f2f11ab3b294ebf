//! The order of the `--json` document's connections, kept in bounded memory.
//!
//! Why: the streamed report ([`super::stream`]) writes each connection into a spill when it
//! closes, but the document lists connections by `(first_seen, id)`, which is not the order they
//! close in. Holding one index entry per connection until the end (32 bytes each) made the
//! report's memory follow the number of connections (32 MB more at a million, plus the vector's
//! doubling). Instead entries gather in a chunk of [`CHUNK`] entries; a full chunk is sorted and
//! appended to a temporary file as a *run*, and [`SortedIndex::finish`] merges the runs (a heap
//! with one small read buffer per run): an external merge sort. Connections close nearly in
//! order, so the runs are nearly sorted already; the merge's cost is the heap, `log(runs)` a
//! connection.
//!
//! Hand-written rather than a crate: the external-sort crates on crates.io serialise through
//! serde and a buffer per item; the entries here are four integers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;

/// Entries held in memory before a sorted run is written out (2 MB).
pub const CHUNK: usize = 1 << 16;
/// Entries read from a run at a time during the merge (4 KB a run).
const READ_AHEAD: usize = 128;
/// Bytes of one encoded entry.
const ENTRY_BYTES: usize = 32;

/// Where a connection's serialised bytes are in the spill, and the key it is listed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// First packet time (nanoseconds): the document's order.
    pub first_seen: i64,
    /// Connection id: ties broken by it.
    pub id: u64,
    /// Offset of its bytes in the spill.
    pub offset: u64,
    /// Length of its bytes.
    pub len: u64,
}

impl Entry {
    fn encode(&self, out: &mut [u8; ENTRY_BYTES]) {
        out[0..8].copy_from_slice(&self.first_seen.to_le_bytes());
        out[8..16].copy_from_slice(&self.id.to_le_bytes());
        out[16..24].copy_from_slice(&self.offset.to_le_bytes());
        out[24..32].copy_from_slice(&self.len.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Option<Entry> {
        let word = |i: usize| -> Option<[u8; 8]> { b.get(i..i + 8)?.try_into().ok() };
        Some(Entry {
            first_seen: i64::from_le_bytes(word(0)?),
            id: u64::from_le_bytes(word(8)?),
            offset: u64::from_le_bytes(word(16)?),
            len: u64::from_le_bytes(word(24)?),
        })
    }
}

/// A run written to the run file: where it starts and how many entries it holds.
#[derive(Debug, Clone, Copy)]
struct Run {
    at: u64,
    len: u64,
}

/// Entries added in any order, given back sorted by `(first_seen, id)`.
pub struct SortedIndex {
    chunk: Vec<Entry>,
    chunk_cap: usize,
    /// The run file (created with the first full chunk), and how far it is written.
    file: Option<(BufWriter<File>, u64)>,
    runs: Vec<Run>,
    /// No run file could be made: everything stays in memory (the old behaviour).
    in_memory: bool,
}

impl Default for SortedIndex {
    fn default() -> Self {
        SortedIndex::with_chunk(CHUNK)
    }
}

impl SortedIndex {
    /// An index writing a run every `chunk` entries (tests use small chunks to make runs).
    pub fn with_chunk(chunk: usize) -> Self {
        SortedIndex {
            chunk: Vec::new(),
            chunk_cap: chunk.max(1),
            file: None,
            runs: Vec::new(),
            in_memory: false,
        }
    }

    /// Entries written out as runs so far (for tests and the benchmark's notes).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Add one entry. An error is the run file's (writing it failed).
    pub fn add(&mut self, e: Entry) -> io::Result<()> {
        self.chunk.push(e);
        if self.chunk.len() >= self.chunk_cap && !self.in_memory {
            self.spill_chunk()?;
        }
        Ok(())
    }

    fn spill_chunk(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            match tempfile::tempfile() {
                Ok(f) => self.file = Some((BufWriter::with_capacity(1 << 16, f), 0)),
                Err(_) => {
                    // Memory grows as before rather than losing the report.
                    self.in_memory = true;
                    return Ok(());
                }
            }
        }
        let Some((w, written)) = self.file.as_mut() else {
            return Ok(());
        };
        self.chunk.sort_unstable();
        let mut b = [0u8; ENTRY_BYTES];
        for e in &self.chunk {
            e.encode(&mut b);
            w.write_all(&b)?;
        }
        let len = self.chunk.len() as u64;
        self.runs.push(Run { at: *written, len });
        *written += len * ENTRY_BYTES as u64;
        self.chunk.clear();
        Ok(())
    }

    /// Every entry added, in order.
    pub fn finish(mut self) -> io::Result<Merge> {
        self.chunk.sort_unstable();
        let file = match self.file.take() {
            Some((w, _)) => Some(w.into_inner().map_err(|e| e.into_error())?),
            None => None,
        };
        let mut m = Merge {
            file,
            cursors: Vec::with_capacity(self.runs.len() + 1),
            heap: BinaryHeap::with_capacity(self.runs.len() + 1),
        };
        for run in self.runs {
            m.cursors.push(Cursor {
                buf: Vec::new(),
                next: 0,
                run_pos: 0,
                run,
                tail: None,
            });
        }
        m.cursors.push(Cursor {
            buf: Vec::new(),
            next: 0,
            run_pos: 0,
            run: Run { at: 0, len: 0 },
            tail: Some(std::mem::take(&mut self.chunk).into_iter()),
        });
        for i in 0..m.cursors.len() {
            if let Some(e) = m.pull(i)? {
                m.heap.push(Reverse((e, i)));
            }
        }
        Ok(m)
    }
}

/// One run being read: a buffer of decoded entries, refilled from the run file; or the last
/// chunk, which never left memory.
struct Cursor {
    buf: Vec<Entry>,
    next: usize,
    /// Entries of the run already read into `buf`.
    run_pos: u64,
    run: Run,
    tail: Option<std::vec::IntoIter<Entry>>,
}

/// The merge of the runs: an iterator of entries in `(first_seen, id)` order.
pub struct Merge {
    file: Option<File>,
    cursors: Vec<Cursor>,
    heap: BinaryHeap<Reverse<(Entry, usize)>>,
}

impl Merge {
    /// The next entry of cursor `i`, reading ahead from the run file when its buffer is empty.
    fn pull(&mut self, i: usize) -> io::Result<Option<Entry>> {
        let Some(c) = self.cursors.get_mut(i) else {
            return Ok(None);
        };
        if let Some(tail) = c.tail.as_mut() {
            return Ok(tail.next());
        }
        if c.next >= c.buf.len() {
            let left = c.run.len - c.run_pos;
            if left == 0 {
                return Ok(None);
            }
            let Some(file) = self.file.as_ref() else {
                return Ok(None);
            };
            let n = left.min(READ_AHEAD as u64) as usize;
            let mut raw = vec![0u8; n * ENTRY_BYTES];
            file.read_exact_at(&mut raw, c.run.at + c.run_pos * ENTRY_BYTES as u64)?;
            c.buf.clear();
            c.buf
                .extend(raw.chunks_exact(ENTRY_BYTES).filter_map(Entry::decode));
            c.next = 0;
            c.run_pos += n as u64;
        }
        let e = c.buf.get(c.next).copied();
        c.next += 1;
        Ok(e)
    }

    /// The next entry in order; an error is the run file's.
    pub fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let Some(Reverse((e, i))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(n) = self.pull(i)? {
            self.heap.push(Reverse((n, i)));
        }
        Ok(Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(first_seen: i64, id: u64) -> Entry {
        Entry {
            first_seen,
            id,
            offset: id * 10,
            len: id + 1,
        }
    }

    fn drain(mut m: Merge) -> Vec<Entry> {
        let mut out = Vec::new();
        while let Some(e) = m.next_entry().expect("run file reads") {
            out.push(e);
        }
        out
    }

    #[test]
    fn runs_merge_into_one_order() {
        // Ids close out of order; times repeat (ties broken by id).
        let mut input: Vec<Entry> = (0..10_000u64)
            .map(|i| entry(((i * 7919) % 3001) as i64, i))
            .collect();
        let mut idx = SortedIndex::with_chunk(300);
        for e in &input {
            idx.add(*e).expect("added");
        }
        assert!(idx.runs() >= 30, "runs written: {}", idx.runs());
        let got = drain(idx.finish().expect("merge starts"));
        input.sort();
        assert_eq!(got.len(), input.len());
        assert!(got == input, "merged order differs from a full sort");
    }

    #[test]
    fn no_run_when_everything_fits_and_empty_is_empty() {
        let mut idx = SortedIndex::with_chunk(100);
        for i in (0..50u64).rev() {
            idx.add(entry(i as i64, i)).expect("added");
        }
        assert_eq!(idx.runs(), 0);
        let got = drain(idx.finish().expect("merge starts"));
        assert_eq!(got.first().map(|e| e.id), Some(0));
        assert_eq!(got.last().map(|e| e.id), Some(49));
        assert!(drain(SortedIndex::default().finish().expect("empty")).is_empty());
    }

    #[test]
    fn entries_survive_encoding() {
        let e = Entry {
            first_seen: -5,
            id: u64::MAX,
            offset: 1 << 40,
            len: 7,
        };
        let mut b = [0u8; ENTRY_BYTES];
        e.encode(&mut b);
        assert_eq!(Entry::decode(&b), Some(e));
        assert_eq!(Entry::decode(&b[..31]), None);
    }
}
