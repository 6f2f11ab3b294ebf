//! The alarm-host capabilities (`HttpHostNotificationCap`) and their readable summary.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;

use super::*;

/// One capability element: its path below the root, value and `opt`/`min`/`max`/`def`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CapItem {
    pub path: String,
    pub text: String,
    pub opt: String,
    pub min: String,
    pub max: String,
    pub def: String,
}

impl CapItem {
    fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }

    fn is_empty(&self) -> bool {
        self.text.is_empty()
            && self.opt.is_empty()
            && self.min.is_empty()
            && self.max.is_empty()
            && self.def.is_empty()
    }

    /// `HTTP, HTTPS`, `1-65535`, `up to 128`, or the text.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.text.is_empty() {
            parts.push(self.text.clone());
        }
        if !self.opt.is_empty() {
            parts.push(
                self.opt
                    .split(',')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        match (self.min.is_empty(), self.max.is_empty()) {
            (false, false) => parts.push(format!("{}-{}", self.min, self.max)),
            (true, false) => parts.push(format!("up to {}", self.max)),
            (false, true) => parts.push(format!("from {}", self.min)),
            _ => {}
        }
        if !self.def.is_empty() {
            parts.push(format!("(default {})", self.def));
        }
        parts.join(" ")
    }
}

/// Parse `HttpHostNotificationCap` (XML attributes or JSON `@opt`-style objects).
pub fn parse_caps(body: &[u8]) -> Result<Vec<CapItem>, DocError> {
    let mut items = Vec::new();
    match sniff_format(body) {
        Some(ApiFormat::Xml) => {
            let mut reader = Reader::from_reader(body);
            let mut stack: Vec<CapItem> = Vec::new();
            let mut root_seen = false;
            loop {
                let ev = reader.read_event().map_err(xml_err)?;
                let (start, empty) = match &ev {
                    Event::Start(e) => (Some(e.clone()), false),
                    Event::Empty(e) => (Some(e.clone()), true),
                    _ => (None, false),
                };
                if let Some(e) = start {
                    let name = e.local_name().as_ref().to_string();
                    if !root_seen {
                        root_seen = true;
                        if !empty {
                            stack.push(CapItem {
                                path: String::new(),
                                ..Default::default()
                            });
                        }
                        continue;
                    }
                    let parent = stack.last().map(|p| p.path.clone()).unwrap_or_default();
                    let path = if parent.is_empty() {
                        name
                    } else {
                        format!("{parent}.{name}")
                    };
                    let mut item = CapItem {
                        path,
                        ..Default::default()
                    };
                    for a in e.attributes().flatten() {
                        let v = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|c| c.into_owned())
                            .unwrap_or_default();
                        match a.key.local_name().as_ref() {
                            "opt" => item.opt = v,
                            "min" => item.min = v,
                            "max" => item.max = v,
                            "def" => item.def = v,
                            _ => {}
                        }
                    }
                    if empty {
                        if !item.is_empty() {
                            items.push(item);
                        }
                    } else {
                        stack.push(item);
                    }
                    continue;
                }
                match ev {
                    Event::Text(t) => {
                        if let Some(top) = stack.last_mut() {
                            top.text.push_str(t.xml10_content().trim());
                        }
                    }
                    Event::GeneralRef(r) => {
                        if let Some(top) = stack.last_mut() {
                            top.text.push_str(&text_of_ref(&r));
                        }
                    }
                    Event::End(_) => {
                        if let Some(item) = stack.pop() {
                            if !item.path.is_empty() && !item.is_empty() {
                                items.push(item);
                            }
                        }
                    }
                    Event::Eof => break,
                    _ => {}
                }
            }
            if !root_seen {
                return Err(DocError::Missing("HttpHostNotificationCap"));
            }
        }
        Some(ApiFormat::Json) => {
            let v: Value =
                serde_json::from_slice(body).map_err(|e| DocError::Json(e.to_string()))?;
            let root = match &v {
                Value::Object(m) if m.len() == 1 => {
                    m.values().next().cloned().unwrap_or(Value::Null)
                }
                other => other.clone(),
            };
            fn walk(v: &Value, path: &str, out: &mut Vec<CapItem>) {
                match v {
                    Value::Object(m) => {
                        let mut item = CapItem {
                            path: path.to_string(),
                            ..Default::default()
                        };
                        let mut attrs = false;
                        for (k, c) in m {
                            let key = k.trim_start_matches('@');
                            match key {
                                "opt" | "min" | "max" | "def" if !matches!(c, Value::Object(_)) => {
                                    attrs = true;
                                    let t = match c {
                                        Value::Array(a) => {
                                            a.iter().map(json_text).collect::<Vec<_>>().join(",")
                                        }
                                        o => json_text(o),
                                    };
                                    match key {
                                        "opt" => item.opt = t,
                                        "min" => item.min = t,
                                        "max" => item.max = t,
                                        _ => item.def = t,
                                    }
                                }
                                _ => {
                                    let p = if path.is_empty() {
                                        k.clone()
                                    } else {
                                        format!("{path}.{k}")
                                    };
                                    walk(c, &p, out);
                                }
                            }
                        }
                        if attrs && !path.is_empty() {
                            out.push(item);
                        }
                    }
                    Value::Array(a) => {
                        let t = a.iter().map(json_text).collect::<Vec<_>>().join(",");
                        out.push(CapItem {
                            path: path.to_string(),
                            opt: t,
                            ..Default::default()
                        });
                    }
                    other => out.push(CapItem {
                        path: path.to_string(),
                        text: json_text(other),
                        ..Default::default()
                    }),
                }
            }
            walk(&root, "", &mut items);
            items.sort_by(|a, b| a.path.cmp(&b.path));
        }
        None => return Err(DocError::NotXmlOrJson),
    }
    Ok(items)
}

/// Known capability names, with the label shown for them (several spellings per model).
const CAP_LABELS: [(&str, &[&str]); 11] = [
    ("Host slots", &["hostNumber"]),
    ("Protocols", &["protocolType"]),
    ("Formats (parameterFormatType)", &["parameterFormatType"]),
    ("Address types", &["addressingFormatType"]),
    ("IP versions", &["ipAddress"]),
    ("Port range", &["portNo"]),
    ("URL length", &["url", "urlLen"]),
    ("Authentication methods", &["httpAuthenticationMethod"]),
    (
        "Picture upload types",
        &["uploadImagesDataType", "picUploadType", "uploadPicType"],
    ),
    ("Resend after break (httpBroken)", &["httpBroken"]),
    (
        "User name / password length",
        &["userName", "userNameLen", "password", "passwordLen"],
    ),
];

/// Readable summary: (label, value) rows for the known capabilities, then every other item by
/// its path.
pub fn caps_summary(items: &[CapItem]) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut used = vec![false; items.len()];
    for (label, names) in CAP_LABELS {
        let mut vals = Vec::new();
        for (i, it) in items.iter().enumerate() {
            // Only top-level (or one level down in JSON wrappers) items carry these names.
            if names.contains(&it.name()) && !it.path.contains('.') {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                let d = it.describe();
                if label.starts_with("User name") {
                    vals.push(format!("{} {}", it.name(), d));
                } else {
                    vals.push(d);
                }
            }
        }
        if !vals.is_empty() {
            rows.push((label.to_string(), vals.join("; ")));
        }
    }
    for (i, it) in items.iter().enumerate() {
        if !used.get(i).copied().unwrap_or(true) {
            rows.push((it.path.clone(), it.describe()));
        }
    }
    rows
}
