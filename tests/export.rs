//! `--export-pcap` round trip: the problems of every bundled sample are exported, the written
//! file is replayed, and each exported row must come back with the same verdict; nothing but the
//! chosen connections may be in the file; tshark must read it (when installed), else libpcap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use alarmscope::export::{export_pcap, Selection};
use alarmscope::filter::{verdict_label, RowFilter};
use alarmscope::model::Report;
use alarmscope::replay::{replay, ReplayOptions};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(samples_dir())
        .expect("samples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".gz")
        })
        .collect();
    v.sort();
    v
}

fn run(p: &Path) -> Option<Report> {
    replay(p, ReplayOptions::default(), &mut |_| {}, &mut |_| {}).ok()
}

/// Rows a filter selects, keyed by (client, server, request time or first packet), with their
/// verdict column.
fn rows(r: &Report, f: &RowFilter) -> BTreeMap<(String, String, i64), String> {
    let mut m = BTreeMap::new();
    for c in &r.connections {
        if c.exchanges.is_empty() && f.matches(c, None) {
            m.insert(
                (c.client.clone(), c.server.clone(), c.first_seen.0),
                verdict_label(c, None).to_string(),
            );
        }
        for e in &c.exchanges {
            if f.matches(c, Some(e)) {
                m.insert(
                    (c.client.clone(), c.server.clone(), e.request.time.0),
                    verdict_label(c, Some(e)).to_string(),
                );
            }
        }
    }
    m
}

fn tshark_reads(p: &Path) -> Option<bool> {
    let out = Command::new("tshark").arg("-r").arg(p).output().ok()?;
    Some(out.status.success())
}

