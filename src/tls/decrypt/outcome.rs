//! What decrypting a connection came to, in the terms the reports count: decrypted or not, and
//! if not, why. Derived from a finished [`DecryptReport`], so the replay, sniff and the TUI
//! count alike.

use serde::Serialize;

use super::{DecryptFinding, DecryptReport, DecryptStatus};

/// Why a TLS connection given a key log was not decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotDecryptedReason {
    /// The capture began after the handshake: the client random is unknown.
    NoHandshake,
    /// The key log lacks this session (or its secret for the suite's version).
    KeyNotInLog,
    /// The negotiated suite or version is not decrypted.
    UnsupportedSuite,
    /// The first encrypted record failed to authenticate with the logged secret: the log is of
    /// another session with the same client random, or the capture is damaged.
    WrongKey,
    /// Anything else (e.g. the direction stopped before a record authenticated).
    Other,
}

impl NotDecryptedReason {
    /// Short words for counts and list rows.
    pub fn as_str(self) -> &'static str {
        match self {
            NotDecryptedReason::NoHandshake => "no handshake captured",
            NotDecryptedReason::KeyNotInLog => "session not in the key log",
            NotDecryptedReason::UnsupportedSuite => "suite not decrypted",
            NotDecryptedReason::WrongKey => "key log does not match",
            NotDecryptedReason::Other => "other",
        }
    }
}

impl DecryptReport {
    /// Mark the alerts that came after every request of the connection was answered, when it
    /// closes: `last_answer` is the time of its last answer when every request had one (None
    /// when one had none, or there was no request). Those alerts cost no event
    /// ([`DecryptFinding::Alert`]).
    pub fn place_alerts(&mut self, last_answer: Option<crate::time::Timestamp>) {
        let Some(last_answer) = last_answer else {
            return;
        };
        for f in &mut self.findings {
            if let DecryptFinding::Alert {
                time,
                after_answers,
                ..
            } = f
            {
                *after_answers = *time >= last_answer;
            }
        }
    }

    /// The findings the engineer must look at ([`DecryptFinding::is_problem`]).
    pub fn problems(&self) -> impl Iterator<Item = &DecryptFinding> {
        self.findings.iter().filter(|f| f.is_problem())
    }

    /// Why the connection was not decrypted; `None` when it was (or nothing needed a key).
    pub fn not_decrypted(&self) -> Option<NotDecryptedReason> {
        if self.status != DecryptStatus::NotDecrypted {
            return None;
        }
        // The first finding that explains it: the one that made the status.
        let reason = self.findings.iter().find_map(|f| match f {
            DecryptFinding::NoHandshake { .. } => Some(NotDecryptedReason::NoHandshake),
            DecryptFinding::KeyNotInLog { .. } => Some(NotDecryptedReason::KeyNotInLog),
            DecryptFinding::UnsupportedSuite { .. } => Some(NotDecryptedReason::UnsupportedSuite),
            DecryptFinding::AuthFailed { first: true, .. } => Some(NotDecryptedReason::WrongKey),
            _ => None,
        });
        Some(reason.unwrap_or(NotDecryptedReason::Other))
    }
}

/// Connections not decrypted, by reason (JSON: `summary.not_decrypted`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotDecryptedCounts {
    pub no_handshake: u64,
    pub key_not_in_log: u64,
    pub unsupported_suite: u64,
    pub wrong_key: u64,
    pub other: u64,
}

impl NotDecryptedCounts {
    /// The count of one reason.
    pub fn of(&self, r: NotDecryptedReason) -> u64 {
        match r {
            NotDecryptedReason::NoHandshake => self.no_handshake,
            NotDecryptedReason::KeyNotInLog => self.key_not_in_log,
            NotDecryptedReason::UnsupportedSuite => self.unsupported_suite,
            NotDecryptedReason::WrongKey => self.wrong_key,
            NotDecryptedReason::Other => self.other,
        }
    }

