//! The analysis pipeline: frames -> TCP events -> HTTP messages -> exchanges with decoded events.
//!
//! Sans-IO: the caller feeds frames (from a file, a live capture or a test) with
//! [`Analyzer::frame`], takes finished connections with [`Analyzer::take_finished`] as they close,
//! and calls [`Analyzer::finish`] at the end. Memory is bounded by the number of connections open
//! at once (the TCP stage's limits) plus a small record per finished exchange; bodies and
//! pictures are streamed through the body decoder and never kept beyond the metadata limit.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::capture::frame::Decoded;
use crate::capture::{decode_frame_counted, EncapCounts, LinkType, TcpSegment};
use crate::http::{HttpErrorKind, HttpEvent, Kind, Limits, MessageDecoder};
use crate::isapi::{BodyDecoder, BodyLimits, PartHeader, PartSink};
use crate::model::{
    Connection, EventSummary, Exchange, ExchangeNote, ExchangeRef, Request, Response, Verdict,
};
use crate::tcp::{CloseKind, ConnInfo, Direction, Handshake, TcpConfig, TcpEvent, TcpTracker};
use crate::time::Timestamp;

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
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            tcp: TcpConfig::default(),
            http: Limits::default(),
            body: BodyLimits::default(),
            max_warnings: 200,
            max_errors_per_connection: 20,
        }
    }
}

/// Receives the bytes of every body part, tagged with its exchange (picture extraction).
pub trait ExchangeSink {
    fn part_start(&mut self, ex: ExchangeRef, client: &str, header: &PartHeader);
    fn part_data(&mut self, ex: ExchangeRef, index: usize, data: &[u8]);
    fn part_end(&mut self, ex: ExchangeRef, index: usize, bytes: u64);
}

/// Packet-level counters for the summary.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub packets: u64,
    pub tcp_packets: u64,
    pub non_tcp_packets: u64,
    pub undecodable_frames: u64,
    pub truncated_frames: u64,
    pub first_packet: Option<Timestamp>,
    pub last_packet: Option<Timestamp>,
    /// Warnings beyond `max_warnings`.
    pub warnings_dropped: u64,
    /// Connections closed because the table was full (`TcpConfig::max_connections`).
    pub connections_evicted: u64,
    /// Connections closed after being idle (live capture: `--idle-timeout`).
    pub connections_expired: u64,
    /// Most connections tracked at once.
    pub peak_open_connections: u64,
    /// Frames found inside each tunnel or encapsulation (mirror ports, overlays).
    pub encapsulations: EncapCounts,
}

