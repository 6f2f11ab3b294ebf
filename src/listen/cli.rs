//! `alarmscope listen` command line: arguments and the headless (`--json` / `--text`) runner.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::fault::{parse_duration, FaultSpec};
use super::lines::LineOut;
use super::{EventRecord, ListenLimits, ListenOptions, Observers, Server};
use crate::store::StoreOptions;

/// Why a byte-size option could not be read (the text is what clap prints).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("bad size '{0}' (use e.g. 65536, 64k, 64M)")]
    Bad(String),
    #[error("size '{0}' too large")]
    TooLarge(String),
}

/// Byte sizes: `65536`, `64k`, `64M`, `1G` (binary multiples).
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_lowercase() {
                'k' => 1 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                'b' => 1,
                _ => return Err(SizeError::Bad(s.to_string())),
            };
            (t.get(..i).unwrap_or(""), m)
        }
        _ => (t, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| SizeError::Bad(s.to_string()))?;
    n.checked_mul(mult)
        .ok_or_else(|| SizeError::TooLarge(s.to_string()))
}

fn parse_fault(s: &str) -> Result<FaultSpec, super::fault::FaultSpecError> {
    s.parse()
}

/// Be the alarm server: accept ISAPI event pushes, store them durably, answer 200 OK.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Which events the headless output prints (the TUI filter's meaning; every event is still
    /// answered and stored).
    #[command(flatten)]
    pub rows: crate::filter::FilterArgs,
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8080")]
    pub bind: String,
    /// Store directory (default: $XDG_DATA_HOME/alarmscope/events or ~/.local/share/alarmscope/events).
    #[arg(long, value_name = "DIR", conflicts_with = "no_store")]
    pub store: Option<PathBuf>,
    /// Answer without storing anything.
    #[arg(long)]
    pub no_store: bool,
    /// Accept only request paths starting with PREFIX; others get 404 (a wrong URL on the device
    /// shows up).
    #[arg(long = "path", value_name = "PREFIX")]
    pub path_prefix: Option<String>,
    /// One JSON line per event (replay exchange schema + stored paths), a summary line at the end.
    #[arg(long, conflicts_with = "text")]
    pub json: bool,
    /// One readable line per event.
    #[arg(long)]
    pub text: bool,
    /// Fail events on purpose: ACTION[,SELECTOR...]; actions delay=2s, status=503, hang, reset;
    /// selectors every=N, ratio=0.3, type=VMD. Repeatable; the first matching spec applies.
    #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
    pub faults: Vec<FaultSpec>,
    /// Seed for `ratio=` fault selection (same seed, same events failed).
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
    /// Answer `Connection: close` and close after every answer, even if the device offers
    /// keep-alive.
    #[arg(long)]
    pub close: bool,
    /// Stop after this long (e.g. 30, 30s, 5m).
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Largest request head.
    #[arg(long, value_name = "BYTES", default_value = "64k", value_parser = parse_size)]
    pub max_header_bytes: u64,
    /// Largest request body.
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    pub max_body_bytes: u64,
    /// Close a keep-alive connection idle this long.
    #[arg(long, value_name = "SECS", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// A request must progress at least this often and finish its head within it (else 408).
    #[arg(long, value_name = "SECS", default_value = "15s", value_parser = parse_duration)]
    pub read_timeout: Duration,
    /// Connections served at once.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Require credentials, as an alarm server with authentication does: requests without valid
    /// ones are answered 401 with a challenge (digest: MD5, qop=auth) and not stored; each
    /// exchange shows what the device sent (`auth` in --json lines).
    #[arg(long, value_enum, requires_all = ["user", "password"])]
    pub auth: Option<super::auth::AuthScheme>,
    /// User name required with --auth.
    #[arg(long, requires = "auth")]
    pub user: Option<String>,
    /// Password required with --auth.
    #[arg(long, env = "ALARMSCOPE_LISTEN_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Realm named in the --auth challenge.
    #[arg(long, default_value = "alarmscope", requires = "auth")]
    pub realm: String,
    /// Speak HTTPS: TLS 1.2 and 1.3 (rustls). Without --cert/--key a self-signed certificate is
    /// made at the first start and kept in STORE/tls/ (its SHA-256 fingerprint is printed).
    /// Plain HTTP sent to this port is answered 400 and reported (see --tls-also-plain).
    #[arg(long)]
    pub tls: bool,
    /// With --tls: the certificate chain (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,
    /// With --tls: the certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,
    /// With --tls: append the session secrets to FILE in the NSS key log format (for Wireshark
    /// or `replay` of a capture of this listener).
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub keylog: Option<PathBuf>,
    /// With --tls: serve plain HTTP on the same port too (told apart by the first byte; each
    /// event line says `transport`).
    #[arg(long, requires = "tls")]
    pub tls_also_plain: bool,
    /// Do not fsync (benchmarks only: acknowledged events may be lost on power failure).
    #[arg(long, hide = true)]
    pub unsafe_no_fsync: bool,
}

