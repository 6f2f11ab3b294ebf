//! The analysis pipeline: frames -> TCP events -> HTTP messages -> exchanges with decoded events.
//!
//! Sans-IO: the caller feeds frames (from a file, a live capture or a test) with
//! [`Analyzer::frame`], takes finished connections with [`Analyzer::take_finished`] as they close,
//! and calls [`Analyzer::finish`] at the end. Memory is bounded by the number of connections open
//! at once (the TCP stage's limits) plus a small record per finished exchange; bodies and
//! pictures are streamed through the body decoder and never kept beyond the metadata limit.

use std::collections::{HashMap, HashSet};

use crate::capture::frame::Decoded;
use crate::capture::{FrameDecoder, LinkType, TcpSegment, Warning};
use crate::exchange::capture::{on_request_event, on_response_event, Ctx, HttpState, SinkRef};
use crate::http::{Kind, Limits, MessageDecoder};
use crate::isapi::BodyLimits;
use crate::model::{Connection, Verdict};
use crate::tcp::{ConnInfo, Direction, Handshake, TcpConfig, TcpEvent, TcpTracker};
use crate::time::Timestamp;

pub use crate::exchange::capture::ExchangeSink;
pub use crate::exchange::Counters;

mod tls;

/// Limits for every stage, in one place (see README "Resource bounds").
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub tcp: TcpConfig,
    pub http: Limits,
    pub body: BodyLimits,
    /// Located warnings kept; further ones are only counted.
    pub max_warnings: usize,
    /// HTTP framing errors kept per connection; further ones are only counted.
    pub max_errors_per_connection: usize,
    /// Session secrets (`--keylog`): TLS connections whose session is in the log are decrypted
    /// and their plaintext judged like plain HTTP. None: TLS is analysed without keys.
    pub keys: Option<crate::tls::SharedKeys>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            tcp: TcpConfig::default(),
            http: Limits::default(),
            body: BodyLimits::default(),
            max_warnings: 200,
            max_errors_per_connection: 20,
            keys: None,
        }
    }
}

/// What the pipeline holds right now, for tests and diagnostics (computed by scanning: do not
/// call per packet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Connections in the TCP table (at most `TcpConfig::max_connections`).
    pub tcp_connections: usize,
    /// Connections with HTTP decoding state (the same connections as the TCP table).
    pub http_connections: usize,
    /// Of those, the ones that carry at least one exchange.
    pub connections_with_exchanges: usize,
    /// Closed connections waiting for [`Analyzer::take_finished`].
    pub finished_waiting: usize,
    /// Out-of-order TCP bytes buffered (at most `2 * max_buffered_per_direction` a connection).
    pub tcp_buffered_bytes: u64,
    /// Header bytes held by the HTTP decoders (at most `2 * max_header_bytes` a connection).
    pub http_buffered_bytes: u64,
    /// Bytes held by the TLS routing and stage (undecided first bytes, handshake messages being
    /// reassembled, plain connections' first answer bytes).
    pub tls_buffered_bytes: u64,
}

/// Per-connection state: the two HTTP decoders, and what they have found so far.
struct ConnState {
    req: MessageDecoder,
    resp: MessageDecoder,
    http: HttpState,
}

/// Everything after the TCP stage. Kept apart from the tracker so the tracker's events can be
/// handled as they are produced, without copying the bytes they borrow.
struct Stages {
    config: PipelineConfig,
    conns: HashMap<u64, ConnState>,
    /// Ids of the open connections that carry at least one exchange (live judgement looks at
    /// these only, without scanning idle connections).
    with_exchanges: HashSet<u64>,
    finished: Vec<Connection>,
    sink: Option<Box<dyn ExchangeSink + Send>>,
    /// Only connections with these ids send part bytes to the sink (None: all).
    sink_filter: Option<Vec<u64>>,
    /// Which connections are TLS, and their TLS stages (`pipeline/tls.rs`).
    tls: tls::TlsRouter,
}

/// The pipeline as one state machine.
pub struct Analyzer {
    /// Frame decoding with the state it needs (IP fragments held for reassembly).
    frames: FrameDecoder,
    tcp: TcpTracker,
    stages: Stages,
    counters: Counters,
    warnings: Vec<Warning>,
}

