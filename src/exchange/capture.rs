//! The capture side of the builder: a connection's request and response events, as a capture
//! sees both directions, paired into exchanges. Used by the pipeline for replay and sniff.
//!
//! Pairing follows HTTP/1.1: a final answer belongs to the oldest complete request still waiting
//! (or to the one still being sent, when a server answers early). Interim answers (1xx) stay
//! interim. Server bytes the capture lost may hold answers: the requests they could answer are
//! noted (`not_captured`), never judged `no_response`.
//!
//! Which requests a lost stretch of the server's stream may have answered is read from two clues:
//! capture time (requests sent after the loss was seen cannot be answered in it) and stream
//! position. Each request remembers how far the server's stream had got (bytes seen or declared
//! lost, which covers everything the client had acknowledged) when it was seen: its answer cannot
//! begin before that point. When lost server bytes lie between two waiting requests' points, the
//! client received them between sending the two, so the first one's answer may be there, and an
//! answer head at or after the second point may be the second one's own.

use std::collections::VecDeque;

use crate::http::{HttpErrorKind, HttpEvent, MessageDecoder, StreamRange};
use crate::isapi::{BodyLimits, PartHeader, PartSink};
use crate::model::{
    Connection, ConnectionError, Exchange, ExchangeNote, ExchangeRef, Request, RequestError,
    Response,
};
use crate::time::Timestamp;

use super::RequestInFlight;

/// Receives the bytes of every body part, tagged with its exchange (picture extraction).
pub trait ExchangeSink {
    /// Part `header.index` of exchange `ex`, sent by `client`, begins.
    fn part_start(&mut self, ex: ExchangeRef, client: &str, header: &PartHeader);
    /// The next bytes of part `index` (never kept by the pipeline: write them or drop them).
    fn part_data(&mut self, ex: ExchangeRef, index: usize, data: &[u8]);
    /// Part `index` ended after `bytes` bytes.
    fn part_end(&mut self, ex: ExchangeRef, index: usize, bytes: u64);
}

/// The part sink of one connection, when there is one.
pub type SinkRef<'a> = Option<&'a mut (dyn ExchangeSink + Send + 'static)>;

/// Exchanges of one connection as the decoders report them: the builder's state for one
/// captured connection.
pub struct HttpState {
    /// The record being built.
    pub conn: Connection,
    current: Option<RequestInFlight>,
    /// Where the server's stream stood when the head of `current` was seen.
    current_at: u64,
    /// Exchanges whose request is complete and whose final response has not begun.
    pending: VecDeque<Waiting>,
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
    /// Nothing seen yet on `conn`.
    pub fn new(conn: Connection) -> HttpState {
        HttpState {
            conn,
            current: None,
            current_at: 0,
            pending: VecDeque::new(),
            responding: None,
            interim: Vec::new(),
            errors_dropped: 0,
            loss_since_head: None,
            last_gap_loss: None,
            last_skip_loss: None,
            switch_pending: false,
        }
    }

    /// Server bytes that may hold answers were lost at `ts` (in a gap, or skipped at the start).
    pub fn response_loss(&mut self, ts: Timestamp, in_gap: bool) {
        self.loss_since_head.get_or_insert(ts);
        let last = if in_gap {
            &mut self.last_gap_loss
        } else {
            &mut self.last_skip_loss
        };
        *last = Some(last.map_or(ts, |l| l.max(ts)));
    }

    /// True once after a `101 Switching Protocols` was paired: the caller switches the client's
    /// decoder too.
    pub fn take_switch(&mut self) -> bool {
        std::mem::take(&mut self.switch_pending)
    }

    /// A request still being received: it ends here, incomplete.
    pub fn abandon_current(&mut self, sink: SinkRef<'_>) {
        if let Some(cur) = self.current.take() {
            finish_body(&mut self.conn, cur, sink);
        }
    }

    /// The connection ended, both decoders told (`eof`) and the request in progress abandoned.
    /// `start_unseen`: the capture did not see the connection begin, so server bytes skipped at
    /// its start may have been answers. Requests still waiting when server bytes were lost after
    /// them are noted (their answer may be there); errors beyond the limit are counted.
    pub fn finish(mut self, start_unseen: bool) -> Connection {
        let skip_loss = self.last_skip_loss.filter(|_| start_unseen);
        if let Some(lost) = self.last_gap_loss.max(skip_loss) {
            for w in &self.pending {
                if let Some(ex) = self.conn.exchanges.get_mut(w.index) {
                    if ex.response.is_none() && ex.request.end_time <= lost {
                        ex.notes.push(ExchangeNote::AnswerNotCaptured { at: lost });
                    }
                }
            }
        }
        if self.errors_dropped > 0 {
            self.conn
                .errors
                .push(ConnectionError::MoreNotShown(self.errors_dropped));
        }
        self.conn
    }
}

/// A complete request waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    /// The exchange.
    index: usize,
    /// Offset the server's stream had reached (bytes seen or declared lost) when the request's
    /// head was seen: its answer begins at or after it.
    server_at: u64,
}

