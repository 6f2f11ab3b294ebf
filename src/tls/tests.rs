//! Unit tests of the TLS stage on hand-built records. The builders below write the wire format
//! of RFC 5246/8446 directly (independent of the parsers under test); the certificates in
//! testdata/ were made with `openssl req -x509` (self-signed) and `openssl x509 -req` (signed
//! by a throwaway CA), CN=alarm-server and CN=alarm.example, valid 2026-12-02 to 2036-11-29.

use proptest::prelude::*;

use super::*;
use crate::tcp::{CloseKind, Direction, Side};
use crate::time::Timestamp;

const C: Direction = Direction::ClientToServer;
const S: Direction = Direction::ServerToClient;

const SELF_SIGNED: &[u8] = include_bytes!("testdata/self-signed.der");
const CA_SIGNED: &[u8] = include_bytes!("testdata/ca-signed.der");

/// 2026-12-03 00:00:00 UTC, inside the certificates' validity.
const DAY: i64 = 1_796_256_000;

fn t(ms: i64) -> Timestamp {
    Timestamp(DAY * 1_000_000_000 + ms * 1_000_000)
}

fn u16b(v: usize) -> [u8; 2] {
    (v as u16).to_be_bytes()
}

fn u24b(v: usize) -> [u8; 3] {
    let b = (v as u32).to_be_bytes();
    [b[1], b[2], b[3]]
}

fn record(ct: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ct, 3, 3];
    v.extend_from_slice(&u16b(body.len()));
    v.extend_from_slice(body);
    v
}

fn hs(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![msg_type];
    v.extend_from_slice(&u24b(body.len()));
    v.extend_from_slice(body);
    v
}

fn ext(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend_from_slice(&u16b(body.len()));
    v.extend_from_slice(body);
    v
}

fn alpn_ext(protos: &[&str]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in protos {
        list.push(p.len() as u8);
        list.extend_from_slice(p.as_bytes());
    }
    let mut b = u16b(list.len()).to_vec();
    b.extend_from_slice(&list);
    ext(0x0010, &b)
}

fn client_hello(legacy: u16, versions: &[u16], sni: Option<&str>, alpn: &[&str]) -> Vec<u8> {
    let mut b = legacy.to_be_bytes().to_vec();
    b.extend_from_slice(&[7; 32]);
    b.push(32);
    b.extend_from_slice(&[9; 32]);
    // GREASE, TLS_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
    b.extend_from_slice(&[0, 6, 0x0a, 0x0a, 0x13, 0x01, 0xc0, 0x2f]);
    b.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let mut e = u16b(name.len() + 3).to_vec();
        e.push(0);
        e.extend_from_slice(&u16b(name.len()));
        e.extend_from_slice(name.as_bytes());
        exts.extend(ext(0x0000, &e));
    }
    if !alpn.is_empty() {
        exts.extend(alpn_ext(alpn));
    }
    if !versions.is_empty() {
        let mut e = vec![(versions.len() * 2) as u8];
        for v in versions {
            e.extend_from_slice(&v.to_be_bytes());
        }
        exts.extend(ext(0x002b, &e));
    }
    b.extend_from_slice(&u16b(exts.len()));
    b.extend(exts);
    hs(1, &b)
}

fn server_hello(legacy: u16, cipher: u16, version_ext: Option<u16>, alpn: Option<&str>) -> Vec<u8> {
    let mut b = legacy.to_be_bytes().to_vec();
    b.extend_from_slice(&[5; 32]);
    b.push(32);
    b.extend_from_slice(&[9; 32]);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    let mut exts = Vec::new();
    if let Some(v) = version_ext {
        exts.extend(ext(0x002b, &v.to_be_bytes()));
    }
    if let Some(p) = alpn {
        exts.extend(alpn_ext(&[p]));
    }
    b.extend_from_slice(&u16b(exts.len()));
    b.extend(exts);
    hs(2, &b)
}