impl Analyzer {
    pub fn new(config: PipelineConfig) -> Self {
        let tls = tls::TlsRouter::with_keys(config.keys.clone());
        Analyzer {
            frames: FrameDecoder::default(),
            tcp: TcpTracker::new(config.tcp.clone()),
            stages: Stages {
                config,
                conns: HashMap::new(),
                with_exchanges: HashSet::new(),
                finished: Vec::new(),
                sink: None,
                sink_filter: None,
                tls,
            },
            counters: Counters::default(),
            warnings: Vec::new(),
        }
    }

    /// Send every body part's bytes to `sink` (optionally only for the given connection ids).
    pub fn set_sink(&mut self, sink: Box<dyn ExchangeSink + Send>, only: Option<Vec<u64>>) {
        self.stages.sink = Some(sink);
        self.stages.sink_filter = only;
    }

    /// Take the part sink back (to flush or inspect it).
    pub fn take_sink(&mut self) -> Option<Box<dyn ExchangeSink + Send>> {
        self.stages.sink.take()
    }

    /// Feed one captured frame. `number` is its 1-based position in the capture, used to locate
    /// diagnostics.
    pub fn frame(
        &mut self,
        number: u64,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        orig_len: u32,
    ) {
        self.counters.packets += 1;
        if self.counters.first_packet.is_none() {
            self.counters.first_packet = Some(ts);
        }
        if self.counters.last_packet.is_none_or(|t| ts > t) {
            self.counters.last_packet = Some(ts);
        }
        // Taken out for the call: the segment borrows the decoder (a reassembled packet), and
        // the stages after it need `self`. Moving it is a few words, no allocation.
        let mut frames = std::mem::take(&mut self.frames);
        match frames.decode(ts, link, data, orig_len, &mut self.counters.encapsulations) {
            Ok(Decoded::Tcp(seg)) => self.segment(ts, &seg),
            Ok(Decoded::NotTcp) => self.counters.non_tcp_packets += 1,
            Err(e) => {
                self.counters.undecodable_frames += 1;
                self.warn(Warning::Frame {
                    frame: number,
                    error: e,
                });
            }
        }
        for dropped in frames.take_warnings() {
            self.warn(Warning::Fragments {
                frame: number,
                dropped,
            });
        }
        self.frames = frames;
    }

    /// Feed one already decoded TCP segment (live capture and tests can enter here).
    pub fn segment(&mut self, ts: Timestamp, seg: &TcpSegment<'_>) {
        self.counters.tcp_packets += 1;
        if seg.missing > 0 {
            self.counters.truncated_frames += 1;
        }
        let stages = &mut self.stages;
        self.tcp.segment(ts, seg, &mut |ev| stages.on_tcp(ev));
        self.sync_table_counters();
    }

    /// Close connections idle for `idle_nanos` (live capture).
    pub fn expire(&mut self, now: Timestamp, idle_nanos: i64) {
        let stages = &mut self.stages;
        self.tcp
            .expire(now, idle_nanos, &mut |ev| stages.on_tcp(ev));
        self.sync_table_counters();
    }

    /// Copy the connection table's counters into [`Counters`] (a few loads: fine per packet).
    fn sync_table_counters(&mut self) {
        let t = self.tcp.stats();
        self.counters.connections_evicted = t.evicted;
        self.counters.connections_expired = t.expired;
        self.counters.peak_open_connections = t.peak_open;
    }

    /// Connections currently tracked.
    pub fn open_connections(&self) -> usize {
        self.tcp.open_connections()
    }

    /// What the pipeline holds right now (scans every open connection).
    pub fn footprint(&self) -> Footprint {
        Footprint {
            tcp_connections: self.tcp.open_connections(),
            http_connections: self.stages.conns.len(),
            connections_with_exchanges: self.stages.with_exchanges.len(),
            finished_waiting: self.stages.finished.len(),
            tcp_buffered_bytes: self.tcp.buffered_bytes(),
            http_buffered_bytes: self
                .stages
                .conns
                .values()
                .map(|s| (s.req.buffered_bytes() + s.resp.buffered_bytes()) as u64)
                .sum(),
            tls_buffered_bytes: self.stages.tls.buffered_bytes(),
        }
    }

