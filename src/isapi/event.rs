//! `EventNotificationAlert` decoding from XML (quick-xml, lenient) and JSON (serde_json).
//!
//! Elements are matched by local name, never by namespace. Bodies that are not well formed
//! (a raw `&`, a missing close tag) are decoded leniently and still yield the fields that can be
//! read, with a warning.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, Event};
use quick_xml::reader::Reader;
use serde::Serialize;
use serde_json::Value;

/// One element of the event, kept as a tree for display (ANPR, detection regions,
/// access-control fields ...). JSON objects map to the same shape: keys are names, scalars text,
/// arrays repeat the name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Node {
    /// Local name (namespace prefix removed).
    pub name: String,
    /// Trimmed text content, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
}

/// The fields engineers look at first, plus the whole tree.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventInfo {
    /// "xml" or "json".
    pub format: &'static str,
    /// eventType; for `duration` events the relationEvent under DurationList is used when present.
    pub event_type: Option<String>,
    pub event_state: Option<String>,
    /// ipAddress, or ipv6Address.
    pub device_ip: Option<String>,
    pub port: Option<String>,
    pub protocol: Option<String>,
    pub mac: Option<String>,
    /// channelID, or dynChannelID.
    pub channel: Option<String>,
    pub date_time: Option<String>,
    pub active_post_count: Option<String>,
    pub description: Option<String>,
    pub channel_name: Option<String>,
    /// ANPR licensePlate when present.
    pub plate: Option<String>,
    /// JSON deviceID, or serial number on old PSIA bodies.
    pub device_id: Option<String>,
    /// Problems met while decoding leniently (e.g. "not well-formed XML at byte 312: ...").
    pub warnings: Vec<String>,
    /// The root element (XML) or a synthetic root named "json".
    pub tree: Node,
}

/// Why a body is not an event at all (empty, not XML or JSON, or XML/JSON with no event fields).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Deepest element nesting kept in the tree; deeper elements are skipped (with a warning).
pub const MAX_TREE_DEPTH: usize = 64;
/// Most elements kept in the tree; further ones are skipped (with a warning).
pub const MAX_TREE_NODES: usize = 10_000;
/// Most warnings kept per event (a hostile body could otherwise produce one per byte).
const MAX_WARNINGS: usize = 32;
/// Recoverable XML errors tolerated before the tree builder gives up (the text scan takes over).
const MAX_XML_ERRORS: usize = 16;

/// Decode an event body. `content_type` is a hint only: the body is sniffed (first non-space byte
/// `<` or `{`) when the type is missing or misleading (`text/plain`).
pub fn decode_event(body: &[u8], content_type: Option<&str>) -> Result<EventInfo, DecodeError> {
    let bom = if body.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    let rest = body.get(bom..).unwrap_or_default();
    match rest.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(DecodeError(if body.is_empty() {
            "empty body".to_string()
        } else {
            format!("body holds only whitespace ({} bytes)", body.len())
        })),
        Some(b'<') => decode_xml(rest, bom),
        Some(b'{') | Some(b'[') => decode_json(rest),
        Some(_) => Err(DecodeError(format!(
            "body is neither XML nor JSON (Content-Type {}, starts with \"{}\")",
            content_type.unwrap_or("missing"),
            preview(rest, 32)
        ))),
    }
}

