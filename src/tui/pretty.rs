//! Body display helpers for the request tab: indented XML (quick-xml reader -> indenting writer),
//! pretty JSON (serde_json), a hex dump for binary or broken bodies, and the event tree. All are
//! bounded and never panic on broken input: what cannot be formatted is shown as it came.

use quick_xml::events::{BytesText, Event};
use quick_xml::reader::Reader;
use quick_xml::writer::Writer;

use crate::isapi::Node;

/// Longest line kept (longer ones, such as base64 pictures inside XML, are cut with a marker).
const MAX_LINE_CHARS: usize = 400;

/// Indent XML by two spaces per level. On a well-formedness error the part already read stays
/// indented and the rest follows as it came; the error is returned with it.
pub fn pretty_xml(text: &str, max_lines: usize) -> (Vec<String>, Option<String>) {
    let mut reader = Reader::from_str(text);
    {
        let cfg = reader.config_mut();
        cfg.trim_text(true);
        cfg.check_end_names = false;
        cfg.allow_unmatched_ends = true;
    }
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let mut error = None;
    let mut last_ok: usize = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(ev) => {
                let ev = match ev {
                    // Keep entity references inline with their text.
                    Event::GeneralRef(r) => {
                        let name: &str = &r;
                        Event::Text(BytesText::from_escaped(format!("&{name};")))
                    }
                    other => other,
                };
                if writer.write_event(ev).is_err() {
                    break;
                }
                last_ok = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            }
            Err(e) => {
                error = Some(format!(
                    "not well-formed XML at byte {}: {e}",
                    reader.error_position()
                ));
                break;
            }
        }
        if writer.get_ref().len() > max_lines.saturating_mul(MAX_LINE_CHARS) {
            break;
        }
    }
    let formatted = String::from_utf8_lossy(writer.get_ref()).into_owned();
    let mut lines: Vec<String> = formatted
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(cut_line)
        .collect();
    if error.is_some() {
        let rest = text.get(last_ok..).unwrap_or("");
        if !rest.trim().is_empty() {
            lines.push("(as received from here:)".to_string());
            lines.extend(rest.lines().map(cut_line));
        }
    }
    truncate_lines(&mut lines, max_lines);
    (lines, error)
}

/// Why metadata that looks like JSON could not be pretty-printed (it is then shown as received).
#[derive(Debug, thiserror::Error)]
pub enum NotPrettyJson {
    /// The text does not parse.
    #[error("not valid JSON: {0}")]
    Invalid(serde_json::Error),
    /// The parsed value could not be written back.
    #[error("{0}")]
    Write(serde_json::Error),
}

/// Pretty-print JSON; `Err` carries the parse error (show the text raw then).
pub fn pretty_json(text: &str, max_lines: usize) -> Result<Vec<String>, NotPrettyJson> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(NotPrettyJson::Invalid)?;
    let s = serde_json::to_string_pretty(&v).map_err(NotPrettyJson::Write)?;
    let mut lines: Vec<String> = s.lines().map(cut_line).collect();
    truncate_lines(&mut lines, max_lines);
    Ok(lines)
}

/// Text as it came, line by line, bounded.
pub fn raw_lines(text: &str, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .take(max_lines.saturating_add(1))
        .map(cut_line)
        .collect();
    truncate_lines(&mut lines, max_lines);
    lines
}

/// True when the text holds bytes that were not UTF-8 (replacement characters) or control
/// characters other than tab, CR and LF: show it as hex.
pub fn looks_binary(text: &str) -> bool {
    text.chars()
        .any(|c| c == '\u{FFFD}' || (c.is_control() && !matches!(c, '\t' | '\r' | '\n')))
}

/// Classic hex dump: offset, 16 bytes in hex, the printable ASCII. At most `max_bytes` bytes.
pub fn hex_dump(bytes: &[u8], max_bytes: usize) -> Vec<String> {
    let shown = bytes.get(..max_bytes.min(bytes.len())).unwrap_or(bytes);
    let mut out = Vec::with_capacity(shown.len() / 16 + 2);
    for (i, chunk) in shown.chunks(16).enumerate() {
        let mut hex = String::with_capacity(48);
        for (j, b) in chunk.iter().enumerate() {
            if j == 8 {
                hex.push(' ');
            }
            hex.push_str(&format!("{b:02x} "));
        }
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push(format!("{:08x}  {hex:<49} |{ascii}|", i.saturating_mul(16)));
    }
    if bytes.len() > shown.len() {
        out.push(format!("... {} more bytes", bytes.len() - shown.len()));
    }
    out
}

