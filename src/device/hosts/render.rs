//! Documents as a device writes them (the simulated device, and new slots).

use serde_json::Value;

use super::*;

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
