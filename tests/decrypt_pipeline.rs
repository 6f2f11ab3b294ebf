//! The pipeline with a key log (`replay --keylog`) when the capture lost encrypted bytes: a
//! recorded HTTPS push (samples/https-tls12.pcap, TLS 1.2 AES-GCM) replayed with its key log,
//! with the server's one application-data segment (frame 13, the encrypted `HTTP/1.1 200 OK`,
//! as tshark decrypts it with the same key log) dropped. The request is still read from the
//! plaintext, but its answer may be in the lost bytes: uncertain, never a confident no_response.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alarmscope::capture::file::CaptureFile;
use alarmscope::model::{Connection, ConnectionError, Verdict};
use alarmscope::pipeline::{Analyzer, PipelineConfig};
use alarmscope::tls::decrypt::{DecryptFinding, GapOutcome};
use alarmscope::tls::{DecryptStatus, KeyLog, SharedKeys};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// Replay `name` with `keys`, leaving out the frames numbered in `drop` (1-based).
fn replay(name: &str, keys: &str, drop: &[u64]) -> Vec<Connection> {
    replay_edited(name, keys, drop, &[])
}

/// As [`replay`], and with the last byte of each frame numbered in `corrupt` flipped (a byte of
/// the TLS record's authentication tag: the record no longer authenticates).
fn replay_edited(name: &str, keys: &str, drop: &[u64], corrupt: &[u64]) -> Vec<Connection> {
    let text = std::fs::read(samples_dir().join(keys)).unwrap();
    let config = PipelineConfig {
        keys: Some(SharedKeys(Arc::new(KeyLog::parse(&text)))),
        ..PipelineConfig::default()
    };
    let mut an = Analyzer::new(config);
    let mut file = CaptureFile::open(&samples_dir().join(name)).unwrap();
    let mut n = 0;
    while let Some(fr) = file.next_frame().unwrap() {
        n += 1;
        if drop.contains(&n) {
            continue;
        }
        let mut data = fr.data.to_vec();
        if corrupt.contains(&n) {
            *data.last_mut().unwrap() ^= 1;
        }
        an.frame(n, fr.ts, fr.link, &data, fr.orig_len);
    }
    an.finish().0
}

#[test]
fn a_lost_encrypted_answer_leaves_the_decrypted_request_uncertain() {
    // Whole: the push is read and answered 200 (the control for the case below).
    let whole = replay("https-tls12.pcap", "https-tls12.keys", &[]);
    let v: Vec<_> = whole[0]
        .exchanges
        .iter()
        .map(|e| {
            (
                e.verdict,
                e.decrypted,
                e.response.as_ref().map(|r| r.status),
            )
        })
        .collect();
    assert_eq!(v, [(Verdict::Ok, true, Some(200))]);

    let conns = replay("https-tls12.pcap", "https-tls12.keys", &[13]);
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(
        c.decryption.as_ref().map(|d| d.status),
        Some(DecryptStatus::Decrypting)
    );
    let rows: Vec<_> = c
        .exchanges
        .iter()
        .map(|e| {
            (
                e.request.method.as_str(),
                e.decrypted,
                e.encrypted.is_some(),
                e.event.as_ref().and_then(|x| x.event_type.as_deref()),
                e.verdict,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [("POST", true, false, Some("VMD"), Verdict::NotCaptured)],
        "{:?}",
        c.exchanges
    );
}

#[test]
fn a_key_log_of_other_sessions_keeps_the_keyless_rows_and_says_why() {
    let conns = replay("https-tls12.pcap", "https-tls13.keys", &[]);
    let c = &conns[0];
    let d = c
        .decryption
        .as_ref()
        .expect("a decryption report with a key log");
    assert_eq!(d.status, DecryptStatus::NotDecrypted);
    assert!(
        d.findings.iter().any(|f| matches!(
            f,
            alarmscope::tls::decrypt::DecryptFinding::KeyNotInLog { .. }
        )),
        "{:?}",
        d.findings
    );
    let v: Vec<_> = c
        .exchanges
        .iter()
        .map(|e| (e.verdict, e.decrypted, e.encrypted.is_some()))
        .collect();
    assert_eq!(v, [(Verdict::EncryptedAnswered, false, true)]);
}

#[test]
fn plain_http_replayed_with_a_key_log_is_not_marked_decrypted() {
    let conns = replay("xml-ok.pcap", "https-ok.keys", &[]);
    assert!(!conns.is_empty());
    for c in &conns {
        assert!(c.decryption.is_none(), "{:?}", c.decryption);
        assert!(!c.exchanges.is_empty());
        assert!(c
            .exchanges
            .iter()
            .all(|e| !e.decrypted && e.verdict == Verdict::Ok));
    }
}

/// Offsets after a capture gap inside an encrypted stream. `https-keepalive.pcap` (TLS 1.3, three
/// pushes on one connection) without frame 17 (the client's record at TCP stream offset 1387, 207
/// bytes: tshark's `tcp.seq` 1388 and `tcp.len` 207) and with frame 22's record (stream offset
/// 2669, `tcp.seq` 2670) damaged: the gap finding is at 1387 and resynchronises on the next
/// record, and the damaged record is located at its TCP stream offset, the gap's bytes counted.
#[test]
fn findings_after_a_gap_in_an_encrypted_stream_keep_their_tcp_stream_offsets() {
    let conns = replay_edited("https-keepalive.pcap", "https-keepalive.keys", &[17], &[22]);
    let d = conns[0].decryption.as_ref().unwrap();
    let located: Vec<_> = d
        .findings
        .iter()
        .filter_map(|f| match f {
            DecryptFinding::Gap {
                offset,
                bytes,
                outcome,
                ..
            } => Some(("gap", *offset, Some(*bytes), Some(*outcome))),
            DecryptFinding::AuthFailed { offset, first, .. } => {
                assert!(!first, "records before it authenticated");
                Some(("auth_failed", *offset, None, None))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        located,
        [
            (
                "gap",
                1387,
                Some(207),
                Some(GapOutcome::Resynced {
                    skipped: 0,
                    records_lost: 1
                })
            ),
            ("auth_failed", 2669, None, None)
        ]
    );
}

/// HTTP offsets of the plaintext after a hole of unknown length stay finite. `https-tls12.pcap`
/// without frame 10 (the client's first application-data record, 230 bytes: the request head):
/// the decryptor resynchronises on the next record, whose plaintext (the body) is not an HTTP
/// start. That error is located after the hole: at most its 230 bytes (ciphertext, an upper
/// bound of the plaintext) and at least 230 - 29 (one TLS 1.2 AES-GCM record's header, explicit
/// nonce and tag), never pinned at u64::MAX.
#[test]
fn http_offsets_after_a_hole_of_unknown_length_stay_finite() {
    let conns = replay("https-tls12.pcap", "https-tls12.keys", &[10]);
    let c = &conns[0];
    let offsets: Vec<u64> = c
        .errors
        .iter()
        .filter_map(|e| match e {
            ConnectionError::RequestStream(e) => Some(e.offset),
            _ => None,
        })
        .collect();
    assert_eq!(offsets.len(), 1, "{:?}", c.errors);
    assert!((201..=230).contains(&offsets[0]), "{offsets:?}");
}
