//! TLS stage: what an HTTPS push shows without keys.
//!
//! A device whose alarm host slot is set to HTTPS wraps its POST in TLS; without this stage
//! such a connection is invisible. [`TlsConnection`] is fed a TCP connection's in-order bytes
//! and gaps exactly as the HTTP decoders are (`data(dir, ts, bytes)`, `gap(dir, ts, n)`,
//! `close(ts, how)`), with records split at any TCP boundary, and reports:
//! - [`TlsInfo`]: versions offered and chosen, SNI, ALPN, cipher suite, the server certificate
//!   where readable (TLS <= 1.2), every alert and who sent it, whether the handshake completed,
//!   application-data records per direction, non-TLS bytes and gap bytes;
//! - [`TlsFinding`]s: HTTPS sent to a plain HTTP server, handshake failures by alert or close,
//!   gaps and garbage (located, with how the record stream was resynchronised);
//! - [`TlsExchange`]s inferred from record timing (status unknown, marked encrypted).
//!
//! The probes let the pipeline choose HTTP or TLS per connection from the client's first bytes
//! ([`probe_client_hello`]), and name a TLS server answering a plain HTTP request
//! ([`probe_answer_to_plain_http`], [`is_plain_http_to_https_page`]).
//!
//! Parsing of handshake messages and certificates is done by the rusticata crates `tls-parser`
//! and `x509-parser` (fuzzed upstream); the record framing, reassembly and resync are ours
//! because they must stream with bounded memory. Sans-IO: no sockets, files or clocks.

mod conn;
pub mod decrypt;
mod exchange;
mod finding;
pub mod keylog;
pub mod served;
mod types;
mod wire;

pub use conn::{TlsConfig, TlsConnection, TlsReport, MAX_RECORD_LEN};
pub use decrypt::{
    DecryptConfig, DecryptEvent, DecryptFinding, DecryptReport, DecryptStatus, TlsDecryptor,
};
pub use exchange::{TlsExchange, TlsResponse, Uncertainty};
pub use finding::{HandshakeStage, NonTlsAnswer, TlsEvidence, TlsFinding};
pub use keylog::{KeyLog, KeyLookup, SharedKeys};
pub use types::{
    Alert, AlertDescription, AlertLevel, AppDataStats, CertificateInfo, CertificateProblem,
    CertificateView, CipherSuite, ClientHelloInfo, HandshakeState, PerDirection, ProtocolVersion,
    ServerHelloInfo, TlsInfo,
};

/// Answer of a probe on the first bytes of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The bytes so far fit; more are needed to be sure.
    NeedMore,
    /// It is TLS.
    Tls,
    /// An SSL 2.0-format ClientHello (very old clients): TLS-ish, not analysed by this stage.
    Sslv2Hello,
    /// It is not TLS.
    NotTls,
}

/// Does a client stream that begins with `first` carry TLS? True for a handshake record
/// (`16 03 0x`, plausible length) holding a ClientHello (`01`). Looks at six bytes at most;
/// `NeedMore` while fewer than six have come and they fit. This is what the pipeline uses to
/// send a connection to the TLS stage instead of the HTTP decoders.
pub fn probe_client_hello(first: &[u8]) -> Probe {
    if let Some(&b0) = first.first() {
        // SSLv2 record: 2-byte length with the top bit set, then msg type 1 (client hello).
        if b0 & 0x80 != 0 {
            return match first.get(2) {
                None => Probe::NeedMore,
                Some(1) => Probe::Sslv2Hello,
                Some(_) => Probe::NotTls,
            };
        }
    }
    let checks: [&dyn Fn(u8) -> bool; 6] = [
        &|b| b == 0x16,
        &|b| b == 3,
        &|b| b <= 4,
        &|_| true,
        &|_| true,
        &|b| b == 1,
    ];
    for (i, check) in checks.iter().enumerate() {
        let Some(&b) = first.get(i) else {
            return Probe::NeedMore;
        };
        if !check(b) {
            return Probe::NotTls;
        }
        if i == 4 {
            let len = u16::from_be_bytes([first[3], first[4]]);
            // A ClientHello is at least 4 + 38 bytes.
            if !(42..=MAX_RECORD_LEN).contains(&len) {
                return Probe::NotTls;
            }
        }
    }
    Probe::Tls
}

