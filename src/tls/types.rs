//! What the TLS stage reports about one connection, as plain serialisable values (the report's
//! per-connection `tls` object). Names and numbers come from the packets; nothing here is guessed
//! except where a field says it is inferred.

use serde::{Serialize, Serializer};

use crate::tcp::{Direction, Side};
use crate::time::Timestamp;

/// A protocol version as it travels on the wire (`0x0303` is TLS 1.2). Kept as the number so
/// unknown or GREASE values survive; shown and serialised as "TLS 1.2" or "0x7f12".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    pub const SSL3: ProtocolVersion = ProtocolVersion(0x0300);
    pub const TLS10: ProtocolVersion = ProtocolVersion(0x0301);
    pub const TLS11: ProtocolVersion = ProtocolVersion(0x0302);
    pub const TLS12: ProtocolVersion = ProtocolVersion(0x0303);
    pub const TLS13: ProtocolVersion = ProtocolVersion(0x0304);

    /// GREASE values (RFC 8701) are sent to keep peers honest and mean nothing.
    pub fn is_grease(self) -> bool {
        self.0 & 0x0f0f == 0x0a0a && (self.0 >> 8) == (self.0 & 0xff)
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0x0300 => f.write_str("SSL 3.0"),
            0x0301 => f.write_str("TLS 1.0"),
            0x0302 => f.write_str("TLS 1.1"),
            0x0303 => f.write_str("TLS 1.2"),
            0x0304 => f.write_str("TLS 1.3"),
            n => write!(f, "0x{n:04x}"),
        }
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A cipher suite by its IANA number; shown by its IANA name where tls-parser knows it, else hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CipherSuite(pub u16);

impl CipherSuite {
    /// The IANA name, when known.
    pub fn name(self) -> Option<&'static str> {
        tls_parser::TlsCipherSuite::from_id(self.0).map(|c| c.name)
    }
}

impl std::fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

impl Serialize for CipherSuite {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Alert level (1 warning, 2 fatal; anything else is kept as its number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlertLevel(pub u8);

impl AlertLevel {
    pub const WARNING: AlertLevel = AlertLevel(1);
    pub const FATAL: AlertLevel = AlertLevel(2);
}

impl std::fmt::Display for AlertLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1 => f.write_str("warning"),
            2 => f.write_str("fatal"),
            n => write!(f, "level_{n}"),
        }
    }
}

impl Serialize for AlertLevel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Alert description by number (RFC 8446 section 6); code matches on the constants, people read
/// the snake_case name (`unknown_ca`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlertDescription(pub u8);

impl AlertDescription {
    pub const CLOSE_NOTIFY: AlertDescription = AlertDescription(0);
    pub const UNEXPECTED_MESSAGE: AlertDescription = AlertDescription(10);
    pub const BAD_RECORD_MAC: AlertDescription = AlertDescription(20);
    pub const HANDSHAKE_FAILURE: AlertDescription = AlertDescription(40);
    pub const BAD_CERTIFICATE: AlertDescription = AlertDescription(42);
    pub const UNSUPPORTED_CERTIFICATE: AlertDescription = AlertDescription(43);
    pub const CERTIFICATE_REVOKED: AlertDescription = AlertDescription(44);
    pub const CERTIFICATE_EXPIRED: AlertDescription = AlertDescription(45);
    pub const CERTIFICATE_UNKNOWN: AlertDescription = AlertDescription(46);
    pub const ILLEGAL_PARAMETER: AlertDescription = AlertDescription(47);
    pub const UNKNOWN_CA: AlertDescription = AlertDescription(48);
    pub const ACCESS_DENIED: AlertDescription = AlertDescription(49);
    pub const DECODE_ERROR: AlertDescription = AlertDescription(50);
    pub const DECRYPT_ERROR: AlertDescription = AlertDescription(51);
    pub const PROTOCOL_VERSION: AlertDescription = AlertDescription(70);
    pub const INSUFFICIENT_SECURITY: AlertDescription = AlertDescription(71);
    pub const INTERNAL_ERROR: AlertDescription = AlertDescription(80);
    pub const UNRECOGNIZED_NAME: AlertDescription = AlertDescription(112);
    pub const CERTIFICATE_REQUIRED: AlertDescription = AlertDescription(116);
    pub const NO_APPLICATION_PROTOCOL: AlertDescription = AlertDescription(120);

