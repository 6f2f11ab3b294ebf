//! The list's rows, compact: per row only what the list, the filters, problem jumps, the devices
//! pane and the time line read (~120 bytes), with repeated strings (devices, paths, event types)
//! stored once in an [`Interner`].
//!
//! Why: a night's capture holds a million small pushes, and a whole [`Connection`] (headers,
//! metadata, event tree, packet time line) is ~15 KB. Keeping only these rows, the TUI's memory
//! no longer follows the capture; the full connection of a row is loaded when it is opened
//! (`App::connection`, from the capture file for a replay: `crate::reload`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use crate::filter::{contains_ci, Field, Row};
use crate::model::{Connection, Exchange, ExchangeNote, Verdict};
use crate::tcp::Handshake;
use crate::time::Timestamp;
use crate::tls::TlsFinding;

/// An interned string: an index into the [`Interner`] plus one; 0 is "none".
pub type Sym = u32;

/// Strings stored once, named by a [`Sym`].
///
/// Hand-written rather than a crate (`lasso`, `string-interner`): no such crate is in the tree,
/// and what is needed is a map and a vector (a few dozen lines).
#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<Rc<str>, Sym>,
    strs: Vec<Rc<str>>,
}

impl Interner {
    /// The symbol of `s`, storing it the first time.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let rc: Rc<str> = Rc::from(s);
        self.strs.push(rc.clone());
        let id = Sym::try_from(self.strs.len()).unwrap_or(Sym::MAX);
        self.ids.insert(rc, id);
        id
    }

    /// [`Interner::intern`], or 0 for none.
    pub fn intern_opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(0, |s| self.intern(s))
    }

    /// The string of a symbol (None for 0 or a symbol this interner did not give).
    pub fn get(&self, id: Sym) -> Option<&str> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.strs.get(i).map(|s| &**s)
    }

    /// Distinct strings stored.
    pub fn len(&self) -> usize {
        self.strs.len()
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.strs.is_empty()
    }
}

/// A row's string for the filter, with whether it contains the filter's free text when that was
/// worked out beforehand ([`RowStore::text_hits`]).
#[derive(Debug, Clone, Copy)]
pub struct Interned<'a> {
    s: &'a str,
    hit: Option<bool>,
}

impl Field for Interned<'_> {
    fn eq_ci(self, want: &str) -> bool {
        self.s.eq_ignore_ascii_case(want)
    }

    fn contains_text(self, needle: &str) -> bool {
        self.hit.unwrap_or_else(|| contains_ci(self.s, needle))
    }
}

/// Bits of [`CompactRow::flags`].
pub mod flag {
    /// Inferred from TLS records, without keys (`E`).
    pub const ENCRYPTED: u16 = 1;
    /// Decrypted with the key log (`D`).
    pub const DECRYPTED: u16 = 1 << 1;
    /// A failed exchange, or a failed TCP or TLS handshake.
    pub const PROBLEM: u16 = 1 << 2;
    /// A picture of the exchange is cut, corrupt or no JPEG (`P`).
    pub const PICTURE_PROBLEM: u16 = 1 << 3;
    /// A `duration` event.
    pub const DURATION: u16 = 1 << 4;
    /// An answer with a status was seen (`status` is valid).
    pub const RESPONSE: u16 = 1 << 5;
    /// `latency_ms` is valid.
    pub const LATENCY: u16 = 1 << 6;
    /// A connection row whose TLS handshake failed or met the other protocol (drawn as bad).
    pub const TLS_PROBLEM: u16 = 1 << 7;
    /// The connection spoke TLS.
    pub const TLS: u16 = 1 << 8;
    /// The request's body could not be read as an event (`(no event)`).
    pub const BODY_ERROR: u16 = 1 << 9;
    /// The connection has a decryption problem (`K` after `E` or `D`).
    pub const DECRYPTION_PROBLEM: u16 = 1 << 10;
}

