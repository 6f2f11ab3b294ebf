//! Shell: what answers at a slot's address and port, seen from where doctor runs. A TCP connect,
//! then a plain-HTTP request and, when that gets no HTTP answer, an HTTPS one (any certificate:
//! only whether TLS is spoken matters), with `ureq`. The 401 challenge, if any, says which
//! credentials the server wants: a GET first (stores nothing), then an empty POST.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::check::Scheme;
use super::judge::{Probe, Unreachable};

fn host_part(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// All addresses `host` resolves to (empty when it does not).
pub fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    (h, port)
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default()
}

/// Whether `ip` is an address of this machine (binding to it works only then).
pub fn is_local(ip: std::net::IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The scheme of a 401's challenge ("Digest", "Basic").
fn challenge_of(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    resp.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .filter(|_| resp.status().as_u16() == 401)
        .map(|v| v.split_whitespace().next().unwrap_or(v).to_string())
}

/// A GET (stores nothing); when it is not challenged, an empty POST, since servers may check
/// credentials on POST only (the listener answers a GET 405 before any credential check). The
/// POST carries no event: a server may log it as an empty request.
fn get(agent: &ureq::Agent, url: &str) -> Result<Option<String>, ureq::Error> {
    match agent.get(url).call() {
        Ok(resp) => match challenge_of(&resp) {
            Some(c) => Ok(Some(c)),
            None => Ok(agent
                .post(url)
                .send_empty()
                .ok()
                .and_then(|r| challenge_of(&r))),
        },
        Err(e) => Err(e),
    }
}

/// Probe `host:port` and `path` as a device would reach it.
pub fn probe(host: &str, port: u16, path: &str, timeout: Duration) -> Probe {
    let addrs = resolve(host, port);
    let Some(first) = addrs.first() else {
        return Probe::unreachable(Unreachable::NoResolve {
            host: host.to_string(),
        });
    };
    if let Err(e) = TcpStream::connect_timeout(first, timeout) {
        let detail = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Unreachable::Refused,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                Unreachable::NoAnswer {
                    secs: timeout.as_secs(),
                }
            }
            kind => Unreachable::Io {
                kind,
                message: e.to_string(),
            },
        };
        return Probe::unreachable(detail);
    }
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(true)
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .user_agent("alarmscope-doctor")
        .tls_config(tls)
        .build()
        .into();
    let path = if path.starts_with('/') { path } else { "/" };
    let hp = host_part(host);
    let plain = get(&agent, &format!("http://{hp}:{port}{path}"));
    match plain {
        Ok(challenge) => Probe {
            connect: Ok(()),
            speaks: Some(Scheme::Http),
            detail: String::new(),
            challenge,
        },
        Err(plain_err) => match get(&agent, &format!("https://{hp}:{port}{path}")) {
            Ok(challenge) => Probe {
                connect: Ok(()),
                speaks: Some(Scheme::Https),
                detail: String::new(),
                challenge,
            },
            Err(tls_err) => Probe {
                connect: Ok(()),
                speaks: None,
                detail: format!("HTTP: {plain_err}; TLS: {tls_err}"),
                challenge: None,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn tells_http_from_nothing_and_reads_the_challenge() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // Like the listener: GET refused before any credential check, POST challenged.
        let t = std::thread::spawn(move || {
            // The bare connect, the GET, the POST.
            for _ in 0..3 {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                let answer: &[u8] = if buf[..n].starts_with(b"POST") {
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"x\", nonce=\"n\", qop=\"auth\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                } else {
                    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = s.write_all(answer);
            }
        });
        let p = probe("127.0.0.1", port, "/alarm", Duration::from_secs(3));
        t.join().unwrap();
        assert_eq!(p.connect, Ok(()));
        assert_eq!(p.speaks, Some(Scheme::Http));
        assert_eq!(p.challenge.as_deref(), Some("Digest"));
        // A port nobody listens on.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let p = probe("127.0.0.1", port, "/", Duration::from_secs(2));
        assert_eq!(p.connect, Err(Unreachable::Refused));
    }

    #[test]
    fn local_addresses() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(!is_local("192.0.2.77".parse().unwrap()));
    }
}
