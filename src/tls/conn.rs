//! The per-connection TLS analyser: record framing per direction, handshake reassembly, the
//! facts of [`TlsInfo`], findings and inferred exchanges.
//!
//! Rules, in short:
//! - each direction is cut into records by their 5-byte headers, whatever the TCP boundaries;
//!   a record is counted when its header is complete and never kept: only the bodies of
//!   cleartext handshake messages this stage reads (ClientHello, ServerHello, Certificate) are
//!   reassembled, each up to `TlsConfig::max_handshake_message`; larger ones are skipped with a
//!   finding, other messages are skipped unread;
//! - a header that is not a plausible record (type 20-24, version 3.0-3.4, length at most
//!   2^14 + 2048) at the start of a direction makes that direction non-TLS for good (the
//!   server's first bytes become a [`TlsFinding::TlsToPlainServer`] when the client began with
//!   a hello); later, and after a capture gap that does not fall inside a record's body, the
//!   stage scans for the next plausible header (at most `resync_window` bytes) and gives up
//!   cleanly after that;
//! - encryption starts per side at its ChangeCipherSpec (TLS <= 1.2) or after the ServerHello
//!   (TLS 1.3); alerts after that are listed as unreadable. In TLS 1.3 a 19-byte
//!   application-data record (2 bytes + content type + 16-byte AEAD tag) can only be an alert
//!   and is listed as an encrypted one;
//! - TLS 1.3 handshake phase: the server's encrypted records before the client's first
//!   encrypted record are its handshake flight; the client's first encrypted record is its
//!   Finished (a client sending a certificate would have more: a known limit). The server's
//!   first records after that Finished are taken as session tickets (NewSessionTicket) while
//!   they keep the size of the first one, at most [`MAX_TICKETS`] of them: servers send one to
//!   four tickets of one size right after the handshake, and they interleave with the request
//!   (seen with OpenSSL on loopback: ticket, request head, ticket, request body, answer). None
//!   of these counts as an exchange; an exchange during which records were taken as tickets is
//!   marked [`Uncertainty::MaySessionTickets`] (a lone answer of the tickets' size would be
//!   taken for one).
//!
//! Sans-IO: bytes, gaps and the close are fed in; nothing here reads a clock or a socket.

use serde::Serialize;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake};

use super::exchange::{ExchangeBuilder, TlsExchange, Uncertainty};
use super::finding::{HandshakeStage, NonTlsAnswer, TlsFinding};
use super::types::{
    sender, Alert, AlertDescription, AlertLevel, CertificateInfo, CertificateProblem,
    CertificateView, CipherSuite, ClientHelloInfo, HandshakeState, ProtocolVersion,
    ServerHelloInfo, TlsInfo,
};
use super::wire::{
    CT_ALERT, CT_APP_DATA, CT_CCS, CT_HANDSHAKE, CT_HEARTBEAT, HRR_RANDOM, HS_CERTIFICATE,
    HS_CLIENT_HELLO, HS_SERVER_HELLO,
};
use crate::tcp::{CloseKind, Direction, Side};
use crate::time::Timestamp;

/// Largest record body a header may announce (TLS 1.2 ciphertext: 2^14 + 2048).
pub const MAX_RECORD_LEN: u16 = 16384 + 2048;

/// A TLS 1.3 alert as an encrypted record: 2 bytes, the inner content type, a 16-byte tag.
const TLS13_ENCRYPTED_ALERT_LEN: u16 = 19;

/// Most server records taken as TLS 1.3 session tickets after the handshake.
pub const MAX_TICKETS: u64 = 4;

/// Bytes of a non-TLS answer kept to show in the finding.
const PREVIEW_LEN: usize = 48;

/// Limits of the TLS stage, per connection.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Largest handshake message reassembled (certificate chains can be large).
    pub max_handshake_message: usize,
    /// Alerts kept; further ones are counted in `TlsInfo::alerts_dropped`.
    pub max_alerts: usize,
    /// Findings kept; further ones are counted.
    pub max_findings: usize,
    /// Bytes scanned for a record header after a gap or garbage before giving up.
    pub resync_window: u64,
    /// Finished exchanges kept until taken with [`TlsConnection::take_exchanges`].
    pub max_exchanges_kept: usize,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            max_handshake_message: 64 << 10,
            max_alerts: 16,
            max_findings: 32,
            resync_window: 64 << 10,
            max_exchanges_kept: 1024,
        }
    }
}

