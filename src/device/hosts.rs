//! Pure ISAPI alarm-host documents: `HttpHostNotificationCap`, `HttpHostNotificationList`,
//! `ResponseStatus` and `HttpHostTestResult`, in XML or JSON.
//!
//! Parsing matches elements by local name (namespaces vary by vendor and firmware). Editing a
//! slot splices the new values into the device's own document, so every element we do not know
//! (subscriptions, OEM extensions) goes back to the device untouched.

use std::net::IpAddr;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;
use serde_json::Value;

/// Namespace the simulated device and new documents use.
pub const ISAPI_NS: &str = "http://www.hikvision.com/ver20/XMLSchema";

/// Wire format of the device's configuration API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ApiFormat {
    Xml,
    Json,
}

impl ApiFormat {
    /// Content type to send with a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            ApiFormat::Xml => "application/xml; charset=\"UTF-8\"",
            ApiFormat::Json => "application/json",
        }
    }
}

/// Guess the format from the first significant byte (devices' content types are unreliable).
pub fn sniff_format(body: &[u8]) -> Option<ApiFormat> {
    let first = body
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF)?;
    match first {
        b'<' => Some(ApiFormat::Xml),
        b'{' | b'[' => Some(ApiFormat::Json),
        _ => None,
    }
}

/// A document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("the answer is neither XML nor JSON")]
    NotXmlOrJson,
    #[error("malformed XML: {0}")]
    Xml(String),
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("no {0} element in the answer")]
    Missing(&'static str),
    #[error("the device has no host slot with id {0}")]
    NoSuchSlot(String),
}

/// One alarm-host slot as the device reports it. Fields are kept as text: devices disagree on
/// types (`"portNo": 80` vs `"80"`) and we show them as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HostSlot {
    pub id: String,
    pub url: String,
    pub protocol: String,
    pub format: String,
    pub addressing: String,
    pub ip_address: String,
    pub ipv6_address: String,
    pub host_name: String,
    pub port: String,
    pub user_name: String,
    pub auth: String,
}

impl HostSlot {
    /// The address the device will connect to, according to its addressing type.
    pub fn address(&self) -> &str {
        if self.addressing.eq_ignore_ascii_case("hostname") && !self.host_name.is_empty() {
            &self.host_name
        } else if !self.ip_address.is_empty() {
            &self.ip_address
        } else if !self.ipv6_address.is_empty() {
            &self.ipv6_address
        } else {
            &self.host_name
        }
    }

    /// Unused slots show `0.0.0.0` (or nothing) as their address.
    pub fn is_unused(&self) -> bool {
        let a = self.address();
        a.is_empty() || a == "0.0.0.0" || a == "::"
    }

    /// Named fields, in the device's element names, for diffs and rendering.
    pub fn fields(&self) -> [(&'static str, &str); 11] {
        [
            ("id", &self.id),
            ("url", &self.url),
            ("protocolType", &self.protocol),
            ("parameterFormatType", &self.format),
            ("addressingFormatType", &self.addressing),
            ("hostName", &self.host_name),
            ("ipAddress", &self.ip_address),
            ("ipv6Address", &self.ipv6_address),
            ("portNo", &self.port),
            ("userName", &self.user_name),
            ("httpAuthenticationMethod", &self.auth),
        ]
    }

    fn set(&mut self, name: &str, value: String) {
        match name {
            "id" => self.id = value,
            "url" => self.url = value,
            "protocolType" => self.protocol = value,
            "parameterFormatType" => self.format = value,
            "addressingFormatType" => self.addressing = value,
            "hostName" => self.host_name = value,
            "ipAddress" => self.ip_address = value,
            "ipv6Address" => self.ipv6_address = value,
            "portNo" => self.port = value,
            "userName" => self.user_name = value,
            "httpAuthenticationMethod" => self.auth = value,
            _ => {}
        }
    }
}

/// Element order of `HttpHostNotification` in the vendor schema; new elements are inserted in
/// this order so strict firmware accepts the edited document.
const SLOT_ORDER: [&str; 12] = [
    "id",
    "url",
    "protocolType",
    "parameterFormatType",
    "addressingFormatType",
    "hostName",
    "ipAddress",
    "ipv6Address",
    "portNo",
    "userName",
    "password",
    "httpAuthenticationMethod",
];

fn slot_rank(name: &str) -> Option<usize> {
    SLOT_ORDER.iter().position(|n| *n == name)
}

fn xml_err(e: impl std::fmt::Display) -> DocError {
    DocError::Xml(e.to_string())
}

fn text_of_ref(r: &quick_xml::events::BytesRef<'_>) -> String {
    let raw = format!("&{};", r.xml10_content());
    match quick_xml::escape::unescape(&raw) {
        Ok(s) => s.into_owned(),
        Err(_) => raw,
    }
}

/// Parse a host list (`HttpHostNotificationList`, or a single `HttpHostNotification`).
pub fn parse_host_list(body: &[u8]) -> Result<Vec<HostSlot>, DocError> {
    match sniff_format(body) {
        Some(ApiFormat::Xml) => parse_host_list_xml(body),
        Some(ApiFormat::Json) => parse_host_list_json(body),
        None => Err(DocError::NotXmlOrJson),
    }
}

fn parse_host_list_xml(body: &[u8]) -> Result<Vec<HostSlot>, DocError> {
    let mut reader = Reader::from_reader(body);
    let mut slots = Vec::new();
    // Depth relative to the current slot: 0 = not in a slot, 1 = in slot, 2 = in a field.
    let mut depth = 0usize;
    let mut current = HostSlot::default();
    let mut field: Option<String> = None;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(xml_err)? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if depth == 0 {
                    if name == "HttpHostNotification" {
                        depth = 1;
                        current = HostSlot::default();
                    }
                } else {
                    depth = depth.saturating_add(1);
                    if depth == 2 {
                        field = Some(name);
                        text.clear();
                    }
                }
            }
            Event::Empty(e) if depth == 1 => {
                let name = e.local_name().as_ref().to_string();
                current.set(&name, String::new());
            }
            Event::Text(t) if depth == 2 => text.push_str(&t.xml10_content()),
            Event::CData(t) if depth == 2 => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if depth == 2 => text.push_str(&text_of_ref(&r)),
            Event::End(_) => {
                if depth == 2 {
                    if let Some(f) = field.take() {
                        current.set(&f, text.trim().to_string());
                    }
                }
                if depth == 1 {
                    slots.push(std::mem::take(&mut current));
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if slots.is_empty() && !contains_local_name(body, "HttpHostNotificationList") {
        return Err(DocError::Missing("HttpHostNotificationList"));
    }
    Ok(slots)
}

fn contains_local_name(body: &[u8], name: &str) -> bool {
    let mut reader = Reader::from_reader(body);
    while let Ok(ev) = reader.read_event() {
        match ev {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == name => return true,
            Event::Eof => return false,
            _ => {}
        }
    }
    false
}

fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

type SlotVisitor<'a> = dyn FnMut(&mut serde_json::Map<String, Value>) -> bool + 'a;

/// Visit every JSON object that is a host slot, in document order: values of
/// `HttpHostNotification` keys (object or array) and plain objects inside a
/// `HttpHostNotificationList` array. Returns true as soon as `f` does (stop).
fn visit_json_slots(v: &mut Value, f: &mut SlotVisitor<'_>) -> bool {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                let stop = match (k.as_str(), child) {
                    ("HttpHostNotification", Value::Object(m)) => f(m),
                    ("HttpHostNotification", Value::Array(items)) => {
                        items.iter_mut().any(|it| match it {
                            Value::Object(m) => f(m),
                            _ => false,
                        })
                    }
                    ("HttpHostNotificationList", Value::Array(items)) => {
                        items.iter_mut().any(|it| match it {
                            Value::Object(m) if !m.contains_key("HttpHostNotification") => f(m),
                            other => visit_json_slots(other, f),
                        })
                    }
                    (_, other) => visit_json_slots(other, f),
                };
                if stop {
                    return true;
                }
            }
            false
        }
        Value::Array(items) => items.iter_mut().any(|it| visit_json_slots(it, f)),
        _ => false,
    }
}

