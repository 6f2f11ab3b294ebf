//! Every bundled sample is replayed and compared with what `samples/expected.json` says it must
//! show. The expectations were written from how each sample was made (what the simulated device
//! and listener were told to do, or what was crafted by hand), not from alarmscope's output.

use std::path::{Path, PathBuf};

use alarmscope::model::{Report, Verdict};
use alarmscope::replay::{replay, ReplayOptions};
use serde_json::Value;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// One of the expectation files in samples/, as a JSON object keyed by sample name.
fn load(file: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(samples_dir().join(file))
        .unwrap_or_else(|e| panic!("samples/{file}: {e}"));
    match serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}")) {
        Value::Object(m) => m,
        _ => panic!("{file} must be an object"),
    }
}

fn expected() -> serde_json::Map<String, Value> {
    load("expected.json")
}

fn run(name: &str) -> Result<Report, String> {
    replay(
        &samples_dir().join(name),
        ReplayOptions::default(),
        &mut |_| {},
        &mut |_| {},
    )
    .map_err(|e| e.to_string())
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Compare one sample's report with its expectations; returns the list of mismatches.
fn check(name: &str, exp: &Value, report: &Report) -> Vec<String> {
    let mut bad = Vec::new();
    let s = &report.summary;
    fn eq(bad: &mut Vec<String>, name: &str, what: &str, got: u64, want: u64) {
        if got != want {
            bad.push(format!("{name}: {what}: got {got}, expected {want}"));
        }
    }
    if let Some(v) = exp.get("connections") {
        eq(&mut bad, name, "connections", s.connections, u(v));
    }
    if let Some(v) = exp.get("requests") {
        eq(&mut bad, name, "requests", s.requests, u(v));
    }
    if let Some(v) = exp.get("min_requests") {
        if s.requests < u(v) {
            bad.push(format!("{name}: requests {} < min {}", s.requests, u(v)));
        }
    }
    if let Some(Value::Object(vs)) = exp.get("verdicts") {
        for (k, v) in vs {
            let got = match k.as_str() {
                "ok" => s.ok,
                "error_status" => s.error_status,
                "no_response" => s.no_response,
                "incomplete" => s.incomplete,
                "not_captured" => s.not_captured,
                "malformed_response" => s.malformed_response,
                other => panic!("unknown verdict {other}"),
            };
            eq(&mut bad, name, &format!("verdict {k}"), got, u(v));
        }
    }
    if let Some(Value::Object(hs)) = exp.get("handshake") {
        for (k, v) in hs {
            let got = report
                .connections
                .iter()
                .filter(|c| {
                    serde_json::to_value(c.handshake)
                        .ok()
                        .and_then(|x| x.as_str().map(str::to_string))
                        .as_deref()
                        == Some(k.as_str())
                })
                .count() as u64;
            eq(&mut bad, name, &format!("handshake {k}"), got, u(v));
        }
    }
    if let Some(v) = exp.get("min_stalls") {
        if s.stalls < u(v) {
            bad.push(format!("{name}: stalls {} < min {}", s.stalls, u(v)));
        }
    }
    if let Some(v) = exp.get("capture_gap_bytes") {
        eq(
            &mut bad,
            name,
            "capture_gap_bytes",
            s.capture_gap_bytes,
            u(v),
        );
    }
    if let Some(v) = exp.get("truncated_frames") {
        eq(&mut bad, name, "truncated_frames", s.truncated_frames, u(v));
    }
    if let Some(Value::Object(want)) = exp.get("encapsulations") {
        // Frames per tunnel kind; kinds left out must be 0.
        let got = serde_json::to_value(s.encapsulations).expect("counts serialise");
        let Value::Object(got) = got else {
            panic!("encapsulations is not an object: {got}")
        };
        for (k, g) in &got {
            let w = want.get(k).map(u).unwrap_or(0);
            eq(&mut bad, name, &format!("encapsulations.{k}"), u(g), w);
        }
        for k in want.keys().filter(|k| !got.contains_key(*k)) {
            bad.push(format!("{name}: no encapsulation kind {k} in the summary"));
        }
    }
    if let Some(Value::Array(want)) = exp.get("clients") {
        // The devices' addresses: behind a tunnel, the inner ones.
        let mut got: Vec<String> = report
            .connections
            .iter()
            .map(|c| c.client.clone())
            .collect();
        got.sort();
        got.dedup();
        let mut want: Vec<String> = want
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        want.sort();
        if got != want {
            bad.push(format!("{name}: clients {got:?}, expected {want:?}"));
        }
    }
    if let Some(v) = exp.get("connection_errors") {
        let n: usize = report.connections.iter().map(|c| c.errors.len()).sum();
        eq(&mut bad, name, "connection errors", n as u64, u(v));
    }
    if let Some(Value::String(want)) = exp.get("upgrade") {
        if !report
            .connections
            .iter()
            .any(|c| c.upgrade.as_deref() == Some(want.as_str()))
        {
            bad.push(format!("{name}: no connection upgraded to {want}"));
        }
    }
    if let Some(Value::Bool(true)) = exp.get("upgraded") {
        if !report
            .connections
            .iter()
            .any(|c| c.upgraded_bytes.iter().all(|&n| n > 0))
        {
            bad.push(format!("{name}: no upgraded bytes counted both ways"));
        }
    }
    if let Some(Value::Bool(true)) = exp.get("warning") {
        if report.warnings.is_empty() {
            bad.push(format!("{name}: expected a warning, got none"));
        }
    }
    if let Some(Value::Array(want)) = exp.get("exchanges") {
        let mut got: Vec<_> = report
            .connections
            .iter()
            .flat_map(|c| c.exchanges.iter().map(move |e| (c, e)))
            .collect();
        got.sort_by_key(|(_, e)| e.request.time);
        if got.len() != want.len() {
            bad.push(format!(
                "{name}: {} exchanges, expected {}",
                got.len(),
                want.len()
            ));
        }
        for (i, ((c, g), w)) in got.iter().zip(want).enumerate() {
            let mut field = |key: &str, got: Value| {
                if let Some(wv) = w.get(key) {
                    if *wv != got {
                        bad.push(format!(
                            "{name}: exchange {i}: {key}: got {got}, expected {wv}"
                        ));
                    }
                }
            };
            field("method", Value::from(g.request.method.clone()));
            field("path", Value::from(g.request.path.clone()));
            field(
                "status",
                g.response
                    .as_ref()
                    .map(|r| Value::from(r.status))
                    .unwrap_or(Value::Null),
            );
            field("verdict", Value::from(g.verdict.as_str()));
            field(
                "event_type",
                g.event
                    .as_ref()
                    .and_then(|e| e.event_type.clone())
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            );
            field(
                "event_state",
                g.event
                    .as_ref()
                    .and_then(|e| e.event_state.clone())
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            );
            field("parts", Value::from(g.parts.len()));
            field(
                "part_bytes",
                Value::from(g.parts.iter().map(|p| p.bytes).collect::<Vec<_>>()),
            );
            field("retry", Value::from(g.retry_of.is_some()));
            field(
                "answer_bytes_acked",
                c.answer_bytes_acked(g.index)
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            );
            if let Some(Value::Array(pics)) = w.get("pictures") {
                bad.extend(check_pictures(name, i, g, pics));
            }
        }
    }
    bad
}

/// The picture checks of one exchange against the design (see expected.py: `pictures`).
fn check_pictures(
    name: &str,
    i: usize,
    ex: &alarmscope::model::Exchange,
    want: &[Value],
) -> Vec<String> {
    use alarmscope::isapi::picture::PictureProblem;
    let mut bad = Vec::new();
    for (k, w) in want.iter().enumerate() {
        let at = format!("{name}: exchange {i}: part {k}");
        let got = ex.parts.get(k).and_then(|p| p.picture.as_ref());
        let Some(w) = w.as_object() else {
            if got.is_some() {
                bad.push(format!("{at}: checked as a picture, expected no picture"));
            }
            continue;
        };
        let Some(got) = got else {
            bad.push(format!("{at}: no picture check"));
            continue;
        };
        let kind = got.problem.as_ref().map(|p| match p {
            PictureProblem::NotJpeg { .. } => "not_jpeg",
            PictureProblem::Cut { .. } => "cut",
            PictureProblem::Corrupt { .. } => "corrupt",
            PictureProblem::NotCaptured { .. } => "not_captured",
        });
        if w.get("problem").and_then(Value::as_str) != kind {
            bad.push(format!(
                "{at}: problem {kind:?}, expected {:?}",
                w.get("problem")
            ));
        }
        if let Some(Value::Array(size)) = w.get("size") {
            let want = (
                size.first().and_then(Value::as_u64),
                size.get(1).and_then(Value::as_u64),
            );
            let got = (got.width.map(u64::from), got.height.map(u64::from));
            if got != want {
                bad.push(format!("{at}: size {got:?}, expected {want:?}"));
            }
        }
        if let (Some(Value::Array(f)), Some(PictureProblem::Cut { bytes, declared })) =
            (w.get("fraction"), got.problem.as_ref())
        {
            let (a, b) = (
                f.first().and_then(Value::as_u64),
                f.get(1).and_then(Value::as_u64),
            );
            let want = declared.zip(a.zip(b)).map(|(d, (a, b))| d * a / b);
            if want != Some(*bytes) {
                bad.push(format!(
                    "{at}: cut at {bytes} of {declared:?}, expected {a:?}/{b:?}"
                ));
            }
        }
        if let (Some(r), Some(PictureProblem::Corrupt { reason, .. })) = (
            w.get("reason").and_then(Value::as_str),
            got.problem.as_ref(),
        ) {
            let got = serde_json::to_value(reason).ok();
            let got = got
                .as_ref()
                .and_then(|v| v.get("what"))
                .and_then(Value::as_str);
            if got != Some(r) {
                bad.push(format!("{at}: corrupt because {got:?}, expected {r}"));
            }
        }
        // The exchange carries the finding as a note too.
        let noted = ex.notes.iter().any(
            |n| matches!(n, alarmscope::model::ExchangeNote::Picture { part, .. } if *part == k),
        );
        if noted != kind.is_some() {
            bad.push(format!("{at}: picture note {noted}, problem {kind:?}"));
        }
    }
    bad
}

#[test]
fn every_sample_shows_its_expected_verdicts() {
    let exp = expected();
    assert!(
        exp.len() >= 10,
        "expected.json lists only {} samples",
        exp.len()
    );
    let mut bad = Vec::new();
    for (name, e) in &exp {
        let wants_error = e.get("error").and_then(Value::as_bool).unwrap_or(false);
        match run(name) {
            Ok(_) if wants_error => bad.push(format!("{name}: analysed, but it must be refused")),
            Ok(r) => {
                bad.extend(check(name, e, &r));
                // Invariant whatever the sample: verdict counts add up to the requests.
                let s = &r.summary;
                let judged: u64 = Verdict::ALL.iter().map(|v| s.verdict_count(*v)).sum();
                if judged != s.requests {
                    bad.push(format!("{name}: verdict counts do not add up"));
                }
            }
            Err(msg) if wants_error => assert!(!msg.is_empty()),
            Err(msg) => bad.push(format!("{name}: could not be read: {msg}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// HTTPS samples whose expectations live in samples/expected-tls.json (checked by
/// tests/tls_samples.rs) until the pipeline routes TLS connections; they move to expected.json
/// then.
fn tls_samples() -> serde_json::Map<String, Value> {
    load("expected-tls.json")
}

#[test]
fn every_sample_file_is_listed_in_expected_json() {
    let exp = expected();
    let tls = tls_samples();
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let listed = [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"];
        if listed.iter().any(|ext| name.ends_with(ext)) {
            assert!(
                exp.contains_key(&name) || tls.contains_key(&name),
                "{name} has no entry in samples/expected.json (or expected-tls.json)"
            );
        }
    }
}
