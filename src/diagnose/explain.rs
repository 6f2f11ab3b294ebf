//! Plain-words explanations of each finding, for the text report and the TUI's diagnosis pane.
//! Kept next to the diagnosis so every view says the same thing.

use crate::model::{Connection, Exchange, ExchangeNote, Verdict};
use crate::tcp::{CloseKind, Handshake, Side};
use crate::tls::{TlsExchange, TlsFinding, Uncertainty};

/// What a finding means and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// One line: what happened.
    pub what: String,
    /// What it means for the device's events.
    pub meaning: String,
    /// What to check next.
    pub next: String,
}

/// Explain a connection's handshake (the first of the engineer's three checks).
pub fn explain_handshake(c: &Connection) -> Explanation {
    match c.handshake {
        Handshake::Complete => Explanation {
            what: format!("Three-way handshake completed between {} and {}.", c.client, c.server),
            meaning: "The device reached the server and the server accepted the connection.".into(),
            next: "Check the request and its answer.".into(),
        },
        Handshake::SynAckNotAcked => Explanation {
            what: format!(
                "{} answered {} SYN(s) from {} with SYN-ACK, but the client never acknowledged it.",
                c.server, c.syn_attempts, c.client
            ),
            meaning: format!(
                "The server accepted the connection; the handshake stalled on the client's side: \
                 the SYN-ACK did not reach the device (a firewall or NAT on its way back, \
                 asymmetric routing), the device dropped it, or the capture point missed the \
                 device's ACK. No event from this attempt was delivered.{}",
                if c.closed == CloseKind::Open {
                    " The connection was still open when the capture ended: if it stopped right \
                     after the SYN-ACK, the ACK may simply not be in it (uncertain)."
                } else {
                    ""
                }
            ),
            next: "Look on the device's side: firewalls and NAT between the server and the device \
                   for the return path, the device's gateway and routes; capture at the device's \
                   port to see whether the SYN-ACK arrives there."
                .into(),
        },
        Handshake::ClientReset => Explanation {
            what: format!(
                "{} answered the SYN from {} with SYN-ACK, and the client reset the connection \
                 instead of completing it.",
                c.server, c.client
            ),
            meaning: "The server accepted the connection; the client side refused the SYN-ACK: \
                      the device had already given up on that attempt, or something between \
                      them (firewall, NAT, a scanner's raw socket) answers for it. No event from \
                      this attempt was delivered."
                .into(),
            next: "Look on the device's side: its connection timeout and network path, and \
                   firewalls or NAT that could reset connections on its behalf."
                .into(),
        },
        Handshake::OneSided => {
            let acked = c.one_sided.as_ref().map_or(0, |o| o.peer_bytes_acked);
            Explanation {
                what: format!(
                    "Only {}'s packets were captured; its ACKs prove that {} answered the SYN \
                     (and sent {acked} bytes after it).",
                    c.client, c.server
                ),
                meaning: "One-sided capture: the server's packets did not pass the capture point \
                          (a mirror port or filter that sees one direction, asymmetric routing). \
                          The handshake completed; answers to the requests are not in the \
                          capture, so whether they were 200 OK cannot be told."
                    .into(),
                next: "Capture where both directions pass (on the alarm server itself, or a \
                       mirror of both directions of the switch port)."
                    .into(),
            }
        }
        Handshake::Unanswered => Explanation {
            what: format!(
                "{} sent {} SYN(s) to {} and nothing answered.",
                c.client, c.syn_attempts, c.server
            ),
            meaning: "Nothing accepted the connection at that address: the server is not listening \
                      or not reachable, a firewall drops the SYN, or the IP/port in the device's \
                      httpHosts is wrong. No event from this attempt was delivered."
                .into(),
            next: "Check the server address and port on the device (alarmscope device get), that \
                   the alarm server runs and listens on that port, and firewalls on the way."
                .into(),
        },
        Handshake::Refused => Explanation {
            what: format!("{} answered the SYN from {} with RST.", c.server, c.client),
            meaning: "The server host is reachable but nothing listens on that port (or a firewall \
                      rejects it). No event from this attempt was delivered."
                .into(),
            next: "Start the alarm server on that port, or correct the port in the device's httpHosts."
                .into(),
        },
        Handshake::NotSeen => Explanation {
            what: "The capture began after this connection was opened.".into(),
            meaning: "The handshake cannot be judged; the exchanges on it can.".into(),
            next: "Start the capture before the device sends to see the whole exchange.".into(),
        },
    }
}

