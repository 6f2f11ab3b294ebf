//! `EventNotificationAlert` decoding from XML (quick-xml, lenient) and JSON (serde_json).
//!
//! Elements are matched by local name, never by namespace. Bodies that are not well formed
//! (a raw `&`, a missing close tag) are decoded leniently and still yield the fields that can be
//! read, with a warning.
//!
//! This file holds the types and the format switch; `event/fields.rs` maps names to fields for
//! both formats, `event/xml.rs` and `event/json.rs` read each format into the same [`Node`] tree.

mod fields;
mod json;
mod xml;

use serde::Serialize;

use super::sniff::{sniff_syntax, Syntax, UTF8_BOM};
use json::decode_json;
use xml::decode_xml;
#[cfg(test)]
use {json::scan_json_pairs, xml::scan_xml_pairs, xml::unescape_lenient};

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
    /// eventType; for `duration` events the relationEvent under DurationList is used when present
    /// (and [`EventInfo::duration`] says so).
    pub event_type: Option<String>,
    /// The body's eventType was `duration`: a continuing alarm of `event_type` (its
    /// `relationEvent`), not a new one. Real cameras send these while an alarm lasts.
    pub duration: bool,
    pub event_state: Option<String>,
    /// ipAddress, or ipv6Address.
    pub device_ip: Option<String>,
    pub port: Option<String>,
    pub protocol: Option<String>,
    pub mac: Option<String>,
    /// channelID, or dynChannelID.
    pub channel: Option<String>,
    /// dynChannelID when the body has one: on a recorder, the camera the event belongs to (the
    /// raw channelID may count analogue inputs first).
    pub dyn_channel: Option<String>,
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
/// Callers and tests match on the kind; the text (`Display`) is what reports show as
/// `body_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not a byte.
    #[error("empty body")]
    Empty,
    /// Only white space (and perhaps a BOM).
    #[error("body holds only whitespace ({bytes} bytes)")]
    OnlyWhitespace { bytes: usize },
    /// The first significant byte starts neither XML nor JSON.
    #[error(
        "body is neither XML nor JSON (Content-Type {}, starts with \"{start}\")",
        content_type.as_deref().unwrap_or("missing")
    )]
    NotXmlOrJson {
        /// The Content-Type sent, if any.
        content_type: Option<String>,
        /// The body's first bytes, printable ASCII kept, the rest escaped.
        start: String,
    },
    /// XML so broken that no element could be read; the parser's first error.
    #[error("not well-formed XML at byte {offset}: {reason} (no element could be read)")]
    MalformedXml {
        /// Offset of the error in the body, from its first byte.
        offset: usize,
        reason: String,
    },
    /// XML text without a single element.
    #[error("XML body without any element")]
    NoXmlElement,
    /// Not valid JSON, and no event field could be found in it.
    #[error("not valid JSON: {reason}")]
    InvalidJson { reason: String },
    /// Valid JSON without any event field.
    #[error("JSON body with no event fields")]
    NoJsonFields,
}

/// How much of the body's tree an [`EventInfo`] keeps.
///
/// Why: the headless reports (`--json`, `--text`) read only the fields, never the tree; building
/// and dropping a node (two small allocations) per element was a fifth of a small-event replay's
/// CPU. The TUI and the listener show the tree and keep it whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeDetail {
    /// Every element (the detail pane, the listener's store).
    #[default]
    Full,
    /// Only the elements the fields are read from: the fields, warnings and errors are exactly
    /// those of [`TreeDetail::Full`]; `tree` holds the root and those elements only.
    FieldsOnly,
}

/// Deepest element nesting kept in the tree; deeper elements are skipped (with a warning).
pub const MAX_TREE_DEPTH: usize = 64;
/// Most elements kept in the tree; further ones are skipped (with a warning).
pub const MAX_TREE_NODES: usize = 10_000;
/// Most warnings kept per event (a hostile body could otherwise produce one per byte).
const MAX_WARNINGS: usize = 32;