/// One list row: an exchange, or a connection that carried no request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactRow {
    /// The connection's id in the analysis.
    pub conn_id: u64,
    /// The request's first byte, or the connection's first packet.
    pub time: Timestamp,
    /// The connection's first packet (export and reload find its frames from it).
    pub first_seen: Timestamp,
    /// Milliseconds from the first packet to the last, rounded up (see [`CompactRow::last_seen`]).
    pub span_ms: u32,
    /// Answer latency: the response's, or for an encrypted exchange the TLS records' (when
    /// [`flag::LATENCY`]).
    pub latency_ms: f32,
    /// Request body bytes (saturated).
    pub body_bytes: u32,
    /// The connection's packets (saturated; reload knows by them when it has read them all).
    pub packets: u32,
    /// Index into the connection's exchanges, or [`CompactRow::NO_REQUEST`].
    pub ex: u32,
    pub device: Sym,
    pub mac: Sym,
    pub method: Sym,
    pub path: Sym,
    /// The event column's text ("type plate", "type state").
    pub event: Sym,
    pub event_type: Sym,
    pub plate: Sym,
    /// The server's "ip:port".
    pub server: Sym,
    /// For a connection row: what the request column says instead of a request.
    pub note: Sym,
    /// The verdict column's word: an index into the store's labels ([`RowStore::label`]).
    pub label: u8,
    pub status: u16,
    pub client_port: u16,
    /// Body parts of the request (saturated).
    pub parts: u16,
    /// [`flag`] bits.
    pub flags: u16,
    pub verdict: Verdict,
    pub handshake: Handshake,
}

impl CompactRow {
    /// [`CompactRow::ex`] of a connection that carried no request.
    pub const NO_REQUEST: u32 = u32::MAX;

    /// The exchange's index, None for a connection row.
    pub fn exchange(&self) -> Option<usize> {
        (self.ex != Self::NO_REQUEST).then_some(self.ex as usize)
    }

    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    pub fn is_problem(&self) -> bool {
        self.has(flag::PROBLEM)
    }

    /// The answer's status code, if one was seen.
    pub fn status(&self) -> Option<u16> {
        self.has(flag::RESPONSE).then_some(self.status)
    }

    /// The latency the list shows, if any.
    pub fn latency(&self) -> Option<f64> {
        self.has(flag::LATENCY)
            .then_some(f64::from(self.latency_ms))
    }

    /// The response's latency (not the TLS records'): what the time line averages.
    pub fn response_latency(&self) -> Option<f64> {
        self.has(flag::RESPONSE)
            .then_some(f64::from(self.latency_ms))
    }

    /// The connection's last packet, at most a millisecond late (export and reload only look
    /// for its frames up to it, so later is safe, earlier would not be).
    pub fn last_seen(&self) -> Timestamp {
        Timestamp(
            self.first_seen
                .0
                .saturating_add(i64::from(self.span_ms).saturating_mul(1_000_000)),
        )
    }
}

/// Rows per chunk of the store.
const CHUNK: usize = 1 << 16;

/// Every row, in arrival order (a row's index never changes), and the strings they name.
///
/// The rows are kept in chunks of [`CHUNK`] rather than one vector: a vector that doubles
/// holds up to twice what it needs, and while it grows the old and new blocks both (three times
/// the rows at the peak); chunks waste at most one chunk.
#[derive(Debug, Default)]
pub struct RowStore {
    chunks: Vec<Vec<CompactRow>>,
    len: usize,
    strings: Interner,
    /// The verdict column's words met so far ([`CompactRow::label`] indexes them).
    labels: Vec<&'static str>,
}