impl ListenArgs {
    /// The server options these arguments describe.
    pub fn options(&self) -> ListenOptions {
        let defaults = ListenOptions::default();
        ListenOptions {
            bind: self.bind.clone(),
            store: if self.no_store {
                None
            } else {
                Some(self.store.clone().unwrap_or_else(super::default_store_dir))
            },
            store_options: StoreOptions {
                fsync: !self.unsafe_no_fsync,
                ..StoreOptions::default()
            },
            path_prefix: self.path_prefix.clone(),
            limits: ListenLimits {
                max_header_bytes: usize::try_from(self.max_header_bytes).unwrap_or(usize::MAX),
                max_headers: ListenLimits::default().max_headers,
                max_body_bytes: self.max_body_bytes,
                idle_timeout: self.idle_timeout,
                read_timeout: self.read_timeout,
                max_connections: self.max_connections,
            },
            faults: self.faults.clone(),
            fault_seed: self.fault_seed,
            close_after_answer: self.close,
            duration: self.duration,
            count: self.count,
            auth: match (self.auth, &self.user, &self.password) {
                (Some(scheme), Some(user), Some(password)) => Some(super::auth::AuthConfig {
                    scheme,
                    user: user.clone(),
                    password: password.clone(),
                    realm: self.realm.clone(),
                }),
                _ => None,
            },
            tls: self.tls.then(|| super::tls::TlsOptions {
                cert: self.cert.clone(),
                key: self.key.clone(),
                keylog: self.keylog.clone(),
                also_plain: self.tls_also_plain,
            }),
            ..defaults
        }
    }
}

/// The TUI over a running server: connections are upserted as their exchanges arrive; quitting
/// the TUI stops the server.
fn run_tui(opts: ListenOptions) -> anyhow::Result<i32> {
    use crate::feed::Feed;
    use crate::tui::warnings::{install, WarningSlot};
    let (tx, rx) = std::sync::mpsc::channel();
    // The store's and the server's warnings go to the screen (`w`) until the session ends.
    let slot: WarningSlot = Arc::new(std::sync::Mutex::new(Some(tx.clone())));
    install(slot.clone());
    let handle = match super::spawn_into(opts, tx, move |u| {
        let f = match u {
            super::ListenUpdate::Upsert(c) => Some(Feed::Upsert(vec![c])),
            super::ListenUpdate::Event(_) | super::ListenUpdate::Problem(_) => None,
            super::ListenUpdate::Final(r, _) => Some(Feed::Final(*r)),
            super::ListenUpdate::Error(e) => Some(Feed::Error(e)),
        };
        if matches!(f, Some(Feed::Final(_) | Feed::Error(_))) {
            if let Ok(mut s) = slot.lock() {
                s.take();
            }
        }
        f
    }) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    let title = match &handle.store_dir {
        Some(d) => format!("listen {} -> {}", handle.local_addr, d.display()),
        None => format!("listen {} (no store)", handle.local_addr),
    };
    let title = match &handle.tls_fingerprint {
        Some(fp) => format!("{title} | TLS, SHA-256 {fp}"),
        None => title,
    };
    let code = crate::tui::run_live(title, rx);
    handle.join();
    code
}

