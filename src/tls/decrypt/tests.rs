//! Unit tests of the decryptor on hand-built TLS 1.3 and 1.2 connections. The builders write
//! the wire format of RFC 8446/5246 and seal records with `ring` directly (keys from the same
//! HKDF-Expand-Label / PRF, which keys.rs checks against RFC vectors), so each test knows the
//! plaintext it put in.

use std::sync::Arc;

use proptest::prelude::*;
use ring::aead;

use super::keys::{expand_label, prf, Hash};
use super::*;
use crate::tls::keylog::KeyLog;

const C: Direction = Direction::ClientToServer;
const S: Direction = Direction::ServerToClient;
const CR: [u8; 32] = [0x11; 32];
const SR: [u8; 32] = [0x22; 32];

fn t(ms: i64) -> Timestamp {
    Timestamp(ms * 1_000_000)
}

fn record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct, 3, 3];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn hs(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![msg_type, 0];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn client_hello(random: [u8; 32], suite: u16) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&random);
    b.push(0); // session id
    b.extend_from_slice(&[0, 2]);
    b.extend_from_slice(&suite.to_be_bytes());
    b.extend_from_slice(&[1, 0]); // null compression
    b.extend_from_slice(&[0, 0]); // no extensions
    record(22, &hs(1, &b))
}

fn server_hello(random: [u8; 32], suite: u16, tls13: bool) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&random);
    b.push(0);
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    if tls13 {
        b.extend_from_slice(&[0, 6, 0x00, 0x2b, 0, 2, 3, 4]); // supported_versions: 1.3
    } else {
        b.extend_from_slice(&[0, 0]);
    }
    record(22, &hs(2, &b))
}

/// Seals records of one direction (TLS 1.3 layout, or TLS 1.2 GCM).
struct Sealer {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    tls12: bool,
}

impl Sealer {
    fn tls13(alg: &'static aead::Algorithm, hash: Hash, secret: &[u8]) -> Sealer {
        let key = expand_label(hash, secret, b"key", alg.key_len()).unwrap();
        let iv = expand_label(hash, secret, b"iv", 12).unwrap();
        Sealer {
            key: aead::LessSafeKey::new(aead::UnboundKey::new(alg, &key).unwrap()),
            iv: iv.try_into().unwrap(),
            seq: 0,
            tls12: false,
        }
    }

    /// TLS 1.2 AES-128-GCM keys of both directions from a master secret.
    fn tls12_pair(master: &[u8]) -> (Sealer, Sealer) {
        let block = prf(Hash::Sha256, master, b"key expansion", &[&SR, &CR], 40);
        let mk = |k: &[u8], iv: &[u8]| {
            let mut full = [0u8; 12];
            full[..4].copy_from_slice(iv);
            Sealer {
                key: aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, k).unwrap()),
                iv: full,
                seq: 0,
                tls12: true,
            }
        };
        (
            mk(&block[..16], &block[32..36]),
            mk(&block[16..32], &block[36..40]),
        )
    }

    /// One record of inner type `ct` holding `content` (TLS 1.3: `pad` zero bytes of padding).
    fn seal(&mut self, ct: u8, content: &[u8], pad: usize) -> Vec<u8> {
        let seq = self.seq;
        self.seq += 1;
        let mut nonce = self.iv;
        if self.tls12 {
            nonce[4..].copy_from_slice(&seq.to_be_bytes());
            let mut aad = seq.to_be_bytes().to_vec();
            aad.extend_from_slice(&[ct, 3, 3]);
            aad.extend_from_slice(&(content.len() as u16).to_be_bytes());
            let mut body = content.to_vec();
            self.key
                .seal_in_place_append_tag(
                    aead::Nonce::assume_unique_for_key(nonce),
                    aead::Aad::from(aad),
                    &mut body,
                )
                .unwrap();
            let mut full = seq.to_be_bytes().to_vec();
            full.extend_from_slice(&body);
            return record(ct, &full);
        }
        for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        let mut inner = content.to_vec();
        inner.push(ct);
        inner.extend(std::iter::repeat_n(0, pad));
        let len = (inner.len() + 16) as u16;
        let hdr = [23, 3, 3, (len >> 8) as u8, len as u8];
        self.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(hdr),
                &mut inner,
            )
            .unwrap();
        record(23, &inner)
    }
}

const SECRETS: [(&str, u8); 4] = [
    ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", 0xa1),
    ("SERVER_HANDSHAKE_TRAFFIC_SECRET", 0xa2),
    ("CLIENT_TRAFFIC_SECRET_0", 0xa3),
    ("SERVER_TRAFFIC_SECRET_0", 0xa4),
];

