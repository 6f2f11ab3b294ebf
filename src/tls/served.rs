//! Why a connection to `listen --tls` (or a TLS hello on the plain listener) ended before a
//! request: kept here, beside the TLS analysis, so that a connection's typed errors
//! (`model::ConnectionError`) can carry it without the model depending on the listener.

use serde::Serialize;

use super::AlertDescription;
use crate::tcp::Side;

/// Where a TLS handshake stopped when the device closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeStep {
    /// Before its ClientHello was complete.
    ClientHello,
    /// After the listener's answer (ServerHello, certificate): devices that reject the
    /// certificate often just close here.
    AfterServerHello,
}

/// Why a connection ended before the connection handler saw a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TlsProblem {
    /// The device sent a TLS alert during the handshake (`unknown_ca`: it does not trust the
    /// certificate).
    ClientAlert { alert: AlertDescription },
    /// The device closed (`reset`: with a RST) during the handshake.
    ClosedDuringHandshake { step: HandshakeStep, reset: bool },
    /// The handshake did not finish within `--read-timeout`.
    HandshakeTimeout { step: HandshakeStep },
    /// Closed by the listener to make room at `--max-connections` while its handshake was
    /// incomplete (as a slow request head would be).
    EvictedDuringHandshake,
    /// The device and the listener share no TLS version, cipher suite or other parameter (a
    /// device offering only TLS 1.0/1.1, for one); `reason`: what rustls said.
    NoCommonParameters { reason: String },
    /// rustls refused the handshake for another reason: a malformed or unexpected message
    /// (`reason`: what rustls said).
    HandshakeRefused { reason: String },
    /// An SSL 2.0-format hello: a client too old for any TLS this listener speaks.
    Sslv2Hello,
    /// A TLS ClientHello on the plain-HTTP listener (answered 400 with a page saying so).
    TlsToPlainPort,
    /// A plain HTTP request on the TLS port (answered 400, as nginx does).
    PlainHttpToTlsPort { method: String, path: String },
    /// First bytes that are neither TLS nor HTTP on the TLS port (`preview`: printable form).
    NotTls { preview: String },
}

impl TlsProblem {
    /// The kind as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            TlsProblem::ClientAlert { .. } => "client_alert",
            TlsProblem::ClosedDuringHandshake { .. } => "closed_during_handshake",
            TlsProblem::HandshakeTimeout { .. } => "handshake_timeout",
            TlsProblem::EvictedDuringHandshake => "evicted_during_handshake",
            TlsProblem::NoCommonParameters { .. } => "no_common_parameters",
            TlsProblem::HandshakeRefused { .. } => "handshake_refused",
            TlsProblem::Sslv2Hello => "sslv2_hello",
            TlsProblem::TlsToPlainPort => "tls_to_plain_port",
            TlsProblem::PlainHttpToTlsPort { .. } => "plain_http_to_tls_port",
            TlsProblem::NotTls { .. } => "not_tls",
        }
    }
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsProblem::ClientAlert { alert } => write!(
                f,
                "TLS alert {alert} from the device, handshake failed: {}",
                alert.meaning(Side::Client)
            )?,
            TlsProblem::ClosedDuringHandshake { step, reset } => {
                let how = if *reset { "reset" } else { "closed" };
                match step {
                    HandshakeStep::ClientHello => write!(
                        f,
                        "TLS handshake failed: the device {how} the connection before its hello was complete"
                    )?,
                    HandshakeStep::AfterServerHello => write!(
                        f,
                        "TLS handshake failed: the device {how} the connection after receiving the listener's certificate, \
                         without an alert (devices often do that when they do not trust the certificate: \
                         import it on the device or give the listener one the device trusts with --cert/--key)"
                    )?,
                }
            }
            TlsProblem::HandshakeTimeout { step } => write!(
                f,
                "TLS handshake not finished within the read timeout ({})",
                match step {
                    HandshakeStep::ClientHello => "the device's hello never completed",
                    HandshakeStep::AfterServerHello => {
                        "the device did not answer the listener's hello and certificate"
                    }
                }
            )?,
            TlsProblem::EvictedDuringHandshake => f.write_str(
                "TLS handshake incomplete when the connection was closed to make room (max connections)",
            )?,
            TlsProblem::NoCommonParameters { reason } => write!(
                f,
                "TLS handshake refused: the device offers no TLS version or cipher suite the listener accepts \
                 ({reason}); the listener speaks TLS 1.2 and 1.3 only (rustls): update the device's firmware or use HTTP"
            )?,
            TlsProblem::HandshakeRefused { reason } => write!(
                f,
                "TLS handshake refused by the listener: the device sent something it could not accept ({reason})"
            )?,
            TlsProblem::Sslv2Hello => f.write_str(
                "the device sent an SSL 2.0-format hello: it offers nothing newer than SSL/early TLS, which this \
                 listener (TLS 1.2 and 1.3) refuses; update the device's firmware or use HTTP",
            )?,
            TlsProblem::TlsToPlainPort => f.write_str(
                "the device uses HTTPS, this listener speaks HTTP: set the slot to HTTP \
                 (alarmscope device set --protocol HTTP) or run listen --tls",
            )?,
            TlsProblem::PlainHttpToTlsPort { method, path } => write!(
                f,
                "the device sent plain HTTP ({method} {path}) to this HTTPS listener: set the slot to HTTPS \
                 (alarmscope device set --protocol HTTPS) or run listen without --tls (or with --tls-also-plain)"
            )?,
            TlsProblem::NotTls { preview } => write!(
                f,
                "the first bytes are neither TLS nor HTTP ({preview:?}): not a device speaking HTTPS"
            )?,
        }
        Ok(())
    }
}
