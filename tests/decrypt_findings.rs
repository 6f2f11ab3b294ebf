//! Decryption problems where engineers look (`replay --keylog`): the summary's decryption
//! counts, the text report's lines and the typed `is_problem()`, on recorded HTTPS samples with
//! their key logs as recorded (`https-missing-key`: one camera's session is missing) and with a
//! key log edited here (the logged master secret of `https-tls12` changed by one bit: a key log
//! of the right session whose key does not match, as when two captures' logs are mixed up).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alarmscope::model::Report;
use alarmscope::replay::{replay, ReplayOptions};
use alarmscope::tls::decrypt::{DecryptFinding, NotDecryptedReason};
use alarmscope::tls::{AlertLevel, DecryptStatus, KeyLog, SharedKeys};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn replay_with(name: &str, keys: &[u8]) -> Report {
    let mut opts = ReplayOptions::default();
    opts.config.keys = Some(SharedKeys(Arc::new(KeyLog::parse(keys))));
    replay(&samples_dir().join(name), opts, &mut |_| {}, &mut |_| {}).unwrap()
}

fn keys(name: &str) -> Vec<u8> {
    std::fs::read(samples_dir().join(name)).unwrap()
}

/// The key log with the last hex digit of every secret flipped (client randoms kept).
fn wrong_secrets(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(text.to_vec()).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let mut fields: Vec<String> = line.split(' ').map(str::to_string).collect();
        if fields.len() == 3 && !line.starts_with('#') {
            let s = &mut fields[2];
            let last = s.pop().unwrap();
            s.push(if last == '0' { '1' } else { '0' });
        }
        out.push_str(&fields.join(" "));
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn a_session_missing_from_the_key_log_is_counted_and_listed_while_the_other_decrypts() {
    let r = replay_with("https-missing-key.pcap", &keys("https-missing-key.keys"));
    let d = &r.summary.decryption;
    assert_eq!(
        (d.decrypted_connections, d.not_decrypted_connections),
        (1, 1)
    );
    assert_eq!(d.not_decrypted.of(NotDecryptedReason::KeyNotInLog), 1);
    // The second camera (no key). The first one's client sent a fatal decode_error alert inside
    // its encrypted records (tshark with the key log reads the same: frame 15, level 2,
    // description 50), but after its push was answered: a note, not a problem.
    assert_eq!(d.decryption_problems, 1);
    let second = &r.connections[1];
    let rep = second.decryption.as_deref().unwrap();
    assert_eq!(rep.not_decrypted(), Some(NotDecryptedReason::KeyNotInLog));
    assert!(matches!(
        rep.problems().collect::<Vec<_>>()[..],
        [DecryptFinding::KeyNotInLog {
            session_logged: false,
            ..
        }]
    ));
    let first = r.connections[0].decryption.as_deref().unwrap();
    assert_eq!(first.not_decrypted(), None);
    assert_eq!(first.problems().count(), 0);
    assert!(matches!(
        first.findings[..],
        [DecryptFinding::Alert { level, after_answers: true, .. }] if level == AlertLevel::FATAL
    ));

    let text = alarmscope::report::text::render(&r);
    assert!(
        text.contains("decryption: 1 of 2 TLS connection(s) decrypted, 1 not (session not in the key log 1)   decryption problems: 1"),
        "{text}"
    );
    let line = |client: &str| {
        text.lines()
            .find(|l| l.contains(client) && l.contains(" -> "))
            .unwrap_or_else(|| panic!("no line for {client}:\n{text}"))
            .to_string()
    };
    assert!(
        line(&second.client).contains("not decrypted (session not in the key log)"),
        "{text}"
    );
    // The alert after the answer is no problem line.
    assert!(
        !text
            .lines()
            .any(|l| l.contains(&r.connections[0].client) && l.contains("fatal decode_error")),
        "{text}"
    );

    let conn = serde_json::to_value(second).unwrap();
    let f = &conn["decryption"]["findings"][0];
    assert_eq!(
        (&f["kind"], &f["problem"]),
        (&"key_not_in_log".into(), &true.into())
    );
    let json = serde_json::to_value(&r.summary).unwrap();
    assert_eq!(json["decrypted_connections"], 1);
    assert_eq!(json["not_decrypted"]["key_not_in_log"], 1);
    assert_eq!(json["decryption_problems"], 1);
}

#[test]
fn a_key_log_whose_secret_does_not_match_is_a_wrong_key_problem() {
    for (pcap, keyfile) in [
        ("https-tls12.pcap", "https-tls12.keys"),
        ("https-tls13.pcap", "https-tls13.keys"),
    ] {
        let r = replay_with(pcap, &wrong_secrets(&keys(keyfile)));
        let c = &r.connections[0];
        let rep = c.decryption.as_deref().unwrap();
        assert_eq!(rep.status, DecryptStatus::NotDecrypted, "{pcap}");
        assert_eq!(
            rep.not_decrypted(),
            Some(NotDecryptedReason::WrongKey),
            "{pcap}"
        );
        assert!(
            matches!(
                rep.problems().next(),
                Some(DecryptFinding::AuthFailed {
                    first: true,
                    record: _,
                    ..
                })
            ),
            "{pcap}: {:?}",
            rep.findings
        );
        let d = &r.summary.decryption;
        assert_eq!(
            (
                d.decrypted_connections,
                d.not_decrypted.of(NotDecryptedReason::WrongKey),
                d.decryption_problems
            ),
            (0, 1, 1),
            "{pcap}"
        );
        let text = alarmscope::report::text::render(&r);
        assert!(
            text.contains("1 not (key log does not match 1)"),
            "{pcap}: {text}"
        );
        assert!(
            text.lines().any(|l| l.contains(&c.client)
                && l.contains("not decrypted (key log does not match)")
                && l.contains("failed to authenticate")),
            "{pcap}: {text}"
        );
    }
}

#[test]
fn without_a_key_log_the_summary_has_no_decryption_fields() {
    let r = replay(
        &samples_dir().join("https-tls12.pcap"),
        ReplayOptions::default(),
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap();
    let json = serde_json::to_value(&r.summary).unwrap();
    for k in [
        "decrypted_connections",
        "not_decrypted_connections",
        "not_decrypted",
        "decryption_problems",
    ] {
        assert!(json.get(k).is_none(), "{k}: {json}");
    }
    assert!(!alarmscope::report::text::render(&r).contains("decryption"));
}
