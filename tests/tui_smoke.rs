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

/// A tmux session running `alarmscope replay SAMPLE` at `w` x `h`; killed on drop.
struct Session {
    name: String,
    socket: String,
}

impl Session {
    fn start(tag: &str, sample: &str, w: u16, h: u16) -> Session {
        let name = format!("alarmscope-{tag}-{}", std::process::id());
        let socket = format!("/tmp/{name}.sock");
        let bin = env!("CARGO_BIN_EXE_alarmscope");
        let sample = format!("{}/samples/{sample}", env!("CARGO_MANIFEST_DIR"));
        let cmd = format!("{bin} replay {sample}; echo EXITED $?; sleep 30");
        let s = Session { name, socket };
        let (w, h) = (w.to_string(), h.to_string());
        s.t(&["new-session", "-d", "-s", &s.name, "-x", &w, "-y", &h, &cmd]);
        s
    }

    fn t(&self, args: &[&str]) -> String {
        let mut v = vec!["-S", self.socket.as_str()];
        v.extend_from_slice(args);
        tmux(&v)
    }

    fn keys(&self, k: &str) {
        self.t(&["send-keys", "-t", &self.name, k]);
    }

    /// The screen (with its colours as escape sequences when `escapes`) once it shows `s`, or
    /// after 15 s.
    fn wait_for(&self, s: &str, escapes: bool) -> String {
        let start = Instant::now();
        let mut args = vec!["capture-pane", "-t", self.name.as_str(), "-p"];
        if escapes {
            args.push("-e");
        }
        loop {
            let out = self.t(&args);
            if out.contains(s) || start.elapsed() > Duration::from_secs(15) {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.t(&["kill-session", "-t", &self.name]);
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[test]
fn tui_shows_the_time_line_and_a_picture_in_half_blocks() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux not installed");
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
