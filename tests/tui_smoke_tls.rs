//! The real binary in a real terminal (tmux) on the HTTPS samples: a TLS handshake failure is a
//! problem row with its diagnosis, an HTTPS push a row marked encrypted with no status. Skipped
//! when tmux is missing (scripts/bootstrap installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

#[path = "common/tmux.rs"]
mod tmux;

use tmux::Session;

/// Open the TUI on `sample` in a 120x40 tmux pane; `steps` are (keys to send, text to wait for),
/// each screen is returned. Quits with `q` at the end and returns the screen after the exit too.
fn session(sample: &str, steps: &[(&str, &str)]) -> Vec<String> {
    let s = Session::start(&format!("smoke-tls-{}", sample.len()), sample, 120, 40);
    let mut screens = Vec::new();
    for (keys, wait) in steps.iter().chain([("q", "EXITED")].iter()) {
        if !keys.is_empty() {
            s.keys(keys);
        }
        screens.push(s.wait_for(wait, false));
    }
    screens
}

#[test]
fn tls_handshake_failure_is_a_problem_row_with_its_diagnosis() {
    if !tmux::available() {
        return;
    }
    let s = session(
        "https-unknown-ca.pcap",
        &[
            ("", "Exchanges 2 of 2"),
            ("n", "Exchanges"),
            ("4", "TLS problem: handshake_alert"),
        ],
    );
    assert!(
        s[0].contains("(TLS handshake failed: device alert unknow") && s[0].contains("tls_alert"),
        "{}",
        s[0]
    );
    assert!(s[0].contains("tls_problems 2"), "{}", s[0]);
    assert!(s[2].contains("TLS problem: handshake_alert"), "{}", s[2]);
    assert!(s[2].contains("does not trust the server's"), "{}", s[2]);
    assert!(s[3].contains("EXITED 0"), "{}", s[3]);
}

#[test]
fn https_push_is_a_row_marked_encrypted_without_a_status() {
    if !tmux::available() {
        return;
    }
    let s = session(
        "https-tls12.pcap",
        &[("", "Exchanges 1 of 1"), ("2", "chosen: TLS 1.2")],
    );
    let row = s[0]
        .lines()
        .find(|l| l.contains("HTTPS (encrypted)"))
        .unwrap_or_else(|| panic!("no encrypted row in\n{}", s[0]));
    assert!(row.contains("encrypted_an") && row.contains(" ? "), "{row}");
    assert!(s[1].contains("chosen: TLS 1.2"), "{}", s[1]);
    assert!(s[2].contains("EXITED 0"), "{}", s[2]);
}

/// With the sample's key log (`replay FILE --keylog KEYS`), the push is a decrypted row (`D`, its
/// real status) and `f` follows the connection as plaintext: the header counts the decrypted
/// records (tshark with the same log: application data in frames 10, 11 and 13), and a search
/// finds the request line in the decrypted bytes.
#[test]
fn with_the_key_log_follow_stream_shows_the_decrypted_request() {
    if !tmux::available() {
        return;
    }
    let keys = format!("{}/samples/https-tls12.keys", env!("CARGO_MANIFEST_DIR"));
    let s = session(
        &format!("https-tls12.pcap --keylog {keys}"),
        &[
            ("", "Exchanges 1 of 1"),
            ("f", "decrypted 3 records"),
            ("/", "Enter find"),
            ("POST /alarm", "POST /alarm_"),
            ("Enter", "Content-Length: 545"),
            // q closes the view; the session's last q quits.
            ("q", "Detail"),
        ],
    );
    let row = s[0]
        .lines()
        .find(|l| l.contains("POST /alarm"))
        .unwrap_or_else(|| panic!("no decrypted row in\n{}", s[0]));
    assert!(row.contains(" 200 ") && row.contains(" D"), "{row}");
    assert!(s[1].contains("decrypted 3 records"), "{}", s[1]);
    assert!(s[4].contains("→ POST /alarm HTTP/1.1\\r\\n"), "{}", s[4]);
    assert!(s[6].contains("EXITED 0"), "{}", s[6]);
}