    /// Record a located problem with the input (bounded).
    pub fn warn(&mut self, w: Warning) {
        if self.warnings.len() < self.stages.config.max_warnings {
            self.warnings.push(w);
        } else {
            self.counters.warnings_dropped += 1;
        }
    }

    /// Connections closed since the last call, in closing order.
    pub fn take_finished(&mut self) -> Vec<Connection> {
        std::mem::take(&mut self.stages.finished)
    }

    /// Snapshots of connections still open, with their exchanges so far and provisional verdicts
    /// (for live views).
    pub fn open_snapshot(&self) -> Vec<Connection> {
        let mut v = Self::snapshot(self.stages.conns.values());
        self.stages.tls.decorate(&mut v);
        v
    }

    /// The open connections that carry at least one exchange, by id, as they are (exchange
    /// verdicts not yet final): what live judgement looks at. Idle and handshake-only
    /// connections are neither visited nor copied.
    pub fn open_with_exchanges(&self) -> Vec<&Connection> {
        let conns = &self.stages.conns;
        let mut v: Vec<&Connection> = self
            .stages
            .with_exchanges
            .iter()
            .filter_map(|id| conns.get(id).map(|s| &s.http.conn))
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    fn snapshot<'a>(states: impl Iterator<Item = &'a ConnState>) -> Vec<Connection> {
        let mut v: Vec<Connection> = states
            .map(|s| {
                let mut c = s.http.conn.clone();
                for ex in &mut c.exchanges {
                    ex.verdict = Verdict::of(ex);
                }
                c
            })
            .collect();
        v.sort_by_key(|c| c.id);
        v
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// End of input: close everything. Returns the connections not yet taken, the counters and
    /// the warnings.
    pub fn finish(mut self) -> (Vec<Connection>, Counters, Vec<Warning>) {
        let stages = &mut self.stages;
        self.tcp.finish(&mut |ev| stages.on_tcp(ev));
        self.sync_table_counters();
        // Anything the TCP stage did not close (should be nothing) is closed here.
        let ids: Vec<u64> = self.stages.conns.keys().copied().collect();
        for id in ids {
            self.stages.close(id, None);
        }
        let mut finished = std::mem::take(&mut self.stages.finished);
        finished.sort_by_key(|c| c.id);
        for w in self.frames.finish() {
            self.warn(Warning::FragmentsAtEnd(w));
        }
        if self.counters.warnings_dropped > 0 {
            let count = self.counters.warnings_dropped;
            self.warnings.push(Warning::NotShown { count });
        }
        (finished, self.counters, self.warnings)
    }
}

impl Stages {
    fn on_tcp(&mut self, ev: TcpEvent<'_>) {
        match ev {
            TcpEvent::Open {
                id,
                client,
                server,
                ts,
            } => self.open(id, client, server, ts),
            TcpEvent::Data { id, dir, ts, data } => self.data(id, dir, ts, data),
            TcpEvent::Gap { id, dir, ts, bytes } => self.gap(id, dir, ts, bytes),
            TcpEvent::Close { id, info } => self.close(id, Some(info)),
        }
    }

    fn open(
        &mut self,
        id: u64,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
        ts: Timestamp,
    ) {
        self.tls.open(id, server);
        let conn = Connection::opened(id, client, server, Handshake::NotSeen, 0, ts);
        let st = ConnState {
            req: MessageDecoder::new(Kind::Request, self.config.http.clone()),
            resp: MessageDecoder::new(Kind::Response, self.config.http.clone()),
            http: HttpState::new(conn),
        };
        self.conns.insert(id, st);
    }

    fn data(&mut self, id: u64, dir: Direction, ts: Timestamp, data: &[u8]) {
        let route = self.tls.data(id, dir, ts, data);
        if self.route(route, id) {
            return;
        }
        self.http_data(id, dir, ts, data);
    }

