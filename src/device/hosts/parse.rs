//! Reading a host list (`HttpHostNotificationList`, or one `HttpHostNotification`), XML or JSON.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

use super::*;

/// Parse a host list (`HttpHostNotificationList`, or a single `HttpHostNotification`).
pub fn parse_host_list(body: &[u8]) -> Result<Vec<HostSlot>, DocError> {
    match sniff_format(body) {
        Some(ApiFormat::Xml) => parse_host_list_xml(body),
        Some(ApiFormat::Json) => parse_host_list_json(body),
        None => Err(DocError::NotXmlOrJson),
    }
}

fn parse_host_list_xml(body: &[u8]) -> Result<Vec<HostSlot>, DocError> {
    let mut reader = Reader::from_reader(body);
    let mut slots = Vec::new();
    // Depth relative to the current slot: 0 = not in a slot, 1 = in slot, 2 = in a field.
    let mut depth = 0usize;
    let mut current = HostSlot::default();
    let mut field: Option<String> = None;
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(xml_err)? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if depth == 0 {
                    if name == "HttpHostNotification" {
                        depth = 1;
                        current = HostSlot::default();
                    }
                } else {
                    depth = depth.saturating_add(1);
                    if depth == 2 {
                        field = Some(name);
                        text.clear();
                    }
                }
            }
            Event::Empty(e) if depth == 1 => {
                let name = e.local_name().as_ref().to_string();
                current.set(&name, String::new());
            }
            Event::Text(t) if depth == 2 => text.push_str(&t.xml10_content()),
            Event::CData(t) if depth == 2 => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if depth == 2 => text.push_str(&text_of_ref(&r)),
            Event::End(_) => {
                if depth == 2 {
                    if let Some(f) = field.take() {
                        current.set(&f, text.trim().to_string());
                    }
                }
                if depth == 1 {
                    slots.push(std::mem::take(&mut current));
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if slots.is_empty() && !contains_local_name(body, "HttpHostNotificationList") {
        return Err(DocError::Missing("HttpHostNotificationList"));
    }
    Ok(slots)
}

fn parse_host_list_json(body: &[u8]) -> Result<Vec<HostSlot>, DocError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
    let has_list =
        v.get("HttpHostNotificationList").is_some() || v.get("HttpHostNotification").is_some();
    let mut slots = Vec::new();
    visit_json_slots(&mut v, &mut |m| {
        let mut s = HostSlot::default();
        for (k, val) in m.iter() {
            s.set(k, json_text(val));
        }
        slots.push(s);
        false
    });
    if slots.is_empty() && !has_list {
        return Err(DocError::Missing("HttpHostNotificationList"));
    }
    Ok(slots)
}
