//! `alarmscope listen` over real loopback sockets: storage, framing, limits, timeouts, faults,
//! and a kill -9 under load with the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use alarmscope::listen::EventRecord;
use alarmscope::store::{read_file, read_index};
use common::Srv;

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>10.0.0.5</ipAddress>\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n<macAddress>44:19:b6:00:00:01</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2024-02-29T12:34:56+08:00</dateTime>\r\n<activePostCount>1</activePostCount>\r\n<eventType>VMD</eventType>\r\n<eventState>active</eventState>\r\n<eventDescription>Motion alarm</eventDescription>\r\n</EventNotificationAlert>\r\n";

const JSON: &str = r#"{"ipAddress":"10.0.0.9","portNo":80,"protocol":"HTTP","macAddress":"44:19:b6:00:00:09","channelID":1,"dateTime":"2024-02-29T12:34:56+08:00","activePostCount":1,"eventType":"AccessControllerEvent","eventState":"active","eventDescription":"Access Controller Event","deviceID":"T1","AccessControllerEvent":{"majorEventType":5,"subEventType":75,"cardNo":"12345","serialNo":7}}"#;

fn xml_of(ty: &str, desc: &str) -> String {
    XML.replace(
        "<eventType>VMD</eventType>",
        &format!("<eventType>{ty}</eventType>"),
    )
    .replace("Motion alarm", desc)
}

/// Deterministic picture-like bytes (JPEG markers around a pattern).
fn picture(len: usize, seed: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    if len >= 4 {
        v[0] = 0xff;
        v[1] = 0xd8;
        v[len - 2] = 0xff;
        v[len - 1] = 0xd9;
    }
    v
}

/// A multipart body: XML metadata part then pictures named as given.
fn multipart(xml: &str, pics: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let b = "MIME_boundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"anpr.xml\"; filename=\"anpr.xml\"\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n", xml.len()).as_bytes());
    body.extend_from_slice(xml.as_bytes());
    body.extend_from_slice(b"\r\n");
    for (name, data) in pics {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", data.len()).as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn request(path: &str, ct: &str, body: &[u8], extra: &str) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nAccept-Language: en\r\nDate: Thu, 29 Feb 2024 04:34:56 GMT\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
}

/// Read one response (head + Content-Length body).
fn read_response(s: &mut TcpStream) -> std::io::Result<Resp> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok(Resp {
        status,
        headers,
        body,
    })
}

fn post(srv: &Srv, path: &str, ct: &str, body: &[u8]) -> Resp {
    let mut s = srv.connect();
    s.write_all(&request(path, ct, body, "")).unwrap();
    read_response(&mut s).unwrap()
}

/// A stored file, read back through the store's index on disk (not from the record itself).
fn stored_file(store: &Path, rec: &EventRecord, file: &str) -> Vec<u8> {
    let seq = rec.stored.as_ref().expect("stored").seq;
    let index = read_index(store).unwrap();
    let line = index
        .iter()
        .find(|l| l.seq == seq)
        .expect("event in the index");
    let f = line
        .files
        .iter()
        .find(|f| f.file == file)
        .unwrap_or_else(|| panic!("{file} not in {:?}", line.files));
    read_file(store, line, f).unwrap()
}

#[test]
fn xml_event_is_stored_then_answered_200() {
    let mut srv = Srv::start(|_| {});
    let r = post(
        &srv,
        "/ISAPI/alarm",
        "application/xml; charset=\"UTF-8\"",
        XML.as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length").unwrap(),
        r.body.len().to_string()
    );
    assert!(r.header("date").unwrap().ends_with(" GMT"));
    assert_eq!(r.header("connection"), Some("keep-alive"));
    assert!(String::from_utf8_lossy(&r.body).contains("<statusCode>1</statusCode>"));
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.request.path, "/ISAPI/alarm");
    assert_eq!(ev.exchange.request.body_bytes, XML.len() as u64);
    assert_eq!(ev.exchange.response.as_ref().unwrap().status, 200);
    assert_eq!(ev.exchange.verdict.as_str(), "ok");
    let e = ev.exchange.event.as_ref().unwrap();
    assert_eq!(e.event_type.as_deref(), Some("VMD"));
    assert_eq!(e.event_state.as_deref(), Some("active"));
    assert_eq!(stored_file(&srv.store(), &ev, "body.xml"), XML.as_bytes());
    let st = ev.stored.as_ref().unwrap();
    assert!(st.rel_dir.ends_with("-127.0.0.1-VMD"), "{}", st.rel_dir);
    let meta: serde_json::Value =
        serde_json::from_slice(&stored_file(&srv.store(), &ev, "meta.json")).unwrap();
    assert_eq!(meta["request"]["path"], "/ISAPI/alarm");
    assert_eq!(meta["event"]["event_type"], "VMD");
    let idx = read_index(&srv.store()).unwrap();
    assert_eq!(idx.len(), 1);
    assert_eq!(idx[0].dir, st.rel_dir);
    assert_eq!(idx[0].event_type.as_deref(), Some("VMD"));
    // The JSON line carries the replay exchange fields plus the stored paths.
    let line = serde_json::to_value(&ev).unwrap();
    for k in [
        "request",
        "response",
        "verdict",
        "event",
        "parts",
        "stored",
        "connection",
        "client",
    ] {
        assert!(line.get(k).is_some(), "{k} missing from {line}");
    }
    srv.stop();
}

