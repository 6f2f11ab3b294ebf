//! The analysis results: what the pipeline produces, the diagnosis fills in, and the JSON report,
//! the text report and the TUI all show. Field names here are the documented JSON schema
//! (docs/json-schema.md); change them only together with that document.

use serde::Serialize;

use crate::http::{FramingError, HttpError, HttpErrorKind};
use crate::isapi::picture::PictureProblem;
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
    /// Inside TLS (no keys): the device's request records were followed by server records, so
    /// an answer came, but its status cannot be read. Never `ok`: a 400 looks the same.
    EncryptedAnswered,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Verdict::Ok,
        Verdict::ErrorStatus,
        Verdict::NoResponse,
        Verdict::Incomplete,
        Verdict::NotCaptured,
        Verdict::MalformedResponse,
        Verdict::EncryptedAnswered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::ErrorStatus => "error_status",
            Verdict::NoResponse => "no_response",
            Verdict::Incomplete => "incomplete",
            Verdict::NotCaptured => "not_captured",
            Verdict::MalformedResponse => "malformed_response",
            Verdict::EncryptedAnswered => "encrypted_answered",
        }
    }

    /// True for every verdict but `ok` and `encrypted_answered` (answered; what the answer said
    /// is unknown, so it is neither counted as a failure nor as a success).
    pub fn is_problem(self) -> bool {
        !matches!(self, Verdict::Ok | Verdict::EncryptedAnswered)
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
    /// A JPEG part the device sent is cut, corrupt or no JPEG: the server gets the event
    /// without a usable picture (`isapi::picture`).
    Picture {
        /// The part's position in the body.
        part: usize,
        /// Its name (or file name), as sent.
        name: Option<String>,
        problem: PictureProblem,
    },
    /// Live capture: the kernel dropped packets while this request waited for its answer, so the
    /// answer may have been among them (verdict `not_captured` instead of `no_response`).
    KernelDrops(KernelDrops),
}

impl ExchangeNote {
    /// The picture findings of a body's parts (one per cut, corrupt or non-JPEG picture; a
    /// picture the capture lost bytes of is left out: nothing can be said of it). The capture
    /// pipeline and the listener both call this on the parts the shared body decoder reports.
    pub fn pictures(parts: &[PartInfo]) -> impl Iterator<Item = ExchangeNote> + '_ {
        parts.iter().enumerate().filter_map(|(i, p)| {
            let problem = p.picture.as_ref()?.problem.clone()?;
            (!problem.is_uncertain()).then(|| ExchangeNote::Picture {
                part: i,
                name: p.name.clone().or_else(|| p.filename.clone()),
                problem,
            })
        })
    }
}

impl ExchangeNote {
    /// The note's kind as in JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            ExchangeNote::RequestFraming { .. } => "request_framing",
            ExchangeNote::AnswerNotCaptured { .. } => "answer_not_captured",
            ExchangeNote::MalformedResponse { .. } => "malformed_response",
            ExchangeNote::Picture { .. } => "picture",
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
            ExchangeNote::Picture {
                part,
                name: Some(n),
                problem,
            } => write!(f, "picture part {part} (\"{n}\") {problem}"),
            ExchangeNote::Picture { part, problem, .. } => {
                write!(f, "picture part {part} {problem}")
            }
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
            ExchangeNote::Picture {
                part,
                name,
                problem,
            } => {
                m.serialize_entry("part", part)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("problem", problem)?;
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

/// Why a request could not be read to its end. Closed, with the facts: callers match on the
/// kind; JSON and views show the text (`Display`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Its head or body could not be framed (located: stream byte offset).
    #[error(transparent)]
    Framing(HttpError),
    /// The listener waited longer than its read timeout for the rest of it.
    #[error("request not received within {secs} s: timed out")]
    TimedOut { secs: f64 },
    /// The listener closed the connection, its head unfinished, to make room for others.
    #[error(
        "request head incomplete when its connection was closed to make room (max connections)"
    )]
    EvictedMidHead,
}

