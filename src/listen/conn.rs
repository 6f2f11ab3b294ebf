//! One TCP connection: read into a buffer, frame with [`MessageDecoder`], build the exchange and
//! decode its body with the core's builder ([`RequestInFlight`]; parts streamed into the store's
//! staging files), then store, answer (or fail on purpose), report.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::evict::{Ticket, Waiting};
use super::fault::FaultAction;
use super::tls::Transport;
use super::{now, record, response, EventRecord, Shared};
use crate::exchange::RequestInFlight;
use crate::http::{HttpEvent, Kind, Limits, MessageDecoder};
use crate::isapi::DecodedBody;
use crate::model::{
    AuthCheck, Connection, ConnectionError, Exchange, Request, RequestError, Response, Verdict,
};
use crate::store::{Staging, StoredEvent};
use crate::tcp::{CloseKind, Handshake, Side};
use crate::time::Timestamp;

const READ_BUF: usize = 64 * 1024;
/// Read buffer of a connection waiting for a request or its head: thousands of idle or slow
/// connections stay cheap.
const READ_BUF_IDLE: usize = 4 * 1024;

/// The stream a connection is served over: plain TCP or TLS over it (`listen --tls`). The
/// handler only reads and writes; the one thing it needs from the socket itself is the `reset`
/// fault's abortive close.
pub(crate) trait ConnStream: AsyncRead + AsyncWrite + Unpin + Send {
    /// Make the coming close a TCP RST (SO_LINGER 0).
    fn abort_on_close(&self);
}

impl ConnStream for TcpStream {
    fn abort_on_close(&self) {
        #[allow(deprecated)]
        let _ = self.set_linger(Some(Duration::ZERO));
    }
}

impl ConnStream for tokio_rustls::server::TlsStream<TcpStream> {
    fn abort_on_close(&self) {
        self.get_ref().0.abort_on_close();
    }
}

/// A request being received.
struct InProgress {
    req: RequestInFlight,
    staging: Option<Staging>,
    multipart: bool,
    content_type: Option<String>,
    /// Answer this instead of storing (404 wrong path, 405 wrong method).
    reject: Option<u16>,
    keep_alive: bool,
    body_bytes: u64,
    store_error: Option<String>,
}

/// A complete request waiting for its answer.
struct Done {
    index: usize,
    decoded: DecodedBody,
    staging: Option<Staging>,
    reject: Option<u16>,
    keep_alive: bool,
    store_error: Option<String>,
}

/// What to send, in order, once the bytes just read are processed.
enum Action {
    /// `HTTP/1.1 100 Continue` for `Expect: 100-continue`.
    Continue(usize),
    /// Store, answer (or fail on purpose) a complete request.
    Respond(Box<Done>),
    /// Answer an error now and close (400 malformed, 413 too large, 404/405 before the body).
    Reject { index: Option<usize>, status: u16 },
}

/// Connection state outside the decoder (so the decoder's callback can borrow it).
struct State {
    conn: Connection,
    /// Exchanges dropped from the front of `conn.exchanges` (bounded record).
    dropped: usize,
    cur: Option<InProgress>,
    actions: VecDeque<Action>,
    /// After a rejection nothing more is read or answered.
    closing: bool,
    /// Interim statuses sent per exchange index (100).
    continued: Vec<usize>,
    /// Plain TCP or TLS (in every event record).
    transport: Transport,
}

impl State {
    fn ex_mut(&mut self, index: usize) -> Option<&mut Exchange> {
        let pos = index.checked_sub(self.dropped)?;
        self.conn.exchanges.get_mut(pos)
    }

    fn ex(&self, index: usize) -> Option<&Exchange> {
        let pos = index.checked_sub(self.dropped)?;
        self.conn.exchanges.get(pos)
    }

