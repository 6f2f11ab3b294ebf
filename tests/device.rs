//! End-to-end over loopback: `alarmscope device` against `alarmscope simulate --serve-isapi`,
//! and the simulated devices pushing to small in-test servers that answer 200, 503, or never.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::sim::{SimDevice, SIM_PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_alarmscope");

#[derive(Clone, Copy)]
enum Mode {
    Ok,
    Status(u16),
    Never,
}

/// One received request: source IP, content type, body.
#[derive(Debug, Clone)]
struct Got {
    peer: IpAddr,
    content_type: String,
    body: Vec<u8>,
}

struct Server {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(e) = end {
            let head = String::from_utf8_lossy(&buf[..e]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < e + 4 + len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let ct = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Type: ").map(str::to_string))
                .unwrap_or_default();
            return Some((ct, buf[e + 4..e + 4 + len].to_vec()));
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A tiny alarm server on 127.0.0.1 that stores what it receives and answers per `mode`.
fn server(mode: Mode) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let g = g.clone();
            thread::spawn(move || {
                let peer = s.peer_addr().unwrap().ip();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                if let Some((content_type, body)) = read_request(&mut s) {
                    g.lock().unwrap().push(Got {
                        peer,
                        content_type,
                        body,
                    });
                    match mode {
                        Mode::Ok => {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nDate: Tue, 07 May 2024 10:00:00 GMT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        }
                        Mode::Status(c) => {
                            let _ = s.write_all(format!("HTTP/1.1 {c} Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
                        }
                        Mode::Never => {
                            // Hold the connection without answering until the device gives up.
                            let mut b = [0u8; 64];
                            while matches!(s.read(&mut b), Ok(n) if n > 0) {}
                        }
                    }
                }
            });
        }
    });
    Server { port, got }
}

fn device(args: &[&str], password: &str) -> Output {
    Command::new(BIN)
        .arg("device")
        .args(args)
        .args(["--user", "admin", "--password", password])
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn xml_device_configured_then_pushes() {
    let srv = server(Mode::Ok);
    let mut sim = SimDevice::start(&["--count", "4", "--rate", "20", "--kind", "xml"]);
    let dev = sim.url();

    let caps = device(&["caps", "--device", &dev], SIM_PASSWORD);
    assert!(caps.status.success(), "{}", stderr(&caps));
    let text = stdout(&caps);
    assert!(text.contains("XML API"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("Host slots") && l.trim_end().ends_with(" 2")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("Port range") && l.contains("1-65535")),
        "{text}"
    );

    let bad = device(&["get", "--device", &dev], "wrong");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("wrong user name or password"),
        "{}",
        stderr(&bad)
    );

    let get = device(&["get", "--device", &dev, "--json"], SIM_PASSWORD);
    let v: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(v["api"], "XML");
    assert_eq!(v["slots"].as_array().unwrap().len(), 2);
    assert_eq!(v["slots"][0]["ip_address"], "0.0.0.0");

    // An invalid change is refused with the device's ResponseStatus.
    let refused = device(
        &[
            "set",
            "--device",
            &dev,
            "--id",
            "2",
            "--address",
            "not a host!",
        ],
        SIM_PASSWORD,
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("subStatusCode badParameters"),
        "{}",
        stderr(&refused)
    );

    let port = srv.port.to_string();
    let set = device(
        &[
            "set",
            "--device",
            &dev,
            "--json",
            "--id",
            "1",
            "--address",
            "127.0.0.1",
            "--port",
            &port,
            "--url",
            "/alarm",
        ],
        SIM_PASSWORD,
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let v: serde_json::Value = serde_json::from_slice(&set.stdout).unwrap();
    assert_eq!(v["status"]["status_code"], 1);
    let changes: BTreeSet<(String, String, String)> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().into(),
                c["before"].as_str().unwrap().into(),
                c["after"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        ("url", "/", "/alarm"),
        ("ipAddress", "0.0.0.0", "127.0.0.1"),
        ("portNo", "80", port.as_str()),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(changes, want);

    let s = sim.summary();
    assert_eq!(s["events"], 4);
    assert_eq!(s["answered_200"], 4);
    assert_eq!(s["retries"], 0);
    let got = srv.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);
    // Camera XML events, from the device's own loopback address, in order VMD, linedetection...
    let types: Vec<String> = got
        .iter()
        .map(|g| {
            let b = String::from_utf8_lossy(&g.body);
            b.split("<eventType>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        types,
        ["VMD", "linedetection", "fielddetection", "PeopleCounting"]
    );
    assert!(got
        .iter()
        .all(|g| g.peer == "127.0.0.2".parse::<IpAddr>().unwrap()));
    assert!(got.iter().all(|g| g.content_type.contains("xml")));
}

#[test]
fn json_device_set_and_test() {
    let srv = server(Mode::Ok);
    let mut sim = SimDevice::start(&[
        "--isapi-format",
        "json",
        "--count",
        "2",
        "--rate",
        "0.5",
        "--kind",
        "json",
    ]);
    let dev = sim.url();

    let get = device(&["get", "--device", &dev, "--json"], SIM_PASSWORD);
    assert!(get.status.success(), "{}", stderr(&get));
    let v: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(v["api"], "JSON");
    assert_eq!(v["slots"].as_array().unwrap().len(), 1);

    let bad = device(&["caps", "--device", &dev], "nope");
    assert!(stderr(&bad).contains("wrong user name or password"));

    let port = srv.port.to_string();
    let set = device(
        &[
            "set",
            "--device",
            &dev,
            "--id",
            "1",
            "--address",
            "127.0.0.1",
            "--port",
            &port,
            "--format",
            "JSON",
        ],
        SIM_PASSWORD,
    );
    assert!(set.status.success(), "{}", stderr(&set));
    let text = stdout(&set);
    assert!(text.contains("?format=json: statusCode 1 (OK)"), "{text}");
    assert!(
        text.contains(&format!("slot 1 portNo: \"80\" -> \"{port}\"")),
        "{text}"
    );

    let test = device(&["test", "--device", &dev, "--id", "1"], SIM_PASSWORD);
    assert!(test.status.success(), "{}", stderr(&test));
    assert!(stdout(&test).contains("succeeded"), "{}", stdout(&test));

    let s = sim.summary();
    assert_eq!(s["answered_200"], 2);
    // Two pushes plus the test message, all JSON because the slot says JSON.
    let got = srv.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    for g in &got {
        let v: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
        assert!(v["deviceID"].is_string());
        assert_eq!(g.content_type, "application/json");
    }
}

fn simulate_to(port: u16, extra: &[&str]) -> (Vec<serde_json::Value>, serde_json::Value) {
    let out = Command::new(BIN)
        .args([
            "simulate",
            "--to",
            &format!("http://127.0.0.1:{port}/alarm"),
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines
        .iter()
        .find(|l| l["type"] == "summary")
        .cloned()
        .unwrap();
    (lines, summary)
}

#[test]
fn never_answering_server_stalls_and_retries() {
    let srv = server(Mode::Never);
    let t0 = Instant::now();
    let (lines, s) = simulate_to(
        srv.port,
        &[
            "--count",
            "2",
            "--rate",
            "10",
            "--timeout",
            "0.5",
            "--retries",
            "1",
            "--retry-wait",
            "0",
            "--kind",
            "xml",
        ],
    );
    let took = t0.elapsed();
    // 2 posts x 2 attempts, each waiting 0.5 s for an answer that never comes.
    assert_eq!(srv.got.lock().unwrap().len(), 4);
    assert_eq!(s["sent"], 4);
    assert_eq!(s["unanswered"], 4);
    assert_eq!(s["retries"], 2);
    assert_eq!(s["given_up"], 2);
    assert_eq!(s["delivered"], 0);
    assert_eq!(
        s["held"], 1,
        "post 1 was due at 0.1 s while post 0 was stuck until 1 s"
    );
    let stall = s["stall_ms"].as_u64().unwrap();
    assert!((2000..2600).contains(&stall), "stall {stall}");
    assert!(took >= Duration::from_millis(2000));
    let attempts: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["type"] == "attempt").collect();
    assert_eq!(attempts.len(), 4);
    assert!(attempts.iter().all(|a| a["outcome"] == "timeout"));
    assert_eq!(
        attempts
            .iter()
            .map(|a| a["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 0, 1, 1]
    );
    // The same body is re-sent on retry.
    let got = srv.got.lock().unwrap();
    assert_eq!(got[0].body, got[1].body);
    assert_ne!(got[1].body, got[2].body);
}

#[test]
fn busy_server_counts_statuses_and_retries() {
    let srv = server(Mode::Status(503));
    let (_, s) = simulate_to(
        srv.port,
        &[
            "--count",
            "3",
            "--rate",
            "50",
            "--timeout",
            "2",
            "--retries",
            "2",
            "--retry-wait",
            "0.1",
            "--kind",
            "heartbeat",
        ],
    );
    assert_eq!(srv.got.lock().unwrap().len(), 9);
    assert_eq!(s["other_status"]["503"], 9);
    assert_eq!(s["retries"], 6);
    assert_eq!(s["given_up"], 3);
    assert_eq!(s["unanswered"], 0);
    // Each post: 3 quick answers and two 0.1 s waits, so at least 0.2 s stuck per post.
    let stall = s["stall_ms"].as_u64().unwrap();
    assert!((600..3000).contains(&stall), "stall {stall}");
}

#[test]
fn several_devices_distinct_sources_and_macs() {
    let srv = server(Mode::Ok);
    let (_, s) = simulate_to(
        srv.port,
        &[
            "--devices",
            "3",
            "--count",
            "6",
            "--rate",
            "50",
            "--kind",
            "anpr",
        ],
    );
    assert_eq!(s["answered_200"], 6);
    let got = srv.got.lock().unwrap().clone();
    assert_eq!(got.len(), 6);
    let peers: BTreeSet<String> = got.iter().map(|g| g.peer.to_string()).collect();
    assert_eq!(
        peers,
        ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    let macs: BTreeSet<String> = got
        .iter()
        .map(|g| {
            let b = String::from_utf8_lossy(&g.body);
            b.split("<macAddress>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(macs.len(), 3);
    for g in &got {
        assert!(g.content_type.starts_with("multipart/form-data; boundary="));
        assert!(
            g.body.len() > 180_000,
            "ANPR bodies carry a detection picture"
        );
        let b = String::from_utf8_lossy(&g.body);
        let i_meta = b.find(".xml\"").unwrap();
        let i_plate = b.find("name=\"licensePlatePicture.jpg\"").unwrap();
        let i_det = b.find("name=\"detectionPicture.jpg\"").unwrap();
        assert!(i_meta < i_plate && i_plate < i_det);
    }
}

#[test]
fn unreachable_and_non_isapi_errors() {
    // Nothing listening.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let o = device(
        &["get", "--device", &format!("http://127.0.0.1:{port}")],
        "x",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
    // A web server that is not a device: 404 with HTML, no digest.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for c in l.incoming().take(4) {
            let mut s = c.unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b);
            let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found");
        }
    });
    let o = device(
        &["get", "--device", &format!("http://127.0.0.1:{port}")],
        "x",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not an ISAPI device"), "{}", stderr(&o));
}