/// Did a server answer a plain HTTP request as a TLS server? `first` is the start of what it
/// sent back. `Some` for an alert or handshake record (the alert's description when its two
/// bytes are there), `None` when the bytes are not a TLS record (or too few to say).
pub fn probe_answer_to_plain_http(first: &[u8]) -> Option<TlsEvidence> {
    let h: [u8; 5] = first.get(..5)?.try_into().ok()?;
    let len = u16::from_be_bytes([h[3], h[4]]);
    if h[1] != 3 || h[2] > 4 || len == 0 || len > MAX_RECORD_LEN {
        return None;
    }
    match h[0] {
        0x15 => Some(TlsEvidence::Alert {
            description: (len == 2)
                .then(|| first.get(6).map(|&d| AlertDescription(d)))
                .flatten(),
        }),
        0x16 => Some(TlsEvidence::HandshakeRecord),
        _ => None,
    }
}

/// The text nginx puts in the 400 page it sends when plain HTTP reaches a TLS port.
const NGINX_PLAIN_HTTP: &[u8] = b"The plain HTTP request was sent to HTTPS port";

/// Is this response body (its first bytes: the text sits in the first ~150 bytes) nginx's
/// "The plain HTTP request was sent to HTTPS port" page? Lets the pipeline turn such a 400
/// into [`TlsFinding::PlainHttpToTlsServer`].
pub fn is_plain_http_to_https_page(body_prefix: &[u8]) -> bool {
    memchr::memmem::find(body_prefix, NGINX_PLAIN_HTTP).is_some()
}

/// How the server of a plain HTTP connection showed that it speaks TLS, if it did: what it
/// sent first (`answer_prefix`: a TLS record, or nginx's page), or, when it sent nothing and
/// closed the connection itself, that the same server address completes TLS handshakes
/// elsewhere in the capture (`port_speaks_tls`, which only the caller can know). The pipeline
/// turns `Some` into [`TlsFinding::PlainHttpToTlsServer`].
pub fn evidence_against_plain_http(
    answer_prefix: &[u8],
    closed: crate::tcp::CloseKind,
    port_speaks_tls: bool,
) -> Option<TlsEvidence> {
    use crate::tcp::{CloseKind, Side};
    if let Some(e) = probe_answer_to_plain_http(answer_prefix) {
        return Some(e);
    }
    if is_plain_http_to_https_page(answer_prefix) {
        return Some(TlsEvidence::PlainHttpToHttpsPage);
    }
    let server_closed = matches!(
        closed,
        CloseKind::Fin(Side::Server) | CloseKind::Rst(Side::Server)
    );
    (answer_prefix.is_empty() && server_closed && port_speaks_tls)
        .then_some(TlsEvidence::ClosedOnTlsPort)
}

#[cfg(test)]
mod tests;

/// A list of findings as JSON objects: each finding's own fields plus `problem` (whether it
/// explains lost events) and `text` (its `Display`), so a script needs no copy of the rules.
pub(crate) fn serialize_judged<S: serde::Serializer, F: serde::Serialize + std::fmt::Display>(
    findings: &[F],
    is_problem: fn(&F) -> bool,
    ser: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    #[derive(serde::Serialize)]
    struct Entry<'a, F> {
        #[serde(flatten)]
        finding: &'a F,
        problem: bool,
        text: String,
    }
    let mut seq = ser.serialize_seq(Some(findings.len()))?;
    for f in findings {
        seq.serialize_element(&Entry {
            finding: f,
            problem: is_problem(f),
            text: f.to_string(),
        })?;
    }
    seq.end()
}