#[test]
fn json_event_is_decoded_and_stored() {
    let mut srv = Srv::start(|_| {});
    let r = post(&srv, "/", "application/json", JSON.as_bytes());
    assert_eq!(r.status, 200);
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.body_kind, "json");
    assert_eq!(
        ev.exchange.event.as_ref().unwrap().event_type.as_deref(),
        Some("AccessControllerEvent")
    );
    assert_eq!(stored_file(&srv.store(), &ev, "body.json"), JSON.as_bytes());
    srv.stop();
}

#[test]
fn multipart_pictures_are_stored_byte_exact() {
    let mut srv = Srv::start(|_| {});
    let xml = xml_of("ANPR", "plate");
    let p1 = picture(150_001, 1);
    let p2 = picture(2_500_000, 2);
    let (ct, body) = multipart(
        &xml,
        &[
            ("licensePlatePicture.jpg", &p1),
            ("detectionPicture.jpg", &p2),
        ],
    );
    let r = post(&srv, "/alarm", &ct, &body);
    assert_eq!(r.status, 200);
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.body_kind, "multipart");
    let sizes: Vec<u64> = ev.exchange.parts.iter().map(|p| p.bytes).collect();
    assert_eq!(sizes, [xml.len() as u64, 150_001, 2_500_000]);
    assert_eq!(
        stored_file(&srv.store(), &ev, "p0-anpr.xml"),
        xml.as_bytes()
    );
    assert_eq!(
        stored_file(&srv.store(), &ev, "p1-licensePlatePicture.jpg"),
        p1
    );
    assert_eq!(
        stored_file(&srv.store(), &ev, "p2-detectionPicture.jpg"),
        p2
    );
    let files: Vec<(String, u64)> = ev
        .stored
        .as_ref()
        .unwrap()
        .files
        .iter()
        .skip(1)
        .map(|f| (f.file.clone(), f.bytes))
        .collect();
    assert_eq!(
        files,
        [
            ("p0-anpr.xml".to_string(), xml.len() as u64),
            ("p1-licensePlatePicture.jpg".to_string(), 150_001),
            ("p2-detectionPicture.jpg".to_string(), 2_500_000)
        ]
    );
    srv.stop();
}

#[test]
fn keep_alive_carries_several_events() {
    let mut srv = Srv::start(|_| {});
    let mut s = srv.connect();
    for i in 0..3 {
        let xml = xml_of("VMD", &format!("event {i}"));
        s.write_all(&request("/a", "application/xml", xml.as_bytes(), ""))
            .unwrap();
        assert_eq!(read_response(&mut s).unwrap().status, 200);
    }
    let evs = srv.events(3);
    let idx: Vec<(u64, usize)> = evs
        .iter()
        .map(|e| (e.connection, e.exchange.index))
        .collect();
    assert_eq!(idx, [(1, 0), (1, 1), (1, 2)]);
    assert_eq!(read_index(&srv.store()).unwrap().len(), 3);
    drop(s);
    srv.stop();
}

#[test]
fn chunked_body_is_reassembled() {
    let mut srv = Srv::start(|_| {});
    let mut s = srv.connect();
    let body = XML.as_bytes();
    let (a, b) = body.split_at(100);
    let mut req = b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(format!("{:x}\r\n", a.len()).as_bytes());
    req.extend_from_slice(a);
    req.extend_from_slice(format!("\r\n{:X}\r\n", b.len()).as_bytes());
    req.extend_from_slice(b);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    s.write_all(&req).unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 200);
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.request.body_bytes, XML.len() as u64);
    assert_eq!(stored_file(&srv.store(), &ev, "body.xml"), XML.as_bytes());
    srv.stop();
}

