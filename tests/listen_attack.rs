//! `alarmscope listen` under attack, over real loopback sockets. Each attack runs while a
//! well-behaved device keeps posting ordinary XML events (a new connection per event, 20 per
//! second); the device must keep getting `200 OK` within 2 s, and the attacker must get what the
//! design says (408, 413, 400, a closed connection), with bounded memory.
//!
//! The tests take a process-wide lock so they run one at a time: they share the process's memory
//! figures and its two CPU cores. Latency is only checked against a generous bound here; the
//! measurements are in `benches/attack.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use alarmscope::listen::{ListenOptions, ListenUpdate};
use alarmscope::store::{read_file, read_index};
use alarmscope::tcp::CloseKind;
use common::{connect, Srv};

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>10.0.0.5</ipAddress>\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n<macAddress>44:19:b6:00:00:01</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2024-02-29T12:34:56+08:00</dateTime>\r\n<activePostCount>1</activePostCount>\r\n<eventType>VMD</eventType>\r\n<eventState>active</eventState>\r\n<eventDescription>Motion alarm</eventDescription>\r\n</EventNotificationAlert>\r\n";

/// A device answer slower than this fails the test (generous: CI boxes are loaded).
const DEVICE_BOUND: Duration = Duration::from_secs(2);
/// The device posts one event per this interval.
const DEVICE_INTERVAL: Duration = Duration::from_millis(50);
/// Memory growth of this process allowed during one attack.
const RSS_BOUND_KB: u64 = 200 * 1024;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---- memory and file descriptors ----

/// `VmRSS` and `VmHWM` of this process, in kB.
fn mem_kb() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Memory watch over one attack: the peak (VmHWM) after it may not exceed the resident size
/// before it by more than [`RSS_BOUND_KB`].
struct MemWatch {
    rss0: u64,
}

impl MemWatch {
    fn start() -> MemWatch {
        // Reset VmHWM to the current size (Linux 4.0+), so the peak is this attack's.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        MemWatch { rss0: mem_kb().0 }
    }

    fn check(&self, what: &str) {
        let (rss, hwm) = mem_kb();
        let peak = hwm.max(rss);
        eprintln!(
            "{what}: VmRSS {} kB before, {rss} kB after, VmHWM {hwm} kB",
            self.rss0
        );
        assert!(
            peak.saturating_sub(self.rss0) < RSS_BOUND_KB,
            "{what}: memory grew from {} kB to a peak of {peak} kB (now {rss} kB)",
            self.rss0
        );
    }
}

/// Raise the soft RLIMIT_NOFILE to `want` (capped at the hard limit); returns the new soft limit.
#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn raise_nofile(want: u64) -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut r), 0);
        if r.rlim_cur < want {
            r.rlim_cur = want.min(r.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
        }
    }
    r.rlim_cur
}

// ---- server ----

/// A server for these tests: connection upserts are not needed here and would pile up in the
/// channel.
fn start_srv(f: impl FnOnce(&mut ListenOptions)) -> Srv {
    Srv::start_keeping(f, |u| match u {
        ListenUpdate::Upsert(_) => None,
        u => Some(u),
    })
}

// ---- HTTP client bits ----

fn request(path: &str, ct: &str, body: &[u8], extra: &str) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Status of the first response in `bytes` once its head is complete.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    head.split(' ').nth(1)?.parse().ok()
}

/// Read one response (head plus Content-Length body); its status.
fn read_status(s: &mut TcpStream) -> std::io::Result<u16> {
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return status_of(&got)
                    .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "bad status line"));
            }
        }
        let n = s.read(&mut b)?;
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("closed after {} bytes of response", got.len()),
            ));
        }
        got.extend_from_slice(&b[..n]);
    }
}