    fn add(&mut self, r: NotDecryptedReason) {
        let n = match r {
            NotDecryptedReason::NoHandshake => &mut self.no_handshake,
            NotDecryptedReason::KeyNotInLog => &mut self.key_not_in_log,
            NotDecryptedReason::UnsupportedSuite => &mut self.unsupported_suite,
            NotDecryptedReason::WrongKey => &mut self.wrong_key,
            NotDecryptedReason::Other => &mut self.other,
        };
        *n += 1;
    }

    /// Every reason with its count, in a fixed order.
    pub fn each(&self) -> impl Iterator<Item = (NotDecryptedReason, u64)> + '_ {
        [
            NotDecryptedReason::KeyNotInLog,
            NotDecryptedReason::WrongKey,
            NotDecryptedReason::UnsupportedSuite,
            NotDecryptedReason::NoHandshake,
            NotDecryptedReason::Other,
        ]
        .into_iter()
        .map(|r| (r, self.of(r)))
    }
}

/// The summary's decryption counts (`--keylog`), flattened into `summary`; every field is
/// absent from JSON when 0, so a run without a key log prints what it printed before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DecryptionCounts {
    /// TLS connections whose plaintext was read (at least one record authenticated).
    #[serde(skip_serializing_if = "is_zero")]
    pub decrypted_connections: u64,
    /// TLS connections given to the decryptor and not decrypted (`not_decrypted` says why).
    #[serde(skip_serializing_if = "is_zero")]
    pub not_decrypted_connections: u64,
    /// Of those, by reason.
    #[serde(skip_serializing_if = "no_reason")]
    pub not_decrypted: NotDecryptedCounts,
    /// Connections with at least one decryption problem ([`DecryptFinding::is_problem`]): not
    /// decrypted, a direction that stopped, a fatal alert read from the plaintext.
    #[serde(skip_serializing_if = "is_zero")]
    pub decryption_problems: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn no_reason(c: &NotDecryptedCounts) -> bool {
    *c == NotDecryptedCounts::default()
}

impl DecryptionCounts {
    /// Count one finished connection's report (`None`: not a TLS connection, or no key log).
    pub fn count(&mut self, report: Option<&DecryptReport>) {
        let Some(r) = report else {
            return;
        };
        match r.status {
            DecryptStatus::Decrypting => self.decrypted_connections += 1,
            DecryptStatus::NotDecrypted => {
                self.not_decrypted_connections += 1;
                self.not_decrypted
                    .add(r.not_decrypted().unwrap_or(NotDecryptedReason::Other));
            }
            DecryptStatus::Pending => {}
        }
        if r.problems().next().is_some() {
            self.decryption_problems += 1;
        }
    }
}

/// Each finding as its own fields plus `problem` and the plain-words `text`.
pub(super) fn serialize_findings<S: serde::Serializer>(
    findings: &[DecryptFinding],
    ser: S,
) -> Result<S::Ok, S::Error> {
    crate::tls::serialize_judged(findings, DecryptFinding::is_problem, ser)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::Side;
    use crate::time::Timestamp;
    use crate::tls::types::{AlertDescription, AlertLevel};

    fn report(alert_at: i64) -> DecryptReport {
        DecryptReport {
            status: DecryptStatus::Decrypting,
            version: None,
            cipher_suite: None,
            stats: Default::default(),
            findings: vec![DecryptFinding::Alert {
                time: Timestamp(alert_at),
                by: Side::Client,
                level: AlertLevel::FATAL,
                description: AlertDescription::INTERNAL_ERROR,
                after_answers: false,
            }],
            findings_dropped: 0,
        }
    }

    #[test]
    fn a_fatal_alert_is_a_problem_unless_it_came_after_the_last_answer() {
        // After the last answer: a note.
        let mut r = report(50);
        r.place_alerts(Some(Timestamp(40)));
        assert_eq!(r.problems().count(), 0);
        // Before the last answer: it may have cost that event.
        let mut r = report(35);
        r.place_alerts(Some(Timestamp(40)));
        assert_eq!(r.problems().count(), 1);
        // A request never answered, or no request at all: a problem.
        let mut r = report(50);
        r.place_alerts(None);
        assert_eq!(r.problems().count(), 1);
    }
}