fn parse_host_list_json(body: &[u8]) -> Result<Vec<HostSlot>, DocError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
    let has_list =
        v.get("HttpHostNotificationList").is_some() || v.get("HttpHostNotification").is_some();
    let mut slots = Vec::new();
    visit_json_slots(&mut v, &mut |m| {
        let mut s = HostSlot::default();
        for (k, val) in m.iter() {
            s.set(k, json_text(val));
        }
        slots.push(s);
        false
    });
    if slots.is_empty() && !has_list {
        return Err(DocError::Missing("HttpHostNotificationList"));
    }
    Ok(slots)
}

/// What `device set` changes in one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotChange {
    pub address: Option<String>,
    pub port: Option<u16>,
    pub url: Option<String>,
    pub protocol: Option<String>,
    pub format: Option<String>,
}

impl SlotChange {
    /// True when nothing is to be changed.
    pub fn is_empty(&self) -> bool {
        self == &SlotChange::default()
    }

    /// The element assignments this change means, in schema order. An IP address selects
    /// `ipaddress` addressing (IPv6 goes to `ipv6Address`), anything else `hostname`.
    pub fn assignments(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(u) = &self.url {
            let u = if u.starts_with('/') {
                u.clone()
            } else {
                format!("/{u}")
            };
            out.push(("url", u));
        }
        if let Some(p) = &self.protocol {
            out.push(("protocolType", p.to_ascii_uppercase()));
        }
        if let Some(f) = &self.format {
            out.push(("parameterFormatType", f.to_ascii_uppercase()));
        }
        if let Some(a) = &self.address {
            match a.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => {
                    out.push(("addressingFormatType", "ipaddress".into()));
                    out.push(("ipAddress", ip.to_string()));
                }
                Ok(IpAddr::V6(ip)) => {
                    out.push(("addressingFormatType", "ipaddress".into()));
                    out.push(("ipv6Address", ip.to_string()));
                }
                Err(_) => {
                    out.push(("addressingFormatType", "hostname".into()));
                    out.push(("hostName", a.clone()));
                }
            }
        }
        if let Some(p) = self.port {
            out.push(("portNo", p.to_string()));
        }
        out.sort_by_key(|(n, _)| slot_rank(n).unwrap_or(usize::MAX));
        out
    }

    /// Apply to a parsed slot (what the device should show afterwards).
    pub fn apply(&self, slot: &mut HostSlot) {
        for (name, value) in self.assignments() {
            slot.set(name, value);
        }
    }
}

/// Edit slot `id` of a host list document in its own format and return the new document.
pub fn edit_host_list(body: &[u8], id: &str, change: &SlotChange) -> Result<Vec<u8>, DocError> {
    match sniff_format(body) {
        Some(ApiFormat::Xml) => edit_xml(body, id, change),
        Some(ApiFormat::Json) => edit_json(body, id, change),
        None => Err(DocError::NotXmlOrJson),
    }
}

struct XmlSlotSpan {
    id: String,
    /// (local name, start of the element, end of its start tag, start of its end tag, end)
    children: Vec<(String, usize, usize, usize, usize, bool)>,
    end_tag_start: usize,
}

