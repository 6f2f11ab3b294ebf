//! Every bundled sample is replayed and compared with what `samples/expected.json` says it must
//! show. The expectations were written from how each sample was made (what the simulated device
//! and listener were told to do, or what was crafted by hand), not from alarmscope's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

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
                "encrypted_answered" => s.encrypted_answered,
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
    if let Some(v) = exp.get("undecodable_frames") {
        eq(
            &mut bad,
            name,
            "undecodable_frames",
            s.undecodable_frames,
            u(v),
        );
    }
    if let Some(v) = exp.get("non_tcp_packets") {
        eq(&mut bad, name, "non_tcp_packets", s.non_tcp_packets, u(v));
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
    if let Some(Value::Array(want)) = exp.get("tls") {
        check_tls(name, want, report, &mut bad);
    }
    if let Some(Value::Object(want)) = exp.get("tls_summary") {
        let got = serde_json::to_value(s).expect("summary serialises");
        for (k, v) in want {
            eq(
                &mut bad,
                name,
                k,
                got.get(k).map(u).unwrap_or(u64::MAX),
                u(v),
            );
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
            field("encrypted", Value::from(g.encrypted.is_some()));
            field("decrypted", Value::from(g.decrypted));
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

/// `want` is a subset of `got` (objects: every key of `want` matches; other values: equal).
fn subset(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => w
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| subset(v, gv))),
        _ => want == got,
    }
}

/// Per connection (in id order), what the TLS records must show (keys of
/// samples/tools/expected_tls.py): through the whole pipeline, as `--json` shows it.
fn check_tls(name: &str, want: &[Value], report: &Report, bad: &mut Vec<String>) {
    let mut conns: Vec<_> = report.connections.iter().collect();
    conns.sort_by_key(|c| c.id);
    if conns.len() != want.len() {
        bad.push(format!(
            "{name}: {} connections, expected {} (tls)",
            conns.len(),
            want.len()
        ));
        return;
    }
    for (i, (w, c)) in want.iter().zip(conns).enumerate() {
        let j = serde_json::to_value(c).expect("connection serialises");
        let tls = &j["tls"];
        let mut more = Vec::new();
        let mut field = |key: &str, got: Value| {
            if let Some(wv) = w.get(key) {
                if !subset(wv, &got) {
                    bad.push(format!("{name} #{i}: {key}: got {got}, expected {wv}"));
                }
            }
        };
        field("tls", Value::from(c.tls.is_some()));
        field("sni", tls["client_hello"]["sni"].clone());
        field(
            "offered",
            c.tls
                .as_ref()
                .and_then(|t| t.client_hello.as_ref())
                .and_then(|h| h.highest_version())
                .map(|v| Value::from(v.to_string()))
                .unwrap_or(Value::Null),
        );
        field("version", tls["server_hello"]["version"].clone());
        field("certificate", tls["certificate"].clone());
        field("handshake", tls["handshake"].clone());
        field(
            "exchanges",
            Value::from(
                c.exchanges
                    .iter()
                    .filter_map(|e| e.encrypted.as_ref().map(|t| t.response.is_some()))
                    .collect::<Vec<_>>(),
            ),
        );
        let findings = j["tls_findings"].as_array().cloned().unwrap_or_default();
        let (problems, notes): (Vec<Value>, Vec<Value>) = findings
            .into_iter()
            .partition(|f| f["problem"] == Value::Bool(true));
        if let Some(Value::Array(wp)) = w.get("problems") {
            if wp.len() != problems.len() || !wp.iter().zip(&problems).all(|(w, g)| subset(w, g)) {
                more.push(format!(
                    "{name} #{i}: problems: got {problems:?}, expected {wp:?}"
                ));
            }
        }
        if w.get("tls") == Some(&Value::Bool(false)) {
            let evidence = problems
                .iter()
                .find(|p| p["kind"] == "plain_http_to_tls_server")
                .map(|p| p["evidence"]["kind"].clone())
                .unwrap_or(Value::Null);
            field("plain_http_evidence", evidence);
        }
        // Whatever the sample: no parsing or capture notes on these clean loopback recordings.
        if !notes.is_empty() {
            more.push(format!("{name} #{i}: unexpected TLS notes {notes:?}"));
        }
        bad.extend(more);
    }
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

/// Each HTTPS sample with a key log, replayed with it (as `replay NAME --keylog NAME.keys`):
/// the verdicts, statuses and event types derived from the declared plaintext (expected.py's
/// `with_keylog`), and each connection's decryption status.
#[test]
fn https_samples_replayed_with_their_key_logs_show_the_decrypted_verdicts() {
    let mut bad = Vec::new();
    let mut checked = 0;
    for (name, e) in &expected() {
        let Some(want) = e.get("with_keylog") else {
            continue;
        };
        checked += 1;
        let stem = name.strip_suffix(".pcap").unwrap_or(name);
        let text = std::fs::read(samples_dir().join(format!("{stem}.keys")))
            .unwrap_or_else(|e| panic!("{stem}.keys: {e}"));
        let mut opts = ReplayOptions::default();
        opts.config.keys = Some(alarmscope::tls::SharedKeys(std::sync::Arc::new(
            alarmscope::tls::KeyLog::parse(&text),
        )));
        let r = replay(&samples_dir().join(name), opts, &mut |_| {}, &mut |_| {})
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        bad.extend(check(name, want, &r));
        let got: Vec<Value> = r
            .connections
            .iter()
            .map(|c| {
                c.decryption
                    .as_ref()
                    .map(|d| serde_json::to_value(d.status).expect("status serialises"))
                    .unwrap_or(Value::Null)
            })
            .collect();
        if want.get("decryption") != Some(&Value::from(got.clone())) {
            bad.push(format!(
                "{name}: decryption {got:?}, expected {:?}",
                want.get("decryption")
            ));
        }
    }
    assert!(checked >= 9, "only {checked} samples with a key log");
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_sample_file_is_listed_in_expected_json() {
    let exp = expected();
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let listed = [".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz"];
        if listed.iter().any(|ext| name.ends_with(ext)) {
            assert!(
                exp.contains_key(&name),
                "{name} has no entry in samples/expected.json"
            );
        }
    }
}
