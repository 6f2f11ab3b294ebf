//! Typed findings of decryption. Code and tests match on the variants; `Display` says what the
//! records show and what it means for the analysis.

use serde::Serialize;

use super::keys::Refusal;
use crate::tcp::{Direction, Side};
use crate::time::Timestamp;
use crate::tls::keylog::Label;
use crate::tls::types::{AlertDescription, AlertLevel, CipherSuite, ProtocolVersion};

/// What became of a direction after a capture gap (or bytes that were not a record) inside
/// its encrypted stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum GapOutcome {
    /// The gap fell inside one record's body: that record is lost, the framing and the
    /// sequence number of the next record are known exactly, decryption goes on.
    RecordLost { record: u64 },
    /// The framing was lost; a later record authenticated under the expected key with a
    /// sequence number `records_lost` further on, after `skipped` bytes: the AEAD tag proves
    /// both the framing and the sequence number, so decryption goes on from there.
    Resynced { skipped: u64, records_lost: u64 },
    /// No record authenticated within the resync window (or the capture ended first): nothing
    /// more of this direction is decrypted.
    Stopped,
}

/// A fact about decrypting one connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DecryptFinding {
    /// Encrypted records came but no ClientHello was seen (the capture began mid-connection):
    /// the key log cannot be matched.
    NoHandshake { time: Timestamp },
    /// The key log has no `label` secret for this connection's client random
    /// (`session_logged`: it has other secrets of it).
    KeyNotInLog {
        time: Timestamp,
        client_random: String,
        label: Label,
        session_logged: bool,
    },
    /// The negotiated suite is not decrypted, and why.
    UnsupportedSuite {
        time: Timestamp,
        version: ProtocolVersion,
        cipher_suite: CipherSuite,
        refusal: Refusal,
    },
    /// A record did not authenticate. `first`: no record of this direction had; the logged
    /// secret does not belong to this session (or the capture is corrupt): the direction
    /// stops. Otherwise the record is skipped (a hole in the plaintext) and the next one tried.
    AuthFailed {
        time: Timestamp,
        dir: Direction,
        /// Index of the record in its direction, from 0 (cleartext records count).
        record: u64,
        /// Stream offset of the record's header.
        offset: u64,
        first: bool,
    },
    /// Three records in a row failed: the direction stops.
    TooManyFailures { time: Timestamp, dir: Direction },
    /// Bytes missing from the capture (`bytes`), or that are not a record (`bytes` 0), at
    /// stream offset `offset` of an encrypted direction, and what became of it.
    Gap {
        time: Timestamp,
        dir: Direction,
        offset: u64,
        bytes: u64,
        #[serde(flatten)]
        outcome: GapOutcome,
    },
    /// TLS 1.3 0-RTT early data: encrypted with a key the key log rarely has; not decrypted.
    EarlyData { time: Timestamp },
    /// TLS 1.2 renegotiation (a second ChangeCipherSpec): the new keys are not followed; the
    /// direction stops.
    Renegotiation { time: Timestamp, dir: Direction },
    /// TLS 1.3 KeyUpdate: the direction's keys were updated and decryption goes on.
    KeyUpdate { time: Timestamp, dir: Direction },
    /// An alert read from an encrypted record. `after_answers`: it came after every request of
    /// the connection was answered (set when the connection closes): a fatal alert then cost no
    /// event (some TLS stacks send one at close), so it is a note, not a problem.
    Alert {
        time: Timestamp,
        by: Side,
        level: AlertLevel,
        description: AlertDescription,
        after_answers: bool,
    },
    /// A record authenticated but its plaintext is not valid (TLS 1.3 inner plaintext of only
    /// padding, an alert of the wrong size): skipped.
    MalformedPlaintext {
        time: Timestamp,
        dir: Direction,
        record: u64,
        offset: u64,
    },
}

impl DecryptFinding {
    /// When it was seen.
    pub fn time(&self) -> Timestamp {
        match self {
            DecryptFinding::NoHandshake { time }
            | DecryptFinding::KeyNotInLog { time, .. }
            | DecryptFinding::UnsupportedSuite { time, .. }
            | DecryptFinding::AuthFailed { time, .. }
            | DecryptFinding::TooManyFailures { time, .. }
            | DecryptFinding::Gap { time, .. }
            | DecryptFinding::EarlyData { time }
            | DecryptFinding::Renegotiation { time, .. }
            | DecryptFinding::KeyUpdate { time, .. }
            | DecryptFinding::Alert { time, .. }
            | DecryptFinding::MalformedPlaintext { time, .. } => *time,
        }
    }

    /// Whether the engineer must look at it: a fatal alert (a failure of the device or the
    /// server), or decryption that did not happen or stopped (no handshake seen, session not
    /// in the key log, refused suite, first record failing to authenticate = a key log of
    /// another session, too many failures, a gap no record could be resynchronised after,
    /// renegotiation): part of the connection is then judged without its plaintext. Notes
    /// (`false`): decryption went on (a lost record, a resync, a key update, a warning alert).
    pub fn is_problem(&self) -> bool {
        match self {
            DecryptFinding::Alert {
                level,
                after_answers,
                ..
            } => *level == AlertLevel::FATAL && !after_answers,
            DecryptFinding::AuthFailed { first, .. } => *first,
            DecryptFinding::Gap { outcome, .. } => *outcome == GapOutcome::Stopped,
            DecryptFinding::NoHandshake { .. }
            | DecryptFinding::KeyNotInLog { .. }
            | DecryptFinding::UnsupportedSuite { .. }
            | DecryptFinding::TooManyFailures { .. }
            | DecryptFinding::Renegotiation { .. } => true,
            DecryptFinding::EarlyData { .. }
            | DecryptFinding::KeyUpdate { .. }
            | DecryptFinding::MalformedPlaintext { .. } => false,
        }
    }