    /// The registry name in snake_case (`unknown_ca`), or `unknown_<n>`. The names come from
    /// tls-parser's table (CamelCase there).
    pub fn name(self) -> String {
        let camel = tls_parser::TlsAlertDescription(self.0).to_string();
        // tls-parser shows an unknown value as "TlsAlertDescription(n / 0xn)".
        if camel.contains('(') || camel.is_empty() {
            return format!("unknown_{}", self.0);
        }
        let mut out = String::with_capacity(camel.len() + 4);
        for (i, c) in camel.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// What this alert means when `by` sent it during the handshake, in plain words.
    pub fn meaning(self, by: Side) -> &'static str {
        let device = by == Side::Client;
        match self {
            Self::UNKNOWN_CA if device => "the device does not trust the server's certificate: it was not issued by a CA the device knows (self-signed or private CA)",
            Self::UNKNOWN_CA => "the server does not trust the device's client certificate (unknown CA)",
            Self::BAD_CERTIFICATE | Self::UNSUPPORTED_CERTIFICATE | Self::CERTIFICATE_UNKNOWN if device => "the device rejected the server's certificate (wrong host name, wrong key usage or a damaged chain)",
            Self::BAD_CERTIFICATE | Self::UNSUPPORTED_CERTIFICATE | Self::CERTIFICATE_UNKNOWN => "the server rejected the device's client certificate",
            Self::CERTIFICATE_EXPIRED if device => "the device finds the server's certificate expired or not yet valid (check the certificate's dates and the device's clock)",
            Self::CERTIFICATE_EXPIRED => "the server finds the device's client certificate expired (or the server's clock is wrong)",
            Self::CERTIFICATE_REVOKED => "the certificate was revoked",
            Self::CERTIFICATE_REQUIRED => "the server wants a client certificate and the device sent none",
            Self::PROTOCOL_VERSION => "the two sides share no TLS version (an old device offering only TLS 1.0/1.1, or a server that refuses them)",
            Self::HANDSHAKE_FAILURE | Self::INSUFFICIENT_SECURITY => "the two sides share no cipher suite or parameters they both accept",
            Self::UNRECOGNIZED_NAME => "the server has no certificate for the host name the device asked for (SNI)",
            Self::NO_APPLICATION_PROTOCOL => "the two sides share no application protocol (ALPN)",
            Self::DECRYPT_ERROR | Self::BAD_RECORD_MAC => "a signature or encryption check failed (wrong key, or a middlebox altered the traffic)",
            Self::ACCESS_DENIED => "the certificate was valid but access was refused",
            Self::DECODE_ERROR | Self::ILLEGAL_PARAMETER | Self::UNEXPECTED_MESSAGE => "one side sent something the other could not accept (an incompatible or broken TLS implementation)",
            Self::INTERNAL_ERROR => "an internal error on the side that sent it",
            Self::CLOSE_NOTIFY => "an orderly close before the handshake finished",
            _ => "a TLS failure",
        }
    }
}

impl std::fmt::Display for AlertDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for AlertDescription {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// One alert record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Who sent it.
    pub by: Side,
    pub time: Timestamp,
    /// False when it travelled encrypted (after the sender's ChangeCipherSpec, or a TLS 1.3
    /// record whose size only an alert has): level and description are then unknown.
    pub readable: bool,
    pub level: Option<AlertLevel>,
    pub description: Option<AlertDescription>,
    /// Sent before the handshake was complete (as far as the packets show).
    pub during_handshake: bool,
}

/// What the client offered in its ClientHello.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientHelloInfo {
    pub time: Timestamp,
    /// The hello's legacy_version (0x0303 even for a TLS 1.3 client).
    pub legacy_version: Option<ProtocolVersion>,
    /// The supported_versions extension (GREASE left out); empty when absent.
    pub supported_versions: Vec<ProtocolVersion>,
    /// Host name of the server_name extension.
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    /// Offered suites in the client's order (GREASE left out).
    pub cipher_suites: Vec<CipherSuite>,
}

impl ClientHelloInfo {
    /// The highest version this hello offers.
    pub fn highest_version(&self) -> Option<ProtocolVersion> {
        self.supported_versions
            .iter()
            .copied()
            .max()
            .or(self.legacy_version)
    }
}

/// What the server chose in its ServerHello.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerHelloInfo {
    pub time: Timestamp,
    /// The version in force: supported_versions when present (TLS 1.3), else legacy_version.
    pub version: Option<ProtocolVersion>,
    pub cipher_suite: Option<CipherSuite>,
    /// ALPN chosen. Only readable up to TLS 1.2 (TLS 1.3 sends it encrypted).
    pub alpn: Option<String>,
    /// The server first asked the client to try again (TLS 1.3 HelloRetryRequest).
    pub hello_retry_request: bool,
}