fn tls13_keylog(random: [u8; 32]) -> Arc<KeyLog> {
    let text: String = SECRETS
        .iter()
        .map(|(l, b)| format!("{l} {} {}\n", hex::encode(random), hex::encode([*b; 32])))
        .collect();
    Arc::new(KeyLog::parse(text.as_bytes()))
}

/// A TLS 1.3 AES-128-GCM connection: the sealers of both directions per epoch.
struct Conn13 {
    chs: Sealer,
    shs: Sealer,
    capp: Sealer,
    sapp: Sealer,
}

fn conn13() -> Conn13 {
    let s = |b: u8| Sealer::tls13(&aead::AES_128_GCM, Hash::Sha256, &[b; 32]);
    Conn13 {
        chs: s(0xa1),
        shs: s(0xa2),
        capp: s(0xa3),
        sapp: s(0xa4),
    }
}

const REQUEST: &[u8] = b"POST /alarm HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/// The handshake of a TLS 1.3 connection as (direction, bytes): hellos, the server's
/// encrypted flight (EncryptedExtensions + Finished), the client's compatibility CCS and
/// Finished.
fn handshake13(c: &mut Conn13) -> Vec<(Direction, Vec<u8>)> {
    let mut flight = hs(8, &[0, 0]);
    flight.extend(hs(20, &[7; 32]));
    vec![
        (C, client_hello(CR, 0x1301)),
        (S, server_hello(SR, 0x1301, true)),
        (S, c.shs.seal(22, &flight, 0)),
        (C, record(20, &[1])),
        (C, c.chs.seal(22, &hs(20, &[9; 32]), 0)),
    ]
}

#[derive(Debug, Default, PartialEq)]
struct Out {
    plain: [Vec<u8>; 2],
    gaps: Vec<(Direction, u64, bool)>,
    stopped: Vec<Direction>,
    findings: Vec<DecryptFinding>,
    /// Each plaintext's record: direction and TCP stream range.
    records: Vec<(Direction, std::ops::Range<u64>)>,
}

impl Out {
    fn sink(&mut self) -> impl FnMut(DecryptEvent<'_>) + '_ {
        move |ev| match ev {
            DecryptEvent::Plain {
                dir, bytes, record, ..
            } => {
                self.plain[idx(dir)].extend_from_slice(bytes);
                self.records.push((dir, record));
            }
            DecryptEvent::Gap {
                dir, bytes, exact, ..
            } => self.gaps.push((dir, bytes, exact)),
            DecryptEvent::Stopped { dir, .. } => self.stopped.push(dir),
            DecryptEvent::Finding(f) => self.findings.push(f),
        }
    }

    fn kinds(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|f| {
                let tag = serde_json::to_value(f).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_eq!(f.kind(), tag, "kind() is the JSON kind");
                tag
            })
            .collect()
    }
}

fn run(keys: Arc<KeyLog>, steps: &[(Direction, Vec<u8>)]) -> (Out, TlsDecryptor) {
    let mut dec = TlsDecryptor::new(DecryptConfig::default(), keys);
    let mut out = Out::default();
    for (i, (dir, b)) in steps.iter().enumerate() {
        dec.data(*dir, t(i as i64), b, &mut out.sink());
    }
    (out, dec)
}

#[test]
fn tls13_handshake_then_request_and_answer_decrypt() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    steps.push((C, c.capp.seal(23, REQUEST, 0)));
    // Padding is stripped with the inner content type.
    steps.push((S, c.sapp.seal(23, ANSWER, 40)));
    let (out, dec) = run(tls13_keylog(CR), &steps);
    assert_eq!(out.plain, [REQUEST.to_vec(), ANSWER.to_vec()]);
    assert_eq!(out.findings, vec![]);
    assert_eq!(dec.status(), DecryptStatus::Decrypting);
    let r = dec.finish();
    assert_eq!(r.stats.client_to_server.decrypted, 2);
    assert_eq!(
        r.stats.server_to_client.plaintext_bytes,
        ANSWER.len() as u64
    );
}

