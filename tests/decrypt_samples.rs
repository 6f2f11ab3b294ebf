//! The HTTPS samples (recorded over loopback by samples/tools/record_tls.py, with the key logs
//! the clients wrote) decrypted by [`TlsDecryptor`], fed the way the pipeline will feed it:
//! the capture reader and TCP tracker, [`probe_client_hello`] to pick TLS connections, then
//! `data`/`gap`/`close` per TCP event. What the plaintext must hold is declared in
//! samples/expected.json (each HTTPS sample's `tls` connections, key `decrypted`, declared in
//! samples/tools/expected_tls.py from what the devices and servers of each scenario send:
//! record.py's request head and answer, bodies.py's events), never read back from a run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alarmscope::capture::decode_frame;
use alarmscope::capture::file::CaptureFile;
use alarmscope::capture::frame::Decoded;
use alarmscope::tcp::{Direction, TcpConfig, TcpEvent, TcpTracker};
use alarmscope::time::Timestamp;
use alarmscope::tls::decrypt::{DecryptConfig, DecryptEvent, DecryptFinding, DecryptReport};
use alarmscope::tls::keylog::{KeyLog, KeyLookup};
use alarmscope::tls::{probe_client_hello, DecryptStatus, Probe, TlsDecryptor};
use proptest::prelude::*;
use serde_json::Value;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// The HTTPS samples' declared TLS facts: name -> `{connections: [...]}` (the `tls` key of
/// samples/expected.json, one entry per connection, plain HTTP ones included).
fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(samples_dir().join("expected.json"))
        .expect("samples/expected.json");
    let Value::Object(all) = serde_json::from_str(&text).expect("expected.json is JSON") else {
        panic!("expected.json must be an object");
    };
    all.into_iter()
        .filter_map(|(name, e)| {
            let conns = e.get("tls")?.clone();
            let mut m = serde_json::Map::new();
            m.insert("connections".into(), conns);
            Some((name, Value::Object(m)))
        })
        .collect()
}

fn keylog(name: &str) -> Arc<KeyLog> {
    let stem = name.strip_suffix(".pcap").unwrap_or(name);
    let text = std::fs::read(samples_dir().join(format!("{stem}.keys"))).unwrap_or_default();
    Arc::new(KeyLog::parse(&text))
}

/// What the decryptor handed on for one connection.
#[derive(Debug, Default, PartialEq)]
struct Plain {
    /// Plaintext per direction (client first).
    bytes: [Vec<u8>; 2],
    gaps: usize,
    stopped: [bool; 2],
    findings: Vec<DecryptFinding>,
}

impl Plain {
    fn on(&mut self, ev: DecryptEvent<'_>) {
        match ev {
            DecryptEvent::Plain { dir, bytes, .. } => self.bytes[d(dir)].extend_from_slice(bytes),
            DecryptEvent::Gap { .. } => self.gaps += 1,
            DecryptEvent::Stopped { dir, .. } => self.stopped[d(dir)] = true,
            DecryptEvent::Finding(f) => self.findings.push(f),
        }
    }
}

fn d(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// One TCP connection's in-order events, as the tracker gave them.
#[derive(Debug, Clone)]
enum Ev {
    Data(Direction, Timestamp, Vec<u8>),
    Gap(Direction, Timestamp, u64),
}

/// Every TCP connection of a capture whose client begins with a TLS ClientHello, as its list
/// of events, in order of connection id.
fn tls_connections(path: &Path) -> Vec<Vec<Ev>> {
    let mut file = CaptureFile::open(path).expect("capture opens");
    let mut tcp = TcpTracker::new(TcpConfig::default());
    let mut conns: HashMap<u64, Vec<Ev>> = HashMap::new();
    let mut on = |ev: TcpEvent<'_>| match ev {
        TcpEvent::Open { id, .. } => {
            conns.insert(id, Vec::new());
        }
        TcpEvent::Data { id, dir, ts, data } => {
            if let Some(c) = conns.get_mut(&id) {
                c.push(Ev::Data(dir, ts, data.to_vec()));
            }
        }
        TcpEvent::Gap { id, dir, ts, bytes } => {
            if let Some(c) = conns.get_mut(&id) {
                c.push(Ev::Gap(dir, ts, bytes));
            }
        }
        TcpEvent::Close { .. } => {}
    };
    while let Ok(Some(fr)) = file.next_frame() {
        if let Ok(Decoded::Tcp(seg)) = decode_frame(fr.link, fr.data, fr.orig_len) {
            tcp.segment(fr.ts, &seg, &mut on);
        }
    }
    tcp.finish(&mut on);
    let mut ids: Vec<u64> = conns.keys().copied().collect();
    ids.sort_unstable();
    ids.into_iter()
        .filter_map(|id| conns.remove(&id))
        .filter(|evs| {
            let first: Vec<u8> = evs
                .iter()
                .filter_map(|e| match e {
                    Ev::Data(Direction::ClientToServer, _, b) => Some(b.clone()),
                    _ => None,
                })
                .flatten()
                .take(6)
                .collect();
            probe_client_hello(&first) == Probe::Tls
        })
        .collect()
}

