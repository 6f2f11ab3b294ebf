//! The analysis results: what the pipeline produces, the diagnosis fills in, and the JSON report,
//! the text report and the TUI all show. Field names here are the documented JSON schema
//! (docs/json-schema.md); change them only together with that document.

use serde::Serialize;

use crate::http::{FramingError, HttpErrorKind};
use crate::isapi::{EventInfo, PartInfo};
use crate::tcp::{AckLog, CloseKind, Handshake, OneSided, PacketNote, Side};
use crate::time::Timestamp;

/// The verdict on one request/response exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The final response was 200 OK.
    Ok,
    /// A final response came, but not 200.
    ErrorStatus,
    /// The request was complete but no final response came before the connection or capture ended.
    NoResponse,
    /// The request never finished (reset, closed or capture ended mid-body, or unframeable).
    Incomplete,
    /// Uncertain: server bytes that could hold the answer are missing from the capture (a gap, the
    /// capture began mid-answer, or the kernel dropped packets while sniffing) and no answer was
    /// seen after them. Not `no_response`: the
    /// answer may well have come.
    NotCaptured,
    /// The server answered, but its status line or header block could not be read (e.g.
    /// `HTTP/1.0 2XX OK`); a device cannot read it either.
    MalformedResponse,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Ok,
        Verdict::ErrorStatus,
        Verdict::NoResponse,
        Verdict::Incomplete,
        Verdict::NotCaptured,
        Verdict::MalformedResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::ErrorStatus => "error_status",
            Verdict::NoResponse => "no_response",
            Verdict::Incomplete => "incomplete",
            Verdict::NotCaptured => "not_captured",
            Verdict::MalformedResponse => "malformed_response",
        }
    }

    /// True for every verdict but `ok`.
    pub fn is_problem(self) -> bool {
        self != Verdict::Ok
    }

    /// True when the capture cannot tell what happened (`not_captured`): shown, but neither a
    /// failure nor the start of a stall.
    pub fn is_uncertain(self) -> bool {
        self == Verdict::NotCaptured
    }
}

/// Packets the kernel dropped during a live capture (libpcap's counter), placed in time as well
/// as the capture can: somewhere in `[from, to]`. A verdict those packets could have changed (an
/// answer or a SYN-ACK among them) is made uncertain with this as its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KernelDrops {
    /// Packets dropped in the window (the counter's increase).
    pub dropped: u64,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// Something the pipeline found about one exchange besides its verdict, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeNote {
    /// The request's head was read but its body length cannot be known (conflicting or invalid
    /// Content-Length, ...). The request was sent all the same, so the answer pairs with it.
    RequestFraming {
        /// Offset of the request's head in the client's stream.
        offset: u64,
        error: FramingError,
    },
    /// Server bytes were lost after this request was sent (a capture gap, or the capture began
    /// mid-answer); its answer may be among them.
    AnswerNotCaptured {
        /// Capture time of the first server packet after the lost bytes.
        at: Timestamp,
    },
    /// The answer's start line or header block could not be read.
    MalformedResponse {
        /// Offset of the answer in the server's stream.
        offset: u64,
        error: HttpErrorKind,
        /// Capture time of the packet that carried it.
        at: Timestamp,
    },
    /// Live capture: the kernel dropped packets while this request waited for its answer, so the
    /// answer may have been among them (verdict `not_captured` instead of `no_response`).
    KernelDrops(KernelDrops),
}

impl ExchangeNote {
    /// The note's kind as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ExchangeNote::RequestFraming { .. } => "request_framing",
            ExchangeNote::AnswerNotCaptured { .. } => "answer_not_captured",
            ExchangeNote::MalformedResponse { .. } => "malformed_response",
            ExchangeNote::KernelDrops(_) => "kernel_drops",
        }
    }
}