#[test]
fn expect_100_continue_gets_interim_then_200() {
    let mut srv = Srv::start(|_| {});
    let mut s = srv.connect();
    let req = request(
        "/e",
        "application/xml",
        XML.as_bytes(),
        "Expect: 100-continue\r\n",
    );
    let head_len = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    s.write_all(&req[..head_len]).unwrap();
    let interim = read_response(&mut s).unwrap();
    assert_eq!(interim.status, 100);
    s.write_all(&req[head_len..]).unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 200);
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.response.as_ref().unwrap().interim, [100]);
    srv.stop();
}

#[test]
fn malformed_request_gets_400_and_server_keeps_serving() {
    let mut srv = Srv::start(|_| {});
    let mut s = srv.connect();
    s.write_all(b"POST /x HTTP/1.1\r\nContent-Length: banana\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 400);
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap_or(0),
        0,
        "connection closed after 400"
    );
    assert_eq!(
        post(&srv, "/ok", "application/xml", XML.as_bytes()).status,
        200
    );
    let evs = srv.events(2);
    assert_eq!(evs[0].exchange.response.as_ref().unwrap().status, 400);
    assert!(evs[0].exchange.request.error.is_some());
    assert_eq!(evs[1].exchange.verdict.as_str(), "ok");
    srv.stop();
}

