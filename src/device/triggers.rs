//! `/ISAPI/Event/triggers` (and `/ISAPI/Event/triggers/<id>`): which notification methods each
//! event type and channel is linked to. An event pushed to an alarm host needs the `center`
//! method ("Notify Surveillance Center"); without it the device never sends that event,
//! whatever the host slots say.
//!
//! Shapes seen on real devices: `EventTriggerList` as the root, the same list wrapped in an
//! `EventNotification` root, and a single `EventTrigger` root (the per-trigger URL); each in any
//! namespace or none, with empty or self-closing `EventTriggerNotificationList`s. Read through
//! the event decoder's bounded, lenient tree ([`crate::isapi::decode_event`]).

use serde::Serialize;

use super::hosts::DocError;
use crate::isapi::{decode_event, Node};

/// One `EventTrigger`: an event type on one channel (or alarm input) and its linkage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventTrigger {
    /// The trigger's id, e.g. `VMD-1`, `IO-2`, `linedetection-1`.
    pub id: String,
    pub event_type: String,
    /// `videoInputChannelID`, else `dynVideoInputChannelID`, else the alarm input
    /// (`inputIOPortID`, `dynInputIOPortID`); None for device-wide events (disk full ...).
    pub channel: Option<String>,
    /// `notificationMethod` of every linked notification, in document order (`center`,
    /// `record`, `email`, `beep`, `IO`, `FTP` ...).
    pub methods: Vec<String>,
}

impl EventTrigger {
    /// Linked to "Notify Surveillance Center": the device pushes this event to its alarm hosts.
    pub fn notifies_center(&self) -> bool {
        self.methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case("center"))
    }

    /// "VMD channel 1", "diskfull" (for messages and lists).
    pub fn label(&self) -> String {
        match &self.channel {
            Some(c) => format!("{} channel {c}", self.event_type),
            None => self.event_type.clone(),
        }
    }
}

/// Every `EventTrigger` element in the tree, outermost first, in document order (iterative:
/// the tree is bounded but deep documents need no recursion).
fn trigger_nodes(root: &Node) -> Vec<&Node> {
    let mut out = Vec::new();
    let mut stack: Vec<&Node> = vec![root];
    while let Some(n) = stack.pop() {
        if n.name.eq_ignore_ascii_case("EventTrigger") {
            out.push(n);
            continue;
        }
        stack.extend(n.children.iter().rev());
    }
    out
}

fn methods_of(trigger: &Node) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<&Node> = trigger
        .children
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case("EventTriggerNotificationList"))
        .rev()
        .collect();
    while let Some(n) = stack.pop() {
        if n.name.eq_ignore_ascii_case("notificationMethod") {
            if let Some(t) = n.text.as_deref().filter(|t| !t.is_empty()) {
                out.push(t.to_string());
            }
            continue;
        }
        stack.extend(n.children.iter().rev());
    }
    out
}

