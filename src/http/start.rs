//! Is this a start line? Two questions with two costs:
//! - [`classify`]: the first bytes of what should be a message (a fixed-size probe, decided byte
//!   by byte), so a stream's first line or the line after a message is judged without a buffer.
//! - [`find_start`]: out of sync (garbage, a framing error, a capture gap outside a body), where
//!   the next start line begins, anywhere in the bytes and not only after a line break, as Zeek
//!   and tshark resynchronise: a response `HTTP/1.x NNN` or a request line
//!   `TOKEN SP target SP HTTP/1.x`, found from its marker with memchr's memmem.

use super::decoder::Kind;

/// Bytes of a line looked at to decide whether it is a start line.
pub(super) const PROBE_MAX: usize = 24;

/// Known methods: when binary bytes that happen to be token characters run into a request line
/// mid-line, the token is cut back to the longest of these it ends with.
const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "NOTIFY",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "M-SEARCH",
];

/// Verdict on the first bytes of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    Match,
    /// Not a start line; the index is the byte that decided it.
    NoMatch(usize),
    NeedMore,
}

pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Does `p` (the first bytes of a line) look like a start line? `strict` is used where the data may
/// not be HTTP at all (the first line of a capture's stream): a token, SP, then the first bytes of
/// a target; otherwise any token is let through to httparse so its error message can say what is
/// wrong. Decided byte by byte, so a verdict on a prefix
/// never changes when more bytes arrive; never `NeedMore` once `p` holds `PROBE_MAX` bytes.
pub(super) fn classify(kind: Kind, strict: bool, p: &[u8]) -> Probe {
    match kind {
        Kind::Response => {
            let pat: &[u8] = if strict { b"HTTP/1." } else { b"HTTP/" };
            for (i, (b, want)) in p.iter().zip(pat).enumerate() {
                if b != want {
                    return Probe::NoMatch(i);
                }
            }
            if p.len() >= pat.len() {
                Probe::Match
            } else {
                Probe::NeedMore
            }
        }
        Kind::Request if strict => classify_request_strict(p),
        Kind::Request => {
            for (i, &b) in p.iter().enumerate().take(PROBE_MAX) {
                if b == b' ' && i > 0 {
                    return Probe::Match;
                }
                if !is_tchar(b) {
                    return Probe::NoMatch(i);
                }
            }
            if p.len() >= PROBE_MAX {
                Probe::Match
            } else {
                Probe::NeedMore
            }
        }
    }
}

/// `METHOD SP` then `/`, `*` (OPTIONS), an authority (CONNECT) or an absolute-form target's
/// `scheme://`. Any token is a method (RFC 9110 section 9.1: QUERY, CCM_POST, ...); the scheme
/// is case-insensitive (RFC 3986 section 3.1: `HTTP://host/` is a proxy request).
fn classify_request_strict(p: &[u8]) -> Probe {
    let mut method: Option<&[u8]> = None;
    for (i, &b) in p.iter().enumerate().take(PROBE_MAX) {
        let Some(m) = method else {
            if b == b' ' && i > 0 {
                method = p.get(..i);
                continue;
            }
            if !is_tchar(b) {
                return Probe::NoMatch(i);
            }
            continue;
        };
        // Position within the target.
        let j = i.saturating_sub(m.len() + 1);
        if j == 0 {
            match b {
                b'/' => return Probe::Match,
                b'*' if m == b"OPTIONS" => return Probe::Match,
                _ if m == b"CONNECT" && (b.is_ascii_alphanumeric() || b == b'[') => {
                    return Probe::Match
                }
                _ if b.is_ascii_alphabetic() => {}
                _ => return Probe::NoMatch(i),
            }
            continue;
        }
        // `scheme ":" "//"`, scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
        let target = p.get(i - j..=i).unwrap_or_default();
        if target.ends_with(b"://") {
            return Probe::Match;
        }
        let ok = match b {
            b':' => true,
            b'/' => target.ends_with(b":/"),
            _ => (b.is_ascii_alphanumeric() || b"+-.".contains(&b)) && !target.contains(&b':'),
        };
        if !ok {
            return Probe::NoMatch(i);
        }
    }
    if p.len() >= PROBE_MAX {
        Probe::NoMatch(PROBE_MAX - 1)
    } else {
        Probe::NeedMore
    }
}

/// Where the search for a start line stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    /// A start line begins at this index.
    At(usize),
    /// None in the data; a start line may still begin at `keep` or later, once more bytes come.
    Not { keep: usize },
}

/// Longest method token the search accepts.
const METHOD_MAX: usize = 32;
/// Most bytes kept between feeds while searching for a start line: a request line longer than
/// this that arrives in pieces is not found.
pub(super) const CARRY_MAX: usize = 8 * 1024;
/// The search for a start line's marker begins this far before the bytes kept from the last feed,
/// so a marker or its next bytes cut by the feed boundary is seen again.
pub(super) const SEARCH_BACK: usize = 16;