impl std::fmt::Display for ExchangeNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeNote::RequestFraming { offset, error } => write!(
                f,
                "request at byte {offset} of the client's stream: {error}; its body length is unknown"
            ),
            ExchangeNote::AnswerNotCaptured { at } => write!(
                f,
                "server bytes that may hold the answer are missing from the capture (before {})",
                at.to_utc_string()
            ),
            ExchangeNote::MalformedResponse { offset, error, .. } => write!(
                f,
                "answer at byte {offset} of the server's stream is unreadable: {error}"
            ),
            ExchangeNote::KernelDrops(d) => write!(f, "{d}; the answer may be among them"),
        }
    }
}

/// JSON: `{"kind": ..., "text": ...}` plus the note's located fields.
impl Serialize for ExchangeNote {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("kind", self.kind())?;
        match self {
            ExchangeNote::RequestFraming { offset, error } => {
                m.serialize_entry("offset", offset)?;
                m.serialize_entry("error", error)?;
            }
            ExchangeNote::AnswerNotCaptured { at } => m.serialize_entry("at", at)?,
            ExchangeNote::MalformedResponse { offset, at, .. } => {
                m.serialize_entry("offset", offset)?;
                m.serialize_entry("at", at)?;
            }
            ExchangeNote::KernelDrops(d) => {
                m.serialize_entry("dropped", &d.dropped)?;
                m.serialize_entry("from", &d.from)?;
                m.serialize_entry("to", &d.to)?;
            }
        }
        m.serialize_entry("text", &self.to_string())?;
        m.end()
    }
}

impl std::fmt::Display for KernelDrops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the kernel dropped {} packet(s) between {} and {}",
            self.dropped,
            self.from.to_clock_string(),
            self.to.to_clock_string()
        )
    }
}

/// The request side of an exchange.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Request {
    /// Capture time of the first byte of the request.
    pub time: Timestamp,
    /// Capture time of the last byte seen (end of body when complete).
    pub end_time: Timestamp,
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    /// Decoded body bytes (chunk framing removed; missing bytes included).
    pub body_bytes: u64,
    /// Content-Length header value, when there is one.
    pub content_length: Option<u64>,
    /// True when head and body were seen to their end.
    pub complete: bool,
    /// Body bytes the capture never saw.
    pub missing_bytes: u64,
    /// Why the request could not be framed, if so (located: stream byte offset).
    pub error: Option<String>,
    pub headers: Vec<(String, String)>,
}

/// The final response to a request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Response {
    /// Capture time of the first byte of the final response.
    pub time: Timestamp,
    pub status: u16,
    pub reason: String,
    /// First response byte minus last request byte, in milliseconds.
    pub latency_ms: f64,
    pub headers: Vec<(String, String)>,
    /// Interim (1xx) statuses that came before it.
    pub interim: Vec<u16>,
    pub body_bytes: u64,
}

/// The event fields as the JSON report shows them (the full tree stays in [`Exchange::event_detail`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventSummary {
    pub format: &'static str,
    pub event_type: Option<String>,
    pub event_state: Option<String>,
    pub device_ip: Option<String>,
    pub mac: Option<String>,
    pub channel: Option<String>,
    pub date_time: Option<String>,
    pub description: Option<String>,
    pub plate: Option<String>,
}

impl From<&EventInfo> for EventSummary {
    fn from(e: &EventInfo) -> Self {
        EventSummary {
            format: e.format,
            event_type: e.event_type.clone(),
            event_state: e.event_state.clone(),
            device_ip: e.device_ip.clone(),
            mac: e.mac.clone(),
            channel: e.channel.clone(),
            date_time: e.date_time.clone(),
            description: e.description.clone(),
            plate: e.plate.clone(),
        }
    }
}

/// A reference to an exchange: which connection, which request on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ExchangeRef {
    pub connection: u64,
    pub index: usize,
}