/// The first `max` bytes, printable ASCII kept, the rest escaped (for messages).
fn preview(data: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in data.iter().take(max) {
        if b.is_ascii_graphic() || b == b' ' {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if data.len() > max {
        s.push_str("...");
    }
    s
}

fn push_warning(warnings: &mut Vec<String>, w: String) {
    if warnings.len() < MAX_WARNINGS {
        warnings.push(w);
    } else if warnings.len() == MAX_WARNINGS {
        warnings.push("further warnings omitted".to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Field extraction (shared by XML and JSON: both become a `Node` tree)

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
    fn has_no_fields(&self) -> bool {
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

impl Node {
    /// First direct child with this local name (ASCII case-insensitive).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Non-empty text of the first direct child with this name that has some.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.children
            .iter()
            .filter(|c| c.name.eq_ignore_ascii_case(name))
            .find_map(|c| c.text.as_deref().filter(|t| !t.is_empty()))
    }

    /// Non-empty text of the first descendant (depth first, document order) with this name.
    /// Iterative: the tree depth is bounded, but no recursion is needed either.
    pub fn find_text(&self, name: &str) -> Option<&str> {
        let mut stack: Vec<&Node> = self.children.iter().rev().collect();
        while let Some(n) = stack.pop() {
            if n.name.eq_ignore_ascii_case(name) {
                if let Some(t) = n.text.as_deref().filter(|t| !t.is_empty()) {
                    return Some(t);
                }
            }
            stack.extend(n.children.iter().rev());
        }
        None
    }
}

/// Fill the fields from the root's direct children, the plate from any descendant, and the real
/// type of `duration` events.
fn fill_from_tree(info: &mut EventInfo, root: &Node) {
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
        if let Some(rel) = root
            .child("DurationList")
            .and_then(|d| d.find_text("relationEvent"))
        {
            info.event_type = Some(rel.to_string());
        }
    }
}

/// Fill still-missing fields from `(local name, text)` pairs found by a tolerant scan.
fn fill_from_pairs(info: &mut EventInfo, pairs: &[(String, String)]) {
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
        if let Some(rel) = find("relationEvent") {
            info.event_type = Some(rel);
        }
    }
}

/// Names the tolerant scans look for.
fn is_scanned_name(name: &str) -> bool {
    FIELD_NAMES
        .iter()
        .any(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        || name.eq_ignore_ascii_case("licensePlate")
        || name.eq_ignore_ascii_case("relationEvent")
}

// ---------------------------------------------------------------------------------------------
// XML

fn decode_xml(body: &[u8], base: usize) -> Result<EventInfo, DecodeError> {
    // The strict check first: on valid text it is several times faster than the lossy one.
    let text = match std::str::from_utf8(body) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(body),
    };
    let mut warnings = Vec::new();
    if let Cow::Owned(_) = text {
        push_warning(
            &mut warnings,
            "body is not valid UTF-8; decoded lossily".to_string(),
        );
    }
    let mut reader = Reader::from_str(&text);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = false;
        cfg.allow_unmatched_ends = true;
        cfg.allow_dangling_amp = true;
        cfg.check_comments = false;
        cfg.expand_empty_elements = false;
    }
    let mut b = TreeBuilder::default();
    let mut errors = 0usize;
    let mut first_error: Option<String> = None;
    loop {
        let before = reader.buffer_position();
        let at = base.saturating_add(usize::try_from(before).unwrap_or(usize::MAX));
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                if b.root_done {
                    push_warning(
                        &mut warnings,
                        format!("content after the root element at byte {at}"),
                    );
                    break;
                }
                b.open(e.local_name().as_ref(), false);
            }
            Ok(Event::Empty(e)) => {
                if b.root_done {
                    push_warning(
                        &mut warnings,
                        format!("content after the root element at byte {at}"),
                    );
                    break;
                }
                b.open(e.local_name().as_ref(), true);
            }
            Ok(Event::End(e)) => b.close(e.local_name().as_ref(), at, &mut warnings),
            Ok(Event::Text(t)) => b.text(&t.xml10_content(), at, &mut warnings),
            Ok(Event::CData(t)) => b.text(&t.xml10_content(), at, &mut warnings),
            Ok(Event::GeneralRef(r)) => b.text(&resolve_ref(&r), at, &mut warnings),
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                let pos = base
                    .saturating_add(usize::try_from(reader.error_position()).unwrap_or(usize::MAX));
                let w = format!("not well-formed XML at byte {pos}: {e}");
                if first_error.is_none() {
                    first_error = Some(w.clone());
                }
                push_warning(&mut warnings, w);
                errors += 1;
                if errors >= MAX_XML_ERRORS || reader.buffer_position() <= before {
                    break;
                }
            }
        }
    }
    let root = b.finish(&mut warnings);
    let mut info = EventInfo {
        format: "xml",
        ..EventInfo::default()
    };
    if let Some(root) = &root {
        if !root.name.eq_ignore_ascii_case("EventNotificationAlert") {
            push_warning(&mut warnings, format!("root element is {}", root.name));
        }
        fill_from_tree(&mut info, root);
    }
    if errors > 0 || b.damaged {
        // Broken structure can hide fields (a sibling swallowed by an unclosed element).
        fill_from_pairs(&mut info, &scan_xml_pairs(&text));
    }
    if root.is_none() && info.has_no_fields() {
        return Err(DecodeError(match first_error {
            Some(e) => format!("{e} (no element could be read)"),
            None => "XML body without any element".to_string(),
        }));
    }
    info.tree = root.unwrap_or_default();
    info.warnings = warnings;
    Ok(info)
}

/// Resolve an entity or character reference; unknown ones are kept as written.
fn resolve_ref(r: &BytesRef<'_>) -> String {
    let name: &str = r;
    match name {
        "amp" => "&".to_string(),
        "lt" => "<".to_string(),
        "gt" => ">".to_string(),
        "quot" => "\"".to_string(),
        "apos" => "'".to_string(),
        _ => match r.resolve_char_ref() {
            Ok(Some(c)) => c.to_string(),
            _ => format!("&{name};"),
        },
    }
}

/// Builds the bounded `Node` tree from XML events, recovering from missing and stray close tags.
#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Node>,
    root: Option<Node>,
    root_done: bool,
    nodes: usize,
    /// Open elements being skipped (too deep or too many).
    skipped: usize,
    warned_depth: bool,
    warned_nodes: bool,
    warned_outside: bool,
    /// A close tag was missing or stray: the tree's shape may be wrong.
    damaged: bool,
}