    fn push_exchange(&mut self, ex: Exchange, max: usize) {
        if self.conn.exchanges.len() >= max.max(1) {
            self.conn.exchanges.remove(0);
            self.dropped = self.dropped.saturating_add(1);
        }
        self.conn.exchanges.push(ex);
        let excess = record::excess_exchanges(&self.conn.exchanges, record::MAX_RECORD_BYTES);
        if excess > 0 {
            self.conn.exchanges.drain(..excess);
            self.dropped = self.dropped.saturating_add(excess);
        }
    }

    fn next_index(&self) -> usize {
        self.dropped.saturating_add(self.conn.exchanges.len())
    }

    fn error(&mut self, msg: ConnectionError) {
        if self.conn.errors.len() < 20 {
            self.conn.errors.push(msg);
        }
    }
}

fn new_exchange(index: usize, t: Timestamp) -> Exchange {
    Exchange::started(index, Request::begun(t))
}

/// The decoder's events, handled synchronously: heads start an exchange, body bytes go to the
/// body decoder and the staging files, ends queue an answer.
fn on_http(st: &mut State, sh: &Shared, ev: HttpEvent<'_>) {
    if st.closing {
        return;
    }
    let limits = &sh.opts.limits;
    match ev {
        HttpEvent::Head(head) => {
            if let Some(cur) = st.cur.take() {
                abandon(st, cur);
            }
            let t = now();
            let index = st.next_index();
            let conn_hdr = head.header("connection").unwrap_or("").to_ascii_lowercase();
            let keep_alive = !sh.opts.close_after_answer
                && if head.version >= 1 {
                    !conn_hdr.contains("close")
                } else {
                    conn_hdr.contains("keep-alive")
                };
            let expect_continue = head
                .header("expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
            let authorization = head.header("authorization").map(str::to_string);
            let request = Request::from_head(head, t);
            let (method, path) = (request.method.clone(), request.path.clone());
            let content_type = request.content_type.clone();
            let content_length = request.content_length;
            let auth = sh
                .auth
                .as_ref()
                .map(|a| a.check(&method, &path, authorization.as_deref()));
            let mut ex = Exchange::started(index, request);
            ex.auth = auth;
            st.push_exchange(ex, sh.opts.max_exchanges_per_connection);

            if content_length.is_some_and(|n| n > limits.max_body_bytes) {
                st.actions.push_back(Action::Reject {
                    index: Some(index),
                    status: 413,
                });
                st.closing = true;
                return;
            }
            let reject =
                if !(method.eq_ignore_ascii_case("POST") || method.eq_ignore_ascii_case("PUT")) {
                    Some(405)
                } else if sh
                    .opts
                    .path_prefix
                    .as_deref()
                    .is_some_and(|p| !path.starts_with(p))
                {
                    Some(404)
                } else if auth.is_some_and(|a| a != AuthCheck::Accepted) {
                    // Refused, so never staged or stored.
                    Some(401)
                } else {
                    None
                };
            if expect_continue {
                if let Some(status) = reject {
                    // Refuse before the body is sent.
                    st.actions.push_back(Action::Reject {
                        index: Some(index),
                        status,
                    });
                    st.closing = true;
                    return;
                }
                st.actions.push_back(Action::Continue(index));
            }
            let multipart = content_type.as_deref().is_some_and(|c| {
                c.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/")
            });
            let mut store_error = None;
            let staging = match (&sh.store, reject) {
                (Some(store), None) => match store.begin(t, &st.conn.client) {
                    Ok(mut s) => {
                        if let Some(n) = content_length {
                            s.reserve(n);
                        }
                        Some(s)
                    }
                    Err(e) => {
                        store_error = Some(format!("cannot stage the event: {e}"));
                        None
                    }
                },
                _ => None,
            };
            st.cur = Some(InProgress {
                req: RequestInFlight::new(
                    index,
                    content_type.as_deref(),
                    sh.opts.body_limits.clone(),
                ),
                staging,
                multipart,
                content_type,
                reject,
                keep_alive,
                body_bytes: 0,
                store_error,
            });
        }
        HttpEvent::Body(data) => {
            let Some(cur) = st.cur.as_mut() else { return };
            cur.body_bytes = cur.body_bytes.saturating_add(data.len() as u64);
            if cur.body_bytes > limits.max_body_bytes {
                let index = cur.req.index;
                if let Some(cur) = st.cur.take() {
                    abandon(st, cur);
                }
                st.actions.push_back(Action::Reject {
                    index: Some(index),
                    status: 413,
                });
                st.closing = true;
                return;
            }
            // Multipart bodies go to the staging files part by part; a plain body whole.
            let part_sink: Option<&mut dyn crate::isapi::PartSink> = match cur.staging.as_mut() {
                Some(s) if cur.multipart => Some(s),
                Some(s) => {
                    s.write_body(cur.content_type.as_deref(), data);
                    None
                }
                None => None,
            };
            // The exchange by position (old ones may have been dropped from the record); not
            // `ex_mut`, which would borrow the request in flight too.
            let ex = cur
                .req
                .index
                .checked_sub(st.dropped)
                .and_then(|pos| st.conn.exchanges.get_mut(pos));
            cur.req.feed(ex, st.conn.last_seen, data, part_sink);
        }
        HttpEvent::Missing(_) => {}
        HttpEvent::End { .. } => {
            let Some(mut cur) = st.cur.take() else { return };
            let index = cur.req.index;
            cur.req.complete(st.ex_mut(index), now());
            let decoded = match cur.staging.as_mut() {
                Some(s) if cur.multipart => cur.req.finish_decoded(Some(s)),
                _ => cur.req.finish_decoded(None),
            };
            st.actions.push_back(Action::Respond(Box::new(Done {
                index,
                decoded,
                staging: cur.staging.take(),
                reject: cur.reject,
                keep_alive: cur.keep_alive,
                store_error: cur.store_error.take(),
            })));
        }
        HttpEvent::Error(e) => {
            let too_large = e.kind.is_too_large();
            let index = match st.cur.take() {
                Some(cur) => {
                    let i = cur.req.index;
                    abandon(st, cur);
                    i
                }
                None => {
                    let i = st.next_index();
                    st.push_exchange(new_exchange(i, now()), sh.opts.max_exchanges_per_connection);
                    i
                }
            };
            if let Some(ex) = st.ex_mut(index) {
                ex.request.error = Some(RequestError::Framing(e.clone()));
            }
            st.error(ConnectionError::RequestStream(e));
            st.actions.push_back(Action::Reject {
                index: Some(index),
                status: if too_large { 413 } else { 400 },
            });
            st.closing = true;
        }
        HttpEvent::Incomplete { .. } => {
            if let Some(cur) = st.cur.take() {
                abandon(st, cur);
            }
        }
    }
}

/// A request that will not complete: decode what came (for display), drop its staging.
fn abandon(st: &mut State, mut cur: InProgress) {
    if let Some(s) = cur.staging.take() {
        s.abort();
    }
    let ex = st.ex_mut(cur.req.index);
    cur.req.finish(ex, None);
}

/// Serve one connection to its end (`local`: the address it was accepted on).
pub(crate) async fn serve<S: ConnStream>(
    mut stream: S,
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    sh: Arc<Shared>,
) {
    let t0 = now();
    let mut st = State {
        conn: Connection::opened(id, peer, local, Handshake::Complete, 1, t0),
        dropped: 0,
        cur: None,
        actions: VecDeque::new(),
        closing: false,
        continued: Vec::new(),
        transport,
    };
    let limits = Limits {
        max_header_bytes: sh.opts.limits.max_header_bytes,
        max_headers: sh.opts.limits.max_headers,
    };
    let mut dec = MessageDecoder::new(Kind::Request, limits);
    // A server's stream must begin with a request line: anything else is a 400 at once.
    dec.require_start_line();
    let mut buf = Vec::new();
    let mut stop = sh.stop.clone();
    let read_timeout = sh.opts.limits.read_timeout;
    let idle_timeout = sh.opts.limits.idle_timeout;
    // Since when the connection waits for a request (accept or end of the last one), and for the
    // rest of the current head, with the exchanges started by then: bytes that start no request
    // (blank lines, garbage) do not push these deadlines back.
    let mut idle_since: Option<(tokio::time::Instant, usize)> = None;
    let mut head_since: Option<(tokio::time::Instant, usize)> = None;
    // Evictable (closed to make room at max connections) while waiting for a request or a head.
    let mut ticket: Option<Ticket> = None;
    let mut evicted = false;
    sh.publish_connection(&st.conn);
    let closed = loop {
        let idle = st.cur.is_none() && dec.is_idle();
        let started = st.next_index();
        let deadline = if idle {
            head_since = None;
            // A new connection must begin its first request within the read timeout.
            let limit = if started == 0 {
                idle_timeout.min(read_timeout)
            } else {
                idle_timeout
            };
            since(&mut idle_since, started) + limit
        } else if st.cur.is_none() {
            idle_since = None;
            since(&mut head_since, started) + read_timeout
        } else {
            (idle_since, head_since) = (None, None);
            tokio::time::Instant::now() + read_timeout
        };
        let want = if st.cur.is_none() {
            READ_BUF_IDLE
        } else {
            READ_BUF
        };
        // Read into spare capacity (no zeroing); a connection going back to waiting gives its
        // large buffer up.
        buf.clear();
        if buf.capacity() < want {
            buf.reserve_exact(want);
        } else if buf.capacity() > want {
            buf = Vec::with_capacity(want);
        }
        let waiting = match (idle, st.cur.is_none()) {
            (true, _) => Some(Waiting::Idle),
            (false, true) => Some(Waiting::Head),
            (false, false) => None,
        };
        if ticket.as_ref().map(Ticket::what) != waiting {
            if let Some(t) = ticket.take() {
                evicted |= t.leave();
            }
            ticket = waiting.map(|w| sh.evictor.wait(w));
        }
        let read = match ticket.as_mut() {
            _ if evicted && st.cur.is_none() => Err(()),
            Some(t) => tokio::select! {
                r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)) => r.map_err(|_| ()),
                _ = stop.wait_for(|s| *s), if idle => break CloseKind::Fin(Side::Server),
                _ = t.evicted() => {
                    evicted = true;
                    Err(())
                }
            },
            None => tokio::time::timeout_at(deadline, stream.read_buf(&mut buf))
                .await
                .map_err(|_| ()),
        };
        if matches!(read, Ok(Ok(n)) if n > 0) {
            // Bytes arrived: not evictable while they are handled (the next turn decides).
            if let Some(t) = ticket.take() {
                evicted |= t.leave();
            }
        }
        let n = match read {
            Err(_) if idle => {
                if evicted {
                    st.error(ConnectionError::EvictedIdle);
                }
                break CloseKind::Fin(Side::Server);
            }
            Err(_) => {
                // A request started but did not progress in time, or its head was incomplete
                // when room was needed: 408 and close.
                let index = match st.cur.take() {
                    Some(cur) => {
                        let i = cur.req.index;
                        abandon(&mut st, cur);
                        i
                    }
                    None => {
                        // An incomplete head: recorded, so the 408 is reported and counted.
                        let i = st.next_index();
                        let max = sh.opts.max_exchanges_per_connection;
                        st.push_exchange(new_exchange(i, now()), max);
                        i
                    }
                };
                let why = if evicted {
                    RequestError::EvictedMidHead
                } else {
                    RequestError::TimedOut {
                        secs: read_timeout.as_secs_f64(),
                    }
                };
                if let Some(ex) = st.ex_mut(index) {
                    ex.request.error = Some(why.clone());
                }
                st.error(ConnectionError::Request(why));
                let _ = reject(&mut stream, &mut st, &sh, Some(index), 408).await;
                break CloseKind::Fin(Side::Server);
            }
            Ok(Err(e)) => {
                st.error(ConnectionError::Read {
                    kind: e.kind(),
                    message: e.to_string(),
                });
                finish_open(&mut st, &sh, &mut dec);
                break if e.kind() == std::io::ErrorKind::ConnectionReset {
                    CloseKind::Rst(Side::Client)
                } else {
                    CloseKind::Fin(Side::Client)
                };
            }
            Ok(Ok(0)) => {
                finish_open(&mut st, &sh, &mut dec);
                break CloseKind::Fin(Side::Client);
            }
            Ok(Ok(n)) => n,
        };
        st.conn.last_seen = now();
        let data = buf.get(..n).unwrap_or(&[]);
        dec.feed(data, &mut |ev| on_http(&mut st, &sh, ev));
        match run_actions(&mut stream, &mut st, &sh).await {
            Flow::Continue => {}
            Flow::Close(kind) => break kind,
            Flow::Hang => {
                hold(&mut stream, &mut stop).await;
                break CloseKind::Fin(Side::Client);
            }
        }
    };
    if let Some(cur) = st.cur.take() {
        abandon(&mut st, cur);
    }
    if !matches!(closed, CloseKind::Rst(Side::Server)) {
        let _ = stream.shutdown().await;
    }
    st.conn.closed = closed;
    st.conn.last_seen = now();
    for ex in &mut st.conn.exchanges {
        ex.verdict = Verdict::of(ex);
        record::compact(ex);
    }
    sh.publish_connection(&st.conn);
    sh.diagnose(&st.conn);
}

