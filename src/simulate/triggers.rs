//! Documents of the simulated device's own side, for `alarmscope doctor` to read: who it is
//! (`/ISAPI/System/deviceInfo`), which events notify the surveillance center
//! (`/ISAPI/Event/triggers`), and the parts of its event stream
//! (`/ISAPI/Event/notification/alertStream`). All pure: documents in, documents out.
//!
//! The shapes follow what real cameras serve (element names and order, `version="2.0"`, the
//! hikvision.com ver20 namespace, `<id>VMD-1</id>` style trigger ids, a `videoloss`/`inactive`
//! keep-alive on the stream); the documents themselves are written here.

use std::fmt::Write as _;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::events::{DeviceIdentity, EventKind};
use crate::device::hosts::ISAPI_NS;
use crate::time::Timestamp;

/// Model the simulated device reports (its serial numbers start with it).
pub const MODEL: &str = "DS-2CD2387G2-LU";
/// Firmware the simulated device reports.
pub const FIRMWARE: &str = "V5.7.15";
/// Boundary of the alertStream's `multipart/mixed` answer, as cameras use it.
pub const STREAM_BOUNDARY: &str = "boundary";

/// One event trigger: an event type on a channel, and whether it notifies the surveillance
/// center (the alarm host slots). An unlinked trigger still produces events (on the alertStream)
/// but the device never pushes them: the commonest cause of "events never arrive".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// `eventType` as the device writes it (`VMD`, `linedetection`, `fielddetection`).
    pub event_type: String,
    /// Video input channel, from 1.
    pub channel: u32,
    /// `notificationMethod` `center` present.
    pub center: bool,
}

impl Trigger {
    /// The trigger id devices use in the list and in `/ISAPI/Event/triggers/<id>`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.event_type, self.channel)
    }

    /// The simulator's event kind for this trigger's type, when it can generate it.
    pub fn kind(&self) -> Option<EventKind> {
        kind_of(&self.event_type)
    }
}

/// The simulator's event kind for an `eventType` (case-insensitive), when it can generate it.
pub fn kind_of(event_type: &str) -> Option<EventKind> {
    [
        EventKind::Vmd,
        EventKind::LineDetection,
        EventKind::FieldDetection,
    ]
    .into_iter()
    .find(|k| k.event_type().eq_ignore_ascii_case(event_type))
}

/// A `--events` / `--unlinked` value not among the event types the simulator generates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?} (known: VMD, linedetection, fielddetection)")]
pub struct UnknownEventType(pub String);

/// The trigger table: every type of `enabled` on channels 1..=`channels`, linked to the center
/// unless its type is in `unlinked`.
pub fn trigger_table(
    enabled: &[String],
    unlinked: &[String],
    channels: u32,
) -> Result<Vec<Trigger>, UnknownEventType> {
    for t in enabled.iter().chain(unlinked) {
        if kind_of(t).is_none() {
            return Err(UnknownEventType(t.clone()));
        }
    }
    let mut out = Vec::new();
    for t in enabled {
        let Some(k) = kind_of(t) else { continue };
        let center = !unlinked.iter().any(|u| u.eq_ignore_ascii_case(t));
        for channel in 1..=channels.max(1) {
            out.push(Trigger {
                event_type: k.event_type().to_string(),
                channel,
                center,
            });
        }
    }
    Ok(out)
}

fn description(event_type: &str) -> String {
    let mut c = event_type.chars();
    let cap = match c.next() {
        Some(f) if event_type != "VMD" => f.to_uppercase().chain(c).collect::<String>(),
        _ => event_type.to_string(),
    };
    format!("{cap} Event trigger Information")
}