trait ReplaceBytes {
    fn replace_bytes(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceBytes for Vec<u8> {
    fn replace_bytes(mut self, from: &[u8], to: &[u8]) -> Vec<u8> {
        if let Some(at) = self.windows(from.len()).position(|w| w == from) {
            self.splice(at..at + from.len(), to.iter().copied());
        }
        self
    }
}

/// Send raw bytes on a new connection (ignoring a write cut short by the server) and read the
/// answer's status.
fn exchange(srv: &Srv, raw: &[u8]) -> std::io::Result<u16> {
    let mut s = srv.connect();
    let _ = s.write_all(raw);
    read_status(&mut s)
}

/// True once the server has closed this connection (EOF or reset); never blocks.
fn closed_by_server(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 256];
    let closed = loop {
        match s.peek(&mut b) {
            Ok(0) => break true,
            // Answer bytes before the FIN: read them away and look again.
            Ok(n) => {
                let mut sink = vec![0u8; n];
                let _ = (&*s).read(&mut sink);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Poll `cond` until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- the well-behaved device ----

#[derive(Debug)]
struct Sample {
    n: u64,
    status: Result<u16, String>,
    latency: Duration,
}

/// Posts an XML event on a new connection every [`DEVICE_INTERVAL`] until finished.
struct Device {
    stop: Arc<AtomicBool>,
    rx: Receiver<Sample>,
    thread: Option<JoinHandle<()>>,
    seen: Vec<Sample>,
}

fn post_event(addr: SocketAddr, n: u64) -> Result<u16, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    let t = Some(Duration::from_secs(5));
    s.set_read_timeout(t).map_err(|e| e.to_string())?;
    s.set_write_timeout(t).map_err(|e| e.to_string())?;
    s.write_all(&request(
        &format!("/ISAPI/alarm/dev-{n}"),
        "application/xml; charset=\"UTF-8\"",
        XML.as_bytes(),
        "",
    ))
    .map_err(|e| format!("write: {e}"))?;
    read_status(&mut s).map_err(|e| format!("read: {e}"))
}

impl Device {
    fn start(addr: SocketAddr) -> Device {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let st = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            let mut next = Instant::now();
            while !st.load(Ordering::Relaxed) {
                n += 1;
                let t = Instant::now();
                let status = post_event(addr, n);
                if tx
                    .send(Sample {
                        n,
                        status,
                        latency: t.elapsed(),
                    })
                    .is_err()
                {
                    return;
                }
                // Fixed rate: the next event is due one interval after the previous was due.
                next += DEVICE_INTERVAL;
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                } else {
                    next = Instant::now();
                }
            }
        });
        Device {
            stop,
            rx,
            thread: Some(thread),
            seen: Vec::new(),
        }
    }

    /// Wait for the device's next `n` answers (made while the caller's attack is in progress).
    fn next(&mut self, n: usize) -> Vec<&Sample> {
        let from = self.seen.len();
        while self.seen.len() < from + n {
            match self.rx.recv_timeout(Duration::from_secs(30)) {
                Ok(s) => self.seen.push(s),
                Err(e) => panic!("device stalled: {e}"),
            }
        }
        self.seen[from..].iter().collect()
    }

    /// Stop posting; every answer the device got.
    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let mut seen = std::mem::take(&mut self.seen);
        seen.extend(self.rx.try_iter());
        seen
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Every sample is a 200 within [`DEVICE_BOUND`].
fn assert_served<'a>(what: &str, samples: impl IntoIterator<Item = &'a Sample>) -> usize {
    let mut count = 0;
    for s in samples {
        assert_eq!(
            s.status,
            Ok(200),
            "{what}: device event {} not answered 200",
            s.n
        );
        assert!(
            s.latency < DEVICE_BOUND,
            "{what}: device event {} took {:?}",
            s.n,
            s.latency
        );
        count += 1;
    }
    count
}

/// The device's events all reached the store index.
fn assert_device_stored(srv: &Srv, samples: &[Sample]) {
    let index = read_index(&srv.store()).unwrap();
    let stored = index
        .iter()
        .filter(|l| l.event_type.as_deref() == Some("VMD"))
        .count();
    let ok = samples.iter().filter(|s| s.status == Ok(200)).count();
    assert!(
        stored >= ok,
        "{stored} VMD events stored, {ok} acknowledged"
    );
}

// ---- (a) idle connections ----

#[test]
fn idle_connection_flood_past_max_connections_does_not_lock_out_the_device() {
    let _g = serial();
    const FLOOD: usize = 2000;
    const MAX: usize = 1024;
    // Attackers, the server's side of them and the store, all in this process.
    let nofile = raise_nofile(2 * FLOOD as u64 + 512);
    assert!(nofile >= 2 * FLOOD as u64 + 256, "RLIMIT_NOFILE {nofile}");
    let mut srv = start_srv(|o| {
        o.limits.max_connections = MAX;
        // Long timeouts: only making room may close the idle connections during this test.
        o.limits.idle_timeout = Duration::from_secs(120);
        o.limits.read_timeout = Duration::from_secs(120);
    });
    let mem = MemWatch::start();
    let mut dev = Device::start(srv.addr);
    assert_served("before the flood", dev.next(3));
    let mut idle = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        match TcpStream::connect_timeout(&srv.addr, Duration::from_secs(5)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("idle connection {i} could not connect: {e}"),
        }
    }
    // The device keeps being served while the flood holds every slot it can.
    assert_served("during the idle flood", dev.next(20));
    // Room was made by closing the connections idle longest: at least the excess over the limit
    // is closed, the newest ones are still open.
    let mut closed = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            closed = idle.iter().filter(|s| closed_by_server(s)).count();
            closed >= FLOOD - MAX
        }),
        "only {closed} of {FLOOD} idle connections closed by the server (max {MAX})"
    );
    let newest_open = idle[FLOOD - 100..]
        .iter()
        .filter(|s| !closed_by_server(s))
        .count();
    assert_eq!(newest_open, 100, "the newest idle connections were closed");
    assert!(
        closed_by_server(&idle[0]),
        "the oldest idle connection is still open"
    );
    mem.check("idle flood");
    drop(idle);
    let samples = dev.finish();
    assert_served("idle flood", &samples);
    assert_device_stored(&srv, &samples);
    let summary = srv.stop();
    assert!(
        summary.evicted >= (FLOOD - MAX) as u64,
        "summary.evicted = {}",
        summary.evicted
    );
    assert_eq!(summary.ok, samples.len() as u64);
}

