//! Decrypted plaintext in the follow-stream index (`replay --keylog`): a [`TlsDecryptor`] is
//! fed the same in-order bytes and gaps the indexer shows, and every application-data record
//! that authenticates is then shown as its plaintext in place of its encrypted bytes (record
//! marks kept, HTTP message starts marked as on a plain connection). Records that were not
//! decrypted (no key, failed to authenticate, handshake records, after the direction stopped)
//! keep their encrypted bytes, labelled as records.
//!
//! Why a bounded plaintext buffer rather than decrypting again on demand: a record's key and
//! sequence number depend on every record before it (TLS 1.3 epochs, key updates, resyncs after
//! a gap), so reading one record back would need a key snapshot per record. The plaintext kept
//! is bounded by [`MAX_PLAIN_BYTES`] per index; records past it stay shown encrypted and are
//! counted ([`PlainStats::not_kept`]).

use std::ops::Range;
use std::sync::Arc;

use super::{http_marks, idx, Entry, MarkKind, MAX_ENTRIES};
use crate::http::{Kind, Limits, MessageDecoder};
use crate::tcp::{Direction, Side};
use crate::time::Timestamp;
use crate::tls::decrypt::{DecryptConfig, DecryptEvent, DecryptReport, TlsDecryptor};
use crate::tls::SharedKeys;

/// Most plaintext bytes an index keeps (32 MiB: a connection of several large picture pushes);
/// past it records are shown encrypted.
pub const MAX_PLAIN_BYTES: usize = 32 << 20;

/// What decryption gave the index, for the view's header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlainStats {
    /// Records shown as plaintext, per side (client, server).
    pub records: [u64; 2],
    /// Plaintext bytes shown, per side.
    pub bytes: [u64; 2],
    /// Plaintext bytes decrypted but not kept (past [`MAX_PLAIN_BYTES`]), per side.
    pub not_kept: [u64; 2],
    /// The decryptor's report (status, suite, findings).
    pub report: Option<DecryptReport>,
}

/// What the decryptor said of one side, in stream order.
#[derive(Debug)]
enum PlainEv {
    /// A record that authenticated: its TCP stream range and where its plaintext is kept
    /// (`None`: past the bound, only its length is known).
    Record {
        record: Range<u64>,
        ts: Timestamp,
        chunk: Option<u32>,
        len: u32,
    },
    /// Plaintext missing (`exact`: of this length, else at most).
    Hole { bytes: u64, exact: bool },
}

/// The decryption side of a [`super::StreamIndexer`].
pub(super) struct Decrypt {
    dec: Option<TlsDecryptor>,
    evs: [Vec<PlainEv>; 2],
    /// Plaintext of kept records, one chunk each.
    pub(super) chunks: Vec<Vec<u8>>,
    kept: usize,
    stats: PlainStats,
    /// Capture time of the last bytes fed (a gap has none of its own).
    last_ts: Timestamp,
}

