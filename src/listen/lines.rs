//! The headless listener's output lines, written by a thread of their own.
//!
//! Why: writing each event's line from the connection task cost a `write(2)` per event on the
//! path to the next answer, and a slow reader of stdout (a full pipe) blocked a runtime worker
//! and with it every device's answer. Here lines are appended to a buffer; the writer thread
//! wakes when the buffer stops being empty, waits [`COALESCE`] for more, and writes them all at
//! once. A line leaves about a millisecond after its event. When the reader does not keep up,
//! the buffer stops at [`MAX_PENDING`] bytes and further lines are counted, not kept.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the writer waits after being woken, so that lines made meanwhile share its write.
pub(crate) const COALESCE: Duration = Duration::from_millis(1);
/// Most bytes waiting for the writer; lines beyond are dropped (and counted).
pub(crate) const MAX_PENDING: usize = 64 << 20;
/// How long [`LineOut::finish`] waits for the last lines to be written: a reader that stopped
/// reading must not keep the process from exiting.
pub(crate) const FINISH_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// Lines not written: dropped at the bound, or still queued when the writer gave up.
    dropped: u64,
    /// Lines in `buf` and in the write in progress.
    queued: u64,
    closed: bool,
    /// The writer thread is done.
    done: bool,
}

/// Lines on their way to a writer (stdout), from any thread.
pub(crate) struct LineOut {
    shared: Arc<(Mutex<Pending>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
    max_pending: usize,
}

impl LineOut {
    /// Start the writer thread over `out`.
    pub(crate) fn start<W: Write + Send + 'static>(out: W) -> std::io::Result<LineOut> {
        LineOut::with_limit(out, MAX_PENDING, COALESCE)
    }

    fn with_limit<W: Write + Send + 'static>(
        mut out: W,
        max_pending: usize,
        coalesce: Duration,
    ) -> std::io::Result<LineOut> {
        let shared: Arc<(Mutex<Pending>, Condvar)> = Arc::default();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("alarmscope-lines".into())
            .spawn(move || {
                let (lock, cv) = &*s;
                let mut spare = Vec::new();
                loop {
                    let Ok(mut p) = lock.lock() else { return };
                    while p.buf.is_empty() && !p.closed {
                        p = match cv.wait(p) {
                            Ok(p) => p,
                            Err(_) => return,
                        };
                    }
                    if p.buf.is_empty() {
                        p.done = true; // closed, all written
                        drop(p);
                        cv.notify_all();
                        return;
                    }
                    if !p.closed {
                        drop(p);
                        std::thread::sleep(coalesce);
                        p = match lock.lock() {
                            Ok(p) => p,
                            Err(_) => return,
                        };
                    }
                    std::mem::swap(&mut p.buf, &mut spare);
                    let taken = p.queued;
                    drop(p);
                    // A reader that went away (closed pipe) loses the lines; the server goes on.
                    let _ = out.write_all(&spare).and_then(|()| out.flush());
                    spare.clear();
                    if let Ok(mut p) = lock.lock() {
                        p.queued -= taken.min(p.queued);
                    }
                    if spare.capacity() > 1 << 20 {
                        spare = Vec::new();
                    }
                }
            })?;
        Ok(LineOut {
            shared,
            thread: Mutex::new(Some(thread)),
            max_pending,
        })
    }

    /// Queue one line (`line` without its newline).
    pub(crate) fn push(&self, line: &[u8]) {
        let (lock, cv) = &*self.shared;
        let Ok(mut p) = lock.lock() else { return };
        if p.buf.len().saturating_add(line.len()).saturating_add(1) > self.max_pending {
            p.dropped += 1;
            return;
        }
        let wake = p.buf.is_empty();
        p.buf.extend_from_slice(line);
        p.buf.push(b'\n');
        p.queued += 1;
        drop(p);
        if wake {
            cv.notify_all();
        }
    }

    /// Write what is queued and stop the thread (waiting at most [`FINISH_WAIT`]); the lines
    /// not written, because the reader did not keep up. Lines pushed after this are not written.
    pub(crate) fn finish(&self) -> u64 {
        self.finish_within(FINISH_WAIT)
    }

    fn finish_within(&self, wait: Duration) -> u64 {
        let (lock, cv) = &*self.shared;
        let Ok(mut p) = lock.lock() else { return 0 };
        p.closed = true;
        cv.notify_all();
        let Ok((p, _)) = cv.wait_timeout_while(p, wait, |p| !p.done) else {
            return 0;
        };
        let left = if p.done { 0 } else { p.queued };
        let dropped = p.dropped + left;
        drop(p);
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            if t.is_finished() {
                let _ = t.join();
            }
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that hands each write to the test, or blocks until told to go on.
    struct Probe {
        writes: mpsc::Sender<Vec<u8>>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl Write for Probe {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Some(g) = &self.gate {
                let _ = g.recv();
            }
            let _ = self.writes.send(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_leave_in_order_and_share_writes() {
        let (tx, rx) = mpsc::channel();
        let out = LineOut::with_limit(
            Probe {
                writes: tx,
                gate: None,
            },
            MAX_PENDING,
            Duration::from_millis(200),
        )
        .unwrap();
        for i in 0..100 {
            out.push(format!("line {i}").as_bytes());
        }
        // Made well within the wait: one write.
        let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let expect: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(String::from_utf8(first).unwrap(), expect);
        out.push(b"last");
        assert_eq!(out.finish(), 0);
        let rest: Vec<u8> = rx.try_iter().flatten().collect();
        assert_eq!(rest, b"last\n");
    }

    #[test]
    fn a_reader_that_does_not_keep_up_loses_lines_not_memory() {
        let (tx, rx) = mpsc::channel();
        let (go, gate) = mpsc::channel();
        let out = LineOut::with_limit(
            Probe {
                writes: tx,
                gate: Some(gate),
            },
            1000,
            Duration::ZERO,
        )
        .unwrap();
        out.push(&[b'a'; 99]); // taken by the writer, which then blocks in write
        std::thread::sleep(Duration::from_millis(100));
        for _ in 0..20 {
            out.push(&[b'b'; 99]); // 100 bytes each: 10 fit in 1000
        }
        go.send(()).unwrap();
        go.send(()).unwrap();
        assert_eq!(out.finish_within(Duration::from_secs(10)), 10);
        let writes: Vec<Vec<u8>> = rx.try_iter().collect();
        assert_eq!(writes.len(), 2, "the first line, then the ten that fit");
        let b_line = [&[b'b'; 99][..], b"\n"].concat();
        assert_eq!(writes[1], b_line.repeat(10));
    }

    #[test]
    fn a_reader_that_stopped_does_not_hold_the_exit() {
        let (tx, _rx) = mpsc::channel();
        let (_go, gate) = mpsc::channel::<()>();
        let out = LineOut::with_limit(
            Probe {
                writes: tx,
                gate: Some(gate),
            },
            MAX_PENDING,
            Duration::ZERO,
        )
        .unwrap();
        out.push(b"stuck"); // the writer blocks in write for good
        std::thread::sleep(Duration::from_millis(100));
        out.push(b"queued");
        out.push(b"queued too");
        let t = std::time::Instant::now();
        assert_eq!(out.finish_within(Duration::from_millis(300)), 3);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
