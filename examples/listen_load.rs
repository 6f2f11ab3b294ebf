//! Load generator for `alarmscope listen`, and the minimal baseline server it is compared with.
//!
//! ```text
//! listen_load baseline ADDR                 bare tokio server: read head + body, answer 200, store nothing
//! listen_load load ADDR KIND CONNS SECS [RATE] [keepalive]
//!     KIND  xml | multipart (XML + ~100 KB picture)
//!     CONNS concurrent client tasks; each sends one event per connection (like most devices)
//!           unless `keepalive` is given
//!     RATE  total events/s (open loop, spread over the tasks); 0 or absent = as fast as answered
//! ```
//! Prints one line: `events=N secs=S rate=R/s p50_ms=.. p99_ms=.. errors=E`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a bench/load tool, not the product: a panic is its failure report

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>10.0.0.5</ipAddress>\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n<macAddress>44:19:b6:00:00:01</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2024-02-29T12:34:56+08:00</dateTime>\r\n<activePostCount>1</activePostCount>\r\n<eventType>ANPR</eventType>\r\n<eventState>active</eventState>\r\n<eventDescription>ANPR</eventDescription>\r\n<channelName>Gate 1</channelName>\r\n<ANPR><country>3</country><licensePlate>AB123CD</licensePlate><line>1</line><direction>forward</direction><confidenceLevel>98</confidenceLevel><plateType>unknown</plateType><plateColor>white</plateColor></ANPR>\r\n</EventNotificationAlert>\r\n";

fn request(kind: &str, keepalive: bool) -> Vec<u8> {
    let (ct, body) = if kind == "multipart" {
        let pic: Vec<u8> = (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let b = "MIME_boundary";
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{XML}\r\n", XML.len()).as_bytes());
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"licensePlatePicture.jpg\"; filename=\"licensePlatePicture.jpg\"\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", pic.len()).as_bytes());
        body.extend_from_slice(&pic);
        body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={b}"), body)
    } else {
        (
            "application/xml; charset=\"UTF-8\"".to_string(),
            XML.as_bytes().to_vec(),
        )
    };
    let mut r = format!(
        "POST /ISAPI/alarm HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: en\r\nDate: Thu, 29 Feb 2024 04:34:56 GMT\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keepalive { "keep-alive" } else { "close" }
    )
    .into_bytes();
    r.extend_from_slice(&body);
    r
}

/// Read one response: head, then Content-Length bytes. Returns the status.
async fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<u16> {
    buf.clear();
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            return Ok(status);
        }
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

async fn baseline(addr: &str) -> std::io::Result<()> {
    let l = TcpListener::bind(addr).await?;
    eprintln!("baseline listening on {}", l.local_addr()?);
    loop {
        let (mut s, _) = l.accept().await?;
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut tmp = vec![0u8; 64 * 1024];
            loop {
                // Head.
                let end = loop {
                    if let Some(e) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break e;
                    }
                    match s.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let close = head.contains("connection: close");
                let mut have = buf.len() - (end + 4);
                while have < len {
                    match s.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => have += n,
                    }
                }
                // The load generator never pipelines: nothing follows the body.
                buf.clear();
                let body = "OK";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{body}",
                    body.len(),
                    if close { "close" } else { "keep-alive" }
                );
                if s.write_all(resp.as_bytes()).await.is_err() || close {
                    let _ = s.shutdown().await;
                    return;
                }
            }
        });
    }
}

async fn load(addr: String, kind: String, conns: usize, secs: f64, rate: f64, keepalive: bool) {
    let req = Arc::new(request(&kind, keepalive));
    let lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for t in 0..conns {
        let (req, lat, errors, addr) = (req.clone(), lat.clone(), errors.clone(), addr.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut buf = Vec::new();
            let mut stream: Option<TcpStream> = None;
            let interval = if rate > 0.0 {
                Some(Duration::from_secs_f64(conns as f64 / rate))
            } else {
                None
            };
            // Spread the open-loop tasks' schedules over one interval.
            let mut next = start
                + interval
                    .map(|i| i.mul_f64(t as f64 / conns as f64))
                    .unwrap_or_default();
            // When this task's previous answer arrived.
            let mut answered = start;
            while Instant::now() < end {
                let mut scheduled = None;
                if let Some(i) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    scheduled = Some(next);
                    next += i;
                }
                let mut s = match stream.take() {
                    Some(s) => s,
                    None => match TcpStream::connect(&addr).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            s
                        }
                        Err(_) => {
                            errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                // Latency, to the last answer byte, from:
                // - closed loop: the first request byte;
                // - open loop, when the previous answer came after this send was due: the time it
                //   was due (the server held the client back; not counting that wait would hide
                //   the server's stalls: "coordinated omission");
                // - open loop otherwise: when the request really goes out. The tokio timer wakes
                //   up to a millisecond late, and that lateness is the load generator's own.
                let now = Instant::now();
                let t0 = match scheduled {
                    Some(due) if answered > due => due,
                    _ => now,
                };
                let ok = s.write_all(&req).await.is_ok()
                    && matches!(read_response(&mut s, &mut buf).await, Ok(200));
                answered = Instant::now();
                if ok {
                    mine.push(t0.elapsed().as_secs_f64() * 1000.0);
                    if keepalive {
                        stream = Some(s);
                    }
                } else {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            lat.lock().await.extend(mine);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = lat.lock().await.clone();
    l.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        if l.is_empty() {
            0.0
        } else {
            l[((l.len() - 1) as f64 * p).round() as usize]
        }
    };
    println!(
        "events={} secs={:.2} rate={:.0}/s p50_ms={:.2} p99_ms={:.2} errors={}",
        l.len(),
        elapsed,
        l.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        errors.load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("baseline") => {
            let addr = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:18081".into());
            if let Err(e) = rt.block_on(baseline(&addr)) {
                eprintln!("baseline: {e}");
                std::process::exit(2);
            }
        }
        Some("load") => {
            let addr = args
                .get(2)
                .cloned()
                .unwrap_or_else(|| "127.0.0.1:8080".into());
            let kind = args.get(3).cloned().unwrap_or_else(|| "xml".into());
            let conns: usize = args.get(4).and_then(|v| v.parse().ok()).unwrap_or(32);
            let secs: f64 = args.get(5).and_then(|v| v.parse().ok()).unwrap_or(5.0);
            let rate: f64 = args.get(6).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let keepalive = args.iter().any(|a| a == "keepalive");
            rt.block_on(load(addr, kind, conns, secs, rate, keepalive));
        }
        _ => {
            eprintln!("usage: listen_load baseline ADDR | listen_load load ADDR xml|multipart CONNS SECS [RATE] [keepalive]");
            std::process::exit(2);
        }
    }
}
