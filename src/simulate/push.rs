//! Socket shell of the simulator: one push attempt on a new TCP connection, from a chosen source
//! address, waiting for the answer up to a timeout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout_at, Instant};

use super::machine::Outcome;

/// Where pushes go: parsed `--to http[s]://HOST:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushUrl {
    pub host: String,
    pub port: u16,
    pub path: String,
    /// `https://`: pushes go over TLS (a slot whose protocolType is HTTPS).
    pub https: bool,
}

/// Why a push URL (`--to`, or a device's HTTP host slot) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushUrlError {
    #[error("unclosed [ in address")]
    UnclosedBracket,
    #[error("bad port {0:?}")]
    BadPort(String),
    #[error("no host in {0:?}")]
    NoHost(String),
}

/// Why the device's TLS client side could not be set up (`--ca`, `--tls-version`).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {error}")]
    ReadCa {
        path: String,
        error: rustls::pki_types::pem::Error,
    },
    #[error("no PEM certificate in {path}")]
    NoCertificate { path: String },
    #[error("TLS setup: {0}")]
    Versions(rustls::Error),
    #[error("--ca: unusable certificate: {0}")]
    Unusable(rustls::Error),
}

impl PushUrl {
    /// Parse `http[s]://HOST[:PORT][/PATH]` (HOST may be `[v6]`; no scheme means http; default
    /// ports 80 and 443).
    pub fn parse(url: &str) -> Result<PushUrl, PushUrlError> {
        let (rest, https) = if let Some(r) = url.strip_prefix("http://") {
            (r, false)
        } else if let Some(r) = url.strip_prefix("https://") {
            (r, true)
        } else {
            (url, false)
        };
        let default_port = if https { 443 } else { 80 };
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("/")),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(PushUrlError::UnclosedBracket)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p
                    .parse()
                    .map_err(|_| PushUrlError::BadPort(p.to_string()))?,
                None => default_port,
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse()
                        .map_err(|_| PushUrlError::BadPort(p.to_string()))?,
                ),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(PushUrlError::NoHost(url.to_string()));
        }
        Ok(PushUrl {
            host,
            port,
            path: path.to_string(),
            https,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Source address for device `index` pushing to `target`: its own 127.0.0.x when the target is
/// IPv4 loopback (Linux routes all of 127/8 to lo), otherwise None (the OS default).
pub fn source_for(target: IpAddr, index: u32) -> Option<IpAddr> {
    match target {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let n = 2 + (index % 250);
            Some(IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                u8::try_from(n).unwrap_or(2),
            )))
        }
        _ => None,
    }
}

/// The local address the OS would use towards `target` (a UDP "connect" sends nothing).
pub fn local_ip_towards(target: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let s = std::net::UdpSocket::bind(bind).ok()?;
    s.connect(target).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

async fn connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))?;
    }
    sock.connect(target).await
}

/// What the server has sent so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerHead {
    /// Not a complete response head yet.
    Partial,
    /// A complete head with this status code.
    Status(u16),
    /// Not HTTP.
    Garbage,
}

/// Parse the answer head out of what the server sent so far.
pub fn answer_status(buf: &[u8]) -> AnswerHead {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => resp
            .code
            .map(AnswerHead::Status)
            .unwrap_or(AnswerHead::Garbage),
        Ok(httparse::Status::Partial) => AnswerHead::Partial,
        Err(_) => AnswerHead::Garbage,
    }
}

