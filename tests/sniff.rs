//! `alarmscope sniff` on the loopback interface while this test plays device and server with
//! real sockets: an answered POST, an unanswered one, and a refused port. The live verdicts must
//! match, and the `--write` file must replay to the same verdicts. Needs root (CI runs as root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>127.0.0.1</ipAddress>\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n<macAddress>44:19:b6:00:00:01</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2026-11-25T10:00:00+08:00</dateTime>\r\n<activePostCount>1</activePostCount>\r\n<eventType>VMD</eventType>\r\n<eventState>active</eventState>\r\n<eventDescription>Motion alarm</eventDescription>\r\n</EventNotificationAlert>\r\n";

fn post(port: u16, n: u32) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = BODY.replace("<activePostCount>1", &format!("<activePostCount>{n}"));
    let req = format!(
        "POST /alarm HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    s
}

fn read_request(c: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&buf).contains("</EventNotificationAlert>") {
        let n = c.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn verdicts(lines: &[Value]) -> (Vec<String>, Vec<String>) {
    let mut ex: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == "exchange" && l["provisional"] == false)
        .map(|l| l["exchange"]["verdict"].as_str().unwrap().to_string())
        .collect();
    ex.sort();
    let mut hs: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == "handshake")
        .map(|l| l["connection"]["handshake"].as_str().unwrap().to_string())
        .collect();
    hs.sort();
    (ex, hs)
}

#[test]
fn live_verdicts_on_loopback_match_and_the_written_capture_replays_the_same() {
    if !is_root() {
        eprintln!("skipped: live capture needs root");
        return;
    }
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    // A port with nothing listening: bind, learn the number, close.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("live.pcap");
    let (child, _err) = common::spawn_sniff(|c| {
        c.args([
            "--json",
            "--duration",
            "6",
            "--answer-timeout",
            "1",
            "--filter",
        ])
        .arg(format!("tcp port {port} or tcp port {closed}"))
        .arg("--write")
        .arg(&pcap)
    });

    let srv = std::thread::spawn(move || {
        // First connection: answered 200. Second: read, never answered, held until the device gives up.
        let (mut c1, _) = server.accept().unwrap();
        read_request(&mut c1);
        c1.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        drop(c1);
        let (mut c2, _) = server.accept().unwrap();
        read_request(&mut c2);
        std::thread::sleep(Duration::from_secs(3));
    });
    let mut d1 = post(port, 1);
    let mut answer = String::new();
    d1.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"));
    let d2 = post(port, 2);
    std::thread::sleep(Duration::from_secs(2)); // the device waits, then gives up
    drop(d2);
    assert!(
        TcpStream::connect(("127.0.0.1", closed)).is_err(),
        "port {closed} must be closed"
    );
    srv.join().unwrap();

    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (ex, hs) = verdicts(&lines);
    assert_eq!(
        ex,
        vec!["no_response".to_string(), "ok".to_string()],
        "{lines:?}"
    );
    assert_eq!(hs, vec!["refused".to_string()]);
    // The unanswered request was flagged live, before its connection ended.
    assert!(lines.iter().any(|l| l["type"] == "exchange"
        && l["provisional"] == true
        && l["exchange"]["verdict"] == "no_response"));
    assert!(lines.iter().any(|l| l["type"] == "stall"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["summary"]["requests"], 2);

    // The saved capture replays to the same verdicts.
    let rep = Command::new(env!("CARGO_BIN_EXE_alarmscope"))
        .args(["replay", "--json"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(rep.status.success());
    let doc: Value = serde_json::from_slice(&rep.stdout).unwrap();
    assert_eq!(doc["summary"]["ok"], 1);
    assert_eq!(doc["summary"]["no_response"], 1);
    assert_eq!(doc["summary"]["handshake_refused"], 1);
}
