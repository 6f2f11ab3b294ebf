//! `alarmscope listen --tls` with the real binary over loopback, pushed to by a rustls client
//! (as a device would: one TLS connection per event): storage before the 200, faults, the
//! problems a TLS port meets (a client that rejects the certificate, plain HTTP on the TLS port,
//! TLS on the plain port), the key log, and `simulate --to https://`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

mod common;

const XML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.hikvision.com/ver20/XMLSchema\">\r\n<ipAddress>10.0.0.5</ipAddress>\r\n<macAddress>44:19:b6:00:00:01</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>2024-02-29T12:34:56+08:00</dateTime>\r\n<activePostCount>1</activePostCount>\r\n<eventType>VMD</eventType>\r\n<eventState>active</eventState>\r\n<eventDescription>Motion alarm</eventDescription>\r\n</EventNotificationAlert>\r\n";

fn request() -> Vec<u8> {
    format!(
        "POST /alarm HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{XML}",
        XML.len()
    )
    .into_bytes()
}

/// A running `alarmscope listen`, its stdout lines and stderr lines as they come.
struct Bin {
    child: Child,
    addr: SocketAddr,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Bin {
    fn start(args: &[&str]) -> Bin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_alarmscope"))
            .arg("listen")
            .args(["--bind", "127.0.0.1:0"])
            .args(if args.contains(&"--text") {
                None
            } else {
                Some("--json")
            })
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut errr = BufReader::new(child.stderr.take().unwrap());
        let addr = common::bound_addr(&mut errr);
        let err = Arc::new(Mutex::new(Vec::new()));
        let e2 = err.clone();
        std::thread::spawn(move || {
            for l in errr.lines().map_while(Result::ok) {
                e2.lock().unwrap().push(l);
            }
        });
        let out = Arc::new(Mutex::new(Vec::new()));
        let o2 = out.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                o2.lock().unwrap().push(l);
            }
        });
        Bin {
            child,
            addr,
            out,
            err,
        }
    }

    /// The first stdout JSON line `pred` accepts (10 s at most).
    fn line(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for l in self.out.lock().unwrap().iter() {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                    if pred(&v) {
                        return v;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("no such line in {:?}", self.out.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stderr line containing `what` (5 s at most).
    fn err_line(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(l) = self.err.lock().unwrap().iter().find(|l| l.contains(what)) {
                return l.clone();
            }
            if Instant::now() > deadline {
                panic!("no {what:?} in {:?}", self.err.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Accepts any certificate (a device that does not check), signatures still checked.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

enum Trust<'a> {
    /// Only this certificate (PEM file) as a root: a device told to trust the listener's.
    Cert(&'a Path),
    /// No root at all: every server certificate is from an unknown CA.
    Nothing,
    Any,
}

fn client(trust: Trust<'_>, tls12_only: bool) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let b = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .unwrap();
    let cfg = match trust {
        Trust::Cert(p) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(p).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            b.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Nothing => b
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        Trust::Any => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth(),
    };
    Arc::new(cfg)
}

/// One push over a new TLS connection; the answer's status and text, or the TLS error. Returns
/// as soon as the answer is complete (head and Content-Length body), not at the close, so that
/// what the listener did before answering can be checked at that moment.
fn push_tls(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>) -> Result<(u16, String), String> {
    let mut sock = common::connect(addr);
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(cfg, name).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(&request()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if answer.len() >= end + 4 + len {
                let status = text
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("no status in {text:?}"))?;
                return Ok((status, text));
            }
        }
        match tls.read(&mut chunk) {
            Ok(0) => return Err(format!("closed after {answer:?}")),
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn hex_ok(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn tls_push_is_stored_before_its_200_and_the_certificate_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let bin = Bin::start(&["--tls", "--store", store.to_str().unwrap()]);
    let cert = store.join("tls/cert.pem");
    let start = bin.line(|v| v["start"] == true);
    let fp = start["listen"]["tls"]["fingerprint_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(start["listen"]["tls"]["certificate"]["created"], true);
    // The printed fingerprint is the SHA-256 of the certificate the devices get.
    let der = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    use sha2::Digest as _;
    let want: Vec<String> = sha2::Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(fp, want.join(":"));
    assert!(bin.err_line("SHA-256 fingerprint").contains(&fp));

    // A device that trusts exactly this certificate.
    let (status, _) = push_tls(bin.addr, client(Trust::Cert(&cert), false)).unwrap();
    assert_eq!(status, 200);
    // Durable before the answer: the index line is there as soon as the 200 is.
    let index = std::fs::read_to_string(store.join("index.jsonl")).unwrap();
    assert_eq!(index.lines().count(), 1, "{index}");
    assert!(index.contains("VMD"));
    let ev = bin.line(|v| v["verdict"].is_string());
    assert_eq!(ev["verdict"], "ok");
    assert_eq!(ev["transport"], "tls");
    assert_eq!(ev["event"]["event_type"], "VMD");
    assert!(ev["stored"]["rel_dir"].is_string());
    drop(bin);

    // The next start reuses the certificate: devices that trust it keep working.
    let bin = Bin::start(&["--tls", "--store", store.to_str().unwrap()]);
    let start = bin.line(|v| v["start"] == true);
    assert_eq!(start["listen"]["tls"]["fingerprint_sha256"], fp.as_str());
    assert_eq!(start["listen"]["tls"]["certificate"]["created"], false);
    assert_eq!(
        push_tls(bin.addr, client(Trust::Cert(&cert), true))
            .unwrap()
            .0,
        200
    );
}

#[test]
fn faults_hold_over_tls() {
    let bin = Bin::start(&["--tls", "--no-store", "--fault", "status=503"]);
    let (status, text) = push_tls(bin.addr, client(Trust::Any, false)).unwrap();
    assert_eq!(status, 503, "{text}");
    let ev = bin.line(|v| v["verdict"].is_string());
    assert_eq!(ev["injected_fault"], "status=503");
    assert_eq!(ev["transport"], "tls");

    let bin = Bin::start(&["--tls", "--no-store", "--fault", "delay=700ms"]);
    let t = Instant::now();
    assert_eq!(push_tls(bin.addr, client(Trust::Any, true)).unwrap().0, 200);
    assert!(t.elapsed() >= Duration::from_millis(700));

    // reset: the TCP connection under TLS is aborted instead of answered.
    let bin = Bin::start(&["--tls", "--no-store", "--fault", "reset"]);
    let err = push_tls(bin.addr, client(Trust::Any, false)).unwrap_err();
    assert!(err.contains("reset"), "{err}");
    let ev = bin.line(|v| v["verdict"].is_string());
    assert_eq!(ev["injected_fault"], "reset");

    // hang: stored, never answered (the device times out).
    let bin = Bin::start(&["--tls", "--no-store", "--fault", "hang"]);
    let mut sock = common::connect(bin.addr);
    sock.set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    let mut conn = rustls::ClientConnection::new(
        client(Trust::Any, false),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(&request()).unwrap();
    let mut b = [0u8; 64];
    let e = tls.read(&mut b).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e}"
    );
    assert_eq!(
        bin.line(|v| v["verdict"].is_string())["injected_fault"],
        "hang"
    );
}

#[test]
fn limits_hold_over_tls() {
    let bin = Bin::start(&["--tls", "--no-store", "--max-body-bytes", "100"]);
    let (status, text) = push_tls(bin.addr, client(Trust::Any, false)).unwrap();
    assert_eq!(status, 413, "{text}");
    let ev = bin.line(|v| v["verdict"].is_string());
    assert_eq!(ev["verdict"], "error_status");
    assert_eq!(ev["transport"], "tls");
}

#[test]
fn a_device_rejecting_the_certificate_is_a_client_alert_row() {
    let bin = Bin::start(&["--tls", "--no-store"]);
    let err = push_tls(bin.addr, client(Trust::Nothing, false)).unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
    let p = bin.line(|v| v["tls_problem"].is_object());
    assert_eq!(p["tls_problem"]["kind"], "client_alert");
    assert_eq!(p["tls_problem"]["alert"], "unknown_ca");
    assert_eq!(p["transport"], "tls");
    assert!(p["explanation"]
        .as_str()
        .unwrap()
        .contains("does not trust the server's certificate"));
}

#[test]
fn plain_http_to_the_tls_port_is_named_and_answered_like_nginx() {
    let bin = Bin::start(&["--tls", "--no-store"]);
    let mut s = common::connect(bin.addr);
    s.write_all(&request()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // The text the TLS stage recognises in captures (nginx's).
    assert!(alarmscope::tls::is_plain_http_to_https_page(
        answer.as_bytes()
    ));
    let p = bin.line(|v| v["tls_problem"].is_object());
    assert_eq!(p["tls_problem"]["kind"], "plain_http_to_tls_port");
    assert_eq!(p["tls_problem"]["method"], "POST");
    assert_eq!(p["tls_problem"]["path"], "/alarm");
    assert_eq!(p["transport"], "plain");

    // --tls-also-plain serves both on one port, each event saying how it came.
    let bin = Bin::start(&["--tls", "--tls-also-plain", "--no-store"]);
    let mut s = common::connect(bin.addr);
    s.write_all(&request()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        push_tls(bin.addr, client(Trust::Any, false)).unwrap().0,
        200
    );
    let plain = bin.line(|v| v["transport"] == "plain");
    assert_eq!(plain["verdict"], "ok");
    let tls = bin.line(|v| v["transport"] == "tls");
    assert_eq!(tls["verdict"], "ok");
}

#[test]
fn tls_to_the_plain_port_is_named_instead_of_a_bare_400() {
    let bin = Bin::start(&["--no-store", "--text"]);
    assert!(push_tls(bin.addr, client(Trust::Any, false)).is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    let line = loop {
        if let Some(l) = bin
            .out
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("tls_to_plain_port"))
        {
            break l.clone();
        }
        assert!(Instant::now() < deadline, "{:?}", bin.out.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        line.contains("the device uses HTTPS, this listener speaks HTTP"),
        "{line}"
    );
    // No event was made of the hello (the old behaviour: a 400 exchange).
    assert!(!bin.out.lock().unwrap().iter().any(|l| l.contains(" 400 ")));
}

#[test]
fn keylog_has_nss_lines_for_tls13_and_tls12() {
    let dir = tempfile::tempdir().unwrap();
    let keylog = dir.path().join("keys.log");
    let bin = Bin::start(&["--tls", "--no-store", "--keylog", keylog.to_str().unwrap()]);
    assert_eq!(
        push_tls(bin.addr, client(Trust::Any, false)).unwrap().0,
        200
    );
    assert_eq!(push_tls(bin.addr, client(Trust::Any, true)).unwrap().0, 200);
    let text = std::fs::read_to_string(&keylog).unwrap();
    let mut labels = std::collections::HashMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 3, "{l}");
        assert!(hex_ok(f[1], 64), "client random: {l}");
        assert!(f[2].len() >= 64 && hex_ok(f[2], f[2].len()), "secret: {l}");
        *labels.entry(f[0]).or_insert(0) += 1;
    }
    for l in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert_eq!(labels.get(l), Some(&1), "{l} in {text}");
    }
    // TLS 1.2: the 48-byte master secret.
    let cr = text
        .lines()
        .find(|l| l.starts_with("CLIENT_RANDOM "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(cr.split(' ').nth(2).unwrap().len(), 96);
}

#[test]
fn simulate_pushes_over_https_to_listen_tls() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let bin = Bin::start(&["--tls", "--store", store.to_str().unwrap()]);
    let url = format!("https://127.0.0.1:{}/alarm", bin.addr.port());
    let sim = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_alarmscope"))
            .args([
                "simulate", "--to", &url, "--count", "2", "--rate", "20", "--json",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    // Refused without a trust decision, saying why.
    let o = sim(&[]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--insecure") && e.contains("--ca"), "{e}");
    // With the listener's certificate as CA, TLS 1.2 like many cameras.
    let ca = store.join("tls/cert.pem");
    let o = sim(&["--ca", ca.to_str().unwrap(), "--tls-version", "1.2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["delivered"], 2, "{out}");
    // --insecure with TLS 1.3.
    let o = sim(&["--insecure", "--tls-version", "1.3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n = bin
        .out
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("\"transport\":\"tls\"") && l.contains("\"verdict\":\"ok\""))
        .count();
    assert!(n >= 2, "{n}");
    // A CA that did not sign the listener's certificate: the device gives up (unknown_ca).
    let other = dir.path().join("other.pem");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(&other, ck.cert.pem()).unwrap();
    let _ = sim(&["--ca", other.to_str().unwrap(), "--retries", "0"]);
    let p = bin.line(|v| v["tls_problem"].is_object());
    assert_eq!(p["tls_problem"]["alert"], "unknown_ca");
}

/// A real ClientHello as a device sends it (TLS 1.2 and 1.3 offered).
fn client_hello() -> Vec<u8> {
    let mut conn = rustls::ClientConnection::new(
        client(Trust::Any, false),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    out
}

/// A listener with 4 slots, all taken by connections that sent `first` and then nothing, must
/// still serve a device's TLS push at once: the stuck connections are closed to make room.
fn device_gets_through(first: &[u8]) {
    let srv = common::Srv::start(|o| {
        o.store = None;
        o.tls = Some(alarmscope::listen::tls::TlsOptions::default());
        o.limits.max_connections = 4;
        o.limits.read_timeout = Duration::from_secs(30);
        o.limits.idle_timeout = Duration::from_secs(30);
    });
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = common::connect(srv.addr);
        s.write_all(first).unwrap();
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..2 {
        let t = Instant::now();
        assert_eq!(
            push_tls(srv.addr, client(Trust::Any, false)).unwrap().0,
            200
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
    let ev = srv.events(2);
    assert!(ev
        .iter()
        .all(|e| e.transport == alarmscope::listen::tls::Transport::Tls));
}

/// The attack tests' idle and slow-header floods, over TLS: connections stuck inside their
/// handshake (a complete hello, then silence) or before it (a hello cut short, so the listener
/// cannot tell yet what they speak) do not lock a device out.
#[test]
fn stuck_handshakes_do_not_lock_a_device_out() {
    let hello = client_hello();
    device_gets_through(&hello);
    device_gets_through(&hello[..3]);
}
