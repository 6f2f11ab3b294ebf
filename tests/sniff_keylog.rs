//! `sniff --keylog` on loopback while `simulate` pushes events over HTTPS to `listen --tls
//! --keylog`: the sniffer re-reads the key log the listener writes as it grows and decrypts
//! each session as it comes. The live verdicts, the listener's own records and `replay
//! --keylog` of the written capture must agree (all 200, same count, same event types). Needs
//! root for the live capture (CI runs as root); skipped with a message otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

mod common;

#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Kills the child if the test fails half way.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The final exchange rows of sniff's JSON lines: (verdict, decrypted, event type).
fn live_rows(lines: &[Value]) -> Vec<(String, bool, String)> {
    let mut v: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "exchange" && l["provisional"] == false)
        .map(|l| row(&l["exchange"]))
        .collect();
    v.sort();
    v
}

fn row(e: &Value) -> (String, bool, String) {
    (
        e["verdict"].as_str().unwrap_or("?").to_string(),
        e["decrypted"] == true,
        e["event"]["event_type"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn live_sniff_with_a_growing_key_log_agrees_with_the_listener_and_the_replay() {
    if !is_root() {
        eprintln!("skipped: live capture needs root");
        return;
    }
    const N: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.log");
    let pcap = dir.path().join("live.pcap");
    let bin = env!("CARGO_BIN_EXE_alarmscope");

    let mut listen = Kill(
        Command::new(bin)
            .args([
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--tls",
                "--no-store",
                "--json",
            ])
            .arg("--keylog")
            .arg(&keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lerr = BufReader::new(listen.0.stderr.take().unwrap());
    let addr = common::bound_addr(&mut lerr);
    // Keep reading its stderr: a closed pipe would end the listener.
    std::thread::spawn(move || lerr.lines().map_while(Result::ok).for_each(drop));
    let records = Arc::new(Mutex::new(Vec::<Value>::new()));
    let r2 = records.clone();
    let stdout = listen.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&l) {
                r2.lock().unwrap().push(v);
            }
        }
    });

    let (child, err) = common::spawn_sniff(|c| {
        c.args([
            "--json",
            "--duration",
            "7",
            "--answer-timeout",
            "2",
            "--filter",
        ])
        .arg(format!("tcp port {}", addr.port()))
        .arg("--keylog")
        .arg(&keys)
        .arg("--write")
        .arg(&pcap)
    });
    let mut sniff = Kill(child);
    std::thread::spawn(move || err.lines().map_while(Result::ok).for_each(drop));

    let url = format!("https://{addr}/alarm");
    let sim = Command::new(bin)
        .args([
            "simulate",
            "--to",
            &url,
            "--insecure",
            "--json",
            "--rate",
            "10",
        ])
        .args(["--count", &N.to_string()])
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );

    let stdout = sniff.0.stdout.take().unwrap();
    let lines: Vec<Value> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    assert!(sniff.0.wait().unwrap().success());

    // Live: every push decrypted, read and answered 200.
    let live = live_rows(&lines);
    assert_eq!(live.len(), N, "{lines:?}");
    assert!(
        live.iter()
            .all(|(v, d, t)| v == "ok" && *d && !t.is_empty()),
        "{live:?}"
    );

    // The listener's records: the same count, all 200 over TLS, the same event types.
    let mut heard: Vec<_> = records
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["transport"] == "tls" && v["verdict"] == "ok")
        .map(|v| v["event"]["event_type"].as_str().unwrap_or("").to_string())
        .collect();
    heard.sort();
    let live_types: Vec<String> = live.iter().map(|r| r.2.clone()).collect();
    assert_eq!(heard, live_types, "{:?}", records.lock().unwrap());

    // The written capture replayed with the key log: the same rows.
    let rep = Command::new(bin)
        .args(["replay", "--json"])
        .arg(&pcap)
        .arg("--keylog")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(rep.status.success());
    let doc: Value = serde_json::from_slice(&rep.stdout).unwrap();
    let mut replayed: Vec<_> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["exchanges"].as_array().unwrap().iter().map(row))
        .collect();
    replayed.sort();
    assert_eq!(replayed, live);
}