/// Each plaintext names its record's stream range (what the follow view hides in its place):
/// the records' bytes as sent, counted from each direction's first byte.
#[test]
fn plaintext_names_its_records_stream_range() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    steps.push((C, c.capp.seal(23, REQUEST, 0)));
    steps.push((S, c.sapp.seal(23, ANSWER, 40)));
    steps.push((C, c.capp.seal(23, b"second", 3)));
    let mut want = Vec::new();
    let mut at = [0u64, 0u64];
    for (i, (dir, b)) in steps.iter().enumerate() {
        let (start, len) = (at[idx(*dir)], b.len() as u64);
        at[idx(*dir)] += len;
        if i >= 5 {
            want.push((*dir, start..start + len));
        }
    }
    let (out, _) = run(tls13_keylog(CR), &steps);
    assert_eq!(out.records, want);
}

#[test]
fn tls13_key_update_is_followed() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    steps.push((S, c.sapp.seal(23, b"HTTP/1.1 ", 0)));
    steps.push((S, c.sapp.seal(22, &hs(24, &[0]), 0)));
    let next = expand_label(Hash::Sha256, &[0xa4; 32], b"traffic upd", 32).unwrap();
    let mut updated = Sealer::tls13(&aead::AES_128_GCM, Hash::Sha256, &next);
    steps.push((S, updated.seal(23, b"200 OK\r\n\r\n", 0)));
    let (out, _) = run(tls13_keylog(CR), &steps);
    assert_eq!(out.plain[1], b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(out.kinds(), vec!["key_update"]);
}