/// The `WWW-Authenticate` value of a complete answer head, if any.
pub fn www_authenticate(buf: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(buf).ok()?;
    resp.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("www-authenticate"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
}

/// One attempt: new connection, send `request`, wait for the answer head until `timeout` after
/// the start. The connection is closed afterwards, as most devices do.
pub async fn attempt(
    target: SocketAddr,
    source: Option<IpAddr>,
    request: &[u8],
    timeout: Duration,
) -> Outcome {
    exchange(target, source, request, timeout).await.0
}

/// [`attempt`], also returning the answer's `WWW-Authenticate` challenge.
async fn exchange(
    target: SocketAddr,
    source: Option<IpAddr>,
    request: &[u8],
    timeout: Duration,
) -> (Outcome, Option<String>) {
    let deadline = Instant::now() + timeout;
    let mut stream = match timeout_at(deadline, connect(target, source)).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) | Err(_) => return (Outcome::ConnectFailed, None),
    };
    let _ = stream.set_nodelay(true);
    match timeout_at(deadline, stream.write_all(request)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return (Outcome::Closed, None),
        Err(_) => return (Outcome::Timeout, None),
    }
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return (Outcome::Timeout, None),
            Ok(Err(_)) | Ok(Ok(0)) => return answer_at_close(&buf),
            Ok(Ok(n)) => {
                if let Some(done) = answer_so_far(&mut buf, chunk.get(..n).unwrap_or_default()) {
                    return done;
                }
            }
        }
    }
}

/// Add what the server sent to `buf`; the attempt's result once the answer head is complete or
/// cannot be one (not HTTP, or larger than 64 KiB).
fn answer_so_far(buf: &mut Vec<u8>, data: &[u8]) -> Option<(Outcome, Option<String>)> {
    buf.extend_from_slice(data);
    match answer_status(buf) {
        AnswerHead::Status(code) => Some((Outcome::Answered(code), www_authenticate(buf))),
        AnswerHead::Partial if buf.len() < 65_536 => None,
        _ => Some((Outcome::Closed, None)),
    }
}

/// The server closed or reset: a complete status line before that still counts.
fn answer_at_close(buf: &[u8]) -> (Outcome, Option<String>) {
    match answer_status(buf) {
        AnswerHead::Status(code) => (Outcome::Answered(code), www_authenticate(buf)),
        _ => (Outcome::Closed, None),
    }
}

/// A server certificate verifier that accepts any certificate. Devices pushing to an HTTPS alarm
/// host commonly accept self-signed certificates; the simulator only needs the handshake and
/// the request to happen as a device's would. Signatures are still checked with the provider's
/// algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Which TLS versions the simulated device offers (`--tls-version`): many cameras only do 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsVersion {
    /// TLS 1.2 only.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    Tls13,
}

/// How the simulated device decides to trust the server's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Any certificate (`--insecure`; also what many devices do).
    AnyCertificate,
    /// Only certificates issued by these (`--ca FILE`, PEM).
    Roots(Vec<rustls::pki_types::CertificateDer<'static>>),
}

impl Trust {
    /// Read `--ca FILE` (PEM, one or more certificates).
    pub fn from_ca_file(path: &std::path::Path) -> Result<Trust, TlsSetupError> {
        use rustls::pki_types::pem::PemObject as _;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|error| TlsSetupError::ReadCa {
                path: path.display().to_string(),
                error,
            })?;
        if certs.is_empty() {
            return Err(TlsSetupError::NoCertificate {
                path: path.display().to_string(),
            });
        }
        Ok(Trust::Roots(certs))
    }
}

/// The device's TLS client side, built once (certificates parsed, versions chosen) and shared by
/// every attempt.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config)
    }
}

impl Eq for TlsClient {}