#[test]
fn oversize_body_and_head_get_413() {
    let mut srv = Srv::start(|o| {
        o.limits.max_body_bytes = 10_000;
        o.limits.max_header_bytes = 2_000;
    });
    // Declared too large: refused before the body.
    let mut s = srv.connect();
    s.write_all(b"POST /big HTTP/1.1\r\nContent-Type: image/jpeg\r\nContent-Length: 10001\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 413);
    // Chunked body that grows past the limit.
    let mut s = srv.connect();
    s.write_all(b"POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = [b'a'; 4000];
    for _ in 0..3 {
        let mut c = b"FA0\r\n".to_vec();
        c.extend_from_slice(&chunk);
        c.extend_from_slice(b"\r\n");
        if s.write_all(&c).is_err() {
            break;
        }
    }
    assert_eq!(read_response(&mut s).unwrap().status, 413);
    // Head too large.
    let mut s = srv.connect();
    let big = format!(
        "POST / HTTP/1.1\r\nX-Pad: {}\r\nContent-Length: 0\r\n\r\n",
        "p".repeat(3000)
    );
    s.write_all(big.as_bytes()).unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 413);
    // Exactly at the limit is fine.
    let body = vec![b'x'; 10_000];
    assert_eq!(
        post(&srv, "/fits", "application/octet-stream", &body).status,
        200
    );
    srv.stop();
}

#[test]
fn slow_header_client_is_timed_out_without_blocking_others() {
    let mut srv = Srv::start(|o| o.limits.read_timeout = Duration::from_millis(600));
    let mut slow = srv.connect();
    slow.write_all(b"POST /slow HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t0 = Instant::now();
    // Dribble a header byte every 100 ms: each read progresses, but the head never finishes.
    let dribble = std::thread::spawn(move || {
        for _ in 0..30 {
            if slow.write_all(b"X").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        slow
    });
    // Meanwhile others are served at once.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(
            post(&srv, "/fast", "application/xml", XML.as_bytes()).status,
            200
        );
        assert!(t.elapsed() < Duration::from_millis(500));
    }
    let mut slow = dribble.join().unwrap();
    let r = read_response(&mut slow).unwrap();
    assert_eq!(r.status, 408);
    assert!(t0.elapsed() >= Duration::from_millis(600));
    srv.stop();
}

#[test]
fn path_prefix_answers_404_to_other_paths() {
    let mut srv = Srv::start(|o| o.path_prefix = Some("/alarm".into()));
    assert_eq!(
        post(&srv, "/wrong", "application/xml", XML.as_bytes()).status,
        404
    );
    assert_eq!(
        post(&srv, "/alarm/cam1", "application/xml", XML.as_bytes()).status,
        200
    );
    let evs = srv.events(2);
    assert_eq!(evs[0].exchange.request.path, "/wrong");
    assert!(evs[0].stored.is_none());
    assert_eq!(read_index(&srv.store()).unwrap().len(), 1);
    srv.stop();
}

#[test]
fn fault_delay_status_and_selectors() {
    let mut srv = Srv::start(|o| {
        o.faults = vec![
            "status=503,type=IO".parse().unwrap(),
            "delay=400ms,every=2,type=VMD".parse().unwrap(),
        ];
    });
    // VMD #1: prompt; VMD #2: delayed; IO: 503.
    let t = Instant::now();
    assert_eq!(
        post(&srv, "/", "application/xml", xml_of("VMD", "1").as_bytes()).status,
        200
    );
    assert!(t.elapsed() < Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(
        post(&srv, "/", "application/xml", xml_of("VMD", "2").as_bytes()).status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        post(&srv, "/", "application/xml", xml_of("IO", "3").as_bytes()).status,
        503
    );
    let evs = srv.events(3);
    let faults: Vec<Option<&str>> = evs
        .iter()
        .map(|e| e.exchange.injected_fault.as_deref())
        .collect();
    assert_eq!(faults, [None, Some("delay=400ms"), Some("status=503")]);
    assert_eq!(evs[2].exchange.verdict.as_str(), "error_status");
    assert!(evs[1].exchange.response.as_ref().unwrap().latency_ms >= 400.0);
    let s = srv.stop();
    assert_eq!(s.injected_faults, 2);
}

/// The final report covers the whole session, not the last connections kept: with room on the
/// diagnosis's time line for 8 requests, 30 events still give 30 requests, and every failed one
/// (each IO event answered 503, each one a stall until the next) is counted.
#[test]
fn final_report_covers_the_whole_session() {
    let mut srv = Srv::start(|o| {
        o.store = None;
        o.max_diagnosed_requests = 8;
        o.faults = vec!["status=503,type=IO".parse().unwrap()];
    });
    for i in 0..30 {
        let ty = if i % 3 == 2 { "IO" } else { "VMD" };
        let r = post(
            &srv,
            "/",
            "application/xml",
            xml_of(ty, &i.to_string()).as_bytes(),
        );
        assert_eq!(r.status, if ty == "IO" { 503 } else { 200 });
    }
    srv.events(30);
    let (report, summary, _) = srv.stop_with_report();
    assert_eq!(summary.events, 30);
    assert_eq!(report.summary.connections, 30);
    assert_eq!(report.summary.requests, 30);
    assert_eq!((report.summary.ok, report.summary.error_status), (20, 10));
    assert_eq!(report.summary.stalls, 10);
    assert_eq!(report.devices.len(), 1);
    assert_eq!(report.devices[0].events, 30);
    assert_eq!(report.devices[0].stalls, 10);
    assert!(report.stalls.len() <= 10 && !report.stalls.is_empty());
    assert!(report.stalls.iter().all(|s| s.cause == "error_status 503"));
}

#[test]
fn fault_hang_holds_and_reset_aborts() {
    let mut srv = Srv::start(|o| {
        o.faults = vec![
            "hang,type=VMD".parse().unwrap(),
            "reset,type=IO".parse().unwrap(),
        ];
    });
    let mut s = srv.connect();
    s.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    s.write_all(&request("/", "application/xml", XML.as_bytes(), ""))
        .unwrap();
    let mut b = [0u8; 64];
    let e = s.read(&mut b).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.injected_fault.as_deref(), Some("hang"));
    assert_eq!(ev.exchange.verdict.as_str(), "no_response");
    assert!(ev.exchange.response.is_none());
    // The event was stored all the same (it arrived complete).
    assert!(ev.stored.is_some());

    let mut r = srv.connect();
    r.write_all(&request(
        "/",
        "application/xml",
        xml_of("IO", "x").as_bytes(),
        "",
    ))
    .unwrap();
    let e = r.read(&mut b);
    assert!(
        matches!(&e, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{e:?}"
    );
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.injected_fault.as_deref(), Some("reset"));
    assert_eq!(ev.exchange.verdict.as_str(), "no_response");
    drop(s);
    srv.stop();
}

#[test]
fn hostile_part_filename_stays_in_the_store() {
    let mut srv = Srv::start(|_| {});
    let pic = picture(1000, 9);
    let (ct, body) = multipart(
        &xml_of("faceSnap", "x"),
        &[("../../../../../tmp/evil.jpg", &pic)],
    );
    assert_eq!(post(&srv, "/", &ct, &body).status, 200);
    let ev = srv.events(1).remove(0);
    let files: Vec<String> = ev
        .stored
        .as_ref()
        .unwrap()
        .files
        .iter()
        .map(|f| f.file.clone())
        .collect();
    for f in &files {
        assert!(!f.contains('/') && !f.starts_with('.'), "{f}");
    }
    // Leading dots dropped, separators replaced: "../../../../../tmp/evil.jpg".
    assert_eq!(files[2], "p1-_.._.._.._.._tmp_evil.jpg");
    assert_eq!(stored_file(&srv.store(), &ev, &files[2]), pic);
    // Nothing was written next to the store.
    let siblings: Vec<_> = std::fs::read_dir(srv.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(siblings, [std::ffi::OsString::from("store")]);
    srv.stop();
}

// ---- the real binary ----

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_alarmscope"))
}

/// Start the binary; its bound address and the lines of its stdout as they come.
fn start_bin(args: &[&str]) -> (std::process::Child, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let (mut child, addr, mut err) = common::spawn_listen(args);
    let out = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().unwrap();
    let o2 = out.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            o2.lock().unwrap().push(l);
        }
    });
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (child, addr, out)
}