/// A problem with one connection's streams, kept on the connection. Closed, with the facts:
/// callers match on the kind; JSON and views show the text (`Display`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectionError {
    /// The client's stream could not be framed.
    #[error("request stream: {0}")]
    RequestStream(HttpError),
    /// The server's stream could not be framed.
    #[error("response stream: {0}")]
    ResponseStream(HttpError),
    /// A final answer came with no request waiting for it.
    #[error("response {status} with no request waiting for it (at {})", .at.to_utc_string())]
    UnpairedResponse { status: u16, at: Timestamp },
    /// Errors beyond the per-connection limit, only counted.
    #[error("{0} more HTTP errors not shown")]
    MoreNotShown(u64),
    /// The listener closed this idle connection to make room for others.
    #[error("idle connection closed to make room (max connections)")]
    EvictedIdle,
    /// The listener gave up on the request in progress (timeout, eviction).
    #[error(transparent)]
    Request(RequestError),
    /// TLS findings beyond the per-connection limit, only counted.
    #[error("{0} more TLS findings not shown")]
    MoreTlsFindingsNotShown(u64),
    /// Encrypted exchanges beyond the per-connection limit, only counted.
    #[error("{0} more encrypted exchanges not shown")]
    MoreEncryptedExchangesNotShown(u64),
    /// A connection to the listener that ended in its TLS handshake or on the wrong protocol.
    #[error("{0}")]
    Tls(crate::tls::served::TlsProblem),
    /// The listener's read from the socket failed.
    #[error("read: {message}")]
    Read {
        kind: std::io::ErrorKind,
        message: String,
    },
}

/// Both error types are text in JSON (the schema predates the kinds).
macro_rules! serialize_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                ser.collect_str(self)
            }
        }
    )*};
}
serialize_as_text!(RequestError, ConnectionError);

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
    /// Why the request could not be framed or was not received, if so (JSON: its text).
    pub error: Option<RequestError>,
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
    /// True when the body's eventType was `duration`: a continuing alarm of `event_type` (its
    /// `relationEvent`), not a new one. Absent from JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duration: bool,
    pub event_state: Option<String>,
    pub device_ip: Option<String>,
    pub mac: Option<String>,
    pub channel: Option<String>,
    /// The body's dynChannelID (a recorder's camera), when it has one; absent from JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dyn_channel: Option<String>,
    pub date_time: Option<String>,
    pub description: Option<String>,
    pub plate: Option<String>,
}

/// Channels above this on a recorder that sends no dynChannelID are, on the recorders seen in the
/// field, its IP cameras counted after 32 analogue inputs (isapi-notes: "some report channel
/// numbers offset by 32"). Not every recorder has 32 inputs, so the camera is shown as a guess.
pub const ANALOGUE_INPUTS_GUESS: u32 = 32;

impl EventSummary {
    /// The event type as the list shows it: a continuing alarm reads "duration (fielddetection)",
    /// so a start and a continuation of the same alarm can be told apart.
    pub fn type_label(&self) -> String {
        match (&self.event_type, self.duration) {
            (Some(t), true) if !t.eq_ignore_ascii_case("duration") => format!("duration ({t})"),
            (Some(t), _) => t.clone(),
            (None, true) => "duration".to_string(),
            (None, false) => String::new(),
        }
    }

    /// The channel with the camera it belongs to where the body says it: "channel 13 (camera 5)"
    /// from dynChannelID ("camera 5" when both say 5), "channel 34 (camera 2?)" when a recorder numbers its IP cameras above
    /// its analogue inputs (a guess: marked with "?"), "channel 1" otherwise.
    pub fn channel_label(&self) -> Option<String> {
        let raw = self.channel.as_deref();
        match (raw, self.dyn_channel.as_deref()) {
            // The same number twice (or dynChannelID alone, which also fills `channel`).
            (Some(c), Some(d)) if c == d => Some(format!("camera {d}")),
            (Some(c), Some(d)) => Some(format!("channel {c} (camera {d})")),
            (None, Some(d)) => Some(format!("camera {d}")),
            (Some(c), None) => match c.trim().parse::<u32>() {
                Ok(n) if n > ANALOGUE_INPUTS_GUESS => Some(format!(
                    "channel {c} (camera {}?)",
                    n - ANALOGUE_INPUTS_GUESS
                )),
                _ => Some(format!("channel {c}")),
            },
            (None, None) => None,
        }
    }
}

