//! The one sentence `device set` adds about the slot's protocol: a slot whose `protocolType` is
//! HTTPS keeps it when only the address or port is changed, and a device then speaks TLS to a
//! server that may speak plain HTTP (one of the most reported reasons why events never arrive).
//! So after every change the user is told which protocol the slot has and what the server at its
//! address must speak. Pure: computed from the slot read back and the change asked for.

use serde::Serialize;

use super::hosts::{HostSlot, SlotChange};

/// A slot's `protocolType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotProtocol {
    Http,
    Https,
    /// Anything else the device shows (e.g. `EHome`): no advice is given.
    Other(String),
}

impl SlotProtocol {
    fn of(s: &str) -> SlotProtocol {
        match s.trim().to_ascii_uppercase().as_str() {
            "HTTP" => SlotProtocol::Http,
            "HTTPS" => SlotProtocol::Https,
            _ => SlotProtocol::Other(s.to_string()),
        }
    }
}

/// What `device set` says about the slot's protocol after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolNote {
    pub protocol: SlotProtocol,
    /// `--protocol` was part of the change (else the slot kept what it had).
    pub changed: bool,
    /// `host:port` the device pushes to.
    pub server: String,
}

/// The note for slot `after` (as read back) changed by `change`; `None` for a slot without an
/// address (nothing is pushed) or a protocol other than HTTP/HTTPS.
pub fn protocol_note(after: &HostSlot, change: &SlotChange) -> Option<ProtocolNote> {
    if after.is_unused() {
        return None;
    }
    let protocol = SlotProtocol::of(&after.protocol);
    if matches!(protocol, SlotProtocol::Other(_)) {
        return None;
    }
    let addr = after.address();
    let server = if addr.contains(':') {
        format!("[{addr}]:{}", after.port)
    } else {
        format!("{addr}:{}", after.port)
    };
    Some(ProtocolNote {
        protocol,
        changed: change.protocol.is_some(),
        server,
    })
}

impl std::fmt::Display for ProtocolNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, must, other) = match &self.protocol {
            SlotProtocol::Https => (
                "HTTPS",
                "must speak TLS (alarmscope listen --tls) with a certificate the device accepts",
                "HTTP",
            ),
            SlotProtocol::Http => (
                "HTTP",
                "must speak plain HTTP (alarmscope listen, without --tls)",
                "HTTPS",
            ),
            SlotProtocol::Other(p) => return write!(f, "the slot's protocol is {p}"),
        };
        if self.changed {
            write!(
                f,
                "the slot's protocol is now {name}: the server at {} {must}",
                self.server
            )
        } else {
            write!(
                f,
                "the slot's protocol stays {name}: the server at {} {must}; add --protocol {other} to change it",
                self.server
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(protocol: &str, ip: &str) -> HostSlot {
        HostSlot {
            id: "1".into(),
            protocol: protocol.into(),
            addressing: "ipaddress".into(),
            ip_address: ip.into(),
            port: "8080".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_https_slot_kept_by_an_address_change_is_named() {
        let change = SlotChange {
            address: Some("10.0.0.5".into()),
            ..Default::default()
        };
        let n = protocol_note(&slot("HTTPS", "10.0.0.5"), &change).unwrap();
        assert_eq!(n.protocol, SlotProtocol::Https);
        assert!(!n.changed);
        assert_eq!(n.server, "10.0.0.5:8080");
        let text = n.to_string();
        assert!(
            text.starts_with("the slot's protocol stays HTTPS"),
            "{text}"
        );
        assert!(text.contains("listen --tls"), "{text}");
        assert!(text.contains("--protocol HTTP to change it"), "{text}");
    }

    #[test]
    fn a_protocol_change_says_what_the_server_must_speak() {
        let change = SlotChange {
            protocol: Some("HTTP".into()),
            ..Default::default()
        };
        let n = protocol_note(&slot("http", "10.0.0.5"), &change).unwrap();
        assert_eq!((n.protocol.clone(), n.changed), (SlotProtocol::Http, true));
        assert!(n.to_string().contains("now HTTP"), "{n}");
        assert!(n.to_string().contains("without --tls"), "{n}");
    }

    #[test]
    fn no_note_for_unused_slots_or_other_protocols() {
        let change = SlotChange::default();
        assert_eq!(protocol_note(&slot("HTTPS", "0.0.0.0"), &change), None);
        assert_eq!(protocol_note(&slot("EHome", "10.0.0.5"), &change), None);
        let mut v6 = slot("HTTP", "");
        v6.ipv6_address = "fd00::5".into();
        assert_eq!(
            protocol_note(&v6, &change).map(|n| n.server),
            Some("[fd00::5]:8080".into())
        );
    }
}
