//! The real binary, run as a script would: `alarmscope replay --json/--text`, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_alarmscope"))
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

#[test]
fn replay_json_of_the_stall_sample_has_the_documented_fields() {
    let out = bin()
        .args(["replay", "--json"])
        .arg(sample("stall-no-answer.pcap"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    for key in ["connections", "stalls", "devices", "summary", "warnings"] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    let conns = doc["connections"].as_array().unwrap();
    let ex = conns
        .iter()
        .flat_map(|c| c["exchanges"].as_array().unwrap().iter())
        .find(|e| e["verdict"] == "no_response")
        .expect("an unanswered request");
    for key in [
        "time",
        "method",
        "path",
        "content_type",
        "body_bytes",
        "complete",
        "missing_bytes",
        "error",
    ] {
        assert!(ex["request"].get(key).is_some(), "request.{key} missing");
    }
    assert!(ex["response"].is_null());
    for key in [
        "format",
        "event_type",
        "event_state",
        "device_ip",
        "mac",
        "channel",
        "date_time",
        "description",
    ] {
        assert!(ex["event"].get(key).is_some(), "event.{key} missing");
    }
    let c0 = &conns[0];
    for key in [
        "client",
        "server",
        "handshake",
        "syn_attempts",
        "closed",
        "exchanges",
    ] {
        assert!(c0.get(key).is_some(), "connection.{key} missing");
    }
    let stall = &doc["stalls"][0];
    for key in ["device", "from", "to", "seconds", "cause"] {
        assert!(stall.get(key).is_some(), "stall.{key} missing");
    }
    assert!(
        stall["seconds"].as_f64().unwrap() > 1.0,
        "the device waited before retrying"
    );
    for key in [
        "packets",
        "connections",
        "requests",
        "ok",
        "error_status",
        "no_response",
        "incomplete",
        "handshake_failures",
        "stalls",
        "truncated_frames",
        "capture_gap_bytes",
        "connections_evicted",
        "connections_expired",
        "peak_open_connections",
    ] {
        assert!(doc["summary"].get(key).is_some(), "summary.{key} missing");
    }
}

#[test]
fn replay_text_explains_the_problem() {
    let out = bin()
        .args(["replay", "--text"])
        .arg(sample("stall-no-answer.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no_response"), "{text}");
    assert!(
        text.contains("hold"),
        "the explanation says later events are held: {text}"
    );
    assert!(text.contains("STALLS"), "{text}");
}

#[test]
fn unreadable_input_exits_non_zero_with_one_line() {
    for path in [sample("does-not-exist.pcap"), sample("not-a-capture.txt")] {
        let out = bin()
            .args(["replay", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn extract_writes_the_pictures_with_their_exact_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["replay", "--json", "--extract"])
        .arg(dir.path())
        .arg(sample("multipart-anpr.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut want: Vec<u64> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["exchanges"].as_array().unwrap().iter())
        .flat_map(|e| e["parts"].as_array().unwrap().iter())
        .map(|p| p["bytes"].as_u64().unwrap())
        .collect();
    let mut got: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    want.sort();
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let jpgs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".jpg")
        })
        .count();
    assert!(jpgs >= 2, "pictures extracted as .jpg");
}

/// A capture file that ends inside a record is analysed (exit 0) and said so on stderr, picked by
/// the warning's kind; a file whose only warning is another kind (libpcap handing over to the
/// built-in pcapng reader) prints none, though its report carries that warning.
#[test]
fn only_a_cut_capture_file_warns_on_stderr() {
    let out = bin()
        .args(["replay", "--json"])
        .arg(sample("cut-mid-record.pcap"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("alarmscope: warning: capture file: stopped after"),
        "{stderr}"
    );
    let out = bin()
        .args(["replay", "--json"])
        .arg(sample("two-interfaces.pcapng"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["warnings"].as_array().map(Vec::len), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