/// Why a direction is looking for a record header.
#[derive(Debug, Clone, Copy)]
enum Lost {
    Gap { offset: u64, bytes: u64 },
    Garbage { offset: u64 },
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Reading record headers and bodies.
    Records,
    /// Scanning for a plausible header.
    Resync {
        why: Lost,
        since: Timestamp,
        skipped: u64,
    },
    /// Not TLS (from the start, or resync gave up): bytes are only counted.
    Off,
}

/// The record being read.
#[derive(Debug, Clone, Copy)]
struct Record {
    ctype: u8,
    left: u16,
    /// The body is a cleartext handshake fragment to reassemble.
    cleartext_handshake: bool,
    /// The body is a cleartext alert to read.
    cleartext_alert: bool,
    /// An application-data record that counts in exchanges.
    exchange: bool,
}

/// Reassembly of one direction's cleartext handshake messages.
#[derive(Debug, Default)]
struct Reassembly {
    buf: Vec<u8>,
    /// Bytes of a message being skipped (unread type, or over the limit).
    skip: u64,
    /// Stream offset of the message in `buf`.
    msg_offset: u64,
    /// Message framing lost (a gap inside a handshake record): ignore the rest.
    broken: bool,
}

#[derive(Debug)]
struct Half {
    mode: Mode,
    /// Stream offset of the next byte (gaps included).
    offset: u64,
    hdr: [u8; 5],
    hdr_len: usize,
    rec: Option<Record>,
    alert: [u8; 2],
    alert_len: usize,
    hs: Reassembly,
    /// This side sent ChangeCipherSpec (TLS <= 1.2): what it sends next is encrypted.
    ccs: bool,
    /// This side sent its Finished (as far as the records show).
    finished: bool,
    records: u64,
    /// First bytes of a direction that is not TLS (kept for the finding).
    preview: Vec<u8>,
}

impl Half {
    fn new() -> Self {
        Half {
            mode: Mode::Records,
            offset: 0,
            hdr: [0; 5],
            hdr_len: 0,
            rec: None,
            alert: [0; 2],
            alert_len: 0,
            hs: Reassembly::default(),
            ccs: false,
            finished: false,
            records: 0,
            preview: Vec::new(),
        }
    }
}

/// A plausible record header: known type, version 3.0-3.4, length within the limit (at least
/// 1 when `strict`, as used for resync).
pub(super) fn plausible(h: &[u8; 5], strict: bool) -> bool {
    let len = u16::from_be_bytes([h[3], h[4]]);
    (CT_CCS..=CT_HEARTBEAT).contains(&h[0])
        && h[1] == 3
        && h[2] <= 4
        && len <= MAX_RECORD_LEN
        && (!strict || (len > 0 && h[0] != CT_HEARTBEAT))
}

/// What a finished analysis hands on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsReport {
    pub info: TlsInfo,
    pub findings: Vec<TlsFinding>,
    pub findings_dropped: u64,
    /// Exchanges not taken before the end.
    pub exchanges: Vec<TlsExchange>,
    pub exchanges_dropped: u64,
}