fn xml_slot_spans(body: &[u8]) -> Result<Vec<XmlSlotSpan>, DocError> {
    let mut reader = Reader::from_reader(body);
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut cur: Option<XmlSlotSpan> = None;
    let mut child_start = (String::new(), 0usize, 0usize);
    let mut id_text = String::new();
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let ev = reader.read_event().map_err(xml_err)?;
        let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match ev {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if depth == 0 {
                    if name == "HttpHostNotification" {
                        depth = 1;
                        cur = Some(XmlSlotSpan {
                            id: String::new(),
                            children: Vec::new(),
                            end_tag_start: 0,
                        });
                    }
                } else {
                    depth = depth.saturating_add(1);
                    if depth == 2 {
                        child_start = (name, before, after);
                        id_text.clear();
                    }
                }
            }
            Event::Empty(e) if depth == 1 => {
                let name = e.local_name().as_ref().to_string();
                if let Some(c) = cur.as_mut() {
                    c.children.push((name, before, after, after, after, true));
                }
            }
            Event::Text(t) if depth == 2 && child_start.0 == "id" => {
                id_text.push_str(&t.xml10_content())
            }
            Event::End(_) => {
                if depth == 2 {
                    if let Some(c) = cur.as_mut() {
                        let (name, s, cs) = std::mem::take(&mut child_start);
                        if name == "id" {
                            c.id = id_text.trim().to_string();
                        }
                        c.children.push((name, s, cs, before, after, false));
                    }
                } else if depth == 1 {
                    if let Some(mut c) = cur.take() {
                        c.end_tag_start = before;
                        spans.push(c);
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(spans)
}

fn edit_xml(body: &[u8], id: &str, change: &SlotChange) -> Result<Vec<u8>, DocError> {
    let spans = xml_slot_spans(body)?;
    let slot = spans
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| DocError::NoSuchSlot(id.to_string()))?;
    // (start, end, replacement), non-overlapping.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (name, value) in change.assignments() {
        let escaped = quick_xml::escape::escape(value.as_str()).into_owned();
        if let Some((_, s, cs, es, e, empty)) = slot.children.iter().find(|c| c.0 == name) {
            if *empty {
                edits.push((*s, *e, format!("<{name}>{escaped}</{name}>")));
            } else {
                edits.push((*cs, *es, escaped));
            }
        } else {
            let rank = slot_rank(name).unwrap_or(usize::MAX);
            let at = slot
                .children
                .iter()
                .find(|c| slot_rank(&c.0).is_some_and(|r| r > rank))
                .map(|c| c.1)
                .unwrap_or(slot.end_tag_start);
            edits.push((at, at, format!("<{name}>{escaped}</{name}>")));
        }
    }
    // Apply from the end so earlier offsets stay valid; insertions at the same point keep order.
    edits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = Vec::with_capacity(body.len().saturating_add(256));
    let mut pos = 0usize;
    for (s, e, rep) in edits {
        let chunk = body
            .get(pos..s)
            .ok_or_else(|| DocError::Xml("edit offsets out of order".into()))?;
        out.extend_from_slice(chunk);
        out.extend_from_slice(rep.as_bytes());
        pos = e.max(pos);
    }
    out.extend_from_slice(body.get(pos..).unwrap_or_default());
    Ok(out)
}

fn edit_json(body: &[u8], id: &str, change: &SlotChange) -> Result<Vec<u8>, DocError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
    let found = visit_json_slots(&mut v, &mut |m| {
        let sid = m.get("id").map(json_text).unwrap_or_default();
        if sid != id {
            return false;
        }
        for (name, value) in change.assignments() {
            let new = match m.get(name) {
                Some(Value::Number(_)) | None if name == "portNo" => value
                    .parse::<u64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(value)),
                Some(Value::Number(_)) => value
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(value)),
                _ => Value::String(value),
            };
            m.insert(name.to_string(), new);
        }
        true
    });
    if !found {
        return Err(DocError::NoSuchSlot(id.to_string()));
    }
    serde_json::to_vec(&v).map_err(|e| DocError::Json(e.to_string()))
}

/// One field that differs between two readings of the host list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotDiff {
    pub id: String,
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// Field-by-field difference of two host lists, slots matched by id.
pub fn diff_slots(before: &[HostSlot], after: &[HostSlot]) -> Vec<SlotDiff> {
    let mut out = Vec::new();
    for a in after {
        let empty = HostSlot::default();
        let b = before.iter().find(|b| b.id == a.id).unwrap_or(&empty);
        for ((name, bv), (_, av)) in b.fields().iter().zip(a.fields().iter()) {
            if bv != av {
                out.push(SlotDiff {
                    id: a.id.clone(),
                    field: name,
                    before: bv.to_string(),
                    after: av.to_string(),
                });
            }
        }
    }
    out
}

/// The device's answer to a change: `ResponseStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ResponseStatus {
    pub request_url: String,
    pub status_code: Option<i64>,
    pub status_string: String,
    pub sub_status_code: String,
    /// JSON devices add `errorMsg`; XML devices sometimes `description`.
    pub error_msg: String,
}

impl ResponseStatus {
    /// statusCode 1 means OK (some firmware sends 0 or leaves it out with subStatusCode ok).
    pub fn is_ok(&self) -> bool {
        match self.status_code {
            Some(1) | Some(0) => true,
            Some(_) => false,
            None => self.sub_status_code.eq_ignore_ascii_case("ok"),
        }
    }

    /// Readable one-liner: `statusCode 4 (Invalid Operation), subStatusCode notSupport`.
    pub fn describe(&self) -> String {
        let code = self
            .status_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into());
        let mut s = format!("statusCode {code}");
        let text = if self.status_string.is_empty() {
            status_code_meaning(self.status_code.unwrap_or(-1)).to_string()
        } else {
            self.status_string.clone()
        };
        if !text.is_empty() {
            s.push_str(&format!(" ({text})"));
        }
        if !self.sub_status_code.is_empty() {
            s.push_str(&format!(", subStatusCode {}", self.sub_status_code));
        }
        if !self.error_msg.is_empty() {
            s.push_str(&format!(", {}", self.error_msg));
        }
        s
    }
}

