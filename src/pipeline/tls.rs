//! TLS routing in the pipeline: which connections carry TLS, and what their records show.
//!
//! Why a separate stage beside the HTTP decoders: an HTTPS push is unreadable without keys, but
//! its records still show the handshake, who gave up and when requests and answers went back and
//! forth ([`crate::tls`]). The client's first bytes choose per connection
//! ([`probe_client_hello`]); until they do, every event of the connection is held (a handful of
//! bytes: six client bytes decide). TLS connections are fed to a [`TlsConnection`] and never
//! reach the HTTP decoders; plain ones go on to HTTP as before, keeping the server's first bytes
//! so that a TLS server answering a plain request can be named
//! ([`evidence_against_plain_http`]).
//!
//! Sans-IO and bounded: per connection at most the undecided bytes ([`MAX_HELD`]), the TLS
//! stage's own limits and [`ANSWER_PREFIX`] server bytes; the set of server addresses that
//! completed a TLS handshake holds at most [`MAX_TLS_SERVERS`].

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use crate::tcp::CloseKind;
use crate::tls::decrypt::{DecryptConfig, DecryptEvent, DecryptStatus, TlsDecryptor};
use crate::tls::SharedKeys;

use crate::model::{Connection, ConnectionError, Exchange, Verdict};
use crate::tcp::{Direction, Handshake};
use crate::time::Timestamp;
use crate::tls::{
    evidence_against_plain_http, probe_client_hello, HandshakeState, Probe, TlsConfig,
    TlsConnection, TlsExchange, TlsFinding, MAX_RECORD_LEN,
};

/// Server bytes a plain HTTP connection keeps to tell a TLS server's answer (a record header, or
/// nginx's "plain HTTP request was sent to HTTPS port" page, whose text sits in the first ~300
/// bytes of the answer).
pub const ANSWER_PREFIX: usize = 512;

/// Bytes held while a connection is undecided: past this (a server that speaks first and long,
/// with the client silent) the connection goes to HTTP.
pub const MAX_HELD: usize = 4096;

/// Server addresses remembered as completing TLS handshakes (a plain request closed without a
/// word on such an address is named as sent to a TLS port).
pub const MAX_TLS_SERVERS: usize = 4096;

/// What the pipeline does with an event after routing.
pub(super) enum Route {
    /// Give it to the HTTP decoders as usual.
    Http,
    /// The TLS stage took it, or it is held until the connection is decided.
    Taken,
    /// The connection was just decided plain HTTP: feed these held events (the current one
    /// among them) to the HTTP decoders, in order.
    Release(Vec<Held>),
    /// The TLS stage took it and its decryptor handed on this plaintext (and these holes): feed
    /// them to the HTTP decoders, in order, and mark the connection's exchanges decrypted.
    Decrypted(Vec<Plain>),
}

/// What a decryptor hands the HTTP decoders of its connection.
pub(super) enum Plain {
    /// Authenticated application data.
    Data(Direction, Timestamp, Vec<u8>),
    /// Plaintext missing, of exactly this length (`u64::MAX`: the direction stopped; nothing
    /// follows it).
    Gap(Direction, Timestamp, u64),
    /// Plaintext missing, at most this long (records lost across a capture gap, TLS 1.3
    /// padding unknown): the HTTP decoder drops the framing and counts the bound, so later
    /// offsets stay finite (`MessageDecoder::gap_unknown`).
    Hole(Direction, Timestamp, u64),
}

/// An event held while the connection is undecided.
pub(super) enum Held {
    Data(Direction, Timestamp, Vec<u8>),
    Gap(Direction, Timestamp, u64),
}

/// A plain connection's view of the server's first bytes.
#[derive(Default)]
struct Answer {
    /// The server's first bytes (at most [`ANSWER_PREFIX`]).
    prefix: Vec<u8>,
    /// The first bytes already rule out a TLS server (not a TLS record, not a 400): the prefix
    /// is dropped to save memory.
    ruled_out: bool,
    /// The server's stream did not start with data the capture saw (a gap first).
    start_lost: bool,
    /// Capture time of the first server byte.
    first: Option<Timestamp>,
}