impl From<&EventInfo> for EventSummary {
    fn from(e: &EventInfo) -> Self {
        EventSummary {
            format: e.format,
            event_type: e.event_type.clone(),
            duration: e.duration,
            event_state: e.event_state.clone(),
            device_ip: e.device_ip.clone(),
            mac: e.mac.clone(),
            channel: e.channel.clone(),
            dyn_channel: e.dyn_channel.clone(),
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
    /// Set when the exchange was inferred from the timing of TLS records (an HTTPS push read
    /// without keys): request and answer sizes in records and ciphertext bytes, and what could
    /// make them wrong. Method, path, status and body are unknown then. Absent from JSON
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<crate::tls::TlsExchange>,
    /// Read from TLS records decrypted with a key log (`--keylog`): judged like plain HTTP, and
    /// marked so a reader knows the wire was encrypted. Absent from JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub decrypted: bool,
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
    /// The body's metadata still to decode, when the pipeline deferred it
    /// ([`crate::isapi::BodyLimits::defer_event`]): until [`Exchange::decode_event`] runs,
    /// `event`, `event_detail`, `metadata` and `body_error` are not set.
    #[serde(skip)]
    pub pending_event: Option<Box<crate::isapi::body::PendingEvent>>,
}

impl Exchange {
    /// A copy with what reports print (JSON lines, text), without the decoded event tree and the
    /// metadata text kept for the TUI's detail pane: what a live finding carries. Cloning the
    /// tree for every finding was a large part of sniff's cost per event.
    pub fn reported(&self) -> Exchange {
        let Exchange {
            index,
            request,
            response,
            verdict,
            event,
            parts,
            injected_fault,
            body_kind,
            body_error,
            auth,
            notes,
            encrypted,
            decrypted,
            retry_of,
            body_hash,
            metadata: _,
            event_detail: _,
            pending_event: _,
        } = self;
        Exchange {
            index: *index,
            request: request.clone(),
            response: response.clone(),
            verdict: *verdict,
            event: event.clone(),
            parts: parts.clone(),
            injected_fault: injected_fault.clone(),
            body_kind,
            body_error: body_error.clone(),
            auth: *auth,
            notes: notes.clone(),
            encrypted: encrypted.clone(),
            decrypted: *decrypted,
            retry_of: *retry_of,
            body_hash: *body_hash,
            metadata: None,
            event_detail: None,
            pending_event: None,
        }
    }

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
            encrypted: None,
            decrypted: false,
            body_hash: 0,
            metadata: None,
            event_detail: None,
            pending_event: None,
        }
    }

    /// The row for an exchange inferred from TLS record timing (no keys): request times and
    /// ciphertext size from the records, no method, path, status or body. Answered is
    /// `encrypted_answered`; unanswered is `no_response` as for plain HTTP, or `not_captured`
    /// when bytes the capture lost could hold the answer.
    pub fn encrypted(tls: crate::tls::TlsExchange) -> Exchange {
        let mut ex = Exchange::started(
            tls.index,
            Request {
                time: tls.time,
                end_time: tls.end_time,
                body_bytes: tls.request_bytes,
                complete: true,
                ..Request::default()
            },
        );
        ex.body_kind = "encrypted";
        ex.encrypted = Some(tls);
        ex.verdict = Verdict::of(&ex);
        ex
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
    /// HTTP framing problems on this connection, located (JSON: their text).
    pub errors: Vec<ConnectionError>,
    /// The protocol the connection switched to with `101 Switching Protocols` (the answer's
    /// Upgrade header, e.g. "websocket"); absent from JSON when there was no switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<String>,
    /// Bytes after a protocol switch or CONNECT tunnel [client->server, server->client]: counted,
    /// never parsed as HTTP. Absent from JSON when both are 0.
    #[serde(skip_serializing_if = "is_zero_pair")]
    pub upgraded_bytes: [u64; 2],
    /// What the TLS records showed, when the device spoke TLS on this connection (versions,
    /// SNI, cipher, certificate, alerts, application-data records); absent from JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<crate::tls::TlsInfo>>,
    /// TLS findings of this connection: handshake failures, HTTPS/HTTP mismatches (also on a
    /// plain HTTP connection answered by a TLS server), capture and parsing notes. Each with
    /// `problem` (true: explains lost events) and `text`. Absent from JSON when empty.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_tls_findings"
    )]
    pub tls_findings: Vec<crate::tls::TlsFinding>,
    /// What decrypting with the key log gave (status, version, suite, record counts, findings):
    /// only when a key log was given and the connection spoke TLS; absent from JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Box<crate::tls::decrypt::DecryptReport>>,
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