/// Decode an event body. `content_type` is a hint only: the body is sniffed (first non-space byte
/// `<` or `{`) when the type is missing or misleading (`text/plain`).
pub fn decode_event(body: &[u8], content_type: Option<&str>) -> Result<EventInfo, DecodeError> {
    decode_event_with(body, content_type, TreeDetail::Full)
}

/// [`decode_event`] keeping the tree to `detail`.
pub fn decode_event_with(
    body: &[u8],
    content_type: Option<&str>,
    detail: TreeDetail,
) -> Result<EventInfo, DecodeError> {
    let rest = body.strip_prefix(&UTF8_BOM).unwrap_or(body);
    let bom = body.len() - rest.len();
    match sniff_syntax(body) {
        None if body.is_empty() => Err(DecodeError::Empty),
        None => Err(DecodeError::OnlyWhitespace { bytes: body.len() }),
        Some(Syntax::Xml) => decode_xml(rest, bom, detail),
        Some(Syntax::Json) => decode_json(rest, detail),
        Some(Syntax::Other) => Err(DecodeError::NotXmlOrJson {
            content_type: content_type.map(str::to_string),
            start: preview(rest, 32),
        }),
    }
}

/// The first `max` bytes, printable ASCII kept, the rest escaped (for messages).
fn preview(data: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in data.iter().take(max) {
        if b.is_ascii_graphic() || b == b' ' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if data.len() > max {
        s.push_str("...");
    }
    s
}

/// Add a warning, up to [`MAX_WARNINGS`] and one that says the rest were left out.
fn push_warning(warnings: &mut Vec<String>, w: String) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(w);
    } else if warnings.len() == MAX_WARNINGS {
        warnings.push("further warnings omitted".to_string());
    }
}