/// ISAPI statusCode values.
pub fn status_code_meaning(code: i64) -> &'static str {
    match code {
        0 | 1 => "OK",
        2 => "Device Busy",
        3 => "Device Error",
        4 => "Invalid Operation",
        5 => "Invalid XML Format",
        6 => "Invalid XML Content",
        7 => "Reboot Required",
        _ => "",
    }
}

/// Flat list of (local name, text) of every leaf element / scalar JSON value.
fn leaves(body: &[u8]) -> Result<Vec<(String, String)>, DocError> {
    match sniff_format(body) {
        Some(ApiFormat::Xml) => {
            let mut reader = Reader::from_reader(body);
            let mut out = Vec::new();
            let mut stack: Vec<String> = Vec::new();
            let mut text = String::new();
            loop {
                match reader.read_event().map_err(xml_err)? {
                    Event::Start(e) => {
                        stack.push(e.local_name().as_ref().to_string());
                        text.clear();
                    }
                    Event::Text(t) => text.push_str(&t.xml10_content()),
                    Event::GeneralRef(r) => text.push_str(&text_of_ref(&r)),
                    Event::End(_) => {
                        if let Some(n) = stack.pop() {
                            if !text.trim().is_empty() {
                                out.push((n, text.trim().to_string()));
                            }
                        }
                        text.clear();
                    }
                    Event::Eof => break,
                    _ => {}
                }
            }
            Ok(out)
        }
        Some(ApiFormat::Json) => {
            let v: Value =
                serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
            let mut out = Vec::new();
            fn walk(v: &Value, key: &str, out: &mut Vec<(String, String)>) {
                match v {
                    Value::Object(m) => m.iter().for_each(|(k, c)| walk(c, k, out)),
                    Value::Array(a) => a.iter().for_each(|c| walk(c, key, out)),
                    other => out.push((key.to_string(), json_text(other))),
                }
            }
            walk(&v, "", &mut out);
            Ok(out)
        }
        None => Err(DocError::NotXmlOrJson),
    }
}

/// Parse a `ResponseStatus` (XML, flat JSON or `{"ResponseStatus": {...}}`). None when the body
/// is not one.
pub fn parse_response_status(body: &[u8]) -> Option<ResponseStatus> {
    let items = leaves(body).ok()?;
    let mut rs = ResponseStatus::default();
    let mut seen = false;
    for (k, v) in items {
        match k.as_str() {
            "requestURL" => rs.request_url = v,
            "statusCode" => {
                rs.status_code = v.trim().parse().ok();
                seen = true;
            }
            "statusString" => rs.status_string = v,
            "subStatusCode" => {
                rs.sub_status_code = v;
                seen = true;
            }
            "errorMsg" | "description" => rs.error_msg = v,
            _ => {}
        }
    }
    seen.then_some(rs)
}

/// The answer to `POST .../httpHosts/<id>/test`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TestResult {
    /// Error text when the device reports one (e.g. "connect server fail").
    pub error: String,
    /// Every leaf of the answer, for display.
    pub items: Vec<(String, String)>,
}

/// Parse an `HttpHostTestResult` leniently: `errorDescription` is the failure text when present
/// and not "ok".
pub fn parse_test_result(body: &[u8]) -> Result<TestResult, DocError> {
    let items = leaves(body)?;
    let error = items
        .iter()
        .find(|(k, v)| {
            (k == "errorDescription" || k == "errorMsg")
                && !v.eq_ignore_ascii_case("ok")
                && !v.is_empty()
        })
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Ok(TestResult { error, items })
}

/// One capability element: its path below the root, value and `opt`/`min`/`max`/`def`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CapItem {
    pub path: String,
    pub text: String,
    pub opt: String,
    pub min: String,
    pub max: String,
    pub def: String,
}

impl CapItem {
    fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }

    fn is_empty(&self) -> bool {
        self.text.is_empty()
            && self.opt.is_empty()
            && self.min.is_empty()
            && self.max.is_empty()
            && self.def.is_empty()
    }

    /// `HTTP, HTTPS`, `1-65535`, `up to 128`, or the text.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.text.is_empty() {
            parts.push(self.text.clone());
        }
        if !self.opt.is_empty() {
            parts.push(
                self.opt
                    .split(',')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        match (self.min.is_empty(), self.max.is_empty()) {
            (false, false) => parts.push(format!("{}-{}", self.min, self.max)),
            (true, false) => parts.push(format!("up to {}", self.max)),
            (false, true) => parts.push(format!("from {}", self.min)),
            _ => {}
        }
        if !self.def.is_empty() {
            parts.push(format!("(default {})", self.def));
        }
        parts.join(" ")
    }
}