/// Feed one connection's events to a decryptor.
fn decrypt(evs: &[Ev], keys: Arc<dyn KeyLookup + Send + Sync>) -> (Plain, DecryptReport) {
    let mut dec = TlsDecryptor::new(DecryptConfig::default(), keys);
    let mut p = Plain::default();
    let mut last = Timestamp(0);
    for e in evs {
        match e {
            Ev::Data(dir, ts, b) => {
                last = *ts;
                dec.data(*dir, *ts, b, &mut |ev| p.on(ev));
                assert!(dec.buffered_bytes() <= 2 * (5 + 16384 + 2048 + (16 << 10)));
            }
            Ev::Gap(dir, ts, n) => dec.gap(*dir, *ts, *n, &mut |ev| p.on(ev)),
        }
    }
    dec.close(last, alarmscope::tcp::CloseKind::Open, &mut |ev| p.on(ev));
    let report = dec.finish();
    (p, report)
}

/// The HTTP messages of one direction's plaintext, split by their Content-Length: (start
/// line, body). `None` unless the plaintext is exactly a sequence of whole messages (no byte
/// missing, none left over: a wrongly stripped record would leave some).
fn messages(plain: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = plain;
    while !rest.is_empty() {
        let end = memchr::memmem::find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let start = lines.next()?.to_string();
        let len: usize = lines
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let body = rest.get(end + 4..end + 4 + len)?;
        out.push((start, body.to_vec()));
        rest = &rest[end + 4 + len..];
    }
    Some(out)
}

/// The `<eventType>` of a request body.
fn event_type(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let after = text.split("<eventType>").nth(1)?;
    Some(after.split("</eventType>").next()?.to_string())
}