impl Counters {
    /// The counters a finished report's summary carries (all but `warnings_dropped`), for views
    /// that rebuild their state from a report.
    pub fn from_summary(s: &crate::model::Summary) -> Counters {
        Counters {
            packets: s.packets,
            tcp_packets: s.tcp_packets,
            non_tcp_packets: s.non_tcp_packets,
            undecodable_frames: s.undecodable_frames,
            truncated_frames: s.truncated_frames,
            first_packet: s.first_packet,
            last_packet: s.last_packet,
            warnings_dropped: 0,
            connections_evicted: s.connections_evicted,
            connections_expired: s.connections_expired,
            peak_open_connections: s.peak_open_connections,
            encapsulations: s.encapsulations,
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
}

/// A request being received.
struct RequestInProgress {
    index: usize,
    body: BodyDecoder,
}

/// Per-connection state: the two HTTP decoders, and what they have found so far.
struct ConnState {
    req: MessageDecoder,
    resp: MessageDecoder,
    http: HttpState,
}

/// Exchanges of one connection as the decoders report them.
struct HttpState {
    conn: Connection,
    current: Option<RequestInProgress>,
    /// Exchanges whose request is complete and whose final response has not begun.
    pending: VecDeque<usize>,
    /// Exchange whose final response is being received.
    responding: Option<usize>,
    /// Interim statuses seen before the final response.
    interim: Vec<u16>,
    errors_dropped: u64,
    /// Server bytes were lost (a gap the response decoder could not frame past, or bytes skipped
    /// at the start of the server's stream) since the last final response head: capture time of
    /// the first server packet after the loss. Answers to requests sent before it may be in the
    /// lost bytes.
    loss_since_head: Option<Timestamp>,
    /// The latest capture gap the response decoder could not frame past, for the requests still
    /// waiting at the end.
    last_gap_loss: Option<Timestamp>,
    /// The latest server segment skipped at the start of the server's stream. A loss only when
    /// the capture began mid-connection: with the handshake seen, the stream's start was seen and
    /// the bytes are simply not HTTP.
    last_skip_loss: Option<Timestamp>,
    /// A `101 Switching Protocols` was just paired: the client's stream switches too.
    switch_pending: bool,
}

impl HttpState {
    /// Server bytes that may hold answers were lost at `ts` (in a gap, or skipped at the start).
    fn response_loss(&mut self, ts: Timestamp, in_gap: bool) {
        self.loss_since_head.get_or_insert(ts);
        let last = if in_gap {
            &mut self.last_gap_loss
        } else {
            &mut self.last_skip_loss
        };
        *last = Some(last.map_or(ts, |l| l.max(ts)));
    }
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
}

/// The pipeline as one state machine.
pub struct Analyzer {
    tcp: TcpTracker,
    stages: Stages,
    counters: Counters,
    warnings: Vec<String>,
}

impl Analyzer {
    pub fn new(config: PipelineConfig) -> Self {
        Analyzer {
            tcp: TcpTracker::new(config.tcp.clone()),
            stages: Stages {
                config,
                conns: HashMap::new(),
                with_exchanges: HashSet::new(),
                finished: Vec::new(),
                sink: None,
                sink_filter: None,
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
        match decode_frame_counted(link, data, orig_len, &mut self.counters.encapsulations) {
            Ok(Decoded::Tcp(seg)) => self.segment(ts, &seg),
            Ok(Decoded::NotTcp) => self.counters.non_tcp_packets += 1,
            Err(e) => {
                self.counters.undecodable_frames += 1;
                self.warn(format!("frame {number}: {e}"));
            }
        }
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
        }
    }

    /// Record a located problem with the input (bounded).
    pub fn warn(&mut self, w: String) {
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
        Self::snapshot(self.stages.conns.values())
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
                    ex.verdict = provisional_verdict(ex);
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

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// End of input: close everything. Returns the connections not yet taken, the counters and
    /// the warnings.
    pub fn finish(mut self) -> (Vec<Connection>, Counters, Vec<String>) {
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
        if self.counters.warnings_dropped > 0 {
            let n = self.counters.warnings_dropped;
            self.warnings.push(format!("{n} more warnings not shown"));
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
        let conn = Connection {
            id,
            client: client.to_string(),
            server: server.to_string(),
            handshake: Handshake::NotSeen,
            one_sided: None,
            syn_attempts: 0,
            closed: CloseKind::Open,
            first_seen: ts,
            last_seen: ts,
            packets: 0,
            gap_bytes: [0, 0],
            retransmissions: 0,
            truncated_frames: 0,
            errors: Vec::new(),
            upgrade: None,
            upgraded_bytes: [0, 0],
            handshake_uncertain: None,
            exchanges: Vec::new(),
            timeline: Vec::new(),
        };
        let st = ConnState {
            req: MessageDecoder::new(Kind::Request, self.config.http.clone()),
            resp: MessageDecoder::new(Kind::Response, self.config.http.clone()),
            http: HttpState {
                conn,
                current: None,
                pending: VecDeque::new(),
                responding: None,
                interim: Vec::new(),
                errors_dropped: 0,
                loss_since_head: None,
                last_gap_loss: None,
                last_skip_loss: None,
                switch_pending: false,
            },
        };
        self.conns.insert(id, st);
    }

    fn data(&mut self, id: u64, dir: Direction, ts: Timestamp, data: &[u8]) {
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
        let ctx = Ctx { config, ts };
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
                if std::mem::take(&mut http.switch_pending) {
                    req.switch_protocols(&mut |e| {
                        on_request_event(http, resp, &ctx, e, sink_ref(sink, sink_filter, id))
                    });
                }
            }
        }
    }

    fn gap(&mut self, id: u64, dir: Direction, ts: Timestamp, bytes: u64) {
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
        let ctx = Ctx { config, ts };
        match dir {
            Direction::ClientToServer => {
                req.gap(bytes, &mut |e| {
                    on_request_event(http, resp, &ctx, e, sink_ref(sink, sink_filter, id))
                });
            }
            Direction::ServerToClient => {
                resp.gap(bytes, &mut |e| on_response_event(http, &ctx, e));
                // A hole the decoder could not frame past (not inside a known-length body): the
                // start of an answer may be in it.
                if resp.out_of_sync() {
                    http.response_loss(ts, true);
                }
            }
        }
    }

    fn close(&mut self, id: u64, info: Option<Box<ConnInfo>>) {
        let Stages {
            conns,
            with_exchanges,
            config,
            sink,
            sink_filter,
            finished,
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
        let ctx = Ctx { config, ts };
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
        if let Some(cur) = http.current.take() {
            finish_body(&mut http.conn, cur, sink_ref(sink, sink_filter, id));
        }
        // Requests still waiting when server bytes were lost after them: their answer may be there.
        let start_unseen = info
            .as_ref()
            .is_none_or(|i| i.handshake == Handshake::NotSeen);
        let skip_loss = http.last_skip_loss.filter(|_| start_unseen);
        if let Some(lost) = http.last_gap_loss.max(skip_loss) {
            for &i in &http.pending {
                if let Some(ex) = http.conn.exchanges.get_mut(i) {
                    if ex.response.is_none() && ex.request.end_time <= lost {
                        ex.notes.push(ExchangeNote::AnswerNotCaptured { at: lost });
                    }
                }
            }
        }
        if http.errors_dropped > 0 {
            http.conn.errors.push(format!(
                "{} more HTTP errors not shown",
                http.errors_dropped
            ));
        }
        let mut conn = http.conn;
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
            ex.verdict = final_verdict(ex);
        }
        if let Some(acks) = &client_acks {
            conn.settle_one_sided(acks);
        }
        finished.push(conn);
    }
}

type SinkRef<'a> = Option<&'a mut (dyn ExchangeSink + Send + 'static)>;

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

/// The verdict once a connection is over.
pub fn final_verdict(ex: &Exchange) -> Verdict {
    let noted = |f: fn(&ExchangeNote) -> bool| ex.notes.iter().any(f);
    match &ex.response {
        Some(r) if r.status == 200 => Verdict::Ok,
        Some(_) => Verdict::ErrorStatus,
        None if noted(|n| matches!(n, ExchangeNote::MalformedResponse { .. })) => {
            Verdict::MalformedResponse
        }
        None if noted(|n| matches!(n, ExchangeNote::AnswerNotCaptured { .. })) => {
            Verdict::NotCaptured
        }
        None if ex.request.complete => Verdict::NoResponse,
        None => Verdict::Incomplete,
    }
}

/// The verdict while the connection is still open: the same, except that a request still waiting
/// is judged by the caller's timeout (live mode), so here it stays `no_response`/`incomplete`.
pub fn provisional_verdict(ex: &Exchange) -> Verdict {
    final_verdict(ex)
}

struct Ctx<'a> {
    config: &'a PipelineConfig,
    ts: Timestamp,
}

/// Adapts an [`ExchangeSink`] to the body decoder's [`PartSink`] for one exchange.
struct SinkAdapter<'a> {
    ex: ExchangeRef,
    client: &'a str,
    inner: &'a mut (dyn ExchangeSink + Send + 'static),
}

impl PartSink for SinkAdapter<'_> {
    fn part_start(&mut self, header: &PartHeader) {
        self.inner.part_start(self.ex, self.client, header);
    }
    fn part_data(&mut self, index: usize, data: &[u8]) {
        self.inner.part_data(self.ex, index, data);
    }
    fn part_end(&mut self, index: usize, bytes: u64) {
        self.inner.part_end(self.ex, index, bytes);
    }
}

