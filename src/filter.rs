//! Which rows an engineer wants to see: one filter type for the TUI's `/` and `p` keys and the
//! headless `--device`, `--event-type`, `--verdict`, `--problems`, `--since`, `--until` options
//! (and `--export-pcap`), so that a row shown in the TUI under a filter is exactly the row the
//! command line selects with the same words.
//!
//! A row is an exchange (a request and its answer) or a connection that carried no request (a
//! failed handshake). Pure: it looks at finished [`Connection`]s only.
//!
//! In the TUI the filter line takes the same keys as words: `device:10.0.0.5 type:ANPR
//! verdict:no_response since:2026-11-25T11:42:46 until:...`; any other word is free text matched,
//! case-insensitively, as a substring of the device, path, event type, plate, status or verdict.

use std::fmt;

use crate::model::{Connection, Exchange};
use crate::tcp::Handshake;
use crate::time::Timestamp;
use crate::tls::TlsFinding;

/// The rows to keep. Every part set must match (they are "and"ed); a list part matches when any of
/// its values does. The default keeps every row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFilter {
    /// Devices (client IP, or the MAC the event body names), exact, case-insensitive.
    pub devices: Vec<String>,
    /// Event types, exact, case-insensitive; a `duration` event matches its own type and the
    /// type it continues (`relationEvent`).
    pub event_types: Vec<String>,
    /// Verdicts as the list's verdict column shows them: an exchange's verdict (`ok`,
    /// `no_response`...) or, for a connection without a request, its handshake label
    /// (`unanswered`, `refused`, `syn_ack_not_acked`, `client_reset`, `no request`).
    pub verdicts: Vec<String>,
    /// Only failed exchanges and failed handshakes.
    pub problems: bool,
    /// Rows at or after this time (the request's first byte; a connection's first packet).
    pub since: Option<Timestamp>,
    /// Rows at or before this time.
    pub until: Option<Timestamp>,
    /// Free text (lower case): a substring of device, path, event type, plate, status or verdict.
    pub text: String,
}

/// A filter word or option that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// `--since`/`--until` (or `since:`/`until:`) not a time.
    #[error(
        "{key}: {value:?} is not a time (use 2026-11-25T11:42:46[.123][Z] in UTC, or Unix seconds)"
    )]
    BadTime { key: &'static str, value: String },
    /// `--verdict` (or `verdict:`) not a verdict or handshake label.
    #[error("verdict: {value:?} is not one of {}", VERDICT_WORDS.join(", "))]
    BadVerdict { value: String },
}

/// The words `--verdict` takes: the verdicts, then the labels of connections without a request.
pub const VERDICT_WORDS: [&str; 11] = [
    "ok",
    "error_status",
    "no_response",
    "incomplete",
    "not_captured",
    "malformed_response",
    "unanswered",
    "refused",
    "syn_ack_not_acked",
    "client_reset",
    "no_request",
];

impl RowFilter {
    /// True when the filter keeps every row.
    pub fn is_empty(&self) -> bool {
        *self == RowFilter::default()
    }

    /// Parse a TUI filter line: `key:value` words for the keys (`device`, `type`, `verdict`,
    /// `since`, `until`; a value may list several, comma-separated), anything else free text.
    /// Problems-only is a separate key in the TUI (`p`), so it is not parsed here.
    pub fn parse_query(line: &str) -> Result<RowFilter, FilterError> {
        let mut f = RowFilter::default();
        let mut text: Vec<&str> = Vec::new();
        for word in line.split_whitespace() {
            let Some((key, value)) = word.split_once(':') else {
                text.push(word);
                continue;
            };
            match key.to_ascii_lowercase().as_str() {
                "device" => f.devices.extend(list(value)),
                "type" => f.event_types.extend(list(value)),
                "verdict" => f.add_verdicts(value)?,
                "since" => f.since = Some(parse_time("since", value)?),
                "until" => f.until = Some(parse_time("until", value)?),
                // An IPv6 address or a clock time is free text, not a key.
                _ => text.push(word),
            }
        }
        f.text = text.join(" ").to_ascii_lowercase();
        Ok(f)
    }