/// A reader of stdout that stops reading (a full pipe) must not stop the answers: lines are
/// dropped and counted instead, and the process still exits on its own.
#[test]
fn a_stdout_nobody_reads_does_not_stop_the_answers() {
    let (mut child, addr, mut err) = common::spawn_listen(&[
        "--bind",
        "127.0.0.1:0",
        "--no-store",
        "--json",
        "--count",
        "400",
    ]);
    let _unread = child.stdout.take().unwrap(); // open, never read: ~60 lines fill the pipe
    let body = xml_of("VMD", &"x".repeat(1000));
    for i in 0..400 {
        let mut s = common::connect(addr);
        s.write_all(&request("/", "application/xml", body.as_bytes(), ""))
            .unwrap();
        let r = read_response(&mut s);
        assert!(
            matches!(&r, Ok(r) if r.status == 200),
            "event {i}: {:?}",
            r.map(|r| r.status)
        );
    }
    assert_eq!(wait_timeout(&mut child, Duration::from_secs(20)), Some(0));
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("output lines not written"), "{rest}");
}

#[test]
fn binary_json_lines_and_count_stop() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (mut child, addr, out) = start_bin(&[
        "--bind",
        "127.0.0.1:0",
        "--store",
        store.to_str().unwrap(),
        "--json",
        "--count",
        "2",
    ]);
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&request("/", "application/xml", XML.as_bytes(), ""))
            .unwrap();
        assert_eq!(read_response(&mut s).unwrap().status, 200);
    }
    let status = wait_timeout(&mut child, Duration::from_secs(10));
    assert_eq!(status, Some(0));
    std::thread::sleep(Duration::from_millis(100));
    let lines = out.lock().unwrap().clone();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["verdict"], "ok");
    assert_eq!(first["event"]["event_type"], "VMD");
    assert!(first["stored"]["segment"]
        .as_str()
        .unwrap()
        .starts_with(store.to_str().unwrap()));
    assert!(first["stored"]["rel_dir"]
        .as_str()
        .unwrap()
        .ends_with("-127.0.0.1-VMD"));
    let last: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(last["final"], true);
    assert_eq!(last["listen"]["events"], 2);
    assert_eq!(last["listen"]["ok"], 2);
}

/// A device that resets its connection right after its request makes the answer's write fail.
/// The failure must stay with that one exchange: the store's commit thread (which every later
/// event needs) and the process (SIGPIPE is at its default in the binary) go on, and every event
/// is still stored and reported.
#[test]
fn devices_that_reset_before_the_answer_do_not_take_the_listener_down() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (mut child, addr, out) = start_bin(&[
        "--bind",
        "127.0.0.1:0",
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]);
    let req = request("/", "application/xml", XML.as_bytes(), "");
    for _ in 0..200 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&req).unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s); // RST: the answer, when it comes, meets a dead socket
    }
    // Every event is stored (each is durable before its answer is tried) and the listener still
    // answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.lock().unwrap().len() < 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(child.try_wait().unwrap(), None, "the listener died");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&req).unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 200);
    while out.lock().unwrap().len() < 201 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let lines = out.lock().unwrap().clone();
    assert_eq!(lines.len(), 201, "one JSON line per event");
    let stored = lines.iter().filter(|l| l.contains("\"stored\":{")).count();
    assert_eq!(stored, 201);
}