    /// Bytes for the HTTP decoders (plain, or decrypted by the TLS stage).
    fn http_data(&mut self, id: u64, dir: Direction, ts: Timestamp, data: &[u8]) {
        let Stages {
            conns,
            with_exchanges,
            config,
            sink,
            sink_filter,
            ..
        } = self;
        let Some(ConnState { req, resp, http }) = conns.get_mut(&id) else {
            return;
        };
        http.conn.last_seen = ts;
        let ctx = ctx(config, ts);
        match dir {
            Direction::ClientToServer => {
                let had_exchanges = !http.conn.exchanges.is_empty();
                req.feed(data, &mut |e| {
                    on_request_event(http, resp, &ctx, e, sink_ref(sink, sink_filter, id))
                });
                if !had_exchanges && !http.conn.exchanges.is_empty() {
                    with_exchanges.insert(id);
                }
            }
            Direction::ServerToClient => {
                resp.feed(data, &mut |e| on_response_event(http, &ctx, e));
                // The capture began inside an answer and this segment's bytes were skipped: that
                // answer's start was sent before the capture saw the server's side.
                if resp.skipping_stream_start() {
                    http.response_loss(ts, false);
                }
                if http.take_switch() {
                    req.switch_protocols(&mut |e| {
                        on_request_event(http, resp, &ctx, e, sink_ref(sink, sink_filter, id))
                    });
                }
            }
        }
    }

    fn gap(&mut self, id: u64, dir: Direction, ts: Timestamp, bytes: u64) {
        let route = self.tls.gap(id, dir, ts, bytes);
        if self.route(route, id) {
            return;
        }
        self.http_gap(id, dir, ts, bytes, true);
    }