/// The TLS analyser of one TCP connection. Feed it like the HTTP decoders: in-order bytes and
/// gaps per direction in capture order, then [`TlsConnection::close`].
#[derive(Debug)]
pub struct TlsConnection {
    config: TlsConfig,
    halves: [Half; 2],
    info: TlsInfo,
    findings: Vec<TlsFinding>,
    findings_dropped: u64,
    exchanges: ExchangeBuilder,
    /// The ServerHello chose TLS 1.3.
    tls13: bool,
    /// The client's first record was not a handshake record: the capture began mid-connection.
    midstream: bool,
    /// TLS 1.3: encrypted server records seen after its hello (its flight).
    server_flight: bool,
    /// TLS 1.3: server records taken as session tickets, and their size.
    tickets: u64,
    ticket_len: Option<u16>,
    /// TLS 1.3: a server record of another size came; no more tickets are expected.
    tickets_done: bool,
    /// The server's non-TLS answer is being collected (finding not written yet).
    answer_pending: Option<Timestamp>,
    /// A finding already explains why the handshake stopped.
    explained: bool,
    last_ts: Timestamp,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl TlsConnection {
    /// A new analyser, before any byte.
    pub fn new(config: TlsConfig) -> Self {
        let kept = config.max_exchanges_kept;
        TlsConnection {
            config,
            halves: [Half::new(), Half::new()],
            info: TlsInfo::default(),
            findings: Vec::new(),
            findings_dropped: 0,
            exchanges: ExchangeBuilder::new(kept),
            tls13: false,
            midstream: false,
            server_flight: false,
            tickets: 0,
            ticket_len: None,
            tickets_done: false,
            answer_pending: None,
            explained: false,
            last_ts: Timestamp::default(),
        }
    }

    /// The facts so far.
    pub fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// Findings so far.
    pub fn findings(&self) -> &[TlsFinding] {
        &self.findings
    }

    /// Exchanges finished since the last call (the one in progress stays).
    pub fn take_exchanges(&mut self) -> Vec<TlsExchange> {
        std::mem::take(&mut self.exchanges.done)
    }

    /// The exchange in progress (request seen, maybe part of the answer), for live views.
    pub fn current_exchange(&self) -> Option<&TlsExchange> {
        self.exchanges.current()
    }

    /// Bytes held (handshake reassembly and previews): at most about
    /// `2 * (max_handshake_message + 4 + PREVIEW_LEN)` plus the kept findings and exchanges.
    pub fn buffered_bytes(&self) -> usize {
        self.halves
            .iter()
            .map(|h| h.hs.buf.len() + h.preview.len())
            .sum()
    }

    fn finding(&mut self, f: TlsFinding) {
        if self.findings.len() < self.config.max_findings {
            self.findings.push(f);
        } else {
            self.findings_dropped += 1;
        }
    }

    /// In-order bytes of one direction; `ts` is the capture time of the segment that
    /// completed them.
    pub fn data(&mut self, dir: Direction, ts: Timestamp, mut data: &[u8]) {
        self.last_ts = ts;
        let d = idx(dir);
        while !data.is_empty() {
            match self.halves[d].mode {
                Mode::Off => {
                    self.off_bytes(dir, data);
                    return;
                }
                Mode::Resync { .. } => {
                    let used = self.resync(dir, ts, data);
                    data = &data[used..];
                }
                Mode::Records => {
                    let used = self.records(dir, ts, data);
                    data = &data[used..];
                }
            }
        }
    }

    /// Bytes of a non-TLS direction: counted, the start kept for the finding.
    fn off_bytes(&mut self, dir: Direction, data: &[u8]) {
        let h = &mut self.halves[idx(dir)];
        h.offset += data.len() as u64;
        *self.info.non_tls_bytes.get_mut(dir) += data.len() as u64;
        if self.answer_pending.is_some() && dir == Direction::ServerToClient {
            let room = PREVIEW_LEN.saturating_sub(h.preview.len());
            h.preview.extend_from_slice(&data[..room.min(data.len())]);
            if h.preview.len() >= PREVIEW_LEN {
                self.write_answer_finding();
            }
        }
    }

    /// Read headers and bodies; returns the bytes used.
    fn records(&mut self, dir: Direction, ts: Timestamp, data: &[u8]) -> usize {
        let d = idx(dir);
        let Some(mut rec) = self.halves[d].rec else {
            // Header.
            let h = &mut self.halves[d];
            let n = (5 - h.hdr_len).min(data.len());
            h.hdr[h.hdr_len..h.hdr_len + n].copy_from_slice(&data[..n]);
            h.hdr_len += n;
            h.offset += n as u64;
            if h.hdr_len == 5 {
                self.header(dir, ts);
            }
            return n;
        };
        // Body.
        let n = usize::from(rec.left).min(data.len());
        let body = &data[..n];
        let start = self.halves[d].offset;
        self.halves[d].offset += n as u64;
        rec.left -= n as u16;
        if rec.cleartext_handshake {
            self.handshake_bytes(dir, ts, start, body);
        } else if rec.cleartext_alert {
            let h = &mut self.halves[d];
            for &b in body {
                if h.alert_len < 2 {
                    h.alert[h.alert_len] = b;
                }
                h.alert_len += 1;
            }
        }
        if rec.exchange {
            self.exchanges
                .record_bytes(dir == Direction::ClientToServer, ts);
        }
        self.halves[d].rec = Some(rec);
        if rec.left == 0 {
            self.record_end(dir, ts, rec);
        }
        n
    }

    /// A complete header in `hdr`.
    fn header(&mut self, dir: Direction, ts: Timestamp) {
        let d = idx(dir);
        let hdr = self.halves[d].hdr;
        self.halves[d].hdr_len = 0;
        let header_offset = self.halves[d].offset - 5;
        if !plausible(&hdr, false) {
            self.not_a_record(dir, ts, hdr, header_offset);
            return;
        }
        let ctype = hdr[0];
        let len = u16::from_be_bytes([hdr[3], hdr[4]]);
        let first = self.halves[d].records == 0 && header_offset == 0;
        self.halves[d].records += 1;
        if first && dir == Direction::ClientToServer && ctype != CT_HANDSHAKE {
            self.midstream = true;
            self.info.handshake = HandshakeState::NotSeen;
        }
        let encrypting = self.encrypting(dir);
        let mut rec = Record {
            ctype,
            left: len,
            cleartext_handshake: false,
            cleartext_alert: false,
            exchange: false,
        };
        match ctype {
            CT_HANDSHAKE if encrypting => {
                // TLS <= 1.2 (TLS 1.3 never encrypts a type-22 record): the encrypted handshake
                // record after ChangeCipherSpec is Finished.
                self.halves[d].finished = true;
                self.check_completed();
            }
            CT_HANDSHAKE => rec.cleartext_handshake = true,
            CT_ALERT => {
                rec.cleartext_alert = !encrypting && len == 2;
                self.halves[d].alert_len = 0;
            }
            // TLS 1.3's ChangeCipherSpec is for middlebox compatibility only.
            CT_CCS if !self.tls13 => self.halves[d].ccs = true,
            CT_APP_DATA => {
                let stats = self.info.application_data.get_mut(dir);
                stats.records += 1;
                stats.bytes += u64::from(len);
                stats.first.get_or_insert(ts);
                stats.last = Some(ts);
                rec.exchange = self.app_record(dir, ts, len);
            }
            _ => {}
        }
        if len == 0 {
            self.halves[d].rec = None;
            self.record_end(dir, ts, rec);
        } else {
            self.halves[d].rec = Some(rec);
        }
    }

    /// True when what `dir`'s side sends now is encrypted.
    fn encrypting(&self, dir: Direction) -> bool {
        let h = &self.halves[idx(dir)];
        if self.tls13 {
            // After the ServerHello both sides encrypt; cleartext records still seen are
            // compatibility ChangeCipherSpec or alerts sent before the keys were ready.
            false
        } else {
            h.ccs
        }
    }

    /// An application-data record begins: place it in the handshake or in an exchange.
    /// Returns true when it counts in an exchange.
    fn app_record(&mut self, dir: Direction, ts: Timestamp, len: u16) -> bool {
        let client = dir == Direction::ClientToServer;
        if self.tls13 && len == TLS13_ENCRYPTED_ALERT_LEN {
            self.alert(dir, ts, None);
            return false;
        }
        if self.tls13 && !self.midstream {
            let client_finished = self.halves[0].finished;
            if client && !client_finished {
                self.halves[0].finished = true;
                self.check_completed();
                return false;
            }
            if !client && !client_finished {
                self.server_flight = true;
                self.halves[1].finished = true;
                self.check_completed();
                return false;
            }
            if !client && !self.tickets_done {
                if self.tickets < MAX_TICKETS && self.ticket_len.is_none_or(|l| l == len) {
                    self.tickets += 1;
                    self.ticket_len = Some(len);
                    self.exchanges.uncertain(Uncertainty::MaySessionTickets);
                    return false;
                }
                self.tickets_done = true;
            }
        }
        if client {
            self.exchanges.client_record(ts, u64::from(len));
            true
        } else {
            self.exchanges.server_record(ts, u64::from(len))
        }
    }

    /// The last byte of a record.
    fn record_end(&mut self, dir: Direction, ts: Timestamp, rec: Record) {
        let d = idx(dir);
        self.halves[d].rec = None;
        if rec.ctype == CT_ALERT {
            let h = &self.halves[d];
            let body = (rec.cleartext_alert && h.alert_len == 2).then_some(h.alert);
            self.alert(dir, ts, body);
        }
    }

    /// An alert record from `dir` (`body`: the two cleartext bytes, None when encrypted).
    fn alert(&mut self, dir: Direction, ts: Timestamp, body: Option<[u8; 2]>) {
        let by = sender(dir);
        let during = matches!(self.info.handshake, HandshakeState::InProgress);
        let (level, description) = match body {
            Some([l, dsc]) => (Some(AlertLevel(l)), Some(AlertDescription(dsc))),
            None => (None, None),
        };
        let a = Alert {
            by,
            time: ts,
            readable: body.is_some(),
            level,
            description,
            during_handshake: during,
        };
        if self.info.alerts.len() < self.config.max_alerts {
            self.info.alerts.push(a);
        } else {
            self.info.alerts_dropped += 1;
        }
        // Warnings (no_renegotiation, unrecognized_name as a warning) let the handshake go on;
        // a fatal alert, an encrypted one (TLS 1.3 sends only fatal alerts and close_notify
        // during the handshake) or a close_notify ends it.
        let ends = level != Some(AlertLevel::WARNING)
            || description == Some(AlertDescription::CLOSE_NOTIFY);
        if during && ends && !self.explained {
            self.explained = true;
            self.info.handshake = HandshakeState::Failed;
            self.finding(TlsFinding::HandshakeAlert {
                time: ts,
                by,
                level,
                description,
            });
        }
    }

    fn check_completed(&mut self) {
        if self.info.handshake != HandshakeState::InProgress {
            return;
        }
        let done = if self.tls13 {
            self.server_flight && self.halves[0].finished
        } else {
            self.halves[0].finished && self.halves[1].finished
        };
        if done {
            self.info.handshake = HandshakeState::Completed;
        }
    }

    /// A header that is not a record.
    fn not_a_record(&mut self, dir: Direction, ts: Timestamp, hdr: [u8; 5], offset: u64) {
        let d = idx(dir);
        if offset == 0 {
            // The direction is not TLS at all.
            self.halves[d].mode = Mode::Off;
            self.halves[d].offset = 0;
            let client_began_tls = self.info.client_hello.is_some() || self.halves[0].records > 0;
            if dir == Direction::ServerToClient && client_began_tls && !self.midstream {
                self.answer_pending = Some(ts);
                self.info.handshake = HandshakeState::Failed;
                self.explained = true;
            } else if dir == Direction::ClientToServer {
                self.finding(TlsFinding::NotTls {
                    time: ts,
                    dir,
                    offset: 0,
                    skipped: None,
                });
            }
            self.off_bytes(dir, &hdr);
            return;
        }
        // Later: scan for the next header, starting with the byte after this one.
        self.halves[d].mode = Mode::Resync {
            why: Lost::Garbage { offset },
            since: ts,
            skipped: 0,
        };
        self.halves[d].offset = offset;
        let _ = self.resync(dir, ts, &hdr);
    }

    /// Scan for a plausible header; returns the bytes used.
    fn resync(&mut self, dir: Direction, ts: Timestamp, data: &[u8]) -> usize {
        let d = idx(dir);
        let window = self.config.resync_window;
        let mut used = 0;
        for &b in data {
            used += 1;
            let h = &mut self.halves[d];
            h.offset += 1;
            h.hdr[h.hdr_len] = b;
            h.hdr_len += 1;
            if h.hdr_len < 5 {
                continue;
            }
            let Mode::Resync {
                why,
                since,
                skipped,
            } = h.mode
            else {
                return used;
            };
            if plausible(&h.hdr, true) {
                h.mode = Mode::Records;
                let f = self.resync_finding(dir, why, since, Some(skipped));
                self.finding(f);
                self.header(dir, ts);
                return used;
            }
            // Not here: drop the first byte and slide.
            h.hdr.copy_within(1..5, 0);
            h.hdr_len = 4;
            *self.info.non_tls_bytes.get_mut(dir) += 1;
            let skipped = skipped + 1;
            if skipped >= window {
                let h = &mut self.halves[d];
                h.mode = Mode::Off;
                let held = h.hdr_len as u64;
                h.hdr_len = 0;
                *self.info.non_tls_bytes.get_mut(dir) += held;
                let f = self.resync_finding(dir, why, since, None);
                self.finding(f);
                return used;
            }
            self.halves[d].mode = Mode::Resync {
                why,
                since,
                skipped,
            };
        }
        used
    }

    fn resync_finding(
        &self,
        dir: Direction,
        why: Lost,
        since: Timestamp,
        skipped: Option<u64>,
    ) -> TlsFinding {
        match why {
            Lost::Gap { offset, bytes } => TlsFinding::Gap {
                time: since,
                dir,
                offset,
                bytes,
                skipped,
            },
            Lost::Garbage { offset } => TlsFinding::NotTls {
                time: since,
                dir,
                offset,
                skipped,
            },
        }
    }

    /// `bytes` of one direction the capture never saw.
    pub fn gap(&mut self, dir: Direction, ts: Timestamp, bytes: u64) {
        self.last_ts = ts;
        let d = idx(dir);
        *self.info.gap_bytes.get_mut(dir) += bytes;
        self.exchanges.uncertain(Uncertainty::CaptureGap);
        let offset = self.halves[d].offset;
        match self.halves[d].mode {
            Mode::Off => {
                self.halves[d].offset += bytes;
                return;
            }
            Mode::Resync { .. } => {
                // Still looking: the gap only moves the offset (the partial window is stale).
                let h = &mut self.halves[d];
                h.offset += bytes;
                h.hdr_len = 0;
                return;
            }
            Mode::Records => {}
        }
        let h = &mut self.halves[d];
        h.offset += bytes;
        if let Some(mut rec) = h.rec {
            if u64::from(rec.left) >= bytes && !rec.cleartext_alert {
                // Inside one record's body: framing holds.
                rec.left -= bytes as u16;
                if rec.cleartext_handshake {
                    h.hs.broken = true;
                }
                h.rec = Some(rec);
                self.finding(TlsFinding::Gap {
                    time: ts,
                    dir,
                    offset,
                    bytes,
                    skipped: Some(0),
                });
                if rec.left == 0 {
                    self.record_end(dir, ts, rec);
                }
                return;
            }
            if rec.cleartext_handshake {
                h.hs.broken = true;
            }
        }
        // A handshake message cut by the gap cannot be framed again.
        if !h.hs.buf.is_empty() || h.hs.skip > 0 {
            h.hs.broken = true;
        }
        h.rec = None;
        h.hdr_len = 0;
        h.mode = Mode::Resync {
            why: Lost::Gap { offset, bytes },
            since: ts,
            skipped: 0,
        };
    }

    /// The connection is over (`how` from the TCP stage; `CloseKind::Open` when the capture
    /// ended or the connection was evicted).
    pub fn close(&mut self, ts: Timestamp, how: CloseKind) {
        self.last_ts = ts;
        let capture_ended = matches!(how, CloseKind::Open);
        self.exchanges.finish(capture_ended);
        if self.answer_pending.is_some() {
            self.write_answer_finding();
        }
        if let Mode::Resync {
            why,
            since,
            skipped: _,
        } = self.halves[0].mode
        {
            let f = self.resync_finding(Direction::ClientToServer, why, since, None);
            self.finding(f);
        }
        if let Mode::Resync { why, since, .. } = self.halves[1].mode {
            let f = self.resync_finding(Direction::ServerToClient, why, since, None);
            self.finding(f);
        }
        if self.info.handshake != HandshakeState::InProgress || self.explained {
            return;
        }
        let (by, reset) = match how {
            CloseKind::Fin(s) => (s, false),
            CloseKind::Rst(s) => (s, true),
            CloseKind::Open => return,
        };
        if self.info.client_hello.is_none() && self.halves[0].records == 0 {
            // Nothing TLS was said: not a TLS handshake to judge.
            return;
        }
        self.info.handshake = HandshakeState::Failed;
        self.explained = true;
        let server_silent = self.halves[1].offset == 0;
        if server_silent && by == Side::Server {
            self.finding(TlsFinding::TlsToPlainServer {
                time: ts,
                answer: NonTlsAnswer::Closed { reset },
            });
            return;
        }
        let stage = if self.info.server_hello.is_none() {
            HandshakeStage::ClientHello
        } else if !self.halves[0].finished {
            HandshakeStage::ServerHello
        } else {
            HandshakeStage::ClientFinished
        };
        self.finding(TlsFinding::ClosedDuringHandshake {
            time: ts,
            by,
            reset,
            stage,
        });
    }

    /// Close (if not yet) and hand on everything.
    pub fn finish(mut self) -> TlsReport {
        if self.answer_pending.is_some() {
            self.write_answer_finding();
        }
        self.exchanges.finish(true);
        TlsReport {
            info: self.info,
            findings: self.findings,
            findings_dropped: self.findings_dropped,
            exchanges: std::mem::take(&mut self.exchanges.done),
            exchanges_dropped: self.exchanges.dropped,
        }
    }

    fn write_answer_finding(&mut self) {
        let Some(ts) = self.answer_pending.take() else {
            return;
        };
        let preview = std::mem::take(&mut self.halves[1].preview);
        let answer = if preview.starts_with(b"HTTP/") {
            let status = preview
                .get(9..12)
                .and_then(|s| std::str::from_utf8(s).ok())
                .and_then(|s| s.parse::<u16>().ok());
            NonTlsAnswer::HttpResponse { status }
        } else {
            NonTlsAnswer::OtherBytes {
                preview: printable(&preview),
            }
        };
        self.finding(TlsFinding::TlsToPlainServer { time: ts, answer });
    }

    /// Cleartext handshake bytes of `dir` starting at stream offset `start`.
    fn handshake_bytes(&mut self, dir: Direction, ts: Timestamp, start: u64, mut body: &[u8]) {
        let d = idx(dir);
        let cap = self.config.max_handshake_message;
        let mut pos = start;
        loop {
            let hs = &mut self.halves[d].hs;
            // A message whose header is complete and whose body is empty needs no more bytes.
            let header_only = hs.buf.len() == 4 && hs.buf[1..4] == [0, 0, 0];
            if body.is_empty() && !header_only {
                return;
            }
            if hs.broken {
                return;
            }
            if hs.skip > 0 {
                let n = (hs.skip.min(body.len() as u64)) as usize;
                hs.skip -= n as u64;
                body = &body[n..];
                pos += n as u64;
                continue;
            }
            if hs.buf.is_empty() {
                hs.msg_offset = pos;
            }
            if hs.buf.len() < 4 {
                let n = (4 - hs.buf.len()).min(body.len());
                hs.buf.extend_from_slice(&body[..n]);
                body = &body[n..];
                pos += n as u64;
                if hs.buf.len() < 4 {
                    continue;
                }
                let msg_type = hs.buf[0];
                let len = u32::from_be_bytes([0, hs.buf[1], hs.buf[2], hs.buf[3]]);
                let wanted = matches!(msg_type, HS_CLIENT_HELLO | HS_SERVER_HELLO | HS_CERTIFICATE);
                if !wanted || len as usize > cap {
                    let offset = hs.msg_offset;
                    hs.buf.clear();
                    hs.skip = u64::from(len);
                    if wanted {
                        self.finding(TlsFinding::HandshakeMessageTooLarge {
                            time: ts,
                            dir,
                            offset,
                            msg_type,
                            len,
                        });
                        if msg_type == HS_CERTIFICATE {
                            self.info.certificate = CertificateView::Unreadable {
                                reason: CertificateProblem::TooLarge,
                            };
                        }
                    }
                    continue;
                }
            }
            let hs = &mut self.halves[d].hs;
            let len = u32::from_be_bytes([0, hs.buf[1], hs.buf[2], hs.buf[3]]) as usize;
            let need = 4 + len - hs.buf.len();
            let n = need.min(body.len());
            hs.buf.extend_from_slice(&body[..n]);
            body = &body[n..];
            pos += n as u64;
            if hs.buf.len() == 4 + len {
                let msg = std::mem::take(&mut hs.buf);
                let offset = hs.msg_offset;
                self.handshake_message(dir, ts, offset, &msg);
                // Keep the allocation for the next message.
                let mut msg = msg;
                msg.clear();
                self.halves[d].hs.buf = msg;
            }
        }
    }

    /// One whole cleartext handshake message (header included).
    fn handshake_message(&mut self, dir: Direction, ts: Timestamp, offset: u64, msg: &[u8]) {
        let msg_type = msg.first().copied().unwrap_or(0);
        let parsed = tls_parser::parse_tls_message_handshake(msg);
        let hs = match parsed {
            Ok((_, TlsMessage::Handshake(hs))) => hs,
            _ => {
                if msg_type == HS_CERTIFICATE {
                    self.info.certificate = CertificateView::Unreadable {
                        reason: CertificateProblem::Malformed,
                    };
                }
                self.finding(TlsFinding::MalformedHandshake {
                    time: ts,
                    dir,
                    offset,
                    msg_type,
                });
                return;
            }
        };
        match (dir, hs) {
            (Direction::ClientToServer, TlsMessageHandshake::ClientHello(ch)) => {
                if self.info.client_hello.is_some() {
                    return; // the second hello after a HelloRetryRequest says the same
                }
                let mut info = ClientHelloInfo {
                    time: ts,
                    legacy_version: Some(ProtocolVersion(ch.version.0)),
                    cipher_suites: ch
                        .ciphers
                        .iter()
                        .map(|c| CipherSuite(c.0))
                        .filter(|c| !ProtocolVersion(c.0).is_grease())
                        .collect(),
                    ..Default::default()
                };
                if let Some(ext) = ch.ext {
                    if let Ok((_, exts)) = tls_parser::parse_tls_client_hello_extensions(ext) {
                        for e in exts {
                            match e {
                                TlsExtension::SNI(names) => {
                                    info.sni = names
                                        .first()
                                        .map(|(_, n)| String::from_utf8_lossy(n).into_owned());
                                }
                                TlsExtension::ALPN(ps) => {
                                    info.alpn = ps
                                        .iter()
                                        .map(|p| String::from_utf8_lossy(p).into_owned())
                                        .collect();
                                }
                                TlsExtension::SupportedVersions(vs) => {
                                    info.supported_versions = vs
                                        .iter()
                                        .map(|v| ProtocolVersion(v.0))
                                        .filter(|v| !v.is_grease())
                                        .collect();
                                }
                                _ => {}
                            }
                        }
                    }
                }
                if let Some(highest) = info.highest_version() {
                    if highest < ProtocolVersion::TLS12 {
                        self.finding(TlsFinding::OnlyOldVersionsOffered { time: ts, highest });
                    }
                }
                self.info.client_hello = Some(info);
            }
            (Direction::ServerToClient, TlsMessageHandshake::ServerHello(sh)) => {
                let hrr = sh.random == HRR_RANDOM;
                let mut info = ServerHelloInfo {
                    time: ts,
                    version: Some(ProtocolVersion(sh.version.0)),
                    cipher_suite: Some(CipherSuite(sh.cipher.0)),
                    alpn: None,
                    hello_retry_request: hrr,
                };
                if let Some(ext) = sh.ext {
                    if let Ok((_, exts)) = tls_parser::parse_tls_server_hello_extensions(ext) {
                        for e in exts {
                            match e {
                                TlsExtension::SupportedVersions(vs) => {
                                    if let Some(v) = vs.first() {
                                        info.version = Some(ProtocolVersion(v.0));
                                    }
                                }
                                TlsExtension::ALPN(ps) => {
                                    info.alpn =
                                        ps.first().map(|p| String::from_utf8_lossy(p).into_owned());
                                }
                                _ => {}
                            }
                        }
                    }
                }
                if hrr {
                    // The real ServerHello follows; remember only that a retry was asked.
                    if self.info.server_hello.is_none() {
                        self.info.server_hello = Some(info);
                    }
                    return;
                }
                if let Some(prev) = &self.info.server_hello {
                    info.hello_retry_request |= prev.hello_retry_request;
                }
                self.tls13 = info.version == Some(ProtocolVersion::TLS13);
                if self.tls13 {
                    self.info.certificate = CertificateView::Encrypted;
                }
                self.info.server_hello = Some(info);
            }
            (Direction::ServerToClient, TlsMessageHandshake::Certificate(c)) => {
                self.info.certificate = certificate_view(&c.cert_chain, ts);
            }
            _ => {}
        }
    }
}

/// The server's leaf certificate, read with x509-parser.
fn certificate_view(chain: &[tls_parser::RawCertificate<'_>], ts: Timestamp) -> CertificateView {
    let Some(leaf) = chain.first() else {
        return CertificateView::Unreadable {
            reason: CertificateProblem::Empty,
        };
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.data) else {
        return CertificateView::Unreadable {
            reason: CertificateProblem::Malformed,
        };
    };
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    let secs = ts.0.div_euclid(1_000_000_000);
    let same_name = cert.subject().as_raw() == cert.issuer().as_raw();
    let self_signed = same_name && cert.verify_signature(None).is_ok();
    let text = |s: i64| Timestamp(s.saturating_mul(1_000_000_000)).to_utc_string();
    CertificateView::Readable(CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: text(nb),
        not_after: text(na),
        self_signed,
        valid_at_capture: nb <= secs && secs <= na,
        chain_length: chain.len(),
    })
}

/// Printable ASCII of `b`, other bytes as '.'.
fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}