/// What a listener that requires credentials (`listen --auth`) found in a request's
/// `Authorization` header. Anything but `Accepted` is answered 401 and not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthCheck {
    /// Valid credentials of the required scheme.
    Accepted,
    /// No `Authorization` header: the slot's `httpAuthenticationMethod` is `none`, or this is
    /// the first request of a digest exchange.
    Missing,
    /// Credentials of another scheme (Basic where Digest is required, or the reverse).
    WrongScheme,
    /// The required scheme with a wrong user name or password.
    WrongCredentials,
    /// A digest answer to a nonce this listener did not issue or no longer keeps (it was
    /// restarted, or the device reuses an old nonce).
    StaleNonce,
    /// An `Authorization` header that cannot be read (bad base64, missing digest fields, a digest
    /// `uri` other than the request's).
    Malformed,
}

impl std::fmt::Display for AuthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthCheck::Accepted => "credentials accepted",
            AuthCheck::Missing => "no credentials sent",
            AuthCheck::WrongScheme => "credentials of the wrong scheme",
            AuthCheck::WrongCredentials => "wrong user name or password",
            AuthCheck::StaleNonce => "digest nonce not issued by this listener",
            AuthCheck::Malformed => "unreadable Authorization header",
        })
    }
}

/// One request and its response (if any), with what the diagnosis says of it.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Position of this exchange on its connection, from 0.
    pub index: usize,
    pub request: Request,
    pub response: Option<Response>,
    pub verdict: Verdict,
    pub event: Option<EventSummary>,
    pub parts: Vec<PartInfo>,
    /// Set by the listener when it failed this exchange on purpose (fault injection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected_fault: Option<String>,
    /// Body kind: "xml", "json", "multipart", "empty" or "other".
    pub body_kind: &'static str,
    /// Why the body held no event, when it did not.
    pub body_error: Option<String>,
    /// What the listener's credential check found (`listen --auth`; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthCheck>,
    /// What else the pipeline found about this exchange (framing trouble, lost or unreadable
    /// answer); absent from JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<ExchangeNote>,
    /// Earlier exchange whose body this one repeats while it was unanswered.
    ///
    /// Kept the last serialised field: the streaming JSON writer (`report::stream`) writes each
    /// exchange before retries are known and fills this value in at the end.
    pub retry_of: Option<ExchangeRef>,
    /// Hash of the body bytes (retry detection).
    #[serde(skip)]
    pub body_hash: u64,
    /// The metadata text, bounded (for the detail pane; not in JSON).
    #[serde(skip)]
    pub metadata: Option<String>,
    /// The decoded event with its tree (for the detail pane; not in JSON).
    #[serde(skip)]
    pub event_detail: Option<Box<EventInfo>>,
}

impl Exchange {
    /// A request just begun: nothing answered, decoded or judged yet (incomplete until its body
    /// ends). The one starting state for the capture pipeline and the listener.
    pub fn started(index: usize, request: Request) -> Exchange {
        Exchange {
            index,
            request,
            response: None,
            verdict: Verdict::Incomplete,
            event: None,
            parts: Vec::new(),
            retry_of: None,
            injected_fault: None,
            auth: None,
            body_kind: "empty",
            body_error: None,
            notes: Vec::new(),
            body_hash: 0,
            metadata: None,
            event_detail: None,
        }
    }
}

