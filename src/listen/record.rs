//! Bounds on what the listener remembers of finished exchanges: the live record of each
//! connection (TUI, final verdicts). The final report keeps no records at all, only the
//! diagnosis ledger (`Shared::diagnose`).
//!
//! Counting alone did not bound memory: every exchange keeps its metadata text (up to
//! `BodyLimits::max_metadata_bytes`, 256 KiB by default) and its decoded tree, so an attacker
//! sending endless bodies that are cut at the size limit could leave ~256 KiB behind per
//! exchange.

use crate::model::Exchange;

/// Metadata text kept on a finished exchange (for the detail pane). Longer text is cut to this,
/// and its decoded tree dropped.
pub(crate) const KEPT_METADATA: usize = 8 * 1024;
/// Approximate bytes of exchange records kept per live connection (oldest dropped first).
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 20;

/// Shrink a finished exchange: a metadata text longer than [`KEPT_METADATA`] is cut there and
/// ends with a note of its full length and hash (so identical long texts still compare equal for
/// retry detection, different ones do not), and its decoded tree is dropped.
pub(crate) fn compact(ex: &mut Exchange) {
    let Some(m) = ex.metadata.as_mut() else {
        return;
    };
    if m.len() <= KEPT_METADATA + 128 {
        return;
    }
    let mut cut = KEPT_METADATA;
    while !m.is_char_boundary(cut) {
        cut -= 1;
    }
    let note = format!(
        "\n[... {} bytes in all, the first {cut} shown; xxh3 {:016x}]",
        m.len(),
        xxhash_rust::xxh3::xxh3_64(m.as_bytes())
    );
    m.truncate(cut);
    m.push_str(&note);
    m.shrink_to_fit();
    ex.event_detail = None;
}

/// Approximate heap bytes held by an exchange record.
pub(crate) fn approx_bytes(ex: &Exchange) -> usize {
    let r = &ex.request;
    let headers =
        |hs: &[(String, String)]| -> usize { hs.iter().map(|(k, v)| k.len() + v.len() + 48).sum() };
    let meta = ex.metadata.as_ref().map_or(0, String::len);
    // The decoded tree holds the text's names and values again, in small allocations.
    let tree = if ex.event_detail.is_some() {
        2 * meta + 512
    } else {
        0
    };
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    512 + r.method.len()
        + r.path.len()
        + headers(&r.headers)
        + ex.response
            .as_ref()
            .map_or(0, |resp| headers(&resp.headers))
        + meta
        + tree
        + ex.parts.len() * 160
        // A typed error holds at most a start line (100 bytes) and a few numbers.
        + r.error.as_ref().map_or(0, |_| 160)
        + text(&r.content_type)
        + text(&ex.body_error)
}

/// How many of the oldest exchanges to drop so that the rest fit in `budget` bytes (the newest
/// is always kept).
pub(crate) fn excess_exchanges(exchanges: &[Exchange], budget: usize) -> usize {
    let mut total: usize = exchanges.iter().map(approx_bytes).sum();
    let mut drop = 0;
    for ex in exchanges.iter().take(exchanges.len().saturating_sub(1)) {
        if total <= budget {
            break;
        }
        total -= approx_bytes(ex);
        drop += 1;
    }
    drop
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn exchange(index: usize, metadata: &str) -> Exchange {
        Exchange {
            index,
            request: crate::model::Request {
                time: Timestamp::from_nanos(0, 0),
                end_time: Timestamp::from_nanos(0, 0),
                ..Default::default()
            },
            response: None,
            verdict: crate::model::Verdict::Incomplete,
            event: None,
            parts: Vec::new(),
            retry_of: None,
            injected_fault: None,
            auth: None,
            body_kind: "xml",
            body_error: None,
            notes: Vec::new(),
            encrypted: None,
            decrypted: false,
            body_hash: 0,
            metadata: Some(metadata.to_string()),
            event_detail: None,
            pending_event: None,
        }
    }

    #[test]
    fn long_metadata_is_cut_with_length_and_hash() {
        let long = "é".repeat(100_000);
        let mut a = exchange(0, &long);
        compact(&mut a);
        let m = a.metadata.as_deref().unwrap();
        assert!(m.len() < KEPT_METADATA + 128, "{}", m.len());
        assert!(m.contains("200000 bytes in all"), "{}", &m[m.len() - 80..]);
        // Same text, same stand-in; a different tail, a different one.
        let mut b = exchange(1, &long);
        compact(&mut b);
        assert_eq!(a.metadata, b.metadata);
        let mut c = exchange(2, &format!("{long}x"));
        compact(&mut c);
        assert_ne!(a.metadata, c.metadata);
        // Short text is left alone.
        let mut d = exchange(3, "<a/>");
        compact(&mut d);
        assert_eq!(d.metadata.as_deref(), Some("<a/>"));
    }

    #[test]
    fn records_are_bounded_by_bytes() {
        let big: Vec<Exchange> = (0..10).map(|i| exchange(i, &"x".repeat(100_000))).collect();
        let drop = excess_exchanges(&big, 350_000);
        assert_eq!(drop, 7);
        assert_eq!(excess_exchanges(&big[..1], 10), 0, "the newest is kept");
    }
}
