//! A simulated device (`alarmscope simulate --serve-isapi 127.0.0.1:0 --json ...`) run as a child
//! process, shared by the doctor, device and simulator tests so that each starts it, finds its
//! ISAPI address and reads its JSON lines the same way.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The admin password every simulated device in the tests is started with.
pub const SIM_PASSWORD: &str = "Secr3t!";

/// A running `simulate --serve-isapi`, killed when dropped.
pub struct SimDevice {
    pub child: Child,
    /// Where it serves ISAPI.
    pub isapi: SocketAddr,
    /// Its stdout (JSON lines), as they arrive.
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SimDevice {
    /// Start it with `extra` options after the common ones; waits (20 s at most) for the line on
    /// stderr that names its ISAPI address, then keeps draining stderr so it never blocks.
    pub fn start(extra: &[&str]) -> SimDevice {
        let mut child = Command::new(env!("CARGO_BIN_EXE_alarmscope"))
            .args([
                "simulate",
                "--serve-isapi",
                "127.0.0.1:0",
                "--isapi-password",
                SIM_PASSWORD,
                "--json",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                if let Some(i) = line.find("http://") {
                    let a = line[i + 7..].split_whitespace().next().unwrap_or("");
                    if let Ok(a) = a.parse::<SocketAddr>() {
                        let _ = tx.send(a);
                    }
                }
            }
        });
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        let out = BufReader::new(child.stdout.take().unwrap());
        thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        let isapi = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("simulator did not start");
        SimDevice {
            child,
            isapi,
            lines,
        }
    }

    /// Its ISAPI base URL, as `alarmscope device` and `doctor` take it.
    pub fn url(&self) -> String {
        format!("http://{}", self.isapi)
    }

    /// Wait (30 s at most) for the run to end (it was started with `--count`) and return its
    /// summary line.
    pub fn summary(&mut self) -> serde_json::Value {
        let t = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "simulator still running"
            );
            thread::sleep(Duration::from_millis(50));
        }
        // Let the stdout reader drain.
        thread::sleep(Duration::from_millis(100));
        let l = self.lines.lock().unwrap();
        let last = l
            .iter()
            .rev()
            .find(|x| x.contains("\"type\":\"summary\""))
            .expect("no summary line");
        serde_json::from_str(last).unwrap()
    }
}
