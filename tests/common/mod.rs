//! A listener started in-process for the integration tests, its store in a temporary directory.
//! Shared by `tests/listen.rs` and `tests/listen_attack.rs`; each uses part of it.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

pub mod sim;

use alarmscope::listen::{
    spawn, EventRecord, ListenHandle, ListenOptions, ListenSummary, ListenUpdate,
};
use alarmscope::model::{Connection, Report};

pub struct Srv {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    rx: Receiver<ListenUpdate>,
    handle: Option<ListenHandle>,
}

impl Srv {
    /// Start on a free loopback port with the options `f` sets; every update is kept.
    pub fn start(f: impl FnOnce(&mut ListenOptions)) -> Srv {
        Srv::start_keeping(f, Some)
    }

    /// Start, keeping only the updates `keep` returns (connection upserts pile up in the channel
    /// of a long test that does not read them).
    pub fn start_keeping(
        f: impl FnOnce(&mut ListenOptions),
        keep: fn(ListenUpdate) -> Option<ListenUpdate>,
    ) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let mut o = ListenOptions {
            bind: "127.0.0.1:0".into(),
            store: Some(dir.path().join("store")),
            ..Default::default()
        };
        f(&mut o);
        let (rx, handle) = spawn(o, keep).unwrap();
        Srv {
            addr: handle.local_addr,
            dir,
            rx,
            handle: Some(handle),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A client connection with 10 s read and write timeouts.
    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// The next `n` event records (10 s at most).
    pub fn events(&self, n: usize) -> Vec<EventRecord> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ListenUpdate::Event(e)) => out.push(*e),
                Ok(_) => {}
                Err(_) => panic!("only {} of {n} events reported", out.len()),
            }
        }
        out
    }

    /// The next `n` connections stopped by a TLS problem (10 s at most).
    pub fn problems(&self, n: usize) -> Vec<alarmscope::listen::tls::ProblemRecord> {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(ListenUpdate::Problem(p)) => out.push(*p),
                Ok(_) => {}
                Err(_) => panic!("only {} of {n} TLS problems reported", out.len()),
            }
        }
        out
    }

    /// Stop the server; the final counts. The store stays until `self` is dropped.
    pub fn stop(&mut self) -> ListenSummary {
        self.stop_with_report().1
    }

    /// Stop the server; the final report, the counts, and the connection upserts not yet read.
    pub fn stop_with_report(&mut self) -> (Report, ListenSummary, Vec<Connection>) {
        if let Some(h) = self.handle.take() {
            h.join();
        }
        let mut upserts = Vec::new();
        loop {
            match self.rx.recv_timeout(Duration::from_secs(10)) {
                Ok(ListenUpdate::Final(r, s)) => return (*r, s, upserts),
                Ok(ListenUpdate::Upsert(c)) => upserts.push(c),
                Ok(ListenUpdate::Error(e)) => panic!("server error: {e}"),
                Ok(_) => {}
                Err(_) => panic!("no final update"),
            }
        }
    }
}

/// Connect to `addr` with 10 s read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Start `alarmscope listen ARGS` with stdout and stderr piped; its bound address, read from the
/// start line on stderr, and the rest of stderr (keep reading it: a closed pipe would end the
/// listener).
pub fn spawn_listen(
    args: &[&str],
) -> (
    std::process::Child,
    SocketAddr,
    std::io::BufReader<std::process::ChildStderr>,
) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_alarmscope"))
        .arg("listen")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let addr = bound_addr(&mut err);
    (child, addr, err)
}

/// Start `alarmscope sniff -i lo` with the options `args` adds, stdout and stderr piped, and
/// wait until it captures (its start line on stderr, then 300 ms for the ring to be live); the
/// rest of stderr is returned (keep it open while sniff runs).
pub fn spawn_sniff(
    args: impl FnOnce(&mut std::process::Command) -> &mut std::process::Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alarmscope"));
    cmd.args(["sniff", "-i", "lo"]);
    let mut child = args(&mut cmd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("capturing on lo"), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    (child, err)
}

/// Read the listener binary's start line from its stderr and the address it bound.
pub fn bound_addr(err: &mut impl std::io::BufRead) -> SocketAddr {
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    line.split("listening on ")
        .nth(1)
        .and_then(|r| r.split([',', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}
