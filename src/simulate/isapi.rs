//! `simulate --serve-isapi`: the device's configuration side. Answers the httpHosts calls
//! (capabilities, list GET/PUT, one slot GET/PUT, test), `deviceInfo`, the event triggers (list,
//! one trigger GET/PUT) and the `alertStream` behind HTTP digest authentication, in XML or JSON
//! like a camera or an access terminal, and keeps the configured hosts and triggers that the
//! pushers then use. With `forbid_config` the configuration calls answer 403 as recorders do for
//! an operator account. Request handling ([`IsapiDevice::handle`]) is pure; [`serve`] is the
//! socket shell, which also streams what [`IsapiDevice::publish`] hands it.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use digest_auth::{AlgorithmType, AuthorizationHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use super::events::DeviceIdentity;
use super::triggers::{
    heartbeat_body, heartbeat_json, parse_trigger_update, render_device_info, render_trigger,
    render_trigger_list, stream_head, stream_part, Trigger,
};
use crate::time::Timestamp;

use crate::device::hosts::{
    parse_host_list, render_host_list, render_response_status, render_slot, sniff_format,
    ApiFormat, HostSlot, ISAPI_NS,
};

const HOSTS: &str = "/ISAPI/Event/notification/httpHosts";
const TRIGGERS: &str = "/ISAPI/Event/triggers";
const DEVICE_INFO: &str = "/ISAPI/System/deviceInfo";
const ALERT_STREAM: &str = "/ISAPI/Event/notification/alertStream";
const MAX_BODY: usize = 1 << 20;

/// An HTTP answer from the simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsapiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub www_authenticate: Option<String>,
}

/// What the shell must do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send this answer.
    Now(IsapiResponse),
    /// Push a test message to this slot's host, then answer with [`IsapiDevice::test_answer`].
    Test(HostSlot),
    /// Open the long-lived `multipart/mixed` event stream ([`IsapiDevice::subscribe`]).
    AlertStream,
}

/// One part of the alertStream, shared by every subscriber.
#[derive(Debug, Clone)]
pub struct StreamItem {
    /// The part's `Content-Type`.
    pub content_type: &'static str,
    /// The event document, shared by every open stream.
    pub body: Arc<Vec<u8>>,
}

/// The simulated device's configuration state.
#[derive(Debug)]
pub struct IsapiDevice {
    pub user: String,
    pub password: String,
    pub api: ApiFormat,
    pub realm: String,
    hosts: Mutex<Vec<HostSlot>>,
    nonces: Mutex<VecDeque<String>>,
    nonce_seq: AtomicU64,
    /// Bumped on every accepted change, so pushers notice.
    pub generation: AtomicU64,
    /// Who the device says it is (deviceInfo, heartbeats).
    pub identity: DeviceIdentity,
    triggers: Mutex<Vec<Trigger>>,
    /// Slot passwords as last written (the device never reads them back), by slot id.
    passwords: Mutex<HashMap<String, String>>,
    /// Answer 403 to the configuration calls (httpHosts, triggers), like an operator account.
    pub forbid_config: bool,
    /// Interval of the `videoloss`/`inactive` keep-alive on the alertStream (cameras: 10 s).
    pub heartbeat: Duration,
    /// Close each alertStream after this long (devices drop streams; clients must reconnect).
    pub stream_limit: Option<Duration>,
    stream: broadcast::Sender<StreamItem>,
}

fn unused_slot(id: u32, format: ApiFormat) -> HostSlot {
    HostSlot {
        id: id.to_string(),
        url: "/".into(),
        protocol: "HTTP".into(),
        format: if format == ApiFormat::Json {
            "JSON".into()
        } else {
            "XML".into()
        },
        addressing: "ipaddress".into(),
        ip_address: "0.0.0.0".into(),
        port: "80".into(),
        auth: "none".into(),
        ..Default::default()
    }
}

