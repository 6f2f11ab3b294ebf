//! `/ISAPI/System/deviceInfo`: who the device is (model, firmware, serial, MAC), in XML or JSON.
//!
//! Read through the event decoder's lenient, bounded tree ([`crate::isapi::decode_event`]), so
//! the same quirks are tolerated (any namespace or none, version 1.0 documents, empty elements,
//! a raw `&`) and elements are matched by local name only.

use serde::Serialize;

use super::hosts::DocError;
use crate::isapi::{decode_event, Node};

/// What doctor shows of a device's identity. Empty strings where the device leaves a field out
/// (old firmware has no `deviceType`; authors of published samples redact the MAC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    pub device_name: String,
    pub model: String,
    pub serial: String,
    pub mac: String,
    pub firmware: String,
    /// `firmwareReleasedDate`, e.g. "build 180725".
    pub firmware_date: String,
    /// `deviceType`: IPCamera, IPDome, NVR, ACS, VIS ...
    pub device_type: String,
}

/// The `DeviceInfo` element of a parsed document: the root (XML) or under the synthetic JSON
/// root.
fn info_node(root: &Node) -> Option<&Node> {
    if root.name.eq_ignore_ascii_case("DeviceInfo") {
        return Some(root);
    }
    root.child("DeviceInfo")
}

/// Parse a deviceInfo answer. Fails only when the answer is not XML/JSON or holds no
/// `DeviceInfo` element (a login page, another document).
pub fn parse_device_info(body: &[u8]) -> Result<DeviceInfo, DocError> {
    let ev = decode_event(body, None).map_err(|e| DocError::Xml(e.to_string()))?;
    let node = info_node(&ev.tree).ok_or(DocError::Missing("DeviceInfo"))?;
    let get = |n: &str| node.child_text(n).unwrap_or_default().to_string();
    Ok(DeviceInfo {
        device_name: get("deviceName"),
        model: get("model"),
        serial: get("serialNumber"),
        mac: get("macAddress"),
        firmware: get("firmwareVersion"),
        firmware_date: get("firmwareReleasedDate"),
        device_type: get("deviceType"),
    })
}

impl std::fmt::Display for DeviceInfo {
    /// "DS-2CD2146G2-ISU, firmware V5.7.3 build 220112, serial ..., MAC ..." with absent
    /// fields left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        let model = if self.model.is_empty() {
            "model not given"
        } else {
            &self.model
        };
        parts.push(if self.device_type.is_empty() {
            model.to_string()
        } else {
            format!("{model} ({})", self.device_type)
        });
        if !self.firmware.is_empty() {
            let date = if self.firmware_date.is_empty() {
                String::new()
            } else {
                format!(" {}", self.firmware_date)
            };
            parts.push(format!("firmware {}{date}", self.firmware));
        }
        if !self.serial.is_empty() {
            parts.push(format!("serial {}", self.serial));
        }
        if !self.mac.is_empty() {
            parts.push(format!("MAC {}", self.mac));
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DeviceInfo version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<deviceName>Gate</deviceName>
<deviceID>9a0c3f2e-0000-4000-8000-0123456789ab</deviceID>
<model>DS-2CD2046G2-I</model>
<serialNumber>DS-2CD2046G2-I20230101AAWRJ00000001</serialNumber>
<macAddress>44:19:b6:00:00:01</macAddress>
<firmwareVersion>V5.7.10</firmwareVersion>
<firmwareReleasedDate>build 220815</firmwareReleasedDate>
<encoderVersion>V7.3</encoderVersion>
<deviceType>IPCamera</deviceType>
<telecontrolID>88</telecontrolID>
</DeviceInfo>
"#;

    #[test]
    fn reads_a_camera_document() {
        let i = parse_device_info(XML.as_bytes()).unwrap();
        assert_eq!(i.model, "DS-2CD2046G2-I");
        assert_eq!(i.serial, "DS-2CD2046G2-I20230101AAWRJ00000001");
        assert_eq!(i.mac, "44:19:b6:00:00:01");
        assert_eq!(i.firmware, "V5.7.10");
        assert_eq!(i.firmware_date, "build 220815");
        assert_eq!(i.device_type, "IPCamera");
        assert_eq!(
            i.to_string(),
            "DS-2CD2046G2-I (IPCamera), firmware V5.7.10 build 220815, serial DS-2CD2046G2-I20230101AAWRJ00000001, MAC 44:19:b6:00:00:01"
        );
    }

    #[test]
    fn reads_old_and_odd_shapes() {
        // Version 1.0 in the ver10 namespace, CRLF, no deviceType, an empty element, a raw `&`.
        let old = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<DeviceInfo version=\"1.0\" xmlns=\"http://www.hikvision.com/ver10/XMLSchema\">\r\n<deviceName>Shop & back</deviceName>\r\n<model>DS-2CD2A20F-IS</model>\r\n<serialNumber></serialNumber>\r\n<macAddress/>\r\n<firmwareVersion>V5.3.5</firmwareVersion>\r\n</DeviceInfo>\r\n";
        let i = parse_device_info(old.as_bytes()).unwrap();
        assert_eq!(i.model, "DS-2CD2A20F-IS");
        assert_eq!(i.device_name, "Shop & back");
        assert_eq!(i.serial, "");
        assert_eq!(i.to_string(), "DS-2CD2A20F-IS, firmware V5.3.5");
        let json = br#"{"DeviceInfo": {"deviceName": "Door", "model": "DS-K1T341AM", "serialNumber": "Q1", "macAddress": "aa:bb:cc:dd:ee:ff", "firmwareVersion": "V3.2.30", "deviceType": "ACS"}}"#;
        let j = parse_device_info(json).unwrap();
        assert_eq!(
            (j.model.as_str(), j.device_type.as_str()),
            ("DS-K1T341AM", "ACS")
        );
    }

    #[test]
    fn other_documents_are_refused() {
        assert_eq!(
            parse_device_info(b"<ResponseStatus><statusCode>4</statusCode></ResponseStatus>"),
            Err(DocError::Missing("DeviceInfo"))
        );
        assert!(parse_device_info(b"login page").is_err());
        assert!(parse_device_info(b"").is_err());
    }
}