/// The real binary under a low open-files limit (soft = hard = 256, as on some systems, where
/// the default 1024 connections cannot fit): it serves fewer connections at once, says so, and
/// under an idle flood still has file descriptors left for the device's connections and the
/// store's files.
#[test]
fn low_open_files_limit_caps_connections_and_keeps_the_store_working() {
    let _g = serial();
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    const FLOOD: usize = 400;
    raise_nofile(4 * FLOOD as u64);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_alarmscope"))
        .args(["listen", "--bind", "127.0.0.1:0", "--json", "--store"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        lines.push(line);
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr: SocketAddr = lines[0]
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split([',', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {lines:?}"));
    // (256 - 64) / 2 connections fit.
    assert!(
        lines[1].contains("serving at most 96 connections at once (not 1024)"),
        "{lines:?}"
    );
    let mut dev = Device::start(addr);
    assert_served("before the flood", dev.next(3));
    let idle: Vec<TcpStream> = (0..FLOOD).map(|_| connect(addr)).collect();
    assert_served("idle flood under a low open files limit", dev.next(20));
    let mut closed = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            closed = idle.iter().filter(|s| closed_by_server(s)).count();
            closed >= FLOOD - 96
        }),
        "only {closed} of {FLOOD} idle connections closed"
    );
    drop(idle);
    let samples = dev.finish();
    assert_served("low open files limit", &samples);
    let _ = child.kill();
    let _ = child.wait();
    let index = read_index(&store).unwrap();
    assert!(index.len() >= samples.len(), "{} stored", index.len());
}

#[test]
fn connection_that_never_sends_is_closed_after_read_timeout_not_idle_timeout() {
    let _g = serial();
    let mut srv = start_srv(|o| {
        o.limits.read_timeout = Duration::from_millis(400);
        o.limits.idle_timeout = Duration::from_secs(60);
    });
    let mut silent = srv.connect();
    let t = Instant::now();
    let mut b = [0u8; 64];
    // Closed without an answer: no request was started.
    assert_eq!(silent.read(&mut b).unwrap(), 0);
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    // After an answer, a keep-alive connection waits idle_timeout, not read_timeout.
    let mut ka = srv.connect();
    let req = request("/ka", "application/xml", XML.as_bytes(), "")
        .replace_bytes(b"Connection: close", b"Connection: keep-alive");
    ka.write_all(&req).unwrap();
    assert_eq!(read_status(&mut ka).unwrap(), 200);
    ka.set_read_timeout(Some(Duration::from_millis(1200)))
        .unwrap();
    let e = ka.read(&mut b).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "keep-alive connection closed early: {e:?}"
    );
    srv.stop();
}

// ---- (b) slowloris ----