fn push_error(st: &mut HttpState, ctx: &Ctx<'_>, msg: String) {
    if st.conn.errors.len() < ctx.config.max_errors_per_connection {
        st.conn.errors.push(msg);
    } else {
        st.errors_dropped += 1;
    }
}

fn on_request_event(
    st: &mut HttpState,
    resp: &mut MessageDecoder,
    ctx: &Ctx<'_>,
    ev: HttpEvent<'_>,
    mut sink: SinkRef<'_>,
) {
    match ev {
        HttpEvent::Head(head) => {
            // A new head while one is in progress means the decoder gave up on the old one.
            if let Some(cur) = st.current.take() {
                finish_body(&mut st.conn, cur, sink.as_deref_mut());
            }
            let index = st.conn.exchanges.len();
            // Most connections carry one exchange: without this the first push reserves room
            // for four (2.6 KB), which adds up over tens of thousands of open connections.
            if index == 0 {
                st.conn.exchanges.reserve_exact(1);
            }
            let method = head.method.clone().unwrap_or_default();
            resp.expect_response_to(&method);
            let content_type = head.header("content-type").map(str::to_string);
            let content_length = head
                .header("content-length")
                .and_then(|v| v.trim().parse().ok());
            st.conn.exchanges.push(Exchange::started(
                index,
                Request {
                    time: ctx.ts,
                    end_time: ctx.ts,
                    method,
                    path: head.path.clone().unwrap_or_default(),
                    content_type: content_type.clone(),
                    body_bytes: 0,
                    content_length,
                    complete: false,
                    missing_bytes: 0,
                    error: None,
                    headers: head.headers,
                },
            ));
            st.current = Some(RequestInProgress {
                index,
                body: BodyDecoder::new(content_type.as_deref(), ctx.config.body.clone()),
            });
        }
        HttpEvent::Body(data) => {
            if let Some(cur) = st.current.as_mut() {
                let ex = ExchangeRef {
                    connection: st.conn.id,
                    index: cur.index,
                };
                let client = st.conn.client.as_str();
                match sink {
                    Some(s) => {
                        let mut a = SinkAdapter {
                            ex,
                            client,
                            inner: s,
                        };
                        cur.body.feed(data, Some(&mut a));
                    }
                    None => cur.body.feed(data, None),
                }
                if let Some(ex) = st.conn.exchanges.get_mut(cur.index) {
                    ex.request.body_bytes = ex.request.body_bytes.saturating_add(data.len() as u64);
                    ex.request.end_time = ctx.ts;
                }
            }
        }
        HttpEvent::Missing(n) => {
            if let Some(cur) = st.current.as_mut() {
                cur.body.missing(n);
                // `n` comes from capture gaps (up to 1 GiB per ACK): saturate, never wrap.
                if let Some(ex) = st.conn.exchanges.get_mut(cur.index) {
                    ex.request.body_bytes = ex.request.body_bytes.saturating_add(n);
                    ex.request.missing_bytes = ex.request.missing_bytes.saturating_add(n);
                }
            }
        }
        HttpEvent::End { .. } => {
            if let Some(cur) = st.current.take() {
                let index = cur.index;
                if let Some(ex) = st.conn.exchanges.get_mut(index) {
                    ex.request.complete = true;
                    ex.request.end_time = ctx.ts;
                }
                finish_body(&mut st.conn, cur, sink);
                // The final response may already have started (a server answering early).
                if st.responding != Some(index) && !response_started(&st.conn, index) {
                    st.pending.push_back(index);
                }
            }
        }
        HttpEvent::Error(err) => {
            let msg = err.to_string();
            if let Some(cur) = st.current.take() {
                let index = cur.index;
                if let Some(ex) = st.conn.exchanges.get_mut(index) {
                    ex.request.error = Some(msg);
                    // The head was read and sent: only its body length is unknown. The server
                    // answers it (often 400 or 501), so it waits for that answer like any other.
                    if let Some(error) = err.kind.framing() {
                        ex.notes.push(ExchangeNote::RequestFraming {
                            offset: err.offset,
                            error: error.clone(),
                        });
                    }
                }
                finish_body(&mut st.conn, cur, sink);
                if err.kind.framing().is_some()
                    && st.responding != Some(index)
                    && !response_started(&st.conn, index)
                {
                    st.pending.push_back(index);
                }
                // Kept on the exchange (as a note) rather than as a connection error.
                if err.kind.framing().is_some() {
                    return;
                }
            }
            push_error(st, ctx, format!("request stream: {err}"));
        }
        HttpEvent::Incomplete { .. } => {
            if let Some(cur) = st.current.take() {
                finish_body(&mut st.conn, cur, sink);
            }
        }
    }
}