/// Looks for a start line anywhere in `w` (markers searched from `from` on; `line_start`: `w[0]`
/// begins a line). Response: `HTTP/1.d SP d` (httparse judges the rest, so a malformed status line
/// is reported as such). Request: `TOKEN SP target SP HTTP/1.d` then CR or LF, the token
/// trimmed to a known method when binary bytes run into it mid-line.
pub(super) fn find_start(kind: Kind, w: &[u8], from: usize, line_start: bool) -> Found {
    let from = from.min(w.len());
    let tail = w.get(from..).unwrap_or_default();
    let last_lf = memchr::memrchr(b'\n', w).map_or(0, |i| i + 1);
    match kind {
        Kind::Response => {
            for p in memchr::memmem::find_iter(tail, b"HTTP/1.").map(|p| p + from) {
                let t = w.get(p..).unwrap_or_default();
                match (t.get(7), t.get(8), t.get(9)) {
                    (Some(d), Some(b' '), Some(c)) if d.is_ascii_digit() && c.is_ascii_digit() => {
                        return Found::At(p)
                    }
                    (Some(d), Some(b' '), None) | (Some(d), None, None) if d.is_ascii_digit() => {
                        return Found::Not { keep: p }
                    }
                    (None, None, None) => return Found::Not { keep: p },
                    _ => {}
                }
            }
            // A partial "HTTP/1." at the very end.
            let partial = (1..7)
                .rev()
                .find(|&k| w.len() >= k && w.ends_with(b"HTTP/1.".get(..k).unwrap_or_default()))
                .unwrap_or(0);
            Found::Not {
                keep: w.len() - partial,
            }
        }
        Kind::Request => {
            for p in memchr::memmem::find_iter(tail, b" HTTP/1.").map(|p| p + from) {
                let Some(r) = request_line_start(w, p, line_start) else {
                    continue;
                };
                match (w.get(p + 8), w.get(p + 9)) {
                    (Some(d), Some(b'\r' | b'\n')) if d.is_ascii_digit() => return Found::At(r),
                    (Some(d), None) if d.is_ascii_digit() => return Found::Not { keep: r },
                    (None, None) => return Found::Not { keep: r },
                    _ => {}
                }
            }
            // A request line cannot hold a line break: keep at most the last line's bytes.
            let keep = last_lf.max(w.len().saturating_sub(CARRY_MAX));
            Found::Not { keep }
        }
    }
}

/// The start of the request line whose ` HTTP/1.` is at `p`: walks back over the target (visible
/// ASCII) and the method token. None when there is no target or no token, or the target reaches
/// the start of `w` (its beginning was not seen).
fn request_line_start(w: &[u8], p: usize, line_start: bool) -> Option<usize> {
    let before = w.get(..p)?;
    let target_len = before
        .iter()
        .rev()
        .take_while(|&&b| (0x21..0x7f).contains(&b))
        .count();
    let sp = p.checked_sub(target_len + 1)?;
    if target_len == 0 || w.get(sp) != Some(&b' ') {
        return None;
    }
    let head = w.get(..sp)?;
    let token_len = head.iter().rev().take_while(|&&b| is_tchar(b)).count();
    if token_len == 0 {
        return None;
    }
    let r = sp - token_len;
    let before_token = r.checked_sub(1).and_then(|i| w.get(i)).copied();
    // Whitespace before the token: the line began earlier, so this is not its start (Zeek and
    // tshark do not take `\x01\x02 GET / HTTP/1.1` for a request either).
    if matches!(before_token, Some(b' ' | b'\t')) {
        return None;
    }
    let at_line_start = match before_token {
        Some(b) => b == b'\n',
        None => line_start,
    };
    let token = head.get(r..)?;
    if at_line_start && token_len <= METHOD_MAX {
        return Some(r);
    }
    // Binary bytes that happen to be token characters ran into the method: take the longest
    // known method it ends with.
    METHODS
        .iter()
        .filter(|m| token.ends_with(m.as_bytes()))
        .map(|m| m.len())
        .max()
        .map(|n| sp - n)
        .or_else(|| (token_len <= METHOD_MAX).then_some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        use Probe::*;
        let cases: &[(Kind, bool, &[u8], Probe)] = &[
            (Kind::Request, true, b"GET /", Match),
            (Kind::Request, true, b"GET http://", Match),
            (Kind::Request, true, b"GET HTTP://bro.org/", Match),
            (Kind::Request, true, b"GET htt", NeedMore),
            (Kind::Request, true, b"GET http:/", NeedMore),
            (Kind::Request, true, b"GET h x", NoMatch(5)),
            (Kind::Request, true, b"GET http:x", NoMatch(9)),
            (Kind::Request, true, b"ody of a previous", NoMatch(6)),
            (Kind::Request, true, b"QUERY /users", Match),
            (Kind::Request, true, b"CCM_POST /", Match),
            (Kind::Request, true, b"OPTIONS *", Match),
            (Kind::Request, true, b"GET *", NoMatch(4)),
            (Kind::Request, true, b"CONNECT cam:443", Match),
            (Kind::Request, true, b"M-SEARCH *", NoMatch(9)),
            (Kind::Request, true, b"POS", NeedMore),
            (Kind::Request, true, b"PO\x01", NoMatch(2)),
            (Kind::Request, true, b" GET /", NoMatch(0)),
            (Kind::Request, false, b"BREW /", Match),
            (Kind::Request, false, b" GET", NoMatch(0)),
            (Kind::Request, false, b"<xml", NoMatch(0)),
            (Kind::Request, false, b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA", Match),
            (Kind::Response, true, b"HTTP/1.1 200", Match),
            (Kind::Response, true, b"HTTP/2 200", NoMatch(5)),
            (Kind::Response, false, b"HTTP/2 200", Match),
            (Kind::Response, true, b"HTT", NeedMore),
            (Kind::Response, true, b"\r\n", NoMatch(0)),
        ];
        for (kind, strict, line, want) in cases {
            assert_eq!(
                classify(*kind, *strict, line),
                *want,
                "{kind:?} strict={strict} {:?}",
                line.escape_ascii().to_string()
            );
        }
    }
}