/// Many connections, each dribbling one header byte per `every`; every one must get 408 once its
/// head has not completed within the read timeout, the device must not notice.
#[test]
fn slowloris_dribbling_headers_get_408_at_read_timeout() {
    let _g = serial();
    const SLOW: usize = 300;
    let read_timeout = Duration::from_millis(2000);
    let idle_timeout = Duration::from_millis(3000);
    let every = Duration::from_millis(700);
    raise_nofile(4 * SLOW as u64 + 512);
    let mut srv = start_srv(|o| {
        o.limits.read_timeout = read_timeout;
        o.limits.idle_timeout = idle_timeout;
    });
    let mem = MemWatch::start();
    let mut dev = Device::start(srv.addr);
    let mut slow: Vec<(TcpStream, Instant, Vec<u8>, bool)> = (0..SLOW)
        .map(|_| {
            let mut s = srv.connect();
            s.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            s.set_nonblocking(true).unwrap();
            (s, Instant::now(), Vec::new(), false)
        })
        .collect();
    // Blank lines (allowed between requests) dribbled the same way never start a request, yet
    // must not keep a connection open either: a new connection is closed at the read timeout
    // (its first request never began), a keep-alive one at the idle timeout after its answer.
    let mut stray: Vec<(TcpStream, Duration, Instant, Option<Duration>)> = (0..20)
        .map(|i| {
            let mut s = srv.connect();
            let limit = if i % 2 == 0 {
                read_timeout
            } else {
                let req = request("/ka", "application/xml", XML.as_bytes(), "")
                    .replace_bytes(b"Connection: close", b"Connection: keep-alive");
                s.write_all(&req).unwrap();
                assert_eq!(read_status(&mut s).unwrap(), 200);
                idle_timeout
            };
            s.set_nonblocking(true).unwrap();
            (s, limit, Instant::now(), None)
        })
        .collect();
    let started = Instant::now();
    let mut answered = Vec::new();
    let mut device_during = Vec::new();
    while (answered.len() < SLOW || stray.iter().any(|s| s.3.is_none()))
        && started.elapsed() < Duration::from_secs(20)
    {
        for (s, t0, got, done) in slow.iter_mut().filter(|s| !s.3) {
            let _ = s.write_all(b"x");
            let mut b = [0u8; 1024];
            loop {
                match s.read(&mut b) {
                    Ok(0) => {
                        *done = true;
                        break;
                    }
                    Ok(n) => got.extend_from_slice(&b[..n]),
                    Err(_) => break,
                }
            }
            if *done || status_of(got).is_some() {
                *done = true;
                answered.push((status_of(got), t0.elapsed()));
            }
        }
        for (s, _, t0, closed) in stray.iter_mut().filter(|s| s.3.is_none()) {
            let _ = s.write_all(b"\r\n");
            let mut b = [0u8; 64];
            match s.read(&mut b) {
                Ok(0) => *closed = Some(t0.elapsed()),
                Ok(_) => panic!("blank lines were answered"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => *closed = Some(t0.elapsed()),
            }
        }
        // The device's answers while the dribbling goes on (one interval's worth).
        device_during.extend(
            dev.next(1)
                .into_iter()
                .map(|s| (s.status.clone(), s.latency)),
        );
        std::thread::sleep(every.saturating_sub(DEVICE_INTERVAL));
    }
    assert_eq!(answered.len(), SLOW, "slow connections left unanswered");
    for (status, after) in &answered {
        assert_eq!(*status, Some(408), "slow header client got {status:?}");
        assert!(
            *after >= read_timeout.mul_f64(0.9) && *after < read_timeout + Duration::from_secs(8),
            "408 after {after:?} (read timeout {read_timeout:?})"
        );
    }
    for (_, limit, _, closed) in &stray {
        let closed = closed.unwrap_or_else(|| {
            panic!(
                "blank-line connection still open after {:?}",
                started.elapsed()
            )
        });
        assert!(
            closed >= limit.mul_f64(0.9) && closed < *limit + Duration::from_secs(8),
            "blank-line connection closed after {closed:?} (timeout {limit:?})"
        );
    }
    assert!(device_during.len() >= 3);
    for (status, latency) in &device_during {
        assert_eq!(*status, Ok(200));
        assert!(*latency < DEVICE_BOUND, "{latency:?}");
    }
    mem.check("slowloris");
    let samples = dev.finish();
    assert_served("slowloris", &samples);
    let summary = srv.stop();
    assert!(summary.error_status >= SLOW as u64, "{summary:?}");
}

// ---- (c) endless chunked body ----

/// Writes `head` then endless chunks until the server stops reading; returns (status of the
/// answer, body bytes written before the write failed).
fn endless_chunks(
    addr: SocketAddr,
    head: &[u8],
    chunk_size_line: Option<&[u8]>,
) -> (Option<u16>, u64) {
    let mut s = connect(addr);
    s.write_all(head).unwrap();
    let mut reader = s.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut got = Vec::new();
        let _ = reader.read_to_end(&mut got);
        status_of(&got)
    });
    let data = vec![b'A'; 64 * 1024];
    let mut written = 0u64;
    if let Some(line) = chunk_size_line {
        // One enormous chunk whose data never ends.
        if s.write_all(line).is_ok() {
            while s.write_all(&data).is_ok() {
                written += data.len() as u64;
            }
        }
    } else {
        let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
        chunk.extend_from_slice(&data);
        chunk.extend_from_slice(b"\r\n");
        while s.write_all(&chunk).is_ok() {
            written += data.len() as u64;
        }
    }
    (answer.join().unwrap(), written)
}

