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

/// Names a fields-only tree ([`super::TreeDetail::FieldsOnly`]) keeps: every name
/// [`fill_from_tree`] reads (root fields, `licensePlate` anywhere, `DurationList` and its
/// `relationEvent`). Kept at any depth, so the first match in document order is the same node as
/// in the full tree, and the fields come out identical.
///
/// Called for every element: a flat table compared length first (the nested lookup of
/// [`is_scanned_name`] cost more than the allocations it saved). A unit test holds the two
/// lists together.
pub(super) fn is_tree_name(name: &str) -> bool {
    TREE_NAMES
        .iter()
        .any(|n| n.len() == name.len() && n.eq_ignore_ascii_case(name))
}

/// Every name of [`FIELD_NAMES`], `licensePlate`, `relationEvent` and `DurationList`.
const TREE_NAMES: [&str; 19] = [
    "eventType",
    "eventState",
    "ipAddress",
    "ipv6Address",
    "portNo",
    "protocol",
    "protocolType",
    "macAddress",
    "channelID",
    "dynChannelID",
    "dateTime",
    "activePostCount",
    "eventDescription",
    "channelName",
    "deviceID",
    "serialNumber",
    "licensePlate",
    "relationEvent",
    "DurationList",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names_are_the_names_fields_read() {
        let mut want: Vec<&str> = FIELD_NAMES
            .iter()
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        want.extend(["licensePlate", "relationEvent", "DurationList"]);
        let mut have = TREE_NAMES.to_vec();
        want.sort_unstable();
        have.sort_unstable();
        assert_eq!(have, want);
        assert!(is_tree_name("LICENSEPLATE"));
        assert!(!is_tree_name("licensePlates"));
    }
}