impl Node {
    /// First direct child with this local name (ASCII case-insensitive).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Non-empty text of the first direct child with this name that has some.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case(name))
            .find_map(|c| c.text.as_deref().filter(|t| !t.is_empty()))
    }

    /// Non-empty text of the first descendant (depth first, document order) with this name.
    /// Iterative: the tree depth is bounded, but no recursion is needed either.
    pub fn find_text(&self, name: &str) -> Option<&str> {
        let mut stack: Vec<&Node> = self.children.iter().rev().collect();
        while let Some(n) = stack.pop() {
            if n.name.eq_ignore_ascii_case(name) {
                if let Some(t) = n.text.as_deref().filter(|t| !t.is_empty()) {
                    return Some(t);
                }
            }
            stack.extend(n.children.iter().rev());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.168.1.64</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:12:34:56</macAddress>
<channelID>1</channelID>
<dateTime>2024-03-05T14:22:07+08:00</dateTime>
<activePostCount>3</activePostCount>
<eventType>VMD</eventType>
<eventState>active</eventState>
<eventDescription>Motion alarm</eventDescription>
<channelName>Gate</channelName>
</EventNotificationAlert>
"#;

    fn xml(body: &str) -> EventInfo {
        match decode_event(body.as_bytes(), Some("application/xml")) {
            Ok(e) => e,
            Err(e) => panic!("decode failed: {e}"),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn vmd_with_namespace() {
        let e = xml(VMD);
        assert_eq!(e.format, "xml");
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        assert_eq!(e.device_ip, s("192.168.1.64"));
        assert_eq!(e.port, s("80"));
        assert_eq!(e.protocol, s("HTTP"));
        assert_eq!(e.mac, s("44:19:b6:12:34:56"));
        assert_eq!(e.channel, s("1"));
        assert_eq!(e.date_time, s("2024-03-05T14:22:07+08:00"));
        assert_eq!(e.active_post_count, s("3"));
        assert_eq!(e.description, s("Motion alarm"));
        assert_eq!(e.channel_name, s("Gate"));
        assert_eq!(e.plate, None);
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        assert_eq!(e.tree.name, "EventNotificationAlert");
        assert_eq!(e.tree.children.len(), 11);
        assert_eq!(e.tree.text, None);
    }

    #[test]
    fn namespace_prefixes_and_variants_are_dropped() {
        for ns in [
            "http://www.hikvision.com/ver10/XMLSchema",
            "http://www.isapi.org/ver20/XMLSchema",
            "urn:psialliance-org",
            "http://www.oem-vendor.example/ver20/XMLSchema",
        ] {
            let body = format!(
                "<h:EventNotificationAlert xmlns:h=\"{ns}\"><h:eventType>IO</h:eventType>\
                 <h:eventState>inactive</h:eventState></h:EventNotificationAlert>"
            );
            let e = xml(&body);
            assert_eq!(e.event_type, s("IO"), "{ns}");
            assert_eq!(e.event_state, s("inactive"));
            assert_eq!(e.tree.name, "EventNotificationAlert");
            assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        }
    }

    #[test]
    fn linedetection_keeps_region_tree() {
        let body = r#"<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>10.0.0.7</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>
<macAddress>bc:ad:28:aa:bb:cc</macAddress><channelID>2</channelID>
<dateTime>2024-03-05T14:22:07+01:00</dateTime><activePostCount>1</activePostCount>
<eventType>linedetection</eventType><eventState>active</eventState>
<eventDescription>linedetection alarm</eventDescription>
<DetectionRegionList>
  <DetectionRegionEntry>
    <regionID>1</regionID><sensitivityLevel>50</sensitivityLevel>
    <RegionCoordinatesList>
      <RegionCoordinates><positionX>120</positionX><positionY>330</positionY></RegionCoordinates>
      <RegionCoordinates><positionX>870</positionX><positionY>310</positionY></RegionCoordinates>
    </RegionCoordinatesList>
    <TargetRect><X>0.41</X><Y>0.22</Y><width>0.08</width><height>0.31</height></TargetRect>
  </DetectionRegionEntry>
</DetectionRegionList>
</EventNotificationAlert>"#;
        let e = xml(body);
        assert_eq!(e.event_type, s("linedetection"));
        assert_eq!(e.channel, s("2"));
        let list = e
            .tree
            .child("DetectionRegionList")
            .map(|l| l.children.len());
        assert_eq!(list, Some(1));
        let entry = e
            .tree
            .child("DetectionRegionList")
            .and_then(|l| l.child("DetectionRegionEntry"));
        let Some(entry) = entry else {
            panic!("no DetectionRegionEntry: {:?}", e.tree)
        };
        assert_eq!(entry.child_text("regionID"), Some("1"));
        let coords = entry
            .child("RegionCoordinatesList")
            .map(|c| c.children.len());
        assert_eq!(coords, Some(2));
        assert_eq!(e.tree.find_text("positionX"), Some("120"));
        assert_eq!(e.tree.find_text("height"), Some("0.31"));
    }

    #[test]
    fn anpr_plate_from_descendant() {
        let body = r#"<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>172.16.0.9</ipAddress><channelID>1</channelID><eventType>ANPR</eventType>
<eventState>active</eventState>
<ANPR><country>3</country><licensePlate>AB123CD</licensePlate><line>1</line>
<direction>forward</direction><confidenceLevel>98</confidenceLevel></ANPR>
</EventNotificationAlert>"#;
        let e = xml(body);
        assert_eq!(e.event_type, s("ANPR"));
        assert_eq!(e.plate, s("AB123CD"));
    }

    #[test]
    fn psia_v1_body_with_serial_number_only() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="1.0" xmlns="urn:psialliance-org">
<serialNumber>DS-7608NI-K20820190101CCRRD12345678WCVU</serialNumber>
<dateTime>2019-07-01T08:00:00</dateTime>
<activePostCount>1</activePostCount>
<eventType>videoloss</eventType>
<eventState>inactive</eventState>
<eventDescription>videoloss alarm</eventDescription>
<dynChannelID>33</dynChannelID>
</EventNotificationAlert>"#;
        let e = xml(body);
        assert_eq!(e.device_id, s("DS-7608NI-K20820190101CCRRD12345678WCVU"));
        assert_eq!(e.device_ip, None);
        assert_eq!(e.mac, None);
        assert_eq!(e.channel, s("33"));
        assert_eq!(e.event_type, s("videoloss"));
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn no_declaration_empty_elements_and_protocol_type() {
        let body = "<EventNotificationAlert><ipv6Address>fe80::1</ipv6Address><ipAddress></ipAddress>\
            <protocolType>HTTP</protocolType><channelID></channelID><activePostCount/>\
            <eventType>fielddetection</eventType><eventState>active</eventState></EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.device_ip, s("fe80::1"));
        assert_eq!(e.protocol, s("HTTP"));
        assert_eq!(e.channel, None);
        assert_eq!(e.active_post_count, None);
        assert_eq!(e.date_time, None);
        assert_eq!(e.event_type, s("fielddetection"));
        assert_eq!(e.tree.children.len(), 7);
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn raw_ampersand_is_kept() {
        let body =
            "<EventNotificationAlert><eventType>VMD</eventType><eventState>active</eventState>\
            <eventDescription>Motion & tamper &amp; more &unknown; &#65;</eventDescription>\
            <channelName>Front & Back</channelName></EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        assert_eq!(e.description, s("Motion & tamper & more &unknown; A"));
        assert_eq!(e.channel_name, s("Front & Back"));
    }

    #[test]
    fn duration_uses_relation_event() {
        let body = "<EventNotificationAlert><eventType>duration</eventType><eventState>active</eventState>\
            <DurationList><Duration><relationEvent>regionEntrance</relationEvent><occurrences>2</occurrences>\
            </Duration></DurationList></EventNotificationAlert>";
        assert_eq!(xml(body).event_type, s("regionEntrance"));
        // Without a DurationList the type stays as sent.
        let body =
            "<EventNotificationAlert><eventType>duration</eventType></EventNotificationAlert>";
        assert_eq!(xml(body).event_type, s("duration"));
    }

    #[test]
    fn missing_and_mismatched_close_tags_recover() {
        // channelID never closed; a stray </foo>; body ends inside the root.
        let body = "<EventNotificationAlert><channelID>4<eventType>VMD</eventType></foo>\
            <eventState>active</eventState>";
        let e = xml(body);
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        assert!(
            e.warnings
                .iter()
                .any(|w| w.contains("stray close tag </foo>")),
            "{:?}",
            e.warnings
        );
        assert!(
            e.warnings.iter().any(|w| w.contains("not closed")),
            "{:?}",
            e.warnings
        );

        // A close tag for an outer element closes the inner one too.
        let body =
            "<EventNotificationAlert><ANPR><licensePlate>XY9</ANPR><eventType>ANPR</eventType>\
            </EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.plate, s("XY9"));
        assert_eq!(e.event_type, s("ANPR"));
        assert_eq!(e.tree.children.len(), 2);
    }

    #[test]
    fn broken_xml_falls_back_to_scan() {
        // An unterminated tag in the middle: the rest is still read.
        let body = "<EventNotificationAlert><ipAddress>1.2.3.4</ipAddress><bad attr=\"x></bad>\
            <eventType>shelteralarm</eventType><eventState>active</eventState></EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.event_type, s("shelteralarm"));
        assert_eq!(e.event_state, s("active"));
        assert_eq!(e.device_ip, s("1.2.3.4"));
        assert!(
            e.warnings
                .iter()
                .any(|w| w.starts_with("not well-formed XML at byte")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn trailing_garbage_and_other_root() {
        let body =
            "<EventNotificationAlert><eventType>IO</eventType></EventNotificationAlert>\0\0junk";
        let e = xml(body);
        assert_eq!(e.event_type, s("IO"));
        assert!(
            e.warnings.iter().any(|w| w.contains("outside the root")),
            "{:?}",
            e.warnings
        );

        let body = "<ResponseStatus><statusCode>1</statusCode></ResponseStatus>";
        let e = xml(body);
        assert_eq!(e.tree.name, "ResponseStatus");
        assert_eq!(
            e.warnings,
            vec!["root element is ResponseStatus".to_string()]
        );
    }

    #[test]
    fn heartbeat_json_under_text_plain() {
        let body = "\u{feff}  {\"ipAddress\":\"192.168.1.20\",\"portNo\":80,\"protocol\":\"HTTP\",\
            \"macAddress\":\"a4:14:37:00:11:22\",\"channelID\":1,\"dateTime\":\"2024-03-05T14:22:07+08:00\",\
            \"activePostCount\":1,\"eventType\":\"heartBeat\",\"eventState\":\"active\",\
            \"eventDescription\":\"heartBeat\",\"deviceID\":\"test0123\"}";
        let e = match decode_event(body.as_bytes(), Some("text/plain")) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.format, "json");
        assert_eq!(e.event_type, s("heartBeat"));
        assert_eq!(e.port, s("80"));
        assert_eq!(e.channel, s("1"));
        assert_eq!(e.active_post_count, s("1"));
        assert_eq!(e.mac, s("a4:14:37:00:11:22"));
        assert_eq!(e.device_id, s("test0123"));
        assert_eq!(e.tree.name, "json");
        assert_eq!(e.tree.children.len(), 11);
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn access_controller_json_tree() {
        let body = r#"{"ipAddress":"10.1.1.5","portNo":80,"protocol":"HTTP","macAddress":"e0:ca:3c:01:02:03",
            "channelID":1,"dateTime":"2024-03-05T09:00:01+08:00","activePostCount":1,
            "eventType":"AccessControllerEvent","eventState":"active","eventDescription":"Access Controller Event",
            "deviceID":"term-7","AccessControllerEvent":{"deviceName":"Door 1","majorEventType":5,
            "subEventType":75,"cardNo":"1234567","serialNo":812,"verifyMode":"cardOrFace",
            "currentVerifyMode":"cardOrFace","picturesNumber":1,"mask":"no"},
            "list":[1,2,[3]], "none": null, "flag": true}"#;
        let e = match decode_event(body.as_bytes(), None) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.event_type, s("AccessControllerEvent"));
        assert_eq!(e.device_id, s("term-7"));
        let ace = e.tree.child("AccessControllerEvent");
        assert_eq!(ace.and_then(|n| n.child_text("majorEventType")), Some("5"));
        assert_eq!(ace.and_then(|n| n.child_text("subEventType")), Some("75"));
        assert_eq!(ace.and_then(|n| n.child_text("cardNo")), Some("1234567"));
        assert_eq!(ace.and_then(|n| n.child_text("serialNo")), Some("812"));
        // Arrays repeat the key; a nested array gets an intermediate node.
        let lists: Vec<&Node> = e
            .tree
            .children
            .iter()
            .filter(|c| c.name == "list")
            .collect();
        assert_eq!(lists.len(), 3);
        assert_eq!(lists[0].text.as_deref(), Some("1"));
        assert_eq!(lists[1].text.as_deref(), Some("2"));
        assert_eq!(lists[2].children.len(), 1);
        assert_eq!(lists[2].children[0].text.as_deref(), Some("3"));
        assert_eq!(e.tree.child("none").map(|n| n.text.clone()), Some(None));
        assert_eq!(e.tree.child_text("flag"), Some("true"));
    }

    #[test]
    fn json_plate_nested() {
        let body = r#"{"eventType":"ANPR","ANPR":{"Plates":[{"licensePlate":""},{"licensePlate":"KA01AB1234"}]}}"#;
        let e = match decode_event(body.as_bytes(), Some("application/json")) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.plate, s("KA01AB1234"));
    }

    #[test]
    fn broken_json_falls_back_to_scan() {
        // Truncated body (e.g. a capture gap or a cut metadata part).
        let body = br#"{"ipAddress":"10.0.0.2","portNo":8080,"eventType":"fielddetection","eventState":"act"#;
        let e = match decode_event(body, Some("application/json")) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.event_type, s("fielddetection"));
        assert_eq!(e.device_ip, s("10.0.0.2"));
        assert_eq!(e.port, s("8080"));
        assert_eq!(e.event_state, None);
        assert!(
            e.warnings.iter().any(|w| w.starts_with("not valid JSON")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn not_an_event() {
        let ct = Some("application/xml");
        let kind = |body: &[u8]| decode_event(body, ct).unwrap_err();
        assert_eq!(kind(b""), DecodeError::Empty);
        assert_eq!(kind(b"  \r\n"), DecodeError::OnlyWhitespace { bytes: 4 });
        let not = |start: &str| DecodeError::NotXmlOrJson {
            content_type: ct.map(str::to_string),
            start: start.to_string(),
        };
        assert_eq!(kind(b"HTTP/1.1 200 OK"), not("HTTP/1.1 200 OK"));
        assert_eq!(
            kind(b"\xff\xd8\xff\xe0JFIF"),
            not("\\xff\\xd8\\xff\\xe0JFIF")
        );
        assert_eq!(kind(b"{}"), DecodeError::NoJsonFields);
        assert!(matches!(kind(b"{\"a\":"), DecodeError::InvalidJson { .. }));
        assert!(matches!(
            kind(b"< not xml"),
            DecodeError::MalformedXml { offset: 0, .. }
        ));
        assert_eq!(kind(b"<?xml version=\"1.0\"?>"), DecodeError::NoXmlElement);
        // The text reports show as body_error.
        assert_eq!(
            not("HTTP/1.1 200 OK").to_string(),
            "body is neither XML nor JSON (Content-Type application/xml, starts with \"HTTP/1.1 200 OK\")"
        );
        assert_eq!(
            DecodeError::OnlyWhitespace { bytes: 4 }.to_string(),
            "body holds only whitespace (4 bytes)"
        );
        assert_eq!(
            DecodeError::MalformedXml {
                offset: 3,
                reason: "x".into()
            }
            .to_string(),
            "not well-formed XML at byte 3: x (no element could be read)"
        );
    }

    #[test]
    fn deep_xml_does_not_overflow_and_is_bounded() {
        let mut body = String::from("<EventNotificationAlert><eventType>VMD</eventType>");
        for _ in 0..10_000 {
            body.push_str("<a>");
        }
        body.push('x');
        for _ in 0..10_000 {
            body.push_str("</a>");
        }
        body.push_str("<eventState>active</eventState></EventNotificationAlert>");
        let e = xml(&body);
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        // Root + 63 nested <a> levels.
        let mut depth = 1;
        let mut n = &e.tree;
        while let Some(c) = n.children.iter().find(|c| c.name == "a") {
            depth += 1;
            n = c;
        }
        assert_eq!(depth, MAX_TREE_DEPTH);
        assert!(
            e.warnings.iter().any(|w| w.contains("deeper than 64")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn many_nodes_are_bounded() {
        let mut body = String::from("<EventNotificationAlert><eventType>VMD</eventType>");
        for _ in 0..20_000 {
            body.push_str("<r/>");
        }
        body.push_str("</EventNotificationAlert>");
        let e = xml(&body);
        // Root + eventType + 9_998 <r/>.
        assert_eq!(e.tree.children.len(), MAX_TREE_NODES - 1);
        assert!(
            e.warnings.iter().any(|w| w.contains("cut at 10000")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn deep_json_does_not_overflow() {
        let mut body = String::from("{\"eventType\":\"VMD\",\"x\":");
        body.push_str(&"[".repeat(10_000));
        body.push_str(&"]".repeat(10_000));
        body.push('}');
        let e = match decode_event(body.as_bytes(), None) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        // serde_json refuses it (recursion limit); the scan still finds the type.
        assert_eq!(e.event_type, s("VMD"));
        assert!(!e.warnings.is_empty());

        // 100 levels of objects: parsed, tree cut at MAX_TREE_DEPTH.
        let mut body = String::from("{\"eventType\":\"VMD\",\"x\":");
        body.push_str(&"{\"y\":".repeat(100));
        body.push('1');
        body.push_str(&"}".repeat(100));
        body.push('}');
        let e = match decode_event(body.as_bytes(), None) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let mut depth = 1;
        let mut n = &e.tree;
        while let Some(c) = n.children.iter().find(|c| c.name == "x" || c.name == "y") {
            depth += 1;
            n = c;
        }
        assert_eq!(depth, MAX_TREE_DEPTH);
        assert!(
            e.warnings.iter().any(|w| w.contains("JSON tree cut")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn tree_and_tolerant_scan_resolve_references_alike() {
        // Character references follow XML (and quick-xml): no sign, a lowercase x, never NUL;
        // what is not a reference stays as written, on both paths.
        let raw = "a &amp; &lt;b&gt; &quot;&apos; &#65;&#x42; &#X43; &#+68; &#0; &bogus; z";
        let want = "a & <b> \"' AB &#X43; &#+68; &#0; &bogus; z";
        let well_formed = format!(
            "<EventNotificationAlert><eventType>VMD</eventType>\
             <eventDescription>{raw}</eventDescription></EventNotificationAlert>"
        );
        let tree = decode_event(well_formed.as_bytes(), None).unwrap();
        assert_eq!(tree.description.as_deref(), Some(want));
        // An unclosed element sends the same value through the tolerant scan.
        let broken = format!(
            "<EventNotificationAlert><eventType>VMD<eventDescription>{raw}</eventDescription>"
        );
        let scanned = scan_xml_pairs(&broken);
        assert_eq!(
            scanned,
            vec![("eventDescription".to_string(), want.to_string())]
        );
        assert_eq!(unescape_lenient(raw), want);
    }

    #[test]
    fn content_after_the_root_ends_the_tree_with_a_warning() {
        let root = "<EventNotificationAlert><eventType>VMD</eventType></EventNotificationAlert>";
        for extra in ["<extra/>", "<more>x</more>"] {
            let info = decode_event(format!("{root}{extra}").as_bytes(), None).unwrap();
            assert_eq!(
                info.warnings,
                vec![format!(
                    "content after the root element at byte {}",
                    root.len()
                )]
            );
            assert_eq!(info.tree.children.len(), 1, "{extra}");
            assert_eq!(info.event_type.as_deref(), Some("VMD"));
        }
    }

    #[test]
    fn scan_helpers() {
        assert_eq!(
            unescape_lenient("a &amp; b & c &#x41;&#66; &lt;x&gt; &bogus"),
            "a & b & c AB <x> &bogus"
        );
        let pairs = scan_xml_pairs("<a><ns:eventType attr='1'>VMD</ns:eventType><eventState/><x>y</x><eventState>on</eventState");
        let want = [("eventType", "VMD"), ("eventState", "on")]
            .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(pairs, want.to_vec());
        let pairs =
            scan_json_pairs(br#"{"x":"eventType","eventType" : "I\"O", "portNo": 80 , "y":"#);
        assert_eq!(
            pairs,
            vec![
                ("eventType".to_string(), "I\"O".to_string()),
                ("portNo".to_string(), "80".to_string())
            ]
        );
    }

    /// Everything but the tree: what the fields-only decoding must give exactly as the full one.
    fn without_tree(r: Result<EventInfo, DecodeError>) -> Result<EventInfo, DecodeError> {
        r.map(|mut e| {
            e.tree = Node::default();
            e
        })
    }

    fn both(
        body: &[u8],
    ) -> (
        Result<EventInfo, DecodeError>,
        Result<EventInfo, DecodeError>,
    ) {
        (
            decode_event_with(body, None, TreeDetail::Full),
            decode_event_with(body, None, TreeDetail::FieldsOnly),
        )
    }

    #[test]
    fn fields_only_tree_drops_what_no_field_reads() {
        let body = br#"<EventNotificationAlert><eventType>duration</eventType>
<DetectionRegionList><DetectionRegionEntry><regionID>1</regionID></DetectionRegionEntry></DetectionRegionList>
<ANPR><country>3</country><licensePlate> AB123 </licensePlate></ANPR>
<DurationList><Duration><relationEvent>linedetection</relationEvent></Duration></DurationList>
</EventNotificationAlert>"#;
        let (full, lean) = both(body);
        let (Ok(full), Ok(lean)) = (full, lean) else {
            panic!("decode failed");
        };
        assert_eq!(lean.event_type, s("linedetection"));
        assert_eq!(lean.plate, s("AB123"));
        assert!(full.tree.child("DetectionRegionList").is_some());
        assert!(lean.tree.child("DetectionRegionList").is_none());
        let anpr = lean.tree.child("ANPR").map(|a| a.children.len());
        assert_eq!(anpr, Some(1), "only licensePlate under ANPR");
        assert_eq!(lean.tree.name, "EventNotificationAlert");

        // The first DurationList is the one read, even without a relationEvent: it must stay.
        let body = br#"<EventNotificationAlert><eventType>duration</eventType><DurationList/>
<DurationList><Duration><relationEvent>VMD</relationEvent></Duration></DurationList></EventNotificationAlert>"#;
        let (full, lean) = both(body);
        assert_eq!(
            full.as_ref().ok().and_then(|e| e.event_type.clone()),
            s("duration")
        );
        assert_eq!(without_tree(full), without_tree(lean));

        let json = br#"{"ipAddress":"10.0.0.9","AccessControllerEvent":{"majorEventType":5,"cardNo":"77"},"list":[{"a":1},{"b":2}]}"#;
        let (Ok(full), Ok(lean)) = both(json) else {
            panic!("decode failed");
        };
        assert_eq!(full.tree.children.len(), 4);
        assert_eq!(lean.tree.children.len(), 1);
        assert_eq!(lean.device_ip, s("10.0.0.9"));
    }

    #[test]
    fn fields_only_keeps_the_verdict_on_bodies_without_fields() {
        // Valid JSON whose keys are no event field: an event (with an empty summary) in both
        // modes, although the fields-only tree keeps no child.
        for body in [
            &br#"{"foo":1}"#[..],
            br#"{"x":[1,2]}"#,
            br#"{"x":[]}"#,
            b"{}",
        ] {
            let (full, lean) = both(body);
            assert_eq!(
                without_tree(full),
                without_tree(lean),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(both(b"{}").1.err(), Some(DecodeError::NoJsonFields));
        assert!(both(br#"{"foo":1}"#).1.is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Arbitrary bytes, and a real body with bytes replaced or cut: never a panic, and the
        /// tree stays within its bounds.
        #[test]
        fn never_panics(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            edits in proptest::collection::vec((0usize..2000, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..2000,
        ) {
            let _ = decode_event(&junk, None);
            let mut body = VMD.as_bytes().to_vec();
            for (at, b) in edits {
                let at = at % body.len();
                body[at] = b;
            }
            body.truncate(cut.max(1));
            if let Ok(e) = decode_event(&body, Some("application/xml")) {
                proptest::prop_assert!(e.tree.children.len() <= MAX_TREE_NODES);
            }
            let json = br#"{"eventType":"VMD","eventState":"active","x":[{"y":1}]}"#;
            let mut j = json.to_vec();
            j.truncate(cut % (json.len() + 1));
            let _ = decode_event(&j, None);
        }

        /// The fields-only tree changes nothing but the tree: fields, warnings and errors are
        /// those of the full decoding, on real bodies with bytes replaced or cut (broken XML,
        /// unclosed elements, invalid JSON) and on arbitrary bytes.
        #[test]
        fn fields_only_decodes_the_same(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            edits in proptest::collection::vec((0usize..4000, proptest::prelude::any::<u8>()), 0..6),
            cut in 0usize..4000,
            which in 0usize..3,
        ) {
            let (f, l) = both(&junk);
            proptest::prop_assert_eq!(without_tree(f), without_tree(l));
            let json = br#"{"ipAddress":"10.0.0.9","macAddress":"aa:bb","eventType":"AccessControllerEvent","AccessControllerEvent":{"majorEventType":5,"cardNo":"77","list":[[1],{"licensePlate":"X1"}]},"x":[{"y":1}],"deviceID":"d"}"#;
            let anpr = br#"<EventNotificationAlert><ipAddress>1.2.3.4</ipAddress><eventType>duration</eventType><ANPR><licensePlate>AB1</licensePlate><x>&amp;</x></ANPR><DurationList><Duration><relationEvent>VMD</relationEvent></Duration></DurationList><channelID>1</channelID></EventNotificationAlert>"#;
            let mut body = [VMD.as_bytes(), &json[..], &anpr[..]][which].to_vec();
            for (at, b) in edits {
                let at = at % body.len();
                body[at] = b;
            }
            body.truncate(cut.max(1));
            let (f, l) = both(&body);
            proptest::prop_assert_eq!(without_tree(f), without_tree(l));
        }
    }
}
