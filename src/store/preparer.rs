//! The preparer: a thread that makes the next segment ahead of need, zeroed and flushed, so that
//! the commit thread's flushes of small events never have to grow a file (see [`Preparer`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::sync_dir;

/// Zeros, for writing ahead.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A segment made ahead of need: created, filled with zeros, flushed, its directory entry
/// flushed.
pub(super) struct Prepared {
    pub(super) date: String,
    pub(super) number: u64,
    pub(super) rel: String,
    pub(super) path: PathBuf,
    pub(super) file: File,
    pub(super) zeroed: u64,
}

/// Work for the preparer thread.
pub(super) enum PrepWork {
    /// Make segment `number` in date directory `date`.
    Make { date: String, number: u64 },
    /// Cut the unused zeros off a segment the commit thread has left.
    Trim { path: PathBuf, len: u64 },
}

/// The preparer thread, seen from the commit thread. Small events are cheap to make durable only
/// when they are written over blocks that already exist: a flush that also grows the file must
/// write its metadata too (see [`ZERO_AHEAD`](super::writer::ZERO_AHEAD)). Writing the zeros in line (1 MiB after each
/// batch that reaches the end of the zeros, flushed with it) put a ~3 ms flush into the answer
/// path once per megabyte; on this project's VM a lone writer doing just that had a flush p99 of
/// 2.9-3.2 ms against 0.9-1.0 ms over a file zeroed beforehand. So a thread of its own makes the
/// next segment, zeroed and flushed, before it is needed, and the commit thread switches to it
/// when a small batch would otherwise grow the current one.
pub(super) struct Preparer {
    tx: Option<mpsc::Sender<PrepWork>>,
    rx: mpsc::Receiver<io::Result<Prepared>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// A `Make` is in progress.
    pub(super) asked: bool,
    /// A segment made and not yet taken.
    pub(super) ready: Option<Prepared>,
    /// After a failure (a full disk, say), no new `Make` before this: in line zeros meanwhile,
    /// and one warning rather than one per batch.
    pause_until: Option<std::time::Instant>,
}

impl Preparer {
    /// Start the thread, which makes segments of `bytes` zeros under `root`.
    pub(super) fn start(root: PathBuf, bytes: u64) -> io::Result<Preparer> {
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
    pub(super) fn wants(&self) -> bool {
        !self.asked
            && self.ready.is_none()
            && self
                .pause_until
                .is_none_or(|t| std::time::Instant::now() >= t)
    }

    /// Queue work; false when the thread is gone.
    pub(super) fn send(&mut self, w: PrepWork) -> bool {
        self.tx.as_ref().is_some_and(|tx| tx.send(w).is_ok())
    }

    /// Take what the thread has finished.
    pub(super) fn poll(&mut self) {
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
    pub(super) fn stop(&mut self) {
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
#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
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
pub(super) fn write_zeros(w: &mut impl Write, len: u64) -> io::Result<()> {
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
pub(super) fn trim(path: &Path, len: u64) {
    let cut = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len));
    if let Err(e) = cut {
        tracing::debug!("{}: {e}", path.display());
    }
}

/// Remove a prepared segment that was never written to.
pub(super) fn discard(p: Prepared) {
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
