//! The HTTPS samples (recorded over loopback by samples/tools/record_tls.py) read with the
//! project's capture reader and TCP tracker and fed to the TLS stage the way the pipeline will:
//! the client's first bytes choose TLS or HTTP per connection ([`probe_client_hello`]); TLS
//! connections go to a [`TlsConnection`], plain ones keep the server's first bytes for
//! [`evidence_against_plain_http`]. What each must show is declared in
//! samples/expected-tls.json (from each scenario's design, see samples/tools/expected_tls.py).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use alarmscope::capture::decode_frame;
use alarmscope::capture::file::CaptureFile;
use alarmscope::capture::frame::Decoded;
use alarmscope::tcp::{CloseKind, Direction, TcpConfig, TcpEvent, TcpTracker};
use alarmscope::time::Timestamp;
use alarmscope::tls::{
    evidence_against_plain_http, probe_client_hello, HandshakeState, Probe, TlsConfig,
    TlsConnection, TlsReport,
};
use serde_json::Value;

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(samples_dir().join("expected-tls.json"))
        .expect("samples/expected-tls.json");
    match serde_json::from_str(&text).expect("expected-tls.json is JSON") {
        Value::Object(m) => m,
        _ => panic!("expected-tls.json must be an object"),
    }
}

/// Server bytes a plain connection keeps to judge the answer.
const ANSWER_PREFIX: usize = 512;

enum Kind {
    /// Client bytes so far fit a hello or are too few to say; events held until decided.
    Undecided(Vec<(Direction, Timestamp, Vec<u8>)>),
    Tls(Box<TlsConnection>),
    Plain {
        answer: Vec<u8>,
    },
}

struct Conn {
    server: SocketAddr,
    kind: Kind,
}

/// What one connection showed.
enum Outcome {
    Tls(Box<TlsReport>, SocketAddr),
    Plain {
        server: SocketAddr,
        answer: Vec<u8>,
        closed: CloseKind,
    },
}

#[derive(Default)]
struct Harness {
    conns: HashMap<u64, Conn>,
    done: Vec<(u64, Outcome)>,
}

impl Harness {
    fn on_tcp(&mut self, ev: TcpEvent<'_>) {
        match ev {
            TcpEvent::Open { id, server, .. } => {
                self.conns.insert(
                    id,
                    Conn {
                        server,
                        kind: Kind::Undecided(Vec::new()),
                    },
                );
            }
            TcpEvent::Data { id, dir, ts, data } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    feed(c, dir, ts, data);
                }
            }
            TcpEvent::Gap { id, dir, ts, bytes } => {
                if let Some(Conn {
                    kind: Kind::Tls(t), ..
                }) = self.conns.get_mut(&id)
                {
                    t.gap(dir, ts, bytes);
                }
            }
            TcpEvent::Close { id, info } => {
                let Some(c) = self.conns.remove(&id) else {
                    return;
                };
                let outcome = match c.kind {
                    Kind::Tls(mut t) => {
                        t.close(info.last_ts, info.closed);
                        Outcome::Tls(Box::new(t.finish()), c.server)
                    }
                    Kind::Plain { answer } => Outcome::Plain {
                        server: c.server,
                        answer,
                        closed: info.closed,
                    },
                    Kind::Undecided(held) => {
                        let answer = held
                            .into_iter()
                            .filter(|(d, _, _)| *d == Direction::ServerToClient)
                            .flat_map(|(_, _, b)| b)
                            .take(ANSWER_PREFIX)
                            .collect();
                        Outcome::Plain {
                            server: c.server,
                            answer,
                            closed: info.closed,
                        }
                    }
                };
                self.done.push((id, outcome));
            }
        }
    }
}