/// The event tree, one element a line, indented by depth: `name: text`.
pub fn tree_lines(root: &Node, max_lines: usize) -> Vec<String> {
    let mut out = Vec::new();
    // Iterative walk: hostile nesting depth cannot overflow the stack.
    let mut stack: Vec<(&Node, usize)> = vec![(root, 0)];
    while let Some((n, depth)) = stack.pop() {
        if out.len() >= max_lines {
            out.push("...".to_string());
            break;
        }
        let indent = "  ".repeat(depth.min(40));
        let line = match &n.text {
            Some(t) if !t.is_empty() => format!("{indent}{}: {t}", n.name),
            _ => format!("{indent}{}", n.name),
        };
        out.push(cut_line(&line));
        for c in n.children.iter().rev() {
            stack.push((c, depth.saturating_add(1)));
        }
    }
    out
}

fn cut_line(l: &str) -> String {
    if l.chars().count() <= MAX_LINE_CHARS {
        return l.to_string();
    }
    let kept: String = l.chars().take(MAX_LINE_CHARS).collect();
    format!("{kept}... ({} chars)", l.chars().count())
}

fn truncate_lines(lines: &mut Vec<String>, max_lines: usize) {
    if lines.len() > max_lines {
        let more = lines.len() - max_lines;
        lines.truncate(max_lines);
        lines.push(format!("... {more} more lines"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_indented_two_spaces_per_level() {
        let (l, err) = pretty_xml(
            "<?xml version=\"1.0\"?><EventNotificationAlert><ipAddress>10.0.0.5</ipAddress><ANPR><licensePlate>AB123</licensePlate></ANPR></EventNotificationAlert>",
            100,
        );
        assert_eq!(err, None);
        assert_eq!(
            l,
            vec![
                "<?xml version=\"1.0\"?>",
                "<EventNotificationAlert>",
                "  <ipAddress>10.0.0.5</ipAddress>",
                "  <ANPR>",
                "    <licensePlate>AB123</licensePlate>",
                "  </ANPR>",
                "</EventNotificationAlert>",
            ]
        );
    }

    #[test]
    fn broken_xml_never_panics_and_keeps_the_rest() {
        let cases = [
            "<a><b>x & y</b></a>",
            "<a><b>unclosed",
            "<a></b></c>",
            "<<<>>>",
            "<a attr=\"unterminated><b/></a>",
            "",
            "plain text",
            "<a>\u{FFFD}\u{0}</a>",
        ];
        for c in cases {
            let (lines, _err) = pretty_xml(c, 50);
            // Every non-space character of the input is still shown somewhere.
            let joined: String = lines
                .concat()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            for ch in c.chars().filter(|c| c.is_alphanumeric()) {
                assert!(joined.contains(ch), "{c:?} lost {ch:?}: {lines:?}");
            }
        }
        let (lines, err) = pretty_xml("<a><b>ok</b><c>x</d></a>", 50);
        assert!(!lines.is_empty());
        let _ = err;
    }

    #[test]
    fn json_pretty_and_error() {
        let l = pretty_json("{\"a\":{\"b\":1}}", 100).unwrap();
        assert_eq!(l, vec!["{", "  \"a\": {", "    \"b\": 1", "  }", "}"]);
        assert!(matches!(
            pretty_json("{\"a\":", 100),
            Err(NotPrettyJson::Invalid(_))
        ));
    }

    #[test]
    fn hex_dump_layout() {
        let l = hex_dump(b"ABCDEFGHIJKLMNOPQ\x00", 64);
        assert_eq!(l.len(), 2);
        assert!(
            l[0].starts_with("00000000  41 42 43 44 45 46 47 48  49 4a"),
            "{}",
            l[0]
        );
        assert!(l[0].ends_with("|ABCDEFGHIJKLMNOP|"));
        assert!(l[1].starts_with("00000010  51 00 "));
        assert!(l[1].ends_with("|Q.|"));
        let l = hex_dump(&[0u8; 40], 16);
        assert_eq!(l.last().map(String::as_str), Some("... 24 more bytes"));
    }

    #[test]
    fn binary_detection() {
        assert!(looks_binary("ab\u{FFFD}"));
        assert!(looks_binary("ab\u{1}"));
        assert!(!looks_binary("<a>\r\n\t</a>"));
    }

    #[test]
    fn tree_indents_by_depth_and_is_bounded() {
        let root = Node {
            name: "EventNotificationAlert".into(),
            text: None,
            children: vec![
                Node {
                    name: "eventType".into(),
                    text: Some("ANPR".into()),
                    children: vec![],
                },
                Node {
                    name: "ANPR".into(),
                    text: None,
                    children: vec![Node {
                        name: "licensePlate".into(),
                        text: Some("AB123".into()),
                        children: vec![],
                    }],
                },
            ],
        };
        assert_eq!(
            tree_lines(&root, 10),
            vec![
                "EventNotificationAlert",
                "  eventType: ANPR",
                "  ANPR",
                "    licensePlate: AB123"
            ]
        );
        assert_eq!(tree_lines(&root, 2).len(), 3);
    }
}