/// The start of the current wait, restarted when exchanges were started since.
fn since(slot: &mut Option<(tokio::time::Instant, usize)>, started: usize) -> tokio::time::Instant {
    match *slot {
        Some((t, n)) if n == started => t,
        _ => {
            let t = tokio::time::Instant::now();
            *slot = Some((t, started));
            t
        }
    }
}

/// The peer closed: a request in progress is reported incomplete.
fn finish_open(st: &mut State, sh: &Shared, dec: &mut MessageDecoder) {
    let open = st.cur.as_ref().map(|c| c.req.index);
    dec.eof(&mut |ev| on_http(st, sh, ev));
    if let Some(cur) = st.cur.take() {
        abandon(st, cur);
    }
    // Answers queued by the last bytes cannot be sent any more.
    st.actions.clear();
    if let Some(index) = open {
        if st.ex(index).is_some_and(|e| e.response.is_none()) {
            report(st, sh, index, None, None);
        }
    }
}

enum Flow {
    Continue,
    Close(CloseKind),
    Hang,
}

async fn write<S: ConnStream>(stream: &mut S, bytes: &[u8]) -> bool {
    stream.write_all(bytes).await.is_ok()
}

/// Report exchange `index` in its final state (JSON line, counters, TUI).
fn report(
    st: &mut State,
    sh: &Shared,
    index: usize,
    stored: Option<StoredEvent>,
    store_error: Option<String>,
) {
    let (client, server, id) = (st.conn.client.clone(), st.conn.server.clone(), st.conn.id);
    let transport = st.transport;
    let Some(ex) = st.ex_mut(index) else { return };
    ex.verdict = Verdict::of(ex);
    // Lend the exchange to the record rather than cloning it (its decoded tree and metadata).
    let t = ex.request.time;
    let rec = EventRecord {
        connection: id,
        client,
        server,
        exchange: std::mem::replace(ex, new_exchange(index, t)),
        transport,
        stored,
        store_error,
    };
    sh.publish_event(&rec);
    if let Some(ex) = st.ex_mut(index) {
        *ex = rec.exchange;
        record::compact(ex);
    }
    sh.publish_connection(&st.conn);
}

