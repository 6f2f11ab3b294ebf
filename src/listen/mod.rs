//! `alarmscope listen`: be the alarm server. A tokio shell around the same sans-IO stages as
//! replay ([`crate::http::MessageDecoder`] for framing, [`crate::isapi::BodyDecoder`] for the
//! event and its parts), with a durable [`crate::store::Store`], limits, timeouts and fault
//! injection ([`fault`]). Every exchange is reported with the replay model
//! ([`crate::model::Connection`] / [`crate::model::Exchange`]).
//!
//! Use [`Server::bind`] (synchronous: bind and store errors come back as one-line messages), then
//! [`Server::run`] inside a tokio runtime; or [`spawn`] to run it on its own thread and receive
//! [`ListenUpdate`]s over a `std::sync::mpsc` channel (the TUI).

pub mod auth;
pub mod cli;
mod conn;
mod evict;
pub mod fault;
mod lines;
mod record;
pub mod response;
pub mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{watch, Semaphore, TryAcquireError};

use crate::isapi::BodyLimits;
use crate::model::{Connection, Exchange, Report, Verdict};
use crate::store::{Store, StoreOptions, StoredEvent};
use crate::time::Timestamp;

pub use fault::{FaultAction, FaultPlan, FaultSpec, Selector};

/// Resource limits of the listener (all configurable on the command line).
#[derive(Debug, Clone)]
pub struct ListenLimits {
    /// Largest request head (start line + headers); beyond it the answer is 413.
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Largest request body (decoded); beyond it the answer is 413. Default 64 MiB: room for
    /// four pictures of several MB plus metadata.
    pub max_body_bytes: u64,
    /// A keep-alive connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
    /// A request in progress must deliver bytes at least this often, and its head must be
    /// complete within this time from its first byte (slow clients get 408).
    pub read_timeout: Duration,
    /// Connections served at once. When all are taken and another arrives, the connection that
    /// has waited longest for a request (idle first, then an incomplete head) is closed to make
    /// room; if every connection is busy with a request, the newcomer waits for a free slot.
    pub max_connections: usize,
}

impl Default for ListenLimits {
    fn default() -> Self {
        ListenLimits {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_body_bytes: 64 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(15),
            max_connections: 1024,
        }
    }
}

/// Everything `listen` is told.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub bind: String,
    /// Store directory; `None` answers without storing (`--no-store`).
    pub store: Option<PathBuf>,
    pub store_options: StoreOptions,
    /// Only paths starting with this are accepted; others get 404.
    pub path_prefix: Option<String>,
    pub limits: ListenLimits,
    pub body_limits: BodyLimits,
    pub faults: Vec<FaultSpec>,
    pub fault_seed: u64,
    /// Answer `Connection: close` and close after every answer (what the vendor's reference
    /// server does) even when the device offers keep-alive.
    pub close_after_answer: bool,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many events (exchanges reported).
    pub count: Option<u64>,
    /// On stop, how long requests in progress may take to finish.
    pub grace: Duration,
    /// Requests the final report's diagnosis keeps on its per-device time lines (~64 bytes
    /// each); past it, the older half is diagnosed and dropped (see
    /// [`crate::diagnose::Ledger::bounded`]). Counts cover the whole session either way.
    pub max_diagnosed_requests: usize,
    /// Exchanges kept per connection record (a long keep-alive connection drops its oldest; also
    /// at most about 1 MiB of them). Finished exchanges keep at most 8 KiB of metadata text.
    pub max_exchanges_per_connection: usize,
    /// Require credentials (`--auth`): others are answered 401 with a challenge, not stored.
    pub auth: Option<auth::AuthConfig>,
    /// Speak TLS (`--tls`): certificate, key log, whether plain HTTP is served too.
    pub tls: Option<tls::TlsOptions>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            bind: "0.0.0.0:8080".into(),
            store: Some(default_store_dir()),
            store_options: StoreOptions::default(),
            path_prefix: None,
            limits: ListenLimits::default(),
            body_limits: BodyLimits::default(),
            faults: Vec::new(),
            fault_seed: 0,
            close_after_answer: false,
            duration: None,
            count: None,
            grace: Duration::from_secs(2),
            max_diagnosed_requests: 500_000,
            max_exchanges_per_connection: 1_000,
            auth: None,
            tls: None,
        }
    }
}