#[test]
fn endless_chunked_body_gets_413_at_max_body_bytes_and_is_cut() {
    let _g = serial();
    const MAX_BODY: u64 = 4 * 1024 * 1024;
    // Keeps the finished records of connections answered 413 (what the server remembers of them).
    let mut srv = Srv::start_keeping(
        |o| o.limits.max_body_bytes = MAX_BODY,
        |u| match u {
            ListenUpdate::Upsert(c)
                if c.closed != CloseKind::Open
                    && c.exchanges
                        .iter()
                        .any(|e| e.response.as_ref().is_some_and(|r| r.status == 413)) =>
            {
                Some(ListenUpdate::Upsert(c))
            }
            ListenUpdate::Upsert(_) => None,
            u => Some(u),
        },
    );
    let mem = MemWatch::start();
    let mut dev = Device::start(srv.addr);
    let head = b"POST /endless HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n";
    let addr = srv.addr;
    let results: Vec<(Option<u16>, u64)> = std::thread::scope(|sc| {
        // Half send endless 64 KiB chunks, half one chunk of 2^63-1 bytes that never ends.
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let giant: Option<&'static [u8]> = (i % 2 == 1).then_some(b"7fffffffffffffff\r\n");
                sc.spawn(move || endless_chunks(addr, head, giant))
            })
            .collect();
        let during = dev.next(10);
        assert_served("during endless chunked bodies", during);
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, written) in &results {
        assert_eq!(
            *status,
            Some(413),
            "endless chunked body answered {status:?}"
        );
        // The server stopped reading at the limit: what was written is the limit plus what
        // fits in the socket buffers, not more.
        assert!(
            *written >= MAX_BODY && *written < MAX_BODY + 32 * 1024 * 1024,
            "{written} bytes written"
        );
    }
    mem.check("endless chunked bodies");
    let samples = dev.finish();
    assert_served("endless chunked bodies", &samples);
    assert_device_stored(&srv, &samples);
    let store = srv.store();
    let (report, summary, finished) = srv.stop_with_report();
    assert_eq!(summary.ok, samples.len() as u64);
    assert!(summary.error_status >= 8);
    assert_eq!(report.summary.error_status, summary.error_status);
    // What the server remembers of the cut bodies is bounded (each kept up to 256 KiB of
    // metadata text before, so endless cut bodies grew memory without a useful bound).
    let cut: Vec<_> = finished
        .iter()
        .flat_map(|c| &c.exchanges)
        .filter(|e| e.response.as_ref().is_some_and(|r| r.status == 413))
        .collect();
    assert_eq!(cut.len(), 8);
    for e in cut {
        let kept = e.metadata.as_ref().map_or(0, String::len);
        assert!(kept < 9 * 1024, "{kept} bytes of metadata kept");
        assert!(e.event_detail.is_none());
    }
    // The cut bodies left no staging directory and no index line.
    assert_eq!(read_index(&store).unwrap().len(), samples.len());
    for rel in walk_rel(&store) {
        assert!(!rel.contains(".tmp"), "staging left: {rel}");
    }
}

// ---- (d) huge Content-Length ----

#[test]
fn huge_content_length_is_refused_at_once_without_reading_the_body() {
    let _g = serial();
    let mut srv = start_srv(|_| {});
    let mut dev = Device::start(srv.addr);
    let mut n = 0u64;
    let t_all = Instant::now();
    while n < 200 || dev.seen.len() < 10 {
        n += 1;
        let mut s = srv.connect();
        let t = Instant::now();
        let expect = if n.is_multiple_of(2) {
            "Expect: 100-continue\r\n"
        } else {
            ""
        };
        s.write_all(
            format!("POST /huge HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000000000000\r\n{expect}\r\n")
                .as_bytes(),
        )
        .unwrap();
        // Answered without sending a byte of the body (and without 100 Continue).
        assert_eq!(read_status(&mut s).unwrap(), 413);
        assert!(t.elapsed() < DEVICE_BOUND, "413 took {:?}", t.elapsed());
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0, "not closed");
        dev.seen.extend(dev.rx.try_iter());
        assert!(t_all.elapsed() < Duration::from_secs(30));
    }
    // Lengths that do not fit in 64 bits, negative or conflicting ones cannot be framed.
    for cl in [
        "Content-Length: 99999999999999999999999\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 10\r\nContent-Length: 1000000000000000\r\n",
    ] {
        let raw = format!("POST /huge HTTP/1.1\r\nHost: x\r\n{cl}\r\n");
        assert_eq!(exchange(&srv, raw.as_bytes()).unwrap(), 400, "{cl:?}");
    }
    let samples = dev.finish();
    assert!(samples.len() >= 10);
    assert_served("huge Content-Length", &samples);
    let summary = srv.stop();
    assert_eq!(summary.ok, samples.len() as u64);
    assert_eq!(summary.error_status, n + 3);
}