fn feed(c: &mut Conn, dir: Direction, ts: Timestamp, data: &[u8]) {
    match &mut c.kind {
        Kind::Tls(t) => t.data(dir, ts, data),
        Kind::Plain { answer } => {
            if dir == Direction::ServerToClient {
                let room = ANSWER_PREFIX.saturating_sub(answer.len());
                answer.extend_from_slice(&data[..room.min(data.len())]);
            }
        }
        Kind::Undecided(held) => {
            held.push((dir, ts, data.to_vec()));
            let client: Vec<u8> = held
                .iter()
                .filter(|(d, _, _)| *d == Direction::ClientToServer)
                .flat_map(|(_, _, b)| b.iter().copied())
                .take(6)
                .collect();
            let held = std::mem::take(held);
            match probe_client_hello(&client) {
                Probe::NeedMore => c.kind = Kind::Undecided(held),
                Probe::Tls => {
                    let mut t = TlsConnection::new(TlsConfig::default());
                    for (d, ts, b) in &held {
                        t.data(*d, *ts, b);
                    }
                    c.kind = Kind::Tls(Box::new(t));
                }
                Probe::NotTls | Probe::Sslv2Hello => {
                    c.kind = Kind::Plain { answer: Vec::new() };
                    for (d, ts, b) in &held {
                        feed(c, *d, *ts, b);
                    }
                }
            }
        }
    }
}

/// Every connection of a capture, in order of id. Returns the outcomes and the number of read
/// warnings (a cut file).
fn analyse(path: &Path) -> (Vec<(u64, Outcome)>, usize) {
    let mut file = CaptureFile::open(path).expect("capture opens");
    let mut tcp = TcpTracker::new(TcpConfig::default());
    let mut h = Harness::default();
    let mut warnings = 0;
    loop {
        match file.next_frame() {
            Ok(Some(fr)) => {
                if let Ok(Decoded::Tcp(seg)) = decode_frame(fr.link, fr.data, fr.orig_len) {
                    tcp.segment(fr.ts, &seg, &mut |ev| h.on_tcp(ev));
                }
            }
            Ok(None) => break,
            Err(_) => {
                warnings += 1;
                break;
            }
        }
    }
    tcp.finish(&mut |ev| h.on_tcp(ev));
    h.done.sort_by_key(|(id, _)| *id);
    (h.done, warnings)
}

/// Server addresses that completed a TLS handshake somewhere in the capture.
fn tls_servers(outcomes: &[(u64, Outcome)]) -> HashSet<SocketAddr> {
    outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Tls(r, server) if r.info.handshake == HandshakeState::Completed => {
                Some(*server)
            }
            _ => None,
        })
        .collect()
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

fn check_tls(name: &str, i: usize, want: &Value, r: &TlsReport, bad: &mut Vec<String>) {
    let info = serde_json::to_value(&r.info).expect("serialises");
    let mut field = |key: &str, got: Value| {
        if let Some(w) = want.get(key) {
            if !subset(w, &got) {
                bad.push(format!("{name} #{i}: {key}: got {got}, expected {w}"));
            }
        }
    };
    field("sni", info["client_hello"]["sni"].clone());
    let offered = r
        .info
        .client_hello
        .as_ref()
        .and_then(|c| c.highest_version())
        .map(|v| Value::from(v.to_string()))
        .unwrap_or(Value::Null);
    field("offered", offered);
    field("version", info["server_hello"]["version"].clone());
    field("certificate", info["certificate"].clone());
    field("handshake", info["handshake"].clone());
    field(
        "exchanges",
        Value::from(
            r.exchanges
                .iter()
                .map(|e| e.response.is_some())
                .collect::<Vec<_>>(),
        ),
    );
    let problems: Vec<Value> = r
        .findings
        .iter()
        .filter(|f| f.is_problem())
        .map(|f| serde_json::to_value(f).expect("serialises"))
        .collect();
    if let Some(Value::Array(w)) = want.get("problems") {
        if w.len() != problems.len() || !w.iter().zip(&problems).all(|(w, g)| subset(w, g)) {
            bad.push(format!(
                "{name} #{i}: problems: got {problems:?}, expected {w:?}"
            ));
        }
    }
    // Whatever the sample: no parsing or capture notes on these clean loopback recordings.
    let notes: Vec<String> = r
        .findings
        .iter()
        .filter(|f| !f.is_problem())
        .map(|f| f.to_string())
        .collect();
    if !notes.is_empty() {
        bad.push(format!("{name} #{i}: unexpected notes {notes:?}"));
    }
}