/// `$XDG_DATA_HOME/alarmscope/events`, else `~/.local/share/alarmscope/events`, else
/// `./alarmscope-events`.
pub fn default_store_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("alarmscope/events");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/alarmscope/events");
    }
    PathBuf::from("alarmscope-events")
}

/// One reported event: the exchange (replay schema) plus where it was stored. Serialised as one
/// `--json` line.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub connection: u64,
    pub client: String,
    pub server: String,
    #[serde(flatten)]
    pub exchange: Exchange,
    /// `plain` or `tls`: how the request reached the listener.
    pub transport: tls::Transport,
    /// Where the event is on disk (null with `--no-store`, for rejected requests, or when the
    /// store failed).
    pub stored: Option<StoredEvent>,
    /// Why the event could not be stored (it was then answered 500).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_error: Option<String>,
}

/// Callback receiving connection records.
pub type ConnectionCallback = Arc<dyn Fn(Connection) + Send + Sync>;
/// Callback receiving event records.
pub type EventCallback = Arc<dyn Fn(&EventRecord) + Send + Sync>;

/// Callback receiving connections stopped by a TLS problem.
pub type ProblemCallback = Arc<dyn Fn(&tls::ProblemRecord) + Send + Sync>;

/// Callbacks the server calls as things happen (from its worker threads).
#[derive(Clone, Default)]
pub struct Observers {
    /// A connection was stopped before any request by a TLS problem (failed handshake, HTTPS on
    /// the plain port, plain HTTP on the TLS port).
    pub on_problem: Option<ProblemCallback>,
    /// A connection changed (exchange added or answered, connection closed): the whole record,
    /// to upsert by `id`.
    pub on_connection: Option<ConnectionCallback>,
    /// An exchange reached its final state (answered, failed on purpose, rejected, cut short).
    pub on_event: Option<EventCallback>,
}

/// Counts over a listen session.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListenSummary {
    pub bind: String,
    pub store: Option<PathBuf>,
    pub connections: u64,
    pub events: u64,
    pub ok: u64,
    pub error_status: u64,
    pub no_response: u64,
    pub incomplete: u64,
    /// Events stored durably.
    pub stored: u64,
    pub store_errors: u64,
    /// Events failed on purpose (`--fault`).
    pub injected_faults: u64,
    /// Connections closed to make room for new ones (at `--max-connections`, or when accept ran
    /// out of file descriptors): idle ones, then slow-header ones (answered 408).
    pub evicted: u64,
    /// Connections stopped by a TLS problem before any request (see `tls_problem` lines).
    pub tls_problems: u64,
    /// SHA-256 fingerprint of the certificate with `--tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_fingerprint: Option<String>,
    pub seconds: f64,
}

#[derive(Default)]
struct Stats {
    connections: AtomicU64,
    events: AtomicU64,
    ok: AtomicU64,
    error_status: AtomicU64,
    no_response: AtomicU64,
    incomplete: AtomicU64,
    stored: AtomicU64,
    store_errors: AtomicU64,
    injected: AtomicU64,
    evicted: AtomicU64,
    tls_problems: AtomicU64,
}

/// State shared by the connection tasks.
pub(crate) struct Shared {
    opts: ListenOptions,
    store: Option<Store>,
    faults: Mutex<FaultPlan>,
    observers: Observers,
    stats: Stats,
    stop: watch::Receiver<bool>,
    stop_tx: watch::Sender<bool>,
    /// Every finished connection's diagnosis, for the final report.
    ledger: Mutex<crate::diagnose::Ledger>,
    local: SocketAddr,
    /// Connections waiting for a request, to close when room is needed.
    evictor: Arc<evict::Evictor>,
    /// The credential check of `--auth`.
    auth: Option<auth::Authenticator>,
    /// `--tls`: the server configuration.
    tls: Option<Arc<tls::TlsSetup>>,
}

impl Shared {
    fn publish_connection(&self, c: &Connection) {
        if let Some(f) = &self.observers.on_connection {
            f(c.clone());
        }
    }