fn trigger_body(t: &Trigger, out: &mut String) {
    let _ = write!(
        out,
        "<id>{}</id>\n<eventType>{}</eventType>\n<eventDescription>{}</eventDescription>\n\
         <videoInputChannelID>{c}</videoInputChannelID>\n<dynVideoInputChannelID>{c}</dynVideoInputChannelID>\n\
         <EventTriggerNotificationList>\n",
        t.id(),
        t.event_type,
        description(&t.event_type),
        c = t.channel
    );
    // Recording on the event's own channel is what cameras link by default.
    let _ = write!(
        out,
        "<EventTriggerNotification>\n<id>record-{c}</id>\n<notificationMethod>record</notificationMethod>\n\
         <notificationRecurrence>beginning</notificationRecurrence>\n<videoInputID>{c}</videoInputID>\n\
         </EventTriggerNotification>\n",
        c = t.channel
    );
    if t.center {
        out.push_str(
            "<EventTriggerNotification>\n<id>center</id>\n<notificationMethod>center</notificationMethod>\n\
             <notificationRecurrence>beginning</notificationRecurrence>\n</EventTriggerNotification>\n",
        );
    }
    out.push_str("</EventTriggerNotificationList>\n");
}

/// `GET /ISAPI/Event/triggers`: an `EventTriggerList`, plus the device's exception triggers
/// (disk full, illegal access) as cameras list them.
pub fn render_trigger_list(triggers: &[Trigger]) -> Vec<u8> {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventTriggerList version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n"
    );
    for t in triggers {
        s.push_str("<EventTrigger>\n");
        trigger_body(t, &mut s);
        s.push_str("</EventTrigger>\n");
    }
    for ex in ["diskfull", "illaccess"] {
        let _ = write!(
            s,
            "<EventTrigger>\n<id>{ex}</id>\n<eventType>{ex}</eventType>\n<eventDescription>exception Information</eventDescription>\n\
             <EventTriggerNotificationList>\n<EventTriggerNotification>\n<id>center</id>\n<notificationMethod>center</notificationMethod>\n\
             <notificationRecurrence>beginning</notificationRecurrence>\n</EventTriggerNotification>\n</EventTriggerNotificationList>\n</EventTrigger>\n"
        );
    }
    s.push_str("</EventTriggerList>\n");
    s.into_bytes()
}

/// `GET /ISAPI/Event/triggers/<id>`: one `EventTrigger` document.
pub fn render_trigger(t: &Trigger) -> Vec<u8> {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventTrigger version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n"
    );
    trigger_body(t, &mut s);
    s.push_str("</EventTrigger>\n");
    s.into_bytes()
}

/// What a `PUT /ISAPI/Event/triggers/<id>` body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerUpdate {
    /// The `<id>` element, when present.
    pub id: Option<String>,
    /// Whether a `notificationMethod` `center` is in the list.
    pub center: bool,
}

/// Why a `PUT` trigger body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerDocError {
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// No `EventTrigger` root.
    #[error("no EventTrigger element")]
    NotATrigger,
}

/// Read a `PUT` trigger body: its id and whether it links the center. Elements are matched by
/// local name, whatever the namespace.
pub fn parse_trigger_update(body: &[u8]) -> Result<TriggerUpdate, TriggerDocError> {
    let mut r = Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut id = None;
    let mut center = false;
    let mut root_ok = false;
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = e.local_name().as_ref().to_string();
                if path.is_empty() {
                    root_ok = name == "EventTrigger";
                }
                path.push(name);
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let text = t.xml10_content().trim().to_string();
                match path.last().map(String::as_str) {
                    Some("id") if path.len() == 2 => id = Some(text),
                    Some("notificationMethod") if text.eq_ignore_ascii_case("center") => {
                        center = true
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(TriggerDocError::Xml(e.to_string())),
        }
        buf.clear();
    }
    if !root_ok {
        return Err(TriggerDocError::NotATrigger);
    }
    Ok(TriggerUpdate { id, center })
}