    /// Add verdict words (comma-separated), checked against [`VERDICT_WORDS`].
    pub fn add_verdicts(&mut self, value: &str) -> Result<(), FilterError> {
        for v in list(value) {
            let v = v.to_ascii_lowercase().replace(' ', "_");
            if !VERDICT_WORDS.contains(&v.as_str()) {
                return Err(FilterError::BadVerdict { value: v });
            }
            self.verdicts.push(v);
        }
        Ok(())
    }

    /// Keep rows whose fields match this filter's and `other`'s (the TUI's `p` key and typed
    /// words together).
    pub fn and(mut self, other: RowFilter) -> RowFilter {
        self.devices.extend(other.devices);
        self.event_types.extend(other.event_types);
        self.verdicts.extend(other.verdicts);
        self.problems |= other.problems;
        self.since = self.since.max(other.since);
        self.until = match (self.until, other.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.text.is_empty() {
            self.text = other.text;
        } else if !other.text.is_empty() {
            self.text = format!("{} {}", self.text, other.text);
        }
        self
    }

    /// Does the row (`ex` = one of `c`'s exchanges, or None for a connection without request)
    /// pass?
    pub fn matches(&self, c: &Connection, ex: Option<&Exchange>) -> bool {
        self.matches_row(&Row::of(c, ex))
    }

    /// Does the row pass? (The listener's event records are rows without a [`Connection`]; the
    /// TUI's compact rows name their strings through a [`Field`] that knows its text match.)
    pub fn matches_row<F: Field>(&self, row: &Row<F>) -> bool {
        if self.problems && !row.is_problem() {
            return false;
        }
        let time = row.time;
        if self.since.is_some_and(|s| time < s) || self.until.is_some_and(|u| time > u) {
            return false;
        }
        if !self.devices.is_empty() && !self.devices.iter().any(|d| row.device_is(d)) {
            return false;
        }
        if !self.event_types.is_empty() {
            let hit = self.event_types.iter().any(|want| {
                row.event_type.is_some_and(|t| t.eq_ci(want))
                    || (row.duration && "duration".eq_ignore_ascii_case(want))
            });
            if !hit {
                return false;
            }
        }
        if !self.verdicts.is_empty() {
            let label = row.verdict_label();
            if !self.verdicts.iter().any(|v| same_words(v, label)) {
                return false;
            }
        }
        self.text.is_empty() || row.text_matches(&self.text)
    }

    /// The connection with only its rows that pass (None when none does): what the headless
    /// reports list.
    pub fn select(&self, mut c: Connection) -> Option<Connection> {
        if self.is_empty() {
            return Some(c);
        }
        if c.exchanges.is_empty() {
            return self.matches(&c, None).then_some(c);
        }
        let exchanges = std::mem::take(&mut c.exchanges);
        let kept: Vec<Exchange> = exchanges
            .into_iter()
            .filter(|e| self.matches(&c, Some(e)))
            .collect();
        if kept.is_empty() {
            return None;
        }
        c.exchanges = kept;
        Some(c)
    }

    /// Rows of a connection that pass.
    pub fn count_rows(&self, c: &Connection) -> u64 {
        if c.exchanges.is_empty() {
            u64::from(self.matches(c, None))
        } else {
            c.exchanges
                .iter()
                .filter(|e| self.matches(c, Some(e)))
                .count() as u64
        }
    }

    /// Is a stall wanted? Stalls belong to a device over a time: only the device and time parts
    /// apply (the stall overlaps `since..until`).
    pub fn matches_stall(&self, s: &crate::model::Stall) -> bool {
        (self.devices.is_empty()
            || self
                .devices
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&s.device)))
            && self.since.is_none_or(|t| s.to >= t)
            && self.until.is_none_or(|t| s.from <= t)
    }

    /// Is the connection wanted at all (any of its rows passes)? Export keeps whole connections.
    pub fn matches_connection(&self, c: &Connection) -> bool {
        if c.exchanges.is_empty() {
            self.matches(c, None)
        } else {
            c.exchanges.iter().any(|e| self.matches(c, Some(e)))
        }
    }
}