/// Resolves on SIGINT or SIGTERM.
async fn signalled() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Run `listen` headless. Returns the exit code (0; 2 with a one-line error when it cannot start).
pub fn run(a: ListenArgs) -> anyhow::Result<i32> {
    let opts = a.options();
    if !a.json && !a.text && std::io::stdout().is_terminal() {
        return run_tui(opts);
    }
    let json = a.json || !a.text;
    let rows = match a.rows.to_filter() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    let server = match Server::bind(opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alarmscope: {e}");
            return Ok(2);
        }
    };
    match server.store_dir() {
        Some(d) => eprintln!(
            "alarmscope: listening on {}, storing events in {} (index: {})",
            server.local_addr(),
            d.display(),
            d.join(crate::store::INDEX_FILE).display()
        ),
        None => eprintln!(
            "alarmscope: listening on {} (--no-store: events are not stored)",
            server.local_addr()
        ),
    }
    if server.max_connections() < a.max_connections {
        eprintln!(
            "alarmscope: serving at most {} connections at once (not {}): the open files limit is too low (raise it with ulimit -n)",
            server.max_connections(),
            a.max_connections
        );
    }
    if let Some(t) = server.tls() {
        eprintln!("alarmscope: {}", t.describe());
    }
    report_warnings();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let lines = Arc::new(LineOut::start(std::io::stdout())?);
    let sink = lines.clone();
    let wanted = move |r: &EventRecord| {
        rows.matches_row(&crate::filter::Row::of_exchange(
            crate::model::host_of(&r.client),
            &r.exchange,
        ))
    };
    let on_event: super::EventCallback = if json {
        Arc::new(move |r: &EventRecord| {
            if !wanted(r) {
                return;
            }
            if let Ok(line) = serde_json::to_vec(r) {
                sink.push(&line);
            }
        })
    } else {
        Arc::new(move |r: &EventRecord| {
            if wanted(r) {
                sink.push(super::text_line(r).as_bytes());
            }
        })
    };
    let sink = lines.clone();
    let on_problem: super::ProblemCallback = if json {
        Arc::new(move |p: &super::tls::ProblemRecord| {
            if let Ok(line) = serde_json::to_vec(p) {
                sink.push(&line);
            }
        })
    } else {
        Arc::new(move |p: &super::tls::ProblemRecord| {
            sink.push(super::tls::problem_text_line(p).as_bytes())
        })
    };
    if let (true, Some(t)) = (json, server.tls()) {
        // With --tls only (a line of a new kind would surprise readers of plain listeners).
        let start = serde_json::json!({
            "alarmscope": env!("CARGO_PKG_VERSION"),
            "start": true,
            "listen": {
                "bind": server.local_addr().to_string(),
                "store": server.store_dir(),
                "tls": {
                    "fingerprint_sha256": t.fingerprint,
                    "certificate": t.source,
                    "keylog": t.keylog,
                    "also_plain": t.also_plain,
                },
            },
        });
        lines.push(start.to_string().as_bytes());
    }
    let observers = Observers {
        on_problem: Some(on_problem),
        on_connection: None,
        on_event: Some(on_event),
    };
    let (report, summary) = rt.block_on(server.run(observers, signalled()))?;
    // The last line goes the same way: a stdout nobody reads must not keep the process alive.
    let last = if json {
        serde_json::json!({
            "alarmscope": env!("CARGO_PKG_VERSION"),
            "final": true,
            "listen": summary,
            "summary": report.summary,
            "devices": report.devices,
            "stalls": report.stalls,
        })
        .to_string()
    } else {
        format!(
            "{} events on {} connections in {:.1} s: {} ok, {} error status, {} no answer, {} incomplete; {} stored, {} store errors, {} failed on purpose; {} TLS problems",
            summary.events,
            summary.connections,
            summary.seconds,
            summary.ok,
            summary.error_status,
            summary.no_response,
            summary.incomplete,
            summary.stored,
            summary.store_errors,
            summary.injected_faults,
            summary.tls_problems
        )
    };
    lines.push(last.as_bytes());
    let dropped = lines.finish();
    if dropped > 0 {
        eprintln!(
            "alarmscope: {dropped} output lines not written: stdout did not keep up (the events were answered and stored as usual)"
        );
    }
    Ok(0)
}

/// Send the listener's and the store's warnings (an index write that failed, accept errors, a
/// segment that could not be prepared) to stderr, one line each, after the start line. `RUST_LOG`
/// changes the level. Headless only: in the TUI, stderr would write over the screen.
fn report_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536").unwrap(), 65_536);
        assert_eq!(parse_size("64k").unwrap(), 65_536);
        assert_eq!(parse_size("64M").unwrap(), 67_108_864);
        assert_eq!(parse_size("1G").unwrap(), 1_073_741_824);
        assert!(parse_size("12x").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
