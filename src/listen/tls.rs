//! `listen --tls`: the TLS shell in front of the connection handler, and the first-bytes check of
//! every accepted connection.
//!
//! Every connection is classified from its first bytes before anything is read
//! ([`crate::tls::probe_client_hello`] on a `peek`): a TLS ClientHello or plain HTTP. Then:
//! - `--tls` and a ClientHello: rustls (tokio-rustls) does the handshake; the connection handler
//!   gets the decrypted stream and never knows the difference ([`super::conn::ConnStream`]);
//! - `--tls` and plain HTTP: refused with a plain-HTTP `400` whose page carries nginx's words
//!   ("The plain HTTP request was sent to HTTPS port", so a capture of it is named by the TLS
//!   stage too), unless `--tls-also-plain` lets the same port serve it;
//! - no `--tls` and a ClientHello: answered `400` (as before) whose page now says what is wrong,
//!   and reported in those words instead of as a malformed request.
//!
//! Whatever stops a connection here becomes a [`TlsProblem`]: a typed kind with the plain-words
//! explanation as its `Display`, reported as a connection row (TUI), a `--json`/`--text` line
//! ([`ProblemRecord`]) and a count in the final summary.
//!
//! The certificate: `--cert`/`--key` PEM files, or a self-signed one made with rcgen at the first
//! start and kept in `STORE/tls/` (reused at every later start, so a device that was told to
//! trust it keeps trusting it). Its SHA-256 fingerprint is printed at start. `--keylog FILE`
//! appends the session secrets in the NSS key log format ([`FileKeyLog`]).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::evict::{Ticket, Waiting};
use super::{conn, now, Shared};
use crate::model::{Connection, ConnectionError};
use crate::tcp::{CloseKind, Handshake, Side};
pub use crate::tls::served::{HandshakeStep, TlsProblem};
use crate::tls::{probe_client_hello, AlertDescription, Probe};

/// What `--tls` was given.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM certificate chain (`--cert`); with `key`. Both absent: self-signed.
    pub cert: Option<PathBuf>,
    /// PEM private key (`--key`).
    pub key: Option<PathBuf>,
    /// NSS key log file the session secrets are appended to (`--keylog`).
    pub keylog: Option<PathBuf>,
    /// Also serve plain HTTP on the TLS port (`--tls-also-plain`) instead of refusing it.
    pub also_plain: bool,
}

/// Where the server's certificate came from (shown at start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum CertSource {
    /// `--cert`/`--key`.
    Given { cert: PathBuf },
    /// Self-signed, kept in the store directory: made now (`created`) or by an earlier start.
    SelfSigned { cert: PathBuf, created: bool },
    /// Self-signed, in memory only (`--no-store`): a new one at every start.
    Ephemeral,
}

/// The loaded TLS side of the listener.
pub struct TlsSetup {
    config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate (DER), `AB:CD:...` as `openssl x509 -fingerprint -sha256`
    /// prints it, so a user can compare it with what the device shows.
    pub fingerprint: String,
    pub source: CertSource,
    pub also_plain: bool,
    pub keylog: Option<PathBuf>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("fingerprint", &self.fingerprint)
            .field("source", &self.source)
            .finish()
    }
}

/// Directory of the self-signed certificate inside the store.
pub const TLS_DIR: &str = "tls";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// `AB:CD:...` SHA-256 of `der`.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(der);
    let mut s = String::with_capacity(d.len() * 3);
    for (i, b) in d.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

fn read_pem(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "no certificate in {} (expected PEM \"BEGIN CERTIFICATE\")",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("cannot read the private key {}: {e}", key.display()))?;
    Ok((certs, key))
}