impl fmt::Display for RowFilter {
    /// The filter as TUI words (for headers and messages).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        if self.problems {
            words.push("problems".into());
        }
        for (k, vs) in [
            ("device", &self.devices),
            ("type", &self.event_types),
            ("verdict", &self.verdicts),
        ] {
            if !vs.is_empty() {
                words.push(format!("{k}:{}", vs.join(",")));
            }
        }
        if let Some(s) = self.since {
            words.push(format!("since:{}", s.to_utc_string().replace(' ', "T")));
        }
        if let Some(u) = self.until {
            words.push(format!("until:{}", u.to_utc_string().replace(' ', "T")));
        }
        if !self.text.is_empty() {
            words.push(self.text.clone());
        }
        f.write_str(&words.join(" "))
    }
}

fn list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A time from the command line or the filter line: RFC 3339 in UTC (`T` or a space between date
/// and time, fraction and `Z` optional; `humantime` reads it) or Unix seconds with a fraction.
pub fn parse_time(key: &'static str, value: &str) -> Result<Timestamp, FilterError> {
    let bad = || FilterError::BadTime {
        key,
        value: value.to_string(),
    };
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs.abs() > 9.2e9 {
            return Err(bad());
        }
        return Ok(Timestamp((secs * 1e9).round() as i64));
    }
    let t = humantime::parse_rfc3339_weak(v).map_err(|_| bad())?;
    let d = t.duration_since(std::time::UNIX_EPOCH).map_err(|_| bad())?;
    let secs = i64::try_from(d.as_secs()).map_err(|_| bad())?;
    Ok(Timestamp::from_nanos(secs, i64::from(d.subsec_nanos())))
}

/// What the filter looks at in a row, as plain fields: a full [`Connection`] (headless options,
/// export) and the TUI's compact rows both produce it, so one [`RowFilter::matches_row`] gives both
/// the same meaning.
#[derive(Debug, Clone, Copy)]
pub struct Row<F: Field> {
    /// The client's IP (the device).
    pub device: F,
    /// The MAC the event body names.
    pub mac: Option<F>,
    /// The request's path; None for a connection that carried no request.
    pub path: Option<F>,
    /// The verdict column's word (an exchange's verdict, or a connection's handshake or TLS
    /// problem label).
    pub verdict_label: &'static str,
    pub event_type: Option<F>,
    /// A `duration` event (matches the type `duration` too).
    pub duration: bool,
    pub plate: Option<F>,
    /// The answer's status code.
    pub status: Option<u16>,
    /// An exchange inferred from TLS records (matches `https` and `encrypted`).
    pub encrypted: bool,
    /// The request's first byte, or the connection's first packet.
    pub time: Timestamp,
    /// A failed exchange, or a failed TCP or TLS handshake.
    pub problem: bool,
}

/// A text field of a [`Row`] as the filter compares it: a plain `&str`, or a field that already
/// knows whether it contains the filter's free text (the TUI works that out once per distinct
/// string, not once per row).
pub trait Field: Copy {
    /// Equal to `want`, ASCII case-insensitively.
    fn eq_ci(self, want: &str) -> bool;
    /// Contains `needle` (lower case) ASCII case-insensitively; `needle` is always the free text
    /// of the filter being matched.
    fn contains_text(self, needle: &str) -> bool;
}

impl Field for &str {
    fn eq_ci(self, want: &str) -> bool {
        self.eq_ignore_ascii_case(want)
    }

    fn contains_text(self, needle: &str) -> bool {
        contains_ci(self, needle)
    }
}