#[test]
fn exported_problems_replay_to_the_same_verdicts() {
    let problems = RowFilter {
        problems: true,
        ..RowFilter::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut exported = 0;
    let mut bad = Vec::new();
    for cap in captures() {
        let name = cap
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let Some(report) = run(&cap) else { continue };
        let mut sel = Selection::default();
        for c in report
            .connections
            .iter()
            .filter(|c| problems.matches_connection(c))
        {
            sel.add(c);
        }
        let out = dir.path().join(format!("{name}.pcap"));
        let stats = export_pcap(&cap, &sel, &out).expect("export");
        let back = run(&out).unwrap_or_else(|| panic!("{name}: exported file does not replay"));
        if stats.other_link_skipped > 0 {
            // A classic pcap holds one link type; such a sample cannot round-trip whole.
            continue;
        }
        // Only the chosen connections are in the file.
        if back.connections.len() != sel.len() {
            bad.push(format!(
                "{name}: {} connections chosen, {} in the export",
                sel.len(),
                back.connections.len()
            ));
        }
        let want = rows(&report, &problems);
        let got = rows(&back, &RowFilter::default());
        for (k, v) in &want {
            match got.get(k) {
                Some(g) if g == v => {}
                other => bad.push(format!(
                    "{name}: row {k:?}: {v} before, {other:?} after export"
                )),
            }
        }
        if !want.is_empty() {
            exported += 1;
            assert!(
                stats.frames_written > 0,
                "{name}: problems but no frame written"
            );
            match tshark_reads(&out) {
                Some(ok) => assert!(ok, "{name}: tshark cannot read the export"),
                // No tshark: libpcap must read it.
                None => {
                    let mut cap = pcap::Capture::from_file(&out).expect("libpcap opens the export");
                    let mut n = 0u64;
                    while cap.next_packet().is_ok() {
                        n += 1;
                    }
                    assert_eq!(n, stats.frames_written, "{name}: libpcap frame count");
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(
        exported >= 10,
        "only {exported} samples had problems to export"
    );
}

#[test]
fn export_keeps_link_type_timestamps_and_bytes() {
    let cap = samples_dir().join("sll.pcap");
    let report = run(&cap).expect("sll.pcap replays");
    let mut sel = Selection::default();
    report.connections.iter().for_each(|c| sel.add(c));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("all.pcap");
    let stats = export_pcap(&cap, &sel, &out).expect("export");
    // Every frame of every connection: the frames of the original, in order, byte for byte.
    let mut a = pcap::Capture::from_file(&cap).expect("open original");
    let mut b = pcap::Capture::from_file(&out).expect("open export");
    assert_eq!(a.get_datalink(), b.get_datalink());
    let mut n = 0;
    while let Ok(pa) = a.next_packet() {
        let pa_ts = (pa.header.ts.tv_sec, pa.header.ts.tv_usec);
        let pa_data = pa.data.to_vec();
        let pb = b.next_packet().expect("same frame count");
        // The export is nanosecond pcap: libpcap gives microseconds back for both.
        assert_eq!((pb.header.ts.tv_sec, pb.header.ts.tv_usec), pa_ts);
        assert_eq!(pb.data, &pa_data[..]);
        n += 1;
    }
    assert!(b.next_packet().is_err(), "export has extra frames");
    assert_eq!(n, stats.frames_written);
}

#[test]
fn cli_export_with_a_device_filter_writes_only_that_device() {
    // two devices' worth of connections: keep one.
    let cap = samples_dir().join("stall-no-answer.pcap");
    let report = run(&cap).expect("sample replays");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("ok.pcap");
    let st = Command::new(env!("CARGO_BIN_EXE_alarmscope"))
        .args(["replay"])
        .arg(&cap)
        .args(["--verdict", "ok", "--export-pcap"])
        .arg(&out)
        .output()
        .expect("run");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let back = run(&out).expect("export replays");
    let want = rows(
        &report,
        &RowFilter {
            verdicts: vec!["ok".into()],
            ..RowFilter::default()
        },
    );
    let got = rows(&back, &RowFilter::default());
    assert_eq!(got, want);
    assert!(!want.is_empty());
    assert!(got.values().all(|v| v == "ok"));
}

#[test]
fn tui_x_key_exports_the_connection_the_filter_or_the_problems() {
    use alarmscope::tui::{App, Cmd, Feed, Msg, Source, Theme};
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let cap = samples_dir().join("stall-no-answer.pcap");
    let report = run(&cap).expect("replay");
    let problem_conns = report
        .connections
        .iter()
        .filter(|c| c.exchanges.iter().any(|e| e.verdict.is_problem()))
        .count();
    let mut app = App::new(Source::Replay(cap.clone()), Theme { color: false });
    app.update(Msg::Feed(Feed::Final(report)));
    let key = |app: &App, c: char| {
        app.key_to_msg(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
            .expect("a message")
    };
    // x then any other key: cancelled, nothing to do.
    let m = key(&app, 'x');
    assert!(app.update(m).is_none());
    assert!(app.export_choosing);
    let m = key(&app, 'q');
    assert!(app.update(m).is_none());
    assert!(!app.export_choosing && !app.quit);
    let mut chosen = |c: char| {
        let m = key(&app, 'x');
        app.update(m);
        let m = key(&app, c);
        let cmd = app.update(m);
        app.saving = false; // as if the export finished
        match cmd {
            Some(Cmd::Export {
                path, selection, ..
            }) => {
                assert_eq!(path, cap);
                selection
            }
            other => panic!("expected an export, got {other:?}"),
        }
    };
    assert_eq!(chosen('c').len(), 1);
    assert_eq!(chosen('f').len(), 4);
    let problems = chosen('p');
    assert_eq!(problems.len(), problem_conns);
    assert_eq!(problem_conns, 2);
    // The chosen problems export and replay to their no_response verdicts.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("p.pcap");
    export_pcap(&cap, &problems, &out).expect("export");
    let back = run(&out).expect("replays");
    let verdicts: Vec<_> = back
        .connections
        .iter()
        .flat_map(|c| c.exchanges.iter().map(|e| e.verdict.as_str()))
        .collect();
    assert_eq!(verdicts, ["no_response", "no_response"]);
}
