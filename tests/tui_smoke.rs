//! The real binary in a real terminal (tmux): open the TUI on a sample, move to the first problem,
//! look at the tabs, follow its stream, quit, and check the terminal was given back. Skipped when tmux is missing
//! (scripts/bootstrap installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn tui_opens_a_sample_navigates_and_quits_cleanly() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux not installed");
        return;
    }
    let session = format!("alarmscope-smoke-{}", std::process::id());
    let socket = format!("/tmp/{session}.sock");
    let bin = env!("CARGO_BIN_EXE_alarmscope");
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/stall-no-answer.pcap");
    let cmd = format!("{bin} replay {sample}; echo EXITED $?; sleep 30");
    let t = |args: &[&str]| {
        let mut v = vec!["-S", socket.as_str()];
        v.extend_from_slice(args);
        tmux(&v)
    };
    t(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "30",
        &cmd,
    ]);
    let scr = |s: &str| {
        let start = Instant::now();
        loop {
            let out = t(&["capture-pane", "-t", &session, "-p"]);
            if out.contains(s) || start.elapsed() > Duration::from_secs(10) {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let main = scr("Exchanges 4 of 4");
    assert!(main.contains("no_response"), "{main}");
    assert!(main.contains("requests 4"), "{main}");
    // Jump to the first problem and show its handshake and diagnosis.
    t(&["send-keys", "-t", &session, "n", "1"]);
    let hs = scr("SYN,ACK");
    assert!(hs.contains("handshake: complete"), "{hs}");
    t(&["send-keys", "-t", &session, "4"]);
    let diag = scr("Verdict: no_response");
    assert!(diag.contains("hold its later events"), "{diag}");
    // Filter to problems only, then quit.
    t(&["send-keys", "-t", &session, "p"]);
    let probs = scr("2 of 4");
    assert!(probs.contains("2 of 4"), "{probs}");
    // Follow the selected connection's stream: the request line, marked, then hex; Esc closes.
    t(&["send-keys", "-t", &session, "f"]);
    let stream = scr("── client HTTP POST");
    assert!(stream.contains("Follow stream: "), "{stream}");
    assert!(stream.contains("→ POST /alarm HTTP/1.1\\r\\n"), "{stream}");
    t(&["send-keys", "-t", &session, "x"]);
    let hex = scr("50 4f 53 54 20 2f 61 6c");
    assert!(hex.contains("POST /alarm HTTP"), "{hex}");
    t(&["send-keys", "-t", &session, "Escape"]);
    let back = scr("2 of 4");
    assert!(!back.contains("Follow stream: "), "{back}");
    t(&["send-keys", "-t", &session, "q"]);
    let after = scr("EXITED");
    t(&["kill-session", "-t", &session]);
    let _ = std::fs::remove_file(&socket);
    assert!(after.contains("EXITED 0"), "{after}");
    // The alternate screen is gone: the exchange list is no longer drawn.
    assert!(!after.contains("Exchanges 4 of 4"), "{after}");
}