fn response_started(conn: &Connection, index: usize) -> bool {
    conn.exchanges
        .get(index)
        .is_some_and(|e| e.response.is_some())
}

fn finish_body(conn: &mut Connection, cur: RequestInProgress, sink: SinkRef<'_>) {
    let ex_ref = ExchangeRef {
        connection: conn.id,
        index: cur.index,
    };
    let decoded = match sink {
        Some(s) => {
            let mut a = SinkAdapter {
                ex: ex_ref,
                client: &conn.client,
                inner: s,
            };
            cur.body.finish(Some(&mut a))
        }
        None => cur.body.finish(None),
    };
    if let Some(ex) = conn.exchanges.get_mut(cur.index) {
        ex.body_kind = decoded.kind;
        ex.body_hash = decoded.body_hash;
        ex.parts = decoded.parts;
        ex.metadata = decoded.metadata;
        ex.event = decoded.event.as_ref().map(EventSummary::from);
        ex.event_detail = decoded.event.map(Box::new);
        ex.body_error = decoded.error;
    }
}

fn on_response_event(st: &mut HttpState, ctx: &Ctx<'_>, ev: HttpEvent<'_>) {
    match ev {
        HttpEvent::Head(head) => {
            let status = head.status.unwrap_or(0);
            if head.is_interim() {
                st.interim.push(status);
                return;
            }
            charge_loss(st);
            // The final response answers the oldest complete request, or the one still being sent
            // (a server may answer, e.g. 413, before the body is over).
            let target = st.pending.pop_front().or_else(|| {
                st.current
                    .as_ref()
                    .map(|c| c.index)
                    .filter(|i| !response_started(&st.conn, *i))
            });
            let Some(index) = target else {
                push_error(
                    st,
                    ctx,
                    format!(
                        "response {status} with no request waiting for it (at {})",
                        ctx.ts.to_utc_string()
                    ),
                );
                st.interim.clear();
                st.responding = None;
                return;
            };
            let interim = std::mem::take(&mut st.interim);
            if let Some(ex) = st.conn.exchanges.get_mut(index) {
                let latency_ms = if ex.request.complete {
                    ctx.ts.millis_since(ex.request.end_time)
                } else {
                    0.0
                };
                ex.response = Some(Response {
                    time: ctx.ts,
                    status,
                    reason: head.reason.clone().unwrap_or_default(),
                    latency_ms,
                    headers: head.headers,
                    interim,
                    body_bytes: 0,
                });
            }
            if status == 101 {
                // The answer is the 101; what follows, both ways, is the upgraded protocol.
                st.conn.upgrade = Some(head_upgrade(&st.conn, index));
                st.switch_pending = true;
            }
            st.responding = Some(index);
        }
        HttpEvent::Body(data) => {
            if let Some(r) = st
                .responding
                .and_then(|i| st.conn.exchanges.get_mut(i))
                .and_then(|e| e.response.as_mut())
            {
                r.body_bytes = r.body_bytes.saturating_add(data.len() as u64);
            }
        }
        HttpEvent::Missing(n) => {
            if let Some(r) = st
                .responding
                .and_then(|i| st.conn.exchanges.get_mut(i))
                .and_then(|e| e.response.as_mut())
            {
                r.body_bytes = r.body_bytes.saturating_add(n);
            }
        }
        HttpEvent::End { .. } | HttpEvent::Incomplete { .. } => {
            st.responding = None;
        }
        HttpEvent::Error(err) => {
            st.responding = None;
            if matches!(
                err.kind,
                HttpErrorKind::MalformedHead { .. }
                    | HttpErrorKind::TooManyHeaders { .. }
                    | HttpErrorKind::HeadTooLarge { .. }
            ) {
                // An answer began (its start line passed the probe) but cannot be read: it is
                // still the answer to the oldest waiting request.
                charge_loss(st);
                if let Some(ex) = st
                    .pending
                    .pop_front()
                    .and_then(|i| st.conn.exchanges.get_mut(i))
                {
                    ex.notes.push(ExchangeNote::MalformedResponse {
                        offset: err.offset,
                        error: err.kind.clone(),
                        at: ctx.ts,
                    });
                    st.interim.clear();
                }
            }
            push_error(st, ctx, format!("response stream: {err}"));
        }
    }
}

