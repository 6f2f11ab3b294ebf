//! Typed findings of the TLS stage. Code and tests match on the variants; the `Display` text is
//! for a field engineer: what the packets show, what it means, and the next step.

use serde::Serialize;

use super::types::{AlertDescription, AlertLevel, ProtocolVersion};
use crate::tcp::{Direction, Side};
use crate::time::Timestamp;

/// What a server sent back to a TLS ClientHello that is not TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NonTlsAnswer {
    /// An HTTP status line (`HTTP/1.x NNN`).
    HttpResponse { status: Option<u16> },
    /// Other bytes (an HTML error page without a status line, a banner...); `preview` is the
    /// start of them, printable ASCII only.
    OtherBytes { preview: String },
    /// The server closed (FIN, or RST when `reset`) without sending a byte.
    Closed { reset: bool },
}

/// How the server showed that it speaks TLS to a plain HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TlsEvidence {
    /// It answered with a TLS alert record (description when readable).
    Alert {
        description: Option<AlertDescription>,
    },
    /// It answered with a TLS handshake record.
    HandshakeRecord,
    /// It answered nginx's "The plain HTTP request was sent to HTTPS port" 400 page.
    PlainHttpToHttpsPage,
    /// It closed without a byte, and the same server port completes TLS handshakes elsewhere in
    /// the capture.
    ClosedOnTlsPort,
}

/// How far the handshake had come when it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandshakeStage {
    /// The ClientHello was sent; no ServerHello.
    ClientHello,
    /// The ServerHello (and maybe the certificate) came; the client had not finished.
    ServerHello,
    /// The client finished; the server had not (TLS 1.2).
    ClientFinished,
}

/// A problem, or a notable fact, shown by the TLS records of one connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TlsFinding {
    /// The device sent a TLS ClientHello and the server answered with something that is not TLS
    /// (or closed without a word): the server on this port speaks plain HTTP.
    TlsToPlainServer {
        time: Timestamp,
        answer: NonTlsAnswer,
    },
    /// The device sent a plain HTTP request and the server answered as a TLS server (made by
    /// the pipeline from [`super::probe_answer_to_plain_http`] or
    /// [`super::is_plain_http_to_https_page`]).
    PlainHttpToTlsServer {
        time: Timestamp,
        evidence: TlsEvidence,
    },
    /// A side sent an alert before the handshake completed.
    HandshakeAlert {
        time: Timestamp,
        by: Side,
        /// None when the alert was encrypted (TLS 1.3).
        level: Option<AlertLevel>,
        description: Option<AlertDescription>,
    },
    /// The connection closed (FIN or RST) before the handshake completed, without an alert.
    ClosedDuringHandshake {
        time: Timestamp,
        by: Side,
        reset: bool,
        stage: HandshakeStage,
    },
    /// The client offered nothing newer than TLS 1.1 (servers built on rustls, and many
    /// current servers, refuse that).
    OnlyOldVersionsOffered {
        time: Timestamp,
        highest: ProtocolVersion,
    },
    /// The capture misses bytes of one direction; records were resynchronised after
    /// `skipped` further bytes (None: no plausible record header was found, the rest of the
    /// direction was not analysed).
    Gap {
        time: Timestamp,
        dir: Direction,
        /// Stream offset where the missing bytes begin.
        offset: u64,
        bytes: u64,
        skipped: Option<u64>,
    },
    /// Bytes that are not a TLS record where one was expected (not at the start of a
    /// direction: that is `TlsToPlainServer` or a connection that is not TLS at all).
    NotTls {
        time: Timestamp,
        dir: Direction,
        offset: u64,
        /// Bytes skipped before a plausible record header (None: none found, gave up).
        skipped: Option<u64>,
    },
    /// A handshake message larger than the reassembly limit was skipped (what it held is not
    /// reported).
    HandshakeMessageTooLarge {
        time: Timestamp,
        dir: Direction,
        offset: u64,
        msg_type: u8,
        len: u32,
    },
    /// A handshake message that tls-parser could not parse.
    MalformedHandshake {
        time: Timestamp,
        dir: Direction,
        offset: u64,
        msg_type: u8,
    },
}