fn set_response(st: &mut State, index: usize, status: u16, built: &response::Built) {
    let interim = if st.continued.contains(&index) {
        vec![100]
    } else {
        Vec::new()
    };
    let t = now();
    if let Some(ex) = st.ex_mut(index) {
        let mut r = Response::answering(
            &ex.request,
            t,
            status,
            response::reason(status).to_string(),
            built.headers.clone(),
            interim,
        );
        // The wall clock may step back between the request's end and the answer.
        r.latency_ms = r.latency_ms.max(0.0);
        r.body_bytes = built.body_bytes;
        ex.response = Some(r);
    }
}

/// The `WWW-Authenticate` value of a 401 (`--auth`): stale when the device answered a nonce we
/// do not know, so it can retry at once.
fn challenge(st: &State, sh: &Shared, index: Option<usize>, status: u16) -> Option<String> {
    if status != 401 {
        return None;
    }
    let a = sh.auth.as_ref()?;
    let stale = index
        .and_then(|i| st.ex(i))
        .is_some_and(|e| e.auth == Some(AuthCheck::StaleNonce));
    Some(a.challenge(stale))
}

/// Answer `status` and mark the connection for closing.
async fn reject<S: ConnStream>(
    stream: &mut S,
    st: &mut State,
    sh: &Shared,
    index: Option<usize>,
    status: u16,
) -> bool {
    let path = index
        .and_then(|i| st.ex(i))
        .map(|e| e.request.path.clone())
        .unwrap_or_default();
    let built = response::build_with(status, &path, false, challenge(st, sh, index, status));
    let ok = write(stream, &built.bytes).await;
    if let Some(i) = index {
        if ok {
            set_response(st, i, status, &built);
        }
        report(st, sh, i, None, None);
    }
    ok
}