impl<'a> Row<&'a str> {
    /// A row of a connection: one of its exchanges, or the connection itself.
    pub fn of(c: &'a Connection, ex: Option<&'a Exchange>) -> Row<&'a str> {
        match ex {
            Some(e) => Row::of_exchange(c.device(), e),
            None => {
                let tls_problem = c.tls_problems().next().filter(|_| !c.handshake.failed());
                Row {
                    device: c.device(),
                    mac: None,
                    path: None,
                    verdict_label: match tls_problem {
                        Some(f) => tls_problem_label(f),
                        None => handshake_label(c.handshake),
                    },
                    event_type: None,
                    duration: false,
                    plate: None,
                    status: None,
                    encrypted: false,
                    time: c.first_seen,
                    problem: c.handshake.failed() || tls_problem.is_some(),
                }
            }
        }
    }

    /// The row of one exchange of `device` (the listener's event records have no
    /// [`Connection`]).
    pub fn of_exchange(device: &'a str, e: &'a Exchange) -> Row<&'a str> {
        let ev = e.event.as_ref();
        Row {
            device,
            mac: ev.and_then(|v| v.mac.as_deref()),
            path: Some(&e.request.path),
            verdict_label: e.verdict.as_str(),
            event_type: ev.and_then(|v| v.event_type.as_deref()),
            duration: ev.is_some_and(|v| v.duration),
            plate: ev.and_then(|v| v.plate.as_deref()),
            status: e.response.as_ref().map(|r| r.status),
            encrypted: e.encrypted.is_some(),
            time: e.request.time,
            problem: e.verdict.is_problem(),
        }
    }
}

impl<F: Field> Row<F> {
    /// A failed exchange, or a connection without a request whose TCP or TLS handshake failed
    /// (or that met a server on the other protocol).
    pub fn is_problem(&self) -> bool {
        self.problem
    }

    /// The verdict column's word.
    pub fn verdict_label(&self) -> &'static str {
        self.verdict_label
    }

    fn device_is(&self, want: &str) -> bool {
        self.device.eq_ci(want) || self.mac.is_some_and(|m| m.eq_ci(want))
    }

    /// Case-insensitive substring match against device, path, event type, plate, status and
    /// verdict. `needle` is lower case.
    fn text_matches(&self, needle: &str) -> bool {
        if self.device.contains_text(needle) || contains_ci(self.verdict_label, needle) {
            return true;
        }
        let Some(path) = self.path else {
            return false;
        };
        if path.contains_text(needle) {
            return true;
        }
        if self.encrypted && (contains_ci("https", needle) || contains_ci("encrypted", needle)) {
            return true;
        }
        if [self.event_type, self.plate]
            .iter()
            .flatten()
            .any(|t| t.contains_text(needle))
            || (self.duration && contains_ci("duration", needle))
        {
            return true;
        }
        if let Some(s) = self.status {
            let mut buf = [0u8; 5];
            if contains_ci(fmt_status(s, &mut buf), needle) {
                return true;
            }
        }
        false
    }
}

/// Equal when `_` and space count as the same (`no_request` is the label `no request`), without
/// allocating: the filter runs over every row.
fn same_words(a: &str, b: &str) -> bool {
    let norm = |c: u8| if c == b'_' { b' ' } else { c };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

/// A failed exchange, or a connection without a request whose handshake failed.
pub fn is_problem(c: &Connection, ex: Option<&Exchange>) -> bool {
    Row::of(c, ex).is_problem()
}

/// What a connection row without a request shows in the verdict column.
pub fn no_request_label(c: &Connection) -> &'static str {
    Row::of(c, None).verdict_label()
}

/// Short name of a TLS problem for the verdict column (12 columns).
pub fn tls_problem_label(f: &TlsFinding) -> &'static str {
    match f {
        TlsFinding::TlsToPlainServer { .. } => "https->http",
        TlsFinding::PlainHttpToTlsServer { .. } => "http->https",
        TlsFinding::HandshakeAlert { .. } => "tls_alert",
        TlsFinding::ClosedDuringHandshake { .. } => "tls_closed",
        TlsFinding::OnlyOldVersionsOffered { .. } => "tls_old",
        _ => "tls_note",
    }
}

fn handshake_label(h: Handshake) -> &'static str {
    match h {
        Handshake::Unanswered => "unanswered",
        Handshake::Refused => "refused",
        Handshake::SynAckNotAcked => "syn_ack_not_acked",
        Handshake::ClientReset => "client_reset",
        Handshake::Complete | Handshake::OneSided | Handshake::NotSeen => "no request",
    }
}