fn certificate(ders: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for d in ders {
        list.extend_from_slice(&u24b(d.len()));
        list.extend_from_slice(d);
    }
    let mut b = u24b(list.len()).to_vec();
    b.extend(list);
    hs(11, &b)
}

/// One captured segment: direction, time (ms), bytes.
type Seg = (Direction, i64, Vec<u8>);

/// A TLS 1.2 push answered once, closed by the device with an encrypted close_notify.
fn tls12_conversation(cert: &[u8]) -> Vec<Seg> {
    let mut server_flight = record(22, &server_hello(0x0303, 0xc02f, None, Some("http/1.1")));
    server_flight.extend(record(22, &certificate(&[cert])));
    server_flight.extend(record(22, &hs(14, &[])));
    let mut client_fin = record(22, &hs(16, &[4; 66]));
    client_fin.extend(record(20, &[1]));
    client_fin.extend(record(22, &[0x11; 40]));
    let mut server_fin = record(20, &[1]);
    server_fin.extend(record(22, &[0x22; 40]));
    vec![
        (
            C,
            0,
            record(
                22,
                &client_hello(0x0303, &[], Some("alarm.example"), &["http/1.1"]),
            ),
        ),
        (S, 2, server_flight),
        (C, 4, client_fin),
        (S, 5, server_fin),
        (C, 10, record(23, &[0xaa; 300])),
        (C, 11, record(23, &[0xab; 600])),
        (S, 25, record(23, &[0xbb; 100])),
        (C, 30, record(21, &[0xcc; 26])),
    ]
}

/// A TLS 1.3 session: server flight, client Finished, tickets, then one exchange.
fn tls13_conversation(tickets_first: bool) -> Vec<Seg> {
    let mut sh = record(22, &server_hello(0x0303, 0x1301, Some(0x0304), None));
    sh.extend(record(20, &[1]));
    sh.extend(record(23, &[0x33; 900]));
    let mut fin = record(20, &[1]);
    fin.extend(record(23, &[0x44; 53]));
    let tickets = record(23, &[0x55; 250]);
    let mut v = vec![
        (
            C,
            0,
            record(
                22,
                &client_hello(0x0303, &[0x1a1a, 0x0304, 0x0303], Some("cam"), &[]),
            ),
        ),
        (S, 1, sh),
        (C, 2, fin),
    ];
    if tickets_first {
        v.push((S, 3, tickets));
        v.push((C, 4, record(23, &[0x66; 500])));
    } else {
        v.push((C, 3, record(23, &[0x66; 500])));
        v.push((S, 4, tickets));
    }
    v.push((S, 20, record(23, &[0x77; 120])));
    v.push((C, 30, record(23, &[0x88; 19])));
    v
}

fn run_with(
    segs: &[Seg],
    close: CloseKind,
    split: &dyn Fn(usize, &[u8]) -> Vec<usize>,
) -> TlsReport {
    let mut c = TlsConnection::new(TlsConfig::default());
    for (i, (dir, ms, bytes)) in segs.iter().enumerate() {
        let mut rest: &[u8] = bytes;
        for n in split(i, bytes) {
            let k = n.min(rest.len());
            c.data(*dir, t(*ms), &rest[..k]);
            rest = &rest[k..];
        }
        c.data(*dir, t(*ms), rest);
    }
    c.close(t(100), close);
    c.finish()
}

fn run(segs: &[Seg], close: CloseKind) -> TlsReport {
    run_with(segs, close, &|_, _| Vec::new())
}

fn problems(r: &TlsReport) -> Vec<&TlsFinding> {
    r.findings.iter().filter(|f| f.is_problem()).collect()
}