#[test]
fn decrypted_alerts_and_malformed_plaintext_are_findings() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    steps.push((S, c.sapp.seal(21, &[2, 80], 0)));
    // Inner plaintext of only zeros (no content type), sealed by hand.
    let seq = c.sapp.seq;
    c.sapp.seq += 1;
    let mut nonce = c.sapp.iv;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    let mut inner = vec![0u8; 4];
    let hdr = [23, 3, 3, 0, 20];
    c.sapp
        .key
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(hdr),
            &mut inner,
        )
        .unwrap();
    steps.push((S, record(23, &inner)));
    let (out, _) = run(tls13_keylog(CR), &steps);
    match &out.findings[..] {
        [DecryptFinding::Alert {
            by: Side::Server,
            level,
            description,
            ..
        }, DecryptFinding::MalformedPlaintext { dir: S, record, .. }] => {
            assert_eq!(*level, AlertLevel::FATAL);
            assert_eq!(*description, AlertDescription::INTERNAL_ERROR);
            // hello, flight, alert, this one.
            assert_eq!(*record, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(out.findings[0].is_problem());
}

#[test]
fn a_gap_inside_one_record_loses_that_record_only() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    let lost = c.capp.seal(23, b"lost part ", 0);
    let kept = c.capp.seal(23, REQUEST, 0);
    let (mut out, mut dec) = run(tls13_keylog(CR), &std::mem::take(&mut steps));
    // The record's header and 3 bytes arrive, 10 bytes are missing, the rest arrives.
    dec.data(C, t(10), &lost[..8], &mut out.sink());
    dec.gap(C, t(11), 10, &mut out.sink());
    dec.data(C, t(12), &lost[18..], &mut out.sink());
    dec.data(C, t(13), &kept, &mut out.sink());
    assert_eq!(out.plain[0], REQUEST);
    match &out.findings[..] {
        [DecryptFinding::Gap {
            dir: C,
            bytes: 10,
            outcome: GapOutcome::RecordLost { record: 3 },
            ..
        }] => {}
        other => panic!("{other:?}"),
    }
    // TLS 1.3: padding makes the lost plaintext's length an upper bound.
    assert_eq!(out.gaps, vec![(C, (lost.len() - 5 - 16) as u64, false)]);
}

#[test]
fn a_gap_across_records_resyncs_only_on_an_authenticated_record() {
    let mut c = conn13();
    let steps = handshake13(&mut c);
    let a = c.capp.seal(23, b"first ", 0);
    let b = c.capp.seal(23, b"second ", 0);
    let third = c.capp.seal(23, REQUEST, 0);
    let (mut out, mut dec) = run(tls13_keylog(CR), &steps);
    // Half of `a`, then a gap hiding its end and the start of `b`, then the rest of `b` (whose
    // bytes may look like headers) and `third`.
    dec.data(C, t(10), &a[..9], &mut out.sink());
    let missing = (a.len() - 9) + 6;
    dec.gap(C, t(11), missing as u64, &mut out.sink());
    dec.data(C, t(12), &b[6..], &mut out.sink());
    dec.data(C, t(13), &third, &mut out.sink());
    assert_eq!(out.plain[0], REQUEST);
    match &out.findings[..] {
        [DecryptFinding::Gap {
            outcome:
                GapOutcome::Resynced {
                    skipped,
                    records_lost: 1,
                },
            ..
        }] => assert_eq!(*skipped, (b.len() - 6) as u64),
        other => panic!("{other:?}"),
    }
    assert_eq!(out.gaps.len(), 1);
    assert!(out.stopped.is_empty());
}

#[test]
fn a_gap_followed_by_nothing_that_authenticates_stops_the_direction() {
    let mut c = conn13();
    let steps = handshake13(&mut c);
    let config = DecryptConfig {
        resync_window: 4096,
        ..DecryptConfig::default()
    };
    let mut dec = TlsDecryptor::new(config, tls13_keylog(CR));
    let mut out = Out::default();
    for (dir, b) in &steps {
        dec.data(*dir, t(0), b, &mut out.sink());
    }
    dec.gap(C, t(1), 100, &mut out.sink());
    // Plausible headers whose records do not authenticate, then noise.
    for _ in 0..200 {
        dec.data(C, t(2), &record(23, &[0x5a; 40]), &mut out.sink());
    }
    assert!(dec.buffered_bytes() <= 2 * (5 + MAX_BODY + (16 << 10)));
    dec.data(C, t(3), &c.capp.seal(23, REQUEST, 0), &mut out.sink());
    assert_eq!(out.plain[0], b"");
    assert_eq!(out.stopped, vec![C]);
    assert!(matches!(
        out.findings[..],
        [DecryptFinding::Gap {
            outcome: GapOutcome::Stopped,
            ..
        }]
    ));
    // The other direction goes on.
    dec.data(S, t(4), &c.sapp.seal(23, ANSWER, 0), &mut out.sink());
    assert_eq!(out.plain[1], ANSWER);
}

#[test]
fn resync_gives_up_after_a_bounded_number_of_candidate_records() {
    let mut c = conn13();
    let steps = handshake13(&mut c);
    let (mut out, mut dec) = run(tls13_keylog(CR), &steps);
    dec.gap(C, t(1), 100, &mut out.sink());
    // Far less than the 64 KiB window, but more candidates than the budget.
    for _ in 0..MAX_CANDIDATES - 1 {
        dec.data(C, t(2), &record(23, &[0x5a; 40]), &mut out.sink());
    }
    assert!(out.stopped.is_empty());
    dec.data(C, t(2), &record(23, &[0x5a; 40]), &mut out.sink());
    assert_eq!(out.stopped, vec![C]);
    assert!(matches!(
        out.findings[..],
        [DecryptFinding::Gap {
            outcome: GapOutcome::Stopped,
            ..
        }]
    ));
}

#[test]
fn refused_suites_missing_handshakes_and_keys_are_findings() {
    // TLS_AES_128_CCM_SHA256.
    let steps = vec![
        (C, client_hello(CR, 0x1304)),
        (S, server_hello(SR, 0x1304, true)),
        (S, record(23, &[0; 40])),
    ];
    let (out, dec) = run(tls13_keylog(CR), &steps);
    assert_eq!(dec.status(), DecryptStatus::NotDecrypted);
    match &out.findings[..] {
        [DecryptFinding::UnsupportedSuite {
            refusal: Refusal::Ccm,
            cipher_suite,
            ..
        }] => assert_eq!(cipher_suite.0, 0x1304),
        other => panic!("{other:?}"),
    }
    // Mid-connection capture: application data without hellos.
    let (out, dec) = run(tls13_keylog(CR), &[(C, record(23, &[0; 40]))]);
    assert_eq!(out.kinds(), vec!["no_handshake"]);
    assert_eq!(dec.status(), DecryptStatus::NotDecrypted);
    // A log with only the handshake secrets: the handshake decrypts, then the missing
    // application secret is named.
    let partial: String = SECRETS[..2]
        .iter()
        .map(|(l, b)| format!("{l} {} {}\n", hex::encode(CR), hex::encode([*b; 32])))
        .collect();
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    steps.push((C, c.capp.seal(23, REQUEST, 0)));
    let (out, _) = run(Arc::new(KeyLog::parse(partial.as_bytes())), &steps);
    match &out.findings[..] {
        [DecryptFinding::KeyNotInLog {
            label: Label::ClientTrafficSecret0,
            session_logged: true,
            ..
        }] => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(out.stopped, vec![C]);
}

#[test]
fn early_data_is_named_and_does_not_break_the_handshake_keys() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    // 0-RTT record right after the ClientHello, another after the ServerHello.
    let early = record(23, &[0x33; 30]);
    steps.insert(1, (C, early.clone()));
    steps.insert(3, (C, early));
    steps.push((C, c.capp.seal(23, REQUEST, 0)));
    let (out, _) = run(tls13_keylog(CR), &steps);
    assert_eq!(out.plain[0], REQUEST);
    assert_eq!(out.kinds(), vec!["early_data"]);
}

#[test]
fn hello_retry_request_keeps_the_first_random_and_waits_for_the_real_server_hello() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    let hrr_random = [
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
        0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
        0x33, 0x9c,
    ];
    steps.insert(1, (S, server_hello(hrr_random, 0x1301, true)));
    steps.insert(2, (C, client_hello([0x99; 32], 0x1301)));
    steps.push((C, c.capp.seal(23, REQUEST, 0)));
    let (out, _) = run(tls13_keylog(CR), &steps);
    assert_eq!(out.plain[0], REQUEST);
    assert_eq!(out.findings, vec![]);
}