/// One TCP connection and the exchanges it carried.
#[derive(Debug, Clone, Serialize)]
pub struct Connection {
    pub id: u64,
    /// "ip:port", IPv6 as "\[addr\]:port".
    pub client: String,
    pub server: String,
    pub handshake: Handshake,
    /// Set when the capture holds only one side's packets: which side, and what its ACKs prove
    /// of the other side (response bytes acknowledged, requests whose answer they prove).
    pub one_sided: Option<OneSided>,
    pub syn_attempts: u32,
    pub closed: CloseKind,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub packets: u64,
    /// Capture-gap bytes [client->server, server->client].
    pub gap_bytes: [u64; 2],
    pub retransmissions: u64,
    pub truncated_frames: u64,
    /// HTTP framing problems on this connection, located.
    pub errors: Vec<String>,
    /// The protocol the connection switched to with `101 Switching Protocols` (the answer's
    /// Upgrade header, e.g. "websocket"); absent from JSON when there was no switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<String>,
    /// Bytes after a protocol switch or CONNECT tunnel [client->server, server->client]: counted,
    /// never parsed as HTTP. Absent from JSON when both are 0.
    #[serde(skip_serializing_if = "is_zero_pair")]
    pub upgraded_bytes: [u64; 2],
    pub exchanges: Vec<Exchange>,
    /// Live capture: the handshake failed (unanswered SYN, SYN-ACK not acknowledged) while the
    /// kernel dropped packets, so the missing packet may have been dropped: the failure is
    /// uncertain, counted in `handshake_uncertain`, not `handshake_failures`. Absent from JSON
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_uncertain: Option<KernelDrops>,
    /// First packets, for the handshake view (not in JSON: large).
    #[serde(skip)]
    pub timeline: Vec<PacketNote>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_pair(v: &[u64; 2]) -> bool {
    *v == [0, 0]
}

impl Connection {
    /// The client's IP without the port: the device, in HTTP listening mode.
    pub fn device(&self) -> &str {
        host_of(&self.client)
    }

    /// One-sided capture (client side only): a request judged `no_response` whose answer the
    /// client's ACKs prove becomes `not_captured`, and the proof is kept in
    /// [`OneSided::answers_acked`]. Call after the final verdicts are set.
    ///
    /// Why here and not in the verdict function: the proof is per connection (the ACK log and
    /// the next request's start), not per exchange.
    pub fn settle_one_sided(&mut self, acks: &AckLog) {
        let Some(os) = self.one_sided.as_mut() else {
            return;
        };
        if os.captured != Side::Client {
            return;
        }
        let exchanges = &self.exchanges;
        let unanswered = exchanges
            .iter()
            .enumerate()
            .filter(|(_, ex)| ex.verdict == Verdict::NoResponse)
            .map(|(i, ex)| {
                let next = exchanges.get(i + 1).map(|n| n.request.time);
                (ex.index, ex.request.end_time, next)
            });
        os.answers_acked = acks.answers(unanswered);
        for a in &os.answers_acked {
            if let Some(ex) = self.exchanges.iter_mut().find(|e| e.index == a.index) {
                ex.verdict = Verdict::NotCaptured;
            }
        }
    }

    /// Response bytes the client acknowledged after exchange `index`, when a one-sided capture
    /// proves its answer that way.
    pub fn answer_bytes_acked(&self, index: usize) -> Option<u64> {
        let os = self.one_sided.as_ref()?;
        os.answers_acked
            .iter()
            .find(|a| a.index == index)
            .map(|a| a.bytes)
    }
}

/// "1.2.3.4:80" -> "1.2.3.4", "\[::1\]:80" -> "::1".
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr)
}

/// A period in which a device's events were held up: from a request that got no 200 OK to the
/// device's next request (or the end of the capture).
#[derive(Debug, Clone, Serialize)]
pub struct Stall {
    pub device: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub seconds: f64,
    /// Verdict of the request that started it (and its status when there was one), e.g.
    /// "no_response" or "error_status 503".
    pub cause: String,
    /// The exchange that started it.
    pub exchange: ExchangeRef,
    /// True when the capture ended before the device sent again.
    pub open_ended: bool,
}

/// Per-device summary (device = client IP).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Device {
    pub device: String,
    /// MAC address from the event bodies, when they carry one.
    pub mac: Option<String>,
    pub connections: u64,
    pub events: u64,
    pub ok: u64,
    pub failures: u64,
    pub handshake_failures: u64,
    pub stalls: u64,
    pub stalled_seconds: f64,
    pub retries: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Event types seen, with counts, most frequent first.
    pub event_types: Vec<(String, u64)>,
}