impl TlsFinding {
    /// True for findings that explain why events cannot arrive (shown as problems), as opposed
    /// to capture or parsing notes.
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            TlsFinding::TlsToPlainServer { .. }
                | TlsFinding::PlainHttpToTlsServer { .. }
                | TlsFinding::HandshakeAlert { .. }
                | TlsFinding::ClosedDuringHandshake { .. }
                | TlsFinding::OnlyOldVersionsOffered { .. }
        )
    }

    /// The finding's kind as in JSON (`tls_to_plain_server`), for rows and counts.
    pub fn kind(&self) -> &'static str {
        match self {
            TlsFinding::TlsToPlainServer { .. } => "tls_to_plain_server",
            TlsFinding::PlainHttpToTlsServer { .. } => "plain_http_to_tls_server",
            TlsFinding::HandshakeAlert { .. } => "handshake_alert",
            TlsFinding::ClosedDuringHandshake { .. } => "closed_during_handshake",
            TlsFinding::OnlyOldVersionsOffered { .. } => "only_old_versions_offered",
            TlsFinding::Gap { .. } => "gap",
            TlsFinding::NotTls { .. } => "not_tls",
            TlsFinding::HandshakeMessageTooLarge { .. } => "handshake_message_too_large",
            TlsFinding::MalformedHandshake { .. } => "malformed_handshake",
        }
    }

    /// When the finding was seen.
    pub fn time(&self) -> Timestamp {
        match self {
            TlsFinding::TlsToPlainServer { time, .. }
            | TlsFinding::PlainHttpToTlsServer { time, .. }
            | TlsFinding::HandshakeAlert { time, .. }
            | TlsFinding::ClosedDuringHandshake { time, .. }
            | TlsFinding::OnlyOldVersionsOffered { time, .. }
            | TlsFinding::Gap { time, .. }
            | TlsFinding::NotTls { time, .. }
            | TlsFinding::HandshakeMessageTooLarge { time, .. }
            | TlsFinding::MalformedHandshake { time, .. } => *time,
        }
    }
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Client => "the device",
        Side::Server => "the server",
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ClientToServer => "device->server",
        Direction::ServerToClient => "server->device",
    }
}