/// The verdict column's word for a row.
pub fn verdict_label(c: &Connection, ex: Option<&Exchange>) -> &'static str {
    Row::of(c, ex).verdict_label()
}

/// The status code as text, without allocating (the filter runs over every row).
fn fmt_status(s: u16, buf: &mut [u8; 5]) -> &str {
    let mut n = s;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("")
}

/// ASCII case-insensitive substring test; `needle` is already lower case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    if n.is_empty() {
        return true;
    }
    if n.len() > h.len() {
        return false;
    }
    h.windows(n.len())
        .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// Which rows the headless output (`--json`, `--text`, `--export-pcap`) lists: the same meaning
/// as the TUI's filter ([`RowFilter`], one type for both); here beside it so every mode's command line (replay, sniff, listen) shares it without depending on the CLI module. Options are "and"ed; a
/// comma-separated list matches any of its values.
#[derive(Debug, clap::Args, Clone, Default)]
pub struct FilterArgs {
    /// Only these devices: client IP or the MAC the event names, exact (comma-separated list).
    #[arg(long, value_name = "IP|MAC", value_delimiter = ',')]
    pub device: Vec<String>,
    /// Only these event types, exact, any case (a `duration` event matches its own type and the
    /// alarm it continues).
    #[arg(long = "event-type", value_name = "TYPE", value_delimiter = ',')]
    pub event_type: Vec<String>,
    /// Only rows with these verdicts (ok, error_status, no_response, incomplete, not_captured,
    /// malformed_response) or, for connections without a request, handshake labels (unanswered,
    /// refused, syn_ack_not_acked, client_reset, no_request).
    #[arg(long, value_name = "VERDICT", value_delimiter = ',')]
    pub verdict: Vec<String>,
    /// Only problems: failed exchanges and failed handshakes (the TUI's `p`).
    #[arg(long)]
    pub problems: bool,
    /// Only rows at or after this time: 2026-11-25T11:42:46[.123][Z] (UTC) or Unix seconds.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only rows at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

impl FilterArgs {
    /// The core filter these options mean.
    pub fn to_filter(&self) -> Result<RowFilter, FilterError> {
        let mut f = RowFilter {
            devices: self.device.clone(),
            event_types: self.event_type.clone(),
            problems: self.problems,
            ..RowFilter::default()
        };
        for v in &self.verdict {
            f.add_verdicts(v)?;
        }
        if let Some(s) = &self.since {
            f.since = Some(parse_time("since", s)?);
        }
        if let Some(u) = &self.until {
            f.until = Some(parse_time("until", u)?);
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventSummary, Request, Response, Verdict};

    fn conn(client: &str, handshake: Handshake) -> Connection {
        Connection {
            id: 1,
            client: client.into(),
            server: "10.0.0.1:8080".into(),
            handshake,
            one_sided: None,
            syn_attempts: 1,
            closed: crate::tcp::CloseKind::Fin(crate::tcp::Side::Client),
            first_seen: Timestamp(1_000_000_000),
            last_seen: Timestamp(9_000_000_000),
            packets: 10,
            gap_bytes: [0, 0],
            retransmissions: 0,
            truncated_frames: 0,
            errors: vec![],
            upgrade: None,
            upgraded_bytes: [0, 0],
            tls: None,
            tls_findings: vec![],
            decryption: None,
            handshake_uncertain: None,
            exchanges: vec![],
            timeline: vec![],
        }
    }

    fn ex(t_secs: i64, verdict: Verdict, ty: &str, status: Option<u16>) -> Exchange {
        let mut e = Exchange::started(
            0,
            Request {
                time: Timestamp(t_secs * 1_000_000_000),
                path: "/alarm".into(),
                method: "POST".into(),
                ..Request::default()
            },
        );
        e.verdict = verdict;
        e.event = Some(EventSummary {
            event_type: Some(ty.into()),
            mac: Some("44:19:b6:5a:3c:11".into()),
            plate: Some("AB123".into()),
            ..EventSummary::default()
        });
        e.response = status.map(|s| Response {
            status: s,
            ..Response::default()
        });
        e
    }

    #[test]
    fn each_part_selects() {
        let c = conn("10.0.0.5:4000", Handshake::Complete);
        let ok = ex(2, Verdict::Ok, "VMD", Some(200));
        let bad = ex(5, Verdict::NoResponse, "linedetection", None);
        let f = |q: &str| RowFilter::parse_query(q).unwrap();
        assert!(f("device:10.0.0.5").matches(&c, Some(&ok)));
        assert!(!f("device:10.0.0.50").matches(&c, Some(&ok)));
        assert!(!f("device:10.0.0").matches(&c, Some(&ok)));
        assert!(f("device:44:19:B6:5A:3C:11").matches(&c, Some(&ok)));
        assert!(f("type:vmd").matches(&c, Some(&ok)));
        assert!(!f("type:vmd").matches(&c, Some(&bad)));
        assert!(f("verdict:no_response,error_status").matches(&c, Some(&bad)));
        assert!(!f("verdict:ok").matches(&c, Some(&bad)));
        assert!(f("since:3").matches(&c, Some(&bad)));
        assert!(!f("since:3").matches(&c, Some(&ok)));
        assert!(f("until:1970-01-01T00:00:03Z").matches(&c, Some(&ok)));
        assert!(!f("until:1970-01-01T00:00:03Z").matches(&c, Some(&bad)));
        assert!(f("ab12").matches(&c, Some(&ok)));
        assert!(f("200").matches(&c, Some(&ok)));
        assert!(!f("200").matches(&c, Some(&bad)));
        let problems = RowFilter {
            problems: true,
            ..RowFilter::default()
        };
        assert!(problems.matches(&c, Some(&bad)));
        assert!(!problems.matches(&c, Some(&ok)));
    }

    #[test]
    fn connection_rows_match_their_handshake() {
        let c = conn("10.0.0.6:4000", Handshake::Refused);
        let f = |q: &str| RowFilter::parse_query(q).unwrap();
        assert!(f("verdict:refused").matches(&c, None));
        assert!(!f("verdict:ok").matches(&c, None));
        assert!(!f("type:VMD").matches(&c, None));
        assert!(f("refus").matches(&c, None));
        let quiet = conn("10.0.0.6:4000", Handshake::Complete);
        assert!(f("verdict:no_request").matches(&quiet, None));
        let problems = RowFilter {
            problems: true,
            ..RowFilter::default()
        };
        assert!(problems.matches(&c, None));
        assert!(!problems.matches(&quiet, None));
    }

    #[test]
    fn bad_words_are_typed_errors() {
        assert!(matches!(
            RowFilter::parse_query("verdict:fine"),
            Err(FilterError::BadVerdict { .. })
        ));
        assert!(matches!(
            RowFilter::parse_query("since:yesterday"),
            Err(FilterError::BadTime { key: "since", .. })
        ));
        // Words with a colon that are no key stay free text (IPv6, clock times).
        let f = RowFilter::parse_query("fe80::1 11:42").unwrap();
        assert_eq!(f.text, "fe80::1 11:42");
    }

    #[test]
    fn times_read_as_utc() {
        assert_eq!(
            parse_time("since", "2026-11-25T11:42:46.5Z").unwrap(),
            Timestamp(1_795_606_966_500_000_000)
        );
        assert_eq!(
            parse_time("since", "2026-11-25 11:42:46").unwrap(),
            Timestamp(1_795_606_966_000_000_000)
        );
        assert_eq!(
            parse_time("since", "1.5").unwrap(),
            Timestamp(1_500_000_000)
        );
    }

    #[test]
    fn status_text_and_case_insensitive_match() {
        let mut b = [0u8; 5];
        assert_eq!(fmt_status(503, &mut b), "503");
        assert_eq!(fmt_status(0, &mut b), "0");
        assert_eq!(fmt_status(65535, &mut b), "65535");
        assert!(contains_ci("LineDetection", "linedet"));
        assert!(!contains_ci("VMD", "vmdx"));
        assert!(contains_ci("x", ""));
    }
}
