//! Screen test of a row decrypted with a key log (`--keylog`): the `D` mark in the list (an
//! inferred encrypted row keeps `E`), and the version and suite in the request tab.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Msg, Source};
use super::fixtures::{self, ts};
use super::theme::Theme;
use super::Feed;
use crate::model::Report;
use crate::tls::decrypt::{DecryptFinding, DecryptReport, DecryptStats, DecryptStatus};
use crate::tls::{AlertDescription, AlertLevel, CipherSuite, PerDirection, ProtocolVersion};

fn draw(app: &App) -> Vec<String> {
    fixtures::draw(app, 140, 40)
}

fn app(decrypted: bool) -> App {
    app_with(decrypted, Vec::new())
}

fn app_with(decrypted: bool, findings: Vec<DecryptFinding>) -> App {
    let mut ex = fixtures::exchange(2.0, "/alarm/decrypted", Some(200), 1);
    ex.decrypted = decrypted;
    let mut c = fixtures::conn(1, "10.0.0.5", 1.0)
        .complete_handshake()
        .exchange(ex)
        .build();
    c.decryption = Some(Box::new(DecryptReport {
        status: DecryptStatus::Decrypting,
        version: Some(ProtocolVersion::TLS13),
        cipher_suite: Some(CipherSuite(0x1302)),
        stats: PerDirection {
            client_to_server: DecryptStats::default(),
            server_to_client: DecryptStats::default(),
        },
        findings,
        findings_dropped: 0,
    }));
    let mut a = App::new(Source::Replay("k.pcap".into()), Theme { color: false });
    a.update(Msg::Feed(Feed::Final(Report {
        source: "k.pcap".into(),
        connections: vec![c],
        summary: crate::model::Summary {
            first_packet: Some(ts(1.0)),
            last_packet: Some(ts(3.0)),
            ..crate::model::Summary::default()
        },
        ..Report::default()
    })));
    a
}

#[test]
fn a_decrypted_row_is_marked_d_and_its_request_tab_names_version_and_suite() {
    let mut a = app(true);
    let l = draw(&a);
    let row = l
        .iter()
        .find(|l| l.contains("/alarm/decrypted"))
        .unwrap_or_else(|| panic!("{}", l.join("\n")));
    assert!(row.contains(" D "), "{row}");
    if let Some(m) = a.key_to_msg(KeyEvent::new(KeyCode::Char('2'), KeyModifiers::NONE)) {
        a.update(m);
    }
    let l = draw(&a);
    assert!(
        l.iter()
            .any(|l| l.contains("decrypted: (TLS 1.3, TLS_AES_256_GCM_SHA384) with the key log")),
        "{}",
        l.join("\n")
    );
    // The same row read in the clear: neither mark nor line.
    let a = app(false);
    let l = draw(&a);
    let row = l
        .iter()
        .find(|l| l.contains("/alarm/decrypted"))
        .unwrap_or_else(|| panic!());
    assert!(!row.contains(" D "), "{row}");
}

/// A decryption problem (here a fatal alert read from the plaintext) marks the row `DK` and is
/// a problem line of the Diagnosis tab; a note (a key update) is a note line and no mark.
#[test]
fn a_decryption_problem_marks_the_row_and_is_in_the_diagnosis_tab() {
    let alert = DecryptFinding::Alert {
        time: ts(2.5),
        by: crate::tcp::Side::Server,
        level: AlertLevel::FATAL,
        description: AlertDescription::INTERNAL_ERROR,
        after_answers: false,
    };
    let update = DecryptFinding::KeyUpdate {
        time: ts(2.2),
        dir: crate::tcp::Direction::ClientToServer,
    };
    for (findings, mark, line) in [
        (
            vec![update.clone(), alert],
            " DK ",
            "Decryption problem: the server sent a fatal",
        ),
        (
            vec![update],
            " D ",
            "Decryption note: device->server: TLS 1.3 key update",
        ),
    ] {
        let mut a = app_with(true, findings);
        let l = draw(&a);
        let row = l
            .iter()
            .find(|l| l.contains("/alarm/decrypted"))
            .unwrap_or_else(|| panic!("{}", l.join("\n")));
        assert!(row.contains(mark), "{mark}: {row}");
        if let Some(m) = a.key_to_msg(KeyEvent::new(KeyCode::Char('4'), KeyModifiers::NONE)) {
            a.update(m);
        }
        let l = draw(&a);
        assert!(
            l.iter().any(|l| l.contains(line)),
            "{line}: {}",
            l.join("\n")
        );
    }
}