#[test]
fn every_sample_with_a_key_log_decrypts_to_what_its_devices_sent() {
    let exp = expected();
    let mut bad = Vec::new();
    let mut checked = 0;
    for (name, e) in &exp {
        let want: Vec<&Value> = e["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .filter(|c| c["tls"] == Value::Bool(true))
            .collect();
        if want.iter().all(|c| c.get("decrypted").is_none()) {
            continue;
        }
        let keys = keylog(name);
        if !keys.warnings().is_empty() {
            bad.push(format!("{name}: key log warnings {:?}", keys.warnings()));
        }
        let conns = tls_connections(&samples_dir().join(name));
        if conns.len() != want.len() {
            bad.push(format!(
                "{name}: {} TLS connections, expected {}",
                conns.len(),
                want.len()
            ));
            continue;
        }
        for (i, (w, evs)) in want.iter().zip(&conns).enumerate() {
            let Some(wd) = w.get("decrypted") else {
                continue;
            };
            checked += 1;
            let (p, report) = decrypt(evs, keys.clone());
            if wd.is_null() {
                // Declared not decryptable: the key log lacks the session.
                let missing = p
                    .findings
                    .iter()
                    .any(|f| matches!(f, DecryptFinding::KeyNotInLog { .. }));
                if !missing
                    || report.status != DecryptStatus::NotDecrypted
                    || !p.bytes[0].is_empty()
                {
                    bad.push(format!(
                        "{name} #{i}: expected key_not_in_log, got {:?} {:?}",
                        report.status, p.findings
                    ));
                }
                continue;
            }
            let (Some(reqs), Some(resps)) = (messages(&p.bytes[0]), messages(&p.bytes[1])) else {
                bad.push(format!(
                    "{name} #{i}: plaintext is not a sequence of whole HTTP messages"
                ));
                continue;
            };
            let list =
                |key: &str| -> Vec<Value> { wd[key].as_array().cloned().unwrap_or_default() };
            let want_events: Vec<Value> = list("events");
            let got_events: Vec<Value> = reqs
                .iter()
                .map(|(start, body)| {
                    if start == "POST /alarm HTTP/1.1" {
                        event_type(body).map_or(Value::Null, Value::from)
                    } else {
                        Value::from(format!("not a push: {start}"))
                    }
                })
                .collect();
            if got_events != want_events {
                bad.push(format!(
                    "{name} #{i}: requests {got_events:?}, expected {want_events:?}"
                ));
            }
            let got_statuses: Vec<Value> = resps
                .iter()
                .map(|(start, _)| {
                    start
                        .strip_prefix("HTTP/1.1 ")
                        .and_then(|s| s.get(..3)?.parse::<u64>().ok())
                        .map_or(Value::Null, Value::from)
                })
                .collect();
            if got_statuses != list("statuses") {
                bad.push(format!(
                    "{name} #{i}: statuses {got_statuses:?}, expected {:?}",
                    list("statuses")
                ));
            }
            if wd.get("body_bytes").is_some() {
                let got: Vec<Value> = reqs.iter().map(|(_, b)| Value::from(b.len())).collect();
                if got != list("body_bytes") {
                    bad.push(format!(
                        "{name} #{i}: bodies {got:?}, expected {:?}",
                        list("body_bytes")
                    ));
                }
            }
            if report.status != DecryptStatus::Decrypting
                || p.gaps != 0
                || p.stopped != [false, false]
            {
                bad.push(format!(
                    "{name} #{i}: status {:?}, {} gaps, stopped {:?}",
                    report.status, p.gaps, p.stopped
                ));
            }
            // Clean loopback recordings: the only findings are decrypted alerts (close_notify)
            // and key updates.
            for f in &p.findings {
                if !matches!(
                    f,
                    DecryptFinding::Alert { .. } | DecryptFinding::KeyUpdate { .. }
                ) {
                    bad.push(format!("{name} #{i}: unexpected finding {f}"));
                }
            }
            if let Some(n) = wd.get("key_updates").and_then(Value::as_u64) {
                let got = p
                    .findings
                    .iter()
                    .filter(|f| matches!(f, DecryptFinding::KeyUpdate { .. }))
                    .count() as u64;
                if got != n {
                    bad.push(format!("{name} #{i}: {got} key updates, expected {n}"));
                }
            }
            if let Some(v) = wd.get("version") {
                let got = report.version.map(|v| v.to_string());
                if v.as_str() != got.as_deref() {
                    bad.push(format!("{name} #{i}: version {got:?}, expected {v}"));
                }
            }
            if let Some(v) = wd.get("cipher_suite") {
                let got = report.cipher_suite.map(|c| c.to_string());
                if v.as_str() != got.as_deref() {
                    bad.push(format!("{name} #{i}: suite {got:?}, expected {v}"));
                }
            }
        }
    }
    assert!(checked >= 14, "{checked} connections checked");
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// A key log whose secrets are all one bit off: every session's first record fails to
/// authenticate, located, and nothing is handed on.
#[test]
fn a_wrong_key_is_an_authentication_finding_and_no_plaintext() {
    for name in ["https-tls12.pcap", "https-tls13.pcap"] {
        let stem = name.strip_suffix(".pcap").unwrap();
        let text = std::fs::read_to_string(samples_dir().join(format!("{stem}.keys"))).unwrap();
        // Flip the last hex digit of every secret.
        let spoilt: String = text
            .lines()
            .map(|l| {
                if l.starts_with('#') || l.is_empty() {
                    return format!("{l}\n");
                }
                let mut s = l.to_string();
                let last = s.pop().unwrap();
                s.push(if last == '0' { '1' } else { '0' });
                format!("{s}\n")
            })
            .collect();
        let keys = Arc::new(KeyLog::parse(spoilt.as_bytes()));
        assert!(keys.warnings().is_empty());
        let conns = tls_connections(&samples_dir().join(name));
        assert_eq!(conns.len(), 1);
        let (p, report) = decrypt(&conns[0], keys);
        assert_eq!(report.status, DecryptStatus::NotDecrypted, "{name}");
        assert_eq!(p.bytes, [Vec::<u8>::new(), Vec::new()], "{name}");
        let failed: Vec<_> = p
            .findings
            .iter()
            .filter_map(|f| match f {
                DecryptFinding::AuthFailed {
                    dir, first, offset, ..
                } => Some((*dir, *first, *offset)),
                _ => None,
            })
            .collect();
        // Both directions' first encrypted record, each located after the hellos.
        assert_eq!(failed.len(), 2, "{name}: {:?}", p.findings);
        assert!(
            failed.iter().all(|(_, first, off)| *first && *off > 0),
            "{name}"
        );
        assert_eq!(p.stopped, [true, true], "{name}");
    }
}

#[test]
fn an_empty_key_log_says_which_session_is_missing() {
    let conns = tls_connections(&samples_dir().join("https-tls13.pcap"));
    let (p, report) = decrypt(&conns[0], Arc::new(KeyLog::default()));
    assert_eq!(report.status, DecryptStatus::NotDecrypted);
    assert!(p.bytes.iter().all(Vec::is_empty));
    let text = std::fs::read_to_string(samples_dir().join("https-tls13.keys")).unwrap();
    match &p.findings[..] {
        [DecryptFinding::KeyNotInLog {
            client_random,
            session_logged: false,
            ..
        }] => assert!(text.contains(client_random.as_str()), "{client_random}"),
        other => panic!("{other:?}"),
    }
}

/// Run of one direction's bytes between the other direction's.
fn runs(evs: &[Ev]) -> Vec<(Direction, Timestamp, Vec<u8>)> {
    let mut out: Vec<(Direction, Timestamp, Vec<u8>)> = Vec::new();
    for e in evs {
        if let Ev::Data(dir, ts, b) = e {
            match out.last_mut() {
                Some((d, t, bytes)) if d == dir => {
                    bytes.extend_from_slice(b);
                    *t = *ts;
                }
                _ => out.push((*dir, *ts, b.clone())),
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Decrypting records split at any TCP boundary gives the same plaintext: each run of one
    /// direction's bytes is cut at arbitrary points (1-byte pieces included) and fed piece by
    /// piece.
    #[test]
    fn any_split_gives_the_same_plaintext(
        sample in 0usize..3,
        cuts in proptest::collection::vec(proptest::collection::vec(1usize..700, 0..30), 24),
    ) {
        let name = ["https-tls12.pcap", "https-tls13.pcap", "https-ok.pcap"][sample];
        let keys = keylog(name);
        let conns = tls_connections(&samples_dir().join(name));
        let whole: Vec<Ev> = runs(&conns[0])
            .into_iter()
            .map(|(d, t, b)| Ev::Data(d, t, b))
            .collect();
        let (want, _) = decrypt(&whole, keys.clone());
        prop_assert!(!want.bytes[0].is_empty() && !want.bytes[1].is_empty());
        let mut split = Vec::new();
        for (i, (dir, ts, b)) in runs(&conns[0]).into_iter().enumerate() {
            let mut rest = &b[..];
            for c in cuts.get(i).into_iter().flatten() {
                let k = (*c).min(rest.len());
                split.push(Ev::Data(dir, ts, rest[..k].to_vec()));
                rest = &rest[k..];
            }
            split.push(Ev::Data(dir, ts, rest.to_vec()));
        }
        let (got, _) = decrypt(&split, keys);
        prop_assert_eq!(got, want);
    }
}

/// tshark, when installed, is the oracle: with the same key log it must see the same requests
/// (method and path) and answers (status) per TCP stream as the decryptor hands on.
#[test]
fn tshark_sees_the_same_requests_and_answers() {
    if std::process::Command::new("tshark")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("tshark not installed: oracle check skipped");
        return;
    }
    let mut compared = 0;
    for (name, _) in expected() {
        let stem = name.strip_suffix(".pcap").unwrap_or(&name).to_string();
        let keys_file = samples_dir().join(format!("{stem}.keys"));
        if !keys_file.exists() {
            continue;
        }
        let pcap = samples_dir().join(&name);
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keys_file.display()))
            .args(["-Y", "http", "-T", "fields", "-e", "tcp.stream"])
            .args(["-e", "http.request.method", "-e", "http.request.uri"])
            .args(["-e", "http.response.code"])
            .output()
            .expect("tshark runs");
        assert!(out.status.success(), "{name}: tshark failed");
        // Per stream: requests ("POST /alarm") and answers ("200"), in order.
        let mut theirs: std::collections::BTreeMap<usize, (Vec<String>, Vec<String>)> =
            Default::default();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let Some(stream) = f.first().and_then(|s| s.parse::<usize>().ok()) else {
                continue;
            };
            let e = theirs.entry(stream).or_default();
            match (f.get(1), f.get(2), f.get(3)) {
                (Some(m), Some(u), _) if !m.is_empty() => e.0.push(format!("{m} {u}")),
                (_, _, Some(code)) if !code.is_empty() => e.1.push(code.to_string()),
                _ => {}
            }
        }
        // Ours: every connection of these captures is TLS, so its index is tshark's stream.
        let keys = keylog(&name);
        let mut ours: std::collections::BTreeMap<usize, (Vec<String>, Vec<String>)> =
            Default::default();
        for (i, evs) in tls_connections(&pcap).iter().enumerate() {
            let (p, _) = decrypt(evs, keys.clone());
            let reqs = messages(&p.bytes[0]).unwrap_or_default();
            let resps = messages(&p.bytes[1]).unwrap_or_default();
            if reqs.is_empty() && resps.is_empty() {
                continue;
            }
            let line = |s: &str, n: usize| s.split(' ').take(n).collect::<Vec<_>>().join(" ");
            ours.insert(
                i,
                (
                    reqs.iter().map(|(s, _)| line(s, 2)).collect(),
                    resps
                        .iter()
                        .map(|(s, _)| s.split(' ').nth(1).unwrap_or("").to_string())
                        .collect(),
                ),
            );
        }
        assert_eq!(ours, theirs, "{name}");
        compared += 1;
    }
    assert!(compared >= 10, "{compared} samples compared");
}

/// Capture gaps anywhere in a recorded keep-alive connection (three pushes): every piece of
/// plaintext handed on is found, in order, in the plaintext of the whole capture (never wrong
/// plaintext), and both a gap inside one record (that record lost) and one across records
/// (resynchronised on an authenticated record) occur and let later pushes through.
#[test]
fn capture_gaps_anywhere_never_give_wrong_plaintext() {
    let name = "https-keepalive.pcap";
    let keys = keylog(name);
    let conns = tls_connections(&samples_dir().join(name));
    let whole: Vec<(Direction, Timestamp, Vec<u8>)> = runs(&conns[0]);
    let evs = |runs: &[(Direction, Timestamp, Vec<u8>)]| -> Vec<Ev> {
        runs.iter()
            .map(|(d, t, b)| Ev::Data(*d, *t, b.clone()))
            .collect()
    };
    let (truth, _) = decrypt(&evs(&whole), keys.clone());
    assert_eq!(messages(&truth.bytes[0]).map(|m| m.len()), Some(3));
    let (mut lost, mut resynced, mut later_push) = (0, 0, 0);
    for (r, (dir, ts, bytes)) in whole.iter().enumerate() {
        for start in (0..bytes.len()).step_by(29) {
            for len in [7usize, 60, 400] {
                let end = (start + len).min(bytes.len());
                let mut cut = Vec::new();
                for (i, (d, t, b)) in whole.iter().enumerate() {
                    if i == r {
                        cut.push(Ev::Data(*dir, *ts, bytes[..start].to_vec()));
                        cut.push(Ev::Gap(*dir, *ts, (end - start) as u64));
                        cut.push(Ev::Data(*dir, *ts, bytes[end..].to_vec()));
                    } else {
                        cut.push(Ev::Data(*d, *t, b.clone()));
                    }
                }
                let mut dec = TlsDecryptor::new(DecryptConfig::default(), keys.clone());
                let mut chunks: Vec<(Direction, Vec<u8>)> = Vec::new();
                let mut findings = Vec::new();
                for e in &cut {
                    let mut sink = |ev: DecryptEvent<'_>| match ev {
                        DecryptEvent::Plain { dir, bytes, .. } => {
                            chunks.push((dir, bytes.to_vec()))
                        }
                        DecryptEvent::Finding(f) => findings.push(f),
                        _ => {}
                    };
                    match e {
                        Ev::Data(d, t, b) => dec.data(*d, *t, b, &mut sink),
                        Ev::Gap(d, t, n) => dec.gap(*d, *t, *n, &mut sink),
                    }
                }
                let mut at = [0usize; 2];
                for (d, c) in &chunks {
                    let truth = &truth.bytes[self::d(*d)];
                    let found = memchr::memmem::find(&truth[at[self::d(*d)]..], c);
                    let Some(pos) = found else {
                        panic!(
                            "run {r} gap {start}+{len}: plaintext not in the capture's: {:?}",
                            String::from_utf8_lossy(c)
                        );
                    };
                    at[self::d(*d)] += pos + c.len();
                }
                for f in &findings {
                    if let DecryptFinding::Gap { outcome, .. } = f {
                        match outcome {
                            alarmscope::tls::decrypt::GapOutcome::RecordLost { .. } => lost += 1,
                            alarmscope::tls::decrypt::GapOutcome::Resynced { .. } => resynced += 1,
                            alarmscope::tls::decrypt::GapOutcome::Stopped => {}
                        }
                    }
                }
                // The last push's event reached the plaintext despite the gap.
                let c2s: Vec<u8> = chunks
                    .iter()
                    .filter(|(d, _)| *d == Direction::ClientToServer)
                    .flat_map(|(_, c)| c.clone())
                    .collect();
                if *dir == Direction::ClientToServer
                    && String::from_utf8_lossy(&c2s).contains("2024-05-14T10:37:02+08:00")
                {
                    later_push += 1;
                }
            }
        }
    }
    assert!(
        lost > 10 && resynced > 10 && later_push > 10,
        "lost {lost}, resynced {resynced}, later push {later_push}"
    );
}