    fn publish_event(&self, rec: &EventRecord) {
        let s = &self.stats;
        match rec.exchange.verdict {
            Verdict::Ok => s.ok.fetch_add(1, Ordering::Relaxed),
            Verdict::ErrorStatus => s.error_status.fetch_add(1, Ordering::Relaxed),
            // The listener reads its own socket: nothing is lost to a capture, and an answer it
            // cannot read is its own; these two come from captures only.
            Verdict::NoResponse | Verdict::NotCaptured => {
                s.no_response.fetch_add(1, Ordering::Relaxed)
            }
            Verdict::Incomplete | Verdict::MalformedResponse => {
                s.incomplete.fetch_add(1, Ordering::Relaxed)
            }
            // Captures only (TLS records read without keys); the listener reads cleartext.
            Verdict::EncryptedAnswered => 0,
        };
        if rec.stored.is_some() {
            s.stored.fetch_add(1, Ordering::Relaxed);
        }
        if rec.store_error.is_some() {
            s.store_errors.fetch_add(1, Ordering::Relaxed);
        }
        if rec.exchange.injected_fault.is_some() {
            s.injected.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(f) = &self.observers.on_event {
            f(rec);
        }
        let n = s.events.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        if self.opts.count.is_some_and(|c| n >= c) {
            let _ = self.stop_tx.send(true);
        }
    }

    fn publish_problem(&self, rec: &tls::ProblemRecord) {
        self.stats.tls_problems.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = &self.observers.on_problem {
            f(rec);
        }
    }

    /// A connection finished: into the final report's diagnosis (the record itself is dropped).
    fn diagnose(&self, c: &Connection) {
        if let Ok(mut l) = self.ledger.lock() {
            l.add(c);
        }
    }
}

/// Now as a [`Timestamp`]; kept for the listener's own modules, the clock is [`Timestamp::now`].
pub(crate) fn now() -> Timestamp {
    Timestamp::now()
}

/// A bound (not yet running) listener with its store open.
pub struct Server {
    listener: std::net::TcpListener,
    local: SocketAddr,
    store: Option<Store>,
    opts: ListenOptions,
    tls: Option<Arc<tls::TlsSetup>>,
}

/// Turn a bind error into one line a user can act on.
fn bind_error(addr: &str, e: &std::io::Error) -> anyhow::Error {
    let port = addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    match e.kind() {
        std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
            "cannot listen on {addr}: the port is already in use (another alarm server or alarmscope?); choose another with --bind"
        ),
        std::io::ErrorKind::PermissionDenied if port.is_some_and(|p| p < 1024) => anyhow::anyhow!(
            "cannot listen on {addr}: permission denied; ports under 1024 need root or CAP_NET_BIND_SERVICE (try --bind 0.0.0.0:8080)"
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            anyhow::anyhow!("cannot listen on {addr}: that address is not on this machine")
        }
        _ => anyhow::anyhow!("cannot listen on {addr}: {e}"),
    }
}

