//! `EventNotificationAlert` decoding from XML (quick-xml, lenient) and JSON (serde_json).
//!
//! Elements are matched by local name, never by namespace. Bodies that are not well formed
//! (a raw `&`, a missing close tag) are decoded leniently and still yield the fields that can be
//! read, with a warning.

use serde::Serialize;

/// One element of the event, kept as a tree for display (ANPR, detection regions,
/// access-control fields ...). JSON objects map to the same shape: keys are names, scalars text,
/// arrays repeat the name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Node {
    /// Local name (namespace prefix removed).
    pub name: String,
    /// Trimmed text content, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
}

/// The fields engineers look at first, plus the whole tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventInfo {
    /// "xml" or "json".
    pub format: &'static str,
    /// eventType; for `duration` events the relationEvent under DurationList is used when present.
    pub event_type: Option<String>,
    pub event_state: Option<String>,
    /// ipAddress, or ipv6Address.
    pub device_ip: Option<String>,
    pub port: Option<String>,
    pub protocol: Option<String>,
    pub mac: Option<String>,
    /// channelID, or dynChannelID.
    pub channel: Option<String>,
    pub date_time: Option<String>,
    pub active_post_count: Option<String>,
    pub description: Option<String>,
    pub channel_name: Option<String>,
    /// ANPR licensePlate when present.
    pub plate: Option<String>,
    /// JSON deviceID, or serial number on old PSIA bodies.
    pub device_id: Option<String>,
    /// Problems met while decoding leniently (e.g. "not well-formed XML at byte 312: ...").
    pub warnings: Vec<String>,
    /// The root element (XML) or a synthetic root named "json".
    pub tree: Node,
}

/// Why a body is not an event at all (empty, not XML or JSON, or XML/JSON with no event fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decode an event body. `content_type` is a hint only: the body is sniffed (first non-space byte
/// `<` or `{`) when the type is missing or misleading (`text/plain`).
pub fn decode_event(body: &[u8], content_type: Option<&str>) -> Result<EventInfo, DecodeError> {
    todo!("isapi helper")
}