/// The store's warnings reach stderr (headless): here today's date directory cannot be made, so
/// the segment prepared ahead fails, and so does the event (500).
#[test]
fn store_warnings_reach_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    std::fs::create_dir_all(&store).unwrap();
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let today: String = alarmscope::time::Timestamp::from_nanos(d.as_secs() as i64, 0)
        .to_utc_string()
        .chars()
        .take(10)
        .collect();
    std::fs::write(store.join(&today), b"not a directory").unwrap();
    let (mut child, addr, err) = common::spawn_listen(&[
        "--bind",
        "127.0.0.1:0",
        "--json",
        "--store",
        store.to_str().unwrap(),
    ]);
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&request("/", "application/xml", XML.as_bytes(), ""))
        .unwrap();
    assert_eq!(read_response(&mut s).unwrap().status, 500);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in err.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("no warning on stderr"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("WARN") && line.contains("preparing a segment ahead"),
        "{line:?}"
    );
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes in a pipe: {line:?}"
    );
}

fn wait_timeout(child: &mut std::process::Child, d: Duration) -> Option<i32> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if let Ok(Some(s)) = child.try_wait() {
            return s.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

#[test]
fn binary_clear_errors_for_port_in_use_and_unwritable_store() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let o = bin()
        .args([
            "listen",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--store",
            dir.path().to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("already in use"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let file = dir.path().join("f");
    std::fs::write(&file, b"x").unwrap();
    let o = bin()
        .args([
            "listen",
            "--bind",
            "127.0.0.1:0",
            "--store",
            file.join("s").to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("store"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Acknowledged events by id: (metadata XML, picture).
type Acked = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

#[test]
fn kill_9_under_load_keeps_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (mut child, addr, _out) = start_bin(&[
        "--bind",
        "127.0.0.1:0",
        "--store",
        store.to_str().unwrap(),
        "--json",
    ]);
    let acked: Acked = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for t in 0..12u8 {
        let acked = acked.clone();
        let stop = stop.clone();
        clients.push(std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let id = format!("t{t}-n{n}");
                let xml = xml_of("ANPR", &id);
                let pic = picture(
                    1000 + (n as usize * 7919 + t as usize * 104_729) % 60_000,
                    t.wrapping_add(n as u8),
                );
                let (ct, body) = multipart(&xml, &[("vehiclePicture.jpg", &pic)]);
                let Ok(mut s) = TcpStream::connect(addr) else {
                    break;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                if s.write_all(&request(&format!("/alarm/{id}"), &ct, &body, ""))
                    .is_err()
                {
                    break;
                }
                match read_response(&mut s) {
                    Ok(r) if r.status == 200 => {
                        acked.lock().unwrap().insert(id, (xml, pic));
                    }
                    _ => break,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() >= 20,
        "only {} events acknowledged",
        acked.len()
    );
    // Every complete index line points at complete bytes; map them by request path.
    let index = read_index(&store).unwrap();
    let mut by_id = HashMap::new();
    for line in &index {
        let mut files = HashMap::new();
        for f in &line.files {
            let bytes = read_file(&store, line, f)
                .unwrap_or_else(|e| panic!("{}/{}: {e}", line.dir, f.file));
            assert_eq!(bytes.len() as u64, f.bytes, "{}/{}", line.dir, f.file);
            files.insert(f.file.clone(), bytes);
        }
        let meta: serde_json::Value = serde_json::from_slice(&files["meta.json"]).unwrap();
        let path = meta["request"]["path"].as_str().unwrap().to_string();
        by_id.insert(
            path.trim_start_matches("/alarm/").to_string(),
            (line.seq, files),
        );
    }
    // The process died, not the machine: the index file itself (written before each answer,
    // flushed later) already lists every acknowledged event, without the segment scan.
    let text = std::fs::read_to_string(store.join("index.jsonl")).unwrap();
    let in_file: std::collections::HashSet<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<alarmscope::store::IndexLine>(l).ok())
        .map(|l| l.seq)
        .collect();
    for (id, (xml, pic)) in acked.iter() {
        let (seq, files) = by_id
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged event {id} has no index line"));
        assert_eq!(files["p0-anpr.xml"], xml.as_bytes(), "{id}");
        assert_eq!(&files["p1-vehiclePicture.jpg"], pic, "{id}");
        assert!(in_file.contains(seq), "{id} (seq {seq}) not in index.jsonl");
    }
    // A restart keeps them all: the store's repair neither drops nor duplicates any.
    let reopened = alarmscope::store::Store::open(&store, Default::default()).unwrap();
    reopened.close();
    let again = read_index(&store).unwrap();
    let mut seqs: Vec<u64> = again.iter().map(|l| l.seq).collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "an event indexed twice");
    for (id, (seq, _)) in &by_id {
        assert!(seqs.binary_search(seq).is_ok(), "{id} lost on restart");
    }
}

#[test]
fn client_closing_mid_body_is_incomplete_and_leaves_no_staging() {
    let mut srv = Srv::start(|_| {});
    let mut s = srv.connect();
    let req = request("/cut", "application/xml", XML.as_bytes(), "");
    s.write_all(&req[..req.len() - 50]).unwrap();
    drop(s);
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.verdict.as_str(), "incomplete");
    assert_eq!(ev.exchange.request.body_bytes, XML.len() as u64 - 50);
    assert!(ev.stored.is_none());
    // Nothing was indexed and no spool file is left behind.
    let store = srv.store();
    assert!(read_index(&store).unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.join(alarmscope::store::SPOOL_DIR))
            .unwrap()
            .count(),
        0
    );
    let summary = srv.stop();
    assert_eq!(summary.incomplete, 1);
}

#[test]
fn client_closing_mid_large_body_leaves_no_spool_file() {
    let mut srv = Srv::start(|_| {});
    let pic = picture(1_500_000, 3);
    let (ct, body) = multipart(&xml_of("ANPR", "cut"), &[("big.jpg", &pic)]);
    let req = request("/cut", &ct, &body, "");
    let mut s = srv.connect();
    // Past the spill threshold (the picture is being spooled), then gone.
    s.write_all(&req[..1_000_000]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let spool = srv.store().join(alarmscope::store::SPOOL_DIR);
    let during = std::fs::read_dir(&spool).unwrap().count();
    drop(s);
    let ev = srv.events(1).remove(0);
    assert_eq!(ev.exchange.verdict.as_str(), "incomplete");
    assert!(ev.stored.is_none());
    assert_eq!(during, 1, "the cut event was being spooled");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    assert!(read_index(&srv.store()).unwrap().is_empty());
    srv.stop();
}

#[test]
fn store_ls_and_export_give_back_the_pictures_as_files() {
    let mut srv = Srv::start(|_| {});
    let pic = picture(400_000, 7);
    let (ct, body) = multipart(
        &xml_of("ANPR", "export"),
        &[("licensePlatePicture.jpg", &pic)],
    );
    assert_eq!(post(&srv, "/alarm", &ct, &body).status, 200);
    assert_eq!(
        post(
            &srv,
            "/alarm",
            "application/xml",
            xml_of("VMD", "x").as_bytes()
        )
        .status,
        200
    );
    let evs = srv.events(2);
    let store = srv.store();
    let ls = bin().args(["store", "ls"]).arg(&store).output().unwrap();
    assert!(
        ls.status.success(),
        "{}",
        String::from_utf8_lossy(&ls.stderr)
    );
    let text = String::from_utf8_lossy(&ls.stdout);
    assert!(
        text.contains("p1-licensePlatePicture.jpg 400000B"),
        "{text}"
    );
    assert!(text.contains("2 events"), "{text}");
    let out = tempfile::tempdir().unwrap();
    let ex = bin()
        .args(["store", "export"])
        .arg(&store)
        .arg(out.path())
        .args(["--type", "anpr"])
        .output()
        .unwrap();
    assert!(
        ex.status.success(),
        "{}",
        String::from_utf8_lossy(&ex.stderr)
    );
    let anpr = evs
        .iter()
        .find(|e| e.exchange.body_kind == "multipart")
        .unwrap();
    let dir = out.path().join(&anpr.stored.as_ref().unwrap().rel_dir);
    assert_eq!(
        std::fs::read(dir.join("p1-licensePlatePicture.jpg")).unwrap(),
        pic
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["event"]["event_type"], "ANPR");
    // Only the ANPR event was exported.
    let dates: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().collect();
    assert_eq!(dates.len(), 1);
    assert_eq!(std::fs::read_dir(dates[0].path()).unwrap().count(), 1);
    srv.stop();
}
