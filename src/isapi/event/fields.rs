//! Field extraction, shared by XML and JSON: both bodies become a [`Node`] tree (or, when broken,
//! `(name, text)` pairs from a tolerant scan), and the same names fill the same [`EventInfo`]
//! fields whatever the format.

use super::{EventInfo, Node};

/// Which root children feed which field, in priority order.
const FIELD_NAMES: &[(Field, &[&str])] = &[
    (Field::EventType, &["eventType"]),
    (Field::EventState, &["eventState"]),
    (Field::DeviceIp, &["ipAddress", "ipv6Address"]),
    (Field::Port, &["portNo"]),
    (Field::Protocol, &["protocol", "protocolType"]),
    (Field::Mac, &["macAddress"]),
    (Field::Channel, &["channelID", "dynChannelID"]),
    (Field::DateTime, &["dateTime"]),
    (Field::ActivePostCount, &["activePostCount"]),
    (Field::Description, &["eventDescription"]),
    (Field::ChannelName, &["channelName"]),
    (Field::DeviceId, &["deviceID", "serialNumber"]),
];

/// An [`EventInfo`] field filled from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    EventType,
    EventState,
    DeviceIp,
    Port,
    Protocol,
    Mac,
    Channel,
    DateTime,
    ActivePostCount,
    Description,
    ChannelName,
    DeviceId,
}

impl EventInfo {
    /// Where a field's value goes.
    fn slot(&mut self, f: Field) -> &mut Option<String> {
        match f {
            Field::EventType => &mut self.event_type,
            Field::EventState => &mut self.event_state,
            Field::DeviceIp => &mut self.device_ip,
            Field::Port => &mut self.port,
            Field::Protocol => &mut self.protocol,
            Field::Mac => &mut self.mac,
            Field::Channel => &mut self.channel,
            Field::DateTime => &mut self.date_time,
            Field::ActivePostCount => &mut self.active_post_count,
            Field::Description => &mut self.description,
            Field::ChannelName => &mut self.channel_name,
            Field::DeviceId => &mut self.device_id,
        }
    }

    /// True when no event field at all was found.
    pub(super) fn has_no_fields(&self) -> bool {
        let set = [
            &self.event_type,
            &self.event_state,
            &self.device_ip,
            &self.port,
            &self.protocol,
            &self.mac,
            &self.channel,
            &self.date_time,
            &self.active_post_count,
            &self.description,
            &self.channel_name,
            &self.device_id,
            &self.plate,
        ];
        set.iter().all(|f| f.is_none())
    }
}

/// Fill the fields from the root's direct children, the plate from any descendant, and the real
/// type of `duration` events.
pub(super) fn fill_from_tree(info: &mut EventInfo, root: &Node) {
    for (field, names) in FIELD_NAMES {
        if info.slot(*field).is_none() {
            *info.slot(*field) = names
                .iter()
                .find_map(|n| root.child_text(n))
                .map(str::to_string);
        }
    }
    if info.plate.is_none() {
        info.plate = root.find_text("licensePlate").map(str::to_string);
    }
    if info
        .event_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("duration"))
    {
        info.duration = true;
        if let Some(rel) = root
            .child("DurationList")
            .and_then(|d| d.find_text("relationEvent"))
        {
            info.event_type = Some(rel.to_string());
        }
    }
    if info.dyn_channel.is_none() {
        info.dyn_channel = root.child_text("dynChannelID").map(str::to_string);
    }
}

/// Fill still-missing fields from `(local name, text)` pairs found by a tolerant scan.
pub(super) fn fill_from_pairs(info: &mut EventInfo, pairs: &[(String, String)]) {
    let find = |name: &str| {
        pairs
            .iter()
            .find(|(n, v)| n.eq_ignore_ascii_case(name) && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    for (field, names) in FIELD_NAMES {
        if info.slot(*field).is_none() {
            *info.slot(*field) = names.iter().find_map(|n| find(n));
        }
    }
    if info.plate.is_none() {
        info.plate = find("licensePlate");
    }
    if info
        .event_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("duration"))
    {
        info.duration = true;
        if let Some(rel) = find("relationEvent") {
            info.event_type = Some(rel);
        }
    }
    if info.dyn_channel.is_none() {
        info.dyn_channel = find("dynChannelID");
    }
}

/// Names the tolerant scans look for.
pub(super) fn is_scanned_name(name: &str) -> bool {
    FIELD_NAMES
        .iter()
        .any(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        || name.eq_ignore_ascii_case("licensePlate")
        || name.eq_ignore_ascii_case("relationEvent")
}