/// Write `bytes` to `path` through a temporary file and a rename (never a half-written key).
fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = o.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A new self-signed certificate for `names` (rcgen's default validity: 1975 to 4096, so a
/// device with a wrong clock does not find it expired), named `alarmscope listen` so that a user
/// recognises it on the device (and it is not mistaken for another rcgen certificate with the
/// same default name).
fn self_signed(names: Vec<String>) -> anyhow::Result<(String, String)> {
    let fail = |e: rcgen::Error| anyhow::anyhow!("cannot make a self-signed certificate: {e}");
    let mut params = rcgen::CertificateParams::new(names).map_err(fail)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "alarmscope listen (self-signed)");
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Names the self-signed certificate is made for: localhost, the loopback addresses and the bound
/// address when it is a specific one.
fn cert_names(bind: &SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let ip = bind.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names
}

impl TlsSetup {
    /// Load `--cert`/`--key`, or the self-signed certificate in `store/tls/` (made there at the
    /// first start), and open the key log. Errors are one line for the user.
    pub fn load(
        opts: &TlsOptions,
        store: Option<&Path>,
        bind: &SocketAddr,
    ) -> anyhow::Result<TlsSetup> {
        let (certs, key, source) = match (&opts.cert, &opts.key) {
            (Some(c), Some(k)) => {
                let (certs, key) = read_pem(c, k)?;
                (certs, key, CertSource::Given { cert: c.clone() })
            }
            (Some(_), None) | (None, Some(_)) => {
                anyhow::bail!(
                    "--cert and --key go together (or give neither for a self-signed certificate)"
                )
            }
            (None, None) => match store {
                Some(dir) => {
                    let d = dir.join(TLS_DIR);
                    let (c, k) = (d.join(CERT_FILE), d.join(KEY_FILE));
                    let created = !(c.exists() && k.exists());
                    if created {
                        std::fs::create_dir_all(&d)
                            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", d.display()))?;
                        let (cp, kp) = self_signed(cert_names(bind))?;
                        write_atomic(&k, kp.as_bytes(), true)
                            .and_then(|_| write_atomic(&c, cp.as_bytes(), false))
                            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", d.display()))?;
                    }
                    let (certs, key) = read_pem(&c, &k)?;
                    (certs, key, CertSource::SelfSigned { cert: c, created })
                }
                None => {
                    let (cp, kp) = self_signed(cert_names(bind))?;
                    let certs = CertificateDer::pem_slice_iter(cp.as_bytes())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| anyhow::anyhow!("self-signed certificate: {e}"))?;
                    let key = PrivateKeyDer::from_pem_slice(kp.as_bytes())
                        .map_err(|e| anyhow::anyhow!("self-signed key: {e}"))?;
                    (certs, key, CertSource::Ephemeral)
                }
            },
        };
        let fp = certs.first().map(|c| fingerprint(c)).unwrap_or_default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| anyhow::anyhow!("the certificate and key do not fit together: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        if let Some(path) = &opts.keylog {
            config.key_log = Arc::new(FileKeyLog::create(path)?);
        }
        Ok(TlsSetup {
            config: Arc::new(config),
            fingerprint: fp,
            source,
            also_plain: opts.also_plain,
            keylog: opts.keylog.clone(),
        })
    }

    /// One line for the start message.
    pub fn describe(&self) -> String {
        let from = match &self.source {
            CertSource::Given { cert } => format!("certificate {}", cert.display()),
            CertSource::SelfSigned {
                cert,
                created: true,
            } => {
                format!("self-signed certificate made now: {}", cert.display())
            }
            CertSource::SelfSigned {
                cert,
                created: false,
            } => {
                format!("self-signed certificate {}", cert.display())
            }
            CertSource::Ephemeral => {
                "self-signed certificate in memory (--no-store: a new one at every start)".into()
            }
        };
        let keylog = self
            .keylog
            .as_ref()
            .map(|k| format!("; session keys logged to {}", k.display()))
            .unwrap_or_default();
        let plain = if self.also_plain {
            "; plain HTTP also served on this port"
        } else {
            ""
        };
        format!(
            "TLS with {from}, SHA-256 fingerprint {}{keylog}{plain}",
            self.fingerprint
        )
    }
}

/// rustls [`rustls::KeyLog`] writing NSS key log lines (`LABEL <client_random> <secret>`, hex) to
/// a file, one `write` per line so a reader (Wireshark, `replay`) sees each line whole at once.
/// Ours rather than rustls' `KeyLogFile`: that one reads its path from `SSLKEYLOGFILE` only.
pub struct FileKeyLog {
    file: Mutex<std::fs::File>,
    path: PathBuf,
}

impl std::fmt::Debug for FileKeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileKeyLog({})", self.path.display())
    }
}

impl FileKeyLog {
    /// Open `path` for appending (created with mode 0600: it holds secrets).
    pub fn create(path: &Path) -> anyhow::Result<FileKeyLog> {
        let mut o = std::fs::OpenOptions::new();
        o.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            o.mode(0o600);
        }
        let file = o
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot open the key log {}: {e}", path.display()))?;
        Ok(FileKeyLog {
            file: Mutex::new(file),
            path: path.to_path_buf(),
        })
    }
}