/// Counts over the whole capture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub packets: u64,
    pub tcp_packets: u64,
    pub non_tcp_packets: u64,
    pub undecodable_frames: u64,
    pub truncated_frames: u64,
    pub connections: u64,
    pub requests: u64,
    pub ok: u64,
    pub error_status: u64,
    pub no_response: u64,
    pub incomplete: u64,
    /// Requests whose answer may be in bytes the capture lost (`not_captured`).
    pub not_captured: u64,
    /// Requests answered with an unreadable status line or head (`malformed_response`).
    pub malformed_response: u64,
    pub handshake_failures: u64,
    pub handshake_unanswered: u64,
    pub handshake_refused: u64,
    /// SYN-ACK seen, never acknowledged by the client.
    pub handshake_syn_ack_not_acked: u64,
    /// SYN-ACK seen, answered by the client with RST.
    pub handshake_client_reset: u64,
    /// Connections whose capture holds one side's packets only.
    pub one_sided_connections: u64,
    /// Live capture: failed handshakes that kernel drops could explain (see
    /// [`Connection::handshake_uncertain`]); not in `handshake_failures`. Absent from JSON when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub handshake_uncertain: u64,
    pub stalls: u64,
    pub stalled_seconds: f64,
    pub retries: u64,
    pub capture_gap_bytes: u64,
    pub first_packet: Option<Timestamp>,
    pub last_packet: Option<Timestamp>,
    /// Connections closed early because the connection table was full (default limit 100 000,
    /// least recently active first): their last requests may be judged on partial data.
    pub connections_evicted: u64,
    /// Connections closed after being idle for the idle timeout (live capture only).
    pub connections_expired: u64,
    /// Most connections tracked at once.
    pub peak_open_connections: u64,
    /// Frames found inside each tunnel or encapsulation (GRE, ERSPAN, VXLAN, GENEVE, MPLS,
    /// IP-in-IP, LLC/SNAP): a capture from a mirror port or an overlay says so here.
    pub encapsulations: crate::capture::EncapCounts,
}

impl Summary {
    pub fn verdict_count(&self, v: Verdict) -> u64 {
        match v {
            Verdict::Ok => self.ok,
            Verdict::ErrorStatus => self.error_status,
            Verdict::NoResponse => self.no_response,
            Verdict::Incomplete => self.incomplete,
            Verdict::NotCaptured => self.not_captured,
            Verdict::MalformedResponse => self.malformed_response,
        }
    }

    /// Count one request's verdict.
    pub fn count_verdict(&mut self, v: Verdict) {
        let n = match v {
            Verdict::Ok => &mut self.ok,
            Verdict::ErrorStatus => &mut self.error_status,
            Verdict::NoResponse => &mut self.no_response,
            Verdict::Incomplete => &mut self.incomplete,
            Verdict::NotCaptured => &mut self.not_captured,
            Verdict::MalformedResponse => &mut self.malformed_response,
        };
        *n += 1;
    }

    /// Count one finished connection's handshake (and whether it was one-sided). One place for
    /// the replay diagnosis and the live one.
    pub fn count_handshake(&mut self, c: &Connection) {
        if c.one_sided.is_some() {
            self.one_sided_connections += 1;
        }
        if !c.handshake.failed() {
            return;
        }
        if c.handshake_uncertain.is_some() {
            self.handshake_uncertain += 1;
            return;
        }
        self.handshake_failures += 1;
        match c.handshake {
            Handshake::Unanswered => self.handshake_unanswered += 1,
            Handshake::Refused => self.handshake_refused += 1,
            Handshake::SynAckNotAcked => self.handshake_syn_ack_not_acked += 1,
            Handshake::ClientReset => self.handshake_client_reset += 1,
            Handshake::Complete | Handshake::OneSided | Handshake::NotSeen => {}
        }
    }
}

/// The whole analysis of a capture (or of a live session so far).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// File path, interface or listen address.
    pub source: String,
    pub connections: Vec<Connection>,
    pub stalls: Vec<Stall>,
    pub devices: Vec<Device>,
    pub summary: Summary,
    /// Located problems with the input (unreadable frames, a file ending mid-record, ...), bounded.
    pub warnings: Vec<String>,
}