#[test]
fn tls12_push_reports_hello_certificate_completion_and_one_exchange() {
    let r = run(
        &tls12_conversation(SELF_SIGNED),
        CloseKind::Fin(Side::Client),
    );
    let ch = r.info.client_hello.as_ref().expect("client hello");
    assert_eq!(ch.legacy_version, Some(ProtocolVersion::TLS12));
    assert_eq!(ch.sni.as_deref(), Some("alarm.example"));
    assert_eq!(ch.alpn, vec!["http/1.1".to_string()]);
    assert_eq!(
        ch.cipher_suites,
        vec![CipherSuite(0x1301), CipherSuite(0xc02f)]
    );
    let sh = r.info.server_hello.as_ref().expect("server hello");
    assert_eq!(sh.version, Some(ProtocolVersion::TLS12));
    assert_eq!(
        sh.cipher_suite.map(|c| c.to_string()).as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(sh.alpn.as_deref(), Some("http/1.1"));
    match &r.info.certificate {
        CertificateView::Readable(c) => {
            assert_eq!(c.subject, "CN=alarm-server");
            assert_eq!(c.issuer, "CN=alarm-server");
            assert!(c.self_signed);
            assert!(c.valid_at_capture);
            assert_eq!(c.chain_length, 1);
            assert!(c.not_before.starts_with("2026-12-02"));
            assert!(c.not_after.starts_with("2036-11-29"));
        }
        other => panic!("certificate not read: {other:?}"),
    }
    assert_eq!(r.info.handshake, HandshakeState::Completed);
    let cs = r.info.application_data.client_to_server;
    assert_eq!((cs.records, cs.bytes), (2, 900));
    assert_eq!((cs.first, cs.last), (Some(t(10)), Some(t(11))));
    let sc = r.info.application_data.server_to_client;
    assert_eq!((sc.records, sc.bytes), (1, 100));
    assert_eq!(r.exchanges.len(), 1);
    let ex = &r.exchanges[0];
    assert_eq!((ex.request_records, ex.request_bytes), (2, 900));
    assert!(ex.encrypted);
    let resp = ex.response.expect("answered");
    assert_eq!(resp.bytes, 100);
    assert!((resp.latency_ms - 14.0).abs() < 1e-6, "{}", resp.latency_ms);
    // The device's close_notify after the exchange is encrypted and no problem.
    assert_eq!(r.info.alerts.len(), 1);
    assert!(!r.info.alerts[0].readable);
    assert!(!r.info.alerts[0].during_handshake);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

#[test]
fn a_certificate_signed_by_a_ca_is_not_self_signed() {
    let r = run(&tls12_conversation(CA_SIGNED), CloseKind::Fin(Side::Client));
    match &r.info.certificate {
        CertificateView::Readable(c) => {
            assert_eq!(c.subject, "CN=alarm.example");
            assert_eq!(c.issuer, "CN=Test CA");
            assert!(!c.self_signed);
        }
        other => panic!("certificate not read: {other:?}"),
    }
}

#[test]
fn certificate_validity_is_judged_at_capture_time() {
    let mut c = TlsConnection::new(TlsConfig::default());
    c.data(
        C,
        Timestamp(0),
        &record(22, &client_hello(0x0303, &[], None, &[])),
    );
    c.data(S, Timestamp(0), &record(22, &certificate(&[SELF_SIGNED])));
    match &c.info().certificate {
        CertificateView::Readable(info) => assert!(!info.valid_at_capture),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls13_keeps_handshake_and_tickets_out_of_exchanges() {
    let r = run(&tls13_conversation(true), CloseKind::Fin(Side::Client));
    let ch = r.info.client_hello.as_ref().unwrap();
    assert_eq!(
        ch.supported_versions,
        vec![ProtocolVersion::TLS13, ProtocolVersion::TLS12]
    );
    assert_eq!(ch.highest_version(), Some(ProtocolVersion::TLS13));
    let sh = r.info.server_hello.as_ref().unwrap();
    assert_eq!(sh.version, Some(ProtocolVersion::TLS13));
    assert_eq!(r.info.certificate, CertificateView::Encrypted);
    assert_eq!(r.info.handshake, HandshakeState::Completed);
    // Every type-23 record is counted, as the record layer shows them.
    assert_eq!(r.info.application_data.client_to_server.records, 3);
    assert_eq!(r.info.application_data.server_to_client.records, 3);
    assert_eq!(r.exchanges.len(), 1);
    let ex = &r.exchanges[0];
    assert_eq!(ex.request_bytes, 500);
    assert_eq!(ex.response.map(|r| r.bytes), Some(120));
    assert_eq!(ex.uncertain, None);
    // The last 19-byte record is an encrypted alert (close_notify), after the handshake.
    assert_eq!(r.info.alerts.len(), 1);
    assert!(!r.info.alerts[0].during_handshake);
    assert!(problems(&r).is_empty(), "{:?}", r.findings);
}

#[test]
fn tls13_tickets_after_the_request_make_the_first_answer_uncertain() {
    let r = run(&tls13_conversation(false), CloseKind::Fin(Side::Client));
    assert_eq!(r.exchanges.len(), 1);
    let ex = &r.exchanges[0];
    assert_eq!(ex.uncertain, Some(Uncertainty::MaySessionTickets));
    assert_eq!(ex.response.map(|r| r.bytes), Some(120));
}

/// The client Finished, then the given records (true: from the client), then a close.
fn tls13_after_finished(records: &[(bool, usize)]) -> Vec<Seg> {
    let mut v = tls13_conversation(true);
    v.truncate(3);
    for (i, (client, len)) in records.iter().enumerate() {
        let dir = if *client { C } else { S };
        v.push((dir, 10 + i as i64, record(23, &vec![0x5a; *len])));
    }
    v
}

#[test]
fn tls13_tickets_interleaved_with_the_request_stay_out_of_it() {
    // As OpenSSL did on loopback: ticket, request head, ticket, request body, answer.
    let segs = tls13_after_finished(&[
        (false, 250),
        (true, 202),
        (false, 250),
        (true, 1070),
        (false, 159),
    ]);
    let r = run(&segs, CloseKind::Fin(Side::Client));
    assert_eq!(r.exchanges.len(), 1, "{:?}", r.exchanges);
    let ex = &r.exchanges[0];
    assert_eq!((ex.request_records, ex.request_bytes), (2, 1272));
    assert_eq!(ex.response.map(|r| (r.records, r.bytes)), Some((1, 159)));
    assert_eq!(ex.uncertain, Some(Uncertainty::MaySessionTickets));
    // A keep-alive exchange after the tickets is certain.
    let segs = tls13_after_finished(&[
        (false, 250),
        (false, 250),
        (true, 500),
        (false, 159),
        (true, 500),
        (false, 159),
    ]);
    let r = run(&segs, CloseKind::Fin(Side::Client));
    assert_eq!(r.exchanges.len(), 2);
    assert!(r
        .exchanges
        .iter()
        .all(|e| e.uncertain.is_none() && e.response.is_some()));
}

#[test]
fn tls13_request_followed_only_by_tickets_is_unanswered_but_uncertain() {
    let segs = tls13_after_finished(&[(true, 700), (false, 250), (false, 250)]);
    let r = run(&segs, CloseKind::Fin(Side::Client));
    assert_eq!(r.exchanges.len(), 1);
    assert!(r.exchanges[0].response.is_none());
    assert_eq!(
        r.exchanges[0].uncertain,
        Some(Uncertainty::MaySessionTickets)
    );
}

#[test]
fn an_unanswered_push_is_an_exchange_without_response() {
    let mut segs = tls12_conversation(SELF_SIGNED);
    segs.retain(|(dir, ms, _)| !(*dir == S && *ms == 25));
    let r = run(&segs, CloseKind::Fin(Side::Client));
    assert_eq!(r.exchanges.len(), 1);
    assert!(r.exchanges[0].response.is_none());
    assert_eq!(r.exchanges[0].uncertain, None);
    // Still open when the capture ended: the answer may have come later.
    let r = run(&segs, CloseKind::Open);
    assert_eq!(r.exchanges[0].uncertain, Some(Uncertainty::CaptureEnded));
}

#[test]
fn client_alert_unknown_ca_is_a_handshake_failure_by_the_device() {
    let segs = vec![
        (C, 0, record(22, &client_hello(0x0303, &[], None, &[]))),
        (S, 1, record(22, &server_hello(0x0303, 0xc02f, None, None))),
        (C, 2, record(21, &[2, 48])),
    ];
    let r = run(&segs, CloseKind::Fin(Side::Client));
    assert_eq!(r.info.handshake, HandshakeState::Failed);
    let a = &r.info.alerts[0];
    assert!(a.readable && a.during_handshake);
    assert_eq!(a.by, Side::Client);
    assert_eq!(a.description, Some(AlertDescription::UNKNOWN_CA));
    assert_eq!(a.level, Some(AlertLevel::FATAL));
    let p = problems(&r);
    assert_eq!(p.len(), 1, "{p:?}");
    match p[0] {
        TlsFinding::HandshakeAlert {
            by, description, ..
        } => {
            assert_eq!(*by, Side::Client);
            assert_eq!(*description, Some(AlertDescription::UNKNOWN_CA));
        }
        other => panic!("{other:?}"),
    }
    assert!(p[0].to_string().contains("does not trust"));
}

#[test]
fn tls13_encrypted_alert_during_the_handshake_is_a_failure_with_unknown_reason() {
    let mut sh = record(22, &server_hello(0x0303, 0x1301, Some(0x0304), None));
    sh.extend(record(23, &[0x33; 900]));
    let segs = vec![
        (
            C,
            0,
            record(22, &client_hello(0x0303, &[0x0304], None, &[])),
        ),
        (S, 1, sh),
        (C, 2, record(23, &[0x99; 19])),
    ];
    let r = run(&segs, CloseKind::Fin(Side::Client));
    assert_eq!(r.info.handshake, HandshakeState::Failed);
    assert!(matches!(
        problems(&r)[..],
        [TlsFinding::HandshakeAlert {
            by: Side::Client,
            description: None,
            ..
        }]
    ));
    assert!(r.exchanges.is_empty());
}

#[test]
fn hello_answered_with_plain_http_names_the_mismatch() {
    let hello = record(22, &client_hello(0x0303, &[0x0304], Some("x"), &[]));
    let answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_vec();
    let r = run(
        &[(C, 0, hello.clone()), (S, 1, answer.clone())],
        CloseKind::Fin(Side::Server),
    );
    assert_eq!(r.info.handshake, HandshakeState::Failed);
    assert_eq!(r.info.non_tls_bytes.server_to_client, answer.len() as u64);
    let p = problems(&r);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(matches!(
        p[0],
        TlsFinding::TlsToPlainServer {
            answer: NonTlsAnswer::HttpResponse { status: Some(400) },
            ..
        }
    ));
    assert!(p[0].to_string().contains("speaks HTTP"));
    // HTTP/0.9-style error page (python http.server).
    let page = b"<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">".to_vec();
    let r = run(
        &[(C, 0, hello.clone()), (S, 1, page)],
        CloseKind::Fin(Side::Server),
    );
    match problems(&r)[..] {
        [TlsFinding::TlsToPlainServer {
            answer: NonTlsAnswer::OtherBytes { preview },
            ..
        }] => assert!(preview.starts_with("<!DOCTYPE HTML>.<html"), "{preview}"),
        ref other => panic!("{other:?}"),
    }
    // The server closed without a byte.
    let r = run(&[(C, 0, hello)], CloseKind::Rst(Side::Server));
    assert!(matches!(
        problems(&r)[..],
        [TlsFinding::TlsToPlainServer {
            answer: NonTlsAnswer::Closed { reset: true },
            ..
        }]
    ));
}

#[test]
fn closes_during_the_handshake_say_who_and_when() {
    let hello = record(22, &client_hello(0x0303, &[], None, &[]));
    let mut flight = record(22, &server_hello(0x0303, 0xc02f, None, None));
    flight.extend(record(22, &certificate(&[SELF_SIGNED])));
    let r = run(
        &[(C, 0, hello.clone()), (S, 1, flight)],
        CloseKind::Fin(Side::Client),
    );
    assert!(matches!(
        problems(&r)[..],
        [TlsFinding::ClosedDuringHandshake {
            by: Side::Client,
            reset: false,
            stage: HandshakeStage::ServerHello,
            ..
        }]
    ));
    // The device gave up on a silent server.
    let r = run(&[(C, 0, hello.clone())], CloseKind::Fin(Side::Client));
    assert!(matches!(
        problems(&r)[..],
        [TlsFinding::ClosedDuringHandshake {
            by: Side::Client,
            stage: HandshakeStage::ClientHello,
            ..
        }]
    ));
    // Capture ended: nothing to say.
    let r = run(&[(C, 0, hello)], CloseKind::Open);
    assert!(r.findings.is_empty());
    assert_eq!(r.info.handshake, HandshakeState::InProgress);
}

#[test]
fn old_clients_are_named() {
    let r = run(
        &[(C, 0, record(22, &client_hello(0x0301, &[], None, &[])))],
        CloseKind::Open,
    );
    assert!(matches!(
        problems(&r)[..],
        [TlsFinding::OnlyOldVersionsOffered {
            highest: ProtocolVersion::TLS10,
            ..
        }]
    ));
}

#[test]
fn a_gap_inside_a_record_keeps_framing_and_one_across_headers_resyncs() {
    let mut c = TlsConnection::new(TlsConfig::default());
    for (dir, ms, b) in tls12_conversation(SELF_SIGNED).iter().take(4) {
        c.data(*dir, t(*ms), b);
    }
    // 1000-byte record: 10 bytes seen, 500 missing, 490 seen, then a 20-byte record.
    let big = record(23, &[1; 1000]);
    c.data(C, t(10), &big[..15]);
    c.gap(C, t(11), 500);
    c.data(C, t(12), &big[515..]);
    c.data(C, t(12), &record(23, &[2; 20]));
    assert_eq!(c.info().application_data.client_to_server.records, 2);
    assert!(matches!(
        c.findings(),
        [TlsFinding::Gap {
            skipped: Some(0),
            bytes: 500,
            ..
        }]
    ));
    // A gap that swallows a header: the next plausible header is found 7 bytes later.
    c.gap(C, t(13), 30);
    let mut tail = vec![0xee; 7];
    tail.extend(record(23, &[3; 40]));
    c.data(C, t(14), &tail);
    assert_eq!(c.info().application_data.client_to_server.records, 3);
    assert_eq!(c.info().non_tls_bytes.client_to_server, 7);
    assert!(matches!(
        c.findings()[1],
        TlsFinding::Gap {
            skipped: Some(7),
            bytes: 30,
            ..
        }
    ));
    let r = c.finish();
    assert_eq!(r.exchanges[0].uncertain, Some(Uncertainty::CaptureGap));
}

#[test]
fn a_gap_between_the_records_of_one_handshake_message_stops_its_reassembly() {
    let msg = client_hello(0x0303, &[], Some("alarm.example"), &[]);
    let mut c = TlsConnection::new(TlsConfig::default());
    c.data(C, t(0), &record(22, &msg[..20]));
    // The next record's header and 10 bytes of the message are missing.
    c.gap(C, t(1), 15);
    c.data(C, t(2), &record(22, &msg[30..]));
    // Without the framing, these bytes must not be glued to the cut message.
    c.data(C, t(3), &record(22, &msg));
    assert!(c.info().client_hello.is_none());
    assert!(
        matches!(
            c.findings(),
            [TlsFinding::Gap {
                skipped: Some(0),
                ..
            }]
        ),
        "{:?}",
        c.findings()
    );
}

#[test]
fn garbage_mid_stream_is_located_and_skipped_or_given_up_on() {
    let mut c = TlsConnection::new(TlsConfig {
        resync_window: 100,
        ..TlsConfig::default()
    });
    let hello = record(22, &client_hello(0x0303, &[], None, &[]));
    let n = hello.len() as u64;
    c.data(C, t(0), &hello);
    let mut junk = b"GARBAGE!!".to_vec();
    junk.extend(record(21, &[1, 100]));
    c.data(C, t(1), &junk);
    assert!(
        matches!(
        c.findings(),
        [TlsFinding::NotTls { offset, skipped: Some(9), .. }] if *offset == n
        ),
        "{:?}",
        c.findings()
    );
    assert_eq!(c.info().alerts.len(), 1);
    c.data(C, t(2), &[0x41; 500]);
    assert!(matches!(
        c.findings()[1],
        TlsFinding::NotTls { skipped: None, .. }
    ));
    assert_eq!(
        c.info().non_tls_bytes.client_to_server,
        9 + 500,
        "every byte after the header is counted"
    );
}

#[test]
fn oversized_and_malformed_handshake_messages_are_findings() {
    let mut c = TlsConnection::new(TlsConfig {
        max_handshake_message: 1000,
        ..TlsConfig::default()
    });
    // A ClientHello announcing 5000 bytes, sent over several records.
    let mut msg = vec![1];
    msg.extend_from_slice(&u24b(5000));
    msg.extend(vec![0; 5000]);
    for chunk in msg.chunks(2000) {
        c.data(C, t(0), &record(22, chunk));
    }
    assert!(matches!(
        c.findings(),
        [TlsFinding::HandshakeMessageTooLarge {
            msg_type: 1,
            len: 5000,
            ..
        }]
    ));
    assert!(c.buffered_bytes() <= 1004);
    c.data(S, t(1), &record(22, &hs(2, &[0xff; 10])));
    assert!(matches!(
        c.findings()[1],
        TlsFinding::MalformedHandshake { msg_type: 2, .. }
    ));
    // A certificate over the limit is reported unreadable.
    c.data(S, t(2), &record(22, &certificate(&[&[0x30; 1500]])));
    assert_eq!(
        c.info().certificate,
        CertificateView::Unreadable {
            reason: CertificateProblem::TooLarge
        }
    );
}

#[test]
fn capture_beginning_mid_connection_counts_data_without_a_handshake() {
    let segs = vec![(C, 0, record(23, &[1; 100])), (S, 5, record(23, &[2; 50]))];
    let r = run(&segs, CloseKind::Fin(Side::Client));
    assert_eq!(r.info.handshake, HandshakeState::NotSeen);
    assert_eq!(r.exchanges.len(), 1);
    assert!(r.findings.is_empty());
}

#[test]
fn probes_tell_tls_from_http() {
    let hello = record(22, &client_hello(0x0303, &[], None, &[]));
    assert_eq!(probe_client_hello(&hello), Probe::Tls);
    assert_eq!(probe_client_hello(&hello[..3]), Probe::NeedMore);
    assert_eq!(probe_client_hello(b"POST /alarm HTTP/1.1"), Probe::NotTls);
    assert_eq!(probe_client_hello(&[0x16, 3, 1, 0, 5, 1]), Probe::NotTls);
    assert_eq!(probe_client_hello(&record(23, &[0; 60])), Probe::NotTls);
    assert_eq!(
        probe_client_hello(&[0x80, 0x2e, 1, 3, 1]),
        Probe::Sslv2Hello
    );
    assert_eq!(
        probe_answer_to_plain_http(&[0x15, 3, 3, 0, 2, 2, 70]),
        Some(TlsEvidence::Alert {
            description: Some(AlertDescription::PROTOCOL_VERSION)
        })
    );
    assert_eq!(
        probe_answer_to_plain_http(&record(22, &[0; 50])),
        Some(TlsEvidence::HandshakeRecord)
    );
    assert_eq!(probe_answer_to_plain_http(b"HTTP/1.1 400 Bad"), None);
    assert!(is_plain_http_to_https_page(
        b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title>"
    ));
    assert!(!is_plain_http_to_https_page(
        b"<html><title>400 Bad Request</title>"
    ));
}

#[test]
fn plain_http_evidence_needs_tls_bytes_or_a_close_on_a_tls_port() {
    let rst = CloseKind::Rst(Side::Server);
    assert_eq!(
        evidence_against_plain_http(&[0x15, 3, 3, 0, 2, 2, 10], rst, false),
        Some(TlsEvidence::Alert {
            description: Some(AlertDescription::UNEXPECTED_MESSAGE)
        })
    );
    let page = b"HTTP/1.1 400 Bad Request\r\n\r\n<title>400 The plain HTTP request was sent to HTTPS port</title>";
    assert_eq!(
        evidence_against_plain_http(page, CloseKind::Fin(Side::Server), false),
        Some(TlsEvidence::PlainHttpToHttpsPage)
    );
    assert_eq!(
        evidence_against_plain_http(&[], rst, true),
        Some(TlsEvidence::ClosedOnTlsPort)
    );
    assert_eq!(evidence_against_plain_http(&[], rst, false), None);
    assert_eq!(
        evidence_against_plain_http(&[], CloseKind::Fin(Side::Client), true),
        None
    );
    assert_eq!(
        evidence_against_plain_http(b"HTTP/1.1 200 OK\r\n", rst, true),
        None
    );
}

#[test]
fn findings_display_the_next_step() {
    let f = TlsFinding::PlainHttpToTlsServer {
        time: t(0),
        evidence: TlsEvidence::PlainHttpToHttpsPage,
    };
    assert!(f.to_string().contains("--protocol HTTPS"));
    let v = serde_json::to_value(&f).unwrap();
    assert_eq!(v["kind"], "plain_http_to_tls_server");
    assert_eq!(v["evidence"]["kind"], "plain_http_to_https_page");
}

#[test]
fn every_two_way_split_of_every_segment_gives_the_same_report() {
    for segs in [tls12_conversation(SELF_SIGNED), tls13_conversation(false)] {
        let whole = run(&segs, CloseKind::Fin(Side::Client));
        for (i, (_, _, bytes)) in segs.iter().enumerate() {
            for cut in 1..bytes.len() {
                let split = run_with(&segs, CloseKind::Fin(Side::Client), &|j, _| {
                    if j == i {
                        vec![cut]
                    } else {
                        Vec::new()
                    }
                });
                assert_eq!(split, whole, "segment {i} cut at {cut}");
            }
        }
    }
}

proptest! {
    #[test]
    fn any_split_gives_the_same_report(
        cuts in proptest::collection::vec(proptest::collection::vec(1usize..80, 0..40), 9),
        tls13 in any::<bool>(),
    ) {
        let segs = if tls13 { tls13_conversation(true) } else { tls12_conversation(CA_SIGNED) };
        let whole = run(&segs, CloseKind::Fin(Side::Server));
        let split = run_with(&segs, CloseKind::Fin(Side::Server), &|i, _| cuts[i % cuts.len()].clone());
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn arbitrary_bytes_and_gaps_never_panic_and_stay_bounded(
        ops in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), 0u64..5000),
            0..40),
        prefix_hello in any::<bool>(),
    ) {
        let config = TlsConfig { max_handshake_message: 512, ..TlsConfig::default() };
        let mut c = TlsConnection::new(config);
        if prefix_hello {
            c.data(C, t(0), &[0x16, 3, 1]);
        }
        for (i, (client, is_gap, bytes, gap)) in ops.iter().enumerate() {
            let dir = if *client { C } else { S };
            if *is_gap {
                c.gap(dir, t(i as i64), *gap);
            } else {
                c.data(dir, t(i as i64), bytes);
            }
            prop_assert!(c.buffered_bytes() <= 2 * (512 + 4 + 48));
        }
        c.close(t(1000), CloseKind::Rst(Side::Server));
        let r = c.finish();
        prop_assert!(r.findings.len() <= TlsConfig::default().max_findings);
        prop_assert!(r.info.alerts.len() <= TlsConfig::default().max_alerts);
    }
}