#[test]
fn tls12_gcm_with_explicit_nonces_and_a_renegotiation() {
    let master = [0x42u8; 48];
    let keys = Arc::new(KeyLog::parse(
        format!(
            "CLIENT_RANDOM {} {}\n",
            hex::encode(CR),
            hex::encode(master)
        )
        .as_bytes(),
    ));
    let (mut cs, mut ss) = Sealer::tls12_pair(&master);
    let steps = vec![
        (C, client_hello(CR, 0xc02f)),
        (S, server_hello(SR, 0xc02f, false)),
        (C, record(20, &[1])),
        (C, cs.seal(22, &hs(20, &[1; 12]), 0)),
        (S, record(20, &[1])),
        (S, ss.seal(22, &hs(20, &[2; 12]), 0)),
        (C, cs.seal(23, REQUEST, 0)),
        (S, ss.seal(23, ANSWER, 0)),
        (S, ss.seal(21, &[1, 0], 0)),
        (C, record(20, &[1])),
        (C, cs.seal(23, b"after renegotiation", 0)),
    ];
    let (out, dec) = run(keys, &steps);
    assert_eq!(out.plain, [REQUEST.to_vec(), ANSWER.to_vec()]);
    assert_eq!(out.kinds(), vec!["alert", "renegotiation"]);
    assert_eq!(out.stopped, vec![C]);
    assert!(!out.findings[0].is_problem(), "close_notify is a warning");
    assert_eq!(dec.finish().version, Some(ProtocolVersion::TLS12));
}

#[test]
fn a_damaged_record_after_good_ones_is_a_located_hole_and_the_next_decrypts() {
    let mut c = conn13();
    let mut steps = handshake13(&mut c);
    steps.push((C, c.capp.seal(23, b"one ", 0)));
    let mut damaged = c.capp.seal(23, b"two ", 0);
    let n = damaged.len();
    damaged[n - 1] ^= 1;
    let offset: usize = steps
        .iter()
        .filter(|(d, _)| *d == C)
        .map(|(_, b)| b.len())
        .sum();
    steps.push((C, damaged));
    steps.push((C, c.capp.seal(23, b"three", 0)));
    let (out, _) = run(tls13_keylog(CR), &steps);
    assert_eq!(out.plain[0], b"one three");
    match &out.findings[..] {
        [DecryptFinding::AuthFailed {
            dir: C,
            record: 4,
            offset: o,
            first: false,
            ..
        }] => assert_eq!(*o, offset as u64),
        other => panic!("{other:?}"),
    }
    assert_eq!(out.gaps.len(), 1);
}

proptest! {
    /// Arbitrary bytes and gaps after a real handshake never panic, never hand on plaintext
    /// that was not sealed, and stay within the memory bound.
    #[test]
    fn hostile_bytes_never_panic_nor_forge_plaintext(
        pieces in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), 0u64..50), 0..40),
    ) {
        let mut c = conn13();
        let steps = handshake13(&mut c);
        let (mut out, mut dec) = run(tls13_keylog(CR), &steps);
        for (client, bytes, gap) in &pieces {
            let dir = if *client { C } else { S };
            if *gap > 40 {
                dec.gap(dir, t(1), *gap, &mut out.sink());
            }
            dec.data(dir, t(1), bytes, &mut out.sink());
            prop_assert!(dec.buffered_bytes() <= 2 * (5 + MAX_BODY + (16 << 10)));
        }
        dec.close(t(2), CloseKind::Open, &mut out.sink());
        prop_assert_eq!(&out.plain, &[Vec::<u8>::new(), Vec::new()]);
    }
}