/// Parse a triggers answer (list, wrapped list or one trigger). Fails when the answer is not
/// XML/JSON or holds neither an `EventTrigger` nor an `EventTriggerList` (an empty list is a
/// valid answer: no trigger at all).
pub fn parse_triggers(body: &[u8]) -> Result<Vec<EventTrigger>, DocError> {
    let ev = decode_event(body, None).map_err(|e| DocError::Xml(e.to_string()))?;
    let nodes = trigger_nodes(&ev.tree);
    if nodes.is_empty() {
        let mut stack = vec![&ev.tree];
        let mut list = false;
        while let Some(n) = stack.pop() {
            list |= n.name.eq_ignore_ascii_case("EventTriggerList");
            stack.extend(n.children.iter());
        }
        if !list {
            return Err(DocError::Missing("EventTriggerList"));
        }
    }
    Ok(nodes
        .into_iter()
        .map(|n| {
            let text = |name: &str| n.child_text(name).map(str::to_string);
            EventTrigger {
                id: text("id").unwrap_or_default(),
                event_type: text("eventType").unwrap_or_default(),
                channel: text("videoInputChannelID")
                    .or_else(|| text("dynVideoInputChannelID"))
                    .or_else(|| text("inputIOPortID"))
                    .or_else(|| text("dynInputIOPortID")),
                methods: methods_of(n),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<EventTriggerList version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<EventTrigger>
<id>VMD-1</id>
<eventType>VMD</eventType>
<eventDescription>VMD Event trigger Information</eventDescription>
<videoInputChannelID>1</videoInputChannelID>
<dynVideoInputChannelID>1</dynVideoInputChannelID>
<EventTriggerNotificationList>
<EventTriggerNotification>
<id>center</id>
<notificationMethod>center</notificationMethod>
<notificationRecurrence>beginning</notificationRecurrence>
</EventTriggerNotification>
<EventTriggerNotification>
<id>record-1</id>
<notificationMethod>record</notificationMethod>
<videoInputID>1</videoInputID>
</EventTriggerNotification>
</EventTriggerNotificationList>
</EventTrigger>
<EventTrigger>
<id>IO-2</id>
<eventType>IO</eventType>
<inputIOPortID>2</inputIOPortID>
<EventTriggerNotificationList></EventTriggerNotificationList>
</EventTrigger>
<EventTrigger>
<id>diskfull</id>
<eventType>diskfull</eventType>
<EventTriggerNotificationList/>
</EventTrigger>
</EventTriggerList>
"#;

    #[test]
    fn reads_a_list() {
        let t = parse_triggers(LIST.as_bytes()).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].id, "VMD-1");
        assert_eq!(t[0].channel.as_deref(), Some("1"));
        assert_eq!(t[0].methods, vec!["center", "record"]);
        assert!(t[0].notifies_center());
        assert_eq!(t[1].channel.as_deref(), Some("2"));
        assert!(!t[1].notifies_center());
        assert_eq!(t[2].channel, None);
        assert_eq!(t[2].label(), "diskfull");
        assert_eq!(t[0].label(), "VMD channel 1");
    }

    #[test]
    fn reads_the_wrapped_list_and_a_single_trigger() {
        let wrapped = format!(
            "<EventNotification><EventTriggerList>{}</EventTriggerList></EventNotification>",
            "<EventTrigger version=\"2.0\" xmlns=\"urn:x\"><id>PIR</id><eventType>PIR</eventType><dynVideoInputChannelID>3</dynVideoInputChannelID><EventTriggerNotificationList><EventTriggerNotification><notificationMethod>beep</notificationMethod></EventTriggerNotification><EventTriggerNotification><notificationMethod>center</notificationMethod></EventTriggerNotification></EventTriggerNotificationList></EventTrigger>"
        );
        let t = parse_triggers(wrapped.as_bytes()).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].channel.as_deref(), Some("3"));
        assert!(t[0].notifies_center());
        let single = "<EventTrigger xmlns=\"http://www.hikvision.com/ver20/XMLSchema\" version=\"2.0\"><id>fielddetection-2</id><eventType>fielddetection</eventType><videoInputChannelID>2</videoInputChannelID><EventTriggerNotificationList><EventTriggerNotification><id>center</id><notificationMethod>center</notificationMethod></EventTriggerNotification></EventTriggerNotificationList></EventTrigger>";
        let t = parse_triggers(single.as_bytes()).unwrap();
        assert_eq!(t[0].label(), "fielddetection channel 2");
        assert!(t[0].notifies_center());
    }

    #[test]
    fn reads_json() {
        let j = br#"{"EventTriggerList": {"EventTrigger": [
            {"id": "VMD-1", "eventType": "VMD", "videoInputChannelID": 1,
             "EventTriggerNotificationList": {"EventTriggerNotification": [{"id": "center", "notificationMethod": "center"}]}},
            {"id": "vmd-2", "eventType": "VMD", "videoInputChannelID": "2", "EventTriggerNotificationList": []}]}}"#;
        let t = parse_triggers(j).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].notifies_center());
        assert_eq!(t[0].channel.as_deref(), Some("1"));
        assert!(!t[1].notifies_center());
    }

    #[test]
    fn empty_list_is_valid_other_documents_are_not() {
        assert_eq!(parse_triggers(b"<EventTriggerList/>").unwrap(), vec![]);
        assert_eq!(
            parse_triggers(b"<DeviceInfo><model>x</model></DeviceInfo>"),
            Err(DocError::Missing("EventTriggerList"))
        );
        assert!(parse_triggers(b"\x00\x01").is_err());
    }
}