impl std::fmt::Display for TlsFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsFinding::TlsToPlainServer { answer, .. } => {
                f.write_str("the device uses HTTPS, the server on this port speaks HTTP: ")?;
                match answer {
                    NonTlsAnswer::HttpResponse { status: Some(s) } => {
                        write!(f, "the TLS hello was answered with a plain HTTP {s}")?
                    }
                    NonTlsAnswer::HttpResponse { status: None } => {
                        f.write_str("the TLS hello was answered with plain HTTP")?
                    }
                    NonTlsAnswer::OtherBytes { preview } => write!(
                        f,
                        "the TLS hello was answered with non-TLS bytes ({preview:?})"
                    )?,
                    NonTlsAnswer::Closed { reset } => write!(
                        f,
                        "the server {} the connection after the TLS hello without a TLS answer \
                         (a plain HTTP server, or a TLS server that refused the hello)",
                        if *reset { "reset" } else { "closed" }
                    )?,
                }
                f.write_str(
                    ". Set the device's alarm host to HTTP (alarmscope device set --protocol HTTP) \
                     or enable HTTPS on the server's port",
                )
            }
            TlsFinding::PlainHttpToTlsServer { evidence, .. } => {
                f.write_str("the server expects HTTPS, the device sent plain HTTP: ")?;
                match evidence {
                    TlsEvidence::Alert {
                        description: Some(d),
                    } => write!(f, "it answered with a TLS alert ({d})")?,
                    TlsEvidence::Alert { description: None } => {
                        f.write_str("it answered with a TLS alert")?
                    }
                    TlsEvidence::HandshakeRecord => {
                        f.write_str("it answered with a TLS handshake record")?
                    }
                    TlsEvidence::PlainHttpToHttpsPage => f.write_str(
                        "it answered 400 \"The plain HTTP request was sent to HTTPS port\"",
                    )?,
                    TlsEvidence::ClosedOnTlsPort => f.write_str(
                        "it closed without answering, and the same port speaks TLS elsewhere in \
                         the capture",
                    )?,
                }
                f.write_str(
                    ". Set the device's alarm host to HTTPS (alarmscope device set --protocol HTTPS) \
                     or serve plain HTTP on that port",
                )
            }
            TlsFinding::HandshakeAlert {
                by,
                level,
                description,
                ..
            } => {
                let who = side_name(*by);
                match (level, description) {
                    (Some(l), Some(d)) => write!(
                        f,
                        "TLS handshake failed: {who} sent a {l} alert {d}: {}",
                        d.meaning(*by)
                    ),
                    _ => write!(
                        f,
                        "TLS handshake failed: {who} sent an encrypted alert (TLS 1.3: its reason \
                         needs the session keys; check the certificate the server presents and \
                         the device's trusted CAs and clock first)"
                    ),
                }
            }
            TlsFinding::ClosedDuringHandshake {
                by, reset, stage, ..
            } => {
                let how = if *reset { "reset" } else { "closed" };
                let at = match stage {
                    HandshakeStage::ClientHello => {
                        "after the device's hello, before any server hello"
                    }
                    HandshakeStage::ServerHello => {
                        "after the server's hello, before the device finished"
                    }
                    HandshakeStage::ClientFinished => {
                        "after the device finished, before the server did"
                    }
                };
                write!(
                    f,
                    "TLS handshake not completed: {} {how} the connection {at}, without an alert",
                    side_name(*by)
                )?;
                if *by == Side::Client && *stage == HandshakeStage::ServerHello {
                    f.write_str(
                        " (devices often do that when they reject the server's certificate; check \
                         it and the device's clock)",
                    )?;
                }
                Ok(())
            }
            TlsFinding::OnlyOldVersionsOffered { highest, .. } => write!(
                f,
                "the device offers TLS up to {highest} only; servers that require TLS 1.2 or \
                 newer refuse it: update the device's firmware or allow {highest} on the server"
            ),
            TlsFinding::Gap {
                dir,
                offset,
                bytes,
                skipped,
                ..
            } => {
                write!(
                    f,
                    "{}: {bytes} bytes missing from the capture at offset {offset}",
                    dir_name(*dir)
                )?;
                match skipped {
                    Some(0) => f.write_str("; records resume right after it"),
                    Some(n) => write!(f, "; records resume {n} bytes later"),
                    None => f.write_str("; no record boundary found after it, rest not analysed"),
                }
            }
            TlsFinding::NotTls {
                dir,
                offset,
                skipped,
                ..
            } => {
                write!(
                    f,
                    "{}: bytes at offset {offset} are not a TLS record",
                    dir_name(*dir)
                )?;
                match skipped {
                    Some(n) => write!(f, "; {n} bytes skipped to the next record"),
                    None => f.write_str("; no record boundary found after them, rest not analysed"),
                }
            }
            TlsFinding::HandshakeMessageTooLarge {
                dir,
                offset,
                msg_type,
                len,
                ..
            } => write!(
                f,
                "{}: handshake message type {msg_type} at offset {offset} is {len} bytes, over the \
                 reassembly limit; skipped",
                dir_name(*dir)
            ),
            TlsFinding::MalformedHandshake {
                dir,
                offset,
                msg_type,
                ..
            } => write!(
                f,
                "{}: handshake message type {msg_type} at offset {offset} could not be parsed",
                dir_name(*dir)
            ),
        }
    }
}