/// Parse `HttpHostNotificationCap` (XML attributes or JSON `@opt`-style objects).
pub fn parse_caps(body: &[u8]) -> Result<Vec<CapItem>, DocError> {
    let mut items = Vec::new();
    match sniff_format(body) {
        Some(ApiFormat::Xml) => {
            let mut reader = Reader::from_reader(body);
            let mut stack: Vec<CapItem> = Vec::new();
            let mut root_seen = false;
            loop {
                let ev = reader.read_event().map_err(xml_err)?;
                let (start, empty) = match &ev {
                    Event::Start(e) => (Some(e.clone()), false),
                    Event::Empty(e) => (Some(e.clone()), true),
                    _ => (None, false),
                };
                if let Some(e) = start {
                    let name = e.local_name().as_ref().to_string();
                    if !root_seen {
                        root_seen = true;
                        if !empty {
                            stack.push(CapItem {
                                path: String::new(),
                                ..Default::default()
                            });
                        }
                        continue;
                    }
                    let parent = stack.last().map(|p| p.path.clone()).unwrap_or_default();
                    let path = if parent.is_empty() {
                        name
                    } else {
                        format!("{parent}.{name}")
                    };
                    let mut item = CapItem {
                        path,
                        ..Default::default()
                    };
                    for a in e.attributes().flatten() {
                        let v = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|c| c.into_owned())
                            .unwrap_or_default();
                        match a.key.local_name().as_ref() {
                            "opt" => item.opt = v,
                            "min" => item.min = v,
                            "max" => item.max = v,
                            "def" => item.def = v,
                            _ => {}
                        }
                    }
                    if empty {
                        if !item.is_empty() {
                            items.push(item);
                        }
                    } else {
                        stack.push(item);
                    }
                    continue;
                }
                match ev {
                    Event::Text(t) => {
                        if let Some(top) = stack.last_mut() {
                            top.text.push_str(t.xml10_content().trim());
                        }
                    }
                    Event::GeneralRef(r) => {
                        if let Some(top) = stack.last_mut() {
                            top.text.push_str(&text_of_ref(&r));
                        }
                    }
                    Event::End(_) => {
                        if let Some(item) = stack.pop() {
                            if !item.path.is_empty() && !item.is_empty() {
                                items.push(item);
                            }
                        }
                    }
                    Event::Eof => break,
                    _ => {}
                }
            }
            if !root_seen {
                return Err(DocError::Missing("HttpHostNotificationCap"));
            }
        }
        Some(ApiFormat::Json) => {
            let v: Value =
                serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
            let root = match &v {
                Value::Object(m) if m.len() == 1 => {
                    m.values().next().cloned().unwrap_or(Value::Null)
                }
                other => other.clone(),
            };
            fn walk(v: &Value, path: &str, out: &mut Vec<CapItem>) {
                match v {
                    Value::Object(m) => {
                        let mut item = CapItem {
                            path: path.to_string(),
                            ..Default::default()
                        };
                        let mut attrs = false;
                        for (k, c) in m {
                            let key = k.trim_start_matches('@');
                            match key {
                                "opt" | "min" | "max" | "def" if !matches!(c, Value::Object(_)) => {
                                    attrs = true;
                                    let t = match c {
                                        Value::Array(a) => {
                                            a.iter().map(json_text).collect::<Vec<_>>().join(",")
                                        }
                                        o => json_text(o),
                                    };
                                    match key {
                                        "opt" => item.opt = t,
                                        "min" => item.min = t,
                                        "max" => item.max = t,
                                        _ => item.def = t,
                                    }
                                }
                                _ => {
                                    let p = if path.is_empty() {
                                        k.clone()
                                    } else {
                                        format!("{path}.{k}")
                                    };
                                    walk(c, &p, out);
                                }
                            }
                        }
                        if attrs && !path.is_empty() {
                            out.push(item);
                        }
                    }
                    Value::Array(a) => {
                        let t = a.iter().map(json_text).collect::<Vec<_>>().join(",");
                        out.push(CapItem {
                            path: path.to_string(),
                            opt: t,
                            ..Default::default()
                        });
                    }
                    other => out.push(CapItem {
                        path: path.to_string(),
                        text: json_text(other),
                        ..Default::default()
                    }),
                }
            }
            walk(&root, "", &mut items);
            items.sort_by(|a, b| a.path.cmp(&b.path));
        }
        None => return Err(DocError::NotXmlOrJson),
    }
    Ok(items)
}

/// Known capability names, with the label shown for them (several spellings per model).
const CAP_LABELS: [(&str, &[&str]); 11] = [
    ("Host slots", &["hostNumber"]),
    ("Protocols", &["protocolType"]),
    ("Formats (parameterFormatType)", &["parameterFormatType"]),
    ("Address types", &["addressingFormatType"]),
    ("IP versions", &["ipAddress"]),
    ("Port range", &["portNo"]),
    ("URL length", &["url", "urlLen"]),
    ("Authentication methods", &["httpAuthenticationMethod"]),
    (
        "Picture upload types",
        &["uploadImagesDataType", "picUploadType", "uploadPicType"],
    ),
    ("Resend after break (httpBroken)", &["httpBroken"]),
    (
        "User name / password length",
        &["userName", "userNameLen", "password", "passwordLen"],
    ),
];

/// Readable summary: (label, value) rows for the known capabilities, then every other item by
/// its path.
pub fn caps_summary(items: &[CapItem]) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut used = vec![false; items.len()];
    for (label, names) in CAP_LABELS {
        let mut vals = Vec::new();
        for (i, it) in items.iter().enumerate() {
            // Only top-level (or one level down in JSON wrappers) items carry these names.
            if names.contains(&it.name()) && !it.path.contains('.') {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                let d = it.describe();
                if label.starts_with("User name") {
                    vals.push(format!("{} {}", it.name(), d));
                } else {
                    vals.push(d);
                }
            }
        }
        if !vals.is_empty() {
            rows.push((label.to_string(), vals.join("; ")));
        }
    }
    for (i, it) in items.iter().enumerate() {
        if !used.get(i).copied().unwrap_or(true) {
            rows.push((it.path.clone(), it.describe()));
        }
    }
    rows
}

fn xml_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Render a host list as a device does (used by the simulated device).
pub fn render_host_list(slots: &[HostSlot], format: ApiFormat) -> Vec<u8> {
    match format {
        ApiFormat::Xml => {
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HttpHostNotificationList version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n"
            );
            for slot in slots {
                s.push_str("<HttpHostNotification>\n");
                for (name, value) in slot.fields() {
                    if value.is_empty() && matches!(name, "hostName" | "ipv6Address") {
                        continue;
                    }
                    s.push_str(&format!("<{name}>{}</{name}>\n", xml_escape(value)));
                }
                s.push_str("</HttpHostNotification>\n");
            }
            s.push_str("</HttpHostNotificationList>\n");
            s.into_bytes()
        }
        ApiFormat::Json => {
            let list: Vec<Value> = slots
                .iter()
                .map(|slot| {
                    let mut m = serde_json::Map::new();
                    for (name, value) in slot.fields() {
                        if value.is_empty() && matches!(name, "hostName" | "ipv6Address") {
                            continue;
                        }
                        let v = if name == "portNo" {
                            value
                                .parse::<u64>()
                                .map(Value::from)
                                .unwrap_or_else(|_| Value::from(value))
                        } else {
                            Value::from(value)
                        };
                        m.insert(name.to_string(), v);
                    }
                    serde_json::json!({ "HttpHostNotification": Value::Object(m) })
                })
                .collect();
            serde_json::to_vec_pretty(&serde_json::json!({ "HttpHostNotificationList": list }))
                .unwrap_or_default()
        }
    }
}