// ---- (e) header floods ----

#[test]
fn header_floods_are_refused_with_bounded_buffering() {
    let _g = serial();
    let mut srv = start_srv(|_| {}); // 64 KiB, 100 header fields
    let mem = MemWatch::start();
    let mut dev = Device::start(srv.addr);
    // Thousands of small header lines: too many fields, though under the byte limit.
    let mut many = b"POST /f HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..3000 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    assert!(many.len() < 64 * 1024);
    assert_eq!(exchange(&srv, &many).unwrap(), 413);
    // Tens of thousands of lines: over the byte limit.
    let mut more = b"POST /f HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..20_000 {
        more.extend_from_slice(format!("X-Flood-{i}: value\r\n").as_bytes());
    }
    more.extend_from_slice(b"\r\n");
    assert_eq!(exchange(&srv, &more).unwrap(), 413);
    // One enormous header line that never ends, from many connections at once: each is cut at
    // the limit; the server reads no more than that (the writer is stopped) and buffers no more.
    let results: Vec<(Option<u16>, u64)> = std::thread::scope(|sc| {
        let addr = srv.addr;
        let hs: Vec<_> = (0..24)
            .map(|_| {
                sc.spawn(move || {
                    let mut s = connect(addr);
                    let mut reader = s.try_clone().unwrap();
                    let answer = std::thread::spawn(move || {
                        let mut got = Vec::new();
                        let _ = reader.read_to_end(&mut got);
                        status_of(&got)
                    });
                    let line = vec![b'a'; 64 * 1024];
                    let mut written = 0u64;
                    if s.write_all(b"POST /f HTTP/1.1\r\nX-Huge: ").is_ok() {
                        while written < 1 << 30 && s.write_all(&line).is_ok() {
                            written += line.len() as u64;
                        }
                    }
                    (answer.join().unwrap(), written)
                })
            })
            .collect();
        assert_served("during header floods", dev.next(10));
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, written) in &results {
        assert_eq!(*status, Some(413));
        assert!(*written < 64 * 1024 * 1024, "{written} bytes accepted");
    }
    mem.check("header floods");
    let samples = dev.finish();
    assert_served("header floods", &samples);
    let summary = srv.stop();
    assert_eq!(summary.ok, samples.len() as u64);
    assert_eq!(summary.error_status, 2 + 24);
}

// ---- (f) path traversal ----