impl TlsClient {
    /// A client trusting as `trust` says, offering `version` only (both when `None`).
    pub fn new(trust: Trust, version: Option<TlsVersion>) -> Result<TlsClient, TlsSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match version {
            Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
            Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
            None => rustls::DEFAULT_VERSIONS,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(TlsSetupError::Versions)?;
        let mut config = match trust {
            Trust::AnyCertificate => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth(),
            Trust::Roots(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certs {
                    roots.add(c).map_err(TlsSetupError::Unusable)?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        // Devices offer no ALPN or only http/1.1; the listener is happy either way.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClient {
            config: Arc::new(config),
        })
    }
}

/// [`exchange`] over TLS, for a slot whose `protocolType` is HTTPS: the TCP connection is opened
/// the same way, then rustls (blocking, on the blocking pool) does the handshake and carries the
/// request. Against a plain-HTTP server the handshake fails and the attempt ends `Closed`, as a
/// device's does.
async fn exchange_tls(
    target: SocketAddr,
    source: Option<IpAddr>,
    client: &TlsClient,
    host: &str,
    request: &[u8],
    timeout: Duration,
) -> (Outcome, Option<String>) {
    let deadline = Instant::now() + timeout;
    let stream = match timeout_at(deadline, connect(target, source)).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) | Err(_) => return (Outcome::ConnectFailed, None),
    };
    let Ok(sock) = stream.into_std() else {
        return (Outcome::Closed, None);
    };
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    if sock.set_nonblocking(false).is_err()
        || sock.set_read_timeout(Some(left)).is_err()
        || sock.set_write_timeout(Some(left)).is_err()
    {
        return (Outcome::Closed, None);
    }
    let _ = sock.set_nodelay(true);
    let (host, request) = (host.to_string(), request.to_vec());
    let end = std::time::Instant::now() + left;
    let config = client.config.clone();
    tokio::task::spawn_blocking(move || tls_blocking(sock, config, &host, &request, end))
        .await
        .unwrap_or((Outcome::Closed, None))
}

fn tls_blocking(
    mut sock: std::net::TcpStream,
    config: Arc<rustls::ClientConfig>,
    host: &str,
    request: &[u8],
    end: std::time::Instant,
) -> (Outcome, Option<String>) {
    use std::io::{Read, Write};
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| rustls::pki_types::ServerName::from(Ipv4Addr::LOCALHOST));
    let Ok(mut conn) = rustls::ClientConnection::new(config, name) else {
        return (Outcome::Closed, None);
    };
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    let timed_out = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) || std::time::Instant::now() >= end
    };
    if let Err(e) = tls.write_all(request).and_then(|_| tls.flush()) {
        return if timed_out(&e) {
            (Outcome::Timeout, None)
        } else {
            (Outcome::Closed, None)
        };
    }
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => return answer_at_close(&buf),
            Ok(n) => {
                if let Some(done) = answer_so_far(&mut buf, chunk.get(..n).unwrap_or_default()) {
                    return done;
                }
            }
            Err(e) if timed_out(&e) => return (Outcome::Timeout, None),
            // A TLS alert or bytes that are not TLS (a plain-HTTP server's answer).
            Err(_) => return (Outcome::Closed, None),
        }
    }
}

/// Plain HTTP, or TLS with the server name to present (a slot set to HTTPS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `protocolType` HTTP.
    Plain,
    /// `protocolType` HTTPS, presenting `server_name` (the slot's address) in the handshake,
    /// trusting and offering versions as `client` says.
    Tls {
        server_name: String,
        client: TlsClient,
    },
}

async fn exchange_over(
    transport: &Transport,
    target: SocketAddr,
    source: Option<IpAddr>,
    request: &[u8],
    timeout: Duration,
) -> (Outcome, Option<String>) {
    match transport {
        Transport::Plain => exchange(target, source, request, timeout).await,
        Transport::Tls {
            server_name,
            client,
        } => exchange_tls(target, source, client, server_name, request, timeout).await,
    }
}

/// How pushes authenticate to the alarm server: the host slot's `httpAuthenticationMethod` with
/// its `userName` and `password`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAuth {
    /// `none`: no `Authorization` header.
    None,
    /// `basic` (also `base64`): `Authorization: Basic` on every push.
    Basic { user: String, password: String },
    /// `MD5digest`: push, and on a 401 digest challenge push again with the answer.
    Digest { user: String, password: String },
}

impl PushAuth {
    /// From a slot's `httpAuthenticationMethod` (case-insensitive; unknown methods send none).
    pub fn from_slot(method: &str, user: &str, password: &str) -> PushAuth {
        let (user, password) = (user.to_string(), password.to_string());
        match method.to_ascii_lowercase().as_str() {
            "md5digest" | "digest" => PushAuth::Digest { user, password },
            "basic" | "base64" => PushAuth::Basic { user, password },
            _ => PushAuth::None,
        }
    }
}