/// The server's certificate as far as the capture shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CertificateView {
    /// No Certificate message seen (yet, or ever: a resumed session, a failed handshake).
    NotSeen,
    /// TLS 1.3: the certificate travels encrypted; a key log is needed to read it.
    Encrypted,
    /// Read from a TLS <= 1.2 Certificate message.
    Readable(CertificateInfo),
    /// A Certificate message that could not be read, and why.
    Unreadable { reason: CertificateProblem },
}

/// Why a certificate could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateProblem {
    /// The Certificate message was larger than the reassembly limit.
    TooLarge,
    /// The message or the DER inside it did not parse.
    Malformed,
    /// The chain was empty.
    Empty,
}

/// The leaf certificate the server presented (TLS <= 1.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// Validity, UTC text.
    pub not_before: String,
    pub not_after: String,
    /// Subject equals issuer and the signature verifies with the certificate's own key.
    pub self_signed: bool,
    /// The capture time falls inside the validity period (the device's clock may differ).
    pub valid_at_capture: bool,
    /// Certificates in the chain the server sent (leaf first).
    pub chain_length: usize,
}

/// Where the handshake got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeState {
    /// The capture began after the handshake (first record of the client was not a hello).
    NotSeen,
    /// Started, not finished (yet).
    InProgress,
    /// Both sides sent Finished (TLS 1.2: ChangeCipherSpec and an encrypted handshake record
    /// each; TLS 1.3: the server's encrypted flight and the client's first encrypted record).
    Completed,
    /// An alert or a close ended it before completion.
    Failed,
}

/// Application-data records (content type 23) of one direction, counted from their headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AppDataStats {
    pub records: u64,
    /// Record payload bytes (ciphertext, headers excluded).
    pub bytes: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// Per-direction counts, named for the JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PerDirection<T> {
    pub client_to_server: T,
    pub server_to_client: T,
}

impl<T> PerDirection<T> {
    /// The value of one direction.
    pub fn get(&self, dir: Direction) -> &T {
        match dir {
            Direction::ClientToServer => &self.client_to_server,
            Direction::ServerToClient => &self.server_to_client,
        }
    }

    /// The value of one direction, to change.
    pub fn get_mut(&mut self, dir: Direction) -> &mut T {
        match dir {
            Direction::ClientToServer => &mut self.client_to_server,
            Direction::ServerToClient => &mut self.server_to_client,
        }
    }
}

/// The per-connection `tls` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsInfo {
    pub client_hello: Option<ClientHelloInfo>,
    pub server_hello: Option<ServerHelloInfo>,
    pub certificate: CertificateView,
    pub handshake: HandshakeState,
    /// Alerts in order (at most `TlsConfig::max_alerts`; `alerts_dropped` counts the rest).
    pub alerts: Vec<Alert>,
    pub alerts_dropped: u64,
    pub application_data: PerDirection<AppDataStats>,
    /// Bytes that were not TLS records (an HTTP answer, garbage, bytes skipped to resync).
    pub non_tls_bytes: PerDirection<u64>,
    /// Bytes the capture never saw, per direction.
    pub gap_bytes: PerDirection<u64>,
}

impl Default for TlsInfo {
    fn default() -> Self {
        TlsInfo {
            client_hello: None,
            server_hello: None,
            certificate: CertificateView::NotSeen,
            handshake: HandshakeState::InProgress,
            alerts: Vec::new(),
            alerts_dropped: 0,
            application_data: PerDirection::default(),
            non_tls_bytes: PerDirection::default(),
            gap_bytes: PerDirection::default(),
        }
    }
}

/// The side that sends in `dir`.
pub fn sender(dir: Direction) -> Side {
    match dir {
        Direction::ClientToServer => Side::Client,
        Direction::ServerToClient => Side::Server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case_and_unknowns_keep_their_number() {
        assert_eq!(AlertDescription::UNKNOWN_CA.name(), "unknown_ca");
        assert_eq!(AlertDescription::BAD_RECORD_MAC.name(), "bad_record_mac");
        assert_eq!(AlertDescription(200).name(), "unknown_200");
        assert_eq!(ProtocolVersion::TLS13.to_string(), "TLS 1.3");
        assert_eq!(ProtocolVersion(0x7f12).to_string(), "0x7f12");
        assert_eq!(CipherSuite(0x1301).to_string(), "TLS_AES_128_GCM_SHA256");
        assert_eq!(CipherSuite(0xfefe).to_string(), "0xfefe");
        assert!(ProtocolVersion(0x1a1a).is_grease());
        assert!(!ProtocolVersion::TLS12.is_grease());
    }
}
