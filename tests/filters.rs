//! Headless filters (`--device`, `--event-type`, `--verdict`, `--problems`, `--since`, `--until`)
//! on the real binary: each selects the rows the TUI's filter would, for `--json` and `--text`
//! (replay) and for the listener's lines. The rows expected are worked out from the unfiltered
//! report, by what each option is documented to mean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_alarmscope"))
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn json(name: &str, args: &[&str]) -> Value {
    let out = bin()
        .arg("replay")
        .arg(sample(name))
        .arg("--json")
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// (client, request time, event type, verdict) of every listed exchange.
fn rows(doc: &Value) -> Vec<(String, f64, String, String)> {
    let mut v = Vec::new();
    for c in doc["connections"].as_array().expect("connections") {
        for e in c["exchanges"].as_array().expect("exchanges") {
            v.push((
                c["client"].as_str().unwrap_or_default().to_string(),
                e["request"]["time"].as_f64().unwrap_or_default(),
                e["event"]["event_type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["verdict"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    v
}

#[test]
fn verdict_keeps_those_rows_and_the_whole_capture_summary() {
    let all = json("stall-no-answer.pcap", &[]);
    let want: Vec<_> = rows(&all)
        .into_iter()
        .filter(|r| r.3 == "no_response")
        .collect();
    assert_eq!(want.len(), 2);
    let got = json("stall-no-answer.pcap", &["--verdict", "no_response"]);
    assert_eq!(rows(&got), want);
    // Totals stay those of the capture.
    assert_eq!(got["summary"], all["summary"]);
    let ok = json("stall-no-answer.pcap", &["--verdict", "ok,error_status"]);
    assert!(rows(&ok).iter().all(|r| r.3 == "ok"));
    assert_eq!(rows(&ok).len(), 2);
}

#[test]
fn event_type_is_exact_and_case_blind() {
    let all = json("stall-no-answer.pcap", &[]);
    let want: Vec<_> = rows(&all).into_iter().filter(|r| r.2 == "VMD").collect();
    assert_eq!(want.len(), 2);
    assert_eq!(
        rows(&json("stall-no-answer.pcap", &["--event-type", "vmd"])),
        want
    );
    assert!(rows(&json("stall-no-answer.pcap", &["--event-type", "VM"])).is_empty());
}

#[test]
fn problems_keep_failed_exchanges_and_failed_handshakes() {
    let got = json("stall-no-answer.pcap", &["--problems"]);
    assert!(rows(&got).iter().all(|r| r.3 != "ok"));
    assert_eq!(rows(&got).len(), 2);
    // Connections without a request whose handshake failed are problem rows too.
    let refused = json("refused.pcap", &["--problems"]);
    let conns = refused["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 2);
    assert!(conns.iter().all(|c| c["handshake"] == "refused"));
    let none = json("refused.pcap", &["--verdict", "ok"]);
    assert!(none["connections"].as_array().expect("array").is_empty());
}

#[test]
fn since_and_until_bound_the_request_times() {
    let all = rows(&json("stall-no-answer.pcap", &[]));
    assert_eq!(all.len(), 4);
    let (t1, t2) = (all[1].1, all[2].1);
    let since = format!("{:.6}", t1 - 0.0005);
    let until = format!("{:.6}", t2 + 0.0005);
    let got = rows(&json(
        "stall-no-answer.pcap",
        &["--since", &since, "--until", &until],
    ));
    assert_eq!(got, all[1..3].to_vec());
    // RFC 3339 in UTC means the same instant.
    let secs = (t1 - 0.0005).floor() as i64;
    let rfc = humantime::format_rfc3339(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64),
    )
    .to_string();
    let from_rfc = rows(&json("stall-no-answer.pcap", &["--since", &rfc]));
    assert_eq!(
        from_rfc,
        all.iter()
            .filter(|r| r.1 >= secs as f64)
            .cloned()
            .collect::<Vec<_>>()
    );
    // Not a time: exit 2 with a one-line message.
    let out = bin()
        .arg("replay")
        .arg(sample("stall-no-answer.pcap"))
        .args(["--json", "--since", "yesterday"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("since"));
}

#[test]
fn device_is_the_client_ip_exactly() {
    let all = json("http-to-https.pcap", &[]);
    let clients: Vec<String> = rows(&all).into_iter().map(|r| r.0).collect();
    let devices: Vec<&str> = all["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .filter_map(|d| d["device"].as_str())
        .collect();
    assert_eq!(devices.len(), 2);
    for d in devices {
        let got = json("http-to-https.pcap", &["--device", d]);
        for c in got["connections"].as_array().expect("connections") {
            let client = c["client"].as_str().unwrap_or_default();
            assert_eq!(alarmscope::model::host_of(client), d);
        }
        let n = clients
            .iter()
            .filter(|c| alarmscope::model::host_of(c) == d)
            .count();
        assert_eq!(rows(&got).len(), n);
    }
}

#[test]
fn text_lists_problems_among_the_selected_rows_only() {
    let out = bin()
        .arg("replay")
        .arg(sample("stall-no-answer.pcap"))
        .args(["--text", "--event-type", "VMD"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 of 4 rows selected"), "{text}");
    assert!(!text.contains("linedetection [no_response]"), "{text}");
    let out = bin()
        .arg("replay")
        .arg(sample("stall-no-answer.pcap"))
        .args(["--text", "--event-type", "linedetection"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("linedetection [no_response]"), "{text}");
}

#[test]
fn the_tui_filter_words_select_what_the_options_select() {
    use alarmscope::tui::{App, Feed, Msg, Source, Theme};
    let report = alarmscope::replay::replay(
        &sample("stall-no-answer.pcap"),
        Default::default(),
        &mut |_| {},
        &mut |_| {},
    )
    .expect("replay");
    let mut app = App::new(Source::Live("t".into()), Theme { color: false });
    app.update(Msg::Feed(Feed::Final(report)));
    app.update(Msg::StartFilter);
    for c in "type:linedetection verdict:no_response".chars() {
        app.update(Msg::FilterChar(c));
    }
    let cli = rows(&json(
        "stall-no-answer.pcap",
        &["--event-type", "linedetection", "--verdict", "no_response"],
    ));
    assert_eq!(app.rows.len(), cli.len());
    assert_eq!(cli.len(), 2);
}

#[test]
fn listen_prints_only_the_selected_events_but_answers_all() {
    let (mut child, addr, mut err) = common::spawn_listen(&[
        "--bind",
        "127.0.0.1:0",
        "--no-store",
        "--json",
        "--count",
        "3",
        "--event-type",
        "linedetection",
    ]);
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    for ty in ["VMD", "linedetection", "fielddetection"] {
        let body = format!(
            "<EventNotificationAlert><ipAddress>127.0.0.1</ipAddress><eventType>{ty}</eventType><eventState>active</eventState></EventNotificationAlert>"
        );
        let mut s = common::connect(addr);
        let req = format!(
            "POST /alarm HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{ty}: {answer}");
    }
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let lines: Vec<Value> = out
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let _ = child.wait();
    let events: Vec<&Value> = lines.iter().filter(|l| l.get("final").is_none()).collect();
    assert_eq!(events.len(), 1, "{lines:?}");
    assert_eq!(events[0]["event"]["event_type"], "linedetection");
    // The final summary counts all three.
    let last = lines
        .iter()
        .find(|l| l.get("final").is_some())
        .expect("final line");
    assert_eq!(last["listen"]["events"], 3);
}

#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn sniff_prints_only_the_selected_exchanges() {
    if !is_root() {
        eprintln!("sniff needs root: not checked");
        return;
    }
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut c in server.incoming().map_while(Result::ok) {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !String::from_utf8_lossy(&buf).contains("</EventNotificationAlert>") {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let mut sniff = bin()
        .args([
            "sniff",
            "-i",
            "lo",
            "--port",
            &port.to_string(),
            "--json",
            "--duration",
            "4",
        ])
        .args(["--event-type", "linedetection"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sniff");
    let mut err = BufReader::new(sniff.stderr.take().expect("stderr"));
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("capturing on") {
        line.clear();
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    for ty in ["VMD", "linedetection", "VMD"] {
        let body = format!(
            "<EventNotificationAlert><ipAddress>127.0.0.1</ipAddress><eventType>{ty}</eventType><eventState>active</eventState></EventNotificationAlert>"
        );
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let req = format!(
            "POST /alarm HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"));
    }
    let lines: Vec<Value> = BufReader::new(sniff.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let _ = sniff.wait();
    let exchanges: Vec<&Value> = lines.iter().filter(|l| l["type"] == "exchange").collect();
    assert_eq!(exchanges.len(), 1, "{lines:?}");
    assert_eq!(
        exchanges[0]["exchange"]["event"]["event_type"],
        "linedetection"
    );
    let summary = lines
        .iter()
        .find(|l| l["type"] == "summary")
        .expect("summary");
    assert_eq!(summary["summary"]["requests"], 3);
}