/// `LABEL <hex client_random> <hex secret>\n`.
pub fn keylog_line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    let mut s =
        String::with_capacity(label.len() + 2 + 2 * (client_random.len() + secret.len()) + 1);
    s.push_str(label);
    for part in [client_random, secret] {
        s.push(' ');
        for b in part {
            s.push_str(&format!("{b:02x}"));
        }
    }
    s.push('\n');
    s
}

impl rustls::KeyLog for FileKeyLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = keylog_line(label, client_random, secret);
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::warn!("key log {}: {e}", self.path.display());
        }
    }

    fn will_log(&self, _label: &str) -> bool {
        true
    }
}

/// How a connection reached the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    #[default]
    Plain,
    Tls,
}

/// One `--json` line for a connection stopped by a [`TlsProblem`].
#[derive(Debug, Clone, Serialize)]
pub struct ProblemRecord {
    pub connection: u64,
    pub client: String,
    pub server: String,
    pub time: crate::time::Timestamp,
    pub transport: Transport,
    pub tls_problem: TlsProblem,
    /// The problem's text: what happened, what it means, what to change.
    pub explanation: String,
}

/// The `--text` line of a problem.
pub fn problem_text_line(p: &ProblemRecord) -> String {
    format!(
        "{} #{} {} TLS problem ({}): {}",
        p.time.to_clock_string(),
        p.connection,
        p.client,
        p.tls_problem.kind(),
        p.explanation
    )
}

/// What the first bytes of a connection are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FirstBytes {
    TlsHello,
    Sslv2Hello,
    /// Starts like an HTTP request line (a method token).
    Http,
    Other(Vec<u8>),
}

/// Classify from the bytes peeked so far; `None` while more are needed (`at_most` reached or
/// not). Pure, so it is unit-tested.
pub(crate) fn classify(first: &[u8], final_: bool) -> Option<FirstBytes> {
    match probe_client_hello(first) {
        Probe::Tls => return Some(FirstBytes::TlsHello),
        Probe::Sslv2Hello => return Some(FirstBytes::Sslv2Hello),
        Probe::NeedMore if !final_ => return None,
        Probe::NeedMore | Probe::NotTls => {}
    }
    // HTTP methods are tokens of letters; leading blank lines are tolerated by the decoder.
    let start = first
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(first.len());
    match first.get(start) {
        Some(b) if b.is_ascii_alphabetic() => Some(FirstBytes::Http),
        None => Some(FirstBytes::Http),
        Some(_) => Some(FirstBytes::Other(first.to_vec())),
    }
}

