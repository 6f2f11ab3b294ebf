//! Pure ISAPI alarm-host documents: `HttpHostNotificationCap`, `HttpHostNotificationList`,
//! `ResponseStatus` and `HttpHostTestResult`, in XML or JSON.
//!
//! Parsing matches elements by local name (namespaces vary by vendor and firmware). Editing a
//! slot splices the new values into the device's own document, so every element we do not know
//! (subscriptions, OEM extensions) goes back to the device untouched.
//!
//! One file per concern: [`parse`] reads host lists, [`edit`] changes a slot and compares two
//! readings, [`status`] reads the device's answers (`ResponseStatus`, test results), [`caps`]
//! reads the capabilities, [`render`] writes documents as a device does. This file holds the
//! types they share and the document helpers they all use.

mod caps;
mod edit;
mod parse;
mod render;
mod status;
#[cfg(test)]
mod tests;

pub use caps::*;
pub use edit::*;
pub use parse::*;
pub use render::*;
pub use status::*;

use std::net::IpAddr;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;
use serde_json::Value;

use crate::isapi::Syntax;

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
/// Guess the format from the first significant byte (devices' content types are unreliable):
/// the one "XML or JSON?" sniff of [`crate::isapi::sniff_syntax`].
pub fn sniff_format(body: &[u8]) -> Option<ApiFormat> {
    match crate::isapi::sniff_syntax(body)? {
        Syntax::Xml => Some(ApiFormat::Xml),
        Syntax::Json => Some(ApiFormat::Json),
        Syntax::Other => None,
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