/// `GET /ISAPI/System/deviceInfo` of the simulated camera.
pub fn render_device_info(id: &DeviceIdentity) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeviceInfo version=\"2.0\" xmlns=\"{ISAPI_NS}\">\n\
         <deviceName>IP CAMERA</deviceName>\n<deviceID>{}</deviceID>\n<deviceDescription>IPCamera</deviceDescription>\n\
         <deviceLocation>hangzhou</deviceLocation>\n<systemContact>Hikvision.China</systemContact>\n\
         <model>{MODEL}</model>\n<serialNumber>{}</serialNumber>\n<macAddress>{}</macAddress>\n\
         <firmwareVersion>{FIRMWARE}</firmwareVersion>\n<firmwareReleasedDate>build 240201</firmwareReleasedDate>\n\
         <encoderVersion>V7.3</encoderVersion>\n<encoderReleasedDate>build 240110</encoderReleasedDate>\n\
         <bootVersion>V1.3.4</bootVersion>\n<bootReleasedDate>100316</bootReleasedDate>\n<hardwareVersion>0x0</hardwareVersion>\n\
         <deviceType>IPCamera</deviceType>\n<telecontrolID>88</telecontrolID>\n<supportBeep>false</supportBeep>\n\
         <supportVideoLoss>false</supportVideoLoss>\n<manufacturer>hikvision</manufacturer>\n</DeviceInfo>\n",
        id.device_id, id.serial, id.mac
    )
    .into_bytes()
}

/// The keep-alive cameras write on the alertStream when nothing happens: `videoloss` in state
/// `inactive` on channel 1 with `activePostCount` 0.
pub fn heartbeat_body(id: &DeviceIdentity, at: Timestamp) -> Vec<u8> {
    let ip = match id.ip {
        std::net::IpAddr::V4(ip) => format!("<ipAddress>{ip}</ipAddress>"),
        std::net::IpAddr::V6(ip) => format!("<ipv6Address>{ip}</ipv6Address>"),
    };
    format!(
        "<EventNotificationAlert version=\"2.0\" xmlns=\"{ISAPI_NS}\">\r\n{ip}\r\n<portNo>80</portNo>\r\n<protocol>HTTP</protocol>\r\n\
         <macAddress>{}</macAddress>\r\n<channelID>1</channelID>\r\n<dateTime>{}</dateTime>\r\n<activePostCount>0</activePostCount>\r\n\
         <eventType>videoloss</eventType>\r\n<eventState>inactive</eventState>\r\n<eventDescription>videoloss alarm</eventDescription>\r\n\
         <channelName></channelName>\r\n</EventNotificationAlert>\r\n",
        id.mac,
        id.date_time(at)
    )
    .into_bytes()
}

/// The keep-alive of a JSON device (access terminal) on its alertStream: the same `videoloss` /
/// `inactive` event as a JSON object.
pub fn heartbeat_json(id: &DeviceIdentity, at: Timestamp) -> Vec<u8> {
    let ip = match id.ip {
        std::net::IpAddr::V4(_) => "ipAddress",
        std::net::IpAddr::V6(_) => "ipv6Address",
    };
    let mut o = serde_json::Map::new();
    o.insert(ip.into(), id.ip.to_string().into());
    o.insert("portNo".into(), 80.into());
    o.insert("protocol".into(), "HTTP".into());
    o.insert("macAddress".into(), id.mac.clone().into());
    o.insert("channelID".into(), 1.into());
    o.insert("dateTime".into(), id.date_time(at).into());
    o.insert("activePostCount".into(), 1.into());
    o.insert("eventType".into(), "videoloss".into());
    o.insert("eventState".into(), "inactive".into());
    o.insert("eventDescription".into(), "videoloss alarm".into());
    serde_json::to_vec_pretty(&serde_json::Value::Object(o)).unwrap_or_default()
}