/// The shortest answer a lost stretch could hold (`HTTP/1.1 200\r\n\r\n`): a smaller stretch
/// cannot have held a whole answer.
const MIN_ANSWER_BYTES: u64 = 16;

/// What every event handler needs besides the event: the limits and the capture time.
pub struct Ctx<'a> {
    /// Limits of the body decoder.
    pub body: &'a BodyLimits,
    /// HTTP framing errors kept per connection; further ones are only counted.
    pub max_errors: usize,
    /// Capture time of the packet that carried the event.
    pub ts: Timestamp,
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

fn push_error(st: &mut HttpState, ctx: &Ctx<'_>, msg: ConnectionError) {
    if st.conn.errors.len() < ctx.max_errors {
        st.conn.errors.push(msg);
    } else {
        st.errors_dropped += 1;
    }
}

/// One event of the client's stream: a head starts an exchange, body bytes are decoded into it,
/// its end queues it for an answer.
pub fn on_request_event(
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
            let request = Request::from_head(head, ctx.ts);
            resp.expect_response_to(&request.method);
            st.current_at = resp.offset();
            st.current = Some(RequestInFlight::new(
                index,
                request.content_type.as_deref(),
                ctx.body.clone(),
            ));
            st.conn.exchanges.push(Exchange::started(index, request));
        }
        HttpEvent::Body(data) => {
            if let Some(cur) = st.current.as_mut() {
                let ex = ExchangeRef {
                    connection: st.conn.id,
                    index: cur.index,
                };
                let exchange = st.conn.exchanges.get_mut(cur.index);
                match sink {
                    Some(s) => {
                        let mut a = SinkAdapter {
                            ex,
                            client: &st.conn.client,
                            inner: s,
                        };
                        cur.feed(exchange, ctx.ts, data, Some(&mut a));
                    }
                    None => cur.feed(exchange, ctx.ts, data, None),
                }
            }
        }
        HttpEvent::Missing(n) => {
            if let Some(cur) = st.current.as_mut() {
                cur.missing(st.conn.exchanges.get_mut(cur.index), n);
            }
        }
        HttpEvent::End { .. } => {
            if let Some(cur) = st.current.take() {
                let index = cur.index;
                cur.complete(st.conn.exchanges.get_mut(index), ctx.ts);
                finish_body(&mut st.conn, cur, sink);
                // The final response may already have started (a server answering early).
                if st.responding != Some(index) && !response_started(&st.conn, index) {
                    st.pending.push_back(Waiting {
                        index,
                        server_at: st.current_at,
                    });
                }
            }
        }
        HttpEvent::Error(err) => {
            if let Some(cur) = st.current.take() {
                let index = cur.index;
                if let Some(ex) = st.conn.exchanges.get_mut(index) {
                    ex.request.error = Some(RequestError::Framing(err.clone()));
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
                    st.pending.push_back(Waiting {
                        index,
                        server_at: st.current_at,
                    });
                }
                // Kept on the exchange (as a note) rather than as a connection error.
                if err.kind.framing().is_some() {
                    return;
                }
            }
            push_error(st, ctx, ConnectionError::RequestStream(err));
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

fn finish_body(conn: &mut Connection, cur: RequestInFlight, sink: SinkRef<'_>) {
    let ex_ref = ExchangeRef {
        connection: conn.id,
        index: cur.index,
    };
    let ex = conn.exchanges.get_mut(cur.index);
    match sink {
        Some(s) => {
            let mut a = SinkAdapter {
                ex: ex_ref,
                client: &conn.client,
                inner: s,
            };
            cur.finish(ex, Some(&mut a));
        }
        None => cur.finish(ex, None),
    }
}

/// One event of the server's stream: a final head answers the oldest waiting request.
pub fn on_response_event(st: &mut HttpState, ctx: &Ctx<'_>, ev: HttpEvent<'_>) {
    match ev {
        HttpEvent::Head(head) => {
            let status = head.status.unwrap_or(0);
            // An interim head begins the answer as much as a final one does.
            if let Some(lost) = head.lost_before {
                // `at`: the first server packet after the loss when it is known (as the time
                // rule reports it), else this head's.
                let at = st.loss_since_head.unwrap_or(ctx.ts);
                charge_lost_range(st, head.start, lost, at);
            }
            if head.is_interim() {
                st.interim.push(status);
                return;
            }
            charge_loss(st);
            // The final response answers the oldest complete request, or the one still being sent
            // (a server may answer, e.g. 413, before the body is over).
            let target = st.pending.pop_front().map(|w| w.index).or_else(|| {
                st.current
                    .as_ref()
                    .map(|c| c.index)
                    .filter(|i| !response_started(&st.conn, *i))
            });
            let Some(index) = target else {
                push_error(
                    st,
                    ctx,
                    ConnectionError::UnpairedResponse { status, at: ctx.ts },
                );
                st.interim.clear();
                st.responding = None;
                return;
            };
            let interim = std::mem::take(&mut st.interim);
            if let Some(ex) = st.conn.exchanges.get_mut(index) {
                ex.response = Some(Response::answering(
                    &ex.request,
                    ctx.ts,
                    status,
                    head.reason.unwrap_or_default(),
                    head.headers,
                    interim,
                ));
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
                    .and_then(|w| st.conn.exchanges.get_mut(w.index))
                {
                    ex.notes.push(ExchangeNote::MalformedResponse {
                        offset: err.offset,
                        error: err.kind.clone(),
                        at: ctx.ts,
                    });
                    st.interim.clear();
                }
            }
            push_error(st, ctx, ConnectionError::ResponseStream(err));
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
        .any(|w| sent_after(&st.conn.exchanges, w.index))
    {
        return;
    }
    while let Some(&Waiting { index: i, .. }) = st.pending.front() {
        if sent_after(&st.conn.exchanges, i) {
            break;
        }
        st.pending.pop_front();
        if let Some(ex) = st.conn.exchanges.get_mut(i) {
            ex.notes.push(ExchangeNote::AnswerNotCaptured { at: lost });
        }
    }
}

/// Before a final answer that begins at stream offset `start`, after server bytes `lost` were
/// lost outside any framed body: the answer is taken for the latest waiting request it can be
/// the answer to, given the stream positions, and the requests before it are marked
/// (`not_captured`: their answers may be in the lost bytes; `at` the capture time of the first
/// server packet after the loss, or of the answer when that is not known).
///
/// Request `k` is taken when it was seen no later than `start` (else its answer would begin
/// after it), at least [`MIN_ANSWER_BYTES`] lost bytes lie between the point of request `k - 1`
/// and its own (the client received them in between: the previous answer may be those bytes),
/// and the lost bytes after the oldest waiting request's point can hold one answer per skipped
/// request. A pipelining client (several requests at one point) gives no such clue: the time
/// rule ([`charge_loss`]) or plain order decides.
fn charge_lost_range(st: &mut HttpState, start: u64, lost: StreamRange, at: Timestamp) {
    let Some(first) = st.pending.front().map(|w| w.server_at) else {
        return;
    };
    let room = lost.overlap(first, start);
    let mut skip = 0usize;
    let mut prev = first;
    for (k, w) in st.pending.iter().enumerate().skip(1) {
        if w.server_at > start {
            break;
        }
        let fits = (k as u64).saturating_mul(MIN_ANSWER_BYTES) <= room;
        if fits && lost.overlap(prev, w.server_at) >= MIN_ANSWER_BYTES {
            skip = k;
        }
        prev = w.server_at;
    }
    for w in st.pending.drain(..skip) {
        if let Some(ex) = st.conn.exchanges.get_mut(w.index) {
            ex.notes.push(ExchangeNote::AnswerNotCaptured { at });
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
    use crate::http::{Kind, Limits};
    use crate::model::Verdict;
    use crate::tcp::Handshake;

    /// Both decoders and the pairing state of one connection, driven the way the pipeline
    /// drives them from TCP events, with a capture clock in milliseconds.
    struct Conn {
        st: HttpState,
        req: MessageDecoder,
        resp: MessageDecoder,
        body: BodyLimits,
        ms: i64,
    }

    impl Conn {
        fn new() -> Conn {
            let addr = |p| std::net::SocketAddr::from(([127, 0, 0, 1], p));
            let conn = Connection::opened(1, addr(40000), addr(80), Handshake::Complete, 1, ts(0));
            Conn {
                st: HttpState::new(conn),
                req: MessageDecoder::new(Kind::Request, Limits::default()),
                resp: MessageDecoder::new(Kind::Response, Limits::default()),
                body: BodyLimits::default(),
                ms: 0,
            }
        }

        /// The next packet's capture time.
        fn tick(&mut self) -> Timestamp {
            self.ms += 10;
            ts(self.ms)
        }

        fn request(&mut self, path: &str) {
            let data = format!("GET {path} HTTP/1.1\r\nHost: cam\r\n\r\n");
            let now = self.tick();
            let Conn {
                st,
                req,
                resp,
                body,
                ..
            } = self;
            let ctx = ctx(body, now);
            req.feed(data.as_bytes(), &mut |e| {
                on_request_event(st, resp, &ctx, e, None)
            });
        }

        fn answer(&mut self, status: u16) {
            self.server(&format!(
                "HTTP/1.1 {status} X\r\nContent-Length: 4\r\n\r\nbody"
            ));
        }

        fn server(&mut self, data: &str) {
            let now = self.tick();
            let Conn { st, resp, body, .. } = self;
            let ctx = ctx(body, now);
            resp.feed(data.as_bytes(), &mut |e| on_response_event(st, &ctx, e));
        }

        /// Server bytes lost, as the TCP stage reports them once the client's ACK shows them.
        fn lost(&mut self, bytes: u64) {
            let now = self.tick();
            let Conn { st, resp, body, .. } = self;
            let ctx = ctx(body, now);
            resp.gap(bytes, &mut |e| on_response_event(st, &ctx, e));
            if resp.out_of_sync() {
                st.response_loss(ctx.ts, true);
            }
        }

        /// (path, status, verdict) of every exchange after the connection ends.
        fn finish(mut self) -> Vec<(String, Option<u16>, Verdict)> {
            let now = self.tick();
            let Conn {
                st,
                req,
                resp,
                body,
                ..
            } = &mut self;
            let ctx = ctx(body, now);
            req.eof(&mut |e| on_request_event(st, resp, &ctx, e, None));
            resp.eof(&mut |e| on_response_event(st, &ctx, e));
            self.st
                .finish(false)
                .exchanges
                .iter()
                .map(|e| {
                    let status = e.response.as_ref().map(|r| r.status);
                    (e.request.path.clone(), status, Verdict::of(e))
                })
                .collect()
        }
    }

    fn ctx(body: &BodyLimits, ts: Timestamp) -> Ctx<'_> {
        Ctx {
            body,
            max_errors: 10,
            ts,
        }
    }

    fn ts(ms: i64) -> Timestamp {
        Timestamp(ms * 1_000_000)
    }

    fn row(path: &str, status: Option<u16>, verdict: Verdict) -> (String, Option<u16>, Verdict) {
        (path.to_string(), status, verdict)
    }

    #[test]
    fn answers_lost_between_one_at_a_time_requests_are_not_captured() {
        // A client that waits for each answer: /a answered, then /b, /c and /d each sent after
        // the previous answer arrived, but the capture lost the answers to /b and /c (their
        // bytes reported lost when /c and /d acknowledge them). The answer seen next is /d's.
        let mut c = Conn::new();
        c.request("/a");
        c.answer(200);
        c.request("/b");
        c.lost(300);
        c.request("/c");
        c.lost(500);
        c.request("/d");
        c.answer(201);
        assert_eq!(
            c.finish(),
            vec![
                row("/a", Some(200), Verdict::Ok),
                row("/b", None, Verdict::NotCaptured),
                row("/c", None, Verdict::NotCaptured),
                row("/d", Some(201), Verdict::ErrorStatus),
            ]
        );
    }

    #[test]
    fn an_interim_answer_after_the_loss_is_placed_the_same_way() {
        let mut c = Conn::new();
        c.request("/a");
        c.answer(200);
        c.request("/b");
        c.lost(300);
        c.request("/c");
        c.lost(500);
        c.request("/d");
        c.server("HTTP/1.1 100 Continue\r\n\r\n");
        c.answer(201);
        let got = c.finish();
        assert_eq!(got.get(2).map(|r| r.2), Some(Verdict::NotCaptured));
        assert_eq!(
            got.get(3),
            Some(&row("/d", Some(201), Verdict::ErrorStatus))
        );
    }

    #[test]
    fn a_loss_too_small_for_an_answer_charges_nothing() {
        // As above, but the bytes lost between /c and /d cannot hold a whole answer: the answer
        // seen is /c's (only /b, sent before the first loss, may have been answered in it).
        let mut c = Conn::new();
        c.request("/a");
        c.answer(200);
        c.request("/b");
        c.lost(300);
        c.request("/c");
        c.lost(MIN_ANSWER_BYTES - 1);
        c.request("/d");
        c.answer(201);
        let got = c.finish();
        assert_eq!(got.get(1), Some(&row("/b", None, Verdict::NotCaptured)));
        assert_eq!(
            got.get(2),
            Some(&row("/c", Some(201), Verdict::ErrorStatus))
        );
    }

    #[test]
    fn pipelined_requests_seen_at_one_point_are_not_skipped_by_position() {
        // /b and /c sent back to back (same point of the server's stream), then a loss and an
        // answer: positions give no clue that /b was answered in the loss, and the time rule
        // finds no request sent after it, so the answer is /b's and /c waits.
        let mut c = Conn::new();
        c.request("/a");
        c.answer(200);
        c.request("/b");
        c.request("/c");
        c.lost(400);
        c.answer(201);
        let got = c.finish();
        assert_eq!(
            got.get(1),
            Some(&row("/b", Some(201), Verdict::ErrorStatus))
        );
        assert_eq!(got.get(2).map(|r| r.2), Some(Verdict::NotCaptured));
    }
}