impl RowStore {
    /// Rows stored.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: u32) -> Option<&CompactRow> {
        let i = i as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    /// Every row, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &CompactRow> {
        self.chunks.iter().flatten()
    }

    /// Forget every row (the strings stay: a rebuild names the same ones again).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    fn push(&mut self, r: CompactRow) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(r),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(r);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    /// The verdict column's word of a row.
    pub fn label(&self, r: &CompactRow) -> &'static str {
        self.labels
            .get(usize::from(r.label))
            .copied()
            .unwrap_or("?")
    }

    fn label_id(&mut self, l: &'static str) -> u8 {
        if let Some(i) = self.labels.iter().position(|k| *k == l) {
            return u8::try_from(i).unwrap_or(u8::MAX);
        }
        self.labels.push(l);
        u8::try_from(self.labels.len() - 1).unwrap_or(u8::MAX)
    }

    /// The string of a symbol, "" for none.
    pub fn str(&self, s: Sym) -> &str {
        self.strings.get(s).unwrap_or("")
    }

    /// The string of a symbol, None for none.
    pub fn opt(&self, s: Sym) -> Option<&str> {
        self.strings.get(s)
    }

    /// Distinct strings stored.
    pub fn strings(&self) -> usize {
        self.strings.len()
    }

    /// Add the rows of a connection: one per exchange, or one for the connection when it carried
    /// none. Returns the first new row's index and how many were added.
    pub fn push_connection(&mut self, c: &Connection) -> (u32, u32) {
        let first = u32::try_from(self.len).unwrap_or(u32::MAX);
        let client_port = c
            .client
            .parse::<SocketAddr>()
            .map_or(0, |a: SocketAddr| a.port());
        let device = self.strings.intern(c.device());
        let server = self.strings.intern(&c.server);
        let mut conn_flags = if c.tls.is_some() { flag::TLS } else { 0 };
        if c.decryption
            .as_ref()
            .is_some_and(|d| d.problems().next().is_some())
        {
            conn_flags |= flag::DECRYPTION_PROBLEM;
        }
        let base = CompactRow {
            conn_id: c.id,
            time: c.first_seen,
            first_seen: c.first_seen,
            span_ms: u32::try_from(
                u64::try_from(c.last_seen.0.saturating_sub(c.first_seen.0))
                    .unwrap_or(0)
                    .div_ceil(1_000_000),
            )
            .unwrap_or(u32::MAX),
            latency_ms: 0.0,
            body_bytes: 0,
            packets: u32::try_from(c.packets).unwrap_or(u32::MAX),
            ex: CompactRow::NO_REQUEST,
            device,
            mac: 0,
            method: 0,
            path: 0,
            event: 0,
            event_type: 0,
            plate: 0,
            server,
            note: 0,
            label: 0,
            status: 0,
            client_port,
            parts: 0,
            flags: conn_flags,
            verdict: Verdict::Ok,
            handshake: c.handshake,
        };
        if c.exchanges.is_empty() {
            let f = Row::of(c, None);
            let tls_problem = !c.handshake.failed() && c.tls_problems().next().is_some();
            let mut r = base;
            r.label = self.label_id(f.verdict_label);
            r.note = self.strings.intern(&no_request_text(c));
            if f.problem {
                r.flags |= flag::PROBLEM;
            }
            if tls_problem {
                r.flags |= flag::TLS_PROBLEM;
            }
            self.push(r);
            return (first, 1);
        }
        let mut n = 0u32;
        for (i, ex) in c.exchanges.iter().enumerate() {
            let Ok(i) = u32::try_from(i) else { break };
            if i == CompactRow::NO_REQUEST {
                break;
            }
            let r = self.exchange_row(&base, i, ex);
            self.push(r);
            n += 1;
        }
        (first, n)
    }

    fn exchange_row(&mut self, base: &CompactRow, i: u32, ex: &Exchange) -> CompactRow {
        let ev = ex.event.as_ref();
        let mut flags = base.flags;
        let mut set = |on: bool, f: u16| {
            if on {
                flags |= f;
            }
        };
        set(ex.encrypted.is_some(), flag::ENCRYPTED);
        set(ex.decrypted, flag::DECRYPTED);
        set(ex.verdict.is_problem(), flag::PROBLEM);
        set(has_picture_problem(ex), flag::PICTURE_PROBLEM);
        set(ev.is_some_and(|e| e.duration), flag::DURATION);
        set(ex.response.is_some(), flag::RESPONSE);
        set(ex.body_error.is_some(), flag::BODY_ERROR);
        let latency = match (&ex.response, ex.encrypted.as_ref().and_then(|e| e.response)) {
            (Some(resp), _) => Some(resp.latency_ms),
            (None, Some(tls)) => Some(tls.latency_ms),
            (None, None) => None,
        };
        set(latency.is_some(), flag::LATENCY);
        let text = event_text(ex);
        CompactRow {
            time: ex.request.time,
            latency_ms: latency.unwrap_or(0.0) as f32,
            body_bytes: u32::try_from(ex.request.body_bytes).unwrap_or(u32::MAX),
            ex: i,
            mac: self.strings.intern_opt(ev.and_then(|e| e.mac.as_deref())),
            method: self.strings.intern(&ex.request.method),
            path: self.strings.intern(&ex.request.path),
            event: if text.is_empty() {
                0
            } else {
                self.strings.intern(&text)
            },
            event_type: self
                .strings
                .intern_opt(ev.and_then(|e| e.event_type.as_deref())),
            plate: self.strings.intern_opt(ev.and_then(|e| e.plate.as_deref())),
            label: self.label_id(ex.verdict.as_str()),
            status: ex.response.as_ref().map_or(0, |r| r.status),
            parts: u16::try_from(ex.parts.len()).unwrap_or(u16::MAX),
            flags,
            verdict: ex.verdict,
            ..base.clone()
        }
    }

    /// What the filter looks at in a row: the same fields [`Row::of`] takes from a connection.
    /// `text` (from [`RowStore::text_hits`]) says for each string whether it contains the
    /// filter's free text, so that a filter over a million rows looks at each distinct string
    /// once.
    pub fn filter_row<'a>(&'a self, r: &CompactRow, text: &'a [bool]) -> Row<Interned<'a>> {
        let f = |s: Sym| Interned {
            s: self.str(s),
            hit: usize::try_from(s).ok().and_then(|i| text.get(i)).copied(),
        };
        let opt = |s: Sym| (s != 0).then(|| f(s));
        let request = r.exchange().is_some();
        Row {
            device: f(r.device),
            mac: opt(r.mac),
            path: request.then(|| f(r.path)),
            verdict_label: self.label(r),
            event_type: opt(r.event_type),
            duration: r.has(flag::DURATION),
            plate: opt(r.plate),
            status: r.status(),
            encrypted: r.has(flag::ENCRYPTED),
            time: r.time,
            problem: r.is_problem(),
        }
    }

    /// For each symbol (index = symbol; 0 unused), whether its string contains `needle` (lower
    /// case); empty for no needle.
    pub fn text_hits(&self, needle: &str) -> Vec<bool> {
        if needle.is_empty() {
            return Vec::new();
        }
        std::iter::once(false)
            .chain(self.strings.strs.iter().map(|s| contains_ci(s, needle)))
            .collect()
    }

    /// The client's address (device and port), if it reads as one.
    pub fn client(&self, r: &CompactRow) -> Option<SocketAddr> {
        let ip: IpAddr = self.str(r.device).parse().ok()?;
        Some(SocketAddr::new(ip, r.client_port))
    }

    /// The server's address, if it reads as one.
    pub fn server(&self, r: &CompactRow) -> Option<SocketAddr> {
        self.str(r.server).parse().ok()
    }
}

