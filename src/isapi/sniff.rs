//! "XML or JSON?": one answer, from a body's first significant byte, for every place that has to
//! guess. Devices' Content-Types are unreliable (JSON sent as `text/plain`, XML as
//! `application/octet-stream`), so the bytes decide.

/// The UTF-8 byte order mark some devices put before their XML; skipped when sniffing.
pub const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// What a body's first significant byte says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Starts with `<`.
    Xml,
    /// Starts with `{` or `[`.
    Json,
    /// Starts with anything else: neither.
    Other,
}

/// The syntax of `data`, judged from its first byte that is not ASCII white space after an
/// optional UTF-8 BOM; None while there is no such byte (empty, or only white space so far: a
/// streaming caller waits for more).
pub fn sniff_syntax(data: &[u8]) -> Option<Syntax> {
    let data = data.strip_prefix(&UTF8_BOM).unwrap_or(data);
    Some(match data.iter().find(|b| !b.is_ascii_whitespace())? {
        b'<' => Syntax::Xml,
        b'{' | b'[' => Syntax::Json,
        _ => Syntax::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_significant_byte_decides() {
        assert_eq!(sniff_syntax(b"<a/>"), Some(Syntax::Xml));
        assert_eq!(sniff_syntax(b" \r\n\t{\"a\":1}"), Some(Syntax::Json));
        assert_eq!(sniff_syntax(b"[1]"), Some(Syntax::Json));
        assert_eq!(sniff_syntax(b"\xEF\xBB\xBF  <x/>"), Some(Syntax::Xml));
        assert_eq!(sniff_syntax(b"hello <x/>"), Some(Syntax::Other));
        // Only one BOM is skipped: a second one is not white space.
        assert_eq!(
            sniff_syntax(b"\xEF\xBB\xBF\xEF\xBB\xBF<x/>"),
            Some(Syntax::Other)
        );
    }

    #[test]
    fn nothing_significant_yet_is_none() {
        assert_eq!(sniff_syntax(b""), None);
        assert_eq!(sniff_syntax(b"  \r\n"), None);
        assert_eq!(sniff_syntax(&UTF8_BOM), None);
    }
}