fn preview(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(16)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// Wait for the first bytes (peeked, not consumed). `None`: the client closed or sent nothing
/// in time, or the connection was evicted.
async fn peek_first(stream: &TcpStream, sh: &Shared, ticket: &mut Ticket) -> Option<FirstBytes> {
    let limits = &sh.opts.limits;
    let deadline = tokio::time::Instant::now() + limits.idle_timeout.min(limits.read_timeout);
    let mut buf = [0u8; 8];
    let mut last = 0;
    let mut stop = sh.stop.clone();
    loop {
        let n = tokio::select! {
            r = tokio::time::timeout_at(deadline, stream.peek(&mut buf)) => match r {
                Ok(Ok(n)) => n,
                _ => return None,
            },
            _ = ticket.evicted() => return None,
            _ = stop.wait_for(|s| *s) => return None,
        };
        if n == 0 {
            return None;
        }
        let got = buf.get(..n).unwrap_or_default();
        if let Some(c) = classify(got, n == buf.len()) {
            return Some(c);
        }
        if n == last {
            // The same few bytes: wait for more rather than spin (rare: a hello cut into tiny
            // segments). Past the deadline, decide on what came.
            if tokio::time::Instant::now() >= deadline {
                return classify(got, true);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        last = n;
    }
}

/// A bare connection record for a connection that never reached the handler.
fn bare_connection(id: u64, peer: SocketAddr, local: SocketAddr) -> Connection {
    Connection::opened(id, peer, local, Handshake::Complete, 1, now())
}

/// Report a connection stopped by `problem`: its row (TUI), its line, the diagnosis.
fn report_problem(
    sh: &Shared,
    mut c: Connection,
    transport: Transport,
    problem: TlsProblem,
    closed: CloseKind,
) {
    let explanation = problem.to_string();
    c.errors.push(ConnectionError::Tls(problem.clone()));
    c.closed = closed;
    c.last_seen = now();
    let rec = ProblemRecord {
        connection: c.id,
        client: c.client.clone(),
        server: c.server.clone(),
        time: c.first_seen,
        transport,
        tls_problem: problem,
        explanation,
    };
    sh.publish_problem(&rec);
    sh.publish_connection(&c);
    sh.diagnose(&c);
}

/// The 400 page for plain HTTP on the TLS port: nginx's words, so that a capture of it is named
/// by the TLS stage ([`crate::tls::is_plain_http_to_https_page`]) as nginx's is.
pub(crate) const PLAIN_ON_TLS_BODY: &str = "<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head>\
<body><h1>400 Bad Request</h1><p>The plain HTTP request was sent to HTTPS port: this alarm server speaks HTTPS (TLS). \
Set the device's alarm host protocol to HTTPS.</p></body></html>\n";

/// The 400 page for a TLS ClientHello on the plain port: the device cannot read it (it waits
/// for a TLS answer), but a capture or a `curl -v` shows it, and it is what plain servers do.
pub(crate) const TLS_ON_PLAIN_BODY: &str = "<html><head><title>400 HTTPS sent to a plain HTTP port</title></head>\
<body><h1>400 Bad Request</h1><p>The device uses HTTPS, this alarm server speaks HTTP: set the device's alarm host \
protocol to HTTP, or run alarmscope listen --tls.</p></body></html>\n";

fn answer_400(body: &str) -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nServer: alarmscope\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Close without a RST: stop sending, then read and drop what the client still sends for a
/// moment (closing with unread bytes would reset the connection, which can destroy an answer
/// just sent).
async fn close_gracefully(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut chunk = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(stream.read(&mut chunk).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Read the request head (at most 16 KiB, within the read timeout), answer the 400 and close
/// gracefully. Returns the request's method and path.
async fn refuse_plain(stream: &mut TcpStream, sh: &Shared) -> (String, String) {
    let mut head = Vec::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + sh.opts.limits.read_timeout;
    let mut chunk = [0u8; 4096];
    while head.len() < 16 * 1024 && memchr::memmem::find(&head, b"\r\n\r\n").is_none() {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            _ => break,
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let _ = req.parse(&head);
    let method = req.method.unwrap_or("?").to_string();
    let path = req.path.unwrap_or("?").to_string();
    if stream
        .write_all(answer_400(PLAIN_ON_TLS_BODY).as_bytes())
        .await
        .is_ok()
    {
        close_gracefully(stream).await;
    }
    (method, path)
}

/// A ClientHello on the plain port: read it, answer 400 in plain HTTP (what the plain listener
/// always did, now with words) and close gracefully.
async fn refuse_tls(stream: &mut TcpStream, sh: &Shared) {
    let mut chunk = [0u8; 4096];
    let _ = tokio::time::timeout(sh.opts.limits.read_timeout, stream.read(&mut chunk)).await;
    if stream
        .write_all(answer_400(TLS_ON_PLAIN_BODY).as_bytes())
        .await
        .is_ok()
    {
        close_gracefully(stream).await;
    }
}

/// What a failed handshake tells.
fn handshake_problem(e: &std::io::Error, step: HandshakeStep) -> (TlsProblem, CloseKind) {
    if let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match err {
            rustls::Error::AlertReceived(a) => (
                TlsProblem::ClientAlert {
                    alert: AlertDescription(u8::from(*a)),
                },
                CloseKind::Fin(Side::Client),
            ),
            rustls::Error::PeerIncompatible(_) => (
                TlsProblem::NoCommonParameters {
                    reason: err.to_string(),
                },
                CloseKind::Fin(Side::Server),
            ),
            other => (
                TlsProblem::HandshakeRefused {
                    reason: other.to_string(),
                },
                CloseKind::Fin(Side::Server),
            ),
        };
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionReset => (
            TlsProblem::ClosedDuringHandshake { step, reset: true },
            CloseKind::Rst(Side::Client),
        ),
        std::io::ErrorKind::UnexpectedEof => (
            TlsProblem::ClosedDuringHandshake { step, reset: false },
            CloseKind::Fin(Side::Client),
        ),
        _ => (
            TlsProblem::HandshakeRefused {
                reason: e.to_string(),
            },
            CloseKind::Fin(Side::Server),
        ),
    }
}

/// Serve one accepted connection: classify its first bytes, do the TLS handshake when it is
/// TLS and the listener speaks it, and hand the (plain or decrypted) stream to the handler.
pub(crate) async fn serve(stream: TcpStream, id: u64, peer: SocketAddr, sh: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(sh.local);
    let mut ticket = sh.evictor.wait(Waiting::Idle);
    let first = peek_first(&stream, &sh, &mut ticket).await;
    let evicted = ticket.leave();
    let tls = sh.tls.clone();
    let first = match first {
        Some(f) if !evicted => f,
        // Nothing came (or the connection was closed to make room): the handler reports it as
        // any connection without a request.
        _ => {
            let mut c = bare_connection(id, peer, local);
            if evicted {
                c.errors.push(ConnectionError::EvictedIdle);
            }
            c.closed = CloseKind::Fin(Side::Server);
            sh.publish_connection(&c);
            sh.diagnose(&c);
            return;
        }
    };
    match (tls, first) {
        (None, FirstBytes::TlsHello | FirstBytes::Sslv2Hello) => {
            let c = bare_connection(id, peer, local);
            let mut stream = stream;
            refuse_tls(&mut stream, &sh).await;
            report_problem(
                &sh,
                c,
                Transport::Plain,
                TlsProblem::TlsToPlainPort,
                CloseKind::Fin(Side::Server),
            );
        }
        (None, _) => conn::serve(stream, id, peer, local, Transport::Plain, sh).await,
        (Some(t), FirstBytes::Http) if t.also_plain => {
            conn::serve(stream, id, peer, local, Transport::Plain, sh).await
        }
        (Some(_), FirstBytes::Http) => {
            let c = bare_connection(id, peer, local);
            let mut stream = stream;
            let (method, path) = refuse_plain(&mut stream, &sh).await;
            report_problem(
                &sh,
                c,
                Transport::Plain,
                TlsProblem::PlainHttpToTlsPort { method, path },
                CloseKind::Fin(Side::Server),
            );
        }
        (Some(_), FirstBytes::Other(bytes)) => {
            let c = bare_connection(id, peer, local);
            let mut stream = stream;
            close_gracefully(&mut stream).await;
            report_problem(
                &sh,
                c,
                Transport::Plain,
                TlsProblem::NotTls {
                    preview: preview(&bytes),
                },
                CloseKind::Fin(Side::Server),
            );
        }
        (Some(_), FirstBytes::Sslv2Hello) => {
            let c = bare_connection(id, peer, local);
            let mut stream = stream;
            close_gracefully(&mut stream).await;
            report_problem(
                &sh,
                c,
                Transport::Tls,
                TlsProblem::Sslv2Hello,
                CloseKind::Fin(Side::Server),
            );
        }
        (Some(t), FirstBytes::TlsHello) => {
            let c = bare_connection(id, peer, local);
            // The handshake is a request head for the limits: evictable as a slow head, and
            // bounded by the read timeout.
            let mut ticket = sh.evictor.wait(Waiting::Head);
            let deadline = tokio::time::Instant::now() + sh.opts.limits.read_timeout;
            let mut step = HandshakeStep::ClientHello;
            let lazy =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
            let result = tokio::select! {
                r = tokio::time::timeout_at(deadline, async {
                    let start = lazy.await.map_err(|e| (e, HandshakeStep::ClientHello))?;
                    step = HandshakeStep::AfterServerHello;
                    start.into_stream(t.config.clone()).await.map_err(|e| (e, HandshakeStep::AfterServerHello))
                }) => Some(r),
                _ = ticket.evicted() => None,
            };
            let evicted = ticket.leave();
            let outcome = match result {
                Some(Ok(Ok(s))) if !evicted => Ok(s),
                Some(Ok(Ok(_))) | None => Err((
                    TlsProblem::EvictedDuringHandshake,
                    CloseKind::Fin(Side::Server),
                )),
                Some(Ok(Err((e, step)))) => Err(handshake_problem(&e, step)),
                Some(Err(_)) => Err((
                    TlsProblem::HandshakeTimeout { step },
                    CloseKind::Fin(Side::Server),
                )),
            };
            match outcome {
                Ok(s) => conn::serve(s, id, peer, local, Transport::Tls, sh).await,
                Err((p, closed)) => report_problem(&sh, c, Transport::Tls, p, closed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listener TUI shows a connection stopped by a TLS problem as a row with the problem's
    /// words (not a bare "no request").
    #[test]
    fn a_problem_is_a_tui_row_with_its_words() {
        use crate::tui::{App, Msg, Source, Theme};
        let mut c = bare_connection(
            1,
            "10.0.0.5:50000".parse().unwrap(),
            "10.0.0.1:8443".parse().unwrap(),
        );
        c.errors.push(ConnectionError::Tls(TlsProblem::ClientAlert {
            alert: AlertDescription::UNKNOWN_CA,
        }));
        let mut app = App::new(Source::Live("listen".into()), Theme { color: false });
        app.update(Msg::Feed(crate::tui::Feed::Upsert(vec![c])));
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(220, 20)).unwrap();
        term.draw(|f| crate::tui::render(f, &app)).unwrap();
        let buf = term.backend().buffer();
        let text: String = (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains("(TLS alert unknown_ca from the device"),
            "{text}"
        );
    }

    #[test]
    fn first_bytes() {
        // A TLS 1.2 record header holding a ClientHello.
        let hello = [0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00];
        assert_eq!(classify(&hello, false), Some(FirstBytes::TlsHello));
        assert_eq!(classify(&hello[..3], false), None);
        assert_eq!(classify(b"POST /a", false), Some(FirstBytes::Http));
        assert_eq!(classify(b"\r\nPOST", false), Some(FirstBytes::Http));
        assert_eq!(
            classify(&[0x00, 0x01, 0x02], true),
            Some(FirstBytes::Other(vec![0, 1, 2]))
        );
        // An SSLv2-format hello: length with the top bit, then type 1.
        assert_eq!(
            classify(&[0x80, 0x2e, 0x01], false),
            Some(FirstBytes::Sslv2Hello)
        );
        // A handshake record too short to be a hello is not TLS; 0x16 is not a method.
        assert!(matches!(
            classify(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01], false),
            Some(FirstBytes::Other(_))
        ));
    }

    #[test]
    fn keylog_lines_are_nss_format() {
        let line = keylog_line("CLIENT_RANDOM", &[0xab; 32], &[0x01, 0xff]);
        assert_eq!(line, format!("CLIENT_RANDOM {} 01ff\n", "ab".repeat(32)));
    }

    #[test]
    fn fingerprint_is_sha256_with_colons() {
        // SHA-256 of the empty string.
        assert_eq!(
            fingerprint(b"").replace(':', ""),
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        );
        assert_eq!(fingerprint(b"x").len(), 32 * 3 - 1);
    }

    #[test]
    fn rustls_errors_become_kinds() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA),
        );
        let (p, closed) = handshake_problem(&e, HandshakeStep::AfterServerHello);
        assert_eq!(
            p,
            TlsProblem::ClientAlert {
                alert: AlertDescription::UNKNOWN_CA
            }
        );
        assert_eq!(closed, CloseKind::Fin(Side::Client));
        // A device offering only TLS 1.0/1.1.
        let old = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered),
        );
        assert!(matches!(
            handshake_problem(&old, HandshakeStep::ClientHello).0,
            TlsProblem::NoCommonParameters { .. }
        ));
        let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert_eq!(
            handshake_problem(&eof, HandshakeStep::AfterServerHello).0,
            TlsProblem::ClosedDuringHandshake {
                step: HandshakeStep::AfterServerHello,
                reset: false
            }
        );
    }

    #[test]
    fn self_signed_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = TlsSetup::load(&TlsOptions::default(), Some(dir.path()), &bind).unwrap();
        assert!(matches!(
            a.source,
            CertSource::SelfSigned { created: true, .. }
        ));
        let b = TlsSetup::load(&TlsOptions::default(), Some(dir.path()), &bind).unwrap();
        assert!(matches!(
            b.source,
            CertSource::SelfSigned { created: false, .. }
        ));
        assert_eq!(a.fingerprint, b.fingerprint);
        // The same files serve as --cert/--key.
        let c = TlsSetup::load(
            &TlsOptions {
                cert: Some(dir.path().join(TLS_DIR).join(CERT_FILE)),
                key: Some(dir.path().join(TLS_DIR).join(KEY_FILE)),
                ..Default::default()
            },
            None,
            &bind,
        )
        .unwrap();
        assert_eq!(c.fingerprint, a.fingerprint);
        let only_cert = TlsOptions {
            cert: Some(dir.path().join(TLS_DIR).join(CERT_FILE)),
            ..Default::default()
        };
        assert!(TlsSetup::load(&only_cert, None, &bind).is_err());
    }
}