impl Server {
    /// Bind the socket and open the store. Errors are one line: port in use, permission denied
    /// for ports under 1024, store not writable.
    pub fn bind(opts: ListenOptions) -> anyhow::Result<Server> {
        use std::net::ToSocketAddrs;
        let addrs: Vec<SocketAddr> = opts
            .bind
            .to_socket_addrs()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}: bad address ({e}); use ADDR:PORT",
                    opts.bind
                )
            })?
            .collect();
        let mut last = None;
        let mut bound = None;
        for a in addrs {
            match std::net::TcpListener::bind(a) {
                Ok(l) => {
                    bound = Some(l);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let listener = match (bound, last) {
            (Some(l), _) => l,
            (None, Some(e)) => return Err(bind_error(&opts.bind, &e)),
            (None, None) => anyhow::bail!(
                "cannot listen on {}: the name resolves to no address",
                opts.bind
            ),
        };
        listener.set_nonblocking(true)?;
        let mut opts = opts;
        opts.limits.max_connections = fit_nofile(opts.limits.max_connections.max(1));
        let local = listener.local_addr()?;
        let store = match &opts.store {
            Some(dir) => Some(
                Store::open(dir, opts.store_options.clone()).map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            None => None,
        };
        let tls = match &opts.tls {
            Some(t) => Some(Arc::new(tls::TlsSetup::load(
                t,
                store.as_ref().map(|s| s.root()),
                &local,
            )?)),
            None => None,
        };
        Ok(Server {
            listener,
            local,
            store,
            opts,
            tls,
        })
    }

    /// The address actually bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Connections served at once: `--max-connections`, or fewer if the open files limit is too
    /// low for it (see the start message).
    pub fn max_connections(&self) -> usize {
        self.opts.limits.max_connections
    }

    /// The TLS side (`--tls`): fingerprint and where the certificate came from.
    pub fn tls(&self) -> Option<&tls::TlsSetup> {
        self.tls.as_deref()
    }

    /// The store directory (absolute), unless `--no-store`.
    pub fn store_dir(&self) -> Option<&Path> {
        self.store.as_ref().map(|s| s.root())
    }

    /// Serve until `shutdown` resolves, `--duration` passes or `--count` events were reported;
    /// then stop accepting, give requests in progress `grace` to finish, close the store, and
    /// return the final report and counts.
    pub async fn run(
        self,
        observers: Observers,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<(Report, ListenSummary)> {
        let started = std::time::Instant::now();
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let faults = FaultPlan::new(self.opts.faults.clone(), self.opts.fault_seed);
        let shared = Arc::new(Shared {
            opts: self.opts.clone(),
            store: self.store.clone(),
            faults: Mutex::new(faults),
            observers,
            stats: Stats::default(),
            stop: stop_rx.clone(),
            stop_tx,
            ledger: Mutex::new(crate::diagnose::Ledger::bounded(
                self.opts.max_diagnosed_requests,
            )),
            local: self.local,
            evictor: Arc::default(),
            auth: self.opts.auth.clone().map(|cfg| {
                let seed = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                auth::Authenticator::new(cfg, seed)
            }),
            tls: self.tls.clone(),
        });
        let sem = Arc::new(Semaphore::new(self.opts.limits.max_connections.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut stop = stop_rx;
        let deadline = self.opts.duration.map(|d| tokio::time::Instant::now() + d);
        tokio::pin!(shutdown);
        let mut next_id: u64 = 0;
        let evict = |sh: &Shared| {
            let made_room = sh.evictor.evict_one().is_some();
            if made_room {
                sh.stats.evicted.fetch_add(1, Ordering::Relaxed);
            }
            made_room
        };
        // Accept first, then find a slot: a connection waiting in the kernel's backlog cannot be
        // seen, so room is only made for one that is really there.
        'accept: loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut shutdown => break,
                _ = stop.wait_for(|s| *s) => break,
                _ = sleep_until_opt(deadline) => break,
            };
            // Reap finished tasks so the set stays small.
            while tasks.try_join_next().is_some() {}
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: free one by closing the connection
                    // idle longest, and back off rather than spin.
                    tracing::warn!("accept: {e}");
                    evict(&shared);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Every slot taken: close the connection that has waited longest for a request (it
            // frees its slot within moments); if none is waiting, wait for a slot to free up or
            // for a connection to start waiting.
            let mut made_room = false;
            let permit = loop {
                match sem.clone().try_acquire_owned() {
                    Ok(p) => break p,
                    Err(TryAcquireError::Closed) => break 'accept,
                    Err(TryAcquireError::NoPermits) => {}
                }
                made_room = made_room || evict(&shared);
                tokio::select! {
                    p = sem.clone().acquire_owned() => match p {
                        Ok(p) => break p,
                        Err(_) => break 'accept,
                    },
                    _ = shared.evictor.registered.notified(), if !made_room => {}
                    _ = &mut shutdown => break 'accept,
                    _ = stop.wait_for(|s| *s) => break 'accept,
                    _ = sleep_until_opt(deadline) => break 'accept,
                }
            };
            next_id = next_id.saturating_add(1);
            shared.stats.connections.fetch_add(1, Ordering::Relaxed);
            let sh = shared.clone();
            let id = next_id;
            // Boxed: the connection's future is ~4 KiB, and tokio moved it several times on its
            // way into the task (memmove was ~2.5% of the listener's CPU).
            tasks.spawn(Box::pin(async move {
                tls::serve(stream, id, peer, sh).await;
                drop(permit);
            }));
        }
        drop(listener);
        let _ = shared.stop_tx.send(true);
        let grace = self.opts.grace;
        let _ =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        if let Some(store) = &self.store {
            let s = store.clone();
            let _ = tokio::task::spawn_blocking(move || s.close()).await;
        }
        let ledger = shared
            .ledger
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default();
        let st = &shared.stats;
        let summary = ListenSummary {
            bind: self.local.to_string(),
            store: self.store.as_ref().map(|s| s.root().to_path_buf()),
            connections: st.connections.load(Ordering::Relaxed),
            events: st.events.load(Ordering::Relaxed),
            ok: st.ok.load(Ordering::Relaxed),
            error_status: st.error_status.load(Ordering::Relaxed),
            no_response: st.no_response.load(Ordering::Relaxed),
            incomplete: st.incomplete.load(Ordering::Relaxed),
            stored: st.stored.load(Ordering::Relaxed),
            store_errors: st.store_errors.load(Ordering::Relaxed),
            injected_faults: st.injected.load(Ordering::Relaxed),
            evicted: st.evicted.load(Ordering::Relaxed),
            tls_problems: st.tls_problems.load(Ordering::Relaxed),
            tls_fingerprint: self.tls.as_ref().map(|t| t.fingerprint.clone()),
            seconds: started.elapsed().as_secs_f64(),
        };
        let (findings, _) = ledger.finish(&crate::pipeline::Counters::default(), None);
        let report = crate::report::assemble(
            &format!("listen {}", self.local),
            Vec::new(),
            findings,
            Vec::new(),
        );
        Ok((report, summary))
    }
}

/// Raise the soft limit on open files towards what `max_connections` needs (a socket each, plus
/// the files of events being stored), up to the hard limit, and return the connections that fit:
/// `max_connections`, or fewer when the limit stays too low (half of what is left after a
/// reserve, so that the store can still open its files when every connection is taken). Many
/// systems start processes with a soft limit of 1024, which the default `--max-connections`
/// alone would exhaust: accept would fail with EMFILE, and so would the store (500s).
fn fit_nofile(max_connections: usize) -> usize {
    const RESERVE: u64 = 64;
    let want = (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(RESERVE);
    let Some(soft) = raise_nofile(want) else {
        return max_connections;
    };
    if soft >= want {
        return max_connections;
    }
    let fit = usize::try_from(soft.saturating_sub(RESERVE) / 2).unwrap_or(usize::MAX);
    max_connections.min(fit.max(16))
}

/// Raise the soft RLIMIT_NOFILE to `want` (at most the hard limit); the soft limit then.
#[allow(clippy::useless_conversion)] // rlim_t is not u64 everywhere
#[allow(unsafe_code)] // a libc call the standard library does not wrap; see SAFETY below
fn raise_nofile(want: u64) -> Option<u64> {
    #[cfg(unix)]
    {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a pointer to a valid local rlimit.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
                return None;
            }
            let want = libc::rlim_t::try_from(want).unwrap_or(libc::rlim_t::MAX);
            if r.rlim_cur < want {
                let old = r.rlim_cur;
                r.rlim_cur = want.min(r.rlim_max);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    r.rlim_cur = old;
                }
            }
        }
        Some(u64::try_from(r.rlim_cur).unwrap_or(u64::MAX))
    }
    #[cfg(not(unix))]
    {
        let _ = want;
        None
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What [`spawn`] sends.
#[derive(Debug)]
pub enum ListenUpdate {
    /// A connection changed: upsert it by id.
    Upsert(Connection),
    /// An exchange reached its final state.
    Event(Box<EventRecord>),
    /// A connection was stopped by a TLS problem (its row comes as `Upsert` too).
    Problem(Box<tls::ProblemRecord>),
    /// The server stopped: the report over the whole session (its findings: connections were
    /// sent one by one as `Upsert`) and the session counts.
    Final(Box<Report>, ListenSummary),
    /// The server failed after starting.
    Error(String),
}

/// A server running on its own thread.
pub struct ListenHandle {
    pub local_addr: SocketAddr,
    pub store_dir: Option<PathBuf>,
    /// With `--tls`: the certificate's SHA-256 fingerprint (the TUI header shows it).
    pub tls_fingerprint: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ListenHandle {
    /// Ask the server to stop (it sends `Final` when done).
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Stop and wait for the server thread.
    pub fn join(mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bind (errors returned at once) and run the server on a new thread with its own tokio runtime.
/// Every update goes through `map` into the returned channel (return `None` to drop one), so the
/// TUI can receive its own `Feed` type directly, e.g.
/// `spawn(opts, |u| match u { ListenUpdate::Upsert(c) => Some(Feed::Upsert(vec![c])), ... })`.
pub fn spawn<T: Send + 'static>(
    opts: ListenOptions,
    map: impl Fn(ListenUpdate) -> Option<T> + Send + Sync + 'static,
) -> anyhow::Result<(std::sync::mpsc::Receiver<T>, ListenHandle)> {
    let (tx, rx) = std::sync::mpsc::channel::<T>();
    let handle = spawn_into(opts, tx, map)?;
    Ok((rx, handle))
}

/// [`spawn`] into a channel of the caller's, which others may send to as well (the TUI's
/// warnings).
pub fn spawn_into<T: Send + 'static>(
    opts: ListenOptions,
    tx: std::sync::mpsc::Sender<T>,
    map: impl Fn(ListenUpdate) -> Option<T> + Send + Sync + 'static,
) -> anyhow::Result<ListenHandle> {
    let server = Server::bind(opts)?;
    let local_addr = server.local_addr();
    let store_dir = server.store_dir().map(Path::to_path_buf);
    let tls_fingerprint = server.tls().map(|t| t.fingerprint.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let map = Arc::new(map);
    let thread = std::thread::Builder::new()
        .name("alarmscope-listen".into())
        .spawn(move || {
            let send = {
                let tx = tx.clone();
                let map = map.clone();
                move |u: ListenUpdate| {
                    if let Some(t) = map(u) {
                        let _ = tx.send(t);
                    }
                }
            };
            let send = Arc::new(send);
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    send(ListenUpdate::Error(format!(
                        "cannot start the runtime: {e}"
                    )));
                    return;
                }
            };
            let s1 = send.clone();
            let s2 = send.clone();
            let s3 = send.clone();
            let observers = Observers {
                on_problem: Some(Arc::new(move |p: &tls::ProblemRecord| {
                    s3(ListenUpdate::Problem(Box::new(p.clone())))
                })),
                on_connection: Some(Arc::new(move |c| s1(ListenUpdate::Upsert(c)))),
                on_event: Some(Arc::new(move |r: &EventRecord| {
                    s2(ListenUpdate::Event(Box::new(r.clone())))
                })),
            };
            let result = rt.block_on(server.run(observers, async move {
                let _ = stop_rx.await;
            }));
            match result {
                Ok((report, summary)) => send(ListenUpdate::Final(Box::new(report), summary)),
                Err(e) => send(ListenUpdate::Error(format!("{e:#}"))),
            }
        })?;
    Ok(ListenHandle {
        local_addr,
        store_dir,
        tls_fingerprint,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// One readable line per event (the `--text` mode and a terminal without the TUI).
pub fn text_line(r: &EventRecord) -> String {
    let ex = &r.exchange;
    let ev = ex.event.as_ref();
    let ty = ev
        .map(|e| e.type_label())
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "-".into());
    let state = ev.and_then(|e| e.event_state.as_deref()).unwrap_or("");
    let answer = match &ex.response {
        Some(resp) => format!("{} {} {:.1} ms", resp.status, resp.reason, resp.latency_ms),
        None => "no answer".to_string(),
    };
    let parts = if ex.parts.is_empty() {
        String::new()
    } else {
        format!(" {} parts", ex.parts.len())
    };
    let fault = ex
        .injected_fault
        .as_deref()
        .map(|f| format!(" [fault {f}]"))
        .unwrap_or_default();
    let fault = match ex.auth {
        Some(a) if a != crate::model::AuthCheck::Accepted => format!("{fault} [auth: {a}]"),
        _ => fault,
    };
    // Broken pictures (the body decoder's check, as in a replay).
    let fault: String = fault
        + &ex
            .notes
            .iter()
            .filter(|n| n.kind() == "picture")
            .map(|n| format!(" [{n}]"))
            .collect::<String>();
    let stored = match (&r.stored, &r.store_error) {
        (Some(s), _) => format!(" -> {}", s.rel_dir),
        (None, Some(e)) => format!(" store error: {e}"),
        _ => String::new(),
    };
    format!(
        "{} #{}.{} {} {} {} {} {} {}{} {} B -> {} ({}){}{}",
        ex.request.time.to_clock_string(),
        r.connection,
        ex.index,
        r.client,
        if ex.request.method.is_empty() {
            "?"
        } else {
            &ex.request.method
        },
        if ex.request.path.is_empty() {
            "?"
        } else {
            &ex.request.path
        },
        ty,
        state,
        ex.body_kind,
        parts,
        ex.request.body_bytes,
        answer,
        ex.verdict.as_str(),
        fault,
        stored
    )
}
