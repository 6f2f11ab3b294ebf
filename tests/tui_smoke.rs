//! The real binary in a real terminal (tmux): open the TUI on a sample, move to the first problem,
//! look at the tabs, follow its stream, quit, and check the terminal was given back. Skipped when tmux is missing
//! (scripts/bootstrap installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test: a panic is its failure report

#[path = "common/tmux.rs"]
mod tmux;

use tmux::Session;

#[test]
fn tui_opens_a_sample_navigates_and_quits_cleanly() {
    if !tmux::available() {
        return;
    }
    let s = Session::start("smoke", "stall-no-answer.pcap", 100, 30);
    let main = s.wait_for("Exchanges 4 of 4", false);
    assert!(main.contains("no_response"), "{main}");
    assert!(main.contains("requests 4"), "{main}");
    // Jump to the first problem and show its handshake and diagnosis.
    s.keys("n");
    s.keys("1");
    let hs = s.wait_for("SYN,ACK", false);
    assert!(hs.contains("handshake: complete"), "{hs}");
    s.keys("4");
    let diag = s.wait_for("Verdict: no_response", false);
    assert!(diag.contains("hold its later events"), "{diag}");
    // Filter to problems only, then quit.
    s.keys("p");
    let probs = s.wait_for("2 of 4", false);
    assert!(probs.contains("2 of 4"), "{probs}");
    // Follow the selected connection's stream: the request line, marked, then hex; Esc closes.
    s.keys("f");
    let stream = s.wait_for("── client HTTP POST", false);
    assert!(stream.contains("Follow stream: "), "{stream}");
    assert!(stream.contains("→ POST /alarm HTTP/1.1\\r\\n"), "{stream}");
    s.keys("x");
    let hex = s.wait_for("50 4f 53 54 20 2f 61 6c", false);
    assert!(hex.contains("POST /alarm HTTP"), "{hex}");
    s.keys("Escape");
    let back = s.wait_for("2 of 4", false);
    assert!(!back.contains("Follow stream: "), "{back}");
    s.keys("q");
    let after = s.wait_for("EXITED", false);
    drop(s);
    assert!(after.contains("EXITED 0"), "{after}");
    // The alternate screen is gone: the exchange list is no longer drawn.
    assert!(!after.contains("Exchanges 4 of 4"), "{after}");
}

#[test]
fn tui_shows_the_time_line_and_a_picture_in_half_blocks() {
    if !tmux::available() {
        return;
    }
    // The time line of the stall sample: the unanswered push starts a stall that runs to the
    // next event.
    let s = Session::start("timeline", "stall-no-answer.pcap", 100, 30);
    s.wait_for("Exchanges 4 of 4", false);
    s.keys("t");
    let tl = s.wait_for("Time line", false);
    let stalls = tl
        .lines()
        .find(|l| l.contains("│stalls"))
        .unwrap_or_else(|| panic!("no stalls band in\n{tl}"));
    assert!(stalls.contains("S═"), "{tl}");
    assert!(
        tl.lines().any(|l| l.contains("│failed") && l.contains('x')),
        "{tl}"
    );
    s.keys("q");
    let after = s.wait_for("EXITED", false);
    assert!(after.contains("EXITED 0"), "{after}");
    drop(s);

    // A picture in tmux: half-blocks (true-colour cells) beside the check of each part.
    let s = Session::start("picture", "picture-cut.pcap", 160, 50);
    s.wait_for("Exchanges 1 of 1", false);
    let pic = s.wait_for("2688 x 1520 px", false);
    assert!(pic.contains("is cut after"), "{pic}");
    let colours = s.wait_for("48;2;", true);
    // tmux writes a run of same-coloured cells once: count the rows holding picture cells.
    let rows = colours.lines().filter(|l| l.contains("48;2;")).count();
    assert!(rows > 5, "{rows} rows with picture cells in\n{colours}");
    s.keys("q");
    let after = s.wait_for("EXITED", false);
    assert!(after.contains("EXITED 0"), "{after}");
}