impl TreeBuilder {
    fn open(&mut self, name: &str, empty: bool) {
        if self.skipped > 0 || self.stack.len() >= MAX_TREE_DEPTH || self.nodes >= MAX_TREE_NODES {
            if self.stack.len() >= MAX_TREE_DEPTH {
                self.warned_depth = true;
            } else if self.skipped == 0 {
                self.warned_nodes = true;
            }
            if !empty {
                self.skipped = self.skipped.saturating_add(1);
            }
            return;
        }
        self.nodes += 1;
        self.stack.push(Node {
            name: name.to_string(),
            text: None,
            children: Vec::new(),
        });
        if empty {
            self.pop_attach();
        }
    }

    fn close(&mut self, name: &str, at: usize, warnings: &mut Vec<String>) {
        if self.skipped > 0 {
            self.skipped -= 1;
            return;
        }
        match self.stack.iter().rposition(|n| n.name == name) {
            None => {
                self.damaged = true;
                push_warning(warnings, format!("stray close tag </{name}> at byte {at}"));
            }
            Some(i) => {
                while self.stack.len() > i + 1 {
                    self.damaged = true;
                    if let Some(top) = self.stack.last() {
                        push_warning(
                            warnings,
                            format!(
                                "element <{}> not closed before </{name}> at byte {at}",
                                top.name
                            ),
                        );
                    }
                    self.pop_attach();
                }
                self.pop_attach();
            }
        }
    }

    fn text(&mut self, t: &str, at: usize, warnings: &mut Vec<String>) {
        if self.skipped > 0 {
            return;
        }
        match self.stack.last_mut() {
            // Leading white space is trimmed anyway: the line breaks between child elements
            // need no allocation.
            Some(top) if top.text.is_none() && t.trim().is_empty() => {}
            Some(top) => top.text.get_or_insert_with(String::new).push_str(t),
            None => {
                if !t.trim().is_empty() && !self.warned_outside {
                    self.warned_outside = true;
                    push_warning(
                        warnings,
                        format!("text outside the root element at byte {at}"),
                    );
                }
            }
        }
    }

    fn pop_attach(&mut self) {
        let Some(mut node) = self.stack.pop() else {
            return;
        };
        node.text = node.text.take().and_then(|mut t| {
            // Trim in place: most values have nothing to trim.
            let end = t.trim_end().len();
            t.truncate(end);
            let start = t.len() - t.trim_start().len();
            t.drain(..start);
            (!t.is_empty()).then_some(t)
        });
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => {
                self.root = Some(node);
                self.root_done = true;
            }
        }
    }

    fn finish(&mut self, warnings: &mut Vec<String>) -> Option<Node> {
        if !self.stack.is_empty() {
            self.damaged = true;
            let open: Vec<&str> = self.stack.iter().map(|n| n.name.as_str()).collect();
            push_warning(
                warnings,
                format!("body ended with elements not closed: {}", open.join(", ")),
            );
            while !self.stack.is_empty() {
                self.pop_attach();
            }
        }
        if self.warned_depth {
            push_warning(
                warnings,
                format!("elements nested deeper than {MAX_TREE_DEPTH} levels skipped"),
            );
        }
        if self.warned_nodes {
            push_warning(warnings, format!("tree cut at {MAX_TREE_NODES} elements"));
        }
        self.root.take()
    }
}

/// Tolerant scan of broken XML for `<name ...>text</` pairs of the known field names.
fn scan_xml_pairs(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        rest = rest.get(lt + 1..).unwrap_or_default();
        if rest.starts_with(['/', '?', '!']) {
            continue;
        }
        let name_end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/' || c == '<');
        let Some(name_end) = name_end else { break };
        let qname = rest.get(..name_end).unwrap_or_default();
        let local = qname.rsplit(':').next().unwrap_or(qname);
        if local.is_empty() || !is_scanned_name(local) {
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        if rest
            .get(..gt)
            .is_some_and(|t| t.ends_with('/') || t.contains('<'))
        {
            continue;
        }
        let after = rest.get(gt + 1..).unwrap_or_default();
        let Some(next_lt) = after.find('<') else {
            break;
        };
        if !after.get(next_lt..).is_some_and(|t| t.starts_with("</")) {
            continue;
        }
        let value = after.get(..next_lt).unwrap_or_default().trim();
        out.push((local.to_string(), unescape_lenient(value)));
        if out.len() >= MAX_TREE_NODES {
            break;
        }
    }
    out
}

