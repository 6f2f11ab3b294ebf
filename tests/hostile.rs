//! Hostile and damaged input through the whole replay pipeline: captures cut at every byte
//! offset, frames shuffled, dropped and duplicated, and the regression inputs the fuzzers found.
//! Nothing may panic, and whatever is reported must stay consistent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::io::Write;
use std::path::{Path, PathBuf};

use alarmscope::capture::file::CaptureFile;
use alarmscope::model::Report;
use alarmscope::pipeline::{Analyzer, PipelineConfig};
use alarmscope::replay::{replay, ReplayOptions};
use proptest::prelude::*;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn consistent(r: &Report) {
    let s = &r.summary;
    let counted: u64 = alarmscope::model::Verdict::ALL
        .iter()
        .map(|&v| s.verdict_count(v))
        .sum();
    assert_eq!(counted, s.requests);
    let n: usize = r.connections.iter().map(|c| c.exchanges.len()).sum();
    assert_eq!(n as u64, s.requests);
    assert_eq!(r.connections.len() as u64, s.connections);
}

fn replay_bytes(bytes: &[u8], dir: &Path) -> Option<Report> {
    let path = dir.join("cut.pcap");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(bytes).unwrap();
    drop(f);
    replay(&path, ReplayOptions::default(), &mut |_| {}, &mut |_| {}).ok()
}

/// Offsets at which a record (pcap) or block (pcapng) ends, and where the first packet starts,
/// read from the file's own length fields (independent of the code under test).
fn record_boundaries(bytes: &[u8]) -> (Vec<usize>, usize) {
    let u32le = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let mut ends = Vec::new();
    if bytes[..4] == [0x0a, 0x0d, 0x0d, 0x0a] {
        let (mut o, mut first) = (0, None);
        while o + 12 <= bytes.len() {
            let (ty, len) = (u32le(o), u32le(o + 4));
            if first.is_none() && (ty == 6 || ty == 3 || ty == 2) {
                first = Some(o);
            }
            o += len;
            ends.push(o);
        }
        (ends, first.unwrap_or(bytes.len()))
    } else {
        let mut o = 24;
        ends.push(o);
        while o + 16 <= bytes.len() {
            o += 16 + u32le(o + 8);
            ends.push(o);
        }
        (ends, 24)
    }
}

/// Cut `name` at every `stride`-th byte offset; return how many cuts were analysed.
fn cut_everywhere(name: &str, stride: usize) -> usize {
    let bytes = std::fs::read(sample(name)).unwrap();
    let (ends, first_record) = record_boundaries(&bytes);
    let full =
        replay_bytes(&bytes, tempfile::tempdir().unwrap().path()).expect("whole sample reads");
    let dir = tempfile::tempdir().unwrap();
    let mut runs = 0;
    for cut in (0..bytes.len()).step_by(stride) {
        runs += 1;
        match replay_bytes(&bytes[..cut], dir.path()) {
            // Refused only when the file headers themselves are cut.
            None => assert!(cut <= first_record, "{name} cut at {cut} was refused"),
            Some(r) => {
                consistent(&r);
                assert!(r.summary.packets <= full.summary.packets);
                assert!(r.summary.connections <= full.summary.connections);
                // A cut inside a record is reported, never silent.
                if cut > first_record && !ends.contains(&cut) {
                    assert!(!r.warnings.is_empty(), "{name} cut at {cut}: no warning");
                }
            }
        }
    }
    runs
}

#[test]
fn captures_cut_at_every_byte_offset_are_analysed_up_to_the_cut() {
    let mut runs = 0;
    runs += cut_everywhere("xml-ok.pcap", 1);
    runs += cut_everywhere("chunked-continue.pcap", 1);
    runs += cut_everywhere("two-interfaces.pcapng", 1);
    runs += cut_everywhere("multipart-anpr.pcap", 97);
    eprintln!("{runs} truncated captures analysed");
    assert!(runs > 15_000);
}

/// The kinds of the TLS problem findings in a report.
fn tls_problem_kinds(r: &Report) -> std::collections::BTreeSet<&'static str> {
    r.connections
        .iter()
        .flat_map(|c| c.tls_problems().map(|f| f.kind()))
        .collect()
}

