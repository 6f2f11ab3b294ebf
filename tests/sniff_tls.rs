//! `simulate` pushing over HTTPS (and over the wrong protocol) to `listen --tls`, with and
//! without faults, while `sniff -i lo` watches without keys: what the listener recorded and what
//! the sniffer saw live must agree, and the capture sniff wrote must replay to the same. Needs
//! root for the live capture (CI runs as root); skipped with a message otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_alarmscope");

#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A running `alarmscope listen --json`, its stdout lines collected as they come.
struct Listener {
    child: Child,
    addr: SocketAddr,
    out: Arc<Mutex<Vec<Value>>>,
}

impl Listener {
    fn start(args: &[&str]) -> Listener {
        let mut listen_args = vec!["--bind", "127.0.0.1:0", "--json", "--no-store"];
        listen_args.extend_from_slice(args);
        let (mut child, addr, err) = common::spawn_listen(&listen_args);
        std::thread::spawn(move || for _ in err.lines().map_while(Result::ok) {});
        let out = Arc::new(Mutex::new(Vec::new()));
        let o2 = out.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    o2.lock().unwrap().push(v);
                }
            }
        });
        Listener { child, addr, out }
    }

    /// Wait until `n` lines satisfy `pred` (10 s at most), and return them.
    fn lines(&self, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got: Vec<Value> = self
                .out
                .lock()
                .unwrap()
                .iter()
                .filter(|v| pred(v))
                .cloned()
                .collect();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run one `simulate` to `url` (each scenario has its own listener, so the capture tells them
/// apart by server port), returning its exit status.
fn simulate(url: &str, extra: &[&str]) -> std::process::ExitStatus {
    Command::new(BIN)
        .args(["simulate", "--to", url, "--insecure", "--json"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

fn port(a: SocketAddr) -> u16 {
    a.port()
}

/// The final (not provisional) exchange lines of the sniff output, by server port.
fn final_exchanges(lines: &[Value], server_port: u16) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "exchange" && l["provisional"] == false)
        .filter(|l| {
            l["connection"]["server"]
                .as_str()
                .is_some_and(|s| s.ends_with(&format!(":{server_port}")))
        })
        .collect()
}

fn tls_problem_kinds(lines: &[Value], server_port: u16) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "tls_problem")
        .filter(|l| {
            l["connection"]["server"]
                .as_str()
                .is_some_and(|s| s.ends_with(&format!(":{server_port}")))
        })
        .map(|l| {
            l["finding"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn sniff_agrees_with_listen_tls_and_simulate_over_https() {
    if !is_root() {
        eprintln!("skipped: live capture needs root");
        return;
    }
    let ok = Listener::start(&["--tls"]);
    let err503 = Listener::start(&["--tls", "--fault", "status=503"]);
    let hang = Listener::start(&["--tls", "--fault", "hang"]);
    let plain = Listener::start(&[]);
    let ports = [ok.addr, err503.addr, hang.addr, plain.addr].map(port);

    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("live.pcap");
    let filter = ports
        .iter()
        .map(|p| format!("tcp port {p}"))
        .collect::<Vec<_>>()
        .join(" or ");
    let (sniff, _err) = common::spawn_sniff(|c| {
        c.args(["--json", "--duration", "12", "--answer-timeout", "1"])
            .args(["--filter", &filter, "--write"])
            .arg(&pcap)
    });

    let url = |a: SocketAddr, scheme: &str| format!("{scheme}://127.0.0.1:{}/alarm", a.port());
    // 3 HTTPS pushes answered 200.
    let s = simulate(&url(ok.addr, "https"), &["--count", "3", "--rate", "10"]);
    assert!(s.success());
    // 1 HTTPS push answered 503 (the listener's fault), not retried.
    let _ = simulate(
        &url(err503.addr, "https"),
        &["--count", "1", "--retries", "0"],
    );
    // 1 HTTPS push never answered: the device gives up after 1 s.
    let _ = simulate(
        &url(hang.addr, "https"),
        &["--count", "1", "--retries", "0", "--timeout", "1"],
    );
    // HTTPS to the plain listener, and plain HTTP to a TLS listener.
    let _ = simulate(
        &url(plain.addr, "https"),
        &["--count", "1", "--retries", "0", "--timeout", "2"],
    );
    let _ = simulate(
        &url(ok.addr, "http"),
        &["--count", "1", "--retries", "0", "--timeout", "2"],
    );

    // What each listener recorded.
    let oks = ok.lines(3, |v| v["verdict"] == "ok" && v["transport"] == "tls");
    assert_eq!(oks.len(), 3, "{:?}", ok.out.lock().unwrap());
    let e503 = err503.lines(1, |v| v["injected_fault"] == "status=503");
    assert_eq!(e503.len(), 1);
    let hung = hang.lines(1, |v| v["injected_fault"] == "hang");
    assert_eq!(hung.len(), 1);
    let to_plain = plain.lines(1, |v| v["tls_problem"]["kind"] == "tls_to_plain_port");
    assert_eq!(to_plain.len(), 1, "{:?}", plain.out.lock().unwrap());
    let to_tls = ok.lines(1, |v| v["tls_problem"]["kind"] == "plain_http_to_tls_port");
    assert_eq!(to_tls.len(), 1, "{:?}", ok.out.lock().unwrap());

    let out = sniff.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // Sniff, without keys: every answered HTTPS push is answered (status unknown), the hung one
    // is not, and both protocol mismatches are named.
    let verdicts = |p: u16, encrypted: bool| -> Vec<String> {
        let mut v: Vec<String> = final_exchanges(&lines, p)
            .into_iter()
            .filter(|l| l["exchange"]["encrypted"].is_object() == encrypted)
            .map(|l| l["exchange"]["verdict"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(verdicts(ports[0], true), vec!["encrypted_answered"; 3]);
    assert_eq!(verdicts(ports[1], true), vec!["encrypted_answered"]);
    assert_eq!(verdicts(ports[2], true), vec!["no_response"]);
    assert_eq!(
        tls_problem_kinds(&lines, ports[3]),
        vec!["tls_to_plain_server"]
    );
    assert_eq!(
        tls_problem_kinds(&lines, ports[0]),
        vec!["plain_http_to_tls_server"]
    );
    // The plain POST to the TLS port was answered by the listener's nginx-style 400.
    assert_eq!(verdicts(ports[0], false), vec!["error_status"]);

    // The written capture replays to the same.
    let rep = Command::new(BIN)
        .args(["replay", "--json"])
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(rep.status.success());
    let doc: Value = serde_json::from_slice(&rep.stdout).unwrap();
    let s = &doc["summary"];
    assert_eq!(s["encrypted_answered"], 4, "{s}");
    assert_eq!(s["no_response"], 1, "{s}");
    assert_eq!(s["error_status"], 1, "{s}");
    assert_eq!(s["tls_mismatches"], 2, "{s}");
    assert_eq!(s["ok"], 0, "{s}");
}