/// Replace the five XML entities and character references; anything else stays as written.
fn unescape_lenient(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        let tail = rest.get(amp..).unwrap_or_default();
        let semi = tail.get(..tail.len().min(12)).and_then(|t| t.find(';'));
        let resolved = semi.and_then(|semi| {
            let name = tail.get(1..semi)?;
            let r = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let num = name.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code).filter(|c| *c != '\0')?
                }
            };
            Some((r, semi))
        });
        match resolved {
            Some((c, semi)) => {
                out.push(c);
                rest = tail.get(semi + 1..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------
// JSON

fn decode_json(body: &[u8]) -> Result<EventInfo, DecodeError> {
    let mut warnings = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut info = EventInfo {
        format: "json",
        ..EventInfo::default()
    };
    match stream.next() {
        Some(Ok(value)) => {
            let off = stream.byte_offset();
            if body
                .get(off..)
                .is_some_and(|t| t.iter().any(|b| !b.is_ascii_whitespace()))
            {
                push_warning(
                    &mut warnings,
                    format!("trailing data after the JSON value at byte {off}"),
                );
            }
            let (root, truncated) = json_tree(&value);
            if truncated {
                push_warning(
                    &mut warnings,
                    format!("JSON tree cut (deeper than {MAX_TREE_DEPTH} levels or more than {MAX_TREE_NODES} nodes)"),
                );
            }
            if !value.is_object() {
                push_warning(
                    &mut warnings,
                    "top-level JSON value is not an object".to_string(),
                );
            }
            fill_from_tree(&mut info, &root);
            if root.children.is_empty() && info.has_no_fields() {
                return Err(DecodeError("JSON body with no event fields".to_string()));
            }
            info.tree = root;
        }
        Some(Err(e)) => {
            let w = format!("not valid JSON: {e}");
            fill_from_pairs(&mut info, &scan_json_pairs(body));
            if info.has_no_fields() {
                return Err(DecodeError(w));
            }
            push_warning(&mut warnings, w);
            info.tree = Node {
                name: "json".to_string(),
                ..Node::default()
            };
        }
        None => return Err(DecodeError("empty body".to_string())),
    }
    info.warnings = warnings;
    Ok(info)
}

enum JsonIter<'a> {
    Obj(serde_json::map::Iter<'a>),
    Arr(std::slice::Iter<'a, Value>, &'a str),
}

/// One open JSON container while the tree is built: its node, what is left of it, and whether
/// it is an array whose elements go straight to the parent (repeated children named by the key).
struct JsonFrame<'a> {
    node: Node,
    iter: JsonIter<'a>,
    flatten: bool,
}

/// Convert a JSON value to a bounded `Node` tree without recursion. Returns whether it was cut.
fn json_tree(value: &Value) -> (Node, bool) {
    let mut truncated = false;
    let mut nodes = 1usize;
    let root_iter = match value {
        Value::Object(m) => JsonIter::Obj(m.iter()),
        Value::Array(a) => JsonIter::Arr(a.iter(), "item"),
        other => {
            let node = Node {
                name: "json".to_string(),
                text: scalar_text(other),
                children: Vec::new(),
            };
            return (node, false);
        }
    };
    let root = Node {
        name: "json".to_string(),
        ..Node::default()
    };
    let mut stack: Vec<JsonFrame<'_>> = vec![JsonFrame {
        node: root,
        iter: root_iter,
        flatten: false,
    }];
    loop {
        let next = match stack.last_mut() {
            None => break,
            Some(f) => match &mut f.iter {
                JsonIter::Obj(it) => it.next().map(|(k, v)| (k.as_str(), v)),
                JsonIter::Arr(it, name) => {
                    let name = *name;
                    it.next().map(|v| (name, v))
                }
            },
        };
        let Some((name, v)) = next else {
            // This container is done: attach it to its parent, or it is the root.
            let Some(done) = stack.pop() else { break };
            match stack.last_mut() {
                Some(parent) if done.flatten => parent.node.children.extend(done.node.children),
                Some(parent) => parent.node.children.push(done.node),
                None => return (done.node, truncated),
            }
            continue;
        };
        if nodes >= MAX_TREE_NODES {
            truncated = true;
            continue;
        }
        match v {
            Value::Object(m) if stack.len() < MAX_TREE_DEPTH => {
                nodes += 1;
                let node = Node {
                    name: name.to_string(),
                    ..Node::default()
                };
                stack.push(JsonFrame {
                    node,
                    iter: JsonIter::Obj(m.iter()),
                    flatten: false,
                });
            }
            Value::Array(a) if stack.len() < MAX_TREE_DEPTH => {
                // Elements become children named after the key, directly under the parent object;
                // an array inside an array gets an intermediate node of that name.
                let in_array = stack
                    .last()
                    .is_some_and(|f| matches!(f.iter, JsonIter::Arr(..)));
                if in_array {
                    nodes += 1;
                }
                let node = Node {
                    name: name.to_string(),
                    ..Node::default()
                };
                stack.push(JsonFrame {
                    node,
                    iter: JsonIter::Arr(a.iter(), name),
                    flatten: !in_array,
                });
            }
            Value::Object(_) | Value::Array(_) => truncated = true,
            scalar => {
                nodes += 1;
                if let Some(parent) = stack.last_mut() {
                    let node = Node {
                        name: name.to_string(),
                        text: scalar_text(scalar),
                        children: Vec::new(),
                    };
                    parent.node.children.push(node);
                }
            }
        }
    }
    (
        Node {
            name: "json".to_string(),
            ..Node::default()
        },
        truncated,
    )
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(_) | Value::Array(_) => None,
    }
}