/// Each finding as its own fields plus `problem` and the plain-words `text`.
fn serialize_tls_findings<S: serde::Serializer>(
    findings: &[crate::tls::TlsFinding],
    ser: S,
) -> Result<S::Ok, S::Error> {
    crate::tls::serialize_judged(findings, crate::tls::TlsFinding::is_problem, ser)
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_pair(v: &[u64; 2]) -> bool {
    *v == [0, 0]
}

impl Connection {
    /// A copy without the exchanges and the packet time line: what a live finding about one
    /// exchange or the handshake carries. Why not `Connection { exchanges: vec![], ..c.clone() }`:
    /// that clones every exchange (headers, event, parts) only to drop them, which was most of
    /// sniff's cost per event. Every field is named, so a new one cannot be forgotten here.
    pub fn header(&self) -> Connection {
        let Connection {
            id,
            client,
            server,
            handshake,
            one_sided,
            syn_attempts,
            closed,
            first_seen,
            last_seen,
            packets,
            gap_bytes,
            retransmissions,
            truncated_frames,
            errors,
            upgrade,
            upgraded_bytes,
            tls,
            tls_findings,
            decryption,
            exchanges: _,
            handshake_uncertain,
            timeline: _,
        } = self;
        Connection {
            id: *id,
            client: client.clone(),
            server: server.clone(),
            handshake: *handshake,
            one_sided: one_sided.clone(),
            syn_attempts: *syn_attempts,
            closed: *closed,
            first_seen: *first_seen,
            last_seen: *last_seen,
            packets: *packets,
            gap_bytes: *gap_bytes,
            retransmissions: *retransmissions,
            truncated_frames: *truncated_frames,
            errors: errors.clone(),
            upgrade: upgrade.clone(),
            upgraded_bytes: *upgraded_bytes,
            tls: tls.clone(),
            tls_findings: tls_findings.clone(),
            decryption: decryption.clone(),
            exchanges: Vec::new(),
            handshake_uncertain: *handshake_uncertain,
            timeline: Vec::new(),
        }
    }

    /// The client's IP without the port: the device, in HTTP listening mode.
    pub fn device(&self) -> &str {
        host_of(&self.client)
    }

    /// The TLS findings that explain lost events (problem rows), in order.
    pub fn tls_problems(&self) -> impl Iterator<Item = &crate::tls::TlsFinding> {
        self.tls_findings.iter().filter(|f| f.is_problem())
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
    /// Requests inside TLS that were answered, status unknown (neither `ok` nor failures).
    pub encrypted_answered: u64,
    pub failures: u64,
    pub handshake_failures: u64,
    /// TLS problem findings on this device's connections (mismatch, handshake failure...).
    pub tls_problems: u64,
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
    /// Requests inside TLS answered by the server, status unknown (`encrypted_answered`).
    pub encrypted_answered: u64,
    /// Connections on which the device spoke TLS.
    pub tls_connections: u64,
    /// TLS findings that explain lost events (every kind below, and a device offering only
    /// TLS <= 1.1).
    pub tls_problems: u64,
    /// Of those, HTTPS/HTTP mismatches: the device speaks HTTPS to a plain HTTP server, or
    /// plain HTTP to a TLS server.
    pub tls_mismatches: u64,
    /// Of those, TLS handshakes ended by an alert or a close.
    pub tls_handshake_failures: u64,
    /// Frames found inside each tunnel or encapsulation (GRE, ERSPAN, VXLAN, GENEVE, MPLS,
    /// IP-in-IP, LLC/SNAP): a capture from a mirror port or an overlay says so here.
    pub encapsulations: crate::capture::EncapCounts,
    /// `--keylog`: TLS connections decrypted, not decrypted (and why), with decryption
    /// problems; flattened, each field absent from JSON when 0.
    #[serde(flatten)]
    pub decryption: crate::tls::decrypt::DecryptionCounts,
}

impl Summary {
    /// Count one connection's TLS facts and problem findings.
    fn count_tls(&mut self, c: &Connection) {
        use crate::tls::TlsFinding;
        if c.tls.is_some() {
            self.tls_connections += 1;
        }
        self.decryption.count(c.decryption.as_deref());
        for f in c.tls_problems() {
            self.tls_problems += 1;
            match f {
                TlsFinding::TlsToPlainServer { .. } | TlsFinding::PlainHttpToTlsServer { .. } => {
                    self.tls_mismatches += 1
                }
                TlsFinding::HandshakeAlert { .. } | TlsFinding::ClosedDuringHandshake { .. } => {
                    self.tls_handshake_failures += 1
                }
                _ => {}
            }
        }
    }

    pub fn verdict_count(&self, v: Verdict) -> u64 {
        match v {
            Verdict::Ok => self.ok,
            Verdict::ErrorStatus => self.error_status,
            Verdict::NoResponse => self.no_response,
            Verdict::Incomplete => self.incomplete,
            Verdict::NotCaptured => self.not_captured,
            Verdict::MalformedResponse => self.malformed_response,
            Verdict::EncryptedAnswered => self.encrypted_answered,
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
            Verdict::EncryptedAnswered => &mut self.encrypted_answered,
        };
        *n += 1;
    }

    /// Count one finished connection's handshake (and whether it was one-sided), TCP and TLS.
    /// One place for the replay diagnosis and the live one.
    pub fn count_handshake(&mut self, c: &Connection) {
        if c.one_sided.is_some() {
            self.one_sided_connections += 1;
        }
        self.count_tls(c);
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
    /// Serialised as their text, one string each.
    pub warnings: Vec<crate::capture::Warning>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HttpError, HttpErrorKind, Kind};

    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }

    #[test]
    fn typed_errors_keep_their_documented_json_text() {
        let garbage = HttpError {
            offset: 0,
            kind: HttpErrorKind::Garbage {
                kind: Kind::Request,
                skipped: 1411,
            },
        };
        assert_eq!(
            json(&ConnectionError::RequestStream(garbage.clone())),
            r#""request stream: at byte 0 of the stream: stream does not start with an HTTP request (1411 bytes skipped)""#
        );
        assert_eq!(
            json(&RequestError::Framing(garbage)),
            r#""at byte 0 of the stream: stream does not start with an HTTP request (1411 bytes skipped)""#
        );
        assert_eq!(
            json(&ConnectionError::UnpairedResponse {
                status: 200,
                at: Timestamp(0)
            }),
            r#""response 200 with no request waiting for it (at 1970-01-01 00:00:00.000)""#
        );
        assert_eq!(
            json(&ConnectionError::MoreNotShown(3)),
            r#""3 more HTTP errors not shown""#
        );
        assert_eq!(
            json(&ConnectionError::Request(RequestError::TimedOut {
                secs: 2.5
            })),
            r#""request not received within 2.5 s: timed out""#
        );
        assert_eq!(
            json(&Some(RequestError::EvictedMidHead)),
            r#""request head incomplete when its connection was closed to make room (max connections)""#
        );
        assert_eq!(json(&None::<RequestError>), "null");
    }
}