/// Before a final answer is paired: if server bytes were lost since the last answer, the requests
/// sent before the loss may have been answered in it, and the answer at hand then belongs to a
/// request sent after it. Those earlier requests are marked (their verdict: `not_captured`) and
/// stop waiting. When no waiting request was sent after the loss, nothing is charged: the answer
/// at hand is taken for the oldest waiting request, as without a loss.
fn charge_loss(st: &mut HttpState) {
    let Some(lost) = st.loss_since_head.take() else {
        return;
    };
    let sent_after =
        |ex: &[Exchange], i: usize| ex.get(i).is_some_and(|e| e.request.end_time > lost);
    if !st
        .pending
        .iter()
        .any(|&i| sent_after(&st.conn.exchanges, i))
    {
        return;
    }
    while let Some(&i) = st.pending.front() {
        if sent_after(&st.conn.exchanges, i) {
            break;
        }
        st.pending.pop_front();
        if let Some(ex) = st.conn.exchanges.get_mut(i) {
            ex.notes.push(ExchangeNote::AnswerNotCaptured { at: lost });
        }
    }
}

/// The protocol a 101 switched to: the answer's Upgrade header, else the request's.
fn head_upgrade(conn: &Connection, index: usize) -> String {
    let ex = conn.exchanges.get(index);
    let from_response = ex
        .and_then(|e| e.response.as_ref())
        .and_then(|r| header_of(&r.headers, "upgrade"));
    let from_request = ex.and_then(|e| header_of(&e.request.headers, "upgrade"));
    from_response
        .or(from_request)
        .unwrap_or_default()
        .to_string()
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{FramingError, HttpErrorKind};

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
}