/// "type state", or "type plate" for plate events.
pub fn event_text(ex: &Exchange) -> String {
    match &ex.event {
        Some(e) => {
            let ty = match e.type_label() {
                l if l.is_empty() => "?".to_string(),
                l => l,
            };
            match (&e.plate, &e.event_state) {
                (Some(p), _) if !p.is_empty() => format!("{ty} {p}"),
                (_, Some(s)) => format!("{ty} {s}"),
                _ => ty.to_string(),
            }
        }
        None if ex.body_error.is_some() => "(no event)".into(),
        None => String::new(),
    }
}

/// What the request column says for a connection that carried no request.
pub fn no_request_text(c: &Connection) -> String {
    if !c.handshake.failed() {
        match c.tls_problems().next() {
            Some(TlsFinding::TlsToPlainServer { .. }) => {
                return "(HTTPS hello, the server speaks plain HTTP)".into()
            }
            Some(TlsFinding::HandshakeAlert {
                by, description, ..
            }) => {
                let who = match by {
                    crate::tcp::Side::Client => "device",
                    crate::tcp::Side::Server => "server",
                };
                return match description {
                    Some(d) => format!("(TLS handshake failed: {who} alert {d})"),
                    None => format!("(TLS handshake failed: {who} alert, encrypted)"),
                };
            }
            Some(TlsFinding::ClosedDuringHandshake { .. }) => {
                return "(TLS handshake not completed: closed)".into()
            }
            Some(TlsFinding::OnlyOldVersionsOffered { highest, .. }) => {
                return format!("(TLS: device offers up to {highest} only)")
            }
            _ if c.tls.is_some() => return "(TLS, no request)".into(),
            _ => {}
        }
    }
    match c.handshake {
        Handshake::Unanswered => format!("({} SYN, no answer)", c.syn_attempts),
        Handshake::Refused => "(SYN refused: RST)".into(),
        Handshake::SynAckNotAcked => "(SYN-ACK not acked by client)".into(),
        Handshake::ClientReset => "(client reset after SYN-ACK)".into(),
        // A connection stopped before any request says why (e.g. the listener's TLS problems).
        Handshake::Complete | Handshake::OneSided | Handshake::NotSeen => match c.errors.first() {
            Some(e) => format!("({e})"),
            None => "(no request)".into(),
        },
    }
}

