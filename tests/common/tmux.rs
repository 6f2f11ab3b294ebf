//! The real binary in a real terminal: a tmux session running `alarmscope replay SAMPLE`, for
//! the smoke tests (tests/tui_smoke.rs, tests/tui_smoke_tls.rs). Included with
//! `#[path = "common/tmux.rs"] mod tmux;` so those tests do not build the listener helpers.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

/// True when tmux can run; says so on stderr when the test is skipped.
pub fn available() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok();
    if !ok {
        eprintln!("skipped: tmux not installed");
    }
    ok
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A tmux session running `alarmscope replay SAMPLE` at `w` x `h` on its own socket; killed on
/// drop. After the TUI exits the pane prints `EXITED <status>` and stays for 30 s.
pub struct Session {
    pub name: String,
    socket: String,
}

impl Session {
    /// `tag` keeps sessions of concurrent tests apart; `sample` is a file in samples/.
    pub fn start(tag: &str, sample: &str, w: u16, h: u16) -> Session {
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

    /// Send `k` (tmux key names: "n", "Escape"...).
    pub fn keys(&self, k: &str) {
        self.t(&["send-keys", "-t", &self.name, k]);
    }

    /// The screen (with its colours as escape sequences when `escapes`) once it shows `s`, or
    /// after 15 s.
    pub fn wait_for(&self, s: &str, escapes: bool) -> String {
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