/// Explain an exchange's verdict, with the stall it caused when there is one.
pub fn explain_verdict(c: &Connection, ex: &Exchange, stall_seconds: Option<f64>) -> Explanation {
    let stall = match stall_seconds {
        Some(s) => format!(" In this capture the device's next request came {s:.1} s later."),
        None => String::new(),
    };
    if let Some(tls) = &ex.encrypted {
        return explain_encrypted(c, ex.verdict, tls, &stall);
    }
    // A plain request the server answered as a TLS server: that is the reason, not the server.
    if let (Verdict::NoResponse, Some(f)) = (
        ex.verdict,
        c.tls_problems()
            .find(|f| matches!(f, TlsFinding::PlainHttpToTlsServer { .. })),
    ) {
        let e = explain_tls_finding(f);
        return Explanation {
            what: format!(
                "The request was complete but no HTTP answer came. {}",
                e.what
            ),
            meaning: format!("{}{stall}", e.meaning),
            next: e.next,
        };
    }
    match ex.verdict {
        Verdict::Ok => Explanation {
            what: format!(
                "The server answered 200 OK after {:.1} ms.",
                ex.response.as_ref().map(|r| r.latency_ms).unwrap_or(0.0)
            ),
            meaning: "The event was delivered; the device can send its next one.".into(),
            next: if ex.event.is_none() {
                "The body held no recognisable event: check the device's parameterFormatType and \
                 what the server expects."
                    .into()
            } else {
                "Nothing to do for this exchange.".into()
            },
        },
        Verdict::ErrorStatus => {
            let (status, reason) = ex
                .response
                .as_ref()
                .map(|r| (r.status, r.reason.clone()))
                .unwrap_or((0, String::new()));
            let framing = ex.notes.iter().find_map(|n| match n {
                ExchangeNote::RequestFraming { error, .. } => Some(error),
                _ => None,
            });
            let framing_hint;
            let hint = match status {
                _ if framing.is_some() => {
                    framing_hint = format!(
                        "the request itself is invalid ({}): the server cannot tell where its \
                         body ends",
                        framing.map(|e| e.to_string()).unwrap_or_default()
                    );
                    framing_hint.as_str()
                }
                101 => {
                    "the request asked to switch protocols (Upgrade) and the server agreed: the \
                     rest of the connection is that protocol, not HTTP"
                }
                404 => {
                    "the URL on the device does not match what the server serves (check the \
                        httpHosts url)"
                }
                401 | 403 => {
                    "the server wants credentials the device does not send (check \
                              httpAuthenticationMethod and the user name)"
                }
                400 | 415 | 422 => {
                    "the server did not accept the body's format (XML vs JSON: \
                                    check parameterFormatType)"
                }
                413 => "the server's body size limit is below the event with its pictures",
                500..=599 => "the server failed while handling the event (see the server's log)",
                _ => "the server rejected the event",
            };
            Explanation {
                what: if framing.is_some() {
                    format!("The server rejected a malformed request with {status} {reason}.")
                } else {
                    format!("The server answered {status} {reason} instead of 200 OK.")
                },
                meaning: format!(
                    "Without 200 OK the device treats the event as not delivered: it waits, \
                     retries, and holds its later events.{stall}"
                ),
                next: format!("Likely cause: {hint}."),
            }
        }
        Verdict::NotCaptured if c.one_sided.is_some() => {
            let bytes = c.answer_bytes_acked(ex.index).unwrap_or(0);
            Explanation {
                what: format!(
                    "Answer not captured (one-sided capture; the client acknowledged {bytes} \
                     response bytes after this request)."
                ),
                meaning: "The server did answer, but its packets are not in the capture: whether \
                          the answer was 200 OK cannot be told (uncertain)."
                    .into(),
                next: "Capture where both directions pass (on the alarm server itself, or a \
                       mirror of both directions) to see the status."
                    .into(),
            }
        }
        Verdict::NoResponse if c.one_sided.is_some() => Explanation {
            what: "No answer in the capture, and none proven: the capture holds only one side's \
                   packets and the client acknowledged no response bytes after this request."
                .into(),
            meaning: format!(
                "Uncertain: with a one-sided capture an answer may still have been lost on its way \
                 or never sent.{stall}"
            ),
            next: "Capture where both directions pass to tell whether the server answered.".into(),
        },
        Verdict::NoResponse => {
            let how = match c.closed {
                CloseKind::Fin(Side::Client) | CloseKind::Rst(Side::Client) => {
                    "the device gave up and closed the connection"
                }
                CloseKind::Fin(Side::Server) | CloseKind::Rst(Side::Server) => {
                    "the server closed the connection without answering"
                }
                CloseKind::Open => "the capture ended while the device was still waiting",
            };
            Explanation {
                what: format!("The request was complete but no answer came: {how}."),
                meaning: format!(
                    "No 200 OK: the device will wait, retry, and hold its later events.{stall}"
                ),
                next: "Check that the alarm server reads the whole body and answers every POST \
                       with 200 OK promptly (some servers only answer after processing pictures, \
                       or not at all on errors)."
                    .into(),
            }
        }
        Verdict::NotCaptured => Explanation {
            what: "The answer was not captured: server bytes sent after this request are missing \
                   from the capture (a capture gap, or the capture began in the middle of an \
                   answer), and no answer was seen after them."
                .into(),
            meaning: "Uncertain: the server may have answered 200 OK in the lost bytes, or not at \
                      all. Later requests on the connection are paired with the answers seen \
                      after the loss."
                .into(),
            next: "Capture again from before the device sends, on the server itself if possible, \
                   with a buffer large enough that the capture drops nothing."
                .into(),
        },
        Verdict::MalformedResponse => {
            let why = ex
                .notes
                .iter()
                .find_map(|n| match n {
                    ExchangeNote::MalformedResponse { error, .. } => Some(error.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| "its head could not be read".into());
            Explanation {
                what: format!("The server answered, but the answer is unreadable: {why}."),
                meaning: format!(
                    "A device cannot read a 200 OK in it either: it treats the event as not \
                     delivered, retries, and holds its later events.{stall}"
                ),
                next: "Fix the alarm server's response: a status line `HTTP/1.1 200 OK` with a \
                       three-digit status, CRLF line ends, valid header fields."
                    .into(),
            }
        }
        // Only encrypted exchanges carry this verdict (handled above); kept for completeness.
        Verdict::EncryptedAnswered => Explanation {
            what: "The server answered inside TLS.".into(),
            meaning: "Its status cannot be read without the session keys.".into(),
            next: "Give alarmscope the key log, or check the alarm server's log.".into(),
        },
        Verdict::Incomplete => {
            let why = if let Some(e) = &ex.request.error {
                format!("it could not be framed ({e})")
            } else if ex.request.missing_bytes > 0 {
                format!(
                    "{} bytes of it are missing from the capture",
                    ex.request.missing_bytes
                )
            } else {
                match c.closed {
                    CloseKind::Rst(Side::Server) => {
                        "the server reset the connection mid-request".into()
                    }
                    CloseKind::Rst(Side::Client) => {
                        "the device reset the connection mid-request".into()
                    }
                    CloseKind::Fin(_) => "the connection closed mid-request".into(),
                    CloseKind::Open => "the capture ended mid-request".into(),
                }
            };
            Explanation {
                what: format!("The request never finished: {why}."),
                meaning: format!("The event was not delivered.{stall}"),
                next: "Look for resets from a proxy or firewall, a server body size limit, or a \
                       capture that missed packets (snap length, drops)."
                    .into(),
            }
        }
    }
}

/// Explain an exchange inferred from TLS record timing (no keys: no status).
fn explain_encrypted(
    c: &Connection,
    verdict: Verdict,
    tls: &TlsExchange,
    stall: &str,
) -> Explanation {
    let req = format!(
        "{} encrypted request record(s), {} bytes",
        tls.request_records, tls.request_bytes
    );
    let doubt = match tls.uncertain {
        Some(Uncertainty::MaySessionTickets) => {
            " Uncertain: TLS 1.3 servers send session tickets after the handshake, and server records of the tickets' size were taken for tickets; one of them may have been the answer."
        }
        Some(Uncertainty::CaptureGap) => {
            " Uncertain: bytes of this connection are missing from the capture during it."
        }
        Some(Uncertainty::CaptureEnded) => {
            " Uncertain: the capture ended (or the connection was dropped from the table) while the device was waiting."
        }
        None => "",
    };
    match (verdict, &tls.response) {
        (Verdict::EncryptedAnswered, Some(r)) => Explanation {
            what: format!(
                "HTTPS: {req}; the server answered with {} record(s), {} bytes, after {:.1} ms.",
                r.records, r.bytes, r.latency_ms
            ),
            meaning: format!(
                "The server answered, but the answer is encrypted: whether it was 200 OK cannot be told from the records (a 400 or 401 looks the same).{doubt}"
            ),
            next: "To read the status, give alarmscope the TLS key log of the session (the server's SSLKEYLOGFILE), or look in the alarm server's log."
                .into(),
        },
        (Verdict::NotCaptured, _) => Explanation {
            what: format!(
                "HTTPS: {req}; no answer seen, and bytes of the connection are missing from the capture after it."
            ),
            meaning: "Uncertain: the server may have answered in the lost bytes.".into(),
            next: "Capture again on the server itself, with a buffer large enough that the capture drops nothing."
                .into(),
        },
        _ => {
            let how = match c.closed {
                CloseKind::Fin(Side::Client) | CloseKind::Rst(Side::Client) => {
                    "the device gave up and closed the connection"
                }
                CloseKind::Fin(Side::Server) | CloseKind::Rst(Side::Server) => {
                    "the server closed the connection without answering"
                }
                CloseKind::Open => "the capture ended while the device was still waiting",
            };
            Explanation {
                what: format!(
                    "HTTPS: {req} after a completed TLS handshake; no encrypted answer came: {how}."
                ),
                meaning: format!(
                    "No answer at all (not even an error): the device will wait, retry, and hold its later events.{doubt}{stall}"
                ),
                next: "Check that the alarm server reads the whole body and answers every POST with 200 OK promptly; its log shows what it did with the request."
                    .into(),
            }
        }
    }
}

/// Explain a TLS finding that is a problem (a problem row: HTTPS/HTTP mismatch, handshake
/// failure, old TLS versions); other findings get their own text as `what`.
pub fn explain_tls_finding(f: &TlsFinding) -> Explanation {
    match f {
        TlsFinding::TlsToPlainServer { .. } => Explanation {
            what: format!("{}.", capitalised(f)),
            meaning: "The server cannot read the device's TLS hello: no event sent on this slot \
                      can arrive."
                .into(),
            next: "Set the device's alarm host to HTTP (alarmscope device set --protocol HTTP), or enable HTTPS on the server's port."
                .into(),
        },
        TlsFinding::PlainHttpToTlsServer { .. } => Explanation {
            what: format!("{}.", capitalised(f)),
            meaning: "The server waits for a TLS handshake and cannot read a plain request: no \
                      event sent on this slot can arrive."
                .into(),
            next: "Set the device's alarm host to HTTPS (alarmscope device set --protocol HTTPS), or serve plain HTTP on that port."
                .into(),
        },
        TlsFinding::HandshakeAlert { by, .. } | TlsFinding::ClosedDuringHandshake { by, .. } => {
            let who = match by {
                Side::Client => {
                    "Check the server's certificate (issuer, host name, dates) against the device's trusted CAs and clock; import the CA into the device, or use a certificate the device trusts."
                }
                Side::Server => {
                    "Check the server's TLS settings (versions, cipher suites, certificate for the host name the device asks for) and its log."
                }
            };
            Explanation {
                what: format!("{}.", capitalised(f)),
                meaning: "Without a completed handshake there is no encrypted channel: no event \
                          sent this way can arrive."
                    .into(),
                next: who.into(),
            }
        }
        TlsFinding::OnlyOldVersionsOffered { .. } => Explanation {
            what: format!("{}.", capitalised(f)),
            meaning: "Servers that refuse these versions end the handshake: the device's events \
                      cannot arrive there."
                .into(),
            next: "Update the device's firmware, or allow the old version on the server.".into(),
        },
        other => Explanation {
            what: format!("{}.", capitalised(other)),
            meaning: "A capture or parsing note: it does not explain lost events by itself."
                .into(),
            next: "Nothing to do unless other findings point here.".into(),
        },
    }
}

/// A finding's text with its first letter in upper case, to start a sentence.
fn capitalised(f: &TlsFinding) -> String {
    let text = f.to_string();
    let mut c = text.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Request;
    use crate::tcp::{AckedAnswer, OneSided};
    use crate::time::Timestamp;

    fn conn(handshake: Handshake) -> Connection {
        Connection {
            id: 1,
            client: "10.0.0.5:50000".into(),
            server: "10.0.0.1:8080".into(),
            handshake,
            one_sided: None,
            syn_attempts: 3,
            closed: CloseKind::Open,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            packets: 4,
            gap_bytes: [0, 0],
            retransmissions: 0,
            truncated_frames: 0,
            errors: Vec::new(),
            exchanges: Vec::new(),
            timeline: Vec::new(),
            upgrade: None,
            upgraded_bytes: [0, 0],
            tls: None,
            tls_findings: Vec::new(),
            decryption: None,
            handshake_uncertain: None,
        }
    }

    #[test]
    fn server_answered_handshakes_are_not_explained_as_unanswered() {
        let unanswered = explain_handshake(&conn(Handshake::Unanswered));
        for hs in [
            Handshake::SynAckNotAcked,
            Handshake::ClientReset,
            Handshake::OneSided,
        ] {
            let e = explain_handshake(&conn(hs));
            assert_ne!(e.what, unanswered.what, "{hs:?}");
            assert_ne!(e.meaning, unanswered.meaning, "{hs:?}");
        }
    }

    #[test]
    fn not_captured_answer_names_the_bytes_the_client_acknowledged() {
        let mut c = conn(Handshake::OneSided);
        c.one_sided = Some(OneSided {
            captured: Side::Client,
            peer_bytes_acked: 3239,
            answers_acked: vec![AckedAnswer {
                index: 0,
                bytes: 3239,
            }],
        });
        let mut ex = Exchange::started(0, Request::default());
        ex.verdict = Verdict::NotCaptured;
        let e = explain_verdict(&c, &ex, None);
        assert!(e.what.contains("3239"), "{}", e.what);
        // Not the "device gave up" story of a real no_response.
        ex.verdict = Verdict::NoResponse;
        let plain = explain_verdict(&conn(Handshake::Complete), &ex, None);
        assert_ne!(e.what, plain.what);
        // A one-sided no_response is told as uncertain, not as the device giving up.
        let one_sided = explain_verdict(&c, &ex, None);
        assert_ne!(one_sided.what, plain.what);
    }
}