/// A picture of the exchange is cut, corrupt or no JPEG (`isapi::picture`).
fn has_picture_problem(ex: &Exchange) -> bool {
    ex.notes
        .iter()
        .any(|n| matches!(n, ExchangeNote::Picture { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::RowFilter;
    use crate::tui::fixtures;

    #[test]
    fn interner_stores_each_string_once() {
        let mut i = Interner::default();
        let a = i.intern("10.0.0.5");
        let b = i.intern("/alarm");
        assert_eq!(i.intern("10.0.0.5"), a);
        assert_ne!(a, b);
        assert_eq!(i.len(), 2);
        assert_eq!(i.get(a), Some("10.0.0.5"));
        assert_eq!(i.get(b), Some("/alarm"));
        assert_eq!(i.get(0), None);
        assert_eq!(i.get(99), None);
        assert_eq!(i.intern_opt(None), 0);
    }

    /// Every fixture row, compacted, gives the filter what the whole connection gives, so every
    /// filter word selects the same rows from both.
    #[test]
    fn compact_rows_filter_as_their_connections() {
        let conns = fixtures::capture();
        let mut store = RowStore::default();
        let mut pairs = Vec::new();
        for c in &conns {
            let (first, n) = store.push_connection(c);
            for k in 0..n {
                let r = store.get(first + k).expect("row").clone();
                pairs.push((c, r));
            }
        }
        assert_eq!(pairs.len(), 7);
        let words = [
            "",
            "/alarm",
            "device:10.0.0.5",
            "device:44:19:b6:5a:3c:11",
            "type:vmd",
            "type:duration",
            "verdict:no_response,refused",
            "verdict:no_request",
            "503",
            "ab123",
            "unanswer",
            "https",
            "since:1709632810",
            "until:1709632812",
        ];
        for w in words {
            let mut f = RowFilter::parse_query(w).expect("words");
            for problems in [false, true] {
                f.problems = problems;
                let mut hits = 0;
                for (c, r) in &pairs {
                    let ex = r.exchange().and_then(|i| c.exchanges.get(i));
                    let want = f.matches(c, ex);
                    let known = store.text_hits(&f.text);
                    assert_eq!(
                        f.matches_row(&store.filter_row(r, &known)),
                        want,
                        "{w} {problems}"
                    );
                    assert_eq!(
                        f.matches_row(&store.filter_row(r, &[])),
                        want,
                        "{w} {problems}"
                    );
                    hits += usize::from(want);
                }
                if w == "device:10.0.0.5" {
                    assert_eq!(hits, if problems { 1 } else { 3 });
                }
            }
        }
        // Strings are shared: three devices' rows name 10.0.0.5, stored once.
        let fives = pairs
            .iter()
            .filter(|(_, r)| store.str(r.device) == "10.0.0.5")
            .count();
        assert_eq!(fives, 3);
        assert!(store.strings() < pairs.len() * 6);
    }

    #[test]
    fn rows_carry_what_the_list_shows() {
        let conns = fixtures::capture();
        let mut store = RowStore::default();
        for c in &conns {
            store.push_connection(c);
        }
        let anpr = (0..7)
            .filter_map(|i| store.get(i))
            .find(|r| r.conn_id == 4)
            .expect("conn 4");
        assert_eq!(anpr.status(), Some(503));
        assert_eq!(anpr.verdict, Verdict::ErrorStatus);
        assert!(anpr.is_problem());
        assert!(store.str(anpr.event).contains("AB123CD"));
        let syns = (0..7)
            .filter_map(|i| store.get(i))
            .find(|r| r.conn_id == 5)
            .expect("conn 5");
        assert_eq!(syns.exchange(), None);
        assert_eq!(store.label(syns), "unanswered");
        assert_eq!(store.str(syns.note), "(3 SYN, no answer)");
        assert_eq!(
            store.client(syns).map(|a| a.ip().to_string()),
            Some("10.0.0.9".to_string())
        );
        assert!(std::mem::size_of::<CompactRow>() <= 104);
    }
}