    /// A hole for the HTTP decoders (a capture gap, or plaintext the TLS stage could not give):
    /// `bytes` long when `exact`, else at most `bytes` (`MessageDecoder::gap_unknown`).
    fn http_gap(&mut self, id: u64, dir: Direction, ts: Timestamp, bytes: u64, exact: bool) {
        let Stages {
            conns,
            config,
            sink,
            sink_filter,
            ..
        } = self;
        let Some(ConnState { req, resp, http }) = conns.get_mut(&id) else {
            return;
        };
        http.conn.last_seen = ts;
        let ctx = ctx(config, ts);
        match dir {
            Direction::ClientToServer => {
                let on: &mut dyn FnMut(crate::http::HttpEvent<'_>) =
                    &mut |e| on_request_event(http, resp, &ctx, e, sink_ref(sink, sink_filter, id));
                match exact {
                    true => req.gap(bytes, on),
                    false => req.gap_unknown(bytes, on),
                }
            }
            Direction::ServerToClient => {
                let on: &mut dyn FnMut(crate::http::HttpEvent<'_>) =
                    &mut |e| on_response_event(http, &ctx, e);
                match exact {
                    true => resp.gap(bytes, on),
                    false => resp.gap_unknown(bytes, on),
                }
                // A hole the decoder could not frame past (not inside a known-length body): the
                // start of an answer may be in it.
                if resp.out_of_sync() {
                    http.response_loss(ts, true);
                }
            }
        }
    }

    fn close(&mut self, id: u64, info: Option<Box<ConnInfo>>) {
        if let Some(held) = self.tls.release_undecided(id) {
            self.route(tls::Route::Release(held), id);
        }
        let last = info.as_ref().map(|i| (i.last_ts, i.closed)).or_else(|| {
            let c = &self.conns.get(&id)?.http.conn;
            Some((c.last_seen, c.closed))
        });
        if let Some((ts, how)) = last {
            let plain = self.tls.close_decryptor(id, ts, how);
            // Only a decrypted TLS connection has any (a plain one must not be marked).
            if !plain.is_empty() {
                self.route(tls::Route::Decrypted(plain), id);
            }
        }
        let Stages {
            conns,
            with_exchanges,
            config,
            sink,
            sink_filter,
            finished,
            tls,
        } = self;
        let Some(ConnState {
            mut req,
            mut resp,
            mut http,
        }) = conns.remove(&id)
        else {
            return;
        };
        with_exchanges.remove(&id);
        let ts = info
            .as_ref()
            .map(|i| i.last_ts)
            .unwrap_or(http.conn.last_seen);
        let ctx = ctx(config, ts);
        req.eof(&mut |e| {
            on_request_event(
                &mut http,
                &mut resp,
                &ctx,
                e,
                sink_ref(sink, sink_filter, id),
            )
        });
        resp.eof(&mut |e| on_response_event(&mut http, &ctx, e));
        // A request still being received when the connection ended is incomplete.
        http.abandon_current(sink_ref(sink, sink_filter, id));
        let start_unseen = info
            .as_ref()
            .is_none_or(|i| i.handshake == Handshake::NotSeen);
        let mut conn = http.finish(start_unseen);
        let mut client_acks = None;
        conn.upgraded_bytes = [req.opaque_bytes(), resp.opaque_bytes()];
        if let Some(info) = info {
            conn.client = info.client.to_string();
            conn.server = info.server.to_string();
            conn.handshake = info.handshake;
            conn.syn_attempts = info.syn_attempts;
            conn.closed = info.closed;
            conn.first_seen = info.first_ts;
            conn.last_seen = info.last_ts;
            conn.packets = info.packets;
            conn.gap_bytes = info.gap_bytes;
            conn.retransmissions = info.retransmissions;
            conn.truncated_frames = info.truncated_frames;
            conn.timeline = info.timeline;
            conn.one_sided = info.one_sided;
            client_acks = Some(info.client_acks);
        }
        for ex in &mut conn.exchanges {
            ex.verdict = Verdict::of(ex);
        }
        if let Some(acks) = &client_acks {
            conn.settle_one_sided(acks);
        }
        tls.close(id, &mut conn);
        finished.push(conn);
    }

    /// Act on the TLS routing of an event: true when the HTTP decoders must not see it (the
    /// TLS stage took it, or it is held until the connection is decided). Held events of a
    /// connection just decided plain HTTP are fed to the HTTP decoders here, in order.
    fn route(&mut self, route: tls::Route, id: u64) -> bool {
        match route {
            tls::Route::Http => false,
            tls::Route::Taken => true,
            tls::Route::Release(held) => {
                for h in held {
                    match h {
                        tls::Held::Data(dir, ts, b) => self.data(id, dir, ts, &b),
                        tls::Held::Gap(dir, ts, n) => self.gap(id, dir, ts, n),
                    }
                }
                true
            }
            tls::Route::Decrypted(plain) => {
                for h in plain {
                    match h {
                        tls::Plain::Data(dir, ts, b) => self.http_data(id, dir, ts, &b),
                        tls::Plain::Gap(dir, ts, n) => self.http_gap(id, dir, ts, n, true),
                        tls::Plain::Hole(dir, ts, n) => self.http_gap(id, dir, ts, n, false),
                    }
                }
                if let Some(st) = self.conns.get_mut(&id) {
                    for ex in st.http.conn.exchanges.iter_mut().rev() {
                        if ex.decrypted {
                            break;
                        }
                        ex.decrypted = true;
                    }
                }
                true
            }
        }
    }
}

/// The builder's context for an event at `ts`.
fn ctx(config: &PipelineConfig, ts: Timestamp) -> Ctx<'_> {
    Ctx {
        body: &config.body,
        max_errors: config.max_errors_per_connection,
        ts,
    }
}

/// The part sink for connection `id`, if there is one and the filter lets it through.
fn sink_ref<'a>(
    sink: &'a mut Option<Box<dyn ExchangeSink + Send>>,
    filter: &Option<Vec<u64>>,
    id: u64,
) -> SinkRef<'a> {
    match filter {
        Some(ids) if !ids.contains(&id) => None,
        _ => sink.as_deref_mut(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{FramingError, HttpErrorKind};
    use crate::model::ExchangeNote;

    /// Drives the stages behind the TCP tracker directly: one connection, events in order.
    struct Conn {
        stages: Stages,
    }

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    impl Conn {
        fn new() -> Conn {
            let mut stages = Stages {
                config: PipelineConfig::default(),
                conns: HashMap::new(),
                with_exchanges: HashSet::new(),
                finished: Vec::new(),
                sink: None,
                sink_filter: None,
                tls: tls::TlsRouter::default(),
            };
            let client = "10.0.0.5:50000".parse().unwrap_or_else(|_| unreachable!());
            let server = "10.0.0.1:80".parse().unwrap_or_else(|_| unreachable!());
            stages.open(1, client, server, Timestamp(0));
            Conn { stages }
        }
        fn data(&mut self, t: i64, dir: Direction, data: &[u8]) -> &mut Self {
            self.stages.data(1, dir, Timestamp(t), data);
            self
        }
        fn gap(&mut self, t: i64, dir: Direction, bytes: u64) -> &mut Self {
            self.stages.gap(1, dir, Timestamp(t), bytes);
            self
        }
        fn close(&mut self) -> Connection {
            self.stages.close(1, None);
            self.stages.finished.pop().unwrap_or_else(|| unreachable!())
        }
    }

    fn statuses(c: &Connection) -> Vec<(Option<u16>, Verdict)> {
        c.exchanges
            .iter()
            .map(|e| (e.response.as_ref().map(|r| r.status), e.verdict))
            .collect()
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    #[test]
    fn switching_protocols_is_the_answer_and_the_rest_is_counted() {
        let c = Conn::new()
            .data(
                1,
                C2S,
                b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            )
            .data(
                2,
                S2C,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            )
            .data(3, C2S, b"\x81\x05hello")
            .data(4, S2C, b"\x81\x02hi")
            .close();
        assert_eq!(statuses(&c), [(Some(101), Verdict::ErrorStatus)]);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(c.upgrade.as_deref(), Some("websocket"));
        assert_eq!(c.upgraded_bytes, [7, 4]);
    }

    #[test]
    fn interim_answers_stay_interim() {
        let c = Conn::new()
            .data(
                1,
                C2S,
                b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
            )
            .data(
                2,
                S2C,
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
            )
            .data(3, C2S, b"hi")
            .data(4, S2C, OK)
            .close();
        assert_eq!(statuses(&c), [(Some(200), Verdict::Ok)]);
        assert_eq!(
            c.exchanges
                .first()
                .and_then(|e| e.response.as_ref())
                .map(|r| r.interim.clone()),
            Some(vec![100, 102])
        );
        assert_eq!(c.upgraded_bytes, [0, 0]);
    }

    #[test]
    fn answer_lost_in_a_gap_is_charged_to_its_request() {
        // The first answer's head is missing (a 238-byte gap), its body tail is seen; then two
        // more keep-alive requests, each answered.
        let c = Conn::new()
            .data(1, C2S, b"GET /0 HTTP/1.1\r\n\r\n")
            .gap(2, S2C, 238)
            .data(2, S2C, b"tail of the first body")
            .data(3, C2S, b"GET /1 HTTP/1.1\r\n\r\n")
            .data(4, S2C, OK)
            .data(5, C2S, b"GET /2 HTTP/1.1\r\n\r\n")
            .data(6, S2C, OK)
            .close();
        assert_eq!(
            statuses(&c),
            [
                (None, Verdict::NotCaptured),
                (Some(200), Verdict::Ok),
                (Some(200), Verdict::Ok)
            ]
        );
        assert_eq!(
            c.exchanges.first().map(|e| e.notes.clone()),
            Some(vec![ExchangeNote::AnswerNotCaptured { at: Timestamp(2) }])
        );
    }

    #[test]
    fn loss_before_an_answer_with_one_request_waiting_keeps_the_pair() {
        // Nothing was sent after the hole, so the answer can only be the waiting request's.
        let c = Conn::new()
            .data(1, C2S, b"GET /0 HTTP/1.1\r\n\r\n")
            .gap(2, S2C, 50)
            .data(3, S2C, OK)
            .close();
        assert_eq!(statuses(&c), [(Some(200), Verdict::Ok)]);
    }

    #[test]
    fn loss_after_the_last_request_is_not_no_response() {
        let c = Conn::new()
            .data(1, C2S, b"GET /0 HTTP/1.1\r\n\r\n")
            .data(2, S2C, OK)
            .data(3, C2S, b"GET /1 HTTP/1.1\r\n\r\n")
            .gap(4, S2C, 500)
            .close();
        assert_eq!(
            statuses(&c),
            [(Some(200), Verdict::Ok), (None, Verdict::NotCaptured)]
        );
        // Without the loss it is no_response.
        let c = Conn::new().data(1, C2S, b"GET /0 HTTP/1.1\r\n\r\n").close();
        assert_eq!(statuses(&c), [(None, Verdict::NoResponse)]);
    }

    #[test]
    fn capture_begun_mid_answer_charges_the_request_before_it() {
        // No handshake seen: the server's first captured bytes are the tail of an answer whose
        // head the capture missed; the request sent before them is not judged no_response.
        let c = Conn::new()
            .data(1, C2S, b"GET /0 HTTP/1.1\r\n\r\n")
            .data(2, S2C, b"\x12\x34 tail of a picture \xff\xd9")
            .data(3, C2S, b"GET /1 HTTP/1.1\r\n\r\n")
            .data(4, S2C, OK)
            .close();
        assert_eq!(
            statuses(&c),
            [(None, Verdict::NotCaptured), (Some(200), Verdict::Ok)]
        );
    }

    #[test]
    fn junk_after_an_answer_is_no_capture_loss() {
        let c = Conn::new()
            .data(1, C2S, b"GET /0 HTTP/1.1\r\n\r\n")
            .data(2, S2C, OK)
            .data(3, C2S, b"GET /1 HTTP/1.1\r\n\r\n")
            .data(4, S2C, b"\x00\x01\x02\n")
            .close();
        assert_eq!(
            statuses(&c),
            [(Some(200), Verdict::Ok), (None, Verdict::NoResponse)]
        );
    }

    #[test]
    fn framing_error_still_pairs_with_its_answer() {
        let c = Conn::new()
            .data(
                1,
                C2S,
                b"POST /which.php HTTP/1.0\r\nContent-Length: 11\r\nContent-Length: 93\r\n\r\nhello world",
            )
            .data(2, S2C, b"HTTP/1.0 501 Not Implemented\r\n\r\n")
            .close();
        assert_eq!(statuses(&c), [(Some(501), Verdict::ErrorStatus)]);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert_eq!(
            c.exchanges.first().map(|e| e.notes.clone()),
            Some(vec![ExchangeNote::RequestFraming {
                offset: 0,
                error: FramingError::ConflictingContentLength {
                    first: 11,
                    second: 93
                }
            }])
        );
    }

    #[test]
    fn unreadable_status_line_is_a_malformed_answer() {
        let c = Conn::new()
            .data(1, C2S, b"GET / HTTP/1.0\r\n\r\n")
            .data(2, S2C, b"HTTP/1.0 2XX OK\r\nContent-Length: 0\r\n\r\n")
            .close();
        assert_eq!(statuses(&c), [(None, Verdict::MalformedResponse)]);
        let note = c.exchanges.first().and_then(|e| e.notes.first());
        assert!(
            matches!(
                note,
                Some(ExchangeNote::MalformedResponse {
                    offset: 0,
                    error: HttpErrorKind::MalformedHead { .. },
                    ..
                })
            ),
            "{note:?}"
        );
    }

    /// Past `max_warnings` the warnings are counted, and the count is the last warning, typed.
    #[test]
    fn warnings_past_the_bound_become_one_not_shown_count() {
        let mut an = Analyzer::new(PipelineConfig {
            max_warnings: 2,
            ..PipelineConfig::default()
        });
        for n in 1..=5 {
            an.frame(n, Timestamp(0), LinkType::Unsupported(999), &[0; 20], 20);
        }
        let (_, counters, warnings) = an.finish();
        assert_eq!(counters.undecodable_frames, 5);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(matches!(warnings[0], Warning::Frame { frame: 1, .. }));
        assert!(matches!(warnings[1], Warning::Frame { frame: 2, .. }));
        assert_eq!(warnings[2], Warning::NotShown { count: 3 });
    }
}