/// The response head that opens an alertStream.
pub fn stream_head() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary={STREAM_BOUNDARY}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// One part of the alertStream: boundary line, part headers with its Content-Length, the body.
pub fn stream_part(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "--{STREAM_BOUNDARY}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isapi::event::decode_event;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn table_links_all_but_the_unlinked_types() {
        let t = trigger_table(
            &s(&["VMD", "linedetection", "fielddetection"]),
            &s(&["LineDetection"]),
            2,
        )
        .unwrap();
        assert_eq!(t.len(), 6);
        let linked: Vec<_> = t.iter().filter(|t| t.center).map(Trigger::id).collect();
        assert_eq!(
            linked,
            ["VMD-1", "VMD-2", "fielddetection-1", "fielddetection-2"]
        );
        assert_eq!(
            trigger_table(&s(&["ANPR"]), &[], 1),
            Err(UnknownEventType("ANPR".into()))
        );
    }

    #[test]
    fn rendered_trigger_reads_back() {
        for center in [true, false] {
            let t = Trigger {
                event_type: "linedetection".into(),
                channel: 2,
                center,
            };
            let u = parse_trigger_update(&render_trigger(&t)).unwrap();
            assert_eq!(u.id.as_deref(), Some("linedetection-2"));
            assert_eq!(u.center, center);
        }
        assert_eq!(
            parse_trigger_update(b"<HttpHostNotification/>"),
            Err(TriggerDocError::NotATrigger)
        );
        assert!(matches!(
            parse_trigger_update(b"<EventTrigger><id>x</EventTrigger>"),
            Err(TriggerDocError::Xml(_))
        ));
    }

    #[test]
    fn list_names_center_only_for_linked_triggers() {
        let t = trigger_table(&s(&["VMD", "fielddetection"]), &s(&["fielddetection"]), 1).unwrap();
        let doc = String::from_utf8(render_trigger_list(&t)).unwrap();
        // Split per trigger and check each one's linkage.
        let vmd = doc
            .split("<EventTrigger>")
            .find(|p| p.contains("<id>VMD-1</id>"))
            .unwrap();
        let field = doc
            .split("<EventTrigger>")
            .find(|p| p.contains("<id>fielddetection-1</id>"))
            .unwrap();
        assert!(vmd.contains("<notificationMethod>center</notificationMethod>"));
        assert!(!field.contains("<notificationMethod>center</notificationMethod>"));
        assert!(field.contains("<notificationMethod>record</notificationMethod>"));
    }

    #[test]
    fn heartbeat_decodes_as_inactive_videoloss() {
        let id = DeviceIdentity::new(0, "127.0.0.1".parse().unwrap());
        let body = heartbeat_body(&id, Timestamp(1_715_076_000_000_000_000));
        let e = decode_event(&body, Some("application/xml")).unwrap();
        assert_eq!(e.event_type.as_deref(), Some("videoloss"));
        assert_eq!(e.event_state.as_deref(), Some("inactive"));
        assert_eq!(e.mac.as_deref(), Some(id.mac.as_str()));
    }

    #[test]
    fn json_heartbeat_decodes_as_inactive_videoloss() {
        let id = DeviceIdentity::new(0, "127.0.0.1".parse().unwrap());
        let body = heartbeat_json(&id, Timestamp(1_715_076_000_000_000_000));
        let e = decode_event(&body, Some("application/json")).unwrap();
        assert_eq!(e.format, "json");
        assert_eq!(e.event_type.as_deref(), Some("videoloss"));
        assert_eq!(e.event_state.as_deref(), Some("inactive"));
    }

    #[test]
    fn stream_part_frames_with_length() {
        let p = stream_part("application/xml; charset=\"UTF-8\"", b"<a/>");
        assert_eq!(
            p,
            b"--boundary\r\nContent-Type: application/xml; charset=\"UTF-8\"\r\nContent-Length: 4\r\n\r\n<a/>\r\n"
        );
    }

    #[test]
    fn device_info_carries_identity() {
        let id = DeviceIdentity::new(0, "127.0.0.1".parse().unwrap());
        let doc = String::from_utf8(render_device_info(&id)).unwrap();
        assert!(doc.contains(&format!("<serialNumber>{}</serialNumber>", id.serial)));
        assert!(doc.contains(&format!("<macAddress>{}</macAddress>", id.mac)));
        assert!(id.serial.starts_with(MODEL));
    }
}
