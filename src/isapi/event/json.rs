//! JSON bodies (access-control events, heartbeats): serde_json values become the same [`Node`]
//! tree as XML, without recursion and within the same bounds.

use serde_json::Value;

use super::fields::{fill_from_pairs, fill_from_tree, is_scanned_name, is_tree_name};
use super::{
    push_warning, DecodeError, EventInfo, Node, TreeDetail, MAX_TREE_DEPTH, MAX_TREE_NODES,
};

/// Decode a JSON body: serde_json reads the first value into a bounded [`Node`] tree; a body
/// that is not valid JSON still yields the fields a tolerant scan finds.
pub(super) fn decode_json(body: &[u8], detail: TreeDetail) -> Result<EventInfo, DecodeError> {
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
            let (root, truncated, root_children) = json_tree(&value, detail);
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
            if root_children == 0 && info.has_no_fields() {
                return Err(DecodeError::NoJsonFields);
            }
            info.tree = root;
        }
        Some(Err(e)) => {
            let err = DecodeError::InvalidJson {
                reason: e.to_string(),
            };
            fill_from_pairs(&mut info, &scan_json_pairs(body));
            if info.has_no_fields() {
                return Err(err);
            }
            push_warning(&mut warnings, err.to_string());
            info.tree = Node {
                name: "json".to_string(),
                ..Node::default()
            };
        }
        None => return Err(DecodeError::Empty),
    }
    info.warnings = warnings;
    Ok(info)
}

/// What is left of an open JSON container.
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
    /// Children the full tree gives this node (`node.children` holds fewer when only the
    /// fields' elements are kept).
    full_children: usize,
}

/// Convert a JSON value to a bounded `Node` tree without recursion. Returns the tree, whether it
/// was cut, and how many children the full tree's root has (whatever `detail` kept).
fn json_tree(value: &Value, detail: TreeDetail) -> (Node, bool, usize) {
    let fields_only = detail == TreeDetail::FieldsOnly;
    // Whether a finished node goes into the tree (see [`TreeDetail::FieldsOnly`]).
    let keep = |n: &Node| !fields_only || !n.children.is_empty() || is_tree_name(&n.name);
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
            return (node, false, 0);
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
        full_children: 0,
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
                Some(parent) if done.flatten => {
                    parent.full_children += done.full_children;
                    parent.node.children.extend(done.node.children);
                }
                Some(parent) => {
                    parent.full_children += 1;
                    if keep(&done.node) {
                        parent.node.children.push(done.node);
                    }
                }
                None => return (done.node, truncated, done.full_children),
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
                    full_children: 0,
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
                    full_children: 0,
                });
            }
            Value::Object(_) | Value::Array(_) => truncated = true,
            scalar => {
                nodes += 1;
                if let Some(parent) = stack.last_mut() {
                    parent.full_children += 1;
                    if !fields_only || is_tree_name(name) {
                        parent.node.children.push(Node {
                            name: name.to_string(),
                            text: scalar_text(scalar),
                            children: Vec::new(),
                        });
                    }
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
        0,
    )
}

/// A scalar's text, trimmed; None for null, an empty string and containers.
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
pub(super) fn scan_json_pairs(body: &[u8]) -> Vec<(String, String)> {
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