/// Tolerant scan of broken JSON for `"name": "text"` / `"name": 12` pairs of the known fields.
fn scan_json_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some(q) = rest.find('"') {
        rest = rest.get(q + 1..).unwrap_or_default();
        let Some(end) = rest.find('"') else { break };
        let key = rest.get(..end).unwrap_or_default();
        let after = rest.get(end + 1..).unwrap_or_default();
        let trimmed = after.trim_start();
        let Some(val) = trimmed.strip_prefix(':') else {
            // Not a key: skip past this string.
            rest = after;
            continue;
        };
        let val = val.trim_start();
        rest = val;
        if !is_scanned_name(key) {
            continue;
        }
        if let Some(s) = val.strip_prefix('"') {
            // A string: up to the next unescaped quote.
            let mut escaped = false;
            let close = s.char_indices().find(|&(_, c)| {
                let hit = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                hit
            });
            let Some((close, _)) = close else { break };
            let raw = s.get(..close).unwrap_or_default();
            let quoted = format!("\"{raw}\"");
            let v = serde_json::from_str::<String>(&quoted).unwrap_or_else(|_| raw.to_string());
            out.push((key.to_string(), v.trim().to_string()));
            rest = s.get(close + 1..).unwrap_or_default();
        } else {
            let end = val.find([',', '}', ']', '\n', '\r']).unwrap_or(val.len());
            let token = val.get(..end).unwrap_or_default().trim();
            if !token.is_empty() && token != "null" {
                out.push((key.to_string(), token.to_string()));
            }
        }
        if out.len() >= MAX_TREE_NODES {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.168.1.64</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:12:34:56</macAddress>
<channelID>1</channelID>
<dateTime>2024-03-05T14:22:07+08:00</dateTime>
<activePostCount>3</activePostCount>
<eventType>VMD</eventType>
<eventState>active</eventState>
<eventDescription>Motion alarm</eventDescription>
<channelName>Gate</channelName>
</EventNotificationAlert>
"#;

    fn xml(body: &str) -> EventInfo {
        match decode_event(body.as_bytes(), Some("application/xml")) {
            Ok(e) => e,
            Err(e) => panic!("decode failed: {e}"),
        }
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn vmd_with_namespace() {
        let e = xml(VMD);
        assert_eq!(e.format, "xml");
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        assert_eq!(e.device_ip, s("192.168.1.64"));
        assert_eq!(e.port, s("80"));
        assert_eq!(e.protocol, s("HTTP"));
        assert_eq!(e.mac, s("44:19:b6:12:34:56"));
        assert_eq!(e.channel, s("1"));
        assert_eq!(e.date_time, s("2024-03-05T14:22:07+08:00"));
        assert_eq!(e.active_post_count, s("3"));
        assert_eq!(e.description, s("Motion alarm"));
        assert_eq!(e.channel_name, s("Gate"));
        assert_eq!(e.plate, None);
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        assert_eq!(e.tree.name, "EventNotificationAlert");
        assert_eq!(e.tree.children.len(), 11);
        assert_eq!(e.tree.text, None);
    }

    #[test]
    fn namespace_prefixes_and_variants_are_dropped() {
        for ns in [
            "http://www.hikvision.com/ver10/XMLSchema",
            "http://www.isapi.org/ver20/XMLSchema",
            "urn:psialliance-org",
            "http://www.oem-vendor.example/ver20/XMLSchema",
        ] {
            let body = format!(
                "<h:EventNotificationAlert xmlns:h=\"{ns}\"><h:eventType>IO</h:eventType>\
                 <h:eventState>inactive</h:eventState></h:EventNotificationAlert>"
            );
            let e = xml(&body);
            assert_eq!(e.event_type, s("IO"), "{ns}");
            assert_eq!(e.event_state, s("inactive"));
            assert_eq!(e.tree.name, "EventNotificationAlert");
            assert!(e.warnings.is_empty(), "{:?}", e.warnings);
        }
    }

    #[test]
    fn linedetection_keeps_region_tree() {
        let body = r#"<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>10.0.0.7</ipAddress><portNo>80</portNo><protocol>HTTP</protocol>
<macAddress>bc:ad:28:aa:bb:cc</macAddress><channelID>2</channelID>
<dateTime>2024-03-05T14:22:07+01:00</dateTime><activePostCount>1</activePostCount>
<eventType>linedetection</eventType><eventState>active</eventState>
<eventDescription>linedetection alarm</eventDescription>
<DetectionRegionList>
  <DetectionRegionEntry>
    <regionID>1</regionID><sensitivityLevel>50</sensitivityLevel>
    <RegionCoordinatesList>
      <RegionCoordinates><positionX>120</positionX><positionY>330</positionY></RegionCoordinates>
      <RegionCoordinates><positionX>870</positionX><positionY>310</positionY></RegionCoordinates>
    </RegionCoordinatesList>
    <TargetRect><X>0.41</X><Y>0.22</Y><width>0.08</width><height>0.31</height></TargetRect>
  </DetectionRegionEntry>
</DetectionRegionList>
</EventNotificationAlert>"#;
        let e = xml(body);
        assert_eq!(e.event_type, s("linedetection"));
        assert_eq!(e.channel, s("2"));
        let list = e
            .tree
            .child("DetectionRegionList")
            .map(|l| l.children.len());
        assert_eq!(list, Some(1));
        let entry = e
            .tree
            .child("DetectionRegionList")
            .and_then(|l| l.child("DetectionRegionEntry"));
        let Some(entry) = entry else {
            panic!("no DetectionRegionEntry: {:?}", e.tree)
        };
        assert_eq!(entry.child_text("regionID"), Some("1"));
        let coords = entry
            .child("RegionCoordinatesList")
            .map(|c| c.children.len());
        assert_eq!(coords, Some(2));
        assert_eq!(e.tree.find_text("positionX"), Some("120"));
        assert_eq!(e.tree.find_text("height"), Some("0.31"));
    }

    #[test]
    fn anpr_plate_from_descendant() {
        let body = r#"<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>172.16.0.9</ipAddress><channelID>1</channelID><eventType>ANPR</eventType>
<eventState>active</eventState>
<ANPR><country>3</country><licensePlate>AB123CD</licensePlate><line>1</line>
<direction>forward</direction><confidenceLevel>98</confidenceLevel></ANPR>
</EventNotificationAlert>"#;
        let e = xml(body);
        assert_eq!(e.event_type, s("ANPR"));
        assert_eq!(e.plate, s("AB123CD"));
    }

    #[test]
    fn psia_v1_body_with_serial_number_only() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="1.0" xmlns="urn:psialliance-org">
<serialNumber>DS-7608NI-K20820190101CCRRD12345678WCVU</serialNumber>
<dateTime>2019-07-01T08:00:00</dateTime>
<activePostCount>1</activePostCount>
<eventType>videoloss</eventType>
<eventState>inactive</eventState>
<eventDescription>videoloss alarm</eventDescription>
<dynChannelID>33</dynChannelID>
</EventNotificationAlert>"#;
        let e = xml(body);
        assert_eq!(e.device_id, s("DS-7608NI-K20820190101CCRRD12345678WCVU"));
        assert_eq!(e.device_ip, None);
        assert_eq!(e.mac, None);
        assert_eq!(e.channel, s("33"));
        assert_eq!(e.event_type, s("videoloss"));
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn no_declaration_empty_elements_and_protocol_type() {
        let body = "<EventNotificationAlert><ipv6Address>fe80::1</ipv6Address><ipAddress></ipAddress>\
            <protocolType>HTTP</protocolType><channelID></channelID><activePostCount/>\
            <eventType>fielddetection</eventType><eventState>active</eventState></EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.device_ip, s("fe80::1"));
        assert_eq!(e.protocol, s("HTTP"));
        assert_eq!(e.channel, None);
        assert_eq!(e.active_post_count, None);
        assert_eq!(e.date_time, None);
        assert_eq!(e.event_type, s("fielddetection"));
        assert_eq!(e.tree.children.len(), 7);
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn raw_ampersand_is_kept() {
        let body =
            "<EventNotificationAlert><eventType>VMD</eventType><eventState>active</eventState>\
            <eventDescription>Motion & tamper &amp; more &unknown; &#65;</eventDescription>\
            <channelName>Front & Back</channelName></EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        assert_eq!(e.description, s("Motion & tamper & more &unknown; A"));
        assert_eq!(e.channel_name, s("Front & Back"));
    }

    #[test]
    fn duration_uses_relation_event() {
        let body = "<EventNotificationAlert><eventType>duration</eventType><eventState>active</eventState>\
            <DurationList><Duration><relationEvent>regionEntrance</relationEvent><occurrences>2</occurrences>\
            </Duration></DurationList></EventNotificationAlert>";
        assert_eq!(xml(body).event_type, s("regionEntrance"));
        // Without a DurationList the type stays as sent.
        let body =
            "<EventNotificationAlert><eventType>duration</eventType></EventNotificationAlert>";
        assert_eq!(xml(body).event_type, s("duration"));
    }

    #[test]
    fn missing_and_mismatched_close_tags_recover() {
        // channelID never closed; a stray </foo>; body ends inside the root.
        let body = "<EventNotificationAlert><channelID>4<eventType>VMD</eventType></foo>\
            <eventState>active</eventState>";
        let e = xml(body);
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        assert!(
            e.warnings
                .iter()
                .any(|w| w.contains("stray close tag </foo>")),
            "{:?}",
            e.warnings
        );
        assert!(
            e.warnings.iter().any(|w| w.contains("not closed")),
            "{:?}",
            e.warnings
        );

        // A close tag for an outer element closes the inner one too.
        let body =
            "<EventNotificationAlert><ANPR><licensePlate>XY9</ANPR><eventType>ANPR</eventType>\
            </EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.plate, s("XY9"));
        assert_eq!(e.event_type, s("ANPR"));
        assert_eq!(e.tree.children.len(), 2);
    }

    #[test]
    fn broken_xml_falls_back_to_scan() {
        // An unterminated tag in the middle: the rest is still read.
        let body = "<EventNotificationAlert><ipAddress>1.2.3.4</ipAddress><bad attr=\"x></bad>\
            <eventType>shelteralarm</eventType><eventState>active</eventState></EventNotificationAlert>";
        let e = xml(body);
        assert_eq!(e.event_type, s("shelteralarm"));
        assert_eq!(e.event_state, s("active"));
        assert_eq!(e.device_ip, s("1.2.3.4"));
        assert!(
            e.warnings
                .iter()
                .any(|w| w.starts_with("not well-formed XML at byte")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn trailing_garbage_and_other_root() {
        let body =
            "<EventNotificationAlert><eventType>IO</eventType></EventNotificationAlert>\0\0junk";
        let e = xml(body);
        assert_eq!(e.event_type, s("IO"));
        assert!(
            e.warnings.iter().any(|w| w.contains("outside the root")),
            "{:?}",
            e.warnings
        );

        let body = "<ResponseStatus><statusCode>1</statusCode></ResponseStatus>";
        let e = xml(body);
        assert_eq!(e.tree.name, "ResponseStatus");
        assert_eq!(
            e.warnings,
            vec!["root element is ResponseStatus".to_string()]
        );
    }

    #[test]
    fn heartbeat_json_under_text_plain() {
        let body = "\u{feff}  {\"ipAddress\":\"192.168.1.20\",\"portNo\":80,\"protocol\":\"HTTP\",\
            \"macAddress\":\"a4:14:37:00:11:22\",\"channelID\":1,\"dateTime\":\"2024-03-05T14:22:07+08:00\",\
            \"activePostCount\":1,\"eventType\":\"heartBeat\",\"eventState\":\"active\",\
            \"eventDescription\":\"heartBeat\",\"deviceID\":\"test0123\"}";
        let e = match decode_event(body.as_bytes(), Some("text/plain")) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.format, "json");
        assert_eq!(e.event_type, s("heartBeat"));
        assert_eq!(e.port, s("80"));
        assert_eq!(e.channel, s("1"));
        assert_eq!(e.active_post_count, s("1"));
        assert_eq!(e.mac, s("a4:14:37:00:11:22"));
        assert_eq!(e.device_id, s("test0123"));
        assert_eq!(e.tree.name, "json");
        assert_eq!(e.tree.children.len(), 11);
        assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    }

    #[test]
    fn access_controller_json_tree() {
        let body = r#"{"ipAddress":"10.1.1.5","portNo":80,"protocol":"HTTP","macAddress":"e0:ca:3c:01:02:03",
            "channelID":1,"dateTime":"2024-03-05T09:00:01+08:00","activePostCount":1,
            "eventType":"AccessControllerEvent","eventState":"active","eventDescription":"Access Controller Event",
            "deviceID":"term-7","AccessControllerEvent":{"deviceName":"Door 1","majorEventType":5,
            "subEventType":75,"cardNo":"1234567","serialNo":812,"verifyMode":"cardOrFace",
            "currentVerifyMode":"cardOrFace","picturesNumber":1,"mask":"no"},
            "list":[1,2,[3]], "none": null, "flag": true}"#;
        let e = match decode_event(body.as_bytes(), None) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.event_type, s("AccessControllerEvent"));
        assert_eq!(e.device_id, s("term-7"));
        let ace = e.tree.child("AccessControllerEvent");
        assert_eq!(ace.and_then(|n| n.child_text("majorEventType")), Some("5"));
        assert_eq!(ace.and_then(|n| n.child_text("subEventType")), Some("75"));
        assert_eq!(ace.and_then(|n| n.child_text("cardNo")), Some("1234567"));
        assert_eq!(ace.and_then(|n| n.child_text("serialNo")), Some("812"));
        // Arrays repeat the key; a nested array gets an intermediate node.
        let lists: Vec<&Node> = e
            .tree
            .children
            .iter()
            .filter(|c| c.name == "list")
            .collect();
        assert_eq!(lists.len(), 3);
        assert_eq!(lists[0].text.as_deref(), Some("1"));
        assert_eq!(lists[1].text.as_deref(), Some("2"));
        assert_eq!(lists[2].children.len(), 1);
        assert_eq!(lists[2].children[0].text.as_deref(), Some("3"));
        assert_eq!(e.tree.child("none").map(|n| n.text.clone()), Some(None));
        assert_eq!(e.tree.child_text("flag"), Some("true"));
    }

    #[test]
    fn json_plate_nested() {
        let body = r#"{"eventType":"ANPR","ANPR":{"Plates":[{"licensePlate":""},{"licensePlate":"KA01AB1234"}]}}"#;
        let e = match decode_event(body.as_bytes(), Some("application/json")) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.plate, s("KA01AB1234"));
    }

    #[test]
    fn broken_json_falls_back_to_scan() {
        // Truncated body (e.g. a capture gap or a cut metadata part).
        let body = br#"{"ipAddress":"10.0.0.2","portNo":8080,"eventType":"fielddetection","eventState":"act"#;
        let e = match decode_event(body, Some("application/json")) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(e.event_type, s("fielddetection"));
        assert_eq!(e.device_ip, s("10.0.0.2"));
        assert_eq!(e.port, s("8080"));
        assert_eq!(e.event_state, None);
        assert!(
            e.warnings.iter().any(|w| w.starts_with("not valid JSON")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn not_an_event() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty body"),
            (b"  \r\n", "whitespace"),
            (b"HTTP/1.1 200 OK", "neither XML nor JSON"),
            (b"\xff\xd8\xff\xe0JFIF", "neither XML nor JSON"),
            (b"{}", "no event fields"),
            (b"{\"a\":", "not valid JSON"),
            (b"< not xml", "not well-formed XML"),
        ];
        for (body, want) in cases {
            match decode_event(body, Some("application/xml")) {
                Ok(e) => panic!("{body:?} decoded: {e:?}"),
                Err(DecodeError(msg)) => assert!(msg.contains(want), "{body:?}: {msg}"),
            }
        }
    }

    #[test]
    fn deep_xml_does_not_overflow_and_is_bounded() {
        let mut body = String::from("<EventNotificationAlert><eventType>VMD</eventType>");
        for _ in 0..10_000 {
            body.push_str("<a>");
        }
        body.push('x');
        for _ in 0..10_000 {
            body.push_str("</a>");
        }
        body.push_str("<eventState>active</eventState></EventNotificationAlert>");
        let e = xml(&body);
        assert_eq!(e.event_type, s("VMD"));
        assert_eq!(e.event_state, s("active"));
        // Root + 63 nested <a> levels.
        let mut depth = 1;
        let mut n = &e.tree;
        while let Some(c) = n.children.iter().find(|c| c.name == "a") {
            depth += 1;
            n = c;
        }
        assert_eq!(depth, MAX_TREE_DEPTH);
        assert!(
            e.warnings.iter().any(|w| w.contains("deeper than 64")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn many_nodes_are_bounded() {
        let mut body = String::from("<EventNotificationAlert><eventType>VMD</eventType>");
        for _ in 0..20_000 {
            body.push_str("<r/>");
        }
        body.push_str("</EventNotificationAlert>");
        let e = xml(&body);
        // Root + eventType + 9_998 <r/>.
        assert_eq!(e.tree.children.len(), MAX_TREE_NODES - 1);
        assert!(
            e.warnings.iter().any(|w| w.contains("cut at 10000")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn deep_json_does_not_overflow() {
        let mut body = String::from("{\"eventType\":\"VMD\",\"x\":");
        body.push_str(&"[".repeat(10_000));
        body.push_str(&"]".repeat(10_000));
        body.push('}');
        let e = match decode_event(body.as_bytes(), None) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        // serde_json refuses it (recursion limit); the scan still finds the type.
        assert_eq!(e.event_type, s("VMD"));
        assert!(!e.warnings.is_empty());

        // 100 levels of objects: parsed, tree cut at MAX_TREE_DEPTH.
        let mut body = String::from("{\"eventType\":\"VMD\",\"x\":");
        body.push_str(&"{\"y\":".repeat(100));
        body.push('1');
        body.push_str(&"}".repeat(100));
        body.push('}');
        let e = match decode_event(body.as_bytes(), None) {
            Ok(e) => e,
            Err(e) => panic!("{e}"),
        };
        let mut depth = 1;
        let mut n = &e.tree;
        while let Some(c) = n.children.iter().find(|c| c.name == "x" || c.name == "y") {
            depth += 1;
            n = c;
        }
        assert_eq!(depth, MAX_TREE_DEPTH);
        assert!(
            e.warnings.iter().any(|w| w.contains("JSON tree cut")),
            "{:?}",
            e.warnings
        );
    }

    #[test]
    fn scan_helpers() {
        assert_eq!(
            unescape_lenient("a &amp; b & c &#x41;&#66; &lt;x&gt; &bogus"),
            "a & b & c AB <x> &bogus"
        );
        let pairs = scan_xml_pairs("<a><ns:eventType attr='1'>VMD</ns:eventType><eventState/><x>y</x><eventState>on</eventState");
        let want = [("eventType", "VMD"), ("eventState", "on")]
            .map(|(a, b)| (a.to_string(), b.to_string()));
        assert_eq!(pairs, want.to_vec());
        let pairs =
            scan_json_pairs(br#"{"x":"eventType","eventType" : "I\"O", "portNo": 80 , "y":"#);
        assert_eq!(
            pairs,
            vec![
                ("eventType".to_string(), "I\"O".to_string()),
                ("portNo".to_string(), "80".to_string())
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Arbitrary bytes, and a real body with bytes replaced or cut: never a panic, and the
        /// tree stays within its bounds.
        #[test]
        fn never_panics(
            junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            edits in proptest::collection::vec((0usize..2000, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..2000,
        ) {
            let _ = decode_event(&junk, None);
            let mut body = VMD.as_bytes().to_vec();
            for (at, b) in edits {
                let at = at % body.len();
                body[at] = b;
            }
            body.truncate(cut.max(1));
            if let Ok(e) = decode_event(&body, Some("application/xml")) {
                proptest::prop_assert!(e.tree.children.len() <= MAX_TREE_NODES);
            }
            let json = br#"{"eventType":"VMD","eventState":"active","x":[{"y":1}]}"#;
            let mut j = json.to_vec();
            j.truncate(cut % (json.len() + 1));
            let _ = decode_event(&j, None);
        }
    }
}