impl Answer {
    fn data(&mut self, ts: Timestamp, data: &[u8]) {
        if self.ruled_out || self.start_lost {
            return;
        }
        self.first.get_or_insert(ts);
        let room = ANSWER_PREFIX.saturating_sub(self.prefix.len());
        self.prefix
            .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
        // 12 bytes hold a record header, or "HTTP/1.1 400": anything else cannot be a TLS
        // server's answer.
        if let Some(head) = self.prefix.get(..12) {
            let record = matches!(head.first(), Some(0x15 | 0x16));
            let status_400 = head.starts_with(b"HTTP/") && head.get(9..12) == Some(b"400");
            if !record && !status_400 {
                self.ruled_out = true;
                self.prefix = Vec::new();
            }
        }
    }
}

/// The decryptor of a TLS connection (`--keylog`) and which directions it stopped.
struct Decrypting {
    dec: TlsDecryptor,
    /// A direction stopped: the HTTP decoder of that side was told the rest is lost, and
    /// hears nothing more.
    stopped: [bool; 2],
}

impl Decrypting {
    /// Run one call of the decryptor and turn its events into what the HTTP decoders read:
    /// plaintext as data, an exact hole as a gap of its length, a hole of unknown length as a
    /// [`Plain::Hole`] of its upper bound, a stopped direction as a gap of unknown length
    /// (`u64::MAX`: the decoder ends or marks incomplete the message in progress, so a request
    /// whose answer was not decrypted is uncertain, never `no_response`; nothing of that
    /// direction follows). Nothing reaches HTTP from a connection that is not decrypted (only
    /// holes could: no plaintext was ever handed on).
    fn run(
        &mut self,
        call: impl FnOnce(&mut TlsDecryptor, &mut dyn FnMut(DecryptEvent<'_>)),
    ) -> Vec<Plain> {
        let mut out = Vec::new();
        let stopped = &mut self.stopped;
        let mut sink = |ev: DecryptEvent<'_>| match ev {
            DecryptEvent::Plain { dir, ts, bytes, .. } if !stopped[side(dir)] => {
                out.push(Plain::Data(dir, ts, bytes.to_vec()));
            }
            DecryptEvent::Gap {
                dir,
                ts,
                bytes,
                exact,
            } if !stopped[side(dir)] => {
                out.push(match exact {
                    true => Plain::Gap(dir, ts, bytes),
                    false => Plain::Hole(dir, ts, bytes),
                });
            }
            DecryptEvent::Stopped { dir, ts } if !stopped[side(dir)] => {
                stopped[side(dir)] = true;
                out.push(Plain::Gap(dir, ts, u64::MAX));
            }
            _ => {}
        };
        call(&mut self.dec, &mut sink);
        if self.dec.status() == DecryptStatus::NotDecrypted {
            out.clear();
        }
        out
    }
}

fn side(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// How one connection is analysed.
enum ConnRoute {
    /// Waiting for the client's first bytes.
    Undecided { held: Vec<Held>, bytes: usize },
    /// TLS: the stage, and the exchanges it finished so far.
    Tls {
        tls: Box<TlsConnection>,
        done: Vec<TlsExchange>,
        completed: bool,
        /// The decryptor, when a key log was given.
        dec: Option<Box<Decrypting>>,
    },
    /// Plain HTTP (or not TLS at all).
    Plain(Answer),
}

struct RouteState {
    server: SocketAddr,
    route: ConnRoute,
}

/// The TLS routing of every open connection.
#[derive(Default)]
pub(super) struct TlsRouter {
    conns: HashMap<u64, RouteState>,
    /// Server addresses on which a TLS handshake completed.
    tls_servers: HashSet<SocketAddr>,
    /// The key log, when one was given: every TLS connection gets a decryptor.
    keys: Option<SharedKeys>,
}

/// Does `first` start like a TLS record other than a ClientHello (a capture begun after the
/// handshake: application data, alert, change_cipher_spec)? No HTTP request starts with these
/// bytes, so such a client stream goes to the TLS stage, which reports the handshake unseen.
fn looks_like_midstream_record(first: &[u8]) -> bool {
    match first.get(..5) {
        Some(h) => {
            (0x14..=0x17).contains(&h[0])
                && h[1] == 3
                && h[2] <= 4
                && u16::from_be_bytes([h[3], h[4]]) <= MAX_RECORD_LEN
        }
        None => false,
    }
}

impl TlsRouter {
    /// A router whose TLS connections are decrypted with `keys` when given.
    pub(super) fn with_keys(keys: Option<SharedKeys>) -> Self {
        TlsRouter {
            keys,
            ..TlsRouter::default()
        }
    }

    /// A decryptor for a new TLS connection, when there is a key log.
    fn decryptor(&self) -> Option<Box<Decrypting>> {
        let keys = self.keys.as_ref()?;
        Some(Box::new(Decrypting {
            dec: TlsDecryptor::new(DecryptConfig::default(), keys.0.clone()),
            stopped: [false; 2],
        }))
    }

    pub(super) fn open(&mut self, id: u64, server: SocketAddr) {
        self.conns.insert(
            id,
            RouteState {
                server,
                route: ConnRoute::Undecided {
                    held: Vec::new(),
                    bytes: 0,
                },
            },
        );
    }

    /// Route one in-order chunk of connection `id`.
    pub(super) fn data(&mut self, id: u64, dir: Direction, ts: Timestamp, data: &[u8]) -> Route {
        let Some(st) = self.conns.get_mut(&id) else {
            return Route::Http;
        };
        match &mut st.route {
            ConnRoute::Plain(answer) => {
                if dir == Direction::ServerToClient {
                    answer.data(ts, data);
                }
                Route::Http
            }
            ConnRoute::Tls {
                tls,
                done,
                completed,
                dec,
            } => {
                tls.data(dir, ts, data);
                done.append(&mut tls.take_exchanges());
                if !*completed && tls.info().handshake == HandshakeState::Completed {
                    *completed = true;
                    if self.tls_servers.len() < MAX_TLS_SERVERS {
                        self.tls_servers.insert(st.server);
                    }
                }
                match dec {
                    Some(d) => Route::Decrypted(d.run(|dec, out| dec.data(dir, ts, data, out))),
                    None => Route::Taken,
                }
            }
            ConnRoute::Undecided { held, bytes } => {
                held.push(Held::Data(dir, ts, data.to_vec()));
                *bytes += data.len();
                let decision = decide(held, *bytes);
                self.decided(id, decision)
            }
        }
    }

    /// Route a capture gap of connection `id`.
    pub(super) fn gap(&mut self, id: u64, dir: Direction, ts: Timestamp, bytes: u64) -> Route {
        let Some(st) = self.conns.get_mut(&id) else {
            return Route::Http;
        };
        match &mut st.route {
            ConnRoute::Plain(answer) => {
                if dir == Direction::ServerToClient && answer.first.is_none() {
                    answer.start_lost = true;
                }
                Route::Http
            }
            ConnRoute::Tls { tls, done, dec, .. } => {
                tls.gap(dir, ts, bytes);
                done.append(&mut tls.take_exchanges());
                match dec {
                    Some(d) => Route::Decrypted(d.run(|dec, out| dec.gap(dir, ts, bytes, out))),
                    None => Route::Taken,
                }
            }
            ConnRoute::Undecided { held, .. } => {
                held.push(Held::Gap(dir, ts, bytes));
                // The client's first bytes are lost: whatever follows cannot tell. The HTTP
                // decoders resynchronise on a request line if there is one.
                let decision = if dir == Direction::ClientToServer {
                    Some(Probe::NotTls)
                } else {
                    None
                };
                self.decided(id, decision)
            }
        }
    }

    /// Act on a decision for an undecided connection.
    fn decided(&mut self, id: u64, decision: Option<Probe>) -> Route {
        let Some(st) = self.conns.get_mut(&id) else {
            return Route::Http;
        };
        let Some(probe) = decision else {
            return Route::Taken;
        };
        let held = match &mut st.route {
            ConnRoute::Undecided { held, .. } => std::mem::take(held),
            _ => return Route::Taken,
        };
        match probe {
            Probe::Tls => {
                let mut tls = Box::new(TlsConnection::new(TlsConfig::default()));
                let mut dec = self.decryptor();
                let mut plain = Vec::new();
                for h in &held {
                    match h {
                        Held::Data(d, ts, b) => tls.data(*d, *ts, b),
                        Held::Gap(d, ts, n) => tls.gap(*d, *ts, *n),
                    }
                    if let Some(x) = dec.as_mut() {
                        plain.extend(x.run(|dec, out| match h {
                            Held::Data(d, ts, b) => dec.data(*d, *ts, b, out),
                            Held::Gap(d, ts, n) => dec.gap(*d, *ts, *n, out),
                        }));
                    }
                }
                let done = tls.take_exchanges();
                let decrypting = dec.is_some();
                let Some(st) = self.conns.get_mut(&id) else {
                    return Route::Taken;
                };
                st.route = ConnRoute::Tls {
                    tls,
                    done,
                    completed: false,
                    dec,
                };
                if decrypting {
                    Route::Decrypted(plain)
                } else {
                    Route::Taken
                }
            }
            // SSLv2-format hellos are TLS-ish but not analysed: the HTTP path reports the bytes
            // as not HTTP, as before.
            Probe::NotTls | Probe::Sslv2Hello | Probe::NeedMore => {
                // The held events come back through `data`/`gap` on the plain route, which
                // keeps the server's first bytes from them.
                st.route = ConnRoute::Plain(Answer::default());
                Route::Release(held)
            }
        }
    }

    /// The connection ended (`conn` is final but for TLS): fill in what TLS showed. TLS
    /// connections get their `tls` object, findings and one exchange row per inferred exchange;
    /// plain ones a `plain_http_to_tls_server` finding when the server answered as a TLS server.
    pub(super) fn close(&mut self, id: u64, conn: &mut Connection) {
        let Some(st) = self.conns.remove(&id) else {
            return;
        };
        let route = match st.route {
            ConnRoute::Undecided { held, .. } => {
                // The client sent the start of a hello and no more (a connection with no client
                // byte was handed to HTTP by `release_undecided`).
                match client_bytes(&held) {
                    1.. => {
                        let mut tls = Box::new(TlsConnection::new(TlsConfig::default()));
                        for h in &held {
                            match h {
                                Held::Data(d, ts, b) => tls.data(*d, *ts, b),
                                Held::Gap(d, ts, n) => tls.gap(*d, *ts, *n),
                            }
                        }
                        ConnRoute::Tls {
                            tls,
                            done: Vec::new(),
                            completed: false,
                            // Only the start of a hello: nothing to decrypt, but the report
                            // says so.
                            dec: self.decryptor(),
                        }
                    }
                    _ => return,
                }
            }
            r => r,
        };
        match route {
            ConnRoute::Tls {
                mut tls, done, dec, ..
            } => {
                tls.close(conn.last_seen, conn.closed);
                let mut decryption = dec.map(|d| Box::new(d.dec.finish()));
                if let Some(r) = decryption.as_mut() {
                    r.place_alerts(last_answer(&conn.exchanges));
                }
                let decrypted = decryption
                    .as_ref()
                    .is_some_and(|r| r.status == DecryptStatus::Decrypting);
                conn.decryption = decryption;
                let report = tls.finish();
                if report.info.handshake == HandshakeState::Completed
                    && self.tls_servers.len() < MAX_TLS_SERVERS
                {
                    self.tls_servers.insert(st.server);
                }
                conn.tls = Some(Box::new(report.info));
                conn.tls_findings = report.findings;
                if report.findings_dropped > 0 {
                    conn.errors.push(ConnectionError::MoreTlsFindingsNotShown(
                        report.findings_dropped,
                    ));
                }
                if report.exchanges_dropped > 0 {
                    conn.errors
                        .push(ConnectionError::MoreEncryptedExchangesNotShown(
                            report.exchanges_dropped,
                        ));
                }
                if decrypted {
                    // The HTTP decoders read the plaintext: the rows inferred from record
                    // timing are dropped.
                    for ex in &mut conn.exchanges {
                        ex.decrypted = true;
                    }
                } else {
                    push_rows(conn, done.into_iter().chain(report.exchanges));
                }
            }
            ConnRoute::Plain(answer) => {
                if let Some(f) = plain_finding(&answer, conn, self.speaks_tls(&st.server)) {
                    conn.tls_findings.push(f);
                }
            }
            ConnRoute::Undecided { .. } => {}
        }
    }

    /// The connection is closing: the decryptor's last events (a direction still looking for a
    /// record after a gap stops), for the HTTP decoders before they are told the end.
    pub(super) fn close_decryptor(&mut self, id: u64, ts: Timestamp, how: CloseKind) -> Vec<Plain> {
        match self.conns.get_mut(&id).map(|s| &mut s.route) {
            Some(ConnRoute::Tls { dec: Some(d), .. }) => d.run(|dec, out| dec.close(ts, how, out)),
            _ => Vec::new(),
        }
    }

    /// The connection is closing while still undecided: when the client sent nothing (a server
    /// that spoke alone), its held events go to the HTTP decoders as before the TLS stage
    /// existed; the start of a hello stays for [`TlsRouter::close`].
    pub(super) fn release_undecided(&mut self, id: u64) -> Option<Vec<Held>> {
        let st = self.conns.get_mut(&id)?;
        match &mut st.route {
            ConnRoute::Undecided { held, .. } if client_bytes(held) == 0 => {
                let held = std::mem::take(held);
                st.route = ConnRoute::Plain(Answer::default());
                Some(held)
            }
            _ => None,
        }
    }

    fn speaks_tls(&self, server: &SocketAddr) -> bool {
        self.tls_servers.contains(server)
    }

    /// Live views: add to the snapshots of open connections what TLS shows so far (the info,
    /// findings, finished exchanges and the one in progress, judged as if the connection
    /// ended now).
    pub(super) fn decorate(&self, conns: &mut [Connection]) {
        for c in conns {
            let Some(RouteState {
                route: ConnRoute::Tls { tls, done, dec, .. },
                ..
            }) = self.conns.get(&c.id)
            else {
                continue;
            };
            c.tls = Some(Box::new(tls.info().clone()));
            c.tls_findings = tls.findings().to_vec();
            if dec
                .as_ref()
                .is_some_and(|d| d.dec.status() == DecryptStatus::Decrypting)
            {
                // The rows are the HTTP decoders' (already in the snapshot).
                continue;
            }
            let current = tls.current_exchange().cloned();
            push_rows(c, done.iter().cloned().chain(current));
        }
    }

    /// Bytes held by the routing and the TLS stages (for the footprint).
    pub(super) fn buffered_bytes(&self) -> u64 {
        self.conns
            .values()
            .map(|s| match &s.route {
                ConnRoute::Undecided { bytes, .. } => *bytes,
                ConnRoute::Tls { tls, dec, .. } => {
                    tls.buffered_bytes() + dec.as_ref().map_or(0, |d| d.dec.buffered_bytes())
                }
                ConnRoute::Plain(a) => a.prefix.len(),
            } as u64)
            .sum()
    }
}

/// Client bytes among the held events.
fn client_bytes(held: &[Held]) -> usize {
    held.iter()
        .map(|h| match h {
            Held::Data(Direction::ClientToServer, _, b) => b.len(),
            _ => 0,
        })
        .sum()
}

/// Decide from the held events: the client's first six bytes, or HTTP when more than
/// [`MAX_HELD`] bytes are held.
fn decide(held: &[Held], bytes: usize) -> Option<Probe> {
    let mut first = [0u8; 6];
    let mut n = 0;
    for h in held {
        if let Held::Data(Direction::ClientToServer, _, b) = h {
            for &x in b.iter().take(first.len() - n) {
                first[n] = x;
                n += 1;
            }
        }
    }
    let seen = first.get(..n).unwrap_or_default();
    match probe_client_hello(seen) {
        Probe::NeedMore if bytes > MAX_HELD => Some(Probe::NotTls),
        Probe::NeedMore => None,
        Probe::NotTls if looks_like_midstream_record(seen) => Some(Probe::Tls),
        p => Some(p),
    }
}

/// Append one exchange row per inferred TLS exchange, indexed by position on the connection.
fn push_rows(conn: &mut Connection, exchanges: impl Iterator<Item = TlsExchange>) {
    for e in exchanges {
        let mut ex = Exchange::encrypted(e);
        ex.index = conn.exchanges.len();
        if let Some(t) = ex.encrypted.as_mut() {
            t.index = ex.index;
        }
        conn.exchanges.push(ex);
    }
}

/// The `plain_http_to_tls_server` finding of a finished plain connection, if its server
/// answered as a TLS server. Only for connections that carried a request and whose server
/// stream was seen from its start (a capture begun mid-connection shows no first answer).
fn plain_finding(answer: &Answer, conn: &Connection, port_speaks_tls: bool) -> Option<TlsFinding> {
    if conn.exchanges.is_empty() || answer.start_lost || answer.ruled_out {
        return None;
    }
    let start_seen = conn.handshake != Handshake::NotSeen;
    let evidence =
        evidence_against_plain_http(&answer.prefix, conn.closed, port_speaks_tls && start_seen)?;
    // A request answered by the server is not lost to this: only when none got a readable answer.
    if conn
        .exchanges
        .iter()
        .any(|e| e.verdict == Verdict::Ok || e.verdict == Verdict::EncryptedAnswered)
    {
        return None;
    }
    let time = answer.first.unwrap_or(conn.last_seen);
    Some(TlsFinding::PlainHttpToTlsServer { time, evidence })
}

/// The time of the last answer when every request of a connection had one (None when one had
/// none, or there was no request): alerts after it cost no event.
fn last_answer(exchanges: &[crate::model::Exchange]) -> Option<Timestamp> {
    exchanges
        .iter()
        .try_fold(None, |last: Option<Timestamp>, ex| {
            let t = ex.response.as_ref()?.time;
            Some(Some(last.map_or(t, |l| l.max(t))))
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_START: &[u8] = &[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01];

    fn data(dir: Direction, b: &[u8]) -> Held {
        Held::Data(dir, Timestamp(0), b.to_vec())
    }

    #[test]
    fn six_client_bytes_decide_and_a_midstream_record_is_tls() {
        let c2s = Direction::ClientToServer;
        assert_eq!(decide(&[data(c2s, &HELLO_START[..3])], 3), None);
        assert_eq!(decide(&[data(c2s, HELLO_START)], 6), Some(Probe::Tls));
        assert_eq!(
            decide(&[data(c2s, b"POST /alarm HTTP/1.1\r\n")], 22),
            Some(Probe::NotTls)
        );
        // Application data of a capture begun after the handshake.
        assert_eq!(
            decide(&[data(c2s, &[0x17, 3, 3, 0, 40, 0xaa])], 6),
            Some(Probe::Tls)
        );
        // Bytes split over several events still decide.
        assert_eq!(
            decide(
                &[
                    data(c2s, &HELLO_START[..2]),
                    data(Direction::ServerToClient, b"x"),
                    data(c2s, &HELLO_START[2..])
                ],
                7
            ),
            Some(Probe::Tls)
        );
        // A server speaking first and long with a silent client: HTTP.
        assert_eq!(
            decide(&[data(Direction::ServerToClient, b"x")], MAX_HELD + 1),
            Some(Probe::NotTls)
        );
    }

    /// The stages behind the TCP tracker, one connection, events fed in order.
    fn stages() -> super::super::Stages {
        let mut s = super::super::Stages {
            config: super::super::PipelineConfig::default(),
            conns: HashMap::new(),
            with_exchanges: HashSet::new(),
            finished: Vec::new(),
            sink: None,
            sink_filter: None,
            tls: TlsRouter::default(),
        };
        let client = "10.0.0.5:50000".parse().unwrap_or_else(|_| unreachable!());
        let server = "10.0.0.1:443".parse().unwrap_or_else(|_| unreachable!());
        s.open(1, client, server, Timestamp(0));
        s
    }

    fn close(mut s: super::super::Stages) -> Connection {
        s.close(1, None);
        s.finished.pop().unwrap_or_else(|| unreachable!())
    }

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    #[test]
    fn a_hello_split_byte_by_byte_goes_to_tls_and_never_to_http() {
        let mut hello = vec![0x16, 3, 1, 0, 46, 1, 0, 0, 42];
        hello.resize(5 + 46, 0);
        let mut s = stages();
        // A server byte before the decision is held too.
        s.data(1, S2C, Timestamp(1), b"");
        for (i, b) in hello.iter().enumerate() {
            s.data(1, C2S, Timestamp(2 + i as i64), std::slice::from_ref(b));
        }
        s.data(1, S2C, Timestamp(100), b"HTTP/1.1 400 Bad Request\r\n\r\n");
        let c = close(s);
        assert!(c.tls.is_some());
        assert!(c.exchanges.is_empty());
        // The HTTP decoders never saw the hello (they would list it as not HTTP).
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        assert!(
            c.tls_problems()
                .any(|f| matches!(f, TlsFinding::TlsToPlainServer { .. })),
            "{:?}",
            c.tls_findings
        );
    }

    #[test]
    fn a_plain_request_split_before_the_decision_reaches_http_whole_and_in_order() {
        let mut s = stages();
        s.data(1, C2S, Timestamp(1), b"PO");
        s.data(
            1,
            C2S,
            Timestamp(2),
            b"ST /alarm HTTP/1.1\r\nContent-Length: 2\r\n\r\nok",
        );
        s.data(
            1,
            S2C,
            Timestamp(3),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        let c = close(s);
        assert!(c.tls.is_none() && c.tls_findings.is_empty());
        let v: Vec<_> = c
            .exchanges
            .iter()
            .map(|e| (e.request.method.as_str(), e.verdict))
            .collect();
        assert_eq!(v, [("POST", Verdict::Ok)]);
    }

    #[test]
    fn server_bytes_held_before_the_decision_are_kept_once() {
        let mut s = stages();
        s.data(1, S2C, Timestamp(1), &[0x15, 3, 1]);
        s.data(1, C2S, Timestamp(2), b"POST / HTTP/1.1\r\n\r\n");
        let answer = match s.tls.conns.get(&1).map(|r| &r.route) {
            Some(ConnRoute::Plain(a)) => a.prefix.clone(),
            _ => Vec::new(),
        };
        assert_eq!(answer, [0x15, 3, 1]);
    }

    #[test]
    fn a_server_speaking_alone_still_reaches_http() {
        let mut s = stages();
        s.data(
            1,
            S2C,
            Timestamp(1),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        );
        let c = close(s);
        // The HTTP stage saw the answer (it has no request to pair with).
        assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
        assert!(c.tls.is_none());
    }

    #[test]
    fn a_plain_request_answered_with_a_tls_alert_names_the_tls_server() {
        let mut s = stages();
        s.data(
            1,
            C2S,
            Timestamp(1),
            b"POST /alarm HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        );
        s.data(1, S2C, Timestamp(2), &[0x15, 3, 1, 0, 2, 2, 70]);
        let c = close(s);
        let f: Vec<_> = c.tls_problems().collect();
        assert!(
            matches!(
                f.as_slice(),
                [TlsFinding::PlainHttpToTlsServer {
                    evidence: crate::tls::TlsEvidence::Alert { .. },
                    ..
                }]
            ),
            "{f:?}"
        );
    }

    #[test]
    fn answer_prefix_is_kept_only_while_it_can_be_a_tls_server() {
        let mut a = Answer::default();
        a.data(Timestamp(0), b"HTTP/1.1 200 OK\r\n");
        assert!(a.ruled_out && a.prefix.is_empty());
        let mut a = Answer::default();
        a.data(Timestamp(0), b"HTTP/1.1 400 Bad Request\r\n");
        assert!(!a.ruled_out);
        let mut a = Answer::default();
        a.data(Timestamp(0), &[0x15, 3, 3, 0, 2, 2, 70, 0, 0, 0, 0, 0, 0]);
        assert!(!a.ruled_out);
        a.data(Timestamp(0), &[0u8; 1000]);
        assert_eq!(a.prefix.len(), ANSWER_PREFIX);
    }
}