fn dir(d: usize) -> Direction {
    if d == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

impl Decrypt {
    pub(super) fn new(keys: SharedKeys) -> Self {
        let keys: Arc<_> = keys.0;
        Decrypt {
            dec: Some(TlsDecryptor::new(DecryptConfig::default(), keys)),
            evs: [Vec::new(), Vec::new()],
            chunks: Vec::new(),
            kept: 0,
            stats: PlainStats::default(),
            last_ts: Timestamp::default(),
        }
    }

    /// In-order bytes of side `d`.
    pub(super) fn data(&mut self, d: usize, ts: Timestamp, data: &[u8]) {
        self.last_ts = ts;
        self.run(|dec, out| dec.data(dir(d), ts, data, out));
    }

    /// Bytes of side `d` the capture does not hold.
    pub(super) fn gap(&mut self, d: usize, bytes: u64) {
        let ts = self.last_ts;
        self.run(|dec, out| dec.gap(dir(d), ts, bytes, out));
    }

    fn run(&mut self, call: impl FnOnce(&mut TlsDecryptor, &mut dyn FnMut(DecryptEvent<'_>))) {
        let Some(dec) = self.dec.as_mut() else {
            return;
        };
        let (evs, chunks, kept, stats) = (
            &mut self.evs,
            &mut self.chunks,
            &mut self.kept,
            &mut self.stats,
        );
        let mut full = false;
        call(dec, &mut |ev| {
            let (d, ev) = match ev {
                DecryptEvent::Plain {
                    dir,
                    ts,
                    bytes,
                    record,
                } => {
                    let d = usize::from(dir == Direction::ServerToClient);
                    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                    let chunk = if *kept + bytes.len() <= MAX_PLAIN_BYTES {
                        *kept += bytes.len();
                        chunks.push(bytes.to_vec());
                        stats.records[d] += 1;
                        stats.bytes[d] += bytes.len() as u64;
                        u32::try_from(chunks.len() - 1).ok()
                    } else {
                        stats.not_kept[d] += bytes.len() as u64;
                        None
                    };
                    (
                        d,
                        PlainEv::Record {
                            record,
                            ts,
                            chunk,
                            len,
                        },
                    )
                }
                DecryptEvent::Gap {
                    dir, bytes, exact, ..
                } => (
                    usize::from(dir == Direction::ServerToClient),
                    PlainEv::Hole { bytes, exact },
                ),
                DecryptEvent::Stopped { .. } | DecryptEvent::Finding(_) => return,
            };
            if evs[d].len() >= MAX_ENTRIES {
                full = true;
                return;
            }
            evs[d].push(ev);
        });
        if full {
            // Bounded like the index: what follows stays shown encrypted.
            self.finish_decryptor();
        }
    }

    fn finish_decryptor(&mut self) {
        if let Some(mut dec) = self.dec.take() {
            dec.close(self.last_ts, crate::tcp::CloseKind::Open, &mut |_| {});
            self.stats.report = Some(dec.finish());
        }
    }

    /// Put the plaintext in place of its records in `entries` (marks already placed); returns
    /// the entries, the plaintext chunks and the counts.
    pub(super) fn apply(mut self, entries: Vec<Entry>) -> (Vec<Entry>, Vec<Vec<u8>>, PlainStats) {
        self.finish_decryptor();
        let mut out = Vec::with_capacity(entries.len());
        let mut next = [0usize, 0usize];
        let mut plain_off = [0u64, 0u64];
        // Where each side's last record mark is: the keyless labelling stops at a capture gap,
        // a record decrypted after it gets its mark here.
        let mut last_mark: [Option<u64>; 2] = [None, None];
        let mut http = [
            MessageDecoder::new(Kind::Request, Limits::default()),
            MessageDecoder::new(Kind::Response, Limits::default()),
        ];
        for e in entries {
            let Entry::Data {
                side,
                stream_off,
                len,
                ..
            } = e
            else {
                if let Entry::Mark {
                    side,
                    stream_off,
                    kind: MarkKind::Tls { .. },
                } = &e
                {
                    last_mark[idx(*side)] = Some(*stream_off);
                }
                out.push(e);
                continue;
            };
            let d = idx(side);
            let end = stream_off + u64::from(len);
            let mut cur = stream_off;
            // Bytes of the run left encrypted (between records, or not decrypted).
            let cipher =
                |out: &mut Vec<Entry>, from: u64, to: u64| out.extend(e.data_part(from, to));
            while let Some(ev) = self.evs[d].get(next[d]) {
                let (record, rts, chunk, plen) = match ev {
                    PlainEv::Hole { bytes, exact } => {
                        // Plaintext lost before the next record: the marks' decoder drops the
                        // framing (as the analysis does) and the offsets count the bound.
                        let h = &mut http[d];
                        if *exact {
                            h.gap(*bytes, &mut |_| {});
                        } else {
                            h.gap_unknown(*bytes, &mut |_| {});
                        }
                        plain_off[d] = plain_off[d].saturating_add(*bytes);
                        next[d] += 1;
                        continue;
                    }
                    PlainEv::Record {
                        record,
                        ts,
                        chunk,
                        len,
                    } => (record.clone(), *ts, *chunk, *len),
                };
                if record.start >= end {
                    break;
                }
                if record.end <= cur {
                    next[d] += 1;
                    continue;
                }
                cipher(&mut out, cur, record.start.max(cur));
                cur = record.start.max(cur);
                if record.start >= stream_off && last_mark[d] != Some(record.start) {
                    // The record authenticated, and its header is part of what the AEAD
                    // checked: application data (23), version 0x0303, this length.
                    out.push(Entry::Mark {
                        side,
                        stream_off: record.start,
                        kind: MarkKind::Tls {
                            content_type: 23,
                            version: 0x0303,
                            length: u16::try_from(record.end - record.start - 5)
                                .unwrap_or(u16::MAX),
                        },
                    });
                    last_mark[d] = Some(record.start);
                }
                let upto = record.end.min(end);
                if chunk.is_none() {
                    cipher(&mut out, cur, upto);
                }
                cur = upto;
                if record.end > end {
                    break; // completes in a later entry
                }
                next[d] += 1;
                let at = plain_off[d];
                plain_off[d] += u64::from(plen);
                match chunk.and_then(|k| self.chunks.get(k as usize).map(|c| (k, c))) {
                    Some((k, bytes)) => {
                        let mut marks = Vec::new();
                        http_marks(&mut http[d], at, bytes, &mut marks);
                        plain_entries(&mut out, side, rts, k, at, plen, &marks);
                    }
                    None => http[d].gap(u64::from(plen), &mut |_| {}),
                }
            }
            cipher(&mut out, cur, end);
        }
        (out, self.chunks, self.stats)
    }
}

/// The plaintext of one record (`len` bytes of chunk `k`, at plaintext offset `at`), split
/// before each HTTP message start in `marks`.
fn plain_entries(
    out: &mut Vec<Entry>,
    side: Side,
    ts: Timestamp,
    k: u32,
    at: u64,
    len: u32,
    marks: &[(u64, MarkKind)],
) {
    let end = at + u64::from(len);
    let mut cur = at;
    let piece = |out: &mut Vec<Entry>, from: u64, to: u64| {
        if to > from {
            out.push(Entry::Plain {
                side,
                stream_off: from,
                ts,
                chunk: k,
                skip: (from - at) as u32,
                len: (to - from) as u32,
            });
        }
    };
    for (m, kind) in marks {
        let m = (*m).clamp(cur, end);
        piece(out, cur, m);
        cur = m;
        out.push(Entry::Mark {
            side,
            stream_off: m,
            kind: kind.clone(),
        });
    }
    piece(out, cur, end);
}