/// `Basic` credentials header value.
pub fn basic_value(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// One push with the slot's authentication: `build` makes the request with or without an
/// `Authorization` value; a digest slot answers a 401 challenge once, on a new connection, and
/// the outcome is that second answer (a device that is refused again gives up the attempt).
pub async fn attempt_auth(
    target: SocketAddr,
    source: Option<IpAddr>,
    transport: &Transport,
    uri: &str,
    build: &(dyn Fn(Option<&str>) -> Vec<u8> + Sync),
    auth: &PushAuth,
    timeout: Duration,
) -> Outcome {
    let once = |a: Option<String>| {
        let req = build(a.as_deref());
        async move { exchange_over(transport, target, source, &req, timeout).await }
    };
    match auth {
        PushAuth::None => once(None).await.0,
        PushAuth::Basic { user, password } => once(Some(basic_value(user, password))).await.0,
        PushAuth::Digest { user, password } => {
            let (o, www) = once(None).await;
            let Some(www) = www.filter(|_| o == Outcome::Answered(401)) else {
                return o;
            };
            let Ok(mut prompt) = digest_auth::WwwAuthenticateHeader::parse(&www) else {
                return o;
            };
            let ctx = digest_auth::AuthContext::new_with_method(
                user.as_str(),
                password.as_str(),
                uri,
                None::<&[u8]>,
                digest_auth::HttpMethod::POST,
            );
            match prompt.respond(&ctx) {
                Ok(h) => once(Some(h.to_string())).await.0,
                Err(_) => o,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_push_urls() {
        let table: [(&str, Result<PushUrl, PushUrlError>); 8] = [
            (
                "http://127.0.0.1:8080/alarm",
                Ok(PushUrl {
                    host: "127.0.0.1".into(),
                    port: 8080,
                    path: "/alarm".into(),
                    https: false,
                }),
            ),
            (
                "http://server",
                Ok(PushUrl {
                    host: "server".into(),
                    port: 80,
                    path: "/".into(),
                    https: false,
                }),
            ),
            (
                "10.1.2.3:81",
                Ok(PushUrl {
                    host: "10.1.2.3".into(),
                    port: 81,
                    path: "/".into(),
                    https: false,
                }),
            ),
            (
                "http://[::1]:9000/x/y",
                Ok(PushUrl {
                    host: "::1".into(),
                    port: 9000,
                    path: "/x/y".into(),
                    https: false,
                }),
            ),
            (
                "https://a/b",
                Ok(PushUrl {
                    host: "a".into(),
                    port: 443,
                    path: "/b".into(),
                    https: true,
                }),
            ),
            (
                "http://a:notaport/",
                Err(PushUrlError::BadPort("notaport".into())),
            ),
            ("http://[::1/", Err(PushUrlError::UnclosedBracket)),
            (
                "https://:8443/",
                Err(PushUrlError::NoHost("https://:8443/".into())),
            ),
        ];
        for (s, want) in table {
            assert_eq!(PushUrl::parse(s), want, "{s}");
        }
        assert_eq!(
            PushUrl::parse("http://[::1]:9000/").unwrap().host_header(),
            "[::1]:9000"
        );
    }

    #[test]
    fn sources_on_loopback_only() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(source_for(lo, 0), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(source_for(lo, 9), Some("127.0.0.11".parse().unwrap()));
        assert_eq!(source_for(lo, 250), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(source_for("192.0.2.1".parse().unwrap(), 0), None);
        assert_eq!(source_for("::1".parse().unwrap(), 0), None);
    }

    #[test]
    fn status_from_partial_answers() {
        assert_eq!(answer_status(b"HTTP/1.1 200 OK\r\n"), AnswerHead::Partial);
        assert_eq!(
            answer_status(b"HTTP/1.1 200 OK\r\nDate: x\r\n\r\n"),
            AnswerHead::Status(200)
        );
        assert_eq!(
            answer_status(b"HTTP/1.0 503 Busy\r\n\r\n"),
            AnswerHead::Status(503)
        );
        assert_eq!(answer_status(b"garbage\r\n\r\n"), AnswerHead::Garbage);
    }

    #[tokio::test]
    async fn attempt_outcomes_against_local_servers() {
        use tokio::net::TcpListener;
        // 200 answer.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (mut s, peer) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            peer.ip()
        });
        let src = source_for(addr.ip(), 3);
        let o = attempt(
            addr,
            src,
            b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(o, Outcome::Answered(200));
        assert_eq!(srv.await.unwrap(), "127.0.0.5".parse::<IpAddr>().unwrap());
        // Silent server: timeout.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_millis(600)).await;
            drop(s);
        });
        let t0 = Instant::now();
        let o = attempt(
            addr,
            None,
            b"POST / HTTP/1.1\r\n\r\n",
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(o, Outcome::Timeout);
        assert!(t0.elapsed() >= Duration::from_millis(300));
        hold.await.unwrap();
        // Closing server: closed without answer.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 64];
            let _ = s.read(&mut b).await;
        });
        let o = attempt(
            addr,
            None,
            b"POST / HTTP/1.1\r\n\r\n",
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(o, Outcome::Closed);
        // Nobody listening: connect failed.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert_eq!(
            attempt(addr, None, b"x", Duration::from_secs(1)).await,
            Outcome::ConnectFailed
        );
    }

    #[tokio::test]
    async fn https_slot_sends_a_tls_handshake() {
        use tokio::net::TcpListener;
        // A plain HTTP server: it reads the first bytes, answers 400 and closes, as the listener
        // does when a request does not begin with a start line.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 512];
            let n = s.read(&mut b).await.unwrap();
            s.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
            b[..n].to_vec()
        });
        let tls = Transport::Tls {
            server_name: "127.0.0.1".into(),
            client: TlsClient::new(Trust::AnyCertificate, None).unwrap(),
        };
        let build = |_: Option<&str>| b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n".to_vec();
        let o = attempt_auth(
            addr,
            None,
            &tls,
            "/",
            &build,
            &PushAuth::None,
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(
            o,
            Outcome::Closed,
            "a TLS client cannot read a plain answer"
        );
        let first = srv.await.unwrap();
        // A TLS record of type handshake (22), version 3.x, carrying a ClientHello (1).
        assert_eq!(first[0], 0x16);
        assert_eq!(first[1], 3);
        assert_eq!(first[5], 1);
        // The same push in plain HTTP is read as one.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 512];
            let n = s.read(&mut b).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            b[..n].to_vec()
        });
        let o = attempt_auth(
            addr,
            None,
            &Transport::Plain,
            "/",
            &build,
            &PushAuth::None,
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(o, Outcome::Answered(200));
        assert!(srv.await.unwrap().starts_with(b"POST / HTTP/1.1"));
    }

    #[tokio::test]
    async fn digest_slot_answers_the_challenge_on_a_new_connection() {
        use tokio::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in [
                &b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"r\", qop=\"auth\", nonce=\"n1\"\r\nContent-Length: 0\r\n\r\n"[..],
                &b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"[..],
            ] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 1024];
                let n = s.read(&mut b).await.unwrap();
                s.write_all(answer).await.unwrap();
                seen.push(String::from_utf8_lossy(&b[..n]).into_owned());
            }
            seen
        });
        let build = |a: Option<&str>| {
            let h = a
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            format!("POST /alarm HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n").into_bytes()
        };
        let auth = PushAuth::from_slot("MD5digest", "u", "p");
        let o = attempt_auth(
            addr,
            None,
            &Transport::Plain,
            "/alarm",
            &build,
            &auth,
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(o, Outcome::Answered(200));
        let seen = srv.await.unwrap();
        assert!(!seen[0].contains("Authorization"));
        let hdr = seen[1]
            .lines()
            .find_map(|l| l.strip_prefix("Authorization: "))
            .unwrap();
        let parsed = digest_auth::AuthorizationHeader::parse(hdr).unwrap();
        assert_eq!(
            (
                parsed.username.as_str(),
                parsed.nonce.as_str(),
                parsed.uri.as_str()
            ),
            ("u", "n1", "/alarm")
        );
        assert_eq!(basic_value("u", "p"), "Basic dTpw");
    }
}