#[test]
fn https_captures_cut_at_every_byte_offset_are_analysed_up_to_the_cut() {
    let mut runs = 0;
    // Every offset of the smallest (a handshake cut anywhere, a ClientHello answered in plain
    // HTTP); every 5th of the others, to keep the test's time reasonable.
    for (name, stride) in [
        ("https-to-http.pcap", 1),
        ("https-tls12.pcap", 1),
        ("https-ok.pcap", 5),
        ("https-tls13.pcap", 5),
        ("https-no-answer.pcap", 5),
        ("http-to-https.pcap", 5),
        ("https-unknown-ca.pcap", 5),
    ] {
        runs += cut_everywhere(name, stride);
        // A cut capture shows no TLS problem the whole capture does not show (a cut ends
        // connections as "capture ended", never as a close during the handshake).
        let bytes = std::fs::read(sample(name)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let full = replay_bytes(&bytes, dir.path()).expect("whole sample reads");
        let kinds = tls_problem_kinds(&full);
        for cut in (0..bytes.len()).step_by(17) {
            if let Some(r) = replay_bytes(&bytes[..cut], dir.path()) {
                let got = tls_problem_kinds(&r);
                assert!(got.is_subset(&kinds), "{name} cut at {cut}: {got:?}");
            }
        }
    }
    eprintln!("{runs} truncated HTTPS captures analysed");
    assert!(runs > 13_000);
}

/// Frames of a sample as (ts, link, bytes, orig_len).
fn frames(
    name: &str,
) -> Vec<(
    alarmscope::time::Timestamp,
    alarmscope::capture::LinkType,
    Vec<u8>,
    u32,
)> {
    let mut f = CaptureFile::open(&sample(name)).unwrap();
    let mut v = Vec::new();
    while let Ok(Some(fr)) = f.next_frame() {
        v.push((fr.ts, fr.link, fr.data.to_vec(), fr.orig_len));
    }
    v
}

fn analyse(
    fr: &[(
        alarmscope::time::Timestamp,
        alarmscope::capture::LinkType,
        Vec<u8>,
        u32,
    )],
) -> Report {
    let mut an = Analyzer::new(PipelineConfig::default());
    for (i, (ts, link, data, orig)) in fr.iter().enumerate() {
        an.frame(i as u64 + 1, *ts, *link, data, *orig);
    }
    let (conns, counters, warnings) = an.finish();
    alarmscope::report::build("test", conns, &counters, warnings)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Dropping, duplicating and reordering frames never panics, and the verdicts still add up.
    #[test]
    fn damaged_streams_stay_consistent(
        name in prop::sample::select(vec!["stall-no-answer.pcap", "keepalive.pcap", "multipart-anpr.pcap", "json-ok.pcap"]),
        ops in prop::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..40),
    ) {
        let mut fr = frames(name);
        for (op, a, b) in ops {
            if fr.is_empty() { break; }
            let i = a.index(fr.len());
            let j = b.index(fr.len());
            match op {
                0 => { fr.remove(i); }
                1 => { let f = fr[i].clone(); fr.insert(j, f); }
                2 => fr.swap(i, j),
                _ => { let cut = fr[i].2.len() / 2; fr[i].2.truncate(cut); }
            }
        }
        let r = analyse(&fr);
        consistent(&r);
    }

    /// Untouched frames give the same verdicts whatever the reading path.
    #[test]
    fn the_same_frames_give_the_same_report(name in prop::sample::select(vec!["xml-ok.pcap", "error-503.pcap", "out-of-order.pcap"])) {
        let a = analyse(&frames(name));
        let b = replay(&sample(name), ReplayOptions::default(), &mut |_| {}, &mut |_| {}).unwrap();
        prop_assert_eq!(a.summary.requests, b.summary.requests);
        prop_assert_eq!(a.summary.ok, b.summary.ok);
        prop_assert_eq!(a.summary.error_status, b.summary.error_status);
    }
}

/// Inputs that once crashed or hung a fuzz target, kept as regression cases: every file in
/// tests/regressions/<target>/ is replayed through the same code the target exercises.
#[test]
fn fuzz_regressions_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("regressions");
    let mut n = 0;
    for target in ["capture_file", "frames", "http_split", "multipart", "event"] {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for e in dir {
            let path = e.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            n += 1;
            match target {
                "capture_file" => {
                    let tmp = tempfile::tempdir().unwrap();
                    if let Some(r) = replay_bytes(&data, tmp.path()) {
                        consistent(&r);
                    }
                }
                "event" => {
                    let _ = alarmscope::isapi::decode_event(&data, None);
                }
                "multipart" => {
                    let mut d = alarmscope::isapi::BodyDecoder::new(
                        Some("multipart/form-data; boundary=MIME_boundary"),
                        alarmscope::isapi::BodyLimits::default(),
                    );
                    d.feed(&data, None);
                    let _ = d.finish(None);
                }
                "http_split" => {
                    for kind in [
                        alarmscope::http::Kind::Request,
                        alarmscope::http::Kind::Response,
                    ] {
                        let mut d = alarmscope::http::MessageDecoder::new(kind, Default::default());
                        d.feed(&data, &mut |_| {});
                        d.eof(&mut |_| {});
                    }
                }
                _ => {
                    let mut an = Analyzer::new(PipelineConfig::default());
                    an.frame(
                        1,
                        Default::default(),
                        alarmscope::capture::LinkType::Ethernet,
                        &data,
                        data.len() as u32,
                    );
                    let _ = an.finish();
                }
            }
        }
    }
    eprintln!("{n} regression inputs replayed");
}
