//! Reading a store: its index (with what recovery finds the index lacks), one file of an event,
//! and the one-directory-per-event export. Reads, never writes the store.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::recovery::{list_segments, missing_records, scan_index, sort_commit_order, IndexScan};
use super::{IndexLine, StoredFile, INDEX_FILE};
use crate::extract::sanitize_file_name;

/// `len` bytes at `offset` of `path`.
pub(super) fn read_range(path: &Path, offset: u64, len: u64) -> io::Result<Vec<u8>> {
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