    /// The finding's kind as in JSON (`key_not_in_log`, `auth_failed`, ...), for short labels.
    pub fn kind(&self) -> &'static str {
        match self {
            DecryptFinding::NoHandshake { .. } => "no_handshake",
            DecryptFinding::KeyNotInLog { .. } => "key_not_in_log",
            DecryptFinding::UnsupportedSuite { .. } => "unsupported_suite",
            DecryptFinding::AuthFailed { .. } => "auth_failed",
            DecryptFinding::TooManyFailures { .. } => "too_many_failures",
            DecryptFinding::Gap { .. } => "gap",
            DecryptFinding::EarlyData { .. } => "early_data",
            DecryptFinding::Renegotiation { .. } => "renegotiation",
            DecryptFinding::KeyUpdate { .. } => "key_update",
            DecryptFinding::Alert { .. } => "alert",
            DecryptFinding::MalformedPlaintext { .. } => "malformed_plaintext",
        }
    }
}

fn dir_name(dir: Direction) -> &'static str {
    match dir {
        Direction::ClientToServer => "device->server",
        Direction::ServerToClient => "server->device",
    }
}

impl std::fmt::Display for DecryptFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptFinding::NoHandshake { .. } => f.write_str(
                "not decrypted: the capture began after the TLS handshake, so the client random \
                 that finds the keys in the key log is unknown; capture from the connection's start",
            ),
            DecryptFinding::KeyNotInLog {
                client_random,
                label,
                session_logged,
                ..
            } => {
                if *session_logged {
                    write!(f, "not decrypted: the key log has this session ({client_random}) but not its {label} secret")
                } else {
                    write!(f, "not decrypted: client random {client_random} is not in the key log (was the log written by this client or server, for this capture?)")
                }
            }
            DecryptFinding::UnsupportedSuite {
                version,
                cipher_suite,
                refusal,
                ..
            } => write!(f, "not decrypted: {version} {cipher_suite}: {}", refusal.reason()),
            DecryptFinding::AuthFailed {
                dir,
                record,
                offset,
                first: true,
                ..
            } => write!(
                f,
                "{}: record {record} (offset {offset}) failed to authenticate with the logged secret: the key log does not match this session (or the capture is damaged); this direction is not decrypted",
                dir_name(*dir)
            ),
            DecryptFinding::AuthFailed {
                dir, record, offset, ..
            } => write!(
                f,
                "{}: record {record} (offset {offset}) failed to authenticate (damaged in the capture?); its plaintext is missing, the next record is tried",
                dir_name(*dir)
            ),
            DecryptFinding::TooManyFailures { dir, .. } => write!(
                f,
                "{}: three records in a row failed to authenticate; this direction is no longer decrypted",
                dir_name(*dir)
            ),
            DecryptFinding::Gap {
                dir,
                offset,
                bytes,
                outcome,
                ..
            } => {
                let d = dir_name(*dir);
                if *bytes == 0 {
                    write!(f, "{d}: bytes that are not a TLS record at offset {offset}")?;
                } else {
                    write!(f, "{d}: {bytes} bytes missing from the capture at offset {offset}")?;
                }
                match outcome {
                    GapOutcome::RecordLost { record } => write!(f, "; record {record} is lost, decryption goes on with the next one"),
                    GapOutcome::Resynced { skipped, records_lost } => write!(f, "; {skipped} bytes skipped, about {records_lost} record(s) lost; a later record authenticated, decryption goes on from it"),
                    GapOutcome::Stopped => f.write_str("; no later record could be authenticated: the rest of this direction is not decrypted"),
                }
            }
            DecryptFinding::EarlyData { .. } => f.write_str(
                "the device sent TLS 1.3 early data (0-RTT); it is not decrypted",
            ),
            DecryptFinding::Renegotiation { dir, .. } => write!(
                f,
                "{}: TLS renegotiation; records under the new keys are not decrypted",
                dir_name(*dir)
            ),
            DecryptFinding::KeyUpdate { dir, .. } => {
                write!(f, "{}: TLS 1.3 key update followed", dir_name(*dir))
            }
            DecryptFinding::Alert {
                by,
                level,
                description,
                after_answers,
                ..
            } => {
                let who = match by {
                    Side::Client => "the device",
                    Side::Server => "the server",
                };
                write!(f, "{who} sent a {level} {description} alert (decrypted)")?;
                if *after_answers {
                    write!(f, " after every request was answered")?;
                }
                Ok(())
            }
            DecryptFinding::MalformedPlaintext {
                dir, record, offset, ..
            } => write!(
                f,
                "{}: record {record} (offset {offset}) authenticated but holds no valid content; skipped",
                dir_name(*dir)
            ),
        }
    }
}