/// Every path under `dir`, relative to it (`/`-separated text).
fn walk_rel(dir: &Path) -> Vec<String> {
    walk(dir)
        .iter()
        .map(|f| f.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            assert!(!ft.is_symlink(), "symlink {}", p.display());
            if ft.is_dir() {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

fn multipart(xml: &str, parts: &[(&[u8], &[u8])]) -> (String, Vec<u8>) {
    let b = "MIME_boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"meta.xml\"; filename=\"meta.xml\"\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n", xml.len()).as_bytes());
    body.extend_from_slice(xml.as_bytes());
    body.extend_from_slice(b"\r\n");
    for (disposition, data) in parts {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; ").as_bytes());
        body.extend_from_slice(disposition);
        body.extend_from_slice(
            format!(
                "\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

#[test]
fn path_traversal_in_part_names_event_type_and_url_stays_in_the_store() {
    let _g = serial();
    let mut srv = start_srv(|_| {});
    let mut dev = Device::start(srv.addr);
    let canary = format!("alarmscope-attack-{}", std::process::id());
    let up = "../".repeat(12);
    let names: Vec<String> = vec![
        format!("{up}tmp/{canary}.jpg"),
        format!("..\\..\\..\\..\\{canary}.jpg"),
        format!("/tmp/{canary}.jpg"),
        format!("....//....//{canary}.jpg"),
        format!("%2e%2e%2f%2e%2e%2f{canary}.jpg"),
        "..".to_string(),
        ".".to_string(),
        "".to_string(),
        format!(".{canary}"),
        format!("{}.jpg", "../a".repeat(3000)),
        "meta.xml".to_string(), // same name as the metadata part
    ];
    let pic = b"\xff\xd8picture\xff\xd9";
    let mut parts: Vec<(Vec<u8>, &[u8])> = names
        .iter()
        .map(|n| {
            (
                format!("name=\"{n}\"; filename=\"{n}\"").into_bytes(),
                &pic[..],
            )
        })
        .collect();
    parts.push((
        format!("name=\"x\"; filename*=UTF-8''..%2F..%2F..%2Ftmp%2F{canary}.jpg").into_bytes(),
        &pic[..],
    ));
    let part_refs: Vec<(&[u8], &[u8])> = parts.iter().map(|(d, p)| (&d[..], *p)).collect();
    let xml = XML.replace(
        "<eventType>VMD</eventType>",
        &format!("<eventType>{up}tmp/{canary}</eventType>"),
    );
    let (ct, body) = multipart(&xml, &part_refs);
    for path in [
        format!("/{up}tmp/{canary}"),
        format!("/%2e%2e/%2e%2e/tmp/{canary}"),
        format!("/..%2f..%2f{canary}"),
    ] {
        assert_eq!(
            exchange(&srv, &request(&path, &ct, &body, "")).unwrap(),
            200
        );
    }
    // Plain bodies with the hostile event type too.
    assert_eq!(
        exchange(
            &srv,
            &request(&format!("/{up}x"), "application/xml", xml.as_bytes(), "")
        )
        .unwrap(),
        200
    );
    assert_served("during path traversal", dev.next(5));
    let samples = dev.finish();
    assert_served("path traversal", &samples);
    let store = srv.store();
    let root = srv.dir.path().to_path_buf();
    let summary = srv.stop();
    assert_eq!(summary.stored, samples.len() as u64 + 4);
    // Nothing outside the store: the temp dir holds the store only, nothing named after the
    // canary exists where the traversals pointed.
    let top: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(top, [std::ffi::OsString::from("store")]);
    for p in [
        PathBuf::from(format!("/tmp/{canary}.jpg")),
        PathBuf::from(format!("/tmp/{canary}")),
        root.join(format!("{canary}.jpg")),
        std::env::temp_dir().join(format!("{canary}.jpg")),
    ] {
        assert!(!p.exists(), "{} was written", p.display());
    }
    // The store holds segments and the index only; every name the index gives (the names an
    // export writes) is sanitised.
    let index = read_index(&store).unwrap();
    let mut names: Vec<String> = Vec::new();
    for line in &index {
        names.extend(line.dir.split('/').map(str::to_string));
        names.extend(line.files.iter().map(|f| f.file.clone()));
    }
    assert!(
        names.iter().any(|n| n.contains(&canary)),
        "the hostile names were not stored at all"
    );
    let safe = |name: &str| {
        !name.starts_with('.')
            && name.len() <= 120
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    for n in &names {
        assert!(safe(n), "unsafe name {n:?} in the index");
    }
    for rel in walk_rel(&store) {
        let date_dir = rel.len() == 10 && rel.bytes().all(|b| b.is_ascii_digit() || b == b'-');
        assert!(
            rel == "index.jsonl"
                || rel == alarmscope::store::SPOOL_DIR
                || date_dir
                || (rel.ends_with(".seg") && !rel.contains(&canary)),
            "unexpected file in the store: {rel}"
        );
    }
    // Exported as files, everything lands under the export directory with safe names.
    let out = tempfile::tempdir().unwrap();
    let (events, _) = alarmscope::store::export(&store, out.path(), |_| true).unwrap();
    assert_eq!(events, index.len() as u64);
    for f in walk(out.path()) {
        let rel = f.strip_prefix(out.path()).unwrap();
        for c in rel.components() {
            let name = c
                .as_os_str()
                .to_str()
                .expect("non-UTF-8 name in the export");
            assert!(safe(name), "unsafe name {name:?} in {}", rel.display());
        }
    }
    // Every stored picture is byte-exact.
    let mut pictures = 0;
    for line in &index {
        for f in line.files.iter().filter(|f| f.bytes == pic.len() as u64) {
            assert_eq!(read_file(&store, line, f).unwrap(), pic);
            pictures += 1;
        }
    }
    assert_eq!(pictures, 3 * parts.len());
}

// ---- (g) non-UTF-8 bytes ----

#[test]
fn non_utf8_bytes_everywhere_are_answered_and_do_not_stop_the_server() {
    let _g = serial();
    // Short timeouts: a stream that is no HTTP at all gets no answer, only a close.
    let mut srv = start_srv(|o| o.limits.read_timeout = Duration::from_secs(1));
    let mut dev = Device::start(srv.addr);
    let bad_xml = XML
        .as_bytes()
        .iter()
        .flat_map(|&b| {
            if b == b'V' {
                vec![0xff, 0xfe, b'V']
            } else {
                vec![b]
            }
        })
        .collect::<Vec<u8>>();
    let with_head = |head: &[u8], body: &[u8]| {
        let mut r = head.to_vec();
        r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        r.extend_from_slice(body);
        r
    };
    let (mp_ct, mp_body) = multipart(
        XML,
        &[
            (
                b"name=\"\xff\xfe\x80\"; filename=\"\xc3\x28\xa0\xa1.jpg\"",
                b"\xff\xd8x\xff\xd9",
            ),
            (b"name=\"caf\xe9\"", b"\xff\xd8y\xff\xd9"),
        ],
    );
    let mut mp = b"POST /mp HTTP/1.1\r\nHost: x\r\nContent-Type: ".to_vec();
    mp.extend_from_slice(mp_ct.as_bytes());
    mp.extend_from_slice(b"\r\n");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "method",
            with_head(b"P\xffST /a HTTP/1.1\r\nHost: x\r\n", XML.as_bytes()),
            400,
        ),
        (
            "method all high bytes",
            with_head(b"\xff\xfe\xfd /a HTTP/1.1\r\nHost: x\r\n", XML.as_bytes()),
            400,
        ),
        (
            "path",
            with_head(b"POST /\xff\xfe/\xc3\x28 HTTP/1.1\r\nHost: x\r\n", XML.as_bytes()),
            400,
        ),
        (
            "path, valid UTF-8 beyond ASCII",
            with_head("POST /caméra/报警 HTTP/1.1\r\nHost: x\r\n".as_bytes(), XML.as_bytes()),
            200,
        ),
        (
            "version",
            with_head(b"POST /a HTTP/1.\xff\r\nHost: x\r\n", XML.as_bytes()),
            400,
        ),
        (
            "header name",
            with_head(b"POST /a HTTP/1.1\r\nX-\xff\xfe: v\r\n", XML.as_bytes()),
            400,
        ),
        (
            "header value",
            with_head(
                b"POST /a HTTP/1.1\r\nHost: \xff\xfe\r\nContent-Type: application/xml; charset=\xff\r\n",
                XML.as_bytes(),
            ),
            200,
        ),
        (
            "XML body",
            with_head(b"POST /a HTTP/1.1\r\nContent-Type: application/xml\r\n", &bad_xml),
            200,
        ),
        (
            "JSON body",
            with_head(b"POST /a HTTP/1.1\r\nContent-Type: application/json\r\n", b"{\"eventType\":\"\xff\xfe\"}"),
            200,
        ),
        ("multipart part names", with_head(&mp, &mp_body), 200),
        (
            "multipart boundary",
            with_head(
                b"POST /a HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=\xff\xfe\r\n",
                b"--\xff\xfe\r\nContent-Disposition: form-data; name=\"\xff\"\r\n\r\n\xff\r\n--\xff\xfe--\r\n",
            ),
            200,
        ),
        (
            "chunk size",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\xff\xfe\r\n".to_vec(),
            400,
        ),
        ("only high bytes", vec![0xffu8; 5000], 400),
        ("TLS client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(), 400),
        ("unknown method", with_head(b"BREW /pot HTTP/1.1\r\n", b""), 405),
    ];
    for (what, raw, want) in &cases {
        let got = exchange(&srv, raw);
        match got {
            Ok(s) => assert_eq!(s, *want, "{what}"),
            Err(e) => panic!("{what}: no answer ({e})"),
        }
    }
    assert_served("during non-UTF-8 requests", dev.next(5));
    let samples = dev.finish();
    assert_served("non-UTF-8", &samples);
    let store = srv.store();
    let summary = srv.stop();
    let ok_cases = cases.iter().filter(|c| c.2 == 200).count() as u64;
    assert_eq!(summary.ok, samples.len() as u64 + ok_cases);
    // Stored names are plain ASCII whatever the part names were.
    for f in walk(&store) {
        assert!(f.to_str().is_some_and(|s| s.is_ascii()), "{}", f.display());
    }
}
