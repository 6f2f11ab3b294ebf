//! Changing one slot in the device's own document (everything else left as it was), and the
//! field-by-field difference of two readings.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

use super::*;

/// What `device set` changes in one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotChange {
    pub address: Option<String>,
    pub port: Option<u16>,
    pub url: Option<String>,
    pub protocol: Option<String>,
    pub format: Option<String>,
}

impl SlotChange {
    /// True when nothing is to be changed.
    pub fn is_empty(&self) -> bool {
        self == &SlotChange::default()
    }

    /// The element assignments this change means, in schema order. An IP address selects
    /// `ipaddress` addressing (IPv6 goes to `ipv6Address`), anything else `hostname`.
    pub fn assignments(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(u) = &self.url {
            let u = if u.starts_with('/') {
                u.clone()
            } else {
                format!("/{u}")
            };
            out.push(("url", u));
        }
        if let Some(p) = &self.protocol {
            out.push(("protocolType", p.to_ascii_uppercase()));
        }
        if let Some(f) = &self.format {
            out.push(("parameterFormatType", f.to_ascii_uppercase()));
        }
        if let Some(a) = &self.address {
            match a.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => {
                    out.push(("addressingFormatType", "ipaddress".into()));
                    out.push(("ipAddress", ip.to_string()));
                }
                Ok(IpAddr::V6(ip)) => {
                    out.push(("addressingFormatType", "ipaddress".into()));
                    out.push(("ipv6Address", ip.to_string()));
                }
                Err(_) => {
                    out.push(("addressingFormatType", "hostname".into()));
                    out.push(("hostName", a.clone()));
                }
            }
        }
        if let Some(p) = self.port {
            out.push(("portNo", p.to_string()));
        }
        out.sort_by_key(|(n, _)| slot_rank(n).unwrap_or(usize::MAX));
        out
    }

    /// Apply to a parsed slot (what the device should show afterwards).
    pub fn apply(&self, slot: &mut HostSlot) {
        for (name, value) in self.assignments() {
            slot.set(name, value);
        }
    }
}

/// Edit slot `id` of a host list document in its own format and return the new document.
pub fn edit_host_list(body: &[u8], id: &str, change: &SlotChange) -> Result<Vec<u8>, DocError> {
    match sniff_format(body) {
        Some(ApiFormat::Xml) => edit_xml(body, id, change),
        Some(ApiFormat::Json) => edit_json(body, id, change),
        None => Err(DocError::NotXmlOrJson),
    }
}

struct XmlSlotSpan {
    id: String,
    /// (local name, start of the element, end of its start tag, start of its end tag, end)
    children: Vec<(String, usize, usize, usize, usize, bool)>,
    end_tag_start: usize,
}

fn xml_slot_spans(body: &[u8]) -> Result<Vec<XmlSlotSpan>, DocError> {
    let mut reader = Reader::from_reader(body);
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut cur: Option<XmlSlotSpan> = None;
    let mut child_start = (String::new(), 0usize, 0usize);
    let mut id_text = String::new();
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let ev = reader.read_event().map_err(xml_err)?;
        let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match ev {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if depth == 0 {
                    if name == "HttpHostNotification" {
                        depth = 1;
                        cur = Some(XmlSlotSpan {
                            id: String::new(),
                            children: Vec::new(),
                            end_tag_start: 0,
                        });
                    }
                } else {
                    depth = depth.saturating_add(1);
                    if depth == 2 {
                        child_start = (name, before, after);
                        id_text.clear();
                    }
                }
            }
            Event::Empty(e) if depth == 1 => {
                let name = e.local_name().as_ref().to_string();
                if let Some(c) = cur.as_mut() {
                    c.children.push((name, before, after, after, after, true));
                }
            }
            Event::Text(t) if depth == 2 && child_start.0 == "id" => {
                id_text.push_str(&t.xml10_content())
            }
            Event::End(_) => {
                if depth == 2 {
                    if let Some(c) = cur.as_mut() {
                        let (name, s, cs) = std::mem::take(&mut child_start);
                        if name == "id" {
                            c.id = id_text.trim().to_string();
                        }
                        c.children.push((name, s, cs, before, after, false));
                    }
                } else if depth == 1 {
                    if let Some(mut c) = cur.take() {
                        c.end_tag_start = before;
                        spans.push(c);
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(spans)
}

fn edit_xml(body: &[u8], id: &str, change: &SlotChange) -> Result<Vec<u8>, DocError> {
    let spans = xml_slot_spans(body)?;
    let slot = spans
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| DocError::NoSuchSlot(id.to_string()))?;
    // (start, end, replacement), non-overlapping.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (name, value) in change.assignments() {
        let escaped = quick_xml::escape::escape(value.as_str()).into_owned();
        if let Some((_, s, cs, es, e, empty)) = slot.children.iter().find(|c| c.0 == name) {
            if *empty {
                edits.push((*s, *e, format!("<{name}>{escaped}</{name}>")));
            } else {
                edits.push((*cs, *es, escaped));
            }
        } else {
            let rank = slot_rank(name).unwrap_or(usize::MAX);
            let at = slot
                .children
                .iter()
                .find(|c| slot_rank(&c.0).is_some_and(|r| r > rank))
                .map(|c| c.1)
                .unwrap_or(slot.end_tag_start);
            edits.push((at, at, format!("<{name}>{escaped}</{name}>")));
        }
    }
    // Apply from the end so earlier offsets stay valid; insertions at the same point keep order.
    edits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut out = Vec::with_capacity(body.len().saturating_add(256));
    let mut pos = 0usize;
    for (s, e, rep) in edits {
        let chunk = body
            .get(pos..s)
            .ok_or_else(|| DocError::Xml("edit offsets out of order".into()))?;
        out.extend_from_slice(chunk);
        out.extend_from_slice(rep.as_bytes());
        pos = e.max(pos);
    }
    out.extend_from_slice(body.get(pos..).unwrap_or_default());
    Ok(out)
}

fn edit_json(body: &[u8], id: &str, change: &SlotChange) -> Result<Vec<u8>, DocError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
    let found = visit_json_slots(&mut v, &mut |m| {
        let sid = m.get("id").map(json_text).unwrap_or_default();
        if sid != id {
            return false;
        }
        for (name, value) in change.assignments() {
            let new = match m.get(name) {
                Some(Value::Number(_)) | None if name == "portNo" => value
                    .parse::<u64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(value)),
                Some(Value::Number(_)) => value
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(value)),
                _ => Value::String(value),
            };
            m.insert(name.to_string(), new);
        }
        true
    });
    if !found {
        return Err(DocError::NoSuchSlot(id.to_string()));
    }
    serde_json::to_vec(&v).map_err(|e| DocError::Json(e.to_string()))
}

/// One field that differs between two readings of the host list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotDiff {
    pub id: String,
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// Field-by-field difference of two host lists, slots matched by id.
pub fn diff_slots(before: &[HostSlot], after: &[HostSlot]) -> Vec<SlotDiff> {
    let mut out = Vec::new();
    for a in after {
        let empty = HostSlot::default();
        let b = before.iter().find(|b| b.id == a.id).unwrap_or(&empty);
        for ((name, bv), (_, av)) in b.fields().iter().zip(a.fields().iter()) {
            if bv != av {
                out.push(SlotDiff {
                    id: a.id.clone(),
                    field: name,
                    before: bv.to_string(),
                    after: av.to_string(),
                });
            }
        }
    }
    out
}
