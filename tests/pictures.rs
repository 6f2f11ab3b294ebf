//! Broken pictures end to end: alarmscope's simulator sends a cut or corrupt plate picture to
//! alarmscope's listener, which must report the same typed finding a replay of a capture does
//! (the two share the body decoder); the text report lists it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_alarmscope"))
}

/// Push one ANPR event from the simulator (with `--picture-fault FAULT` when `fault` is given) to
/// a listener; the listener's JSON line.
fn pushed(fault: Option<&str>) -> Value {
    let (mut lis, addr, mut err) = common::spawn_listen(&[
        "--bind",
        "127.0.0.1:0",
        "--no-store",
        "--json",
        "--count",
        "1",
    ]);
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let sim = bin()
        .args([
            "simulate",
            "--to",
            &format!("http://{addr}/alarm"),
            "--kind",
            "anpr",
        ])
        .args(["--count", "1"])
        .args(fault.map(|f| ["--picture-fault", f]).into_iter().flatten())
        .output()
        .expect("simulate");
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let out = BufReader::new(lis.stdout.take().expect("stdout"));
    let lines: Vec<Value> = out
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let _ = lis.wait();
    lines
        .into_iter()
        .find(|l| l.get("final").is_none())
        .expect("an event line")
}

fn picture_notes(ev: &Value) -> Vec<&Value> {
    ev["notes"]
        .as_array()
        .map(|a| a.iter().filter(|n| n["kind"] == "picture").collect())
        .unwrap_or_default()
}

#[test]
fn the_listener_reports_a_cut_plate_picture() {
    let ev = pushed(Some("cut"));
    assert_eq!(ev["verdict"], "ok");
    let notes = picture_notes(&ev);
    assert_eq!(notes.len(), 1, "{ev}");
    assert_eq!(notes[0]["part"], 1);
    assert_eq!(notes[0]["problem"]["kind"], "cut");
    let declared = notes[0]["problem"]["declared"].as_u64().expect("declared");
    assert_eq!(
        notes[0]["problem"]["bytes"].as_u64(),
        Some(declared * 5 / 8)
    );
    // The whole detection picture: its size from the decoded header.
    assert_eq!(ev["parts"][2]["picture"]["width"], 2688);
    assert_eq!(ev["parts"][2]["picture"]["height"], 1520);
    assert_eq!(ev["parts"][2]["picture"]["problem"], Value::Null);
}

#[test]
fn the_listener_reports_a_corrupt_plate_picture() {
    let ev = pushed(Some("corrupt"));
    let notes = picture_notes(&ev);
    assert_eq!(notes.len(), 1, "{ev}");
    assert_eq!(notes[0]["problem"]["kind"], "corrupt");
    assert_eq!(notes[0]["problem"]["reason"]["what"], "expected_marker");
}

#[test]
fn intact_pictures_are_no_finding() {
    let line = pushed(None);
    assert!(picture_notes(&line).is_empty(), "{line}");
    assert_eq!(line["parts"][1]["picture"]["problem"], Value::Null);
    assert!(line["parts"][1]["picture"]["width"].as_u64().is_some());
}

#[test]
fn text_report_lists_broken_pictures_of_ok_exchanges() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/picture-cut.pcap");
    let out = bin()
        .arg("replay")
        .arg(&sample)
        .arg("--text")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("PICTURES (1 "))
        .nth(1)
        .unwrap_or_default();
    assert!(
        line.contains("[ok]: picture part 1 (\"licensePlatePicture.jpg\") is cut after "),
        "{text}"
    );
}
