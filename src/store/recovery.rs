//! Recovery: how the store finds what a crash left. The segments are listed, those never written
//! to removed, the index read up to its damage, and the segments scanned from there for complete
//! records the index lacks (see "Durability protocol" in the module docs). Used when the store
//! opens (which writes the index back) and by every reader.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{
    io_err, sync_dir, IndexLine, RecordHead, StoreError, INDEX_FILE, MAX_RECORD_HEAD, RECORD_MAGIC,
    RECORD_PREFIX,
};

/// A segment file: its number (creation order) and paths.
pub(super) struct SegmentFile {
    pub(super) number: u64,
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
pub(super) fn list_segments(root: &Path) -> io::Result<(Vec<SegmentFile>, BTreeSet<String>)> {
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
pub(super) fn remove_unwritten_segments(segs: Vec<SegmentFile>) -> Vec<SegmentFile> {
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
pub(super) fn sort_commit_order(lines: &mut [IndexLine]) {
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
pub(super) struct IndexScan {
    /// Valid lines in file order (only when asked to keep them).
    pub(super) lines: Vec<IndexLine>,
    /// Bytes up to the last newline (a torn last line starts there).
    good_len: u64,
    /// A line before the last one is damaged (the file must be rewritten).
    pub(super) damaged: bool,
    max_seq: u64,
    /// End of the last valid line before the first damaged one: segments are scanned from there.
    resume: Option<(u64, String, u64)>,
    /// Events indexed by valid lines after the first damaged one (not to be added twice).
    after: HashSet<(String, u64)>,
}

/// Read an index: valid lines, where its damage starts, the highest seq.
pub(super) fn scan_index(r: impl BufRead, keep: bool) -> io::Result<IndexScan> {
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
pub(super) fn missing_records(
    segs: &[SegmentFile],
    scan: &IndexScan,
) -> io::Result<Vec<IndexLine>> {
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
pub(super) fn repair_index(
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

/// Whether a directory name is a date `YYYY-MM-DD` (a directory of segments).
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