async fn run_actions<S: ConnStream>(stream: &mut S, st: &mut State, sh: &Arc<Shared>) -> Flow {
    while let Some(action) = st.actions.pop_front() {
        match action {
            Action::Continue(index) => {
                if !write(stream, response::CONTINUE).await {
                    return Flow::Close(CloseKind::Rst(Side::Client));
                }
                st.continued.push(index);
                if st.continued.len() > 64 {
                    st.continued.remove(0);
                }
            }
            Action::Reject { index, status } => {
                st.actions.clear();
                reject(stream, st, sh, index, status).await;
                return Flow::Close(CloseKind::Fin(Side::Server));
            }
            Action::Respond(done) => {
                let flow = respond(stream, st, sh, *done).await;
                if !matches!(flow, Flow::Continue) {
                    st.actions.clear();
                    return flow;
                }
            }
        }
    }
    if st.closing {
        return Flow::Close(CloseKind::Fin(Side::Server));
    }
    Flow::Continue
}

/// Why an answered event was not stored (the listener answers 500 and reports the text).
#[derive(Debug, thiserror::Error)]
enum StoreEventError {
    #[error("no store")]
    NoStore,
    #[error("exchange lost")]
    ExchangeLost,
    /// The blocking task that seals a spooled event did not finish.
    #[error("store task: {0}")]
    Task(tokio::task::JoinError),
    #[error("writing the event: {0}")]
    Seal(std::io::Error),
    #[error(transparent)]
    Commit(#[from] crate::store::CommitError),
}

/// Seal and commit the staged event (group commit); resolves once it is durable.
async fn store_event(
    sh: &Arc<Shared>,
    st: &State,
    index: usize,
    staging: Staging,
) -> Result<StoredEvent, StoreEventError> {
    let Some(store) = sh.store.clone() else {
        return Err(StoreEventError::NoStore);
    };
    let Some(ex) = st.ex(index) else {
        return Err(StoreEventError::ExchangeLost);
    };
    let mut meta = serde_json::Map::new();
    meta.insert("received".into(), serde_json::json!(ex.request.time));
    meta.insert("client".into(), st.conn.client.clone().into());
    meta.insert("server".into(), st.conn.server.clone().into());
    meta.insert("connection".into(), st.conn.id.into());
    meta.insert("index".into(), index.into());
    meta.insert(
        "request".into(),
        serde_json::to_value(&ex.request).unwrap_or_default(),
    );
    meta.insert("body_kind".into(), ex.body_kind.into());
    meta.insert(
        "body_error".into(),
        serde_json::to_value(&ex.body_error).unwrap_or_default(),
    );
    meta.insert(
        "event".into(),
        serde_json::to_value(&ex.event).unwrap_or_default(),
    );
    meta.insert(
        "parts".into(),
        serde_json::to_value(&ex.parts).unwrap_or_default(),
    );
    meta.insert(
        "injected_fault".into(),
        serde_json::to_value(&ex.injected_fault).unwrap_or_default(),
    );
    let event_type = ex.event.as_ref().and_then(|e| e.event_type.clone());
    let device = crate::model::host_of(&st.conn.client).to_string();
    // An event held in memory seals without touching a file; a spooled one flushes its spool
    // file, which is blocking IO and goes to the blocking pool.
    let sealed = if staging.spilled() {
        tokio::task::spawn_blocking(move || staging.seal(meta, event_type.as_deref(), &device))
            .await
            .map_err(StoreEventError::Task)?
    } else {
        staging.seal(meta, event_type.as_deref(), &device)
    }
    .map_err(StoreEventError::Seal)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    store.commit(sealed, move |r| {
        let _ = tx.send(r);
    });
    Ok(rx.await.unwrap_or(Err(crate::store::CommitError::Closed))?)
}

async fn respond<S: ConnStream>(
    stream: &mut S,
    st: &mut State,
    sh: &Arc<Shared>,
    done: Done,
) -> Flow {
    let Done {
        index,
        decoded,
        staging,
        reject: rejected,
        keep_alive,
        store_error,
    } = done;
    if let Some(ex) = st.ex_mut(index) {
        ex.apply_body(decoded);
    }
    if let Some(status) = rejected {
        if let Some(s) = staging {
            s.abort();
        }
        let path = st
            .ex(index)
            .map(|e| e.request.path.clone())
            .unwrap_or_default();
        let www = challenge(st, sh, Some(index), status);
        let built = response::build_with(status, &path, keep_alive, www);
        if !write(stream, &built.bytes).await {
            report(st, sh, index, None, None);
            return Flow::Close(CloseKind::Rst(Side::Client));
        }
        set_response(st, index, status, &built);
        report(st, sh, index, None, None);
        return if keep_alive {
            Flow::Continue
        } else {
            Flow::Close(CloseKind::Fin(Side::Server))
        };
    }
    let event_type = st
        .ex(index)
        .and_then(|e| e.event.as_ref())
        .and_then(|e| e.event_type.clone());
    let fault = match sh.faults.lock() {
        Ok(mut f) if !f.is_empty() => f.decide(event_type.as_deref()),
        _ => None,
    };
    if let (Some((_, label)), Some(ex)) = (&fault, st.ex_mut(index)) {
        ex.injected_fault = Some(label.clone());
    }
    let (stored, store_error) = match (staging, store_error) {
        (_, Some(e)) => (None, Some(e)),
        (Some(s), None) => match store_event(sh, st, index, s).await {
            Ok(ev) => (Some(ev), None),
            Err(e) => (None, Some(e.to_string())),
        },
        (None, None) => (None, None),
    };
    let mut status = if store_error.is_some() { 500 } else { 200 };
    match fault.map(|f| f.0) {
        Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultAction::Status(s)) if store_error.is_none() => status = s,
        Some(FaultAction::Hang) => {
            report(st, sh, index, stored, store_error);
            return Flow::Hang;
        }
        Some(FaultAction::Reset) => {
            stream.abort_on_close();
            report(st, sh, index, stored, store_error);
            return Flow::Close(CloseKind::Rst(Side::Server));
        }
        _ => {}
    }
    let path = st
        .ex(index)
        .map(|e| e.request.path.clone())
        .unwrap_or_default();
    let built = response::build(status, &path, keep_alive);
    if !write(stream, &built.bytes).await {
        report(st, sh, index, stored, store_error);
        return Flow::Close(CloseKind::Rst(Side::Client));
    }
    set_response(st, index, status, &built);
    report(st, sh, index, stored, store_error);
    if keep_alive {
        Flow::Continue
    } else {
        Flow::Close(CloseKind::Fin(Side::Server))
    }
}

/// `hang`: never answer; read and discard until the device gives up or the server stops.
async fn hold<S: ConnStream>(stream: &mut S, stop: &mut tokio::sync::watch::Receiver<bool>) {
    let mut sink = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            r = stream.read(&mut sink) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