/// Render one slot as a lone `HttpHostNotification` document (`GET/PUT .../httpHosts/<id>`,
/// and the body of a `/test` request).
pub fn render_slot(slot: &HostSlot, format: ApiFormat) -> Vec<u8> {
    match format {
        ApiFormat::Xml => {
            let mut s = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HttpHostNotification version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n");
            for (name, value) in slot.fields() {
                if value.is_empty() && matches!(name, "hostName" | "ipv6Address") {
                    continue;
                }
                s.push_str(&format!("<{name}>{}</{name}>\n", xml_escape(value)));
            }
            s.push_str("</HttpHostNotification>\n");
            s.into_bytes()
        }
        ApiFormat::Json => {
            let list = render_host_list(std::slice::from_ref(slot), ApiFormat::Json);
            let v: Value = serde_json::from_slice(&list).unwrap_or(Value::Null);
            let one = v
                .get("HttpHostNotificationList")
                .and_then(|l| l.get(0))
                .cloned()
                .unwrap_or(Value::Null);
            serde_json::to_vec(&one).unwrap_or_default()
        }
    }
}

/// Render a `ResponseStatus` as a device does (used by the simulated device).
pub fn render_response_status(url: &str, code: i64, sub: &str, format: ApiFormat) -> Vec<u8> {
    let text = status_code_meaning(code);
    match format {
        ApiFormat::Xml => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ResponseStatus version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n\
             <requestURL>{}</requestURL>\n<statusCode>{code}</statusCode>\n<statusString>{text}</statusString>\n\
             <subStatusCode>{}</subStatusCode>\n</ResponseStatus>\n",
            xml_escape(url),
            xml_escape(sub)
        )
        .into_bytes(),
        ApiFormat::Json => {
            let mut v = serde_json::json!({
                "requestURL": url, "statusCode": code, "statusString": text, "subStatusCode": sub,
            });
            if code != 1 {
                v["errorCode"] = Value::from(code.saturating_mul(0x100000).saturating_add(1));
                v["errorMsg"] = Value::from(sub);
            }
            serde_json::to_vec(&v).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML_LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<HttpHostNotificationList version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<HttpHostNotification>
<id>1</id>
<url>/alarm</url>
<protocolType>HTTP</protocolType>
<parameterFormatType>XML</parameterFormatType>
<addressingFormatType>ipaddress</addressingFormatType>
<ipAddress>192.0.2.10</ipAddress>
<portNo>8080</portNo>
<userName></userName>
<httpAuthenticationMethod>none</httpAuthenticationMethod>
<SubscribeEvent><heartbeat>30</heartbeat></SubscribeEvent>
</HttpHostNotification>
<HttpHostNotification>
<id>2</id>
<url>/</url>
<protocolType>HTTP</protocolType>
<ipAddress>0.0.0.0</ipAddress>
<portNo>80</portNo>
<userName/>
</HttpHostNotification>
</HttpHostNotificationList>"#;

    const JSON_LIST: &str = r#"{"HttpHostNotificationList":[{"HttpHostNotification":{"id":"1","url":"/","protocolType":"HTTP","parameterFormatType":"JSON","addressingFormatType":"ipaddress","ipAddress":"0.0.0.0","portNo":80,"httpAuthenticationMethod":"none","eventMode":"all"}}]}"#;

    #[test]
    fn parses_xml_list_by_local_name() {
        let slots = parse_host_list(XML_LIST.as_bytes()).unwrap();
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0].id, "1");
        assert_eq!(slots[0].url, "/alarm");
        assert_eq!(slots[0].address(), "192.0.2.10");
        assert_eq!(slots[0].port, "8080");
        assert_eq!(slots[0].auth, "none");
        assert!(!slots[0].is_unused());
        assert_eq!(slots[1].id, "2");
        assert!(slots[1].is_unused());
        assert_eq!(slots[1].user_name, "");
    }

    #[test]
    fn parses_json_list_variants() {
        let table: [(&str, usize, &str); 4] = [
            (JSON_LIST, 1, "80"),
            (
                r#"{"HttpHostNotificationList":{"HttpHostNotification":[{"id":1,"portNo":"81"},{"id":2,"portNo":82}]}}"#,
                2,
                "81",
            ),
            (
                r#"{"HttpHostNotificationList":[{"id":"1","portNo":83}]}"#,
                1,
                "83",
            ),
            (
                r#"{"HttpHostNotification":{"id":"1","portNo":84}}"#,
                1,
                "84",
            ),
        ];
        for (doc, n, port) in table {
            let slots = parse_host_list(doc.as_bytes()).unwrap();
            assert_eq!(slots.len(), n, "{doc}");
            assert_eq!(slots[0].port, port, "{doc}");
            assert_eq!(slots[0].id, "1", "{doc}");
        }
    }

    #[test]
    fn rejects_non_documents() {
        assert_eq!(parse_host_list(b"hello"), Err(DocError::NotXmlOrJson));
        assert_eq!(
            parse_host_list(b"<html><body>login</body></html>"),
            Err(DocError::Missing("HttpHostNotificationList"))
        );
        assert!(matches!(
            parse_host_list(b"{\"a\":"),
            Err(DocError::Json(_))
        ));
    }

    #[test]
    fn xml_edit_replaces_values_and_keeps_everything_else() {
        let change = SlotChange {
            address: Some("198.51.100.7".into()),
            port: Some(9000),
            ..Default::default()
        };
        let out = edit_host_list(XML_LIST.as_bytes(), "1", &change).unwrap();
        let expected = XML_LIST
            .replace(
                "<ipAddress>192.0.2.10</ipAddress>",
                "<ipAddress>198.51.100.7</ipAddress>",
            )
            .replace("<portNo>8080</portNo>", "<portNo>9000</portNo>");
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn xml_edit_inserts_missing_elements_in_schema_order() {
        let change = SlotChange {
            address: Some("alarms.example.net".into()),
            format: Some("json".into()),
            ..Default::default()
        };
        let out =
            String::from_utf8(edit_host_list(XML_LIST.as_bytes(), "2", &change).unwrap()).unwrap();
        // Slot 2 has no parameterFormatType, addressingFormatType or hostName: all go before
        // <ipAddress>, in schema order.
        let expected_slot2 = "<protocolType>HTTP</protocolType>\n<parameterFormatType>JSON</parameterFormatType><addressingFormatType>hostname</addressingFormatType><hostName>alarms.example.net</hostName><ipAddress>0.0.0.0</ipAddress>";
        assert!(out.contains(expected_slot2), "{out}");
        // Slot 1 untouched.
        assert!(out.contains("<ipAddress>192.0.2.10</ipAddress>"));
        let slots = parse_host_list(out.as_bytes()).unwrap();
        assert_eq!(slots[1].address(), "alarms.example.net");
        assert_eq!(slots[1].format, "JSON");
    }

    #[test]
    fn xml_edit_expands_empty_element_and_escapes() {
        let doc = "<HttpHostNotificationList><HttpHostNotification><id>3</id><url/><portNo>80</portNo></HttpHostNotification></HttpHostNotificationList>";
        let change = SlotChange {
            url: Some("in?a=1&b=2".into()),
            ..Default::default()
        };
        let out = String::from_utf8(edit_host_list(doc.as_bytes(), "3", &change).unwrap()).unwrap();
        assert_eq!(
            out,
            "<HttpHostNotificationList><HttpHostNotification><id>3</id><url>/in?a=1&amp;b=2</url><portNo>80</portNo></HttpHostNotification></HttpHostNotificationList>"
        );
    }

    #[test]
    fn edit_unknown_slot_is_an_error() {
        let change = SlotChange {
            port: Some(1),
            ..Default::default()
        };
        assert_eq!(
            edit_host_list(XML_LIST.as_bytes(), "9", &change),
            Err(DocError::NoSuchSlot("9".into()))
        );
        assert_eq!(
            edit_host_list(JSON_LIST.as_bytes(), "9", &change),
            Err(DocError::NoSuchSlot("9".into()))
        );
    }

    #[test]
    fn json_edit_keeps_types_and_unknown_keys() {
        let change = SlotChange {
            address: Some("127.0.0.1".into()),
            port: Some(8099),
            url: Some("push".into()),
            protocol: Some("https".into()),
            ..Default::default()
        };
        let out = edit_host_list(JSON_LIST.as_bytes(), "1", &change).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let slot = &v["HttpHostNotificationList"][0]["HttpHostNotification"];
        assert_eq!(slot["portNo"], Value::from(8099));
        assert_eq!(slot["ipAddress"], Value::from("127.0.0.1"));
        assert_eq!(slot["url"], Value::from("/push"));
        assert_eq!(slot["protocolType"], Value::from("HTTPS"));
        assert_eq!(slot["eventMode"], Value::from("all"));
        assert_eq!(slot["parameterFormatType"], Value::from("JSON"));
    }

    #[test]
    fn ipv6_address_goes_to_ipv6_element() {
        let change = SlotChange {
            address: Some("[2001:db8::5]".into()),
            ..Default::default()
        };
        assert_eq!(
            change.assignments(),
            vec![
                ("addressingFormatType", "ipaddress".to_string()),
                ("ipv6Address", "2001:db8::5".to_string())
            ]
        );
    }

    #[test]
    fn diff_lists_changed_fields() {
        let before = parse_host_list(XML_LIST.as_bytes()).unwrap();
        let mut after = before.clone();
        after[0].port = "9000".into();
        after[1].url = "/x".into();
        let d = diff_slots(&before, &after);
        assert_eq!(
            d,
            vec![
                SlotDiff {
                    id: "1".into(),
                    field: "portNo",
                    before: "8080".into(),
                    after: "9000".into()
                },
                SlotDiff {
                    id: "2".into(),
                    field: "url",
                    before: "/".into(),
                    after: "/x".into()
                },
            ]
        );
    }

    #[test]
    fn response_status_xml_and_json() {
        let xml = r#"<ResponseStatus version="2.0" xmlns="http://www.std-cgi.com/ver20/XMLSchema">
<requestURL>/ISAPI/Event/notification/httpHosts</requestURL><statusCode>6</statusCode>
<statusString>Invalid Content</statusString><subStatusCode>badParameters</subStatusCode></ResponseStatus>"#;
        let rs = parse_response_status(xml.as_bytes()).unwrap();
        assert_eq!(rs.status_code, Some(6));
        assert!(!rs.is_ok());
        assert_eq!(
            rs.describe(),
            "statusCode 6 (Invalid Content), subStatusCode badParameters"
        );
        let json = r#"{"requestURL":"/x","statusCode":1,"statusString":"OK","subStatusCode":"ok"}"#;
        let rs = parse_response_status(json.as_bytes()).unwrap();
        assert!(rs.is_ok());
        let wrapped = r#"{"ResponseStatus":{"statusCode":4,"subStatusCode":"notSupport","errorMsg":"notSupport"}}"#;
        let rs = parse_response_status(wrapped.as_bytes()).unwrap();
        assert_eq!(
            rs.describe(),
            "statusCode 4 (Invalid Operation), subStatusCode notSupport, notSupport"
        );
        assert_eq!(parse_response_status(XML_LIST.as_bytes()), None);
    }

    #[test]
    fn caps_summary_from_xml_attributes() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<HttpHostNotificationCap version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<hostNumber>2</hostNumber>
<urlLen max="128"/>
<protocolType opt="HTTP,HTTPS"/>
<parameterFormatType opt="XML,JSON"/>
<addressingFormatType opt="ipaddress,hostname"/>
<ipAddress opt="ipv4,ipv6"/>
<portNo min="1" max="65535"/>
<httpAuthenticationMethod opt="none,MD5digest"/>
<uploadImagesDataType opt="URL,binary"/>
<httpBroken opt="true,false" def="true"/>
<SubscribeEventCap><heartbeat min="1" max="30"/></SubscribeEventCap>
</HttpHostNotificationCap>"#;
        let rows = caps_summary(&parse_caps(xml.as_bytes()).unwrap());
        let get = |l: &str| {
            rows.iter()
                .find(|(k, _)| k == l)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert_eq!(get("Host slots"), "2");
        assert_eq!(get("Protocols"), "HTTP, HTTPS");
        assert_eq!(get("Formats (parameterFormatType)"), "XML, JSON");
        assert_eq!(get("Port range"), "1-65535");
        assert_eq!(get("URL length"), "up to 128");
        assert_eq!(get("Authentication methods"), "none, MD5digest");
        assert_eq!(get("Picture upload types"), "URL, binary");
        assert_eq!(
            get("Resend after break (httpBroken)"),
            "true, false (default true)"
        );
        assert_eq!(get("SubscribeEventCap.heartbeat"), "1-30");
    }

    #[test]
    fn caps_from_json() {
        let json = r#"{"HttpHostNotificationCap":{"hostNumber":1,"protocolType":{"@opt":["HTTP","HTTPS"]},"portNo":{"@min":1,"@max":65535},"parameterFormatType":{"@opt":"JSON"}}}"#;
        let rows = caps_summary(&parse_caps(json.as_bytes()).unwrap());
        assert!(
            rows.contains(&("Host slots".into(), "1".into())),
            "{rows:?}"
        );
        assert!(
            rows.contains(&("Protocols".into(), "HTTP, HTTPS".into())),
            "{rows:?}"
        );
        assert!(
            rows.contains(&("Port range".into(), "1-65535".into())),
            "{rows:?}"
        );
        assert!(
            rows.contains(&("Formats (parameterFormatType)".into(), "JSON".into())),
            "{rows:?}"
        );
    }

    #[test]
    fn test_result_error_text() {
        let xml = "<HttpHostTestResult><errorDescription>connect server fail</errorDescription></HttpHostTestResult>";
        assert_eq!(
            parse_test_result(xml.as_bytes()).unwrap().error,
            "connect server fail"
        );
        let ok = "<HttpHostTestResult><errorDescription>ok</errorDescription></HttpHostTestResult>";
        assert_eq!(parse_test_result(ok.as_bytes()).unwrap().error, "");
    }

    #[test]
    fn render_round_trips() {
        let slots = parse_host_list(XML_LIST.as_bytes()).unwrap();
        for f in [ApiFormat::Xml, ApiFormat::Json] {
            let doc = render_host_list(&slots, f);
            assert_eq!(sniff_format(&doc), Some(f));
            assert_eq!(parse_host_list(&doc).unwrap(), slots);
        }
        for f in [ApiFormat::Xml, ApiFormat::Json] {
            let one = render_slot(&slots[1], f);
            assert_eq!(parse_host_list(&one).unwrap(), vec![slots[1].clone()]);
        }
        let rs =
            parse_response_status(&render_response_status("/a", 1, "ok", ApiFormat::Json)).unwrap();
        assert!(rs.is_ok());
        let rs = parse_response_status(&render_response_status(
            "/a",
            4,
            "notSupport",
            ApiFormat::Xml,
        ))
        .unwrap();
        assert_eq!(
            (rs.status_code, rs.sub_status_code.as_str()),
            (Some(4), "notSupport")
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics_on_arbitrary_answers(body in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = parse_host_list(&body);
                let _ = parse_caps(&body);
                let _ = parse_response_status(&body);
                let _ = parse_test_result(&body);
                let change = SlotChange { port: Some(1), address: Some("h".into()), ..Default::default() };
                let _ = edit_host_list(&body, "1", &change);
            }

            #[test]
            fn edit_then_parse_shows_the_change(port in 1u16.., last in 0u8.., json in any::<bool>(), id in 1usize..3) {
                let slots: Vec<HostSlot> = (1..=2).map(|i| HostSlot {
                    id: i.to_string(), url: "/".into(), protocol: "HTTP".into(), format: "XML".into(),
                    addressing: "ipaddress".into(), ip_address: "0.0.0.0".into(), port: "80".into(),
                    auth: "none".into(), ..Default::default()
                }).collect();
                let f = if json { ApiFormat::Json } else { ApiFormat::Xml };
                let doc = render_host_list(&slots, f);
                let addr = format!("198.51.100.{last}");
                let change = SlotChange { port: Some(port), address: Some(addr.clone()), ..Default::default() };
                let out = edit_host_list(&doc, &id.to_string(), &change).unwrap();
                let after = parse_host_list(&out).unwrap();
                prop_assert_eq!(&after[id - 1].ip_address, &addr);
                prop_assert_eq!(&after[id - 1].port, &port.to_string());
                // The other slot is untouched.
                prop_assert_eq!(&after[2 - id], &slots[2 - id]);
            }
        }
    }
}
