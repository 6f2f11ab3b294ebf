//! XML bodies: quick-xml reads them leniently into a bounded [`Node`] tree, recovering from
//! missing and stray close tags; when the structure is broken a tolerant text scan finds the
//! fields the tree may have lost.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, Event};
use quick_xml::reader::Reader;

use super::fields::{fill_from_pairs, fill_from_tree, is_scanned_name, is_tree_name};
use super::{
    push_warning, DecodeError, EventInfo, Node, TreeDetail, MAX_TREE_DEPTH, MAX_TREE_NODES,
};

/// Recoverable XML errors tolerated before the tree builder gives up (the text scan takes over).
const MAX_XML_ERRORS: usize = 16;

/// Decode an XML body; `base` is its offset in the body as received (a BOM before it), so that
/// every byte offset in a warning counts from the body's start.
pub(super) fn decode_xml(
    body: &[u8],
    base: usize,
    detail: TreeDetail,
) -> Result<EventInfo, DecodeError> {
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
    let mut b = TreeBuilder {
        fields_only: detail == TreeDetail::FieldsOnly,
        ..TreeBuilder::default()
    };
    let mut errors = 0usize;
    let mut first_error: Option<(usize, String)> = None;
    loop {
        let before = reader.buffer_position();
        let at = base.saturating_add(usize::try_from(before).unwrap_or(usize::MAX));
        match reader.read_event() {
            Ok(Event::Start(e)) if !b.root_done => b.open(e.local_name().as_ref(), false),
            Ok(Event::Empty(e)) if !b.root_done => b.open(e.local_name().as_ref(), true),
            Ok(Event::Start(_) | Event::Empty(_)) => {
                push_warning(
                    &mut warnings,
                    format!("content after the root element at byte {at}"),
                );
                break;
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
                let reason = e.to_string();
                push_warning(
                    &mut warnings,
                    format!("not well-formed XML at byte {pos}: {reason}"),
                );
                if first_error.is_none() {
                    first_error = Some((pos, reason));
                }
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
        return Err(match first_error {
            Some((offset, reason)) => DecodeError::MalformedXml { offset, reason },
            None => DecodeError::NoXmlElement,
        });
    }
    info.tree = root.unwrap_or_default();
    info.warnings = warnings;
    Ok(info)
}

/// Resolve an entity or character reference met by the reader; unknown ones are kept as written.
fn resolve_ref(r: &BytesRef<'_>) -> String {
    let name: &str = r;
    resolve_entity(name).map_or_else(|| format!("&{name};"), String::from)
}

/// The character that the reference `&name;` stands for: one of the five predefined XML entities,
/// or a character reference `#N` / `#xH` (quick-xml's rules: no sign, a lowercase `x`, never NUL).
/// None for anything else, which callers keep as written. The one resolver of both the tree
/// builder and the tolerant scan, so that a value reads the same whichever path found it.
fn resolve_entity(name: &str) -> Option<char> {
    match quick_xml::escape::resolve_xml_entity(name) {
        Some(s) => s.chars().next(),
        None => BytesRef::new(name).resolve_char_ref().ok().flatten(),
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
    /// [`TreeDetail::FieldsOnly`]: text is kept only for [`is_tree_name`] elements, and an
    /// element is attached only if it is one or holds one. Every element is still opened and
    /// counted, so limits, warnings and close-tag recovery are those of the full tree.
    fields_only: bool,
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
        let fields_only = self.fields_only;
        match self.stack.last_mut() {
            // Leading white space is trimmed anyway: the line breaks between child elements
            // need no allocation.
            Some(top) if top.text.is_none() && t.trim().is_empty() => {}
            Some(top) if fields_only && !is_tree_name(&top.name) => {}
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
            Some(_)
                if self.fields_only && node.children.is_empty() && !is_tree_name(&node.name) => {}
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
pub(super) fn scan_xml_pairs(text: &str) -> Vec<(String, String)> {
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
pub(super) fn unescape_lenient(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        let tail = rest.get(amp..).unwrap_or_default();
        let semi = tail.get(..tail.len().min(12)).and_then(|t| t.find(';'));
        let resolved = semi.and_then(|semi| Some((resolve_entity(tail.get(1..semi)?)?, semi)));
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