fn valid_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl IsapiDevice {
    /// A device with two unused host slots (one when it speaks JSON, like access terminals), no
    /// triggers and the configuration API allowed.
    pub fn new(user: &str, password: &str, api: ApiFormat, identity: DeviceIdentity) -> Self {
        let n = if api == ApiFormat::Json { 1 } else { 2 };
        let serial = identity.serial.clone();
        IsapiDevice {
            user: user.into(),
            password: password.into(),
            api,
            realm: format!(
                "IP Camera({})",
                serial
                    .chars()
                    .rev()
                    .take(8)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<String>()
            ),
            hosts: Mutex::new((1..=n).map(|i| unused_slot(i, api)).collect()),
            nonces: Mutex::new(VecDeque::new()),
            nonce_seq: AtomicU64::new(1),
            generation: AtomicU64::new(0),
            identity,
            triggers: Mutex::new(Vec::new()),
            passwords: Mutex::new(HashMap::new()),
            forbid_config: false,
            heartbeat: Duration::from_secs(10),
            stream_limit: None,
            // Slow stream readers lose the oldest parts instead of holding memory.
            stream: broadcast::channel(1024).0,
        }
    }

    /// The event triggers (which event types on which channels notify the center).
    pub fn triggers(&self) -> Vec<Trigger> {
        self.triggers.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Replace the event triggers.
    pub fn set_triggers(&self, t: Vec<Trigger>) {
        if let Ok(mut g) = self.triggers.lock() {
            *g = t;
        }
    }

    /// The password last written for slot `id` (empty when none).
    pub fn slot_password(&self, id: &str) -> String {
        self.passwords
            .lock()
            .ok()
            .and_then(|p| p.get(id).cloned())
            .unwrap_or_default()
    }

    /// Set the password of slot `id` (from `--host-password` or a PUT).
    pub fn set_slot_password(&self, id: &str, password: &str) {
        if let Ok(mut p) = self.passwords.lock() {
            p.insert(id.to_string(), password.to_string());
        }
    }

    /// Hand one event part to every open alertStream (none open: dropped, as on a device).
    pub fn publish(&self, content_type: &'static str, body: Vec<u8>) {
        let _ = self.stream.send(StreamItem {
            content_type,
            body: Arc::new(body),
        });
    }

    /// A new alertStream subscriber: it sees the parts published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StreamItem> {
        self.stream.subscribe()
    }

    /// The configured host slots.
    pub fn hosts(&self) -> Vec<HostSlot> {
        self.hosts.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Replace the host slots (used to pre-configure from `--to`).
    pub fn set_hosts(&self, slots: Vec<HostSlot>) {
        if let Ok(mut h) = self.hosts.lock() {
            *h = slots;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The first slot with an address: where pushes go.
    pub fn active_host(&self) -> Option<HostSlot> {
        self.hosts().into_iter().find(|s| !s.is_unused())
    }

    fn new_nonce(&self) -> String {
        let n = self.nonce_seq.fetch_add(1, Ordering::SeqCst);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let nonce = digest_auth::Algorithm::new(AlgorithmType::MD5, false)
            .hash(format!("{t}:{n}:{}", self.realm).as_bytes());
        if let Ok(mut q) = self.nonces.lock() {
            q.push_back(nonce.clone());
            while q.len() > 256 {
                q.pop_front();
            }
        }
        nonce
    }

    fn challenge(&self) -> IsapiResponse {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<userCheck>\n<statusValue>401</statusValue>\n<statusString>Unauthorized</statusString>\n</userCheck>\n";
        IsapiResponse {
            status: 401,
            content_type: "application/xml",
            body: body.as_bytes().to_vec(),
            www_authenticate: Some(format!(
                "Digest qop=\"auth\", realm=\"{}\", nonce=\"{}\", stale=\"FALSE\"",
                self.realm,
                self.new_nonce()
            )),
        }
    }

    /// RFC 7616 check of an `Authorization: Digest ...` header with `digest_auth`: recompute the
    /// response from the known password and compare.
    pub fn check_auth(
        &self,
        method: &str,
        target: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Ok(hdr) = AuthorizationHeader::parse(value) else {
            return false;
        };
        if hdr.username != self.user || hdr.realm != self.realm || hdr.uri != target {
            return false;
        }
        let known = self
            .nonces
            .lock()
            .map(|q| q.contains(&hdr.nonce))
            .unwrap_or(false);
        if !known {
            return false;
        }
        crate::listen::auth::digest_matches(&hdr, &self.password, method, body)
    }

    fn status(&self, code: u16, url: &str, status_code: i64, sub: &str) -> IsapiResponse {
        IsapiResponse {
            status: code,
            content_type: if self.api == ApiFormat::Json {
                "application/json"
            } else {
                "application/xml"
            },
            body: render_response_status(url, status_code, sub, self.api),
            www_authenticate: None,
        }
    }

    fn xml_doc(&self, body: Vec<u8>) -> IsapiResponse {
        IsapiResponse {
            status: 200,
            content_type: "application/xml",
            body,
            www_authenticate: None,
        }
    }

    fn doc(&self, body: Vec<u8>) -> IsapiResponse {
        let content_type = if sniff_format(&body) == Some(ApiFormat::Json) {
            "application/json"
        } else {
            "application/xml"
        };
        IsapiResponse {
            status: 200,
            content_type,
            body,
            www_authenticate: None,
        }
    }

    fn caps(&self) -> Vec<u8> {
        let n = self.hosts().len();
        match self.api {
            ApiFormat::Xml => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HttpHostNotificationCap version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n\
                 <hostNumber>{n}</hostNumber>\n<urlLen max=\"128\"/>\n<protocolType opt=\"HTTP,HTTPS\"/>\n\
                 <parameterFormatType opt=\"XML,JSON\"/>\n<addressingFormatType opt=\"ipaddress,hostname\"/>\n\
                 <ipAddress opt=\"ipv4,ipv6\"/>\n<portNo min=\"1\" max=\"65535\"/>\n<userNameLen min=\"0\" max=\"32\"/>\n\
                 <passwordLen min=\"0\" max=\"16\"/>\n<httpAuthenticationMethod opt=\"none,MD5digest,basic\"/>\n\
                 <uploadImagesDataType opt=\"URL,binary\"/>\n<httpBroken opt=\"true,false\" def=\"true\"/>\n</HttpHostNotificationCap>\n"
            )
            .into_bytes(),
            ApiFormat::Json => serde_json::to_vec(&serde_json::json!({ "HttpHostNotificationCap": {
                "hostNumber": n,
                "urlLen": {"@max": 128},
                "protocolType": {"@opt": ["HTTP", "HTTPS"]},
                "parameterFormatType": {"@opt": ["JSON", "XML"]},
                "addressingFormatType": {"@opt": ["ipaddress", "hostname"]},
                "portNo": {"@min": 1, "@max": 65535},
                "httpAuthenticationMethod": {"@opt": ["none", "MD5digest", "basic"]},
                "SubscribeEventCap": {"heartbeat": {"@min": 1, "@max": 30}, "eventMode": {"@opt": ["all", "list"]}}
            }}))
            .unwrap_or_default(),
        }
    }

    fn validate(&self, slots: &[HostSlot], known: &[HostSlot]) -> Result<(), &'static str> {
        for s in slots {
            if !known.iter().any(|k| k.id == s.id) {
                return Err("badParameters");
            }
            if !matches!(s.protocol.as_str(), "HTTP" | "HTTPS") {
                return Err("badParameters");
            }
            if !s.format.is_empty() && !matches!(s.format.as_str(), "XML" | "JSON") {
                return Err("badParameters");
            }
            match s.port.parse::<u32>() {
                Ok(p) if (1..=65535).contains(&p) => {}
                _ => return Err("badParameters"),
            }
            let a = s.address();
            let ok = if s.addressing.eq_ignore_ascii_case("hostname") {
                valid_host_name(a)
            } else {
                a.parse::<std::net::IpAddr>().is_ok()
            };
            if !ok || !s.url.starts_with('/') || s.url.len() > 128 {
                return Err("badParameters");
            }
        }
        Ok(())
    }

    fn apply(&self, incoming: Vec<HostSlot>, url: &str, body: &[u8]) -> IsapiResponse {
        let known = self.hosts();
        if incoming.is_empty() {
            return self.status(400, url, 6, "badXmlContent");
        }
        if let Err(sub) = self.validate(&incoming, &known) {
            return self.status(400, url, 6, sub);
        }
        let mut merged = known;
        for s in incoming {
            if let Some(slot) = merged.iter_mut().find(|k| k.id == s.id) {
                *slot = s;
            }
        }
        self.set_hosts(merged);
        for (id, pw) in slot_passwords(body) {
            self.set_slot_password(&id, &pw);
        }
        self.status(200, url, 1, "ok")
    }

    /// Answer one authenticated-or-not request. `target` is the request target (path and query).
    pub fn handle(
        &self,
        method: &str,
        target: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Reply {
        if !self.check_auth(method, target, authorization, body) {
            return Reply::Now(self.challenge());
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let wants_json = query
            .split('&')
            .any(|kv| kv.eq_ignore_ascii_case("format=json"));
        match (method, path) {
            ("GET", DEVICE_INFO) => {
                return Reply::Now(self.xml_doc(render_device_info(&self.identity)))
            }
            ("GET", ALERT_STREAM) => return Reply::AlertStream,
            _ => {}
        }
        let config = path.starts_with(HOSTS) || path.starts_with(TRIGGERS);
        if config && self.forbid_config {
            // What recorders answer an account without the parameter-configuration permission.
            return Reply::Now(self.status(403, path, 4, "lowPrivilege"));
        }
        if let Some(rest) = path.strip_prefix(TRIGGERS) {
            return Reply::Now(self.triggers_call(method, path, rest, body));
        }
        // A JSON-only device (access terminal style) refuses requests without ?format=json.
        if self.api == ApiFormat::Json && !wants_json && path.starts_with(HOSTS) {
            return Reply::Now(self.status(400, path, 4, "notSupport"));
        }
        let rest = path.strip_prefix(HOSTS);
        let resp = match (method, rest) {
            ("GET", Some("/capabilities")) => self.doc(self.caps()),
            ("GET", Some("")) => self.doc(render_host_list(&self.hosts(), self.api)),
            ("PUT", Some("")) => match parse_host_list(body) {
                Ok(slots) => self.apply(slots, path, body),
                Err(_) => self.status(400, path, 5, "badXmlFormat"),
            },
            (m, Some(r)) if r.starts_with('/') => {
                let r = r.trim_start_matches('/');
                let (id, tail) = r.split_once('/').unwrap_or((r, ""));
                let slot = self.hosts().into_iter().find(|s| s.id == id);
                match (m, tail, slot) {
                    (_, _, None) => self.status(404, path, 4, "notSupport"),
                    ("GET", "", Some(s)) => self.doc(render_slot(&s, self.api)),
                    ("PUT", "", Some(_)) => match parse_host_list(body) {
                        Ok(slots) if slots.iter().all(|s| s.id == id) => {
                            self.apply(slots, path, body)
                        }
                        Ok(_) => self.status(400, path, 6, "badParameters"),
                        Err(_) => self.status(400, path, 5, "badXmlFormat"),
                    },
                    ("POST", "test", Some(s)) => return Reply::Test(s),
                    _ => self.status(405, path, 4, "invalidOperation"),
                }
            }
            _ => self.status(404, path, 4, "notSupport"),
        };
        Reply::Now(resp)
    }

    /// `/ISAPI/Event/triggers` (GET) and `/ISAPI/Event/triggers/<type>-<channel>` (GET, PUT).
    /// Triggers are XML on every device, as on real ones.
    fn triggers_call(&self, method: &str, path: &str, rest: &str, body: &[u8]) -> IsapiResponse {
        let xml_status = |code, sc, sub: &str| IsapiResponse {
            content_type: "application/xml",
            body: render_response_status(path, sc, sub, ApiFormat::Xml),
            ..self.status(code, path, sc, sub)
        };
        if rest.is_empty() {
            return match method {
                "GET" => self.xml_doc(render_trigger_list(&self.triggers())),
                _ => xml_status(405, 4, "invalidOperation"),
            };
        }
        let id = rest.trim_start_matches('/');
        let Some(t) = self.triggers().into_iter().find(|t| t.id() == id) else {
            return xml_status(404, 4, "notSupport");
        };
        match method {
            "GET" => self.xml_doc(render_trigger(&t)),
            "PUT" => match parse_trigger_update(body) {
                Ok(u) if u.id.as_deref().is_some_and(|i| i != id) => {
                    xml_status(400, 6, "badParameters")
                }
                Ok(u) => {
                    if let Ok(mut g) = self.triggers.lock() {
                        if let Some(x) = g.iter_mut().find(|x| x.id() == id) {
                            x.center = u.center;
                        }
                    }
                    self.generation.fetch_add(1, Ordering::SeqCst);
                    xml_status(200, 1, "ok")
                }
                Err(_) => xml_status(400, 5, "badXmlFormat"),
            },
            _ => xml_status(405, 4, "invalidOperation"),
        }
    }

    /// The `HttpHostTestResult` after a test push; `error` is None when the host answered 200.
    pub fn test_answer(&self, error: Option<&str>) -> IsapiResponse {
        let text = error.unwrap_or("ok");
        let body = match self.api {
            ApiFormat::Xml => format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HttpHostTestResult version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n<errorDescription>{text}</errorDescription>\n</HttpHostTestResult>\n"
            )
            .into_bytes(),
            ApiFormat::Json => serde_json::to_vec(&serde_json::json!({"HttpHostTestResult": {"errorDescription": text}})).unwrap_or_default(),
        };
        self.doc(body)
    }
}

/// The `password` written for each slot of a PUT httpHosts body (XML or JSON), by slot id. The
/// shared host-list parser leaves passwords out because devices never read them back.
pub fn slot_passwords(body: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if sniff_format(body) == Some(ApiFormat::Json) {
        fn walk(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let (Some(id), Some(pw)) = (m.get("id"), m.get("password")) {
                        let id = id
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| id.to_string());
                        out.push((id, pw.as_str().unwrap_or_default().to_string()));
                    }
                    m.values().for_each(|x| walk(x, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            walk(&v, &mut out);
        }
        return out;
    }
    let mut r = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut current: Option<String> = None;
    let (mut id, mut pw): (Option<String>, Option<String>) = (None, None);
    loop {
        match r.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(e)) => {
                let name = e.local_name().as_ref().to_string();
                if name == "HttpHostNotification" {
                    (id, pw) = (None, None);
                }
                current = Some(name);
            }
            Ok(quick_xml::events::Event::Text(t)) => {
                let text = t.xml10_content().trim().to_string();
                match current.as_deref() {
                    Some("id") => id = Some(text),
                    Some("password") => pw = Some(text),
                    _ => {}
                }
            }
            Ok(quick_xml::events::Event::End(e)) => {
                if e.local_name().as_ref() == "HttpHostNotification" {
                    if let (Some(i), Some(p)) = (id.take(), pw.take()) {
                        out.push((i, p));
                    }
                }
                current = None;
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    out
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    }
}

fn response_bytes(r: &IsapiResponse) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    );
    if let Some(w) = &r.www_authenticate {
        head.push_str(&format!("WWW-Authenticate: {w}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    out
}

/// How a test push went: None when the host answered 200, else the device-style error text.
pub type TestPusher =
    Arc<dyn Fn(HostSlot) -> futures_util::future::BoxFuture<'static, Option<String>> + Send + Sync>;

/// Serve ISAPI requests on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, dev: Arc<IsapiDevice>, tester: TestPusher) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let dev = dev.clone();
        let tester = tester.clone();
        tokio::spawn(async move {
            let _ = connection(stream, dev, tester).await;
        });
    }
}

async fn connection(
    mut stream: TcpStream,
    dev: Arc<IsapiDevice>,
    tester: TestPusher,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Read a complete request (head + Content-Length body).
        let (method, target, auth, head_len, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 48];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let get = |name: &str| {
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).into_owned())
                    };
                    let len = get("content-length")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if len > MAX_BODY {
                        return Ok(());
                    }
                    break (
                        req.method.unwrap_or("GET").to_string(),
                        req.path.unwrap_or("/").to_string(),
                        get("authorization"),
                        n,
                        len,
                    );
                }
                Ok(httparse::Status::Partial) if buf.len() < 65_536 => {}
                _ => return Ok(()),
            }
            let n = match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
                .await
            {
                Ok(Ok(n)) if n > 0 => n,
                _ => return Ok(()),
            };
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        };
        let total = head_len.saturating_add(body_len);
        while buf.len() < total {
            let n = match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
                .await
            {
                Ok(Ok(n)) if n > 0 => n,
                _ => return Ok(()),
            };
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        let body = buf.get(head_len..total).unwrap_or_default().to_vec();
        buf.drain(..total.min(buf.len()));
        let resp = match dev.handle(&method, &target, auth.as_deref(), &body) {
            Reply::AlertStream => return alert_stream(stream, &dev).await,
            Reply::Now(r) => r,
            Reply::Test(slot) => {
                let err = tester(slot).await;
                dev.test_answer(err.as_deref())
            }
        };
        stream.write_all(&response_bytes(&resp)).await?;
    }
}