#[test]
fn every_https_sample_shows_its_expected_tls_facts() {
    let exp = expected();
    assert!(
        exp.len() >= 7,
        "expected-tls.json lists {} samples",
        exp.len()
    );
    let mut bad = Vec::new();
    for (name, e) in &exp {
        let path = samples_dir().join(name);
        let (outcomes, warnings) = analyse(&path);
        assert_eq!(warnings, 0, "{name}: read warnings");
        let tls_ports = tls_servers(&outcomes);
        let want = e["connections"].as_array().expect("connections");
        if want.len() != outcomes.len() {
            bad.push(format!(
                "{name}: {} connections, expected {}",
                outcomes.len(),
                want.len()
            ));
            continue;
        }
        for (i, (w, (_, o))) in want.iter().zip(&outcomes).enumerate() {
            let wants_tls = w["tls"].as_bool().expect("tls flag");
            match o {
                Outcome::Tls(r, _) if wants_tls => check_tls(name, i, w, r, &mut bad),
                Outcome::Plain {
                    server,
                    answer,
                    closed,
                } if !wants_tls => {
                    let ev =
                        evidence_against_plain_http(answer, *closed, tls_ports.contains(server));
                    let got = ev
                        .map(|e| serde_json::to_value(e).expect("serialises")["kind"].clone())
                        .unwrap_or(Value::Null);
                    if w.get("plain_http_evidence").is_some_and(|x| *x != got) {
                        bad.push(format!(
                            "{name} #{i}: plain_http_evidence: got {got}, expected {}",
                            w["plain_http_evidence"]
                        ));
                    }
                }
                _ => bad.push(format!(
                    "{name} #{i}: TLS probe disagrees (expected tls={wants_tls})"
                )),
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn every_keys_file_belongs_to_a_listed_sample_and_has_client_randoms() {
    let exp = expected();
    let mut n = 0;
    for entry in std::fs::read_dir(samples_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".keys") else {
            continue;
        };
        n += 1;
        assert!(
            exp.contains_key(&format!("{stem}.pcap")),
            "{name}: no sample"
        );
        let text = std::fs::read_to_string(samples_dir().join(&name)).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("CLIENT_RANDOM ")
                    || l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")),
            "{name}: no session secret"
        );
    }
    assert!(n >= 4, "{n} key logs");
}

/// The kinds of a report's problem findings.
fn problem_kinds(r: &TlsReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.is_problem())
        .map(|f| serde_json::to_value(f).expect("serialises")["kind"].to_string())
        .collect()
}

#[test]
fn https_samples_cut_at_every_byte_offset_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cut_path = dir.path().join("cut.pcap");
    let mut runs = 0;
    for name in [
        "https-unknown-ca.pcap",
        "https-tls13.pcap",
        "https-to-http.pcap",
    ] {
        let bytes = std::fs::read(samples_dir().join(name)).unwrap();
        let (full, _) = analyse(&samples_dir().join(name));
        let full_kinds: HashSet<String> = full
            .iter()
            .flat_map(|(_, o)| match o {
                Outcome::Tls(r, _) => problem_kinds(r),
                Outcome::Plain { .. } => Vec::new(),
            })
            .collect();
        for cut in (24..bytes.len()).step_by(3) {
            let mut f = std::fs::File::create(&cut_path).unwrap();
            f.write_all(&bytes[..cut]).unwrap();
            drop(f);
            let (outcomes, _) = analyse(&cut_path);
            runs += 1;
            assert!(outcomes.len() <= full.len(), "{name} cut at {cut}");
            for (_, o) in &outcomes {
                if let Outcome::Tls(r, _) = o {
                    // A cut capture ends anywhere; a completed handshake needs the ServerHello,
                    // and it shows no problem the whole capture does not show.
                    if r.info.handshake == HandshakeState::Completed {
                        assert!(r.info.server_hello.is_some(), "{name} cut at {cut}");
                    }
                    for k in problem_kinds(r) {
                        assert!(full_kinds.contains(&k), "{name} cut at {cut}: {k}");
                    }
                }
            }
        }
    }
    assert!(runs > 3000, "{runs}");
}