/// Keep an alertStream open: every published event part, and a keep-alive part every
/// `dev.heartbeat`, until the client goes away.
async fn alert_stream(mut stream: TcpStream, dev: &IsapiDevice) -> std::io::Result<()> {
    let mut rx = dev.subscribe();
    stream.write_all(&stream_head()).await?;
    let mut beat = tokio::time::interval(dev.heartbeat.max(Duration::from_millis(100)));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.tick().await; // the first tick is immediate; cameras start with silence
                       // Far enough to never come when there is no limit.
    let limit = dev
        .stream_limit
        .unwrap_or(Duration::from_secs(100 * 365 * 86_400));
    let end = tokio::time::sleep(limit);
    tokio::pin!(end);
    loop {
        let part = tokio::select! {
            _ = &mut end => return Ok(()),
            r = rx.recv() => match r {
                Ok(item) => stream_part(item.content_type, &item.body),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = beat.tick() => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
                match dev.api {
                    ApiFormat::Xml => stream_part(
                        "application/xml; charset=\"UTF-8\"",
                        &heartbeat_body(&dev.identity, Timestamp(now)),
                    ),
                    ApiFormat::Json => stream_part(
                        "application/json; charset=\"UTF-8\"",
                        &heartbeat_json(&dev.identity, Timestamp(now)),
                    ),
                }
            }
        };
        stream.write_all(&part).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};

    fn dev(api: ApiFormat) -> IsapiDevice {
        // Serial DS-2CD2387G2-LU20230101CCWR520000000: realm "IP Camera(20000000)".
        IsapiDevice::new(
            "admin",
            "s3cret!",
            api,
            DeviceIdentity::new(0, "127.0.0.1".parse().unwrap()),
        )
    }

    /// Do the digest dance the way a client would and return the server's reply.
    fn call(d: &IsapiDevice, method: &str, target: &str, password: &str, body: &[u8]) -> Reply {
        let Reply::Now(first) = d.handle(method, target, None, body) else {
            panic!()
        };
        assert_eq!(first.status, 401);
        let www = first.www_authenticate.unwrap();
        let mut prompt = WwwAuthenticateHeader::parse(&www).unwrap();
        let ctx = AuthContext::new_with_method(
            "admin",
            password,
            target,
            Some(body),
            HttpMethod::from(method.to_string()),
        );
        let auth = prompt.respond(&ctx).unwrap().to_string();
        d.handle(method, target, Some(&auth), body)
    }

    fn now(r: Reply) -> IsapiResponse {
        match r {
            Reply::Now(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digest_right_and_wrong_password() {
        let d = dev(ApiFormat::Xml);
        assert_eq!(d.realm, "IP Camera(20000000)");
        let ok = now(call(&d, "GET", HOSTS, "s3cret!", b""));
        assert_eq!(ok.status, 200);
        let slots = parse_host_list(&ok.body).unwrap();
        assert_eq!(slots.len(), 2);
        assert!(slots.iter().all(HostSlot::is_unused));
        let bad = now(call(&d, "GET", HOSTS, "wrong", b""));
        assert_eq!(bad.status, 401);
        // A made-up nonce is refused even with the right password.
        let fake = r#"Digest username="admin", realm="IP Camera(20000000)", nonce="abc", uri="/ISAPI/Event/notification/httpHosts", response="0", qop=auth, nc=00000001, cnonce="x""#;
        assert!(!d.check_auth("GET", HOSTS, Some(fake), b""));
    }

    #[test]
    fn put_changes_slot_and_validates() {
        let d = dev(ApiFormat::Xml);
        let mut slots = d.hosts();
        slots[0].ip_address = "127.0.0.1".into();
        slots[0].port = "8099".into();
        let doc = render_host_list(&slots, ApiFormat::Xml);
        let r = now(call(&d, "PUT", HOSTS, "s3cret!", &doc));
        assert_eq!(r.status, 200);
        assert!(String::from_utf8_lossy(&r.body).contains("<statusCode>1</statusCode>"));
        assert_eq!(d.active_host().unwrap().port, "8099");
        assert_eq!(d.generation.load(Ordering::SeqCst), 1);
        // Port 0 is refused with statusCode 6.
        slots[0].port = "0".into();
        let r = now(call(
            &d,
            "PUT",
            HOSTS,
            "s3cret!",
            &render_host_list(&slots, ApiFormat::Xml),
        ));
        assert_eq!(r.status, 400);
        assert!(String::from_utf8_lossy(&r.body)
            .contains("<subStatusCode>badParameters</subStatusCode>"));
        assert_eq!(d.active_host().unwrap().port, "8099");
    }

    #[test]
    fn json_device_needs_format_json() {
        let d = dev(ApiFormat::Json);
        let r = now(call(&d, "GET", HOSTS, "s3cret!", b""));
        assert_eq!(r.status, 400);
        let target = format!("{HOSTS}?format=json");
        let r = now(call(&d, "GET", &target, "s3cret!", b""));
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        assert_eq!(parse_host_list(&r.body).unwrap().len(), 1);
        let caps = now(call(
            &d,
            "GET",
            &format!("{HOSTS}/capabilities?format=json"),
            "s3cret!",
            b"",
        ));
        assert!(String::from_utf8_lossy(&caps.body).contains("HttpHostNotificationCap"));
    }

    #[test]
    fn slot_paths_and_test() {
        let d = dev(ApiFormat::Xml);
        let r = now(call(&d, "GET", &format!("{HOSTS}/2"), "s3cret!", b""));
        let body = String::from_utf8_lossy(&r.body).to_string();
        assert!(
            body.contains("<HttpHostNotification version=\"2.0\""),
            "{body}"
        );
        assert_eq!(parse_host_list(&r.body).unwrap()[0].id, "2");
        assert_eq!(
            now(call(&d, "GET", &format!("{HOSTS}/7"), "s3cret!", b"")).status,
            404
        );
        match call(&d, "POST", &format!("{HOSTS}/1/test"), "s3cret!", b"") {
            Reply::Test(s) => assert_eq!(s.id, "1"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            now(call(&d, "GET", "/ISAPI/System/unknown", "s3cret!", b"")).status,
            404
        );
    }

    fn with_triggers(d: IsapiDevice) -> IsapiDevice {
        d.set_triggers(
            crate::simulate::triggers::trigger_table(
                &["VMD".into(), "linedetection".into()],
                &["linedetection".into()],
                1,
            )
            .unwrap(),
        );
        d
    }

    #[test]
    fn device_info_and_alert_stream_need_auth_only() {
        let mut d = dev(ApiFormat::Xml);
        d.forbid_config = true;
        let info = now(call(&d, "GET", DEVICE_INFO, "s3cret!", b""));
        assert_eq!(info.status, 200);
        let text = String::from_utf8(info.body).unwrap();
        assert!(text.contains(&format!(
            "<serialNumber>{}</serialNumber>",
            d.identity.serial
        )));
        assert!(matches!(
            call(&d, "GET", ALERT_STREAM, "s3cret!", b""),
            Reply::AlertStream
        ));
        // Without credentials the stream is refused like everything else.
        assert_eq!(now(d.handle("GET", ALERT_STREAM, None, b"")).status, 401);
    }

    #[test]
    fn forbidden_config_answers_403_low_privilege() {
        let mut d = with_triggers(dev(ApiFormat::Xml));
        d.forbid_config = true;
        for (m, path) in [
            ("GET", HOSTS.to_string()),
            ("PUT", format!("{HOSTS}/1")),
            ("GET", TRIGGERS.to_string()),
            ("GET", format!("{TRIGGERS}/VMD-1")),
        ] {
            let r = now(call(&d, m, &path, "s3cret!", b""));
            assert_eq!(r.status, 403, "{m} {path}");
            let st = crate::device::hosts::parse_response_status(&r.body).unwrap();
            assert_eq!(st.sub_status_code, "lowPrivilege");
            assert_eq!(st.status_code, Some(4));
        }
    }

    #[test]
    fn triggers_list_get_and_put_link() {
        let d = with_triggers(dev(ApiFormat::Xml));
        let list = now(call(&d, "GET", TRIGGERS, "s3cret!", b""));
        assert_eq!(list.status, 200);
        let one = now(call(
            &d,
            "GET",
            &format!("{TRIGGERS}/linedetection-1"),
            "s3cret!",
            b"",
        ));
        assert_eq!(one.status, 200);
        let u = crate::simulate::triggers::parse_trigger_update(&one.body).unwrap();
        assert!(!u.center);
        // Link it to the center the way a client would: the same document plus `center`.
        let linked = Trigger {
            event_type: "linedetection".into(),
            channel: 1,
            center: true,
        };
        let body = render_trigger(&linked);
        let path = format!("{TRIGGERS}/linedetection-1");
        let r = now(call(&d, "PUT", &path, "s3cret!", &body));
        assert_eq!(r.status, 200);
        assert!(d.triggers().iter().all(|t| t.center));
        // A body naming another trigger is refused and changes nothing.
        let other = render_trigger(&Trigger {
            event_type: "VMD".into(),
            channel: 1,
            center: false,
        });
        let r = now(call(&d, "PUT", &path, "s3cret!", &other));
        assert_eq!(r.status, 400);
        assert!(d.triggers().iter().all(|t| t.center));
        assert_eq!(
            now(call(
                &d,
                "GET",
                &format!("{TRIGGERS}/fielddetection-1"),
                "s3cret!",
                b""
            ))
            .status,
            404
        );
    }

    #[test]
    fn put_keeps_slot_passwords() {
        let d = dev(ApiFormat::Xml);
        let body = b"<HttpHostNotificationList><HttpHostNotification><id>1</id><url>/a</url>\
<protocolType>HTTP</protocolType><parameterFormatType>XML</parameterFormatType>\
<addressingFormatType>ipaddress</addressingFormatType><ipAddress>127.0.0.1</ipAddress>\
<portNo>8080</portNo><userName>alarm</userName><password>p4ss</password>\
<httpAuthenticationMethod>MD5digest</httpAuthenticationMethod></HttpHostNotification>\
</HttpHostNotificationList>";
        let r = now(call(&d, "PUT", HOSTS, "s3cret!", body));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(d.slot_password("1"), "p4ss");
        assert_eq!(d.slot_password("2"), "");
        let json =
            br#"{"HttpHostNotificationList":[{"HttpHostNotification":{"id":"1","password":"j"}}]}"#;
        assert_eq!(
            slot_passwords(json),
            vec![("1".to_string(), "j".to_string())]
        );
    }
}
